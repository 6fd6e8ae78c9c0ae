-- recur.optim.clip_grad_norm / clip_grad_value: hand-computed values, PyTorch 1.13's
-- torch.nn.utils.clip_grad_norm_ (spec/fixtures/optim/clip.json) and the errors.
local recur = require "recur"
local helpers = require "spec.support.helpers"
local optim = recur.optim

local flat, assert_fails_with = helpers.flat, helpers.assert_fails_with

local function close_all(a, b, tol)
  assert.are.equal(#b, #a)
  for i = 1, #a do
    assert(math.abs(a[i] - b[i]) <= tol, string.format("element %d: %.9g vs %.9g", i, a[i], b[i]))
  end
end

describe("recur.optim gradient clipping", function()
  it("runs on Lua 5.4", function()
    assert.are.equal("Lua 5.4", _VERSION)
  end)

  it("scales by max_norm / (norm + 1e-6) when the global norm is larger", function()
    -- ||(3, 4, 12)|| = 13
    local g1, g2 = recur.tensor({3, 4}), recur.tensor({{12}})
    local total = optim.clip_grad_norm({g1, g2}, 6.5)
    assert.are.equal(13, total)
    local c = 6.5 / (13 + 1e-6)
    close_all(flat(g1), {3 * c, 4 * c}, 1e-6)
    close_all(flat(g2), {12 * c}, 1e-6)
    -- The clipped gradients have (almost exactly) the norm asked for.
    local n = math.sqrt(g1:mul(g1):sum() + g2:mul(g2):sum())
    assert(math.abs(n - 6.5) < 1e-5)
  end)

  it("leaves gradients alone when the norm is below max_norm", function()
    local g = recur.tensor({3, 4})
    assert.are.equal(5, optim.clip_grad_norm({g}, 5.1))
    assert.are.same({3, 4}, flat(g))
  end)

  it("accumulates in double: many small float32 elements", function()
    -- 2^20 elements of 1e-3: a float32 running sum of the squares drifts by percents,
    -- a double one stays within n * 2^-53 of the exact value
    local g = recur.full({1024, 1024}, 1e-3)
    local x = 1e-3
    local expected = math.sqrt(1024 * 1024 * (string.unpack("<f", string.pack("<f", x)) ^ 2))
    local total = optim.clip_grad_norm({g}, 1e9)
    assert(math.abs(total - expected) / expected < 1e-9, string.format("%.17g vs %.17g", total, expected))
  end)

  it("takes the largest |g| for norm_type = math.huge", function()
    local g1, g2 = recur.tensor({1, -7}), recur.tensor({2, 3})
    local total = optim.clip_grad_norm({g1, g2}, 3.5, math.huge)
    assert.are.equal(7, total)
    local c = 3.5 / (7 + 1e-6)
    close_all(flat(g1), {c, -7 * c}, 1e-6)
  end)

  it("works on float64 and on non-contiguous gradients", function()
    local g = recur.tensor({{3, 0}, {4, 0}}, "float64"):t() -- (2x2) transposed view
    local total = optim.clip_grad_norm({g}, 1)
    assert.are.equal(5, total)
    close_all(flat(g), {0.6, 0.8, 0, 0}, 1e-6)
  end)

  it("returns a NaN or infinite norm without touching the gradients", function()
    local g1, g2 = recur.tensor({0 / 0, 1}), recur.tensor({5})
    local total = optim.clip_grad_norm({g1, g2}, 1)
    assert(total ~= total)
    assert.are.equal(5, g2:get(1))
    local g3 = recur.tensor({math.huge, 1})
    assert.are.equal(math.huge, optim.clip_grad_norm({g3}, 1))
    assert.are.equal(1, g3:get(2))
    local g4 = recur.tensor({1, 0 / 0})
    local tinf = optim.clip_grad_norm({g4}, 1, math.huge)
    assert(tinf ~= tinf)
  end)

  it("takes a module's gradients", function()
    local g = recur.tensor({6, 8})
    local module = {parameters = function() return {recur.zeros(2)}, {g} end}
    assert.are.equal(10, optim.clip_grad_norm(module, 5))
    close_all(flat(g), {3, 4}, 1e-5)
  end)

  it("matches torch.nn.utils.clip_grad_norm_", function()
    local fix = helpers.read_json("spec/fixtures/optim/clip.json")
    for _, case in ipairs(fix.cases) do
      local grads = {}
      for i, shape in ipairs(case.shapes) do grads[i] = recur.tensor(case.grads[i]):view(shape) end
      local norm_type = case.norm_type == "inf" and math.huge or case.norm_type
      local total = optim.clip_grad_norm(grads, case.max_norm, norm_type)
      assert(math.abs(total - case.total_norm) <= 1e-6 * case.total_norm)
      for i, g in ipairs(grads) do close_all(flat(g), case.clipped[i], 1e-6) end
    end
  end)

  it("clip_grad_value clamps every element", function()
    local g1, g2 = recur.tensor({-3, 0.5, 2}), recur.tensor({{-0.1, 9}})
    optim.clip_grad_value({g1, g2}, 1)
    assert.are.same({-1, 0.5, 1}, flat(g1))
    close_all(flat(g2), {-0.1, 1}, 1e-7)
  end)

  describe("errors", function()
    local cases = {
      {"a negative max_norm", function() optim.clip_grad_norm({recur.zeros(2)}, -1) end, "max_norm must be a non-negative number"},
      {"a NaN max_norm", function() optim.clip_grad_norm({recur.zeros(2)}, 0 / 0) end, "max_norm must be"},
      {"norm_type 1", function() optim.clip_grad_norm({recur.zeros(2)}, 1, 1) end, "norm_type must be 2 or math.huge"},
      {"a non-tensor", function() optim.clip_grad_norm({recur.zeros(2), 3}, 1) end, "gradient 2 is not a tensor"},
      {"an int64 gradient", function() optim.clip_grad_norm({recur.zeros(2, "int64")}, 1) end, "gradient 1 is int64"},
      {"a missing list", function() optim.clip_grad_value(nil, 1) end, "expected an array of gradient tensors"},
      {"a negative clip value", function() optim.clip_grad_value({recur.zeros(1)}, -2) end, "clip_value must be"},
    }
    for _, c in ipairs(cases) do
      it("rejects " .. c[1], function() assert_fails_with(c[2], c[3]) end)
    end
  end)
end)
