-- The language-model race: bench/lm_race_torch.py and bench/lm_race.lua one after
-- the other, the same training time each, then: the validation loss PyTorch reached
-- at the end, the training time recur needed to reach it, and the ratio.
--
--   lua5.4 bench/race.lua [--seconds 300] [--eval-every 10] [--threads 2]
--                         [--env NAME=value ...] [--torch-env NAME=value ...] [--recur-first]
--                         [--output bench/results_race.json]
--
-- Times are training seconds (evaluation excluded on both sides, see the two
-- scripts). recur's time to reach a loss is interpolated linearly between the two
-- evaluations around the crossing. The ratio is taken against the time PyTorch
-- first reached its final loss (the stricter one: a validation curve is not
-- monotone), and also printed against PyTorch's whole run. Also printed: where each
-- side ended; the curves go to the JSON output. Target (issue 5): recur reaches
-- PyTorch's final loss in at most a third of PyTorch's time.
-- bench/ sits in a checkout: its lua/ and build/ come first (examples/checkout.lua).
local ROOT = dofile((arg[0]:match("^(.*)/") or ".") .. "/../examples/checkout.lua")
local argparse = require "argparse"
local cjson = require "cjson"

local suite = dofile(ROOT .. "/bench/suite.lua")

local parser = argparse("bench/race.lua", "recur against PyTorch on char-rnn's default model, same wall time")
parser:option("--seconds", "training seconds per side", 300):convert(tonumber)
parser:option("--eval-every", "training seconds between evaluations", 10):convert(tonumber)
parser:option("--threads", "threads per side", 2):convert(tonumber)
parser:option("--env", "NAME=value for both sides (e.g. OMP_WAIT_POLICY=PASSIVE)"):count("*")
parser:option("--torch-env", "NAME=value for PyTorch's side only"):count("*")
parser:flag("--recur-first", "run recur first (default: PyTorch first)")
parser:option("--python", "the Python with PyTorch 1.13", "/usr/bin/python3")
parser:option("--output", "JSON results", ROOT .. "/bench/results_race.json")
local a = parser:parse()
for _, k in ipairs({"seconds", "eval_every", "threads"}) do
  if not a[k] or a[k] <= 0 then parser:error("--" .. k:gsub("_", "-") .. " must be a positive number") end
end

local blas_line, blas_env = suite.same_blas_kernels()
io.stderr:write(blas_line, "\n")
a.env = suite.concat(a.env, blas_env)

-- Runs one side, echoing its lines; returns its evaluation records and final line.
local function run_side(name, argv)
  local cmd = suite.command_line(argv)
  local env = name == "torch" and suite.concat(a.env, a.torch_env) or a.env
  if #env > 0 then cmd = "env " .. suite.command_line(env) .. " " .. cmd end
  io.stderr:write(string.format("== %s: %s\n", name, cmd))
  local p = assert(io.popen(cmd, "r"))
  local curve, final, start = {}, nil, nil
  for line in p:lines() do
    local ok, r = pcall(cjson.decode, line)
    if ok and type(r) == "table" then
      if r.event == "final" then final = r
      elseif r.event == "start" then start = r
      else curve[#curve + 1] = r end
      if r.val_loss and r.event ~= "final" then
        io.stderr:write(string.format("   %-6s %7.1f s  iter %6d  val %.4f\n", name, r.seconds, r.iter, r.val_loss))
      end
    else
      io.stderr:write(line, "\n")
    end
  end
  local ok, how, code = p:close()
  if not ok or not final then
    error(string.format("race: the %s side failed (%s %s)", name, tostring(how), tostring(code)), 0)
  end
  return curve, final, start
end

-- Training seconds at which the curve first reaches loss (linear between evaluations),
-- or nil.
local function time_to(curve, loss)
  for i, r in ipairs(curve) do
    if r.val_loss <= loss then
      if i == 1 then return r.seconds end
      local p = curve[i - 1]
      local f = (p.val_loss - loss) / (p.val_loss - r.val_loss)
      return p.seconds + f * (r.seconds - p.seconds), r.seconds
    end
  end
  return nil
end

local common = {"--seconds", a.seconds, "--eval-every", a.eval_every, "--threads", math.tointeger(a.threads) or a.threads}
local sides = {
  torch = suite.concat({a.python, ROOT .. "/bench/lm_race_torch.py"}, common),
  recur = suite.concat({arg[-1] or "lua5.4", ROOT .. "/bench/lm_race.lua"}, common),
}
local order = a.recur_first and {"recur", "torch"} or {"torch", "recur"}
local results = {}
for _, name in ipairs(order) do
  local curve, final, start = run_side(name, sides[name])
  results[name] = {curve = curve, final = final, start = start}
end

local rc, tc = results.recur, results.torch
print(string.format("\nlanguage-model race: 2x128 LSTM, tiny Shakespeare, %g s of training per side, %g threads",
  a.seconds, a.threads))
print(string.format("%-8s %10s %10s %12s %10s %10s", "side", "iters", "ms/iter", "final val", "epochs", "peak MB"))
for _, name in ipairs({"recur", "torch"}) do
  local f = results[name].final
  print(string.format("%-8s %10d %10.1f %12.4f %10d %10.1f", name, f.iter, f.ms_per_iter, f.val_loss, f.epoch,
    f.peak_rss_mb))
end

local target = tc.final.val_loss
local t_recur, t_recur_eval = time_to(rc.curve, target)
local t_torch = time_to(tc.curve, target)
local summary = {seconds = a.seconds, threads = a.threads, order = order, env = a.env, torch_env = a.torch_env, torch_final_val = target,
                 torch_seconds_to_final = t_torch, recur_final_val = rc.final.val_loss}
if t_recur then
  summary.recur_seconds_to_torch_final = t_recur
  summary.ratio = t_recur / t_torch
  summary.ratio_to_end = t_recur / tc.final.seconds
  print(string.format("\nPyTorch's final val loss %.4f: recur reached it at %.1f s (interpolated; first evaluation " ..
    "at or below it: %.1f s).\nPyTorch ended there at %.1f s: ratio %.3f; PyTorch first reached it at %.1f s: ratio %.3f " ..
    "(target <= 0.333: %s)", target, t_recur, t_recur_eval or t_recur, tc.final.seconds, summary.ratio_to_end,
    t_torch, summary.ratio, summary.ratio <= 1 / 3 and "met" or "MISSED"))
else
  print(string.format("\nrecur did not reach PyTorch's final val loss %.4f in %g s (its final: %.4f): target MISSED",
    target, a.seconds, rc.final.val_loss))
end
local t_torch_to_recur = time_to(tc.curve, rc.final.val_loss)
summary.torch_seconds_to_recur_final = t_torch_to_recur
print(string.format("recur's final val loss %.4f: PyTorch %s", rc.final.val_loss,
  t_torch_to_recur and string.format("reached it at %.1f s", t_torch_to_recur) or "never reached it"))

results.summary = summary
suite.write_json(a.output, results)
print("curves and summary in " .. a.output)
