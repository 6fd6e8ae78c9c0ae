-- recur inside a host nobody here wrote: Debian's lighttpd, whose mod_magnet embeds
-- Lua 5.4, runs examples/lighttpd/generate.lua with examples/lighttpd/recur.conf on a
-- free loopback port. The texts it serves must be the ones lm.generate gives here for
-- the same checkpoint, prime, length and seed; the model must stay loaded after the
-- first request (the checkpoint is deleted, and later requests still work); bad
-- parameters get a 400. The server is stopped and the folder removed whatever happens.
local helpers = require "spec.support.helpers"
local recur = require "recur"

local q, sh = helpers.q, helpers.sh

local function sleep(seconds) os.execute("sleep " .. seconds) end

local ROOT = assert(io.popen("pwd")):read("l")
local function absolute(path) return path:sub(1, 1) == "/" and path or ROOT .. "/" .. path end

-- The folder this run loads recur.core from (build/, or build-san/ under make sanitize).
local CPATH_DIR = absolute(assert(package.searchpath("recur.core", package.cpath)):gsub("/recur/core%.so$", ""))

local function alive(pid) return sh("kill -0 " .. pid) end

-- curl as a user runs it: under `make sanitize` the ASan runtime preloaded into it
-- makes curl hang (lighttpd keeps it, to load the sanitized recur.core).
local CURL = "env -u LD_PRELOAD curl"

describe("lighttpd with mod_magnet serving examples/lighttpd/generate.lua", function()
  local dir, pid, port, model, tok

  -- GET path on the server: the body and the HTTP status.
  local function get(path)
    local ok, out = sh(string.format(CURL .. " -s --max-time 60 -w '\\n%%{http_code}' %s",
      q("http://127.0.0.1:" .. port .. path)))
    assert(ok, out)
    local body, status = out:match("^(.*)\n(%d+)$")
    return body, tonumber(status)
  end

  local function stop()
    if not pid then return end
    sh("kill " .. pid)
    for _ = 1, 50 do
      if not alive(pid) then break end
      sleep(0.1)
    end
    if alive(pid) then sh("kill -9 " .. pid) end
    pid = nil
  end

  -- Starts lighttpd on a random loopback port, another one when that is taken; true
  -- once it answers.
  local function start()
    local env = table.concat({
      "RECUR_CHECKPOINT=" .. q(dir .. "/model.safetensors"),
      "RECUR_EXAMPLE_DIR=" .. q(ROOT .. "/examples/lighttpd"),
      "LUA_PATH=" .. q(ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;;"),
      "LUA_CPATH=" .. q(CPATH_DIR .. "/?.so;;"),
    }, " ")
    math.randomseed(os.time(), tonumber(tostring({}):match("0x(%x+)"), 16))
    for _ = 1, 10 do
      port = math.random(20000, 60000)
      local ok, out = sh(string.format("RECUR_PORT=%d %s sh -c %s & echo $!", port, env,
        q("exec lighttpd -D -f " .. ROOT .. "/examples/lighttpd/recur.conf > " .. dir .. "/server.log 2>&1")))
      assert(ok, out)
      pid = assert(out:match("(%d+)"), out)
      for _ = 1, 100 do
        if not alive(pid) then break end
        if sh(string.format(CURL .. " -s -o /dev/null --max-time 2 http://127.0.0.1:%d/", port)) then return true end
        sleep(0.1)
      end
      local log = helpers.read_all(dir .. "/server.log")
      stop()
      if not log:find("in use", 1, true) then error("lighttpd did not start:\n" .. log) end
    end
    error("lighttpd: no free port found")
  end

  local function expected(prime, length, seed)
    recur.manual_seed(seed)
    local parts = {}
    recur.lm.generate(model, tok, {prime = prime, length = length}, function(s) parts[#parts + 1] = s end)
    return table.concat(parts)
  end

  setup(function()
    assert(sh("command -v lighttpd") and io.open("/usr/lib/lighttpd/mod_magnet.so"),
      "lighttpd with mod_magnet is missing: make deps installs lighttpd and lighttpd-modules-lua")
    dir = helpers.tmp_dir()
    recur.manual_seed(4)
    tok = recur.data.CharTokenizer.fit("To be, or not to be: that is the question.\n")
    model = recur.models.LanguageModel{vocab_size = tok:vocab_size(), embed = 8, hidden = 16, layers = 1}
    recur.lm.save(dir .. "/model.safetensors", model, tok)
    local ok, err = pcall(start)
    if not ok then
      stop()
      error(err, 0)
    end
  end)

  teardown(function()
    stop()
    if dir then helpers.remove_dir(dir) end
  end)

  it("runs on Lua 5.4 (the module is built for it)", function()
    local ok, out = sh("ldd /usr/lib/lighttpd/mod_magnet.so")
    assert.is_true(ok, out)
    assert.is_truthy(out:find("liblua5.4.so", 1, true), out)
  end)

  it("serves the same text for the same seed and another for another seed, as lm.generate does", function()
    local a, status = get("/generate?prime=To+be&length=40&seed=7")
    assert.are.equal(200, status, a)
    assert.are.equal(expected("To be", 40, 7), a)
    -- the model is loaded: the file is no longer needed
    os.remove(dir .. "/model.safetensors")
    local b = get("/generate?prime=To%20be&length=40&seed=7")
    assert.are.equal(a, b)
    local c, status_c = get("/generate?prime=To+be&length=40&seed=8")
    assert.are.equal(200, status_c, c)
    assert.are.equal(expected("To be", 40, 8), c)
    assert.are_not.equal(a, c)
    assert.are.equal(expected("", 25, 3), (get("/generate?length=25&seed=3")))
  end)

  it("answers bad parameters with 400 and other paths with 404", function()
    local body, status = get("/generate?prime=To&length=many&seed=1")
    assert.are.equal(400, status)
    assert.are.equal("bad request: length must be an integer in 1..2000, got 'many'\n", body)
    body, status = get("/generate?prime=To&length=5")
    assert.are.equal(400, status)
    assert.matches("seed is required", body)
    body, status = get("/generate?prime=%C3%A9&length=5&seed=1")
    assert.are.equal(400, status)
    assert.matches("^bad request: CharTokenizer", body)
    body, status = get("/recur.conf")
    assert.are.equal(404, status, body)
    local log = helpers.read_all(dir .. "/server.log")
    assert.is_falsy(log:find("error", 1, true), log)
  end)
end)
