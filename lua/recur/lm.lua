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
-- (LanguageModel's configuration, exactly its keys), "tokenizer" (vocabulary; its
-- type is the level, char or word), "train" (loop state and options).
-- `last.safetensors` is written at every evaluation for resuming; `best.safetensors`
-- when the validation loss improves.
--
-- load trusts nothing in the file: the configuration's types and ranges, the
-- tokenizer and the tensors' count, names and shapes are checked against each other
-- before a model is built, so a hostile header cannot make it allocate more than the
-- file holds.
--
-- train is recur.job's run with the lm task (recur.tasks.lm), which every kind of
-- model shares: the checkpoint directory, the lock, exact resume, the log.
local core = require "recur.core"
local data = require "recur.data"
local beam = require "recur.beam"
local decode = require "recur.decode"
local rio = require "recur.io"
local LanguageModel = require "recur.models.LanguageModel"
local util = require "recur.nn.util"

local lm = {}

local FORMAT = "recur-lm"

-- The keys of LanguageModel's configuration; nothing else is passed to the model.
local MODEL_KEYS = {"vocab_size", "embed", "hidden", "layers", "cell", "dropout", "bptt_truncate"}
-- Keys older checkpoints also stored in "config"; dropped at load (the level is the
-- tokenizer's type).
local LEGACY_CONFIG_KEYS = {level = true}
local CELLS = {lstm = true, gru = true, rnn = true}

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
  for _, k in ipairs(MODEL_KEYS) do config[k] = model.config[k] end
  rio.save(path, tensors, {
    recur = rio.encode_meta({format = FORMAT, version = core.version}),
    config = rio.encode_meta(config),
    tokenizer = rio.encode_meta(tokenizer:to_table()),
    train = rio.encode_meta(extra.train or {}),
  })
end

local function decode_json(path, meta, key)
  local ok, value = pcall(rio.decode_meta, meta[key] or "")
  if not ok then rio.reraise_interrupt(value) end
  if not ok or type(value) ~= "table" then
    error(string.format("lm: '%s' is not a recur language-model checkpoint (metadata '%s' missing or damaged)", path, key), 0)
  end
  return value
end

-- The model configuration of a checkpoint, its keys and values checked; the legacy
-- keys are dropped.
local function checked_config(path, raw)
  local function bad(fmt, ...)
    error(string.format("lm: '%s': config " .. fmt, path, ...), 0)
  end
  local config, known = {}, {}
  for _, k in ipairs(MODEL_KEYS) do known[k] = true end
  for k, v in pairs(raw) do
    if known[k] then
      config[k] = v
    elseif not LEGACY_CONFIG_KEYS[k] then
      bad("has an unknown key '%s'", tostring(k))
    end
  end
  for _, k in ipairs({"vocab_size", "embed", "hidden", "layers"}) do
    local v = config[k]
    if math.type(v) ~= "integer" or v < 1 then bad("%s must be a positive integer, got %s", k, tostring(v)) end
  end
  if not CELLS[config.cell] then bad("cell must be lstm, gru or rnn, got %s", tostring(config.cell)) end
  local p = config.dropout
  if type(p) ~= "number" or not (p >= 0 and p < 1) then bad("dropout must be in [0, 1), got %s", tostring(p)) end
  local k = config.bptt_truncate
  if k ~= nil and (math.type(k) ~= "integer" or k < 0) then
    bad("bptt_truncate must be a non-negative integer, got %s", tostring(k))
  end
  return config
end

-- name -> shape of LanguageModel's parameters for a configuration (word_language_model's
-- names; G gate blocks per layer). spec/lm_spec.lua checks this against the model.
local GATES = {lstm = 4, gru = 3, rnn = 1}
local function parameter_shapes(c)
  local V, E, H, G = c.vocab_size, c.embed, c.hidden, GATES[c.cell]
  local shapes = {["encoder.weight"] = {V, E}, ["decoder.weight"] = {V, H}, ["decoder.bias"] = {V}}
  for l = 0, c.layers - 1 do
    shapes["rnn.weight_ih_l" .. l] = {G * H, l == 0 and E or H}
    shapes["rnn.weight_hh_l" .. l] = {G * H, H}
    shapes["rnn.bias_ih_l" .. l] = {G * H}
    shapes["rnn.bias_hh_l" .. l] = {G * H}
  end
  return shapes
end
lm.parameter_shapes = parameter_shapes

-- The file's model tensors must be exactly the configuration's parameters, with their
-- shapes; the count is compared first, so `layers = 1e6` fails before a million shapes
-- are listed.
local function check_parameters(path, config, params)
  local count = 0
  for _ in pairs(params) do count = count + 1 end
  local want = 3 + 4 * config.layers
  if count ~= want then
    error(string.format("lm: '%s': config (%d layers) needs %d model tensors, the file has %d",
      path, config.layers, want, count), 0)
  end
  local shapes, names = parameter_shapes(config), {}
  for name in pairs(shapes) do names[#names + 1] = name end
  table.sort(names) -- the first mismatch by name: the same message every time
  for _, name in ipairs(names) do
    local shape, t = shapes[name], params[name]
    if t == nil then error(string.format("lm: '%s': model tensor '%s' is missing", path, name), 0) end
    local got = t:size()
    local same = #got == #shape and (t:dtype() == "float32" or t:dtype() == "float64")
    for d = 1, #shape do same = same and got[d] == shape[d] end
    if not same then
      error(string.format("lm: '%s': model tensor '%s' is %s [%s], the config (vocab_size %d, embed %d, hidden %d, %s) needs float [%s]",
        path, name, t:dtype(), table.concat(got, ","), config.vocab_size, config.embed, config.hidden,
        config.cell, table.concat(shape, ",")), 0)
    end
  end
end

local function checked_tokenizer(path, t, config, legacy_level)
  if type(t.type) ~= "string" or not (t.type == "char" or t.type == "word") then
    error(string.format("lm: '%s': tokenizer type must be char or word, got %s", path, tostring(t.type)), 0)
  end
  if legacy_level ~= nil and legacy_level ~= t.type then
    error(string.format("lm: '%s': config level '%s' disagrees with the tokenizer's '%s'", path,
      tostring(legacy_level), t.type), 0)
  end
  local ok, tokenizer = pcall(t.type == "char" and data.CharTokenizer.from_table or data.WordTokenizer.from_table, t)
  if not ok then
    rio.reraise_interrupt(tokenizer)
    error(string.format("lm: '%s': bad tokenizer: %s", path, tostring(tokenizer)), 0)
  end
  if tokenizer:vocab_size() ~= config.vocab_size then
    error(string.format("lm: '%s': the tokenizer has %d tokens, the config's vocab_size is %d", path,
      tokenizer:vocab_size(), config.vocab_size), 0)
  end
  return tokenizer
end

-- The carried hidden state is (layers, batch, hidden) for each of h (and c).
local function check_hidden(path, config, other)
  for name, t in pairs(other) do
    local which = name:match("^hidden%.(.+)$")
    if not which then error(string.format("lm: '%s': unexpected tensor '%s'", path, name), 0) end
    local got = t:size()
    if (which ~= "h" and which ~= "c") or #got ~= 3 or got[1] ~= config.layers or got[3] ~= config.hidden then
      error(string.format("lm: '%s': tensor '%s' [%s] is not a hidden state (%d layers x batch x %d)",
        path, name, table.concat(got, ","), config.layers, config.hidden), 0)
    end
  end
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
  local raw_config = decode_json(path, meta, "config")
  local config = checked_config(path, raw_config)
  local tokenizer = checked_tokenizer(path, decode_json(path, meta, "tokenizer"), config, raw_config.level)
  local params, optim_tensors, other = {}, {}, {}
  for name, t in pairs(tensors) do
    local p = name:match("^model%.(.+)$")
    local o = name:match("^optim%.(.+)$")
    if p then params[p] = t elseif o then optim_tensors[o] = t else other[name] = t end
  end
  check_parameters(path, config, params)
  check_hidden(path, config, other)
  local train_meta = decode_json(path, meta, "train")
  local model = LanguageModel(config)
  model:load_state_dict(params)
  return model, tokenizer, {train = train_meta, optim_tensors = optim_tensors,
                            trainer_tensors = other, config = config, level = tokenizer:to_table().type}
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
  local ids = core.zeros({1}, "int64")
  local state, logits = nil, nil
  for _, id in ipairs(prime_ids) do
    ids:set(1, id)
    logits, state = model:step(ids, state)
  end
  -- before min_length tokens, the end token is banned too
  local early = min_length > 0 and decode.banned_with(banned, stop_id) or banned
  local out = {}
  local choice = {temperature = opts.temperature, top_k = opts.top_k, top_p = opts.top_p}
  for i = 1, length do
    choice.banned = i <= min_length and early or banned
    local id = decode.choose(logits:select(1, 1), choice)
    out[i] = id
    emit(tokenizer:decode({id}, prev))
    prev = id
    if stop_id and id == stop_id then break end
    ids:set(1, id)
    logits, state = model:step(ids, state)
  end
  return out
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
