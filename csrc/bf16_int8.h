/* Products against int8 weights (AVX-512 VNNI vpdpbusd, or AVX2 vpmaddwd) for generation
 * (csrc/bf16_int8.c), the next step down from bf16.h. Not a public header.
 *
 * Each weight row n is scaled to [-127, 127] and rounded (scale s_n = max |w_n| / 127);
 * each row of the left operand likewise when it comes (s_a, the dynamic per-row scale),
 * kept as q + 128 in a uint8 for the instruction (unsigned times signed). The products
 * are int32 sums, exact: C += s_n s_a (sum_k (q_a + 128) q_w - 128 sum_k q_w). The AVX-512,
 * AVX2 and portable C kernels give the same bits. A product reads a quarter of float32's
 * bytes; the rounding costs more than bf16's (7 bits and a sign per value, against 8
 * significant bits, and a scale shared by a row).
 *
 * Rounding: v * (127 / max) to the nearest integer, ties to even (max |v| = 0: all zero). */
#ifndef RECUR_BF16_INT8_H
#define RECUR_BF16_INT8_H

#include <stddef.h>
#include <stdint.h>

/* Columns per packed panel: four 16-lane vectors. */
#define I8_PANEL 64

/* Quads of the inner dimension (vpdpbusd takes four products per lane). */
static inline int i8_quads(int K)
{
    return (K + 3) / 4;
}

/* Bytes of a packed (N,K) weight: N rounded up to whole panels times 4 i8_quads(K).
 * Panel p, quad q holds 64 lanes of 4 int8 (column p*64+c, k = 4q..4q+3); zeros past N, K. */
size_t i8_packed_size(int N, int K);

/* Packs W (N,K) rounded to int8 rows: scale (N) gets s_n, rowsum (N) sum_k q_w. */
void i8_pack(int8_t *packed, float *scale, int32_t *rowsum, const float *W, int N, int K);

/* A (M,K) rounded to uint8 rows (q + 128) at Aq + m * 4 i8_quads(K), padded with 128
 * (a zero); ascale (M) gets each row's scale. */
void i8_quantize_rows(uint8_t *Aq, float *ascale, const float *A, int lda, int M, int K);

/* C (M,N) += s_n s_a (A W^T in int32), from i8_quantize_rows and i8_pack; C's rows ldc
 * apart. With par, an OpenMP loop over the panels (outside a parallel region). */
void i8_gemm(int M, int N, int K, const uint8_t *Aq, const float *ascale, const int8_t *packed,
             const float *scale, const int32_t *rowsum, float *C, int ldc, int par);

/* A packed weight with its row scales and sums, as i8_pack fills them. */
typedef struct {
    const int8_t *packed;
    const float *scale;
    const int32_t *rowsum;
} i8_matrix;

/* 1 when a vector kernel runs: AVX-512 VNNI, or else AVX2 (the same integer sums with
 * vpmaddwd); switched as bf16.h's bf16_use_fast switches both (RECUR_BF16_FAST=0 too). */
int i8_fast(void);

#endif
