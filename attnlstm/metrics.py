"""Metrics with Keras 3 semantics: weighted running means over all samples seen since the last
``reset_state()``, accumulated in floatx() (float32) as Keras does::

    >>> import numpy as np
    >>> from attnlstm import metrics
    >>> m = metrics.SparseCategoricalAccuracy()
    >>> m.update_state(np.array([0, 1]), np.array([[0.9, 0.1], [0.8, 0.2]]))
    >>> m.update_state(np.array([1]), np.array([[0.3, 0.7]]))
    >>> round(m.result(), 4)
    0.6667

``metrics.get("accuracy", y_true_shape=..., y_pred_shape=...)`` picks binary / sparse /
categorical accuracy as Keras 3's ``compile_utils.get_metric`` does, and names the metric after
the string it was given (``"accuracy"``, ``"acc"``, ``"mse"``...), as Keras' History shows it.

Source: ``keras/src/metrics/{reduction_metrics,accuracy_metrics,regression_metrics}.py`` and
``keras/src/trainers/compile_utils.py`` (Keras 3.15.1).
"""
import inspect

import numpy as np

from . import backend
from .losses import canonical_name, squeeze_or_expand_to_same_rank

__all__ = ["Metric", "Mean", "MeanMetricWrapper", "Accuracy", "BinaryAccuracy",
           "CategoricalAccuracy", "SparseCategoricalAccuracy", "MeanSquaredError",
           "MeanAbsoluteError", "accuracy", "binary_accuracy", "categorical_accuracy",
           "sparse_categorical_accuracy", "mean_squared_error", "mean_absolute_error", "get"]


def _apply_mask_sum(sample_weight, mask, dtype):
    """Keras' ``apply_mask(sample_weight, mask, reduction="sum")``: weights times the 0/1 mask."""
    if mask is None:
        return None if sample_weight is None else np.asarray(sample_weight, dtype)
    float_mask = np.asarray(mask).astype(dtype)
    if sample_weight is None:
        return float_mask
    sw = np.asarray(sample_weight, dtype)
    float_mask, sw = squeeze_or_expand_to_same_rank(float_mask, sw)
    return sw * float_mask


def reduce_to_samplewise_values(values, sample_weight, reduce_fn, dtype, mask=None):
    """Keras' ``reduce_to_samplewise_values``: per-sample weighted values and weights."""
    values = np.asarray(values).astype(dtype)
    sw = sample_weight
    if sw is not None:
        sw = np.asarray(sw, dtype)
        if mask is not None:
            sw = _apply_mask_sum(sw, mask, dtype)
        values, sw = squeeze_or_expand_to_same_rank(values, sw)
        weight_ndim, values_ndim = sw.ndim, values.ndim
        if values_ndim > weight_ndim:
            values = reduce_fn(values, axis=tuple(range(weight_ndim, values_ndim)))
        sw = np.broadcast_to(sw, values.shape)
        values = values * sw
        if weight_ndim > 1:
            sw = reduce_fn(sw, axis=tuple(range(1, weight_ndim)))
    if values.ndim > 1:
        values = reduce_fn(values, axis=tuple(range(1, values.ndim)))
    return values, sw


class Metric:
    """Base class of metrics (Keras 3's ``keras.metrics.Metric`` contract).

    Subclasses implement ``update_state(y_true, y_pred, sample_weight=None, mask=None)``,
    ``result() -> float`` and ``reset_state()``.

    Args:
        name: str; default the snake-case class name.
        dtype: accumulator dtype, default floatx() (float32, as Keras).
    """

    def __init__(self, name=None, dtype=None):
        self.name = name or backend.to_snake_case(type(self).__name__)
        self.dtype = backend.standardize_dtype(dtype)

    def update_state(self, y_true, y_pred, sample_weight=None, mask=None):
        raise NotImplementedError(f"{type(self).__name__} must implement update_state().")

    def __init_subclass__(cls, **kwargs):
        """Every update_state takes traced values too (a custom train_step updates its metrics
        with the loss it differentiated): their plain arrays are used."""
        super().__init_subclass__(**kwargs)
        fn = cls.__dict__.get("update_state")
        if fn is None or getattr(fn, "_plain_args", False):
            return

        def update_state(self, *args, **kwargs):
            from autograd.tracer import getval
            return fn(self, *(getval(a) for a in args),
                      **{k: getval(v) for k, v in kwargs.items()})
        update_state.__doc__, update_state.__name__ = fn.__doc__, "update_state"
        update_state.__wrapped__ = fn
        update_state._plain_args = True
        cls.update_state = update_state

    def result(self):
        raise NotImplementedError(f"{type(self).__name__} must implement result().")

    def reset_state(self):
        raise NotImplementedError(f"{type(self).__name__} must implement reset_state().")

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}>"


class Mean(Metric):
    """The weighted mean of the values given to ``update_state``, over all calls.

    ``update_state(values, sample_weight=None, mask=None)``: values of shape ``(B, ...)`` count
    one per sample (extra axes are averaged first); sample weights ``(B,)`` (or ``(B, T)`` for
    ``(B, T)`` values) weight them; ``mask`` (bool, like the values) drops entries when weights are
    given, as the Keras mask of ``values`` does.
    """

    def __init__(self, name="mean", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.reset_state()

    def reset_state(self):
        t = np.dtype(self.dtype).type
        self.total = t(0)
        self.count = t(0)

    def update_state(self, values, sample_weight=None, mask=None):
        values, sw = reduce_to_samplewise_values(values, sample_weight, np.mean, self.dtype,
                                                 mask=mask)
        t = np.dtype(self.dtype).type
        self.total = t(self.total + np.sum(values))
        if sw is not None:
            n = np.sum(sw)
        elif values.ndim >= 1:
            n = values.shape[0]
        else:
            n = 1
        self.count = t(self.count + t(n))

    def result(self):
        if self.count == 0:
            return 0.0
        return float(np.dtype(self.dtype).type(self.total / self.count))


class MeanMetricWrapper(Mean):
    """The mean of ``fn(y_true, y_pred, **kwargs)`` (per-sample values) over all samples.

    Args:
        fn: callable ``fn(y_true, y_pred) -> values`` of shape ``(B,)`` or ``(B, T)``.
        name: str; default ``fn``'s snake-case name.
        dtype: accumulator dtype.
        **kwargs: passed to ``fn``.
    """

    def __init__(self, fn, name=None, dtype=None, **kwargs):
        if name is None:
            name = backend.to_snake_case(getattr(fn, "__name__", type(fn).__name__))
        super().__init__(name=name, dtype=dtype)
        self._fn = fn
        self._fn_kwargs = kwargs

    def update_state(self, y_true, y_pred, sample_weight=None, mask=None):
        """Args: y_true, y_pred as for the loss; sample_weight ``(B,)`` or ``(B, T)``; mask: the
        output's Keras mask (e.g. ``(B, T)``), whose False entries are left out."""
        values = self._fn(y_true, y_pred, **self._fn_kwargs)
        sw = _apply_mask_sum(sample_weight, mask, self.dtype)
        return super().update_state(values, sample_weight=sw)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(self._fn_kwargs)
        return cfg


# ---- per-sample functions (Keras' metric functions) -----------------------------------------

def _float(x):
    x = np.asarray(x)
    return x if x.dtype.kind == "f" else x.astype(backend.floatx())


def accuracy(y_true, y_pred):
    """1.0 where ``y_true == y_pred`` exactly (after Keras' squeeze/expand), else 0.0."""
    y_pred = _float(y_pred)
    y_true = np.asarray(y_true, dtype=y_pred.dtype)
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    return (y_true == y_pred).astype(backend.floatx())


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """1.0 where ``(y_pred > threshold) == y_true``."""
    y_pred = _float(y_pred)
    y_true = np.asarray(y_true)
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    pred = (y_pred > y_pred.dtype.type(threshold)).astype(y_true.dtype)
    return (y_true == pred).astype(backend.floatx())


def categorical_accuracy(y_true, y_pred):
    """1.0 where ``argmax(y_true, -1) == argmax(y_pred, -1)`` (one-hot targets)."""
    y_true = np.argmax(np.asarray(y_true), axis=-1)
    y_pred = np.asarray(y_pred)
    org_shape = y_true.shape
    reshape = False
    if y_true.ndim == y_pred.ndim:
        y_true = y_true[..., 0] if y_true.shape[-1] == 1 else np.squeeze(y_true, -1)
        reshape = True
    pred = np.argmax(y_pred, axis=-1)
    matches = (y_true == pred).astype(backend.floatx())
    return matches.reshape(org_shape) if reshape else matches


def sparse_categorical_accuracy(y_true, y_pred):
    """1.0 where the class index ``y_true`` equals ``argmax(y_pred, -1)``."""
    y_pred = _float(y_pred)
    y_true = np.asarray(y_true, dtype=y_pred.dtype)
    org_shape = y_true.shape
    reshape = False
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
        reshape = True
    pred = np.argmax(y_pred, axis=-1).astype(y_true.dtype)
    matches = (y_true == pred).astype(backend.floatx())
    if reshape:
        matches = matches.reshape(org_shape)
    if matches.ndim > 1 and matches.shape[-1] == 1:
        matches = matches[..., 0]
    return matches


def mean_squared_error(y_true, y_pred):
    """``mean(square(y_true - y_pred), axis=-1)``."""
    y_pred = _float(y_pred)
    y_true = np.asarray(y_true, dtype=y_pred.dtype)
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    return np.mean(np.square(y_true - y_pred), axis=-1)


def mean_absolute_error(y_true, y_pred):
    """``mean(abs(y_true - y_pred), axis=-1)``."""
    y_pred = _float(y_pred)
    y_true = np.asarray(y_true, dtype=y_pred.dtype)
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    return np.mean(np.abs(y_true - y_pred), axis=-1)


# ---- metric classes --------------------------------------------------------------------------

class Accuracy(MeanMetricWrapper):
    """How often predictions equal labels exactly (``keras.metrics.Accuracy``)."""

    def __init__(self, name="accuracy", dtype=None):
        super().__init__(accuracy, name=name, dtype=dtype)


class BinaryAccuracy(MeanMetricWrapper):
    """How often ``y_pred > threshold`` matches the 0/1 label (``keras.metrics.BinaryAccuracy``).

    Args:
        name: str.
        dtype: accumulator dtype.
        threshold: float, default 0.5.
    """

    def __init__(self, name="binary_accuracy", dtype=None, threshold=0.5):
        super().__init__(binary_accuracy, name=name, dtype=dtype, threshold=threshold)
        self.threshold = threshold


class CategoricalAccuracy(MeanMetricWrapper):
    """How often the argmax of the prediction matches the one-hot label's."""

    def __init__(self, name="categorical_accuracy", dtype=None):
        super().__init__(categorical_accuracy, name=name, dtype=dtype)


class SparseCategoricalAccuracy(MeanMetricWrapper):
    """How often the argmax of the prediction equals the integer label."""

    def __init__(self, name="sparse_categorical_accuracy", dtype=None):
        super().__init__(sparse_categorical_accuracy, name=name, dtype=dtype)


class MeanSquaredError(MeanMetricWrapper):
    """Mean of ``mean(square(y_true - y_pred), axis=-1)`` over samples."""

    def __init__(self, name="mean_squared_error", dtype=None):
        super().__init__(mean_squared_error, name=name, dtype=dtype)


class MeanAbsoluteError(MeanMetricWrapper):
    """Mean of ``mean(abs(y_true - y_pred), axis=-1)`` over samples."""

    def __init__(self, name="mean_absolute_error", dtype=None):
        super().__init__(mean_absolute_error, name=name, dtype=dtype)


_CLASSES = {c.__name__: c for c in (Mean, Accuracy, BinaryAccuracy, CategoricalAccuracy,
                                    SparseCategoricalAccuracy, MeanSquaredError,
                                    MeanAbsoluteError)}
_NAMES = {"mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
          "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
          "binary_accuracy": BinaryAccuracy, "categorical_accuracy": CategoricalAccuracy,
          "sparse_categorical_accuracy": SparseCategoricalAccuracy}
_NAMES.update({k.upper(): v for k, v in _NAMES.items() if k in ("mse", "mae")})


def is_binary_or_sparse_categorical(y_true_shape, y_pred_shape):
    """Keras 3's rule: binary if the output's last axis is 1; sparse if y has lower rank than
    the output, or a last axis of 1 against a multi-unit output."""
    yt, yp = tuple(y_true_shape), tuple(y_pred_shape)
    is_binary = yp[-1] == 1
    is_sparse = len(yt) < len(yp) or (yt[-1] == 1 and yp[-1] is not None and yp[-1] > 1)
    return is_binary, is_sparse


def _accuracy_for(name, loss, y_true_shape, y_pred_shape):
    if y_true_shape is not None and y_pred_shape is not None:
        is_binary, is_sparse = is_binary_or_sparse_categorical(y_true_shape, y_pred_shape)
        if is_binary:
            return BinaryAccuracy(name=name)
        if is_sparse:
            return SparseCategoricalAccuracy(name=name)
        return CategoricalAccuracy(name=name)
    kind = canonical_name(loss) if loss is not None else None
    by_loss = {"binary_crossentropy": BinaryAccuracy,
               "categorical_crossentropy": CategoricalAccuracy,
               "sparse_categorical_crossentropy": SparseCategoricalAccuracy}
    if kind in by_loss:
        return by_loss[kind](name=name)
    raise ValueError(f"Cannot resolve metric {name!r}: pass y_true_shape and y_pred_shape (Keras "
                     "picks binary/sparse/categorical accuracy from them), or a crossentropy "
                     f"loss. Received: loss={loss!r}")


def get(identifier, loss=None, y_true_shape=None, y_pred_shape=None):
    """A Metric from an identifier, as Keras 3's ``compile(metrics=[...])`` resolves it.

    Args:
        identifier: ``"accuracy"``/``"acc"`` (any case; resolved by the shapes as Keras 3 does:
            output last axis 1 -> BinaryAccuracy; y of lower rank, or y last axis 1 against a
            multi-unit output -> SparseCategoricalAccuracy; else CategoricalAccuracy; without
            shapes, by the loss: bce / cce / scce), ``"mse"``, ``"mae"``,
            ``"mean_squared_error"``, ``"mean_absolute_error"``, ``"binary_accuracy"``,
            ``"categorical_accuracy"``, ``"sparse_categorical_accuracy"``, a class name, a Metric
            instance (returned as is), a Metric subclass, or a function
            ``fn(y_true, y_pred) -> per-sample values``.
        loss: the compiled loss (used for "accuracy" only when shapes are not given).
        y_true_shape, y_pred_shape: shapes of the targets and the output.

    Returns:
        A Metric. A string identifier becomes the metric's name (Keras' History keys: "acc"
        stays "acc", "mse" stays "mse"); a function gives its snake-case ``__name__``.

    Raises:
        ValueError: an unknown identifier (the message lists the names).
    """
    if isinstance(identifier, Metric):
        return identifier
    if inspect.isclass(identifier) and issubclass(identifier, Metric):
        return identifier()
    if isinstance(identifier, str):
        if identifier.lower() in ("accuracy", "acc"):
            return _accuracy_for(identifier, loss, y_true_shape, y_pred_shape)
        if identifier in _CLASSES:
            return _CLASSES[identifier](name=identifier)
        cls = _NAMES.get(identifier)
        if cls is not None:
            return cls(name=identifier)
    elif callable(identifier):
        return MeanMetricWrapper(identifier)
    names = sorted(set(_NAMES) | {"accuracy", "acc"})
    raise ValueError(f"Could not interpret metric identifier: {identifier!r}. Known metrics: "
                     f"{names} (or their class names), a Metric instance, or a function "
                     "fn(y_true, y_pred) returning per-sample values.")
