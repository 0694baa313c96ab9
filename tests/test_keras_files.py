"""Whole-model ``.keras`` files both ways with real Keras 3 (TF backend).

- Keras writes -> attnlstm reads in a subprocess where tensorflow and keras cannot be imported
  (an import hook refuses them, and ``sys.modules`` is checked), and predicts the same
  (float32, rtol 1e-4); a compiled model's optimizer state comes along, so one more training
  step gives Keras' weights.
- attnlstm writes -> ``keras.saving.load_model`` reads and predicts the same.
- A registered custom layer opens in both under the same registered name.
"""
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import attnlstm
from attnlstm import Input, Model, Sequential, layers

ROOT = Path(__file__).resolve().parent.parent
T, D = 6, 3


def arch_attention(L, inp, M, S):
    i = inp((T, D))
    h = L.LSTM(8, return_sequences=True)(i)
    q = L.Dense(8)(h)
    a = L.Attention(use_scale=True)([q, h])
    a = L.Attention(score_mode="concat")([a, h])
    a = L.AdditiveAttention()([a, h])
    m = L.MultiHeadAttention(num_heads=2, key_dim=4)(a, h)
    t = L.TimeDistributed(L.Dense(5, activation="tanh"))(m)
    return M(i, L.Dense(3, activation="softmax")(L.GlobalAveragePooling1D()(t)))


def arch_embedding(L, inp, M, S):
    i = inp((T,), dtype="int32")
    e = L.Embedding(20, 6, mask_zero=True)(i)
    h = L.LSTM(5, return_sequences=True)(e)
    h = L.Dropout(0.3)(h)
    p = L.GlobalAveragePooling1D()(h)
    last = L.LSTM(4, go_backwards=True)(h)
    return M(i, L.Dense(2)(L.Concatenate()([p, last])))


def arch_merges(L, inp, M, S):
    i = inp((T, D))
    x = L.Masking(mask_value=0.0)(i)
    h = L.LSTM(4, return_sequences=True)(x)
    d = L.Dense(4)(h)
    s = L.Add()([d, h])
    s = L.Subtract()([s, h])
    s = L.Multiply()([s, d])
    s = L.Average()([s, h])
    s = L.Maximum()([s, d])
    s = L.Minimum()([s, h])
    dot = L.Dot(axes=(2, 2))([s, h])
    per = L.Permute((2, 1))(dot)
    flat = L.Flatten()(per)
    r = L.Reshape((T, T))(flat)
    act = L.Softmax(axis=-1)(L.Activation("relu")(r))
    pool = L.GlobalMaxPooling1D()(act)
    rep = L.RepeatVector(2)(L.Dense(3)(pool))
    return M(i, [L.GlobalAveragePooling1D()(s), L.Flatten()(rep)])


def arch_sequential(L, inp, M, S):
    return S([inp((T, D)), L.LSTM(6, return_sequences=True),
              L.TimeDistributed(L.Dense(3)), L.LSTM(4), L.Dense(2, activation="relu"),
              L.RepeatVector(3), L.Flatten(), L.Activation("sigmoid")])


def arch_nested(L, inp, M, S):
    inner = S([inp((T, 4)), L.Dense(3), L.Dense(4)])
    a, b = inp((T, D), name="a"), inp((T, D), name="b")
    h = L.LSTM(4, return_sequences=True)(a)
    g = L.LSTM(4, return_sequences=True)(b)
    h = inner(L.Add()([h, g]))
    sub_in = inp((T, 4))
    sub = M(sub_in, L.Dense(2)(sub_in))
    return M([a, b], [L.Dense(1)(L.GlobalAveragePooling1D()(sub(h))), h])


def arch_shared(L, inp, M, S):
    # One LSTM and one Dense called on two inputs (node indices > 0), LSTM states as outputs.
    a, b = inp((T, D), name="left"), inp((T, D), name="right")
    lstm = L.LSTM(4, return_sequences=True, return_state=True)
    dense = L.Dense(3)
    sa, ha, ca = lstm(a)
    sb, hb, cb = lstm(b, initial_state=[ha, ca])
    return M([a, b], [dense(sa), dense(sb), L.Subtract()([hb, cb])])


ARCHS = {"attention": arch_attention, "shared": arch_shared, "embedding": arch_embedding, "merges": arch_merges,
         "sequential": arch_sequential, "nested": arch_nested}
if hasattr(layers, "Conv1D"):  # convolution and normalization layers, where attnlstm has them
    def arch_conv(L, inp, M, S):
        i = inp((12, D))
        h = L.Conv1D(4, 3, padding="same", activation="relu")(i)
        h = L.BatchNormalization()(h)
        h = L.MaxPooling1D(2)(h)
        h = L.LayerNormalization()(h)
        h = L.UpSampling1D(2)(L.SpatialDropout1D(0.2)(h))
        h = L.Cropping1D(1)(L.ZeroPadding1D(1)(h))
        h = L.LeakyReLU()(L.AveragePooling1D(2)(h))
        return M(i, L.Dense(2)(L.GlobalAveragePooling1D()(h)))

    ARCHS["conv"] = arch_conv


def make_inputs(name, seed=0):
    rng = np.random.default_rng(seed)
    if name == "embedding":
        x = rng.integers(1, 20, size=(5, T)).astype("int32")
        x[0, 3:] = 0
        x[2, 1:] = 0
        return x
    if name == "conv":
        return rng.normal(size=(5, 12, D)).astype("float32")
    x = rng.normal(size=(5, T, D)).astype("float32")
    if name == "merges":
        x[1, 4:] = 0.0  # masked steps
    if name in ("nested", "shared"):
        return [x, rng.normal(size=(5, T, D)).astype("float32")]
    return x


def keras_build(keras, name):
    L = keras.layers
    return ARCHS[name](L, keras.Input, keras.Model, keras.Sequential)


def ours_build(name):
    return ARCHS[name](layers, Input, Model, Sequential)


def randomize(weights, seed):
    rng = np.random.default_rng(seed)
    return [rng.uniform(-0.5, 0.5, np.shape(w)).astype(np.asarray(w).dtype) for w in weights]


def as_list(y):
    return [np.asarray(v) for v in y] if isinstance(y, (list, tuple)) else [np.asarray(y)]


# The child process: attnlstm only; tensorflow and keras cannot even be imported.
CHILD = r"""
import importlib.abc, json, sys
class _Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "tf_keras"):
            raise ImportError(f"{name} must not be imported when loading .keras files")
        return None
sys.meta_path.insert(0, _Refuse())
import numpy as np
import attnlstm
cases = json.load(open(sys.argv[1]))
out = {}
for c in cases:
    model = attnlstm.saving.load_model(c["file"])
    data = np.load(c["inputs"])
    x = [data[k] for k in sorted(data.files)]
    y = model.predict(x if len(x) > 1 else x[0])
    ys = y if isinstance(y, list) else [y]
    for k, v in enumerate(ys):
        out[f"{c['name']}/pred/{k}"] = np.asarray(v)
    if c.get("train"):
        t = np.load(c["train"])
        out[f"{c['name']}/iterations"] = np.asarray(model.optimizer.iterations)
        model.train_on_batch(t["x"], t["y"])
        for k, w in enumerate(model.get_weights()):
            out[f"{c['name']}/trained/{k}"] = w
bad = [m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras")]
assert not bad, bad
np.savez(sys.argv[2], **out)
print("OK", len(cases))
"""


def run_child(tmp_path, cases):
    spec = tmp_path / "cases.json"
    spec.write_text(json.dumps(cases))
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    out = tmp_path / "child_out.npz"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, str(script), str(spec), str(out)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return dict(np.load(out))


def test_keras_written_files_load_without_tensorflow(keras, tmp_path):
    cases, expected = [], {}
    for k, name in enumerate(ARCHS):
        km = keras_build(keras, name)
        km.set_weights(randomize(km.get_weights(), seed=k))
        x = make_inputs(name, seed=k)
        path = tmp_path / f"{name}.keras"
        km.save(path)
        xs = x if isinstance(x, list) else [x]
        np.savez(tmp_path / f"{name}_x.npz", **{f"x{i}": v for i, v in enumerate(xs)})
        expected[name] = as_list(km.predict(x, verbose=0))
        cases.append({"name": name, "file": str(path), "inputs": str(tmp_path / f"{name}_x.npz")})
    # A compiled model after two Adam steps: the optimizer state travels.
    rng = np.random.default_rng(5)
    km = keras.Sequential([keras.Input((T, D)), keras.layers.LSTM(4),
                           keras.layers.Dense(2)])
    km.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse", metrics=["mae"])
    xt = rng.normal(size=(8, T, D)).astype("float32")
    yt = rng.normal(size=(8, 2)).astype("float32")
    km.train_on_batch(xt, yt)
    km.train_on_batch(xt, yt)
    km.save(tmp_path / "compiled.keras")
    np.savez(tmp_path / "compiled_x.npz", x0=xt)
    np.savez(tmp_path / "compiled_t.npz", x=xt, y=yt)
    expected["compiled"] = as_list(km.predict(xt, verbose=0))
    km.train_on_batch(xt, yt)
    trained = [np.asarray(w) for w in km.get_weights()]
    cases.append({"name": "compiled", "file": str(tmp_path / "compiled.keras"),
                  "inputs": str(tmp_path / "compiled_x.npz"),
                  "train": str(tmp_path / "compiled_t.npz")})

    got = run_child(tmp_path, cases)
    for name, ys in expected.items():
        for k, y in enumerate(ys):
            np.testing.assert_allclose(got[f"{name}/pred/{k}"], y, rtol=1e-4, atol=1e-5,
                                       err_msg=f"{name} output {k}")
    assert int(got["compiled/iterations"]) == 2
    for k, w in enumerate(trained):
        np.testing.assert_allclose(got[f"compiled/trained/{k}"], w, rtol=1e-4, atol=1e-5,
                                   err_msg=f"weight {k} after one more Adam step")


@pytest.mark.parametrize("name", list(ARCHS))
def test_attnlstm_written_files_load_in_keras(keras, tmp_path, name):
    ours = ours_build(name)
    ours.set_weights(randomize(ours.get_weights(), seed=11))
    x = make_inputs(name, seed=3)
    path = tmp_path / f"{name}.keras"
    ours.save(path)
    with zipfile.ZipFile(path) as z:
        assert sorted(z.namelist()) == ["config.json", "metadata.json", "model.weights.h5"]
    km = keras.saving.load_model(path)
    for a, b in zip(as_list(ours.predict(x)), as_list(km.predict(x, verbose=0))):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    # ... and attnlstm reads its own file back exactly.
    again = attnlstm.models.load_model(path)
    for a, b in zip(as_list(ours.predict(x)), as_list(again.predict(x))):
        np.testing.assert_array_equal(a, b)


def test_compiled_attnlstm_file_resumes_in_keras(keras, tmp_path):
    rng = np.random.default_rng(2)
    xt = rng.normal(size=(8, T, D)).astype("float32")
    yt = rng.normal(size=(8, 2)).astype("float32")
    ours = Sequential([Input((T, D)), layers.LSTM(4), layers.Dense(2)])
    ours.compile(optimizer=attnlstm.optimizers.Adam(0.01), loss="mse")
    ours.train_on_batch(xt, yt)
    ours.train_on_batch(xt, yt)
    ours.save(tmp_path / "c.keras")
    km = keras.saving.load_model(tmp_path / "c.keras")
    assert int(km.optimizer.iterations.numpy()) == 2
    km.train_on_batch(xt, yt)
    ours.train_on_batch(xt, yt)
    for a, b in zip(ours.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-4, atol=1e-5)


def test_registered_custom_layer_in_both(keras, tmp_path):
    @attnlstm.saving.register_keras_serializable(package="files_test", name="Scale")
    class Scale(layers.Layer):
        def __init__(self, factor=2.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def call(self, x):
            return x * np.asarray(self.factor, x.dtype)

        def get_config(self):
            return {**super().get_config(), "factor": self.factor}

    i = Input((T, D))
    ours = Model(i, layers.Dense(2)(Scale(3.0)(layers.LSTM(4, return_sequences=True)(i))))
    x = make_inputs("attention")
    path = tmp_path / "custom.keras"
    ours.save(path)
    cfg = json.loads(zipfile.ZipFile(path).read("config.json"))
    entry = [l for l in cfg["config"]["layers"] if l["class_name"] == "Scale"][0]
    assert entry["registered_name"] == "files_test>Scale"
    again = attnlstm.saving.load_model(path)
    assert isinstance(again.layers[2], Scale) and again.layers[2].factor == 3.0
    np.testing.assert_array_equal(again.predict(x), ours.predict(x))

    @keras.saving.register_keras_serializable(package="files_test", name="Scale")
    class KScale(keras.layers.Layer):
        def __init__(self, factor=2.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def call(self, x):
            return x * self.factor

        def get_config(self):
            return {**super().get_config(), "factor": self.factor}

    km = keras.saving.load_model(path)
    np.testing.assert_allclose(km.predict(x, verbose=0), ours.predict(x), rtol=1e-4, atol=1e-5)
    # Without the registration, custom_objects= finds it by registered name or class name.
    from attnlstm.saving import object_registration as reg
    del reg._GLOBAL_CUSTOM_OBJECTS["files_test>Scale"]
    del reg._GLOBAL_CUSTOM_NAMES[Scale]
    with pytest.raises(ValueError, match=r"(?s)unknown class 'Scale' .*registered_name "
                                         r"'files_test>Scale'.*Hint: register"):
        attnlstm.saving.load_model(path)
    m = attnlstm.saving.load_model(path, custom_objects={"files_test>Scale": Scale})
    np.testing.assert_array_equal(m.predict(x), ours.predict(x))


def test_attnlstm_only_layers_round_trip(tmp_path):
    i = Input((T, D))
    h = layers.LSTM(4, return_sequences=True)(i)
    r = layers.RelativeMultiHeadAttention(num_heads=2, key_dim=2, max_relative_position=3)(h)
    b, _ = layers.BahdanauAttention(5)(r, h)
    lu, _ = layers.LuongAttention(score="general")(r, h)
    p = layers.AttentionPooling(3)(layers.Concatenate()([b, lu]))
    ours = Model(i, layers.Dense(1)(p))
    path = tmp_path / "own.keras"
    ours.save(path)
    cfg = json.loads(zipfile.ZipFile(path).read("config.json"))
    names = {l["class_name"]: l["registered_name"] for l in cfg["config"]["layers"]}
    assert names["BahdanauAttention"] == "attnlstm>BahdanauAttention"
    assert names["RelativeMultiHeadAttention"] == "attnlstm>RelativeMultiHeadAttention"
    assert names["LSTM"] is None
    x = make_inputs("attention")
    np.testing.assert_array_equal(attnlstm.saving.load_model(path).predict(x), ours.predict(x))


def test_json_round_trip_and_config_keys(keras):
    ours = ours_build("attention")
    js = ours.to_json()
    cfg = json.loads(js)
    assert cfg["class_name"] == "Functional" and cfg["registered_name"] == "Functional"
    lstm = [l for l in cfg["config"]["layers"] if l["class_name"] == "LSTM"][0]
    km = keras_build(keras, "attention")
    klstm = [l for l in json.loads(km.to_json())["config"]["layers"]
             if l["class_name"] == "LSTM"][0]
    # Our LSTM config has Keras' keys (Keras' extra keys are regularizers/constraints: None).
    missing = set(klstm["config"]) - set(lstm["config"])
    assert all(klstm["config"][k] is None for k in missing), missing
    assert lstm["config"]["kernel_initializer"]["class_name"] == "GlorotUniform"
    clone = attnlstm.models.model_from_json(js)
    assert [type(l).__name__ for l in clone.layers] == [type(l).__name__ for l in ours.layers]
    # Keras builds the same architecture from our JSON.
    kclone = keras.models.model_from_json(js)
    assert kclone.count_params() == ours.count_params()


def test_readme_keras_shim_loads_attnlstm_only_layer(keras, tmp_path):
    """The README's Keras shim for AttentionPooling opens an attnlstm file in Keras."""
    text = (ROOT / "README.md").read_text()
    block = text.split("<!-- keras-shim -->\n```python\n", 1)[1].split("```", 1)[0]
    namespace = {}
    exec(compile(block, "README.md (keras-shim)", "exec"), namespace)
    i = Input((T, D))
    h = layers.LSTM(4, return_sequences=True)(layers.Masking(0.0)(i))
    ours = Model(i, layers.Dense(2)(layers.AttentionPooling(3)(h)))
    ours.set_weights(randomize(ours.get_weights(), seed=4))
    x = make_inputs("merges")  # has masked steps
    ours.save(tmp_path / "pool.keras")
    km = keras.saving.load_model(tmp_path / "pool.keras")
    assert type(km.layers[-2]).__name__ == "AttentionPooling"
    np.testing.assert_allclose(km.predict(x, verbose=0), ours.predict(x), rtol=1e-4, atol=1e-5)


def test_compile_config_objects_both_ways(keras, tmp_path):
    """Schedules, loss and metric objects in compile_config travel both ways."""
    rng = np.random.default_rng(8)
    xt = rng.normal(size=(8, T, D)).astype("float32")
    yt = rng.normal(size=(8, 2)).astype("float32")
    ours = Sequential([Input((T, D)), layers.LSTM(4), layers.Dense(2)])
    sched = attnlstm.optimizers.schedules.ExponentialDecay(0.05, decay_steps=2, decay_rate=0.5)
    ours.compile(optimizer=attnlstm.optimizers.RMSprop(sched, momentum=0.3),
                 loss=attnlstm.losses.Huber(delta=0.5),
                 metrics=[attnlstm.metrics.MeanAbsoluteError(), "mse"])
    ours.train_on_batch(xt, yt)
    ours.save(tmp_path / "c.keras")
    km = keras.saving.load_model(tmp_path / "c.keras")
    assert type(km.optimizer).__name__ == "RMSprop"
    assert type(km.optimizer._learning_rate).__name__ == "ExponentialDecay"
    assert int(km.optimizer.iterations.numpy()) == 1
    back = attnlstm.saving.load_model(tmp_path / "c.keras")
    assert back.optimizer.get_config() == ours.optimizer.get_config()
    assert back._loss_fns[0].get_config() == ours._loss_fns[0].get_config()
    for model in (ours, back):
        model.train_on_batch(xt, yt)
    km.train_on_batch(xt, yt)
    for a, b, c in zip(ours.get_weights(), back.get_weights(), km.get_weights()):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, np.asarray(c), rtol=1e-4, atol=1e-5)
    # Keras' own file of the same compiled model opens in attnlstm with the same objects.
    km.save(tmp_path / "k.keras")
    fromk = attnlstm.saving.load_model(tmp_path / "k.keras")
    assert isinstance(fromk.optimizer._learning_rate,
                      attnlstm.optimizers.schedules.ExponentialDecay)
    # (Keras 3.15.1's Huber.get_config has no `delta`, so Keras' file loses it; ours keeps it.)
    assert type(fromk._loss_fns[0]) is attnlstm.losses.Huber
    assert fromk.optimizer.iterations == 2


def test_keras2_style_json():
    """tf.keras 2 JSON: no `module`, `batch_input_shape`, nodes as [[layer, node, tensor, {}]]."""
    js = json.dumps({"class_name": "Model", "config": {
        "name": "legacy", "layers": [
            {"class_name": "InputLayer", "name": "inp", "inbound_nodes": [],
             "config": {"batch_input_shape": [None, T, D], "dtype": "float32", "name": "inp",
                        "sparse": False, "ragged": False}},
            {"class_name": "LSTM", "name": "enc", "inbound_nodes": [[["inp", 0, 0, {}]]],
             "config": {"name": "enc", "units": 4, "return_sequences": True,
                        "dtype": "float32", "trainable": True, "implementation": 2,
                        "kernel_initializer": {"class_name": "GlorotUniform",
                                               "config": {"seed": None}}}},
            {"class_name": "Dense", "name": "out", "inbound_nodes": [[["enc", 0, 0, {}]]],
             "config": {"name": "out", "units": 2, "activation": "linear",
                        "dtype": "float32", "trainable": True}}],
        "input_layers": [["inp", 0, 0]], "output_layers": [["out", 0, 0]]}})
    m = attnlstm.models.model_from_json(js)
    assert [type(l).__name__ for l in m.layers] == ["InputLayer", "LSTM", "Dense"]
    assert m.predict(make_inputs("attention")).shape == (5, T, 2)


SHARED_LAYERS = {
    "LSTM": lambda L: L.LSTM(4), "Dense": lambda L: L.Dense(3),
    "Attention": lambda L: L.Attention(), "AdditiveAttention": lambda L: L.AdditiveAttention(),
    "MultiHeadAttention": lambda L: L.MultiHeadAttention(2, 3),
    "Embedding": lambda L: L.Embedding(5, 3), "Masking": lambda L: L.Masking(),
    "TimeDistributed": lambda L: L.TimeDistributed(L.Dense(2)),
    "RepeatVector": lambda L: L.RepeatVector(2), "Add": lambda L: L.Add(),
    "Subtract": lambda L: L.Subtract(), "Multiply": lambda L: L.Multiply(),
    "Average": lambda L: L.Average(), "Maximum": lambda L: L.Maximum(),
    "Minimum": lambda L: L.Minimum(), "Concatenate": lambda L: L.Concatenate(),
    "Dot": lambda L: L.Dot((1, 1)),
    "GlobalAveragePooling1D": lambda L: L.GlobalAveragePooling1D(),
    "GlobalMaxPooling1D": lambda L: L.GlobalMaxPooling1D(), "Dropout": lambda L: L.Dropout(0.1),
    "Flatten": lambda L: L.Flatten(), "Reshape": lambda L: L.Reshape((2,)),
    "Permute": lambda L: L.Permute((2, 1)), "Activation": lambda L: L.Activation("relu"),
    "Softmax": lambda L: L.Softmax(),
}


@pytest.mark.parametrize("name", list(SHARED_LAYERS))
def test_layer_config_keys_match_keras(keras, name):
    """Our serialized config has Keras' keys and values; a Keras key we lack holds its neutral
    default (None/False) or a value meaning what attnlstm computes (data_format channels_last)."""
    from attnlstm.saving.serialization import _EQUIVALENT_DEFAULTS, _neutral
    theirs = keras.saving.serialize_keras_object(SHARED_LAYERS[name](keras.layers))
    ours = attnlstm.saving.serialize_keras_object(SHARED_LAYERS[name](layers))
    assert (ours["module"], ours["class_name"], ours["registered_name"]) == \
        (theirs["module"], theirs["class_name"], theirs["registered_name"])
    kc, oc = theirs["config"], ours["config"]
    assert set(oc) <= set(kc), set(oc) - set(kc)
    for k, v in kc.items():
        if k not in oc:
            assert _neutral(v) or v in _EQUIVALENT_DEFAULTS.get(k, ()), (k, v)
        elif k not in ("name", "layer") and not k.endswith("_initializer"):
            assert json.loads(json.dumps(oc[k])) == json.loads(json.dumps(v)), (k, oc[k], v)
    # Keras' config (its form, its keys) builds our layer.
    rebuilt = attnlstm.saving.deserialize_keras_object(theirs)
    assert type(rebuilt).__name__ == name
