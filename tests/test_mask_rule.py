"""One mask rule per layer (issue #14 item 4): ``compute_mask`` serves both the eager call and
the symbolic build, as in Keras 3; masks are zipped with a layer's outputs as Keras does."""
import numpy as np
import pytest

from attnlstm import Input, Model, layers, ops
from attnlstm.engine.base import Layer


class NonZeroSteps(Layer):
    """A custom layer that states its mask once, written with attnlstm.ops."""

    def call(self, inputs):
        return inputs * 2.0

    def compute_mask(self, inputs, mask=None):
        return ops.any(ops.not_equal(inputs, 0.0), axis=-1)


def _padded(rng, B=3, T=6, D=4):
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    x[0, 4:] = 0.0
    x[2, 2:] = 0.0
    return x


def test_custom_compute_mask_alone_reaches_the_next_layer(rng):
    inp = Input((6, 4))
    h = NonZeroSteps()(inp)
    assert h.has_mask and h.keras_mask.shape == (None, 6) and h.keras_mask.dtype == "bool"
    lstm = layers.LSTM(5, seed=1)
    out = lstm(h)
    model = Model(inp, out)
    ref_in = Input((6, 4))
    ref = Model(ref_in, layers.LSTM(5, seed=1)(layers.Masking(0.0)(ref_in * 2.0)))
    ref.set_weights(model.get_weights())
    x = _padded(rng)
    np.testing.assert_allclose(model.predict(x, verbose=0), ref.predict(x, verbose=0),
                               rtol=1e-6, atol=1e-6)
    # and the mask does change the result (sample 0 ends in padding)
    plain = Model(inp, layers.LSTM(5, seed=1)(inp * 2.0))
    plain.set_weights(model.get_weights())
    assert not np.allclose(model.predict(x, verbose=0)[0], plain.predict(x, verbose=0)[0])


def test_masks_zip_with_outputs_as_keras(keras):
    """Attention returns [outputs, scores]: the query's mask goes to the outputs only."""
    q = Input((4, 8))
    v = Input((5, 8))
    qm = layers.Masking(0.0)(q)
    vm = layers.Masking(0.0)(v)
    out, scores = layers.Attention()([qm, vm], return_attention_scores=True)
    assert out.has_mask and not scores.has_mask
    kq, kv = keras.Input((4, 8)), keras.Input((5, 8))
    kout, kscores = keras.layers.Attention()(
        [keras.layers.Masking(0.0)(kq), keras.layers.Masking(0.0)(kv)],
        return_attention_scores=True)
    assert (getattr(kout, "_keras_mask", None) is not None) == out.has_mask
    assert (getattr(kscores, "_keras_mask", None) is not None) == scores.has_mask


def test_concatenate_mask_is_symbolic_and_concrete(rng):
    a, b = Input((6, 3)), Input((6, 2))
    cat = layers.Concatenate()([layers.Masking(0.0)(a), b])
    assert cat.has_mask and cat.keras_mask.shape == (None, 6)
    x, y = _padded(rng, D=3), rng.standard_normal((3, 6, 2)).astype(np.float32)
    layer = layers.Concatenate()
    m = layer.compute_mask([x, y], [np.any(x != 0, axis=-1), None])
    np.testing.assert_array_equal(m, np.ones((3, 6), bool))   # y is never masked


def test_mask_dropping_layer_warns_once_at_build_not_per_call(rng):
    inp = Input((6, 4))
    with pytest.warns(UserWarning, match="does not support masking"):
        out = layers.Conv1D(2, 3)(layers.Masking(0.0)(inp))
    assert not out.has_mask
    model = Model(inp, out)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.predict(_padded(rng), verbose=0)


@pytest.mark.parametrize("name", ["any", "all"])
def test_logical_reductions_match_keras(keras, name, rng):
    x = (rng.random((3, 4, 5)) > 0.6).astype(np.float32)
    for axis in (None, -1, (0, 2)):
        for keepdims in (False, True):
            want = np.asarray(getattr(keras.ops, name)(x, axis=axis, keepdims=keepdims))
            got = getattr(ops, name)(x, axis=axis, keepdims=keepdims)
            assert got.dtype == np.bool_ and got.shape == want.shape
            np.testing.assert_array_equal(got, want)
    t = ops.KerasTensor((None, 4, 5))
    with pytest.raises(ValueError, match="axis"):
        getattr(ops, name)(t, axis=3)
