-- Checks of option tables and option values shared by every recur module (nn, models,
-- optim, data, decode, beam, gradcheck). Options arrive in one table; a key the
-- operation does not know is an error, never silently ignored (a typo such as
-- `bidirectonal` must not train the wrong model), and so is a value of the wrong
-- type or outside its range. Every error names the operation `op` and the option.
--
-- Errors are raised at level 3: at the caller of the function that called the check,
-- which is the user's line for a constructor or a public function.
local util = {}

-- A value as an error message shows it: strings quoted, so that "5" is not taken for 5.
local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  return tostring(v)
end
util.show = show

-- opts (nil: {}) after checking that it is a table whose keys are all in `known`
-- (a set: name -> true). `level` (3) is error's: 0 leaves the position out.
function util.check_opts(op, opts, known, level)
  level = level or 3
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    error(string.format("%s: options must be a table, got %s", op, type(opts)), level)
  end
  for k in pairs(opts) do
    if not known[k] then
      local names = {}
      for n in pairs(known) do names[#names + 1] = n end
      table.sort(names)
      error(string.format("%s: unknown option '%s' (known: %s)", op, tostring(k),
        table.concat(names, ", ")), level)
    end
  end
  return opts
end

-- v as an integer >= 1 (5.0, e.g. from JSON, is 5).
function util.check_positive_int(op, what, v)
  local i = type(v) == "number" and math.tointeger(v) or nil
  if not i or i < 1 then
    error(string.format("%s: %s must be a positive integer, got %s", op, what, show(v)), 3)
  end
  return i
end

-- opts[name] as an integer in [min (default 1), max (default none)], or `default`
-- when absent.
function util.opt_int(op, opts, name, default, min, max)
  local v = opts[name]
  if v == nil then return default end
  min = min or 1
  local i = type(v) == "number" and math.tointeger(v) or nil
  if i == nil or i < min or (max and i > max) then
    local range = max and string.format("in [%d, %d]", min, max) or string.format(">= %d", min)
    error(string.format("%s: option %s must be an integer %s, got %s", op, name, range, show(v)), 3)
  end
  return i
end

-- opts[name] as a boolean, or `default` when absent.
function util.opt_bool(op, opts, name, default)
  local v = opts[name]
  if v == nil then return default end
  if type(v) ~= "boolean" then
    error(string.format("%s: option %s must be a boolean, got %s", op, name, show(v)), 3)
  end
  return v
end

-- opts[name] as a number in [lo, hi] (either bound nil: none; `open_hi` excludes hi),
-- or `default` when absent. NaN is refused.
function util.opt_number(op, opts, name, default, lo, hi, open_hi)
  local v = opts[name]
  if v == nil then return default end
  local ok = type(v) == "number" and v == v and (lo == nil or v >= lo)
    and (hi == nil or (open_hi and v < hi) or (not open_hi and v <= hi))
  if not ok then
    local range = (lo and hi) and string.format(" in [%g, %g%s", lo, hi, open_hi and ")" or "]")
      or lo and string.format(" >= %g", lo) or hi and string.format(" <= %g", hi) or ""
    error(string.format("%s: option %s must be a number%s, got %s", op, name, range, show(v)), 3)
  end
  return v
end

-- opts[name] as one of the strings in the array `choices`, or `default` when absent.
function util.opt_choice(op, opts, name, default, choices)
  local v = opts[name]
  if v == nil then return default end
  for _, c in ipairs(choices) do
    if v == c then return v end
  end
  error(string.format("%s: option %s must be one of %s, got %s", op, name,
    table.concat(choices, ", "), show(v)), 3)
end

return util
