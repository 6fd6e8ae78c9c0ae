-- A busted helper (.busted: helper = ...) that fails the run when a spec leaves
-- something behind in the system's temporary folder. Every name os.tmpname hands out
-- during the run (helpers.tmp_dir uses it too) is recorded with the spec line that
-- asked for it; when the suite ends, whatever still exists under that name, or under a
-- name that extends it (a spec's "<name>.err"), is listed, removed, and the run exits
-- non-zero. A spec cleans up with finally() or after_each.
local busted = require "busted"

local created = {}   -- {path, where}
local tmpname = os.tmpname

-- The first spec file on the stack: where the name was asked for.
local function caller()
  for level = 3, 30 do
    local info = debug.getinfo(level, "Sl")
    if not info then break end
    if info.short_src:match("_spec%.lua$") then return info.short_src .. ":" .. info.currentline end
  end
  return "?"
end

os.tmpname = function()   -- luacheck: ignore (the guard replaces it for the whole run)
  local path = tmpname()
  created[#created + 1] = {path, caller()}
  return path
end

local function exists(path)
  -- os.rename of a path onto itself succeeds for files and folders alike.
  return os.rename(path, path) ~= nil
end

-- The paths still there: the names handed out, and the entries of their folders whose
-- names start with one of them.
local function leftovers()
  local left, by_folder = {}, {}
  for _, c in ipairs(created) do
    local folder, name = c[1]:match("^(.*)/([^/]+)$")
    if folder then
      by_folder[folder] = by_folder[folder] or {}
      by_folder[folder][#by_folder[folder] + 1] = {name, c[2]}
    elseif exists(c[1]) then
      left[#left + 1] = c
    end
  end
  for folder, names in pairs(by_folder) do
    local ls = io.popen("ls -A '" .. folder .. "' 2>/dev/null")
    for entry in ls:lines() do
      for _, n in ipairs(names) do
        if entry:sub(1, #n[1]) == n[1] then
          left[#left + 1] = {folder .. "/" .. entry, n[2]}
          break
        end
      end
    end
    ls:close()
  end
  table.sort(left, function(a, b) return a[1] < b[1] end)
  return left
end

busted.subscribe({"exit"}, function()
  local left = leftovers()
  if #left == 0 then return nil, true end
  io.stderr:write(string.format("\nspecs left %d temporary path(s) behind (now removed):\n", #left))
  for _, c in ipairs(left) do
    io.stderr:write("  ", c[1], "  from ", c[2], "\n")
    os.execute("rm -rf '" .. c[1] .. "'")
  end
  os.exit(1)
end)
