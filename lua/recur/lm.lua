-- recur.lm: a language-model job from a text file to checkpoints, samples and
-- perplexity; what `recur train|sample|eval` and `make demo` run.
--
--   local result = lm.train{data = "data/tinyshakespeare.txt", level = "char", max_seconds = 120}
--   local model, tokenizer = lm.load("cv/best.safetensors")
--   lm.generate(model, tokenizer, {length = 200, temperature = 0.8}, io.write)
--   local loss, ppl = lm.evaluate_text(model, tokenizer, text)
--
-- Checkpoints are safetensors files: model parameters under "model.", optimizer
-- state under "optim.", the carried hidden state under "hidden.", and in
-- __metadata__ the JSON strings "recur" (format tag and version), "config"
-- (architecture), "tokenizer" (vocabulary), "train" (loop state and options).
-- `last.safetensors` is written at every evaluation for resuming; `best.safetensors`
-- when the validation loss improves.
local core = require "recur.core"
local data = require "recur.data"
local beam = require "recur.beam"
local decode = require "recur.decode"
local optim = require "recur.optim"
local rio = require "recur.io"
local train = require "recur.train"
local Progress = require "recur.progress"
local LanguageModel = require "recur.models.LanguageModel"

local lm = {}

local FORMAT = "recur-lm"

local CONFIG_KEYS = {"vocab_size", "embed", "hidden", "layers", "cell", "dropout", "level"}

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

local function tokenizer_from_table(level, t)
  if level == "char" then return data.CharTokenizer.from_table(t) end
  return data.WordTokenizer.from_table(t)
end

-- Reads and splits the text, fits the tokenizer, encodes the splits.
function lm.prepare_data(opts)
  local train_text, val_text, test_text, full
  if opts.val_data or opts.test_data then
    train_text, val_text, test_text = data.read_splits{train = opts.data, val = opts.val_data, test = opts.test_data}
    full = train_text .. (val_text or "") .. (test_text or "")
  else
    full = data.read_text(opts.data)
    train_text, val_text, test_text = data.split(full, {val_frac = opts.val_frac or 0.05, test_frac = opts.test_frac or 0})
  end
  local tokenizer = opts.tokenizer or fit_tokenizer(opts.level or "char", full, train_text, opts)
  local function enc(s) return s and #s > 0 and tokenizer:encode(s) or nil end
  return tokenizer, enc(train_text), enc(val_text), enc(test_text)
end

-- ---- checkpoints -------------------------------------------------------------

local function prefixed(prefix, tensors, into)
  for name, t in pairs(tensors) do into[prefix .. name] = t end
  return into
end

function lm.save(path, model, tokenizer, extra)
  extra = extra or {}
  local tensors = prefixed("model.", model:state_dict(), {})
  if extra.optimizer then
    local otensors, ometa = extra.optimizer:state_dict()
    prefixed("optim.", otensors, tensors)
    extra.train = extra.train or {}
    extra.train.optimizer = ometa
  end
  if extra.trainer_tensors then prefixed("", extra.trainer_tensors, tensors) end
  local config = {}
  for _, k in ipairs(CONFIG_KEYS) do config[k] = model.config[k] end
  rio.save(path, tensors, {
    recur = rio.encode_meta({format = FORMAT, version = core.version}),
    config = rio.encode_meta(config),
    tokenizer = rio.encode_meta(tokenizer:to_table()),
    train = rio.encode_meta(extra.train or {}),
  })
end

local function decode_json(path, meta, key)
  local ok, value = pcall(rio.decode_meta, meta[key] or "")
  if not ok or type(value) ~= "table" then
    error(string.format("lm: '%s' is not a recur language-model checkpoint (metadata '%s' missing or damaged)", path, key), 0)
  end
  return value
end

-- model, tokenizer, and a table with everything else in the file.
function lm.load(path)
  local tensors, meta = rio.load(path)
  meta = meta or {}
  if meta.recur == nil then
    error(string.format("lm: '%s' is not a recur language-model checkpoint (no 'recur' metadata)", path), 0)
  end
  local tag = decode_json(path, meta, "recur")
  if tag.format ~= FORMAT then
    error(string.format("lm: '%s' holds a '%s', not a language model", path, tostring(tag.format)), 0)
  end
  local config = decode_json(path, meta, "config")
  local tokenizer = tokenizer_from_table(config.level, decode_json(path, meta, "tokenizer"))
  local model = LanguageModel(config)
  local params, optim_tensors, other = {}, {}, {}
  for name, t in pairs(tensors) do
    local p = name:match("^model%.(.+)$")
    local o = name:match("^optim%.(.+)$")
    if p then params[p] = t elseif o then optim_tensors[o] = t else other[name] = t end
  end
  model:load_state_dict(params)
  return model, tokenizer, {train = decode_json(path, meta, "train"), optim_tensors = optim_tensors,
                            trainer_tensors = other, config = config}
end

-- ---- training ------------------------------------------------------------------

local function ngram_line(order, V, train_ids, val_ids)
  local t0 = core.now()
  local model = data.NGram.new{order = order, vocab_size = V, k = 1}
  model:fit(train_ids)
  local loss = model:loss(val_ids)
  return string.format("%d-gram baseline (add-1): val loss %.4f, val ppl %.2f (%.1f s)", order, loss, math.exp(loss), core.now() - t0)
end

-- opts: as `recur train` flags with underscores (data, level, model, layers, hidden,
-- embed, dropout, batch, seq_len, lr, lr_decay, lr_decay_after, clip, epochs,
-- max_iters, max_seconds, val_frac, test_frac, eval_every, checkpoint_dir, resume,
-- log, seed, ngram, quiet) plus out (where messages go, default io.stderr).
-- Returns the trainer's summary, with test_loss when there is a test split.
function lm.train(opts)
  local out = opts.out or io.stderr
  local function say(fmt, ...) out:write(string.format(fmt, ...), "\n"); out:flush() end
  core.manual_seed(opts.seed or 123)

  local resumed
  if opts.resume then
    local model, tokenizer, rest = lm.load(opts.resume)
    resumed = {model = model, tokenizer = tokenizer, rest = rest}
  end
  local tokenizer, train_ids, val_ids, test_ids = lm.prepare_data{
    data = opts.data, val_data = opts.val_data, test_data = opts.test_data, level = opts.level,
    val_frac = opts.val_frac, test_frac = opts.test_frac, min_freq = opts.min_freq, max_vocab = opts.max_vocab,
    tokenizer = resumed and resumed.tokenizer}
  if not train_ids or #train_ids < 2 then error("lm: the training text is empty", 0) end
  local V = tokenizer:vocab_size()
  local B, T = opts.batch or 50, opts.seq_len or 50
  local batcher = data.LMBatcher.new(train_ids, {batch_size = B, seq_length = T})
  local val_batcher = val_ids and #val_ids > 1 and data.LMBatcher.new(val_ids, {
    batch_size = math.max(1, math.min(B, (#val_ids - 1) // T)), seq_length = T}) or nil

  local model = resumed and resumed.model or LanguageModel{
    vocab_size = V, embed = opts.embed or 64, hidden = opts.hidden or 128, layers = opts.layers or 2,
    cell = opts.model or "lstm", dropout = opts.dropout or 0, level = opts.level or "char"}
  local optimizer = optim.Adam(model, {lr = opts.lr or 2e-3})
  if not opts.quiet then
    say("%s-level %s: %d layers x %d hidden, vocabulary %d, %d parameters; %d training tokens (%d batches of %dx%d), %d validation tokens",
      model.config.level, model.config.cell, model.config.layers, model.config.hidden, V, model:num_parameters(),
      #train_ids, batcher:num_batches(), T, B, val_ids and #val_ids or 0)
  end

  local dir = opts.checkpoint_dir or "cv"
  os.execute("mkdir -p '" .. dir:gsub("'", "'\\''") .. "'")
  local progress = not opts.quiet and Progress.new{total = opts.max_iters or math.floor((opts.epochs or 50) * batcher:num_batches()),
    max_seconds = opts.max_seconds, out = out} or nil

  local trainer
  local function checkpoint(record)
    local state_tensors, state = trainer:state()
    state.options = {batch = B, seq_len = T, clip = opts.clip, lr_decay = opts.lr_decay, lr_decay_after = opts.lr_decay_after}
    state.record = record
    local extra = {optimizer = optimizer, train = state, trainer_tensors = state_tensors}
    lm.save(dir .. "/last.safetensors", model, tokenizer, extra)
    if record.best then lm.save(dir .. "/best.safetensors", model, tokenizer, extra) end
  end
  trainer = train.Trainer{
    model = model, optimizer = optimizer, batcher = batcher, val_batcher = val_batcher,
    clip = opts.clip or 5, max_epochs = opts.epochs or 50, max_iters = opts.max_iters,
    max_seconds = opts.max_seconds, eval_every = opts.eval_every or 1000,
    lr_decay = opts.lr_decay or 0.97, lr_decay_after = opts.lr_decay_after or 10,
    log = opts.log, progress = progress or false, on_eval = checkpoint,
  }
  if resumed then
    optimizer:load_state_dict(resumed.rest.optim_tensors, resumed.rest.train.optimizer)
    trainer:set_state(resumed.rest.trainer_tensors, resumed.rest.train)
    if not opts.quiet then say("resumed from %s at iteration %d", opts.resume, trainer.iter) end
  end
  if opts.ngram and opts.ngram > 0 and val_ids then say("%s", ngram_line(math.floor(opts.ngram), V, train_ids, val_ids)) end

  local summary = trainer:run()
  if test_ids and #test_ids > 1 then
    local test_batcher = data.LMBatcher.new(test_ids, {batch_size = math.max(1, math.min(B, (#test_ids - 1) // T)), seq_length = T})
    summary.test_loss = model:evaluate_batches(test_batcher)
  end
  if not opts.quiet then
    say("stopped after %d iterations (%s), %.1f s: train loss %.4f%s%s", summary.iterations, summary.stop, summary.seconds,
      summary.train_loss or 0 / 0,
      summary.best_val < math.huge and string.format(", best val loss %.4f (ppl %.2f)", summary.best_val, math.exp(summary.best_val)) or "",
      summary.test_loss and string.format(", test loss %.4f (ppl %.2f)", summary.test_loss, math.exp(summary.test_loss)) or "")
    say("checkpoints in %s/ (best.safetensors, last.safetensors)", dir)
  end
  summary.model, summary.tokenizer, summary.checkpoint_dir = model, tokenizer, dir
  return summary
end

-- ---- generation and evaluation --------------------------------------------------

-- Streams `length` tokens to emit(text) after feeding the prime text.
-- opts: length, temperature (0: greedy), top_k, top_p, prime, banned (set of ids),
-- stop_id (end token; generation stops after it). With beam = K (> 1) the text is
-- the best of a beam search of width K (recur.beam; length_penalty passed on),
-- emitted whole once the search ends; the sampling options do not apply.
function lm.generate(model, tokenizer, opts, emit)
  opts = opts or {}
  emit = emit or function() end
  model:evaluate()
  local prime = opts.prime or ""
  local prime_ids = #prime > 0 and tokenizer:encode(prime) or {}
  local ids = core.zeros({1}, "int64")
  local state, logits = nil, nil
  if #prime_ids == 0 then
    -- no prime: start from a random token, as char-rnn does
    prime_ids = {core.random_integer(1, tokenizer:vocab_size())}
    emit(tokenizer:decode(prime_ids))
  else
    emit(prime)
  end
  if opts.beam and opts.beam > 1 then
    local hyps = beam.search(model, prime_ids, {beam_size = opts.beam, length = opts.length or 200,
      end_id = opts.stop_id, banned = opts.banned, length_penalty = opts.length_penalty, n_best = 1})
    emit(tokenizer:decode(hyps[1].ids))
    return hyps[1].ids
  end
  for _, id in ipairs(prime_ids) do
    ids:set(1, id)
    logits, state = model:step(ids, state)
  end
  local out = {}
  for i = 1, opts.length or 200 do
    local id = decode.choose(logits:select(1, 1), opts)
    out[i] = id
    emit(tokenizer:decode({id}))
    if opts.stop_id and id == opts.stop_id then break end
    ids:set(1, id)
    logits, state = model:step(ids, state)
  end
  return out
end

function lm.evaluate_text(model, tokenizer, text, opts)
  opts = opts or {}
  local ids = tokenizer:encode(text)
  if #ids < 2 then error("lm: the evaluation text is too short", 0) end
  local T = opts.seq_len or 50
  local B = math.max(1, math.min(opts.batch or 50, (#ids - 1) // T))
  local batcher = data.LMBatcher.new(ids, {batch_size = B, seq_length = T})
  local loss, tokens = model:evaluate_batches(batcher)
  return loss, math.exp(loss), tokens
end

-- ---- the command's subcommands ----------------------------------------------------

local function underscore_keys(args)
  local t = {}
  for k, v in pairs(args) do t[(k:gsub("-", "_"))] = v end
  return t
end

function lm.train_command(args)
  local opts = underscore_keys(args)
  opts.out = io.stderr
  lm.train(opts)
end

function lm.sample_command(args)
  local model, tokenizer = lm.load(args.checkpoint)
  core.manual_seed(args.seed or 123)
  lm.generate(model, tokenizer, {length = args.length, temperature = args.temperature, top_k = args.top_k,
    top_p = args.top_p, prime = args.prime, beam = args.beam, length_penalty = args.length_penalty}, function(s) io.stdout:write(s); io.stdout:flush() end)
  io.stdout:write("\n")
end

function lm.eval_command(args)
  local model, tokenizer = lm.load(args.checkpoint)
  local text = data.read_text(args.data)
  local loss, ppl, tokens = lm.evaluate_text(model, tokenizer, text)
  print(string.format("%s: %d tokens, loss %.4f nats/token, perplexity %.3f", args.data, tokens, loss, ppl))
end

return lm
