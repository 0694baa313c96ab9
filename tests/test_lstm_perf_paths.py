"""The packed-panel paths of the LSTM kernels (csrc/lstm_pgemm.h) against the NumPy twin
(tests/reference.py): every register-tile height (B = 1..9, 13, 64), hidden sizes that are not
multiples of the vector width or the panel width, odd D, D = 0, strided inputs, masks, initial
states, go_backwards, and the dropout masks; float64 against its twin at 1e-10. impl: 0 the
path chosen at import, 1 generic, 2 AVX2, 3 AVX-512 (a path above the chosen one falls back to
it, so every impl runs everywhere; `make test` also re-runs this file under ATTNLSTM_ISA =
each path the CPU supports)."""
import itertools

import numpy as np
import pytest

from attnlstm import _core
import reference as R

IMPLS = [0, 1, 2, 3]
TOL = 2e-4  # float32 against the float64 twin, relative to max(1, |want|)


def inputs(rng, B, T, D, H, scale=0.5):
    f = lambda *s: (rng.standard_normal(s) * scale).astype(np.float32)  # noqa: E731
    return f(B, T, D) / scale, f(D, 4 * H), f(H, 4 * H), f(4 * H), f(B, H), f(B, H)


def f64(a):
    return None if a is None else np.asarray(a, np.float64)


def close(got, want, tol=TOL):
    scale = max(1.0, float(np.abs(want).max())) if np.size(want) else 1.0
    return np.size(want) == 0 or float(np.abs(np.asarray(got, np.float64) - want).max()) <= tol * scale


def forward(x, W, U, b, h0, c0, mask, gb, impl, rmask=None, pmask=None):
    return _core.lstm_forward(x, W, U, b, h0, c0, mask, _core.ACT_TANH, _core.ACT_SIGMOID, gb,
                              dp_mask=R.per_gate(pmask, x.shape[2]),
                              rec_mask=R.per_gate(rmask, U.shape[0]), save_act_c=True, impl=impl)


SHAPES = [(B, 3, 5, H) for B in list(range(1, 10)) + [13] for H in (1, 4, 17)] + \
         [(2, 4, 7, 33), (7, 3, 3, 65), (64, 2, 5, 24), (5, 3, 0, 16), (1, 2, 1, 80)]


@pytest.mark.parametrize("B,T,D,H", SHAPES)
@pytest.mark.parametrize("impl", IMPLS)
def test_forward_paths_match_twin(B, T, D, H, impl):
    rng = np.random.default_rng(B * 1000 + H * 10 + D)
    x, W, U, b, h0, c0 = inputs(rng, B, T, D, H)
    for state, bias in ((None, b), ((h0, c0), None), ((h0, c0), b)):
        hs, cs, out, gates, act_c = forward(x, W, U, bias, *(state or (None, None)), None,
                                            False, impl)
        o, lo, h, c = R.lstm(f64(x), f64(W), f64(U), f64(bias),
                             None if state is None else [f64(s) for s in state])
        assert close(hs, o) and close(cs[:, -1], c) and close(hs[:, -1], h)
        assert close(act_c, np.tanh(f64(cs)))


@pytest.mark.parametrize("impl", [1, 2, 3])
@pytest.mark.parametrize("gb", [False, True])
def test_forward_paths_masks_strides_dropout(impl, gb):
    rng = np.random.default_rng(7)
    B, T, D, H = 9, 6, 3, 21
    x, W, U, b, h0, c0 = inputs(rng, B, T, D, H)
    mask = rng.random((B, T)) > 0.3
    mask[2] = False
    # Strided views: every other time step of a longer x, U as a transposed view.
    xs = np.repeat(x, 2, axis=1)[:, ::2]
    Ut = np.ascontiguousarray(U.T).T
    assert not xs.flags.c_contiguous and not Ut.flags.c_contiguous
    rm = ((rng.random((B, 4 * H)) > 0.3) / 0.7).astype(np.float32)
    pm = ((rng.random((B, D)) > 0.3) / 0.7).astype(np.float32)
    for m, r, p in itertools.product((None, mask), (None, rm), (None, pm)):
        got = forward(xs, W, Ut, b, h0, c0, m, gb, impl, r, p)
        ref = forward(x, W, U, b, h0, c0, m, gb, 1, r, p)
        o = R.lstm(f64(x), f64(W), f64(U), f64(b), [f64(h0), f64(c0)], m, "tanh", "sigmoid",
                   gb, f64(r), f64(p))[0]
        outputs = got[0] if got[2] is None else got[2]
        assert close(outputs, o)
        for g, w in zip(got[:2], ref[:2]):
            assert close(g, w, 1e-5)


BWD_SHAPES = [(1, 4, 3, 5), (2, 3, 5, 17), (3, 5, 1, 16), (6, 3, 4, 9), (7, 2, 5, 33),
              (8, 4, 6, 20), (9, 3, 2, 3), (13, 2, 3, 65), (4, 3, 0, 8)]


@pytest.mark.parametrize("B,T,D,H", BWD_SHAPES)
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("gb", [False, True])
def test_backward_paths_match_twin(B, T, D, H, impl, gb):
    rng = np.random.default_rng(B * 100 + H)
    x, W, U, b, h0, c0 = inputs(rng, B, T, D, H)
    mask = rng.random((B, T)) > 0.25
    dy = rng.standard_normal((B, T, H)).astype(np.float32)
    dh = rng.standard_normal((B, H)).astype(np.float32)
    for m in (None, mask):
        hs, cs, out, gates, act_c = forward(x, W, U, b, h0, c0, m, gb, impl)
        got = _core.lstm_backward(hs, cs, gates, x, W, U, h0, c0, m, None, None, act_c, dy,
                                  None, dh, None, _core.ACT_TANH, _core.ACT_SIGMOID, gb,
                                  impl=impl)
        want = R.lstm_backward(f64(x), f64(W), f64(U), f64(b), [f64(h0), f64(c0)], m,
                               "tanh", "sigmoid", gb, None, f64(dy), None, f64(dh), None)
        for g, k in zip(got, ("x", "kernel", "recurrent_kernel", "bias", "h0", "c0")):
            assert close(g, want[k], 5e-4), k


def test_impl_out_of_range():
    x = np.zeros((1, 2, 3), np.float32)
    W, U = np.zeros((3, 8), np.float32), np.zeros((2, 8), np.float32)
    with pytest.raises(ValueError, match=r"lstm_forward: `impl` must be 0 \(automatic\).*got 4"):
        _core.lstm_forward(x, W, U, impl=4)
    with pytest.raises(ValueError, match=r"lstm_backward: `impl` must be .*got -1"):
        z = np.zeros((1, 2, 2), np.float32)
        _core.lstm_backward(z, z, np.zeros((1, 2, 8), np.float32), x, W, U, impl=-1)


F64_SHAPES = [(1, 4, 3, 5), (2, 3, 5, 17), (3, 5, 1, 16), (6, 3, 4, 9), (7, 2, 5, 33),
              (9, 3, 2, 3), (13, 2, 3, 65), (4, 3, 0, 8)]


@pytest.mark.parametrize("B,T,D,H", F64_SHAPES)
@pytest.mark.parametrize("impl", [0, 1, 2, 3])
def test_float64_packed_paths_match_the_twin(B, T, D, H, impl):
    """float64 has its own packed tiles (8 or 4 doubles per vector, 32- or 16-wide panels):
    forward and backward agree with the float64 NumPy twin to 1e-10, masks and go_backwards
    included, for every tile height and panel tail."""
    rng = np.random.default_rng(B * 100 + H + 7)
    x, W, U, b, h0, c0 = (a.astype(np.float64) for a in inputs(rng, B, T, D, H))
    mask = rng.random((B, T)) > 0.25
    dy, dh = rng.standard_normal((B, T, H)), rng.standard_normal((B, H))
    for m, gb in ((None, False), (mask, True)):
        hs, cs, out, gates, act_c = forward(x, W, U, b, h0, c0, m, gb, impl)
        o = R.lstm(x, W, U, b, [h0, c0], m, "tanh", "sigmoid", gb)[0]
        assert close(hs if out is None else out, o, 1e-10)
        got = _core.lstm_backward(hs, cs, gates, x, W, U, h0, c0, m, None, None, act_c, dy,
                                  None, dh, None, _core.ACT_TANH, _core.ACT_SIGMOID, gb,
                                  impl=impl)
        want = R.lstm_backward(x, W, U, b, [h0, c0], m, "tanh", "sigmoid", gb, None, dy, None,
                               dh, None)
        for g, k in zip(got, ("x", "kernel", "recurrent_kernel", "bias", "h0", "c0")):
            assert close(g, want[k], 1e-10), k


@pytest.mark.parametrize("impl", [1, 2, 3])
def test_packed_rows_do_not_depend_on_batch_size(impl):
    """A sample's outputs are bit-identical whether it runs alone or inside a batch of 9 (the
    tile height changes with B; the summation order must not), across both forms of the fused
    cell: B = 9 computes x_t W on each step's tile, B < 8 the input projection first."""
    rng = np.random.default_rng(11)
    x, W, U, b, h0, c0 = inputs(rng, 9, 4, 5, 19)
    full = forward(x, W, U, b, h0, c0, None, False, impl)[0]
    for lo, hi in ((0, 1), (1, 3), (3, 9)):
        part = forward(x[lo:hi], W, U, b, h0[lo:hi], c0[lo:hi], None, False, impl)[0]
        assert np.array_equal(part, full[lo:hi])


@pytest.mark.parametrize("impl", [1, 2, 3])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_gate_activations_are_accurate(impl, dtype):
    """sigmoid and tanh are vectorised polynomials (csrc/al_math.h), not libm: the saved gates
    of one step must match NumPy to a few ulp of their own value over the whole range,
    including |z| < 1e-3 (where 1 - 2 / (e^2z + 1) loses digits) and saturated gates."""
    rng = np.random.default_rng(0)
    z = np.concatenate([rng.uniform(-40, 40, 3000), rng.uniform(-1e-3, 1e-3, 1000),
                        rng.uniform(-1, 1, 1000), [0.0, 1e-30, -1e-30]])
    if dtype == "float64":
        z = np.concatenate([z, [1e-300, -1e-300, 700.0, -700.0]])
    z = z.astype(dtype)
    H = z.size
    x = np.ones((1, 2, 1), dtype)
    W = np.tile(z, 4)[None, :]                      # every gate's pre-activation is z
    U = np.zeros((H, 4 * H), dtype)
    gates = _core.lstm_forward(x, W, U, None, None, None, None, _core.ACT_TANH,
                               _core.ACT_SIGMOID, False, impl=impl)[3]
    z64 = z.astype(np.float64)
    eps, tiny = np.finfo(dtype).eps, np.finfo(dtype).tiny
    for got, want in ((gates[0, 0, :H], 1.0 / (1.0 + np.exp(-z64))),
                      (gates[0, 0, 2 * H:3 * H], np.tanh(z64))):
        ulp = np.abs(got - want) / np.maximum(np.abs(want) * eps, tiny)
        assert ulp.max() <= 8, float(ulp.max())


@pytest.mark.parametrize("impl", [1, 2, 3])
@pytest.mark.parametrize("act,ract", [("relu", "hard_sigmoid"), ("linear", "tanh"),
                                      ("hard_sigmoid", "relu")])
def test_fused_cell_other_activations(impl, act, ract):
    """The fused cell (csrc/lstm_cell_impl.h) specialises (tanh, sigmoid); every other pair
    takes its generic lanes, in both forms (B = 3: input projection first; B = 12: x_t W on
    the step's tile), with a partial last panel (H = 21) and a mask."""
    codes = {"linear": _core.ACT_LINEAR, "tanh": _core.ACT_TANH, "sigmoid": _core.ACT_SIGMOID,
             "hard_sigmoid": _core.ACT_HARD_SIGMOID, "relu": _core.ACT_RELU}
    for B in (3, 12):
        rng = np.random.default_rng(B)
        x, W, U, b, h0, c0 = inputs(rng, B, 5, 4, 21, scale=0.3)
        mask = rng.random((B, 5)) > 0.3
        hs, cs, out, gates = _core.lstm_forward(x, W, U, b, h0, c0, mask, codes[act],
                                                codes[ract], False, impl=impl)
        o = R.lstm(f64(x), f64(W), f64(U), f64(b), [f64(h0), f64(c0)], mask, act, ract)[0]
        assert close(out, o)


@pytest.mark.parametrize("impl", [0, 1, 2, 3])
@pytest.mark.parametrize("B", [1, 5, 12])
def test_forward_without_saved_gates(impl, B):
    """save_gates=False (inference) returns None for the gates and the same bits for
    everything else, in every form of the forward."""
    rng = np.random.default_rng(B + 10 * impl)
    x, W, U, b, h0, c0 = inputs(rng, B, 6, 5, 19)
    mask = rng.random((B, 6)) > 0.3
    for m, state in ((None, (None, None)), (mask, (h0, c0))):
        full = _core.lstm_forward(x, W, U, b, *state, m, _core.ACT_TANH, _core.ACT_SIGMOID,
                                  True, impl=impl)
        lean = _core.lstm_forward(x, W, U, b, *state, m, _core.ACT_TANH, _core.ACT_SIGMOID,
                                  True, impl=impl, save_gates=False)
        assert lean[3] is None
        for k in (0, 1, 2):
            assert (full[k] is None and lean[k] is None) or np.array_equal(full[k], lean[k])


def test_backward_needs_saved_gates():
    from attnlstm import ops
    rng = np.random.default_rng(0)
    x, W, U, b, _, _ = inputs(rng, 2, 3, 4, 5)
    saved = ops.lstm_forward(x, W, U, b, save_gates=False)
    assert saved["gates"] is None
    with pytest.raises(ValueError, match=r"ops.lstm_backward: `saved` comes from "
                                         r"ops.lstm_forward\(\.\.\., save_gates=False\)"):
        ops.lstm_backward(saved, d_outputs=np.ones((2, 3, 5), np.float32))


def test_layer_inference_saves_nothing_for_a_backward(monkeypatch):
    """An LSTM layer's plain call (inference) asks the kernel for neither the gates nor the
    activated cell states (saving act_c cost 22% of a (64, 50, 64, 256) call); its training
    forward asks for both, which the backward reads."""
    import attnlstm
    from attnlstm import ops
    seen = []
    real = ops.lstm_forward

    def spy(*args, **kwargs):
        seen.append((kwargs.get("save_gates"), kwargs.get("save_act_c")))
        return real(*args, **kwargs)

    monkeypatch.setattr(ops, "lstm_forward", spy)
    x = np.ones((2, 3, 4), np.float32)
    layer = attnlstm.layers.LSTM(5, return_sequences=True)
    y = layer(x)
    out, ctx = layer.forward(x)
    assert seen == [(False, False), (True, True)]
    np.testing.assert_array_equal(y, out)
    layer.backward(ctx, np.ones_like(out))


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("H", [64, 40])
def test_large_outputs_are_aligned_and_streamed_gates_are_right(dt, H):
    """Outputs of 64 KiB or more start on a 64-byte boundary (a view into a slightly larger
    buffer), so the fused cell streams the saved gates and a(c) past the caches (whole aligned
    vectors; H = 40 leaves partial panels stored as usual). The forward's saved arrays and the
    backward they feed still match the NumPy twin, on every path `make test` runs this under;
    small outputs stay plain arrays."""
    rng = np.random.default_rng(H)
    B, T, D = 16, 12, 5
    x, W, U, b, h0, c0 = (a.astype(dt) for a in inputs(rng, B, T, D, H))
    hs, cs, out, gates, act_c = _core.lstm_forward(x, W, U, b, h0, c0, None, _core.ACT_TANH,
                                                   _core.ACT_SIGMOID, False, save_act_c=True)
    assert gates.nbytes >= 1 << 16 and gates.ctypes.data % 64 == 0 and gates.flags.c_contiguous
    assert act_c.nbytes < 1 << 16 or act_c.ctypes.data % 64 == 0
    small = _core.lstm_forward(x[:1, :2], W, U, b, None, None)[0]
    assert small.nbytes < 1 << 16 and small.base is None
    tol = TOL if dt == np.float32 else 1e-10
    o, lo, h, c = R.lstm(f64(x), f64(W), f64(U), f64(b), [f64(h0), f64(c0)])
    assert close(hs, o, tol) and close(act_c, np.tanh(f64(cs)), tol)
    dy = rng.standard_normal((B, T, H)).astype(dt)
    got = _core.lstm_backward(hs, cs, gates, x, W, U, h0, c0, None, None, None, act_c, dy)
    want = R.lstm_backward(f64(x), f64(W), f64(U), f64(b), [f64(h0), f64(c0)], None,
                           "tanh", "sigmoid", False, None, f64(dy))
    for g, k in zip(got, ("x", "kernel", "recurrent_kernel", "bias", "h0", "c0")):
        assert close(g, want[k], 5e-4 if dt == np.float32 else 1e-9), k
