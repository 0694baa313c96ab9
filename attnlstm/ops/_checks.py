"""What every op family shares: the compute dtype, contiguous conversion, gradient-argument
checks and shape descriptions, the typed :class:`Saved` a forward hands its backward, and the
one helper that words deprecated names. One copy, imported by the family modules (no import
circles: this module imports only NumPy, :mod:`attnlstm.errors` and :mod:`attnlstm.activations`)."""
import os
import sys
import warnings
from collections.abc import Mapping

import numpy as np

from .. import activations as _activations
from ..errors import shape_error

__all__ = ["float_dtype", "as_c", "grad_array", "describe", "gate_mask", "recurrent_weights",
           "time_mask", "fast_codes", "recurrent_grads", "attention_grads",
           "attention_results", "key_value_grads", "renamed", "take_renamed", "Saved",
           "check_saved"]


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


# ---- one naming convention, old names for one release ------------------------------------------

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _user_stacklevel():
    """The `stacklevel` of the first frame outside attnlstm (where the old name was written),
    so Python's default filters show the warning in the user's script."""
    level, f = 1, sys._getframe(1)
    while f is not None and f.f_code.co_filename.startswith(_PACKAGE_DIR):
        level += 1
        f = f.f_back
    return level


def renamed(name, old, new, value=None):
    """Warn that `old` is now `new` (a DeprecationWarning pointing at the caller's line) and
    return `value`. The one place every op family words its deprecated names (results,
    gradients, keys).
    """
    warnings.warn(f"{name}: `{old}` is deprecated and will be removed in the next release; "
                  f"use `{new}`.", DeprecationWarning, stacklevel=_user_stacklevel())
    return value


def take_renamed(name, kwargs, renames, given):
    """Map deprecated keyword arguments of a backward onto their new names.

    Args:
        name: the op, for messages.
        kwargs: the ``**deprecated`` keywords the op received.
        renames: ``{old: new}``.
        given: ``{new: value}`` of the new-named arguments (None = not given).

    Returns:
        `given` updated with the values passed under old names (each with a DeprecationWarning).

    Raises:
        TypeError: an unknown keyword, or one passed under both its old and new names.
    """
    out = dict(given)
    for old, value in kwargs.items():
        new = renames.get(old)
        if new is None:
            raise TypeError(f"{name}() got an unexpected keyword argument {old!r}")
        if out.get(new) is not None:
            raise TypeError(f"{name}(): pass `{new}` or its deprecated name `{old}`, not both.")
        out[new] = renamed(name, old, new, value)
    return out


def _describe_value(v):
    if isinstance(v, np.ndarray):
        return f"{v.dtype}{tuple(v.shape)}"
    if isinstance(v, Saved):
        return f"<{type(v).__name__}>"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_describe_value(u)}" for k, u in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_describe_value(u) for u in v) + "]"
    return repr(v)


class Saved(Mapping):
    """What a kernel op's ``*_forward`` returns and its ``*_backward`` takes: the forward's
    results (``outputs``, ``attention_scores``, ``h``, ...) and the buffers and converted inputs
    the backward needs, read-only, by key (``saved["outputs"]``) or attribute (``saved.outputs``).

    ``op`` names the forward that made it (e.g. ``"ops.lstm_forward"``); a backward given the
    ``Saved`` of another op raises a ``TypeError`` naming both. The repr lists shapes and
    dtypes, never data. Old key names of a family (``renamed_keys``) still read, with a
    DeprecationWarning, for one release.
    """

    __slots__ = ("op", "_data", "_renamed_keys")

    def __init__(self, op, data, renamed_keys=None):
        object.__setattr__(self, "op", op)
        object.__setattr__(self, "_data", data)
        object.__setattr__(self, "_renamed_keys", renamed_keys or {})

    def __getitem__(self, key):
        try:
            return self._data[key]
        except KeyError:
            new = self._renamed_keys.get(key)
            if new is None:
                raise KeyError(f"{self.op} saved no {key!r}; it has {sorted(self._data)}.") \
                    from None
            return renamed(self.op, f'saved["{key}"]', f'saved["{new}"]', self._data[new])

    def __getattr__(self, key):
        if key.startswith("_"):
            raise AttributeError(key)
        try:
            return self._data[key]
        except KeyError:
            raise AttributeError(f"{self.op} saved no {key!r}; it has {sorted(self._data)}.") \
                from None

    def __setattr__(self, key, value):
        raise AttributeError(f"a Saved is read-only (the backward needs it as the forward "
                             f"left it). Received: {key}=...")

    def __contains__(self, key):
        return key in self._data

    def __iter__(self):
        return iter(self._data)

    def __len__(self):
        return len(self._data)

    def __repr__(self):
        body = ", ".join(f"{k}={_describe_value(v)}" for k, v in self._data.items())
        return f"{type(self).__name__}(op={self.op!r}, {body})"

    def __reduce__(self):
        return (type(self), (self.op, dict(self._data), dict(self._renamed_keys)))


def check_saved(name, saved, *ops):
    """`saved` checked to come from one of `ops` (forward names, e.g. ``"ops.lstm_forward"``).

    Raises:
        TypeError: `saved` is not a :class:`Saved`, or one made by another op (named).
    """
    if not isinstance(saved, Saved):
        raise TypeError(f"{name}: `saved` must be what {' or '.join(ops)} returned, got "
                        f"{type(saved).__name__}.")
    if saved.op not in ops:
        raise TypeError(f"{name}: `saved` comes from {saved.op}; this backward takes what "
                        f"{' or '.join(ops)} returned.")
    return saved


_ND = np.ndarray


def fast_codes(x, kernel, recurrent_kernel, bias, activation, recurrent_activation, k,
               bias_shape):
    """The C call's (activation, recurrent_activation) codes of a k-gate recurrent op when its
    arguments need no conversion and no shape error is possible: x, kernel, recurrent_kernel
    (and bias, of shape ``bias_shape(H)``) already C-contiguous float32/float64 ndarrays of one
    dtype with consistent shapes, activations given by name. Else None: the general path then
    converts, checks and words every error. Cheap attribute tests only (the per-call overhead
    of tiny calls, issue 7)."""
    if not (type(x) is _ND and type(kernel) is _ND and type(recurrent_kernel) is _ND
            and type(activation) is str and type(recurrent_activation) is str):
        return None
    dt = x.dtype
    if dt.char not in "fd" or kernel.dtype != dt or recurrent_kernel.dtype != dt:
        return None
    xs, ws, us = x.shape, kernel.shape, recurrent_kernel.shape
    if len(xs) != 3 or xs[1] < 1 or len(us) != 2 or len(ws) != 2:
        return None
    H = us[0]
    if H < 1 or us[1] != k * H or ws != (xs[2], k * H):
        return None
    if not (x.flags.c_contiguous and kernel.flags.c_contiguous
            and recurrent_kernel.flags.c_contiguous):
        return None
    if bias is not None and (type(bias) is not _ND or bias.dtype != dt
                             or bias.shape != bias_shape(H) or not bias.flags.c_contiguous):
        return None
    act = _activations.C_CODES.get(activation)
    ract = _activations.C_CODES.get(recurrent_activation)
    if act is None or ract is None:
        return None
    return act, ract


def recurrent_grads(name, op, saved, **grads):
    """The checked `saved` of a recurrent op's backward (from `op`, made with gates) and its
    upstream gradients as contiguous arrays of the forward's dtype (None stays None):
    ``d_outputs`` `(B, T, H)`, every other one (``d_last_output``, ``d_h``, ``d_c``) `(B, H)`.

    Returns:
        ``(dict of gradients, (B, T, H))``.

    Raises:
        TypeError: `saved` is not what `op` returned.
        ValueError: `saved` was made with ``save_gates=False``.
        ShapeError: a gradient of another shape (with a hint for a `(B, H)` ``d_outputs``).
    """
    check_saved(name, saved, op)
    if saved["gates"] is None:
        raise ValueError(f"{name}: `saved` comes from {op}(..., save_gates=False), which keeps "
                         f"no gates; run the forward with save_gates=True (the default) to take "
                         f"gradients.")
    hs = saved["hs"]
    B, T, H = hs.shape
    out = {}
    for arg, g in grads.items():
        if g is not None:
            shape = (B, T, H) if arg == "d_outputs" else (B, H)
            g = as_c(g, hs.dtype)
            if g.shape != shape:
                hint = None
                if arg == "d_outputs" and g.shape == (B, H):
                    hint = ("for return_sequences=False pass the gradient of the last output "
                            "as d_last_output.")
                raise shape_error(name, arg, shape, g.shape, hint)
        out[arg] = g
    return out, (B, T, H)


def attention_grads(op, saved, deprecated, renames, d_outputs, d_attention_scores,
                    hints=(), forwards=None):
    """The checked upstream gradients ``(d_outputs, d_attention_scores)`` of the backward of
    attention op `op` (e.g. ``"ops.dot_attention"``): `saved` from ``op + "_forward"`` (or one
    of `forwards`), old keyword names in `deprecated` mapped by `renames` (with a
    DeprecationWarning), both gradients checked against the forward's results and converted to
    their dtype; a None ``d_outputs`` is zeros, a None ``d_attention_scores`` stays None.

    Raises:
        TypeError: `saved` from another op, an unknown keyword, or one given under both names.
        ShapeError: a gradient of the wrong shape (`hints`: one per gradient).
    """
    name = op + "_backward"
    check_saved(name, saved, *(forwards or (op + "_forward",)))
    g = take_renamed(name, deprecated, renames,
                     {"d_outputs": d_outputs, "d_attention_scores": d_attention_scores})
    w = saved["attention_scores"]
    out = saved["outputs"]
    hints = tuple(hints) or (None, None)
    who = saved["name"] + "_backward"     # the forward's name: a layer's, in its messages
    d_out = (np.zeros_like(out) if g["d_outputs"] is None
             else grad_array(who, "d_outputs", g["d_outputs"], out.shape, w.dtype, hints[0]))
    dw = g["d_attention_scores"]
    if dw is not None:
        dw = grad_array(who, "d_attention_scores", dw, w.shape, w.dtype, hints[1])
    return d_out, dw


def attention_results(saved, return_attention_scores):
    """What an attention op returns: ``outputs``, or ``(outputs, attention_scores)``."""
    if return_attention_scores:
        return saved["outputs"], saved["attention_scores"]
    return saved["outputs"]


def key_value_grads(grads, d_key, d_value, key_is_value):
    """`grads` with ``value`` (plus the key path when the value served as key) and ``key``."""
    if key_is_value:
        grads["value"] = d_value + d_key
    else:
        grads["value"] = d_value
        grads["key"] = d_key
    return grads
