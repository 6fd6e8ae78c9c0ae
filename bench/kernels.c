/* recur's product kernels timed alone on the calling thread, to hold them against the
 * FMA peak (bench/peak.c) without a layer's other work around them:
 *
 *   make build/bench/kernels
 *   OMP_NUM_THREADS=1 build/bench/kernels packed M N K [reps]
 *   OMP_NUM_THREADS=1 build/bench/kernels blocked ta tb M N K [reps]
 *   OMP_NUM_THREADS=1 build/bench/kernels bf16 M N K [reps]
 *
 * packed: a recurrent step's product, C (M,N) = A (M,K) W^T with W packed once
 * (rnn_gemm_packed_panels, all panels), as every step of a layer runs it; the same W
 * each repetition, so that W comes from wherever its size lets it stay (L2 up to 1 MB,
 * else L3). blocked: the product over all rows (rnn_gemm_blocked), op(A) (M,K) op(B)
 * (K,N), with ta, tb as rnn_gemm.h has them (a layer's input projection is 0 1, its dx
 * 0 0, its dW 1 0). bf16: bf16_gemm with W packed once and A rounded once. Prints the
 * best of 7 timings of reps repetitions (default: about 2 GFLOP each) in GFLOP/s.
 * Operands are uniform in [-0.5, 0.5); the timings do not depend on them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../csrc/bf16.h"
#include "../csrc/rnn_gemm.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float *uniform(size_t n)
{
    float *p = malloc(n * sizeof *p);
    if (!p) {
        fprintf(stderr, "kernels: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) p[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    return p;
}

static int arg(int argc, char **argv, int i, int fallback)
{
    return i < argc ? atoi(argv[i]) : fallback;
}

int main(int argc, char **argv)
{
    const char *kind = argc > 1 ? argv[1] : "";
    const int blocked = strcmp(kind, "blocked") == 0, bf16 = strcmp(kind, "bf16") == 0;
    const int first = blocked ? 4 : 2; /* where M N K start */
    if ((!blocked && !bf16 && strcmp(kind, "packed") != 0) || argc < first + 3) {
        fprintf(stderr, "usage: kernels packed|bf16 M N K [reps] | kernels blocked ta tb M N K [reps]\n");
        return 2;
    }
    const int ta = blocked ? atoi(argv[2]) : 0, tb = blocked ? atoi(argv[3]) : 1;
    const int M = atoi(argv[first]), N = atoi(argv[first + 1]), K = atoi(argv[first + 2]);
    if (M <= 0 || N <= 0 || K <= 0) {
        fprintf(stderr, "kernels: M, N and K must be positive\n");
        return 2;
    }
    const double flops = 2.0 * M * N * K;
    const int reps = arg(argc, argv, first + 3, flops < 2e9 ? (int)(2e9 / flops) + 1 : 1);
    if (!bf16 && !rnn_gemm_packed_available()) {
        fprintf(stderr, "kernels: this CPU has no packed kernels (AVX2 and FMA)\n");
        return 1;
    }
    float *A = uniform((size_t)M * K), *W = uniform((size_t)N * K), *C = uniform((size_t)M * N);
    float *P = NULL;
    uint32_t *Ab = NULL, *Pb = NULL;
    if (bf16) {
        Ab = malloc((size_t)M * bf16_pairs(K) * sizeof *Ab);
        Pb = malloc(bf16_packed_size(N, K) * sizeof *Pb);
        if (!Ab || !Pb) return 1;
        bf16_pack(Pb, W, K, NULL, 0, N);
        bf16_convert_rows(Ab, bf16_pairs(K), A, K, M, K);
    } else if (!blocked) {
        P = malloc(rnn_gemm_packed_size(N, K) * sizeof *P);
        if (!P) return 1;
        rnn_gemm_pack(P, W, K, 1, N, K, 0, 1);
    }
    double best = 1e30;
    for (int round = 0; round < 7; round++) {
        const double t0 = now();
        for (int r = 0; r < reps; r++) {
            if (bf16) bf16_gemm(M, N, K, Ab, Pb, NULL, 0, C, N, 0);
            else if (blocked)
                rnn_gemm_blocked(ta, tb, M, N, K, A, ta ? M : K, W, tb ? K : N, NULL, 0, C, N, 0, 1);
            else rnn_gemm_packed_panels(M, N, K, A, K, P, NULL, 0, C, N, 0, (N + RNN_PANEL - 1) / RNN_PANEL);
        }
        const double t = now() - t0;
        best = t < best ? t : best;
    }
    printf("{\"kernel\": \"%s\", \"ta\": %d, \"tb\": %d, \"M\": %d, \"N\": %d, \"K\": %d, \"reps\": %d, "
           "\"gflops\": %.1f}\n",
           kind, ta, tb, M, N, K, reps, flops * reps / best / 1e9);
    free(A), free(W), free(C), free(P), free(Ab), free(Pb);
    return 0;
}
