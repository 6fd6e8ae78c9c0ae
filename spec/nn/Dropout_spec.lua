-- nn.Dropout's data-parallel masks (Dropout.streams): a rank holding some of a batch's
-- streams drops exactly the elements one process holding the whole batch drops, and
-- its generator ends where that process's does.
local recur = require "recur"
local Dropout = recur.nn.Dropout

describe("Dropout.streams", function()
  after_each(function() Dropout.streams = nil end)

  local function masks(shape_whole, dim, first, count)
    recur.manual_seed(11)
    local whole = Dropout(0.4)
    local x = recur.randn(table.unpack(shape_whole))
    local y = whole:forward(x):clone()
    local after_whole = recur.rand(1):item()

    recur.manual_seed(11)
    recur.randn(table.unpack(shape_whole))   -- the same draws as above before the mask
    local part = Dropout(0.4)
    Dropout.streams = {first = first, count = count, total = shape_whole[dim]}
    local x_part = x:narrow(dim, first, count):clone()
    local y_part = part:forward(x_part)
    local after_part = recur.rand(1):item()
    return y:narrow(dim, first, count), y_part, after_whole, after_part, part
  end

  it("drops the whole batch's elements for (T,B,H) inputs, stream on dimension 2", function()
    local want, got, g1, g2, part = masks({3, 5, 4}, 2, 2, 3)
    assert.are.same(want:totable(), got:totable())
    assert.are.equal(g1, g2)
    -- and backward uses that mask
    local gy = recur.ones(3, 3, 4)
    assert.are.same(part.mask:totable(), part:backward(nil, gy):totable())
  end)

  it("drops the whole batch's elements for (B,H) inputs, stream on dimension 1", function()
    local want, got, g1, g2 = masks({6, 3}, 1, 5, 2)
    assert.are.same(want:totable(), got:totable())
    assert.are.equal(g1, g2)
  end)

  it("is the plain mask when no streams are set", function()
    recur.manual_seed(3)
    local a = Dropout(0.5):forward(recur.ones(4, 2, 3)):totable()
    recur.manual_seed(3)
    local b = Dropout(0.5):forward(recur.ones(4, 4, 3)):narrow(2, 1, 2):totable()
    assert.are_not.same(a, b)
  end)
end)
