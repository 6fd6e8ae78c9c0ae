-- The rock: `make rock` packs the checkout, `luarocks install` puts it in a fresh tree
-- with the network cut off (Debian's lua-cjson and lua-argparse declared as provided,
-- README-rock.md), and `require "recur"` and the `recur` command then work from another
-- directory with nothing but the paths `luarocks path` gives. And the Makefile's
-- OpenBLAS variables, as the rockspec passes them: the folders given are used, the
-- OpenMP build in them preferred.
local helpers = require "spec.support.helpers"
local recur = require "recur"

local q, sh = helpers.q, helpers.sh

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local ROOT = assert(io.popen("pwd")):read("l")
-- The environment of a user: none of the checkout's paths, none of `make sanitize`'s
-- build settings and preloaded runtime, no make jobserver of the `make test` that runs
-- busted.
local CLEAN = "unset LUA_PATH LUA_CPATH LUA_PATH_5_4 LUA_CPATH_5_4 LUA_INIT LUA_INIT_5_4 BUILD CFLAGS LDFLAGS "
  .. "LD_PRELOAD MAKEFLAGS MFLAGS MAKELEVEL; "

-- Runs cmd without a network: in a new network namespace when this user may make one,
-- else with every proxy pointing at a closed port (luarocks downloads through wget).
local function offline(cmd)
  if sh("unshare -n true") then return "unshare -n sh -c " .. q(cmd) end
  local proxy = "http://127.0.0.1:9"
  return string.format("http_proxy=%s https_proxy=%s ftp_proxy=%s all_proxy=%s sh -c %s",
    proxy, proxy, proxy, proxy, q(cmd))
end

describe("the rock", function()
  local dir, tree, rock

  setup(function()
    dir = helpers.tmp_dir()
    tree = dir .. "/tree"
    local ok, out = sh(CLEAN .. "make -s rock")
    assert(ok, out)
    rock = ROOT .. "/" .. assert(out:match("made (%S+%.src%.rock)"), out)
    -- what README-rock.md tells a Debian user to put in ~/.luarocks/config-5.4.lua
    local f = assert(io.open(dir .. "/config.lua", "w"))
    f:write('rocks_provided = { ["lua-cjson"] = "2.1.0-1", argparse = "0.7.1-1" }\n')
    f:close()
  end)

  teardown(function()
    if dir then helpers.remove_dir(dir) end
  end)

  it("is a source rock of this version carrying its rockspec and sources", function()
    assert.matches("/recur%-" .. recur.version:gsub("%.", "%%.") .. "%-1%.src%.rock$", rock)
    local ok, out = sh("unzip -l " .. q(rock))
    assert.is_true(ok, out)
    assert.is_truthy(out:find("recur-" .. recur.version .. "-1.rockspec", 1, true), out)
    assert.is_truthy(out:find("recur-" .. recur.version .. ".tar.gz", 1, true), out)
    ok, out = sh("unzip -p " .. q(rock) .. " recur-" .. recur.version .. "-1.rockspec")
    assert.is_true(ok, out)
    assert.is_truthy(out:find('"lua-cjson >= 2.1"', 1, true), out)
    assert.is_truthy(out:find('"argparse >= 0.7"', 1, true), out)
    assert.is_falsy(out:find("x86_64-linux-gnu", 1, true), "a Debian path in the rockspec")
    assert.is_falsy(out:find("-march", 1, true), "-march in the rockspec")
  end)

  it("installs offline into a fresh tree, and recur works from anywhere with that tree's paths", function()
    local ok, out = sh(CLEAN .. "cd / && " .. offline("LUAROCKS_CONFIG=" .. q(dir .. "/config.lua")
      .. " MAKEFLAGS=-j2 luarocks --lua-version=5.4 --tree " .. q(tree) .. " install " .. q(rock)))
    assert.is_true(ok, out)
    assert.is_truthy(exists(tree .. "/lib/lua/5.4/recur/core.so"), out)
    -- where mpicc is found the rock builds and installs recur.dist as the checkout does
    if os.execute("command -v mpicc >/dev/null 2>&1") then
      assert.is_truthy(exists(tree .. "/lib/lua/5.4/recur/dist.so"), out)
    end

    -- a checkpoint to sample from, saved by the checkout's recur
    recur.manual_seed(5)
    local tok = recur.data.CharTokenizer.fit("the rock rolls on\n")
    local model = recur.models.LanguageModel{vocab_size = tok:vocab_size(), embed = 4, hidden = 8, layers = 1}
    recur.lm.save(dir .. "/m.safetensors", model, tok)
    recur.manual_seed(11)
    local parts = {}
    recur.lm.generate(model, tok, {prime = "the", length = 12}, function(s) parts[#parts + 1] = s end)

    local paths = CLEAN .. "cd " .. q(dir) .. ' && eval "$(luarocks --lua-version=5.4 --tree ' .. q(tree) .. ' path)" && '
    ok, out = sh(paths .. [[lua5.4 -e 'local r = require "recur"; print(r.version);]]
      .. [[ print(package.searchpath("recur", package.path)); print(package.searchpath("recur.core", package.cpath))']])
    assert.is_true(ok, out)
    assert.are.same({recur.version, tree .. "/share/lua/5.4/recur/init.lua", tree .. "/lib/lua/5.4/recur/core.so"},
      {out:match("^(%S+)\n(%S+)\n(%S+)\n$")})
    ok, out = sh(paths .. "recur sample --checkpoint m.safetensors --prime the --length 12 --seed 11")
    assert.is_true(ok, out)
    assert.are.equal(table.concat(parts) .. "\n", out)

    -- the OpenMP build of OpenBLAS, where it is installed
    local openmp = sh("ls /usr/lib/*/openblas-openmp/libopenblas.so.0")
    if openmp then
      ok, out = sh("ldd " .. q(tree .. "/lib/lua/5.4/recur/core.so"))
      assert.is_true(ok, out)
      assert.matches("libopenblas%.so%.0 => %S*/openblas%-openmp/", out)
    end
  end)
end)

describe("luarocks test", function()
  it("builds and runs busted on the specs it is given, offline", function()
    local dir = helpers.tmp_dir()
    local f = assert(io.open(dir .. "/tiny_spec.lua", "w"))
    f:write([[
      describe("under luarocks test", function()
        it("loads the checkout's recur", function()
          local recur = require "recur"
          assert.are.equal(6, recur.tensor({1, 2, 3}):sum())
          assert.matches("^lua/recur/init%.lua$", package.searchpath("recur", package.path))
        end)
      end)
    ]])
    f:close()
    local ok, out = sh(CLEAN .. offline("luarocks --lua-version=5.4 test -- " .. q(dir .. "/tiny_spec.lua")))
    helpers.remove_dir(dir)
    assert.is_true(ok, out)
    assert.is_truthy(out:find("1 success / 0 failures / 0 errors", 1, true), out)
  end)
end)

describe("the Makefile's OpenBLAS variables", function()
  local fake

  before_each(function()
    fake = helpers.tmp_dir()
    assert(os.execute("mkdir -p " .. q(fake .. "/include") .. " " .. q(fake .. "/lib/openblas-openmp")))
    for _, path in ipairs({"include/cblas.h", "lib/libopenblas.so"}) do
      assert(io.open(fake .. "/" .. path, "w")):close()
    end
  end)

  after_each(function() helpers.remove_dir(fake) end)

  -- The commands a build would run (make -n), into a build folder that does not exist.
  local function plan(vars)
    local ok, out = sh(CLEAN .. "make -n -B BUILD=" .. q(fake .. "/build") .. " " .. vars .. " all lib")
    assert.is_true(ok, out)
    return out
  end

  it("compile against OPENBLAS_DIR's include folder and link its lib folder's library", function()
    local out = plan("OPENBLAS_DIR=" .. q(fake))
    assert.is_truthy(out:find("-I" .. fake .. "/include ", 1, true), out)
    assert.is_truthy(out:find(" " .. fake .. "/lib/libopenblas.so ", 1, true), out)
    assert.is_truthy(out:find("-Wl,-rpath," .. fake .. "/lib ", 1, true), out)
  end)

  it("prefer the OpenMP build in OPENBLAS_LIBDIR, and take OPENBLAS_INCDIR over OPENBLAS_DIR", function()
    assert(io.open(fake .. "/lib/openblas-openmp/libopenblas.so.0", "w")):close()
    assert(os.execute("mkdir -p " .. q(fake .. "/inc/openblas")))
    assert(io.open(fake .. "/inc/openblas/cblas.h", "w")):close()
    local out = plan("OPENBLAS_DIR=/nonexistent OPENBLAS_INCDIR=" .. q(fake .. "/inc") .. " OPENBLAS_LIBDIR=" .. q(fake .. "/lib"))
    assert.is_truthy(out:find("-I" .. fake .. "/inc/openblas ", 1, true), out)
    assert.is_truthy(out:find(" " .. fake .. "/lib/openblas-openmp/libopenblas.so.0 ", 1, true), out)
    assert.is_truthy(out:find("-Wl,-rpath," .. fake .. "/lib/openblas-openmp ", 1, true), out)
    assert.is_falsy(out:find("/nonexistent", 1, true), out)
  end)
end)
