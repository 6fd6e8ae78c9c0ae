-- recur.gradcheck: it must pass correct gradients and, above all, catch wrong ones,
-- naming the parameter or input that is wrong.
local recur = require "recur"
local nn = recur.nn

it("runs on Lua 5.4", function()
  assert.are.equal("Lua 5.4", _VERSION)
end)

-- A Linear whose weight gradient is off by 1% and whose input gradient is correct.
local BadLinear = setmetatable({}, {__index = nn.Linear})
BadLinear.__index = BadLinear
local function bad_linear(D, H)
  local m = nn.Linear(D, H)
  return setmetatable(m, BadLinear)
end
function BadLinear:backward(x, gy)
  local gx = nn.Linear.backward(self, x, gy)
  self:gradient("weight"):mul_(1.01)
  return gx
end

-- A module whose input gradient ignores the time step t = 1.
local LeakyRNN = setmetatable({}, {__index = nn.GRU})
LeakyRNN.__index = LeakyRNN
function LeakyRNN:backward(...)
  local gx, gh0 = nn.GRU.backward(self, ...)
  gx:select(1, 1):zero_()
  return gx, gh0
end

describe("gradcheck", function()
  it("passes a correct module and reports every parameter and the input", function()
    recur.manual_seed(1)
    local r = recur.gradcheck(nn.Linear(3, 2), recur.randn(4, 3))
    assert(r.max_error < 1e-8, tostring(r))
    assert.are.same({"weight", "bias"}, r.names)
    assert.is_not_nil(r.inputs[1])
    assert.are.equal(1 + 2 * (6 + 2 + 12), r.evaluations)
    assert.matches("weight", tostring(r))
    assert.matches("input #1", tostring(r))
  end)

  it("catches a wrong parameter gradient and names it", function()
    recur.manual_seed(2)
    local r = recur.gradcheck(bad_linear(3, 2), recur.randn(4, 3))
    assert(r.params.weight > 1e-3, tostring(r))
    assert(r.params.bias < 1e-8, tostring(r))
    assert(r.inputs[1] < 1e-8, tostring(r))
    assert(r.max_error > 1e-3)
  end)

  it("catches a wrong input gradient of a recurrent module", function()
    recur.manual_seed(3)
    local m = setmetatable(nn.GRU(2, 3), LeakyRNN)
    local r = recur.gradcheck(m, {recur.randn(4, 2, 2), recur.randn(1, 2, 3)})
    assert(r.inputs[1] > 0.1, tostring(r))
    assert(r.inputs[2] < 1e-6, tostring(r))
    assert(r.params.weight_hh_l0 < 1e-6, tostring(r))
  end)

  it("converts the module to float64 and leaves the caller's inputs alone", function()
    recur.manual_seed(4)
    local m = nn.LSTM(2, 3)
    local x = recur.randn(3, 1, 2)
    local before = x:clone()
    recur.gradcheck(m, x)
    assert.are.equal("float64", m.weight_ih_l0:dtype())
    assert.are.equal("float32", x:dtype())
    assert.are.equal(0, (x - before):abs():max())
  end)

  it("takes argument lists with holes and skips int64 arguments", function()
    recur.manual_seed(5)
    local m = nn.GRU(2, 3, {bidirectional = true})
    local r = recur.gradcheck(m, {recur.randn(4, 2, 2), nil, nil, recur.tensor({4, 2}, "int64")})
    assert(r.max_error < 1e-6, tostring(r))
    assert.is_not_nil(r.inputs[1])
    assert.is_nil(r.inputs[4])
  end)

  it("max_elems samples elements and saves evaluations", function()
    recur.manual_seed(6)
    local m = nn.Linear(20, 10)
    local r = recur.gradcheck(m, recur.randn(2, 20), {max_elems = 5, params = true})
    -- weight 200 -> 5, bias 10 -> 5, input 40 -> 5: 1 + 2 * 15 evaluations
    assert.are.equal(31, r.evaluations)
    assert(r.max_error < 1e-8)
  end)

  it("checks losses through their input gradient", function()
    recur.manual_seed(7)
    local r = recur.gradcheck(nn.MSE(), {recur.randn(3, 2), recur.randn(3, 2)})
    assert(r.max_error < 1e-8, tostring(r))
    assert.is_nil(r.inputs[2])
  end)

  it("dtype, eps (the step), floor (the denominator's bound) and params = false act", function()
    recur.manual_seed(8)
    local x = {recur.randn(4, 2, 2)}
    -- a step of 0.5 through a GRU's tanh and sigmoids is far from the derivative
    assert(recur.gradcheck(nn.GRU(2, 3), x).max_error < 1e-6)
    assert(recur.gradcheck(nn.GRU(2, 3), x, {eps = 0.5}).max_error > 1e-4)
    -- a 1% error in the weight's gradient: relative 0.005, far smaller over a floor of 1e6
    local wrong = recur.gradcheck(bad_linear(3, 2), recur.randn(4, 3))
    local floored = recur.gradcheck(bad_linear(3, 2), recur.randn(4, 3), {floor = 1e6})
    assert(wrong.max_error > 1e-3 and floored.max_error < 1e-6, tostring(floored))
    local m32 = nn.Linear(3, 2)
    assert.are.equal("float32", recur.gradcheck(m32, recur.randn(4, 3), {dtype = "float32", eps = 1e-2}).dtype)
    assert.are.equal("float32", m32.weight:dtype())
    local r = recur.gradcheck(nn.Linear(3, 2), recur.randn(4, 3), {params = false})
    assert.are.same({}, r.names)
    assert.are.equal(1 + 2 * 12, r.evaluations)
  end)

  it("checks the type and range of its options", function()
    local function err(opts)
      local ok, e = pcall(recur.gradcheck, nn.Linear(2, 2), recur.randn(1, 2), opts)
      assert.is_false(ok)
      return e
    end
    assert.matches("gradcheck: option eps must be a number >= 0", err({eps = "1e-3"}))
    assert.matches("gradcheck: eps and floor must be > 0", err({eps = 0}))
    assert.matches("gradcheck: option max_elems must be an integer >= 1", err({max_elems = 0}))
    assert.matches("gradcheck: option params must be a boolean", err({params = "no"}))
    assert.matches("gradcheck: option seed must be an integer", err({seed = 1.5}))
    assert.matches("gradcheck: unknown option 'epsilon'", err({epsilon = 1}))
  end)

  it("rejects unknown options and non-modules", function()
    assert.has_error(function() recur.gradcheck(nn.Linear(2, 2), recur.randn(1, 2), {epsilon = 1}) end)
    assert.has_error(function() recur.gradcheck(42, recur.randn(1, 2)) end)
  end)
end)
