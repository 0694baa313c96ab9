"""Dot (Luong) and additive (Bahdanau) attention adapters, forward and forward+backward.

Keras semantics (keras-semantics.md §7): `Attention()` scores = Q Kᵀ (no scale), softmax over keys,
out = weights V; `AdditiveAttention()` scores = Σ_d scale[d] tanh(Q_d + K_d). Shapes: query
(B,Tq,d), value = key (B,Tv,d) (key passed explicitly). Canonical outputs:
    forward:  [out (B,Tq,d)]
    fwd+bwd:  [out, dq, dv, dk]   for the loss sum(out * dout)
PyTorch: F.scaled_dot_product_attention(q, k, v, scale=1.0) for dot; for additive, which PyTorch
does not ship, the direct broadcast formula a PyTorch user writes (materialises (B,Tq,Tv,d), as
Keras does).
"""
import numpy as np

from .common import (NOT_YET, NotAvailable, additive_attn_flops, attnlstm, dot_attn_flops, keras,
                     torch)

OPS = {
    "dot_fwd": "dot attention forward",
    "dot_fwdbwd": "dot attention forward+backward",
    "add_fwd": "additive attention forward",
    "add_fwdbwd": "additive attention forward+backward",
}


def make_data(shape, dtype, seed=0):
    B, Tq, Tv, dm = shape["B"], shape["Tq"], shape["Tv"], shape["d"]
    rng = np.random.default_rng(seed)
    # inputs scaled so that the unscaled dot scores stay O(1) (softmax not saturated)
    a = 1.0 / dm ** 0.25
    d = {"q": a * rng.standard_normal((B, Tq, dm)), "v": a * rng.standard_normal((B, Tv, dm)),
         "k": a * rng.standard_normal((B, Tv, dm)),
         "scale": rng.uniform(-1, 1, dm) * np.sqrt(6.0 / (2 * dm)),
         "dout": rng.standard_normal((B, Tq, dm))}
    return {k: np.ascontiguousarray(v, dtype=dtype) for k, v in d.items()}


def flops(op, shape):
    f = (dot_attn_flops if op.startswith("dot") else additive_attn_flops)(
        shape["B"], shape["Tq"], shape["Tv"], shape["d"])
    return 3 * f if op.endswith("fwdbwd") else f   # backward ~ 2x forward


def _kind(op):
    return ("dot_attention" if op.startswith("dot") else "additive_attention",
            op.endswith("fwdbwd"))


def setup_attnlstm(op, d):
    ops = attnlstm().ops
    name, bwd = _kind(op)
    q, v, k, s, dout = d["q"], d["v"], d["k"], d["scale"], d["dout"]
    # dot: Keras Attention() default use_scale=False (no scale weight); additive: scale (d,)
    kw = {} if name == "dot_attention" else {"scale": s}
    if not bwd:
        if not hasattr(ops, name):
            raise NotAvailable(NOT_YET)
        f = getattr(ops, name)
        return lambda: [f(q, v, k, **kw)]
    if not (hasattr(ops, name + "_forward") and hasattr(ops, name + "_backward")):
        raise NotAvailable(NOT_YET)
    fw, bw = getattr(ops, name + "_forward"), getattr(ops, name + "_backward")

    # ops.<name>_forward returns a dict (outputs, weights, saved inputs);
    # ops.<name>_backward(saved, d_outputs, d_attention_scores=None) a dict keyed by argument name.
    def fn():
        saved = fw(q, v, k, **kw)
        g = bw(saved, dout)
        return [saved["outputs"], g["query"], g["value"], g["key"]]
    return fn


def setup_torch(op, d):
    t = torch()
    F = t.nn.functional
    name, bwd = _kind(op)
    q, v, k = (t.from_numpy(d[n].copy()) for n in ("q", "v", "k"))
    s = t.from_numpy(d["scale"].copy())
    if name == "dot_attention":
        def f(q, v, k):
            return F.scaled_dot_product_attention(q, k, v, scale=1.0)
    else:
        def f(q, v, k):
            scores = (s * t.tanh(q[:, :, None, :] + k[:, None, :, :])).sum(-1)
            return t.bmm(t.softmax(scores, dim=-1), v)
    if not bwd:
        def fwd():
            with t.inference_mode():
                return [f(q, v, k)]
        return fwd
    for a in (q, v, k):
        a.requires_grad_(True)
    dout = t.from_numpy(d["dout"].copy())

    def fn():
        q.grad = v.grad = k.grad = None
        out = f(q, v, k)
        out.backward(dout)
        return [out, q.grad, v.grad, k.grad]
    return fn


def _keras_layer(op, d):
    k, tf = keras()
    dt = "float64" if d["q"].dtype == np.float64 else "float32"
    name, _ = _kind(op)
    if name == "dot_attention":
        layer = k.layers.Attention(dtype=dt)
        layer.build([d["q"].shape, d["v"].shape, d["k"].shape])
    else:
        layer = k.layers.AdditiveAttention(dtype=dt)
        layer.build([d["q"].shape, d["v"].shape, d["k"].shape])
        layer.set_weights([d["scale"]])
    return k, tf, layer, dt


def setup_keras(op, d):
    k, tf, layer, dt = _keras_layer(op, d)
    q, v, kk = (tf.constant(d[n]) for n in ("q", "v", "k"))
    if not op.endswith("fwdbwd"):
        return lambda: [layer([q, v, kk])]
    dout = tf.constant(d["dout"])

    def fn():
        with tf.GradientTape() as tape:
            tape.watch([q, v, kk])
            out = layer([q, v, kk])
        return [out] + tape.gradient(out, [q, v, kk], output_gradients=dout)
    return fn


def setup_keras_jit(op, d):
    k, tf, layer, dt = _keras_layer(op, d)
    B = d["q"].shape[0]
    ins = [k.Input(d[n].shape[1:], batch_size=B, dtype=dt) for n in ("q", "v", "k")]
    model = k.Model(ins, layer(ins))
    xs = [d["q"], d["v"], d["k"]]
    if not op.endswith("fwdbwd"):
        return lambda: [model.predict_on_batch(xs)]
    # train_on_batch: loss sum(out * dout), SGD learning rate 0; no gradients for the inputs
    # (they are not variables), only for the weights (additive: scale).
    model.compile(optimizer=k.optimizers.SGD(learning_rate=0.0),
                  loss=lambda y_true, y_pred: k.ops.sum(y_true * y_pred))
    dout = d["dout"]
    return lambda: [model.train_on_batch(xs, dout)]


SETUP = {"attnlstm": setup_attnlstm, "torch": setup_torch, "keras": setup_keras,
         "keras-jit": setup_keras_jit}


def ref_loss(op, d, ref):
    return float(np.sum(np.asarray(ref[0], np.float64) * d["dout"]))
