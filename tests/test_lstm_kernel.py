"""LSTM forward kernel (csrc/lstm_impl.h via _core.lstm_forward and ops.lstm_forward) against
the NumPy twin (tests/reference.py), over every option, and the binding's argument checking."""
import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import attnlstm
from attnlstm import _core, ops
import reference as R

NAMES = ["linear", "tanh", "sigmoid", "hard_sigmoid", "relu"]
CODE = {n: getattr(_core, "ACT_" + n.upper()) for n in NAMES}
# (activation, recurrent_activation) pairs: every activation appears in both roles.
ACT_PAIRS = [("tanh", "sigmoid"), ("relu", "hard_sigmoid"), ("linear", "tanh"),
             ("sigmoid", "relu"), ("hard_sigmoid", "linear")]


def make_inputs(rng, B, T, D, H, dt, scale=0.5):
    x = rng.standard_normal((B, T, D)).astype(dt)
    W = (rng.standard_normal((D, 4 * H)) * scale).astype(dt)
    U = (rng.standard_normal((H, 4 * H)) * scale).astype(dt)
    b = rng.standard_normal(4 * H).astype(dt)
    h0 = rng.standard_normal((B, H)).astype(dt)
    c0 = rng.standard_normal((B, H)).astype(dt)
    return x, W, U, b, h0, c0


def gap_mask(B, T, rng):
    """A mask with gaps, a masked start, a masked end and (B >= 3) a fully masked sample."""
    m = rng.random((B, T)) > 0.4
    m[0, 0] = False
    m[0, -1] = False
    m[0, T // 2] = True
    if B >= 3:
        m[2] = False
    return m


def rec_dropout_mask(rng, B, H, dt, rate=0.3):
    return ((rng.random((B, H)) >= rate) / (1 - rate)).astype(dt)


def run_forward(x, W, U, b, state, mask, act, ract, gb, rmask=None, save_act_c=False,
                dp_mask=None):
    h0, c0 = state if state is not None else (None, None)
    res = _core.lstm_forward(x, W, U, b, h0, c0, mask, CODE[act], CODE[ract], gb,
                             dp_mask=R.per_gate(dp_mask, x.shape[2]),
                             rec_mask=R.per_gate(rmask, U.shape[0]), save_act_c=save_act_c)
    return res


@pytest.mark.parametrize("dt,tol", [(np.float64, 1e-10), (np.float32, 2e-4)])
@pytest.mark.parametrize("act,ract", ACT_PAIRS)
@pytest.mark.parametrize("gb", [False, True])
def test_forward_matches_twin(dt, tol, act, ract, gb):
    rng = np.random.default_rng(1)
    B, T, D, H = 3, 7, 5, 4
    x, W, U, b, h0, c0 = make_inputs(rng, B, T, D, H, dt)
    mask = gap_mask(B, T, rng)
    # Recurrent / input dropout: shared by the gates, or one mask per gate (Keras 3.15.1).
    drops = [(None, None), (rec_dropout_mask(rng, B, H, dt), None),
             (rec_dropout_mask(rng, B, 4 * H, dt), rec_dropout_mask(rng, B, 4 * D, dt)),
             (None, rec_dropout_mask(rng, B, D, dt))]
    f64 = lambda a: None if a is None else a.astype(np.float64)  # noqa: E731
    for m, state, bias, (r, p) in itertools.product((None, mask), (None, (h0, c0)), (None, b),
                                                    drops):
        hs, cs, out, gates, act_c = run_forward(x, W, U, bias, state, m, act, ract, gb, r, True,
                                                p)
        o, lo, h, c = R.lstm(x.astype(np.float64), W.astype(np.float64), U.astype(np.float64),
                             f64(bias), None if state is None else [f64(s) for s in state],
                             m, act, ract, gb, f64(r), f64(p))
        outputs = hs if out is None else out
        assert (out is None) == (m is None)
        for got, want in ((outputs, o), (hs[:, -1], h), (cs[:, -1], c), (outputs[:, -1], lo)):
            scale = max(1.0, np.abs(want).max())
            assert np.abs(got - want).max() <= tol * scale
        # act_c is activation(c) at every unmasked step.
        keep = np.ones((B, T), bool) if m is None else (m[:, ::-1] if gb else m)
        assert np.allclose(act_c[keep], R.ACTIVATIONS[act](cs[keep].astype(np.float64)),
                           rtol=tol, atol=tol)
        # Saving act_c changes nothing else.
        hs2, cs2, out2, gates2 = run_forward(x, W, U, bias, state, m, act, ract, gb, r,
                                             dp_mask=p)
        assert np.array_equal(hs2, hs) and np.array_equal(cs2, cs)


@pytest.mark.parametrize("dt,tol", [(np.float64, 1e-10), (np.float32, 1e-4)])
@pytest.mark.parametrize("gb", [False, True])
def test_forward_long_sequences(dt, tol, gb):
    rng = np.random.default_rng(2)
    B, T, D, H = 4, 150, 6, 8
    x, W, U, b, h0, c0 = make_inputs(rng, B, T, D, H, dt, scale=0.3)
    m = gap_mask(B, T, rng)
    r = rec_dropout_mask(rng, B, H, dt)
    for mask, rm in ((None, None), (m, r)):
        hs, cs, out, _ = run_forward(x, W, U, b, (h0, c0), mask, "tanh", "sigmoid", gb, rm)
        o, _, h, c = R.lstm(x.astype(np.float64), W.astype(np.float64), U.astype(np.float64),
                            b.astype(np.float64), [h0.astype(np.float64), c0.astype(np.float64)],
                            mask, "tanh", "sigmoid", gb,
                            None if rm is None else rm.astype(np.float64))
        outputs = hs if out is None else out
        assert np.abs(outputs - o).max() <= tol
        assert np.abs(cs[:, -1] - c).max() <= tol * max(1.0, np.abs(c).max())


def test_masked_output_rule():
    """Outputs before a sample's first unmasked step are 0; a masked step repeats the previous
    output and carries h, c; a fully masked sample keeps h0, c0 and outputs zeros."""
    rng = np.random.default_rng(3)
    B, T, D, H = 3, 5, 2, 3
    x, W, U, b, h0, c0 = make_inputs(rng, B, T, D, H, np.float64)
    m = np.array([[0, 1, 0, 1, 0], [1, 1, 1, 1, 0], [0, 0, 0, 0, 0]], bool)
    hs, cs, out, _ = run_forward(x, W, U, b, (h0, c0), m, "tanh", "sigmoid", False)
    assert np.all(out[0, 0] == 0) and np.array_equal(out[0, 2], out[0, 1])
    assert np.array_equal(out[0, 4], out[0, 3]) and np.array_equal(hs[0, 0], h0[0])
    assert np.array_equal(hs[1, 4], hs[1, 3]) and np.array_equal(cs[1, 4], cs[1, 3])
    assert np.all(out[2] == 0) and np.array_equal(hs[2, -1], h0[2])
    assert np.array_equal(cs[2, -1], c0[2])


def test_rec_mask_of_ones_changes_nothing():
    rng = np.random.default_rng(4)
    x, W, U, b, h0, c0 = make_inputs(rng, 2, 6, 3, 4, np.float64)
    a = run_forward(x, W, U, b, (h0, c0), None, "tanh", "sigmoid", False)
    r = run_forward(x, W, U, b, (h0, c0), None, "tanh", "sigmoid", False, np.ones((2, 4)))
    # Equal up to float64 rounding: without a mask the product takes the packed path, with
    # one the per-gate BLAS path (a different summation order).
    np.testing.assert_allclose(r[0], a[0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(r[1], a[1], rtol=1e-12, atol=1e-14)
    z = run_forward(x, W, U, b, (h0, c0), None, "tanh", "sigmoid", False, np.zeros((2, 4)))
    # A zero mask cuts the recurrence: each step sees only x_t and the carried c.
    o, *_ = R.lstm(x, W, np.zeros_like(U), b, [h0, c0])
    assert np.abs(z[0] - o).max() < 1e-12


def test_shared_masks_equal_tiled_per_gate_masks_and_dropped_x():
    rng = np.random.default_rng(6)
    B, T, D, H = 3, 5, 4, 3
    x, W, U, b, h0, c0 = make_inputs(rng, B, T, D, H, np.float64)
    r, p = rec_dropout_mask(rng, B, H, np.float64), rec_dropout_mask(rng, B, D, np.float64)
    a = run_forward(x, W, U, b, (h0, c0), None, "tanh", "sigmoid", False, r, dp_mask=p)
    t = run_forward(x, W, U, b, (h0, c0), None, "tanh", "sigmoid", False, np.tile(r, 4),
                    dp_mask=np.tile(p, 4))
    d = run_forward(x * p[:, None, :], W, U, b, (h0, c0), None, "tanh", "sigmoid", False, r)
    assert np.array_equal(a[0], t[0]) and np.abs(a[0] - d[0]).max() < 1e-14


def test_ops_forward_rec_mask_and_saved_dict():
    rng = np.random.default_rng(5)
    x, W, U, b, h0, c0 = make_inputs(rng, 2, 4, 3, 4, np.float64)
    r = rec_dropout_mask(rng, 2, 4, np.float64)
    s = ops.lstm_forward(x, W, U, b, [h0, c0], rec_mask=r)
    o, lo, h, c = R.lstm(x, W, U, b, [h0, c0], rec_mask=r)
    assert np.abs(s["outputs"] - o).max() < 1e-12 and np.abs(s["c"] - c).max() < 1e-12
    for k in ("x", "kernel", "recurrent_kernel", "bias", "h0", "c0", "rec_mask", "act_c"):
        assert s[k] is not None
    assert ops.lstm_forward(x, W, U, save_act_c=False)["act_c"] is None
    # ops.lstm keeps its signature and result.
    y = ops.lstm(x, W, U, b, [h0, c0], return_sequences=True)
    assert np.abs(y - R.lstm(x, W, U, b, [h0, c0])[0]).max() < 1e-12
    with pytest.raises(attnlstm.errors.ShapeError,
                       match=r"`rec_mask` must have shape \(2, 4\) \(one mask for all gates\) or "
                             r"\(2, 16\) \(one per gate \[i, f, c, o\]\), got \(4,\)"):
        ops.lstm_forward(x, W, U, rec_mask=np.ones(4))
    with pytest.raises(attnlstm.errors.ShapeError, match=r"`dp_mask` must have shape \(2, 3\)"):
        ops.lstm_forward(x, W, U, dp_mask=np.ones((2, 5)))


# ---- binding argument checking --------------------------------------------------------------

def _args(dt=np.float64, B=2, T=3, D=3, H=2):
    rng = np.random.default_rng(0)
    return make_inputs(rng, B, T, D, H, dt)


@pytest.mark.parametrize("kw,exc,match", [
    (dict(rec_mask=np.ones((2, 3))), ValueError, r"`rec_mask` must have shape \(B, 4H\) = \(2, 8\), got \(2, 3\)"),
    (dict(dp_mask=np.ones((2, 3))), ValueError, r"`dp_mask` must have shape \(B, 4D\) = \(2, 12\), got \(2, 3\)"),
    (dict(dp_mask=np.ones((3, 12))), ValueError, r"`dp_mask` must have shape \(B, 4D\) = \(2, 12\), got \(3, 12\)"),
    (dict(rec_mask=np.ones((2, 8), np.float32)), TypeError, r"`rec_mask` must have dtype float64"),
    (dict(mask=np.ones((3, 2))), ValueError, r"`mask` must have shape \(B, T\) = \(2, 3\)"),
    (dict(h0=np.ones((2, 3))), ValueError, r"`h0` must have shape \(B, H\)"),
    (dict(activation=7), ValueError, r"`activation` must be an activation code"),
])
def test_forward_binding_errors(kw, exc, match):
    x, W, U, b, h0, c0 = _args()
    with pytest.raises(exc, match=match):
        _core.lstm_forward(x, W, U, b, **kw)


def test_forward_binding_rejects_bad_core_shapes():
    x, W, U, b, h0, c0 = _args()
    with pytest.raises(ValueError, match=r"`kernel` must have shape \(D, 4H\) = \(3, 8\)"):
        _core.lstm_forward(x, W[:2], U)
    with pytest.raises(ValueError, match=r"`x` must have shape \(B, T, D\) with T >= 1"):
        _core.lstm_forward(x[:, :0], W, U)
    with pytest.raises(ValueError, match=r"H >= 1"):
        _core.lstm_forward(x, W[:, :0], U[:0, :0])
    with pytest.raises(TypeError, match=r"`x` must have dtype float32 or float64"):
        _core.lstm_forward(x.astype(np.int64), W, U)


@st.composite
def forward_cases(draw):
    dt = draw(st.sampled_from([np.float32, np.float64]))
    B = draw(st.integers(0, 3))
    T = draw(st.integers(1, 4) | st.just(0))
    D = draw(st.integers(0, 3))
    H = draw(st.integers(1, 3) | st.just(0))
    bad = draw(st.none() | st.sampled_from(["W", "U", "b", "h0", "mask", "rmask", "pmask", "dtype",
                                               "nan"]))
    return dt, B, T, D, H, bad, draw(st.booleans()), draw(st.booleans()), draw(st.booleans())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(forward_cases())
def test_forward_binding_never_crashes(case):
    """Random shapes, dtypes, strides, empty axes and NaN: an exception or the twin's result."""
    dt, B, T, D, H, bad, strided, use_mask, use_r = case
    rng = np.random.default_rng(B * 100 + T * 10 + D + H)
    x = rng.standard_normal((B, T, D)).astype(dt)
    if strided:
        x = np.repeat(x, 2, axis=2)[:, :, ::2]          # non-contiguous view
    W = rng.standard_normal((D, 4 * H)).astype(dt) * 0.5
    U = rng.standard_normal((H, 4 * H)).astype(dt) * 0.5
    b = rng.standard_normal(4 * H).astype(dt)
    h0 = rng.standard_normal((B, H)).astype(dt)
    c0 = rng.standard_normal((B, H)).astype(dt)
    m = (rng.random((B, T)) > 0.3) if use_mask else None
    r = rec_dropout_mask(rng, B, 4 * H, dt) if use_r else None   # the binding's per-gate form
    pm = rec_dropout_mask(rng, B, 4 * D, dt) if use_r else None
    if bad == "W":
        W = W[:, :-1] if W.shape[1] else np.ones((D + 1, 4 * H), dt)
    elif bad == "U":
        U = np.ones((H, 4 * H + 1), dt)
    elif bad == "b":
        b = np.ones(4 * H + 2, dt)
    elif bad == "h0":
        h0 = np.ones((B + 1, H), dt)
    elif bad == "mask":
        m = np.ones((B, T + 1), bool)
    elif bad == "rmask":
        r = np.ones((B, H + 1), dt)
    elif bad == "pmask":
        pm = np.ones((B + 1, D), dt)
    elif bad == "dtype":
        W = W.astype(np.float32 if dt == np.float64 else np.float64)
    elif bad == "nan":
        x = x.copy()
        x[..., :1] = np.nan
    try:
        hs, cs, out, gates = _core.lstm_forward(x, W, U, b, h0, c0, m, rec_mask=r, dp_mask=pm)
    except (TypeError, ValueError):
        assert bad not in (None, "nan") or T == 0 or H == 0
        return
    assert bad in (None, "nan") and T > 0 and H > 0
    if bad == "nan" or B == 0:
        assert hs.shape == (B, T, H)
        return
    o, _, h, c = R.lstm(x.astype(np.float64), W.astype(np.float64), U.astype(np.float64),
                        b.astype(np.float64), [h0.astype(np.float64), c0.astype(np.float64)],
                        m, rec_mask=None if r is None else r.astype(np.float64),
                        dp_mask=None if pm is None else pm.astype(np.float64))
    outputs = hs if out is None else out
    assert np.abs(outputs - o).max() <= (1e-10 if dt == np.float64 else 1e-4)


@pytest.mark.parametrize("B", [1, 5])
@pytest.mark.parametrize("threads", [1, 2])
def test_saved_act_c_is_written_at_masked_steps(B, threads):
    """act_c (save_act_c=True) is a(c_s) at every step, masked ones included (c_s is then the
    carried c_{s-1}): the kernel used to leave masked slots holding stale memory, different
    from call to call."""
    rng = np.random.default_rng(3)
    T, D, H = 7, 3, 20
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    W, U = (rng.standard_normal((D, 4 * H)) * .3).astype(np.float32), \
        (rng.standard_normal((H, 4 * H)) * .3).astype(np.float32)
    b = rng.standard_normal(4 * H).astype(np.float32)
    m = rng.random((B, T)) > .4
    m[:, 0] = False
    outs = []
    for _ in range(3):
        junk = np.full((B, T, H), 7.0, np.float32)   # leaves stale values on the heap
        del junk
        hs, cs, o, g, ac = _core.lstm_forward(x, W, U, b, None, None, m, save_act_c=True,
                                              threads=threads)
        np.testing.assert_allclose(ac, np.tanh(cs), rtol=0, atol=2e-6)
        outs.append(ac)
    assert all(np.array_equal(outs[0], a) for a in outs[1:])
