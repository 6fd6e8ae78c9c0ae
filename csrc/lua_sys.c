/* What Lua's standard library lacks for training scripts and benchmarks: a wall
 * clock (os.clock is CPU time summed over threads), whether a stream is a
 * terminal (progress bar or log lines), the peak resident memory, and fsync for
 * atomic checkpoint writes. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "lua_recur.h"

static int l_now(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec);
    return 1;
}

/* isatty(fd): fd 1 is stdout, 2 stderr. */
static int l_isatty(lua_State *L)
{
    lua_Integer fd = luaL_optinteger(L, 1, 1);
    lua_pushboolean(L, fd >= 0 && fd <= 1024 && isatty((int)fd));
    return 1;
}

static int l_peak_rss_mb(lua_State *L)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    lua_pushnumber(L, (double)ru.ru_maxrss / 1024.0); /* ru_maxrss is in KiB on Linux */
    return 1;
}

/* Lua's file handles cannot reach fsync, yet an atomic save must get the new file's
 * bytes (and then the directory's rename) to disk before it counts as done. */
static int l_io_fsync(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return luaL_error(L, "io_fsync: cannot open '%s': %s", path, strerror(errno));
    int rc = fsync(fd);
    int err = errno;
    close(fd);
    /* Some file systems cannot sync a directory (EINVAL): nothing more can be done. */
    if (rc != 0 && err != EINVAL)
        return luaL_error(L, "io_fsync: cannot sync '%s': %s", path, strerror(err));
    return 0;
}

static const luaL_Reg sys_functions[] = {
    {"now", l_now}, {"isatty", l_isatty}, {"peak_rss_mb", l_peak_rss_mb},
    {"io_fsync", l_io_fsync}, {NULL, NULL}};

void lrecur_open_sys(lua_State *L)
{
    luaL_setfuncs(L, sys_functions, 0);
}
