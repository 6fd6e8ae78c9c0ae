-- The examples and bench scripts run after a plain `make` with no environment set:
-- each is started from a directory outside the checkout (and by relative paths from
-- inside it) with LUA_PATH and LUA_CPATH unset, for a short run through its own
-- length knob, and must exit 0 with its result line. A copy outside the checkout uses
-- recur where it is installed (here: LUA_PATH pointing at a tree, as a rock's would).
local helpers = require "spec.support.helpers"

local ROOT = io.popen("pwd"):read("l")   -- busted runs from the repository root
-- Under `make sanitize` every lua5.4 loads the sanitized recur.core first (LUA_INIT_5_4,
-- through LUA_CPATH): those two stay, and only the Lua paths are left to the scripts.
local NO_PATHS = os.getenv("LUA_INIT_5_4") and "env -u LUA_PATH -u LUA_PATH_5_4 "
  or "env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_4 -u LUA_CPATH_5_4 "

-- Runs `command` in directory `dir`; returns its exit status and stdout and stderr together.
local function run_in(dir, command)
  local p = io.popen("cd '" .. dir .. "' && " .. command .. " 2>&1")
  local out = p:read("a")
  local _, _, status = p:close()
  return status, out
end

local function assert_ran(status, out, line)
  assert.are.equal(0, status, out)
  assert.is_truthy(out:find(line, 1, true), "no '" .. line .. "' in:\n" .. out)
end

describe("examples and bench scripts with no LUA_PATH", function()
  local dir
  before_each(function() dir = helpers.tmp_dir() end)
  after_each(function() helpers.remove_dir(dir) end)

  local cases = {
    {"examples/classify.lua", "STEPS=20", "test accuracy"},
    {"examples/forecast.lua", "RECUR_FORECAST_ITERS=10", "one step ahead, val MSE"},
    {"examples/one_to_many.lua", "STEPS=10", "exact match on 100 held-out numbers"},
    {"examples/translate.lua", "RECUR_TRANSLATE_EPOCHS=1", "held-out exact match after 1 epochs"},
    {"bench/run.lua layer --cell gru --T 3 --B 2 --D 4 --H 5 --iters 1 --threads 1", "", '"row":"layer"'},
  }
  for _, c in ipairs(cases) do
    it("runs " .. c[1] .. " from another directory", function()
      local status, out = run_in(dir, NO_PATHS .. c[2] .. " lua5.4 " .. ROOT .. "/" .. c[1])
      assert_ran(status, out, c[3])
    end)
  end

  it("runs examples/demo.lua from another directory: the checkout's data in, checkpoints where it runs", function()
    local status, out = run_in(dir, NO_PATHS .. "RECUR_DEMO_SECONDS=0.5 lua5.4 " .. ROOT .. "/examples/demo.lua")
    assert_ran(status, out, "--- sample (temperature 0.8) ---")
    assert_ran(status, out, "more: lua5.4 " .. ROOT .. "/bin/recur sample")
    local f = io.open(dir .. "/cv/best.safetensors", "rb")
    assert.is_truthy(f, out)
    f:close()
  end)

  it("runs by relative paths: from its own folder, and from a sibling", function()
    local status, out = run_in(ROOT .. "/examples", NO_PATHS .. "RECUR_TRANSLATE_EPOCHS=1 lua5.4 translate.lua")
    assert_ran(status, out, "held-out exact match")
    status, out = run_in(ROOT .. "/spec", NO_PATHS .. "STEPS=5 lua5.4 ../examples/one_to_many.lua")
    assert_ran(status, out, "exact match")
    status, out = run_in(ROOT .. "/bench",
      NO_PATHS .. "lua5.4 run.lua generate --layers 1 --hidden 8 --tokens 5 --greedy --threads 1")
    assert_ran(status, out, '"row":"generate"')
  end)

  it("uses the installed recur when copied out of the checkout", function()
    os.execute("cp '" .. ROOT .. "/examples/translate.lua' '" .. dir .. "/'")
    local installed_here = run_in(dir, NO_PATHS .. "lua5.4 -e 'require \"recur\"'") == 0
    if not installed_here then   -- the copy does not reach back into the checkout
      local status, out = run_in(dir, NO_PATHS .. "RECUR_TRANSLATE_EPOCHS=1 lua5.4 translate.lua")
      assert.are_not.equal(0, status)
      assert.is_truthy(out:find("module 'recur' not found", 1, true), out)
    end
    local installed = "LUA_PATH='" .. ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;;' LUA_CPATH='"
      .. ROOT .. "/build/?.so;;' "
    local status, out = run_in(dir, installed .. "RECUR_TRANSLATE_EPOCHS=1 lua5.4 translate.lua")
    assert_ran(status, out, "held-out exact match")
  end)
end)
