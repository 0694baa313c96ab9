"""layers.GRU: parity with Keras 3.15.1 (TF CPU) with Keras' weights (float32 rtol 1e-4),
both reset_after values, masks, go_backwards, initial_state, return_state, stateful; gradients
against finite differences (float64) and tf.GradientTape; get_config, argument errors, saving."""
import numpy as np
import pytest

import grad_check
import reference_gru as R
from conftest import assert_close, padded_mask, to_np

from attnlstm import Input, Model, layers, ops
from attnlstm.saving import weight_paths

B, T, D, H = 3, 40, 4, 5


def _x(rng, shape=(B, T, D), dtype="float32"):
    return rng.standard_normal(shape).astype(dtype)


def _weights(rng, D_, H_, use_bias=True, reset_after=True, dtype="float32"):
    w = [rng.uniform(-0.5, 0.5, (D_, 3 * H_)) / np.sqrt(D_),
         rng.uniform(-0.5, 0.5, (H_, 3 * H_)) / np.sqrt(H_)]
    if use_bias:
        w.append(rng.uniform(-0.3, 0.3, (2, 3 * H_) if reset_after else (3 * H_,)))
    return [v.astype(dtype) for v in w]


def _pair(keras, rng, dtype="float32", **kw):
    kl = keras.layers.GRU(H, dtype=dtype, **kw)
    batch = B if kw.get("stateful") else None
    kl.build((batch, None, D))
    kl.set_weights(_weights(rng, D, H, kw.get("use_bias", True), kw.get("reset_after", True),
                            dtype))
    ol = layers.GRU(H, dtype=dtype, **kw)
    ol.build((batch, None, D))
    ol.set_weights(kl.get_weights())
    return kl, ol


OPTIONS = [
    dict(),
    dict(reset_after=False),
    dict(return_sequences=True, return_state=True),
    dict(return_sequences=True, go_backwards=True, reset_after=False),
    dict(return_state=True, go_backwards=True),
    dict(use_bias=False, return_sequences=True),
    dict(use_bias=False, reset_after=False),
    dict(activation="relu", recurrent_activation="hard_sigmoid", return_sequences=True),
    dict(activation="linear", recurrent_activation="tanh", reset_after=False),
]


@pytest.mark.parametrize("kw", OPTIONS,
                         ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()) or "default")
def test_gru_matches_keras(keras, rng, kw):
    kl, ol = _pair(keras, rng, **kw)
    x = _x(rng)
    assert_close(ol(x), to_np(kl(x)), what=str(kw))


def test_gru_weights_layout_and_names_match_keras(keras):
    for ra in (True, False):
        kl = keras.layers.GRU(H, reset_after=ra)
        kl.build((None, None, D))
        ol = layers.GRU(H, reset_after=ra)
        ol.build((None, None, D))
        assert [w.shape for w in ol.get_weights()] == [tuple(w.shape) for w in kl.get_weights()]
        assert [v.name for v in ol.weights] == [v.name for v in kl.weights]


@pytest.mark.parametrize("kind", ["right", "gaps", "full"])
@pytest.mark.parametrize("kw", [dict(return_sequences=True),
                                dict(return_state=True, go_backwards=True, reset_after=False),
                                dict(return_sequences=True, zero_output_for_mask=True)],
                         ids=["seq", "state-back-ra0", "seq-zero"])
def test_gru_mask_matches_keras(keras, rng, kind, kw):
    kl, ol = _pair(keras, rng, **kw)
    x = _x(rng)
    m = padded_mask(B, T, kind, rng)
    assert_close(ol(x, mask=m), to_np(kl(x, mask=m)))


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_initial_state_and_float64_match_keras(keras, rng, reset_after):
    kl, ol = _pair(keras, rng, dtype="float64", return_sequences=True, return_state=True,
                   reset_after=reset_after)
    x = _x(rng, dtype="float64")
    h0 = rng.standard_normal((B, H))
    assert_close(ol(x, initial_state=[h0]), to_np(kl(x, initial_state=[h0])), rtol=1e-10,
                 atol=1e-10)
    assert_close(ol(x, initial_state=h0), to_np(kl(x, initial_state=[h0])), rtol=1e-10,
                 atol=1e-10)


def test_gru_masking_model_matches_keras(keras, rng):
    x = _x(rng)
    x[1, 25:] = 0.0
    x[2, :] = 0.0

    def build(L, inp):
        h = L.Masking()(inp)
        h = L.GRU(H, return_sequences=True)(h)
        return L.GRU(3)(h)
    ki = keras.Input((T, D))
    km = keras.Model(ki, build(keras.layers, ki))
    oi = Input((T, D))
    om = Model(oi, build(layers, oi))
    om.set_weights(km.get_weights())
    assert_close(om.predict(x, verbose=0), to_np(km(x)))


def test_gru_stateful_over_calls_and_reset(keras, rng):
    kl, ol = _pair(keras, rng, stateful=True, return_sequences=True)
    x = _x(rng, (B, 3 * 10, D))
    for rnd in range(2):
        for k in range(3):
            c = x[:, 10 * k:10 * (k + 1)]
            assert_close(ol(c), to_np(kl(c)), what=f"round {rnd} chunk {k}")
        kl.reset_states()
        ol.reset_states()
    assert ol.states is None and len(ol.weights) == 3   # states are not weights


def test_gru_gradients_match_tf(keras, rng):
    import tensorflow as tf
    for ra in (True, False):
        kl, ol = _pair(keras, rng, dtype="float64", return_sequences=True, reset_after=ra)
        x = _x(rng, (B, 12, D), "float64")
        m = padded_mask(B, 12, "gaps", rng)
        R_ = rng.standard_normal((B, 12, H))
        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y = kl(xt, mask=m)
            loss = tf.reduce_sum(y * R_)
        gk = tape.gradient(loss, [xt] + kl.trainable_weights)
        out, ctx = grad_check.run(ol, [x], dict(mask=m))
        g = ol.backward(ctx, R_)
        np.testing.assert_allclose(g.inputs, gk[0].numpy(), rtol=1e-9, atol=1e-12)
        for v, gt in zip(ol.trainable_weights, gk[1:]):
            np.testing.assert_allclose(g.weights[v], gt.numpy(), rtol=1e-9, atol=1e-12,
                                       err_msg=v.name)


@pytest.mark.parametrize("kw", [dict(), dict(return_sequences=True, go_backwards=True),
                                dict(return_state=True, reset_after=False),
                                dict(return_sequences=True, zero_output_for_mask=True)])
def test_gru_layer_finite_differences(rng, kw):
    layer = layers.GRU(4, dtype="float64", **kw)
    x = rng.standard_normal((3, 6, 3))
    m = padded_mask(3, 6, "gaps", rng)
    h0 = rng.standard_normal((3, 4))
    grad_check.check_layer(layer, [x], dict(mask=m, initial_state=[h0]),
                           kwarg_paths=[("initial_state", 0)])


def test_gru_dropout_training_finite_differences_and_twin(rng):
    layer = layers.GRU(4, dtype="float64", dropout=0.3, recurrent_dropout=0.4, seed=3,
                       return_sequences=True)
    x = rng.standard_normal((3, 5, 3))

    def reset():
        layer._rng = np.random.default_rng(9)
    grad_check.check_layer(layer, [x], training=True, reset_rng=reset)
    # the masks the layer drew reproduce its output in the twin (3 per-gate masks each)
    reset()
    y = layer(x, training=True)
    reset()
    q = layer._dropout_mask(3, 4, 0.4, 3)
    p = layer._dropout_mask(3, 3, 0.3, 3)
    kernel, rk, b = layer.get_weights()
    ref, _ = R.gru(x, kernel, rk, b, dp_mask=p, rec_mask=q)
    np.testing.assert_allclose(y, ref, rtol=1e-12)
    assert not np.allclose(layer(x, training=False), y)


def test_gru_trains_in_fit(rng):
    x = rng.standard_normal((16, 7, 3)).astype("float32")
    y = (x.sum(axis=(1, 2)) > 0).astype("float32")[:, None]
    i = Input((7, 3))
    o = layers.Dense(1, activation="sigmoid")(layers.GRU(6)(i))
    m = Model(i, o)
    m.compile(optimizer="adam", loss="binary_crossentropy")
    before = [w.copy() for w in m.get_weights()]
    h = m.fit(x, y, epochs=3, batch_size=8, verbose=0)
    assert all(not np.array_equal(a, b) for a, b in zip(before, m.get_weights()))
    assert h.history["loss"][-1] < h.history["loss"][0]


def test_gru_get_config_round_trip_and_keras_keys(keras):
    ol = layers.GRU(7, reset_after=False, return_sequences=True, dropout=0.1, seed=4)
    cfg = ol.get_config()
    again = layers.GRU.from_config(cfg)
    assert again.get_config() == cfg
    kcfg = keras.layers.GRU(7).get_config()
    missing = set(kcfg) - set(cfg) - {"dtype"}
    assert not missing, missing


@pytest.mark.parametrize("kw,match", [
    (dict(unroll=True), r"`unroll=True` is not supported.*Received: unroll=True"),
    (dict(use_cudnn=True), r"use_cudnn=True"),
    (dict(units=0), r"`units`"),
    (dict(dropout=1.5), r"`dropout`"),
    (dict(activation="softplus"), r"`activation` must be one of"),
    (dict(implementation=3), r"`implementation`"),
])
def test_gru_rejects_unsupported_arguments(kw, match):
    args = dict(units=4)
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        layers.GRU(**args)


def test_gru_regularizers_reach_the_weights():
    ol = layers.GRU(4, kernel_regularizer="l2", recurrent_constraint="non_neg",
                    bias_regularizer="l1")
    ol.build((None, None, 3))

    def named(v, name):   # the identifier, or what add_weight resolved it to (L2, NonNeg ...)
        return v == name or type(v).__name__.lower() == name.replace("_", "")
    assert named(ol.kernel.regularizer, "l2") and named(ol.recurrent_kernel.constraint, "non_neg")
    assert named(ol.bias.regularizer, "l1") and ol.recurrent_kernel.regularizer is None


def test_gru_shape_errors():
    i = Input((8,))
    with pytest.raises(ValueError, match=r"GRU '.*': `inputs` must have shape \(batch, timesteps, "
                                         r"features\), got \(None, 8\).\n"
                                         r"Hint: Input\(shape=\(8,\)\)"):
        layers.GRU(3)(i)
    i = Input((5, 8))
    h = layers.GRU(3)(i)
    with pytest.raises(ValueError, match=r"Hint: the previous GRU '.*' returns only its last "
                                         r"output; pass return_sequences=True"):
        layers.GRU(3)(h)
    with pytest.raises(ValueError, match=r"`initial_state` must be a list \[h\] of one \(3, 4\) "
                                         r"tensor, got 2.*\nHint: a GRU has one state"):
        layers.GRU(4)(np.zeros((3, 5, 2)), initial_state=[np.zeros((3, 4))] * 2)
    with pytest.raises(ValueError, match=r"`initial_state\[0\]` must have shape \(3, 4\), got "
                                         r"\(3, 6\).\nHint: the states must have this GRU's units"):
        layers.GRU(4)(np.zeros((3, 5, 2)), initial_state=[np.zeros((3, 6))])
    g = layers.GRU(4)
    g(np.zeros((3, 5, 2)))
    with pytest.raises(ValueError, match=r"Hint: this GRU was built for 2 features"):
        g(np.zeros((3, 5, 7)))
    with pytest.raises(ValueError, match=r"a stateful GRU keeps one state per sample"):
        layers.GRU(4, stateful=True)(Input((5, 2)))


def test_gru_weights_h5_paths_and_keras_round_trip(keras, rng, tmp_path):
    ki = keras.Input((6, D))
    km = keras.Model(ki, keras.layers.GRU(3, reset_after=False)(
        keras.layers.GRU(H, return_sequences=True)(ki)))
    km.set_weights([rng.uniform(-0.3, 0.3, w.shape).astype("float32") for w in km.get_weights()])
    path = str(tmp_path / "g.weights.h5")
    km.save_weights(path)
    oi = Input((6, D))
    om = Model(oi, layers.GRU(3, reset_after=False)(layers.GRU(H, return_sequences=True)(oi)))
    assert list(weight_paths(om))[:3] == ["layers/gru/cell/vars/0", "layers/gru/cell/vars/1",
                                          "layers/gru/cell/vars/2"]
    om.load_weights(path)
    x = _x(rng, (2, 6, D))
    assert_close(om.predict(x, verbose=0), to_np(km(x)))
    path2 = str(tmp_path / "o.weights.h5")
    om.save_weights(path2)
    km2 = keras.Model(ki, km.output)
    km2.load_weights(path2)
    assert_close(om.predict(x, verbose=0), to_np(km2(x)))


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_dropout_masks_and_gradients_match_keras(keras, rng, reset_after):
    """Keras 3.15.1 with recurrent_dropout > 0 runs GRUCell implementation 1 with three input
    and three recurrent masks; masks set on the cell before the call are the ones it uses.
    The same masks given to ops.gru_forward give Keras' training output and gradients."""
    import tensorflow as tf
    Bk, Tk = 3, 6
    layer = keras.layers.GRU(H, return_sequences=True, dropout=0.3, recurrent_dropout=0.4,
                             reset_after=reset_after, dtype="float64")
    layer.build((Bk, Tk, D))
    layer.set_weights(_weights(rng, D, H, True, reset_after, "float64"))
    p = [(rng.random((Bk, D)) >= 0.3) / 0.7 for _ in range(3)]
    q = [(rng.random((Bk, H)) >= 0.4) / 0.6 for _ in range(3)]
    layer.cell._dropout_mask = [tf.constant(a) for a in p]
    layer.cell._recurrent_dropout_mask = [tf.constant(a) for a in q]
    x = rng.standard_normal((Bk, Tk, D))
    m = padded_mask(Bk, Tk, "gaps", rng)
    h0 = rng.standard_normal((Bk, H))
    dy = rng.standard_normal((Bk, Tk, H))
    xt, ht = tf.constant(x), tf.constant(h0)
    with tf.GradientTape() as tape:
        tape.watch([xt, ht])
        y = layer(xt, initial_state=[ht], mask=m, training=True)
        loss = tf.reduce_sum(y * dy)
    want = tape.gradient(loss, [xt] + layer.trainable_weights + [ht])
    W, U, b = layer.get_weights()
    s = ops.gru_forward(x, W, U, b, h0, m, reset_after=reset_after,
                        dp_mask=np.concatenate(p, -1), rec_mask=np.concatenate(q, -1))
    np.testing.assert_allclose(s["outputs"], y.numpy(), rtol=1e-10, atol=1e-12)
    g = ops.gru_backward(s, d_outputs=dy)
    for name, w in zip(("x", "kernel", "recurrent_kernel", "bias", "h0"), want):
        np.testing.assert_allclose(g[name], w.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)
