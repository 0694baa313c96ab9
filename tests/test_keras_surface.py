"""Keras code runs as written (issue 17): names, data sources for fit/evaluate/predict, utils,
and the silent failures (a mask flag on a mask-free tensor)."""
import warnings

import numpy as np
import pytest

import attnlstm
from attnlstm import Input, Model, layers, utils


def _model(T=6, D=3, seed=0):
    attnlstm.utils.set_random_seed(seed)
    inp = Input((T, D), name="seq")
    out = layers.Dense(1)(layers.LSTM(4)(inp))
    m = Model(inp, out)
    m.compile(optimizer="sgd", loss="mse")
    return m


def _data(n=20, T=6, D=3, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, T, D)).astype(np.float32), rng.standard_normal((n, 1)).astype(np.float32)


# --- names ------------------------------------------------------------------------------------

def test_keras_module_paths_exist():
    assert attnlstm.layers.Input is attnlstm.Input
    assert attnlstm.datasets.load_japanese_vowels is not None     # an attribute after import
    for name in ("pad_sequences", "to_categorical", "timeseries_dataset_from_array", "PyDataset",
                 "Sequence", "normalize", "set_random_seed"):
        assert callable(getattr(utils, name)), name


def test_dense_on_an_unmasked_input_has_no_mask():
    t = layers.Dense(3)(Input((7, 5)))
    assert t.has_mask is False
    m = layers.Dense(3)(layers.Masking()(Input((7, 5))))
    assert m.has_mask is True


# --- utils against Keras ----------------------------------------------------------------------

def test_to_categorical_and_normalize_match_keras():
    import keras
    for x, n in (([0, 1, 2, 3], 4), ([[1], [0], [2]], None), (np.array([[0, 2], [1, 1]]), 3)):
        np.testing.assert_array_equal(utils.to_categorical(x, n), keras.utils.to_categorical(x, n))
    a = np.random.default_rng(0).standard_normal((4, 5))
    for axis, order in ((-1, 2), (1, 1), (1, 2)):
        np.testing.assert_allclose(utils.normalize(a, axis, order),
                                   keras.utils.normalize(a, axis, order), rtol=1e-12)
    np.testing.assert_allclose(utils.normalize(a, 0), a / np.linalg.norm(a, axis=0), rtol=1e-12)
    with pytest.raises(ValueError, match=r"class ids must be in \[0, 2\); got values from 0 to 3"):
        utils.to_categorical([0, 3], num_classes=2)


@pytest.mark.parametrize("kw", [
    dict(sequence_length=5),
    dict(sequence_length=4, sequence_stride=3, sampling_rate=2, batch_size=3),
    dict(sequence_length=3, start_index=4, end_index=30, batch_size=7),
])
def test_timeseries_dataset_matches_keras(kw):
    import keras
    data = np.arange(40 * 2, dtype=np.float32).reshape(40, 2)
    targets = np.arange(40, dtype=np.float32) * 10
    ours = list(utils.timeseries_dataset_from_array(data, targets, **kw))
    theirs = [(np.asarray(a), np.asarray(b)) for a, b in
              keras.utils.timeseries_dataset_from_array(data, targets, **kw)]
    assert len(ours) == len(theirs)
    for (xa, ya), (xb, yb) in zip(ours, theirs):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


def test_timeseries_dataset_errors_are_keras():
    with pytest.raises(ValueError, match=r"`sequence_stride` must be higher than 0. Received: "
                                         r"sequence_stride=0"):
        utils.timeseries_dataset_from_array(np.zeros(10), None, 3, sequence_stride=0)
    with pytest.raises(ValueError, match=r"`end_index` must be higher than `start_index`"):
        utils.timeseries_dataset_from_array(np.zeros(10), None, 3, start_index=5, end_index=4)


# --- data sources -----------------------------------------------------------------------------

class _Batches(utils.PyDataset):
    def __init__(self, x, y, batch_size, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y, self.batch_size = x, y, batch_size
        self.epochs_seen = 0

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, i):
        s = slice(i * self.batch_size, (i + 1) * self.batch_size)
        return self.x[s], self.y[s]

    def on_epoch_end(self):
        self.epochs_seen += 1


@pytest.mark.parametrize("workers", [1, 3])
def test_fit_on_a_pydataset_equals_fit_on_arrays(workers):
    x, y = _data()
    a = _model()
    ha = a.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
    b = _model()
    ds = _Batches(x, y, 8, workers=workers)
    hb = b.fit(ds, epochs=3, verbose=0)
    assert ds.epochs_seen == 3
    np.testing.assert_array_equal(ha.history["loss"], hb.history["loss"])
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    np.testing.assert_array_equal(a.predict(x, verbose=0), b.predict(ds, verbose=0))
    assert a.evaluate(x, y, batch_size=8, verbose=0) == pytest.approx(b.evaluate(ds, verbose=0))


def test_fit_on_a_generator_with_steps_per_epoch_and_validation_generator():
    x, y = _data()

    def gen():
        while True:
            for i in range(0, 20, 5):
                yield x[i:i + 5], y[i:i + 5]

    a = _model()
    ha = a.fit(x, y, batch_size=5, epochs=2, shuffle=False, verbose=0,
               validation_data=(x[:10], y[:10]))
    b = _model()
    val = (b for b in [(x[:5], y[:5]), (x[5:10], y[5:10])] * 2)
    hb = b.fit(gen(), steps_per_epoch=4, epochs=2, verbose=0, validation_data=val,
               validation_steps=2)
    np.testing.assert_allclose(ha.history["loss"], hb.history["loss"], rtol=0, atol=0)
    np.testing.assert_allclose(ha.history["val_loss"], hb.history["val_loss"], rtol=1e-6)


def test_a_finite_generator_runs_out_with_a_warning():
    x, y = _data()
    m = _model()
    gen = ((x[i:i + 5], y[i:i + 5]) for i in range(0, 20, 5))
    with pytest.warns(UserWarning, match="ran out of data"):
        h = m.fit(gen, epochs=3, verbose=0)
    assert len(h.history["loss"]) == 1


def test_fit_on_timeseries_dataset_and_dict_inputs():
    series = np.sin(np.arange(300) / 5).astype(np.float32)[:, None]
    ds = utils.timeseries_dataset_from_array(series[:-6], series[6:, 0], sequence_length=6,
                                             batch_size=32)
    m = _model(T=6, D=1)
    h = m.fit(ds, epochs=2, verbose=0)
    assert len(h.history["loss"]) == 2 and np.isfinite(h.history["loss"]).all()
    # dict keyed by the input name, for a single-input model too
    x, y = _data()
    m.compile(optimizer="sgd", loss="mse")
    m2 = _model()
    np.testing.assert_array_equal(m2.predict({"seq": x}, verbose=0), m2.predict(x, verbose=0))
    m2.fit({"seq": x}, y, epochs=1, verbose=0)


def test_batch_source_errors():
    x, y = _data()
    m = _model()
    ds = _Batches(x, y, 8)
    with pytest.raises(ValueError, match=r"the `y` argument is not supported when `x` is a "
                                         r"dataset"):
        m.fit(ds, y, verbose=0)
    with pytest.raises(ValueError, match=r"`validation_split` is only supported for NumPy arrays"):
        m.fit(ds, validation_split=0.2, verbose=0)
    bad = _Batches(x[:, :, :2], y, 8)           # wrong feature count: the usual ShapeError
    with pytest.raises(attnlstm.ShapeError, match=r"got \(8, 6, 2\)"):
        m.fit(bad, verbose=0)


def test_pad_sequences_is_keras_default_int32():
    import keras
    seqs = [[1, 2], [3]]
    a, b = utils.pad_sequences(seqs), keras.utils.pad_sequences(seqs)
    assert a.dtype == b.dtype == np.int32
    np.testing.assert_array_equal(a, b)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        utils.pad_sequences([[0.5]], dtype="float32")


@pytest.mark.parametrize("shape", [(3, 1, 7), (1, 5, 7), (3, 5, 1)])
def test_mha_attention_mask_broadcasts_as_keras(shape):
    import keras
    rng = np.random.default_rng(0)
    q = rng.standard_normal((3, 5, 6)).astype("float32")
    v = rng.standard_normal((3, 7, 6)).astype("float32")
    mask = rng.random(shape) > 0.3
    km = keras.layers.MultiHeadAttention(2, 4)
    want = np.asarray(km(q, v, attention_mask=mask))
    am = layers.MultiHeadAttention(2, 4)
    am(q, v)
    am.set_weights(km.get_weights())
    np.testing.assert_allclose(am(q, v, attention_mask=mask), want, rtol=1e-4, atol=1e-5)
    sym = am(Input((5, 6)), Input((7, 6)), attention_mask=Input(shape[1:], dtype="bool"))
    assert sym.shape == (None, 5, 6)


def test_mha_attention_mask_that_cannot_broadcast_is_a_shape_error():
    am = layers.MultiHeadAttention(2, 4, name="mha")
    with pytest.raises(ValueError, match=r"MultiHeadAttention 'mha': `attention_mask` must have "
                                         r"shape \(3, 5, 7\), got \(3, 2, 7\)"):
        am(np.zeros((3, 5, 6), "float32"), np.zeros((3, 7, 6), "float32"),
           attention_mask=np.ones((3, 2, 7), bool))


def test_predict_honours_steps_callbacks_and_verbose(capsys):
    x, _ = _data(n=20)
    m = _model()
    seen = []

    class Spy(attnlstm.callbacks.Callback):
        def on_predict_begin(self, logs=None):
            seen.append("begin")

        def on_predict_batch_end(self, batch, logs=None):
            seen.append((batch, logs["outputs"].shape))

        def on_predict_end(self, logs=None):
            seen.append("end")

    out = m.predict(x, batch_size=8, steps=2, callbacks=[Spy()], verbose=0)
    assert out.shape == (16, 1)                    # Keras: steps * batch_size samples
    assert seen == ["begin", (0, (8, 1)), (1, (8, 1)), "end"]
    assert capsys.readouterr().out == ""
    m.predict(x, verbose=1)
    assert "1/1" in capsys.readouterr().out        # Keras' progress bar
    with pytest.raises(ValueError, match=r"`steps` must be a positive integer or None. "
                                         r"Received: steps=0"):
        m.predict(x, steps=0)


def test_summary_options_take_effect():
    inner_in = Input((4,))
    inner = Model(inner_in, layers.Dense(2, name="inner_dense")(inner_in), name="inner")
    inp = Input((4,), name="x")
    h = layers.Dense(4, name="first")(inp)
    frozen = layers.Dense(4, name="frozen")
    frozen.trainable = False
    out = inner(frozen(h))
    m = Model(inp, out)
    lines = []
    m.summary(print_fn=lines.append, show_trainable=True, expand_nested=True)
    text = "\n".join(lines)
    assert "Trainable" in text and "inner_dense (Dense)" in text
    row = next(l for l in lines if l.startswith("frozen"))
    assert row.rstrip().endswith("N")
    lines = []
    m.summary(print_fn=lines.append, layer_range=["first", "frozen"])
    text = "\n".join(lines)
    assert "first (Dense)" in text and "frozen (Dense)" in text and "inner (" not in text
    with pytest.raises(ValueError, match="does not match any layer name"):
        m.summary(layer_range=["nope", "frozen"])
    lines = []
    m.summary(print_fn=lines.append, line_length=60, positions=[0.5, 0.8, 1.0])
    assert max(len(l) for l in lines[:4]) == 60


# --- subclassed models with their own train_step (Keras 3's contract, GradientTape) -----------

def _custom_step_model(K, tape_cls):
    class Regressor(K.Model):
        def __init__(self):
            super().__init__()
            self.d1 = K.layers.Dense(8, activation="tanh")
            self.d2 = K.layers.Dense(1)
            self.loss_tracker = K.metrics.Mean(name="loss")

        def call(self, x):
            return self.d2(self.d1(x))

        @property
        def metrics(self):
            return [self.loss_tracker]

        def train_step(self, data):
            x, y = data
            with tape_cls() as tape:
                y_pred = self(x, training=True)
                loss = K.ops.mean(K.ops.square(y_pred - y))
            grads = tape.gradient(loss, self.trainable_weights)
            self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
            self.loss_tracker.update_state(loss)
            return {"loss": self.loss_tracker.result()}
    return Regressor()


def test_custom_train_step_with_gradient_tape_follows_keras():
    import keras
    import tensorflow as tf
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 4)).astype("float32")
    y = x[:, :1] * 2 + 1
    km = _custom_step_model(keras, tf.GradientTape)
    km(x[:2])
    am = _custom_step_model(attnlstm, attnlstm.GradientTape)
    am(x[:2])
    am.set_weights(km.get_weights())
    km.compile(optimizer=keras.optimizers.SGD(0.05))
    am.compile(optimizer=attnlstm.optimizers.SGD(0.05))
    kh = km.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0).history["loss"]
    ah = am.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(ah, kh, rtol=1e-5)


def test_gradient_tape_matches_tf_through_an_lstm_and_a_custom_layer():
    import keras
    import tensorflow as tf
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 5, 4))

    def build(K):
        class Pool(K.layers.Layer):
            def build(self, input_shape):
                self.w = self.add_weight(shape=(input_shape[-1], 1), initializer="ones",
                                         name="w")

            def call(self, h):
                a = K.ops.softmax(K.ops.tanh(K.ops.matmul(h, self.w)), axis=1)
                return K.ops.sum(h * a, axis=1)
        inp = K.Input((5, 4), dtype="float64")
        out = Pool(dtype="float64")(K.layers.LSTM(6, return_sequences=True, dtype="float64")(inp))
        return K.Model(inp, out)
    km, am = build(keras), build(attnlstm)
    am.set_weights(km.get_weights())
    with tf.GradientTape() as t:
        kl = tf.reduce_sum(km(x) ** 2)
    kg = t.gradient(kl, km.trainable_weights)
    with attnlstm.GradientTape() as tape:
        al = attnlstm.ops.sum(am(x) ** 2)
    ag = tape.gradient(al, am.trainable_weights)
    assert len(ag) == len(kg) == 4
    for a, k in zip(ag, kg):
        np.testing.assert_allclose(a, np.asarray(k), rtol=1e-9, atol=1e-12)


def test_gradient_tape_errors_and_unrelated_variables():
    d1, d2 = layers.Dense(2), layers.Dense(2)
    x = np.ones((1, 3), "float32")
    d2(x)
    with attnlstm.GradientTape() as tape:
        loss = attnlstm.ops.sum(d1(x))
        with pytest.raises(RuntimeError, match="after the `with` block"):
            tape.gradient(loss, d1.trainable_weights)
    g = tape.gradient(loss, d1.trainable_weights + d2.trainable_weights)
    assert g[0] is not None and g[2] is None and g[3] is None     # d2 unused: None, as TF
    with pytest.raises(RuntimeError, match="non-persistent GradientTape"):
        tape.gradient(loss, d1.trainable_weights)


def test_gradient_tape_and_trace_state_is_per_thread():
    """A tape recording in one thread is not seen by another: there, a Variable resolves to its
    array and no trace is active (the thread state's unset values are class attributes)."""
    import threading
    from attnlstm.engine import autodiff, tape as tape_mod
    d = layers.Dense(2)
    x = np.ones((1, 3), "float32")
    d(x)
    seen = {}

    def other():
        seen["tape"] = tape_mod.active_tape()
        seen["trace"] = autodiff.in_trace()
        seen["kernel"] = type(d.kernel._current())

    with attnlstm.GradientTape() as tape:
        assert tape_mod.active_tape() is tape
        th = threading.Thread(target=other)
        th.start()
        th.join()
        loss = attnlstm.ops.sum(d(x))
    assert seen == {"tape": None, "trace": False, "kernel": np.ndarray}
    assert tape_mod.active_tape() is None
    assert tape.gradient(loss, d.trainable_weights)[0] is not None


def test_a_subclassed_vae_with_its_own_train_step_trains():
    K = attnlstm
    rng = np.random.default_rng(0)
    data = (np.sin(np.linspace(0, 6, 16))[None, :] * rng.uniform(0.5, 1.5, (128, 1))).astype("float32")
    latent_dim = 2

    class VAE(K.Model):
        def __init__(self):
            super().__init__()
            self.enc = K.layers.Dense(16, activation="relu")
            self.z_mean = K.layers.Dense(latent_dim)
            self.z_log_var = K.layers.Dense(latent_dim)
            self.sampling = K.layers.Sampling(seed=1)
            self.dec1 = K.layers.Dense(16, activation="relu")
            self.dec2 = K.layers.Dense(16)
            self.total_loss_tracker = K.metrics.Mean(name="total_loss")
            self.kl_loss_tracker = K.metrics.Mean(name="kl_loss")

        def call(self, x):
            h = self.enc(x)
            z = self.sampling([self.z_mean(h), self.z_log_var(h)])
            return self.dec2(self.dec1(z))

        @property
        def metrics(self):
            return [self.total_loss_tracker, self.kl_loss_tracker]

        def train_step(self, data):
            x = data[0]
            ops = K.ops
            with K.GradientTape() as tape:
                h = self.enc(x)
                z_mean, z_log_var = self.z_mean(h), self.z_log_var(h)
                z = self.sampling([z_mean, z_log_var])
                reconstruction = self.dec2(self.dec1(z))
                reconstruction_loss = ops.mean(ops.sum(ops.square(x - reconstruction), axis=1))
                kl_loss = -0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
                kl_loss = ops.mean(ops.sum(kl_loss, axis=1))
                total_loss = reconstruction_loss + kl_loss
            grads = tape.gradient(total_loss, self.trainable_weights)
            self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
            self.total_loss_tracker.update_state(total_loss)
            self.kl_loss_tracker.update_state(kl_loss)
            return {"loss": self.total_loss_tracker.result(),
                    "kl_loss": self.kl_loss_tracker.result()}

    vae = VAE()
    vae(data[:2])
    vae.compile(optimizer=K.optimizers.Adam(1e-2))
    hist = vae.fit(data, epochs=15, batch_size=32, verbose=0).history
    assert set(hist) >= {"loss", "kl_loss"}
    assert hist["loss"][-1] < 0.5 * hist["loss"][0]


def _reachable_variables(obj, seen=None):
    """Every Variable reachable from `obj`'s attributes (layers, lists, dicts, tuples)."""
    seen = set() if seen is None else seen
    out = []
    if id(obj) in seen:
        return out
    seen.add(id(obj))
    if isinstance(obj, attnlstm.Variable):
        return [obj]
    if isinstance(obj, (list, tuple)):
        items = obj
    elif isinstance(obj, dict):
        items = obj.values()
    elif isinstance(obj, attnlstm.Layer):
        items = [v for k, v in vars(obj).items() if k not in ("_inbound_nodes", "_nodes")]
    else:
        return out
    for v in items:
        out.extend(_reachable_variables(v, seen))
    return out


def test_no_weight_of_a_model_is_left_out_of_trainable_weights():
    """Every trainable Variable a model's layers hold (built-in, custom, nested in lists or
    sub-models) is trained: none may be missing from ``model.trainable_weights``."""
    K = attnlstm
    from test_keras_example_ports import _transformer_classes
    TransformerBlock, TokenAndPositionEmbedding = _transformer_classes(K)

    class Head(K.layers.Layer):
        def __init__(self):
            super().__init__()
            self.blocks = [K.layers.Dense(4), K.layers.Dense(4)]
            self.by_name = {"out": K.layers.Dense(2)}

        def build(self, input_shape):
            self.scale = self.add_weight(shape=(), initializer="ones", name="scale")

        def call(self, x):
            for b in self.blocks:
                x = b(x)
            return self.by_name["out"](x) * self.scale

    inp = K.Input((6,), dtype="int32")
    h = TokenAndPositionEmbedding(6, 20, 8)(inp)
    h = TransformerBlock(8, 2, 8)(h)
    h = K.layers.Bidirectional(K.layers.GRU(3, return_sequences=True))(h)
    h = K.layers.Conv1D(4, 2)(h)
    h = K.layers.BatchNormalization()(h)
    out = Head()(K.layers.GlobalAveragePooling1D()(h))
    model = K.Model(inp, out)
    trainable = {id(w) for w in model.trainable_weights}
    missing = [w.path for layer in model.layers for w in _reachable_variables(layer)
               if w.trainable and id(w) not in trainable]
    assert not missing, f"trainable Variables left out of trainable_weights: {missing}"
    assert len(trainable) > 20


def test_custom_train_step_with_compute_loss_and_compute_metrics():
    K = attnlstm

    class Reg(K.Model):
        def __init__(self):
            super().__init__()
            self.d = K.layers.Dense(1)

        def call(self, x):
            return self.d(x)

        def train_step(self, data):
            x, y = data
            with K.GradientTape() as tape:
                y_pred = self(x, training=True)
                loss = self.compute_loss(y=y, y_pred=y_pred)
            grads = tape.gradient(loss, self.trainable_weights)
            self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
            return {"loss": loss, **self.compute_metrics(x, y, y_pred)}

    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5]], "float32")
    custom, plain = Reg(), K.Sequential([K.Input((3,)), K.layers.Dense(1)])
    custom(x[:1])
    plain.set_weights(custom.get_weights())
    for m in (custom, plain):
        m.compile(optimizer=K.optimizers.SGD(0.1), loss="mse", metrics=["mae"])
    hc = custom.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0).history
    hp = plain.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0).history
    np.testing.assert_allclose(custom.get_weights()[0], plain.get_weights()[0], rtol=1e-6)
    np.testing.assert_allclose(hc["mae"], hp["mae"], rtol=1e-6)   # running means, as Keras
    assert hc["loss"][-1] < hc["loss"][0]
