"""NumPy-level functional API: each C kernel as a plain function on arrays.

Every function takes array-likes (lists, any float dtype, non-contiguous arrays), checks shapes
(raising :class:`attnlstm.ShapeError`, a ``ValueError``), and returns NumPy arrays. The layers in
:mod:`attnlstm.layers` call these same functions.
"""
import numpy as np

from . import _core
from . import activations as _activations
from .errors import shape_error

__all__ = ["lstm", "lstm_forward", "float_dtype"]


def float_dtype(dtype, *arrays):
    """The float dtype to compute in: `dtype` if given, else the first floating array's
    dtype (float32 or float64), else float32 (Keras' default)."""
    if dtype is not None:
        dt = np.dtype(dtype)
        if dt not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64. Received: dtype={dtype!r}")
        return dt
    for a in arrays:
        if a is not None and isinstance(a, np.ndarray) and a.dtype in (np.float32, np.float64):
            return a.dtype
    return np.dtype(np.float32)


def _as(a, dt):
    return np.ascontiguousarray(a, dtype=dt)


def lstm_forward(x, kernel, recurrent_kernel, bias=None, initial_state=None, mask=None,
                 activation="tanh", recurrent_activation="sigmoid", go_backwards=False,
                 dtype=None, name="ops.lstm"):
    """LSTM forward over whole sequences, returning everything the backward pass needs.

    Same arguments as :func:`lstm`. Returns a dict with ``outputs`` (B,T,H) (processing order,
    masked-output rule applied), ``last_output`` (B,H), ``h`` (B,H), ``c`` (B,H) (final
    states), and the saved buffers ``hs``, ``cs`` (B,T,H) and ``gates`` (B,T,4H).
    """
    x_arr = np.asarray(x)
    dt = float_dtype(dtype, x_arr, np.asarray(kernel))
    if x_arr.ndim != 3:
        hint = None
        if x_arr.ndim == 2:
            hint = "an LSTM reads whole sequences; add a time axis, e.g. x[:, None, :]."
        raise shape_error(name, "x", ("batch", "timesteps", "features"), x_arr.shape, hint)
    B, T, D = x_arr.shape
    W = _as(kernel, dt)
    U = _as(recurrent_kernel, dt)
    if U.ndim != 2 or U.shape[0] < 1 or U.shape[1] != 4 * U.shape[0]:
        raise shape_error(name, "recurrent_kernel", ("units", "4*units"), U.shape)
    H = U.shape[0]
    if W.shape != (D, 4 * H):
        hint = None
        if W.ndim == 2 and W.shape[1] == 4 * H:
            hint = f"the kernel was made for {W.shape[0]} input features; x has {D}."
        raise shape_error(name, "kernel", (D, 4 * H), W.shape, hint)
    b = None
    if bias is not None:
        b = _as(bias, dt)
        if b.shape != (4 * H,):
            raise shape_error(name, "bias", (4 * H,), b.shape)
    h0 = c0 = None
    if initial_state is not None:
        if not isinstance(initial_state, (list, tuple)) or len(initial_state) != 2:
            raise shape_error(name, "initial_state", "[h (batch, units), c (batch, units)]",
                              _describe(initial_state),
                              message=f"`initial_state` must be a list [h, c] of two (batch, {H}) "
                                      f"arrays, got {_describe(initial_state)}.")
        h0, c0 = _as(initial_state[0], dt), _as(initial_state[1], dt)
        for nm, s in (("initial_state[0]", h0), ("initial_state[1]", c0)):
            if s.shape != (B, H):
                raise shape_error(name, nm, (B, H), s.shape)
    m = None
    if mask is not None:
        m = np.asarray(mask)
        if m.shape != (B, T):
            raise shape_error(name, "mask", (B, T), m.shape,
                              "a time mask has one entry per (sample, timestep).")
        m = np.ascontiguousarray(m != 0)
    if T == 0:
        raise shape_error(name, "x", ("batch", "timesteps >= 1", D), x_arr.shape,
                          "an LSTM needs at least one timestep.")
    x_c = _as(x_arr, dt)
    hs, cs, out, gates = _core.lstm_forward(
        x_c, W, U, b, h0, c0, m,
        _activations.c_code(activation, "activation"),
        _activations.c_code(recurrent_activation, "recurrent_activation"),
        bool(go_backwards))
    outputs = hs if out is None else out
    return {
        "outputs": outputs, "last_output": outputs[:, -1], "h": hs[:, -1], "c": cs[:, -1],
        "hs": hs, "cs": cs, "gates": gates,
    }


def _describe(obj):
    if isinstance(obj, (list, tuple)):
        return "[" + ", ".join(str(np.shape(o)) for o in obj) + "]"
    return str(np.shape(obj))


def lstm(x, kernel, recurrent_kernel, bias=None, initial_state=None, mask=None,
         activation="tanh", recurrent_activation="sigmoid", go_backwards=False,
         return_sequences=False, return_state=False, dtype=None):
    """Long short-term memory over whole sequences (Keras 3 ``LSTM`` math, one C call).

    Gate order ``[i, f, c, o]``: ``z = x_t W + h_{t-1} U + b``, ``c_t = f c_{t-1} + i act(z_c)``,
    ``h_t = o act(c_t)`` with ``i, f, o = recurrent_activation(z_{i,f,o})`` (Hochreiter &
    Schmidhuber 1997; Keras ``keras.layers.LSTM``).

    Args:
        x: `(B, T, D)` inputs.
        kernel: `(D, 4H)` input weights (Keras ``kernel``).
        recurrent_kernel: `(H, 4H)` recurrent weights (Keras ``recurrent_kernel``).
        bias: `(4H,)` or None.
        initial_state: ``[h0, c0]``, each `(B, H)`, or None for zeros.
        mask: `(B, T)` booleans (True = keep) or None. A masked step carries h and c over and
            repeats the previous output (zeros before a sample's first unmasked step), as Keras.
        activation, recurrent_activation: ``"tanh"``, ``"sigmoid"``, ``"hard_sigmoid"``
            (Keras 3: ``clip(x/6 + 1/2, 0, 1)``), ``"relu"``, ``"linear"`` or None.
        go_backwards: process the sequence from the last step to the first; the output
            sequence is then in processing (reversed) order, as Keras.
        return_sequences: return the `(B, T, H)` outputs instead of the last `(B, H)` output.
        return_state: also return the final ``h`` and ``c``, each `(B, H)`.
        dtype: float32 or float64; default: x's float dtype, else float32.

    Returns:
        `(B, H)` or `(B, T, H)`; with ``return_state``, the list ``[output, h, c]``.

    Raises:
        ShapeError: any argument of the wrong shape (the message names it).
        ValueError: an activation the kernel does not implement.

    Example:
        >>> y = lstm(np.ones((2, 10, 3)), np.zeros((3, 16)), np.zeros((4, 16)))
        >>> y.shape
        (2, 4)
    """
    r = lstm_forward(x, kernel, recurrent_kernel, bias, initial_state, mask, activation,
                     recurrent_activation, go_backwards, dtype)
    output = r["outputs"] if return_sequences else np.ascontiguousarray(r["last_output"])
    if return_state:
        return [output, np.ascontiguousarray(r["h"]), np.ascontiguousarray(r["c"])]
    return output


# Attention kernels (documented in their modules), exported here as the one functional API.
from ._ops_attention import (  # noqa: E402
    additive_attention, additive_attention_backward, additive_attention_forward,
    bahdanau_attention, bahdanau_attention_backward, bahdanau_attention_forward, bahdanau_keys,
    dot_attention, dot_attention_backward, dot_attention_forward)
from ._ops_mha import (  # noqa: E402
    multi_head_attention, multi_head_attention_backward, multi_head_attention_forward,
    relative_attention, relative_attention_backward, relative_attention_forward)

__all__ += [
    "dot_attention", "dot_attention_forward", "dot_attention_backward", "additive_attention",
    "additive_attention_forward", "additive_attention_backward", "bahdanau_attention",
    "bahdanau_attention_forward", "bahdanau_attention_backward", "bahdanau_keys",
    "multi_head_attention", "multi_head_attention_forward", "multi_head_attention_backward",
    "relative_attention", "relative_attention_forward", "relative_attention_backward",
]
