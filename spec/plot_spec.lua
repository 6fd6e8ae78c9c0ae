-- recur.plot: loss curves from logs a diverged or hostile run can write (NaN,
-- infinities, values at the edge of a double, non-numeric fields): only drawable points
-- are drawn, and no coordinate in the SVG is NaN or infinite. Line charts of several
-- series, and attention heatmaps: their cells counted and their shades compared with
-- the weights (hand-computed greys), their labels escaped, their bad input refused.
local plot = require "recur.plot"
local helpers = require "spec.support.helpers"

local function coordinates(svg)
  local values = {}
  for list in svg:gmatch('points="([^"]*)"') do
    for v in list:gmatch("[^, ]+") do values[#values + 1] = v end
  end
  for _, attr in ipairs({"x", "y", "x1", "x2", "y1", "y2", "cx", "cy"}) do
    for v in svg:gmatch("%s" .. attr .. '="([^"]*)"') do values[#values + 1] = v end
  end
  return values
end

local function points_of(svg)
  local counts = {}
  for list in svg:gmatch('points="([^"]*)"') do
    local n = 0
    for _ in list:gmatch("%S+") do n = n + 1 end
    counts[#counts + 1] = n
  end
  return counts
end

-- The markers as {cx, cy} strings, in document order.
local function markers(svg)
  local out = {}
  for attrs in svg:gmatch("<circle([^>]*)>") do
    out[#out + 1] = {attrs:match(' cx="([^"]*)"'), attrs:match(' cy="([^"]*)"')}
  end
  return out
end

-- The tick labels of an axis ("x" or "y") as a list of {text, position}: the x (or y)
-- attribute of the label.
local function ticks(svg, which)
  local out = {}
  for attrs, text in svg:gmatch('<text class="' .. which .. 'tick"([^>]*)>([^<]*)</text>') do
    out[#out + 1] = {text, tonumber(attrs:match(" " .. which .. '="([^"]*)"'))}
  end
  return out
end

local function assert_distinct(labels)
  local seen = {}
  for _, t in ipairs(labels) do
    assert.is_nil(seen[t[1]], "tick label " .. t[1] .. " twice")
    seen[t[1]] = true
  end
end

local function tick_at(labels, text)
  for _, t in ipairs(labels) do if t[1] == text then return t[2] end end
  error("no tick labelled " .. text)
end

describe("plot.loss_svg", function()
  it("shows a single evaluation as a point on a labelled tick of each axis", function()
    local svg = plot.loss_svg({{iter = 208, train_loss = 4.1712}})
    local m = markers(svg)
    assert.are.equal(1, #m)
    local xs, ys = ticks(svg, "x"), ticks(svg, "y")
    assert.is_true(#xs >= 3 and #ys >= 3)
    assert_distinct(xs)
    assert_distinct(ys)
    for _, t in ipairs(xs) do assert.matches("^%-?%d+$", t[1]) end   -- iterations are whole
    -- the point stands where the ticks of its values are (labels sit 4 px below a y grid line)
    assert.are.equal(string.format("%.1f", tick_at(xs, "208")), m[1][1])
    assert.are.equal(string.format("%.1f", tick_at(ys, "4.1712") - 4), m[1][2])
    -- mid-frame: the frame is x 64..700, y 36..372
    assert.near(382, tonumber(m[1][1]), 1)
    assert.near(204, tonumber(m[1][2]), 1)
  end)

  it("labels the ticks of one evaluation whose losses nearly agree with distinct values", function()
    -- the log that drew x ticks 208, 208.2 ... 209 and "4.17" three times
    local svg = plot.loss_svg({{iter = 208, train_loss = 4.1712, val_loss = 4.1715}})
    assert.are.equal(2, #markers(svg))
    local xs, ys = ticks(svg, "x"), ticks(svg, "y")
    assert_distinct(xs)
    assert_distinct(ys)
    tick_at(xs, "208")
    for _, t in ipairs(xs) do assert.matches("^%-?%d+$", t[1]) end
    for _, t in ipairs(ys) do assert.is_true(tonumber(t[1]) > 4.17 and tonumber(t[1]) < 4.172, t[1]) end
  end)

  it("marks every point of every curve", function()
    local svg = plot.loss_svg({
      {iter = 100, train_loss = 3.0, val_loss = 3.2},
      {iter = 150, train_loss = 2.6},
      {iter = 200, train_loss = 2.0, val_loss = 2.4},
    })
    local centres = {}
    for _, c in ipairs(markers(svg)) do centres[#centres + 1] = c[1] .. "," .. c[2] end
    local lines = {}
    for list in svg:gmatch('points="([^"]*)"') do
      for xy in list:gmatch("%S+") do lines[#lines + 1] = xy end
    end
    assert.are.equal(5, #lines)
    assert.are.same(lines, centres)
    assert_distinct(ticks(svg, "x"))
    assert_distinct(ticks(svg, "y"))
  end)


  it("draws only finite points and writes no NaN or infinite coordinate", function()
    local nan = 0 / 0
    local records = {
      {iter = 1, train_loss = 4.0, val_loss = 4.2},
      {iter = 2, train_loss = nan, val_loss = math.huge},
      {iter = 3, train_loss = -math.huge, val_loss = 1e308},
      {iter = nan, train_loss = 3.0, val_loss = 3.0},
      {iter = 1e308, train_loss = 3.0},
      {iter = "x", train_loss = 3.0},
      {iter = 4, train_loss = 2.5, val_loss = 2.9},
    }
    local svg = plot.loss_svg(records)
    for _, v in ipairs(coordinates(svg)) do
      assert.is_truthy(tonumber(v), "coordinate " .. v)
      local n = tonumber(v)
      assert.is_true(n == n and n > -math.huge and n < math.huge, "coordinate " .. v)
    end
    assert.are.same({2, 2}, points_of(svg))   -- iterations 1 and 4 of each series
  end)

  it("refuses a log with nothing drawable", function()
    assert.has_error(function() plot.loss_svg({{iter = 1, train_loss = 0 / 0}}) end,
      "plot: the log holds no iter/train_loss/val_loss records")
  end)
end)

-- Every '&' of the text starts one of XML's entities, and no '<' is left inside text.
local function assert_well_escaped(svg)
  for amp in svg:gmatch("&[^;]*;?") do
    assert.is_truthy(({["&lt;"] = 1, ["&gt;"] = 1, ["&amp;"] = 1, ["&quot;"] = 1})[amp], "stray " .. amp)
  end
  for text in svg:gmatch(">([^<]*)<") do assert.is_nil(text:find(">", 1, true), text) end
end

describe("plot.lines", function()
  local two = {
    {label = "no attention", points = {{10, 0.9}, {20, 0.5}, {30, 0.25}}},
    {label = "a<b & c", points = {{10, 1}, {20, 0 / 0}, {30, 0.75}}},
  }

  it("draws each series' drawable points with a marker and a line, and escapes its label", function()
    local svg = plot.lines{series = two, xlabel = "source length", ylabel = "exact match", y_range = {0, 1}}
    assert.are.same({3, 2}, points_of(svg))   -- the NaN point is left out
    assert.are.equal(5, #markers(svg))
    assert.truthy(svg:find(">a&lt;b &amp; c</text>", 1, true))
    assert.truthy(svg:find(">no attention</text>", 1, true))
    assert.truthy(svg:find(">exact match</text>", 1, true))
    assert_well_escaped(svg)
    -- y_range {0, 1} is shown whole, though the points span 0.25..1
    local ys = ticks(svg, "y")
    tick_at(ys, "0")
    tick_at(ys, "1")
    -- accuracy 0.5 at length 20 sits halfway between the ticks 0 and 1
    local m = markers(svg)
    assert.near((tick_at(ys, "0") + tick_at(ys, "1")) / 2 - 4, tonumber(m[2][2]), 0.1)
    assert.are.equal(tonumber(m[2][1]), tick_at(ticks(svg, "x"), "20"))
    -- the two series differ in colour
    local fills = {}
    for attrs in svg:gmatch("<circle([^>]*)>") do fills[attrs:match('fill="([^"]*)"')] = true end
    local n = 0
    for _ in pairs(fills) do n = n + 1 end
    assert.are.equal(2, n)
  end)

  it("writes what it returns to out", function()
    local path = os.tmpname()
    local svg = plot.lines{series = two, out = path}
    assert.are.equal(svg, helpers.read_all(path))
    os.remove(path)
  end)

  it("refuses bad input with errors that name plot.lines", function()
    for _, bad in ipairs({
      {nil, "its argument must be a table"},
      {{}, "series must be a table"},
      {{series = {{points = {{1, 0 / 0}}}}}, "no series has a drawable point"},
      {{series = {{points = 3}}}, "series%[1%]%.points must be a table"},
      {{series = two, y_range = {1, 0}}, "y_range"},
      {{series = two, out = 7}, "out must be a file path"},
    }) do
      local err = helpers.err_of(plot.lines, bad[1]):gsub("^[^:]*:%d+: ", "")   -- (a position, if any)
      assert.matches("^plot%.lines: .*" .. bad[2], err)
    end
  end)
end)

describe("plot.heatmap", function()
  -- The cells as {x, y, grey 0..255} in document order.
  local function cells(svg)
    local out = {}
    for attrs in svg:gmatch('<rect class="cell"([^>]*)>') do
      local grey = attrs:match('fill="#(%x%x)')
      assert.are.equal(grey:rep(3), attrs:match('fill="#(%x+)"'))   -- a grey: r = g = b
      out[#out + 1] = {tonumber(attrs:match(' x="([^"]*)"')), tonumber(attrs:match(' y="([^"]*)"')),
        tonumber(grey, 16)}
    end
    return out
  end

  local rows = {"1", "9", "</s>"}
  local cols = {"the", "3rd", "of", "<march>", "&"}
  local weights = {
    {0.1, 0.2, 0.0, 0.7, 0.0},
    {0.0, 0.05, 0.05, 0.1, 0.8},
    {1.0, 0.0, 0.0, 0.0, 0.0},
  }

  it("has one cell per weight, laid out row by row, as dark as its weight", function()
    local svg = plot.heatmap{rows = rows, cols = cols, weights = weights}
    local c = cells(svg)
    assert.are.equal(#rows * #cols, #c)
    -- hand-computed greys: round(255 * (1 - w))
    assert.are.equal(230, c[1][3])   -- 0.1
    assert.are.equal(77, c[4][3])    -- 0.7
    assert.are.equal(255, c[3][3])   -- 0
    assert.are.equal(0, c[11][3])    -- 1
    local darkest, at = 256, nil
    for k, cell in ipairs(c) do
      if cell[3] < darkest then darkest, at = cell[3], k end
      local i, j = (k - 1) // #cols + 1, (k - 1) % #cols + 1
      -- columns left to right, rows top to bottom, in steps of one cell
      assert.are.equal(c[1][1] + 20 * (j - 1), cell[1])
      assert.are.equal(c[1][2] + 20 * (i - 1), cell[2])
    end
    assert.are.equal(11, at)   -- row 3, column 1: the weight 1.0
  end)

  it("puts the darkest cell at the largest weight of random weights", function()
    local R, C = 7, 11
    local w, best, at = {}, -1, nil
    local rng = require("recur.data.shuffle").new(5)
    for i = 1, R do
      w[i] = {}
      for j = 1, C do
        w[i][j] = rng:uniform()
        if w[i][j] > best then best, at = w[i][j], (i - 1) * C + j end
      end
    end
    local c = cells(plot.heatmap{rows = {"a", "b", "c", "d", "e", "f", "g"},
      cols = {"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"}, weights = w})
    local darkest = 256
    for _, cell in ipairs(c) do darkest = math.min(darkest, cell[3]) end
    assert.are.equal(darkest, c[at][3])
    assert.are.equal(math.floor(255 * (1 - best) + 0.5), darkest)
  end)

  it("writes every token label once, escaped, and turns long column labels", function()
    local svg = plot.heatmap{rows = rows, cols = cols, weights = weights, title = "dates & <times>"}
    assert_well_escaped(svg)
    local got = {}
    for class, text in svg:gmatch('<text class="(%a+)"[^>]*>([^<]*)</text>') do
      got[#got + 1] = class .. " " .. text
    end
    assert.are.same({"col the", "col 3rd", "col of", "col &lt;march&gt;", "col &amp;",
      "row 1", "row 9", "row &lt;/s&gt;"}, got)
    assert.truthy(svg:find(">dates &amp; &lt;times&gt;</text>", 1, true))
    -- "the" is wider than a cell of 20: the column labels are turned, the row labels not
    for attrs in svg:gmatch('<text class="col"([^>]*)>') do assert.matches('transform="rotate%(%-90 ', attrs) end
    for attrs in svg:gmatch('<text class="row"([^>]*)>') do assert.is_nil(attrs:find("transform")) end
    -- one-character columns stand upright
    local upright = plot.heatmap{rows = {"x"}, cols = {"a", "b"}, weights = {{0.5, 0.5}}}
    for attrs in upright:gmatch('<text class="col"([^>]*)>') do assert.is_nil(attrs:find("transform")) end
  end)

  it("shows what XML cannot hold (control characters, bytes that are not UTF-8) as U+FFFD", function()
    local svg = plot.heatmap{rows = {"a\1b", "\255"}, cols = {"é", "\0"}, weights = {{0, 1}, {1, 0}}}
    assert.truthy(svg:find(">a\u{FFFD}b</text>", 1, true))
    assert.truthy(svg:find(">\u{FFFD}</text>", 1, true))
    assert.truthy(svg:find(">é</text>", 1, true))
    assert.truthy(utf8.len(svg))
    assert.is_nil(svg:find("[%z\1-\8]"))
  end)

  it("writes what it returns to out", function()
    local path = os.tmpname()
    local svg = plot.heatmap{rows = {"x"}, cols = {"a"}, weights = {{0.25}}, out = path}
    assert.are.equal(svg, helpers.read_all(path))
    os.remove(path)
  end)

  it("refuses bad input with errors that name plot.heatmap", function()
    local ok = {rows = {"a", "b"}, cols = {"x"}, weights = {{0.5}, {0.5}}}
    local function with(k, v)
      local o = {}
      for key, val in pairs(ok) do o[key] = val end
      o[k] = v
      return o
    end
    for _, bad in ipairs({
      {"not a table", "its argument must be a table"},
      {with("rows", nil), "rows must be a table"},
      {with("rows", {}), "rows must hold at least one token"},
      {with("cols", {"x", {}}), "cols%[2%] must be a token"},
      {with("weights", {{0.5}}), "weights has 1 rows, expected 2"},
      {with("weights", {{0.5}, {0.5, 0.5}}), "weights%[2%] must hold 1 numbers"},
      {with("weights", {{0.5}, {1.5}}), "weights%[2%]%[1%] must be a number in %[0, 1%], got 1.5"},
      {with("weights", {{0 / 0}, {0.5}}), "weights%[1%]%[1%] must be a number in %[0, 1%]"},
      {with("weights", {{"0.5"}, {0.5}}), "weights%[1%]%[1%] must be a number"},
      {with("cell", 2.5), "cell must be a whole number"},
      {with("out", {}), "out must be a file path"},
    }) do
      local err = helpers.err_of(plot.heatmap, bad[1]):gsub("^[^:]*:%d+: ", "")
      assert.matches("^plot%.heatmap: " .. bad[2], err)
    end
    assert.has_error(function() plot.heatmap(with("out", "/nonexistent/dir/a.svg")) end)
  end)
end)
