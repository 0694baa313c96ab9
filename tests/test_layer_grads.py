"""Backward of the core layers and the LSTM layer against central differences (float64)."""
import numpy as np
import pytest

from attnlstm import layers
from grad_check import check_layer

RNG = np.random.default_rng(42)


def randn(*shape):
    return RNG.standard_normal(shape)


@pytest.mark.parametrize("activation", [None, "tanh", "sigmoid", "relu", "softmax", "softplus",
                                        "elu", "selu", "gelu", "swish", "hard_sigmoid"])
@pytest.mark.parametrize("shape", [(3, 4), (2, 5, 4)])
def test_dense(activation, shape):
    layer = layers.Dense(3, activation=activation, dtype="float64")
    check_layer(layer, [randn(*shape)])


def test_dense_no_bias():
    check_layer(layers.Dense(2, use_bias=False, dtype="float64"), [randn(4, 3)])


@pytest.mark.parametrize("act", ["tanh", "relu", "softmax", "sigmoid"])
def test_activation(act):
    check_layer(layers.Activation(act, dtype="float64"), [randn(3, 4, 5)])


@pytest.mark.parametrize("axis", [-1, 1, (1, 2)])
def test_softmax(axis):
    x = randn(2, 4, 3)
    check_layer(layers.Softmax(axis=axis, dtype="float64"), [x])


def test_softmax_mask():
    x = randn(2, 5)
    m = np.array([[1, 1, 0, 1, 0], [0, 0, 0, 0, 0]], bool)
    check_layer(layers.Softmax(dtype="float64"), [x], {"mask": m})


def test_dropout_training():
    layer = layers.Dropout(0.4, seed=3, dtype="float64")
    def reset():
        layer._rng = np.random.default_rng(3)
    check_layer(layer, [randn(4, 6)], training=True, reset_rng=reset)


def test_masking():
    # Perturbing a padded (all-zero) step would unmask it, so differences are taken on real
    # steps (all of them, without padding) and the padded steps are checked to get zero.
    check_layer(layers.Masking(dtype="float64"), [randn(3, 5, 2)])
    x = randn(3, 5, 2)
    x[0, 3:] = 0.0
    x[2, :2] = 0.0
    layer = layers.Masking(dtype="float64")
    out, ctx = layer._eager_call((x,), {}, record=True)
    d = randn(3, 5, 2)
    g = layer.backward(ctx, d).inputs
    keep = np.any(x != 0, axis=-1)[..., None]
    np.testing.assert_array_equal(g, np.where(keep, d, 0))


def test_embedding():
    layer = layers.Embedding(7, 3, dtype="float64")
    idx = np.array([[1, 2, 2, 0], [6, 1, 3, 3]])
    check_layer(layer, [idx])


def test_lambda_backward():
    layer = layers.Lambda(lambda x: x ** 2, backward=lambda x, y, d: 2 * x * d, dtype="float64")
    check_layer(layer, [randn(3, 4)])


def _lstm_cases():
    for rs in (False, True):
        for st in (False, True):
            yield dict(return_sequences=rs, return_state=st)
    yield dict(return_sequences=True, go_backwards=True)
    yield dict(return_sequences=True, zero_output_for_mask=True)
    yield dict(return_sequences=False, zero_output_for_mask=True)
    yield dict(use_bias=False, activation="relu", recurrent_activation="hard_sigmoid")


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("opts", list(_lstm_cases()), ids=str)
def test_lstm(opts, masked):
    layer = layers.LSTM(4, dtype="float64", **opts)
    x = randn(3, 6, 2)
    kw = {}
    if masked:
        kw["mask"] = np.array([[1] * 6, [1, 1, 1, 1, 0, 0], [0, 1, 1, 0, 1, 1]], bool)
    check_layer(layer, [x], kw)


def test_lstm_initial_state():
    layer = layers.LSTM(3, return_sequences=True, dtype="float64")
    kw = {"initial_state": [randn(2, 3), randn(2, 3)]}
    check_layer(layer, [randn(2, 4, 5)], kw, kwarg_paths=[("initial_state", 0), ("initial_state", 1)])


@pytest.mark.parametrize("dropout,recurrent_dropout", [(0.3, 0.0), (0.0, 0.3), (0.3, 0.4)])
def test_lstm_dropout_training(dropout, recurrent_dropout):
    layer = layers.LSTM(4, dropout=dropout, recurrent_dropout=recurrent_dropout, seed=1,
                        return_sequences=True, dtype="float64")

    def reset():
        layer._rng = np.random.default_rng(5)
    check_layer(layer, [randn(3, 5, 2)], training=True, reset_rng=reset)


def test_model_backward_functional():
    """A functional model with a shared layer, a masked LSTM stack and two outputs."""
    from attnlstm import Input, Model
    x = Input(shape=(6, 3), dtype="float64")
    m = layers.Masking()(x)
    h = layers.LSTM(4, return_sequences=True, dtype="float64")(m)
    dense = layers.Dense(4, activation="tanh", dtype="float64")
    h2 = dense(h)
    h3 = dense(h2)  # the same layer twice: its gradients add up
    last = layers.LSTM(3, dtype="float64")(h3)
    y1 = layers.Dense(2, activation="softmax", dtype="float64")(last)
    y2 = layers.Dense(1, dtype="float64")(h2)
    model = Model(x, [y1, y2], dtype="float64")
    xv = randn(3, 6, 3)
    xv[1, 4:] = 0.0
    # Weights only: perturbing a padded (zero) step of x would unmask it.
    check_layer(model, [xv], input_args=[])


def test_model_backward_nested_with_state():
    from attnlstm import Input, Model
    inner_in = Input(shape=(5, 2), dtype="float64")
    seq, h, c = layers.LSTM(3, return_sequences=True, return_state=True, dtype="float64")(inner_in)
    inner = Model(inner_in, [seq, h, c])
    x = Input(shape=(5, 2), dtype="float64")
    s, h, c = inner(x)
    dec = layers.LSTM(3, return_sequences=True, dtype="float64")(s, initial_state=[h, c])
    y = layers.Dense(2, dtype="float64")(dec)
    model = Model(x, y)
    check_layer(model, [randn(2, 5, 2)])
