-- Progress reporting for long loops: a one-line bar redrawn in place on a terminal
-- (iteration, loss, tokens per second, time left), plain log lines otherwise.
--
--   local bar = recur.progress.new{total = 1000, out = io.stderr}
--   bar:update(iter, {loss = 1.23, tokens = 2500})   -- tokens processed by this step
--   bar:log("eval: val_loss 1.5")                   -- a line that stays above the bar
--   bar:finish()
local core = require "recur.core"
local rio = require "recur.io"

local Progress = {}
Progress.__index = Progress

local function format_duration(seconds)
  if seconds ~= seconds or seconds == math.huge then return "--:--" end
  seconds = math.floor(seconds + 0.5)
  local h, m, s = seconds // 3600, seconds % 3600 // 60, seconds % 60
  if h > 0 then return string.format("%d:%02d:%02d", h, m, s) end
  return string.format("%02d:%02d", m, s)
end
Progress.format_duration = format_duration

-- opts: total (iterations, or nil when unknown), max_seconds (a time budget that
-- also bounds "time left"), out (a file, default io.stderr, or an object whose write
-- and flush return a true value on success, as a file's do; a failed write is an
-- error, never a silent loss of the output), terminal (default:
-- whether that file is a terminal), width (bar cells, default 24), every (plain
-- log line interval in iterations when not on a terminal, default 50), unit (what an
-- iteration is called in the line, default "iter").
function Progress.new(opts)
  opts = opts or {}
  local out = opts.out or io.stderr
  local terminal = opts.terminal
  if terminal == nil then terminal = core.isatty(out == io.stdout and 1 or 2) end
  return setmetatable({
    total = opts.total, max_seconds = opts.max_seconds, out = out, terminal = terminal,
    width = opts.width or 24, every = opts.every or 50, start = core.now(), unit = opts.unit or "iter",
    tokens = 0, last_draw = -math.huge, drawn = false,
  }, Progress)
end

function Progress:elapsed() return core.now() - self.start end

-- Fraction done, from iterations or from the time budget, whichever is further.
function Progress:fraction(iter)
  local f = 0
  if self.total and self.total > 0 then f = iter / self.total end
  if self.max_seconds and self.max_seconds > 0 then
    f = math.max(f, self:elapsed() / self.max_seconds)
  end
  return math.min(f, 1)
end

function Progress:line(iter, stats)
  local elapsed = self:elapsed()
  local parts = {}
  if self.total then
    parts[#parts + 1] = string.format("%s %d/%d", self.unit, iter, self.total)
  else
    parts[#parts + 1] = string.format("%s %d", self.unit, iter)
  end
  if stats.loss then parts[#parts + 1] = string.format("loss %.4f", stats.loss) end
  if self.tokens > 0 and elapsed > 0 then
    parts[#parts + 1] = string.format("%.0f tok/s", self.tokens / elapsed)
  end
  local f = self:fraction(iter)
  local left = f > 0 and elapsed * (1 - f) / f or math.huge
  parts[#parts + 1] = string.format("%s elapsed, %s left", format_duration(elapsed), format_duration(left))
  return table.concat(parts, "  "), f
end

function Progress:update(iter, stats)
  stats = stats or {}
  self.tokens = self.tokens + (stats.tokens or 0)
  local now = core.now()
  if self.terminal then
    if now - self.last_draw < 0.1 and not stats.force then return end -- redraw at most 10 times a second
    self.last_draw = now
    local text, f = self:line(iter, stats)
    local filled = math.floor(f * self.width + 0.5)
    local bar = string.rep("#", filled) .. string.rep("-", self.width - filled)
    self:_write(string.format("\r\027[K[%s] %3d%%  %s", bar, math.floor(f * 100), text))
    self.drawn = true
  elseif iter % self.every == 0 or stats.force then
    self:_write(self:line(iter, stats), "\n")
  end
end

-- A message that stays: on a terminal the bar is cleared first and redrawn by the
-- next update.
function Progress:log(message)
  self:_write(self.terminal and self.drawn and "\r\027[K" or "", message, "\n")
  self.last_draw = -math.huge
end

function Progress:finish()
  self:_write(self.terminal and self.drawn and "\n" or "")
end

function Progress:_write(...)
  rio.write(self.out, "the progress output", ...)
end

return Progress
