-- The language-model task: a text file read at the char or word level, cut into a
-- training part and (from its end) validation and test parts, served as (T,B) chunks
-- of one token stream for truncated BPTT; the measure is perplexity. Sampling is
-- recur.lm.generate (`recur sample`), so predict has nothing to write.
local core = require "recur.core"
local data = require "recur.data"
local LanguageModel = require "recur.models.LanguageModel"
local util = require "recur.util"

local task = {kind = "lm"}

task.OPTIONS = {level = true, embed = true, seq_len = true, bptt_truncate = true, test_data = true,
  test_frac = true, min_freq = true, max_vocab = true, ngram = true, tie_weights = true, sampling_prob = true,
  sampling = true, precision = true}
task.DEFAULTS = {level = "char", layers = 2, hidden = 128, embed = 64, batch = 50, seq_len = 50, ngram = 0}
task.ARCH = {"level", "model", "layers", "hidden", "embed", "dropout", "bptt_truncate", "tie_weights"}
task.LOOP = {"seq_len"}
-- the model's settings that act in training only: kept by --resume, free with --init-from
task.TRAINING = {"sampling_prob", "sampling"}
task.Model = LanguageModel

function task.arch_of(info)
  local c = info.config
  return {level = info.data.tokenizer:to_table().type, model = c.cell, layers = c.layers, hidden = c.hidden,
    embed = c.embed, dropout = c.dropout, bptt_truncate = c.bptt_truncate, tie_weights = c.tie_weights or false,
    sampling_prob = c.sampling_prob or 0, sampling = c.sampling or "argmax"}
end

-- Tokenizer for the level, fitted as char-rnn (characters of the whole text, so
-- validation never meets an unknown character) and word_language_model (words of the
-- training text; the rest become <unk>) do.
local function fit_tokenizer(level, full_text, train_text, opts)
  if level == "char" then return data.CharTokenizer.fit(full_text) end
  if level == "word" then
    return data.WordTokenizer.fit(train_text, {min_freq = opts.min_freq, max_size = opts.max_vocab})
  end
  error("lm: unknown level '" .. tostring(level) .. "' (char or word)", 0)
end

local PREPARE_OPTIONS = {data = true, val_data = true, test_data = true, level = true, val_frac = true,
  test_frac = true, min_freq = true, max_vocab = true, tokenizer = true}

-- Reads and splits the text, fits the tokenizer, encodes the splits. The validation
-- and test parts are the files val_data and test_data when given, else cut from the
-- end of data by val_frac (default 0.05) and test_frac (default 0); a fraction given
-- beside the file it would replace is an error, not ignored.
function task.prepare_data(opts)
  util.check_opts("lm.prepare_data", opts, PREPARE_OPTIONS)
  if opts.val_data and opts.val_frac then
    error("lm: --val-frac and --val-data both give the validation text; keep one", 0)
  end
  if opts.test_data and opts.test_frac then
    error("lm: --test-frac and --test-data both give the test text; keep one", 0)
  end
  local level = opts.level or "char"
  if level ~= "word" and (opts.min_freq or opts.max_vocab) then
    error(string.format("lm: --%s applies to --level word, not %s", opts.min_freq and "min-freq" or "max-vocab", level), 0)
  end
  if opts.tokenizer and (opts.min_freq or opts.max_vocab) then
    error("lm: --min-freq and --max-vocab do not apply when the vocabulary comes from a checkpoint", 0)
  end
  local read = data.read_text(opts.data)
  local train_text, val_text, test_text = data.split(read, {
    val_frac = opts.val_data and 0 or opts.val_frac or 0.05,
    test_frac = opts.test_data and 0 or opts.test_frac or 0})
  if opts.val_data then val_text = data.read_text(opts.val_data) end
  if opts.test_data then test_text = data.read_text(opts.test_data) end
  local full = train_text .. (val_text or "") .. (test_text or "")
  local tokenizer = opts.tokenizer or fit_tokenizer(level, full, train_text, opts)
  local function enc(s) return s and #s > 0 and tokenizer:encode(s) or nil end
  return tokenizer, enc(train_text), enc(val_text), enc(test_text)
end

local function ngram_line(order, V, train_ids, val_ids)
  local t0 = core.now()
  local model = data.NGram.new{order = order, vocab_size = V, k = 1}
  model:fit(train_ids)
  local loss = model:loss(val_ids)
  return string.format("%d-gram baseline (add-1): val loss %.4f, val ppl %.2f (%.1f s)", order, loss, math.exp(loss), core.now() - t0)
end

-- Chunks of one stream; B shrinks to what a short text holds.
local function stream_batcher(ids, B, T)
  if not ids or #ids < 2 then return nil end
  return data.LMBatcher.new(ids, {batch_size = math.max(1, math.min(B, (#ids - 1) // T)), seq_length = T})
end

function task.prepare(s, opts, info)
  if opts.precision ~= nil and opts.precision ~= "fp32" and info then
    error("lm: --precision " .. tostring(opts.precision) .. " applies to a fresh run, not to --resume or --init-from", 0)
  end
  local ngram = type(s.ngram) == "number" and math.tointeger(s.ngram) or nil
  if not ngram or ngram < 0 then error("lm: --ngram must be a non-negative integer, got " .. tostring(s.ngram), 0) end
  local tokenizer, train_ids, val_ids, test_ids = task.prepare_data{
    data = opts.data, val_data = opts.val_data, test_data = opts.test_data, level = s.level,
    val_frac = opts.val_frac, test_frac = opts.test_frac, min_freq = opts.min_freq, max_vocab = opts.max_vocab,
    tokenizer = info and info.data.tokenizer}
  if not train_ids or #train_ids < 2 then error("lm: the training text is empty", 0) end
  if ngram > 0 and not val_ids then
    error("lm: --ngram compares on the validation text, and this run has none", 0)
  end
  local P = {data = {tokenizer = tokenizer}, tokens = {#train_ids, val_ids and #val_ids or 0}, notes = {}}
  P.batcher = data.LMBatcher.new(train_ids, {batch_size = s.batch, seq_length = s.seq_len})
  P.val_batcher = stream_batcher(val_ids, s.batch, s.seq_len)
  P.test_batcher = stream_batcher(test_ids, s.batch, s.seq_len)
  if ngram > 0 then P.notes[1] = ngram_line(ngram, tokenizer:vocab_size(), train_ids, val_ids) end
  return P
end

function task.build(s, P)
  local config = {vocab_size = P.data.tokenizer:vocab_size(), embed = s.embed, hidden = s.hidden, layers = s.layers,
    cell = s.model, dropout = s.dropout, bptt_truncate = s.bptt_truncate}
  if s.tie_weights then config.tie_weights = true end
  config.sampling_prob, config.sampling = s.sampling_prob, s.sampling
  local model = LanguageModel(config)
  -- precision "bf16": the forward products of training (and evaluation) in bf16
  if s.precision ~= nil and s.precision ~= "fp32" then model:set_precision(s.precision, {training = true}) end
  return model
end

function task.describe(s, P, model)
  return string.format("%s-level %s: %d layers x %d hidden, vocabulary %d, %d parameters; %d training tokens (%d batches of %dx%d), %d validation tokens",
    s.level, model.config.cell, model.config.layers, model.config.hidden, P.data.tokenizer:vocab_size(),
    model:num_parameters(), P.tokens[1], P.batcher:num_batches(), s.seq_len, s.batch, P.tokens[2])
end

-- Mean loss (nats/token), perplexity and token count of a model on a text.
function task.evaluate_text(model, tokenizer, text, opts)
  opts = util.check_opts("lm.evaluate_text", opts, {seq_len = true, batch = true, progress = true})
  local ids = tokenizer:encode(text)
  if #ids < 2 then error("lm: the evaluation text is too short", 0) end
  local T = opts.seq_len or 50
  local B = math.max(1, math.min(opts.batch or 50, (#ids - 1) // T))
  local batcher = data.LMBatcher.new(ids, {batch_size = B, seq_length = T})
  -- progress(total): a function called after each batch (recur.job's bar), or nil
  local loss, tokens = model:evaluate_batches(batcher, opts.progress and opts.progress(batcher:num_batches()))
  return loss, math.exp(loss), tokens
end

function task.evaluate(model, info, path, progress)
  local loss, ppl, tokens = task.evaluate_text(model, info.data.tokenizer, data.read_text(path), {progress = progress})
  return string.format("%s: %d tokens, loss %.4f nats/token, perplexity %.3f", path, tokens, loss, ppl)
end

return task
