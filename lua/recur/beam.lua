-- Beam search: the most probable continuations of a prefix under a model that
-- scores one step at a time, keeping the K best partial sequences at every step
-- instead of the single best (greedy), as OpenNMT and fairseq decode.
--
--   local hyps = beam.search(model, prefix_ids, {beam_size = 5, length = 40, end_id = eos})
--   hyps[1].ids   -- the best continuation (without the prefix)
--
-- model: anything with step(ids, state) -> logits (K,V), state, the interface of
--   recur.models.LanguageModel: ids an int64 tensor (K) of the tokens just produced,
--   state a table of tensors (or nil for the initial state) that step may advance in
--   place. Every tensor in the state must have the K sequences on its dimension 2,
--   as LanguageModel's h and c (L,K,H): the search reorders them when beams die and
--   branch. The logits of each step are read before the next step is run, so step
--   may return the same buffer every time.
-- prefix_ids: a non-empty Lua array of token ids fed first (a prime text, or a
--   start marker such as <s>); their own probabilities are not scored.
-- opts:
--   beam_size (5): sequences kept per step, K.
--   length (100): the most tokens generated after the prefix.
--   end_id: a token that ends a sequence; an ended sequence is final and the end
--     token is its last id. Without it every sequence runs to `length`.
--   banned: a set of ids ({[id] = true}) never generated.
--   min_length (0): end_id is banned until this many tokens were generated, so an
--     ended sequence has at least min_length tokens before its end token (fairseq's
--     min_len); needs end_id.
--   length_penalty (1): sequences are ranked by log-probability / length^alpha
--     (fairseq's lenpen; 0 ranks by log-probability alone, which favours short
--     sequences when end_id can end them early).
--   n_best (beam_size): how many finished sequences to return.
-- Returns up to n_best hypotheses, best first: {ids = {...}, logprob = sum of the
-- natural-log probabilities of the generated ids, score = the ranked score,
-- ended = whether it stopped at end_id}.
--
-- A sequence ends when the end token is among the K best extensions of its step (as
-- in fairseq; an ending ranked lower is dropped). The search stops after `length`
-- tokens, or once beam_size sequences have ended
-- and, with length_penalty = 0, no live sequence can still beat the beam_size-th of
-- them (its log-probability only falls as it grows); with a penalty a longer
-- sequence's score can rise, and the search stops as soon as beam_size have ended,
-- as fairseq does. Sequences still live at the length limit are ranked with the
-- ended ones (ended = false).
local core = require "recur.core"
local decode = require "recur.decode"
local util = require "recur.nn.util"

local beam = {}

local OPTIONS = {beam_size = true, length = true, end_id = true, banned = true,
                 length_penalty = true, n_best = true, min_length = true}
beam.OPTIONS = OPTIONS   -- for the models that pass their callers' options on

local function check(model, prefix_ids, opts)
  opts = util.check_opts("beam.search", opts, OPTIONS, 4)
  if type(model) ~= "table" or type(model.step) ~= "function" then
    error("beam.search: model must have a step(ids, state) method", 3)
  end
  if type(prefix_ids) ~= "table" or #prefix_ids == 0 then
    error("beam.search: prefix_ids must be a non-empty array of token ids (a prime or a start marker)", 3)
  end
  local K = opts.beam_size or 5
  util.check_positive_int("beam.search", "beam_size", K)
  local length = opts.length or 100
  util.check_positive_int("beam.search", "length", length)
  local alpha = opts.length_penalty or 1
  if type(alpha) ~= "number" or alpha ~= alpha then
    error("beam.search: length_penalty must be a number", 3)
  end
  if opts.end_id ~= nil and math.type(opts.end_id) ~= "integer" then
    error("beam.search: end_id must be an integer token id", 3)
  end
  if opts.banned ~= nil and type(opts.banned) ~= "table" then
    error("beam.search: banned must be a set of ids ({[id] = true})", 3)
  end
  local n_best = opts.n_best or K
  util.check_positive_int("beam.search", "n_best", n_best)
  local min_length = opts.min_length or 0
  if math.type(min_length) ~= "integer" or min_length < 0 then
    error("beam.search: min_length must be a non-negative integer", 3)
  end
  if min_length > 0 and opts.end_id == nil then
    error("beam.search: min_length needs end_id (without an end token every sequence runs to length)", 3)
  end
  return K, length, alpha, n_best, min_length, opts
end

-- log_softmax of one row of scores (a Lua array), into out. A NaN or +inf score (an
-- overflowed model) is an error: it would rank every hypothesis at random.
local function log_softmax(scores, out)
  local max = -math.huge
  for v = 1, #scores do
    local s = scores[v]
    if not (s < math.huge) then
      error(string.format("beam.search: score %d is %s, not a finite number", v, s ~= s and "NaN" or tostring(s)), 0)
    end
    if s > max then max = s end
  end
  if max == -math.huge then error("beam.search: every token has score -inf", 0) end
  local sum = 0
  for v = 1, #scores do sum = sum + math.exp(scores[v] - max) end
  local log_z = max + math.log(sum)
  for v = 1, #scores do out[v] = scores[v] - log_z end
  return out
end

-- The `limit` best (beam, token, total log-probability) extensions, best first
-- (ties: lower beam, then lower token, so results do not depend on table order).
local function best_extensions(logprobs, totals, banned, limit)
  local best = {}
  local function better(a, b)
    if a.total ~= b.total then return a.total > b.total end
    if a.beam ~= b.beam then return a.beam < b.beam end
    return a.id < b.id
  end
  for k, row in ipairs(logprobs) do
    for v = 1, #row do
      local total = totals[k] + row[v]
      -- a token of probability zero is no candidate
      if total > -math.huge and not (banned and banned[v]) then
        local n = #best
        if n < limit or total > best[n].total then
          local entry = {beam = k, id = v, total = total}
          -- insertion into the short sorted list
          local i = n < limit and n + 1 or n
          while i > 1 and better(entry, best[i - 1]) do
            best[i] = best[i - 1]
            i = i - 1
          end
          best[i] = entry
        end
      end
    end
  end
  return best
end

-- A new state holding, for every kept beam j, the sequences parents[j] of `state`
-- along dimension 2.
local function reorder(state, parents)
  local out = {}
  for key, t in pairs(state) do
    if util.is_tensor(t) then
      local size = t:size()
      size[2] = #parents
      local r = core.empty(size, t:dtype())
      for j, p in ipairs(parents) do r:select(2, j):copy_(t:select(2, p)) end
      out[key] = r
    else
      out[key] = t
    end
  end
  return out
end

local function score_of(logprob, len, alpha)
  return alpha == 0 and logprob or logprob / len ^ alpha
end

local function ranked(hyps)
  table.sort(hyps, function(a, b)
    if a.score ~= b.score then return a.score > b.score end
    return #a.ids < #b.ids
  end)
  return hyps
end

-- Whether the ended sequences can no longer be beaten (see the header).
local function settled(finished, live, K, alpha)
  if #finished < K then return false end
  if alpha ~= 0 then return true end
  local kth = ranked(finished)[K].score
  for _, h in ipairs(live) do
    if h.logprob > kth then return false end
  end
  return true
end

function beam.search(model, prefix_ids, opts)
  local K, length, alpha, n_best, min_length, o = check(model, prefix_ids, opts)
  local end_id, banned = o.end_id, o.banned
  -- the banned set of the first min_length steps: the end token too
  local early = min_length > 0 and decode.banned_with(banned, end_id) or banned

  -- the prefix, as one sequence
  local ids = core.zeros({1}, "int64")
  local logits, state
  for _, id in ipairs(prefix_ids) do
    ids:set(1, id)
    logits, state = model:step(ids, state)
  end

  local live = {{ids = {}, logprob = 0}}
  local finished = {}
  local rows = {}
  for step = 1, length do
    -- the log-probabilities of every live sequence's next token
    local logprobs, totals = {}, {}
    for k = 1, #live do
      local scores = logits:select(1, k):totable()
      rows[k] = rows[k] or {}
      logprobs[k] = log_softmax(scores, rows[k])
      totals[k] = live[k].logprob
    end
    -- 2K candidates: even if K of them end, K can go on
    local candidates = best_extensions(logprobs, totals, step <= min_length and early or banned, 2 * K)
    if #candidates == 0 then error("beam.search: every token is banned", 2) end
    local next_live, parents = {}, {}
    for rank, c in ipairs(candidates) do
      local seq = table.move(live[c.beam].ids, 1, step - 1, 1, {})
      seq[step] = c.id
      if end_id and c.id == end_id then
        -- only an ending among the step's K best counts (fairseq's rule): endings
        -- further down would fill the finished list with poor sequences and stop
        -- the search while much better ones are still live
        if rank <= K then
          finished[#finished + 1] = {ids = seq, logprob = c.total, score = score_of(c.total, step, alpha),
                                     ended = true}
        end
      else
        next_live[#next_live + 1] = {ids = seq, logprob = c.total}
        parents[#parents + 1] = c.beam
      end
      if #next_live == K then break end
    end
    live = next_live
    if settled(finished, live, K, alpha) then
      live = {}
      break
    end
    if #live == 0 or step == length then break end
    -- advance the kept sequences by their last token
    state = reorder(state, parents)
    ids = core.zeros({#live}, "int64")
    for j, h in ipairs(live) do ids:set(j, h.ids[step]) end
    logits, state = model:step(ids, state)
  end

  -- sequences cut off by the length limit compete with the ended ones
  for _, h in ipairs(live) do
    finished[#finished + 1] = {ids = h.ids, logprob = h.logprob, score = score_of(h.logprob, #h.ids, alpha),
                               ended = false}
  end
  ranked(finished)
  for i = #finished, n_best + 1, -1 do finished[i] = nil end
  return finished
end

return beam
