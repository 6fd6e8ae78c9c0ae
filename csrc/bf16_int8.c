/* int8 products with int32 sums (see bf16_int8.h).
 *
 * One panel of 64 columns at a time, four vectors of sixteen int32 sums per row of A:
 * per quad of the inner dimension, four loads of packed weights (256 bytes) and one
 * broadcast of the row's four uint8 values. At batch 1 a product is a read of the
 * weights: (2048,512) took 12 us on one Zen 5 core against bf16's 24 us.
 *
 * Without AVX-512 VNNI, an AVX2 kernel widens the bytes to 16 bits (the row's uint8 by
 * zero, the weights' int8 by sign) and multiplies pairs with vpmaddwd into int32; its
 * sums are the same integers (vpmaddubsw would saturate at 16 bits), and the scaling
 * after them is the portable kernel's own (finish). */
#include <string.h>

#include "bf16.h"
#include "bf16_int8.h"

/* 1.5 * 2^23: adding and subtracting it rounds a float of magnitude below 2^22 to an
 * integer, ties to even, in plain float arithmetic that vectorises (lrintf does not
 * everywhere) and rounds alike on every path. */
#define I8_ROUND 12582912.0f

static inline int quantize(float v, float inv)
{
    return (int)((v * inv + I8_ROUND) - I8_ROUND);
}

size_t i8_packed_size(int N, int K)
{
    return (size_t)(N + I8_PANEL - 1) / I8_PANEL * I8_PANEL * 4 * (size_t)i8_quads(K);
}

/* The scale of a row and the factor that maps it to [-127, 127]. */
static float row_scale(const float *v, int K, float *inv)
{
    float m = 0;
    for (int k = 0; k < K; k++) {
        float a = v[k] < 0 ? -v[k] : v[k];
        m = a > m ? a : m;
    }
    *inv = m > 1e-30f ? 127 / m : 0; /* (a tinier row would overflow 127 / m: zeros) */
    return m / 127;
}

void i8_pack(int8_t *packed, float *scale, int32_t *rowsum, const float *W, int N, int K)
{
    // W is (N,K), packed is i8_packed_size(N, K) bytes, scale and rowsum are (N)
    const int KQ = i8_quads(K);
    memset(packed, 0, i8_packed_size(N, K));
    for (int n = 0; n < N; n++) {
        const float *w_n = W + (size_t)n * K;
        float inv;
        scale[n] = row_scale(w_n, K, &inv);
        int32_t sum = 0;
        const int p = n / I8_PANEL, c = n % I8_PANEL;
        for (int k = 0; k < K; k++) {
            int q = quantize(w_n[k], inv);
            sum += q;
            packed[(((size_t)p * KQ + k / 4) * I8_PANEL + c) * 4 + k % 4] = (int8_t)q;
        }
        rowsum[n] = sum;
    }
}

void i8_quantize_rows(uint8_t *Aq, float *ascale, const float *A, int lda, int M, int K)
{
    // A is (M,K), Aq is (M, 4 i8_quads(K)) bytes, ascale is (M)
    const int KQ4 = 4 * i8_quads(K);
    for (int m = 0; m < M; m++) {
        const float *a = A + (size_t)m * lda;
        uint8_t *aq = Aq + (size_t)m * KQ4;
        float inv;
        ascale[m] = row_scale(a, K, &inv);
        for (int k = 0; k < K; k++) aq[k] = (uint8_t)(quantize(a[k], inv) + 128);
        for (int k = K; k < KQ4; k++) aq[k] = 128;
    }
}

/* C row m, columns n0..n0+ncols-1 += the int32 sums acc (one per column) scaled. */
static void finish(float *C, const int32_t *acc, int ncols, float sa, const float *scale,
                   const int32_t *rowsum)
{
    for (int c = 0; c < ncols; c++)
        C[c] += scale[c] * sa * (float)(acc[c] - 128 * rowsum[c]);
}

static void panel_c(int M, int KQ, const uint8_t *Aq, const float *ascale, const int8_t *P,
                    const float *scale, const int32_t *rowsum, float *C, int ldc, int ncols)
{
    for (int m = 0; m < M; m++) {
        const uint8_t *a = Aq + (size_t)m * KQ * 4;
        int32_t acc[I8_PANEL] = {0};
        for (int q = 0; q < KQ; q++) {
            const int8_t *w = P + (size_t)q * I8_PANEL * 4;
            for (int c = 0; c < I8_PANEL; c++)
                for (int e = 0; e < 4; e++) acc[c] += (int32_t)a[4 * q + e] * w[4 * c + e];
        }
        finish(C + (size_t)m * ldc, acc, ncols, ascale[m], scale, rowsum);
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* The int8 kernel that runs, as bf16_level() (whose switch it follows). */
static int i8_level(void)
{
    const int l = bf16_level();
    /* every CPU with AVX-512 BF16 so far has VNNI too, but ask */
    if (l == BF16_AVX512 && !__builtin_cpu_supports("avx512vnni")) return BF16_AVX2;
    return l;
}

__attribute__((target("avx512f,avx512bw,avx512vnni"), noinline)) static void
panel_avx512(int M, int KQ, const uint8_t *Aq, const float *ascale, const int8_t *P,
             const float *scale, const int32_t *rowsum, float *C, int ldc, int ncols)
{
    for (int m = 0; m < M; m++) {
        const uint32_t *a = (const uint32_t *)(Aq + (size_t)m * KQ * 4);
        __m512i acc0 = _mm512_setzero_si512(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
        for (int q = 0; q < KQ; q++) {
            const int8_t *w = P + (size_t)q * I8_PANEL * 4;
            __m512i x = _mm512_set1_epi32((int)a[q]);
            acc0 = _mm512_dpbusd_epi32(acc0, x, _mm512_loadu_si512(w));
            acc1 = _mm512_dpbusd_epi32(acc1, x, _mm512_loadu_si512(w + 64));
            acc2 = _mm512_dpbusd_epi32(acc2, x, _mm512_loadu_si512(w + 128));
            acc3 = _mm512_dpbusd_epi32(acc3, x, _mm512_loadu_si512(w + 192));
        }
        int32_t acc[I8_PANEL];
        _mm512_storeu_si512(acc, acc0);
        _mm512_storeu_si512(acc + 16, acc1);
        _mm512_storeu_si512(acc + 32, acc2);
        _mm512_storeu_si512(acc + 48, acc3);
        finish(C + (size_t)m * ldc, acc, ncols, ascale[m], scale, rowsum);
    }
}

/* Rows of A per AVX2 kernel when M > 1 (two rows of 16 columns: eight sums, four
 * widened weight vectors in registers). */
#define I8_AVX2_MR 2

/* The sums of rows 0..MR-1 for columns c0..c0+4NV-1 of a panel into acc (MR rows of
 * I8_PANEL). A vector holds 4 columns' 4 products of a quad as 16-bit values; vpmaddwd
 * adds them in pairs, so each column has two int32 lanes, added at the end. */
__attribute__((target("avx2"), always_inline)) static inline void
kernel_i8_avx2(const int MR, const int NV, int KQ, const uint8_t *Aq, const int8_t *P, int c0,
               int32_t acc[][I8_PANEL])
{
    __m256i sum[I8_AVX2_MR][8];
    for (int i = 0; i < MR; i++)
        for (int v = 0; v < NV; v++) sum[i][v] = _mm256_setzero_si256();
    for (int q = 0; q < KQ; q++) {
        const int8_t *w = P + ((size_t)q * I8_PANEL + c0) * 4;
        __m256i a[I8_AVX2_MR];
        for (int i = 0; i < MR; i++) {
            int32_t a4;
            memcpy(&a4, Aq + ((size_t)i * KQ + q) * 4, sizeof a4);
            a[i] = _mm256_cvtepu8_epi16(_mm_set1_epi32(a4)); /* a[4q..4q+3] four times */
        }
        for (int v = 0; v < NV; v++) {
            const __m256i w16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + 16 * v)));
            for (int i = 0; i < MR; i++)
                sum[i][v] = _mm256_add_epi32(sum[i][v], _mm256_madd_epi16(a[i], w16));
        }
    }
    for (int i = 0; i < MR; i++) {
        int32_t lanes[64];
        for (int v = 0; v < NV; v++) _mm256_storeu_si256((__m256i *)(lanes + 8 * v), sum[i][v]);
        for (int c = 0; c < 4 * NV; c++) acc[i][c0 + c] = lanes[2 * c] + lanes[2 * c + 1];
    }
}

/* One row takes 32 columns at a time (eight chains of sums); more rows 16 columns of
 * two rows. */
__attribute__((target("avx2"), noinline)) static void
panel_avx2(int M, int KQ, const uint8_t *Aq, const float *ascale, const int8_t *P,
           const float *scale, const int32_t *rowsum, float *C, int ldc, int ncols)
{
    int32_t acc[I8_AVX2_MR][I8_PANEL];
    for (int m = 0; m < M; m += I8_AVX2_MR) {
        const int mr = M - m < I8_AVX2_MR ? M - m : I8_AVX2_MR;
        const uint8_t *A_m = Aq + (size_t)m * KQ * 4;
        for (int c0 = 0; c0 < ncols; c0 += mr == 1 ? 32 : 16) {
            if (mr == 1) kernel_i8_avx2(1, 8, KQ, A_m, P, c0, acc);
            else kernel_i8_avx2(2, 4, KQ, A_m, P, c0, acc);
        }
        for (int i = 0; i < mr; i++)
            finish(C + (size_t)(m + i) * ldc, acc[i], ncols, ascale[m + i], scale, rowsum);
    }
}

#else

static int i8_level(void)
{
    return BF16_PORTABLE;
}

static void panel_avx512(int M, int KQ, const uint8_t *Aq, const float *ascale, const int8_t *P,
                         const float *scale, const int32_t *rowsum, float *C, int ldc, int ncols)
{
    panel_c(M, KQ, Aq, ascale, P, scale, rowsum, C, ldc, ncols);
}

static void panel_avx2(int M, int KQ, const uint8_t *Aq, const float *ascale, const int8_t *P,
                       const float *scale, const int32_t *rowsum, float *C, int ldc, int ncols)
{
    panel_c(M, KQ, Aq, ascale, P, scale, rowsum, C, ldc, ncols);
}

#endif

int i8_fast(void)
{
    return i8_level() != BF16_PORTABLE;
}

static void gemm_panel(int p, int M, int N, int KQ, const uint8_t *Aq, const float *ascale,
                       const int8_t *packed, const float *scale, const int32_t *rowsum, float *C,
                       int ldc, int level)
{
    const int n0 = p * I8_PANEL, ncols = N - n0 < I8_PANEL ? N - n0 : I8_PANEL;
    const int8_t *P = packed + (size_t)p * KQ * I8_PANEL * 4;
    if (level == BF16_AVX512) panel_avx512(M, KQ, Aq, ascale, P, scale + n0, rowsum + n0, C + n0, ldc, ncols);
    else if (level == BF16_AVX2) panel_avx2(M, KQ, Aq, ascale, P, scale + n0, rowsum + n0, C + n0, ldc, ncols);
    else panel_c(M, KQ, Aq, ascale, P, scale + n0, rowsum + n0, C + n0, ldc, ncols);
}

void i8_gemm(int M, int N, int K, const uint8_t *Aq, const float *ascale, const int8_t *packed,
             const float *scale, const int32_t *rowsum, float *C, int ldc, int par)
{
    // Aq is (M, 4 i8_quads(K)), packed is i8_packed_size(N, K), C is (M,N) rows ldc apart
    if (M <= 0 || N <= 0) return;
    const int KQ = i8_quads(K), npanel = (N + I8_PANEL - 1) / I8_PANEL, level = i8_level();
    if (par && npanel > 1) {
#pragma omp parallel for schedule(static)
        for (int p = 0; p < npanel; p++)
            gemm_panel(p, M, N, KQ, Aq, ascale, packed, scale, rowsum, C, ldc, level);
    } else {
        for (int p = 0; p < npanel; p++)
            gemm_panel(p, M, N, KQ, Aq, ascale, packed, scale, rowsum, C, ldc, level);
    }
}
