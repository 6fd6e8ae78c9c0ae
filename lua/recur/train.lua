-- recur.train: the loop that trains any model of recur.models batch by batch (chunk by
-- chunk with truncated BPTT for the stream models, which carry their state).
--
--   local trainer = recur.train.Trainer{
--     model = lm,                 -- the protocol of recur.models.Model: :train_step(batch, state)
--                                 -- -> loss, state, count; :evaluate_batches(b) -> loss; .perplexity
--     optimizer = opt,            -- :step(), .lr
--     batcher = train_batches,    -- :next_batch() -> batch | nil at epoch end; :reset(); :state(); :set_state(s)
--     val_batcher = val_batches,  -- optional
--     clip = 5,                   -- global gradient norm (default nil, as 0: off)
--     max_epochs = 50,            -- default 1; max_iters, max_seconds: default nil (no limit)
--     eval_every = 1000,          -- iterations (the default); also at the end
--     lr_decay = 0.97, lr_decay_after = 10,  -- defaults 1 (none) and 0: the rate is
--                                 -- multiplied by lr_decay on entering each epoch past
--                                 -- lr_decay_after + 1 (epochs 1..lr_decay_after + 1 run at
--                                 -- the full rate; char-rnn decays one epoch earlier)
--     on_eval = function(record, trainer) end,  -- after each evaluation (checkpoints)
--     on_epoch = function(epoch, trainer) end,  -- before an epoch's first step (schedules:
--                                               -- scheduled sampling's probability, ...)
--     log = "train.jsonl",        -- one JSON object per evaluation, appended after on_eval
--     progress = recur.progress.new{...} | false,
--     dist = require "recur.dist",  -- optional, initialised: data-parallel training (below)
--   }
--   local summary = trainer:run()
--
-- `count` (what train_step returns third: tokens, sequences or values) adds up to the
-- summary's `tokens` and feeds the progress bar's rate. A model whose exp(loss) is a
-- perplexity (model.perplexity: the language model, seq2seq and the generator) also
-- gets its validation perplexity in each record.
-- The loop stops with an error naming the iteration if the loss or the gradient norm
-- becomes NaN or infinite; nothing is saved after that point, so the last checkpoint
-- written by on_eval stays the last good one. A finite loss whose perplexity overflows
-- (loss above 709.78) is still evaluated, logged and checkpointed: the log and the
-- checkpoint metadata write infinity as JSON's common extension Infinity.
-- on_eval runs before the log line is written, so a log that cannot be written (a full
-- disk) stops the run with an error but never costs that evaluation's checkpoint.
-- trainer:state() and trainer:set_state(s) hold everything the loop itself owns
-- (counters, the carried hidden state, the generator, the batcher position) so that a
-- resumed run continues exactly as an uninterrupted one.
--
-- Data-parallel (dist, one process per rank under mpirun; README, "Data-parallel
-- training"): every rank builds the same model, optimizer and global batchers; the
-- Trainer wraps them in recur.data.Shard, which deals each batch's B streams out to the
-- N ranks as evenly as they go. run() starts every rank from rank 0's parameters and
-- generator state. After each backward the ranks sum their gradients weighted by their
-- share of the batch's targets (count_r / the batch's count), so the result is the
-- global batch's mean gradient whatever the shares; the loss is reduced the same way,
-- before the NaN check and clipping, so every rank clips the global gradient and steps
-- its optimizer identically. Evaluation is sharded the same way and the loss sums and
-- counts are all-reduced, so every rank agrees on the best and the NaN stop. Rank 0
-- alone runs on_eval (checkpoints), writes the log and shows progress; with max_seconds
-- rank 0's clock decides the stop. Counts (tokens) are summed over the ranks;
-- summary.comm_seconds is the time this rank spent in collectives.
local core = require "recur.core"
local optim = require "recur.optim"
local rio = require "recur.io"
local util = require "recur.nn.util"
local Shard = require "recur.data.shard"
local Dropout = require "recur.nn.Dropout"

local Trainer = {}
Trainer.__index = Trainer

local function finite(x) return x == x and x ~= math.huge and x ~= -math.huge end
-- A number in a message: NaN as NaN (the C library prints "-nan" for Lua's 0/0).
local function show(x) return x ~= x and "NaN" or tostring(x) end

local OPTIONS = {model = true, optimizer = true, batcher = true, val_batcher = true, clip = true,
  max_epochs = true, max_iters = true, max_seconds = true, eval_every = true, lr_decay = true,
  lr_decay_after = true, on_eval = true, on_epoch = true, log = true, progress = true, dist = true}

function Trainer.new(opts)
  util.check_opts("Trainer", opts, OPTIONS)
  for _, key in ipairs({"model", "optimizer", "batcher"}) do
    if opts[key] == nil then error("Trainer: option '" .. key .. "' is required", 2) end
  end
  local self = setmetatable({}, Trainer)
  for k, v in pairs(opts) do self[k] = v end
  self.eval_every = opts.eval_every or 1000
  self.max_epochs = opts.max_epochs or 1
  self.lr_decay = opts.lr_decay or 1
  self.lr_decay_after = opts.lr_decay_after or 0
  self.iter, self.epoch, self.tokens = 0, 1, 0
  self.best_val = math.huge
  self.hidden = nil
  self.params, self.grads = opts.model:parameters()
  if opts.dist then
    self.rank, self.size = opts.dist.rank(), opts.dist.size()
    self.batcher = Shard.new(opts.batcher, self.rank, self.size)
    self.val_batcher = opts.val_batcher and Shard.new(opts.val_batcher, self.rank, self.size)
    if self.rank ~= 0 then
      self.on_eval, self.log, self.progress = nil, nil, false
    end
    self.sums = core.zeros({2}, "float64")
    self.comm_seconds = 0
  end
  return self
end

-- What the loop owns, as tensors (the carried hidden state) and a JSON-able table.
function Trainer:state()
  local tensors = {}
  -- data-parallel: the whole batch's state, gathered at the last evaluation
  local hidden = self.hidden
  if self.dist then hidden = self.gathered_iter == self.iter and self.gathered or nil end
  if hidden then
    for k, v in pairs(hidden) do tensors["hidden." .. k] = v end
  end
  return tensors, {
    iter = self.iter, epoch = self.epoch, tokens = self.tokens, smoothed_loss = self.smoothed,
    seconds = self:elapsed(),
    best_val = self.best_val ~= math.huge and self.best_val or nil,
    lr = self.optimizer.lr, batcher = self.batcher:state(),
    rng = (core.get_rng_state():gsub(".", function(c) return string.format("%02x", c:byte()) end)),
  }
end

-- A saved state comes from a file: its fields are checked before any is used.
local function check_state(s)
  -- level 4: bad, check_state, set_state, then set_state's caller
  local function bad(what, v) error("Trainer:set_state: " .. what .. ", got " .. tostring(v), 4) end
  if type(s) ~= "table" then bad("the state must be a table", type(s)) end
  for _, k in ipairs({"iter", "tokens"}) do
    if s[k] ~= nil and (math.type(s[k]) ~= "integer" or s[k] < 0) then bad(k .. " must be a non-negative integer", s[k]) end
  end
  if s.iter == nil then bad("iter is required", nil) end
  if math.type(s.epoch) ~= "integer" or s.epoch < 1 then bad("epoch must be a positive integer", s.epoch) end
  if type(s.lr) ~= "number" or not (s.lr > 0 and s.lr < math.huge) then bad("lr must be a positive number", s.lr) end
  if type(s.rng) ~= "string" or not s.rng:find("^%x*$") or #s.rng % 2 ~= 0 then bad("rng must be a hex string", s.rng) end
  if type(s.batcher) ~= "table" then bad("batcher must be a table", type(s.batcher)) end
  for _, k in ipairs({"seconds", "best_val", "smoothed_loss"}) do
    if s[k] ~= nil and type(s[k]) ~= "number" then bad(k .. " must be a number", s[k]) end
  end
end

function Trainer:set_state(tensors, s)
  check_state(s)
  self.iter, self.epoch, self.tokens = s.iter, s.epoch, s.tokens or 0
  self.best_val = s.best_val or math.huge
  self.smoothed = s.smoothed_loss
  self.seconds_before = s.seconds or 0
  self.optimizer.lr = s.lr
  self.batcher:set_state(s.batcher)
  core.set_rng_state((s.rng:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end)))
  local hidden = nil
  for k, v in pairs(tensors) do
    local name = k:match("^hidden%.(.+)$")
    if name then
      hidden = hidden or {}
      hidden[name] = v
    end
  end
  if hidden and self.dist then hidden = self:_shard_hidden(hidden) end
  self.hidden = hidden
end

-- Data-parallel, the carried state is each rank's streams (dimension 2, as the batch's):
-- a checkpoint holds the whole batch's, and a rank resumes with its columns.
function Trainer:_gather_hidden()
  if not self.hidden then return nil end
  local names = {}
  for k in pairs(self.hidden) do names[#names + 1] = k end
  table.sort(names)
  local whole = {}
  for _, k in ipairs(names) do
    local v = self.hidden[k]
    local size = v:size()
    size[2] = self.global_streams
    local w = core.zeros(size, v:dtype())
    local first, n = Shard.range(self.global_streams, self.rank, self.size)
    w:narrow(2, first, n):copy_(v)
    self:_collective("allreduce", w, "sum")
    whole[k] = w
  end
  return whole
end

function Trainer:_shard_hidden(hidden)
  local part = {}
  for k, v in pairs(hidden) do
    local first, n = Shard.range(v:size(2), self.rank, self.size)
    if n == 0 then return nil end
    part[k] = v:narrow(2, first, n):clone()
  end
  return part
end

-- Training time so far, including the runs this one resumes.
function Trainer:elapsed()
  return (self.seconds_before or 0) + (self.start_time and core.now() - self.start_time or 0)
end

function Trainer:_log_record(record)
  if not self.log then return end
  local what = "the log '" .. self.log .. "'"
  local f, err = io.open(self.log, "a")
  if not f then error("train: cannot write " .. what .. ": " .. tostring(err), 0) end
  local ok, werr = pcall(rio.write, f, what, rio.encode_meta(record), "\n")
  local closed, cerr = f:close()
  if ok and not closed then ok, werr = false, "cannot write " .. what .. ": " .. tostring(cerr) end
  if not ok then
    rio.reraise_interrupt(werr)
    error("train: " .. tostring(werr), 0)
  end
end

function Trainer:_say(message)
  if self.progress then self.progress:log(message) end
end

-- Evaluates, logs and calls on_eval. Returns the record.
function Trainer:evaluate(train_loss)
  local record = {iter = self.iter, epoch = self.epoch, seconds = self:elapsed(),
                  train_loss = train_loss, lr = self.optimizer.lr}
  if self.val_batcher then
    local val
    if self.dist then
      -- every rank its share; the sums make one loss that all ranks agree on
      local sums = self.sums
      local total, count = self.model:evaluate_sums(self.val_batcher)
      sums:set(1, total)
      sums:set(2, count)
      self:_collective("allreduce", sums, "sum")
      if sums:get(2) == 0 then error("train: the validation set is empty", 0) end
      val = sums:get(1) / sums:get(2)
    else
      val = self.model:evaluate_batches(self.val_batcher)
    end
    record.val_loss = val
    if self.model.perplexity then record.val_ppl = math.exp(val) end
    if not finite(val) then
      error(string.format("train: validation loss is %s at iteration %d; stopped, the last good checkpoint is kept", show(val), self.iter), 0)
    end
  end
  if self.dist then self.gathered, self.gathered_iter = self:_gather_hidden(), self.iter end
  record.best = record.val_loss ~= nil and record.val_loss < self.best_val
  if record.best then self.best_val = record.val_loss end
  if self.on_eval then self.on_eval(record, self) end
  self:_log_record(record)
  self:_say(string.format("iter %d (epoch %d): train loss %.4f%s%s", self.iter, self.epoch, train_loss or 0/0,
    record.val_loss and string.format(", val loss %.4f", record.val_loss) or "",
    record.val_ppl and string.format(", val ppl %.2f", record.val_ppl) or ""))
  return record
end

function Trainer:_next_batch()
  local batch = self.batcher:next_batch()
  if batch then return batch end
  -- end of an epoch: decay the learning rate as char-rnn does, reset the stream state
  -- (the last epoch stays the run's epoch in the final record)
  if self.epoch >= self.max_epochs then return nil end
  self.epoch = self.epoch + 1
  if self.epoch > self.lr_decay_after + 1 and self.lr_decay ~= 1 then
    self.optimizer.lr = self.optimizer.lr * self.lr_decay
  end
  self.batcher:reset()
  self.hidden = nil
  return self.batcher:next_batch()
end

-- Every rank takes rank 0's parameters and generator state.
function Trainer:_sync_start()
  for _, p in ipairs(self.params) do self:_collective("broadcast", p, 0) end
  self:_sync_rng()
end

function Trainer:_sync_rng()
  core.set_rng_state(self:_collective("broadcast_string", self.rank == 0 and core.get_rng_state() or nil, 0))
end

-- The model's train_step on the batch: loss, next state, target count. Data-parallel,
-- on this rank's streams (none: 0, nil, 0), with dropout drawing the whole batch's
-- masks (nn.Dropout.streams), so that the ranks drop what one process would.
function Trainer:_step(batch)
  local loss, hidden, count
  if not self.dist then
    loss, hidden, count = self.model:train_step(batch, self.hidden)
  else
    local total = self.batcher.global_streams
    self.global_streams = total
    if self.batcher.streams == 0 then return 0, nil, 0 end
    local first, n = Shard.range(total, self.rank, self.size)
    Dropout.streams = {first = first, count = n, total = total}
    local ok
    ok, loss, hidden, count = pcall(self.model.train_step, self.model, batch, self.hidden)
    Dropout.streams = nil
    if not ok then error(loss, 0) end
  end
  if math.type(count) ~= "integer" then
    error("train: the model's train_step returned no target count (loss, state, count)", 0)
  end
  return loss, hidden, count
end

-- A recur.dist call, timed (summary.comm_seconds).
function Trainer:_collective(name, ...)
  local t0 = core.now()
  local r = self.dist[name](...)
  self.comm_seconds = self.comm_seconds + (core.now() - t0)
  return r
end

-- The global batch's mean gradient, in place on every rank, and its mean loss and
-- count: each rank's gradient and loss are means over its own `count` targets, so
-- weighted by count / total they sum to the means over all the batch's targets.
function Trainer:_allreduce(loss, count)
  local sums = self.sums
  sums:set(1, loss * count)
  sums:set(2, count)
  self:_collective("allreduce", sums, "sum")
  local total = sums:get(2)
  local weight = count / total
  for _, g in ipairs(self.grads) do
    if weight ~= 1 then g:mul_(weight) end
    self:_collective("allreduce", g, "sum")
  end
  -- a rank without streams drew no dropout masks: it takes rank 0's generator
  if self.global_streams < self.size then self:_sync_rng() end
  return sums:get(1) / total, math.tointeger(total)
end

-- Whether rank 0's clock has run out (every rank stops at the same iteration).
function Trainer:_out_of_time()
  local over = self.max_seconds and core.now() - self.start_time >= self.max_seconds
  if not self.dist or not self.max_seconds then return over end
  local box = core.zeros({1}, "float64")
  if over then box:fill_(1) end
  self.dist.broadcast(box, 0)
  return box:item() ~= 0
end

function Trainer:run()
  self.start_time = core.now()
  if self.dist then self:_sync_start() end
  local last_loss = nil
  local stop_reason = "epochs"
  while true do
    if self.max_iters and self.iter >= self.max_iters then stop_reason = "iterations"; break end
    if self:_out_of_time() then stop_reason = "time"; break end
    local batch = self:_next_batch()
    if not batch then break end
    -- once per epoch, also for the epoch a resumed run continues
    if self.on_epoch and self.epoch_begun ~= self.epoch then
      self.epoch_begun = self.epoch
      self.on_epoch(self.epoch, self)
    end
    self.model:zero_grad()
    local loss, hidden, count = self:_step(batch)
    if self.dist then loss, count = self:_allreduce(loss, count) end
    if not finite(loss) then
      error(string.format("train: loss is %s at iteration %d; stopped, the last good checkpoint is kept", show(loss), self.iter + 1), 0)
    end
    if self.clip and self.clip > 0 then
      local norm = optim.clip_grad_norm(self.grads, self.clip)
      if not finite(norm) then
        error(string.format("train: gradient norm is %s at iteration %d; stopped, the last good checkpoint is kept", show(norm), self.iter + 1), 0)
      end
    end
    self.optimizer:step()
    self.hidden = hidden
    self.iter = self.iter + 1
    self.tokens = self.tokens + count
    last_loss = loss
    self.smoothed = self.smoothed and (0.95 * self.smoothed + 0.05 * loss) or loss
    if self.progress then self.progress:update(self.iter, {loss = self.smoothed, tokens = count}) end
    if self.iter % self.eval_every == 0 then self:evaluate(self.smoothed) end
  end
  local final
  if self.iter > 0 and self.iter % self.eval_every ~= 0 then final = self:evaluate(self.smoothed) end
  if self.progress then self.progress:finish() end
  return {iterations = self.iter, epochs = self.epoch, seconds = core.now() - self.start_time,
          train_loss = self.smoothed, last_loss = last_loss, best_val = self.best_val, stop = stop_reason,
          final = final, tokens = self.tokens, comm_seconds = self.comm_seconds}
end

return {Trainer = Trainer.new, TrainerClass = Trainer}
