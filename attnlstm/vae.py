"""The LSTM variational autoencoder (issue #5): :class:`LSTMVAE`, its reconstruction loss and
the pieces it is made of.

The loss is the standard negative ELBO (Kingma & Welling 2014; the Keras VAE example)::

    rec  = sum over unmasked t and all f of (x_hat - x)**2   (kind="mse"; |x_hat - x| for "mae")
    kl   = -0.5 * sum_z (1 + z_log_var - z_mean**2 - exp(z_log_var))
    loss = mean_b(rec) + beta * mean_b(kl)

Both terms are *sums* per sequence (over its real time steps and features, resp. over the
latent dimensions), averaged over the batch. (A per-element mean reconstruction error against a
summed KL weighs the KL T*F times too much: the posterior collapses to the prior and the
reconstructions, hence the anomaly scores, become useless.)

Public pieces:

- :class:`SequenceReconstructionLoss`: the reconstruction term as a loss object for
  ``Model.compile(loss=...)`` (masks honoured), for the classic functional LSTM-VAE built from
  :class:`attnlstm.layers.Sampling` and :class:`attnlstm.layers.KLDivergence`.
- :class:`ReconstructionTerm`: the same term as a layer that calls ``add_loss`` (named
  ``"reconstruction_loss"``), so that ``fit`` logs both terms.
- :func:`negative_elbo`: the loss from per-sequence terms, with shape checks.
- :class:`LSTMVAE`: the model, for fixed- or variable-length sequences, with defaults that
  avoid posterior collapse (issue #19) and anomaly scores.
- :func:`active_units`: Burda et al.'s count of the latent units in use.
"""
import contextlib
import warnings

import numpy as np

from .ops import core as _ops
from .ops import vae as V
from . import backend, initializers
from .losses import Loss
from .callbacks import Callback
from .engine.base import Grads, Input, Layer
from .engine.functional import Model
from .errors import ShapeError, format_shape, shape_error
from .layers.core import Dense
from .layers.rnn import LSTM
from .layers.vae import KLDivergence, Sampling
from .sequence import lengths_to_mask, pad_sequences

__all__ = ["LSTMVAE", "SequenceReconstructionLoss", "ReconstructionTerm", "negative_elbo",
           "active_units"]

#: Defaults of LSTMVAE (see its docstring for the reasons and sources).
DEFAULT_FREE_BITS = 4.0
DEFAULT_KL_WARMUP_EPOCHS = 10
DEFAULT_LEARNING_RATE = 1e-2
#: The cosine-decayed default learning rate ends at this fraction of its start.
DEFAULT_LR_ALPHA = 0.05
DEFAULT_INITIAL_LOG_VAR = -6.0
#: Relative cutoff of the eigenvalues of the latent covariance for the Mahalanobis score.
PINV_RCOND = 1e-6
#: Kinds of LSTMVAE.anomaly_score.
ANOMALY_KINDS = ("reconstruction", "elbo", "mahalanobis")
#: Burda et al. (2016): a latent unit is active when Cov_x(E_q[z_j | x]) > 0.01.
ACTIVE_UNIT_THRESHOLD = 0.01


# ---------------------------------------------------------------------------------------------
# The loss


def _per_sequence_weights(who, sample_weight, B, dt):
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=dt)
    if w.shape != (B,):
        hint = ("the reconstruction loss is one number per sequence; weigh sequences with a "
                "(batch,) array and leave time steps out with the mask." if w.ndim == 2 else None)
        raise shape_error(who, "sample_weight", (B,), w.shape, hint)
    return w


class SequenceReconstructionLoss(Loss):
    """The reconstruction term of the LSTM-VAE's negative ELBO, as a loss for ``compile``:
    the mean over the batch of each sequence's *sum* over its unmasked time steps and all
    features of ``(y_pred - y_true)**2`` (``kind="mse"``) or ``|y_pred - y_true|`` (``"mae"``).

    Use it with the KL term of :class:`attnlstm.layers.KLDivergence` (also summed per sequence
    and averaged over the batch): together they are the standard negative ELBO.

    Args:
        kind: ``"mse"`` (squared error; a unit-variance Gaussian likelihood up to a factor 2
            and a constant) or ``"mae"`` (absolute error).
        name: the name ``fit`` logs it under.

    Methods:
        ``per_sequence(y_true, y_pred, mask=None)`` -> `(B,)`;
        ``__call__(y_true, y_pred, sample_weight=None, mask=None)`` -> float;
        ``value_and_grad(...)`` -> ``(float, d_y_pred)`` (the interface of ``Model.fit``).

    Arguments of the methods: ``y_true`` and ``y_pred`` `(B, T, F)`; ``mask`` `(B, T)`
    booleans, True = the step counts (``fit`` passes the output's Keras mask); ``sample_weight``
    `(B,)`: the loss is ``mean_b(w_b * rec_b)``.

    Raises:
        ShapeError: ``y_true`` not `(B, T, F)`; ``y_pred`` of another shape (the hint says
            whether the decoder's length — e.g. ``RepeatVector(n)`` with the wrong n — or its
            feature size is wrong); a mask that is not `(B, T)`; a `(B, T)` sample weight.
        ValueError: an unknown ``kind``.
    """

    def __init__(self, kind="mse", name="reconstruction_loss", dtype=None):
        V._kind(kind)
        super().__init__(name=name, reduction="sum_over_batch_size", dtype=dtype)
        self.kind = kind

    def _who(self):
        return f"{type(self).__name__} '{self.name}'"

    def per_sequence(self, y_true, y_pred, mask=None):
        """The reconstruction error of each sequence, `(B,)`."""
        return V.reconstruction_loss(y_true, y_pred, mask, self.kind, name=self._who())

    def __call__(self, y_true, y_pred, sample_weight=None, mask=None):
        return self.value_and_grad(y_true, y_pred, sample_weight, mask, grad=False)[0]

    def value_and_grad(self, y_true, y_pred, sample_weight=None, mask=None, grad=True):
        """``(loss, d loss / d y_pred)``, the gradient in y_pred's float dtype."""
        dt = self.dtype or (np.asarray(y_pred).dtype if np.asarray(y_pred).dtype in
                            (np.float32, np.float64) else backend.floatx())
        rec = V.reconstruction_loss(y_true, y_pred, mask, self.kind, dtype=dt, name=self._who())
        B = rec.shape[0]
        w = _per_sequence_weights(self._who(), sample_weight, B, dt)
        if B == 0:
            return 0.0, (np.zeros(np.shape(y_pred), dt) if grad else None)
        value = float(np.mean(rec if w is None else w * rec))
        if not grad:
            return value, None
        d = np.full((B,), 1.0 / B, dt) if w is None else (w / B).astype(dt)
        g = V.reconstruction_loss_backward(y_true, y_pred, d, mask, self.kind, dtype=dt,
                                           name=self._who())
        return value, g

    def get_config(self):
        return {"kind": self.kind, "name": self.name, "dtype": self.dtype}


def negative_elbo(reconstruction, kl, beta=1.0):
    """The negative ELBO ``mean_b(reconstruction + beta * kl)`` from per-sequence terms.

    Args:
        reconstruction: `(B,)`, each sequence's reconstruction error summed over its time steps
            and features (:func:`attnlstm.ops.reconstruction_loss`).
        kl: `(B,)`, each sequence's KL summed over the latent dimensions
            (:func:`attnlstm.ops.kl_divergence`).
        beta: weight of the KL term.

    Returns:
        A float.

    Raises:
        ShapeError: the terms are not both `(B,)` — e.g. a `(B, T)` per-step reconstruction
            error, which NumPy would silently broadcast against a `(B,)` KL.
    """
    r = np.asarray(reconstruction, dtype=np.float64)
    k = np.asarray(kl, dtype=np.float64)
    who = "vae.negative_elbo"
    if k.ndim != 1:
        raise shape_error(who, "kl", ("batch",), k.shape,
                          "the KL term is one number per sequence: sum it over the latent "
                          "dimensions (axis=-1)." if k.ndim == 2 else None)
    if r.shape != k.shape:
        hint = None
        if r.ndim >= 2 and r.shape[0] == k.shape[0]:
            hint = ("the reconstruction error must be summed over the time steps and features "
                    f"of each sequence (axis={tuple(range(1, r.ndim))}) before it is added to "
                    "the KL term, which is one number per sequence.")
        raise shape_error(who, "reconstruction", (k.shape[0],), r.shape, hint,
                          message=f"`reconstruction` must have the shape of `kl`, (batch,) = "
                                  f"{format_shape(k.shape)}, got {format_shape(r.shape)}.")
    if r.size == 0:
        return 0.0
    return float(np.mean(r + float(beta) * k))


# ---------------------------------------------------------------------------------------------
# Internal layers of LSTMVAE


class ReconstructionTerm(Layer):
    """Adds the reconstruction term ``mean_b(rec_b)`` of the negative ELBO with ``add_loss``
    (named ``"reconstruction_loss"``, logged by ``fit``) and returns ``x_hat`` unchanged.

    Call arguments:
        inputs: ``[x, x_hat]``, both `(B, T, F)`; the time mask is taken from their Keras masks
            (``x_hat``'s first) or ``mask=``.

    Raises:
        ShapeError: when the model is built, if ``x_hat`` cannot be compared with ``x`` (length
            or feature size of the decoder), with the hint of
            :func:`attnlstm.ops.reconstruction_loss`.
    """
    supports_masking = True

    def __init__(self, kind="mse", **kwargs):
        super().__init__(**kwargs)
        V._kind(kind)
        self.kind = kind

    def compute_output_shape(self, input_shape):
        if not isinstance(input_shape, list) or len(input_shape) != 2:
            raise shape_error(self, "inputs", "[x, x_hat]", str(input_shape),
                              message="`inputs` must be the list [x, x_hat] of two "
                                      "(batch, timesteps, features) tensors.")
        xs, hs = input_shape
        # The loss kernel's shape rules (and hints) on the known sizes: an unknown size
        # (None) takes the other tensor's size on that axis.
        if len(xs) == len(hs):
            xs_k = tuple(1 if a is None and b is None else (b if a is None else a)
                         for a, b in zip(xs, hs))
            hs_k = tuple(a if b is None else b for a, b in zip(xs_k, hs))
        else:
            xs_k = tuple(1 if a is None else a for a in xs)
            hs_k = tuple(1 if b is None else b for b in hs)
        try:
            V._recon_args(f"{type(self).__name__} '{self.name}'", np.empty(xs_k),
                          np.empty(hs_k), None, np.float64)
        except ShapeError as err:
            if err.argument == "x":
                raise shape_error(self, "x", ("batch", "timesteps", "features"), xs,
                                  err.hint) from None
            raise shape_error(self, "x_hat", err.expected, hs, err.hint,
                              message=f"`x_hat` must have the shape of `x`, "
                                      f"{format_shape(xs)}, got {format_shape(hs)}.") from None
        return hs

    def compute_mask(self, inputs, mask=None):
        if isinstance(mask, (list, tuple)):
            return mask[1] if mask[1] is not None else mask[0]
        return mask

    def validate_call(self, input_shape, **kwarg_shapes):
        return None

    def _mask(self, mask):
        if isinstance(mask, (list, tuple)):
            mask = mask[1] if mask[1] is not None else mask[0]
        return None if mask is None else np.asarray(mask, bool)

    def call(self, inputs, mask=None):
        return self.forward(inputs, mask)[0]

    def forward(self, inputs, mask=None):
        x, x_hat = inputs
        m = self._mask(mask)
        rec = V.reconstruction_loss(x, x_hat, m, self.kind, dtype=self.dtype,
                                    name=f"{type(self).__name__} '{self.name}'")
        B = rec.shape[0]
        self.add_loss(float(rec.sum()) / B if B else 0.0, name="reconstruction_loss")
        return x_hat, (x, x_hat, m)

    def backward(self, ctx, d_outputs, need_input_grad=True):
        x, x_hat, m = ctx
        B = x.shape[0]
        if not need_input_grad:
            return Grads(None)
        d = np.full((B,), 1.0 / max(B, 1), dtype=x_hat.dtype)
        g = V.reconstruction_loss_backward(x, x_hat, d, m, self.kind, dtype=self.dtype,
                                           name=f"{type(self).__name__} '{self.name}'")
        return Grads([-g, d_outputs + g])

    def get_config(self):
        cfg = super().get_config()
        cfg["kind"] = self.kind
        return cfg


class AttachMask(Layer):
    """``AttachMask()([x, mask])`` returns ``x`` carrying ``mask`` (`(B, T)`, nonzero = real
    step) as its Keras mask, so LSTMs downstream skip padding: the variable-length entry point
    of :class:`LSTMVAE` (a model input for the mask instead of a ``Masking`` value)."""

    def compute_output_shape(self, input_shape):
        if not isinstance(input_shape, list) or len(input_shape) != 2 or \
                len(input_shape[0]) != 3:
            raise shape_error(self, "inputs", "[(batch, timesteps, features), (batch, timesteps)]",
                              str(input_shape))
        xs, ms = input_shape
        if len(ms) != 2 or not all(a is None or b is None or a == b
                                   for a, b in zip(ms, xs[:2])):
            raise shape_error(self, "mask", (xs[0] or "batch", xs[1] or "timesteps"), ms,
                              "the mask has one entry per (sequence, time step) of x, True = "
                              "real step.")
        return xs

    def compute_mask(self, inputs, mask=None):
        return _ops.not_equal(inputs[1], 0)

    def validate_call(self, input_shape, **kwarg_shapes):
        return None

    def call(self, inputs):
        return inputs[0]

    def forward(self, inputs):
        return inputs[0], None

    def backward(self, ctx, d_outputs, need_input_grad=True):
        return Grads([d_outputs, None] if need_input_grad else None)


class RepeatOverMask(Layer):
    """``RepeatOverMask()([z, mask])``: ``z`` `(B, Z)` repeated over the `T` steps of ``mask``
    `(B, T)`, giving `(B, T, Z)` that carries the mask, so a decoder reconstructs every sequence
    at its own length (unlike ``RepeatVector(n)``, whose n is fixed). Backward: the sum of the
    gradient over the real steps."""

    def compute_output_shape(self, input_shape):
        if not isinstance(input_shape, list) or len(input_shape) != 2 or \
                len(input_shape[0]) != 2 or len(input_shape[1]) != 2:
            raise shape_error(self, "inputs", "[(batch, latent_dim), (batch, timesteps)]",
                              str(input_shape))
        zs, ms = input_shape
        return (zs[0] if zs[0] is not None else ms[0], ms[1], zs[1])

    def compute_mask(self, inputs, mask=None):
        return _ops.not_equal(inputs[1], 0)

    def validate_call(self, input_shape, **kwarg_shapes):
        return None

    def call(self, inputs):
        return self.forward(inputs)[0]

    def forward(self, inputs):
        z, m = inputs
        z = np.asarray(z)
        T = np.shape(m)[1]
        out = np.ascontiguousarray(np.broadcast_to(z[:, None, :], (z.shape[0], T, z.shape[1])))
        return out, np.asarray(m) != 0

    def backward(self, ctx, d_outputs, need_input_grad=True):
        if not need_input_grad:
            return Grads(None)
        m = ctx
        d = np.einsum("btz,bt->bz", d_outputs, m.astype(d_outputs.dtype))
        return Grads([d, None])


# ---------------------------------------------------------------------------------------------
# The model


class LSTMVAE:
    """An LSTM variational autoencoder for (variable-length) multivariate sequences.

    Encoder: ``LSTM(encoder_units)`` over the real steps -> ``Dense(latent_dim)`` for the mean and
    for the log-variance -> ``KLDivergence(beta, free_bits)`` -> ``Sampling``. Decoder: ``z``
    repeated over each sequence's own length -> ``LSTM(decoder_units, return_sequences=True)``
    whose initial state is ``[tanh(Dense(z)), Dense(z)]`` -> ``Dense(features)`` on every step.
    Loss: the negative ELBO (module docstring), the reconstruction summed over each sequence's
    real steps and features, the KL summed over the latent dimensions, both averaged over the
    batch; padding never counts.

    Why these defaults (issue #19). With a decoder that only reads ``z`` as its input, no free
    bits, no warm-up and Adam at 1e-3, a model fitted for 80 epochs to 300 windows of a noisy
    two-channel sine (40 steps) stays for ~50 epochs at the reconstruction of the mean window
    (error = the data's variance) and ends at 28-50% of the variance; the KL term pulls the
    codes to the prior before the decoder has learnt to use them (posterior collapse, Bowman et
    al. 2016). The remedies, each measured on that task (2 seeds, 80 epochs, error / variance):

    - ``decoder_initial_state=True``: the decoder sees ``z`` at every step *and* starts from a
      state computed from it, so the code sets the phase of what it generates from step 0:
      0.03 (vs 0.28-0.50 without, same other settings).
    - ``free_bits=4.0`` nats per latent unit (Kingma et al. 2016, "Improved Variational
      Inference with Inverse Autoregressive Flow"): units under the floor feel no
      KL pull, so no unit collapses (on the sines, 8/8 active units with 0.5 nats vs 4/8
      with the plain KL at 3e-3). 4 rather than 2: on the demo's ECG windows the KL sits at
      the floor (2 nats x 8 = 16 nats) for all 80 epochs, i.e. the floor, not the data,
      limits what the codes carry; with 4 (32 nats) it reaches 30 nats, as with no KL at
      all (``beta=0``), and the window ROC AUC of seeds 0 and 4 goes from 0.942 / 0.925 to
      0.963 / 0.948 (cosine-decayed Adam as below). On both tasks the KL then stays under
      the floor, so it exerts no gradient: the model is an autoencoder with a noisy code
      of bounded information (8 x 4 nats) rather than a prior-matched one; set
      ``free_bits`` lower (e.g. 0.5) when samples from the prior matter more than the
      reconstructions.
    - ``initial_log_var=-6``: the bias of the ``z_log_var`` layer starts at -6 (posterior sd
      0.05), so the codes reach the decoder nearly noise-free from the first step and the KL
      widens them only above the free bits; starting at sd 1 (bias 0), the sampling noise
      drowns the still weak codes. On the demo's ECG windows, 80 epochs, seeds 0 and 1:
      window ROC AUC 0.87 (recon. error 0.56-0.58 of the variance) vs 0.59-0.60 (0.89) with
      free bits 0.5 and bias 0.
    - ``kl_warmup_epochs=10`` in :meth:`fit` (Bowman et al. 2016): the KL weight ramps from 0
      to ``beta``; a safeguard when ``free_bits`` is small.
    - learning rate: Adam from 1e-2 (:data:`DEFAULT_LEARNING_RATE`) decayed along a half
      cosine to 5e-4 over the steps of each :meth:`fit` call (``lr_schedule="cosine"``;
      Loshchilov & Hutter 2017, "SGDR"; ``optimizers.schedules.CosineDecay``). The ECG
      windows (QRS spikes two steps wide that the decoder must place at the right phase)
      are the slow case: with a constant 3e-3 the reconstruction error is still falling
      after 80 epochs, at 0.51-0.77 of the variance for seeds 0-4 (window ROC AUC
      0.74-0.91), and ``beta=0`` barely helps (seeds 2, 3: 0.42, 0.60), so the optimiser,
      not the KL, was the limit; a constant 1e-2 is too noisy late on (seeds 0, 4: 0.60,
      0.56; AUC 0.90, 0.91); the cosine from 1e-2 ends at 0.30-0.38 (AUC 0.948-0.963 for
      all five seeds with ``free_bits=4``). The sines reach the noise floor with it (0.0235
      of the variance for seeds 0 and 1; the noise alone is 0.024).
    - the reconstruction is *summed* over steps and features (a Gaussian log-likelihood),
      not averaged: a per-element mean against a summed KL weighs the KL ``T * F`` times more
      and collapses the posterior (on the task above, the mean over a window's 80 elements,
      i.e. ``beta = 80`` with the sum, leaves 0.21 of the variance, every unit held at the
      free-bits floor); the sum keeps ``beta = 1`` the true ELBO for any length.

    Args:
        latent_dim: Z, size of the latent code.
        encoder_units: units of the encoder LSTM.
        decoder_units: units of the decoder LSTM (default: ``encoder_units``).
        beta: weight of the KL term (beta-VAE, Higgins et al. 2017).
        free_bits: nats per latent unit under which the KL term is constant (no gradient);
            0 = the plain KL (see :class:`attnlstm.layers.KLDivergence`).
        initial_log_var: initial bias of the ``z_log_var`` Dense layer (its kernel starts
            Glorot-uniform, as every Dense).
        decoder_initial_state: initialise the decoder LSTM's ``[h, c]`` from ``z`` (two
            ``Dense(decoder_units)`` layers, ``tanh`` for ``h``); False = zeros (the classic
            Keras LSTM-VAE, where ``z`` enters only as the repeated input).
        kind: reconstruction error, ``"mse"`` or ``"mae"``.
        features: F, if known (else taken from the first data seen).
        seed: makes the initial weights, the sampling noise and fit's shuffling reproducible
            (they are drawn from a generator of this seed instead of attnlstm's session one).
        dtype: ``"float32"`` (default) or ``"float64"``.
        name: name of the model.

    Data: ``x`` is either a list of `(T_i, F)` arrays (padded internally at the end; the
    results for a list are lists again, per sequence) or an array `(N, T, F)` with an optional
    ``mask`` `(N, T)` (True = real step).

    Attributes (after the model is built by the first data or :meth:`build`):
        model: the training model ``[x, mask] -> x_hat`` (an :class:`attnlstm.Model`).
        encoder: ``[x, mask] -> [z_mean, z_log_var]``.
        decoder: ``[z, mask] -> x_hat``.
        latent_mean_, latent_cov_: `(Z,)`, `(Z, Z)`: mean and covariance of ``z_mean`` over
            the data of the last :meth:`fit` (for ``anomaly_score(kind="mahalanobis")``).

    Raises:
        ValueError: a size that is not a positive int, a negative ``beta`` or ``free_bits``,
            a non-bool ``decoder_initial_state``, an unknown ``kind``.

    Example:
        >>> vae = LSTMVAE(latent_dim=2, encoder_units=16, seed=0)
        >>> history = vae.fit([np.random.rand(t, 3) for t in (5, 8, 6)], epochs=2, verbose=0)
        >>> sorted(history.history)
        ['active_units', 'beta', 'kl', 'kl_loss', 'loss', 'reconstruction_loss']
    """

    def __init__(self, latent_dim=8, encoder_units=32, decoder_units=None, beta=1.0,
                 free_bits=DEFAULT_FREE_BITS, decoder_initial_state=True,
                 initial_log_var=DEFAULT_INITIAL_LOG_VAR, kind="mse", features=None, seed=None,
                 dtype=None, name=None):
        for nm, v in (("latent_dim", latent_dim), ("encoder_units", encoder_units),
                      ("decoder_units", decoder_units if decoder_units is not None else 1)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"LSTMVAE: `{nm}` must be a positive int. Received: {nm}={v!r}")
        if not isinstance(decoder_initial_state, (bool, np.bool_)):
            raise ValueError(f"LSTMVAE: `decoder_initial_state` must be True or False. "
                             f"Received: decoder_initial_state={decoder_initial_state!r}")
        V._kind(kind)
        self.latent_dim = int(latent_dim)
        self.encoder_units = int(encoder_units)
        self.decoder_units = int(decoder_units) if decoder_units is not None else \
            self.encoder_units
        self.decoder_initial_state = bool(decoder_initial_state)
        ilv = float(initial_log_var)
        if not np.isfinite(ilv):
            raise ValueError(f"LSTMVAE: `initial_log_var` must be a finite number. Received: "
                             f"initial_log_var={initial_log_var!r}")
        self.initial_log_var = ilv
        self.kind = kind
        self.seed = seed
        self.dtype = backend.standardize_dtype(dtype)
        self.name = name or backend.unique_name("lstm_vae")
        self._kl_layer = KLDivergence(beta=beta, free_bits=free_bits, dtype=self.dtype,
                                      name=backend.unique_name(f"{self.name}_kl"))
        self._session_rng = np.random.default_rng(seed) if seed is not None else None
        self._rng = np.random.default_rng(seed if seed is None else seed + 1)
        self.features = None
        self.model = self._encoder = self._decoder = None
        self.history = None
        self._auto_optimizer = None
        self.latent_mean_ = self.latent_cov_ = None
        if features is not None:
            self.build(features)

    # -- construction ---------------------------------------------------------------------------

    @property
    def free_bits(self):
        """Free bits of the KL term, nats per latent dimension (Kingma et al. 2016)."""
        return self._kl_layer.free_bits

    @property
    def beta(self):
        """Weight of the KL term (KL warm-up changes it during ``fit``)."""
        return self._beta_target if hasattr(self, "_beta_target") else self._kl_layer.beta

    @contextlib.contextmanager
    def _seeded(self):
        """Draw weights/shuffles from the model's own generator when it has a seed."""
        if self._session_rng is None:
            yield
            return
        with backend.using_rng(self._session_rng):
            yield

    def build(self, features):
        """Create the layers and the models for sequences of `features` features."""
        if isinstance(features, bool) or not isinstance(features, (int, np.integer)) or \
                features < 1:
            raise ValueError(f"LSTMVAE: `features` must be a positive int. Received: "
                             f"features={features!r}")
        if self.model is not None:
            if features != self.features:
                raise self._features_error(("batch", "timesteps", features), "x")
            return
        F, Z, dt, n = int(features), self.latent_dim, self.dtype, self.name

        def nm(s):
            return backend.unique_name(f"{n}_{s}")

        with self._seeded():
            x_in = Input(shape=(None, F), dtype=dt, name=nm("x"))
            m_in = Input(shape=(None,), dtype=dt, name=nm("mask"))
            xm = AttachMask(dtype=dt, name=nm("attach_mask"))([x_in, m_in])
            h = LSTM(self.encoder_units, dtype=dt, name=nm("encoder_lstm"))(xm)
            z_mean = Dense(Z, dtype=dt, name=nm("z_mean"))(h)
            z_log_var = Dense(Z, dtype=dt, name=nm("z_log_var"),
                              bias_initializer=initializers.Constant(self.initial_log_var))(h)
            zm, zlv = self._kl_layer([z_mean, z_log_var])
            sampler = Sampling(seed=None if self._session_rng is None else
                               int(self._session_rng.integers(2**62)), dtype=dt,
                               name=nm("sampling"))
            z = sampler([zm, zlv])
            repeat = RepeatOverMask(dtype=dt, name=nm("repeat"))
            dec_lstm = LSTM(self.decoder_units, return_sequences=True, dtype=dt,
                            name=nm("decoder_lstm"))
            out = Dense(F, dtype=dt, name=nm("output"))
            if self.decoder_initial_state:
                init_h = Dense(self.decoder_units, activation="tanh", dtype=dt,
                               name=nm("decoder_h0"))
                init_c = Dense(self.decoder_units, dtype=dt, name=nm("decoder_c0"))

            def decoder(code, mask):
                state = [init_h(code), init_c(code)] if self.decoder_initial_state else None
                return out(dec_lstm(repeat([code, mask]), initial_state=state))

            x_hat = decoder(z, m_in)
            y = ReconstructionTerm(self.kind, dtype=dt, name=nm("reconstruction"))([xm, x_hat])
            self.model = Model([x_in, m_in], y, name=n)
            self._encoder = Model([x_in, m_in], [z_mean, z_log_var], name=nm("encoder"))
            z_in = Input(shape=(Z,), dtype=dt, name=nm("z"))
            dm_in = Input(shape=(None,), dtype=dt, name=nm("decoder_mask"))
            self._decoder = Model([z_in, dm_in], decoder(z_in, dm_in), name=nm("decoder"))
        self._sampler = sampler
        self.features = F
        return self

    def save(self, filepath, overwrite=True):
        """Write the VAE (its arguments and weights) to a ``.keras`` file, under the registered
        name ``attnlstm>LSTMVAE``; ``attnlstm.saving.load_model`` returns the LSTMVAE. (Keras
        cannot open it: the LSTMVAE is attnlstm's.)"""
        from .saving import save_model
        save_model(self, filepath, overwrite=overwrite)

    def _need_built(self, what):
        if self.model is None:
            raise ValueError(f"LSTMVAE '{self.name}' is not built yet, so it has no {what}; "
                             f"fit it, or call build(features) first.")

    @property
    def encoder(self):
        """``Model([x, mask], [z_mean, z_log_var])``."""
        self._need_built("encoder")
        return self._encoder

    @property
    def decoder(self):
        """``Model([z, mask], x_hat)``: reconstructs `T` steps, where the mask is `(N, T)`."""
        self._need_built("decoder")
        return self._decoder

    def summary(self, print_fn=None):
        """Print the training model's layers (shapes, parameter counts)."""
        self._need_built("summary")
        self.model.summary(print_fn=print_fn)

    @property
    def weights(self):
        self._need_built("weights")
        return self.model.weights

    def get_weights(self):
        """Copies of all weights (encoder LSTM, z_mean, z_log_var, decoder LSTM, output)."""
        self._need_built("weights")
        return self.model.get_weights()

    def set_weights(self, weights):
        self._need_built("weights")
        self.model.set_weights(weights)

    def count_params(self):
        self._need_built("weights")
        return self.model.count_params()

    # -- data -----------------------------------------------------------------------------------

    def _features_error(self, got, arg):
        return shape_error(
            f"LSTMVAE '{self.name}'", arg, ("batch", "timesteps", self.features), got,
            f"this model was built for {self.features} features per step; use a new LSTMVAE "
            f"for data with another feature size.")

    def _prepare(self, x, mask=None, arg="x"):
        """``(x_padded (N, T, F), mask (N, T) bool, lengths or None)``; builds the model."""
        who = f"LSTMVAE '{self.name}'"
        if isinstance(x, (list, tuple)) and not isinstance(x, np.ndarray):
            if mask is not None:
                raise ValueError(f"{who}: `mask` is for a padded array; a list of sequences "
                                 f"needs none (each keeps its own length).")
            seqs = [np.asarray(s) for s in x]
            for i, s in enumerate(seqs):
                if s.ndim != 2:
                    raise shape_error(who, f"{arg}[{i}]", ("T_i", "features"), s.shape,
                                      "each sequence is a (timesteps, features) array; add a "
                                      "feature axis to a univariate one, e.g. s[:, None]."
                                      if s.ndim == 1 else None)
                if self.features is not None and s.shape[1] != self.features:
                    raise shape_error(who, f"{arg}[{i}]", ("T_i", self.features), s.shape,
                                      f"this model was built for {self.features} features per "
                                      f"step.")
            lengths = np.array([s.shape[0] for s in seqs], dtype=np.int64)
            if seqs and len({s.shape[1] for s in seqs}) > 1:
                i = next(i for i, s in enumerate(seqs) if s.shape[1] != seqs[0].shape[1])
                raise shape_error(who, f"{arg}[{i}]", ("T_i", seqs[0].shape[1]), seqs[i].shape,
                                  f"all sequences need the same number of features as "
                                  f"{arg}[0].")
            F = seqs[0].shape[1] if seqs else self.features
            T = max(int(lengths.max()) if len(seqs) else 0, 1)
            xp = pad_sequences(seqs, maxlen=T, dtype=self.dtype, padding="post") if seqs else \
                np.zeros((0, T, F or 1), self.dtype)
            if xp.ndim != 3:
                xp = xp.reshape(len(seqs), T, F)
            m = lengths_to_mask(lengths, T) if len(seqs) else np.zeros((0, T), bool)
        else:
            xp = np.asarray(x)
            if xp.ndim != 3:
                raise shape_error(who, arg, ("batch", "timesteps", self.features or "features"),
                                  xp.shape,
                                  "a univariate series needs a feature axis, e.g. x[..., None]."
                                  if xp.ndim == 2 else None)
            if self.features is not None and xp.shape[2] != self.features:
                raise self._features_error(xp.shape, arg)
            xp = np.ascontiguousarray(xp, dtype=self.dtype)
            if mask is None:
                m = np.ones(xp.shape[:2], bool)
            else:
                m = np.asarray(mask)
                if m.shape != xp.shape[:2]:
                    hint = ("reduce a per-feature mask with .any(axis=-1)."
                            if m.shape == xp.shape else
                            "the mask has one entry per (sequence, time step), True = real step.")
                    raise shape_error(who, "mask", xp.shape[:2], m.shape, hint)
                m = m.astype(bool)
                # Padding may hold anything (NaN too): it is never read.
                xp = np.where(m[..., None], xp, np.asarray(0, xp.dtype))
            lengths = None
            F = xp.shape[2]
        if self.model is None:
            self.build(int(F))
        return xp, m, lengths

    def _inputs(self, xp, m):
        return [xp, m.astype(self.dtype)]

    @staticmethod
    def _unpad(arr, lengths):
        return [arr[i, :n] for i, n in enumerate(lengths)]

    # -- training -------------------------------------------------------------------------------

    def compile(self, optimizer=None, learning_rate=None):
        """Set the optimizer: a name or an ``attnlstm.optimizers`` instance; default Adam.
        ``fit`` compiles so when this was not called. Needs the model built (data or build()).

        An optimizer made here from a name (or the default) with a float ``learning_rate``
        (default :data:`DEFAULT_LEARNING_RATE`) gets, in each :meth:`fit`, a cosine-decayed
        rate from that value (``fit(lr_schedule="cosine")``, the default); an instance, or a
        ``LearningRateSchedule`` as ``learning_rate``, is used as given.

        Raises:
            ValueError: both an optimizer instance and a ``learning_rate`` (which one?), or a
                learning rate that is not a positive number.
        """
        from . import optimizers
        self._need_built("optimizer")
        if learning_rate is not None:
            if isinstance(optimizer, optimizers.Optimizer):
                raise ValueError(f"LSTMVAE '{self.name}': pass either an optimizer instance or "
                                 f"`learning_rate`, not both. Received: learning_rate="
                                 f"{learning_rate!r} and optimizer={type(optimizer).__name__}")
            if not isinstance(learning_rate, optimizers.LearningRateSchedule) and (
                    isinstance(learning_rate, bool) or not np.isfinite(float(learning_rate))
                    or float(learning_rate) <= 0):
                raise ValueError(f"LSTMVAE '{self.name}': `learning_rate` must be a positive "
                                 f"number or a schedule. Received: {learning_rate!r}")
        self._auto_optimizer = None
        if optimizer is None or isinstance(optimizer, str):
            cls = optimizers.get(optimizer or "adam").__class__
            lr = DEFAULT_LEARNING_RATE if learning_rate is None else learning_rate
            if not isinstance(lr, optimizers.LearningRateSchedule):
                self._auto_optimizer = (cls, float(lr))
            optimizer = cls(learning_rate=lr)
        self.model.compile(optimizer=optimizer, loss=None)

    def _schedule_optimizer(self, n, epochs, batch_size, validation_split):
        """A fresh optimizer of the compiled kind whose rate decays along a cosine from the
        compiled rate to ``DEFAULT_LR_ALPHA`` times it over this fit's training steps."""
        from . import optimizers
        cls, peak = self._auto_optimizer
        if validation_split:
            n = int(np.floor(n * (1.0 - validation_split)))
        bs = int(batch_size) if batch_size else 32
        steps = max(int(epochs), 1) * max(-(-int(n) // max(bs, 1)), 1)
        sched = optimizers.schedules.CosineDecay(peak, steps, alpha=DEFAULT_LR_ALPHA)
        self.model.compile(optimizer=cls(learning_rate=sched), loss=None)

    def fit(self, x, mask=None, epochs=1, batch_size=32, validation_data=None,
            validation_split=0.0, callbacks=None, verbose="auto", shuffle=True,
            kl_warmup_epochs=DEFAULT_KL_WARMUP_EPOCHS, optimizer=None, learning_rate=None,
            lr_schedule="cosine"):
        """Train on `x` by minimising the negative ELBO.

        Args:
            x: list of `(T_i, F)` arrays, or `(N, T, F)` array with `mask`.
            mask: `(N, T)` booleans for an array `x` (True = real step); None = all real.
            epochs, batch_size, callbacks, verbose, shuffle, validation_split: as
                ``Model.fit``.
            validation_data: `x_val` (list or array), or a tuple ``(x_val,)`` /
                ``(x_val, mask_val)``.
            kl_warmup_epochs: KL warm-up (annealing; Bowman et al. 2016, "Generating Sentences
                from a Continuous Space"): the KL weight grows linearly, batch by batch, from 0
                to ``beta`` over the first ``kl_warmup_epochs`` epochs, then stays at ``beta``;
                0 = no warm-up. A float is allowed (e.g. 0.5 epoch).
            optimizer: name or instance; default Adam (or what :meth:`compile` set).
            learning_rate: the (peak) learning rate of a named or default optimizer (default
                :data:`DEFAULT_LEARNING_RATE`), or a ``LearningRateSchedule``; not with an
                optimizer instance.
            lr_schedule: for an optimizer made from a name or the default with a float rate:
                ``"cosine"`` (default): the rate decays along a half cosine from
                ``learning_rate`` to ``DEFAULT_LR_ALPHA * learning_rate`` over this call's
                training steps (``optimizers.schedules.CosineDecay``; Loshchilov & Hutter
                2017, "SGDR"); each call starts a fresh optimizer and cycle (a warm restart);
                ``"constant"``: the rate stays, and the optimizer (with its moments) carries
                over between calls. Ignored for an optimizer instance or a schedule.

        Returns:
            The History of the training model, one value per epoch of:

            - ``loss`` = ``reconstruction_loss`` + ``kl_loss``: the objective minimised;
            - ``reconstruction_loss``: mean over sequences of the summed squared (or absolute)
              error;
            - ``kl_loss``: the KL term as added, i.e. times the current KL weight and with
              free bits floored (see :class:`attnlstm.layers.KLDivergence`);
            - ``kl``: the plain KL per sequence in nats (no weight, no floor);
            - ``active_units``: latent units with ``Var_x(z_mean_j) > 0.01`` over the epoch's
              training batches (Burda et al. 2016); 0 means the posterior has collapsed;
            - ``beta``: the KL weight at the end of the epoch (warm-up);

            and ``val_loss``, ``val_reconstruction_loss``, ``val_kl_loss`` with validation
            data. The progress bar shows the same values.

        Warns:
            UserWarning, once per call, when the last epoch has fewer than one active latent
            unit (posterior collapse: the codes carry no information about the sequences).

        Raises:
            ShapeError: sequences whose feature size differs from the model's, a mask that is
                not `(N, T)`.
            ValueError: a negative ``kl_warmup_epochs``; both ``optimizer`` (an instance) and
                ``learning_rate``; an unknown ``lr_schedule``.
        """
        if lr_schedule not in ("cosine", "constant"):
            raise ValueError(f"`lr_schedule` must be 'cosine' or 'constant'. Received: "
                             f"lr_schedule={lr_schedule!r}")
        warm = float(kl_warmup_epochs or 0)
        if not np.isfinite(warm) or warm < 0:
            raise ValueError(f"`kl_warmup_epochs` must be >= 0. Received: {kl_warmup_epochs!r}")
        xp, m, _ = self._prepare(x, mask)
        if optimizer is not None or learning_rate is not None or not self.model.compiled:
            self.compile(optimizer, learning_rate)
        if lr_schedule == "cosine" and getattr(self, "_auto_optimizer", None) is not None:
            self._schedule_optimizer(len(xp), epochs, batch_size, validation_split)
        val = None
        if validation_data is not None:
            vx, vm = validation_data, None
            if isinstance(validation_data, tuple):
                vx = validation_data[0]
                vm = validation_data[1] if len(validation_data) > 1 else None
            vxp, vmm, _ = self._prepare(vx, vm, arg="validation_data")
            val = (self._inputs(vxp, vmm), None)
        target = self._kl_layer.beta
        monitor = _LatentMonitor(self._kl_layer, target, warm)
        cbs = [monitor] + list(callbacks or [])
        self._beta_target = target
        try:
            with self._seeded():
                history = self.model.fit(self._inputs(xp, m), None, batch_size=batch_size,
                                         epochs=epochs, verbose=verbose, callbacks=cbs,
                                         validation_split=validation_split,
                                         validation_data=val, shuffle=shuffle)
        finally:
            self._kl_layer.beta = target
            self.__dict__.pop("_beta_target", None)
        self.history = history
        self._fit_latent_stats(xp, m)
        au = history.history.get("active_units")
        if au and au[-1] < 1:
            warnings.warn(
                f"LSTMVAE '{self.name}': posterior collapse: no active latent unit after "
                f"{len(au)} epochs (every z_mean_j varies by less than "
                f"{ACTIVE_UNIT_THRESHOLD} across sequences, KL {history.history['kl'][-1]:.3g} "
                f"nats): the decoder reconstructs the average sequence and anomaly scores "
                f"carry little information. Try more epochs, a larger `free_bits`, a longer "
                f"`kl_warmup_epochs`, or a smaller `beta`.", UserWarning, stacklevel=2)
        return history

    def _fit_latent_stats(self, xp, m):
        """The mean and covariance of ``z_mean`` over the training sequences (for
        ``anomaly_score(kind="mahalanobis")``)."""
        if len(xp) == 0:
            return
        zm = np.asarray(self._encoder.predict(self._inputs(xp, m), batch_size=256, verbose=0)[0],
                        np.float64)
        self.latent_mean_ = zm.mean(axis=0)
        d = zm - self.latent_mean_
        self.latent_cov_ = d.T @ d / max(len(zm) - 1, 1)

    def evaluate(self, x, mask=None, batch_size=32):
        """``{"loss", "reconstruction_loss", "kl_loss"}`` averaged over `x` (one noise draw)."""
        xp, m, _ = self._prepare(x, mask)
        if not self.model.compiled:
            self.compile("adam")
        return self.model.evaluate(self._inputs(xp, m), None, batch_size=batch_size,
                                   verbose=0, return_dict=True)

    def loss_terms(self, x, mask=None):
        """``(reconstruction, kl)`` per sequence, `(N,)` each, with one noise draw (the
        quantities whose batch means make the loss)."""
        xp, m, _ = self._prepare(x, mask)
        z_mean, z_log_var = self._encoder.predict(self._inputs(xp, m),
                                                  batch_size=max(len(xp), 1), verbose=0)
        z = V.sampling(z_mean, z_log_var, rng=self._sampler._rng, dtype=self.dtype)
        x_hat = self._decoder.predict(self._inputs(z, m), batch_size=max(len(xp), 1), verbose=0) \
            if len(xp) else np.zeros_like(xp)
        rec = V.reconstruction_loss(xp, x_hat, m, self.kind, dtype=self.dtype)
        return rec, V.kl_divergence(z_mean, z_log_var, dtype=self.dtype)

    # -- inference ------------------------------------------------------------------------------

    def encode(self, x, mask=None, batch_size=256):
        """``(z_mean, z_log_var)``, each `(N, latent_dim)`, of the posterior of each sequence."""
        xp, m, _ = self._prepare(x, mask)
        out = self._encoder.predict(self._inputs(xp, m), batch_size=batch_size, verbose=0)
        return out[0], out[1]

    def _decode_mask(self, n, timesteps):
        who = f"LSTMVAE '{self.name}'"
        if isinstance(timesteps, (int, np.integer)) and not isinstance(timesteps, bool):
            if timesteps < 1:
                raise ValueError(f"{who}: `timesteps` must be >= 1. Received: {timesteps}")
            return np.ones((n, int(timesteps)), bool), None
        lengths = np.asarray(timesteps)
        if lengths.ndim != 1 or lengths.dtype.kind not in "iu":
            raise ValueError(f"{who}: `timesteps` is an int (every sequence) or one int per "
                             f"sequence. Received: {timesteps!r}")
        if lengths.shape[0] != n:
            raise shape_error(who, "timesteps", (n,), lengths.shape,
                              "give one length per latent code.")
        T = max(int(lengths.max()) if n else 1, 1)
        return lengths_to_mask(lengths, T), lengths

    def _check_z(self, z, arg="z"):
        z = np.asarray(z)
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            hint = None
            if z.ndim == 2:
                hint = (f"the decoder takes codes of latent_dim = {self.latent_dim} (from "
                        f"encode(), or sample()); got {z.shape[1]}.")
            elif z.ndim == 1 and z.shape[0] == self.latent_dim:
                hint = "a single code needs a batch axis: z[None, :]."
            raise shape_error(f"LSTMVAE '{self.name}'", arg, ("batch", self.latent_dim),
                              z.shape, hint)
        return np.ascontiguousarray(z, dtype=self.dtype)

    def decode(self, z, timesteps, batch_size=256):
        """Reconstruct sequences from latent codes.

        Args:
            z: `(N, latent_dim)`.
            timesteps: an int T (every sequence has T steps; returns `(N, T, F)`), or one
                length per code (returns a list of `(T_i, F)` arrays).
        """
        self._need_built("decoder")
        z = self._check_z(z)
        m, lengths = self._decode_mask(z.shape[0], timesteps)
        out = self._decoder.predict(self._inputs(z, m), batch_size=batch_size, verbose=0)
        return out if lengths is None else self._unpad(out, lengths)

    def reconstruct(self, x, mask=None, sample=False, batch_size=256):
        """The decoder's reconstruction of `x` from ``z_mean`` (or from a sampled `z` with
        ``sample=True``); same layout as `x` (a list for a list; padded steps 0 for an
        array with a mask)."""
        xp, m, lengths = self._prepare(x, mask)
        x_hat = self._reconstruct(xp, m, sample, batch_size)
        return self._unpad(x_hat, lengths) if lengths is not None else x_hat

    def _reconstruct(self, xp, m, sample, batch_size):
        z_mean, z_log_var = self._encoder.predict(self._inputs(xp, m),
                                                  batch_size=batch_size, verbose=0)
        z = V.sampling(z_mean, z_log_var, rng=self._rng, dtype=self.dtype) if sample else z_mean
        x_hat = self._decoder.predict(self._inputs(z, m), batch_size=batch_size, verbose=0)
        return np.where(m[..., None], x_hat, np.asarray(0, x_hat.dtype))

    def sample(self, n, timesteps, batch_size=256):
        """`n` new sequences decoded from the prior, ``z ~ N(0, I)`` (reproducible with seed)."""
        self._need_built("decoder")
        z = self._rng.standard_normal((int(n), self.latent_dim)).astype(self.dtype)
        return self.decode(z, timesteps, batch_size=batch_size)

    def anomaly_score(self, x, mask=None, kind="reconstruction", per_step=False,
                      n_samples=None, reduction="sum", batch_size=256):
        """How anomalous each sequence (or step) is: high = anomalous.

        With ``mu, s2 = encode(x)`` (``z_mean``, ``exp(z_log_var)``), ``dec`` the decoder and
        ``e(a, b) = (a - b)**2`` (``kind="mse"`` of the model) or ``|a - b|`` (``"mae"``),
        summed over the features of a step:

        - ``"reconstruction"``: ``sum_t e(dec(mu)_t, x_t)``, the reconstruction error from the
          posterior mean (deterministic; Malhotra et al. 2016). With ``n_samples = K > 1``:
          ``1/K sum_k sum_t e(dec(z_k)_t, x_t)``, ``z_k ~ N(mu, s2)``, a Monte-Carlo estimate
          of the expected reconstruction error, i.e. of the "reconstruction probability" of An
          & Cho (2015) up to the Gaussian's constants.
        - ``"elbo"``: the negative ELBO with ``beta = 1`` and no free bits,
          ``1/K sum_k sum_t e(dec(z_k)_t, x_t) + KL(N(mu, s2) || N(0, I))`` with ``K =
          n_samples`` (default 8) sampled codes: the model's bound on ``-log p(x)`` (for
          ``"mse"``, a Gaussian decoder of variance 1/2 up to a constant per element).
          Per step, the KL (one number per sequence) is spread evenly over the real steps.
        - ``"mahalanobis"``: ``(mu - m)^T C^+ (mu - m)``, the squared Mahalanobis distance of
          the code from the training codes, ``m`` and ``C`` the mean and covariance of ``mu``
          over the data of the last :meth:`fit` (attributes ``latent_mean_``,
          ``latent_cov_``; ``C^+`` its pseudo-inverse, eigenvalues below 1e-6 of the largest
          dropped, so directions without variance (collapsed units) do not blow up). One
          number per sequence: no ``per_step``.

        Args:
            x: list of `(T_i, F)` arrays, or `(N, T, F)` with `mask`.
            mask: `(N, T)` booleans for an array `x` (True = real step).
            kind: ``"reconstruction"`` (default), ``"elbo"`` or ``"mahalanobis"``.
            per_step: one score per step (for plotting where a sequence goes wrong) instead
                of one per sequence; the per-step scores sum to the per-sequence score.
            n_samples: sampled codes per sequence (default 1 for ``"reconstruction"``, i.e.
                the mean code, and 8 for ``"elbo"``); reproducible with the model's seed.
            reduction: per sequence, ``"sum"`` over its real steps or ``"mean"`` (comparable
                across lengths; for ``"elbo"`` the KL is divided by the length too).
            batch_size: sequences per predict batch.

        Returns:
            `(N,)` float64; with ``per_step``: `(N, T)` for an array (0 at masked steps) or
            a list of `(T_i,)` arrays for a list.

        Raises:
            ValueError: an unknown ``kind`` or ``reduction``, ``n_samples`` not a positive
                int (or > 1 for ``"mahalanobis"``), ``per_step`` with ``"mahalanobis"``,
                ``"mahalanobis"`` before :meth:`fit`.
            ShapeError: as :meth:`encode`.
        """
        if kind not in ANOMALY_KINDS:
            raise ValueError(f"`kind` must be one of {ANOMALY_KINDS}. Received: kind={kind!r}")
        if n_samples is None:
            n_samples = 8 if kind == "elbo" else 1
        if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or \
                n_samples < 1:
            raise ValueError(f"`n_samples` must be a positive int. Received: {n_samples!r}")
        if reduction not in ("sum", "mean"):
            raise ValueError(f"`reduction` must be 'sum' or 'mean'. Received: {reduction!r}")
        if kind == "mahalanobis":
            if per_step:
                raise ValueError("kind='mahalanobis' scores whole sequences (a distance between "
                                 "latent codes); per_step=True needs kind='reconstruction' or "
                                 "'elbo'.")
            if n_samples != 1:
                raise ValueError(f"kind='mahalanobis' uses the mean code; `n_samples` must be "
                                 f"1. Received: {n_samples!r}")
            if self.latent_mean_ is None:
                raise ValueError(f"LSTMVAE '{self.name}': kind='mahalanobis' measures the "
                                 f"distance from the training codes; call fit() first.")
        xp, m, lengths = self._prepare(x, mask)
        z_mean, z_log_var = self._encoder.predict(self._inputs(xp, m),
                                                  batch_size=batch_size, verbose=0)
        n_real = np.maximum(m.sum(axis=1), 1)
        if kind == "mahalanobis":
            d = z_mean.astype(np.float64) - self.latent_mean_
            prec = np.linalg.pinv(self.latent_cov_, rcond=PINV_RCOND, hermitian=True)
            return np.einsum("nz,zk,nk->n", d, prec, d)
        sample = kind == "elbo" or n_samples > 1
        err = np.zeros(xp.shape[:2], np.float64)
        for _ in range(int(n_samples)):
            z = V.sampling(z_mean, z_log_var, rng=self._rng, dtype=self.dtype) if sample \
                else z_mean
            x_hat = self._decoder.predict(self._inputs(z, m), batch_size=batch_size, verbose=0)
            diff = x_hat.astype(np.float64) - xp
            e = diff * diff if self.kind == "mse" else np.abs(diff)
            err += e.sum(axis=-1)
        err = err / n_samples
        if kind == "elbo":
            kl = V.kl_divergence(z_mean, z_log_var, dtype=np.float64)
            err = err + (kl / n_real)[:, None]
        err = np.where(m, err, 0.0)
        if per_step:
            if reduction == "mean":
                err = err / n_real[:, None]
            return self._unpad(err, lengths) if lengths is not None else err
        total = err.sum(axis=1)
        if reduction == "mean":
            total = total / n_real
        return total

    def threshold(self, scores_or_x, quantile=0.99, mask=None, kind="reconstruction",
                  **score_kwargs):
        """A decision threshold: the ``quantile`` of anomaly scores on (normal) data,
        ``thr = Q_q(scores)`` (``numpy.quantile``, linear interpolation); flag a sequence
        when ``anomaly_score(x) > thr``, so about ``1 - q`` of normal sequences are flagged.

        Args:
            scores_or_x: scores (a 1-D or 2-D array of floats, e.g. of ``anomaly_score`` on
                the training data; a list of per-step score arrays is concatenated), or data
                (an `(N, T, F)` array or a list of `(T_i, F)` arrays), which is scored first
                with ``anomaly_score(x, mask, kind, **score_kwargs)``.
            quantile: q in [0, 1].
            mask, kind, **score_kwargs: for data, as :meth:`anomaly_score`.

        Returns:
            A float.

        Raises:
            ValueError: q outside [0, 1], no scores, non-finite scores.
        """
        q = float(quantile)
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"`quantile` must be in [0, 1]. Received: quantile={quantile!r}")
        if isinstance(scores_or_x, (list, tuple)) and scores_or_x and \
                all(np.ndim(s) == 1 for s in scores_or_x):
            scores = np.concatenate([np.asarray(s, np.float64) for s in scores_or_x])
        elif isinstance(scores_or_x, np.ndarray) and scores_or_x.ndim <= 2:
            scores = np.asarray(scores_or_x, np.float64).reshape(-1)
        else:
            scores = self.anomaly_score(scores_or_x, mask=mask, kind=kind, **score_kwargs)
            scores = np.asarray(scores, np.float64).reshape(-1)
        if scores.size == 0:
            raise ValueError("threshold: no scores to take a quantile of.")
        if not np.all(np.isfinite(scores)):
            raise ValueError("threshold: the scores contain NaN or inf.")
        return float(np.quantile(scores, q))


class _LatentMonitor(Callback):
    """``LSTMVAE.fit``'s own callback: the KL warm-up schedule, and the ``kl``,
    ``active_units`` and ``beta`` entries of the logs (so History and the progress bar, which
    come after it, show them).

    Warm-up: before training batch ``t`` (counted from 0 over all epochs),
    ``kl_layer.beta = beta * min(1, t / (warmup_epochs * steps_per_epoch))``.
    """

    def __init__(self, kl_layer, beta, warmup_epochs):
        super().__init__()
        self.kl_layer, self.beta, self.warmup_epochs = kl_layer, beta, warmup_epochs
        self.t = 0

    def on_train_begin(self, logs=None):
        self.t = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.kl_sum, self.n, self.z_means = 0.0, 0, []

    def on_train_batch_begin(self, batch, logs=None):
        if self.warmup_epochs > 0:
            steps = max(int(self.params.get("steps") or 1), 1)
            self.kl_layer.beta = self.beta * min(1.0, self.t / (self.warmup_epochs * steps))
        self.t += 1

    def on_train_batch_end(self, batch, logs=None):
        kl, zm = self.kl_layer.last_kl, self.kl_layer.last_z_mean
        if kl is not None and len(kl):
            self.kl_sum += float(np.sum(kl, dtype=np.float64))
            self.n += len(kl)
            self.z_means.append(zm)
        self._add(logs)

    def on_epoch_end(self, epoch, logs=None):
        self._add(logs)

    def _add(self, logs):
        if logs is None:
            return
        logs["kl"] = self.kl_sum / self.n if self.n else 0.0
        logs["active_units"] = float(active_units(np.concatenate(self.z_means))) \
            if self.z_means else 0.0
        logs["beta"] = self.kl_layer.beta


def active_units(z_mean, threshold=ACTIVE_UNIT_THRESHOLD):
    """The number of active latent units (Burda, Grosse & Salakhutdinov 2016, "Importance
    Weighted Autoencoders", section 5.2): units j whose posterior mean varies across the data,
    ``A_j = Var_x(E_q[z_j | x]) > threshold`` (0.01 in the paper).

    Args:
        z_mean: `(N, Z)`, ``E_q[z | x]`` of N sequences (``LSTMVAE.encode(x)[0]``).

    Returns:
        An int in 0..Z (0 for fewer than two sequences).
    """
    zm = np.asarray(z_mean, np.float64)
    if zm.ndim != 2:
        raise shape_error("vae.active_units", "z_mean", ("N", "latent_dim"), zm.shape)
    if zm.shape[0] < 2:
        return 0
    return int(np.sum(zm.var(axis=0) > threshold))
