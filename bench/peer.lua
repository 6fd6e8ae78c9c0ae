-- recur beside PyTorch 1.13: every row of the suite run by bench/run.lua and by
-- bench/peer_torch.py (/usr/bin/python3), one after the other, each in its own
-- process, and the ratio of every row.
--
--   lua5.4 bench/peer.lua [--threads 2] [--only protocol|layer|generate] [--repeat 1]
--                         [--env NAME=value ...] [--torch-env NAME=value ...]
--                         [--wait-idle S] [--quick] [--output bench/results_peer.json]
--
-- speedup = PyTorch's time / recur's time (generation: recur's tokens/s / PyTorch's);
-- mem = recur's peak RSS / PyTorch's. With --repeat N each row runs N times per side,
-- alternating, and the run with the median headline figure is kept. --env sets
-- variables for both sides (e.g. OMP_WAIT_POLICY=PASSIVE), --torch-env for PyTorch's
-- only. --wait-idle S waits before
-- every run (up to S seconds) until the shared machine is 90% idle. Ends with the issue's
-- targets: protocol >= 3x at every size with memory no higher, raw LSTM
-- (100,64,512,512) >= 80% of the sgemm ceiling, generation >= 3x.
-- bench/ sits in a checkout: its lua/ and build/ come first (examples/checkout.lua).
local ROOT = dofile((arg[0]:match("^(.*)/") or ".") .. "/../examples/checkout.lua")
local argparse = require "argparse"
local suite = dofile(ROOT .. "/bench/suite.lua")

local parser = argparse("bench/peer.lua", "recur beside PyTorch, row by row")
parser:option("--threads", "threads for both sides", 2):convert(function(s)
  local n = math.tointeger(tonumber(s))
  if not n or n < 1 then return nil, "--threads must be a positive integer" end
  return n
end)
parser:option("--only", "run only these rows"):choices({"protocol", "layer", "generate"}):count("*")
parser:option("--repeat", "runs per row and side (the median is kept)", 1):convert(function(s)
  local n = math.tointeger(tonumber(s))
  if not n or n < 1 then return nil, "--repeat must be a positive integer" end
  return n
end)
parser:option("--env", "NAME=value for both sides"):count("*"):convert(function(s)
  if not s:match("^[%w_]+=") then return nil, "--env expects NAME=value, got '" .. s .. "'" end
  return s
end)
parser:option("--wait-idle", "before each run wait up to this many seconds for the machine to be 90% idle", 0)
  :convert(tonumber)
parser:option("--torch-env", "NAME=value for PyTorch's side only (e.g. OMP_WAIT_POLICY=PASSIVE)"):count("*")
  :convert(function(s)
    if not s:match("^[%w_]+=") then return nil, "--torch-env expects NAME=value, got '" .. s .. "'" end
    return s
  end)
parser:flag("--quick", "few iterations per row (a smoke test, not a measurement)")
parser:option("--output", "JSON results", ROOT .. "/bench/results_peer.json")
parser:option("--python", "the Python with PyTorch 1.13", "/usr/bin/python3")
local a = parser:parse()

local only = nil
if #a.only > 0 then
  only = {}
  for _, k in ipairs(a.only) do only[k] = true end
end

-- The run whose headline figure is the median of the runs.
local function median_run(runs)
  table.sort(runs, function(x, y) return suite.figure(x) < suite.figure(y) end)
  return runs[(#runs + 1) // 2]
end

local blas_line, blas_env = suite.same_blas_kernels()
print(blas_line)
a.env = suite.concat(a.env, blas_env)

local lua = arg[-1] or "lua5.4"
local pairs_out, failures = {}, 0
print(string.format("recur vs PyTorch, %d threads%s%s%s", a.threads,
  #a.env > 0 and ", env " .. table.concat(a.env, " ") or "",
  #a.torch_env > 0 and ", PyTorch's env " .. table.concat(a.torch_env, " ") or "",
  a.quick and " (quick: not a measurement)" or ""))
print(string.format("%-24s %-46s %-46s %8s %6s", "row", "recur", "torch", "speedup", "mem"))
for _, spec in ipairs(suite.rows()) do
  if not only or only[spec[1]] then
    local tail = suite.with(spec, {"--threads", a.threads}, a.quick and suite.QUICK[spec[1]] or {})
    local runs = {recur = {}, torch = {}}
    local err
    local torch_env = suite.concat(a.env, a.torch_env)
    local function run(argv)
      local idle = a.wait_idle > 0 and suite.wait_idle(a.wait_idle, 0.9) or nil
      local row, e = suite.run(argv, argv[1] == a.python and torch_env or a.env)
      if row then row.idle_before = idle end
      return row, e
    end
    for i = 1, a["repeat"] do
      -- alternate which side goes first, so that a drift in the machine's load hits both
      local r, t, e1, e2
      if i % 2 == 1 then
        r, e1 = run(suite.concat({lua, ROOT .. "/bench/run.lua"}, tail))
        t, e2 = run(suite.concat({a.python, ROOT .. "/bench/peer_torch.py"}, tail))
      else
        t, e2 = run(suite.concat({a.python, ROOT .. "/bench/peer_torch.py"}, tail))
        r, e1 = run(suite.concat({lua, ROOT .. "/bench/run.lua"}, tail))
      end
      if not r or not t then err = e1 or e2; break end
      table.insert(runs.recur, r)
      table.insert(runs.torch, t)
    end
    if err then
      failures = failures + 1
      io.stderr:write(err, "\n")
    else
      local r, t = median_run(runs.recur), median_run(runs.torch)
      local fr, _, higher = suite.figure(r)
      local ft = suite.figure(t)
      local speedup = higher and fr / ft or ft / fr
      local mem = r.peak_rss_mb / t.peak_rss_mb
      pairs_out[#pairs_out + 1] = {recur = r, torch = t, speedup = speedup, mem_ratio = mem,
                                   recur_runs = runs.recur, torch_runs = runs.torch}
      print(string.format("%-24s %-46s %-46s %7.2fx %6.2f", suite.describe(r), suite.format(r), suite.format(t),
        speedup, mem))
      io.stdout:flush()
    end
  end
end

-- The issue's targets, for the rows that ran.
print("")
for _, p in ipairs(pairs_out) do
  if p.torch.blas_core and p.recur.blas_core and p.torch.blas_core:lower() ~= p.recur.blas_core:lower() then
    print(string.format("WARNING: OpenBLAS kernels differ: recur %s, PyTorch %s", p.recur.blas_core, p.torch.blas_core))
    break
  end
end
local function verdict(ok) return ok and "met" or "MISSED" end
local worst_speed, worst_mem, nproto = math.huge, 0, 0
for _, p in ipairs(pairs_out) do
  local r = p.recur
  if r.row == "protocol" then
    nproto = nproto + 1
    worst_speed = math.min(worst_speed, p.speedup)
    worst_mem = math.max(worst_mem, p.mem_ratio)
  elseif r.row == "layer" and r.cell == "lstm" and r.T == 100 and r.B == 64 and r.D == 512 and r.H == 512 then
    print(string.format("raw LSTM (100,64,512,512) at >= 80%% of the sgemm ceiling: %.1f%% (%s); PyTorch %.1f%%",
      100 * r.fraction_of_sgemm, verdict(r.fraction_of_sgemm >= 0.8), 100 * p.torch.fraction_of_sgemm))
  elseif r.row == "generate" then
    print(string.format("batch-1 generation >= 3x PyTorch: %.2fx (%s)", p.speedup, verdict(p.speedup >= 3)))
  end
end
if nproto > 0 then
  print(string.format("protocol >= 3x PyTorch at every size: worst %.2fx (%s); peak memory no higher: worst ratio %.2f (%s)",
    worst_speed, verdict(worst_speed >= 3), worst_mem, verdict(worst_mem <= 1)))
end

suite.write_json(a.output, {suite = "peer", threads = a.threads, env = a.env, torch_env = a.torch_env, ["repeat"] = a["repeat"], quick = a.quick,
                            date = os.date("!%Y-%m-%dT%H:%M:%SZ"), rows = pairs_out})
print("results in " .. a.output)
if failures > 0 then os.exit(1) end
