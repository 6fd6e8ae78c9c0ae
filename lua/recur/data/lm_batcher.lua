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

-- The B streams of the first B*L + 1 ids as one (L+1, B) int64 tensor, D[t][b] =
-- ids[(b-1)*L + t], copied in C: rows 1..L are the (B, L) block transposed, and row
-- L+1 holds each stream's last target, the first id of the next stream. Only D is
-- kept, 8 bytes an id: a Lua array of the ids takes 16, and the tiny Shakespeare
-- corpus's 1.1M ids once cost a copy of the array and a table per row at load time.
local function streams(flat, B, L)
  local D = require("recur").zeros({ L + 1, B }, "int64")
  D:narrow(1, 1, L):copy_(flat:narrow(1, 1, B * L):view({ B, L }):t())
  D:narrow(1, L + 1, 1):copy_(flat:narrow(1, 2, B * L):view({ B, L }):narrow(2, L, 1):t())
  return D
end

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
  local flat = ids.as_tensor(seq, V, who)
  local N = flat:size(1)
  local L, K = Chunks.layout(who, N, B, T, drop_last, "ids", "positions")
  return setmetatable({ who = "LMBatcher", D = streams(flat, B, L), N = N, B = B, T = T, L = L, K = K,
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
  local first = (kk - 1) * self.T            -- positions before this chunk, per stream
  local Tk = math.min(self.T, self.L - first)
  return self.D:narrow(1, first + 1, Tk):totable(), self.D:narrow(1, first + 2, Tk):totable()
end

-- chunk k's x and y are rows of D, one row apart (chunks.lua copies them out).
function LMBatcher:_streams()
  return self.D, self.D
end

return LMBatcher
