/* Lua bindings for the optimizer updates (csrc/optim.c), called once per parameter by
 * the optimizer classes in lua/recur/optim/. The parameter, its gradient and its state
 * buffers are contiguous and share one dtype, float32 or float64 (the _f32 or _f64
 * update runs).
 *
 *   optim_sgd(p, g, buf|nil, lr, momentum, dampening, weight_decay, nesterov, first)
 *   optim_adam(p, g, m, v, vmax|nil, lr, beta1, beta2, eps, weight_decay, decoupled, step)
 *   optim_rmsprop(p, g, sq, gavg|nil, buf|nil, lr, alpha, eps, weight_decay, momentum)
 *   optim_adagrad(p, g, sum, clr, eps, weight_decay)
 *   optim_sum_squares(t) -> number, optim_max_abs(t) -> number   (float32/float64)
 */

#include "lua_recur.h"
#include "recur/optim.h"

/* The parameter (arg 1) and its gradient (arg 2) of every update, float32 or float64,
 * contiguous, with one dtype and element count; the state buffers (buffer()) must
 * match both. */
typedef struct {
    lua_State *L;
    const char *op;
    recur_dtype dtype;
    int64_t n;
    void *p, *g;
} optim_args;

/* The data of the contiguous tensor at arg with the parameter's dtype and size. */
static void *buffer(const optim_args *a, int arg, const char *what)
{
    recur_tensor *t = lrecur_check_tensor(a->L, arg);
    lrecur_check_dtype(a->L, a->op, what, t, a->dtype);
    lrecur_check_contiguous(a->L, a->op, what, t);
    if (recur_numel(t) != a->n)
        luaL_error(a->L, "%s: %s has %I elements, the parameter has %I", a->op, what,
                   (lua_Integer)recur_numel(t), (lua_Integer)a->n);
    return recur_data(t);
}

static void *opt_buffer(const optim_args *a, int arg, const char *what)
{
    return lua_isnoneornil(a->L, arg) ? NULL : buffer(a, arg, what);
}

static optim_args check_param_grad(lua_State *L, const char *op)
{
    recur_tensor *p = lrecur_check_tensor(L, 1);
    if (p->dtype != RECUR_FLOAT32 && p->dtype != RECUR_FLOAT64)
        luaL_error(L, "%s: parameter expected dtype float32 or float64, got %s", op,
                   recur_dtype_name(p->dtype));
    optim_args a = {L, op, p->dtype, recur_numel(p), NULL, NULL};
    a.p = buffer(&a, 1, "parameter");
    a.g = buffer(&a, 2, "gradient");
    return a;
}

static int l_optim_sgd(lua_State *L)
{
    optim_args a = check_param_grad(L, "optim_sgd");
    void *buf = opt_buffer(&a, 3, "momentum buffer");
    double lr = luaL_checknumber(L, 4), momentum = luaL_checknumber(L, 5);
    double dampening = luaL_checknumber(L, 6), weight_decay = luaL_checknumber(L, 7);
    int nesterov = lua_toboolean(L, 8), first = lua_toboolean(L, 9);
    if (a.dtype == RECUR_FLOAT32)
        recur_sgd_update_f32(a.p, a.g, buf, a.n, lr, momentum, dampening, weight_decay, nesterov,
                             first);
    else
        recur_sgd_update_f64(a.p, a.g, buf, a.n, lr, momentum, dampening, weight_decay, nesterov,
                             first);
    return 0;
}

static int l_optim_adam(lua_State *L)
{
    optim_args a = check_param_grad(L, "optim_adam");
    void *m = buffer(&a, 3, "exp_avg");
    void *v = buffer(&a, 4, "exp_avg_sq");
    void *vmax = opt_buffer(&a, 5, "max_exp_avg_sq");
    double lr = luaL_checknumber(L, 6), beta1 = luaL_checknumber(L, 7);
    double beta2 = luaL_checknumber(L, 8), eps = luaL_checknumber(L, 9);
    double weight_decay = luaL_checknumber(L, 10);
    int decoupled = lua_toboolean(L, 11);
    lua_Integer step = luaL_checkinteger(L, 12);
    luaL_argcheck(L, step >= 1, 12, "step counts from 1");
    if (a.dtype == RECUR_FLOAT32)
        recur_adam_update_f32(a.p, a.g, m, v, vmax, a.n, lr, beta1, beta2, eps, weight_decay,
                              decoupled, (int64_t)step);
    else
        recur_adam_update_f64(a.p, a.g, m, v, vmax, a.n, lr, beta1, beta2, eps, weight_decay,
                              decoupled, (int64_t)step);
    return 0;
}

static int l_optim_rmsprop(lua_State *L)
{
    optim_args a = check_param_grad(L, "optim_rmsprop");
    void *sq = buffer(&a, 3, "square_avg");
    void *gavg = opt_buffer(&a, 4, "grad_avg");
    void *buf = opt_buffer(&a, 5, "momentum buffer");
    double lr = luaL_checknumber(L, 6), alpha = luaL_checknumber(L, 7);
    double eps = luaL_checknumber(L, 8), weight_decay = luaL_checknumber(L, 9);
    double momentum = luaL_checknumber(L, 10);
    if (a.dtype == RECUR_FLOAT32)
        recur_rmsprop_update_f32(a.p, a.g, sq, gavg, buf, a.n, lr, alpha, eps, weight_decay,
                                 momentum);
    else
        recur_rmsprop_update_f64(a.p, a.g, sq, gavg, buf, a.n, lr, alpha, eps, weight_decay,
                                 momentum);
    return 0;
}

static int l_optim_adagrad(lua_State *L)
{
    optim_args a = check_param_grad(L, "optim_adagrad");
    void *sum = buffer(&a, 3, "sum");
    double clr = luaL_checknumber(L, 4), eps = luaL_checknumber(L, 5);
    double weight_decay = luaL_checknumber(L, 6);
    if (a.dtype == RECUR_FLOAT32)
        recur_adagrad_update_f32(a.p, a.g, sum, a.n, clr, eps, weight_decay);
    else
        recur_adagrad_update_f64(a.p, a.g, sum, a.n, clr, eps, weight_decay);
    return 0;
}

/* Reductions for gradient clipping, (t) -> number: any float tensor, contiguous or not
 * (a strided gradient is copied first, which lrecur_contiguous leaves on the stack). */
static int float_reduction(lua_State *L, const char *op, double (*f32)(const float *, int64_t),
                           double (*f64)(const double *, int64_t))
{
    recur_tensor *t = lrecur_check_tensor(L, 1);
    if (t->dtype != RECUR_FLOAT32 && t->dtype != RECUR_FLOAT64)
        luaL_error(L, "%s: expected a float32 or float64 tensor, got %s", op,
                   recur_dtype_name(t->dtype));
    t = lrecur_contiguous(L, t);
    int64_t n = recur_numel(t);
    lua_pushnumber(L, t->dtype == RECUR_FLOAT32 ? f32(recur_f32(t), n) : f64(recur_f64(t), n));
    return 1;
}

static int l_optim_sum_squares(lua_State *L)
{
    return float_reduction(L, "optim_sum_squares", recur_sum_squares_f32, recur_sum_squares_f64);
}

static int l_optim_max_abs(lua_State *L)
{
    return float_reduction(L, "optim_max_abs", recur_max_abs_f32, recur_max_abs_f64);
}

static const luaL_Reg optim_funcs[] = {
    {"optim_sgd", l_optim_sgd},
    {"optim_adam", l_optim_adam},
    {"optim_rmsprop", l_optim_rmsprop},
    {"optim_adagrad", l_optim_adagrad},
    {"optim_sum_squares", l_optim_sum_squares},
    {"optim_max_abs", l_optim_max_abs},
    {NULL, NULL},
};

void lrecur_open_optim(lua_State *L)
{
    luaL_setfuncs(L, optim_funcs, 0);
}
