-- Shared checks for id sequences. Token ids are integers 1..V everywhere in recur.data
-- (Lua's convention, and what the embedding layer takes); a sequence arrives either as a
-- Lua array or as a 1-D int64 tensor, and the Lua code below always works on arrays.
local ids = {}

-- The ids as a Lua array (the same table when `seq` is already one). `who` names the
-- calling operation in errors.
function ids.as_array(seq, who)
  if type(seq) == "table" then return seq end
  if type(seq) == "userdata" and type(seq.totable) == "function" then
    if seq:dim() ~= 1 then
      error(string.format("%s: expected a 1-D tensor of ids, got %d dimensions", who, seq:dim()), 3)
    end
    if seq:dtype() ~= "int64" then
      error(string.format("%s: expected an int64 tensor of ids, got %s", who, seq:dtype()), 3)
    end
    return seq:totable()
  end
  error(string.format("%s: expected an array or a 1-D int64 tensor of ids, got %s", who, type(seq)), 3)
end

-- Raises unless every element of the array is an integer in 1..V (V may be nil: no
-- upper bound). Floats with an integral value (3.0) are accepted as that integer.
function ids.check(arr, V, who)
  for i = 1, #arr do
    local v = arr[i]
    if math.type(v) ~= "integer" then
      local iv = math.tointeger(v)
      if iv == nil then
        error(string.format("%s: id #%d is %s, not an integer", who, i, tostring(v)), 3)
      end
      arr[i] = iv
      v = iv
    end
    if v < 1 or (V and v > V) then
      if V then error(string.format("%s: id #%d is %d, outside 1..%d", who, i, v, V), 3) end
      error(string.format("%s: id #%d is %d, ids start at 1", who, i, v), 3)
    end
  end
  return arr
end

-- A checked copy of an id sequence (array or tensor) as a fresh Lua array.
function ids.copy(seq, V, who)
  local arr = ids.as_array(seq, who)
  local out = table.move(arr, 1, #arr, 1, {})
  return ids.check(out, V, who)
end

return ids
