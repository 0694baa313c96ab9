"""LSTM backward (BPTT) kernel: central finite differences in float64 for every forward option,
the NumPy twin (reference.lstm_backward), float32 against float64, ops.lstm_backward, the
binding's argument checking, and (TensorFlow installed) keras.layers.LSTM gradients."""
import itertools
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import attnlstm
from attnlstm import _core, ops
import reference as R
from test_lstm_kernel import ACT_PAIRS, CODE, gap_mask, make_inputs, rec_dropout_mask

GRAD_NAMES = ("x", "kernel", "recurrent_kernel", "bias", "h0", "c0")
UPSTREAMS = ("sequences", "last", "state", "all")


def upstream_grads(rng, B, T, H, which):
    """Random upstream gradients; `which` picks what the loss reads: the output sequence
    (return_sequences=True), the last output (False), the final states, or all of them."""
    d = dict(d_outputs=None, d_last=None, d_h=None, d_c=None)
    if which in ("sequences", "all"):
        d["d_outputs"] = rng.standard_normal((B, T, H))
    if which in ("last", "all"):
        d["d_last"] = rng.standard_normal((B, H))
    if which in ("state", "all"):
        d["d_h"] = rng.standard_normal((B, H))
        d["d_c"] = rng.standard_normal((B, H))
    return d


class Case:
    def __init__(self, act="tanh", ract="sigmoid", gb=False, masked=False, state=True,
                 rdrop=False, which="all", B=3, T=5, D=3, H=4, seed=0, xdrop=False,
                 per_gate=True):
        rng = np.random.default_rng(seed)
        self.x, self.W, self.U, self.b, self.h0, self.c0 = make_inputs(rng, B, T, D, H,
                                                                       np.float64)
        if not state:
            self.h0 = self.c0 = None
        self.mask = gap_mask(B, T, rng) if masked else None
        # Keras 3.15.1 draws one mask per gate when recurrent_dropout > 0: (B, 4H), (B, 4D).
        n = 4 if per_gate else 1
        self.r = rec_dropout_mask(rng, B, n * H, np.float64) if rdrop else None
        self.p = rec_dropout_mask(rng, B, n * D, np.float64, 0.2) if xdrop else None
        self.act, self.ract, self.gb = act, ract, gb
        self.up = upstream_grads(rng, B, T, H, which)

    def params(self):
        p = dict(x=self.x, kernel=self.W, recurrent_kernel=self.U, bias=self.b)
        if self.h0 is not None:
            p.update(h0=self.h0, c0=self.c0)
        return p

    def forward(self, p, save_act_c=False):
        return _core.lstm_forward(p["x"], p["kernel"], p["recurrent_kernel"], p["bias"],
                                  p.get("h0"), p.get("c0"), self.mask, CODE[self.act],
                                  CODE[self.ract], self.gb,
                                  rec_mask=self._cast(self.r, p["x"].dtype, self.U),
                                  dp_mask=self._cast(self.p, p["x"].dtype, self.W),
                                  save_act_c=save_act_c)

    @staticmethod
    def _cast(a, dt, w=None):
        """`a` as `dt`; a dropout mask (with its weight `w`) in the binding's per-gate form."""
        return None if a is None else R.per_gate(a, w.shape[0]).astype(dt) if w is not None \
            else a.astype(dt)

    def loss(self, p):
        hs, cs, out, _ = self.forward(p)
        outputs = hs if out is None else out
        u = self.up
        total = 0.0
        if u["d_outputs"] is not None:
            total += np.sum(u["d_outputs"] * outputs)
        if u["d_last"] is not None:
            total += np.sum(u["d_last"] * outputs[:, -1])
        if u["d_h"] is not None:
            total += np.sum(u["d_h"] * hs[:, -1]) + np.sum(u["d_c"] * cs[:, -1])
        return total

    def backward(self, save_act_c=True, dtype=np.float64):
        p = {k: v.astype(dtype) for k, v in self.params().items()}
        res = self.forward(p, save_act_c)
        hs, cs, _, gates = res[:4]
        u = {k: None if v is None else v.astype(dtype) for k, v in self.up.items()}
        g = _core.lstm_backward(hs, cs, gates, p["x"], p["kernel"], p["recurrent_kernel"],
                                h0=p.get("h0"), c0=p.get("c0"), mask=self.mask,
                                dp_mask=self._cast(self.p, dtype, self.W),
                                rec_mask=self._cast(self.r, dtype, self.U),
                                act_c=res[4] if save_act_c else None, **u,
                                activation=CODE[self.act],
                                recurrent_activation=CODE[self.ract], go_backwards=self.gb)
        return dict(zip(GRAD_NAMES, g))

    def twin(self):
        return R.lstm_backward(self.x, self.W, self.U, self.b,
                               None if self.h0 is None else [self.h0, self.c0], self.mask,
                               self.act, self.ract, self.gb, self.r, dp_mask=self.p, **self.up)

    def finite_differences(self, eps=1e-6):
        p = {k: v.copy() for k, v in self.params().items()}
        fd = {}
        for name, arr in p.items():
            g = np.zeros_like(arr)
            flat, gflat = arr.reshape(-1), g.reshape(-1)
            for k in range(flat.size):
                v = flat[k]
                flat[k] = v + eps
                lp = self.loss(p)
                flat[k] = v - eps
                lm = self.loss(p)
                flat[k] = v
                gflat[k] = (lp - lm) / (2 * eps)
            fd[name] = g
        return fd


def rel_err(got, want):
    return np.abs(got - want).max() / max(np.abs(want).max(), 1e-2)


def check_fd(case):
    got = case.backward()
    fd = case.finite_differences()
    for name, want in fd.items():
        assert got[name].shape == want.shape
        assert rel_err(got[name], want) <= 1e-6, (name, rel_err(got[name], want))
    # Recomputing activation(c) instead of reading the saved act_c gives the same gradients.
    again = case.backward(save_act_c=False)
    for name in GRAD_NAMES:
        assert np.allclose(again[name], got[name], rtol=1e-14, atol=1e-14)
    return got


@pytest.mark.parametrize("which", ["sequences", "last", "state"])
@pytest.mark.parametrize("drop", [None, "recurrent", "both", "shared"])
@pytest.mark.parametrize("state", [False, True])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("gb", [False, True])
def test_backward_finite_differences_options(gb, masked, state, drop, which):
    """drop: no dropout; per-gate recurrent masks; per-gate recurrent and input masks (Keras
    3.15.1 with recurrent_dropout > 0); one mask shared by the gates for each."""
    check_fd(Case(gb=gb, masked=masked, state=state, rdrop=drop is not None,
                  xdrop=drop in ("both", "shared"), per_gate=drop != "shared", which=which,
                  T=6, seed=len(which) + 2 * gb + 4 * masked))


@pytest.mark.parametrize("act,ract", ACT_PAIRS)
@pytest.mark.parametrize("gb", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_backward_finite_differences_activations(act, ract, gb, masked):
    check_fd(Case(act, ract, gb=gb, masked=masked, rdrop=True, xdrop=True, which="all", B=2,
                  T=4, seed=11 + gb))


def test_fully_masked_sample_passes_state_gradients_through():
    """A sample masked at every step: h_T = h0, c_T = c0, outputs 0, no weight gradient."""
    c = Case(masked=True, which="all", B=3, T=5)
    c.mask[:] = True
    c.mask[2] = False
    g = check_fd(c)
    assert np.array_equal(g["h0"][2], c.up["d_h"][2]) and np.array_equal(g["c0"][2], c.up["d_c"][2])
    assert np.all(g["x"][2] == 0)


@pytest.mark.parametrize("act,ract", ACT_PAIRS)
@pytest.mark.parametrize("gb", [False, True])
def test_backward_matches_twin(act, ract, gb):
    for masked, state, rdrop, per_gate in itertools.product((False, True), repeat=4):
        c = Case(act, ract, gb=gb, masked=masked, state=state, rdrop=rdrop, xdrop=rdrop,
                 per_gate=per_gate, T=7, seed=3)
        got, want = c.backward(), c.twin()
        for name in GRAD_NAMES:
            if want[name] is None or (name in ("h0", "c0") and not state):
                continue
            assert rel_err(got[name], want[name]) <= 1e-10, name


@pytest.mark.parametrize("gb", [False, True])
def test_backward_float32_close_to_float64(gb):
    c = Case(gb=gb, masked=True, rdrop=True, xdrop=True, which="all", B=3, T=40, D=5, H=6,
             seed=7)
    g64, g32 = c.backward(), c.backward(dtype=np.float32)
    for name in GRAD_NAMES:
        assert g32[name].dtype == np.float32
        assert rel_err(g32[name], g64[name]) <= 1e-4, name


def test_backward_long_sequence_matches_twin():
    c = Case(gb=True, masked=True, rdrop=True, which="all", B=2, T=120, D=3, H=5, seed=8)
    c.W *= 0.5
    c.U *= 0.5
    got, want = c.backward(), c.twin()
    for name in GRAD_NAMES:
        assert rel_err(got[name], want[name]) <= 1e-10, name


@pytest.mark.parametrize("drop", [None, "recurrent", "both"])
def test_backward_weight_gradients_over_several_row_blocks(drop):
    """B*T = 1100 rows: the weight gradients' products run in blocks of 512 rows, each
    continuing from the last one's sums (and 4H = 280 ends in a partial panel): same as the
    twin in float64, and the same bits on one and two threads in float32."""
    c = Case(gb=False, masked=True, rdrop=drop is not None, xdrop=drop == "both", which="all",
             B=20, T=55, D=9, H=70, seed=12)
    c.W *= 0.5
    c.U *= 0.5
    got, want = c.backward(), c.twin()
    for name in GRAD_NAMES:
        assert rel_err(got[name], want[name]) <= 1e-10, name
    p = {k: v.astype(np.float32) for k, v in c.params().items()}
    res = []
    for threads in (1, 2):
        hs, cs, _, gates = _core.lstm_forward(p["x"], p["kernel"], p["recurrent_kernel"],
                                              p["bias"], p["h0"], p["c0"], c.mask,
                                              rec_mask=c._cast(c.r, np.float32, c.U),
                                              dp_mask=c._cast(c.p, np.float32, c.W),
                                              threads=threads)
        res.append(_core.lstm_backward(hs, cs, gates, p["x"], p["kernel"],
                                       p["recurrent_kernel"], p["h0"], p["c0"], c.mask,
                                       c._cast(c.p, np.float32, c.W),
                                       c._cast(c.r, np.float32, c.U),
                                       d_outputs=c.up["d_outputs"].astype(np.float32),
                                       threads=threads))
    for a, r in zip(*res):
        assert np.array_equal(a, r)


# ---- ops.lstm_backward ----------------------------------------------------------------------

def test_ops_backward_matches_core_and_options():
    c = Case(masked=True, rdrop=True, xdrop=True, which="all", gb=True)
    s = ops.lstm_forward(c.x, c.W, c.U, c.b, [c.h0, c.c0], c.mask, go_backwards=True,
                         rec_mask=c.r, dp_mask=c.p)
    g = ops.lstm_backward(s, d_outputs=c.up["d_outputs"], d_h=c.up["d_h"], d_c=c.up["d_c"],
                          d_last_output=c.up["d_last"])
    want = c.backward()
    assert set(g) == set(GRAD_NAMES) | {"initial_state"}
    for name in GRAD_NAMES:
        assert np.array_equal(g[name], want[name]), name
    assert g["initial_state"][0] is g["h0"] and g["initial_state"][1] is g["c0"]
    # Without bias / initial state those gradients are None; float32 stays float32.
    s = ops.lstm_forward(c.x.astype(np.float32), c.W, c.U, save_act_c=False)
    g = ops.lstm_backward(s, d_last_output=np.ones((3, 4)))
    assert g["bias"] is None and g["h0"] is None and g["c0"] is None
    assert g["initial_state"] is None
    assert g["x"].dtype == np.float32 and g["kernel"].shape == (3, 16)


def test_ops_backward_last_output_equals_sequence_gradient_on_last_step():
    c = Case(masked=True, which="last")
    s = ops.lstm_forward(c.x, c.W, c.U, c.b, [c.h0, c.c0], c.mask)
    d = np.zeros((3, 5, 4))
    d[:, -1] = c.up["d_last"]
    a = ops.lstm_backward(s, d_last_output=c.up["d_last"])
    b = ops.lstm_backward(s, d_outputs=d)
    for name in GRAD_NAMES:
        assert np.allclose(a[name], b[name], rtol=0, atol=1e-15)


def test_ops_backward_shape_errors():
    c = Case()
    s = ops.lstm_forward(c.x, c.W, c.U, c.b, [c.h0, c.c0])
    with pytest.raises(attnlstm.errors.ShapeError,
                       match=r"`d_outputs` must have shape \(3, 5, 4\), got \(3, 4\).\nHint: .*d_last_output"):
        ops.lstm_backward(s, d_outputs=np.ones((3, 4)))
    with pytest.raises(attnlstm.errors.ShapeError, match=r"`d_h` must have shape \(3, 4\), got \(4, 3\)"):
        ops.lstm_backward(s, d_h=np.ones((4, 3)))
    with pytest.raises(TypeError, match=r"`saved` must be what ops.lstm_forward returned, got "
                                        r"dict"):
        ops.lstm_backward({"hs": s["hs"]})


# ---- binding argument checking --------------------------------------------------------------

def _saved(dt=np.float64, B=2, T=3, D=3, H=2):
    rng = np.random.default_rng(0)
    x, W, U, b, h0, c0 = make_inputs(rng, B, T, D, H, dt)
    hs, cs, _, gates = _core.lstm_forward(x, W, U, b)
    return dict(hs=hs, cs=cs, gates=gates, x=x, kernel=W, recurrent_kernel=U)


@pytest.mark.parametrize("kw,exc,match", [
    (dict(hs=np.ones((2, 3, 3))), ValueError, r"`hs` must have shape \(B, T, H\) = \(2, 3, 2\), got \(2, 3, 3\)"),
    (dict(gates=np.ones((2, 3, 2))), ValueError, r"`gates` must have shape \(B, T, 4H\) = \(2, 3, 8\)"),
    (dict(act_c=np.ones((2, 2, 2))), ValueError, r"`act_c` must have shape \(B, T, H\)"),
    (dict(d_outputs=np.ones((2, 2))), ValueError, r"`d_outputs` must have shape \(B, T, H\)"),
    (dict(d_last=np.ones((2, 3))), ValueError, r"`d_last` must have shape \(B, H\) = \(2, 2\)"),
    (dict(d_h=np.ones((2, 2), np.float32)), TypeError, r"`d_h` must have dtype float64"),
    (dict(d_c=np.ones((3, 2))), ValueError, r"`d_c` must have shape \(B, H\)"),
    (dict(rec_mask=np.ones((2,))), ValueError, r"`rec_mask` must have shape \(B, 4H\)"),
    (dict(mask=np.ones((2, 4))), ValueError, r"`mask` must have shape \(B, T\) = \(2, 3\)"),
    (dict(kernel=np.ones((4, 8))), ValueError, r"`kernel` must have shape \(D, 4H\) = \(3, 8\)"),
    (dict(recurrent_kernel=np.ones((2, 7))), ValueError, r"`recurrent_kernel` must have shape \(H, 4H\)"),
    (dict(x=[[[1.0]]]), TypeError, r"`x` must be a float32 or float64 numpy array"),
    (dict(recurrent_activation=-1), ValueError, r"`recurrent_activation` must be an activation code"),
])
def test_backward_binding_errors(kw, exc, match):
    args = _saved()
    args.update(kw)
    with pytest.raises(exc, match=match):
        _core.lstm_backward(**args)


@st.composite
def backward_cases(draw):
    dt = draw(st.sampled_from([np.float32, np.float64]))
    dims = [draw(st.integers(0, 3)), draw(st.integers(1, 4) | st.just(0)),
            draw(st.integers(0, 3)), draw(st.integers(1, 3) | st.just(0))]
    bad = draw(st.none() | st.sampled_from(
        ["hs", "cs", "gates", "act_c", "x", "W", "U", "h0", "mask", "rmask", "pmask", "d_out", "d_last",
         "dtype", "nan", "list"]))
    flags = [draw(st.booleans()) for _ in range(5)]
    return dt, dims, bad, flags


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(backward_cases())
def test_backward_binding_never_crashes(case):
    """Random shapes, dtypes, strides, empty axes and NaN: an exception or the twin's result."""
    dt, (B, T, D, H), bad, (strided, use_mask, use_r, use_state, gb) = case
    rng = np.random.default_rng(B * 1000 + T * 100 + D * 10 + H)
    x, W, U, b, h0, c0 = make_inputs(rng, B, T, D, H, dt)
    if not use_state:
        h0 = c0 = None
    m = (rng.random((B, T)) > 0.3) if use_mask else None
    r = rec_dropout_mask(rng, B, 4 * H, dt) if use_r else None
    pm = R.per_gate(rec_dropout_mask(rng, B, D if gb else 4 * D, dt), D) if use_r else None
    try:
        hs, cs, _, gates, act_c = _core.lstm_forward(x, W, U, b, h0, c0, m, go_backwards=gb,
                                                     rec_mask=r, dp_mask=pm, save_act_c=True)
    except ValueError:
        assert T == 0 or H == 0
        return
    d_out = rng.standard_normal((B, T, H)).astype(dt)
    d_last = rng.standard_normal((B, H)).astype(dt)
    if strided:
        d_out = np.repeat(d_out, 2, axis=1)[:, ::2]       # non-contiguous views
        x = np.repeat(x, 2, axis=0)[::2]
    args = dict(hs=hs, cs=cs, gates=gates, act_c=act_c, x=x, kernel=W, recurrent_kernel=U,
                h0=h0, c0=c0, mask=m, rec_mask=r, dp_mask=pm, d_outputs=d_out, d_last=d_last,
                go_backwards=gb)
    wrong = {"hs": ("hs", np.ones((B, T + 1, H), dt)), "cs": ("cs", np.ones((B, T, H + 1), dt)),
             "gates": ("gates", np.ones((B, T, H), dt)), "act_c": ("act_c", np.ones((B + 1, T, H), dt)),
             "x": ("x", np.ones((B, T, D, 1), dt)), "W": ("kernel", np.ones((D + 1, 4 * H), dt)),
             "U": ("recurrent_kernel", np.ones((H, 4 * H + 4), dt)),
             "h0": ("h0", np.ones((B, H + 1), dt)), "mask": ("mask", np.ones((B + 1, T))),
             "rmask": ("rec_mask", np.ones((B, H, 1), dt)),
             "pmask": ("dp_mask", np.ones((B, 2 * D + 1), dt)), "d_out": ("d_outputs", d_last),
             "d_last": ("d_last", d_out), "list": ("hs", hs.tolist()),
             "dtype": ("gates", gates.astype(np.float32 if dt == np.float64 else np.float64))}
    if bad in wrong:
        k, v = wrong[bad]
        args[k] = v
    elif bad == "nan":
        args["d_outputs"] = np.full((B, T, H), np.nan, dt)
    try:
        g = _core.lstm_backward(**args)
    except (TypeError, ValueError):
        assert bad is not None and bad != "nan"
        return
    # A list of the right shape converts; everything else wrong must have raised.
    assert bad in (None, "nan", "list")
    shapes = [(B, T, D), (D, 4 * H), (H, 4 * H), (4 * H,), (B, H), (B, H)]
    assert [a.shape for a in g] == shapes and all(a.dtype == dt for a in g)
    if bad == "nan":
        return
    want = R.lstm_backward(x.astype(np.float64), W.astype(np.float64), U.astype(np.float64),
                           b.astype(np.float64),
                           None if h0 is None else [h0.astype(np.float64), c0.astype(np.float64)],
                           m, go_backwards=gb, rec_mask=None if r is None else r.astype(np.float64),
                           dp_mask=None if pm is None else pm.astype(np.float64),
                           d_outputs=d_out.astype(np.float64), d_last=d_last.astype(np.float64))
    tol = 1e-9 if dt == np.float64 else 1e-3
    for a, name in zip(g, GRAD_NAMES):
        if a.size:
            assert np.abs(a - want[name]).max() <= tol * max(1.0, np.abs(want[name]).max()), name


# ---- parity with keras.layers.LSTM (float32, TensorFlow backend, CPU) -------------------------
# Gradients of keras.layers.LSTM (Keras 3.15.1) via tf.GradientTape with copied weights: masks
# with gaps, go_backwards, initial states, return_sequences both ways, and training-mode dropout
# with the masks injected into the cell. Needs tensorflow-cpu and keras==3.15.1 installed.

def _keras():
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras  # installed by `make test`; parity tests must not skip
    import tensorflow as tf
    return tf, keras


KB, KT, KD, KH = 3, 6, 4, 5


def keras_grads(layer, x, mask, state, dO, dh, dc, training=False):
    tf = _keras()[0]
    xt = tf.constant(x)
    st = [tf.constant(s) for s in state] if state is not None else None
    with tf.GradientTape() as tape:
        tape.watch(xt)
        if st is not None:
            tape.watch(st)
        o, h, c = layer(xt, mask=tf.constant(mask), initial_state=st, training=training)
        loss = tf.reduce_sum(o * dO) + tf.reduce_sum(h * dh) + tf.reduce_sum(c * dc)
    srcs = [xt] + list(layer.trainable_weights) + (st or [])
    return o.numpy(), [g.numpy() for g in tape.gradient(loss, srcs)]


def test_keras_parity_version():
    keras = _keras()[1]
    assert keras.__version__ == "3.15.1"


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("dropout", [False, True])
def test_keras_parity_gradients(go_backwards, return_sequences, dropout):
    tf, keras = _keras()
    B, T, D, H = KB, KT, KD, KH
    rng = np.random.default_rng(int(go_backwards) + 2 * int(return_sequences))
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    mask = np.ones((B, T), bool)
    mask[0, :2] = False
    mask[1, 3] = False
    mask[2, -1] = False
    state = [rng.standard_normal((B, H)).astype(np.float32) for _ in range(2)]
    layer = keras.layers.LSTM(H, return_sequences=return_sequences, go_backwards=go_backwards,
                              return_state=True, dropout=0.3 if dropout else 0.0,
                              recurrent_dropout=0.4 if dropout else 0.0)
    layer.build((B, T, D))
    W, U, b = layer.get_weights()
    b = b + 0.3 * rng.standard_normal(b.shape).astype(np.float32)
    layer.set_weights([W, U, b])
    p = r = None
    if dropout:
        # Keras 3.15.1: recurrent_dropout > 0 -> implementation 1, four masks each; masks set
        # on the cell before the call are the ones used (DropoutRNNCell caches them).
        p = [((rng.random((B, D)) >= 0.3) / 0.7).astype(np.float32) for _ in range(4)]
        r = [((rng.random((B, H)) >= 0.4) / 0.6).astype(np.float32) for _ in range(4)]
        layer.cell._dropout_mask = [tf.constant(a) for a in p]
        layer.cell._recurrent_dropout_mask = [tf.constant(a) for a in r]
        p, r = np.concatenate(p, -1), np.concatenate(r, -1)
    dO = rng.standard_normal((B, T, H) if return_sequences else (B, H)).astype(np.float32)
    dh, dc = (rng.standard_normal((B, H)).astype(np.float32) for _ in range(2))
    o, want = keras_grads(layer, x, mask, state, dO, dh, dc, training=dropout)

    s = ops.lstm_forward(x, W, U, b, state, mask, go_backwards=go_backwards, rec_mask=r,
                         dp_mask=p)
    got_o = s["outputs"] if return_sequences else s["last_output"]
    assert np.abs(got_o - o).max() <= 1e-5
    g = ops.lstm_backward(s, d_outputs=dO if return_sequences else None,
                          d_last_output=None if return_sequences else dO, d_h=dh, d_c=dc)
    for name, w in zip(("x", "kernel", "recurrent_kernel", "bias", "h0", "c0"), want):
        assert np.abs(g[name] - w).max() <= 2e-5 * max(1.0, np.abs(w).max()), name
