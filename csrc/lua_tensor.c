/* Lua bindings for tensors: the userdata, creation, views, element access,
 * printing and the generator. Operations live in lua_tensor_ops.c. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <cblas.h>
#include <omp.h>

#include "blas.h"
#include "lua_recur.h"

#define RECUR_RNG_KEY "recur.rng"

/* ---- helpers shared with the other binding files ------------------------ */

recur_tensor *lrecur_test_tensor(lua_State *L, int arg)
{
    recur_tensor *t = luaL_testudata(L, arg, RECUR_TENSOR_MT);
    return t && t->storage ? t : NULL;
}

recur_tensor *lrecur_check_tensor(lua_State *L, int arg)
{
    recur_tensor *t = luaL_checkudata(L, arg, RECUR_TENSOR_MT);
    if (!t->storage) luaL_argerror(L, arg, "tensor was closed");
    return t;
}

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
    if (ndim < 0 || ndim > RECUR_MAX_DIMS)
        luaL_error(L, "%s: %d dimensions, at most %d are supported", op, ndim, RECUR_MAX_DIMS);
    int64_t n = recur_numel_of(ndim, size);
    if (n < 0) luaL_error(L, "%s: invalid size (negative or too large)", op);
    recur_tensor *t = push_empty(L);
    t->storage = recur_storage_new(n, dtype);
    if (!t->storage) luaL_error(L, "%s: out of memory allocating %I elements", op, (lua_Integer)n);
    /* Lua's collector sees only the small userdata; tell it about the block so
     * that garbage tensors are collected at the pace they are made (this needs the
     * incremental collector: see lrecur_open_tensor). */
    size_t kib = t->storage->nbytes >> 10;
    if (kib >= 16) lua_gc(L, LUA_GCSTEP, (int)(kib < (1u << 30) ? kib : (1u << 30)));
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
    recur_tensor *out = lua_isnoneornil(L, arg) ? NULL : lrecur_check_tensor(L, arg);
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

recur_dtype lrecur_opt_dtype(lua_State *L, int arg, recur_dtype def)
{
    static const char *const names[] = {"float32", "float64", "int64", NULL};
    if (lua_isnoneornil(L, arg)) return def;
    return (recur_dtype)luaL_checkoption(L, arg, NULL, names);
}

const char *lrecur_shape_str(const recur_tensor *t, char *buf, size_t len)
{
    size_t used = (size_t)snprintf(buf, len, "(");
    for (int d = 0; d < t->ndim && used < len; d++)
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

recur_rng *lrecur_rng(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, RECUR_RNG_KEY);
    recur_rng *g = lua_touserdata(L, -1);
    lua_pop(L, 1); /* the registry keeps it alive */
    return g;
}

int recur_get_num_threads(void)
{
    return omp_get_max_threads();
}

void recur_set_num_threads(int n)
{
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

/* ---- argument parsing ---------------------------------------------------- */

/* Reads a size given as numbers starting at `arg` or as one table at `arg`.
 * Returns the index of the first argument after the size. */
static int check_size(lua_State *L, const char *op, int arg, int64_t *size, int *ndim)
{
    int n = 0;
    if (lua_istable(L, arg)) {
        n = (int)lua_rawlen(L, arg);
        if (n > RECUR_MAX_DIMS) luaL_error(L, "%s: %d dimensions, at most %d are supported", op, n, RECUR_MAX_DIMS);
        for (int d = 0; d < n; d++) {
            lua_rawgeti(L, arg, d + 1);
            int isint;
            lua_Integer v = lua_tointegerx(L, -1, &isint);
            if (!isint || v < 0) luaL_error(L, "%s: size entry %d must be a non-negative integer", op, d + 1);
            size[d] = v;
            lua_pop(L, 1);
        }
        *ndim = n;
        return arg + 1;
    }
    while (lua_type(L, arg + n) == LUA_TNUMBER) {
        if (n == RECUR_MAX_DIMS) luaL_error(L, "%s: more than %d dimensions", op, RECUR_MAX_DIMS);
        int isint;
        lua_Integer v = lua_tointegerx(L, arg + n, &isint);
        if (!isint || v < 0)
            luaL_error(L, "%s: size %d must be a non-negative integer, got %s", op, n + 1,
                       luaL_tolstring(L, arg + n, NULL));
        size[n++] = v;
    }
    *ndim = n;
    return arg + n;
}

/* Converts a 1-based Lua index along dimension d (negative counts from the end). */
static int64_t check_index(lua_State *L, const char *op, const recur_tensor *t, int d, lua_Integer i)
{
    int64_t n = t->size[d];
    if (i < 0) i += n + 1;
    if (i < 1 || i > n)
        luaL_error(L, "%s: index %I out of range for dimension %d of size %I", op, (lua_Integer)i,
                   d + 1, (lua_Integer)n);
    return i - 1;
}

static int check_dim(lua_State *L, const char *op, const recur_tensor *t, int arg)
{
    lua_Integer d = luaL_checkinteger(L, arg);
    if (d < 0) d += t->ndim + 1;
    if (d < 1 || d > t->ndim)
        luaL_error(L, "%s: dimension %d out of range for a %d-d tensor", op, (int)lua_tointeger(L, arg), t->ndim);
    return (int)d - 1;
}

/* ---- creation ------------------------------------------------------------ */

static recur_tensor *new_from_args(lua_State *L, const char *op, int *next)
{
    int64_t size[RECUR_MAX_DIMS];
    int ndim;
    int arg = check_size(L, op, 1, size, &ndim);
    recur_dtype dtype = lrecur_opt_dtype(L, arg, RECUR_FLOAT32);
    if (next) *next = arg + 1;
    return lrecur_push_new(L, op, dtype, ndim, size);
}

static void fill_value(recur_tensor *t, double v)
{
    int64_t n = recur_numel(t);
    if (recur_is_contiguous(t)) {
        switch (t->dtype) {
        case RECUR_FLOAT32: { float *p = recur_f32(t); for (int64_t i = 0; i < n; i++) p[i] = (float)v; break; }
        case RECUR_FLOAT64: { double *p = recur_f64(t); for (int64_t i = 0; i < n; i++) p[i] = v; break; }
        case RECUR_INT64: { int64_t *p = recur_i64(t); for (int64_t i = 0; i < n; i++) p[i] = (int64_t)v; break; }
        }
        return;
    }
    for (int64_t i = 0; i < n; i++) recur_set_flat(t, i, v);
}

static int l_zeros(lua_State *L)
{
    new_from_args(L, "zeros", NULL);
    return 1;
}

static int l_empty(lua_State *L)
{
    new_from_args(L, "empty", NULL);
    return 1;
}

static int l_ones(lua_State *L)
{
    recur_tensor *t = new_from_args(L, "ones", NULL);
    fill_value(t, 1);
    return 1;
}

static int l_full(lua_State *L)
{
    int64_t size[RECUR_MAX_DIMS];
    int ndim;
    luaL_checktype(L, 1, LUA_TTABLE);
    int arg = check_size(L, "full", 1, size, &ndim);
    double v = luaL_checknumber(L, arg);
    recur_tensor *t = lrecur_push_new(L, "full", lrecur_opt_dtype(L, arg + 1, RECUR_FLOAT32), ndim, size);
    fill_value(t, v);
    return 1;
}

static int l_arange(lua_State *L)
{
    double a = 0, b, step = 1;
    int darg;
    if (lua_type(L, 2) == LUA_TNUMBER) {
        a = luaL_checknumber(L, 1);
        b = luaL_checknumber(L, 2);
        step = luaL_optnumber(L, 3, 1);
        darg = lua_type(L, 3) == LUA_TNUMBER ? 4 : 3;
    } else {
        b = luaL_checknumber(L, 1);
        darg = 2;
    }
    if (step == 0) luaL_error(L, "arange: step must not be zero");
    double count = ceil((b - a) / step);
    if (count < 0) count = 0;
    if (count > 1e15) luaL_error(L, "arange: too many elements");
    int64_t n = (int64_t)count;
    recur_dtype dtype = lrecur_opt_dtype(L, darg, RECUR_FLOAT32);
    recur_tensor *t = lrecur_push_new(L, "arange", dtype, 1, &n);
    for (int64_t i = 0; i < n; i++) recur_set_flat(t, i, a + (double)i * step);
    return 1;
}

/* recur.tensor(nested_table_or_number [, dtype]) */
static void infer_shape(lua_State *L, int idx, int depth, int64_t *size, int *ndim)
{
    if (lua_type(L, idx) != LUA_TTABLE) return;
    if (depth >= RECUR_MAX_DIMS) luaL_error(L, "tensor: more than %d levels of nesting", RECUR_MAX_DIMS);
    size[depth] = (int64_t)lua_rawlen(L, idx);
    *ndim = depth + 1;
    if (size[depth] > 0) {
        lua_rawgeti(L, idx, 1);
        infer_shape(L, lua_gettop(L), depth + 1, size, ndim);
        lua_pop(L, 1);
    }
}

static void fill_nested(lua_State *L, int idx, int depth, const recur_tensor *t, int64_t *pos)
{
    if (depth == t->ndim) {
        int isnum;
        lua_Number v = lua_tonumberx(L, idx, &isnum);
        if (!isnum) luaL_error(L, "tensor: element %I is not a number", (lua_Integer)(*pos + 1));
        if (t->dtype == RECUR_INT64) {
            int isint;
            lua_Integer iv = lua_tointegerx(L, idx, &isint);
            if (!isint) luaL_error(L, "tensor: element %I is not an integer", (lua_Integer)(*pos + 1));
            recur_i64(t)[(*pos)++] = iv;
        } else {
            recur_set_flat((recur_tensor *)t, (*pos)++, v);
        }
        return;
    }
    if (lua_type(L, idx) != LUA_TTABLE || (int64_t)lua_rawlen(L, idx) != t->size[depth])
        luaL_error(L, "tensor: ragged nested table (expected %I entries at depth %d)",
                   (lua_Integer)t->size[depth], depth + 1);
    for (int64_t i = 1; i <= t->size[depth]; i++) {
        lua_rawgeti(L, idx, i);
        fill_nested(L, lua_gettop(L), depth + 1, t, pos);
        lua_pop(L, 1);
    }
}

static int l_tensor(lua_State *L)
{
    if (lua_type(L, 1) != LUA_TTABLE && lua_type(L, 1) != LUA_TNUMBER)
        luaL_argerror(L, 1, "nested table of numbers or a number expected");
    int64_t size[RECUR_MAX_DIMS];
    int ndim = 0;
    infer_shape(L, 1, 0, size, &ndim);
    recur_tensor *t = lrecur_push_new(L, "tensor", lrecur_opt_dtype(L, 2, RECUR_FLOAT32), ndim, size);
    int64_t pos = 0;
    fill_nested(L, 1, 0, t, &pos);
    return 1;
}

static int l_from_bytes(lua_State *L)
{
    size_t len;
    const char *bytes = luaL_checklstring(L, 1, &len);
    recur_dtype dtype = lrecur_opt_dtype(L, 2, RECUR_FLOAT32);
    int64_t size[RECUR_MAX_DIMS];
    int ndim;
    luaL_checktype(L, 3, LUA_TTABLE);
    check_size(L, "from_bytes", 3, size, &ndim);
    int64_t n = recur_numel_of(ndim, size);
    if (n < 0 || (uint64_t)n * recur_dtype_size(dtype) != len)
        luaL_error(L, "from_bytes: %I bytes do not hold %I %s elements", (lua_Integer)len,
                   (lua_Integer)n, recur_dtype_name(dtype));
    recur_tensor *t = lrecur_push_new(L, "from_bytes", dtype, ndim, size);
    memcpy(recur_data(t), bytes, len); /* x86-64 and aarch64 are little-endian, as the format */
    return 1;
}

static int l_tobytes(lua_State *L)
{
    recur_tensor *t = lrecur_check_tensor(L, 1);
    recur_tensor *c = lrecur_contiguous(L, t);
    lua_pushlstring(L, recur_data(c), (size_t)recur_numel(c) * recur_dtype_size(c->dtype));
    return 1;
}

/* ---- generator ------------------------------------------------------------ */

static int l_manual_seed(lua_State *L)
{
    lua_Integer seed = luaL_checkinteger(L, 1);
    recur_rng_seed(lrecur_rng(L), (uint64_t)seed);
    return 0;
}

static int l_rand(lua_State *L)
{
    recur_tensor *t = new_from_args(L, "rand", NULL);
    if (t->dtype == RECUR_INT64) luaL_error(L, "rand: int64 is not a floating dtype");
    recur_rng *g = lrecur_rng(L);
    int64_t n = recur_numel(t);
    for (int64_t i = 0; i < n; i++) recur_set_flat(t, i, recur_rng_uniform(g));
    return 1;
}

static int l_randn(lua_State *L)
{
    recur_tensor *t = new_from_args(L, "randn", NULL);
    if (t->dtype == RECUR_INT64) luaL_error(L, "randn: int64 is not a floating dtype");
    recur_rng *g = lrecur_rng(L);
    int64_t n = recur_numel(t);
    for (int64_t i = 0; i < n; i++) recur_set_flat(t, i, recur_rng_normal(g));
    return 1;
}

/* recur.uniform(size_table, lo, hi [, dtype]) */
static int l_uniform(lua_State *L)
{
    int64_t size[RECUR_MAX_DIMS];
    int ndim;
    luaL_checktype(L, 1, LUA_TTABLE);
    check_size(L, "uniform", 1, size, &ndim);
    double lo = luaL_checknumber(L, 2), hi = luaL_checknumber(L, 3);
    if (!(lo <= hi)) luaL_error(L, "uniform: lower bound %f above upper bound %f", lo, hi);
    recur_tensor *t = lrecur_push_new(L, "uniform", lrecur_opt_dtype(L, 4, RECUR_FLOAT32), ndim, size);
    if (t->dtype == RECUR_INT64) luaL_error(L, "uniform: int64 is not a floating dtype");
    recur_rng *g = lrecur_rng(L);
    int64_t n = recur_numel(t);
    for (int64_t i = 0; i < n; i++) recur_set_flat(t, i, lo + (hi - lo) * recur_rng_uniform(g));
    return 1;
}

/* recur.random_integer(lo, hi): one uniform integer in [lo, hi] from the generator,
 * for shuffles and sampling done in Lua. */
static int l_random_integer(lua_State *L)
{
    lua_Integer lo = luaL_checkinteger(L, 1), hi = luaL_checkinteger(L, 2);
    if (lo > hi) luaL_error(L, "random_integer: empty range [%I, %I]", (lua_Integer)lo, (lua_Integer)hi);
    uint64_t span = (uint64_t)(hi - lo) + 1;
    recur_rng *g = lrecur_rng(L);
    uint64_t r;
    if (span == 0) r = recur_rng_next(g);
    else {
        /* rejection sampling keeps every value equally likely */
        uint64_t limit = UINT64_MAX - UINT64_MAX % span;
        do r = recur_rng_next(g); while (r >= limit);
        r %= span;
    }
    lua_pushinteger(L, (lua_Integer)((uint64_t)lo + r));
    return 1;
}

static int l_random_uniform(lua_State *L)
{
    lua_pushnumber(L, recur_rng_uniform(lrecur_rng(L)));
    return 1;
}

/* Generator state as a string (for checkpoints) and back. */
static int l_get_rng_state(lua_State *L)
{
    lua_pushlstring(L, (const char *)lrecur_rng(L)->s, sizeof(recur_rng));
    return 1;
}

static int l_set_rng_state(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    if (len != sizeof(recur_rng)) luaL_error(L, "set_rng_state: expected %d bytes, got %d", (int)sizeof(recur_rng), (int)len);
    memcpy(lrecur_rng(L)->s, s, len);
    return 0;
}

/* ---- threads ------------------------------------------------------------- */

static int l_set_num_threads(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    if (n < 1 || n > 1024) luaL_error(L, "set_num_threads: %I is not a thread count", (lua_Integer)n);
    recur_set_num_threads((int)n);
    return 0;
}

static int l_get_num_threads(lua_State *L)
{
    lua_pushinteger(L, recur_get_num_threads());
    return 1;
}

/* recur.set_cache_limit(bytes): how much freed tensor memory is kept for reuse. */
static int l_set_cache_limit(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    if (n < 0) luaL_error(L, "set_cache_limit: %I is not a byte count", n);
    recur_cache_set_limit((size_t)n);
    return 0;
}

static int l_cache_bytes(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)recur_cache_bytes());
    return 1;
}

static pthread_once_t repair_once = PTHREAD_ONCE_INIT;
static const char *repaired_core;

static void repair_core_once(void)
{
    repaired_core = recur_blas_repair_core();
}

void lrecur_repair_blas_core(void)
{
    pthread_once(&repair_once, repair_core_once);
}

/* blas_info() -> {config, parallel, threads, core, core_repaired}: core_repaired is the
 * kernel family recur switched OpenBLAS to (see csrc/blas_core.c), else absent. */
static int l_blas_info(lua_State *L)
{
    lua_createtable(L, 0, 5);
    lua_pushstring(L, openblas_get_corename());
    lua_setfield(L, -2, "core");
    if (repaired_core) {
        lua_pushstring(L, repaired_core);
        lua_setfield(L, -2, "core_repaired");
    }
    lua_pushstring(L, openblas_get_config());
    lua_setfield(L, -2, "config");
    int par = openblas_get_parallel(); /* 0 sequential, 1 pthreads, 2 OpenMP */
    lua_pushstring(L, par == 2 ? "openmp" : par == 1 ? "pthreads" : "sequential");
    lua_setfield(L, -2, "parallel");
    lua_pushinteger(L, openblas_get_num_threads());
    lua_setfield(L, -2, "threads");
    return 1;
}

/* ---- shape and access ------------------------------------------------------ */

static int m_size(lua_State *L)
{
    recur_tensor *t = lrecur_check_tensor(L, 1);
    if (!lua_isnoneornil(L, 2)) {
        lua_pushinteger(L, t->size[check_dim(L, "size", t, 2)]);
        return 1;
    }
    lua_createtable(L, t->ndim, 0);
    for (int d = 0; d < t->ndim; d++) {
        lua_pushinteger(L, t->size[d]);
        lua_rawseti(L, -2, d + 1);
    }
    return 1;
}

static int m_stride(lua_State *L)
{
    recur_tensor *t = lrecur_check_tensor(L, 1);
    lua_createtable(L, t->ndim, 0);
    for (int d = 0; d < t->ndim; d++) {
        lua_pushinteger(L, t->stride[d]);
        lua_rawseti(L, -2, d + 1);
    }
    return 1;
}

static int m_len(lua_State *L)
{
    recur_tensor *t = lrecur_check_tensor(L, 1);
    lua_pushinteger(L, t->ndim ? t->size[0] : 0);
    return 1;
}

static int m_dim(lua_State *L)
{
    lua_pushinteger(L, lrecur_check_tensor(L, 1)->ndim);
    return 1;
}

static int m_numel(lua_State *L)
{
    lua_pushinteger(L, recur_numel(lrecur_check_tensor(L, 1)));
    return 1;
}

static int m_dtype(lua_State *L)
{
    lua_pushstring(L, recur_dtype_name(lrecur_check_tensor(L, 1)->dtype));
    return 1;
}

static int m_is_contiguous(lua_State *L)
{
    lua_pushboolean(L, recur_is_contiguous(lrecur_check_tensor(L, 1)));
    return 1;
}

static void push_element(lua_State *L, const recur_tensor *t, int64_t off)
{
    void *p = t->storage->data;
    switch (t->dtype) {
    case RECUR_FLOAT32: lua_pushnumber(L, ((float *)p)[off]); break;
    case RECUR_FLOAT64: lua_pushnumber(L, ((double *)p)[off]); break;
    case RECUR_INT64: lua_pushinteger(L, ((int64_t *)p)[off]); break;
    }
}

/* Offset of the element addressed by ndim integer arguments starting at arg. */
static int64_t element_offset(lua_State *L, const char *op, const recur_tensor *t, int arg)
{
    int64_t off = t->offset;
    for (int d = 0; d < t->ndim; d++) {
        if (lua_type(L, arg + d) != LUA_TNUMBER)
            luaL_error(L, "%s: expected %d indices for a %d-d tensor", op, t->ndim, t->ndim);
        off += check_index(L, op, t, d, luaL_checkinteger(L, arg + d)) * t->stride[d];
    }
    return off;
}

static int m_get(lua_State *L)
{
    recur_tensor *t = lrecur_check_tensor(L, 1);
    if (lua_gettop(L) - 1 != t->ndim)
        luaL_error(L, "get: expected %d indices for a %d-d tensor, got %d", t->ndim, t->ndim, lua_gettop(L) - 1);
    push_element(L, t, element_offset(L, "get", t, 2));
    return 1;
}

static int m_set(lua_State *L)
{
    recur_tensor *t = lrecur_check_tensor(L, 1);
    if (lua_gettop(L) - 2 != t->ndim)
        luaL_error(L, "set: expected %d indices and a value for a %d-d tensor", t->ndim, t->ndim);
    int64_t off = element_offset(L, "set", t, 2);
    int varg = 2 + t->ndim;
    void *p = t->storage->data;
    switch (t->dtype) {
    case RECUR_FLOAT32: ((float *)p)[off] = (float)luaL_checknumber(L, varg); break;
    case RECUR_FLOAT64: ((double *)p)[off] = luaL_checknumber(L, varg); break;
    case RECUR_INT64: ((int64_t *)p)[off] = luaL_checkinteger(L, varg); break;
    }
    lua_settop(L, 1);
    return 1;
}

static int m_item(lua_State *L)
{
    recur_tensor *t = lrecur_check_tensor(L, 1);
    if (recur_numel(t) != 1) luaL_error(L, "item: tensor has %I elements, expected 1", (lua_Integer)recur_numel(t));
    int64_t off = t->offset; /* every index is 0 */
    push_element(L, t, off);
    return 1;
}

static void push_nested(lua_State *L, const recur_tensor *t, int d, int64_t off)
{
    if (d == t->ndim) {
        push_element(L, t, off);
        return;
    }
    lua_createtable(L, (int)t->size[d], 0);
    for (int64_t i = 0; i < t->size[d]; i++) {
        push_nested(L, t, d + 1, off + i * t->stride[d]);
        lua_rawseti(L, -2, i + 1);
    }
}

static int m_totable(lua_State *L)
{
    recur_tensor *t = lrecur_check_tensor(L, 1);
    luaL_checkstack(L, t->ndim + 4, "totable");
    push_nested(L, t, 0, t->offset);
    return 1;
}

/* tostring: values like torch7 prints them, then a line with dtype and shape.
 * Large tensors show their first and last rows only. */
static void format_value(luaL_Buffer *b, const recur_tensor *t, int64_t off)
{
    char buf[64];
    void *p = t->storage->data;
    if (t->dtype == RECUR_INT64)
        snprintf(buf, sizeof buf, "%lld", (long long)((int64_t *)p)[off]);
    else
        snprintf(buf, sizeof buf, "%.4g", t->dtype == RECUR_FLOAT32 ? ((float *)p)[off] : ((double *)p)[off]);
    luaL_addstring(b, buf);
}

static void format_rows(luaL_Buffer *b, const recur_tensor *t, int d, int64_t off, int indent)
{
    const int64_t edge = 3; /* rows shown at each end of a long dimension */
    luaL_addchar(b, '[');
    int64_t n = t->size[d];
    for (int64_t i = 0; i < n; i++) {
        if (n > 2 * edge + 1 && i == edge) {
            luaL_addstring(b, d == t->ndim - 1 ? "..., " : "...,\n");
            if (d < t->ndim - 1)
                for (int k = 0; k <= indent; k++) luaL_addchar(b, ' ');
            i = n - edge - 1;
            continue;
        }
        if (d == t->ndim - 1)
            format_value(b, t, off + i * t->stride[d]);
        else
            format_rows(b, t, d + 1, off + i * t->stride[d], indent + 1);
        if (i < n - 1) {
            luaL_addstring(b, d == t->ndim - 1 ? ", " : ",\n");
            if (d < t->ndim - 1)
                for (int k = 0; k <= indent; k++) luaL_addchar(b, ' ');
        }
    }
    luaL_addchar(b, ']');
}

static int m_tostring(lua_State *L)
{
    recur_tensor *t = luaL_checkudata(L, 1, RECUR_TENSOR_MT);
    if (!t->storage) {
        lua_pushstring(L, "recur.Tensor (closed)");
        return 1;
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    if (t->ndim == 0)
        format_value(&b, t, t->offset);
    else if (recur_numel(t) == 0)
        luaL_addstring(&b, "[]");
    else
        format_rows(&b, t, 0, t->offset, 0);
    char shape[200];
    luaL_addstring(&b, "\n[recur.Tensor ");
    luaL_addstring(&b, recur_dtype_name(t->dtype));
    luaL_addchar(&b, ' ');
    luaL_addstring(&b, lrecur_shape_str(t, shape, sizeof shape));
    luaL_addchar(&b, ']');
    luaL_pushresult(&b);
    return 1;
}

/* ---- views and copies ------------------------------------------------------- */

static int m_narrow(lua_State *L)
{
    recur_tensor *t = lrecur_check_tensor(L, 1);
    int d = check_dim(L, "narrow", t, 2);
    lua_Integer start = luaL_checkinteger(L, 3), len = luaL_checkinteger(L, 4);
    if (start < 1 || len < 0 || start - 1 + len > t->size[d])
        luaL_error(L, "narrow: range [%I, %I] outside dimension %d of size %I", (lua_Integer)start,
                   (lua_Integer)(start + len - 1), d + 1, (lua_Integer)t->size[d]);
    recur_tensor *v = lrecur_push_view(L, t);
    v->offset += (start - 1) * t->stride[d];
    v->size[d] = len;
    return 1;
}

static int m_select(lua_State *L)
{
    recur_tensor *t = lrecur_check_tensor(L, 1);
    int d = check_dim(L, "select", t, 2);
    int64_t i = check_index(L, "select", t, d, luaL_checkinteger(L, 3));
    recur_tensor *v = lrecur_push_view(L, t);
    v->offset += i * t->stride[d];
    for (int k = d; k < t->ndim - 1; k++) {
        v->size[k] = t->size[k + 1];
        v->stride[k] = t->stride[k + 1];
    }
    v->ndim--;
    return 1;
}

static int m_transpose(lua_State *L)
{
    recur_tensor *t = lrecur_check_tensor(L, 1);
    int a = check_dim(L, "transpose", t, 2), b = check_dim(L, "transpose", t, 3);
    recur_tensor *v = lrecur_push_view(L, t);
    v->size[a] = t->size[b];
    v->size[b] = t->size[a];
    v->stride[a] = t->stride[b];
    v->stride[b] = t->stride[a];
    return 1;
}

static int m_t(lua_State *L)
{
    recur_tensor *t = lrecur_check_tensor(L, 1);
    if (t->ndim != 2) luaL_error(L, "t: expected a 2-d tensor, got %d-d", t->ndim);
    lua_settop(L, 1);
    lua_pushinteger(L, 1);
    lua_pushinteger(L, 2);
    return m_transpose(L);
}

/* Sizes for view/reshape: varargs or a table, one entry may be -1. */
static void view_size(lua_State *L, const char *op, const recur_tensor *t, int64_t *size, int *ndim)
{
    int n = 0, infer = -1;
    int64_t known = 1;
    if (lua_istable(L, 2)) {
        n = (int)lua_rawlen(L, 2);
        if (n > RECUR_MAX_DIMS) luaL_error(L, "%s: more than %d dimensions", op, RECUR_MAX_DIMS);
        for (int d = 0; d < n; d++) {
            lua_rawgeti(L, 2, d + 1);
            size[d] = lua_tointeger(L, -1);
            lua_pop(L, 1);
        }
    } else {
        n = lua_gettop(L) - 1;
        if (n > RECUR_MAX_DIMS) luaL_error(L, "%s: more than %d dimensions", op, RECUR_MAX_DIMS);
        for (int d = 0; d < n; d++) size[d] = luaL_checkinteger(L, d + 2);
    }
    for (int d = 0; d < n; d++) {
        if (size[d] == -1) {
            if (infer >= 0) luaL_error(L, "%s: only one size may be -1", op);
            infer = d;
        } else if (size[d] < 0) {
            luaL_error(L, "%s: invalid size %I", op, (lua_Integer)size[d]);
        } else {
            known *= size[d];
        }
    }
    int64_t numel = recur_numel(t);
    if (infer >= 0) {
        if (known == 0 || numel % known) luaL_error(L, "%s: cannot infer -1 for %I elements", op, (lua_Integer)numel);
        size[infer] = numel / known;
        known = numel;
    }
    if (known != numel) {
        char shape[200];
        luaL_error(L, "%s: shape %s has %I elements, the new shape %I", op,
                   lrecur_shape_str(t, shape, sizeof shape), (lua_Integer)numel, (lua_Integer)known);
    }
    *ndim = n;
}

static int m_view(lua_State *L)
{
    recur_tensor *t = lrecur_check_tensor(L, 1);
    int64_t size[RECUR_MAX_DIMS];
    int ndim;
    view_size(L, "view", t, size, &ndim);
    if (!recur_is_contiguous(t)) luaL_error(L, "view: tensor is not contiguous (use reshape or contiguous)");
    recur_tensor *v = lrecur_push_view(L, t);
    v->ndim = ndim;
    for (int d = 0; d < ndim; d++) v->size[d] = size[d];
    recur_contiguous_strides(ndim, v->size, v->stride);
    return 1;
}

static int m_reshape(lua_State *L)
{
    recur_tensor *t = lrecur_check_tensor(L, 1);
    int64_t size[RECUR_MAX_DIMS];
    int ndim;
    view_size(L, "reshape", t, size, &ndim);
    recur_tensor *v;
    if (recur_is_contiguous(t)) {
        v = lrecur_push_view(L, t);
    } else {
        v = lrecur_push_like(L, "reshape", t);
        recur_copy(v, t);
    }
    v->ndim = ndim;
    for (int d = 0; d < ndim; d++) v->size[d] = size[d];
    recur_contiguous_strides(ndim, v->size, v->stride);
    return 1;
}

static int m_unsqueeze(lua_State *L)
{
    recur_tensor *t = lrecur_check_tensor(L, 1);
    lua_Integer d = luaL_checkinteger(L, 2);
    if (d < 0) d += t->ndim + 2;
    if (d < 1 || d > t->ndim + 1 || t->ndim == RECUR_MAX_DIMS)
        luaL_error(L, "unsqueeze: dimension %d out of range for a %d-d tensor", (int)lua_tointeger(L, 2), t->ndim);
    recur_tensor *v = lrecur_push_view(L, t);
    int at = (int)d - 1;
    for (int k = t->ndim; k > at; k--) {
        v->size[k] = t->size[k - 1];
        v->stride[k] = t->stride[k - 1];
    }
    v->size[at] = 1;
    v->stride[at] = at < t->ndim ? t->size[at] * t->stride[at] : 1;
    v->ndim++;
    return 1;
}

static int m_squeeze(lua_State *L)
{
    recur_tensor *t = lrecur_check_tensor(L, 1);
    int only = lua_isnoneornil(L, 2) ? -1 : check_dim(L, "squeeze", t, 2);
    recur_tensor *v = lrecur_push_view(L, t);
    int n = 0;
    for (int d = 0; d < t->ndim; d++) {
        if (t->size[d] == 1 && (only < 0 || only == d)) continue;
        v->size[n] = t->size[d];
        v->stride[n] = t->stride[d];
        n++;
    }
    v->ndim = n;
    return 1;
}

static int m_contiguous(lua_State *L)
{
    recur_tensor *t = lrecur_check_tensor(L, 1);
    lua_settop(L, 1);
    lrecur_contiguous(L, t);
    return 1;
}

static int m_clone(lua_State *L)
{
    recur_tensor *t = lrecur_check_tensor(L, 1);
    recur_tensor *c = lrecur_push_like(L, "clone", t);
    recur_copy(c, t);
    return 1;
}

static int m_to(lua_State *L)
{
    recur_tensor *t = lrecur_check_tensor(L, 1);
    recur_dtype dtype = lrecur_opt_dtype(L, 2, RECUR_FLOAT32);
    if (lua_isnoneornil(L, 2)) luaL_argerror(L, 2, "dtype name expected");
    if (dtype == t->dtype) {
        lua_settop(L, 1);
        return 1;
    }
    recur_tensor *c = lrecur_push_new(L, "to", dtype, t->ndim, t->size);
    recur_copy(c, t);
    return 1;
}

static int m_copy_(lua_State *L)
{
    recur_tensor *dst = lrecur_check_tensor(L, 1), *src = lrecur_check_tensor(L, 2);
    if (recur_numel(dst) != recur_numel(src)) {
        char a[200], b[200];
        luaL_error(L, "copy_: destination %s and source %s differ in element count",
                   lrecur_shape_str(dst, a, sizeof a), lrecur_shape_str(src, b, sizeof b));
    }
    if (dst->storage == src->storage && !(dst->offset == src->offset && recur_is_contiguous(dst) && recur_is_contiguous(src))) {
        /* overlapping views: go through a temporary so no element is read after it was written */
        recur_tensor *tmp = lrecur_push_like(L, "copy_", src);
        recur_copy(tmp, src);
        src = tmp;
    }
    recur_copy(dst, src);
    lua_settop(L, 1);
    return 1;
}

static int m_fill_(lua_State *L)
{
    recur_tensor *t = lrecur_check_tensor(L, 1);
    fill_value(t, luaL_checknumber(L, 2));
    lua_settop(L, 1);
    return 1;
}

static int m_zero_(lua_State *L)
{
    recur_tensor *t = lrecur_check_tensor(L, 1);
    if (recur_is_contiguous(t))
        memset(recur_data(t), 0, (size_t)recur_numel(t) * recur_dtype_size(t->dtype));
    else
        fill_value(t, 0);
    lua_settop(L, 1);
    return 1;
}

/* True when both tensors view the same storage (used by specs and by modules that
 * must know whether an output aliases an input). */
static int m_shares_storage(lua_State *L)
{
    recur_tensor *a = lrecur_check_tensor(L, 1), *b = lrecur_check_tensor(L, 2);
    lua_pushboolean(L, a->storage == b->storage);
    return 1;
}

/* __gc and __close: drop this view's reference; the storage goes with the last one. */
static int m_release(lua_State *L)
{
    recur_tensor *t = luaL_checkudata(L, 1, RECUR_TENSOR_MT);
    recur_storage_release(t->storage);
    t->storage = NULL;
    return 0;
}

static const luaL_Reg tensor_methods[] = {
    {"size", m_size}, {"stride", m_stride}, {"dim", m_dim}, {"numel", m_numel},
    {"dtype", m_dtype}, {"is_contiguous", m_is_contiguous}, {"get", m_get}, {"set", m_set},
    {"item", m_item}, {"totable", m_totable}, {"narrow", m_narrow}, {"select", m_select},
    {"transpose", m_transpose}, {"t", m_t}, {"view", m_view}, {"reshape", m_reshape},
    {"unsqueeze", m_unsqueeze}, {"squeeze", m_squeeze}, {"contiguous", m_contiguous},
    {"clone", m_clone}, {"to", m_to}, {"copy_", m_copy_}, {"fill_", m_fill_},
    {"zero_", m_zero_}, {"tobytes", l_tobytes}, {"shares_storage", m_shares_storage},
    {"close", m_release}, {NULL, NULL}};

static const luaL_Reg tensor_meta[] = {
    {"__gc", m_release}, {"__close", m_release}, {"__tostring", m_tostring}, {"__len", m_len},
    {NULL, NULL}};

static const luaL_Reg module_functions[] = {
    {"zeros", l_zeros}, {"empty", l_empty}, {"ones", l_ones}, {"full", l_full},
    {"arange", l_arange}, {"tensor", l_tensor}, {"from_bytes", l_from_bytes},
    {"manual_seed", l_manual_seed}, {"rand", l_rand}, {"randn", l_randn},
    {"uniform", l_uniform}, {"random_integer", l_random_integer},
    {"random_uniform", l_random_uniform}, {"get_rng_state", l_get_rng_state},
    {"set_rng_state", l_set_rng_state}, {"set_num_threads", l_set_num_threads},
    {"get_num_threads", l_get_num_threads}, {"blas_info", l_blas_info}, {"set_cache_limit", l_set_cache_limit},
    {"cache_bytes", l_cache_bytes}, {NULL, NULL}};

void lrecur_push_tensor_methods(lua_State *L)
{
    luaL_getmetatable(L, RECUR_TENSOR_MT);
    lua_getfield(L, -1, "__index");
    lua_remove(L, -2);
}

void lrecur_open_tensor(lua_State *L)
{
    if (luaL_newmetatable(L, RECUR_TENSOR_MT)) {
        luaL_setfuncs(L, tensor_meta, 0);
        luaL_newlib(L, tensor_methods);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);

    /* one generator per lua_State, seeded the same way every time */
    lua_getfield(L, LUA_REGISTRYINDEX, RECUR_RNG_KEY);
    if (lua_isnil(L, -1)) {
        recur_rng *g = lua_newuserdatauv(L, sizeof *g, 0);
        recur_rng_seed(g, 0);
        lua_setfield(L, LUA_REGISTRYINDEX, RECUR_RNG_KEY);
    }
    lua_pop(L, 1);

    /* lua.c starts the collector in generational mode. There a tensor that outlives
     * two minor collections (any output a module keeps until its next forward: the
     * debt charged above runs a minor collection at nearly every large allocation)
     * turns old, and old objects go only in a major collection, which waits for the
     * Lua heap itself to double: tensors barely grow it, so their storage piled up
     * (training a 3-layer 512 LSTM language model, resident memory grew by 16 MB every
     * iteration). The incremental collector frees a garbage tensor within a cycle, and
     * the charged debt keeps cycles in step with tensor allocation. This changes the
     * mode of the whole Lua state; its parameters stay as they were. */
    lua_gc(L, LUA_GCINC, 0, 0, 0);

    luaL_setfuncs(L, module_functions, 0);
}
