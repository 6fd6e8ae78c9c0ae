/* bfloat16 products with float32 accumulation (see bf16.h).
 *
 * A kernel keeps an MR x (NP*32) block of C in registers (NP panels side by side, two
 * 16-lane vectors each) and runs q over the pairs of the inner dimension: per pair it
 * loads NP*2 vectors of packed weights and broadcasts each row's pair of A. Batch-1
 * generation has one row: four panels at a time give it eight independent chains, where
 * one panel's two would wait on their own latency.
 *
 * Without AVX-512 BF16, an AVX2 kernel does the same with 8-lane vectors: it widens each
 * bfloat16 to a float32 (a shift or a mask of the packed pair) and multiplies and adds
 * in float32, which is the portable kernel's arithmetic itself; see kernel_avx2 for the
 * two ways it runs, both giving the portable kernel's bits. */
#include <stdlib.h>
#include <string.h>

#include <omp.h>

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

/* The panels' pairs; the range word follows them. */
static size_t panels_size(int N, int K)
{
    return (size_t)(N + BF16_PANEL - 1) / BF16_PANEL * BF16_PANEL * (size_t)bf16_pairs(K);
}

size_t bf16_packed_size(int N, int K)
{
    return panels_size(N, K) + 1;
}

/* The smallest and the largest biased exponent of the nonzero bfloat16 among n pairs,
 * as min | max << 8 (255 | 0 << 8 when all are zero). bf16_from_float makes subnormals
 * zero, so a nonzero value has an exponent of at least 1. */
static uint32_t exponent_range(const uint32_t *pairs, size_t n)
{
    unsigned lo = 255, hi = 0;
    for (size_t i = 0; i < n; i++) {
        const unsigned v0 = pairs[i] & 0x7fffu, v1 = pairs[i] >> 16 & 0x7fffu;
        const unsigned e0 = v0 >> 7, e1 = v1 >> 7, l0 = v0 ? e0 : 255, l1 = v1 ? e1 : 255;
        lo = l0 < lo ? l0 : lo;
        lo = l1 < lo ? l1 : lo;
        hi = e0 > hi ? e0 : hi;
        hi = e1 > hi ? e1 : hi;
    }
    return lo | hi << 8;
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
    const size_t n = panels_size(N, 2 * KP);
    packed[n] = exponent_range(packed, n);
}

static void convert_rows_fast(uint32_t *Ab, int ldab, const float *A, int lda, int M, int K);

void bf16_convert_rows(uint32_t *Ab, int ldab, const float *A, int lda, int M, int K)
{
    // A is (M,K), Ab is (M, bf16_pairs(K)) with rows ldab apart
    const int KP = bf16_pairs(K);
    if (bf16_level() == BF16_AVX512) {
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

/* The best kernel the CPU has: BF16_AVX512, BF16_AVX2 or BF16_PORTABLE. */
static int cpu_level(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl"))
        return BF16_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return BF16_AVX2;
    return BF16_PORTABLE;
}

/* the kernel that runs; -1 not looked up yet */
static int level = -1;

int bf16_level(void)
{
    int l = __atomic_load_n(&level, __ATOMIC_RELAXED);
    if (l < 0) {
        const char *env = getenv("RECUR_BF16_FAST");
        l = env && strcmp(env, "0") == 0 ? BF16_PORTABLE : cpu_level();
        __atomic_store_n(&level, l, __ATOMIC_RELAXED);
    }
    return l;
}

int bf16_use_fast(int on)
{
    int l = on ? cpu_level() : BF16_PORTABLE;
    if (on == BF16_AVX2 && l > BF16_AVX2) l = BF16_AVX2;
    __atomic_store_n(&level, l, __ATOMIC_RELAXED);
    return bf16_fast();
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

/* Pairs ahead that one row's kernel asks each panel's stream for (a prefetch past the
 * last panel reads nothing and cannot fault): a step of batch-1 generation streams all
 * its weights from L3 (a 2 x 512 LSTM's 6.3 MB), and the prefetch took that model's
 * step on one Zen 5 core from 110 to 97-104 us. */
#define BF16_AHEAD 16
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
        if (MR == 1)
            for (int v = 0; v < 2 * NP; v++)
                _mm_prefetch((const char *)(P + (v / 2) * panel + (size_t)(q + BF16_AHEAD) * BF16_PANEL + 16 * (v % 2)), _MM_HINT_T0);
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

/* ---- AVX2 and FMA ---- */

#define AVX2_TARGET "avx2,fma"

/* Rows per AVX2 kernel when M > 1: two rows of a panel's four vectors are eight chains
 * in twelve registers (the sums, the rows' widened pairs); three rows would spill. */
#define AVX2_MR 2

/* ftz (the portable kernel's) on 8 lanes: |s| below FLT_MIN becomes the zero of s's
 * sign, by masks (the MXCSR's flush-to-zero would flush the products too); NaN fails the
 * ordered compare and stays. */
__attribute__((target(AVX2_TARGET), always_inline)) static inline __m256 ftz_avx2(__m256 s)
{
    const __m256 magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 tiny = _mm256_cmp_ps(_mm256_and_ps(s, magnitude), _mm256_set1_ps(0x1p-126f), _CMP_LT_OQ);
    return _mm256_andnot_ps(_mm256_and_ps(tiny, magnitude), s);
}

/* C (MR, NV*8) from pairs q = 0..KP-1: vector v is columns 8v..8v+7, lanes 8(v%4).. of
 * panel v/4 (P's panels KP*32 pairs apart); columns past ncols neither read nor written.
 * A bfloat16 is the high half of its float32, so the pair (w[k] low, w[k+1] high)
 * widens to w[k+1] by masking the low half off and to w[k] by a shift.
 * fused = 0 takes the portable kernel's steps in its order: per pair, multiply, add,
 * ftz for w[k+1], then for w[k]. fused = 1 takes one FMA per product and no ftz, half the
 * instructions; bf16_gemm asks for it only where it gives the same bits (fused_exact). */
__attribute__((target(AVX2_TARGET), always_inline)) static inline void
kernel_avx2(const int fused, const int MR, const int NV, int KP, const uint32_t *Ab,
            const uint32_t *P, float *C, int ldc, int ncols, const float *bias, int accumulate)
{
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i high = _mm256_set1_epi32((int)0xffff0000u);
    __m256 acc[AVX2_MR][8];
    __m256i mask[8];
    for (int v = 0; v < NV; v++) mask[v] = _mm256_cmpgt_epi32(_mm256_set1_epi32(ncols - 8 * v), lane);
    for (int i = 0; i < MR; i++)
        for (int v = 0; v < NV; v++) {
            const float *S = bias ? bias + 8 * v : C + (size_t)i * ldc + 8 * v; /* where sums start */
            if (!bias && !accumulate) acc[i][v] = _mm256_setzero_ps();
            else if (ncols >= 8 * (v + 1)) acc[i][v] = _mm256_loadu_ps(S);
            else acc[i][v] = _mm256_maskload_ps(S, mask[v]);
        }
    const size_t panel = (size_t)KP * BF16_PANEL;
    for (int q = 0; q < KP; q++) {
        __m256 a1[AVX2_MR], a0[AVX2_MR];
        for (int i = 0; i < MR; i++) {
            const __m256i a = _mm256_castps_si256(_mm256_broadcast_ss((const float *)(Ab + (size_t)i * KP + q)));
            a1[i] = _mm256_castsi256_ps(_mm256_and_si256(a, high));
            a0[i] = _mm256_castsi256_ps(_mm256_slli_epi32(a, 16));
        }
        for (int v = 0; v < NV; v++) {
            const __m256i w = _mm256_loadu_si256((const __m256i *)(P + (v / 4) * panel + (size_t)q * BF16_PANEL + 8 * (v % 4)));
            const __m256 w1 = _mm256_castsi256_ps(_mm256_and_si256(w, high));
            const __m256 w0 = _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
            for (int i = 0; i < MR; i++) {
                if (fused) {
                    acc[i][v] = _mm256_fmadd_ps(a1[i], w1, acc[i][v]);
                    acc[i][v] = _mm256_fmadd_ps(a0[i], w0, acc[i][v]);
                } else {
                    acc[i][v] = ftz_avx2(_mm256_add_ps(acc[i][v], _mm256_mul_ps(a1[i], w1)));
                    acc[i][v] = ftz_avx2(_mm256_add_ps(acc[i][v], _mm256_mul_ps(a0[i], w0)));
                }
            }
        }
    }
    for (int i = 0; i < MR; i++)
        for (int v = 0; v < NV; v++) {
            float *C_iv = C + (size_t)i * ldc + 8 * v;
            if (ncols >= 8 * (v + 1)) _mm256_storeu_ps(C_iv, acc[i][v]);
            else _mm256_maskstore_ps(C_iv, mask[v], acc[i][v]);
        }
}

/* NP (1 or 2) panels' columns of C for all M rows. One row (batch-1 generation) takes
 * both panels at once: eight chains, which the FMAs' latency (4 cycles, 2 a cycle on
 * Zen 3) needs; more rows take a panel at a time, AVX2_MR rows at a time. */
#define AVX2_KERNEL(MR, NV, A_i, P_h, C_i, n, b)                                             \
    (fused ? kernel_avx2(1, MR, NV, KP, A_i, P_h, C_i, ldc, n, b, accumulate)                  \
           : kernel_avx2(0, MR, NV, KP, A_i, P_h, C_i, ldc, n, b, accumulate))

__attribute__((target(AVX2_TARGET), noinline)) static void
panels_avx2(int fused, int NP, int M, int KP, const uint32_t *Ab, const uint32_t *P, float *C,
            int ldc, int ncols, const float *bias, int accumulate)
{
    if (M == 1) {
        if (NP == 2) AVX2_KERNEL(1, 8, Ab, P, C, ncols, bias);
        else AVX2_KERNEL(1, 4, Ab, P, C, ncols, bias);
        return;
    }
    for (int h = 0; h < NP; h++) {
        const uint32_t *P_h = P + (size_t)h * KP * BF16_PANEL;
        const int n = ncols - h * BF16_PANEL < BF16_PANEL ? ncols - h * BF16_PANEL : BF16_PANEL;
        const float *b = bias ? bias + h * BF16_PANEL : NULL;
        for (int i = 0; i < M; i += AVX2_MR) {
            const uint32_t *A_i = Ab + (size_t)i * KP;
            float *C_i = C + (size_t)i * ldc + h * BF16_PANEL;
            if (M - i >= 2) AVX2_KERNEL(2, 4, A_i, P_h, C_i, n, b);
            else AVX2_KERNEL(1, 4, A_i, P_h, C_i, n, b);
        }
    }
}

#else /* no AVX-512 or AVX2 kernel */

int bf16_level(void)
{
    return BF16_PORTABLE;
}

int bf16_use_fast(int on)
{
    (void)on;
    return 0;
}

static void convert_rows_fast(uint32_t *Ab, int ldab, const float *A, int lda, int M, int K)
{
    (void)Ab, (void)ldab, (void)A, (void)lda, (void)M, (void)K;
}

static void panels_avx512(int NP, int M, int KP, const uint32_t *Ab, const uint32_t *P, float *C,
                          int ldc, int ncols, const float *bias, int accumulate)
{
    (void)NP, (void)M, (void)KP, (void)Ab, (void)P, (void)C, (void)ldc, (void)ncols, (void)bias,
        (void)accumulate;
}

static void panels_avx2(int fused, int NP, int M, int KP, const uint32_t *Ab, const uint32_t *P,
                        float *C, int ldc, int ncols, const float *bias, int accumulate)
{
    (void)fused, (void)NP, (void)M, (void)KP, (void)Ab, (void)P, (void)C, (void)ldc, (void)ncols,
        (void)bias, (void)accumulate;
}

#endif

int bf16_fast(void)
{
    return bf16_level() != BF16_PORTABLE;
}

/* 1 when an FMA per product and no ftz give the portable kernel's bits for this
 * product, which holds when the bfloat16 exponents are in a range no trained network
 * leaves (the caller then takes the AVX2 kernel's fused form):
 * - every product is exact in float32, so an FMA rounds what the portable kernel's add
 *   rounds: a nonzero product of bfloat16 a = m_a 2^(e_a-7), w = m_w 2^(e_w-7) (m 8
 *   bits) is m_a m_w 2^(e_a+e_w-14), 16 bits, at least 2^(e_a+e_w) and below
 *   2^(e_a+e_w+2): normal when e_a + e_w >= -111 and finite when e_a + e_w <= 126;
 * - no sum falls below FLT_MIN, so ftz never changes one: every product and every
 *   starting value (bias or C; zero, or at least 2^-102 and finite) is a multiple of
 *   2^-125, hence so is every sum rounded to float32 (a float32 of magnitude at least
 *   2^-102 is a multiple of its ulp, itself one of 2^-125; a smaller one is exact), and
 *   a nonzero multiple of 2^-125 is above FLT_MIN = 2^-126.
 * Zero products and zero sums are the same bits either way (IEEE signs of exact sums);
 * infinities, NaN or tinier values send the product to the unfused form. */
static int fused_exact(int M, int N, int KP, const uint32_t *Ab, const uint32_t *packed,
                       const float *bias, int accumulate, const float *C, int ldc)
{
    const uint32_t ra = exponent_range(Ab, (size_t)M * KP), rw = packed[panels_size(N, 2 * KP)];
    const unsigned amin = ra & 255, amax = ra >> 8, wmin = rw & 255, wmax = rw >> 8;
    /* biased exponents: e_a + e_w >= -111 and <= 126 */
    if (amin + wmin < 127 + 127 - 111 || amax + wmax > 127 + 127 + 126 || amax == 255 || wmax == 255)
        return 0;
    const float *S = bias ? bias : accumulate ? C : NULL;
    const int rows = bias ? 1 : M;
    unsigned outside = 0;
    for (int i = 0; S && i < rows; i++)
        for (int n = 0; n < N; n++) {
            uint32_t u;
            memcpy(&u, S + (size_t)i * ldc + n, sizeof u);
            const uint32_t e = u >> 23 & 255;
            outside |= ((u & 0x7fffffffu) != 0) & ((e < 127 - 102) | (e == 255));
        }
    return !outside;
}

/* Panels p..p+np-1 of C for all M rows (fewer where N ends): np at most 4, and at most
 * 2 unless M is 1. */
static void gemm_panels(int p, int np, int M, int N, int KP, const uint32_t *Ab,
                        const uint32_t *packed, const float *bias, int accumulate, float *C, int ldc,
                        int level, int fused)
{
    const int n0 = p * BF16_PANEL, ncols = N - n0 < np * BF16_PANEL ? N - n0 : np * BF16_PANEL;
    np = (ncols + BF16_PANEL - 1) / BF16_PANEL;
    const uint32_t *P = packed + (size_t)p * KP * BF16_PANEL;
    const float *b = bias ? bias + n0 : NULL;
    if (level == BF16_AVX512) {
        panels_avx512(np, M, KP, Ab, P, C + n0, ldc, ncols, b, accumulate);
        return;
    }
    if (level == BF16_AVX2) {
        panels_avx2(fused, np, M, KP, Ab, P, C + n0, ldc, ncols, b, accumulate);
        return;
    }
    for (int h = 0; h < np; h++) {
        const int n = ncols - h * BF16_PANEL;
        panel_c(M, KP, Ab, P + (size_t)h * KP * BF16_PANEL, C + n0 + h * BF16_PANEL, ldc,
                n < BF16_PANEL ? n : BF16_PANEL, b ? b + h * BF16_PANEL : NULL, accumulate);
    }
}

/* Bytes of A's pairs a row block holds: a block of rows stays in L2 while every block of
 * columns passes over it. Over all rows at once, each block of columns read every row
 * of A again from L3 or memory: a gru's input projection, (3200,1536,512) on one Zen 4
 * core, ran at 187-189 GFLOP/s; in blocks of 192 KB at 198-199, the peak 226-234
 * (bench/kernels.c). */
#define BF16_ROW_BLOCK_BYTES (192 * 1024)

/* Rows per row block for rows of KP pairs: a whole number of kernels' rows. */
static int row_block(int KP)
{
    const int rows = (int)(BF16_ROW_BLOCK_BYTES / (4 * (size_t)KP)) / MR_MAX * MR_MAX;
    return rows > MR_MAX ? rows : MR_MAX;
}

/* Panels p0..p1-1 for all M rows, a row block at a time, nb panels to a kernel. */
static void gemm_range(int p0, int p1, int nb, int M, int N, int KP, const uint32_t *Ab,
                       const uint32_t *packed, const float *bias, int accumulate, float *C, int ldc,
                       int level, int fused)
{
    const int rows = row_block(KP);
    for (int i0 = 0; i0 < M; i0 += rows) {
        const int mr = M - i0 < rows ? M - i0 : rows;
        for (int p = p0; p < p1; p += nb)
            gemm_panels(p, p1 - p < nb ? p1 - p : nb, mr, N, KP, Ab + (size_t)i0 * KP, packed, bias,
                        accumulate, C + (size_t)i0 * ldc, ldc, level, fused);
    }
}

/* Panels side by side in one kernel: one row (batch-1 generation) takes four, eight
 * chains; more rows two. */
static int kernel_panels(int M, int level)
{
    return M == 1 && level == BF16_AVX512 ? 4 : 2;
}

void bf16_gemm(int M, int N, int K, const uint32_t *Ab, const uint32_t *packed,
               const float *bias, int accumulate, float *C, int ldc, int par)
{
    // Ab is (M, bf16_pairs(K)), packed is bf16_packed_size(N, K), C is (M,N) rows ldc apart
    if (M <= 0 || N <= 0) return;
    const int level = bf16_level(), nb = kernel_panels(M, level);
    const int KP = bf16_pairs(K), npanel = (N + BF16_PANEL - 1) / BF16_PANEL;
    const int nblock = (npanel + nb - 1) / nb;
    const int fused = level == BF16_AVX2 && fused_exact(M, N, KP, Ab, packed, bias, accumulate, C, ldc);
    /* not an if() clause: even a one-thread region costs microseconds per step */
    if (par && nblock > 1) {
#pragma omp parallel
        {
            /* whole kernels' panels to each thread */
            const int t = omp_get_thread_num(), nt = omp_get_num_threads();
            const int p0 = (int)((int64_t)nblock * t / nt) * nb, p1 = (int)((int64_t)nblock * (t + 1) / nt) * nb;
            gemm_range(p0, p1 < npanel ? p1 : npanel, nb, M, N, KP, Ab, packed, bias, accumulate, C,
                       ldc, level, fused);
        }
    } else {
        gemm_range(0, npanel, nb, M, N, KP, Ab, packed, bias, accumulate, C, ldc, level, fused);
    }
}

void bf16_gemm_panels(int M, int N, int K, const uint32_t *Ab, const uint32_t *packed,
                      const float *bias, int accumulate, float *C, int ldc, int p0, int p1)
{
    if (M <= 0 || N <= 0 || p1 <= p0) return;
    const int level = bf16_level(), KP = bf16_pairs(K);
    const int fused = level == BF16_AVX2 && fused_exact(M, N, KP, Ab, packed, bias, accumulate, C, ldc);
    gemm_range(p0, p1, kernel_panels(M, level), M, N, KP, Ab, packed, bias, accumulate, C, ldc, level,
               fused);
}
