-- One LSTM layer, forward + backward (BPTT over the whole sequence), float32:
-- T=100, B=64, D=H=512 on 2 threads. Prints milliseconds per forward+backward and
-- GFLOP/s counting 2*M*N*K per GEMM (the pointwise work is not counted).
-- bench/lstm_layer_torch.py measures torch.nn.LSTM the same way.
--
--   lua5.4 bench/lstm_layer.lua [iters]        (after make, from any directory)
-- bench/ sits in a checkout: its lua/ and build/ come first (examples/checkout.lua).
dofile((arg[0]:match("^(.*)/") or ".") .. "/../examples/checkout.lua")
local recur = require "recur"
local core = recur.core

local T, B, D, H, G = 100, 64, 512, 512, 4
local THREADS = tonumber(os.getenv("RECUR_BENCH_THREADS")) or 2
local iters = tonumber(arg and arg[1]) or 10

core.set_num_threads(THREADS)
recur.manual_seed(123)

local k = 1 / math.sqrt(H) -- PyTorch's default init range
local layer = core.rnn_layer("lstm", D, H)
local x = recur.randn({T, B, D})
local w_ih, w_hh = recur.uniform({G * H, D}, -k, k), recur.uniform({G * H, H}, -k, k)
local b_ih, b_hh = recur.uniform({G * H}, -k, k), recur.uniform({G * H}, -k, k)
local gy = recur.randn({T, B, H})
local gw_ih, gw_hh = recur.zeros({G * H, D}), recur.zeros({G * H, H})
local gb_ih, gb_hh = recur.zeros({G * H}), recur.zeros({G * H})

-- The results are closed as soon as they are dead, as a training loop would do: Lua's
-- collector does not see the size of tensor storage, so it would otherwise free them
-- late and every call would fault in fresh pages (PyTorch frees by reference count).
local function fwd_bwd()
  local y, hn, cn = layer:forward(x, w_ih, w_hh, b_ih, b_hh)
  local gx, gh0, gc0 = layer:backward(gy, nil, nil, gw_ih, gw_hh, gb_ih, gb_hh)
  for _, t in ipairs({y, hn, cn, gx, gh0, gc0}) do t:close() end
end

-- forward: x w_ih^T over T*B rows, h w_hh^T per step; backward: dh w_hh per step,
-- dW_ih, dW_hh, dX over T*B rows
local flops = 3 * (2 * T * B * G * H * D + 2 * T * B * G * H * H)

for _ = 1, 2 do fwd_bwd() end -- warm-up: buffers, thread pools
local times = {}
for i = 1, iters do
  local t0 = core.now()
  fwd_bwd()
  times[i] = core.now() - t0
end
table.sort(times)
local median = times[(iters + 1) // 2]
print(string.format("recur lstm layer T=%d B=%d D=%d H=%d float32, %d threads, %d iters", T, B, D, H,
                    THREADS, iters))
print(string.format("forward+backward: %.1f ms (median; min %.1f ms), %.1f GFLOP/s",
                    median * 1e3, times[1] * 1e3, flops / median / 1e9))
