-- Helpers of the Seq2Seq specs (spec/models/Seq2Seq*_spec.lua): padded id batches and
-- the model's loss as a module for recur.gradcheck, one thread. Not a spec itself.
local recur = require "recur"
local util = require "recur.nn.util"
local Module = require "recur.nn.Module"

local M = {}

-- A column-major (T,B) int64 tensor from B Lua arrays padded with `pad` to length T
-- (default: the longest).
function M.columns(seqs, pad, T)
  if not T then
    T = 0
    for _, s in ipairs(seqs) do T = math.max(T, #s) end
  end
  local x = recur.full({T, #seqs}, pad, "int64")
  for b, s in ipairs(seqs) do
    for t, id in ipairs(s) do x:set(t, b, id) end
  end
  return x
end

-- The lengths (B) int64 of B Lua arrays.
function M.lengths_of(seqs)
  local l = {}
  for b, s in ipairs(seqs) do l[b] = #s end
  return recur.tensor(l, "int64")
end

-- The model's mean teacher-forced loss as a module whose single output is that loss:
-- recur.gradcheck then checks every parameter's gradient of the loss itself.
local LossOf = util.class("LossOf", Module)
function LossOf:__init(model)
  Module.__init(self)
  self.model = self:register_module("model", model)
end
function LossOf:forward(src, tgt, lengths)
  self._tgt = tgt
  self._logits = self.model:forward(src, self.model:shift(tgt), lengths)
  return recur.tensor({self.model.criterion:forward(self._logits, tgt)}, self.dtype)
end
function LossOf:backward(src, r)
  local g = self.model.criterion:backward(self._logits, self._tgt):mul(r:get(1))
  self.model:backward(src, g)
end
M.LossOf = LossOf

-- Inside a describe block, given busted's setup and teardown (globals of the spec
-- file, not of this module): run its specs on one thread (tiny matrices: one thread is
-- faster, and no OpenMP team waits on a busy core), the count restored after them.
function M.one_thread(setup, teardown)
  local threads
  setup(function()
    threads = recur.get_num_threads()
    recur.set_num_threads(1)
  end)
  teardown(function() recur.set_num_threads(threads) end)
end

return M
