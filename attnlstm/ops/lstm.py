"""The LSTM kernel as NumPy functions: forward, backward and the one-call ``lstm``.

Every function takes array-likes (lists, any float dtype, non-contiguous arrays), checks shapes
(raising :class:`attnlstm.ShapeError`, a ``ValueError``), and returns NumPy arrays. The layers in
:mod:`attnlstm.layers` call these same functions.
"""
import numpy as np

from .. import _core
from .._limits import check_blas_sizes
from .. import activations as _activations
from ..errors import shape_error
from ._autograd import boxed, traced
from ._checks import (Saved, as_c as _as, describe as _describe, fast_codes, float_dtype,
                      gate_mask, recurrent_grads, recurrent_weights, time_mask)

__all__ = ["lstm", "lstm_forward", "lstm_backward"]


def _bias_shape(H):
    return (4 * H,)


def lstm_forward(x, kernel, recurrent_kernel, bias=None, initial_state=None, mask=None,
                 activation="tanh", recurrent_activation="sigmoid", go_backwards=False,
                 dtype=None, name="ops.lstm", rec_mask=None, dp_mask=None, save_act_c=True,
                 save_gates=True):
    """LSTM forward over whole sequences, returning everything the backward pass needs.

    Same arguments as :func:`lstm`, plus:

    Args:
        rec_mask: recurrent-dropout masks, `(B, 4H)` (one `(B, H)` mask per gate, concatenated
            in gate order ``[i, f, c, o]``) or `(B, H)` (shared by the four gates), or None.
            Gate k reads ``h_{t-1} * rec_mask_k`` in its recurrent matmul, the same mask at
            every step; the carried state stays undropped. This is Keras 3 ``LSTMCell`` in
            training: with ``recurrent_dropout > 0`` it switches to implementation 1 and draws
            four masks ``dropout(ones((B, H)), rate)``, i.e. ``(u >= rate) / (1 - rate)``.
        dp_mask: input-dropout masks, `(B, 4D)` per gate or `(B, D)` shared, or None; gate k
            reads ``x_t * dp_mask_k``. With ``recurrent_dropout > 0`` Keras draws four (pass
            them here). With ``recurrent_dropout == 0`` Keras uses one `(B, D)` mask for every
            step and gate; then ``x * dp_mask[:, None, :]`` before the call is equivalent
            (chain the ``"x"`` gradient of :func:`lstm_backward` through the same product), or
            pass it here and get the gradient w.r.t. the undropped x.
        save_act_c: also save ``act_c`` = activation(c) per step (B,T,H), so that
            :func:`lstm_backward` need not recompute it (costs one copy of a (B,T,H) buffer).
        save_gates: keep the activated gates (B,T,4H) for :func:`lstm_backward`. False for
            inference: the kernel then never writes them (less memory traffic), ``gates`` is
            None and :func:`lstm_backward` raises ValueError.

    Returns:
        A read-only :class:`~attnlstm.ops.Saved` (a Mapping) with ``outputs`` (B,T,H)
        (processing order, masked-output rule applied),
        ``last_output`` (B,H), ``h`` (B,H), ``c`` (B,H) (final states), the saved buffers
        ``hs``, ``cs`` (B,T,H), ``gates`` (B,T,4H) and ``act_c`` (B,T,H) or None, and the
        converted inputs and options that :func:`lstm_backward` needs (``x``, ``kernel``,
        ``recurrent_kernel``, ``bias``, ``h0``, ``c0``, ``mask``, ``rec_mask``,
        ``activation``, ``recurrent_activation``, ``go_backwards``).

    Raises:
        ShapeError: any argument of the wrong shape (the message names it).
    """
    if (initial_state is None and mask is None and dtype is None and rec_mask is None
            and dp_mask is None):
        codes = fast_codes(x, kernel, recurrent_kernel, bias, activation, recurrent_activation,
                           4, _bias_shape)
        if codes is not None:
            go_backwards = bool(go_backwards)
            res = _core.lstm_forward(x, kernel, recurrent_kernel, bias, None, None, None,
                                     codes[0], codes[1], go_backwards, None, None,
                                     bool(save_act_c), save_gates=bool(save_gates))
            hs, cs = res[0], res[1]
            return Saved("ops.lstm_forward", {
                "outputs": hs, "last_output": hs[:, -1], "h": hs[:, -1], "c": cs[:, -1],
                "hs": hs, "cs": cs, "gates": res[3], "act_c": res[4] if save_act_c else None,
                "x": x, "kernel": kernel, "recurrent_kernel": recurrent_kernel, "bias": bias,
                "h0": None, "c0": None, "mask": None, "rec_mask": None, "dp_mask": None,
                "activation": codes[0], "recurrent_activation": codes[1],
                "go_backwards": go_backwards,
            })
    x_arr = np.asarray(x)
    dt = float_dtype(dtype, x_arr, np.asarray(kernel))
    if x_arr.ndim != 3:
        hint = None
        if x_arr.ndim == 2:
            hint = "an LSTM reads whole sequences; add a time axis, e.g. x[:, None, :]."
        raise shape_error(name, "x", ("batch", "timesteps", "features"), x_arr.shape, hint)
    B, T, D = x_arr.shape
    check_blas_sizes(name, "x", x_arr.shape, {"batch": B, "timesteps": T, "features": D,
                                              "batch*timesteps": B * T})
    W, U, H = recurrent_weights(name, kernel, recurrent_kernel, D, dt, "ifco")
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
    m = time_mask(name, mask, B, T)
    r = gate_mask(name, "rec_mask", rec_mask, dt, B, H, "units", "ifco")
    p = gate_mask(name, "dp_mask", dp_mask, dt, B, D, "features", "ifco")
    if T == 0:
        raise shape_error(name, "x", ("batch", "timesteps >= 1", D), x_arr.shape,
                          "an LSTM needs at least one timestep.")
    x_c = _as(x_arr, dt)
    act = _activations.c_code(activation, "activation")
    ract = _activations.c_code(recurrent_activation, "recurrent_activation")
    res = _core.lstm_forward(x_c, W, U, b, h0, c0, m, act, ract, bool(go_backwards),
                             dp_mask=p, rec_mask=r, save_act_c=bool(save_act_c),
                             save_gates=bool(save_gates))
    hs, cs, out, gates = res[:4]
    act_c = res[4] if save_act_c else None
    outputs = hs if out is None else out
    return Saved("ops.lstm_forward", {
        "outputs": outputs, "last_output": outputs[:, -1], "h": hs[:, -1], "c": cs[:, -1],
        "hs": hs, "cs": cs, "gates": gates, "act_c": act_c,
        "x": x_c, "kernel": W, "recurrent_kernel": U, "bias": b, "h0": h0, "c0": c0,
        "mask": m, "rec_mask": r, "dp_mask": p, "activation": act, "recurrent_activation": ract,
        "go_backwards": bool(go_backwards),
    })


def lstm_backward(saved, d_outputs=None, d_h=None, d_c=None, d_last_output=None,
                  name="ops.lstm_backward"):
    """Gradients of an LSTM forward (backpropagation through time, one C call).

    The loss is any function of the forward's results; pass its gradients w.r.t. them (None =
    zero): ``d_outputs`` `(B, T, H)` w.r.t. ``saved["outputs"]`` (processing order, after the
    mask rule: the ``return_sequences=True`` output), ``d_last_output`` `(B, H)` w.r.t.
    ``saved["last_output"]`` (the ``return_sequences=False`` output), ``d_h`` and ``d_c``
    `(B, H)` w.r.t. the final states ``saved["h"]``, ``saved["c"]`` (``return_state``).

    Masked steps pass the gradients of h and c through unchanged and hand the output gradient
    to the previous step's output (a masked step repeats it); before a sample's first unmasked
    step the output is the constant 0 and its gradient is dropped.

    Args:
        saved: the :class:`~attnlstm.ops.Saved` returned by :func:`lstm_forward`.
        d_outputs, d_h, d_c, d_last_output: upstream gradients as above, or None.

    Returns:
        A dict of gradients: ``x`` `(B, T, D)` (w.r.t. the x given to the forward, before
        ``dp_mask``), ``kernel`` `(D, 4H)`, ``recurrent_kernel`` `(H, 4H)`, ``bias``
        `(4H,)` (None if the forward had no bias), ``h0`` and ``c0`` `(B, H)` (None if the
        forward had no initial_state), and ``initial_state``, the list ``[h0, c0]`` of those
        two (None without initial_state). Same dtype as the forward.

    Raises:
        ShapeError: an upstream gradient of the wrong shape.
        TypeError: `saved` is not what :func:`lstm_forward` returned.
        ValueError: `saved` was made with ``save_gates=False``.
    """
    grads, _ = recurrent_grads(name, "ops.lstm_forward", saved, d_outputs=d_outputs,
                                d_last_output=d_last_output, d_h=d_h, d_c=d_c)
    hs = saved["hs"]
    dx, dW, dU, db, dh0, dc0 = _core.lstm_backward(
        hs, saved["cs"], saved["gates"], saved["x"], saved["kernel"], saved["recurrent_kernel"],
        h0=saved["h0"], c0=saved["c0"], mask=saved["mask"], dp_mask=saved["dp_mask"],
        rec_mask=saved["rec_mask"], act_c=saved["act_c"], d_outputs=grads["d_outputs"],
        d_last=grads["d_last_output"], d_h=grads["d_h"], d_c=grads["d_c"],
        activation=saved["activation"], recurrent_activation=saved["recurrent_activation"],
        go_backwards=saved["go_backwards"])
    has_state = saved["h0"] is not None
    return {
        "x": dx, "kernel": dW, "recurrent_kernel": dU,
        "bias": db if saved["bias"] is not None else None,
        "h0": dh0 if has_state else None, "c0": dc0 if has_state else None,
        "initial_state": [dh0, dc0] if has_state else None,
    }


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
    if initial_state is None and mask is None and dtype is None:
        # fast path (issue 7: per-call overhead of a tiny call): one C call, no saved dict
        codes = fast_codes(x, kernel, recurrent_kernel, bias, activation, recurrent_activation,
                           4, _bias_shape)
        if codes is not None:
            res = _core.lstm_forward(x, kernel, recurrent_kernel, bias, None, None, None,
                                     codes[0], codes[1], bool(go_backwards), None, None, False,
                                     save_gates=False)
            hs = res[0]
            output = hs if return_sequences else np.ascontiguousarray(hs[:, -1])
            if return_state:
                return [output, np.ascontiguousarray(hs[:, -1]),
                        np.ascontiguousarray(res[1][:, -1])]
            return output
    if boxed(x, kernel, recurrent_kernel, bias, initial_state):
        return _lstm_traced(x, kernel, recurrent_kernel, bias, initial_state, mask, activation,
                            recurrent_activation, go_backwards, return_sequences, return_state,
                            dtype)
    r = lstm_forward(x, kernel, recurrent_kernel, bias, initial_state, mask, activation,
                     recurrent_activation, go_backwards, dtype, save_act_c=False,
                     save_gates=False)
    output = r["outputs"] if return_sequences else np.ascontiguousarray(r["last_output"])
    if return_state:
        return [output, np.ascontiguousarray(r["h"]), np.ascontiguousarray(r["c"])]
    return output


def _lstm_traced(x, kernel, recurrent_kernel, bias, initial_state, mask, activation,
                 recurrent_activation, go_backwards, return_sequences, return_state, dtype):
    """ops.lstm inside a traced call: one autograd node with the kernel's BPTT backward."""
    h0 = c0 = None
    if initial_state is not None:
        h0, c0 = initial_state

    def forward(x, kernel, recurrent_kernel, bias, h0, c0):
        state = None if h0 is None else [h0, c0]
        return lstm_forward(x, kernel, recurrent_kernel, bias, state, mask, activation,
                            recurrent_activation, go_backwards, dtype)

    def backward(saved, d_outputs, d_h, d_c):
        return lstm_backward(saved, d_outputs=d_outputs, d_h=d_h, d_c=d_c)

    outputs, h, c = traced(forward, backward,
                           {"x": x, "kernel": kernel, "recurrent_kernel": recurrent_kernel,
                            "bias": bias, "h0": h0, "c0": c0}, ("outputs", "h", "c"))
    output = outputs if return_sequences else outputs[:, -1]
    return [output, h, c] if return_state else output
