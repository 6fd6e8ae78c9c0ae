/* Choosing the next token from a model's V scores: greedy, or a draw from
 * softmax(scores / temperature) cut to the top_k best ids and to the smallest set of
 * best ids holding probability top_p, with banned ids left out. recur.decode.choose
 * runs on it.
 *
 * The arithmetic is fixed (doubles, in the order below), so that a seed draws the
 * same ids on every machine: w_i = exp((s_i - max) / temperature) over the
 * candidates, max the best allowed score; the nucleus is the shortest prefix whose
 * running sum of w_i / total reaches top_p; the id is the first candidate at which
 * u * total - w_1 - ... - w_i falls below 0, u one uniform draw from g (the last
 * candidate when rounding leaves it a hair above 0).
 *
 * Sizes and pointers (spec/c/capi_test.c): n = 0 reads and writes nothing and returns
 * RECUR_CHOOSE_EMPTY. banned may be NULL for none; g is not touched at temperature 0
 * or on an error, and may then be NULL. */
#ifndef RECUR_DECODE_H
#define RECUR_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "tensor.h"
#include "export.h"

RECUR_BEGIN_DECLS

typedef struct recur_choice {
    double temperature; /* > 0 draws; 0 takes the best allowed id (ties: the lowest) */
    int64_t top_k;      /* > 0: the k best allowed ids only; 0: no cut */
    double top_p;       /* in (0, 1]: the nucleus; 0: no cut */
} recur_choice;

/* What recur_choose returns instead of an id when it cannot choose. */
enum {
    RECUR_CHOOSE_EMPTY = -1,      /* n = 0 */
    RECUR_CHOOSE_NOT_FINITE = -2, /* scores[*bad] is NaN or +inf (an overflowed model) */
    RECUR_CHOOSE_ALL_BANNED = -3, /* every id is banned */
    RECUR_CHOOSE_ALL_NEG_INF = -4 /* every allowed id has score -inf */
};

/* Bytes of the work buffer recur_choose needs for n scores. */
size_t recur_choose_work_size(int64_t n);

/* The chosen id (0-based), or one of the codes above. scores (n); banned (n): nonzero
 * for an id that may not be chosen; work: recur_choose_work_size(n) bytes, 8-byte
 * aligned. A top_k or top_p orders the candidates by score (ties: the lower id first)
 * before the draw; without them the candidates stay in id order. One uniform is drawn
 * from g when temperature > 0 and a candidate exists. */
int64_t recur_choose(const double *scores, const unsigned char *banned, int64_t n,
                     const recur_choice *choice, recur_rng *g, void *work, int64_t *bad);

RECUR_END_DECLS

#endif
