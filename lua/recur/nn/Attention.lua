-- Attention: a decoder's query attends over an encoder's outputs (the memory), one
-- decoder step at a time, batched (Luong et al. 2015; Bahdanau et al. 2015).
--
-- Attention{score = "dot"|"general"|"concat"|"additive", query_size = Hq,
--           memory_size = Hm (default Hq), attn_size = A (concat and additive only,
--           default Hq), dtype = "float32" (default) | "float64"}
-- For the query q_b (a row of (B,Hq)) and the memory m_{s,b} (a row of (S,B,Hm)):
--   dot       e_s = q . m_s                          (Hq = Hm; no parameters)
--   general   e_s = q . W m_s                        W (Hq,Hm)
--   concat    e_s = v . tanh(W_q q + W_m m_s)        Luong's v . tanh(W_a [q; m_s])
--   additive  e_s = v . tanh(W_q q + b + W_m m_s)    Bahdanau's
--   weights a = softmax of e over s <= lengths[b], exactly 0 past it;
--   context c = sum_s a_s m_s, (B,Hm).
-- Parameters, named as the PyTorch module of spec/fixtures/generate_attention.py:
--   memory_layer.weight  W (Hq,Hm) for general, W_m (A,Hm) for concat and additive
--   query_layer.weight   W_q (A,Hq)   concat and additive
--   query_layer.bias     b (A)        additive
--   v.weight             v (1,A)      concat and additive
-- initialised as PyTorch's nn.Linear (U(-1/sqrt(fan_in), 1/sqrt(fan_in))).
--
-- set_memory(memory (S,B,Hm), lengths int64 (B) in 1..S or nil) starts a batch: the
--   memory's projection (W m or W_m m: one matrix product over the S*B rows) is made
--   here once, not at every step. The module keeps a copy of the memory (its padding
--   zeroed), so the caller's tensor may change afterwards.
-- forward_step(query (B,Hq)) -> context (B,Hm), weights (B,S); keeps a tape entry
--   (a copy of the query, its projection (B,A) and the weights, which are the tensor
--   returned: read it, do not write it; the additive forms' tanh values are recomputed
--   in backward rather than kept, S*B*A per step).
-- backward_step(gcontext (B,Hm) [, gweights (B,S)]) -> gquery (B,Hq): the newest tape
--   entry's backward (steps go back in reverse order). Adds the parameter gradients and
--   the memory gradient; the memory side of the score (S*B rows) is carried back
--   through W or W_m in one product when the tape runs empty.
-- memory_grad() -> (S,B,Hm): the memory's gradient summed over all steps since
--   set_memory (or clear); rows past a sequence's length are 0.
-- clear(): drops the tape and the memory gradient (the memory stays, for attend).
-- attend(query (B,Hq)) -> context, weights: a step for generation, nothing kept.
-- reorder(index int64 (N)): beam search: the memory, its projection and the lengths
--   become rows index[1..N] (1-based) of the batch; N may differ from B (widening a
--   batch to B*beams). Drops the tape.
-- forward(queries (T,B,Hq), memory, lengths) -> contexts (T,B,Hm), weights (T,B,S) and
-- backward(queries, gcontexts [, gweights]) -> gqueries (T,B,Hq), gmemory (S,B,Hm):
--   the same over T steps whose queries are all known (Luong's decoder without input
--   feeding, and recur.gradcheck).
-- The step's scores, softmax and context run in C (csrc/attention.c), one call per
-- step and direction; the projections are matrix products (core.addmm).
local core = require "recur.core"
local util = require "recur.nn.util"
local Module = require "recur.nn.Module"
local Linear = require "recur.nn.Linear"

local Attention = util.class("Attention", Module)

Attention.scores = {"dot", "general", "concat", "additive"}
local OPTIONS = {score = true, query_size = true, memory_size = true, attn_size = true, dtype = true}

function Attention:__init(opts)
  Module.__init(self)
  if opts == nil then error("Attention: expected an options table {score = ..., query_size = ...}", 2) end
  opts = util.check_opts("Attention", opts, OPTIONS)
  if opts.score == nil then
    error("Attention: option score is required (" .. table.concat(Attention.scores, ", ") .. ")", 2)
  end
  self.score = util.opt_choice("Attention", opts, "score", nil, Attention.scores)
  self.query_size = util.check_positive_int("Attention", "query_size", opts.query_size)
  self.memory_size = util.check_positive_int("Attention", "memory_size", opts.memory_size or self.query_size)
  self.dtype = util.check_dtype_name("Attention", opts.dtype or "float32")
  local additive = self.score == "concat" or self.score == "additive"
  if additive then
    self.attn_size = util.check_positive_int("Attention", "attn_size", opts.attn_size or self.query_size)
  elseif opts.attn_size ~= nil then
    error("Attention: attn_size applies only to the concat and additive scores, not " .. self.score, 2)
  end
  if self.score == "dot" and self.query_size ~= self.memory_size then
    error(string.format("Attention: the dot score needs query_size = memory_size, got %d and %d",
      self.query_size, self.memory_size), 2)
  end
  local function linear(name, D, H, bias)
    self[name] = self:register_module(name, Linear(D, H, {bias = bias, dtype = self.dtype}))
  end
  if self.score == "general" then
    linear("memory_layer", self.memory_size, self.query_size, false)
  elseif additive then
    linear("query_layer", self.query_size, self.attn_size, self.score == "additive")
    linear("memory_layer", self.memory_size, self.attn_size, false)
    linear("v", self.attn_size, 1, false)
  end
  self._additive = additive
  self._tape = {}
end

-- Drops the batch's memory (its dtype changes) before converting the parameters.
function Attention:to(dtype)
  self._memory, self._keys, self._lengths = nil, nil, nil
  self:clear()
  return Module.to(self, dtype)
end

-- The memory's projection, (S,B,K): the keys the query is scored against.
function Attention:_keys_of(memory)
  if self.score == "dot" then return memory end
  local S, B = memory:size(1), memory:size(2)
  local W = self.memory_layer.weight
  local keys = core.empty({S, B, W:size(1)}, self.dtype)
  core.addmm(keys:view(S * B, W:size(1)), memory:view(S * B, self.memory_size), W, 1, 0, false, true)
  return keys
end

function Attention:set_memory(memory, lengths)
  local op = "Attention.set_memory"
  util.check_input(op, "memory", memory, self.dtype, 3)
  local S, B, H = memory:size(1), memory:size(2), memory:size(3)
  if H ~= self.memory_size then
    error(string.format("%s: memory has shape %s, expected (S,B,%d)", op, util.shape_str(memory),
      self.memory_size), 2)
  end
  if S < 1 or B < 1 then error(op .. ": memory " .. util.shape_str(memory) .. " is empty", 2) end
  local lens
  if lengths ~= nil then
    if not util.is_tensor(lengths) or lengths:dtype() ~= "int64" or lengths:numel() ~= B then
      error(string.format("%s: lengths must be an int64 tensor with one length per batch entry (%d)", op, B), 2)
    end
    lens = lengths:reshape(-1):totable()
    for b, L in ipairs(lens) do
      if L < 1 or L > S then
        error(string.format("%s: lengths[%d] = %d is outside 1..%d (the memory's length)", op, b, L, S), 2)
      end
    end
    lengths = lengths:reshape(-1):clone()
  end
  -- A copy of its own with the padding zeroed: the caller may reuse its tensor (an
  -- encoder's output buffer) at once, and the projections' matrix products, which run
  -- over all S*B rows, read no NaN or stale values there (the step kernels never do).
  memory = memory:clone()
  for b, L in ipairs(lens or {}) do
    if L < S then memory:narrow(1, L + 1, S - L):select(2, b):zero_() end
  end
  self._memory = memory
  self._lengths = lengths
  self._keys = self:_keys_of(self._memory)
  self:clear()
  return self
end

function Attention:clear()
  self._tape = {}
  self._gmemory, self._gkeys, self._pending = nil, nil, false
  return self
end

-- The query checked against the memory's batch, contiguous.
function Attention:_query(op, query)
  if not self._memory then error(op .. ": no memory (call set_memory first)", 3) end
  util.check_input(op, "query", query, self.dtype, 2, 4)
  local B = self._memory:size(2)
  if query:size(1) ~= B or query:size(2) ~= self.query_size then
    error(string.format("%s: query has shape %s, expected (%dx%d)", op, util.shape_str(query), B,
      self.query_size), 3)
  end
  return query:contiguous()
end

-- What the C step scores against the keys: the query itself (dot, general) or its
-- projection W_q q + b (concat, additive), a new (B,A) tensor.
function Attention:_score_input(q)
  if not self._additive then return q end
  local ql = self.query_layer
  local p = core.empty({q:size(1), self.attn_size}, self.dtype)
  core.addmm(p, q, ql.weight, 1, 0, false, true, ql.bias)
  return p
end

-- v as the (A) vector the kernels read, and its gradient (a view: kernels add into it).
function Attention:_v()
  if not self._additive then return nil, nil end
  local A = self.attn_size
  return self.v.weight:view(A), self.v:gradient("weight"):view(A)
end

function Attention:attend(query)
  local q = self:_query("Attention.attend", query)
  return core.attention_forward(self:_score_input(q), self._keys, (self:_v()), self._memory, self._lengths)
end

function Attention:forward_step(query)
  local q = self:_query("Attention.forward_step", query):clone()
  local input = self:_score_input(q)
  local context, weights = core.attention_forward(input, self._keys, (self:_v()), self._memory, self._lengths)
  self._tape[#self._tape + 1] = {q = q, input = input, weights = weights}
  return context, weights
end

function Attention:backward_step(gcontext, gweights)
  local op = "Attention.backward_step"
  local entry = self._tape[#self._tape]
  if not entry then error(op .. ": the tape is empty (one backward_step per forward_step)", 2) end
  local S, B = self._memory:size(1), self._memory:size(2)
  util.check_input(op, "gcontext", gcontext, self.dtype, 2)
  if gcontext:size(1) ~= B or gcontext:size(2) ~= self.memory_size then
    error(string.format("%s: gcontext has shape %s, expected (%dx%d)", op, util.shape_str(gcontext), B,
      self.memory_size), 2)
  end
  if gweights ~= nil then
    util.check_input(op, "gweights", gweights, self.dtype, 2)
    if gweights:size(1) ~= B or gweights:size(2) ~= S then
      error(string.format("%s: gweights has shape %s, expected (%dx%d)", op, util.shape_str(gweights), B, S), 2)
    end
  end
  self._tape[#self._tape] = nil
  if not self._gmemory then
    self._gmemory = core.zeros(self._memory:size(), self.dtype)
    self._gkeys = self.score == "dot" and self._gmemory or core.zeros(self._keys:size(), self.dtype)
  end
  local v, gv = self:_v()
  local g = core.attention_backward(gcontext, gweights, entry.weights, entry.input, self._keys, v,
    self._memory, self._lengths, self._gkeys, self._gmemory, gv)
  self._pending = self.score ~= "dot"
  local gquery = g
  if self._additive then
    -- g is the gradient of p = W_q q + b, (B,A)
    local ql = self.query_layer
    gquery = core.matmul(g, ql.weight)
    core.addmm(ql:gradient("weight"), g, entry.q, 1, 1, true, false)
    if ql.bias then ql:gradient("bias"):add_(g:sum(1)) end
  end
  if #self._tape == 0 then self:_flush() end
  return gquery
end

-- Carries the keys' summed gradient back through the memory projection: one product
-- for the memory and one for the weight, over the S*B rows.
function Attention:_flush()
  if not self._pending then return end
  local S, B = self._memory:size(1), self._memory:size(2)
  local ml = self.memory_layer
  local K = ml.weight:size(1)
  local gk = self._gkeys:view(S * B, K)
  core.addmm(self._gmemory:view(S * B, self.memory_size), gk, ml.weight, 1, 1)
  core.addmm(ml:gradient("weight"), gk, self._memory:view(S * B, self.memory_size), 1, 1, true, false)
  self._gkeys:zero_()
  self._pending = false
end

function Attention:memory_grad()
  if not self._memory then error("Attention.memory_grad: no memory (call set_memory first)", 2) end
  if not self._gmemory then return core.zeros(self._memory:size(), self.dtype) end
  self:_flush()
  return self._gmemory
end

function Attention:reorder(index)
  local op = "Attention.reorder"
  if not self._memory then error(op .. ": no memory (call set_memory first)", 2) end
  if not util.is_tensor(index) or index:dtype() ~= "int64" or index:dim() ~= 1 then
    error(op .. ": index must be a 1-D int64 tensor of batch rows (1-based)", 2)
  end
  local ok, memory = pcall(core.attention_reorder, self._memory, index)
  if not ok then error(op .. ": " .. tostring(memory):gsub("^attention reorder: ", ""), 2) end
  self._keys = self.score == "dot" and memory or core.attention_reorder(self._keys, index)
  self._memory = memory
  if self._lengths then self._lengths = core.attention_reorder(self._lengths, index) end
  self:clear()
  return self
end

function Attention:forward(queries, memory, lengths)
  local op = "Attention.forward"
  util.check_input(op, "queries", queries, self.dtype, 3)
  self:set_memory(memory, lengths)
  local T, B, S = queries:size(1), memory:size(2), memory:size(1)
  local contexts = core.empty({T, B, self.memory_size}, self.dtype)
  local weights = core.empty({T, B, S}, self.dtype)
  for t = 1, T do
    local c, w = self:forward_step(queries:select(1, t))
    contexts:select(1, t):copy_(c)
    weights:select(1, t):copy_(w)
  end
  return contexts, weights
end

function Attention:backward(queries, gcontexts, gweights)
  local op = "Attention.backward"
  local T = #self._tape
  if queries:size(1) ~= T or gcontexts:size(1) ~= T or (gweights and gweights:size(1) ~= T) then
    error(string.format("%s: expected %d steps (the tape's), got queries %s, gcontexts %s", op, T,
      util.shape_str(queries), util.shape_str(gcontexts)), 2)
  end
  local gqueries = core.empty(queries:size(), self.dtype)
  for t = T, 1, -1 do
    gqueries:select(1, t):copy_(self:backward_step(gcontexts:select(1, t), gweights and gweights:select(1, t)))
  end
  return gqueries, self:memory_grad()
end

return Attention
