"""Global pooling over time: GlobalAveragePooling1D (mask-aware), GlobalMaxPooling1D."""
import numpy as np

from ..engine.base import Grads, Layer, check_time_mask
from ..errors import shape_error

__all__ = ["GlobalAveragePooling1D", "GlobalMaxPooling1D"]


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

    def compute_mask_flags(self, input_has_mask, output_structure):
        return False

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
