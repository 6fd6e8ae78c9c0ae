-- recur.plot: loss curves from logs a diverged or hostile run can write (NaN,
-- infinities, values at the edge of a double, non-numeric fields): only drawable points
-- are drawn, and no coordinate in the SVG is NaN or infinite.
local plot = require "recur.plot"

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
