-- recur.io: safetensors round trips for every dtype, the file layout, metadata helpers,
-- atomic saves under simulated failures, and a file written by PyTorch
-- (spec/fixtures/io/torch.safetensors from spec/fixtures/generate_io.py).
local recur = require "recur"
local cjson = require "cjson"
local helpers = require "spec.support.helpers"
local rio = recur.io

local read_all, flat = helpers.read_all, helpers.flat

local tmp_dir = helpers.tmp_dir

local function listing(dir)
  local p = assert(io.popen("ls -A '" .. dir .. "'"))
  local names = {}
  for line in p:lines() do names[#names + 1] = line end
  p:close()
  table.sort(names)
  return names
end

local function remove_dir(dir)
  os.execute("rm -rf '" .. dir .. "'")
end

describe("recur.io safetensors", function()
  it("runs on Lua 5.4", function()
    assert.are.equal("Lua 5.4", _VERSION)
  end)

  describe("round trip", function()
    local dir
    before_each(function() dir = tmp_dir() end)
    after_each(function() remove_dir(dir) end)

    it("keeps names, dtypes, shapes and values of float32, float64 and int64", function()
      recur.manual_seed(1)
      local tensors = {
        w = recur.randn(3, 4),
        d = recur.tensor({1 / 3, -1e300, 5e-324, -0.0}, "float64"),
        ids = recur.tensor({{0, -1}, {math.maxinteger, math.mininteger}}, "int64"),
        s = recur.tensor(2.5),
        e = recur.zeros({0, 5}),
        ["name with \"quotes\" and / \\ and ünïcode"] = recur.ones(1, 1, 1, 1, 1, 1, 1, 1),
      }
      local path = dir .. "/a.safetensors"
      rio.save(path, tensors)
      local back, meta = rio.load(path)
      assert.are.same({}, meta)
      local n = 0
      for name, t in pairs(tensors) do
        local b = back[name]
        assert(b, "missing " .. name)
        assert.are.equal(t:dtype(), b:dtype())
        assert.are.same(t:size(), b:size())
        assert.are.equal(t:tobytes(), b:tobytes())
        n = n + 1
      end
      for _ in pairs(back) do n = n - 1 end
      assert.are.equal(0, n)
    end)

    it("saves a non-contiguous view as its row-major values", function()
      local t = recur.tensor({{1, 2, 3}, {4, 5, 6}}):t()
      local path = dir .. "/v.safetensors"
      rio.save(path, {t = t})
      local back = rio.load(path)
      assert.are.same({3, 2}, back.t:size())
      assert.are.same({1, 4, 2, 5, 3, 6}, flat(back.t))
    end)

    it("keeps metadata strings, and nested tables through encode_meta", function()
      local config = {hidden = 128, layers = {"lstm", "lstm"}, dropout = 0.1 + 0.2, tied = false,
        vocab = {a = 1, ["\n"] = 2, ["\""] = 3}, empty = {}, step = 2 ^ 40}
      local path = dir .. "/m.safetensors"
      rio.save(path, {x = recur.zeros(1)}, {format = "pt", config = rio.encode_meta(config)})
      local _, meta = rio.load(path)
      assert.are.equal("pt", meta.format)
      local back = rio.decode_meta(meta.config)
      assert.are.same(config, back)
      assert.are.equal(0.1 + 0.2, back.dropout) -- every bit of the double
      assert.are.equal("integer", math.type(back.hidden))
      assert.are.equal("integer", math.type(back.step))
    end)

    it("writes the layout of the specification, the same bytes every time", function()
      local path = dir .. "/l.safetensors"
      local tensors = {b = recur.tensor({1, 2}, "float64"), a = recur.tensor({{1, 2, 3}})}
      rio.save(path, tensors, {k = "v"})
      local raw = read_all(path)
      local n = string.unpack("<I8", raw)
      assert.are.equal(0, (8 + n) % 8) -- data 8-byte aligned
      local header = cjson.decode(raw:sub(9, 8 + n))
      assert.are.same({dtype = "F32", shape = {1, 3}, data_offsets = {0, 12}}, header.a)
      assert.are.same({dtype = "F64", shape = {2}, data_offsets = {12, 28}}, header.b)
      assert.are.same({k = "v"}, header.__metadata__)
      assert.are.equal(8 + n + 28, #raw)
      assert.are.equal(string.pack("<fff", 1, 2, 3), raw:sub(9 + n, 8 + n + 12))
      assert.are.equal(string.pack("<dd", 1, 2), raw:sub(9 + n + 12))
      rio.save(path, tensors, {k = "v"})
      assert.are.equal(raw, read_all(path))
    end)
  end)

  describe("encode_meta / decode_meta", function()
    it("refuses what JSON cannot hold", function()
      local cases = {
        {{[1] = "a", [3] = "b"}, "mixes keys"},
        {{a = 1, [2] = 2}, "mixes keys"},
        {{f = print}, "value.f is a function"},
      }
      for _, c in ipairs(cases) do
        local ok, err = pcall(rio.encode_meta, c[1])
        assert.is_false(ok)
        assert(tostring(err):find(c[2], 1, true), tostring(err))
      end
      local loop = {}
      loop.self = loop
      local ok, err = pcall(rio.encode_meta, loop)
      assert.is_false(ok)
      assert.matches("nested deeper than 32", err)
    end)

    it("writes NaN and infinities as JSON's common extensions and reads them back", function()
      -- a diverging loss (perplexity exp(710) = inf) must not stop a checkpoint
      local s = rio.encode_meta({ppl = math.huge, low = -math.huge, loss = 0 / 0, name = "NaN"})
      assert.are.equal('{"loss":NaN,"low":-Infinity,"name":"NaN","ppl":Infinity}', s)
      local v = rio.decode_meta(s)
      assert.are.equal(math.huge, v.ppl)
      assert.are.equal(-math.huge, v.low)
      assert.is_true(v.loss ~= v.loss)
      assert.are.equal("NaN", v.name) -- a string stays a string
      assert.are.equal(math.huge, cjson.decode(s).ppl) -- lua-cjson's default reads it too
    end)

    it("reports bad JSON and non-strings", function()
      local ok, err = pcall(rio.decode_meta, "{\"a\":")
      assert.is_false(ok)
      assert.matches("io.decode_meta:", err)
      ok, err = pcall(rio.decode_meta, 5)
      assert.is_false(ok)
      assert.matches("expected a string", err)
    end)

    it("sorts object keys, so equal tables give equal strings", function()
      assert.are.equal('{"a":[1,2.5,"x"],"b":{"c":true}}', rio.encode_meta({b = {c = true}, a = {1, 2.5, "x"}}))
    end)
  end)

  describe("atomic save", function()
    local dir, path, old_bytes
    local old = {w = recur.tensor({1, 2, 3})}

    before_each(function()
      dir = tmp_dir()
      path = dir .. "/ckpt.safetensors"
      rio.save(path, old, {epoch = "1"})
      old_bytes = read_all(path)
    end)
    after_each(function() remove_dir(dir) end)

    local function assert_old_intact()
      assert.are.equal(old_bytes, read_all(path))
      local t, m = rio.load(path)
      assert.are.same({1, 2, 3}, flat(t.w))
      assert.are.equal("1", m.epoch)
      assert.are.same({"ckpt.safetensors"}, listing(dir)) -- no temporary left behind
    end

    it("keeps the old file when a tensor fails to serialise halfway", function()
      local good, victim = recur.zeros(1000), recur.ones(10)
      local methods = getmetatable(victim).__index
      local tobytes = methods.tobytes
      methods.tobytes = function(t)
        if t == victim then error("simulated failure in tobytes") end
        return tobytes(t)
      end
      local ok, err = pcall(rio.save, path, {a = good, z = victim}, {epoch = "2"})
      methods.tobytes = tobytes
      assert.is_false(ok)
      assert.matches("simulated failure in tobytes", err)
      assert.matches("previous file, if any, is unchanged", err)
      assert_old_intact()
    end)

    it("keeps the old file when the disk fills up during the write", function()
      local open = io.open
      io.open = function(p, mode)
        if mode ~= "wb" then return open(p, mode) end
        local f = assert(open(p, mode))
        local writes = 0
        return {
          write = function(_, s)
            writes = writes + 1
            if writes > 2 then return nil, "No space left on device (simulated)" end
            return f:write(s)
          end,
          flush = function() return f:flush() end,
          close = function() return f:close() end,
        }
      end
      local ok, err = pcall(rio.save, path, {a = recur.zeros(10), b = recur.zeros(10)})
      io.open = open
      assert.is_false(ok)
      assert.matches("No space left on device", err)
      assert_old_intact()
    end)

    it("keeps the old file when the temporary cannot be created", function()
      local open = io.open
      io.open = function(p, mode)
        if mode == "wb" then return nil, p .. ": Permission denied (simulated)" end
        return open(p, mode)
      end
      local ok, err = pcall(rio.save, path, {a = recur.zeros(10)})
      io.open = open
      assert.is_false(ok)
      assert.matches("cannot create the temporary file", err)
      assert_old_intact()
    end)

    it("fails cleanly in a directory that does not exist", function()
      local ok, err = pcall(rio.save, dir .. "/no/such/dir/x.safetensors", {a = recur.zeros(1)})
      assert.is_false(ok)
      assert.matches("io.save: '.*x.safetensors': cannot create the temporary file", err)
    end)

    it("checks its arguments before touching the disk", function()
      local cases = {
        {function() rio.save(path, {w = "not a tensor"}) end, "'w' is not a tensor"},
        {function() rio.save(path, {[1] = recur.zeros(1)}) end, "tensor names must be strings"},
        {function() rio.save(path, {__metadata__ = recur.zeros(1)}) end, "is reserved"},
        {function() rio.save(path, {w = recur.zeros(1)}, {epoch = 2}) end, "use io.encode_meta"},
        {function() rio.save(path, {w = recur.zeros(1)}, "meta") end, "metadata must be a table"},
        {function() rio.save(42, {}) end, "path must be a string"},
      }
      for _, c in ipairs(cases) do
        local ok, err = pcall(c[1])
        assert.is_false(ok)
        assert(tostring(err):find(c[2], 1, true), tostring(err))
      end
      assert_old_intact()
    end)

    it("replaces the old file when the save succeeds", function()
      rio.save(path, {w = recur.tensor({9})}, {epoch = "2"})
      local t, m = rio.load(path)
      assert.are.same({9}, flat(t.w))
      assert.are.equal("2", m.epoch)
      assert.are.same({"ckpt.safetensors"}, listing(dir))
    end)
  end)

  describe("interop with PyTorch", function()
    it("loads the file written by spec/fixtures/generate_io.py", function()
      local tensors, meta = rio.load("spec/fixtures/io/torch.safetensors")
      local want = cjson.decode(read_all("spec/fixtures/io/torch_values.json"))
      assert.are.same(want.metadata, meta)
      assert.are.same({hidden = 128, layers = {1, 2}, lr = 0.002}, rio.decode_meta(meta.config))
      local dtypes = {F32 = "float32", F64 = "float64", I64 = "int64"}
      local count = 0
      for name, w in pairs(want.tensors) do
        local t = tensors[name]
        assert(t, "missing " .. name)
        assert.are.equal(dtypes[w.dtype], t:dtype())
        assert.are.same(w.shape, t:size())
        if w.dtype == "I64" then
          -- compare the bytes: the values reach 2^63 - 1, past what a double holds
          local bytes = {}
          for i, s in ipairs(w.values) do bytes[i] = string.pack("<i8", math.tointeger(tonumber(s))) end
          assert.are.equal(table.concat(bytes), t:tobytes())
        else
          assert.are.same(w.values, flat(t))
        end
        count = count + 1
      end
      for _ in pairs(tensors) do count = count - 1 end
      assert.are.equal(0, count)
    end)
  end)
end)
