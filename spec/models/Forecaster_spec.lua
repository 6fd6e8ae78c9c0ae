-- recur.models.Forecaster: exact gradients of its MSE loss, forecasts equal to the loop
-- a user would write by hand, training that beats the naive forecast, clear errors.
local recur = require "recur"
local nn = recur.nn
local series = require "recur.data.series"
local Forecaster = require "recur.models.Forecaster"

-- The model's MSE loss as a module for recur.gradcheck: forward(x, y, h0, c0) returns
-- the loss as a one-element tensor, so the checked scalar is loss * R and every
-- parameter's gradient (and the input's) comes from the model's own backward.
local LossOf = require("recur.nn.util").class("LossOf", nn.Module)
function LossOf:__init(model)
  nn.Module.__init(self)
  self.model = self:register_module("model", model)
end
function LossOf:forward(x, y, h0, c0)
  local state = h0 and {h = h0, c = c0} or nil
  self.pred = self.model:forward(x, state)
  self.y = y
  return recur.tensor({self.model.criterion:forward(self.pred, y)}, self.dtype)
end
function LossOf:backward(x, R)
  local g = self.model.criterion:backward(self.pred, self.y):mul_(R:get(1))
  return self.model:backward(x, g)
end

-- The forecast as a user writes it without forecast(): forward over the history, then
-- the last prediction fed back through forward with T = 1 and the carried state.
local function forecast_by_hand(model, history, horizon, state)
  local T0, B, D = history:size(1), history:size(2), history:size(3)
  local pred
  pred, state = model:forward(history, state)
  local out = recur.zeros({horizon, B, D}, "float64")
  local prev = pred:select(1, T0):clone()
  out:select(1, 1):copy_(prev)
  for k = 2, horizon do
    pred, state = model:forward(prev:view(1, B, D), state)
    prev = pred:select(1, 1):clone()
    out:select(1, k):copy_(prev)
  end
  return out
end

describe("Forecaster", function()
  it("runs on Lua 5.4", function()
    assert.are.equal("Lua 5.4", _VERSION)
  end)

  it("predicts (T,B,F) and names its parameters as PyTorch", function()
    local m = Forecaster{input_size = 3, output_size = 2, hidden = 5, layers = 2, cell = "gru"}
    local _, names = m:named_parameters()
    assert.are.equal("rnn.weight_ih_l0", names[1])
    assert.are.equal("head.bias", names[#names])
    local pred, state = m:forward(recur.randn({4, 2, 3}))
    assert.are.same({4, 2, 2}, pred:size())
    assert.are.same({2, 2, 5}, state.h:size())
    assert.is_nil(state.c)
  end)

  describe("gradients of the MSE loss match finite differences in float64", function()
    for _, cell in ipairs({"lstm", "gru", "rnn"}) do
      it(cell .. ", two layers, dropout, carried state, F ~= D", function()
        recur.manual_seed(11)
        local m = Forecaster{input_size = 2, output_size = 1, hidden = 3, layers = 2, cell = cell, dropout = 0.3}
        local x = recur.randn({4, 2, 2}, "float64")
        local y = recur.randn({4, 2, 1}, "float64")
        local h0 = recur.randn({2, 2, 3}, "float64")
        local c0 = cell == "lstm" and recur.randn({2, 2, 3}, "float64") or nil
        -- Some gradient elements are as small as 1e-7 (inputs of the last steps), where
        -- the rounding of the differences shows: with eps 1e-5 it grows to 1e-5 of
        -- them, with eps 1e-4 it stays near 1e-6, and the floor of 1e-6 keeps the
        -- smallest from scoring rounding as error. A gradient off by 1% scores 5e-3.
        local r = recur.gradcheck(LossOf(m), {x, y, h0, c0}, {eps = 1e-4, floor = 1e-6})
        assert(r.max_error < 1e-5, tostring(r))
        assert.are.equal(#m:parameters(), #r.names)
        assert.is_not_nil(r.inputs[1])          -- the input gradient is checked too
        assert.is_nil(r.inputs[2])
      end)
    end
  end)

  describe("forecast", function()
    for _, cell in ipairs({"lstm", "gru"}) do
      it("equals the hand-rolled loop of forward with T = 1 (" .. cell .. ")", function()
        recur.manual_seed(21)
        local m = Forecaster{input_size = 2, hidden = 6, layers = 2, cell = cell}:double()
        local history = recur.randn({7, 3, 2}, "float64")
        local before = history:clone()
        local f = m:forecast(history, 5)
        assert.are.same({5, 3, 2}, f:size())
        local expected = forecast_by_hand(m, history, 5)
        assert.is_true((f - expected):abs():max() < 1e-6)
        assert.are.equal(0, (history - before):abs():max())
        -- from a given state as well, which forecast leaves untouched
        local state = {h = recur.randn({2, 3, 6}, "float64")}
        if cell == "lstm" then state.c = recur.randn({2, 3, 6}, "float64") end
        local h_before = state.h:clone()
        local fs = m:forecast(history, 4, state)
        assert.is_true((fs - forecast_by_hand(m, history, 4, state)):abs():max() < 1e-6)
        assert.is_true((fs - f:narrow(1, 1, 4)):abs():max() > 1e-6)   -- the state mattered
        assert.are.equal(0, (state.h - h_before):abs():max())
      end)
    end

    it("runs in evaluation mode (no dropout) and restores training mode", function()
      recur.manual_seed(22)
      local m = Forecaster{input_size = 1, hidden = 4, layers = 2, dropout = 0.5}:double()
      local history = recur.randn({5, 2, 1}, "float64")
      local a = m:forecast(history, 3)
      assert.is_true(m.training)
      local b = m:forecast(history, 3)
      assert.are.equal(0, (a - b):abs():max())
      m:evaluate()
      assert.is_true((a - forecast_by_hand(m, history, 3)):abs():max() < 1e-6)
    end)

    it("a step equals forward over one time step", function()
      recur.manual_seed(23)
      local m = Forecaster{input_size = 2, hidden = 4, layers = 2}:double()
      local x = recur.randn({1, 3, 2}, "float64")
      local state = {h = recur.randn({2, 3, 4}, "float64"), c = recur.randn({2, 3, 4}, "float64")}
      local expected, next_state = m:forward(x, state)
      expected = expected:clone()
      local got, s = m:step(x:select(1, 1), {h = state.h:clone(), c = state.c:clone()})
      assert.is_true((got - expected:select(1, 1)):abs():max() < 1e-12)
      assert.is_true((s.h - next_state.h):abs():max() < 1e-12)
      assert.is_true((s.c - next_state.c):abs():max() < 1e-12)
    end)
  end)

  it("a short seeded run on a clean sine beats the naive forecast by far", function()
    recur.manual_seed(3)
    local vals = {}
    for t = 1, 1000 do vals[t] = math.sin(2 * math.pi * t / 20) end
    local train, val = recur.data.split(series.tensor(vals), {val_frac = 0.2})
    local scaler = series.Scaler.fit(train)
    local train_b = series.Batcher.new(scaler:transform(train), {batch_size = 8, seq_length = 25})
    local val_b = series.Batcher.new(scaler:transform(val), {batch_size = 1, seq_length = 50})
    local m = Forecaster{input_size = 1, hidden = 16, layers = 1}
    local trainer = recur.train.Trainer{model = m, optimizer = recur.optim.Adam(m, {lr = 1e-2}),
      batcher = train_b, val_batcher = val_b, clip = 5, max_epochs = 1000, max_iters = 300,
      eval_every = 100, progress = false}
    trainer:run()
    local net, naive = m:evaluate_batches(val_b), series.naive_mse(val_b)
    -- about 0.004 of the naive MSE when written; the naive forecast is far from perfect
    assert(net < 0.05 * naive, string.format("one step: network %.5f, naive %.5f", net, naive))
    assert(naive > 0.05)
    -- ten steps ahead from 40 steps of history, on windows of the validation part
    local w = series.windows(scaler:transform(val), 50, {stride = 5})
    local history, future = w:narrow(1, 1, 40):contiguous(), w:narrow(1, 41, 10)
    local net_h = series.mse(m:forecast(history, 10), future)
    local naive_h = series.mse(series.naive_forecast(history, 10), future)
    assert(net_h < 0.01 * naive_h, string.format("ten steps: network %.5f, naive %.5f", net_h, naive_h))
    -- one season back is exact on a clean sine of period 20
    assert.is_true(series.mse(series.naive_forecast(history, 10, {season = 20}), future) < 1e-10)
  end)

  describe("errors name the operation", function()
    it("config", function()
      assert.has_error(function() Forecaster{hidden = 4} end,
        "Forecaster: config.input_size must be a positive integer, got nil")
      assert.has_error(function() Forecaster{input_size = 2, cell = "transformer"} end,
        "Forecaster: unknown cell 'transformer' (lstm, gru, gru_classic, rnn, rnn_relu, rnn_identity)")
      assert.has_error(function() Forecaster{input_size = 2, dropout = 1} end,
        "Forecaster: option dropout must be a number in [0, 1), got 1")
      assert.has_error(function() Forecaster{input_size = 2, hiden = 4} end)
      assert.has_error(function() Forecaster(2) end, "Forecaster: expected a config table, got number")
    end)

    it("shapes", function()
      local m = Forecaster{input_size = 2, hidden = 3, layers = 1}
      assert.has_error(function() m:forward(recur.randn({4, 2, 3})) end,
        "Forecaster:forward: input has shape (4x2x3), expected 2 features in the last dim")
      assert.has_error(function() m:forward(recur.randn({4, 2})) end)
      assert.has_error(function() m:forecast(recur.randn({4, 2, 3}), 2) end,
        "Forecaster:forecast: history has shape (4x2x3), expected 2 features in the last dim")
      assert.has_error(function() m:forecast(recur.randn({4, 2, 2}), 0) end,
        "Forecaster:forecast: horizon must be a positive integer, got 0")
      assert.has_error(function() m:step(recur.randn({2, 5})) end,
        "Forecaster:step: input has shape (2x5), expected 2 features in the last dim")
    end)

    it("forecasting needs F == D", function()
      local m = Forecaster{input_size = 2, output_size = 1, hidden = 3, layers = 1}
      assert.has_error(function() m:forecast(recur.randn({4, 2, 2}), 3) end,
        "Forecaster:forecast: feeding predictions back as inputs needs output_size == input_size, got F = 1 and D = 2")
    end)
  end)
end)
