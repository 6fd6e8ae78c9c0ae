-- recur.nn: layers and losses, torch/nn style with PyTorch's parameter names.
--
-- Every class is callable: recur.nn.Linear(D, H), recur.nn.LSTM(D, H, opts), ...
-- Modules: Module (base), Linear, Embedding, Dropout, Sequential, Recurrent (one
-- layer, one direction), Stack (layers of mixed cells), RNN, GRU, LSTM.
-- Losses: CrossEntropy, BCEWithLogits, MSE (base Criterion).
-- init: the initialisation schemes (uniform_, normal_, orthogonal_, recurrent).
local nn = {}

local classes = {
  "Module", "Linear", "Embedding", "Dropout", "Sequential", "Recurrent", "Stack", "RNN", "GRU",
  "LSTM", "Criterion", "CrossEntropy", "BCEWithLogits", "MSE",
}
for _, name in ipairs(classes) do nn[name] = require("recur.nn." .. name) end

nn.init = require "recur.nn.init_schemes"

-- Perplexity of a mean cross-entropy in nats: exp(loss).
function nn.perplexity(loss)
  return math.exp(loss)
end

return nn
