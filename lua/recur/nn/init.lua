-- recur.nn: layers and losses, torch/nn style with PyTorch's parameter names.
--
-- Every class is callable: recur.nn.Linear(D, H), recur.nn.LSTM(D, H, opts), ...
-- Modules: Module (base), Linear, Embedding, Dropout, Sequential, Recurrent (one
-- layer, one direction), Stack (layers of mixed cells), RNN, GRU, LSTM, Attention
-- (a decoder step's attention over an encoder's outputs).
-- Losses: CrossEntropy, BCEWithLogits, MSE (base Criterion).
-- init: the initialisation schemes (uniform_, normal_, orthogonal_, recurrent).
-- stack_class(op, cell): the constructor of a model's cell option (nn.cells lists them).
local nn = {}

local classes = {
  "Module", "Linear", "Embedding", "Dropout", "Sequential", "Recurrent", "Stack", "RNN", "GRU",
  "LSTM", "Attention", "Criterion", "CrossEntropy", "BCEWithLogits", "MSE",
}
for _, name in ipairs(classes) do nn[name] = require("recur.nn." .. name) end

nn.init = require "recur.nn.init_schemes"

-- A model's `cell` option (every model in recur.models takes one) and what it builds:
-- the family's class, and for a variant the option it fixes.
--   lstm, gru (PyTorch's reset_after), rnn (tanh)        LSTM, GRU, RNN
--   gru_classic   GRU with reset_after = false (Cho et al. 2014)
--   rnn_relu, rnn_identity   RNN with nonlinearity "relu" or "identity" (the linear RNN)
-- A variant has its family's parameters, names and shapes; only the equations differ.
local CELLS = {
  lstm = {nn.LSTM}, gru = {nn.GRU}, rnn = {nn.RNN},
  gru_classic = {nn.GRU, "reset_after", false},
  rnn_relu = {nn.RNN, "nonlinearity", "relu"},
  rnn_identity = {nn.RNN, "nonlinearity", "identity"},
}
nn.cells = {"lstm", "gru", "gru_classic", "rnn", "rnn_relu", "rnn_identity"}

-- A constructor (D, H, opts) -> stack for the model `op`'s `cell` option: the class
-- itself for lstm, gru and rnn, a function adding the variant's option for the others.
-- An unknown name is an error naming the model `op`, raised at the model
-- constructor's caller.
function nn.stack_class(op, cell)
  local entry = CELLS[cell]
  if not entry then
    error(op .. ": unknown cell '" .. tostring(cell) .. "' (" .. table.concat(nn.cells, ", ") .. ")", 3)
  end
  local class, key, value = entry[1], entry[2], entry[3]
  if key == nil then return class end
  return function(D, H, opts)
    local o = {[key] = value}
    for k, v in pairs(opts or {}) do
      if k == key and v ~= value then
        error(string.format("%s: cell '%s' sets %s = %s, got %s", op, cell, key, tostring(value),
          tostring(v)), 2)
      end
      o[k] = v
    end
    return class(D, H, o)
  end
end

-- Adds to `shapes` the name -> shape of the parameters of a stack_class(op, cell)
-- network of `layers` layers of H (bidirectional or not), named as PyTorch names them
-- after `prefix`: G gate blocks of H rows per layer and direction, layer 0 reading D
-- inputs and the others dirs*H. The models' parameter_shapes are built on it, so that
-- a checkpoint's tensors are checked against its configuration before any model is
-- allocated. Returns shapes.
local FAMILY_GATES = {lstm = 4, gru = 3, rnn = 1}
function nn.stack_shapes(op, shapes, prefix, cell, D, H, layers, bidirectional)
  nn.stack_class(op, cell)
  -- a variant counts its family's gates (gru_classic is a gru, rnn_relu an rnn)
  local G = FAMILY_GATES[cell:match("^%a+")]
  for l = 0, layers - 1 do
    for d = 1, bidirectional and 2 or 1 do
      local suffix = "_l" .. l .. (d == 2 and "_reverse" or "")
      shapes[prefix .. "weight_ih" .. suffix] = {G * H, l == 0 and D or (bidirectional and 2 or 1) * H}
      shapes[prefix .. "weight_hh" .. suffix] = {G * H, H}
      shapes[prefix .. "bias_ih" .. suffix] = {G * H}
      shapes[prefix .. "bias_hh" .. suffix] = {G * H}
    end
  end
  return shapes
end

-- Perplexity of a mean cross-entropy in nats: exp(loss).
function nn.perplexity(loss)
  return math.exp(loss)
end

return nn
