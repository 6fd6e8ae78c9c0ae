-- What the line-per-example tasks (seq2seq, classify) share: the validation part of
-- a file, and the lines predict reads.
local data = require "recur.data"

local pairs_util = {}

-- The training and validation examples: the arrays `columns` (parallel, one entry per
-- line) cut into train and validation parts. With val_data, the validation part is
-- read from that file by `read`; else it is val_frac (default 0.1) of the lines, drawn
-- by a permutation seeded with `seed` (a file is often sorted, by label or by length:
-- its last lines are no sample of it). Returns train, val: arrays of columns.
function pairs_util.split(who, opts, seed, read)
  if opts.val_data and opts.val_frac then
    error(who .. ": --val-frac and --val-data both give the validation examples; keep one", 0)
  end
  local a, b = read(opts.data)
  if opts.val_data then
    local va, vb = read(opts.val_data)
    return {a, b}, {va, vb}
  end
  local frac = opts.val_frac or 0.1
  local order = data.Rng.new(data.Rng.derive(seed, 0)):permutation(#a)
  local shuffled_a, shuffled_b = {}, {}
  for i, k in ipairs(order) do shuffled_a[i], shuffled_b[i] = a[k], b[k] end
  local ta, va = data.split(shuffled_a, {val_frac = frac})
  local tb, vb = data.split(shuffled_b, {val_frac = frac})
  if #va == 0 then return {ta, tb}, nil end
  return {ta, tb}, {va, vb}
end

-- Every line of a file, a final newline starting no extra line, CR stripped: predict
-- writes one output per line.
function pairs_util.lines(path)
  local text = data.read_text(path)
  if text:sub(-1) ~= "\n" then text = text .. "\n" end
  local out = {}
  for line in text:gmatch("([^\n]*)\n") do out[#out + 1] = (line:gsub("\r$", "")) end
  return out
end

return pairs_util
