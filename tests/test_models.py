"""Whole models against Keras 3.15.1: functional graphs with several inputs and outputs, Sequential
built both ways, predict in batches, summary() parameter counts, get_config."""
import re
import warnings

import numpy as np
import pytest

from conftest import assert_close, padded_mask

from attnlstm import Input, Model, Sequential, ShapeError, layers

T, D, H = 100, 4, 6

# Keras warns that Flatten drops the mask; attnlstm drops it silently (same result).
pytestmark = pytest.mark.filterwarnings("ignore:Layer 'flatten.*does not support masking")


def _small_weights(rng, weights, scale=0.5):
    out = []
    for w in weights:
        fan = w.shape[0] if w.ndim >= 2 else 1
        out.append((rng.uniform(-scale, scale, w.shape) / np.sqrt(fan)).astype(w.dtype))
    return out


def _seq2seq(L, Input_, ModelCls):
    """Encoder-decoder with masks, two inputs, two outputs, merges and a shared layer."""
    enc_in = Input_((T, D), name="enc_in")
    dec_in = Input_((None,), dtype="int32", name="dec_in")
    h = L.Masking(0.0)(enc_in)
    enc_seq, st_h, st_c = L.LSTM(H, return_sequences=True, return_state=True)(h)
    e = L.Embedding(9, D, mask_zero=True)(dec_in)
    if L is layers:
        # attnlstm applies the inputs' Keras mask even with initial_state (documented).
        dec_seq = L.LSTM(H, return_sequences=True)(e, initial_state=[st_h, st_c])
    else:
        # Keras drops it then (keras-semantics.md section 1): pass it explicitly.
        import keras
        dec_mask = L.Lambda(lambda t: keras.ops.not_equal(t, 0))(dec_in)
        dec_seq = L.LSTM(H, return_sequences=True)(e, initial_state=[st_h, st_c], mask=dec_mask)
    shared = L.Dense(H, activation="tanh")
    pooled = L.GlobalAveragePooling1D()(shared(enc_seq))
    scores = L.Dot(axes=(2, 2))([dec_seq, enc_seq])
    attn = L.Softmax(axis=-1)(scores)
    ctx = L.Dot(axes=(2, 1))([attn, enc_seq])
    both = L.Concatenate()([ctx, shared(dec_seq)])
    y_seq = L.TimeDistributed(L.Dense(3, activation="softmax"))(both)
    summary = L.Dense(2)(L.Add()([pooled, L.Multiply()([st_h, st_c])]))
    return ModelCls([enc_in, dec_in], [y_seq, summary])


def _data(rng, n):
    m = padded_mask(n, T, "right", rng)
    x = np.where(m[..., None], rng.standard_normal((n, T, D)), 0).astype("float32")
    idx = rng.integers(1, 9, size=(n, 12))
    idx[::2, 8:] = 0
    return x, idx


def test_functional_multi_input_output_matches_keras(keras, rng):
    km = _seq2seq(keras.layers, keras.Input, keras.Model)
    km.set_weights(_small_weights(rng, km.get_weights()))
    om = _seq2seq(layers, Input, Model)
    assert len(om.inputs) == 2 and len(om.outputs) == 2
    om.set_weights(km.get_weights())
    x, idx = _data(rng, 7)
    ours = om.predict([x, idx], batch_size=3)
    theirs = km.predict([x, idx], batch_size=3, verbose=0)
    assert_close(ours, theirs)
    # Batch size does not change the results; calling the model eagerly gives the same.
    assert_close(om.predict([x, idx], batch_size=7), ours, rtol=1e-6, atol=1e-7)
    assert_close(om([x, idx]), ours, rtol=1e-6, atol=1e-7)
    assert om.count_params() == km.count_params()


def test_functional_dict_inputs_and_nested_model(keras, rng):
    a_in, b_in = Input((T, D), name="a"), Input((D,), name="b")
    inner_in = Input((T, D))
    inner = Model(inner_in, layers.LSTM(H)(inner_in), name="inner")
    y = layers.Dense(1)(layers.Concatenate()([inner(a_in), b_in]))
    om = Model({"a": a_in, "b": b_in}, y)

    ka, kb = keras.Input((T, D), name="a"), keras.Input((D,), name="b")
    kinner_in = keras.Input((T, D))
    kinner = keras.Model(kinner_in, keras.layers.LSTM(H)(kinner_in))
    km = keras.Model({"a": ka, "b": kb}, keras.layers.Dense(1)(
        keras.layers.Concatenate()([kinner(ka), kb])))
    km.set_weights(_small_weights(rng, km.get_weights()))
    om.set_weights(km.get_weights())
    x = {"a": rng.standard_normal((5, T, D)).astype("float32"),
         "b": rng.standard_normal((5, D)).astype("float32")}
    assert_close(om.predict(x, batch_size=2), km.predict(x, batch_size=2, verbose=0))


def _stack(L):
    return [L.Masking(0.0), L.LSTM(H, return_sequences=True),
            L.LSTM(H, return_sequences=True, go_backwards=True),
            L.TimeDistributed(L.Dense(5)), L.Flatten(), L.Dense(3, activation="softmax")]


@pytest.mark.parametrize("how", ["input_first", "input_shape", "add", "build"])
def test_sequential_matches_keras(keras, rng, how):
    def make(L, InputFn, Seq):
        stack = _stack(L)
        if how == "input_first":
            return Seq([InputFn((T, D))] + stack)
        if how == "input_shape":
            stack[0] = L.Masking(0.0, input_shape=(T, D))
            return Seq(stack)
        if how == "add":
            model = Seq()
            model.add(InputFn((T, D)))
            for layer in stack:
                model.add(layer)
            return model
        model = Seq(stack)
        model.build((None, T, D))
        return model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras warns about input_shape on a layer
        km = make(keras.layers, keras.Input, keras.Sequential)
    om = make(layers, Input, Sequential)
    km.set_weights(_small_weights(rng, km.get_weights()))
    om.set_weights(km.get_weights())
    m = padded_mask(6, T, "gaps", rng)
    x = np.where(m[..., None], rng.standard_normal((6, T, D)), 0).astype("float32")
    assert_close(om.predict(x, batch_size=4), km.predict(x, batch_size=4, verbose=0))
    assert len(om.layers) == len(km.layers)
    assert [type(a).__name__ for a in om.layers] == [type(b).__name__ for b in km.layers]


def test_sequential_built_on_first_predict(keras, rng):
    om = Sequential([layers.LSTM(H), layers.Dense(2)])
    x = rng.standard_normal((3, T, D)).astype("float32")
    y = om.predict(x)
    assert y.shape == (3, 2)
    km = keras.Sequential([keras.layers.LSTM(H), keras.layers.Dense(2)])
    km.build((None, T, D))
    km.set_weights(om.get_weights())
    assert_close(om.predict(x), km.predict(x, verbose=0))


def _total_params_line(lines):
    text = "\n".join(lines)
    m = re.search(r"Total params: ([\d,]+)", text)
    assert m, text
    return int(m.group(1).replace(",", ""))


@pytest.mark.parametrize("kind", ["functional", "sequential"])
def test_summary_reports_keras_param_count(keras, rng, kind):
    if kind == "functional":
        km, om = _seq2seq(keras.layers, keras.Input, keras.Model), _seq2seq(layers, Input, Model)
    else:
        km = keras.Sequential([keras.Input((T, D))] + _stack(keras.layers))
        om = Sequential([Input((T, D))] + _stack(layers))
    k_lines, o_lines = [], []
    km.summary(print_fn=lambda s, line_break=None: k_lines.append(s))
    om.summary(print_fn=o_lines.append)
    assert _total_params_line(o_lines) == _total_params_line(k_lines) == om.count_params()
    text = "\n".join(o_lines)
    for layer in om.layers:
        assert layer.name in text
    assert f'Model: "{om.name}"' in text


def test_summary_prints_by_default(capsys):
    x = Input((T, D))
    Model(x, layers.LSTM(H)(x)).summary()
    out = capsys.readouterr().out
    lstm_params = 4 * H * (D + H + 1)
    assert f"Total params: {lstm_params:,}" in out


def test_model_weights_follow_keras_order(keras):
    om = _seq2seq(layers, Input, Model)
    km = _seq2seq(keras.layers, keras.Input, keras.Model)
    assert [w.shape for w in om.get_weights()] == [tuple(w.shape) for w in km.get_weights()]


def test_model_get_config_lists_layers():
    om = Sequential([Input((T, D)), layers.LSTM(H, name="enc"), layers.Dense(2, name="head")])
    cfg = om.get_config()
    names = [entry["config"]["name"] for entry in cfg["layers"]]
    assert "enc" in names and "head" in names
    classes = [entry["class_name"] for entry in cfg["layers"]]
    assert "LSTM" in classes and "Dense" in classes
    lstm_cfg = cfg["layers"][classes.index("LSTM")]["config"]
    # The model config is Keras 3's JSON form (DTypePolicy and initializer dicts); a layer made
    # from it serializes to the same entry.
    from attnlstm.saving.serialization import layer_config
    assert layer_config(layers.LSTM.from_config(lstm_cfg)) == lstm_cfg


def test_model_get_layer_and_errors():
    x = Input((T, D), name="inp")
    y = layers.Dense(2, name="out")(layers.LSTM(H, name="enc")(x))
    model = Model(x, y)
    assert model.get_layer("enc").units == H
    assert model.get_layer(index=-1).name == "out"
    with pytest.raises(ValueError, match=r"No such layer: nope. Existing layers are: \['inp', 'enc', 'out'\]"):
        model.get_layer("nope")


def test_graph_disconnected_is_reported():
    a, b = Input((T, D), name="a"), Input((T, D), name="b")
    y = layers.Add()([a, b])
    with pytest.raises(ValueError, match=r"Graph disconnected.*'b'.*Model\(inputs=\[\.\.\.\]\)"):
        Model(a, y)


def test_predict_batches_cover_all_samples(rng):
    x = Input((T, D))
    model = Model(x, layers.LSTM(H, return_sequences=True)(x))
    data = rng.standard_normal((11, T, D)).astype("float32")
    full = model.predict(data, batch_size=11)
    # the same bits whatever the batch size, on every kernel path (README "Kernel paths")
    for bs in (1, 3, 4, 8, 32):
        np.testing.assert_array_equal(model.predict(data, batch_size=bs), full)
    with pytest.raises(ValueError, match="batch_size"):
        model.predict(data, batch_size=0)


def test_model_called_symbolically_as_layer(rng):
    inner_in = Input((T, D))
    inner = Model(inner_in, layers.LSTM(H)(inner_in))
    outer_in = Input((T, D))
    outer = Model(outer_in, layers.Dense(1)(inner(outer_in)))
    assert outer.outputs[0].shape == (None, 1)
    with pytest.raises(ShapeError):
        inner(Input((T, D + 1)))
    data = rng.standard_normal((2, T, D)).astype("float32")
    np.testing.assert_allclose(outer.predict(data),
                               outer.layers[-1](inner.predict(data)), rtol=1e-6)
