"""1-D convolutions: Conv1D and Conv1DTranspose (Keras 3 names, arguments, weights and math).

The products go through the BLAS: the padded input is viewed as overlapping windows (a strided
view, no Python loop over samples or steps), copied once into an im2col matrix of shape
`(B*T_out, kernel_size*D)` and multiplied by the kernel reshaped to `(kernel_size*D, filters)`.
The backward scatters the window gradients back with one strided add per kernel tap
(col2im). Grouped convolutions run one batched ``np.matmul`` over the groups.

Padding follows Keras on the TensorFlow backend: ``"same"`` pads ``max((T_out-1)*s + k_eff - T,
0)`` steps, the smaller half on the left; ``"causal"`` pads ``k_eff - 1`` steps on the left only
(``k_eff = (kernel_size-1)*dilation_rate + 1``). Conv1DTranspose is the adjoint of a Conv1D
(TensorFlow's ``conv_transpose``), so it shares these helpers.
"""
import warnings

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .. import activations, initializers
from ..engine.base import Grads, KerasTensor, Layer, flatten
from ..errors import format_shape, shape_error
from .core import _apply_activation

__all__ = ["Conv1D", "Conv1DTranspose"]


# ---------------------------------------------------------------------------------------------
# Helpers shared with pooling


def int_tuple(value, n, name, allow_zero=False):
    """Keras' ``standardize_tuple``: an int or a sequence of `n` ints, each positive (or >= 0)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        out = (int(value),) * n
    else:
        try:
            out = tuple(value)
        except TypeError:
            raise ValueError(f"The `{name}` argument must be a tuple of {n} integers. "
                             f"Received {name}={value!r}") from None
        if len(out) != n or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                    for v in out):
            raise ValueError(f"The `{name}` argument must be a tuple of {n} integers. "
                             f"Received {name}={value!r}")
        out = tuple(int(v) for v in out)
    low = 0 if allow_zero else 1
    if any(v < low for v in out):
        raise ValueError(f"The `{name}` argument must be a tuple of {n} "
                         f"{'non-negative' if allow_zero else 'positive'} integers. "
                         f"Received {name}={value!r}")
    return out


def data_format_arg(data_format):
    """Keras' ``standardize_data_format`` (None means ``"channels_last"``)."""
    if data_format is None:
        return "channels_last"
    fmt = str(data_format).lower()
    if fmt not in ("channels_last", "channels_first"):
        raise ValueError("The `data_format` argument must be one of {'channels_first', "
                         f"'channels_last'}}. Received: data_format={data_format!r}")
    return fmt


def window_pads(length, window, stride, padding, dilation=1):
    """(pad_left, pad_right, out_length) of a sliding window over `length` steps.

    The window has `window` taps `dilation` steps apart, so it spans ``(window-1)*dilation + 1``
    steps (TensorFlow's "SAME"/"VALID" rules; "causal" pads the span minus one on the left).
    ``length=None`` gives ``(None, None, None)``; a "valid" window longer than the input gives
    out_length <= 0 (callers raise).
    """
    span = (window - 1) * dilation + 1
    if length is None:
        return None, None, None
    if padding == "valid":
        return 0, 0, (length - span) // stride + 1 if length >= span else length - span
    out = (length - 1) // stride + 1 if length > 0 else 0
    if padding == "causal":
        return span - 1, 0, out
    total = max((out - 1) * stride + span - length, 0)
    return total // 2, total - total // 2, out


def windows(xp, n_out, window, stride, dilation=1):
    """Read-only strided view `(B, n_out, window, C)` of the padded `(B, Tp, C)` array."""
    sb, st, sc = xp.strides
    return as_strided(xp, (xp.shape[0], n_out, window, xp.shape[2]),
                      (sb, st * stride, st * dilation, sc), writeable=False)


def scatter_windows(d_windows, padded_len, stride, dilation=1):
    """Adjoint of :func:`windows`: sum `(B, n_out, window, C)` back into `(B, padded_len, C)`.

    One strided add per window tap (``window`` adds in all).
    """
    B, n_out, window, C = d_windows.shape
    out = np.zeros((B, padded_len, C), d_windows.dtype)
    if n_out == 0:
        return out
    for j in range(window):
        start = j * dilation
        out[:, start:start + stride * (n_out - 1) + 1:stride] += d_windows[:, :, j]
    return out


def warn_mask_dropped(layer, inputs, mask):
    """Keras 3 warns when a layer without mask support receives a masked input (said once,
    when the model is built: `inputs` symbolic)."""
    if any(m is not None for m in flatten(mask)) and \
            any(isinstance(t, KerasTensor) for t in flatten(inputs)):
        warnings.warn(
            f"Layer '{layer.name}' (of type {type(layer).__name__}) was passed an input with a "
            f"mask attached to it. However, this layer does not support masking and will "
            f"therefore destroy the mask information. Downstream layers will not see the mask.",
            UserWarning, stacklevel=4)


def serialize_object(obj):
    """A regularizer's or constraint's config value in Keras' form (None stays None)."""
    from .. import constraints, regularizers
    if obj is None:
        return None
    if isinstance(obj, constraints.Constraint):
        return constraints.serialize(obj)
    if isinstance(obj, regularizers.Regularizer):
        return regularizers.serialize(obj)
    try:
        return regularizers.serialize(regularizers.get(obj))
    except (ValueError, TypeError):
        return constraints.serialize(constraints.get(obj))


def layer_kwargs(kwargs, activity_regularizer):
    """Pass `activity_regularizer` on to Layer.__init__ only when one is given.

    Until Layer.__init__ accepts it, a non-None value fails there with the argument named
    (never accepted and ignored).
    """
    if activity_regularizer is not None:
        kwargs["activity_regularizer"] = activity_regularizer
    return kwargs


# ---------------------------------------------------------------------------------------------
# The products (im2col + BLAS), shared by Conv1D and Conv1DTranspose


def conv_forward(x, kernel, stride, dilation, pads, groups):
    """``out[b, t, f] = sum_{j, c} xp[b, t*s + j*d, c] * kernel[j, c, f]`` with group blocks.

    Args:
        x: `(B, T, D)`; kernel `(k, D // groups, F)`; pads (left, right).

    Returns:
        ``(out (B, T_out, F), cols)``: cols is the im2col matrix the backward needs,
        `(B*T_out, k*D)` for one group, `(groups, B*T_out, k*D/groups)` otherwise.
    """
    k, Dg, F = kernel.shape
    B, T, D = x.shape
    xp = np.pad(x, ((0, 0), pads, (0, 0))) if pads != (0, 0) else x
    span = (k - 1) * dilation + 1
    n_out = (xp.shape[1] - span) // stride + 1
    view = windows(np.ascontiguousarray(xp), n_out, k, stride, dilation)   # (B, n_out, k, D)
    N = B * n_out
    if groups == 1:
        cols = view.reshape(N, k * D)
        out = np.matmul(cols, kernel.reshape(k * D, F))
    else:
        Fg = F // groups
        cols = np.ascontiguousarray(
            view.reshape(N, k, groups, Dg).transpose(2, 0, 1, 3)).reshape(groups, N, k * Dg)
        wg = kernel.reshape(k, Dg, groups, Fg).transpose(2, 0, 1, 3).reshape(groups, k * Dg, Fg)
        out = np.matmul(cols, wg).transpose(1, 0, 2)
    return out.reshape(B, n_out, F), cols


def conv_backward(d_out, cols, kernel, x_shape, stride, dilation, pads, groups, need_input_grad):
    """Gradients of :func:`conv_forward`: ``(dx (B, T, D) or None, dkernel (k, D/groups, F))``."""
    k, Dg, F = kernel.shape
    B, T, D = x_shape
    n_out = d_out.shape[1]
    N = B * n_out
    dz = d_out.reshape(N, F)
    if groups == 1:
        dkernel = np.matmul(cols.T, dz).reshape(k, Dg, F)
        dcols = np.matmul(dz, kernel.reshape(k * D, F).T) if need_input_grad else None
    else:
        Fg = F // groups
        dzg = np.ascontiguousarray(dz.reshape(N, groups, Fg).transpose(1, 0, 2))
        dwg = np.matmul(cols.transpose(0, 2, 1), dzg)                     # (G, k*Dg, Fg)
        dkernel = dwg.reshape(groups, k, Dg, Fg).transpose(1, 2, 0, 3).reshape(k, Dg, F)
        dcols = None
        if need_input_grad:
            wg = kernel.reshape(k, Dg, groups, Fg).transpose(2, 0, 1, 3).reshape(
                groups, k * Dg, Fg)
            dcols = np.matmul(dzg, wg.transpose(0, 2, 1))                  # (G, N, k*Dg)
            dcols = dcols.reshape(groups, N, k, Dg).transpose(1, 2, 0, 3)
    if not need_input_grad:
        return None, dkernel
    dxp = scatter_windows(dcols.reshape(B, n_out, k, D), T + pads[0] + pads[1], stride, dilation)
    return dxp[:, pads[0]:pads[0] + T], dkernel


def conv_transpose_forward(y, kernel, out_len, stride, dilation, pads):
    """The adjoint of :func:`conv_forward` over an `out_len`-step signal (one group).

    ``y`` `(B, T_in, D_in)`, ``kernel`` `(k, F, D_in)` -> `(B, out_len, F)`.
    """
    k, F, Din = kernel.shape
    B, Tin, _ = y.shape
    dcols = np.matmul(y.reshape(B * Tin, Din), kernel.reshape(k * F, Din).T)
    full = scatter_windows(dcols.reshape(B, Tin, k, F), out_len + pads[0] + pads[1], stride,
                           dilation)
    return full[:, pads[0]:pads[0] + out_len]


# ---------------------------------------------------------------------------------------------
# Layers


def _check_positive_int(value, name):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"Invalid value for argument `{name}`. Expected a strictly positive "
                         f"value. Received {name}={value}.")
    return int(value)


class _Conv1DBase(Layer):
    """Arguments, weights and shape checks shared by Conv1D and Conv1DTranspose."""

    _paddings = ("valid", "same")

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(**layer_kwargs(kwargs, activity_regularizer))
        self.filters = _check_positive_int(filters, "filters")
        self.kernel_size = int_tuple(kernel_size, 1, "kernel_size")
        self.strides = int_tuple(strides, 1, "strides")
        self.dilation_rate = int_tuple(dilation_rate, 1, "dilation_rate")
        pad = padding.lower() if isinstance(padding, str) else padding
        if pad not in self._paddings:
            raise ValueError(f"The `padding` argument must be one of {list(self._paddings)}. "
                             f"Received: padding={padding!r}")
        self.padding = pad
        self.data_format = data_format_arg(data_format)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        # Given as they are to add_weight, which resolves Keras identifiers; the layer's own
        # activity_regularizer is the base class's.
        self.kernel_regularizer = kernel_regularizer
        self.bias_regularizer = bias_regularizer
        self.kernel_constraint = kernel_constraint
        self.bias_constraint = bias_constraint
        if self.strides[0] > 1 and self.dilation_rate[0] > 1:
            raise ValueError(
                "`strides > 1` not supported in conjunction with `dilation_rate > 1`. "
                f"Received: strides={self.strides} and dilation_rate={self.dilation_rate}")

    # -- shapes ---------------------------------------------------------------------------------

    def _axes(self):
        return ("batch", "timesteps", "channels") if self.data_format == "channels_last" \
            else ("batch", "channels", "timesteps")

    def _split_shape(self, input_shape):
        """(batch, steps, channels) of a checked 3-D input shape."""
        cls = type(self).__name__
        if not isinstance(input_shape, tuple) or len(input_shape) != 3:
            hint = None
            if isinstance(input_shape, tuple) and len(input_shape) == 2:
                if self.data_format == "channels_last":
                    hint = (f"{cls} reads sequences of feature vectors (batch, timesteps, "
                            f"channels); for a batch of univariate series add a channel axis, "
                            f"e.g. x[..., None] (Input(shape=({input_shape[1]}, 1))).")
                else:
                    hint = (f"with data_format='channels_first' {cls} reads (batch, channels, "
                            f"timesteps); add a channel axis, e.g. x[:, None, :].")
            elif isinstance(input_shape, tuple) and len(input_shape) == 4:
                hint = f"{cls} is a 1-D convolution over time; reshape to 3 axes."
            raise shape_error(self, "inputs", self._axes(), input_shape, hint)
        if self.data_format == "channels_last":
            return input_shape[0], input_shape[1], input_shape[2]
        return input_shape[0], input_shape[2], input_shape[1]

    def _join_shape(self, b, t, c):
        return (b, t, c) if self.data_format == "channels_last" else (b, c, t)

    def _check_channels(self, input_shape, channels, expected):
        if channels is None:
            axes = list(self._axes())
            raise shape_error(self, "inputs", tuple(axes), input_shape,
                              "the channel axis of a convolution input must have a known size.")
        if expected is not None and channels != expected:
            want = self._join_shape("batch", "timesteps", expected)
            raise shape_error(
                self, "inputs", want, input_shape,
                f"this {type(self).__name__} was built for {expected} input channels; a layer "
                f"instance keeps its weights, so use a new {type(self).__name__} for inputs "
                f"with {channels} channels.")

    # -- channels_first in and out --------------------------------------------------------------

    def _to_last(self, x):
        return x if self.data_format == "channels_last" else np.swapaxes(x, 1, 2)

    def _from_last(self, y):
        return y if self.data_format == "channels_last" else np.ascontiguousarray(
            np.swapaxes(y, 1, 2))

    # -- weights --------------------------------------------------------------------------------

    def _add_bias(self):
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(self.filters,),
                                        initializer=self.bias_initializer,
                                        regularizer=self.bias_regularizer,
                                        constraint=self.bias_constraint)
        else:
            self.bias = None

    def compute_mask(self, inputs, mask=None):
        warn_mask_dropped(self, inputs, mask)
        return None

    # -- activation and bias, and their gradients -----------------------------------------------

    def _finish(self, z):
        if self.use_bias:
            z += self.bias.value
        return _apply_activation(self, self.activation, z)

    def output_logits(self, ctx):
        """Pre-activation values of a recorded call with a softmax/sigmoid activation."""
        if self.activation in (activations.softmax, activations.sigmoid):
            return self._from_last(ctx["z"])
        return None

    def backward(self, ctx, d_outputs, need_input_grad=True):
        d = self._to_last(np.asarray(d_outputs))
        dz = activations.backward(self.activation, ctx["z"], ctx["y"], d)
        return self._backward_z(ctx, dz, need_input_grad)

    def backward_logits(self, ctx, d_logits, need_input_grad=True):
        return self._backward_z(ctx, self._to_last(np.asarray(d_logits)), need_input_grad)

    def _bias_grad(self, weights, dz):
        if self.use_bias:
            weights[self.bias] = dz.reshape(-1, self.filters).sum(axis=0)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(
            filters=self.filters, kernel_size=self.kernel_size, strides=self.strides,
            padding=self.padding, data_format=self.data_format,
            dilation_rate=self.dilation_rate,
            activation=activations.serialize(self.activation), use_bias=self.use_bias,
            kernel_initializer=initializers.serialize(self.kernel_initializer),
            bias_initializer=initializers.serialize(self.bias_initializer),
            kernel_regularizer=serialize_object(self.kernel_regularizer),
            bias_regularizer=serialize_object(self.bias_regularizer),
            activity_regularizer=serialize_object(getattr(self, "activity_regularizer", None)),
            kernel_constraint=serialize_object(self.kernel_constraint),
            bias_constraint=serialize_object(self.bias_constraint))
        return cfg


class Conv1D(_Conv1DBase):
    """1-D convolution over time (``keras.layers.Conv1D``; cross-correlation, as Keras).

    ``out[b, t, f] = activation(bias[f] + sum_{j, c} x_pad[b, t*strides + j*dilation_rate, c]
    * kernel[j, c, f])``, each of the `groups` blocks of filters reading its own block of input
    channels.

    Args:
        filters: F, number of output channels (positive int, divisible by `groups`).
        kernel_size: k, window length (int or tuple of one int).
        strides: step between windows (int or tuple of one int); `strides > 1` excludes
            `dilation_rate > 1`.
        padding: ``"valid"`` (no padding, ``T_out = (T - k_eff) // strides + 1``), ``"same"``
            (``T_out = ceil(T / strides)``, padding split with the smaller half on the left) or
            ``"causal"`` (``k_eff - 1`` zeros on the left: ``out[t]`` never reads ``x[t+1:]``).
            Case-insensitive.
        data_format: ``"channels_last"`` (default, `(B, T, D)`) or ``"channels_first"``
            (`(B, D, T)`).
        dilation_rate: spacing between the kernel taps; ``k_eff = (k-1)*dilation_rate + 1``.
        groups: number of channel groups (divides D and F).
        activation: Keras activation name or callable; None = linear.
        use_bias: add a bias.
        kernel_initializer, bias_initializer: Keras initializers.
        kernel_regularizer, bias_regularizer, kernel_constraint, bias_constraint: given to the
            weights (``add_weight``), for the trainer.
        activity_regularizer: passed to the Layer base class.

    Call arguments:
        inputs: `(B, T, D)` (channels_last) or `(B, D, T)` floats.

    Returns:
        `(B, T_out, F)` (or `(B, F, T_out)`). Conv1D does not support masking: an input mask is
        dropped with Keras' warning.

    Weights:
        ``kernel`` `(k, D // groups, F)`, ``bias`` `(F,)`.

    Raises:
        ValueError: invalid arguments (named, with the value received).
        ShapeError: inputs that are not 3-D (a 2-D batch of series gets the hint to add a
            channel axis), an unknown channel size, a "valid" window longer than the sequence,
            channels not divisible by `groups`, or a channel count other than the built one.

    Example:
        >>> Conv1D(32, 3, activation="relu")(np.zeros((4, 10, 128))).shape
        (4, 8, 32)
    """

    _paddings = ("valid", "same", "causal")

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, lora_rank=None, lora_alpha=None,
                 **kwargs):
        if lora_rank is not None or lora_alpha is not None:
            raise ValueError("Conv1D does not support LoRA in attnlstm. Received: "
                             f"lora_rank={lora_rank}, lora_alpha={lora_alpha}")
        super().__init__(filters, kernel_size, strides=strides, padding=padding,
                         data_format=data_format, dilation_rate=dilation_rate,
                         activation=activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer,
                         bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer,
                         bias_regularizer=bias_regularizer,
                         activity_regularizer=activity_regularizer,
                         kernel_constraint=kernel_constraint, bias_constraint=bias_constraint,
                         **kwargs)
        if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
            raise ValueError(f"The number of groups must be a positive integer. "
                             f"Received: groups={groups}.")
        self.groups = int(groups)
        if self.filters % self.groups:
            raise ValueError("The number of filters must be evenly divisible by the number of "
                             f"groups. Received: groups={self.groups}, filters={self.filters}.")

    def _geometry(self, steps):
        return window_pads(steps, self.kernel_size[0], self.strides[0], self.padding,
                           self.dilation_rate[0])

    def compute_output_shape(self, input_shape):
        b, t, c = self._split_shape(input_shape)
        self._check_channels(input_shape, c, self.kernel.shape[1] * self.groups
                             if self.built else None)
        if c % self.groups:
            raise shape_error(
                self, "inputs", self._join_shape("batch", "timesteps",
                                                 f"a multiple of groups={self.groups}"),
                input_shape,
                message=(f"the number of input channels must be evenly divisible by the number "
                         f"of groups. Received groups={self.groups}, but the input has {c} "
                         f"channels (full input shape is {format_shape(input_shape)})."))
        _, _, t_out = self._geometry(t)
        if t_out is not None and t_out <= 0:
            span = (self.kernel_size[0] - 1) * self.dilation_rate[0] + 1
            raise shape_error(
                self, "inputs", self._join_shape("batch", f"timesteps >= {span}", c),
                input_shape,
                f"with padding='valid' the window (kernel_size={self.kernel_size[0]}, "
                f"dilation_rate={self.dilation_rate[0]}: {span} steps) must fit in the {t} "
                f"steps; use padding='same' or 'causal', a smaller kernel_size, or longer "
                f"sequences.")
        return self._join_shape(b, t_out, self.filters)

    def build(self, input_shape):
        _, _, c = self._split_shape(input_shape)
        self.kernel = self.add_weight(name="kernel",
                                      shape=(self.kernel_size[0], c // self.groups, self.filters),
                                      initializer=self.kernel_initializer,
                                      regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        self._add_bias()
        self.built = True

    def call(self, inputs):
        return self.forward(inputs)[0]

    def forward(self, inputs):
        x = self._to_last(np.asarray(inputs))
        pl, pr, _ = self._geometry(x.shape[1])
        z, cols = conv_forward(x, self.kernel.value, self.strides[0], self.dilation_rate[0],
                               (pl, pr), self.groups)
        y = self._finish(z)
        return self._from_last(y), {"z": z, "y": y, "cols": cols, "x_shape": x.shape,
                                    "pads": (pl, pr)}

    def _backward_z(self, ctx, dz, need_input_grad):
        dx, dkernel = conv_backward(dz, ctx["cols"], self.kernel.value, ctx["x_shape"],
                                    self.strides[0], self.dilation_rate[0], ctx["pads"],
                                    self.groups, need_input_grad)
        weights = {self.kernel: dkernel}
        self._bias_grad(weights, dz)
        return Grads(self._from_last(dx) if dx is not None else None, weights)

    def get_config(self):
        cfg = super().get_config()
        cfg["groups"] = self.groups
        return cfg


class Conv1DTranspose(_Conv1DBase):
    """Transposed 1-D convolution (``keras.layers.Conv1DTranspose``): the adjoint of a Conv1D,
    mapping `(B, T, D)` to `(B, T_out, F)` with ``T_out`` about ``T * strides``.

    Output length (Keras): ``"valid"``: ``(T-1)*strides + k_eff + output_padding`` (default
    output_padding ``max(k_eff, strides) - k_eff``); ``"same"``: ``T * strides``, or
    ``(T-1)*strides + k_eff % 2 + output_padding`` when output_padding is given.

    Args:
        filters: F, output channels.
        kernel_size, strides, dilation_rate: ints or tuples of one int (`strides > 1`
            excludes `dilation_rate > 1`).
        padding: ``"valid"`` or ``"same"``.
        output_padding: extra steps at the end (int < strides) or None.
        data_format, activation, use_bias, initializers, regularizers, constraints: as Conv1D.

    Call arguments:
        inputs: `(B, T, D)` (or `(B, D, T)` channels_first).

    Returns:
        `(B, T_out, F)`; input masks are dropped (with Keras' warning).

    Weights:
        ``kernel`` `(k, F, D)` (Keras' transposed layout), ``bias`` `(F,)`.

    Raises:
        ValueError: invalid arguments.
        ShapeError: inputs that are not 3-D, an unknown or changed channel size, or a
            "same" output_padding for which TensorFlow's conv_transpose has no solution.

    Example:
        >>> Conv1DTranspose(8, 3, strides=2, padding="same")(np.zeros((2, 5, 4))).shape
        (2, 10, 8)
    """

    def __init__(self, filters, kernel_size, strides=1, padding="valid", output_padding=None,
                 data_format=None, dilation_rate=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(filters, kernel_size, strides=strides, padding=padding,
                         data_format=data_format, dilation_rate=dilation_rate,
                         activation=activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer,
                         bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer,
                         bias_regularizer=bias_regularizer,
                         activity_regularizer=activity_regularizer,
                         kernel_constraint=kernel_constraint, bias_constraint=bias_constraint,
                         **kwargs)
        if output_padding is None:
            self.output_padding = None
        else:
            self.output_padding = int_tuple(output_padding, 1, "output_padding",
                                            allow_zero=True)
            if self.output_padding[0] >= self.strides[0]:
                raise ValueError(
                    "`output_padding` must be strictly less than `strides` for all dimensions. "
                    f"At dimension 0, `output_padding` is {self.output_padding[0]} but "
                    f"`strides` is {self.strides[0]}. Received: output_padding="
                    f"{self.output_padding}, strides={self.strides}")

    def _out_len(self, steps):
        if steps is None:
            return None
        s, span = self.strides[0], (self.kernel_size[0] - 1) * self.dilation_rate[0] + 1
        op = None if self.output_padding is None else self.output_padding[0]
        if self.padding == "valid":
            op = max(span, s) - span if op is None else op
            return (steps - 1) * s + span + op
        if op is None:
            return steps * s
        return (steps - 1) * s + span % 2 + op

    def compute_output_shape(self, input_shape):
        b, t, c = self._split_shape(input_shape)
        self._check_channels(input_shape, c, self.kernel.shape[2] if self.built else None)
        t_out = self._out_len(t)
        if t_out is not None:
            _, _, back = window_pads(t_out, self.kernel_size[0], self.strides[0], self.padding,
                                     self.dilation_rate[0])
            if t_out <= 0 or back != t:
                raise shape_error(
                    self, "inputs", self._axes(), input_shape,
                    message=(f"with padding={self.padding!r}, kernel_size={self.kernel_size}, "
                             f"strides={self.strides} and output_padding="
                             f"{self.output_padding}, an input of {t} steps gives {t_out} output "
                             f"steps, which a Conv1D with the same arguments does not map back "
                             f"to {t} steps (TensorFlow's conv_transpose fails the same way)."),
                    hint="use output_padding=None or another output_padding.")
        return self._join_shape(b, t_out, self.filters)

    def build(self, input_shape):
        _, _, c = self._split_shape(input_shape)
        self.kernel = self.add_weight(name="kernel",
                                      shape=(self.kernel_size[0], self.filters, c),
                                      initializer=self.kernel_initializer,
                                      regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        self._add_bias()
        self.built = True

    def call(self, inputs):
        return self.forward(inputs)[0]

    def forward(self, inputs):
        y_in = self._to_last(np.asarray(inputs))
        out_len = self._out_len(y_in.shape[1])
        pl, pr, _ = window_pads(out_len, self.kernel_size[0], self.strides[0], self.padding,
                                self.dilation_rate[0])
        z = conv_transpose_forward(y_in, self.kernel.value, out_len, self.strides[0],
                                   self.dilation_rate[0], (pl, pr))
        y = self._finish(z)
        return self._from_last(y), {"z": z, "y": y, "x": y_in, "pads": (pl, pr)}

    def _backward_z(self, ctx, dz, need_input_grad):
        # out = col2im(x @ W^T)  =>  im2col(dz) is the gradient of x @ W^T.
        x = ctx["x"]
        k, F, Din = self.kernel.shape
        B, Tin, _ = x.shape
        dzp = np.pad(dz, ((0, 0), ctx["pads"], (0, 0))) if ctx["pads"] != (0, 0) else dz
        view = windows(np.ascontiguousarray(dzp), Tin, k, self.strides[0], self.dilation_rate[0])
        cols = view.reshape(B * Tin, k * F)
        w2 = self.kernel.value.reshape(k * F, Din)
        weights = {self.kernel: np.matmul(cols.T, x.reshape(B * Tin, Din)).reshape(k, F, Din)}
        self._bias_grad(weights, dz)
        dx = None
        if need_input_grad:
            dx = self._from_last(np.matmul(cols, w2).reshape(B, Tin, Din))
        return Grads(dx, weights)

    def get_config(self):
        cfg = super().get_config()
        cfg["output_padding"] = self.output_padding
        return cfg
