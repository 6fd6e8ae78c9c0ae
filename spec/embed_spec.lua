-- The C core without Lua: examples/host.c links build/librecur.a, runs an LSTM over a
-- sequence in one call and step by step, and the final states agree.
describe("embedding the C core", function()
  it("runs under Lua 5.4", function() assert.are.equal("Lua 5.4", _VERSION) end)

  it("builds and runs the host example against librecur.a", function()
    local p = io.popen("make -s host-example 2>&1")
    local out = p:read("a")
    local ok = p:close()
    assert.is_true(ok, out)
    assert.is_truthy(out:find("step-by-step vs whole sequence max |diff| = 0", 1, true), out)
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
