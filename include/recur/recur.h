/* recur's C core for hosts that call it without Lua (a game or tool engine, a C++
 * inference server): tensors and their operations, the fused recurrent kernels,
 * embedding, dropout and losses, the optimizer updates. Plain functions over pointers
 * and sizes; none of them touches Lua, prints, exits or keeps global state beyond the
 * tensor block cache.
 *
 * `make install PREFIX=...` puts librecur.so and librecur.a (no Lua inside) under
 * PREFIX/lib, these headers under PREFIX/include/recur/ and recur.pc under
 * PREFIX/lib/pkgconfig, so a host builds with
 *   cc host.c $(pkg-config --cflags --libs recur)
 * and includes <recur/recur.h>; examples/host.c is a complete program. A host on a CPU
 * newer than its OpenBLAS calls recur_blas_repair_core() (runtime.h) before any BLAS
 * call, as the Lua module does when it loads. None of these headers includes
 * <cblas.h>. A host that embeds Lua too preloads the module with recur_lua.h.
 *
 * Each header says what its functions do with zero sizes and NULL pointers (a buffer
 * of zero elements may be NULL; empty work writes nothing); spec/c/capi_test.c checks
 * those promises, under ASan and UBSan in `make sanitize`. */
#ifndef RECUR_H
#define RECUR_H

#include "version.h"
#include "tensor.h"
#include "tensor_ops.h"
#include "rnn.h"
#include "nn.h"
#include "decode.h"
#include "attention.h"
#include "optim.h"
#include "runtime.h"

#endif
