"""The GRU as NumPy functions on the C kernel (Keras 3 ``keras.layers.GRU`` math).

``gru`` (inference), ``gru_forward`` (keeps what the backward needs) and ``gru_backward``
(backpropagation through time), in the manner of :func:`attnlstm.ops.lstm`.
"""
import numpy as np

from .. import _core
from .. import activations as _activations
from ..errors import shape_error
from ._checks import (Saved, as_c as _as, fast_codes, float_dtype as _dtype,
                      gate_mask, recurrent_grads, recurrent_weights, time_mask)

__all__ = ["gru", "gru_forward", "gru_backward"]


def _bias_shape(reset_after):
    return (lambda H: (2, 3 * H)) if reset_after else (lambda H: (3 * H,))


def gru_forward(x, kernel, recurrent_kernel, bias=None, initial_state=None, mask=None,
                activation="tanh", recurrent_activation="sigmoid", reset_after=True,
                go_backwards=False, dtype=None, name="ops.gru", rec_mask=None, dp_mask=None,
                save_gates=True, impl=0, threads=0):
    """GRU forward over whole sequences, returning everything :func:`gru_backward` needs.

    Same arguments as :func:`gru`, plus:

    Args:
        rec_mask: recurrent-dropout masks `(B, 3H)` (one per gate ``[z, r, h]``) or `(B, H)`
            (shared), or None: gate k reads ``h_{t-1} * rec_mask_k`` in its recurrent product,
            the carried state stays undropped (Keras 3 ``GRUCell`` implementation 1, which
            ``recurrent_dropout > 0`` selects).
        dp_mask: input-dropout masks `(B, 3D)` or `(B, D)`, or None: gate k reads
            ``x_t * dp_mask_k``. (With dropout alone Keras applies one `(B, D)` mask to x.)
        save_gates: keep the gates for the backward (False: inference, less memory).
        impl: 0 the selected path, 1 generic, 2 / 3 AVX2 / AVX-512 (tests; no BLAS on any).
        threads: 0 = attnlstm.set_num_threads' count where the call is large enough; n > 0
            exactly n threads over the batch rows (tests). Results do not depend on it.

    Returns:
        A read-only :class:`~attnlstm.ops.Saved` (a Mapping) with ``outputs`` `(B, T, H)`
        (processing order, masked-output rule applied),
        ``last_output`` `(B, H)`, ``h`` `(B, H)` (the final state), the saved buffers and the
        converted inputs and options.

    Raises:
        ShapeError: an argument of the wrong shape (the message names it).
        ValueError: an activation the kernel does not implement.
    """
    x_arr = np.asarray(x)
    dt = _dtype(dtype, x_arr, np.asarray(kernel))
    if x_arr.ndim != 3:
        hint = ("a GRU reads whole sequences; add a time axis, e.g. x[:, None, :]."
                if x_arr.ndim == 2 else None)
        raise shape_error(name, "x", ("batch", "timesteps", "features"), x_arr.shape, hint)
    B, T, D = x_arr.shape
    if T == 0:
        raise shape_error(name, "x", ("batch", "timesteps >= 1", D), x_arr.shape,
                          "a GRU needs at least one timestep.")
    W, U, H = recurrent_weights(name, kernel, recurrent_kernel, D, dt, "zrh")
    b = None
    if bias is not None:
        b = _as(bias, dt)
        want = (2, 3 * H) if reset_after else (3 * H,)
        if b.shape != want:
            hint = None
            if b.shape == (3 * H,) and reset_after:
                hint = "reset_after=True (Keras' default) takes two bias rows (input, recurrent)."
            elif b.shape == (2, 3 * H):
                hint = "a (2, 3*units) bias belongs to reset_after=True."
            raise shape_error(name, "bias", want, b.shape, hint)
    h0 = None
    if initial_state is not None:
        st = initial_state
        if isinstance(st, (list, tuple)):
            if len(st) != 1:
                raise shape_error(name, "initial_state", f"[h (batch, {H})]",
                                  "[" + ", ".join(str(np.shape(s)) for s in st) + "]",
                                  message=f"`initial_state` of a GRU is one (batch, {H}) array "
                                          f"(or a list of one), got {len(st)}.")
            st = st[0]
        h0 = _as(st, dt)
        if h0.shape != (B, H):
            raise shape_error(name, "initial_state", (B, H), h0.shape)
    m = time_mask(name, mask, B, T)
    r = gate_mask(name, "rec_mask", rec_mask, dt, B, H, "units", "zrh")
    p = gate_mask(name, "dp_mask", dp_mask, dt, B, D, "features", "zrh")
    act = _activations.c_code(activation, "activation")
    ract = _activations.c_code(recurrent_activation, "recurrent_activation")
    x_c = _as(x_arr, dt)
    hs, out, gates, rh = _core.gru_forward(x_c, W, U, b, h0, m, act, ract, bool(reset_after),
                                           bool(go_backwards), p, r, int(impl),
                                           bool(save_gates), int(threads))
    outputs = hs if out is None else out
    return Saved("ops.gru_forward", {
        "outputs": outputs, "last_output": outputs[:, -1], "h": hs[:, -1], "hs": hs,
        "gates": gates, "rh": rh, "x": x_c, "kernel": W, "recurrent_kernel": U, "bias": b,
        "h0": h0, "mask": m, "rec_mask": r, "dp_mask": p, "activation": act,
        "recurrent_activation": ract, "reset_after": bool(reset_after),
        "go_backwards": bool(go_backwards), "impl": int(impl), "threads": int(threads),
    })


def gru_backward(saved, d_outputs=None, d_h=None, d_last_output=None, name="ops.gru_backward"):
    """Gradients of a GRU forward (backpropagation through time, one C call).

    Args:
        saved: the :class:`~attnlstm.ops.Saved` returned by :func:`gru_forward`.
        d_outputs: `(B, T, H)` gradient w.r.t. ``saved["outputs"]``, or None.
        d_h: `(B, H)` gradient w.r.t. the final state ``saved["h"]``, or None.
        d_last_output: `(B, H)` gradient w.r.t. ``saved["last_output"]``, or None.

    Masked steps pass the state gradient through and hand the output gradient to the previous
    step's output; before a sample's first unmasked step the output is the constant 0.

    Returns:
        A dict: ``x`` `(B, T, D)` (w.r.t. the undropped x), ``kernel`` `(D, 3H)`,
        ``recurrent_kernel`` `(H, 3H)`, ``bias`` (`(2, 3H)` or `(3H,)`, None without bias),
        ``h0`` `(B, H)` and ``initial_state`` ``[h0]`` (None without initial_state).

    Raises:
        ShapeError: an upstream gradient of the wrong shape.
        TypeError: `saved` is not what :func:`gru_forward` returned.
        ValueError: `saved` was made with save_gates=False.
    """
    grads, _ = recurrent_grads(name, "ops.gru_forward", saved, d_outputs=d_outputs,
                                d_last_output=d_last_output, d_h=d_h)
    hs = saved["hs"]
    dx, dW, dU, db, dh0 = _core.gru_backward(
        hs, saved["gates"], saved["rh"], saved["x"], saved["kernel"], saved["recurrent_kernel"],
        h0=saved["h0"], mask=saved["mask"], dp_mask=saved["dp_mask"], rec_mask=saved["rec_mask"],
        d_outputs=grads["d_outputs"], d_last=grads["d_last_output"], d_h=grads["d_h"],
        activation=saved["activation"], recurrent_activation=saved["recurrent_activation"],
        reset_after=saved["reset_after"], go_backwards=saved["go_backwards"],
        impl=saved.get("impl", 0), threads=saved.get("threads", 0))
    return {"x": dx, "kernel": dW, "recurrent_kernel": dU,
            "bias": db if saved["bias"] is not None else None,
            "h0": dh0 if saved["h0"] is not None else None,
            "initial_state": [dh0] if saved["h0"] is not None else None}


def gru(x, kernel, recurrent_kernel, bias=None, initial_state=None, mask=None,
        activation="tanh", recurrent_activation="sigmoid", reset_after=True, go_backwards=False,
        return_sequences=False, return_state=False, dtype=None):
    """Gated recurrent unit over whole sequences (Keras 3 ``GRU`` math, one C call).

    Gate order ``[z, r, h]`` (Cho et al. 2014; Keras ``keras.layers.GRU``)::

        z = ra(x_t W_z + bx_z + h U_z + bh_z),  r = ra(x_t W_r + bx_r + h U_r + bh_r)
        n = act(x_t W_h + bx_h + r * (h U_h + bh_h))        # reset_after=True
        n = act(x_t W_h + bx_h + (r * h) U_h)                # reset_after=False (no bh)
        h_t = z * h_{t-1} + (1 - z) * n

    Args:
        x: `(B, T, D)` inputs.
        kernel: `(D, 3H)`; recurrent_kernel: `(H, 3H)`.
        bias: `(2, 3H)` (rows bx, bh) with reset_after, `(3H,)` without, or None.
        initial_state: h0 `(B, H)` (or ``[h0]``), or None for zeros.
        mask: `(B, T)` booleans (True = keep) or None; a masked step carries h and repeats the
            previous output (zeros before the first real step), as Keras on TF.
        activation, recurrent_activation: "tanh", "sigmoid", "hard_sigmoid", "relu", "linear".
        reset_after: Keras' default True (reset applied after the recurrent product).
        go_backwards: process from the last step; outputs then in processing order.
        return_sequences, return_state: as Keras (``[output, h]`` with return_state).
        dtype: float32 or float64; default x's float dtype, else float32.

    Returns:
        `(B, H)` or `(B, T, H)`; with return_state the list ``[output, h]``.

    Raises:
        ShapeError: an argument of the wrong shape (the message names it).
        ValueError: an activation the kernel does not implement.

    Example:
        >>> gru(np.ones((2, 10, 3)), np.zeros((3, 12)), np.zeros((4, 12))).shape
        (2, 4)
    """
    if initial_state is None and mask is None and dtype is None:
        codes = fast_codes(x, kernel, recurrent_kernel, bias, activation, recurrent_activation,
                           3, _bias_shape(reset_after))
        if codes is not None:
            hs = _core.gru_forward(x, kernel, recurrent_kernel, bias, None, None, codes[0],
                                   codes[1], bool(reset_after), bool(go_backwards), None, None,
                                   0, False)[0]
            out = hs if return_sequences else np.ascontiguousarray(hs[:, -1])
            return [out, np.ascontiguousarray(hs[:, -1])] if return_state else out
    r = gru_forward(x, kernel, recurrent_kernel, bias, initial_state, mask, activation,
                    recurrent_activation, reset_after, go_backwards, dtype, save_gates=False)
    out = r["outputs"] if return_sequences else np.ascontiguousarray(r["last_output"])
    if return_state:
        return [out, np.ascontiguousarray(r["h"])]
    return out
