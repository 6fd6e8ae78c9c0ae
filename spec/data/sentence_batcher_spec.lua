-- recur.data.SentenceBatcher (padding, lengths, masks, bucketing, shuffling, resume)
-- and the splitmix64 generator behind its shuffles.
local recur = require("recur")
local data = require("recur.data")
local SentenceBatcher, Rng = data.SentenceBatcher, data.Rng

local function err_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok)
  return tostring(err)
end

local seqs = { { 5, 6, 7 }, { 8 }, { 9, 10 }, { 11, 12, 13, 14 }, { 15, 16 } }

-- n sequences of pseudo-random lengths 1..9 whose ids encode their index (i*10 + t).
local function many(n)
  local out = {}
  for i = 1, n do
    local s = {}
    for t = 1, (i * 7) % 9 + 1 do s[t] = i * 10 + t end
    out[i] = s
  end
  return out
end

describe("Rng (splitmix64)", function()
  it("runs on Lua 5.4", function()
    assert.are.equal("Lua 5.4", _VERSION)
  end)

  it("matches the reference output for seed 0", function()
    -- First output of splitmix64 seeded with 0 (reference C implementation).
    assert.are.equal(0xE220A8397B1DCDAF, Rng.new(0):next_u64())
  end)

  it("draws permutations deterministically from the seed", function()
    local p = Rng.new(42):permutation(50)
    assert.are.same(p, Rng.new(42):permutation(50))
    assert.are_not.same(p, Rng.new(43):permutation(50))
    local seen = {}
    for _, v in ipairs(p) do seen[v] = true end
    for i = 1, 50 do assert.is_true(seen[i]) end
  end)
end)

describe("SentenceBatcher", function()
  it("buckets by length and pads with pad_id (hand-computed, no shuffle)", function()
    -- lengths 3 1 2 4 2 -> stable order by length: 2, 3, 5, 1, 4
    local b = SentenceBatcher.new(seqs, { batch_size = 2, shuffle = false })
    assert.are.equal(3, b:num_batches())
    local b1 = b:next_batch()
    assert.are.same({ 2, 3 }, b1.indices)
    assert.are.same({ { 8, 9 }, { 1, 10 } }, b1.x:totable())
    assert.are.same({ 1, 2 }, b1.lengths:totable())
    assert.are.same({ { 1, 1 }, { 0, 1 } }, b1.mask:totable())
    assert.are.equal("int64", b1.x:dtype())
    assert.are.equal("int64", b1.lengths:dtype())
    assert.are.equal("float32", b1.mask:dtype())
    local b2 = b:next_batch()
    assert.are.same({ 5, 1 }, b2.indices)
    assert.are.same({ { 15, 5 }, { 16, 6 }, { 1, 7 } }, b2.x:totable())
    assert.are.same({ 2, 3 }, b2.lengths:totable())
    assert.are.same({ { 1, 1 }, { 1, 1 }, { 0, 1 } }, b2.mask:totable())
    local b3 = b:next_batch()
    assert.are.same({ 4 }, b3.indices)
    assert.are.same({ 4, 1 }, b3.x:size())
    assert.are.same({ { 11 }, { 12 }, { 13 }, { 14 } }, b3.x:totable())
    assert.is_nil(b:next_batch())
  end)

  it("keeps input order without sort, pads with a chosen id, drops the last batch on request", function()
    local b = SentenceBatcher.new(seqs, { batch_size = 2, shuffle = false, sort = false, pad_id = 99 })
    local b1 = b:get_batch(1)
    assert.are.same({ { 5, 8 }, { 6, 99 }, { 7, 99 } }, b1.x:totable())
    assert.are.same({ 3, 1 }, b1.lengths:totable())
    assert.are.same({ { 1, 1 }, { 1, 0 }, { 1, 0 } }, b1.mask:totable())
    assert.are.same({ 5 }, b:get_batch(3).indices)
    b = SentenceBatcher.new(seqs, { batch_size = 2, shuffle = false, sort = false, drop_last = true })
    assert.are.equal(2, b:num_batches())
  end)

  it("carries labels and padded target sequences", function()
    local targets = { { 1, 2 }, { 3 }, { 4, 5, 6 }, { 7 }, { 8 } }
    local b = SentenceBatcher.new(seqs, { batch_size = 2, shuffle = false, labels = { 1, 2, 3, 1, 2 },
      targets = targets, target_pad_id = 4 })
    local b1 = b:get_batch(1) -- sequences 2, 3
    assert.are.same({ 2, 3 }, b1.labels:totable())
    assert.are.equal("int64", b1.labels:dtype())
    assert.are.same({ { 3, 4 }, { 4, 5 }, { 4, 6 } }, b1.y:totable())
    assert.are.same({ 1, 3 }, b1.y_lengths:totable())
    assert.are.same({ { 1, 1 }, { 0, 1 }, { 0, 1 } }, b1.y_mask:totable())
  end)

  it("shuffles each epoch into batches of near-equal length covering every sequence once", function()
    local s = many(103)
    local b = SentenceBatcher.new(s, { batch_size = 8, seed = 1234 })
    assert.are.equal(13, b:num_batches())
    local orders = {}
    for epoch = 1, 2 do
      local seen, order, batch_lengths = {}, {}, {}
      for batch in b:batches() do
        local bt = batch.x:totable()
        local lt = batch.lengths:totable()
        for j, i in ipairs(batch.indices) do
          assert.is_nil(seen[i])
          seen[i] = true
          order[#order + 1] = i
          assert.are.equal(#s[i], lt[j])
          for t = 1, #bt do
            assert.are.equal(s[i][t] or 1, bt[t][j])
          end
        end
        local ls = {}
        for _, l in ipairs(lt) do ls[#ls + 1] = l end
        table.sort(ls)
        batch_lengths[#batch_lengths + 1] = ls
      end
      for i = 1, 103 do assert.is_true(seen[i]) end
      -- Bucketing: batches are consecutive slices of the lengths in sorted order.
      table.sort(batch_lengths, function(x, y) return x[1] < y[1] or (x[1] == y[1] and x[#x] < y[#y]) end)
      local flat, all = {}, {}
      for _, ls in ipairs(batch_lengths) do for _, l in ipairs(ls) do flat[#flat + 1] = l end end
      for i = 1, 103 do all[i] = #s[i] end
      table.sort(all)
      assert.are.same(all, flat)
      orders[epoch] = order
      b:reset()
    end
    assert.are_not.same(orders[1], orders[2])
    assert.are.equal(3, b.epoch)
  end)

  it("is deterministic given a seed or recur.manual_seed", function()
    local s = many(40)
    local function first_indices(b) return b:get_batch(1).indices end
    assert.are.same(first_indices(SentenceBatcher.new(s, { batch_size = 4, seed = 9 })),
      first_indices(SentenceBatcher.new(s, { batch_size = 4, seed = 9 })))
    -- and the seed decides the order: another seed, another first batch
    assert.are_not.same(first_indices(SentenceBatcher.new(s, { batch_size = 4, seed = 9 })),
      first_indices(SentenceBatcher.new(s, { batch_size = 4, seed = 10 })))
    recur.manual_seed(5)
    local a = SentenceBatcher.new(s, { batch_size = 4 })
    recur.manual_seed(5)
    local c = SentenceBatcher.new(s, { batch_size = 4 })
    assert.are.equal(a.seed, c.seed)
    assert.are.same(first_indices(a), first_indices(c))
  end)

  it("resumes exactly from state()", function()
    local s = many(50)
    local a = SentenceBatcher.new(s, { batch_size = 4, seed = 77 })
    for _ = 1, 13 do a:next_batch() end
    a:reset()
    for _ = 1, 5 do a:next_batch() end
    local saved = a:state()
    assert.are.equal(2, saved.epoch)
    assert.are.equal(6, saved.next_batch)
    local b = SentenceBatcher.new(s, { batch_size = 4, seed = 1 })
    b:set_state(saved)
    for _ = 6, 13 do
      local x, y = a:next_batch(), b:next_batch()
      assert.are.same(x.indices, y.indices)
      assert.are.same(x.x:totable(), y.x:totable())
    end
    a:reset(); b:reset()
    assert.are.same(a:get_batch(1).indices, b:get_batch(1).indices)
    local c = SentenceBatcher.new(s, { batch_size = 5, seed = 1 })
    local e = err_of(c.set_state, c, saved)
    assert.truthy(e:find("SentenceBatcher:set_state: the state has batch_size = 4, this batcher has 5", 1, true), e)
  end)

  it("raises on bad input", function()
    local e = err_of(SentenceBatcher.new, { { 1 }, {} }, { batch_size = 2 })
    assert.truthy(e:find("SentenceBatcher.new: seqs sequence 2 is empty", 1, true), e)
    e = err_of(SentenceBatcher.new, { { 1, 0 } }, { batch_size = 2 })
    assert.truthy(e:find("id #2 is 0, ids start at 1", 1, true), e)
    e = err_of(SentenceBatcher.new, seqs, {})
    assert.truthy(e:find("batch_size is required", 1, true), e)
    e = err_of(SentenceBatcher.new, seqs, { batch_size = 2, labels = { 1, 2 } })
    assert.truthy(e:find("labels must be an array of 5 class ids", 1, true), e)
    e = err_of(SentenceBatcher.new, seqs, { batch_size = 6, drop_last = true })
    assert.truthy(e:find("5 sequences hold no full batch of 6", 1, true), e)
    e = err_of(SentenceBatcher.new, seqs, { batch_size = 2, bucket = true })
    assert.truthy(e:find("unknown option 'bucket'", 1, true), e)
    e = err_of(SentenceBatcher.new, seqs, { batch_size = 2, seqs = 1, vocab_size = 10 })
    assert.truthy(e:find("unknown option 'seqs'", 1, true), e)
    e = err_of(SentenceBatcher.new, seqs, { batch_size = 2, vocab_size = 10 })
    assert.truthy(e:find("id #1 is 11, outside 1..10", 1, true), e)
  end)
end)
