-- recur.lm: a language-model job from a text file to checkpoints, samples and
-- perplexity; what `recur train|sample|eval` and `make demo` run.
--
--   local result = lm.train{data = "data/tinyshakespeare.txt", level = "char", max_seconds = 120}
--   local model, tokenizer = lm.load("cv/best.safetensors")
--   lm.generate(model, tokenizer, {length = 200, temperature = 0.8}, io.write)
--   local loss, ppl = lm.evaluate_text(model, tokenizer, text)
--
-- Checkpoints are recur.checkpoint's files (kind "lm", the tokenizer as data entry
-- "tokenizer", whose type is the level, char or word; "train" holds the loop's state
-- and options), loaded by recur.load as well. `last.safetensors` is written at every
-- evaluation for resuming; `best.safetensors` when the validation loss improves.
--
-- train owns its checkpoint directory for the whole run: it creates it, takes the lock
-- `train.lock` (flock; a second run on the same directory is refused, naming the pid
-- that holds it), removes temporaries a killed save left, and saves a probe file, all
-- before the first iteration, so an unwritable directory costs no training.
local core = require "recur.core"
local data = require "recur.data"
local beam = require "recur.beam"
local decode = require "recur.decode"
local optim = require "recur.optim"
local rio = require "recur.io"
local checkpoint = require "recur.checkpoint"
local train = require "recur.train"
local Progress = require "recur.progress"
local LanguageModel = require "recur.models.LanguageModel"
local util = require "recur.nn.util"

local lm = {}

local LOCK_NAME = "train.lock"

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
function lm.prepare_data(opts)
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

-- ---- checkpoints -------------------------------------------------------------

-- recur.checkpoint's format, kind "lm", the tokenizer as its data entry "tokenizer".
-- extra: optimizer (its state), train (the loop's state), trainer_tensors (the carried
-- hidden state, "hidden.h" and "hidden.c").
function lm.save(path, model, tokenizer, extra)
  extra = extra or {}
  checkpoint.save(path, model, {data = {tokenizer = tokenizer}, optimizer = extra.optimizer, train = extra.train,
    tensors = extra.trainer_tensors})
end

-- model, tokenizer, and a table with everything else in the file: train (with the
-- optimizer's meta as train.optimizer), optim_tensors, trainer_tensors, config, level.
function lm.load(path)
  local model, info = checkpoint.load(path)
  if info.kind ~= "lm" then
    error(string.format("lm: '%s' holds a %s model, not a language model", path, info.kind), 0)
  end
  local tokenizer = info.data.tokenizer
  if not tokenizer then error(string.format("lm: '%s' has no tokenizer", path), 0) end
  return model, tokenizer, {train = info.train, optim_tensors = info.optim_tensors, trainer_tensors = info.tensors,
                            config = info.config, level = tokenizer:to_table().type}
end

-- ---- training ------------------------------------------------------------------

local function ngram_line(order, V, train_ids, val_ids)
  local t0 = core.now()
  local model = data.NGram.new{order = order, vocab_size = V, k = 1}
  model:fit(train_ids)
  local loss = model:loss(val_ids)
  return string.format("%d-gram baseline (add-1): val loss %.4f, val ppl %.2f (%.1f s)", order, loss, math.exp(loss), core.now() - t0)
end

-- The defaults of lm.train's options (and of `recur train`'s flags).
lm.TRAIN_DEFAULTS = {level = "char", model = "lstm", layers = 2, hidden = 128, embed = 64, dropout = 0,
  batch = 50, seq_len = 50, lr = 2e-3, lr_decay = 0.97, lr_decay_after = 10, clip = 5, epochs = 50,
  eval_every = 1000, seed = 123, checkpoint_dir = "cv", ngram = 0}
local DEFAULTS = lm.TRAIN_DEFAULTS

local TRAIN_OPTIONS = {data = true, val_data = true, test_data = true, level = true, model = true,
  layers = true, hidden = true, embed = true, dropout = true, bptt_truncate = true, batch = true, seq_len = true, lr = true,
  lr_decay = true, lr_decay_after = true, clip = true, epochs = true, max_iters = true,
  max_seconds = true, val_frac = true, test_frac = true, eval_every = true, min_freq = true,
  max_vocab = true, checkpoint_dir = true, resume = true, log = true, seed = true, ngram = true,
  quiet = true, out = true}

-- What a resumed run takes from its checkpoint, in the order they are checked: the
-- architecture and vocabulary, and the settings whose state the file carries (the
-- batcher's position, the optimizer's decayed rate, the generator).
local RESUMED = {"level", "model", "layers", "hidden", "embed", "dropout", "bptt_truncate", "batch", "seq_len", "lr",
  "lr_decay", "lr_decay_after", "clip", "seed"}

local function flag(key) return "--" .. key:gsub("_", "-") end

-- The settings of a run: the options given, else the checkpoint's when resuming,
-- else the defaults. A resumed run continues with its checkpoint's settings; an option
-- that disagrees with them is an error rather than silently overruled.
local function resolve_settings(opts, resumed)
  local s = {}
  for k, v in pairs(DEFAULTS) do s[k] = v end
  for k, v in pairs(opts) do s[k] = v end
  if not resumed then return s end
  local c, o = resumed.rest.config, resumed.rest.train.options or {}
  local saved = {level = resumed.rest.level, model = c.cell, layers = c.layers, hidden = c.hidden,
    embed = c.embed, dropout = c.dropout, bptt_truncate = c.bptt_truncate, batch = o.batch, seq_len = o.seq_len, lr = o.lr,
    lr_decay = o.lr_decay, lr_decay_after = o.lr_decay_after, clip = o.clip, seed = o.seed}
  for _, k in ipairs(RESUMED) do
    if opts[k] ~= nil and saved[k] == nil then
      error(string.format("lm: %s cannot be checked against '%s', which does not record it; leave it out when resuming",
        flag(k), opts.resume), 0)
    end
    if opts[k] ~= nil and opts[k] ~= saved[k] then
      error(string.format("lm: %s %s differs from %s in '%s' (a resumed run continues with its checkpoint's settings)",
        flag(k), tostring(opts[k]), tostring(saved[k]), opts.resume), 0)
    end
    if saved[k] ~= nil then s[k] = saved[k] end
  end
  return s
end

-- Calls f(...), and on failure raises "<context><its message>" (without the
-- "file.lua:N: " a binding's luaL_error adds; an interrupt unchanged).
local function with_context(context, f, ...)
  local ok, a, b = pcall(f, ...)
  if ok then return a, b end
  rio.reraise_interrupt(a)
  error(context .. tostring(a):gsub("^[^:\n]*%.lua:%d+: ", ""), 0)
end

local function make_dirs(dir)
  local prefix = dir:sub(1, 1) == "/" and "/" or ""
  for part in dir:gmatch("[^/]+") do
    prefix = prefix .. part
    core.make_dir(prefix)
    prefix = prefix .. "/"
  end
end

-- Makes the checkpoint directory this run's before any training: created, locked
-- (returns the lock), cleared of stale temporaries, and a probe checkpoint saved and
-- removed, so a directory that cannot take checkpoints fails now, not at the first
-- evaluation.
local function own_checkpoint_dir(dir)
  local context = "lm: cannot write checkpoints in '" .. dir .. "': "
  with_context(context, make_dirs, dir)
  local lock_path = dir .. "/" .. LOCK_NAME
  local lock, holder = with_context(context, core.lock_file, lock_path)
  if not lock then
    local pid = holder:match("^%s*(%d+)")
    error(string.format("lm: checkpoint directory '%s' is in use by %s (lock '%s'); wait for that run or choose another --checkpoint-dir",
      dir, pid and "process " .. pid or "another process", lock_path), 0)
  end
  local ok, err = pcall(function()
    with_context(context, rio.remove_stale_tmp, dir)
    local probe = dir .. "/.probe.safetensors"
    with_context(context, rio.save, probe, {probe = core.zeros(1)})
    os.remove(probe)
  end)
  if not ok then
    lock:unlock() -- at once, not whenever the collector finds it
    error(err, 0)
  end
  return lock
end

-- opts: as `recur train` flags with underscores (data, val_data, test_data, level,
-- model, layers, hidden, embed, dropout, bptt_truncate, batch, seq_len, lr, lr_decay, lr_decay_after,
-- clip, epochs, max_iters, max_seconds, val_frac, test_frac, eval_every, min_freq,
-- max_vocab, checkpoint_dir, resume, log, seed, ngram, quiet) plus out (where messages
-- go, default io.stderr); defaults in lm.TRAIN_DEFAULTS. An unknown option, or one
-- that could not act (min_freq at the char level, a resumed run's fixed settings
-- given different values, ngram without validation text), is an error.
-- Returns the trainer's summary, with test_loss when there is a test split.
function lm.train(opts)
  util.check_opts("lm.train", opts, TRAIN_OPTIONS)
  local out = opts.out or io.stderr
  local function say(fmt, ...) rio.write(out, "messages", string.format(fmt, ...), "\n") end

  local resumed
  if opts.resume then
    local model, tokenizer, rest = lm.load(opts.resume)
    resumed = {model = model, tokenizer = tokenizer, rest = rest}
  end
  local s = resolve_settings(opts, resumed)
  util.check_positive_int("lm.train", "epochs", s.epochs)
  -- The rate decays on entering each epoch past lr_decay_after + 1 (char-rnn's rule).
  if (opts.lr_decay or opts.lr_decay_after) and s.lr_decay ~= 1 and s.epochs < s.lr_decay_after + 2 then
    error(string.format("lm: the learning rate would never decay: decay starts at epoch %s, after the last (--epochs %d)",
      tostring(s.lr_decay_after + 2), s.epochs), 0)
  end
  local ngram = type(s.ngram) == "number" and math.tointeger(s.ngram) or nil
  if not ngram or ngram < 0 then error("lm: --ngram must be a non-negative integer, got " .. tostring(s.ngram), 0) end
  core.manual_seed(s.seed)

  local tokenizer, train_ids, val_ids, test_ids = lm.prepare_data{
    data = opts.data, val_data = opts.val_data, test_data = opts.test_data, level = s.level,
    val_frac = opts.val_frac, test_frac = opts.test_frac, min_freq = opts.min_freq, max_vocab = opts.max_vocab,
    tokenizer = resumed and resumed.tokenizer}
  if not train_ids or #train_ids < 2 then error("lm: the training text is empty", 0) end
  if ngram > 0 and not val_ids then
    error("lm: --ngram compares on the validation text, and this run has none", 0)
  end
  -- Everything that can refuse the run has run; now the places its output goes.
  local dir = s.checkpoint_dir
  local lock <close> = own_checkpoint_dir(dir)
  if opts.log then
    local f, err = io.open(opts.log, "a")
    if not f then error("lm: cannot write the log: " .. tostring(err), 0) end
    f:close()
  end
  local V = tokenizer:vocab_size()
  local B, T = s.batch, s.seq_len
  local batcher = data.LMBatcher.new(train_ids, {batch_size = B, seq_length = T})
  local val_batcher = val_ids and #val_ids > 1 and data.LMBatcher.new(val_ids, {
    batch_size = math.max(1, math.min(B, (#val_ids - 1) // T)), seq_length = T}) or nil

  local model = resumed and resumed.model or LanguageModel{
    vocab_size = V, embed = s.embed, hidden = s.hidden, layers = s.layers, cell = s.model, dropout = s.dropout,
    bptt_truncate = s.bptt_truncate}
  local optimizer = optim.Adam(model, {lr = s.lr})
  if not opts.quiet then
    say("%s-level %s: %d layers x %d hidden, vocabulary %d, %d parameters; %d training tokens (%d batches of %dx%d), %d validation tokens",
      s.level, model.config.cell, model.config.layers, model.config.hidden, V, model:num_parameters(),
      #train_ids, batcher:num_batches(), T, B, val_ids and #val_ids or 0)
  end

  local progress = not opts.quiet and Progress.new{total = opts.max_iters or math.floor(s.epochs * batcher:num_batches()),
    max_seconds = opts.max_seconds, out = out} or nil

  local trainer
  local wrote_best = false
  local function checkpoint(record)
    local state_tensors, state = trainer:state()
    state.options = {batch = B, seq_len = T, clip = s.clip, lr_decay = s.lr_decay, lr_decay_after = s.lr_decay_after,
                     lr = s.lr, seed = s.seed}
    state.record = record
    local extra = {optimizer = optimizer, train = state, trainer_tensors = state_tensors}
    lm.save(dir .. "/last.safetensors", model, tokenizer, extra)
    if record.best then
      lm.save(dir .. "/best.safetensors", model, tokenizer, extra)
      wrote_best = true
    end
  end
  trainer = train.Trainer{
    model = model, optimizer = optimizer, batcher = batcher, val_batcher = val_batcher,
    clip = s.clip, max_epochs = s.epochs, max_iters = opts.max_iters,
    max_seconds = opts.max_seconds, eval_every = s.eval_every,
    lr_decay = s.lr_decay, lr_decay_after = s.lr_decay_after,
    log = opts.log, progress = progress or false, on_eval = checkpoint,
  }
  if resumed then
    optimizer:load_state_dict(resumed.rest.optim_tensors, resumed.rest.train.optimizer)
    trainer:set_state(resumed.rest.trainer_tensors, resumed.rest.train)
    if not opts.quiet then say("resumed from %s at iteration %d", opts.resume, trainer.iter) end
  end
  if ngram > 0 then say("%s", ngram_line(ngram, V, train_ids, val_ids)) end

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
    say("checkpoints in %s/ (%s)", dir, wrote_best and "best.safetensors, last.safetensors" or "last.safetensors")
  end
  summary.model, summary.tokenizer, summary.checkpoint_dir = model, tokenizer, dir
  return summary
end

-- ---- generation and evaluation --------------------------------------------------

local GENERATE_OPTIONS = {length = true, temperature = true, top_k = true, top_p = true, prime = true,
  banned = true, stop_id = true, beam = true, length_penalty = true, ban_unk = true, stop_at_eos = true,
  min_length = true}

local function refuse(key, why)
  error(string.format("lm.generate: %s (%s) %s", key, flag(key), why), 0)
end

-- Options that would change nothing, as an error: the sampling options in a beam
-- search, the length penalty outside one, top_k/top_p with greedy decoding, a
-- minimum length without an end token. (The markers' presence in the vocabulary is
-- checked by with_markers, once the tokenizer is known.)
local function check_generate_options(opts)
  local has_end = opts.stop_id ~= nil or opts.stop_at_eos
  if opts.stop_id ~= nil and opts.stop_at_eos then
    refuse("stop_at_eos", "and stop_id both give the end token; keep one")
  end
  if opts.beam then
    for _, key in ipairs({"temperature", "top_k", "top_p"}) do
      if opts[key] ~= nil then refuse(key, "does not apply to a beam search (a search, not a draw)") end
    end
    -- without an end token every hypothesis has the same length
    if opts.length_penalty ~= nil and not has_end then
      refuse("length_penalty", "needs stop_id or stop_at_eos: without an end token every continuation has the same length")
    end
  else
    if opts.length_penalty ~= nil then refuse("length_penalty", "applies only to a beam search (beam)") end
    if opts.temperature == 0 then
      for _, key in ipairs({"top_k", "top_p"}) do
        if opts[key] ~= nil then refuse(key, "does not apply at temperature 0 (greedy: always the best token)") end
      end
    end
  end
  local n = opts.min_length
  if n ~= nil then
    if math.type(n) ~= "integer" or n < 0 then refuse("min_length", "must be a non-negative integer") end
    if not has_end then
      refuse("min_length", "needs an end token (stop_at_eos, --stop-at-eos, or stop_id): without one every sample is length tokens long")
    end
    if n > (opts.length or 200) then
      refuse("min_length", string.format("is %d, more than the %d tokens generated", n, opts.length or 200))
    end
  end
end

-- The banned set and end token of opts, with ban_unk and stop_at_eos resolved in
-- the tokenizer's vocabulary (an error when it has no such marker).
local function with_markers(tokenizer, opts)
  local banned, stop_id = opts.banned, opts.stop_id
  if opts.ban_unk then
    local unk = tokenizer.vocab.unk_id
    if unk == nil then refuse("ban_unk", "needs a vocabulary with an unknown-word token; this one has none") end
    banned = decode.banned_with(banned, unk)
  end
  if opts.stop_at_eos then
    -- a word vocabulary built without eos has the marker but never saw it end a line
    if tokenizer.eos_id == nil or tokenizer.eos == false then
      refuse("stop_at_eos", "needs a vocabulary whose lines end with </s> (a word-level model); this one has none")
    end
    stop_id = tokenizer.eos_id
  end
  return banned, stop_id
end

-- Whether generating with opts draws from the random generator (a seed matters):
-- without a prime the first token is drawn unless the tokenizer has a start marker,
-- and sampling draws every token.
local function generate_draws(opts, tokenizer)
  return ((opts.prime or "") == "" and tokenizer:start_ids() == nil)
    or (not opts.beam and (opts.temperature or 1) > 0)
end

-- Streams `length` tokens to emit(text) after feeding the prime text.
-- opts: length, temperature (0: greedy), top_k, top_p, prime, banned (set of ids),
-- stop_id (end token; generation stops after it), ban_unk (bans the vocabulary's
-- unknown token), stop_at_eos (stop_id = the word vocabulary's </s>), min_length (the
-- end token is banned until this many tokens were generated). With beam = K (1 is a
-- greedy search) the text is the best of a beam search of width K (recur.beam;
-- length_penalty passed on), emitted whole once the search ends. An option that
-- cannot act there (top_k in a beam search, length_penalty without one) is an error.
-- The prime is continued, not ended (tokenizer:encode_prefix); without one, a word
-- model starts where its training stream starts a line (tokenizer:start_ids()), a
-- char model from a random character, as char-rnn does. Each token is decoded after
-- the one before it, so words are joined by the tokenizer's space.
function lm.generate(model, tokenizer, opts, emit)
  opts = util.check_opts("lm.generate", opts, GENERATE_OPTIONS)
  check_generate_options(opts)
  local banned, stop_id = with_markers(tokenizer, opts)
  local length, min_length = opts.length or 200, opts.min_length or 0
  emit = emit or function() end
  model:evaluate()
  local prime = opts.prime or ""
  local prime_ids = #prime > 0 and tokenizer:encode_prefix(prime) or {}
  local prev -- the id last decoded into the text, nil at a line's start
  if #prime > 0 then emit(prime) end
  if #prime_ids > 0 then
    -- a prime ending in a space or newline: the next word needs no joiner
    if not prime:find("%s$") then prev = prime_ids[#prime_ids] end
  else
    prime_ids = tokenizer:start_ids()
    if prime_ids == nil then
      prime_ids = {core.random_integer(1, tokenizer:vocab_size())}
      emit(tokenizer:decode(prime_ids))
      prev = prime_ids[1]
    end
  end
  if opts.beam then
    local hyps = beam.search(model, prime_ids, {beam_size = opts.beam, length = length,
      end_id = stop_id, banned = banned, length_penalty = opts.length_penalty, n_best = 1,
      min_length = opts.min_length})
    emit(tokenizer:decode(hyps[1].ids, prev))
    return hyps[1].ids
  end
  -- the prime but its last id sets the state; decode.generate feeds the last one
  local ids, state = core.zeros({1}, "int64"), nil
  for i = 1, #prime_ids - 1 do
    ids:set(1, prime_ids[i])
    local _
    _, state = model:step(ids, state)
  end
  return decode.generate(model, state, {prime_ids[#prime_ids]}, {length = length, end_id = stop_id,
    min_length = min_length, temperature = opts.temperature, top_k = opts.top_k, top_p = opts.top_p,
    banned = banned}, function(_, id)
      emit(tokenizer:decode({id}, prev))
      prev = id
    end)[1]
end

function lm.evaluate_text(model, tokenizer, text, opts)
  opts = util.check_opts("lm.evaluate_text", opts, {seq_len = true, batch = true})
  local ids = tokenizer:encode(text)
  if #ids < 2 then error("lm: the evaluation text is too short", 0) end
  local T = opts.seq_len or 50
  local B = math.max(1, math.min(opts.batch or 50, (#ids - 1) // T))
  local batcher = data.LMBatcher.new(ids, {batch_size = B, seq_length = T})
  local loss, tokens = model:evaluate_batches(batcher)
  return loss, math.exp(loss), tokens
end

-- ---- the command's subcommands ----------------------------------------------------

-- The parsed flags of a subcommand (argparse's table: flag values under underscored
-- names, plus the command's name and its `threads`, which bin/recur applies) as
-- options; an option nobody reads is an error in the function they go to.
local function command_options(args)
  local t = {}
  for k, v in pairs(args) do
    if k ~= "command" and k ~= args.command and k ~= "threads" then t[(k:gsub("-", "_"))] = v end
  end
  return t
end

local STDOUT = "to standard output"

function lm.train_command(args)
  local opts = command_options(args)
  opts.out = io.stderr
  lm.train(opts)
end

function lm.sample_command(args)
  local opts = command_options(args)
  local path, seed = opts.checkpoint, opts.seed
  opts.checkpoint, opts.seed = nil, nil
  check_generate_options(opts) -- before the checkpoint is read: a usage error comes at once
  local model, tokenizer = lm.load(path)
  if seed ~= nil and not generate_draws(opts, tokenizer) then
    error("lm: --seed changes nothing here (a prime or a word model's start marker, and a beam search or temperature 0, draw nothing)", 0)
  end
  core.manual_seed(seed or 123)
  local last = ""
  lm.generate(model, tokenizer, opts, function(s)
    rio.write(io.stdout, STDOUT, s)
    if #s > 0 then last = s end
  end)
  -- a sample stopped at </s> already ends its line
  if not (opts.stop_at_eos and last:sub(-1) == "\n") then rio.write(io.stdout, STDOUT, "\n") end
end

function lm.eval_command(args)
  local model, tokenizer = lm.load(args.checkpoint)
  local text = data.read_text(args.data)
  local loss, ppl, tokens = lm.evaluate_text(model, tokenizer, text)
  rio.write(io.stdout, STDOUT, string.format("%s: %d tokens, loss %.4f nats/token, perplexity %.3f\n", args.data, tokens, loss, ppl))
end

return lm
