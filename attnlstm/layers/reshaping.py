"""Reshaping layers: Flatten, Reshape, Permute, RepeatVector (Keras 3 semantics)."""
import numpy as np

from ..engine.base import Grads, Layer
from ..errors import format_shape, shape_error

__all__ = ["Flatten", "Reshape", "Permute", "RepeatVector"]


def _prod(shape):
    if any(s is None for s in shape):
        return None
    return int(np.prod(shape, dtype=np.int64))


class Flatten(Layer):
    """Flattens every axis but the batch axis: `(B, d1, d2, ...)` -> `(B, d1*d2*...)`
    (``keras.layers.Flatten``). A (B, T, H) sequence of unknown T gives (B, None).

    Raises:
        ShapeError: a 1-D input (no axis to flatten).
    """

    def compute_output_shape(self, input_shape):
        if not isinstance(input_shape, tuple) or len(input_shape) < 1:
            raise shape_error(self, "inputs", ("batch", "..."), input_shape)
        if len(input_shape) == 1:
            return (input_shape[0], 1)
        return (input_shape[0], _prod(input_shape[1:]))

    def call(self, inputs):
        return self.forward(inputs)[0]

    def forward(self, inputs):
        x = np.asarray(inputs)
        return (x.reshape(x.shape[0], -1) if x.ndim > 1 else x.reshape(-1, 1)), x.shape

    def backward(self, ctx, d_outputs, need_input_grad=True):
        return Grads(np.asarray(d_outputs).reshape(ctx) if need_input_grad else None)


class Reshape(Layer):
    """Reshapes every sample to `target_shape` (``keras.layers.Reshape``); one entry may be -1.

    Raises:
        ShapeError: a sample size that cannot fill `target_shape` (both sizes named).
    """

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        target_shape = tuple(target_shape)
        if sum(1 for s in target_shape if s == -1) > 1:
            raise ValueError(f"There must be at most one unknown dimension (-1) in target_shape. "
                             f"Received: target_shape={target_shape}")
        self.target_shape = target_shape

    def compute_output_shape(self, input_shape):
        if not isinstance(input_shape, tuple) or len(input_shape) < 1:
            raise shape_error(self, "inputs", ("batch", "..."), input_shape,
                              "Reshape keeps the batch axis; give it at least one axis.")
        n_in = _prod(input_shape[1:])
        known = [s for s in self.target_shape if s != -1]
        n_known = int(np.prod(known, dtype=np.int64)) if known else 1
        if -1 in self.target_shape:
            if n_in is None:
                fill = None
            elif n_known == 0 or n_in % n_known:
                raise shape_error(
                    self, "inputs", self.target_shape, input_shape,
                    message=(f"`inputs` of shape {format_shape(input_shape)} ({n_in} values per "
                             f"sample) cannot be reshaped to {format_shape(self.target_shape)}: "
                             f"{n_in} is not a multiple of {n_known}."))
            else:
                fill = n_in // n_known
            out = tuple(fill if s == -1 else s for s in self.target_shape)
        else:
            out = self.target_shape
            if n_in is not None and n_in != n_known:
                raise shape_error(
                    self, "inputs", self.target_shape, input_shape,
                    message=(f"`inputs` of shape {format_shape(input_shape)} ({n_in} values per "
                             f"sample) cannot be reshaped to {format_shape(self.target_shape)} "
                             f"({n_known} values)."))
        return (input_shape[0],) + out

    def call(self, inputs):
        return self.forward(inputs)[0]

    def forward(self, inputs):
        x = np.asarray(inputs)
        return x.reshape((x.shape[0],) + self.target_shape), x.shape

    def backward(self, ctx, d_outputs, need_input_grad=True):
        return Grads(np.asarray(d_outputs).reshape(ctx) if need_input_grad else None)

    def get_config(self):
        cfg = super().get_config()
        cfg["target_shape"] = self.target_shape
        return cfg


class Permute(Layer):
    """Permutes the non-batch axes (``keras.layers.Permute``); `dims` is 1-indexed, e.g. (2, 1)
    swaps time and features of a (B, T, D) input.

    Raises:
        ValueError: `dims` not a permutation of 1..n.
        ShapeError: inputs whose rank is not len(dims) + 1.
    """

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        self.dims = tuple(dims)
        if sorted(self.dims) != list(range(1, len(self.dims) + 1)):
            raise ValueError(f"Invalid permutation argument `dims` for Permute Layer. The set of "
                             f"indices in `dims` must be consecutive and start from 1. "
                             f"Received dims={self.dims}")

    def compute_output_shape(self, input_shape):
        if len(input_shape) != len(self.dims) + 1:
            raise shape_error(self, "inputs", ("batch",) + tuple(f"d{i}" for i in range(1, len(self.dims) + 1)),
                              input_shape)
        return (input_shape[0],) + tuple(input_shape[d] for d in self.dims)

    def call(self, inputs):
        return self.forward(inputs)[0]

    def forward(self, inputs):
        return np.transpose(inputs, (0,) + self.dims), None

    def backward(self, ctx, d_outputs, need_input_grad=True):
        if not need_input_grad:
            return Grads(None)
        return Grads(np.transpose(d_outputs, np.argsort((0,) + self.dims)))

    def get_config(self):
        cfg = super().get_config()
        cfg["dims"] = self.dims
        return cfg


class RepeatVector(Layer):
    """Repeats each sample's vector `n` times: `(B, F)` -> `(B, n, F)` (``keras.layers.RepeatVector``).

    The usual bridge from an LSTM encoder's last output to an LSTM decoder.

    Raises:
        ShapeError: inputs that are not (batch, features), e.g. a whole sequence from an LSTM
            with return_sequences=True (the hint says so).
    """

    def __init__(self, n, **kwargs):
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
            raise TypeError(f"Expected an integer value for `n`, got {type(n)}.")
        if n < 1:
            raise ValueError(f"Argument `n` should be a positive integer. Received: n={n}")
        super().__init__(**kwargs)
        self.n = int(n)

    def compute_output_shape(self, input_shape):
        if not isinstance(input_shape, tuple) or len(input_shape) != 2:
            raise shape_error(self, "inputs", ("batch", "features"), input_shape)
        return (input_shape[0], self.n, input_shape[1])

    def call(self, inputs):
        return self.forward(inputs)[0]

    def forward(self, inputs):
        x = np.asarray(inputs)
        return np.repeat(x[:, None, :], self.n, axis=1), None

    def backward(self, ctx, d_outputs, need_input_grad=True):
        return Grads(np.sum(d_outputs, axis=1) if need_input_grad else None)

    def get_config(self):
        cfg = super().get_config()
        cfg["n"] = self.n
        return cfg
