-- The progress bar, plain log lines and the SVG loss plot.
local recur = require "recur"

local function buffer()
  local b = {parts = {}}
  function b:write(...) for _, s in ipairs({...}) do self.parts[#self.parts + 1] = s end return self end
  function b:flush() return self end
  function b:text() return table.concat(self.parts) end
  return b
end

describe("progress", function()
  it("runs under Lua 5.4", function() assert.are.equal("Lua 5.4", _VERSION) end)

  it("draws a bar in place on a terminal", function()
    local out = buffer()
    local bar = recur.progress.new{total = 10, out = out, terminal = true, width = 10}
    bar:update(5, {loss = 1.5, tokens = 100, force = true})
    local text = out:text()
    assert.is_truthy(text:find("\r\027[K[#####-----]  50%  iter 5/10  loss 1.5000", 1, true))
    assert.is_truthy(text:find("tok/s", 1, true))
    assert.is_truthy(text:find("left", 1, true))
    bar:log("eval")
    assert.is_truthy(out:text():find("\r\027[Keval\n", 1, true))
  end)

  it("writes plain lines every N iterations elsewhere", function()
    local out = buffer()
    local bar = recur.progress.new{total = 100, out = out, terminal = false, every = 25}
    for i = 1, 100 do bar:update(i, {loss = 2}) end
    local _, lines = out:text():gsub("\n", "")
    assert.are.equal(4, lines)
    assert.is_nil(out:text():find("\r", 1, true))
  end)

  it("reports an output that cannot be written", function()
    local full = {write = function() return nil, "No space left on device" end,
                  flush = function(self) return self end}
    local bar = recur.progress.new{total = 10, out = full, terminal = false, every = 1}
    assert.has_error(function() bar:update(1, {loss = 2}) end,
      "cannot write the progress output: No space left on device")
    assert.has_error(function() bar:log("eval") end,
      "cannot write the progress output: No space left on device")
    local unflushable = {write = function(self) return self end,
                         flush = function() return nil, "Broken pipe" end}
    bar = recur.progress.new{total = 10, out = unflushable, terminal = true}
    assert.has_error(function() bar:finish() end, "cannot write the progress output: Broken pipe")
  end)

  it("formats durations", function()
    assert.are.equal("01:05", recur.progress.format_duration(65))
    assert.are.equal("2:00:01", recur.progress.format_duration(7201))
    assert.are.equal("--:--", recur.progress.format_duration(math.huge))
  end)
end)

describe("plot", function()
  it("turns a JSON-lines log into an SVG with both curves", function()
    local log, svg_path = os.tmpname(), os.tmpname()
    finally(function() os.remove(log); os.remove(svg_path) end)
    local f = assert(io.open(log, "w"))
    f:write('{"iter": 100, "train_loss": 3.0, "val_loss": 3.2}\n')
    f:write('{"iter": 200, "train_loss": 2.0, "val_loss": 2.4}\n')
    f:close()
    recur.plot.log_to_svg(log, svg_path)
    local svg = assert(io.open(svg_path)):read("a")
    assert.is_truthy(svg:find("^<svg"))
    local _, polylines = svg:gsub("<polyline", "")
    assert.are.equal(2, polylines)
    assert.is_truthy(svg:find(">validation<", 1, true))
  end)

  it("reports an SVG that cannot be written", function()
    local log = os.tmpname()
    finally(function() os.remove(log) end)
    local f = assert(io.open(log, "w"))
    f:write('{"iter": 100, "train_loss": 3.0, "val_loss": Infinity}\n')
    f:close()
    assert.has_error(function() recur.plot.log_to_svg(log, "/dev/full") end,
      "plot: cannot write '/dev/full': No space left on device")
  end)

  it("reports a missing or malformed log in one line", function()
    assert.has_error(function() recur.plot.read_log("/nonexistent/log") end)
    local log = os.tmpname()
    finally(function() os.remove(log) end)
    local f = assert(io.open(log, "w"))
    f:write("not json\n")
    f:close()
    assert.has_error(function() recur.plot.read_log(log) end, "plot: '" .. log .. "' line 1 is not a JSON object")
  end)
end)
