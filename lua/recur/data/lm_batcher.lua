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
-- b:get_batch_tables(k) -> x, y as Lua arrays of rows; the rest (num_batches,
-- next_batch -> {x =, y =} | nil at the end of the epoch, batches, reset, get_batch,
-- state, set_state) is recur.data.chunks's.
local ids = require("recur.data.ids")
local util = require("recur.util")
local Chunks = require("recur.data.chunks")

local LMBatcher = Chunks.extend({})

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
  local L, K = Chunks.layout(who, N, B, T, drop_last, "ids", "positions")
  local used = table.move(arr, 1, B * L + 1, 1, {})
  ids.check(used, V, who)
  return setmetatable({ who = "LMBatcher", ids = used, N = N, B = B, T = T, L = L, K = K,
    drop_last = drop_last, pos = 1, identity = { num_ids = N } }, LMBatcher)
end

local function check_k(self, k)
  local kk = math.tointeger(k)
  if kk == nil or kk < 1 or kk > self.K then
    error(string.format("LMBatcher:get_batch_tables: batch %s is outside 1..%d", tostring(k), self.K), 3)
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
function LMBatcher:_streams()
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
  return self.D, self.D
end

return LMBatcher
