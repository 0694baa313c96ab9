"""TimeDistributed: apply a layer to every timestep (``keras.layers.TimeDistributed``)."""
import numpy as np

from ..engine.base import Layer
from ..errors import shape_error

__all__ = ["TimeDistributed"]


class TimeDistributed(Layer):
    """Applies `layer` to every timestep of a `(B, T, ...)` input, with shared weights.

    The weights are the wrapped layer's (same ``get_weights`` order). The timesteps are folded
    into the batch, so the inner layer runs once on `(B*T, ...)`.

    Args:
        layer: a Layer that maps `(B, ...)` to `(B, ...)`.

    Raises:
        ShapeError: inputs of rank < 3 (no time axis) — e.g. from an LSTM without
            return_sequences=True (the hint names it) —, or what the inner layer raises.
        TypeError: `layer` is not a Layer.
    """
    supports_masking = True

    def __init__(self, layer, **kwargs):
        if not isinstance(layer, Layer):
            raise TypeError(f"Please initialize `TimeDistributed` layer with a `Layer` instance. "
                            f"Received: layer={layer!r}")
        super().__init__(**kwargs)
        self.layer = self._track(layer)

    def compute_output_shape(self, input_shape):
        if not isinstance(input_shape, tuple) or len(input_shape) < 3:
            raise shape_error(self, "inputs", ("batch", "timesteps", "..."), input_shape)
        inner = self.layer.compute_output_shape((input_shape[0],) + tuple(input_shape[2:]))
        return (input_shape[0], input_shape[1]) + tuple(inner[1:])

    def build(self, input_shape):
        inner = (input_shape[0],) + tuple(input_shape[2:])
        if not self.layer.built:
            self.layer.build(inner)
            self.layer.built = True
        self.built = True

    def call(self, inputs, mask=None, training=False):
        x = np.asarray(inputs)
        B, T = x.shape[:2]
        flat = x.reshape((B * T,) + x.shape[2:])
        kw = {}
        if self.layer._call_accepts("training"):
            kw["training"] = training
        y = np.asarray(self.layer.call(flat, **kw))
        return y.reshape((B, T) + y.shape[1:])

    def compute_mask(self, inputs, mask=None):
        return mask

    def get_config(self):
        cfg = super().get_config()
        cfg["layer"] = {"class_name": type(self.layer).__name__, "config": self.layer.get_config()}
        return cfg
