-- Shard: one rank's part of a stream batcher's batches, for data-parallel training
-- (recur.train.Trainer's `dist` option, README-mpi.md).
--
--   local shard = recur.data.Shard.new(batcher, rank, size)   -- rank 0-based, 0..size-1
--
-- Every rank builds the same global batcher; the shard serves columns (streams)
-- rank*b + 1 .. (rank+1)*b of each {x =, y =} batch, b = B/size, so that size ranks
-- together see exactly the global batch. Each rank's loss is a mean over its b streams'
-- targets, all of the same count, so the mean of the ranks' gradients is the global
-- batch's gradient. A batch size that size does not divide is refused: the ranks would
-- weigh their tokens unequally. Batches are time-major, stream on dimension 2: (T,B)
-- ids or (T,B,D) values; batches with more fields than x and y (SentenceBatcher's masks
-- and lengths) are refused. The position (state, set_state, reset, num_batches) is the
-- global batcher's.
local Shard = {}
Shard.__index = Shard

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

function Shard:slice(batch)
  for k in pairs(batch) do
    if k ~= "x" and k ~= "y" then
      error(string.format("Shard: data-parallel training splits {x, y} stream batches; this batch also has '%s'", tostring(k)), 0)
    end
  end
  local B = batch.x:size(2)
  if B % self.size ~= 0 then
    error(string.format("Shard: batch size %d is not divisible by %d ranks; each rank takes B/N streams, choose a batch size that N divides", B, self.size), 0)
  end
  local b = B // self.size
  local first = self.rank * b + 1
  return {x = batch.x:narrow(2, first, b):clone(), y = batch.y:narrow(2, first, b):clone()}
end

function Shard:next_batch()
  local batch = self.inner:next_batch()
  return batch and self:slice(batch)
end

function Shard:batches()
  return function() return self:next_batch() end
end

function Shard:num_batches() return self.inner:num_batches() end
function Shard:reset() return self.inner:reset() end
function Shard:state() return self.inner:state() end
function Shard:set_state(s) return self.inner:set_state(s) end

return Shard
