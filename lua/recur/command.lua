-- recur.command: the subcommands of bin/recur on parsed flags. train, eval and
-- predict are recur.job's for every kind of model; sample is the language model's
-- (recur.lm); plot draws a training log; attention draws a seq2seq model's attention.
local job = require "recur.job"
local rio = require "recur.io"

local command = {}

local STDOUT = "to standard output"

local function write(s) rio.write(io.stdout, STDOUT, s) end

-- The parsed flags of a subcommand (argparse's table: flag values under underscored
-- names, plus the command's name and its `threads`, which bin/recur applies) as
-- options; an option nobody reads is an error in the function they go to.
local function options(args)
  local t = {}
  for k, v in pairs(args) do
    if k ~= "command" and k ~= args.command and k ~= "threads" then t[(k:gsub("-", "_"))] = v end
  end
  return t
end

-- torch-rnn's and char-rnn's flags (one dash, underscores) and what recur calls them.
local TORCH_RNN = {
  input_h5 = "--data", input_json = "--data", data_dir = "--data", rnn_size = "--hidden",
  num_layers = "--layers", model_type = "--model", wordvec_size = "--embed", batch_size = "--batch",
  seq_length = "--seq-len", learning_rate = "--lr", lr_decay_factor = "--lr-decay",
  grad_clip = "--clip", max_epochs = "--epochs", checkpoint_every = "--eval-every",
  checkpoint_name = "--checkpoint-dir", init_from = "--init-from", start_text = "--prime",
  primetext = "--prime", dropout = "--dropout", seed = "--seed", length = "--length",
  temperature = "--temperature", checkpoint = "--checkpoint",
}

-- A one-dash word flag (`-input_h5`, as torch-rnn spells them) in argv, as an error
-- naming recur's flag: argparse would read it as a cluster of one-letter flags and
-- suggest '-h'. Returns nil when there is none.
function command.single_dash(argv)
  for _, a in ipairs(argv) do
    if a == "--" then return nil end
    local name = a:match("^%-(%a[%w_]+)$")
    if name then
      local ours = TORCH_RNN[name]
      return string.format("flags take two dashes: '%s' (a one-dash flag, as torch-rnn spells them) is '%s' here (see recur --help)",
        a, ours or "--" .. name:gsub("_", "-"))
    end
  end
  return nil
end

-- `recur attention`: {checkpoint, src, out, max_length}: the attention weights of the
-- greedy translation of src drawn as an SVG heatmap at out (recur.plot.heatmap), one
-- row per output token, one column per source token. Returns the line to print.
function command.attention(opts)
  local checkpoint = require "recur.checkpoint"
  local model, info = checkpoint.load(opts.checkpoint)
  if info.kind ~= "seq2seq" then
    error(string.format("attention: '%s' holds a %s model; attention is drawn for seq2seq models", opts.checkpoint,
      tostring(info.kind)), 0)
  end
  local a = require("recur.tasks.seq2seq").attention(model, info, opts.src, {max_length = opts.max_length})
  require("recur.plot").heatmap{rows = a.output, cols = a.source, weights = a.weights, out = opts.out,
    title = model.config.attention .. " attention", xlabel = "source", ylabel = "output"}
  return string.format("wrote %s (%d output x %d source tokens): %s", opts.out, #a.output, #a.source, a.translation)
end

function command.run(args)
  local opts = options(args)
  if args.command == "train" then
    opts.out = io.stderr
    job.train(opts)
  elseif args.command == "eval" then
    opts.out = io.stderr   -- the progress bar's
    write(job.evaluate(opts) .. "\n")
  elseif args.command == "predict" then
    job.predict(opts, write)
  elseif args.command == "sample" then
    require("recur.lm").sample_command(opts)
  elseif args.command == "attention" then
    write(command.attention(opts) .. "\n")
  elseif args.command == "plot" then
    require("recur.plot").log_to_svg(opts.log, opts.out)
    write("wrote " .. opts.out .. "\n")
  else
    error("recur: unknown command '" .. tostring(args.command) .. "'", 0)
  end
end

return command
