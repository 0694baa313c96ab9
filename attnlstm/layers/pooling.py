"""Pooling over time: GlobalAveragePooling1D (mask-aware), GlobalMaxPooling1D, and the windowed
MaxPooling1D / AveragePooling1D (strided views, one strided add per window tap in the backward)."""
import numpy as np

from ..engine.base import Grads, Layer, check_time_mask
from ..errors import shape_error
from .convolutional import (data_format_arg, int_tuple, scatter_windows, warn_mask_dropped,
                            window_pads, windows)

__all__ = ["GlobalAveragePooling1D", "GlobalMaxPooling1D", "MaxPooling1D", "AveragePooling1D",
           "MaxPool1D", "AvgPool1D"]


class _GlobalPooling1D(Layer):
    supports_masking = True

    def __init__(self, data_format="channels_last", keepdims=False, **kwargs):
        if data_format not in ("channels_last", "channels_first"):
            raise ValueError(f"`data_format` must be 'channels_last' or 'channels_first'. "
                             f"Received: data_format={data_format!r}")
        super().__init__(**kwargs)
        self.data_format = data_format
        self.keepdims = keepdims
        self._time_axis = 1 if data_format == "channels_last" else 2

    def compute_output_shape(self, input_shape):
        if not isinstance(input_shape, tuple) or len(input_shape) != 3:
            expected = ("batch", "timesteps", "features") if self.data_format == "channels_last" \
                else ("batch", "features", "timesteps")
            raise shape_error(self, "inputs", expected, input_shape)
        out = list(input_shape)
        if self.keepdims:
            out[self._time_axis] = 1
        else:
            del out[self._time_axis]
        return tuple(out)

    def validate_call(self, input_shape, **kwarg_shapes):
        mask_shape = kwarg_shapes.get("mask")
        if self.data_format == "channels_first" and mask_shape is not None and \
                isinstance(input_shape, tuple) and len(input_shape) == 3:
            # (B, F, T): the mask is (B, T), against the last axis.
            check_time_mask(self, "mask", (input_shape[0], input_shape[2], input_shape[1]),
                            mask_shape)
            return
        super().validate_call(input_shape, **kwarg_shapes)

    def compute_mask(self, inputs, mask=None):
        return None

    def _with_time_axis(self, d):
        """The output gradient with the pooled time axis back (size 1), ready to broadcast."""
        d = np.asarray(d)
        return d if self.keepdims else np.expand_dims(d, self._time_axis)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(data_format=self.data_format, keepdims=self.keepdims)
        return cfg


class GlobalAveragePooling1D(_GlobalPooling1D):
    """Mean over the time axis, ignoring masked steps (``keras.layers.GlobalAveragePooling1D``).

    ``out = sum_t(mask * x) / sum_t(mask)``. A fully masked sample gives 0 here (Keras divides 0
    by 0 and returns NaN), and its inputs get a zero gradient.

    Call arguments:
        inputs: `(B, T, F)` (channels_last) or `(B, F, T)`.
        mask: `(B, T)` or None (taken from the inputs' Keras mask).

    Returns:
        `(B, F)` (or `(B, 1, F)` with keepdims).

    Raises:
        ShapeError: inputs without a time axis (e.g. from an LSTM without return_sequences=True).
    """

    def call(self, inputs, mask=None):
        return self.forward(inputs, mask)[0]

    def forward(self, inputs, mask=None):
        x = np.asarray(inputs)
        ax = self._time_axis
        if mask is None:
            return np.mean(x, axis=ax, keepdims=self.keepdims), (x.shape, x.dtype, None)
        m = np.asarray(mask, x.dtype)
        m = m[:, :, None] if ax == 1 else m[:, None, :]
        num = np.sum(x * m, axis=ax, keepdims=self.keepdims)
        den = np.sum(m, axis=ax, keepdims=self.keepdims)
        out = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
        # d out / d x[t] = m[t] / den (0 for a fully masked sample, whose output is a constant 0).
        weight = np.divide(m, np.sum(m, axis=ax, keepdims=True),
                           out=np.zeros_like(m),
                           where=m > 0)
        return out, (x.shape, x.dtype, weight)

    def backward(self, ctx, d_outputs, need_input_grad=True):
        shape, dtype, weight = ctx
        if not need_input_grad:
            return Grads(None)
        d = self._with_time_axis(d_outputs)
        if weight is None:
            dx = np.broadcast_to(d / shape[self._time_axis], shape)
        else:
            dx = d * weight
        return Grads(np.array(dx, dtype=dtype))


class GlobalMaxPooling1D(_GlobalPooling1D):
    """Max over the time axis (``keras.layers.GlobalMaxPooling1D``; masks are ignored, as Keras).

    The gradient goes to the maximal step; tied maxima share it equally (TensorFlow's
    ``reduce_max`` gradient).

    Raises:
        ShapeError: inputs without a time axis.
    """

    def call(self, inputs, mask=None):
        return self.forward(inputs, mask)[0]

    def forward(self, inputs, mask=None):
        x = np.asarray(inputs)
        out = np.max(x, axis=self._time_axis, keepdims=True)
        res = out if self.keepdims else np.squeeze(out, self._time_axis)
        return res, (x, out)

    def backward(self, ctx, d_outputs, need_input_grad=True):
        if not need_input_grad:
            return Grads(None)
        x, out = ctx
        hit = (x == out).astype(x.dtype)
        share = hit / np.sum(hit, axis=self._time_axis, keepdims=True)
        return Grads((share * self._with_time_axis(d_outputs)).astype(x.dtype, copy=False))


# ---------------------------------------------------------------------------------------------
# Windowed pooling over time


class _Pooling1D(Layer):
    """MaxPooling1D / AveragePooling1D: windows of `pool_size` steps, `strides` apart."""

    supports_masking = False
    _mode = None

    def __init__(self, pool_size, strides=None, padding="valid", data_format=None, name=None,
                 **kwargs):
        super().__init__(name=name, **kwargs)
        self.pool_size = int_tuple(pool_size, 1, "pool_size")
        self.strides = int_tuple(self.pool_size if strides is None else strides, 1, "strides")
        pad = padding.lower() if isinstance(padding, str) else padding
        if pad not in ("valid", "same"):
            raise ValueError("Argument `padding` must be either 'valid' or 'same'. Received: "
                             f"padding={padding!r}")
        self.padding = pad
        self.data_format = data_format_arg(data_format)

    def _axes(self):
        return ("batch", "timesteps", "features") if self.data_format == "channels_last" \
            else ("batch", "features", "timesteps")

    def compute_output_shape(self, input_shape):
        cls = type(self).__name__
        if not isinstance(input_shape, tuple) or len(input_shape) != 3:
            hint = None
            if isinstance(input_shape, tuple) and len(input_shape) == 2:
                hint = (f"{cls} pools over the time axis of (batch, timesteps, features); add a "
                        f"feature axis, e.g. x[..., None].")
            raise shape_error(self, "inputs", self._axes(), input_shape, hint)
        t_axis = 1 if self.data_format == "channels_last" else 2
        t = input_shape[t_axis]
        _, _, t_out = window_pads(t, self.pool_size[0], self.strides[0], self.padding)
        if t_out is not None and t_out <= 0:
            want = list(input_shape)
            want[0] = "batch"
            want[t_axis] = f"timesteps >= {self.pool_size[0]}"
            raise shape_error(
                self, "inputs", tuple(want), input_shape,
                f"pool_size={self.pool_size[0]} is larger than the {t} steps of the sequence; "
                f"use a smaller pool_size, padding='same', or pool earlier in the model "
                f"(before other layers shorten the sequence).")
        out = list(input_shape)
        out[t_axis] = t_out
        return tuple(out)

    def compute_mask(self, inputs, mask=None):
        warn_mask_dropped(self, inputs, mask)
        return None

    def _to_last(self, x):
        return x if self.data_format == "channels_last" else np.swapaxes(x, 1, 2)

    def _from_last(self, y):
        return y if self.data_format == "channels_last" else np.ascontiguousarray(
            np.swapaxes(y, 1, 2))

    def call(self, inputs):
        return self.forward(inputs)[0]

    def forward(self, inputs):
        x = self._to_last(np.asarray(inputs))
        p, s = self.pool_size[0], self.strides[0]
        pl, pr, t_out = window_pads(x.shape[1], p, s, self.padding)
        fill = -np.inf if self._mode == "max" else 0
        xp = np.pad(x, ((0, 0), (pl, pr), (0, 0)), constant_values=fill) if pl or pr \
            else np.ascontiguousarray(x)
        view = windows(xp, t_out, p, s)                               # (B, t_out, p, C)
        ctx = {"shape": x.shape, "pads": (pl, pr), "t_out": t_out}
        if self._mode == "max":
            arg = np.argmax(view, axis=2)                             # first maximum, as TF
            out = np.take_along_axis(view, arg[:, :, None, :], axis=2)[:, :, 0]
            ctx["arg"] = arg
        else:
            # TensorFlow's "same" average ignores the padded steps: divide by the real count.
            counts = _window_counts(x.shape[1], p, s, pl, pr, t_out).astype(x.dtype)
            out = view.sum(axis=2) / counts[None, :, None]
            ctx["counts"] = counts
        return self._from_last(out.astype(x.dtype, copy=False)), ctx

    def backward(self, ctx, d_outputs, need_input_grad=True):
        if not need_input_grad:
            return Grads(None)
        d = self._to_last(np.asarray(d_outputs))
        B, T, C = ctx["shape"]
        pl, pr = ctx["pads"]
        p, s = self.pool_size[0], self.strides[0]
        if self._mode == "max":
            taps = np.arange(p)[None, None, :, None] == ctx["arg"][:, :, None, :]
            dwin = np.where(taps, d[:, :, None, :], np.zeros((), d.dtype))
        else:
            dwin = np.broadcast_to((d / ctx["counts"][None, :, None])[:, :, None, :],
                                   (B, ctx["t_out"], p, C))
        dxp = scatter_windows(dwin, T + pl + pr, s)
        return Grads(self._from_last(dxp[:, pl:pl + T]))

    def get_config(self):
        cfg = super().get_config()
        cfg.update(pool_size=self.pool_size, padding=self.padding, strides=self.strides,
                   data_format=self.data_format)
        return cfg


def _window_counts(T, p, s, pl, pr, t_out):
    """Number of real (unpadded) steps in each window."""
    starts = np.arange(t_out) * s - pl
    return np.minimum(starts + p, T) - np.maximum(starts, 0)


class MaxPooling1D(_Pooling1D):
    """Max over windows of `pool_size` steps (``keras.layers.MaxPooling1D``, alias MaxPool1D).

    Args:
        pool_size: window length (default 2).
        strides: step between windows; None means `pool_size`.
        padding: ``"valid"`` (``T_out = (T - pool_size) // strides + 1``) or ``"same"``
            (``T_out = ceil(T / strides)``, padded steps never win the max).
        data_format: ``"channels_last"`` (`(B, T, F)`, default) or ``"channels_first"``.

    Call arguments:
        inputs: `(B, T, F)`.

    Returns:
        `(B, T_out, F)`. Masks are not supported (dropped with Keras' warning). The gradient
        goes to the first maximum of each window (TensorFlow's rule).

    Raises:
        ValueError: invalid arguments.
        ShapeError: inputs that are not 3-D, or a "valid" window longer than the sequence.

    Example:
        >>> MaxPooling1D(2)(np.zeros((4, 10, 3))).shape
        (4, 5, 3)
    """
    _mode = "max"

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, name=None,
                 **kwargs):
        super().__init__(pool_size, strides, padding, data_format, name, **kwargs)


class AveragePooling1D(_Pooling1D):
    """Mean over windows of `pool_size` steps (``keras.layers.AveragePooling1D``, alias
    AvgPool1D). With ``padding="same"`` the padded steps are left out of each mean (TensorFlow).

    Args:
        pool_size: window length (required, as Keras).
        strides, padding, data_format: as MaxPooling1D.

    Call arguments:
        inputs: `(B, T, F)`.

    Returns:
        `(B, T_out, F)`; masks are dropped (Keras' warning).

    Raises:
        ValueError: invalid arguments.
        ShapeError: inputs that are not 3-D, or a "valid" window longer than the sequence.

    Example:
        >>> AveragePooling1D(3, strides=1, padding="same")(np.zeros((2, 7, 4))).shape
        (2, 7, 4)
    """
    _mode = "average"

    def __init__(self, pool_size, strides=None, padding="valid", data_format=None, name=None,
                 **kwargs):
        super().__init__(pool_size, strides, padding, data_format, name, **kwargs)


MaxPool1D = MaxPooling1D
AvgPool1D = AveragePooling1D
