-- recur.io and the recur.core system bindings under faults that could lose data: a
-- full disk (/dev/full gives ENOSPC), Ctrl-C during a save (Lua's "interrupted!"
-- error, raised here by a stubbed fsync), temporaries left by a killed save, and two
-- runs locking one checkpoint directory.
local helpers = require "spec.support.helpers"
local recur = require "recur"
local core = require "recur.core"
local rio = recur.io

local tmp_dir, remove_dir = helpers.tmp_dir, helpers.remove_dir

local function touch(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text or "x")
  f:close()
end

local function sorted(t)
  table.sort(t)
  return t
end

describe("checked writes", function()
  it("reports a full disk, naming what was written", function()
    local f = assert(io.open("/dev/full", "w"))
    local ok, err = pcall(rio.write, f, "the log '/dev/full'", "one line\n")
    f:close()
    assert.is_false(ok)
    assert.are.equal("cannot write the log '/dev/full': No space left on device", err)
    ok, err = pcall(rio.write_file, "/dev/full", "<svg/>", "plot")
    assert.is_false(ok)
    assert.are.equal("plot: cannot write '/dev/full': No space left on device", err)
    ok, err = pcall(rio.write_file, "/nonexistent/dir/x.svg", "<svg/>", "plot")
    assert.is_false(ok)
    assert.matches("^plot: cannot write '/nonexistent/dir/x.svg': ", err)
  end)

  it("writes and reads back a file", function()
    local path = os.tmpname()
    finally(function() os.remove(path) end)
    rio.write_file(path, "abc", "spec")
    assert.are.equal("abc", assert(io.open(path)):read("a"))
  end)
end)

describe("an interrupt during a save", function()
  local original = core.io_fsync
  after_each(function() core.io_fsync = original end)

  local function interrupt_on_call(n)
    local calls = 0
    core.io_fsync = function(path)
      calls = calls + 1
      if calls == n then error("lua/recur/io.lua:1: interrupted!", 0) end
      return original(path)
    end
  end

  it("is raised again unchanged, the old file kept and no temporary left", function()
    local dir = tmp_dir()
    finally(function() remove_dir(dir) end)
    local path = dir .. "/a.safetensors"
    rio.save(path, {w = recur.ones(3)})
    interrupt_on_call(1) -- the temporary file's sync
    local ok, err = pcall(rio.save, path, {w = recur.zeros(3)})
    assert.is_false(ok)
    assert.are.equal("lua/recur/io.lua:1: interrupted!", err)
    assert.are.same({"a.safetensors"}, core.list_dir(dir))
    assert.are.same({1, 1, 1}, rio.load(path).w:totable())
  end)

  it("is not swallowed by the directory's sync after the rename", function()
    local dir = tmp_dir()
    finally(function() remove_dir(dir) end)
    local path = dir .. "/a.safetensors"
    interrupt_on_call(2) -- the directory's sync: the new file is complete
    local ok, err = pcall(rio.save, path, {w = recur.ones(2)})
    assert.is_false(ok)
    assert.are.equal("lua/recur/io.lua:1: interrupted!", err)
    assert.are.same({1, 1}, rio.load(path).w:totable())
  end)

  it("is recognised by is_interrupt only as Lua's message", function()
    assert.is_true(rio.is_interrupt("interrupted!"))
    assert.is_true(rio.is_interrupt("x.lua:3: interrupted!"))
    assert.is_false(rio.is_interrupt("interrupted! or not"))
    assert.is_false(rio.is_interrupt({}))
  end)
end)

describe("stale temporaries", function()
  it("removes only names of the save's temporary pattern", function()
    local dir = tmp_dir()
    finally(function() remove_dir(dir) end)
    for _, name in ipairs({"last.safetensors.tmp-0badc0de", "best.safetensors.tmp-12345678",
                           "last.safetensors", "notes.tmp-123", "x.tmp-1234567g", ".tmp-12345678"}) do
      touch(dir .. "/" .. name)
    end
    assert.are.same({"best.safetensors.tmp-12345678", "last.safetensors.tmp-0badc0de"},
      rio.remove_stale_tmp(dir))
    assert.are.same({".tmp-12345678", "last.safetensors", "notes.tmp-123", "x.tmp-1234567g"},
      sorted(core.list_dir(dir)))
  end)
end)

describe("system bindings for checkpoint directories", function()
  it("make_dir creates, accepts an existing directory, and names what failed", function()
    local dir = tmp_dir()
    finally(function() remove_dir(dir) end)
    core.make_dir(dir)
    core.make_dir(dir .. "/sub")
    assert.are.same({"sub"}, core.list_dir(dir))
    touch(dir .. "/file")
    assert.has_error(function() core.make_dir(dir .. "/file") end,
      "make_dir: cannot create '" .. dir .. "/file': it exists and is not a directory")
    assert.has_error(function() core.make_dir("/etc/passwd/x") end,
      "make_dir: cannot create '/etc/passwd/x': Not a directory")
    assert.has_error(function() core.list_dir(dir .. "/none") end,
      "list_dir: cannot open '" .. dir .. "/none': No such file or directory")
  end)

  it("lock_file: a second lock conflicts and names the holder's pid until unlocked", function()
    local dir = tmp_dir()
    finally(function() remove_dir(dir) end)
    local path = dir .. "/lock"
    local first = assert(core.lock_file(path))
    assert.is_true(first:held())
    local pid = assert(io.open(path)):read("l")
    assert.matches("^%d+$", pid)
    -- flock belongs to the open file description: a second open in this process conflicts
    local second, holder = core.lock_file(path)
    assert.is_nil(second)
    assert.are.equal(pid .. "\n", holder)
    -- and so does another process
    local child = io.popen("lua5.4 -e 'package.cpath = \"build/?.so;\" .. package.cpath; "
      .. "local l, h = require(\"recur.core\").lock_file(\"" .. path .. "\"); io.write(tostring(l), \" \", h)'")
    assert.are.equal("nil " .. pid .. "\n", child:read("a"))
    child:close()
    first:unlock()
    assert.is_false(first:held())
    do
      local third <close> = assert(core.lock_file(path))
      assert.is_true(third:held())
    end
    -- <close> released it
    local fourth = assert(core.lock_file(path))
    fourth:unlock()
    assert.has_error(function() core.lock_file(dir .. "/none/lock") end,
      "lock_file: cannot open '" .. dir .. "/none/lock': No such file or directory")
  end)
end)
