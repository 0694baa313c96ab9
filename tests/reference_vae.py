"""NumPy twins of attnlstm's LSTM-VAE kernels (csrc/vae_impl.h): literal formulas used as test
oracles. KL uses the textbook (Keras VAE example) form
-0.5 * sum(1 + log_var - mean**2 - exp(log_var)); the kernels evaluate the same function in a
cancellation-free form, so compare in float64 (or with float64 twins of float32 inputs)."""
import numpy as np


def sampling_forward(z_mean, z_log_var, eps):
    std = np.exp(0.5 * z_log_var)
    return z_mean + std * eps, std


def sampling_backward(d_z, std, eps):
    return d_z.copy(), d_z * eps * std * 0.5


def kl_forward(z_mean, z_log_var):
    return -0.5 * np.sum(1.0 + z_log_var - z_mean ** 2 - np.exp(z_log_var), axis=-1)


def kl_backward(d_kl, z_mean, z_log_var):
    g = d_kl[:, None]
    return g * z_mean, g * 0.5 * (np.exp(z_log_var) - 1.0)


def _keep(mask, shape):
    B, T, _ = shape
    if mask is None:
        return np.ones((B, T, 1), bool)
    return np.asarray(mask).astype(bool)[:, :, None]


def recon_forward(x_hat, x, mask=None, kind="mse"):
    d = x_hat - x
    e = d * d if kind == "mse" else np.abs(d)
    return np.where(_keep(mask, x.shape), e, 0).sum(axis=(1, 2)).astype(x.dtype)


def recon_backward(d_loss, x_hat, x, mask=None, kind="mse"):
    d = x_hat - x
    g = 2.0 * d if kind == "mse" else np.sign(d)
    return np.where(_keep(mask, x.shape), d_loss[:, None, None] * g, 0).astype(x.dtype)


def gaussian_nll_forward(x_hat, x_log_var, x, mask=None):
    e = 0.5 * (np.log(2 * np.pi) + x_log_var + (x_hat - x) ** 2 * np.exp(-x_log_var))
    return np.where(_keep(mask, x.shape), e, 0).sum(axis=(1, 2)).astype(x.dtype)


def gaussian_nll_backward(d_loss, x_hat, x_log_var, x, mask=None):
    d = x_hat - x
    p = np.exp(-x_log_var)
    keep, g = _keep(mask, x.shape), d_loss[:, None, None]
    return (np.where(keep, g * d * p, 0).astype(x.dtype),
            np.where(keep, g * 0.5 * (1 - d * d * p), 0).astype(x.dtype))
