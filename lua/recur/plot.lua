-- Loss curves as SVG from a training log (one JSON object per line, as written by
-- recur.train with `log = FILE`): train and validation loss against iterations.
--
--   local svg = recur.plot.loss_svg(records, {title = "char-lstm"})
--   recur.plot.log_to_svg("train.jsonl", "loss.svg")
local cjson = require "cjson"
local rio = require "recur.io"

local plot = {}

function plot.read_log(path)
  local f, err = io.open(path, "r")
  if not f then error("plot: cannot open '" .. path .. "': " .. tostring(err), 0) end
  local records, n = {}, 0
  for line in f:lines() do
    n = n + 1
    if line:match("%S") then
      local ok, record = pcall(cjson.decode, line)
      if not ok then rio.reraise_interrupt(record) end
      if not ok or type(record) ~= "table" then
        f:close()
        error(string.format("plot: '%s' line %d is not a JSON object", path, n), 0)
      end
      records[#records + 1] = record
    end
  end
  f:close()
  return records
end

local function escape(s)
  return (tostring(s):gsub("[<>&\"]", {["<"] = "&lt;", [">"] = "&gt;", ["&"] = "&amp;", ['"'] = "&quot;"}))
end

-- A "nice" tick step (1, 2 or 5 times a power of ten) for a span.
local function tick_step(span, count)
  local raw = span / count
  local p = 10 ^ math.floor(math.log(raw, 10))
  for _, m in ipairs({1, 2, 5, 10}) do
    if raw <= m * p then return m * p end
  end
  return 10 * p
end

local function magnitude(v) return math.floor(math.log(math.abs(v), 10)) end

-- An axis for drawn values between lo and hi, with about `count` ticks: returns the
-- range shown, the tick values and a function that labels them. A span is padded by
-- pad * span on both sides and ticked at multiples of a nice step. A single value (one
-- evaluation, or a loss that never moved) gets a range of 2.5 steps either side of it
-- and ticks stepping from the value itself, so that its point sits mid-frame on a
-- labelled tick. Labels have enough significant digits that neighbours differ (down
-- to the step's leading digit) and that a single value reads as logged (up to 6); on an
-- `integer` axis (iterations) the step is at least 1 and labels are whole numbers.
local function axis(lo, hi, count, pad, integer)
  local ticks, step, digits = {}, nil, 1
  local span = hi - lo
  if span > 1e-290 and span > 1e-9 * math.max(math.abs(lo), math.abs(hi)) then
    lo, hi = lo - pad * (hi - lo), hi + pad * (hi - lo)
    step = tick_step(hi - lo, count)
    if integer then step = math.max(step, 1) end
    for k = math.ceil(lo / step), math.floor(hi / step) do ticks[#ticks + 1] = k * step end
  else   -- (a span below a billionth of the values is one value to the eye)
    local v = lo + span / 2
    step = math.abs(v) < 1e-290 and 1 or 10 ^ (magnitude(v) - 1)
    if integer then step = math.max(step, 1) end
    for k = -2, 2 do ticks[#ticks + 1] = v + k * step end
    while digits < 6 and tonumber(string.format("%." .. digits .. "g", v)) ~= v do
      digits = digits + 1   -- the value as logged, up to 6 digits
    end
    lo, hi = v - 2.5 * step, v + 2.5 * step
  end
  local top = 0
  for _, t in ipairs(ticks) do top = math.max(top, math.abs(t)) end
  if top > 0 then digits = math.max(digits, magnitude(top) - magnitude(step) + 1) end
  local fmt = "%." .. math.min(digits, 17) .. "g"
  local function label(t)
    if integer and math.abs(t) < 2 ^ 53 then return string.format("%d", math.floor(t + 0.5)) end
    return string.format(fmt, t)
  end
  return lo, hi, ticks, label
end

-- A value a point can stand on: a number whose coordinates stay finite (a diverged
-- run logs NaN and infinities, and 1e308 would overflow the axis arithmetic).
local function drawable(v)
  return type(v) == "number" and v == v and v >= -1e300 and v <= 1e300
end

-- series: keys of each record to draw, with colours.
local SERIES = {
  {key = "train_loss", label = "train", colour = "#1f77b4"},
  {key = "val_loss", label = "validation", colour = "#d62728"},
}

-- The drawable (iter, value) points of one series, in log order.
local function points_of(records, key)
  local points = {}
  for _, r in ipairs(records) do
    local x, y = tonumber(r.iter), tonumber(r[key])
    if drawable(x) and drawable(y) then points[#points + 1] = {x, y} end
  end
  return points
end

function plot.loss_svg(records, opts)
  opts = opts or {}
  local width, height = opts.width or 720, opts.height or 420
  local left, right, top, bottom = 64, 20, 36, 48
  local xmin, xmax, ymin, ymax = math.huge, -math.huge, math.huge, -math.huge
  local whole = true   -- every iteration drawn is a whole number
  local series = {}
  for i, s in ipairs(SERIES) do
    series[i] = points_of(records, s.key)
    for _, p in ipairs(series[i]) do
      xmin, xmax = math.min(xmin, p[1]), math.max(xmax, p[1])
      ymin, ymax = math.min(ymin, p[2]), math.max(ymax, p[2])
      whole = whole and p[1] == math.floor(p[1])
    end
  end
  if xmin > xmax then error("plot: the log holds no iter/train_loss/val_loss records", 0) end
  local xticks, yticks, xlabel, ylabel
  xmin, xmax, xticks, xlabel = axis(xmin, xmax, 8, 0, whole)
  ymin, ymax, yticks, ylabel = axis(ymin, ymax, 6, 0.05, false)
  local pw, ph = width - left - right, height - top - bottom
  local function px(x) return left + (x - xmin) / (xmax - xmin) * pw end
  local function py(y) return top + (ymax - y) / (ymax - ymin) * ph end

  local out = {}
  local function add(fmt, ...) out[#out + 1] = string.format(fmt, ...) end
  add('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">',
    width, height, width, height)
  add('<rect width="100%%" height="100%%" fill="white"/>')
  add('<text x="%d" y="20" font-size="14">%s</text>', left, escape(opts.title or "loss (nats per token)"))
  for _, y in ipairs(yticks) do
    add('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>', left, width - right, py(y), py(y))
    add('<text class="ytick" x="%d" y="%.1f" text-anchor="end">%s</text>', left - 6, py(y) + 4, ylabel(y))
  end
  for _, x in ipairs(xticks) do
    add('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#eee"/>', px(x), px(x), top, height - bottom)
    add('<text class="xtick" x="%.1f" y="%d" text-anchor="middle">%s</text>', px(x), height - bottom + 16, xlabel(x))
  end
  add('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333"/>', left, top, pw, ph)
  add('<text x="%d" y="%d" text-anchor="middle">iteration</text>', left + pw // 2, height - 10)
  for i, s in ipairs(SERIES) do
    local points = series[i]
    if #points > 0 then
      local xy = {}
      for k, p in ipairs(points) do xy[k] = string.format("%.1f,%.1f", px(p[1]), py(p[2])) end
      -- a line needs two points; a marker on every point shows a lone evaluation too
      if #points > 1 then
        add('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>', s.colour, table.concat(xy, " "))
      end
      for _, p in ipairs(points) do
        add('<circle class="marker" cx="%.1f" cy="%.1f" r="3" fill="%s"/>', px(p[1]), py(p[2]), s.colour)
      end
      add('<text x="%d" y="%d" fill="%s">%s</text>', width - right - 110, top + 16 * i, s.colour, s.label)
    end
  end
  add('</svg>')
  return table.concat(out, "\n") .. "\n"
end

function plot.log_to_svg(log_path, svg_path, opts)
  local svg = plot.loss_svg(plot.read_log(log_path), opts)
  rio.write_file(svg_path, svg, "plot")
  return svg_path
end

return plot
