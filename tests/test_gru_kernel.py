"""GRU kernel (csrc/gru_impl.h): the forward against the NumPy twin (reference_gru.gru) for
every option and forced path, the backward against central finite differences (float64),
float32 against float64, and the binding's argument checking."""
import itertools
import os
import subprocess
import sys

import numpy as np
import pytest

from attnlstm import _core, ops
import reference_gru as R

CODE = {"tanh": 1, "sigmoid": 2, "hard_sigmoid": 3, "relu": 4, "linear": 0}
IMPLS = (1, 2, 3)          # generic, AVX2, AVX-512 (falls back to what the CPU has)


def make_case(rng, B=3, T=5, D=4, H=5, reset_after=True, dt=np.float64, masked=False,
              state=True, drop=False, bias=True):
    c = dict(
        x=rng.standard_normal((B, T, D)).astype(dt),
        kernel=(rng.standard_normal((D, 3 * H)) * 0.5).astype(dt),
        recurrent_kernel=(rng.standard_normal((H, 3 * H)) * 0.5).astype(dt),
        bias=(rng.standard_normal((2, 3 * H) if reset_after else (3 * H,)) * 0.3).astype(dt)
        if bias else None,
        h0=(rng.standard_normal((B, H)) * 0.5).astype(dt) if state else None,
        mask=None, dp_mask=None, rec_mask=None)
    if masked:
        m = rng.random((B, T)) > 0.35
        m[0, :] = True
        m[-1, :] = False          # a fully masked sample
        m[1 % B, 0] = False       # a leading masked step
        c["mask"] = m
    if drop:
        c["dp_mask"] = ((rng.random((B, 3 * D)) > 0.25) / 0.75).astype(dt)
        c["rec_mask"] = ((rng.random((B, 3 * H)) > 0.25) / 0.75).astype(dt)
    return c


def forward(c, reset_after, gb, impl, act="tanh", ract="sigmoid"):
    return _core.gru_forward(c["x"], c["kernel"], c["recurrent_kernel"], c["bias"], c["h0"],
                             c["mask"], CODE[act], CODE[ract], reset_after, gb, c["dp_mask"],
                             c["rec_mask"], impl)


@pytest.mark.parametrize("reset_after,gb,masked,drop,impl",
                         list(itertools.product((True, False), (False, True), (False, True),
                                           (False, True), IMPLS)))
def test_forward_matches_twin(reset_after, gb, masked, drop, impl):
    rng = np.random.default_rng(hash((reset_after, gb, masked, drop)) % 2**32)
    c = make_case(rng, reset_after=reset_after, masked=masked, drop=drop)
    hs, out, gates, rh = forward(c, reset_after, gb, impl)
    ref, hT = R.gru(c["x"], c["kernel"], c["recurrent_kernel"], c["bias"], c["h0"], c["mask"],
                    reset_after=reset_after, go_backwards=gb, dp_mask=c["dp_mask"],
                    rec_mask=c["rec_mask"])
    got = hs if out is None else out
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(hs[:, -1], hT, rtol=1e-12, atol=1e-12)
    assert (rh is None) == (not reset_after)


@pytest.mark.parametrize("act,ract", [("relu", "hard_sigmoid"), ("linear", "tanh"),
                                      ("sigmoid", "linear")])
def test_forward_other_activations(act, ract):
    rng = np.random.default_rng(1)
    c = make_case(rng, masked=True)
    hs, out, _, _ = forward(c, True, False, 0, act, ract)
    ref, _ = R.gru(c["x"], c["kernel"], c["recurrent_kernel"], c["bias"], c["h0"], c["mask"],
                   act, ract)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("B,H,impl", [(1, 70, 3), (9, 33, 2), (16, 64, 0), (2, 130, 3)])
def test_forward_odd_sizes(B, H, impl):
    """Panel tails (H not a multiple of the panel width) and tile heights."""
    rng = np.random.default_rng(B * H)
    c = make_case(rng, B=B, T=4, D=6, H=H)
    hs, _, _, _ = forward(c, True, False, impl)
    ref, _ = R.gru(c["x"], c["kernel"], c["recurrent_kernel"], c["bias"], c["h0"])
    np.testing.assert_allclose(hs, ref, rtol=1e-11, atol=1e-11)
    c = make_case(rng, B=B, T=4, D=6, H=H, reset_after=False)
    hs, _, _, _ = forward(c, False, False, impl)
    ref, _ = R.gru(c["x"], c["kernel"], c["recurrent_kernel"], c["bias"], c["h0"],
                   reset_after=False)
    np.testing.assert_allclose(hs, ref, rtol=1e-11, atol=1e-11)


def _loss_and_grads(c, reset_after, gb, impl, up, act="tanh", ract="sigmoid"):
    hs, out, gates, rh = forward(c, reset_after, gb, impl, act, ract)
    o = hs if out is None else out
    loss = sum(np.sum(a * up[k]) for a, k in ((o, "d_out"), (o[:, -1], "d_last"),
                                               (hs[:, -1], "d_h")) if up[k] is not None)
    g = _core.gru_backward(hs, gates, rh, c["x"], c["kernel"], c["recurrent_kernel"], c["h0"],
                           c["mask"], c["dp_mask"], c["rec_mask"], up["d_out"], up["d_last"],
                           up["d_h"], CODE[act], CODE[ract], reset_after, gb, impl)
    return loss, dict(zip(("x", "kernel", "recurrent_kernel", "bias", "h0"), g))


def _fd_check(c, reset_after, gb, impl, act="tanh", ract="sigmoid", seed=0):
    rng = np.random.default_rng(seed)
    B, T, _ = c["x"].shape
    H = c["recurrent_kernel"].shape[0]
    up = dict(d_out=rng.standard_normal((B, T, H)), d_last=rng.standard_normal((B, H)),
              d_h=rng.standard_normal((B, H)))
    _, grads = _loss_and_grads(c, reset_after, gb, impl, up, act, ract)
    eps = 1e-6
    for name in ("x", "kernel", "recurrent_kernel", "bias", "h0"):
        if c[name] is None:
            continue
        a = c[name]
        num = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            old = a[idx]
            a[idx] = old + eps
            lp = _loss_and_grads(c, reset_after, gb, impl, up, act, ract)[0]
            a[idx] = old - eps
            lm = _loss_and_grads(c, reset_after, gb, impl, up, act, ract)[0]
            a[idx] = old
            num[idx] = (lp - lm) / (2 * eps)
        np.testing.assert_allclose(grads[name], num, rtol=1e-6, atol=1e-7, err_msg=name)


@pytest.mark.parametrize("reset_after,gb,masked,drop,impl",
                         [(True, False, False, False, 1), (True, False, False, False, 3),
                          (False, False, False, False, 1), (False, False, False, False, 2),
                          (True, True, True, False, 0), (False, True, True, False, 3),
                          (True, False, True, True, 1), (False, False, False, True, 1),
                          (True, True, False, True, 0)])
def test_backward_finite_differences(reset_after, gb, masked, drop, impl):
    rng = np.random.default_rng(7)
    c = make_case(rng, B=3, T=4, D=3, H=4, reset_after=reset_after, masked=masked, drop=drop)
    _fd_check(c, reset_after, gb, impl)


def test_backward_no_state_no_bias_other_activations():
    rng = np.random.default_rng(3)
    c = make_case(rng, B=2, T=4, D=3, H=3, state=False, bias=False)
    _fd_check(c, True, False, 0, "sigmoid", "tanh")
    c = make_case(rng, B=2, T=4, D=3, H=3, state=False, reset_after=False)
    _fd_check(c, False, True, 0, "linear", "sigmoid")


@pytest.mark.parametrize("reset_after", (True, False))
def test_backward_paths_agree(reset_after):
    """The generic path (no FMA) and the vector paths give the same gradients (to rounding)."""
    rng = np.random.default_rng(11)
    c = make_case(rng, B=5, T=6, D=7, H=40, reset_after=reset_after, masked=True)
    up = dict(d_out=rng.standard_normal((5, 6, 40)), d_last=None, d_h=rng.standard_normal((5, 40)))
    _, g1 = _loss_and_grads(c, reset_after, False, 1, up)
    for impl in (2, 3):
        _, g2 = _loss_and_grads(c, reset_after, False, impl, up)
        for k in g1:
            np.testing.assert_allclose(g2[k], g1[k], rtol=1e-10, atol=1e-12, err_msg=k)


@pytest.mark.parametrize("reset_after,drop", [(True, False), (False, False), (True, True)])
def test_backward_weight_gradients_over_several_row_blocks(reset_after, drop):
    """B*T = 1100 rows: the weight gradients' products run in blocks of 512 rows, each
    continuing from the last one's sums (3H = 210 ends in a partial panel). They equal the
    sums of the gradients of the batch's halves (550 rows: one block each) and a directional
    finite difference (float64), and are the same bits on one and two threads."""
    rng = np.random.default_rng(21)
    c = make_case(rng, B=20, T=55, D=9, H=70, reset_after=reset_after, masked=True, drop=drop)
    for k in ("kernel", "recurrent_kernel"):
        c[k] *= 0.4
    up = dict(d_out=rng.standard_normal((20, 55, 70)), d_last=None, d_h=None)
    loss, g = _loss_and_grads(c, reset_after, False, 0, up)
    half = []
    for sl in (slice(0, 10), slice(10, 20)):
        ch = {k: (v[sl] if k in ("x", "h0", "mask", "dp_mask", "rec_mask") and v is not None
                  else v) for k, v in c.items()}
        half.append(_loss_and_grads(ch, reset_after, False, 0, dict(up, d_out=up["d_out"][sl]))[1])
    for k in ("kernel", "recurrent_kernel", "bias"):
        np.testing.assert_allclose(g[k], half[0][k] + half[1][k], rtol=1e-10, atol=1e-10,
                                   err_msg=k)
    eps = 1e-6
    for k in ("kernel", "recurrent_kernel"):
        v = rng.standard_normal(c[k].shape)
        w0 = c[k].copy()
        c[k] = w0 + eps * v
        lp = _loss_and_grads(c, reset_after, False, 0, up)[0]
        c[k] = w0 - eps * v
        lm = _loss_and_grads(c, reset_after, False, 0, up)[0]
        c[k] = w0
        assert abs((lp - lm) / (2 * eps) - np.sum(g[k] * v)) <= 1e-6 * abs(np.sum(g[k] * v)), k
    c32 = {k: (v.astype(np.float32) if isinstance(v, np.ndarray) and v.dtype == np.float64
               else v) for k, v in c.items()}
    res = []
    for threads in (1, 2):
        hs, out, gates, rh = _core.gru_forward(
            c32["x"], c32["kernel"], c32["recurrent_kernel"], c32["bias"], c32["h0"],
            c32["mask"], 1, 2, reset_after, False, c32["dp_mask"], c32["rec_mask"],
            threads=threads)
        res.append(_core.gru_backward(
            hs, gates, rh, c32["x"], c32["kernel"], c32["recurrent_kernel"], c32["h0"],
            c32["mask"], c32["dp_mask"], c32["rec_mask"], up["d_out"].astype(np.float32), None,
            None, 1, 2, reset_after, False, threads=threads))
    for a, r in zip(*res):
        assert np.array_equal(a, r)


def test_float32_matches_float64():
    rng = np.random.default_rng(5)
    c64 = make_case(rng, B=4, T=8, D=5, H=16, masked=True, drop=True)
    c32 = {k: (v.astype(np.float32) if isinstance(v, np.ndarray) and v.dtype == np.float64
               else v) for k, v in c64.items()}
    for ra in (True, False):
        c64["bias"] = (rng.standard_normal((2, 48) if ra else (48,)) * 0.3)
        c32["bias"] = c64["bias"].astype(np.float32)
        a = ops.gru_forward(**{k: c64[k] for k in ("x", "kernel", "recurrent_kernel", "bias")},
                            initial_state=c64["h0"], mask=c64["mask"], reset_after=ra,
                            dp_mask=c64["dp_mask"], rec_mask=c64["rec_mask"])
        b = ops.gru_forward(**{k: c32[k] for k in ("x", "kernel", "recurrent_kernel", "bias")},
                            initial_state=c32["h0"], mask=c32["mask"], reset_after=ra,
                            dp_mask=c32["dp_mask"], rec_mask=c32["rec_mask"])
        assert b["outputs"].dtype == np.float32
        np.testing.assert_allclose(b["outputs"], a["outputs"], rtol=1e-4, atol=1e-5)
        d = rng.standard_normal(a["outputs"].shape)
        ga = ops.gru_backward(a, d_outputs=d)
        gb = ops.gru_backward(b, d_outputs=d.astype(np.float32))
        for k in ("x", "kernel", "recurrent_kernel", "bias", "h0"):
            np.testing.assert_allclose(gb[k], ga[k], rtol=1e-3, atol=1e-4, err_msg=k)


def test_ops_gru_shared_dropout_mask_and_return_state():
    rng = np.random.default_rng(2)
    c = make_case(rng)
    p = ((rng.random((3, 4)) > 0.3) / 0.7)
    r = ops.gru_forward(c["x"], c["kernel"], c["recurrent_kernel"], c["bias"], [c["h0"]],
                        dp_mask=p)
    ref, _ = R.gru(c["x"], c["kernel"], c["recurrent_kernel"], c["bias"], c["h0"], dp_mask=p)
    np.testing.assert_allclose(r["outputs"], ref, rtol=1e-12)
    out, h = ops.gru(c["x"], c["kernel"], c["recurrent_kernel"], c["bias"], c["h0"],
                     return_sequences=True, return_state=True)
    np.testing.assert_allclose(out, ref * 0 + R.gru(c["x"], c["kernel"], c["recurrent_kernel"],
                                                      c["bias"], c["h0"])[0], rtol=1e-12)
    np.testing.assert_array_equal(h, out[:, -1])


@pytest.mark.parametrize("kwargs,match", [
    (dict(kernel=np.zeros((5, 15))), r"`kernel` must have shape \(4, 15\), got \(5, 15\).\n"
                                     r"Hint: the kernel was made for 5 input features; x has 4"),
    (dict(recurrent_kernel=np.zeros((5, 20))),
     r"`recurrent_kernel` must have shape \(units, 3\*units\)"),
    (dict(bias=np.zeros(15)),
     r"`bias` must have shape \(2, 15\), got \(15,\).\nHint: reset_after=True"),
    (dict(initial_state=np.zeros((3, 4))),
     r"`initial_state` must have shape \(3, 5\), got \(3, 4\)"),
    (dict(mask=np.ones((3, 4))), r"`mask` must have shape \(3, 5\), got \(3, 4\)"),
    (dict(rec_mask=np.ones((3, 7))), r"`rec_mask` must have shape \(3, 5\) .* or \(3, 15\)"),
    (dict(x=np.zeros((3, 4))), r"`x` must have shape \(batch, timesteps, features\), got \(3, 4\)"),
])
def test_ops_shape_errors(kwargs, match):
    rng = np.random.default_rng(0)
    c = make_case(rng)
    args = dict(x=c["x"], kernel=c["kernel"], recurrent_kernel=c["recurrent_kernel"],
                bias=c["bias"])
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        ops.gru_forward(**args)


def test_binding_rejects_bad_input_without_crashing():
    rng = np.random.default_rng(0)
    c = make_case(rng)
    x, W, U = c["x"], c["kernel"], c["recurrent_kernel"]
    with pytest.raises(TypeError):
        _core.gru_forward(x, W.astype(np.float32), U)
    with pytest.raises(ValueError, match="recurrent_kernel"):
        _core.gru_forward(x, W, U[:, :-1])
    with pytest.raises(ValueError, match="bias"):
        _core.gru_forward(x, W, U, np.zeros(15))          # reset_after needs (2, 3H)
    with pytest.raises(ValueError, match="bias"):
        _core.gru_forward(x, W, U, np.zeros((2, 15)), reset_after=False)
    with pytest.raises(ValueError, match="dp_mask"):
        _core.gru_forward(x, W, U, dp_mask=np.ones((3, 4)))   # strict: (B, 3D)
    with pytest.raises(ValueError, match="impl"):
        _core.gru_forward(x, W, U, impl=9)
    with pytest.raises(ValueError, match="activation"):
        _core.gru_forward(x, W, U, activation=17)
    with pytest.raises(ValueError, match=r"`x` must have shape \(B, T, D\) with T >= 1"):
        _core.gru_forward(x[:, :0], W, U)
    hs, out, g, rh = _core.gru_forward(x, W, U, c["bias"])
    with pytest.raises(ValueError, match="rh"):
        _core.gru_backward(hs, g, None, x, W, U)
    with pytest.raises(ValueError, match="gates"):
        _core.gru_backward(hs, g[:, :, :-1], rh, x, W, U)
    with pytest.raises(ValueError, match="d_outputs"):
        _core.gru_backward(hs, g, rh, x, W, U, d_outputs=np.zeros((3, 5, 4)))
    # non-contiguous inputs are copied, not misread
    xt = np.asfortranarray(x)
    np.testing.assert_allclose(_core.gru_forward(xt, W, U, c["bias"])[0], hs)
    with pytest.raises(ValueError, match="save_gates"):
        r = ops.gru_forward(x, W, U, c["bias"], save_gates=False)
        ops.gru_backward(r)


@pytest.mark.parametrize("reset_after,masked", [(True, False), (False, True)])
def test_threads_split_rows_bitwise(reset_after, masked):
    """Threads take whole batch rows: forward and backward are bitwise the same for any count."""
    rng = np.random.default_rng(21)
    c = make_case(rng, B=7, T=6, D=5, H=40, reset_after=reset_after, masked=masked,
                  dt=np.float32)
    args = dict(x=c["x"], kernel=c["kernel"], recurrent_kernel=c["recurrent_kernel"],
                bias=c["bias"], initial_state=c["h0"], mask=c["mask"], reset_after=reset_after,
                impl=3)
    d = rng.standard_normal((7, 6, 40)).astype(np.float32)
    r1 = ops.gru_forward(**args, threads=1)
    g1 = ops.gru_backward(r1, d_outputs=d)
    for nt in (2, 3, 7, 9):
        r2 = ops.gru_forward(**args, threads=nt)
        np.testing.assert_array_equal(r2["outputs"], r1["outputs"])
        np.testing.assert_array_equal(r2["gates"], r1["gates"])
        g2 = ops.gru_backward(r2, d_outputs=d)
        for k in ("x", "kernel", "recurrent_kernel", "bias", "h0"):
            np.testing.assert_array_equal(g2[k], g1[k], err_msg=f"{k} threads={nt}")
    with pytest.raises(ValueError, match="threads"):
        _core.gru_forward(c["x"], c["kernel"], c["recurrent_kernel"], threads=-1)


@pytest.mark.parametrize("impl", [1, 2, 3], ids=["generic", "avx2", "avx512"])
@pytest.mark.parametrize("dt", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("B", [1, 3])
def test_threads_split_units_bitwise(B, dt, impl):
    """Small batches split the forward by hidden units (whole panels of the packed U, a barrier
    per step; gru_fwd_units): bitwise the same as one thread, with and without reset_after,
    masks, initial state and go_backwards. H = 128 is a multiple of every path's panel."""
    rng = np.random.default_rng(5)
    for reset_after, masked, gb, state in itertools.product((True, False), repeat=4):
        c = make_case(rng, B=B, T=6, D=5, H=128, reset_after=reset_after, dt=dt, masked=masked,
                      state=state)
        one = _core.gru_forward(c["x"], c["kernel"], c["recurrent_kernel"], c["bias"], c["h0"],
                                c["mask"], reset_after=reset_after, go_backwards=gb, impl=impl,
                                threads=1)
        for nt in (2, 3, 5):
            many = _core.gru_forward(c["x"], c["kernel"], c["recurrent_kernel"], c["bias"],
                                     c["h0"], c["mask"], reset_after=reset_after,
                                     go_backwards=gb, impl=impl, threads=nt)
            for k, (a, b) in enumerate(zip(one, many)):
                if a is None or (masked and k >= 2):   # gates, u_h of masked steps: unspecified
                    continue
                np.testing.assert_array_equal(b, a, err_msg=f"{k} {reset_after} {masked} {gb} {nt}")


def test_threads_split_units_runs_on_the_pool():
    """At B = 1 a row split is impossible, so pool workers start only if the unit split ran (in
    a fresh process: the pool is started lazily)."""
    code = ("import os, numpy as np; from attnlstm import _core\n"
            "n0 = len(os.listdir('/proc/self/task'))\n"
            "x = np.ones((1, 4, 3), np.float32)\n"
            "W, U = np.full((3, 384), 0.1, np.float32), np.full((128, 384), 0.1, np.float32)\n"
            "_core.gru_forward(x, W, U, threads=2)\n"
            "print(len(os.listdir('/proc/self/task')) - n0)\n")
    if not os.path.isdir("/proc/self/task"):
        pytest.skip("needs /proc")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert int(out.strip()) >= 1


@pytest.mark.parametrize("reset_after", [True, False])
def test_ops_gru_fast_path_matches_general_path(reset_after):
    """ops.gru's shortcut for ready arrays gives the general path's results."""
    rng = np.random.default_rng(4)
    for dt in (np.float32, np.float64):
        c = make_case(rng, reset_after=reset_after, dt=dt)
        args = (c["x"], c["kernel"], c["recurrent_kernel"], c["bias"])
        for gb in (False, True):
            fast = ops.gru(*args, reset_after=reset_after, go_backwards=gb,
                           return_sequences=True, return_state=True)
            slow = ops.gru(*args, reset_after=reset_after, go_backwards=gb,
                           return_sequences=True, return_state=True, dtype=dt)
            for a, b in zip(fast, slow):
                assert a.dtype == dt
                np.testing.assert_array_equal(a, b)
        # not ready (list input, other dtype): the general path, same numbers
        np.testing.assert_allclose(ops.gru(c["x"].tolist(), *args[1:], reset_after=reset_after,
                                           dtype=dt), ops.gru(*args, reset_after=reset_after))


@pytest.mark.parametrize("B,threads", [(1, 1), (5, 1), (5, 2), (1, 2)])
def test_saved_rh_is_zero_at_masked_steps(B, threads):
    """rh (reset_after) holds 0 at masked steps, the same bits call after call: the kernel used
    to leave those slots holding stale heap memory."""
    rng = np.random.default_rng(5)
    T, D, H = 6, 4, 20
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    W = (rng.standard_normal((D, 3 * H)) * .3).astype(np.float32)
    U = (rng.standard_normal((H, 3 * H)) * .3).astype(np.float32)
    b = rng.standard_normal((2, 3 * H)).astype(np.float32)
    m = rng.random((B, T)) > .4
    m[:, 0] = False
    outs = []
    for fill in (7.0, np.nan):
        junk = np.full((1 << 20,), fill, np.float32)   # leaves stale values on the heap
        del junk
        hs, o, g, rh = _core.gru_forward(x, W, U, b, None, m, reset_after=True, threads=threads)
        assert np.all(rh[~m] == 0)
        outs.append(rh)
    assert np.array_equal(outs[0], outs[1])
