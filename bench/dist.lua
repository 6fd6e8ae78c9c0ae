-- Data-parallel scaling on this machine: the same training run as 1 process with 1
-- thread, 1 process with 2 threads, and 2 ranks with 1 thread each under mpirun.
--
--   lua5.4 bench/dist.lua [--rows protocol,paper,race] [--iters 30] [--race-iters 400]
--                         [--eval-every 100] [--output bench/results_dist.json]
--
-- protocol: torch-rnn's benchmark rows (bench/run.lua's protocol: a character LSTM
--   language model, embedding 64, batch 50 x sequence 50 of tiny Shakespeare, Adam,
--   clip 5), trained through recur.train.Trainer, which is where data-parallel
--   training lives. ms/iter is the median over --iters iterations after 3 warm-up
--   ones, timed on rank 0 (the ranks meet every iteration in the all-reduce);
--   comm ms/iter is rank 0's time inside recur.dist's collectives, waiting included.
--   Scaling efficiency = (1-thread time / 2-rank time) / 2.
-- paper: the bytes a ring all-reduce moves per iteration for each protocol row and
--   for Zaremba et al.'s medium word model, and what that means on 10, 25 and
--   100 Gb/s links (below).
-- race: char-rnn's model (2x128 LSTM, the protocol's data) trained by `recur train`
--   for --race-iters iterations, evaluating every --eval-every, as 1 process with 2
--   threads and as 2 ranks: the validation losses per iteration (which must be the
--   same), and the wall time of each run.
-- Worker mode (one run, one JSON line on rank 0), run by the driver:
--   lua5.4 bench/dist.lua --worker --layers 2 --hidden 128 --iters 30 --threads 1
-- bench/ sits in a checkout: its lua/ and build/ come first (examples/checkout.lua).
local ROOT = dofile((arg[0]:match("^(.*)/") or ".") .. "/../examples/checkout.lua")
local recur = require "recur"
local cjson = require "cjson"
local argparse = require "argparse"

local function positive(name)
  return function(s)
    local n = math.tointeger(tonumber(s))
    if not n or n < 1 then return nil, name .. " must be a positive integer" end
    return n
  end
end

local parser = argparse("bench/dist.lua", "data-parallel scaling: 2 ranks x 1 thread against 1 rank x 2 threads")
parser:option("--rows", "protocol, paper, race, comma-separated", "protocol,paper,race")
parser:option("--iters", "timed iterations per protocol run", 30):convert(positive("--iters"))
parser:option("--race-iters", "iterations of the race runs", 400):convert(positive("--race-iters"))
parser:option("--eval-every", "race: iterations between evaluations", 100):convert(positive("--eval-every"))
parser:option("--output", "JSON results", ROOT .. "/bench/results_dist.json")
parser:flag("--worker", "one protocol run (under mpirun or alone)")
parser:option("--layers", "worker: layers", 2):convert(positive("--layers"))
parser:option("--hidden", "worker: hidden size", 128):convert(positive("--hidden"))
parser:option("--threads", "worker: threads", 1):convert(positive("--threads"))
parser:option("--model", "worker: the protocol's char model, or Zaremba et al.'s medium word model", "char")
  :choices({"char", "wordlm"})
local a = parser:parse()

local DATA = ROOT .. "/data/tinyshakespeare.txt"

local function median(xs)
  local s = table.move(xs, 1, #xs, 1, {})
  table.sort(s)
  local n = #s
  return n % 2 == 1 and s[(n + 1) // 2] or 0.5 * (s[n // 2] + s[n // 2 + 1])
end

-- One protocol run through the Trainer; rank 0 prints {ms_per_iter, comm_ms_per_iter}.
local function worker()
  local n = tonumber(os.getenv("OMPI_COMM_WORLD_SIZE") or "1")
  local dist
  if n > 1 then
    dist = require "recur.dist"
    dist.init()
  end
  recur.set_num_threads(a.threads)
  recur.manual_seed(1)
  local batcher, model
  if a.model == "wordlm" then
    -- Zaremba et al. 2014, medium: 2 x 650 LSTM, V = 10000, batch 20 x 35 steps,
    -- dropout 0.5, SGD; random ids stand in for PTB (the cost does not depend on them)
    local ids = {}
    for i = 1, 20 * 35 * 40 + 1 do ids[i] = (i * 7919) % 10000 + 1 end
    batcher = recur.data.LMBatcher.new(ids, {batch_size = 20, seq_length = 35, drop_last = true})
    model = recur.models.LanguageModel{vocab_size = 10000, embed = 650, hidden = 650, layers = 2, cell = "lstm", dropout = 0.5}
  else
    local text = recur.data.read_text(DATA)
    local tokenizer = recur.data.CharTokenizer.fit(text)
    batcher = recur.data.LMBatcher.new(tokenizer:encode(text), {batch_size = 50, seq_length = 50, drop_last = true})
    model = recur.models.LanguageModel{vocab_size = tokenizer:vocab_size(), embed = 64, hidden = a.hidden,
                                       layers = a.layers, cell = "lstm", dropout = 0}
  end
  local stamps = {}
  local clock = {update = function() stamps[#stamps + 1] = recur.now() end, finish = function() end, log = function() end}
  local warmup = 3
  local optimizer = a.model == "wordlm" and recur.optim.SGD(model, {lr = 1}) or recur.optim.Adam(model, {lr = 2e-3})
  local trainer = recur.train.Trainer{model = model, optimizer = optimizer, clip = 5,
    batcher = batcher, max_iters = warmup + a.iters, eval_every = 1e9, progress = clock, dist = dist}
  -- comm time of the timed iterations only: the warm-up's (and the start's broadcast)
  -- is taken off with the warm-up's stamps
  local comm_at = {}
  local update = clock.update
  clock.update = function()
    update()
    comm_at[#stamps] = trainer.comm_seconds or 0
  end
  trainer:run()
  -- the gradients' exchange alone: the ranks meet at a barrier first, so no rank waits
  -- for a slower one inside the timing (what overlapping it with backward could hide)
  local exchange = 0
  if dist then
    local _, grads = model:parameters()
    for _ = 1, 10 do
      dist.barrier()
      local t0 = recur.now()
      for _, g in ipairs(grads) do dist.allreduce(g, "sum") end
      exchange = exchange + (recur.now() - t0) * 100   -- ms, mean of 10
    end
  end
  local steps = {}
  for i = warmup + 1, #stamps do steps[#steps + 1] = (stamps[i] - stamps[i - 1]) * 1000 end
  if not dist or dist.rank() == 0 then
    local comm = (comm_at[#stamps] - comm_at[warmup]) * 1000 / (#stamps - warmup)
    io.stdout:write(cjson.encode{model = a.model, layers = a.layers, hidden = a.hidden, threads = a.threads, ranks = n,
      ms_per_iter = median(steps), comm_ms_per_iter = comm, exchange_ms = exchange,
      gradient_bytes = 4 * model:num_parameters()}, "\n")
  end
  if dist then dist.finalize() end
end

if a.worker then
  worker()
  os.exit(0)
end

local MPIRUN = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun --oversubscribe --bind-to none -np 2 "

local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  if not ok then error("bench/dist.lua: failed: " .. cmd .. "\n" .. out, 0) end
  return out
end

local function json_line(out)
  for line in out:gmatch("[^\n]+") do
    if line:sub(1, 1) == "{" then return cjson.decode(line) end
  end
  error("bench/dist.lua: no result in:\n" .. out, 0)
end

local results = {protocol = {}}
local wanted = {}
for r in a.rows:gmatch("[^,]+") do wanted[r] = true end

if wanted.protocol then
  local self = "lua5.4 " .. ROOT .. "/bench/dist.lua --worker --iters " .. a.iters
  print("protocol rows (batch 50 x 50, Adam, clip 5), ms/iter (median), through recur.train.Trainer")
  print(string.format("%-8s %9s %9s %17s %9s %9s %11s %10s", "row", "1r x 1t", "1r x 2t", "2r x 1t (comm)", "comm %",
    "exchange", "efficiency", "2r vs 1r2t"))
  for _, L in ipairs({1, 2, 3}) do
    for _, H in ipairs({128, 256, 512}) do
      local row = " --layers " .. L .. " --hidden " .. H
      local one = json_line(run(self .. row .. " --threads 1"))
      local two = json_line(run(self .. row .. " --threads 2"))
      local ranks = json_line(run(MPIRUN .. self .. row .. " --threads 1"))
      local r = {layers = L, hidden = H, one_thread = one.ms_per_iter, two_threads = two.ms_per_iter,
        two_ranks = ranks.ms_per_iter, comm = ranks.comm_ms_per_iter, exchange = ranks.exchange_ms,
        gradient_bytes = ranks.gradient_bytes,
        efficiency = one.ms_per_iter / ranks.ms_per_iter / 2, ranks_vs_threads = two.ms_per_iter / ranks.ms_per_iter}
      results.protocol[#results.protocol + 1] = r
      print(string.format("%-8s %9.1f %9.1f %10.1f (%4.1f) %8.0f%% %7.2f ms %10.0f%% %9.2fx", L .. "x" .. H, r.one_thread,
        r.two_threads, r.two_ranks, r.comm, 100 * r.comm / r.two_ranks, r.exchange, 100 * r.efficiency, r.ranks_vs_threads))
    end
  end
end

-- On paper: a ring all-reduce sends and receives 2(N-1)/N of the gradient bytes G per
-- rank and iteration. With the global batch fixed, N machines compute an iteration in
-- t/N (t: one machine's time, measured here with 2 threads) and exchange in
-- 2(N-1)/N * G/bw, so communication overtakes computation past N = 1 + t*bw/(2G).
if wanted.paper then
  local self = "lua5.4 " .. ROOT .. "/bench/dist.lua --worker --iters " .. a.iters .. " --threads 2"
  local rows = {}
  for _, r in ipairs(results.protocol) do rows[#rows + 1] = {name = r.layers .. "x" .. r.hidden, ms = r.two_threads, G = r.gradient_bytes} end
  if #rows == 0 then
    for _, L in ipairs({1, 2, 3}) do
      for _, H in ipairs({128, 256, 512}) do
        local one = json_line(run(self .. " --layers " .. L .. " --hidden " .. H))
        rows[#rows + 1] = {name = L .. "x" .. H, ms = one.ms_per_iter, G = one.gradient_bytes}
      end
    end
  end
  local word = json_line(run(self .. " --model wordlm --iters " .. math.min(a.iters, 10)))
  rows[#rows + 1] = {name = "wordlm", ms = word.ms_per_iter, G = word.gradient_bytes}
  print("\non paper: ring all-reduce, global batch fixed; per-iteration compute t measured here (1 rank x 2 threads)")
  print(string.format("%-8s %10s %9s %13s %22s %22s %22s", "row", "G (MB)", "t (ms)", "2G (MB/iter)",
    "10 Gb/s: ms, N max", "25 Gb/s: ms, N max", "100 Gb/s: ms, N max"))
  results.paper = {}
  for _, r in ipairs(rows) do
    local line = string.format("%-8s %10.2f %9.1f %13.2f", r.name, r.G / 1e6, r.ms, 2 * r.G / 1e6)
    local links = {}
    for _, gbps in ipairs({10, 25, 100}) do
      local bw = gbps * 1e9 / 8   -- bytes per second
      local exchange_ms = 2 * r.G / bw * 1000
      local n_max = 1 + (r.ms / 1000) * bw / (2 * r.G)
      links[#links + 1] = {gbps = gbps, exchange_ms = exchange_ms, machines = math.floor(n_max)}
      line = line .. string.format(" %12.2f ms, %5d", exchange_ms, math.floor(n_max))
    end
    results.paper[#results.paper + 1] = {row = r.name, gradient_bytes = r.G, ms_per_iter = r.ms, links = links}
    print(line)
  end
end

if wanted.race then
  local tmp = os.tmpname()
  os.remove(tmp)
  assert(os.execute("mkdir -p " .. tmp))
  local function race(launch, name, threads)
    local log = tmp .. "/" .. name .. ".jsonl"
    local t0 = recur.now()
    run(launch .. "lua5.4 " .. ROOT .. "/bin/recur train --data " .. DATA .. " --max-iters " .. a.race_iters ..
      " --eval-every " .. a.eval_every .. " --threads " .. threads .. " --quiet --checkpoint-dir " .. tmp .. "/" .. name ..
      " --log " .. log)
    local seconds = recur.now() - t0
    local curve = {}
    for line in io.lines(log) do
      local r = cjson.decode(line)
      curve[#curve + 1] = {iter = r.iter, val_loss = r.val_loss}
    end
    return {seconds = seconds, curve = curve}
  end
  local threads = race("", "threads", 2)
  local ranks = race(MPIRUN, "ranks", 1)
  os.execute("rm -rf " .. tmp)
  print(string.format("\nrace: char-rnn's model, `recur train` %d iterations, eval every %d", a.race_iters, a.eval_every))
  print(string.format("%8s %14s %14s %10s", "iter", "1r x 2t val", "2r x 1t val", "|diff|"))
  local worst = 0
  for i, p in ipairs(threads.curve) do
    local q = ranks.curve[i]
    local d = math.abs(p.val_loss - q.val_loss)
    worst = math.max(worst, d)
    print(string.format("%8d %14.6f %14.6f %10.1e", p.iter, p.val_loss, q.val_loss, d))
  end
  print(string.format("wall time (training, evaluation, checkpoints): 1r x 2t %.1f s, 2r x 1t %.1f s (%.2fx)",
    threads.seconds, ranks.seconds, threads.seconds / ranks.seconds))
  results.race = {threads = threads, ranks = ranks, max_abs_diff = worst}
end

local f = assert(io.open(a.output, "w"))
f:write(cjson.encode(results), "\n")
f:close()
print("results in " .. a.output)
