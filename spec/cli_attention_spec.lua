-- `recur train --task seq2seq --attention ...` and `recur attention` through bin/recur:
-- a run with attention and a bidirectional encoder trains (its validation loss falls)
-- and records both in its checkpoint, which --resume keeps; `recur attention` draws the
-- weights of one translation as an SVG whose labels are the source's and the
-- translation's tokens and whose cells are the weights greedy decoding reports; unknown
-- --attention values, a model without attention and another kind of checkpoint are
-- one-line errors.
local helpers = require "spec.support.helpers"
local recur = require "recur"

local one_line_error = helpers.assert_one_line_error

local ok_run = helpers.run_recur_ok

local SEQ2SEQ = "train --task seq2seq --data data/numbers.tsv --src-level word --hidden 32 --embed 16 --lr 0.01 --threads 1 --quiet"

describe("recur train --attention and recur attention", function()
  local dir
  setup(function() dir = helpers.tmp_dir() end)
  teardown(function() helpers.remove_dir(dir) end)

  it("trains a seq2seq model with luong-general attention and records it; draws one translation's attention", function()
    local log = dir .. "/log.jsonl"
    ok_run(SEQ2SEQ .. " --attention luong-general --bidirectional --max-iters 150 --eval-every 50 --checkpoint-dir "
      .. dir .. "/a --log " .. log)
    local records = recur.plot.read_log(log)
    assert.are.equal(3, #records)
    for i = 2, 3 do assert.is_true(records[i].val_loss < records[i - 1].val_loss) end
    local model, info = recur.checkpoint.load(dir .. "/a/best.safetensors")
    assert.are.equal("luong-general", info.config.attention)
    assert.is_true(info.config.bidirectional)

    local svg_path = dir .. "/attn.svg"
    local src = "four hundred and twelve"
    local out = ok_run("attention --checkpoint " .. dir .. "/a/best.safetensors --src '" .. src .. "' --out " .. svg_path)
    assert.is_truthy(out:find("^wrote " .. svg_path:gsub("%p", "%%%0")))
    local svg = helpers.read_all(svg_path)
    assert.is_truthy(svg:find("^<svg"))
    -- the cells are greedy's weights: one per (output token, source token), labelled
    local ids = info.data.source:encode(src)
    local x = recur.tensor(ids, "int64"):reshape(#ids, 1)
    model:evaluate()
    local hyp, weights = model:greedy(x, nil, {attention = true})
    local cells = 0
    for _ in svg:gmatch('<rect class="cell"') do cells = cells + 1 end
    assert.are.equal(#hyp[1] * #ids, cells)
    for _, word in ipairs({"four", "hundred", "and", "twelve", "&lt;/s&gt;"}) do
      assert.is_truthy(svg:find(">" .. word .. "</text>", 1, true), word)
    end
    local first = info.data.target.vocab:token(hyp[1][1])
    local want = string.format("<title>%s / four: %.3f</title>", first, weights[1][1][1])
    assert.is_truthy(svg:find(want, 1, true), want)

    -- --resume keeps the checkpoint's attention; another value is refused
    one_line_error(SEQ2SEQ .. " --resume " .. dir .. "/a/last.safetensors --attention bahdanau --max-iters 160 --checkpoint-dir "
      .. dir .. "/a", "^recur: seq2seq: %-%-attention bahdanau differs from luong%-general in")
  end)

  it("resumes exactly with attention and dropout: 8 iterations equal 4 and 4 more from the checkpoint", function()
    local flags = " --attention luong-concat --layers 2 --dropout 0.1 --model gru --max-iters 8 --eval-every 4 --checkpoint-dir "
    ok_run(SEQ2SEQ .. flags .. dir .. "/whole")
    ok_run(SEQ2SEQ .. flags:gsub("max%-iters 8", "max-iters 4") .. dir .. "/half")
    ok_run(SEQ2SEQ .. flags .. dir .. "/half --resume " .. dir .. "/half/last.safetensors")
    local a = recur.load(dir .. "/whole/last.safetensors")
    local b, ib = recur.load(dir .. "/half/last.safetensors")
    assert.are.equal(8, ib.train.iter)
    local sa, sb = a:state_dict(), b:state_dict()
    for name, t in pairs(sa) do assert.are.equal(0, helpers.max_abs_diff(t, sb[name]), name) end
  end)

  it("refuses unknown --attention values, models without attention and other kinds", function()
    one_line_error(SEQ2SEQ .. " --attention luong --max-iters 1 --checkpoint-dir " .. dir .. "/x",
      "argument for option '%-%-attention' must be one of 'none', 'bahdanau', 'luong%-dot', 'luong%-general', 'luong%-concat'")
    one_line_error("train --task classify --data data/sentiment.tsv --attention bahdanau --max-iters 1 --checkpoint-dir "
      .. dir .. "/x", "%-%-attention applies to %-%-task seq2seq, not classify")
    ok_run(SEQ2SEQ .. " --max-iters 2 --eval-every 2 --checkpoint-dir " .. dir .. "/none")
    one_line_error("attention --checkpoint " .. dir .. "/none/last.safetensors --src 'one'",
      "^recur: attention: the model has no attention %(it was trained with %-%-attention none%)")
    ok_run("train --task classify --data data/sentiment.tsv --hidden 8 --embed 4 --max-iters 2 --eval-every 2 --threads 1 --quiet --checkpoint-dir "
      .. dir .. "/c")
    one_line_error("attention --checkpoint " .. dir .. "/c/last.safetensors --src 'one'",
      "^recur: attention: '.*' holds a classify model; attention is drawn for seq2seq models")
    one_line_error("attention --src 'one'", "missing")
  end)
end)
