"""Multi-head attention adapters (Keras MultiHeadAttention math, keras-semantics.md §8).

query (B,Tq,d), value = key (B,Tv,d), NH heads of size HS = d/NH, output size d. Weights in Keras
layout: query/key/value kernels (d,NH,HS) and biases (NH,HS), output kernel (NH,HS,d), bias (d,).
PyTorch: nn.MultiheadAttention(d, NH, batch_first=True) with the same weights copied in
(in_proj rows = kernel.reshape(d,d).T), need_weights=False (its fast SDPA path).
Canonical outputs: forward [out]; fwd+bwd [out, dq, dv, dk] for the loss sum(out * dout).
"""
import numpy as np

from .common import NOT_YET, NotAvailable, attnlstm, keras, mha_flops, torch

OPS = {
    "mha_fwd": "multi-head attention forward",
    "mha_fwdbwd": "multi-head attention forward+backward",
}

WNAMES = ("query_kernel", "query_bias", "key_kernel", "key_bias", "value_kernel", "value_bias",
          "output_kernel", "output_bias")


def make_data(shape, dtype, seed=0):
    B, Tq, Tv, dm, nh = shape["B"], shape["Tq"], shape["Tv"], shape["d"], shape["heads"]
    hs = dm // nh
    rng = np.random.default_rng(seed)
    g = np.sqrt(6.0 / (2 * dm))
    d = {"q": rng.standard_normal((B, Tq, dm)), "v": rng.standard_normal((B, Tv, dm)),
         "k": rng.standard_normal((B, Tv, dm)), "dout": rng.standard_normal((B, Tq, dm))}
    for n in ("query", "key", "value"):
        d[n + "_kernel"] = rng.uniform(-g, g, (dm, nh, hs))
        d[n + "_bias"] = 0.1 * rng.standard_normal((nh, hs))
    d["output_kernel"] = rng.uniform(-g, g, (nh, hs, dm))
    d["output_bias"] = 0.1 * rng.standard_normal(dm)
    return {k: np.ascontiguousarray(v, dtype=dtype) for k, v in d.items()}


def flops(op, shape):
    f = mha_flops(shape["B"], shape["Tq"], shape["Tv"], shape["d"], shape["heads"])
    return 3 * f if op.endswith("fwdbwd") else f


def setup_attnlstm(op, d):
    ops = attnlstm().ops
    q, v, k, dout = d["q"], d["v"], d["k"], d["dout"]
    w = {n: d[n] for n in WNAMES}
    if op == "mha_fwd":
        if not hasattr(ops, "multi_head_attention"):
            raise NotAvailable(NOT_YET)
        return lambda: [ops.multi_head_attention(q, v, k, **w)]
    if not (hasattr(ops, "multi_head_attention_forward")
            and hasattr(ops, "multi_head_attention_backward")):
        raise NotAvailable(NOT_YET)

    # multi_head_attention_forward returns an ops.Saved ("outputs", "attention_scores", saved
    # buffers); multi_head_attention_backward(saved, d_outputs, d_attention_scores=None) a dict
    # keyed by argument name (query, value, key since a key is given, kernels, biases).
    def fn():
        saved = ops.multi_head_attention_forward(q, v, k, **w)
        g = ops.multi_head_attention_backward(saved, dout)
        return [saved["outputs"], g["query"], g["value"], g["key"]]
    return fn


def setup_torch(op, d):
    t = torch()
    dm = d["q"].shape[-1]
    nh = d["query_kernel"].shape[1]
    dt = t.float64 if d["q"].dtype == np.float64 else t.float32
    m = t.nn.MultiheadAttention(dm, nh, batch_first=True).to(dt)
    with t.no_grad():
        m.in_proj_weight.copy_(t.from_numpy(np.concatenate(
            [d[n + "_kernel"].reshape(dm, dm).T for n in ("query", "key", "value")])))
        m.in_proj_bias.copy_(t.from_numpy(np.concatenate(
            [d[n + "_bias"].ravel() for n in ("query", "key", "value")])))
        m.out_proj.weight.copy_(t.from_numpy(d["output_kernel"].reshape(dm, dm).T.copy()))
        m.out_proj.bias.copy_(t.from_numpy(d["output_bias"]))
    q, v, k = (t.from_numpy(d[n].copy()) for n in ("q", "v", "k"))
    if op == "mha_fwd":
        m.eval()

        def fwd():
            with t.inference_mode():
                return [m(q, k, v, need_weights=False)[0]]
        return fwd
    for a in (q, v, k):
        a.requires_grad_(True)
    dout = t.from_numpy(d["dout"].copy())
    params = list(m.parameters())

    def fn():
        for p in params:
            p.grad = None
        q.grad = v.grad = k.grad = None
        out = m(q, k, v, need_weights=False)[0]
        out.backward(dout)
        return [out, q.grad, v.grad, k.grad]
    return fn


def _keras_layer(d):
    k, tf = keras()
    dt = "float64" if d["q"].dtype == np.float64 else "float32"
    dm, nh, hs = d["query_kernel"].shape
    layer = k.layers.MultiHeadAttention(num_heads=nh, key_dim=hs, dtype=dt)
    layer.build(d["q"].shape, d["v"].shape, d["k"].shape)
    layer.set_weights([d[n] for n in WNAMES])
    return k, tf, layer, dt


def setup_keras(op, d):
    k, tf, layer, dt = _keras_layer(d)
    q, v, kk = (tf.constant(d[n]) for n in ("q", "v", "k"))
    if op == "mha_fwd":
        return lambda: [layer(q, v, kk)]
    dout = tf.constant(d["dout"])

    def fn():
        with tf.GradientTape() as tape:
            tape.watch([q, v, kk])
            out = layer(q, v, kk)
        return [out] + tape.gradient(out, [q, v, kk], output_gradients=dout)
    return fn


def setup_keras_jit(op, d):
    k, tf, layer, dt = _keras_layer(d)
    B = d["q"].shape[0]
    ins = [k.Input(d[n].shape[1:], batch_size=B, dtype=dt) for n in ("q", "v", "k")]
    model = k.Model(ins, layer(ins[0], ins[1], ins[2]))
    xs = [d["q"], d["v"], d["k"]]
    if op == "mha_fwd":
        return lambda: [model.predict_on_batch(xs)]
    # train_on_batch: loss sum(out * dout), SGD learning rate 0; weight gradients only (no dq/dk/dv).
    model.compile(optimizer=k.optimizers.SGD(learning_rate=0.0),
                  loss=lambda y_true, y_pred: k.ops.sum(y_true * y_pred))
    dout = d["dout"]
    return lambda: [model.train_on_batch(xs, dout)]


SETUP = {"attnlstm": setup_attnlstm, "torch": setup_torch, "keras": setup_keras,
         "keras-jit": setup_keras_jit}


def ref_loss(op, d, ref):
    return float(np.sum(np.asarray(ref[0], np.float64) * d["dout"]))
