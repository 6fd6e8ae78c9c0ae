/* The recur.core module: every binding file adds its functions to one table. */
#include "lua_recur.h"
#include "recur/recur_lua.h"
#include "recur/version.h"

/* The one symbol the module exports (the build hides every other: see Makefile and
 * lua_core.map); declared in recur_lua.h for hosts that link it in. */
int luaopen_recur_core(lua_State *L)
{
    /* before anything can call BLAS: OpenBLAS's best kernels on CPUs it predates */
    lrecur_repair_blas_core();
    lua_newtable(L);
    lrecur_open_tensor(L);
    lrecur_open_tensor_ops(L);
    lrecur_open_random(L);
    lrecur_open_runtime(L);
    lrecur_open_rnn(L);
    lrecur_open_bf16(L);
    lrecur_open_nn(L);
    lrecur_open_decode(L);
    lrecur_open_attention(L);
    lrecur_open_optim(L);
    lrecur_open_sys(L);
    lua_pushliteral(L, RECUR_VERSION);
    lua_setfield(L, -2, "version");
    return 1;
}
