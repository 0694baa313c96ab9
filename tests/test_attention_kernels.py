"""Tests of the attention kernels (csrc/attention_impl.h) and their NumPy API
(attnlstm/ops/attention.py): NumPy twins, finite differences, shape errors, a fuzzed
binding, and parity with keras.layers.Attention / AdditiveAttention."""
import os
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attnlstm import _core
from attnlstm.ops import attention as A
from attnlstm.errors import ShapeError

sys.path.insert(0, os.path.dirname(__file__))
import reference_attention as R  # noqa: E402

B, TQ, TV, D, DV = 2, 3, 4, 3, 2


def rng(seed=0):
    return np.random.default_rng(seed)


# ---- mask sets -----------------------------------------------------------------------------
# Each entry: kwargs of masks for (B, TQ, TV). "partial" sets leave every row at least one key.

def mask_sets():
    vm = np.array([[1, 1, 0, 1], [1, 0, 0, 0]], bool)
    qm = np.array([[1, 0, 1], [0, 1, 1]], bool)
    am = rng(5).random((B, TQ, TV)) > 0.5
    am[..., 0] = True
    return {
        "none": {},
        "value": {"value_mask": vm},
        "query": {"query_mask": qm},
        "attention": {"attention_mask": am},
        "causal": {"causal": True},
        "all": {"value_mask": vm, "query_mask": qm, "attention_mask": am, "causal": True},
    }


def full_row_masks():
    """Masks that leave whole rows without keys: sample 1 has no valid value at all, and
    sample 0 row 1 is cut by the attention mask; row 2 of sample 0 is also query-masked."""
    vm = np.array([[1, 1, 0, 1], [0, 0, 0, 0]], bool)
    am = np.ones((B, TQ, TV), bool)
    am[0, 1] = False
    qm = np.array([[1, 1, 0], [1, 1, 1]], bool)
    return {"value_mask": vm, "attention_mask": am, "query_mask": qm}


MASKS = mask_sets()


# ---- the kinds under test, through the public API ------------------------------------------

def make_inputs(kind, dt=np.float64, seed=1, tq=TQ, tv=TV, single=False):
    g = rng(seed)
    p = {}
    if kind.startswith("bahdanau"):
        Dq, U = 4, 3
        p["query"] = g.normal(size=(B, Dq) if single else (B, tq, Dq)).astype(dt)
        p["values"] = g.normal(size=(B, tv, DV + 1)).astype(dt)
        p["W1"] = g.normal(size=(DV + 1, U)).astype(dt)
        p["W2"] = g.normal(size=(Dq, U)).astype(dt)
        p["V"] = g.normal(size=(U,)).astype(dt)
        p["b1"] = g.normal(size=(U,)).astype(dt)
        p["b2"] = g.normal(size=(U,)).astype(dt)
        return p
    p["query"] = g.normal(size=(B, tq, D)).astype(dt)
    p["value"] = g.normal(size=(B, tv, DV)).astype(dt)
    p["key"] = g.normal(size=(B, tv, D)).astype(dt)
    if kind in ("dot_scale", "concat_scale"):
        p["scale"] = np.array(0.7, dt)
    if kind == "concat_scale":
        p["concat_score_weight"] = np.array(1.3, dt)
    if kind == "additive_scale":
        p["scale"] = g.normal(size=(D,)).astype(dt)
    return p


KINDS = ["dot", "dot_scale", "concat", "concat_scale", "additive", "additive_scale",
         "bahdanau"]


def api_forward(kind, p, masks):
    m = dict(masks)
    causal = m.pop("causal", False)
    if kind.startswith("bahdanau"):
        assert not causal and "attention_mask" not in m
        return A.bahdanau_attention_forward(p["query"], p["values"], p["W1"], p["W2"], p["V"],
                                            p["b1"], p["b2"], **m)
    if kind.startswith("additive"):
        return A.additive_attention_forward(p["query"], p["value"], p["key"],
                                            scale=p.get("scale"), use_causal_mask=causal, **m)
    return A.dot_attention_forward(p["query"], p["value"], p["key"], scale=p.get("scale"),
                                   score_mode="concat" if kind.startswith("concat") else "dot",
                                   concat_score_weight=p.get("concat_score_weight"),
                                   use_causal_mask=causal, **m)


def api_backward(kind, saved, d_out, d_w):
    if kind.startswith("bahdanau"):
        return A.bahdanau_attention_backward(saved, d_out, d_w)
    if kind.startswith("additive"):
        return A.additive_attention_backward(saved, d_out, d_w)
    return A.dot_attention_backward(saved, d_out, d_w)


def twin(kind, p, masks, exact_full_rows=False):
    m = dict(masks)
    if kind.startswith("bahdanau"):
        return R.bahdanau(p["query"], p["values"], p["W1"], p["W2"], p["V"], p["b1"], p["b2"],
                          exact_full_rows=exact_full_rows, **m)
    if kind.startswith("additive"):
        return R.additive_attention(p["query"], p["value"], p["key"], p.get("scale"),
                                    exact_full_rows=exact_full_rows, **m)
    return R.attention(p["query"], p["value"], p["key"], p.get("scale"),
                       "concat" if kind.startswith("concat") else "dot",
                       p.get("concat_score_weight"), exact_full_rows=exact_full_rows, **m)


def masks_for(kind, name):
    m = MASKS[name]
    if kind.startswith("bahdanau"):
        m = {k: v for k, v in m.items() if k in ("value_mask", "query_mask")}
    return m


# ---- forward against the twins -------------------------------------------------------------

@pytest.mark.parametrize("mask_name", list(MASKS))
@pytest.mark.parametrize("kind", KINDS)
def test_forward_matches_twin_float64(kind, mask_name):
    p = make_inputs(kind)
    m = masks_for(kind, mask_name)
    r = api_forward(kind, p, m)
    out, w = twin(kind, p, m)
    assert r["outputs"].dtype == np.float64
    np.testing.assert_allclose(r["outputs"], out, rtol=0, atol=1e-10)
    np.testing.assert_allclose(r["attention_scores"], w, rtol=0, atol=1e-10)


@pytest.mark.parametrize("kind", KINDS)
def test_forward_matches_twin_float32(kind):
    p = make_inputs(kind, np.float32)
    m = masks_for(kind, "all")
    r = api_forward(kind, p, m)
    out, w = twin(kind, p, m)
    assert r["outputs"].dtype == np.float32 and r["attention_scores"].dtype == np.float32
    np.testing.assert_allclose(r["outputs"], out, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(r["attention_scores"], w, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("tq,tv", [(5, 3), (2, 6), (1, 1)])
@pytest.mark.parametrize("kind", ["dot", "concat_scale", "additive_scale"])
def test_causal_with_unequal_lengths(kind, tq, tv):
    p = make_inputs(kind, tq=tq, tv=tv)
    r = api_forward(kind, p, {"causal": True})
    out, w = twin(kind, p, {"causal": True})
    np.testing.assert_allclose(r["outputs"], out, rtol=0, atol=1e-10)
    np.testing.assert_allclose(r["attention_scores"], w, rtol=0, atol=1e-10)
    # query i never sees key j > i: those weights are exactly 0 (exp underflows)
    upper = np.triu(np.ones((tq, tv), bool), k=1)
    assert np.all(r["attention_scores"][:, upper] == 0.0)


def test_weights_are_pre_query_mask_and_rows_zeroed():
    p = make_inputs("dot")
    qm = np.array([[1, 0, 1], [1, 1, 0]], bool)
    r = A.dot_attention_forward(p["query"], p["value"], p["key"], query_mask=qm)
    r0 = A.dot_attention_forward(p["query"], p["value"], p["key"])
    np.testing.assert_array_equal(r["attention_scores"], r0["attention_scores"])       # pre-query-mask
    assert np.all(r["outputs"][~qm] == 0.0)
    np.testing.assert_array_equal(r["outputs"][qm], r0["outputs"][qm])
    np.testing.assert_allclose(r["attention_scores"].sum(-1), 1.0, rtol=0, atol=1e-12)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("kind", KINDS)
def test_fully_masked_rows_are_finite_and_equal_twin(kind, dt):
    p = make_inputs(kind, dt)
    m = full_row_masks()
    if kind.startswith("bahdanau"):
        m.pop("attention_mask")
    r = api_forward(kind, p, m)
    out, w = twin(kind, p, m)
    assert np.all(np.isfinite(r["outputs"])) and np.all(np.isfinite(r["attention_scores"]))
    tol = dict(rtol=0, atol=1e-10) if dt == np.float64 else dict(rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(r["outputs"], out, **tol)
    np.testing.assert_allclose(r["attention_scores"], w, **tol)
    # Keras: a fully masked row is not zeroed; it is the softmax of score - 1e9
    np.testing.assert_allclose(r["attention_scores"][1].sum(-1), 1.0, rtol=1e-6)
    assert np.all(r["attention_scores"][1] > 0)


def test_fully_masked_row_float32_is_exactly_uniform_for_small_scores():
    # |score| < 32: score - 1e9 rounds to -1e9 in float32, so the row is exactly uniform
    # and the output is the mean of the values (keras-semantics.md section 7.2).
    g = rng(3)
    q = (0.1 * g.normal(size=(B, TQ, D))).astype(np.float32)
    k = (0.1 * g.normal(size=(B, TV, D))).astype(np.float32)
    v = g.normal(size=(B, TV, DV)).astype(np.float32)
    vm = np.zeros((B, TV), bool)
    out, w = A.dot_attention(q, v, k, value_mask=vm, return_attention_scores=True)
    np.testing.assert_array_equal(w, np.full_like(w, 0.25))
    np.testing.assert_allclose(out, np.broadcast_to(v.mean(1, keepdims=True), out.shape),
                               rtol=1e-6, atol=1e-7)
    # In float64 the spacing near 1e9 is 1.2e-7: the row is softmax(score) up to ~1e-7.
    out64, w64 = A.dot_attention(q.astype(np.float64), v.astype(np.float64),
                                 k.astype(np.float64), value_mask=vm,
                                 return_attention_scores=True)
    s = q.astype(np.float64) @ np.swapaxes(k.astype(np.float64), 1, 2)
    soft = np.exp(s - s.max(-1, keepdims=True))
    soft /= soft.sum(-1, keepdims=True)
    np.testing.assert_allclose(w64, soft, rtol=0, atol=1e-6)
    assert not np.allclose(w64, 0.25, rtol=0, atol=1e-9)


def test_key_defaults_to_value():
    g = rng(4)
    q, v = g.normal(size=(B, TQ, D)), g.normal(size=(B, TV, D))
    for fn in (A.dot_attention, A.additive_attention):
        np.testing.assert_array_equal(fn(q, v), fn(q, v, v))


def test_bahdanau_single_step_equals_sequence_step_and_precomputed_keys():
    p = make_inputs("bahdanau", single=True)
    vm = np.array([[1, 1, 0, 1], [1, 0, 1, 1]], bool)
    ctx, w = A.bahdanau_attention(p["query"], p["values"], p["W1"], p["W2"], p["V"], p["b1"],
                                  p["b2"], value_mask=vm, return_attention_scores=True)
    assert ctx.shape == (B, DV + 1) and w.shape == (B, TV)
    ctx3, w3 = A.bahdanau_attention(p["query"][:, None], p["values"], p["W1"], p["W2"], p["V"],
                                    p["b1"], p["b2"], value_mask=vm,
                                    return_attention_scores=True)
    np.testing.assert_array_equal(ctx, ctx3[:, 0])
    np.testing.assert_array_equal(w, w3[:, 0])
    keys = A.bahdanau_keys(p["values"], p["W1"], p["b1"])
    ctxk = A.bahdanau_attention(p["query"], p["values"], p["W1"], p["W2"], p["V"], p["b1"],
                                p["b2"], keys=keys, value_mask=vm)
    np.testing.assert_allclose(ctxk, ctx, rtol=0, atol=1e-12)
    out, wt = R.bahdanau(p["query"], p["values"], p["W1"], p["W2"], p["V"], p["b1"], p["b2"],
                         value_mask=vm)
    np.testing.assert_allclose(ctx, out, rtol=0, atol=1e-10)
    np.testing.assert_allclose(w, wt, rtol=0, atol=1e-10)
    # single-step query mask (B,) zeroes that sample's context
    z = A.bahdanau_attention(p["query"], p["values"], p["W1"], p["W2"], p["V"],
                             query_mask=np.array([True, False]))
    assert np.all(z[1] == 0) and np.any(z[0] != 0)


@pytest.mark.parametrize("values_shape, W1_shape, b1_shape, match", [
    ((2, 3, 4), (4,), None,
     r"^ops\.bahdanau_keys: `W1` must have shape \(4, units\), got \(4,\)\.\nHint: W1 is a "
     r"matrix \(Dv, units\); for one unit use W1\[:, None\]\.$"),
    ((2, 3, 4), (5, 4), None,
     r"^ops\.bahdanau_keys: `W1` must have shape \(4, units\), got \(5, 4\)\.\nHint: W1 looks "
     r"transposed"),
    ((2, 3, 4), (3, 5), None, r"^ops\.bahdanau_keys: `W1` must have shape \(4, units\), got "
                              r"\(3, 5\)\.$"),
    ((2, 3, 4), (4, 5), (4,), r"^ops\.bahdanau_keys: `b1` must have shape \(5,\), got \(4,\)"),
    ((3, 4), (4, 5), None,
     r"^ops\.bahdanau_keys: `values` must have shape \(batch, Tv, Dv\), got \(3, 4\)\.\nHint: "
     r"values are the encoder outputs, a sequence"),
])
def test_bahdanau_keys_shape_errors(values_shape, W1_shape, b1_shape, match):
    b1 = None if b1_shape is None else np.ones(b1_shape)
    with pytest.raises(ShapeError, match=match):
        A.bahdanau_keys(np.ones(values_shape), np.ones(W1_shape), b1)


def test_bahdanau_keys_is_the_projection():
    g = rng(7)
    v, W, b = g.normal(size=(2, 3, 4)), g.normal(size=(4, 5)), g.normal(size=5)
    k = A.bahdanau_keys(v, W, b)
    assert k.dtype == np.float64 and k.flags.c_contiguous
    np.testing.assert_allclose(k, np.einsum("btd,du->btu", v, W) + b, rtol=1e-12)
    k32 = A.bahdanau_keys(v.astype("float32"), W.astype("float32"))
    assert k32.dtype == np.float32 and k32.shape == (2, 3, 5)
    assert A.bahdanau_keys(np.ones((2, 0, 4)), W, b).shape == (2, 0, 5)


def test_additive_attention_scalar_scale_broadcasts():
    g = rng(6)
    q, v = g.normal(size=(B, TQ, D)), g.normal(size=(B, TV, D))
    np.testing.assert_array_equal(A.additive_attention(q, v, scale=0.5),
                                  A.additive_attention(q, v, scale=np.full(D, 0.5)))


# ---- empty axes ----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["dot", "concat", "additive"])
@pytest.mark.parametrize("b,tq,tv,dv", [(0, 3, 4, 2), (2, 0, 4, 2), (2, 3, 0, 2), (2, 3, 4, 0)])
def test_empty_axes_give_defined_results(kind, b, tq, tv, dv):
    g = rng(7)
    q, k, v = g.normal(size=(b, tq, D)), g.normal(size=(b, tv, D)), g.normal(size=(b, tv, dv))
    if kind == "additive":
        r = A.additive_attention_forward(q, v, k, value_mask=np.ones((b, tv), bool))
    else:
        r = A.dot_attention_forward(q, v, k, score_mode=kind, use_causal_mask=True)
    assert r["outputs"].shape == (b, tq, dv) and r["attention_scores"].shape == (b, tq, tv)
    assert np.all(r["outputs"] == 0) if tv == 0 else np.all(np.isfinite(r["outputs"]))
    grads = api_backward(kind, r, np.ones((b, tq, dv)), np.ones((b, tq, tv)))
    assert grads["query"].shape == q.shape and grads["key"].shape == k.shape
    assert grads["value"].shape == v.shape
    for gr in grads.values():
        assert np.all(np.isfinite(gr))
    if tq == 0 or tv == 0:
        assert all(np.all(gr == 0) for gr in grads.values())


# ---- backward: central finite differences in float64 ---------------------------------------

def loss_and_seeds(shape_out, shape_w, seed=11):
    g = rng(seed)
    return g.normal(size=shape_out), g.normal(size=shape_w)


def fd_check(f, params, grads, names, eps=1e-6, tol=1e-6):
    for name in names:
        x = params[name]
        num = np.zeros(x.shape)
        for idx in np.ndindex(x.shape):
            orig = x[idx]
            x[idx] = orig + eps
            fp = f()
            x[idx] = orig - eps
            fm = f()
            x[idx] = orig
            num[idx] = (fp - fm) / (2 * eps)
        got = np.asarray(grads[name], np.float64).reshape(x.shape)
        scale = max(np.linalg.norm(num), np.linalg.norm(got), 1e-12)
        err = np.linalg.norm(num - got) / scale
        assert err <= tol, f"{name}: relative error {err:.3g}\nfd={num}\ngot={got}"


@pytest.mark.parametrize("mask_name", list(MASKS))
@pytest.mark.parametrize("kind", KINDS)
def test_backward_finite_differences(kind, mask_name):
    p = make_inputs(kind)
    m = masks_for(kind, mask_name)
    r = api_forward(kind, p, m)
    R1, R2 = loss_and_seeds(r["outputs"].shape, r["attention_scores"].shape)

    def f():
        rr = api_forward(kind, p, m)
        return float(np.sum(rr["outputs"] * R1) + np.sum(rr["attention_scores"] * R2))

    grads = api_backward(kind, r, R1, R2)
    expected = set(p)
    if kind == "concat":
        expected.add("concat_score_weight")
        p["concat_score_weight"] = np.array(1.0)   # the default, now explicit for FD
    assert set(grads) == expected
    fd_check(f, p, grads, sorted(grads))


@pytest.mark.parametrize("kind", KINDS)
def test_backward_without_d_weights(kind):
    p = make_inputs(kind)
    m = masks_for(kind, "all")
    r = api_forward(kind, p, m)
    R1, _ = loss_and_seeds(r["outputs"].shape, r["attention_scores"].shape)

    def f():
        return float(np.sum(api_forward(kind, p, m)["outputs"] * R1))

    grads = api_backward(kind, r, R1, None)
    fd_check(f, p, grads, sorted(set(grads) & set(p)))


@pytest.mark.parametrize("kind", KINDS)
def test_backward_fully_masked_rows_exact_arithmetic(kind):
    """Through fully masked rows the analytic gradient is that of Keras' function in exact
    arithmetic (softmax(score), the -1e9 shift cancelling): checked by finite differences
    on the twin with exact_full_rows=True, which equals the kernel's forward elsewhere."""
    p = make_inputs(kind)
    m = full_row_masks()
    if kind.startswith("bahdanau"):
        m.pop("attention_mask")
    r = api_forward(kind, p, m)
    out_e, w_e = twin(kind, p, m, exact_full_rows=True)
    np.testing.assert_allclose(r["attention_scores"], w_e, rtol=0, atol=1e-6)
    R1, R2 = loss_and_seeds(r["outputs"].shape, r["attention_scores"].shape)

    def f():
        o, w = twin(kind, p, m, exact_full_rows=True)
        return float(np.sum(o * R1) + np.sum(w * R2))

    grads = api_backward(kind, r, R1, R2)
    # the saved weights of fully masked rows carry the ~1e-7 float64 rounding of score - 1e9
    fd_check(f, p, grads, sorted(set(grads) & set(p)))


@pytest.mark.parametrize("kind", ["dot_scale", "concat_scale", "additive_scale"])
def test_backward_key_is_value(kind):
    p = make_inputs(kind)
    del p["key"]
    p["value"] = rng(9).normal(size=(B, TV, D))
    m = MASKS["all"]
    r = api_forward(kind, {**p, "key": None}, m)
    R1, R2 = loss_and_seeds(r["outputs"].shape, r["attention_scores"].shape)

    def f():
        rr = api_forward(kind, {**p, "key": None}, m)
        return float(np.sum(rr["outputs"] * R1) + np.sum(rr["attention_scores"] * R2))

    grads = api_backward(kind, r, R1, R2)
    assert "key" not in grads
    fd_check(f, p, grads, sorted(set(grads) & set(p)))


@pytest.mark.parametrize("with_bias", [True, False])
def test_bahdanau_single_step_backward(with_bias):
    p = make_inputs("bahdanau", single=True)
    if not with_bias:
        p.pop("b1")
        p.pop("b2")
    vm = np.array([[1, 1, 0, 1], [0, 0, 1, 1]], bool)
    qm = np.array([True, False])

    def fwd():
        return A.bahdanau_attention_forward(p["query"], p["values"], p["W1"], p["W2"], p["V"],
                                            p.get("b1"), p.get("b2"), value_mask=vm,
                                            query_mask=qm)

    r = fwd()
    R1, R2 = loss_and_seeds(r["outputs"].shape, r["attention_scores"].shape)

    def f():
        rr = fwd()
        return float(np.sum(rr["outputs"] * R1) + np.sum(rr["attention_scores"] * R2))

    grads = A.bahdanau_attention_backward(r, R1, R2)
    assert set(grads) == set(p)
    assert grads["query"].shape == p["query"].shape
    fd_check(f, p, grads, sorted(grads))


def test_backward_float32_close_to_float64():
    for kind in KINDS:
        p64 = make_inputs(kind)
        p32 = {k: v.astype(np.float32) for k, v in p64.items()}
        m = masks_for(kind, "all")
        r64, r32 = api_forward(kind, p64, m), api_forward(kind, p32, m)
        R1, R2 = loss_and_seeds(r64["outputs"].shape, r64["attention_scores"].shape)
        g64 = api_backward(kind, r64, R1, R2)
        g32 = api_backward(kind, r32, R1.astype(np.float32), R2.astype(np.float32))
        for name in g64:
            assert np.asarray(g32[name]).dtype == np.float32, name
            np.testing.assert_allclose(g32[name], g64[name], rtol=1e-4, atol=1e-5,
                                       err_msg=f"{kind} {name}")


# ---- shape errors --------------------------------------------------------------------------

def test_error_key_value_lengths_differ():
    with pytest.raises(ShapeError, match=r"ops\.dot_attention: `key` and `value` must have the "
                                         r"same length Tv, got key \(2, 5, 8\) and value "
                                         r"\(2, 6, 8\)\.\nHint: key\[:, j\] is the key"):
        A.dot_attention(np.ones((2, 3, 8)), np.ones((2, 6, 8)), np.ones((2, 5, 8)))
    with pytest.raises(ValueError, match=r"ops\.additive_attention: `key` and `value` must"):
        A.additive_attention(np.ones((2, 3, 8)), np.ones((2, 6, 8)), np.ones((2, 5, 8)))


def test_error_query_key_features_differ():
    with pytest.raises(ShapeError, match=r"^ops\.dot_attention: `key` must have shape "
                                         r"\(batch, Tv, 16\), got \(2, 5, 8\)\.\nHint: the "
                                         r"scores compare query and key features"):
        A.dot_attention(np.ones((2, 3, 16)), np.ones((2, 5, 4)), np.ones((2, 5, 8)))
    with pytest.raises(ShapeError, match=r"`value` must have shape \(batch, Tv, 16\), got "
                                         r"\(2, 5, 8\)\.\nHint: .*bahdanau_attention"):
        A.dot_attention(np.ones((2, 3, 16)), np.ones((2, 5, 8)), score_mode="concat")
    with pytest.raises(ShapeError, match=r"ops\.additive_attention: `key` must have shape "
                                         r"\(batch, Tv, 16\)"):
        A.additive_attention(np.ones((2, 3, 16)), np.ones((2, 5, 4)), np.ones((2, 5, 8)))


@pytest.mark.parametrize("fn", [A.dot_attention, A.additive_attention])
def test_error_2d_query(fn):
    with pytest.raises(ShapeError, match=r"`query` must have shape \(batch, Tq, dim\), got "
                                         r"\(2, 8\)\.\nHint: .*bahdanau_attention.*"
                                         r"query\[:, None, :\]"):
        fn(np.ones((2, 8)), np.ones((2, 5, 8)))


def test_error_batch_and_rank_of_values():
    with pytest.raises(ShapeError, match=r"`value` must have shape \(2, Tv, value_dim\), got "
                                         r"\(3, 5, 8\)"):
        A.dot_attention(np.ones((2, 3, 8)), np.ones((3, 5, 8)))
    with pytest.raises(ShapeError, match=r"`value` must have shape \(batch, Tv, value_dim\), "
                                         r"got \(2, 8\)\.\nHint: .*value\[:, None, :\]"):
        A.dot_attention(np.ones((2, 3, 8)), np.ones((2, 8)))


@pytest.mark.parametrize("arg,shape,expected", [
    ("value_mask", (2, 6), r"\(batch, Tv\) = \(2, 5\), got \(2, 6\)"),
    ("value_mask", (2, 3, 5), r"\(batch, Tv\) = \(2, 5\), got \(2, 3, 5\)\.\nHint: .*"
                              r"attention_mask"),
    ("query_mask", (2, 5), r"\(batch, Tq\) = \(2, 3\), got \(2, 5\)"),
    ("query_mask", (2,), r"\(batch, Tq\) = \(2, 3\), got \(2,\)"),
    ("attention_mask", (2, 5), r"\(batch, Tq, Tv\) = \(2, 3, 5\), got \(2, 5\)\.\nHint: .*"
                               r"value_mask"),
])
def test_error_masks(arg, shape, expected):
    for fn, name in ((A.dot_attention, "dot_attention"),
                     (A.additive_attention, "additive_attention")):
        with pytest.raises(ShapeError, match=rf"ops\.{name}: `{arg}` must have shape {expected}"):
            fn(np.ones((2, 3, 8)), np.ones((2, 5, 8)), **{arg: np.ones(shape, bool)})


def test_error_bahdanau_shapes():
    q, x = np.ones((2, 6)), np.ones((2, 5, 4))
    W1, W2, V = np.ones((4, 3)), np.ones((6, 3)), np.ones(3)
    with pytest.raises(ShapeError, match=r"ops\.bahdanau_attention: `W1` must have shape "
                                         r"\(4, 3\), got \(3, 4\)\.\nHint: W1 looks transposed"):
        A.bahdanau_attention(q, x, W1.T, W2, V)
    with pytest.raises(ShapeError, match=r"`W2` must have shape \(6, 3\), got \(5, 3\)\.\n"
                                         r"Hint: W2 projects the query, which has 6 features"):
        A.bahdanau_attention(q, x, W1, np.ones((5, 3)), V)
    with pytest.raises(ShapeError, match=r"`query_mask` must have shape \(batch\) = \(2,\), "
                                         r"got \(2, 1\)"):
        A.bahdanau_attention(q, x, W1, W2, V, query_mask=np.ones((2, 1)))
    with pytest.raises(ShapeError, match=r"`values` must have shape \(batch, Tv, Dv\), got "
                                         r"\(2, 4\)\.\nHint: .*values\[:, None, :\]"):
        A.bahdanau_attention(q, np.ones((2, 4)), W1, W2, V)
    with pytest.raises(ShapeError, match=r"`value_mask` must have shape \(batch, Tv\) = "
                                         r"\(2, 5\), got \(2, 4\)"):
        A.bahdanau_attention(q, x, W1, W2, V, value_mask=np.ones((2, 4)))
    with pytest.raises(ShapeError, match=r"`keys` must have shape \(2, 5, 3\), got \(2, 5, 4\)"):
        A.bahdanau_attention(q, x, W1, W2, V, keys=np.ones((2, 5, 4)))
    with pytest.raises(ShapeError, match=r"`b1` must have shape \(3,\), got \(4,\)"):
        A.bahdanau_attention(q, x, W1, W2, V, b1=np.ones(4))


def test_error_scales_and_mode():
    q, v = np.ones((2, 3, 8)), np.ones((2, 5, 8))
    with pytest.raises(ShapeError, match=r"ops\.additive_attention: `scale` must have shape "
                                         r"\(8,\), got \(4,\)"):
        A.additive_attention(q, v, scale=np.ones(4))
    with pytest.raises(ShapeError, match=r"ops\.dot_attention: `scale` must have shape a "
                                         r"scalar, shape \(\), got \(3,\)"):
        A.dot_attention(q, v, scale=np.ones(3))
    with pytest.raises(ValueError, match=r"Invalid value for argument score_mode\. Expected one "
                                         r"of \{'dot', 'concat'\}\. Received: score_mode='cat'"):
        A.dot_attention(q, v, score_mode="cat")


def test_error_backward_gradient_shapes():
    r = A.dot_attention_forward(np.ones((2, 3, 8)), np.ones((2, 5, 4)), np.ones((2, 5, 8)))
    with pytest.raises(ShapeError, match=r"ops\.dot_attention_backward: `d_outputs` must have shape "
                                         r"\(2, 3, 4\), got \(2, 3, 8\)"):
        A.dot_attention_backward(r, np.ones((2, 3, 8)))
    with pytest.raises(ShapeError, match=r"`d_attention_scores` must have shape \(2, 3, 5\)"):
        A.dot_attention_backward(r, np.ones((2, 3, 4)), np.ones((2, 5, 3)))


# ---- the binding never crashes -------------------------------------------------------------

def test_binding_rejects_bad_dtypes_and_shapes():
    q = np.ones((2, 3, 4))
    with pytest.raises(TypeError, match=r"dot_attention_forward: `query` must have dtype "
                                        r"float32 or float64"):
        _core.dot_attention_forward(q.astype(np.int64), q, q)
    with pytest.raises(TypeError, match=r"`key` must have dtype float64 like the inputs"):
        _core.dot_attention_forward(q, q.astype(np.float32), q)
    with pytest.raises(ValueError, match=r"`key` must have shape \(B, Tv, D\) = \(2, \?, 4\), "
                                         r"got \(2, 3, 5\)"):
        _core.dot_attention_forward(q, np.ones((2, 3, 5)), q)
    with pytest.raises(ValueError, match=r"`score_mode` must be 0 \(dot\) or 1 \(concat\)"):
        _core.dot_attention_forward(q, q, q, score_mode=7)
    with pytest.raises(ValueError, match=r"`attention_mask` must have shape \(B, Tq, Tv\)"):
        _core.additive_attention_forward(q, q, q, attention_mask=np.ones((2, 3)))
    with pytest.raises(TypeError):
        _core.bahdanau_forward([1.0], q, q, q, q)


def test_binding_rejects_absurd_sizes():
    # zero-size arrays with huge axes: nothing is allocated, the size checks must catch them
    huge = np.empty((0, 2**31, 2))
    with pytest.raises(ValueError, match=r"Tq = 2147483648 is too large for the 32-bit BLAS"):
        _core.dot_attention_forward(huge, np.empty((0, 3, 2)), np.empty((0, 3, 2)))
    big = 2**31 - 1
    with pytest.raises(ValueError, match=r"overflows"):
        _core.additive_attention_forward(np.empty((0, big, 2)), np.empty((0, big, 2)),
                                         np.empty((0, big, 1)))
    with pytest.raises(ValueError, match=r"B\*Tv = 4294967296 is too large for the 32-bit BLAS"):
        _core.bahdanau_forward(np.empty((2**20, 0, 0)), np.empty((2**20, 2**12, 0)),
                               np.empty((0, 0)), np.empty((0, 0)), np.empty(0))
    # a huge batch of empty sequences is a defined, instant, empty result
    out, w = _core.dot_attention_forward(np.empty((2**40, 0, 3)), np.empty((2**40, 0, 3)),
                                         np.empty((2**40, 0, 2)))
    assert out.shape == (2**40, 0, 2) and w.shape == (2**40, 0, 0)


def test_binding_accepts_strided_and_nan_inputs():
    g = rng(12)
    big = g.normal(size=(4, 6, 8))
    q, k, v = big[::2, ::2, ::2], big[1::2, :4, 1::2], big[::2, 2:, ::4]   # non-contiguous
    out, w = _core.dot_attention_forward(q, k, v)
    ro, rw = R.attention(q, v, k)
    np.testing.assert_allclose(out, ro, rtol=0, atol=1e-10)
    qn = np.array(q)
    qn[0, 1, 0] = np.nan
    out, w = _core.dot_attention_forward(qn, k, v)
    assert np.all(np.isnan(w[0, 1])) and np.all(np.isfinite(w[1]))
    assert np.all(np.isfinite(np.delete(w[0], 1, axis=0)))


_DTYPES = [np.float32, np.float64, np.int32, np.float16]


@st.composite
def attention_call(draw):
    b, tq, tv, d, dv = (draw(st.integers(0, 3)) for _ in range(5))
    dtype = draw(st.sampled_from(_DTYPES[:2]))
    shapes = {"query": (b, tq, d), "key": (b, tv, d), "value": (b, tv, dv)}
    # perturb one shape or dtype now and then
    bad = draw(st.sampled_from([None, None, "query", "key", "value"]))
    dtypes = {n: dtype for n in shapes}
    if bad is not None:
        how = draw(st.sampled_from(["rank", "axis", "dtype"]))
        if how == "rank":
            shapes[bad] = shapes[bad][:draw(st.integers(0, 2))]
        elif how == "axis":
            ax = draw(st.integers(0, 2))
            s = list(shapes[bad])
            s[ax] += draw(st.integers(1, 2))
            shapes[bad] = tuple(s)
        else:
            dtypes[bad] = draw(st.sampled_from(_DTYPES))
    strided = draw(st.booleans())
    nan = draw(st.booleans())
    mask_kind = draw(st.sampled_from(["none", "value", "query", "attention", "wrong"]))
    causal = draw(st.booleans())
    kind = draw(st.sampled_from(["dot", "concat", "additive", "bahdanau"]))
    seed = draw(st.integers(0, 2**16))
    return dict(shapes=shapes, dtypes=dtypes, strided=strided, nan=nan, mask_kind=mask_kind,
                causal=causal, kind=kind, seed=seed, valid=bad is None)


def _make(shape, dtype, strided, g):
    if strided and len(shape) > 0:
        full = g.normal(size=tuple(2 * s for s in shape[:-1]) + shape[-1:])
        a = full[tuple(slice(None, None, 2) for _ in shape[:-1])]
    else:
        a = g.normal(size=shape)
    return a.astype(dtype, copy=False) if np.dtype(dtype) != a.dtype else a


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(attention_call())
def test_binding_fuzz_never_crashes(call):
    g = rng(call["seed"])
    arrs = {n: _make(s, call["dtypes"][n], call["strided"], g) for n, s in call["shapes"].items()}
    if call["nan"] and arrs["query"].size and arrs["query"].dtype.kind == "f":
        arrs["query"] = np.array(arrs["query"])
        arrs["query"].flat[0] = np.nan
    qs, ks = call["shapes"]["query"], call["shapes"]["key"]
    bq = qs[0] if len(qs) > 0 else 0
    tq = qs[1] if len(qs) > 1 else 0
    tv = ks[1] if len(ks) > 1 else 0
    masks = {}
    if call["mask_kind"] == "value":
        masks["value_mask"] = g.random((bq, tv)) > 0.3
    elif call["mask_kind"] == "query":
        masks["query_mask"] = g.random((bq, tq)) > 0.3
    elif call["mask_kind"] == "attention":
        masks["attention_mask"] = g.random((bq, tq, tv)) > 0.3
    elif call["mask_kind"] == "wrong":
        masks["value_mask"] = np.ones((bq + 1, tv + 2))
    q, k, v = arrs["query"], arrs["key"], arrs["value"]
    try:
        if call["kind"] in ("dot", "concat"):
            out, w = _core.dot_attention_forward(q, k, v, causal=call["causal"], scale=0.5,
                                                 score_mode=call["kind"] == "concat", **masks)
            ref = lambda: R.attention(q, v, k, 0.5, call["kind"], None,  # noqa: E731
                                      causal=call["causal"], **masks)
        elif call["kind"] == "additive":
            out, w = _core.additive_attention_forward(q, k, v, causal=call["causal"], **masks)
            ref = lambda: R.additive_attention(q, v, k, causal=call["causal"],  # noqa: E731
                                               **masks)
        else:
            masks.pop("attention_mask", None)
            U = 2
            W1 = np.ones((v.shape[-1] if v.ndim else 0, U), v.dtype)
            W2 = np.ones((q.shape[-1] if q.ndim else 0, U), q.dtype)
            Vv = np.ones(U, q.dtype)
            out, w, qp, kp = _core.bahdanau_forward(q, v, W1, W2, Vv, **masks)
            ref = lambda: R.bahdanau(q, v, W1, W2, Vv, **masks)  # noqa: E731
    except (TypeError, ValueError, MemoryError):
        if call["valid"] and call["mask_kind"] != "wrong":
            raise
        return
    assert out.dtype == q.dtype and w.dtype == q.dtype
    if not call["nan"] and q.dtype.kind == "f":
        ro, rw = ref()
        tol = 1e-10 if q.dtype == np.float64 else 1e-4
        np.testing.assert_allclose(out, ro, rtol=tol, atol=tol)
        np.testing.assert_allclose(w, rw, rtol=tol, atol=tol)
        if call["kind"] != "bahdanau":
            dq, dk, dv = (_core.dot_attention_backward(np.ones_like(out), w, w, q, k, v)[:3]
                          if call["kind"] != "additive" else
                          _core.additive_attention_backward(np.ones_like(out), w, w, q, k, v)[:3])
            assert dq.shape == q.shape and dk.shape == k.shape and dv.shape == v.shape
            assert np.all(np.isfinite(dq)) and np.all(np.isfinite(dk))


# ---- parity with Keras 3 -------------------------------------------------------------------

@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras as keras_module  # installed by `make test`; parity tests must not skip
    return keras_module


def _keras_case(seed=21, tq=4, tv=5, d=6, dv=3):
    g = rng(seed)
    q = g.normal(size=(B, tq, d)).astype(np.float32)
    v = g.normal(size=(B, tv, dv)).astype(np.float32)
    k = g.normal(size=(B, tv, d)).astype(np.float32)
    qm = np.array([[1, 1, 0, 1], [1, 0, 1, 1]], bool)[:, :tq]
    vm = np.array([[1, 1, 0, 1, 1], [1, 0, 0, 1, 0]], bool)[:, :tv]
    return q, v, k, qm, vm


KERAS_MASKS = [("none", False), ("masks", False), ("none", True), ("masks", True)]


@pytest.mark.parametrize("masks,causal", KERAS_MASKS)
@pytest.mark.parametrize("score_mode", ["dot", "concat"])
def test_keras_attention_parity(keras, score_mode, masks, causal):
    q, v, k, qm, vm = _keras_case()
    layer = keras.layers.Attention(use_scale=True, score_mode=score_mode)
    mask = [qm, vm] if masks == "masks" else None
    layer([q, v, k], mask=mask)                 # build
    layer.scale.assign(0.7)
    if score_mode == "concat":
        layer.concat_score_weight.assign(1.3)
    kout, kw = layer([q, v, k], mask=mask, use_causal_mask=causal, return_attention_scores=True)
    out, w = A.dot_attention(q, v, k, scale=0.7, score_mode=score_mode,
                             concat_score_weight=1.3 if score_mode == "concat" else None,
                             query_mask=qm if mask else None, value_mask=vm if mask else None,
                             use_causal_mask=causal, return_attention_scores=True)
    np.testing.assert_allclose(out, np.asarray(kout), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(w, np.asarray(kw), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("masks,causal", KERAS_MASKS)
@pytest.mark.parametrize("use_scale", [True, False])
def test_keras_additive_attention_parity(keras, use_scale, masks, causal):
    q, v, k, qm, vm = _keras_case(dv=6)
    layer = keras.layers.AdditiveAttention(use_scale=use_scale)
    mask = [qm, vm] if masks == "masks" else None
    layer([q, v, k], mask=mask)
    scale = None
    if use_scale:
        scale = rng(22).normal(size=(6,)).astype(np.float32)
        layer.scale.assign(scale)
    kout, kw = layer([q, v, k], mask=mask, use_causal_mask=causal, return_attention_scores=True)
    out, w = A.additive_attention(q, v, k, scale=scale, query_mask=qm if mask else None,
                                  value_mask=vm if mask else None, use_causal_mask=causal,
                                  return_attention_scores=True)
    np.testing.assert_allclose(out, np.asarray(kout), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(w, np.asarray(kw), rtol=1e-4, atol=1e-5)


def test_keras_fully_masked_rows_parity(keras):
    """Fully masked rows: Keras' near-uniform result, bit for bit in the weights when the
    scores are small (float32 score - 1e9 rounds to -1e9), including large scores where the
    quantisation to multiples of 64 picks the largest keys."""
    q, v, k, qm, _ = _keras_case()
    vm = np.zeros((B, 5), bool)
    vm[0, 2] = True
    for mult in (0.1, 40.0):
        qq = q * np.float32(mult)
        layer = keras.layers.Attention()
        kout, kw = layer([qq, v, k], mask=[qm, vm], return_attention_scores=True)
        out, w = A.dot_attention(qq, v, k, query_mask=qm, value_mask=vm,
                                 return_attention_scores=True)
        np.testing.assert_allclose(w, np.asarray(kw), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(out, np.asarray(kout), rtol=1e-4, atol=1e-5)


# ---- the vectorised tanh: saturation, inf, long feature axes -------------------------------

@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_tanh_scores_saturation_and_inf(dt):
    """The kernels' own tanh (attention_impl.h) against np.tanh over the whole range, through
    the concat scores (scale 3 pushes |scale*(q+k)| far past saturation), and with +-inf."""
    g = rng(31)
    q = (10 * g.normal(size=(B, 5, 7))).astype(dt)
    k = (10 * g.normal(size=(B, 19, 7))).astype(dt)
    v = g.normal(size=(B, 19, 2)).astype(dt)
    tol = dict(rtol=0, atol=1e-10) if dt == np.float64 else dict(rtol=1e-5, atol=1e-5)
    out, w = A.dot_attention(q, v, k, scale=0.05, score_mode="concat",
                             return_attention_scores=True)
    ro, rw = R.attention(q, v, k, 0.05, "concat")
    np.testing.assert_allclose(w, rw, **tol)
    np.testing.assert_allclose(out, ro, **tol)
    q[0, 0, 0], q[1, 2, 3] = np.inf, -np.inf
    out, w = A.additive_attention(q, v, k, return_attention_scores=True)
    ro, rw = R.additive_attention(q, v, k)
    assert np.all(np.isfinite(w)) and np.all(np.isfinite(out))
    np.testing.assert_allclose(w, rw, **tol)


def test_long_feature_axis_crosses_workspace_chunks():
    """U = 300 > the 256-element stack chunks of the backward; Tv = 17 pads to 32."""
    g = rng(32)
    p = {"query": 0.2 * g.normal(size=(1, 2, 300)), "value": g.normal(size=(1, 17, 2)),
         "key": 0.2 * g.normal(size=(1, 17, 300)), "scale": g.normal(size=(300,))}
    vm = np.ones((1, 17), bool)
    vm[0, 5] = False
    r = A.additive_attention_forward(p["query"], p["value"], p["key"], scale=p["scale"],
                                     value_mask=vm)
    ro, rw = R.additive_attention(p["query"], p["value"], p["key"], p["scale"], value_mask=vm)
    np.testing.assert_allclose(r["outputs"], ro, rtol=0, atol=1e-10)
    R1, R2 = loss_and_seeds(r["outputs"].shape, r["attention_scores"].shape)

    def f():
        rr = A.additive_attention_forward(p["query"], p["value"], p["key"], scale=p["scale"],
                                          value_mask=vm)
        return float(np.sum(rr["outputs"] * R1) + np.sum(rr["attention_scores"] * R2))

    grads = A.additive_attention_backward(r, R1, R2)
    fd_check(f, p, grads, sorted(grads))
    rc = A.dot_attention_forward(p["query"], p["value"], p["key"], scale=0.3,
                                 score_mode="concat", concat_score_weight=0.9, value_mask=vm)
    gc = A.dot_attention_backward(rc, R1, R2)
    pc = {"query": p["query"], "key": p["key"], "scale": np.array(0.3),
          "concat_score_weight": np.array(0.9)}

    def fc():
        rr = A.dot_attention_forward(pc["query"], p["value"], pc["key"], scale=pc["scale"],
                                     score_mode="concat",
                                     concat_score_weight=pc["concat_score_weight"],
                                     value_mask=vm)
        return float(np.sum(rr["outputs"] * R1) + np.sum(rr["attention_scores"] * R2))

    fd_check(fc, pc, gc, ["scale", "concat_score_weight", "query"])


def test_additive_scalar_scale_gradient():
    p = make_inputs("additive")
    p["scale"] = np.array(0.8)
    m = MASKS["all"]
    r = api_forward("additive", p, m)
    R1, R2 = loss_and_seeds(r["outputs"].shape, r["attention_scores"].shape)

    def f():
        rr = api_forward("additive", p, m)
        return float(np.sum(rr["outputs"] * R1) + np.sum(rr["attention_scores"] * R2))

    grads = api_backward("additive", r, R1, R2)
    assert grads["scale"].shape == ()
    fd_check(f, p, grads, sorted(grads))


# ---- the per-sample team and the packed-tile products (sizes where every form runs) ----------

def _autograd_attention(kind, masks):
    """The forward as autograd (HIPS) code, for the backward's reference: Keras' formulas
    (the -1e9 mask penalty, softmax, query-masked rows zeroed), every row keeping key 0."""
    import autograd.numpy as anp

    def forward(q, v, k, scale, cw):
        if kind == "dot":
            S = anp.einsum("bid,bjd->bij", q, k) * scale
        elif kind == "concat":
            S = cw * anp.sum(anp.tanh(scale * (q[:, :, None, :] + k[:, None, :, :])), -1)
        else:
            S = anp.sum(scale * anp.tanh(q[:, :, None, :] + k[:, None, :, :]), -1)
        B, Tq, Tv = S.shape
        keep = np.ones((B, Tq, Tv), bool)
        if "value_mask" in masks:
            keep &= masks["value_mask"][:, None, :]
        if "attention_mask" in masks:
            keep &= masks["attention_mask"]
        if masks.get("causal"):
            keep &= np.tril(np.ones((Tq, Tv), bool))[None]
        S = S - 1e9 * (~keep)
        e = anp.exp(S - anp.max(S, axis=-1, keepdims=True))
        P = e / anp.sum(e, axis=-1, keepdims=True)
        out = anp.einsum("bij,bjd->bid", P, v)
        if "query_mask" in masks:
            out = out * masks["query_mask"][:, :, None]
        return out, P

    return forward


def _team_case(D, Dv, seed=70):
    """B Tq Tv (D + Dv + 8) over attention.c's AL_ATTN_TEAM_MIN (2**21), so 2 threads split
    the samples; Tv = 131 (whole packed panels and a partial one on every path)."""
    g = rng(seed)
    Tq, Tv = 37, 131
    B = max(3, -(-2 ** 21 // (Tq * Tv * (D + Dv + 8))) + 1)
    a = 1.0 / max(D, 1) ** 0.25
    x = {"query": a * g.normal(size=(B, Tq, D)), "value": g.normal(size=(B, Tv, Dv)),
         "key": a * g.normal(size=(B, Tv, D))}
    vm = g.random((B, Tv)) > 0.3
    am = g.random((B, Tq, Tv)) > 0.2
    vm[:, 0] = True
    am[..., 0] = True
    qm = g.random((B, Tq)) > 0.2
    masks = {"value_mask": vm, "attention_mask": am, "query_mask": qm, "causal": True}
    return g, x, masks


@pytest.mark.parametrize("kind", ["dot", "concat", "additive"])
@pytest.mark.parametrize("D,Dv", [(70, 66), (20, 9)])
@pytest.mark.parametrize("threads", [1, 2])
def test_backward_matches_autograd_on_the_team(kind, D, Dv, threads):
    """Forward and backward (float64) against autograd through Keras' formulas, at sizes where
    the samples split over a team of 2 and the backward's dV = P^T G and dK = dS^T Q take both
    forms (packed from 64 float32 / 32 float64 columns, transposes below), with every mask,
    a returned-scores gradient and scale weights."""
    import autograd
    import attnlstm
    g, x, masks = _team_case(D, Dv)
    if kind == "dot":
        scale, cw = 0.7, 1.0
    elif kind == "concat":
        scale, cw = 0.6, 1.3
    else:
        scale, cw = g.normal(size=(D,)), 1.0
    forward = _autograd_attention(kind, masks)
    B = x["query"].shape[0]
    G = g.normal(size=(B, 37, Dv))
    GW = g.normal(size=(B, 37, 131))

    def loss(q, v, k, s, c):
        out, P = forward(q, v, k, s, c)
        return (out * G).sum() + (P * GW).sum()

    want_out, want_w = forward(x["query"], x["value"], x["key"], scale, cw)
    want = autograd.grad(loss, [0, 1, 2, 3, 4])(x["query"], x["value"], x["key"], scale, cw)
    m = dict(masks)
    causal = m.pop("causal")
    old = attnlstm.get_num_threads()
    attnlstm.set_num_threads(threads)
    try:
        if kind == "additive":
            saved = A.additive_attention_forward(x["query"], x["value"], x["key"], scale=scale,
                                                 use_causal_mask=causal, **m)
            got = A.additive_attention_backward(saved, G, GW)
        else:
            saved = A.dot_attention_forward(x["query"], x["value"], x["key"],
                                            scale=np.array(scale), score_mode=kind,
                                            concat_score_weight=(np.array(cw) if kind == "concat"
                                                                 else None),
                                            use_causal_mask=causal, **m)
            got = A.dot_attention_backward(saved, G, GW)
    finally:
        attnlstm.set_num_threads(old)
    np.testing.assert_allclose(saved["outputs"], want_out, rtol=0, atol=1e-12)
    np.testing.assert_allclose(saved["attention_scores"], want_w, rtol=0, atol=1e-12)
    names = ["query", "value", "key", "scale"] + (["concat_score_weight"] if kind == "concat"
                                                 else [])
    for n in names:
        ref = want[names.index(n)] if n != "concat_score_weight" else want[4]
        tol = 1e-10 * max(np.abs(ref).max(), 1.0)
        np.testing.assert_allclose(got[n], ref, rtol=0, atol=tol, err_msg=n)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["dot", "concat", "additive"])
def test_same_bits_on_one_and_two_threads(dtype, kind):
    """Outputs, weights and every gradient are the same bits whether the samples run on one
    thread or split among a team of two (each sample's products on one thread on attnlstm's
    tiles, the per-sample partial sums of the scale gradients added in sample order)."""
    import attnlstm
    g, x, masks = _team_case(70, 66, seed=71)
    x = {k: v.astype(dtype) for k, v in x.items()}
    m = dict(masks)
    causal = m.pop("causal")
    G = g.normal(size=(x["query"].shape[0], 37, 66)).astype(dtype)
    res = []
    old = attnlstm.get_num_threads()
    try:
        for threads in (1, 2):
            attnlstm.set_num_threads(threads)
            if kind == "additive":
                s = A.additive_attention_forward(x["query"], x["value"], x["key"],
                                                 scale=g.normal(size=70).astype(dtype)
                                                 if not res else res[0][0]["scale"],
                                                 use_causal_mask=causal, **m)
                d = A.additive_attention_backward(s, G)
            else:
                s = A.dot_attention_forward(x["query"], x["value"], x["key"],
                                            scale=np.array(0.8, dtype), score_mode=kind,
                                            use_causal_mask=causal, **m)
                d = A.dot_attention_backward(s, G)
            res.append((s, d))
    finally:
        attnlstm.set_num_threads(old)
    (s1, d1), (s2, d2) = res
    np.testing.assert_array_equal(s1["outputs"], s2["outputs"])
    np.testing.assert_array_equal(s1["attention_scores"], s2["attention_scores"])
    assert set(d1) == set(d2)
    for k in d1:
        np.testing.assert_array_equal(d1[k], d2[k], err_msg=k)
