"""Metrics vs keras.metrics over several batches (sample weights, masks), and metrics.get vs
Keras 3's compile_utils.get_metric (class and History name)."""
import numpy as np
import pytest

from attnlstm import losses, metrics


def _batches(rng, kind, n=3, B=6, C=4, T=None):
    shape = (B, C) if T is None else (B, T, C)
    out = []
    for _ in range(n):
        if kind == "binary":
            yt = rng.integers(0, 2, shape[:-1] + (1,)).astype("float32")
            yp = rng.random(shape[:-1] + (1,)).astype("float32")
        elif kind == "onehot":
            yt = np.eye(C, dtype="float32")[rng.integers(0, C, shape[:-1])]
            yp = rng.random(shape).astype("float32")
        elif kind == "sparse":
            yt = rng.integers(0, C, shape[:-1])
            yp = rng.random(shape).astype("float32")
        elif kind == "exact":
            yt = rng.integers(0, 3, shape).astype("float32")
            yp = rng.integers(0, 3, shape).astype("float32")
        else:
            yt = rng.normal(size=shape).astype("float32")
            yp = rng.normal(size=shape).astype("float32")
        out.append((yt, yp, rng.uniform(0, 2, shape[:-1]).astype("float32")))
    return out


CASES = [("Accuracy", "exact"), ("BinaryAccuracy", "binary"),
         ("CategoricalAccuracy", "onehot"), ("SparseCategoricalAccuracy", "sparse"),
         ("MeanSquaredError", "reg"), ("MeanAbsoluteError", "reg")]


@pytest.mark.parametrize("T", [None, 5])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("name,kind", CASES)
def test_metric_matches_keras(keras, rng, name, kind, weighted, T):
    ours, theirs = getattr(metrics, name)(), getattr(keras.metrics, name)()
    assert ours.name == theirs.name
    for yt, yp, sw in _batches(rng, kind, T=T):
        w = sw if weighted else None
        ours.update_state(yt, yp, sample_weight=w)
        theirs.update_state(yt, yp, sample_weight=w)
        np.testing.assert_allclose(ours.result(), float(theirs.result()), rtol=1e-6, atol=1e-7)
    ours.reset_state()
    assert ours.result() == 0.0


@pytest.mark.parametrize("weighted", [False, True])
def test_masked_sequence_metric_matches_keras(keras, rng, weighted):
    import tensorflow as tf
    from keras.src import backend as kbackend
    ours, theirs = metrics.MeanAbsoluteError(), keras.metrics.MeanAbsoluteError()
    for yt, yp, sw in _batches(rng, "reg", T=5):
        mask = rng.random(yp.shape[:2]) > 0.3
        t = tf.constant(yp)
        kbackend.set_keras_mask(t, tf.constant(mask))
        w = sw if weighted else None
        ours.update_state(yt, yp, sample_weight=w, mask=mask)
        theirs.update_state(yt, t, sample_weight=w)
        np.testing.assert_allclose(ours.result(), float(theirs.result()), rtol=1e-6)


def test_mean_matches_keras(keras, rng):
    ours, theirs = metrics.Mean(), keras.metrics.Mean()
    for shape, sw_shape in [((4,), (4,)), ((3, 5), (3,)), ((3, 5), (3, 5)), ((2,), None)]:
        v = rng.normal(size=shape).astype("float32")
        sw = None if sw_shape is None else rng.uniform(0, 1, sw_shape).astype("float32")
        ours.update_state(v, sample_weight=sw)
        theirs.update_state(v, sample_weight=sw)
        np.testing.assert_allclose(ours.result(), float(theirs.result()), rtol=1e-6)
    assert metrics.Mean().result() == 0.0


def test_wrapper_of_plain_function(keras, rng):
    def max_error(y_true, y_pred):
        return np.max(np.abs(y_true - y_pred), axis=-1)

    m = metrics.get(max_error)
    assert isinstance(m, metrics.MeanMetricWrapper) and m.name == "max_error"
    km = keras.metrics.MeanMetricWrapper(
        lambda a, b: keras.ops.max(keras.ops.abs(a - b), axis=-1))
    for yt, yp, sw in _batches(rng, "reg"):
        m.update_state(yt, yp, sw)
        km.update_state(yt, yp, sw)
    np.testing.assert_allclose(m.result(), float(km.result()), rtol=1e-6)


@pytest.mark.parametrize("ident,yt,yp", [
    ("accuracy", (8,), (8, 1)),
    ("acc", (8, 1), (8, 1)),
    ("accuracy", (8,), (8, 5)),
    ("accuracy", (8, 1), (8, 5)),
    ("accuracy", (8, 5), (8, 5)),
    ("Accuracy", (8, 20), (8, 20, 5)),
    ("accuracy", (8, 20, 5), (8, 20, 5)),
    ("mse", (8, 3), (8, 3)),
    ("MAE", (8, 3), (8, 3)),
    ("mean_squared_error", (8, 3), (8, 3)),
    ("mean_absolute_error", (8, 3), (8, 3)),
    ("binary_accuracy", (8, 1), (8, 1)),
    ("categorical_accuracy", (8, 5), (8, 5)),
    ("sparse_categorical_accuracy", (8,), (8, 5)),
    ("MeanSquaredError", (8, 3), (8, 3)),
])
def test_get_matches_keras_compile(keras, ident, yt, yp):
    from keras.src.trainers.compile_utils import get_metric
    theirs = get_metric(ident, np.zeros(yt, "float32"), np.zeros(yp, "float32"))
    ours = metrics.get(ident, y_true_shape=yt, y_pred_shape=(None,) + yp[1:])
    assert type(ours).__name__ == type(theirs).__name__
    assert ours.name == theirs.name


def test_get_by_loss_and_errors():
    assert type(metrics.get("accuracy", loss="binary_crossentropy")) is metrics.BinaryAccuracy
    assert type(metrics.get("acc", loss=losses.CategoricalCrossentropy())) is \
        metrics.CategoricalAccuracy
    assert type(metrics.get("accuracy", loss="scce")) is metrics.SparseCategoricalAccuracy
    # Shapes win over the loss, as Keras 3 (multi-label bce -> categorical accuracy there).
    assert type(metrics.get("accuracy", loss="bce", y_true_shape=(8, 3),
                            y_pred_shape=(None, 3))) is metrics.CategoricalAccuracy
    with pytest.raises(ValueError, match="Cannot resolve metric 'accuracy'"):
        metrics.get("accuracy", loss="mse")
    m = metrics.BinaryAccuracy(threshold=0.7)
    assert metrics.get(m) is m
    assert type(metrics.get(metrics.MeanAbsoluteError)) is metrics.MeanAbsoluteError
    with pytest.raises(ValueError, match=r"Could not interpret metric identifier: 'auc'.*'mse'"):
        metrics.get("auc")
