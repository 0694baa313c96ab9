/*
 * bind_vae.c -- the LSTM-VAE kernels (vae_impl.h) declared to the front door (bind_spec.h):
 * sampling (the reparameterisation trick), the KL term, the masked reconstruction loss and the
 * Gaussian negative log-likelihood, forward and backward. Legend: B batch, T timesteps,
 * D features, Z latent size. Every array shares the dtype of the first; bad input raises
 * TypeError/ValueError.
 */
#include "bind_spec.h"
#include "al_vae.h"

enum { L_B, L_T, L_D, L_Z };
#define LETTERS "B,T,D,Z"
/* The (B, T, D) losses run over slices of whole sequences of about 2^22 elements, and take
 * the GIL back between slices to check for signals, so Ctrl-C stops a long call. */
#define CHUNK ((npy_intp)1 << 22)
#define KIND " kind=0:{squared error,absolute error}"
#define SPEC(name, count, run, sig, doc, ...) {name, count, run, sig, doc, LETTERS, __VA_ARGS__}

enum { SF_MEAN, SF_LV, SF_EPS, SF_Z, SF_STD, SF_COUNT };
static int sampling_forward_run(const al_call *c) {
    return AL_DISPATCH(al_sampling_forward, AL_P(SF_Z), AL_P(SF_STD), AL_P(SF_MEAN),
                       AL_P(SF_LV), AL_P(SF_EPS), AL_N(L_B), AL_N(L_Z));
}

enum { SB_DZ, SB_STD, SB_EPS, SB_DMEAN, SB_DLV, SB_COUNT };
static int sampling_backward_run(const al_call *c) {
    return AL_DISPATCH(al_sampling_backward, AL_P(SB_DMEAN), AL_P(SB_DLV), AL_P(SB_STD),
                       AL_P(SB_DZ), AL_P(SB_EPS), AL_N(L_B), AL_N(L_Z));
}

enum { KF_MEAN, KF_LV, KF_KL, KF_COUNT };
static int kl_forward_run(const al_call *c) {
    return AL_DISPATCH(al_kl_forward, AL_P(KF_KL), AL_P(KF_MEAN), AL_P(KF_LV), AL_N(L_B),
                       AL_N(L_Z));
}

enum { KB_DKL, KB_MEAN, KB_LV, KB_DMEAN, KB_DLV, KB_COUNT };
static int kl_backward_run(const al_call *c) {
    return AL_DISPATCH(al_kl_backward, AL_P(KB_DMEAN), AL_P(KB_DLV), AL_P(KB_DKL),
                       AL_P(KB_MEAN), AL_P(KB_LV), AL_N(L_B), AL_N(L_Z));
}

enum { RF_XH, RF_X, RF_MASK, RF_KIND, RF_LOSS, RF_COUNT };
static int recon_forward_run(const al_call *c) {
    return AL_DISPATCH(al_recon_forward, AL_P(RF_LOSS), AL_P(RF_XH), AL_P(RF_X), AL_P(RF_MASK),
                       AL_N(L_B), AL_N(L_T), AL_N(L_D), AL_I(RF_KIND));
}

enum { RB_DLOSS, RB_XH, RB_X, RB_MASK, RB_KIND, RB_DXH, RB_COUNT };
static int recon_backward_run(const al_call *c) {
    return AL_DISPATCH(al_recon_backward, AL_P(RB_DXH), AL_P(RB_DLOSS), AL_P(RB_XH), AL_P(RB_X),
                       AL_P(RB_MASK), AL_N(L_B), AL_N(L_T), AL_N(L_D), AL_I(RB_KIND));
}

enum { NF_XH, NF_LV, NF_X, NF_MASK, NF_LOSS, NF_COUNT };
static int nll_forward_run(const al_call *c) {
    return AL_DISPATCH(al_gaussian_nll_forward, AL_P(NF_LOSS), AL_P(NF_XH), AL_P(NF_LV),
                       AL_P(NF_X), AL_P(NF_MASK), AL_N(L_B), AL_N(L_T), AL_N(L_D));
}

enum { NB_DLOSS, NB_XH, NB_LV, NB_X, NB_MASK, NB_DXH, NB_DLV, NB_COUNT };
static int nll_backward_run(const al_call *c) {
    return AL_DISPATCH(al_gaussian_nll_backward, AL_P(NB_DXH), AL_P(NB_DLV), AL_P(NB_DLOSS),
                       AL_P(NB_XH), AL_P(NB_LV), AL_P(NB_X), AL_P(NB_MASK), AL_N(L_B),
                       AL_N(L_T), AL_N(L_D));
}

al_spec al_vae_specs[] = {
    SPEC("sampling_forward", SF_COUNT, sampling_forward_run,
         "z_mean:B,Z z_log_var:B,Z eps:B,Z -> z:B,Z std:B,Z",
         "The reparameterisation trick: std = exp(0.5 * z_log_var), z = z_mean + std * eps,\n"
         "all (B, Z); std is saved for sampling_backward."),
    SPEC("sampling_backward", SB_COUNT, sampling_backward_run,
         "d_z:B,Z std:B,Z eps:B,Z -> d_z_mean:B,Z d_z_log_var:B,Z",
         "Gradients of sampling_forward: d_z_mean = d_z, d_z_log_var = d_z * eps * std * 0.5."),
    SPEC("kl_forward", KF_COUNT, kl_forward_run, "z_mean:B,Z z_log_var:B,Z -> kl:B",
         "KL(N(z_mean, exp(z_log_var)) || N(0, I)) per sample, summed over the latent dims:\n"
         "kl (B,) = -0.5 * sum_z (1 + z_log_var - z_mean^2 - exp(z_log_var)) (evaluated without\n"
         "cancellation). Z == 0 gives zeros."),
    SPEC("kl_backward", KB_COUNT, kl_backward_run,
         "d_kl:B z_mean:B,Z z_log_var:B,Z -> d_z_mean:B,Z d_z_log_var:B,Z",
         "Gradients of kl_forward: d_z_mean = d_kl[:, None] * z_mean,\n"
         "d_z_log_var = d_kl[:, None] * 0.5 * (exp(z_log_var) - 1).",
         .dtype_from = "z_mean", .order = "z_mean,z_log_var"),
    SPEC("recon_forward", RF_COUNT, recon_forward_run,
         "x_hat:B,T,D x:B,T,D mask?:B,T:bool" KIND " -> loss:B",
         "Masked reconstruction loss per sequence, loss (B,): the sum over unmasked timesteps and\n"
         "all features of (x_hat - x)^2 (kind 0) or |x_hat - x| (kind 1). mask nonzero = keep\n"
         "(masked steps are not read; a fully masked sequence gives 0).", .chunk = CHUNK),
    SPEC("recon_backward", RB_COUNT, recon_backward_run,
         "d_loss:B x_hat:B,T,D x:B,T,D mask?:B,T:bool" KIND " -> d_x_hat:B,T,D",
         "Gradient of recon_forward with respect to x_hat: d_loss[b] * 2 (x_hat - x) (kind 0) or\n"
         "d_loss[b] * sign(x_hat - x) (kind 1, 0 where equal); 0 at masked steps. The gradient\n"
         "with respect to x is its negative.",
         .dtype_from = "x_hat", .order = "x_hat,x,mask", .chunk = CHUNK),
    SPEC("gaussian_nll_forward", NF_COUNT, nll_forward_run,
         "x_hat:B,T,D x_log_var:B,T,D x:B,T,D mask?:B,T:bool -> loss:B",
         "Masked Gaussian negative log-likelihood per sequence, loss (B,): the sum over unmasked\n"
         "timesteps and all features of 0.5 * (log(2 pi) + x_log_var + (x_hat - x)^2 *\n"
         "exp(-x_log_var)). mask nonzero = keep.", .order = "x_hat,x,mask", .chunk = CHUNK),
    SPEC("gaussian_nll_backward", NB_COUNT, nll_backward_run,
         "d_loss:B x_hat:B,T,D x_log_var:B,T,D x:B,T,D mask?:B,T:bool "
         "-> d_x_hat:B,T,D d_x_log_var:B,T,D",
         "Gradients of gaussian_nll_forward: with d = x_hat - x and p = exp(-x_log_var),\n"
         "d_x_hat = d_loss[b] * d * p and d_x_log_var = d_loss[b] * 0.5 * (1 - d^2 * p); 0 at\n"
         "masked steps.", .dtype_from = "x_hat", .order = "x_hat,x,mask,x_log_var",
         .chunk = CHUNK),
    {NULL},
};
