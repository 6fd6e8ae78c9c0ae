-- The forecasting task: a CSV file of numeric columns, one time step per row (a header
-- row is optional), standardised by a scaler fitted on the training rows, cut by time
-- (the validation part is the last rows, or --val-data), served as (T,B,D) chunks of B
-- streams with one-step-ahead targets (series.Batcher) to a Forecaster predicting
-- every column. --horizon H is how far predict forecasts: the next H rows after the
-- history in its file, each prediction fed back as the next input, in the file's
-- units. The measures are the MSE and MAE of the one-step predictions over a file,
-- beside those of the naive (last value) forecast, in standardised units (each column
-- divided by its training std), so columns of different scales count alike.
local series = require "recur.data.series"
local split = require "recur.data.split"
local tabular = require "recur.data.tabular"
local Forecaster = require "recur.models.Forecaster"

local task = {kind = "forecast"}

task.OPTIONS = {seq_len = true, horizon = true}
task.DEFAULTS = {layers = 2, hidden = 64, batch = 16, seq_len = 50, horizon = 1}
task.ARCH = {"model", "layers", "hidden", "dropout"}
task.TRAINING = {}
task.LOOP = {"seq_len", "horizon"}
task.PREDICT = {horizon = true}

function task.arch_of(info)
  local c = info.config
  return {model = c.cell, layers = c.layers, hidden = c.hidden, dropout = c.dropout}
end

local function read(path, want_columns)
  local values, names = tabular.read_csv(path, {dtype = "float32"})
  if want_columns and values:size(2) ~= want_columns then
    error(string.format("forecast: '%s' has %d columns, the model %d", path, values:size(2), want_columns), 0)
  end
  return values, names
end

function task.prepare(s, opts, info)
  if opts.val_data and opts.val_frac then
    error("forecast: --val-frac and --val-data both give the validation rows; keep one", 0)
  end
  local values, names = read(opts.data, info and info.config.input_size)
  local train_rows, val_rows = values, nil
  if opts.val_data then
    val_rows = read(opts.val_data, values:size(2))
  else
    train_rows, val_rows = split.split(values, {val_frac = opts.val_frac or 0.1})
    if val_rows:numel() == 0 then val_rows = nil end
  end
  local scaler = info and info.data.scaler or series.Scaler.fit(train_rows)
  local P = {data = {scaler = scaler, columns = names},
    rows = {train_rows:size(1), val_rows and val_rows:size(1) or 0}, columns = values:size(2)}
  P.batcher = series.Batcher.new(scaler:transform(train_rows), {batch_size = s.batch, seq_length = s.seq_len})
  if val_rows then
    if val_rows:size(1) < 2 then
      error("forecast: the validation part has one row; a one-step forecast needs two (more --val-frac)", 0)
    end
    -- one stream: the validation rows in order, the state carried through them
    P.val_batcher = series.Batcher.new(scaler:transform(val_rows), {batch_size = 1, seq_length = s.seq_len})
  end
  return P
end

function task.build(s, P)
  return Forecaster{input_size = P.columns, hidden = s.hidden, layers = s.layers, cell = s.model, dropout = s.dropout}
end

function task.describe(s, P, model)
  return string.format("forecast %s: %d layers x %d hidden, %d columns, %d parameters; %d training rows (%d streams, %d batches of %d steps), %d validation rows",
    model.config.cell, model.config.layers, model.config.hidden, P.columns, model:num_parameters(), P.rows[1],
    s.batch, P.batcher:num_batches(), s.seq_len, P.rows[2])
end

-- Mean squared and absolute error of a against b.
local function errors(a, b)
  local d = a:sub(b)
  return d:mul(d):mean(), d:abs():mean()
end

function task.evaluate(model, info, path)
  local values = read(path, info.config.input_size)
  local N, D = values:size(1), values:size(2)
  if N < 2 then error("forecast: '" .. path .. "' has one row; a one-step forecast needs two", 0) end
  local z = info.data.scaler:transform(values)
  local x = z:narrow(1, 1, N - 1):contiguous():view(N - 1, 1, D)
  local y = z:narrow(1, 2, N - 1):contiguous():view(N - 1, 1, D)
  model:evaluate()
  local pred = model:forward(x)
  local mse, mae = errors(pred, y)
  local naive_mse, naive_mae = errors(x, y)
  return string.format("%s: %d one-step forecasts of %d columns, MSE %.4f (naive %.4f), MAE %.4f (naive %.4f), in standardised units",
    path, N - 1, D, mse, naive_mse, mae, naive_mae)
end

local function number(v)
  return string.format("%.6g", v)
end

-- The next `horizon` rows after the file's rows, one per line, comma-separated.
function task.predict(model, info, path, opts, write)
  local H = opts.horizon or (info.train and info.train.options and info.train.options.horizon) or 1
  local values = read(path, info.config.input_size)
  local N, D = values:size(1), values:size(2)
  local scaler = info.data.scaler
  local history = scaler:transform(values):view(N, 1, D)
  local forecast = scaler:inverse(model:forecast(history, H):view(H, D))
  for h = 1, H do
    local row = {}
    for d = 1, D do row[d] = number(forecast:get(h, d)) end
    write(table.concat(row, ",") .. "\n")
  end
end

return task
