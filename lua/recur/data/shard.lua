-- Shard: one rank's part of a batcher's batches, for data-parallel training
-- (recur.train.Trainer's `dist` option, README's "Data-parallel training").
--
--   local shard = recur.data.Shard.new(batcher, rank, size)   -- rank 0-based, 0..size-1
--
-- Every rank builds the same global batcher; the shard serves its streams (columns) of
-- each batch. The B streams are dealt as evenly as they go: every rank takes B // size
-- of them and the first B % size ranks one more, in order, so that the ranks together
-- see exactly the global batch whether or not size divides B (Shard.range). A rank can
-- get no stream at all in a batch of independent sequences (padded ones, or a
-- generator's z) smaller than the number of ranks (stream batches, whose streams
-- carry state, must have B >= size): shard.streams is then 0 and next_batch returns
-- {}, since no model runs on zero columns; the Trainer then skips the forward and the
-- rank adds zero gradients and a zero count.
-- After each batch, shard.streams is the rank's number of streams and
-- shard.global_streams the batch's.
--
-- Fields are split where they hold their streams: x, y, mask, y_mask are time-major
-- ((T,B) ids and masks, (T,B,D) values: dimension 2), 1-D tensors (lengths, labels)
-- and z (B,Z) have one row per stream, and a Lua array (indices) one entry; any other
-- field of two or more dimensions is refused. Padded sequences keep the whole batch's
-- T, though the rank's own may all be shorter: the dropout masks are drawn for the
-- whole batch's shape (nn.Dropout.streams), and the batcher's bucketing by length
-- keeps the extra padding small. The position (state, set_state, reset,
-- num_batches) is the global batcher's.
local util = require "recur.nn.util"

local Shard = {}
Shard.__index = Shard

-- The first stream (1-based) and the number of streams of `rank` in a batch of B.
function Shard.range(B, rank, size)
  local base, extra = B // size, B % size
  return rank * base + math.min(rank, extra) + 1, base + (rank < extra and 1 or 0)
end

function Shard.new(batcher, rank, size)
  local who = "Shard.new"
  if type(batcher) ~= "table" or type(batcher.next_batch) ~= "function" then
    error(who .. ": expected a batcher (next_batch), got " .. type(batcher), 2)
  end
  if math.type(size) ~= "integer" or size < 1 then error(who .. ": size must be a positive integer, got " .. tostring(size), 2) end
  if math.type(rank) ~= "integer" or rank < 0 or rank >= size then
    error(string.format("%s: rank must be an integer in 0..%d, got %s", who, size - 1, tostring(rank)), 2)
  end
  return setmetatable({inner = batcher, rank = rank, size = size}, Shard)
end

-- Which dimension of a batch's field holds its streams: time-major sequences ((T,B)
-- ids and masks, (T,B,D) values) on 2, per-stream values (lengths, labels, (B,Z)
-- conditioning vectors) on 1.
local TIME_MAJOR = {x = true, y = true, mask = true, y_mask = true}
local PER_STREAM = {z = true}

local function stream_dim(k, v)
  if v:dim() == 1 or PER_STREAM[k] then return 1 end
  if TIME_MAJOR[k] then return 2 end
  error(string.format("Shard: the batch's field '%s' is %s; which of its dimensions holds the streams is not known "
    .. "(time-major: x, y, mask, y_mask; per stream: 1-D tensors and z)", tostring(k), util.shape_str(v)), 0)
end

-- The batch's number of streams, from its first field of x, z, y.
local function streams_of(batch)
  for _, k in ipairs({"x", "z", "y"}) do
    local v = batch[k]
    if util.is_tensor(v) then return v:size(stream_dim(k, v)) end
  end
  error("Shard: a batch must have a tensor x, z or y", 0)
end

-- Columns first .. first+n-1 of one field.
local function cut(k, v, first, n)
  if util.is_tensor(v) then return v:narrow(stream_dim(k, v), first, n):clone() end
  if type(v) == "table" then return table.move(v, first, first + n - 1, 1, {}) end
  return v
end

function Shard:slice(batch)
  if type(batch) ~= "table" then error("Shard: a batch must be a table, got " .. type(batch), 0) end
  self.global_streams = streams_of(batch)
  local first, n = Shard.range(self.global_streams, self.rank, self.size)
  self.streams = n
  if n == 0 and not batch.lengths and not batch.z then
    -- every rank sees the same B, so every rank stops here alike
    error(string.format("Shard: a batch of %d streams leaves rank %d of %d without one; streams carry their state from batch to batch, so the batch size must be at least the number of ranks",
      self.global_streams, self.rank, self.size), 0)
  end
  if n == 0 then return {} end
  local part = {}
  for k, v in pairs(batch) do part[k] = cut(k, v, first, n) end
  return part
end

function Shard:next_batch()
  local batch = self.inner:next_batch()
  return batch and self:slice(batch)
end

-- The rank's non-empty parts, for evaluation (a pass over the whole set).
function Shard:batches()
  return function()
    while true do
      local batch = self:next_batch()
      if not batch or self.streams > 0 then return batch end
    end
  end
end

function Shard:num_batches() return self.inner:num_batches() end
function Shard:reset() return self.inner:reset() end
function Shard:state() return self.inner:state() end
function Shard:set_state(s) return self.inner:set_state(s) end

return Shard
