-- The main job (`make demo`): train char-rnn's default model on tiny Shakespeare for
-- about two minutes, then sample from it.
--   2-layer LSTM, 128 hidden, batch 50, sequence 50, Adam 2e-3, clip 5, 95/5 split.
-- RECUR_DEMO_SECONDS changes the training time. Reads the checkout's data/ wherever it is
-- run from; writes its checkpoints and log to cv/ in the current directory.
--
--   lua5.4 examples/demo.lua        (after make, from any directory)
local checkout = loadfile((arg[0]:match("^(.*)/") or ".") .. "/checkout.lua")
local ROOT = checkout and checkout()   -- the checkout, or nil (examples/checkout.lua says why not a require)
local recur = require "recur"

local seconds = tonumber(os.getenv("RECUR_DEMO_SECONDS") or "") or 120

local summary = recur.lm.train{
  data = (ROOT or ".") .. "/data/tinyshakespeare.txt", level = "char", model = "lstm",
  layers = 2, hidden = 128, embed = 64, batch = 50, seq_len = 50,
  lr = 2e-3, clip = 5, val_frac = 0.05,
  max_seconds = seconds, eval_every = 200, ngram = 3,
  checkpoint_dir = "cv", log = "cv/demo.jsonl", seed = 123,
}

io.write("\n--- sample (temperature 0.8) ---\n")
recur.manual_seed(42)
recur.lm.generate(summary.model, summary.tokenizer, {length = 600, temperature = 0.8, prime = "ROMEO:"},
  function(s) io.write(s); io.flush() end)
io.write("\n---\n")
print(string.format("more: %s sample --checkpoint cv/best.safetensors --temperature 0.8 --length 1000",
  ROOT and "lua5.4 " .. ROOT .. "/bin/recur" or "recur"))
