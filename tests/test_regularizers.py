"""Regularizers against Keras 3's own (values, names, configs), their gradients against
TensorFlow's and against central finite differences."""
import numpy as np
import pytest

from attnlstm import regularizers as R

CASES = [
    ("L1", {}), ("L1", {"l1": 0.3}), ("L2", {}), ("L2", {"l2": 0.25}),
    ("L1L2", {}), ("L1L2", {"l1": 0.01, "l2": 0.02}), ("L1L2", {"l2": 0.1}),
    ("OrthogonalRegularizer", {}), ("OrthogonalRegularizer", {"factor": 0.5, "mode": "columns"}),
]


def _x(dtype, shape=(4, 3), seed=0):
    x = np.random.default_rng(seed).normal(size=shape).astype(dtype)
    x[0, 0] = 0.0            # |x| at 0: both take the gradient 0
    return x


# Keras' OrthogonalRegularizer multiplies its float32 factor by float64 tensors, which fails on
# TensorFlow: it is compared in float32 only.
@pytest.mark.parametrize("name,kw,dtype", [c + (dt,) for c in CASES for dt in ("float32", "float64")
                                           if not (c[0] == "OrthogonalRegularizer" and
                                                   dt == "float64")])
def test_value_and_gradient_match_keras(keras, name, kw, dtype):
    import tensorflow as tf
    x = _x(dtype)
    ours = getattr(R, name)(**kw)
    theirs = getattr(keras.regularizers, name)(**kw)
    xt = tf.Variable(x)
    with tf.GradientTape() as tape:
        kv = theirs(xt)
    kg = tape.gradient(kv, xt)
    kg = np.zeros_like(x) if kg is None else kg.numpy()     # L1L2(0, 0) is a constant
    ov = ours(x)
    assert np.asarray(ov).dtype == np.dtype(dtype)
    rtol = 1e-6 if dtype == "float32" else 1e-14
    np.testing.assert_allclose(ov, kv.numpy(), rtol=rtol)
    np.testing.assert_allclose(ours.gradient(x), kg, rtol=rtol * 10, atol=1e-7 if
                               dtype == "float32" else 1e-15)
    assert ours.get_config() == pytest.approx(theirs.get_config()) if name != \
        "OrthogonalRegularizer" else ours.get_config() == theirs.get_config()


@pytest.mark.parametrize("name,kw", CASES)
def test_gradient_matches_finite_differences(name, kw):
    x = _x("float64", (5, 4), seed=1)
    x[0, 0] = 0.3            # away from the kink of |x|
    reg = getattr(R, name)(**kw)
    g = reg.gradient(x)
    fd = np.zeros_like(x)
    h = 1e-6
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        fd[idx] = (float(reg(xp)) - float(reg(xm))) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-9)


def test_orthogonal_gradient_of_a_zero_row():
    """A zero row is scaled by 1/epsilon in Keras' normalize: finite values and gradient."""
    x = _x("float64", (3, 4))
    x[1] = 0.0
    reg = R.OrthogonalRegularizer(0.2)
    assert np.isfinite(reg(x)) and np.all(np.isfinite(reg.gradient(x)))


@pytest.mark.parametrize("ident", ["l1", "l2", "L1", "L2", "L1L2", "l1l2",
                                   "orthogonal_regularizer", "OrthogonalRegularizer"])
def test_get_by_name_matches_keras(keras, ident):
    ours, theirs = R.get(ident), keras.regularizers.get(ident)
    assert type(ours).__name__ == type(theirs).__name__
    assert ours.get_config() == theirs.get_config()


def test_get_rejects_what_keras_rejects(keras):
    for ident in ("l1_l2", "l3"):
        with pytest.raises(ValueError):
            keras.regularizers.get(ident)
        with pytest.raises(ValueError, match=f"Could not interpret regularizer identifier: '{ident}'"):
            R.get(ident)
    with pytest.raises(ValueError, match="Could not interpret regularizer identifier"):
        R.get(3)


def test_serialize_matches_keras_and_round_trips(keras):
    for name, kw in CASES:
        ours = getattr(R, name)(**kw)
        theirs = getattr(keras.regularizers, name)(**kw)
        s = R.serialize(ours)
        assert s == keras.regularizers.serialize(theirs)
        back = R.get(s)
        assert type(back) is type(ours) and back.get_config() == ours.get_config()
        # Keras reads ours.
        assert keras.regularizers.deserialize(s).get_config() == theirs.get_config()
    assert R.get(None) is None and R.serialize(None) is None


@pytest.mark.parametrize("kw,arg", [({"l1": -1.0}, "l1"), ({"l1": float("nan")}, "l1"),
                                    ({"l2": "x"}, "l2")])
def test_invalid_factors_raise(kw, arg):
    cls = R.L1 if "l1" in kw else R.L2
    with pytest.raises(ValueError, match=f"Invalid value for argument {arg}: expected a "
                                         f"non-negative float"):
        cls(**kw)


def test_orthogonal_errors():
    with pytest.raises(ValueError, match="Received: mode=diagonal"):
        R.OrthogonalRegularizer(mode="diagonal")
    with pytest.raises(ValueError, match=r"must have rank 2. Received: inputs.shape=\(3,\)"):
        R.OrthogonalRegularizer()(np.ones(3))


def test_activity_penalty_divides_by_batch_size():
    out = np.arange(12.0).reshape(4, 3)
    reg = R.L2(0.5)
    assert R.activity_penalty(reg, out) == pytest.approx(reg(out) / 4)
    assert R.activity_penalty(reg, [out, out[:2]]) == pytest.approx(reg(out) / 4 +
                                                                   reg(out[:2]) / 2)
    assert R.activity_penalty(reg, np.zeros((0, 3))) == 0.0
    g = R.activity_gradient(reg, [out, np.arange(3)])
    np.testing.assert_allclose(g[0], 2 * 0.5 * out / 4)
    assert g[1] is None                       # integer outputs get no gradient
