/* Helpers shared by every binding file (declared in lua_recur.h): tensor arguments,
 * results, and the checks of sizes, dims, indices and numbers that keep plain Lua
 * calls from reaching C with values it cannot take (overflowing sizes, closed
 * tensors, NaN where an integer is wanted). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lua_recur.h"

/* ---- tensor arguments ---------------------------------------------------- */

recur_tensor *lrecur_test_tensor(lua_State *L, int arg)
{
    recur_tensor *t = luaL_testudata(L, arg, RECUR_TENSOR_MT);
    if (t && !t->storage) luaL_argerror(L, arg, "tensor was closed");
    return t;
}

recur_tensor *lrecur_check_tensor(lua_State *L, int arg)
{
    recur_tensor *t = luaL_checkudata(L, arg, RECUR_TENSOR_MT);
    if (!t->storage) luaL_argerror(L, arg, "tensor was closed");
    return t;
}

recur_tensor *lrecur_opt_tensor(lua_State *L, const char *op, int arg, const char *what)
{
    if (lua_isnoneornil(L, arg)) return NULL;
    recur_tensor *t = luaL_testudata(L, arg, RECUR_TENSOR_MT);
    if (!t) luaL_error(L, "%s: %s expected a tensor, got %s", op, what, luaL_typename(L, arg));
    if (!t->storage) luaL_error(L, "%s: %s is a closed tensor", op, what);
    return t;
}

/* ---- results ------------------------------------------------------------- */

static recur_tensor *push_empty(lua_State *L)
{
    recur_tensor *t = lua_newuserdatauv(L, sizeof *t, 0);
    memset(t, 0, sizeof *t);
    luaL_setmetatable(L, RECUR_TENSOR_MT);
    return t;
}

recur_tensor *lrecur_push_new(lua_State *L, const char *op, recur_dtype dtype, int ndim,
                              const int64_t *size)
{
    int64_t n = lrecur_check_numel(L, op, ndim, size);
    recur_tensor *t = push_empty(L);
    t->storage = recur_storage_new(n, dtype);
    if (!t->storage) luaL_error(L, "%s: out of memory allocating %I elements", op, (lua_Integer)n);
    lrecur_gc_charge(L, t->storage->capacity);
    t->dtype = dtype;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++) t->size[d] = size[d];
    recur_contiguous_strides(ndim, t->size, t->stride);
    return t;
}

recur_tensor *lrecur_push_result(lua_State *L, const char *op, int arg, recur_dtype dtype,
                                 int ndim, const int64_t *size, const recur_tensor *avoid,
                                 const recur_tensor *avoid2)
{
    recur_tensor *out = lrecur_opt_tensor(L, op, arg, "output");
    int fits = out && out->dtype == dtype && out->ndim == ndim && recur_is_contiguous(out) &&
               !(avoid && out->storage == avoid->storage) &&
               !(avoid2 && out->storage == avoid2->storage);
    for (int d = 0; fits && d < ndim; d++) fits = out->size[d] == size[d];
    if (!fits) return lrecur_push_new(L, op, dtype, ndim, size);
    lua_pushvalue(L, arg);
    return out;
}

recur_tensor *lrecur_push_like(lua_State *L, const char *op, const recur_tensor *t)
{
    return lrecur_push_new(L, op, t->dtype, t->ndim, t->size);
}

recur_tensor *lrecur_push_view(lua_State *L, const recur_tensor *src)
{
    recur_tensor *t = push_empty(L);
    *t = *src;
    recur_storage_retain(t->storage);
    return t;
}

recur_tensor *lrecur_contiguous(lua_State *L, recur_tensor *t)
{
    if (recur_is_contiguous(t)) return t;
    recur_tensor *c = lrecur_push_like(L, "contiguous", t);
    recur_copy(c, t);
    return c;
}

/* ---- collector pacing ---------------------------------------------------- */

/* Lua's collector sees only the small userdata of a tensor, not its block. Two
 * things keep garbage tensors from piling up without touching the host's choice of
 * collector mode:
 *  - each block is charged to the collector as debt (LUA_GCSTEP), so the incremental
 *    collector runs its cycles at the pace tensors are made;
 *  - in generational mode that is not enough: a tensor that outlives two minor
 *    collections (any output a module keeps until its next forward) turns old, and
 *    old objects go only in a major collection, which waits for the Lua heap itself to
 *    double; tensors barely grow it (training a 3-layer 512 LSTM language model grew
 *    by 16 MB an iteration). So once the tensor bytes allocated by this state since the
 *    last major reach an eighth of the bytes alive after it (at least PACE_MIN_BYTES),
 *    a major runs. The garbage between two majors is what a process holds beyond its
 *    live tensors: at all the bytes alive (and 64 MiB at least) the char-rnn protocol's
 *    3x512 model peaked at 362 MB against 322 with a full collection every iteration;
 *    at an eighth, 330 MB, at no cost in time (a major there takes about a millisecond
 *    and comes every few iterations). A major also makes every tensor alive at that
 *    moment old, temporaries included, so a small model carries up to PACE_MIN_BYTES
 *    of them until the next one.
 *    Lua offers no query for the mode, so the check sets incremental mode and reads the
 *    mode it replaced (nothing changes if it was incremental already); a generational
 *    state is put back into generational mode, and that switch is itself a full
 *    collection. */
#define PACE_KEY "recur.gc_pace"
#define PACE_MIN_BYTES ((size_t)16 << 20)
#define PACE_SHARE 8

typedef struct {
    size_t since;     /* bytes allocated since the last check */
    size_t threshold; /* bytes that trigger the next check */
} gc_pace;

static gc_pace *pace(lua_State *L)
{
    if (lua_getfield(L, LUA_REGISTRYINDEX, PACE_KEY) != LUA_TUSERDATA ||
        lua_rawlen(L, -1) != sizeof(gc_pace)) {
        lua_pop(L, 1);
        gc_pace *p = lua_newuserdatauv(L, sizeof *p, 0);
        p->since = 0;
        p->threshold = PACE_MIN_BYTES;
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, PACE_KEY);
    }
    gc_pace *p = lua_touserdata(L, -1);
    lua_pop(L, 1); /* the registry keeps it alive */
    return p;
}

void lrecur_gc_charge(lua_State *L, size_t bytes)
{
    size_t kib = bytes >> 10;
    if (kib < 16 || !lua_gc(L, LUA_GCISRUNNING)) return; /* a host that stopped it decides */
    lua_gc(L, LUA_GCSTEP, (int)(kib < (1u << 30) ? kib : (1u << 30)));
    gc_pace *p = pace(L);
    p->since += bytes;
    if (p->since < p->threshold) return;
    p->since = 0;
    if (lua_gc(L, LUA_GCINC, 0, 0, 0) == LUA_GCGEN) lua_gc(L, LUA_GCGEN, 0, 0);
    size_t live = recur_storage_live_bytes();
    p->threshold = live / PACE_SHARE > PACE_MIN_BYTES ? live / PACE_SHARE : PACE_MIN_BYTES;
}

/* ---- numbers, sizes, dims, indices --------------------------------------- */

int64_t lrecur_number_to_int64(lua_State *L, const char *op, lua_Number x)
{
    int64_t r;
    if (!recur_double_to_int64(x, &r) || (lua_Number)r != x) {
        char buf[64];
        snprintf(buf, sizeof buf, "%.17g", (double)x);
        luaL_error(L, "%s: cannot convert %s to int64", op, buf);
    }
    return r;
}

int64_t lrecur_check_int64(lua_State *L, const char *op, int arg)
{
    if (lua_isinteger(L, arg)) return (int64_t)lua_tointeger(L, arg);
    return lrecur_number_to_int64(L, op, luaL_checknumber(L, arg));
}

int64_t lrecur_check_numel(lua_State *L, const char *op, int ndim, const int64_t *size)
{
    if (ndim < 0 || ndim > RECUR_MAX_DIMS)
        luaL_error(L, "%s: %d dimensions, at most %d are supported", op, ndim, RECUR_MAX_DIMS);
    int64_t n = recur_numel_of(ndim, size);
    if (n < 0) {
        char buf[200];
        recur_tensor shape = {.ndim = ndim};
        for (int d = 0; d < ndim; d++) shape.size[d] = size[d];
        luaL_error(L, "%s: invalid size %s (negative or too large)", op,
                   lrecur_shape_str(&shape, buf, sizeof buf));
    }
    return n;
}

/* One size entry: an integer >= 0 (an integral float such as 2^40 is taken). */
static int64_t size_entry(lua_State *L, const char *op, int idx, int d)
{
    int isint;
    lua_Integer v = lua_tointegerx(L, idx, &isint);
    if (!isint || v < 0)
        luaL_error(L, "%s: size %d must be a non-negative integer, got %s", op, d + 1,
                   luaL_tolstring(L, idx, NULL));
    return v;
}

int lrecur_check_size(lua_State *L, const char *op, int arg, int64_t *size, int *ndim)
{
    int n = 0;
    if (lua_istable(L, arg)) {
        lua_Unsigned len = lua_rawlen(L, arg);
        if (len > RECUR_MAX_DIMS)
            luaL_error(L, "%s: %I dimensions, at most %d are supported", op, (lua_Integer)len,
                       RECUR_MAX_DIMS);
        n = (int)len;
        for (int d = 0; d < n; d++) {
            lua_rawgeti(L, arg, d + 1);
            size[d] = size_entry(L, op, lua_gettop(L), d);
            lua_pop(L, 1);
        }
        *ndim = n;
        lrecur_check_numel(L, op, n, size);
        return arg + 1;
    }
    while (lua_type(L, arg + n) == LUA_TNUMBER) {
        if (n == RECUR_MAX_DIMS)
            luaL_error(L, "%s: more than %d dimensions", op, RECUR_MAX_DIMS);
        size[n] = size_entry(L, op, arg + n, n);
        n++;
    }
    *ndim = n;
    lrecur_check_numel(L, op, n, size);
    return arg + n;
}

int lrecur_check_dim(lua_State *L, const char *op, const recur_tensor *t, int arg)
{
    lua_Integer given = luaL_checkinteger(L, arg), d = given;
    if (d < 0) d += t->ndim + 1;
    if (d < 1 || d > t->ndim)
        luaL_error(L, "%s: dim %I out of range for a %d-D tensor", op, given, t->ndim);
    return (int)d - 1;
}

int64_t lrecur_check_index(lua_State *L, const char *op, const recur_tensor *t, int d,
                           lua_Integer i)
{
    int64_t n = t->size[d];
    lua_Integer given = i;
    if (i < 0) i += n + 1; /* n <= RECUR_MAX_NUMEL: no overflow */
    if (i < 1 || i > n)
        luaL_error(L, "%s: index %I out of range for dimension %d of size %I", op, given, d + 1,
                   (lua_Integer)n);
    return i - 1;
}

/* ---- dtypes and shapes --------------------------------------------------- */

recur_dtype lrecur_opt_dtype(lua_State *L, int arg, recur_dtype def)
{
    static const char *const names[] = {"float32", "float64", "int64", NULL};
    if (lua_isnoneornil(L, arg)) return def;
    return (recur_dtype)luaL_checkoption(L, arg, NULL, names);
}

const char *lrecur_shape_str(const recur_tensor *t, char *buf, size_t len)
{
    size_t used = (size_t)snprintf(buf, len, "(");
    for (int d = 0; t && d < t->ndim && used < len; d++)
        used += (size_t)snprintf(buf + used, len - used, d ? "x%lld" : "%lld", (long long)t->size[d]);
    if (used < len) snprintf(buf + used, len - used, ")");
    return buf;
}

void lrecur_check_dtype(lua_State *L, const char *op, const char *what, const recur_tensor *t,
                        recur_dtype dtype)
{
    if (t->dtype != dtype)
        luaL_error(L, "%s: %s expected dtype %s, got %s", op, what, recur_dtype_name(dtype),
                   recur_dtype_name(t->dtype));
}

void lrecur_check_same_dtype(lua_State *L, const char *op, const recur_tensor *a,
                             const recur_tensor *b)
{
    if (a->dtype != b->dtype)
        luaL_error(L, "%s: dtype mismatch, %s and %s", op, recur_dtype_name(a->dtype),
                   recur_dtype_name(b->dtype));
}

void lrecur_check_shape(lua_State *L, const char *op, const char *what, const recur_tensor *t,
                        int ndim, const int64_t *size)
{
    int ok = t->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++) ok = size[d] < 0 || size[d] == t->size[d];
    if (ok) return;
    char want[160], got[160];
    size_t used = (size_t)snprintf(want, sizeof want, "(");
    for (int d = 0; d < ndim && used < sizeof want; d++) {
        if (size[d] < 0)
            used += (size_t)snprintf(want + used, sizeof want - used, d ? "x*" : "*");
        else
            used += (size_t)snprintf(want + used, sizeof want - used, d ? "x%lld" : "%lld",
                                     (long long)size[d]);
    }
    if (used < sizeof want) snprintf(want + used, sizeof want - used, ")");
    luaL_error(L, "%s: %s expected %s, got %s", op, what, want,
               lrecur_shape_str(t, got, sizeof got));
}

void lrecur_check_contiguous(lua_State *L, const char *op, const char *what,
                             const recur_tensor *t)
{
    if (!recur_is_contiguous(t)) luaL_error(L, "%s: %s must be contiguous", op, what);
}
