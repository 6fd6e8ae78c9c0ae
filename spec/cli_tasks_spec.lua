-- `recur train|eval|predict` for every kind of model, run through bin/recur on the
-- shipped data: the validation loss of the --log lines falls, a run of N iterations
-- equals N/2 resumed for N/2 (weights and losses, exactly), eval's numbers agree with
-- predict's outputs and with baselines computed here from the file, and predict writes
-- one well-formed output per input.
local helpers = require "spec.support.helpers"
local recur = require "recur"

local one_line_error = helpers.assert_one_line_error

local ok_run = helpers.run_recur_ok

local function lines_of(text)
  local out = {}
  for line in text:gmatch("([^\n]*)\n") do out[#out + 1] = line end
  return out
end

-- The first n lines of a file in a temporary file (and its lines).
local function head(path, n)
  local lines = {}
  for line in io.lines(path) do
    if #lines == n then break end
    lines[#lines + 1] = line
  end
  local tmp = os.tmpname()
  local f = assert(io.open(tmp, "w"))
  f:write(table.concat(lines, "\n"), "\n")
  f:close()
  return tmp, lines
end

local function max_weight_diff(a, b)
  local sa, sb, m = a:state_dict(), b:state_dict(), 0
  for name, t in pairs(sa) do m = math.max(m, helpers.max_abs_diff(t, sb[name])) end
  return m
end

-- Each kind on its shipped file, small enough to train in about a second.
local KINDS = {
  {task = "lm", data = "data/tinyshakespeare.txt",
   flags = "--layers 1 --hidden 32 --embed 16 --batch 16 --seq-len 32 --val-frac 0.01 --dropout 0.1"},
  {task = "seq2seq", data = "data/numbers.tsv",
   flags = "--src-level word --hidden 32 --embed 16 --batch 32 --lr 0.01 --dropout 0.1"},
  {task = "classify", data = "data/sentiment.tsv",
   flags = "--level word --hidden 32 --embed 16 --batch 32 --lr 0.01 --dropout 0.1"},
  -- SGD with momentum: its buffers are optimizer state a resume must restore
  {task = "forecast", data = "data/temperature.csv",
   flags = "--hidden 32 --batch 8 --seq-len 24 --optimizer sgd --momentum 0.9 --lr 0.2 --horizon 5"},
}

describe("recur train, eval and predict for every kind", function()
  local dirs = {}
  local function train(kind, extra)
    local dir = helpers.tmp_dir()
    dirs[#dirs + 1] = dir
    local log = dir .. "/log.jsonl"
    ok_run(string.format("train --task %s --data %s %s --threads 1 --quiet --checkpoint-dir %s --log %s %s",
      kind.task, kind.data, kind.flags, dir, log, extra))
    return dir, recur.plot.read_log(log)
  end
  teardown(function()
    for _, dir in ipairs(dirs) do helpers.remove_dir(dir) end
  end)

  -- one trained checkpoint per kind, for the eval and predict specs below
  local trained = {}
  for _, kind in ipairs(KINDS) do
    describe(kind.task, function()
      it("trains with a falling validation loss and writes both checkpoints", function()
        local dir, records = train(kind, "--max-iters 150 --eval-every 50")
        assert.are.equal(3, #records)
        for i, r in ipairs(records) do
          assert.are.equal(50 * i, r.iter)
          if i > 1 then assert.is_true(r.val_loss < records[i - 1].val_loss, kind.task .. " record " .. i) end
        end
        assert.is_true(records[3].val_loss < 0.9 * records[1].val_loss,
          string.format("%s: %.4f -> %.4f", kind.task, records[1].val_loss, records[3].val_loss))
        local best, info = recur.load(dir .. "/best.safetensors")
        assert.are.equal(kind.task, info.kind)
        assert.are.equal(kind.task, best.kind)
        assert.are.equal(150, info.train.iter)
        assert.is_truthy(io.open(dir .. "/last.safetensors"))
        trained[kind.task] = dir .. "/best.safetensors"
      end)

      it("resumes exactly: 8 iterations equal 4 and 4 more from the checkpoint", function()
        local whole, whole_log = train(kind, "--max-iters 8 --eval-every 4")
        local half = train(kind, "--max-iters 4 --eval-every 4")
        local args = string.format("train --task %s --data %s %s --threads 1 --quiet --checkpoint-dir %s --log %s "
          .. "--max-iters 8 --eval-every 4 --resume %s/last.safetensors", kind.task, kind.data, kind.flags, half,
          half .. "/log.jsonl", half)
        ok_run(args)
        local resumed_log = recur.plot.read_log(half .. "/log.jsonl")
        local a, ia = recur.load(whole .. "/last.safetensors")
        local b, ib = recur.load(half .. "/last.safetensors")
        assert.are.equal(8, ib.train.iter)
        assert.are.equal(0, max_weight_diff(a, b))
        assert.are.equal(ia.train.smoothed_loss, ib.train.smoothed_loss)
        assert.are.equal(whole_log[2].val_loss, resumed_log[2].val_loss)
        assert.are.equal(whole_log[2].train_loss, resumed_log[2].train_loss)
        -- the settings a resumed run continues with cannot be changed
        one_line_error(args .. " --batch 3", "^recur: " .. kind.task .. ": %-%-batch 3 differs from ")
        one_line_error(args .. " --hidden 8", "^recur: " .. kind.task .. ": %-%-hidden 8 differs from 32")
        one_line_error(args .. " --lr 0.5", "%-%-lr 0.5 differs from ")
        one_line_error(args .. " --optimizer adagrad", "%-%-optimizer adagrad differs from ")
      end)
    end)
  end

  it("evaluates and predicts a translator: exact matches agree with the translations", function()
    local pairs_path, lines = head("data/numbers.tsv", 200)
    local out = ok_run("eval --checkpoint " .. trained.seq2seq .. " --data " .. pairs_path)
    local exact, n = out:match("exact match [%d.]+ %((%d+)/(%d+)%)")
    local right, total = out:match("token accuracy [%d.]+ %((%d+)/(%d+)%)")
    assert.are.equal("200", n)
    assert.is_truthy(out:find("^" .. pairs_path:gsub("%p", "%%%0") .. ": 200 pairs, loss [%d.]+ nats/token, perplexity [%d.]+"))
    -- predict on the same lines (a blank line among them stays blank)
    local f = assert(io.open(pairs_path, "a"))
    f:write("\n", "seven\n")
    f:close()
    local predicted = lines_of(ok_run("predict --checkpoint " .. trained.seq2seq .. " --data " .. pairs_path))
    assert.are.equal(202, #predicted)
    assert.are.equal("", predicted[201])
    local same, chars = 0, 0
    for i, line in ipairs(lines) do
      local target = line:match("\t(.*)$")
      assert.is_truthy(predicted[i]:find("^%d*$"), predicted[i])
      if predicted[i] == target then same = same + 1 end
      chars = chars + #target + 1 -- and the end marker
    end
    assert.are.equal(tonumber(exact), same)
    assert.are.equal(chars, tonumber(total))
    assert.is_true(tonumber(right) >= same)
    os.remove(pairs_path)
  end)

  it("evaluates and predicts a classifier: the accuracy is predict's agreement with the labels", function()
    local path, lines = head("data/sentiment.tsv", 300)
    local out = ok_run("eval --checkpoint " .. trained.classify .. " --data " .. path)
    local right, n = out:match("accuracy [%d.]+ %((%d+)/(%d+)%)")
    assert.are.equal("300", n)
    local f = assert(io.open(path, "a"))
    f:write("\n", "the pizza was brilliant\n")
    f:close()
    local predicted = lines_of(ok_run("predict --checkpoint " .. trained.classify .. " --data " .. path))
    assert.are.equal(302, #predicted)
    assert.are.equal("", predicted[301])
    local known = {positive = true, negative = true, neutral = true}
    local same = 0
    for i, line in ipairs(lines) do
      assert.is_true(known[predicted[i]], predicted[i])
      if predicted[i] == line:match("^([^\t]*)") then same = same + 1 end
    end
    assert.is_true(known[predicted[302]])
    assert.are.equal(tonumber(right), same)
    assert.is_true(same > 0.8 * 300, "accuracy " .. same .. "/300")
    os.remove(path)
  end)

  it("evaluates a forecaster against the last-value forecast computed from the file", function()
    local path = head("data/temperature.csv", 201) -- the header and 200 rows
    local out = ok_run("eval --checkpoint " .. trained.forecast .. " --data " .. path)
    local mse, naive_mse, mae, naive_mae = out:match("MSE ([%d.]+) %(naive ([%d.]+)%), MAE ([%d.]+) %(naive ([%d.]+)%)")
    assert.is_truthy(out:find("199 one-step forecasts of 2 columns", 1, true))
    -- the naive forecast's errors in standardised units, by hand
    local _, info = recur.load(trained.forecast)
    local mean, std = info.data.scaler.mean:totable(), info.data.scaler.std:totable()
    local rows = {}
    for line in io.lines(path) do
      local a, b = line:match("^([-%d.]+),([-%d.]+)$")
      if a then rows[#rows + 1] = {tonumber(a), tonumber(b)} end
    end
    local se, ae = 0, 0
    for t = 2, #rows do
      for d = 1, 2 do
        local diff = (rows[t][d] - rows[t - 1][d]) / std[d]
        se, ae = se + diff * diff, ae + math.abs(diff)
      end
    end
    assert.is_true(math.abs(se / 398 - tonumber(naive_mse)) < 1e-4, naive_mse)
    assert.is_true(math.abs(ae / 398 - tonumber(naive_mae)) < 1e-4, naive_mae)
    assert.is_true(tonumber(mse) < tonumber(naive_mse) and tonumber(mae) < tonumber(naive_mae), out)
    assert.are.equal(2, #mean)
    os.remove(path)
  end)

  it("predicts the next --horizon rows of a forecast, in the file's units", function()
    local path = head("data/temperature.csv", 201)
    local function forecast(flags)
      local rows = {}
      for _, line in ipairs(lines_of(ok_run("predict --checkpoint " .. trained.forecast .. " --data " .. path .. flags))) do
        local a, b = line:match("^([-%d.e]+),([-%d.e]+)$")
        assert.is_truthy(a, line)
        rows[#rows + 1] = {tonumber(a), tonumber(b)}
      end
      return rows
    end
    local five = forecast("") -- the checkpoint's --horizon 5
    assert.are.equal(5, #five)
    local two = forecast(" --horizon 2")
    assert.are.equal(2, #two)
    for h = 1, 2 do
      for d = 1, 2 do assert.are.equal(five[h][d], two[h][d]) end
    end
    -- temperatures and humidities, not standardised values
    for _, row in ipairs(five) do
      assert.is_true(row[1] > -30 and row[1] < 45, tostring(row[1]))
      assert.is_true(row[2] > 20 and row[2] < 110, tostring(row[2]))
    end
    os.remove(path)
  end)

  it("starts from a checkpoint's weights and labels with --init-from, with fresh counters and optimizer", function()
    local _, source = recur.load(trained.classify)
    -- a file with two of the three labels: the model keeps its three
    local two_labels = os.tmpname()
    local f = assert(io.open(two_labels, "w"))
    local n = 0
    for line in io.lines("data/sentiment.tsv") do
      if not line:find("^neutral") and n < 200 then f:write(line, "\n"); n = n + 1 end
    end
    f:close()
    local dir = helpers.tmp_dir()
    dirs[#dirs + 1] = dir
    ok_run(string.format("train --data %s --init-from %s --lr 1e-9 --max-iters 1 --eval-every 1 --threads 1 --quiet "
      .. "--checkpoint-dir %s --log %s/log.jsonl", two_labels, trained.classify, dir, dir))
    local records = recur.plot.read_log(dir .. "/log.jsonl")
    assert.are.equal(1, records[1].iter)
    -- the weights came across: a loss far below chance (log 3 = 1.10) after one step
    assert.is_true(records[1].val_loss < 0.3, tostring(records[1].val_loss))
    local model, info = recur.load(dir .. "/last.safetensors")
    assert.are.same(source.data.labels, info.data.labels)
    assert.are.equal(3, model.config.num_classes)
    assert.are.equal(1, info.train.optimizer.step)
    local init = "train --data " .. two_labels .. " --max-iters 1 --checkpoint-dir " .. dir .. "/x --init-from " .. trained.classify
    one_line_error(init .. " --hidden 64", "^recur: classify: %-%-hidden 64 differs from 32 in '.*' %(%-%-init%-from keeps")
    one_line_error(init .. " --level char", "%-%-level char differs from word")
    one_line_error(init .. " --resume " .. trained.classify, "^recur: train: %-%-resume continues a run and %-%-init%-from")
    one_line_error(init .. " --task seq2seq", "^recur: seq2seq: '.*' holds a classify model, not seq2seq")
    os.remove(two_labels)
  end)

  it("passes --optimizer, --momentum and --tie-weights on to the run", function()
    local text = os.tmpname()
    local f = assert(io.open(text, "w"))
    f:write(helpers.read_all("data/tinyshakespeare.txt"):sub(1, 5000))
    f:close()
    local function trained_with(flags)
      local dir = helpers.tmp_dir()
      dirs[#dirs + 1] = dir
      ok_run("train --data " .. text .. " --layers 1 --hidden 16 --embed 16 --batch 4 --seq-len 8 --max-iters 2 "
        .. "--threads 1 --quiet --checkpoint-dir " .. dir .. " " .. flags)
      return recur.load(dir .. "/last.safetensors")
    end
    local model, info = trained_with("--optimizer rmsprop --momentum 0.5 --tie-weights")
    assert.is_true(model.config.tie_weights)
    assert.are.equal(0.5, info.train.optimizer.momentum)
    assert.are.equal(0.99, info.train.optimizer.alpha) -- RMSprop's smoothing constant
    assert.is_truthy(info.optim_tensors["square_avg.1"])
    assert.is_truthy(info.optim_tensors["momentum_buffer.1"])
    _, info = trained_with("--optimizer sgd --lr 0.005")
    assert.are.equal(0.005, info.train.optimizer.lr)
    assert.are.equal(0, info.train.optimizer.dampening) -- SGD's
    assert.is_nil(next(info.optim_tensors)) -- plain SGD keeps no state
    assert.are.same({batch = 4, lr = 0.005, lr_decay = 0.97, lr_decay_after = 10, clip = 5, seed = 123,
      optimizer = "sgd", momentum = 0, seq_len = 8}, info.train.options)
    -- refused before the checkpoint directory is made
    local never = os.tmpname()
    os.remove(never)
    one_line_error("train --data " .. text .. " --tie-weights --hidden 16 --embed 8 --checkpoint-dir " .. never,
      "tie_weights needs embed == hidden")
    assert.is_nil(io.open(never))
    os.remove(text)
  end)

  it("builds word vocabularies of classify and seq2seq with --min-freq and --max-vocab", function()
    local dir = helpers.tmp_dir()
    dirs[#dirs + 1] = dir
    local base = "train --max-iters 1 --threads 1 --quiet --checkpoint-dir " .. dir
    ok_run(base .. "/c --task classify --data data/sentiment.tsv --level word --max-vocab 5")
    local _, info = recur.load(dir .. "/c/last.safetensors")
    assert.are.equal(4 + 5, info.data.tokenizer:vocab_size()) -- <pad> <unk> <s> </s> and five words
    -- the word source keeps its 12 most frequent words; the char target, read at its
    -- own level, keeps its 10 digits, U+FFFD and its three markers
    ok_run(base .. "/s --task seq2seq --data data/numbers.tsv --src-level word --max-vocab 12")
    _, info = recur.load(dir .. "/s/last.safetensors")
    assert.are.equal(4 + 12, info.data.source:vocab_size())
    assert.are.equal(3 + 1 + 10, info.data.target:vocab_size())
    one_line_error(base .. "/x --task classify --data data/sentiment.tsv --min-freq 2",
      "^recur: classify: %-%-min%-freq applies to %-%-level word, not char")
    one_line_error(base .. "/x --task seq2seq --data data/numbers.tsv --max-vocab 9",
      "^recur: seq2seq: %-%-max%-vocab applies to a word%-level side")
    one_line_error(base .. "/x --task classify --data data/sentiment.tsv --init-from " .. dir .. "/c/last.safetensors --min-freq 2",
      "do not apply when the vocabulary comes from a checkpoint")
  end)

  it("trains with scheduled sampling (--sampling-prob, --sampling), kept by --resume, set anew by --init-from", function()
    local dir = helpers.tmp_dir()
    dirs[#dirs + 1] = dir
    local base = "train --task seq2seq --data data/numbers.tsv --src-level word --hidden 16 --embed 8 --max-iters 4 "
      .. "--eval-every 4 --threads 1 --quiet --checkpoint-dir " .. dir
    local function first_loss(name, flags)
      ok_run(base .. "/" .. name .. " --log " .. dir .. "/" .. name .. ".jsonl " .. flags)
      return recur.plot.read_log(dir .. "/" .. name .. ".jsonl")[1].train_loss
    end
    -- the same seed, the same weights: only the fed inputs differ
    local forced = first_loss("forced", "")
    assert.are_not.equal(forced, first_loss("argmax", "--sampling-prob 1"))
    assert.are_not.equal(forced, first_loss("sample", "--sampling-prob 1 --sampling sample"))
    local _, info = recur.load(dir .. "/sample/last.safetensors")
    assert.are.equal(1, info.config.sampling_prob)
    assert.are.equal("sample", info.config.sampling)
    one_line_error(base .. "/sample --resume " .. dir .. "/sample/last.safetensors --max-iters 8 --sampling-prob 0.5",
      "^recur: seq2seq: %-%-sampling%-prob 0.5 differs from 1 in")
    -- a run from a checkpoint trains with its own schedule, from the checkpoint's weights
    ok_run(base .. "/fine --init-from " .. dir .. "/forced/last.safetensors --sampling-prob 0.25 --lr 1e-9")
    local fine, fine_info = recur.load(dir .. "/fine/last.safetensors")
    local source = recur.load(dir .. "/forced/last.safetensors")
    assert.are.equal(0.25, fine_info.config.sampling_prob)
    assert.is_true(max_weight_diff(fine, source) < 1e-6)
    one_line_error(base .. "/x --sampling sample", "%-%-sampling chooses what scheduled sampling feeds, and %-%-sampling%-prob is 0")
    one_line_error("train --task classify --data data/sentiment.tsv --sampling-prob 0.5 --checkpoint-dir " .. dir .. "/x",
      "%-%-sampling%-prob applies to %-%-task lm|seq2seq, not classify")
  end)

  it("refuses a flag its task cannot act on, naming the tasks that take it", function()
    local never = os.tmpname()
    os.remove(never)
    local base = "train --max-iters 1 --checkpoint-dir " .. never .. " "
    one_line_error(base .. "--task forecast --data data/temperature.csv --embed 8",
      "^recur: forecast: %-%-embed applies to %-%-task lm|seq2seq|classify, not forecast")
    one_line_error(base .. "--task classify --data data/sentiment.tsv --seq-len 8",
      "^recur: classify: %-%-seq%-len applies to %-%-task lm|forecast, not classify")
    one_line_error(base .. "--task forecast --data data/temperature.csv --bidirectional",
      "%-%-bidirectional applies to %-%-task seq2seq|classify, not forecast")
    one_line_error(base .. "--data data/tinyshakespeare.txt --horizon 3", "%-%-horizon applies to %-%-task forecast, not lm")
    one_line_error(base .. "--task classify --data data/sentiment.tsv --ngram 2", "%-%-ngram applies to %-%-task lm, not classify")
    one_line_error(base .. "--task forecast --data data/temperature.csv --min-freq 2",
      "%-%-min%-freq applies to %-%-task lm|seq2seq|classify, not forecast")
    one_line_error(base .. "--task seq2seq --data data/numbers.tsv --level word", "%-%-level applies to %-%-task lm|classify, not seq2seq")
    one_line_error(base .. "--task classify --data data/sentiment.tsv --momentum 0.9",
      "^recur: classify: %-%-momentum applies to %-%-optimizer sgd or rmsprop, not adam")
    one_line_error(base .. "--task classify --data data/sentiment.tsv --val-frac 0.2 --val-data data/sentiment.tsv",
      "%-%-val%-frac and %-%-val%-data both")
    assert.is_nil(io.open(never))
    one_line_error("predict --checkpoint " .. trained.classify .. " --data data/sentiment.tsv --horizon 2",
      "^recur: classify: %-%-horizon does not apply to predicting with a classify model")
    one_line_error("predict --checkpoint " .. trained.lm .. " --data data/sentiment.tsv",
      "^recur: lm: predict writes the outputs of seq2seq, classify and forecast models; a language model samples %(recur sample%)")
    one_line_error("sample --checkpoint " .. trained.classify, "^recur: lm: '.*' holds a classify model, not a language model")
    one_line_error("eval --checkpoint " .. trained.classify .. " --data data/numbers.tsv",
      "^recur: classify: data/numbers.tsv: label 'one thousand")
  end)
end)
