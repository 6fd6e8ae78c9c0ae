-- Helpers shared by the spec files: fixture loading and tensor comparison.
-- Not a spec itself (busted runs only *_spec.lua); specs load it with
-- `require "spec.support.helpers"` from the repository root, where busted runs.
local recur = require "recur"
local cjson = require "cjson"
local assert = require "luassert" -- busted's assert, in a module that busted did not load

local helpers = {}

-- The whole file as a string.
function helpers.read_all(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

function helpers.read_json(path)
  return cjson.decode(helpers.read_all(path))
end

-- spec/fixtures/nn/<name>.json (from spec/fixtures/generate_nn.py).
function helpers.nn_fixture(name)
  return helpers.read_json("spec/fixtures/nn/" .. name .. ".json")
end

-- A fixture tensor {data = flat values, shape = {...}} as a recur tensor.
function helpers.tensor(j, dtype)
  return recur.tensor(j.data, dtype or "float32"):view(j.shape)
end

-- The elements of t in row-major order, as a Lua array.
function helpers.flat(t)
  return t:reshape(-1):totable()
end

-- Largest |a - b| over two tensors of the same shape, in float64.
function helpers.max_abs_diff(a, b)
  assert.are.same(a:size(), b:size())
  return (a:to("float64") - b:to("float64")):abs():max()
end

-- A copy of every parameter gradient of a module, by name, and the names in order.
function helpers.grads_of(model)
  local map, names = model:named_gradients()
  local copy = {}
  for _, name in ipairs(names) do copy[name] = map[name]:clone() end
  return copy, names
end

-- The message of the error that f(...) must raise.
function helpers.err_of(f, ...)
  local ok, msg = pcall(f, ...)
  assert.is_false(ok)
  return tostring(msg)
end

-- f() must fail with an error whose message contains `text` (plain, not a pattern).
function helpers.assert_fails_with(f, text)
  local ok, err = pcall(f)
  assert.is_false(ok)
  assert(tostring(err):find(text, 1, true), "message was: " .. tostring(err))
end

-- For each case {args, pattern}: make(args) must fail with a message that starts
-- with "<op>: " and matches the Lua pattern (the checks of a constructor's options).
function helpers.assert_option_errors(op, make, cases)
  for _, c in ipairs(cases) do
    local msg = helpers.err_of(make, c[1])
    assert.matches("^" .. op .. ": ", msg)
    assert.matches(c[2], msg)
  end
end

-- A new empty directory under the system's temporary folder; the spec removes it
-- with remove_dir when done.
function helpers.tmp_dir()
  local path = os.tmpname()
  os.remove(path)
  assert(os.execute("mkdir -p '" .. path .. "'"))
  return path
end

function helpers.remove_dir(dir)
  os.execute("rm -rf '" .. dir .. "'")
end

-- Runs bin/recur with arguments (from the repository root); returns the exit status,
-- stdout and stderr. `redirect` (e.g. "> /dev/full") replaces the captured stdout.
-- s quoted for sh, whatever it holds.
function helpers.q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- Runs a shell command: whether it exited 0, and its standard output and error together.
function helpers.sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok = p:close()
  return ok, out
end

function helpers.run_recur(args, redirect)
  local err_path = os.tmpname()
  local p = io.popen("lua5.4 bin/recur " .. args .. " " .. (redirect or "") .. " 2>" .. err_path)
  local out = p:read("a")
  local _, _, status = p:close()
  local err = helpers.read_all(err_path)
  os.remove(err_path)
  return status, out, err
end

-- bin/recur with these arguments must fail with one line on stderr, no traceback,
-- matching the Lua pattern.
-- `recur <args>` must succeed; returns its stdout and stderr.
function helpers.run_recur_ok(args)
  local status, out, err = helpers.run_recur(args)
  assert.are.equal(0, status, args .. "\n" .. err)
  return out, err
end

function helpers.assert_one_line_error(args, pattern)
  local status, _, err = helpers.run_recur(args)
  assert.are_not.equal(0, status, args)
  local _, lines = err:gsub("\n", "")
  assert.are.equal(1, lines, "expected one line, got: " .. err)
  assert.is_nil(err:find("traceback", 1, true))
  assert.is_truthy(err:find(pattern), "'" .. err .. "' does not match " .. pattern)
end

return helpers
