"""Activation layers with parameters: LeakyReLU, PReLU, ELU, ReLU (``keras.layers``, Keras 3
arguments, defaults and math; gradients as TensorFlow's: 0 at the kinks unless stated)."""
import warnings

import numpy as np

from .. import backend, initializers
from ..engine.base import Grads, Layer
from ..errors import shape_error
from .convolutional import serialize_object

__all__ = ["LeakyReLU", "PReLU", "ELU", "ReLU"]


class _Elementwise(Layer):
    supports_masking = True

    def call(self, inputs):
        return self.forward(inputs)[0]

    def forward(self, inputs):
        x = np.asarray(inputs)
        return self._f(x).astype(x.dtype, copy=False), x

    def backward(self, ctx, d_outputs, need_input_grad=True):
        d = np.asarray(d_outputs)
        return Grads((d * self._df(ctx)).astype(d.dtype, copy=False) if need_input_grad else None)


class LeakyReLU(_Elementwise):
    """``f(x) = x if x > 0 else negative_slope * x`` (``keras.layers.LeakyReLU``).

    Args:
        negative_slope: float >= 0 (Keras 3 default 0.3). The Keras 2 name ``alpha`` is
            accepted with Keras' deprecation warning.

    Raises:
        ValueError: a None or negative slope.

    Example:
        >>> LeakyReLU()(np.array([-1.0, 2.0]))
        array([-0.3,  2. ], dtype=float32)
    """

    def __init__(self, negative_slope=0.3, **kwargs):
        if "alpha" in kwargs:
            negative_slope = kwargs.pop("alpha")
            warnings.warn("Argument `alpha` is deprecated. Use `negative_slope` instead.",
                          UserWarning, stacklevel=2)
        super().__init__(**kwargs)
        if negative_slope is None or negative_slope < 0:
            raise ValueError("The negative_slope value of a Leaky ReLU layer cannot be None or "
                             f"negative value. Expected a float. Received: "
                             f"negative_slope={negative_slope}")
        self.negative_slope = negative_slope

    def _f(self, x):
        return np.where(x > 0, x, x * np.asarray(self.negative_slope, x.dtype))

    def _df(self, x):
        return np.where(x > 0, 1.0, self.negative_slope).astype(x.dtype)

    def get_config(self):
        cfg = super().get_config()
        cfg["negative_slope"] = self.negative_slope
        return cfg


class ELU(_Elementwise):
    """``f(x) = x if x > 0 else alpha * (exp(x) - 1)`` (``keras.layers.ELU``, Clevert et al.
    2016).

    Args:
        alpha: scale of the negative part (default 1.0).

    Example:
        >>> ELU()(np.array([0.0, 1.0])).shape
        (2,)
    """

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = alpha

    def _f(self, x):
        return np.where(x > 0, x, self.alpha * np.expm1(np.minimum(x, 0)))

    def _df(self, x):
        return np.where(x > 0, 1.0, self.alpha * np.exp(np.minimum(x, 0))).astype(x.dtype)

    def get_config(self):
        cfg = super().get_config()
        cfg["alpha"] = self.alpha
        return cfg


class ReLU(_Elementwise):
    """Rectified linear unit with Keras' options (``keras.layers.ReLU``).

    ``f(x) = min(x, max_value)`` for ``x > threshold``, ``negative_slope * (x - threshold)``
    for ``x < threshold``, computed in Keras' order: ``where(x > threshold, x, 0)`` (relu6 or
    relu when ``threshold == 0``), clipped to `max_value`, minus ``negative_slope *
    relu(threshold - x)``.

    Args:
        max_value: float >= 0 or None (no upper bound).
        negative_slope: float >= 0.
        threshold: float >= 0.

    Raises:
        ValueError: a negative (or None) value.

    Example:
        >>> ReLU(max_value=1.0)(np.array([-1.0, 0.5, 3.0]))
        array([0. , 0.5, 1. ], dtype=float32)
    """

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        if max_value is not None and max_value < 0.0:
            raise ValueError("max_value of a ReLU layer cannot be a negative value. "
                             f"Received: max_value={max_value}")
        if negative_slope is None or negative_slope < 0.0:
            raise ValueError("negative_slope of a ReLU layer cannot be None or a negative "
                             f"value. Received: negative_slope={negative_slope}")
        if threshold is None or threshold < 0.0:
            raise ValueError("threshold of a ReLU layer cannot be None or a negative value. "
                             f"Received: threshold={threshold}")
        self.max_value = max_value
        self.negative_slope = negative_slope
        self.threshold = threshold

    def _leaky(self):
        return self.negative_slope != 0.0 and self.max_value is None and self.threshold == 0

    def _f(self, x):
        dt = x.dtype.type
        if self._leaky():
            return np.where(x > 0, x, x * dt(self.negative_slope))
        if self.threshold != 0:
            pos = np.where(x > dt(self.threshold), x, dt(0))
        else:
            pos = np.maximum(x, dt(0))
        if self.max_value is not None:
            pos = np.minimum(pos, dt(self.max_value))
        if self.negative_slope != 0.0:
            pos = pos - dt(self.negative_slope) * np.maximum(dt(self.threshold) - x, dt(0))
        return pos

    def _df(self, x):
        dt = x.dtype.type
        if self._leaky():
            return np.where(x > 0, 1.0, self.negative_slope).astype(x.dtype)
        # TensorFlow's gradients: relu 1 for x > 0, relu6 1 for 0 < x < 6, clip_by_value 1
        # inside [0, max_value], where() 1 on the kept side.
        if self.threshold != 0:
            g = x > dt(self.threshold)
            if self.max_value is not None:
                g &= x <= dt(self.max_value)
        elif self.max_value == 6:
            g = (x > 0) & (x < 6)
        else:
            g = x > 0
            if self.max_value is not None:
                g &= x <= dt(self.max_value)
        g = g.astype(x.dtype)
        if self.negative_slope != 0.0:
            g = g + dt(self.negative_slope) * (x < dt(self.threshold))
        return g

    def get_config(self):
        cfg = super().get_config()
        cfg.update(max_value=self.max_value, negative_slope=self.negative_slope,
                   threshold=self.threshold)
        return cfg


class PReLU(Layer):
    """Parametric ReLU (``keras.layers.PReLU``, He et al. 2015): ``f(x) = relu(x) - alpha *
    relu(-x)`` with a learned `alpha` per input position, shared over `shared_axes`.

    Args:
        alpha_initializer: Keras initializer (default ``"Zeros"``).
        alpha_regularizer, alpha_constraint: given to the weight (``add_weight``).
        shared_axes: int or list of ints (1-based, batch axis excluded), the axes along which
            alpha is shared, e.g. ``[1]`` for one alpha per feature of a `(B, T, F)` sequence.

    Call arguments:
        inputs: `(B, ...)`.

    Weights:
        ``alpha`` of shape ``input_shape[1:]`` with the shared axes set to 1.

    Raises:
        ShapeError: an unknown size on an axis that is not shared, a shared axis out of range,
            or a shape other than the built one.

    Example:
        >>> PReLU(shared_axes=[1])(np.zeros((2, 5, 3))).shape
        (2, 5, 3)
    """
    supports_masking = True

    def __init__(self, alpha_initializer="Zeros", alpha_regularizer=None, alpha_constraint=None,
                 shared_axes=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(alpha_initializer, str):
            alpha_initializer = backend.to_snake_case(alpha_initializer)
        self.alpha_initializer = initializers.get(alpha_initializer)
        self.alpha_regularizer = alpha_regularizer
        self.alpha_constraint = alpha_constraint
        if shared_axes is None:
            self.shared_axes = None
        elif not isinstance(shared_axes, (list, tuple)):
            self.shared_axes = [int(shared_axes)]
        else:
            self.shared_axes = [int(a) for a in shared_axes]

    def _param_shape(self, input_shape):
        shape = list(input_shape[1:])
        for a in self.shared_axes or []:
            if not 1 <= a < len(input_shape):
                raise shape_error(
                    self, "inputs", f"at least {a + 1} axes", input_shape,
                    message=(f"shared_axes={self.shared_axes} refers to axis {a}, but the "
                             f"inputs have axes 1..{len(input_shape) - 1} after the batch axis."))
            shape[a - 1] = 1
        return tuple(shape)

    def compute_output_shape(self, input_shape):
        if not isinstance(input_shape, tuple) or len(input_shape) < 2:
            raise shape_error(self, "inputs", ("batch", "..."), input_shape)
        shape = self._param_shape(input_shape)
        if any(s is None for s in shape):
            unknown = [i + 1 for i, s in enumerate(shape) if s is None]
            raise shape_error(
                self, "inputs", tuple(input_shape), input_shape,
                message=(f"axes {unknown} of `inputs` {tuple(input_shape)} have unknown sizes, "
                         f"but alpha needs one entry per position on every axis not shared."),
                hint=f"share alpha along them, e.g. PReLU(shared_axes={unknown}).")
        if self.built and shape != tuple(self.alpha.shape):
            raise shape_error(self, "inputs", ("batch",) + tuple(self.alpha.shape), input_shape,
                              "a layer instance keeps its weights; use a new PReLU.")
        return input_shape

    def build(self, input_shape):
        self.alpha = self.add_weight(name="alpha", shape=self._param_shape(input_shape),
                                     initializer=self.alpha_initializer,
                                     regularizer=self.alpha_regularizer,
                                     constraint=self.alpha_constraint)
        self.built = True

    def call(self, inputs):
        return self.forward(inputs)[0]

    def forward(self, inputs):
        x = np.asarray(inputs)
        neg = np.maximum(-x, 0)
        y = np.maximum(x, 0) - self.alpha.value * neg
        return y.astype(x.dtype, copy=False), (x, neg)

    def backward(self, ctx, d_outputs, need_input_grad=True):
        x, neg = ctx
        d = np.asarray(d_outputs)
        # Sum over the batch axis and the shared axes back to alpha's shape.
        axes = (0,) + tuple(a for a in range(1, x.ndim) if self.alpha.shape[a - 1] == 1
                            and x.shape[a] != 1)
        da = np.sum(-d * neg, axis=axes, keepdims=True).reshape(self.alpha.shape)
        dx = None
        if need_input_grad:
            dx = (d * np.where(x > 0, 1.0, np.where(x < 0, self.alpha.value, 0.0))).astype(
                d.dtype, copy=False)
        return Grads(dx, {self.alpha: da})

    def get_config(self):
        cfg = super().get_config()
        cfg.update(alpha_initializer=initializers.serialize(self.alpha_initializer),
                   alpha_regularizer=serialize_object(self.alpha_regularizer),
                   alpha_constraint=serialize_object(self.alpha_constraint),
                   shared_axes=self.shared_axes)
        return cfg
