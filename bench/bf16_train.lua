-- Training with bf16 forward products against float32: char-rnn's default model (a
-- 2-layer 128 LSTM, embedding 64, batch 50 x 50) on tiny Shakespeare, the same seed,
-- data and schedule on both sides, the validation loss side by side.
--
--   lua5.4 bench/bf16_train.lua [--iters 2000] [--eval-every 100] [--hidden 128] [--out DIR]
--
-- bf16 is `recur train --precision bf16`: the forward's products in bfloat16 from the
-- float32 weights (rounded anew every forward), backward and the optimizer in float32.
-- The two runs go one after the other, each on one thread. Writes DIR/fp32.jsonl,
-- DIR/bf16.jsonl (the logs) and prints the curves and the final ratio.
local ROOT = dofile((arg[0]:match("^(.*)/") or ".") .. "/../examples/checkout.lua")
local recur = require "recur"
local argparse = require "argparse"
local cjson = require "cjson"

local parser = argparse("bench/bf16_train.lua", "char-rnn loss curves, fp32 against bf16 training")
parser:option("--iters", "iterations per run", 2000):convert(tonumber)
parser:option("--eval-every", "iterations between evaluations", 100):convert(tonumber)
parser:option("--hidden", "hidden units per layer", 128):convert(tonumber)
parser:option("--out", "directory for the logs and checkpoints", "/tmp/recur_bf16_train")
local a = parser:parse()
recur.set_num_threads(1)
os.execute("mkdir -p '" .. a.out .. "'")

local function run(precision)
  local log = a.out .. "/" .. precision .. ".jsonl"
  os.remove(log)
  local t0 = recur.now()
  recur.lm.train{data = ROOT .. "/data/tinyshakespeare.txt", layers = 2, hidden = a.hidden, max_iters = a.iters,
    eval_every = a.eval_every, checkpoint_dir = a.out .. "/" .. precision, log = log, seed = 123, quiet = true,
    precision = precision}
  local points = {}
  for line in io.lines(log) do
    local e = cjson.decode(line)
    if e.val_loss then points[#points + 1] = {iter = e.iter, val = e.val_loss} end
  end
  return points, recur.now() - t0
end

local p32, s32 = run("fp32")
local p16, s16 = run("bf16")
print(string.format("char-rnn 2x%d LSTM on tiny Shakespeare, %d iterations; validation loss (nats/char)", a.hidden, a.iters))
print(string.format("%8s %10s %10s %9s", "iter", "fp32", "bf16", "bf16/fp32"))
for i = 1, math.min(#p32, #p16) do
  print(string.format("%8d %10.4f %10.4f %9.4f", p32[i].iter, p32[i].val, p16[i].val, p16[i].val / p32[i].val))
end
local f32, f16 = p32[#p32].val, p16[#p16].val
print(string.format("final: fp32 %.4f, bf16 %.4f: bf16 is %+.2f%% (bar: within 1%%); %.0f s and %.0f s on one thread",
  f32, f16, 100 * (f16 - f32) / f32, s32, s16))
