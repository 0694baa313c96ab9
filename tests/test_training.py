"""compile / fit / evaluate / train_on_batch against Keras 3 (TensorFlow CPU), and the
training-time shape errors."""
import numpy as np
import pytest

import attnlstm
from attnlstm import Input, Model, Sequential, ShapeError, callbacks, datasets, layers
from attnlstm.sequence import pad_sequences

RNG = np.random.default_rng(7)


def vowels_subset(n_train=96, n_test=64):
    (xtr, ytr), (xte, yte) = datasets.load_japanese_vowels()
    idx = np.random.default_rng(0).permutation(len(xtr))[:n_train]
    x = pad_sequences([xtr[i] for i in idx], maxlen=26, padding="post", dtype="float32")
    return x, ytr[idx]


def ours_classifier(units=16, classes=9, T=26, D=12):
    x = Input(shape=(T, D))
    h = layers.Masking(0.0)(x)
    h = layers.LSTM(units)(h)
    y = layers.Dense(classes, activation="softmax")(h)
    return Model(x, y)


def keras_classifier(keras, units=16, classes=9, T=26, D=12):
    x = keras.Input(shape=(T, D))
    h = keras.layers.Masking(0.0)(x)
    h = keras.layers.LSTM(units)(h)
    y = keras.layers.Dense(classes, activation="softmax")(h)
    return keras.Model(x, y)


def _keras_optimizer(keras, name, kw):
    return getattr(keras.optimizers, name)(**kw)


def _ours_optimizer(name, kw):
    return getattr(attnlstm.optimizers, name)(**kw)


# -- gradients --------------------------------------------------------------------------------

def test_compute_gradients_match_gradient_tape(keras):
    import tensorflow as tf
    x, y = vowels_subset(32)
    ours = ours_classifier()
    km = keras_classifier(keras)
    km.set_weights(ours.get_weights())
    ours.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    loss, grads = ours.compute_gradients(x, y)
    with tf.GradientTape() as tape:
        p = km(x, training=False)
        kl = keras.losses.SparseCategoricalCrossentropy()(y, p)
    kg = tape.gradient(kl, km.trainable_weights)
    assert loss == pytest.approx(float(kl), rel=1e-5)
    assert len(grads) == len(kg)
    for g, k, w in zip(grads, kg, ours.trainable_weights):
        np.testing.assert_allclose(g, k.numpy(), rtol=1e-3, atol=2e-6, err_msg=w.path)


def test_attention_model_gradients_match_gradient_tape(keras):
    """Masked LSTM with return_state, Luong-style dot attention with the last state as query."""
    import tensorflow as tf
    x, y = vowels_subset(24)

    def build(L, Input_, Model_):
        inp = Input_(shape=(26, 12))
        h = L.Masking(0.0)(inp)
        seq, hT, _ = L.LSTM(8, return_sequences=True, return_state=True)(h)
        q = L.Reshape((1, 8))(hT)
        ctx = L.Attention(use_scale=True)([q, seq])
        z = L.Concatenate()([L.Flatten()(ctx), hT])
        out = L.Dense(9, activation="softmax")(z)
        return Model_(inp, out)

    ours = build(layers, Input, Model)
    km = build(keras.layers, keras.Input, keras.Model)
    km.set_weights(ours.get_weights())
    ours.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    loss, grads = ours.compute_gradients(x, y)
    with tf.GradientTape() as tape:
        kl = keras.losses.SparseCategoricalCrossentropy()(y, km(x))
    kg = tape.gradient(kl, km.trainable_weights)
    assert loss == pytest.approx(float(kl), rel=1e-5)
    for g, k, w in zip(grads, kg, ours.trainable_weights):
        np.testing.assert_allclose(g, k.numpy(), rtol=1e-3, atol=2e-6, err_msg=w.path)


# -- one optimizer step, and a short real-data run -------------------------------------------

@pytest.mark.parametrize("name,kw", [
    ("SGD", {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True}),
    ("Adam", {"learning_rate": 0.01}),
    ("AdamW", {"learning_rate": 0.01, "weight_decay": 0.01}),
    ("RMSprop", {"learning_rate": 0.01, "clipnorm": 0.5}),
])
def test_train_on_batch_equals_keras(keras, name, kw):
    x, y = vowels_subset(32)
    ours = ours_classifier()
    km = keras_classifier(keras)
    km.set_weights(ours.get_weights())
    ours.compile(optimizer=_ours_optimizer(name, kw), loss="sparse_categorical_crossentropy",
                 metrics=["accuracy"])
    km.compile(optimizer=_keras_optimizer(keras, name, kw), loss="sparse_categorical_crossentropy",
               metrics=["accuracy"])
    for _ in range(2):
        ol = ours.train_on_batch(x, y, return_dict=True)
        kl = km.train_on_batch(x, y, return_dict=True)
    assert ol["loss"] == pytest.approx(float(kl["loss"]), rel=1e-4)
    assert ol["accuracy"] == pytest.approx(float(kl["accuracy"]), abs=1e-6)
    for a, b in zip(ours.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


def test_fit_real_data_matches_keras(keras):
    """Three epochs on Japanese Vowels, same data order (shuffle=False) and initial weights."""
    x, y = vowels_subset(96)
    ours = ours_classifier()
    km = keras_classifier(keras)
    km.set_weights(ours.get_weights())
    ours.compile(optimizer=attnlstm.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                 metrics=["accuracy"])
    km.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
               metrics=["accuracy"])
    h1 = ours.fit(x, y, batch_size=20, epochs=3, shuffle=False, verbose=0,
                  validation_split=0.25)
    h2 = km.fit(x, y, batch_size=20, epochs=3, shuffle=False, verbose=0, validation_split=0.25)
    assert set(h1.history) == set(h2.history)
    for k in h2.history:
        np.testing.assert_allclose(h1.history[k], h2.history[k], rtol=2e-3, atol=1e-4, err_msg=k)
    assert h1.history["loss"][-1] < h1.history["loss"][0]
    ev1 = ours.evaluate(x, y, verbose=0)
    ev2 = km.evaluate(x, y, verbose=0)
    np.testing.assert_allclose(ev1, ev2, rtol=2e-3, atol=1e-4)


def test_sample_weight_and_mse_sequence_output_match_keras(keras):
    x = RNG.standard_normal((20, 6, 3)).astype("float32")
    y = RNG.standard_normal((20, 6, 2)).astype("float32")
    sw = RNG.uniform(0.2, 2.0, (20, 6)).astype("float32")

    def build(L, Input_, Model_):
        inp = Input_(shape=(6, 3))
        h = L.LSTM(5, return_sequences=True)(inp)
        return Model_(inp, L.TimeDistributed(L.Dense(2))(h))
    ours = build(layers, Input, Model)
    km = build(keras.layers, keras.Input, keras.Model)
    km.set_weights(ours.get_weights())
    ours.compile(optimizer=attnlstm.optimizers.SGD(0.05), loss="mse", metrics=["mae"])
    km.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse", metrics=["mae"])
    h1 = ours.fit(x, y, sample_weight=sw, batch_size=8, epochs=2, shuffle=False, verbose=0)
    h2 = km.fit(x, y, sample_weight=sw, batch_size=8, epochs=2, shuffle=False, verbose=0)
    for k in h2.history:
        np.testing.assert_allclose(h1.history[k], h2.history[k], rtol=1e-4, err_msg=k)


def test_per_sequence_sample_weight_for_sequence_output():
    """(N,) weights on a (N, T, F) output weigh whole sequences (Keras fails in the graph);
    equal to the same weights repeated per step. Wrong shapes are a ShapeError."""
    x = RNG.standard_normal((10, 6, 3)).astype("float32")
    y = RNG.standard_normal((10, 6, 2)).astype("float32")
    sw = RNG.uniform(0.2, 2.0, 10).astype("float32")
    inp = Input(shape=(6, 3))
    m = Model(inp, layers.Dense(2)(layers.LSTM(4, return_sequences=True)(inp)))
    m.compile("sgd", "mse")
    a = m.compute_gradients(x, y, sample_weight=sw)
    b = m.compute_gradients(x, y, sample_weight=np.repeat(sw[:, None], 6, axis=1))
    assert a[0] == pytest.approx(b[0], rel=1e-6)
    for ga, gb in zip(a[1], b[1]):
        np.testing.assert_allclose(ga, gb, rtol=1e-5, atol=1e-7)
    with pytest.raises(ShapeError, match=r"sample_weight.*\(samples,\) or \(samples, 6\).*"
                                         r"got \(10, 5\)"):
        m.fit(x, y, sample_weight=np.ones((10, 5)), verbose=0)


# -- behaviour --------------------------------------------------------------------------------

def test_last_batch_smaller_and_history_keys():
    x = RNG.standard_normal((45, 5, 2)).astype("float32")
    y = RNG.integers(0, 3, 45)
    model = Sequential([Input((5, 2)), layers.LSTM(4), layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    hist = model.fit(x, y, batch_size=16, epochs=2, verbose=0, validation_data=(x[:10], y[:10]))
    assert set(hist.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(hist.history["loss"]) == 2
    assert hist.epoch == [0, 1]
    assert model.history is hist


def test_seed_makes_runs_reproducible():
    x = RNG.standard_normal((30, 5, 2)).astype("float32")
    y = RNG.standard_normal((30, 1)).astype("float32")

    def run():
        attnlstm.utils.set_random_seed(123)
        m = Sequential([Input((5, 2)), layers.LSTM(4, dropout=0.2, recurrent_dropout=0.2),
                        layers.Dropout(0.3), layers.Dense(1)])
        m.compile("adam", "mse")
        return m.fit(x, y, batch_size=8, epochs=2, verbose=0).history["loss"]
    assert run() == run()


def test_dropout_only_in_training():
    x = RNG.standard_normal((8, 5, 2)).astype("float32")
    m = Sequential([Input((5, 2)), layers.LSTM(4, dropout=0.5, recurrent_dropout=0.5),
                    layers.Dropout(0.5), layers.Dense(1)])
    np.testing.assert_array_equal(m.predict(x), m.predict(x))
    out1, _ = m.forward(x, training=True)
    out2, _ = m.forward(x, training=True)
    assert not np.allclose(out1, out2)


def test_frozen_layer_is_not_updated():
    x = RNG.standard_normal((16, 5, 2)).astype("float32")
    y = RNG.standard_normal((16, 1)).astype("float32")
    lstm = layers.LSTM(4)
    m = Sequential([Input((5, 2)), lstm, layers.Dense(1)])
    lstm.trainable = False
    before = lstm.get_weights()
    dense_before = m.layers[-1].get_weights()
    m.compile("sgd", "mse")
    m.fit(x, y, epochs=1, verbose=0)
    for a, b in zip(before, lstm.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(dense_before[0], m.layers[-1].get_weights()[0])
    assert len(m.trainable_weights) == 2


def test_add_loss_is_trained_and_logged():
    class L2Activity(layers.Layer):
        """Identity that adds rate * mean(x^2) to the loss, with its gradient."""

        def forward(self, inputs):
            self.add_loss(0.1 * np.mean(inputs ** 2), name="activity_loss")
            return inputs, inputs

        def call(self, inputs):
            return self.forward(inputs)[0]

        def backward(self, ctx, d_outputs, need_input_grad=True):
            return layers.Grads(d_outputs + 0.2 * ctx / ctx.size)

    x = RNG.standard_normal((16, 3)).astype("float32")
    y = RNG.standard_normal((16, 1)).astype("float32")
    inp = Input((3,))
    h = L2Activity()(layers.Dense(4)(inp))
    m = Model(inp, layers.Dense(1)(h))
    m.compile("sgd", "mse")
    hist = m.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert "activity_loss" in hist.history
    # The reported loss is the compiled loss plus the added term, and the gradient includes it.
    loss, grads = m.compute_gradients(x, y)
    mse_only = float(np.mean((m.predict(x) - y) ** 2))
    assert loss > mse_only
    eps = 1e-3
    w = m.layers[1].kernel
    old = w.value[0, 0]
    w.value[0, 0] = old + eps
    lp, _ = m.compute_gradients(x, y)
    w.value[0, 0] = old - eps
    lm, _ = m.compute_gradients(x, y)
    w.value[0, 0] = old
    assert grads[0][0, 0] == pytest.approx((lp - lm) / (2 * eps), rel=2e-2)


def test_progress_bar_verbose_levels(capsys):
    x = RNG.standard_normal((20, 4, 2)).astype("float32")
    y = RNG.standard_normal((20, 1)).astype("float32")
    m = Sequential([Input((4, 2)), layers.LSTM(3), layers.Dense(1)])
    m.compile("adam", "mse", metrics=["mae"])
    m.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert capsys.readouterr().out == ""
    m.fit(x, y, batch_size=8, epochs=2, verbose=2)
    out = capsys.readouterr().out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out and "loss:" in out and "mae:" in out
    m.fit(x, y, batch_size=8, epochs=1, verbose=1)
    out = capsys.readouterr().out
    assert "3/3" in out and "loss:" in out


def test_early_stopping_and_reduce_lr(tmp_path):
    x = RNG.standard_normal((20, 4, 2)).astype("float32")
    y = RNG.standard_normal((20, 1)).astype("float32")
    m = Sequential([Input((4, 2)), layers.LSTM(3), layers.Dense(1)])
    m.compile(attnlstm.optimizers.SGD(1e-9), "mse")
    path = str(tmp_path / "best.weights.h5")
    cbs = [callbacks.EarlyStopping(monitor="loss", patience=1, min_delta=1.0),
           callbacks.ReduceLROnPlateau(monitor="loss", patience=0, factor=0.5, min_delta=1.0),
           callbacks.ModelCheckpoint(path, monitor="loss", save_weights_only=True)]
    hist = m.fit(x, y, epochs=10, verbose=0, callbacks=cbs)
    assert len(hist.history["loss"]) == 2
    assert m.optimizer.learning_rate == pytest.approx(1e-9 * 0.5, rel=1e-5)  # epoch 1 only
    m2 = Sequential([Input((4, 2)), layers.LSTM(3), layers.Dense(1)])
    m2.load_weights(path)
    np.testing.assert_array_equal(m2.predict(x), m.predict(x))


def test_multi_output_losses_and_weights():
    x = RNG.standard_normal((12, 5, 2)).astype("float32")
    inp = Input((5, 2))
    h = layers.LSTM(4, return_sequences=True)(inp)
    seq_out = layers.TimeDistributed(layers.Dense(2), name="recon")(h)
    cls = layers.Dense(3, activation="softmax", name="cls")(layers.GlobalAveragePooling1D()(h))
    m = Model(inp, [seq_out, cls])
    m.compile("adam", loss={"recon": "mse", "cls": "sparse_categorical_crossentropy"},
              loss_weights={"recon": 0.5, "cls": 2.0}, metrics={"cls": ["accuracy"]})
    y = [RNG.standard_normal((12, 5, 2)).astype("float32"), RNG.integers(0, 3, 12)]
    hist = m.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert {"loss", "recon_loss", "cls_loss", "cls_accuracy"} <= set(hist.history)
    total = 0.5 * hist.history["recon_loss"][0] + 2.0 * hist.history["cls_loss"][0]
    assert hist.history["loss"][0] == pytest.approx(total, rel=1e-5)


# -- shape errors at fit time -----------------------------------------------------------------

def _seq_model():
    x = Input(shape=(10, 3))
    h = layers.LSTM(8, return_sequences=True, name="encoder")(x)
    return Model(x, layers.Dense(1, name="head")(h))


def test_per_sequence_target_for_sequence_output_names_the_lstm():
    m = _seq_model()
    m.compile("adam", "mse")
    x = np.zeros((6, 10, 3), "float32")
    with pytest.raises(ShapeError, match=r"(?s)\(6, 1\).*\(batch, 10, 1\).*LSTM 'encoder'.*"
                                         r"return_sequences=False.*GlobalAveragePooling1D"):
        m.fit(x, np.zeros((6, 1)), verbose=0)
    with pytest.raises(ShapeError, match="return_sequences"):
        m.train_on_batch(x, np.zeros((6,)))
    m.fit(x, np.zeros((6, 10, 1)), verbose=0)  # one target per step is fine
    m.fit(x, np.zeros((6, 10)), verbose=0)     # (N, T) against (N, T, 1) too, as Keras


def test_integer_labels_with_categorical_crossentropy_hint():
    m = Sequential([Input((4, 2)), layers.LSTM(3), layers.Dense(5, activation="softmax")])
    m.compile("adam", "categorical_crossentropy")
    x = np.zeros((6, 4, 2), "float32")
    with pytest.raises(ShapeError, match="sparse_categorical_crossentropy"):
        m.fit(x, np.arange(6) % 5, verbose=0)
    m.compile("adam", "sparse_categorical_crossentropy")
    with pytest.raises(ShapeError, match="categorical_crossentropy"):
        m.fit(x, np.eye(5)[np.arange(6) % 5], verbose=0)


def test_fit_errors_before_the_first_step():
    m = Sequential([Input((4, 2)), layers.LSTM(3), layers.Dense(2)])
    m.compile("sgd", "mse")
    before = m.get_weights()
    with pytest.raises(ShapeError, match=r"\(6, 3\)"):
        m.fit(np.zeros((6, 4, 2)), np.zeros((6, 3)), verbose=0)
    with pytest.raises(ValueError, match="same number of samples"):
        m.fit(np.zeros((6, 4, 2)), np.zeros((5, 2)), verbose=0)
    with pytest.raises(RuntimeError, match="compile"):
        Sequential([Input((4, 2)), layers.Dense(1)]).fit(np.zeros((2, 4, 2)), np.zeros((2, 4, 1)))
    for a, b in zip(before, m.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_decoder_of_wrong_length_names_the_repeat_vector():
    x = Input(shape=(20, 3))
    z = layers.Dense(4)(layers.LSTM(8)(x))
    d = layers.LSTM(8, return_sequences=True)(layers.RepeatVector(10, name="repeat")(z))
    m = Model(x, layers.TimeDistributed(layers.Dense(3))(d))
    m.compile("adam", "mse")
    with pytest.raises(ShapeError, match=r"(?s)\(batch, 10, 3\), got \(8, 20, 3\).*RepeatVector "
                                         r"'repeat' repeats its input 10 times.*RepeatVector\(20\)"):
        m.fit(np.zeros((8, 20, 3), "float32"), np.zeros((8, 20, 3), "float32"), verbose=0)


@pytest.mark.parametrize("wrap", [False, True])
def test_sequence_output_against_one_target_per_sample_names_the_rnn(wrap):
    """fit's hint comes from Layer.target_hint: the LSTM (or Bidirectional) that kept the time
    axis is named, found back through the layers after it."""
    x = Input(shape=(20, 3))
    rnn = layers.LSTM(8, return_sequences=True, name="enc")
    if wrap:
        rnn = layers.Bidirectional(rnn, name="bi")
    m = Model(x, layers.Dense(1)(layers.Dropout(0.1)(rnn(x))))
    m.compile("adam", "mse")
    who = "Bidirectional 'bi'" if wrap else "LSTM 'enc'"
    with pytest.raises(ShapeError, match=r"(?s)got \(8, 1\).*Hint: the output \(batch, 20, 1\) is "
                                         r"a sequence because " + who + " has return_sequences"):
        m.fit(np.zeros((8, 20, 3), "float32"), np.zeros((8, 1), "float32"), verbose=0)
