-- recur.plot: loss curves from logs a diverged or hostile run can write (NaN,
-- infinities, values at the edge of a double, non-numeric fields): only drawable points
-- are drawn, and no coordinate in the SVG is NaN or infinite.
local plot = require "recur.plot"

local function coordinates(svg)
  local values = {}
  for list in svg:gmatch('points="([^"]*)"') do
    for v in list:gmatch("[^, ]+") do values[#values + 1] = v end
  end
  for _, attr in ipairs({"x", "y", "x1", "x2", "y1", "y2"}) do
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

describe("plot.loss_svg", function()
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
