-- What the line-per-example tasks (seq2seq, classify) share: the validation part of
-- a file, the lines as id arrays, and predict's one output per line.
local data = require "recur.data"
local levels = require "recur.tasks.levels"

local examples = {}

-- The training and validation examples: the arrays `columns` (parallel, one entry per
-- line) cut into train and validation parts. With val_data, the validation part is
-- read from that file by `read`; else it is val_frac (default 0.1) of the lines, drawn
-- by a permutation seeded with `seed` (a file is often sorted, by label or by length:
-- its last lines are no sample of it). Returns train, val: arrays of columns.
function examples.split(who, opts, seed, read)
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

-- The word-vocabulary options given (min_freq, max_vocab), or nil; with a checkpoint's
-- vocabulary (info) there is none to build, so they are an error.
function examples.vocab_options(who, opts, info)
  if not (opts.min_freq or opts.max_vocab) then return nil end
  if info then
    error(who .. ": --min-freq and --max-vocab do not apply when the vocabulary comes from a checkpoint", 0)
  end
  return {min_freq = opts.min_freq, max_vocab = opts.max_vocab}
end

function examples.encode_all(tokenizer, lines)
  local out = {}
  for i, line in ipairs(lines) do out[i] = levels.encode(tokenizer, line) end
  return out
end

-- predict's loop: every line of the file (a final newline starts no extra line, a CR
-- is stripped), its input picked by pick(line) and encoded; outputs(seqs) gives the
-- outputs of the non-blank inputs, in order; write gets one line per input line, an
-- empty one for a blank input.
function examples.predict_lines(path, pick, tokenizer, outputs, write)
  local text = data.read_text(path)
  if text:sub(-1) ~= "\n" then text = text .. "\n" end
  local n, seqs, where = 0, {}, {}
  for line in text:gmatch("([^\n]*)\n") do
    n = n + 1
    local input = pick((line:gsub("\r$", "")))
    if input:find("%S") then
      seqs[#seqs + 1] = levels.encode(tokenizer, input)
      where[#seqs] = n
    end
  end
  local out = {}
  if #seqs > 0 then
    for k, s in ipairs(outputs(seqs)) do out[where[k]] = s end
  end
  for i = 1, n do write((out[i] or "") .. "\n") end
end

return examples
