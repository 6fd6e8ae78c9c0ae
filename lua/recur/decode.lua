-- Choosing the next token from a model's scores: greedy, temperature, top-k and
-- top-p (nucleus) sampling, with banned tokens. Draws come from recur's seeded
-- generator, so a seed reproduces a sample exactly.
--
--   local id = decode.choose(logits, {temperature = 0.8, top_k = 40, banned = {[pad] = true}})
--
-- logits: a 1-D tensor of V unnormalised log-probabilities (or a Lua array).
-- opts: temperature (1; 0 is greedy), top_k (keep the k best), top_p (keep the
-- smallest set of best tokens whose probability reaches top_p), banned (a set of ids).
-- Returns a 1-based token id.
--
-- decode.banned_with(banned, id) -> a new set: banned (or nothing) and id; how a
-- generator bans the end token until a minimum length.
local core = require "recur.core"
local util = require "recur.util"

local decode = {}

local function as_array(logits)
  if type(logits) == "table" then return logits end
  if logits:dim() ~= 1 then
    error(string.format("decode: expected a 1-D tensor of scores, got %d-D", logits:dim()), 3)
  end
  return logits:totable()
end

local OPTIONS = {temperature = true, top_k = true, top_p = true, banned = true}

local function check_opts(opts)
  util.check_opts("decode.choose", opts, OPTIONS)
  local t = opts.temperature or 1
  if type(t) ~= "number" or not (t >= 0) then error("decode: temperature must be a number >= 0", 3) end
  if opts.top_k ~= nil and (math.type(opts.top_k) ~= "integer" or opts.top_k < 1) then
    error("decode: top_k must be a positive integer", 3)
  end
  if opts.top_p ~= nil and (type(opts.top_p) ~= "number" or not (opts.top_p > 0 and opts.top_p <= 1)) then
    error("decode: top_p must be in (0, 1]", 3)
  end
  if opts.banned ~= nil and type(opts.banned) ~= "table" then
    error("decode: banned must be a set of ids ({[id] = true}), got " .. type(opts.banned), 3)
  end
  return t
end

-- The best allowed id (ties go to the lowest) and its score. A NaN or +inf score
-- (an overflowed model) is an error rather than a token chosen by accident; -inf is a
-- token of probability zero.
local function best_allowed(scores, banned)
  if #scores == 0 then error("decode: no scores to choose from", 3) end
  local best, best_id = -math.huge, nil
  for id = 1, #scores do
    local s = scores[id]
    if not (s < math.huge) then
      error(string.format("decode: score %d is %s, not a finite number", id, s ~= s and "NaN" or tostring(s)), 3)
    end
    if s > best and not (banned and banned[id]) then best, best_id = s, id end
  end
  if not best_id then
    local any_allowed = false
    for id = 1, #scores do any_allowed = any_allowed or not (banned and banned[id]) end
    error(any_allowed and "decode: every allowed token has score -inf" or "decode: every token is banned", 3)
  end
  return best_id, best
end

-- The most likely allowed id (ties go to the lowest id).
function decode.greedy(logits, banned)
  return (best_allowed(as_array(logits), banned))
end

-- The weights of the plain sampling path, kept from call to call: generation calls
-- choose once per token, and filling a table that already has V slots allocates
-- nothing (choose never yields, so one table serves every caller).
local scratch = {}

-- Sampling from softmax(scores / temperature) over every id: the general path below
-- with the candidates 1..V, without building the candidate list (same arithmetic in
-- the same order, so a seed draws the same ids).
local function sample_all(scores, temperature)
  local n = #scores
  local _, max = best_allowed(scores, nil)
  local exp, weights, total = math.exp, scratch, 0
  for id = 1, n do
    local w = exp((scores[id] - max) / temperature)
    weights[id] = w
    total = total + w
  end
  local r = core.random_uniform() * total
  for id = 1, n do
    r = r - weights[id]
    if r < 0 then return id end
  end
  return n -- rounding left r a hair above zero
end

function decode.banned_with(banned, id)
  local set = {[id] = true}
  for b in pairs(banned or {}) do set[b] = true end
  return set
end

function decode.choose(logits, opts)
  opts = opts or {}
  local temperature = check_opts(opts)
  local banned = opts.banned
  if temperature == 0 then return decode.greedy(logits, banned) end
  local scores = as_array(logits)
  if not (banned or opts.top_k or opts.top_p) then return sample_all(scores, temperature) end
  local _, max = best_allowed(scores, banned)

  -- candidates: allowed ids, sorted by score when top-k or top-p needs an order
  local ids = {}
  for id = 1, #scores do
    if not (banned and banned[id]) then ids[#ids + 1] = id end
  end
  if opts.top_k or opts.top_p then
    table.sort(ids, function(a, b)
      if scores[a] ~= scores[b] then return scores[a] > scores[b] end
      return a < b
    end)
    if opts.top_k and opts.top_k < #ids then
      for i = #ids, opts.top_k + 1, -1 do ids[i] = nil end
    end
  end

  -- softmax over the candidates at this temperature (max subtracted for stability)
  local weights, total = {}, 0
  for i, id in ipairs(ids) do
    local w = math.exp((scores[id] - max) / temperature)
    weights[i] = w
    total = total + w
  end

  -- nucleus: the smallest prefix (by score) holding probability top_p
  local count = #ids
  if opts.top_p and opts.top_p < 1 then
    local cumulative = 0
    for i = 1, #ids do
      cumulative = cumulative + weights[i] / total
      if cumulative >= opts.top_p then
        count = i
        break
      end
    end
    total = 0
    for i = 1, count do total = total + weights[i] end
  end

  local r = core.random_uniform() * total
  for i = 1, count do
    r = r - weights[i]
    if r < 0 then return ids[i] end
  end
  return ids[count] -- rounding left r a hair above zero
end

return decode
