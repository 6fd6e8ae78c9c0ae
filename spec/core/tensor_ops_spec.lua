-- Tensor operations (csrc/tensor_ops.c, csrc/lua_tensor_ops.c): elementwise with
-- broadcasting, reductions, matmul/addmm through CBLAS, softmax, allclose, errors.
-- Expected values are computed by hand (or by plain Lua loops over :totable()).
local recur = require("recur")

local function err_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return tostring(err)
end

local function assert_err(pattern, fn, ...)
  local msg = err_of(fn, ...)
  assert.is_truthy(msg:find(pattern, 1, true), "error '" .. msg .. "' lacks '" .. pattern .. "'")
end

-- Nested tables compared element by element with a tolerance.
local function assert_near(expected, actual, tol)
  tol = tol or 1e-6
  if type(expected) == "table" then
    assert.are.equal(#expected, #actual, "length")
    for i = 1, #expected do assert_near(expected[i], actual[i], tol) end
  elseif expected ~= expected then
    assert.is_true(actual ~= actual, "expected NaN, got " .. tostring(actual))
  else
    local scale = math.max(1, math.abs(expected))
    local ok = expected == actual or math.abs(expected - actual) <= tol * scale
    assert.is_true(ok, ("expected %.9g, got %.9g"):format(expected, actual))
  end
end

local function assert_tensor(expected, t, dtype, tol)
  if dtype then assert.are.equal(dtype, t:dtype()) end
  assert_near(expected, t:totable(), tol)
end

-- Plain-Lua matrix product of nested tables, for checking BLAS.
local function lua_matmul(a, b)
  local c = {}
  for i = 1, #a do
    c[i] = {}
    for j = 1, #b[1] do
      local s = 0
      for k = 1, #b do s = s + a[i][k] * b[k][j] end
      c[i][j] = s
    end
  end
  return c
end

local floats = { "float32", "float64" }

-- tanh in double (Lua 5.4 has no math.tanh without the 5.3 compatibility option)
local function tanh(v)
  if math.abs(v) < 1e-2 then
    local v2 = v * v
    return v * (1 - v2 / 3 + 2 * v2 * v2 / 15 - 17 * v2 * v2 * v2 / 315)
  end
  return 1 - 2 / (math.exp(2 * v) + 1)
end

describe("tensor ops", function()
  it("runs on Lua 5.4", function()
    assert.are.equal("Lua 5.4", _VERSION)
  end)

  describe("elementwise binary", function()
    for _, dt in ipairs(floats) do
      it("adds, subtracts, multiplies, divides same-shape " .. dt .. " tensors", function()
        local a = recur.tensor({ { 1, 2, 3 }, { 4, 5, 6 } }, dt)
        local b = recur.tensor({ { 2, 4, 8 }, { -1, 0.5, 3 } }, dt)
        assert_tensor({ { 3, 6, 11 }, { 3, 5.5, 9 } }, a:add(b), dt)
        assert_tensor({ { -1, -2, -5 }, { 5, 4.5, 3 } }, a:sub(b), dt)
        assert_tensor({ { 2, 8, 24 }, { -4, 2.5, 18 } }, a:mul(b), dt)
        assert_tensor({ { 0.5, 0.5, 0.375 }, { -4, 10, 2 } }, a:div(b), dt)
        -- out of place leaves the operands alone
        assert.are.same({ { 1, 2, 3 }, { 4, 5, 6 } }, a:totable())
      end)

      it("adds alpha*other and subtracts alpha*other (" .. dt .. ")", function()
        local a = recur.tensor({ 1, 2, 3 }, dt)
        local b = recur.tensor({ 10, 20, 30 }, dt)
        assert_tensor({ 6, 12, 18 }, a:add(b, 0.5), dt)
        assert_tensor({ -29, -58, -87 }, a:sub(b, 3), dt)
        assert_tensor({ 0, 1, 2 }, a:add(-1), dt)
        assert_tensor({ -3, -2, -1 }, a:add(-2, 2), dt)
        a:add_(b, -0.1)
        assert_tensor({ 0, 0, 0 }, a, dt, 1e-6)
      end)
    end

    it("broadcasts (2,3) with (3)", function()
      local a = recur.tensor({ { 1, 2, 3 }, { 4, 5, 6 } })
      local b = recur.tensor({ 10, 20, 30 })
      assert_tensor({ { 11, 22, 33 }, { 14, 25, 36 } }, a + b)
      assert_tensor({ { 11, 22, 33 }, { 14, 25, 36 } }, b + a)
      assert_tensor({ { 9, 18, 27 }, { 6, 15, 24 } }, b - a)
      assert_tensor({ { 10, 40, 90 }, { 40, 100, 180 } }, a * b)
    end)

    it("broadcasts (2,1) with (1,3) into (2,3)", function()
      local a = recur.tensor({ { 1 }, { 2 } })
      local b = recur.tensor({ { 10, 20, 30 } })
      local c = a + b
      assert.are.same({ 2, 3 }, c:size())
      assert_tensor({ { 11, 21, 31 }, { 12, 22, 32 } }, c)
      assert_tensor({ { 0.1, 0.05, 1 / 30 }, { 0.2, 0.1, 2 / 30 } }, a / b)
    end)

    it("broadcasts a (3,1,2) with a (4,1) into (3,4,2) and a 0-d tensor with anything", function()
      local a = recur.arange(6, "float64"):view(3, 1, 2)
      local b = recur.arange(4, "float64"):view(4, 1)
      local c = a:mul(b)
      assert.are.same({ 3, 4, 2 }, c:size())
      for i = 1, 3 do
        for j = 1, 4 do
          for k = 1, 2 do
            assert.are.equal(((i - 1) * 2 + k - 1) * (j - 1), c:get(i, j, k))
          end
        end
      end
      local s = recur.tensor(5)
      assert_tensor({ 6, 7 }, s + recur.tensor({ 1, 2 }))
    end)

    it("takes numbers on either side of the metamethods", function()
      local a = recur.tensor({ 1, 2, 4 }, "float64")
      assert_tensor({ 3, 4, 6 }, a + 2)
      assert_tensor({ 3, 4, 6 }, 2 + a)
      assert_tensor({ -1, 0, 2 }, a - 2)
      assert_tensor({ 1, 0, -2 }, 2 - a)
      assert_tensor({ 3, 6, 12 }, a * 3)
      assert_tensor({ 3, 6, 12 }, 3 * a)
      assert_tensor({ 0.5, 1, 2 }, a / 2)
      assert_tensor({ 4, 2, 1 }, 4 / a)
      assert_tensor({ -1, -2, -4 }, -a)
      assert_tensor({ 4, 6, 10 }, (a + 1) * 2 - -a * 0 + a * 0)
    end)

    it("divides by zero into IEEE infinities and NaN", function()
      local t = recur.tensor({ 1, -1, 0 }, "float64") / 0
      local v = t:totable()
      assert.are.equal(math.huge, v[1])
      assert.are.equal(-math.huge, v[2])
      assert.is_true(v[3] ~= v[3])
    end)

    it("writes in place, returns self, broadcasting the operand into the destination", function()
      local a = recur.tensor({ { 1, 2, 3 }, { 4, 5, 6 } })
      local r = a:add_(recur.tensor({ 1, 1, 1 }))
      assert.are.equal(a, r)
      assert_tensor({ { 2, 3, 4 }, { 5, 6, 7 } }, a)
      a:sub_(1)
      assert_tensor({ { 1, 2, 3 }, { 4, 5, 6 } }, a)
      a:mul_(recur.tensor({ { 2 }, { 10 } }))
      assert_tensor({ { 2, 4, 6 }, { 40, 50, 60 } }, a)
      a:div_(2)
      assert_tensor({ { 1, 2, 3 }, { 20, 25, 30 } }, a)
    end)

    it("writes in place through a transposed view", function()
      local a = recur.tensor({ { 1, 2 }, { 3, 4 } }, "float64")
      local at = a:t()
      at:add_(recur.tensor({ 10, 100 }, "float64")) -- at[i][j] += b[j], so a[j][i] += b[j]
      assert_tensor({ { 11, 12 }, { 103, 104 } }, a)
      a:narrow(2, 2, 1):mul_(-1)
      assert_tensor({ { 11, -12 }, { 103, -104 } }, a)
    end)

    it("reads an operand that overlaps the destination as it was before the write", function()
      local a = recur.tensor({ { 1, 2 }, { 3, 4 } })
      a:add_(a:select(1, 1)) -- row 1 is added to both rows, including itself
      assert_tensor({ { 2, 4 }, { 4, 6 } }, a)
      local b = recur.tensor({ { 1, 2 }, { 3, 4 } })
      b:add_(b:t())
      assert_tensor({ { 2, 5 }, { 5, 8 } }, b)
      local c = recur.tensor({ 1, 2, 3 })
      c:mul_(c)
      assert_tensor({ 1, 4, 9 }, c)
    end)

    it("gives the same results on large contiguous and strided tensors (threaded loops)", function()
      recur.manual_seed(7)
      local a = recur.randn(301, 257) -- an odd count: the threads' ranges differ in length
      local b = recur.randn(257)
      local at, bt = a:totable(), b:totable()
      local c = a:add(b, 2)
      local d = a:t():contiguous():t():mul(b) -- a strided copy of a times b
      local e = a:t():tanh()                  -- unary on a transposed view
      local ct, dt, et = c:totable(), d:totable(), e:totable()
      for i = 1, 301, 7 do
        for j = 1, 257 do
          assert_near(at[i][j] + 2 * bt[j], ct[i][j], 1e-6)
          assert_near(at[i][j] * bt[j], dt[i][j], 1e-6)
          assert_near(tanh(at[i][j]), et[j][i], 1e-6)
        end
      end
      -- every element, not only sampled rows: sums agree
      assert_near(a:sum() + 301 * 2 * b:sum(), c:sum(), 1e-4)
    end)

    it("covers every element of tensors past the threading threshold of cheap ops", function()
      local n = 1449 -- n*n = 2099601 is odd and far above the 2^18 threshold
      local a = recur.arange(n * n, "float64"):view(n, n)
      local c = a:t() + a -- strided + contiguous: rows, carries, and split ranges
      assert.are.equal(n * n * (n * n - 1), c:sum()) -- 2 * (0 + 1 + ... + n*n-1), exact
      assert.are.equal(2 * (n * n - 1), c:get(n, n))
      assert.are.equal((n - 1) * n + (n - 1), c:get(n, 1))
      assert.are.equal((2 * n - 1) + (n * n - n + 1), c:get(n, 2))
      a:t():mul_(2)
      assert.are.equal(n * n * (n * n - 1), a:sum())
      local r = recur.arange(n * n, "float64"):neg()
      assert.are.equal(-(n * n - 1), r:get(n * n))
      assert.are.equal(-(n * n) * (n * n - 1) / 2, r:sum())
    end)

    it("computes int64 add, sub, mul exactly, with integer scalars", function()
      local a = recur.tensor({ 1, -2, 3 }, "int64")
      local b = recur.tensor({ 10, 20, 30 }, "int64")
      assert.are.same({ 11, 18, 33 }, a:add(b):totable())
      assert.are.same({ 21, 38, 63 }, a:add(b, 2):totable())
      assert.are.same({ -9, -22, -27 }, (a - b):totable())
      assert.are.same({ 10, -40, 90 }, (a * b):totable())
      assert.are.same({ 3, 0, 5 }, (a + 2):totable())
      assert.are.same({ 3, 0, 5 }, (a + 3.0 - 1):totable())
      assert.are.same({ -1, 2, -3 }, (-a):totable())
      assert.are.equal("int64", (a * 2):dtype())
      local big = recur.tensor({ math.maxinteger - 1 }, "int64")
      assert.are.equal(math.maxinteger, big:add(1):get(1)) -- exact beyond 2^53
    end)

    it("rejects div on int64, non-integer numbers with int64, and mixed dtypes", function()
      local i = recur.tensor({ 1, 2 }, "int64")
      assert_err("div: int64 tensors are not supported", function() return i / 2 end)
      assert_err("div_: int64 tensors are not supported", function() return i:div_(i) end)
      assert_err("add: cannot convert 0.5 to int64", function() return i + 0.5 end)
      assert_err("add: dtype mismatch, float32 and float64", function()
        return recur.zeros(2):add(recur.zeros(2, "float64"))
      end)
      assert_err("mul: dtype mismatch, float64 and int64", function()
        return recur.zeros(2, "float64") * i
      end)
    end)

    it("names the operation and the shapes when shapes do not broadcast", function()
      assert_err("add: shapes (2x3) and (2) do not broadcast", function()
        return recur.zeros(2, 3) + recur.zeros(2)
      end)
      assert_err("sub_: (2x3) cannot be broadcast into the destination (3)", function()
        return recur.zeros(3):sub_(recur.zeros(2, 3))
      end)
      assert_err("mul_: (2x3) cannot be broadcast into the destination (2x1)", function()
        return recur.zeros(2, 1):mul_(recur.zeros(2, 3))
      end)
    end)

    it("rejects operands that are neither tensors nor numbers", function()
      assert_err("recur.Tensor expected", function() return recur.zeros(2) + "x" end)
      assert_err("recur.Tensor expected", function() return recur.zeros(2):add({}) end)
      assert_err("bad argument #1", function() return recur.zeros(2).add(3, recur.zeros(2)) end)
      assert_err("number expected", function() return recur.zeros(2):add(1, "two") end)
      local t = recur.zeros(2)
      t:close()
      assert_err("closed", function() return recur.zeros(2) + t end)
    end)
  end)

  describe("elementwise unary", function()
    for _, dt in ipairs(floats) do
      it("computes tanh sigmoid relu exp log sqrt abs neg on " .. dt, function()
        local x = recur.tensor({ -2, -0.5, 0, 1, 3 }, dt)
        local v = { -2, -0.5, 0, 1, 3 }
        local function map(f)
          local r = {}
          for i, a in ipairs(v) do r[i] = f(a) end
          return r
        end
        local tol = dt == "float32" and 1e-6 or 1e-12
        assert_tensor(map(tanh), x:tanh(), dt, tol)
        assert_tensor(map(function(a) return 1 / (1 + math.exp(-a)) end), x:sigmoid(), dt, tol)
        assert_tensor({ 0, 0, 0, 1, 3 }, x:relu(), dt)
        assert_tensor(map(math.exp), x:exp(), dt, tol)
        assert_tensor(map(math.abs), x:abs(), dt)
        assert_tensor({ 2, 0.5, 0, -1, -3 }, x:neg(), dt)
        local p = recur.tensor({ 0.25, 1, 4, 10 }, dt)
        assert_tensor({ math.log(0.25), 0, math.log(4), math.log(10) }, p:log(), dt, tol)
        assert_tensor({ 0.5, 1, 2, math.sqrt(10) }, p:sqrt(), dt, tol)
        assert_tensor({ -1, -0.5, 0, 1, 1.5 }, x:clamp(-1, 1.5), dt)
      end)
    end

    it("has in-place forms that return self", function()
      local x = recur.tensor({ -1, 0, 2 }, "float64")
      assert.are.equal(x, x:relu_())
      assert_tensor({ 0, 0, 2 }, x)
      x:exp_()
      assert_tensor({ 1, 1, math.exp(2) }, x, nil, 1e-12)
      x:log_():neg_():abs_()
      assert_tensor({ 0, 0, 2 }, x, nil, 1e-12)
      x:sqrt_()
      assert_tensor({ 0, 0, math.sqrt(2) }, x, nil, 1e-12)
      x:sigmoid_()
      assert_tensor({ 0.5, 0.5, 1 / (1 + math.exp(-math.sqrt(2))) }, x, nil, 1e-12)
      x:tanh_()
      assert_near(tanh(0.5), x:get(1), 1e-12)
      x:clamp_(0.47, 0.5)
      assert_tensor({ 0.47, 0.47, 0.5 }, x, nil, 1e-12)
    end)

    it("rounds float32 tanh correctly from tiny to saturated inputs", function()
      local xs = { 0, 1e-30, -1e-7, 3e-3, -0.0155, 0.0157, 0.1, -0.7, 1.3, 4, -9.5, 19.9, 25, -300 }
      local x = recur.tensor(xs)
      local x64 = x:to("float64"):totable() -- the float32 inputs, exactly
      local y = x:tanh():totable()
      for i, v in ipairs(x64) do
        local want = recur.tensor({ tanh(v) }):get(1) -- tanh in double rounded to float32
        assert.are.equal(want, y[i], "tanh(" .. v .. ")")
      end
      local inf = recur.tensor({ math.huge, -math.huge, 0 / 0 }):tanh():totable()
      assert.are.equal(1, inf[1])
      assert.are.equal(-1, inf[2])
      assert.is_true(inf[3] ~= inf[3])
      assert.are.equal(-math.huge, 1 / recur.tensor({ -0.0 }):tanh():get(1)) -- keeps -0
    end)

    it("keeps sigmoid finite for large inputs and relu keeps NaN", function()
      local s = recur.tensor({ -1000, 1000 }):sigmoid():totable()
      assert.are.same({ 0, 1 }, s)
      local n = recur.tensor({ 0 / 0 }):relu():get(1)
      assert.is_true(n ~= n)
    end)

    it("applies to strided views, writing a contiguous result", function()
      local a = recur.tensor({ { 1, 4 }, { 9, 16 } }, "float64")
      local s = a:t():sqrt()
      assert.is_true(s:is_contiguous())
      assert_tensor({ { 1, 3 }, { 2, 4 } }, s)
      a:t():neg_()
      assert_tensor({ { -1, -4 }, { -9, -16 } }, a)
    end)

    it("clamps with one side open and supports int64 abs, neg, clamp", function()
      local x = recur.tensor({ -3, 0, 3 })
      assert_tensor({ -1, 0, 3 }, x:clamp(-1))
      assert_tensor({ -3, 0, 2 }, x:clamp(nil, 2))
      local i = recur.tensor({ -5, 0, 7 }, "int64")
      assert.are.same({ 5, 0, 7 }, i:abs():totable())
      assert.are.same({ 5, 0, -7 }, i:neg():totable())
      assert.are.same({ -2, 0, 2 }, i:clamp(-2, 2):totable())
      assert.are.same({ 0, 0, 7 }, i:clamp(0):totable())
      assert.are.equal("int64", i:clamp(0):dtype())
    end)

    it("rejects bad bounds and transcendental ops on int64", function()
      local x = recur.tensor({ 1, 2 })
      assert_err("clamp: lower bound 3 is above the upper bound 1", function()
        return x:clamp(3, 1)
      end)
      assert_err("clamp_: expected a lower and/or an upper bound", function() return x:clamp_() end)
      local i = recur.tensor({ 1, 2 }, "int64")
      assert_err("tanh: int64 tensors are not supported", function() return i:tanh() end)
      assert_err("exp_: int64 tensors are not supported", function() return i:exp_() end)
      assert_err("clamp: cannot convert 0.5 to int64", function()
        return i:clamp(0.5)
      end)
      assert_err("recur.Tensor expected", function() return recur.zeros(1).tanh("x") end)
    end)
  end)

  describe("reductions", function()
    for _, dt in ipairs(floats) do
      it("sum mean max min argmax norm of the whole " .. dt .. " tensor", function()
        local a = recur.tensor({ { 3, -1, 4 }, { 1, -5, 9 } }, dt)
        assert.are.equal(11, a:sum())
        assert_near(11 / 6, a:mean(), 1e-12)
        assert.are.equal(9, a:max())
        assert.are.equal(-5, a:min())
        assert.are.equal(6, a:argmax())
        assert.are.equal(5, a:argmin())
        assert_near(math.sqrt(9 + 1 + 16 + 1 + 25 + 81), a:norm(), 1e-12)
        assert.are.equal("number", math.type(a:sum()) and "number")
        assert.are.equal("integer", math.type(a:argmax()))
      end)

      it("reduces " .. dt .. " along a dim, with and without keepdim", function()
        local a = recur.tensor({ { 3, -1, 4 }, { 1, -5, 9 } }, dt)
        local s1 = a:sum(1)
        assert.are.same({ 3 }, s1:size())
        assert_tensor({ 4, -6, 13 }, s1, dt)
        assert_tensor({ 6, 5 }, a:sum(2), dt)
        local k = a:sum(2, true)
        assert.are.same({ 2, 1 }, k:size())
        assert_tensor({ { 6 }, { 5 } }, k, dt)
        assert_tensor({ { 2, -3, 6.5 } }, a:mean(1, true), dt)
        assert_tensor({ 2, 5 / 3 }, a:mean(-1), dt, 1e-6)
        local v, i = a:max(2)
        assert_tensor({ 4, 9 }, v, dt)
        assert_tensor({ 3, 3 }, i, "int64")
        v, i = a:min(1, true)
        assert.are.same({ 1, 3 }, v:size())
        assert_tensor({ { 1, -5, 4 } }, v, dt)
        assert_tensor({ { 2, 2, 1 } }, i, "int64")
        assert_tensor({ 1, 1, 2 }, a:argmax(1), "int64")
        assert_tensor({ { 3 }, { 3 } }, a:argmax(2, true), "int64")
        assert_tensor({ 2, 2 }, a:argmin(2), "int64")
      end)
    end

    it("reduces the middle dim of a 3-D tensor and a 1-D tensor to a 0-d one", function()
      local a = recur.arange(24, "float64"):view(2, 3, 4) -- a[i][j][k] = 12(i-1) + 4(j-1) + (k-1)
      local s = a:sum(2)
      assert.are.same({ 2, 4 }, s:size())
      assert_tensor({ { 12, 15, 18, 21 }, { 48, 51, 54, 57 } }, s)
      local v, idx = a:max(2, true)
      assert.are.same({ 2, 1, 4 }, v:size())
      assert_tensor({ { { 8, 9, 10, 11 } }, { { 20, 21, 22, 23 } } }, v)
      assert_tensor({ { { 3, 3, 3, 3 } }, { { 3, 3, 3, 3 } } }, idx)
      assert_tensor({ { 1.5, 5.5, 9.5 }, { 13.5, 17.5, 21.5 } }, a:mean(3))
      local z = recur.tensor({ 1, 2, 3 }):sum(1)
      assert.are.equal(0, z:dim())
      assert.are.equal(6, z:item())
    end)

    it("reduces wide rows in blocks and strided views correctly", function()
      -- 40 columns > one block of 16; a transposed view is reduced through a copy
      local a = recur.arange(120, "float64"):view(3, 40)
      local s = a:sum(1):totable()
      for j = 1, 40 do assert.are.equal((j - 1) * 3 + 120, s[j]) end
      local st = a:t():sum(2):totable()
      assert.are.same(s, st)
      assert.are.equal(a:sum(), a:t():sum())
      local v, i = a:t():max(1)
      assert.are.same({ 39, 79, 119 }, v:totable())
      assert.are.same({ 40, 40, 40 }, i:totable())
      assert.are.equal(79, a:narrow(1, 2, 1):max())
      assert.are.equal(40 * 3, a:t():argmax()) -- flat index in the view's row-major order
    end)

    it("accumulates float32 sums in double", function()
      local a = recur.tensor({ 1e8, 1, -1e8, 1 })
      assert.are.equal(2, a:sum())
      assert.are.equal(2, a:sum(1):item())
      assert.are.equal(0.5, a:mean())
      local b = recur.ones(1000000)
      assert.are.equal(1000000, b:sum())
      assert.are.equal(1000, b:norm())
    end)

    it("gives the first extremum on ties and lets NaN win", function()
      local a = recur.tensor({ 2, 7, 7, 1, 1 })
      assert.are.equal(2, a:argmax())
      assert.are.equal(4, a:argmin())
      local _, i = a:max(1)
      assert.are.equal(2, i:item())
      local n = recur.tensor({ 1, 0 / 0, 5 }, "float64")
      assert.are.equal(2, n:argmax())
      assert.is_true(n:max() ~= n:max())
      local nv, ni = n:max(1)
      assert.is_true(nv:item() ~= nv:item())
      assert.are.equal(2, ni:item())
    end)

    it("reduces int64 exactly", function()
      local a = recur.tensor({ { 5, -2 }, { 7, 3 } }, "int64")
      assert.are.equal(13, a:sum())
      assert.are.equal("integer", math.type(a:sum()))
      assert.are.equal(7, a:max())
      assert.are.equal("integer", math.type(a:max()))
      assert.are.same({ 12, 1 }, a:sum(1):totable())
      assert.are.equal("int64", a:sum(1):dtype())
      local v, i = a:min(2)
      assert.are.same({ -2, 3 }, v:totable())
      assert.are.same({ 2, 2 }, i:totable())
      assert.are.equal(3.25, a:mean())
      assert_err("mean: int64 tensors are not supported", function() return a:mean(1) end)
    end)

    it("sums an empty tensor to 0 and refuses max of an empty tensor", function()
      local e = recur.zeros(0)
      assert.are.equal(0, e:sum())
      assert_err("max: empty tensor", function() return e:max() end)
      assert_err("argmin: empty tensor", function() return e:argmin() end)
      assert_err("max: dim 2 is empty", function() return recur.zeros(3, 0):max(2) end)
      assert.are.same({ 0 }, recur.zeros(0, 3):sum(2):size())
    end)

    it("names the operation on a bad dim or option", function()
      local a = recur.zeros(2, 3)
      assert_err("sum: dim 3 out of range for a 2-D tensor", function() return a:sum(3) end)
      assert_err("max: dim 0 out of range for a 2-D tensor", function() return a:max(0) end)
      assert_err("argmax: dim -3 out of range for a 2-D tensor", function() return a:argmax(-3) end)
      assert_err("mean: keepdim must be a boolean", function() return a:mean(1, 1) end)
      assert_err("norm: only the 2-norm", function() return a:norm(1) end)
      assert_err("number has no integer representation", function() return a:sum(1.5) end)
    end)
  end)

  describe("allclose", function()
    it("compares with rtol and atol, across dtypes and with broadcasting", function()
      local a = recur.tensor({ 1, 2, 3 }, "float64")
      assert.is_true(recur.allclose(a, a:clone()))
      assert.is_true(recur.allclose(a, a + 1e-9))
      assert.is_false(recur.allclose(a, a + 1e-4))
      assert.is_true(recur.allclose(a, a + 1e-4, 1e-4))
      assert.is_true(recur.allclose(a, a + 0.01, 0, 0.011))
      assert.is_false(recur.allclose(a, a + 0.01, 0, 0.009))
      assert.is_true(recur.allclose(a:to("float32"), a))
      assert.is_true(recur.allclose(a:to("int64"), a))
      assert.is_true(a:allclose(recur.tensor({ { 1, 2, 3 }, { 1, 2, 3 } })))
      assert.is_false(recur.allclose(recur.tensor({ 0 / 0 }), recur.tensor({ 0 / 0 })))
      assert.is_true(recur.allclose(recur.tensor({ math.huge }), recur.tensor({ math.huge })))
      assert_err("allclose: shapes (3) and (2) do not broadcast", function()
        return recur.allclose(a, recur.zeros(2))
      end)
    end)
  end)

  describe("matmul", function()
    local A = { { 1, 2, 3 }, { 4, 5, 6 } }
    local B = { { 7, 8 }, { 9, 10 }, { 11, 12 } }
    for _, dt in ipairs(floats) do
      it("multiplies 2-D " .. dt .. " matrices (hand values), as function and method", function()
        local a, b = recur.tensor(A, dt), recur.tensor(B, dt)
        local c = recur.matmul(a, b)
        assert_tensor({ { 58, 64 }, { 139, 154 } }, c, dt)
        assert_tensor({ { 58, 64 }, { 139, 154 } }, a:matmul(b), dt)
        assert_tensor({ { 39, 54, 69 }, { 49, 68, 87 }, { 59, 82, 105 } }, recur.matmul(b, a), dt)
      end)
    end

    it("passes transposed views and flags to BLAS with the same result as copies", function()
      recur.manual_seed(3)
      for _, dt in ipairs(floats) do
        local a = recur.randn({ 5, 7 }, dt)
        local b = recur.randn({ 5, 4 }, dt)
        local want = lua_matmul(a:t():contiguous():totable(), b:totable())
        local tol = dt == "float32" and 1e-5 or 1e-12
        assert_tensor(want, recur.matmul(a:t(), b), dt, tol)
        assert_tensor(want, recur.matmul(a, b, true, false), dt, tol)
        assert_tensor(want, recur.matmul(a:t():contiguous(), b), dt, tol)
        -- both transposed: (a^T b)^T = b^T a
        local want2 = lua_matmul(b:t():contiguous():totable(), a:totable())
        assert_tensor(want2, recur.matmul(b:t(), a), dt, tol)
        assert_tensor(want2, recur.matmul(b, a:t(), true, true), dt, tol)
        -- a transposed view with a transposed flag is the original matrix
        assert_tensor(lua_matmul(a:totable(), a:t():contiguous():totable()),
          recur.matmul(a:t(), a:t(), true, false), dt, tol)
      end
    end)

    it("reads narrowed rows in place and copies layouts BLAS cannot read", function()
      local big = recur.arange(60, "float64"):view(6, 10)
      local a = big:narrow(2, 3, 4) -- (6x4) with row stride 10
      local b = recur.tensor({ { 1, 0 }, { 0, 1 }, { 1, 1 }, { 2, -1 } }, "float64")
      local want = lua_matmul(a:contiguous():totable(), b:totable())
      assert_tensor(want, recur.matmul(a, b))
      -- select along the last dim leaves no unit stride: (2,3) with strides (12,4)
      local x = recur.arange(24, "float64"):view(2, 3, 4):select(3, 2)
      assert.are.same({ 12, 4 }, x:stride())
      assert_tensor(lua_matmul(x:contiguous():totable(), { { 1 }, { 2 }, { 3 } }),
        recur.matmul(x, recur.tensor({ { 1 }, { 2 }, { 3 } }, "float64")))
      -- single rows and columns of transposed matrices
      local m = recur.arange(12, "float64"):view(3, 4)
      assert_tensor(lua_matmul(m:t():narrow(1, 2, 1):contiguous():totable(), m:totable()),
        recur.matmul(m:t():narrow(1, 2, 1), m))
      assert_tensor(lua_matmul(m:totable(), m:t():narrow(2, 3, 1):contiguous():totable()),
        recur.matmul(m, m:t():narrow(2, 3, 1)))
    end)

    -- A product with one row goes to GEMV (csrc/blas.h), with its own transposes and strides.
    it("computes single-row products (the GEMV path) for every transpose and dtype", function()
      recur.manual_seed(5)
      for _, dt in ipairs(floats) do
        local tol = dt == "float32" and 1e-5 or 1e-12
        local a = recur.randn({ 1, 7 }, dt)
        local b = recur.randn({ 7, 5 }, dt)
        local want = lua_matmul(a:totable(), b:totable())
        assert_tensor(want, recur.matmul(a, b), dt, tol)
        local at, bt = a:t():contiguous(), b:t():contiguous() -- (7,1) and (5,7)
        assert_tensor(want, recur.matmul(at, b, true, false), dt, tol)
        assert_tensor(want, recur.matmul(a, bt, false, true), dt, tol)
        assert_tensor(want, recur.matmul(at, bt, true, true), dt, tol)
        -- a row of a wider matrix, read in place with its row stride
        local wide = recur.randn({ 7, 3 }, dt)
        local col = wide:narrow(2, 2, 1) -- (7,1), stride 3
        assert_tensor(lua_matmul(col:t():contiguous():totable(), b:totable()),
          recur.matmul(col, b, true, false), dt, tol)
        -- beta 0 overwrites whatever c held, NaN included, as GEMM does
        local c = recur.full({ 1, 5 }, 0 / 0, dt)
        recur.addmm(c, a, b, 1, 0)
        assert_tensor(want, c, dt, tol)
        recur.addmm(c, a, b, 2, 1) -- c + 2ab = 3ab
        local want3 = { {} }
        for j = 1, 5 do want3[1][j] = 3 * want[1][j] end
        assert_tensor(want3, c, dt, tol)
      end
    end)

    it("multiplies batches of 3-D tensors, including transposed batch views", function()
      recur.manual_seed(11)
      local a = recur.randn(3, 2, 5)
      local b = recur.randn(3, 5, 4)
      local c = recur.matmul(a, b)
      assert.are.same({ 3, 2, 4 }, c:size())
      for i = 1, 3 do
        local want = lua_matmul(a:select(1, i):totable(), b:select(1, i):totable())
        assert_tensor(want, c:select(1, i), "float32", 1e-5)
      end
      local bt = b:transpose(2, 3):contiguous() -- (3,4,5)
      assert_tensor(c:totable(), recur.matmul(a, bt:transpose(2, 3)), nil, 1e-5)
      assert_tensor(c:totable(), recur.matmul(a, bt, false, true), nil, 1e-5)
      local at = a:transpose(2, 3):contiguous() -- (3,5,2)
      assert_tensor(c:totable(), recur.matmul(at, b, true), nil, 1e-5)
      -- hand values for one batch of 2
      local x = recur.tensor({ { { 1, 2 } }, { { 3, 4 } } }, "float64")   -- (2,1,2)
      local y = recur.tensor({ { { 1 }, { 1 } }, { { 2 }, { -1 } } }, "float64") -- (2,2,1)
      assert_tensor({ { { 3 } }, { { 2 } } }, recur.matmul(x, y))
    end)

    it("handles empty inner and outer sizes", function()
      local c = recur.matmul(recur.zeros(2, 0), recur.zeros(0, 3))
      assert.are.same({ 2, 3 }, c:size())
      assert.are.equal(0, c:norm())
      assert.are.same({ 0, 3 }, recur.matmul(recur.zeros(0, 4), recur.zeros(4, 3)):size())
    end)

    it("names the operation, shapes and dtypes in errors", function()
      assert_err("matmul: size mismatch, (3x4) @ (5x6)", function()
        return recur.matmul(recur.zeros(3, 4), recur.zeros(5, 6))
      end)
      assert_err("matmul: size mismatch, (3x4)^T @ (4x6)", function()
        return recur.matmul(recur.zeros(3, 4), recur.zeros(4, 6), true)
      end)
      assert_err("matmul: size mismatch, (2x3x4) @ (3x4x5)", function()
        return recur.matmul(recur.zeros(2, 3, 4), recur.zeros(3, 4, 5))
      end)
      assert_err("matmul: dtype mismatch, float32 and float64", function()
        return recur.matmul(recur.zeros(2, 2), recur.zeros(2, 2, "float64"))
      end)
      assert_err("matmul: int64 tensors are not supported", function()
        return recur.matmul(recur.zeros(2, 2, "int64"), recur.zeros(2, 2, "int64"))
      end)
      assert_err("matmul: expected 2-D @ 2-D or 3-D @ 3-D (batched), got (4) @ (4x2)", function()
        return recur.matmul(recur.zeros(4), recur.zeros(4, 2))
      end)
      assert_err("matmul: expected 2-D @ 2-D or 3-D @ 3-D (batched), got (2x4) @ (3x4x2)",
        function() return recur.zeros(2, 4):matmul(recur.zeros(3, 4, 2)) end)
      assert_err("matmul: trans_a must be a boolean", function()
        return recur.matmul(recur.zeros(2, 2), recur.zeros(2, 2), 1)
      end)
      assert_err("recur.Tensor expected", function() return recur.matmul(recur.zeros(2, 2), {}) end)
    end)
  end)

  describe("addmm", function()
    for _, dt in ipairs(floats) do
      it("computes c = beta*c + alpha*a@b in place and returns c (" .. dt .. ")", function()
        local a = recur.tensor({ { 1, 2, 3 }, { 4, 5, 6 } }, dt)
        local b = recur.tensor({ { 7, 8 }, { 9, 10 }, { 11, 12 } }, dt)
        local c = recur.tensor({ { 1, 1 }, { 2, -1 } }, dt)
        local r = recur.addmm(c, a, b)
        assert.are.equal(c, r)
        assert_tensor({ { 59, 65 }, { 141, 153 } }, c, dt)
        c = recur.tensor({ { 1, 1 }, { 2, -1 } }, dt)
        recur.addmm(c, a, b, 0.5, 3)
        assert_tensor({ { 32, 35 }, { 75.5, 74 } }, c, dt)
        c:addmm(a, b, 1, 0) -- beta 0 overwrites
        assert_tensor({ { 58, 64 }, { 139, 154 } }, c, dt)
      end)
    end

    it("adds a bias row to every row of c, in place or into a transposed view", function()
      for _, dt in ipairs(floats) do
        local a = recur.tensor({ { 1, 2, 3 }, { 4, 5, 6 } }, dt)
        local b = recur.tensor({ { 7, 8 }, { 9, 10 }, { 11, 12 } }, dt)
        local bias = recur.tensor({ 100, -1000 }, dt)
        local c = recur.tensor({ { 1, 1 }, { 2, -1 } }, dt)
        recur.addmm(c, a, b, 1, 0, false, false, bias)
        assert_tensor({ { 158, -936 }, { 239, -846 } }, c, dt)
        c = recur.tensor({ { 1, 1 }, { 2, -1 } }, dt)
        recur.addmm(c, a, b, 0.5, 3, false, false, bias) -- 3c + ab/2 + bias
        assert_tensor({ { 132, -965 }, { 175.5, -926 } }, c, dt)
        local ct = recur.zeros({ 2, 2 }, dt)
        recur.addmm(ct:t(), a, b, 1, 0, false, false, bias)
        assert_tensor({ { 158, 239 }, { -936, -846 } }, ct, dt)
        -- no products (K = 0): c = beta*c + bias
        c = recur.tensor({ { 1, 1 }, { 2, -1 } }, dt)
        recur.addmm(c, recur.zeros({ 2, 0 }, dt), recur.zeros({ 0, 2 }, dt), 1, 2, false, false, bias)
        assert_tensor({ { 102, -998 }, { 104, -1002 } }, c, dt)
        -- a bias that is a row of c is read before c is written
        c = recur.tensor({ { 100, -1000 }, { 0, 0 } }, dt)
        recur.addmm(c, a, b, 1, 0, false, false, c:select(1, 1))
        assert_tensor({ { 158, -936 }, { 239, -846 } }, c, dt)
      end
      local c = recur.zeros(2, 2)
      local e = select(2, pcall(recur.addmm, c, recur.ones(2, 3), recur.ones(3, 2), 1, 0, false, false, recur.ones(3)))
      assert.truthy(tostring(e):find("addmm: bias must be 1-D of the 2 columns of c, got (3)", 1, true), e)
      e = select(2, pcall(recur.addmm, c, recur.ones(2, 3), recur.ones(3, 2), 1, 0, false, false, recur.ones(2, "float64")))
      assert.truthy(tostring(e):find("addmm", 1, true), e)
    end)

    it("takes transpose flags and transposed views for a, b and c", function()
      local a = recur.tensor({ { 1, 2, 3 }, { 4, 5, 6 } }, "float64")
      local b = recur.tensor({ { 7, 8 }, { 9, 10 }, { 11, 12 } }, "float64")
      local ab = { { 58, 64 }, { 139, 154 } }
      local c = recur.zeros(2, 2, "float64")
      recur.addmm(c, a:t():contiguous(), b:t():contiguous(), 1, 0, true, true)
      assert_tensor(ab, c)
      -- c given as a transposed view: c^T = (a b)^T is written into the storage of ct
      local ct = recur.zeros(2, 2, "float64")
      recur.addmm(ct:t(), a, b)
      assert_tensor({ { 58, 139 }, { 64, 154 } }, ct)
      recur.addmm(ct:t(), a, b, 1, -1)
      assert_tensor({ { 0, 0 }, { 0, 0 } }, ct)
      -- c a view BLAS cannot write (no unit stride): computed in a copy, copied back
      local holder = recur.ones(2, 2, 3, "float64")
      local cv = holder:select(3, 2)
      recur.addmm(cv, a, b, 1, 2)
      assert_tensor({ { 60, 66 }, { 141, 156 } }, cv)
      assert_tensor({ { 1, 1 }, { 1, 1 } }, holder:select(3, 1))
      -- c a single row of a transposed matrix (strides (1, 4)): read by BLAS as transposed
      local m = recur.zeros(3, 4, "float64")
      local row = m:t():narrow(1, 2, 1) -- (1x3), column 2 of m
      assert.are.same({ 1, 4 }, row:stride())
      recur.addmm(row, recur.tensor({ { 1, 2 } }, "float64"),
        recur.tensor({ { 1, 2, 3 }, { 4, 5, 6 } }, "float64"), 1, 0)
      assert.are.same({ { 0, 9, 0, 0 }, { 0, 12, 0, 0 }, { 0, 15, 0, 0 } }, m:totable())
    end)

    it("reads an input that is c itself as it was before the product", function()
      local c = recur.tensor({ { 1, 2 }, { 3, 4 } }, "float64")
      recur.addmm(c, c, c, 1, 1) -- c + c@c
      assert_tensor({ { 8, 12 }, { 18, 26 } }, c)
      local d = recur.tensor({ { 1, 2 }, { 3, 4 } }, "float64")
      recur.addmm(d, d:t(), d, 1, 0) -- d^T d
      assert_tensor({ { 10, 14 }, { 14, 20 } }, d)
    end)

    it("works on batches and scales c by beta for an empty inner size", function()
      local a = recur.tensor({ { { 1, 2 } }, { { 3, 4 } } })   -- (2,1,2)
      local b = recur.tensor({ { { 1 }, { 1 } }, { { 2 }, { -1 } } }) -- (2,2,1)
      local c = recur.ones(2, 1, 1)
      recur.addmm(c, a, b, 2, 1)
      assert_tensor({ { { 7 } }, { { 5 } } }, c)
      local e = recur.full({ 2, 3 }, 2)
      recur.addmm(e, recur.zeros(2, 0), recur.zeros(0, 3), 1, 0.5)
      assert_tensor({ { 1, 1, 1 }, { 1, 1, 1 } }, e)
    end)

    it("names the mismatch in errors", function()
      assert_err("addmm: size mismatch, c is (2x3) but (2x4) @ (4x5) is (2x5)", function()
        return recur.addmm(recur.zeros(2, 3), recur.zeros(2, 4), recur.zeros(4, 5))
      end)
      assert_err("addmm: size mismatch, (2x4) @ (5x5)", function()
        return recur.addmm(recur.zeros(2, 5), recur.zeros(2, 4), recur.zeros(5, 5))
      end)
      assert_err("addmm: dtype mismatch, float64 and float32", function()
        return recur.addmm(recur.zeros(2, 2, "float64"), recur.zeros(2, 2), recur.zeros(2, 2))
      end)
    end)
  end)

  describe("softmax", function()
    for _, dt in ipairs(floats) do
      it("normalises the last dim with hand values (" .. dt .. ")", function()
        local x = recur.tensor({ { 1, 2, 3 }, { 0, 0, 0 } }, dt)
        local s = x:softmax()
        local z = math.exp(1) + math.exp(2) + math.exp(3)
        local tol = dt == "float32" and 1e-6 or 1e-14
        local want = { { math.exp(1) / z, math.exp(2) / z, math.exp(3) / z },
          { 1 / 3, 1 / 3, 1 / 3 } }
        assert_tensor(want, s, dt, tol)
        assert_tensor({ 1, 1 }, s:sum(2), dt, tol)
        local ls = x:log_softmax()
        assert_tensor({ { 1 - math.log(z), 2 - math.log(z), 3 - math.log(z) },
          { -math.log(3), -math.log(3), -math.log(3) } }, ls, dt, tol)
        assert_tensor(s:log():totable(), ls, dt, tol)
        -- out of place
        assert.are.same({ { 1, 2, 3 }, { 0, 0, 0 } }, x:totable())
      end)
    end

    it("is stable for large inputs", function()
      local x = recur.tensor({ 1000, 1001, 1002 })
      local s = x:softmax():totable()
      local z = 1 + math.exp(1) + math.exp(2)
      assert_near({ 1 / z, math.exp(1) / z, math.exp(2) / z }, s, 1e-6)
      local ls = recur.tensor({ -1000, 0 }, "float64"):log_softmax():totable()
      assert_near({ -1000, 0 }, ls, 1e-12)
      local big = recur.tensor({ 1e30, -1e30 }, "float64"):softmax():totable()
      assert.are.same({ 1, 0 }, big)
    end)

    it("sums to one on every row of a large random 3-D tensor, and along another dim", function()
      recur.manual_seed(5)
      local x = recur.randn(8, 50, 130):mul(10)
      local s = x:softmax()
      local sums = s:sum(3)
      assert.is_true(recur.allclose(sums, recur.ones(8, 50), 1e-5, 1e-6))
      assert.is_true(s:min() >= 0)
      local s2 = x:softmax(2)
      assert.is_true(recur.allclose(s2:sum(2), recur.ones(8, 130), 1e-5, 1e-6))
      assert.is_true(recur.allclose(s2, x:transpose(2, 3):softmax():transpose(2, 3), 1e-6, 1e-7))
      assert.is_true(recur.allclose(x:transpose(1, 3):log_softmax():exp(),
        x:transpose(1, 3):softmax(), 1e-5, 1e-7))
    end)

    it("rejects int64 and 0-d tensors and bad dims", function()
      assert_err("softmax: int64 tensors are not supported", function()
        return recur.zeros(3, "int64"):softmax()
      end)
      assert_err("log_softmax: expected a tensor with at least 1 dim", function()
        return recur.tensor(1):log_softmax()
      end)
      assert_err("softmax: dim 3 out of range for a 2-D tensor", function()
        return recur.zeros(2, 2):softmax(3)
      end)
    end)
  end)
end)
