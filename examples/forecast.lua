-- Time-series forecasting with an LSTM: a noisy sum of two sines (periods 24 and 100
-- steps, noise std 0.1) in, validation MSE of the network beside the naive forecasts out,
-- one step ahead and up to 24 steps ahead.
--   2-layer LSTM, 64 hidden, 16 streams of 48 steps, Adam 3e-3 decaying by 0.99 per epoch
--   after 50, clip 1, 80/20 split by time.
-- RECUR_FORECAST_ITERS changes the training length (default 2000 chunks, about 5 s on
-- an idle 2-core machine; stopped at 50 s in any case). The noise alone costs
-- any forecast an MSE of 0.1^2 / std^2 in standardised units, printed as the floor.
--   lua5.4 examples/forecast.lua        (after make, from any directory)
-- From a checkout its lua/ and build/ come first; copied elsewhere, the installed recur
-- (examples/checkout.lua says why this is not a require).
local checkout = loadfile((arg[0]:match("^(.*)/") or ".") .. "/checkout.lua")
if checkout then checkout() end
local recur = require "recur"
local series = require "recur.data.series"
local Forecaster = require "recur.models.Forecaster"

local iters = tonumber(os.getenv("RECUR_FORECAST_ITERS") or "") or 2000
local N, HISTORY, HORIZON, SEASON = 6000, 96, 24, 24

recur.manual_seed(7)
local noise = recur.randn({N}, "float64")
local values = {}
for t = 1, N do
  values[t] = 2 + math.sin(2 * math.pi * t / 24) + 0.5 * math.sin(2 * math.pi * t / 100) + 0.1 * noise:get(t)
end
local train, val = recur.data.split(series.tensor(values), {val_frac = 0.2})
local scaler = series.Scaler.fit(train)   -- the training part only: nothing of val leaks in
local train_z, val_z = scaler:transform(train), scaler:transform(val)

local train_batches = series.Batcher.new(train_z, {batch_size = 16, seq_length = 48})
local val_batches = series.Batcher.new(val_z, {batch_size = 4, seq_length = 100})
local model = Forecaster{input_size = 1, hidden = 64, layers = 2, cell = "lstm"}
local optimizer = recur.optim.Adam(model, {lr = 3e-3})
print(string.format("%d steps (train %d, val %d), %s", N, train:size(1), val:size(1), tostring(model)))

local summary = recur.train.Trainer{
  model = model, optimizer = optimizer, batcher = train_batches, val_batcher = val_batches,
  clip = 1, lr_decay = 0.99, lr_decay_after = 50,   -- epochs are 7 chunks: 3e-3 down to 3e-4 by the end
  max_epochs = 10000, max_iters = iters, max_seconds = 50, eval_every = 500, progress = false,
  on_eval = function(r) print(string.format("iter %4d  %5.1f s  train MSE %.4f  val MSE %.4f",
    r.iter, r.seconds, r.train_loss, r.val_loss)) end,
}:run()
print(string.format("trained %d iterations (%d epochs) in %.1f s", summary.iterations, summary.epochs, summary.seconds))

-- One step ahead on the validation chunks (standardised units, state carried).
local floor = 0.1 ^ 2 / scaler.std:get(1) ^ 2
print(string.format("\none step ahead, val MSE: network %.4f   last value %.4f   (noise floor %.4f)",
  model:evaluate_batches(val_batches), series.naive_mse(val_batches), floor))

-- Up to HORIZON steps ahead from windows of HISTORY steps of the validation part.
local w = series.windows(val_z, HISTORY + HORIZON, {stride = 5})   -- 5: every phase of both sines
local history, future = w:narrow(1, 1, HISTORY):contiguous(), w:narrow(1, HISTORY + 1, HORIZON)
local t0 = recur.now()
local pred = model:forecast(history, HORIZON)
local forecast_seconds = recur.now() - t0
local rows = {
  {"network", pred},
  {"last value", series.naive_forecast(history, HORIZON)},
  {"seasonal naive (" .. SEASON .. ")", series.naive_forecast(history, HORIZON, {season = SEASON})},
}
print(string.format("\n%d-step forecasts from %d windows of the validation part (network: %.3f s), MSE:",
  HORIZON, w:size(2), forecast_seconds))
print(string.format("  %-20s %8s %8s %8s %8s %8s", "", "h=1", "h=6", "h=12", "h=24", "all"))
for _, row in ipairs(rows) do
  local all, by_step = series.mse(row[2], future)
  print(string.format("  %-20s %8.4f %8.4f %8.4f %8.4f %8.4f", row[1], by_step[1], by_step[6], by_step[12],
    by_step[24], all))
end

-- The first window's forecast back in the series' units.
local first = scaler:inverse(pred:select(2, 1))
local truth = scaler:inverse(future:select(2, 1))
io.write("\nfirst window, steps 1..8 (forecast / truth):")
for k = 1, 8 do io.write(string.format("  %.2f/%.2f", first:get(k, 1), truth:get(k, 1))) end
io.write("\n")
