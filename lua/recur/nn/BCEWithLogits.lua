-- BCEWithLogits: binary cross-entropy on logits, the numerically stable fusion of a
-- sigmoid and the binary cross-entropy:
--   l = -t log sigmoid(x) - (1 - t) log(1 - sigmoid(x)) = max(x,0) - x t + log(1 + exp(-|x|))
-- averaged over all elements (reduction "mean") or summed ("sum"), in nats.
-- Input: float logits of any shape; target: the same shape, values in [0, 1].
local core = require "recur.core"
local util = require "recur.nn.util"
local Criterion = require "recur.nn.Criterion"

local BCEWithLogits = util.class("BCEWithLogits", Criterion)

-- opts: reduction ("mean" | "sum")
function BCEWithLogits:__init(opts)
  Criterion.__init(self, "BCEWithLogits", opts)
end

function BCEWithLogits:forward(x, t)
  x, t = self:_pair("BCEWithLogits", x, t)
  local s = core.nn_bce_with_logits(x, t)
  self.output = self.reduction == "mean" and s / x:numel() or s
  return self.output
end

function BCEWithLogits:backward(x, t)
  x, t = self:_pair("BCEWithLogits", x, t)
  local scale = self.reduction == "mean" and 1 / x:numel() or 1
  return core.nn_bce_with_logits_backward(x, t, scale):view(x:size())
end

return BCEWithLogits
