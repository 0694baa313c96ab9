"""Layer-by-layer parity with Keras 3.15.1 (TensorFlow CPU backend), weights copied from Keras.

float32 within rtol 1e-4 / atol 1e-5; float64 layers tighter. The LSTM runs over >= 100 steps with
every option; masks come from Masking, Embedding(mask_zero=True) and an explicit mask= argument,
with gaps, right padding and fully masked samples.
"""
import numpy as np
import pytest

import reference
from conftest import assert_close, padded_mask, random_lstm_weights, to_np

import attnlstm
from attnlstm import Input, Model, layers

B, T, D, H = 3, 120, 4, 5


def _x(rng, shape=(B, T, D), dtype="float32"):
    return rng.standard_normal(shape).astype(dtype)


def _pair_lstm(keras, rng, dtype="float32", D_=D, **kw):
    """A Keras LSTM and ours, built on (.., D_) inputs, with the same random weights."""
    kl = keras.layers.LSTM(H, dtype=dtype, **kw)
    batch = B if kw.get("stateful") else None
    kl.build((batch, None, D_))
    w = random_lstm_weights(rng, D_, H, kw.get("use_bias", True), dtype=dtype)
    kl.set_weights(w)
    ol = layers.LSTM(H, dtype=dtype, **kw)
    ol.build((batch, None, D_))
    ol.set_weights(kl.get_weights())
    return kl, ol


# ---------------------------------------------------------------------------------------------
# LSTM options

LSTM_OPTIONS = [
    dict(),
    dict(return_sequences=True),
    dict(return_state=True),
    dict(return_sequences=True, return_state=True, go_backwards=True),
    dict(go_backwards=True),
    dict(use_bias=False, return_sequences=True),
    dict(unit_forget_bias=False, return_state=True),
    dict(activation="relu", recurrent_activation="hard_sigmoid", return_sequences=True),
    dict(activation="linear", recurrent_activation="sigmoid"),
    dict(activation="sigmoid", recurrent_activation="tanh", return_sequences=True),
    dict(activation="hard_sigmoid", recurrent_activation="hard_sigmoid", go_backwards=True),
    dict(activation=None, recurrent_activation="relu", return_sequences=True),
    dict(activation="tanh", recurrent_activation="linear", return_state=True),
]


@pytest.mark.parametrize("kw", LSTM_OPTIONS, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()) or "default")
def test_lstm_options_match_keras(keras, rng, kw):
    kl, ol = _pair_lstm(keras, rng, **kw)
    x = _x(rng)
    assert_close(ol(x), to_np(kl(x)), what=str(kw))


@pytest.mark.parametrize("use_bias,unit_forget_bias", [(True, True), (True, False), (False, True)])
def test_lstm_weights_layout_and_init_match_keras(keras, use_bias, unit_forget_bias):
    kl = keras.layers.LSTM(H, use_bias=use_bias, unit_forget_bias=unit_forget_bias)
    kl.build((None, None, D))
    ol = layers.LSTM(H, use_bias=use_bias, unit_forget_bias=unit_forget_bias)
    ol.build((None, None, D))
    assert [w.shape for w in ol.get_weights()] == [tuple(w.shape) for w in kl.get_weights()]
    assert ol.count_params() == kl.count_params()
    if use_bias:
        # unit_forget_bias only sets the initial f block of the bias to 1 (Keras lstm.py).
        np.testing.assert_array_equal(ol.get_weights()[2], kl.get_weights()[2])


def test_lstm_float64_matches_keras(keras, rng):
    kw = dict(return_sequences=True, return_state=True)
    kl, ol = _pair_lstm(keras, rng, dtype="float64", **kw)
    x = _x(rng, dtype="float64")
    got = ol(x)
    assert all(g.dtype == np.float64 for g in got)
    assert_close(got, to_np(kl(x)), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("go_backwards", [False, True])
def test_lstm_initial_state_matches_keras(keras, rng, go_backwards):
    kw = dict(return_sequences=True, return_state=True, go_backwards=go_backwards)
    kl, ol = _pair_lstm(keras, rng, **kw)
    x = _x(rng)
    h0, c0 = _x(rng, (B, H)), _x(rng, (B, H))
    assert_close(ol(x, initial_state=[h0, c0]), to_np(kl(x, initial_state=[h0, c0])))
    # With a mask too: Keras applies it only when passed explicitly (keras-semantics.md §1).
    m = padded_mask(B, T, "gaps", rng)
    assert_close(ol(x, initial_state=[h0, c0], mask=m),
                 to_np(kl(x, initial_state=[h0, c0], mask=m)))


def test_lstm_stateful_matches_keras_over_calls_and_resets(keras, rng):
    kw = dict(stateful=True, return_sequences=True, return_state=True)
    kl, ol = _pair_lstm(keras, rng, **kw)
    x = _x(rng, (B, 3 * T, D))
    chunks = [x[:, :T], x[:, T:2 * T], x[:, 2 * T:]]
    for rnd in range(2):
        for c in chunks:
            assert_close(ol(c), to_np(kl(c)), what=f"round {rnd}")
        kl.reset_states()
        ol.reset_states()
    # After a reset the first chunk gives the same as a fresh, non-stateful run.
    fresh = layers.LSTM(H, return_sequences=True, return_state=True)
    fresh.build((None, None, D))
    fresh.set_weights(ol.get_weights())
    assert_close(ol(chunks[0]), fresh(chunks[0]))
    assert ol.states is not None


@pytest.mark.parametrize("kind", ["right", "gaps", "full"])
@pytest.mark.parametrize("kw", [dict(return_sequences=True),
                                dict(return_state=True, go_backwards=True),
                                dict(return_sequences=True, zero_output_for_mask=True)],
                         ids=["seq", "state-back", "seq-zero"])
def test_lstm_explicit_mask_matches_keras(keras, rng, kind, kw):
    kl, ol = _pair_lstm(keras, rng, **kw)
    x = _x(rng)
    m = padded_mask(B, T, kind, rng)
    assert_close(ol(x, mask=m), to_np(kl(x, mask=m)))
    # Non-bool masks are cast to bool.
    assert_close(ol(x, mask=m.astype("float32")), to_np(kl(x, mask=m)))


@pytest.mark.parametrize("kind", ["right", "gaps", "full"])
def test_lstm_masking_layer_model_matches_keras(keras, rng, kind):
    m = padded_mask(B, T, kind, rng)
    x = np.where(m[..., None], _x(rng), 0).astype("float32")

    def build(L, inp):
        h = L.Masking(0.0)(inp)
        s = L.LSTM(H, return_sequences=True)(h)
        last = L.LSTM(H, go_backwards=True)(h)
        return [s, last]

    kin = keras.Input((T, D))
    km = keras.Model(kin, build(keras.layers, kin))
    km.set_weights(_model_weights(rng, km))
    oin = Input((T, D))
    om = Model(oin, build(layers, oin))
    om.set_weights(km.get_weights())
    assert_close(om.predict(x, batch_size=2), km.predict(x, batch_size=2, verbose=0))


def _model_weights(rng, kmodel, scale=0.5):
    """Random small weights for every weight of a Keras model (LSTM-safe scale)."""
    out = []
    for w in kmodel.get_weights():
        fan = w.shape[0] if w.ndim == 2 else 1
        out.append((rng.uniform(-scale, scale, w.shape) / np.sqrt(fan)).astype(w.dtype))
    return out


def test_lstm_embedding_mask_zero_matches_keras(keras, rng):
    V = 12
    idx = rng.integers(1, V, size=(4, T))
    idx[1, 90:] = 0          # right padding
    idx[2, :30] = 0          # left padding
    idx[2, 50:55] = 0        # a gap
    idx[3, :] = 0            # fully masked

    def build(L, inp):
        e = L.Embedding(V, D, mask_zero=True)(inp)
        return L.LSTM(H, return_sequences=True, return_state=True)(e)

    kin = keras.Input((T,), dtype="int32")
    km = keras.Model(kin, build(keras.layers, kin))
    km.set_weights(_model_weights(rng, km))
    oin = Input((T,), dtype="int32")
    om = Model(oin, build(layers, oin))
    om.set_weights(km.get_weights())
    assert_close(om.predict(idx), km.predict(idx, verbose=0))
    # The fully masked sample: zero output, zero states (TF's rule).
    out = om.predict(idx)
    assert not np.any(out[0][3]) and not np.any(out[1][3]) and not np.any(out[2][3])


def test_lstm_matches_numpy_twin_float64(rng):
    """The layer against tests/reference.py in float64 with every option at once."""
    for kw in [dict(activation="tanh", recurrent_activation="sigmoid", go_backwards=False),
               dict(activation="relu", recurrent_activation="hard_sigmoid", go_backwards=True),
               dict(activation="linear", recurrent_activation="sigmoid", go_backwards=True)]:
        ol = layers.LSTM(H, dtype="float64", return_sequences=True, return_state=True, **kw)
        ol.build((None, None, D))
        w = random_lstm_weights(rng, D, H, dtype="float64")
        ol.set_weights(w)
        x = _x(rng, dtype="float64")
        h0, c0 = _x(rng, (B, H), "float64"), _x(rng, (B, H), "float64")
        m = padded_mask(B, T, "gaps", rng)
        seq, h, c = ol(x, mask=m, initial_state=[h0, c0])
        r_seq, r_last, r_h, r_c = reference.lstm(x, *w, initial_state=[h0, c0], mask=m, **kw)
        for a, b in ((seq, r_seq), (h, r_h), (c, r_c), (seq[:, -1], r_last)):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------------------------------------
# Core, reshaping, pooling, merging layers


def _copy_build(klayer, olayer, *inputs):
    """Call both layers (builds them), copy Keras' weights into ours, return both outputs."""
    k_out = klayer(*inputs)
    olayer(*inputs)
    olayer.set_weights(klayer.get_weights())
    return olayer(*inputs), to_np(k_out)


@pytest.mark.parametrize("shape", [(6, 7), (3, 9, 7), (2, 3, 4, 7)], ids=["rank2", "rank3", "rank4"])
@pytest.mark.parametrize("act", [None, "relu", "softmax", "tanh"])
def test_dense_matches_keras(keras, rng, shape, act):
    x = _x(rng, shape)
    ours, theirs = _copy_build(keras.layers.Dense(5, activation=act),
                               layers.Dense(5, activation=act), x)
    assert_close(ours, theirs)


def test_dense_no_bias_float64(keras, rng):
    x = _x(rng, (4, 6), "float64")
    ours, theirs = _copy_build(keras.layers.Dense(3, use_bias=False, dtype="float64"),
                               layers.Dense(3, use_bias=False, dtype="float64"), x)
    assert ours.dtype == np.float64
    assert_close(ours, theirs, rtol=1e-12, atol=1e-12)


def test_time_distributed_dense_matches_keras(keras, rng):
    x = _x(rng, (B, T, D))
    ours, theirs = _copy_build(keras.layers.TimeDistributed(keras.layers.Dense(6, activation="tanh")),
                               layers.TimeDistributed(layers.Dense(6, activation="tanh")), x)
    assert_close(ours, theirs)


def test_repeat_vector_flatten_reshape_permute_match_keras(keras, rng):
    x2 = _x(rng, (4, 6))
    x3 = _x(rng, (4, 5, 6))
    x4 = _x(rng, (2, 3, 4, 5))
    cases = [
        (keras.layers.RepeatVector(7), layers.RepeatVector(7), x2),
        (keras.layers.Flatten(), layers.Flatten(), x3),
        (keras.layers.Flatten(), layers.Flatten(), x4),
        (keras.layers.Reshape((10, 3)), layers.Reshape((10, 3)), x3),
        (keras.layers.Reshape((-1, 2)), layers.Reshape((-1, 2)), x3),
        (keras.layers.Permute((2, 1)), layers.Permute((2, 1)), x3),
        (keras.layers.Permute((3, 1, 2)), layers.Permute((3, 1, 2)), x4),
    ]
    for kl, ol, x in cases:
        assert_close(ol(x), to_np(kl(x)), what=type(ol).__name__)
        assert ol.compute_output_shape((None,) + x.shape[1:]) == \
            tuple(kl.compute_output_shape((None,) + x.shape[1:])), type(ol).__name__


@pytest.mark.parametrize("kind", [None, "right", "gaps"])
def test_global_average_pooling_matches_keras(keras, rng, kind):
    x = _x(rng)
    kl, ol = keras.layers.GlobalAveragePooling1D(), layers.GlobalAveragePooling1D()
    if kind is None:
        assert_close(ol(x), to_np(kl(x)))
    else:
        m = padded_mask(B, T, kind, rng)
        assert_close(ol(x, mask=m), to_np(kl(x, mask=m)))
    kl2 = keras.layers.GlobalAveragePooling1D(keepdims=True)
    ol2 = layers.GlobalAveragePooling1D(keepdims=True)
    assert_close(ol2(x), to_np(kl2(x)))


def test_global_average_pooling_fully_masked_sample_is_zero_not_nan(rng):
    """Documented divergence: Keras returns NaN (0/0) for a fully masked sample; we return 0."""
    x = _x(rng)
    m = padded_mask(B, T, "full", rng)
    out = layers.GlobalAveragePooling1D()(x, mask=m)
    np.testing.assert_array_equal(out[-1], 0)
    np.testing.assert_allclose(out[0], x[0].mean(axis=0), rtol=1e-5)


def test_global_max_pooling_matches_keras(keras, rng):
    x = _x(rng)
    assert_close(layers.GlobalMaxPooling1D()(x), to_np(keras.layers.GlobalMaxPooling1D()(x)))


@pytest.mark.parametrize("name", ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"])
def test_elementwise_merges_match_keras(keras, rng, name):
    a, b = _x(rng, (B, 7, D)), _x(rng, (B, 7, D))
    assert_close(getattr(layers, name)()([a, b]), to_np(getattr(keras.layers, name)()([a, b])))
    if name not in ("Subtract",):
        c = _x(rng, (B, 7, D))
        assert_close(getattr(layers, name)()([a, b, c]),
                     to_np(getattr(keras.layers, name)()([a, b, c])))


def test_merge_broadcasting_matches_keras(keras, rng):
    a, b = _x(rng, (B, 7, D)), _x(rng, (B, 1, D))
    assert_close(layers.Add()([a, b]), to_np(keras.layers.Add()([a, b])))
    assert layers.Add().compute_output_shape([(None, 7, D), (None, 1, D)]) == \
        tuple(keras.layers.Add().compute_output_shape([(None, 7, D), (None, 1, D)]))


@pytest.mark.parametrize("name", ["Add", "Multiply", "Maximum", "Subtract"])
def test_merge_of_different_ranks_aligns_batch_axes_as_keras(keras, rng, name):
    """(B, F) with (B, T, F), B == T: Keras adds the axis after the batch axis."""
    a, b = _x(rng, (3, D)), _x(rng, (3, 3, D))
    for pair in ([a, b], [b, a]):
        assert_close(getattr(layers, name)()(pair), to_np(getattr(keras.layers, name)()(pair)))


@pytest.mark.parametrize("masks", [(True, True), (True, False), (False, True)])
def test_multiply_with_masks_matches_keras(keras, rng, masks):
    """Masks from Masking layers on either input: Keras' rule (masked entries count as 1,
    0 where every input is masked), in a two-input model end to end."""
    ma = padded_mask(B, 9, "gaps", rng) if masks[0] else np.ones((B, 9), bool)
    mb = padded_mask(B, 9, "right", rng) if masks[1] else np.ones((B, 9), bool)
    a = np.where(ma[..., None], _x(rng, (B, 9, D)), 0).astype("float32")
    b = np.where(mb[..., None], _x(rng, (B, 9, D)), 0).astype("float32")

    def build(L, ia, ib):
        ha = L.Masking(0.0)(ia) if masks[0] else ia
        hb = L.Masking(0.0)(ib) if masks[1] else ib
        prod = L.Multiply()([ha, hb])
        return [prod, L.LSTM(H, return_sequences=True)(prod)]

    ka, kb = keras.Input((9, D)), keras.Input((9, D))
    km = keras.Model([ka, kb], build(keras.layers, ka, kb))
    km.set_weights(_model_weights(rng, km))
    oa, ob = Input((9, D)), Input((9, D))
    om = Model([oa, ob], build(layers, oa, ob))
    om.set_weights(km.get_weights())
    assert_close(om.predict([a, b]), km.predict([a, b], verbose=0))
    # The eager layer with mask= and the output mask.
    kl, ol = keras.layers.Multiply(), layers.Multiply()
    mlist = [ma if masks[0] else None, mb if masks[1] else None]
    ours = ol([a, b], mask=mlist)
    assert_close(ours, om.predict([a, b])[0])
    k_mask, o_mask = kl.compute_mask([a, b], mlist), ol.compute_mask([a, b], mlist)
    if k_mask is None:
        assert o_mask is None
    else:
        np.testing.assert_array_equal(o_mask, to_np(k_mask))


@pytest.mark.parametrize("axis", [-1, 1, 2])
def test_concatenate_matches_keras_with_masks(keras, rng, axis):
    a, b = _x(rng, (B, 9, D)), _x(rng, (B, 9, D))
    kl, ol = keras.layers.Concatenate(axis=axis), layers.Concatenate(axis=axis)
    assert_close(ol([a, b]), to_np(kl([a, b])))
    for ma, mb in [(padded_mask(B, 9, "gaps", rng), None),
                   (padded_mask(B, 9, "gaps", rng), padded_mask(B, 9, "right", rng))]:
        np.testing.assert_array_equal(ol.compute_mask([a, b], [ma, mb]),
                                      to_np(kl.compute_mask([a, b], [ma, mb])))
    assert ol.compute_mask([a, b], [None, None]) is None


@pytest.mark.parametrize("axes,shapes", [
    (1, [(4, 6), (4, 6)]),
    (-1, [(4, 6), (4, 6)]),
    (2, [(4, 5, 6), (4, 3, 6)]),
    ((1, 1), [(4, 5, 6), (4, 5, 3)]),
    ((2, 1), [(4, 5, 6), (4, 6, 3)]),
    ((1, 2), [(4, 5, 3), (4, 6, 5)]),
])
@pytest.mark.parametrize("normalize", [False, True])
def test_dot_matches_keras(keras, rng, axes, shapes, normalize):
    a, b = _x(rng, shapes[0]), _x(rng, shapes[1])
    kl, ol = keras.layers.Dot(axes, normalize=normalize), layers.Dot(axes, normalize=normalize)
    assert_close(ol([a, b]), to_np(kl([a, b])))
    sh = [(None,) + s[1:] for s in shapes]
    assert ol.compute_output_shape(sh) == tuple(kl.compute_output_shape(sh))


@pytest.mark.parametrize("act", ["relu", "sigmoid", "tanh", "softmax", "linear", "hard_sigmoid",
                                 "softplus", "elu", "selu", "gelu", "swish"])
def test_activation_matches_keras(keras, rng, act):
    x = 3 * _x(rng, (4, 6, 5))
    assert_close(layers.Activation(act)(x), to_np(keras.layers.Activation(act)(x)), what=act)


@pytest.mark.parametrize("axis", [-1, 1, (1, 2)])
def test_softmax_matches_keras(keras, rng, axis):
    x = 3 * _x(rng, (B, 8, 6))
    assert_close(layers.Softmax(axis=axis)(x), to_np(keras.layers.Softmax(axis=axis)(x)))


@pytest.mark.parametrize("mask_shape", [(B, 8, 6), (B, 1, 6), (B, 8, 1)])
def test_softmax_with_mask_matches_keras(keras, rng, mask_shape):
    x = 3 * _x(rng, (B, 8, 6))
    m = rng.random(mask_shape) > 0.4
    m.reshape(-1)[:3] = False
    ours = layers.Softmax(axis=-1)(x, mask=m)
    assert_close(ours, to_np(keras.layers.Softmax(axis=-1)(x, mask=m)))
    # Masked entries get weight exactly 0.
    assert np.all(ours[~np.broadcast_to(m, x.shape)] == 0)


def test_softmax_time_mask_over_time_axis(rng):
    """A (B, T) mask on (B, T, 1) scores with Softmax(axis=1): masked steps weigh 0, rows sum 1."""
    x = _x(rng, (B, 10, 1))
    m = padded_mask(B, 10, "right", rng)
    p = layers.Softmax(axis=1)(x, mask=m)
    assert np.all(p[~m] == 0)
    np.testing.assert_allclose(p.sum(axis=1)[:, 0], 1.0, rtol=1e-6)


def test_masking_matches_keras_output_and_mask(keras, rng):
    m = padded_mask(B, T, "gaps", rng)
    x = np.where(m[..., None], _x(rng), 0).astype("float32")
    x[0, 5, 0] = 0.0  # a step with one zero feature is NOT masked
    kl, ol = keras.layers.Masking(0.0), layers.Masking(0.0)
    kout = kl(x)
    assert_close(ol(x), to_np(kout))
    np.testing.assert_array_equal(ol.compute_mask(x), to_np(kout._keras_mask))
    np.testing.assert_array_equal(ol.compute_mask(x), m)
    x2 = np.where(m[..., None], x, -1.0).astype("float32")
    assert_close(layers.Masking(-1.0)(x2), to_np(keras.layers.Masking(-1.0)(x2)))


def test_dropout_is_identity_at_inference(keras, rng):
    x = _x(rng, (B, 10, D))
    ol = layers.Dropout(0.5)
    assert_close(ol(x), to_np(keras.layers.Dropout(0.5)(x)))
    np.testing.assert_array_equal(ol(x), x)
    # And in a model predict (training=False).
    inp = Input((10, D))
    np.testing.assert_array_equal(Model(inp, layers.Dropout(0.9)(inp)).predict(x), x)


def test_dropout_in_training_drops_and_rescales(rng):
    x = np.ones((200, 50), "float32")
    y = layers.Dropout(0.25, seed=3)._eager_call((x,), {}, training=True)
    kept = y != 0
    assert 0.65 < kept.mean() < 0.85
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)


def test_embedding_matches_keras(keras, rng):
    idx = rng.integers(0, 11, size=(4, 9))
    kl, ol = keras.layers.Embedding(11, 6, mask_zero=True), layers.Embedding(11, 6, mask_zero=True)
    ours, theirs = _copy_build(kl, ol, idx)
    assert_close(ours, theirs)
    np.testing.assert_array_equal(ol.compute_mask(idx), to_np(kl.compute_mask(idx)))
    with pytest.raises(ValueError, match=r"index 11 is out of range \[0, 11\)"):
        ol(np.array([[1, 11]]))


def test_lambda_matches_keras(keras, rng):
    x = _x(rng, (B, 7, D))
    kl = keras.layers.Lambda(lambda t: t[:, ::2] * 2.0)
    ol = layers.Lambda(lambda t: t[:, ::2] * 2.0)
    assert_close(ol(x), to_np(kl(x)))
    assert ol.compute_output_shape((None, 7, D)) == (None, 4, D)
    inp = Input((None, D))
    out = layers.Lambda(lambda t: np.cumsum(t, axis=1))(inp)
    assert out.shape == (None, None, D)
    assert_close(Model(inp, out).predict(x), np.cumsum(x, axis=1))


# ---------------------------------------------------------------------------------------------
# get_config / from_config


CONFIG_LAYERS = [
    lambda: layers.LSTM(7, activation="relu", recurrent_activation="hard_sigmoid", use_bias=False,
                        return_sequences=True, return_state=True, go_backwards=True,
                        unit_forget_bias=False, name="enc"),
    lambda: layers.Dense(3, activation="softmax", use_bias=False),
    lambda: layers.RepeatVector(4),
    lambda: layers.Reshape((2, -1)),
    lambda: layers.Permute((2, 1)),
    lambda: layers.Concatenate(axis=1),
    lambda: layers.Dot((1, 2), normalize=True),
    lambda: layers.Softmax(axis=1),
    lambda: layers.Masking(-1.0),
    lambda: layers.Dropout(0.3, seed=1),
    lambda: layers.Embedding(10, 4, mask_zero=True),
    lambda: layers.GlobalAveragePooling1D(keepdims=True),
    lambda: layers.Activation("tanh"),
    lambda: layers.Flatten(),
    lambda: layers.Add(),
]


@pytest.mark.parametrize("make", CONFIG_LAYERS, ids=lambda f: type(f()).__name__)
def test_get_config_from_config_round_trip(make):
    layer = make()
    cfg = layer.get_config()
    clone = type(layer).from_config(cfg)
    assert type(clone) is type(layer)
    assert clone.get_config() == cfg


def test_lstm_config_keys_match_keras(keras):
    ours = layers.LSTM(7, return_sequences=True).get_config()
    theirs = keras.layers.LSTM(7, return_sequences=True).get_config()
    for key in ("units", "activation", "recurrent_activation", "use_bias", "unit_forget_bias",
                "dropout", "recurrent_dropout", "return_sequences", "return_state",
                "go_backwards", "stateful", "unroll", "zero_output_for_mask"):
        assert ours[key] == theirs[key], key


def test_time_distributed_config_round_trip_and_weights(keras, rng):
    td = layers.TimeDistributed(layers.Dense(4))
    td(_x(rng, (2, 3, 5)))
    cfg = td.get_config()
    assert cfg["layer"]["class_name"] == "Dense" and cfg["layer"]["config"]["units"] == 4
    assert [w.shape for w in td.get_weights()] == [(5, 4), (4,)]


def test_lstm_from_config_rebuilds_same_outputs(rng):
    ol = layers.LSTM(H, return_sequences=True, activation="relu")
    x = _x(rng)
    y = ol(x)
    clone = layers.LSTM.from_config({**ol.get_config(), "name": "clone"})
    clone.build((None, None, D))
    clone.set_weights(ol.get_weights())
    np.testing.assert_array_equal(clone(x), y)


def test_package_exports():
    assert issubclass(attnlstm.ShapeError, ValueError)
    for name in ("LSTM", "Dense", "TimeDistributed", "RepeatVector", "Flatten",
                 "GlobalAveragePooling1D", "Reshape", "Permute", "Concatenate", "Add", "Multiply",
                 "Dot", "Activation", "Softmax", "Masking", "Dropout", "Embedding", "Lambda"):
        assert hasattr(layers, name), name
