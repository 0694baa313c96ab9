"""Losses with Keras 3's math, reductions and masking, plus their exact gradients, in NumPy.

``loss(y_true, y_pred, sample_weight=None, mask=None)`` returns the same scalar as Keras 3.15.1's
``Loss.__call__``; ``loss.value_and_grad(...)`` also returns d(loss)/d(y_pred), with
TensorFlow's conventions where the math has kinks (``clip_by_value`` passes the gradient only
inside ``[eps, 1 - eps]``, ``|x|`` has gradient ``sign(x)``)::

    >>> import numpy as np
    >>> from attnlstm import losses
    >>> bce = losses.BinaryCrossentropy()
    >>> value, grad = bce.value_and_grad(np.array([[1.0], [0.0]]), np.array([[0.8], [0.4]]))
    >>> round(value, 5), grad.shape
    (0.36698, (2, 1))

Computation runs in y_pred's float dtype (float32 or float64; other dtypes use floatx()),
unless the loss has an explicit ``dtype``. Keras always computes in floatx().

Reductions (Keras' ``reduce_weighted_values``): ``"sum_over_batch_size"`` (default) and
``"mean"`` divide the weighted sum by the number of loss values (a mask re-weights valid entries by
``total / valid``, so the result is the mean over valid entries); ``"sum"`` sums;
``"mean_with_sample_weight"`` divides by the sum of the weights; ``"none"``/``None`` return the
per-sample values.

A note for training loops: in ``Model.fit``/``evaluate`` on the TensorFlow backend, Keras
computes BinaryCrossentropy / CategoricalCrossentropy / SparseCategoricalCrossentropy with
``from_logits=False`` from the *logits* of a final sigmoid / softmax activation (the output
tensor carries ``_keras_logits``), so no eps-clipping happens there. Use
:meth:`Loss.logits_loss` to get the equivalent loss on the pre-activation values.

Source: ``keras/src/losses/{loss,losses}.py`` and ``keras/src/backend/tensorflow/nn.py``.
"""
import numpy as np

from . import backend
from .errors import shape_error

__all__ = ["Loss", "MeanSquaredError", "MeanAbsoluteError", "Huber", "BinaryCrossentropy",
           "CategoricalCrossentropy", "SparseCategoricalCrossentropy", "get", "serialize",
           "deserialize", "validate_target", "squeeze_or_expand_to_same_rank",
           "reduce_weighted_values", "EPSILON"]

#: Keras' ``backend.epsilon()``: probabilities are clipped to ``[EPSILON, 1 - EPSILON]``.
EPSILON = 1e-7

_REDUCTIONS = ("sum_over_batch_size", "sum", None, "none", "mean", "mean_with_sample_weight")


def standardize_reduction(reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError("Invalid value for argument `reduction`. Expected one of "
                         f"{set(_REDUCTIONS)}. Received: reduction={reduction}")
    return reduction


def squeeze_or_expand_to_same_rank(x1, x2, expand_rank_1=True):
    """Keras' rule: if ranks differ by one and the longer has a last axis of 1, squeeze it
    (or, when the shorter is rank 1, expand the shorter). Otherwise unchanged."""
    r1, r2 = x1.ndim, x2.ndim
    if r1 == r2:
        return x1, x2
    if r1 == r2 + 1 and x1.shape[-1] == 1:
        if r2 == 1 and expand_rank_1:
            x2 = x2[..., None]
        else:
            x1 = x1[..., 0]
    if r2 == r1 + 1 and x2.shape[-1] == 1:
        if r1 == 1 and expand_rank_1:
            x1 = x1[..., None]
        else:
            x2 = x2[..., 0]
    return x1, x2


def _unbroadcast(grad, shape):
    """Sum ``grad`` down to ``shape`` (the adjoint of NumPy broadcasting)."""
    if grad.shape == tuple(shape):
        return grad
    nlead = grad.ndim - len(shape)
    if nlead > 0:
        grad = grad.sum(axis=tuple(range(nlead)))
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


def _merge_weights(values, sample_weight, mask, reduction, dtype):
    """Keras' apply_mask + squeeze_or_expand: the weights that multiply ``values`` (or None)
    and values reshaped to match them."""
    t = np.dtype(dtype).type
    sw = None if sample_weight is None else np.asarray(sample_weight, dtype=dtype)
    if mask is not None:
        mask = np.asarray(mask)
        if reduction in ("mean", "sum_over_batch_size"):
            total = t(mask.size)
            valid = np.sum(mask.astype(dtype))
            mask_weight = total / valid if valid != 0 else t(0)
            float_mask = np.where(mask.astype(bool), mask_weight, t(0)).astype(dtype)
        else:
            float_mask = mask.astype(dtype)
        if sw is not None:
            float_mask, sw = squeeze_or_expand_to_same_rank(float_mask, sw)
            sw = sw * float_mask
        else:
            sw = float_mask
    if sw is not None:
        values, sw = squeeze_or_expand_to_same_rank(values, sw)
    return values, sw


def reduce_weighted_values(values, sample_weight=None, mask=None,
                           reduction="sum_over_batch_size", dtype=None, return_grad=False):
    """Keras' ``reduce_weighted_values``: weight ``values`` and reduce them.

    Returns the reduced value (a NumPy scalar, or the weighted values for ``"none"``); with
    ``return_grad=True`` a pair ``(value, d_value/d_values)`` (gradient shaped like ``values``).
    """
    reduction = standardize_reduction(reduction)
    values = np.asarray(values, dtype=dtype)
    dtype = values.dtype
    orig_shape = values.shape
    values, sw = _merge_weights(values, sample_weight, mask, reduction, dtype)
    weighted = values if sw is None else values * sw
    if reduction is None or reduction == "none" or weighted.shape in ((), (0,)):
        if return_grad:
            if weighted.shape == ():
                g = np.ones((), dtype) if sw is None else np.broadcast_to(sw, ()).astype(dtype)
                return weighted, _unbroadcast(np.asarray(g), orig_shape)
            raise ValueError("A gradient needs a scalar loss; reduction='none' gives "
                             f"per-sample values of shape {weighted.shape}.")
        return weighted
    loss = np.sum(weighted)
    scale = dtype.type(1)
    if reduction in ("sum_over_batch_size", "mean", "mean_with_sample_weight"):
        if reduction == "mean_with_sample_weight" and sw is not None:
            divisor = np.sum(sw).astype(dtype)
        else:
            divisor = dtype.type(weighted.size)
        if divisor != 0:
            loss = loss / divisor
            scale = dtype.type(1) / divisor
        else:
            loss = dtype.type(0)
            scale = dtype.type(0)
    if not return_grad:
        return loss
    d_weighted = np.full(weighted.shape, scale, dtype)
    d_values = d_weighted if sw is None else d_weighted * sw
    d_values = _unbroadcast(d_values, values.shape).reshape(orig_shape)
    return loss, d_values


class Loss:
    """Base class of losses (Keras 3's ``keras.losses.Loss`` contract), with gradients.

    Subclass it and implement either

    - ``call(y_true, y_pred) -> values``: per-sample losses (e.g. shape ``(B,)`` for
      ``(B, D)`` outputs). Enough for ``__call__`` (evaluation and metrics), or
    - ``call_and_grad(y_true, y_pred) -> (values, backward)`` where ``backward(d_values)``
      returns d(sum(values * d_values))/d(y_pred), shaped like ``y_pred``. Needed for training
      (``value_and_grad``); ``call`` then comes for free.

    Both receive ``y_true`` and ``y_pred`` as arrays of the loss dtype, unchanged in shape.

    Args:
        name: str; default the snake-case class name.
        reduction: ``"sum_over_batch_size"`` (default), ``"sum"``, ``"mean"``,
            ``"mean_with_sample_weight"``, ``"none"`` or None.
        dtype: float dtype of the computation, or None for y_pred's float dtype.

    Raises:
        ValueError: an unknown reduction.
    """

    def __init__(self, name=None, reduction="sum_over_batch_size", dtype=None):
        self.name = name or backend.to_snake_case(type(self).__name__)
        self.reduction = standardize_reduction(reduction)
        self.dtype = None if dtype is None else backend.standardize_dtype(dtype)

    # ---- what subclasses implement -----------------------------------------------------------

    def call(self, y_true, y_pred):
        if type(self).call_and_grad is not Loss.call_and_grad:
            return self.call_and_grad(y_true, y_pred)[0]
        raise NotImplementedError(f"{type(self).__name__} must implement `call(y_true, y_pred)` "
                                  "(per-sample loss values).")

    def call_and_grad(self, y_true, y_pred):
        raise NotImplementedError(
            f"{type(self).__name__} implements only `call`, so it can be evaluated but not "
            "differentiated. To train with it, implement `call_and_grad(y_true, y_pred)` "
            "returning `(values, backward)`, where `backward(d_values)` gives the gradient with "
            "respect to y_pred.")

    # Built-in losses override this: (values, out_mask, backward or None).
    def _forward(self, y_true, y_pred, need_grad):
        if need_grad:
            values, backward = self.call_and_grad(y_true, y_pred)
            return np.asarray(values), None, backward
        return np.asarray(self.call(y_true, y_pred)), None, None

    # ---- public API --------------------------------------------------------------------------

    def _convert(self, y_true, y_pred):
        y_pred = np.asarray(y_pred)
        dtype = self.dtype
        if dtype is None:
            dtype = y_pred.dtype if y_pred.dtype in (np.float32, np.float64) else backend.floatx()
        return np.asarray(y_true, dtype=dtype), np.asarray(y_pred, dtype=dtype)

    def _evaluate(self, y_true, y_pred, sample_weight, mask, need_grad):
        y_pred_in = np.asarray(y_pred)
        y_true, y_pred = self._convert(y_true, y_pred)
        values, out_mask, backward = self._forward(y_true, y_pred, need_grad)
        values = np.asarray(values, dtype=y_pred.dtype)
        if mask is not None and out_mask is not None:
            mask = np.logical_and(mask, out_mask)
        elif out_mask is not None:
            mask = out_mask
        if not need_grad:
            out = reduce_weighted_values(values, sample_weight, mask, self.reduction,
                                         y_pred.dtype)
            return float(out) if np.ndim(out) == 0 else out
        value, d_values = reduce_weighted_values(values, sample_weight, mask, self.reduction,
                                                 y_pred.dtype, return_grad=True)
        grad = np.asarray(backward(d_values.astype(y_pred.dtype)), dtype=y_pred.dtype)
        grad = _unbroadcast(grad, y_pred.shape)
        if y_pred_in.dtype in (np.float32, np.float64):
            grad = grad.astype(y_pred_in.dtype, copy=False)
        return float(value), np.ascontiguousarray(grad)

    def __call__(self, y_true, y_pred, sample_weight=None, mask=None):
        """The reduced loss (a float; per-sample values for reduction ``"none"``).

        Args:
            y_true: targets, broadcast-compatible with ``y_pred`` as in Keras.
            y_pred: model outputs, e.g. ``(B, C)`` or ``(B, T, C)``.
            sample_weight: None, or weights broadcastable to the per-sample values (e.g.
                ``(B,)``, or ``(B, T)`` for sequence outputs).
            mask: None, or a bool mask shaped like the per-sample values (e.g. ``(B, T)`` for a
                masked sequence output); masked entries count neither in the sum nor in the
                denominator.
        """
        return self._evaluate(y_true, y_pred, sample_weight, mask, need_grad=False)

    def value_and_grad(self, y_true, y_pred, sample_weight=None, mask=None):
        """``(value, d_value/d_y_pred)``: the float of ``__call__`` and its gradient, shaped and
        typed like ``y_pred``.

        Raises:
            NotImplementedError: a subclass that implements only ``call``.
            ValueError: reduction ``"none"`` (no scalar to differentiate).
        """
        return self._evaluate(y_true, y_pred, sample_weight, mask, need_grad=True)

    def logits_loss(self):
        """The loss Keras' TensorFlow backend really computes in ``fit`` when the model's last
        activation is sigmoid/softmax: this loss with ``from_logits=True``, to apply to the
        pre-activation values. None for losses without a ``from_logits`` argument, or when
        ``from_logits`` is already True."""
        return None

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, reduction={self.reduction}>"


class _Wrapper(Loss):
    """A built-in loss: Keras' LossFunctionWrapper squeeze/expand, then ``_fn``."""

    def _forward(self, y_true, y_pred, need_grad):
        shape = y_pred.shape
        yt, yp = squeeze_or_expand_to_same_rank(y_true, y_pred)
        values, out_mask, backward = self._fn(yt, yp)
        if backward is None or not need_grad:
            return values, out_mask, None
        yp_shape = yp.shape

        def full_backward(d_values):
            g = _unbroadcast(np.asarray(backward(d_values)), yp_shape)
            return g.reshape(shape)
        return values, out_mask, full_backward

    def call(self, y_true, y_pred):
        return self._forward(y_true, y_pred, False)[0]

    def call_and_grad(self, y_true, y_pred):
        values, _, backward = self._forward(y_true, y_pred, True)
        return values, backward


def _mean_last(x):
    """ops.mean(x, axis=-1), and the factor 1/n of its gradient."""
    n = x.shape[-1] if x.ndim else 1
    return np.mean(x, axis=-1), x.dtype.type(1) / x.dtype.type(n)


class MeanSquaredError(_Wrapper):
    """``mean(square(y_true - y_pred), axis=-1)`` per sample, as ``keras.losses.MeanSquaredError``.

    Args:
        reduction, name, dtype: as :class:`Loss`.
    """

    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_error", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def _fn(self, yt, yp):
        diff = yt - yp
        values, inv_n = _mean_last(np.square(diff))

        def backward(dv):
            return (np.asarray(dv)[..., None] * inv_n) * (-2 * diff)
        return values, None, backward


class MeanAbsoluteError(_Wrapper):
    """``mean(abs(y_true - y_pred), axis=-1)`` per sample; gradient ``-sign(y_true - y_pred)/n``
    (0 where they are equal, as TensorFlow).

    Args:
        reduction, name, dtype: as :class:`Loss`.
    """

    def __init__(self, reduction="sum_over_batch_size", name="mean_absolute_error", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def _fn(self, yt, yp):
        diff = yt - yp
        values, inv_n = _mean_last(np.abs(diff))

        def backward(dv):
            return (np.asarray(dv)[..., None] * inv_n) * -np.sign(diff)
        return values, None, backward


class Huber(_Wrapper):
    """Huber loss: ``0.5 * e**2`` where ``|e| <= delta``, else ``delta * |e| - 0.5 * delta**2``
    with ``e = y_pred - y_true``, averaged over the last axis (``keras.losses.Huber``).

    Args:
        delta: float, the switch point.
        reduction, name, dtype: as :class:`Loss`.
    """

    def __init__(self, delta=1.0, reduction="sum_over_batch_size", name="huber_loss",
                 dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.delta = delta

    def _fn(self, yt, yp):
        t = yp.dtype.type
        delta, half = t(self.delta), t(0.5)
        err = yp - yt
        abs_err = np.abs(err)
        small = abs_err <= delta
        values, inv_n = _mean_last(np.where(small, half * np.square(err),
                                            delta * abs_err - half * np.square(delta)))

        def backward(dv):
            return (np.asarray(dv)[..., None] * inv_n) * np.where(small, err,
                                                                  delta * np.sign(err))
        return values, None, backward

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction, "delta": self.delta}


def _clip_eps(p):
    """tf.clip_by_value(p, eps, 1 - eps) and the mask where its gradient passes."""
    t = p.dtype.type
    lo, hi = t(EPSILON), t(1.0 - EPSILON)
    return np.clip(p, lo, hi), (p >= lo) & (p <= hi)


def _sigmoid(x):
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1 / (1 + np.exp(-x[pos]))
    e = np.exp(x[~pos])
    out[~pos] = e / (1 + e)
    return out


def _log_softmax(x, axis):
    m = np.max(x, axis=axis, keepdims=True)
    z = x - m
    return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))


def _check_same_shape(yt, yp, fn):
    if yt.ndim != yp.ndim:
        raise ValueError(f"Arguments `target` and `output` must have the same rank (ndim). "
                         f"Received: target.shape={yt.shape}, output.shape={yp.shape}")
    if yt.shape != yp.shape:
        raise ValueError(f"Arguments `target` and `output` must have the same shape. "
                         f"Received: target.shape={yt.shape}, output.shape={yp.shape}")


class _Crossentropy(_Wrapper):
    def logits_loss(self):
        if self.from_logits:
            return None
        cfg = self.get_config()
        cfg["from_logits"] = True
        return type(self).from_config(cfg)


class BinaryCrossentropy(_Crossentropy):
    """Binary crossentropy, averaged over ``axis`` (``keras.losses.BinaryCrossentropy``).

    Probabilities are clipped to ``[1e-7, 1 - 1e-7]``; with ``from_logits=True`` the stable
    ``max(x, 0) - x * y + log(1 + exp(-|x|))`` is used. Label smoothing maps y to
    ``y * (1 - s) + 0.5 * s``.

    Args:
        from_logits: bool, y_pred are logits.
        label_smoothing: float in [0, 1].
        axis: the axis averaged over (default -1).
        reduction, name, dtype: as :class:`Loss`.
    """

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction="sum_over_batch_size", name="binary_crossentropy", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.axis = axis

    def _fn(self, yt, yp):
        t = yp.dtype.type
        if self.label_smoothing:
            yt = yt * t(1.0 - self.label_smoothing) + t(0.5 * self.label_smoothing)
        _check_same_shape(yt, yp, "binary_crossentropy")
        if self.from_logits:
            elem = np.maximum(yp, t(0)) - yp * yt + np.log1p(np.exp(-np.abs(yp)))
        else:
            out, inside = _clip_eps(yp)
            elem = -(yt * np.log(out) + (1 - yt) * np.log(1 - out))
        axis = self.axis
        n = yp.shape[axis]
        values = np.mean(elem, axis=axis)

        def backward(dv):
            dv = np.expand_dims(np.asarray(dv), axis) * (t(1) / t(n))
            if self.from_logits:
                return dv * (_sigmoid(yp) - yt)
            return dv * np.where(inside, -(yt / out) + (1 - yt) / (1 - out), t(0))
        return values, None, backward

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction, "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing, "axis": self.axis}


class CategoricalCrossentropy(_Crossentropy):
    """Categorical crossentropy over one-hot (or soft) targets
    (``keras.losses.CategoricalCrossentropy``).

    Probabilities are renormalized to sum to 1 along ``axis``, clipped to
    ``[1e-7, 1 - 1e-7]``, then ``-sum(y * log(p))``. With ``from_logits=True`` it is
    ``sum(y * (logsumexp(x) - x))`` and the gradient is TensorFlow's ``softmax(x) - y`` (exact for
    targets summing to 1). Label smoothing maps y to ``y * (1 - s) + s / num_classes``.

    Args:
        from_logits: bool.
        label_smoothing: float in [0, 1].
        axis: the class axis (default -1).
        reduction, name, dtype: as :class:`Loss`.

    Raises:
        ValueError: y_true and y_pred shapes differ (after Keras' squeeze/expand).
    """

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction="sum_over_batch_size", name="categorical_crossentropy", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.axis = axis

    def _fn(self, yt, yp):
        t = yp.dtype.type
        axis = self.axis
        if self.label_smoothing:
            num_classes = t(yt.shape[-1])
            yt = yt * t(1.0 - self.label_smoothing) + t(self.label_smoothing) / num_classes
        _check_same_shape(yt, yp, "categorical_crossentropy")
        if self.from_logits:
            logp = _log_softmax(yp, axis)
            values = -np.sum(yt * logp, axis=axis)

            def backward(dv):
                return np.expand_dims(np.asarray(dv), axis) * (np.exp(logp) - yt)
            return values, None, backward
        s = np.sum(yp, axis=axis, keepdims=True)
        q = yp / s
        c, inside = _clip_eps(q)
        values = -np.sum(yt * np.log(c), axis=axis)

        def backward(dv):
            dq = np.where(inside, np.expand_dims(np.asarray(dv), axis) * (-yt / c), t(0))
            return dq / s - np.sum(dq * yp, axis=axis, keepdims=True) / (s * s)
        return values, None, backward

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction, "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing, "axis": self.axis}


class SparseCategoricalCrossentropy(_Crossentropy):
    """Crossentropy with integer class labels (``keras.losses.SparseCategoricalCrossentropy``).

    ``y_true`` holds class indices, shaped like ``y_pred`` without the class axis (a trailing
    axis of 1 is squeezed). Probabilities are clipped to ``[1e-7, 1 - 1e-7]`` and the loss is
    ``logsumexp(log p) - log p[y]``; with ``from_logits=True`` it is ``logsumexp(x) - x[y]``.
    Labels equal to ``ignore_class`` get loss 0 and are masked out of the reduction.

    Args:
        from_logits: bool.
        ignore_class: int or None.
        reduction, name, dtype: as :class:`Loss`.
        axis: the class axis; only -1 (the last) is supported, as TensorFlow.

    Raises:
        ValueError: shapes that do not match, labels outside ``[0, num_classes)``.
    """

    def __init__(self, from_logits=False, ignore_class=None, reduction="sum_over_batch_size",
                 axis=-1, name="sparse_categorical_crossentropy", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.from_logits = from_logits
        self.ignore_class = ignore_class
        self.axis = axis

    def _fn(self, yt, yp):
        t = yp.dtype.type
        if self.axis not in (-1, yp.ndim - 1):
            raise ValueError(f"Only axis=-1 is currently supported. Received: axis={self.axis}")
        if yt.ndim == yp.ndim and yt.shape[-1] == 1:
            yt = yt[..., 0]
        valid = None
        if self.ignore_class is not None:
            valid = yt != t(self.ignore_class)
            yt = np.where(valid, yt, t(0))
            yp = np.where(valid[..., None], yp, t(0))
        if yt.shape != yp.shape[:-1]:
            raise ValueError(
                "Arguments `target` and `output` must have the same shape up until the last "
                f"dimension: target.shape={yt.shape}, output.shape={yp.shape}")
        labels = yt.astype(np.int64)
        C = yp.shape[-1]
        if labels.size and (labels.min() < 0 or labels.max() >= C):
            bad = labels[(labels < 0) | (labels >= C)].ravel()[0]
            raise ValueError(f"Received a label value of {bad} which is outside the valid range "
                             f"of [0, {C}). Labels for sparse_categorical_crossentropy must be "
                             f"class indices 0..{C - 1}.")
        if self.from_logits:
            logits = yp
        else:
            out, inside = _clip_eps(yp)
            logits = np.log(out)
        logp = _log_softmax(logits, -1)
        picked = np.take_along_axis(logp, labels[..., None], axis=-1)[..., 0]
        values = -picked
        if valid is not None:
            values = np.where(valid, values, t(0))

        def backward(dv):
            dv = np.asarray(dv)
            if valid is not None:
                dv = np.where(valid, dv, t(0))
            dlogits = np.exp(logp)
            np.put_along_axis(dlogits, labels[..., None],
                              np.take_along_axis(dlogits, labels[..., None], axis=-1) - 1,
                              axis=-1)
            dlogits = dlogits * dv[..., None]
            if self.from_logits:
                g = dlogits
            else:
                g = np.where(inside, dlogits / out, t(0))
            if valid is not None:
                g = np.where(valid[..., None], g, t(0))
            return g
        return values, valid, backward

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction, "from_logits": self.from_logits,
                "ignore_class": self.ignore_class}


# ---------------------------------------------------------------------------------------------
# Lookup

_CLASSES = {c.__name__: c for c in (MeanSquaredError, MeanAbsoluteError, Huber,
                                    BinaryCrossentropy, CategoricalCrossentropy,
                                    SparseCategoricalCrossentropy)}
_ALIASES = {
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
    "huber": Huber, "huber_loss": Huber,
    "bce": BinaryCrossentropy, "binary_crossentropy": BinaryCrossentropy,
    "cce": CategoricalCrossentropy, "categorical_crossentropy": CategoricalCrossentropy,
    "scce": SparseCategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
}

#: The canonical Keras function name of each built-in loss class.
_CANONICAL = {MeanSquaredError: "mean_squared_error", MeanAbsoluteError: "mean_absolute_error",
              Huber: "huber", BinaryCrossentropy: "binary_crossentropy",
              CategoricalCrossentropy: "categorical_crossentropy",
              SparseCategoricalCrossentropy: "sparse_categorical_crossentropy"}


def canonical_name(loss):
    """``"binary_crossentropy"`` etc. for a built-in loss (instance, class or name), else None."""
    if isinstance(loss, str):
        cls = _ALIASES.get(loss.lower()) or _CLASSES.get(loss)
    elif isinstance(loss, type):
        cls = loss
    else:
        cls = type(loss)
    for base, name in _CANONICAL.items():
        if cls is not None and isinstance(cls, type) and issubclass(cls, base):
            return name
    return None


def serialize(loss):
    return {"class_name": type(loss).__name__, "config": loss.get_config()}


def deserialize(config, custom_objects=None):
    objs = dict(_CLASSES)
    objs.update(custom_objects or {})
    name = config.get("class_name")
    if name not in objs:
        raise ValueError(f"Unknown loss {name!r}. Expected one of {sorted(objs)}.")
    return objs[name].from_config(config.get("config", {}))


def get(identifier):
    """A Loss from a name, a Loss instance (returned as is), a Loss subclass (instantiated) or
    a config dict.

    Names: ``"mse"``/``"mean_squared_error"``, ``"mae"``/``"mean_absolute_error"``,
    ``"huber"``, ``"binary_crossentropy"``/``"bce"``, ``"categorical_crossentropy"``/``"cce"``,
    ``"sparse_categorical_crossentropy"``/``"scce"`` (any case), or a class name such as
    ``"BinaryCrossentropy"``. A lowercase name becomes the loss's ``name``, as Keras' compile
    names a loss given by string.

    Raises:
        ValueError: an unknown identifier (the message lists the names).
    """
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        if identifier in _CLASSES:
            return _CLASSES[identifier]()
        cls = _ALIASES.get(identifier.lower())
        if cls is not None:
            return cls(name=identifier)
    raise ValueError(f"Could not interpret loss identifier: {identifier!r}. Known losses: "
                     f"{sorted(_ALIASES)} (or their class names), a Loss instance or subclass.")


# ---------------------------------------------------------------------------------------------
# Target validation


def _is_int_dtype(dtype):
    return np.dtype(dtype).kind in "iub"


def validate_target(loss, y_true_shape, y_true_dtype, y_pred_shape, who):
    """Raise a ShapeError when targets cannot match the model output for ``loss``.

    Stricter than Keras: it also rejects targets Keras would silently broadcast into a wrong
    loss, e.g. ``y (N,)`` against a sequence output ``(N, T, 1)``.

    Args:
        loss: a Loss (or identifier accepted by :func:`get`).
        y_true_shape: shape of the targets (batch axis first).
        y_true_dtype: dtype of the targets.
        y_pred_shape: the output's shape; ``None`` entries are unknown (e.g. the batch axis).
        who: who is asking, e.g. ``"Model 'clf' output 'dense'"``.

    Raises:
        attnlstm.ShapeError: naming ``y``, the expected and received shapes, and a hint.
    """
    loss = get(loss)
    kind = canonical_name(loss)
    yt = tuple(int(s) for s in y_true_shape)
    yp = tuple(None if s is None else int(s) for s in y_pred_shape)
    int_labels = _is_int_dtype(y_true_dtype)

    def same(a, b):
        return b is None or a == b

    def fail(expected, hint):
        raise shape_error(who, "y", expected, yt, hint)

    expected_named = ("batch",) + tuple(s if s is not None else "None" for s in yp[1:])
    if yp and not same(yt[0] if yt else None, yp[0]) and yt:
        fail(expected_named, f"x and y must have the same number of samples ({yp[0]}).")

    if kind == "sparse_categorical_crossentropy":
        lab = yp[:-1]
        ok = (len(yt) == len(lab) and all(same(a, b) for a, b in zip(yt, lab))) or (
            len(yt) == len(yp) and yt[-1] == 1 and all(same(a, b) for a, b in zip(yt[:-1], lab)))
        if ok:
            return
        exp = ("batch",) + tuple("None" if s is None else s for s in lab[1:])
        if len(yt) == len(yp) and same(yt[-1], yp[-1]) and yt[-1] != 1:
            fail(exp, "y looks one-hot encoded (its last axis is the number of classes); use "
                      "loss='categorical_crossentropy' for one-hot targets, or pass class "
                      "indices (e.g. y.argmax(-1)) to sparse_categorical_crossentropy.")
        if len(yt) == len(yp) - 2 or (len(yt) == len(yp) - 1 and yt[-1] == 1 and len(yp) == 3):
            fail(exp, "the output is a sequence (one prediction per timestep) but y has one "
                      "label per sample; use return_sequences=False on the last recurrent "
                      "layer, or pool over time (GlobalAveragePooling1D).")
        if len(yt) == len(yp):
            fail(exp, "y must hold one class index per sample (shape (batch,) or (batch, 1)) "
                      "for sparse_categorical_crossentropy; one-hot targets need "
                      "loss='categorical_crossentropy'.")
        fail(exp, "y must hold one class index per output position.")

    if kind == "categorical_crossentropy":
        C = yp[-1]
        if len(yt) == len(yp) - 1 or (len(yt) == len(yp) and yt[-1] == 1 and C != 1):
            what = "integer class labels" if int_labels else "one class index per sample"
            fail(expected_named, f"y holds {what}; use "
                                 "loss='sparse_categorical_crossentropy', or one-hot encode y "
                                 "with keras.utils.to_categorical(y, num_classes).")

    # Generic rules (mse, mae, huber, bce, cce and custom losses): after Keras' squeeze/expand,
    # the shapes must be equal.
    r_t, r_p = len(yt), len(yp)
    if r_t == r_p:
        t2, p2 = yt, yp
    elif r_t == r_p + 1 and yt[-1] == 1:
        t2, p2 = yt[:-1], yp
    elif r_p == r_t + 1 and yp[-1] == 1:
        t2, p2 = yt, yp[:-1]
    else:
        t2, p2 = None, None
    # y (N, 1) against a (N, None, 1) sequence output would be broadcast over time by Keras.
    seq_vs_flat = r_p == 3 and r_t == 2 and yt[-1] == 1 and yp[1] is None
    if (t2 is not None and not seq_vs_flat and len(t2) == len(p2)
            and all(same(a, b) for a, b in zip(t2, p2))):
        return
    # Diagnose.
    if r_p == 3 and r_t in (1, 2) and (r_t == 1 or yt[-1] == 1 or yp[-1] != 1):
        fail(expected_named,
             "the output is a sequence (batch, timesteps, features) but y has one target per "
             "sample; use return_sequences=False on the last recurrent layer, pool over time "
             "with GlobalAveragePooling1D, or give y a time axis to train a TimeDistributed "
             "output.")
    if r_t == 3 and r_p == 2:
        fail(expected_named,
             "y has a time axis (one target per timestep) but the output has none; use "
             "return_sequences=True on the last recurrent layer (and TimeDistributed(Dense) "
             "after it).")
    if r_t == r_p and yt[:-1] == tuple(a if b is None else b for a, b in zip(yt[:-1], yp[:-1])):
        fail(expected_named,
             f"the last axis of y has size {yt[-1]} but the output has {yp[-1]} units; make the "
             f"last layer's units match the targets.")
    fail(expected_named, "y and the model output must have the same shape (a trailing axis of "
                         "size 1 may be dropped).")
