/* recur.dist: data-parallel training's few collective operations over MPI.
 *
 * A module of its own (build/recur/dist.so), built only where mpi.h is found, so that
 * recur.core never links MPI and recur builds and tests without it. Tensors are
 * recur.core's userdata (metatable "recur.Tensor", a recur_tensor, include/recur/
 * tensor.h); this module reads their storage in place and never allocates one.
 *
 *   dist.init()                  MPI_Init_thread (FUNNELED) once; later calls do nothing
 *   dist.finalize()              MPI_Finalize; a process that exits without it (a Lua
 *                                error) makes mpirun end the whole job: no rank then
 *                                waits forever for one that is gone. (Finalising at exit
 *                                would hide the failure: MPI_Finalize on the failed rank
 *                                is a clean end, and the others hang in their next
 *                                collective.)
 *   dist.rank(), dist.size()     in MPI_COMM_WORLD
 *   dist.allreduce(t, op)        in place, op "sum" or "mean"; t contiguous float32/float64
 *   dist.broadcast(t, root)      in place, root 0-based
 *   dist.broadcast_string(s, root) -> the root's string on every rank
 *   dist.barrier()
 *   dist.abort(code)             MPI_Abort: every rank of the job ends
 *   dist.set_timeout(seconds)    how long a collective waits for the other ranks before
 *                                it fails (0: forever); 600 s until set
 *   dist.timeout()               the current limit
 *
 * A rank that dies ends the job through mpirun. A rank that hangs (a stuck host, a
 * stopped process) would leave the others waiting forever inside a blocking MPI call,
 * so the collectives are MPI-3's non-blocking ones, waited for here with a deadline:
 * past it the call raises "dist.<op>: no answer from the other ranks in <t> s", the
 * recur command exits non-zero without finalising, and mpirun ends every rank, the
 * stuck one too. While it waits, a rank polls with short sleeps after the first
 * millisecond, so that ranks sharing a core (--oversubscribe, a busy machine) do not
 * take the CPU from the rank they wait for.
 *
 * Errors are Lua errors naming the operation: "dist.allreduce: ...". MPI's own errors
 * are returned, not fatal (MPI_ERRORS_RETURN on MPI_COMM_WORLD). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lua.h>
#include <lauxlib.h>
#include <mpi.h>

#include "recur/tensor.h"

#define TENSOR_MT "recur.Tensor"

static int initialised(void)
{
    int flag = 0, done = 0;
    MPI_Initialized(&flag);
    MPI_Finalized(&done);
    return flag && !done;
}

static void check_mpi(lua_State *L, const char *op, int rc)
{
    if (rc == MPI_SUCCESS) return;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) len = 0;
    msg[len] = '\0';
    luaL_error(L, "%s: MPI error %d: %s", op, rc, len ? msg : "unknown");
}

static double timeout_seconds = 600;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Waits for a started collective, raising a Lua error (without finalising MPI) when
 * the other ranks do not answer within timeout_seconds. */
static void wait_for(lua_State *L, const char *op, MPI_Request *req)
{
    double start = now_seconds(), pause = 0;
    for (;;) {
        int done = 0;
        check_mpi(L, op, MPI_Test(req, &done, MPI_STATUS_IGNORE));
        if (done) return;
        double waited = now_seconds() - start;
        if (timeout_seconds > 0 && waited > timeout_seconds) {
            char limit[32]; /* lua_pushfstring has no %g */
            snprintf(limit, sizeof limit, "%g", timeout_seconds);
            luaL_error(L, "%s: no answer from the other ranks in %s s (a rank hangs or is gone); "
                          "the job stops (dist.set_timeout changes the limit)", op, limit);
        }
        if (waited > 1e-3) {
            /* sleep 10 us, doubling up to 200 us: a late rank costs at most that much more */
            pause = pause == 0 ? 10e-6 : (pause * 2 < 200e-6 ? pause * 2 : 200e-6);
            struct timespec ts = {0, (long)(pause * 1e9)};
            nanosleep(&ts, NULL);
        }
    }
}

static void need_init(lua_State *L, const char *op)
{
    if (!initialised()) luaL_error(L, "%s: MPI is not initialised (call dist.init() first)", op);
}


/* Element strides must be the contiguous ones: the collectives read one flat block. */
static int is_contiguous(const recur_tensor *t)
{
    int64_t expect = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->size[d] != 1 && t->stride[d] != expect) return 0;
        expect *= t->size[d];
    }
    return 1;
}

static recur_tensor *check_float_tensor(lua_State *L, const char *op, int arg, int64_t *n)
{
    recur_tensor *t = luaL_testudata(L, arg, TENSOR_MT);
    if (!t) luaL_error(L, "%s: expected a tensor, got %s", op, luaL_typename(L, arg));
    if (!t->storage) luaL_error(L, "%s: the tensor was closed", op);
    if (t->dtype != RECUR_FLOAT32 && t->dtype != RECUR_FLOAT64)
        luaL_error(L, "%s: float32 or float64 tensors only, got int64", op);
    if (!is_contiguous(t)) luaL_error(L, "%s: the tensor must be contiguous", op);
    int64_t count = 1;
    for (int d = 0; d < t->ndim; d++) count *= t->size[d];
    if (count > 0x7fffffff) luaL_error(L, "%s: %I elements is more than MPI's int count", op, (lua_Integer)count);
    *n = count;
    return t;
}

static void *tensor_data(const recur_tensor *t)
{
    return (char *)t->storage->data + (size_t)t->offset * (t->dtype == RECUR_FLOAT32 ? 4 : 8);
}

static int check_root(lua_State *L, const char *op, int arg)
{
    lua_Integer root = luaL_optinteger(L, arg, 0);
    int size = 0;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (root < 0 || root >= size) luaL_error(L, "%s: root %I is outside 0..%d", op, root, size - 1);
    return (int)root;
}

static int l_init(lua_State *L)
{
    int flag = 0, done = 0;
    MPI_Initialized(&flag);
    MPI_Finalized(&done);
    if (done) return luaL_error(L, "dist.init: MPI was finalised; it cannot start again in this process");
    if (!flag) {
        int provided = 0;
        if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
            return luaL_error(L, "dist.init: MPI_Init_thread failed");
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int l_finalize(lua_State *L)
{
    if (initialised()) check_mpi(L, "dist.finalize", MPI_Finalize());
    return 0;
}

static int l_initialized(lua_State *L)
{
    lua_pushboolean(L, initialised());
    return 1;
}

static int l_rank(lua_State *L)
{
    need_init(L, "dist.rank");
    int r = 0;
    check_mpi(L, "dist.rank", MPI_Comm_rank(MPI_COMM_WORLD, &r));
    lua_pushinteger(L, r);
    return 1;
}

static int l_size(lua_State *L)
{
    need_init(L, "dist.size");
    int n = 0;
    check_mpi(L, "dist.size", MPI_Comm_size(MPI_COMM_WORLD, &n));
    lua_pushinteger(L, n);
    return 1;
}

static int l_allreduce(lua_State *L)
{
    const char *op = "dist.allreduce";
    need_init(L, op);
    int64_t n = 0;
    recur_tensor *t = check_float_tensor(L, op, 1, &n);
    static const char *const ops[] = {"sum", "mean", NULL};
    int mean = luaL_checkoption(L, 2, "sum", ops);
    if (n == 0) return 0;
    MPI_Datatype type = t->dtype == RECUR_FLOAT32 ? MPI_FLOAT : MPI_DOUBLE;
    void *data = tensor_data(t);
    MPI_Request req;
    check_mpi(L, op, MPI_Iallreduce(MPI_IN_PLACE, data, (int)n, type, MPI_SUM, MPI_COMM_WORLD, &req));
    wait_for(L, op, &req);
    if (mean) {
        int size = 1;
        MPI_Comm_size(MPI_COMM_WORLD, &size);
        if (t->dtype == RECUR_FLOAT32) {
            float *x = data;
            for (int64_t i = 0; i < n; i++) x[i] /= (float)size;
        } else {
            double *x = data;
            for (int64_t i = 0; i < n; i++) x[i] /= (double)size;
        }
    }
    return 0;
}

static int l_broadcast(lua_State *L)
{
    const char *op = "dist.broadcast";
    need_init(L, op);
    int64_t n = 0;
    recur_tensor *t = check_float_tensor(L, op, 1, &n);
    int root = check_root(L, op, 2);
    if (n == 0) return 0;
    MPI_Datatype type = t->dtype == RECUR_FLOAT32 ? MPI_FLOAT : MPI_DOUBLE;
    MPI_Request req;
    check_mpi(L, op, MPI_Ibcast(tensor_data(t), (int)n, type, root, MPI_COMM_WORLD, &req));
    wait_for(L, op, &req);
    return 0;
}

static int l_broadcast_string(lua_State *L)
{
    const char *op = "dist.broadcast_string";
    need_init(L, op);
    int root = check_root(L, op, 2);
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    size_t len = 0;
    const char *s = rank == root ? luaL_checklstring(L, 1, &len) : NULL;
    if (len > 0x7fffffff) return luaL_error(L, "%s: the string is longer than MPI's int count", op);
    long long n = (long long)len;
    MPI_Request req;
    check_mpi(L, op, MPI_Ibcast(&n, 1, MPI_LONG_LONG, root, MPI_COMM_WORLD, &req));
    wait_for(L, op, &req);
    if (rank == root) {
        check_mpi(L, op, MPI_Ibcast((void *)s, (int)n, MPI_CHAR, root, MPI_COMM_WORLD, &req));
        wait_for(L, op, &req);
        lua_pushvalue(L, 1);
        return 1;
    }
    luaL_Buffer b;
    char *buf = luaL_buffinitsize(L, &b, (size_t)n);
    check_mpi(L, op, MPI_Ibcast(buf, (int)n, MPI_CHAR, root, MPI_COMM_WORLD, &req));
    wait_for(L, op, &req);
    luaL_pushresultsize(&b, (size_t)n);
    return 1;
}

static int l_barrier(lua_State *L)
{
    need_init(L, "dist.barrier");
    MPI_Request req;
    check_mpi(L, "dist.barrier", MPI_Ibarrier(MPI_COMM_WORLD, &req));
    wait_for(L, "dist.barrier", &req);
    return 0;
}

static int l_set_timeout(lua_State *L)
{
    lua_Number t = luaL_checknumber(L, 1);
    if (!(t >= 0 && t < 1e9)) return luaL_error(L, "dist.set_timeout: seconds must be 0 (no limit) or positive, got %f", (double)t);
    timeout_seconds = (double)t;
    return 0;
}

static int l_timeout(lua_State *L)
{
    lua_pushnumber(L, timeout_seconds);
    return 1;
}

static int l_abort(lua_State *L)
{
    int code = (int)luaL_optinteger(L, 1, 1);
    if (initialised()) MPI_Abort(MPI_COMM_WORLD, code);
    exit(code);
}

static const luaL_Reg distlib[] = {
    {"init", l_init}, {"finalize", l_finalize}, {"initialized", l_initialized},
    {"rank", l_rank}, {"size", l_size}, {"allreduce", l_allreduce},
    {"broadcast", l_broadcast}, {"broadcast_string", l_broadcast_string},
    {"barrier", l_barrier}, {"abort", l_abort}, {"set_timeout", l_set_timeout},
    {"timeout", l_timeout}, {NULL, NULL}};

__attribute__((visibility("default"))) int luaopen_recur_dist(lua_State *L)
{
    luaL_newlib(L, distlib);
    return 1;
}
