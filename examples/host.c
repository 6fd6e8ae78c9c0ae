/* A host program that uses recur's C core without Lua: an LSTM layer run over a whole
 * sequence in one call, then again one step at a time as a game loop feeding one input
 * per frame would, and the two final states compared.
 *
 * Installed (`make install PREFIX=/opt/recur`):
 *   PKG_CONFIG_PATH=/opt/recur/lib/pkgconfig cc -O2 host.c $(pkg-config --cflags --libs recur)
 *   LD_LIBRARY_PATH=/opt/recur/lib ./a.out        (or ldconfig, for a system folder)
 * From the checkout, `make host-example` links build/librecur.a and runs it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <recur/recur.h>

int main(void)
{
    enum { T = 12, B = 2, D = 5, H = 8, G = 4 };
    /* before any BLAS call: OpenBLAS's AVX2/AVX-512 kernels on a CPU it predates */
    recur_blas_repair_core();
    recur_rng rng;
    recur_rng_seed(&rng, 42);

    /* x is (T,B,D); PyTorch's layout for the weights: w_ih (G*H,D), w_hh (G*H,H) */
    static float x[T * B * D], w_ih[G * H * D], w_hh[G * H * H], b_ih[G * H], b_hh[G * H];
    float bound = 1.0f / sqrtf((float)H);
    for (int i = 0; i < T * B * D; i++) x[i] = (float)recur_rng_normal(&rng);
    for (int i = 0; i < G * H * D; i++) w_ih[i] = bound * (float)(2 * recur_rng_uniform(&rng) - 1);
    for (int i = 0; i < G * H * H; i++) w_hh[i] = bound * (float)(2 * recur_rng_uniform(&rng) - 1);
    for (int i = 0; i < G * H; i++) b_ih[i] = b_hh[i] = 0.1f;

    /* whole sequence: buffers sized by the kernel's own size functions */
    float *y = calloc(T * B * H, sizeof *y), hn[B * H], cn[B * H];
    float *saved = calloc(recur_rnn_saved_size(RECUR_RNN_LSTM, T, B, H), sizeof(float));
    float *work = calloc(recur_rnn_forward_workspace_size(RECUR_RNN_LSTM, B, D, H), sizeof(float));
    recur_rnn_forward_f32(RECUR_RNN_LSTM, y, hn, cn, saved, x, w_ih, w_hh, b_ih, b_hh, NULL, NULL, NULL, 0,
                    T, B, D, H, work);

    /* one step at a time, state kept by the host */
    float h[B * H] = {0}, c[B * H] = {0};
    float *step_work = calloc(recur_rnn_step_workspace_size(RECUR_RNN_LSTM, B, H), sizeof(float));
    for (int t = 0; t < T; t++)
        recur_rnn_step_f32(RECUR_RNN_LSTM, h, c, x + t * B * D, w_ih, w_hh, b_ih, b_hh, B, D, H, step_work);

    /* the same to rounding: below 4 sequences the whole sequence runs recur's kernels
     * and a lone step BLAS, which sum in another order (from 4 up, the same bits) */
    double diff = 0;
    for (int i = 0; i < B * H; i++) diff = fmax(diff, fabs((double)h[i] - hn[i]));
    printf("lstm T=%d B=%d D=%d H=%d: h[0]=%.6f, step-by-step vs whole sequence max |diff| = %.3g\n",
           T, B, D, H, hn[0], diff);
    free(y);
    free(saved);
    free(work);
    free(step_work);
    return diff < 1e-5 ? 0 : 1;
}
