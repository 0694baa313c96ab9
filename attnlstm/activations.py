"""Activation functions by Keras name, as NumPy functions and as the C kernels' codes.

Keras 3 formulas: ``hard_sigmoid(x) = relu6(x + 3) / 6 = clip(x / 6 + 1/2, 0, 1)`` (not Keras 2's
``clip(0.2 x + 0.5, 0, 1)``); ``None`` means linear.
"""
import math

import numpy as np

from . import _core

# Codes shared with csrc/al_common.h (al_activation).
C_CODES = {
    "linear": _core.ACT_LINEAR,
    "tanh": _core.ACT_TANH,
    "sigmoid": _core.ACT_SIGMOID,
    "hard_sigmoid": _core.ACT_HARD_SIGMOID,
    "relu": _core.ACT_RELU,
}


def linear(x):
    return x


def tanh(x):
    return np.tanh(x)


def sigmoid(x):
    x = np.asarray(x)
    # exp of a non-positive number only: no overflow warnings for large |x|.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)


def hard_sigmoid(x):
    return np.clip(x / 6.0 + 0.5, 0.0, 1.0).astype(np.asarray(x).dtype, copy=False)


def relu(x):
    return np.maximum(x, 0)


def softmax(x, axis=-1):
    x = np.asarray(x)
    m = np.max(x, axis=axis, keepdims=True)
    e = np.exp(x - m)
    return e / np.sum(e, axis=axis, keepdims=True)


def softplus(x):
    return np.logaddexp(0, x).astype(np.asarray(x).dtype, copy=False)


def elu(x):
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0))).astype(np.asarray(x).dtype, copy=False)


def selu(x):
    alpha, scale = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
    return (scale * np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))).astype(
        np.asarray(x).dtype, copy=False)


def gelu(x):
    """Keras' default gelu, the exact erf form (approximate=False)."""
    x = np.asarray(x)
    erf = np.vectorize(math.erf, otypes=[np.float64])
    return (0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))).astype(x.dtype, copy=False)


def swish(x):
    return (x * sigmoid(x)).astype(np.asarray(x).dtype, copy=False)


_FUNCS = {
    "linear": linear, "tanh": tanh, "sigmoid": sigmoid, "hard_sigmoid": hard_sigmoid,
    "relu": relu, "softmax": softmax, "softplus": softplus, "elu": elu, "selu": selu,
    "gelu": gelu, "swish": swish, "silu": swish,
}


def get(identifier):
    """The activation function for a Keras name, ``None`` (linear) or a callable.

    Raises:
        ValueError: an unknown name, listing the known ones.
    """
    if identifier is None:
        return linear
    if callable(identifier):
        return identifier
    if isinstance(identifier, str) and identifier in _FUNCS:
        return _FUNCS[identifier]
    raise ValueError(
        f"Unknown activation {identifier!r}. Expected one of {sorted(_FUNCS)}, None or a "
        f"callable. Received: activation={identifier!r}")


def _gelu_grad(x, y, dy):
    xd = np.asarray(x, np.float64)
    erf = np.vectorize(math.erf, otypes=[np.float64])
    cdf = 0.5 * (1.0 + erf(xd / np.sqrt(2.0)))
    pdf = np.exp(-0.5 * xd * xd) / np.sqrt(2.0 * np.pi)
    return dy * (cdf + xd * pdf)


def _selu_grad(x, y, dy):
    alpha, scale = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
    return np.where(x > 0, scale * dy, dy * (y + scale * alpha))


def _swish_grad(x, y, dy):
    s = sigmoid(x)
    return dy * (s + x * s * (1 - s))


# d(loss)/dx from x, y = f(x) and dy = d(loss)/dy; the derivatives TensorFlow uses (relu: 0 at
# 0; hard_sigmoid = relu6(x + 3) / 6: 1/6 strictly inside (-3, 3)).
_GRADS = {
    "linear": lambda x, y, dy: dy,
    "tanh": lambda x, y, dy: dy * (1 - y * y),
    "sigmoid": lambda x, y, dy: dy * y * (1 - y),
    "hard_sigmoid": lambda x, y, dy: np.where((x > -3) & (x < 3), dy / 6.0, 0),
    "relu": lambda x, y, dy: np.where(x > 0, dy, 0),
    "softmax": lambda x, y, dy: y * (dy - np.sum(dy * y, axis=-1, keepdims=True)),
    "softplus": lambda x, y, dy: dy * sigmoid(x),
    "elu": lambda x, y, dy: np.where(x > 0, dy, dy * (y + 1)),
    "selu": _selu_grad,
    "gelu": _gelu_grad,
    "swish": _swish_grad,
    "silu": _swish_grad,
}


def has_gradient(identifier):
    """Whether :func:`backward` knows the derivative of this activation."""
    return serialize(identifier) in _GRADS and get(serialize(identifier)) is get(identifier)


def backward(identifier, x, y, dy):
    """Gradient w.r.t. the activation's input: ``dy * f'(x)`` (softmax: over the last axis).

    Args:
        identifier: the activation (name, None or one of this module's functions).
        x: its input; y: its output (same shape); dy: gradient w.r.t. y.

    Returns:
        An array of x's shape and dtype.

    Raises:
        NotImplementedError: a custom callable (its derivative is unknown).
    """
    name = serialize(identifier)
    if not has_gradient(identifier):
        raise NotImplementedError(
            f"No gradient for the custom activation {name!r}; use one of {sorted(_GRADS)} to "
            f"train through it.")
    dtype = np.asarray(dy).dtype
    return np.asarray(_GRADS[name](x, y, dy), dtype=dtype)


def serialize(identifier):
    """The Keras name of an activation (for get_config)."""
    if identifier is None:
        return "linear"
    if isinstance(identifier, str):
        return identifier
    for name, fn in _FUNCS.items():
        if fn is identifier:
            return name
    return getattr(identifier, "__name__", repr(identifier))


def c_code(identifier, arg="activation", layer=None):
    """The C kernels' code of an activation that the LSTM kernel implements.

    Raises:
        ValueError: an activation the C kernel does not implement.
    """
    name = serialize(identifier)
    if name not in C_CODES:
        who = f"{type(layer).__name__} '{layer.name}': " if layer is not None else ""
        raise ValueError(
            f"{who}`{arg}` must be one of {sorted(C_CODES)} for the C LSTM kernel. "
            f"Received: {arg}={identifier!r}")
    return C_CODES[name]
