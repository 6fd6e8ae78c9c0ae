-- Forecaster: one-step-ahead prediction of a real-valued series with a stacked
-- recurrent network, as a PyTorch user builds it with nn.LSTM and nn.Linear.
--
--   x (T,B,D) D features per step -> rnn: LSTM | GRU | RNN, L layers of H (dropout
--     between layers) -> (T,B,H) -> dropout -> head: Linear(H,F) -> pred (T,B,F)
--
-- pred[t] predicts the F target features of step t+1 (F = D by default: the series
-- itself), trained with MSE against targets one step ahead at every position
-- (recur.data.series.Batcher serves such x, y). Parameter names: rnn.weight_ih_l0, ...,
-- head.weight, head.bias.
-- The hidden state is carried from chunk to chunk (truncated BPTT): `state` is a table
-- {h = (L,B,H), c = (L,B,H) for the LSTM}, nil for zeros; gradients stop at chunk
-- boundaries. forecast(history, horizon) warms up on a history and then feeds its own
-- predictions back one step at a time through the layers' step kernels (needs F = D).
-- Memory between forward and backward: the rnn's saved activations (about 6*L*T*B*H
-- floats for the LSTM), its output (T*B*H), the predictions and their gradient
-- (2*T*B*F). The predictions forward returns are the head's buffer, overwritten by the
-- next forward of the same shape: clone them to keep them.
local core = require "recur.core"
local nn = require "recur.nn"
local util = require "recur.nn.util"
local Model = require "recur.models.Model"

local Forecaster = util.class("Forecaster", Model)
Forecaster.kind = "forecast"
Forecaster.loss_kind = "mse"
Forecaster.perplexity = false

local DEFAULTS = {hidden = 64, layers = 2, cell = "lstm", dropout = 0}
local KEYS = {input_size = true, output_size = true, hidden = true, layers = true, cell = true, dropout = true}

-- config: input_size D (required), output_size F (default D), hidden (64), layers (2),
-- cell (nn.cells: "lstm", "gru", ...), dropout (0: between the layers and before the head).
function Forecaster:__init(config)
  Model.__init(self)
  local c = Model.configure("Forecaster", config, DEFAULTS, KEYS)
  c.input_size = util.check_positive_int("Forecaster", "config.input_size", c.input_size)
  c.output_size = util.check_positive_int("Forecaster", "config.output_size", c.output_size or c.input_size)
  c.hidden = util.check_positive_int("Forecaster", "config.hidden", c.hidden)
  c.layers = util.check_positive_int("Forecaster", "config.layers", c.layers)
  local stack = nn.stack_class("Forecaster", c.cell)
  util.opt_number("Forecaster", c, "dropout", nil, 0, 1, true)
  self.config = c
  -- the stack's own dropout acts between layers only, and it refuses one for a single layer
  local between = c.layers > 1 and c.dropout or 0
  self.rnn = self:register_module("rnn", stack(c.input_size, c.hidden, {num_layers = c.layers, dropout = between}))
  self.drop = self:register_module("drop", nn.Dropout(c.dropout))
  self.head = self:register_module("head", nn.Linear(c.hidden, c.output_size))
  self.criterion = nn.MSE()
  self.is_lstm = c.cell == "lstm"
end

-- name -> shape of the parameters Forecaster(config) registers, computed without building
-- the model (config's keys and the sizes it reads are checked): what recur.checkpoint
-- compares a file's tensors with before it allocates anything.
function Forecaster.parameter_shapes(config)
  local c = Model.configure("Forecaster", config, DEFAULTS, KEYS)
  local D = util.check_positive_int("Forecaster", "config.input_size", c.input_size)
  local F = util.check_positive_int("Forecaster", "config.output_size", c.output_size or D)
  local H = util.check_positive_int("Forecaster", "config.hidden", c.hidden)
  local L = util.check_positive_int("Forecaster", "config.layers", c.layers)
  local shapes = {["head.weight"] = {F, H}, ["head.bias"] = {F}}
  return nn.stack_shapes("Forecaster", shapes, "rnn.", c.cell, D, H, L, false)
end

-- x must be a (T,B,D) tensor of the module's dtype: errors name the operation.
function Forecaster:_check_input(op, what, x, ndim)
  util.check_input("Forecaster:" .. op, what, x, self.dtype, ndim, 4)
  local D = self.config.input_size
  if x:size(ndim) ~= D then
    error(string.format("Forecaster:%s: %s has shape %s, expected %d features in the last dim", op, what,
      util.shape_str(x), D), 3)
  end
end

-- Predictions (T,B,F) of the next step at every position of x (T,B,D), and the state
-- after the chunk.
function Forecaster:forward(x, state)
  self:_check_input("forward", "input", x, 3)
  state = state or {}
  local y, hn, cn = self.rnn:forward(x, state.h, state.c)
  self._y = y
  self._y_d = self.drop:forward(y)
  self.pred = self.head:forward(self._y_d)
  return self.pred, {h = hn, c = cn}
end

-- Accumulates parameter gradients for the last forward and returns the gradient of its
-- input x; the state's gradient is dropped (truncated BPTT).
function Forecaster:backward(x, gpred)
  local gy_d = self.head:backward(self._y_d, gpred)
  local gy = self.drop:backward(self._y, gy_d)
  return (self.rnn:backward(x, gy))
end

-- One training chunk, batch {x = (T,B,D), y = (T,B,F)}: forward, MSE, backward.
-- Gradients are added to the module's (zero them first). Returns the loss, the carried
-- state and the number of target values.
function Forecaster:train_step(batch, state)
  local x, y = batch.x, batch.y
  local pred, next_state = self:forward(x, state)
  local loss = self.criterion:forward(pred, y)
  self:backward(x, self.criterion:backward(pred, y))
  return loss, next_state, y:numel()
end

-- The MSE of one chunk without backward (Model:evaluate_batches averages it).
function Forecaster:batch_loss(batch, state)
  local pred, next_state = self:forward(batch.x, state)
  return self.criterion:forward(pred, batch.y), batch.y:numel(), next_state
end

-- The prediction (B,F) after one more input step x_t (B,D), and the state after it.
-- Runs the layers' single-step kernels (no activations saved, no dropout). The state is
-- advanced in place and returned (the same table when one is given), and the
-- prediction is the head's buffer, overwritten by the next step.
function Forecaster:step(x_t, state)
  self:_check_input("step", "input", x_t, 2)
  local B = x_t:size(1)
  state = state or {}
  local h, c = self:step_state(state, B)
  local y = self.rnn:step(x_t:contiguous(), h, c)   -- (B,H), the top layer's h
  state.h, state.c = h, c
  return self.head:forward(y), state
end

-- Forecasts (horizon,B,D) of the steps after history (T0,B,D): one forward over the
-- history (from `state`, nil for zeros) gives the first, then each prediction is fed
-- back as the next input through `step`. Runs in evaluation mode; the history and the
-- given state are not modified. Returns a new tensor.
function Forecaster:forecast(history, horizon, state)
  local D, F = self.config.input_size, self.config.output_size
  if F ~= D then
    error(string.format("Forecaster:forecast: feeding predictions back as inputs needs output_size == input_size, got F = %d and D = %d", F, D), 2)
  end
  self:_check_input("forecast", "history", history, 3)
  local h = type(horizon) == "number" and math.tointeger(horizon) or nil
  if not h or h < 1 then
    error("Forecaster:forecast: horizon must be a positive integer, got " .. tostring(horizon), 2)
  end
  local was_training = self.training
  self:evaluate()
  local T0, B = history:size(1), history:size(2)
  local pred, st = self:forward(history, state)
  local out = core.empty({h, B, D}, self.dtype)
  out:select(1, 1):copy_(pred:select(1, T0))
  for k = 2, h do
    out:select(1, k):copy_((self:step(out:select(1, k - 1), st)))
  end
  self:train(was_training)
  return out
end

return Forecaster
