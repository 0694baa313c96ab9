"""LeakyReLU, PReLU, ELU, ReLU layers (issue #17): Keras 3.15.1 parity (forward and
tf.GradientTape), float64 NumPy twins, finite differences, configs, masks and errors."""
import numpy as np
import pytest

from conftest import assert_close
from grad_check import check_layer, run

from attnlstm import Input, Model, layers

RNG = np.random.default_rng(17)


def x_away_from_kinks(shape, kinks=(0.0,), dtype="float64", scale=3.0):
    """Random values at least 1e-3 away from every kink (finite differences straddle none)."""
    x = RNG.uniform(-scale, scale, shape)
    for k in kinks:
        close = np.abs(x - k) < 1e-3
        x[close] += 2e-3
    return x.astype(dtype)


CASES = [
    ("LeakyReLU", dict(), (0.0,)),
    ("LeakyReLU", dict(negative_slope=0.05), (0.0,)),
    ("ELU", dict(), (0.0,)),
    ("ELU", dict(alpha=0.5), (0.0,)),
    ("ReLU", dict(), (0.0,)),
    ("ReLU", dict(max_value=6.0), (0.0, 6.0)),
    ("ReLU", dict(max_value=1.5), (0.0, 1.5)),
    ("ReLU", dict(negative_slope=0.1), (0.0,)),
    ("ReLU", dict(threshold=0.5), (0.5,)),
    ("ReLU", dict(max_value=2.0, negative_slope=0.2, threshold=0.5), (0.5, 2.0)),
    ("ReLU", dict(max_value=6, negative_slope=0.3), (0.0, 6.0)),
    ("PReLU", dict(), (0.0,)),
    ("PReLU", dict(shared_axes=[1]), (0.0,)),
    ("PReLU", dict(shared_axes=[1, 2]), (0.0,)),
    ("PReLU", dict(shared_axes=2), (0.0,)),
]
IDS = [f"{n}:{kw}" for n, kw, _ in CASES]


def twin(name, kw, x, alpha=None):
    if name == "LeakyReLU":
        s = kw.get("negative_slope", 0.3)
        return np.where(x > 0, x, s * x)
    if name == "ELU":
        return np.where(x > 0, x, kw.get("alpha", 1.0) * (np.exp(x) - 1))
    if name == "PReLU":
        return np.where(x > 0, x, alpha * x)
    mv, s, th = kw.get("max_value"), kw.get("negative_slope", 0.0), kw.get("threshold", 0.0)
    y = np.where(x > th, x, 0.0)
    if mv is not None:
        y = np.minimum(y, mv)
    return np.where(x < th, s * (x - th), y)


@pytest.mark.parametrize("name,kw,kinks", CASES, ids=IDS)
def test_matches_keras_tape_and_twin(keras, name, kw, kinks):
    import tensorflow as tf
    rng = np.random.default_rng(0)
    x = x_away_from_kinks((3, 5, 4), kinks, "float32", scale=8.0)
    kl = getattr(keras.layers, name)(**kw)
    ol = getattr(layers, name)(**kw)
    if name == "PReLU":
        kl.build(x.shape)
        kl.set_weights([rng.uniform(0.05, 0.5, w.shape).astype("float32")
                        for w in kl.get_weights()])
        ol.build(x.shape)
        assert [w.shape for w in ol.weights] == [tuple(w.shape) for w in kl.weights]
        assert [w.name for w in ol.weights] == [w.name for w in kl.weights]
        ol.set_weights(kl.get_weights())
    out, ctx = run(ol, [x])
    R = rng.standard_normal(x.shape).astype("float32")
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        ko = kl(xt)
        loss = tf.reduce_sum(ko * R)
    kg = tape.gradient(loss, [xt] + kl.trainable_weights)
    assert_close(out, ko.numpy(), what="forward")
    g = ol.backward(ctx, R)
    assert_close(g.inputs, kg[0].numpy(), what="d inputs")
    for w, k in zip(ol.trainable_weights, kg[1:]):
        assert_close(g.weights[w], k.numpy(), rtol=1e-4, atol=1e-4, what=w.name)
    # float64 twin
    o64 = getattr(layers, name)(dtype="float64", **kw)
    x64 = x.astype("float64")
    alpha = None
    if name == "PReLU":
        o64.build(x.shape)
        o64.set_weights([w.astype("float64") for w in kl.get_weights()])
        alpha = o64.alpha.value
    np.testing.assert_allclose(o64(x64), twin(name, kw, x64, alpha), rtol=1e-10, atol=1e-12)
    # config round trip, and the Keras config keys
    cfg = ol.get_config()
    assert getattr(layers, name).from_config(cfg).get_config() == cfg
    for key, value in kl.get_config().items():
        if key in ("negative_slope", "alpha", "max_value", "threshold", "shared_axes"):
            assert cfg[key] == value, key


@pytest.mark.parametrize("name,kw,kinks", CASES, ids=IDS)
def test_finite_differences(name, kw, kinks):
    layer = getattr(layers, name)(dtype="float64", **kw)
    if name == "PReLU":
        layer.build((2, 4, 3))
        layer.set_weights([RNG.uniform(0.05, 0.5, w.shape) for w in layer.weights])
    check_layer(layer, [x_away_from_kinks((2, 4, 3), kinks)], eps=1e-7)


def test_defaults_match_keras(keras):
    assert layers.LeakyReLU().negative_slope == keras.layers.LeakyReLU().negative_slope == 0.3
    assert layers.ELU().alpha == keras.layers.ELU().alpha == 1.0
    k, o = keras.layers.ReLU().get_config(), layers.ReLU().get_config()
    assert (o["max_value"], o["negative_slope"], o["threshold"]) == \
        (k["max_value"], k["negative_slope"], k["threshold"])
    p = layers.PReLU()
    p.build((None, 3, 2))
    np.testing.assert_array_equal(p.alpha.numpy(), np.zeros((3, 2)))   # "Zeros"
    with pytest.warns(UserWarning, match="`alpha` is deprecated"):
        assert layers.LeakyReLU(alpha=0.1).negative_slope == 0.1


def test_masks_pass_through():
    inp = Input((None, 3))
    masked = layers.Masking()(inp)
    for layer in (layers.LeakyReLU(), layers.ELU(), layers.ReLU(), layers.PReLU(shared_axes=[1])):
        assert layer(masked).has_mask
        assert not layer(inp).has_mask


@pytest.mark.parametrize("make,match", [
    (lambda: layers.LeakyReLU(negative_slope=-0.1), "negative_slope=-0.1"),
    (lambda: layers.ReLU(max_value=-1.0), "max_value=-1.0"),
    (lambda: layers.ReLU(negative_slope=-1.0), "negative_slope=-1.0"),
    (lambda: layers.ReLU(threshold=-1.0), "threshold=-1.0"),
])
def test_argument_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_prelu_shape_errors():
    with pytest.raises(ValueError, match=r"(?s)axes \[1\] of `inputs` \(None, None, 3\) have "
                                         r"unknown sizes.*Hint: share alpha along them, e.g. "
                                         r"PReLU\(shared_axes=\[1\]\)"):
        layers.PReLU()(Input((None, 3)))
    with pytest.raises(ValueError, match=r"shared_axes=\[3\] refers to axis 3"):
        layers.PReLU(shared_axes=3)(Input((4, 3)))
    layer = layers.PReLU()
    layer(np.zeros((2, 4, 3), "float32"))
    with pytest.raises(ValueError, match=r"\(batch, 4, 3\), got \(2, 5, 3\)"):
        layer(np.zeros((2, 5, 3), "float32"))


def test_prelu_alpha_trains_and_takes_regularizer():
    def reg(w):
        return 0.0

    def con(w):
        return w
    layer = layers.PReLU(alpha_regularizer=reg, alpha_constraint=con)
    layer.build((None, 4))
    assert layer.alpha.regularizer is reg and layer.alpha.constraint is con
    inp = Input((4,))
    model = Model(inp, layers.Dense(1)(layers.PReLU()(layers.Dense(4)(inp))))
    assert any(w.name == "alpha" for w in model.trainable_weights)
