-- recur's benchmark suite: one row per call, one JSON line per row.
--
--   lua5.4 bench/run.lua protocol --layers 2 --hidden 256 [--iters 30] [--phases]
--   lua5.4 bench/run.lua layer --cell lstm --T 100 --B 64 --D 512 --H 512 [--iters 5]
--   lua5.4 bench/run.lua generate --layers 2 --hidden 512 --tokens 2000 [--greedy] [--dtype bfloat16|int8]
--   lua5.4 bench/run.lua wordlm [--iters 10] [--phases]
--   lua5.4 bench/run.lua all [--quick]   every row, each in its own process: a table,
--                                        and bench/results.json
-- Every row takes --threads N (default 2), --warmup N and --seed N. The warm-up
-- (5 iterations, 20 tokens for generate) covers the thread controller's first calls of
-- each shape, which time one thread against the team (csrc/threads.c); --no-adapt runs
-- every call on the team instead.
--
-- protocol: torch-rnn's benchmark. A character LSTM language model (embedding 64,
--   no dropout, vocabulary 65 from tiny Shakespeare) trained on batch 50 x sequence
--   50 chunks; one iteration is zero_grad, forward, loss, backward, clip 5, Adam.
--   ms_per_iter is the median over --iters iterations after --warmup; peak_rss_mb
--   the process's peak resident memory, so each configuration runs in its own
--   process. --phases also times forward+loss, backward, clip and Adam separately.
-- layer: one nn.LSTM/GRU/RNN layer, forward then backward (input gradient included),
--   at (T,B,D,H). gflops counts the GEMM flops only: forward 2TB*D*GH + 2TB*H*GH,
--   backward twice that. sgemm_gflops is this machine's ceiling for the same set of
--   GEMMs (same shapes, same transposes, the per-step ones on their own rows of a
--   (T*B, .) buffer as the kernel reads them) run back to back through recur.addmm,
--   timed in turn with the layer's iterations (median); fraction_of_sgemm =
--   gflops / sgemm_gflops. In float32 on a CPU with AVX2 and FMA the layer's per-step
--   products run on recur's own kernels over weights packed once (csrc/rnn_gemm.h), not
--   through OpenBLAS, so the fraction can exceed 1.
-- generate: a 2-layer 512 LSTM language model (random weights) producing tokens one
--   at a time at batch 1: model:step + recur.decode.choose (temperature 1 sampling,
--   or --greedy); --phases times the step apart from the choice.
--
-- bench/peer_torch.py measures the same rows in PyTorch; bench/peer.lua runs both.
-- bench/ sits in a checkout: its lua/ and build/ come first (examples/checkout.lua).
local ROOT = dofile((arg[0]:match("^(.*)/") or ".") .. "/../examples/checkout.lua")
local recur = require "recur"
local cjson = require "cjson"
local argparse = require "argparse"

local suite = dofile(ROOT .. "/bench/suite.lua")

local function median(xs)
  local s = table.move(xs, 1, #xs, 1, {})
  table.sort(s)
  local n = #s
  if n % 2 == 1 then return s[(n + 1) // 2] end
  return 0.5 * (s[n // 2] + s[n // 2 + 1])
end

local function mean(xs)
  local t = 0
  for _, x in ipairs(xs) do t = t + x end
  return t / #xs
end

local function min(xs)
  local m = math.huge
  for _, x in ipairs(xs) do m = math.min(m, x) end
  return m
end

local function emit(row, threads)
  row.impl = "recur"
  row.threads = threads
  local blas = recur.blas_info()
  row.blas, row.blas_core, row.blas_core_repaired = blas.config, blas.core, blas.core_repaired
  row.peak_rss_mb = recur.peak_rss_mb()
  io.stdout:write(cjson.encode(row), "\n")
  io.stdout:flush()
end

-- ---- protocol ---------------------------------------------------------------------

local function row_protocol(a)
  local data = recur.data
  local LanguageModel = require "recur.models.LanguageModel"
  local B, T = a.batch, a.seq
  local text = data.read_text(a.data)
  local tokenizer = data.CharTokenizer.fit(text)
  local V = tokenizer:vocab_size()
  local batcher = data.LMBatcher.new(tokenizer:encode(text), {batch_size = B, seq_length = T, drop_last = true})
  text = nil
  local model = LanguageModel{vocab_size = V, embed = a.embed, hidden = a.hidden, layers = a.layers,
                              cell = "lstm", dropout = 0}
  local optimizer = recur.optim.Adam(model, {lr = 2e-3})
  local _, grads = model:parameters()
  local warmup = a.warmup or 5
  local times, phases = {}, {forward = {}, backward = {}, clip = {}, adam = {}}
  local state, loss
  local now = recur.now
  collectgarbage()
  for i = 1, warmup + a.iters do
    local batch = batcher:next_batch()
    if not batch then
      batcher:reset()
      batch = batcher:next_batch()
    end
    local x, y = batch.x, batch.y
    local t0 = now()
    model:zero_grad()
    local t1, t2
    if a.phases then
      -- LanguageModel:train_step's calls, timed one by one
      local logits
      logits, state = model:forward(x, state)
      loss = model.criterion:forward(logits, y)
      t1 = now()
      model:backward(x, model.criterion:backward(logits, y))
      t2 = now()
    else
      loss, state = model:train_step(batch, state)
    end
    local t3 = now()
    recur.optim.clip_grad_norm(grads, 5)
    local t4 = now()
    optimizer:step()
    local t5 = now()
    if i > warmup then
      times[#times + 1] = (t5 - t0) * 1000
      if a.phases then
        table.insert(phases.forward, (t1 - t0) * 1000)
        table.insert(phases.backward, (t2 - t1) * 1000)
      end
      table.insert(phases.clip, (t4 - t3) * 1000)
      table.insert(phases.adam, (t5 - t4) * 1000)
    end
  end
  local row = {row = "protocol", layers = a.layers, hidden = a.hidden, batch = B, seq = T, embed = a.embed,
               vocab = V, iters = a.iters, warmup = warmup, ms_per_iter = median(times), ms_mean = mean(times),
               ms_min = min(times), final_loss = loss, ms_clip = median(phases.clip), ms_adam = median(phases.adam)}
  if a.phases then
    row.ms_forward, row.ms_backward = median(phases.forward), median(phases.backward)
  end
  return row
end

-- ---- layer ------------------------------------------------------------------------

local CELLS = {lstm = {"LSTM", 4}, gru = {"GRU", 3}, rnn = {"RNN", 1}}

-- The layer's GEMMs (suite.layer_gemms) on random operands: a function that runs
-- them all once, and their total flops.
local function sgemm_set(T, B, D, H, G, mode)
  local ops, flops = {}, 0
  for _, g in ipairs(suite.layer_gemms(T, B, D, H, G, mode)) do
    local M, N, K, ta, tb, count = table.unpack(g)
    -- operands stored as BLAS reads them: a^T is kept (K,M), b^T is kept (N,K)
    local a = ta and recur.randn(K, count * M) or recur.randn(count * M, K)
    local b = tb and recur.randn(N, K) or recur.randn(K, N)
    local c = recur.zeros(count * M, N)
    local steps = {}
    for s = 1, count do
      local as = ta and a:narrow(2, (s - 1) * M + 1, M) or a:narrow(1, (s - 1) * M + 1, M)
      steps[s] = {as, c:narrow(1, (s - 1) * M + 1, M)}
    end
    ops[#ops + 1] = {b = b, steps = steps, ta = ta, tb = tb}
    flops = flops + 2.0 * M * N * K * count
  end
  local addmm = recur.addmm
  return function()
    for _, op in ipairs(ops) do
      for _, st in ipairs(op.steps) do addmm(st[2], st[1], op.b, 1, 0, op.ta, op.tb) end
    end
  end, flops
end

-- The layer's forward + backward (--mode infer: forward alone, in evaluation mode)
-- and its GEMMs alone are timed alternately, so that a change in the shared machine's
-- load falls on both. --dtype bfloat16 (inference) runs the layer with
-- set_precision("bf16"); a build of recur without it answers with a row marked
-- unsupported, which bench/peer.lua prints as such.
local function row_layer(a)
  local T, B, D, H = a.T, a.B, a.D, a.H
  local class, G = table.unpack(CELLS[a.cell])
  local mode, train = a.mode, a.mode == "train"
  local m = recur.nn[class](D, H)
  local x, gy = recur.randn(T, B, D), recur.randn(T, B, H)
  if not train then m:evaluate() end
  if a.dtype == "bfloat16" then
    -- recur's bf16 path: weights in bf16, activations in fp32, inference only
    local ok, err = false, "this recur has no bf16 path (set_precision)"
    if m.set_precision then ok, err = pcall(m.set_precision, m, "bf16") end
    if train or not ok then
      return {row = "layer", cell = a.cell, mode = mode, dtype = a.dtype, T = T, B = B, D = D, H = H,
              unsupported = train and "bf16 is for inference" or tostring(err)}
    end
    m:forward(x) -- packs the bf16 weights, once
  end
  local gemms, sgemm_flops = sgemm_set(T, B, D, H, G, mode)
  local flops = suite.layer_flops(T, B, D, H, G, mode)
  assert(math.abs(sgemm_flops - flops) <= 1e-9 * flops, "layer: the ceiling's GEMMs do not add up to the layer's flops")
  local warmup = a.warmup or 5
  local times, gemm_times = {}, {}
  collectgarbage()
  for i = 1, warmup + a.iters do
    local t0 = recur.now()
    m:forward(x)
    if train then m:backward(x, gy) end
    local t1 = recur.now()
    if train then m:zero_grad() end
    local t2 = recur.now()
    gemms()
    local t3 = recur.now()
    if i > warmup then
      times[#times + 1] = t1 - t0
      gemm_times[#gemm_times + 1] = t3 - t2
    end
  end
  local s = median(times)
  local gflops, sgemm = flops / s / 1e9, flops / median(gemm_times) / 1e9
  return {row = "layer", cell = a.cell, mode = mode, dtype = a.dtype, T = T, B = B, D = D, H = H, iters = a.iters,
          ms = s * 1000, ms_min = min(times) * 1000, gflops = gflops, sgemm_ms = median(gemm_times) * 1000,
          sgemm_gflops = sgemm, fraction_of_sgemm = gflops / sgemm}
end

-- ---- wordlm -----------------------------------------------------------------------

-- Zaremba et al.'s medium model (suite.WORDLM) on synthetic word ids (uniform over
-- the vocabulary: the time of an iteration does not depend on the text). One
-- iteration = zero_grad, forward with dropout, cross-entropy, backward, clip, SGD;
-- the hidden state is carried from batch to batch.
local function row_wordlm(a)
  local LanguageModel = require "recur.models.LanguageModel"
  local B, T, V = a.batch, a.seq, a.vocab
  local model = LanguageModel{vocab_size = V, embed = a.hidden, hidden = a.hidden, layers = a.layers,
                              cell = "lstm", dropout = a.dropout}
  model:train()
  local optimizer = recur.optim.SGD(model, {lr = a.lr})
  local _, grads = model:parameters()
  math.randomseed(a.seed)
  local function ids()
    local t = {}
    for i = 1, T * B do t[i] = math.random(1, V) end -- ids are 1-based
    return recur.tensor(t, "int64"):view(T, B)
  end
  -- --phases: the parts' own methods, each wrapped in a timer (the iteration runs as
  -- it does without them; a wrapper costs about a microsecond a call)
  local spent, parts = {}, {}
  local function time_method(name, obj, method)
    local f = obj[method]
    parts[#parts + 1] = name
    spent[name] = 0
    obj[method] = function(...)
      local t0 = recur.now()
      local r = table.pack(f(...))
      spent[name] = spent[name] + (recur.now() - t0)
      return table.unpack(r, 1, r.n)
    end
  end
  if a.phases then
    time_method("rnn_forward", model.rnn, "forward")
    time_method("decoder_forward", model.decoder, "forward")
    time_method("loss_forward", model.criterion, "forward")
    time_method("loss_backward", model.criterion, "backward")
    time_method("decoder_backward", model.decoder, "backward")
    time_method("rnn_backward", model.rnn, "backward")
    time_method("clip", recur.optim, "clip_grad_norm")
    time_method("sgd", optimizer, "step")
  end
  local warmup = a.warmup or 5
  local times, phases, state, loss = {}, {}, nil, nil
  collectgarbage()
  for i = 1, warmup + a.iters do
    local batch = {x = ids(), y = ids()}
    for _, name in ipairs(parts) do spent[name] = 0 end
    local t0 = recur.now()
    model:zero_grad()
    loss, state = model:train_step(batch, state)
    recur.optim.clip_grad_norm(grads, a.clip)
    optimizer:step()
    local t1 = recur.now()
    if i > warmup then
      times[#times + 1] = (t1 - t0) * 1000
      for _, name in ipairs(parts) do
        phases[name] = phases[name] or {}
        table.insert(phases[name], spent[name] * 1000)
      end
    end
  end
  local ms = median(times)
  local row = {row = "wordlm", layers = a.layers, hidden = a.hidden, vocab = V, batch = B, seq = T, dropout = a.dropout,
               iters = a.iters, warmup = warmup, ms_per_iter = ms, ms_mean = mean(times), ms_min = min(times),
               tokens_per_s = B * T / (ms / 1000), final_loss = loss}
  for _, name in ipairs(parts) do row["ms_" .. name] = median(phases[name]) end
  return row
end

-- ---- generate ---------------------------------------------------------------------

local function row_generate(a)
  local LanguageModel = require "recur.models.LanguageModel"
  local decode = recur.decode
  local model = LanguageModel{vocab_size = a.vocab, embed = a.embed, hidden = a.hidden, layers = a.layers,
                              cell = "lstm", dropout = 0}
  model:evaluate()
  if a.dtype ~= "float32" then
    local ok, err = false, "this recur has no bf16 or int8 path (set_precision)"
    if model.set_precision then
      ok, err = pcall(model.set_precision, model, a.dtype == "bfloat16" and "bf16" or a.dtype)
    end
    if not ok then
      return {row = "generate", layers = a.layers, hidden = a.hidden, dtype = a.dtype, unsupported = tostring(err)}
    end
  end
  local opts = {temperature = a.greedy and 0 or 1}
  local ids = recur.zeros({1}, "int64")
  ids:set(1, 1)
  local state, t0
  local warmup = a.warmup or 20
  local now, in_step = recur.now, 0
  -- --alternate: every ALTERNATE measured tokens the thread count switches between 1
  -- and --threads, and each count's tokens are timed apart (busy.lua's within-process
  -- comparison: the same weights in the same memory, side by side in time). The first
  -- token after a switch is left out for both counts: set_num_threads starts the
  -- controller afresh, and until the first recurrent call finds the machine busy the
  -- work before it runs on the whole team, a cost of switching that a process at a
  -- fixed count does not pay.
  local ALTERNATE, spent, made, chunk_t0 = 100, {[1] = 0, [a.threads] = 0}, {[1] = 0, [a.threads] = 0}, nil
  local function thread_count(i) return ((i - warmup - 1) // ALTERNATE) % 2 == 0 and 1 or a.threads end
  collectgarbage()
  for i = 1, warmup + a.tokens do
    if i == warmup + 1 then t0, in_step = now(), 0 end
    local k = (i - warmup - 1) % ALTERNATE
    if a.alternate and i > warmup and k == 0 then
      if chunk_t0 then
        local n = thread_count(i - 1)
        spent[n], made[n] = spent[n] + (now() - chunk_t0), made[n] + ALTERNATE - 1
      end
      recur.set_num_threads(thread_count(i))
      chunk_t0 = nil
    elseif a.alternate and i > warmup and k == 1 then
      chunk_t0 = now()
    end
    local logits
    if a.phases then
      local s0 = now()
      logits, state = model:step(ids, state)
      in_step = in_step + (now() - s0)
    else
      logits, state = model:step(ids, state)
    end
    ids:set(1, decode.choose(logits:select(1, 1), opts))
  end
  local seconds = now() - t0
  local row = {row = "generate", layers = a.layers, hidden = a.hidden, embed = a.embed, vocab = a.vocab,
               dtype = a.dtype, tokens = a.tokens, greedy = a.greedy, seconds = seconds,
               tokens_per_s = a.tokens / seconds, us_per_token = seconds / a.tokens * 1e6}
  if a.alternate then
    if chunk_t0 then
      local n = thread_count(warmup + a.tokens)
      spent[n], made[n] = spent[n] + (now() - chunk_t0), made[n] + (a.tokens - 1) % ALTERNATE
    end
    -- (a count with no tokens timed, under 200 of them, has no rate)
    local function rate(n) return made[n] > 0 and made[n] / spent[n] or nil end
    row.alternate = {threads = a.threads, tokens_per_s_1 = rate(1), tokens_per_s_n = rate(a.threads),
                     tokens_1 = made[1], tokens_n = made[a.threads]}
  end
  if a.phases then
    -- the rest of a token is the choice (decode.choose) and the loop's own work
    row.us_step = in_step / a.tokens * 1e6
    row.us_choose = (seconds - in_step) / a.tokens * 1e6
  end
  return row
end

-- ---- all: every row in its own process --------------------------------------------

local function run_all(a)
  local lua = arg[-1] or "lua5.4"
  local rows, failures = {}, 0
  print(string.format("recur benchmark suite, %d threads, %s", a.threads, recur.blas_info().config))
  print(string.format("%-28s %-52s %9s", "row", "result", "peak MB"))
  for _, spec in ipairs(suite.rows()) do
    local argv = suite.concat({lua, ROOT .. "/bench/run.lua"},
      suite.with(spec, {"--threads", a.threads}, a.quick and suite.QUICK[spec[1]] or {}))
    local row, err = suite.run(argv)
    if row then
      rows[#rows + 1] = row
      print(string.format("%-28s %-52s %9.1f", suite.describe(row), suite.format(row), row.peak_rss_mb))
    else
      failures = failures + 1
      io.stderr:write(err, "\n")
    end
  end
  local path = a.output or (ROOT .. "/bench/results.json")
  suite.write_json(path, {suite = "recur", threads = a.threads, blas = recur.blas_info().config,
                          quick = a.quick, date = os.date("!%Y-%m-%dT%H:%M:%SZ"), rows = rows})
  print("results in " .. path)
  if failures > 0 then os.exit(1) end
end

-- ---- flags ------------------------------------------------------------------------

local parser = argparse("bench/run.lua", "recur's benchmark suite (one JSON line per row)")
parser:command_target("row")
local function integer(name, lo)
  return function(s)
    local n = math.tointeger(tonumber(s))
    if not n or n < lo then return nil, string.format("%s must be an integer >= %d, got '%s'", name, lo, s) end
    return n
  end
end
local function positive(name) return integer(name, 1) end
local function common(cmd)
  cmd:option("--threads", "threads for OpenBLAS and OpenMP", 2):convert(positive("--threads"))
  cmd:option("--warmup", "iterations not measured"):convert(integer("--warmup", 0))
  cmd:option("--seed", "generator seed", 123):convert(integer("--seed", 0))
  cmd:flag("--no-adapt", "every call on --threads threads, without the thread controller's choice")
  return cmd
end
local p = common(parser:command("protocol", "torch-rnn's char-LM training iteration"))
p:option("--layers", "LSTM layers"):convert(positive("--layers")):args(1):count(1)
p:option("--hidden", "hidden size"):convert(positive("--hidden")):args(1):count(1)
p:option("--iters", "measured iterations", 30):convert(positive("--iters"))
p:option("--batch", "batch size", 50):convert(positive("--batch"))
p:option("--seq", "sequence length", 50):convert(positive("--seq"))
p:option("--embed", "embedding size", 64):convert(positive("--embed"))
p:option("--data", "training text", ROOT .. "/data/tinyshakespeare.txt")
p:flag("--phases", "time forward+loss and backward separately")
local l = common(parser:command("layer", "one recurrent layer, forward + backward"))
l:option("--cell", "lstm | gru | rnn"):choices({"lstm", "gru", "rnn"}):count(1)
for _, k in ipairs({"T", "B", "D", "H"}) do l:option("--" .. k):convert(positive("--" .. k)):count(1) end
l:option("--iters", "measured iterations", 5):convert(positive("--iters"))
l:option("--mode", "train (forward + backward) | infer (forward alone)", "train"):choices({"train", "infer"})
l:option("--dtype", "float32 | bfloat16", "float32"):choices({"float32", "bfloat16"})
local g = common(parser:command("generate", "batch-1 token generation"))
g:option("--layers", "LSTM layers", 2):convert(positive("--layers"))
g:option("--hidden", "hidden size", 512):convert(positive("--hidden"))
g:option("--embed", "embedding size", 64):convert(positive("--embed"))
g:option("--vocab", "vocabulary size", 65):convert(positive("--vocab"))
g:option("--tokens", "tokens measured", 2000):convert(positive("--tokens"))
g:flag("--greedy", "argmax instead of sampling at temperature 1")
g:flag("--phases", "time model:step apart from the choice of the token (us_step, us_choose)")
g:flag("--alternate", "switch between 1 thread and --threads every 100 tokens, timing each apart")
g:option("--dtype", "float32 | bfloat16 | int8 (the model's set_precision(\"bf16\" | \"int8\"))", "float32")
  :choices({"float32", "bfloat16", "int8"})
local w = common(parser:command("wordlm", "Zaremba et al.'s medium word-level LSTM LM, one training iteration"))
for _, k in ipairs({"layers", "hidden", "vocab", "batch", "seq"}) do
  w:option("--" .. k, nil, suite.WORDLM[k]):convert(positive("--" .. k))
end
w:option("--dropout", nil, suite.WORDLM.dropout):convert(tonumber)
w:option("--lr", "SGD's learning rate", suite.WORDLM.lr):convert(tonumber)
w:option("--clip", "gradient norm clipped at", suite.WORDLM.clip):convert(tonumber)
w:option("--iters", "measured iterations", 10):convert(positive("--iters"))
w:flag("--phases", "time the layers, the decoder, the loss, clipping and SGD separately")
local all = common(parser:command("all", "every row, each in its own process"))
all:option("--output", "where the JSON results go (default bench/results.json)")
all:flag("--quick", "few iterations per row (a smoke test, not a measurement)")

local a = parser:parse()
recur.set_num_threads(a.threads)
-- the controller times the first calls of a shape on one thread and on the team; on a
-- noisy machine it can settle on either, so that a row's runs fall into two groups
if a.no_adapt then recur.thread_adapt(false) end
recur.manual_seed(a.seed)
if a.row == "all" then
  run_all(a)
else
  local row = ({protocol = row_protocol, layer = row_layer, generate = row_generate, wordlm = row_wordlm})[a.row](a)
  row.adapt = not a.no_adapt
  emit(row, a.threads)
end
