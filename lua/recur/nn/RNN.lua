-- RNN: a stacked, optionally bidirectional Elman RNN with PyTorch's parameter names,
-- h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), act tanh (default), relu or identity
-- (the linear RNN: h_t is unbounded, and grows or decays geometrically with the spectral
-- radius of W_hh; PyTorch's nn.RNN has no such option).
--
--   local m = recur.nn.RNN(D, H, {nonlinearity = "relu", num_layers = 2})
--   local y, hn = m:forward(x, h0)
--   local gx, gh0 = m:backward(x, gy, ghn)
--
-- Other opts: num_layers (1), bidirectional, dropout, batch_first, bias, init, dtype,
-- bptt_truncate (see Stack and init_schemes).
local util = require "recur.nn.util"
local Stack = require "recur.nn.Stack"

local RNN = util.class("RNN", Stack)

function RNN:__init(D, H, opts)
  opts = util.check_opts("RNN", opts, {num_layers = true, bidirectional = true, dropout = true,
    batch_first = true, bias = true, init = true, nonlinearity = true, dtype = true,
    bptt_truncate = true})
  local act = opts.nonlinearity or "tanh"
  if act ~= "tanh" and act ~= "relu" and act ~= "identity" then
    error("RNN: nonlinearity must be 'tanh', 'relu' or 'identity', got " .. tostring(act), 2)
  end
  self.nonlinearity = act
  local layers = {}
  for k = 1, util.check_positive_int("RNN", "num_layers", opts.num_layers or 1) do
    layers[k] = "rnn_" .. act
  end
  local rest = {}
  for k, v in pairs(opts) do
    if k ~= "num_layers" and k ~= "nonlinearity" then rest[k] = v end
  end
  Stack.__init(self, D, H, layers, rest)
end

return RNN
