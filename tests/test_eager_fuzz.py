"""Property-based fuzzing of the eager layer API and of the C binding, in-process.

Random shapes (empty axes included), dtypes (float16/32/64, int, bool, object, complex, str),
strides (slices, transposes), NaN/inf, wrong types, mismatched dtypes and absurd sizes (zero-stride
np.broadcast_to views). Every call must either return the right result (checked against
tests/reference.py or plain NumPy) or raise a Python exception (TypeError/ValueError/MemoryError,
ShapeError included). A crash in the C code kills pytest itself: that is the failure signal.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import reference

import attnlstm
from attnlstm import _core, layers

# Documented warnings on degenerate shapes (softmax over a size-1 axis, mean over T = 0).
pytestmark = [pytest.mark.filterwarnings("ignore:.*softmax over axis:UserWarning"),
              pytest.mark.filterwarnings("ignore:Mean of empty slice:RuntimeWarning"),
              pytest.mark.filterwarnings("ignore::RuntimeWarning")]

FUZZ = settings(max_examples=80, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                       HealthCheck.data_too_large])
from hypothesis import event  # noqa: E402
ACCEPTED = (TypeError, ValueError, MemoryError, OverflowError)

CODES = {_core.ACT_LINEAR: "linear", _core.ACT_TANH: "tanh", _core.ACT_SIGMOID: "sigmoid",
         _core.ACT_HARD_SIGMOID: "hard_sigmoid", _core.ACT_RELU: "relu"}

DTYPES = ["float16", "float32", "float64", "int32", "int64", "bool", "object", "complex64",
          "complex128", "U3"]
FLOATS = ["float32", "float64"]


# ---------------------------------------------------------------------------------------------
# Strategies


@st.composite
def values(draw, shape, dtype="float64", special=True):
    """An array of `shape` and `dtype`, maybe with NaN/inf, maybe a strided (non-contiguous)
    view: a slice with step 2 or a transpose of a larger/reordered base."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    layout = draw(st.sampled_from(["c", "c", "slice", "transpose", "fortran"]))
    base_shape = tuple(shape)
    if layout == "slice" and len(shape):
        base_shape = tuple(s * 2 for s in shape)
    elif layout == "transpose" and len(shape) >= 2:
        base_shape = tuple(reversed(shape))
    a = np.array(rng.standard_normal(base_shape))
    if special and a.size and draw(st.booleans()):
        flat = a.reshape(-1)
        k = draw(st.integers(1, max(1, flat.size // 3)))
        idx = rng.integers(0, flat.size, size=k)
        flat[idx] = rng.choice([np.nan, np.inf, -np.inf, 1e30, -1e30], size=k)
    if layout == "slice" and len(shape):
        a = a[tuple(slice(None, None, 2) for _ in shape)]
    elif layout == "transpose" and len(shape) >= 2:
        a = a.T
    elif layout == "fortran" and a.ndim >= 2:
        a = np.asfortranarray(a)
    assert a.shape == tuple(shape)
    if dtype == "U3":
        return a.astype("U3")
    with np.errstate(invalid="ignore", over="ignore"):
        if np.dtype(dtype).kind in "iub":
            a = np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0).clip(-3, 3)
        return a.astype(dtype)


def small_dims(n, lo=0, hi=5):
    return st.tuples(*[st.integers(lo, hi) for _ in range(n)])


JUNK = st.sampled_from([None, "abc", ["a", "b"], [[1, 2], [3]], 3, 2.5, object(), {"a": 1},
                        np.array("x"), np.array([[["x", "y"]]]), b"bytes"])


def absurd_array(which, k, dt="float32"):
    """Zero-stride views that are enormous when copied (>= 4 TiB) or whose B*T overflows the
    32-bit BLAS; none of them is ever materialised by a correct binding."""
    z = np.zeros((1, 1, 1), dt)
    cases = {
        "x": [(2**20, 2**20, 4), (2**16, 2**16, 0), (2**31, 1, 4), (1, 2**40, 4)],
        "kernel": [(2**40, 16)],
        "recurrent_kernel": [(2**20, 2**22)],
        "h0": [(2**40, 4)],
        "mask": [(2**40, 2**3)],
    }[which]
    shape = cases[k % len(cases)]
    return np.broadcast_to(z.reshape((1,) * len(shape)), shape)


ABSURD = [(w, k) for w in ("x", "kernel", "recurrent_kernel", "h0", "mask")
          for k in range(4 if w == "x" else 1)]


@st.composite
def core_args(draw):
    """Arguments for _core.lstm_forward: mostly consistent, then one or two corrupted."""
    dt = draw(st.sampled_from(FLOATS))
    B, T, D, H = draw(st.integers(0, 4)), draw(st.integers(0, 5)), draw(st.integers(0, 4)), \
        draw(st.integers(0, 4))
    args = {
        "x": draw(values((B, T, D), dt)),
        "kernel": draw(values((D, 4 * H), dt, special=False)) * 0.5,
        "recurrent_kernel": draw(values((H, 4 * H), dt, special=False)) * 0.5,
    }
    if draw(st.booleans()):
        args["bias"] = draw(values((4 * H,), dt, special=False))
    if draw(st.booleans()):
        args["h0"] = draw(values((B, H), dt, special=False))
        args["c0"] = draw(values((B, H), dt, special=False))
    if draw(st.booleans()):
        args["mask"] = draw(values((B, T), draw(st.sampled_from(["bool", "float32", "int64"])),
                                   special=False)) > 0
    args["activation"] = draw(st.sampled_from(list(CODES)))
    args["recurrent_activation"] = draw(st.sampled_from(list(CODES)))
    args["go_backwards"] = draw(st.booleans())
    for _ in range(draw(st.integers(0, 2))):
        name = draw(st.sampled_from(["x", "kernel", "recurrent_kernel", "bias", "h0", "c0", "mask",
                                     "activation", "recurrent_activation", "go_backwards"]))
        how = draw(st.sampled_from(["dtype", "shape", "junk", "absurd", "list"]))
        if name in ("activation", "recurrent_activation"):
            args[name] = draw(st.one_of(st.integers(-2**40, 2**40), JUNK))
        elif name == "go_backwards":
            args[name] = draw(st.one_of(JUNK, st.integers()))
        elif how == "dtype":
            prev = args.get(name)
            shape = prev.shape if isinstance(prev, np.ndarray) and prev.size < 10**4 else (2, 3)
            args[name] = draw(values(shape, draw(st.sampled_from(DTYPES))))
        elif how == "shape":
            args[name] = draw(values(draw(small_dims(draw(st.integers(0, 4)))), dt))
        elif how == "junk":
            args[name] = draw(JUNK)
        elif how == "absurd":
            which, k = draw(st.sampled_from(ABSURD))
            args[which] = absurd_array(which, k, "bool" if which == "mask" else dt)
        else:
            prev = args.get(name)
            args[name] = prev.tolist() if isinstance(prev, np.ndarray) and prev.size < 10**4 \
                else [[0.5, 1.0], [2.0]]
    return args


# ---------------------------------------------------------------------------------------------
# The C binding directly


def _expect_core(args):
    """The NumPy twin's result, or None when the arguments are not a valid call."""
    x = args["x"]
    if not isinstance(x, np.ndarray) or x.dtype not in (np.float32, np.float64) or x.ndim != 3:
        return None
    B, T, D = x.shape
    try:
        W = np.asarray(args["kernel"], dtype=np.float64)
        U = np.asarray(args["recurrent_kernel"], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if U.ndim != 2 or U.shape[0] < 1 or U.shape[1] != 4 * U.shape[0] or W.shape != (D, U.shape[1]):
        return None
    if T < 1:
        return None
    H = U.shape[0]
    bias = args.get("bias")
    h0, c0 = args.get("h0"), args.get("c0")
    mask = args.get("mask")
    try:
        bias = None if bias is None else np.asarray(bias, dtype=np.float64)
        h0 = None if h0 is None else np.asarray(h0, dtype=np.float64)
        c0 = None if c0 is None else np.asarray(c0, dtype=np.float64)
        mask = None if mask is None else np.asarray(mask).astype(bool)
    except (TypeError, ValueError):
        return "unknown"
    if bias is not None and bias.shape != (4 * H,):
        return None
    if (h0 is not None and h0.shape != (B, H)) or (c0 is not None and c0.shape != (B, H)):
        return None
    if mask is not None and mask.shape != (B, T):
        return None
    act, ract = args["activation"], args["recurrent_activation"]
    if not isinstance(act, int) or not isinstance(ract, int) or act not in CODES or ract not in CODES:
        return None
    if h0 is None and c0 is not None:
        h0 = np.zeros((B, H))
    if c0 is None and h0 is not None:
        c0 = np.zeros((B, H))
    init = None if h0 is None else [h0, c0]
    return (*twin(x, [W, U, bias], init, mask, CODES[act], CODES[ract],
                  bool(args["go_backwards"])), mask)


def twin(x, weights, init, mask, act, ract, go_backwards):
    """(outputs, h_T, c_T) of the float64 twin, with NaN wherever the twin run in x's own
    dtype is not finite (overflow there: the kernel may then give inf or NaN)."""
    def run(dt):
        cast = [None if w is None else np.asarray(w, dt) for w in weights]
        st0 = None if init is None else [np.asarray(v, dt) for v in init]
        with np.errstate(all="ignore"):
            out, _, h, c = reference.lstm(np.asarray(x, dt), *cast, initial_state=st0, mask=mask,
                                          activation=act, recurrent_activation=ract,
                                          go_backwards=go_backwards)
        return out, h, c
    ref64 = run(np.float64)
    if x.dtype == np.float64:
        return ref64
    native = run(x.dtype)
    return tuple(np.where(np.isfinite(n), r, np.nan) for r, n in zip(ref64, native))


def _finite_inputs(args):
    """No NaN/inf and no huge values (1e30 overflows float32 within a step)."""
    return all(np.all(np.abs(np.asarray(args[k], dtype=np.float64)) < 1e6)
               for k in ("x", "kernel", "recurrent_kernel", "bias", "h0", "c0") if k in args
               and isinstance(args[k], np.ndarray) and args[k].dtype.kind == "f")


@FUZZ
@given(core_args())
def test_core_lstm_forward_never_crashes(args):
    x = args.pop("x")
    W, U = args.pop("kernel"), args.pop("recurrent_kernel")
    try:
        res = _core.lstm_forward(x, W, U, **args)
    except ACCEPTED as err:
        event(f"raised {type(err).__name__}")
        return
    event("returned")
    args.update(x=x, kernel=W, recurrent_kernel=U)
    expect = _expect_core(args)
    assert expect is not None, f"accepted invalid arguments: {sorted(args)}"
    if expect == "unknown":
        return
    hs, cs, out, gates = res
    ref_out, ref_h, ref_c, mask = expect
    assert hs.dtype == x.dtype and cs.dtype == x.dtype
    B, T, _ = x.shape
    H = np.shape(U)[0]
    assert hs.shape == cs.shape == (B, T, H) and gates.shape == (B, T, 4 * H)
    assert (out is None) == (mask is None)
    got = hs if out is None else out
    tol = (1e-4, 1e-4) if x.dtype == np.float32 else (1e-10, 1e-10)
    finite = _finite_inputs(args)
    assert_twin(got, ref_out, tol, finite)
    if T:
        assert_twin(hs[:, -1], ref_h, tol, finite)
        assert_twin(cs[:, -1], ref_c, (tol[0], tol[1] * 10), finite)


def assert_twin(got, ref, tol, finite_inputs=True):
    """got == the twin's ref. With NaN/inf among the inputs, only where ref is finite (the order
    of operations may decide between inf and NaN)."""
    rtol, atol = tol
    with np.errstate(all="ignore"):
        scale = np.max(np.abs(np.where(np.isfinite(ref), ref, 0)), initial=1.0)
        # Near float32's overflow the order of operations decides inf or NaN (ref then holds
        # NaN, see twin()): compare the finite, moderate values.
        keep = np.isfinite(ref) & (np.abs(ref) < 1e30)
        np.testing.assert_allclose(np.asarray(got)[keep], ref[keep], rtol=rtol, atol=atol * scale)


def test_relu_nan_propagates_like_keras():
    x = np.ones((1, 2, 1))
    W = np.zeros((1, 4))
    W[0, 2] = np.nan  # the candidate (g) block only
    got = attnlstm.ops.lstm(x, W, np.zeros((1, 4)), activation="relu", return_sequences=True)
    ref = reference.lstm(x, W, np.zeros((1, 4)), activation="relu")[0]
    assert np.all(np.isnan(ref))
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))


@pytest.mark.parametrize("case", ["nan_recurrent_kernel", "inf_forget_gate"])
def test_zero_initial_state_propagates_nan_like_keras(case):
    """Without an initial state Keras still computes zeros @ recurrent_kernel and f * zeros: NaN
    or inf in recurrent_kernel, or an infinite forget gate, give NaN at the first step. The
    kernel skips the product (zeros) but adds 0 * U's column sums when they are not 0, and
    keeps f * 0 in the cell."""
    x = np.ones((1, 1, 1))
    W = np.full((1, 4), 0.5)
    U = np.zeros((1, 4))
    act = "tanh"
    if case == "nan_recurrent_kernel":
        U[0, 0] = np.nan  # 0 * NaN = NaN in Keras' h0 @ U
    else:
        x[:] = -np.inf    # linear gates: f = +inf, c = inf * 0 + ... = NaN in Keras
        W[0, 1] = -1.0
        act = "linear"
    got = attnlstm.ops.lstm(x, W, U, activation=act, recurrent_activation=act)
    ref = reference.lstm(x, W, U, activation=act, recurrent_activation=act)[1]
    assert np.all(np.isnan(ref))
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))


@pytest.mark.parametrize("which,k", ABSURD)
def test_core_absurd_sizes_raise(which, k):
    """Each absurd argument alone, the others consistent with it, so only a size check can stop
    it (or the allocation: MemoryError)."""
    arr = absurd_array(which, k, "bool" if which == "mask" else "float32")
    B, T, D, H = 2, 8, 4, 4
    if which == "x":
        B, T, D = arr.shape
    if which == "recurrent_kernel":
        H = arr.shape[0]
    args = {"x": np.broadcast_to(np.zeros((1, 1, 1), "float32"), (B, T, D)),
            "kernel": np.broadcast_to(np.zeros((1, 1), "float32"), (D, 4 * H)),
            "recurrent_kernel": np.broadcast_to(np.zeros((1, 1), "float32"), (H, 4 * H))}
    args[which] = arr
    with pytest.raises((ValueError, MemoryError)):
        _core.lstm_forward(**args)


@FUZZ
@given(st.sampled_from(FLOATS), st.sampled_from(DTYPES), st.sampled_from(["kernel", "recurrent_kernel",
                                                                          "bias", "h0", "mask"]))
def test_core_mismatched_dtypes(dt, other, which):
    B, T, D, H = 2, 3, 2, 2
    args = dict(x=np.ones((B, T, D), dt), kernel=np.ones((D, 4 * H), dt),
                recurrent_kernel=np.ones((H, 4 * H), dt), bias=np.ones(4 * H, dt),
                h0=np.ones((B, H), dt), c0=np.ones((B, H), dt), mask=np.ones((B, T), bool))
    with np.errstate(all="ignore"):
        try:
            args[which] = args[which].astype(other)
        except (TypeError, ValueError):
            return
    try:
        hs, cs, out, gates = _core.lstm_forward(**args)
    except ACCEPTED as err:
        assert which != "mask" or other == "U3" or "dtype" not in str(err)
        return
    # Accepted: only a mask of any castable dtype, or the same float type.
    assert which == "mask" or np.dtype(other) == np.dtype(dt), (which, other, dt)
    assert hs.shape == (B, T, H)


# ---------------------------------------------------------------------------------------------
# The eager layer API


@st.composite
def layer_input(draw, min_rank=0, max_rank=4, prefer_rank=None):
    """Any rank/dtype; with prefer_rank, mostly that rank, non-empty, and a real dtype, so the
    success path is exercised as often as the error paths."""
    if prefer_rank is not None and draw(st.integers(0, 3)):
        shape = draw(small_dims(prefer_rank, 1, 5))
        dtype = draw(st.sampled_from(["float32", "float64", "float16", "int32", "bool", "object"]))
        return draw(values(shape, dtype))
    shape = draw(small_dims(draw(st.integers(min_rank, max_rank)), 0, 5))
    dtype = draw(st.sampled_from(DTYPES + ["float32", "float64"]))
    return draw(values(shape, dtype))


def _call(layer, *args, **kwargs):
    """Run an eager call; None when it raised an accepted exception."""
    try:
        with np.errstate(all="ignore"):
            out = layer(*args, **kwargs)
    except ACCEPTED as err:
        event(f"raised {type(err).__name__}")
        return None
    event("returned")
    return out


def _real(x):
    return x.dtype.kind in "fiub"


@FUZZ
@given(layer_input(prefer_rank=3), st.integers(1, 4), st.sampled_from(["float32", "float64"]),
       st.sampled_from(["tanh", "relu", "hard_sigmoid", "linear"]), st.booleans(), st.booleans(),
       st.data())
def test_lstm_layer_fuzz(x, H, dtype, act, rs, go_back, data):
    layer = layers.LSTM(H, activation=act, return_sequences=rs, go_backwards=go_back, dtype=dtype)
    mask = None
    if x.ndim == 3 and data.draw(st.booleans()):
        mshape = data.draw(st.sampled_from([x.shape[:2], x.shape[:2][::-1], x.shape, (x.shape[0],)]))
        mask = data.draw(values(mshape, "float32", special=False)) > 0
    y = _call(layer, x, mask=mask)
    if y is None:
        return
    assert x.ndim == 3 and x.shape[1] >= 1 and _real(x) or x.dtype == object
    assert y.dtype == np.dtype(dtype)
    B, T, D = x.shape
    assert y.shape == ((B, T, H) if rs else (B, H))
    xf = x.astype(dtype)
    seq, _, _ = twin(xf, layer.get_weights(), None, mask, act, "sigmoid", go_back)
    last = seq[:, -1]
    ref = seq if rs else last
    tol = 1e-10 if dtype == "float64" else 1e-4
    assert_twin(y, ref, (tol, tol), bool(np.all(np.abs(xf) < 1e6)))


@FUZZ
@given(layer_input(prefer_rank=3), st.integers(1, 4), st.sampled_from(["float32", "float64"]),
       st.booleans())
def test_dense_and_time_distributed_fuzz(x, units, dtype, wrap):
    inner = layers.Dense(units, dtype=dtype)
    layer = layers.TimeDistributed(inner, dtype=dtype) if wrap else inner
    y = _call(layer, x)
    if y is None:
        return
    assert x.ndim >= (3 if wrap else 2) and (_real(x) or x.dtype == object)
    assert x.shape[-1] is not None and y.shape == x.shape[:-1] + (units,)
    kernel, bias = inner.get_weights()
    with np.errstate(all="ignore"):
        ref = x.astype(dtype).astype(np.float64) @ kernel.astype(np.float64) + bias
    tol = 1e-12 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(y, ref, rtol=tol, atol=tol * 10, equal_nan=True)


@FUZZ
@given(layer_input(prefer_rank=3), st.booleans(), st.data())
def test_global_average_pooling_fuzz(x, keepdims, data):
    mask = None
    if x.ndim == 3 and data.draw(st.booleans()):
        mask = data.draw(values(data.draw(st.sampled_from([x.shape[:2], x.shape[:1]])), "float32",
                                special=False)) > 0
    y = _call(layers.GlobalAveragePooling1D(keepdims=keepdims), x, mask=mask)
    if y is None:
        return
    assert x.ndim == 3
    xf = x.astype("float32").astype(np.float64)
    with np.errstate(all="ignore"):
        if mask is None:
            ref = xf.mean(axis=1, keepdims=keepdims)
        else:
            m = mask[:, :, None].astype(np.float64)
            num, den = (xf * m).sum(axis=1, keepdims=keepdims), m.sum(axis=1, keepdims=keepdims)
            ref = np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5, equal_nan=True)


SHAPE_ONLY_LAYERS = [
    lambda: layers.Masking(0.0), lambda: layers.RepeatVector(3), lambda: layers.Flatten(),
    lambda: layers.Softmax(axis=1), lambda: layers.Softmax(), lambda: layers.Reshape((-1,)),
    lambda: layers.Permute((2, 1)), lambda: layers.Activation("sigmoid"),
    lambda: layers.Dropout(0.5), lambda: layers.GlobalMaxPooling1D(),
    lambda: layers.Embedding(4, 2, mask_zero=True),
]


@FUZZ
@given(st.integers(0, len(SHAPE_ONLY_LAYERS) - 1), layer_input())
def test_other_layers_fuzz_match_their_output_shape(which, x):
    layer = SHAPE_ONLY_LAYERS[which]()
    y = _call(layer, x)
    if y is None:
        return
    y = np.asarray(y)
    expected = layer.compute_output_shape(tuple(x.shape))
    assert tuple(y.shape) == tuple(expected)


@FUZZ
@given(st.sampled_from(["Add", "Multiply", "Concatenate", "Maximum", "Average", "Subtract", "Dot"]),
       st.lists(layer_input(1, 3), min_size=1, max_size=3), st.data())
def test_merge_layers_fuzz(name, xs, data):
    layer = layers.Dot(axes=data.draw(st.integers(-2, 2))) if name == "Dot" else getattr(layers, name)()
    y = _call(layer, xs)
    if y is None:
        return
    shapes = [tuple(x.shape) for x in xs]
    assert tuple(np.shape(y)) == tuple(layer.compute_output_shape(shapes))
    if name == "Add" and all(x.dtype.kind == "f" for x in xs):
        rank = max(x.ndim for x in xs)
        with np.errstate(all="ignore"):
            ref = sum(x.astype("float32").astype(np.float64).reshape(
                x.shape[:1] + (1,) * (rank - x.ndim) + x.shape[1:]) for x in xs)
        np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5, equal_nan=True)
