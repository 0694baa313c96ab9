"""NumPy-level LSTM-VAE pieces (issue #5): the reparameterisation trick, the KL term and the
masked reconstruction loss, forward and backward, each one C call for the whole batch.

The LSTM-VAE loss is the negative ELBO (Kingma & Welling 2014, "Auto-Encoding Variational
Bayes"; the Keras VAE example)::

    z    = z_mean + exp(0.5 * z_log_var) * eps,              eps ~ N(0, I)
    kl   = -0.5 * sum_z (1 + z_log_var - z_mean**2 - exp(z_log_var))     # (batch,)
    rec  = sum over unmasked t and all f of (x_hat - x)**2 (or |x_hat - x|)   # (batch,)
    loss = mean_b(rec + beta * kl)

Shapes use the legend B (batch), Z (latent_dim), T (timesteps), F (features). Every function
checks shapes, raising :class:`attnlstm.ShapeError` (a ``ValueError``) that names the function
and the argument. Masks are booleans, True = keep; masked steps are not read (padding may hold
anything, even NaN) and get a zero gradient; a fully masked sequence has loss 0. NaN/inf in the
other inputs propagate. An empty batch gives empty results; ``latent_dim == 0`` gives ``kl == 0``.

:func:`gaussian_nll` is the reconstruction term of a decoder that also predicts a log-variance
per element (a Gaussian likelihood instead of a squared error; its value per sequence is a
natural anomaly score).

``eps`` comes from NumPy's generator (``numpy.random.default_rng(seed)`` or a given
``Generator``), so a seeded run is reproducible; the C kernels draw nothing themselves.
"""
import numpy as np

from .. import _core
from ..errors import format_shape, shape_error
from ._checks import Saved, as_c as _as, check_saved, float_dtype, grad_array as _grad_array

__all__ = [
    "RECON_KINDS",
    "sampling", "sampling_forward", "sampling_backward",
    "kl_divergence", "kl_divergence_backward",
    "reconstruction_loss", "reconstruction_loss_backward",
    "gaussian_nll", "gaussian_nll_backward",
]

#: Reconstruction-loss kinds and their C codes (csrc/al_vae.h: AL_RECON_SQUARED/ABSOLUTE).
RECON_KINDS = {"mse": 0, "mae": 1}

_HINT_LATENT = ("z_mean and z_log_var come from two Dense layers on the encoder's output; both "
                "need the same number of units (latent_dim).")
_HINT_D_LOSS = ("the loss is one number per sequence (summed over timesteps and features), so "
                "its gradient has one entry per sequence; a per-step gradient means the loss "
                "was not summed over time.")



def _latent_pair(name, z_mean, z_log_var, dt):
    """Checks and converts z_mean (B, Z) and z_log_var of the same shape."""
    m = np.asarray(z_mean)
    lv = np.asarray(z_log_var)
    if m.ndim != 2:
        raise shape_error(name, "z_mean", ("batch", "latent_dim"), m.shape,
                          "the latent code is one vector per sequence; take the encoder's last "
                          "output (return_sequences=False)." if m.ndim == 3 else None)
    if lv.shape != m.shape:
        B, Z = m.shape
        raise shape_error(name, "z_log_var", f"(batch, latent_dim) = {format_shape((B, Z))}",
                          lv.shape, _HINT_LATENT,
                          message=f"`z_mean` and `z_log_var` must have the same shape (batch, "
                                  f"latent_dim), got z_mean {format_shape(m.shape)} and "
                                  f"z_log_var {format_shape(lv.shape)}.")
    return _as(m, dt), _as(lv, dt)


# ---- sampling (the reparameterisation trick) -----------------------------------------------

def _generator(name, seed, rng):
    if rng is not None and seed is not None:
        raise ValueError(f"{name}: pass either `seed` or `rng`, not both. "
                         f"Received: seed={seed!r}, rng={rng!r}")
    if rng is not None:
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"{name}: `rng` must be a numpy.random.Generator. "
                            f"Received: rng={rng!r}")
        return rng
    return np.random.default_rng(seed)


def sampling_forward(z_mean, z_log_var, eps=None, seed=None, rng=None, dtype=None,
                     name="ops.sampling"):
    """The reparameterisation trick, returning what :func:`sampling_backward` needs.

    Same arguments as :func:`sampling`. Returns a :class:`~attnlstm.ops.Saved` with ``z``
    (B, Z), ``std`` (B, Z) =
    ``exp(0.5 * z_log_var)`` and ``eps`` (B, Z), the noise used (drawn when not given), all
    in the compute dtype.
    """
    dt = float_dtype(dtype, z_mean, z_log_var)
    m, lv = _latent_pair(name, z_mean, z_log_var, dt)
    if eps is None:
        eps = _generator(name, seed, rng).standard_normal(m.shape, dtype=dt)
    else:
        if seed is not None or rng is not None:
            raise ValueError(f"{name}: `seed`/`rng` draw eps; pass them or `eps`, not both. "
                             f"Received: seed={seed!r}, rng={rng!r}")
        e = np.asarray(eps)
        if e.shape != m.shape:
            raise shape_error(name, "eps", f"(batch, latent_dim) = {format_shape(m.shape)}",
                              e.shape, "eps is the standard normal noise of each latent entry, "
                                       "the shape of z_mean.")
        eps = _as(e, dt)
    z, std = _core.sampling_forward(m, lv, eps)
    return Saved("ops.sampling_forward", {"z": z, "std": std, "eps": eps, "name": name})


def sampling(z_mean, z_log_var, eps=None, seed=None, rng=None, dtype=None):
    """A latent sample ``z = z_mean + exp(0.5 * z_log_var) * eps`` (the reparameterisation
    trick of Kingma & Welling 2014; the ``Sampling`` layer of the Keras VAE example).

    Args:
        z_mean: `(B, Z)`, the posterior means.
        z_log_var: `(B, Z)`, the posterior log-variances.
        eps: `(B, Z)` standard normal noise, or None to draw it with
            ``rng.standard_normal((B, Z), dtype=dtype)``.
        seed: seed of ``numpy.random.default_rng`` when ``eps`` and ``rng`` are None
            (reproducible); None draws fresh noise.
        rng: a ``numpy.random.Generator`` to draw from instead of ``seed``.
        dtype: float32 or float64; default: the inputs' float dtype, else float32.

    Returns:
        `(B, Z)` array ``z``.

    Raises:
        ShapeError: ``z_mean`` is not 2-D, ``z_log_var`` or ``eps`` has another shape.
        ValueError: both ``seed`` and ``rng`` (or one of them and ``eps``) are given.

    Example:
        >>> sampling(np.zeros((4, 2)), np.zeros((4, 2)), seed=0).shape
        (4, 2)
    """
    return sampling_forward(z_mean, z_log_var, eps, seed, rng, dtype)["z"]


def sampling_backward(saved, d_z):
    """Gradients of :func:`sampling` given ``d_z`` (B, Z): a dict with ``z_mean`` (= d_z) and
    ``z_log_var`` (= ``d_z * eps * std / 2``). ``saved`` is what :func:`sampling_forward`
    returned (else TypeError)."""
    check_saved("ops.sampling_backward", saved, "ops.sampling_forward")
    name = saved["name"] + "_backward"
    std = saved["std"]
    g = _grad_array(name, "d_z", d_z, std.shape, std.dtype)
    d_mean, d_log_var = _core.sampling_backward(g, std, saved["eps"])
    return {"z_mean": d_mean, "z_log_var": d_log_var}


# ---- KL divergence ---------------------------------------------------------------------------

def kl_divergence(z_mean, z_log_var, dtype=None, name="ops.kl_divergence"):
    """``KL(N(z_mean, exp(z_log_var)) || N(0, I))`` per sample, summed over the latent dims:
    ``-0.5 * sum(1 + z_log_var - z_mean**2 - exp(z_log_var), axis=-1)`` (Kingma & Welling
    2014, appendix B), computed as a sum of non-negative terms without cancellation.

    Args:
        z_mean: `(B, Z)`.
        z_log_var: `(B, Z)`.
        dtype: float32 or float64; default: the inputs' float dtype, else float32.

    Returns:
        `(B,)` array, >= 0 (0 when Z == 0).

    Raises:
        ShapeError: ``z_mean`` is not 2-D or ``z_log_var`` has another shape.

    Example:
        >>> kl_divergence(np.zeros((3, 2)), np.zeros((3, 2))).shape
        (3,)
    """
    dt = float_dtype(dtype, z_mean, z_log_var)
    m, lv = _latent_pair(name, z_mean, z_log_var, dt)
    return _core.kl_forward(m, lv)


def kl_divergence_backward(z_mean, z_log_var, d_kl, dtype=None,
                           name="ops.kl_divergence_backward"):
    """Gradients of :func:`kl_divergence` given ``d_kl`` (B,): a dict with ``z_mean``
    (``d_kl[:, None] * z_mean``) and ``z_log_var`` (``d_kl[:, None] * (exp(z_log_var) - 1)
    / 2``), both (B, Z).

    Raises:
        ShapeError: as :func:`kl_divergence`, or ``d_kl`` is not `(B,)`.
    """
    dt = float_dtype(dtype, z_mean, z_log_var)
    m, lv = _latent_pair(name, z_mean, z_log_var, dt)
    g = _grad_array(name, "d_kl", d_kl, m.shape[:1], dt,
                    "kl_divergence returns one number per sample, so d_kl has shape (batch,).")
    d_mean, d_log_var = _core.kl_backward(g, m, lv)
    return {"z_mean": d_mean, "z_log_var": d_log_var}


# ---- masked reconstruction loss --------------------------------------------------------------

def _kind(kind):
    if kind not in RECON_KINDS:
        raise ValueError("Invalid value for argument kind. Expected one of {'mse', 'mae'}. "
                         f"Received: kind={kind!r}")
    return RECON_KINDS[kind]


def _recon_args(name, x, x_hat, mask, dt):
    """Checks and converts x (B, T, F), x_hat of the same shape and mask (B, T) or None."""
    x = np.asarray(x)
    xh = np.asarray(x_hat)
    if x.ndim != 3:
        raise shape_error(name, "x", ("batch", "timesteps", "features"), x.shape,
                          "the LSTM-VAE reconstructs sequences; a single feature per step "
                          "needs a feature axis, e.g. x[..., None]." if x.ndim == 2 else None)
    B, T, F = x.shape
    if xh.shape != x.shape:
        hint = None
        if xh.ndim != 3:
            hint = ("the decoder must return the whole sequence: its last LSTM needs "
                    "return_sequences=True, followed by TimeDistributed(Dense(features)).")
        elif xh.shape[0] != B:
            hint = f"x has batch size {B}; x_hat must be the reconstruction of the same batch."
        elif xh.shape[1] != T:
            hint = (f"the decoder reconstructs {xh.shape[1]} steps but the input has {T} "
                    f"(RepeatVector(n) must repeat the input length: n = {T}).")
        elif xh.shape[2] != F:
            hint = (f"the decoder outputs {xh.shape[2]} features per step but the input has "
                    f"{F}; its output layer (e.g. TimeDistributed(Dense(units))) needs "
                    f"units = {F}.")
        raise shape_error(name, "x_hat", f"(batch, timesteps, features) = "
                                         f"{format_shape((B, T, F))}", xh.shape, hint)
    m = None
    if mask is not None:
        m = np.asarray(mask)
        if m.shape != (B, T):
            hint = ("the mask has one entry per time step; reduce a per-feature mask with "
                    ".any(axis=-1)." if m.shape == (B, T, F) else
                    "the mask has one entry per (sequence, time step), True = keep.")
            raise shape_error(name, "mask", f"(batch, timesteps) = {format_shape((B, T))}",
                              m.shape, hint)
        m = np.ascontiguousarray(m.astype(bool))
    return _as(x, dt), _as(xh, dt), m


def reconstruction_loss(x, x_hat, mask=None, kind="mse", dtype=None,
                        name="ops.reconstruction_loss"):
    """Masked reconstruction loss per sequence: the sum over unmasked timesteps and all
    features of ``(x_hat - x)**2`` (``kind="mse"``) or ``|x_hat - x|`` (``kind="mae"``) —
    the reconstruction term of the LSTM-VAE's negative ELBO (summed, not averaged, so that
    its scale matches the KL term's).

    Args:
        x: `(B, T, F)`, the input sequences (the target).
        x_hat: `(B, T, F)`, the decoder's reconstruction.
        mask: `(B, T)` booleans, True = the step counts; None = every step counts.
        kind: ``"mse"`` (squared error) or ``"mae"`` (absolute error).
        dtype: float32 or float64; default: the inputs' float dtype (x first), else float32.

    Returns:
        `(B,)` array; 0 for a fully masked sequence.

    Raises:
        ShapeError: ``x`` is not 3-D, ``x_hat`` differs from ``x`` (decoder length or feature
            size), or the mask is not `(B, T)`.
        ValueError: an unknown ``kind``.

    Example:
        >>> reconstruction_loss(np.zeros((2, 5, 3)), np.ones((2, 5, 3))).shape
        (2,)
    """
    k = _kind(kind)
    dt = float_dtype(dtype, x, x_hat)
    x, xh, m = _recon_args(name, x, x_hat, mask, dt)
    return _core.recon_forward(xh, x, m, k)


def reconstruction_loss_backward(x, x_hat, d_loss, mask=None, kind="mse", dtype=None,
                                 name="ops.reconstruction_loss_backward"):
    """Gradient of :func:`reconstruction_loss` with respect to ``x_hat`` given ``d_loss``
    (B,): `(B, T, F)`, ``d_loss[b] * 2 * (x_hat - x)`` (mse) or ``d_loss[b] * sign(x_hat -
    x)`` (mae, 0 where equal), 0 at masked steps. The gradient with respect to ``x`` is its
    negative.

    Raises:
        ShapeError: as :func:`reconstruction_loss`, or ``d_loss`` is not `(B,)`.
    """
    k = _kind(kind)
    dt = float_dtype(dtype, x, x_hat)
    x, xh, m = _recon_args(name, x, x_hat, mask, dt)
    g = _grad_array(name, "d_loss", d_loss, x.shape[:1], dt,
                    _HINT_D_LOSS if np.ndim(d_loss) == 2 else None)
    return _core.recon_backward(g, xh, x, m, k)


# ---- Gaussian negative log-likelihood ------------------------------------------------------------

def _nll_args(name, x, x_hat, x_log_var, mask, dt):
    x, xh, m = _recon_args(name, x, x_hat, mask, dt)
    lv = np.asarray(x_log_var)
    if lv.shape != x.shape:
        raise shape_error(name, "x_log_var", f"(batch, timesteps, features) = "
                                             f"{format_shape(x.shape)}", lv.shape,
                          "the decoder's log-variance head predicts one value per element, "
                          "like x_hat (e.g. a second TimeDistributed(Dense(features))).")
    return x, xh, _as(lv, dt), m


def gaussian_nll(x, x_hat, x_log_var, mask=None, dtype=None, name="ops.gaussian_nll"):
    """Masked Gaussian negative log-likelihood per sequence: the sum over unmasked timesteps
    and all features of ``0.5 * (log(2 pi) + x_log_var + (x - x_hat)**2 * exp(-x_log_var))``,
    the reconstruction term of a decoder that predicts a mean ``x_hat`` and a log-variance per
    element (the "reconstruction probability" of An & Cho 2015, used as an anomaly score).

    Args:
        x: `(B, T, F)`, the target sequences.
        x_hat: `(B, T, F)`, the predicted means.
        x_log_var: `(B, T, F)`, the predicted log-variances.
        mask: `(B, T)` booleans, True = the step counts; None = every step counts.
        dtype: float32 or float64; default: the inputs' float dtype (x first), else float32.

    Returns:
        `(B,)` array; 0 for a fully masked sequence.

    Raises:
        ShapeError: as :func:`reconstruction_loss`, or ``x_log_var`` differs from ``x``.

    Example:
        >>> gaussian_nll(np.zeros((2, 5, 3)), np.ones((2, 5, 3)), np.zeros((2, 5, 3))).shape
        (2,)
    """
    dt = float_dtype(dtype, x, x_hat, x_log_var)
    x, xh, lv, m = _nll_args(name, x, x_hat, x_log_var, mask, dt)
    return _core.gaussian_nll_forward(xh, lv, x, m)


def gaussian_nll_backward(x, x_hat, x_log_var, d_loss, mask=None, dtype=None,
                          name="ops.gaussian_nll_backward"):
    """Gradients of :func:`gaussian_nll` given ``d_loss`` (B,): a dict with ``x_hat``
    (``d_loss[b] * (x_hat - x) * exp(-x_log_var)``) and ``x_log_var`` (``d_loss[b] * 0.5 *
    (1 - (x_hat - x)**2 * exp(-x_log_var))``), both (B, T, F) and 0 at masked steps.

    Raises:
        ShapeError: as :func:`gaussian_nll`, or ``d_loss`` is not `(B,)`.
    """
    dt = float_dtype(dtype, x, x_hat, x_log_var)
    x, xh, lv, m = _nll_args(name, x, x_hat, x_log_var, mask, dt)
    g = _grad_array(name, "d_loss", d_loss, x.shape[:1], dt,
                    _HINT_D_LOSS if np.ndim(d_loss) == 2 else None)
    d_xh, d_lv = _core.gaussian_nll_backward(g, xh, lv, x, m)
    return {"x_hat": d_xh, "x_log_var": d_lv}
