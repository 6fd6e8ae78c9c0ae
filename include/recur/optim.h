/* Optimizer updates and gradient-norm helpers: plain C over contiguous float arrays.
 * Every update comes in float32 (_f32) and float64 (_f64, the same equations with
 * double coefficients, for the float64 models of gradient checks).
 *
 * Each update reads and writes one parameter's data once (parameter, gradient and
 * state buffers, all of n elements), the same equations and the same order of float
 * operations as PyTorch 1.13's single-tensor torch.optim code, with the scalar
 * coefficients computed in double and rounded to the element type as PyTorch does.
 * Nothing here knows about Lua. */
/* Sizes and pointers: n <= 0 updates nothing and a sum or maximum over it is 0; every
 * pointer may then be NULL. Otherwise p, g and the state buffers an update uses must
 * not be NULL; the optional ones are NULL exactly as each function says. */
#ifndef RECUR_OPTIM_H
#define RECUR_OPTIM_H

#include <stdint.h>

#include "export.h"

RECUR_BEGIN_DECLS

/* SGD. buf (the momentum buffer) is NULL when momentum == 0; on the first step
 * (first != 0) it is set to the gradient instead of being decayed. */
void recur_sgd_update_f32(float *p, const float *g, float *buf, int64_t n, double lr,
                          double momentum, double dampening, double weight_decay, int nesterov,
                          int first);
void recur_sgd_update_f64(double *p, const double *g, double *buf, int64_t n, double lr,
                          double momentum, double dampening, double weight_decay, int nesterov,
                          int first);

/* Adam (decoupled == 0, L2 weight decay added to the gradient) and AdamW
 * (decoupled != 0, p *= 1 - lr*weight_decay). m, v are the first and second moments;
 * vmax is the running maximum of v for AMSGrad, NULL otherwise. step counts from 1. */
void recur_adam_update_f32(float *p, const float *g, float *m, float *v, float *vmax, int64_t n,
                           double lr, double beta1, double beta2, double eps, double weight_decay,
                           int decoupled, int64_t step);
void recur_adam_update_f64(double *p, const double *g, double *m, double *v, double *vmax,
                           int64_t n, double lr, double beta1, double beta2, double eps,
                           double weight_decay, int decoupled, int64_t step);

/* RMSprop. sq is the running mean of g^2; gavg (centered only, else NULL) the running
 * mean of g; buf the momentum buffer (momentum > 0 only, else NULL). */
void recur_rmsprop_update_f32(float *p, const float *g, float *sq, float *gavg, float *buf,
                              int64_t n, double lr, double alpha, double eps, double weight_decay,
                              double momentum);
void recur_rmsprop_update_f64(double *p, const double *g, double *sq, double *gavg, double *buf,
                              int64_t n, double lr, double alpha, double eps, double weight_decay,
                              double momentum);

/* Adagrad. sum accumulates g^2; clr is the decayed rate lr / (1 + (step-1)*lr_decay). */
void recur_adagrad_update_f32(float *p, const float *g, float *sum, int64_t n, double clr,
                              double eps, double weight_decay);
void recur_adagrad_update_f64(double *p, const double *g, double *sum, int64_t n, double clr,
                              double eps, double weight_decay);

/* Sum of squares and largest absolute value, accumulated in double (gradient clipping).
 * A NaN anywhere makes max_abs return NaN, as the norm would. */
double recur_sum_squares_f32(const float *x, int64_t n);
double recur_sum_squares_f64(const double *x, int64_t n);
double recur_max_abs_f32(const float *x, int64_t n);
double recur_max_abs_f64(const double *x, int64_t n);

RECUR_END_DECLS

#endif
