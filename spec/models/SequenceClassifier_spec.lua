-- recur.models.SequenceClassifier: float64 gradient checks of the loss through padded
-- and bidirectional stacks, logits equal to a hand-assembled h_n at each sequence's
-- own last step, padding that changes nothing, a short training run that learns
-- parity, and the errors.
local recur = require "recur"
local util = require "recur.nn.util"
local Module = require "recur.nn.Module"
local SequenceClassifier = require "recur.models.SequenceClassifier"

it("runs on Lua 5.4", function()
  assert.are.equal("Lua 5.4", _VERSION)
end)

-- The model's mean cross-entropy against fixed targets as a module with one output,
-- so that recur.gradcheck checks the loss's gradient w.r.t. every parameter.
local LossOf = util.class("LossOf", Module)
function LossOf:__init(model, targets)
  Module.__init(self)
  self.model = self:register_module("model", model)
  self.targets = targets
end
function LossOf:forward(x, lengths)
  local logits = self.model:forward(x, lengths)
  return recur.tensor({self.model.criterion:forward(logits, self.targets)}, self.dtype)
end
function LossOf:backward(x, gloss)
  local g = self.model.criterion:backward(self.model.logits, self.targets):mul(gloss:get(1))
  return self.model:backward(x, g)
end

local function ids(rows) return recur.tensor(rows, "int64") end

local function max_abs_diff(a, b)
  return (a:to("float64") - b:to("float64")):abs():max()
end

local function error_of(fn)
  local ok, err = pcall(fn)
  assert.is_false(ok, "expected an error")
  return tostring(err)
end

local function assert_error(expected, fn)
  local err = error_of(fn)
  assert(err:find(expected, 1, true), "expected '" .. expected .. "' in: " .. err)
end

describe("SequenceClassifier gradients (float64 finite differences)", function()
  -- T = 5, B = 4, lengths of every kind: full, short, one step
  local lengths = ids({5, 2, 4, 1})
  local targets = ids({1, 3, 2, 3})

  local cases = {
    {"token ids, 2-layer bidirectional LSTM, padded", {vocab_size = 6, embed = 3, cell = "lstm", layers = 2,
      bidirectional = true}},
    {"token ids, 2-layer GRU with dropout, padded", {vocab_size = 6, embed = 3, cell = "gru", layers = 2,
      dropout = 0.3}},
    {"features, bidirectional RNN, padded", {input_size = 3, cell = "rnn", bidirectional = true}},
    {"features, 1-layer LSTM, no lengths", {input_size = 3, cell = "lstm"}, false},
  }
  for i, case in ipairs(cases) do
    it(case[1] .. ": every parameter (and the features)", function()
      recur.manual_seed(10 + i)
      local config = {num_classes = 3, hidden = 3}
      for k, v in pairs(case[2]) do config[k] = v end
      local model = SequenceClassifier(config)
      local x
      if config.vocab_size then
        x = ids({{1, 2, 3, 4}, {5, 6, 1, 2}, {3, 4, 5, 6}, {2, 1, 6, 5}, {4, 4, 2, 1}})
      else
        x = recur.randn(5, 4, 3)
      end
      -- floor 1e-6: some first-layer gradients of the mean loss are ~1e-8, where the
      -- central differences' rounding (~1e-11) alone is a relative error of 1e-4
      local report = recur.gradcheck(LossOf(model, targets), {x, case[3] ~= false and lengths or nil},
        {floor = 1e-6})
      assert(report.max_error < 1e-5, tostring(report))
      local _, names = model:named_parameters()
      assert.are.equal(#names, #report.names)
      if not config.vocab_size then assert.is_not_nil(report.inputs[1]) end
    end)
  end

  it("the last layer's reverse rows receive gradient (the state after step 1)", function()
    recur.manual_seed(3)
    local model = SequenceClassifier{input_size = 2, num_classes = 2, hidden = 3, bidirectional = true, cell = "gru"}
    local x = recur.randn(4, 2, 2)
    model:zero_grad()
    model:train_step({x = x, labels = ids({1, 2}), lengths = ids({4, 2})})
    assert(model.rnn:gradient("weight_ih_l0_reverse"):abs():max() > 0)
    assert(model.rnn:gradient("weight_ih_l0"):abs():max() > 0)
  end)
end)

describe("SequenceClassifier logits", function()
  -- logits (B,C) by hand: each sequence alone, cut at its length, through the model's
  -- own embedding and stack without lengths; the forward state at its last step and
  -- the reverse state at its first step; then the head's arithmetic in Lua.
  local function by_hand(model, x, lengths)
    local H, dirs = model.config.hidden, model.dirs
    local W, bias = model.fc.weight:totable(), model.fc.bias:totable()
    local rows = {}
    for b, n in ipairs(lengths:totable()) do
      local xb = x:narrow(2, b, 1):narrow(1, 1, n):contiguous()
      local input = model.embedding and model.embedding:forward(xb) or xb
      local y = model.rnn:forward(input)            -- (n,1,dirs*H)
      local rep = {}
      for k = 1, H do rep[k] = y:get(n, 1, k) end
      if dirs == 2 then
        for k = 1, H do rep[H + k] = y:get(1, 1, H + k) end
      end
      local row = {}
      for c = 1, #W do
        local s = bias[c]
        for k = 1, #rep do s = s + W[c][k] * rep[k] end
        row[c] = s
      end
      rows[b] = row
    end
    return recur.tensor(rows)
  end

  local configs = {
    {"2-layer LSTM on ids", {vocab_size = 7, embed = 4, cell = "lstm", layers = 2}},
    {"2-layer bidirectional GRU on features", {input_size = 3, cell = "gru", layers = 2, bidirectional = true}},
    {"bidirectional LSTM on ids", {vocab_size = 7, embed = 4, cell = "lstm", bidirectional = true}},
  }
  for i, case in ipairs(configs) do
    it(case[1] .. ": equal h_n at each sequence's last valid step, then the Linear", function()
      recur.manual_seed(20 + i)
      local config = {num_classes = 4, hidden = 5}
      for k, v in pairs(case[2]) do config[k] = v end
      local model = SequenceClassifier(config)
      local T, B = 6, 4
      local x
      if config.vocab_size then
        local t = {}
        for r = 1, T do
          t[r] = {}
          for b = 1, B do t[r][b] = recur.random_integer(1, 7) end
        end
        x = ids(t)
      else
        x = recur.randn(T, B, 3)
      end
      local lengths = ids({3, 6, 1, 4})
      local logits = model:forward(x, lengths):clone()
      assert.are.same({B, 4}, logits:size())
      local expected = by_hand(model, x, lengths)
      assert(max_abs_diff(logits, expected) < 1e-5, "logits differ from the hand-assembled ones")

      -- padding past each length never reaches the logits
      local changed = x:clone()
      for b, n in ipairs(lengths:totable()) do
        for t = n + 1, T do
          if config.vocab_size then
            changed:set(t, b, (x:get(t, b) % 7) + 1)
          else
            for d = 1, 3 do changed:set(t, b, d, 100 * (d - 2)) end
          end
        end
      end
      assert.are.equal(0, max_abs_diff(model:forward(changed, lengths), logits))
      -- and the padding does change the logits without lengths (the check has teeth)
      local unpadded = model:forward(changed):clone()
      assert(max_abs_diff(unpadded, model:forward(x)) > 1e-4)
    end)
  end

  it("lengths all equal to T are the same as no lengths", function()
    recur.manual_seed(5)
    local model = SequenceClassifier{input_size = 2, num_classes = 3, hidden = 4, bidirectional = true}
    local x = recur.randn(5, 3, 2)
    local a = model:forward(x):clone()
    local b = model:forward(x, ids({5, 5, 5}))
    assert(max_abs_diff(a, b) < 1e-6)
  end)

  it("predict is the argmax of the logits; accuracy counts matches", function()
    recur.manual_seed(6)
    local model = SequenceClassifier{vocab_size = 4, num_classes = 3, hidden = 4, dropout = 0.5, layers = 2}
    local x, lengths = ids({{1, 2, 3}, {4, 1, 2}}), ids({2, 1, 2})
    local predicted = model:predict(x, lengths)
    assert.is_true(model.training)                   -- predict restores the mode
    model:evaluate()
    local logits = model:forward(x, lengths)
    for b = 1, 3 do
      local row = logits:select(1, b):totable()
      local best = 1
      for c = 2, 3 do if row[c] > row[best] then best = c end end
      assert.are.equal(best, predicted:get(b))
    end
    local targets = predicted:clone()
    targets:set(2, targets:get(2) % 3 + 1)
    local fraction, correct = model:accuracy(x, targets, lengths)
    assert.are.equal(2, correct)
    assert.are.near(2 / 3, fraction, 1e-12)
  end)
end)

describe("SequenceClassifier training", function()
  it("learns the parity of bit strings of length 1..6 (accuracy >= 0.95, chance 0.5)", function()
    recur.manual_seed(3)
    local model = SequenceClassifier{vocab_size = 2, num_classes = 2, embed = 4, hidden = 16, cell = "gru"}
    local optimizer = recur.optim.Adam(model, {lr = 0.02})
    local function batch(B)
      local x = recur.ones({6, B}, "int64")
      local labels, lengths = recur.zeros({B}, "int64"), recur.zeros({B}, "int64")
      for b = 1, B do
        local n, parity = recur.random_integer(1, 6), 0
        for t = 1, n do
          local bit = recur.random_integer(0, 1)
          parity = parity ~ bit
          x:set(t, b, bit + 1)
        end
        labels:set(b, parity + 1)
        lengths:set(b, n)
      end
      return x, labels, lengths
    end
    local x, labels, lengths = batch(500)
    local before = model:accuracy(x, labels, lengths)
    for _ = 1, 150 do
      local bx, by, bl = batch(32)
      model:zero_grad()
      model:train_step({x = bx, labels = by, lengths = bl})
      optimizer:step()
    end
    local after = model:accuracy(x, labels, lengths)
    local odd = labels:sum() - 500
    local baseline = math.max(odd, 500 - odd) / 500
    assert(baseline < 0.6, "the test set is balanced")
    assert(before < 0.8, "untrained accuracy " .. before)
    assert(after >= 0.95, string.format("accuracy %.3f after training (%.3f before)", after, before))
  end)
end)

describe("SequenceClassifier errors", function()
  it("refuses bad options with messages naming the model", function()
    assert_error("SequenceClassifier: give exactly one of vocab_size (token ids) and input_size (real features)",
      function() SequenceClassifier{num_classes = 2} end)
    assert_error("SequenceClassifier: give exactly one of vocab_size",
      function() SequenceClassifier{num_classes = 2, vocab_size = 3, input_size = 2} end)
    assert_error("SequenceClassifier: num_classes must be a positive integer, got nil",
      function() SequenceClassifier{vocab_size = 3} end)
    assert_error("SequenceClassifier: unknown cell 'transformer' (lstm, gru, gru_classic, rnn, rnn_relu, rnn_identity)",
      function() SequenceClassifier{vocab_size = 3, num_classes = 2, cell = "transformer"} end)
    assert_error("SequenceClassifier: unknown option 'bidirectonal'",
      function() SequenceClassifier{vocab_size = 3, num_classes = 2, bidirectonal = true} end)
    assert_error("SequenceClassifier: option dropout must be a number in [0, 1), got 1",
      function() SequenceClassifier{vocab_size = 3, num_classes = 2, dropout = 1} end)
    assert_error("SequenceClassifier: hidden must be a positive integer, got 0",
      function() SequenceClassifier{input_size = 3, num_classes = 2, hidden = 0} end)
  end)

  it("refuses bad inputs and lengths with messages naming the model", function()
    local m = SequenceClassifier{vocab_size = 3, num_classes = 2, hidden = 2}
    assert_error("SequenceClassifier: forward expects token ids as an int64 (T,B) tensor, got float32 (2x2)",
      function() m:forward(recur.zeros(2, 2)) end)
    assert_error("SequenceClassifier: backward before forward", function() m:backward(nil, recur.zeros(2, 2)) end)
    local x = ids({{1, 2}, {3, 1}})
    assert_error("SequenceClassifier: lengths must be an int64 tensor of 2 lengths (one per sequence), got int64 (3)",
      function() m:forward(x, ids({1, 2, 2})) end)
    assert_error("SequenceClassifier: lengths must lie in 1..2 (the padded length T), got 0..2",
      function() m:forward(x, ids({0, 2})) end)
    assert_error("SequenceClassifier: lengths must lie in 1..2 (the padded length T), got 1..3",
      function() m:forward(x, ids({3, 1})) end)
    assert_error("SequenceClassifier: accuracy needs int64 targets with one class per sequence (2)",
      function() m:accuracy(x, recur.zeros(2)) end)
    local f = SequenceClassifier{input_size = 3, num_classes = 2, hidden = 2}
    assert_error("SequenceClassifier: forward expects features as a float (T,B,3) tensor, got float32 (2x2x4)",
      function() f:forward(recur.zeros(2, 2, 4)) end)
    assert_error("SequenceClassifier: forward expects features as a float (T,B,3) tensor, got int64 (2x2)",
      function() f:forward(x) end)
  end)
end)
