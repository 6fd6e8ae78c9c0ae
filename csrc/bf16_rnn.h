/* Inference forward of one recurrent layer with bfloat16 weights (csrc/bf16_rnn.c):
 * the products are bf16.h's (bfloat16 operands, float32 sums), everything else (the
 * biases, the nonlinearities, the states) float32 as in the fp32 kernels (rnn.h).
 * No activations are saved: there is no backward. Not a public header.
 *
 * Cells: rnn (tanh, relu, identity), lstm and the reset-after gru; the classic gru is
 * not here (the binding refuses it). */
#ifndef RECUR_BF16_RNN_H
#define RECUR_BF16_RNN_H

#include <stddef.h>
#include <stdint.h>

#include "bf16_int8.h"
#include "recur/rnn.h"

/* Multiply-adds of one product from which its columns are split over the threads. A
 * batch-1 step of a 512-unit LSTM is 1M (2 MB of bf16 weights read from L3); split
 * over 2 Zen 5 cores, the 2x512 model generated 10.9k tokens/s against 8.6k on one.
 * Smaller products gain nothing from a fork and join. On a busy machine, where a
 * split that waits for a descheduled thread ran 20x slower, the thread adaptation
 * (csrc/threads.c) gives the call one thread. */
#define BF16_PAR_MIN (1 << 19)

/* Bytes of workspace for T steps of a batch of B. */
size_t bf16_rnn_workspace_size(recur_rnn_cell cell, int T, int B, int D, int H);

/* h (B,H) and c (B,H, lstm) hold the initial state and leave holding the final one;
 * y is (T,B,H) or NULL (a step: h is the output); x is (T,B,D). lstm and rnn: w is
 * [w_ih w_hh] packed by bf16_pack (G*H rows, D then H columns), whh unused; gru: w is
 * w_ih (G*H,D) and whh w_hh (G*H,H), each packed alone. binit (G*H) is b_ih + b_hh
 * except in the gru's n block, which has b_in alone, and bhn (H) is the gru's b_hn;
 * lengths (B) or NULL, as rnn.h (outputs past a sequence's end zero, its state frozen);
 * work is bf16_rnn_workspace_size() bytes, 64-byte aligned. saved: NULL, or
 * recur_rnn_saved_size() floats that get what the float32 backward
 * (recur_rnn_backward_f32) reads, as recur_rnn_forward_f32 fills them: training with
 * bf16 products forward and float32 ones backward. */
void bf16_rnn_forward(recur_rnn_cell cell, float *y, float *h, float *c, float *saved,
                      const float *x, const uint32_t *w, const uint32_t *whh, const float *binit,
                      const float *bhn, const int64_t *lengths, int reverse, int T, int B, int D,
                      int H, void *work);

/* The same with int8 weights (bf16_int8.h) for generation: w_ih and w_hh packed
 * apart, every cell; the steps' inputs quantized as they come. One loop over the batch
 * (generation's batch is one row, or a beam). work is i8_rnn_workspace_size() bytes. */
size_t i8_rnn_workspace_size(recur_rnn_cell cell, int B, int D, int H);
void i8_rnn_forward(recur_rnn_cell cell, float *y, float *h, float *c, const float *x,
                    const i8_matrix *wih, const i8_matrix *whh, const float *binit,
                    const float *bhn, const int64_t *lengths, int reverse, int T, int B, int D,
                    int H, void *work);

#endif
