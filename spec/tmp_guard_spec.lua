-- spec/support/tmp_guard.lua, the busted helper that fails a run leaving temporary
-- paths behind: run busted on a spec that leaks a file and a folder, and on one that
-- cleans up in finally().
local helpers = require "spec.support.helpers"

local function busted_on(dir, body)
  local path = dir .. "/case_spec.lua"
  local f = assert(io.open(path, "w"))
  f:write(body)
  f:close()
  local p = io.popen("busted --lua=lua5.4 --helper=spec/support/tmp_guard.lua '" .. path .. "' 2>&1")
  local out = p:read("a")
  local _, _, status = p:close()
  return status, out
end

describe("the temporary-path guard", function()
  it("fails a run that leaves paths behind, names the spec line, and removes them", function()
    local dir = helpers.tmp_dir()
    finally(function() helpers.remove_dir(dir) end)
    local status, out = busted_on(dir, [[
      local helpers = require "spec.support.helpers"
      it("leaks", function()
        local file, folder = os.tmpname(), helpers.tmp_dir()
        os.remove(file)
        io.open(file .. ".err", "w"):close()   -- named after a handed-out name
        io.open("]] .. dir .. [[/leaked", "w"):write(file .. ".err", "\n", folder, "\n")
      end)
    ]])
    assert.are_not.equal(0, status, out)
    assert.is_truthy(out:find("specs left 2 temporary path(s) behind", 1, true), out)
    assert.is_truthy(out:find("case_spec.lua:3", 1, true), out)
    for path in io.lines(dir .. "/leaked") do
      assert.is_nil(os.rename(path, path), path .. " still exists")
    end
  end)

  it("passes a run whose specs clean up", function()
    local dir = helpers.tmp_dir()
    finally(function() helpers.remove_dir(dir) end)
    local status, out = busted_on(dir, [[
      it("cleans up", function()
        local file = os.tmpname()
        finally(function() os.remove(file) end)
      end)
    ]])
    assert.are.equal(0, status, out)
    assert.is_nil(out:find("temporary path", 1, true), out)
  end)
end)
