-- Plain Lua calls that used to crash, hang or corrupt memory in the bindings (issue 11,
-- part 2): each now raises an error naming the operation, or returns the right value.
-- Grouped by class: size arithmetic, closed tensors, signed overflow, generator state,
-- work bounded by empty dimensions, float-to-int64 conversions, and the collector
-- and block cache. A crash here kills the whole busted run, so a regression shows as
-- a lost suite, not a failed test.
local recur = require "recur"
local core = recur.core

local function err_of(f, ...)
  local ok, e = pcall(f, ...)
  assert.is_false(ok, "expected an error")
  return tostring(e)
end

local function assert_err(pattern, f, ...)
  local e = err_of(f, ...)
  assert.truthy(e:find(pattern, 1, true), "error '" .. e .. "' lacks '" .. pattern .. "'")
end

local function closed(...)
  local t = recur.zeros(...)
  t:close()
  return t
end

describe("hostile calls", function()
  describe("size and offset arithmetic", function()
    it("rejects views whose size product overflows", function()
      local t = recur.zeros(4)
      assert_err("view: invalid size (1099511627776x1099511627776)", function() return t:view(2^40, 2^40) end)
      assert_err("view: invalid size", function() return t:view(-1, 2^62) end)
      assert_err("reshape: invalid size", function() return t:reshape({2^31, 2^31, 2^31}) end)
      assert_err("view: invalid size", function() return recur.zeros(0):view(0, 2^40, 2^40, 2^40) end)
      assert_err("view: cannot infer -1 for 0 elements", function() return recur.zeros(0):view(-1, 0) end)
      assert_err("view: size 2 must be a non-negative integer or -1, got x", function() return t:view({1, "x"}) end)
      assert_err("view: size 1 must be a non-negative integer or -1", function() return t:view({0/0}) end)
      assert.are.same({2, 2}, t:view(-1, 2):size())
    end)

    it("rejects shapes whose non-zero sizes overflow even when a size is 0", function()
      assert_err("zeros: invalid size (0x1099511627776x1099511627776)", function() return recur.zeros(0, 2^40, 2^40) end)
      assert_err("empty: invalid size", function() return recur.empty({2^62, 2^62, 0}) end)
      assert_err("full: invalid size", function() return recur.full({0, 2^62, 4}, 1) end)
      assert_err("rand: invalid size", function() return recur.rand(2^40, 2^40, 0) end)
      assert_err("from_bytes: invalid size", function() return recur.from_bytes("", "float32", {0, 2^62, 2^62}) end)
      assert_err("from_bytes: invalid size", function() return recur.from_bytes("abcd", "float32", {2^61}) end)
      -- an empty tensor with a large (but representable) dim is fine
      assert.are.equal(0, recur.zeros(2^40, 0):numel())
    end)

    it("checks narrow's start + length without overflow", function()
      local t = recur.zeros(3, 3)
      assert_err("narrow: range [2, 9223372036854775807] outside dimension 1 of size 3",
        function() return t:narrow(1, 2, math.maxinteger) end)
      assert_err("narrow: range [9223372036854775807, ", function() return t:narrow(1, math.maxinteger, 2) end)
      assert_err("narrow: length -1 is negative", function() return t:narrow(2, 1, -1) end)
      assert_err("narrow: length " .. math.mininteger .. " is negative",
        function() return t:narrow(-1, -1, math.mininteger) end)
      assert.are.same({3, 0}, t:narrow(2, 4, 0):size())
    end)

    it("rejects sizes given as non-integral or non-finite numbers, and too many dims", function()
      assert_err("zeros: size 1 must be a non-negative integer, got 2.5", function() return recur.zeros(2.5) end)
      assert_err("zeros: size 1 must be a non-negative integer", function() return recur.zeros(0/0) end)
      assert_err("zeros: size 1 must be a non-negative integer", function() return recur.zeros(1/0) end)
      assert_err("zeros: 9 dimensions, at most 8 are supported", function() return recur.zeros({1, 2, 3, 4, 5, 6, 7, 8, 9}) end)
      assert_err("tensor: more than 8 levels of nesting", function()
        local a = {}
        local c = a
        for _ = 1, 10 do c[1] = {}; c = c[1] end
        return recur.tensor(a)
      end)
      assert.are.same({4}, recur.zeros(4.0):size())
    end)

    it("rejects arange with huge or non-finite counts", function()
      assert_err("arange: too many elements", function() return recur.arange(0, 1e30) end)
      assert_err("arange: start, end and step must be finite numbers", function() return recur.arange(0/0) end)
      assert_err("arange: start, end and step must be finite numbers", function() return recur.arange(0, 1/0) end)
      assert_err("arange: too many elements", function() return recur.arange(-1.7e308, 1.7e308, 1) end)
      assert.are.same({math.mininteger, -2^62, 0, 2^62},
        recur.arange(-2^63, 2^63, 2^62, "int64"):totable())
    end)

    it("takes extreme indices and dims as out of range", function()
      local t = recur.zeros(3)
      assert_err("get: index -9223372036854775808 out of range", function() return t:get(math.mininteger) end)
      assert_err("select: index -9223372036854775808 out of range", function() return t:select(1, math.mininteger) end)
      assert_err("size: dim -9223372036854775808 out of range for a 1-D tensor", function() return t:size(math.mininteger) end)
      assert_err("unsqueeze: dim -9223372036854775808 out of range", function() return t:unsqueeze(math.mininteger) end)
      assert_err("sum: dim 9223372036854775807 out of range", function() return t:sum(math.maxinteger) end)
      assert_err("unsqueeze: dim 1 out of range for a 8-D tensor", function() return recur.zeros(1, 1, 1, 1, 1, 1, 1, 1):unsqueeze(1) end)
    end)

    it("refuses a broadcast whose result would overflow", function()
      assert_err("add: invalid size (1099511627776x1099511627776x0)",
        function() return recur.zeros(2^40, 1, 0) + recur.zeros(1, 2^40, 0) end)
      assert_err("allclose: invalid size (1099511627776x1099511627776x0)",
        function() return recur.allclose(recur.zeros(2^40, 1, 0), recur.zeros(1, 2^40, 0)) end)
    end)
  end)

  describe("closed tensors", function()
    it("still tell their shape, so that the operation reading them names itself", function()
      local t = recur.zeros(2, 3)
      t:close()
      assert.is_true(t:is_closed())
      assert.is_false(recur.zeros(1):is_closed())
      assert.are.same({2, 3}, t:size())
      assert.are.equal("float32", t:dtype())
      assert.are.equal(6, t:numel())
      assert.are.equal(2, t:dim())
      local e = recur.nn.Embedding(5, 2)
      local ids = recur.tensor({1, 2}, "int64")
      ids:close()
      assert_err("bad argument #2 to 'nn_embedding' (tensor was closed)", function() return e:forward(ids) end)
      local helpers = require "spec.support.helpers"
      local dir = helpers.tmp_dir()
      finally(function() helpers.remove_dir(dir) end)
      assert_err("io.save: '" .. dir .. "/x.safetensors': tensor 'w' was closed",
        function() recur.io.save(dir .. "/x.safetensors", {w = t}) end)
    end)

    it("cannot be closed from a finalizer, which may run inside any binding", function()
      local x = recur.ones(4)
      local ok, err
      setmetatable({}, {__gc = function() ok, err = pcall(x.close, x) end})
      collectgarbage()
      collectgarbage()
      assert.is_false(ok)
      assert.matches("close: a tensor cannot be closed from a finalizer", err)
      assert.are.equal(4, x:sum())      -- still open, its block untouched
      x:close()                          -- outside a finalizer it closes as before
      assert_err("tensor was closed", function() return x:sum() end)
    end)

    it("are errors for methods, operands and module functions", function()
      assert_err("tensor was closed", function() return closed(3):add(1) end)
      assert_err("tensor was closed", function() return recur.zeros(3):add(closed(3)) end)
      assert_err("tensor was closed", function() return closed(3):sum() end)
      assert_err("tensor was closed", function() return recur.matmul(recur.zeros(2, 2), closed(2, 2)) end)
      assert_err("tensor was closed", function() return recur.zeros(3):copy_(closed(3)) end)
      assert.are.equal(3, #closed(3))   -- the shape stays readable (see below)
      assert.are.equal("recur.Tensor (closed)", tostring(closed(3)))
    end)

    it("are errors as optional arguments and output buffers, never taken as absent", function()
      local l = core.rnn_layer("lstm", 2, 3)
      local x, w, u = recur.zeros(2, 1, 2), recur.zeros(12, 2), recur.zeros(12, 3)
      assert_err("rnn_layer.forward: h0 is a closed tensor", function() return l:forward(x, w, u, nil, nil, closed(1, 3)) end)
      assert_err("rnn_layer.forward: c0 is a closed tensor", function() return l:forward(x, w, u, nil, nil, nil, closed(1, 3)) end)
      assert_err("rnn_layer.forward: bias_ih is a closed tensor", function() return l:forward(x, w, u, closed(12)) end)
      assert_err("rnn_layer.forward: lengths is a closed tensor", function()
        return l:forward(x, w, u, nil, nil, nil, nil, closed(1, "int64"))
      end)
      assert_err("rnn_layer.forward: output is a closed tensor", function()
        return l:forward(x, w, u, nil, nil, nil, nil, nil, closed(2, 1, 3))
      end)
      assert_err("embedding: output is a closed tensor", function()
        return core.nn_embedding(recur.zeros(3, 2), recur.tensor({1, 2}, "int64"), closed(2, 2))
      end)
      assert_err("tensor was closed", function()
        return core.nn_cross_entropy(recur.zeros(2, 3), recur.tensor({1, 2}, "int64"), nil, closed(2))
      end)
      assert_err("tensor was closed", function()
        return core.optim_sgd(recur.zeros(2), recur.zeros(2), closed(2), 0.1, 0, 0, 0, false, true)
      end)
      assert_err("dropout: output is a closed tensor", function() return core.nn_dropout(recur.zeros(3), 0.5, closed(3)) end)
    end)

    it("are errors when backward finds what forward kept closed since", function()
      local l = core.rnn_layer("gru", 2, 3)
      local x, w, u = recur.zeros(2, 1, 2), recur.zeros(9, 2), recur.zeros(9, 3)
      l:forward(x, w, u)
      x:close()
      assert_err("rnn_layer.backward: x of the last forward was closed since",
        function() return l:backward(nil, nil, nil, recur.zeros(9, 2), recur.zeros(9, 3)) end)
      x = recur.zeros(2, 1, 2)
      l:forward(x, w, u)
      u:close()
      assert_err("rnn_layer.backward: weight_hh of the last forward was closed since",
        function() return l:backward(nil, nil, nil, recur.zeros(9, 2), recur.zeros(9, 3)) end)
    end)

    it("are errors in a <close> scope's aftermath", function()
      local keep
      do
        local t <close> = recur.ones(4)
        keep = t
      end
      assert_err("tensor was closed", function() return keep:view(2, 2) end)
      assert_err("tensor was closed", function() return keep:totable() end)
    end)
  end)

  describe("wrong-sized buffers handed back", function()
    it("replaces an output that does not fit instead of writing past it", function()
      local l = core.rnn_layer("rnn_tanh", 2, 3)
      local small = recur.zeros(1)
      local y = l:forward(recur.ones(2, 1, 2), recur.ones(3, 2), recur.ones(3, 3), nil, nil, nil, nil, nil, small)
      assert.are.same({2, 1, 3}, y:size())
      assert.is_false(y:shares_storage(small))
      assert.are.equal(0, small:item())
    end)

    it("rejects wrong-sized gradients and masks", function()
      local l = core.rnn_layer("rnn_tanh", 2, 3)
      l:forward(recur.ones(2, 1, 2), recur.ones(3, 2), recur.ones(3, 3))
      assert_err("rnn_layer.backward: grad_weight_ih expected (3x2), got (2)",
        function() return l:backward(nil, nil, nil, recur.zeros(2), recur.zeros(3, 3)) end)
      assert_err("rnn_layer.backward: gy expected (2x1x3), got (1x1x3)",
        function() return l:backward(recur.zeros(1, 1, 3), nil, nil, recur.zeros(3, 2), recur.zeros(3, 3)) end)
      assert_err("cross_entropy: mask has 1 elements for 2 targets",
        function() return core.nn_cross_entropy(recur.zeros(2, 3), recur.tensor({1, 2}, "int64"), nil, recur.zeros(1)) end)
      assert_err("optim_adam: exp_avg has 1 elements, the parameter has 2", function()
        return core.optim_adam(recur.zeros(2), recur.zeros(2), recur.zeros(1), recur.zeros(2), nil,
          0.1, 0.9, 0.999, 1e-8, 0, false, 1)
      end)
    end)
  end)

  describe("signed overflow in integer helpers", function()
    it("draws random integers over the whole int64 range", function()
      for _ = 1, 20 do
        assert.are.equal("integer", math.type(recur.random_integer(math.mininteger, math.maxinteger)))
      end
      assert.are.equal(math.maxinteger, recur.random_integer(math.maxinteger, math.maxinteger))
      assert.are.equal(math.mininteger, recur.random_integer(math.mininteger, math.mininteger))
      local v = recur.random_integer(-1, math.maxinteger)
      assert.is_true(v >= -1)
      assert_err("random_integer: empty range [1, 0]", function() return recur.random_integer(1, 0) end)
    end)

    it("reads int64 extremes exactly", function()
      local t = recur.tensor({math.maxinteger, math.mininteger}, "int64")
      assert.are.equal(math.maxinteger, t:max())
      assert.are.equal(math.mininteger, t:min())
      assert.are.same({math.maxinteger, math.mininteger}, t:totable())
    end)
  end)

  describe("generator state", function()
    it("refuses the all-zero state, which would emit zeros forever", function()
      local before = recur.get_rng_state()
      assert_err("set_rng_state: the all-zero state is not a valid generator state",
        function() recur.set_rng_state(string.rep("\0", 32)) end)
      assert_err("set_rng_state: expected 32 bytes, got 3", function() recur.set_rng_state("abc") end)
      assert.are.equal(before, recur.get_rng_state())
      local r = recur.randn(4)   -- terminates
      assert.are.equal(4, r:numel())
    end)

    it("makes a new generator when the registry's was replaced", function()
      local env = string.format("LUA_PATH='%s' LUA_CPATH='%s' ", package.path, package.cpath)
      local p = assert(io.popen(env .. [[lua5.4 -e "local r = require 'recur'; ]] ..
        [[debug.getregistry()['recur.rng'] = 'x'; io.write(r.randn(3):numel())" 2>&1]]))
      local out = p:read("a")
      p:close()
      assert.are.equal("3", out)
    end)

    it("round-trips a state", function()
      recur.manual_seed(7)
      local s = recur.get_rng_state()
      local a = recur.rand(5):totable()
      recur.set_rng_state(s)
      assert.are.same(a, recur.rand(5):totable())
    end)
  end)

  describe("work bounded by elements, not by dims of empty tensors", function()
    it("refuses totable of a tensor with billions of empty rows", function()
      assert_err("totable: a (1099511627776x0) tensor is too large for nested tables",
        function() return recur.zeros(2^40, 0):totable() end)
      assert.are.same({{}, {}, {}}, recur.zeros(3, 0):totable())
      assert.are.same({}, recur.zeros(0, 2^40):totable())
    end)

    it("prints empty and many-dimensional tensors briefly", function()
      assert.are.equal("[]\n[recur.Tensor float32 (1099511627776x0)]", tostring(recur.zeros(2^40, 0)))
      assert.is_true(#tostring(recur.ones(7, 7, 7, 7, 7, 7, 7, 7)) < 20000)
    end)

    it("runs operations on huge empty tensors at once", function()
      local t = recur.zeros(2^40, 0)
      assert.are.same({2^40, 0}, (t + t):size())
      assert.are.same({2^40, 0}, t:softmax(1):size())
      assert.are.same({0, 2^40}, t:t():contiguous():size())
      assert.are.same({2^40, 0}, t:tanh():size())
      assert.are.same({2^40, 0}, t:clone():size())
      assert.are.equal(0, t:sum())
      assert.are.same({0}, t:sum(1):size())
      assert.are.same({0}, recur.zeros(0, 2^40):max(2):size())
      assert_err("max: dim 2 is empty", function() return recur.zeros(3, 0):max(2) end)
    end)
  end)

  describe("collector and block cache", function()
    local function run(code)
      local env = string.format("LUA_PATH='%s' LUA_CPATH='%s' ", package.path, package.cpath)
      local p = assert(io.popen(env .. 'lua5.4 -e "' .. code .. '" 2>&1'))
      local out = p:read("a")
      p:close()
      return out
    end

    it("leaves a generational host generational, with memory bounded", function()
      -- 3000 MiB of tensors, each kept three iterations: before recur paced major
      -- collections by tensor bytes, a generational state kept most of them
      local out = run("collectgarbage('generational'); local r = require 'recur'; " ..
        "local keep = {}; for i = 1, 3000 do keep[i % 3] = r.zeros(256, 1024) end; " ..
        "io.write(collectgarbage('generational'), ' ', r.peak_rss_mb())")
      local mode, rss = out:match("^(%a+) ([%d.]+)$")
      assert.are.equal("generational", mode, out)
      assert.is_true(tonumber(rss) < 400, out)
    end)

    it("leaves an incremental host incremental", function()
      local out = run("collectgarbage('incremental'); local r = require 'recur'; " ..
        "for i = 1, 100 do local t = r.zeros(256, 1024) end; io.write(collectgarbage('incremental'))")
      assert.are.equal("incremental", out)
    end)

    it("leaves a stopped collector stopped", function()
      local out = run("collectgarbage('stop'); local r = require 'recur'; " ..
        "local live = setmetatable({}, {__mode = 'k'}); " ..
        "for i = 1, 100 do live[r.zeros(256, 1024)] = true end; local n = 0; " ..
        "for _ in pairs(live) do n = n + 1 end; io.write(tostring(collectgarbage('isrunning')), ' ', n)")
      assert.are.equal("false 100", out)
    end)

    it("keeps no block above a quarter of the limit, shrinks at once and clears", function()
      local limit = 64 * 2^20
      -- each allocation may run the collector, which frees other specs' garbage into
      -- the cache: clear it just before the block closes
      do
        local big <close> = recur.zeros(50 * 2^20)         -- 200 MiB freed: not kept
        collectgarbage()
        recur.cache_clear()
      end
      assert.are.equal(0, recur.cache_bytes())
      do
        local mid <close> = recur.zeros(2^20)              -- 4 MiB freed: kept
        recur.cache_clear()
      end
      assert.are.equal(4 * 2^20, recur.cache_bytes())
      recur.set_cache_limit(2^20)
      assert.is_true(recur.cache_bytes() <= 2^20)
      recur.set_cache_limit(limit)
      do local mid <close> = recur.zeros(2^20) end
      recur.cache_clear()
      assert.are.equal(0, recur.cache_bytes())
    end)
  end)

  describe("float to int64 conversions", function()
    it("raise errors naming the operation", function()
      local t = recur.zeros(3, "int64")
      assert_err("fill_: cannot convert", function() t:fill_(0/0) end)
      assert_err("fill_: cannot convert 1.5 to int64", function() t:fill_(1.5) end)
      assert_err("full: cannot convert", function() return recur.full({3}, 0/0, "int64") end)
      assert_err("full: cannot convert 1.0000000000000001e+300 to int64", function() return recur.full({3}, 1e300, "int64") end)
      assert_err("full: cannot convert inf to int64", function() return recur.full({3}, 1/0, "int64") end)
      assert_err("set: cannot convert", function() t:set(1, 0/0) end)
      assert_err("clamp: cannot convert", function() return t:clamp(0/0) end)
      assert_err("clamp: cannot convert inf to int64", function() return t:clamp(nil, 1/0) end)
      assert_err("add: cannot convert", function() return t:add(0/0) end)
      assert_err("add: cannot convert 9.2233720368547758e+18 to int64", function() return t:add(2^63) end)
      assert_err("arange: cannot convert 0.5 to int64", function() return recur.arange(0.5, 3, 1, "int64") end)
      assert_err("to: cannot convert a NaN, infinite or out-of-range value to int64",
        function() return recur.tensor({1, 2, 0/0}):to("int64") end)
      assert_err("to: cannot convert", function() return recur.tensor({1e300}, "float64"):to("int64") end)
      assert_err("copy_: cannot convert", function() return t:copy_(recur.tensor({1, 1/0, 2})) end)
      assert_err("tensor: element 1 is not an integer", function() return recur.tensor({0/0}, "int64") end)
    end)

    it("take integral floats exactly", function()
      assert.are.same({2, 2}, recur.full({2}, 2.0, "int64"):totable())
      assert.are.same({-2^63, 3}, recur.tensor({-2^63, 3.0}):to("int64"):totable())
      local t = recur.zeros(2, "int64"):fill_(-2^63)
      assert.are.equal(math.mininteger, t:get(1))
    end)

    it("rejects non-finite uniform bounds", function()
      assert_err("uniform: bounds must be finite", function() return recur.uniform({2}, -1/0, 1/0) end)
      assert_err("uniform: bounds must be finite", function() return recur.uniform({2}, 0/0, 1) end)
    end)
  end)
end)
