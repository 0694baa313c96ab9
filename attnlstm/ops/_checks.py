"""What every op family shares: the compute dtype, contiguous conversion, gradient-argument
checks and shape descriptions. One copy, imported by the family modules (no import circles:
this module imports only NumPy and :mod:`attnlstm.errors`)."""
import numpy as np

from ..errors import shape_error

__all__ = ["float_dtype", "as_c", "grad_array", "describe"]


def float_dtype(dtype, *arrays):
    """The float dtype to compute in: `dtype` if given, else the first floating array's
    dtype (float32 or float64), else float32 (Keras' default).

    Raises:
        TypeError: a `dtype` other than float32/float64.
    """
    if dtype is not None:
        dt = np.dtype(dtype)
        if dt not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64. Received: dtype={dtype!r}")
        return dt
    for a in arrays:
        if a is not None and isinstance(a, np.ndarray) and a.dtype in (np.float32, np.float64):
            return a.dtype
    return np.dtype(np.float32)


def as_c(a, dt):
    """`a` as a C-contiguous array of dtype `dt` (no copy when it already is one)."""
    return np.ascontiguousarray(a, dtype=dt)


def grad_array(name, arg, g, shape, dt, hint=None):
    """An upstream gradient `g` checked against the forward result's `shape`, as `dt`.

    Raises:
        ShapeError: `g` has another shape (the message names `name` and `arg`).
    """
    g = np.asarray(g)
    if g.shape != tuple(shape):
        raise shape_error(name, arg, tuple(shape), g.shape,
                          hint or f"`{arg}` is the gradient of the loss with respect to the "
                                  f"forward's result of that shape.")
    return as_c(g, dt)


def describe(obj):
    """Shapes of an array or of a list of arrays, for messages."""
    if isinstance(obj, (list, tuple)):
        return "[" + ", ".join(str(np.shape(o)) for o in obj) + "]"
    return str(np.shape(obj))


def gate_mask(name, arg, mask, dt, B, n, axis, gates):
    """A recurrent layer's dropout mask: `(B, n)` (one mask for every gate) or `(B, k n)` (one per
    gate, k = len(`gates`)) as a contiguous `dt` array of shape `(B, k n)` (what the binding
    takes), or None. `gates` names them in order, e.g. ``"ifco"`` (LSTM) or ``"zrh"`` (GRU).

    Raises:
        ShapeError: any other shape.
    """
    if mask is None:
        return None
    k = len(gates)
    a = as_c(mask, dt)
    if a.ndim != 2 or a.shape[0] != B or a.shape[1] not in (n, k * n):
        raise shape_error(name, arg, f"(batch, {axis}) = {(B, n)} or (batch, {k}*{axis}) = "
                                     f"{(B, k * n)}", a.shape,
                          message=f"`{arg}` must have shape {(B, n)} (one mask for all gates) "
                                  f"or {(B, k * n)} (one per gate [{', '.join(gates)}]), got "
                                  f"{tuple(a.shape)}.")
    return np.tile(a, (1, k)) if a.shape[1] == n else a


def recurrent_weights(name, kernel, recurrent_kernel, D, dt, gates):
    """``(W (D, k H), U (H, k H), H)`` of a k-gate recurrent cell as contiguous `dt` arrays.

    Raises:
        ShapeError: U not `(units, k*units)`, or W not `(D, k*units)` (with a hint when W was
            made for another number of input features).
    """
    k = len(gates)
    W, U = as_c(kernel, dt), as_c(recurrent_kernel, dt)
    if U.ndim != 2 or U.shape[0] < 1 or U.shape[1] != k * U.shape[0]:
        raise shape_error(name, "recurrent_kernel", ("units", f"{k}*units"), U.shape)
    H = U.shape[0]
    if W.shape != (D, k * H):
        hint = None
        if W.ndim == 2 and W.shape[1] == k * H:
            hint = f"the kernel was made for {W.shape[0]} input features; x has {D}."
        raise shape_error(name, "kernel", (D, k * H), W.shape, hint)
    return W, U, H


def time_mask(name, mask, B, T):
    """A `(B, T)` time mask as a contiguous bool array, or None.

    Raises:
        ShapeError: another shape.
    """
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.shape != (B, T):
        raise shape_error(name, "mask", (B, T), m.shape,
                          "a time mask has one entry per (sample, timestep).")
    return np.ascontiguousarray(m != 0)
