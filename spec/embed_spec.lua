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
