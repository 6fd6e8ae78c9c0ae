/* Products against bfloat16 weights with float32 accumulation, for inference
 * (csrc/bf16.c). Not a public header.
 *
 * bfloat16 is float32 with the low 16 bits of the mantissa dropped: the same range, an
 * 8-bit significand (relative rounding error at most 2^-9). Weights are rounded once
 * (to nearest, ties to even) and packed; the left operand is rounded row by row as it
 * comes; every product and sum is float32. On a CPU with AVX-512 BF16 each
 * vdpbf16ps does 32 such multiply-adds and the weights take half the bytes of float32,
 * which is what batch-1 generation, bound by reading the weights, gains from. On a CPU
 * with AVX2 and FMA but not AVX-512 BF16 (Zen 3, Haswell to Alder Lake), an AVX2 kernel
 * widens the bfloat16 to float32 in registers and does 8 multiply-adds an instruction.
 *
 * The arithmetic is vdpbf16ps's exactly, in the AVX-512 kernel, the AVX2 one and the
 * portable C one: for each output, over the pairs (k, k+1) of the inner dimension in
 * order, first acc += a[k+1]*w[k+1] and then acc += a[k]*w[k], each a float32 sum
 * rounded to nearest (the product of two bfloat16 is exact in float32), with results
 * below FLT_MIN flushed to zero. So the kernels give the same bits
 * (spec/core/bf16_spec.lua, spec/core/bf16_avx2_spec.lua), and results do not depend on
 * the thread count. (The one difference: a single product below FLT_MIN, 1e-38, which
 * no trained network has, is rounded by the C and AVX2 kernels and kept exact inside
 * the AVX-512 instruction's fused sum.)
 *
 * Letters: M rows of the left operand A (M,K); W is (N,K) as PyTorch stores a layer's
 * weight, and C (M,N) = A W^T. */
#ifndef RECUR_BF16_H
#define RECUR_BF16_H

#include <stddef.h>
#include <stdint.h>

/* Columns per packed panel. */
#define BF16_PANEL 32

/* The bfloat16 nearest to x (ties to even; NaN stays NaN; float32 subnormals become
 * zero, as the instructions treat them), as its 16 bits; and back. */
uint16_t bf16_from_float(float x);
float bf16_to_float(uint16_t b);

/* Pairs of the inner dimension: K rounded up to even, halved. */
static inline int bf16_pairs(int K)
{
    return (K + 1) / 2;
}

/* uint32 elements (bfloat16 pairs) of a packed (N,K) operand: N rounded up to whole
 * panels, times bf16_pairs(K), and one word more. Panel p, pair q holds 32 lanes, lane
 * c = column p*32+c as (w[k] low half, w[k+1] high half), k = 2q; zeros past N and K.
 * The last word holds the range of the weights' exponents, which the AVX2 kernel reads
 * (bf16.c, fused_exact). */
size_t bf16_packed_size(int N, int K);

/* Packs [W1 W2] rounded to bfloat16, W1 (N,K1) and W2 (N,K2) (or NULL and K2 = 0) side
 * by side, each padded to whole pairs: the operand of A = [A1 A2] with A1's and A2's
 * rows converted into one row (bf16_convert_rows at pair offsets 0 and
 * bf16_pairs(K1)), K = 2 (bf16_pairs(K1) + bf16_pairs(K2)). A recurrent step's
 * x_t w_ih^T + h w_hh^T is then one product. */
void bf16_pack(uint32_t *packed, const float *W1, int K1, const float *W2, int K2, int N);

/* A (M,K) rounded to bfloat16 pairs: row m at Ab + m*ldab, bf16_pairs(K) pairs, the
 * last padded with zero. */
void bf16_convert_rows(uint32_t *Ab, int ldab, const float *A, int lda, int M, int K);

/* C (M,N) = Ab W^T + S, Ab from bf16_convert_rows (rows bf16_pairs(K) apart), W packed,
 * S the row bias (N) repeated when bias is given, else C when accumulate, else 0. C
 * row-major with row stride ldc. With par, an OpenMP loop over the panels (call it
 * outside a parallel region). */
void bf16_gemm(int M, int N, int K, const uint32_t *Ab, const uint32_t *packed,
               const float *bias, int accumulate, float *C, int ldc, int par);

/* Panels p0..p1-1 of the same product (its columns p0*BF16_PANEL up to p1*BF16_PANEL or
 * N), on the calling thread: a thread's share of a step when the threads split a
 * layer's units (bf16_rnn.c). The same sums as bf16_gemm. */
void bf16_gemm_panels(int M, int N, int K, const uint32_t *Ab, const uint32_t *packed,
                      const float *bias, int accumulate, float *C, int ldc, int p0, int p1);

/* The kernels, best first; bf16_level() says which one runs: the best the CPU has
 * (AVX-512 BF16; else AVX2 and FMA; else the portable C one), unless switched. */
enum { BF16_PORTABLE = 0, BF16_AVX2 = 2, BF16_AVX512 = 3 };
int bf16_level(void);

/* 1 when a vector kernel runs (AVX-512 BF16 or AVX2), 0 for the portable C one. */
int bf16_fast(void);

/* Switches the kernels (bfloat16 and int8 alike): on = 0 the portable C kernel
 * everywhere (for tests), 1 the best the CPU has, BF16_AVX2 the AVX2 one even where
 * AVX-512 BF16 is there (for tests). RECUR_BF16_FAST=0 in the environment at the first
 * call selects the portable kernel too. Returns bf16_fast(). */
int bf16_use_fast(int on);

#endif
