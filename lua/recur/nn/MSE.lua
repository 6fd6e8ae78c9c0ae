-- MSE: mean squared error, sum((input - target)^2) / N (reduction "mean", N the
-- number of elements) or the plain sum (reduction "sum").
-- Input and target: float tensors of the same shape (any).
local core = require "recur.core"
local Criterion = require "recur.nn.Criterion"

-- opts: reduction ("mean" | "sum")
return Criterion.elementwise("MSE", core.nn_mse, core.nn_mse_backward)
