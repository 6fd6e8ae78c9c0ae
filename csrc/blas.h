/* Matrix products through CBLAS, with the single-row case sent to GEMV.
 *
 * A product with one row (batch-1 generation, a single step of a recurrent layer) is
 * a matrix-vector product. OpenBLAS's sgemm packs all of op(B) into its panel layout
 * on every call, which for a (1,K)x(K,N) product costs as much memory traffic as the
 * product itself: measured on a 2-layer 512 LSTM sampling at batch 1, that packing
 * was half the time per token. GEMV reads op(B) once in place.
 *
 * The signatures are cblas_?gemm's, so the functions drop in for them. */
#ifndef RECUR_BLAS_H
#define RECUR_BLAS_H

#include <string.h>

#include <cblas.h>

#include "recur/runtime.h" /* recur_blas_repair_core, defined in blas_core.c */

#define RECUR_DEFINE_GEMM(name, real, gemm, gemv)                                             \
    static inline void name(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta,                   \
                            enum CBLAS_TRANSPOSE tb, int M, int N, int K, real alpha,          \
                            const real *A, int lda, const real *B, int ldb, real beta,         \
                            real *C, int ldc)                                                  \
    {                                                                                          \
        if (order != CblasRowMajor || M != 1 || K == 0) {                                      \
            gemm(order, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);                 \
            return;                                                                            \
        }                                                                                      \
        /* c (1,N) = alpha a (1,K) op(B) (K,N) + beta c, i.e. c' = alpha op(B)' a' + beta c'. \
         * a's K values are adjacent unless A is stored transposed, (K,1) with stride lda. */ \
        int inc_a = ta == CblasNoTrans ? 1 : lda;                                              \
        /* BLAS leaves beta = 0 to the implementation; clear C so a NaN there cannot     \
         * survive as NaN * 0, as GEMM guarantees. */                                         \
        if (beta == 0) memset(C, 0, (size_t)N * sizeof(real));                                 \
        if (tb == CblasTrans) /* B is (N,K): c' = B a' */                                     \
            gemv(CblasRowMajor, CblasNoTrans, N, K, alpha, B, ldb, A, inc_a, beta, C, 1);      \
        else /* B is (K,N): c' = B' a' */                                                     \
            gemv(CblasRowMajor, CblasTrans, K, N, alpha, B, ldb, A, inc_a, beta, C, 1);        \
    }

RECUR_DEFINE_GEMM(recur_sgemm, float, cblas_sgemm, cblas_sgemv)
RECUR_DEFINE_GEMM(recur_dgemm, double, cblas_dgemm, cblas_dgemv)

#undef RECUR_DEFINE_GEMM

#endif
