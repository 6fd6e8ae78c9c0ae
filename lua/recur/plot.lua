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

function plot.loss_svg(records, opts)
  opts = opts or {}
  local width, height = opts.width or 720, opts.height or 420
  local left, right, top, bottom = 64, 20, 36, 48
  local xmin, xmax, ymin, ymax = math.huge, -math.huge, math.huge, -math.huge
  for _, r in ipairs(records) do
    for _, s in ipairs(SERIES) do
      local x, y = tonumber(r.iter), tonumber(r[s.key])
      if drawable(x) and drawable(y) then
        xmin, xmax = math.min(xmin, x), math.max(xmax, x)
        ymin, ymax = math.min(ymin, y), math.max(ymax, y)
      end
    end
  end
  if xmin > xmax then error("plot: the log holds no iter/train_loss/val_loss records", 0) end
  if xmax == xmin then xmax = xmin + 1 end
  if ymax == ymin then ymax, ymin = ymax + 0.5, ymin - 0.5 end
  local pad = 0.05 * (ymax - ymin)
  ymin, ymax = ymin - pad, ymax + pad
  local pw, ph = width - left - right, height - top - bottom
  local function px(x) return left + (x - xmin) / (xmax - xmin) * pw end
  local function py(y) return top + (ymax - y) / (ymax - ymin) * ph end

  local out = {}
  local function add(fmt, ...) out[#out + 1] = string.format(fmt, ...) end
  add('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">',
    width, height, width, height)
  add('<rect width="100%%" height="100%%" fill="white"/>')
  add('<text x="%d" y="20" font-size="14">%s</text>', left, escape(opts.title or "loss (nats per token)"))
  local ystep = tick_step(ymax - ymin, 6)
  for y = math.ceil(ymin / ystep) * ystep, ymax, ystep do
    add('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>', left, width - right, py(y), py(y))
    add('<text x="%d" y="%.1f" text-anchor="end">%s</text>', left - 6, py(y) + 4, string.format("%.3g", y))
  end
  local xstep = tick_step(xmax - xmin, 8)
  for x = math.ceil(xmin / xstep) * xstep, xmax, xstep do
    add('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#eee"/>', px(x), px(x), top, height - bottom)
    add('<text x="%.1f" y="%d" text-anchor="middle">%s</text>', px(x), height - bottom + 16, string.format("%.6g", x))
  end
  add('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333"/>', left, top, pw, ph)
  add('<text x="%d" y="%d" text-anchor="middle">iteration</text>', left + pw // 2, height - 10)
  for i, s in ipairs(SERIES) do
    local points = {}
    for _, r in ipairs(records) do
      local x, y = tonumber(r.iter), tonumber(r[s.key])
      if drawable(x) and drawable(y) then points[#points + 1] = string.format("%.1f,%.1f", px(x), py(y)) end
    end
    if #points > 0 then
      add('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>', s.colour, table.concat(points, " "))
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
