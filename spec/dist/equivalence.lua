-- Trains a small LanguageModel `iters` iterations with global batch B and writes rank 0's
-- parameters, one number a line (%.9g), to `out`. Under mpirun (size > 1) the Trainer
-- trains data-parallel with recur.dist; alone it trains one process on the whole batch.
-- spec/dist_spec.lua compares the two files.
--   lua5.4 spec/dist/equivalence.lua OUT B ITERS [dist|single|fail]
local recur = require "recur"
local out, B, iters, mode = arg[1], math.tointeger(tonumber(arg[2])), math.tointeger(tonumber(arg[3])), arg[4] or "dist"

local dist
if mode ~= "single" then
  dist = require "recur.dist"
  dist.init()
end
if mode == "fail" and dist.rank() == 1 then error("rank 1 fails on purpose") end

recur.manual_seed(7)
local V = 11
local ids = {}
for i = 1, 600 do ids[i] = (i * 7 + i // 13) % V + 1 end
local model = recur.models.LanguageModel{vocab_size = V, embed = 5, hidden = 8, layers = 2}
if dist and dist.rank() ~= 0 then
  -- other ranks start elsewhere: the Trainer must hand them rank 0's weights
  for _, p in ipairs((model:parameters())) do p:fill_(0.5) end
end
local trainer = recur.train.Trainer{
  model = model, optimizer = recur.optim.Adam(model, {lr = 1e-2}), clip = 1,
  batcher = recur.data.LMBatcher.new(ids, {batch_size = B, seq_length = 5}),
  max_iters = iters, eval_every = 1000, progress = false, dist = dist,
}
trainer:run()
if not dist or dist.rank() == 0 then
  local f = assert(io.open(out, "w"))
  for _, p in ipairs((model:parameters())) do
    for _, v in ipairs(p:reshape({-1}):totable()) do f:write(string.format("%.9g\n", v)) end
  end
  assert(f:close())
end
if dist then dist.finalize() end
