-- LMBatcher: one token stream served as (T,B) chunks for truncated BPTT.
--
-- N ids are cut into B parallel streams of L = floor((N-1)/B) positions. Stream b
-- (column b, 1..B) reads inputs ids[(b-1)*L + 1 .. b*L] and targets one further on,
-- ids[(b-1)*L + 2 .. b*L + 1]. Chunk k (1..K) holds positions (k-1)*T+1 .. min(kT, L):
--   x[t][b] = ids[(b-1)*L + (k-1)*T + t]     y[t][b] = ids[(b-1)*L + (k-1)*T + t + 1]
-- x and y are (T,B) int64 tensors of ids 1..V, time-major. Column b of chunk k+1
-- continues column b of chunk k, so the caller carries the hidden state across chunks
-- and resets it at the start of an epoch.
--
-- This is PyTorch word_language_model's batchify + get_batch layout (column = contiguous
-- stretch of text, chunks in order, last chunk shorter), except that the target of a
-- stream's last position is the first id of the next stream, so no position is lost
-- at stream ends: B*L + 1 <= N ids are used, the rest (< B) dropped. With
-- drop_last = true only full chunks of T are served: K = floor(L/T), else ceil(L/T).
--
-- LMBatcher.new(ids, {batch_size=B, seq_length=T, drop_last=false, vocab_size=nil})
--   ids: Lua array or 1-D int64 tensor; vocab_size, when given, checks ids <= V.
-- b:num_batches(), b:next_batch() -> x, y (nil, nil at the end of the epoch),
-- b:batches() (iterator over the rest of the epoch), b:reset() (back to chunk 1),
-- b:get_batch(k) -> x, y (random access; the position does not move),
-- b:get_batch_tables(k) -> x, y as Lua arrays of rows,
-- b:state() -> plain table, b:set_state(s): resume exactly at the saved position.
local ids = require("recur.data.ids")
local util = require("recur.util")

local LMBatcher = {}
LMBatcher.__index = LMBatcher

function LMBatcher.new(seq, opts)
  local who = "LMBatcher.new"
  opts = util.check_opts(who, opts, { batch_size = true, seq_length = true, drop_last = true, vocab_size = true })
  if opts.batch_size == nil or opts.seq_length == nil then
    error(who .. ": batch_size and seq_length are required", 2)
  end
  local B = util.opt_int(who, opts, "batch_size", nil)
  local T = util.opt_int(who, opts, "seq_length", nil)
  local V = util.opt_int(who, opts, "vocab_size", nil)
  local drop_last = util.opt_bool(who, opts, "drop_last", false)
  local arr = ids.as_array(seq, who)
  local N = #arr
  local L = (N - 1) // B
  if L < 1 then
    error(string.format("%s: %d ids are too few for batch_size %d (need at least %d)", who, N, B, B + 1), 2)
  end
  local K = drop_last and L // T or (L + T - 1) // T
  if K < 1 then
    error(string.format("%s: streams of %d positions hold no full chunk of seq_length %d (drop_last)", who, L, T), 2)
  end
  local used = table.move(arr, 1, B * L + 1, 1, {})
  ids.check(used, V, who)
  return setmetatable({ ids = used, N = N, B = B, T = T, L = L, K = K, drop_last = drop_last, pos = 1 }, LMBatcher)
end

function LMBatcher:num_batches() return self.K end

local function check_k(self, k)
  local kk = math.tointeger(k)
  if kk == nil or kk < 1 or kk > self.K then
    error(string.format("LMBatcher.get_batch: batch %s is outside 1..%d", tostring(k), self.K), 3)
  end
  return kk
end

function LMBatcher:get_batch_tables(k)
  local kk = check_k(self, k)
  local a, B, L, T = self.ids, self.B, self.L, self.T
  local first = (kk - 1) * T                 -- positions before this chunk, per stream
  local Tk = math.min(T, L - first)
  local x, y = {}, {}
  for t = 1, Tk do
    local xr, yr = {}, {}
    for b = 1, B do
      local i = (b - 1) * L + first + t
      xr[b], yr[b] = a[i], a[i + 1]
    end
    x[t], y[t] = xr, yr
  end
  return x, y
end

-- The streams as one (L+1, B) int64 tensor, D[t][b] = ids[(b-1)*L + t], built on first
-- use: chunk k's x and y are then rows of it, one row apart, copied out of it in C
-- (one big tensor() call costs far less than one per chunk).
local function streams(self)
  if self.D == nil then
    local a, B, L = self.ids, self.B, self.L
    local rows = {}
    for t = 1, L + 1 do
      local r = {}
      for b = 1, B do r[b] = a[(b - 1) * L + t] end
      rows[t] = r
    end
    self.D = require("recur").tensor(rows, "int64")
  end
  return self.D
end

-- x and y are fresh tensors: the caller may modify them without touching the batcher.
function LMBatcher:get_batch(k)
  local kk = check_k(self, k)
  local first = (kk - 1) * self.T
  local Tk = math.min(self.T, self.L - first)
  local D = streams(self)
  return D:narrow(1, first + 1, Tk):clone(), D:narrow(1, first + 2, Tk):clone()
end

function LMBatcher:next_batch()
  if self.pos > self.K then return nil, nil end
  local k = self.pos
  self.pos = k + 1
  return self:get_batch(k)
end

function LMBatcher:batches()
  return function() return self:next_batch() end
end

function LMBatcher:reset() self.pos = 1 end

-- Everything needed to check that a state belongs to this batcher, and where to resume.
function LMBatcher:state()
  return { next_batch = self.pos, num_ids = self.N, batch_size = self.B, seq_length = self.T,
           drop_last = self.drop_last }
end

function LMBatcher:set_state(s)
  local who = "LMBatcher.set_state"
  if type(s) ~= "table" then error(who .. ": expected a table from state()", 2) end
  for _, f in ipairs({ "num_ids", "batch_size", "seq_length", "drop_last" }) do
    local mine = ({ num_ids = self.N, batch_size = self.B, seq_length = self.T, drop_last = self.drop_last })[f]
    if s[f] ~= mine then
      error(string.format("%s: the state has %s = %s, this batcher has %s", who, f, tostring(s[f]), tostring(mine)), 2)
    end
  end
  local p = math.tointeger(s.next_batch)
  if p == nil or p < 1 or p > self.K + 1 then
    error(string.format("%s: next_batch = %s is outside 1..%d", who, tostring(s.next_batch), self.K + 1), 2)
  end
  self.pos = p
end

return LMBatcher
