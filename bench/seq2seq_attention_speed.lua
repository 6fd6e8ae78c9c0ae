-- Training speed of recur.models.Seq2Seq with each `attention` setting on
-- data/numbers.tsv: target tokens per second of training (forward, backward and an
-- Adam step), every model on the same batches, in one process, the settings
-- interleaved round by round and each given its best round, so that a busy machine
-- slows them alike. Time is the process's CPU time (os.clock; on one thread, the
-- compute each model needs), --clock wall for the wall clock.
--
--   lua5.4 bench/seq2seq_attention_speed.lua [--batches 100] [--rounds 5] [--threads 1]
--       [--hidden 128] [--layers 1] [--bidirectional] [--clock cpu|wall]
--
-- The recipe is `recur train --task seq2seq --src-level word`'s defaults: the task's
-- split, vocabularies and length-sorted batches of 32, embeddings of 64, an LSTM.
local ROOT = dofile((arg[0]:match("^(.*)/") or ".") .. "/../examples/checkout.lua")
local argparse = require "argparse"
local recur = require "recur"
local Seq2Seq = require "recur.models.Seq2Seq"
local task = require "recur.tasks.seq2seq"

local parser = argparse("bench/seq2seq_attention_speed.lua", "Seq2Seq training speed with and without attention")
parser:option("--batches", "training batches per round", 100):convert(tonumber)
parser:option("--rounds", "rounds (each model's best counts)", 5):convert(tonumber)
parser:option("--threads", "threads", 1):convert(tonumber)
parser:option("--hidden", "hidden units", 128):convert(tonumber)
parser:option("--layers", "layers", 1):convert(tonumber)
parser:flag("--bidirectional", "a bidirectional encoder")
parser:option("--clock", "cpu (process time) or wall", "cpu"):choices({"cpu", "wall"})
local a = parser:parse()
recur.set_num_threads(a.threads)
local clock = a.clock == "cpu" and os.clock or recur.now

local FORMS = Seq2Seq.ATTENTION
local s = {src_level = "word", tgt_level = "char", batch = 32, seed = 123, layers = a.layers, hidden = a.hidden,
  embed = 64, model = "lstm", dropout = 0, sampling_prob = 0, sampling = "argmax", bidirectional = a.bidirectional}
local P = task.prepare(s, {data = ROOT .. "/data/numbers.tsv"})
local batches = {}
for k = 1, a.batches do batches[k] = P.batcher:next_batch() end

local runs = {}
for _, attention in ipairs(FORMS) do
  s.attention = attention
  recur.manual_seed(s.seed)
  local model = task.build(s, P)
  runs[attention] = {model = model, opt = recur.optim.Adam(model, {lr = 2e-3}), best = math.huge}
  model:train_step(batches[1])   -- the first call allocates the buffers
end

for r = 1, a.rounds do
  for _, attention in ipairs(FORMS) do
    local run = runs[attention]
    local count, start = 0, clock()
    for _, batch in ipairs(batches) do
      run.model:zero_grad()
      local _, _, n = run.model:train_step(batch)
      run.opt:step()
      count = count + n
    end
    local seconds = clock() - start
    run.count = count
    if seconds < run.best then run.best = seconds end
    io.stderr:write(string.format("round %d %-14s %.3f s\n", r, attention, seconds))
  end
end

print(string.format("Seq2Seq on data/numbers.tsv (word -> char, LSTM %d x %d%s, batches of 32), %d batches, best of %d rounds, %s time, %d thread(s)",
  a.layers, a.hidden, a.bidirectional and ", bidirectional encoder" or "", a.batches, a.rounds, a.clock, a.threads))
print("| attention | target tokens/s | vs none |")
print("|---|---:|---:|")
local base = runs.none.count / runs.none.best
for _, attention in ipairs(FORMS) do
  local run = runs[attention]
  local rate = run.count / run.best
  print(string.format("| %s | %.0f | %.2f |", attention, rate, rate / base))
end
