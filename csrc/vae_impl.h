/*
 * vae_impl.h -- LSTM-VAE kernels (issue #5): the reparameterisation trick, the KL term of a
 * diagonal Gaussian against N(0, I), and the masked reconstruction loss; forward and backward.
 * Part of the type template (al_real.h): included once per floating type by vae.c.
 *
 * Legend (STYLE.md): B batch, Z latent size, T timesteps, D features. Buffers are
 * flat and row-major in NumPy axis order.
 *
 * Math (Kingma & Welling 2014, "Auto-Encoding Variational Bayes"; the Keras VAE example):
 *   std = exp(0.5 * log_var)                  z  = mean + std * eps,   eps ~ N(0, I)
 *   kl[b] = -0.5 * sum_z (1 + log_var - mean^2 - exp(log_var))
 *         =  0.5 * sum_z (mean^2 + (exp(log_var) - 1 - log_var))
 *   loss[b] = sum over unmasked t and every f of  (x_hat - x)^2   (kind AL_RECON_SQUARED)
 *                                             or |x_hat - x|     (kind AL_RECON_ABSOLUTE)
 *   nll[b]  = sum over unmasked t and all f of 0.5 * (log(2 pi) + lv + (x_hat - x)^2 * exp(-lv))
 *             (gaussian_nll: a decoder that also predicts a log-variance lv per element)
 * The second form of kl is the same function; it is a sum of non-negative terms, and
 * exp(v) - 1 - v is evaluated without cancellation (a Taylor series for |v| < 1), so kl >= 0
 * and is accurate to a few ulps even when the posterior is close to the prior.
 *
 * Every backward OVERWRITES its outputs (the caller adds into its own accumulators).
 * Sums are accumulated in double for both types. NaN/inf in the inputs propagate; masked time
 * steps are not read at all (padding may hold anything) and get a zero gradient.
 */

/* log(2 pi), the normalising constant of the Gaussian NLL. */
#ifndef AL_LOG_2PI
#define AL_LOG_2PI 1.8378770664093454835606594728112
#endif

/*
 * sampling_forward: the reparameterisation trick.
 *
 * outputs   z         (B,Z)  mean + std * eps
 * saved     std       (B,Z)  exp(0.5 * log_var), for sampling_backward
 * inputs    z_mean    (B,Z)
 *           z_log_var (B,Z)
 *           eps       (B,Z)  standard normal noise (drawn by the caller: no RNG in C)
 * returns   AL_OK
 */
int AL_FN(sampling_forward)(real *z, real *std, const real *z_mean, const real *z_log_var,
                            const real *eps, size_t B, size_t Z) {
    const size_t n = B * Z;
    size_t i;
    for (i = 0; i < n; i++) {
        std[i] = AL_EXP((real)0.5 * z_log_var[i]);
        z[i] = z_mean[i] + std[i] * eps[i];
    }
    return AL_OK;
}

/*
 * sampling_backward: inverts sampling_forward line by line (overwrites its outputs).
 *
 * outputs   d_mean    (B,Z)  d_z
 *           d_log_var (B,Z)  d_z * eps * std * 0.5      (d std / d log_var = 0.5 * std)
 * saved     std       (B,Z)  from sampling_forward
 * inputs    d_z       (B,Z)  gradient of the loss with respect to z
 *           eps       (B,Z)  the noise of the forward
 * returns   AL_OK
 */
int AL_FN(sampling_backward)(real *d_mean, real *d_log_var, const real *std, const real *d_z,
                             const real *eps, size_t B, size_t Z) {
    const size_t n = B * Z;
    size_t i;
    for (i = 0; i < n; i++) {
        d_mean[i] = d_z[i];
        d_log_var[i] = d_z[i] * eps[i] * std[i] * (real)0.5;
    }
    return AL_OK;
}

/*
 * kl_forward: KL(N(mean, exp(log_var)) || N(0, I)) per sample, summed over the latent dims.
 *
 * outputs   kl        (B,)   0.5 * sum_z (mean^2 + exp(log_var) - 1 - log_var); 0 when Z == 0
 * inputs    z_mean    (B,Z)
 *           z_log_var (B,Z)
 * returns   AL_OK
 */
int AL_FN(kl_forward)(real *kl, const real *z_mean, const real *z_log_var, size_t B, size_t Z) {
    size_t b, j;
    if (Z == 0) {
        for (b = 0; b < B; b++) kl[b] = (real)0;
        return AL_OK;
    }
    for (b = 0; b < B; b++) {
        const real *m = z_mean + b * Z;
        const real *lv = z_log_var + b * Z;
        double acc = 0.0;
        for (j = 0; j < Z; j++) {
            acc += (double)(m[j] * m[j]) + (double)AL_SFN(al_expm1_minus)(lv[j]);
        }
        kl[b] = (real)(0.5 * acc);
    }
    return AL_OK;
}

/*
 * kl_backward: inverts kl_forward (overwrites its outputs).
 *
 * outputs   d_mean    (B,Z)  d_kl[b] * mean
 *           d_log_var (B,Z)  d_kl[b] * 0.5 * (exp(log_var) - 1)      (expm1: exact near 0)
 * inputs    d_kl      (B,)   gradient of the loss with respect to kl
 *           z_mean    (B,Z)
 *           z_log_var (B,Z)
 * returns   AL_OK
 */
int AL_FN(kl_backward)(real *d_mean, real *d_log_var, const real *d_kl, const real *z_mean,
                       const real *z_log_var, size_t B, size_t Z) {
    size_t b, j;
    if (B == 0 || Z == 0) return AL_OK;   /* the outputs are empty */
    for (b = 0; b < B; b++) {
        const real g = d_kl[b];
        for (j = 0; j < Z; j++) {
            const size_t i = b * Z + j;
            d_mean[i] = g * z_mean[i];
            d_log_var[i] = g * (real)0.5 * AL_EXPM1(z_log_var[i]);
        }
    }
    return AL_OK;
}

/* The Gaussian NLL's term, as a third kind for vae_masked_sum (not a kind of recon_forward). */
#ifndef AL_VAE_NLL
#define AL_VAE_NLL (-1)
#endif

/* loss[b] = sum over the unmasked steps t of sample b and every f of the term of `kind` with
 * d = x_hat - x: d^2 (AL_RECON_SQUARED), |d| (AL_RECON_ABSOLUTE) or
 * 0.5 (log(2 pi) + lv + d^2 exp(-lv)) (AL_VAE_NLL, lv = x_log_var); in double, in order. */
static void AL_SFN(vae_masked_sum)(real *loss, const real *x_hat, const real *x,
                                   const real *x_log_var, const uint8_t *mask, int kind,
                                   size_t B, size_t T, size_t D) {
    size_t b, t, f;
    if (T == 0 || D == 0) {   /* nothing to sum: no loop over B x T (a (3, 2**40, 0) view) */
        for (b = 0; b < B; b++) loss[b] = (real)0;
        return;
    }
    for (b = 0; b < B; b++) {
        double acc = 0.0;
        for (t = 0; t < T; t++) {
            const size_t row = (b * T + t) * D;
            if (mask != NULL && !mask[b * T + t]) continue;
            if (kind == AL_RECON_SQUARED) {
                for (f = 0; f < D; f++) {
                    const double d = (double)x_hat[row + f] - (double)x[row + f];
                    acc += d * d;
                }
            } else if (kind == AL_RECON_ABSOLUTE) {
                for (f = 0; f < D; f++) acc += fabs((double)x_hat[row + f] - (double)x[row + f]);
            } else {
                for (f = 0; f < D; f++) {
                    const double d = (double)x_hat[row + f] - (double)x[row + f];
                    const double lv = (double)x_log_var[row + f];
                    acc += 0.5 * (AL_LOG_2PI + lv + d * d * exp(-lv));
                }
            }
        }
        loss[b] = (real)acc;
    }
}

/*
 * recon_forward: masked reconstruction loss, one number per sequence.
 *
 * outputs   loss   (B,)     sum over unmasked t and all f of (x_hat - x)^2 (kind
 *                           AL_RECON_SQUARED) or |x_hat - x| (AL_RECON_ABSOLUTE); 0 for a
 *                           fully masked sequence or T*D == 0
 * inputs    x_hat  (B,T,D)  the reconstruction
 *           x      (B,T,D)  the target
 *           mask   (B,T)    uint8, nonzero = keep, or NULL (every step counts)
 * returns   AL_OK, or AL_ERR_ARG for an unknown kind
 */
int AL_FN(recon_forward)(real *loss, const real *x_hat, const real *x, const uint8_t *mask,
                         size_t B, size_t T, size_t D, int kind) {
    if (kind != AL_RECON_SQUARED && kind != AL_RECON_ABSOLUTE) return AL_ERR_ARG;
    AL_SFN(vae_masked_sum)(loss, x_hat, x, NULL, mask, kind, B, T, D);
    return AL_OK;
}

/* sign(d) as np.sign: -1, 0 or 1, and NaN for NaN (so NaN propagates into the gradient). */
static real AL_SFN(vae_sign)(real d) {
    return d > 0 ? (real)1 : d < 0 ? (real)-1 : d == 0 ? (real)0 : d;
}

/*
 * recon_backward: inverts recon_forward (overwrites d_x_hat; d x = -d_x_hat).
 *
 * outputs   d_x_hat (B,T,D)  d_loss[b] * 2 (x_hat - x)  (squared) or
 *                            d_loss[b] * sign(x_hat - x) (absolute; 0 where x_hat == x);
 *                            0 at masked steps
 * inputs    d_loss  (B,)     gradient of the total loss with respect to loss
 *           x_hat   (B,T,D)
 *           x       (B,T,D)
 *           mask    (B,T)    uint8 or NULL, as in the forward
 * returns   AL_OK, or AL_ERR_ARG for an unknown kind
 */
int AL_FN(recon_backward)(real *d_x_hat, const real *d_loss, const real *x_hat, const real *x,
                          const uint8_t *mask, size_t B, size_t T, size_t D, int kind) {
    size_t b, t, f;
    if (kind != AL_RECON_SQUARED && kind != AL_RECON_ABSOLUTE) return AL_ERR_ARG;
    if (B == 0 || T == 0 || D == 0) return AL_OK;   /* d_x_hat is empty */
    for (b = 0; b < B; b++) {
        const real g = d_loss[b];
        const real g2 = (real)2 * g;
        for (t = 0; t < T; t++) {
            const size_t row = (b * T + t) * D;
            real *dr = d_x_hat + row;
            if (mask != NULL && !mask[b * T + t]) {
                for (f = 0; f < D; f++) dr[f] = (real)0;
            } else if (kind == AL_RECON_SQUARED) {
                for (f = 0; f < D; f++) dr[f] = g2 * (x_hat[row + f] - x[row + f]);
            } else {
                for (f = 0; f < D; f++) dr[f] = g * AL_SFN(vae_sign)(x_hat[row + f] - x[row + f]);
            }
        }
    }
    return AL_OK;
}

/*
 * gaussian_nll_forward: masked Gaussian negative log-likelihood per sequence, for decoders that
 * also predict a per-element log-variance (the reconstruction probability of An & Cho 2015,
 * useful as an anomaly score). With d = x_hat - x:
 *
 * outputs   loss      (B,)     sum over unmasked t and all f of
 *                              0.5 * (log(2 pi) + x_log_var + d^2 * exp(-x_log_var));
 *                              0 for a fully masked sequence or T*D == 0
 * inputs    x_hat     (B,T,D)  the predicted mean
 *           x_log_var (B,T,D)  the predicted log-variance
 *           x         (B,T,D)  the target
 *           mask      (B,T)    uint8, nonzero = keep, or NULL
 * returns   AL_OK
 */
int AL_FN(gaussian_nll_forward)(real *loss, const real *x_hat, const real *x_log_var,
                                const real *x, const uint8_t *mask,
                                size_t B, size_t T, size_t D) {
    AL_SFN(vae_masked_sum)(loss, x_hat, x, x_log_var, mask, AL_VAE_NLL, B, T, D);
    return AL_OK;
}

/*
 * gaussian_nll_backward: inverts gaussian_nll_forward (overwrites its outputs; 0 at masked
 * steps). With d = x_hat - x and p = exp(-x_log_var) (the precision):
 *
 * outputs   d_x_hat     (B,T,D)  d_loss[b] * d * p                 (d x = -d_x_hat)
 *           d_x_log_var (B,T,D)  d_loss[b] * 0.5 * (1 - d^2 * p)
 * inputs    d_loss      (B,)
 *           x_hat, x_log_var, x (B,T,D);  mask (B,T) uint8 or NULL, as in the forward
 * returns   AL_OK
 */
int AL_FN(gaussian_nll_backward)(real *d_x_hat, real *d_x_log_var, const real *d_loss,
                                 const real *x_hat, const real *x_log_var, const real *x,
                                 const uint8_t *mask, size_t B, size_t T, size_t D) {
    size_t b, t, f;
    if (B == 0 || T == 0 || D == 0) return AL_OK;   /* the outputs are empty */
    for (b = 0; b < B; b++) {
        const real g = d_loss[b];
        for (t = 0; t < T; t++) {
            const size_t row = (b * T + t) * D;
            if (mask != NULL && !mask[b * T + t]) {
                for (f = 0; f < D; f++) d_x_hat[row + f] = d_x_log_var[row + f] = (real)0;
                continue;
            }
            for (f = 0; f < D; f++) {
                const real d = x_hat[row + f] - x[row + f];
                const real dp = d * AL_EXP(-x_log_var[row + f]);
                d_x_hat[row + f] = g * dp;
                d_x_log_var[row + f] = g * (real)0.5 * ((real)1 - d * dp);
            }
        }
    }
    return AL_OK;
}

