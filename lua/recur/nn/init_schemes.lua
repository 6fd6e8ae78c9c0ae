-- Weight initialisation, drawn from recur's seeded generator (recur.manual_seed), so a
-- seed fixes every initial weight on every machine.
--
-- Schemes for a recurrent layer with input size D, hidden size H and G gate blocks
-- (the `init` option of Recurrent, RNN, GRU, LSTM and Stack):
--   "default"     PyTorch's: every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H)).
--   "fan_in"      each weight ~ U(-1/sqrt(n), 1/sqrt(n)) with n its fan-in (D for
--                 weight_ih, H for weight_hh), biases 0 (LeCun's fan-in rule).
--   "orthogonal"  as "default", but each (H,H) gate block of weight_hh is an
--                 independent random orthogonal matrix (Saxe et al. 2014).
-- and `forget_bias = b` (LSTM only) sets the forget-gate block of bias_ih to b and of
-- bias_hh to 0, so the summed forget bias is b (Jozefowicz et al. 2015 use 1).
local core = require "recur.core"

local schemes = {}

-- Fills t with U(-bound, bound).
function schemes.uniform_(t, bound)
  t:copy_(core.uniform(t:size(), -bound, bound, t:dtype()))
  return t
end

-- Fills t with N(0, std^2).
function schemes.normal_(t, std)
  local r = core.randn(t:size(), t:dtype())
  if std ~= 1 then r:mul_(std) end
  t:copy_(r)
  return t
end

-- Fills the 2-D tensor t (r,c) with a random matrix with orthonormal rows (r <= c)
-- or columns (r > c): Gram-Schmidt (in C) on a standard normal matrix.
function schemes.orthogonal_(t)
  if t:dim() ~= 2 then
    error("orthogonal_: expected a 2-D tensor, got " .. t:dim() .. "-D", 2)
  end
  local r, c = t:size(1), t:size(2)
  if r <= c then
    t:copy_(core.nn_orthogonalize_rows_(core.randn({r, c}, "float64")))
  else
    t:copy_(core.nn_orthogonalize_rows_(core.randn({c, r}, "float64")):t())
  end
  return t
end

schemes.names = {default = true, fan_in = true, orthogonal = true}

-- Initialises the parameters of one recurrent layer (a recur.nn.Recurrent):
-- layer.w_ih, layer.w_hh and, when it has biases, layer.b_ih, layer.b_hh.
function schemes.recurrent(layer, scheme, forget_bias)
  local D, H, G = layer.input_size, layer.hidden_size, layer.gates
  local w_ih, w_hh, b_ih, b_hh = layer:weights()
  local bound = 1 / math.sqrt(H)
  if scheme == "default" then
    schemes.uniform_(w_ih, bound)
    schemes.uniform_(w_hh, bound)
    if b_ih then schemes.uniform_(b_ih, bound); schemes.uniform_(b_hh, bound) end
  elseif scheme == "fan_in" then
    schemes.uniform_(w_ih, 1 / math.sqrt(D))
    schemes.uniform_(w_hh, 1 / math.sqrt(H))
    if b_ih then b_ih:zero_(); b_hh:zero_() end
  elseif scheme == "orthogonal" then
    schemes.uniform_(w_ih, bound)
    for g = 1, G do schemes.orthogonal_(w_hh:narrow(1, (g - 1) * H + 1, H)) end
    if b_ih then schemes.uniform_(b_ih, bound); schemes.uniform_(b_hh, bound) end
  else
    error("init: unknown scheme '" .. tostring(scheme) .. "' (default, fan_in, orthogonal)", 2)
  end
  if forget_bias ~= nil then
    -- PyTorch's LSTM gate order is i, f, g, o: the forget block is rows H+1..2H.
    b_ih:narrow(1, H + 1, H):fill_(forget_bias)
    b_hh:narrow(1, H + 1, H):zero_()
  end
end

return schemes
