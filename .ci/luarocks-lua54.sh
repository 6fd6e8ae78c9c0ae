#!/bin/sh
# Debian's luarocks targets Lua 5.1 unless told otherwise; recur's rock needs 5.4.
# As root, make 5.4 the system default so `luarocks make rockspec/recur-scm-1.rockspec`
# works as written; otherwise say how.
command -v luarocks >/dev/null 2>&1 || exit 0
[ "$(luarocks config lua_version 2>/dev/null)" = "5.4" ] && exit 0
if [ "$(id -u)" = 0 ]; then
  luarocks config --scope system lua_version 5.4 >/dev/null && echo "recur: luarocks now targets Lua 5.4 by default"
else
  echo "recur: luarocks targets Lua $(luarocks config lua_version); use 'luarocks --lua-version=5.4 make rockspec/recur-scm-1.rockspec'" >&2
fi
exit 0
