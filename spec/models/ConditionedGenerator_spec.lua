-- recur.models.ConditionedGenerator: float64 gradient checks of the loss through the
-- conditioning Linear(s), the initial state and logits assembled by hand, teacher
-- forcing equal to stepping, beam size 1 equal to greedy, a short training run, and
-- the errors.
local recur = require "recur"
local util = require "recur.nn.util"
local Module = require "recur.nn.Module"
local ConditionedGenerator = require "recur.models.ConditionedGenerator"

it("runs on Lua 5.4", function()
  assert.are.equal("Lua 5.4", _VERSION)
end)

-- The model's teacher-forced loss against fixed targets as a module with one output,
-- so that recur.gradcheck checks it w.r.t. every parameter and z.
local LossOf = util.class("LossOf", Module)
function LossOf:__init(model, targets)
  Module.__init(self)
  self.model = self:register_module("model", model)
  self.targets = targets
end
function LossOf:forward(z)
  local logits = self.model:forward(z, self.model:shift(self.targets))
  return recur.tensor({self.model.criterion:forward(logits, self.targets)}, self.dtype)
end
function LossOf:backward(z, gloss)
  local g = self.model.criterion:backward(self.model.logits, self.targets):mul(gloss:get(1))
  return self.model:backward(z, g)
end

local function ids(rows) return recur.tensor(rows, "int64") end

local function max_abs_diff(a, b)
  return (a:to("float64") - b:to("float64")):abs():max()
end

local function assert_error(expected, fn)
  local ok, err = pcall(fn)
  assert.is_false(ok, "expected an error")
  err = tostring(err)
  assert(err:find(expected, 1, true), "expected '" .. expected .. "' in: " .. err)
end

local BASE = {cond_size = 3, vocab_size = 7, start_id = 1, end_id = 2, embed = 3, hidden = 4}
local function config(extra)
  local c = {}
  for k, v in pairs(BASE) do c[k] = v end
  for k, v in pairs(extra or {}) do c[k] = v end
  return c
end

describe("ConditionedGenerator gradients (float64 finite differences)", function()
  -- T = 4, B = 3, padded with 7 where the pad_id is used
  local targets = ids({{3, 4, 5}, {6, 2, 3}, {2, 7, 4}, {7, 7, 2}})
  local cases = {
    {"2-layer LSTM, c0 conditioned too", {cell = "lstm", layers = 2}},
    {"LSTM with c0 = 0", {cell = "lstm", condition_cell = false}},
    {"2-layer GRU with dropout", {cell = "gru", layers = 2, dropout = 0.3}},
    {"RNN with ignored padding", {cell = "rnn", pad_id = 7}},
  }
  for i, case in ipairs(cases) do
    it(case[1] .. ": every parameter, the conditioning Linear and z", function()
      recur.manual_seed(30 + i)
      local model = ConditionedGenerator(config(case[2]))
      local report = recur.gradcheck(LossOf(model, targets), {recur.randn(3, 3)}, {floor = 1e-6})
      assert(report.max_error < 1e-5, tostring(report))
      assert.is_not_nil(report.params["model.init_h.weight"])
      assert.is_not_nil(report.inputs[1])
      local _, names = model:named_parameters()
      assert.are.equal(#names, #report.names)
      assert.are.equal(case[2].cell == "lstm" and case[2].condition_cell ~= false,
        report.params["model.init_c.weight"] ~= nil)
    end)
  end

  it("the conditioning Linear receives a gradient through h0 (and c0)", function()
    recur.manual_seed(5)
    local model = ConditionedGenerator(config{cell = "lstm", layers = 2})
    model:zero_grad()
    model:train_step({z = recur.randn(3, 3), y = targets})
    assert(model.init_h:gradient("weight"):abs():max() > 1e-4)
    assert(model.init_c:gradient("weight"):abs():max() > 1e-4)
  end)
end)

describe("ConditionedGenerator forward", function()
  it("the initial state is tanh(W z + b), one slice of H per layer", function()
    recur.manual_seed(6)
    local model = ConditionedGenerator(config{cell = "lstm", layers = 2})
    local z = recur.randn(2, 3)
    local state = model:initial_state(z)
    assert.are.same({2, 2, 4}, state.h:size())
    for _, pair in ipairs({{"h", model.init_h}, {"c", model.init_c}}) do
      local W, bias, zt = pair[2].weight:totable(), pair[2].bias:totable(), z:totable()
      for l = 1, 2 do
        for b = 1, 2 do
          for k = 1, 4 do
            local row = (l - 1) * 4 + k
            local s = bias[row]
            for j = 1, 3 do s = s + W[row][j] * zt[b][j] end
            assert.are.near(math.tanh(s), state[pair[1]]:get(l, b, k), 1e-6)
          end
        end
      end
    end
    local gru = ConditionedGenerator(config{cell = "gru"})
    assert.is_nil(gru:initial_state(z).c)
    assert.is_nil(gru.init_c)
    local zero_c = ConditionedGenerator(config{cell = "lstm", condition_cell = false})
    assert.are.equal(0, zero_c:initial_state(z).c:abs():max())
  end)

  it("teacher forcing equals the stack run from the hand-made state, and stepping", function()
    for i, cell in ipairs({"lstm", "gru", "rnn"}) do
      recur.manual_seed(40 + i)
      local model = ConditionedGenerator(config{cell = cell, layers = 2})
      local z = recur.randn(2, 3)
      local targets = ids({{3, 4}, {5, 6}, {2, 3}})
      local inputs = model:shift(targets)
      assert.are.same({{1, 1}, {3, 4}, {5, 6}}, inputs:totable())
      local logits = model:forward(z, inputs):clone()
      local state = model:initial_state(z)
      -- by hand: the stack from that state, then the decoder
      local y = model.rnn:forward(model.encoder:forward(inputs):clone(), state.h, state.c)
      local expected = model.decoder:forward(y):clone()
      assert(max_abs_diff(logits, expected) < 1e-6, cell)
      -- one step at a time
      for t = 1, 3 do
        local step_logits = model:step(inputs:select(1, t):contiguous(), state)
        assert(max_abs_diff(step_logits, logits:select(1, t)) < 1e-5, cell .. " step " .. t)
      end
    end
  end)
end)

describe("ConditionedGenerator generation", function()
  it("beam size 1 equals greedy; sampling repeats under a seed", function()
    recur.manual_seed(7)
    local model = ConditionedGenerator(config{cell = "lstm", hidden = 8})
    local z = recur.randn(8, 3):mul(3)
    local greedy = model:generate(z, {length = 12})
    local ended = 0
    for b = 1, 8 do
      local hyp = model:beam_search(z:select(1, b), {beam_size = 1, length = 12})[1]
      assert.are.same(greedy[b], hyp.ids)
      if hyp.ended then ended = ended + 1 end
    end
    assert(ended >= 1 and ended < 8, "both ended and length-limited sequences are compared")
    -- a row stops at end_id; the others run on
    for b = 1, 8 do
      for i, id in ipairs(greedy[b]) do
        if id == 2 then assert.are.equal(#greedy[b], i) end
      end
    end
    recur.manual_seed(8)
    local a = model:generate(z, {length = 12, temperature = 1})
    recur.manual_seed(8)
    assert.are.same(a, model:generate(z, {length = 12, temperature = 1}))
  end)

  it("learns to spell a phrase per class (greedy and beam exact)", function()
    recur.manual_seed(9)
    -- 4 classes, one-hot, each -> its own phrase over tokens 4..9, ended by 3
    local phrases = {{4, 5, 6, 3}, {4, 5, 7, 8, 3}, {9, 8, 3}, {4, 9, 9, 6, 5, 3}}
    local model = ConditionedGenerator{cond_size = 4, vocab_size = 9, start_id = 1, end_id = 3, pad_id = 2,
                                       embed = 8, hidden = 24, cell = "gru"}
    local z = recur.zeros(4, 4)
    local targets = recur.full({6, 4}, 2, "int64")
    for c, phrase in ipairs(phrases) do
      z:set(c, c, 1)
      for t, id in ipairs(phrase) do targets:set(t, c, id) end
    end
    local optimizer = recur.optim.Adam(model, {lr = 0.02})
    local first, loss = nil, nil
    for _ = 1, 120 do
      model:zero_grad()
      loss = model:train_step({z = z, y = targets})
      first = first or loss
      optimizer:step()
    end
    assert(loss < 0.05 * first, string.format("loss %.4f from %.4f", loss, first))
    local greedy = model:generate(z, {length = 10})
    for c, phrase in ipairs(phrases) do
      assert.are.same(phrase, greedy[c])
      -- length_penalty 0: with a penalty, recur.beam stops as soon as beam_size
      -- sequences have ended, even ones ranked below a live sequence that would win
      local best = model:beam_search(z:select(1, c), {beam_size = 3, length = 10, length_penalty = 0})[1]
      assert.are.same(phrase, best.ids)
    end
  end)
end)

describe("ConditionedGenerator errors", function()
  it("refuses bad options with messages naming the model", function()
    assert_error("ConditionedGenerator: cond_size must be a positive integer, got nil",
      function() ConditionedGenerator{vocab_size = 5, start_id = 1} end)
    assert_error("ConditionedGenerator: start_id must be a token id in 1..5, got 6",
      function() ConditionedGenerator{cond_size = 2, vocab_size = 5, start_id = 6} end)
    assert_error("ConditionedGenerator: end_id must be a token id in 1..5, got 0",
      function() ConditionedGenerator{cond_size = 2, vocab_size = 5, start_id = 1, end_id = 0} end)
    assert_error("ConditionedGenerator: unknown option 'hiden'",
      function() ConditionedGenerator(config{hiden = 4}) end)
    assert_error("ConditionedGenerator: unknown cell 'lstn' (lstm, gru, gru_classic, rnn, rnn_relu, rnn_identity)",
      function() ConditionedGenerator(config{cell = "lstn"}) end)
  end)

  it("refuses bad shapes with messages naming the model", function()
    local model = ConditionedGenerator(config())
    assert_error("ConditionedGenerator: the conditioning vector z must be a float32 (B,3) tensor, got float32 (2x4)",
      function() model:forward(recur.zeros(2, 4), ids({{1, 1}})) end)
    assert_error("ConditionedGenerator: forward expects inputs as an int64 (T,2) tensor of token ids, got int64 (1x3)",
      function() model:forward(recur.zeros(2, 3), ids({{1, 1, 1}})) end)
    assert_error("ConditionedGenerator: targets must be an int64 (T,B) tensor of token ids, got float32 (2x2)",
      function() model:train_step({z = recur.zeros(2, 3), y = recur.zeros(2, 2)}) end)
    assert_error("ConditionedGenerator: backward before forward",
      function() ConditionedGenerator(config()):backward(recur.zeros(2, 3), recur.zeros(1, 2, 7)) end)
    assert_error("ConditionedGenerator: step needs a state {h =, c =}; start from initial_state(z)",
      function() model:step(ids({1}), nil) end)
    assert_error("ConditionedGenerator: beam_search takes one conditioning vector, got (2x3)",
      function() model:beam_search(recur.zeros(2, 3)) end)
    assert_error("ConditionedGenerator:generate: unknown option 'temp'",
      function() model:generate(recur.zeros(1, 3), {temp = 1}) end)
  end)
end)
