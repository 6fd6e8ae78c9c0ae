-- recur.data.Shard: the ranks' slices of a batch put side by side are the batch, column
-- for column, whether or not the ranks divide it; padded sequences are cut to each
-- rank's longest; the position is the global batcher's.
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

  it("deals a batch the ranks do not divide as evenly as it goes, the first ranks one more", function()
    local whole = batcher(7):next_batch()
    local widths, next_column = {}, 1
    for r = 0, 2 do
      local part = recur.data.Shard.new(batcher(7), r, 3):next_batch()
      widths[#widths + 1] = part.x:size(2)
      for b = 1, part.x:size(2) do
        for t = 1, 4 do assert.are.equal(whole.x:get(t, next_column), part.x:get(t, b)) end
        next_column = next_column + 1
      end
    end
    assert.are.same({3, 2, 2}, widths)
    assert.are.equal(8, next_column)
    assert.are.same({1, 3}, {recur.data.Shard.range(7, 0, 3)})
    assert.are.same({4, 2}, {recur.data.Shard.range(7, 1, 3)})
    assert.are.same({6, 2}, {recur.data.Shard.range(7, 2, 3)})
    assert.are.same({3, 0}, {recur.data.Shard.range(2, 2, 3)})
  end)

  it("cuts every per-sequence field of padded sequences, which keep the batch's length", function()
    local seqs = {{4, 5, 6, 7}, {4}, {5, 6}, {6, 7, 8}, {7}}
    local b = recur.data.SentenceBatcher.new(seqs, {batch_size = 5, sort = false, shuffle = false, labels = {1, 2, 1, 2, 1},
      targets = {{4}, {5, 6, 7}, {6}, {7}, {8, 9}}})
    local part = recur.data.Shard.new(b, 1, 2):next_batch()
    -- rank 1 of 2 takes sequences 4 and 5 (3 + 2)
    assert.are.same({4, 2}, part.x:size())
    assert.are.same({{6, 7}, {7, 1}, {8, 1}, {1, 1}}, part.x:totable())
    assert.are.same({3, 1}, part.lengths:totable())
    assert.are.same({2, 1}, part.labels:totable())
    assert.are.same({4, 5}, part.indices)
    assert.are.same({{1, 1}, {1, 0}, {1, 0}, {0, 0}}, part.mask:totable())
    assert.are.same({1, 2}, part.y_lengths:totable())
    assert.are.same(part.y:size(), part.y_mask:size())
    assert.are.equal(2, part.y:size(2))
  end)

  it("gives a rank no stream of a padded batch smaller than the ranks, and refuses such a stream batch", function()
    local b = recur.data.SentenceBatcher.new({{4}, {5}}, {batch_size = 2, labels = {1, 2}})
    local s = recur.data.Shard.new(b, 2, 3)
    assert.are.same({}, s:next_batch())
    assert.are.equal(0, s.streams)
    assert.are.equal(2, s.global_streams)
    -- an evaluation pass skips the empty parts
    s:reset()
    local n = 0
    for _ in s:batches() do n = n + 1 end
    assert.are.equal(0, n)
    local ok, err = pcall(function() return recur.data.Shard.new(batcher(2), 2, 3):next_batch() end)
    assert.is_false(ok)
    assert.matches("a batch of 2 streams leaves rank 2 of 3 without one", err, 1, true)
    ok, err = pcall(recur.data.Shard.new, batcher(4), 2, 2)
    assert.is_false(ok)
    assert.matches("rank must be an integer in 0..1, got 2", err, 1, true)
  end)

  it("splits a generator's z (B,Z) by rows and its targets by columns, and refuses fields it cannot place", function()
    local z = recur.tensor({{1, 2}, {3, 4}, {5, 6}})
    local y = recur.tensor({{1, 2, 3}, {4, 5, 6}}, "int64")
    local drawn = {next_batch = function() return {z = z, y = y} end}
    local part = recur.data.Shard.new(drawn, 1, 2):next_batch()
    assert.are.same({{5, 6}}, part.z:totable())
    assert.are.same({{3}, {6}}, part.y:totable())
    local odd = {next_batch = function() return {x = recur.zeros(2, 4), memory = recur.zeros(3, 4, 2)} end}
    local ok, err = pcall(function() return recur.data.Shard.new(odd, 0, 2):next_batch() end)
    assert.is_false(ok)
    assert.matches("the batch's field 'memory' is (3x4x2)", err, 1, true)
  end)
end)
