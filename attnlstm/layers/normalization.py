"""LayerNormalization and BatchNormalization (Keras 3 arguments, weights, math and masks).

Both are vectorised NumPy over the reduction axes; the backward is the closed form of the
normalisation's Jacobian (no loops), checked by finite differences and against TensorFlow.
"""
import warnings

import numpy as np

from .. import initializers
from ..engine.base import Grads, Layer
from ..errors import format_shape, shape_error
from .convolutional import serialize_object

__all__ = ["LayerNormalization", "BatchNormalization"]

# Keras' backend.epsilon(): added to the masked count in BatchNormalization's masked moments.
KERAS_EPSILON = 1e-7


def _axis_error(layer, axis, input_shape):
    return shape_error(layer, "inputs", f"at least {abs(axis) + (0 if axis < 0 else 1)} axes",
                       input_shape,
                       message=(f"`axis={axis}` is out of bounds for inputs of shape "
                                f"{format_shape(input_shape)}. Received: axis={layer.axis}"))


class LayerNormalization(Layer):
    """Normalises each sample over `axis` (``keras.layers.LayerNormalization``, Ba et al. 2016).

    ``y = (x - mean) / sqrt(var + epsilon) * gamma + beta``, mean and (biased) variance taken
    over the `axis` axes of each sample. With the deprecated ``rms_scaling=True`` (kept for
    Keras parity, with Keras' warning) ``y = x / sqrt(var + epsilon) * gamma``.

    Args:
        axis: int or list of ints, the normalised axes (default the last).
        epsilon: added to the variance (Keras 3 default 1e-3).
        center: add the learned offset `beta`.
        scale: multiply by the learned `gamma`.
        beta_initializer, gamma_initializer: Keras initializers ("zeros", "ones").
        beta_regularizer, gamma_regularizer, beta_constraint, gamma_constraint: given to the
            weights (``add_weight``).

    Call arguments:
        inputs: any shape, e.g. `(B, T, D)`.

    Returns:
        Same shape; the input mask passes through (masked steps are normalised too, as Keras).

    Weights:
        ``gamma`` then ``beta``, each of shape ``tuple(input_shape[a] for a in sorted(axis))``.

    Raises:
        TypeError: `axis` not an int or a list of ints.
        ShapeError: an axis out of range, an unknown size on a normalised axis, or a size
            other than the built one.

    Example:
        >>> LayerNormalization()(np.arange(6.0).reshape(2, 3)).shape
        (2, 3)
    """
    supports_masking = True

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", beta_regularizer=None, gamma_regularizer=None,
                 beta_constraint=None, gamma_constraint=None, **kwargs):
        rms_scaling = kwargs.pop("rms_scaling", False)
        if rms_scaling:
            warnings.warn(
                "You passed `rms_scaling=True`, which is deprecated. This argument incorrectly "
                "scales the input by the variance, not the root mean square. To correctly use "
                "RMS Normalization, please use `keras.layers.RMSNormalization` instead.",
                UserWarning, stacklevel=2)
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)) and all(
                isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axis):
            self.axis = [int(a) for a in axis]
        elif isinstance(axis, (int, np.integer)) and not isinstance(axis, bool):
            self.axis = int(axis)
        else:
            raise TypeError("Expected an int or a list/tuple of ints for the argument 'axis', "
                            f"but received: {axis!r}")
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.rms_scaling = bool(rms_scaling)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = beta_regularizer
        self.gamma_regularizer = gamma_regularizer
        self.beta_constraint = beta_constraint
        self.gamma_constraint = gamma_constraint

    def _axes(self):
        return list(self.axis) if isinstance(self.axis, list) else [self.axis]

    def compute_output_shape(self, input_shape):
        if not isinstance(input_shape, tuple):
            raise shape_error(self, "inputs", "one tensor", input_shape)
        n = len(input_shape)
        for a in self._axes():
            if not -n <= a < n:
                raise _axis_error(self, a, input_shape)
        axes = sorted(self._axes())
        shape = tuple(input_shape[a] for a in axes)
        if (self.scale or self.center or self.rms_scaling) and any(s is None for s in shape):
            raise shape_error(self, "inputs", tuple(input_shape), input_shape,
                              message=(f"the normalised axes {axes} of inputs of shape "
                                       f"{format_shape(input_shape)} must have known sizes "
                                       f"(gamma and beta have one entry per position)."))
        if self.built:
            w = self.gamma if self.gamma is not None else self.beta
            if w is not None and tuple(w.shape) != shape:
                raise shape_error(
                    self, "inputs", tuple(input_shape), input_shape,
                    message=(f"the normalised axes {axes} of `inputs` have sizes "
                             f"{format_shape(shape)}, but the layer was built for "
                             f"{format_shape(tuple(w.shape))}."),
                    hint="a layer instance keeps its weights; use a new LayerNormalization.")
        return input_shape

    def build(self, input_shape):
        if isinstance(self.axis, list):
            self.axis = sorted(self.axis)
            shape = tuple(input_shape[a] for a in self.axis)
        else:
            shape = (input_shape[self.axis],)
            self.axis = [self.axis]
        self.gamma = self.add_weight(name="gamma", shape=shape,
                                     initializer=self.gamma_initializer,
                                     regularizer=self.gamma_regularizer,
                                     constraint=self.gamma_constraint) \
            if self.scale or self.rms_scaling else None
        self.beta = self.add_weight(name="beta", shape=shape, initializer=self.beta_initializer,
                                    regularizer=self.beta_regularizer,
                                    constraint=self.beta_constraint) \
            if self.center and not self.rms_scaling else None
        self.built = True

    def _broadcast_shape(self, x):
        # Keras reshapes (not transposes) gamma/beta to this shape.
        shape = [1] * x.ndim
        for a in self.axis:
            shape[a] = x.shape[a]
        return shape

    def call(self, inputs):
        return self.forward(inputs)[0]

    def forward(self, inputs):
        x = np.asarray(inputs)
        red = tuple(a % x.ndim for a in self.axis)
        bshape = self._broadcast_shape(x)
        g = self.gamma.value.reshape(bshape) if self.gamma is not None else None
        mean = x.mean(axis=red, keepdims=True)
        xc = x - mean
        var = np.mean(xc * xc, axis=red, keepdims=True)
        inv = (1.0 / np.sqrt(var + self.epsilon)).astype(x.dtype)
        if self.rms_scaling:
            xhat = x * inv
            y = xhat * g if g is not None else xhat
        else:
            xhat = xc * inv
            y = xhat * g if g is not None else xhat
            if self.beta is not None:
                y = y + self.beta.value.reshape(bshape)
        return y.astype(x.dtype, copy=False), (x, xc, xhat, inv, red)

    def backward(self, ctx, d_outputs, need_input_grad=True):
        x, xc, xhat, inv, red = ctx
        dy = np.asarray(d_outputs)
        keep = tuple(a for a in range(x.ndim) if a not in red)
        weights = {}
        if self.gamma is not None:
            weights[self.gamma] = np.sum(dy * xhat, axis=keep, keepdims=True).reshape(
                self.gamma.shape)
        if self.beta is not None:
            weights[self.beta] = np.sum(dy, axis=keep, keepdims=True).reshape(self.beta.shape)
        if not need_input_grad:
            return Grads(None, weights)
        u = dy * self.gamma.value.reshape(self._broadcast_shape(x)) if self.gamma is not None \
            else dy
        if self.rms_scaling:
            dx = inv * u - inv ** 3 * xc * np.mean(u * x, axis=red, keepdims=True)
        else:
            dx = inv * (u - np.mean(u, axis=red, keepdims=True)
                        - xhat * np.mean(u * xhat, axis=red, keepdims=True))
        return Grads(dx.astype(x.dtype, copy=False), weights)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(
            axis=self.axis, epsilon=self.epsilon, center=self.center, scale=self.scale,
            rms_scaling=self.rms_scaling,
            beta_initializer=initializers.serialize(self.beta_initializer),
            gamma_initializer=initializers.serialize(self.gamma_initializer),
            beta_regularizer=serialize_object(self.beta_regularizer),
            gamma_regularizer=serialize_object(self.gamma_regularizer),
            beta_constraint=serialize_object(self.beta_constraint),
            gamma_constraint=serialize_object(self.gamma_constraint))
        return cfg


class BatchNormalization(Layer):
    """Normalises each channel over the batch (``keras.layers.BatchNormalization``, Ioffe &
    Szegedy 2015).

    Training (``fit``, or ``training=True``, and ``layer.trainable``): mean and biased variance
    over every axis but `axis` (with a mask, over the unmasked steps only: ``sum(m*x) /
    (sum(m) + 1e-7)``, as Keras), and the moving statistics are updated in the forward pass,
    ``moving = moving * momentum + batch * (1 - momentum)``. Inference (``predict``, or a
    non-trainable layer): the moving statistics. Then ``y = (x - mean) / sqrt(var + epsilon) *
    gamma + beta``.

    Args:
        axis: the channel axis (int, default -1).
        momentum: of the moving statistics (0.99).
        epsilon: added to the variance (1e-3).
        center, scale: learn `beta` / `gamma`.
        beta_initializer, gamma_initializer, moving_mean_initializer,
            moving_variance_initializer: Keras initializers ("zeros", "ones", "zeros", "ones").
        beta_regularizer, gamma_regularizer, beta_constraint, gamma_constraint: given to the
            weights (``add_weight``).
        synchronized: accepted as Keras; attnlstm runs on one process, where synchronised and
            local statistics are the same.
        renorm, renorm_clipping, renorm_momentum: batch renormalisation is not implemented;
            ``renorm=True`` raises ValueError (without it Keras ignores the other two as well).

    Call arguments:
        inputs: `(B, ..., C)` (channels on `axis`).
        training: bool.
        mask: `inputs.shape[:-1]` booleans or None (used for the batch statistics in training,
            as Keras 3); the mask passes through.

    Weights:
        ``gamma``, ``beta`` (trainable), ``moving_mean``, ``moving_variance`` (non-trainable),
        each `(C,)`.

    Raises:
        ValueError: ``renorm=True``.
        ShapeError: `axis` out of range, an unknown or changed channel size, a mask whose
            shape is not the inputs' without the last axis.

    Example:
        >>> BatchNormalization()(np.ones((4, 3)), training=True).shape
        (4, 3)
    """
    supports_masking = True

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, renorm=False, renorm_clipping=None, renorm_momentum=0.99,
                 synchronized=False, **kwargs):
        super().__init__(**kwargs)
        if renorm:
            raise ValueError("BatchNormalization: batch renormalisation is not implemented in "
                             "attnlstm. Received: renorm=True")
        self.axis = int(axis)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.beta_regularizer = beta_regularizer
        self.gamma_regularizer = gamma_regularizer
        self.beta_constraint = beta_constraint
        self.gamma_constraint = gamma_constraint
        self.renorm = False
        self.renorm_clipping = renorm_clipping
        self.renorm_momentum = renorm_momentum
        self.synchronized = bool(synchronized)
        self.gamma = self.beta = self.moving_mean = self.moving_variance = None

    def compute_output_shape(self, input_shape):
        if not isinstance(input_shape, tuple):
            raise shape_error(self, "inputs", "one tensor", input_shape)
        n = len(input_shape)
        if not -n <= self.axis < n:
            raise _axis_error(self, self.axis, input_shape)
        c = input_shape[self.axis]
        want = ["batch"] + ["..."] * (n - 1)
        if c is None:
            want[self.axis] = "channels"
            raise shape_error(self, "inputs", tuple(want), input_shape,
                              f"the channel axis (axis={self.axis}) must have a known size.")
        if self.built and c != self.moving_mean.shape[0]:
            want[self.axis] = self.moving_mean.shape[0]
            raise shape_error(
                self, "inputs", tuple(want), input_shape,
                f"this BatchNormalization was built for {self.moving_mean.shape[0]} channels; "
                f"a layer instance keeps its weights, so use a new BatchNormalization.")
        return input_shape

    def validate_call(self, input_shape, **kwarg_shapes):
        m = kwarg_shapes.get("mask")
        if m is None or not isinstance(input_shape, tuple):
            return
        m = tuple(m)
        ok = len(m) == len(input_shape) - 1 and all(
            a is None or b is None or a == b for a, b in zip(m, input_shape[:-1]))
        if not ok:
            raise shape_error(self, "mask", tuple(input_shape[:-1]), m,
                              "The mask provided should be one dimension less than the inputs "
                              "(Keras expands it over the last axis).")

    def build(self, input_shape):
        shape = (input_shape[self.axis],)
        if self.scale:
            self.gamma = self.add_weight(name="gamma", shape=shape,
                                         initializer=self.gamma_initializer,
                                         regularizer=self.gamma_regularizer,
                                         constraint=self.gamma_constraint)
        if self.center:
            self.beta = self.add_weight(name="beta", shape=shape,
                                        initializer=self.beta_initializer,
                                        regularizer=self.beta_regularizer,
                                        constraint=self.beta_constraint)
        self.moving_mean = self.add_weight(name="moving_mean", shape=shape,
                                           initializer=self.moving_mean_initializer,
                                           trainable=False)
        self.moving_variance = self.add_weight(name="moving_variance", shape=shape,
                                               initializer=self.moving_variance_initializer,
                                               trainable=False)
        self.built = True

    def call(self, inputs, training=False, mask=None):
        return self.forward(inputs, training, mask)[0]

    def forward(self, inputs, training=False, mask=None):
        x = np.asarray(inputs)
        nd = x.ndim
        axis = self.axis % nd
        red = tuple(a for a in range(nd) if a != axis)
        bshape = [1] * nd
        bshape[axis] = x.shape[axis]
        batch = bool(training) and self.trainable
        m = c = None
        if batch:
            if mask is None:
                c = np.asarray(np.prod([x.shape[a] for a in red]), x.dtype)
                mean = x.mean(axis=red, keepdims=True)
                xc = x - mean
                var = np.mean(xc * xc, axis=red, keepdims=True)
            else:
                m = np.broadcast_to(np.asarray(mask, bool)[..., None], x.shape).astype(x.dtype)
                c = np.sum(m, axis=red, keepdims=True) + np.asarray(KERAS_EPSILON, x.dtype)
                mean = np.sum(m * x, axis=red, keepdims=True) / c
                xc = x - mean
                var = np.sum(m * xc * xc, axis=red, keepdims=True) / c
            mom = np.asarray(self.momentum, x.dtype)
            self.moving_mean.assign(self.moving_mean.value * mom
                                    + mean.reshape(-1) * (1 - mom))
            self.moving_variance.assign(self.moving_variance.value * mom
                                        + var.reshape(-1) * (1 - mom))
        else:
            mean = self.moving_mean.value.reshape(bshape)
            var = self.moving_variance.value.reshape(bshape)
            xc = x - mean
        inv = (1.0 / np.sqrt(var + np.asarray(self.epsilon, x.dtype))).astype(x.dtype)
        xhat = xc * inv
        y = xhat * self.gamma.value.reshape(bshape) if self.gamma is not None else xhat
        if self.beta is not None:
            y = y + self.beta.value.reshape(bshape)
        return y.astype(x.dtype, copy=False), {"xc": xc, "xhat": xhat, "inv": inv, "red": red,
                                               "bshape": bshape, "batch": batch, "m": m, "c": c}

    def backward(self, ctx, d_outputs, need_input_grad=True):
        dy = np.asarray(d_outputs)
        red, xhat, inv, xc = ctx["red"], ctx["xhat"], ctx["inv"], ctx["xc"]
        weights = {}
        if self.gamma is not None:
            weights[self.gamma] = np.sum(dy * xhat, axis=red)
        if self.beta is not None:
            weights[self.beta] = np.sum(dy, axis=red)
        if not need_input_grad:
            return Grads(None, weights)
        u = dy * self.gamma.value.reshape(ctx["bshape"]) if self.gamma is not None else dy
        if not ctx["batch"]:
            return Grads((u * inv).astype(dy.dtype, copy=False), weights)
        # y = (x - mean) * inv: direct term, through the mean, and through the variance
        # (whose own dependence on the mean vanishes without a mask).
        m, c = ctx["m"], ctx["c"]
        d_mean = -inv * np.sum(u, axis=red, keepdims=True)
        d_var = -0.5 * inv ** 3 * np.sum(u * xc, axis=red, keepdims=True)
        if m is None:
            dx = inv * u + d_mean / c + d_var * 2.0 * xc / c
        else:
            s_m = np.sum(m * xc, axis=red, keepdims=True)
            dx = inv * u + m * d_mean / c + d_var * (2.0 * m * xc / c - 2.0 * m * s_m / c ** 2)
        return Grads(dx.astype(dy.dtype, copy=False), weights)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(
            axis=self.axis, momentum=self.momentum, epsilon=self.epsilon, center=self.center,
            scale=self.scale,
            beta_initializer=initializers.serialize(self.beta_initializer),
            gamma_initializer=initializers.serialize(self.gamma_initializer),
            moving_mean_initializer=initializers.serialize(self.moving_mean_initializer),
            moving_variance_initializer=initializers.serialize(self.moving_variance_initializer),
            beta_regularizer=serialize_object(self.beta_regularizer),
            gamma_regularizer=serialize_object(self.gamma_regularizer),
            beta_constraint=serialize_object(self.beta_constraint),
            gamma_constraint=serialize_object(self.gamma_constraint),
            synchronized=self.synchronized, renorm=self.renorm,
            renorm_clipping=self.renorm_clipping, renorm_momentum=self.renorm_momentum)
        return cfg
