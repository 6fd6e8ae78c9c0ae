-- API fuzzer: calls recur's public functions with random and boundary arguments and
-- checks that each call either returns or raises a Lua error with a string message.
-- A crash (signal, sanitizer report), a hang, or an error that is not a string is a
-- failure. Run by `make fuzz` and, with a short budget, by `make sanitize`.
--
--   lua5.4 spec/fuzz/api_fuzz.lua [--seed S] [--calls N] [--seconds S] [--chunk C]
--                                 [--timeout T] [--only I] [--verbose]
--
-- What it calls is found by walking the tables, so a new function is fuzzed without
-- being listed here: recur and recur.core, the tensor methods (getmetatable(t).__index)
-- and metamethods, the classes of recur.nn and recur.optim (constructor, then every
-- method of the instance), recur.optim.clip, recur.io (save and load into a
-- temporary directory, removed at the end), recur.models, recur.data, recur.decode and
-- recur.beam, recur.plot. Not recur.lm, recur.train and recur.progress: whole training
-- runs and terminal output, which a valid random configuration could keep busy.
--
-- Every call i is generated from (seed, i) alone, with a fresh pool of tensors, recur's
-- generator reseeded and the thread count reset: `--only I --seed S` replays call I by
-- itself (`make fuzz FUZZ_SEED=S FUZZ_ARGS='--only I'` under the sanitizers). The driver
-- runs the calls in chunks of child processes (in the temporary directory, so relative
-- paths land there) under a timeout; before each call the child writes its index and a
-- description to a log, flushed, so a crash or hang names the call. After a failure
-- the driver goes on with the next call.
--
-- Memory: sizes such as 2^31 are legitimate requests for too much memory, which must
-- become "out of memory" errors. Under the sanitizers (RECUR_SANITIZE=1) ASan refuses
-- any allocation above max_allocation_size_mb (set to 256 for the children);
-- otherwise the children run under `prlimit --as` (4 GiB).
local HERE = arg[0]:match("^(.*)/[^/]*$") or "."
-- the checkout's modules, whatever the working directory (LUA_CPATH, when set, names
-- the module to test, e.g. the sanitized build)
do
  local root = HERE .. "/../.."
  package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
  if not os.getenv("LUA_CPATH") then package.cpath = root .. "/build/?.so;" .. package.cpath end
end

local function parse_args(argv)
  local o = {seed = 1, calls = 10000, seconds = nil, chunk = 400, timeout = 300}
  local i = 1
  while i <= #argv do
    local a = argv[i]
    local function val() i = i + 1; return (assert(argv[i], a .. " needs a value")) end
    if a == "--seed" then o.seed = math.tointeger(tonumber(val()))
    elseif a == "--calls" then o.calls = math.tointeger(tonumber(val()))
    elseif a == "--seconds" then o.seconds = tonumber(val())
    elseif a == "--chunk" then o.chunk = math.tointeger(tonumber(val()))
    elseif a == "--timeout" then o.timeout = tonumber(val())
    elseif a == "--only" then o.only = math.tointeger(tonumber(val()))
    elseif a == "--child" then o.child = true
    elseif a == "--from" then o.from = math.tointeger(tonumber(val()))
    elseif a == "--to" then o.to = math.tointeger(tonumber(val()))
    elseif a == "--log" then o.log = val()
    elseif a == "--verbose" then o.verbose = true
    else error("api_fuzz: unknown argument " .. a) end
    i = i + 1
  end
  assert(o.seed and o.calls, "api_fuzz: --seed and --calls take integers")
  return o
end

local opt = parse_args(arg)

---------------------------------------------------------------------------------------
-- The child: generates and runs calls from..to.
---------------------------------------------------------------------------------------

local function child(o)
  local recur = require "recur"
  local core = require "recur.core"
  local nn = require "recur.nn"
  local optim = require "recur.optim"
  local clip = require "recur.optim.clip"
  local rio = require "recur.io"
  local models = require "recur.models"
  local data = require "recur.data"
  local decode = require "recur.decode"
  local beam = require "recur.beam"
  local plot = require "recur.plot"

  local R -- random integer in [lo, hi]
  local function pick(list) return list[R(1, #list)] end

  -- Option names the library reads (opts.x, opt.x, options.x), scraped from its
  -- sources so that option tables reach the checks behind them.
  local option_keys = {}
  do
    local seen = {}
    local p = io.popen("cat " .. HERE .. "/../../lua/recur/*.lua " .. HERE .. "/../../lua/recur/*/*.lua 2>/dev/null")
    local src = p and p:read("a") or ""
    if p then p:close() end
    for k in src:gmatch("opts?%.([%a_][%w_]*)") do
      if not seen[k] then seen[k] = true; option_keys[#option_keys + 1] = k end
    end
    for k in src:gmatch("options%.([%a_][%w_]*)") do
      if not seen[k] then seen[k] = true; option_keys[#option_keys + 1] = k end
    end
    table.sort(option_keys)
    if #option_keys == 0 then option_keys = {"lr", "bias", "dropout"} end
  end

  local SMALL = {0, 1, 1, 2, 2, 3, 3, 4, 5, -1}
  local BOUNDARY = {
    -1, -2, 2^31 // 1, 2^31 // 1 - 1, 2^32 // 1, 2^40 // 1, 2^53 // 1 + 1, 2^62 // 1,
    math.maxinteger, math.mininteger, -(2^31 // 1), -(2^62 // 1),
  }
  local FLOATS = {
    0.0, -0.0, 0.5, 1.5, -2.5, 1e-310, 1e300, -1e308, 1 / 0, -1 / 0, 0 / 0, 2.0^63,
    2.0^31, 2.0^62, -(2.0^63), 3.0, 1e-8, 0.999999,
  }
  local STRINGS = {
    "", "x", "float32", "float64", "int64", "float16", "lstm", "gru", "rnn", "tanh", "relu",
    "gru_classic", "rnn_tanh", "rnn_relu", "rnn_identity", "mean", "sum", "none", "weight",
    "bias", "\0", ("a"):rep(300), "1",
    "fuzz_file", "fuzz_dir/x", "nonexistent/y.safetensors", ("\0"):rep(32), ("\255"):rep(32),
    ("\1"):rep(31),
  }
  local DTYPES = {"float32", "float64", "int64"}

  local pool -- the tensors of the current call
  local log = o.log and assert(io.open(o.log, "w"))
  -- Logs a step of the current call before it runs (the last line names a crash).
  local function note(line)
    if log then log:write(line, "\n"); log:flush() end
    if o.verbose then io.stderr:write(line, "\n") end
  end

  local function desc(v, depth)
    depth = depth or 0
    local t = type(v)
    if t == "string" then
      if #v > 20 then return string.format("%q..(%d)", v:sub(1, 8), #v) end
      return string.format("%q", v)
    elseif t == "number" then
      if math.type(v) == "integer" then return tostring(v) end
      if v ~= v then return "0/0" elseif v == 1 / 0 then return "1/0" elseif v == -1 / 0 then return "-1/0" end
      return string.format("%.17g", v)
    elseif t == "userdata" then
      for _, e in ipairs(pool) do if e.t == v then return e.desc end end
      local ok, s = pcall(function() return "tensor" .. v:dtype() .. "{" .. table.concat(v:size(), ",") .. "}" end)
      return ok and s or "userdata"
    elseif t == "table" then
      if depth > 2 then return "{...}" end
      local parts = {}
      for k, x in pairs(v) do
        if #parts > 8 then parts[#parts + 1] = "..."; break end
        if math.type(k) == "integer" then parts[#parts + 1] = desc(x, depth + 1)
        else parts[#parts + 1] = tostring(k) .. "=" .. desc(x, depth + 1) end
      end
      return "{" .. table.concat(parts, ",") .. "}"
    end
    return tostring(t == "function" and "function" or v)
  end

  -- A tensor: a fresh one of a random small shape and dtype, possibly seen through a
  -- view (transpose, narrow, select, reshape), empty, or closed.
  local function make_tensor()
    local nd = R(0, 4)
    local size = {}
    for k = 1, nd do size[k] = R(0, 9) == 0 and 0 or R(1, 4) end
    -- an empty tensor with a huge dim: no memory, but every size product overflows
    if nd >= 2 and R(0, 9) == 0 then
      size[R(1, nd)] = pick({2^31 // 1, 2^40 // 1, 2^62 // 1, math.maxinteger})
      size[R(1, nd)] = 0
      local zero = false
      for k = 1, nd do zero = zero or size[k] == 0 end
      if not zero then size[1] = 0 end
    end
    local dtype = pick(DTYPES)
    local d = dtype == "int64" and "zeros" or "randn"
    local ok, t = pcall(recur[d], size, dtype)
    if not ok then size = {0}; nd = 1; t = recur[d](size, dtype) end -- a refused shape
    if dtype == "int64" and R(0, 1) == 1 then pcall(function() t:fill_(R(-3, 3)) end) end
    d = string.format("recur.%s({%s},%q)", d, table.concat(size, ","), dtype)
    local which = R(0, 9)
    if which == 0 and nd == 2 then t = t:t(); d = d .. ":t()"
    elseif which == 1 and nd >= 1 and size[1] >= 1 then
      local start = R(1, size[1]); local len = R(0, size[1] - start + 1)
      t = t:narrow(1, start, len); d = d .. string.format(":narrow(1,%d,%d)", start, len)
    elseif which == 2 and nd >= 1 and size[1] >= 1 then
      local k = R(1, size[1]); t = t:select(1, k); d = d .. string.format(":select(1,%d)", k)
    elseif which == 3 and nd >= 3 then
      t = t:transpose(1, 3); d = d .. ":transpose(1,3)"
    elseif which == 4 then
      t:close(); d = d .. " (closed)"
    end
    pool[#pool + 1] = {t = t, desc = d}
    return t
  end

  local function tensor_arg()
    if #pool > 0 and R(0, 2) > 0 then return pick(pool).t end
    return make_tensor()
  end

  local gen_value
  local function gen_table(depth)
    local k = R(0, 6)
    local t = {}
    if k == 0 then return t
    elseif k == 1 then for i = 1, R(1, 4) do t[i] = pick(SMALL) end
    elseif k == 2 then for i = 1, R(1, 3) do t[i] = pick(BOUNDARY) end
    elseif k == 3 then for i = 1, R(1, 3) do t[i] = tensor_arg() end
    elseif k == 4 then -- an options table with names the library reads
      for _ = 1, R(1, 4) do t[pick(option_keys)] = gen_value(depth + 1) end
    elseif k == 5 then for _ = 1, R(1, 3) do t[pick(STRINGS)] = tensor_arg() end
    else for i = 1, R(1, 3) do t[i] = gen_value(depth + 1) end end
    return t
  end

  function gen_value(depth)
    depth = depth or 0
    local k = R(0, 19)
    if k <= 5 then return tensor_arg()
    elseif k <= 9 then return pick(SMALL)
    elseif k <= 11 then return pick(BOUNDARY)
    elseif k <= 13 then return pick(FLOATS)
    elseif k <= 15 then return pick(STRINGS)
    elseif k <= 16 and depth < 2 then return gen_table(depth)
    elseif k == 17 then return R(0, 1) == 1
    elseif k == 18 then return function() return 1 end
    end
    return nil
  end

  local function gen_args(max)
    local n = R(0, max or 4)
    local args = {n = n}
    for i = 1, n do args[i] = gen_value() end
    return args
  end

  -- A small module's parameters, for the optimizers and clipping.
  local function param_source()
    local k = R(0, 3)
    if k <= 1 then
      local ok, m = pcall(nn.Linear, R(1, 3), R(1, 3))
      if ok then return m end
    elseif k == 2 then -- {param, grad} pairs
      local pairs_ = {}
      for j = 1, R(0, 2) do
        local p = tensor_arg()
        pairs_[j] = {p, R(0, 2) == 0 and tensor_arg() or select(2, pcall(p.clone, p))}
      end
      return pairs_
    end
    return gen_value()
  end

  -- The targets, each {name, fn(): call description, thunk}.
  local targets = {}
  local function add_target(name, run) targets[#targets + 1] = {name = name, run = run} end

  local function sorted_keys(t)
    local ks = {}
    for k in pairs(t) do if type(k) == "string" then ks[#ks + 1] = k end end
    table.sort(ks)
    return ks
  end

  local function plain_function_targets(prefix, mod)
    for _, k in ipairs(sorted_keys(mod)) do
      if type(mod[k]) == "function" then
        add_target(prefix .. "." .. k, function()
          local args = gen_args()
          return args, function() return mod[k](table.unpack(args, 1, args.n)) end
        end)
      end
    end
  end

  plain_function_targets("recur", recur)
  plain_function_targets("recur.core", core)
  plain_function_targets("recur.optim.clip", clip)
  plain_function_targets("recur.io", rio)
  plain_function_targets("recur.nn", nn)
  plain_function_targets("recur.nn.init", nn.init)

  -- recur.io round trip with tensors of the pool.
  add_target("recur.io.save+load", function()
    local named = {}
    for i = 1, R(0, 3) do named[pick({"a", "b", "w.x", "", "\0"}) .. i] = tensor_arg() end
    local meta = R(0, 1) == 1 and gen_table(0) or nil
    local path = pick({"fuzz.safetensors", "fuzz_dir/x.safetensors", "", "."})
    local args = {path, named, meta, n = 3}
    return args, function()
      rio.save(path, named, meta)
      local ts = rio.load(path)
      for _, t in pairs(ts) do t:sum() end
    end
  end)

  -- Tensor methods and metamethods, self drawn from the pool (sometimes not a tensor).
  local tmt = getmetatable(recur.zeros(1))
  for _, k in ipairs(sorted_keys(tmt.__index)) do
    add_target("tensor:" .. k, function()
      local self = R(0, 15) == 0 and gen_value() or tensor_arg()
      local args = gen_args()
      local all = {self, n = args.n + 1}
      for j = 1, args.n do all[j + 1] = args[j] end
      return all, function() return tmt.__index[k](self, table.unpack(args, 1, args.n)) end
    end)
  end
  for _, k in ipairs(sorted_keys(tmt)) do
    if type(tmt[k]) == "function" and k ~= "__gc" then
      add_target("tensor." .. k, function()
        local a, b = tensor_arg(), R(0, 2) == 0 and gen_value() or tensor_arg()
        if R(0, 3) == 0 then a, b = b, a end
        return {a, b, n = 2}, function() return tmt[k](a, b) end
      end)
    end
  end

  -- Classes: constructor with random arguments, then each method of the instance.
  local function class_methods(inst)
    local seen, names = {}, {}
    local t = inst
    for _ = 1, 8 do
      local mt = getmetatable(t)
      if type(mt) ~= "table" then break end
      local idx = rawget(mt, "__index")
      if type(idx) ~= "table" then break end
      for k, v in pairs(idx) do
        if type(k) == "string" and type(v) == "function" and not seen[k] and not k:match("^__") then
          seen[k] = true; names[#names + 1] = k
        end
      end
      t = idx
    end
    table.sort(names)
    return names
  end

  local function class_targets(prefix, mod, ctor_args)
    for _, k in ipairs(sorted_keys(mod)) do
      local class = mod[k]
      local mt = type(class) == "table" and getmetatable(class)
      if mt and mt.__call then
        add_target(prefix .. "." .. k, function()
          local args = ctor_args(class)
          return args, function()
            local inst = class(table.unpack(args, 1, args.n))
            -- a few method calls on the new instance, each with random arguments
            local names = class_methods(inst)
            if #names == 0 then return end
            for _ = 1, R(1, 4) do
              local m = pick(names)
              local margs = gen_args(3)
              if R(0, 1) == 1 then margs[1] = tensor_arg(); margs.n = math.max(margs.n, 1) end
              local parts = {}
              for j = 1, margs.n do parts[j] = desc(margs[j]) end
              note("  then :" .. m .. "(" .. table.concat(parts, ", ") .. ")")
              -- each method in its own pcall: one failing method is not the end
              pcall(inst[m], inst, table.unpack(margs, 1, margs.n))
            end
          end
        end)
      end
    end
  end

  -- The models and the data classes: an options table with the names the library reads.
  local function options_ctor()
    local t = {}
    for _ = 1, R(0, 6) do
      local k = R(0, 5)
      t[pick(option_keys)] = k <= 2 and pick(SMALL) or k == 3 and pick(STRINGS) or gen_value(1)
    end
    if R(0, 1) == 1 then t.vocab_size = pick(SMALL) end
    return R(0, 4) == 0 and gen_args(3) or {t, gen_value(1), n = 2}
  end
  class_targets("recur.models", models, options_ctor)
  class_targets("recur.data", data, options_ctor)
  class_targets("recur.data.series", data.series, options_ctor)
  plain_function_targets("recur.data", data)
  plain_function_targets("recur.data.series", data.series)
  plain_function_targets("recur.decode", decode)
  plain_function_targets("recur.beam", beam)
  plain_function_targets("recur.plot", plot)
  -- loss curves from records a diverged run could log
  add_target("recur.plot.loss_svg records", function()
    local records = {}
    for i = 1, R(0, 5) do
      records[i] = {iter = R(0, 2) == 0 and gen_value(1) or i, train_loss = pick(FLOATS),
                    val_loss = R(0, 1) == 0 and pick(FLOATS) or nil}
    end
    return {records, n = 1}, function() return plot.loss_svg(records) end
  end)

  class_targets("recur.nn", nn, function()
    local args = gen_args(3)
    if R(0, 1) == 1 then args = {R(1, 3), R(1, 3), R(0, 1) == 1 and gen_table(0) or nil, n = 3} end
    return args
  end)
  class_targets("recur.optim", optim, function(class)
    local opts
    local k = R(0, 3)
    if k <= 1 then -- a learning rate and the class's own options (its defaults), mutated
      opts = {lr = pick({0.1, 0.01, 1, 0, -1, 0 / 0, 1 / 0, 1e300, 2^62 // 1})}
      local defaults = rawget(class, "defaults")
      if type(defaults) == "table" then
        for key, v in pairs(defaults) do
          if R(0, 2) == 0 then
            local tv = type(v)
            opts[key] = R(0, 5) == 0 and gen_value(1) or tv == "boolean" and R(0, 1) == 1 or
              tv == "table" and {pick(FLOATS), pick(FLOATS)} or tv == "number" and
              (R(0, 1) == 1 and pick(FLOATS) or pick(SMALL)) or v
          end
        end
      end
      if R(0, 3) == 0 then opts[pick(option_keys)] = gen_value(1) end
    elseif k == 2 then opts = gen_table(0)
    else opts = gen_value() end
    return {param_source(), opts, gen_value(), n = 3}
  end)

  -- A forward/backward round through a recurrent layer with matching shapes, so that
  -- the kernels see T=0, B=0 and friends and not just argument checks.
  for _, cls in ipairs({"RNN", "GRU", "LSTM", "Recurrent", "Linear", "Embedding", "Dropout"}) do
    if nn[cls] then
      add_target("recur.nn." .. cls .. " forward/backward", function()
        local D, H = R(1, 3), R(1, 3)
        local T, B = pick({0, 1, 2, 3}), pick({0, 1, 2})
        local dtype = pick({"float32", "float64"})
        local opts = R(0, 1) == 1 and gen_table(0) or {}
        local ctor = (cls == "Dropout") and {R(0, 1) == 1 and 0.5 or pick(FLOATS)} or
          (cls == "Recurrent") and {pick({"lstm", "gru", "rnn_tanh", "rnn_relu", "rnn_identity", "rnn", "gru_classic"}), D, H, opts} or
          {D, H, opts}
        local x
        if cls == "Embedding" then
          x = recur.zeros({T, B}, "int64"); pcall(function() x:fill_(R(0, 4)) end)
        elseif cls == "Linear" or cls == "Dropout" then x = recur.randn({B, D}, dtype)
        else x = recur.randn({T, B, D}, dtype) end
        local args = {cls, ctor, x, n = 3}
        return args, function()
          local m = nn[cls](table.unpack(ctor))
          if dtype == "float64" and m.to then m:to("float64") end
          local y = m:forward(x)
          if type(y) == "table" and not getmetatable(y) then y = y[1] end
          if recur.core and type(y) == "userdata" then
            m:backward(x, y:clone())
          end
        end
      end)
    end
  end

  if o.list then return targets end

  local errors, last_err = 0, nil
  local threads0 = recur.get_num_threads()
  local t0 = os.time()
  for i = o.from, o.to do
    math.randomseed(o.seed, i)
    R = math.random
    pool = {}
    recur.manual_seed(i)
    -- a setting an earlier call changed would make the replay of one call differ
    if recur.get_num_threads() ~= threads0 then recur.set_num_threads(threads0) end
    local target = targets[R(1, #targets)]
    note(string.format("seed %d call %d: generating arguments for %s", o.seed, i, target.name))
    local gen_ok, args, thunk = pcall(target.run)
    if not gen_ok then -- the fuzzer's own bug: say so, and do not count it as a call
      io.stdout:write("GENERATOR ERROR at call ", i, ": ", tostring(args), "\n")
      os.exit(4)
    end
    local parts = {}
    for k = 1, args.n or #args do parts[k] = desc(args[k]) end
    local line = string.format("seed %d call %d: %s(%s)", o.seed, i, target.name, table.concat(parts, ", "))
    note(line)
    local ok, err = pcall(thunk)
    if not ok then
      errors = errors + 1
      if type(err) ~= "string" then
        io.stdout:write("FAIL non-string error (", type(err), ") ", line, "\n")
        os.exit(3)
      end
      last_err = err
      if o.verbose then io.stderr:write("  -> error: ", err, "\n") end
    elseif o.verbose then io.stderr:write("  -> ok\n") end
    pool = nil
    if i % 8 == 0 then collectgarbage() end
  end
  if log then log:close() end
  io.stdout:write(string.format("DONE %d %d %d\n", o.to - o.from + 1, errors, os.time() - t0))
  return last_err
end

if opt.child then
  child(opt)
  os.exit(0)
end

if opt.only then
  opt.from, opt.to, opt.verbose = opt.only, opt.only, true
  child(opt)
  os.exit(0)
end

---------------------------------------------------------------------------------------
-- The driver: chunks of calls in child processes, a failure per crash or hang.
---------------------------------------------------------------------------------------

local function sh_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function read_file(path)
  local f = io.open(path, "r")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

local function last_line(s)
  local last
  for l in s:gmatch("[^\n]+") do last = l end
  return last
end

local script = arg[0]:sub(1, 1) == "/" and arg[0] or (os.getenv("PWD") .. "/" .. arg[0])
local root = script:match("^(.*)/spec/fuzz/[^/]*$") or "."
local tmp = assert(io.popen("mktemp -d /tmp/recur-fuzz.XXXXXX")):read("l")
local lua = os.getenv("LUA") or "lua5.4"
-- the children find the checkout's modules whatever their working directory
local lpath = string.format("%s/lua/?.lua;%s/lua/?/init.lua;%s", root, root, os.getenv("LUA_PATH") or ";;")
local cpath = os.getenv("LUA_CPATH") or (root .. "/build/?.so;;")
if not cpath:find("/", 1, true) then cpath = root .. "/build/?.so;" .. cpath end
local env = string.format("LUA_PATH=%s LUA_CPATH=%s", sh_quote(lpath), sh_quote(cpath))
local limit
if os.getenv("RECUR_SANITIZE") == "1" then
  env = env .. " ASAN_OPTIONS=" .. sh_quote((os.getenv("ASAN_OPTIONS") or "") ..
    ":allocator_may_return_null=1:max_allocation_size_mb=256")
  limit = ""
else
  limit = "prlimit --as=" .. (4 << 30) .. " "
end

local failures, calls, errors = {}, 0, 0
local start = os.time()
local from = 1
io.stdout:write(string.format("api_fuzz: seed %d, %d calls%s, chunks of %d (logs in %s)\n",
  opt.seed, opt.calls, opt.seconds and string.format(" or %d s", opt.seconds) or "", opt.chunk, tmp))
while from <= opt.calls do
  if opt.seconds and os.time() - start >= opt.seconds then break end
  local to = math.min(opt.calls, from + opt.chunk - 1)
  local logf, outf = tmp .. "/calls.log", tmp .. "/child.out"
  local cmd = string.format("cd %s && %s timeout -k 5 %d %s%s %s --child --seed %d --from %d --to %d --log %s > %s 2>&1",
    sh_quote(tmp), env, opt.timeout, limit, lua, sh_quote(script), opt.seed, from, to, sh_quote(logf), sh_quote(outf))
  local _, how, code = os.execute(cmd)
  local out = read_file(outf)
  local done_n, done_err = out:match("DONE (%d+) (%d+)")
  if how == "exit" and code == 0 and done_n then
    calls = calls + tonumber(done_n)
    errors = errors + tonumber(done_err)
    from = to + 1
  else
    local log = read_file(logf)
    local line, step
    for l in log:gmatch("[^\n]+") do
      if l:match("^seed") then line, step = l, nil else step = l end
    end
    line = line and (step and line .. "\n   " .. step or line) or "(no call logged: the child failed to start)"
    local at = tonumber(line:match("call (%d+)")) or to
    local what = (how == "exit" and code == 124) and "hang (timeout " .. opt.timeout .. " s)" or
      string.format("crash (%s %s)", how, tostring(code))
    local report = out:match("FAIL[^\n]*") or out:match("GENERATOR[^\n]*") or out:match("(ERROR: AddressSanitizer[^\n]*)") or
      out:match("(runtime error:[^\n]*)") or last_line(out) or ""
    failures[#failures + 1] = string.format("%s at %s\n    %s", what, line, report)
    io.stdout:write("FAILURE ", failures[#failures], "\n")
    io.stdout:write(string.format("  replay: make fuzz FUZZ_SEED=%d FUZZ_ARGS='--only %d'\n", opt.seed, at))
    local excerpt = {}
    for l in out:gmatch("[^\n]+") do
      if #excerpt < 25 and (l:match("^%s+#%d") or l:match("ERROR") or l:match("error") or l:match("SUMMARY")) then
        excerpt[#excerpt + 1] = "  | " .. l
      end
    end
    io.stdout:write(table.concat(excerpt, "\n"), "\n")
    calls = calls + (at - from + 1)
    from = at + 1
  end
  io.stdout:flush()
end
os.execute("rm -rf " .. sh_quote(tmp))
io.stdout:write(string.format("api_fuzz: %d calls (%d raised errors), %d failures, %d s\n",
  calls, errors, #failures, os.time() - start))
for _, f in ipairs(failures) do io.stdout:write("  ", f, "\n") end
os.exit(#failures == 0 and 0 or 1)
