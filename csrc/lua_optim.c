/* Lua bindings for the optimizer updates (csrc/optim.c), called once per parameter by
 * the optimizer classes in lua/recur/optim/.
 *
 *   optim_sgd(p, g, buf|nil, lr, momentum, dampening, weight_decay, nesterov, first)
 *   optim_adam(p, g, m, v, vmax|nil, lr, beta1, beta2, eps, weight_decay, decoupled, step)
 *   optim_rmsprop(p, g, sq, gavg|nil, buf|nil, lr, alpha, eps, weight_decay, momentum)
 *   optim_adagrad(p, g, sum, clr, eps, weight_decay)
 *   optim_sum_squares(t) -> number, optim_max_abs(t) -> number   (float32/float64)
 */

#include "lua_recur.h"
#include "optim.h"

/* A float32 contiguous tensor of n elements (n < 0: any count) at arg. */
static float *check_f32(lua_State *L, const char *op, int arg, const char *what, int64_t n)
{
    recur_tensor *t = lrecur_check_tensor(L, arg);
    lrecur_check_dtype(L, op, what, t, RECUR_FLOAT32);
    lrecur_check_contiguous(L, op, what, t);
    if (n >= 0 && recur_numel(t) != n)
        luaL_error(L, "%s: %s has %I elements, the parameter has %I", op, what,
                   (lua_Integer)recur_numel(t), (lua_Integer)n);
    return recur_f32(t);
}

static float *opt_f32(lua_State *L, const char *op, int arg, const char *what, int64_t n)
{
    return lua_isnoneornil(L, arg) ? NULL : check_f32(L, op, arg, what, n);
}

/* The parameter (arg 1) and its gradient (arg 2) of every update; returns their
 * element count, which the state buffers must match. */
static int64_t check_param_grad(lua_State *L, const char *op, float **p, const float **g)
{
    *p = check_f32(L, op, 1, "parameter", -1);
    int64_t n = recur_numel(lrecur_check_tensor(L, 1));
    *g = check_f32(L, op, 2, "gradient", n);
    return n;
}

static int l_optim_sgd(lua_State *L)
{
    const char *op = "optim_sgd";
    float *p;
    const float *g;
    int64_t n = check_param_grad(L, op, &p, &g);
    float *buf = opt_f32(L, op, 3, "momentum buffer", n);
    double lr = luaL_checknumber(L, 4), momentum = luaL_checknumber(L, 5);
    double dampening = luaL_checknumber(L, 6), weight_decay = luaL_checknumber(L, 7);
    int nesterov = lua_toboolean(L, 8), first = lua_toboolean(L, 9);
    recur_sgd_update(p, g, buf, n, lr, momentum, dampening, weight_decay, nesterov, first);
    return 0;
}

static int l_optim_adam(lua_State *L)
{
    const char *op = "optim_adam";
    float *p;
    const float *g;
    int64_t n = check_param_grad(L, op, &p, &g);
    float *m = check_f32(L, op, 3, "exp_avg", n);
    float *v = check_f32(L, op, 4, "exp_avg_sq", n);
    float *vmax = opt_f32(L, op, 5, "max_exp_avg_sq", n);
    double lr = luaL_checknumber(L, 6), beta1 = luaL_checknumber(L, 7);
    double beta2 = luaL_checknumber(L, 8), eps = luaL_checknumber(L, 9);
    double weight_decay = luaL_checknumber(L, 10);
    int decoupled = lua_toboolean(L, 11);
    lua_Integer step = luaL_checkinteger(L, 12);
    luaL_argcheck(L, step >= 1, 12, "step counts from 1");
    recur_adam_update(p, g, m, v, vmax, n, lr, beta1, beta2, eps, weight_decay, decoupled,
                (int64_t)step);
    return 0;
}

static int l_optim_rmsprop(lua_State *L)
{
    const char *op = "optim_rmsprop";
    float *p;
    const float *g;
    int64_t n = check_param_grad(L, op, &p, &g);
    float *sq = check_f32(L, op, 3, "square_avg", n);
    float *gavg = opt_f32(L, op, 4, "grad_avg", n);
    float *buf = opt_f32(L, op, 5, "momentum buffer", n);
    double lr = luaL_checknumber(L, 6), alpha = luaL_checknumber(L, 7);
    double eps = luaL_checknumber(L, 8), weight_decay = luaL_checknumber(L, 9);
    double momentum = luaL_checknumber(L, 10);
    recur_rmsprop_update(p, g, sq, gavg, buf, n, lr, alpha, eps, weight_decay, momentum);
    return 0;
}

static int l_optim_adagrad(lua_State *L)
{
    const char *op = "optim_adagrad";
    float *p;
    const float *g;
    int64_t n = check_param_grad(L, op, &p, &g);
    float *sum = check_f32(L, op, 3, "sum", n);
    double clr = luaL_checknumber(L, 4), eps = luaL_checknumber(L, 5);
    double weight_decay = luaL_checknumber(L, 6);
    recur_adagrad_update(p, g, sum, n, clr, eps, weight_decay);
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
