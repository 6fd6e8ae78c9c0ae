-- recur.gradcheck(module, input, opts) -> report
--
-- Compares the analytic gradients of a module (its backward) with central
-- differences, (f(p + eps) - f(p - eps)) / (2 eps), element by element, and reports
-- the worst relative error |a - n| / max(|a| + |n|, floor) for every parameter and
-- every differentiable input, as in the classic gradient-check recipe (CS231n,
-- torch-rnn). Runs in float64 by default: the module is converted IN PLACE with
-- module:to(dtype) (build a throwaway module for checking).
--
-- input: a tensor, or a list of arguments for forward, e.g. {x, h0, c0, lengths}
--   (holes allowed: {x, nil, nil, lengths}); float tensors among them are copied
--   to dtype, and checked when backward returns a gradient for them.
-- Modules: the scalar checked is f = sum_k sum(out_k * R_k) over the float tensors
--   out_k that forward returns, with fixed random R_k; backward receives
--   (input[1], R_1, R_2, ...), so for an RNN gy, ghn, gcn are all exercised.
-- Losses (module.is_criterion): f = module:forward(input...) and the analytic
--   gradient is module:backward(input...) for input[1] (input = {logits, targets, mask}).
-- The generator is re-seeded (opts.seed) before every forward, so modules that draw
--   random numbers (Dropout) use the same mask in every evaluation.
--
-- opts: dtype ("float64"), eps (1e-5), floor (1e-7: the denominator's lower bound,
--   so that gradients that are zero up to rounding do not count as large relative
--   errors), seed (1234), max_elems (nil: every element; else at most this many
--   evenly spaced elements per tensor), params (true: check parameters).
-- report: {max_error = worst over all, params = {name -> worst}, inputs = {i -> worst},
--   names = parameter names in order, evaluations = number of forward calls};
--   tostring(report) prints one line per tensor.
local core = require "recur.core"
local util = require "recur.nn.util"
local base = require "recur.util"

local function max_index(t)
  local n = 0
  for k in pairs(t) do
    if math.type(k) == "integer" and k > n then n = k end
  end
  return n
end

local Report = {}
Report.__index = Report
Report.__tostring = function(r)
  local lines = {string.format("gradcheck: worst relative error %.3e (eps %g, %s, %d evaluations)",
    r.max_error, r.eps, r.dtype, r.evaluations)}
  for _, name in ipairs(r.names) do
    lines[#lines + 1] = string.format("  %-28s %.3e", name, r.params[name])
  end
  for i = 1, max_index(r.inputs) do
    if r.inputs[i] then lines[#lines + 1] = string.format("  input #%-21d %.3e", i, r.inputs[i]) end
  end
  return table.concat(lines, "\n")
end

local OPTIONS = {dtype = true, eps = true, floor = true, seed = true, max_elems = true, params = true}

local function gradcheck(module, input, opts)
  opts = util.check_opts("gradcheck", opts, OPTIONS)
  local dtype = util.check_dtype_name("gradcheck", opts.dtype or "float64")
  local eps = base.opt_number("gradcheck", opts, "eps", 1e-5, 0)
  local floor = base.opt_number("gradcheck", opts, "floor", 1e-7, 0)
  if eps == 0 or floor == 0 then error("gradcheck: eps and floor must be > 0", 2) end
  local seed = base.opt_int("gradcheck", opts, "seed", 1234, math.mininteger)
  local max_elems = base.opt_int("gradcheck", opts, "max_elems", nil, 1)
  local check_params = base.opt_bool("gradcheck", opts, "params", true)
  if type(module) ~= "table" or type(module.forward) ~= "function" then
    error("gradcheck: expected a module or a loss, got " .. type(module), 2)
  end
  local is_loss = module.is_criterion
  if not is_loss then module:to(dtype) end

  -- Own copies of the float inputs, in dtype, so perturbing them touches nothing of the caller's.
  local args, n = {}, 0
  if util.is_tensor(input) then
    args[1], n = input, 1
  elseif type(input) == "table" then
    for k, v in pairs(input) do args[k] = v end
    n = max_index(input)
  else
    error("gradcheck: input must be a tensor or a list of forward's arguments", 2)
  end
  for i = 1, n do
    local a = args[i]
    if util.is_tensor(a) and a:dtype() ~= "int64" then args[i] = a:to(dtype):contiguous():clone() end
  end

  local evaluations = 0
  local projections
  local function run_forward()
    evaluations = evaluations + 1
    core.manual_seed(seed)
    return table.pack(module:forward(table.unpack(args, 1, n)))
  end
  local function f()
    local outs = run_forward()
    if is_loss then return outs[1] end
    local s = 0
    for k, R in pairs(projections) do s = s + outs[k]:mul(R):sum() end
    return s
  end

  -- Analytic gradients.
  if not is_loss then module:zero_grad() end
  local outs = run_forward()
  local grads_in
  if is_loss then
    if type(outs[1]) ~= "number" then error("gradcheck: the loss's forward must return a number", 2) end
    grads_in = table.pack(module:backward(table.unpack(args, 1, n)))
    for i = 2, grads_in.n do grads_in[i] = nil end
  else
    projections = {}
    core.manual_seed(seed + 1)
    local gouts = {}
    for k = 1, outs.n do
      local o = outs[k]
      if util.is_tensor(o) and o:dtype() ~= "int64" then
        projections[k] = core.randn(o:size(), dtype)
        gouts[k] = projections[k]
      end
    end
    grads_in = table.pack(module:backward(args[1], table.unpack(gouts, 1, outs.n)))
  end

  local analytic, names = {}, {}
  if check_params and not is_loss then
    local grads
    grads, names = module:named_gradients()
    for _, name in ipairs(names) do analytic[name] = grads[name]:clone() end
  end

  -- Worst relative error of one tensor (flat view) against its analytic gradient.
  local function check_tensor(t, g)
    local flat, gflat = t:view(-1), g:contiguous():view(-1)
    local count = flat:numel()
    local step = 1
    if max_elems and count > max_elems then step = count / max_elems end
    local worst = 0
    local pos = 1
    while pos <= count do
      local i = math.floor(pos)
      local orig = flat:get(i)
      flat:set(i, orig + eps)
      local fp = f()
      flat:set(i, orig - eps)
      local fm = f()
      flat:set(i, orig)
      local num = (fp - fm) / (2 * eps)
      local a = gflat:get(i)
      local err = math.abs(a - num) / math.max(math.abs(a) + math.abs(num), floor)
      if err > worst then worst = err end
      pos = pos + step
    end
    return worst
  end

  local report = setmetatable({params = {}, inputs = {}, names = {}, max_error = 0, eps = eps,
    dtype = dtype}, Report)
  if check_params and not is_loss then
    local params = module:named_parameters()
    for _, name in ipairs(names) do
      local err = check_tensor(params[name], analytic[name])
      report.params[name] = err
      report.names[#report.names + 1] = name
      report.max_error = math.max(report.max_error, err)
    end
  end
  for i = 1, n do
    local a, g = args[i], grads_in[i]
    if util.is_tensor(a) and a:dtype() ~= "int64" and util.is_tensor(g) then
      if not util.same_shape(a, g) then
        error(string.format("gradcheck: gradient of input #%d has shape %s, expected %s", i,
          util.shape_str(g), util.shape_str(a)), 2)
      end
      local err = check_tensor(a, g)
      report.inputs[i] = err
      report.max_error = math.max(report.max_error, err)
    end
  end
  report.evaluations = evaluations
  return report
end

return gradcheck
