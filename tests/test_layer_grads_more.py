"""Backward of the merge, pooling, reshaping layers and TimeDistributed (issue #4).

Central differences in float64 (relative error <= 1e-6) for every layer and option, on random
inputs without ties; tie rules (Maximum/Minimum, GlobalMaxPooling1D) and a representative set of
layers against TensorFlow's GradientTape through the Keras 3.15.1 layers, in float32.
"""
import numpy as np
import pytest

from conftest import assert_close
from grad_check import check_layer, run

from attnlstm import layers
from attnlstm.engine.base import Layer

RNG = np.random.default_rng(7)


def randn(*shape):
    return RNG.standard_normal(shape)


def mask(rows):
    return np.array(rows, bool)


M_A = mask([[1, 1, 0, 1, 0], [0, 1, 1, 1, 1], [0, 0, 0, 0, 0]])
M_B = mask([[1, 0, 0, 1, 1], [1, 1, 1, 1, 1], [0, 1, 0, 0, 0]])


# ---------------------------------------------------------------------------------------------
# Merge layers: finite differences


MERGES = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"]

SHAPE_SETS = {
    "same": [(3, 5, 4), (3, 5, 4)],
    "bcast_last": [(3, 5, 4), (3, 5, 1)],     # size-1 axis broadcast
    "bcast_time": [(3, 1, 4), (3, 5, 4)],
    "lower_rank": [(3, 5, 4), (3, 4)],         # Keras aligns after the batch axis: (3, 1, 4)
    "rank2": [(3, 4), (3, 4)],
}


@pytest.mark.parametrize("name", MERGES)
@pytest.mark.parametrize("shapes", list(SHAPE_SETS), ids=list(SHAPE_SETS))
def test_merge_two_inputs(name, shapes):
    xs = [randn(*s) for s in SHAPE_SETS[shapes]]
    check_layer(getattr(layers, name)(dtype="float64"), [xs])


@pytest.mark.parametrize("name", [n for n in MERGES if n != "Subtract"])
def test_merge_three_inputs_broadcast(name):
    xs = [randn(3, 5, 4), randn(3, 1, 4), randn(3, 4)]
    check_layer(getattr(layers, name)(dtype="float64"), [xs])


@pytest.mark.parametrize("name", ["Multiply", "Maximum", "Minimum", "Add"])
@pytest.mark.parametrize("masks", [(M_A, M_B), (M_A, None), (None, M_B)],
                         ids=["both", "first", "second"])
def test_merge_masks(name, masks):
    xs = [randn(3, 5, 4), randn(3, 5, 4)]
    check_layer(getattr(layers, name)(dtype="float64"), [xs], {"mask": list(masks)})


@pytest.mark.parametrize("name", ["Multiply", "Maximum", "Minimum"])
def test_merge_masks_three_inputs(name):
    xs = [randn(3, 5, 4) for _ in range(3)]
    m_c = mask([[0, 0, 1, 1, 0], [1, 0, 1, 0, 1], [0, 0, 0, 0, 0]])
    check_layer(getattr(layers, name)(dtype="float64"), [xs], {"mask": [M_A, M_B, m_c]})


def test_multiply_with_zero_factor():
    # No division by the other factors: a zero input still gets the right gradient.
    a, b = randn(2, 3, 4), randn(2, 3, 4)
    a[0, 1] = 0.0
    check_layer(layers.Multiply(dtype="float64"), [[a, b, randn(2, 3, 4)]])


def test_merge_need_input_grad_false():
    layer = layers.Add(dtype="float64")
    out, ctx = run(layer, [[randn(2, 3), randn(2, 3)]])
    assert layer.backward(ctx, np.ones_like(out), need_input_grad=False).inputs is None


def test_merge_gradient_dtype_and_shapes():
    layer = layers.Maximum()
    xs = [randn(2, 5, 3).astype("float32"), randn(2, 3).astype("float32")]
    out, ctx = run(layer, [xs])
    g = layer.backward(ctx, np.ones_like(out)).inputs
    assert [gi.shape for gi in g] == [(2, 5, 3), (2, 3)]
    assert all(gi.dtype == np.float32 for gi in g)
    # Every output entry sends its gradient to exactly one input.
    np.testing.assert_allclose(g[0].sum() + g[1].sum(), out.size)


@pytest.mark.parametrize("axis", [-1, 1, 2, -2])
def test_concatenate(axis):
    a = randn(3, 4, 2)
    b = randn(3, 4, 5) if axis in (-1, 2) else randn(3, 6, 2)
    check_layer(layers.Concatenate(axis=axis, dtype="float64"), [[a, b, a.copy() * 0.5]])


def test_concatenate_with_masks():
    a, b = randn(3, 5, 2), randn(3, 5, 3)
    check_layer(layers.Concatenate(dtype="float64"), [[a, b]], {"mask": [M_A, None]})


DOT_CASES = [
    (1, [(4, 6), (4, 6)]),
    (-1, [(4, 6), (4, 6)]),
    (2, [(4, 5, 6), (4, 3, 6)]),
    ((1, 1), [(4, 5, 6), (4, 5, 3)]),
    ((2, 1), [(4, 5, 6), (4, 6, 3)]),
    ((1, 2), [(4, 5, 3), (4, 6, 5)]),
    ((3, 1), [(2, 3, 4, 5), (2, 5, 3)]),
]


@pytest.mark.parametrize("axes,shapes", DOT_CASES, ids=[str(c[0]) + str(c[1]) for c in DOT_CASES])
@pytest.mark.parametrize("normalize", [False, True])
def test_dot(axes, shapes, normalize):
    xs = [randn(*s) for s in shapes]
    check_layer(layers.Dot(axes, normalize=normalize, dtype="float64"), [xs])


def test_dot_normalize_clipped_scale():
    # A vector of norm < 1e-7 is scaled by the constant 1e7 (min(rsqrt(s), 1e7)): the gradient
    # is 1e7 * d there. Differences with a step far below the vector's size.
    x, y = randn(2, 4), randn(2, 4)
    x[1] *= 1e-9 / np.linalg.norm(x[1])
    layer = layers.Dot(1, normalize=True, dtype="float64")
    out, ctx = run(layer, [[x, y]])
    d = randn(*out.shape)
    gx = layer.backward(ctx, d).inputs[0]
    yn = y / np.linalg.norm(y, axis=1, keepdims=True)
    np.testing.assert_allclose(gx[1], 1e7 * d[1, 0] * yn[1], rtol=1e-12)
    eps = 1e-13
    for j in range(4):
        xp, xm = x.copy(), x.copy()
        xp[1, j] += eps
        xm[1, j] -= eps
        num = (np.sum(d * layer([xp, y])) - np.sum(d * layer([xm, y]))) / (2 * eps)
        assert abs(num - gx[1, j]) <= 1e-6 * np.max(np.abs(gx[1]))


# ---------------------------------------------------------------------------------------------
# Pooling


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("name", ["GlobalAveragePooling1D", "GlobalMaxPooling1D"])
def test_global_pooling(name, data_format, keepdims):
    layer = getattr(layers, name)(data_format=data_format, keepdims=keepdims, dtype="float64")
    check_layer(layer, [randn(3, 5, 4)])


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_average_pooling_mask(data_format, keepdims):
    # M_A has a fully masked sample: its output is 0 and its inputs get no gradient.
    layer = layers.GlobalAveragePooling1D(data_format=data_format, keepdims=keepdims,
                                          dtype="float64")
    x = randn(3, 5, 4) if data_format == "channels_last" else randn(3, 4, 5)
    check_layer(layer, [x], {"mask": M_A})
    out, ctx = run(layer, [x], {"mask": M_A})
    g = layer.backward(ctx, np.ones_like(out)).inputs
    assert np.all(out[2] == 0)
    assert np.all(g[2] == 0)
    masked = ~M_A[:, :, None] if data_format == "channels_last" else ~M_A[:, None, :]
    assert np.all(np.where(masked, g, 0) == 0)


def test_global_max_pooling_ties_split_equally():
    x = np.array([[[1.0, 2.0], [3.0, 2.0], [3.0, 0.0], [3.0, 2.0]]])
    layer = layers.GlobalMaxPooling1D(dtype="float64")
    out, ctx = run(layer, [x])
    g = layer.backward(ctx, np.array([[6.0, 3.0]])).inputs
    np.testing.assert_array_equal(g[0], [[0, 1], [2, 1], [2, 0], [2, 1]])


# ---------------------------------------------------------------------------------------------
# Reshaping


@pytest.mark.parametrize("shape", [(3, 4), (3, 4, 5), (2, 3, 4, 2)])
def test_flatten(shape):
    check_layer(layers.Flatten(dtype="float64"), [randn(*shape)])


@pytest.mark.parametrize("target", [(4, 5), (-1, 2), (20,)])
def test_reshape(target):
    check_layer(layers.Reshape(target, dtype="float64"), [randn(3, 5, 4)])


@pytest.mark.parametrize("dims", [(2, 1), (1, 2), (3, 1, 2), (2, 3, 1)])
def test_permute(dims):
    shape = (3, 4, 5) if len(dims) == 2 else (2, 3, 4, 5)
    check_layer(layers.Permute(dims, dtype="float64"), [randn(*shape)])


def test_repeat_vector():
    check_layer(layers.RepeatVector(4, dtype="float64"), [randn(3, 5)])


# ---------------------------------------------------------------------------------------------
# TimeDistributed


@pytest.mark.parametrize("activation", [None, "tanh", "softmax"])
def test_time_distributed_dense(activation):
    td = layers.TimeDistributed(layers.Dense(3, activation=activation, dtype="float64"),
                                dtype="float64")
    errs = check_layer(td, [randn(2, 5, 4)])
    assert set(errs) == {td.layer.kernel.path, td.layer.bias.path, "args[0]"}


def test_time_distributed_nested():
    inner = layers.Dense(3, activation="tanh", dtype="float64")
    td = layers.TimeDistributed(layers.TimeDistributed(inner, dtype="float64"), dtype="float64")
    errs = check_layer(td, [randn(2, 3, 4, 5)])
    assert inner.kernel.path in errs and inner.bias.path in errs


def test_time_distributed_of_reshaping_and_merge_free_layers():
    td = layers.TimeDistributed(layers.Flatten(dtype="float64"), dtype="float64")
    check_layer(td, [randn(2, 3, 4, 2)])
    td = layers.TimeDistributed(layers.RepeatVector(2, dtype="float64"), dtype="float64")
    check_layer(td, [randn(2, 3, 4)])


def test_time_distributed_dropout_training():
    drop = layers.Dropout(0.5, seed=1, dtype="float64")
    td = layers.TimeDistributed(drop, dtype="float64")

    def reset():
        drop._rng = np.random.default_rng(1)
    check_layer(td, [randn(2, 5, 4)], training=True, reset_rng=reset)


def test_time_distributed_weight_grads_only():
    td = layers.TimeDistributed(layers.Dense(3, dtype="float64"), dtype="float64")
    out, ctx = run(td, [randn(2, 5, 4)])
    g = td.backward(ctx, np.ones_like(out), need_input_grad=False)
    assert g.inputs is None
    assert set(g.weights) == {td.layer.kernel, td.layer.bias}


class _NoBackward(Layer):
    """A hand-written forward without a backward: not differentiable."""

    def call(self, inputs):
        return inputs * 2.0

    def forward(self, inputs):
        return self.call(inputs), None


class _AutogradDoubler(Layer):
    """Only `call`: gradients come from autograd (issue 15)."""

    def call(self, inputs):
        return inputs * 2.0


def test_time_distributed_inner_autograd_layer_trains_through():
    td = layers.TimeDistributed(_AutogradDoubler(name="ag_doubler"))
    x = randn(2, 3, 4).astype("float32")
    out, ctx = run(td, [x])
    np.testing.assert_allclose(out, 2 * x)
    g = td.backward(ctx, np.ones_like(out))
    np.testing.assert_allclose(g.inputs, np.full_like(x, 2.0))


def test_time_distributed_inner_without_backward():
    td = layers.TimeDistributed(_NoBackward(name="doubler"))
    x = randn(2, 3, 4).astype("float32")
    out, ctx = run(td, [x])
    np.testing.assert_allclose(out, 2 * x)  # inference still works
    with pytest.raises(NotImplementedError, match="_NoBackward 'doubler' has no backward"):
        td.backward(ctx, np.ones_like(out))
    nested = layers.TimeDistributed(layers.TimeDistributed(_NoBackward(name="inner_doubler")))
    out, ctx = run(nested, [randn(2, 3, 4, 2)])
    with pytest.raises(NotImplementedError, match="'inner_doubler' has no backward"):
        nested.backward(ctx, np.ones_like(out))


# ---------------------------------------------------------------------------------------------
# Keras 3.15.1 / TensorFlow GradientTape parity (float32)


def _tape_grads(keras_layer, inputs, d_out, masks=None, call_kwargs=None):
    """Gradients of sum(d_out * keras_layer(inputs)) w.r.t. the inputs (and trainable weights)."""
    import tensorflow as tf
    from keras.src import backend as kb

    single = not isinstance(inputs, list)
    xs = [inputs] if single else inputs
    vs = [tf.Variable(x) for x in xs]
    with tf.GradientTape() as tape:
        ts = [tf.identity(v) for v in vs]
        if masks is not None:
            for t, m in zip(ts, masks):
                if m is not None:
                    kb.set_keras_mask(t, tf.constant(m))
        out = keras_layer(ts[0] if single else ts, **(call_kwargs or {}))
        loss = tf.reduce_sum(out * d_out)
    weights = list(keras_layer.trainable_weights)
    grads = tape.gradient(loss, vs + weights)
    gx = [np.asarray(g) if g is not None else None for g in grads[:len(vs)]]
    gw = [np.asarray(g) for g in grads[len(vs):]]
    return (gx[0] if single else gx), gw, np.asarray(out)


def _f32(*shape):
    return RNG.standard_normal(shape).astype("float32")


def test_concatenate_grads_match_keras(keras):
    xs = [_f32(3, 4, 2), _f32(3, 4, 5), _f32(3, 4, 1)]
    ol = layers.Concatenate()
    out, ctx = run(ol, [xs])
    d = _f32(*out.shape)
    kg, _, kout = _tape_grads(keras.layers.Concatenate(), xs, d)
    assert_close(out, kout)
    assert_close(ol.backward(ctx, d).inputs, kg)


@pytest.mark.parametrize("axes,shapes", [(1, [(4, 6), (4, 6)]), ((2, 1), [(4, 5, 6), (4, 6, 3)]),
                                         ((1, 2), [(4, 5, 3), (4, 6, 5)])])
@pytest.mark.parametrize("normalize", [False, True])
def test_dot_grads_match_keras(keras, axes, shapes, normalize):
    xs = [_f32(*s) for s in shapes]
    ol = layers.Dot(axes, normalize=normalize)
    out, ctx = run(ol, [xs])
    d = _f32(*out.shape)
    kg, _, kout = _tape_grads(keras.layers.Dot(axes, normalize=normalize), xs, d)
    assert_close(out, kout)
    assert_close(ol.backward(ctx, d).inputs, kg)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_average_pooling_mask_grads_match_keras(keras, keepdims, data_format):
    # No fully masked sample here: Keras gives NaN (0/0) for those, we give 0 (tested above).
    x = _f32(3, 5, 4) if data_format == "channels_last" else _f32(3, 4, 5)
    m = mask([[1, 1, 0, 1, 0], [0, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    kw = dict(keepdims=keepdims, data_format=data_format)
    ol = layers.GlobalAveragePooling1D(**kw)
    out, ctx = run(ol, [x], {"mask": m})
    d = _f32(*out.shape)
    kg, _, kout = _tape_grads(keras.layers.GlobalAveragePooling1D(**kw), x, d,
                              call_kwargs={"mask": m})
    assert_close(out, kout)
    assert_close(ol.backward(ctx, d).inputs, kg)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_global_max_pooling_ties_match_keras(keras, data_format):
    # Integers: many exact ties along time, including all-equal columns.
    x = RNG.integers(0, 3, size=(3, 6, 4)).astype("float32")
    x[0, :, 0] = 2.0
    ol = layers.GlobalMaxPooling1D(data_format=data_format)
    out, ctx = run(ol, [x])
    d = _f32(*out.shape)
    kg, _, kout = _tape_grads(keras.layers.GlobalMaxPooling1D(data_format=data_format), x, d)
    assert_close(out, kout)
    ours = ol.backward(ctx, d).inputs
    assert_close(ours, kg)
    assert np.count_nonzero(kg) > out.size  # the case really has ties


@pytest.mark.parametrize("name", ["Maximum", "Minimum"])
@pytest.mark.parametrize("with_masks", [False, True])
def test_maximum_minimum_ties_match_keras(keras, name, with_masks):
    # Integer values: ties between inputs everywhere; TF sends a tie's gradient to the first
    # operand of each pairwise maximum/minimum (the running output).
    xs = [RNG.integers(0, 3, size=(3, 5, 4)).astype("float32") for _ in range(3)]
    m_c = mask([[0, 0, 1, 1, 0], [1, 0, 1, 0, 1], [0, 0, 0, 0, 0]])
    masks = [M_A, M_B, m_c] if with_masks else None
    ol = getattr(layers, name)()
    out, ctx = run(ol, [xs], {"mask": masks} if with_masks else {})
    d = _f32(*out.shape)
    kg, _, kout = _tape_grads(getattr(keras.layers, name)(), xs, d, masks=masks)
    assert_close(out, kout)
    assert_close(ol.backward(ctx, d).inputs, kg)


def test_multiply_masks_grads_match_keras(keras):
    xs = [_f32(3, 5, 4), _f32(3, 5, 4)]
    ol = layers.Multiply()
    out, ctx = run(ol, [xs], {"mask": [M_A, M_B]})
    d = _f32(*out.shape)
    kg, _, kout = _tape_grads(keras.layers.Multiply(), xs, d, masks=[M_A, M_B])
    assert_close(out, kout)
    assert_close(ol.backward(ctx, d).inputs, kg)


@pytest.mark.parametrize("activation", [None, "softmax"])
def test_time_distributed_dense_grads_match_keras(keras, activation):
    x = _f32(3, 7, 4)
    kl = keras.layers.TimeDistributed(keras.layers.Dense(5, activation=activation))
    kl(x)
    ol = layers.TimeDistributed(layers.Dense(5, activation=activation))
    ol(x)
    ol.set_weights(kl.get_weights())
    out, ctx = run(ol, [x])
    d = _f32(*out.shape)
    kg, kgw, kout = _tape_grads(kl, x, d)
    assert_close(out, kout)
    g = ol.backward(ctx, d)
    assert_close(g.inputs, kg)
    assert [w.name for w in kl.trainable_weights] == ["kernel", "bias"]
    assert_close([g.weights[ol.layer.kernel], g.weights[ol.layer.bias]], kgw)


# ---------------------------------------------------------------------------------------------
# Through a Model: the layers chained, with a Keras mask from Masking reaching the pooling


def test_model_through_the_layers():
    from attnlstm import Input, Model

    f64 = dict(dtype="float64")
    a, b = Input((5, 4), **f64), Input((5, 4), **f64)
    h1 = layers.TimeDistributed(layers.Dense(3, activation="tanh", **f64), **f64)(a)
    h2 = layers.Dense(3, **f64)(layers.Masking(**f64)(b))
    p = layers.GlobalAveragePooling1D(**f64)(h2)                       # masked mean
    q = layers.GlobalMaxPooling1D(**f64)(layers.Concatenate(**f64)([h1, h2]))
    mx = layers.Maximum(**f64)([p, layers.Dense(3, **f64)(q)])
    r = layers.Flatten(**f64)(layers.RepeatVector(2, **f64)(mx))
    o = layers.Dot(1, normalize=True, **f64)([layers.Dense(4, **f64)(r), layers.Dense(4, **f64)(q)])
    m = Model([a, b], o)
    xa, xb = randn(3, 5, 4), randn(3, 5, 4)
    xb[1, 3:] = 0.0  # padded steps of sample 1
    R = randn(3, 1)

    def loss():
        return float(np.sum(m.forward([xa, xb])[0] * R))

    out, tape = m.forward([xa, xb])
    g = m.backward(tape, R)
    assert len(g.weights) == len(m.trainable_weights)

    def fd(arr, idx, eps=1e-6):
        old = arr.flat[idx]
        arr.flat[idx] = old + eps
        lp = loss()
        arr.flat[idx] = old - eps
        lm = loss()
        arr.flat[idx] = old
        return (lp - lm) / (2 * eps)

    checks = [(v.value, gv) for v, gv in g.weights.items()] + [(xa, g.inputs[0])]
    for arr, grad in checks:
        num = np.array([fd(arr, i) for i in range(arr.size)])
        scale = max(np.max(np.abs(num)), np.max(np.abs(grad)), 1e-12)
        assert np.max(np.abs(num - np.ravel(grad))) / scale <= 1e-6
    # xb: only unpadded entries (perturbing a padded step would unmask it); padded ones get 0.
    live = np.flatnonzero(np.broadcast_to(np.any(xb != 0, -1, keepdims=True), xb.shape))
    num = np.array([fd(xb, i) for i in live])
    gb = np.ravel(g.inputs[1])
    assert np.max(np.abs(num - gb[live])) / max(np.max(np.abs(num)), 1e-12) <= 1e-6
    assert np.all(g.inputs[1][1, 3:] == 0)


def test_channels_first_mask_is_checked_against_the_time_axis():
    from attnlstm import ShapeError

    layer = layers.GlobalAveragePooling1D(data_format="channels_first")
    x = _f32(3, 4, 5)  # (B, F, T)
    layer(x, mask=np.ones((3, 5), bool))
    with pytest.raises(ShapeError, match=r"`mask` must have shape \(3, 5\), got \(3, 4\)"):
        layer(x, mask=np.ones((3, 4), bool))
