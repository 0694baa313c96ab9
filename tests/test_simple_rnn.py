"""layers.SimpleRNN: parity with Keras 3.15.1 (float32 rtol 1e-4, Keras' weights), the NumPy
twin in float64, gradients against finite differences and tf.GradientTape, dropout, fit,
saving paths, argument errors."""
import numpy as np
import pytest

import grad_check
import reference_gru as R
from conftest import assert_close, padded_mask, to_np

from attnlstm import Input, Model, layers
from attnlstm.saving import weight_paths

B, T, D, H = 3, 30, 4, 5


def _pair(keras, rng, dtype="float32", **kw):
    kl = keras.layers.SimpleRNN(H, dtype=dtype, **kw)
    batch = B if kw.get("stateful") else None
    kl.build((batch, None, D))
    kl.set_weights([rng.uniform(-0.5, 0.5, w.shape).astype(dtype) for w in kl.get_weights()])
    ol = layers.SimpleRNN(H, dtype=dtype, **kw)
    ol.build((batch, None, D))
    ol.set_weights(kl.get_weights())
    return kl, ol


@pytest.mark.parametrize("kw", [dict(), dict(return_sequences=True, return_state=True),
                                dict(go_backwards=True, return_sequences=True),
                                dict(use_bias=False, activation="relu"),
                                dict(activation="sigmoid", return_state=True, go_backwards=True)],
                         ids=str)
def test_simple_rnn_matches_keras(keras, rng, kw):
    kl, ol = _pair(keras, rng, **kw)
    x = rng.standard_normal((B, T, D)).astype("float32")
    assert_close(ol(x), to_np(kl(x)))
    m = padded_mask(B, T, "full", rng)
    assert_close(ol(x, mask=m), to_np(kl(x, mask=m)))
    h0 = rng.standard_normal((B, H)).astype("float32")
    assert_close(ol(x, initial_state=[h0]), to_np(kl(x, initial_state=[h0])))


def test_simple_rnn_stateful_matches_keras(keras, rng):
    kl, ol = _pair(keras, rng, stateful=True)
    x = rng.standard_normal((B, 20, D)).astype("float32")
    for k in range(2):
        assert_close(ol(x[:, 10 * k:10 * k + 10]), to_np(kl(x[:, 10 * k:10 * k + 10])))
    ol.reset_states()
    assert ol.states is None


def test_simple_rnn_matches_twin_float64(rng):
    ol = layers.SimpleRNN(H, dtype="float64", return_sequences=True, go_backwards=True)
    x = rng.standard_normal((B, T, D))
    m = padded_mask(B, T, "gaps", rng)
    y = ol(x, mask=m)
    k, u, b = ol.get_weights()
    ref, _ = R.simple_rnn(x, k, u, b, mask=m, go_backwards=True)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kw", [dict(), dict(return_sequences=True, go_backwards=True),
                                dict(return_state=True, activation="relu"),
                                dict(return_sequences=True, zero_output_for_mask=True,
                                     activation="sigmoid")], ids=str)
def test_simple_rnn_finite_differences(rng, kw):
    layer = layers.SimpleRNN(4, dtype="float64", **kw)
    x = rng.standard_normal((3, 6, 3))
    m = padded_mask(3, 6, "gaps", rng)
    h0 = rng.standard_normal((3, 4))
    grad_check.check_layer(layer, [x], dict(mask=m, initial_state=[h0]),
                           kwarg_paths=[("initial_state", 0)])


def test_simple_rnn_dropout_finite_differences_and_twin(rng):
    layer = layers.SimpleRNN(4, dtype="float64", dropout=0.3, recurrent_dropout=0.4,
                             return_sequences=True)
    x = rng.standard_normal((3, 5, 3))

    def reset():
        layer._rng = np.random.default_rng(2)
    grad_check.check_layer(layer, [x], training=True, reset_rng=reset)
    reset()
    y = layer(x, training=True)
    reset()
    q = layer._dropout_mask(3, 4, 0.4, 1)
    p = layer._dropout_mask(3, 3, 0.3, 1)
    k, u, b = layer.get_weights()
    np.testing.assert_allclose(y, R.simple_rnn(x, k, u, b, dp_mask=p, rec_mask=q)[0], rtol=1e-12)


def test_simple_rnn_gradients_match_tf(keras, rng):
    import tensorflow as tf
    kl, ol = _pair(keras, rng, dtype="float64", return_sequences=True)
    x = rng.standard_normal((B, 9, D))
    m = padded_mask(B, 9, "full", rng)
    Rg = rng.standard_normal((B, 9, H))
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        loss = tf.reduce_sum(kl(xt, mask=m) * Rg)
    gk = tape.gradient(loss, [xt] + kl.trainable_weights)
    out, ctx = grad_check.run(ol, [x], dict(mask=m))
    g = ol.backward(ctx, Rg)
    np.testing.assert_allclose(g.inputs, gk[0].numpy(), rtol=1e-9, atol=1e-12)
    for v, gt in zip(ol.trainable_weights, gk[1:]):
        np.testing.assert_allclose(g.weights[v], gt.numpy(), rtol=1e-9, atol=1e-12)


def test_simple_rnn_trains_saves_and_configures(rng, tmp_path):
    x = rng.standard_normal((16, 6, 3)).astype("float32")
    y = (x[:, -1].sum(axis=1) > 0).astype("float32")[:, None]
    i = Input((6, 3))
    m = Model(i, layers.Dense(1, activation="sigmoid")(layers.SimpleRNN(4)(i)))
    m.compile(optimizer="adam", loss="binary_crossentropy")
    hist = m.fit(x, y, epochs=4, batch_size=8, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    assert list(weight_paths(m))[:3] == ["layers/simple_rnn/cell/vars/0",
                                         "layers/simple_rnn/cell/vars/1",
                                         "layers/simple_rnn/cell/vars/2"]
    p = str(tmp_path / "s.weights.h5")
    m.save_weights(p)
    m2 = Model(i, layers.Dense(1, activation="sigmoid")(layers.SimpleRNN(4)(i)))
    m2.load_weights(p)
    np.testing.assert_array_equal(m2.predict(x, verbose=0), m.predict(x, verbose=0))
    cfg = layers.SimpleRNN(3, activation="relu", dropout=0.2).get_config()
    assert layers.SimpleRNN.from_config(cfg).get_config() == cfg
    assert "recurrent_activation" not in cfg


def test_simple_rnn_errors():
    with pytest.raises(ValueError, match=r"`unroll=True` is not supported"):
        layers.SimpleRNN(3, unroll=True)
    with pytest.raises(ValueError, match=r"`activation` must be one of"):
        layers.SimpleRNN(3, activation="softmax")
    with pytest.raises(ValueError, match=r"SimpleRNN '.*': `inputs` must have shape \(batch, "
                                         r"timesteps, features\), got \(2, 3\).\nHint: a SimpleRNN "
                                         r"reads whole sequences"):
        layers.SimpleRNN(3)(np.zeros((2, 3)))
