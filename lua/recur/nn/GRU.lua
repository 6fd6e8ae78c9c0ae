-- GRU: a stacked, optionally bidirectional GRU with PyTorch's parameter names (gate
-- order r, z, n).
--
--   local m = recur.nn.GRU(D, H, {num_layers = 2, reset_after = false})
--   local y, hn = m:forward(x, h0, nil, lengths)   -- or m:forward(x, {h0 = h0, lengths = l})
--   local gx, gh0 = m:backward(x, gy, ghn)
--
-- reset_after = true (default) is PyTorch's and cuDNN's GRU,
--   n = tanh(W_in x + b_in + r * (W_hn h + b_hn));
-- reset_after = false is the classic GRU of Cho et al. (2014),
--   n = tanh(W_in x + b_in + W_hn (r * h) + b_hn).
-- Other opts: num_layers (1), bidirectional, dropout, batch_first, bias, init, dtype,
-- bptt_truncate (see Stack and init_schemes).
local util = require "recur.nn.util"
local Stack = require "recur.nn.Stack"

local GRU = util.class("GRU", Stack)

function GRU:__init(D, H, opts)
  opts = util.check_opts("GRU", opts, {num_layers = true, bidirectional = true, dropout = true,
    batch_first = true, bias = true, init = true, reset_after = true, dtype = true,
    bptt_truncate = true})
  local layers = {}
  for k = 1, util.check_positive_int("GRU", "num_layers", opts.num_layers or 1) do layers[k] = "gru" end
  local rest = {}
  for k, v in pairs(opts) do if k ~= "num_layers" then rest[k] = v end end
  Stack.__init(self, D, H, layers, rest)
end

return GRU
