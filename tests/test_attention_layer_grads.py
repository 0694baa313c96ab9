"""Backward of the attention layers (attnlstm/layers/attention.py).

1. Central differences in float64 (tests/grad_check.py) for every layer and option: weights and
   every float input, with masks, causal masks, returned scores and dropout in training (the
   same dropout mask for every forward via reset_rng).
2. Keras 3.15.1 parity of the gradients in float32 (TensorFlow GradientTape) for Attention,
   AdditiveAttention and MultiHeadAttention with copied weights: loss = sum(out * R).
3. The training protocol around it: call == forward()[0], need_input_grad=False, and a
   functional Model routing the gradients of (query, value, key) back to its inputs.

MultiHeadAttention's key bias adds ``q_i . b_k`` to every score of row i, which the softmax
ignores: its exact gradient is 0, so it is checked to be 0 (finite differences of a zero
gradient are pure rounding noise and have no relative error to speak of).
"""
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from attnlstm import Input, Model, layers  # noqa: E402
from attnlstm.engine.base import flatten  # noqa: E402
from grad_check import check_layer, run  # noqa: E402

B, TQ, TV, D, DV = 2, 4, 5, 3, 4


def randn(rng, *shape, dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


def masks(tq=TQ, tv=TV, full_row=False):
    """A query mask with a masked step, a value mask with masked keys (and optionally a sample
    whose keys are all masked)."""
    qm = np.ones((B, tq), bool)
    qm[1, -1] = False
    vm = np.ones((B, tv), bool)
    vm[0, -2:] = False
    vm[1, 1] = False
    if full_row:
        vm[1, :] = False
    return qm, vm


def zero_grad_weight(layer, attr):
    """Wrap layer.backward: check that weight `attr` has a zero gradient, then drop it from the
    finite-difference check (see the module docstring)."""
    orig = layer.backward

    def backward(ctx, d_outputs, need_input_grad=True):
        g = orig(ctx, d_outputs, need_input_grad)
        var = getattr(layer, attr, None)
        if var is not None:
            gv = g.weights.pop(var)
            assert gv.shape == var.shape
            assert np.max(np.abs(gv)) < 1e-12, gv
        return g

    layer.backward = backward
    return layer


def dropout_reset(layer, seed=11):
    def reset():
        layer._rng = np.random.default_rng(seed)
    return reset


# ---------------------------------------------------------------------------------------------
# 1. Finite differences, float64

LIST_MASKS = ["none", "masks", "query_mask_only", "value_mask_only", "causal", "causal+masks",
              "full_row"]
# A fully masked row of Attention/AdditiveAttention is softmax(score - 1e9): in float64 the
# subtraction rounds the scores to multiples of ~1.2e-7, so central differences of that row are
# noise; its gradient is checked against the unmasked row instead (test_*_fully_masked_row).
LIST_MASKS_FD = LIST_MASKS[:-1]


def list_mask_kwargs(kind, tq):
    qm, vm = masks(tq, full_row=(kind == "full_row"))
    kw = {}
    if kind in ("masks", "causal+masks", "full_row"):
        kw["mask"] = [qm, vm]
    elif kind == "query_mask_only":
        kw["mask"] = [qm, None]
    elif kind == "value_mask_only":
        kw["mask"] = [None, vm]
    if kind.startswith("causal"):
        kw["use_causal_mask"] = True
    return kw


def list_inputs(rng, with_key, dv=DV, tq=TQ):
    q = randn(rng, B, tq, D)
    if with_key:
        return [q, randn(rng, B, TV, dv), randn(rng, B, TV, D)]
    return [q, randn(rng, B, TV, D)]


ATTENTION_KW = [dict(), dict(use_scale=True), dict(score_mode="concat"),
                dict(score_mode="concat", use_scale=True)]


@pytest.mark.parametrize("ret", [False, True], ids=["out", "scores"])
@pytest.mark.parametrize("with_key", [False, True], ids=["qv", "qvk"])
@pytest.mark.parametrize("kind", LIST_MASKS_FD)
@pytest.mark.parametrize("kw", ATTENTION_KW, ids=["dot", "dot-scale", "concat", "concat-scale"])
def test_attention_fd(kw, kind, with_key, ret):
    rng = np.random.default_rng(1)
    layer = layers.Attention(dtype="float64", **kw)
    layer(list_inputs(rng, with_key))
    for w in layer.weights:                       # away from the initial value 1
        w.assign(0.5 + rng.random(w.shape))
    ck = dict(list_mask_kwargs(kind, TQ), return_attention_scores=ret)
    errs = check_layer(layer, [list_inputs(rng, with_key)], ck)
    assert len(errs) == len(layer.weights) + (3 if with_key else 2)


@pytest.mark.parametrize("ret", [False, True], ids=["out", "scores"])
@pytest.mark.parametrize("with_key", [False, True], ids=["qv", "qvk"])
@pytest.mark.parametrize("kind", LIST_MASKS_FD)
@pytest.mark.parametrize("use_scale", [True, False])
def test_additive_attention_fd(use_scale, kind, with_key, ret):
    rng = np.random.default_rng(2)
    layer = layers.AdditiveAttention(use_scale=use_scale, dtype="float64")
    ck = dict(list_mask_kwargs(kind, TQ), return_attention_scores=ret)
    errs = check_layer(layer, [list_inputs(rng, with_key)], ck)
    assert len(errs) == int(use_scale) + (3 if with_key else 2)


@pytest.mark.parametrize("cls,kw", [("Attention", dict(use_scale=True)),
                                    ("Attention", dict(score_mode="concat", use_scale=True)),
                                    ("AdditiveAttention", dict())])
def test_list_attention_fully_masked_row(cls, kw):
    """softmax(score - 1e9) == softmax(score) in exact arithmetic: a sample whose keys are all
    masked gets the gradients of the same sample without a mask (up to the rounding of
    score - 1e9, ~1e-7 relative in float64)."""
    rng = np.random.default_rng(3)
    layer = getattr(layers, cls)(dtype="float64", **kw)
    inputs = list_inputs(rng, True)
    qm, vm = masks(full_row=True)
    vm_open = vm.copy()
    vm_open[1] = True
    R = None
    grads = []
    for m in (vm, vm_open):
        out, ctx = run(layer, [inputs], {"mask": [qm, m], "return_attention_scores": True})
        R = R or [rng.standard_normal(o.shape) for o in out]
        grads.append(layer.backward(ctx, R))
    full, open_ = grads
    assert np.abs(full.inputs[0][1]).sum() > 0
    for a, b in zip(full.inputs, open_.inputs):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for var in full.weights:
        np.testing.assert_allclose(full.weights[var], open_.weights[var], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("ret", [False, True], ids=["out", "scores"])
@pytest.mark.parametrize("cls,kw", [("Attention", dict(use_scale=True)),
                                    ("Attention", dict(score_mode="concat")),
                                    ("AdditiveAttention", dict())])
@pytest.mark.parametrize("kind", ["none", "masks", "causal+masks"])
def test_list_attention_dropout_fd(cls, kw, kind, ret):
    """Dropout on the weights in training: backward reuses the forward's dropout mask."""
    rng = np.random.default_rng(3)
    layer = getattr(layers, cls)(dropout=0.4, seed=5, dtype="float64", **kw)
    reset = dropout_reset(layer)
    inputs = list_inputs(rng, True)
    ck = dict(list_mask_kwargs(kind, TQ), return_attention_scores=ret)
    check_layer(layer, [inputs], ck, training=True, reset_rng=reset)
    # the mask really drops something, and inference is unaffected by it
    reset()
    out_t, _ = run(layer, [inputs], dict(ck, return_attention_scores=True), training=True)
    out_i, _ = run(layer, [inputs], dict(ck, return_attention_scores=True), training=False)
    assert np.any((out_t[1] == 0) & (out_i[1] > 0))


MHA_KW = [dict(num_heads=2, key_dim=3),
          dict(num_heads=1, key_dim=2),
          dict(num_heads=3, key_dim=2, value_dim=4, output_shape=5),
          dict(num_heads=2, key_dim=3, use_bias=False)]
MHA_MASKS = ["none", "masks", "keras_masks", "attention_mask", "attention_mask_4d", "causal",
             "causal+masks", "full_row"]


def mha_mask_kwargs(kind, num_heads, tq=TQ, tv=TV, seed=0):
    rng = np.random.default_rng(seed)
    qm, vm = masks(tq, tv, full_row=(kind == "full_row"))
    km = np.ones((B, tv), bool)
    km[0, 0] = False
    kw = {}
    if kind in ("masks", "causal+masks", "full_row"):
        kw.update(query_mask=qm, value_mask=vm, key_mask=km)
    elif kind == "keras_masks":
        kw["mask"] = [qm, vm, None]
    elif kind == "attention_mask":
        kw["attention_mask"] = rng.random((B, tq, tv)) > 0.3
    elif kind == "attention_mask_4d":
        kw["attention_mask"] = rng.random((B, num_heads, tq, tv)) > 0.3
    if kind.startswith("causal"):
        kw["use_causal_mask"] = True
    return kw


def mha_inputs(rng, with_key, tq=TQ, dq=D, dv=DV, dk=2):
    return [randn(rng, B, tq, dq), randn(rng, B, TV, dv),
            randn(rng, B, TV, dk) if with_key else None]


@pytest.mark.parametrize("ret", [False, True], ids=["out", "scores"])
@pytest.mark.parametrize("with_key", [False, True], ids=["qv", "qvk"])
@pytest.mark.parametrize("kind", MHA_MASKS)
@pytest.mark.parametrize("kw", MHA_KW, ids=[str(i) for i in range(len(MHA_KW))])
def test_mha_fd(kw, kind, with_key, ret):
    rng = np.random.default_rng(4)
    layer = zero_grad_weight(layers.MultiHeadAttention(dtype="float64", **kw), "key_bias")
    tq = TV if kind.startswith("causal") else TQ
    inputs = mha_inputs(rng, with_key, tq=tq)
    layer(*inputs[:2], key=inputs[2])
    for w in layer.weights:                       # biases away from their zero init
        w.assign(randn(rng, *w.shape) * 0.7)
    ck = dict(mha_mask_kwargs(kind, kw["num_heads"], tq), return_attention_scores=ret)
    errs = check_layer(layer, [inputs], ck)
    n_bias = 3 if kw.get("use_bias", True) else 0
    assert len(errs) == 4 + n_bias + (3 if with_key else 2)


@pytest.mark.parametrize("ret", [False, True], ids=["out", "scores"])
@pytest.mark.parametrize("with_key", [False, True], ids=["qv", "qvk"])
@pytest.mark.parametrize("kind", ["none", "masks", "causal+masks", "attention_mask_4d"])
def test_mha_dropout_fd(kind, with_key, ret):
    rng = np.random.default_rng(5)
    layer = zero_grad_weight(
        layers.MultiHeadAttention(2, 3, value_dim=2, output_shape=4, dropout=0.3, seed=1,
                                  dtype="float64"), "key_bias")
    tq = TV if kind.startswith("causal") else TQ
    inputs = mha_inputs(rng, with_key, tq=tq)
    layer(*inputs[:2], key=inputs[2])
    for w in layer.weights:
        w.assign(randn(rng, *w.shape) * 0.7)
    reset = dropout_reset(layer)
    ck = dict(mha_mask_kwargs(kind, 2, tq), return_attention_scores=ret)
    check_layer(layer, [inputs], ck, training=True, reset_rng=reset)
    reset()
    (_, s_t), _ = run(layer, [inputs], dict(ck, return_attention_scores=True), training=True)
    (_, s_i), _ = run(layer, [inputs], dict(ck, return_attention_scores=True), training=False)
    assert np.any((s_t == 0) & (s_i > 0))


@pytest.mark.parametrize("ret", [False, True], ids=["out", "scores"])
@pytest.mark.parametrize("kind", ["none", "masks", "causal+masks", "attention_mask"])
@pytest.mark.parametrize("kw", [dict(num_heads=1, key_dim=3, max_relative_position=2),
                                dict(num_heads=2, key_dim=2, value_dim=3,
                                     max_relative_position=1, output_shape=4),
                                dict(num_heads=2, key_dim=3, max_relative_position=3,
                                     use_value_embeddings=False, use_bias=False)],
                         ids=["1head", "2heads", "no-rel_v"])
def test_relative_mha_fd(kw, kind, ret):
    rng = np.random.default_rng(6)
    layer = zero_grad_weight(layers.RelativeMultiHeadAttention(dtype="float64", **kw),
                             "key_bias")
    x = randn(rng, B, TV, D)
    layer(x)
    for w in layer.weights:
        w.assign(randn(rng, *w.shape) * 0.7)
    # self-attention: value defaults to the query; a separate array so that each gets its own
    # finite differences (a Model sums both into the one tensor's gradient).
    inputs = [x, x.copy() + 0.1 * randn(rng, *x.shape), None]
    ck = dict(mha_mask_kwargs(kind, kw["num_heads"], TV, TV), return_attention_scores=ret)
    errs = check_layer(layer, [inputs], ck)
    assert any(k.endswith("rel_k") for k in errs)
    assert any(k.endswith("rel_v") for k in errs) == kw.get("use_value_embeddings", True)


def test_relative_mha_with_key_fd():
    rng = np.random.default_rng(7)
    layer = zero_grad_weight(
        layers.RelativeMultiHeadAttention(2, 2, max_relative_position=2, dtype="float64"),
        "key_bias")
    inputs = [randn(rng, B, TQ, D), randn(rng, B, TV, DV), randn(rng, B, TV, 2)]
    check_layer(layer, [inputs], {"value_mask": masks()[1]})


@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize("q_rank", [2, 3])
def test_bahdanau_fd(q_rank, masked):
    rng = np.random.default_rng(8)
    q = randn(rng, B, 3) if q_rank == 2 else randn(rng, B, TQ, 3)
    v = randn(rng, B, TV, DV)
    layer = layers.BahdanauAttention(5, dtype="float64")
    layer(q, v)
    for w in layer.weights:
        w.assign(randn(rng, *w.shape) * 0.7)
    ck = {"mask": masks()[1]} if masked else {}
    errs = check_layer(layer, [[q, v]], ck)
    assert len(errs) == 6 + 2
    # V's bias shifts all scores of a row alike: exactly zero gradient
    out, ctx = run(layer, [[q, v]], ck)
    g = layer.backward(ctx, [np.ones_like(out[0]), np.ones_like(out[1])])
    assert np.array_equal(g.weights[layer.V_bias], np.zeros(1))


@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize("q_rank", [2, 3])
@pytest.mark.parametrize("score", ["dot", "general", "concat"])
def test_luong_fd(score, q_rank, masked):
    rng = np.random.default_rng(9)
    dq = DV if score == "dot" else 3
    q = randn(rng, B, dq) if q_rank == 2 else randn(rng, B, TQ, dq)
    v = randn(rng, B, TV, DV)
    layer = layers.LuongAttention(score, units=4 if score == "concat" else None, dtype="float64")
    ck = {"mask": masks()[1]} if masked else {}
    errs = check_layer(layer, [[q, v]], ck)
    assert len(errs) == {"dot": 0, "general": 1, "concat": 2}[score] + 2


@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize("ret", [False, True], ids=["out", "scores"])
@pytest.mark.parametrize("units", [None, 3])
def test_attention_pooling_fd(units, ret, masked):
    rng = np.random.default_rng(10)
    h = randn(rng, B, TV, DV)
    layer = layers.AttentionPooling(units, return_attention_scores=ret, dtype="float64")
    layer(h)
    for w in layer.weights:
        w.assign(randn(rng, *w.shape) * 0.7)
    ck = {"mask": masks()[1]} if masked else {}
    errs = check_layer(layer, [h], ck)
    assert len(errs) == 3 + 1


# ---------------------------------------------------------------------------------------------
# 3. Protocol


def _all_layers_calls(rng):
    qm, vm = masks()
    q3, v, k = randn(rng, B, TQ, D), randn(rng, B, TV, DV), randn(rng, B, TV, D)
    return [
        (layers.Attention(use_scale=True, dtype="float64"), [[q3, v, k]],
         dict(mask=[qm, vm], return_attention_scores=True)),
        (layers.AdditiveAttention(dtype="float64"), [[q3, v, k]], dict(mask=[qm, vm])),
        (layers.MultiHeadAttention(2, 3, dtype="float64"), [[q3, v, None]],
         dict(value_mask=vm, return_attention_scores=True)),
        (layers.RelativeMultiHeadAttention(2, 3, max_relative_position=1, dtype="float64"),
         [[v, v, None]], dict(use_causal_mask=True)),
        (layers.BahdanauAttention(4, dtype="float64"), [[q3[:, 0], v]], dict(mask=vm)),
        (layers.LuongAttention("general", dtype="float64"), [[q3, v]], dict(mask=vm)),
        (layers.AttentionPooling(dtype="float64"), [v], dict(mask=vm)),
    ]


def test_call_equals_forward_and_need_input_grad_false():
    rng = np.random.default_rng(11)
    for layer, args, kw in _all_layers_calls(rng):
        assert layer.differentiable
        out, ctx = run(layer, args, kw)
        called = layer._eager_call(tuple(args), dict(kw))
        for a, b in zip(flatten(out), flatten(called)):
            np.testing.assert_array_equal(a, b)
        d = [rng.standard_normal(np.shape(o)) for o in flatten(out)]
        d = d if isinstance(out, list) else d[0]
        full = layer.backward(ctx, d)
        part = layer.backward(ctx, d, need_input_grad=False)
        assert part.inputs is None, type(layer).__name__
        assert set(part.weights) == set(full.weights) == set(layer.trainable_weights)
        for var in full.weights:
            np.testing.assert_allclose(part.weights[var], full.weights[var], rtol=1e-12)
            assert full.weights[var].shape == var.shape


def test_model_routes_mha_input_gradients():
    """In a functional Model, Grads.inputs = [d_query, d_value, d_key] reaches each Input, and
    a tensor used as both query and value gets the sum of both gradients."""
    x_in = Input((TQ, D), dtype="float64")
    v_in = Input((TV, DV), dtype="float64")
    k_in = Input((TV, 2), dtype="float64")
    a = layers.MultiHeadAttention(2, 3, dtype="float64")(x_in, v_in, key=k_in)
    b = layers.MultiHeadAttention(2, 2, dtype="float64")(a, a)        # self-attention
    c = layers.AttentionPooling(dtype="float64")(b)
    model = Model([x_in, v_in, k_in], c)
    rng = np.random.default_rng(12)
    xs = [randn(rng, B, TQ, D), randn(rng, B, TV, DV), randn(rng, B, TV, 2)]
    R = rng.standard_normal((B, D))
    out, tape = model.forward(xs)
    g = model.backward(tape, R)
    eps = 1e-6
    for arr, grad in zip(xs, g.inputs):
        assert grad is not None and grad.shape == arr.shape
        for idx in [0, 5, arr.size - 1]:
            flat = arr.reshape(-1)
            old = flat[idx]
            flat[idx] = old + eps
            lp = np.sum(model.forward(xs)[0] * R)
            flat[idx] = old - eps
            lm = np.sum(model.forward(xs)[0] * R)
            flat[idx] = old
            num = (lp - lm) / (2 * eps)
            assert abs(grad.reshape(-1)[idx] - num) <= 1e-6 * max(1.0, abs(num))


# ---------------------------------------------------------------------------------------------
# 2. Keras parity of the gradients, float32


def _tf_grads(keras_layer, call, inputs, R):
    """Keras gradients of sum(out * R) w.r.t. `inputs` (a list of arrays or None) and the
    layer's trainable weights, in get_weights order."""
    import tensorflow as tf
    ts = [None if x is None else tf.convert_to_tensor(x) for x in inputs]
    with tf.GradientTape() as tape:
        for t in ts:
            if t is not None:
                tape.watch(t)
        out = call(ts)
        loss = sum(tf.reduce_sum(o * r) for o, r in zip(flatten(out), flatten(R)))
    watched = [t for t in ts if t is not None]
    grads = tape.gradient(loss, watched + list(keras_layer.trainable_weights))
    return [np.asarray(g) if g is not None else None for g in grads]


def _our_grads(layer, args, kwargs, R):
    out, ctx = run(layer, args, kwargs)
    g = layer.backward(ctx, R)
    ins = g.inputs if isinstance(g.inputs, list) else [g.inputs]
    return out, [x for x in ins if x is not None] + [g.weights[w] for w in layer.weights]


def _close_all(ours, theirs):
    assert len(ours) == len(theirs)
    for k, (a, b) in enumerate(zip(ours, theirs)):
        b = np.zeros_like(a) if b is None else b
        assert np.shape(a) == np.shape(b), (k, np.shape(a), np.shape(b))
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=f"gradient {k}")


KERAS_LIST_CASES = [("Attention", dict()), ("Attention", dict(use_scale=True)),
                    ("Attention", dict(score_mode="concat")),
                    ("Attention", dict(score_mode="concat", use_scale=True)),
                    ("AdditiveAttention", dict()), ("AdditiveAttention", dict(use_scale=False))]


@pytest.mark.parametrize("ret", [False, True], ids=["out", "scores"])
@pytest.mark.parametrize("with_key", [False, True], ids=["qv", "qvk"])
@pytest.mark.parametrize("kind", LIST_MASKS)
@pytest.mark.parametrize("cls,kw", KERAS_LIST_CASES,
                         ids=[f"{c}-{'-'.join(f'{k}={v}' for k, v in kw.items())}"
                              for c, kw in KERAS_LIST_CASES])
def test_list_attention_keras_grad_parity(keras, cls, kw, kind, with_key, ret):
    rng = np.random.default_rng(20)
    tq = TV if kind.startswith("causal") else TQ
    inputs = list_inputs(rng, with_key, tq=tq)
    inputs = [x.astype(np.float32) for x in inputs]
    theirs = getattr(keras.layers, cls)(**kw)
    theirs(inputs)
    ws = [(0.5 + rng.random(np.shape(w))).astype(np.float32) for w in theirs.get_weights()]
    if ws:
        theirs.set_weights(ws)
    ours = getattr(layers, cls)(**kw)
    ours(inputs)
    ours.set_weights(theirs.get_weights())
    ck = dict(list_mask_kwargs(kind, tq), return_attention_scores=ret)
    out, _ = run(ours, [inputs], ck)
    R = [rng.standard_normal(np.shape(o)).astype(np.float32) for o in flatten(out)]
    R = R if ret else R[0]
    _, g_ours = _our_grads(ours, [inputs], ck, R)
    g_theirs = _tf_grads(theirs, lambda ts: theirs(ts, **ck), inputs, R)
    _close_all(g_ours, g_theirs)


KERAS_MHA_CASES = [dict(num_heads=2, key_dim=3),
                   dict(num_heads=1, key_dim=4),
                   dict(num_heads=3, key_dim=2, value_dim=5),
                   dict(num_heads=2, key_dim=3, use_bias=False),
                   dict(num_heads=2, key_dim=3, value_dim=4, output_shape=6)]


@pytest.mark.parametrize("ret", [False, True], ids=["out", "scores"])
@pytest.mark.parametrize("with_key", [False, True], ids=["qv", "qvk"])
@pytest.mark.parametrize("kind", ["none", "masks", "attention_mask", "attention_mask_4d",
                                  "causal", "causal+masks", "full_row"])
@pytest.mark.parametrize("kw", KERAS_MHA_CASES, ids=[str(i) for i in range(len(KERAS_MHA_CASES))])
def test_mha_keras_grad_parity(keras, kw, kind, with_key, ret):
    rng = np.random.default_rng(21)
    tq = TV if kind.startswith("causal") else TQ
    q, v, k = [None if x is None else x.astype(np.float32)
               for x in mha_inputs(rng, with_key, tq=tq)]
    theirs = keras.layers.MultiHeadAttention(**kw)
    theirs(q, v, key=k)
    theirs.set_weights([(rng.standard_normal(np.shape(w)) * 0.5).astype(np.float32)
                        for w in theirs.get_weights()])
    ours = layers.MultiHeadAttention(**kw)
    ours(q, v, key=k)
    ours.set_weights(theirs.get_weights())
    ck = dict(mha_mask_kwargs(kind, kw["num_heads"], tq), return_attention_scores=ret)
    out, _ = run(ours, [[q, v, k]], ck)
    R = [rng.standard_normal(np.shape(o)).astype(np.float32) for o in flatten(out)]
    R = R if ret else R[0]
    _, g_ours = _our_grads(ours, [[q, v, k]], ck, R)

    # Keras takes the query mask from the query tensor's Keras mask only.
    kck = dict(ck)
    qm = kck.pop("query_mask", None)

    def call(ts):
        tqv = ts[0]
        if qm is not None:
            tqv._keras_mask = keras.ops.convert_to_tensor(qm)
        return theirs(tqv, ts[1], key=ts[2], **kck)

    g_theirs = _tf_grads(theirs, call, [q, v, k], R)
    _close_all(g_ours, g_theirs)
