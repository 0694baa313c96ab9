"""Memory leak checks (issue #22): every public op of attnlstm.ops (forward and backward), a
model's predict and train_on_batch, and error paths of the binding and of the ops must leave the
process no bigger after warm-up.

Method: after a warm-up, the case is called N times twice; each window's growth is measured by
tracemalloc (Python objects and NumPy buffers, which NumPy reports to tracemalloc) and by the
resident set size (C-level mallocs: the kernels' workspaces). A leak of L bytes per call grows
both windows by about L*N; one-off growth (a cache filling, a dict resizing, the allocator
keeping a page) shows in one window only. So the test takes the smaller of the two windows,
divided by N, as the growth per call and fails above a small threshold. A leaked (B, H) array
(a missing Py_DECREF) costs >= 112 bytes per call on tracemalloc; a leaked workspace is at
least a few hundred bytes for these shapes.
"""
import gc
import os
import tracemalloc

import numpy as np
import pytest

from attnlstm import _core, layers, ops
import attnlstm

N = 150                   # calls per window
WARMUP = 30
TRACED_PER_CALL = 32      # bytes per call, tracemalloc
RSS_PER_CALL = 256        # bytes per call, resident set (page-granular: 4 KiB / 150 calls = 27)
_PAGE = os.sysconf("SC_PAGE_SIZE")


try:   # glibc: give free heap pages back first, so that RSS follows what is in use
    import ctypes
    _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
except (OSError, AttributeError):
    _malloc_trim = None


def _rss():
    if _malloc_trim is not None:
        _malloc_trim(0)
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


def _expect_error(fn, exc):
    def call():
        try:
            fn()
        except exc:
            return
        raise AssertionError(f"{fn} did not raise {exc}")
    return call


def growth_per_call(fn, n=N, warmup=WARMUP):
    """(tracemalloc bytes per call, RSS bytes per call): the smaller window of two."""
    for _ in range(warmup):
        fn()
    gc.collect()
    traced, rss = [], []
    t0, r0 = tracemalloc.get_traced_memory()[0], _rss()
    for _window in range(2):
        for _ in range(n):
            fn()
        gc.collect()
        t1, r1 = tracemalloc.get_traced_memory()[0], _rss()
        traced.append(t1 - t0)
        rss.append(r1 - r0)
        t0, r0 = t1, r1
    return min(traced) / n, min(rss) / n


@pytest.fixture(scope="module")
def traced():
    if tracemalloc.is_tracing():
        yield
        return
    tracemalloc.start(1)
    try:
        yield
    finally:
        tracemalloc.stop()


# ---- the cases --------------------------------------------------------------------------------

rng = np.random.default_rng(0)
B, T, D, H, Tv, U, NH, HS, Z, F = 2, 5, 3, 4, 4, 3, 2, 2, 3, 2
f32 = np.float32


def r(*shape):
    return rng.standard_normal(shape).astype(f32)


X, W, Uk, b = r(B, T, D), r(D, 4 * H), r(H, 4 * H), r(4 * H)
MASK = np.ones((B, T), bool)
MASK[1, 3:] = False
Q, V = r(B, T, D), r(B, Tv, D)
W1, W2, Vb, b1, b2 = r(D, U), r(D, U), r(U), r(U), r(U)
MHA_W = dict(query_kernel=r(D, NH, HS), query_bias=r(NH, HS), key_kernel=r(D, NH, HS),
             key_bias=r(NH, HS), value_kernel=r(D, NH, HS), value_bias=r(NH, HS),
             output_kernel=r(NH, HS, D), output_bias=r(D))
REL_W = dict(MHA_W, num_heads=NH, rel_k=r(5, HS), rel_v=r(5, HS), max_relative_position=2)
ZM, ZL, EPS = r(B, Z), 0.1 * r(B, Z), r(B, Z)
XV, XH, XL = r(B, T, F), r(B, T, F), 0.1 * r(B, T, F)


def _lstm_fwd_bwd():
    s = ops.lstm_forward(X, W, Uk, b, mask=MASK)
    ops.lstm_backward(s, d_outputs=np.ones_like(s["outputs"]), d_h=np.ones((B, H), f32))


def _dot_fwd_bwd():
    s = ops.dot_attention_forward(Q, V, value_mask=MASK[:, :Tv], use_causal_mask=True)
    ops.dot_attention_backward(s, np.ones_like(s["outputs"]))


def _additive_fwd_bwd():
    s = ops.additive_attention_forward(Q, V, query_mask=MASK)
    ops.additive_attention_backward(s, np.ones_like(s["outputs"]))


def _bahdanau_fwd_bwd():
    s = ops.bahdanau_attention_forward(Q, V, W1, W2, Vb, b1, b2, value_mask=MASK[:, :Tv])
    ops.bahdanau_attention_backward(s, np.ones_like(s["outputs"]))


def _mha_fwd_bwd():
    s = ops.multi_head_attention_forward(Q, V, **MHA_W, use_causal_mask=True)
    ops.multi_head_attention_backward(s, np.ones_like(s["outputs"]))


def _rel_fwd_bwd():
    s = ops.relative_attention_forward(Q, V, **REL_W)
    ops.relative_attention_backward(s, np.ones_like(s["outputs"]))


def _sampling_fwd_bwd():
    s = ops.sampling_forward(ZM, ZL, eps=EPS)
    ops.sampling_backward(s, np.ones((B, Z), f32))


OPS = {
    "lstm": lambda: ops.lstm(X, W, Uk, b, mask=MASK, return_sequences=True, return_state=True),
    "lstm_forward+backward": _lstm_fwd_bwd,
    "lstm float64": lambda: ops.lstm(X.astype(np.float64), W, Uk, b),
    "dot_attention": lambda: ops.dot_attention(Q, V, return_attention_scores=True),
    "dot_attention_forward+backward": _dot_fwd_bwd,
    "additive_attention": lambda: ops.additive_attention(Q, V),
    "additive_attention_forward+backward": _additive_fwd_bwd,
    "bahdanau_keys": lambda: ops.bahdanau_keys(V, W1, b1),
    "bahdanau_attention": lambda: ops.bahdanau_attention(Q, V, W1, W2, Vb, b1, b2),
    "bahdanau_attention_forward+backward": _bahdanau_fwd_bwd,
    "multi_head_attention": lambda: ops.multi_head_attention(Q, V, **MHA_W),
    "multi_head_attention_forward+backward": _mha_fwd_bwd,
    "relative_attention": lambda: ops.relative_attention(Q, V, **REL_W),
    "relative_attention_forward+backward": _rel_fwd_bwd,
    "sampling": lambda: ops.sampling(ZM, ZL, eps=EPS),
    "sampling_forward+backward": _sampling_fwd_bwd,
    "kl_divergence": lambda: ops.kl_divergence(ZM, ZL),
    "kl_divergence_backward": lambda: ops.kl_divergence_backward(ZM, ZL, np.ones(B, f32)),
    "reconstruction_loss": lambda: ops.reconstruction_loss(XV, XH, mask=MASK, kind="mae"),
    "reconstruction_loss_backward":
        lambda: ops.reconstruction_loss_backward(XV, XH, np.ones(B, f32), mask=MASK),
    "gaussian_nll": lambda: ops.gaussian_nll(XV, XH, XL, mask=MASK),
    "gaussian_nll_backward":
        lambda: ops.gaussian_nll_backward(XV, XH, XL, np.ones(B, f32), mask=MASK),
}

# Error paths: the binding's `fail:` branches release what they converted (each case fails
# after some arrays were converted), and the ops' checks raise without keeping anything.
ERRORS = {
    "lstm bad recurrent_kernel": _expect_error(
        lambda: ops.lstm(X, W, np.zeros((H, 3), f32)), ValueError),
    "lstm bad mask": _expect_error(
        lambda: ops.lstm(X, W, Uk, b, mask=np.ones((B, T + 1), bool)), ValueError),
    "core.lstm_forward bad bias": _expect_error(
        lambda: _core.lstm_forward(X, W, Uk, np.zeros(3, f32)), ValueError),
    "core.lstm_forward dtype mix": _expect_error(
        lambda: _core.lstm_forward(X, W.astype(np.float64), Uk), TypeError),
    "core.lstm_backward bad grads": _expect_error(
        lambda: _core.lstm_backward(X, W, Uk, X, X, X, np.zeros((1, 1), f32)),
        (TypeError, ValueError)),
    "dot_attention bad value": _expect_error(
        lambda: ops.dot_attention(Q, r(B, Tv, D + 1)), ValueError),
    "core.dot_attention_forward bad mask": _expect_error(
        lambda: _core.dot_attention_forward(Q, V, V, np.ones((B, T + 2), bool)), ValueError),
    "mha bad output_kernel": _expect_error(
        lambda: ops.multi_head_attention(Q, V, **dict(MHA_W, output_kernel=r(NH, HS + 1, D))),
        ValueError),
    "core.recon_forward bad mask": _expect_error(
        lambda: _core.recon_forward(XH, XV, np.ones((B, T + 1), bool)), ValueError),
    "core.recon_forward bad kind": _expect_error(
        lambda: _core.recon_forward(XH, XV, None, 7), ValueError),
    "core.gaussian_nll_backward bad d_loss": _expect_error(
        lambda: _core.gaussian_nll_backward(np.ones(B + 1, f32), XH, XL, XV), ValueError),
    "core.kl_backward bad z_log_var": _expect_error(
        lambda: _core.kl_backward(np.ones(B, f32), ZM, r(B, Z + 1)), ValueError),
    "core.sampling_forward bad eps dtype": _expect_error(
        lambda: _core.sampling_forward(ZM, ZL, EPS.astype(np.float64)), TypeError),
    "core.set_num_threads(0)": _expect_error(lambda: _core.set_num_threads(0), ValueError),
    "kl_divergence bad shape": _expect_error(lambda: ops.kl_divergence(ZM, r(B + 1, Z)),
                                             ValueError),
}


def _model():
    inp = attnlstm.Input((T, D))
    h = layers.LSTM(H, return_sequences=True)(inp)
    a = layers.Attention()([h, h])
    out = layers.Dense(2)(layers.GlobalAveragePooling1D()(a))
    model = attnlstm.Model(inp, out)
    model.compile(optimizer="adam", loss="mse")
    return model


@pytest.mark.parametrize("case", sorted(OPS) + sorted(ERRORS))
def test_no_growth_per_call(case, traced):
    fn = OPS.get(case) or ERRORS[case]
    per_call, rss_per_call = growth_per_call(fn)
    assert per_call < TRACED_PER_CALL, f"{case}: tracemalloc grows {per_call:.1f} B/call"
    assert rss_per_call < RSS_PER_CALL, f"{case}: RSS grows {rss_per_call:.1f} B/call"


def test_no_growth_predict_and_train_on_batch(traced):
    """A whole model step allocates hundreds of objects, and CPython's and NumPy's free lists
    and caches keep filling for a thousand or so train_on_batch calls (measured: 39, 25, 15,
    12, 8, 6, 3, 0 bytes per call in successive windows of 200 calls): the threshold here is
    3x the ops' (a leaked output array is >= 112 bytes of object alone)."""
    model = _model()
    x, y = r(8, T, D), r(8, 2)
    for what, fn in (("predict", lambda: model.predict(x, verbose=0)),
                     ("train_on_batch", lambda: model.train_on_batch(x, y))):
        per_call, rss_per_call = growth_per_call(fn, n=60, warmup=40)
        assert per_call < 3 * TRACED_PER_CALL, \
            f"{what}: tracemalloc grows {per_call:.1f} B/call"
        assert rss_per_call < 4 * RSS_PER_CALL, f"{what}: RSS grows {rss_per_call:.1f} B/call"


def test_the_measure_sees_a_leak(traced):
    """The check can fail: a case that keeps 1 of every call's small arrays is flagged."""
    kept = []
    per_call, _ = growth_per_call(lambda: kept.append(ops.kl_divergence(ZM, ZL)), n=100)
    assert per_call >= TRACED_PER_CALL, per_call
