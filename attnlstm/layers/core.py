"""Core layers: Dense, Activation, Softmax, Dropout, Masking, Embedding, Lambda (Keras 3 math)."""
import warnings

import numpy as np

from autograd.tracer import Box

from .. import _core, activations, backend, constraints, initializers, regularizers
from ..engine import autodiff
from ..engine.base import Grads, KerasTensor, Layer, _is_shape, flatten, map_structure
from ..ops._symbolic import tracing
from ..errors import format_shape, shape_error
from ..ops import core as _ops

__all__ = ["Dense", "Activation", "Softmax", "Dropout", "Masking", "Embedding", "Lambda",
           "softmax_checked"]

# Keras' large negative number for masked softmax entries (layers/activations/softmax.py).
SOFTMAX_MASK_FLOAT = -1e9


def softmax_checked(x, axis, layer):
    """Softmax over `axis`, warning when that axis has size 1 (the weights are then all 1).

    ``Dense(1, activation="softmax")`` on a (B, T, 1) score tensor is the classic mistake: the
    softmax runs over the size-1 feature axis, not over time.
    """
    x = np.asarray(x)
    if x.ndim and x.shape[axis] == 1:
        warnings.warn(
            f"{type(layer).__name__} '{layer.name}': softmax over axis {axis} of size 1 "
            f"(input shape {format_shape(x.shape)}) makes every weight exactly 1. To weight "
            f"timesteps, take the softmax over the time axis, e.g. Softmax(axis=1) on (batch, "
            f"timesteps, 1) scores, or use an attention pooling layer.", UserWarning, stacklevel=4)
    return activations.softmax(x, axis=axis).astype(x.dtype, copy=False)


def _reject_lora(lora_rank):
    if lora_rank is not None:
        raise ValueError(f"attnlstm does not implement LoRA; `lora_rank` must be None. "
                         f"Received: lora_rank={lora_rank!r}")


def regularizer_config(layer, *names):
    """get_config entries for regularizer/constraint attributes (Keras' serialized dicts)."""
    return {nm: (constraints.serialize(getattr(layer, nm)) if nm.endswith("constraint")
                 else regularizers.serialize(getattr(layer, nm))) for nm in names}


def _apply_activation(layer, fn, x):
    if fn is activations.softmax:
        return softmax_checked(x, -1, layer)
    return fn(x)


def set_kernel_args(layer, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                    kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                    bias_constraint=None):
    """Resolve a layer's kernel/bias initializer, regularizer and constraint identifiers
    (Keras' ``get`` rules) onto the layer's attributes of those names."""
    layer.kernel_initializer = initializers.get(kernel_initializer)
    layer.bias_initializer = initializers.get(bias_initializer)
    layer.kernel_regularizer = regularizers.get(kernel_regularizer)
    layer.bias_regularizer = regularizers.get(bias_regularizer)
    layer.kernel_constraint = constraints.get(kernel_constraint)
    layer.bias_constraint = constraints.get(bias_constraint)


def _matmul(a, b, transpose_a=False, transpose_b=False):
    """``a @ b`` over a's last axis (``a`` may be ``(..., K)``; ``transpose_a`` takes a 2-D
    ``a`` as ``(K, M)``, ``transpose_b`` a 2-D ``b`` as ``(N, K)``) on attnlstm's OpenBLAS when
    both are float32 or both float64 (see csrc/dense.c: NumPy's own OpenBLAS threads keep
    spinning on the cores attnlstm's kernels use next), else NumPy's matmul."""
    if a.dtype == b.dtype and a.dtype in (np.float32, np.float64) and b.ndim == 2:
        if transpose_a:
            return _core.matmul_tn(a, b)
        lead = a.shape[:-1]
        a2 = a.reshape(-1, a.shape[-1])
        c = _core.matmul_nt(a2, b) if transpose_b else _core.matmul(a2, b)
        return c.reshape(lead + (c.shape[-1],))
    a = a.T if transpose_a else a
    return np.matmul(a, b.T if transpose_b else b)


class Dense(Layer):
    """Densely-connected layer on the last axis: ``activation(inputs @ kernel + bias)``.

    Keras ``keras.layers.Dense``: any input rank >= 2, the product is over the last axis only (a
    (B, T, D) input gives the same as TimeDistributed(Dense)).

    Args:
        units: output size U (positive int).
        activation: Keras name or callable; None = linear.
        use_bias: add a bias.
        kernel_initializer, bias_initializer: Keras initializers ("glorot_uniform", "zeros").
        kernel_regularizer, bias_regularizer: :mod:`attnlstm.regularizers` identifiers; the
            penalties are added to the training loss.
        activity_regularizer: a penalty on the outputs (divided by the batch size).
        kernel_constraint, bias_constraint: :mod:`attnlstm.constraints` identifiers, applied
            after each optimizer update.
        lora_rank: only None (attnlstm has no LoRA); anything else raises ValueError.

    Call arguments:
        inputs: `(B, ..., D)`.

    Returns:
        `(B, ..., U)`. The input's mask passes through unchanged.

    Weights:
        ``kernel`` `(D, U)`, ``bias`` `(U,)`.

    Raises:
        ShapeError: rank < 2, an undefined last axis, or a last axis that differs from the one
            the layer was built with.

    Example:
        >>> Dense(4)(np.zeros((2, 3))).shape
        (2, 4)
    """
    supports_masking = True

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 lora_rank=None, **kwargs):
        if not isinstance(units, (int, np.integer)) or isinstance(units, bool) or units < 1:
            raise ValueError(f"Received an invalid value for argument `units`, expected a positive "
                             f"integer. Received: units={units}")
        _reject_lora(lora_rank)
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.units = int(units)
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        set_kernel_args(self, kernel_initializer, bias_initializer, kernel_regularizer,
                        bias_regularizer, kernel_constraint, bias_constraint)

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel",
                                      initializer=self.kernel_initializer,
                                      regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        self.bias = self.add_weight(shape=(self.units,), name="bias",
                                    initializer=self.bias_initializer,
                                    regularizer=self.bias_regularizer,
                                    constraint=self.bias_constraint) if self.use_bias else None
        self.built = True

    def compute_output_shape(self, input_shape):
        if not isinstance(input_shape, tuple) or len(input_shape) < 2:
            raise shape_error(self, "inputs", ("batch", "...", "features"), input_shape,
                              "Dense needs a batch axis and a feature axis; reshape a single "
                              "sample x to x[None, :]." if isinstance(input_shape, tuple) and
                              len(input_shape) == 1 else None)
        if input_shape[-1] is None:
            raise shape_error(self, "inputs", input_shape[:-1] + ("features",), input_shape,
                              "the last axis of a Dense input must have a known size.")
        if self.built and input_shape[-1] != self.kernel.shape[0]:
            raise shape_error(
                self, "inputs", ("batch", "...", self.kernel.shape[0]), input_shape,
                f"this Dense was built for {self.kernel.shape[0]} input features; a layer "
                f"instance keeps its weights, so use a new Dense for inputs of "
                f"{input_shape[-1]} features.")
        return tuple(input_shape[:-1]) + (self.units,)

    def call(self, inputs):
        return self.forward(inputs)[0]

    def forward(self, inputs):
        if inputs.size == 0 or self.units == 0:
            # np.matmul would loop over every (empty) batch element: a (2**40, 0, D) view hangs.
            z = np.zeros(inputs.shape[:-1] + (self.units,),
                         np.result_type(inputs, self.kernel.value))
        else:
            z = _matmul(inputs, self.kernel.value)
        if self.use_bias:
            z += self.bias.value
        y = _apply_activation(self, self.activation, z)
        return y, (inputs, z, y)

    def output_logits(self, ctx):
        """Pre-activation values of a recorded call with a softmax/sigmoid activation (what
        Keras' crossentropy uses in fit), else None."""
        return ctx[1] if self.activation in (activations.softmax, activations.sigmoid) else None

    def backward_logits(self, ctx, d_logits, need_input_grad=True):
        """Backward from the gradient w.r.t. the pre-activation values."""
        return self._backward_z(ctx, d_logits, need_input_grad)

    def backward(self, ctx, d_outputs, need_input_grad=True):
        x, z, y = ctx
        return self._backward_z(ctx, activations.backward(self.activation, z, y, d_outputs),
                                need_input_grad)

    def _backward_z(self, ctx, dz, need_input_grad):
        x = ctx[0]
        D, U = self.kernel.shape
        dz2 = dz.reshape(-1, U)
        weights = {self.kernel: _matmul(x.reshape(-1, D), dz2, transpose_a=True)}
        if self.use_bias:
            weights[self.bias] = dz2.sum(axis=0)
        if not need_input_grad:
            dx = None
        elif dz.size == 0 or D == 0:   # no matmul loop over an empty batch (see forward)
            dx = np.zeros(dz.shape[:-1] + (D,), np.result_type(dz, self.kernel.value))
        else:
            dx = _matmul(dz, self.kernel.value, transpose_b=True)
        return Grads(dx, weights)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(units=self.units, activation=activations.serialize(self.activation),
                   use_bias=self.use_bias,
                   kernel_initializer=initializers.serialize(self.kernel_initializer),
                   bias_initializer=initializers.serialize(self.bias_initializer))
        cfg.update(regularizer_config(self, "kernel_regularizer", "bias_regularizer",
                                      "kernel_constraint", "bias_constraint"))
        return cfg


class Activation(Layer):
    """Applies an activation function (``keras.layers.Activation``); shape unchanged.

    Example:
        >>> Activation("relu")(np.array([[-1.0, 2.0]]))
        array([[0., 2.]], dtype=float32)
    """
    supports_masking = True

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def call(self, inputs):
        return _apply_activation(self, self.activation, inputs)

    def forward(self, inputs):
        y = _apply_activation(self, self.activation, inputs)
        return y, (inputs, y)

    def backward(self, ctx, d_outputs, need_input_grad=True):
        x, y = ctx
        return Grads(activations.backward(self.activation, x, y, d_outputs))

    def output_logits(self, ctx):
        """The input of a softmax/sigmoid activation (what Keras' crossentropy uses in fit)."""
        return ctx[0] if self.activation in (activations.softmax, activations.sigmoid) else None

    def backward_logits(self, ctx, d_logits, need_input_grad=True):
        return Grads(d_logits)

    def get_config(self):
        cfg = super().get_config()
        cfg["activation"] = activations.serialize(self.activation)
        return cfg


class Softmax(Layer):
    """Softmax over `axis` (``keras.layers.Softmax``), mask-aware.

    With a mask (True = keep, broadcastable to the inputs), masked entries get weight exactly 0
    (Keras 3.14+: ``where(mask, x, -1e9)``, softmax, then ``where(mask, p, 0)``).
    Warns (UserWarning) when the softmax axis has size 1: every weight would be 1.

    Args:
        axis: int or tuple of ints.

    Raises:
        ShapeError: a mask that does not broadcast to the inputs.
    """
    supports_masking = True

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def compute_output_shape(self, input_shape):
        axes = self.axis if isinstance(self.axis, (list, tuple)) else (self.axis,)
        for a in axes:
            if not -len(input_shape) <= a < len(input_shape):
                raise shape_error(self, "inputs", f"at least {abs(a) + (0 if a < 0 else 1)} axes",
                                  input_shape, message=f"`axis={a}` is out of range for inputs of "
                                  f"shape {format_shape(input_shape)}.")
        return input_shape

    def validate_call(self, input_shape, **kwarg_shapes):
        m = kwarg_shapes.get("mask")
        if m is None:
            return
        m = tuple(m)
        ok = len(m) <= len(input_shape) and all(
            a is None or b is None or a == 1 or a == b
            for a, b in zip(m, input_shape[:len(m)] if len(m) < len(input_shape) else input_shape))
        if not ok:
            raise shape_error(self, "mask", input_shape, m,
                              "each mask axis must be 1 or match the corresponding input axis.")

    def call(self, inputs, mask=None):
        return self.forward(inputs, mask)[0]

    def forward(self, inputs, mask=None):
        x = np.asarray(inputs)
        axis = self.axis
        m = None
        if mask is not None:
            m = np.asarray(mask, bool)
            while m.ndim < x.ndim:
                m = m[..., None]
            x = np.where(m, x, np.asarray(SOFTMAX_MASK_FLOAT, x.dtype))
        if isinstance(axis, (list, tuple)):
            mx = np.max(x, axis=tuple(axis), keepdims=True)
            e = np.exp(x - mx)
            p = (e / np.sum(e, axis=tuple(axis), keepdims=True)).astype(x.dtype)
        else:
            p = softmax_checked(x, axis, self)
        out = p if m is None else np.where(m, p, np.asarray(0, p.dtype))
        return out, (p, m)

    def backward(self, ctx, d_outputs, need_input_grad=True):
        p, m = ctx
        axes = tuple(self.axis) if isinstance(self.axis, (list, tuple)) else self.axis
        d = d_outputs if m is None else np.where(m, d_outputs, 0)
        dx = p * (d - np.sum(d * p, axis=axes, keepdims=True))
        if m is not None:
            dx = np.where(m, dx, 0)
        return Grads(dx.astype(p.dtype, copy=False))

    def compute_mask(self, inputs, mask=None):
        return mask

    def get_config(self):
        cfg = super().get_config()
        cfg["axis"] = self.axis
        return cfg


class Dropout(Layer):
    """Inverted dropout (``keras.layers.Dropout``): identity at inference; in training, zeroes
    a `rate` fraction of entries and scales the rest by 1 / (1 - rate).

    Args:
        rate: float in [0, 1).
        noise_shape: shape of the binary mask (None entries take the input's size), e.g.
            ``(None, 1, None)`` to drop the same features at every timestep.
        seed: int for reproducible masks.
    """
    supports_masking = True

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        if not 0 <= rate <= 1:
            raise ValueError(f"Invalid value received for argument `rate`. Expected a float value "
                             f"between 0 and 1. Received: rate={rate}")
        super().__init__(**kwargs)
        self.rate = float(rate)
        self.noise_shape = noise_shape
        self.seed = seed
        self._rng = backend.make_rng(seed)

    def call(self, inputs, training=False):
        return self.forward(inputs, training)[0]

    def forward(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs, None
        x = np.asarray(inputs)
        shape = self._noise_shape(x)
        if self.rate >= 1:
            scale = np.zeros(shape, x.dtype)
        else:
            scale = ((self._rng.random(shape) >= self.rate) / (1.0 - self.rate)).astype(x.dtype)
        return x * scale, scale

    def _noise_shape(self, x):
        """The shape of the keep-mask, broadcast over `x` (Keras' ``noise_shape``)."""
        if self.noise_shape is None:
            return x.shape
        return tuple(x.shape[i] if s is None else s for i, s in enumerate(self.noise_shape))

    def backward(self, ctx, d_outputs, need_input_grad=True):
        if ctx is None:
            return Grads(d_outputs)
        return Grads(d_outputs * ctx)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(rate=self.rate, noise_shape=self.noise_shape, seed=self.seed)
        return cfg


class Masking(Layer):
    """Masks timesteps whose features all equal `mask_value` (``keras.layers.Masking``).

    ``mask[b, t] = any(x[b, t, :] != mask_value)``; the output is ``where(mask, x, 0)`` (masked
    steps become 0, as Keras). Downstream LSTMs skip masked steps.

    Call arguments:
        inputs: `(B, T, D)`.

    Raises:
        ShapeError: inputs without a time axis.
    """
    supports_masking = True

    def __init__(self, mask_value=0.0, **kwargs):
        super().__init__(**kwargs)
        self.mask_value = mask_value

    def compute_output_shape(self, input_shape):
        if not isinstance(input_shape, tuple) or len(input_shape) < 3:
            raise shape_error(self, "inputs", ("batch", "timesteps", "features"), input_shape,
                              fallback_hint="Masking masks timesteps of sequences; add a time axis.")
        return input_shape

    def _mask(self, x):
        return _ops.any(_ops.not_equal(x, self.mask_value), axis=-1)

    def call(self, inputs):
        return self.forward(inputs)[0]

    def forward(self, inputs):
        m = self._mask(inputs)
        return np.where(m[..., None], inputs, np.asarray(0, inputs.dtype)), m

    def backward(self, ctx, d_outputs, need_input_grad=True):
        return Grads(np.where(ctx[..., None], d_outputs, 0).astype(d_outputs.dtype, copy=False))

    def compute_mask(self, inputs, mask=None):
        return self._mask(inputs)

    def get_config(self):
        cfg = super().get_config()
        cfg["mask_value"] = self.mask_value
        return cfg


class Embedding(Layer):
    """Turns integer indices into dense vectors (``keras.layers.Embedding``).

    Args:
        input_dim: vocabulary size (indices 0 .. input_dim-1).
        output_dim: vector size E.
        embeddings_initializer: default Keras' "uniform" (U(-0.05, 0.05)).
        mask_zero: index 0 is padding: the output carries the mask ``inputs != 0``.
        embeddings_regularizer: a :mod:`attnlstm.regularizers` identifier (penalty on the
            whole table, added to the training loss).
        embeddings_constraint: a :mod:`attnlstm.constraints` identifier, applied after each
            optimizer update.
        weights: initial ``[embeddings]`` (Keras 2 style), set when the layer is built.
        lora_rank: only None.

    Call arguments:
        inputs: integer `(B, T)` (or any shape).

    Returns:
        `(*inputs.shape, E)`.

    Weights:
        ``embeddings`` `(input_dim, output_dim)`.

    Raises:
        ValueError: an index outside [0, input_dim), or non-integer values.
    """
    _cast_inputs = False

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform",
                 embeddings_regularizer=None, embeddings_constraint=None, mask_zero=False,
                 weights=None, lora_rank=None, **kwargs):
        for nm, v in (("input_dim", input_dim), ("output_dim", output_dim)):
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"Received an invalid value for argument `{nm}`, expected a "
                                 f"positive integer. Received: {nm}={v}")
        if kwargs.pop("input_length", None) is not None:
            warnings.warn("Argument `input_length` is deprecated. Just remove it.", stacklevel=2)
        _reject_lora(lora_rank)
        super().__init__(**kwargs)
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.embeddings_constraint = constraints.get(embeddings_constraint)
        self.mask_zero = mask_zero
        self.supports_masking = mask_zero
        self._initial_weights = weights

    def build(self, input_shape=None):
        self.embeddings = self.add_weight(shape=(self.input_dim, self.output_dim),
                                          name="embeddings",
                                          initializer=self.embeddings_initializer,
                                          regularizer=self.embeddings_regularizer,
                                          constraint=self.embeddings_constraint)
        self.built = True
        if self._initial_weights is not None:
            self.set_weights(self._initial_weights)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def _output_dtype(self, inputs):
        return self.dtype

    def call(self, inputs):
        return self.forward(inputs)[0]

    def backward(self, ctx, d_outputs, need_input_grad=True):
        d = np.zeros_like(self.embeddings.value)
        np.add.at(d, ctx.reshape(-1), d_outputs.reshape(-1, self.output_dim))
        return Grads(None, {self.embeddings: d})

    def forward(self, inputs):
        idx = np.asarray(inputs)
        if idx.dtype.kind == "f":
            if not np.all(np.isfinite(idx)) or np.any(idx != np.round(idx)):
                raise ValueError(f"Embedding '{self.name}': inputs must be integer indices; got "
                                 f"non-integer floats.")
            idx = idx.astype(np.int64)
        elif idx.dtype.kind not in "iub":
            raise ValueError(f"Embedding '{self.name}': inputs must be integer indices, got dtype "
                             f"{idx.dtype}.")
        elif idx.dtype.kind == "b":
            idx = idx.astype(np.int64)  # as Keras' cast to int: NumPy would index by mask
        if idx.size and (idx.min() < 0 or idx.max() >= self.input_dim):
            bad = idx.max() if idx.max() >= self.input_dim else idx.min()
            raise ValueError(
                f"Embedding '{self.name}': index {int(bad)} is out of range [0, {self.input_dim}). "
                f"Hint: input_dim must be the vocabulary size (largest index + 1).")
        return self.embeddings.value[idx], idx

    def compute_mask(self, inputs, mask=None):
        if not self.mask_zero:
            return None
        return _ops.not_equal(inputs, 0)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(input_dim=self.input_dim, output_dim=self.output_dim,
                   embeddings_initializer=initializers.serialize(self.embeddings_initializer),
                   mask_zero=self.mask_zero)
        cfg.update(regularizer_config(self, "embeddings_regularizer", "embeddings_constraint"))
        return cfg


class Lambda(Layer):
    """Wraps a function as a layer (``keras.layers.Lambda``).

    Written with :mod:`attnlstm.ops` and Python operators, the function trains: gradients flow
    through it by automatic differentiation (autograd), and on symbolic inputs its shape rules
    check it when the model is built. A function of NumPy's own functions still runs (its
    output shape is then inferred from small arrays) but needs `backward` to be trained through.

    Args:
        function: ``f(inputs, **arguments) -> tensor``.
        output_shape: shape without the batch axis, a callable of the input shape, or None to
            infer it (symbolically, else by running `function` on small arrays).
        mask: a mask, or a callable ``mask(inputs, mask)``, for the output.
        arguments: extra keyword arguments for `function`.
        backward: optional hand-written gradient ``backward(inputs, outputs, d_outputs) ->
            d_inputs`` (NumPy arrays), used instead of automatic differentiation.

    Raises:
        ValueError: the output shape cannot be inferred (pass `output_shape`).

    Example:
        >>> from attnlstm import ops
        >>> Lambda(lambda x: ops.sum(x * x, axis=-1))(np.ones((2, 3))).shape
        (2,)
    """
    supports_masking = True

    def __init__(self, function, output_shape=None, mask=None, arguments=None, backward=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.function = function
        self._backward_fn = backward
        self._output_shape = output_shape
        self._mask = mask
        self.arguments = arguments or {}

    def compute_output_shape(self, input_shape):
        if self._output_shape is not None:
            if callable(self._output_shape):
                return tuple(self._output_shape(input_shape))
            shp = tuple(self._output_shape)
            first = input_shape[0] if isinstance(input_shape, tuple) else flatten(input_shape)[0][0] \
                if flatten(input_shape) else None
            return (first,) + shp
        return self._infer_shape(input_shape)

    def _symbolic_call(self, args, kwargs):
        if self._output_shape is None:
            try:
                with tracing(self):
                    traced = self.function(args[0], **self.arguments)
            except TypeError:
                traced = None    # NumPy code: infer from small arrays below
            if traced is not None and all(isinstance(t, KerasTensor) for t in flatten(traced)):
                self._traced_shape = map_structure(lambda t: t.shape, traced)
        try:
            return super()._symbolic_call(args, kwargs)
        finally:
            self._traced_shape = None

    def _infer_shape(self, input_shape):
        traced = getattr(self, "_traced_shape", None)
        if traced is not None:
            return list(traced) if isinstance(traced, tuple) and not _is_shape(traced) else traced
        def dummy(fill):
            def make(shape):
                return np.full([fill if s is None else s for s in shape], 0.5, self.dtype)
            if isinstance(input_shape, list):
                return [make(s) for s in input_shape]
            return make(input_shape)
        try:
            a = np.asarray(self.function(dummy(2), **self.arguments))
            b = np.asarray(self.function(dummy(3), **self.arguments))
        except Exception as exc:  # the user's function failed on dummy data
            raise ValueError(
                f"Lambda '{self.name}': could not infer the output shape by running the function "
                f"on arrays of shape {input_shape} ({type(exc).__name__}: {exc}). Pass "
                f"output_shape=... (without the batch axis).") from None
        if a.ndim != b.ndim:
            raise ValueError(f"Lambda '{self.name}': the output rank depends on the input sizes; "
                             f"pass output_shape=....")
        return tuple(None if sa != sb else int(sa) for sa, sb in zip(a.shape, b.shape))

    def call(self, inputs, mask=None):
        out = self.function(inputs, **self.arguments)
        return out if isinstance(out, Box) else np.asarray(out)

    def forward(self, inputs, mask=None):
        if self._backward_fn is None:
            return autodiff.trace_forward(self, self.call, (inputs,), {}, self.trainable_weights)
        out = self.call(inputs, mask)
        return out, (inputs, out)

    @property
    def differentiable(self):
        return True

    def backward(self, ctx, d_outputs, need_input_grad=True):
        if self._backward_fn is None:
            a, _, w = autodiff.trace_backward(ctx, d_outputs)
            return Grads(a[0], w)
        inputs, out = ctx
        return Grads(self._backward_fn(inputs, out, d_outputs))

    def compute_mask(self, inputs, mask=None):
        if callable(self._mask):
            return self._mask(inputs, mask)
        if self._mask is not None:
            return self._mask
        return mask

    def get_config(self):
        cfg = super().get_config()
        cfg.update(function=self.function, output_shape=self._output_shape,
                   arguments=self.arguments)
        return cfg

