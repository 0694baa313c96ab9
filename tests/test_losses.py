"""Losses vs Keras 3 (values via keras.losses, gradients via tf.GradientTape), finite-difference
checks of every gradient in float64, and validate_target's shape errors."""
import numpy as np
import pytest

from attnlstm import losses
from attnlstm.errors import ShapeError

RTOL, ATOL = 1e-5, 1e-6


@pytest.fixture(scope="module")
def tf(keras):
    import tensorflow
    return tensorflow


def _keras_value_and_grad(keras, tf, kloss, y_true, y_pred, sample_weight=None, mask=None):
    from keras.src import backend as kbackend
    yp = tf.Variable(y_pred)
    with tf.GradientTape() as tape:
        t = tf.identity(yp)
        if mask is not None:
            kbackend.set_keras_mask(t, tf.constant(mask))
        value = kloss(y_true, t, sample_weight=sample_weight)
    return float(value.numpy()), tape.gradient(value, yp).numpy()


def _probs(rng, shape, dtype="float32"):
    p = rng.uniform(0.02, 0.98, shape)
    return p.astype(dtype)


def _softmax(rng, shape, dtype="float32"):
    z = rng.normal(size=shape)
    p = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    return p.astype(dtype)


def _onehot(rng, shape, dtype="float32"):
    idx = rng.integers(0, shape[-1], shape[:-1])
    return np.eye(shape[-1], dtype=dtype)[idx]


# (name, kwargs, y_true maker, y_pred maker) for 2-D and 3-D outputs.
def _cases():
    B, T, C = 5, 4, 3
    cases = []
    for shape in [(B, C), (B, T, C)]:
        reg_t = lambda r, s=shape: r.normal(size=s).astype("float32")
        reg_p = lambda r, s=shape: r.normal(size=s).astype("float32")
        cases += [
            ("MeanSquaredError", {}, reg_t, reg_p, shape),
            ("MeanAbsoluteError", {}, reg_t, reg_p, shape),
            ("Huber", {}, reg_t, lambda r, s=shape: (2 * r.normal(size=s)).astype("float32"),
             shape),
            ("Huber", {"delta": 0.3}, reg_t, reg_p, shape),
            ("BinaryCrossentropy", {},
             lambda r, s=shape: r.integers(0, 2, s).astype("float32"),
             lambda r, s=shape: _probs(r, s), shape),
            ("BinaryCrossentropy", {"label_smoothing": 0.2},
             lambda r, s=shape: r.integers(0, 2, s).astype("float32"),
             lambda r, s=shape: _probs(r, s), shape),
            ("BinaryCrossentropy", {"from_logits": True},
             lambda r, s=shape: r.uniform(0, 1, s).astype("float32"), reg_p, shape),
            ("CategoricalCrossentropy", {}, lambda r, s=shape: _onehot(r, s),
             lambda r, s=shape: _probs(r, s), shape),   # unnormalized probabilities
            ("CategoricalCrossentropy", {"label_smoothing": 0.1},
             lambda r, s=shape: _onehot(r, s), lambda r, s=shape: _softmax(r, s), shape),
            ("CategoricalCrossentropy", {"from_logits": True},
             lambda r, s=shape: _onehot(r, s), reg_p, shape),
            ("SparseCategoricalCrossentropy", {},
             lambda r, s=shape: r.integers(0, C, s[:-1]), lambda r, s=shape: _softmax(r, s),
             shape),
            ("SparseCategoricalCrossentropy", {"from_logits": True},
             lambda r, s=shape: r.integers(0, C, s[:-1] + (1,)), reg_p, shape),
            ("SparseCategoricalCrossentropy", {"ignore_class": 1},
             lambda r, s=shape: r.integers(0, C, s[:-1]), lambda r, s=shape: _softmax(r, s),
             shape),
        ]
    return cases


CASES = _cases()
IDS = [f"{c[0]}-{c[1]}-{len(c[4])}d" for c in CASES]


@pytest.mark.parametrize("weighting", ["none", "sample_weight", "mask", "both"])
@pytest.mark.parametrize("name,kwargs,make_t,make_p,shape", CASES, ids=IDS)
def test_value_and_grad_match_keras(keras, tf, rng, name, kwargs, make_t, make_p, shape,
                                    weighting):
    y_true, y_pred = make_t(rng), make_p(rng)
    sw = mask = None
    if weighting in ("sample_weight", "both"):
        sw = rng.uniform(0, 2, shape[:-1]).astype("float32")
    if weighting in ("mask", "both"):
        mask = rng.random(shape[:-1]) > 0.3
        mask.flat[0] = False
    ours = getattr(losses, name)(**kwargs)
    theirs = getattr(keras.losses, name)(**kwargs)
    kv, kg = _keras_value_and_grad(keras, tf, theirs, y_true, y_pred, sw, mask)
    value = ours(y_true, y_pred, sample_weight=sw, mask=mask)
    v2, grad = ours.value_and_grad(y_true, y_pred, sample_weight=sw, mask=mask)
    assert isinstance(value, float) and value == v2
    assert grad.shape == y_pred.shape and grad.dtype == y_pred.dtype
    np.testing.assert_allclose(value, kv, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(grad, kg, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("reduction", ["sum", "mean", "mean_with_sample_weight", "none",
                                       "sum_over_batch_size"])
def test_reductions_match_keras(keras, tf, rng, reduction):
    y_true = rng.normal(size=(6, 4, 2)).astype("float32")
    y_pred = rng.normal(size=(6, 4, 2)).astype("float32")
    sw = rng.uniform(0, 2, (6, 4)).astype("float32")
    mask = rng.random((6, 4)) > 0.4
    ours = losses.MeanSquaredError(reduction=reduction)
    theirs = keras.losses.MeanSquaredError(reduction=reduction)
    for s, m in [(None, None), (sw, None), (None, mask), (sw, mask)]:
        from keras.src import backend as kbackend
        t = tf.constant(y_pred)
        if m is not None:
            kbackend.set_keras_mask(t, tf.constant(m))
        expected = theirs(y_true, t, sample_weight=s).numpy()
        np.testing.assert_allclose(ours(y_true, y_pred, s, m), expected, rtol=RTOL, atol=ATOL)
        if reduction != "none":
            kv, kg = _keras_value_and_grad(keras, tf, theirs, y_true, y_pred, s, m)
            v, g = ours.value_and_grad(y_true, y_pred, s, m)
            np.testing.assert_allclose(v, kv, rtol=RTOL, atol=ATOL)
            np.testing.assert_allclose(g, kg, rtol=RTOL, atol=ATOL)
    with pytest.raises(ValueError, match="Invalid value for argument `reduction`"):
        losses.MeanSquaredError(reduction="avg")


@pytest.mark.parametrize("name,y_true,y_pred", [
    ("MeanSquaredError", np.arange(5.0), np.ones((5, 1))),           # (N,) vs (N,1)
    ("BinaryCrossentropy", np.array([0, 1, 1, 0.0]), np.array([[0.2], [0.7], [0.9], [0.4]])),
    ("MeanAbsoluteError", np.ones((3, 4)), np.zeros((3, 4, 1)) + 0.5),  # (N,T) vs (N,T,1)
    ("BinaryCrossentropy", np.array([[0.0], [1.0]]), np.array([[1e-9], [1.0]])),  # clipped
    ("BinaryCrossentropy", np.array([[1.0], [0.0]]), np.array([[1e-9], [1.0]])),
    ("CategoricalCrossentropy", np.array([[0, 1, 0.0]]), np.array([[0.5, 0.0, 0.5]])),
    ("CategoricalCrossentropy", np.array([[0, 1, 0.0]]), np.array([[1e-12, 1.0, 0.0]])),
    ("SparseCategoricalCrossentropy", np.array([1, 0]), np.array([[1.0, 0, 0], [0.0, 1, 0]])),
    ("BinaryCrossentropy_logits", np.array([[0.0], [1.0]]), np.array([[80.0], [-90.0]])),
    ("MeanAbsoluteError", np.array([[1.0, 2.0]]), np.array([[1.0, 3.0]])),  # |0| kink
])
def test_shapes_and_extremes_match_keras(keras, tf, name, y_true, y_pred):
    kwargs = {}
    if name.endswith("_logits"):
        name, kwargs = name[:-7], {"from_logits": True}
    y_true = y_true.astype("float32")
    y_pred = y_pred.astype("float32")
    kv, kg = _keras_value_and_grad(keras, tf, getattr(keras.losses, name)(**kwargs), y_true,
                                   y_pred)
    v, g = getattr(losses, name)(**kwargs).value_and_grad(y_true, y_pred)
    np.testing.assert_allclose(v, kv, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(g, kg, rtol=RTOL, atol=ATOL)


def test_float64_matches_keras_float64_loss(keras, tf, rng):
    y_true = _onehot(rng, (4, 3), "float64")
    y_pred = _softmax(rng, (4, 3), "float64")
    kv, kg = _keras_value_and_grad(keras, tf, keras.losses.CategoricalCrossentropy(
        dtype="float64", label_smoothing=0.1), y_true, y_pred)
    v, g = losses.CategoricalCrossentropy(label_smoothing=0.1).value_and_grad(y_true, y_pred)
    assert g.dtype == np.float64
    np.testing.assert_allclose(v, kv, rtol=1e-12)
    np.testing.assert_allclose(g, kg, rtol=1e-12, atol=1e-14)


# ---- finite differences (float64, away from kinks and clips) ---------------------------------

def _fd_grad(fn, y_pred, h=1e-6):
    g = np.zeros_like(y_pred)
    for i in np.ndindex(y_pred.shape):
        yp, ym = y_pred.copy(), y_pred.copy()
        yp[i] += h
        ym[i] -= h
        g[i] = (fn(yp) - fn(ym)) / (2 * h)
    return g


@pytest.mark.parametrize("weighting", ["none", "both"])
@pytest.mark.parametrize("name,kwargs,make_t,make_p,shape", CASES, ids=IDS)
def test_grad_matches_finite_differences(rng, name, kwargs, make_t, make_p, shape, weighting):
    y_true = make_t(rng)
    y_pred = make_p(rng).astype("float64")
    if y_true.dtype.kind == "f":
        y_true = y_true.astype("float64")
    if name == "CategoricalCrossentropy" and kwargs.get("from_logits"):
        pass  # one-hot targets sum to 1: TF's softmax - y is the exact gradient
    if name in ("MeanAbsoluteError", "Huber"):
        # keep |y_pred - y_true| away from 0 and from delta
        d = y_pred - y_true
        y_pred = y_true + np.sign(d) * (np.abs(d) + 0.05)
        if name == "Huber":
            delta = kwargs.get("delta", 1.0)
            y_pred = np.where(np.abs(np.abs(y_pred - y_true) - delta) < 0.05,
                              y_pred + 0.1 * np.sign(y_pred - y_true), y_pred)
    sw = mask = None
    if weighting == "both":
        sw = rng.uniform(0.1, 2, shape[:-1])
        mask = rng.random(shape[:-1]) > 0.3
        mask.flat[0] = True
        mask.flat[-1] = False
    loss = getattr(losses, name)(**kwargs)
    _, g = loss.value_and_grad(y_true, y_pred, sw, mask)
    fd = _fd_grad(lambda yp: loss(y_true, yp, sw, mask), y_pred)
    err = np.max(np.abs(g - fd)) / max(np.max(np.abs(fd)), 1e-12)
    assert err <= 1e-6, err


# ---- subclassing, lookup ---------------------------------------------------------------------

def test_subclass_call_only_and_call_and_grad(rng):
    class Cubed(losses.Loss):
        def call(self, y_true, y_pred):
            return np.mean((y_pred - y_true) ** 3, axis=-1)

    class CubedTrainable(losses.Loss):
        def call_and_grad(self, y_true, y_pred):
            d = y_pred - y_true
            return np.mean(d ** 3, axis=-1), lambda dv: dv[:, None] * 3 * d ** 2 / d.shape[-1]

    y_true, y_pred = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    expected = np.mean(np.mean((y_pred - y_true) ** 3, -1))
    assert Cubed()(y_true, y_pred) == pytest.approx(expected)
    with pytest.raises(NotImplementedError, match="implement `call_and_grad"):
        Cubed().value_and_grad(y_true, y_pred)
    loss = CubedTrainable(name="cubed")
    v, g = loss.value_and_grad(y_true, y_pred)
    assert v == pytest.approx(expected) and loss(y_true, y_pred) == pytest.approx(expected)
    np.testing.assert_allclose(g, _fd_grad(lambda yp: loss(y_true, yp), y_pred), rtol=1e-6)
    assert losses.get(CubedTrainable).name == "cubed_trainable"


def test_get():
    for ident, cls in [("mse", losses.MeanSquaredError), ("mean_squared_error",
                       losses.MeanSquaredError), ("MAE", losses.MeanAbsoluteError),
                       ("huber", losses.Huber), ("bce", losses.BinaryCrossentropy),
                       ("binary_crossentropy", losses.BinaryCrossentropy),
                       ("cce", losses.CategoricalCrossentropy),
                       ("categorical_crossentropy", losses.CategoricalCrossentropy),
                       ("scce", losses.SparseCategoricalCrossentropy),
                       ("sparse_categorical_crossentropy", losses.SparseCategoricalCrossentropy),
                       ("BinaryCrossentropy", losses.BinaryCrossentropy)]:
        assert type(losses.get(ident)) is cls, ident
    assert losses.get("mse").name == "mse"
    assert losses.get("BinaryCrossentropy").name == "binary_crossentropy"
    inst = losses.Huber(delta=2.0)
    assert losses.get(inst) is inst
    assert losses.get(losses.serialize(inst)).get_config() == inst.get_config()
    with pytest.raises(ValueError, match=r"Could not interpret loss identifier: 'hinge'.*'bce'"):
        losses.get("hinge")


def test_logits_loss_is_what_keras_fit_computes(rng):
    """Keras' fit computes bce/cce/scce on the logits of a final sigmoid/softmax."""
    bce = losses.BinaryCrossentropy(label_smoothing=0.1)
    lg = bce.logits_loss()
    assert lg.from_logits and lg.label_smoothing == 0.1
    assert losses.BinaryCrossentropy(from_logits=True).logits_loss() is None
    assert losses.MeanSquaredError().logits_loss() is None
    z = rng.normal(size=(5, 1)) * 3
    y = rng.integers(0, 2, (5, 1)).astype(float)
    assert lg(y, z) == pytest.approx(bce(y, 1 / (1 + np.exp(-z))), rel=1e-9)


def test_config_matches_keras(keras):
    for name, kw in [("BinaryCrossentropy", {"label_smoothing": 0.1}), ("Huber", {}),
                     ("SparseCategoricalCrossentropy", {"ignore_class": 0}),
                     ("CategoricalCrossentropy", {"from_logits": True}),
                     ("MeanSquaredError", {})]:
        ours = getattr(losses, name)(**kw).get_config()
        theirs = getattr(keras.losses, name)(**kw).get_config()
        theirs.pop("dtype", None)
        if name == "Huber":
            theirs.setdefault("delta", 1.0)
        assert ours == theirs, name


def test_sparse_label_out_of_range():
    with pytest.raises(ValueError, match=r"label value of 3 .*\[0, 3\)"):
        losses.SparseCategoricalCrossentropy()(np.array([0, 3]), np.full((2, 3), 1 / 3))


# ---- validate_target -------------------------------------------------------------------------

WHO = "Model 'clf' output 'dense'"


@pytest.mark.parametrize("loss,yt,dtype,yp,match", [
    ("mse", (32,), "float32", (None, 20, 1), r"return_sequences=False.*GlobalAveragePooling1D"
                                             r".*TimeDistributed"),
    ("mse", (32, 1), "float32", (None, 20, 1), r"return_sequences=False"),
    ("bce", (32, 1), "float32", (None, None, 1), r"return_sequences=False"),
    ("mae", (32, 20, 3), "float32", (None, 3), r"return_sequences=True"),
    ("categorical_crossentropy", (32,), "int64", (None, 5),
     r"sparse_categorical_crossentropy.*to_categorical"),
    ("categorical_crossentropy", (32, 1), "int32", (None, 5), r"sparse_categorical_crossentropy"),
    ("sparse_categorical_crossentropy", (32, 5), "float32", (None, 5),
     r"loss='categorical_crossentropy'"),
    ("scce", (32,), "int64", (None, 20, 5), r"return_sequences=False"),
    ("mse", (32, 5), "float32", (None, 3), r"last axis of y has size 5 .* 3 units"),
    ("bce", (10, 1), "float32", (32, 1), r"same number of samples"),
])
def test_validate_target_errors(loss, yt, dtype, yp, match):
    with pytest.raises(ShapeError, match=match) as info:
        losses.validate_target(loss, yt, dtype, yp, WHO)
    msg = str(info.value)
    assert msg.startswith(f"{WHO}: `y` must have shape (batch")
    assert f"got {yt}".replace(",)", ",)") in msg or str(yt) in msg
    assert info.value.argument == "y" and info.value.got == yt


@pytest.mark.parametrize("loss,yt,dtype,yp", [
    ("mse", (32,), "float32", (None, 1)),
    ("bce", (32,), "float32", (None, 1)),
    ("bce", (32, 1), "int64", (None, 1)),
    ("mse", (32, 20), "float32", (None, 20, 1)),
    ("mse", (32, 20, 1), "float32", (None, 20, 1)),
    ("mae", (32, 3), "float32", (None, 3)),
    ("mse", (32, 20, 4), "float32", (None, None, 4)),
    ("scce", (32,), "int64", (None, 5)),
    ("scce", (32, 1), "int64", (None, 5)),
    ("scce", (32, 20), "int64", (None, 20, 5)),
    ("scce", (32, 20, 1), "int64", (None, 20, 5)),
    ("cce", (32, 5), "float32", (None, 5)),
    ("cce", (32, 20, 5), "float32", (None, 20, 5)),
    (losses.Huber(), (32, 2), "float32", (32, 2)),
])
def test_validate_target_accepts_valid(loss, yt, dtype, yp):
    losses.validate_target(loss, yt, dtype, yp, WHO)
