"""TimeDistributed: apply a layer to every timestep (``keras.layers.TimeDistributed``)."""
import numpy as np

from ..engine.base import Grads, Layer
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
        return self.forward(inputs, mask, training)[0]

    def forward(self, inputs, mask=None, training=False):
        x = np.asarray(inputs)
        B, T = x.shape[:2]
        flat = x.reshape((B * T,) + x.shape[2:])
        kw = {}
        if self.layer._call_accepts("training"):
            kw["training"] = training
        y, inner_ctx = self.layer.forward(flat, **kw)
        y = np.asarray(y)
        return y.reshape((B, T) + y.shape[1:]), (x.shape, inner_ctx)

    def backward(self, ctx, d_outputs, need_input_grad=True):
        """Backward of the inner layer on the folded `(B*T, ...)` call; its weight gradients
        pass through (summed over timesteps by the fold)."""
        shape, inner_ctx = ctx
        if not self.layer.differentiable:
            raise NotImplementedError(
                f"TimeDistributed '{self.name}' cannot backpropagate: its inner layer "
                f"{type(self.layer).__name__} '{self.layer.name}' has no backward.")
        d = np.asarray(d_outputs)
        d = d.reshape((shape[0] * shape[1],) + d.shape[2:])
        g = self.layer.backward(inner_ctx, d, need_input_grad=need_input_grad)
        dx = None if g.inputs is None or not need_input_grad else np.reshape(g.inputs, shape)
        return Grads(dx, g.weights)

    def compute_mask(self, inputs, mask=None):
        return mask

    def get_config(self):
        from ..saving import serialize_keras_object
        cfg = super().get_config()
        cfg["layer"] = serialize_keras_object(self.layer)
        return cfg

    @classmethod
    def from_config(cls, config):
        from ..saving import deserialize_keras_object
        config = dict(config)
        if isinstance(config.get("layer"), dict):
            config["layer"] = deserialize_keras_object(config["layer"])
        return cls(**config)
