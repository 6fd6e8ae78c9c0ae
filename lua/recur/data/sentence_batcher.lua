-- SentenceBatcher: variable-length sequences in padded, length-bucketed batches, for
-- many-to-one classification and seq2seq.
--
-- Each batch is a table:
--   x        (T,B) int64    ids, column b = sequence b, rows past its end = pad_id
--   lengths  (B)   int64    true lengths (T = the longest in the batch)
--   mask     (T,B) float32  1 where t <= lengths[b], else 0
--   indices  Lua array of B positions of the sequences in the input array
--   labels   (B)   int64    when opts.labels was given (class ids 1..C)
--   y, y_lengths, y_mask    the same for opts.targets (target sequences of seq2seq),
--                           padded with target_pad_id
-- B is batch_size except in the last batch of an epoch (unless drop_last).
--
-- Epoch order: a permutation of the sequences (when shuffle), then, when sort, a stable
-- sort by length (so batches hold sequences of equal or near-equal length, the
-- bucketing that keeps padding small; ties stay in shuffled order), cut into batches
-- of B, and the batch order shuffled again. The shuffles come from a private splitmix64
-- generator seeded with (seed, epoch): opts.seed, or else one number drawn from recur's
-- generator at construction (so recur.manual_seed makes it deterministic too).
--
-- SentenceBatcher.new(seqs, {batch_size=B, pad_id=1, sort=true, shuffle=true, seed=nil,
--   drop_last=false, labels=nil, targets=nil, target_pad_id=pad_id, vocab_size=nil})
-- b:num_batches(), b:next_batch() -> batch (nil at the end of the epoch),
-- b:batches() (iterator), b:reset() (start the next epoch: new order, batch 1),
-- b:get_batch(k), b:get_batch_tables(k) (the same with Lua arrays), b.epoch,
-- b:state() / b:set_state(s) (resume at the same epoch order and batch).
local ids = require("recur.data.ids")
local util = require("recur.util")
local Rng = require("recur.data.shuffle")

local SentenceBatcher = {}
SentenceBatcher.__index = SentenceBatcher

local known = { batch_size = true, pad_id = true, sort = true, shuffle = true, seed = true,
  drop_last = true, labels = true, targets = true, target_pad_id = true, vocab_size = true }

local function copy_seqs(seqs, n, V, who, what)
  local out, len = {}, {}
  for i = 1, n do
    local s = seqs[i]
    if s == nil then error(string.format("%s: %s has no sequence %d", who, what, i), 3) end
    local c = ids.copy(s, V, who)
    if #c == 0 then error(string.format("%s: %s sequence %d is empty", who, what, i), 3) end
    out[i], len[i] = c, #c
  end
  return out, len
end

function SentenceBatcher.new(seqs, opts)
  local who = "SentenceBatcher.new"
  opts = util.check_opts(who, opts, known)
  if type(seqs) ~= "table" then error(who .. ": expected an array of id sequences, got " .. type(seqs), 2) end
  if opts.batch_size == nil then error(who .. ": batch_size is required", 2) end
  local self = setmetatable({}, SentenceBatcher)
  self.B = util.opt_int(who, opts, "batch_size", nil)
  self.pad_id = util.opt_int(who, opts, "pad_id", 1)
  self.target_pad_id = util.opt_int(who, opts, "target_pad_id", self.pad_id)
  local V = util.opt_int(who, opts, "vocab_size", nil)
  self.sort = util.opt_bool(who, opts, "sort", true)
  self.shuffle = util.opt_bool(who, opts, "shuffle", true)
  self.drop_last = util.opt_bool(who, opts, "drop_last", false)
  local n = #seqs
  if n == 0 then error(who .. ": no sequences", 2) end
  self.n = n
  self.seqs, self.lengths = copy_seqs(seqs, n, V, who, "seqs")
  if opts.labels ~= nil then
    if type(opts.labels) ~= "table" or #opts.labels ~= n then
      error(string.format("%s: labels must be an array of %d class ids", who, n), 2)
    end
    self.labels = ids.copy(opts.labels, nil, who)
  end
  if opts.targets ~= nil then
    if type(opts.targets) ~= "table" or #opts.targets ~= n then
      error(string.format("%s: targets must be an array of %d id sequences", who, n), 2)
    end
    self.targets, self.target_lengths = copy_seqs(opts.targets, n, V, who, "targets")
  end
  self.K = self.drop_last and n // self.B or (n + self.B - 1) // self.B
  if self.K < 1 then
    error(string.format("%s: %d sequences hold no full batch of %d (drop_last)", who, n, self.B), 2)
  end
  if opts.seed ~= nil then
    self.seed = math.tointeger(opts.seed)
    if self.seed == nil then error(who .. ": seed must be an integer, got " .. tostring(opts.seed), 2) end
  elseif self.shuffle then
    local recur = require("recur")
    -- 31 bits: the seed stays exact through JSON encoders that print 14 digits (cjson).
    self.seed = math.floor(recur.rand({ 1 }, "float64"):item() * 2 ^ 31)
  else
    self.seed = 0
  end
  self:_start_epoch(1, 1)
  return self
end

-- The batches (arrays of sequence indices) of epoch e.
function SentenceBatcher:_start_epoch(e, pos)
  local n, B = self.n, self.B
  local rng = self.shuffle and Rng.new(Rng.derive(self.seed, e)) or nil
  local order
  if rng then
    order = rng:permutation(n)
  else
    order = {}
    for i = 1, n do order[i] = i end
  end
  if self.sort then
    local rank, len = {}, self.lengths
    for i, s in ipairs(order) do rank[s] = i end
    table.sort(order, function(a, b)
      if len[a] ~= len[b] then return len[a] < len[b] end
      return rank[a] < rank[b]
    end)
  end
  local batches = {}
  for start = 1, n, B do
    local stop = math.min(start + B - 1, n)
    if not self.drop_last or stop - start + 1 == B then
      batches[#batches + 1] = table.move(order, start, stop, 1, {})
    end
  end
  -- Without sort the permutation already mixed the batches; with it, the batches run
  -- shortest to longest until shuffled.
  if rng and self.sort then rng:shuffle(batches) end
  self.batch_list, self.epoch, self.pos = batches, e, pos
end

function SentenceBatcher:num_batches() return self.K end

-- Pads the sequences seqs[idx[b]] into rows x[t][b]; returns x, lengths, mask.
local function pad(seqs, idx, pad_id)
  local Bk, T = #idx, 0
  local lengths = {}
  for b = 1, Bk do
    lengths[b] = #seqs[idx[b]]
    if lengths[b] > T then T = lengths[b] end
  end
  local x, mask = {}, {}
  for t = 1, T do
    local xr, mr = {}, {}
    for b = 1, Bk do
      local v = seqs[idx[b]][t]
      xr[b] = v or pad_id
      mr[b] = v and 1 or 0
    end
    x[t], mask[t] = xr, mr
  end
  return x, lengths, mask
end

-- Batch k's index, checked; errors name `op` and are raised at its caller.
local function batch_index(self, op, k)
  local kk = math.tointeger(k)
  if kk == nil or kk < 1 or kk > self.K then
    error(string.format("SentenceBatcher:%s: batch %s is outside 1..%d", op, tostring(k), self.K), 3)
  end
  return kk
end

function SentenceBatcher:get_batch_tables(k)
  local kk = batch_index(self, "get_batch_tables", k)
  local idx = self.batch_list[kk]
  local batch = { indices = table.move(idx, 1, #idx, 1, {}) }
  batch.x, batch.lengths, batch.mask = pad(self.seqs, idx, self.pad_id)
  if self.labels then
    batch.labels = {}
    for b = 1, #idx do batch.labels[b] = self.labels[idx[b]] end
  end
  if self.targets then
    batch.y, batch.y_lengths, batch.y_mask = pad(self.targets, idx, self.target_pad_id)
  end
  return batch
end

function SentenceBatcher:get_batch(k)
  local recur = require("recur")
  local t = self:get_batch_tables(batch_index(self, "get_batch", k))
  local batch = {
    indices = t.indices,
    x = recur.tensor(t.x, "int64"),
    lengths = recur.tensor(t.lengths, "int64"),
    mask = recur.tensor(t.mask, "float32"),
  }
  if t.labels then batch.labels = recur.tensor(t.labels, "int64") end
  if t.y then
    batch.y = recur.tensor(t.y, "int64")
    batch.y_lengths = recur.tensor(t.y_lengths, "int64")
    batch.y_mask = recur.tensor(t.y_mask, "float32")
  end
  return batch
end

function SentenceBatcher:next_batch()
  if self.pos > self.K then return nil end
  local k = self.pos
  self.pos = k + 1
  return self:get_batch(k)
end

function SentenceBatcher:batches()
  return function() return self:next_batch() end
end

function SentenceBatcher:reset() self:_start_epoch(self.epoch + 1, 1) end

function SentenceBatcher:state()
  return { epoch = self.epoch, next_batch = self.pos, seed = self.seed, num_seqs = self.n,
           batch_size = self.B, sort = self.sort, shuffle = self.shuffle, drop_last = self.drop_last }
end

function SentenceBatcher:set_state(s)
  local who = "SentenceBatcher:set_state"
  if type(s) ~= "table" then error(who .. ": expected a table from state()", 2) end
  local mine = { num_seqs = self.n, batch_size = self.B, sort = self.sort, shuffle = self.shuffle,
                 drop_last = self.drop_last }
  for _, f in ipairs({ "num_seqs", "batch_size", "sort", "shuffle", "drop_last" }) do
    if s[f] ~= mine[f] then
      error(string.format("%s: the state has %s = %s, this batcher has %s", who, f, tostring(s[f]), tostring(mine[f])), 2)
    end
  end
  local e, p, seed = math.tointeger(s.epoch), math.tointeger(s.next_batch), math.tointeger(s.seed)
  if e == nil or e < 1 then error(who .. ": bad epoch " .. tostring(s.epoch), 2) end
  if seed == nil then error(who .. ": bad seed " .. tostring(s.seed), 2) end
  if p == nil or p < 1 or p > self.K + 1 then
    error(string.format("%s: next_batch = %s is outside 1..%d", who, tostring(s.next_batch), self.K + 1), 2)
  end
  self.seed = seed
  self:_start_epoch(e, p)
end

return SentenceBatcher
