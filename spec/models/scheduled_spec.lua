-- recur.models.scheduled: the inputs scheduled sampling feeds, on stub models whose
-- choices are known by hand (a chain that always predicts id + 1, a uniform softmax)
-- and on a LanguageModel against a step-by-step greedy decode; the decay schedules
-- against hand-computed values.
local recur = require "recur"
local helpers = require "spec.support.helpers"
local decode = require "recur.decode"
local scheduled = require "recur.models.scheduled"

local V = 5

-- A stepping model: after id i its scores are `peak` at i % V + 1 and 0 elsewhere
-- (peak 0: the uniform softmax). It records every batch of ids it is fed, and its
-- state counts the steps it has taken.
local function chain(peak)
  local model = {fed = {}}
  function model:step(ids, state)
    self.fed[#self.fed + 1] = ids:totable()
    local rows = {}
    for b = 1, ids:numel() do
      local row = {}
      for v = 1, V do row[v] = 0 end
      row[ids:get(b) % V + 1] = peak
      rows[b] = row
    end
    return recur.tensor(rows, "float64"), {t = (state and state.t or 0) + 1}
  end
  return model
end

-- A (T,B) int64 tensor from T rows of B ids.
local function rows(t) return recur.tensor(t, "int64") end

-- The same ids as a table of rows, for comparisons.
local function same(want, got) assert.are.same(want, got:totable()) end

describe("scheduled.inputs", function()
  local gold = rows({{1, 3}, {5, 5}, {5, 5}, {5, 5}})

  it("with p = 0 is teacher forcing: gold itself (a copy), no step, no draw", function()
    for _, sampling in ipairs({"argmax", "sample"}) do
      local model = chain(10)
      recur.manual_seed(3)
      local fed = scheduled.inputs(model, nil, gold, 0, sampling)
      local next_draw = recur.random_uniform()
      same(gold:totable(), fed)
      assert.are.same({}, model.fed)
      fed:set(1, 1, 2)
      assert.are.equal(1, gold:get(1, 1))
      recur.manual_seed(3)
      assert.are.equal(recur.random_uniform(), next_draw)
    end
  end)

  it("with p = 1 (argmax) feeds the model its own predictions from row 2 on", function()
    -- the chain predicts id + 1: from 1, 2 3 4; from 3, 4 5 1 (had the gold 5 been fed,
    -- the predictions would have been 1 1 1)
    local model = chain(10)
    local fed = scheduled.inputs(model, nil, gold, 1, "argmax")
    same({{1, 3}, {2, 4}, {3, 5}, {4, 1}}, fed)
    -- the last row is never fed, so the model steps T - 1 times
    assert.are.same({{1, 3}, {2, 4}, {3, 5}}, model.fed)
  end)

  it("with p = 1 (sample) draws from a nearly one-hot softmax what argmax takes", function()
    -- peak 40: every other id has probability about 4 e^-40, about 2e-17
    recur.manual_seed(2)
    same({{1, 3}, {2, 4}, {3, 5}, {4, 1}}, scheduled.inputs(chain(40), nil, gold, 1, "sample"))
  end)

  it("starts from a copy of the state, which it leaves as it was", function()
    local seen = {}
    local model = {}
    function model:step(ids, state)
      seen[#seen + 1] = state.h:get(1)
      state.h:add_(1) -- advances in place, as the recurrent models' steps do
      return recur.tensor({{0, 9, 0, 0, 0}, {0, 9, 0, 0, 0}}, "float64"), state
    end
    local h = recur.tensor({7}, "float64")
    local state = {h = h, tag = "kept"}
    same({{1, 3}, {2, 2}, {2, 2}, {2, 2}}, scheduled.inputs(model, state, gold, 1))
    assert.are.same({7, 8, 9}, seen)
    assert.are.equal(7, h:get(1))
    assert.are.equal(h, state.h)
  end)

  it("at p = 0.5 flips one coin per sequence and step, then draws for heads (sample)", function()
    -- the order written out: at each step, sequence by sequence, the coin, then the draw
    local p, T, B = 0.5, 6, 3
    local g = recur.full({T, B}, 1, "int64")
    for _, sampling in ipairs({"argmax", "sample"}) do
      recur.manual_seed(19)
      local fed = scheduled.inputs(chain(1), nil, g, p, sampling)
      recur.manual_seed(19)
      local want = g:totable()
      for t = 1, T - 1 do
        for b = 1, B do
          local scores = {0, 0, 0, 0, 0}
          scores[want[t][b] % V + 1] = 1
          if recur.random_uniform() < p then
            want[t + 1][b] = sampling == "argmax" and decode.greedy(scores) or decode.choose(scores)
          end
        end
      end
      same(want, fed)
      -- and the choice mattered: some rows hold a prediction, some gold
      local gold_kept, replaced = 0, 0
      for t = 2, T do
        for b = 1, B do
          if want[t][b] == 1 then gold_kept = gold_kept + 1 else replaced = replaced + 1 end
        end
      end
      assert.is_true(gold_kept > 0 and replaced > 0)
    end
  end)

  it("samples the fed token from the softmax: a uniform model feeds each id 1/V of the time", function()
    -- gold row 2 is id 1 everywhere; at p, the fed id is 1 with probability
    -- (1 - p) + p/V and each other id with p/V
    local B = 6000
    local g = recur.full({2, B}, 1, "int64")
    for _, p in ipairs({1, 0.5}) do
      recur.manual_seed(23)
      local fed = scheduled.inputs(chain(0), nil, g, p, "sample")
      local counts = {}
      for b = 1, B do
        local id = fed:get(2, b)
        counts[id] = (counts[id] or 0) + 1
      end
      for id = 1, V do
        local want = (id == 1 and (1 - p) or 0) + p / V
        assert.is_true(math.abs(counts[id] / B - want) < 0.02,
          string.format("p %g: id %d fed %d/%d times, expected %.3f", p, id, counts[id], B, want))
      end
    end
    -- argmax on the same uniform scores always takes the lowest id
    recur.manual_seed(23)
    same(recur.full({2, 4}, 1, "int64"):totable(), scheduled.inputs(chain(0), nil, recur.full({2, 4}, 1, "int64"), 1))
  end)

  it("at p = 1 (argmax) on a LanguageModel feeds exactly the greedy decode from the carried state", function()
    recur.manual_seed(41)
    local model = recur.models.LanguageModel{vocab_size = 7, embed = 4, hidden = 6, layers = 2}
    model:evaluate()
    local T, B = 6, 3
    local g = recur.full({T, B}, 1, "int64")
    for b = 1, B do g:set(1, b, b + 1) end
    -- a carried state: the one a chunk leaves
    local _, carried = model:forward(recur.full({3, B}, 5, "int64"))
    local h0 = carried.h:clone()
    local fed = scheduled.inputs(model, carried, g, 1, "argmax")
    assert.is_true(recur.allclose(h0, carried.h, 0, 0))
    -- step by step by hand
    local state = {h = carried.h:clone(), c = carried.c:clone()}
    local ids = g:select(1, 1):clone()
    for t = 1, T - 1 do
      local logits = model:step(ids, state)
      for b = 1, B do
        local best = decode.greedy(logits:select(1, b))
        assert.are.equal(best, fed:get(t + 1, b))
        ids:set(b, best)
      end
    end
    -- and decode.generate's greedy decode from the same state
    local greedy = decode.generate(model, {h = carried.h:clone(), c = carried.c:clone()}, g:select(1, 1):clone(),
      {length = T - 1, temperature = 0})
    for b = 1, B do
      for t = 1, T - 1 do assert.are.equal(greedy[b][t], fed:get(t + 1, b)) end
    end
  end)

  it("refuses bad arguments", function()
    local function fails(fragment, ...)
      local args = table.pack(...)
      helpers.assert_fails_with(function() scheduled.inputs(table.unpack(args, 1, args.n)) end, fragment)
    end
    fails("scheduled.inputs: p must be a number in [0, 1], got 1.5", chain(1), nil, gold, 1.5)
    fails("scheduled.inputs: p must be a number in [0, 1], got ", chain(1), nil, gold, 0 / 0)
    fails("scheduled.inputs: option sampling must be one of argmax, sample, got \"softmax\"", chain(1), nil, gold, 0.5, "softmax")
    fails("scheduled.inputs: gold must be an int64 (T,B) tensor of token ids, got float32 (4x2)", chain(1), nil,
      gold:to("float32"), 0.5)
  end)
end)

-- The three teacher-forced models, each as: a small model, a batch and the state it
-- starts from, its teacher-forcing inputs, the state the stepping pass starts from,
-- and its loss and backward on given inputs written out by hand.
local KINDS = {
  {
    name = "LanguageModel",
    make = function(extra)
      local c = {vocab_size = 7, embed = 4, hidden = 6, layers = 2}
      for k, v in pairs(extra or {}) do c[k] = v end
      return recur.models.LanguageModel(c)
    end,
    batch = function(model)
      local x = recur.tensor({{2, 3, 4}, {5, 5, 1}, {7, 2, 2}, {1, 6, 3}, {4, 4, 4}}, "int64")
      local y = recur.tensor({{5, 5, 1}, {7, 2, 2}, {1, 6, 3}, {4, 4, 4}, {3, 1, 2}}, "int64")
      -- a carried state: the one an earlier chunk leaves
      local _, state = model:forward(recur.tensor({{6, 1, 3}, {3, 7, 5}}, "int64"))
      return {x = x, y = y}, {h = state.h:clone(), c = state.c:clone()}
    end,
    gold = function(_, batch) return batch.x end,
    start = function(_, _, state) return state end,
    loss = function(model, batch, state, fed)
      local logits = model:forward(fed, state)
      local loss = model.criterion:forward(logits, batch.y)
      model:backward(fed, model.criterion:backward(logits, batch.y))
      return loss
    end,
  },
  {
    name = "ConditionedGenerator",
    make = function(extra)
      local c = {cond_size = 3, vocab_size = 7, start_id = 1, end_id = 2, pad_id = 7, embed = 4, hidden = 6, layers = 2}
      for k, v in pairs(extra or {}) do c[k] = v end
      return recur.models.ConditionedGenerator(c)
    end,
    batch = function()
      local z = recur.randn(3, 3)
      local y = recur.tensor({{3, 4, 5}, {6, 3, 2}, {4, 2, 7}, {5, 7, 7}, {2, 7, 7}}, "int64")
      return {z = z, y = y}, nil
    end,
    gold = function(model, batch) return model:shift(batch.y) end,
    start = function(model, batch) return model:initial_state(batch.z) end,
    loss = function(model, batch, _, fed)
      local logits = model:forward(batch.z, fed)
      local loss = model.criterion:forward(logits, batch.y)
      model:backward(batch.z, model.criterion:backward(logits, batch.y))
      return loss
    end,
  },
  {
    name = "Seq2Seq",
    make = function(extra)
      local c = {src_vocab_size = 6, tgt_vocab_size = 7, embed = 4, hidden = 6, layers = 2}
      for k, v in pairs(extra or {}) do c[k] = v end
      return recur.models.Seq2Seq(c)
    end,
    batch = function()
      local x = recur.tensor({{4, 5, 6}, {5, 6, 1}, {6, 1, 1}}, "int64")
      local y = recur.tensor({{6, 6, 5}, {5, 4, 3}, {4, 3, 1}, {3, 1, 1}}, "int64")
      return {x = x, y = y, lengths = recur.tensor({3, 2, 1}, "int64")}, nil
    end,
    gold = function(model, batch) return model:shift(batch.y) end,
    start = function(model, batch) return model:encode(batch.x, batch.lengths) end,
    loss = function(model, batch, _, fed)
      local logits = model:forward(batch.x, fed, batch.lengths)
      local loss = model.criterion:forward(logits, batch.y)
      model:backward(batch.x, model.criterion:backward(logits, batch.y))
      return loss
    end,
  },
}

-- train_step's loss and gradients against the hand-written loss and backward on
-- the inputs train_step says it fed: equal to the last bit.
local function same_as_teacher_forced(kind, model, batch, state, loss, fed)
  local g = helpers.grads_of(model)
  model:zero_grad()
  assert.are.equal(loss, kind.loss(model, batch, state, fed))
  local g2, names = helpers.grads_of(model)
  for _, name in ipairs(names) do
    assert.is_true(recur.allclose(g[name], g2[name], 0, 0), name)
  end
end

for _, kind in ipairs(KINDS) do
  describe(kind.name .. " scheduled sampling", function()
    it("at p = 0 is teacher forcing exactly: the gold inputs, their loss and gradients", function()
      recur.manual_seed(61)
      local model = kind.make()
      local batch, state = kind.batch(model)
      model:zero_grad()
      local loss, _, _, fed = model:train_step(batch, state, {sampling_prob = 0})
      same(kind.gold(model, batch):totable(), fed)
      same_as_teacher_forced(kind, model, batch, state, loss, fed)
    end)

    it("at p = 1 (argmax) feeds the greedy decode from its starting state, and differentiates those inputs", function()
      recur.manual_seed(62)
      local model = kind.make({sampling_prob = 1})
      local batch, state = kind.batch(model)
      local gold = kind.gold(model, batch)
      model:zero_grad()
      local loss, _, _, fed = model:train_step(batch, state)
      -- step by step by hand, from the state the teacher-forced pass starts from
      local T, B = gold:size(1), gold:size(2)
      local s = kind.start(model, batch, state)
      s = s and {h = s.h:clone(), c = s.c and s.c:clone()} -- step advances it in place
      local ids = gold:select(1, 1):clone()
      local want = {gold:select(1, 1):totable()}
      for t = 1, T - 1 do
        local logits
        logits, s = model:step(ids, s)
        want[t + 1] = {}
        for b = 1, B do
          want[t + 1][b] = decode.greedy(logits:select(1, b))
          ids:set(b, want[t + 1][b])
        end
      end
      same(want, fed)
      assert.are_not.same(gold:totable(), fed:totable())
      same_as_teacher_forced(kind, model, batch, state, loss, fed)
    end)

    it("with sampling = 'sample' feeds scheduled.inputs' draws, and differentiates those inputs", function()
      recur.manual_seed(63)
      local model = kind.make({sampling_prob = 0.7, sampling = "sample"})
      local batch, state = kind.batch(model)
      local gold = kind.gold(model, batch)
      recur.manual_seed(9)
      local want = scheduled.inputs(model, kind.start(model, batch, state), gold, 0.7, "sample")
      recur.manual_seed(9)
      model:zero_grad()
      local loss, _, _, fed = model:train_step(batch, state)
      same(want:totable(), fed)
      same_as_teacher_forced(kind, model, batch, state, loss, fed)
      -- the argmax variant feeds other tokens under the same seed
      model.sampling = "argmax"
      recur.manual_seed(9)
      local _, _, _, fed_argmax = model:train_step(batch, state)
      assert.are_not.same(fed:totable(), fed_argmax:totable())
    end)

    it("takes p from opts, then model.sampling_prob, and refuses bad values", function()
      recur.manual_seed(64)
      local model = kind.make({sampling_prob = 1})
      local batch, state = kind.batch(model)
      local gold = kind.gold(model, batch):totable()
      local _, _, _, fed = model:train_step(batch, state, {sampling_prob = 0})
      same(gold, fed)
      model.sampling_prob = 0
      _, _, _, fed = model:train_step(batch, state)
      same(gold, fed)
      _, _, _, fed = model:train_step(batch, state, {sampling_prob = 1})
      assert.are_not.same(gold, fed:totable())
      for _, bad in ipairs({{sampling_prob = 1.5}, {sampling_prob = -0.1}, {sampling = "softmax"}}) do
        local ok, err = pcall(kind.make, bad)
        assert.is_false(ok)
        local key = next(bad)
        assert.truthy(tostring(err):find(kind.name .. ": ", 1, true) and tostring(err):find(key, 1, true), tostring(err))
      end
      helpers.assert_fails_with(function() model:train_step(batch, state, {sampling_prob = 2}) end,
        kind.name .. ":train_step: ")
      helpers.assert_fails_with(function() model:train_step(batch, state, {p = 1}) end,
        kind.name .. ":train_step: unknown option 'p'")
    end)
  end)
end

describe("LanguageModel scheduled sampling", function()
  it("starts the stepping pass from the carried state, not from zeros", function()
    recur.manual_seed(65)
    local kind = KINDS[1]
    local model = kind.make({sampling_prob = 1, sampling = "sample"})
    -- a sharper softmax, so that the state moves the draws
    model.decoder.weight:mul_(8)
    local batch, state = kind.batch(model)
    recur.manual_seed(5)
    local _, _, _, carried = model:train_step(batch, state)
    recur.manual_seed(5)
    local _, _, _, zeros = model:train_step(batch, nil)
    assert.are_not.same(carried:totable(), zeros:totable())
    recur.manual_seed(5)
    same(scheduled.inputs(model, state, batch.x, 1, "sample"):totable(), carried)
    recur.manual_seed(5)
    same(scheduled.inputs(model, nil, batch.x, 1, "sample"):totable(), zeros)
  end)
end)

describe("scheduled.probability", function()
  it("follows the paper's schedules", function()
    local p = scheduled.probability
    assert.are.near(0.3, p(3, {schedule = "linear", c = 0.1}), 1e-12)
    assert.are.near(0.5, p(3, {schedule = "linear", k = 0.8, c = 0.1}), 1e-12)
    assert.are.near(0.8, p(20, {schedule = "linear", c = 0.1, epsilon = 0.2}), 1e-12)
    assert.are.equal(0, p(0, {schedule = "linear", c = 0.1}))
    assert.are.near(1 - 0.81, p(2, {schedule = "exponential", k = 0.9}), 1e-12)
    assert.are.near(1 - 5 / 6, p(0, {schedule = "inverse_sigmoid", k = 5}), 1e-12)
    assert.are.near(1 - 5 / (5 + math.exp(2)), p(10, {schedule = "inverse_sigmoid", k = 5}), 1e-12)
    -- Seq2Seq's name for it
    assert.are.equal(p(7, {schedule = "exponential", k = 0.8}),
      recur.models.Seq2Seq.sampling_probability(7, {schedule = "exponential", k = 0.8}))
  end)

  it("names itself, or the alias that called it, in errors", function()
    helpers.assert_fails_with(function() scheduled.probability(1, {schedule = "cosine"}) end,
      "scheduled.probability: schedule must be 'linear'")
    helpers.assert_fails_with(function() recur.models.Seq2Seq.sampling_probability(-1, {schedule = "linear", c = 1}) end,
      "Seq2Seq.sampling_probability: the step i must be a number >= 0")
  end)
end)
