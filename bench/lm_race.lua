-- The recur side of the language-model race (bench/race.lua): char-rnn's default
-- model on tiny Shakespeare trained for a fixed wall time, printing the validation
-- loss against training time as JSON lines.
--
--   lua5.4 bench/lm_race.lua --seconds 300 [--eval-every 15] [--threads 2]
--   lua5.4 bench/lm_race.lua --seconds 300 --job [--eval-iters 500]
--
-- The same setup as bench/lm_race_torch.py: recur.lm.prepare_data (vocabulary = the
-- characters of the whole text, the last 5% is the validation split), a
-- LanguageModel of 2 LSTM layers of 128 with embedding 64 and no dropout,
-- recur.data.LMBatcher chunks of batch 50 x sequence 50 (hidden state carried, reset
-- each epoch), Adam 2e-3, gradient norm clipped at 5, no learning-rate decay.
-- By default the loop is recur.train's, written out with the same pieces
-- (model:train_step, optim.clip_grad_norm, optimizer:step, model:evaluate_batches) so
-- that the clock stops while the whole validation split is evaluated (every
-- --eval-every seconds of training, and at the end), as the PyTorch side does.
-- --job runs the whole job instead, recur.lm.train{max_seconds = ..., log = ...},
-- evaluating every --eval-iters iterations; its seconds then include evaluation
-- and checkpoint writing.
-- One line per evaluation: {"side": "recur", "seconds": ..., "iter": ...,
-- "val_loss": nats per character, "train_loss": ...}, then a "final" line.
-- bench/ sits in a checkout: its lua/ and build/ come first (examples/checkout.lua).
local ROOT = dofile((arg[0]:match("^(.*)/") or ".") .. "/../examples/checkout.lua")
local recur = require "recur"
local cjson = require "cjson"
local argparse = require "argparse"
local LanguageModel = require "recur.models.LanguageModel"

local function number(name, positive_only)
  return function(s)
    local n = tonumber(s)
    if not n or n < 0 or (positive_only and n == 0) then return nil, name .. " must be a positive number" end
    return n
  end
end
local function integer(name)
  return function(s)
    local n = math.tointeger(tonumber(s))
    if not n or n < 1 then return nil, name .. " must be a positive integer" end
    return n
  end
end

local parser = argparse("bench/lm_race.lua", "recur's side of the language-model race")
parser:option("--seconds", "training seconds", 300):convert(number("--seconds", true))
parser:option("--eval-every", "seconds of training between evaluations", 15):convert(number("--eval-every", true))
parser:option("--threads", "threads for OpenBLAS and OpenMP", 2):convert(integer("--threads"))
parser:option("--seed", "generator seed", 123):convert(integer("--seed"))
parser:option("--data", "training text", ROOT .. "/data/tinyshakespeare.txt")
parser:option("--batch", "batch size", 50):convert(integer("--batch"))
parser:option("--seq", "sequence length", 50):convert(integer("--seq"))
parser:option("--hidden", "hidden size", 128):convert(integer("--hidden"))
parser:option("--layers", "LSTM layers", 2):convert(integer("--layers"))
parser:option("--embed", "embedding size", 64):convert(integer("--embed"))
parser:option("--lr", "Adam learning rate", 2e-3):convert(number("--lr", true))
parser:option("--clip", "gradient norm clip", 5):convert(number("--clip", false))
parser:option("--val-frac", "validation fraction (from the end)", 0.05):convert(number("--val-frac", true))
parser:flag("--job", "run recur.lm.train (evaluation and checkpoints inside the clock)")
parser:option("--eval-iters", "with --job: iterations between evaluations", 500):convert(integer("--eval-iters"))
local a = parser:parse()

recur.set_num_threads(a.threads)

local function record(t)
  t.side = a.job and "recur-job" or "recur"
  io.stdout:write(cjson.encode(t), "\n")
  io.stdout:flush()
end

-- The whole job: recur.lm.train with its JSON log, replayed as race lines.
local function run_job()
  local dir = os.tmpname()
  os.remove(dir)
  local log = dir .. "/train.jsonl"
  os.execute("mkdir -p " .. dir)
  local summary = recur.lm.train{data = a.data, level = "char", model = "lstm", layers = a.layers, hidden = a.hidden,
    embed = a.embed, dropout = 0, batch = a.batch, seq_len = a.seq, lr = a.lr, lr_decay = 1, clip = a.clip,
    val_frac = a.val_frac, max_seconds = a.seconds, eval_every = a.eval_iters, epochs = 1e9, log = log,
    checkpoint_dir = dir, seed = a.seed, quiet = true}
  for line in io.lines(log) do
    local r = cjson.decode(line)
    record{seconds = r.seconds, iter = r.iter, epoch = r.epoch, val_loss = r.val_loss, train_loss = r.train_loss}
  end
  record{event = "final", seconds = summary.seconds, iter = summary.iterations, epoch = summary.epochs,
         val_loss = summary.final and summary.final.val_loss, train_loss = summary.train_loss,
         ms_per_iter = summary.seconds / summary.iterations * 1000, peak_rss_mb = recur.peak_rss_mb()}
  os.execute("rm -rf " .. dir)
end

local function run_loop()
  recur.manual_seed(a.seed)
  local data = recur.data
  local tokenizer, train_ids, val_ids = recur.lm.prepare_data{data = a.data, level = "char", val_frac = a.val_frac}
  local B, T = a.batch, a.seq
  local batcher = data.LMBatcher.new(train_ids, {batch_size = B, seq_length = T})
  local val_batcher = data.LMBatcher.new(val_ids, {batch_size = math.max(1, math.min(B, (#val_ids - 1) // T)),
                                                   seq_length = T})
  local model = LanguageModel{vocab_size = tokenizer:vocab_size(), embed = a.embed, hidden = a.hidden,
                              layers = a.layers, cell = "lstm", dropout = 0}
  local optimizer = recur.optim.Adam(model, {lr = a.lr})
  local _, grads = model:parameters()
  record{event = "start", vocab = tokenizer:vocab_size(), train_tokens = #train_ids, val_tokens = #val_ids,
         batches_per_epoch = batcher:num_batches(), parameters = model:num_parameters(), threads = a.threads}
  train_ids, val_ids = nil, nil

  local now = recur.now
  local trained, iter, epoch, state = 0, 0, 1, nil
  local next_eval, smoothed, eval_seconds, val = a.eval_every, nil, 0, nil
  record{seconds = 0, iter = 0, epoch = 1, val_loss = model:evaluate_batches(val_batcher)}
  while trained < a.seconds do
    local t0 = now()
    local batch = batcher:next_batch()
    if not batch then
      batcher:reset()
      epoch, state = epoch + 1, nil
      batch = batcher:next_batch()
    end
    model:zero_grad()
    local loss
    loss, state = model:train_step(batch, state)
    if a.clip > 0 then recur.optim.clip_grad_norm(grads, a.clip) end
    optimizer:step()
    iter = iter + 1
    smoothed = smoothed and 0.95 * smoothed + 0.05 * loss or loss
    trained = trained + (now() - t0)
    if trained >= next_eval or trained >= a.seconds then
      local e0 = now()
      val = model:evaluate_batches(val_batcher)
      eval_seconds = eval_seconds + (now() - e0)
      record{seconds = trained, iter = iter, epoch = epoch, val_loss = val, train_loss = smoothed}
      while next_eval <= trained do next_eval = next_eval + a.eval_every end
    end
  end
  record{event = "final", seconds = trained, iter = iter, epoch = epoch, val_loss = val, train_loss = smoothed,
         ms_per_iter = trained / iter * 1000, eval_seconds = eval_seconds, peak_rss_mb = recur.peak_rss_mb()}
end

if a.job then run_job() else run_loop() end
