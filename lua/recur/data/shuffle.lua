-- A small seeded generator for shuffling data, private to each batcher so that an
-- epoch's order depends only on (seed, epoch): a resumed run reshuffles exactly as the
-- original did, whatever else drew from recur's global generator in between.
-- splitmix64 (Steele, Lea, Flood 2014) over Lua 5.4's wrapping 64-bit integers; the
-- same seed gives the same numbers on every machine.
local Rng = {}
Rng.__index = Rng

function Rng.new(seed)
  local s = math.tointeger(seed)
  if s == nil then error("Rng.new: seed must be an integer, got " .. tostring(seed), 2) end
  return setmetatable({ state = s }, Rng)
end

-- Next 64-bit output (a Lua integer, any sign).
function Rng:next_u64()
  local s = self.state + 0x9E3779B97F4A7C15
  self.state = s
  local z = s
  z = (z ~ (z >> 30)) * 0xBF58476D1CE4E5B9
  z = (z ~ (z >> 27)) * 0x94D049BB133111EB
  return z ~ (z >> 31)
end

-- Uniform in [0, 1) from the top 53 bits.
function Rng:uniform()
  return (self:next_u64() >> 11) * 0x1p-53
end

-- Uniform integer in 1..n.
function Rng:int(n)
  return math.floor(self:uniform() * n) + 1
end

-- Fisher-Yates shuffle of the array in place; returns it.
function Rng:shuffle(arr)
  for i = #arr, 2, -1 do
    local j = self:int(i)
    arr[i], arr[j] = arr[j], arr[i]
  end
  return arr
end

-- A random permutation of 1..n.
function Rng:permutation(n)
  local p = {}
  for i = 1, n do p[i] = i end
  return self:shuffle(p)
end

-- The seed of epoch e's generator, mixed from the base seed so that neighbouring epochs
-- (and neighbouring base seeds) give unrelated orders.
function Rng.derive(seed, e)
  local g = Rng.new(seed ~ (e * 0x632BE59BD9B4E019))
  return g:next_u64()
end

return Rng
