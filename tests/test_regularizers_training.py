"""A regularised, constrained model trains to Keras 3's weights and losses (float64, rtol 1e-6).

Kernel/bias/embeddings regularizers, activity regularizers (Dense: on the output; MultiHeadAttention:
on its four projections, as Keras) and constraints on every kind of weight, trained three steps
with SGD (momentum) and Adam from Keras' own initial weights.
"""
import numpy as np
import pytest

import attnlstm
from attnlstm import constraints as C
from attnlstm import layers
from attnlstm import regularizers as R

B, T, V, E = 6, 5, 11, 4


@pytest.fixture
def keras64(keras):
    """Keras with float64 as floatx (its compiled loss is then float64 too)."""
    old = keras.config.floatx()
    keras.config.set_floatx("float64")
    keras.utils.set_random_seed(0)              # Keras' initial weights, which ours copy
    yield keras
    keras.config.set_floatx(old)


def _build(L, Input, Model, Reg, Con, dtype="float64", embedding_activity=False):
    # Keras' compiled train step differs from its own GradientTape gradient plus update rule by
    # ~1e-9 absolute in float64 even without any regularizer (Embedding -> pooling -> Dense, one
    # SGD step: Dense bias 9.3e-10); an L1 activity penalty on the embeddings makes that gap
    # larger than rtol 1e-6 on near-zero entries, so that penalty is checked on the gradients
    # (test_compute_gradients_match_gradient_tape), which agree to 1e-12.
    tok = Input(shape=(T,), dtype="int32")
    e = L.Embedding(V, E, embeddings_regularizer=Reg.L2(0.05),
                    activity_regularizer=Reg.L1(0.01) if embedding_activity else None,
                    embeddings_constraint=Con.UnitNorm(axis=1), dtype=dtype)(tok)
    a = L.MultiHeadAttention(2, 3, kernel_regularizer=Reg.L1L2(l1=0.01, l2=0.02),
                             bias_regularizer="l2", activity_regularizer=Reg.L2(0.01),
                             kernel_constraint=Con.MaxNorm(0.9), bias_constraint=Con.NonNeg(),
                             dtype=dtype)(e, e)
    p = L.GlobalAveragePooling1D(dtype=dtype)(a)
    h = L.Dense(3, activation="tanh", kernel_regularizer=Reg.L2(0.1),
                bias_regularizer=Reg.L1(0.05), activity_regularizer=Reg.L1(0.02),
                kernel_constraint=Con.MinMaxNorm(0.2, 0.9, rate=0.5),
                bias_constraint=Con.NonNeg(), dtype=dtype)(p)
    y = L.Dense(2, kernel_regularizer=Reg.L1L2(l2=0.03), bias_regularizer="l1",
                activity_regularizer="l2", kernel_constraint=Con.UnitNorm(), dtype=dtype)(h)
    return Model(tok, y)


def _data():
    rng = np.random.default_rng(3)
    x = rng.integers(0, V, size=(B, T)).astype("int32")
    y = rng.normal(size=(B, 2))
    return x, y


@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_regularised_model_trains_like_keras(keras64, opt):
    keras = keras64
    x, y = _data()
    km = _build(keras.layers, keras.Input, keras.Model, keras.regularizers, keras.constraints)
    ours = _build(layers, attnlstm.Input, attnlstm.Model, R, C)
    ours.set_weights(km.get_weights())
    if opt == "sgd":
        kopt = keras.optimizers.SGD(0.1, momentum=0.5)
        oopt = attnlstm.optimizers.SGD(0.1, momentum=0.5)
    else:
        kopt, oopt = keras.optimizers.Adam(0.01), attnlstm.optimizers.Adam(0.01)
    km.compile(optimizer=kopt, loss="mse")
    ours.compile(optimizer=oopt, loss="mse")
    # The penalties are a visible part of the loss (not rounding).
    plain = float(np.mean((ours.predict(x, verbose=0) - y) ** 2))
    for step in range(3):
        kl = float(km.train_on_batch(x, y))
        ol = float(ours.train_on_batch(x, y))
        assert ol == pytest.approx(kl, rel=1e-6), f"step {step}"
        if step == 0:
            assert ol > plain * 1.01
    for w, a, b in zip(ours.weights, ours.get_weights(), km.get_weights()):
        # atol: the ~1e-9 gap of Keras' compiled step (see _build) on entries near zero.
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9, err_msg=w.path)


def test_fit_and_evaluate_losses_include_penalties(keras64):
    keras = keras64
    x, y = _data()
    km = _build(keras.layers, keras.Input, keras.Model, keras.regularizers, keras.constraints)
    ours = _build(layers, attnlstm.Input, attnlstm.Model, R, C)
    ours.set_weights(km.get_weights())
    km.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    ours.compile(optimizer=attnlstm.optimizers.SGD(0.05), loss="mse")
    hk = km.fit(x, y, batch_size=3, epochs=2, shuffle=False, verbose=0)
    ho = ours.fit(x, y, batch_size=3, epochs=2, shuffle=False, verbose=0)
    np.testing.assert_allclose(ho.history["loss"], hk.history["loss"], rtol=1e-6)
    assert ours.evaluate(x, y, verbose=0) == pytest.approx(km.evaluate(x, y, verbose=0),
                                                           rel=1e-6)


def test_compute_gradients_match_gradient_tape(keras64):
    """The penalties' gradients (weight and activity) against TensorFlow's."""
    keras = keras64
    import tensorflow as tf
    x, y = _data()
    km = _build(keras.layers, keras.Input, keras.Model, keras.regularizers, keras.constraints,
                embedding_activity=True)
    ours = _build(layers, attnlstm.Input, attnlstm.Model, R, C, embedding_activity=True)
    ours.set_weights(km.get_weights())
    ours.compile(optimizer="sgd", loss="mse")
    loss, grads = ours.compute_gradients(x, y)
    with tf.GradientTape() as tape:
        out = km(x, training=False)
        kl = keras.losses.MeanSquaredError()(y, out) + tf.add_n(km.losses)
    kg = tape.gradient(kl, km.trainable_weights)
    assert loss == pytest.approx(float(kl), rel=1e-9)
    for g, k, w in zip(grads, kg, ours.trainable_weights):
        np.testing.assert_allclose(g, k.numpy(), rtol=1e-7, atol=1e-12, err_msg=w.path)


def test_activity_penalty_on_a_softmax_output_trained_from_logits(keras):
    """A crossentropy on a softmax Dense is differentiated from the logits (as Keras on TF);
    the output's activity penalty must still reach the weights through the softmax."""
    import tensorflow as tf

    def build(L, Input, Model, Reg):
        i = Input(shape=(4,))
        return Model(i, L.Dense(3, activation="softmax", activity_regularizer=Reg.L2(0.5),
                                kernel_regularizer=Reg.L1(0.01))(i))

    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 4)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 5)]
    km = build(keras.layers, keras.Input, keras.Model, keras.regularizers)
    om = build(layers, attnlstm.Input, attnlstm.Model, R)
    om.set_weights(km.get_weights())
    om.compile(optimizer="sgd", loss="categorical_crossentropy")
    loss, grads = om.compute_gradients(x, y)
    with tf.GradientTape() as tape:
        out = km(x)
        kl = keras.losses.CategoricalCrossentropy()(y, out) + tf.add_n(
            [tf.cast(v, tf.float32) for v in km.losses])
    kg = tape.gradient(kl, km.trainable_weights)
    assert loss == pytest.approx(float(kl), rel=1e-5)
    for g, k in zip(grads, kg):
        np.testing.assert_allclose(g, k.numpy(), rtol=1e-4, atol=1e-6)


def test_layer_losses_match_keras(keras):
    """Keras' own docstring example: an L1 kernel penalty and an L2 activity penalty."""
    x = np.full((5, 5), 2.0, np.float32)
    kd = keras.layers.Dense(5, kernel_initializer="ones", kernel_regularizer=keras.regularizers.L1(0.01),
                            activity_regularizer=keras.regularizers.L2(0.01))
    od = layers.Dense(5, kernel_initializer="ones", kernel_regularizer=R.L1(0.01),
                      activity_regularizer=R.L2(0.01))
    kd(x)
    od(x)
    assert sorted(od.losses) == pytest.approx(sorted(float(v) for v in kd.losses), rel=1e-6)
    assert sum(od.losses) == pytest.approx(5.25, rel=1e-6)


def test_untrainable_layer_penalty_not_counted():
    """Keras sums the penalties of trainable weights only."""
    d = layers.Dense(2, kernel_regularizer="l2", kernel_initializer="ones")
    d(np.ones((1, 3)))
    assert d.losses == [pytest.approx(0.06)]
    d.trainable = False
    assert d.losses == []


def test_custom_regularizer_without_gradient_raises_in_training():
    def penalty(w):
        return 0.1 * np.sum(w ** 4)

    x = attnlstm.Input(shape=(3,))
    m = attnlstm.Model(x, layers.Dense(2, kernel_regularizer=penalty)(x))
    m.compile(optimizer="sgd", loss="mse")
    m.predict(np.ones((2, 3)), verbose=0)         # inference is fine
    with pytest.raises(ValueError, match=r"regularizer of weight 'dense.*/kernel'.*gradient"):
        m.train_on_batch(np.ones((2, 3)), np.zeros((2, 2)))


def test_custom_regularizer_subclass_trains():
    class L4(R.Regularizer):
        def __call__(self, w):
            return 0.1 * np.sum(w ** 4)

        def gradient(self, w):
            return 0.4 * w ** 3

        def get_config(self):
            return {}

    x = attnlstm.Input(shape=(3,))
    m = attnlstm.Model(x, layers.Dense(2, kernel_regularizer=L4(), kernel_initializer="ones",
                                       use_bias=False)(x))
    m.compile(optimizer=attnlstm.optimizers.SGD(0.5), loss="mse")
    loss = m.train_on_batch(np.zeros((2, 3)), np.zeros((2, 2)))
    assert loss == pytest.approx(0.6)                  # mse 0 + 0.1 * 6 ones
    np.testing.assert_allclose(m.get_weights()[0], np.full((3, 2), 1 - 0.5 * 0.4), rtol=1e-6)


def test_config_round_trip():
    d = layers.Dense(3, kernel_regularizer=R.L1L2(l1=0.1, l2=0.2), activity_regularizer="l1",
                     kernel_constraint=C.MaxNorm(3, axis=[0]), bias_constraint="non_neg")
    cfg = d.get_config()
    assert cfg["kernel_regularizer"]["class_name"] == "L1L2"
    d2 = layers.Dense.from_config({**cfg, "name": "copy"})
    assert d2.kernel_regularizer.get_config() == {"l1": 0.1, "l2": 0.2}
    assert isinstance(d2.activity_regularizer, R.L1)
    assert d2.kernel_constraint.get_config() == {"max_value": 3, "axis": [0]}
    assert isinstance(d2.bias_constraint, C.NonNeg)
    m = layers.MultiHeadAttention(2, 4, kernel_regularizer="l2", bias_constraint="non_neg")
    m2 = layers.MultiHeadAttention.from_config({**m.get_config(), "name": "mha_copy"})
    assert isinstance(m2.kernel_regularizer, R.L2) and isinstance(m2.bias_constraint, C.NonNeg)


# -- training arguments that used to be accepted and ignored ---------------------------------

def test_evaluate_steps_and_validation_steps_match_keras(keras):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(10, 3)).astype("float32"), rng.normal(size=(10, 2)).astype("float32")

    def build(L, Input, Model):
        i = Input(shape=(3,))
        return Model(i, L.Dense(2)(i))

    km = build(keras.layers, keras.Input, keras.Model)
    om = build(layers, attnlstm.Input, attnlstm.Model)
    om.set_weights(km.get_weights())
    km.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    om.compile(optimizer=attnlstm.optimizers.SGD(0.1), loss="mse")
    assert om.evaluate(x, y, batch_size=3, steps=2, verbose=0) == pytest.approx(
        km.evaluate(x, y, batch_size=3, steps=2, verbose=0), rel=1e-6)
    assert om.evaluate(x, y, batch_size=3, steps=2, verbose=0) != pytest.approx(
        om.evaluate(x, y, batch_size=3, verbose=0), rel=1e-6)
    hk = km.fit(x[:6], y[:6], batch_size=3, validation_data=(x[6:], y[6:]), validation_steps=1,
                validation_batch_size=2, shuffle=False, verbose=0)
    ho = om.fit(x[:6], y[:6], batch_size=3, validation_data=(x[6:], y[6:]), validation_steps=1,
                validation_batch_size=2, shuffle=False, verbose=0)
    assert ho.history["val_loss"] == pytest.approx(hk.history["val_loss"], rel=1e-5)
    with pytest.raises(ValueError, match=r"Received: steps=0"):
        om.evaluate(x, y, steps=0, verbose=0)
    with pytest.raises(ValueError, match=r"Received: validation_steps=-1"):
        om.fit(x, y, validation_split=0.5, validation_steps=-1, verbose=0)


def test_steps_per_execution_other_than_one_is_rejected():
    i = attnlstm.Input(shape=(3,))
    m = attnlstm.Model(i, layers.Dense(2)(i))
    with pytest.raises(ValueError, match=r"Received: steps_per_execution=4"):
        m.compile(optimizer="sgd", loss="mse", steps_per_execution=4)
    m.compile(optimizer="sgd", loss="mse", run_eagerly=True, jit_compile=False)


def test_rejected_layer_arguments():
    with pytest.raises(ValueError, match=r"Received: lora_rank=4"):
        layers.Dense(3, lora_rank=4)
    with pytest.raises(ValueError, match=r"Received: lora_rank=2"):
        layers.Embedding(5, 3, lora_rank=2)
    with pytest.raises(ValueError, match=r"Received: flash_attention=True"):
        layers.MultiHeadAttention(2, 3, flash_attention=True)
    with pytest.raises(ValueError, match=r"Received: dropout=1.5"):
        layers.MultiHeadAttention(2, 3, dropout=1.5)
    with pytest.raises(ValueError, match=r"Received: units=0"):
        layers.AttentionPooling(units=0)


# -- LSTM -------------------------------------------------------------------------------------

def _build_lstm(L, Input, Model, Reg, Con, dtype="float64"):
    x = Input(shape=(T, 3))
    h = L.LSTM(4, kernel_regularizer=Reg.L2(0.05), recurrent_regularizer=Reg.L1(0.02),
               bias_regularizer=Reg.L1L2(0.01, 0.01), activity_regularizer=Reg.L2(0.03),
               kernel_constraint=Con.MaxNorm(0.8), recurrent_constraint=Con.UnitNorm(),
               bias_constraint=Con.NonNeg(), dtype=dtype)(x)
    return Model(x, L.Dense(2, kernel_regularizer="l2", dtype=dtype)(h))


def test_regularised_lstm_trains_like_keras(keras64):
    keras = keras64
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(B, T, 3)), rng.normal(size=(B, 2))
    km = _build_lstm(keras.layers, keras.Input, keras.Model, keras.regularizers,
                     keras.constraints)
    ours = _build_lstm(layers, attnlstm.Input, attnlstm.Model, R, C)
    ours.set_weights(km.get_weights())
    km.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    ours.compile(optimizer=attnlstm.optimizers.Adam(0.01), loss="mse")
    for step in range(3):
        kl = float(km.train_on_batch(x, y))
        ol = float(ours.train_on_batch(x, y))
        assert ol == pytest.approx(kl, rel=1e-6), f"step {step}"
    for w, a, b in zip(ours.weights, ours.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9, err_msg=w.path)


def test_embedding_input_length_warns_as_keras():
    with pytest.warns(UserWarning, match="`input_length` is deprecated"):
        layers.Embedding(5, 2, input_length=3)
