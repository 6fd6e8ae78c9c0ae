-- The C core without Lua: examples/host.c links build/librecur.a, runs an LSTM over a
-- sequence in one call and step by step, and the final states agree.
describe("embedding the C core", function()
  it("runs under Lua 5.4", function() assert.are.equal("Lua 5.4", _VERSION) end)

  it("builds and runs the host example against librecur.a", function()
    local p = io.popen("make -s host-example 2>&1")
    local out = p:read("a")
    local ok = p:close()
    assert.is_true(ok, out)
    -- to rounding: at B = 2 the whole sequence runs recur's kernels, a lone step BLAS
    local diff = tonumber(out:match("step%-by%-step vs whole sequence max |diff| = (%S+)\n"))
    assert.is_true(diff ~= nil and diff < 1e-6, out)
  end)
end)

-- What loading recur changes in the process that hosts it: nothing a host can see.
describe("a host process", function()
  local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
  local paths = string.format("LUA_PATH=%s LUA_CPATH=%s ", shell_quote(package.path), shell_quote(package.cpath))

  local function run(cmd)
    local p = io.popen(cmd .. " 2>&1")
    local out = p:read("a")
    return p:close(), out
  end

  it("keeps its collector mode, environment and thread count after require 'recur'", function()
    -- the environment is read through a child shell, which inherits it as it stands
    local chunk = [[
      local function env()
        local p = io.popen("env | LC_ALL=C sort")
        local text = p:read("a"); p:close(); return text
      end
      collectgarbage("generational")
      local before = env()
      local recur = require "recur"
      local x = recur.randn(64, 8, 32)
      local lstm = recur.nn.LSTM(32, 48)
      local y = lstm:forward(x)
      lstm:backward(x, y:clone():fill_(1))
      local after = env()
      print("mode", collectgarbage("generational"))
      print("env", before == after and "same" or ("changed:\n" .. before .. "\n--\n" .. after))
    ]]
    local ok, out = run("env -u OMP_NUM_THREADS -u OPENBLAS_CORETYPE " .. paths .. "lua5.4 -e " .. shell_quote(chunk))
    assert.is_true(ok, out)
    assert.is_truthy(out:find("mode\tgenerational", 1, true), out)
    assert.is_truthy(out:find("env\tsame", 1, true), out)
  end)

  it("linked with -rdynamic keeps its own functions, and recur its own", function()
    local exe = os.tmpname()
    finally(function() os.remove(exe) end)
    local ok, out = run(string.format("cc -O1 -I/usr/include/lua5.4 spec/c/namesake_host.c -o %s -rdynamic "
      .. "-Wl,-Bstatic -llua5.4 -Wl,-Bdynamic -lm -ldl", exe))
    assert.is_true(ok, out)
    local chunk = [[
      local recur = require "recur"
      local g = recur.tensor({3, 4})          -- norm 5
      local n = recur.optim.clip_grad_norm({g}, 100)
      assert(math.abs(n - 5) < 1e-6, "clip_grad_norm gave " .. n)
      assert(recur.optim.clip_grad_norm({g}, math.huge, math.huge) == 4)
    ]]
    ok, out = run(paths .. exe .. " " .. shell_quote(chunk))
    assert.is_true(ok, out)
  end)
end)

-- The module is built with -fvisibility=hidden (Makefile): a host that links Lua
-- statically with -rdynamic must not see recur's kernels or tensor functions, or it
-- could bind a namesake of its own to them. Whatever core.so this run loads (build/ or
-- the sanitized build-san/) exports luaopen_* and nothing else.
describe("symbol hiding", function()
  it("recur/core.so exports only luaopen_* functions", function()
    local path = assert(package.searchpath("recur.core", package.cpath))
    local p = io.popen("nm -D --defined-only '" .. path .. "' 2>&1")
    local out = p:read("a")
    local ok = p:close()
    assert.is_true(ok, out)
    local names = {}
    for name in out:gmatch("%x+ %a ([^\n]+)") do names[#names + 1] = name end
    assert.is_true(#names >= 1, out)
    for _, name in ipairs(names) do
      assert.is_truthy(name:match("^luaopen_"), path .. " exports " .. name)
    end
  end)
end)
