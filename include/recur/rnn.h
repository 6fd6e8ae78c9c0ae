/* Fused recurrent kernels: RNN (tanh, relu, identity), LSTM and GRU (two variants), forward,
 * backward through time (optionally truncated) and a single step, in float32 and float64.
 * Plain C over pointers and sizes, no Lua: a C/C++ host calls these directly.
 *
 * Letters: T time steps, B batch, D input size, H hidden size, G gates per unit
 * (rnn 1, gru 3, lstm 4). Everything is row-major and time-major: x is (T,B,D).
 *
 * Parameters use PyTorch's layout: w_ih is (G*H,D), w_hh is (G*H,H), b_ih and b_hh are
 * (G*H), the gate blocks stacked in this order:
 *   lstm: i, f, g, o      i = sigmoid(.), f = sigmoid(.), g = tanh(.), o = sigmoid(.)
 *                          c_t = f*c_{t-1} + i*g,  h_t = o*tanh(c_t)
 *   gru:  r, z, n          r = sigmoid(W_ir x + b_ir + W_hr h + b_hr), z likewise
 *     RECUR_RNN_GRU (reset after the product, PyTorch and cuDNN):
 *                          n = tanh(W_in x + b_in + r*(W_hn h + b_hn))
 *     RECUR_RNN_GRU_CLASSIC (Cho et al. 2014, the textbook form): the reset gate scales h
 *     before the recurrent product, and both n biases are added outside it:
 *                          n = tanh(W_in x + b_in + W_hn (r*h) + b_hn)
 *     both:                h_t = (1-z)*n + z*h_{t-1}
 *   rnn:                   h_t = act(W_ih x + b_ih + W_hh h_{t-1} + b_hh), act = tanh, relu
 *                          or the identity (the linear RNN: nothing bounds h_t, which
 *                          grows or decays geometrically with W_hh's spectral radius)
 *
 * Forward: one GEMM of all T*B input rows against w_ih (onto rows holding the biases),
 * then per step one product h_{t-1} w_hh^T (added onto the input projection, except for
 * the gru whose n gate needs it apart) and one fused pointwise pass (nonlinearities and
 * state update).
 * The classic GRU needs r before its recurrent n product, so its step does two GEMMs,
 * (B,H)x(H,2H) then (B,H)x(H,H): the same flops as one.
 * Backward: per step one fused pointwise pass and one product for dh_{t-1} (two for the
 * classic GRU, for the same reason); after the loop dW_ih, dW_hh and dX each in one GEMM
 * over all T*B rows (the GRU splits a GEMM in two where the n block differs between the
 * input and recurrent sides) and the bias gradients as column sums, one pass for both.
 *
 * float32 on x86-64 with AVX2 and FMA (or AVX-512), from 2 steps and 4 rows per thread:
 * w_ih and w_hh are packed once per call (csrc/rnn_gemm.h) and the per-step products run
 * on them, not through BLAS (which would repack the weights at every step); the input
 * projection then goes step by step too (each step's rows of x against w_ih, onto the
 * biases), and so does dX in backward. The pointwise passes are vectorised, with exp,
 * sigmoid and tanh of their own (csrc/rnn_math.h: within 1, 2.5 and 1.5 ulps) compiled
 * for SSE4.2, AVX2 and AVX-512 and picked at load time. float64 keeps to BLAS and libm:
 * it is the reference the gradient checks use.
 *
 * Threads (OpenMP; recur.set_num_threads): the sequences of a batch do not interact, so
 * when each thread gets at least 8 of them and the sequence has enough work
 * (T*B*G*H >= 32768), every thread runs its own sub-batch through all the steps, with its
 * own single-threaded products and pointwise passes and no synchronisation between
 * steps; the GEMMs over all T*B rows are split by rows the same way, one single-threaded
 * GEMM per thread (OpenBLAS's own threading synchronises many times per call, which is
 * slow on a busy machine; OpenMP OpenBLAS runs serially inside a parallel region). A
 * forward or a backward is one parallel region, with one wait in forward (for the
 * packed weights) and two in backward (and for every row's gradients before dW).
 * A batch too small to split that way (fewer than 16 sequences; float32, AVX2 or
 * AVX-512; not the classic GRU) splits the hidden units instead, from B*G*H*H >= 32768
 * multiply-adds a step: every thread runs every step for its own units of every gate
 * and the threads meet once per step. Below 4 sequences a thread reads its rows of w_hh
 * (backward: its columns) as stored, and a lone step (step(), and a sequence of fewer
 * than 16 rows in all) projects its input in the step the same way; from 4 up, a thread
 * packs its own panels of w_hh per gate, and a lone step keeps to the batch's path.
 * Otherwise one loop covers the batch, BLAS threads its GEMMs and the pointwise passes
 * and packed products are OpenMP loops when large. The splits need the OpenMP build of
 * OpenBLAS (the Makefile links it); with the pthreads build it is never used. Results
 * depend on the thread count only through the order of OpenBLAS's sums (the packed
 * products sum each element in order).
 *
 * Variable lengths: lengths (B) with values 1..T, or NULL for all T. Sequence b takes
 * steps t = 0..L_b-1 (reverse: t = L_b-1 down to 0); elsewhere its state is frozen and
 * its outputs are zero, so the final state is the state after its last valid step. This
 * equals PyTorch's packed sequences in both directions. Padding positions of x do not
 * affect any result provided they are finite (the input GEMMs multiply them by zeros).
 *
 * Memory, in elements of the float type, for one layer (one direction):
 *   saved      = T*B*(G*H + E*H + H)   gate activations, E extra rows, h_{t-1}
 *                E = 0 for rnn (the activation is h_t), 1 for lstm (c_{t-1}), 1 for the
 *                gru (W_hn h + b_hn) and 1 for the classic gru (r*h_{t-1})
 *                rnn 2*T*B*H, gru 5*T*B*H, lstm 6*T*B*H
 *   forward workspace  = B*G*H + 2*G*H         one step's recurrent product (gru), biases
 *                      + P                      w_ih, w_hh packed (float32; see below)
 *   backward workspace = T*B*G*H                gate gradients of all steps
 *                      + S*B*H                  dh carried back
 *                      + T*B*H  (gru)           n gradient on the input side (lacks r)
 *                      + S*B*H  (lstm, classic gru)  dc carried back / d(r*h)
 *                      + S*B*G*H (+ S*B*H gru)  per-window gate gradients, only if S > 1
 *                      + P
 *     where S = 1 without truncation and k+1 with bptt_truncate = k (see below); "gru"
 *     is the reset_after form; P = about G*H*(D+H) + 16: w_ih and w_hh packed with
 *     their rows or columns rounded up to 32, counted in floats, left unused by float64.
 *     LSTM at T=100, B=64, D=H=512 in float32: saved 78.6 MB, backward workspace 61.1 MB.
 *   step workspace     = saved(T=1) + B*H + B*G*H + 2*G*H
 *
 * Truncated BPTT (bptt_truncate = k >= 0; negative means none): the gradient of each
 * output y_t flows back through steps t, t-1, ..., t-k only (in processing order; for
 * reverse, t, t+1, ..., t+k), into the parameters and the inputs of those steps, and into
 * h0/c0 only if step 0 (the sequence's first processed step) is among them. The gradient
 * of the final states (dhn, dcn) counts as an output of the sequence's last processed
 * step (t = L_b-1; reverse: t = 0). This is exact, not chunking: the k+1 outputs whose windows overlap at a step are
 * carried as k+1 separate (B,H) gradients, so each step costs one pointwise pass and one
 * GEMM over (k+1)*B rows instead of B: about (k+1) times the recurrent backward flops of
 * full BPTT (the GEMMs over all T*B rows are unchanged). When k+1 >= T nothing is
 * truncated and full BPTT runs.
 *
 * Sizes and pointers (spec/c/capi_test.c drives every case):
 *   T = 0   forward sets hn = h0 and cn = c0 (zeros for NULL) and writes nothing else;
 *           backward adds dhn into dh0 and dcn into dc0 (when both are given) and
 *           nothing else: with no step, the final state is the initial one.
 *   B = 0 or H = 0   nothing is read or written (the parameter gradients keep their
 *           values).
 *   D = 0   no input features: w_ih and x are empty; the result is that of a zero input.
 *   A negative size is a no-op, like B = 0. Sizes must keep every buffer's element
 *   count within a size_t and T*B, G*H, D and H within an int (the caller checks).
 *   NULL: a pointer to a buffer of zero elements may always be NULL (e.g. x and w_ih
 *   when D = 0; everything per sequence when B = 0). Otherwise only the pointers that
 *   a function below calls optional ("or NULL", "may be NULL") may be NULL: forward
 *   needs y, hn, saved, x, w_ih, w_hh, the workspace and (lstm) cn; backward needs
 *   saved, x, w_ih, w_hh and the workspace; step needs h, x, w_ih, w_hh, the workspace
 *   and (lstm) c. cell must be one of recur_rnn_cell's values; lengths must lie in 1..T. */
#ifndef RECUR_RNN_H
#define RECUR_RNN_H

#include <stddef.h>
#include <stdint.h>

#include "export.h"

RECUR_BEGIN_DECLS

typedef enum {
    RECUR_RNN_TANH = 0,
    RECUR_RNN_RELU = 1,
    RECUR_RNN_LSTM = 2,
    RECUR_RNN_GRU = 3,         /* reset gate after the recurrent product (PyTorch) */
    RECUR_RNN_GRU_CLASSIC = 4, /* reset gate before the recurrent product (Cho et al.) */
    RECUR_RNN_IDENTITY = 5     /* rnn with no nonlinearity (appended: the values above
                                  are part of the C API) */
} recur_rnn_cell;

/* Gates per hidden unit: 1, 4 or 3. */
int recur_rnn_gates(recur_rnn_cell cell);

/* Buffer sizes in elements (see the memory formula above). */
size_t recur_rnn_saved_size(recur_rnn_cell cell, int T, int B, int H);
size_t recur_rnn_forward_workspace_size(recur_rnn_cell cell, int B, int D, int H);
size_t recur_rnn_backward_workspace_size(recur_rnn_cell cell, int T, int B, int D, int H, int bptt_truncate);
size_t recur_rnn_step_workspace_size(recur_rnn_cell cell, int B, int H);

/* Forward over a sequence.
 * y is (T,B,H), hn and cn are (B,H) (cn only for lstm, else may be NULL),
 * saved is recur_rnn_saved_size(), workspace is recur_rnn_forward_workspace_size(),
 * x is (T,B,D), w_ih is (G*H,D), w_hh is (G*H,H), b_ih and b_hh are (G*H) or NULL,
 * h0 and c0 are (B,H) or NULL for zeros, lengths is (B) or NULL.
 * y, hn, cn and saved are overwritten. */
void recur_rnn_forward_f32(recur_rnn_cell cell, float *y, float *hn, float *cn, float *saved,
                     const float *x, const float *w_ih, const float *w_hh, const float *b_ih,
                     const float *b_hh, const float *h0, const float *c0,
                     const int64_t *lengths, int reverse, int T, int B, int D, int H,
                     float *workspace);
void recur_rnn_forward_f64(recur_rnn_cell cell, double *y, double *hn, double *cn, double *saved,
                     const double *x, const double *w_ih, const double *w_hh,
                     const double *b_ih, const double *b_hh, const double *h0,
                     const double *c0, const int64_t *lengths, int reverse, int T, int B,
                     int D, int H, double *workspace);

/* Backward through time for the forward that filled `saved` (same x, weights, lengths,
 * reverse, sizes). Every gradient output accumulates (+=): the caller zeroes them.
 * dx is (T,B,D), dh0 and dc0 are (B,H), dw_ih is (G*H,D), dw_hh is (G*H,H),
 * db_ih and db_hh are (G*H); any of them may be NULL when not wanted (dc0 only for lstm).
 * dy is (T,B,H), dhn and dcn are (B,H); any may be NULL for zero. Entries of dy past a
 * sequence's length are ignored (those outputs are constant zeros).
 * workspace is recur_rnn_backward_workspace_size(..., bptt_truncate). */
void recur_rnn_backward_f32(recur_rnn_cell cell, float *dx, float *dh0, float *dc0, float *dw_ih,
                      float *dw_hh, float *db_ih, float *db_hh, const float *dy,
                      const float *dhn, const float *dcn, const float *saved, const float *x,
                      const float *w_ih, const float *w_hh, const int64_t *lengths,
                      int reverse, int bptt_truncate, int T, int B, int D, int H,
                      float *workspace);
void recur_rnn_backward_f64(recur_rnn_cell cell, double *dx, double *dh0, double *dc0, double *dw_ih,
                      double *dw_hh, double *db_ih, double *db_hh, const double *dy,
                      const double *dhn, const double *dcn, const double *saved,
                      const double *x, const double *w_ih, const double *w_hh,
                      const int64_t *lengths, int reverse, int bptt_truncate, int T, int B,
                      int D, int H, double *workspace);

/* One step for generation: h and c (lstm only, else NULL) are (B,H), updated in place;
 * x is (B,D); workspace is recur_rnn_step_workspace_size(). In float32 from 4 sequences
 * up, steps give forward's bits; below, forward over 16 rows or more projects x over
 * all of them at once, which sums in another order: the same to rounding. */
void recur_rnn_step_f32(recur_rnn_cell cell, float *h, float *c, const float *x, const float *w_ih,
                  const float *w_hh, const float *b_ih, const float *b_hh, int B, int D,
                  int H, float *workspace);
void recur_rnn_step_f64(recur_rnn_cell cell, double *h, double *c, const double *x, const double *w_ih,
                  const double *w_hh, const double *b_ih, const double *b_hh, int B, int D,
                  int H, double *workspace);

RECUR_END_DECLS

#endif
