"""Tests of the multi-head / relative-position attention kernels (csrc/mha_impl.h) through
attnlstm.ops.mha and the raw binding: NumPy twins, finite differences, shape errors, binding
robustness (hypothesis), and parity with keras.layers.MultiHeadAttention (Keras 3.15.1)."""
import numpy as np
import pytest
from hypothesis import given, settings, HealthCheck
from hypothesis import strategies as st

from attnlstm import _core
from attnlstm.ops import mha as M
from attnlstm.errors import ShapeError

import reference_mha as R

TWIN_TOL = 1e-10


def make_case(seed=0, B=2, Tq=4, Tv=5, Dq=3, Dk=6, Dv=7, NH=2, HS=3, HSv=4, Dout=5,
              use_bias=True, key=True, dtype=np.float64):
    rng = np.random.default_rng(seed)
    n = lambda *s: rng.normal(size=s).astype(dtype)  # noqa: E731
    inputs = {"query": n(B, Tq, Dq), "value": n(B, Tv, Dv), "key": n(B, Tv, Dk) if key else None}
    if not key:
        Dk = Dv
    w = {"query_kernel": n(Dq, NH, HS), "key_kernel": n(Dk, NH, HS),
         "value_kernel": n(Dv, NH, HSv), "output_kernel": n(NH, HSv, Dout)}
    for nm, shape in (("query_bias", (NH, HS)), ("key_bias", (NH, HS)),
                      ("value_bias", (NH, HSv)), ("output_bias", (Dout,))):
        w[nm] = n(*shape) if use_bias else None
    return rng, inputs, w


def make_masks(rng, kind, B, NH, Tq, Tv):
    """Mask arguments for a mask kind; every kind leaves some rows partly masked."""
    m = {}
    if kind in ("attention3", "all"):
        m["attention_mask"] = rng.random((B, Tq, Tv)) > 0.3
    if kind == "attention4":
        m["attention_mask"] = rng.random((B, NH, Tq, Tv)) > 0.3
    if kind in ("query", "all"):
        m["query_mask"] = rng.random((B, Tq)) > 0.3
    if kind in ("value", "all"):
        m["value_mask"] = rng.random((B, Tv)) > 0.3
    if kind in ("key", "all"):
        m["key_mask"] = rng.random((B, Tv)) > 0.3
    if kind in ("causal", "all"):
        m["use_causal_mask"] = True
    return m


MASK_KINDS = ["none", "attention3", "attention4", "query", "value", "key", "causal", "all"]


# ---- forward against the NumPy twin -------------------------------------------------------

@pytest.mark.parametrize("kind", MASK_KINDS)
@pytest.mark.parametrize("fully_masked", ["uniform", "zero"])
def test_mha_matches_twin(kind, fully_masked):
    rng, x, w = make_case(seed=MASK_KINDS.index(kind))
    masks = make_masks(rng, kind, 2, 2, 4, 5)
    out, scores = M.multi_head_attention(x["query"], x["value"], x["key"], **w, **masks,
                                         fully_masked=fully_masked,
                                         return_attention_scores=True)
    out_r, scores_r = R.multi_head_attention(x["query"], x["value"], x["key"], **w, **masks,
                                             fully_masked=fully_masked)
    assert out.shape == (2, 4, 5) and scores.shape == (2, 2, 4, 5)
    np.testing.assert_allclose(out, out_r, rtol=0, atol=TWIN_TOL)
    np.testing.assert_allclose(scores, scores_r, rtol=0, atol=TWIN_TOL)


@pytest.mark.parametrize("use_bias", [True, False])
def test_mha_key_defaults_to_value_and_no_bias(use_bias):
    rng, x, w = make_case(seed=3, key=False, use_bias=use_bias, HSv=2, Dout=6)
    out = M.multi_head_attention(x["query"], x["value"], **w)
    out_r, _ = R.multi_head_attention(x["query"], x["value"], **w)
    np.testing.assert_allclose(out, out_r, rtol=0, atol=TWIN_TOL)


def test_mha_float32_matches_twin():
    rng, x, w = make_case(seed=4, dtype=np.float32)
    masks = make_masks(rng, "all", 2, 2, 4, 5)
    out, scores = M.multi_head_attention(x["query"], x["value"], x["key"], **w, **masks,
                                         return_attention_scores=True)
    assert out.dtype == np.float32 and scores.dtype == np.float32
    x64 = {k: v.astype(np.float64) for k, v in x.items()}
    w64 = {k: v.astype(np.float64) for k, v in w.items()}
    out_r, scores_r = R.multi_head_attention(x64["query"], x64["value"], x64["key"], **w64,
                                             **masks)
    np.testing.assert_allclose(out, out_r, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(scores, scores_r, rtol=1e-5, atol=1e-6)


def test_mha_causal_rectangular_and_single_head():
    for Tq, Tv in ((6, 3), (3, 6)):
        rng, x, w = make_case(seed=5, Tq=Tq, Tv=Tv, NH=1)
        out, s = M.multi_head_attention(x["query"], x["value"], x["key"], **w,
                                        use_causal_mask=True, return_attention_scores=True)
        out_r, s_r = R.multi_head_attention(x["query"], x["value"], x["key"], **w,
                                            use_causal_mask=True)
        np.testing.assert_allclose(out, out_r, rtol=0, atol=TWIN_TOL)
        above = np.arange(Tv)[None, :] > np.arange(Tq)[:, None]      # keys after the query
        assert np.all(s[:, :, above] == 0) and np.all(s[:, :, ~above] > 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_peaked_rows_where_exp_underflows(dtype):
    """Scores hundreds apart: most exp(s - max) underflow to exactly 0 (the kernel skips
    libm there); the result must still equal the twin computed in the same dtype."""
    rng, x, w = make_case(seed=8, dtype=dtype, Tq=6, Tv=9)
    w["query_kernel"] = w["query_kernel"] * dtype(40 if dtype == np.float32 else 300)
    out, s = M.multi_head_attention(x["query"], x["value"], x["key"], **w,
                                    return_attention_scores=True)
    out_r, s_r = R.multi_head_attention(x["query"], x["value"], x["key"], **w)
    assert np.mean(s == 0) > 0.25
    tol = TWIN_TOL if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(s, s_r, rtol=0, atol=tol)
    np.testing.assert_allclose(out, out_r, rtol=tol, atol=tol * np.abs(out_r).max())


def test_partly_masked_rows_have_exact_zero_weights():
    rng, x, w = make_case(seed=6)
    # Huge scores would let a -1e9 style mask leak; exact masking must still give 0.
    w["query_kernel"] = w["query_kernel"] * 1e3
    vm = np.array([[1, 0, 1, 0, 1], [0, 1, 1, 1, 1]], bool)
    _, s = M.multi_head_attention(x["query"], x["value"], x["key"], **w, value_mask=vm,
                                  return_attention_scores=True)
    assert np.all(s[0, :, :, [1, 3]] == 0.0) and np.all(s[1, :, :, 0] == 0.0)
    np.testing.assert_allclose(s.sum(-1), 1.0, rtol=0, atol=1e-12)


@pytest.mark.parametrize("fully_masked", ["uniform", "zero"])
def test_fully_masked_rows_follow_the_keras_convention(fully_masked):
    rng, x, w = make_case(seed=7)
    am = rng.random((2, 4, 5)) > 0.3
    am[0, 1] = False              # one row with no key
    qm = np.ones((2, 4), bool)
    qm[1, 2] = False              # one masked query
    out, s = M.multi_head_attention(x["query"], x["value"], x["key"], **w, attention_mask=am,
                                    query_mask=qm, fully_masked=fully_masked,
                                    return_attention_scores=True)
    out_r, s_r = R.multi_head_attention(x["query"], x["value"], x["key"], **w,
                                        attention_mask=am, query_mask=qm,
                                        fully_masked=fully_masked)
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(s))
    np.testing.assert_allclose(out, out_r, rtol=0, atol=TWIN_TOL)
    np.testing.assert_allclose(s, s_r, rtol=0, atol=TWIN_TOL)
    for b, i in ((0, 1), (1, 2)):
        if fully_masked == "zero":
            assert np.all(s[b, :, i] == 0)
            np.testing.assert_allclose(out[b, i], w["output_bias"], rtol=0, atol=TWIN_TOL)
        else:
            np.testing.assert_allclose(s[b, :, i], 1 / 5, rtol=0, atol=1e-15)
            v = np.einsum("sc,cde->sde", x["value"][b], w["value_kernel"]) + w["value_bias"]
            expect = np.einsum("de,def->f", v.mean(0), w["output_kernel"]) + w["output_bias"]
            np.testing.assert_allclose(out[b, i], expect, rtol=0, atol=TWIN_TOL)


# ---- relative positions -------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["none", "all", "attention4"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
def test_outputs_without_kept_scores_are_the_same(kind, dtype, threads):
    """Inference without the scores (save_weights=False: one head's block in a scratch buffer,
    or an internal array on a team) gives the same bits as keeping them, plain and relative;
    the scores come back as None. Large enough for a 2-thread team (AL_MHA_TEAM_MIN)."""
    import attnlstm
    rng, x, w = make_case(seed=3, B=4, Tq=70, Tv=260, NH=4, dtype=dtype)
    masks = make_masks(rng, kind, 4, 4, 70, 260)
    old = attnlstm.get_num_threads()
    attnlstm.set_num_threads(threads)
    try:
        out_s, scores = M.multi_head_attention(x["query"], x["value"], x["key"], **w, **masks,
                                               return_attention_scores=True)
        out = M.multi_head_attention(x["query"], x["value"], x["key"], **w, **masks)
        np.testing.assert_array_equal(out, out_s)
        assert scores.shape == (4, 4, 70, 260)
        rel = dict(rel_k=rng.normal(size=(5, 3)).astype(dtype),
                   rel_v=rng.normal(size=(5, 4)).astype(dtype), max_relative_position=2)
        r_s, _ = M.relative_attention(x["query"], x["value"], x["key"], num_heads=4, **w,
                                      **rel, **masks, return_attention_scores=True)
        r = M.relative_attention(x["query"], x["value"], x["key"], num_heads=4, **w, **rel,
                                 **masks)
        np.testing.assert_array_equal(r, r_s)
    finally:
        attnlstm.set_num_threads(old)
    res = _core.mha_forward(x["query"], x["key"], x["value"], w["query_kernel"],
                            w["query_bias"], w["key_kernel"], w["key_bias"], w["value_kernel"],
                            w["value_bias"], w["output_kernel"], w["output_bias"],
                            save_weights=False)
    assert res[1] is None and res[0].shape == (4, 70, 5)


REL_CASES = [
    # (NH, K, with rel_v, mask kind, Tq, Tv)
    (1, 2, True, "none", 6, 6),
    (1, 0, True, "none", 5, 5),
    (3, 2, True, "all", 6, 6),
    (2, 1, False, "causal", 6, 6),
    (2, 9, True, "attention4", 4, 6),      # K beyond the sequence: no clipping
    (2, 2, True, "value", 7, 3),
]


@pytest.mark.parametrize("NH,K,with_v,kind,Tq,Tv", REL_CASES)
def test_relative_matches_twin(NH, K, with_v, kind, Tq, Tv):
    rng, x, w = make_case(seed=10 + K, NH=NH, Tq=Tq, Tv=Tv)
    rel_k = rng.normal(size=(2 * K + 1, 3))
    rel_v = rng.normal(size=(2 * K + 1, 4)) if with_v else None
    masks = make_masks(rng, kind, 2, NH, Tq, Tv)
    out, s = M.relative_attention(x["query"], x["value"], x["key"], num_heads=NH, **w,
                                  rel_k=rel_k, rel_v=rel_v, max_relative_position=K, **masks,
                                  return_attention_scores=True)
    out_r, s_r = R.multi_head_attention(x["query"], x["value"], x["key"], **w, **masks,
                                        rel_k=rel_k, rel_v=rel_v, max_relative_position=K)
    np.testing.assert_allclose(out, out_r, rtol=0, atol=TWIN_TOL)
    np.testing.assert_allclose(s, s_r, rtol=0, atol=TWIN_TOL)


def test_relative_flat_kernels_and_zero_embeddings_reduce_to_mha():
    rng, x, w = make_case(seed=12, NH=2)
    flat = dict(w)
    flat["query_kernel"] = w["query_kernel"].reshape(3, 6)
    flat["key_kernel"] = w["key_kernel"].reshape(6, 6)
    flat["value_kernel"] = w["value_kernel"].reshape(7, 8)
    flat["output_kernel"] = w["output_kernel"].reshape(8, 5)
    out = M.relative_attention(x["query"], x["value"], x["key"], num_heads=2, **flat,
                               rel_k=np.zeros((5, 3)), rel_v=np.zeros((5, 4)),
                               max_relative_position=2)
    out_m = M.multi_head_attention(x["query"], x["value"], x["key"], **w)
    np.testing.assert_allclose(out, out_m, rtol=0, atol=TWIN_TOL)


def test_relative_index_clipping():
    idx = R.relative_index(4, 6, 2)
    assert idx[0].tolist() == [2, 3, 4, 4, 4, 4]
    assert idx[3].tolist() == [0, 0, 1, 2, 3, 4]


# ---- backward: central finite differences in float64 ---------------------------------------

def check_gradients(forward, backward, args, kwargs, names, eps=1e-5, seed=0, with_scores=True):
    """Every gradient of loss = <out, G> + <scores, Gs> against central differences.

    The error of each gradient array is relative to its largest entry, floored at 1e-3 of the
    largest entry of any gradient: some gradients are exactly zero in theory (e.g. a single
    head's key bias shifts a whole score row, which the softmax ignores), where a pure
    relative error would only measure the finite-difference noise."""
    r = forward(*args, **kwargs)
    rng = np.random.default_rng(seed)
    G = rng.normal(size=r["outputs"].shape)
    Gs = rng.normal(size=r["attention_scores"].shape) if with_scores else None
    grads = backward(r, G, Gs)
    args = list(args)

    def loss():
        rr = forward(*args, **kwargs)
        val = np.sum(rr["outputs"] * G)
        if Gs is not None:
            val += np.sum(rr["attention_scores"] * Gs)
        return val

    floor = 1e-3 * max(np.abs(g).max() for g in grads.values() if g is not None and g.size)
    checked = 0
    for nm in names:
        pos = {"query": 0, "value": 1, "key": 2}.get(nm)
        arr = args[pos] if pos is not None else kwargs[nm]
        arr = np.array(arr, dtype=np.float64)
        if pos is not None:
            args[pos] = arr
        else:
            kwargs[nm] = arr
        num = np.zeros_like(arr)
        flat = arr.reshape(-1)
        for t in range(flat.size):
            old = flat[t]
            flat[t] = old + eps
            lp = loss()
            flat[t] = old - eps
            lm = loss()
            flat[t] = old
            num.reshape(-1)[t] = (lp - lm) / (2 * eps)
        ana = grads[nm]
        assert ana.shape == arr.shape, nm
        scale = max(np.abs(num).max(), np.abs(ana).max(), floor)
        err = np.abs(num - ana).max() / scale
        assert err <= 1e-6, f"{nm}: relative error {err:.2e}"
        checked += 1
    return grads, checked


MHA_GRAD_NAMES = ["query", "value", "key", "query_kernel", "query_bias", "key_kernel",
                  "key_bias", "value_kernel", "value_bias", "output_kernel", "output_bias"]


@pytest.mark.parametrize("kind", ["none", "attention4", "all"])
@pytest.mark.parametrize("fully_masked", ["uniform", "zero"])
def test_mha_backward_finite_differences(kind, fully_masked):
    rng, x, w = make_case(seed=20, B=2, Tq=3, Tv=4, Dq=3, Dk=2, Dv=3, NH=2, HS=2, HSv=3, Dout=2)
    masks = make_masks(rng, kind, 2, 2, 3, 4)
    if kind == "all":   # make sure a fully masked row is present
        masks["query_mask"][0, 1] = False
    kwargs = dict(w, **masks, fully_masked=fully_masked)
    _, n = check_gradients(M.multi_head_attention_forward, M.multi_head_attention_backward,
                           (x["query"], x["value"], x["key"]), kwargs, MHA_GRAD_NAMES)
    assert n == len(MHA_GRAD_NAMES)


def test_mha_backward_key_is_value_without_bias():
    rng, x, w = make_case(seed=21, B=2, Tq=3, Tv=3, Dq=2, Dv=3, NH=2, HS=2, HSv=2, Dout=3,
                          key=False, use_bias=False)
    grads, _ = check_gradients(M.multi_head_attention_forward, M.multi_head_attention_backward,
                               (x["query"], x["value"]), dict(w, use_causal_mask=True),
                               ["query", "value", "query_kernel", "key_kernel", "value_kernel",
                                "output_kernel"], with_scores=False)
    assert "key" not in grads and grads["query_bias"] is None and grads["output_bias"] is None


@pytest.mark.parametrize("NH,K,with_v,kind", [(1, 1, True, "none"), (2, 2, True, "all"),
                                              (2, 1, False, "causal"), (1, 4, True, "key")])
def test_relative_backward_finite_differences(NH, K, with_v, kind):
    rng, x, w = make_case(seed=22 + K, B=2, Tq=4, Tv=4, Dq=2, Dk=3, Dv=2, NH=NH, HS=2, HSv=3,
                          Dout=2)
    masks = make_masks(rng, kind, 2, NH, 4, 4)
    kwargs = dict(w, **masks, num_heads=NH, rel_k=rng.normal(size=(2 * K + 1, 2)),
                  rel_v=rng.normal(size=(2 * K + 1, 3)) if with_v else None,
                  max_relative_position=K)
    names = MHA_GRAD_NAMES + ["rel_k"] + (["rel_v"] if with_v else [])
    grads, n = check_gradients(M.relative_attention_forward, M.relative_attention_backward,
                               (x["query"], x["value"], x["key"]), kwargs, names)
    assert n == len(names) and ("rel_v" in grads) == with_v


def test_relative_backward_flat_kernels_keep_their_shape():
    rng, x, w = make_case(seed=25, B=1, Tq=3, Tv=3, Dq=2, Dk=2, Dv=2, NH=2, HS=2, HSv=2, Dout=2)
    flat = {k: v for k, v in w.items()}
    flat["query_kernel"] = w["query_kernel"].reshape(2, 4)
    flat["query_bias"] = w["query_bias"].reshape(4)
    flat["output_kernel"] = w["output_kernel"].reshape(4, 2)
    kwargs = dict(flat, num_heads=2, rel_k=rng.normal(size=(3, 2)), max_relative_position=1)
    grads, _ = check_gradients(M.relative_attention_forward, M.relative_attention_backward,
                               (x["query"], x["value"], x["key"]), kwargs,
                               ["query_kernel", "query_bias", "output_kernel", "rel_k"])
    assert grads["query_kernel"].shape == (2, 4) and grads["output_kernel"].shape == (4, 2)


def _autograd_mha(x, w, masks, fully_masked="uniform"):
    """Loss(query, value, key, kernels, biases) = sum(out G) + sum(scores GW), written with
    autograd.numpy from the twin's formulas (reference_mha), and its gradient function."""
    import autograd
    import autograd.numpy as anp
    B, Tq = x["query"].shape[:2]
    Tv = x["value"].shape[1]
    NH, HS = w["query_kernel"].shape[1:]
    mask = R.combined_mask(B, NH, Tq, Tv, **masks)
    live = mask.any(axis=-1, keepdims=True)
    names = ["query", "value", "key"] + [n for n in w if w[n] is not None]

    def forward(*args):
        a = dict(zip(names, args))
        q = anp.einsum("abc,cde->abde", a["query"], a["query_kernel"]) + a["query_bias"]
        k = anp.einsum("abc,cde->abde", a["key"], a["key_kernel"]) + a["key_bias"]
        v = anp.einsum("abc,cde->abde", a["value"], a["value_kernel"]) + a["value_bias"]
        s = anp.einsum("aecd,abcd->acbe", k, q / np.sqrt(HS))
        masked = anp.where(mask, s, -np.inf)
        mx = anp.where(live, anp.max(masked, axis=-1, keepdims=True), 0.0)
        e = anp.where(mask, anp.exp(masked - mx), 0.0)
        wts = e / anp.where(live, anp.sum(e, axis=-1, keepdims=True), 1.0)
        wts = anp.where(live, wts, 1.0 / Tv if fully_masked == "uniform" else 0.0)
        ctx = anp.einsum("acbe,aecd->abcd", wts, v)
        out = anp.einsum("abcd,cde->abe", ctx, a["output_kernel"]) + a["output_bias"]
        return out, wts

    args = [x[n] if n in x else w[n] for n in names]
    return names, args, forward, autograd


@pytest.mark.parametrize("HS,HSv,kind", [(8, 5, "none"), (40, 36, "all"), (33, 8, "attention4"),
                                         (3, 40, "causal")])
@pytest.mark.parametrize("threads", [1, 2])
def test_mha_backward_matches_autograd_at_tile_sizes(HS, HSv, kind, threads):
    """The backward against autograd through the twin's formulas (float64), at sizes where the
    kernel's per-block products take every form: head sizes below and above the dot tiles'
    limit (32 float64), Tv = 131 (whole packed panels plus a partial one on every path), a
    returned-scores gradient, and a (b, h) block team on 2 threads (B NH Tq Tv > 262144)."""
    import attnlstm
    B, NH, Tq, Tv = (4, 4, 70, 131) if threads == 2 else (2, 2, 37, 131)
    if threads == 2:
        Tv = 260
    rng, x, w = make_case(seed=40 + HS, B=B, Tq=Tq, Tv=Tv, Dq=6, Dk=5, Dv=7, NH=NH, HS=HS,
                          HSv=HSv, Dout=4)
    masks = make_masks(rng, kind, B, NH, Tq, Tv)
    causal = masks.pop("use_causal_mask", False)
    names, args, forward, autograd = _autograd_mha(x, w, dict(masks, use_causal_mask=causal))
    G = rng.normal(size=(B, Tq, 4))
    GW = rng.normal(size=(B, NH, Tq, Tv))

    def loss(*a):
        out, wts = forward(*a)
        return (out * G).sum() + (wts * GW).sum()

    want = autograd.grad(loss, list(range(len(args))))(*args)
    old = attnlstm.get_num_threads()
    attnlstm.set_num_threads(threads)
    try:
        saved = M.multi_head_attention_forward(x["query"], x["value"], x["key"], **w, **masks,
                                               use_causal_mask=causal)
        got = M.multi_head_attention_backward(saved, G, GW)
    finally:
        attnlstm.set_num_threads(old)
    # The key bias only shifts whole score rows (its exact gradient is 0): every gradient is
    # compared at a tolerance scaled to its own largest element or, at least, the largest one's.
    big = max(np.abs(ref).max() for ref in want)
    for n, ref in zip(names, want):
        scale = max(np.abs(ref).max(), 1e-3 * big)
        np.testing.assert_allclose(got[n], ref, rtol=0, atol=1e-11 * scale, err_msg=n)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("HS", [8, 64])
def test_mha_backward_same_bits_on_one_and_two_threads(dtype, HS):
    """The outputs and the input gradients are the same bits whether the (b, h) blocks run on
    one thread or split among a team of two (each block's products on one thread, no BLAS
    inside the team), plain and relative."""
    import attnlstm
    rng, x, w = make_case(seed=50, B=4, Tq=70, Tv=260, Dq=6, Dk=5, Dv=7, NH=4, HS=HS, HSv=HS,
                          Dout=4, dtype=dtype)
    masks = make_masks(rng, "all", 4, 4, 70, 260)
    G = rng.normal(size=(4, 70, 4)).astype(dtype)
    rel = dict(num_heads=4, rel_k=rng.normal(size=(5, HS)).astype(dtype),
               rel_v=rng.normal(size=(5, HS)).astype(dtype), max_relative_position=2)
    res = []
    old = attnlstm.get_num_threads()
    try:
        for threads in (1, 2):
            attnlstm.set_num_threads(threads)
            s = M.multi_head_attention_forward(x["query"], x["value"], x["key"], **w, **masks)
            g = M.multi_head_attention_backward(s, G)
            sr = M.relative_attention_forward(x["query"], x["value"], x["key"], **w, **rel,
                                              **masks)
            gr = M.relative_attention_backward(sr, G)
            res.append((s, g, sr, gr))
    finally:
        attnlstm.set_num_threads(old)
    (s1, g1, sr1, gr1), (s2, g2, sr2, gr2) = res
    np.testing.assert_array_equal(s1["outputs"], s2["outputs"])
    np.testing.assert_array_equal(sr1["outputs"], sr2["outputs"])
    for a, b in ((g1, g2), (gr1, gr2)):
        assert set(a) == set(b)
        for k in a:
            if a[k] is None:
                continue
            if k in ("query", "key", "value"):
                np.testing.assert_array_equal(a[k], b[k], err_msg=k)
            else:
                # weight gradients: sums over B*T rows by OpenBLAS, whose bits depend on its
                # own thread count
                tol = 1e-5 if dtype == np.float32 else 1e-12
                np.testing.assert_allclose(a[k], b[k], rtol=tol, atol=tol * np.abs(b[k]).max(),
                                           err_msg=k)


def test_backward_float32_close_to_float64():
    rng, x, w = make_case(seed=26)
    r64 = M.multi_head_attention_forward(x["query"], x["value"], x["key"], **w)
    x32 = {k: v.astype(np.float32) for k, v in x.items()}
    w32 = {k: v.astype(np.float32) for k, v in w.items()}
    r32 = M.multi_head_attention_forward(x32["query"], x32["value"], x32["key"], **w32)
    G = rng.normal(size=r64["outputs"].shape)
    g64 = M.multi_head_attention_backward(r64, G)
    g32 = M.multi_head_attention_backward(r32, G.astype(np.float32))
    # The key bias only shifts whole score rows, so its exact gradient is 0: compare every
    # gradient at a tolerance scaled to the largest one.
    big = max(np.abs(g).max() for g in g64.values())
    for k in g64:
        assert g32[k].dtype == np.float32
        np.testing.assert_allclose(g32[k], g64[k], rtol=1e-3, atol=1e-5 * big, err_msg=k)


# ---- shape errors -------------------------------------------------------------------------

def _call(**over):
    rng, x, w = make_case(seed=30)
    args = dict(query=x["query"], value=x["value"], key=x["key"], **w)
    args.update(over)
    q, v, k = args.pop("query"), args.pop("value"), args.pop("key")
    return M.multi_head_attention(q, v, k, **args)


def test_error_key_and_value_lengths_differ():
    with pytest.raises(ShapeError, match=r"ops\.multi_head_attention: `key` must have shape "
                       r"\(2, 5, features\), got \(2, 4, 6\)\.\nHint: all dimensions of `value` "
                       r"and `key`, except the last one, must be equal"):
        _call(key=np.zeros((2, 4, 6)))


def test_error_query_rank():
    with pytest.raises(ShapeError, match=r"`query` must have shape \(batch, Tq, features\), "
                       r"got \(4, 3\)\.\nHint: attention reads sequences"):
        _call(query=np.zeros((4, 3)))


def test_error_value_batch():
    with pytest.raises(ShapeError, match=r"`value` must have shape \(2, Tv, features\), got "
                       r"\(3, 5, 7\)\.\nHint: `query` and `value` must have the same batch"):
        _call(value=np.zeros((3, 5, 7)))


def test_error_kernels_disagree_with_heads():
    with pytest.raises(ShapeError, match=r"`key_kernel` must have shape \(6, 2, 3\), got "
                       r"\(6, 3, 3\)\.\nHint: `query_kernel` has 2 heads of key_dim 3"):
        _call(key_kernel=np.zeros((6, 3, 3)))
    with pytest.raises(ShapeError, match=r"`query_kernel` must have shape \(3, num_heads, "
                       r"key_dim\), got \(4, 2, 3\)"):
        _call(query_kernel=np.zeros((4, 2, 3)))
    with pytest.raises(ShapeError, match=r"`value_kernel` must have shape \(7, 2, value_dim\)"):
        _call(value_kernel=np.zeros((7, 3, 4)))
    with pytest.raises(ShapeError, match=r"`output_kernel` must have shape \(2, 4, output_dim\), "
                       r"got \(2, 3, 5\)"):
        _call(output_kernel=np.zeros((2, 3, 5)))
    with pytest.raises(ShapeError, match=r"`value_bias` must have shape \(2, 4\), got \(2, 3\)"):
        _call(value_bias=np.zeros((2, 3)))


def test_error_relative_num_heads_and_embeddings():
    rng, x, w = make_case(seed=31)
    base = dict(w, rel_k=np.zeros((5, 3)), max_relative_position=2)
    with pytest.raises(ShapeError, match=r"ops\.relative_attention: `query_kernel` must have "
                       r"shape \(3, 4, key_dim\), got \(3, 2, 3\)\.\nHint: num_heads=4 but the "
                       r"kernel has 2 heads"):
        M.relative_attention(x["query"], x["value"], num_heads=4, **base)
    with pytest.raises(ShapeError, match=r"`rel_k` must have shape \(5, 3\), got \(3, 3\)\."
                       r"\nHint: one row per relative position -2\.\.2"):
        M.relative_attention(x["query"], x["value"], x["key"], num_heads=2,
                             **dict(base, rel_k=np.zeros((3, 3))))
    with pytest.raises(ShapeError, match=r"`query_kernel` must have shape \(3, 4, key_dim\), got "
                       r"\(3, 6\)\.\nHint: .*Keras layout \(3, 4, key_dim\) or flat "
                       r"\(3, 4\*key_dim\)"):
        M.relative_attention(x["query"], x["value"], num_heads=4,
                             **dict(base, query_kernel=np.zeros((3, 6))))
    with pytest.raises(ValueError, match=r"`max_relative_position` must be a non-negative"):
        M.relative_attention(x["query"], x["value"], x["key"], num_heads=2,
                             **dict(base, max_relative_position=-1))


@pytest.mark.parametrize("arg,value,pattern", [
    ("attention_mask", np.ones((2, 4, 4), bool),
     r"`attention_mask` must have shape \(batch, Tq, Tv\) = \(2, 4, 5\) or \(batch, num_heads, "
     r"Tq, Tv\) = \(2, 2, 4, 5\), got \(2, 4, 4\)\."),
    ("attention_mask", np.ones((2, 4), bool), r"`attention_mask` must have shape .* got \(2, 4\)"),
    ("attention_mask", np.ones((2, 3, 4, 5), bool), r"`attention_mask` must have shape .* got \(2, 3, 4, 5\)"),
    ("query_mask", np.ones((2, 5), bool),
     r"`query_mask` must have shape \(batch, Tq\) = \(2, 4\), got \(2, 5\)\."),
    ("value_mask", np.ones((2, 4), bool),
     r"`value_mask` must have shape \(batch, Tv\) = \(2, 5\), got \(2, 4\)\."),
    ("key_mask", np.ones((2, 5, 1), bool),
     r"`key_mask` must have shape \(batch, Tv\) = \(2, 5\), got \(2, 5, 1\)\."),
])
def test_error_masks(arg, value, pattern):
    with pytest.raises(ShapeError, match=r"ops\.multi_head_attention: " + pattern):
        _call(**{arg: value})


def test_error_fully_masked_and_backward_shapes():
    with pytest.raises(ValueError, match=r"`fully_masked` must be 'uniform' or 'zero'"):
        _call(fully_masked="mean")
    rng, x, w = make_case(seed=32)
    r = M.multi_head_attention_forward(x["query"], x["value"], x["key"], **w)
    with pytest.raises(ShapeError, match=r"`d_outputs` must have shape \(2, 4, 5\), got \(2, 4\)"):
        M.multi_head_attention_backward(r, np.zeros((2, 4)))
    with pytest.raises(ShapeError, match=r"`d_attention_scores` must have shape \(2, 2, 4, 5\)"):
        M.multi_head_attention_backward(r, np.zeros((2, 4, 5)), np.zeros((2, 4, 5)))


# ---- the binding never crashes -------------------------------------------------------------

def _core_args(dtype=np.float64, B=2, Tq=3, Tv=4, Dq=3, Dk=2, Dv=3, NH=2, HS=2, HSv=3, Dout=2):
    z = lambda *s: np.ones(s, dtype)  # noqa: E731
    return [z(B, Tq, Dq), z(B, Tv, Dk), z(B, Tv, Dv), z(Dq, NH, HS), z(NH, HS), z(Dk, NH, HS),
            z(NH, HS), z(Dv, NH, HSv), z(NH, HSv), z(NH, HSv, Dout), z(Dout)]


def test_binding_rejects_bad_dtypes_and_shapes():
    a = _core_args()
    with pytest.raises(TypeError, match="mha_forward: `query` must have dtype float32 or float64"):
        _core.mha_forward(a[0].astype(np.int64), *a[1:])
    with pytest.raises(TypeError, match="`value_kernel` must have dtype float64 like the inputs"):
        _core.mha_forward(*a[:7], a[7].astype(np.float32), *a[8:])
    with pytest.raises(ValueError, match=r"`key` must have shape \(B, Tv, Dk\) = \(2, 4, \?\)"):
        _core.mha_forward(a[0], a[1][:, :3], *a[2:])
    with pytest.raises(ValueError, match=r"`query_kernel` must have shape \(Dq, NH, HS\) with "
                                         r"HS >= 1, got \(3, 2, 0\)"):
        _core.mha_forward(*a[:3], np.ones((3, 2, 0)), *a[4:])
    with pytest.raises(ValueError, match="`fully_masked` must be 0"):
        _core.mha_forward(*a, fully_masked=5)
    with pytest.raises(ValueError, match="`max_relative_position` must be in"):
        _core.mha_forward(*a, rel_k=np.ones((3, 2)), max_relative_position=-1)
    with pytest.raises(ValueError, match=r"`rel_k` must have shape \(2K\+1, HS\) = \(3, 2\)"):
        _core.mha_forward(*a, rel_k=np.ones((5, 2)), max_relative_position=1)
    out = _core.mha_forward(*a)
    with pytest.raises(ValueError, match=r"mha_backward: `live` must have shape"):
        _core.mha_backward(np.ones((2, 3, 2)), None, out[1], out[2], out[3], out[4], out[5],
                           out[6][:, :1], *a[:3], a[3], a[5], a[7], a[9])


def test_binding_nan_propagates_and_empty_axes():
    a = _core_args()
    a[0][0, 0, 0] = np.nan
    out, w = _core.mha_forward(*a)[:2]
    assert np.isnan(out[0, 0]).all() and np.isfinite(out[1]).all()
    for dims in (dict(B=0), dict(Tq=0), dict(Tv=0), dict(Dq=0), dict(HSv=0), dict(Dout=0)):
        a = _core_args(**dims)
        r = _core.mha_forward(*a, rel_k=np.ones((3, 2)), rel_v=np.ones((3, a[7].shape[2])),
                              max_relative_position=1)
        out, w, q, k, v, ctx, live = r
        assert np.all(np.isfinite(out))
        if dims.get("Tv") == 0:    # no keys: context 0, out = output bias
            np.testing.assert_array_equal(out, np.ones_like(out))
        g = _core.mha_backward(np.ones_like(out), None, w, q, k, v, ctx, live, *a[:3], a[3],
                               a[5], a[7], a[9], rel_k=np.ones((3, 2)),
                               rel_v=np.ones((3, a[7].shape[2])), max_relative_position=1)
        assert all(np.all(np.isfinite(x)) for x in g)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(dims=st.lists(st.integers(0, 3), min_size=10, max_size=10),
       K=st.integers(-1, 3), dtype=st.sampled_from([np.float32, np.float64, np.int32]),
       wrong=st.integers(0, 14), mask_ndim=st.integers(1, 4), fm=st.integers(-1, 2),
       heads_ok=st.booleans())
def test_binding_fuzz_never_crashes(dims, K, dtype, wrong, mask_ndim, fm, heads_ok):
    B, Tq, Tv, Dq, Dk, Dv, NH, HS, HSv, Dout = dims
    if heads_ok:
        NH, HS = max(NH, 1), max(HS, 1)
    a = _core_args(np.float64 if dtype == np.int32 else dtype, B, Tq, Tv, Dq, Dk, Dv, NH, HS,
                   HSv, Dout)
    if dtype == np.int32:
        a[wrong % len(a)] = a[wrong % len(a)].astype(np.int32)
    elif wrong < len(a):     # perturb one shape
        a[wrong] = np.ones(a[wrong].shape[:-1] + (a[wrong].shape[-1] + 1,), dtype) \
            if a[wrong].ndim else a[wrong]
    kw = dict(attention_mask=np.ones((B, Tq, Tv)[:mask_ndim] if mask_ndim < 4
                                     else (B, NH, Tq, Tv)),
              fully_masked=fm, rel_k=np.ones((2 * max(K, 0) + 1, HS), a[0].dtype),
              max_relative_position=K)
    try:
        r = _core.mha_forward(*a, **kw)
    except (TypeError, ValueError, MemoryError):
        return
    out, w, q, k, v, ctx, live = r
    assert out.shape == (B, Tq, Dout) and w.shape == (B, NH, Tq, Tv)
    assert np.all(np.isfinite(out))
    g = _core.mha_backward(np.ones_like(out), np.ones_like(w), w, q, k, v, ctx, live, *a[:3],
                           a[3], a[5], a[7], a[9], rel_k=kw["rel_k"], max_relative_position=K)
    assert all(x is None or np.all(np.isfinite(x)) for x in g)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(B=st.integers(1, 2), Tq=st.integers(1, 4), Tv=st.integers(1, 4), NH=st.integers(1, 3),
       K=st.integers(0, 3), seed=st.integers(0, 10_000), causal=st.booleans(),
       zero=st.booleans())
def test_relative_twin_random_shapes(B, Tq, Tv, NH, K, seed, causal, zero):
    rng, x, w = make_case(seed=seed, B=B, Tq=Tq, Tv=Tv, Dq=2, Dk=3, Dv=2, NH=NH, HS=2, HSv=3,
                          Dout=2)
    am = rng.random((B, Tq, Tv)) > 0.4
    fm = "zero" if zero else "uniform"
    kw = dict(w, rel_k=rng.normal(size=(2 * K + 1, 2)), rel_v=rng.normal(size=(2 * K + 1, 3)),
              max_relative_position=K, attention_mask=am, use_causal_mask=causal,
              fully_masked=fm)
    out, s = M.relative_attention(x["query"], x["value"], x["key"], num_heads=NH, **kw,
                                  return_attention_scores=True)
    out_r, s_r = R.multi_head_attention(x["query"], x["value"], x["key"], **kw)
    np.testing.assert_allclose(out, out_r, rtol=0, atol=TWIN_TOL)
    np.testing.assert_allclose(s, s_r, rtol=0, atol=TWIN_TOL)


# ---- parity with keras.layers.MultiHeadAttention (Keras 3.15.1, TensorFlow backend) ----------

@pytest.fixture(scope="module")
def keras():
    import os
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras as k
    assert k.__version__ == "3.15.1", k.__version__
    return k


def _keras_mha(keras, x, w, num_heads, key_dim, value_dim=None, output_shape=None,
               use_bias=True):
    layer = keras.layers.MultiHeadAttention(num_heads=num_heads, key_dim=key_dim,
                                            value_dim=value_dim, output_shape=output_shape,
                                            use_bias=use_bias, dtype="float32")
    layer(x["query"], x["value"], x["key"])   # build
    order = ["query_kernel", "query_bias", "key_kernel", "key_bias", "value_kernel",
             "value_bias", "output_kernel", "output_bias"]
    layer.set_weights([w[nm] for nm in order if w[nm] is not None])
    return layer


PARITY = [
    # (name, case kwargs, keras kwargs, call kwargs builder)
    ("plain", {}, {}),
    ("no_bias_value_dim_output_shape", dict(use_bias=False, HSv=5, Dout=9),
     dict(use_bias=False, value_dim=5, output_shape=9)),
    ("value_dim_bias", dict(HSv=2, Dout=4), dict(value_dim=2, output_shape=4)),
]


@pytest.mark.parametrize("case,case_kw,layer_kw", PARITY)
@pytest.mark.parametrize("masks", ["none", "attention", "value_key", "causal", "causal_value",
                                   "query"])
@pytest.mark.parametrize("scores", [False, True])
def test_keras_parity(keras, case, case_kw, layer_kw, masks, scores):
    import tensorflow as tf
    from keras.src import backend as kb
    kw = dict(B=2, Tq=5, Tv=6, Dq=4, Dk=3, Dv=5, NH=2, HS=3, HSv=4, Dout=4)
    kw.update(case_kw)
    if "output_shape" not in layer_kw:      # Keras' default: the query's feature size
        kw["Dout"] = kw["Dq"]
    if "value_dim" not in layer_kw:         # Keras' default: key_dim
        kw["HSv"] = kw["HS"]
    rng, x, w = make_case(seed=40, dtype=np.float32, **kw)
    layer = _keras_mha(keras, x, w, kw["NH"], kw["HS"], **layer_kw)
    ours, theirs = {}, {}
    am = rng.random((2, kw["Tq"], kw["Tv"])) > 0.3
    am[0, 2] = False                                         # a fully masked row
    vm = rng.random((2, kw["Tv"])) > 0.3
    km = rng.random((2, kw["Tv"])) > 0.2
    qm = rng.random((2, kw["Tq"])) > 0.3
    if masks == "attention":
        ours["attention_mask"] = theirs["attention_mask"] = am
    elif masks == "value_key":
        ours.update(value_mask=vm, key_mask=km)
        theirs.update(value_mask=vm, key_mask=km)
    elif masks == "causal":
        ours["use_causal_mask"] = theirs["use_causal_mask"] = True
    elif masks == "causal_value":
        ours.update(use_causal_mask=True, value_mask=vm)
        theirs.update(use_causal_mask=True, value_mask=vm)
    query = tf.constant(x["query"])
    if masks == "query":
        ours["query_mask"] = qm
        kb.set_keras_mask(query, tf.constant(qm))
    res = layer(query, tf.constant(x["value"]), tf.constant(x["key"]),
                return_attention_scores=scores, **theirs)
    fm = "zero" if scores else "uniform"     # Keras' explicit vs fast path (§8.5)
    got = M.multi_head_attention(x["query"], x["value"], x["key"], **w, **ours,
                                 fully_masked=fm, return_attention_scores=scores)
    if scores:
        np.testing.assert_allclose(got[0], np.asarray(res[0]), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(got[1], np.asarray(res[1]), rtol=1e-4, atol=1e-5)
    else:
        np.testing.assert_allclose(got, np.asarray(res), rtol=1e-4, atol=1e-5)


def test_keras_parity_gradients(keras):
    import tensorflow as tf
    rng, x, w = make_case(seed=41, dtype=np.float32, B=2, Tq=4, Tv=5, Dq=3, Dk=3, Dv=3, NH=2,
                          HS=3, HSv=2, Dout=3)
    layer = _keras_mha(keras, x, w, 2, 3, value_dim=2)
    am = rng.random((2, 4, 5)) > 0.3
    G = rng.normal(size=(2, 4, 3)).astype(np.float32)
    q, v, k = (tf.Variable(x[n]) for n in ("query", "value", "key"))
    with tf.GradientTape() as tape:
        out = layer(q, v, k, attention_mask=am)
        loss = tf.reduce_sum(out * G)
    names = ["query_kernel", "query_bias", "key_kernel", "key_bias", "value_kernel",
             "value_bias", "output_kernel", "output_bias"]
    tg = tape.gradient(loss, [q, v, k] + [wt.value for wt in layer.weights])
    r = M.multi_head_attention_forward(x["query"], x["value"], x["key"], **w, attention_mask=am)
    g = M.multi_head_attention_backward(r, G)
    for nm, t in zip(["query", "value", "key"] + names, tg):
        np.testing.assert_allclose(g[nm], np.asarray(t), rtol=1e-4, atol=1e-5, err_msg=nm)
