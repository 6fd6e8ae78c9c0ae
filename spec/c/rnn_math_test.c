/* Accuracy of csrc/rnn_math.h (the recurrent kernels' float exp, sigmoid and tanh)
 * against double-precision libm, rounded to float, over a sweep of float bit patterns:
 * every STRIDE-th pattern (argv[1], default 61; 1 is every float, a few minutes).
 * Errors are in ulps of the exact result. Fails (exit 1) when a bound is exceeded, or
 * when the loops GCC vectorises (for the widest of SSE, AVX2 and AVX-512 this CPU has)
 * give a different bit pattern from the scalar call.
 *
 * Bounds, over every x whose exact result is a normal float (exp: x in [-87, 88.37]):
 * exp 1 ulp; tanh 1.5 ulps (glibc's tanhf: 2.19); sigmoid 2.5 ulps, which is what
 * 1 / (1 + expf(-x)) with glibc's expf (half an ulp) reaches too (2.365 ulps at
 * x = -16.647; 2.481 over every float): the error is in the add and the division, not
 * in exp. NaN in gives NaN out. Every float (stride 1): exp 0.990, sigmoid 2.481, tanh
 * 1.330 ulps. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rnn_math.h"

enum { F_EXP, F_SIGMOID, F_TANH, NF };
static const char *const names[NF] = {"exp", "sigmoid", "tanh"};
static const double bounds[NF] = {1.0, 2.5, 1.5};

static double reference(int f, float x)
{
    double d = x;
    switch (f) {
    case F_EXP: return exp(d);
    case F_SIGMOID: return 1 / (1 + exp(-d));
    default: return tanh(d);
    }
}

/* the scalar path, kept out of any vectorised loop */
__attribute__((noinline, optimize("no-tree-vectorize"))) static float scalar(int f, float x)
{
    switch (f) {
    case F_EXP: return rnn_expf(x);
    case F_SIGMOID: return rnn_sigmoidf(x);
    default: return rnn_tanhf(x);
    }
}

/* loops like the kernels', which -O3 vectorises, in the instruction sets the kernels
 * are compiled for (csrc/rnn.c): this machine's runs here */
#if defined(__x86_64__) && defined(__ELF__)
#define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CLONES
#endif
CLONES static void vector_exp(float *y, const float *x, int n)
{
    for (int i = 0; i < n; i++) y[i] = rnn_expf(x[i]);
}
CLONES static void vector_sigmoid(float *y, const float *x, int n)
{
    for (int i = 0; i < n; i++) y[i] = rnn_sigmoidf(x[i]);
}
CLONES static void vector_tanh(float *y, const float *x, int n)
{
    for (int i = 0; i < n; i++) y[i] = rnn_tanhf(x[i]);
}

/* error of got in ulps of the exact value want (a normal float's spacing at |want|) */
static double ulps(float got, double want)
{
    int e;
    frexp(want, &e); /* |want| in [2^(e-1), 2^e): spacing 2^(e-24) */
    return fabs((double)got - want) / ldexp(1.0, e - 24);
}

int main(int argc, char **argv)
{
    long stride = argc > 1 ? atol(argv[1]) : 61;
    if (stride < 1) stride = 1;
    enum { CHUNK = 4096 };
    static float xs[CHUNK], ys[NF][CHUNK];
    double worst[NF] = {0};
    float worst_x[NF] = {0};
    long count = 0, bad = 0;
    for (uint64_t u = 0; u < (1ull << 32);) {
        int n = 0;
        while (n < CHUNK && u < (1ull << 32)) {
            xs[n++] = rnn_float_from_bits((int32_t)(uint32_t)u);
            u += (uint64_t)stride;
        }
        vector_exp(ys[F_EXP], xs, n);
        vector_sigmoid(ys[F_SIGMOID], xs, n);
        vector_tanh(ys[F_TANH], xs, n);
        for (int i = 0; i < n; i++) {
            float x = xs[i];
            for (int f = 0; f < NF; f++) {
                float got = ys[f][i], s = scalar(f, x);
                if (memcmp(&got, &s, sizeof got) != 0 && !(isnan(got) && isnan(s))) {
                    if (bad++ < 10)
                        printf("%s(%a): vectorised %a, scalar %a\n", names[f], x, got, s);
                    continue;
                }
                if (isnan(x)) {
                    if (!isnan(got) && bad++ < 10) printf("%s(nan) = %a\n", names[f], got);
                    continue;
                }
                double want = reference(f, x);
                if (f == F_EXP && (x < -87.0f || x > 88.37f)) continue; /* clamped */
                if (fabs(want) < FLT_MIN) continue; /* subnormal or zero result */
                double err = ulps(got, want);
                if (err > worst[f]) {
                    worst[f] = err;
                    worst_x[f] = x;
                }
            }
            count++;
        }
    }
    for (int f = 0; f < NF; f++) {
        printf("%-8s max error %.3f ulp at x = %.9g\n", names[f], worst[f], worst_x[f]);
        if (worst[f] > bounds[f]) bad++;
    }
    printf("%ld floats (every %ld-th bit pattern), %ld failures\n", count, stride, bad);
    return bad ? 1 : 0;
}
