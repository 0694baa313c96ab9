"""Weight and activity regularizers with Keras 3's names, formulas and configs (keras/src/regularizers).

A regularizer is a callable ``penalty = regularizer(x)`` on a NumPy array (a scalar of x's dtype)
with a ``gradient(x)`` (an array like x) so that training can differentiate it. Layers take them
as ``kernel_regularizer=``, ``bias_regularizer=``, ``embeddings_regularizer=`` (on a weight: the
penalty of every trainable weight is added to the training loss) and ``activity_regularizer=``
(on the layer's output: ``penalty(output) / batch_size`` is added, as Keras 3 does).

As Keras on TensorFlow, the factors are float32 constants cast to x's dtype, so a float64
penalty uses ``float64(float32(0.01))``, not ``0.01``::

    >>> import numpy as np
    >>> from attnlstm import regularizers
    >>> float(regularizers.L2(2.0)(np.ones((5, 5))))
    50.0
    >>> regularizers.get("l1").get_config()
    {'l1': 0.009999999776482582}

Source: ``keras/src/regularizers/regularizers.py`` and ``__init__.py`` (Keras 3.15.1).
"""
import math

import numpy as np

from ._identifiers import resolve

__all__ = ["Regularizer", "L1", "L2", "L1L2", "OrthogonalRegularizer", "get", "serialize",
           "deserialize"]

# Keras' fuzz factor (keras.config.epsilon()), used by the normalization of OrthogonalRegularizer.
EPSILON = 1e-7


def _kcast(value, dtype):
    """Keras' ``ops.cast(python_float, dtype)`` on TensorFlow: a float32 constant first."""
    return np.dtype(dtype).type(np.float32(value))


def _float_array(x):
    x = np.asarray(x)
    return x if x.dtype.kind == "f" else x.astype(np.float32)


class Regularizer:
    """Base class: a penalty ``__call__(x)`` and its gradient ``gradient(x)``.

    Subclass it for a custom penalty; define both methods and ``get_config`` (the constructor's
    keyword arguments). A plain function works for inference and for the loss value, but
    training needs ``gradient`` (attnlstm does not differentiate NumPy code).
    """

    def __call__(self, x):
        return np.asarray(0.0, _float_array(x).dtype)

    def gradient(self, x):
        """d penalty / d x, an array of x's shape and dtype."""
        return np.zeros_like(_float_array(x))

    def get_config(self):
        raise NotImplementedError(f"{self} does not implement get_config()")

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        try:
            cfg = self.get_config()
        except NotImplementedError:
            cfg = {}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in cfg.items())})"


class L1L2(Regularizer):
    """``l1 * sum(|x|) + l2 * sum(x**2)`` (``keras.regularizers.L1L2``; defaults 0, as Keras).

    Args:
        l1, l2: non-negative factors (None means 0).

    Raises:
        ValueError: a negative, infinite or non-numeric factor.
    """

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = validate_float_arg(0.0 if l1 is None else l1, "l1")
        self.l2 = validate_float_arg(0.0 if l2 is None else l2, "l2")

    def __call__(self, x):
        x = _float_array(x)
        out = x.dtype.type(0)
        if self.l1 != 0.0:
            out = out + _kcast(self.l1, x.dtype) * np.sum(np.abs(x))
        if self.l2 != 0.0:
            out = out + _kcast(self.l2, x.dtype) * np.sum(np.square(x))
        return out

    def gradient(self, x):
        x = _float_array(x)
        g = np.zeros_like(x)
        if self.l1 != 0.0:
            g += _kcast(self.l1, x.dtype) * np.sign(x)
        if self.l2 != 0.0:
            g += (2 * _kcast(self.l2, x.dtype)) * x
        return g

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(Regularizer):
    """``l1 * sum(|x|)`` (``keras.regularizers.L1``, string ``"l1"``); the gradient at 0 is 0.

    Args:
        l1: non-negative factor, default 0.01. Stored float32-rounded, as Keras stores it in a
            float32 tensor (``get_config()["l1"]`` is ``0.009999999776482582``).
    """

    def __init__(self, l1=0.01):
        l1 = validate_float_arg(0.01 if l1 is None else l1, "l1")
        self.l1 = float(np.float32(l1))

    def __call__(self, x):
        x = _float_array(x)
        return _kcast(self.l1, x.dtype) * np.sum(np.abs(x))

    def gradient(self, x):
        x = _float_array(x)
        return _kcast(self.l1, x.dtype) * np.sign(x)

    def get_config(self):
        return {"l1": self.l1}


class L2(Regularizer):
    """``l2 * sum(x**2)`` (``keras.regularizers.L2``, string ``"l2"``).

    Args:
        l2: non-negative factor, default 0.01.
    """

    def __init__(self, l2=0.01):
        self.l2 = validate_float_arg(0.01 if l2 is None else l2, "l2")

    def __call__(self, x):
        x = _float_array(x)
        return _kcast(self.l2, x.dtype) * np.sum(np.square(x))

    def gradient(self, x):
        x = _float_array(x)
        return (2 * _kcast(self.l2, x.dtype)) * x

    def get_config(self):
        return {"l2": self.l2}


class OrthogonalRegularizer(Regularizer):
    """Pushes the rows (or columns) of a rank-2 weight towards orthogonality
    (``keras.regularizers.OrthogonalRegularizer``)::

        u = rows of x, each scaled by min(1 / ||row||, 1 / epsilon)
        penalty = factor * 0.5 * sum_{i != j} |u_i . u_j| / (n (n - 1) / 2)

    Args:
        factor: non-negative float, default 0.01 (float32-rounded, as Keras).
        mode: ``"rows"`` or ``"columns"``.

    Raises:
        ValueError: an unknown mode, a negative factor; on call, an input that is not rank 2.
    """

    def __init__(self, factor=0.01, mode="rows"):
        validate_float_arg(factor, "factor")
        self.factor = float(np.float32(factor))
        if mode not in {"rows", "columns"}:
            raise ValueError('Invalid value for argument `mode`. Expected one of {"rows", '
                             f'"columns"}}. Received: mode={mode}')
        self.mode = mode

    def _rows(self, x):
        x = _float_array(x)
        if x.ndim != 2:
            raise ValueError(f"Inputs to OrthogonalRegularizer must have rank 2. Received: "
                             f"inputs.shape={x.shape}")
        return x if self.mode == "rows" else x.T

    def _parts(self, r):
        t = r.dtype.type
        sq = np.sum(np.square(r), axis=1, keepdims=True)
        with np.errstate(divide="ignore"):
            inv = np.minimum(1 / np.sqrt(sq), t(1.0 / EPSILON))      # Keras' normalize
        u = r * inv
        n = r.shape[0]
        off = 1 - np.eye(n, dtype=r.dtype)
        num_pairs = n * (n - 1.0) / 2.0
        return u, inv, off, num_pairs

    def __call__(self, x):
        r = self._rows(x)
        u, _, off, num_pairs = self._parts(r)
        p = np.matmul(u, u.T) * off
        t = r.dtype.type
        return t(_kcast(self.factor, r.dtype) * t(0.5) * np.sum(np.abs(p)) / t(num_pairs))

    def gradient(self, x):
        r = self._rows(x)
        u, inv, off, num_pairs = self._parts(r)
        t = r.dtype.type
        c = _kcast(self.factor, r.dtype) * t(0.5) / t(num_pairs)
        G = c * np.sign(np.matmul(u, u.T)) * off                      # d penalty / d (u u^T)
        du = np.matmul(G + G.T, u)
        # u = r / ||r|| where the norm exceeds epsilon (project out the radial part), else
        # u = r / epsilon (a constant scale).
        live = inv < t(1.0 / EPSILON)
        dr = np.where(live, (du - u * np.sum(u * du, axis=1, keepdims=True)) * inv, du * inv)
        dr = dr.astype(r.dtype, copy=False)
        return dr if self.mode == "rows" else dr.T

    def get_config(self):
        return {"factor": self.factor, "mode": self.mode}


def validate_float_arg(value, name):
    """A non-negative finite number as a float (Keras' check and message)."""
    if (not isinstance(value, (float, int, np.floating, np.integer)) or isinstance(value, bool)
            or math.isinf(value) or math.isnan(value) or value < 0):
        raise ValueError(f"Invalid value for argument {name}: expected a non-negative float. "
                         f"Received: {name}={value}")
    return float(value)


_CLASSES = (Regularizer, L1, L2, L1L2, OrthogonalRegularizer)
# Keras' lookup table: the class names and their snake_case forms (so "l1", "l2", "l1l2",
# "orthogonal_regularizer"; "l1_l2" is not one of them in Keras 3.15 either).
_BY_NAME = {c.__name__: c for c in _CLASSES}
_BY_NAME.update({"regularizer": Regularizer, "l1": L1, "l2": L2, "l1l2": L1L2,
                 "orthogonal_regularizer": OrthogonalRegularizer})


def serialize(regularizer):
    """Keras' serialized form: ``{"module", "class_name", "config", "registered_name"}``.

    None stays None; a plain function is serialized by its name.
    """
    if regularizer is None:
        return None
    if isinstance(regularizer, Regularizer) and type(regularizer) in _CLASSES:
        return {"module": "keras.regularizers", "class_name": type(regularizer).__name__,
                "config": regularizer.get_config(), "registered_name": None}
    if isinstance(regularizer, Regularizer):
        return {"module": type(regularizer).__module__, "class_name": type(regularizer).__name__,
                "config": regularizer.get_config(),
                "registered_name": type(regularizer).__name__}
    return getattr(regularizer, "__name__", repr(regularizer))


def deserialize(config, custom_objects=None):
    """A regularizer from :func:`serialize`'s dict (or Keras 2's ``{"class_name", "config"}``)."""
    objects = dict(_BY_NAME)
    objects.update(custom_objects or {})
    name = config.get("class_name")
    cls = objects.get(name) or objects.get(config.get("registered_name"))
    if cls is None:
        raise ValueError(f"Could not interpret regularizer identifier: {config}. Known "
                         f"regularizers: {sorted(_BY_NAME)} (pass custom_objects for others).")
    return cls.from_config(dict(config.get("config") or {}))


def get(identifier):
    """A regularizer from a Keras identifier (``keras.regularizers.get``).

    Args:
        identifier: None, a name (``"l1"``, ``"l2"``, ``"L1L2"``, ``"orthogonal_regularizer"``...:
            the class with its defaults), a config dict, a Regularizer instance or class, or a
            callable ``f(x) -> scalar``.

    Returns:
        The regularizer, or None.

    Raises:
        ValueError: an unknown name or an object that is not callable.
    """
    return resolve(identifier, _BY_NAME, deserialize, "regularizer")


# ---------------------------------------------------------------------------------------------
# Activity regularization (Layer.activity_regularizer)


def activity_penalty(regularizer, outputs):
    """Keras 3's activity loss of a layer call (``Layer.__call__``): the sum over every float
    output array of ``regularizer(output) / batch_size`` (0 for an empty batch)."""
    total = 0.0
    for x in _float_leaves(outputs):
        if x.ndim == 0:
            total += float(regularizer(x))
        elif x.shape[0]:
            total += float(regularizer(x) / x.dtype.type(x.shape[0]))
    return total


def activity_gradient(regularizer, outputs):
    """Gradient of :func:`activity_penalty` with the outputs' structure (None where no
    gradient: non-float outputs).

    Raises:
        ValueError: the regularizer has no ``gradient`` method.
    """
    if isinstance(outputs, (list, tuple)):
        return [activity_gradient(regularizer, o) for o in outputs]
    if outputs is None or np.asarray(outputs).dtype.kind != "f":
        return None
    x = np.asarray(outputs)
    g = gradient_of(regularizer, x, "activity_regularizer")
    if x.ndim:
        g = g / x.dtype.type(max(x.shape[0], 1))
    return g.astype(x.dtype, copy=False)


def _float_leaves(outputs):
    if isinstance(outputs, (list, tuple)):
        return [leaf for o in outputs for leaf in _float_leaves(o)]
    if outputs is None:
        return []
    x = np.asarray(outputs)
    return [x] if x.dtype.kind == "f" else []


def gradient_of(regularizer, x, what):
    """``regularizer.gradient(x)``, or a ValueError naming `what` when it has none."""
    fn = getattr(regularizer, "gradient", None)
    if fn is None:
        raise ValueError(
            f"The {what} {regularizer!r} has no `gradient(x)` method, so attnlstm cannot train "
            f"with it (it does not differentiate NumPy code). Use a built-in regularizer (L1, L2, "
            f"L1L2, OrthogonalRegularizer) or subclass attnlstm.regularizers.Regularizer and "
            f"define `__call__` and `gradient`.")
    return np.asarray(fn(x))


class ActivityContext:
    """What a recorded call of a layer with an activity regularizer keeps: the layer's own
    ``ctx``, its outputs, and whether the penalty's gradient was already added in backward."""

    __slots__ = ("ctx", "outputs", "regularizer", "done")

    def __init__(self, ctx, outputs, regularizer):
        self.ctx, self.outputs, self.regularizer, self.done = ctx, outputs, regularizer, False


def record_activity(layer, result, record):
    """Add the activity penalty of one call with ``layer.add_loss``; when recording, wrap the
    ctx so the layer's backward adds the penalty's gradient to the outputs' gradient."""
    out = result[0] if record else result
    reg = layer.activity_regularizer
    layer.add_loss(activity_penalty(reg, out))
    if not record:
        return result
    return out, ActivityContext(result[1], out, reg)


def _add_structure(a, b):
    if b is None:
        return a
    if isinstance(b, list):
        a = list(a) if isinstance(a, (list, tuple)) else [a]
        return [_add_structure(x, y) for x, y in zip(a, b)]
    return b if a is None else np.asarray(a) + b


def _sum_grads(a, b):
    """Sum of two Grads of the same call (inputs elementwise, weights per variable)."""
    if b.inputs is not None:
        a.inputs = b.inputs if a.inputs is None else _add_structure(a.inputs, b.inputs)
    for var, g in b.weights.items():
        a.weights[var] = a.weights[var] + g if var in a.weights else g
    return a


def _wrapped(fn, logits):
    def backward(self, ctx, d, *args, **kwargs):
        if not isinstance(ctx, ActivityContext):
            return fn(self, ctx, d, *args, **kwargs)
        inner, first = ctx.ctx, not ctx.done
        ctx.done = True
        if not first:
            return fn(self, inner, d, *args, **kwargs)
        d_act = activity_gradient(ctx.regularizer, ctx.outputs)
        if not logits:
            return fn(self, inner, _add_structure(d, d_act), *args, **kwargs)
        # backward_logits gets the gradient w.r.t. the pre-activations; the penalty's is
        # w.r.t. the outputs, so it goes through the layer's ordinary backward.
        return _sum_grads(fn(self, inner, d, *args, **kwargs),
                          self.backward(inner, d_act, *args, **kwargs))
    backward.__name__, backward.__qualname__ = fn.__name__, fn.__qualname__
    backward.__doc__, backward.__wrapped__ = fn.__doc__, fn
    backward._activity_wrapped = True
    return backward


def _unwrapping(fn):
    def method(self, ctx, *args, **kwargs):
        return fn(self, ctx.ctx if isinstance(ctx, ActivityContext) else ctx, *args, **kwargs)
    method.__name__, method.__qualname__ = fn.__name__, fn.__qualname__
    method.__doc__, method.__wrapped__ = fn.__doc__, fn
    method._activity_wrapped = True
    return method


def wrap_backward(cls):
    """Make `cls`'s own ``backward``/``backward_logits`` (and ``output_logits``, which reads a
    recorded ctx too) unwrap an :class:`ActivityContext` (called by
    ``Layer.__init_subclass__``; a layer's code never sees the wrapper)."""
    for name in ("backward", "backward_logits", "output_logits"):
        fn = cls.__dict__.get(name)
        if callable(fn) and not getattr(fn, "_activity_wrapped", False):
            setattr(cls, name, _unwrapping(fn) if name == "output_logits"
                    else _wrapped(fn, name == "backward_logits"))
