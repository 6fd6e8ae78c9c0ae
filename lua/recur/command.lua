-- recur.command: the subcommands of bin/recur on parsed flags. train, eval and
-- predict are recur.job's for every kind of model; sample is the language model's
-- (recur.lm); plot draws a training log.
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

function command.run(args)
  local opts = options(args)
  if args.command == "train" then
    opts.out = io.stderr
    job.train(opts)
  elseif args.command == "eval" then
    write(job.evaluate(opts) .. "\n")
  elseif args.command == "predict" then
    job.predict(opts, write)
  elseif args.command == "sample" then
    require("recur.lm").sample_command(opts)
  elseif args.command == "plot" then
    require("recur.plot").log_to_svg(opts.log, opts.out)
    write("wrote " .. opts.out .. "\n")
  else
    error("recur: unknown command '" .. tostring(args.command) .. "'", 0)
  end
end

return command
