-- recur.data.series: real-valued time series in, (T,B,D) batches out, for forecasting.
--
-- A series is a float tensor (N,D): N time steps of D features, oldest first.
--   series.tensor(values [, dtype])   Lua array of numbers (N -> (N,1)), array of rows
--                                     ((N,D)) or a tensor (N) or (N,D) -> tensor (N,D);
--                                     float32 unless dtype says otherwise (a float
--                                     tensor keeps its own)
--   recur.data.split(x, {val_frac=})  the train | val split by time: x is cut along its
--                                     first dimension, nothing is shuffled (split.lua)
--   Scaler.fit(train)                 per-feature mean and std of the training part only;
--                                     s:transform(x), s:inverse(z) on any (...,D);
--                                     s:to_table(), Scaler.from_table(t) for checkpoints
--   windows(x, length, {stride=1})    every stride-th window of `length` steps -> (length,W,D)
--   Batcher.new(x, {batch_size=B, seq_length=T, target=nil, drop_last=false})
--                                     B contiguous streams served as (T,B,D) chunks with
--                                     one-step-ahead targets, for truncated BPTT
--   naive_forecast(history, horizon, {season=nil})   the last-value (or seasonal naive)
--                                     forecast (horizon,B,D) of history (T0,B,D)
--   naive_mse(batcher)                the last-value forecast's MSE over a batcher's chunks
--   mse(pred, target)                 mean squared error overall and at each time step
local core = require("recur.core")
local ids = require("recur.data.ids")
local util = require("recur.nn.util")
local Chunks = require("recur.data.chunks")

local series = {}

local function check_series(x, who, level)
  if not util.is_tensor(x) or x:dim() ~= 2 or x:dtype() == "int64" then
    local what = util.is_tensor(x) and (x:dtype() .. " tensor " .. util.shape_str(x)) or type(x)
    error(string.format("%s: expected a float tensor (N,D) of N steps and D features, got %s", who, what),
      (level or 2) + 1)
  end
end

function series.tensor(values, dtype)
  local who = "series.tensor"
  if dtype ~= nil and dtype ~= "float32" and dtype ~= "float64" then
    error(who .. ": dtype must be 'float32' or 'float64', got " .. tostring(dtype), 2)
  end
  if util.is_tensor(values) then
    -- a float tensor keeps its dtype unless one is asked for
    local want = dtype or (values:dtype() == "int64" and "float32" or values:dtype())
    if values:dtype() ~= want then values = values:to(want) end
    if values:dim() == 1 then return values:view(values:size(1), 1) end
    if values:dim() == 2 then return values end
    error(string.format("%s: expected a tensor (N) or (N,D), got %s", who, util.shape_str(values)), 2)
  end
  if type(values) ~= "table" or #values == 0 then
    error(who .. ": expected a non-empty array of numbers or of rows, or a tensor", 2)
  end
  if type(values[1]) == "number" then
    for i, v in ipairs(values) do
      if type(v) ~= "number" then error(string.format("%s: value #%d is a %s, not a number", who, i, type(v)), 2) end
    end
    return core.tensor(values, dtype or "float32"):view(#values, 1)
  end
  local D = type(values[1]) == "table" and #values[1] or 0
  for i, row in ipairs(values) do
    if type(row) ~= "table" or #row ~= D or D == 0 then
      error(string.format("%s: row #%d must be an array of %d numbers like row #1", who, i, D), 2)
    end
  end
  return core.tensor(values, dtype or "float32")
end

-- Standardisation: z = (x - mean) / std per feature, with the population std (divide
-- by N, as sklearn's StandardScaler). Fitted on the training part only, so that nothing
-- of the validation part leaks into the inputs the model is trained on.
local Scaler = {}
Scaler.__index = Scaler
series.Scaler = Scaler

function Scaler.fit(x)
  check_series(x, "Scaler.fit")
  if x:size(1) < 1 then error("Scaler.fit: the series is empty", 2) end
  local mean = x:mean(1)                                   -- (D)
  local std = (x - mean):mul(x - mean):mean(1):sqrt()      -- (D)
  -- A constant feature would divide by zero; scaled by 1 it stays a constant 0.
  for d = 1, std:numel() do
    if std:get(d) == 0 then std:set(d, 1) end
  end
  return setmetatable({mean = mean, std = std, D = x:size(2)}, Scaler)
end

-- mean and std in x's dtype, checked against x's last dimension.
function Scaler:_stats(x, who)
  if not util.is_tensor(x) or x:dtype() == "int64" or x:dim() < 1 or x:size(x:dim()) ~= self.D then
    local what = util.is_tensor(x) and util.shape_str(x) or type(x)
    error(string.format("%s: expected a float tensor whose last dimension is the %d features, got %s",
      who, self.D, what), 3)
  end
  if x:dtype() ~= self.mean:dtype() then return self.mean:to(x:dtype()), self.std:to(x:dtype()) end
  return self.mean, self.std
end

-- A new tensor (x - mean) / std, x (...,D).
function Scaler:transform(x)
  local mean, std = self:_stats(x, "Scaler:transform")
  return (x - mean):div_(std)
end

-- A new tensor z * std + mean: predictions back in the series' units.
function Scaler:inverse(z)
  local mean, std = self:_stats(z, "Scaler:inverse")
  return z:mul(std):add_(mean)
end

-- {type = "scaler", mean = {...}, std = {...}, dtype = ...}: plain numbers, JSON-able,
-- for checkpoint metadata; Scaler.from_table(t) rebuilds the same scaler (float32
-- values pass through JSON's doubles exactly).
function Scaler:to_table()
  return {type = "scaler", mean = self.mean:totable(), std = self.std:totable(), dtype = self.mean:dtype()}
end

-- The table comes from a file: every value is checked (finite numbers, std > 0, one
-- mean and one std per feature).
function Scaler.from_table(t)
  local who = "Scaler.from_table"
  if type(t) ~= "table" or t.type ~= "scaler" then
    error(who .. ": expected a table from Scaler:to_table() (type = \"scaler\")", 2)
  end
  local dtype = t.dtype or "float32"
  if dtype ~= "float32" and dtype ~= "float64" then
    error(who .. ": dtype must be 'float32' or 'float64', got " .. tostring(dtype), 2)
  end
  local D = type(t.mean) == "table" and #t.mean or 0
  if D == 0 or type(t.std) ~= "table" or #t.std ~= D then
    error(who .. ": mean and std must be arrays of one number per feature, of the same length", 2)
  end
  for _, key in ipairs({"mean", "std"}) do
    for k in pairs(t[key]) do
      if math.type(k) ~= "integer" or k < 1 or k > D then
        error(string.format("%s: %s must be an array, has key %s", who, key, tostring(k)), 2)
      end
    end
    for d = 1, D do
      local v = t[key][d]
      -- NaN fails v == v; the infinities fail the bound
      if type(v) ~= "number" or v ~= v or math.abs(v) == math.huge or (key == "std" and v <= 0) then
        error(string.format("%s: %s[%d] must be a finite number%s, got %s", who, key, d,
          key == "std" and " > 0" or "", tostring(v)), 2)
      end
    end
  end
  return setmetatable({mean = core.tensor(t.mean, dtype), std = core.tensor(t.std, dtype), D = D}, Scaler)
end

function series.windows(x, length, opts)
  local who = "series.windows"
  check_series(x, who)
  opts = util.check_opts(who, opts, {stride = true})
  local T = math.tointeger(length)
  if T == nil or T < 1 then error(who .. ": length must be a positive integer, got " .. tostring(length), 2) end
  local stride = util.opt_int(who, opts, "stride", 1)
  local N, D = x:size(1), x:size(2)
  if N < T then error(string.format("%s: a series of %d steps holds no window of %d", who, N, T), 2) end
  local W = (N - T) // stride + 1
  local out = core.empty({T, W, D}, x:dtype())
  for w = 1, W do
    out:select(2, w):copy_(x:narrow(1, (w - 1) * stride + 1, T))
  end
  return out
end

-- Batcher: a series cut into B parallel streams, served as (T,B,D) chunks in order,
-- as LMBatcher does for tokens. With L = floor((N-1)/B), stream b holds steps
-- (b-1)L+1 .. bL and chunk k its positions (k-1)T+1 .. min(kT, L):
--   x[t][b] = x_series[(b-1)L + (k-1)T + t]     y[t][b] = target[(b-1)L + (k-1)T + t + 1]
-- so y is x one step ahead (target defaults to the series itself; a (N,F) target
-- predicts other features). Column b of chunk k+1 continues column b of chunk k: carry
-- the hidden state across chunks, reset it at the start of an epoch. The iteration is
-- recur.data.chunks's, as LMBatcher's: batches are {x =, y =}, and recur.train.Trainer
-- drives it.
local Batcher = Chunks.extend({})
series.Batcher = Batcher

function Batcher.new(x, opts)
  local who = "series.Batcher.new"
  check_series(x, who)
  opts = util.check_opts(who, opts, {batch_size = true, seq_length = true, target = true, drop_last = true})
  if opts.batch_size == nil or opts.seq_length == nil then
    error(who .. ": batch_size and seq_length are required", 2)
  end
  local B = util.opt_int(who, opts, "batch_size", nil)
  local T = util.opt_int(who, opts, "seq_length", nil)
  local drop_last = util.opt_bool(who, opts, "drop_last", false)
  local target = opts.target or x
  check_series(target, who .. " (target)")
  local N = x:size(1)
  if target:size(1) ~= N then
    error(string.format("%s: target has %d steps, the series %d", who, target:size(1), N), 2)
  end
  local L, K = Chunks.layout(who, N, B, T, drop_last, "steps", "steps")
  -- The streams as (L+1,B,D) tensors, built once: a chunk's x and y are rows of them.
  local function streams(s)
    local out = core.empty({L + 1, B, s:size(2)}, s:dtype())
    for b = 1, B do out:select(2, b):copy_(s:narrow(1, (b - 1) * L + 1, L + 1)) end
    return out
  end
  return setmetatable({who = "series.Batcher", xs = streams(x), ys = streams(target), N = N, B = B,
    T = T, L = L, K = K, drop_last = drop_last, pos = 1, identity = {num_steps = N}}, Batcher)
end

function Batcher:_streams() return self.xs, self.ys end

-- The baselines every forecaster must beat. Last value: every future step is the last
-- observed one. Seasonal naive (season = s): step k repeats the value one or more whole
-- seasons back, history[T0 - s + ((k-1) mod s) + 1].
function series.naive_forecast(history, horizon, opts)
  local who = "series.naive_forecast"
  if not util.is_tensor(history) or history:dim() ~= 3 or history:dtype() == "int64" then
    error(who .. ": history must be a float tensor (T0,B,D)", 2)
  end
  opts = util.check_opts(who, opts, {season = true})
  local h = math.tointeger(horizon)
  if h == nil or h < 1 then error(who .. ": horizon must be a positive integer, got " .. tostring(horizon), 2) end
  local T0 = history:size(1)
  local s = util.opt_int(who, opts, "season", 1)
  if s > T0 then
    error(string.format("%s: season %d needs a history of at least %d steps, got %d", who, s, s, T0), 2)
  end
  local out = core.empty({h, history:size(2), history:size(3)}, history:dtype())
  for k = 1, h do
    out:select(1, k):copy_(history:select(1, T0 - s + (k - 1) % s + 1))
  end
  return out
end

-- MSE of the last-value forecast y[t] ~ x[t] over all of a batcher's chunks: the
-- baseline of the one-step loss Forecaster:evaluate_batches reports on the same chunks.
function series.naive_mse(batcher)
  local who = "series.naive_mse"
  if getmetatable(batcher) ~= Batcher then error(who .. ": expected a series.Batcher", 2) end
  if batcher.xs:size(3) ~= batcher.ys:size(3) then
    error(string.format("%s: the last-value forecast needs targets of the input's %d features, got %d",
      who, batcher.xs:size(3), batcher.ys:size(3)), 2)
  end
  local total, count = 0, 0
  for k = 1, batcher:num_batches() do
    local batch = batcher:get_batch(k)
    local x, y = batch.x, batch.y
    local d = x:sub(y:dtype() == x:dtype() and y or y:to(x:dtype()))
    total = total + d:mul(d):sum()
    count = count + d:numel()
  end
  return total / count
end

-- Mean squared error of pred against target (both (h,B,F)), and a list of the MSE at
-- each of the h steps.
function series.mse(pred, target)
  local who = "series.mse"
  if not util.is_tensor(pred) or not util.is_tensor(target) or not util.same_shape(pred, target) then
    error(string.format("%s: pred and target must be tensors of the same shape, got %s and %s", who,
      util.is_tensor(pred) and util.shape_str(pred) or type(pred),
      util.is_tensor(target) and util.shape_str(target) or type(target)), 2)
  end
  if target:dtype() ~= pred:dtype() then target = target:to(pred:dtype()) end
  local d = pred:sub(target)
  local sq = d:mul(d)
  local by_step = {}
  for k = 1, sq:size(1) do by_step[k] = sq:select(1, k):mean() end
  return sq:mean(), by_step
end

return series
