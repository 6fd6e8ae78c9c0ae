/* Kernels of one attention step (see recur/attention.h for the contract of each).
 *
 * Every kernel loops over the batch on the outside: sequence b touches only its own
 * rows of the per-step tensors and its own rows (s,b) of the memory, keys and their
 * gradients, so an OpenMP loop over b has no races and its results do not depend on
 * the thread count. The float32 and float64 versions share one body, a macro over the
 * element type T (recur_attention_dot_scores_f32 and _f64 are both defined by
 * ATTN_KERNELS below: grep finds the names in the header). */
#include <math.h>
#include <string.h>

#include "parallel.h"
#include "recur/attention.h"
#include "rnn_math.h"

/* The kernels are built for AVX2 besides the baseline the Makefile targets (x86-64-v2,
 * SSE4.2), the additive score's also for AVX-512 (x86-64-v4), and the loader picks one
 * for the CPU, so the tanh and exp loops run 8 or 16 floats at a time instead of 4. One
 * thread of a Zen 5 at B=64, S=30, A=256, float32, forward / backward of the additive
 * score: baseline 1.07 / 1.29 ms, AVX2 0.52 / 0.63 ms, AVX-512 0.36 / 0.32 ms (the dot
 * score and the context are slower under AVX-512: 0.21 against 0.12 ms forward, as the
 * dot product's eight sums fill half a register). Every version computes the same
 * operations in the same order (no FMA: the build has -ffp-contract=off; each sum is
 * written out in a fixed order), so results are bitwise the same whichever one runs. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define ATTN_CLONES __attribute__((target_clones("avx2", "default")))
#define ATTN_CLONES_WIDE __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#else
#define ATTN_CLONES
#define ATTN_CLONES_WIDE
#endif

/* Elements a call touches before a second thread pays for its start (as in nn.c). */
#define ATTN_OMP_MIN 32768
/* The additive score's tanh values are formed a block at a time, so that the tanh loop
 * vectorises apart from the sums (attention.o is built with -fno-trapping-math, see
 * the Makefile). */
#define ATTN_BLOCK 256

static inline int64_t attn_len(const int64_t *lengths, int64_t b, int64_t S)
{
    return lengths ? lengths[b] : S;
}

static inline double tanh_f64(double x) { return tanh(x); }
static inline double exp_f64(double x) { return exp(x); }

/* The vector primitives, and the three ways a step meets sequence b's rows (s,b),
 * s < L, of a (S,B,n) block Y (the memory or the keys): scores, a weighted sum of the
 * rows, and a gradient spread back over them. */
#define ATTN_PRIMITIVES(T, SFX)                                                          \
    /* x . y over n, in eight interleaved partial sums added in a fixed order: GCC       \
     * vectorises this where a single running sum would be one serial chain of adds. */  \
    static inline T attn_dot_##SFX(const T *x, const T *y, int64_t n)                    \
    {                                                                                    \
        T acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                             \
        int64_t i = 0;                                                                   \
        for (; i + 8 <= n; i += 8)                                                       \
            for (int j = 0; j < 8; j++) acc[j] += x[i + j] * y[i + j];                   \
        T tail = 0;                                                                      \
        for (; i < n; i++) tail += x[i] * y[i];                                          \
        return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + tail; \
    }                                                                                    \
                                                                                         \
    /* y += alpha x over n */                                                            \
    static inline void attn_axpy_##SFX(T *y, T alpha, const T *x, int64_t n)             \
    {                                                                                    \
        for (int64_t i = 0; i < n; i++) y[i] += alpha * x[i];                            \
    }                                                                                    \
                                                                                         \
    /* out_b[s] = x_b . Y_{s,b} (added to out_b[s] when accumulate) */                   \
    static inline void attn_seq_dots_##SFX(T *out_b, int accumulate, const T *x_b, const T *Y, \
                                           int64_t b, int64_t L, int64_t B, int64_t n)   \
    {                                                                                    \
        for (int64_t s = 0; s < L; s++) {                                                \
            const T d = attn_dot_##SFX(x_b, Y + (s * B + b) * n, n);                     \
            out_b[s] = accumulate ? out_b[s] + d : d;                                    \
        }                                                                                \
    }                                                                                    \
                                                                                         \
    /* z_b += sum_s w_b[s] Y_{s,b} */                                                    \
    static inline void attn_seq_combine_##SFX(T *z_b, const T *w_b, const T *Y, int64_t b, \
                                              int64_t L, int64_t B, int64_t n)           \
    {                                                                                    \
        for (int64_t s = 0; s < L; s++) attn_axpy_##SFX(z_b, w_b[s], Y + (s * B + b) * n, n); \
    }                                                                                    \
                                                                                         \
    /* gY_{s,b} += w_b[s] x_b */                                                         \
    static inline void attn_seq_spread_##SFX(T *gY, const T *w_b, const T *x_b, int64_t b, \
                                             int64_t L, int64_t B, int64_t n)            \
    {                                                                                    \
        for (int64_t s = 0; s < L; s++) attn_axpy_##SFX(gY + (s * B + b) * n, w_b[s], x_b, n); \
    }

ATTN_PRIMITIVES(float, f32)
ATTN_PRIMITIVES(double, f64)

#define ATTN_KERNELS(T, SFX, EXP, TANH)                                                          \
                                                                                                 \
    ATTN_CLONES                                                                                  \
    void recur_attention_dot_scores_##SFX(T *e, const T *q, const T *keys,                       \
                                          const int64_t *lengths, int64_t S, int64_t B,          \
                                          int64_t K)                                             \
    {                                                                                            \
        /* e is (B,S), q (B,K), keys (S,B,K) */                                                  \
        RECUR_FOR(S * B * K > ATTN_OMP_MIN, b, B, {                                               \
            const int64_t L = attn_len(lengths, b, S);                                           \
            T *e_b = e + b * S;                                                                  \
            attn_seq_dots_##SFX(e_b, 0, q + b * K, keys, b, L, B, K);                            \
            for (int64_t s = L; s < S; s++) e_b[s] = 0;                                          \
        });                                                                                       \
    }                                                                                            \
                                                                                                 \
    ATTN_CLONES                                                                                  \
    void recur_attention_dot_scores_backward_##SFX(T *gq, T *gkeys, const T *ge, const T *q,     \
                                                   const T *keys, const int64_t *lengths,        \
                                                   int64_t S, int64_t B, int64_t K)              \
    {                                                                                            \
        /* gq and q are (B,K), gkeys and keys (S,B,K), ge (B,S) */                               \
        RECUR_FOR(S * B * K > ATTN_OMP_MIN, b, B, {                                               \
            const int64_t L = attn_len(lengths, b, S);                                           \
            attn_seq_combine_##SFX(gq + b * K, ge + b * S, keys, b, L, B, K);                    \
            if (gkeys) attn_seq_spread_##SFX(gkeys, ge + b * S, q + b * K, b, L, B, K);          \
        });                                                                                       \
    }                                                                                            \
                                                                                                 \
    ATTN_CLONES_WIDE                                                                             \
    void recur_attention_additive_scores_##SFX(T *e, const T *p, const T *keys, const T *v,      \
                                               const int64_t *lengths, int64_t S, int64_t B,     \
                                               int64_t A)                                        \
    {                                                                                            \
        /* e is (B,S), p (B,A), keys (S,B,A), v (A) */                                           \
        RECUR_FOR(S * B * A > ATTN_OMP_MIN, b, B, {                                               \
            const int64_t L = attn_len(lengths, b, S);                                           \
            const T *p_b = p + b * A;                                                            \
            T *e_b = e + b * S;                                                                  \
            T t[ATTN_BLOCK];                                                                     \
            for (int64_t s = 0; s < L; s++) {                                                    \
                const T *k_sb = keys + (s * B + b) * A;                                          \
                T acc = 0;                                                                       \
                for (int64_t a0 = 0; a0 < A; a0 += ATTN_BLOCK) {                                 \
                    const int n = (int)(A - a0 < ATTN_BLOCK ? A - a0 : ATTN_BLOCK);              \
                    for (int i = 0; i < n; i++) t[i] = TANH(k_sb[a0 + i] + p_b[a0 + i]);         \
                    acc += attn_dot_##SFX(v + a0, t, n);                                         \
                }                                                                                \
                e_b[s] = acc;                                                                    \
            }                                                                                    \
            for (int64_t s = L; s < S; s++) e_b[s] = 0;                                          \
        });                                                                                       \
    }                                                                                            \
                                                                                                 \
    ATTN_CLONES_WIDE                                                                             \
    void recur_attention_additive_scores_backward_##SFX(T *gp, T *gkeys, T *gv, T *work,         \
                                                        const T *ge, const T *p, const T *keys,  \
                                                        const T *v, const int64_t *lengths,      \
                                                        int64_t S, int64_t B, int64_t A)         \
    {                                                                                            \
        /* gp, p and work are (B,A), gkeys and keys (S,B,A), gv and v (A), ge (B,S) */           \
        RECUR_FOR(S * B * A > ATTN_OMP_MIN, b, B, {                                               \
            const int64_t L = attn_len(lengths, b, S);                                           \
            const T *p_b = p + b * A, *ge_b = ge + b * S;                                        \
            T *gp_b = gp + b * A, *w_b = work + b * A;                                           \
            T t[ATTN_BLOCK], u[ATTN_BLOCK];                                                      \
            for (int64_t i = 0; i < A; i++) w_b[i] = 0;                                          \
            for (int64_t s = 0; s < L; s++) {                                                    \
                const int64_t row = (s * B + b) * A;                                             \
                const T *k_sb = keys + row;                                                      \
                T *gk_sb = gkeys + row;                                                          \
                const T g = ge_b[s];                                                             \
                /* in blocks through local arrays: with six pointers that might alias, GCC       \
                 * would not vectorise one fused loop */                                         \
                for (int64_t a0 = 0; a0 < A; a0 += ATTN_BLOCK) {                                 \
                    const int n = (int)(A - a0 < ATTN_BLOCK ? A - a0 : ATTN_BLOCK);              \
                    for (int i = 0; i < n; i++) t[i] = TANH(k_sb[a0 + i] + p_b[a0 + i]);         \
                    for (int i = 0; i < n; i++) u[i] = g * v[a0 + i] * (1 - t[i] * t[i]);        \
                    for (int i = 0; i < n; i++) gk_sb[a0 + i] += u[i];                           \
                    for (int i = 0; i < n; i++) gp_b[a0 + i] += u[i];                            \
                    for (int i = 0; i < n; i++) w_b[a0 + i] += g * t[i];                         \
                }                                                                                \
            }                                                                                    \
        });                                                                                       \
        for (int64_t b = 0; b < B; b++) attn_axpy_##SFX(gv, 1, work + b * A, A);                 \
    }                                                                                            \
                                                                                                 \
    ATTN_CLONES                                                                                  \
    void recur_attention_softmax_##SFX(T *a, const T *e, const int64_t *lengths, int64_t S,      \
                                       int64_t B)                                                \
    {                                                                                            \
        /* a and e are (B,S); the sum in double, as the cross-entropy's */                       \
        for (int64_t b = 0; b < B; b++) {                                                        \
            const int64_t L = attn_len(lengths, b, S);                                           \
            const T *e_b = e + b * S;                                                            \
            T *a_b = a + b * S;                                                                  \
            T maxv = L > 0 ? e_b[0] : 0;                                                         \
            for (int64_t s = 1; s < L; s++) maxv = e_b[s] > maxv ? e_b[s] : maxv;                \
            double sum = 0;                                                                      \
            for (int64_t s = 0; s < L; s++) {                                                    \
                a_b[s] = EXP(e_b[s] - maxv);                                                     \
                sum += a_b[s];                                                                   \
            }                                                                                    \
            const T inv = (T)(1.0 / sum);                                                        \
            for (int64_t s = 0; s < L; s++) a_b[s] *= inv;                                       \
            for (int64_t s = L; s < S; s++) a_b[s] = 0;                                          \
        }                                                                                        \
    }                                                                                            \
                                                                                                 \
    ATTN_CLONES                                                                                  \
    void recur_attention_softmax_backward_##SFX(T *ge, const T *ga, const T *a,                  \
                                                const int64_t *lengths, int64_t S, int64_t B)    \
    {                                                                                            \
        /* ge, ga and a are (B,S) */                                                             \
        for (int64_t b = 0; b < B; b++) {                                                        \
            const int64_t L = attn_len(lengths, b, S);                                           \
            const T *ga_b = ga + b * S, *a_b = a + b * S;                                        \
            T *ge_b = ge + b * S;                                                                \
            const T dot = attn_dot_##SFX(a_b, ga_b, L);                                          \
            for (int64_t s = 0; s < L; s++) ge_b[s] = a_b[s] * (ga_b[s] - dot);                  \
            for (int64_t s = L; s < S; s++) ge_b[s] = 0;                                         \
        }                                                                                        \
    }                                                                                            \
                                                                                                 \
    ATTN_CLONES                                                                                  \
    void recur_attention_context_##SFX(T *c, const T *a, const T *memory,                        \
                                       const int64_t *lengths, int64_t S, int64_t B, int64_t H)  \
    {                                                                                            \
        /* c is (B,H), a (B,S), memory (S,B,H) */                                                \
        RECUR_FOR(S * B * H > ATTN_OMP_MIN, b, B, {                                               \
            const int64_t L = attn_len(lengths, b, S);                                           \
            T *c_b = c + b * H;                                                                  \
            for (int64_t h = 0; h < H; h++) c_b[h] = 0;                                          \
            attn_seq_combine_##SFX(c_b, a + b * S, memory, b, L, B, H);                          \
        });                                                                                       \
    }                                                                                            \
                                                                                                 \
    ATTN_CLONES                                                                                  \
    void recur_attention_context_backward_##SFX(T *ga, T *gmemory, const T *gc, const T *a,      \
                                                const T *memory, const int64_t *lengths,         \
                                                int64_t S, int64_t B, int64_t H)                 \
    {                                                                                            \
        /* ga and a are (B,S), gmemory and memory (S,B,H), gc (B,H) */                           \
        RECUR_FOR(S * B * H > ATTN_OMP_MIN, b, B, {                                               \
            const int64_t L = attn_len(lengths, b, S);                                           \
            attn_seq_dots_##SFX(ga + b * S, 1, gc + b * H, memory, b, L, B, H);                  \
            if (gmemory) attn_seq_spread_##SFX(gmemory, a + b * S, gc + b * H, b, L, B, H);      \
        });                                                                                       \
    }

ATTN_KERNELS(float, f32, rnn_expf, rnn_tanhf)
ATTN_KERNELS(double, f64, exp_f64, tanh_f64)

void recur_attention_reorder(void *out, const void *in, const int64_t *index, int64_t S, int64_t B,
                             int64_t N, size_t row_bytes)
{
    /* out is (S,N,row), in (S,B,row) */
    if (row_bytes == 0) return;
    for (int64_t s = 0; s < S; s++)
        for (int64_t n = 0; n < N; n++)
            memcpy((char *)out + (size_t)(s * N + n) * row_bytes,
                   (const char *)in + (size_t)(s * B + index[n] - 1) * row_bytes, row_bytes);
}
