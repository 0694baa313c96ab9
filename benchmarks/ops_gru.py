"""GRU and Bidirectional-LSTM adapters: forward and forward+backward, one small function per
contender, in the style of ops_lstm.py.

Data in Keras layout. GRU: kernel (D,3H), recurrent_kernel (H,3H), bias (2,3H) (reset_after=True,
Keras' default, which is PyTorch's GRU: n = tanh(W_n x + b_in + r * (U_n h + b_hn))), gate
order [z|r|h] (PyTorch: [r|z|n]). Bidirectional LSTM: forward then backward kernels as in
ops_lstm, output concat [forward | backward] in time order (PyTorch's bidirectional layout).
Canonical outputs:
    forward:  [y]
    fwd+bwd:  [y, dx, then the weight gradients in Keras order]   for the loss sum(y * dy)
"""
import numpy as np

from .common import NotAvailable, attnlstm, keras, lstm_bwd_flops, lstm_fwd_flops, torch

OPS = {
    "gru_fwd": "GRU forward",
    "gru_fwdbwd": "GRU forward+backward",
    "bilstm_fwd": "Bidirectional LSTM forward",
    "bilstm_fwdbwd": "Bidirectional LSTM forward+backward",
}


def _bi(op):
    return op.startswith("bilstm")


def make_data(shape, dtype, seed=0):
    B, T, D, H = shape["B"], shape["T"], shape["D"], shape["H"]
    rng = np.random.default_rng(seed)
    s = 1.0 / np.sqrt(H)
    d = {"x": rng.standard_normal((B, T, D))}
    d["w"] = [rng.uniform(-s, s, (D, 3 * H)), rng.uniform(-s, s, (H, 3 * H)),
              rng.uniform(-s, s, (2, 3 * H))]
    d["wl"] = [rng.uniform(-s, s, sh) for sh in ((D, 4 * H), (H, 4 * H), (4 * H,)) * 2]
    d["dy"] = rng.standard_normal((B, T, H))
    d["dy2"] = rng.standard_normal((B, T, 2 * H))
    cast = lambda v: np.ascontiguousarray(v, dtype=dtype)  # noqa: E731
    return {k: ([cast(a) for a in v] if isinstance(v, list) else cast(v)) for k, v in d.items()}


def flops(op, shape):
    B, T, D, H = shape["B"], shape["T"], shape["D"], shape["H"]
    if _bi(op):
        f = 2 * lstm_fwd_flops(B, T, D, H)
        return f + (2 * lstm_bwd_flops(B, T, D, H) if op.endswith("fwdbwd") else 0)
    # 3/4 of the LSTM's products
    f = 0.75 * lstm_fwd_flops(B, T, D, H)
    return f + (0.75 * lstm_bwd_flops(B, T, D, H) if op.endswith("fwdbwd") else 0)


def setup_attnlstm(op, d):
    al = attnlstm()
    x = d["x"]
    if not _bi(op):
        ops = al.ops
        W, U, b = d["w"]
        if op == "gru_fwd":
            return lambda: [ops.gru(x, W, U, b, return_sequences=True)]
        dy = d["dy"]

        def fn():
            s = ops.gru_forward(x, W, U, b)
            g = ops.gru_backward(s, d_outputs=dy)
            return [s["outputs"], g["x"], g["kernel"], g["recurrent_kernel"], g["bias"]]
        return fn
    H = d["wl"][1].shape[0]
    layer = al.layers.Bidirectional(al.layers.LSTM(H, return_sequences=True,
                                                   dtype=x.dtype.name))
    layer.build(x.shape)
    layer.set_weights(d["wl"])
    if op == "bilstm_fwd":
        return lambda: [layer(x)]
    dy = d["dy2"]

    def fn():
        y, ctx = layer.forward(x)
        g = layer.backward(ctx, dy)
        return [y, g.inputs] + [g.weights[v] for v in layer.trainable_weights]
    return fn


def _zrh_to_rzn(a):
    """Keras gate blocks [z|r|h] along the last axis -> PyTorch's [r|z|n]."""
    z, r, h = np.split(a, 3, axis=-1)
    return np.concatenate([r, z, h], axis=-1)


def setup_torch(op, d):
    t = torch()
    x_np = d["x"]
    B, T, D = x_np.shape
    dt = t.float64 if x_np.dtype == np.float64 else t.float32
    if not _bi(op):
        W, U, b = d["w"]
        H = U.shape[0]
        m = t.nn.GRU(D, H, batch_first=True).to(dt)
        with t.no_grad():
            m.weight_ih_l0.copy_(t.from_numpy(_zrh_to_rzn(W).T.copy()))
            m.weight_hh_l0.copy_(t.from_numpy(_zrh_to_rzn(U).T.copy()))
            m.bias_ih_l0.copy_(t.from_numpy(_zrh_to_rzn(b[0]).copy()))
            m.bias_hh_l0.copy_(t.from_numpy(_zrh_to_rzn(b[1]).copy()))
        dy_np = d["dy"]
    else:
        H = d["wl"][1].shape[0]
        m = t.nn.LSTM(D, H, batch_first=True, bidirectional=True).to(dt)
        with t.no_grad():
            for sfx, (W, U, b) in (("", d["wl"][:3]), ("_reverse", d["wl"][3:])):
                getattr(m, "weight_ih_l0" + sfx).copy_(t.from_numpy(W.T.copy()))
                getattr(m, "weight_hh_l0" + sfx).copy_(t.from_numpy(U.T.copy()))
                getattr(m, "bias_ih_l0" + sfx).copy_(t.from_numpy(b))
                getattr(m, "bias_hh_l0" + sfx).zero_()
        dy_np = d["dy2"]
    x = t.from_numpy(x_np.copy())
    if op.endswith("_fwd"):
        def fwd():
            with t.inference_mode():
                return [m(x)[0]]
        return fwd
    x.requires_grad_(True)
    dy = t.from_numpy(dy_np.copy())
    params = list(m.parameters())

    def fn():
        for p in params:
            p.grad = None
        x.grad = None
        y = m(x)[0]
        y.backward(dy)
        if not _bi(op):
            # back to Keras layout: kernel, recurrent_kernel, bias (2, 3H)
            gW = _zrh_to_rzn_inv(m.weight_ih_l0.grad.T.numpy())
            gU = _zrh_to_rzn_inv(m.weight_hh_l0.grad.T.numpy())
            gb = np.stack([_zrh_to_rzn_inv(m.bias_ih_l0.grad.numpy()),
                           _zrh_to_rzn_inv(m.bias_hh_l0.grad.numpy())])
            return [y, x.grad, gW, gU, gb]
        out = [y, x.grad]
        for sfx in ("", "_reverse"):
            out += [getattr(m, "weight_ih_l0" + sfx).grad.T,
                    getattr(m, "weight_hh_l0" + sfx).grad.T,
                    getattr(m, "bias_ih_l0" + sfx).grad]
        return out
    return fn


def _zrh_to_rzn_inv(a):
    r, z, n = np.split(a, 3, axis=-1)
    return np.concatenate([z, r, n], axis=-1)


def _keras_layer(op, d):
    k, tf = keras()
    x = d["x"]
    dt = x.dtype.name
    if not _bi(op):
        layer = k.layers.GRU(d["w"][1].shape[0], return_sequences=True, dtype=dt)
        w = d["w"]
    else:
        layer = k.layers.Bidirectional(k.layers.LSTM(d["wl"][1].shape[0], return_sequences=True,
                                                     dtype=dt), dtype=dt)
        w = d["wl"]
    layer.build(x.shape)
    layer.set_weights(w)
    return k, tf, layer


def setup_keras(op, d):
    k, tf, layer = _keras_layer(op, d)
    x = tf.constant(d["x"])
    if op.endswith("_fwd"):
        return lambda: [layer(x)]
    dy = tf.constant(d["dy2"] if _bi(op) else d["dy"])

    def fn():
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
        g = tape.gradient(y, [x] + layer.trainable_weights, output_gradients=dy)
        return [y] + g
    return fn


def setup_keras_jit(op, d):
    raise NotAvailable("keras-jit: not measured for the GRU / Bidirectional rows")


SETUP = {"attnlstm": setup_attnlstm, "torch": setup_torch, "keras": setup_keras,
         "keras-jit": setup_keras_jit}


def ref_loss(op, d, ref):
    dy = d["dy2"] if _bi(op) else d["dy"]
    return float(np.sum(np.asarray(ref[0], np.float64) * dy))
