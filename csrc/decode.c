/* Choosing the next token (include/recur/decode.h). Generation calls this once per
 * token, so it runs in C: the same arithmetic in Lua cost a 2 x 512 bf16 language
 * model a twentieth of its time per token, and a word model's 10000 scores far more. */
#include <math.h>
#include <stdlib.h>

#include "recur/decode.h"

typedef struct candidate {
    double score;
    int64_t id;
} candidate;

size_t recur_choose_work_size(int64_t n)
{
    return n > 0 ? (size_t)n * (sizeof(candidate) + sizeof(double)) : 0;
}

/* Best score first; equal scores by id, so the order is the same on every libc. */
static int by_score(const void *pa, const void *pb)
{
    const candidate *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

int64_t recur_choose(const double *scores, const unsigned char *banned, int64_t n,
                     const recur_choice *choice, recur_rng *g, void *work, int64_t *bad)
{
    if (n <= 0) return RECUR_CHOOSE_EMPTY;
    /* the best allowed id; a NaN or +inf anywhere is an error, not a token */
    double max = -INFINITY;
    int64_t best = -1, allowed = 0;
    for (int64_t i = 0; i < n; i++) {
        double s = scores[i];
        if (!(s < INFINITY)) {
            *bad = i;
            return RECUR_CHOOSE_NOT_FINITE;
        }
        if (banned && banned[i]) continue;
        allowed++;
        if (s > max) max = s, best = i;
    }
    if (best < 0) return allowed ? RECUR_CHOOSE_ALL_NEG_INF : RECUR_CHOOSE_ALL_BANNED;
    if (choice->temperature == 0) return best;

    candidate *cand = work;
    double *weight = (double *)(cand + n);
    int64_t count = 0;
    for (int64_t i = 0; i < n; i++)
        if (!(banned && banned[i])) cand[count].score = scores[i], cand[count++].id = i;
    int ranked = choice->top_k > 0 || choice->top_p > 0;
    if (ranked) qsort(cand, (size_t)count, sizeof *cand, by_score);
    if (choice->top_k > 0 && choice->top_k < count) count = choice->top_k;

    double total = 0;
    for (int64_t i = 0; i < count; i++) {
        weight[i] = exp((cand[i].score - max) / choice->temperature);
        total += weight[i];
    }
    if (choice->top_p > 0 && choice->top_p < 1) {
        double cumulative = 0;
        for (int64_t i = 0; i < count; i++) {
            cumulative += weight[i] / total;
            if (cumulative >= choice->top_p) {
                count = i + 1;
                break;
            }
        }
        total = 0;
        for (int64_t i = 0; i < count; i++) total += weight[i];
    }

    double r = recur_rng_uniform(g) * total;
    for (int64_t i = 0; i < count; i++) {
        r -= weight[i];
        if (r < 0) return cand[i].id;
    }
    return cand[count - 1].id; /* rounding left r a hair above zero */
}
