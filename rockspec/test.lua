-- `luarocks test` (rockspec: test.type = "command"): builds the module, then runs the
-- busted specs with the Lua that luarocks runs, if busted is installed; luarocks's own
-- busted test type would fetch busted from the network when no busted rock is
-- installed, although Debian's lua-busted is. Extra arguments go to busted:
--   luarocks test -- spec/lm_spec.lua
local ok = os.execute("make -s all")
if not ok then
  io.stderr:write("luarocks test: make failed\n")
  os.exit(1)
end
local has_busted, runner = pcall(require, "busted.runner")
if not has_busted then
  io.stderr:write("luarocks test: busted is not installed (Debian: apt-get install lua-busted; "
    .. "elsewhere: luarocks install busted)\n")
  os.exit(1)
end
-- busted reads its options from the global arg, and the paths from .busted
runner({standalone = false})
