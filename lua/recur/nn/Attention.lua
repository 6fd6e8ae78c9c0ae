-- STAND-IN (attn-model's tests only; replaced by attn-core's nn.Attention on merge).
-- Pure-Lua attention with the DESIGN.md interface, batched with bmm.
local core = require "recur.core"
local util = require "recur.nn.util"
local Module = require "recur.nn.Module"

local Attention = util.class("Attention", Module)

function Attention:__init(opts)
  Module.__init(self)
  self.score = opts.score
  local Hq, Hm, A = opts.query_size, opts.memory_size, opts.attn_size
  self.Hq, self.Hm, self.A = Hq, Hm, A
  local Linear = require "recur.nn.Linear"
  if self.score == "general" then
    self.memory_layer = self:register_module("memory_layer", Linear(Hm, Hq, {bias = false}))
  elseif self.score == "concat" or self.score == "additive" then
    self.query_layer = self:register_module("query_layer", Linear(Hq, A, {bias = self.score == "additive"}))
    self.memory_layer = self:register_module("memory_layer", Linear(Hm, A, {bias = false}))
    self.v_layer = self:register_module("v", Linear(A, 1, {bias = false}))
  end
  if opts.dtype then self:to(opts.dtype) end
end

function Attention:set_memory(memory, lengths)
  local S, B = memory:size(1), memory:size(2)
  self.memory = memory
  self.S, self.B = S, B
  self.Mt = memory:transpose(1, 2):contiguous()          -- (B,S,Hm)
  local mask = core.zeros({B, S}, self.dtype)
  if lengths then
    for b = 1, B do
      for s = lengths:get(b) + 1, S do mask:set(b, s, -math.huge) end
    end
  end
  self.mask = mask
  if self.score == "concat" or self.score == "additive" then
    self.K = core.matmul(self.Mt:reshape(B * S, self.Hm), self.memory_layer.weight, false, true):reshape(B, S, self.A)
  end
  self.gMt = core.zeros({B, S, self.Hm}, self.dtype)
  self.gK = self.K and core.zeros({B, S, self.A}, self.dtype) or nil
  self.tape = {}
end

function Attention:clear()
  self.tape = {}
  if self.gMt then self.gMt:zero_() end
  if self.gK then self.gK:zero_() end
end

function Attention:_scores(q)
  local B, S = self.B, self.S
  local e, saved = nil, {q = q:clone()}
  if self.score == "dot" then
    e = core.matmul(self.Mt, q:reshape(B, self.Hm, 1)):reshape(B, S)
  elseif self.score == "general" then
    local k = core.matmul(q, self.memory_layer.weight)    -- (B,Hm)
    saved.k = k
    e = core.matmul(self.Mt, k:reshape(B, self.Hm, 1)):reshape(B, S)
  else
    local qp = core.matmul(q, self.query_layer.weight, false, true)   -- (B,A)
    if self.query_layer.bias then qp:add_(self.query_layer.bias) end
    local z = self.K:add(qp:reshape(B, 1, self.A)):tanh()       -- (B,S,A)
    saved.z = z
    e = core.matmul(z:reshape(B * S, self.A), self.v_layer.weight:reshape(self.A, 1)):reshape(B, S)
  end
  e:add_(self.mask)
  local w = e:softmax(2)
  local ctx = core.matmul(w:reshape(B, 1, S), self.Mt):reshape(B, self.Hm)
  saved.w = w
  return ctx, w, saved
end

function Attention:attend(q)
  local ctx, w = self:_scores(q)
  return ctx, w
end

function Attention:forward_step(q)
  local ctx, w, saved = self:_scores(q)
  self.tape[#self.tape + 1] = saved
  return ctx, w
end

function Attention:backward_step(gctx)
  local s = table.remove(self.tape)
  local B, S, Hm, A = self.B, self.S, self.Hm, self.A
  local w, q = s.w, s.q
  local gw = core.matmul(self.Mt, gctx:reshape(B, Hm, 1)):reshape(B, S)
  self.gMt:add_(core.matmul(w:reshape(B, S, 1), gctx:reshape(B, 1, Hm)))
  local dotp = w:mul(gw):sum(2, true)
  local ge = gw:sub(dotp):mul(w)                              -- (B,S)
  if self.score == "dot" then
    self.gMt:add_(core.matmul(ge:reshape(B, S, 1), q:reshape(B, 1, Hm)))
    return core.matmul(ge:reshape(B, 1, S), self.Mt):reshape(B, Hm)
  elseif self.score == "general" then
    self.gMt:add_(core.matmul(ge:reshape(B, S, 1), s.k:reshape(B, 1, Hm)))
    local gk = core.matmul(ge:reshape(B, 1, S), self.Mt):reshape(B, Hm)
    core.addmm(self.memory_layer._grads.weight, q, gk, 1, 1, true, false)
    return core.matmul(gk, self.memory_layer.weight, false, true)
  else
    local z = s.z
    -- e = z v: gv += z^T ge, gz = ge v^T
    core.addmm(self.v_layer._grads.weight:reshape(A, 1), z:reshape(B * S, A), ge:reshape(B * S, 1), 1, 1, true, false)
    local gz = core.matmul(ge:reshape(B * S, 1), self.v_layer.weight:reshape(1, A)):reshape(B, S, A)
    local gpre = gz:mul(z:mul(z):neg():add(1))
    self.gK:add_(gpre)
    local gqp = gpre:sum(2)                                    -- (B,A)
    if self.query_layer.bias then self.query_layer._grads.bias:add_(gqp:sum(1)) end
    core.addmm(self.query_layer._grads.weight, gqp, q, 1, 1, true, false)
    return core.matmul(gqp, self.query_layer.weight)
  end
end

function Attention:memory_grad()
  local B, S, Hm = self.B, self.S, self.Hm
  local g = self.gMt:clone()
  if self.gK then
    local gK2, M2 = self.gK:reshape(B * S, self.A), self.Mt:reshape(B * S, Hm)
    g:add_(core.matmul(gK2, self.memory_layer.weight):reshape(B, S, Hm))
    core.addmm(self.memory_layer._grads.weight, gK2, M2, 1, 1, true, false)
  end
  return g:transpose(1, 2):contiguous()
end

function Attention:reorder(index)
  error("stand-in: reorder not implemented")
end

return Attention
