-- The sequence-to-sequence task: lines `source<TAB>target`, each side read at its own
-- level (--src-level, --tgt-level: char or word), an encoder-decoder (Seq2Seq)
-- trained with teacher forcing on padded, length-bucketed batches. The measures are
-- the teacher-forced loss and, decoding greedily, exact match (the whole target) and
-- token accuracy (target tokens, the end marker included, equal at their position);
-- predict writes the greedy translation of each line; attention gives the attention
-- weights of one translation (`recur attention`).
--
-- The target side holds <pad> <s> </s> (levels.fit's markers), the ids the model pads
-- with, starts from and stops at.
local core = require "recur.core"
local data = require "recur.data"
local tabular = require "recur.data.tabular"
local Seq2Seq = require "recur.models.Seq2Seq"
local levels = require "recur.tasks.levels"
local examples = require "recur.tasks.examples"

local task = {kind = "seq2seq"}

task.OPTIONS = {src_level = true, tgt_level = true, embed = true, min_freq = true, max_vocab = true,
  sampling_prob = true, sampling = true, attention = true, bidirectional = true}
task.DEFAULTS = {src_level = "char", tgt_level = "char", layers = 1, hidden = 128, embed = 64, batch = 32,
  attention = "none", bidirectional = false}
task.ARCH = {"src_level", "tgt_level", "model", "layers", "hidden", "embed", "dropout", "attention", "bidirectional"}
task.LOOP = {}
-- the model's settings that act in training only: kept by --resume, free with --init-from
task.TRAINING = {"sampling_prob", "sampling"}
task.Model = Seq2Seq
task.PREDICT = {max_length = true}

local EVAL_BATCH = 64

function task.arch_of(info)
  local c = info.config
  return {src_level = levels.level(info.data.source), tgt_level = levels.level(info.data.target), model = c.cell,
    layers = c.layers, hidden = c.hidden, embed = c.embed, dropout = c.dropout, sampling_prob = c.sampling_prob or 0,
    sampling = c.sampling or "argmax", attention = c.attention or "none", bidirectional = c.bidirectional or false}
end

local encode_all = examples.encode_all

local function batcher_of(src_ids, tgt_ids, target, B, opts)
  local pad = levels.markers(target)
  local o = {batch_size = B, targets = tgt_ids, target_pad_id = pad}
  for k, v in pairs(opts or {}) do o[k] = v end
  return data.SentenceBatcher.new(src_ids, o)
end

function task.prepare(s, opts, info)
  local train, val = examples.split("seq2seq", opts, s.seed, tabular.read_pairs)
  -- --min-freq and --max-vocab shape the word-level sides
  local vocab = examples.vocab_options("seq2seq", opts, info)
  if vocab and s.src_level ~= "word" and s.tgt_level ~= "word" then
    error(string.format("seq2seq: --%s applies to a word-level side (--src-level or --tgt-level word), both are char",
      opts.min_freq and "min-freq" or "max-vocab"), 0)
  end
  local function side(level) return level == "word" and vocab or {} end
  local source = info and info.data.source or levels.fit("seq2seq", s.src_level, train[1], side(s.src_level))
  local tgt_opts = side(s.tgt_level)
  local target = info and info.data.target or levels.fit("seq2seq", s.tgt_level, train[2],
    {min_freq = tgt_opts.min_freq, max_vocab = tgt_opts.max_vocab, markers = true})
  local P = {data = {source = source, target = target}, counts = {#train[1], val and #val[1] or 0}}
  P.batcher = batcher_of(encode_all(source, train[1]), encode_all(target, train[2]), target, s.batch, {seed = s.seed})
  if val then
    P.val_batcher = batcher_of(encode_all(source, val[1]), encode_all(target, val[2]), target, s.batch, {shuffle = false})
  end
  return P
end

function task.build(s, P)
  local pad, bos, eos = levels.markers(P.data.target)
  return Seq2Seq{src_vocab_size = P.data.source:vocab_size(), tgt_vocab_size = P.data.target:vocab_size(),
    embed = s.embed, hidden = s.hidden, layers = s.layers, cell = s.model, dropout = s.dropout,
    pad_id = pad, bos_id = bos, eos_id = eos, sampling_prob = s.sampling_prob, sampling = s.sampling,
    attention = s.attention, bidirectional = s.bidirectional}
end

function task.describe(s, P, model)
  local c = model.config
  local extras = (c.bidirectional and ", bidirectional encoder" or "") ..
    (c.attention ~= "none" and ", " .. c.attention .. " attention" or "")
  return string.format("seq2seq %s -> %s, %s: %d layers x %d hidden%s, vocabularies %d -> %d, %d parameters; %d training pairs (%d batches of %d), %d validation pairs",
    s.src_level, s.tgt_level, c.cell, c.layers, c.hidden, extras,
    P.data.source:vocab_size(), P.data.target:vocab_size(), model:num_parameters(), P.counts[1],
    P.batcher:num_batches(), s.batch, P.counts[2])
end

-- The greedy translations (id arrays, ending with </s> when produced) of the sources of
-- a batcher in file order, by position.
local function translate(model, batcher, max_length)
  local out = {}
  model:evaluate()
  for k = 1, batcher:num_batches() do
    local batch = batcher:get_batch(k)
    local hyps = model:greedy(batch.x, batch.lengths, {max_length = max_length})
    for b, i in ipairs(batch.indices) do out[i] = hyps[b] end
  end
  return out
end

function task.evaluate(model, info, path, progress)
  local sources, targets = tabular.read_pairs(path)
  local src, tgt = encode_all(info.data.source, sources), encode_all(info.data.target, targets)
  local longest = 0
  for _, t in ipairs(tgt) do longest = math.max(longest, #t) end
  local batcher = batcher_of(src, tgt, info.data.target, EVAL_BATCH, {sort = false, shuffle = false})
  local loss = model:evaluate_batches(batcher, progress and progress(batcher:num_batches()))
  -- room for a translation twice as long as the longest gold one: a model that never
  -- ends is scored wrong, not cut to length
  local hyps = translate(model, batcher, 2 * longest + 10)
  local exact, right, total = 0, 0, 0
  for i, gold in ipairs(tgt) do
    local hyp, same = hyps[i], #hyps[i] == #gold
    for t = 1, #gold do
      if hyp[t] == gold[t] then right = right + 1 else same = false end
    end
    total = total + #gold
    if same then exact = exact + 1 end
  end
  return string.format("%s: %d pairs, loss %.4f nats/token, perplexity %.3f, exact match %.4f (%d/%d), token accuracy %.4f (%d/%d)",
    path, #tgt, loss, math.exp(loss), exact / #tgt, exact, #tgt, right / total, right, total)
end

-- Each line of the file is a source (a line `source<TAB>target` gives its source);
-- each output line is its greedy translation, joined by the target's joiner. An empty
-- line stays empty.
function task.predict(model, info, path, opts, write)
  local function translations(src)
    local batcher = data.SentenceBatcher.new(src, {batch_size = EVAL_BATCH, sort = false, shuffle = false})
    local out = {}
    for k, hyp in ipairs(translate(model, batcher, opts.max_length or 100)) do
      out[k] = levels.decode(info.data.target, hyp)
    end
    return out
  end
  examples.predict_lines(path, function(line) return line:match("^([^\t]*)") end, info.data.source,
    translations, write)
end

-- The attention weights of the greedy translation of one source line (`recur
-- attention`): {source = its tokens, output = the translation's tokens (with the end
-- marker when it was produced), weights = one row per output token over the source
-- tokens, translation = the text}. opts: max_length (100).
function task.attention(model, info, text, opts)
  opts = opts or {}
  if model.config.attention == "none" then
    error("attention: the model has no attention (it was trained with --attention none)", 0)
  end
  local source, target = info.data.source, info.data.target
  local ids = levels.encode(source, text)
  if #ids == 0 then error("attention: --src holds no token", 0) end
  model:evaluate()
  local src = core.tensor(ids, "int64"):reshape(#ids, 1)
  local out, weights = model:greedy(src, nil, {max_length = opts.max_length or 100, attention = true})
  local function tokens(tokenizer, list)
    local t = {}
    for i, id in ipairs(list) do t[i] = tokenizer.vocab:token(id) end
    return t
  end
  return {source = tokens(source, ids), output = tokens(target, out[1]), weights = weights[1],
          translation = levels.decode(target, out[1])}
end

return task
