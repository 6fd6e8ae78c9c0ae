/* Lua bindings for the nn kernels (csrc/nn.c), added to recur.core with an nn_
 * prefix. The Lua classes in lua/recur/nn/ are their only intended callers, so
 * these check what a kernel needs (dtype, shape, contiguity, id ranges) and leave
 * the friendlier argument handling to Lua. */
#include "lua_recur.h"
#include "recur/nn.h"

static int is_float(const recur_tensor *t)
{
    return t->dtype == RECUR_FLOAT32 || t->dtype == RECUR_FLOAT64;
}

static recur_tensor *check_float(lua_State *L, const char *op, int arg)
{
    recur_tensor *t = lrecur_check_tensor(L, arg);
    if (!is_float(t))
        luaL_error(L, "%s: expected a float32 or float64 tensor as argument #%d, got %s", op, arg,
                   recur_dtype_name(t->dtype));
    return t;
}

/* A contiguous version of the tensor at arg, left on the stack top when copied
 * (the copy lives as long as the call). */
static recur_tensor *contiguous_arg(lua_State *L, int arg)
{
    return lrecur_contiguous(L, lrecur_check_tensor(L, arg));
}

/* nn_embedding(weight, ids [, out]) -> out: weight (V,E), ids int64 of any shape S,
 * out (S..., E), written into the given out when it fits (see lrecur_push_result). */
static int nn_embedding(lua_State *L)
{
    const char *op = "embedding";
    lua_settop(L, 3);
    recur_tensor *w = check_float(L, op, 1);
    recur_tensor *ids = lrecur_check_tensor(L, 2);
    lrecur_check_dtype(L, op, "ids", ids, RECUR_INT64);
    if (w->ndim != 2) luaL_error(L, "%s: weight must be 2-D (V,E)", op);
    if (ids->ndim + 1 > RECUR_MAX_DIMS) luaL_error(L, "%s: ids have too many dims", op);
    w = contiguous_arg(L, 1);
    ids = contiguous_arg(L, 2);
    int64_t V = w->size[0], E = w->size[1], N = recur_numel(ids);
    int64_t bad = recur_nn_first_bad_id(recur_i64(ids), N, V, 0, 0);
    if (bad >= 0)
        return luaL_error(L,
                          "%s: id %I (at position %I) is out of range for vocabulary size %I "
                          "(ids are 1-based, 1..%I)",
                          op, (lua_Integer)recur_i64(ids)[bad], (lua_Integer)(bad + 1), (lua_Integer)V,
                          (lua_Integer)V);
    int64_t size[RECUR_MAX_DIMS];
    for (int d = 0; d < ids->ndim; d++) size[d] = ids->size[d];
    size[ids->ndim] = E;
    recur_tensor *out = lrecur_push_result(L, op, 3, w->dtype, ids->ndim + 1, size, w, NULL);
    if (w->dtype == RECUR_FLOAT32)
        recur_embedding_forward_f32(recur_f32(out), recur_i64(ids), recur_f32(w), N, E);
    else
        recur_embedding_forward_f64(recur_f64(out), recur_i64(ids), recur_f64(w), N, E);
    return 1;
}

/* nn_embedding_backward(gweight, ids, gout): gweight (V,E) += scatter of gout. */
static int nn_embedding_backward(lua_State *L)
{
    const char *op = "embedding backward";
    recur_tensor *gw = check_float(L, op, 1);
    recur_tensor *ids = lrecur_check_tensor(L, 2);
    recur_tensor *gout = check_float(L, op, 3);
    lrecur_check_dtype(L, op, "ids", ids, RECUR_INT64);
    lrecur_check_same_dtype(L, op, gw, gout);
    lrecur_check_contiguous(L, op, "gradient of weight", gw);
    if (gw->ndim != 2) luaL_error(L, "%s: gradient of weight must be 2-D (V,E)", op);
    int64_t V = gw->size[0], E = gw->size[1], N = recur_numel(ids), NE;
    if (!recur_size_mul(N, E, &NE) || recur_numel(gout) != NE)
        luaL_error(L, "%s: grad_output has %I elements, expected %I (ids) x %I (E)", op,
                   (lua_Integer)recur_numel(gout), (lua_Integer)N, (lua_Integer)E);
    ids = contiguous_arg(L, 2);
    gout = contiguous_arg(L, 3);
    if (recur_nn_first_bad_id(recur_i64(ids), N, V, 0, 0) >= 0)
        luaL_error(L, "%s: ids out of range for vocabulary size %I", op, (lua_Integer)V);
    if (gw->dtype == RECUR_FLOAT32)
        recur_embedding_backward_f32(recur_f32(gw), recur_i64(ids), recur_f32(gout), N, E);
    else
        recur_embedding_backward_f64(recur_f64(gw), recur_i64(ids), recur_f64(gout), N, E);
    return 0;
}

/* nn_dropout(x, p [, y, mask]) -> y, mask (the shape of x), written into the given y and
 * mask when they fit (see lrecur_push_result); y may be x itself (y = x * mask elementwise). */
static int nn_dropout(lua_State *L)
{
    const char *op = "dropout";
    check_float(L, op, 1);
    double p = luaL_checknumber(L, 2);
    if (!(p >= 0.0 && p <= 1.0)) luaL_error(L, "%s: probability must be in [0, 1], got %f", op, p);
    lua_settop(L, 4);
    recur_tensor *x = contiguous_arg(L, 1);
    recur_rng *g = lrecur_rng(L);
    recur_tensor *y = lrecur_push_result(L, op, 3, x->dtype, x->ndim, x->size, NULL, NULL);
    recur_tensor *mask = lrecur_push_result(L, op, 4, x->dtype, x->ndim, x->size, x, y);
    int64_t n = recur_numel(x);
    if (x->dtype == RECUR_FLOAT32)
        recur_dropout_forward_f32(recur_f32(y), recur_f32(mask), recur_f32(x), n, p, g);
    else
        recur_dropout_forward_f64(recur_f64(y), recur_f64(mask), recur_f64(x), n, p, g);
    return 2;
}

/* Shared argument checks of the two cross-entropy bindings: logits (N,V) at 1,
 * targets at `targ`, ignore_index at `ign`, mask at `msk`. */
typedef struct {
    recur_tensor *logits, *targets, *mask;
    int has_ignore;
    int64_t ignore, N, V;
} ce_args;

static void check_ce_args(lua_State *L, const char *op, ce_args *a, int targ, int ign, int msk)
{
    recur_tensor *logits = check_float(L, op, 1);
    if (logits->ndim != 2) luaL_error(L, "%s: logits must be 2-D (N,V)", op);
    recur_tensor *targets = lrecur_check_tensor(L, targ);
    lrecur_check_dtype(L, op, "targets", targets, RECUR_INT64);
    a->N = logits->size[0];
    a->V = logits->size[1];
    if (a->V < 1) luaL_error(L, "%s: logits have no classes", op);
    if (recur_numel(targets) != a->N)
        luaL_error(L, "%s: %I targets for %I rows of logits", op, (lua_Integer)recur_numel(targets),
                   (lua_Integer)a->N);
    a->has_ignore = !lua_isnoneornil(L, ign);
    a->ignore = a->has_ignore ? luaL_checkinteger(L, ign) : 0;
    a->mask = NULL;
    if (!lua_isnoneornil(L, msk)) {
        recur_tensor *m = lrecur_check_tensor(L, msk);
        lrecur_check_same_dtype(L, op, logits, m);
        if (recur_numel(m) != a->N)
            luaL_error(L, "%s: mask has %I elements for %I targets", op, (lua_Integer)recur_numel(m),
                       (lua_Integer)a->N);
        a->mask = contiguous_arg(L, msk);
    }
    a->logits = contiguous_arg(L, 1);
    a->targets = contiguous_arg(L, targ);
    int64_t bad = recur_nn_first_bad_id(recur_i64(a->targets), a->N, a->V, a->has_ignore, a->ignore);
    if (bad >= 0)
        luaL_error(L,
                   "%s: target %I (at position %I) is out of range for %I classes "
                   "(targets are 1-based, 1..%I)",
                   op, (lua_Integer)recur_i64(a->targets)[bad], (lua_Integer)(bad + 1), (lua_Integer)a->V,
                   (lua_Integer)a->V);
}

/* nn_cross_entropy(logits, targets, ignore_index|nil, mask|nil)
 *   -> loss_sum, weight_sum, lse (N) */
static int nn_cross_entropy(lua_State *L)
{
    ce_args a;
    check_ce_args(L, "cross_entropy", &a, 2, 3, 4);
    int64_t size[1] = {a.N};
    recur_tensor *lse = lrecur_push_new(L, "cross_entropy", a.logits->dtype, 1, size);
    double loss_sum, weight_sum;
    if (a.logits->dtype == RECUR_FLOAT32)
        recur_cross_entropy_forward_f32(&loss_sum, &weight_sum, recur_f32(lse), recur_f32(a.logits),
                                  recur_i64(a.targets), a.mask ? recur_f32(a.mask) : NULL,
                                  a.has_ignore, a.ignore, a.N, a.V);
    else
        recur_cross_entropy_forward_f64(&loss_sum, &weight_sum, recur_f64(lse), recur_f64(a.logits),
                                  recur_i64(a.targets), a.mask ? recur_f64(a.mask) : NULL,
                                  a.has_ignore, a.ignore, a.N, a.V);
    lua_pushnumber(L, loss_sum);
    lua_pushnumber(L, weight_sum);
    lua_pushvalue(L, -3);
    return 3;
}

/* nn_cross_entropy_backward(logits, targets, ignore_index|nil, mask|nil, lse, scale [, out])
 *   -> grad (N,V), written into out when it fits (see lrecur_push_result) */
static int nn_cross_entropy_backward(lua_State *L)
{
    const char *op = "cross_entropy backward";
    lua_settop(L, 7);
    ce_args a;
    check_ce_args(L, op, &a, 2, 3, 4);
    recur_tensor *lse = lrecur_check_tensor(L, 5);
    lrecur_check_same_dtype(L, op, a.logits, lse);
    if (recur_numel(lse) != a.N) luaL_error(L, "%s: lse must have one value per row", op);
    lse = contiguous_arg(L, 5);
    double scale = luaL_checknumber(L, 6);
    int64_t size[2] = {a.N, a.V};
    recur_tensor *grad = lrecur_push_result(L, op, 7, a.logits->dtype, 2, size, a.logits, lse);
    if (a.logits->dtype == RECUR_FLOAT32)
        recur_cross_entropy_backward_f32(recur_f32(grad), recur_f32(a.logits), recur_f32(lse),
                                   recur_i64(a.targets), a.mask ? recur_f32(a.mask) : NULL,
                                   a.has_ignore, a.ignore, scale, a.N, a.V);
    else
        recur_cross_entropy_backward_f64(recur_f64(grad), recur_f64(a.logits), recur_f64(lse),
                                   recur_i64(a.targets), a.mask ? recur_f64(a.mask) : NULL,
                                   a.has_ignore, a.ignore, scale, a.N, a.V);
    return 1;
}

/* Input and target of an elementwise loss: same dtype, same number of elements. */
static void check_pair(lua_State *L, const char *op, recur_tensor **x, recur_tensor **t)
{
    recur_tensor *xx = check_float(L, op, 1);
    recur_tensor *tt = check_float(L, op, 2);
    lrecur_check_same_dtype(L, op, xx, tt);
    if (recur_numel(xx) != recur_numel(tt)) {
        char b1[128], b2[128];
        luaL_error(L, "%s: input %s and target %s differ in size", op,
                   lrecur_shape_str(xx, b1, sizeof b1), lrecur_shape_str(tt, b2, sizeof b2));
    }
    *x = contiguous_arg(L, 1);
    *t = contiguous_arg(L, 2);
}

/* The elementwise losses share their bindings: forward (x, t) -> the sum of the
 * per-element losses; backward (x, t, scale) -> grad = scale * d(sum)/dx, a new
 * tensor. The kernels come in by dtype. */
typedef double (*loss_sum_f32)(const float *x, const float *t, int64_t n);
typedef double (*loss_sum_f64)(const double *x, const double *t, int64_t n);
typedef void (*loss_grad_f32)(float *grad, const float *x, const float *t, double scale, int64_t n);
typedef void (*loss_grad_f64)(double *grad, const double *x, const double *t, double scale,
                              int64_t n);

static int elementwise_loss(lua_State *L, const char *op, loss_sum_f32 f32, loss_sum_f64 f64)
{
    recur_tensor *x, *t;
    check_pair(L, op, &x, &t);
    int64_t n = recur_numel(x);
    lua_pushnumber(L, x->dtype == RECUR_FLOAT32 ? f32(recur_f32(x), recur_f32(t), n)
                                                : f64(recur_f64(x), recur_f64(t), n));
    return 1;
}

static int elementwise_loss_backward(lua_State *L, const char *op, loss_grad_f32 f32,
                                     loss_grad_f64 f64)
{
    recur_tensor *x, *t;
    check_pair(L, op, &x, &t);
    double scale = luaL_checknumber(L, 3);
    recur_tensor *g = lrecur_push_like(L, op, x);
    int64_t n = recur_numel(x);
    if (x->dtype == RECUR_FLOAT32)
        f32(recur_f32(g), recur_f32(x), recur_f32(t), scale, n);
    else
        f64(recur_f64(g), recur_f64(x), recur_f64(t), scale, n);
    return 1;
}

/* nn_bce_with_logits(x, t), nn_bce_with_logits_backward(x, t, scale) */
static int nn_bce_with_logits(lua_State *L)
{
    return elementwise_loss(L, "bce_with_logits", recur_bce_with_logits_forward_f32,
                            recur_bce_with_logits_forward_f64);
}

static int nn_bce_with_logits_backward(lua_State *L)
{
    return elementwise_loss_backward(L, "bce_with_logits backward", recur_bce_with_logits_backward_f32,
                                     recur_bce_with_logits_backward_f64);
}

/* nn_mse(x, t) (the sum of squared differences), nn_mse_backward(x, t, scale) */
static int nn_mse(lua_State *L)
{
    return elementwise_loss(L, "mse", recur_mse_forward_f32, recur_mse_forward_f64);
}

static int nn_mse_backward(lua_State *L)
{
    return elementwise_loss_backward(L, "mse backward", recur_mse_backward_f32, recur_mse_backward_f64);
}

/* nn_orthogonalize_rows_(a): a float64 (m,n), m <= n, contiguous; rows made
 * orthonormal in place. Returns a. */
static int nn_orthogonalize_rows_(lua_State *L)
{
    const char *op = "orthogonalize";
    recur_tensor *a = lrecur_check_tensor(L, 1);
    lrecur_check_dtype(L, op, "matrix", a, RECUR_FLOAT64);
    lrecur_check_contiguous(L, op, "matrix", a);
    if (a->ndim != 2 || a->size[0] > a->size[1]) {
        char b[128];
        luaL_error(L, "%s: expected a 2-D (m,n) matrix with m <= n, got %s", op,
                   lrecur_shape_str(a, b, sizeof b));
    }
    if (recur_orthogonalize_rows_f64(recur_f64(a), a->size[0], a->size[1]) != 0)
        luaL_error(L, "%s: rows are linearly dependent", op);
    lua_settop(L, 1);
    return 1;
}

static const luaL_Reg nn_funcs[] = {
    {"nn_embedding", nn_embedding},
    {"nn_embedding_backward", nn_embedding_backward},
    {"nn_dropout", nn_dropout},
    {"nn_cross_entropy", nn_cross_entropy},
    {"nn_cross_entropy_backward", nn_cross_entropy_backward},
    {"nn_bce_with_logits", nn_bce_with_logits},
    {"nn_bce_with_logits_backward", nn_bce_with_logits_backward},
    {"nn_mse", nn_mse},
    {"nn_mse_backward", nn_mse_backward},
    {"nn_orthogonalize_rows_", nn_orthogonalize_rows_},
    {NULL, NULL}
};

void lrecur_open_nn(lua_State *L)
{
    luaL_setfuncs(L, nn_funcs, 0);
}
