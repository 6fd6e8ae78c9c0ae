/* Tensor operations as plain C kernels over pointers, sizes and strides (in elements):
 * elementwise ops with NumPy broadcasting, reductions, matrix products through CBLAS,
 * softmax. Nothing here knows about Lua; the bindings are in lua_tensor_ops.c.
 *
 * Results never depend on the thread count: parallel loops split work over disjoint
 * outputs, and every sum runs in a fixed order (in double for float tensors).
 *
 * Sizes and pointers (spec/c/capi_test.c): a size of 0 anywhere (or a negative one)
 * means no elements: nothing is read or written and every data pointer may be NULL;
 * each function below says what it returns or writes then. Otherwise data pointers
 * must not be NULL unless said so, and tensors passed by pointer never. */
#ifndef RECUR_TENSOR_OPS_H
#define RECUR_TENSOR_OPS_H

#include <stdint.h>

#include "tensor.h"
#include "export.h"

RECUR_BEGIN_DECLS

/* Below this many elements a loop runs on one thread: starting the team costs more. */
#define RECUR_PARALLEL_MIN 32768
/* The same for loops that do little per element (add, mul, clamp, ...): on 2 idle
 * cores a second thread breaks even at 64K floats and halves the time from 256K on. */
#define RECUR_PARALLEL_MIN_MEMORY (1 << 18)

typedef enum { RECUR_OP_ADD, RECUR_OP_SUB, RECUR_OP_MUL, RECUR_OP_DIV } recur_binop;

typedef enum {
    RECUR_OP_TANH, RECUR_OP_SIGMOID, RECUR_OP_RELU, RECUR_OP_EXP, RECUR_OP_LOG,
    RECUR_OP_SQRT, RECUR_OP_ABS, RECUR_OP_NEG, RECUR_OP_CLAMP
} recur_unop;

/* ---- broadcasting ---- */

/* The NumPy broadcast of shapes a and b written to (*ndim, size); 0 when they are
 * incompatible (a dim differs and neither is 1). */
int recur_broadcast_shape(int ndim_a, const int64_t *size_a, int ndim_b, const int64_t *size_b,
                          int *ndim, int64_t *size);
/* Strides that read a tensor (t_ndim, t_size, t_stride) as the broadcast shape
 * (ndim, size): 0 on every dim the tensor lacks or has size 1. */
void recur_broadcast_strides(int t_ndim, const int64_t *t_size, const int64_t *t_stride,
                             int ndim, const int64_t *size, int64_t *stride);

/* ---- elementwise ---- */

/* out = a + alpha*b, a - alpha*b, a*b or a/b elementwise over the shape (ndim, size),
 * every operand of `dtype` with its own strides (0 broadcasts; a number is a one-element
 * buffer with all strides 0). alpha points to one element of dtype and is read by add
 * and sub only; NULL means 1. out may be a itself (same strides) for the in-place forms.
 * ndim 0 is one element (size and the strides may then be NULL). int64 wraps around on
 * overflow. Returns 0, or -1 for div on int64 (integer division is not offered). */
int recur_binary(recur_binop op, recur_dtype dtype, const void *alpha, int ndim,
                 const int64_t *size, void *out, const int64_t *out_stride, const void *a,
                 const int64_t *a_stride, const void *b, const int64_t *b_stride);

/* out = op(x) elementwise; lo and hi (one element of dtype each) are the clamp bounds,
 * read by clamp only (NULL otherwise is fine). int64 supports abs, neg and clamp only.
 * Returns 0, or -1 for an unsupported pair or a clamp with a NULL bound. */
int recur_unary(recur_unop op, recur_dtype dtype, const void *lo, const void *hi, int ndim,
                const int64_t *size, void *out, const int64_t *out_stride, const void *x,
                const int64_t *x_stride);

/* ---- whole-tensor reductions (any strides) ----
 * Of an empty tensor: sum 0, norm 0, argext -1, allclose 1 (when the shapes broadcast). */

double recur_sum(const recur_tensor *t);        /* float types, in double */
int64_t recur_sum_i64(const recur_tensor *t);    /* int64 tensors, wraps on overflow */
double recur_norm(const recur_tensor *t);       /* sqrt of the sum of squares, in double */
/* 0-based flat (row-major) index of the first largest (is_min: smallest) element, a NaN
 * counting as largest and smallest; -1 when t is empty. */
int64_t recur_argext(const recur_tensor *t, int is_min);
/* 1 when |a - b| <= atol + rtol*|b| for every pair of the broadcast (dtypes may differ;
 * equal infinities are close, NaN is never close), 0 when not, -1 when the shapes do
 * not broadcast. */
int recur_allclose(const recur_tensor *a, const recur_tensor *b, double rtol, double atol);

/* ---- reductions along one dim ----
 * x is contiguous and seen as (outer, len, inner) = (O,K,I); the reduction runs over K.
 * (The parameters are not named I: complex.h, pulled in by cblas.h, defines I.) */

/* out is (O,I): sums (in double for floats), divided by K when mean (floats only).
 * O or I of 0: nothing written; K = 0: zeros (NaN for a mean), x may be NULL. */
void recur_sum_dim(recur_dtype dtype, const void *x, void *out, int64_t outer, int64_t len,
                   int64_t inner, int mean);
/* values (O,I) of dtype, may be NULL; indices (O,I) 1-based along K, may be NULL.
 * First occurrence wins; a NaN wins over numbers. K, O or I of 0: nothing is written
 * (an empty set has no extremum; callers refuse K = 0). */
void recur_max_dim(recur_dtype dtype, const void *x, void *values, int64_t *indices,
                   int64_t outer, int64_t len, int64_t inner, int is_min);

/* softmax (or log_softmax when log) over K of x (O,K,I) into a contiguous out of the
 * same shape; floats only. Subtracts the max, sums the exponentials in double. O, K or
 * I of 0: nothing to write. */
void recur_softmax(recur_dtype dtype, const void *x, void *out, int64_t outer, int64_t len,
                   int64_t inner, int log);

/* ---- matrix products ---- */

/* How BLAS reads a (rows x cols) matrix with strides (s0, s1) in place: returns 1 with
 * *trans = 0, *ld = s0 (row-major) or *trans = 1, *ld = s1 (a transposed row-major
 * matrix); 0 when the layout needs a contiguous copy. */
int recur_blas_layout(int64_t rows, int64_t cols, int64_t s0, int64_t s1, int *trans,
                      int64_t *ld);

/* For each of `batch` matrices: c = beta*c + alpha*op(a) op(b) with op(a) (M,K), op(b)
 * (K,N), c (M,N) row-major with leading dimension ldc; a and b are read as described by
 * trans_*, ld* (see recur_blas_layout); *_bstride step between matrices of the batch.
 * float32/float64; every size and ld must fit in an int (CBLAS). batch, M or N of 0:
 * nothing is read or written; K = 0: c = beta*c (beta 0 writes zeros, even over NaN),
 * and a and b may be NULL. */
void recur_gemm(recur_dtype dtype, int64_t batch, int64_t M, int64_t N, int64_t K, double alpha,
                const void *a, int64_t a_bstride, int trans_a, int64_t lda,
                const void *b, int64_t b_bstride, int trans_b, int64_t ldb,
                double beta, void *c, int64_t c_bstride, int64_t ldc);

/* recur_gemm with a bias row of N values (dtype's, contiguous) added to every row of
 * every c: c = beta*c + alpha*op(a) op(b) + bias. bias NULL is recur_gemm. A linear
 * layer's y = x W^T + b in one pass over y: the float32 kernel starts each sum from
 * b, as PyTorch's addmm does. */
void recur_gemm_bias(recur_dtype dtype, int64_t batch, int64_t M, int64_t N, int64_t K, double alpha,
                     const void *a, int64_t a_bstride, int trans_a, int64_t lda,
                     const void *b, int64_t b_bstride, int trans_b, int64_t ldb,
                     double beta, void *c, int64_t c_bstride, int64_t ldc, const void *bias);

RECUR_END_DECLS

#endif
