-- nn.Attention, one decoder step forward + backward, float32: B=64 sequences over a
-- memory of S=30 positions, H=256 (query, memory and attention sizes), every score
-- form. T=30 forward_steps fill the tape, then T backward_steps empty it (with the
-- memory-side products at the end); the time of the whole round is divided by T.
-- Prints milliseconds per step (the median and the fastest of the rounds, wall clock,
-- and the process's CPU time per step), the tokens (B per step) per second, and the
-- ratio to a peer measured in the same run: one step of an LSTM layer of the same sizes
-- (B=64, D=H=256, forward + backward over the T steps, divided by T), the decoder cost
-- the attention adds to. bench/attention_step_torch.py times PyTorch the same way.
-- On a machine shared with other work the wall clock counts the time the process
-- waits for a core; with one thread its CPU time does not, so the ratios and tokens/s
-- are taken from the CPU time when RECUR_BENCH_THREADS=1, from the fastest round
-- otherwise.
--
--   lua5.4 bench/attention_step.lua [iters]     (after make, from any directory)
-- RECUR_BENCH_THREADS (default 2) sets the thread count.
dofile((arg[0]:match("^(.*)/") or ".") .. "/../examples/checkout.lua")
local recur = require "recur"
local core = recur.core

local B, S, H, T = 64, 30, 256, 30
local THREADS = tonumber(os.getenv("RECUR_BENCH_THREADS")) or 2
local iters = tonumber(arg and arg[1]) or 10

core.set_num_threads(THREADS)
recur.manual_seed(123)

-- seconds of fn over iters runs, after two warm-up runs: {median, min (wall clock),
-- cpu (process CPU time, mean), cost (what the ratios use)}, each divided by `per`
local function time_of(fn, per)
  for _ = 1, 2 do fn() end
  local times = {}
  local c0 = os.clock()
  for i = 1, iters do
    local t0 = core.now()
    fn()
    times[i] = core.now() - t0
  end
  local cpu = (os.clock() - c0) / iters
  table.sort(times)
  local r = {median = times[(iters + 1) // 2] / per, min = times[1] / per, cpu = cpu / per}
  r.cost = THREADS == 1 and r.cpu or r.min
  return r
end

local function ms(r)
  return string.format("%.3f ms (min %.3f, cpu %.3f)", r.median * 1e3, r.min * 1e3, r.cpu * 1e3)
end

-- the peer: an LSTM layer over the T steps
local lstm = recur.nn.LSTM(H, H)
local x, gy = recur.randn({T, B, H}), recur.randn({T, B, H})
local lstm_step = time_of(function()
  lstm:forward(x)
  lstm:backward(x, gy)
end, T)

local memory = recur.randn({S, B, H})
local lengths = {}
for b = 1, B do lengths[b] = S - (b - 1) % 10 end -- a padded batch, 21..30
lengths = recur.tensor(lengths, "int64")
local queries, gcontexts = recur.randn({T, B, H}), recur.randn({T, B, H})

print(string.format("recur attention step B=%d S=%d H=%d float32, %d threads, median of %d rounds of T=%d steps",
  B, S, H, THREADS, iters, T))
print(string.format("  peer: lstm layer step (B=%d D=H=%d) forward+backward %s", B, H, ms(lstm_step)))
for _, score in ipairs({"dot", "general", "concat", "additive"}) do
  local attn = recur.nn.Attention{score = score, query_size = H, memory_size = H,
    attn_size = (score == "concat" or score == "additive") and H or nil}
  local step = time_of(function()
    attn:set_memory(memory, lengths)
    for t = 1, T do attn:forward_step(queries:select(1, t)) end
    for t = T, 1, -1 do attn:backward_step(gcontexts:select(1, t)) end
    attn:memory_grad()
  end, T)
  local fwd = time_of(function()
    for t = 1, T do attn:attend(queries:select(1, t)) end
  end, T)
  print(string.format("  %-8s forward+backward %s per step: %.0f tokens/s, %.2fx the lstm step", score,
    ms(step), B / step.cost, step.cost / lstm_step.cost))
  print(string.format("  %-8s attend (no tape)  %s per step", "", ms(fwd)))
end
