-- Reading training text from files.
--   read_text(path)   -> the whole file as a string (bytes as stored; UTF-8 expected)
--   read_splits(opts) -> train, val, test strings, from one file cut by fractions
--                        ({path=, val_frac=0.05, test_frac=0}) or from separate files
--                        ({train=, val=, test=}; val and test optional, nil when absent)
local util = require("recur.util")
local split = require("recur.data.split")

local text = {}

function text.read_text(path)
  if type(path) ~= "string" then
    error("read_text: expected a file path (string), got " .. type(path), 2)
  end
  local f, err = io.open(path, "rb")
  if not f then
    -- io.open reports "<path>: <reason>"; keep the reason only, the path is quoted below.
    local reason = err and err:gsub("^" .. path:gsub("%p", "%%%0") .. ": ", "") or "unknown error"
    error(string.format("read_text: cannot open '%s': %s", path, reason), 2)
  end
  local s, rerr = f:read("a")
  f:close()
  if s == nil then
    -- A directory opens on Linux but fails on read.
    error(string.format("read_text: cannot read '%s': %s", path, tostring(rerr)), 2)
  end
  if #s == 0 then
    error(string.format("read_text: '%s' is empty", path), 2)
  end
  return s
end

local known = { path = true, val_frac = true, test_frac = true, train = true, val = true, test = true }

function text.read_splits(opts)
  opts = util.check_opts("read_splits", opts, known)
  if opts.path ~= nil then
    if opts.train ~= nil or opts.val ~= nil or opts.test ~= nil then
      error("read_splits: give either path (cut by fractions) or train/val/test files, not both", 2)
    end
    local s = text.read_text(opts.path)
    return split.split(s, { val_frac = opts.val_frac, test_frac = opts.test_frac })
  end
  if opts.train == nil then
    error("read_splits: expected path= (one file cut by fractions) or train= (separate files)", 2)
  end
  if opts.val_frac ~= nil or opts.test_frac ~= nil then
    error("read_splits: val_frac/test_frac apply to path=, not to separate files", 2)
  end
  local train = text.read_text(opts.train)
  local val = opts.val and text.read_text(opts.val) or nil
  local test = opts.test and text.read_text(opts.test) or nil
  return train, val, test
end

return text
