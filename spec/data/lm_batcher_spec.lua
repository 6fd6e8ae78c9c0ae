-- recur.data.LMBatcher: exact chunks on a hand-made stream, state/resume, errors.
local recur = require("recur")
local data = require("recur.data")
local LMBatcher = data.LMBatcher

-- A batch table as the pair x, y (nil at the end of an epoch).
local function xy(batch)
  if batch then return batch.x, batch.y end
end

local function err_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok)
  return tostring(err)
end

-- ids 1..26 (the stream 0..25 shifted to 1-based ids)
local function stream(n)

  local a = {}
  for i = 1, n do a[i] = i end
  return a
end

local function check_tensor(expected, t)
  assert.are.equal("int64", t:dtype())
  assert.are.same({ #expected, #expected[1] }, t:size())
  assert.are.same(expected, t:totable())
end

describe("LMBatcher", function()
  it("runs on Lua 5.4", function()
    assert.are.equal("Lua 5.4", _VERSION)
  end)

  it("serves the hand-computed chunks of 1..26 with B = 2, T = 3", function()
    -- N = 26, L = floor(25/2) = 12: column 1 reads 1..12 (targets 2..13), column 2 reads
    -- 13..24 (targets 14..25); 26 is unused. K = 12/3 = 4 chunks.
    local b = LMBatcher.new(stream(26), { batch_size = 2, seq_length = 3 })
    assert.are.equal(4, b:num_batches())
    local first = b:get_batch(1)
    local keys = {}
    for k in pairs(first) do keys[#keys + 1] = k end
    table.sort(keys)
    assert.are.same({ "x", "y" }, keys)   -- a batch is one table: the protocol of recur.models
    local expected = {
      { x = { { 1, 13 }, { 2, 14 }, { 3, 15 } },    y = { { 2, 14 }, { 3, 15 }, { 4, 16 } } },
      { x = { { 4, 16 }, { 5, 17 }, { 6, 18 } },    y = { { 5, 17 }, { 6, 18 }, { 7, 19 } } },
      { x = { { 7, 19 }, { 8, 20 }, { 9, 21 } },    y = { { 8, 20 }, { 9, 21 }, { 10, 22 } } },
      { x = { { 10, 22 }, { 11, 23 }, { 12, 24 } }, y = { { 11, 23 }, { 12, 24 }, { 13, 25 } } },
    }
    for k = 1, 4 do
      local x, y = xy(b:next_batch())
      check_tensor(expected[k].x, x)
      check_tensor(expected[k].y, y)
    end
    assert.is_nil(b:next_batch())
    b:reset()
    local x = xy(b:next_batch())
    check_tensor(expected[1].x, x)
  end)

  it("keeps a shorter last chunk, or drops it with drop_last", function()
    -- T = 5 over L = 12: chunks of 5, 5, 2.
    local b = LMBatcher.new(stream(26), { batch_size = 2, seq_length = 5 })
    assert.are.equal(3, b:num_batches())
    local x, y = xy(b:get_batch(3))
    check_tensor({ { 11, 23 }, { 12, 24 } }, x)
    check_tensor({ { 12, 24 }, { 13, 25 } }, y)
    x, y = xy(b:get_batch(2))
    check_tensor({ { 6, 18 }, { 7, 19 }, { 8, 20 }, { 9, 21 }, { 10, 22 } }, x)
    check_tensor({ { 7, 19 }, { 8, 20 }, { 9, 21 }, { 10, 22 }, { 11, 23 } }, y)
    b = LMBatcher.new(stream(26), { batch_size = 2, seq_length = 5, drop_last = true })
    assert.are.equal(2, b:num_batches())
  end)

  it("uses B*L + 1 ids: the target of a stream's end is the next stream's start", function()
    -- N = 26, B = 3: L = floor(25/3) = 8, streams 1..8, 9..16, 17..24, last target 25.
    local b = LMBatcher.new(stream(26), { batch_size = 3, seq_length = 8 })
    assert.are.equal(1, b:num_batches())
    local x, y = b:get_batch_tables(1)
    assert.are.same({ 1, 9, 17 }, x[1])
    assert.are.same({ 8, 16, 24 }, x[8])
    assert.are.same({ 9, 17, 25 }, y[8])
  end)

  it("covers every target once, in order, per column (B = 4, T = 7, N = 1000)", function()
    local N, B, T = 1000, 4, 7
    local b = LMBatcher.new(stream(N), { batch_size = B, seq_length = T })
    local L = (N - 1) // B
    local cols = {}
    for c = 1, B do cols[c] = {} end
    for batch in b:batches() do
      local x, y = batch.x, batch.y
      local xt, yt = x:totable(), y:totable()
      for t = 1, #xt do
        for c = 1, B do
          assert.are.equal(xt[t][c] + 1, yt[t][c])
          table.insert(cols[c], xt[t][c])
        end
      end
    end
    for k = 1, b:num_batches() do
      local x, y = xy(b:get_batch(k))
      local xt, yt = b:get_batch_tables(k)
      assert.are.same(xt, x:totable())
      assert.are.same(yt, y:totable())
    end
    for c = 1, B do
      assert.are.equal(L, #cols[c])
      for t = 1, L do assert.are.equal((c - 1) * L + t, cols[c][t]) end
    end
  end)

  it("accepts a 1-D int64 tensor of ids", function()
    local b = LMBatcher.new(recur.arange(1, 27, 1, "int64"), { batch_size = 2, seq_length = 3 })
    local x = xy(b:get_batch(4))
    check_tensor({ { 10, 22 }, { 11, 23 }, { 12, 24 } }, x)
  end)

  it("checks a tensor's ids and copies them: the caller's tensor or array stays its own", function()
    local e = err_of(LMBatcher.new, recur.tensor({ 1, 2, 3, 0, 5 }, "int64"), { batch_size = 2, seq_length = 2 })
    assert.truthy(e:find("LMBatcher.new: id #4 is 0, ids start at 1", 1, true), e)
    e = err_of(LMBatcher.new, recur.tensor({ 1, 7, 3, 4, 5 }, "int64"), { batch_size = 2, seq_length = 2, vocab_size = 6 })
    assert.truthy(e:find("LMBatcher.new: id #2 is 7, outside 1..6", 1, true), e)
    local t = recur.arange(1, 27, 1, "int64")
    local b = LMBatcher.new(t, { batch_size = 2, seq_length = 3 })
    t:fill_(1)
    check_tensor({ { 10, 22 }, { 11, 23 }, { 12, 24 } }, (xy(b:get_batch(4))))
    local a = stream(26)
    a[1] = 1.0
    b = LMBatcher.new(a, { batch_size = 2, seq_length = 3 })
    assert.are.equal("float", math.type(a[1]))
    a[2] = 99
    check_tensor({ { 1, 13 }, { 2, 14 }, { 3, 15 } }, (xy(b:get_batch(1))))
    assert.are.same({ { 1, 13 }, { 2, 14 }, { 3, 15 } }, (b:get_batch_tables(1)))
    assert.are.same({ { 11, 23 }, { 12, 24 }, { 13, 25 } }, select(2, b:get_batch_tables(4)))
  end)

  it("keeps its ids out of the Lua heap (8 bytes an id in a tensor, not 16 in an array)", function()
    local n = 200000
    local a = {}
    for i = 1, n do a[i] = i % 50 + 1 end
    collectgarbage(); collectgarbage()
    local before = collectgarbage("count")
    local b = LMBatcher.new(a, { batch_size = 20, seq_length = 35 })
    a = nil
    collectgarbage(); collectgarbage()
    -- the array alone was n * 16 bytes, 3125 KB
    assert.is_true(collectgarbage("count") - before < -2500, "Lua heap grew by " .. (collectgarbage("count") - before) .. " KB")
    -- L = floor((n - 1) / 20) = 9999: stream 2 starts at a[10000]
    assert.are.same({ 1 % 50 + 1, 10000 % 50 + 1 }, { table.unpack(b:get_batch(1).x:totable()[1], 1, 2) })
  end)

  it("returns fresh tensors that the caller may modify", function()
    local b = LMBatcher.new(stream(26), { batch_size = 2, seq_length = 3 })
    local x, y = xy(b:get_batch(1))
    x:fill_(0); y:fill_(0)
    local x2, y2 = xy(b:get_batch(1))
    check_tensor({ { 1, 13 }, { 2, 14 }, { 3, 15 } }, x2)
    check_tensor({ { 2, 14 }, { 3, 15 }, { 4, 16 } }, y2)
    check_tensor({ { 4, 16 }, { 5, 17 }, { 6, 18 } }, (xy(b:get_batch(2))))
  end)

  it("resumes exactly from state()", function()
    local opts = { batch_size = 2, seq_length = 3 }
    local a = LMBatcher.new(stream(26), opts)
    a:next_batch(); a:next_batch()
    local saved = a:state()
    assert.are.same({ next_batch = 3, num_ids = 26, batch_size = 2, seq_length = 3, drop_last = false }, saved)
    local xa, ya = xy(a:next_batch())
    local b = LMBatcher.new(stream(26), opts)
    b:set_state(saved)
    local xb, yb = xy(b:next_batch())
    assert.are.same(xa:totable(), xb:totable())
    assert.are.same(ya:totable(), yb:totable())
    -- at the end of an epoch, state says so
    b:next_batch()
    assert.are.equal(5, b:state().next_batch)
    assert.is_nil(b:next_batch())
  end)

  it("refuses a state from a different batcher or a bad position", function()
    local a = LMBatcher.new(stream(26), { batch_size = 2, seq_length = 3 })
    local b = LMBatcher.new(stream(26), { batch_size = 4, seq_length = 3 })
    local e = err_of(b.set_state, b, a:state())
    assert.truthy(e:find("LMBatcher:set_state: the state has batch_size = 2, this batcher has 4", 1, true), e)
    local s = a:state(); s.next_batch = 6
    e = err_of(a.set_state, a, s)
    assert.truthy(e:find("next_batch = 6 is outside 1..5", 1, true), e)
  end)

  it("raises on bad input", function()
    local e = err_of(LMBatcher.new, stream(4), { batch_size = 4, seq_length = 2 })
    assert.truthy(e:find("LMBatcher.new: 4 ids are too few for batch_size 4 (need at least 5)", 1, true), e)
    e = err_of(LMBatcher.new, stream(26), { batch_size = 2 })
    assert.truthy(e:find("batch_size and seq_length are required", 1, true), e)
    e = err_of(LMBatcher.new, stream(26), { batch_size = 2, seq_length = 13, drop_last = true })
    assert.truthy(e:find("streams of 12 positions hold no full chunk of seq_length 13", 1, true), e)
    e = err_of(LMBatcher.new, { 1, 2, 0, 4, 5 }, { batch_size = 2, seq_length = 2 })
    assert.truthy(e:find("LMBatcher.new: id #3 is 0, ids start at 1", 1, true), e)
    e = err_of(LMBatcher.new, { 1, 2, 3, 9, 5 }, { batch_size = 2, seq_length = 2, vocab_size = 5 })
    assert.truthy(e:find("id #4 is 9, outside 1..5", 1, true), e)
    e = err_of(LMBatcher.new, { 1, 2.5, 3 }, { batch_size = 1, seq_length = 2 })
    assert.truthy(e:find("id #2 is 2.5, not an integer", 1, true), e)
    e = err_of(LMBatcher.new, recur.zeros({ 2, 3 }, "int64"), { batch_size = 1, seq_length = 2 })
    assert.truthy(e:find("expected a 1-D tensor of ids, got 2 dimensions", 1, true), e)
    local b = LMBatcher.new(stream(26), { batch_size = 2, seq_length = 3 })
    e = err_of(b.get_batch, b, 5)
    assert.truthy(e:find("LMBatcher:get_batch: batch 5 is outside 1..4", 1, true), e)
    e = err_of(b.get_batch_tables, b, 0)
    assert.truthy(e:find("LMBatcher:get_batch_tables: batch 0 is outside 1..4", 1, true), e)
    e = err_of(LMBatcher.new, stream(26), { batch_size = 2, seq_length = 3, bptt = 3 })
    assert.truthy(e:find("unknown option 'bptt'", 1, true), e)
  end)
end)
