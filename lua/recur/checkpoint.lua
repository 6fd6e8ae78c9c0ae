-- recur.checkpoint: one file format for every model in recur.models.
--
--   checkpoint.save(path, model, {data = {tokenizer = tok}, train = {...}, optimizer = opt,
--                                 tensors = {["hidden.h"] = h}})
--   local model, info = checkpoint.load(path)    -- also recur.load(path)
--   -- info = {kind, config, data, train, optim_tensors, tensors}
--
-- A checkpoint is a safetensors file (recur.io): the model's parameters as "model." and
-- PyTorch's name, the optimizer's state as "optim." and its own name, and the training
-- loop's carried hidden state as "hidden.h" / "hidden.c". Its __metadata__ holds JSON
-- strings:
--   recur   {format = "recur-checkpoint", version, kind}, kind the model class's
--           Class.kind ("lm" | "seq2seq" | "classify" | "forecast" | "generator")
--   config  model.config, the whole configuration: Class(config) builds the model again
--   data    what the model's ids and values mean, by role, each a table with a `type`:
--           "char" / "word" a tokenizer (Tokenizer:to_table()), "labels" an ordered list
--           of unique names ({type = "labels", labels = {...}}), "scaler" a
--           series.Scaler (Scaler:to_table()). The roles of each kind are in ROLES.
--   train   the training loop's state, with the optimizer's meta under train.optimizer
-- load returns the data entries decoded (tokenizers, label arrays, scalers), under
-- the same role names.
--
-- load trusts nothing in the file, and checks in an order that lets a hostile header
-- cost no more memory than the file holds: the config's layer count against the
-- number of model tensors; the config's keys and the sizes it gives, through
-- Class.parameter_shapes(config), which lists the parameters without building
-- anything; the tensors' count, names, shapes and float dtype against that list; the
-- data entries and their sizes against the config (a tokenizer of vocab_size tokens,
-- num_classes labels, input_size scaled columns); the hidden state's shape. Only then
-- is the model built (its constructor checks every remaining value) and loaded.
--
-- Files of the older format "recur-lm" (recur.lm's until issue 12: the tokenizer in a
-- metadata key of its own, and a `level` key that older files kept in the config)
-- load as kind "lm".
local core = require "recur.core"
local rio = require "recur.io"
local util = require "recur.util"

local checkpoint = {}

checkpoint.FORMAT = "recur-checkpoint"
local LEGACY_FORMAT = "recur-lm"

-- kind -> role -> {what the entry must be, the config key its size must equal}.
local TOKENIZER = {char = true, word = true}
local ROLES = {
  lm = {tokenizer = {TOKENIZER, "vocab_size"}},
  seq2seq = {source = {TOKENIZER, "src_vocab_size"}, target = {TOKENIZER, "tgt_vocab_size"}},
  classify = {tokenizer = {TOKENIZER, "vocab_size"}, labels = {{labels = true}, "num_classes"}},
  forecast = {scaler = {{scaler = true}, "input_size"}, columns = {{labels = true}, "input_size"}},
  generator = {tokenizer = {TOKENIZER, "vocab_size"}},
}
-- The kinds whose models carry a hidden state from batch to batch (a Trainer saves it).
local STREAM_KINDS = {lm = true, forecast = true}

-- kind -> class, from recur.models (each class states its kind). Built on first use:
-- the models require recur.nn, which a save of nothing else would not need.
local classes
local function class_of(kind)
  if not classes then
    classes = {}
    for _, Class in pairs(require "recur.models") do
      if type(Class) == "table" and Class.kind then classes[Class.kind] = Class end
    end
  end
  return classes[kind]
end

local function kinds()
  local names = {}
  for kind in pairs(ROLES) do names[#names + 1] = kind end
  table.sort(names)
  return table.concat(names, ", ")
end

local function fail(path, fmt, ...)
  error(string.format("checkpoint: '%s': " .. fmt, path, ...), 0)
end

-- Calls f(...) and returns its results; on failure raises "checkpoint: '<path>':
-- <context><its message>" without the "file.lua:N: " position (an interrupt unchanged).
local function checked(path, context, f, ...)
  local ok, a, b = pcall(f, ...)
  if ok then return a, b end
  rio.reraise_interrupt(a)
  fail(path, "%s%s", context, (tostring(a):gsub("^[^:\n]*%.lua:%d+: ", "")))
end

local function prefixed(prefix, tensors, into)
  for name, t in pairs(tensors) do into[prefix .. name] = t end
  return into
end

-- ---- data entries ------------------------------------------------------------------

local function decode_labels(t)
  local labels = type(t.labels) == "table" and t.labels or nil
  if not labels or #labels == 0 then error("labels must be a non-empty array of strings", 0) end
  local n, seen = #labels, {}
  for k in pairs(labels) do
    if math.type(k) ~= "integer" or k < 1 or k > n then
      error("labels must be an array, it has the key " .. util.show(k), 0)
    end
  end
  for i, s in ipairs(labels) do
    if type(s) ~= "string" or s == "" then
      error(string.format("label %d must be a non-empty string, got %s", i, util.show(s)), 0)
    end
    if seen[s] then error(string.format("label %s appears twice (%d and %d)", util.show(s), seen[s], i), 0) end
    seen[s] = i
  end
  return table.move(labels, 1, n, 1, {})
end

local function decoder(type_name)
  local data = require "recur.data"
  if type_name == "char" then return data.CharTokenizer.from_table end
  if type_name == "word" then return data.WordTokenizer.from_table end
  if type_name == "scaler" then return data.series.Scaler.from_table end
  if type_name == "labels" then return decode_labels end
end

-- The number the config's size key must equal.
local function size_of(type_name, value)
  if TOKENIZER[type_name] then return value:vocab_size(), "tokens" end
  if type_name == "scaler" then return value.D, "scaled columns" end
  return #value, "labels"
end

-- The entry `role` of a kind's data, decoded and checked against the config.
local function decode_entry(path, kind, config, role, t)
  local spec = ROLES[kind][role]
  if not spec then
    local names = {}
    for r in pairs(ROLES[kind]) do names[#names + 1] = r end
    table.sort(names)
    fail(path, "data has an unknown entry '%s' (a %s checkpoint has %s)", tostring(role), kind, table.concat(names, ", "))
  end
  local type_name = type(t) == "table" and t.type or nil
  if not spec[1][type_name] then
    local types = {}
    for name in pairs(spec[1]) do types[#types + 1] = name end
    table.sort(types)
    fail(path, "data entry '%s' must have type %s, got %s", role, table.concat(types, " or "), util.show(type_name))
  end
  local value = checked(path, string.format("bad %s '%s': ", type_name, role), decoder(type_name), t)
  local n, what = size_of(type_name, value)
  local key = spec[2]
  if config[key] ~= n then
    fail(path, "data entry '%s' has %d %s, the config's %s is %s", role, n, what, key, tostring(config[key]))
  end
  return value
end

-- A data value as its JSON table: objects by their to_table, arrays of strings as labels.
local function encode_entry(value)
  if type(value) == "table" and type(value.to_table) == "function" then return value:to_table() end
  if type(value) == "table" and getmetatable(value) == nil and type(value[1]) == "string" then
    return {type = "labels", labels = value}
  end
  return value
end

-- ---- checks before a model is built -----------------------------------------------------

-- The file's model tensors must be exactly Class.parameter_shapes(config). The layer
-- count is bounded by the tensors first (every layer has several), so that
-- `layers = 1e9` fails before a billion shapes are listed.
local function check_parameters(path, Class, config, params)
  local count = 0
  for _ in pairs(params) do count = count + 1 end
  local layers = config.layers
  if math.type(layers) == "integer" and layers > count then
    fail(path, "config (%d layers) needs more model tensors than the file's %d", layers, count)
  end
  local shapes = checked(path, "config: ", Class.parameter_shapes, config)
  local names = {}
  for name in pairs(shapes) do names[#names + 1] = name end
  if #names ~= count then
    fail(path, "config (%s layers) needs %d model tensors, the file has %d", tostring(layers), #names, count)
  end
  table.sort(names) -- the first mismatch by name: the same message every time
  for _, name in ipairs(names) do
    local shape, t = shapes[name], params[name]
    if t == nil then fail(path, "model tensor '%s' is missing", name) end
    local got = t:size()
    local same = #got == #shape and (t:dtype() == "float32" or t:dtype() == "float64")
    for d = 1, #shape do same = same and got[d] == shape[d] end
    if not same then
      fail(path, "model tensor '%s' is %s [%s], the config needs float [%s]", name, t:dtype(),
        table.concat(got, ","), table.concat(shape, ","))
    end
  end
end

-- Extra tensors: only a stream model's carried state, (layers, batch, hidden) for h
-- (and c), with one batch size.
local function check_extra(path, kind, config, other)
  local batch
  for name, t in pairs(other) do
    local which = name:match("^hidden%.(.+)$")
    if not which or not STREAM_KINDS[kind] then fail(path, "unexpected tensor '%s'", name) end
    local got = t:size()
    if (which ~= "h" and which ~= "c") or #got ~= 3 or got[1] ~= config.layers or got[3] ~= config.hidden
      or (batch and got[2] ~= batch) or not (t:dtype() == "float32" or t:dtype() == "float64") then
      fail(path, "tensor '%s' %s [%s] is not a hidden state (%d layers x batch x %d)", name, t:dtype(),
        table.concat(got, ","), config.layers, config.hidden)
    end
    batch = got[2]
  end
end

-- A JSON object of JSON scalars: what every model's config is. Nested values would
-- reach the constructors unchecked.
local function check_config_values(path, config)
  for k, v in pairs(config) do
    if type(k) ~= "string" then fail(path, "config keys must be strings, got %s", tostring(k)) end
    local tv = type(v)
    if tv ~= "number" and tv ~= "string" and tv ~= "boolean" then
      fail(path, "config %s must be a number, string or boolean, got a %s", k, tv)
    end
    if tv == "number" and (v ~= v or math.abs(v) == math.huge) then fail(path, "config %s is %s", k, tostring(v)) end
  end
end

local function decode_json(path, meta, key, default)
  if meta[key] == nil and default ~= nil then return default end
  local ok, value = pcall(rio.decode_meta, meta[key] or "")
  if not ok then rio.reraise_interrupt(value) end
  if not ok or type(value) ~= "table" then
    fail(path, "is not a recur checkpoint (metadata '%s' missing or damaged)", key)
  end
  return value
end

-- ---- save and load ---------------------------------------------------------------------

local SAVE_OPTIONS = {data = true, train = true, optimizer = true, tensors = true}

-- opts: data (role -> tokenizer, scaler or array of label strings), train (a JSON-able
-- table), optimizer (its state is saved, its meta as train.optimizer), tensors (the
-- carried hidden state, "hidden.h" and "hidden.c"). Every entry is checked as load
-- checks it, so save never writes a file that load refuses.
function checkpoint.save(path, model, opts)
  opts = util.check_opts("checkpoint.save", opts, SAVE_OPTIONS)
  local kind = type(model) == "table" and model.kind or nil
  local Class = kind and class_of(kind)
  if not Class or type(model.config) ~= "table" then
    error("checkpoint.save: expected a model of recur.models (with a kind and a config), got " ..
      (kind and "kind " .. util.show(kind) or type(model)), 2)
  end
  local data = {}
  for role, value in pairs(opts.data or {}) do
    data[role] = encode_entry(value)
    decode_entry(path, kind, model.config, role, data[role])
  end
  local tensors = prefixed("model.", model:state_dict(), {})
  check_extra(path, kind, model.config, opts.tensors or {})
  prefixed("", opts.tensors or {}, tensors)
  local train = {}
  for k, v in pairs(opts.train or {}) do train[k] = v end
  if opts.optimizer then
    local otensors, ometa = opts.optimizer:state_dict()
    prefixed("optim.", otensors, tensors)
    train.optimizer = ometa
  end
  rio.save(path, tensors, {
    recur = rio.encode_meta({format = checkpoint.FORMAT, version = core.version, kind = kind}),
    config = rio.encode_meta(model.config),
    data = rio.encode_meta(data),
    train = rio.encode_meta(train),
  })
end

-- The kind, config and data tables of a "recur-lm" file, in today's terms.
local function legacy(path, meta)
  local config = decode_json(path, meta, "config")
  local tokenizer = decode_json(path, meta, "tokenizer")
  local level = config.level
  config.level = nil
  if level ~= nil and level ~= tokenizer.type then
    fail(path, "config level '%s' disagrees with the tokenizer's '%s'", tostring(level), tostring(tokenizer.type))
  end
  return "lm", config, {tokenizer = tokenizer}
end

-- model, info = {kind, config (the model's, defaults merged), data (role -> decoded
-- entry), train (loop state; {} when none was saved), optim_tensors (the optimizer's
-- state without the "optim." prefix), tensors (the carried hidden state, by file name)}.
function checkpoint.load(path)
  local tensors, meta = rio.load(path)
  meta = meta or {}
  if meta.recur == nil then fail(path, "is not a recur checkpoint (no 'recur' metadata)") end
  local tag = decode_json(path, meta, "recur")
  local kind, config, data_tables
  if tag.format == LEGACY_FORMAT then
    kind, config, data_tables = legacy(path, meta)
  elseif tag.format == checkpoint.FORMAT then
    kind, config, data_tables = tag.kind, decode_json(path, meta, "config"), decode_json(path, meta, "data", {})
  else
    fail(path, "holds a '%s', not a recur checkpoint", tostring(tag.format))
  end
  local Class = class_of(kind)
  if not Class then fail(path, "unknown model kind %s (%s)", util.show(kind), kinds()) end
  check_config_values(path, config)
  local params, optim_tensors, other = {}, {}, {}
  for name, t in pairs(tensors) do
    local p = name:match("^model%.(.+)$")
    local o = name:match("^optim%.(.+)$")
    if p then params[p] = t elseif o then optim_tensors[o] = t else other[name] = t end
  end
  check_parameters(path, Class, config, params)
  local data = {}
  for role, t in pairs(data_tables) do data[role] = decode_entry(path, kind, config, role, t) end
  check_extra(path, kind, config, other)
  local train = decode_json(path, meta, "train", {})
  local model = checked(path, "config: ", Class, config)
  -- what only a built model can check (a tied model's two names holding one matrix)
  checked(path, "", model.load_state_dict, model, params)
  return model, {kind = kind, config = model.config, data = data, train = train,
                 optim_tensors = optim_tensors, tensors = other}
end

return checkpoint
