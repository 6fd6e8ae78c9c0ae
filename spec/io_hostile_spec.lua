-- recur.io.load on damaged and hostile files, crafted byte by byte: every case is a
-- clear error naming the file and the problem, never a crash, never an allocation
-- larger than the file.
local recur = require "recur"
local rio = recur.io

local PATH = os.tmpname()

local function write(bytes)
  local f = assert(io.open(PATH, "wb"))
  f:write(bytes)
  f:close()
end

-- A file from a header string and data bytes; the header length field is the true
-- length unless `n` overrides it.
local function file(header, data, n)
  return string.pack("<I8", n or #header) .. header .. (data or "")
end

local function entry(name, dtype, shape, b, e)
  return string.format('"%s":{"dtype":"%s","shape":[%s],"data_offsets":[%d,%d]}', name, dtype,
    table.concat(shape, ","), b, e)
end

local function refuses(bytes, pattern)
  write(bytes)
  local ok, err = pcall(rio.load, PATH)
  assert.is_false(ok, "loaded a bad file: " .. pattern)
  err = tostring(err)
  assert(err:find("io.load: '" .. PATH .. "': ", 1, true), "no file name in: " .. err)
  assert(err:find(pattern, 1, true), "expected '" .. pattern .. "' in: " .. err)
end

describe("recur.io.load on hostile files", function()
  teardown(function() os.remove(PATH) end)

  it("runs on Lua 5.4", function()
    assert.are.equal("Lua 5.4", _VERSION)
  end)

  it("accepts the smallest valid files", function()
    write(file("{}"))
    local t, m = rio.load(PATH)
    assert.are.same({}, t)
    assert.are.same({}, m)
    write(file("{" .. entry("x", "F32", {1}, 0, 4) .. "}   ", string.pack("<f", 1.5)))
    assert.are.equal(1.5, rio.load(PATH).x:item())
  end)

  describe("truncation and the header length", function()
    it("rejects an empty file", function() refuses("", "file is 0 bytes, too short") end)
    it("rejects a file shorter than the length field", function() refuses("\1\0\0", "file is 3 bytes") end)
    it("rejects a header length beyond the file", function()
      refuses(string.pack("<I8", 123456) .. string.rep(" ", 92), "header length 123456 exceeds file size 100")
    end)
    it("rejects a header length above 2^63", function()
      refuses(string.rep("\255", 8) .. "{}", "header length above 2^63 exceeds file size 10")
    end)
    it("rejects a header length of 2^62 without allocating it", function()
      refuses(string.pack("<I8", 1 << 62) .. "{}", "header length 4611686018427387904 exceeds file size 10")
    end)
    it("rejects a file cut inside the data", function()
      local full = file("{" .. entry("x", "F64", {4}, 0, 32) .. "}", string.rep("\0", 32))
      refuses(full:sub(1, #full - 5), "reach past the 27 bytes of data")
    end)
  end)

  describe("the JSON header", function()
    it("rejects an empty header", function() refuses(file(""), "must be a JSON object starting with '{'") end)
    it("rejects a non-object header", function() refuses(file('[1, 2]'), "starting with '{'") end)
    it("rejects leading garbage", function() refuses(file(' {}'), "starting with '{'") end)
    it("rejects broken JSON", function() refuses(file('{"a":'), "bad header JSON") end)
    it("rejects trailing garbage", function() refuses(file('{} x'), "bad header JSON") end)
    it("rejects NaN and Infinity", function()
      refuses(file('{"x":{"dtype":"F32","shape":[NaN],"data_offsets":[0,0]}}'), "bad header JSON")
    end)
    it("rejects deep nesting without recursing into it", function()
      refuses(file('{"a":{"b":{"c":{"d":1}}}}'), "too many nested")
      refuses(file("{\"a\":" .. string.rep("[", 100000) .. string.rep("]", 100000) .. "}"), "too many nested")
    end)
    it("rejects an entry that is not an object", function() refuses(file('{"x":5}'), "tensor 'x': entry must be an object") end)
    it("rejects unknown fields", function()
      refuses(file('{"x":{"dtype":"F32","shape":[0],"data_offsets":[0,0],"offsets":[0,0]}}'), "unknown field 'offsets'")
    end)
  end)

  describe("entries", function()
    it("rejects an unknown dtype", function()
      refuses(file("{" .. entry("x", "F16", {2}, 0, 4) .. "}", "1234"), "tensor 'x': unknown dtype 'F16'")
    end)
    it("rejects a missing dtype", function()
      refuses(file('{"x":{"shape":[1],"data_offsets":[0,4]}}', "1234"), "dtype must be a string")
    end)
    it("rejects a negative dimension", function()
      refuses(file('{"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}', "1234"), "shape element must be a non-negative integer")
    end)
    it("rejects a fractional dimension", function()
      refuses(file('{"x":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}', "1234"), "non-negative integer, got 1.5")
    end)
    it("rejects a shape that is not an array", function()
      refuses(file('{"x":{"dtype":"F32","shape":{"a":1},"data_offsets":[0,4]}}', "1234"), "shape must be an array")
      refuses(file('{"x":{"dtype":"F32","shape":"2","data_offsets":[0,4]}}', "1234"), "shape must be an array, got string")
    end)
    it("rejects more than 8 dimensions", function()
      refuses(file("{" .. entry("x", "F32", {1, 1, 1, 1, 1, 1, 1, 1, 1}, 0, 4) .. "}", "1234"), "9 dimensions, at most 8")
    end)
    it("rejects offsets that are not a pair", function()
      refuses(file('{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}', "12345678"), "data_offsets must be [begin, end]")
    end)
    it("rejects offsets that end before they begin", function()
      refuses(file("{" .. entry("x", "F32", {0}, 4, 0) .. "}", "1234"), "end before they begin")
    end)
    it("rejects offsets outside the data", function()
      refuses(file("{" .. entry("x", "F32", {2}, 0, 8) .. "}", "1234"), "data_offsets [0, 8] reach past the 4 bytes of data")
    end)
    it("rejects huge offsets", function()
      refuses(file('{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,1e400]}}', "1234"), "non-negative integer")
    end)
    it("rejects a shape whose byte size disagrees with the offsets", function()
      refuses(file("{" .. entry("x", "F32", {2, 3}, 0, 28) .. "}", string.rep("\0", 28)),
        "shape [2,3] of F32 needs 24 bytes but data_offsets [0, 28] hold 28")
      refuses(file("{" .. entry("x", "F32", {2, 3}, 0, 20) .. "}", string.rep("\0", 20)),
        "shape [2,3] of F32 needs more than the 20 bytes of data_offsets [0, 20]")
    end)
    it("rejects a hostile shape without overflowing", function()
      refuses(file("{" .. entry("x", "F32", {1 << 40, 1 << 40, 1 << 40}, 0, 8) .. "}", string.rep("\0", 8)),
        "needs more than the 8 bytes")
      refuses(file("{" .. entry("x", "I64", {4294967296, 4294967296}, 0, 0) .. "}"), "needs more than the 0 bytes")
    end)
  end)

  describe("the data section", function()
    it("rejects overlapping tensors", function()
      refuses(file("{" .. entry("a", "F32", {2}, 0, 8) .. "," .. entry("b", "F32", {2}, 4, 12) .. "}",
        string.rep("\0", 12)), "tensors 'a' and 'b' overlap")
    end)
    it("rejects two names for the same bytes", function()
      refuses(file("{" .. entry("a", "F32", {2}, 0, 8) .. "," .. entry("b", "F32", {2}, 0, 8) .. "}",
        string.rep("\0", 8)), "tensors 'a' and 'b' overlap")
    end)
    it("rejects a gap between tensors", function()
      refuses(file("{" .. entry("a", "F32", {1}, 0, 4) .. "," .. entry("b", "F32", {1}, 8, 12) .. "}",
        string.rep("\0", 12)), "4 bytes before tensor 'b' belong to no tensor")
    end)
    it("rejects data that does not start at offset 0", function()
      refuses(file("{" .. entry("a", "F32", {1}, 4, 8) .. "}", string.rep("\0", 8)), "4 bytes before tensor 'a'")
    end)
    it("rejects bytes after the last tensor", function()
      refuses(file("{" .. entry("a", "F32", {1}, 0, 4) .. "}", string.rep("\0", 12)),
        "8 bytes at the end of the data belong to no tensor")
    end)
    it("rejects a duplicated name (cjson keeps the last entry, the first one's bytes are a gap)", function()
      refuses(file("{" .. entry("a", "F32", {1}, 0, 4) .. "," .. entry("a", "F32", {1}, 4, 8) .. "}",
        string.rep("\0", 8)), "4 bytes before tensor 'a'")
    end)
  end)

  describe("metadata", function()
    it("rejects a non-object", function() refuses(file('{"__metadata__":"x"}'), "__metadata__ must be an object") end)
    it("rejects an array", function() refuses(file('{"__metadata__":["x"]}'), "__metadata__ keys must be strings") end)
    it("rejects non-string values", function()
      refuses(file('{"__metadata__":{"epoch":3}}'), "__metadata__ value 'epoch' must be a string, got number")
      refuses(file('{"__metadata__":{"cfg":{"a":"b"}}}'), "value 'cfg' must be a string, got table")
    end)
  end)

  it("rejects a path that cannot be opened or is a directory", function()
    local ok, err = pcall(rio.load, "/nonexistent/x.safetensors")
    assert.is_false(ok)
    assert.matches("io.load: '/nonexistent/x.safetensors': cannot open", err)
    ok, err = pcall(rio.load, "/tmp")
    assert.is_false(ok)
    assert.matches("io.load: '/tmp': ", err)
  end)

  it("never crashes on randomly damaged files", function()
    local good = file("{" .. '"__metadata__":{"k":"v"},' .. entry("a", "F32", {2, 2}, 0, 16) .. ","
      .. entry("b", "I64", {1}, 16, 24) .. "," .. entry("c", "F64", {}, 24, 32) .. "}",
      string.rep("\1", 32))
    write(good)
    rio.load(PATH)
    local rng = 12345
    local function rand(n) -- deterministic LCG, independent of math.random
      rng = (rng * 1103515245 + 12345) % 2147483648
      return rng % n + 1
    end
    local refused = 0
    for _ = 1, 600 do
      local bytes = {good:byte(1, -1)}
      local mode = rand(3)
      if mode == 1 then -- flip a few bytes
        for _ = 1, rand(4) do bytes[rand(#bytes)] = rand(256) - 1 end
      elseif mode == 2 then -- truncate
        for i = #bytes, rand(#bytes), -1 do bytes[i] = nil end
      else -- overwrite the length field's low byte
        bytes[1] = rand(256) - 1
      end
      local s = {}
      for i, b in ipairs(bytes) do s[i] = string.char(b) end
      write(table.concat(s))
      local ok, err = pcall(rio.load, PATH)
      if not ok then
        refused = refused + 1
        assert(tostring(err):find("io.load: '", 1, true), "unexpected error: " .. tostring(err))
      end
    end
    assert(refused > 200)
  end)
end)
