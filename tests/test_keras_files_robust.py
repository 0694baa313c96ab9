"""Model and weight files as untrusted input, and pickling.

Every damaged or inconsistent file gives one clear error naming the file and the path inside
it, and never a half-loaded model; 400 random single-byte flips of a ``.weights.h5`` either load
the same weights or raise that error (0 silent loads); a pickled / deep-copied compiled model
trains on with the same bits.
"""
import copy
import io
import json
import pickle
import zipfile

import h5py
import numpy as np
import pytest

import attnlstm
from attnlstm import Input, Model, layers
from attnlstm.saving import FileFormatError

T, D = 5, 3


def small_model(dropout=0.0):
    i = Input((T, D))
    h = layers.LSTM(4, return_sequences=True)(i)
    if dropout:
        h = layers.Dropout(dropout)(h)
    a = layers.Attention(use_scale=True)([h, h])
    return Model(i, layers.Dense(2)(layers.GlobalAveragePooling1D()(a)))


def data(seed=0, n=8):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, T, D)).astype("float32"), rng.normal(size=(n, 2)).astype("float32")


# ---------------------------------------------------------------------------------------------
# Pickling


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_pickled_compiled_model_trains_on_bit_for_bit(how):
    x, y = data()
    m = small_model(dropout=0.3)
    m.compile(optimizer=attnlstm.optimizers.Adam(0.01), loss="mse", metrics=["mae"])
    m.train_on_batch(x, y)
    m.train_on_batch(x, y)
    other = pickle.loads(pickle.dumps(m)) if how == "pickle" else copy.deepcopy(m)
    assert other is not m and other.optimizer.iterations == 2
    for a, b in zip(m.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)
    for _ in range(3):  # dropout is on: its generator state travelled too
        la = m.train_on_batch(x, y)
        lb = other.train_on_batch(x, y)
        assert la == lb
    for a, b in zip(m.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)
    # The copy is independent.
    other.layers[1].kernel.assign(np.zeros_like(other.layers[1].kernel.value))
    assert np.any(m.layers[1].kernel.value != 0)


def test_rmsprop_and_sgd_state_round_trip(tmp_path):
    x, y = data(1)
    for opt in (attnlstm.optimizers.RMSprop(0.01, momentum=0.5, centered=True),
                attnlstm.optimizers.SGD(0.05, momentum=0.9),
                attnlstm.optimizers.Adam(0.01, amsgrad=True)):
        m = small_model()
        m.compile(optimizer=opt, loss="mse")
        m.train_on_batch(x, y)
        m.save(tmp_path / "m.keras")
        r = attnlstm.saving.load_model(tmp_path / "m.keras")
        assert type(r.optimizer) is type(opt) and r.optimizer.get_config() == opt.get_config()
        m.train_on_batch(x, y)
        r.train_on_batch(x, y)
        for a, b in zip(m.get_weights(), r.get_weights()):
            np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------------------
# Damaged .keras archives


def saved(tmp_path, model=None):
    model = model or small_model()
    path = tmp_path / "m.keras"
    model.save(path)
    return model, path


def rewrite(path, member, fn):
    """Rewrite one member of a .keras archive with fn(bytes) -> bytes (or None to drop it)."""
    with zipfile.ZipFile(path) as z:
        items = [(i.filename, z.read(i.filename)) for i in z.infolist()]
    with zipfile.ZipFile(path, "w") as z:
        for name, blob in items:
            if name == member:
                blob = fn(blob)
            if blob is not None:
                z.writestr(name, blob)


def edit_h5(blob, fn):
    buf = io.BytesIO(blob)
    with h5py.File(buf, "a") as f:
        fn(f)
    return buf.getvalue()


def test_truncated_archive(tmp_path):
    _, path = saved(tmp_path)
    blob = path.read_bytes()
    path.write_bytes(blob[:len(blob) // 2])
    with pytest.raises(FileFormatError, match=r"m\.keras' is not a readable \.keras \(zip\) "
                                              r"archive .*corrupted, truncated"):
        attnlstm.saving.load_model(path)


def test_corrupted_member_fails_its_crc(tmp_path):
    _, path = saved(tmp_path)
    blob = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("model.weights.h5")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    blob[start + info.compress_size // 2] ^= 0x5A
    path.write_bytes(bytes(blob))
    with pytest.raises(FileFormatError, match=r"\(model\.weights\.h5\) cannot be read "
                                              r"\(BadZipFile: Bad CRC-32"):
        attnlstm.saving.load_model(path)


def test_unknown_class_names_class_and_path(tmp_path):
    _, path = saved(tmp_path)
    rewrite(path, "config.json", lambda b: b.replace(b'"class_name": "Attention"',
                                                     b'"class_name": "ConvLSTM1D"'))
    with pytest.raises(FileFormatError,
                       match=r"\(config\.json, at config\.config\.layers\[2\]\): unknown class "
                             r"'ConvLSTM1D' \(module 'keras\.layers'.*\nHint: attnlstm does not "
                             r"implement this Keras class"):
        attnlstm.saving.load_model(path)


def test_unsupported_argument_value_is_an_error(tmp_path):
    _, path = saved(tmp_path)

    def edit(b):
        cfg = json.loads(b)
        cfg["config"]["layers"][-1]["config"]["quantization_config"] = {"mode": "int8"}
        return json.dumps(cfg).encode()
    rewrite(path, "config.json", edit)
    with pytest.raises(FileFormatError, match=r"layers\[4\]\.config\.quantization_config\): "
                                              r"Dense argument `quantization_config`"):
        attnlstm.saving.load_model(path)


def test_bad_json(tmp_path):
    _, path = saved(tmp_path)
    rewrite(path, "config.json", lambda b: b[:-5])
    with pytest.raises(FileFormatError, match=r"\(config\.json\) is not valid JSON"):
        attnlstm.saving.load_model(path)


def test_lambda_refused_in_safe_mode(tmp_path):
    i = Input((T, D))
    m = Model(i, layers.Dense(2)(layers.Lambda(lambda t: t * 2.0)(i)))
    _, path = saved(tmp_path, m)
    with pytest.raises(FileFormatError, match=r"(?s)layers\[1\]\.config\.function\): the file "
                                              r"contains Python code .*safe_mode=False"):
        attnlstm.saving.load_model(path)
    x, _ = data()
    r = attnlstm.saving.load_model(path, safe_mode=False)
    np.testing.assert_array_equal(r.predict(x), m.predict(x))


def test_wrong_shape_and_missing_group(tmp_path):
    _, path = saved(tmp_path)

    def reshape(f):
        del f["layers/dense/vars/0"]
        f["layers/dense/vars"].create_dataset("0", data=np.zeros((5, 2), np.float32))
    rewrite(path, "model.weights.h5", lambda b: edit_h5(b, reshape))
    with pytest.raises(ValueError, match=r"Dense 'dense.*': cannot load weights: its weights "
                                         r"have shapes \[\(4, 2\), \(2,\)\], but "
                                         r"'layers/dense/vars' in '.*m\.keras' holds "
                                         r"\[\(5, 2\), \(2,\)\]"):
        attnlstm.saving.load_model(path)
    _, path = saved(tmp_path)
    rewrite(path, "model.weights.h5", lambda b: edit_h5(b, lambda f: f.__delitem__(
        "layers/lstm/cell")))
    with pytest.raises(FileFormatError, match=r"LSTM 'lstm.*': cannot load weights: "
                                              r"'.*m\.keras' \(model\.weights\.h5\) has no "
                                              r"group 'layers/lstm/cell/vars'"):
        attnlstm.saving.load_model(path)


def test_bad_optimizer_state(tmp_path):
    m = small_model()
    m.compile("adam", "mse")
    m.train_on_batch(*data())
    _, path = saved(tmp_path, m)
    rewrite(path, "model.weights.h5", lambda b: edit_h5(
        b, lambda f: f["optimizer/vars"].__delitem__("5")))
    with pytest.raises(FileFormatError, match=r"'optimizer/vars' holds 13 arrays, but Adam over this "
                                              r"model's 6 trainable variables needs 2 \(unbuilt\) or 14"):
        attnlstm.saving.load_model(path)
    attnlstm.saving.load_model(path, compile=False)  # the model itself is fine


# ---------------------------------------------------------------------------------------------
# .weights.h5: atomic loads, typed errors, checksums


def test_string_dataset_leaves_model_unchanged(tmp_path):
    src, dst = small_model(), small_model()
    path = str(tmp_path / "w.weights.h5")
    src.save_weights(path)
    with h5py.File(path, "a") as f:
        del f["layers/dense/vars/1"]
        f["layers/dense/vars"].create_dataset("1", data=np.array([b"ab", b"cd"]))
    before = dst.get_weights()
    with pytest.raises(FileFormatError, match=r"w\.weights\.h5' \(layers/dense/vars/1\) holds "
                                              r"\|S2 values, not numbers"):
        dst.load_weights(path)
    for a, b in zip(before, dst.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_load_weights_from_a_keras_archive(tmp_path):
    src, dst = small_model(), small_model()
    src.save(tmp_path / "m.keras")
    dst.load_weights(str(tmp_path / "m.keras"))
    for a, b in zip(src.get_weights(), dst.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_not_hdf5(tmp_path):
    path = tmp_path / "x.weights.h5"
    path.write_bytes(b"not an hdf5 file at all" * 10)
    with pytest.raises(FileFormatError, match=r"x\.weights\.h5' is not a readable HDF5 weights "
                                              r"file"):
        small_model().load_weights(str(path))


def test_weights_h5_has_checksums_keras_reads_it(keras, tmp_path):
    m = small_model()
    path = str(tmp_path / "w.weights.h5")
    m.save_weights(path)
    with h5py.File(path, "r") as f:
        assert f["layers/dense/vars/0"].fletcher32
        assert "attnlstm_crc32" in f["layers/attention/vars/0"].attrs  # a scalar
        assert "attnlstm_crc32" in f["layers/dense/vars/0"].attrs
    k_in = keras.Input((T, D))
    h = keras.layers.LSTM(4, return_sequences=True)(k_in)
    a = keras.layers.Attention(use_scale=True)([h, h])
    km = keras.Model(k_in, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling1D()(a)))
    km.load_weights(path)
    x, _ = data()
    np.testing.assert_allclose(km.predict(x, verbose=0), m.predict(x), rtol=1e-4, atol=1e-5)


def test_400_single_byte_flips_never_load_silently(tmp_path):
    """Each flip loads the same weights or raises our ValueError; none changes a weight."""
    src = small_model()
    src.set_weights([np.random.default_rng(3).uniform(-1, 1, w.shape).astype(w.dtype)
                     for w in src.get_weights()])
    path = tmp_path / "w.weights.h5"
    src.save_weights(str(path))
    blob = path.read_bytes()
    want = src.get_weights()
    dst = small_model()
    rng = np.random.default_rng(2026)
    flipped = tmp_path / "f.weights.h5"
    outcomes = {"same": 0, "error": 0, "silent": 0}
    for _ in range(400):
        b = bytearray(blob)
        pos = int(rng.integers(len(b)))
        b[pos] ^= int(rng.integers(1, 256))
        flipped.write_bytes(bytes(b))
        for w in dst.weights:
            w.assign(np.zeros(w.shape, w.dtype))
        try:
            dst.load_weights(str(flipped))
        except ValueError as exc:  # FileFormatError or ShapeError, both name the file
            assert "f.weights.h5" in str(exc), str(exc)
            outcomes["error"] += 1
            assert all(not np.any(w.value) for w in dst.weights)  # nothing assigned
            continue
        same = all(np.array_equal(a, b) for a, b in zip(want, dst.get_weights()))
        outcomes["same" if same else "silent"] += 1
    assert outcomes["silent"] == 0, outcomes
    assert outcomes["error"] > 100, outcomes


def test_lstmvae_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    xs = [rng.normal(size=(t, 3)).astype("float32") for t in (5, 8, 6, 7)]
    vae = attnlstm.LSTMVAE(latent_dim=2, encoder_units=4, seed=0)
    vae.fit(xs, epochs=1, verbose=0)
    vae.save(tmp_path / "vae.keras")
    cfg = json.loads(zipfile.ZipFile(tmp_path / "vae.keras").read("config.json"))
    assert cfg["registered_name"] == "attnlstm>LSTMVAE"
    again = attnlstm.saving.load_model(tmp_path / "vae.keras")
    assert isinstance(again, attnlstm.LSTMVAE) and again.features == 3
    for a, b in zip(vae.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(vae.encode(xs), again.encode(xs)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(vae.reconstruct(xs), again.reconstruct(xs)):
        np.testing.assert_array_equal(a, b)


def test_subclassed_model_round_trip(tmp_path):
    @attnlstm.saving.register_keras_serializable(package="files_test")
    class Classifier(Model):
        def __init__(self, units=4, classes=2, **kwargs):
            i = Input((T, D))
            y = layers.Dense(classes)(layers.LSTM(units)(i))
            super().__init__(i, y, **kwargs)
            self.units, self.classes = units, classes

        def get_config(self):
            return {"units": self.units, "classes": self.classes, "name": self.name}

        @classmethod
        def from_config(cls, config):
            return cls(**config)

    m = Classifier(units=5, classes=3, name="clf")
    m.save(tmp_path / "clf.keras")
    r = attnlstm.saving.load_model(tmp_path / "clf.keras")
    assert type(r) is Classifier and r.units == 5 and r.name == "clf"
    x, _ = data()
    np.testing.assert_array_equal(r.predict(x), m.predict(x))


def test_regularizer_a_layer_would_ignore_is_an_error(tmp_path):
    """A Keras config argument the attnlstm layer accepts but does not keep is refused."""
    _, path = saved(tmp_path)

    def edit(b):
        cfg = json.loads(b)
        lstm = cfg["config"]["layers"][1]["config"]
        lstm["kernel_regularizer"] = {"module": "keras.regularizers", "class_name": "L2",
                                      "config": {"l2": 0.01}, "registered_name": None}
        return json.dumps(cfg).encode()
    rewrite(path, "config.json", edit)
    try:
        attnlstm.saving.load_model(path)
    except FileFormatError as exc:  # no attnlstm.regularizers, or the LSTM ignores it
        assert "layers[1].config.kernel_regularizer" in str(exc), str(exc)
    else:  # the LSTM keeps its regularizer: it must really be there
        m = attnlstm.saving.load_model(path)
        assert m.layers[1].kernel_regularizer is not None


class Doubler(layers.Layer):
    """An unregistered custom layer (module-level, as pickle needs)."""

    def call(self, x):
        return x * np.asarray(2.0, x.dtype)


def plain_mse(y_true, y_pred):
    return np.mean(np.square(y_pred - y_true), axis=-1)


def test_pickle_finds_unregistered_custom_objects_by_module():
    """Pickles are trusted (safe_mode=False): unregistered classes and functions are imported by
    module and name, as pickle itself does; a .keras file needs them registered."""
    i = Input((T, D))
    m = Model(i, layers.Dense(2)(Doubler()(layers.LSTM(3)(i))))
    m.compile(optimizer="sgd", loss="mse", metrics=[plain_mse])
    x, y = data()
    r = pickle.loads(pickle.dumps(m))
    assert type(r.layers[2]) is Doubler
    np.testing.assert_array_equal(r.predict(x), m.predict(x))
    assert r.evaluate(x, y, verbose=0) == m.evaluate(x, y, verbose=0)
