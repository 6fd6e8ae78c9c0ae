/* Float exp, sigmoid and tanh for the recurrent kernels' pointwise passes.
 *
 * libm's expf and tanhf are calls that GCC cannot vectorise, and at small hidden sizes
 * those calls were a third of an LSTM's training time. These are branch-free (selects
 * and clamps instead of ifs), call nothing and use only float arithmetic and integer
 * bit operations that SSE2 and AVX2 have, so a loop over them vectorises; each result
 * is computed the same way in every lane and on every instruction set (the build keeps
 * -ffp-contract=off), so vectorised and scalar code agree bit for bit.
 *
 * Accuracy against double-precision libm over every float whose exact result is a
 * normal float (spec/c/rnn_math_test.c, stride 1): exp 0.990 ulp, sigmoid 2.481 ulps
 * (the same as 1 / (1 + expf(-x)) with glibc's expf: that error is the add's and the
 * division's), tanh 1.330 ulps (glibc's tanhf: 2.19). NaN in gives NaN out. Not a
 * public header. */
#ifndef RECUR_RNN_MATH_H
#define RECUR_RNN_MATH_H

#include <math.h>
#include <stdint.h>

/* Float loops over these are also compiled for AVX2 (x86-64-v3) and AVX-512
 * (x86-64-v4), the widest the CPU has picked at load time: two and four times the lanes
 * of the portable SSE build (on a Zen 5, AVX-512 halved the LSTM forward pass's time
 * against AVX2). Needs GCC's target_clones (an ifunc, so ELF). */
#if defined(__x86_64__) && defined(__ELF__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define RNN_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif
#endif
#ifndef RNN_CLONES
#define RNN_CLONES
#endif

static inline float rnn_float_from_bits(int32_t i)
{
    union { int32_t i; float f; } u = {.i = i};
    return u.f;
}

static inline int32_t rnn_bits_from_float(float f)
{
    union { float f; int32_t i; } u = {.f = f};
    return u.i;
}

/* exp(x) for x in [-87, 88.37]; outside, the value at the nearer end (every result is
 * a normal float, so no lane ever pays for a subnormal). Cody-Waite reduction
 * x = n ln2 + r with |r| <= ln2/2, Cephes's degree-7 polynomial for exp(r), and 2^n
 * put straight into the exponent bits. */
static inline float rnn_expf(float x)
{
    /* written as selects so that NaN passes through (both comparisons are false) */
    x = x > 88.37f ? 88.37f : x; /* n <= 127: 2^n is still a normal float */
    x = x < -87.0f ? -87.0f : x; /* n >= -126 and the product stays normal */
    /* n = round(x / ln2): adding 1.5 * 2^23 leaves n in the low mantissa bits */
    const float shifter = 12582912.0f;
    float t = x * 1.44269504088896341f + shifter;
    float n = t - shifter;
    /* ln2 = 0.693359375 - 2.12194440e-4; n * 0.693359375 is exact for |n| < 2^15 */
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float y = p * (r * r) + r + 1.0f;
    /* 2^n: t's bits are those of the shifter plus n. Unsigned arithmetic: for a NaN x
     * the bits are garbage (y is NaN anyway), and a signed shift of them would be
     * undefined behaviour (make sanitize). */
    uint32_t ni = (uint32_t)rnn_bits_from_float(t) - (uint32_t)rnn_bits_from_float(shifter);
    return y * rnn_float_from_bits((int32_t)((ni + 127u) << 23));
}

/* 1 / (1 + exp(-x)) */
static inline float rnn_sigmoidf(float x)
{
    return 1.0f / (1.0f + rnn_expf(-x));
}

/* tanh(x): for |x| < 0.625, Cephes's odd polynomial (no cancellation near 0);
 * above, 1 - 2 / (exp(2|x|) + 1) with x's sign, which reaches 1 once exp saturates.
 * Both are computed and one is selected, so the loop has no branch. */
static inline float rnn_tanhf(float x)
{
    float ax = fabsf(x);
    float s = x * x;
    float p = -5.70498872745e-3f;
    p = p * s + 2.06390887954e-2f;
    p = p * s - 5.37397155531e-2f;
    p = p * s + 1.33314422036e-1f;
    p = p * s - 3.33332819422e-1f;
    float small = p * s * x + x;
    float big = 1.0f - 2.0f / (rnn_expf(2.0f * ax) + 1.0f);
    big = copysignf(big, x);
    return ax < 0.625f ? small : big;
}

#endif
