-- bench/attention_compare.lua end to end at a toy size (3 batches per model): the table
-- lists each model and the held-out pairs per length bucket, adding up to the held-out
-- tenth; the curves have one line per model; the heatmap has one cell per output and
-- source token of the drawn date; bad flags are refused. Run from the repository root:
--   busted --lua=lua5.4 bench/attention_compare_spec.lua
local helpers = require "spec.support.helpers"

describe("bench/attention_compare.lua", function()
  it("writes the table, the curves and one date's alignment", function()
    local dir = helpers.tmp_dir()
    local cmd = "lua5.4 bench/attention_compare.lua --iters 3 --data dates --attention none,luong-dot"
      .. " --heatmap-source '3 mar 99' --out-dir " .. helpers.q(dir) .. " 2>/dev/null"
    local p = assert(io.popen(cmd))
    local printed = p:read("a")
    assert.is_true(p:close())
    local md = helpers.read_all(dir .. "/attention_iters.md")
    assert.are.equal(printed, md)
    assert.matches("after 3 batches of training each", md)
    local rows = {}
    for name, batches in md:gmatch("\n| ([%w-]+) | %d+ | (%d+) |") do rows[#rows + 1] = name .. " " .. batches end
    assert.are.same({"none 3", "luong-dot 3"}, rows)
    -- the held-out row: the total, then one count per bucket, adding up to it
    local counts = md:match("\n| held%-out pairs |[ |]*(%d[%d |]*)")
    local total, sum = nil, 0
    for n in counts:gmatch("%d+") do
      if not total then total = tonumber(n) else sum = sum + tonumber(n) end
    end
    assert.are.equal(1000, total)
    assert.are.equal(1000, sum)

    local curves = helpers.read_all(dir .. "/attention_dates_iters.svg")
    local lines = 0
    for _ in curves:gmatch("<polyline") do lines = lines + 1 end
    assert.are.equal(2, lines)

    local heat = helpers.read_all(dir .. "/attention_date_iters.svg")
    local cells = 0
    for _ in heat:gmatch('class="cell"') do cells = cells + 1 end
    local out_rows = 0
    for _ in heat:gmatch('class="row"') do out_rows = out_rows + 1 end
    assert.is_true(out_rows >= 1)
    assert.are.equal(out_rows * #"3 mar 99", cells)   -- a column per character
    helpers.remove_dir(dir)
  end)

  it("refuses an unknown data set", function()
    local p = assert(io.popen("lua5.4 bench/attention_compare.lua --data weather 2>&1"))
    local out = p:read("a")
    assert.is_falsy(p:close())
    assert.matches("unknown data set 'weather'", out)
  end)
end)
