-- recur.data.Drawn: batches drawn by a function, per_epoch of them, and a position that
-- resumes with recur's generator.
local recur = require "recur"
local Drawn = recur.data.Drawn

describe("Drawn", function()
  it("serves per_epoch draws an epoch, then nil until reset", function()
    local n = 0
    local b = Drawn.new(function() n = n + 1; return {k = n} end, {per_epoch = 3})
    assert.are.equal(3, b:num_batches())
    local got = {}
    for batch in b:batches() do got[#got + 1] = batch.k end
    assert.are.same({1, 2, 3}, got)
    assert.is_nil(b:next_batch())
    assert.are.equal(3, n)                       -- no draw past the epoch's end
    b:reset()
    assert.are.equal(4, b:next_batch().k)
  end)

  it("resumes at the saved position and draws what an uninterrupted run draws", function()
    local function draw() return {v = recur.random_integer(1, 1000000)} end
    recur.manual_seed(5)
    local whole = Drawn.new(draw, {per_epoch = 4})
    local want = {}
    for batch in whole:batches() do want[#want + 1] = batch.v end
    recur.manual_seed(5)
    local first = Drawn.new(draw, {per_epoch = 4})
    first:next_batch(); first:next_batch()
    local saved, rng = first:state(), recur.get_rng_state()
    local second = Drawn.new(draw, {per_epoch = 4})
    second:set_state(saved)
    recur.set_rng_state(rng)
    assert.are.same({want[3], want[4]}, {second:next_batch().v, second:next_batch().v})
    assert.is_nil(second:next_batch())
  end)

  it("refuses bad arguments and states", function()
    assert.has_error(function() Drawn.new(3, {per_epoch = 1}) end, "Drawn.new: draw must be a function returning a batch table")
    assert.has_error(function() Drawn.new(function() end, {}) end, "Drawn.new: per_epoch is required")
    local b = Drawn.new(function() return 7 end, {per_epoch = 2})
    assert.has_error(function() b:next_batch() end, "Drawn:next_batch: draw returned number, not a batch table")
    assert.has_error(function() b:set_state({next_batch = 4, per_epoch = 2}) end, "Drawn:set_state: next_batch = 4 is outside 1..3")
    assert.has_error(function() b:set_state({next_batch = 1, per_epoch = 3}) end,
      "Drawn:set_state: the state is not of a batcher of 2 batches per epoch")
  end)
end)
