"""Reshaping layers: Flatten, Reshape, Permute, RepeatVector, and along time UpSampling1D,
ZeroPadding1D, Cropping1D (Keras 3 semantics)."""
import numpy as np

from ..engine.base import Grads, Layer
from ..errors import format_shape, shape_error
from .convolutional import data_format_arg, int_tuple, warn_mask_dropped

__all__ = ["Flatten", "Reshape", "Permute", "RepeatVector", "UpSampling1D", "ZeroPadding1D",
           "Cropping1D"]


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

    def target_hint(self, output_shape, target_shape):
        """A decoder whose RepeatVector(n) makes n steps where the targets have another T."""
        if len(output_shape) != 3 or len(target_shape) != 3 or output_shape[1] is None \
                or target_shape[1] == output_shape[1]:
            return None
        return (f"the output has {output_shape[1]} timesteps because RepeatVector "
                f"'{self.name}' repeats its input {self.n} times, but the targets have "
                f"{target_shape[1]}; use RepeatVector({target_shape[1]}) (the input length), or "
                f"attnlstm.LSTMVAE, which reconstructs each sequence at its own length.")

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


# ---------------------------------------------------------------------------------------------
# Along the time axis of (batch, timesteps, features)


class _TimeAxisLayer(Layer):
    """3-D inputs only; masks are not supported (dropped with Keras' warning), as Keras."""

    _time_axis = 1

    def _check_3d(self, input_shape):
        if not isinstance(input_shape, tuple) or len(input_shape) != 3:
            expected = ("batch", "timesteps", "features") if self._time_axis == 1 \
                else ("batch", "features", "timesteps")
            hint = None
            if isinstance(input_shape, tuple) and len(input_shape) == 2:
                hint = (f"{type(self).__name__} works on the time axis of sequences; add a "
                        f"feature axis, e.g. x[..., None].")
            raise shape_error(self, "inputs", expected, input_shape, hint)

    def compute_mask(self, inputs, mask=None):
        warn_mask_dropped(self, inputs, mask)
        return None

    def call(self, inputs):
        return self.forward(inputs)[0]


class UpSampling1D(_TimeAxisLayer):
    """Repeats each timestep `size` times: `(B, T, F)` -> `(B, T*size, F)`
    (``keras.layers.UpSampling1D``).

    Args:
        size: positive int.

    Raises:
        TypeError: a non-integer `size`. ValueError: ``size <= 0``.
        ShapeError: inputs that are not 3-D.

    Example:
        >>> UpSampling1D(2)(np.zeros((2, 3, 4))).shape
        (2, 6, 4)
    """

    def __init__(self, size=2, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(size, (int, np.integer)) or isinstance(size, bool):
            raise TypeError(f"Expected an integer value for `size`, got {type(size)}.")
        if size <= 0:
            raise ValueError(f"Argument `size` should be a positive integer. Received: size={size}")
        self.size = int(size)

    def compute_output_shape(self, input_shape):
        self._check_3d(input_shape)
        t = input_shape[1]
        return (input_shape[0], None if t is None else t * self.size, input_shape[2])

    def forward(self, inputs):
        return np.repeat(np.asarray(inputs), self.size, axis=1), None

    def backward(self, ctx, d_outputs, need_input_grad=True):
        if not need_input_grad:
            return Grads(None)
        d = np.asarray(d_outputs)
        B, TS, F = d.shape
        return Grads(d.reshape(B, TS // self.size, self.size, F).sum(axis=2))

    def get_config(self):
        cfg = super().get_config()
        cfg["size"] = self.size
        return cfg


class ZeroPadding1D(_TimeAxisLayer):
    """Adds zero timesteps at the start and end (``keras.layers.ZeroPadding1D``).

    Args:
        padding: int (both sides) or a tuple ``(left, right)`` of non-negative ints.
        data_format: ``"channels_last"`` (`(B, T, F)`, default) or ``"channels_first"``.

    Returns:
        `(B, left + T + right, F)`.

    Raises:
        ValueError: a negative or non-integer padding.
        ShapeError: inputs that are not 3-D.

    Example:
        >>> ZeroPadding1D(2)(np.zeros((2, 3, 4))).shape
        (2, 7, 4)
    """

    def __init__(self, padding=1, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = data_format_arg(data_format)
        self.padding = int_tuple(padding, 2, "padding", allow_zero=True)
        self._time_axis = 1 if self.data_format == "channels_last" else 2

    def compute_output_shape(self, input_shape):
        self._check_3d(input_shape)
        out = list(input_shape)
        if out[self._time_axis] is not None:
            out[self._time_axis] += self.padding[0] + self.padding[1]
        return tuple(out)

    def forward(self, inputs):
        x = np.asarray(inputs)
        pads = [(0, 0)] * 3
        pads[self._time_axis] = self.padding
        return np.pad(x, pads), None

    def backward(self, ctx, d_outputs, need_input_grad=True):
        if not need_input_grad:
            return Grads(None)
        d = np.asarray(d_outputs)
        left, right = self.padding
        index = [slice(None)] * 3
        index[self._time_axis] = slice(left, d.shape[self._time_axis] - right)
        return Grads(np.ascontiguousarray(d[tuple(index)]))

    def get_config(self):
        cfg = super().get_config()
        cfg.update(padding=self.padding, data_format=self.data_format)
        return cfg


class Cropping1D(_TimeAxisLayer):
    """Removes timesteps at the start and end (``keras.layers.Cropping1D``).

    Args:
        cropping: int (both sides) or a tuple ``(start, end)`` of non-negative ints.

    Returns:
        `(B, T - start - end, F)`.

    Raises:
        ValueError: a negative or non-integer cropping.
        ShapeError: inputs that are not 3-D, or a cropping that leaves no step.

    Example:
        >>> Cropping1D((1, 2))(np.zeros((2, 6, 4))).shape
        (2, 3, 4)
    """

    def __init__(self, cropping=(1, 1), **kwargs):
        super().__init__(**kwargs)
        self.cropping = int_tuple(cropping, 2, "cropping", allow_zero=True)

    def compute_output_shape(self, input_shape):
        self._check_3d(input_shape)
        t = input_shape[1]
        length = None
        if t is not None:
            length = t - self.cropping[0] - self.cropping[1]
            if length <= 0:
                raise shape_error(
                    self, "inputs", ("batch", f"timesteps > {sum(self.cropping)}", "features"),
                    input_shape,
                    f"cropping={self.cropping} removes all {t} steps; crop less or use longer "
                    f"sequences.")
        return (input_shape[0], length, input_shape[2])

    def forward(self, inputs):
        x = np.asarray(inputs)
        return x[:, self.cropping[0]:x.shape[1] - self.cropping[1]], x.shape[1]

    def backward(self, ctx, d_outputs, need_input_grad=True):
        if not need_input_grad:
            return Grads(None)
        d = np.asarray(d_outputs)
        return Grads(np.pad(d, ((0, 0), (self.cropping[0], ctx - self.cropping[0] - d.shape[1]),
                                (0, 0))))

    def get_config(self):
        cfg = super().get_config()
        cfg["cropping"] = self.cropping
        return cfg
