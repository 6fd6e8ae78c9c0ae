-- Reading line-oriented data files: the inputs of `recur train --task seq2seq|classify|forecast`.
--   read_pairs(path)   -> sources, targets   lines `source<TAB>target`
--   read_labeled(path) -> labels, texts      lines `label<TAB>text` (a label is any string)
--   read_csv(path [, {dtype="float64"}]) -> values (N,D) tensor, names (D strings)
--                                          comma-separated numbers, header row optional
-- Every line counts for the line numbers in errors ("<op>: <path>:<line>: ..."), blank
-- ones included, so that they match what an editor shows. A line may end in CRLF (files
-- written on Windows) and a UTF-8 byte-order mark before the first line is dropped;
-- otherwise text is kept as the bytes in the file, UTF-8 or not: the tokenizers decide
-- what they accept.
local core = require("recur.core")
local text = require("recur.data.text")
local util = require("recur.util")

local tabular = {}

local BOM = "\239\187\191"

-- The lines of the file at `path` as {number, line} for every non-blank line, the
-- trailing CR stripped. `op` names the caller in errors, raised `depth` calls above
-- this one (1: the caller of the function that called lines_of).
local function lines_of(op, path, depth)
  local level = 2 + (depth or 1)
  local ok, s = pcall(text.read_text, path)
  if not ok then
    -- read_text's message, under the caller's name: the user called read_pairs.
    error((tostring(s):gsub("^.-read_text: ", op .. ": ")), level)
  end
  if s:sub(1, 3) == BOM then s = s:sub(4) end
  local out, n = {}, 0
  for line in (s:sub(-1) == "\n" and s or s .. "\n"):gmatch("(.-)\n") do
    n = n + 1
    line = line:gsub("\r$", "")
    if line:find("%S") then out[#out + 1] = { n, line } end
  end
  if #out == 0 then
    error(string.format("%s: '%s' has only blank lines", op, path), level)
  end
  return out
end

-- Two arrays from lines `a<TAB>b`: exactly one tab, neither side blank.
local function read_tab_pairs(op, path, left, right)
  local as, bs = {}, {}
  for _, nl in ipairs(lines_of(op, path, 2)) do
    local n, line = nl[1], nl[2]
    local a, b = line:match("^([^\t]*)\t([^\t]*)$")
    if a == nil then
      local _, tabs = line:gsub("\t", "")
      error(string.format("%s: %s:%d: expected %s<TAB>%s, found %s", op, path, n, left, right,
        tabs == 0 and "no tab" or (tabs .. " tabs")), 3)
    end
    if not a:find("%S") then
      error(string.format("%s: %s:%d: the %s (before the tab) is empty", op, path, n, left), 3)
    end
    if not b:find("%S") then
      error(string.format("%s: %s:%d: the %s (after the tab) is empty", op, path, n, right), 3)
    end
    as[#as + 1], bs[#bs + 1] = a, b
  end
  return as, bs
end

function tabular.read_pairs(path)
  -- not a tail call: its errors name this function's caller
  local sources, targets = read_tab_pairs("read_pairs", path, "source", "target")
  return sources, targets
end

function tabular.read_labeled(path)
  local labels, texts = read_tab_pairs("read_labeled", path, "label", "text")
  return labels, texts
end

-- A decimal number (sign, digits, point, exponent) and nothing else: tonumber alone
-- would also take hexadecimal ("0x10"), which no CSV writer means.
local function parse_number(cell)
  local s = cell:match("^%s*(.-)%s*$")
  if not (s:match("^[+-]?%d+%.?%d*[eE][+-]?%d+$") or s:match("^[+-]?%d+%.?%d*$")
      or s:match("^[+-]?%.%d+[eE][+-]?%d+$") or s:match("^[+-]?%.%d+$")) then
    return nil
  end
  return tonumber(s)
end

local function split_commas(line)
  local cells = {}
  for cell in (line .. ","):gmatch("([^,]*),") do cells[#cells + 1] = cell end
  return cells
end

function tabular.read_csv(path, opts)
  local op = "read_csv"
  opts = util.check_opts(op, opts, { dtype = true })
  local dtype = util.opt_choice(op, opts, "dtype", "float64", { "float32", "float64" })
  local lines = lines_of(op, path)

  -- A header is a first row that is not all numbers.
  local first = split_commas(lines[1][2])
  local D = #first
  local names, start = {}, 1
  local all_numbers = true
  for _, c in ipairs(first) do
    if parse_number(c) == nil then all_numbers = false end
  end
  if all_numbers then
    for d = 1, D do names[d] = tostring(d) end
  else
    start = 2
    local seen = {}
    for d, c in ipairs(first) do
      -- Spreadsheets quote header cells; the names are kept without the quotes.
      local name = c:match("^%s*(.-)%s*$"):gsub('^"(.*)"$', "%1")
      if name == "" then
        error(string.format("%s: %s:%d: column %d of the header has no name", op, path, lines[1][1], d), 2)
      end
      if seen[name] then
        error(string.format("%s: %s:%d: the header names column '%s' twice (columns %d and %d)",
          op, path, lines[1][1], name, seen[name], d), 2)
      end
      seen[name], names[d] = d, name
    end
  end
  if start > #lines then
    error(string.format("%s: '%s' has a header and no rows of numbers", op, path), 2)
  end

  local flat = {}
  for i = start, #lines do
    local n, line = lines[i][1], lines[i][2]
    local cells = split_commas(line)
    if #cells ~= D then
      error(string.format("%s: %s:%d: %d columns, expected %d like line %d", op, path, n, #cells, D,
        lines[1][1]), 2)
    end
    for d, c in ipairs(cells) do
      local v = parse_number(c)
      if v == nil or v ~= v or v == math.huge or v == -math.huge then
        error(string.format("%s: %s:%d: column %d (%s): %q is not a finite number", op, path, n, d,
          names[d], c), 2)
      end
      flat[#flat + 1] = v
    end
  end
  local N = #lines - start + 1
  return core.tensor(flat, dtype):view(N, D), names
end

return tabular
