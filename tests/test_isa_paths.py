"""The kernel paths (ATTNLSTM_ISA = avx512 | avx2 | generic, csrc/al_isa.c) and their guarantees.

* Each path can be forced at import; one the CPU cannot run, or an unknown name, is a
  RuntimeError at import naming the CPU's flags. show_config() reports the choice.
* The LSTM and GRU kernels give a sample the same bits whatever the batch size, its position in
  the batch and the thread count, forward and backward, float32 and float64, on the path this
  process runs (`make test` re-runs this file under every path the CPU supports, see the
  Makefile); the weight gradients are the same bits for every thread count.
* The paths agree with each other: AVX2 and AVX-512 to the bit (the same FMAs in the same order),
  generic (no FMA) to 2e-6 relative in float32. Checked in subprocesses, one per path.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

import attnlstm
from attnlstm import Input, Model, _core, layers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ORDER = ["generic", "avx2", "avx512"]
SUPPORTED = ORDER[:ORDER.index(_core.isa_info()["cpu_best"]) + 1]


def run_py(code, isa, check=True):
    """Run `code` in a fresh interpreter importing this tree's attnlstm with ATTNLSTM_ISA=isa."""
    env = dict(os.environ, ATTNLSTM_ISA=isa)
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=600)
    if check:
        assert res.returncode == 0, res.stderr[-3000:]
    return res


# ------------------------------------------------------------------------------------------
# Selection and report


def test_show_config_reports_the_path(capsys):
    cfg = attnlstm.show_config(mode="dicts")
    info = _core.isa_info()
    assert cfg["kernel_path"]["isa"] == info["isa"] in ORDER
    assert cfg["kernel_path"]["cpu_best"] == info["cpu_best"]
    assert cfg["kernel_path"]["requested"] == (os.environ.get("ATTNLSTM_ISA") or None)
    assert cfg["threads"]["num_threads"] == attnlstm.get_num_threads() >= 1
    assert cfg["blas"]["threading"] in ("sequential", "pthreads", "openmp")
    if info["isa"] != "generic":
        assert "fma" in cfg["cpu"]["simd_flags"]
    assert capsys.readouterr().out == ""
    assert attnlstm.show_config() is None
    out = capsys.readouterr().out
    assert "path: %s" % info["isa"] in out and "model:" in out and "OpenBLAS" in out
    assert "ATTNLSTM_ISA" in out and "get_num_threads(): %d" % attnlstm.get_num_threads() in out
    with pytest.raises(ValueError, match="show_config: `mode` must be 'stdout' or 'dicts'"):
        attnlstm.show_config(mode="json")


@pytest.mark.parametrize("isa", SUPPORTED)
def test_each_supported_path_can_be_forced(isa):
    res = run_py("import attnlstm; c = attnlstm.show_config('dicts')['kernel_path'];"
                 "print(c['isa'], c['requested'])", isa)
    assert res.stdout.split() == [isa, isa]


def test_unknown_path_is_an_error_at_import():
    res = run_py("import attnlstm", "sse9", check=False)
    assert res.returncode != 0
    assert "RuntimeError: ATTNLSTM_ISA must be one of 'avx512', 'avx2', 'generic'" in res.stderr
    assert "got 'sse9'" in res.stderr


@pytest.mark.skipif(SUPPORTED == ORDER, reason="this CPU runs every path (AVX-512)")
def test_unsupported_path_is_a_runtime_error_naming_the_flags():
    wanted = ORDER[len(SUPPORTED)]
    res = run_py("import attnlstm", wanted, check=False)
    assert res.returncode != 0
    assert "RuntimeError: ATTNLSTM_ISA=%s: this CPU cannot run" % wanted in res.stderr
    assert "SIMD flags are:" in res.stderr


# ------------------------------------------------------------------------------------------
# Same bits for a sample whatever the batch, its position and the thread count


SIZES = (1, 3, 8, 11, 32)


def _lstm_case(dt, seed=0, D=5, H=40, T=9, masked=False):
    rng = np.random.default_rng(seed)
    f = lambda *s: rng.standard_normal(s).astype(dt)  # noqa: E731
    W, U, b = f(D, 4 * H) * 0.4, f(H, 4 * H) * 0.3, f(4 * H) * 0.2
    X, dY, h0, c0 = f(32, T, D), f(32, T, H), f(32, H), f(32, H)
    M = rng.random((32, T)) > 0.3 if masked else None
    return W, U, b, X, dY, h0, c0, M


def _per_sample(W, U, b, X, dY, h0, c0, M, idx, threads, init):
    x, dy = X[idx], dY[idx]
    h, c = (h0[idx], c0[idx]) if init else (None, None)
    m = M[idx] if M is not None else None
    hs, cs, out, g, ac = _core.lstm_forward(x, W, U, b, h, c, m, save_act_c=True, threads=threads)
    grads = _core.lstm_backward(hs, cs, g, x, W, U, h, c, m, act_c=ac, d_outputs=dy,
                                threads=threads)
    return [hs, cs] + ([out] if m is not None else []) + [grads[0], grads[4], grads[5]], grads


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("init,masked", [(False, False), (True, True)])
def test_lstm_sample_bits_do_not_depend_on_batch_or_threads(dt, init, masked):
    """Sample 0 at the first and last position of batches of 1..32, on 1 and 2 threads: hs, cs,
    the masked output, dx, dh0 and dc0 are the same bits as alone on one thread."""
    W, U, b, X, dY, h0, c0, M = _lstm_case(dt, seed=1 + init, masked=masked)
    _assert_sample_bits(lambda idx, threads: _per_sample(W, U, b, X, dY, h0, c0, M, idx,
                                                         threads, init)[0])


def _assert_sample_bits(results):
    """Sample 0 put first and last in batches of every size in SIZES, on 1 and 2 threads:
    `results(idx, threads)` (arrays with the batch first) gives it the same bits every time."""
    ref = None
    for threads in (1, 2):
        for B in SIZES:
            for pos in sorted({0, B - 1}):
                idx = list(range(1, B))
                idx.insert(pos, 0)
                got = [a[pos] for a in results(idx, threads)]
                if ref is None:
                    ref = got
                for a, r in zip(got, ref):
                    assert np.array_equal(a, r), (B, pos, threads)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_lstm_weight_gradients_do_not_depend_on_threads(dt):
    """dW, dU, db (sums over the batch) are the same bits on 1 and 2 threads (forced, and through
    set_num_threads at a size where the automatic choice splits), also with dropout masks."""
    W, U, b, X, dY, h0, c0, M = _lstm_case(dt, seed=3, H=64, masked=True)
    for threads in (0, 2):
        one = _per_sample(W, U, b, X, dY, h0, c0, M, list(range(32)), 1, True)[1]
        many = _per_sample(W, U, b, X, dY, h0, c0, M, list(range(32)), threads, True)[1]
        for a, r in zip(many, one):
            assert np.array_equal(a, r)
    rng = np.random.default_rng(4)
    dp = (rng.random((32, 4 * 5)) > 0.2).astype(dt)
    rp = (rng.random((32, 4 * 64)) > 0.2).astype(dt)
    res = []
    for threads in (1, 2):
        hs, cs, _, g = _core.lstm_forward(X, W, U, b, h0, c0, M, dp_mask=dp, rec_mask=rp,
                                          threads=threads)
        res.append(_core.lstm_backward(hs, cs, g, X, W, U, h0, c0, M, dp, rp, d_outputs=dY,
                                       threads=threads))
    for a, r in zip(*res):
        assert np.array_equal(a, r)


def _gru_case(dt, seed=0, D=5, H=40, T=9, masked=False, reset_after=True):
    rng = np.random.default_rng(seed)
    f = lambda *s: rng.standard_normal(s).astype(dt)  # noqa: E731
    W, U = f(D, 3 * H) * 0.4, f(H, 3 * H) * 0.3
    b = f(2, 3 * H) * 0.2 if reset_after else f(3 * H) * 0.2
    X, dY, h0 = f(32, T, D), f(32, T, H), f(32, H)
    M = rng.random((32, T)) > 0.3 if masked else None
    dp = (rng.random((32, 3 * D)) > 0.2).astype(dt)
    rp = (rng.random((32, 3 * H)) > 0.2).astype(dt)
    return W, U, b, X, dY, h0, M, dp, rp


def _gru_per_sample(case, idx, threads, init, drop, reset_after):
    W, U, b, X, dY, h0, M, dp, rp = case
    h = h0[idx] if init else None
    m = M[idx] if M is not None else None
    p, r = (dp[idx], rp[idx]) if drop else (None, None)
    hs, out, g, rh = _core.gru_forward(X[idx], W, U, b, h, m, reset_after=reset_after,
                                       dp_mask=p, rec_mask=r, threads=threads)
    grads = _core.gru_backward(hs, g, rh, X[idx], W, U, h, m, p, r, d_outputs=dY[idx],
                               reset_after=reset_after, threads=threads)
    return [hs] + ([out] if m is not None else []) + [grads[0], grads[4]], grads


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("init,masked,drop,reset_after", [(False, False, False, True),
                                                          (True, True, True, False),
                                                          (True, False, True, True)])
def test_gru_sample_bits_do_not_depend_on_batch_or_threads(dt, init, masked, drop, reset_after):
    """GRU: sample 0 at the first and last position of batches of 1..32, on 1 and 2 threads: hs,
    the masked output, dx and dh0 are the same bits as alone on one thread (H = 40: neither
    path's panel width divides 3H, and the cells' 64-byte chunks leave a tail)."""
    case = _gru_case(dt, seed=11 + init, masked=masked, reset_after=reset_after)
    _assert_sample_bits(lambda idx, threads: _gru_per_sample(case, idx, threads, init, drop,
                                                             reset_after)[0])


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_weight_gradients_do_not_depend_on_threads(dt, reset_after):
    """GRU: dW, dU, db (sums over the batch, on the packed tiles) and every other result are the
    same bits on 1 and 2 threads (forced, and automatic), with and without dropout masks."""
    case = _gru_case(dt, seed=13, H=64, masked=True, reset_after=reset_after)
    for drop in (False, True):
        one = _gru_per_sample(case, list(range(32)), 1, True, drop, reset_after)[1]
        for threads in (0, 2):
            many = _gru_per_sample(case, list(range(32)), threads, True, drop, reset_after)[1]
            for a, r in zip(many, one):
                assert np.array_equal(a, r)


def test_set_num_threads_gives_the_same_bits_at_large_size():
    """A call above the automatic threading threshold (5e6 flops, AL_SPLIT_FLOPS), through
    set_num_threads: forward and every gradient are the same bits on 1 and 2 threads."""
    rng = np.random.default_rng(5)
    f = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    B, T, D, H = 24, 40, 16, 384
    x, W, U, b, dy = f(B, T, D), f(D, 4 * H) * 0.1, f(H, 4 * H) * 0.05, f(4 * H), f(B, T, H)
    old = attnlstm.get_num_threads()
    res = []
    try:
        for n in (1, 2):
            attnlstm.set_num_threads(n)
            hs, cs, _, g = _core.lstm_forward(x, W, U, b)
            res.append([hs, cs] + list(_core.lstm_backward(hs, cs, g, x, W, U, d_outputs=dy)))
    finally:
        attnlstm.set_num_threads(old)
    for a, r in zip(*res):
        assert np.array_equal(a, r)


def test_predict_same_bits_for_every_batch_size_and_thread_count():
    """Model.predict: each sample's output is the same bits at batch sizes 1, 3, 8, 11, 32 and
    on 1 or 2 threads (the promise of set_num_threads' docstring)."""
    rng = np.random.default_rng(6)
    x = Input((30, 4))
    h = layers.LSTM(24, return_sequences=True)(x)
    model = Model(x, layers.LSTM(16)(h))
    data = rng.standard_normal((33, 30, 4)).astype("float32")
    old = attnlstm.get_num_threads()
    try:
        attnlstm.set_num_threads(1)
        ref = model.predict(data, batch_size=1)
        for n in (1, 2):
            attnlstm.set_num_threads(n)
            for bs in SIZES:
                assert np.array_equal(model.predict(data, batch_size=bs), ref), (n, bs)
    finally:
        attnlstm.set_num_threads(old)


# ------------------------------------------------------------------------------------------
# The paths agree with each other

_DUMP = r"""
import sys, numpy as np
from attnlstm import _core
out = {}
rng = np.random.default_rng(7)
# drop: "both" dp_mask and rec_mask, "rec" rec_mask only. T = 1 with a state and no dropout
# takes the single-step form when 4H is a multiple of the path's panel width (H = 8, 20 on AVX2
# only), rec_mask the per-step form: both must give the fused tiles' bits on every path.
cases = [(5, 7, 3, 20, 1, 2, False, None, True), (9, 6, 4, 64, 1, 2, True, None, False),
         (3, 5, 2, 17, 4, 3, True, "both", True), (12, 4, 0, 32, 1, 2, False, "both", False),
         (5, 7, 3, 20, 1, 2, False, "rec", False), (6, 1, 3, 8, 1, 2, False, None, True),
         (6, 1, 3, 20, 1, 2, False, None, True), (7, 5, 4, 12, 1, 2, True, "rec", True)]
for dt in (np.float32, np.float64):
    for (B, T, D, H, act, ract, masked, drop, init) in cases:
        f = lambda *s: rng.standard_normal(s).astype(dt)
        x, W, U, b = f(B, T, D), f(D, 4 * H) * .3, f(H, 4 * H) * .3, f(4 * H)
        h0, c0 = (f(B, H), f(B, H)) if init else (None, None)
        m = rng.random((B, T)) > .3 if masked else None
        dp = (rng.random((B, 4 * D)) > .2).astype(dt) if drop == "both" else None
        rp = (rng.random((B, 4 * H)) > .2).astype(dt) if drop else None
        hs, cs, o, g, ac = _core.lstm_forward(x, W, U, b, h0, c0, m, act, ract, False, dp, rp,
                                              save_act_c=True)
        gr = _core.lstm_backward(hs, cs, g, x, W, U, h0, c0, m, dp, rp, ac, d_outputs=f(B, T, H),
                                 activation=act, recurrent_activation=ract)
        k = "lstm-%s-%d-%d-%d-%d-" % (np.dtype(dt).name, B, T, D, H)
        for n, a in zip(["hs", "cs", "dx", "dW", "dU", "db", "dh0", "dc0"], [hs, cs] + list(gr)):
            out[k + n] = a
        # the saved a(c) (at masked steps that of the carried c), and the backward that
        # recomputes a(c) when it was not saved: H = 20 and 17 leave a tail of 16 lanes
        out[k + "ac"] = ac
        if drop is None:
            gr = _core.lstm_backward(hs, cs, g, x, W, U, h0, c0, m, dp, rp, None,
                                     d_outputs=f(B, T, H), activation=act,
                                     recurrent_activation=ract)
            for n, a in zip(["dx", "dW", "dU", "db", "dh0", "dc0"], gr):
                out[k + "noac-" + n] = a
    # GRU: T = 1 with h0; rec_mask only; dp_mask and rec_mask; masks; reset_after 0 and 1;
    # H = 20 (3H = 60: a partial panel on both paths, 40 = 2H z|r elements: all vector on AVX2,
    # 32 + a tail on AVX-512), 33, 64
    gcases = [(6, 1, 3, 20, 1, None, True, False), (5, 7, 3, 20, 1, "rec", False, False),
              (5, 7, 3, 20, 0, "both", True, True), (4, 6, 5, 33, 0, None, True, False),
              (3, 5, 2, 17, 1, "both", False, True), (9, 4, 0, 64, 0, "rec", True, True),
              (7, 3, 4, 64, 1, None, False, True)]
    for (B, T, D, H, ra, drop, init, masked) in gcases:
        f = lambda *s: rng.standard_normal(s).astype(dt)
        x, W, U = f(B, T, D), f(D, 3 * H) * .3, f(H, 3 * H) * .3
        b = f(2, 3 * H) if ra else f(3 * H)
        h0 = f(B, H) if init else None
        m = rng.random((B, T)) > .3 if masked else None
        dp = (rng.random((B, 3 * D)) > .2).astype(dt) if drop == "both" else None
        rp = (rng.random((B, 3 * H)) > .2).astype(dt) if drop else None
        hs, o, g, rh = _core.gru_forward(x, W, U, b, h0, m, reset_after=bool(ra), dp_mask=dp,
                                         rec_mask=rp)
        gr = _core.gru_backward(hs, g, rh, x, W, U, h0, m, dp, rp, d_outputs=f(B, T, H),
                                reset_after=bool(ra))
        k = "gru-%s-%d-%d-%d-%d-%d-" % (np.dtype(dt).name, B, T, D, H, ra)
        res = [hs, g] + ([o] if m is not None else []) + list(gr)
        names = ["hs", "gates"] + (["out"] if m is not None else []) + ["dx", "dW", "dU", "db",
                                                                        "dh0"]
        for n, a in zip(names, res):
            out[k + n] = a
    # attention kernels (their vectorised loops have a copy per path)
    q, k, v = (rng.standard_normal((3, n, 8)).astype(dt) for n in (5, 21, 21))
    sc = rng.standard_normal(8).astype(dt)
    o, w = _core.additive_attention_forward(q, k, v, sc)
    d = _core.additive_attention_backward(rng.standard_normal(o.shape).astype(dt), None, w, q, k,
                                          v, sc)
    o2, w2 = _core.dot_attention_forward(q, k, v)
    for n, a in zip(["out", "w", "dq", "dk", "dv", "dscale", "dot_out", "dot_w"],
                    [o, w] + list(d) + [o2, w2]):
        out["attn-%s-%s" % (np.dtype(dt).name, n)] = a
    # softmax rows whose length leaves a remainder of 16 lanes: AVX-512 and AVX2 once
    # vectorised that remainder differently (an ulp apart at lengths 12 and 29)
    for n in (12, 29):
        qq, kk = (rng.standard_normal((2, m, 8)).astype(dt) for m in (3, n))
        o3, w3 = _core.dot_attention_forward(qq, kk, kk)
        out["attn-%s-softmax%d-out" % (np.dtype(dt).name, n)] = o3
        out["attn-%s-softmax%d-w" % (np.dtype(dt).name, n)] = w3
    # multi-head attention: head sizes below and above the dot tiles' limit (64 float32, 32
    # float64), Tv = 131 (whole panels and a partial one on every path), masks, a scores
    # gradient; relative terms once
    from attnlstm.ops import mha as M
    for HS, rel in ((8, False), (72, False), (5, True)):
        f = lambda *s: rng.standard_normal(s).astype(dt)
        B, Tq, Tv, NH = 2, 9, 131, 2
        w = dict(query_kernel=f(6, NH, HS), query_bias=f(NH, HS), key_kernel=f(6, NH, HS),
                 key_bias=f(NH, HS), value_kernel=f(6, NH, HS), value_bias=f(NH, HS),
                 output_kernel=f(NH, HS, 4), output_bias=f(4))
        q, v = f(B, Tq, 6), f(B, Tv, 6)
        am = rng.random((B, Tq, Tv)) > .3
        if rel:
            w.update(num_heads=NH, rel_k=f(5, HS), rel_v=f(5, HS), max_relative_position=2)
            sv = M.relative_attention_forward(q, v, attention_mask=am, **w)
            g = M.relative_attention_backward(sv, f(B, Tq, 4))
        else:
            sv = M.multi_head_attention_forward(q, v, attention_mask=am, **w)
            g = M.multi_head_attention_backward(sv, f(B, Tq, 4), f(B, NH, Tq, Tv))
        k = "mha-%s-%d-%d-" % (np.dtype(dt).name, HS, rel)
        out[k + "out"] = sv["outputs"]
        out[k + "scores"] = sv["attention_scores"]
        for n, a in g.items():
            # the key bias shifts whole score rows: its gradient is 0 plus rounding noise
            if a is not None and n != "key_bias":
                out[k + "d" + n] = a
np.savez(sys.argv[1] if len(sys.argv) > 1 else "out.npz", **out)
"""


@pytest.fixture(scope="module")
def path_results(tmp_path_factory):
    d = tmp_path_factory.mktemp("isa")
    res = {}
    for isa in SUPPORTED:
        fn = str(d / ("%s.npz" % isa))
        run_py("import sys; sys.argv = ['x', %r]\n" % fn + _DUMP, isa)
        res[isa] = dict(np.load(fn))
    return res


@pytest.mark.skipif("avx2" not in SUPPORTED, reason="no AVX2 on this CPU")
def test_avx2_and_avx512_paths_give_the_same_bits(path_results):
    if "avx512" not in path_results:
        pytest.skip("no AVX-512 on this CPU")
    a, b = path_results["avx512"], path_results["avx2"]
    assert set(a) == set(b)
    for k in a:
        assert np.array_equal(a[k], b[k]), k


def test_generic_path_agrees_with_the_vector_paths(path_results):
    """float32 within 2e-6 of the largest magnitude of each result, float64 within 1e-14 (five
    times that for the attention gradients)."""
    g = path_results["generic"]
    others = [path_results[k] for k in SUPPORTED if k != "generic"]
    if not others:
        pytest.skip("only the generic path runs on this CPU")
    for o in others:
        for k in g:
            scale = max(float(np.max(np.abs(o[k]), initial=0.0)), 1e-30)
            tol = 2e-6 if "float32" in k else 1e-14
            if k.startswith("mha-") and "-d" in k:
                # the attention gradients pass the softmax backward, w (dw - sum w dw): a
                # difference of near-equal terms that magnifies rounding (measured: 2.1e-6
                # relative on the key kernel in float32)
                tol *= 5
            assert float(np.max(np.abs(g[k].astype(np.float64) - o[k]), initial=0.0)) <= tol * scale, k


# ------------------------------------------------------------------------------------------
# The AVX2 path's one-row LSTM tile: one panel per k, or two (the default on AMD CPUs,
# ATTNLSTM_AVX2_ROW_PANELS forces either). Both must give the same bits, and AVX-512's.

_ROW_DUMP = r"""
import sys, numpy as np
from attnlstm import _core
out = {"row_panels": np.array(_core.isa_info()["avx2_row_panels"])}
rng = np.random.default_rng(11)
# H = 20 on AVX2: 3 panels (a pair and a partial one alone), 33: 5 panels, the last partial
for dt in (np.float32, np.float64):
    for (T, D, H, init, masked, back) in [(6, 3, 1, False, False, False),
                                          (5, 4, 20, True, True, False),
                                          (7, 0, 33, False, True, True),
                                          (4, 5, 64, True, False, True),
                                          (3, 6, 131, True, False, False)]:
        f = lambda *s: rng.standard_normal(s).astype(dt)
        x, W, U, b = f(1, T, D), f(D, 4 * H) * .3, f(H, 4 * H) * .3, f(4 * H)
        h0, c0 = (f(1, H), f(1, H)) if init else (None, None)
        m = rng.random((1, T)) > .3 if masked else None
        for threads in (1, 2):
            hs, cs, o, g, ac = _core.lstm_forward(x, W, U, b, h0, c0, m, go_backwards=back,
                                                  save_act_c=True, threads=threads)
            k = "%s-%d-%d-%d-%d-" % (np.dtype(dt).name, T, D, H, threads)
            for n, a in zip(["hs", "cs", "g", "ac"] + (["out"] if m is not None else []),
                            [hs, cs, g, ac] + ([o] if m is not None else [])):
                out[k + n] = a
np.savez(sys.argv[1], **out)
"""


@pytest.mark.skipif("avx2" not in SUPPORTED, reason="no AVX2 on this CPU")
def test_avx2_one_row_tiles_give_the_same_bits(tmp_path):
    """B = 1 forward (float32 and float64, partial panels, odd panel counts, masks, initial
    state, go_backwards, 1 and 2 threads) with one and two panels per k on the AVX2 path, and
    on the AVX-512 path where the CPU has it: the same bits."""
    res = {}
    runs = [("avx2", "1"), ("avx2", "2")] + ([("avx512", "")] if "avx512" in SUPPORTED else [])
    for isa, rp in runs:
        fn = str(tmp_path / ("%s-%s.npz" % (isa, rp)))
        env = dict(os.environ, ATTNLSTM_ISA=isa, ATTNLSTM_AVX2_ROW_PANELS=rp)
        r = subprocess.run([sys.executable, "-c", _ROW_DUMP, fn], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
        res[isa, rp] = dict(np.load(fn))
    assert int(res["avx2", "1"].pop("row_panels")) == 1
    assert int(res["avx2", "2"].pop("row_panels")) == 2
    ref = res["avx2", "1"]
    for key, got in res.items():
        got.pop("row_panels", None)
        assert set(got) == set(ref)
        for k in ref:
            assert np.array_equal(got[k], ref[k]), (key, k)


def test_avx2_row_panels_default_and_bad_value():
    info = _core.isa_info()
    forced = os.environ.get("ATTNLSTM_AVX2_ROW_PANELS")
    want = int(forced) if forced else (2 if info["cpu_vendor"] == "amd" else 1)
    assert info["avx2_row_panels"] == want and info["cpu_vendor"] in ("amd", "other")
    env = dict(os.environ, ATTNLSTM_AVX2_ROW_PANELS="4")
    r = subprocess.run([sys.executable, "-c", "import attnlstm"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode != 0
    assert ("RuntimeError: ATTNLSTM_AVX2_ROW_PANELS must be '1' or '2' (or unset: 2 on AMD "
            "CPUs, 1 on others), got '4'.") in r.stderr
