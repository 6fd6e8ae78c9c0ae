-- Dropout: inverted dropout. In training mode each element is zeroed with
-- probability p and the survivors scaled by 1/(1-p), so evaluation needs no
-- rescaling; in evaluate mode (or p = 0) it is the identity and returns its input.
--
-- Input and output: any float shape. Keeps the mask of the last forward (same shape)
-- for backward. Masks come from the seeded generator (recur.manual_seed). In training
-- the output and the mask are buffers the module keeps and overwrites on the next
-- forward with an input of the same shape (as torch/nn's output; clone to keep).
--
-- Data-parallel training (recur.train.Trainer with `dist`) sets Dropout.streams =
-- {first =, count =, total =} around each training step: this rank holds columns
-- first .. first+count-1 of a batch of `total` streams. An input whose stream
-- dimension (the one before the features: (T,B,H) or (B,H)) has `count` entries then
-- gets its columns of the mask drawn for the whole batch, so that the ranks drop
-- exactly what one process training on the whole batch would, and every rank's
-- generator advances as that process's does.
local core = require "recur.core"
local util = require "recur.nn.util"
local Module = require "recur.nn.Module"

local Dropout = util.class("Dropout", Module)

function Dropout:__init(p)
  Module.__init(self)
  p = p == nil and 0.5 or p
  if type(p) ~= "number" or not (p >= 0 and p <= 1) then
    error("Dropout: probability must be a number in [0, 1], got " .. tostring(p), 2)
  end
  self.p = p
end

function Dropout:forward(x)
  util.check_input("Dropout", "input", x)
  if not self.training or self.p == 0 then
    self.mask = nil
    self.output = x
  else
    -- _y and _mask are this module's own tensors (self.output may be the caller's
    -- input after an identity forward, and must never be written)
    local streams, dim = Dropout.streams, x:dim() - 1
    if streams and dim >= 1 and x:size(dim) == streams.count then
      local size = x:size()
      size[dim] = streams.total
      local ones = util.buffer(self, "_ones", x:dtype(), size):fill_(1)
      self._whole, self._whole_mask = core.nn_dropout(ones, self.p, self._whole, self._whole_mask)
      self._mask = self._whole_mask:narrow(dim, streams.first, streams.count):clone()
      self._y = x:mul(self._mask)
    else
      self._y, self._mask = core.nn_dropout(x, self.p, self._y, self._mask)
    end
    self.output, self.mask = self._y, self._mask
  end
  return self.output
end

function Dropout:backward(_, gy)
  if not self.mask then return gy end
  return gy:mul(self.mask)
end

return Dropout
