-- Not an example: the package paths of the scripts that sit in a checkout
-- (examples/*.lua, bench/*.lua). When the running script (arg[0]) is one folder below
-- the root of a checkout, the checkout's lua/ and build/ go in front of package.path
-- and package.cpath, so that after a plain `make` `lua5.4 examples/classify.lua` runs
-- from any directory with no LUA_PATH set. bin/recur does the same for itself.
--
-- A module cannot be required before the paths are set, so each script loads this file
-- by a path relative to its own; an example copied out of the checkout does not find
-- it and uses recur where it is installed (a rock: the default paths):
--
--   local checkout = loadfile((arg[0]:match("^(.*)/") or ".") .. "/checkout.lua")
--   if checkout then checkout() end
--
-- Returns the root of the checkout (".", "..", "/home/me/recur"), or nil when the
-- folder above the script holds no lua/recur.

-- The folder above d, without piling up "x/.." segments where it can be avoided.
local function parent(d)
  if d == "." then return ".." end
  local up, last = d:match("^(.*)/([^/]+)$")
  if not up then up, last = ".", d end          -- a single name: "examples"
  if last == "." or last == ".." then return d .. "/.." end
  return up == "" and "/" or up
end

local script = arg and arg[0] or ""
local root = parent(script:match("^(.*)/") or ".")
local f = io.open(root .. "/lua/recur/init.lua", "r")
if not f then return nil end
f:close()
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
package.cpath = root .. "/build/?.so;" .. package.cpath
return root
