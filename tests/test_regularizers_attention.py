"""Regularization in the attention layers: RelativeMultiHeadAttention's dropout (applied in
training as MultiHeadAttention's, forward and backward), activity penalties with their gradients
(finite differences), MultiHeadAttention's activity penalty on its projections (Keras), and the
kernel/bias arguments of the hand-written attention layers."""
import numpy as np
import pytest

import attnlstm
from attnlstm import constraints as C
from attnlstm import layers
from attnlstm import regularizers as R
from grad_check import check_layer, run
from reference_mha import multi_head_attention, relative_index

B, T, D = 2, 5, 3


def _randn(rng, *shape):
    return rng.normal(size=shape)


def _reset(layer, seed=11):
    def reset():
        layer._rng = np.random.default_rng(seed)
    return reset


def _rel_layer(rng, **kw):
    layer = layers.RelativeMultiHeadAttention(2, 3, max_relative_position=2, dropout=0.4, seed=1,
                                              dtype="float64", **kw)
    x = _randn(rng, B, T, D)
    layer(x)
    for w in layer.weights:
        w.assign(_randn(rng, *w.shape) * 0.7)
    return _drop_key_bias_grad(layer), x


def _drop_key_bias_grad(layer):
    """The key bias shifts every score of a row alike (softmax ignores it): its gradient is
    0 up to rounding and finite differences of it are noise; check it is ~0, then drop it."""
    inner = layer.backward

    def backward(ctx, d, need_input_grad=True):
        g = inner(ctx, d, need_input_grad=need_input_grad)
        gk = g.weights.pop(layer.key_bias)
        assert np.max(np.abs(gk)) < 1e-10
        return g

    layer.backward = backward
    return layer


@pytest.mark.parametrize("rel_v", [True, False])
def test_relative_mha_dropout_forward_matches_numpy(rel_v):
    rng = np.random.default_rng(0)
    layer, x = _rel_layer(rng, use_value_embeddings=rel_v)
    vm = np.ones((B, T), bool)
    vm[1, 3:] = False
    reset = _reset(layer)
    reset()
    out, _ = run(layer, [[x, x, None]], {"value_mask": vm, "return_attention_scores": True},
                 training=True)
    w = {v.name: v.value for v in layer.weights}
    kw = dict(query_kernel=w["query/kernel"], query_bias=w["query/bias"],
              key_kernel=w["key/kernel"], key_bias=w["key/bias"],
              value_kernel=w["value/kernel"], value_bias=w["value/bias"],
              output_kernel=w["attention_output/kernel"],
              output_bias=w["attention_output/bias"], rel_k=w["rel_k"],
              rel_v=w.get("rel_v"), max_relative_position=2, value_mask=vm,
              fully_masked="zero")
    _, p = multi_head_attention(x, x, **kw)
    keep = np.random.default_rng(11).random(p.shape) >= 0.4
    dropped = p * keep / 0.6
    v = np.einsum("btd,dnh->btnh", x, w["value/kernel"]) + w["value/bias"]
    ctx = np.einsum("bnqk,bknh->bqnh", dropped, v)
    if rel_v:
        ctx = ctx + np.einsum("bnqk,qkh->bqnh", dropped, w["rel_v"][relative_index(T, T, 2)])
    want = np.einsum("bqnh,nho->bqo", ctx, w["attention_output/kernel"]) + \
        w["attention_output/bias"]
    np.testing.assert_allclose(out[1], dropped, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(out[0], want, rtol=1e-10, atol=1e-12)
    # Inference ignores dropout.
    inf, _ = run(layer, [[x, x, None]], {"value_mask": vm}, training=False)
    assert not np.allclose(inf, out[0])


@pytest.mark.parametrize("ret", [False, True], ids=["out", "scores"])
@pytest.mark.parametrize("rel_v", [True, False])
def test_relative_mha_dropout_backward_fd(rel_v, ret):
    rng = np.random.default_rng(1)
    layer, x = _rel_layer(rng, use_value_embeddings=rel_v)
    inputs = [x, x.copy() + 0.1 * _randn(rng, *x.shape), None]
    errs = check_layer(layer, [inputs], {"return_attention_scores": ret, "use_causal_mask": True},
                       training=True, reset_rng=_reset(layer))
    assert any(k.endswith("rel_v") for k in errs) == rel_v


def test_relative_mha_dropout_trains_in_a_model():
    x = attnlstm.Input(shape=(T, D))
    h = layers.RelativeMultiHeadAttention(2, 2, max_relative_position=1, dropout=0.5, seed=3)(x)
    m = attnlstm.Model(x, layers.GlobalAveragePooling1D()(h))
    m.compile(optimizer="sgd", loss="mse")
    xs = np.random.default_rng(0).normal(size=(4, T, D)).astype("float32")
    l_train = m.compute_gradients(xs, np.zeros((4, D)), training=True)[0]
    l_inf = m.compute_gradients(xs, np.zeros((4, D)), training=False)[0]
    assert l_train != pytest.approx(l_inf)


# ---------------------------------------------------------------------------------------------
# Activity regularizers: the penalty's gradient reaches weights and inputs (finite differences)


def _fd_with_losses(layer, args, kwargs, eps=1e-6, before=lambda: None):
    """Backward vs central differences of ``<R, outputs> + sum(add_loss terms)`` for the
    weights; returns the Grads and a finite-difference function for the inputs. `before` runs
    before each forward (to reset the dropout generator)."""
    rng = np.random.default_rng(0)
    training = kwargs.pop("training", False)
    before()
    out, ctx = run(layer, args, kwargs, training)
    Rr = [rng.normal(size=np.shape(o)) for o in out] if isinstance(out, list) else \
        rng.normal(size=np.shape(out))
    g = layer.backward(ctx, Rr)

    def loss():
        before()
        o, _ = run(layer, args, kwargs, training)
        os_ = o if isinstance(o, list) else [o]
        rs = Rr if isinstance(Rr, list) else [Rr]
        return sum(float(np.sum(a * b)) for a, b in zip(os_, rs)) + sum(layer._losses)

    assert layer._losses and layer._losses[0] != 0.0

    def fd(arr):
        num = np.zeros_like(arr)
        for i in range(arr.size):
            flat = arr.reshape(-1)
            old = flat[i]
            flat[i] = old + eps
            lp = loss()
            flat[i] = old - eps
            lm = loss()
            flat[i] = old
            num.reshape(-1)[i] = (lp - lm) / (2 * eps)
        return num

    for var, grad in g.weights.items():
        np.testing.assert_allclose(grad, fd(var.value), rtol=1e-6, atol=1e-8, err_msg=var.path)
    return g, fd


@pytest.mark.parametrize("reg", [R.L2(0.3), R.L1(0.2), R.L1L2(0.1, 0.2)], ids=["l2", "l1", "l1l2"])
@pytest.mark.parametrize("activation", [None, "softmax"])
def test_dense_activity_fd(reg, activation):
    rng = np.random.default_rng(2)
    d = layers.Dense(3, activation=activation, activity_regularizer=reg, dtype="float64")
    x = rng.normal(size=(4, 2, 5))
    d(x)
    g, fd = _fd_with_losses(d, [x], {})
    np.testing.assert_allclose(g.inputs, fd(x), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("with_key", [False, True])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_mha_projection_activity_fd(with_key, dropout):
    """Keras applies MultiHeadAttention's activity_regularizer to its four projections."""
    rng = np.random.default_rng(3)
    layer = layers.MultiHeadAttention(2, 2, value_dim=3, activity_regularizer=R.L1L2(0.05, 0.1),
                                      dropout=dropout, seed=2, dtype="float64")
    q, v = rng.normal(size=(B, 4, D)), rng.normal(size=(B, T, 4))
    k = rng.normal(size=(B, T, 2)) if with_key else None
    layer(q, v, key=k)
    for w in layer.weights:
        w.assign(rng.normal(size=w.shape) * 0.7)
    g, fd = _fd_with_losses(layer, [[q, v, k]], {"training": dropout > 0},
                            before=_reset(layer))
    np.testing.assert_allclose(g.inputs[0], fd(q), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(g.inputs[1], fd(v), rtol=1e-6, atol=1e-8)
    if with_key:
        np.testing.assert_allclose(g.inputs[2], fd(k), rtol=1e-6, atol=1e-8)


def test_mha_activity_losses_match_keras(keras):
    rng = np.random.default_rng(4)
    q, v = rng.normal(size=(B, 4, D)).astype("float32"), rng.normal(size=(B, T, 4)).astype("float32")
    km = keras.layers.MultiHeadAttention(2, 2, activity_regularizer=keras.regularizers.L2(0.1))
    om = layers.MultiHeadAttention(2, 2, activity_regularizer=R.L2(0.1))
    km(q, v)
    om(q, v)
    om.set_weights(km.get_weights())
    km(q, v)
    om(q, v)
    assert sum(om.losses) == pytest.approx(float(sum(km.losses)), rel=1e-5)
    assert om.activity_regularizer is None       # not on the layer's own output, as Keras


def test_attention_layers_take_kernel_arguments():
    q, v = np.ones((2, 3)), np.ones((2, 4, 5))
    b = layers.BahdanauAttention(4, kernel_regularizer="l2", bias_regularizer=R.L1(0.1),
                                 kernel_constraint="non_neg", bias_constraint=C.MaxNorm(1.0))
    b(q, v)
    assert [w.regularizer is not None for w in b.weights] == [True] * 6
    assert isinstance(b.W1_kernel.constraint, C.NonNeg)
    assert isinstance(b.V_bias.constraint, C.MaxNorm)
    assert len(b.losses) == 6
    b2 = layers.BahdanauAttention.from_config({**b.get_config(), "name": "b2"})
    assert isinstance(b2.kernel_regularizer, R.L2)
    lu = layers.LuongAttention("concat", kernel_regularizer="l1", kernel_constraint="unit_norm")
    lu(q, v)
    assert [type(w.regularizer).__name__ for w in lu.weights] == ["L1", "L1"]
    p = layers.AttentionPooling(3, kernel_regularizer="l2", bias_constraint="non_neg")
    p(v)
    assert [type(w.regularizer).__name__ for w in p.weights] == ["L2", "NoneType", "L2"]
    assert isinstance(p.bias.constraint, C.NonNeg)


def test_luong_units_only_for_concat():
    with pytest.raises(ValueError, match=r"Received: units=8"):
        layers.LuongAttention("dot", units=8)


def test_attention_pooling_constraint_applied_in_training():
    x = attnlstm.Input(shape=(T, D))
    y = layers.AttentionPooling(4, kernel_constraint=C.MaxNorm(0.01))(x)
    m = attnlstm.Model(x, y)
    m.compile(optimizer="sgd", loss="mse")
    m.train_on_batch(np.ones((2, T, D)), np.zeros((2, D)))
    k = m.layers[-1].kernel.value
    assert np.all(np.sqrt((k ** 2).sum(axis=0)) <= 0.01 + 1e-6)
