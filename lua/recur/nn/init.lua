-- recur.nn: layers and losses, torch/nn style with PyTorch's parameter names.
--
-- Every class is callable: recur.nn.Linear(D, H), recur.nn.LSTM(D, H, opts), ...
-- Modules: Module (base), Linear, Embedding, Dropout, Sequential, Recurrent (one
-- layer, one direction), Stack (layers of mixed cells), RNN, GRU, LSTM.
-- Losses: CrossEntropy, BCEWithLogits, MSE (base Criterion).
-- init: the initialisation schemes (uniform_, normal_, orthogonal_, recurrent).
-- stack_class(op, cell): LSTM, GRU or RNN for a model's cell option.
local nn = {}

local classes = {
  "Module", "Linear", "Embedding", "Dropout", "Sequential", "Recurrent", "Stack", "RNN", "GRU",
  "LSTM", "Criterion", "CrossEntropy", "BCEWithLogits", "MSE",
}
for _, name in ipairs(classes) do nn[name] = require("recur.nn." .. name) end

nn.init = require "recur.nn.init_schemes"

-- The stacked class for a model's `cell` option, "lstm" | "gru" | "rnn" (the
-- models in recur.models all take this option); an unknown name is an error naming
-- the model `op`, raised at the model constructor's caller.
local STACKS = {lstm = nn.LSTM, gru = nn.GRU, rnn = nn.RNN}
function nn.stack_class(op, cell)
  local class = STACKS[cell]
  if not class then error(op .. ": unknown cell '" .. tostring(cell) .. "' (lstm, gru, rnn)", 3) end
  return class
end

-- Perplexity of a mean cross-entropy in nats: exp(loss).
function nn.perplexity(loss)
  return math.exp(loss)
end

return nn
