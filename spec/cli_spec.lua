-- The `recur` command: every error a user can cause is one line and a non-zero exit.
local helpers = require "spec.support.helpers"
local recur = require "recur"

local run, assert_one_line_error = helpers.run_recur, helpers.assert_one_line_error

-- The first `chars` characters of the shipped corpus in a temporary file.
local function corpus_file(chars)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(recur.data.read_text("data/tinyshakespeare.txt"):sub(1, chars))
  f:close()
  return path
end

-- A temporary path where nothing exists yet (for a directory the command creates).
local function fresh_path()
  local path = os.tmpname()
  os.remove(path)
  return path
end

describe("recur command", function()
  it("runs under Lua 5.4", function() assert.are.equal("Lua 5.4", _VERSION) end)

  it("reports user errors in one line", function()
    assert_one_line_error("train --data /nonexistent.txt", "^recur: read_text: cannot open '/nonexistent.txt': No such file or directory")
    local empty = os.tmpname()
    assert_one_line_error("train --data " .. empty, "^recur: read_text: '" .. empty .. "' is empty")
    assert_one_line_error("train --data x --bogus 3", "unknown option '%-%-bogus'")
    assert_one_line_error("train --data data/tinyshakespeare.txt --dist-timeout 5", "%-%-dist%-timeout applies to data%-parallel runs under mpirun")
    assert_one_line_error("train --data x --layers zero", "%-%-layers must be a positive integer")
    assert_one_line_error("frobnicate", "unknown command 'frobnicate'")
    assert_one_line_error("sample --checkpoint /nonexistent.safetensors", "^recur: io.load: '/nonexistent.safetensors'")
    local other = os.tmpname()
    recur.io.save(other, {w = recur.ones(2)})
    assert_one_line_error("sample --checkpoint " .. other, "^recur: checkpoint: .* is not a recur checkpoint")
    assert_one_line_error("eval --checkpoint " .. other .. " --data " .. empty, "^recur: checkpoint: .* is not a recur checkpoint")
    assert_one_line_error("plot --log /nonexistent.jsonl", "^recur: plot: cannot open '/nonexistent.jsonl'")
    os.remove(empty); os.remove(other)
  end)

  it("prints its version, and names the two-dash flag for a torch-rnn one-dash one", function()
    local status, out = run("--version")
    assert.are.equal(0, status)
    assert.are.equal("recur " .. recur.version .. "\n", out)
    assert_one_line_error("train -input_h5 data.h5 -rnn_size 64",
      "^recur: flags take two dashes: '%-input_h5' %(a one%-dash flag, as torch%-rnn spells them%) is '%-%-data' here")
    assert_one_line_error("sample -checkpoint cv/x.t7 -start_text ROMEO", "'%-checkpoint' .* is '%-%-checkpoint' here")
    assert_one_line_error("train --data x -wordvec_sz 3", "'%-wordvec_sz' .* is '%-%-wordvec%-sz' here")
    -- one letter is argparse's own short flag, and a value after "--" is left alone
    status, out = run("sample -h")
    assert.are.equal(0, status)
    assert.truthy(out:find("Usage: recur sample", 1, true))
  end)

  it("shows progress while evaluating a long text", function()
    -- 130,000 characters: more than 50 batches of 50x50, so a line at batch 50 (not a
    -- terminal); a text of one batch prints nothing but its result
    local long, short, dir = corpus_file(130000), corpus_file(3000), fresh_path()
    finally(function() os.remove(long); os.remove(short); helpers.remove_dir(dir) end)
    local status, _, err = run(string.format("train --data %s --layers 1 --hidden 8 --embed 4 --batch 4 "
      .. "--seq-len 8 --max-iters 1 --checkpoint-dir %s --threads 1 --quiet", long, dir))
    assert.are.equal(0, status, err)
    local out
    status, out, err = run(string.format("eval --checkpoint %s/last.safetensors --data %s --threads 1", dir, long))
    assert.are.equal(0, status, err)
    assert.truthy(err:find("batch 50/52", 1, true), err)
    assert.truthy(out:find("129950 tokens", 1, true), out)   -- 50 streams of 2599
    status, _, err = run(string.format("eval --checkpoint %s/last.safetensors --data %s --threads 1", dir, short))
    assert.are.equal(0, status)
    assert.are.equal("", err)
  end)

  it("trains, samples, evaluates and plots", function()
    local text = recur.data.read_text("data/tinyshakespeare.txt"):sub(1, 20000)
    local data = os.tmpname()
    local f = assert(io.open(data, "wb")); f:write(text); f:close()
    local dir, log = os.tmpname(), os.tmpname()
    os.remove(dir); os.remove(log)
    local status, _, err = run(string.format(
      "train --data %s --layers 1 --hidden 32 --embed 16 --batch 8 --seq-len 16 --max-iters 20 --eval-every 10 --checkpoint-dir %s --log %s --threads 1",
      data, dir, log))
    assert.are.equal(0, status, err)
    assert.is_truthy(err:find("stopped after 20 iterations", 1, true))
    local records = recur.plot.read_log(log)
    assert.are.equal(2, #records)
    local out
    status, out = run("sample --checkpoint " .. dir .. "/best.safetensors --length 40 --prime 'First' --seed 4")
    assert.are.equal(0, status)
    assert.are.equal("First", out:sub(1, 5))
    assert.are.equal(46, utf8.len(out)) -- prime, 40 characters, newline
    local beam_out
    status, beam_out = run("sample --checkpoint " .. dir .. "/best.safetensors --length 40 --prime 'First' --beam 3")
    assert.are.equal(0, status)
    assert.are.equal("First", beam_out:sub(1, 5))
    assert.are.equal(46, utf8.len(beam_out))
    -- a search, not a draw: a seed would change nothing, so it is refused
    assert_one_line_error("sample --checkpoint " .. dir .. "/best.safetensors --length 40 --prime 'First' --beam 3 --seed 9",
      "^recur: lm: %-%-seed changes nothing here")
    status, out = run("eval --checkpoint " .. dir .. "/best.safetensors --data " .. data)
    assert.are.equal(0, status)
    assert.is_truthy(out:find("perplexity %d"))
    local svg = os.tmpname()
    status = run("plot --log " .. log .. " --out " .. svg)
    assert.are.equal(0, status)
    assert.is_truthy(assert(io.open(svg)):read("a"):find("<polyline", 1, true))
    os.remove(data); os.remove(log); os.remove(svg)
    os.execute("rm -rf '" .. dir .. "'")
  end)

  describe("with a trained checkpoint", function()
    local text_path, dir
    setup(function()
      text_path, dir = corpus_file(8000), fresh_path()
      local status, _, err = run("train --data " .. text_path .. " --layers 1 --hidden 16 --embed 8 --batch 4 "
        .. "--seq-len 8 --max-iters 4 --eval-every 2 --checkpoint-dir " .. dir .. " --threads 1 --quiet")
      assert.are.equal(0, status, err)
    end)
    teardown(function()
      os.remove(text_path)
      os.execute("rm -rf '" .. dir .. "'")
    end)

    it("fails when the output cannot be written (a full disk)", function()
      local ckpt = " --checkpoint " .. dir .. "/last.safetensors"
      for _, args in ipairs({"sample" .. ckpt .. " --length 5", "eval" .. ckpt .. " --data " .. text_path}) do
        local status, _, err = run(args, "> /dev/full")
        assert.are.equal(1, status, args)
        assert.are.equal("recur: cannot write to standard output: No space left on device\n", err)
      end
      local log = os.tmpname()
      local f = assert(io.open(log, "w"))
      f:write('{"iter": 1, "train_loss": 2}\n')
      f:close()
      local status, out, err = run("plot --log " .. log .. " --out /dev/full")
      assert.are.equal(1, status)
      assert.are.equal("", out) -- no "wrote"
      assert.are.equal("recur: plot: cannot write '/dev/full': No space left on device\n", err)
      os.remove(log)
    end)

    it("passes every sampling flag on", function()
      local sample = "sample --checkpoint " .. dir .. "/last.safetensors --length 60"
      local function text(flags)
        local status, out, err = run(sample .. " " .. flags .. (flags:find("prime") and "" or " --prime The"))
        assert.are.equal(0, status, err)
        return out
      end
      local greedy = text("--temperature 0")
      assert.are.equal(64, utf8.len(greedy)) -- --length: prime, 60, newline
      assert.are.equal(greedy, text("--top-k 1 --seed 5"))
      assert.are.equal(greedy, text("--top-p 1e-9 --seed 5"))
      assert.are.equal(greedy, text("--beam 1"))
      assert.are_not.equal(greedy, text("--seed 5"))
      assert.are_not.equal(text("--seed 5"), text("--seed 6"))
      assert.are_not.equal(text("--seed 5"), text("--seed 5 --temperature 2"))
      assert.are_not.equal(text("--beam 1"), text("--beam 4"))
      assert.are.equal("Th", text("--prime Th --length 1"):sub(1, 2))
    end)

    it("refuses flags that would change nothing", function()
      local ckpt = " --checkpoint " .. dir .. "/last.safetensors"
      assert_one_line_error("sample" .. ckpt .. " --beam 2 --temperature 0.5", "temperature %(%-%-temperature%) does not apply to a beam search")
      assert_one_line_error("sample" .. ckpt .. " --beam 2 --top-k 3", "top_k %(%-%-top%-k%) does not apply to a beam search")
      assert_one_line_error("sample" .. ckpt .. " --temperature 0 --top-p 0.5", "top_p %(%-%-top%-p%) does not apply at temperature 0")
      assert_one_line_error("sample" .. ckpt .. " --temperature 0 --prime The --seed 3", "%-%-seed changes nothing here")
      assert_one_line_error("sample" .. ckpt .. " --top-p 1.5", "%-%-top%-p must be in %(0, 1%]")
      assert_one_line_error("sample" .. ckpt .. " --length-penalty 1", "unknown option '%-%-length%-penalty'")
      assert_one_line_error("sample" .. ckpt .. " --ban-unk", "^recur: lm.generate: ban_unk %(%-%-ban%-unk%) needs a vocabulary with an unknown%-word token")
      assert_one_line_error("sample" .. ckpt .. " --stop-at-eos", "^recur: lm.generate: stop_at_eos %(%-%-stop%-at%-eos%) needs a vocabulary whose lines end with </s>")
      assert_one_line_error("sample" .. ckpt .. " --stop-at-eos --min-length 3", "stop_at_eos %(%-%-stop%-at%-eos%) needs")
      assert_one_line_error("sample" .. ckpt .. " --min-length 3", "min_length %(%-%-min%-length%) needs an end token")
      local train = "train --data " .. text_path .. " --max-iters 1 --checkpoint-dir " .. dir .. "/other"
      assert_one_line_error(train .. " --min-freq 2", "^recur: lm: %-%-min%-freq applies to %-%-level word, not char")
      assert_one_line_error(train .. " --level char --max-vocab 9", "%-%-max%-vocab applies to %-%-level word")
      assert_one_line_error(train .. " --val-data " .. text_path .. " --val-frac 0.1", "%-%-val%-frac and %-%-val%-data both")
      assert_one_line_error(train .. " --test-data " .. text_path .. " --test-frac 0.1", "%-%-test%-frac and %-%-test%-data both")
      assert_one_line_error(train .. " --val-frac 0 --ngram 2", "%-%-ngram compares on the validation text")
      assert_one_line_error(train .. " --epochs 1.5", "%-%-epochs must be a positive integer")
      assert_one_line_error(train .. " --epochs 5 --lr-decay 0.5", "the learning rate would never decay: decay starts at epoch 12, after the last %(%-%-epochs 5%)")
      assert_one_line_error(train .. " --epochs 2 --lr-decay-after 1", "decay starts at epoch 3, after the last %(%-%-epochs 2%)")
      local resume = train .. " --resume " .. dir .. "/last.safetensors"
      assert_one_line_error(resume .. " --hidden 32", "^recur: lm: %-%-hidden 32 differs from 16 in '" .. dir:gsub("%p", "%%%0") .. "/last.safetensors'")
      assert_one_line_error(resume .. " --model gru", "%-%-model gru differs from lstm")
      assert_one_line_error(resume .. " --batch 5", "%-%-batch 5 differs from 4")
      assert_one_line_error(resume .. " --lr 0.1", "%-%-lr 0.1 differs from 0.002")
      assert_one_line_error(resume .. " --level word", "%-%-level word differs from char")
      assert_one_line_error(resume .. " --seed 9", "%-%-seed 9 differs from 123")
      assert_one_line_error(train .. " --resume " .. dir .. "/last.safetensors --level word --min-freq 2", "differs from char")
    end)

    it("refuses an unwritable or locked checkpoint directory before training", function()
      local started = recur.now()
      assert_one_line_error("train --data " .. text_path .. " --checkpoint-dir /etc/passwd/x",
        "^recur: lm: cannot write checkpoints in '/etc/passwd/x': make_dir: cannot create '/etc/passwd': ")
      assert.is_true(recur.now() - started < 5)
      local lock = assert(recur.lock_file(dir .. "/train.lock"))
      local pid = assert(io.open(dir .. "/train.lock")):read("l")
      assert_one_line_error("train --data " .. text_path .. " --max-iters 1 --checkpoint-dir " .. dir,
        "^recur: lm: checkpoint directory '" .. dir:gsub("%p", "%%%0") .. "' is in use by process " .. pid .. " %(lock '")
      lock:unlock()
    end)
  end)

  it("stops on Ctrl-C with status 130 and leaves loadable checkpoints", function()
    local text_path, dir = corpus_file(20000), fresh_path()
    -- sh prints the child's pid, then its exit status once it ends
    local p = io.popen("sh -c 'lua5.4 bin/recur train --data " .. text_path .. " --layers 1 --hidden 16 --embed 8 "
      .. "--batch 4 --seq-len 8 --eval-every 3 --checkpoint-dir " .. dir .. " --threads 1 --quiet 2>" .. dir .. ".err "
      .. "& echo $!; wait $!; echo $?'")
    local pid = p:read("l")
    local started = recur.now()
    while not io.open(dir .. "/best.safetensors") and recur.now() - started < 30 do os.execute("sleep 0.05") end
    os.execute("sleep 0.3") -- a few more checkpoints, so the interrupt may land in a save
    os.execute("kill -INT " .. pid)
    local status = p:read("l")
    p:close()
    local err = assert(io.open(dir .. ".err")):read("a")
    assert.are.equal("130", status, err)
    assert.are.equal("recur: interrupted; the checkpoints written so far are complete\n", err)
    for _, name in ipairs({"best", "last"}) do
      local _, _, rest = recur.lm.load(dir .. "/" .. name .. ".safetensors")
      assert.is_true(rest.train.iter >= 3)
    end
    os.remove(text_path); os.remove(dir .. ".err")
    os.execute("rm -rf '" .. dir .. "'")
  end)

  it("fails when the log cannot be written, after saving that evaluation's checkpoint", function()
    local text_path, dir = corpus_file(8000), fresh_path()
    assert_one_line_error("train --data " .. text_path .. " --layers 1 --hidden 16 --embed 8 --batch 4 --seq-len 8 "
      .. "--max-iters 4 --eval-every 2 --quiet --checkpoint-dir " .. dir .. " --log /dev/full",
      "^recur: train: cannot write the log '/dev/full': No space left on device")
    local _, _, rest = recur.lm.load(dir .. "/last.safetensors")
    assert.are.equal(2, rest.train.iter)
    os.remove(text_path)
    os.execute("rm -rf '" .. dir .. "'")
  end)
  describe("sampling a word model", function()
    -- A word model with hand-set weights: the decoder ignores the hidden state, so
    -- after every token the scores are </s> 6, <unk> 4, "a" 2, the rest 0.
    local dir, sample
    setup(function()
      dir = helpers.tmp_dir()
      local tok = recur.data.WordTokenizer.fit("a b c\n") -- 1 <pad> 2 <unk> 3 <s> 4 </s> 5 a 6 b 7 c
      local model = recur.models.LanguageModel{vocab_size = tok:vocab_size(), embed = 2, hidden = 2, layers = 1}
      model.decoder.weight:zero_()
      local bias = model.decoder.bias
      bias:zero_(); bias:set(4, 6); bias:set(2, 4); bias:set(5, 2)
      recur.lm.save(dir .. "/word.safetensors", model, tok)
      sample = "sample --checkpoint " .. dir .. "/word.safetensors --length 3 "
    end)
    teardown(function() helpers.remove_dir(dir) end)

    local function text(flags)
      local status, out, err = run(sample .. flags)
      assert.are.equal(0, status, err)
      return out
    end

    it("joins words with spaces, continues the prime, and acts on every marker flag", function()
      assert.are.equal("b\n\n\n\n", text("--temperature 0 --prime b"))
      assert.are.equal("b c <unk> <unk>\n", text("--temperature 0 --prime 'b c' --stop-at-eos --min-length 2"))
      assert.are.equal("b c <unk> <unk>\n", text("--beam 2 --prime 'b c' --stop-at-eos --min-length 2"))
      assert.are.equal("b c a a\n", text("--temperature 0 --prime 'b c' --stop-at-eos --min-length 2 --ban-unk"))
      assert.are.equal("a a a\n", text("--temperature 0 --stop-at-eos --min-length 3 --ban-unk"))
      assert.are.equal("\n", text("--temperature 0 --stop-at-eos")) -- starts after </s>, ends at once
      assert.is_nil(text("--ban-unk --length 200 --temperature 2 --seed 3"):find("<unk>", 1, true))
      assert_one_line_error(sample .. "--temperature 0 --seed 3", "%-%-seed changes nothing here")
      assert_one_line_error(sample .. "--stop-at-eos --min-length 4", "min_length %(%-%-min%-length%) is 4, more than the 3 tokens")
    end)
  end)
end)
