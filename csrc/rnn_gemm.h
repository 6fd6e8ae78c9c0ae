/* The recurrent kernels' products in float32 (csrc/rnn_gemm.c): the per-step ones
 * against a weight matrix packed once per sequence, and (rnn_gemm_blocked, at the end)
 * the ones over all T*B rows at once. Not a public header.
 *
 * Every step of a recurrent layer multiplies a few rows (the batch, or a thread's share
 * of it) by the same weights. A BLAS GEMM repacks its whole right operand on every call,
 * which for a few rows costs as much as the arithmetic. Here the weights are packed once
 * per forward or backward into panels of RNN_PANEL columns, K values deep, and every
 * step runs a register-blocked kernel straight over the panels: AVX-512 or AVX2 with
 * FMA, picked at run time. A step of a 128-unit LSTM, (25,128) x (128,512) on one thread
 * of a Zen 5: OpenBLAS 0.3.21 (Haswell kernels) 50 us, the AVX2 kernel 37 us, the
 * AVX-512 one 19 us. Without AVX2 and FMA, rnn_gemm_packed_available() is 0 and the
 * callers use BLAS.
 *
 * Each element of C is one FMA chain over k = 0..K-1 in order, starting from C (or 0),
 * in both instruction sets, so results do not depend on which one runs nor on the
 * thread count. */
#ifndef RECUR_RNN_GEMM_H
#define RECUR_RNN_GEMM_H

#include <stddef.h>

#define RNN_PANEL 32

/* 1 when the CPU runs the packed kernels (AVX2 and FMA, or AVX-512). */
int rnn_gemm_packed_available(void);

/* For tests: with want = 2, use the AVX2 kernels even where AVX-512 is there. Returns
 * the level in use: 3 AVX-512, 2 AVX2, 0 none. */
int rnn_gemm_use_level(int want);

/* Floats of a packed (K,N) operand: N rounded up to whole panels, times K. */
size_t rnn_gemm_packed_size(int N, int K);

/* Packs the right operand of C = A op(W): W is (N,K) with row stride ldw when trans
 * (op(W) = W^T), else (K,N) with row stride ldw. Columns past N are zeros. Only part
 * `part` of `parts` of the panels, so that threads can share the work (0, 1: all). */
void rnn_gemm_pack(float *packed, const float *W, int ldw, int trans, int N, int K, int part,
                   int parts);

/* C (M,N) = A (M,K) op(W) + S, op(W) packed by rnn_gemm_pack, where S is the row bias
 * (N) repeated when bias is given, else C when accumulate, else 0. A and C row-major
 * with row strides lda, ldc. With par, an OpenMP loop over the panels (outside a
 * parallel region). */
void rnn_gemm_packed(int M, int N, int K, const float *A, int lda, const float *packed,
                     const float *bias, int accumulate, float *C, int ldc, int par);

/* Panels q0..q1-1 of the same product (its columns q0*RNN_PANEL up to q1*RNN_PANEL or
 * N): a thread's share of a step when the threads split the units, not the batch. */
void rnn_gemm_packed_panels(int M, int N, int K, const float *A, int lda, const float *packed,
                            const float *bias, int accumulate, float *C, int ldc, int q0, int q1);

/* Columns n0..n1-1 of C (M,N) = A (M,K) op(W) + S for a few rows (3 at a time),
 * straight from W as stored (no packing: a batch-1 step reads W once, as a GEMV does),
 * rows ldw apart: W (N,K) when trans (op(W) = W^T), else (K,N); S the row bias when
 * given, else C when accumulate, else 0. Transposed, each element is a dot product
 * over k in 16 lanes (lane l sums k = l, l+16, ... in order) whose lanes are added in
 * one fixed order, then added to S; otherwise one chain over k in order from S, as in
 * the packed kernels. Either way the same in both instruction sets and however the
 * columns are shared out. */
void rnn_gemm_few(int trans, int M, int n0, int n1, int K, const float *A, int lda, const float *W,
                  int ldw, const float *bias, int accumulate, float *C, int ldc);

/* The products over all T*B rows at once: C (M,N) = op(A) (M,K) op(B) (K,N) + S, with
 * S the row bias (N) repeated when bias is given, else C when accumulate, else 0; A is
 * stored (K,M) when ta (op(A) = A^T) else (M,K), B (N,K) when tb else (K,N), row-major
 * with row strides lda, ldb; C with ldc. Used for the weight gradients (dW += dG^T x),
 * and for the input projection and dx where the steps do not do them. K may be large
 * (T*B) and M too, so this is a blocked GEMM: up to 512 values of k at a time, the block of
 * op(B) packed into panels, op(A) packed 12 (AVX-512) or 6 (AVX2) rows at a time, and a
 * 12 x 32 or 6 x 16 block of C in registers. Every element of C is one FMA chain over k in
 * order, starting from S, whatever the instruction set, the blocking or the split: the
 * rows of C are shared out as `part` of `parts` (0, 1: all), so that results do not
 * depend on the thread count. Only where rnn_gemm_packed_available(). */
void rnn_gemm_blocked(int ta, int tb, int M, int N, int K, const float *A, int lda,
                      const float *B, int ldb, const float *bias, int accumulate, float *C, int ldc,
                      int part, int parts);
/* Two products with the same left operand, C1 (M,N1) = op(A) B1 + S1 and C2 (M,N2) =
 * op(A) B2 + S2 (B1, B2 not transposed; S: C when accumulate, else 0), with the same
 * chains as two calls of rnn_gemm_blocked but each block of op(A) packed once for both:
 * an LSTM's dW_ih and dW_hh both take dG^T on the left, and packing it took 6% of a
 * small language model's training step (3 x 128). With db1 (M), the row sums of op(A)
 * too, each a sum over k in order from 0 then added to db1[m] (and to db2[m] unless
 * NULL): the biases' gradient, added up while op(A) is packed instead of in a pass
 * over dG of its own. Rows shared as rnn_gemm_blocked's. */
void rnn_gemm_blocked_pair(int ta, int M, int K, const float *A, int lda, int N1, const float *B1,
                           int ldb1, float *C1, int ldc1, int N2, const float *B2, int ldb2,
                           float *C2, int ldc2, int accumulate, float *db1, float *db2, int part,
                           int parts);

#endif
