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
--
-- decode.generate(model, state, first_ids, opts, on_token) -> B arrays of ids: the
-- one batched greedy/sampled decoding loop (Seq2Seq:greedy, ConditionedGenerator:
-- generate and lm.generate run on it; beam search is recur.beam).
local core = require "recur.core"
local util = require "recur.util"
local is_tensor = require("recur.nn.util").is_tensor

local decode = {}

local OPTIONS = {temperature = true, top_k = true, top_p = true, banned = true}

local function check_opts(opts)
  util.check_opts("decode.choose", opts, OPTIONS, 4)
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

-- The choice itself is C (core.choose, include/recur/decode.h): it runs once per
-- generated token. A NaN or +inf score (an overflowed model) is an error rather than
-- a token chosen by accident; -inf is a token of probability zero.
local function choose(logits, temperature, top_k, top_p, banned, row)
  local id, err = core.choose(logits, temperature, top_k or 0, top_p or 0, banned, row)
  if not id then error(err, 3) end
  return id
end

-- The most likely allowed id (ties go to the lowest id).
function decode.greedy(logits, banned)
  local id = choose(logits, 0, nil, nil, banned) -- not a tail call: errors name the caller
  return id
end

function decode.banned_with(banned, id)
  local set = {[id] = true}
  for b in pairs(banned or {}) do set[b] = true end
  return set
end

-- Candidates are the allowed ids in id order; top_k or top_p orders them by score
-- (ties: the lower id first), keeps the k best, then the smallest prefix whose
-- probability reaches top_p. One uniform draw picks among them.
function decode.choose(logits, opts)
  opts = opts or {}
  local temperature = check_opts(opts)
  local id = choose(logits, temperature, opts.top_k, opts.top_p, opts.banned) -- not a tail call
  return id
end

local GENERATE_OPTIONS = {length = true, end_id = true, min_length = true, temperature = true,
                          top_k = true, top_p = true, banned = true}

-- The fed ids (B) as a new int64 tensor, from a tensor or a Lua array of ids.
local function first_tensor(op, first_ids)
  local ok = type(first_ids) == "table" and #first_ids > 0
  if is_tensor(first_ids) then
    ok = first_ids:dtype() == "int64" and first_ids:dim() == 1 and first_ids:numel() > 0
  end
  if not ok then
    error(op .. ": first_ids must be an int64 tensor (B) or a non-empty Lua array of ids", 3)
  end
  if type(first_ids) == "table" then
    for b, id in ipairs(first_ids) do
      if math.type(id) ~= "integer" then
        error(string.format("%s: first_ids[%d] must be an integer id, got %s", op, b, util.show(id)), 3)
      end
    end
    return core.tensor(first_ids, "int64")
  end
  return first_ids:clone()
end

-- Decodes B sequences at once from a model that steps a batch:
--   model:step(ids (B) int64, state) -> logits (B,V), state
-- state: where the sequences start (an encoder's state, a state a prime left, or nil
-- when the model's step takes nil for zeros); first_ids (B): the ids fed first (the
-- start token, or a prime's last id). Every step feeds the B ids, then chooses each
-- live row's next id with decode.choose, rows in order (so a seed reproduces the
-- draws whatever the batch: one draw per live row per step).
-- opts: length (required: the most tokens a row gets), end_id (a row that chooses
-- it is finished, the end id kept as its last; the batch stops when every row is),
-- min_length (0: end_id is banned for a row's first min_length tokens; needs
-- end_id), temperature (decode.choose's default 1; 0 is greedy), top_k, top_p,
-- banned: as decode.choose.
-- on_token(b, id, i), when given, is called with each id as it is chosen (row b, its
-- i-th token): how lm.generate streams text.
-- A finished row keeps being stepped with the batch, fed its end id; its logits are
-- not looked at. Returns a Lua array of B arrays of ids.
function decode.generate(model, state, first_ids, opts, on_token)
  local op = "decode.generate"
  opts = util.check_opts(op, opts, GENERATE_OPTIONS)
  local length = util.check_positive_int(op, "length", opts.length)
  local min_length = util.opt_int(op, opts, "min_length", 0, 0)
  local end_id = opts.end_id
  if end_id ~= nil and math.type(end_id) ~= "integer" then
    error(op .. ": end_id must be an integer id, got " .. util.show(end_id), 2)
  end
  if min_length > 0 and end_id == nil then
    error(op .. ": min_length needs end_id (without an end every row is length tokens long)", 2)
  end
  -- an option that would change nothing is a mistake to report, not to ignore
  if opts.temperature == 0 and (opts.top_k or opts.top_p) then
    error(op .. ": " .. (opts.top_k and "top_k" or "top_p") .. " does not apply at temperature 0 (greedy)", 2)
  end
  if on_token ~= nil and type(on_token) ~= "function" then
    error(op .. ": on_token must be a function, got " .. type(on_token), 2)
  end
  local ids = first_tensor(op, first_ids)
  local B = ids:numel()
  local banned = opts.banned
  -- before min_length tokens, the end id is banned too
  local early = min_length > 0 and decode.banned_with(banned, end_id) or banned
  local temperature = check_opts({temperature = opts.temperature, top_k = opts.top_k, top_p = opts.top_p,
                                  banned = banned})
  local out, done, live = {}, {}, B
  for b = 1, B do out[b] = {} end
  for i = 1, length do
    local logits
    logits, state = model:step(ids, state)
    local banned_now = i <= min_length and early or banned
    for b = 1, B do
      if not done[b] then
        local id = choose(logits, temperature, opts.top_k, opts.top_p, banned_now, b)
        out[b][i] = id
        if on_token then on_token(b, id, i) end
        if id == end_id then done[b], live = true, live - 1 end
        ids:set(b, id)
      end
    end
    if live == 0 then break end
  end
  return out
end

return decode
