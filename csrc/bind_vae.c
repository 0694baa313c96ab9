/*
 * bind_vae.c -- the LSTM-VAE kernels (vae_impl.h) declared to the front door (bind_spec.h):
 * sampling (the reparameterisation trick), the KL term, the masked reconstruction loss and the
 * Gaussian negative log-likelihood, forward and backward. Legend: B batch, Z latent size,
 * T timesteps, F features.
 */
#include "bind_spec.h"
#include "al_vae.h"

enum { L_B, L_T, L_F, L_Z };
#define LETTERS "B,T,F,Z"
/* The (B, T, F) losses run over slices of whole sequences of about 2^22 elements, and take
 * the GIL back between slices to check for signals, so Ctrl-C stops a long call. */
#define CHUNK ((npy_intp)1 << 22)
#define KIND {"kind", AL_OPT, 'i', AL_DEF, "", NULL, AL_RECON_SQUARED, AL_RECON_SQUARED,      \
              AL_RECON_COUNT - 1, "0 (squared error) or 1 (absolute error)"}

/* ---- sampling --------------------------------------------------------------------------- */

static const char SAMPLING_FORWARD_DOC[] =
    "sampling_forward(z_mean, z_log_var, eps) -> (z, std)\n\n"
    "The reparameterisation trick: std = exp(0.5 * z_log_var), z = z_mean + std * eps.\n"
    "All arrays (B, Z), one dtype (float32 or float64, z_mean's). std is saved for\n"
    "sampling_backward. Raises TypeError/ValueError on bad input.";

enum { SF_Z, SF_STD, SF_MEAN, SF_LV, SF_EPS, SF_COUNT };
static const al_arg SAMPLING_FORWARD[] = {
    {"z", AL_OUT, 'f', 0, "B,Z"},
    {"std", AL_SAVE, 'f', 0, "B,Z"},
    {"z_mean", AL_IN, 'f', 0, "B,Z"},
    {"z_log_var", AL_IN, 'f', 0, "B,Z"},
    {"eps", AL_IN, 'f', 0, "B,Z"},
};
_Static_assert(AL_COUNT(SAMPLING_FORWARD) == SF_COUNT, "SAMPLING_FORWARD");

static int sampling_forward_run(const al_call *c) {
    return AL_DISPATCH(al_sampling_forward, AL_P(SF_Z), AL_P(SF_STD), AL_P(SF_MEAN),
                       AL_P(SF_LV), AL_P(SF_EPS), AL_N(L_B), AL_N(L_Z));
}

static const al_spec SAMPLING_FORWARD_SPEC = {"sampling_forward", SAMPLING_FORWARD, SF_COUNT,
                                              LETTERS, "z_mean", NULL, NULL, NULL, NULL,
                                              sampling_forward_run};

static const char SAMPLING_BACKWARD_DOC[] =
    "sampling_backward(d_z, std, eps) -> (d_z_mean, d_z_log_var)\n\n"
    "Gradients of sampling_forward: d_z_mean = d_z, d_z_log_var = d_z * eps * std * 0.5.\n"
    "All arrays (B, Z), one dtype (d_z's). Raises TypeError/ValueError on bad input.";

enum { SB_DMEAN, SB_DLV, SB_DZ, SB_STD, SB_EPS, SB_COUNT };
static const al_arg SAMPLING_BACKWARD[] = {
    {"d_z_mean", AL_OUT, 'f', 0, "B,Z"},
    {"d_z_log_var", AL_OUT, 'f', 0, "B,Z"},
    {"d_z", AL_IN, 'f', 0, "B,Z"},
    {"std", AL_SAVED, 'f', 0, "B,Z"},
    {"eps", AL_IN, 'f', 0, "B,Z"},
};
_Static_assert(AL_COUNT(SAMPLING_BACKWARD) == SB_COUNT, "SAMPLING_BACKWARD");

static int sampling_backward_run(const al_call *c) {
    return AL_DISPATCH(al_sampling_backward, AL_P(SB_DMEAN), AL_P(SB_DLV), AL_P(SB_STD),
                       AL_P(SB_DZ), AL_P(SB_EPS), AL_N(L_B), AL_N(L_Z));
}

static const al_spec SAMPLING_BACKWARD_SPEC = {"sampling_backward", SAMPLING_BACKWARD, SB_COUNT,
                                               LETTERS, "d_z", NULL, NULL, NULL, NULL,
                                               sampling_backward_run};

/* ---- KL divergence ---------------------------------------------------------------------- */

static const char KL_FORWARD_DOC[] =
    "kl_forward(z_mean, z_log_var) -> kl\n\n"
    "KL(N(z_mean, exp(z_log_var)) || N(0, I)) per sample, summed over the latent dims:\n"
    "kl (B,) = -0.5 * sum_z (1 + z_log_var - z_mean^2 - exp(z_log_var)) (evaluated without\n"
    "cancellation). z_mean and z_log_var (B, Z), one dtype. Z == 0 gives zeros.\n"
    "Raises TypeError/ValueError on bad input.";

enum { KF_KL, KF_MEAN, KF_LV, KF_COUNT };
static const al_arg KL_FORWARD[] = {
    {"kl", AL_OUT, 'f', 0, "B"},
    {"z_mean", AL_IN, 'f', 0, "B,Z"},
    {"z_log_var", AL_IN, 'f', 0, "B,Z"},
};
_Static_assert(AL_COUNT(KL_FORWARD) == KF_COUNT, "KL_FORWARD");

static int kl_forward_run(const al_call *c) {
    return AL_DISPATCH(al_kl_forward, AL_P(KF_KL), AL_P(KF_MEAN), AL_P(KF_LV), AL_N(L_B),
                       AL_N(L_Z));
}

static const al_spec KL_FORWARD_SPEC = {"kl_forward", KL_FORWARD, KF_COUNT, LETTERS, "z_mean",
                                        NULL, NULL, NULL, NULL, kl_forward_run};

static const char KL_BACKWARD_DOC[] =
    "kl_backward(d_kl, z_mean, z_log_var) -> (d_z_mean, d_z_log_var)\n\n"
    "Gradients of kl_forward given d_kl (B,): d_z_mean = d_kl[:, None] * z_mean,\n"
    "d_z_log_var = d_kl[:, None] * 0.5 * (exp(z_log_var) - 1). z_mean and z_log_var (B, Z)\n"
    "set the dtype. Raises TypeError/ValueError on bad input.";

enum { KB_DMEAN, KB_DLV, KB_DKL, KB_MEAN, KB_LV, KB_COUNT };
static const al_arg KL_BACKWARD[] = {
    {"d_z_mean", AL_OUT, 'f', 0, "B,Z"},
    {"d_z_log_var", AL_OUT, 'f', 0, "B,Z"},
    {"d_kl", AL_IN, 'f', 0, "B"},
    {"z_mean", AL_IN, 'f', 0, "B,Z"},
    {"z_log_var", AL_IN, 'f', 0, "B,Z"},
};
_Static_assert(AL_COUNT(KL_BACKWARD) == KB_COUNT, "KL_BACKWARD");

static int kl_backward_run(const al_call *c) {
    return AL_DISPATCH(al_kl_backward, AL_P(KB_DMEAN), AL_P(KB_DLV), AL_P(KB_DKL),
                       AL_P(KB_MEAN), AL_P(KB_LV), AL_N(L_B), AL_N(L_Z));
}

static const al_spec KL_BACKWARD_SPEC = {"kl_backward", KL_BACKWARD, KB_COUNT, LETTERS,
                                         "z_mean", "z_mean,z_log_var", NULL, NULL, NULL,
                                         kl_backward_run};

/* ---- masked reconstruction loss --------------------------------------------------------- */

static const char RECON_FORWARD_DOC[] =
    "recon_forward(x_hat, x, mask=None, kind=0) -> loss\n\n"
    "Masked reconstruction loss per sequence, loss (B,): the sum over unmasked timesteps and\n"
    "all features of (x_hat - x)^2 (kind 0) or |x_hat - x| (kind 1). x_hat and x (B, T, F),\n"
    "one dtype (x_hat's); mask (B, T), nonzero = keep (masked steps are not read; a fully\n"
    "masked sequence gives 0). Raises TypeError/ValueError on bad input.";

enum { RF_LOSS, RF_XH, RF_X, RF_MASK, RF_KIND, RF_COUNT };
static const al_arg RECON_FORWARD[] = {
    {"loss", AL_OUT, 'f', 0, "B"},
    {"x_hat", AL_IN, 'f', 0, "B,T,F"},
    {"x", AL_IN, 'f', 0, "B,T,F"},
    {"mask", AL_IN, 'b', AL_DEF, "B,T"},
    KIND,
};
_Static_assert(AL_COUNT(RECON_FORWARD) == RF_COUNT, "RECON_FORWARD");

static int recon_forward_run(const al_call *c) {
    return AL_DISPATCH(al_recon_forward, AL_P(RF_LOSS), AL_P(RF_XH), AL_P(RF_X), AL_P(RF_MASK),
                       AL_N(L_B), AL_N(L_T), AL_N(L_F), AL_I(RF_KIND));
}

static const al_spec RECON_FORWARD_SPEC = {"recon_forward", RECON_FORWARD, RF_COUNT, LETTERS,
                                           "x_hat", NULL, NULL, NULL, NULL, recon_forward_run,
                                           CHUNK};

static const char RECON_BACKWARD_DOC[] =
    "recon_backward(d_loss, x_hat, x, mask=None, kind=0) -> d_x_hat\n\n"
    "Gradient of recon_forward with respect to x_hat (B, T, F) given d_loss (B,):\n"
    "d_loss[b] * 2 (x_hat - x) (kind 0) or d_loss[b] * sign(x_hat - x) (kind 1, 0 where equal);\n"
    "0 at masked steps. The gradient with respect to x is its negative.\n"
    "Raises TypeError/ValueError on bad input.";

enum { RB_DXH, RB_DLOSS, RB_XH, RB_X, RB_MASK, RB_KIND, RB_COUNT };
static const al_arg RECON_BACKWARD[] = {
    {"d_x_hat", AL_OUT, 'f', 0, "B,T,F"},
    {"d_loss", AL_IN, 'f', 0, "B"},
    {"x_hat", AL_IN, 'f', 0, "B,T,F"},
    {"x", AL_IN, 'f', 0, "B,T,F"},
    {"mask", AL_IN, 'b', AL_DEF, "B,T"},
    KIND,
};
_Static_assert(AL_COUNT(RECON_BACKWARD) == RB_COUNT, "RECON_BACKWARD");

static int recon_backward_run(const al_call *c) {
    return AL_DISPATCH(al_recon_backward, AL_P(RB_DXH), AL_P(RB_DLOSS), AL_P(RB_XH), AL_P(RB_X),
                       AL_P(RB_MASK), AL_N(L_B), AL_N(L_T), AL_N(L_F), AL_I(RB_KIND));
}

static const al_spec RECON_BACKWARD_SPEC = {"recon_backward", RECON_BACKWARD, RB_COUNT, LETTERS,
                                            "x_hat", "x_hat,x,mask", NULL, NULL, NULL,
                                            recon_backward_run, CHUNK};

/* ---- Gaussian negative log-likelihood ---------------------------------------------------- */

static const char GAUSSIAN_NLL_FORWARD_DOC[] =
    "gaussian_nll_forward(x_hat, x_log_var, x, mask=None) -> loss\n\n"
    "Masked Gaussian negative log-likelihood per sequence, loss (B,): the sum over unmasked\n"
    "timesteps and all features of 0.5 * (log(2 pi) + x_log_var + (x_hat - x)^2 *\n"
    "exp(-x_log_var)). x_hat, x_log_var, x (B, T, F), one dtype (x_hat's); mask (B, T),\n"
    "nonzero = keep. Raises TypeError/ValueError on bad input.";

enum { NF_LOSS, NF_XH, NF_LV, NF_X, NF_MASK, NF_COUNT };
static const al_arg NLL_FORWARD[] = {
    {"loss", AL_OUT, 'f', 0, "B"},
    {"x_hat", AL_IN, 'f', 0, "B,T,F"},
    {"x_log_var", AL_IN, 'f', 0, "B,T,F"},
    {"x", AL_IN, 'f', 0, "B,T,F"},
    {"mask", AL_IN, 'b', AL_DEF, "B,T"},
};
_Static_assert(AL_COUNT(NLL_FORWARD) == NF_COUNT, "NLL_FORWARD");

static int nll_forward_run(const al_call *c) {
    return AL_DISPATCH(al_gaussian_nll_forward, AL_P(NF_LOSS), AL_P(NF_XH), AL_P(NF_LV),
                       AL_P(NF_X), AL_P(NF_MASK), AL_N(L_B), AL_N(L_T), AL_N(L_F));
}

static const al_spec NLL_FORWARD_SPEC = {"gaussian_nll_forward", NLL_FORWARD, NF_COUNT, LETTERS,
                                         "x_hat", "x_hat,x,mask", NULL, NULL, NULL,
                                         nll_forward_run, CHUNK};

static const char GAUSSIAN_NLL_BACKWARD_DOC[] =
    "gaussian_nll_backward(d_loss, x_hat, x_log_var, x, mask=None) -> (d_x_hat, d_x_log_var)\n\n"
    "Gradients of gaussian_nll_forward given d_loss (B,): with d = x_hat - x and\n"
    "p = exp(-x_log_var), d_x_hat = d_loss[b] * d * p and d_x_log_var = d_loss[b] * 0.5 *\n"
    "(1 - d^2 * p); 0 at masked steps. Raises TypeError/ValueError on bad input.";

enum { NB_DXH, NB_DLV, NB_DLOSS, NB_XH, NB_LV, NB_X, NB_MASK, NB_COUNT };
static const al_arg NLL_BACKWARD[] = {
    {"d_x_hat", AL_OUT, 'f', 0, "B,T,F"},
    {"d_x_log_var", AL_OUT, 'f', 0, "B,T,F"},
    {"d_loss", AL_IN, 'f', 0, "B"},
    {"x_hat", AL_IN, 'f', 0, "B,T,F"},
    {"x_log_var", AL_IN, 'f', 0, "B,T,F"},
    {"x", AL_IN, 'f', 0, "B,T,F"},
    {"mask", AL_IN, 'b', AL_DEF, "B,T"},
};
_Static_assert(AL_COUNT(NLL_BACKWARD) == NB_COUNT, "NLL_BACKWARD");

static int nll_backward_run(const al_call *c) {
    return AL_DISPATCH(al_gaussian_nll_backward, AL_P(NB_DXH), AL_P(NB_DLV), AL_P(NB_DLOSS),
                       AL_P(NB_XH), AL_P(NB_LV), AL_P(NB_X), AL_P(NB_MASK), AL_N(L_B),
                       AL_N(L_T), AL_N(L_F));
}

static const al_spec NLL_BACKWARD_SPEC = {"gaussian_nll_backward", NLL_BACKWARD, NB_COUNT,
                                          LETTERS, "x_hat", "x_hat,x,mask,x_log_var", NULL,
                                          NULL, NULL, nll_backward_run, CHUNK};

AL_ENTRY(py_sampling_forward, SAMPLING_FORWARD_SPEC)
AL_ENTRY(py_sampling_backward, SAMPLING_BACKWARD_SPEC)
AL_ENTRY(py_kl_forward, KL_FORWARD_SPEC)
AL_ENTRY(py_kl_backward, KL_BACKWARD_SPEC)
AL_ENTRY(py_recon_forward, RECON_FORWARD_SPEC)
AL_ENTRY(py_recon_backward, RECON_BACKWARD_SPEC)
AL_ENTRY(py_nll_forward, NLL_FORWARD_SPEC)
AL_ENTRY(py_nll_backward, NLL_BACKWARD_SPEC)

PyMethodDef al_vae_methods[] = {
    AL_METHOD("sampling_forward", py_sampling_forward, SAMPLING_FORWARD_DOC),
    AL_METHOD("sampling_backward", py_sampling_backward, SAMPLING_BACKWARD_DOC),
    AL_METHOD("kl_forward", py_kl_forward, KL_FORWARD_DOC),
    AL_METHOD("kl_backward", py_kl_backward, KL_BACKWARD_DOC),
    AL_METHOD("recon_forward", py_recon_forward, RECON_FORWARD_DOC),
    AL_METHOD("recon_backward", py_recon_backward, RECON_BACKWARD_DOC),
    AL_METHOD("gaussian_nll_forward", py_nll_forward, GAUSSIAN_NLL_FORWARD_DOC),
    AL_METHOD("gaussian_nll_backward", py_nll_backward, GAUSSIAN_NLL_BACKWARD_DOC),
    {NULL, NULL, 0, NULL}
};
