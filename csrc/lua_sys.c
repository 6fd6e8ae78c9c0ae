/* What Lua's standard library lacks for training scripts and benchmarks: a wall
 * clock (os.clock is CPU time summed over threads), whether a stream is a
 * terminal (progress bar or log lines), the peak resident memory, fsync for
 * atomic checkpoint writes, and for checkpoint directories: mkdir, a directory
 * listing (stale temporary files) and an exclusive lock (one run per directory). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
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

/* make_dir(path): creates one directory (mode 0777 less the umask); an existing
 * directory is fine. Returns nothing; raises naming the path and the reason. */
static int l_make_dir(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    if (mkdir(path, 0777) == 0) return 0;
    int err = errno;
    struct stat st;
    if (err == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return 0;
    if (err == EEXIST) return luaL_error(L, "make_dir: cannot create '%s': it exists and is not a directory", path);
    return luaL_error(L, "make_dir: cannot create '%s': %s", path, strerror(err));
}

/* list_dir(path): the names in a directory, without "." and "..", in no order. */
static int l_list_dir(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    DIR *d = opendir(path);
    if (!d) return luaL_error(L, "list_dir: cannot open '%s': %s", path, strerror(errno));
    lua_newtable(L);
    lua_Integer n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        lua_pushstring(L, e->d_name); /* may raise on memory: the DIR then leaks, as rarely as never */
        lua_rawseti(L, -2, ++n);
    }
    closedir(d);
    return 1;
}

/* A held lock: the open descriptor whose flock(2) it is; -1 once released. */
#define LOCK_MT "recur.lock"
typedef struct { int fd; } file_lock;

/* lock_file(path): an exclusive flock on path (created if missing), without waiting.
 * On success the file holds our pid and a lock object is returned (released by
 * lock:unlock(), by <close>, by the garbage collector, or by the process's end).
 * When another open file holds the lock: nil and the text of the file (the holder's
 * pid, as it wrote it). flock locks belong to the open file description, so a second
 * lock_file of the same path conflicts even within one process; O_CLOEXEC keeps
 * the lock out of child processes. */
static int l_lock_file(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    file_lock *lk = lua_newuserdatauv(L, sizeof *lk, 0);
    lk->fd = -1;
    luaL_setmetatable(L, LOCK_MT);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) return luaL_error(L, "lock_file: cannot open '%s': %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        if (err != EWOULDBLOCK) {
            close(fd);
            return luaL_error(L, "lock_file: cannot lock '%s': %s", path, strerror(err));
        }
        char holder[64];
        ssize_t n = pread(fd, holder, sizeof holder - 1, 0);
        close(fd);
        lua_pushnil(L);
        lua_pushlstring(L, holder, n > 0 ? (size_t)n : 0);
        return 2;
    }
    lk->fd = fd;
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len)
        return luaL_error(L, "lock_file: cannot write to '%s': %s", path, strerror(errno));
    return 1; /* the userdata */
}

static int l_lock_unlock(lua_State *L)
{
    file_lock *lk = luaL_checkudata(L, 1, LOCK_MT);
    if (lk->fd >= 0) close(lk->fd); /* closing the descriptor releases its flock */
    lk->fd = -1;
    return 0;
}

static int l_lock_held(lua_State *L)
{
    file_lock *lk = luaL_checkudata(L, 1, LOCK_MT);
    lua_pushboolean(L, lk->fd >= 0);
    return 1;
}

static const luaL_Reg lock_methods[] = {
    {"unlock", l_lock_unlock}, {"held", l_lock_held}, {NULL, NULL}};

static const luaL_Reg sys_functions[] = {
    {"now", l_now}, {"isatty", l_isatty}, {"peak_rss_mb", l_peak_rss_mb},
    {"io_fsync", l_io_fsync}, {"make_dir", l_make_dir}, {"list_dir", l_list_dir},
    {"lock_file", l_lock_file}, {NULL, NULL}};

void lrecur_open_sys(lua_State *L)
{
    if (luaL_newmetatable(L, LOCK_MT)) {
        luaL_newlib(L, lock_methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_lock_unlock);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, l_lock_unlock);
        lua_setfield(L, -2, "__close");
    }
    lua_pop(L, 1);
    luaL_setfuncs(L, sys_functions, 0);
}
