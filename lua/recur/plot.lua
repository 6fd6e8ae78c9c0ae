-- Pictures as SVG: loss curves from a training log (one JSON object per line, as
-- written by recur.train with `log = FILE`), line charts of any series, and heatmaps of
-- attention weights (which source tokens each output token looked at).
--
--   local svg = recur.plot.loss_svg(records, {title = "char-lstm"})
--   recur.plot.log_to_svg("train.jsonl", "loss.svg")
--   recur.plot.lines{series = {{label = "lstm", points = {{5, 0.9}, {10, 0.7}}}},
--                    xlabel = "source length", ylabel = "exact match", out = "acc.svg"}
--   recur.plot.heatmap{rows = {"1", "9"}, cols = {"n", "i", "n", "e"},
--                      weights = {{...4 values...}, {...}}, out = "align.svg"}
--
-- Each returns the SVG text and, given `out`, also writes it there.
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

local ENTITIES = {["<"] = "&lt;", [">"] = "&gt;", ["&"] = "&amp;", ['"'] = "&quot;"}

-- Text fit for an SVG file: markup characters escaped, and what XML 1.0 cannot hold
-- at all (control characters, bytes that are not UTF-8) shown as U+FFFD.
local function escape(s)
  s = tostring(s)
  if not utf8.len(s) then
    local kept, i = {}, 1
    while i <= #s do
      if utf8.len(s, i, i) then   -- a whole character starts here
        local n = utf8.offset(s, 2, i) - i
        kept[#kept + 1] = s:sub(i, i + n - 1)
        i = i + n
      else
        kept[#kept + 1] = "\u{FFFD}"
        i = i + 1
      end
    end
    s = table.concat(kept)
  end
  s = s:gsub("[\0\1-\8\11\12\14-\31\127]", "\u{FFFD}")
  return (s:gsub('[<>&"]', ENTITIES))
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

-- The width of a label in pixels at font-size 12, near enough to lay out a picture
-- (about 7 px a character in a sans-serif face).
local function text_width(s)
  return 7 * (utf8.len(s) or #s)
end

-- series: keys of each record to draw, with colours.
local SERIES = {
  {key = "train_loss", label = "train", colour = "#1f77b4"},
  {key = "val_loss", label = "validation", colour = "#d62728"},
}
-- the colours of plot.lines' series, in turn (matplotlib's, which readers know)
local PALETTE = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
                 "#7f7f7f", "#bcbd22", "#17becf"}

-- The drawable (iter, value) points of one series, in log order.
local function points_of(records, key)
  local points = {}
  for _, r in ipairs(records) do
    local x, y = tonumber(r.iter), tonumber(r[key])
    if drawable(x) and drawable(y) then points[#points + 1] = {x, y} end
  end
  return points
end

-- A line chart of series {{label =, colour =, points = {{x, y}, ...}}, ...} (drawable
-- points only; a series without points is left out but keeps its legend row free).
-- opts: width, height, title, xlabel, ylabel, y_range = {lo, hi} (always shown),
-- legend_outside (the legend right of the frame, where no line can run under it; else
-- in its top right corner). nil when no series has a point.
local function line_chart(series, opts)
  local width, height = opts.width or 720, opts.height or 420
  local left, right, top, bottom = 64, 20, 36, 48
  local legend_x = width - right - 110
  if opts.legend_outside then
    local widest = 0
    for _, s in ipairs(series) do widest = math.max(widest, text_width(tostring(s.label))) end
    right = 20 + math.ceil(1.2 * widest)   -- room for a face wider than the guess
    legend_x = width - right + 10
  end
  local xmin, xmax, ymin, ymax = math.huge, -math.huge, math.huge, -math.huge
  local whole = true   -- every x drawn is a whole number
  for _, s in ipairs(series) do
    for _, p in ipairs(s.points) do
      xmin, xmax = math.min(xmin, p[1]), math.max(xmax, p[1])
      ymin, ymax = math.min(ymin, p[2]), math.max(ymax, p[2])
      whole = whole and p[1] == math.floor(p[1])
    end
  end
  if xmin > xmax then return nil end
  if opts.y_range then
    ymin, ymax = math.min(ymin, opts.y_range[1]), math.max(ymax, opts.y_range[2])
  end
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
  add('<text x="%d" y="20" font-size="14">%s</text>', left, escape(opts.title))
  for _, y in ipairs(yticks) do
    add('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>', left, width - right, py(y), py(y))
    add('<text class="ytick" x="%d" y="%.1f" text-anchor="end">%s</text>', left - 6, py(y) + 4, ylabel(y))
  end
  for _, x in ipairs(xticks) do
    add('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#eee"/>', px(x), px(x), top, height - bottom)
    add('<text class="xtick" x="%.1f" y="%d" text-anchor="middle">%s</text>', px(x), height - bottom + 16, xlabel(x))
  end
  add('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333"/>', left, top, pw, ph)
  add('<text x="%d" y="%d" text-anchor="middle">%s</text>', left + pw // 2, height - 10, escape(opts.xlabel))
  if opts.ylabel then
    add('<text x="14" y="%d" text-anchor="middle" transform="rotate(-90 14 %d)">%s</text>',
      top + ph // 2, top + ph // 2, escape(opts.ylabel))
  end
  for i, s in ipairs(series) do
    local points = s.points
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
      add('<text x="%d" y="%d" fill="%s">%s</text>', legend_x, top + 16 * i, s.colour, escape(s.label))
    end
  end
  add('</svg>')
  return table.concat(out, "\n") .. "\n"
end

function plot.loss_svg(records, opts)
  opts = opts or {}
  local series = {}
  for i, s in ipairs(SERIES) do
    series[i] = {label = s.label, colour = s.colour, points = points_of(records, s.key)}
  end
  local svg = line_chart(series, {width = opts.width, height = opts.height, xlabel = "iteration",
    title = opts.title or "loss (nats per token)"})
  if not svg then error("plot: the log holds no iter/train_loss/val_loss records", 0) end
  return svg
end

-- The SVG text, written to opts.out when given (`who` names the function in errors).
local function emit(who, svg, out)
  if out ~= nil then
    if type(out) ~= "string" then error(who .. ": out must be a file path, got " .. type(out), 3) end
    rio.write_file(out, svg, who)
  end
  return svg
end

local function check_table(who, what, v, level)
  if type(v) ~= "table" then
    error(string.format("%s: %s must be a table, got %s", who, what, type(v)), level + 1)
  end
  return v
end

local function check_text(who, what, v, level)
  if v ~= nil and type(v) ~= "string" and type(v) ~= "number" then
    error(string.format("%s: %s must be a string, got %s", who, what, type(v)), level + 1)
  end
  return v
end

-- A line chart of several series against a common x, e.g. accuracy against source
-- length for several models:
--   plot.lines{series = {{label = "no attention", points = {{x, y}, ...}}, ...},
--              title =, xlabel =, ylabel =, y_range = {0, 1}, width = 720, height = 420,
--              out = path}
-- Points are drawn in the order given, joined by a line, each with a marker; points
-- whose x or y is not a finite number are left out. A series may set its colour (else
-- matplotlib's ten, in turn). y_range widens the y axis to hold it (accuracies: {0, 1}).
function plot.lines(opts)
  local who = "plot.lines"
  check_table(who, "its argument", opts, 2)
  local series = {}
  for i, s in ipairs(check_table(who, "series", opts.series, 2)) do
    check_table(who, "series[" .. i .. "]", s, 2)
    check_text(who, "series[" .. i .. "].label", s.label, 2)
    local points = {}
    for k, p in ipairs(check_table(who, "series[" .. i .. "].points", s.points, 2)) do
      check_table(who, string.format("series[%d].points[%d]", i, k), p, 2)
      if drawable(p[1]) and drawable(p[2]) then points[#points + 1] = {p[1], p[2]} end
    end
    series[i] = {label = s.label or ("series " .. i), colour = s.colour or PALETTE[(i - 1) % #PALETTE + 1],
      points = points}
  end
  local r = opts.y_range
  if r ~= nil and not (type(r) == "table" and drawable(r[1]) and drawable(r[2]) and r[1] <= r[2]) then
    error(who .. ": y_range must be {lo, hi} with finite lo <= hi", 2)
  end
  for _, key in ipairs({"width", "height"}) do
    local v = opts[key]
    if v ~= nil and not (math.type(v) == "integer" and v >= 200 and v <= 10000) then
      error(string.format("%s: %s must be a whole number of pixels in 200..10000, got %s", who, key, tostring(v)), 2)
    end
  end
  local svg = line_chart(series, {width = opts.width, height = opts.height, y_range = r, legend_outside = true,
    title = check_text(who, "title", opts.title, 2) or "",
    xlabel = check_text(who, "xlabel", opts.xlabel, 2) or "",
    ylabel = check_text(who, "ylabel", opts.ylabel, 2)})
  if not svg then error(who .. ": no series has a drawable point", 2) end
  return emit(who, svg, opts.out)
end

-- A heatmap of attention weights, the way alignments are shown since Bahdanau et al.
-- (2015): one column per source token, one row per output token, the cell at (i, j)
-- as dark as the weight output token i gave source token j (white 0, black 1).
--   plot.heatmap{rows = {output tokens}, cols = {source tokens},
--                weights = {{w11, ..., w1C}, ..., {wR1, ..., wRC}} (values in [0, 1]),
--                title =, xlabel = "source", ylabel = "output", cell = 20, out = path}
-- Column labels stand upright when every one fits its cell, else they are turned to
-- read upwards. Each cell carries a <title> (a tooltip in browsers) with its weight.
function plot.heatmap(opts)
  local who = "plot.heatmap"
  check_table(who, "its argument", opts, 2)
  local rows, cols, weights = opts.rows, opts.cols, opts.weights
  for _, side in ipairs({{"rows", rows}, {"cols", cols}}) do
    check_table(who, side[1], side[2], 2)
    if #side[2] == 0 then error(string.format("%s: %s must hold at least one token", who, side[1]), 2) end
    for i = 1, #side[2] do
      local t = side[2][i]
      if type(t) ~= "string" and type(t) ~= "number" then
        error(string.format("%s: %s[%d] must be a token (a string), got %s", who, side[1], i, type(t)), 2)
      end
    end
  end
  local R, C = #rows, #cols
  check_table(who, "weights", weights, 2)
  if #weights ~= R then
    error(string.format("%s: weights has %d rows, expected %d (one per entry of rows)", who, #weights, R), 2)
  end
  for i = 1, R do
    local row = weights[i]
    if type(row) ~= "table" or #row ~= C then
      error(string.format("%s: weights[%d] must hold %d numbers (one per entry of cols), got %s", who, i, C,
        type(row) == "table" and #row or type(row)), 2)
    end
    for j = 1, C do
      local w = row[j]
      if type(w) ~= "number" or not (w >= 0 and w <= 1) then
        error(string.format("%s: weights[%d][%d] must be a number in [0, 1], got %s", who, i, j, tostring(w)), 2)
      end
    end
  end
  local cell = opts.cell or 20
  if not (math.type(cell) == "integer" and cell >= 4 and cell <= 200) then
    error(who .. ": cell must be a whole number of pixels in 4..200, got " .. tostring(cell), 2)
  end
  local title = check_text(who, "title", opts.title, 2)
  local xname = check_text(who, "xlabel", opts.xlabel, 2) or "source"
  local yname = check_text(who, "ylabel", opts.ylabel, 2) or "output"

  local row_text, col_text, widest_row, widest_col = {}, {}, 0, 0
  for i = 1, R do
    row_text[i] = escape(rows[i])
    widest_row = math.max(widest_row, text_width(tostring(rows[i])))
  end
  for j = 1, C do
    col_text[j] = escape(cols[j])
    widest_col = math.max(widest_col, text_width(tostring(cols[j])))
  end
  local upright = widest_col <= cell - 2
  local left = 28 + widest_row + 6                            -- y axis name, labels, gap
  local top = (title and 28 or 8) + (upright and 18 or widest_col + 8)
  local gw, gh = C * cell, R * cell
  local bar = 12                                              -- the scale's width
  local width = left + gw + 24 + bar + 40
  local height = math.max(top + gh + 32, top + 120)

  local out = {}
  local function add(fmt, ...) out[#out + 1] = string.format(fmt, ...) end
  add('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">',
    width, height, width, height)
  add('<rect width="100%%" height="100%%" fill="white"/>')
  if title then add('<text x="8" y="20" font-size="14">%s</text>', escape(title)) end
  for j = 1, C do
    local x = left + (j - 0.5) * cell
    if upright then
      add('<text class="col" x="%.1f" y="%d" text-anchor="middle">%s</text>', x, top - 6, col_text[j])
    else   -- turned a quarter anticlockwise, its end just above the column
      add('<text class="col" x="%.1f" y="%d" transform="rotate(-90 %.1f %d)">%s</text>', x + 4, top - 6,
        x + 4, top - 6, col_text[j])
    end
  end
  for i = 1, R do
    add('<text class="row" x="%d" y="%.1f" text-anchor="end">%s</text>', left - 6, top + (i - 0.5) * cell + 4,
      row_text[i])
  end
  for i = 1, R do
    for j = 1, C do
      local w = weights[i][j]
      local v = math.floor(255 * (1 - w) + 0.5)
      add('<rect class="cell" x="%d" y="%d" width="%d" height="%d" fill="#%02x%02x%02x"><title>%s / %s: %.3f</title></rect>',
        left + (j - 1) * cell, top + (i - 1) * cell, cell, cell, v, v, v, row_text[i], col_text[j], w)
    end
  end
  add('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333"/>', left, top, gw, gh)
  add('<text x="%d" y="%d" text-anchor="middle">%s</text>', left + gw // 2, top + gh + 20, escape(xname))
  add('<text x="14" y="%d" text-anchor="middle" transform="rotate(-90 14 %d)">%s</text>', top + gh // 2,
    top + gh // 2, escape(yname))
  -- the scale: black (1) at the top to white (0) at the bottom
  local bx, bh = left + gw + 24, math.max(gh, 100)
  add('<defs><linearGradient id="scale" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="#000000"/><stop offset="1" stop-color="#ffffff"/></linearGradient></defs>')
  add('<rect x="%d" y="%d" width="%d" height="%d" fill="url(#scale)" stroke="#333"/>', bx, top, bar, bh)
  add('<text x="%d" y="%d">1</text>', bx + bar + 4, top + 10)
  add('<text x="%d" y="%d">0</text>', bx + bar + 4, top + bh)
  add('</svg>')
  return emit(who, table.concat(out, "\n") .. "\n", opts.out)
end

function plot.log_to_svg(log_path, svg_path, opts)
  local svg = plot.loss_svg(plot.read_log(log_path), opts)
  rio.write_file(svg_path, svg, "plot")
  return svg_path
end

return plot
