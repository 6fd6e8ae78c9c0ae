/* The packed per-step products of csrc/rnn_gemm.c against a double-precision product,
 * over row counts 1..14 (every row-block split), column counts on and off the panel and
 * half-panel edges, both operand layouts, starting from zeros, from C or from a bias
 * row, and row strides wider than the rows; for each kernel the CPU can run (AVX-512,
 * then AVX2).
 * The bound is a float product's rounding: K * 2^-23 times the sum of |a b| terms.
 * Also checks that columns past N and rows' padding are left untouched. And the
 * blocked kernel over many rows: against double, and bit for bit against one fmaf chain
 * per element, whichever instruction set and however the rows are shared. And the
 * few-row products straight from the weights (rnn_gemm_few), the same way. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rnn_gemm.h"

static float rnd(unsigned *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xFFFF) / 32768.0f - 1.0f;
}

/* accumulate: 0 from zeros, 1 onto C, 2 from a bias row */
static int check(int M, int N, int K, int trans, int accumulate, unsigned seed)
{
    const int lda = K + 3, ldc = N + 5, ldw = (trans ? K : N) + 2;
    const int wrows = trans ? N : K;
    float *A = malloc(sizeof(float) * M * lda), *W = malloc(sizeof(float) * wrows * ldw);
    float *C = malloc(sizeof(float) * M * ldc), *C0 = malloc(sizeof(float) * M * ldc);
    float *P = malloc(sizeof(float) * rnn_gemm_packed_size(N, K)), *bias = malloc(sizeof(float) * N);
    for (int i = 0; i < M * lda; i++) A[i] = rnd(&seed);
    for (int i = 0; i < wrows * ldw; i++) W[i] = rnd(&seed);
    for (int i = 0; i < M * ldc; i++) C0[i] = C[i] = rnd(&seed);
    for (int n = 0; n < N; n++) bias[n] = rnd(&seed);
    /* in three parts, as threads share the packing */
    for (int part = 0; part < 3; part++) rnn_gemm_pack(P, W, ldw, trans, N, K, part, 3);
    rnn_gemm_packed(M, N, K, A, lda, P, accumulate == 2 ? bias : NULL, accumulate == 1, C, ldc,
                    0);
    int bad = 0;
    for (int i = 0; i < M; i++) {
        for (int n = 0; n < ldc; n++) {
            float got = C[i * ldc + n];
            if (n >= N) { /* padding of the row: untouched */
                if (got != C0[i * ldc + n]) bad++;
                continue;
            }
            float chain = accumulate == 1 ? C0[i * ldc + n] : accumulate == 2 ? bias[n] : 0;
            double want = chain, mag = fabs(want);
            for (int k = 0; k < K; k++) {
                float w = trans ? W[n * ldw + k] : W[k * ldw + n];
                want += (double)A[i * lda + k] * w;
                mag += fabs((double)A[i * lda + k] * w);
                chain = fmaf(A[i * lda + k], w, chain);
            }
            /* and bit for bit the one FMA chain of the header */
            if (!(fabs(got - want) <= (K + 1) * 0x1p-23 * mag) || got != chain) {
                if (bad < 3)
                    printf("M=%d N=%d K=%d trans=%d acc=%d: C[%d][%d] = %.9g, want %.9g\n", M, N,
                           K, trans, accumulate, i, n, got, want);
                bad++;
            }
        }
    }
    free(A), free(W), free(C), free(C0), free(P), free(bias);
    return bad;
}

/* rnn_gemm_blocked: C = op(A) op(B) + S in `parts` shares; against double, and every
 * element exactly the one FMA chain over k that the header promises. acc: 0 from
 * zeros, 1 onto C, 2 from a bias row. */
static int check_blocked(int M, int N, int K, int ta, int tb, int acc, int parts, unsigned seed)
{
    const int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 2, ldc = N + 5;
    const int arows = ta ? K : M, brows = tb ? N : K;
    float *A = malloc(sizeof(float) * arows * lda), *B = malloc(sizeof(float) * brows * ldb);
    float *C = malloc(sizeof(float) * M * ldc), *C0 = malloc(sizeof(float) * M * ldc);
    float *bias = malloc(sizeof(float) * N);
    for (int i = 0; i < arows * lda; i++) A[i] = rnd(&seed);
    for (int i = 0; i < brows * ldb; i++) B[i] = rnd(&seed);
    for (int i = 0; i < M * ldc; i++) C0[i] = C[i] = rnd(&seed);
    for (int n = 0; n < N; n++) bias[n] = rnd(&seed);
    for (int part = 0; part < parts; part++)
        rnn_gemm_blocked(ta, tb, M, N, K, A, lda, B, ldb, acc == 2 ? bias : NULL, acc == 1, C, ldc,
                         part, parts);
    int bad = 0;
    for (int i = 0; i < M; i++) {
        for (int n = 0; n < ldc; n++) {
            float got = C[i * ldc + n];
            if (n >= N) {
                if (got != C0[i * ldc + n]) bad++;
                continue;
            }
            float chain = acc == 1 ? C0[i * ldc + n] : acc == 2 ? bias[n] : 0;
            double want = chain, mag = fabs(want);
            for (int k = 0; k < K; k++) {
                float a = ta ? A[k * lda + i] : A[i * lda + k], b = tb ? B[n * ldb + k] : B[k * ldb + n];
                want += (double)a * b;
                mag += fabs((double)a * b);
                chain = fmaf(a, b, chain);
            }
            if (!(fabs(got - want) <= (K + 1) * 0x1p-23 * mag) || got != chain) {
                if (bad < 3)
                    printf("blocked M=%d N=%d K=%d ta=%d tb=%d acc=%d parts=%d: C[%d][%d] = %.9g, "
                           "want %.9g (chain %.9g)\n",
                           M, N, K, ta, tb, acc, parts, i, n, got, want, chain);
                bad++;
            }
        }
    }
    free(A), free(B), free(C), free(C0), free(bias);
    return bad;
}

/* rnn_gemm_blocked_pair: the same bits as two rnn_gemm_blocked calls (checked above)
 * for both products, and nothing written past N1, N2; the row sums of op(A) added to
 * db1 (and db2 when acc is 1) bit for bit as one float sum over k in order from 0, then
 * added, and nothing written past M. */
static int check_pair(int M, int K, int N1, int N2, int ta, int acc, int parts, unsigned seed)
{
    const int lda = (ta ? M : K) + 1, ld1 = N1 + 3, ld2 = N2 + 1;
    const int arows = ta ? K : M;
    float *A = malloc(sizeof(float) * arows * lda);
    float *B1 = malloc(sizeof(float) * K * ld1), *B2 = malloc(sizeof(float) * K * ld2);
    float *C1 = malloc(sizeof(float) * M * ld1), *C2 = malloc(sizeof(float) * M * ld2);
    float *W1 = malloc(sizeof(float) * M * ld1), *W2 = malloc(sizeof(float) * M * ld2);
    float *db1 = malloc(sizeof(float) * (M + 2)), *db2 = malloc(sizeof(float) * (M + 2));
    float *want1 = malloc(sizeof(float) * (M + 2)), *want2 = malloc(sizeof(float) * (M + 2));
    for (int i = 0; i < M + 2; i++) want1[i] = db1[i] = rnd(&seed), want2[i] = db2[i] = rnd(&seed);
    for (int i = 0; i < arows * lda; i++) A[i] = rnd(&seed);
    for (int m = 0; m < M; m++) {
        float sum = 0;
        for (int k = 0; k < K; k++) sum += ta ? A[k * lda + m] : A[m * lda + k];
        want1[m] += sum;
        if (acc == 1) want2[m] += sum;
    }
    for (int i = 0; i < K * ld1; i++) B1[i] = rnd(&seed);
    for (int i = 0; i < K * ld2; i++) B2[i] = rnd(&seed);
    for (int i = 0; i < M * ld1; i++) W1[i] = C1[i] = rnd(&seed);
    for (int i = 0; i < M * ld2; i++) W2[i] = C2[i] = rnd(&seed);
    for (int part = 0; part < parts; part++) {
        rnn_gemm_blocked_pair(ta, M, K, A, lda, N1, B1, ld1, C1, ld1, N2, B2, ld2, C2, ld2, acc,
                              db1, acc == 1 ? db2 : NULL, part, parts);
        rnn_gemm_blocked(ta, 0, M, N1, K, A, lda, B1, ld1, NULL, acc, W1, ld1, part, parts);
        rnn_gemm_blocked(ta, 0, M, N2, K, A, lda, B2, ld2, NULL, acc, W2, ld2, part, parts);
    }
    int bad = 0;
    for (int i = 0; i < M * ld1; i++) bad += C1[i] != W1[i];
    for (int i = 0; i < M * ld2; i++) bad += C2[i] != W2[i];
    for (int i = 0; i < M + 2; i++) bad += db1[i] != want1[i] || db2[i] != want2[i];
    if (bad)
        printf("pair M=%d K=%d N1=%d N2=%d ta=%d acc=%d parts=%d: %d elements differ\n", M, K, N1,
               N2, ta, acc, parts, bad);
    free(A), free(B1), free(B2), free(C1), free(C2), free(W1), free(W2);
    free(db1), free(db2), free(want1), free(want2);
    return bad;
}

/* rnn_gemm_few: C = A op(W) + S for a few rows straight from W, the columns in `parts`
 * shares cut at multiples of 32 and at odd places (threads' shares of units); against
 * double, and bit for bit against the header's sums: transposed, 16 lanes of fmaf
 * chains (lane l over k = l, l+16, ...) added lane l + l+8, then 4 on, 2 on, 1 on, then
 * added to S; otherwise one fmaf chain from S. Nothing written outside the columns. */
static int check_few(int M, int N, int K, int trans, int acc, int parts, unsigned seed)
{
    const int lda = K + 3, ldc = N + 5, ldw = (trans ? K : N) + 2;
    const int wrows = trans ? N : K;
    float *A = malloc(sizeof(float) * M * lda), *W = malloc(sizeof(float) * wrows * ldw);
    float *C = malloc(sizeof(float) * M * ldc), *C0 = malloc(sizeof(float) * M * ldc);
    float *bias = malloc(sizeof(float) * N);
    for (int i = 0; i < M * lda; i++) A[i] = rnd(&seed);
    for (int i = 0; i < wrows * ldw; i++) W[i] = rnd(&seed);
    for (int i = 0; i < M * ldc; i++) C0[i] = C[i] = rnd(&seed);
    for (int n = 0; n < N; n++) bias[n] = rnd(&seed);
    /* shares [cut[p], cut[p+1]): two halves at a multiple of 32, or a third cut 5 on */
    int cut[4] = {0, N, N, N};
    if (parts >= 2) cut[1] = N / 2 / 32 * 32;
    if (parts == 3) cut[2] = cut[1] + 5 < N ? cut[1] + 5 : N;
    for (int part = 0; part < parts; part++)
        if (cut[part + 1] > cut[part])
            rnn_gemm_few(trans, M, cut[part], cut[part + 1], K, A, lda, W, ldw,
                         acc == 2 ? bias : NULL, acc == 1, C, ldc);
    int bad = 0;
    for (int i = 0; i < M; i++) {
        for (int n = 0; n < ldc; n++) {
            float got = C[i * ldc + n];
            if (n >= N) {
                if (got != C0[i * ldc + n]) bad++;
                continue;
            }
            const float start = acc == 1 ? C0[i * ldc + n] : acc == 2 ? bias[n] : 0;
            double want = start, mag = fabs(want);
            float lane[16] = {0}, chain = start;
            for (int k = 0; k < K; k++) {
                float w = trans ? W[n * ldw + k] : W[k * ldw + n];
                want += (double)A[i * lda + k] * w;
                mag += fabs((double)A[i * lda + k] * w);
                lane[k % 16] = fmaf(A[i * lda + k], w, lane[k % 16]);
                chain = fmaf(A[i * lda + k], w, chain);
            }
            if (trans) {
                for (int step = 8; step >= 1; step /= 2)
                    for (int l = 0; l < step; l++) lane[l] = lane[l] + lane[l + step];
                chain = start + lane[0];
            }
            if (!(fabs(got - want) <= (K + 2) * 0x1p-23 * mag) || got != chain) {
                if (bad < 3)
                    printf("few M=%d N=%d K=%d trans=%d acc=%d parts=%d: C[%d][%d] = %.9g, want "
                           "%.9g (exactly %.9g)\n",
                           M, N, K, trans, acc, parts, i, n, got, want, chain);
                bad++;
            }
        }
    }
    free(A), free(W), free(C), free(C0), free(bias);
    return bad;
}

int main(void)
{
    static const int Ns[] = {1, 7, 8, 15, 16, 17, 31, 32, 33, 48, 64, 100, 128};
    static const int Ks[] = {1, 5, 64, 129, 300};
    /* rows: every count up to two AVX2 blocks, and past the 96 of its packed rows */
    static const int Ms[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 40, 100};
    int failures = 0, runs = 0;
    if (!rnn_gemm_packed_available()) {
        printf("packed kernels: not available on this CPU (BLAS is used instead)\n");
        return 0;
    }
    for (int pass = 0; pass < 2; pass++) {
        int level = rnn_gemm_use_level(pass == 0 ? 3 : 2);
        if (pass == 1 && level != 2) break;
        unsigned seed = 1;
        for (size_t m = 0; m < sizeof Ms / sizeof *Ms; m++)
            for (size_t a = 0; a < sizeof Ns / sizeof *Ns; a++)
                for (size_t b = 0; b < sizeof Ks / sizeof *Ks; b++)
                    for (int t = 0; t < 2; t++)
                        for (int acc = 0; acc < 3; acc++) {
                            failures += check(Ms[m], Ns[a], Ks[b], t, acc, seed++) != 0;
                            runs++;
                        }
        /* the blocked kernel: row counts around its 12-row (and 6-row) blocks and past
         * its packed blocks, K within and across its blocks of at most 384 (385: two
         * blocks of 193 and 192; 800: three) and 0, every layout and start,
         * shares of rows as threads take them */
        static const int bkM[] = {1, 5, 6, 7, 12, 13, 25, 100};
        static const int bkK[] = {0, 1, 7, 17, 300, 385, 800};
        for (size_t a = 0; a < sizeof bkM / sizeof *bkM; a++)
            for (size_t n = 0; n < sizeof Ns / sizeof *Ns; n += 2)
                for (size_t b = 0; b < sizeof bkK / sizeof *bkK; b++)
                    for (int t = 0; t < 4; t++) {
                        failures += check_blocked(bkM[a], Ns[n], bkK[b], t & 1, t >> 1,
                                                  (int)((a + b + t) % 3), 1 + (int)((a + t) % 3),
                                                  seed++) != 0;
                        runs++;
                    }
        /* past the AVX-512 kernel's 32 packed blocks (384 rows) and its column shares */
        for (int t = 0; t < 8; t++) {
            /* 400 rows: two groups of blocks of A; 1100 = three blocks of k */
            failures += check_blocked(400, t & 1 ? 128 : 33, t & 2 ? (t & 4 ? 1100 : 300) : 7, t & 1, (t >> 1) & 1,
                                      t % 3, 1 + t % 3, seed++) != 0;
            runs++;
        }
        /* pairs sharing op(A): the weight gradients' shapes (N1 = D, N2 = H), small and
         * past the blocks, both layouts, from zeros and onto C, in shares */
        static const int pM[] = {1, 12, 13, 100, 400}, pN[][2] = {{64, 128}, {33, 7}, {1, 40}, {0, 16}};
        static const int pK[] = {0, 5, 385, 1100};
        for (size_t a = 0; a < sizeof pM / sizeof *pM; a++)
            for (size_t n = 0; n < sizeof pN / sizeof *pN; n++)
                for (size_t b = 0; b < sizeof pK / sizeof *pK; b++)
                    for (int t = 0; t < 4; t++) {
                        failures += check_pair(pM[a], pK[b], pN[n][0], pN[n][1], t & 1, t >> 1,
                                               1 + (int)((a + n + t) % 3), seed++) != 0;
                        runs++;
                    }
        /* a few rows straight from W: 1..3 rows and 4, 7 (groups of 3), columns within
         * and past the 128 a row takes at a time, K on and off the 16 lanes */
        static const int fM[] = {1, 2, 3, 4, 7}, fN[] = {1, 17, 33, 64, 100, 129, 300};
        static const int fK[] = {1, 15, 16, 17, 100, 256};
        for (size_t m = 0; m < sizeof fM / sizeof *fM; m++)
            for (size_t n = 0; n < sizeof fN / sizeof *fN; n++)
                for (size_t b = 0; b < sizeof fK / sizeof *fK; b++)
                    for (int t = 0; t < 2; t++) {
                        failures += check_few(fM[m], fN[n], fK[b], t, (int)((m + n + b) % 3),
                                              1 + (int)((m + b + t) % 3), seed++) != 0;
                        runs++;
                    }
        printf("packed kernels (%s): %d products checked\n", level == 3 ? "AVX-512" : "AVX2",
               runs);
        runs = 0;
    }
    printf("%d failures\n", failures);
    return failures ? 1 : 0;
}
