-- Embedding: a lookup table from token ids to vectors.
--
-- Input int64 ids of any shape S (e.g. (T,B)), 1-based: 1..V as produced by
-- recur.data; an id outside 1..V is an error naming the id and V.
-- Output (S..., E): a buffer the module keeps and overwrites on the next forward with
-- ids of the same shape (as torch/nn's output; clone it to keep it).
-- Parameter weight (V,E) ~ N(0,1) as PyTorch's nn.Embedding.
-- Lookup and gradient accumulation are C kernels (csrc/nn.c). backward returns nil:
-- ids have no gradient.
local core = require "recur.core"
local util = require "recur.nn.util"
local Module = require "recur.nn.Module"
local schemes = require "recur.nn.init_schemes"

local Embedding = util.class("Embedding", Module)

-- opts: dtype ("float32" default or "float64").
function Embedding:__init(V, E, opts)
  Module.__init(self)
  opts = util.check_opts("Embedding", opts, {dtype = true})
  self.num_embeddings = util.check_positive_int("Embedding", "num_embeddings", V)
  self.embedding_dim = util.check_positive_int("Embedding", "embedding_dim", E)
  self.dtype = util.check_dtype_name("Embedding", opts.dtype or "float32")
  self:register_parameter("weight", schemes.normal_(core.zeros({V, E}, self.dtype), 1))
end

local function check_ids(ids)
  if not util.is_tensor(ids) or ids:dtype() ~= "int64" then
    error("Embedding: input must be an int64 tensor of ids, got " ..
      (util.is_tensor(ids) and ids:dtype() or type(ids)), 3)
  end
end

function Embedding:forward(ids)
  check_ids(ids)
  self.output = core.nn_embedding(self.weight, ids, self.output)
  return self.output
end

function Embedding:backward(ids, gy)
  check_ids(ids)
  util.check_input("Embedding", "grad_output", gy, self.dtype)
  core.nn_embedding_backward(self._grads.weight, ids, gy)
  return nil
end

return Embedding
