-- recur.optim optimizers: several steps against PyTorch 1.13's torch.optim
-- (spec/fixtures/optim/optimizers.json, from spec/fixtures/generate_optim.py), a
-- resume through state_dict + a safetensors file, hand-computed steps, float64 against
-- float32 and exact hand-computed float64 steps, and the errors.
local recur = require "recur"
local helpers = require "spec.support.helpers"
local optim = recur.optim

local flat, assert_fails_with = helpers.flat, helpers.assert_fails_with

local FIX = helpers.read_json("spec/fixtures/optim/optimizers.json")

-- Largest |a - b| / max(1, |b|) over two flat arrays.
local function max_err(a, b)
  assert.are.equal(#b, #a)
  local m = 0
  for i = 1, #a do
    local e = math.abs(a[i] - b[i]) / math.max(1, math.abs(b[i]))
    if e ~= e then return math.huge end
    if e > m then m = e end
  end
  return m
end

local function make(case, dtype)
  local params, grads = {}, {}
  for i, shape in ipairs(case.shapes) do
    params[i] = recur.tensor(case.params[i], dtype or "float32"):view(shape)
    grads[i] = recur.zeros(shape, dtype or "float32")
  end
  return params, grads
end

local function set_grads(grads, case, k)
  for i, g in ipairs(grads) do g:copy_(recur.tensor(case.grads[k][i], g:dtype())) end
end

-- cjson turns JSON arrays into tables that recur's options accept as they are.
local function options(case)
  local o = {}
  for k, v in pairs(case.options) do o[k] = v end
  return o
end

describe("recur.optim optimizers", function()
  it("runs on Lua 5.4", function()
    assert.are.equal("Lua 5.4", _VERSION)
  end)

  describe("match torch.optim over " .. #FIX.cases[1].grads .. " steps", function()
    for _, case in ipairs(FIX.cases) do
      it(case.name .. " (" .. case.optimizer .. ")", function()
        local params, grads = make(case)
        local opt = optim[case.optimizer]({params = params, grads = grads}, options(case))
        for k = 1, #case.grads do
          set_grads(grads, case, k)
          opt:step()
          for i, p in ipairs(params) do
            local err = max_err(flat(p), case.expected[k][i])
            assert(err <= 1e-6, string.format("%s step %d param %d: error %g", case.name, k, i, err))
          end
        end
        assert.are.equal(#case.grads, opt.step_count)
        local tensors = opt:state_dict()
        local nstate = 0
        for buf, list in pairs(case.state) do
          for i, values in ipairs(list) do
            local t = tensors[buf .. "." .. i]
            assert(t, "missing state " .. buf .. "." .. i)
            local err = max_err(flat(t), values)
            assert(err <= 1e-6, string.format("%s state %s.%d: error %g", case.name, buf, i, err))
            nstate = nstate + 1
          end
        end
        local nours = 0
        for _ in pairs(tensors) do nours = nours + 1 end
        assert.are.equal(nstate, nours)
      end)
    end
  end)

  describe("resume through state_dict and a safetensors file", function()
    for _, case in ipairs(FIX.cases) do
      it("continues " .. case.name .. " bitwise as an uninterrupted run", function()
        local steps, half = #case.grads, 3
        -- The uninterrupted run.
        local p1, g1 = make(case)
        local o1 = optim[case.optimizer]({params = p1, grads = g1}, options(case))
        for k = 1, steps do
          set_grads(g1, case, k)
          o1:step()
        end
        -- Half a run, a checkpoint holding the parameters and the optimizer state ...
        local p2, g2 = make(case)
        local o2 = optim[case.optimizer]({params = p2, grads = g2}, options(case))
        for k = 1, half do
          set_grads(g2, case, k)
          o2:step()
        end
        local tensors, meta = o2:state_dict("optim.")
        for i, p in ipairs(p2) do tensors["param." .. i] = p end
        local path = os.tmpname()
        finally(function() os.remove(path) end)
        recur.io.save(path, tensors, {optim = recur.io.encode_meta(meta)})
        -- ... then, in a fresh optimizer over fresh tensors, the other half.
        local loaded, md = recur.io.load(path)
        local p3, g3 = make(case)
        for i, p in ipairs(p3) do p:copy_(loaded["param." .. i]) end
        local o3 = optim[case.optimizer]({params = p3, grads = g3}, options(case))
        o3:load_state_dict(loaded, recur.io.decode_meta(md.optim), "optim.")
        assert.are.equal(half, o3.step_count)
        for k = half + 1, steps do
          set_grads(g3, case, k)
          o3:step()
        end
        for i = 1, #p1 do
          assert.are.same(flat(p1[i]), flat(p3[i]))
        end
      end)
    end

    it("restores the hyperparameters, including a learning rate set by a schedule", function()
      local p, g = recur.zeros(3), recur.ones(3)
      local a = optim.Adam({params = {p}, grads = {g}}, {lr = 1e-3})
      a.lr = 0.1 + 0.2 -- not exactly representable in 14 digits
      a:step()
      local tensors, meta = a:state_dict()
      meta = recur.io.decode_meta(recur.io.encode_meta(meta))
      local b = optim.Adam({params = {recur.zeros(3)}, grads = {recur.ones(3)}}, {lr = 5})
      b:load_state_dict(tensors, meta)
      assert.are.equal(0.1 + 0.2, b.lr)
      assert.are.equal(1, b.step_count)
    end)

    it("returns copies: later steps do not change a saved state", function()
      local p, g = recur.zeros(2), recur.ones(2)
      local a = optim.Adam({params = {p}, grads = {g}})
      a:step()
      local tensors = a:state_dict()
      local before = flat(tensors["exp_avg.1"])
      a:step()
      assert.are.same(before, flat(tensors["exp_avg.1"]))
    end)
  end)

  describe("float64 parameters", function()
    -- The same equations as float32 with the coefficients in double: over the fixtures'
    -- steps the two agree to float32 rounding (and both with torch), yet float64 is
    -- not float32 widened.
    for _, case in ipairs(FIX.cases) do
      it(case.name .. " (" .. case.optimizer .. ") gives float32's numbers to its rounding", function()
        local p32, g32 = make(case, "float32")
        local p64, g64 = make(case, "float64")
        local o32 = optim[case.optimizer]({params = p32, grads = g32}, options(case))
        local o64 = optim[case.optimizer]({params = p64, grads = g64}, options(case))
        local widened_everywhere = true
        for k = 1, #case.grads do
          set_grads(g32, case, k)
          set_grads(g64, case, k)
          o32:step()
          o64:step()
          for i = 1, #p64 do
            assert.are.equal("float64", p64[i]:dtype())
            local a, b = flat(p64[i]), flat(p32[i])
            local err = max_err(a, b)
            assert(err <= 2e-6, string.format("%s step %d param %d: float64 vs float32 %g",
              case.name, k, i, err))
            err = max_err(a, case.expected[k][i])
            assert(err <= 2e-6, string.format("%s step %d param %d: float64 vs torch %g",
              case.name, k, i, err))
            for j = 1, #a do
              if a[j] ~= b[j] then widened_everywhere = false end
            end
          end
        end
        assert.is_false(widened_everywhere)
        for buf, list in pairs(o64.state) do
          for i, t in ipairs(list) do
            assert.are.equal("float64", t:dtype(), buf .. "." .. i)
            assert(max_err(flat(t), flat(o32.state[buf][i])) <= 2e-6, buf .. "." .. i)
          end
        end
      end)
    end

    -- Dyadic numbers keep every intermediate exact, so the first step is known to the
    -- last bit; lr = 0.1 shows the coefficients stay in double (float32 rounds 0.1).
    local function first_step(class, opts, p0, g0, dtype)
      local p = recur.tensor({p0}, dtype or "float64")
      class({{p, recur.tensor({g0}, dtype or "float64")}}, opts):step()
      return p:get(1)
    end

    it("SGD: exact first and second steps, momentum, Nesterov and weight decay", function()
      assert.are.equal(1 - 0.1 * 0.5, first_step(optim.SGD, {lr = 0.1}, 1, 0.5))
      assert.are_not.equal(1 - 0.1 * 0.5, first_step(optim.SGD, {lr = 0.1}, 1, 0.5, "float32"))
      -- d = 0.5 + 0.5*1 = 1, buf = 1, d = 1 + 0.5*1 = 1.5, p = 1 - 0.25*1.5 = 0.625;
      -- then d = 0.5 + 0.5*0.625 = 0.8125, buf = 0.5*1 + 0.8125 = 1.3125,
      -- d = 0.8125 + 0.5*1.3125 = 1.46875, p = 0.625 - 0.25*1.46875 = 0.2578125
      local p, g = recur.tensor({1}, "float64"), recur.tensor({0.5}, "float64")
      local opt = optim.SGD({{p, g}}, {lr = 0.25, momentum = 0.5, weight_decay = 0.5, nesterov = true})
      opt:step()
      assert.are.equal(0.625, p:get(1))
      opt:step()
      assert.are.equal(0.2578125, p:get(1))
      assert.are.equal(1.3125, opt.state.momentum_buffer[1]:get(1))
      -- dampening 0.5 (no Nesterov): buf = 1 on the first step, then 0.5*1 + 0.5*d
      p = recur.tensor({1}, "float64")
      opt = optim.SGD({{p, recur.tensor({1}, "float64")}}, {lr = 0.25, momentum = 0.5, dampening = 0.5})
      opt:step() -- buf = 1, p = 0.75
      opt:step() -- buf = 0.5 + 0.5 = 1, p = 0.5
      assert.are.equal(0.5, p:get(1))
    end)

    it("Adam and AdamW, with amsgrad: exact first steps", function()
      -- betas (0.5, 0.75), eps 0: bias corrections 0.5 and 0.25, m = 0.5 g, v = 0.25 g^2,
      -- so p moves by lr * m/0.5 / (sqrt(v)/0.5) = lr * sign(g)
      local o = {lr = 0.25, betas = {0.5, 0.75}, eps = 0}
      assert.are.equal(0.75, first_step(optim.Adam, o, 1, 2))
      o.amsgrad = true
      assert.are.equal(1.25, first_step(optim.Adam, o, 1, -3))
      -- L2: g = 1.5 + 0.5*1 = 2
      o.weight_decay = 0.5
      assert.are.equal(0.75, first_step(optim.Adam, o, 1, 1.5))
      -- AdamW: p = 1*(1 - 0.25*0.5) = 0.875 first, then 0.875 - 0.25
      assert.are.equal(0.625, first_step(optim.AdamW, o, 1, 2))
      -- the default betas: the Lua replica of the equations, to the last bit
      local bc1, bc2 = 1 - 0.9 ^ 1, 1 - 0.999 ^ 1
      local m, v = (1 - 0.9) * 0.5, (1 - 0.999) * 0.5 * 0.5
      local want = 1 + -(0.1 / bc1) * m / (math.sqrt(v) / math.sqrt(bc2) + 1e-8)
      assert.are.equal(want, first_step(optim.Adam, {lr = 0.1}, 1, 0.5))
    end)

    it("RMSprop, centered with momentum and weight decay: an exact first step", function()
      -- alpha 0.5, eps 0: g = 1.5 + 0.5*1 = 2, square_avg = 0.5*4 = 2, grad_avg = 1,
      -- avg = sqrt(2 - 1) = 1, buf = 2, p = 1 - 0.25*2 = 0.5
      local o = {lr = 0.25, alpha = 0.5, eps = 0, momentum = 0.5, centered = true, weight_decay = 0.5}
      assert.are.equal(0.5, first_step(optim.RMSprop, o, 1, 1.5))
      -- plain: square_avg = 0.5*4 = 2, p = 1 - 0.25*2/sqrt(2)
      assert.are.equal(1 + -0.25 * 2 / math.sqrt(2),
        first_step(optim.RMSprop, {lr = 0.25, alpha = 0.5, eps = 0}, 1, 2))
    end)

    it("Adagrad: exact first steps, and lr_decay on the second", function()
      -- sum = 12 + (1.5 + 0.5*1)^2 = 16, p = 1 - 0.25*2/4 = 0.875
      local o = {lr = 0.25, initial_accumulator_value = 12, weight_decay = 0.5, eps = 0, lr_decay = 1}
      local p, g = recur.tensor({1}, "float64"), recur.tensor({1.5}, "float64")
      local opt = optim.Adagrad({{p, g}}, o)
      opt:step()
      assert.are.equal(0.875, p:get(1))
      -- clr = 0.25 / (1 + 1*1) = 0.125, g = 1.5 + 0.4375 = 1.9375,
      -- sum = 16 + 1.9375^2, p = 0.875 - 0.125*1.9375/sqrt(sum)
      g:fill_(1.5)
      opt:step()
      local gi = 1.5 + 0.5 * 0.875
      assert.are.equal(0.875 + -0.125 * gi / math.sqrt(16 + gi * gi), p:get(1))
    end)

    it("one optimizer may hold float32 and float64 parameters", function()
      local p32, g32 = recur.tensor({1, 2}), recur.tensor({0.5, -1})
      local p64, g64 = recur.tensor({1, 2}, "float64"), recur.tensor({0.5, -1}, "float64")
      local opt = optim.Adam({{p32, g32}, {p64, g64}}, {lr = 0.1, amsgrad = true})
      opt:step()
      local a32, a64 = recur.tensor({1, 2}), recur.tensor({1, 2}, "float64")
      optim.Adam({{a32, g32}}, {lr = 0.1, amsgrad = true}):step()
      optim.Adam({{a64, g64}}, {lr = 0.1, amsgrad = true}):step()
      assert.are.same(flat(a32), flat(p32))
      assert.are.same(flat(a64), flat(p64))
      assert.are.equal("float32", opt.state.exp_avg[1]:dtype())
      assert.are.equal("float64", opt.state.exp_avg[2]:dtype())
    end)

    it("resumes through state_dict and a safetensors file bitwise", function()
      local case
      for _, c in ipairs(FIX.cases) do
        if c.name == "adam_l2_amsgrad" then case = c end
      end
      local p1, g1 = make(case, "float64")
      local o1 = optim.Adam({params = p1, grads = g1}, options(case))
      for k = 1, #case.grads do
        set_grads(g1, case, k)
        o1:step()
      end
      local p2, g2 = make(case, "float64")
      local o2 = optim.Adam({params = p2, grads = g2}, options(case))
      for k = 1, 3 do
        set_grads(g2, case, k)
        o2:step()
      end
      local tensors, meta = o2:state_dict()
      local path = os.tmpname()
      finally(function() os.remove(path) end)
      recur.io.save(path, tensors, {optim = recur.io.encode_meta(meta)})
      local loaded, md = recur.io.load(path)
      local o3 = optim.Adam({params = p2, grads = g2}, options(case))
      o3:load_state_dict(loaded, recur.io.decode_meta(md.optim))
      for k = 4, #case.grads do
        set_grads(g2, case, k)
        o3:step()
      end
      for i = 1, #p1 do assert.are.same(flat(p1[i]), flat(p2[i])) end
    end)
  end)

  describe("hand-computed steps", function()
    it("SGD: p - lr * g, then with a new lr", function()
      local p, g = recur.tensor({1, 2}), recur.tensor({0.5, -1})
      local opt = optim.SGD({{p, g}}, {lr = 0.1})
      opt:step()
      assert(max_err(flat(p), {0.95, 2.1}) < 1e-7)
      opt.lr = 1
      opt:step()
      assert(max_err(flat(p), {0.45, 3.1}) < 1e-7)
    end)

    it("SGD momentum: the buffer starts at the gradient", function()
      local p, g = recur.tensor({0}), recur.tensor({1})
      local opt = optim.SGD({{p, g}}, {lr = 1, momentum = 0.5})
      opt:step() -- buf = 1, p = -1
      opt:step() -- buf = 0.5 + 1 = 1.5, p = -2.5
      assert.are.equal(-2.5, p:get(1))
      local st = opt:state_dict()
      assert.are.equal(1.5, st["momentum_buffer.1"]:get(1))
    end)

    it("Adam: the first step moves each element by about lr against its gradient's sign", function()
      local p, g = recur.tensor({1, 1}), recur.tensor({0.5, -3})
      local opt = optim.Adam({{p, g}}, {lr = 0.1})
      opt:step()
      -- m = 0.1 g, v = 0.001 g^2: m / (1 - 0.9) / (sqrt(v) / sqrt(1 - 0.999) + eps) = g / (|g| + eps)
      assert(max_err(flat(p), {0.9, 1.1}) < 1e-6)
    end)

    it("AdamW: decays the parameter even with a zero gradient", function()
      local p, g = recur.tensor({2}), recur.tensor({0})
      local opt = optim.AdamW({{p, g}}, {lr = 0.1, weight_decay = 0.5})
      opt:step()
      assert(math.abs(p:get(1) - 2 * (1 - 0.05)) < 1e-6)
    end)

    it("Adagrad: lr / (sqrt(initial + g^2) + eps) * g", function()
      local p, g = recur.tensor({0}), recur.tensor({2})
      local opt = optim.Adagrad({{p, g}}, {lr = 1, initial_accumulator_value = 5})
      opt:step()
      assert(math.abs(p:get(1) - (-2 / 3)) < 1e-6)
    end)

    -- eps at its default is far below the denominators' float32 resolution, so the
    -- fixtures would pass with eps dropped; eps = 0.5 changes the first step visibly
    it("eps: Adam, AdamW, RMSprop and Adagrad divide by (the root + eps)", function()
      local function first_step(class, opts, g)
        local p = recur.tensor({1})
        class({{p, recur.tensor({g})}}, opts):step()
        return p:get(1)
      end
      -- Adam: g / (|g| + eps) after bias correction, times lr
      assert.are.near(1 - 0.1 * 2 / 2.5, first_step(optim.Adam, {lr = 0.1, eps = 0.5}, 2), 1e-6)
      assert.are.near(1 - 0.1 * 2 / 2.5, first_step(optim.AdamW, {lr = 0.1, eps = 0.5, weight_decay = 0}, 2), 1e-6)
      -- RMSprop: square_avg = (1 - alpha) g^2 = 0.5 * 4, lr * g / (sqrt(2) + eps)
      assert.are.near(1 - 0.1 * 2 / (math.sqrt(2) + 0.5),
        first_step(optim.RMSprop, {lr = 0.1, alpha = 0.5, eps = 0.5}, 2), 1e-6)
      -- Adagrad: sum = g^2 = 4, lr * g / (2 + eps)
      assert.are.near(1 - 0.1 * 2 / 2.5, first_step(optim.Adagrad, {lr = 0.1, eps = 0.5}, 2), 1e-6)
    end)

    it("zero_grad zeroes every gradient", function()
      local g1, g2 = recur.ones(2, 2), recur.ones(3)
      local opt = optim.SGD({params = {recur.zeros(2, 2), recur.zeros(3)}, grads = {g1, g2}}, {lr = 1})
      opt:zero_grad()
      assert.are.equal(0, g1:abs():sum() + g2:abs():sum())
    end)

    it("updates a large parameter (the threaded path) like a small one", function()
      recur.manual_seed(3)
      local n = 100003
      local big, gbig = recur.randn(n), recur.randn(n)
      local small, gsmall = big:narrow(1, n - 9, 10):clone(), gbig:narrow(1, n - 9, 10):clone()
      local a = optim.Adam({{big, gbig}}, {lr = 0.01, weight_decay = 0.1, amsgrad = true})
      local b = optim.Adam({{small, gsmall}}, {lr = 0.01, weight_decay = 0.1, amsgrad = true})
      for _ = 1, 3 do
        a:step()
        b:step()
      end
      assert.are.same(flat(small), flat(big:narrow(1, n - 9, 10)))
    end)
  end)

  describe("parameter sources", function()
    it("accepts a recur.nn-style module (parameters() returns both arrays)", function()
      local p, g = recur.zeros(2), recur.ones(2)
      local module = {parameters = function() return {p}, {g} end}
      optim.SGD(module, {lr = 1}):step()
      assert.are.same({-1, -1}, flat(p))
    end)

    it("accepts an object with parameters() and gradients()", function()
      local p, g = recur.zeros(2), recur.ones(2)
      local obj = {parameters = function() return {p} end, gradients = function() return {g} end}
      optim.SGD(obj, {lr = 2}):step()
      assert.are.same({-2, -2}, flat(p))
    end)

    it("updates a real recur.nn module's own tensors", function()
      local lin = recur.nn.Linear(3, 2)
      local params, grads = lin:parameters()
      local before = flat(params[1])
      for _, gr in ipairs(grads) do gr:fill_(1) end
      optim.SGD(lin, {lr = 0.5}):step()
      local after = flat(params[1])
      for i = 1, #before do assert(math.abs(after[i] - (before[i] - 0.5)) < 1e-6) end
    end)
  end)

  describe("errors", function()
    local function src()
      return {params = {recur.zeros(2, 3)}, grads = {recur.zeros(2, 3)}}
    end
    local cases = {
      {"an unknown option", function() optim.Adam(src(), {learning_rate = 1}) end, "unknown option 'learning_rate'"},
      {"a missing SGD lr", function() optim.SGD(src(), {}) end, "option lr is required"},
      {"a wrongly typed option", function() optim.Adam(src(), {lr = "fast"}) end, "option lr must be a number"},
      {"a negative lr", function() optim.RMSprop(src(), {lr = -1}) end, "invalid learning rate"},
      {"a beta of 1", function() optim.Adam(src(), {betas = {0.9, 1}}) end, "invalid beta2"},
      {"betas that are not two numbers", function() optim.AdamW(src(), {betas = {0.9}}) end, "betas must be"},
      {"Nesterov without momentum", function() optim.SGD(src(), {lr = 1, nesterov = true}) end, "Nesterov"},
      {"an empty parameter list", function() optim.SGD({params = {}, grads = {}}, {lr = 1}) end, "empty parameter list"},
      {"counts that differ", function()
        optim.SGD({params = {recur.zeros(2)}, grads = {}}, {lr = 1})
      end, "1 parameters but 0 gradients"},
      {"shapes that differ", function()
        optim.Adam({params = {recur.zeros(2, 3)}, grads = {recur.zeros(3, 2)}})
      end, "parameter 1 is (2x3) but its gradient is (3x2)"},
      {"an int64 parameter", function()
        optim.Adam({params = {recur.zeros(2, "int64")}, grads = {recur.zeros(2, "int64")}})
      end, "Adam: parameter 1 is int64, optimizers update float32 or float64 tensors"},
      {"a gradient of another dtype than its parameter", function()
        optim.SGD({params = {recur.zeros(2), recur.zeros(2, "float64")},
                   grads = {recur.zeros(2), recur.zeros(2)}}, {lr = 1})
      end, "SGD: parameter 2 is float64 but its gradient is float32"},
      {"a non-contiguous parameter", function()
        optim.Adam({params = {recur.zeros(2, 3):t()}, grads = {recur.zeros(3, 2)}})
      end, "parameter 1 is not contiguous"},
      {"a parameter listed twice", function()
        local p = recur.zeros(2)
        optim.Adam({params = {p, p}, grads = {recur.zeros(2), recur.zeros(2)}})
      end, "parameter 2 is the same tensor as parameter 1"},
      {"a non-tensor", function() optim.Adam({params = {1}, grads = {2}}) end, "parameter 1 is not a tensor"},
      {"no parameters at all", function() optim.Adam(nil) end, "expected a module"},
    }
    for _, c in ipairs(cases) do
      it("rejects " .. c[1], function() assert_fails_with(c[2], c[3]) end)
    end

    it("rejects a learning rate set to a non-number at step time", function()
      local opt = optim.Adam(src())
      opt.lr = "0.1"
      local ok, err = pcall(opt.step, opt)
      assert.is_false(ok)
      assert.matches("Adam: lr must be a non%-negative number", err)
    end)

    it("refuses momentum on an SGD built without it", function()
      local opt = optim.SGD(src(), {lr = 1})
      opt.momentum = 0.9
      local ok, err = pcall(opt.step, opt)
      assert.is_false(ok)
      assert.matches("momentum was 0", err)
    end)

    it("refuses a bad state and leaves the optimizer unchanged", function()
      local p, g = recur.zeros(2, 3), recur.ones(2, 3)
      local opt = optim.Adam({{p, g}}, {amsgrad = true})
      opt:step()
      local tensors, meta = opt:state_dict()
      local saved = flat(tensors["exp_avg.1"])
      local function refuse(t, m, pattern)
        local ok, err = pcall(opt.load_state_dict, opt, t, m)
        assert.is_false(ok)
        assert(tostring(err):find(pattern, 1, true), "message was: " .. tostring(err))
        assert.are.equal(1, opt.step_count)
        assert.are.same(saved, flat(opt.state.exp_avg[1]))
      end
      local zeros = {}
      for k, v in pairs(tensors) do zeros[k] = recur.zeros(v:size()) end
      local wrong = {}
      for k, v in pairs(zeros) do wrong[k] = v end
      wrong["max_exp_avg_sq.1"] = recur.zeros(3, 2)
      refuse(wrong, meta, "state tensor 'max_exp_avg_sq.1' is (3x2), expected (2x3)")
      local missing = {["exp_avg.1"] = zeros["exp_avg.1"], ["exp_avg_sq.1"] = zeros["exp_avg_sq.1"]}
      refuse(missing, meta, "missing state tensor 'max_exp_avg_sq.1'")
      local m2 = {}
      for k, v in pairs(meta) do m2[k] = v end
      m2.amsgrad = 0
      refuse(zeros, m2, "amsgrad is 0 in the state but 1 in this optimizer")
      m2.amsgrad, m2.num_params = 1, 2
      refuse(zeros, m2, "the state is for 2 parameters")
      m2.num_params, m2.step = 1, 1.5
      refuse(zeros, m2, "meta.step must be a non-negative integer")
      m2.step, m2.lr = 1, "x"
      refuse(zeros, m2, "meta.lr must be a number")
    end)

    it("checks tensors in the C kernels too", function()
      local core = recur.core
      local p = recur.zeros(4)
      local ok, err = pcall(core.optim_adam, p, recur.zeros(3), recur.zeros(4), recur.zeros(4), nil,
        0.1, 0.9, 0.999, 1e-8, 0, false, 1)
      assert.is_false(ok)
      assert.matches("optim_adam: gradient has 3 elements, the parameter has 4", err)
      ok, err = pcall(core.optim_sgd, p, recur.zeros(4, "float64"), nil, 0.1, 0, 0, 0, false, true)
      assert.is_false(ok)
      assert.matches("optim_sgd", err)
      -- every state buffer has the parameter's dtype
      local p64 = recur.zeros(4, "float64")
      ok, err = pcall(core.optim_adam, p64, p64, recur.zeros(4, "float64"), recur.zeros(4), nil,
        0.1, 0.9, 0.999, 1e-8, 0, false, 1)
      assert.is_false(ok)
      assert.matches("optim_adam: exp_avg_sq expected dtype float64, got float32", err)
      ok, err = pcall(core.optim_adagrad, recur.zeros(4, "int64"), recur.zeros(4, "int64"),
        recur.zeros(4, "int64"), 0.1, 0, 0)
      assert.is_false(ok)
      assert.matches("optim_adagrad: parameter expected dtype float32 or float64, got int64", err)
      ok, err = pcall(core.optim_adam, p, p, p, p, nil, 0.1, 0.9, 0.999, 1e-8, 0, false, 0)
      assert.is_false(ok)
      assert.matches("step counts from 1", err)
    end)
  end)
end)
