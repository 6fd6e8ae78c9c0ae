-- recur.nn.Linear's options: bias acts (no bias parameter, y = x W^T exactly) and
-- values of the wrong type are refused.
local recur = require "recur"
local helpers = require "spec.support.helpers"
local nn = recur.nn

describe("Linear options", function()
  it("bias = false leaves the bias out", function()
    local m = nn.Linear(2, 3, {bias = false})
    assert.is_nil(m.bias)
    local x = recur.randn(4, 2)
    assert.are.equal(0, helpers.max_abs_diff(m:forward(x), recur.matmul(x, m.weight, false, true)))
  end)

  it("refuses values of the wrong type", function()
    assert.matches("Linear: option bias must be a boolean", helpers.err_of(nn.Linear, 2, 3, {bias = "no"}))
  end)
end)
