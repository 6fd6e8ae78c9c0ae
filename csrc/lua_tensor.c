/* Lua bindings for tensors: the userdata, creation, views, element access and
 * printing. Operations live in lua_tensor_ops.c, the generator in lua_random.c, the
 * shared argument checks in lua_util.c. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lua_recur.h"

/* ---- creation ------------------------------------------------------------ */

static recur_tensor *new_from_args(lua_State *L, const char *op, int *next)
{
    int64_t size[RECUR_MAX_DIMS];
    int ndim;
    int arg = lrecur_check_size(L, op, 1, size, &ndim);
    recur_dtype dtype = lrecur_opt_dtype(L, arg, RECUR_FLOAT32);
    if (next) *next = arg + 1;
    return lrecur_push_new(L, op, dtype, ndim, size);
}

/* Sets every element to v (iv for an int64 tensor, taken exactly). */
static void fill_value(recur_tensor *t, double v, int64_t iv)
{
    int64_t n = recur_numel(t);
    if (recur_is_contiguous(t)) {
        switch (t->dtype) {
        case RECUR_FLOAT32: { float *p = recur_f32(t); for (int64_t i = 0; i < n; i++) p[i] = (float)v; break; }
        case RECUR_FLOAT64: { double *p = recur_f64(t); for (int64_t i = 0; i < n; i++) p[i] = v; break; }
        case RECUR_INT64: { int64_t *p = recur_i64(t); for (int64_t i = 0; i < n; i++) p[i] = iv; break; }
        }
        return;
    }
    int64_t idx[RECUR_MAX_DIMS] = {0};
    for (int64_t i = 0; i < n; i++) {
        int64_t off = t->offset;
        for (int d = 0; d < t->ndim; d++) off += idx[d] * t->stride[d];
        switch (t->dtype) {
        case RECUR_FLOAT32: ((float *)t->storage->data)[off] = (float)v; break;
        case RECUR_FLOAT64: ((double *)t->storage->data)[off] = v; break;
        case RECUR_INT64: ((int64_t *)t->storage->data)[off] = iv; break;
        }
        for (int d = t->ndim - 1; d >= 0 && ++idx[d] == t->size[d]; d--) idx[d] = 0;
    }
}

/* fill_value with the number at arg, which an int64 tensor takes only when it is an
 * integer (no NaN, no fraction, in range). */
static void fill_arg(lua_State *L, const char *op, recur_tensor *t, int arg)
{
    if (t->dtype == RECUR_INT64) fill_value(t, 0, lrecur_check_int64(L, op, arg));
    else fill_value(t, luaL_checknumber(L, arg), 0);
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
    fill_value(t, 1, 1);
    return 1;
}

static int l_full(lua_State *L)
{
    int64_t size[RECUR_MAX_DIMS];
    int ndim;
    luaL_checktype(L, 1, LUA_TTABLE);
    int arg = lrecur_check_size(L, "full", 1, size, &ndim);
    luaL_checknumber(L, arg);
    recur_tensor *t = lrecur_push_new(L, "full", lrecur_opt_dtype(L, arg + 1, RECUR_FLOAT32), ndim, size);
    fill_arg(L, "full", t, arg);
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
    if (!isfinite(a) || !isfinite(b) || !isfinite(step))
        luaL_error(L, "arange: start, end and step must be finite numbers");
    double count = ceil((b - a) / step); /* may be inf when b - a overflows */
    if (!(count <= (double)RECUR_MAX_NUMEL))
        luaL_error(L, "arange: too many elements (%f)", count);
    int64_t n = count > 0 ? (int64_t)count : 0;
    recur_dtype dtype = lrecur_opt_dtype(L, darg, RECUR_FLOAT32);
    recur_tensor *t = lrecur_push_new(L, "arange", dtype, 1, &n);
    if (dtype == RECUR_INT64) {
        /* every value checked: a float start or step may not land on integers */
        for (int64_t i = 0; i < n; i++)
            recur_i64(t)[i] = lrecur_number_to_int64(L, "arange", a + (double)i * step);
    } else {
        for (int64_t i = 0; i < n; i++) recur_set_flat(t, i, a + (double)i * step);
    }
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
    lrecur_check_size(L, "from_bytes", 3, size, &ndim);
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

/* ---- shape and access ------------------------------------------------------ */

/* The shape methods answer for a closed tensor too: they read no element, and a
 * module's checks of its inputs then pass on to the operation that would read one,
 * whose error names it ("bad argument #2 to 'embedding_forward' (tensor was closed)"). */
static recur_tensor *check_shape_of(lua_State *L)
{
    return luaL_checkudata(L, 1, RECUR_TENSOR_MT);
}

static int m_size(lua_State *L)
{
    recur_tensor *t = check_shape_of(L);
    if (!lua_isnoneornil(L, 2)) {
        lua_pushinteger(L, t->size[lrecur_check_dim(L, "size", t, 2)]);
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
    recur_tensor *t = check_shape_of(L);
    lua_createtable(L, t->ndim, 0);
    for (int d = 0; d < t->ndim; d++) {
        lua_pushinteger(L, t->stride[d]);
        lua_rawseti(L, -2, d + 1);
    }
    return 1;
}

static int m_len(lua_State *L)
{
    recur_tensor *t = check_shape_of(L);
    lua_pushinteger(L, t->ndim ? t->size[0] : 0);
    return 1;
}

static int m_dim(lua_State *L)
{
    lua_pushinteger(L, check_shape_of(L)->ndim);
    return 1;
}

static int m_numel(lua_State *L)
{
    lua_pushinteger(L, recur_numel(check_shape_of(L)));
    return 1;
}

static int m_dtype(lua_State *L)
{
    lua_pushstring(L, recur_dtype_name(check_shape_of(L)->dtype));
    return 1;
}

static int m_is_contiguous(lua_State *L)
{
    lua_pushboolean(L, recur_is_contiguous(check_shape_of(L)));
    return 1;
}

static int m_is_closed(lua_State *L)
{
    lua_pushboolean(L, check_shape_of(L)->storage == NULL);
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
        off += lrecur_check_index(L, op, t, d, luaL_checkinteger(L, arg + d)) * t->stride[d];
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
    case RECUR_INT64: ((int64_t *)p)[off] = lrecur_check_int64(L, "set", varg); break;
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
    lua_createtable(L, (int)t->size[d], 0); /* sizes checked against INT_MAX by totable */
    for (int64_t i = 0; i < t->size[d]; i++) {
        push_nested(L, t, d + 1, off + i * t->stride[d]);
        lua_rawseti(L, -2, i + 1);
    }
}

static int m_totable(lua_State *L)
{
    recur_tensor *t = lrecur_check_tensor(L, 1);
    /* Tables built: one per index of every prefix of dims, which for an empty tensor
     * can be huge though it holds nothing (a (2^40, 0) tensor: 2^40 empty tables). */
    int64_t tables = 0, prefix = 1;
    for (int d = 0; d < t->ndim; d++) {
        if (!recur_size_add(tables, prefix, &tables) ||
            !recur_size_mul(prefix, t->size[d], &prefix) || tables > INT_MAX ||
            prefix > INT_MAX) {
            char shape[200];
            luaL_error(L, "totable: a %s tensor is too large for nested tables",
                       lrecur_shape_str(t, shape, sizeof shape));
        }
    }
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
    /* rows shown at each end of a long dimension: fewer with many dims, so that the
     * text stays small (at most 7^3 or 3^8 values) */
    const int64_t edge = t->ndim <= 3 ? 3 : 1;
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
    int d = lrecur_check_dim(L, "narrow", t, 2);
    lua_Integer start = luaL_checkinteger(L, 3), len = luaL_checkinteger(L, 4);
    if (len < 0) luaL_error(L, "narrow: length %I is negative", (lua_Integer)len);
    /* start - 1 <= size is checked first, so size - (start - 1) cannot overflow */
    if (start < 1 || start - 1 > t->size[d] || len > t->size[d] - (start - 1)) {
        int64_t last;
        if (!recur_size_add(start, len - 1, &last)) last = LUA_MAXINTEGER;
        luaL_error(L, "narrow: range [%I, %I] outside dimension %d of size %I", (lua_Integer)start,
                   (lua_Integer)last, d + 1, (lua_Integer)t->size[d]);
    }
    recur_tensor *v = lrecur_push_view(L, t);
    v->offset += (start - 1) * t->stride[d];
    v->size[d] = len;
    return 1;
}

static int m_select(lua_State *L)
{
    recur_tensor *t = lrecur_check_tensor(L, 1);
    int d = lrecur_check_dim(L, "select", t, 2);
    int64_t i = lrecur_check_index(L, "select", t, d, luaL_checkinteger(L, 3));
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
    int a = lrecur_check_dim(L, "transpose", t, 2), b = lrecur_check_dim(L, "transpose", t, 3);
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
    int table = lua_istable(L, 2);
    if (table) {
        lua_Unsigned len = lua_rawlen(L, 2);
        if (len > RECUR_MAX_DIMS) luaL_error(L, "%s: more than %d dimensions", op, RECUR_MAX_DIMS);
        n = (int)len;
    } else {
        n = lua_gettop(L) - 1;
        if (n > RECUR_MAX_DIMS) luaL_error(L, "%s: more than %d dimensions", op, RECUR_MAX_DIMS);
    }
    for (int d = 0; d < n; d++) {
        if (table) lua_rawgeti(L, 2, d + 1);
        int isint;
        lua_Integer v = lua_tointegerx(L, table ? -1 : d + 2, &isint);
        if (!isint || v < -1)
            luaL_error(L, "%s: size %d must be a non-negative integer or -1, got %s", op, d + 1,
                       luaL_tolstring(L, table ? -1 : d + 2, NULL));
        if (table) lua_pop(L, 1);
        size[d] = v;
        if (v == -1) {
            if (infer >= 0) luaL_error(L, "%s: only one size may be -1", op);
            infer = d;
        }
    }
    int64_t numel = recur_numel(t);
    if (infer >= 0) {
        size[infer] = 1;
        int64_t known = lrecur_check_numel(L, op, n, size);
        if (known == 0 || numel % known)
            luaL_error(L, "%s: cannot infer -1 for %I elements", op, (lua_Integer)numel);
        size[infer] = numel / known;
    }
    int64_t known = lrecur_check_numel(L, op, n, size);
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
        luaL_error(L, "unsqueeze: dim %I out of range for a %d-D tensor", lua_tointeger(L, 2), t->ndim);
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
    int only = lua_isnoneornil(L, 2) ? -1 : lrecur_check_dim(L, "squeeze", t, 2);
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
    if (recur_copy(c, t))
        luaL_error(L, "to: cannot convert a NaN, infinite or out-of-range value to int64");
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
    if (recur_copy(dst, src))
        luaL_error(L, "copy_: cannot convert a NaN, infinite or out-of-range value to int64 "
                   "(those elements were saturated)");
    lua_settop(L, 1);
    return 1;
}

static int m_fill_(lua_State *L)
{
    recur_tensor *t = lrecur_check_tensor(L, 1);
    fill_arg(L, "fill_", t, 2);
    lua_settop(L, 1);
    return 1;
}

static int m_zero_(lua_State *L)
{
    recur_tensor *t = lrecur_check_tensor(L, 1);
    if (recur_is_contiguous(t))
        memset(recur_data(t), 0, (size_t)recur_numel(t) * recur_dtype_size(t->dtype));
    else
        fill_value(t, 0, 0);
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

/* __gc: drop this view's reference; the storage goes with the last one. */
static int m_release(lua_State *L)
{
    recur_tensor *t = luaL_checkudata(L, 1, RECUR_TENSOR_MT);
    recur_storage_release(t->storage);
    t->storage = NULL;
    return 0;
}

/* close and __close: the same, on demand. A finalizer (another object's __gc) can run
 * inside any binding that allocates, while the binding holds pointers into its
 * arguments' blocks; a close there would free a block under it. Lua 5.4.4 and later
 * run finalizers with the collector stopped, where lua_gc answers -1: that is how a
 * close from a finalizer is told apart and refused (Lua turns the error into a
 * warning), and the tensor is freed when it is collected. */
static int m_close(lua_State *L)
{
    recur_tensor *t = luaL_checkudata(L, 1, RECUR_TENSOR_MT);
    if (t->storage && lua_gc(L, LUA_GCISRUNNING) < 0)
        luaL_error(L, "close: a tensor cannot be closed from a finalizer (__gc); it is freed "
                      "when it is collected");
    return m_release(L);
}

static const luaL_Reg tensor_methods[] = {
    {"size", m_size}, {"stride", m_stride}, {"dim", m_dim}, {"numel", m_numel},
    {"dtype", m_dtype}, {"is_contiguous", m_is_contiguous}, {"is_closed", m_is_closed}, {"get", m_get}, {"set", m_set},
    {"item", m_item}, {"totable", m_totable}, {"narrow", m_narrow}, {"select", m_select},
    {"transpose", m_transpose}, {"t", m_t}, {"view", m_view}, {"reshape", m_reshape},
    {"unsqueeze", m_unsqueeze}, {"squeeze", m_squeeze}, {"contiguous", m_contiguous},
    {"clone", m_clone}, {"to", m_to}, {"copy_", m_copy_}, {"fill_", m_fill_},
    {"zero_", m_zero_}, {"tobytes", l_tobytes}, {"shares_storage", m_shares_storage},
    {"close", m_close}, {NULL, NULL}};

static const luaL_Reg tensor_meta[] = {
    {"__gc", m_release}, {"__close", m_close}, {"__tostring", m_tostring}, {"__len", m_len},
    {NULL, NULL}};

static const luaL_Reg module_functions[] = {
    {"zeros", l_zeros}, {"empty", l_empty}, {"ones", l_ones}, {"full", l_full},
    {"arange", l_arange}, {"tensor", l_tensor}, {"from_bytes", l_from_bytes},
    {NULL, NULL}};

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

    luaL_setfuncs(L, module_functions, 0);
}
