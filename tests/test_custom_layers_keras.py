"""Keras 3 custom layers written with ``keras.ops`` run in attnlstm with only the imports changed
(issue 15): the examples of Keras' guide "Making new layers and models via subclassing" and four
custom attention layers. Each class is written once (``define``) and instantiated with Keras'
modules and with attnlstm's. Same outputs as Keras 3 with the same weights (float32), float64
gradients equal to tf.GradientTape's and to central finite differences, and training with fit."""
import math

import numpy as np
import pytest

import attnlstm
from attnlstm import ShapeError

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")


def define(Layer, Model, layers, ops):
    """The custom layers, as a Keras user writes them (only the modules are parameters)."""

    class Linear(Layer):                      # Keras guide: a layer with add_weight
        def __init__(self, units=32, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], self.units),
                                     initializer="random_normal", trainable=True)
            self.b = self.add_weight(shape=(self.units,), initializer="zeros", trainable=True)

        def call(self, inputs):
            return ops.matmul(inputs, self.w) + self.b

    class MLPBlock(Layer):                    # Keras guide: layers made of layers
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.linear_1 = Linear(8)
            self.linear_2 = Linear(8)
            self.linear_3 = Linear(1)

        def call(self, inputs):
            x = self.linear_1(inputs)
            x = ops.relu(x)
            x = self.linear_2(x)
            x = ops.relu(x)
            return self.linear_3(x)

    class ActivityRegularizationLayer(Layer):  # Keras guide: add_loss in call
        def __init__(self, rate=1e-2, **kwargs):
            super().__init__(**kwargs)
            self.rate = rate

        def call(self, inputs):
            self.add_loss(self.rate * ops.mean(ops.square(inputs)))
            return inputs

    class SelfAttention(Layer):               # dot-product self-attention, Dense query
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.query = None

        def build(self, input_shape):
            self.query = layers.Dense(input_shape[-1], use_bias=False)

        def call(self, x):
            q = self.query(x)
            scores = ops.matmul(q, ops.transpose(x, (0, 2, 1))) / math.sqrt(x.shape[-1])
            weights = ops.softmax(scores, axis=-1)
            return ops.matmul(weights, x)

    class BahdanauAttention(Layer):           # W1/W2/V Dense, 2-D query and a sequence
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.W1 = layers.Dense(units)
            self.W2 = layers.Dense(units)
            self.V = layers.Dense(1)

        def call(self, inputs):
            query, values = inputs
            query_with_time_axis = ops.expand_dims(query, 1)
            score = self.V(ops.tanh(self.W1(query_with_time_axis) + self.W2(values)))
            attention_weights = ops.softmax(score, axis=1)
            context_vector = ops.sum(attention_weights * values, axis=1)
            return context_vector

    class MultiHeadSelfAttention(Layer):      # reshape + einsum + softmax(s / sqrt(depth))
        def __init__(self, d_model, num_heads, **kwargs):
            super().__init__(**kwargs)
            self.num_heads = num_heads
            self.d_model = d_model
            self.depth = d_model // num_heads
            self.wq = layers.Dense(d_model)
            self.wk = layers.Dense(d_model)
            self.wv = layers.Dense(d_model)
            self.dense = layers.Dense(d_model)

        def split_heads(self, x, batch_size):
            x = ops.reshape(x, (batch_size, -1, self.num_heads, self.depth))
            return ops.transpose(x, (0, 2, 1, 3))

        def call(self, x):
            batch_size = ops.shape(x)[0]
            q = self.split_heads(self.wq(x), batch_size)
            k = self.split_heads(self.wk(x), batch_size)
            v = self.split_heads(self.wv(x), batch_size)
            scores = ops.einsum("bhqd,bhkd->bhqk", q, k) / ops.sqrt(
                ops.cast(self.depth, x.dtype))
            weights = ops.softmax(scores, axis=-1)
            out = ops.einsum("bhqk,bhkd->bhqd", weights, v)
            out = ops.transpose(out, (0, 2, 1, 3))
            out = ops.reshape(out, (batch_size, -1, self.d_model))
            return self.dense(out)

    class AttentionPooling(Layer):            # attention pooling from add_weight kernels
        def __init__(self, units=4, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape):
            self.W = self.add_weight(name="W", shape=(input_shape[-1], self.units),
                                     initializer="glorot_uniform")
            self.b = self.add_weight(name="b", shape=(self.units,), initializer="zeros")
            self.u = self.add_weight(name="u", shape=(self.units, 1),
                                     initializer="glorot_uniform")

        def call(self, x):
            e = ops.tanh(ops.matmul(x, self.W) + self.b)
            a = ops.softmax(ops.matmul(e, self.u), axis=1)
            return ops.sum(a * x, axis=1)

    class TinyModel(Model):                   # Keras 3 subclassed model
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.pool = AttentionPooling(4)
            self.block = MLPBlock()

        def call(self, inputs):
            return self.block(self.pool(inputs))

    return dict(Linear=Linear, MLPBlock=MLPBlock, ActivityRegularizationLayer=ActivityRegularizationLayer,
                SelfAttention=SelfAttention, BahdanauAttention=BahdanauAttention,
                MultiHeadSelfAttention=MultiHeadSelfAttention, AttentionPooling=AttentionPooling,
                TinyModel=TinyModel)


def both():
    import keras
    from keras import layers as klayers
    from keras import ops as kops
    from attnlstm import layers, ops
    return (define(keras.layers.Layer, keras.Model, klayers, kops),
            define(attnlstm.Layer, attnlstm.Model, layers, ops))


B, T, D = 3, 5, 4
RNG = np.random.default_rng(7)

# name -> (constructor args, inputs)
CASES = {
    "Linear": ((3,), lambda: RNG.normal(size=(B, D))),
    "MLPBlock": ((), lambda: RNG.normal(size=(B, D))),
    "ActivityRegularizationLayer": ((), lambda: RNG.normal(size=(B, D))),
    "SelfAttention": ((), lambda: RNG.normal(size=(B, T, D))),
    "BahdanauAttention": ((6,), lambda: [RNG.normal(size=(B, 3)), RNG.normal(size=(B, T, D))]),
    "MultiHeadSelfAttention": ((4, 2), lambda: RNG.normal(size=(B, T, D))),
    "AttentionPooling": ((4,), lambda: RNG.normal(size=(B, T, D))),
}


def _cast(x, dt):
    return [np.asarray(v, dt) for v in x] if isinstance(x, list) else np.asarray(x, dt)


def _pair(name, dtype):
    # Keras' initial weights seeded: a ReLU unit sitting exactly at its kink (MLPBlock's zero
    # biases make that happen for ~1 in 40 random draws) has no finite-difference derivative.
    keras.utils.set_random_seed(1)
    global RNG
    RNG = np.random.default_rng(sum(map(ord, name)))   # the same inputs whatever runs first
    kdefs, adefs = both()
    args, make_x = CASES[name]
    x = _cast(make_x(), dtype)
    k = kdefs[name](*args, dtype=dtype)
    a = adefs[name](*args, dtype=dtype)
    ky = k(x)
    a(x)
    assert len(a.weights) == len(k.weights), [w.path for w in a.weights]
    a.set_weights([np.asarray(w) for w in k.get_weights()])
    return k, a, x, np.asarray(ky)


@pytest.mark.parametrize("name", sorted(CASES))
def test_outputs_match_keras_float32(name):
    k, a, x, ky = _pair(name, "float32")
    ay = a(x)
    assert isinstance(ay, np.ndarray) and ay.dtype == np.float32
    np.testing.assert_allclose(ay, ky, rtol=1e-4, atol=1e-6)
    if name == "ActivityRegularizationLayer":
        np.testing.assert_allclose(a.losses, [float(v) for v in k.losses], rtol=1e-5)


@pytest.fixture
def float64():
    attnlstm.backend.set_floatx("float64")
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    yield
    attnlstm.backend.set_floatx("float32")
    keras.config.set_floatx("float32")
    keras.config.set_dtype_policy("float32")


def _tape(k, x, G):
    xs = x if isinstance(x, list) else [x]
    vs = [tf.Variable(v) for v in xs]
    with tf.GradientTape() as tape:
        y = k(vs if isinstance(x, list) else vs[0])
        loss = tf.reduce_sum(y * G) + sum(k.losses)
    gx, gw = tape.gradient(loss, [vs, [w.value for w in k.trainable_weights]])
    return [np.asarray(g) for g in gx], [np.asarray(g) for g in gw]


@pytest.mark.parametrize("name", sorted(CASES))
def test_float64_gradients_match_tape_and_finite_differences(name, float64):
    k, a, x, ky = _pair(name, "float64")
    G = RNG.normal(size=ky.shape)
    out, ctx = a.forward(x)
    g = a.backward(ctx, G)
    a_gx = g.inputs if isinstance(x, list) else [g.inputs]
    a_gw = [g.weights[w] for w in a.trainable_weights]
    t_gx, t_gw = _tape(k, x, G)
    for ga, gt in zip(a_gx + a_gw, t_gx + t_gw):
        np.testing.assert_allclose(ga, gt, rtol=1e-6, atol=1e-9)

    def loss():
        y = a(x)
        return float(np.sum(y * G) + sum(a.losses))
    xs = x if isinstance(x, list) else [x]
    for arr, ga in list(zip(xs, a_gx)) + [(w.value, gw) for w, gw in zip(a.trainable_weights, a_gw)]:
        num = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            old = arr[idx]
            arr[idx] = old + 1e-6
            lp = loss()
            arr[idx] = old - 1e-6
            lm = loss()
            arr[idx] = old
            num[idx] = (lp - lm) / 2e-6
        scale = max(np.abs(num).max(), 1e-3)
        assert np.abs(ga - num).max() / scale < 1e-6


@pytest.mark.parametrize("name", ["SelfAttention", "BahdanauAttention", "MultiHeadSelfAttention",
                                  "AttentionPooling", "MLPBlock"])
def test_custom_layer_trains_with_fit(name):
    from attnlstm import Input, Model, layers
    _, adefs = both()
    args, make_x = CASES[name]
    x = make_x()
    xs = x if isinstance(x, list) else [x]
    xs = [np.repeat(v, 20, axis=0).astype("float32") + 0.1 * RNG.normal(size=(60,) + v.shape[1:])
          .astype("float32") for v in xs]
    ins = [Input(v.shape[1:]) for v in xs]
    layer = adefs[name](*args)
    h = layer(ins if len(ins) > 1 else ins[0])
    if len(h.shape) == 3:
        h = layers.GlobalAveragePooling1D()(h)
    y = layers.Dense(1)(h)
    m = Model(ins if len(ins) > 1 else ins[0], y)
    target = xs[-1].reshape(len(xs[-1]), -1).mean(1, keepdims=True) * 3
    m.compile(attnlstm.optimizers.Adam(0.01), "mse")
    before = [w.numpy() for w in layer.trainable_weights]
    assert before and len(m.trainable_weights) == len(before) + 2
    hist = m.fit(xs if len(xs) > 1 else xs[0], target, epochs=15, batch_size=20, verbose=0)
    assert hist.history["loss"][-1] < 0.7 * hist.history["loss"][0]
    # every weight of the custom layer moved (sub-layers tracked, nothing silently frozen)
    assert all(not np.array_equal(b, w.numpy()) for b, w in zip(before, layer.trainable_weights))


def test_subclassed_model_matches_keras_and_trains():
    kdefs, adefs = both()
    x = RNG.normal(size=(16, T, D)).astype("float32")
    km, am = kdefs["TinyModel"](), adefs["TinyModel"]()
    ky = np.asarray(km(x))
    am.predict(x[:1])
    assert [w.shape for w in am.weights] == [tuple(w.shape) for w in km.weights]
    am.set_weights(km.get_weights())
    np.testing.assert_allclose(am.predict(x), ky, rtol=1e-4, atol=1e-6)
    am.compile("adam", "mse")
    before = [w.numpy() for w in am.trainable_weights]
    hist = am.fit(x, x.mean((1, 2))[:, None], epochs=5, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    assert all(not np.array_equal(b, w.numpy()) for b, w in zip(before, am.trainable_weights))


def test_activity_regularization_loss_is_trained():
    from attnlstm import Input, Model
    _, adefs = both()
    x = Input((D,))
    h = adefs["ActivityRegularizationLayer"](rate=1.0)(adefs["Linear"](3)(x))
    m = Model(x, h)
    m.compile("sgd", loss=None)
    X = RNG.normal(size=(32, D)).astype("float32")
    hist = m.fit(X, epochs=5, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0]


def test_bahdanau_with_3d_query_is_a_build_time_shape_error():
    """Keras builds this layer on a (batch, 2, Dq) query: expand_dims makes it 4-D and the score
    (None, 1, 2, U) + (None, T, U) broadcasts the batch axis against the time axis."""
    from attnlstm import Input
    _, adefs = both()
    with pytest.raises(ShapeError, match=r"BahdanauAttention 'bahdanau_attention\w*': in ops\.add:"
                                         r" x1 \(batch, 1, 2, 6\), x2 \(batch, 5, 6\): .*samples "
                                         r"would be mixed"):
        adefs["BahdanauAttention"](6)([Input((2, 3)), Input((T, D))])


def test_mismatched_custom_layer_fails_at_build_naming_op_and_shapes():
    from attnlstm import Input, layers, ops

    class Broken(layers.Layer):
        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], 3))
            self.v = self.add_weight(shape=(4, 1))

        def call(self, x):
            return ops.matmul(ops.tanh(ops.matmul(x, self.w)), self.v)

    with pytest.raises(ShapeError, match=r"Broken 'broken\w*': in ops\.matmul: x1 \(batch, 7, 3\), "
                                         r"x2 \(4, 1\): the last axis of x1 \(3\) must equal the "
                                         r"second-to-last axis of x2 \(4\)"):
        Broken()(Input((7, 5)))


def test_untracked_sublayer_warns_and_set_attribute_warns():
    from attnlstm import layers, ops

    hidden = layers.Dense(3)

    class UsesGlobal(layers.Layer):
        def call(self, x):
            return ops.sum(hidden(x), axis=-1)

    hidden(np.zeros((1, 4), "float32"))
    layer = UsesGlobal()
    with pytest.warns(UserWarning, match=r"is used in a layer's call but is not one of that "
                                         r"layer's tracked weights"):
        layer.forward(np.ones((2, 4), "float32"))

    class InASet(layers.Layer):
        def __init__(self):
            super().__init__()
            self.parts = {layers.Dense(2)}

        def call(self, x):
            return x
    with pytest.warns(UserWarning, match=r"attribute `parts` holds layers in a set"):
        InASet()


def test_sublayers_in_lists_and_dicts_are_tracked_in_keras_order():
    kdefs, adefs = both()
    from attnlstm import layers

    class Stack(layers.Layer):
        def __init__(self):
            super().__init__()
            self.blocks = [layers.Dense(3)]
            self.blocks.append(layers.Dense(2))
            self.heads = {"a": layers.Dense(1)}

        def call(self, x):
            for b in self.blocks:
                x = b(x)
            return self.heads["a"](x)
    s = Stack()
    s(np.zeros((1, 4), "float32"))
    assert [tuple(w.shape) for w in s.trainable_weights] == [(4, 3), (3,), (3, 2), (2,), (2, 1), (1,)]


def test_lambda_with_ops_trains_and_numpy_lambda_still_predicts():
    from attnlstm import Input, Model, layers, ops
    x = Input((T, D))
    h = layers.Dense(4)(x)
    y = layers.Lambda(lambda t: ops.sum(ops.softmax(t, axis=1) * t, axis=1))(h)
    m = Model(x, layers.Dense(1)(y))
    X = RNG.normal(size=(40, T, D)).astype("float32")
    m.compile("adam", "mse")
    hist = m.fit(X, X.sum((1, 2))[:, None], epochs=10, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    z = layers.Lambda(lambda t: np.asarray(t).mean(axis=1))(Input((T, D)))
    assert z.shape == (None, D)


def test_custom_layer_on_a_list_gets_its_shape_from_call_and_predicts():
    """Issue 17: no compute_output_shape and a list input used to end in a bare KeyError."""
    from attnlstm import Input, Model, layers, ops

    class GatedSum(layers.Layer):
        def call(self, inputs):
            a, b = inputs
            return ops.sigmoid(a) * b + ops.mean(a, axis=-1, keepdims=True)

    x1, x2 = Input((T, D)), Input((T, D))
    y = GatedSum()([x1, x2])
    assert y.shape == (None, T, D)
    m = Model([x1, x2], y)
    a, b = RNG.normal(size=(2, T, D)), RNG.normal(size=(2, T, D))
    np.testing.assert_allclose(m.predict([a, b]), 1 / (1 + np.exp(-a)) * b + a.mean(-1, keepdims=True),
                               rtol=1e-5, atol=1e-6)


def test_subclassed_model_weights_round_trip(tmp_path):
    _, adefs = both()
    x = RNG.normal(size=(4, T, D)).astype("float32")
    m1, m2 = adefs["TinyModel"](), adefs["TinyModel"]()
    y1 = m1.predict(x)
    path = str(tmp_path / "tiny.weights.h5")
    m1.save_weights(path)
    m2.predict(x[:1])
    m2.load_weights(path)
    np.testing.assert_allclose(m2.predict(x), y1, rtol=1e-6)


def test_issue_example_with_numpy_ufuncs_builds_checks_and_trains():
    """Issue 15's opening example, unchanged: NumPy ufuncs and methods in call. They reach the
    ops of the same name (shape rules when built, autograd when trained)."""
    from attnlstm import Input, Model, layers

    class MyAttention(layers.Layer):
        def build(self, input_shape):
            self.W = self.add_weight("W", (input_shape[-1], 1), "glorot_uniform")

        def call(self, x):
            e = np.tanh(x @ self.W)
            a = np.exp(e) / np.exp(e).sum(1, keepdims=True)
            return (x * a).sum(1)

    x = Input((T, D))
    att = MyAttention()
    y = layers.Dense(1)(att(layers.Dense(D)(x)))
    m = Model(x, y)
    X = RNG.normal(size=(48, T, D)).astype("float32")
    m.compile(attnlstm.optimizers.Adam(0.01), "mse")
    w0 = att.W.numpy()
    hist = m.fit(X, X.mean((1, 2))[:, None] * 3, epochs=10, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    assert not np.array_equal(att.W.numpy(), w0)

    class Wrong(layers.Layer):
        def call(self, x):
            return np.exp(x) / np.exp(x).sum(1)   # keepdims forgotten: (B, T, D) / (B, D)
    with pytest.raises(ShapeError, match=r"Wrong 'wrong\w*': in ops\.divide: x1 \(batch, 5, 4\), "
                                         r"x2 \(batch, 4\): .*samples would be mixed"):
        Wrong()(Input((T, D)))
