-- Drawn: a batcher whose batches are drawn by a function, fresh every time, for data
-- that is generated rather than read (synthetic tasks, augmentation on the fly).
--
--   local batcher = recur.data.Drawn.new(function() return {x = ..., y = ...} end, {per_epoch = 500})
--
-- An epoch is per_epoch calls of draw. The draws use recur's seeded generator, which
-- recur.train.Trainer saves and restores with its own state, so state() needs only the
-- position in the epoch for a resumed run to draw the same batches.
local util = require("recur.util")

local Drawn = {}
Drawn.__index = Drawn

function Drawn.new(draw, opts)
  local who = "Drawn.new"
  if type(draw) ~= "function" then error(who .. ": draw must be a function returning a batch table", 2) end
  opts = util.check_opts(who, opts, {per_epoch = true})
  if opts.per_epoch == nil then error(who .. ": per_epoch is required", 2) end
  return setmetatable({draw = draw, per_epoch = util.opt_int(who, opts, "per_epoch", nil), pos = 1}, Drawn)
end

function Drawn:num_batches() return self.per_epoch end

function Drawn:next_batch()
  if self.pos > self.per_epoch then return nil end
  self.pos = self.pos + 1
  local batch = self.draw()
  if type(batch) ~= "table" then
    error("Drawn:next_batch: draw returned " .. type(batch) .. ", not a batch table", 2)
  end
  return batch
end

function Drawn:batches()
  return function() return self:next_batch() end
end

function Drawn:reset() self.pos = 1 end

function Drawn:state() return {next_batch = self.pos, per_epoch = self.per_epoch} end

function Drawn:set_state(s)
  local who = "Drawn:set_state"
  if type(s) ~= "table" or s.per_epoch ~= self.per_epoch then
    error(string.format("%s: the state is not of a batcher of %d batches per epoch", who, self.per_epoch), 2)
  end
  local p = math.tointeger(s.next_batch)
  if p == nil or p < 1 or p > self.per_epoch + 1 then
    error(string.format("%s: next_batch = %s is outside 1..%d", who, tostring(s.next_batch), self.per_epoch + 1), 2)
  end
  self.pos = p
end

return Drawn
