/* bfloat16 products with float32 accumulation (see bf16.h).
 *
 * A kernel keeps an MR x (NP*32) block of C in registers (NP panels side by side, two
 * 16-lane vectors each) and runs q over the pairs of the inner dimension: per pair it
 * loads NP*2 vectors of packed weights and broadcasts each row's pair of A. Batch-1
 * generation has one row: four panels at a time give it eight independent chains, where
 * one panel's two would wait on their own latency. */
#include <stdlib.h>
#include <string.h>

#include "bf16.h"

#define MR_MAX 6

uint16_t bf16_from_float(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    if ((u & 0x7f800000u) == 0) return (uint16_t)((u >> 16) & 0x8000);         /* subnormal */
    u += 0x7fffu + ((u >> 16) & 1); /* to nearest, ties to even */
    return (uint16_t)(u >> 16);
}

float bf16_to_float(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

size_t bf16_packed_size(int N, int K)
{
    return (size_t)(N + BF16_PANEL - 1) / BF16_PANEL * BF16_PANEL * (size_t)bf16_pairs(K);
}

static uint32_t pair(float lo, float hi)
{
    return (uint32_t)bf16_from_float(lo) | (uint32_t)bf16_from_float(hi) << 16;
}

/* Pairs rounded per chunk when packing: a row's pairs are rounded as bf16_convert_rows
 * rounds them (vectorised on the fast path: training packs its weights at every forward)
 * and scattered into the panels. */
#define PACK_CHUNK 256

void bf16_pack(uint32_t *packed, const float *W1, int K1, const float *W2, int K2, int N)
{
    // W1 is (N,K1), W2 is (N,K2) or NULL, packed is bf16_packed_size(N, 2*(pairs(K1)+pairs(K2)))
    const int P1 = bf16_pairs(K1), KP = P1 + bf16_pairs(W2 ? K2 : 0);
    const int npanel = (N + BF16_PANEL - 1) / BF16_PANEL;
    uint32_t chunk[PACK_CHUNK];
    for (int p = 0; p < npanel; p++)
        for (int c = 0; c < BF16_PANEL; c++) {
            const int n = p * BF16_PANEL + c;
            uint32_t *dst = packed + (size_t)p * KP * BF16_PANEL + c; /* pair q at q*32 */
            if (n >= N) {
                for (int q = 0; q < KP; q++) dst[(size_t)q * BF16_PANEL] = 0;
                continue;
            }
            /* W1's pairs, then W2's from pair P1 */
            for (int part = 0; part < (W2 ? 2 : 1); part++) {
                const float *w_n = part ? W2 + (size_t)n * K2 : W1 + (size_t)n * K1;
                const int K = part ? K2 : K1, q0 = part ? P1 : 0;
                for (int k0 = 0; k0 < K; k0 += 2 * PACK_CHUNK) {
                    const int len = K - k0 < 2 * PACK_CHUNK ? K - k0 : 2 * PACK_CHUNK;
                    bf16_convert_rows(chunk, 0, w_n + k0, 0, 1, len);
                    for (int i = 0; i < bf16_pairs(len); i++)
                        dst[(size_t)(q0 + k0 / 2 + i) * BF16_PANEL] = chunk[i];
                }
            }
        }
}

static void convert_rows_fast(uint32_t *Ab, int ldab, const float *A, int lda, int M, int K);

void bf16_convert_rows(uint32_t *Ab, int ldab, const float *A, int lda, int M, int K)
{
    // A is (M,K), Ab is (M, bf16_pairs(K)) with rows ldab apart
    const int KP = bf16_pairs(K);
    if (bf16_fast()) {
        convert_rows_fast(Ab, ldab, A, lda, M, K);
        return;
    }
    for (int m = 0; m < M; m++) {
        const float *a = A + (size_t)m * lda;
        uint32_t *ab = Ab + (size_t)m * ldab;
        for (int q = 0; q < K / 2; q++) ab[q] = pair(a[2 * q], a[2 * q + 1]);
        if (K % 2) ab[KP - 1] = pair(a[K - 1], 0);
    }
}

/* The portable kernel: vdpbf16ps's arithmetic written out (bf16.h). */
static inline float ftz(float v)
{
    return v > -0x1p-126f && v < 0x1p-126f ? 0 * v : v; /* keeps the sign of zero */
}

static void panel_c(int M, int KP, const uint32_t *Ab, const uint32_t *P, float *C, int ldc,
                    int ncols, const float *bias, int accumulate)
{
    for (int m = 0; m < M; m++) {
        const uint32_t *a = Ab + (size_t)m * KP;
        float acc[BF16_PANEL];
        for (int c = 0; c < BF16_PANEL; c++)
            acc[c] = c >= ncols ? 0 : bias ? bias[c] : accumulate ? C[(size_t)m * ldc + c] : 0;
        for (int q = 0; q < KP; q++) {
            const float a0 = bf16_to_float((uint16_t)a[q]), a1 = bf16_to_float((uint16_t)(a[q] >> 16));
            const uint32_t *w = P + (size_t)q * BF16_PANEL;
            for (int c = 0; c < BF16_PANEL; c++) {
                float s = ftz(acc[c] + a1 * bf16_to_float((uint16_t)(w[c] >> 16)));
                acc[c] = ftz(s + a0 * bf16_to_float((uint16_t)w[c]));
            }
        }
        for (int c = 0; c < ncols; c++) C[(size_t)m * ldc + c] = acc[c];
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define BF16_TARGET "avx512bf16,avx512f,avx512bw,avx512vl"

/* -1 not looked up yet, 0 off, 1 on */
static int fast = -1;

static int lookup_fast(void)
{
    __builtin_cpu_init();
    const char *env = getenv("RECUR_BF16_FAST");
    if (env && strcmp(env, "0") == 0) return 0;
    return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
}

int bf16_fast(void)
{
    int f = __atomic_load_n(&fast, __ATOMIC_RELAXED);
    if (f < 0) {
        f = lookup_fast();
        __atomic_store_n(&fast, f, __ATOMIC_RELAXED);
    }
    return f;
}

int bf16_use_fast(int on)
{
    __builtin_cpu_init();
    int f = on && __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512vl");
    __atomic_store_n(&fast, f, __ATOMIC_RELAXED);
    return f;
}

/* vcvtneps2bf16 rounds as bf16_from_float does (to nearest even, NaN made quiet,
 * subnormals to zero; checked on every class of input), 16 at a time. A pair is two
 * bfloat16 in memory order, so a row's pairs are its bfloat16 values in order. */
__attribute__((target(BF16_TARGET))) static void
convert_rows_fast(uint32_t *Ab, int ldab, const float *A, int lda, int M, int K)
{
    for (int m = 0; m < M; m++) {
        const float *a = A + (size_t)m * lda;
        uint16_t *ab = (uint16_t *)(Ab + (size_t)m * ldab);
        for (int k = 0; k < K; k += 16) {
            const int n = K - k < 16 ? K - k : 16;
            const __mmask16 mask = n == 16 ? 0xFFFF : (__mmask16)((1u << n) - 1);
            __m256bh v = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask, a + k));
            _mm256_mask_storeu_epi16(ab + k, mask, (__m256i)v);
        }
        if (K % 2) ab[K] = 0;
    }
}

/* C (MR, NP*32) from pairs q = 0..KP-1; P's panels KP*32 pairs apart; the last
 * panel's columns past ncols (counted from the first panel) neither read nor written. */
__attribute__((target(BF16_TARGET), always_inline)) static inline void
kernel_avx512(const int MR, const int NP, int KP, const uint32_t *Ab, const uint32_t *P,
              float *C, int ldc, int ncols, const float *bias, int accumulate)
{
    __m512 acc[MR_MAX][8];
    __mmask16 mask[8];
    for (int v = 0; v < 2 * NP; v++) {
        int n = ncols - 16 * v;
        mask[v] = n >= 16 ? 0xFFFF : n > 0 ? (__mmask16)((1u << n) - 1) : 0;
    }
    for (int i = 0; i < MR; i++)
        for (int v = 0; v < 2 * NP; v++) {
            if (bias) acc[i][v] = _mm512_maskz_loadu_ps(mask[v], bias + 16 * v);
            else if (accumulate) acc[i][v] = _mm512_maskz_loadu_ps(mask[v], C + (size_t)i * ldc + 16 * v);
            else acc[i][v] = _mm512_setzero_ps();
        }
    const size_t panel = (size_t)KP * BF16_PANEL;
    for (int q = 0; q < KP; q++) {
        __m512bh w[8];
        for (int v = 0; v < 2 * NP; v++)
            w[v] = (__m512bh)_mm512_loadu_si512(P + (v / 2) * panel + (size_t)q * BF16_PANEL + 16 * (v % 2));
        for (int i = 0; i < MR; i++) {
            __m512bh a = (__m512bh)_mm512_set1_epi32((int)Ab[(size_t)i * KP + q]);
            for (int v = 0; v < 2 * NP; v++) acc[i][v] = _mm512_dpbf16_ps(acc[i][v], a, w[v]);
        }
    }
    for (int i = 0; i < MR; i++)
        for (int v = 0; v < 2 * NP; v++)
            _mm512_mask_storeu_ps(C + (size_t)i * ldc + 16 * v, mask[v], acc[i][v]);
}

/* NP panels' columns of C for all M rows, in row blocks as equal as possible of at most
 * MR_MAX (as rnn_gemm.c, so that no block is a lone row unless M is 1). */
#define BF16_ROWS(NP)                                                                        \
    do {                                                                                     \
        const int nblk = (M + MR_MAX - 1) / MR_MAX;                                          \
        for (int blk = 0, i = 0; blk < nblk; blk++) {                                        \
            const int mr = M / nblk + (blk < M % nblk);                                      \
            const uint32_t *A_i = Ab + (size_t)i * KP;                                       \
            float *C_i = C + (size_t)i * ldc;                                                \
            switch (mr) {                                                                    \
            case 6: kernel_avx512(6, NP, KP, A_i, P, C_i, ldc, ncols, bias, accumulate); break; \
            case 5: kernel_avx512(5, NP, KP, A_i, P, C_i, ldc, ncols, bias, accumulate); break; \
            case 4: kernel_avx512(4, NP, KP, A_i, P, C_i, ldc, ncols, bias, accumulate); break; \
            case 3: kernel_avx512(3, NP, KP, A_i, P, C_i, ldc, ncols, bias, accumulate); break; \
            case 2: kernel_avx512(2, NP, KP, A_i, P, C_i, ldc, ncols, bias, accumulate); break; \
            default: kernel_avx512(1, NP, KP, A_i, P, C_i, ldc, ncols, bias, accumulate); break; \
            }                                                                                \
            i += mr;                                                                         \
        }                                                                                    \
    } while (0)

/* One row (batch-1 generation) takes up to four panels at a time: eight chains. */
__attribute__((target(BF16_TARGET), noinline)) static void
panels_avx512(int NP, int M, int KP, const uint32_t *Ab, const uint32_t *P, float *C, int ldc,
              int ncols, const float *bias, int accumulate)
{
    if (M == 1) {
        switch (NP) {
        case 4: kernel_avx512(1, 4, KP, Ab, P, C, ldc, ncols, bias, accumulate); break;
        case 3: kernel_avx512(1, 3, KP, Ab, P, C, ldc, ncols, bias, accumulate); break;
        case 2: kernel_avx512(1, 2, KP, Ab, P, C, ldc, ncols, bias, accumulate); break;
        default: kernel_avx512(1, 1, KP, Ab, P, C, ldc, ncols, bias, accumulate); break;
        }
    } else if (NP == 2) {
        BF16_ROWS(2);
    } else {
        BF16_ROWS(1);
    }
}

#else /* no AVX-512 kernel */

static void convert_rows_fast(uint32_t *Ab, int ldab, const float *A, int lda, int M, int K)
{
    (void)Ab, (void)ldab, (void)A, (void)lda, (void)M, (void)K;
}

int bf16_fast(void)
{
    return 0;
}

int bf16_use_fast(int on)
{
    (void)on;
    return 0;
}

static void panels_avx512(int NP, int M, int KP, const uint32_t *Ab, const uint32_t *P, float *C,
                          int ldc, int ncols, const float *bias, int accumulate)
{
    (void)NP, (void)M, (void)KP, (void)Ab, (void)P, (void)C, (void)ldc, (void)ncols, (void)bias,
        (void)accumulate;
}

#endif

/* Columns of block j: panels nb*j .. nb*j+nb-1 (the last block may have fewer). */
static void gemm_block(int j, int nb, int M, int N, int KP, const uint32_t *Ab,
                       const uint32_t *packed, const float *bias, int accumulate, float *C, int ldc,
                       int use_fast)
{
    const int n0 = nb * j * BF16_PANEL, ncols = N - n0 < nb * BF16_PANEL ? N - n0 : nb * BF16_PANEL;
    const uint32_t *P = packed + (size_t)nb * j * KP * BF16_PANEL;
    const float *b = bias ? bias + n0 : NULL;
    if (use_fast) {
        panels_avx512((ncols + BF16_PANEL - 1) / BF16_PANEL, M, KP, Ab, P, C + n0, ldc, ncols, b,
                      accumulate);
        return;
    }
    for (int h = 0; h * BF16_PANEL < ncols; h++) {
        const int n = ncols - h * BF16_PANEL;
        panel_c(M, KP, Ab, P + (size_t)h * KP * BF16_PANEL, C + n0 + h * BF16_PANEL, ldc,
                n < BF16_PANEL ? n : BF16_PANEL, b ? b + h * BF16_PANEL : NULL, accumulate);
    }
}

void bf16_gemm(int M, int N, int K, const uint32_t *Ab, const uint32_t *packed,
               const float *bias, int accumulate, float *C, int ldc, int par)
{
    // Ab is (M, bf16_pairs(K)), packed is bf16_packed_size(N, K), C is (M,N) rows ldc apart
    if (M <= 0 || N <= 0) return;
    const int use_fast = bf16_fast(), nb = M == 1 && use_fast ? 4 : 2;
    const int KP = bf16_pairs(K), nblock = (N + nb * BF16_PANEL - 1) / (nb * BF16_PANEL);
    /* not an if() clause: even a one-thread region costs microseconds per step */
    if (par && nblock > 1) {
#pragma omp parallel for schedule(static)
        for (int j = 0; j < nblock; j++)
            gemm_block(j, nb, M, N, KP, Ab, packed, bias, accumulate, C, ldc, use_fast);
    } else {
        for (int j = 0; j < nblock; j++)
            gemm_block(j, nb, M, N, KP, Ab, packed, bias, accumulate, C, ldc, use_fast);
    }
}
