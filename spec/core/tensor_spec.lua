-- Tensor storage, creation, views, access, printing and the generator.
local recur = require "recur"

describe("tensor core", function()
  it("runs under Lua 5.4", function()
    assert.are.equal("Lua 5.4", _VERSION)
    assert.is_string(recur.version)
  end)

  describe("creation", function()
    it("zeros, ones and full take sizes as numbers or a table, and a dtype", function()
      local a = recur.zeros(2, 3)
      assert.are.same({2, 3}, a:size())
      assert.are.equal("float32", a:dtype())
      assert.are.equal(0, a:sum())
      local b = recur.ones({2, 3}, "float64")
      assert.are.equal("float64", b:dtype())
      assert.are.same({{1, 1, 1}, {1, 1, 1}}, b:totable())
      local c = recur.full({2}, 7, "int64")
      assert.are.same({7, 7}, c:totable())
      assert.are.equal(math.type(c:get(1)), "integer")
      assert.are.equal("int64", recur.zeros(4, "int64"):dtype())
      assert.are.same({}, recur.zeros({}):size())
    end)

    it("arange counts from 0 by default and honours start, stop and step", function()
      assert.are.same({0, 1, 2, 3}, recur.arange(4):totable())
      assert.are.same({1, 4, 7}, recur.arange(1, 10, 3, "int64"):totable())
      assert.are.same({2, 1.5, 1}, recur.arange(2, 0.5, -0.5):totable())
      assert.are.equal(0, recur.arange(3, 1):numel())
    end)

    it("tensor builds from nested tables and checks their shape", function()
      local t = recur.tensor({{1, 2}, {3, 4}, {5, 6}})
      assert.are.same({3, 2}, t:size())
      assert.are.equal(6, t:get(3, 2))
      local s = recur.tensor(2.5, "float64")
      assert.are.equal(0, s:dim())
      assert.are.equal(2.5, s:item())
      assert.has_error(function() recur.tensor({{1, 2}, {3}}) end,
        "tensor: ragged nested table (expected 2 entries at depth 2)")
      assert.has_error(function() recur.tensor({1, "x"}) end, "tensor: element 2 is not a number")
      assert.has_error(function() recur.tensor({1.5}, "int64") end, "tensor: element 1 is not an integer")
    end)

    it("keeps int64 values exactly, beyond 2^53", function()
      local big = math.maxinteger - 5
      local t = recur.tensor({big, -big}, "int64")
      assert.are.equal(big, t:get(1))
      local u = t:clone()
      assert.are.equal(-big, u:get(2))
      local strided = recur.zeros(2, 2, "int64")
      strided:select(2, 1):copy_(t)
      assert.are.equal(big, strided:get(1, 1))
    end)

    it("round-trips raw little-endian bytes", function()
      local t = recur.tensor({{1.5, -2}, {3, 4}}, "float64")
      local bytes = t:tobytes()
      assert.are.equal(32, #bytes)
      assert.are.equal(string.pack("<d", 1.5), bytes:sub(1, 8))
      local back = recur.from_bytes(bytes, "float64", {2, 2})
      assert.is_true(recur.allclose(t, back, 0, 0))
      -- a transposed view is written in its own row-major order
      assert.are.same({1.5, 3, -2, 4}, recur.from_bytes(t:t():tobytes(), "float64", {4}):totable())
      assert.has_error(function() recur.from_bytes("abc", "float32", {1}) end,
        "from_bytes: 3 bytes do not hold 1 float32 elements")
    end)
  end)

  describe("generator", function()
    it("gives bitwise the same numbers for a seed, on every machine", function()
      recur.manual_seed(42)
      local a = recur.randn({4}, "float64")
      -- pinned values: the generator uses only IEEE-exact arithmetic
      assert.are.equal("-0.72621913824478568", string.format("%.17g", a:get(1)))
      assert.are.equal("1.4762494610184149", string.format("%.17g", a:get(4)))
      recur.manual_seed(42)
      local u = recur.rand({3}, "float64")
      assert.are.equal("0.083862971059882163", string.format("%.17g", u:get(1)))
      recur.manual_seed(42)
      assert.is_true(recur.allclose(recur.randn({4}, "float64"), a, 0, 0))
    end)

    it("draws normals with mean 0 and variance 1 and uniforms inside their bounds", function()
      recur.manual_seed(7)
      local n = recur.randn({20000}, "float64")
      assert.is_true(math.abs(n:mean()) < 0.03)
      assert.is_true(math.abs(n:mul(n):mean() - 1) < 0.05)
      local u = recur.uniform({1000}, -0.5, 0.25)
      assert.is_true(u:min() >= -0.5 and u:max() < 0.25)
      for _ = 1, 100 do
        local k = recur.random_integer(3, 5)
        assert.is_true(k >= 3 and k <= 5 and math.type(k) == "integer")
      end
    end)

    it("saves and restores its state", function()
      recur.manual_seed(3)
      local state = recur.get_rng_state()
      local a = recur.rand(5)
      recur.set_rng_state(state)
      assert.is_true(recur.allclose(a, recur.rand(5), 0, 0))
    end)
  end)

  describe("shape and access", function()
    local t
    before_each(function() t = recur.tensor({{1, 2, 3}, {4, 5, 6}}) end)

    it("reports size, dim, numel, length and strides", function()
      assert.are.same({2, 3}, t:size())
      assert.are.equal(3, t:size(2))
      assert.are.equal(3, t:size(-1))
      assert.are.equal(2, #t)
      assert.are.equal(2, t:dim())
      assert.are.equal(6, t:numel())
      assert.are.same({3, 1}, t:stride())
    end)

    it("gets and sets with 1-based indices", function()
      assert.are.equal(6, t:get(2, 3))
      assert.are.equal(3, t:get(1, -1))
      t:set(1, 2, 20)
      assert.are.equal(20, t:get(1, 2))
      assert.has_error(function() t:get(3, 1) end, "get: index 3 out of range for dimension 1 of size 2")
      assert.has_error(function() t:get(1) end, "get: expected 2 indices for a 2-d tensor, got 1")
      assert.has_error(function() t:set(1, 1, "x") end)
    end)

    it("prints values, dtype and shape", function()
      assert.are.equal("[[1, 2, 3],\n [4, 5, 6]]\n[recur.Tensor float32 (2x3)]", tostring(t))
      local long = tostring(recur.arange(100))
      assert.is_truthy(long:find("0, 1, 2, ..., 97, 98, 99", 1, true))
    end)
  end)

  describe("views", function()
    local t
    before_each(function() t = recur.tensor({{1, 2, 3}, {4, 5, 6}}) end)

    it("narrow, select and transpose share storage", function()
      local n = t:narrow(2, 2, 2)
      assert.are.same({{2, 3}, {5, 6}}, n:totable())
      n:set(1, 1, 9)
      assert.are.equal(9, t:get(1, 2))
      local s = t:select(1, 2)
      assert.are.same({4, 5, 6}, s:totable())
      assert.is_true(s:shares_storage(t))
      local tr = t:transpose(1, 2)
      assert.are.same({{1, 4}, {9, 5}, {3, 6}}, tr:totable())
      assert.is_false(tr:is_contiguous())
      assert.are.same({{1, 4}, {9, 5}, {3, 6}}, t:t():totable())
      assert.has_error(function() t:narrow(2, 3, 2) end, "narrow: range [3, 4] outside dimension 2 of size 3")
      assert.has_error(function() t:select(3, 1) end, "select: dim 3 out of range for a 2-D tensor")
    end)

    it("view needs contiguous data; reshape copies only when it must", function()
      local v = t:view(3, 2)
      assert.is_true(v:shares_storage(t))
      assert.are.same({{1, 2}, {3, 4}, {5, 6}}, v:totable())
      assert.are.same({6}, t:view(-1):size())
      assert.are.same({2, 3}, t:view({-1, 3}):size())
      assert.has_error(function() t:t():view(6) end, "view: tensor is not contiguous (use reshape or contiguous)")
      local r = t:t():reshape(6)
      assert.is_false(r:shares_storage(t))
      assert.are.same({1, 4, 2, 5, 3, 6}, r:totable())
      assert.is_true(t:reshape(3, 2):shares_storage(t))
      assert.has_error(function() t:view(4, 2) end, "view: shape (2x3) has 6 elements, the new shape 8")
    end)

    it("contiguous returns the tensor itself when it already is", function()
      assert.are.equal(t, t:contiguous())
      local c = t:t():contiguous()
      assert.is_true(c:is_contiguous())
      assert.are.same({{1, 4}, {2, 5}, {3, 6}}, c:totable())
    end)

    it("unsqueeze and squeeze add and drop size-1 dimensions", function()
      assert.are.same({1, 2, 3}, t:unsqueeze(1):size())
      assert.are.same({2, 3, 1}, t:unsqueeze(3):size())
      assert.are.same({2, 3}, t:unsqueeze(2):squeeze():size())
      assert.are.same({2, 1, 3}, t:unsqueeze(2):unsqueeze(1):squeeze(1):size())
    end)

    it("copies across dtypes and strides, and overlapping views safely", function()
      local d = t:to("float64")
      assert.are.equal("float64", d:dtype())
      assert.are.same(t:totable(), d:totable())
      local dst = recur.zeros(3, 2)
      dst:copy_(t:t())
      assert.are.same({{1, 4}, {2, 5}, {3, 6}}, dst:totable())
      local a = recur.arange(6)
      a:narrow(1, 2, 5):copy_(a:narrow(1, 1, 5))
      assert.are.same({0, 0, 1, 2, 3, 4}, a:totable())
      assert.has_error(function() dst:copy_(recur.zeros(5)) end,
        "copy_: destination (3x2) and source (5) differ in element count")
      assert.are.equal(7, recur.zeros(2, 2):fill_(7):get(2, 2))
      assert.are.equal(0, recur.ones(2, 2):zero_():sum())
    end)
  end)

  describe("lifetime", function()
    it("keeps storage alive while any view lives and frees it with the last", function()
      local view
      do
        local base = recur.arange(10)
        view = base:narrow(1, 5, 2)
      end
      collectgarbage()
      collectgarbage()
      assert.are.same({4, 5}, view:totable())
    end)

    it("closes to-be-closed tensors and reports use after close", function()
      local keep
      do
        local t <close> = recur.ones(3)
        keep = t
        assert.are.equal(3, t:sum())
      end
      assert.has_error(function() keep:sum() end)
      assert.are.equal("recur.Tensor (closed)", tostring(keep))
    end)

    for _, mode in ipairs({"incremental", "generational"}) do
      it("frees garbage tensors while a loop keeps making them, in " .. mode .. " mode", function()
        -- Each tensor is kept one iteration, as a module keeps its output until its
        -- next forward. Under the generational collector (Lua 5.4.4) all 300 stayed
        -- alive until recur paced major collections by tensor bytes, and 110 when a
        -- major waited for as many bytes as were alive (64 MiB at least); the mode is
        -- the host's and stays as it was.
        local before = collectgarbage(mode)
        local live, holder = setmetatable({}, {__mode = "k"}), {}
        for _ = 1, 300 do
          holder.out = recur.zeros(256, 1024)   -- 1 MiB
          live[holder.out] = true
        end
        local n = 0
        for _ in pairs(live) do n = n + 1 end
        assert.are.equal(mode, collectgarbage(before))
        assert.is_true(n <= 48, n .. " of 300 tensors still alive")
      end)
    end

    it("rejects values that are not tensors", function()
      local t = recur.ones(2)
      assert.has_error(function() t.size({}) end)
      assert.has_error(function() t.get(io.stdout, 1) end)
    end)
  end)

  describe("bad input", function()
    it("names the operation", function()
      assert.has_error(function() recur.zeros(-1) end,
        "zeros: size 1 must be a non-negative integer, got -1")
      assert.has_error(function() recur.zeros(1, 2, 3, 4, 5, 6, 7, 8, 9) end,
        "zeros: more than 8 dimensions")
      assert.has_error(function() recur.zeros(2, "float16") end)
      assert.has_error(function() recur.arange(0, 1, 0) end, "arange: step must not be zero")
      assert.has_error(function() recur.zeros(1 << 40, 1 << 40) end, "zeros: invalid size (1099511627776x1099511627776) (negative or too large)")
      assert.has_error(function() recur.zeros(1 << 38) end, "zeros: out of memory allocating 274877906944 elements")
    end)
  end)

  describe("process exit", function()
    it("exits cleanly after OpenMP and OpenBLAS threads have run", function()
      -- closing the state unloads the module; it must not take libgomp with it
      local cmd = [[lua5.4 -e 'local r = require "recur"; r.matmul(r.randn(600, 600), r.randn(600, 600)); r.randn(300000):tanh()']]
      local env = string.format("LUA_PATH='%s' LUA_CPATH='%s' ", package.path, package.cpath)
      local ok, how, code = os.execute(env .. cmd)
      assert.are.same({true, "exit", 0}, {ok, how, code})
    end)
  end)

  describe("threads", function()
    it("sets OpenMP and OpenBLAS together", function()
      local before = recur.get_num_threads()
      recur.set_num_threads(1)
      assert.are.equal(1, recur.get_num_threads())
      assert.are.equal(1, recur.blas_info().threads)
      recur.set_num_threads(before)
      assert.are.equal(before, recur.get_num_threads())
      assert.has_error(function() recur.set_num_threads(0) end, "set_num_threads: 0 is not a thread count")
    end)
  end)

  describe("OpenBLAS kernels", function()
    -- run in a fresh process, where OPENBLAS_CORETYPE is what the caller gives
    local function blas_in_child(coretype, repair)
      local env = string.format("env -u RECUR_BLAS_REPAIR %s %s LUA_PATH='%s' LUA_CPATH='%s' ",
        coretype and "OPENBLAS_CORETYPE=" .. coretype or "-u OPENBLAS_CORETYPE",
        repair and "RECUR_BLAS_REPAIR=" .. repair or "", package.path, package.cpath)
      local p = io.popen(env .. [[lua5.4 -e 'local b = require("recur").blas_info()
        print(b.core, b.core_repaired or "-", os.getenv("OPENBLAS_CORETYPE") or "-")']])
      local out = p:read("a")
      p:close()
      return out:match("^(%S+)\t(%S+)\t(%S+)")
    end

    local function cpu_has(flag)
      local f = io.open("/proc/cpuinfo")
      if not f then return false end
      local text = f:read("a")
      f:close()
      return text:match("\nflags%s*:[^\n]*%f[%w_]" .. flag .. "%f[^%w_]") ~= nil
    end

    it("are never a pre-AVX2 fallback on a CPU with AVX2 and FMA", function()
      local core, repaired, env = blas_in_child(nil)
      assert.is_string(core)
      if cpu_has("avx2") and cpu_has("fma") then
        local old = {prescott = true, core2 = true, penryn = true, dunnington = true, nehalem = true,
                     sandybridge = true, atom = true, nano = true, barcelona = true, bulldozer = true}
        assert.is_nil(old[core:lower()], "OpenBLAS runs its " .. core .. " kernels")
      end
      if repaired ~= "-" then
        assert.are.equal(repaired, core)   -- recur's choice is in force
      end
      assert.are.equal("-", env)           -- and the environment is as it was
    end)

    it("follow the user's OPENBLAS_CORETYPE", function()
      local core, repaired = blas_in_child("Prescott")
      assert.are.equal("prescott", core:lower())
      assert.are.equal("-", repaired)
    end)

    it("are repaired from a fallback without changing the environment", function()
      if not (cpu_has("avx2") and cpu_has("fma")) then return end
      -- "force" repairs the fallback the variable chose, as if OpenBLAS had picked it
      local core, repaired, env = blas_in_child("Prescott", "force")
      local want = cpu_has("avx512f") and cpu_has("avx512bw") and cpu_has("avx512cd") and cpu_has("avx512dq")
        and cpu_has("avx512vl") and "SkylakeX" or "Haswell"
      assert.are.equal(want, repaired)
      assert.are.equal(want:lower(), core:lower())
      assert.are.equal("Prescott", env)     -- the variable is the user's again
      assert.are.equal("prescott", (blas_in_child("Prescott", "0")):lower())
    end)
  end)
end)
