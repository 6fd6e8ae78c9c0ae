-- recur.data.Shard: the ranks' slices of a stream batch put side by side are the batch,
-- column for column; the position is the global batcher's; a batch size the ranks do
-- not divide and batches with masks are refused.
local recur = require "recur"

local function batcher(B)
  local ids = {}
  for i = 1, 61 do ids[i] = i end
  return recur.data.LMBatcher.new(ids, {batch_size = B, seq_length = 4})
end

describe("Shard", function()
  it("gives rank r streams r*B/N + 1 .. (r+1)*B/N of each batch", function()
    local whole = batcher(6):next_batch()
    for r = 0, 2 do
      local part = recur.data.Shard.new(batcher(6), r, 3):next_batch()
      assert.are.same({4, 2}, part.x:size())
      for t = 1, 4 do
        for b = 1, 2 do
          assert.are.equal(whole.x:get(t, 2 * r + b), part.x:get(t, b))
          assert.are.equal(whole.y:get(t, 2 * r + b), part.y:get(t, b))
        end
      end
    end
  end)

  it("keeps the global batcher's position", function()
    local s = recur.data.Shard.new(batcher(4), 1, 2)
    assert.are.equal(batcher(4):num_batches(), s:num_batches())
    s:next_batch()
    local state = s:state()
    assert.are.equal(2, state.next_batch)
    s:reset()
    assert.are.equal(1, s:state().next_batch)
    s:set_state(state)
    assert.are.equal(2, s:state().next_batch)
  end)

  it("refuses a batch size the ranks do not divide, and batches with more than x and y", function()
    local ok, err = pcall(function() return recur.data.Shard.new(batcher(6), 0, 4):next_batch() end)
    assert.is_false(ok)
    assert.matches("batch size 6 is not divisible by 4 ranks", err, 1, true)
    local masked = {next_batch = function() return {x = recur.zeros(2, 2), y = recur.zeros(2, 2), mask = recur.zeros(2, 2)} end}
    ok, err = pcall(function() return recur.data.Shard.new(masked, 0, 2):next_batch() end)
    assert.is_false(ok)
    assert.matches("this batch also has 'mask'", err, 1, true)
    ok, err = pcall(recur.data.Shard.new, batcher(4), 2, 2)
    assert.is_false(ok)
    assert.matches("rank must be an integer in 0..1, got 2", err, 1, true)
  end)
end)
