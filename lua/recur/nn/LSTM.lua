-- LSTM: a stacked, optionally bidirectional LSTM with PyTorch's parameter names and
-- semantics (gate order i, f, g, o).
--
--   local m = recur.nn.LSTM(D, H, {num_layers = 2, bidirectional = true})
--   local y, hn, cn = m:forward(x, h0, c0, lengths)   -- see Stack for shapes
--   local gx, gh0, gc0 = m:backward(x, gy, ghn, gcn)
--
-- opts: num_layers (1), bidirectional, dropout, batch_first, bias, init,
-- forget_bias, dtype, bptt_truncate: see Stack and init_schemes.
local util = require "recur.nn.util"
local Stack = require "recur.nn.Stack"

local LSTM = util.class("LSTM", Stack)

function LSTM:__init(D, H, opts)
  opts = util.check_opts("LSTM", opts, {num_layers = true, bidirectional = true, dropout = true,
    batch_first = true, bias = true, init = true, forget_bias = true, dtype = true,
    bptt_truncate = true})
  local layers = {}
  for k = 1, util.check_positive_int("LSTM", "num_layers", opts.num_layers or 1) do layers[k] = "lstm" end
  local rest = {}
  for k, v in pairs(opts) do if k ~= "num_layers" then rest[k] = v end end
  Stack.__init(self, D, H, layers, rest)
end

return LSTM
