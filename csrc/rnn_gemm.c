/* Per-step products against a packed weight matrix (see rnn_gemm.h).
 *
 * Packed layout: panel p holds columns p*RNN_PANEL .. p*RNN_PANEL+31 of op(W), row k
 * of the panel (32 floats) at packed + (p*K + k)*32, zeros past column N. A kernel
 * keeps an MR x 32 block of C in registers (MR <= 6: 12 vector accumulators, enough
 * independent FMA chains to cover their latency) and runs k over the panel, one row of
 * 32 weights loaded and MR values of A broadcast per k. The rows of A are split into
 * blocks as equal as possible of at most 6 (25 rows: five of 5; 7: 4 and 3), so that no
 * block is a lone row whose two chains would wait on their own latency (unless M is 1).
 * With 32 columns the AVX2 kernel runs as two halves of 16. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rnn_gemm.h"

#define MR_MAX 6

size_t rnn_gemm_packed_size(int N, int K)
{
    return (size_t)(N + RNN_PANEL - 1) / RNN_PANEL * RNN_PANEL * (size_t)K;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* 2 with AVX2 and FMA, 3 with AVX-512F as well, else 0; looked up once */
static int level = -1;

static int cpu_level(void)
{
    int l = __atomic_load_n(&level, __ATOMIC_RELAXED);
    if (l < 0) {
        __builtin_cpu_init();
        l = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
                ? (__builtin_cpu_supports("avx512f") ? 3 : 2)
                : 0;
        __atomic_store_n(&level, l, __ATOMIC_RELAXED);
    }
    return l;
}

/* C (MR,32) = A (MR,K) P (K,32) + (bias row | C | 0); columns past ncols are neither
 * read nor written. */
__attribute__((target("avx512f"), always_inline)) static inline void
kernel_avx512(const int MR, int K, const float *A, int lda, const float *P, float *C, int ldc,
              int ncols, const float *bias, int accumulate)
{
    const __mmask16 m0 = ncols >= 16 ? 0xFFFF : (__mmask16)((1u << ncols) - 1);
    const __mmask16 m1 = ncols >= 32 ? 0xFFFF : ncols > 16 ? (__mmask16)((1u << (ncols - 16)) - 1) : 0;
    __m512 c0[MR_MAX], c1[MR_MAX];
    for (int i = 0; i < MR; i++) {
        if (bias) {
            c0[i] = _mm512_maskz_loadu_ps(m0, bias);
            c1[i] = _mm512_maskz_loadu_ps(m1, bias + 16);
        } else if (accumulate) {
            c0[i] = _mm512_maskz_loadu_ps(m0, C + (size_t)i * ldc);
            c1[i] = _mm512_maskz_loadu_ps(m1, C + (size_t)i * ldc + 16);
        } else {
            c0[i] = _mm512_setzero_ps();
            c1[i] = _mm512_setzero_ps();
        }
    }
    for (int k = 0; k < K; k++) {
        __m512 b0 = _mm512_loadu_ps(P + (size_t)k * RNN_PANEL);
        __m512 b1 = _mm512_loadu_ps(P + (size_t)k * RNN_PANEL + 16);
        for (int i = 0; i < MR; i++) {
            __m512 a = _mm512_set1_ps(A[(size_t)i * lda + k]);
            c0[i] = _mm512_fmadd_ps(a, b0, c0[i]);
            c1[i] = _mm512_fmadd_ps(a, b1, c1[i]);
        }
    }
    for (int i = 0; i < MR; i++) {
        _mm512_mask_storeu_ps(C + (size_t)i * ldc, m0, c0[i]);
        _mm512_mask_storeu_ps(C + (size_t)i * ldc + 16, m1, c1[i]);
    }
}

/* 16 floats of a row of C at p, as two vectors: whole, or the columns the masks keep
 * (masked moves are slow on some CPUs: only at the edges). */
__attribute__((target("avx2,fma"), always_inline)) static inline void
load16_avx2(const float *p, int full, __m256i m0, __m256i m1, __m256 *lo, __m256 *hi)
{
    *lo = full ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, m0);
    *hi = full ? _mm256_loadu_ps(p + 8) : _mm256_maskload_ps(p + 8, m1);
}

__attribute__((target("avx2,fma"), always_inline)) static inline void
store16_avx2(float *p, int full, __m256i m0, __m256i m1, __m256 lo, __m256 hi)
{
    if (full) {
        _mm256_storeu_ps(p, lo);
        _mm256_storeu_ps(p + 8, hi);
    } else {
        _mm256_maskstore_ps(p, m0, lo);
        _mm256_maskstore_ps(p + 8, m1, hi);
    }
}

/* The same for 16 columns, P's rows RNN_PANEL apart (half a panel). */
__attribute__((target("avx2,fma"), always_inline)) static inline void
kernel_avx2(const int MR, int K, const float *A, int lda, const float *P, float *C, int ldc,
            int ncols, const float *bias, int accumulate)
{
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(ncols), lane);
    const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(ncols - 8), lane);
    const int full = ncols >= 16;
    __m256 c0[MR_MAX], c1[MR_MAX];
    for (int i = 0; i < MR; i++) {
        const float *C_i = bias ? bias : C + (size_t)i * ldc; /* where the sums start */
        if (!bias && !accumulate) {
            c0[i] = _mm256_setzero_ps();
            c1[i] = _mm256_setzero_ps();
        } else {
            load16_avx2(C_i, full, m0, m1, &c0[i], &c1[i]);
        }
    }
    for (int k = 0; k < K; k++) {
        __m256 b0 = _mm256_loadu_ps(P + (size_t)k * RNN_PANEL);
        __m256 b1 = _mm256_loadu_ps(P + (size_t)k * RNN_PANEL + 8);
        for (int i = 0; i < MR; i++) {
            __m256 a = _mm256_broadcast_ss(A + (size_t)i * lda + k);
            c0[i] = _mm256_fmadd_ps(a, b0, c0[i]);
            c1[i] = _mm256_fmadd_ps(a, b1, c1[i]);
        }
    }
    for (int i = 0; i < MR; i++) store16_avx2(C + (size_t)i * ldc, full, m0, m1, c0[i], c1[i]);
}

/* One panel's columns of C for all M rows, in row blocks of at most MR_MAX. */
#define RNN_PANEL_ROWS(kernel, ...)                                                      \
    do {                                                                                 \
        const int nblk = (M + MR_MAX - 1) / MR_MAX;                                      \
        for (int blk = 0, i = 0; blk < nblk; blk++) {                                    \
            const int mr = M / nblk + (blk < M % nblk);                                  \
            const float *A_i = A + (size_t)i * lda;                                      \
            float *C_i = C + (size_t)i * ldc;                                            \
            switch (mr) {                                                                \
            case 6: kernel(6, K, A_i, lda, P, C_i, ldc, __VA_ARGS__); break;             \
            case 5: kernel(5, K, A_i, lda, P, C_i, ldc, __VA_ARGS__); break;             \
            case 4: kernel(4, K, A_i, lda, P, C_i, ldc, __VA_ARGS__); break;             \
            case 3: kernel(3, K, A_i, lda, P, C_i, ldc, __VA_ARGS__); break;             \
            case 2: kernel(2, K, A_i, lda, P, C_i, ldc, __VA_ARGS__); break;             \
            default: kernel(1, K, A_i, lda, P, C_i, ldc, __VA_ARGS__); break;            \
            }                                                                            \
            i += mr;                                                                     \
        }                                                                                \
    } while (0)

__attribute__((target("avx512f"), noinline)) static void
panel_avx512(int M, int K, const float *A, int lda, const float *P, float *C, int ldc,
             int ncols, const float *bias, int accumulate)
{
    RNN_PANEL_ROWS(kernel_avx512, ncols, bias, accumulate);
}

__attribute__((target("avx2,fma"), noinline)) static void
panel_avx2(int M, int K, const float *A, int lda, const float *P, float *C, int ldc, int ncols,
           const float *bias, int accumulate)
{
    RNN_PANEL_ROWS(kernel_avx2, ncols, bias, accumulate);
}

/* ---- a few rows straight from the weights (rnn_gemm_few) ---------------------------- */

/* The 16 partial sums of a dot product, as lanes s[0..15], added in one fixed order
 * in both instruction sets: s[l] + s[l+8], then + the sum 4 lanes on, then 2, then 1. */
__attribute__((target("avx"), always_inline)) static inline float
lanes_sum_avx2(__m256 lo, __m256 hi)
{
    __m256 s8 = _mm256_add_ps(lo, hi);
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    __m128 s1 = _mm_add_ss(s2, _mm_movehdup_ps(s2));
    return _mm_cvtss_f32(s1);
}

__attribute__((target("avx512f"), always_inline)) static inline float lanes_sum_avx512(__m512 s)
{
    __m256 lo = _mm512_castps512_ps256(s);
    __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(s), 1));
    return lanes_sum_avx2(lo, hi);
}

/* Where a few rows' sum starts: the bias, C, or nothing */
static inline float few_start(const float *bias, int accumulate, const float *C, int n)
{
    return bias ? bias[n] : accumulate ? C[n] : 0.0f;
}

/* C[i][n] for MR rows of A and NR consecutive rows n of W (N,K): dot products over k,
 * lane l of 16 summing k = l, l+16, ... in order, then the lanes (lanes_sum). */
__attribute__((target("avx512f"), always_inline)) static inline void
dot_avx512(const int MR, const int NR, int K, const float *A, int lda, const float *W, int ldw,
           float *C, int ldc, const float *bias, int accumulate)
{
    __m512 acc[3][4];
    for (int i = 0; i < MR; i++)
        for (int r = 0; r < NR; r++) acc[i][r] = _mm512_setzero_ps();
    int k = 0;
    for (; k + 16 <= K; k += 16) {
        __m512 w[4];
        for (int r = 0; r < NR; r++) w[r] = _mm512_loadu_ps(W + (size_t)r * ldw + k);
        for (int i = 0; i < MR; i++) {
            __m512 a = _mm512_loadu_ps(A + (size_t)i * lda + k);
            for (int r = 0; r < NR; r++) acc[i][r] = _mm512_fmadd_ps(a, w[r], acc[i][r]);
        }
    }
    if (k < K) { /* the last K % 16 values of k, zeros in the other lanes */
        const __mmask16 m = (__mmask16)((1u << (K - k)) - 1);
        __m512 w[4];
        for (int r = 0; r < NR; r++) w[r] = _mm512_maskz_loadu_ps(m, W + (size_t)r * ldw + k);
        for (int i = 0; i < MR; i++) {
            __m512 a = _mm512_maskz_loadu_ps(m, A + (size_t)i * lda + k);
            for (int r = 0; r < NR; r++) acc[i][r] = _mm512_fmadd_ps(a, w[r], acc[i][r]);
        }
    }
    for (int i = 0; i < MR; i++)
        for (int r = 0; r < NR; r++) {
            float *c = C + (size_t)i * ldc;
            c[r] = few_start(bias, accumulate, c, r) + lanes_sum_avx512(acc[i][r]);
        }
}

/* The same with each 16 lanes as two vectors of 8 */
__attribute__((target("avx2,fma"), always_inline)) static inline void
dot_avx2(const int MR, const int NR, int K, const float *A, int lda, const float *W, int ldw,
         float *C, int ldc, const float *bias, int accumulate)
{
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256 lo[3][4], hi[3][4];
    for (int i = 0; i < MR; i++)
        for (int r = 0; r < NR; r++) lo[i][r] = hi[i][r] = _mm256_setzero_ps();
    for (int k = 0; k < K; k += 16) {
        const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(K - k), lane);
        const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(K - k - 8), lane);
        for (int r = 0; r < NR; r++) {
            const float *w = W + (size_t)r * ldw + k;
            __m256 w0 = _mm256_maskload_ps(w, m0), w1 = _mm256_maskload_ps(w + 8, m1);
            for (int i = 0; i < MR; i++) {
                const float *a = A + (size_t)i * lda + k;
                lo[i][r] = _mm256_fmadd_ps(_mm256_maskload_ps(a, m0), w0, lo[i][r]);
                hi[i][r] = _mm256_fmadd_ps(_mm256_maskload_ps(a + 8, m1), w1, hi[i][r]);
            }
        }
    }
    for (int i = 0; i < MR; i++)
        for (int r = 0; r < NR; r++) {
            float *c = C + (size_t)i * ldc;
            c[r] = few_start(bias, accumulate, c, r) + lanes_sum_avx2(lo[i][r], hi[i][r]);
        }
}

/* C (MR, up to NP*32 columns, ncols of them) = A W + S, W (K,N) as stored, rows ldw
 * apart, starting at column n0 of W and C: NP blocks of 32 columns side by side, each
 * element one chain over k in order (as kernel_avx512 over a packed panel). With fewer
 * than 4 rows one block's 2*MR chains would wait on their own latency. */
__attribute__((target("avx512f"), always_inline)) static inline void
axpy_avx512(const int MR, const int NP, int K, const float *A, int lda, const float *W, int ldw,
            float *C, int ldc, int ncols, const float *bias, int accumulate)
{
    __mmask16 m[8];
    __m512 c[3][8];
    for (int v = 0; v < 2 * NP; v++) {
        const int left = ncols - 16 * v;
        m[v] = left >= 16 ? 0xFFFF : left > 0 ? (__mmask16)((1u << left) - 1) : 0;
    }
    for (int i = 0; i < MR; i++)
        for (int v = 0; v < 2 * NP; v++) {
            if (bias) c[i][v] = _mm512_maskz_loadu_ps(m[v], bias + 16 * v);
            else if (accumulate) c[i][v] = _mm512_maskz_loadu_ps(m[v], C + (size_t)i * ldc + 16 * v);
            else c[i][v] = _mm512_setzero_ps();
        }
    const int full = ncols == 32 * NP; /* masked loads only at the right edge */
    for (int k = 0; k < K; k++) {
        __m512 b[8];
        for (int v = 0; v < 2 * NP; v++)
            b[v] = full ? _mm512_loadu_ps(W + (size_t)k * ldw + 16 * v)
                        : _mm512_maskz_loadu_ps(m[v], W + (size_t)k * ldw + 16 * v);
        for (int i = 0; i < MR; i++) {
            __m512 a = _mm512_set1_ps(A[(size_t)i * lda + k]);
            for (int v = 0; v < 2 * NP; v++) c[i][v] = _mm512_fmadd_ps(a, b[v], c[i][v]);
        }
    }
    for (int i = 0; i < MR; i++)
        for (int v = 0; v < 2 * NP; v++)
            _mm512_mask_storeu_ps(C + (size_t)i * ldc + 16 * v, m[v], c[i][v]);
}

/* The same, 16 columns (two vectors of 8) at a time */
__attribute__((target("avx2,fma"), always_inline)) static inline void
axpy_avx2(const int MR, int K, const float *A, int lda, const float *W, int ldw, float *C,
          int ldc, int ncols, const float *bias, int accumulate)
{
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(ncols), lane);
    const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(ncols - 8), lane);
    __m256 c0[3], c1[3];
    for (int i = 0; i < MR; i++) {
        const float *S = bias ? bias : C + (size_t)i * ldc;
        c0[i] = bias || accumulate ? _mm256_maskload_ps(S, m0) : _mm256_setzero_ps();
        c1[i] = bias || accumulate ? _mm256_maskload_ps(S + 8, m1) : _mm256_setzero_ps();
    }
    for (int k = 0; k < K; k++) {
        __m256 b0 = _mm256_maskload_ps(W + (size_t)k * ldw, m0);
        __m256 b1 = _mm256_maskload_ps(W + (size_t)k * ldw + 8, m1);
        for (int i = 0; i < MR; i++) {
            __m256 a = _mm256_broadcast_ss(A + (size_t)i * lda + k);
            c0[i] = _mm256_fmadd_ps(a, b0, c0[i]);
            c1[i] = _mm256_fmadd_ps(a, b1, c1[i]);
        }
    }
    for (int i = 0; i < MR; i++) {
        _mm256_maskstore_ps(C + (size_t)i * ldc, m0, c0[i]);
        _mm256_maskstore_ps(C + (size_t)i * ldc + 8, m1, c1[i]);
    }
}

/* The kernels above with a constant row count MR of 1, 2 or 3 */
#define RNN_FEW_ROWS(M, call)                                                                \
    do {                                                                                     \
        if ((M) == 1) call(1);                                                               \
        else if ((M) == 2) call(2);                                                          \
        else call(3);                                                                        \
    } while (0)

/* Rows n0..n1-1 of W (N,K) against M rows of A with a dot kernel: `group` rows of W at
 * a time, then one at a time (inside few_avx512 and few_avx2, whose arguments it uses) */
#define RNN_DOT_AT(dot, mr, nr)                                                              \
    dot(mr, nr, K, A, lda, W + (size_t)n * ldw, ldw, C + n, ldc, bias ? bias + n : NULL,     \
        accumulate)
#define RNN_DOT_ROWS(dot, group)                                                             \
    do {                                                                                     \
        int n = n0;                                                                          \
        for (; n + (group) <= n1; n += (group)) {                                            \
            if (M == 1) RNN_DOT_AT(dot, 1, group);                                           \
            else if (M == 2) RNN_DOT_AT(dot, 2, group);                                      \
            else RNN_DOT_AT(dot, 3, group);                                                  \
        }                                                                                    \
        for (; n < n1; n++) {                                                                \
            if (M == 1) RNN_DOT_AT(dot, 1, 1);                                               \
            else if (M == 2) RNN_DOT_AT(dot, 2, 1);                                          \
            else RNN_DOT_AT(dot, 3, 1);                                                      \
        }                                                                                    \
    } while (0)

__attribute__((target("avx512f"), noinline)) static void
few_avx512(int trans, int M, int n0, int n1, int K, const float *A, int lda, const float *W,
           int ldw, const float *bias, int accumulate, float *C, int ldc)
{
    if (trans) {
        /* rows n of W 4 at a time: on a Zen 4 core, 512 KB of w_hh in L2 (a thread's
         * half of a batch-1 LSTM step at H = 256) ran as fast as with 3, about 10%
         * faster than with 2 and 15% faster than with 8 or 12 */
        RNN_DOT_ROWS(dot_avx512, 4);
        return;
    }
    /* columns of W, up to 128 at a time for one row of A, 64 for two or three; no more
     * blocks of 32 than the columns fill */
    const int width = M == 1 ? 128 : 64;
    for (int n = n0; n < n1; n += width) {
        const int ncols = n1 - n < width ? n1 - n : width, blocks = (ncols + 31) / 32;
        const float *b = bias ? bias + n : NULL;
#define RNN_AXPY(mr, np) axpy_avx512(mr, np, K, A, lda, W + n, ldw, C + n, ldc, ncols, b, accumulate)
        if (M == 1 && blocks == 4) RNN_AXPY(1, 4);
        else if (M == 1 && blocks == 3) RNN_AXPY(1, 3);
        else if (M == 1 && blocks == 2) RNN_AXPY(1, 2);
        else if (M == 1) RNN_AXPY(1, 1);
        else if (M == 2) {
            if (blocks == 2) RNN_AXPY(2, 2);
            else RNN_AXPY(2, 1);
        } else {
            if (blocks == 2) RNN_AXPY(3, 2);
            else RNN_AXPY(3, 1);
        }
#undef RNN_AXPY
    }
}

__attribute__((target("avx2,fma"), noinline)) static void
few_avx2(int trans, int M, int n0, int n1, int K, const float *A, int lda, const float *W,
         int ldw, const float *bias, int accumulate, float *C, int ldc)
{
    if (trans) {
        RNN_DOT_ROWS(dot_avx2, 2);
        return;
    }
    for (int n = n0; n < n1; n += 16) {
        const int ncols = n1 - n < 16 ? n1 - n : 16;
        const float *b = bias ? bias + n : NULL;
#define RNN_AXPY(mr) axpy_avx2(mr, K, A, lda, W + n, ldw, C + n, ldc, ncols, b, accumulate)
        RNN_FEW_ROWS(M, RNN_AXPY);
#undef RNN_AXPY
    }
}

void rnn_gemm_few(int trans, int M, int n0, int n1, int K, const float *A, int lda, const float *W,
                  int ldw, const float *bias, int accumulate, float *C, int ldc)
{
    /* more rows (a few sequences' truncation windows) in groups of 3: every element is
     * the same sum in any group */
    for (int i = 0; i < M; i += 3) {
        const int mr = M - i < 3 ? M - i : 3;
        const float *A_i = A + (size_t)i * lda;
        float *C_i = C + (size_t)i * ldc;
        if (cpu_level() == 3)
            few_avx512(trans, mr, n0, n1, K, A_i, lda, W, ldw, bias, accumulate, C_i, ldc);
        else
            few_avx2(trans, mr, n0, n1, K, A_i, lda, W, ldw, bias, accumulate, C_i, ldc);
    }
}

int rnn_gemm_packed_available(void)
{
    return cpu_level() > 0;
}

int rnn_gemm_use_level(int want)
{
    int l = cpu_level();
    if (want == 2 && l >= 2) __atomic_store_n(&level, 2, __ATOMIC_RELAXED);
    return cpu_level();
}

/* Columns p*32 .. p*32+31 of C. */
static void packed_panel(int p, int M, int N, int K, const float *A, int lda, const float *packed,
                         const float *bias, int accumulate, float *C, int ldc)
{
    const int n0 = p * RNN_PANEL, ncols = N - n0 < RNN_PANEL ? N - n0 : RNN_PANEL;
    const float *P = packed + (size_t)p * K * RNN_PANEL;
    const float *b = bias ? bias + n0 : NULL;
    if (cpu_level() == 3) {
        panel_avx512(M, K, A, lda, P, C + n0, ldc, ncols, b, accumulate);
    } else {
        panel_avx2(M, K, A, lda, P, C + n0, ldc, ncols, b, accumulate);
        if (ncols > 16)
            panel_avx2(M, K, A, lda, P + 16, C + n0 + 16, ldc, ncols - 16, b ? b + 16 : NULL,
                       accumulate);
    }
}

void rnn_gemm_packed_panels(int M, int N, int K, const float *A, int lda, const float *packed,
                            const float *bias, int accumulate, float *C, int ldc, int q0, int q1)
{
    for (int p = q0; p < q1; p++) packed_panel(p, M, N, K, A, lda, packed, bias, accumulate, C, ldc);
}

void rnn_gemm_packed(int M, int N, int K, const float *A, int lda, const float *packed,
                     const float *bias, int accumulate, float *C, int ldc, int par)
{
    const int npanel = (N + RNN_PANEL - 1) / RNN_PANEL;
    /* not an if() clause: even a one-thread region costs microseconds per step */
    if (par && npanel > 1) {
#pragma omp parallel for schedule(static)
        for (int p = 0; p < npanel; p++)
            packed_panel(p, M, N, K, A, lda, packed, bias, accumulate, C, ldc);
    } else {
        for (int p = 0; p < npanel; p++)
            packed_panel(p, M, N, K, A, lda, packed, bias, accumulate, C, ldc);
    }
}

/* ---- blocked products over many rows (rnn_gemm_blocked) -------------------------- */

#define BK_MR 12  /* rows of C per packed block of A */
#define BK_MASK ((__mmask16)((1u << BK_MR) - 1))
#define BK_KC 512 /* most values of k per block: each block of k reads and writes all of C
                   * once more, from memory when C is large (a projection of 6400 rows,
                   * 6400 x 2048 x 512, on one Zen 4 core: 95-96 GFLOP/s at 384, two
                   * blocks, and 103 at 512, one). A panel of B (64 KB) then outgrows L1,
                   * but the kernel reads 128 bytes of it per 24 FMAs, which L2 keeps up
                   * with. */
#define BK_MB 32  /* blocks of A packed at a time: 768 KB at most, in a 1 MB L2; B, streamed once per
                      * 384 rows, is re-read a quarter as often as with 96 (an output
                      * layer x W^T, 700 x 10000 x 650 on 2 Zen 5 cores: 187 -> 227 GFLOP/s) */

/* C (mr,16*nv) = Ap (kc,BK_MR)^T Bp (kc,32) + S for the first mr rows of the block, nv
 * vectors of 16 columns (1 or 2, a constant once inlined), where row i of S is at
 * S + i*lds (lds = 0: one row for all, a bias), or zeros when S is NULL; columns past
 * ncols neither read nor written. The rows past mr are zeros in Ap. */
__attribute__((target("avx512f"), always_inline)) static inline void
bk_block_avx512(const int nv, int mr, int kc, const float *Ap, const float *Bp, const float *S,
                size_t lds, float *C, int ldc, int ncols)
{
    const __mmask16 m0 = ncols >= 16 ? 0xFFFF : (__mmask16)((1u << ncols) - 1);
    const __mmask16 m1 = ncols >= 32 ? 0xFFFF : ncols > 16 ? (__mmask16)((1u << (ncols - 16)) - 1) : 0;
    __m512 c0[BK_MR], c1[BK_MR];
    for (int i = 0; i < BK_MR; i++) {
        const int live = S && i < mr;
        c0[i] = live ? _mm512_maskz_loadu_ps(m0, S + i * lds) : _mm512_setzero_ps();
        if (nv == 2) c1[i] = live ? _mm512_maskz_loadu_ps(m1, S + i * lds + 16) : _mm512_setzero_ps();
    }
    for (int k = 0; k < kc; k++) {
        const __m512 b0 = _mm512_load_ps(Bp + (size_t)k * RNN_PANEL);
        const __m512 b1 = nv == 2 ? _mm512_load_ps(Bp + (size_t)k * RNN_PANEL + 16) : b0;
        const float *a = Ap + (size_t)k * BK_MR;
        for (int i = 0; i < BK_MR; i++) {
            const __m512 ai = _mm512_set1_ps(a[i]);
            c0[i] = _mm512_fmadd_ps(ai, b0, c0[i]);
            if (nv == 2) c1[i] = _mm512_fmadd_ps(ai, b1, c1[i]);
        }
    }
    for (int i = 0; i < mr; i++) {
        _mm512_mask_storeu_ps(C + (size_t)i * ldc, m0, c0[i]);
        if (nv == 2) _mm512_mask_storeu_ps(C + (size_t)i * ldc + 16, m1, c1[i]);
    }
}

/* bk_block_avx512 for a block of at most 8 columns, in 256-bit vectors: on a CPU whose
 * AVX-512 runs on 256-bit units (Zen 4) half the cost of 16 columns. The same chains. */
__attribute__((target("avx512f,avx512vl,fma"), always_inline)) static inline void
bk_block8_avx512(int mr, int kc, const float *Ap, const float *Bp, const float *S, size_t lds,
                 float *C, int ldc, int ncols)
{
    const __mmask8 m = (__mmask8)((1u << ncols) - 1);
    __m256 c[BK_MR];
    for (int i = 0; i < BK_MR; i++)
        c[i] = S && i < mr ? _mm256_maskz_loadu_ps(m, S + i * lds) : _mm256_setzero_ps();
    for (int k = 0; k < kc; k++) {
        const __m256 b = _mm256_load_ps(Bp + (size_t)k * RNN_PANEL);
        const float *a = Ap + (size_t)k * BK_MR;
        for (int i = 0; i < BK_MR; i++) c[i] = _mm256_fmadd_ps(_mm256_set1_ps(a[i]), b, c[i]);
    }
    for (int i = 0; i < mr; i++) _mm256_mask_storeu_ps(C + (size_t)i * ldc, m, c[i]);
}

/* A block of C, 32 columns wide or the last one narrower: up to 16 columns (an output
 * layer of 65 characters ends in a panel of one) take half the FMAs, the same chains.
 * next: the block after, whose C is to be in L1 by its turn (NULL: none read). */
__attribute__((target("avx512f,avx512vl,fma"), noinline)) static void
bk_kernel_avx512(int mr, int kc, const float *Ap, const float *Bp, const float *S, size_t lds,
                 float *C, int ldc, int ncols, const float *next)
{
    if (next)
        for (int i = 0; i < BK_MR; i++) {
            _mm_prefetch((const char *)(next + (size_t)i * ldc), _MM_HINT_T0);
            _mm_prefetch((const char *)(next + (size_t)i * ldc + 16), _MM_HINT_T0);
        }
    if (ncols > 16) bk_block_avx512(2, mr, kc, Ap, Bp, S, lds, C, ldc, ncols);
    else if (ncols > 8) bk_block_avx512(1, mr, kc, Ap, Bp, S, lds, C, ldc, ncols);
    else bk_block8_avx512(mr, kc, Ap, Bp, S, lds, C, ldc, ncols);
}

/* Where a block of C's sums starts for the block of k at k0 (the kernels' S, rows lds
 * apart): the first block of k from the bias row (lds 0), C (accumulate) or zeros
 * (NULL), the others from C, where the blocks before left them. */
static const float *block_start(int k0, const float *bias, int accumulate, int n0, const float *C,
                                int ldc, size_t *lds)
{
    *lds = k0 > 0 || !bias ? (size_t)ldc : 0;
    return k0 > 0 || (!bias && accumulate) ? C : bias ? bias + n0 : NULL;
}

/* dst[0..width-1] = src[0..n-1] and zeros after, width and n <= 16. */
__attribute__((target("avx512f"))) static inline void copy16_avx512(float *dst, int width, const float *src, int n)
{
    _mm512_mask_storeu_ps(dst, (__mmask16)((1u << width) - 1), _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), src));
}

/* dst[c*ldd + r] = src[r*lds + c] for c < cols (<= 16) and r < 16, zeros for the rows
 * r >= rows; each row of dst is written `width` (<= 16) floats wide. A 16 x 16
 * transpose in registers: the packers' element-by-element copies ran at about a float
 * a cycle, a fifth of an output layer's product (700 x 650 by 650 x 10000). */
__attribute__((target("avx512f"))) static inline void transpose16_avx512(const float *src, size_t lds, int rows,
                                                                  int cols, float *dst, size_t ldd,
                                                                  int width)
{
    const __mmask16 in = (__mmask16)((1u << cols) - 1), out = (__mmask16)((1u << width) - 1);
    __m512 r[16], t[16];
    for (int i = 0; i < 16; i++)
        r[i] = i < rows ? _mm512_maskz_loadu_ps(in, src + (size_t)i * lds) : _mm512_setzero_ps();
    /* within each 128-bit lane: pairs of rows interleaved, then groups of four */
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    /* r[4g+m], lane L: rows 4g..4g+3 of column 4L+m; gather lane L of the four groups */
    for (int m = 0; m < 4; m++) {
        const __m512 v = _mm512_shuffle_f32x4(r[m], r[4 + m], 0x88), w = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], 0x88);
        const __m512 v2 = _mm512_shuffle_f32x4(r[m], r[4 + m], 0xDD), w2 = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], 0xDD);
        t[m] = _mm512_shuffle_f32x4(v, w, 0x88);
        t[8 + m] = _mm512_shuffle_f32x4(v, w, 0xDD);
        t[4 + m] = _mm512_shuffle_f32x4(v2, w2, 0x88);
        t[12 + m] = _mm512_shuffle_f32x4(v2, w2, 0xDD);
    }
    for (int c = 0; c < cols; c++) _mm512_mask_storeu_ps(dst + (size_t)c * ldd, out, t[c]);
}

/* pack_a_block and pack_b_panel below with AVX-512, in functions of that target so
 * that the copies inline into their loops. */
__attribute__((target("avx512f"))) static void pack_a_block_avx512(float *d, int width, const float *A, int lda,
                                                                   int r0, int mr, int k0, int kc)
{
    for (int k = 0; k < kc; k += 16)
        transpose16_avx512(A + (size_t)r0 * lda + k0 + k, lda, mr, kc - k < 16 ? kc - k : 16,
                           d + (size_t)k * width, width, width);
}

__attribute__((target("avx512f"))) static void pack_b_panel_avx512(float *d, int width, int tb, const float *B,
                                                                   int ldb, int n0, int nc, int k0, int kc)
{
    for (int c = 0; c < width; c += 16) {
        const int n = nc - c < 0 ? 0 : nc - c < 16 ? nc - c : 16;
        if (tb)
            for (int k = 0; k < kc; k += 16)
                transpose16_avx512(B + (size_t)(n0 + c) * ldb + k0 + k, ldb, n, kc - k < 16 ? kc - k : 16,
                                   d + (size_t)k * width + c, width, 16);
        else
            for (int k = 0; k < kc; k++)
                copy16_avx512(d + (size_t)k * width + c, 16, B + (size_t)(k0 + k) * ldb + n0 + c, n);
    }
}

/* nb blocks of BK_MR rows of op(A) = A^T from row i0 (M rows in all), k0..k0+kc-1, each
 * packed as pack_a_block packs one, block j at d + j*stride. k runs outside, so that each
 * row of A is read as one run of nb*BK_MR floats: block by block, every k of a block was
 * a lone 48-byte read 8 KB past the last (an LSTM's dW, A = dG of 6400 x 2048, from
 * DRAM), and the packing took 9% of the product waiting on memory; now 6%.
 * (2048,512,6400) on one Zen 4 core: 96-99 -> 100-101 GFLOP/s, the peak 113-116. */
__attribute__((target("avx512f"))) static void pack_a_blocks_t_avx512(float *d, size_t stride, const float *A,
                                                                      int lda, int M, int i0, int nb, int k0,
                                                                      int kc, float *sums)
{
    const int width = M - i0 < nb * BK_MR ? M - i0 : nb * BK_MR;
    __m512 acc[BK_MB];
    if (sums)
        for (int j = 0; j < nb; j++) acc[j] = _mm512_maskz_loadu_ps(BK_MASK, sums + j * BK_MR);
    for (int k = 0; k < kc; k++) {
        const float *src = A + (size_t)(k0 + k) * lda;
        if (k + 8 < kc) /* 8 rows ahead: each row is a new run the hardware has not seen */
            for (int c = 0; c < width; c += 16) _mm_prefetch((const char *)(src + (size_t)8 * lda + i0 + c), _MM_HINT_T0);
        for (int j = 0; j < nb; j++) {
            const int r0 = i0 + j * BK_MR, mr = M - r0 < BK_MR ? M - r0 : BK_MR;
            const __m512 v = _mm512_maskz_loadu_ps((__mmask16)((1u << mr) - 1), src + r0);
            _mm512_mask_storeu_ps(d + (size_t)j * stride + (size_t)k * BK_MR, BK_MASK, v);
            if (sums) acc[j] = _mm512_add_ps(acc[j], v);
        }
    }
    if (sums)
        for (int j = 0; j < nb; j++) _mm512_mask_storeu_ps(sums + j * BK_MR, BK_MASK, acc[j]);
}

/* pack_b_block without tb on AVX-512: row k of B, 16 floats at a time, to row k of
 * each panel. */
__attribute__((target("avx512f"))) static void pack_b_rows_avx512(float *Bp, int width, const float *B, int ldb,
                                                                  int N, int k0, int kc)
{
    for (int k = 0; k < kc; k++) {
        const float *src = B + (size_t)(k0 + k) * ldb;
        for (int n = 0; n < N; n += 16) {
            const int n0 = n / width * width, c = n - n0;
            copy16_avx512(Bp + (size_t)n0 * kc + (size_t)k * width + c, 16, src + n, N - n < 16 ? N - n : 16);
        }
        /* a last panel's 16 columns past N, when it has them, are zeros too */
        for (int n = (N + 15) / 16 * 16; n % width; n += 16)
            copy16_avx512(Bp + (size_t)(n / width * width) * kc + (size_t)k * width + n % width, 16, src, 0);
    }
}

/* Rows r0..r0+mr-1 of op(A), k0..k0+kc-1, packed `width` (<= 16) rows side by side:
 * element (r,k) at d[k*width + r], zeros in the rows past mr. */
static void pack_a_block(float *d, int width, int ta, const float *A, int lda, int r0, int mr,
                         int k0, int kc)
{
    if (cpu_level() == 3 && !ta) { /* with ta, blocked_avx512 packs its blocks together */
        pack_a_block_avx512(d, width, A, lda, r0, mr, k0, kc);
        return;
    }
    if (ta) {
        for (int k = 0; k < kc; k++) {
            const float *src = A + (size_t)(k0 + k) * lda + r0;
            if (mr == width) memcpy(d + (size_t)k * width, src, (size_t)width * sizeof(float));
            else
                for (int r = 0; r < width; r++) d[(size_t)k * width + r] = r < mr ? src[r] : 0;
        }
    } else {
        for (int r = 0; r < width; r++) {
            const float *src = A + (size_t)(r0 + r) * lda + k0;
            for (int k = 0; k < kc; k++) d[(size_t)k * width + r] = r < mr ? src[k] : 0;
        }
    }
}

/* Columns n0..n0+nc-1 of op(B), rows k0..k0+kc-1, as a panel `width` columns wide:
 * element (k,c) at d[k*width + c], zeros in the columns past nc. */
static void pack_b_panel(float *d, int width, int tb, const float *B, int ldb, int n0, int nc,
                         int k0, int kc)
{
    if (cpu_level() == 3 && width % 16 == 0) {
        pack_b_panel_avx512(d, width, tb, B, ldb, n0, nc, k0, kc);
        return;
    }
    for (int k = 0; k < kc; k++) {
        float *row = d + (size_t)k * width;
        if (!tb) memcpy(row, B + (size_t)(k0 + k) * ldb + n0, (size_t)nc * sizeof(float));
        else
            for (int c = 0; c < nc; c++) row[c] = B[(size_t)(n0 + c) * ldb + k0 + k];
        for (int c = nc; c < width; c++) row[c] = 0;
    }
}

/* Rows k0..k0+kc-1 of op(B), all N columns, as consecutive panels `width` wide. Without
 * tb on AVX-512, k runs outside, so that each row of B is read as one run (as
 * pack_a_blocks_t_avx512 reads A). */
static void pack_b_block(float *Bp, int width, int tb, const float *B, int ldb, int N, int k0, int kc)
{
    if (!tb && cpu_level() == 3 && width % 16 == 0) {
        pack_b_rows_avx512(Bp, width, B, ldb, N, k0, kc);
        return;
    }
    for (int n0 = 0; n0 < N; n0 += width)
        pack_b_panel(Bp + (size_t)n0 * kc, width, tb, B, ldb, n0, N - n0 < width ? N - n0 : width, k0,
                     kc);
}

void rnn_gemm_pack(float *packed, const float *W, int ldw, int trans, int N, int K, int part,
                   int parts)
{
    const int npanel = (N + RNN_PANEL - 1) / RNN_PANEL;
    const int p0 = (int)((int64_t)npanel * part / parts);
    const int p1 = (int)((int64_t)npanel * (part + 1) / parts);
    for (int p = p0; p < p1; p++) {
        const int n0 = p * RNN_PANEL;
        pack_b_panel(packed + (size_t)p * K * RNN_PANEL, RNN_PANEL, trans, W, ldw, n0,
                     N - n0 < RNN_PANEL ? N - n0 : RNN_PANEL, 0, K);
    }
}

/* The AVX2 blocking has its own shapes: 6 x 16 blocks of C in registers (12 of the 16
 * vector registers), op(B) packed in panels 16 columns wide so that a panel's block of
 * k (16 KB) stays in Zen 3's 32 KB L1 while the packed rows of A stream past it from
 * L2, B2_MC rows at a time. With the AVX-512 layout (32 columns, half of them per pass,
 * both halves thrashing L1) a dW product of (2048,512,6400) ran at 36 GFLOP/s on one Zen 3
 * core; with these shapes at 58-77 (the spread is the shared L3's), beside OpenBLAS's
 * 72-80 and a peak of 83-89. */
#define B2_MR 6
#define B2_NR 16
#define B2_KC 256
#define B2_MC 96 /* 16 blocks of 6 rows: 96 KB of packed A, in L2 */

/* C (mr,nc) = Ap (kc,6)^T Bp (kc,16) + S for a 6 x 16 block (see bk_kernel_avx512 for S
 * and lds); Ap's rows past mr are zeros. */
__attribute__((target("avx2,fma"), noinline)) static void
b2_kernel(int mr, int kc, const float *Ap, const float *Bp, const float *S, size_t lds, float *C,
          int ldc, int ncols)
{
    const int full = ncols == B2_NR && mr == B2_MR;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(ncols), lane);
    const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(ncols - 8), lane);
    __m256 c0[B2_MR], c1[B2_MR];
    for (int i = 0; i < B2_MR; i++) {
        if (!S || i >= mr) {
            c0[i] = _mm256_setzero_ps();
            c1[i] = _mm256_setzero_ps();
        } else {
            load16_avx2(S + i * lds, full, m0, m1, &c0[i], &c1[i]);
        }
    }
    for (int k = 0; k < kc; k++) {
        const __m256 b0 = _mm256_load_ps(Bp + (size_t)k * B2_NR);
        const __m256 b1 = _mm256_load_ps(Bp + (size_t)k * B2_NR + 8);
        const float *a = Ap + (size_t)k * B2_MR;
        for (int i = 0; i < B2_MR; i++) {
            const __m256 ai = _mm256_broadcast_ss(a + i);
            c0[i] = _mm256_fmadd_ps(ai, b0, c0[i]);
            c1[i] = _mm256_fmadd_ps(ai, b1, c1[i]);
        }
    }
    for (int i = 0; i < mr; i++) store16_avx2(C + (size_t)i * ldc, full, m0, m1, c0[i], c1[i]);
}

/* Rows m0..m1-1 of C with the AVX2 shapes; Bp and Ap are blocks of at least
 * ceil(N/16)*16*kcmax and B2_MC*kcmax floats, 32-byte aligned. */
static void blocked_avx2(int ta, int tb, int m0, int m1, int N, int K, const float *A, int lda,
                         const float *B, int ldb, const float *bias, int accumulate, float *C,
                         int ldc, float *Bp, float *Ap)
{
    const int npanel = (N + B2_NR - 1) / B2_NR;
    for (int k0 = 0; k0 < K; k0 += B2_KC) {
        const int kc = K - k0 < B2_KC ? K - k0 : B2_KC;
        pack_b_block(Bp, B2_NR, tb, B, ldb, N, k0, kc);
        for (int i0 = m0; i0 < m1; i0 += B2_MC) {
            const int mc = m1 - i0 < B2_MC ? m1 - i0 : B2_MC, nb = (mc + B2_MR - 1) / B2_MR;
            for (int j = 0; j < nb; j++) {
                const int r0 = i0 + j * B2_MR, mr = i0 + mc - r0 < B2_MR ? i0 + mc - r0 : B2_MR;
                pack_a_block(Ap + (size_t)j * kc * B2_MR, B2_MR, ta, A, lda, r0, mr, k0, kc);
            }
            /* each panel of B (in L1) against every block of A (in L2) */
            for (int p = 0; p < npanel; p++) {
                const int n0 = p * B2_NR, nc = N - n0 < B2_NR ? N - n0 : B2_NR;
                const float *P = Bp + (size_t)p * kc * B2_NR;
                for (int j = 0; j < nb; j++) {
                    const int r0 = i0 + j * B2_MR, mr = i0 + mc - r0 < B2_MR ? i0 + mc - r0 : B2_MR;
                    float *C_ip = C + (size_t)r0 * ldc + n0;
                    size_t lds;
                    const float *S = block_start(k0, bias, accumulate, n0, C_ip, ldc, &lds);
                    b2_kernel(mr, kc, Ap + (size_t)j * kc * B2_MR, P, S, lds, C_ip, ldc, nc);
                }
            }
        }
    }
}

/* Element (m,k) of op(A) and (k,n) of op(B). */
static inline float op_a(int ta, const float *A, int lda, int m, int k)
{
    return ta ? A[(size_t)k * lda + m] : A[(size_t)m * lda + k];
}

static inline float op_b(int tb, const float *B, int ldb, int k, int n)
{
    return tb ? B[(size_t)n * ldb + k] : B[(size_t)k * ldb + n];
}

/* A right operand of the blocked product, and where its product goes: C (M,N) =
 * op(A) op(B) + S, S the bias row, else C when accumulate, else 0. */
typedef struct {
    int tb, N;
    const float *B;
    int ldb;
    const float *bias;
    int accumulate;
    float *C;
    int ldc;
} bk_rhs;

/* Blocks blk0..blk1-1 of BK_MR rows of the products of op(A) with each of the nr right
 * operands, on AVX-512: for each block of k, every operand's block of op(B) packed
 * into panels at Bp, then BK_MB blocks of A packed (in L2) at Ap and each panel (in L1)
 * against all of them. The operands share the packed blocks of A. */
static void blocked_avx512(int ta, int blk0, int blk1, int M, int K, int kcmax, const float *A,
                           int lda, const bk_rhs *r, int nr, float *Bp, float *Ap, float *sums)
{
    for (int k0 = 0; k0 < K; k0 += kcmax) {
        const int kc = K - k0 < kcmax ? K - k0 : kcmax;
        float *bp[2]; /* nr is 1 or 2 */
        for (int o = 0, at = 0; o < nr; o++) {
            bp[o] = Bp + (size_t)at * kc;
            pack_b_block(bp[o], RNN_PANEL, r[o].tb, r[o].B, r[o].ldb, r[o].N, k0, kc);
            at += (r[o].N + RNN_PANEL - 1) / RNN_PANEL * RNN_PANEL;
        }
        for (int bb = blk0; bb < blk1; bb += BK_MB) {
            const int nb = blk1 - bb < BK_MB ? blk1 - bb : BK_MB;
            if (ta)
                pack_a_blocks_t_avx512(Ap, (size_t)kcmax * BK_MR, A, lda, M, bb * BK_MR, nb, k0, kc,
                                       sums ? sums + (size_t)(bb - blk0) * BK_MR : NULL);
            else
                for (int j = 0; j < nb; j++) {
                    const int i0 = (bb + j) * BK_MR, mr = M - i0 < BK_MR ? M - i0 : BK_MR;
                    pack_a_block(Ap + (size_t)j * kcmax * BK_MR, BK_MR, ta, A, lda, i0, mr, k0, kc);
                }
            for (int o = 0; o < nr; o++) {
                const int N = r[o].N, ldc = r[o].ldc, reads_c = k0 > 0 || r[o].accumulate;
                float *C = r[o].C;
                for (int n0 = 0; n0 < N; n0 += RNN_PANEL) {
                    const int nc = N - n0 < RNN_PANEL ? N - n0 : RNN_PANEL;
                    const float *P = bp[o] + (size_t)n0 * kc;
                    for (int j = 0; j < nb; j++) {
                        const int i0 = (bb + j) * BK_MR, mr = M - i0 < BK_MR ? M - i0 : BK_MR;
                        float *C_ip = C + (size_t)i0 * ldc + n0;
                        size_t lds;
                        const float *S = block_start(k0, r[o].bias, r[o].accumulate, n0, C_ip, ldc, &lds);
                        /* the next block's C, if it reads C, to be in L1 by its turn */
                        const float *next = !reads_c ? NULL
                                            : j + 1 < nb ? C_ip + (size_t)BK_MR * ldc
                                                         : C + (size_t)bb * BK_MR * ldc + n0 + RNN_PANEL;
                        bk_kernel_avx512(mr, kc, Ap + (size_t)j * kcmax * BK_MR, P, S, lds, C_ip, ldc,
                                         nc, next);
                    }
                }
            }
        }
    }
}

/* db1[m] += sums[m - m0] for rows m0..m1-1, and db2[m] too unless NULL. */
static void add_sums(float *db1, float *db2, const float *sums, int m0, int m1)
{
    for (int m = m0; m < m1; m++) {
        db1[m] += sums[m - m0];
        if (db2) db2[m] += sums[m - m0];
    }
}

/* add_sums of the sums of rows m0..m1-1 of op(A) over k in order from 0, 64 rows at a
 * time, from a pass over A of their own. */
static void add_row_sums(int ta, const float *A, int lda, int m0, int m1, int K, float *db1,
                         float *db2)
{
    for (int c0 = m0; c0 < m1; c0 += 64) {
        const int c1 = m1 - c0 < 64 ? m1 : c0 + 64;
        float acc[64] = {0};
        for (int k = 0; k < K; k++)
            for (int m = c0; m < c1; m++) acc[m - c0] += op_a(ta, A, lda, m, k);
        add_sums(db1, db2, acc, c0, c1);
    }
}

/* Share `part` of `parts` of the products of op(A) (M,K) with the nr right operands:
 * blocks of BK_MR rows of every C; with db1, the row sums of op(A) added to it (and to
 * db2) for the same rows, as add_row_sums adds them. */
static void blocked_rows(int ta, int M, int K, const float *A, int lda, const bk_rhs *r, int nr,
                         float *db1, float *db2, int part, int parts)
{
    const int avx512 = cpu_level() == 3;
    /* K in blocks of at most BK_KC, as equal as can be: 650 = 2 x 325, not 256 + 256 +
     * 138, since every block of k reads and writes all of C once more */
    const int nkb = K > 0 ? (K + BK_KC - 1) / BK_KC : 1, kc_block = avx512 ? (K + nkb - 1) / nkb : B2_KC;
    const int nblk = (M + BK_MR - 1) / BK_MR;
    const int blk0 = (int)((int64_t)nblk * part / parts), blk1 = (int)((int64_t)nblk * (part + 1) / parts);
    const int m0 = blk0 * BK_MR, m1 = blk1 * BK_MR < M ? blk1 * BK_MR : M;
    if (m1 <= m0) return;
    if (K <= 0) { /* no products: C = S */
        if (db1) add_row_sums(ta, A, lda, m0, m1, K, db1, db2);
        for (int o = 0; o < nr; o++)
            for (int i = m0; i < m1; i++)
                for (int n = 0; n < r[o].N; n++) {
                    float *c = r[o].C + (size_t)i * r[o].ldc + n;
                    *c = r[o].bias ? r[o].bias[n] : r[o].accumulate ? *c : 0;
                }
        return;
    }
    const int kcmax = K < kc_block ? K : kc_block;
    /* the blocks of every op(B) in panels, and the packed blocks of A; 64-byte aligned
     * for the aligned loads */
    size_t bp_floats = 0;
    for (int o = 0; o < nr; o++) {
        const size_t cols = avx512 ? (size_t)(r[o].N + RNN_PANEL - 1) / RNN_PANEL * RNN_PANEL
                                   : (size_t)(r[o].N + B2_NR - 1) / B2_NR * B2_NR;
        bp_floats = avx512 ? bp_floats + cols * kcmax : (cols * kcmax > bp_floats ? cols * kcmax : bp_floats);
    }
    const size_t ap_floats = (size_t)(avx512 ? BK_MB * BK_MR : B2_MC) * kcmax;
    /* the row sums, AVX-512 with ta: added up as the blocks of A are packed (one pass
     * over dG fewer in an LSTM's backward), at the end of Ap */
    const int packed_sums = db1 && avx512 && ta;
    const size_t sum_floats = packed_sums ? (size_t)(blk1 - blk0) * BK_MR : 0;
    float *Bp = aligned_alloc(64, (bp_floats * sizeof(float) + 63) / 64 * 64);
    float *Ap = aligned_alloc(64, ((ap_floats + sum_floats) * sizeof(float) + 63) / 64 * 64);
    float *sums = Ap && packed_sums ? Ap + ap_floats : NULL;
    if (sums) memset(sums, 0, sum_floats * sizeof(float));
    if (db1 && !sums) add_row_sums(ta, A, lda, m0, m1, K, db1, db2);
    if (!Bp || !Ap) {
        /* no memory for the blocks: the same chains, unblocked and slow */
        for (int o = 0; o < nr; o++)
            for (int i = m0; i < m1; i++)
                for (int n = 0; n < r[o].N; n++) {
                    float *c = r[o].C + (size_t)i * r[o].ldc + n;
                    float acc = r[o].bias ? r[o].bias[n] : r[o].accumulate ? *c : 0;
                    for (int k = 0; k < K; k++)
                        acc = fmaf(op_a(ta, A, lda, i, k), op_b(r[o].tb, r[o].B, r[o].ldb, k, n), acc);
                    *c = acc;
                }
    } else if (avx512) {
        blocked_avx512(ta, blk0, blk1, M, K, kcmax, A, lda, r, nr, Bp, Ap, sums);
        if (sums) add_sums(db1, db2, sums, m0, m1);
    } else {
        for (int o = 0; o < nr; o++)
            blocked_avx2(ta, r[o].tb, m0, m1, r[o].N, K, A, lda, r[o].B, r[o].ldb, r[o].bias,
                         r[o].accumulate, r[o].C, r[o].ldc, Bp, Ap);
    }
    free(Bp);
    free(Ap);
}

void rnn_gemm_blocked(int ta, int tb, int M, int N, int K, const float *A, int lda,
                      const float *B, int ldb, const float *bias, int accumulate, float *C, int ldc,
                      int part, int parts)
{
    // op(A) is (M,K), op(B) is (K,N), C is (M,N); this share: blocks of BK_MR rows of C,
    // or panels of its columns when C is wider than tall
    if (N <= 0) return;
    if (parts > 1 && N > M) {
        /* Each share packs all of op(B) when the rows are shared: for an output layer's
         * logits, (700 x 10000) from (700 x 650) and (650 x 10000), every thread packed
         * the whole 26 MB of weights. A share of the columns is a narrower product whose
         * elements are the same chains. */
        const int width = cpu_level() == 3 ? RNN_PANEL : B2_NR, np = (N + width - 1) / width;
        const int n0 = (int)((int64_t)np * part / parts) * width;
        const int n1 = (int)((int64_t)np * (part + 1) / parts) * width;
        if (n0 >= N) return;
        rnn_gemm_blocked(ta, tb, M, (n1 < N ? n1 : N) - n0, K, A, lda, tb ? B + (size_t)n0 * ldb : B + n0,
                         ldb, bias ? bias + n0 : NULL, accumulate, C + n0, ldc, 0, 1);
        return;
    }
    const bk_rhs r = {tb, N, B, ldb, bias, accumulate, C, ldc};
    blocked_rows(ta, M, K, A, lda, &r, 1, NULL, NULL, part, parts);
}

void rnn_gemm_blocked_pair(int ta, int M, int K, const float *A, int lda, int N1, const float *B1,
                           int ldb1, float *C1, int ldc1, int N2, const float *B2, int ldb2,
                           float *C2, int ldc2, int accumulate, float *db1, float *db2, int part,
                           int parts)
{
    const bk_rhs r[2] = {{0, N1, B1, ldb1, NULL, accumulate, C1, ldc1},
                         {0, N2, B2, ldb2, NULL, accumulate, C2, ldc2}};
    blocked_rows(ta, M, K, A, lda, r, 2, db1, db2, part, parts);
}

#else /* no x86-64 kernels: the callers use BLAS */

int rnn_gemm_packed_available(void)
{
    return 0;
}

int rnn_gemm_use_level(int want)
{
    (void)want;
    return 0;
}

void rnn_gemm_pack(float *packed, const float *W, int ldw, int trans, int N, int K, int part,
                   int parts)
{
    (void)packed, (void)W, (void)ldw, (void)trans, (void)N, (void)K, (void)part, (void)parts;
}

void rnn_gemm_blocked(int ta, int tb, int M, int N, int K, const float *A, int lda,
                      const float *B, int ldb, const float *bias, int accumulate, float *C, int ldc,
                      int part, int parts)
{
    (void)ta, (void)tb, (void)M, (void)N, (void)K, (void)A, (void)lda, (void)B, (void)ldb,
        (void)bias, (void)accumulate, (void)C, (void)ldc, (void)part, (void)parts;
}

void rnn_gemm_packed_panels(int M, int N, int K, const float *A, int lda, const float *packed,
                            const float *bias, int accumulate, float *C, int ldc, int q0, int q1)
{
    for (int p = q0; p < q1; p++) packed_panel(p, M, N, K, A, lda, packed, bias, accumulate, C, ldc);
}

void rnn_gemm_packed(int M, int N, int K, const float *A, int lda, const float *packed,
                     const float *bias, int accumulate, float *C, int ldc, int par)
{
    (void)M, (void)N, (void)K, (void)A, (void)lda, (void)packed, (void)bias, (void)accumulate,
        (void)C, (void)ldc, (void)par;
}

void rnn_gemm_packed_panels(int M, int N, int K, const float *A, int lda, const float *packed,
                            const float *bias, int accumulate, float *C, int ldc, int q0, int q1)
{
    (void)M, (void)N, (void)K, (void)A, (void)lda, (void)packed, (void)bias, (void)accumulate,
        (void)C, (void)ldc, (void)q0, (void)q1;
}

void rnn_gemm_few(int trans, int M, int n0, int n1, int K, const float *A, int lda, const float *W,
                  int ldw, const float *bias, int accumulate, float *C, int ldc)
{
    (void)trans, (void)M, (void)n0, (void)n1, (void)K, (void)A, (void)lda, (void)W, (void)ldw,
        (void)bias, (void)accumulate, (void)C, (void)ldc;
}

void rnn_gemm_blocked_pair(int ta, int M, int K, const float *A, int lda, int N1, const float *B1,
                           int ldb1, float *C1, int ldc1, int N2, const float *B2, int ldb2,
                           float *C2, int ldc2, int accumulate, float *db1, float *db2, int part,
                           int parts)
{
    (void)ta, (void)M, (void)K, (void)A, (void)lda, (void)N1, (void)B1, (void)ldb1, (void)C1,
        (void)ldc1, (void)N2, (void)B2, (void)ldb2, (void)C2, (void)ldc2, (void)accumulate,
        (void)db1, (void)db2, (void)part, (void)parts;
}

#endif
