"""Constraints against Keras 3's own, and their place in the optimizer step."""
import numpy as np
import pytest

import attnlstm
from attnlstm import constraints as C

CASES = [
    ("MaxNorm", {}), ("MaxNorm", {"max_value": 0.7, "axis": 1}),
    ("MaxNorm", {"max_value": 1.5, "axis": [0, 1]}),
    ("MinMaxNorm", {}), ("MinMaxNorm", {"min_value": 1.2, "max_value": 2.0, "rate": 0.3}),
    ("MinMaxNorm", {"min_value": 0.5, "max_value": 0.8, "axis": -1}),
    ("NonNeg", {}), ("UnitNorm", {}), ("UnitNorm", {"axis": 1}),
]


@pytest.mark.parametrize("name,kw", CASES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_matches_keras(keras, name, kw, dtype):
    w = np.random.default_rng(0).normal(scale=1.5, size=(4, 3, 2)).astype(dtype)
    w[:, 0, 0] = 0.0                                  # a zero vector: norm 0
    ours = getattr(C, name)(**kw)(w)
    theirs = getattr(keras.constraints, name)(**kw)(keras.ops.convert_to_tensor(w))
    assert ours.dtype == np.dtype(dtype) and ours.shape == w.shape
    np.testing.assert_allclose(ours, np.asarray(theirs), rtol=1e-6 if dtype == "float32"
                               else 1e-14, atol=0)


@pytest.mark.parametrize("ident", ["max_norm", "MaxNorm", "min_max_norm", "non_neg", "NonNeg",
                                   "unit_norm", "UnitNorm"])
def test_get_by_name_matches_keras(keras, ident):
    ours, theirs = C.get(ident), keras.constraints.get(ident)
    assert type(ours).__name__ == type(theirs).__name__
    assert ours.get_config() == theirs.get_config()


def test_get_errors_and_serialize(keras):
    with pytest.raises(ValueError, match="Could not interpret constraint identifier: 'maxnorm2'"):
        C.get("maxnorm2")
    for name, kw in CASES:
        ours = getattr(C, name)(**kw)
        s = C.serialize(ours)
        assert s == keras.constraints.serialize(getattr(keras.constraints, name)(**kw))
        assert C.get(s).get_config() == ours.get_config()
    assert C.get(None) is None and C.serialize(None) is None


def test_optimizer_applies_constraint_after_update():
    """Keras' BaseOptimizer.apply: update first, then ``assign(constraint(variable))``."""
    w = attnlstm.Variable(np.array([[3.0, 0.1], [4.0, 0.1]]), "w", constraint=C.MaxNorm(2.0))
    ref = w.value
    opt = attnlstm.optimizers.SGD(learning_rate=1.0)
    opt.apply([np.array([[0.0, 1.0], [0.0, 0.0]])], [w])
    assert w.value is ref                             # updated in place
    want = np.array([[3.0, -0.9], [4.0, 0.1]])
    norms = np.sqrt((want ** 2).sum(0, keepdims=True))
    np.testing.assert_allclose(w.value, want * np.clip(norms, 0, 2) / (1e-7 + norms))


def test_layer_weights_carry_their_constraints():
    d = attnlstm.layers.Dense(3, kernel_constraint="non_neg", bias_constraint=C.UnitNorm())
    d(np.ones((1, 2)))
    assert isinstance(d.kernel.constraint, C.NonNeg)
    assert isinstance(d.bias.constraint, C.UnitNorm)
    e = attnlstm.layers.Embedding(5, 2, embeddings_constraint="max_norm",
                                  embeddings_regularizer="l2")
    e(np.zeros((1, 3), int))
    assert isinstance(e.embeddings.constraint, C.MaxNorm)
    assert e.losses == [pytest.approx(0.01 * float(np.sum(e.embeddings.value ** 2)), rel=1e-6)]
