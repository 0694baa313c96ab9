"""Regularization layers beyond Dropout: SpatialDropout1D (Keras 3 semantics)."""
import numpy as np

from ..errors import shape_error
from .core import Dropout

__all__ = ["SpatialDropout1D"]


class SpatialDropout1D(Dropout):
    """Drops whole feature channels of a sequence (``keras.layers.SpatialDropout1D``).

    In training, each (sample, channel) pair is kept with probability ``1 - rate`` for every
    timestep at once and scaled by ``1 / (1 - rate)`` (noise shape `(B, 1, F)`); at inference
    the layer is the identity. Masks pass through, as Keras' Dropout.

    Args:
        rate: float in [0, 1], fraction of channels dropped.
        seed: int for reproducible draws.

    Call arguments:
        inputs: `(B, T, F)`.
        training: bool.

    Raises:
        ValueError: `rate` outside [0, 1].
        ShapeError: inputs that are not 3-D.

    Example:
        >>> SpatialDropout1D(0.5)(np.ones((2, 3, 4)), training=True).shape
        (2, 3, 4)
    """


    def __init__(self, rate, seed=None, name=None, dtype=None, **kwargs):
        if "noise_shape" in kwargs:
            raise TypeError("SpatialDropout1D has no `noise_shape` argument: its noise shape is "
                            f"(batch, 1, features). Received: noise_shape={kwargs['noise_shape']}")
        super().__init__(rate, seed=seed, name=name, dtype=dtype, **kwargs)

    def compute_output_shape(self, input_shape):
        if not isinstance(input_shape, tuple) or len(input_shape) != 3:
            hint = None
            if isinstance(input_shape, tuple) and len(input_shape) == 2:
                hint = ("SpatialDropout1D drops feature channels of sequences; for (batch, "
                        "features) inputs use Dropout.")
            raise shape_error(self, "inputs", ("batch", "timesteps", "features"), input_shape,
                              hint)
        return input_shape

    def _noise_shape(self, x):
        return (x.shape[0], 1, x.shape[2])     # one draw per (sample, channel)

    def get_config(self):
        # Keras' BaseSpatialDropout config: rate, seed, name, dtype (no noise_shape).
        return {"rate": self.rate, "seed": self.seed, "name": self.name, "dtype": self.dtype}
