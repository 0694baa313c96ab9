"""Layers of the variational autoencoder (issue #5): ``Sampling`` and ``KLDivergence``.

The classic Keras LSTM-VAE, in attnlstm's functional API::

    x = Input(shape=(T, F))
    h = layers.LSTM(32)(x)
    z_mean = layers.Dense(latent_dim)(h)
    z_log_var = layers.Dense(latent_dim)(h)
    z_mean, z_log_var = layers.KLDivergence(beta=1.0)([z_mean, z_log_var])   # add_loss(KL)
    z = layers.Sampling(seed=0)([z_mean, z_log_var])
    h = layers.RepeatVector(T)(z)
    h = layers.LSTM(32, return_sequences=True)(h)
    x_hat = layers.TimeDistributed(layers.Dense(F))(h)
    vae = Model(x, x_hat)
    vae.compile("adam", loss=attnlstm.vae.SequenceReconstructionLoss())
    vae.fit(x_train, x_train)

Design: the KL term is its own layer (not an option of ``Sampling``), so the sampling layer is
exactly Keras' example layer and the KL weight ``beta`` can be changed while training (KL
warm-up) by assigning ``kl_layer.beta``. ``KLDivergence`` returns its inputs unchanged and adds
``beta * mean_over_batch(KL)`` with :meth:`Layer.add_loss` under the name ``"kl_loss"`` (so
``fit`` logs it); its backward adds the term's gradient to the incoming ones.
"""
import numpy as np

from .. import backend
from ..ops import vae as V
from ..engine.base import Grads, Layer
from ..errors import format_shape, shape_error

__all__ = ["Sampling", "KLDivergence"]

_HINT_LATENT = ("z_mean and z_log_var come from two Dense layers on the encoder's output; both "
                "need the same number of units (latent_dim).")


def _latent_pair_shapes(layer, input_shape):
    """Check that `input_shape` is a list of two equal (batch, latent_dim) shapes."""
    if not isinstance(input_shape, list) or len(input_shape) != 2 or \
            not all(isinstance(s, tuple) for s in input_shape):
        got = input_shape if isinstance(input_shape, tuple) else \
            (f"a list of {len(input_shape)} tensors" if isinstance(input_shape, list) else
             str(input_shape))
        raise shape_error(layer, "inputs", "[(batch, latent_dim), (batch, latent_dim)]", got,
                          f"call {type(layer).__name__} on the list [z_mean, z_log_var].",
                          message=f"`inputs` must be the list [z_mean, z_log_var] of two "
                                  f"(batch, latent_dim) tensors, got "
                                  f"{format_shape(got) if isinstance(got, tuple) else got}.")
    m, lv = input_shape
    for arg, s in (("z_mean", m), ("z_log_var", lv)):
        if len(s) != 2:
            hint = None
            if len(s) == 3:
                hint = ("the latent code is one vector per sequence; the encoder LSTM must "
                        "return only its last output (return_sequences=False).")
            raise shape_error(layer, arg, ("batch", "latent_dim"), s, hint)
    compatible = all(a is None or b is None or a == b for a, b in zip(m, lv))
    if not compatible:
        raise shape_error(layer, "z_log_var", ("batch", "latent_dim"), lv, _HINT_LATENT,
                          message=f"`z_mean` and `z_log_var` must have the same shape (batch, "
                                  f"latent_dim), got z_mean {format_shape(m)} and z_log_var "
                                  f"{format_shape(lv)}.")
    return m, lv


class Sampling(Layer):
    """Draws a latent code with the reparameterisation trick (the ``Sampling`` layer of the
    Keras VAE example; Kingma & Welling 2014)::

        z = z_mean + exp(0.5 * z_log_var) * eps,    eps ~ N(0, I)

    As in Keras' example, it samples in inference too (``predict`` of a model containing it is
    random); use ``z_mean`` itself for a deterministic code (e.g. ``LSTMVAE.encode``).

    Args:
        seed: seed of the layer's NumPy generator, from which every ``eps`` is drawn (None: a
            seed drawn from attnlstm's session generator, see
            ``attnlstm.backend.set_random_seed``).

    Call arguments:
        inputs: ``[z_mean, z_log_var]``, each `(B, Z)`.

    Returns:
        `(B, Z)` ``z``. Backward: ``d z_mean = d z``, ``d z_log_var = d z * eps * std / 2``.

    Raises:
        ShapeError: not a list of two tensors, a tensor that is not `(batch, latent_dim)` (a
            sequence from an encoder LSTM with return_sequences=True is named), or two
            different shapes (the Dense layers need the same latent_dim).

    Example:
        >>> Sampling(seed=0)([np.zeros((4, 2)), np.zeros((4, 2))]).shape
        (4, 2)
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self._rng = backend.make_rng(seed)

    def reset_seed(self, seed=None):
        """Restart the noise: a new generator from `seed` (default: the layer's own seed)."""
        self._rng = np.random.default_rng(self.seed if seed is None else seed)

    def compute_output_shape(self, input_shape):
        m, lv = _latent_pair_shapes(self, input_shape)
        return tuple(a if a is not None else b for a, b in zip(m, lv))

    def call(self, inputs):
        return self.forward(inputs)[0]

    def forward(self, inputs):
        z_mean, z_log_var = inputs
        saved = V.sampling_forward(z_mean, z_log_var, rng=self._rng, dtype=self.dtype,
                                   name=f"Sampling '{self.name}'")
        return saved["z"], saved

    def backward(self, ctx, d_outputs, need_input_grad=True):
        if not need_input_grad:
            return Grads(None)
        g = V.sampling_backward(ctx, d_outputs)
        return Grads([g["z_mean"], g["z_log_var"]])

    def get_config(self):
        cfg = super().get_config()
        cfg["seed"] = self.seed
        return cfg


class KLDivergence(Layer):
    """Adds the VAE's KL term ``beta * mean_b KL(N(z_mean, exp(z_log_var)) || N(0, I))`` with
    :meth:`~attnlstm.Layer.add_loss`, named ``"kl_loss"`` (logged by ``fit``), and returns its
    inputs unchanged. KL is summed over the latent dimensions and averaged over the batch, as
    in the Keras VAE example (the standard negative ELBO)::

        kl[b, j] = -0.5 * (1 + z_log_var[b, j] - z_mean[b, j]**2 - exp(z_log_var[b, j]))
        term     = beta * sum_j mean_b kl[b, j]                       (free_bits = 0)
        term     = beta * sum_j max(free_bits, mean_b kl[b, j])       (free bits)

    With ``free_bits = lambda > 0`` (Kingma et al. 2016, "Improved Variational Inference with
    Inverse Autoregressive Flow", section "free bits", one group per latent dimension) a latent
    dimension whose batch-mean KL is below ``lambda`` nats costs a constant ``lambda``: it gets
    no gradient pulling it to the prior, so the encoder can start using it before the decoder
    has learnt to (the usual cause of posterior collapse). Above ``lambda`` it is the plain KL.

    Args:
        beta: weight of the KL term (beta-VAE, Higgins et al. 2017); a plain attribute, so a
            callback may change it between steps for KL warm-up (``layer.beta = ...``).
        free_bits: ``lambda`` >= 0, nats per latent dimension (0: the plain KL term).

    Call arguments:
        inputs: ``[z_mean, z_log_var]``, each `(B, Z)`.

    Returns:
        ``[z_mean, z_log_var]``, unchanged. The logged ``kl_loss`` is the term added, i.e.
        already multiplied by ``beta`` (and with free bits, floored per dimension).

    Attributes:
        last_kl: `(B,)`, the plain KL of each sequence of the last call (before ``beta`` and
            free bits), for monitoring.
        last_z_mean: `(B, Z)`, the ``z_mean`` of the last call.

    Raises:
        ShapeError: as :class:`Sampling`.
        ValueError: a negative or non-finite ``beta`` or ``free_bits``.
    """

    def __init__(self, beta=1.0, free_bits=0.0, **kwargs):
        super().__init__(**kwargs)
        self.beta = beta
        fb = float(free_bits)
        if not np.isfinite(fb) or fb < 0:
            raise ValueError(f"`free_bits` must be a finite number >= 0 (nats per latent "
                             f"dimension). Received: free_bits={free_bits!r}")
        self.free_bits = fb
        self.last_kl = None
        self.last_z_mean = None

    @property
    def beta(self):
        return self._beta

    @beta.setter
    def beta(self, value):
        v = float(value)
        if not np.isfinite(v) or v < 0:
            raise ValueError(f"`beta` must be a finite number >= 0. Received: beta={value!r}")
        self._beta = v

    def compute_output_shape(self, input_shape):
        m, lv = _latent_pair_shapes(self, input_shape)
        return [m, lv]

    def compute_mask(self, inputs, mask=None):
        return [None, None]

    def call(self, inputs):
        return self.forward(inputs)[0]

    def forward(self, inputs):
        z_mean, z_log_var = inputs
        kl = V.kl_divergence(z_mean, z_log_var, dtype=self.dtype,
                             name=f"KLDivergence '{self.name}'")
        B = kl.shape[0]
        self.last_kl, self.last_z_mean = kl, np.asarray(z_mean)
        keep = None  # free bits: the latent dimensions above the floor (the others get no grad)
        if B == 0:
            value = 0.0
        elif self.free_bits > 0.0:
            m = np.asarray(z_mean, np.float64)
            lv = np.asarray(z_log_var, np.float64)
            per_dim = np.mean(-0.5 * (1.0 + lv - m * m - np.exp(lv)), axis=0)   # (Z,)
            keep = per_dim > self.free_bits
            value = self.beta * float(np.sum(np.maximum(per_dim, self.free_bits)))
        else:
            value = self.beta * float(kl.sum()) / B
        self.add_loss(value, name="kl_loss")
        return [z_mean, z_log_var], (z_mean, z_log_var, self.beta, keep)

    def backward(self, ctx, d_outputs, need_input_grad=True):
        z_mean, z_log_var, beta, keep = ctx
        d_mean, d_log_var = d_outputs
        B = z_mean.shape[0]
        if not need_input_grad:
            return Grads(None)
        if B == 0 or beta == 0.0 or (keep is not None and not keep.any()):
            return Grads([d_mean, d_log_var])
        d_kl = np.full((B,), beta / B, dtype=z_mean.dtype)
        g = V.kl_divergence_backward(z_mean, z_log_var, d_kl, dtype=self.dtype,
                                     name=f"KLDivergence '{self.name}'")
        gm, glv = g["z_mean"], g["z_log_var"]
        if keep is not None:
            gm, glv = gm * keep, glv * keep
        return Grads([d_mean + gm, d_log_var + glv])

    def get_config(self):
        cfg = super().get_config()
        cfg["beta"] = self.beta
        cfg["free_bits"] = self.free_bits
        return cfg
