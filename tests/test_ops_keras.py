"""attnlstm.ops' Keras-named ops: each against a NumPy twin (eager), its gradient against central
finite differences (float64, through the same code path a custom layer's ``call`` takes while
traced), and its symbolic shape rule (KerasTensor shapes equal the eager shapes, with the batch
axis unknown) -- plus the shape-error messages."""
import numpy as np
import pytest
from autograd import grad

from attnlstm import Input, ShapeError, ops
from attnlstm.ops import KerasTensor

RNG = np.random.default_rng(0)


def r(*shape, positive=False):
    a = RNG.normal(size=shape)
    return np.abs(a) + 0.5 if positive else a


def sig(x):
    return 1 / (1 + np.exp(-x))


# name: (op call on arrays, NumPy twin, input arrays, differentiable inputs)
CASES = {
    "add": (lambda a, b: ops.add(a, b), np.add, [r(2, 3, 4), r(3, 4)]),
    "subtract": (lambda a, b: ops.subtract(a, b), np.subtract, [r(2, 3, 4), r(4)]),
    "multiply": (lambda a, b: ops.multiply(a, b), np.multiply, [r(2, 3, 1), r(2, 1, 4)]),
    "divide": (lambda a, b: ops.divide(a, b), np.divide, [r(2, 3), r(2, 3, positive=True)]),
    "power": (lambda a, b: ops.power(a, b), np.power, [r(2, 3, positive=True), r(2, 3)]),
    "maximum": (lambda a, b: ops.maximum(a, b), np.maximum, [r(2, 3), r(2, 3)]),
    "minimum": (lambda a, b: ops.minimum(a, b), np.minimum, [r(2, 3), r(2, 3)]),
    "matmul": (lambda a, b: ops.matmul(a, b), np.matmul, [r(2, 3, 4), r(4, 5)]),
    "matmul_batched": (lambda a, b: ops.matmul(a, b), np.matmul, [r(2, 3, 4), r(2, 4, 5)]),
    "dot": (lambda a, b: ops.dot(a, b), np.dot, [r(2, 4), r(4, 3)]),
    "einsum": (lambda a, b: ops.einsum("bqd,bkd->bqk", a, b),
               lambda a, b: np.einsum("bqd,bkd->bqk", a, b), [r(2, 3, 4), r(2, 5, 4)]),
    "transpose": (lambda a: ops.transpose(a, (0, 2, 1)), lambda a: a.transpose(0, 2, 1),
                  [r(2, 3, 4)]),
    "reshape": (lambda a: ops.reshape(a, (-1, 3, 2, 2)), lambda a: a.reshape(-1, 3, 2, 2),
                [r(2, 3, 4)]),
    "expand_dims": (lambda a: ops.expand_dims(a, 1), lambda a: a[:, None], [r(2, 3)]),
    "squeeze": (lambda a: ops.squeeze(a, -1), lambda a: a[..., 0], [r(2, 3, 1)]),
    "concatenate": (lambda a, b: ops.concatenate([a, b], axis=-1),
                    lambda a, b: np.concatenate([a, b], -1), [r(2, 3, 4), r(2, 3, 2)]),
    "stack": (lambda a, b: ops.stack([a, b], axis=1), lambda a, b: np.stack([a, b], 1),
              [r(2, 3), r(2, 3)]),
    "split": (lambda a: ops.split(a, 2, axis=-1)[1], lambda a: np.split(a, 2, -1)[1],
              [r(2, 3, 4)]),
    "take": (lambda a: ops.take(a, np.array([2, 0, 2]), axis=1),
             lambda a: np.take(a, [2, 0, 2], 1), [r(2, 3, 4)]),
    "where": (lambda a, b: ops.where(a > 0, a, b), lambda a, b: np.where(a > 0, a, b),
              [r(2, 3), r(2, 3)]),
    "cast": (lambda a: ops.cast(a, "float32"), lambda a: a.astype("float32"), [r(2, 3)]),
    "sum": (lambda a: ops.sum(a, axis=1), lambda a: a.sum(1), [r(2, 3, 4)]),
    "mean": (lambda a: ops.mean(a, axis=(1, 2), keepdims=True),
             lambda a: a.mean((1, 2), keepdims=True), [r(2, 3, 4)]),
    "max": (lambda a: ops.max(a, axis=-1), lambda a: a.max(-1), [r(2, 3, 4)]),
    "min": (lambda a: ops.min(a, axis=1), lambda a: a.min(1), [r(2, 3, 4)]),
    "softmax": (lambda a: ops.softmax(a, axis=1),
                lambda a: np.exp(a) / np.exp(a).sum(1, keepdims=True), [r(2, 5, 3)]),
    "log_softmax": (lambda a: ops.log_softmax(a),
                    lambda a: a - np.log(np.exp(a).sum(-1, keepdims=True)), [r(2, 5)]),
    "logsumexp": (lambda a: ops.logsumexp(a, axis=1), lambda a: np.log(np.exp(a).sum(1)),
                  [r(2, 5, 3)]),
    "sigmoid": (ops.sigmoid, sig, [r(2, 3)]),
    "tanh": (ops.tanh, np.tanh, [r(2, 3)]),
    "relu": (ops.relu, lambda a: np.maximum(a, 0), [r(2, 3)]),
    "gelu": (ops.gelu, lambda a: 0.5 * a * (1 + np.tanh(np.sqrt(2 / np.pi) *
                                                        (a + 0.044715 * a ** 3))), [r(2, 3)]),
    "gelu_exact": (lambda a: ops.gelu(a, approximate=False),
                   lambda a: a * 0.5 * (1 + np.vectorize(__import__("math").erf)(a / np.sqrt(2))),
                   [r(2, 3)]),
    "silu": (ops.silu, lambda a: a * sig(a), [r(2, 3)]),
    "softplus": (ops.softplus, lambda a: np.log1p(np.exp(a)), [r(2, 3)]),
    "exp": (ops.exp, np.exp, [r(2, 3)]),
    "log": (ops.log, np.log, [r(2, 3, positive=True)]),
    "sqrt": (ops.sqrt, np.sqrt, [r(2, 3, positive=True)]),
    "rsqrt": (ops.rsqrt, lambda a: 1 / np.sqrt(a), [r(2, 3, positive=True)]),
    "square": (ops.square, np.square, [r(2, 3)]),
    "abs": (ops.abs, np.abs, [r(2, 3)]),
    "negative": (ops.negative, np.negative, [r(2, 3)]),
    "clip": (lambda a: ops.clip(a, -0.5, 0.5), lambda a: np.clip(a, -0.5, 0.5), [r(2, 3)]),
    "cumsum": (lambda a: ops.cumsum(a, axis=1), lambda a: np.cumsum(a, 1), [r(2, 3, 4)]),
    "repeat": (lambda a: ops.repeat(a, 2, axis=1), lambda a: np.repeat(a, 2, 1), [r(2, 3)]),
    "tile": (lambda a: ops.tile(a, (1, 2, 1)), lambda a: np.tile(a, (1, 2, 1)), [r(2, 3, 4)]),
    "pad": (lambda a: ops.pad(a, [[0, 0], [1, 2], [0, 0]]),
            lambda a: np.pad(a, [[0, 0], [1, 2], [0, 0]]), [r(2, 3, 4)]),
    "broadcast_to": (lambda a: ops.broadcast_to(a, (2, 3, 4)),
                     lambda a: np.broadcast_to(a, (2, 3, 4)), [r(2, 1, 4)]),
    "normalize": (lambda a: ops.normalize(a, axis=-1),
                  lambda a: a / np.linalg.norm(a, axis=-1, keepdims=True), [r(2, 3, 4)]),
    "erf": (ops.erf, np.vectorize(__import__("math").erf), [r(2, 3)]),
    "triu": (lambda a: ops.triu(a), np.triu, [r(2, 4, 4)]),
    "tril": (lambda a: ops.tril(a, -1), lambda a: np.tril(a, -1), [r(2, 4, 4)]),
    "get_item": (lambda a: a[:, -1, 1:3], lambda a: a[:, -1, 1:3], [r(2, 3, 4)]),
    "operators": (lambda a, b: (a @ b.T + 2) * -a[:, :1] / 3 - a ** 2 @ b.T,
                  lambda a, b: (a @ b.T + 2) * -a[:, :1] / 3 - a ** 2 @ b.T, [r(2, 4), r(3, 4)]),
}

NO_GRAD = {"cast"}


@pytest.mark.parametrize("name", sorted(CASES))
def test_eager_matches_numpy(name):
    fn, twin, xs = CASES[name]
    out = fn(*xs)
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, twin(*xs), rtol=1e-6, atol=1e-7)
    out32 = fn(*[x.astype(np.float32) for x in xs])
    assert out32.dtype == np.float32, f"{name} on float32 gives {out32.dtype}"


@pytest.mark.parametrize("name", sorted(set(CASES) - NO_GRAD))
def test_gradient_matches_finite_differences(name):
    fn, _, xs = CASES[name]
    G = RNG.normal(size=np.shape(fn(*xs)))
    for k in range(len(xs)):
        def f(xk):
            args = list(xs)
            args[k] = xk
            return ops.sum(fn(*args) * G)
        g = grad(f)(xs[k].copy())
        num = np.zeros_like(xs[k])
        x = xs[k].copy()
        for idx in np.ndindex(x.shape):
            old = x[idx]
            x[idx] = old + 1e-6
            fp = float(f(x))
            x[idx] = old - 1e-6
            fm = float(f(x))
            x[idx] = old
            num[idx] = (fp - fm) / 2e-6
        np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-6, err_msg=f"{name} arg {k}")


def _symbolic_arg(x):
    return KerasTensor((None,) + x.shape[1:], "float64")


@pytest.mark.parametrize("name", sorted(set(CASES) - {"dot", "broadcast_to"}))
def test_symbolic_shape_rule_matches_eager(name):
    fn, _, xs = CASES[name]
    out = fn(*xs)
    # the first argument has the batch axis; further ones too when they have the batch size
    sym = [_symbolic_arg(x) if (k == 0 or x.shape[:1] == xs[0].shape[:1]) and x.ndim == xs[0].ndim
           else x for k, x in enumerate(xs)]
    res = fn(*sym)
    assert isinstance(res, KerasTensor)
    assert res.shape[1:] == out.shape[1:], (res.shape, out.shape)
    assert res.shape[0] is None and res.batch_axis == 0
    assert np.dtype(res.dtype) == out.dtype or name == "cast"


def test_dot_and_broadcast_to_symbolic_shapes():
    res = ops.dot(KerasTensor((None, 4)), np.zeros((4, 3), "float32"))
    assert res.shape == (None, 3) and res.batch_axis == 0
    res = ops.broadcast_to(KerasTensor((None, 1, 4)), (None, 3, 4))
    assert res.shape == (None, 3, 4) and res.batch_axis == 0
    res = ops.broadcast_to(np.zeros((1, 4), "float32"), (2, 3, 4))
    assert res.shape == (2, 3, 4)


def test_keras_dtype_rules():
    i = np.arange(6, dtype="int32").reshape(2, 3)
    assert ops.add(i, 1.5).dtype == np.float32       # NumPy: float64
    assert ops.add(i, 1).dtype == np.int32
    assert ops.mean(i).dtype == np.float32
    assert ops.sqrt(i).dtype == np.float32
    assert ops.argmax(i, axis=-1).dtype == np.int32
    assert ops.convert_to_tensor([1.0, 2.0]).dtype == np.float32
    assert ops.arange(4).dtype == np.int32
    assert ops.one_hot(np.array([0, 2]), 3).dtype == np.float32
    np.testing.assert_array_equal(ops.one_hot(np.array([0, 2, -1]), 3),
                                  [[1, 0, 0], [0, 0, 1], [0, 0, 0]])
    assert ops.zeros((2, 3)).dtype == np.float32 and ops.ones(2).shape == (2,)
    assert ops.shape(KerasTensor((None, 3))) == (None, 3)
    np.testing.assert_array_equal(ops.argmin(np.array([[3, 1, 2]]), axis=1), [1])
    x = np.ones((2, 3), np.float64)
    assert ops.zeros_like(x).dtype == np.float64 and ops.full_like(x, 7)[0, 0] == 7
    assert ops.ones_like(x, dtype="float32").dtype == np.float32
    assert ops.sign(np.array([-2.0, 3.0])).tolist() == [-1, 1]


def test_stop_gradient_blocks_the_gradient():
    g = grad(lambda x: ops.sum(ops.stop_gradient(x) * x))(np.ones(3))
    np.testing.assert_allclose(g, np.ones(3))


# ---------------------------------------------------------------------------------------------
# Shape errors


def test_broadcast_mismatch_names_op_and_shapes():
    with pytest.raises(ShapeError, match=r"ops\.add: cannot broadcast x1 \(batch, 12, 6\), "
                                         r"x2 \(batch, 12, 5\)"):
        Input((12, 6)) + Input((12, 5))


def test_batch_axis_against_time_axis_is_an_error():
    """Keras computes (None, 12, 6) + (None, 1, 12, 6) as (None, None, 12, 6), mixing samples."""
    x = Input((12, 6))
    with pytest.raises(ShapeError, match=r"batch axis of x1 \(axis 0\) with axis 1 of x2.*"
                                         r"samples would be mixed(.|\n)*Hint: "):
        ops.add(x, ops.expand_dims(x, 1))


def test_batch_axis_against_weight_axis_is_an_error():
    with pytest.raises(ShapeError, match=r"batch axis of x1 lines up with axis 0 \(size 12\) "
                                         r"of x2, which is not a batch axis"):
        ops.add(Input((6,)), np.zeros((12, 6), "float32"))


def test_matmul_error_names_both_shapes_and_hint():
    with pytest.raises(ShapeError, match=r"ops\.matmul: x1 \(batch, 5, 8\), x2 \(4, 8\): the last "
                                         r"axis of x1 \(8\) must equal the second-to-last axis "
                                         r"of x2 \(4\)\.\nHint: x2 looks transposed"):
        ops.matmul(Input((5, 8)), np.zeros((4, 8), "float32"))


def test_einsum_letter_size_and_batch_errors():
    q, k = Input((5, 8)), Input((7, 6))
    with pytest.raises(ShapeError, match=r"letter 'd' is size 8 on x1 \(axis 2\) but 6 on x2"):
        ops.einsum("bqd,bkd->bqk", q, k)
    with pytest.raises(ShapeError, match=r"letter 'b' is the batch axis of x1 but axis 1 of x2"):
        ops.einsum("bqd,kbd->bqk", q, Input((5, 8)))


@pytest.mark.parametrize("call, pattern", [
    (lambda x: ops.reshape(x, (-1, 5, 5)), r"ops\.reshape: cannot reshape x \(batch, 12, 6\) "
                                           r"\(72 values per sample\)"),
    (lambda x: ops.transpose(x, (0, 1)), r"ops\.transpose: `axes`=\(0, 1\) is not a permutation"),
    (lambda x: ops.squeeze(x, 1), r"ops\.squeeze: cannot squeeze axis 1 of x \(batch, 12, 6\)"),
    (lambda x: ops.concatenate([x, Input((11, 6))], axis=-1),
     r"ops\.concatenate: .*all axes except axis 2 must match; axis 1 has sizes \[12, 11\]"),
    (lambda x: ops.stack([x, Input((12, 5))]), r"ops\.stack: .*must have the same shape"),
    (lambda x: ops.split(x, 4, axis=-1), r"ops\.split: x \(batch, 12, 6\): axis 2 of size 6 "
                                         r"does not split into 4"),
    (lambda x: ops.softmax(x, axis=0), r"ops\.softmax: x \(batch, 12, 6\): `axis`=0 is the "
                                       r"batch axis"),
    (lambda x: ops.log_softmax(x, axis=3), r"ops\.log_softmax: `axis`=3 is out of range"),
    (lambda x: ops.sum(x, axis=3), r"ops\.sum: `axis`=3 is out of range for x \(batch, 12, 6\)"),
    (lambda x: ops.mean(x, axis=-4), r"ops\.mean: `axis`=-4 is out of range"),
    (lambda x: ops.max(x, axis=5), r"ops\.max: `axis`=5 is out of range"),
    (lambda x: ops.logsumexp(x, axis=5), r"ops\.logsumexp: `axis`=5 is out of range"),
    (lambda x: ops.expand_dims(x, 5), r"ops\.expand_dims: `axis`=5 is out of range"),
    (lambda x: ops.tile(x, (2, 1, 1)), r"ops\.tile: .*tiling the batch axis"),
    (lambda x: ops.pad(x, [[1, 0], [0, 0], [0, 0]]), r"ops\.pad: .*padding the batch axis"),
    (lambda x: x[:, 12], r"ops\.get_item: index 12 is out of range for axis 1 of size 12"),
    (lambda x: x[0, 0, 0, 0], r"ops\.get_item: x \(batch, 12, 6\) has 3 axes but the index has 4"),
    (lambda x: ops.triu(x[:, 0, 0]), r"ops\.triu: x \(batch,\) needs at least 2 axes"),
    (lambda x: ops.normalize(x, axis=0), r"ops\.normalize: .*`axis`=0 is the batch axis"),
    (lambda x: ops.cumsum(x, axis=4), r"ops\.cumsum: `axis`=4 is out of range"),
    (lambda x: ops.repeat(x, 2, axis=4), r"ops\.repeat: `axis`=4 is out of range"),
    (lambda x: ops.broadcast_to(x, (6,)), r"ops\.broadcast_to: x \(batch, 12, 6\) has more axes"),
    (lambda x: ops.take(x, np.array([0]), axis=3), r"ops\.take: `axis`=3 is out of range"),
    (lambda x: ops.where(x > 0, x, Input((12, 5))), r"ops\.where: cannot broadcast"),
    (lambda x: ops.maximum(x, Input((6, 12))), r"ops\.maximum: cannot broadcast"),
    (lambda x: ops.dot(x, np.zeros((5, 2), "float32")), r"ops\.dot: .*the last axis of x1 \(6\) "
                                                        r"must equal axis 0 of x2 \(5\)"),
])
def test_symbolic_errors(call, pattern):
    with pytest.raises(ShapeError, match=pattern):
        call(Input((12, 6)))


def test_op_error_inside_a_custom_layer_names_the_layer():
    from attnlstm import layers

    class Scores(layers.Layer):
        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1] + 1, 1), name="w")

        def call(self, x):
            return ops.matmul(x, self.w)

    with pytest.raises(ShapeError, match=r"^Scores 'scores\w*': in ops\.matmul: x1 \(batch, 12, 6\), "
                                         r"x2 \(7, 1\): the last axis of x1 \(6\) must equal"):
        Scores()(Input((12, 6)))


def test_model_level_ops_make_graph_nodes_that_run_and_train():
    from attnlstm import Model, layers
    x = Input((12, 6))
    h = layers.Dense(6)(x)
    y = layers.Dense(1)(ops.expand_dims((h + x)[:, -1, :], 1) * 2.0)
    m = Model(x, y)
    assert [type(l).__name__ for l in m.layers] == ["InputLayer", "Dense", "Dense"]
    X = RNG.normal(size=(16, 12, 6)).astype("float32")
    W = [l for l in m.layers[1:]]
    ref = (((X @ W[0].kernel.value + W[0].bias.value) + X)[:, -1, :][:, None] * 2.0
           ) @ W[1].kernel.value + W[1].bias.value
    np.testing.assert_allclose(m.predict(X), ref, rtol=1e-5, atol=1e-6)
    m.compile("adam", "mse")
    Y = X[:, -1, :1][:, None]
    hist = m.fit(X, Y, epochs=8, batch_size=16, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0]


# ---------------------------------------------------------------------------------------------
# Kernel ops inside a traced call: their own backward as one autograd node


def _fd_check(f, x, rel=1e-6):
    g = grad(f)(x.copy())
    num = np.zeros_like(x)
    x = x.copy()
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + 1e-6
        fp = float(f(x))
        x[idx] = old - 1e-6
        fm = float(f(x))
        x[idx] = old
        num[idx] = (fp - fm) / 2e-6
    assert np.abs(g - num).max() / max(np.abs(num).max(), 1e-3) < rel


@pytest.mark.parametrize("which", ["x", "kernel", "recurrent_kernel", "bias", "h0"])
def test_lstm_kernel_is_differentiable_in_a_trace(which):
    B_, T_, D_, H = 2, 4, 3, 2
    args = {"x": r(B_, T_, D_), "kernel": r(D_, 4 * H) * 0.5, "recurrent_kernel": r(H, 4 * H) * 0.5,
            "bias": r(4 * H) * 0.1, "h0": r(B_, H), "c0": r(B_, H)}
    G = r(B_, T_, H)
    Gh = r(B_, H)

    def f(v):
        a = dict(args)
        a[which] = v
        out, h, c = ops.lstm(a["x"], a["kernel"], a["recurrent_kernel"], a["bias"],
                             initial_state=[a["h0"], a["c0"]], return_sequences=True,
                             return_state=True)
        return ops.sum(out * G) + ops.sum(c * Gh)
    _fd_check(f, args[which])


@pytest.mark.parametrize("op, which", [("dot_attention", "query"), ("dot_attention", "value"),
                                       ("dot_attention", "key"), ("additive_attention", "query"),
                                       ("additive_attention", "key")])
def test_attention_kernels_are_differentiable_in_a_trace(op, which):
    args = {"query": r(2, 3, 4), "value": r(2, 5, 4), "key": r(2, 5, 4)}
    G = r(2, 3, 4)
    fn = getattr(ops, op)

    def f(v):
        a = dict(args)
        a[which] = v
        return ops.sum(fn(a["query"], a["value"], a["key"]) * G)
    _fd_check(f, args[which])


@pytest.mark.parametrize("which", ["query", "values", "W1", "W2", "V", "b1"])
def test_bahdanau_kernel_is_differentiable_in_a_trace(which):
    args = {"query": r(2, 3), "values": r(2, 5, 4), "W1": r(4, 6), "W2": r(3, 6), "V": r(6),
            "b1": r(6), "b2": r(6)}
    G = r(2, 4)

    def f(v):
        a = dict(args)
        a[which] = v
        return ops.sum(ops.bahdanau_attention(a["query"], a["values"], a["W1"], a["W2"], a["V"],
                                              a["b1"], a["b2"]) * G)
    _fd_check(f, args[which])


@pytest.mark.parametrize("call, shape, dtype", [
    (lambda x: ops.argmax(x, axis=-1), (None, 12), "int32"),
    (lambda x: ops.argmin(x, axis=1, keepdims=True), (None, 1, 6), "int32"),
    (lambda x: ops.one_hot(ops.argmax(x, axis=-1), 4), (None, 12, 4), "float32"),
    (lambda x: ops.zeros_like(x), (None, 12, 6), "float32"),
    (lambda x: ops.ones_like(x, dtype="float64"), (None, 12, 6), "float64"),
    (lambda x: ops.full_like(x, 3.0), (None, 12, 6), "float32"),
    (lambda x: ops.cast(x, "int32"), (None, 12, 6), "int32"),
    (lambda x: ops.sign(x), (None, 12, 6), "float32"),
    (lambda x: ops.stop_gradient(x), (None, 12, 6), "float32"),
    (lambda x: ops.convert_to_tensor(x), (None, 12, 6), "float32"),
    (lambda x: ops.less(x, 0.5), (None, 12, 6), "bool"),
    (lambda x: x >= ops.mean(x, axis=-1, keepdims=True), (None, 12, 6), "bool"),
    (lambda x: ops.logical_not(x > 0), (None, 12, 6), "bool"),
    (lambda x: ops.floor_divide(x, 2.0), (None, 12, 6), "float32"),
    (lambda x: ops.mod(x, 2.0), (None, 12, 6), "float32"),
    (lambda x: ops.zeros((ops.shape(x)[0], 3)), (None, 3), "float32"),
    (lambda x: ops.where(x > 0, 1.0, x), (None, 12, 6), "float32"),
])
def test_more_symbolic_rules(call, shape, dtype):
    res = call(Input((12, 6)))
    assert isinstance(res, KerasTensor) and res.shape == shape and res.dtype == dtype
    eager = call(RNG.normal(size=(2, 12, 6)).astype("float32"))
    assert eager.shape == (2,) + shape[1:] and eager.dtype == dtype


def test_symbolic_ops_refuse_numpy_conversion_with_a_clear_message():
    with pytest.raises(TypeError, match=r"numpy\.sin cannot run on the symbolic tensor .*Use the "
                                        r"attnlstm\.ops function"):
        np.sin(Input((3,)))


def test_symbolic_batch_size_from_shape_supports_arithmetic():
    """``ops.shape(x)[0]`` is unknown while a layer is built; multi-head code multiplies it."""
    x = Input((None, 8))
    b, t = ops.shape(x)[0], ops.shape(x)[1]
    assert b == None and repr(b) == "None"  # noqa: E711  (compares equal to None, as Keras' None)
    heads = ops.reshape(ops.transpose(ops.reshape(x, (b, t, 2, 4)), (0, 2, 1, 3)), (b * 2, t, 4))
    assert heads.shape == (None, None, 4)
    assert ops.zeros((b, 3)).shape == (None, 3) and ops.size(x) is None
    X = RNG.normal(size=(3, 5, 8))
    bb, tt = ops.shape(X)[0], ops.shape(X)[1]
    out = ops.reshape(ops.transpose(ops.reshape(X, (bb, tt, 2, 4)), (0, 2, 1, 3)), (bb * 2, tt, 4))
    np.testing.assert_array_equal(out, X.reshape(3, 5, 2, 4).transpose(0, 2, 1, 3).reshape(6, 5, 4))
