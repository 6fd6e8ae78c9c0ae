#!/bin/sh
# luarocks only knows the rocks it installed itself, so the rock's dependencies on
# lua-cjson and argparse would send it to the network although Debian's lua-cjson and
# lua-argparse packages provide them. As root, declare the installed packages as
# provided in luarocks's system configuration (for Lua 5.4), so that
# `luarocks make rockspec/recur-scm-1.rockspec` and `luarocks install` of the rock work
# offline; otherwise say how. README: "Install as a rock".
command -v luarocks >/dev/null 2>&1 || exit 0
for pair in lua-cjson:lua-cjson lua-argparse:argparse; do
  deb=${pair%%:*} rock=${pair#*:}
  version=$(dpkg-query -W -f='${Version}' "$deb" 2>/dev/null | sed 's/^[0-9]*://; s/[+~-].*//')
  [ -n "$version" ] || continue
  [ "$(luarocks --lua-version=5.4 config "rocks_provided.$rock" 2>/dev/null)" = "$version-1" ] && continue
  if [ "$(id -u)" = 0 ]; then
    luarocks --lua-version=5.4 config --scope system "rocks_provided.$rock" "$version-1" >/dev/null &&
      echo "recur: luarocks now counts Debian's $deb as the rock $rock $version-1"
  else
    echo "recur: to let luarocks use Debian's $deb, run: luarocks --lua-version=5.4 config --scope user rocks_provided.$rock $version-1" >&2
  fi
done
exit 0
