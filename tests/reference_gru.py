"""NumPy twins of the GRU and SimpleRNN kernels: step-by-step Keras 3 math, used as oracles.

They follow keras/src/layers/rnn/gru.py (GRUCell.call, implementation 1 when dropout masks
are given), simple_rnn.py and the masked-step rule of backend/tensorflow/rnn.py literally.
"""
import numpy as np

from reference import ACTIVATIONS


def _steps(T, go_backwards):
    return range(T - 1, -1, -1) if go_backwards else range(T)


def _gate_masks(m, n, gates):
    if m is None:
        return [None] * gates
    m = np.asarray(m)
    return [m] * gates if m.shape[1] == n else np.split(m, gates, axis=-1)


def gru(x, kernel, recurrent_kernel, bias=None, initial_state=None, mask=None,
        activation="tanh", recurrent_activation="sigmoid", reset_after=True, go_backwards=False,
        dp_mask=None, rec_mask=None):
    """Keras GRU one step at a time. Returns (outputs (B,T,H) in processing order, h_T)."""
    act, ract = ACTIVATIONS[activation], ACTIVATIONS[recurrent_activation]
    B, T, D = x.shape
    H = recurrent_kernel.shape[0]
    h = np.zeros((B, H), x.dtype) if initial_state is None else np.array(initial_state, x.dtype)
    if bias is None:
        bx = np.zeros(3 * H, x.dtype)
        bh = np.zeros(3 * H, x.dtype)
    elif reset_after:
        bx, bh = bias[0], bias[1]
    else:
        bx, bh = bias, None
    Wz, Wr, Wh = np.split(kernel, 3, axis=-1)
    Uz, Ur, Uh = np.split(recurrent_kernel, 3, axis=-1)
    pz, pr, ph = _gate_masks(dp_mask, D, 3)
    qz, qr, qh = _gate_masks(rec_mask, H, 3)
    prev_out = np.zeros((B, H), x.dtype)
    outs = []
    for t in _steps(T, go_backwards):
        xt = x[:, t]
        xz = (xt if pz is None else xt * pz) @ Wz + bx[:H]
        xr = (xt if pr is None else xt * pr) @ Wr + bx[H:2 * H]
        xh = (xt if ph is None else xt * ph) @ Wh + bx[2 * H:]
        hz = h if qz is None else h * qz
        hr = h if qr is None else h * qr
        hh = h if qh is None else h * qh
        rz = hz @ Uz
        rr = hr @ Ur
        if reset_after:
            rz = rz + bh[:H]
            rr = rr + bh[H:2 * H]
        z = ract(xz + rz)
        r = ract(xr + rr)
        if reset_after:
            n = act(xh + r * (hh @ Uh + bh[2 * H:]))
        else:
            n = act(xh + (r * hh) @ Uh)
        h_new = z * h + (1 - z) * n
        h, prev_out = _masked_step(mask, t, h_new, h, prev_out)
        outs.append(prev_out)
    return np.stack(outs, axis=1), h


def _masked_step(mask, t, h_new, h, prev_out):
    """Keras' masked step: where mask[:, t] is 0 the state and the output carry over.
    Returns (h, output) after step t."""
    if mask is None:
        return h_new, h_new
    m = np.asarray(mask, bool)[:, t][:, None]
    return np.where(m, h_new, h), np.where(m, h_new, prev_out)


def simple_rnn(x, kernel, recurrent_kernel, bias=None, initial_state=None, mask=None,
               activation="tanh", go_backwards=False, dp_mask=None, rec_mask=None):
    """Keras SimpleRNN one step at a time: h_t = act((x_t p) W + b + (h_{t-1} q) U)."""
    act = ACTIVATIONS[activation]
    B, T, D = x.shape
    H = recurrent_kernel.shape[0]
    h = np.zeros((B, H), x.dtype) if initial_state is None else np.array(initial_state, x.dtype)
    prev_out = np.zeros((B, H), x.dtype)
    outs = []
    for t in _steps(T, go_backwards):
        xt = x[:, t] if dp_mask is None else x[:, t] * dp_mask
        hp = h if rec_mask is None else h * rec_mask
        pre = xt @ kernel
        if bias is not None:
            pre = pre + bias
        h_new = act(pre + hp @ recurrent_kernel)
        h, prev_out = _masked_step(mask, t, h_new, h, prev_out)
        outs.append(prev_out)
    return np.stack(outs, axis=1), h
