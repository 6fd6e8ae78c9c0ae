-- Beam search: hand-computed hypotheses on a Markov chain, exactness against
-- enumerating every sequence of a small LanguageModel, greedy at beam size 1,
-- end and banned tokens, errors.
local recur = require "recur"
local beam = require "recur.beam"
local LanguageModel = require "recur.models.LanguageModel"

local A, B, C, END = 1, 2, 3, 4

-- A first-order Markov chain posing as a model: the next token's probabilities
-- depend only on the token just produced. Its state is (1,K,1) and only follows
-- the reordering, so the search's bookkeeping is exercised without a network.
local P = {
  [A] = {0.1, 0.5, 0.4, 0},
  [B] = {0.25, 0.25, 0.25, 0.25},
  [C] = {0.05, 0.05, 0, 0.9},
  [END] = {0.25, 0.25, 0.25, 0.25},   -- reached only when END does not end
}
local chain = {}
function chain:step(ids, state)
  local K = ids:numel()
  local rows = {}
  for k = 1, K do
    local p = P[ids:get(k)]
    rows[k] = {math.log(p[1]), math.log(p[2]), math.log(p[3]), math.log(p[4])}
  end
  if state then assert.are.equal(K, state.h:size(2)) end
  local h = recur.zeros({1, K, 1}, "float64")
  for k = 1, K do h:set(1, k, 1, ids:get(k)) end
  return recur.tensor(rows, "float64"), {h = h}
end

local function same_ids(expected, got)
  assert.are.same(expected, got)
end

-- log-probability of `seq` after `prefix` under the model, one fresh B=1 pass
local function sequence_logprob(model, prefix, seq)
  local ids = recur.zeros({1}, "int64")
  local logits, state
  for _, id in ipairs(prefix) do
    ids:set(1, id)
    logits, state = model:step(ids, state)
  end
  local total = 0
  for _, id in ipairs(seq) do
    local row = logits:select(1, 1):totable()
    local max = -math.huge
    for v = 1, #row do max = math.max(max, row[v]) end
    local z = 0
    for v = 1, #row do z = z + math.exp(row[v] - max) end
    total = total + row[id] - max - math.log(z)
    ids:set(1, id)
    logits, state = model:step(ids, state)
  end
  return total
end

describe("beam.search", function()
  it("runs under Lua 5.4", function() assert.are.equal("Lua 5.4", _VERSION) end)

  it("finds the sequence greedy misses (hand-computed on a Markov chain)", function()
    -- from A: greedy takes B (0.5) and wanders; C (0.4) then END (0.9) is 0.36 in all
    local hyps = beam.search(chain, {A}, {beam_size = 2, length = 6, end_id = END, length_penalty = 0})
    assert.are.equal(2, #hyps)
    same_ids({C, END}, hyps[1].ids)
    assert.is_true(hyps[1].ended)
    assert(math.abs(hyps[1].logprob - math.log(0.36)) < 1e-12)
    -- the runner-up: B (0.5), A (0.25), C (0.4), END (0.9) = 0.045
    same_ids({B, A, C, END}, hyps[2].ids)
    assert(math.abs(hyps[2].logprob - math.log(0.045)) < 1e-12)
    assert.are.equal(hyps[2].logprob, hyps[2].score)
  end)

  it("ranks by log-probability / length^alpha", function()
    local hyps = beam.search(chain, {A}, {beam_size = 2, length = 6, end_id = END, length_penalty = 1})
    same_ids({C, END}, hyps[1].ids)
    assert(math.abs(hyps[1].score - math.log(0.36) / 2) < 1e-12)
    assert(math.abs(hyps[2].score - math.log(0.045) / 4) < 1e-12)
  end)

  it("never generates a banned token, and returns n_best hypotheses", function()
    local hyps = beam.search(chain, {A}, {beam_size = 3, length = 4, end_id = END, banned = {[C] = true},
                                          n_best = 1, length_penalty = 0})
    assert.are.equal(1, #hyps)
    for _, id in ipairs(hyps[1].ids) do assert.are_not.equal(C, id) end
    -- without C: B then END (0.5 * 0.25) is the best that ends
    same_ids({B, END}, hyps[1].ids)
  end)

  it("ends a sequence only when the end token ranks among the step's K best", function()
    -- tokens 1..5, 5 ends. Step 2 ranks 2-4 (0.3, live), 2-END (0.2, ends), 3-END (0.18,
    -- third: must not count), 3-4 (0.17, live). Counting 3-END would make two endings
    -- and stop the search before 2-4-END (0.3, score log(0.3)/3 = -0.40) beats
    -- 2-END (log(0.2)/2 = -0.80).
    local Q = {
      [1] = {0, 0.5, 0.5, 0, 0},
      [2] = {0, 0, 0, 0.6, 0.4},
      [3] = {0, 0, 0.3, 0.34, 0.36},
      [4] = {0, 0, 0, 0, 1},
      [5] = {0.2, 0.2, 0.2, 0.2, 0.2},
    }
    local markov = {}
    function markov:step(ids)
      local rows = {}
      for k = 1, ids:numel() do
        rows[k] = {}
        for v, p in ipairs(Q[ids:get(k)]) do rows[k][v] = math.log(p) end
      end
      return recur.tensor(rows, "float64"), {h = recur.zeros({1, ids:numel(), 1}, "float64")}
    end
    local hyps = beam.search(markov, {1}, {beam_size = 2, length = 5, end_id = 5, length_penalty = 1})
    same_ids({2, 4, 5}, hyps[1].ids)
    assert(math.abs(hyps[1].score - math.log(0.3) / 3) < 1e-12)
    for _, h in ipairs(hyps) do assert.are_not.same({3, 5}, h.ids) end
  end)

  it("runs to the length limit without an end token", function()
    local hyps = beam.search(chain, {A}, {beam_size = 2, length = 3})
    for _, h in ipairs(hyps) do
      assert.are.equal(3, #h.ids)
      assert.is_false(h.ended)
    end
  end)

  describe("on a LanguageModel", function()
    local V = 4
    local function model()
      recur.manual_seed(31)
      local m = LanguageModel{vocab_size = V, embed = 3, hidden = 5, layers = 2, cell = "lstm", dropout = 0}
      m:double()
      m:evaluate()
      -- sharper scores than the initialisation gives, so that the paths differ
      for _, p in pairs(m:named_parameters()) do p:mul_(4) end
      return m
    end

    it("is exact when the beam holds every prefix (against enumerating all sequences)", function()
      local m = model()
      local prefix, best, best_lp = {2, 1}, nil, -math.huge
      for a = 1, V do
        for b = 1, V do
          for c = 1, V do
            local lp = sequence_logprob(m, prefix, {a, b, c})
            if lp > best_lp then best, best_lp = {a, b, c}, lp end
          end
        end
      end
      local hyps = beam.search(m, prefix, {beam_size = V * V, length = 3, length_penalty = 0})
      same_ids(best, hyps[1].ids)
      assert(math.abs(hyps[1].logprob - best_lp) < 1e-9)
      -- every hypothesis's log-probability is its sequence's, recomputed alone
      for i = 1, 5 do
        assert(math.abs(hyps[i].logprob - sequence_logprob(m, prefix, hyps[i].ids)) < 1e-9)
      end
    end)

    it("with beam size 1 is greedy decoding", function()
      local m = model()
      local ids, logits, state = recur.zeros({1}, "int64"), nil, nil
      ids:set(1, 3)
      logits, state = m:step(ids, state)
      local greedy = {}
      for i = 1, 8 do
        greedy[i] = recur.decode.greedy(logits:select(1, 1))
        ids:set(1, greedy[i])
        logits, state = m:step(ids, state)
      end
      local hyps = beam.search(m, {3}, {beam_size = 1, length = 8})
      same_ids(greedy, hyps[1].ids)
    end)
  end)

  it("names what is wrong with its arguments", function()
    assert.has_error(function() beam.search({}, {A}) end,
      "beam.search: model must have a step(ids, state) method")
    assert.has_error(function() beam.search(chain, {}) end,
      "beam.search: prefix_ids must be a non-empty array of token ids (a prime or a start marker)")
    assert.has_error(function() beam.search(chain, {A}, {beam_size = 0}) end,
      "beam.search: beam_size must be a positive integer, got 0")
    assert.has_error(function() beam.search(chain, {A}, {beam = 3}) end)
    assert.has_error(function() beam.search(chain, {A}, {end_id = "x"}) end,
      "beam.search: end_id must be an integer token id")
    assert.has_error(function() beam.search(chain, {A}, {banned = {[1] = true, [2] = true, [3] = true, [4] = true}}) end,
      "beam.search: every token is banned")
  end)

  it("refuses NaN, +inf and all -inf scores from the model", function()
    local function model_giving(value)
      return {step = function(_, ids)
        return recur.full({ids:size(1), 3}, value), {h = recur.zeros(1, ids:size(1), 2)}
      end}
    end
    assert.has_error(function() beam.search(model_giving(0 / 0), {1}, {beam_size = 2, length = 2}) end,
      "beam.search: score 1 is NaN, not a finite number")
    assert.has_error(function() beam.search(model_giving(math.huge), {1}, {beam_size = 2, length = 2}) end,
      "beam.search: score 1 is inf, not a finite number")
    assert.has_error(function() beam.search(model_giving(-math.huge), {1}, {beam_size = 2, length = 2}) end,
      "beam.search: every token has score -inf")
  end)

  it("bans the end token for the first min_length steps, and no longer", function()
    -- after every token: END 0.7, A 0.2, B 0.1; the best sequence ends as early as allowed
    local eager = {}
    function eager:step(ids)
      local K = ids:numel()
      local rows = {}
      for k = 1, K do rows[k] = {math.log(0.2), math.log(0.1), -math.huge, math.log(0.7)} end
      return recur.tensor(rows, "float64"), {h = recur.zeros({1, K, 1}, "float64")}
    end
    for n = 0, 3 do
      local best = beam.search(eager, {A}, {beam_size = 2, length = 6, end_id = END, min_length = n})[1]
      local want = {}
      for i = 1, n do want[i] = A end
      want[n + 1] = END
      same_ids(want, best.ids) -- the end at token n+1: banned at n, allowed at n+1
      assert.is_true(best.ended)
    end
    assert.has_error(function() beam.search(eager, {A}, {min_length = 1}) end,
      "beam.search: min_length needs end_id (without an end token every sequence runs to length)")
    assert.has_error(function() beam.search(eager, {A}, {end_id = END, min_length = -1}) end,
      "beam.search: min_length must be a non-negative integer")
  end)
end)
