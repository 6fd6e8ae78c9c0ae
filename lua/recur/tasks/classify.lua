-- The classification task: lines `label<TAB>text`, the label any string, the text
-- read at --level char|word, a SequenceClassifier (optionally --bidirectional) on
-- padded, length-bucketed batches. The labels are those of the training and
-- validation files, sorted (class ids 1..C in that order). The measures are the loss
-- and the accuracy; predict writes each line's most likely label.
local data = require "recur.data"
local tabular = require "recur.data.tabular"
local SequenceClassifier = require "recur.models.SequenceClassifier"
local levels = require "recur.tasks.levels"
local examples = require "recur.tasks.examples"

local task = {kind = "classify"}

task.OPTIONS = {level = true, embed = true, bidirectional = true, min_freq = true, max_vocab = true}
task.DEFAULTS = {level = "char", layers = 1, hidden = 64, embed = 32, batch = 32, bidirectional = false}
task.ARCH = {"level", "model", "layers", "hidden", "embed", "dropout", "bidirectional"}
task.TRAINING = {}
task.LOOP = {}
task.PREDICT = {}

local EVAL_BATCH = 64

-- The label strings of a checkpoint's data entry (an array, or a table holding one).
local function label_list(entry)
  return entry.labels or entry
end

function task.arch_of(info)
  local c = info.config
  return {level = levels.level(info.data.tokenizer), model = c.cell, layers = c.layers, hidden = c.hidden,
    embed = c.embed, dropout = c.dropout, bidirectional = c.bidirectional or false}
end

local function fit_labels(...)
  local seen, list = {}, {}
  for _, labels in ipairs({...}) do
    for _, l in ipairs(labels) do
      if not seen[l] then seen[l] = true; list[#list + 1] = l end
    end
  end
  table.sort(list)
  return list
end

-- Class ids of label strings; a label the model does not know is an error naming it.
local function label_ids(list, labels, where)
  local index = {}
  for i, l in ipairs(list) do index[l] = i end
  local out = {}
  for i, l in ipairs(labels) do
    out[i] = index[l] or error(string.format("classify: %s: label '%s' (example %d) is not one of the model's %d labels",
      where, l, i, #list), 0)
  end
  return out
end

local encode_all = examples.encode_all

function task.prepare(s, opts, info)
  local train, val = examples.split("classify", opts, s.seed, tabular.read_labeled)
  local vocab = examples.vocab_options("classify", opts, info)
  local tokenizer = info and info.data.tokenizer or levels.fit("classify", s.level, train[2], vocab)
  local list = info and label_list(info.data.labels) or fit_labels(train[1], val and val[1] or {})
  if #list < 2 then
    error(string.format("classify: '%s' has one label ('%s'); a classifier needs two or more", opts.data, list[1]), 0)
  end
  local P = {data = {tokenizer = tokenizer, labels = list},
    counts = {#train[1], val and #val[1] or 0}, labels = list}
  P.batcher = data.SentenceBatcher.new(encode_all(tokenizer, train[2]), {batch_size = s.batch,
    labels = label_ids(list, train[1], opts.data), seed = s.seed})
  if val then
    P.val_batcher = data.SentenceBatcher.new(encode_all(tokenizer, val[2]), {batch_size = s.batch,
      labels = label_ids(list, val[1], opts.val_data or opts.data), shuffle = false})
  end
  return P
end

function task.build(s, P)
  return SequenceClassifier{vocab_size = P.data.tokenizer:vocab_size(), num_classes = #P.labels, embed = s.embed,
    hidden = s.hidden, layers = s.layers, cell = s.model, dropout = s.dropout, bidirectional = s.bidirectional}
end

function task.describe(s, P, model)
  return string.format("%s-level %s%s classifier: %d layers x %d hidden, vocabulary %d, %d labels, %d parameters; %d training examples (%d batches of %d), %d validation examples",
    s.level, model.config.bidirectional and "bidirectional " or "", model.config.cell, model.config.layers,
    model.config.hidden, P.data.tokenizer:vocab_size(), #P.labels, model:num_parameters(), P.counts[1],
    P.batcher:num_batches(), s.batch, P.counts[2])
end

-- The predicted class ids of sequences, by position.
local function classify(model, seqs)
  local batcher = data.SentenceBatcher.new(seqs, {batch_size = EVAL_BATCH, sort = false, shuffle = false})
  local out = {}
  for k = 1, batcher:num_batches() do
    local batch = batcher:get_batch(k)
    local predicted = model:predict(batch.x, batch.lengths):totable()
    for b, i in ipairs(batch.indices) do out[i] = predicted[b] end
  end
  return out
end

function task.evaluate(model, info, path, progress)
  local labels, texts = tabular.read_labeled(path)
  local list = label_list(info.data.labels)
  local ids = label_ids(list, labels, path)
  local seqs = encode_all(info.data.tokenizer, texts)
  local batcher = data.SentenceBatcher.new(seqs, {batch_size = EVAL_BATCH, labels = ids, sort = false, shuffle = false})
  local loss = model:evaluate_batches(batcher, progress and progress(batcher:num_batches()))
  local right = 0
  for i, p in ipairs(classify(model, seqs)) do
    if p == ids[i] then right = right + 1 end
  end
  return string.format("%s: %d examples, loss %.4f, accuracy %.4f (%d/%d)", path, #ids, loss, right / #ids, right, #ids)
end

-- Each line is a text (a line `label<TAB>text` gives its text); each output line is
-- its label. An empty line stays empty.
function task.predict(model, info, path, _, write)
  local list = label_list(info.data.labels)
  local function labels(seqs)
    local out = {}
    for k, id in ipairs(classify(model, seqs)) do out[k] = list[id] end
    return out
  end
  examples.predict_lines(path, function(line) return line:match("\t(.*)$") or line end, info.data.tokenizer,
    labels, write)
end

return task
