-- `make install PREFIX=<temporary folder>`, then C hosts built from nothing but what it
-- installed, through pkg-config, from another directory: examples/host.c (the C core
-- without Lua) must find its step-by-step and whole-sequence LSTM states equal, and
-- examples/lua_host.c (Lua embedded, recur.core preloaded with luaL_requiref) must print
-- the very text lm.generate gives here for the same checkpoint, prime, length and seed.
-- The hosts run with LUA_PATH and LUA_CPATH unset, so the checkout's copy cannot stand
-- in for the installed one.
local helpers = require "spec.support.helpers"
local recur = require "recur"

local q, sh = helpers.q, helpers.sh

local ROOT = assert(io.popen("pwd")):read("l")

describe("make install into a prefix", function()
  local prefix, env, model, tok

  setup(function()
    prefix = helpers.tmp_dir()
    -- under `make sanitize` BUILD, CFLAGS and LDFLAGS come from the environment: the
    -- sanitized libraries are installed, and the hosts run on them
    local ok, out = sh("make -s install PREFIX=" .. q(prefix))
    assert(ok, out)
    -- exported, so that the $(pkg-config ...) of a command line sees them too
    env = "cd " .. q(prefix) .. " && unset LUA_PATH LUA_CPATH LUA_PATH_5_4 LUA_CPATH_5_4 && export PKG_CONFIG_PATH="
      .. q(prefix .. "/lib/pkgconfig") .. " LD_LIBRARY_PATH=" .. q(prefix .. "/lib") .. " && "
    -- an untrained character model is enough: the hosts must reproduce its draws
    recur.manual_seed(3)
    tok = recur.data.CharTokenizer.fit("hello world, this is recur speaking.\n")
    model = recur.models.LanguageModel{vocab_size = tok:vocab_size(), embed = 8, hidden = 16, layers = 1}
    recur.lm.save(prefix .. "/tiny.safetensors", model, tok)
  end)

  teardown(function()
    if prefix then helpers.remove_dir(prefix) end
  end)

  it("puts the libraries, the public headers and the pkg-config files in place", function()
    for _, path in ipairs({"lib/librecur.so", "lib/librecur.so.0", "lib/librecur.a", "lib/librecur-lua.so",
        "lib/librecur-lua.a", "lib/pkgconfig/recur.pc", "lib/pkgconfig/recur-lua.pc", "include/recur/recur.h",
        "include/recur/recur_lua.h", "lib/lua/5.4/recur/core.so", "share/lua/5.4/recur/init.lua", "bin/recur"}) do
      local f = io.open(prefix .. "/" .. path, "rb")
      assert(f, path .. " is missing")
      f:close()
    end
    -- recur.dist where it was built (mpicc found)
    local built = io.open("build/recur/dist.so", "rb")
    if built then
      built:close()
      local f = io.open(prefix .. "/lib/lua/5.4/recur/dist.so", "rb")
      assert(f, "lib/lua/5.4/recur/dist.so is missing")
      f:close()
    end
    local ok, out = sh(env .. "pkg-config --modversion recur")
    assert.is_true(ok, out)
    assert.are.equal(recur.version, (out:gsub("%s+$", "")))
  end)

  it("installs headers that need neither <cblas.h> nor the sources", function()
    local ok, out = sh("grep -l '#include.*cblas' " .. q(prefix) .. "/include/recur/*.h")
    assert.is_falsy(ok, "headers that include cblas.h: " .. out)
    -- every public header compiles on its own, in C and in C++
    for _, lang in ipairs({"c", "c++"}) do
      ok, out = sh(env .. "for h in include/recur/*.h; do printf '#include <recur/%s>\\n' \"${h##*/}\" | "
        .. "cc -x " .. lang .. " -fsyntax-only -Wall -Wextra -Werror $(pkg-config --cflags recur-lua lua5.4) - || exit 1; done")
      assert.is_true(ok, out)
    end
  end)

  it("exports the C API from librecur.so and luaopen_recur_core alone from librecur-lua.so", function()
    local ok, out = sh("nm -D --defined-only " .. q(prefix .. "/lib/librecur.so"))
    assert.is_true(ok, out)
    local n = 0
    for name in out:gmatch("%x+ %a ([^\n]+)") do
      n = n + 1
      assert.is_truthy(name:match("^recur_"), "librecur.so exports " .. name)
    end
    assert.is_true(n > 50, out)
    assert.is_truthy(out:find(" T recur_rnn_forward_f32\n", 1, true), out)
    ok, out = sh("nm -D --defined-only " .. q(prefix .. "/lib/librecur-lua.so"))
    assert.is_true(ok, out)
    assert.are.equal("luaopen_recur_core", out:match("^%x+ T ([^\n]+)\n$"), out)
  end)

  it("builds examples/host.c with pkg-config alone and runs it", function()
    local ok, out = sh(env .. "cc -O2 " .. q(ROOT .. "/examples/host.c") .. " $(pkg-config --cflags --libs recur) -o host && ./host")
    assert.is_true(ok, out)
    local diff = tonumber(out:match("step%-by%-step vs whole sequence max |diff| = (%S+)\n"))
    assert.is_true(diff ~= nil and diff < 1e-6, out)
  end)

  it("builds examples/lua_host.c, which preloads recur.core and generates the text recur does", function()
    local function expected(seed)
      recur.manual_seed(seed)
      local parts = {}
      recur.lm.generate(model, tok, {prime = "hello", length = 40, temperature = 0.8},
        function(s) parts[#parts + 1] = s end)
      return table.concat(parts)
    end

    local ok, out = sh(env .. "cc -O2 " .. q(ROOT .. "/examples/lua_host.c")
      .. [[ -DRECUR_LUADIR="\"$(pkg-config --variable=luadir recur-lua)\"" ]]
      .. "$(pkg-config --cflags --libs recur-lua lua5.4) -o lua_host")
    assert.is_true(ok, out)
    for _, seed in ipairs({7, 8}) do
      ok, out = sh(env .. "./lua_host tiny.safetensors hello 40 " .. seed)
      assert.is_true(ok, out)
      assert.are.equal(expected(seed) .. "\n", out)
    end
    assert.are_not.equal(expected(7), expected(8))
    ok, out = sh(env .. "./lua_host missing.safetensors")
    assert.is_falsy(ok)
    assert.matches("^lua_host: io.load: 'missing.safetensors'", out)
  end)

  it("installs a recur command that runs on the installed module", function()
    local lua = q(prefix .. "/share/lua/5.4/?.lua;" .. prefix .. "/share/lua/5.4/?/init.lua;;")
    local ok, out = sh(env .. "LUA_PATH=" .. lua .. " LUA_CPATH=" .. q(prefix .. "/lib/lua/5.4/?.so;;")
      .. " bin/recur sample --checkpoint tiny.safetensors --prime hello --length 5 --seed 7")
    assert.is_true(ok, out)
    assert.matches("^hello", out)
  end)
end)
