-- recur.lm: a language-model job from a text file to checkpoints, samples and
-- perplexity; what `recur train|sample|eval` and `make demo` run.
--
--   local result = lm.train{data = "data/tinyshakespeare.txt", level = "char", max_seconds = 120}
--   local model, tokenizer = lm.load("cv/best.safetensors")
--   lm.generate(model, tokenizer, {length = 200, temperature = 0.8}, io.write)
--   local loss, ppl = lm.evaluate_text(model, tokenizer, text)
--
-- Checkpoints are recur.checkpoint's (kind "lm", the tokenizer as data entry
-- "tokenizer"; older "recur-lm" files still load). `last.safetensors` is written at
-- every evaluation for resuming; `best.safetensors` when the validation loss improves.
--
-- train is recur.job's run with the lm task (recur.tasks.lm), which every kind of
-- model shares: the checkpoint directory, the lock, exact resume, the log.
local core = require "recur.core"
local beam = require "recur.beam"
local decode = require "recur.decode"
local checkpoint = require "recur.checkpoint"
local rio = require "recur.io"
local util = require "recur.nn.util"

local lm = {}

-- ---- checkpoints: recur.checkpoint's, with the tokenizer as the one data entry ----

-- The path's model and tokenizer, and a table with everything else in the file:
-- train (loop state), optim_tensors, trainer_tensors (the carried hidden state),
-- config, level. A checkpoint of another kind is an error.
function lm.load(path)
  local model, info = checkpoint.load(path)
  if info.kind ~= "lm" then
    error(string.format("lm: '%s' holds a %s model, not a language model", path, tostring(info.kind)), 0)
  end
  local tokenizer = info.data.tokenizer
  if tokenizer == nil then error(string.format("lm: '%s' has no tokenizer", path), 0) end
  return model, tokenizer, {train = info.train, optim_tensors = info.optim_tensors, trainer_tensors = info.tensors,
                            config = info.config, level = tokenizer:to_table().type}
end

-- extra: optimizer, train (a JSON-able table), trainer_tensors (the hidden state).
function lm.save(path, model, tokenizer, extra)
  extra = extra or {}
  checkpoint.save(path, model, {data = {tokenizer = tokenizer}, train = extra.train, optimizer = extra.optimizer,
    tensors = extra.trainer_tensors})
end

-- ---- training: recur.job with the lm task --------------------------------------

local lm_task = require "recur.tasks.lm"

lm.prepare_data = lm_task.prepare_data
lm.evaluate_text = lm_task.evaluate_text

-- The defaults of lm.train's options (and of `recur train`'s flags for the lm).
lm.TRAIN_DEFAULTS = {}
do
  local job = require "recur.job"
  for k, v in pairs(job.DEFAULTS) do lm.TRAIN_DEFAULTS[k] = v end
  for k, v in pairs(lm_task.DEFAULTS) do lm.TRAIN_DEFAULTS[k] = v end
end

local TRAIN_OPTIONS = {data = true, val_data = true, val_frac = true, model = true, layers = true, hidden = true,
  dropout = true, batch = true, lr = true, lr_decay = true, lr_decay_after = true, clip = true, epochs = true,
  max_iters = true, max_seconds = true, eval_every = true, checkpoint_dir = true, resume = true, init_from = true,
  log = true, seed = true, optimizer = true, momentum = true, quiet = true, out = true}
for k in pairs(lm_task.OPTIONS) do TRAIN_OPTIONS[k] = true end

-- opts: as `recur train` flags with underscores (see recur.job and recur.tasks.lm)
-- plus out (where messages go, default io.stderr). Returns the trainer's summary with
-- model, tokenizer, checkpoint_dir, and test_loss when there is a test split.
function lm.train(opts)
  util.check_opts("lm.train", opts, TRAIN_OPTIONS)
  local o = {task = "lm"}
  for k, v in pairs(opts) do o[k] = v end
  local summary = require("recur.job").train(o)
  summary.tokenizer = summary.data.tokenizer
  return summary
end

-- ---- generation ---------------------------------------------------------------------

local function flag(key) return "--" .. key:gsub("_", "-") end

local GENERATE_OPTIONS = {length = true, temperature = true, top_k = true, top_p = true, prime = true,
  banned = true, stop_id = true, beam = true, length_penalty = true, ban_unk = true, stop_at_eos = true,
  min_length = true, precision = true}

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
-- precision ("fp32" | "bf16" | "int8"): the model's set_precision, kept after the call; nil
-- leaves the model's as it is.
function lm.generate(model, tokenizer, opts, emit)
  opts = util.check_opts("lm.generate", opts, GENERATE_OPTIONS)
  check_generate_options(opts)
  if opts.precision ~= nil and opts.precision ~= model.precision then model:set_precision(opts.precision) end
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

-- ---- `recur sample` -------------------------------------------------------------

local STDOUT = "to standard output"

-- opts: the sample command's flags (checkpoint, seed and lm.generate's options);
-- writes the sample to standard output.
function lm.sample_command(opts)
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

return lm
