"""Conv1D, Conv1DTranspose, MaxPooling1D, AveragePooling1D, UpSampling1D, ZeroPadding1D,
Cropping1D, SpatialDropout1D (issues #16 item 3 and #17).

- Keras 3.15.1 parity with Keras' weights (float32, rtol 1e-4 / atol 1e-5) for every padding,
  stride, dilation, group and data format;
- float64 against naive-loop NumPy twins (1e-10), written from the formulas in Keras' docs;
- backward by central differences (float64) and against tf.GradientTape (float32);
- the shape errors' messages; training in fit; .weights.h5 both ways.
"""
import numpy as np
import pytest

from conftest import assert_close, to_np
from grad_check import check_layer, run

import attnlstm
from attnlstm import Input, Model, Sequential, layers

RNG = np.random.default_rng(16)


def randn(*shape, dtype="float64"):
    return RNG.standard_normal(shape).astype(dtype)


def keras_tape(kl, x, R, channels_first=False):
    """Keras output and gradients of sum(out * R) w.r.t. x and the trainable weights.

    TensorFlow's CPU convolutions and pooling reject channels_first, so a channels_first case
    runs the Keras layer channels_last on swapped axes (the same arithmetic)."""
    import tensorflow as tf
    sw = (lambda a: np.swapaxes(a, 1, 2)) if channels_first else (lambda a: a)
    xt = tf.constant(np.ascontiguousarray(sw(x)))
    with tf.GradientTape() as tape:
        tape.watch(xt)
        ko = kl(xt)
        loss = tf.reduce_sum(ko * np.ascontiguousarray(sw(R)))
    grads = tape.gradient(loss, [xt] + kl.trainable_weights)
    return sw(ko.numpy()), sw(grads[0].numpy()), [g.numpy() for g in grads[1:]]


def keras_kwargs(kw):
    return dict(kw, data_format="channels_last") if "data_format" in kw else kw


# ---------------------------------------------------------------------------------------------
# NumPy twins (naive loops; the layers use im2col + BLAS)


def _same_pads(T, span, s):
    out = (T - 1) // s + 1
    total = max((out - 1) * s + span - T, 0)
    return total // 2, total - total // 2


def twin_conv1d(x, kernel, bias, stride, padding, dilation, groups):
    B, T, D = x.shape
    k, Dg, F = kernel.shape
    span = (k - 1) * dilation + 1
    pads = {"valid": (0, 0), "causal": (span - 1, 0)}.get(padding) or _same_pads(T, span, stride)
    xp = np.pad(x, ((0, 0), pads, (0, 0)))
    n_out = (xp.shape[1] - span) // stride + 1
    Fg = F // groups
    out = np.zeros((B, n_out, F))
    for t in range(n_out):
        for j in range(k):
            step = xp[:, t * stride + j * dilation]
            for g in range(groups):
                fs, cs = slice(g * Fg, (g + 1) * Fg), slice(g * Dg, (g + 1) * Dg)
                out[:, t, fs] += step[:, cs] @ kernel[j, :, fs]
    return out + (0 if bias is None else bias)


def twin_conv1d_transpose(y, kernel, out_len, stride, padding, dilation):
    B, T, Din = y.shape
    k, F, _ = kernel.shape
    span = (k - 1) * dilation + 1
    pads = (0, 0) if padding == "valid" else _same_pads(out_len, span, stride)
    full = np.zeros((B, out_len + sum(pads), F))
    for t in range(T):
        for j in range(k):
            full[:, t * stride + j * dilation] += y[:, t] @ kernel[j].T
    return full[:, pads[0]:pads[0] + out_len]


def twin_pool(x, p, s, padding, mode):
    B, T, C = x.shape
    pads = (0, 0) if padding == "valid" else _same_pads(T, p, s)
    n_out = (T + sum(pads) - p) // s + 1
    out = np.zeros((B, n_out, C))
    for t in range(n_out):
        lo, hi = max(t * s - pads[0], 0), min(t * s - pads[0] + p, T)
        win = x[:, lo:hi]
        out[:, t] = win.max(axis=1) if mode == "max" else win.mean(axis=1)
    return out


CONV_CASES = [
    dict(filters=4, kernel_size=3),
    dict(filters=4, kernel_size=3, padding="same"),
    dict(filters=4, kernel_size=4, padding="same", strides=3),
    dict(filters=5, kernel_size=2, padding="causal"),
    dict(filters=3, kernel_size=3, padding="causal", dilation_rate=3),
    dict(filters=3, kernel_size=3, padding="same", dilation_rate=2),
    dict(filters=6, kernel_size=3, strides=2, groups=3),
    dict(filters=4, kernel_size=5, padding="same", groups=2, activation="relu"),
    dict(filters=2, kernel_size=1, use_bias=False, activation="tanh"),
    dict(filters=4, kernel_size=3, strides=2, data_format="channels_first"),
]


def _ids(cases):
    return [",".join(f"{k}={v}" for k, v in c.items()) for c in cases]


@pytest.mark.parametrize("kw", CONV_CASES, ids=_ids(CONV_CASES))
def test_conv1d_float64_matches_twin(kw):
    x = randn(3, 11, 6)
    layer = layers.Conv1D(dtype="float64", **kw)
    xin = np.swapaxes(x, 1, 2) if kw.get("data_format") == "channels_first" else x
    out = layer(xin)
    if kw.get("data_format") == "channels_first":
        out = np.swapaxes(out, 1, 2)
    bias = layer.bias.value if layer.use_bias else None
    want = twin_conv1d(x, layer.kernel.value, bias, layer.strides[0], layer.padding,
                       layer.dilation_rate[0], layer.groups)
    act = attnlstm.activations.get(kw.get("activation"))
    np.testing.assert_allclose(out, act(want), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kw", CONV_CASES, ids=_ids(CONV_CASES))
def test_conv1d_matches_keras_forward_and_gradient_tape(keras, kw):
    rng = np.random.default_rng(3)
    cf = kw.get("data_format") == "channels_first"
    shape = (3, 6, 13) if cf else (3, 13, 6)
    x = rng.standard_normal(shape).astype("float32")
    kl = keras.layers.Conv1D(**keras_kwargs(kw))
    kl.build((3, 13, 6))
    kl.set_weights([rng.standard_normal(w.shape).astype("float32") * 0.5
                    for w in kl.get_weights()])
    ol = layers.Conv1D(**kw)
    ol.build(shape)
    assert [w.shape for w in ol.weights] == [tuple(w.shape) for w in kl.weights]
    assert [w.name for w in ol.weights] == [w.name for w in kl.weights]
    ol.set_weights(kl.get_weights())
    out, ctx = run(ol, [x])
    R = rng.standard_normal(out.shape).astype("float32")
    ko, kdx, kdw = keras_tape(kl, x, R, cf)
    assert_close(out, ko, what="forward")
    g = ol.backward(ctx, R)
    assert_close(g.inputs, kdx, rtol=1e-4, atol=1e-4, what="d inputs")
    for w, k in zip(ol.trainable_weights, kdw):
        assert_close(g.weights[w], k, rtol=1e-4, atol=1e-4, what=w.name)


@pytest.mark.parametrize("kw", CONV_CASES, ids=_ids(CONV_CASES))
def test_conv1d_backward_finite_differences(kw):
    shape = (2, 6, 9) if kw.get("data_format") == "channels_first" else (2, 9, 6)
    check_layer(layers.Conv1D(dtype="float64", **kw), [randn(*shape)])


TRANSPOSE_CASES = [
    dict(filters=3, kernel_size=3),
    dict(filters=3, kernel_size=3, strides=2),
    dict(filters=3, kernel_size=2, strides=3),           # default output_padding 1
    dict(filters=4, kernel_size=3, strides=2, padding="same"),
    dict(filters=4, kernel_size=4, strides=2, padding="same"),
    dict(filters=2, kernel_size=3, strides=2, padding="valid", output_padding=1),
    dict(filters=2, kernel_size=3, strides=2, padding="same", output_padding=1),
    dict(filters=3, kernel_size=3, strides=2, use_bias=False, data_format="channels_first"),
]
# TensorFlow's CPU conv_transpose rejects dilation_rate > 1: twin and finite differences only.
TRANSPOSE_DILATED = [
    dict(filters=3, kernel_size=3, dilation_rate=2, padding="same", activation="sigmoid"),
    dict(filters=2, kernel_size=2, dilation_rate=3, padding="valid"),
]


@pytest.mark.parametrize("kw", TRANSPOSE_CASES, ids=_ids(TRANSPOSE_CASES))
def test_conv1d_transpose_matches_keras_and_twin(keras, kw):
    rng = np.random.default_rng(5)
    cf = kw.get("data_format") == "channels_first"
    shape = (2, 4, 7) if cf else (2, 7, 4)
    x = rng.standard_normal(shape).astype("float32")
    kl = keras.layers.Conv1DTranspose(**keras_kwargs(kw))
    kl.build((2, 7, 4))
    kl.set_weights([rng.standard_normal(w.shape).astype("float32") * 0.5
                    for w in kl.get_weights()])
    ol = layers.Conv1DTranspose(**kw)
    ol.build(shape)
    ol.set_weights(kl.get_weights())
    out, ctx = run(ol, [x])
    assert out.shape == tuple(keras.layers.Conv1DTranspose(**kw).compute_output_shape(shape))
    R = rng.standard_normal(out.shape).astype("float32")
    ko, kdx, kdw = keras_tape(kl, x, R, cf)
    assert_close(out, ko, what="forward")
    g = ol.backward(ctx, R)
    assert_close(g.inputs, kdx, rtol=1e-4, atol=1e-4, what="d inputs")
    for w, k in zip(ol.trainable_weights, kdw):
        assert_close(g.weights[w], k, rtol=1e-4, atol=1e-4, what=w.name)


@pytest.mark.parametrize("kw", TRANSPOSE_CASES + TRANSPOSE_DILATED,
                         ids=_ids(TRANSPOSE_CASES + TRANSPOSE_DILATED))
def test_conv1d_transpose_float64_matches_twin(kw):
    rng = np.random.default_rng(6)
    cf = kw.get("data_format") == "channels_first"
    shape = (2, 4, 7) if cf else (2, 7, 4)
    x = rng.standard_normal(shape).astype("float32")
    o64 = layers.Conv1DTranspose(dtype="float64", **kw)
    o64.build(shape)
    o64.set_weights([rng.standard_normal(w.shape) for w in o64.weights])
    x64 = x.astype("float64")
    got = o64(x64)
    xl = np.swapaxes(x64, 1, 2) if cf else x64
    out_len = got.shape[2] if cf else got.shape[1]
    want = twin_conv1d_transpose(xl, o64.kernel.value, out_len, o64.strides[0], o64.padding,
                                 o64.dilation_rate[0])
    if o64.use_bias:
        want = want + o64.bias.value
    want = attnlstm.activations.get(kw.get("activation"))(want)
    np.testing.assert_allclose(np.swapaxes(got, 1, 2) if cf else got, want, rtol=1e-10,
                               atol=1e-12)


@pytest.mark.parametrize("kw", TRANSPOSE_CASES + TRANSPOSE_DILATED,
                         ids=_ids(TRANSPOSE_CASES + TRANSPOSE_DILATED))
def test_conv1d_transpose_finite_differences(kw):
    shape = (2, 3, 5) if kw.get("data_format") == "channels_first" else (2, 5, 3)
    check_layer(layers.Conv1DTranspose(dtype="float64", **kw), [randn(*shape)])


# ---------------------------------------------------------------------------------------------
# Pooling

POOL_CASES = [
    ("MaxPooling1D", dict()),
    ("MaxPooling1D", dict(pool_size=3)),
    ("MaxPooling1D", dict(pool_size=3, strides=1, padding="same")),
    ("MaxPooling1D", dict(pool_size=4, strides=3, padding="same")),
    ("MaxPooling1D", dict(pool_size=2, strides=1, data_format="channels_first")),
    ("AveragePooling1D", dict(pool_size=2)),
    ("AveragePooling1D", dict(pool_size=3, strides=2)),
    ("AveragePooling1D", dict(pool_size=3, strides=1, padding="same")),
    ("AveragePooling1D", dict(pool_size=4, strides=3, padding="same")),
    ("AveragePooling1D", dict(pool_size=3, strides=2, padding="same",
                              data_format="channels_first")),
]
POOL_IDS = [f"{n}:{','.join(f'{k}={v}' for k, v in kw.items())}" for n, kw in POOL_CASES]


@pytest.mark.parametrize("name,kw", POOL_CASES, ids=POOL_IDS)
def test_pooling_matches_keras_tape_and_twin(keras, name, kw):
    rng = np.random.default_rng(9)
    cf = kw.get("data_format") == "channels_first"
    shape = (3, 4, 11) if cf else (3, 11, 4)
    x = rng.standard_normal(shape).astype("float32")
    kl = getattr(keras.layers, name)(**keras_kwargs(kw))
    ol = getattr(layers, name)(**kw)
    out, ctx = run(ol, [x])
    R = rng.standard_normal(out.shape).astype("float32")
    ko, kdx, _ = keras_tape(kl, x, R, cf)
    assert_close(out, ko, what="forward")
    assert_close(ol.backward(ctx, R).inputs, kdx, what="d inputs")
    x64 = x.astype("float64")
    o64 = getattr(layers, name)(dtype="float64", **kw)
    got = o64(x64)
    xl = np.swapaxes(x64, 1, 2) if cf else x64
    want = twin_pool(xl, o64.pool_size[0], o64.strides[0], o64.padding,
                     "max" if name == "MaxPooling1D" else "avg")
    np.testing.assert_allclose(np.swapaxes(got, 1, 2) if cf else got, want, rtol=1e-10,
                               atol=1e-12)


@pytest.mark.parametrize("name,kw", POOL_CASES, ids=POOL_IDS)
def test_pooling_finite_differences(name, kw):
    shape = (2, 3, 10) if kw.get("data_format") == "channels_first" else (2, 10, 3)
    check_layer(getattr(layers, name)(dtype="float64", **kw), [randn(*shape)])


def test_pooling_defaults_and_aliases_match_keras(keras):
    assert layers.MaxPool1D is layers.MaxPooling1D and layers.AvgPool1D is layers.AveragePooling1D
    for name, kw in (("MaxPooling1D", {}), ("AveragePooling1D", {"pool_size": 3})):
        ours = getattr(layers, name)(**kw).get_config()
        theirs = getattr(keras.layers, name)(**kw).get_config()
        for key in ("pool_size", "strides", "padding", "data_format"):
            assert tuple(np.atleast_1d(ours[key])) == tuple(np.atleast_1d(theirs[key])), key
    with pytest.raises(TypeError):
        layers.AveragePooling1D()     # pool_size is required, as in Keras


# ---------------------------------------------------------------------------------------------
# UpSampling1D, ZeroPadding1D, Cropping1D, SpatialDropout1D

RESHAPE_CASES = [
    ("UpSampling1D", dict()),
    ("UpSampling1D", dict(size=3)),
    ("ZeroPadding1D", dict()),
    ("ZeroPadding1D", dict(padding=(0, 3))),
    ("ZeroPadding1D", dict(padding=(2, 1), data_format="channels_first")),
    ("Cropping1D", dict()),
    ("Cropping1D", dict(cropping=(2, 0))),
    ("Cropping1D", dict(cropping=3)),
]
RESHAPE_IDS = [f"{n}:{kw}" for n, kw in RESHAPE_CASES]


@pytest.mark.parametrize("name,kw", RESHAPE_CASES, ids=RESHAPE_IDS)
def test_time_reshaping_matches_keras_and_tape(keras, name, kw):
    import tensorflow as tf
    x = np.random.default_rng(1).standard_normal((2, 8, 3)).astype("float32")
    kl = getattr(keras.layers, name)(**kw)
    ol = getattr(layers, name)(**kw)
    out, ctx = run(ol, [x])
    R = np.random.default_rng(2).standard_normal(out.shape).astype("float32")
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        ko = kl(xt)
        loss = tf.reduce_sum(ko * R)
    assert_close(out, to_np(ko))
    assert_close(ol.backward(ctx, R).inputs, tape.gradient(loss, xt).numpy())
    assert ol.compute_output_shape((None, 8, 3)) == tuple(kl.compute_output_shape((None, 8, 3)))
    cfg = ol.get_config()
    for key, value in kl.get_config().items():
        if key not in ("name", "trainable", "dtype"):
            assert cfg[key] == value, key


@pytest.mark.parametrize("name,kw", RESHAPE_CASES, ids=RESHAPE_IDS)
def test_time_reshaping_finite_differences(name, kw):
    check_layer(getattr(layers, name)(dtype="float64", **kw), [randn(2, 7, 3)])


def test_spatial_dropout_drops_whole_channels():
    layer = layers.SpatialDropout1D(0.5, seed=4)
    x = np.ones((64, 6, 5), "float32")
    y = layer(x, training=True)
    per_channel = y[:, 0, :]
    assert np.all(y == per_channel[:, None, :])             # same for every step
    assert set(np.unique(y)) <= {0.0, 2.0}
    assert 0.35 < np.mean(per_channel == 0) < 0.65
    np.testing.assert_array_equal(layer(x), x)              # identity at inference
    cfg = layers.SpatialDropout1D(0.3, seed=1, name="sd").get_config()
    assert cfg == {"rate": 0.3, "seed": 1, "name": "sd", "dtype": "float32"}
    with pytest.raises(TypeError, match="noise_shape"):
        layers.SpatialDropout1D(0.3, noise_shape=(None, 1, 5))


def test_spatial_dropout_finite_differences_and_mask_passes():
    layer = layers.SpatialDropout1D(0.4, seed=3, dtype="float64")

    def reset():
        layer._rng = np.random.default_rng(3)
    check_layer(layer, [randn(3, 4, 5)], training=True, reset_rng=reset)
    inp = Input((None, 2))
    assert layers.SpatialDropout1D(0.2)(layers.Masking()(inp)).has_mask


# ---------------------------------------------------------------------------------------------
# Masks: dropped with Keras' warning where Keras drops them


@pytest.mark.parametrize("make", [lambda: layers.Conv1D(2, 2), lambda: layers.MaxPooling1D(),
                                  lambda: layers.AveragePooling1D(2),
                                  lambda: layers.UpSampling1D(), lambda: layers.ZeroPadding1D(),
                                  lambda: layers.Cropping1D(),
                                  lambda: layers.Conv1DTranspose(2, 2)])
def test_layers_without_mask_support_drop_the_mask_with_a_warning(keras, make):
    inp = Input((6, 3))
    masked = layers.Masking()(inp)
    with pytest.warns(UserWarning, match="does not support masking"):
        out = make()(masked)
    assert not out.has_mask
    # Keras drops the mask too.
    ki = keras.Input((6, 3))
    layer = make()
    kl = getattr(keras.layers, type(layer).__name__)(**{
        k: v for k, v in layer.get_config().items() if k not in ("name", "trainable", "dtype")})
    with pytest.warns(UserWarning, match="does not support masking"):
        ko = kl(keras.layers.Masking()(ki))
    assert getattr(ko, "_keras_mask", None) is None


def test_no_mask_no_warning():
    import warnings
    inp = Input((6, 3))
    h = layers.LayerNormalization()(layers.BatchNormalization()(inp))
    assert not h.has_mask
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layers.MaxPooling1D()(layers.Conv1D(2, 2)(h))


def test_sequential_with_input_shape():
    model = Sequential([layers.Conv1D(4, 3, activation="relu", input_shape=(10, 2)),
                        layers.MaxPooling1D(2), layers.UpSampling1D(2), layers.ZeroPadding1D(1),
                        layers.Cropping1D((0, 2)), layers.SpatialDropout1D(0.1),
                        layers.Conv1DTranspose(3, 2), layers.Flatten(), layers.Dense(1)])
    assert model.predict(np.zeros((2, 10, 2), "float32"), verbose=0).shape == (2, 1)
    assert model.layers[0].output.shape == (None, 8, 4)


# ---------------------------------------------------------------------------------------------
# Arguments, config, errors


def test_conv1d_weights_and_config_match_keras(keras):
    kw = dict(filters=6, kernel_size=3, strides=1, padding="causal", dilation_rate=2, groups=3,
              activation="relu", use_bias=True)
    kl = keras.layers.Conv1D(**kw)
    kl.build((None, None, 9))
    ol = layers.Conv1D(**kw)
    ol.build((None, None, 9))
    assert [w.shape for w in ol.weights] == [tuple(w.shape) for w in kl.weights] == \
        [(3, 3, 6), (6,)]
    kc, oc = kl.get_config(), ol.get_config()
    for key in ("filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate",
                "groups", "activation", "use_bias", "kernel_regularizer", "bias_constraint"):
        assert oc[key] == kc[key], key
    again = layers.Conv1D.from_config(oc)
    assert again.get_config() == oc


@pytest.mark.parametrize("kwargs,match", [
    (dict(filters=0, kernel_size=3), "filters=0"),
    (dict(filters=4, kernel_size=0), "kernel_size"),
    (dict(filters=4, kernel_size=3, padding="full"), "padding='full'"),
    (dict(filters=4, kernel_size=3, strides=2, dilation_rate=2), "dilation_rate"),
    (dict(filters=5, kernel_size=3, groups=2), "groups=2, filters=5"),
    (dict(filters=4, kernel_size=3, data_format="channels_middle"), "data_format"),
    (dict(filters=4, kernel_size=3, lora_rank=2), "lora_rank=2"),
])
def test_conv1d_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        layers.Conv1D(**kwargs)


def test_conv1d_transpose_argument_errors():
    with pytest.raises(ValueError, match="padding='causal'"):
        layers.Conv1DTranspose(2, 3, padding="causal")
    with pytest.raises(ValueError, match="output_padding"):
        layers.Conv1DTranspose(2, 3, strides=2, output_padding=2)


def test_activity_regularizer_is_never_silently_ignored():
    try:
        layer = layers.Conv1D(2, 3, activity_regularizer="l2")
    except (TypeError, ValueError) as err:          # Layer.__init__ without regularizers yet
        assert "activity_regularizer" in str(err)
    else:
        assert layer.activity_regularizer is not None


def test_regularizers_and_constraints_reach_the_weights():
    def reg(w):
        return 0.0

    def con(w):
        return w
    layer = layers.Conv1D(2, 3, kernel_regularizer=reg, bias_regularizer=reg,
                          kernel_constraint=con, bias_constraint=con)
    layer.build((None, 5, 4))
    for w in layer.weights:
        assert w.regularizer is reg and w.constraint is con


def test_conv1d_on_2d_input_hints_a_channel_axis():
    with pytest.raises(ValueError, match=r"(?s)Conv1D 'c1': `inputs` must have shape \(batch, "
                                         r"timesteps, channels\), got \(None, 50\).*Hint:.*add a "
                                         r"channel axis, e.g. x\[\.\.\., None\]"):
        layers.Conv1D(4, 3, name="c1")(Input((50,)))
    with pytest.raises(ValueError, match=r"got \(8, 50\).*\n.*channel axis"):
        layers.Conv1D(4, 3)(np.zeros((8, 50), "float32"))


def test_conv1d_kernel_longer_than_sequence():
    with pytest.raises(ValueError, match=r"(?s)\(batch, timesteps >= 7, 3\), got \(None, 5, 3\)"
                                         r".*Hint: with padding='valid' the window"):
        layers.Conv1D(4, 4, dilation_rate=2)(Input((5, 3)))
    assert layers.Conv1D(4, 7, padding="same")(Input((5, 3))).shape == (None, 5, 4)


def test_conv1d_wrong_channels_after_build():
    layer = layers.Conv1D(4, 3)
    layer(np.zeros((2, 6, 3), "float32"))
    with pytest.raises(ValueError, match=r"(?s)\(batch, timesteps, 3\), got \(2, 6, 5\).*built "
                                         r"for 3 input channels"):
        layer(np.zeros((2, 6, 5), "float32"))
    with pytest.raises(ValueError, match="divisible by the number of groups"):
        layers.Conv1D(4, 3, groups=2)(Input((6, 3)))
    with pytest.raises(ValueError, match="known size"):
        layers.Conv1D(4, 3)(Input((6, None)))


def test_pooling_larger_than_sequence():
    with pytest.raises(ValueError, match=r"(?s)MaxPooling1D 'mp': `inputs` must have shape "
                                         r"\(batch, timesteps >= 8, 3\), got \(None, 5, 3\).*"
                                         r"Hint: pool_size=8 is larger than the 5 steps"):
        layers.MaxPooling1D(8, name="mp")(Input((5, 3)))
    with pytest.raises(ValueError, match=r"timesteps >= 4"):
        layers.AveragePooling1D(4)(np.zeros((2, 3, 1), "float32"))
    assert layers.MaxPooling1D(8, padding="same")(Input((5, 3))).shape == (None, 1, 3)
    with pytest.raises(ValueError, match=r"(?s)got \(None, 5\).*add a feature axis"):
        layers.MaxPooling1D()(Input((5,)))


def test_reshaping_errors():
    with pytest.raises(ValueError, match=r"(?s)cropping=\(3, 3\) removes all 6 steps"):
        layers.Cropping1D(3)(Input((6, 2)))
    with pytest.raises(ValueError, match=r"got \(None, 6\)"):
        layers.UpSampling1D()(Input((6,)))
    with pytest.raises(ValueError, match="size=0"):
        layers.UpSampling1D(0)
    with pytest.raises(ValueError, match="padding"):
        layers.ZeroPadding1D(-1)
    with pytest.raises(ValueError, match=r"got \(None, 6\).*\n.*use Dropout"):
        layers.SpatialDropout1D(0.1)(Input((6,)))


def test_conv_transpose_unreachable_output_padding():
    # "same", even kernel, output_padding 0: TensorFlow's conv_transpose has no solution.
    with pytest.raises(ValueError, match="does not map back"):
        layers.Conv1DTranspose(2, 4, strides=2, padding="same", output_padding=0)(Input((5, 3)))


# ---------------------------------------------------------------------------------------------
# In a model: training, saving


def _conv_lstm_model(L, Input_, Model_):
    inp = Input_((24, 3))
    h = L.Conv1D(8, 3, padding="causal", activation="relu")(inp)
    h = L.MaxPooling1D(2)(h)
    h = L.LSTM(6)(h)
    out = L.Dense(1)(h)
    return Model_(inp, out)


def test_conv_pool_lstm_model_trains_in_fit():
    attnlstm.backend.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 24, 3)).astype("float32")
    y = (x[:, :, 0].mean(axis=1, keepdims=True) * 3).astype("float32")
    model = _conv_lstm_model(layers, Input, Model)
    model.compile(optimizer=attnlstm.optimizers.Adam(0.01), loss="mse")
    before = [w.numpy() for w in model.trainable_weights]
    hist = model.fit(x, y, epochs=15, batch_size=16, verbose=0)
    losses = hist.history["loss"]
    assert losses[-1] < 0.5 * losses[0], losses
    for w, b in zip(model.trainable_weights, before):
        assert not np.allclose(w.numpy(), b), f"{w.path} was not trained"


def test_conv_model_gradients_match_gradient_tape(keras):
    import tensorflow as tf
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 24, 3)).astype("float32")
    y = rng.standard_normal((8, 1)).astype("float32")
    ours = _conv_lstm_model(layers, Input, Model)
    km = _conv_lstm_model(keras.layers, keras.Input, keras.Model)
    km.set_weights(ours.get_weights())
    ours.compile(optimizer="sgd", loss="mse")
    loss, grads = ours.compute_gradients(x, y)
    with tf.GradientTape() as tape:
        kl = keras.losses.MeanSquaredError()(y, km(x))
    kg = tape.gradient(kl, km.trainable_weights)
    assert loss == pytest.approx(float(kl), rel=1e-5)
    for g, k, w in zip(grads, kg, ours.trainable_weights):
        np.testing.assert_allclose(g, k.numpy(), rtol=1e-3, atol=2e-6, err_msg=w.path)


def test_weights_h5_both_ways_with_keras(keras, tmp_path):
    def build(L, Input_, Model_):
        inp = Input_((16, 4))
        h = L.Conv1D(6, 3, padding="same")(inp)
        h = L.BatchNormalization()(h)
        h = L.PReLU(shared_axes=[1])(h)
        h = L.Conv1DTranspose(5, 3, strides=2)(h)
        h = L.LayerNormalization()(h)
        h = L.AveragePooling1D(2)(h)
        h = L.Conv1D(3, 2)(h)
        return Model_(inp, L.GlobalAveragePooling1D()(h))

    rng = np.random.default_rng(2)
    km = build(keras.layers, keras.Input, keras.Model)
    km.set_weights([np.abs(rng.standard_normal(w.shape)).astype("float32") + 0.5
                    if "variance" in w.path else
                    rng.standard_normal(w.shape).astype("float32") * 0.3 for w in km.weights])
    ours = build(layers, Input, Model)
    path = tmp_path / "k.weights.h5"
    km.save_weights(path)
    ours.load_weights(path)
    x = rng.standard_normal((2, 16, 4)).astype("float32")
    assert_close(ours.predict(x, verbose=0), to_np(km(x)))
    ours.set_weights([w * 0.5 for w in ours.get_weights()])
    path2 = tmp_path / "o.weights.h5"
    ours.save_weights(path2)
    km.load_weights(path2)
    assert_close(ours.predict(x, verbose=0), to_np(km(x)))


def test_max_pooling_ties_follow_tensorflow(keras):
    """Ties (e.g. relu zeros) send the gradient to the first maximum of a window, as TF."""
    x = np.zeros((2, 9, 3), "float32")
    x[0, 4, 1] = 1.0
    x[1, :, 2] = 2.0
    for kw in (dict(pool_size=2), dict(pool_size=3, strides=1, padding="same"),
               dict(pool_size=4, strides=2)):
        ol = layers.MaxPooling1D(**kw)
        out, ctx = run(ol, [x])
        R = np.arange(out.size, dtype="float32").reshape(out.shape) + 1
        _, kdx, _ = keras_tape(keras.layers.MaxPooling1D(**kw), x, R)
        np.testing.assert_array_equal(ol.backward(ctx, R).inputs, kdx)
