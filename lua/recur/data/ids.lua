-- Shared checks for id sequences. Token ids are integers 1..V everywhere in recur.data
-- (Lua's convention, and what the embedding layer takes); a sequence arrives either as a
-- Lua array or as a 1-D int64 tensor; the code below turns either into the other.
local ids = {}

local function is_tensor(seq)
  return type(seq) == "userdata" and type(seq.totable) == "function"
end

-- Raises (at level 4: the caller's caller) unless `seq` is a 1-D int64 tensor.
local function check_tensor(seq, who)
  if seq:dim() ~= 1 then
    error(string.format("%s: expected a 1-D tensor of ids, got %d dimensions", who, seq:dim()), 4)
  end
  if seq:dtype() ~= "int64" then
    error(string.format("%s: expected an int64 tensor of ids, got %s", who, seq:dtype()), 4)
  end
end

local function not_ids(seq, who)
  error(string.format("%s: expected an array or a 1-D int64 tensor of ids, got %s", who, type(seq)), 4)
end

-- The ids as a Lua array (the same table when `seq` is already one). `who` names the
-- calling operation in errors.
function ids.as_array(seq, who)
  if type(seq) == "table" then return seq end
  if not is_tensor(seq) then not_ids(seq, who) end
  check_tensor(seq, who)
  return seq:totable()
end

-- Raises (at `level`) unless every element of the array is an integer in 1..V (V may
-- be nil: no upper bound); floats with an integral value (3.0) count as that integer.
local function check_values(arr, V, who, level)
  for i = 1, #arr do
    local v = arr[i]
    if math.type(v) ~= "integer" and math.tointeger(v) == nil then
      error(string.format("%s: id #%d is %s, not an integer", who, i, tostring(v)), level)
    end
    if v < 1 or (V and v > V) then
      if V then error(string.format("%s: id #%d is %d, outside 1..%d", who, i, v, V), level) end
      error(string.format("%s: id #%d is %d, ids start at 1", who, i, v), level)
    end
  end
end

-- The check above, and the array with its integral floats made integers.
function ids.check(arr, V, who)
  check_values(arr, V, who, 4)
  for i = 1, #arr do arr[i] = math.tointeger(arr[i]) end
  return arr
end

-- A checked id sequence (array or tensor) as a fresh 1-D int64 tensor, for users that
-- keep many ids: 8 bytes each against 16 in a Lua array. The caller's array or tensor
-- is left as it was.
function ids.as_tensor(seq, V, who)
  local recur = require("recur")
  if type(seq) == "table" then
    check_values(seq, V, who, 4)
    return #seq > 0 and recur.tensor(seq, "int64") or recur.zeros({ 0 }, "int64")
  end
  if not is_tensor(seq) then not_ids(seq, who) end
  check_tensor(seq, who)
  -- the element-wise scan only to name the first bad id
  if seq:numel() > 0 and (seq:min() < 1 or (V and seq:max() > V)) then check_values(seq:totable(), V, who, 4) end
  return seq:clone()
end

-- A checked copy of an id sequence (array or tensor) as a fresh Lua array.
function ids.copy(seq, V, who)
  local arr = ids.as_array(seq, who)
  local out = table.move(arr, 1, #arr, 1, {})
  return ids.check(out, V, who)
end

return ids
