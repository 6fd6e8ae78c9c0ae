-- recur.io: checkpoints in the safetensors format (huggingface/safetensors), readable
-- by Python's safetensors / PyTorch and back.
--
--   local tensors, metadata = recur.io.load(path)   -- name -> tensor, string -> string
--   recur.io.save(path, tensors, metadata)          -- metadata optional, values strings
--   local s = recur.io.encode_meta(value)           -- tables/numbers/strings/booleans -> JSON
--   local value = recur.io.decode_meta(s)
--   recur.io.write(file, "the log 'x'", ...)        -- write and flush, or an error naming what
--   recur.io.remove_stale_tmp(dir)                  -- temporaries a killed save left behind
--
-- File layout: 8 bytes N (little-endian u64), N bytes of JSON header
--   {"name": {"dtype": "F32"|"F64"|"I64", "shape": [...], "data_offsets": [begin, end]},
--    "__metadata__": {"key": "value", ...}}
-- (padded with spaces so the data starts 8-byte aligned), then the tensors' raw
-- little-endian bytes, row-major, offsets counted from the start of the data section.
--
-- save writes the tensors sorted by name to a temporary file in the target's
-- directory, syncs it to disk and renames it over the target, so a crash or an error
-- during a save leaves either the old file or the new one, never a damaged file (a
-- crash can leave the temporary `<path>.tmp-XXXXXXXX` behind; remove_stale_tmp(dir)
-- deletes those of a directory, for a caller that knows no save is under way there).
-- An interrupt (Ctrl-C, Lua's "interrupted!" error) during a save removes the
-- temporary file and is raised again unchanged, never turned into another error.
--
-- load trusts nothing in the file: the header length is checked against the file size
-- before anything is read, the JSON goes through lua-cjson with a nesting limit of 3,
-- and every entry must have a known dtype, a shape whose byte size equals its offsets,
-- and offsets that tile the data section exactly (no overlap, no gap, nothing left
-- over), as the safetensors specification requires. No allocation exceeds the file
-- size. Any violation is an error naming the file and the problem.
--
-- Metadata values are strings; encode_meta stores nested configuration, vocabularies or
-- training state (schedule state, optimizer meta) as one JSON string:
--   recur.io.save(path, tensors, {config = recur.io.encode_meta(cfg)})
--   local cfg = recur.io.decode_meta(metadata.config)
-- encode_meta writes numbers exactly (shortest round-trip form; NaN and infinity as
-- the literals NaN, Infinity and -Infinity, which decode_meta, lua-cjson and Python's
-- json module read back, so a diverging loss never stops a checkpoint), object keys sorted (the same table gives the same bytes), arrays for
-- sequences 1..n; other tables must have only string keys. decode_meta turns integral
-- numbers below 2^53 into Lua integers.
local cjson = require "cjson"
local recur = require "recur"
local core = require "recur.core"

local M = {}

-- Private cjson instances: our limits do not change the configuration of the user's
-- `require "cjson"`.
local header_json = cjson.new()
header_json.decode_max_depth(3) -- header object > entry object > shape/offsets array
header_json.decode_invalid_numbers(false)
local meta_json = cjson.new()
meta_json.decode_max_depth(64)
meta_json.decode_invalid_numbers(true) -- NaN, Infinity (see encode_meta)

local MAX_HEADER = 100 * 1000 * 1000 -- the reference implementation's limit
local MAX_DIMS = 8
local EXACT_INT = 2 ^ 53

local DTYPE_OF = {F32 = "float32", F64 = "float64", I64 = "int64"}
local CODE_OF = {float32 = "F32", float64 = "F64", int64 = "I64"}
local ELEM_SIZE = {F32 = 4, F64 = 8, I64 = 8}

local TENSOR_MT = getmetatable(recur.zeros(1))

local function is_tensor(x)
  return type(x) == "userdata" and getmetatable(x) == TENSOR_MT
end

local function quote(s)
  return header_json.encode(s)
end

---------------------------------------------------------------------------------------
-- JSON values for metadata

-- The shortest decimal form that reads back as the same double.
local function number_json(x)
  if math.type(x) == "integer" then return string.format("%d", x) end
  if x ~= x then return "NaN" end
  if x == math.huge then return "Infinity" end
  if x == -math.huge then return "-Infinity" end
  for digits = 15, 17 do
    local s = string.format("%." .. digits .. "g", x)
    if tonumber(s) == x then return s end
  end
end

local function encode_value(v, path, depth, out)
  local tv = type(v)
  if tv == "string" then
    out[#out + 1] = quote(v)
  elseif tv == "number" then
    out[#out + 1] = number_json(v)
  elseif tv == "boolean" then
    out[#out + 1] = tostring(v)
  elseif tv == "table" then
    if depth >= 32 then
      error("io.encode_meta: tables nested deeper than 32 levels at " .. path, 0)
    end
    local n, count, strings = #v, 0, true
    for k in pairs(v) do
      count = count + 1
      if type(k) ~= "string" then strings = false end
    end
    if count == 0 then
      out[#out + 1] = "{}"
    elseif count == n then -- the keys are exactly 1..n
      out[#out + 1] = "["
      for i = 1, n do
        if i > 1 then out[#out + 1] = "," end
        encode_value(v[i], path .. "[" .. i .. "]", depth + 1, out)
      end
      out[#out + 1] = "]"
    elseif strings then
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = k end
      table.sort(keys)
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = quote(k)
        out[#out + 1] = ":"
        encode_value(v[k], path .. "." .. k, depth + 1, out)
      end
      out[#out + 1] = "}"
    else
      error("io.encode_meta: " .. path .. " mixes keys: a table must be a sequence 1..n or have "
        .. "only string keys", 0)
    end
  else
    error(string.format("io.encode_meta: %s is a %s, which JSON cannot hold", path, tv), 0)
  end
end

function M.encode_meta(value)
  local out = {}
  encode_value(value, "value", 0, out)
  return table.concat(out)
end

local function integers(v)
  if type(v) == "table" then
    for k, x in pairs(v) do v[k] = integers(x) end
  elseif math.type(v) == "float" and v == math.floor(v) and math.abs(v) < EXACT_INT then
    return math.tointeger(v)
  end
  return v
end

function M.decode_meta(s)
  if type(s) ~= "string" then error("io.decode_meta: expected a string, got " .. type(s), 2) end
  local ok, v = pcall(meta_json.decode, s)
  if not ok then
    M.reraise_interrupt(v)
    error("io.decode_meta: " .. tostring(v), 2)
  end
  return integers(v)
end

-- Lua's interpreter turns Ctrl-C into the error "interrupted!" raised wherever the
-- program is. A pcall that catches it must raise it again after cleaning up, or the
-- user's first Ctrl-C is lost.
function M.is_interrupt(err)
  return type(err) == "string" and err:find("interrupted!$") ~= nil
end

function M.reraise_interrupt(err)
  if M.is_interrupt(err) then error(err, 0) end
end

---------------------------------------------------------------------------------------
-- checked writes

-- Lua's file:write and flush report a failure (a full disk, a closed pipe) by
-- returning nil; an ignored one loses the output silently. Writes the strings, flushes,
-- and raises "cannot write <what>: <reason>" on failure.
function M.write(f, what, ...)
  local ok, err = f:write(...)
  if ok then ok, err = f:flush() end
  if not ok then error(string.format("cannot write %s: %s", what, tostring(err)), 0) end
end

-- Writes text to the file at path (replacing it) and closes it, every step checked.
function M.write_file(path, text, who)
  local f, err = io.open(path, "wb")
  if not f then error(string.format("%s: cannot write '%s': %s", who, path, tostring(err)), 0) end
  local ok, werr = f:write(text)
  if ok then ok, werr = f:flush() end
  local closed, cerr = f:close()
  if ok and not closed then ok, werr = false, cerr end
  if not ok then error(string.format("%s: cannot write '%s': %s", who, path, tostring(werr)), 0) end
end

---------------------------------------------------------------------------------------
-- save

local function dir_of(path)
  local dir = path:match("^(.*)/[^/]*$")
  if dir == nil then return "." end
  if dir == "" then return "/" end
  return dir
end

-- The header JSON, entries sorted by name, padded with spaces to a multiple of 8.
local function build_header(names, tensors, metadata)
  local parts, offset = {}, 0
  if metadata then
    local keys, kv = {}, {}
    for k in pairs(metadata) do keys[#keys + 1] = k end
    table.sort(keys)
    for i, k in ipairs(keys) do kv[i] = quote(k) .. ":" .. quote(metadata[k]) end
    parts[#parts + 1] = '"__metadata__":{' .. table.concat(kv, ",") .. "}"
  end
  local sizes = {}
  for i, name in ipairs(names) do
    local t = tensors[name]
    local code = CODE_OF[t:dtype()]
    local shape = {}
    for d, s in ipairs(t:size()) do shape[d] = string.format("%d", s) end
    local nbytes = t:numel() * ELEM_SIZE[code]
    sizes[i] = nbytes
    parts[#parts + 1] = string.format('%s:{"dtype":"%s","shape":[%s],"data_offsets":[%d,%d]}',
      quote(name), code, table.concat(shape, ","), offset, offset + nbytes)
    offset = offset + nbytes
  end
  local header = "{" .. table.concat(parts, ",") .. "}"
  header = header .. string.rep(" ", (8 - #header % 8) % 8)
  return header, sizes
end

local function check_save_args(path, tensors, metadata)
  if type(path) ~= "string" then error("io.save: path must be a string, got " .. type(path), 3) end
  if type(tensors) ~= "table" then
    error(string.format("io.save: '%s': tensors must be a table name -> tensor, got %s", path,
      type(tensors)), 3)
  end
  local names = {}
  for name, t in pairs(tensors) do
    if type(name) ~= "string" then
      error(string.format("io.save: '%s': tensor names must be strings, got %s", path,
        tostring(name)), 3)
    end
    if name == "__metadata__" then
      error(string.format("io.save: '%s': '__metadata__' is reserved, not a tensor name", path), 3)
    end
    if not is_tensor(t) then
      error(string.format("io.save: '%s': '%s' is not a tensor (%s)", path, name, type(t)), 3)
    end
    if t:is_closed() then
      error(string.format("io.save: '%s': tensor '%s' was closed", path, name), 3)
    end
    names[#names + 1] = name
  end
  table.sort(names)
  if metadata ~= nil then
    if type(metadata) ~= "table" then
      error(string.format("io.save: '%s': metadata must be a table of strings, got %s", path,
        type(metadata)), 3)
    end
    for k, v in pairs(metadata) do
      if type(k) ~= "string" or type(v) ~= "string" then
        error(string.format("io.save: '%s': metadata must map strings to strings (use "
          .. "io.encode_meta for tables), got %s = %s", path, tostring(k), type(v)), 3)
      end
    end
  end
  return names
end

-- The temporary name of a save: the target, ".tmp-" and 8 hex digits.
local TMP_FORMAT, TMP_PATTERN = "%s.tmp-%08x", "^.+%.tmp%-" .. string.rep("%x", 8) .. "$"

-- Removes the temporary files of saves that never finished (a killed process) from
-- dir, only names of the form `<name>.tmp-XXXXXXXX`. The caller must know no save is
-- under way in dir (recur.lm holds the directory's lock). Returns the names removed.
function M.remove_stale_tmp(dir)
  local removed = {}
  for _, name in ipairs(core.list_dir(dir)) do
    if name:find(TMP_PATTERN) then
      local ok, err = os.remove(dir .. "/" .. name)
      if not ok then error("io.remove_stale_tmp: " .. tostring(err), 0) end
      removed[#removed + 1] = name
    end
  end
  table.sort(removed)
  return removed
end

function M.save(path, tensors, metadata)
  local names = check_save_args(path, tensors, metadata)
  local header, sizes = build_header(names, tensors, metadata)
  local tmp = string.format(TMP_FORMAT, path, math.random(0, 0x7fffffff))
  local f, err = io.open(tmp, "wb")
  if not f then
    error(string.format("io.save: '%s': cannot create the temporary file: %s", path, err), 2)
  end
  local ok, msg = pcall(function()
    local function put(s)
      local res, werr = f:write(s)
      if not res then error("write failed: " .. tostring(werr), 0) end
    end
    put(string.pack("<I8", #header))
    put(header)
    for i, name in ipairs(names) do
      local bytes = tensors[name]:tobytes()
      if #bytes ~= sizes[i] then
        error(string.format("tensor '%s' gave %d bytes, expected %d", name, #bytes, sizes[i]), 0)
      end
      put(bytes)
    end
    local res, ferr = f:flush()
    if not res then error("flush failed: " .. tostring(ferr), 0) end
  end)
  local closed, cerr = f:close()
  if ok and not closed then ok, msg = false, "close failed: " .. tostring(cerr) end
  if ok then ok, msg = pcall(core.io_fsync, tmp) end
  if ok then
    local renamed, rerr = os.rename(tmp, path)
    if not renamed then ok, msg = false, "rename failed: " .. tostring(rerr) end
  end
  if not ok then
    os.remove(tmp)
    M.reraise_interrupt(msg)
    error(string.format("io.save: '%s': %s (the previous file, if any, is unchanged)", path,
      tostring(msg)), 2)
  end
  -- The rename itself reaches the disk with the directory (a file system that cannot
  -- sync a directory is no reason to fail: the file is complete).
  local synced, serr = pcall(core.io_fsync, dir_of(path))
  if not synced then M.reraise_interrupt(serr) end
end

---------------------------------------------------------------------------------------
-- load

local function integer_field(fail, v, what)
  if math.type(v) == "integer" then return v end
  if type(v) ~= "number" or v ~= math.floor(v) or v < 0 or v >= EXACT_INT then
    fail("%s must be a non-negative integer, got %s", what, tostring(v))
  end
  return math.tointeger(v)
end

-- The integers of a JSON array (a table with keys 1..n exactly).
local function int_array(fail, v, what)
  if type(v) ~= "table" then fail("%s must be an array, got %s", what, type(v)) end
  local n, count = #v, 0
  for _ in pairs(v) do count = count + 1 end
  if count ~= n then fail("%s must be an array", what) end
  local out = {}
  for i = 1, n do
    out[i] = integer_field(fail, v[i], what .. " element")
    if out[i] < 0 then fail("%s has a negative element", what) end
  end
  return out
end

-- One header entry checked against the data section of `data_len` bytes.
local function parse_entry(fail, name, e, data_len)
  if type(e) ~= "table" then fail("tensor '%s': entry must be an object, got %s", name, type(e)) end
  for k in pairs(e) do
    if k ~= "dtype" and k ~= "shape" and k ~= "data_offsets" then
      fail("tensor '%s': unknown field '%s'", name, tostring(k))
    end
  end
  local code = e.dtype
  if type(code) ~= "string" then fail("tensor '%s': dtype must be a string", name) end
  if not DTYPE_OF[code] then
    fail("tensor '%s': unknown dtype '%s' (recur reads F32, F64 and I64)", name, code)
  end
  local shape = int_array(fail, e.shape, "tensor '" .. name .. "': shape")
  if #shape > MAX_DIMS then
    fail("tensor '%s': %d dimensions, at most %d", name, #shape, MAX_DIMS)
  end
  local offs = int_array(fail, e.data_offsets, "tensor '" .. name .. "': data_offsets")
  if #offs ~= 2 then fail("tensor '%s': data_offsets must be [begin, end]", name) end
  local b, en = offs[1], offs[2]
  if b > en then fail("tensor '%s': data_offsets [%d, %d] end before they begin", name, b, en) end
  if en > data_len then
    fail("tensor '%s': data_offsets [%d, %d] reach past the %d bytes of data", name, b, en,
      data_len)
  end
  -- The byte count grows dimension by dimension and stops as soon as it passes the
  -- entry's byte range (s > cap // nbytes), so a hostile shape cannot overflow.
  local nbytes, cap = ELEM_SIZE[code], en - b
  for _, s in ipairs(shape) do
    if s == 0 then nbytes = 0 break end
  end
  if nbytes > 0 then
    for _, s in ipairs(shape) do
      if s > cap // nbytes then
        fail("tensor '%s': shape [%s] of %s needs more than the %d bytes of data_offsets [%d, %d]",
          name, table.concat(shape, ","), code, cap, b, en)
      end
      nbytes = nbytes * s
    end
  end
  if nbytes ~= en - b then
    fail("tensor '%s': shape [%s] of %s needs %d bytes but data_offsets [%d, %d] hold %d", name,
      table.concat(shape, ","), code, nbytes, b, en, en - b)
  end
  return {name = name, dtype = DTYPE_OF[code], shape = shape, b = b, e = en}
end

local function parse_metadata(fail, m)
  if type(m) ~= "table" then fail("__metadata__ must be an object, got %s", type(m)) end
  local out = {}
  for k, v in pairs(m) do
    if type(k) ~= "string" then fail("__metadata__ keys must be strings") end
    if type(v) ~= "string" then
      fail("__metadata__ value '%s' must be a string, got %s", k, type(v))
    end
    out[k] = v
  end
  return out
end

function M.load(path)
  if type(path) ~= "string" then error("io.load: path must be a string, got " .. type(path), 2) end
  local function fail(fmt, ...)
    error(string.format("io.load: '%s': " .. fmt, path, ...), 0)
  end
  local f <close>, err = io.open(path, "rb")
  if not f then fail("cannot open: %s", tostring(err)) end
  local size = f:seek("end")
  if not size then fail("cannot seek (not a regular file?)") end
  if size < 8 then fail("file is %d bytes, too short for the 8-byte header length", size) end
  f:seek("set", 0)
  local head = f:read(8)
  if not head or #head ~= 8 then fail("cannot read the header length (not a regular file?)") end
  local n = string.unpack("<i8", head)
  if n < 0 or n > size - 8 then
    fail("header length %s exceeds file size %d", n < 0 and "above 2^63" or tostring(n), size)
  end
  if n > MAX_HEADER then fail("header length %d exceeds the %d-byte limit", n, MAX_HEADER) end
  local text = f:read(n) or ""
  if #text ~= n then fail("could read only %d of the %d header bytes", #text, n) end
  if text:sub(1, 1) ~= "{" then fail("header must be a JSON object starting with '{'") end
  local ok, header = pcall(header_json.decode, text)
  if not ok then
    M.reraise_interrupt(header)
    fail("bad header JSON: %s", tostring(header))
  end
  if type(header) ~= "table" then fail("header must be a JSON object") end

  local data_start, data_len = 8 + n, size - 8 - n
  local entries, metadata = {}, {}
  for name, e in pairs(header) do
    if type(name) ~= "string" then fail("header keys must be strings") end
    if name == "__metadata__" then
      metadata = parse_metadata(fail, e)
    else
      entries[#entries + 1] = parse_entry(fail, name, e, data_len)
    end
  end
  -- The entries must tile the data section: sorted by offsets, each starts where the
  -- previous one ended. This rejects overlaps (aliased data), gaps and trailing bytes,
  -- and with them a duplicated JSON key whose first entry cjson dropped.
  table.sort(entries, function(a, c)
    if a.b ~= c.b then return a.b < c.b end
    if a.e ~= c.e then return a.e < c.e end
    return a.name < c.name
  end)
  local pos, prev = 0, nil
  for _, e in ipairs(entries) do
    if e.b < pos then fail("tensors '%s' and '%s' overlap", prev.name, e.name) end
    if e.b > pos then fail("%d bytes before tensor '%s' belong to no tensor", e.b - pos, e.name) end
    pos, prev = e.e, e
  end
  if pos ~= data_len then
    fail("%d bytes at the end of the data belong to no tensor", data_len - pos)
  end

  local tensors = {}
  for _, e in ipairs(entries) do
    local nbytes = e.e - e.b
    local bytes = ""
    if nbytes > 0 then
      f:seek("set", data_start + e.b)
      bytes = f:read(nbytes) or ""
      if #bytes ~= nbytes then
        fail("tensor '%s': the file ended early (changed while reading?)", e.name)
      end
    end
    tensors[e.name] = recur.from_bytes(bytes, e.dtype, e.shape)
  end
  return tensors, metadata
end

return M
