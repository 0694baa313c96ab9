"""LayerNormalization and BatchNormalization (issue #16 item 4): Keras 3.15.1 parity with Keras'
weights (float32), float64 NumPy twins (1e-10), finite differences, tf.GradientTape, moving
statistics in fit / predict, masks, configs and shape errors."""
import numpy as np
import pytest

from conftest import assert_close, to_np
from grad_check import check_layer, run

import attnlstm
from attnlstm import Input, Model, Sequential, layers

RNG = np.random.default_rng(4)


def randn(*shape, dtype="float64"):
    return RNG.standard_normal(shape).astype(dtype)


def tape_grads(kl, x, R, training=False, mask=None):
    import tensorflow as tf
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        kw = {"training": training} if training else {}
        if mask is not None:
            kw["mask"] = tf.constant(mask)
        ko = kl(xt, **kw)
        loss = tf.reduce_sum(ko * R)
    g = tape.gradient(loss, [xt] + kl.trainable_weights)
    return ko.numpy(), g[0].numpy(), [v.numpy() for v in g[1:]]


def _set_random(kl, ol, rng, shape):
    kl.build(shape)
    ws = [rng.standard_normal(w.shape).astype("float32") * 0.5 + 1.0 for w in kl.get_weights()]
    ws = [np.abs(w) + 0.1 if "variance" in v.name else w for w, v in zip(ws, kl.weights)]
    kl.set_weights(ws)
    ol.build(shape)
    assert [w.name for w in ol.weights] == [w.name for w in kl.weights]
    assert [w.shape for w in ol.weights] == [tuple(w.shape) for w in kl.weights]
    assert [w.trainable for w in ol.weights] == [w.trainable for w in kl.weights]
    ol.set_weights(kl.get_weights())


# ---------------------------------------------------------------------------------------------
# LayerNormalization

LN_CASES = [
    dict(),
    dict(epsilon=1e-5, center=False),
    dict(scale=False),
    dict(center=False, scale=False),
    dict(axis=1),
    dict(axis=[1, 2]),
    dict(axis=(-2, -1)),
    dict(rms_scaling=True),
]


def _ln_twin(x, gamma, beta, axes, eps, rms=False):
    axes = tuple(sorted(a % x.ndim for a in axes))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    shape = [x.shape[a] if a in axes else 1 for a in range(x.ndim)]
    y = (x if rms else x - mean) / np.sqrt(var + eps)
    if gamma is not None:
        y = y * gamma.reshape(shape)
    if beta is not None:
        y = y + beta.reshape(shape)
    return y


@pytest.mark.filterwarnings("ignore:You passed `rms_scaling=True`")
@pytest.mark.parametrize("kw", LN_CASES, ids=[str(k) for k in LN_CASES])
def test_layer_normalization_matches_keras_tape_and_twin(keras, kw):
    rng = np.random.default_rng(0)
    shape = (3, 5, 4)
    x = (rng.standard_normal(shape) * 2 + 1).astype("float32")
    kl = keras.layers.LayerNormalization(**kw)
    ol = layers.LayerNormalization(**kw)
    _set_random(kl, ol, rng, shape)
    out, ctx = run(ol, [x])
    R = rng.standard_normal(shape).astype("float32")
    ko, kdx, kdw = tape_grads(kl, x, R)
    assert_close(out, ko, what="forward")
    g = ol.backward(ctx, R)
    assert_close(g.inputs, kdx, rtol=1e-4, atol=1e-4, what="d inputs")
    for w, k in zip(ol.trainable_weights, kdw):
        assert_close(g.weights[w], k, rtol=1e-4, atol=1e-4, what=w.name)
    assert ol.get_config()["axis"] == kl.get_config()["axis"]
    # float64 twin
    o64 = layers.LayerNormalization(dtype="float64", **kw)
    o64.build(shape)
    o64.set_weights([w.astype("float64") for w in kl.get_weights()])
    x64 = x.astype("float64")
    want = _ln_twin(x64, o64.gamma.value if o64.gamma is not None else None,
                    o64.beta.value if o64.beta is not None else None, o64.axis, o64.epsilon,
                    o64.rms_scaling)
    np.testing.assert_allclose(o64(x64), want, rtol=1e-10, atol=1e-12)


@pytest.mark.filterwarnings("ignore:You passed `rms_scaling=True`")
@pytest.mark.parametrize("kw", LN_CASES, ids=[str(k) for k in LN_CASES])
def test_layer_normalization_finite_differences(kw):
    layer = layers.LayerNormalization(dtype="float64", **kw)
    layer.build((2, 4, 3))
    layer.set_weights([randn(*w.shape) for w in layer.weights])
    check_layer(layer, [randn(2, 4, 3)])


def test_layer_normalization_config_defaults_and_mask(keras):
    ours, theirs = layers.LayerNormalization().get_config(), \
        keras.layers.LayerNormalization().get_config()
    for key in ("axis", "epsilon", "center", "scale", "rms_scaling"):
        assert ours[key] == theirs[key], key
    assert ours["epsilon"] == 1e-3
    inp = Input((None, 3))
    assert layers.LayerNormalization()(layers.Masking()(inp)).has_mask
    with pytest.warns(UserWarning, match="rms_scaling"):
        layers.LayerNormalization(rms_scaling=True)


def test_layer_normalization_errors():
    with pytest.raises(ValueError, match=r"`axis=3` is out of bounds for inputs of shape "
                                         r"\(None, 5, 4\)"):
        layers.LayerNormalization(axis=3)(Input((5, 4)))
    with pytest.raises(ValueError, match="must have known sizes"):
        layers.LayerNormalization(axis=1)(Input((None, 4)))
    layer = layers.LayerNormalization()
    layer(np.zeros((2, 4), "float32"))
    with pytest.raises(ValueError, match=r"built for \(4,\)"):
        layer(np.zeros((2, 5), "float32"))
    with pytest.raises(TypeError, match="axis"):
        layers.LayerNormalization(axis="last")


# ---------------------------------------------------------------------------------------------
# BatchNormalization

BN_CASES = [
    dict(),
    dict(momentum=0.9, epsilon=1e-5),
    dict(center=False),
    dict(scale=False),
    dict(axis=1),
]


def _bn_twin(x, gamma, beta, mean, var, eps, axis):
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    y = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
    if gamma is not None:
        y = y * gamma.reshape(shape)
    if beta is not None:
        y = y + beta.reshape(shape)
    return y


@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
@pytest.mark.parametrize("kw", BN_CASES, ids=[str(k) for k in BN_CASES])
def test_batch_normalization_matches_keras_and_tape(keras, kw, training):
    rng = np.random.default_rng(1)
    shape = (4, 6, 3)
    x = (rng.standard_normal(shape) * 3 + 2).astype("float32")
    kl = keras.layers.BatchNormalization(**kw)
    ol = layers.BatchNormalization(**kw)
    _set_random(kl, ol, rng, shape)
    out, ctx = run(ol, [x], training=training)
    R = rng.standard_normal(shape).astype("float32")
    ko, kdx, kdw = tape_grads(kl, x, R, training=training)
    assert_close(out, ko, what="forward")
    # moving statistics updated (training) or left alone (inference), as Keras
    for ow, kw_ in zip(ol.non_trainable_weights, kl.non_trainable_weights):
        assert_close(ow.numpy(), kw_.numpy(), what=ow.name)
    g = ol.backward(ctx, R)
    assert_close(g.inputs, kdx, rtol=1e-4, atol=1e-4, what="d inputs")
    assert set(g.weights) == set(ol.trainable_weights)
    for w, k in zip(ol.trainable_weights, kdw):
        assert_close(g.weights[w], k, rtol=1e-4, atol=2e-4, what=w.name)


def test_batch_normalization_float64_twin():
    x = randn(5, 4, 3)
    layer = layers.BatchNormalization(dtype="float64", momentum=0.8)
    layer.build(x.shape)
    layer.set_weights([randn(3), randn(3), randn(3), np.abs(randn(3)) + 0.5])
    g, b, mm, mv = layer.get_weights()
    np.testing.assert_allclose(layer(x), _bn_twin(x, g, b, mm, mv, 1e-3, 2), rtol=1e-10)
    mean, var = x.mean(axis=(0, 1)), x.var(axis=(0, 1))
    np.testing.assert_allclose(layer(x, training=True), _bn_twin(x, g, b, mean, var, 1e-3, 2),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.moving_mean.value, 0.8 * mm + 0.2 * mean, rtol=1e-12)
    np.testing.assert_allclose(layer.moving_variance.value, 0.8 * mv + 0.2 * var, rtol=1e-12)


@pytest.mark.parametrize("kw", BN_CASES, ids=[str(k) for k in BN_CASES])
@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
def test_batch_normalization_finite_differences(kw, training):
    layer = layers.BatchNormalization(dtype="float64", **kw)
    layer.build((4, 3, 3))
    layer.set_weights([randn(*w.shape) if w.trainable or "mean" in w.name
                       else np.abs(randn(*w.shape)) + 0.5 for w in layer.weights])
    check_layer(layer, [randn(4, 3, 3)], training=training)


MASK = np.array([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1], [0, 1, 0, 1, 1, 0],
                 [0, 0, 0, 0, 0, 0]], bool)


def test_batch_normalization_masked_moments_match_keras(keras):
    rng = np.random.default_rng(2)
    shape = (4, 6, 3)
    x = (rng.standard_normal(shape) * 2 + 1).astype("float32")
    kl = keras.layers.BatchNormalization(momentum=0.5)
    ol = layers.BatchNormalization(momentum=0.5)
    _set_random(kl, ol, rng, shape)
    out, ctx = run(ol, [x], {"mask": MASK}, training=True)
    R = rng.standard_normal(shape).astype("float32")
    ko, kdx, kdw = tape_grads(kl, x, R, training=True, mask=MASK)
    assert_close(out, ko, what="forward")
    for ow, kw_ in zip(ol.non_trainable_weights, kl.non_trainable_weights):
        assert_close(ow.numpy(), kw_.numpy(), what=ow.name)
    g = ol.backward(ctx, R)
    assert_close(g.inputs, kdx, rtol=1e-4, atol=1e-4, what="d inputs")
    for w, k in zip(ol.trainable_weights, kdw):
        assert_close(g.weights[w], k, rtol=1e-4, atol=2e-4, what=w.name)


def test_batch_normalization_masked_finite_differences():
    layer = layers.BatchNormalization(dtype="float64")
    layer.build((4, 6, 3))
    layer.set_weights([randn(3), randn(3), randn(3), np.abs(randn(3)) + 0.5])
    check_layer(layer, [randn(4, 6, 3)], {"mask": MASK}, training=True)


def test_batch_normalization_in_fit_and_predict(keras):
    """fit updates the moving statistics per batch exactly as Keras; predict uses them."""
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((32, 5)) * 2 + 3).astype("float32")
    y = rng.standard_normal((32, 1)).astype("float32")

    def build(L, Input_, Model_):
        inp = Input_((5,))
        h = L.BatchNormalization(momentum=0.8)(inp)
        return Model_(inp, L.Dense(1)(h))

    ours = build(layers, Input, Model)
    km = build(keras.layers, keras.Input, keras.Model)
    km.set_weights(ours.get_weights())
    ours.compile(optimizer=attnlstm.optimizers.SGD(0.05), loss="mse")
    km.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    ours.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    km.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    for o, k, w in zip(ours.get_weights(), km.get_weights(), ours.weights):
        assert_close(o, k, rtol=1e-4, atol=1e-5, what=w.path)
    assert_close(ours.predict(x, verbose=0), to_np(km.predict(x, verbose=0)))
    bn = ours.layers[1]
    assert bn.moving_mean not in ours.trainable_weights
    assert not np.allclose(bn.moving_mean.numpy(), 0)


def test_batch_normalization_frozen_uses_moving_statistics():
    layer = layers.BatchNormalization()
    x = np.random.default_rng(0).standard_normal((8, 3)).astype("float32") + 5
    layer.build(x.shape)
    layer.trainable = False
    np.testing.assert_allclose(layer(x, training=True), x / np.sqrt(1 + 1e-3), rtol=1e-6)
    np.testing.assert_array_equal(layer.moving_mean.numpy(), 0)


def test_batch_normalization_config_and_errors(keras):
    ours, theirs = layers.BatchNormalization().get_config(), \
        keras.layers.BatchNormalization().get_config()
    for key in ("axis", "momentum", "epsilon", "center", "scale", "synchronized", "renorm",
                "renorm_clipping", "renorm_momentum"):
        assert ours[key] == theirs[key], key
    with pytest.raises(ValueError, match="renorm=True"):
        layers.BatchNormalization(renorm=True)
    with pytest.raises(ValueError, match=r"`axis=3` is out of bounds"):
        layers.BatchNormalization(axis=3)(Input((5, 4)))
    with pytest.raises(ValueError, match=r"(?s)\(batch, \.\.\., channels\), got \(None, 5, None\)"
                                         r".*known size"):
        layers.BatchNormalization()(Input((5, None)))
    layer = layers.BatchNormalization()
    layer(np.zeros((2, 4), "float32"))
    with pytest.raises(ValueError, match="built for 4 channels"):
        layer(np.zeros((2, 5), "float32"))
    with pytest.raises(ValueError, match=r"`mask` must have shape \(2, 6\), got \(2, 5\)"):
        layers.BatchNormalization()(np.zeros((2, 6, 3), "float32"), mask=np.ones((2, 5), bool))
    inp = Input((None, 3))
    assert layers.BatchNormalization()(layers.Masking()(inp)).has_mask


def test_normalization_saves_in_keras_layout(keras, tmp_path):
    model = Sequential([Input((4, 3)), layers.BatchNormalization(), layers.LayerNormalization()])
    model.set_weights([np.full(w.shape, k + 1.0, "float32") for k, w in enumerate(model.weights)])
    path = tmp_path / "n.weights.h5"
    model.save_weights(path)
    km = keras.Sequential([keras.Input((4, 3)), keras.layers.BatchNormalization(),
                           keras.layers.LayerNormalization()])
    km.load_weights(path)
    for o, k in zip(model.get_weights(), km.get_weights()):
        np.testing.assert_array_equal(o, k)
