"""Every documented shape mistake: a ShapeError (a ValueError) whose message names the layer, the
argument, the expected and received shapes and, where a known mistake matches, a Hint."""
import re

import numpy as np
import pytest

import attnlstm
from attnlstm import Input, Model, Sequential, ShapeError, layers


def raises(match, fn, layer_type=None):
    """Run fn, check the ShapeError's message and attributes; return the error."""
    with pytest.raises(ValueError, match=match) as info:
        fn()
    err = info.value
    assert isinstance(err, attnlstm.ShapeError), type(err)
    if layer_type is not None:
        assert type(err.layer).__name__ == layer_type, err.layer
    assert err.expected is not None and err.got is not None
    assert err.argument
    return err


def test_issue_example_verbatim():
    err = raises(r"^LSTM 'lstm(_\d+)?': `inputs` must have shape \(batch, timesteps, features\), "
                 r"got \(None, 8\)\.\nHint: the previous LSTM 'lstm(_\d+)?' returns only its last "
                 r"output; pass return_sequences=True to it\.$",
                 lambda: layers.LSTM(8)(layers.LSTM(8)(Input((20, 5)))), "LSTM")
    outer, inner = re.findall(r"'(lstm(?:_\d+)?)'", str(err))
    assert outer != inner and err.layer.name == outer
    assert err.expected == ("batch", "timesteps", "features") and err.got == (None, 8)
    assert err.argument == "inputs"
    assert "return_sequences=True" in err.hint


def test_2d_array_into_lstm():
    err = raises(r"LSTM '.*': `inputs` must have shape \(batch, timesteps, features\), got \(4, 12\)"
                 r"\.\nHint: an LSTM reads whole sequences; add a time axis, e.g\. x\[:, None, :\]\.",
                 lambda: layers.LSTM(8)(np.zeros((4, 12))), "LSTM")
    assert err.got == (4, 12)


def test_2d_array_into_ops_lstm():
    err = raises(r"ops\.lstm: `x` must have shape \(batch, timesteps, features\), got \(2, 3\)",
                 lambda: attnlstm.ops.lstm(np.zeros((2, 3)), np.zeros((3, 16)), np.zeros((4, 16))))
    assert err.layer == "ops.lstm"


def test_input_without_time_axis_into_lstm():
    err = raises(r"got \(None, 10\)\.\nHint: Input\(shape=\(10,\)\) has no time axis; use "
                 r"Input\(shape=\(timesteps, 10\)\), or Input\(shape=\(None, 10\)\)",
                 lambda: layers.LSTM(8)(Input(shape=(10,))), "LSTM")
    assert err.got == (None, 10)


@pytest.mark.parametrize("make", [
    lambda: layers.TimeDistributed(layers.Dense(3)),
    lambda: layers.GlobalAveragePooling1D(),
    lambda: layers.Masking(),
], ids=["TimeDistributed", "GlobalAveragePooling1D", "Masking"])
def test_sequence_layer_after_lstm_without_return_sequences(make):
    x = Input((20, 5))
    prev = layers.LSTM(8, name="encoder_last")
    h = prev(x)
    layer = make()
    err = raises(r"got \(None, 8\)\.\nHint: .*'encoder_last'.*return_sequences=True",
                 lambda: layer(h), type(layer).__name__)
    assert err.got == (None, 8)


def test_sequence_into_repeat_vector_names_the_lstm():
    x = Input((20, 5))
    h = layers.LSTM(8, return_sequences=True, name="enc_seq")(x)
    err = raises(r"RepeatVector '.*': `inputs` must have shape \(batch, features\), got "
                 r"\(None, 20, 8\)\.\nHint: the previous LSTM 'enc_seq' returns the whole sequence "
                 r"\(return_sequences=True\); set return_sequences=False, or reduce the time axis",
                 lambda: layers.RepeatVector(3)(h), "RepeatVector")
    assert err.expected == ("batch", "features")


def test_sequence_input_into_repeat_vector():
    raises(r"got \(None, 20, 5\)\.\nHint: Input\(shape=\(20, 5\)\) gives sequences .* one vector "
           r"per sample",
           lambda: layers.RepeatVector(3)(Input((20, 5))), "RepeatVector")


def test_dense_after_lstm_sequences_into_repeat_vector():
    """Dense keeps the time axis (as Keras), so the mistake surfaces at RepeatVector."""
    x = Input((20, 5))
    d = layers.Dense(4)(layers.LSTM(8, return_sequences=True)(x))
    assert d.shape == (None, 20, 4)
    raises(r"RepeatVector '.*': `inputs` must have shape \(batch, features\), got \(None, 20, 4\)",
           lambda: layers.RepeatVector(3)(d), "RepeatVector")


@pytest.mark.parametrize("how", ["Input", "input_shape"])
def test_batch_size_inside_input_shape(how):
    if how == "Input":
        fn = lambda: layers.LSTM(8)(Input((32, 20, 5)))  # noqa: E731
    else:
        fn = lambda: Sequential([layers.LSTM(8, input_shape=(32, 20, 5))])  # noqa: E731
    err = raises(r"got \(None, 32, 20, 5\)\.\nHint: Input `shape` .*excludes the batch axis: use "
                 r"Input\(shape=\(20, 5\), batch_size=32\)", fn, "LSTM")
    assert err.got == (None, 32, 20, 5)


def test_concatenate_sequences_of_different_lengths():
    err = raises(r"Concatenate '.*': `inputs` must have matching shapes except on the concatenation "
                 r"axis -1, got \[\(None, 20, 8\), \(None, 25, 8\)\] \(axis 1: 20 != 25\)\.\nHint: "
                 r"these are sequences of different lengths \(20 and 25 timesteps\)",
                 lambda: layers.Concatenate()([Input((20, 8)), Input((25, 8))]), "Concatenate")
    assert err.got == [(None, 20, 8), (None, 25, 8)]


def test_add_sequences_of_different_lengths():
    raises(r"Add '.*': `inputs` have incompatible shapes \[\(None, 20, 8\), \(None, 25, 8\)\].*"
           r"\nHint: these are sequences of different lengths",
           lambda: layers.Add()([Input((20, 8)), Input((25, 8))]), "Add")


def test_merge_layers_need_lists_and_one_batch():
    raises(r"`inputs` must be a list of at least 1 tensors, got a single tensor of shape "
           r"\(2, 3\)\.\nHint: call it on a list", lambda: layers.Add()(np.zeros((2, 3))), "Add")
    raises(r"`inputs` must have the same batch size, got shapes \[\(2, 3\), \(3, 3\)\]",
           lambda: layers.Multiply()([np.zeros((2, 3)), np.zeros((3, 3))]), "Multiply")
    raises(r"`inputs` must have the same batch size",
           lambda: layers.Dot(1)([np.zeros((2, 3)), np.zeros((3, 3))]), "Dot")
    raises(r"equal sizes on the dot axes \(1, 1\), got 4 != 5",
           lambda: layers.Dot(1)([Input((4,)), Input((5,))]), "Dot")


def _built_lstm(D=3, H=4, **kw):
    layer = layers.LSTM(H, **kw)
    layer.build((None, None, D))
    return layer


def test_set_weights_wrong_number():
    layer = _built_lstm()
    err = raises(r"`set_weights` got a list of 1 arrays, but the layer has 3 weights \['kernel', "
                 r"'recurrent_kernel', 'bias'\] with shapes \[\(3, 16\), \(4, 16\), \(16,\)\]; got "
                 r"shapes \[\(3, 16\)\]", lambda: layer.set_weights([np.zeros((3, 16))]), "LSTM")
    assert err.expected == [(3, 16), (4, 16), (16,)] and err.got == [(3, 16)]
    raises(r"the layer has 2 weights", lambda: _built_lstm(use_bias=False).set_weights(
        [np.zeros((3, 16)), np.zeros((4, 16)), np.zeros(16)]), "LSTM")


def test_set_weights_wrong_shapes_lists_all_and_spots_transposes():
    layer = _built_lstm()
    err = raises(r"`set_weights`: 'kernel' must have shape \(3, 16\), got \(16, 3\); 'bias' must "
                 r"have shape \(16,\), got \(15,\)\.\nHint: the array looks transposed",
                 lambda: layer.set_weights([np.zeros((16, 3)), np.zeros((4, 16)), np.zeros(15)]),
                 "LSTM")
    assert err.got == [(16, 3), (15,)]
    before = layer.get_weights()
    # Nothing was assigned.
    for a, b in zip(before, layer.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_set_weights_unbuilt_layer_hint():
    raises(r"has 0 weights.*\nHint: the layer is not built yet",
           lambda: layers.Dense(3).set_weights([np.zeros((3, 3))]), "Dense")


def test_model_set_weights_wrong_number():
    x = Input((20, 5))
    model = Model(x, layers.Dense(2)(layers.LSTM(4)(x)))
    w = model.get_weights()
    raises(r"got a list of 4 arrays, but the layer has 5 weights",
           lambda: model.set_weights(w[:-1]), "Model")
    raises(r"'bias' must have shape \(2,\), got \(3,\)",
           lambda: model.set_weights(w[:-1] + [np.zeros(3)]), "Model")


def test_initial_state_wrong_units_symbolic():
    x = Input((20, 5))
    err = raises(r"`initial_state\[0\]` must have shape \(batch, 4\), got \(None, 3\)\.\nHint: the "
                 r"states must have this LSTM's units \(4\); they have 3",
                 lambda: layers.LSTM(4)(x, initial_state=[Input((3,)), Input((4,))]), "LSTM")
    assert err.argument == "initial_state[0]" and err.expected == ("batch", 4)


def test_initial_state_sequence_passed_as_state():
    x = Input((20, 5))
    seq = layers.LSTM(4, return_sequences=True)(x)
    raises(r"`initial_state\[0\]` must have shape \(batch, 4\), got \(None, 20, 4\)\.\nHint: that is "
           r"a sequence; pass final states, e\.g\. from LSTM\(\.\.\., return_state=True\)",
           lambda: layers.LSTM(4)(x, initial_state=[seq, seq]), "LSTM")


def test_initial_state_wrong_count_and_batch_eager():
    x = np.zeros((2, 20, 5), "float32")
    raises(r"`initial_state` must be a list \[h, c\] of two \(2, 4\) tensors, got 1: \[\(2, 4\)\]"
           r"\.\nHint: an LSTM has two states",
           lambda: layers.LSTM(4)(x, initial_state=np.zeros((2, 4))), "LSTM")
    err = raises(r"`initial_state\[1\]` must have shape \(2, 4\), got \(3, 4\)",
                 lambda: layers.LSTM(4)(x, initial_state=[np.zeros((2, 4)), np.zeros((3, 4))]),
                 "LSTM")
    assert err.got == (3, 4) and err.expected == (2, 4)


@pytest.mark.parametrize("mask_shape,hint", [
    ((2, 19), r"the mask has 19 timesteps but the inputs have 20"),
    ((2, 20, 5), r"a time mask has one entry per \(sample, timestep\)"),
    ((2, 20, 1), r"drop the trailing axis of size 1"),
    ((3, 20), None),
])
def test_mask_shape_mismatch(mask_shape, hint):
    x = np.zeros((2, 20, 5), "float32")
    pattern = r"LSTM '.*': `mask` must have shape \(2, 20\), got " + \
        re.escape(attnlstm.errors.format_shape(mask_shape))
    if hint:
        pattern += r"\.\nHint: " + hint
    err = raises(pattern, lambda: layers.LSTM(4)(x, mask=np.ones(mask_shape, bool)), "LSTM")
    assert err.argument == "mask"


def test_mask_shape_mismatch_symbolic():
    x = Input((20, 5))
    m = Input((19,), dtype="bool")
    raises(r"`mask` must have shape \(batch, 20\), got \(None, 19\)",
           lambda: layers.LSTM(4)(x, mask=m), "LSTM")


def test_softmax_mask_not_broadcastable():
    raises(r"Softmax '.*': `mask` must have shape \(2, 3, 4\), got \(2, 5\)\.\nHint: each mask axis "
           r"must be 1 or match", lambda: layers.Softmax()(np.zeros((2, 3, 4)), mask=np.ones((2, 5))),
           "Softmax")


def test_dense_built_for_other_features():
    d = layers.Dense(3)
    d(np.zeros((2, 4)))
    err = raises(r"Dense '.*': `inputs` must have shape \(batch, \.\.\., 4\), got \(2, 5\)\.\nHint: "
                 r"this Dense was built for 4 input features",
                 lambda: d(np.zeros((2, 5))), "Dense")
    assert err.expected == ("batch", "...", 4)
    raises(r"this Dense was built for 4 input features", lambda: d(Input((7, 5))), "Dense")


def test_lstm_built_for_other_features():
    layer = _built_lstm(D=3)
    raises(r"LSTM '.*': `inputs` must have shape \(batch, timesteps, 3\), got \(2, 7, 5\)\.\nHint: "
           r"this LSTM was built for 3 features", lambda: layer(np.zeros((2, 7, 5))), "LSTM")


def test_predict_with_wrongly_shaped_input():
    x = Input((20, 5), name="frames")
    model = Model(x, layers.LSTM(4)(x))
    err = raises(r"Model '.*': `inputs` \(Input 'frames'\) must have shape \(batch, 20, 5\), got "
                 r"\(2, 20, 6\)\.\nHint: the Input 'frames' was declared with 5 features",
                 lambda: model.predict(np.zeros((2, 20, 6))), "Model")
    assert err.got == (2, 20, 6)
    raises(r"got \(2, 20\)\.\nHint: the model reads sequences \(batch, timesteps, features\); add a "
           r"time axis", lambda: model.predict(np.zeros((2, 20))), "Model")
    raises(r"got \(2, 21, 5\)", lambda: model.predict(np.zeros((2, 21, 5))), "Model")


def test_predict_several_inputs_errors():
    a, b = Input((20, 5), name="a"), Input((3,), name="b")
    model = Model([a, b], layers.Concatenate()([layers.LSTM(4)(a), b]))
    raises(r"`inputs\[1\]` \(Input 'b'\) must have shape \(batch, 3\), got \(2, 4\)",
           lambda: model.predict([np.zeros((2, 20, 5)), np.zeros((2, 4))]), "Model")
    with pytest.raises(ValueError, match=r"has 2 inputs \['a', 'b'\]; pass a list of arrays"):
        model.predict(np.zeros((2, 20, 5)))
    with pytest.raises(ValueError, match=r"all inputs must have the same number of samples"):
        model.predict([np.zeros((2, 20, 5)), np.zeros((3, 3))])
    single = Model(a, layers.LSTM(4)(a))
    with pytest.raises(ValueError, match=r"expects 1 input \['a'\], but it received a list of 2"):
        single.predict([np.zeros((2, 20, 5)), np.zeros((2, 20, 5))])


def test_sequential_add_raises_at_add_time():
    model = Sequential([Input((20, 5)), layers.LSTM(4, name="first")])
    bad = layers.LSTM(3)
    raises(r"LSTM '.*': `inputs` must have shape \(batch, timesteps, features\), got \(None, 4\)"
           r"\.\nHint: the previous LSTM 'first' returns only its last output",
           lambda: model.add(bad), "LSTM")
    model2 = Sequential([layers.Dense(4, input_shape=(20, 5))])
    raises(r"RepeatVector '.*': `inputs` must have shape \(batch, features\), got \(None, 20, 4\)",
           lambda: model2.add(layers.RepeatVector(2)), "RepeatVector")


def test_stateful_lstm_needs_fixed_batch():
    raises(r"`inputs` must have shape \(batch \(fixed\), timesteps, 5\), got \(None, 20, 5\)\.\n"
           r"Hint: a stateful LSTM keeps one state per sample",
           lambda: layers.LSTM(4, stateful=True)(Input((20, 5))), "LSTM")
    layer = layers.LSTM(4, stateful=True)
    layer(np.zeros((2, 3, 5)))
    raises(r"`inputs` must have shape \(2, timesteps, 5\), got \(3, 3, 5\)\.\nHint: a stateful "
           r"LSTM needs the same batch size", lambda: layer(np.zeros((3, 3, 5))), "LSTM")


def test_lstm_other_rank_and_empty_time():
    raises(r"got \(2, 3, 4, 5\)\.\nHint: the inputs have one axis too many",
           lambda: layers.LSTM(3)(np.zeros((2, 3, 4, 5))), "LSTM")
    raises(r"`inputs` must have shape \(batch, timesteps >= 1, 4\), got \(2, 0, 4\)\.\nHint: an "
           r"LSTM needs at least one timestep", lambda: layers.LSTM(3)(np.zeros((2, 0, 4))), "LSTM")
    raises(r"Hint: an LSTM takes one sequence tensor; pass initial states as initial_state",
           lambda: layers.LSTM(3)([np.zeros((2, 3, 4)), np.zeros((2, 3))]), "LSTM")
    raises(r"the feature axis of an LSTM input must have a known size",
           lambda: layers.LSTM(3)(Input((None, None))), "LSTM")


def test_reshaping_layer_errors():
    raises(r"Reshape '.*': `inputs` of shape \(None, 20, 5\) \(100 values per sample\) cannot be "
           r"reshaped to \(7,\) \(7 values\)", lambda: layers.Reshape((7,))(Input((20, 5))),
           "Reshape")
    raises(r"100 is not a multiple of 3", lambda: layers.Reshape((-1, 3))(Input((20, 5))), "Reshape")
    raises(r"Permute '.*': `inputs` must have shape \(batch, d1, d2\), got \(2, 3\)",
           lambda: layers.Permute((2, 1))(np.zeros((2, 3))), "Permute")
    raises(r"TimeDistributed '.*': `inputs` must have shape \(batch, timesteps, \.\.\.\), got \(2, 3\)",
           lambda: layers.TimeDistributed(layers.Dense(3))(np.zeros((2, 3))), "TimeDistributed")


def test_errors_are_raised_from_none():
    """Users read one message: no chained internal traceback."""
    with pytest.raises(ShapeError) as info:
        layers.LSTM(8)(layers.LSTM(8)(Input((20, 5))))
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_no_weights_made_after_a_shape_error():
    layer = layers.LSTM(4)
    with pytest.raises(ShapeError):
        layer(np.zeros((2, 5)))
    assert not layer.built and layer.weights == []
