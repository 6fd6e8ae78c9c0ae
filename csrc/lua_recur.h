/* Helpers shared by the Lua binding files (csrc/lua_*.c), defined in lua_util.c.
 * Kernels never include this.
 *
 * What every binding keeps to, so that no plain Lua call crashes the process:
 * tensors come through lrecur_check_tensor / lrecur_opt_tensor (a closed tensor is an
 * error, never "absent"); sizes through lrecur_check_size / lrecur_check_numel (no
 * shape whose product of non-zero sizes passes RECUR_MAX_NUMEL, so strides, offsets and
 * byte counts never overflow); dims and indices through lrecur_check_dim /
 * lrecur_check_index; a Lua number becomes an int64 only through lrecur_check_int64 /
 * lrecur_number_to_int64 (NaN, infinities, fractions and out-of-range values are
 * errors); a tensor handed back to a kernel (an output buffer, saved state) has its
 * dtype and shape checked against what the kernel will touch. */
#ifndef RECUR_LUA_RECUR_H
#define RECUR_LUA_RECUR_H

#include <lua.h>
#include <lauxlib.h>

#include "recur/rnn.h"
#include "recur/tensor.h"

#define RECUR_TENSOR_MT "recur.Tensor"

/* The tensor at stack index arg, or a "bad argument" error naming the function (also
 * for a closed tensor). */
recur_tensor *lrecur_check_tensor(lua_State *L, int arg);
/* The tensor at arg, or NULL when the value is not a tensor; a closed tensor is an
 * error, not NULL. */
recur_tensor *lrecur_test_tensor(lua_State *L, int arg);
/* NULL for nil or none; the tensor when it is an open one; otherwise an error
 * "<op>: <what> is a closed tensor" or "<op>: <what> expected a tensor, got <type>". */
recur_tensor *lrecur_opt_tensor(lua_State *L, const char *op, int arg, const char *what);

/* Pushes a new contiguous zero-filled tensor; raises "out of memory" on failure
 * and an error naming `op` if the sizes are negative or overflow. */
recur_tensor *lrecur_push_new(lua_State *L, const char *op, recur_dtype dtype, int ndim,
                              const int64_t *size);
/* Pushes the result tensor of a binding: the tensor at `arg` when one is given there,
 * has the dtype and shape asked for, is contiguous and shares no storage with `avoid`
 * or `avoid2` (arguments the result is computed from; either may be NULL); otherwise a
 * new zero-filled tensor. The given tensor keeps its contents: callers that accumulate
 * into the result zero it. Modules pass their previous output, so that a training loop
 * reuses one block instead of allocating and page-faulting a new one every step. */
recur_tensor *lrecur_push_result(lua_State *L, const char *op, int arg, recur_dtype dtype,
                                 int ndim, const int64_t *size, const recur_tensor *avoid,
                                 const recur_tensor *avoid2);
/* Pushes a new contiguous tensor with the same shape and dtype as t. */
recur_tensor *lrecur_push_like(lua_State *L, const char *op, const recur_tensor *t);
/* Pushes a view sharing t's storage (sizes/strides copied; caller may edit them). */
recur_tensor *lrecur_push_view(lua_State *L, const recur_tensor *t);
/* t itself when contiguous, otherwise a pushed contiguous copy (check lua_gettop
 * if you need to know which). */
recur_tensor *lrecur_contiguous(lua_State *L, recur_tensor *t);

/* Once per process, before any BLAS call: recur_blas_repair_core (blas.h). */
void lrecur_repair_blas_core(void);

/* Tells the collector about `bytes` of tensor storage just allocated (lua_util.c says
 * how this paces both collector modes without changing the host's mode). */
void lrecur_gc_charge(lua_State *L, size_t bytes);

/* Element count of a shape, or an error naming `op` when ndim is out of 0..8, a size is
 * negative or the sizes overflow (recur_numel_of). */
int64_t lrecur_check_numel(lua_State *L, const char *op, int ndim, const int64_t *size);
/* Reads a shape given as numbers starting at `arg` or as one table at `arg` (integers
 * >= 0, integral floats taken), checked by lrecur_check_numel. Returns the index of
 * the first argument after it. */
int lrecur_check_size(lua_State *L, const char *op, int arg, int64_t *size, int *ndim);
/* 0-based dim from the 1-based (negative: from the end) dim at arg. */
int lrecur_check_dim(lua_State *L, const char *op, const recur_tensor *t, int arg);
/* 0-based index along dim d of the 1-based (negative: from the end) index i. */
int64_t lrecur_check_index(lua_State *L, const char *op, const recur_tensor *t, int d,
                           lua_Integer i);
/* A number as int64, or "<op>: cannot convert nan to int64" (also infinities, fractions
 * and values outside the int64 range). */
int64_t lrecur_number_to_int64(lua_State *L, const char *op, lua_Number x);
/* The number at arg as int64 (integers exactly, floats by lrecur_number_to_int64). */
int64_t lrecur_check_int64(lua_State *L, const char *op, int arg);

/* Optional dtype name ("float32", "float64", "int64") at arg. */
recur_dtype lrecur_opt_dtype(lua_State *L, int arg, recur_dtype def);

/* Shape text such as "(3x4)" written into buf; returns buf. */
const char *lrecur_shape_str(const recur_tensor *t, char *buf, size_t len);

/* Note: luaL_error formats with lua_pushfstring, which knows only %d (int), %I
 * (lua_Integer), %f (lua_Number), %s, %c, %p, %U and %%: cast sizes to
 * (lua_Integer) and print them with %I, never %lld or %g. */

/* Errors naming the operation: "<op>: expected ..., got ..." */
void lrecur_check_dtype(lua_State *L, const char *op, const char *what, const recur_tensor *t,
                        recur_dtype dtype);
void lrecur_check_same_dtype(lua_State *L, const char *op, const recur_tensor *a,
                             const recur_tensor *b);
/* Checks ndim and each size; a size of -1 in `size` means "any". */
void lrecur_check_shape(lua_State *L, const char *op, const char *what, const recur_tensor *t,
                        int ndim, const int64_t *size);
void lrecur_check_contiguous(lua_State *L, const char *op, const char *what,
                             const recur_tensor *t);

/* The lua_State's generator (one per state, kept in the registry). */
recur_rng *lrecur_rng(lua_State *L);

/* Thread count used by OpenMP loops and OpenBLAS. */
int recur_get_num_threads(void);
void recur_set_num_threads(int n);

/* Registration hooks, one per binding file; each adds its functions to the
 * table on top of the stack (the recur.core module table). */
void lrecur_open_tensor(lua_State *L);
void lrecur_open_random(lua_State *L);
void lrecur_open_runtime(lua_State *L);
/* Called after lrecur_open_tensor: adds the operations (elementwise, reductions,
 * matmul, softmax, ...) to the tensor methods table, the metamethods to the
 * tensor metatable, and the module-level ones to the table on top of the stack. */
void lrecur_open_tensor_ops(lua_State *L);
/* The methods table of tensors (the metatable's __index), pushed on the stack. */
void lrecur_push_tensor_methods(lua_State *L);
void lrecur_open_rnn(lua_State *L);
void lrecur_open_bf16(lua_State *L);

/* core.rnn_layer's forward with bf16 products and float32 everything else, for training
 * (lua_bf16.c, csrc/bf16_rnn.h): the bf16 matrices at arg (and arg + 1 for the gru),
 * checked against the layer; the workspace in bytes; the forward, which fills hn, cn
 * from h0, c0 and the saved buffer as recur_rnn_forward_f32 does. */
typedef struct {
    const uint32_t *w, *whh;
} lrecur_bf16_layer;
void lrecur_bf16_layer_check(lua_State *L, const char *op, int arg, recur_rnn_cell cell, int D,
                             int H, lrecur_bf16_layer *out);
size_t lrecur_bf16_layer_work(recur_rnn_cell cell, int T, int B, int D, int H);
void lrecur_bf16_layer_forward(const lrecur_bf16_layer *wts, recur_rnn_cell cell, float *y,
                               float *hn, float *cn, float *saved, const float *x,
                               const float *b_ih, const float *b_hh, const float *h0,
                               const float *c0, const int64_t *lengths, int reverse, int T, int B,
                               int D, int H, void *work);
void lrecur_open_nn(lua_State *L);
void lrecur_open_decode(lua_State *L);
void lrecur_open_attention(lua_State *L);
void lrecur_open_optim(lua_State *L);
void lrecur_open_sys(lua_State *L);

#endif
