-- BCEWithLogits: binary cross-entropy on logits, the numerically stable fusion of a
-- sigmoid and the binary cross-entropy:
--   l = -t log sigmoid(x) - (1 - t) log(1 - sigmoid(x)) = max(x,0) - x t + log(1 + exp(-|x|))
-- averaged over all elements (reduction "mean") or summed ("sum"), in nats.
-- Input: float logits of any shape; target: the same shape, values in [0, 1].
local core = require "recur.core"
local Criterion = require "recur.nn.Criterion"

-- opts: reduction ("mean" | "sum")
return Criterion.elementwise("BCEWithLogits", core.nn_bce_with_logits,
  core.nn_bce_with_logits_backward)
