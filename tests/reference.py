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


def lstm(x, kernel, recurrent_kernel, bias=None, initial_state=None, mask=None,
         activation="tanh", recurrent_activation="sigmoid", go_backwards=False):
    """Keras LSTM, one step at a time. Returns (outputs (B,T,H) in processing order,
    last_output (B,H), h_T (B,H), c_T (B,H))."""
    act, ract = ACTIVATIONS[activation], ACTIVATIONS[recurrent_activation]
    B, T, _ = x.shape
    H = recurrent_kernel.shape[0]
    if initial_state is None:
        h = np.zeros((B, H), x.dtype)
        c = np.zeros((B, H), x.dtype)
    else:
        h, c = (np.array(s, dtype=x.dtype) for s in initial_state)
    prev_out = np.zeros((B, H), x.dtype)
    outs = []
    steps = range(T - 1, -1, -1) if go_backwards else range(T)
    for t in steps:
        z = x[:, t] @ kernel
        z = z + h @ recurrent_kernel
        if bias is not None:
            z = z + bias
        zi, zf, zc, zo = np.split(z, 4, axis=-1)
        i, f, o = ract(zi), ract(zf), ract(zo)
        c_new = f * c + i * act(zc)
        h_new = o * act(c_new)
        if mask is not None:
            m = np.asarray(mask[:, t], bool)[:, None]
            h_new = np.where(m, h_new, h)
            c_new = np.where(m, c_new, c)
            out = np.where(m, h_new, prev_out)
        else:
            out = h_new
        h, c, prev_out = h_new, c_new, out
        outs.append(out)
    return np.stack(outs, axis=1), prev_out, h, c
