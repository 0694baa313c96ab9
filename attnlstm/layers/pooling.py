"""Global pooling over time: GlobalAveragePooling1D (mask-aware), GlobalMaxPooling1D."""
import numpy as np

from ..engine.base import Layer
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

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_mask_flags(self, input_has_mask, output_structure):
        return False

    def get_config(self):
        cfg = super().get_config()
        cfg.update(data_format=self.data_format, keepdims=self.keepdims)
        return cfg


class GlobalAveragePooling1D(_GlobalPooling1D):
    """Mean over the time axis, ignoring masked steps (``keras.layers.GlobalAveragePooling1D``).

    ``out = sum_t(mask * x) / sum_t(mask)``. A fully masked sample gives 0 here (Keras divides 0
    by 0 and returns NaN).

    Call arguments:
        inputs: `(B, T, F)` (channels_last) or `(B, F, T)`.
        mask: `(B, T)` or None (taken from the inputs' Keras mask).

    Returns:
        `(B, F)` (or `(B, 1, F)` with keepdims).

    Raises:
        ShapeError: inputs without a time axis (e.g. from an LSTM without return_sequences=True).
    """

    def call(self, inputs, mask=None):
        x = np.asarray(inputs)
        ax = self._time_axis
        if mask is None:
            return np.mean(x, axis=ax, keepdims=self.keepdims)
        m = np.asarray(mask, x.dtype)
        m = m[:, :, None] if ax == 1 else m[:, None, :]
        num = np.sum(x * m, axis=ax, keepdims=self.keepdims)
        den = np.sum(m, axis=ax, keepdims=self.keepdims)
        return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


class GlobalMaxPooling1D(_GlobalPooling1D):
    """Max over the time axis (``keras.layers.GlobalMaxPooling1D``; masks are ignored, as Keras).

    Raises:
        ShapeError: inputs without a time axis.
    """

    def call(self, inputs, mask=None):
        return np.max(np.asarray(inputs), axis=self._time_axis, keepdims=self.keepdims)
