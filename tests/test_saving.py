"""Weight files: Keras 3 ``.weights.h5`` both ways (Keras saves -> attnlstm loads, attnlstm saves
-> Keras loads) on the same architecture, outputs compared with Keras' predict; legacy ``.h5``
reading; mismatch messages."""
import h5py
import numpy as np
import pytest

import attnlstm
from attnlstm import Input, Model, Sequential, layers, saving

RT = dict(rtol=1e-5, atol=1e-6)


def _keras_datasets(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: out.__setitem__(n, o.shape) if isinstance(o, h5py.Dataset)
                     else None)
    return out


def build_pair(keras, kind):
    """The same small architecture in Keras 3 and attnlstm; returns (keras_model, ours, x)."""
    rng = np.random.default_rng(0)
    T, D = 5, 3
    x = rng.normal(size=(4, T, D)).astype("float32")
    if kind == "functional":
        def make(L, inp, M):
            i = inp((T, D))
            h = L.LSTM(4, return_sequences=True)(i)
            a = L.MultiHeadAttention(num_heads=2, key_dim=3)(h, h)
            t = L.TimeDistributed(L.Dense(2))(a)
            s = L.Attention(use_scale=True)([t, t])
            y = L.Dense(3)(L.Dense(2)(s))
            return M(i, y)
        return make(keras.layers, keras.Input, keras.Model), \
            make(layers, Input, Model), x
    if kind == "sequential":
        def make(L, inp, S):
            return S([inp((T, D)), L.LSTM(4, return_sequences=True),
                      L.TimeDistributed(L.Dense(3)), L.LSTM(2), L.Dense(2)])
        return make(keras.layers, keras.Input, keras.Sequential), \
            make(layers, Input, Sequential), x
    if kind == "nested":
        def make(L, inp, M, S):
            inner = S([inp((T, 4)), L.Dense(3), L.Dense(4)])
            i = inp((T, D))
            h = L.LSTM(4, return_sequences=True)(i)
            h = inner(h)
            sub_in = inp((T, 4))
            sub = M(sub_in, L.Dense(2)(sub_in))
            y = L.Dense(1)(sub(h))
            return M(i, y)
        return make(keras.layers, keras.Input, keras.Model, keras.Sequential), \
            make(layers, Input, Model, Sequential), x
    if kind == "embedding":
        x = np.random.default_rng(1).integers(1, 10, size=(4, T)).astype("int32")
        x[0, 3:] = 0

        def make(L, inp, M):
            i = inp((T,), dtype="int32")
            e = L.Embedding(10, 3, mask_zero=True)(i)
            h = L.LSTM(4)(e)
            return M(i, L.Dense(2, activation="tanh")(h))
        return make(keras.layers, keras.Input, keras.Model), make(layers, Input, Model), x
    if kind == "branches":
        # Two Dense layers at different depths: Keras numbers them by depth, not by call order.
        def make(L, inp, M):
            i = inp((T, D))
            a = L.Dense(3, name="a")(i)
            b = L.Dense(3, name="b")(L.Dense(3, name="c")(i))
            y = L.Concatenate()([a, b])
            return M(i, L.Dense(1, name="d")(y))
        return make(keras.layers, keras.Input, keras.Model), make(layers, Input, Model), x
    raise ValueError(kind)


KINDS = ["functional", "sequential", "nested", "embedding", "branches"]


def _randomize(keras_model, seed=3):
    rng = np.random.default_rng(seed)
    keras_model.set_weights([rng.uniform(-0.5, 0.5, w.shape).astype(w.dtype)
                             for w in keras_model.get_weights()])


@pytest.mark.parametrize("kind", KINDS)
def test_keras_file_loads_into_attnlstm(keras, tmp_path, kind):
    km, ours, x = build_pair(keras, kind)
    _randomize(km)
    path = str(tmp_path / "k.weights.h5")
    km.save_weights(path)
    # Our layout names exactly the datasets Keras wrote, with the same shapes.
    assert {p: tuple(v.shape) for p, v in saving.weight_paths(ours).items()} == \
        _keras_datasets(path)
    saving.load_weights(ours, path)
    np.testing.assert_allclose(ours.predict(x), km.predict(x, verbose=0), **RT)


@pytest.mark.parametrize("kind", KINDS)
def test_attnlstm_file_loads_into_keras(keras, tmp_path, kind):
    km, ours, x = build_pair(keras, kind)
    rng = np.random.default_rng(7)
    ours.set_weights([rng.uniform(-0.5, 0.5, w.shape).astype(w.dtype)
                      for w in ours.get_weights()])
    path = str(tmp_path / "ours.weights.h5")
    saving.save_weights(ours, path)
    km.load_weights(path)
    np.testing.assert_allclose(ours.predict(x), km.predict(x, verbose=0), **RT)


def test_round_trip_own_layers(tmp_path):
    """attnlstm layers that Keras lacks: layers/<snake>/vars/i in layer.weights order."""
    T, D = 6, 4

    def make():
        i = Input((T, D))
        h = layers.LSTM(4, return_sequences=True)(i)
        r = layers.RelativeMultiHeadAttention(num_heads=2, key_dim=2, max_relative_position=3)(h)
        b, _ = layers.BahdanauAttention(5)(r, h)
        lu, _ = layers.LuongAttention(score="general")(r, h)
        p = layers.AttentionPooling(3)(layers.Concatenate()([b, lu]))
        p = p[0] if isinstance(p, list) else p
        return Model(i, layers.Dense(1)(p))

    a, b = make(), make()
    x = np.random.default_rng(0).normal(size=(3, T, D)).astype("float32")
    path = str(tmp_path / "own.weights.h5")
    saving.save_weights(a, path)
    paths = saving.weight_paths(a)
    assert "layers/relative_multi_head_attention/vars/0" in paths
    assert "layers/bahdanau_attention/vars/5" in paths
    assert "layers/luong_attention/vars/0" in paths
    assert "layers/attention_pooling/vars/2" in paths
    assert not np.allclose(a.predict(x), b.predict(x))  # different initial weights
    saving.load_weights(b, path)
    np.testing.assert_array_equal(a.predict(x), b.predict(x))


def test_mismatch_names_layer_and_shapes(tmp_path):
    def make(units):
        i = Input((5, 3))
        return Model(i, layers.Dense(2)(layers.LSTM(units, name="enc")(i)))

    path = str(tmp_path / "m.weights.h5")
    saving.save_weights(make(4), path)
    target = make(6)
    before = target.get_weights()
    with pytest.raises(ValueError, match=r"LSTM 'enc': cannot load weights: its weights have "
                                         r"shapes \[\(3, 24\), \(6, 24\), \(24,\)\], but "
                                         r"'layers/lstm/cell/vars' .* holds \[\(3, 16\), "
                                         r"\(4, 16\), \(16,\)\].*\nHint: the file was saved"):
        saving.load_weights(target, path)
    # Nothing changed on failure.
    for w0, w1 in zip(before, target.get_weights()):
        np.testing.assert_array_equal(w0, w1)
    # skip_mismatch warns and loads the layers that match (the Dense after it does not either:
    # its kernel is (6, 2) vs (4, 2)).
    with pytest.warns(UserWarning, match="skip_mismatch"):
        saving.load_weights(target, path, skip_mismatch=True)


def test_count_mismatch_and_bad_names(tmp_path):
    i = Input((5, 3))
    m1 = Model(i, layers.LSTM(4, use_bias=False)(i))
    i2 = Input((5, 3))
    m2 = Model(i2, layers.LSTM(4)(i2))
    path = str(tmp_path / "m.weights.h5")
    saving.save_weights(m1, path)
    with pytest.raises(ValueError, match=r"it has 3 weights .* holds 2 "):
        saving.load_weights(m2, path)
    with pytest.raises(ValueError, match=r"must end in `\.weights\.h5`"):
        saving.save_weights(m1, str(tmp_path / "m.h5"))
    with pytest.raises(FileNotFoundError):
        saving.load_weights(m1, str(tmp_path / "missing.weights.h5"))
    with pytest.raises(ValueError, match="already exists"):
        saving.save_weights(m1, path, overwrite=False)


def _write_legacy(path, keras_model, cell_suffix="lstm_cell"):
    """A tf.keras 2 style .h5 (model_weights/<layer>/<layer>/... with weight_names attrs)."""
    with h5py.File(path, "w") as f:
        g = f.create_group("model_weights")
        names = []
        for layer in keras_model.layers:
            names.append(layer.name.encode())
            lg = g.create_group(layer.name)
            wnames = []
            for k, w in enumerate(layer.weights):
                base = w.path.split("/")[-1]
                if type(layer).__name__ == "LSTM":
                    wn = f"{layer.name}/{cell_suffix}/{base}:0"
                else:
                    wn = f"{layer.name}/{base}:0"
                lg.create_dataset(wn, data=np.asarray(w))
                wnames.append(wn.encode())
            lg.attrs["weight_names"] = wnames
        g.attrs["layer_names"] = names
        g.attrs["backend"] = b"tensorflow"
        g.attrs["keras_version"] = b"2.15.0"


def test_legacy_h5_by_layer_order(keras, tmp_path):
    km, ours, x = build_pair(keras, "sequential")
    _randomize(km, seed=11)
    path = str(tmp_path / "legacy.h5")
    _write_legacy(path, km)
    saving.load_weights(ours, path)
    np.testing.assert_allclose(ours.predict(x), km.predict(x, verbose=0), **RT)
    # Keras' own legacy reader agrees with the file we wrote.
    km2, _, _ = build_pair(keras, "sequential")
    km2.load_weights(path)
    np.testing.assert_allclose(km2.predict(x, verbose=0), km.predict(x, verbose=0), **RT)


def test_legacy_h5_layer_count_mismatch(keras, tmp_path):
    km, _, _ = build_pair(keras, "sequential")
    path = str(tmp_path / "legacy.h5")
    _write_legacy(path, km)
    other = Sequential([Input((5, 3)), layers.LSTM(2), layers.Dense(2)])
    with pytest.raises(ValueError, match=r"has 4 layers with weights .* but the model has 2"):
        saving.load_weights(other, path)


def test_unbuilt_model_is_a_clear_error(tmp_path):
    seq = Sequential([layers.Dense(2)])
    with pytest.raises(ValueError, match="not built yet"):
        saving.save_weights(seq, str(tmp_path / "s.weights.h5"))
