-- recur.job: a training run, an evaluation and a prediction for every kind of model,
-- as `recur train|eval|predict` run them. What differs between kinds (the data file,
-- the vocabularies or scaler, the batches, the model, the measures, predict's output)
-- lives in recur.tasks.<kind>; this file holds what they share:
--
--   job.train(opts)     settings (defaults, the checkpoint's when resuming or starting
--                       from one), the checkpoint directory (created, locked, probed),
--                       the optimizer, recur.train.Trainer with the last/best
--                       checkpoints, the JSON log, exact resume and the NaN stop
--   job.evaluate(opts)  {checkpoint, data, precision}: the kind's measures, one line
--                       (precision "bf16" or "int8": the model's set_precision, inference in bf16, int8)
--   job.predict(opts)   {checkpoint, data, ...}: one output per input, written out
--
-- Settings come from the options given, else the checkpoint's (--resume: the
-- architecture, the vocabularies and the loop's settings; --init-from: the
-- architecture and vocabularies only), else the task's defaults, else the common
-- ones below. An option that disagrees with what the checkpoint fixes is an error,
-- never silently overruled, and so is an option the task cannot act on.
--
-- The run owns its checkpoint directory for its whole length: it creates it, takes the
-- lock `train.lock` (flock; a second run on the same directory is refused, naming the
-- pid that holds it), removes temporaries a killed save left, and saves a probe file,
-- all before the first iteration, so an unwritable directory costs no training.
local core = require "recur.core"
local checkpoint = require "recur.checkpoint"
local optim = require "recur.optim"
local rio = require "recur.io"
local train = require "recur.train"
local Progress = require "recur.progress"
local tasks = require "recur.tasks"
local util = require "recur.util"

local job = {}

-- The defaults every task shares; a task's DEFAULTS add to and override them.
job.DEFAULTS = {model = "lstm", dropout = 0, lr = 2e-3, lr_decay = 0.97, lr_decay_after = 10, clip = 5,
  epochs = 50, eval_every = 1000, seed = 123, checkpoint_dir = "cv", optimizer = "adam"}

-- The options of every task; each task adds its own (task.OPTIONS).
local COMMON = {task = true, data = true, val_data = true, val_frac = true, model = true, layers = true,
  hidden = true, dropout = true, batch = true, lr = true, lr_decay = true, lr_decay_after = true, clip = true,
  epochs = true, max_iters = true, max_seconds = true, eval_every = true, checkpoint_dir = true, resume = true,
  init_from = true, log = true, seed = true, optimizer = true, momentum = true, quiet = true, out = true,
  dist_timeout = true}

-- What a resumed run takes from its checkpoint besides the task's architecture
-- (task.ARCH, read by task.arch_of) and the task's own (task.LOOP): the settings whose
-- state the file carries (the batcher's position, the optimizer's state and decayed
-- rate, the generator), in the order they are checked.
local LOOP = {"batch", "lr", "lr_decay", "lr_decay_after", "clip", "seed", "optimizer", "momentum"}

-- The optimizers that take --momentum (optim.create refuses it for the others).
local WITH_MOMENTUM = {sgd = true, rmsprop = true}
local LOCK_NAME = "train.lock"

local function flag(key) return "--" .. key:gsub("_", "-") end
job.flag = flag

-- Every option must be one the task can act on: one that only another task takes
-- names that task.
local function check_task_options(task, opts)
  for k in pairs(opts) do
    if not COMMON[k] and not task.OPTIONS[k] then
      local owners = tasks.owners(k)
      if #owners > 0 then
        error(string.format("%s: %s applies to --task %s, not %s", task.kind, flag(k), table.concat(owners, "|"),
          task.kind), 0)
      end
      error(string.format("%s: unknown option '%s'", task.kind, tostring(k)), 0)
    end
  end
end

-- The settings of a run: the options, over the task's defaults, over job's; from a
-- checkpoint, its architecture (where nil is a setting: none), and when resuming its
-- loop settings (where nil means an older file did not record it), each of which an
-- option may repeat but not change.
local function resolve_settings(task, opts, from)
  local s = {}
  for k, v in pairs(job.DEFAULTS) do s[k] = v end
  for k, v in pairs(task.DEFAULTS) do s[k] = v end
  for k, v in pairs(opts) do s[k] = v end
  if not from then return s end
  local why = from.resume and "a resumed run continues with its checkpoint's settings"
    or "--init-from keeps its checkpoint's architecture and vocabulary"
  local function differs(k, saved)
    error(string.format("%s: %s %s differs from %s in '%s' (%s)", task.kind, flag(k), tostring(opts[k]),
      saved == nil and "none" or tostring(saved), from.path, why), 0)
  end
  local arch = task.arch_of(from.info)
  for _, k in ipairs(task.ARCH) do
    if opts[k] ~= nil and opts[k] ~= arch[k] then differs(k, arch[k]) end
    s[k] = arch[k]
  end
  if not from.resume then return s end
  for _, k in ipairs(task.TRAINING) do
    if opts[k] ~= nil and opts[k] ~= arch[k] then differs(k, arch[k]) end
    s[k] = arch[k]
  end
  local o = from.info.train and from.info.train.options or {}
  local keys = table.move(task.LOOP, 1, #task.LOOP, #LOOP + 1, table.move(LOOP, 1, #LOOP, 1, {}))
  for _, k in ipairs(keys) do
    -- a momentum the run's optimizer never took is refused below, naming the optimizer
    if opts[k] ~= nil and o[k] == nil and k ~= "momentum" then
      error(string.format("%s: %s cannot be checked against '%s', which does not record it; leave it out",
        task.kind, flag(k), from.path), 0)
    end
    if opts[k] ~= nil and o[k] ~= nil and opts[k] ~= o[k] then differs(k, o[k]) end
    if o[k] ~= nil then s[k] = o[k] end
  end
  return s
end

-- The optimizer of the settings (momentum only when given: SGD and RMSprop default
-- to none, and job.train refused it for the others).
local function make_optimizer(s, model)
  return optim.create(s.optimizer, model, {lr = s.lr, momentum = s.momentum})
end

-- Calls f(...), and on failure raises "<context><its message>" (without the
-- "file.lua:N: " a binding's luaL_error adds; an interrupt unchanged).
local function with_context(context, f, ...)
  local ok, a, b = pcall(f, ...)
  if ok then return a, b end
  rio.reraise_interrupt(a)
  error(context .. tostring(a):gsub("^[^:\n]*%.lua:%d+: ", ""), 0)
end

local function make_dirs(dir)
  local prefix = dir:sub(1, 1) == "/" and "/" or ""
  for part in dir:gmatch("[^/]+") do
    prefix = prefix .. part
    core.make_dir(prefix)
    prefix = prefix .. "/"
  end
end

-- Makes the checkpoint directory this run's before any training: created, locked
-- (returns the lock), cleared of stale temporaries, and a probe checkpoint saved and
-- removed, so a directory that cannot take checkpoints fails now, not at the first
-- evaluation.
local function own_checkpoint_dir(who, dir)
  local context = who .. ": cannot write checkpoints in '" .. dir .. "': "
  with_context(context, make_dirs, dir)
  local lock_path = dir .. "/" .. LOCK_NAME
  local lock, holder = with_context(context, core.lock_file, lock_path)
  if not lock then
    local pid = holder:match("^%s*(%d+)")
    error(string.format("%s: checkpoint directory '%s' is in use by %s (lock '%s'); wait for that run or choose another --checkpoint-dir",
      who, dir, pid and "process " .. pid or "another process", lock_path), 0)
  end
  local ok, err = pcall(function()
    with_context(context, rio.remove_stale_tmp, dir)
    local probe = dir .. "/.probe.safetensors"
    with_context(context, rio.save, probe, {probe = core.zeros(1)})
    os.remove(probe)
  end)
  if not ok then
    lock:unlock() -- at once, not whenever the collector finds it
    error(err, 0)
  end
  return lock
end

-- A run --init-from a checkpoint: its model again, with the training-only settings of
-- this run in its config (so that the new checkpoints record them) and its weights.
local function with_training_settings(task, s, model)
  local config = {}
  for k, v in pairs(model.config) do config[k] = v end
  for _, k in ipairs(task.TRAINING) do config[k] = s[k] end
  local fresh = task.Model(config)
  fresh:load_state_dict(model:state_dict())
  return fresh
end

-- The checkpoint a run starts from, and its task (--task, else the checkpoint's kind,
-- else lm).
local function starting_point(opts)
  if opts.resume and opts.init_from then
    error(string.format("%s: --resume continues a run and --init-from starts a new one from a checkpoint's weights; give one",
      opts.task or "train"), 0)
  end
  local path = opts.resume or opts.init_from
  local from
  if path then
    local model, info = checkpoint.load(path)
    from = {path = path, model = model, info = info, resume = opts.resume ~= nil}
  end
  local task = tasks.get(opts.task or (from and from.info.kind) or "lm")
  if from and from.info.kind ~= task.kind then
    error(string.format("%s: '%s' holds a %s model, not %s", task.kind, path, tostring(from.info.kind), task.kind), 0)
  end
  return task, from
end

-- recur.dist, initialised, when this process is one of several ranks that mpirun
-- started (Open MPI sets OMPI_COMM_WORLD_SIZE); nil for a process alone. timeout:
-- --dist-timeout, the seconds a rank waits for the others (recur.dist's default when nil).
local function mpi_world(who, timeout)
  local n = tonumber(os.getenv("OMPI_COMM_WORLD_SIZE") or "")
  if not n or n < 2 then
    if timeout then error(who .. ": --dist-timeout applies to data-parallel runs under mpirun with more than one rank", 0) end
    return nil
  end
  local ok, dist = pcall(require, "recur.dist")
  if not ok then
    error(who .. ": started by mpirun with " .. n .. " ranks, but recur.dist is not built (build recur where mpicc is found; README, \"Data-parallel training\")", 0)
  end
  dist.init()
  if timeout then dist.set_timeout(timeout) end
  return dist
end

-- opts: the `recur train` flags with underscores, plus out (where messages go, default
-- io.stderr). Returns the trainer's summary with model, data (the vocabularies or
-- scaler, by role), checkpoint_dir, and test_loss when the task has a test split.
function job.train(opts)
  if type(opts) ~= "table" then error("train: options must be a table, got " .. type(opts), 2) end
  local task, from = starting_point(opts)
  local who = task.kind
  check_task_options(task, opts)
  local out = opts.out or io.stderr
  local function say(fmt, ...) rio.write(out, "messages", string.format(fmt, ...), "\n") end

  local s = resolve_settings(task, opts, from)
  util.check_positive_int(who, "epochs", s.epochs)
  -- The rate decays on entering each epoch past lr_decay_after + 1 (char-rnn's rule).
  if (opts.lr_decay or opts.lr_decay_after) and s.lr_decay ~= 1 and s.epochs < s.lr_decay_after + 2 then
    error(string.format("%s: the learning rate would never decay: decay starts at epoch %s, after the last (--epochs %d)",
      who, tostring(s.lr_decay_after + 2), s.epochs), 0)
  end
  if s.momentum ~= nil and not WITH_MOMENTUM[s.optimizer] then
    error(string.format("%s: --momentum applies to --optimizer sgd or rmsprop, not %s", who, tostring(s.optimizer)), 0)
  end
  if opts.sampling ~= nil and (s.sampling_prob or 0) == 0 then
    error(string.format("%s: --sampling chooses what scheduled sampling feeds, and --sampling-prob is 0 (teacher forcing)", who), 0)
  end
  local dist = mpi_world(who, opts.dist_timeout)
  local rank = dist and dist.rank() or 0
  local quiet, log = opts.quiet or rank ~= 0, rank == 0 and opts.log or nil
  core.manual_seed(s.seed)
  local P = task.prepare(s, opts, from and from.info)
  local model = from and from.model or task.build(s, P)
  if from and not from.resume and #task.TRAINING > 0 then model = with_training_settings(task, s, model) end
  local optimizer = make_optimizer(s, model)
  -- Everything that can refuse the run has run; now the places its output goes.
  local dir = s.checkpoint_dir
  -- rank 0 alone owns the directory, writes the log and speaks (README, "Data-parallel training")
  local lock <close> = rank == 0 and own_checkpoint_dir(who, dir) or nil
  if log then
    local f, err = io.open(log, "a")
    if not f then error(who .. ": cannot write the log: " .. tostring(err), 0) end
    f:close()
  end
  if not quiet then say("%s", task.describe(s, P, model)) end
  local progress = not quiet and Progress.new{total = opts.max_iters or math.floor(s.epochs * P.batcher:num_batches()),
    max_seconds = opts.max_seconds, out = out} or nil

  -- what a resumed run must continue with (LOOP and the task's)
  local options = {}
  for _, k in ipairs(LOOP) do options[k] = s[k] end
  for _, k in ipairs(task.LOOP) do options[k] = s[k] end
  if WITH_MOMENTUM[s.optimizer] then options.momentum = s.momentum or 0 end
  local trainer
  local wrote_best = false
  local function save_checkpoints(record)
    local state_tensors, state = trainer:state()
    state.options, state.record = options, record
    local extra = {data = P.data, train = state, optimizer = optimizer, tensors = state_tensors}
    checkpoint.save(dir .. "/last.safetensors", model, extra)
    if record.best then
      checkpoint.save(dir .. "/best.safetensors", model, extra)
      wrote_best = true
    end
  end
  trainer = train.Trainer{
    model = model, optimizer = optimizer, batcher = P.batcher, val_batcher = P.val_batcher,
    clip = s.clip, max_epochs = s.epochs, max_iters = opts.max_iters,
    max_seconds = opts.max_seconds, eval_every = s.eval_every,
    lr_decay = s.lr_decay, lr_decay_after = s.lr_decay_after,
    log = log, progress = progress or false, on_eval = save_checkpoints, dist = dist,
  }
  if from and from.resume then
    optimizer:load_state_dict(from.info.optim_tensors, from.info.train.optimizer)
    trainer:set_state(from.info.tensors or {}, from.info.train)
    if not quiet then say("resumed from %s at iteration %d", from.path, trainer.iter) end
  elseif from and not quiet then
    say("starting from the weights of %s", from.path)
  end
  for _, line in ipairs(P.notes or {}) do say("%s", line) end

  local summary = trainer:run()
  if P.test_batcher then summary.test_loss = model:evaluate_batches(P.test_batcher) end
  if not quiet then
    local function loss(x)
      return string.format("%.4f", x) .. (model.perplexity and string.format(" (ppl %.2f)", math.exp(x)) or "")
    end
    say("stopped after %d iterations (%s), %.1f s: train loss %.4f%s%s", summary.iterations, summary.stop, summary.seconds,
      summary.train_loss or 0 / 0,
      summary.best_val < math.huge and ", best val loss " .. loss(summary.best_val) or "",
      summary.test_loss and ", test loss " .. loss(summary.test_loss) or "")
    say("checkpoints in %s/ (%s)", dir, wrote_best and "best.safetensors, last.safetensors" or "last.safetensors")
  end
  summary.model, summary.data, summary.checkpoint_dir = model, P.data, dir
  if dist then dist.finalize() end
  return summary
end

local function loaded(opts)
  local model, info = checkpoint.load(opts.checkpoint)
  return tasks.get(info.kind), model, info
end

-- {checkpoint, data}: the task's measures of the checkpoint on the file, one line.
function job.evaluate(opts)
  util.check_opts("eval", opts, {checkpoint = true, data = true, out = true, precision = true})
  local out, precision = opts.out, opts.precision
  opts.out, opts.precision = nil, nil
  local task, model, info = loaded(opts)
  if precision ~= nil then
    if not model.set_precision then
      error(string.format("%s: --precision applies to language models, not a %s model", task.kind, task.kind), 0)
    end
    model:set_precision(precision)
  end
  -- a progress bar over the batches of a pass, for the tasks that take one: on a
  -- terminal it redraws, elsewhere a line every 50 batches (a short file prints none)
  local function progress(total)
    local bar = Progress.new{total = total, unit = "batch", out = out}
    return function(k, count)
      bar:update(k, {tokens = count})
      if k == total then bar:finish() end
    end
  end
  return task.evaluate(model, info, opts.data, out and progress or nil)
end

-- {checkpoint, data, and the task's PREDICT options}: write(text) gets each output.
function job.predict(opts, write)
  local task, model, info = loaded(opts)
  local rest = {}
  for k, v in pairs(opts) do
    if k ~= "checkpoint" and k ~= "data" then
      if not (task.PREDICT or {})[k] then
        error(string.format("%s: %s does not apply to predicting with a %s model", task.kind, flag(k), task.kind), 0)
      end
      rest[k] = v
    end
  end
  if not task.predict then
    error(task.kind .. ": predict writes the outputs of seq2seq, classify and forecast models; a language model samples (recur sample)", 0)
  end
  task.predict(model, info, opts.data, rest, write)
end

return job
