"""NumPy twins of attnlstm's C kernels: plain, step-by-step code used as test oracles.

They follow Keras 3's math literally (keras/src/layers/rnn/lstm.py, backend/tensorflow/rnn.py),
one time step at a time, in float64 unless given float32 arrays.
"""
import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


ACTIVATIONS = {
    "linear": lambda x: x,
    None: lambda x: x,
    "tanh": np.tanh,
    "sigmoid": sigmoid,
    "hard_sigmoid": lambda x: np.clip(x / 6.0 + 0.5, 0.0, 1.0),
    "relu": lambda x: np.maximum(x, 0.0),
}


# Derivatives as functions of the pre-activation z (the C kernel uses the outputs instead, so
# the twin checks that route independently). At kinks the one-sided value TF uses.
DERIVATIVES = {
    "linear": lambda z: np.ones_like(z),
    None: lambda z: np.ones_like(z),
    "tanh": lambda z: 1.0 - np.tanh(z) ** 2,
    "sigmoid": lambda z: sigmoid(z) * (1.0 - sigmoid(z)),
    "hard_sigmoid": lambda z: np.where((z > -3.0) & (z < 3.0), 1.0 / 6.0, 0.0).astype(z.dtype),
    "relu": lambda z: (z > 0).astype(z.dtype),
}


def _steps(T, go_backwards):
    return range(T - 1, -1, -1) if go_backwards else range(T)


def gate_masks(m, n):
    """Four per-gate masks [m_i, m_f, m_c, m_o] from a (B, 4n) or a shared (B, n) mask."""
    if m is None:
        return None
    m = np.asarray(m)
    return [m] * 4 if m.shape[1] == n else np.split(m, 4, axis=-1)


def per_gate(m, n):
    """The (B, 4n) per-gate form the binding takes, from a (B, 4n) or a shared (B, n) mask."""
    return None if m is None else np.concatenate(gate_masks(m, n), axis=-1)


def lstm(x, kernel, recurrent_kernel, bias=None, initial_state=None, mask=None,
         activation="tanh", recurrent_activation="sigmoid", go_backwards=False, rec_mask=None,
         dp_mask=None):
    """Keras LSTM, one step at a time. Returns (outputs (B,T,H) in processing order,
    last_output (B,H), h_T (B,H), c_T (B,H)).

    dp_mask (B,D) or (B,4D), rec_mask (B,H) or (B,4H): dropout masks as Keras 3 LSTMCell.call
    applies them in training with implementation 1 (forced by recurrent_dropout > 0): gate k
    reads x_t * dp_k and h_{t-1} * rec_k (split matmuls); the carried state is undropped.
    """
    return _lstm_steps(x, kernel, recurrent_kernel, bias, initial_state, mask, activation,
                       recurrent_activation, go_backwards, rec_mask, dp_mask)[:4]


def _lstm_steps(x, kernel, recurrent_kernel, bias, initial_state, mask, activation,
                recurrent_activation, go_backwards, rec_mask, dp_mask=None):
    act, ract = ACTIVATIONS[activation], ACTIVATIONS[recurrent_activation]
    B, T, _ = x.shape
    H = recurrent_kernel.shape[0]
    if initial_state is None:
        h = np.zeros((B, H), x.dtype)
        c = np.zeros((B, H), x.dtype)
    else:
        h, c = (np.array(s, dtype=x.dtype) for s in initial_state)
    prev_out = np.zeros((B, H), x.dtype)
    outs, cache = [], []
    pm, rm = gate_masks(dp_mask, x.shape[2]), gate_masks(rec_mask, H)
    Wk, Uk = np.split(kernel, 4, axis=-1), np.split(recurrent_kernel, 4, axis=-1)
    for t in _steps(T, go_backwards):
        if rm is None:
            hd = [h] * 4
        else:
            hd = [h * r for r in rm]
        if pm is None:
            z = x[:, t] @ kernel
        else:
            z = np.concatenate([(x[:, t] * p) @ w for p, w in zip(pm, Wk)], -1)
        if rm is None:
            z = z + h @ recurrent_kernel
        else:
            z = z + np.concatenate([hk @ u for hk, u in zip(hd, Uk)], -1)
        if bias is not None:
            z = z + bias
        zi, zf, zc, zo = np.split(z, 4, axis=-1)
        i, f, o = ract(zi), ract(zf), ract(zo)
        g = act(zc)
        c_new = f * c + i * g
        h_new = o * act(c_new)
        if mask is not None:
            m = np.asarray(mask[:, t], bool)[:, None]
        else:
            m = np.ones((B, 1), bool)
        cache.append(dict(t=t, hd=hd, c=c, z=z, i=i, f=f, g=g, o=o, c_new=c_new, m=m))
        h_new = np.where(m, h_new, h)
        c_new = np.where(m, c_new, c)
        out = np.where(m, h_new, prev_out)
        h, c, prev_out = h_new, c_new, out
        outs.append(out)
    return np.stack(outs, axis=1), prev_out, h, c, cache


def lstm_backward(x, kernel, recurrent_kernel, bias=None, initial_state=None, mask=None,
                  activation="tanh", recurrent_activation="sigmoid", go_backwards=False,
                  rec_mask=None, d_outputs=None, d_last=None, d_h=None, d_c=None,
                  dp_mask=None):
    """Backpropagation through the step loop of :func:`lstm`, one step at a time, for the loss
    sum(d_outputs * outputs) + sum(d_last * last_output) + sum(d_h * h_T) + sum(d_c * c_T).
    Returns dict(x, kernel, recurrent_kernel, bias, h0, c0)."""
    B, T, D = x.shape
    H = recurrent_kernel.shape[0]
    _, _, _, _, cache = _lstm_steps(x, kernel, recurrent_kernel, bias, initial_state, mask,
                                    activation, recurrent_activation, go_backwards, rec_mask,
                                    dp_mask)
    pm, rm = gate_masks(dp_mask, D), gate_masks(rec_mask, H)
    Wk, Uk = np.split(kernel, 4, axis=-1), np.split(recurrent_kernel, 4, axis=-1)
    dact, dract = DERIVATIVES[activation], DERIVATIVES[recurrent_activation]
    act = ACTIVATIONS[activation]
    zeros = np.zeros((B, H), x.dtype)
    dh = zeros.copy() if d_h is None else np.array(d_h, x.dtype)
    dc = zeros.copy() if d_c is None else np.array(d_c, x.dtype)
    dout = zeros.copy()                      # gradient w.r.t. out of the current step
    if d_last is not None:
        dout = dout + d_last
    dx = np.zeros_like(x)
    dW, dU = np.zeros_like(kernel), np.zeros_like(recurrent_kernel)
    db = np.zeros(4 * H, x.dtype)
    for s in range(T - 1, -1, -1):
        k = cache[s]
        if d_outputs is not None:
            dout = dout + d_outputs[:, s]
        m = k["m"]
        # out = where(m, h_new, prev_out); h = where(m, h_new, h_prev); c likewise.
        dh_new = np.where(m, dh + dout, 0.0)
        dc_new = np.where(m, dc, 0.0)
        dprev_out = np.where(m, 0.0, dout)
        dh_pass = np.where(m, 0.0, dh)
        dc_pass = np.where(m, 0.0, dc)
        # h_new = o * act(c_new); c_new = f * c + i * g
        ac = act(k["c_new"])
        do = dh_new * ac
        dcn = dc_new + dh_new * k["o"] * dact(k["c_new"])
        di, df, dg = dcn * k["g"], dcn * k["c"], dcn * k["i"]
        zi, zf, zc, zo = np.split(k["z"], 4, axis=-1)
        dz = np.concatenate([di * dract(zi), df * dract(zf), dg * dact(zc), do * dract(zo)], -1)
        t = k["t"]
        dzk = np.split(dz, 4, axis=-1)
        xk = [x[:, t]] * 4 if pm is None else [x[:, t] * p for p in pm]
        dx[:, t] = sum((d @ w.T) * (1.0 if pm is None else p)
                       for d, w, p in zip(dzk, Wk, pm or [None] * 4))
        dW += np.concatenate([a.T @ d for a, d in zip(xk, dzk)], -1)
        dU += np.concatenate([a.T @ d for a, d in zip(k["hd"], dzk)], -1)
        db += dz.sum(0)
        dh = dh_pass + sum((d @ u.T) * (1.0 if rm is None else r)
                           for d, u, r in zip(dzk, Uk, rm or [None] * 4))
        dc = dc_pass + dcn * k["f"]
        dout = dprev_out
    return {"x": dx, "kernel": dW, "recurrent_kernel": dU, "bias": db, "h0": dh, "c0": dc}
