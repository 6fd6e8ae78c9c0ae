-- Chunks: the iteration every stream batcher shares (LMBatcher, series.Batcher).
--
-- A stream batcher holds its data as B parallel streams of L + 1 positions, time on
-- dimension 1 and stream on dimension 2, built once: xs for the inputs and ys for the
-- targets (the same tensor for a language model). Chunk k (1..K) is positions
-- (k-1)*T + 1 .. min(kT, L) of xs, with the targets one position further on in ys, so
-- column b of chunk k+1 continues column b of chunk k and the caller carries the hidden
-- state across chunks. K = ceil(L/T), or floor(L/T) with drop_last (full chunks only).
--
-- A batcher sets self.who (its name in errors), B, T, L, K, drop_last, pos = 1, and the
-- method _streams() -> xs, ys; self.identity, a table of the numbers that must match for
-- a saved state to belong to this batcher (the data's length and the layout). It then
-- inherits:
--   b:num_batches(), b:get_batch(k) -> {x =, y =} (fresh tensors; the position does not
--   move), b:next_batch() -> the next batch or nil at the end of the epoch,
--   b:batches() (iterator over the rest of the epoch), b:reset() (back to chunk 1),
--   b:state() -> plain table, b:set_state(s): resume exactly at the saved position.
local Chunks = {}

-- The layout of N items (ids, time steps) as B streams of L positions in K chunks of
-- T: L and K, or an error naming the batcher `who` (at its constructor's caller) when
-- the data is too short. `items` and `positions` name the units in the messages.
function Chunks.layout(who, N, B, T, drop_last, items, positions)
  local L = (N - 1) // B
  if L < 1 then
    error(string.format("%s: %d %s are too few for batch_size %d (need at least %d)", who, N, items, B, B + 1), 3)
  end
  local K = drop_last and L // T or (L + T - 1) // T
  if K < 1 then
    error(string.format("%s: streams of %d %s hold no full chunk of seq_length %d (drop_last)", who, L, positions, T), 3)
  end
  return L, K
end

function Chunks:num_batches() return self.K end

function Chunks:get_batch(k)
  local kk = math.tointeger(k)
  if kk == nil or kk < 1 or kk > self.K then
    error(string.format("%s:get_batch: batch %s is outside 1..%d", self.who, tostring(k), self.K), 2)
  end
  local first = (kk - 1) * self.T
  local Tk = math.min(self.T, self.L - first)
  local xs, ys = self:_streams()
  -- clones: the caller may modify a batch without touching the batcher
  return {x = xs:narrow(1, first + 1, Tk):clone(), y = ys:narrow(1, first + 2, Tk):clone()}
end

function Chunks:next_batch()
  if self.pos > self.K then return nil end
  self.pos = self.pos + 1
  return self:get_batch(self.pos - 1)
end

function Chunks:batches()
  return function() return self:next_batch() end
end

function Chunks:reset() self.pos = 1 end

local LAYOUT = {"batch_size", "seq_length", "drop_last"}

function Chunks:state()
  local s = {next_batch = self.pos, batch_size = self.B, seq_length = self.T, drop_last = self.drop_last}
  for k, v in pairs(self.identity) do s[k] = v end
  return s
end

-- A state from a file is checked field by field: it must describe this data and
-- layout, and its position must lie within the epoch (K + 1: the epoch is over).
function Chunks:set_state(s)
  local who = self.who .. ":set_state"
  if type(s) ~= "table" then error(who .. ": expected a table from state()", 2) end
  local mine = {batch_size = self.B, seq_length = self.T, drop_last = self.drop_last}
  local names = {}
  for k, v in pairs(self.identity) do mine[k] = v; names[#names + 1] = k end
  table.sort(names)
  table.move(LAYOUT, 1, #LAYOUT, #names + 1, names)
  for _, f in ipairs(names) do
    if s[f] ~= mine[f] then
      error(string.format("%s: the state has %s = %s, this batcher has %s", who, f, tostring(s[f]),
        tostring(mine[f])), 2)
    end
  end
  local p = math.tointeger(s.next_batch)
  if p == nil or p < 1 or p > self.K + 1 then
    error(string.format("%s: next_batch = %s is outside 1..%d", who, tostring(s.next_batch), self.K + 1), 2)
  end
  self.pos = p
end

-- Makes `class` a stream batcher: its methods first, then these.
function Chunks.extend(class)
  class.__index = class
  return setmetatable(class, {__index = Chunks})
end

return Chunks
