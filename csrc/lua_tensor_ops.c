/* Lua bindings for the tensor operations (csrc/tensor_ops.c): elementwise ops and
 * their metamethods, reductions, matmul/addmm, softmax, allclose. */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "lua_recur.h"
#include "recur/tensor_ops.h"

/* One element of any dtype: a number operand, alpha, a clamp bound. */
typedef union {
    float f32;
    double f64;
    int64_t i64;
} elem;

static void *elem_ptr(elem *e, recur_dtype dtype)
{
    return dtype == RECUR_FLOAT32 ? (void *)&e->f32
         : dtype == RECUR_FLOAT64 ? (void *)&e->f64 : (void *)&e->i64;
}

/* The number at arg as an element of dtype; an int64 tensor takes integral numbers only. */
static elem check_elem(lua_State *L, int arg, const char *op, recur_dtype dtype)
{
    elem e;
    lua_Number x = luaL_checknumber(L, arg);
    switch (dtype) {
    case RECUR_FLOAT32: e.f32 = (float)x; break;
    case RECUR_FLOAT64: e.f64 = x; break;
    case RECUR_INT64: e.i64 = lrecur_check_int64(L, op, arg); break;
    }
    return e;
}

static void check_float(lua_State *L, const char *op, const recur_tensor *t)
{
    if (t->dtype == RECUR_INT64)
        luaL_error(L, "%s: int64 tensors are not supported (float32/float64 only; convert with "
                   ":to(\"float32\") or :to(\"float64\"))", op);
}

/* An optional boolean at arg (nil: false); anything else is an error rather than a
 * truth value, so that a stray number is not silently taken as true. */
static int opt_bool(lua_State *L, int arg, const char *op, const char *what)
{
    if (lua_isnoneornil(L, arg)) return 0;
    if (!lua_isboolean(L, arg))
        luaL_error(L, "%s: %s must be a boolean, got %s", op, what, luaL_typename(L, arg));
    return lua_toboolean(L, arg);
}

/* ---- elementwise binary -------------------------------------------------------------- */

/* a op b with b a tensor or a number; for the metamethods (`metamethod`) a may be the
 * number instead. In place, the result is written to the tensor at 1, whose shape the
 * broadcast must equal. alpha_arg: the stack index of alpha, 0 when the op has none. */
static int binary(lua_State *L, const char *op, recur_binop bop, int inplace, int alpha_arg,
                  int metamethod)
{
    recur_tensor *ta = NULL, *tb = NULL;
    if (!metamethod || lua_type(L, 1) != LUA_TNUMBER) ta = lrecur_check_tensor(L, 1);
    if (lua_type(L, 2) != LUA_TNUMBER || !ta) tb = lrecur_check_tensor(L, 2);
    if (ta && tb) lrecur_check_same_dtype(L, op, ta, tb);
    const recur_dtype dtype = ta ? ta->dtype : tb->dtype;
    if (bop == RECUR_OP_DIV && dtype == RECUR_INT64)
        luaL_error(L, "%s: int64 tensors are not supported (integer division is not offered; "
                   "convert with :to(\"float32\") or :to(\"float64\"))", op);

    elem sa = {0}, sb = {0}, alpha;
    if (!ta) sa = check_elem(L, 1, op, dtype);
    if (!tb) sb = check_elem(L, 2, op, dtype);
    if (alpha_arg && !lua_isnoneornil(L, alpha_arg)) {
        alpha = check_elem(L, alpha_arg, op, dtype);
    } else {
        alpha.i64 = 0;
        if (dtype == RECUR_FLOAT32) alpha.f32 = 1; else if (dtype == RECUR_FLOAT64) alpha.f64 = 1;
        else alpha.i64 = 1;
    }

    int ndim;
    int64_t size[RECUR_MAX_DIMS];
    if (!recur_broadcast_shape(ta ? ta->ndim : 0, ta ? ta->size : NULL, tb ? tb->ndim : 0,
                               tb ? tb->size : NULL, &ndim, size)) {
        char sa_buf[128], sb_buf[128];
        luaL_error(L, "%s: shapes %s and %s do not broadcast", op,
                   lrecur_shape_str(ta, sa_buf, sizeof sa_buf),
                   lrecur_shape_str(tb, sb_buf, sizeof sb_buf));
    }

    recur_tensor *out;
    if (inplace) {
        int same = ndim == ta->ndim;
        for (int d = 0; same && d < ndim; d++) same = size[d] == ta->size[d];
        if (!same) {
            char sa_buf[128], sb_buf[128];
            luaL_error(L, "%s: %s cannot be broadcast into the destination %s", op,
                       lrecur_shape_str(tb, sb_buf, sizeof sb_buf),
                       lrecur_shape_str(ta, sa_buf, sizeof sa_buf));
        }
        out = ta;
        // b read while the destination is written: copy b unless it is the very same view
        if (tb && tb->storage == ta->storage) {
            int identical = tb->offset == ta->offset && tb->ndim == ta->ndim;
            for (int d = 0; identical && d < ta->ndim; d++)
                identical = tb->size[d] == ta->size[d] && tb->stride[d] == ta->stride[d];
            if (!identical) {
                recur_tensor *copy = lrecur_push_like(L, op, tb);
                recur_copy(copy, tb);
                tb = copy;
            }
        }
    } else {
        out = lrecur_push_new(L, op, dtype, ndim, size);
    }

    int64_t stride_a[RECUR_MAX_DIMS] = {0}, stride_b[RECUR_MAX_DIMS] = {0};
    if (ta) recur_broadcast_strides(ta->ndim, ta->size, ta->stride, ndim, size, stride_a);
    if (tb) recur_broadcast_strides(tb->ndim, tb->size, tb->stride, ndim, size, stride_b);
    recur_binary(bop, dtype, elem_ptr(&alpha, dtype), ndim, size, recur_data(out), out->stride,
                 ta ? recur_data(ta) : elem_ptr(&sa, dtype), stride_a,
                 tb ? recur_data(tb) : elem_ptr(&sb, dtype), stride_b);
    if (inplace) lua_pushvalue(L, 1);
    return 1;
}

static int m_add(lua_State *L) { return binary(L, "add", RECUR_OP_ADD, 0, 3, 0); }
static int m_sub(lua_State *L) { return binary(L, "sub", RECUR_OP_SUB, 0, 3, 0); }
static int m_mul(lua_State *L) { return binary(L, "mul", RECUR_OP_MUL, 0, 0, 0); }
static int m_div(lua_State *L) { return binary(L, "div", RECUR_OP_DIV, 0, 0, 0); }
static int m_add_(lua_State *L) { return binary(L, "add_", RECUR_OP_ADD, 1, 3, 0); }
static int m_sub_(lua_State *L) { return binary(L, "sub_", RECUR_OP_SUB, 1, 3, 0); }
static int m_mul_(lua_State *L) { return binary(L, "mul_", RECUR_OP_MUL, 1, 0, 0); }
static int m_div_(lua_State *L) { return binary(L, "div_", RECUR_OP_DIV, 1, 0, 0); }

/* Metamethods get exactly two operands (a number may be either one). */
#define METAMETHOD(NAME, OP, BOP)                                                    \
    static int mm_##NAME(lua_State *L)                                              \
    {                                                                               \
        lua_settop(L, 2);                                                           \
        return binary(L, OP, BOP, 0, 0, 1);                                         \
    }

METAMETHOD(add, "add", RECUR_OP_ADD)
METAMETHOD(sub, "sub", RECUR_OP_SUB)
METAMETHOD(mul, "mul", RECUR_OP_MUL)
METAMETHOD(div, "div", RECUR_OP_DIV)

/* ---- elementwise unary --------------------------------------------------------------- */

static int unary(lua_State *L, const char *op, recur_unop uop, int inplace)
{
    recur_tensor *t = lrecur_check_tensor(L, 1);
    if (t->dtype == RECUR_INT64 && uop != RECUR_OP_ABS && uop != RECUR_OP_NEG &&
        uop != RECUR_OP_CLAMP)
        check_float(L, op, t);

    elem lo = {0}, hi = {0};
    if (uop == RECUR_OP_CLAMP) {
        // a nil bound leaves that side open
        int has_lo = !lua_isnoneornil(L, 2), has_hi = !lua_isnoneornil(L, 3);
        if (!has_lo && !has_hi) luaL_error(L, "%s: expected a lower and/or an upper bound", op);
        if (has_lo) lo = check_elem(L, 2, op, t->dtype);
        if (has_hi) hi = check_elem(L, 3, op, t->dtype);
        if (has_lo && has_hi && lua_tonumber(L, 2) > lua_tonumber(L, 3))
            luaL_error(L, "%s: lower bound %s is above the upper bound %s", op,
                       lua_tostring(L, 2), lua_tostring(L, 3));
        switch (t->dtype) {
        case RECUR_FLOAT32:
            if (!has_lo) lo.f32 = -INFINITY;
            if (!has_hi) hi.f32 = INFINITY;
            break;
        case RECUR_FLOAT64:
            if (!has_lo) lo.f64 = -INFINITY;
            if (!has_hi) hi.f64 = INFINITY;
            break;
        case RECUR_INT64:
            if (!has_lo) lo.i64 = INT64_MIN;
            if (!has_hi) hi.i64 = INT64_MAX;
            break;
        }
    }

    recur_tensor *out = inplace ? t : lrecur_push_like(L, op, t);
    recur_unary(uop, t->dtype, elem_ptr(&lo, t->dtype), elem_ptr(&hi, t->dtype), t->ndim,
                t->size, recur_data(out), out->stride, recur_data(t), t->stride);
    if (inplace) lua_pushvalue(L, 1);
    return 1;
}

#define UNARY_BINDINGS(NAME, OP)                                                     \
    static int m_##NAME(lua_State *L) { return unary(L, #NAME, OP, 0); }            \
    static int m_##NAME##_(lua_State *L) { return unary(L, #NAME "_", OP, 1); }

UNARY_BINDINGS(tanh, RECUR_OP_TANH)
UNARY_BINDINGS(sigmoid, RECUR_OP_SIGMOID)
UNARY_BINDINGS(relu, RECUR_OP_RELU)
UNARY_BINDINGS(exp, RECUR_OP_EXP)
UNARY_BINDINGS(log, RECUR_OP_LOG)
UNARY_BINDINGS(sqrt, RECUR_OP_SQRT)
UNARY_BINDINGS(abs, RECUR_OP_ABS)
UNARY_BINDINGS(neg, RECUR_OP_NEG)
UNARY_BINDINGS(clamp, RECUR_OP_CLAMP)

static int mm_unm(lua_State *L) { lua_settop(L, 1); return unary(L, "neg", RECUR_OP_NEG, 0); }

/* ---- reductions ---------------------------------------------------------------------- */

/* The tensor at 1 made contiguous and seen as (O,K,I) around dim d, and the shape of
 * the result (dim d dropped, or kept as 1). */
typedef struct {
    recur_tensor *x;
    int d;
    int64_t O, K, I;
    int ndim;
    int64_t size[RECUR_MAX_DIMS];
} dim_reduction;

static dim_reduction check_dim_reduction(lua_State *L, const char *op, recur_tensor *t)
{
    dim_reduction r;
    r.d = lrecur_check_dim(L, op, t, 2);
    int keepdim = opt_bool(L, 3, op, "keepdim");
    r.x = lrecur_contiguous(L, t);
    r.O = 1;
    r.I = 1;
    for (int i = 0; i < r.d; i++) r.O *= t->size[i];
    for (int i = r.d + 1; i < t->ndim; i++) r.I *= t->size[i];
    r.K = t->size[r.d];
    r.ndim = 0;
    for (int i = 0; i < t->ndim; i++) {
        if (i != r.d) r.size[r.ndim++] = t->size[i];
        else if (keepdim) r.size[r.ndim++] = 1;
    }
    return r;
}

static int sum_or_mean(lua_State *L, const char *op, int mean)
{
    recur_tensor *t = lrecur_check_tensor(L, 1);
    if (lua_isnoneornil(L, 2)) {
        int64_t n = recur_numel(t);
        if (t->dtype == RECUR_INT64 && !mean) lua_pushinteger(L, (lua_Integer)recur_sum_i64(t));
        else lua_pushnumber(L, mean ? recur_sum(t) / (double)n : recur_sum(t));
        return 1;
    }
    if (mean) check_float(L, op, t);
    dim_reduction r = check_dim_reduction(L, op, t);
    recur_tensor *out = lrecur_push_new(L, op, t->dtype, r.ndim, r.size);
    recur_sum_dim(t->dtype, recur_data(r.x), recur_data(out), r.O, r.K, r.I, mean);
    return 1;
}

static int m_sum(lua_State *L) { return sum_or_mean(L, "sum", 0); }
static int m_mean(lua_State *L) { return sum_or_mean(L, "mean", 1); }

static void push_flat(lua_State *L, const recur_tensor *t, int64_t i)
{
    if (t->dtype == RECUR_INT64) lua_pushinteger(L, (lua_Integer)recur_get_flat_i64(t, i));
    else lua_pushnumber(L, recur_get_flat(t, i));
}

/* max/min: values (and indices along d); argmax/argmin: indices only. */
static int extremum(lua_State *L, const char *op, int is_min, int want_values)
{
    recur_tensor *t = lrecur_check_tensor(L, 1);
    if (lua_isnoneornil(L, 2)) {
        if (lua_gettop(L) >= 3 && !lua_isnil(L, 3))
            luaL_error(L, "%s: keepdim needs a dim", op);
        int64_t i = recur_argext(t, is_min);
        if (i < 0) luaL_error(L, "%s: empty tensor", op);
        if (want_values) push_flat(L, t, i);
        else lua_pushinteger(L, (lua_Integer)(i + 1));
        return 1;
    }
    dim_reduction r = check_dim_reduction(L, op, t);
    if (r.K == 0) luaL_error(L, "%s: dim %d is empty", op, r.d + 1);
    recur_tensor *values = want_values ? lrecur_push_new(L, op, t->dtype, r.ndim, r.size) : NULL;
    recur_tensor *indices = lrecur_push_new(L, op, RECUR_INT64, r.ndim, r.size);
    recur_max_dim(t->dtype, recur_data(r.x), values ? recur_data(values) : NULL,
                  recur_i64(indices), r.O, r.K, r.I, is_min);
    return want_values ? 2 : 1;
}

static int m_max(lua_State *L) { return extremum(L, "max", 0, 1); }
static int m_min(lua_State *L) { return extremum(L, "min", 1, 1); }
static int m_argmax(lua_State *L) { return extremum(L, "argmax", 0, 0); }
static int m_argmin(lua_State *L) { return extremum(L, "argmin", 1, 0); }

static int m_norm(lua_State *L)
{
    recur_tensor *t = lrecur_check_tensor(L, 1);
    if (!lua_isnoneornil(L, 2))
        luaL_error(L, "norm: only the 2-norm of the whole tensor is offered (no arguments)");
    lua_pushnumber(L, recur_norm(t));
    return 1;
}

static int l_allclose(lua_State *L)
{
    recur_tensor *a = lrecur_check_tensor(L, 1), *b = lrecur_check_tensor(L, 2);
    double rtol = luaL_optnumber(L, 3, 1e-5), atol = luaL_optnumber(L, 4, 1e-8);
    int ndim;
    int64_t size[RECUR_MAX_DIMS];
    /* the broadcast shape is walked without being allocated: check its size */
    if (recur_broadcast_shape(a->ndim, a->size, b->ndim, b->size, &ndim, size))
        lrecur_check_numel(L, "allclose", ndim, size);
    if (!(rtol >= 0) || !(atol >= 0))
        luaL_error(L, "allclose: rtol and atol must be >= 0, got %f and %f", rtol, atol);
    int close = recur_allclose(a, b, rtol, atol);
    if (close < 0) {
        char sa[128], sb[128];
        luaL_error(L, "allclose: shapes %s and %s do not broadcast",
                   lrecur_shape_str(a, sa, sizeof sa), lrecur_shape_str(b, sb, sizeof sb));
    }
    lua_pushboolean(L, close);
    return 1;
}

/* ---- softmax ------------------------------------------------------------------------- */

static int softmax(lua_State *L, const char *op, int log)
{
    recur_tensor *t = lrecur_check_tensor(L, 1);
    check_float(L, op, t);
    if (t->ndim == 0) luaL_error(L, "%s: expected a tensor with at least 1 dim, got a 0-d one", op);
    if (lua_isnoneornil(L, 2)) { // along the last dim
        lua_settop(L, 1);
        lua_pushinteger(L, t->ndim);
    }
    lua_settop(L, 2);
    dim_reduction r = check_dim_reduction(L, op, t);
    recur_tensor *out = lrecur_push_like(L, op, t);
    if (recur_numel(t) == 0) return 1; /* the kernel would loop over O*I rows of nothing */
    recur_softmax(t->dtype, recur_data(r.x), recur_data(out), r.O, r.K, r.I, log);
    return 1;
}

static int m_softmax(lua_State *L) { return softmax(L, "softmax", 0); }
static int m_log_softmax(lua_State *L) { return softmax(L, "log_softmax", 1); }

/* ---- matmul / addmm ------------------------------------------------------------------ */

static void check_blas_size(lua_State *L, const char *op, int64_t n)
{
    if (n > INT_MAX) luaL_error(L, "%s: a size or stride of %I is too large for BLAS", op,
                                (lua_Integer)n);
}

/* How BLAS reads the matrices of t (its last two dims); pushes a contiguous copy of t
 * and replaces *t when its layout cannot be read in place, or when it shares storage
 * with the output c (BLAS does not allow its inputs to alias its output). */
static void blas_operand(lua_State *L, const char *op, recur_tensor **t, const recur_tensor *c,
                         int *trans, int64_t *ld)
{
    recur_tensor *x = *t;
    int nd = x->ndim;
    if (x->storage == c->storage ||
        !recur_blas_layout(x->size[nd - 2], x->size[nd - 1], x->stride[nd - 2],
                           x->stride[nd - 1], trans, ld)) {
        recur_tensor *copy = lrecur_push_like(L, op, x);
        recur_copy(copy, x);
        x = *t = copy;
        recur_blas_layout(x->size[nd - 2], x->size[nd - 1], x->stride[nd - 2], x->stride[nd - 1],
                          trans, ld);
    }
    check_blas_size(L, op, *ld);
}

static void shape_op_str(const recur_tensor *t, int trans, char *buf, size_t len)
{
    lrecur_shape_str(t, buf, len);
    if (trans) {
        size_t n = strlen(buf);
        if (n + 3 <= len) memcpy(buf + n, "^T", 3);
    }
}

/* Checks a @ b (2-D with 2-D, or 3-D with 3-D batches) and returns (batch, M, N, K). */
static void check_matmul(lua_State *L, const char *op, const recur_tensor *a,
                         const recur_tensor *b, int ta, int tb, int64_t *batch, int64_t *M,
                         int64_t *N, int64_t *K)
{
    lrecur_check_same_dtype(L, op, a, b);
    check_float(L, op, a);
    char sa[128], sb[128];
    shape_op_str(a, ta, sa, sizeof sa);
    shape_op_str(b, tb, sb, sizeof sb);
    if (a->ndim != b->ndim || (a->ndim != 2 && a->ndim != 3))
        luaL_error(L, "%s: expected 2-D @ 2-D or 3-D @ 3-D (batched), got %s @ %s", op, sa, sb);
    int nd = a->ndim;
    *M = ta ? a->size[nd - 1] : a->size[nd - 2];
    int64_t ka = ta ? a->size[nd - 2] : a->size[nd - 1];
    int64_t kb = tb ? b->size[nd - 1] : b->size[nd - 2];
    *N = tb ? b->size[nd - 2] : b->size[nd - 1];
    *batch = nd == 3 ? a->size[0] : 1;
    if (ka != kb || (nd == 3 && a->size[0] != b->size[0]))
        luaL_error(L, "%s: size mismatch, %s @ %s", op, sa, sb);
    *K = ka;
    check_blas_size(L, op, *M);
    check_blas_size(L, op, *N);
    check_blas_size(L, op, *K);
}

/* c = beta*c + alpha*op(a) op(b) for every matrix of the batch; c is (batch,M,N) or (M,N). */
static void gemm(lua_State *L, const char *op, recur_tensor *c, recur_tensor *a, recur_tensor *b,
                 int ta, int tb, double alpha, double beta, int64_t M, int64_t N, int64_t K,
                 const recur_tensor *bias)
{
    int nd = c->ndim;
    int64_t batch = nd == 3 ? c->size[0] : 1;
    if (batch == 0 || M == 0 || N == 0) return;
    int la = 0, lb = 0;
    int64_t lda = 1, ldb = 1;
    if (K > 0) { // an empty product (K = 0) reads neither a nor b
        blas_operand(L, op, &a, c, &la, &lda);
        blas_operand(L, op, &b, c, &lb, &ldb);
    }
    // a transposed view read as a flag: op(a) = a^T is a^T read "not transposed", and so on
    ta ^= la;
    tb ^= lb;
    int64_t sa = nd == 3 ? a->stride[0] : 0, sb = nd == 3 ? b->stride[0] : 0;

    int lc;
    int64_t ldc;
    recur_tensor *target = c;
    if (!recur_blas_layout(M, N, c->stride[nd - 2], c->stride[nd - 1], &lc, &ldc) || (bias && lc)) {
        // c cannot be written in place (or, with a bias row, is a transposed view): work in
        // a contiguous copy, copied back below
        target = lrecur_push_like(L, op, c);
        if (beta != 0) recur_copy(target, c);
        recur_blas_layout(M, N, target->stride[nd - 2], target->stride[nd - 1], &lc, &ldc);
    }
    check_blas_size(L, op, ldc);
    int64_t sc = nd == 3 ? target->stride[0] : 0;
    if (!lc)
        recur_gemm_bias(c->dtype, batch, M, N, K, alpha, recur_data(a), sa, ta, lda, recur_data(b), sb,
                        tb, ldb, beta, recur_data(target), sc, ldc, bias ? recur_data(bias) : NULL);
    else // c is a transposed view: write c^T = op(b)^T op(a)^T, which BLAS sees row-major
        recur_gemm(c->dtype, batch, N, M, K, alpha, recur_data(b), sb, !tb, ldb, recur_data(a),
                   sa, !ta, lda, beta, recur_data(target), sc, ldc);
    if (target != c) recur_copy(c, target);
}

static int l_matmul(lua_State *L)
{
    recur_tensor *a = lrecur_check_tensor(L, 1), *b = lrecur_check_tensor(L, 2);
    int ta = opt_bool(L, 3, "matmul", "trans_a"), tb = opt_bool(L, 4, "matmul", "trans_b");
    int64_t batch, M, N, K;
    check_matmul(L, "matmul", a, b, ta, tb, &batch, &M, &N, &K);
    int64_t size[3] = {batch, M, N};
    int nd = a->ndim;
    recur_tensor *c = lrecur_push_new(L, "matmul", a->dtype, nd, nd == 3 ? size : size + 1);
    int c_idx = lua_gettop(L);
    gemm(L, "matmul", c, a, b, ta, tb, 1.0, 0.0, M, N, K, NULL);
    lua_pushvalue(L, c_idx);
    return 1;
}

static int l_addmm(lua_State *L)
{
    recur_tensor *c = lrecur_check_tensor(L, 1), *a = lrecur_check_tensor(L, 2);
    recur_tensor *b = lrecur_check_tensor(L, 3);
    double alpha = luaL_optnumber(L, 4, 1.0), beta = luaL_optnumber(L, 5, 1.0);
    int ta = opt_bool(L, 6, "addmm", "trans_a"), tb = opt_bool(L, 7, "addmm", "trans_b");
    recur_tensor *bias = lua_isnoneornil(L, 8) ? NULL : lrecur_check_tensor(L, 8);
    int64_t batch, M, N, K;
    check_matmul(L, "addmm", a, b, ta, tb, &batch, &M, &N, &K);
    lrecur_check_same_dtype(L, "addmm", c, a);
    if (bias) {
        lrecur_check_same_dtype(L, "addmm", bias, a);
        if (bias->ndim != 1 || bias->size[0] != N) {
            char sb[128];
            luaL_error(L, "addmm: bias must be 1-D of the %I columns of c, got %s", (lua_Integer)N,
                       lrecur_shape_str(bias, sb, sizeof sb));
        }
        if (bias->storage == c->storage) { /* c's first rows written before the bias is read */
            recur_tensor *copy = lrecur_push_like(L, "addmm", bias);
            recur_copy(copy, bias);
            bias = copy;
        }
        bias = lrecur_contiguous(L, bias);
    }
    int nd = a->ndim;
    int ok = c->ndim == nd && c->size[nd - 2] == M && c->size[nd - 1] == N &&
             (nd == 2 || c->size[0] == batch);
    if (!ok) {
        char sc[128], sa[128], sb[128];
        shape_op_str(a, ta, sa, sizeof sa);
        shape_op_str(b, tb, sb, sizeof sb);
        if (nd == 3)
            luaL_error(L, "addmm: size mismatch, c is %s but %s @ %s is (%Ix%Ix%I)",
                       lrecur_shape_str(c, sc, sizeof sc), sa, sb, (lua_Integer)batch,
                       (lua_Integer)M, (lua_Integer)N);
        luaL_error(L, "addmm: size mismatch, c is %s but %s @ %s is (%Ix%I)",
                   lrecur_shape_str(c, sc, sizeof sc), sa, sb, (lua_Integer)M, (lua_Integer)N);
    }
    gemm(L, "addmm", c, a, b, ta, tb, alpha, beta, M, N, K, bias);
    lua_pushvalue(L, 1);
    return 1;
}

/* ---- registration -------------------------------------------------------------------- */

static const luaL_Reg ops_methods[] = {
    {"add", m_add}, {"sub", m_sub}, {"mul", m_mul}, {"div", m_div},
    {"add_", m_add_}, {"sub_", m_sub_}, {"mul_", m_mul_}, {"div_", m_div_},
    {"tanh", m_tanh}, {"tanh_", m_tanh_}, {"sigmoid", m_sigmoid}, {"sigmoid_", m_sigmoid_},
    {"relu", m_relu}, {"relu_", m_relu_}, {"exp", m_exp}, {"exp_", m_exp_},
    {"log", m_log}, {"log_", m_log_}, {"sqrt", m_sqrt}, {"sqrt_", m_sqrt_},
    {"abs", m_abs}, {"abs_", m_abs_}, {"neg", m_neg}, {"neg_", m_neg_},
    {"clamp", m_clamp}, {"clamp_", m_clamp_},
    {"sum", m_sum}, {"mean", m_mean}, {"max", m_max}, {"min", m_min},
    {"argmax", m_argmax}, {"argmin", m_argmin}, {"norm", m_norm},
    {"softmax", m_softmax}, {"log_softmax", m_log_softmax},
    {"matmul", l_matmul}, {"addmm", l_addmm}, {"allclose", l_allclose},
    {NULL, NULL}};

static const luaL_Reg ops_meta[] = {
    {"__add", mm_add}, {"__sub", mm_sub}, {"__mul", mm_mul}, {"__div", mm_div},
    {"__unm", mm_unm}, {NULL, NULL}};

static const luaL_Reg ops_functions[] = {
    {"matmul", l_matmul}, {"addmm", l_addmm}, {"allclose", l_allclose}, {NULL, NULL}};

void lrecur_open_tensor_ops(lua_State *L)
{
    lrecur_push_tensor_methods(L);
    luaL_setfuncs(L, ops_methods, 0);
    lua_pop(L, 1);
    luaL_getmetatable(L, RECUR_TENSOR_MT);
    luaL_setfuncs(L, ops_meta, 0);
    lua_pop(L, 1);
    luaL_setfuncs(L, ops_functions, 0);
}
