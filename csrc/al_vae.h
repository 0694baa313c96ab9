/*
 * al_vae.h -- prototypes of the LSTM-VAE kernels (vae_impl.h), for float32 (_f32) and float64
 * (_f64). Shapes and math are documented at each definition; argument order as al_common.h.
 * Every backward overwrites its outputs.
 *
 * Legend: B batch, Z latent size, T timesteps, D features. Masks are (B,T) uint8 arrays
 * (nonzero = keep) or NULL.
 */
#ifndef AL_VAE_H
#define AL_VAE_H

#include "al_common.h"

/* Reconstruction-loss kinds (attnlstm/_ops_vae.py keeps the same numbers). */
enum {
    AL_RECON_SQUARED = 0,    /* sum (x_hat - x)^2  ("mse") */
    AL_RECON_ABSOLUTE = 1,   /* sum |x_hat - x|    ("mae") */
    AL_RECON_COUNT = 2
};

#define AL_DECLARE_VAE(sfx, real)                                                               \
    int al_sampling_forward_##sfx(real *z, real *std, const real *z_mean,                      \
                                  const real *z_log_var, const real *eps, size_t B, size_t Z); \
    int al_sampling_backward_##sfx(real *d_mean, real *d_log_var, const real *std,             \
                                   const real *d_z, const real *eps, size_t B, size_t Z);      \
    int al_kl_forward_##sfx(real *kl, const real *z_mean, const real *z_log_var,               \
                            size_t B, size_t Z);                                                \
    int al_kl_backward_##sfx(real *d_mean, real *d_log_var, const real *d_kl,                  \
                             const real *z_mean, const real *z_log_var, size_t B, size_t Z);   \
    int al_recon_forward_##sfx(real *loss, const real *x_hat, const real *x,                   \
                               const uint8_t *mask, size_t B, size_t T, size_t D, int kind);   \
    int al_recon_backward_##sfx(real *d_x_hat, const real *d_loss, const real *x_hat,          \
                                const real *x, const uint8_t *mask,                            \
                                size_t B, size_t T, size_t D, int kind);                       \
    int al_gaussian_nll_forward_##sfx(real *loss, const real *x_hat, const real *x_log_var,   \
                                      const real *x, const uint8_t *mask,                     \
                                      size_t B, size_t T, size_t D);                          \
    int al_gaussian_nll_backward_##sfx(real *d_x_hat, real *d_x_log_var, const real *d_loss,  \
                                       const real *x_hat, const real *x_log_var,              \
                                       const real *x, const uint8_t *mask,                    \
                                       size_t B, size_t T, size_t D);

AL_DECLARE_VAE(f32, float)
AL_DECLARE_VAE(f64, double)

#endif /* AL_VAE_H */
