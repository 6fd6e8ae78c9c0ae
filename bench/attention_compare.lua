-- Attention against none: recur.models.Seq2Seq trained for the same time (CPU time by
-- default, see below) or the same number of batches with each `attention` setting on data/dates.tsv and data/numbers_long.tsv, then
-- scored by greedy exact match on the held-out tenth of each file, overall and by
-- source length. Writes a markdown table, one SVG per data set of exact match against
-- source length (plot.lines), and the alignment of one date as a heatmap (plot.heatmap).
--
--   lua5.4 bench/attention_compare.lua [--seconds 45 | --iters N] [--clock cpu|wall]
--       [--attention none,bahdanau,luong-general]
--       [--data dates,numbers_long] [--threads 1] [--hidden 128] [--seed 1]
--       [--out-dir doc/img] [--heatmap-source "the third of march nineteen ninety nine"]
--       [--heatmap-attention luong-general]
--
-- Every model gets the same recipe as `recur train --task seq2seq` with its defaults
-- (recur.tasks.seq2seq prepares the data: the same split, vocabularies and length-sorted
-- batches of 32; a 1-layer LSTM of 128, embeddings of 64; Adam at 2e-3, clipping at 5;
-- without recur train's learning-rate decay, so that every model keeps the same rate),
-- differing only in `attention`, and the same seed. Training time excludes scoring.
-- It is the process's CPU time (--clock cpu, the default): on a machine shared with
-- other work, the same compute for each model, which a wall clock would not give;
-- --clock wall uses recur.train's max_seconds.
-- With --iters every model takes that many batches instead, whatever the time: what
-- the architecture learns per example, apart from how fast recur runs it.
-- The dates are read char by char on both sides; the numbers word by word into digits.
-- Source length is counted in the source's tokens (characters or words), bucketed in
-- equal widths.
local ROOT = dofile((arg[0]:match("^(.*)/") or ".") .. "/../examples/checkout.lua")
local argparse = require "argparse"
local recur = require "recur"
local plot = require "recur.plot"
local Seq2Seq = require "recur.models.Seq2Seq"
local task = require "recur.tasks.seq2seq"
local levels = require "recur.tasks.levels"
local tabular = require "recur.data.tabular"

local DATA = {
  dates = {path = "data/dates.tsv", src_level = "char", unit = "characters", buckets = 7},
  numbers_long = {path = "data/numbers_long.tsv", src_level = "word", unit = "words", buckets = 8},
}

local parser = argparse("bench/attention_compare.lua", "Seq2Seq with and without attention, same training time")
parser:option("--seconds", "training seconds per model", 45):convert(tonumber)
parser:option("--clock", "cpu (process time) or wall", "cpu"):choices({"cpu", "wall"})
parser:option("--iters", "training batches per model (instead of --seconds)"):convert(tonumber)
parser:option("--attention", "comma-separated Seq2Seq attention settings", "none,bahdanau,luong-general")
parser:option("--data", "comma-separated data sets (dates, numbers_long)", "dates,numbers_long")
parser:option("--threads", "threads", 1):convert(tonumber)
parser:option("--hidden", "hidden units", 128):convert(tonumber)
parser:option("--seed", "seed of the split, the batches and the weights", 1):convert(tonumber)
parser:option("--out-dir", "where the table and pictures go", ROOT .. "/doc/img")
parser:option("--heatmap-source", "the date whose alignment is drawn", "the third of march nineteen ninety nine")
parser:option("--heatmap-attention", "the model whose alignment is drawn (default: the first with attention)")
local a = parser:parse()
local function split_list(s)
  local out = {}
  for item in s:gmatch("[^,]+") do out[#out + 1] = item end
  return out
end
local settings, sets = split_list(a.attention), split_list(a.data)
for _, name in ipairs(sets) do
  if not DATA[name] then parser:error("--data: unknown data set '" .. name .. "' (dates, numbers_long)") end
end
recur.set_num_threads(a.threads)
require("recur.core").make_dir(a.out_dir)   -- now, not after minutes of training

-- The source's length in its tokens.
local function length_of(line, level)
  if level == "char" then return utf8.len(line) end
  local n = 0
  for _ in line:gmatch("%S+") do n = n + 1 end
  return n
end

-- The batcher b, ending its epoch for good once the process has spent `seconds` of CPU
-- time from now (the Trainer then stops: the next epoch is empty too).
local function cpu_budget(b, seconds)
  local start = os.clock()
  return {
    next_batch = function() if os.clock() - start < seconds then return b:next_batch() end end,
    reset = function() b:reset() end,
    used = function() return os.clock() - start end,
  }
end

-- Trains one model on prepared data P for a.seconds (or a.iters batches); returns the
-- model and a summary with cpu_seconds.
local function train(P, s, attention)
  recur.manual_seed(a.seed)
  local pad, bos, eos = levels.markers(P.data.target)
  local config = {src_vocab_size = P.data.source:vocab_size(), tgt_vocab_size = P.data.target:vocab_size(),
    embed = s.embed, hidden = s.hidden, layers = s.layers, cell = "lstm", pad_id = pad, bos_id = bos, eos_id = eos,
    attention = attention}
  local model = Seq2Seq(config)
  P.batcher:reset()
  local by_cpu = not a.iters and a.clock == "cpu"
  local batcher = cpu_budget(P.batcher, by_cpu and a.seconds or math.huge)
  local summary = recur.train.Trainer{model = model, optimizer = recur.optim.Adam(model, {lr = 2e-3}),
    batcher = batcher, clip = 5, max_epochs = math.huge, max_iters = a.iters,
    max_seconds = not a.iters and a.clock == "wall" and a.seconds or nil,
    eval_every = math.maxinteger, progress = false}:run()
  summary.cpu_seconds = batcher.used()
  return model, summary
end

-- Greedy exact match of the model on the held-out pairs (sources, targets): a list of
-- {length, right} per pair.
local function score(model, P, sources, targets, level)
  local src = {}
  for i, line in ipairs(sources) do src[i] = levels.encode(P.data.source, line) end
  local batcher = recur.data.SentenceBatcher.new(src, {batch_size = 64, sort = false, shuffle = false})
  local out = {}
  model:evaluate()
  for k = 1, batcher:num_batches() do
    local batch = batcher:get_batch(k)
    local hyps = model:greedy(batch.x, batch.lengths, {max_length = 30})
    for b, i in ipairs(batch.indices) do
      out[i] = {length_of(sources[i], level), levels.decode(P.data.target, hyps[b]) == targets[i]}
    end
  end
  return out
end

-- Equal-width buckets of source length over the results of all models: {lo, hi} pairs.
local function buckets_of(results, count)
  local lo, hi = math.huge, 0
  for _, r in ipairs(results) do
    lo, hi = math.min(lo, r[1]), math.max(hi, r[1])
  end
  local width = math.max(1, math.ceil((hi - lo + 1) / count))
  local out = {}
  for b = lo, hi, width do out[#out + 1] = {b, b + width - 1} end
  return out
end

-- Exact match per bucket: {right / n, n} (nil for an empty bucket), and overall.
local function by_bucket(results, buckets)
  local per, right_all = {}, 0
  for k = 1, #buckets do per[k] = {0, 0} end
  for _, r in ipairs(results) do
    for k, b in ipairs(buckets) do
      if r[1] >= b[1] and r[1] <= b[2] then
        per[k][2] = per[k][2] + 1
        if r[2] then per[k][1] = per[k][1] + 1 end
      end
    end
    if r[2] then right_all = right_all + 1 end
  end
  return per, right_all / #results
end

-- The alignment of one source as a heatmap: output tokens against source tokens.
local function draw_alignment(model, P, source, path, title)
  local ids = levels.encode(P.data.source, source)
  local x = recur.zeros({#ids, 1}, "int64")
  for t, id in ipairs(ids) do x:set(t, 1, id) end
  model:evaluate()
  local hyps, weights = model:greedy(x, nil, {max_length = 30, attention = true})
  local cols, rows = {}, {}
  for k, id in ipairs(ids) do
    local tok = P.data.source:decode({id})
    cols[k] = tok == " " and "\u{2423}" or (tok == "" and "</s>" or tok)   -- a space shown as ␣
  end
  for i, id in ipairs(hyps[1]) do
    local tok = levels.decode(P.data.target, {id})
    rows[i] = tok == "" and "</s>" or tok
  end
  plot.heatmap{rows = rows, cols = cols, weights = weights[1], out = path, title = title}
  return levels.decode(P.data.target, hyps[1])
end

local md = {}
local function say(fmt, ...)
  local line = string.format(fmt, ...)
  print(line)
  md[#md + 1] = line
end
local budget = a.iters and string.format("%d batches", a.iters)
  or string.format("%g s of %s time", a.seconds, a.clock == "cpu" and "CPU" or "wall-clock")
local command = "lua5.4 bench/attention_compare.lua " .. (a.iters and "--iters " .. a.iters or "--seconds " .. a.seconds
  .. (a.clock == "wall" and " --clock wall" or ""))
  .. " --attention " .. a.attention .. " --data " .. a.data .. " --threads " .. a.threads
say("Greedy exact match on the held-out tenth, after %s of training each (`%s`).", budget, command)

for _, name in ipairs(sets) do
  local d = DATA[name]
  local s = {src_level = d.src_level, tgt_level = "char", batch = 32, seed = a.seed, layers = 1,
    hidden = a.hidden, embed = 64}
  local P = task.prepare(s, {data = ROOT .. "/" .. d.path})
  -- the held-out pairs as task.prepare drew them (the same permutation of the file)
  local train_part, val = require("recur.tasks.examples").split("seq2seq", {data = ROOT .. "/" .. d.path},
    s.seed, tabular.read_pairs)
  assert(#val[1] == P.counts[2] and #train_part[1] == P.counts[1])
  local runs, all = {}, {}
  for _, attention in ipairs(settings) do
    io.stderr:write(string.format("== %s, attention %s: training %s\n", name, attention, budget))
    local model, summary = train(P, s, attention)
    local started = recur.now()
    local results = score(model, P, val[1], val[2], d.src_level)
    io.stderr:write(string.format("   %d iterations, train loss %.4f, scored in %.1f s\n", summary.iterations,
      summary.train_loss or 0 / 0, recur.now() - started))
    runs[#runs + 1] = {attention = attention, model = model, summary = summary, results = results}
    for _, r in ipairs(results) do all[#all + 1] = r end
  end
  local buckets = buckets_of(all, d.buckets)
  say("")
  say("%s (%d training, %d held-out pairs; source length in %s):", d.path, P.counts[1], P.counts[2], d.unit)
  say("")
  local head = {"| attention | parameters | batches | CPU s | wall s | exact match |"}
  local rule = {"| --- | ---: | ---: | ---: | ---: | ---: |"}
  for _, b in ipairs(buckets) do
    head[#head + 1] = string.format(" %d–%d |", b[1], b[2])
    rule[#rule + 1] = " ---: |"
  end
  local series = {}
  local per_first
  for k, run in ipairs(runs) do
    local per, overall = by_bucket(run.results, buckets)
    per_first = per_first or per
    local row = {string.format("| %s | %d | %d | %.1f | %.1f | %.3f |", run.attention, run.model:num_parameters(),
      run.summary.iterations, run.summary.cpu_seconds, run.summary.seconds, overall)}
    local points = {}
    for i, b in ipairs(buckets) do
      if per[i][2] > 0 then
        row[#row + 1] = string.format(" %.3f |", per[i][1] / per[i][2])
        points[#points + 1] = {(b[1] + b[2]) / 2, per[i][1] / per[i][2]}
      else
        row[#row + 1] = " – |"
      end
    end
    series[k] = {label = run.attention, points = points}
    run.row = table.concat(row)
  end
  local count = {"| held-out pairs | | | | | " .. P.counts[2] .. " |"}
  for i = 1, #buckets do count[#count + 1] = " " .. per_first[i][2] .. " |" end
  say("%s", table.concat(head))
  say("%s", table.concat(rule))
  for _, run in ipairs(runs) do say("%s", run.row) end
  say("%s", table.concat(count))
  local svg = string.format("%s/attention_%s%s.svg", a.out_dir, name, a.iters and "_iters" or "")
  plot.lines{series = series, title = string.format("%s: greedy exact match after %s of training", d.path, budget),
    xlabel = "source length (" .. d.unit .. ", bucket middle)", ylabel = "exact match", y_range = {0, 1}, out = svg}
  io.stderr:write("wrote " .. svg .. "\n")
  if name == "dates" then
    for _, run in ipairs(runs) do
      if run.attention == (a.heatmap_attention or run.attention) and run.attention ~= "none" then
        local path = a.out_dir .. "/attention_date" .. (a.iters and "_iters" or "") .. ".svg"
        local got = draw_alignment(run.model, P, a.heatmap_source, path,
          string.format("%s attention: %s", run.attention, a.heatmap_source))
        say("")
        say("`%s` -> `%s` (%s attention; its weights: %s)", a.heatmap_source, got, run.attention,
          path:match("[^/]*$"))
        io.stderr:write("wrote " .. path .. "\n")
        break
      end
    end
  end
end

local path = a.out_dir .. "/attention" .. (a.iters and "_iters" or "") .. ".md"
local f = assert(io.open(path, "w"))
f:write(table.concat(md, "\n"), "\n")
f:close()
io.stderr:write("wrote " .. path .. "\n")
