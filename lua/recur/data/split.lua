-- Train / validation / test split of one sequence by fractions, in order: the
-- validation part is taken from the end, the test part (when test_frac > 0) after it,
-- as char-rnn does (train | val | test), so no shuffling mixes neighbouring text.
--   split(seq, {val_frac=0.05, test_frac=0}) -> train, val, test
-- seq is a Lua array (ids, lines, ...), a 1-D tensor, or a string. Counts are
-- n_val = floor(N*val_frac), n_test = floor(N*test_frac), n_train = the rest; a string is
-- cut in characters (UTF-8 code points), never inside a multi-byte character. Each part
-- has the type of seq (arrays are fresh tables, tensors are narrow() views).
local util = require("recur.util")

local M = {}

local function counts(N, opts)
  opts = util.check_opts("split", opts, { val_frac = true, test_frac = true })
  local vf = opts.val_frac == nil and 0.05 or opts.val_frac
  local tf = opts.test_frac == nil and 0 or opts.test_frac
  if type(vf) ~= "number" or not (vf >= 0 and vf < 1) then
    error("split: val_frac must be a number in [0, 1), got " .. tostring(vf), 3)
  end
  if type(tf) ~= "number" or not (tf >= 0 and tf < 1) then
    error("split: test_frac must be a number in [0, 1), got " .. tostring(tf), 3)
  end
  local n_val, n_test = math.floor(N * vf), math.floor(N * tf)
  if vf > 0 and n_val == 0 then
    error(string.format("split: val_frac=%g of %d items gives an empty validation part", vf, N), 3)
  end
  if tf > 0 and n_test == 0 then
    error(string.format("split: test_frac=%g of %d items gives an empty test part", tf, N), 3)
  end
  local n_train = N - n_val - n_test
  if n_train < 1 then
    error(string.format("split: val_frac=%g and test_frac=%g leave no training data out of %d items",
      vf, tf, N), 3)
  end
  return n_train, n_val, n_test
end

function M.split(seq, opts)
  if type(seq) == "string" then
    local N, bad = utf8.len(seq)
    if N == nil then
      error(string.format("split: text is not valid UTF-8 (byte %d)", bad), 2)
    end
    local n_train, n_val = counts(N, opts)
    -- Byte offsets of the first character of the val and test parts.
    local b_val = utf8.offset(seq, n_train + 1)
    local b_test = utf8.offset(seq, n_train + n_val + 1)
    return seq:sub(1, b_val - 1), seq:sub(b_val, b_test - 1), seq:sub(b_test)
  elseif type(seq) == "table" then
    local N = #seq
    local n_train, n_val = counts(N, opts)
    return table.move(seq, 1, n_train, 1, {}),
           table.move(seq, n_train + 1, n_train + n_val, 1, {}),
           table.move(seq, n_train + n_val + 1, N, 1, {})
  elseif type(seq) == "userdata" and type(seq.narrow) == "function" then
    local N = seq:size(1)
    local n_train, n_val, n_test = counts(N, opts)
    local function part(start, len)
      -- narrow() of zero length may not be allowed: an empty tensor of the same dtype.
      if len == 0 then return require("recur").zeros({ 0 }, seq:dtype()) end
      return seq:narrow(1, start, len)
    end
    return part(1, n_train), part(n_train + 1, n_val), part(n_train + n_val + 1, n_test)
  end
  error("split: expected a string, an array or a tensor, got " .. type(seq), 2)
end

return M
