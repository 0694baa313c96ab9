"""Tests of the attention layers (attnlstm/layers/attention.py).

1. Keras 3.15.1 parity with copied weights (float32): Attention, AdditiveAttention,
   MultiHeadAttention, with every mask kind, eager and inside functional Models.
2. NumPy float64 twins (tests/reference_attention_layers.py) of the hand-written layers:
   BahdanauAttention, LuongAttention, AttentionPooling, RelativeMultiHeadAttention.
3. Shape errors matched by message.
4. The softmax-over-a-size-1-axis warning of Dense/Softmax.
"""
import os
import warnings

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import keras  # noqa: E402

import attnlstm  # noqa: E402
from attnlstm import Input, Model, ShapeError, layers  # noqa: E402

import reference_attention_layers as R  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5
TWIN_TOL = 1e-10

assert keras.backend.backend() == "tensorflow"
assert keras.__version__ == "3.15.1"


def rnd(rng, *shape, dtype=np.float32):
    return rng.normal(size=shape).astype(dtype)


def close(ours, theirs, rtol=RTOL, atol=ATOL):
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    assert np.all(np.isfinite(ours))
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol)


def kval(x):
    if isinstance(x, (list, tuple)):
        return [kval(t) for t in x]
    return keras.ops.convert_to_numpy(x)


# ---------------------------------------------------------------------------------------------
# Data: B=3, Tq=4, Tv=5; masks with a partly masked sample and a fully masked value row.

B, TQ, TV, D, DV = 3, 4, 5, 6, 7


def data(seed=0, key=False, same_len=False):
    rng = np.random.default_rng(seed)
    tq = TV if same_len else TQ
    q, v = rnd(rng, B, tq, D), rnd(rng, B, TV, DV)
    k = rnd(rng, B, TV, D) if key else None
    return rng, q, v, k


def masks(tq=TQ, full_row=False):
    qm = np.ones((B, tq), bool)
    qm[1, -1] = False
    qm[2, 0] = False
    vm = np.ones((B, TV), bool)
    vm[0, -2:] = False
    vm[2, 1] = False
    if full_row:
        vm[1, :] = False
    return qm, vm


def kinputs(q, v, k):
    return [q, v] if k is None else [q, v, k]


# ---------------------------------------------------------------------------------------------
# 1a. Attention / AdditiveAttention, eager, every mask kind


LIST_CASES = [
    ("Attention", dict(use_scale=False, score_mode="dot")),
    ("Attention", dict(use_scale=True, score_mode="dot")),
    ("Attention", dict(use_scale=False, score_mode="concat")),
    ("Attention", dict(use_scale=True, score_mode="concat")),
    ("AdditiveAttention", dict(use_scale=True)),
    ("AdditiveAttention", dict(use_scale=False)),
]
MASK_KINDS = ["none", "masks", "query_mask_only", "value_mask_only", "causal", "causal+masks",
              "full_row"]


def list_pair(cls, kw, q, v, k, seed):
    """A Keras layer and ours with the same (non-default) weights, both built."""
    theirs = getattr(keras.layers, cls)(**kw)
    theirs(kinputs(q, v, k))
    ws = theirs.get_weights()
    rng = np.random.default_rng(seed + 100)
    ws = [(0.5 + rng.random(np.shape(w))).astype(np.float32) for w in ws]
    if ws:
        theirs.set_weights(ws)
    ours = getattr(layers, cls)(**kw)
    ours(kinputs(q, v, k))
    ours.set_weights(theirs.get_weights())
    return theirs, ours


def mask_args(kind, tq):
    qm, vm = masks(tq, full_row=(kind == "full_row"))
    kwargs = {}
    if kind in ("masks", "causal+masks", "full_row"):
        kwargs["mask"] = [qm, vm]
    elif kind == "query_mask_only":
        kwargs["mask"] = [qm, None]
    elif kind == "value_mask_only":
        kwargs["mask"] = [None, vm]
    if kind.startswith("causal"):
        kwargs["use_causal_mask"] = True
    return kwargs


@pytest.mark.parametrize("with_key", [False, True], ids=["qv", "qvk"])
@pytest.mark.parametrize("kind", MASK_KINDS)
@pytest.mark.parametrize("cls,kw", LIST_CASES, ids=[f"{c}-{k}" for c, k in LIST_CASES])
def test_list_attention_keras_parity(cls, kw, kind, with_key):
    same_len = kind.startswith("causal")
    _, q, v, k = data(1, key=with_key, same_len=same_len)
    if not with_key and cls in ("Attention", "AdditiveAttention"):
        v = v[..., :D]  # key = value: value needs the query's feature size
    tq = q.shape[1]
    theirs, ours = list_pair(cls, kw, q, v, k, seed=3)
    kwargs = mask_args(kind, tq)
    for ret in (False, True):
        got = ours(kinputs(q, v, k), return_attention_scores=ret, **kwargs)
        want = kval(theirs(kinputs(q, v, k), return_attention_scores=ret, **kwargs))
        if ret:
            assert isinstance(got, list) and len(got) == 2
            close(got[0], want[0])
            close(got[1], want[1])
            assert got[1].shape == (B, tq, TV)
        else:
            close(got, want)
    if kind == "full_row":
        # the fully masked row is finite and not zero (Keras: near-uniform over the values)
        out = ours(kinputs(q, v, k), **kwargs)
        assert np.all(np.isfinite(out[1])) and np.abs(out[1]).sum() > 0


def test_attention_causal_nonsquare_keras_parity():
    _, q, v, _ = data(2)
    v = v[..., :D]
    theirs, ours = list_pair("Attention", dict(use_scale=True), q, v, None, seed=5)
    qm, vm = masks()
    got = ours([q, v], mask=[qm, vm], use_causal_mask=True, return_attention_scores=True)
    want = kval(theirs([q, v], mask=[qm, vm], use_causal_mask=True, return_attention_scores=True))
    close(got[0], want[0])
    close(got[1], want[1])


def test_attention_output_keras_mask_is_query_mask():
    _, q, v, _ = data(3)
    v = v[..., :D]
    qm, vm = masks()
    att = layers.Attention()
    assert np.array_equal(att.compute_mask([q, v], [qm, vm]), qm)
    assert att.compute_mask([q, v], None) is None


# ---------------------------------------------------------------------------------------------
# 1b. MultiHeadAttention, eager


MHA_CASES = [
    dict(num_heads=2, key_dim=3),
    dict(num_heads=1, key_dim=4),
    dict(num_heads=3, key_dim=2, value_dim=5),
    dict(num_heads=2, key_dim=3, use_bias=False),
    dict(num_heads=2, key_dim=3, value_dim=4, output_shape=9),
]


def mha_pair(kw, q, v, k, seed):
    theirs = keras.layers.MultiHeadAttention(**kw)
    theirs(q, v, key=k)
    rng = np.random.default_rng(seed)
    theirs.set_weights([rnd(rng, *np.shape(w)) * 0.5 for w in theirs.get_weights()])
    ours = layers.MultiHeadAttention(**kw)
    ours(q, v, key=k)
    ours.set_weights(theirs.get_weights())
    return theirs, ours


def mha_mask_args(kind, tq):
    qm, vm = masks(tq, full_row=(kind == "full_row"))
    kw = {}
    if kind in ("masks", "causal+masks", "full_row", "value_mask_only"):
        kw["value_mask"] = vm
    if kind in ("masks", "causal+masks", "full_row", "query_mask_only"):
        kw["query_mask"] = qm
    if kind.startswith("causal"):
        kw["use_causal_mask"] = True
    return kw


@pytest.mark.parametrize("with_key", [False, True], ids=["qv", "qvk"])
@pytest.mark.parametrize("kind", MASK_KINDS)
@pytest.mark.parametrize("kw", MHA_CASES, ids=[str(i) for i in range(len(MHA_CASES))])
def test_mha_keras_parity(kw, kind, with_key):
    same_len = kind.startswith("causal")
    rng, q, v, k = data(4, key=with_key, same_len=same_len)
    tq = q.shape[1]
    theirs, ours = mha_pair(kw, q, v, k, seed=7)
    mk = mha_mask_args(kind, tq)
    # Keras takes query_mask from the query tensor's Keras mask only; pass it that way there.
    # (Keras deletes the query's mask when called, so attach it before each call.)
    kmk = dict(mk)
    qm = kmk.pop("query_mask", None)

    def kq():
        if qm is None:
            return q
        t = keras.ops.convert_to_tensor(q)
        t._keras_mask = keras.ops.convert_to_tensor(qm)
        return t

    for ret in (False, True):
        got = ours(q, v, key=k, return_attention_scores=ret, **mk)
        want = kval(theirs(kq(), v, key=k, return_attention_scores=ret, **kmk))
        dout = kw.get("output_shape", D)
        if ret:
            close(got[0], want[0])
            close(got[1], want[1])
            assert got[1].shape == (B, kw["num_heads"], tq, TV)
            assert got[0].shape == (B, tq, dout)
        else:
            close(got, want)
    if kind == "full_row":
        # fast path: the row is the mean of the projected values -> finite and nonzero
        out = ours(q, v, key=k, **mk)
        assert np.all(np.isfinite(out))


def test_mha_query_mask_does_not_zero_rows_and_is_output_mask():
    _, q, v, _ = data(5)
    qm, _ = masks()
    mha = layers.MultiHeadAttention(2, 3)
    out = mha(q, v, query_mask=qm)
    assert np.abs(out[1, -1]).sum() > 0
    assert np.array_equal(mha.compute_mask([q, v, None], [qm, None, None]), qm)


# ---------------------------------------------------------------------------------------------
# 1c. Functional models, Masking upstream, compared end to end with the same Keras model


def padded(seed, T, F, lengths):
    x = np.random.default_rng(seed).normal(size=(len(lengths), T, F)).astype(np.float32)
    for i, n in enumerate(lengths):
        x[i, n:] = 0.0
    return x


def build_pair(make):
    """make(lib) -> (inputs, outputs) with lib = keras or attnlstm; models with shared weights."""
    ki, ko = make(keras)
    kmodel = keras.Model(ki, ko)
    rng = np.random.default_rng(11)
    kmodel.set_weights([(0.5 + rng.random(np.shape(w))).astype(np.float32)
                        if np.ndim(w) <= 1 else rnd(rng, *np.shape(w)) * 0.5
                        for w in kmodel.get_weights()])
    oi, oo = make(attnlstm)
    model = Model(oi, oo)
    model.set_weights(kmodel.get_weights())
    return kmodel, model


def _input(lib, shape):
    return lib.Input(shape=shape)


def _layers(lib):
    return lib.layers


LENGTHS_Q = [4, 2, 3]
LENGTHS_V = [5, 3, 0]  # the last sample: every value masked


@pytest.mark.parametrize("ret", [False, True])
@pytest.mark.parametrize("use_key", [False, True])
@pytest.mark.parametrize("cls,kw", [("Attention", dict(use_scale=True)),
                                    ("Attention", dict(score_mode="concat", use_scale=True)),
                                    ("AdditiveAttention", dict(use_scale=True)),
                                    ("AdditiveAttention", dict(use_scale=False))])
def test_list_attention_masking_model_parity(cls, kw, use_key, ret):
    def make(lib):
        L = _layers(lib)
        qi, vi = _input(lib, (TQ, D)), _input(lib, (TV, D))
        qm, vm = L.Masking(0.0)(qi), L.Masking(0.0)(vi)
        ins = [qi, vi]
        args = [qm, vm]
        if use_key:
            ki = _input(lib, (TV, D))
            ins.append(ki)
            args.append(L.Masking(0.0)(ki))
        out = getattr(L, cls)(**kw)(args, return_attention_scores=ret)
        if ret:
            return ins, [out[0], out[1]]
        return ins, L.Dense(3)(out)

    kmodel, model = build_pair(make)
    x = [padded(20, TQ, D, LENGTHS_Q), padded(21, TV, D, LENGTHS_V)]
    if use_key:
        x.append(padded(22, TV, D, LENGTHS_V))
    want = kval(kmodel.predict(x, verbose=0))
    got = model.predict(x)
    if ret:
        close(got[0], want[0])
        close(got[1], want[1])
    else:
        close(got, want)


@pytest.mark.parametrize("ret", [False, True])
@pytest.mark.parametrize("kw", [dict(num_heads=2, key_dim=3),
                                dict(num_heads=2, key_dim=3, value_dim=4, use_bias=False,
                                     output_shape=5)])
def test_mha_masking_model_parity(kw, ret):
    def make(lib):
        L = _layers(lib)
        qi, vi, ki = _input(lib, (TQ, D)), _input(lib, (TV, DV)), _input(lib, (TV, D))
        qm, vm, km = L.Masking(0.0)(qi), L.Masking(0.0)(vi), L.Masking(0.0)(ki)
        out = L.MultiHeadAttention(**kw)(qm, vm, key=km, return_attention_scores=ret)
        if ret:
            return [qi, vi, ki], [out[0], out[1]]
        return [qi, vi, ki], L.Dense(3)(out)

    kmodel, model = build_pair(make)
    x = [padded(30, TQ, D, LENGTHS_Q), padded(31, TV, DV, LENGTHS_V),
         padded(32, TV, D, LENGTHS_V)]
    want = kval(kmodel.predict(x, verbose=0))
    got = model.predict(x)
    if ret:
        close(got[0], want[0])
        close(got[1], want[1])
    else:
        close(got, want)


@pytest.mark.parametrize("which", ["Attention", "AdditiveAttention", "MultiHeadAttention"])
def test_causal_self_attention_model_parity(which):
    def make(lib):
        L = _layers(lib)
        xi = _input(lib, (TV, D))
        xm = L.Masking(0.0)(xi)
        h = L.Dense(D, activation="tanh")(xm)
        if which == "MultiHeadAttention":
            a = L.MultiHeadAttention(2, 3)(h, h, use_causal_mask=True)
        else:
            a = getattr(L, which)()([h, h], use_causal_mask=True)
        return xi, L.Dense(2)(a)

    kmodel, model = build_pair(make)
    x = padded(40, TV, D, [5, 3, 1])
    close(model.predict(x), kval(kmodel.predict(x, verbose=0)))


# ---------------------------------------------------------------------------------------------
# 2. NumPy float64 twins of the hand-written layers


def f64(rng, *shape):
    return rng.normal(size=shape)


def randomize(layer, rng):
    layer.set_weights([rng.normal(size=w.shape) * 0.7 for w in layer.get_weights()])
    return layer.get_weights()


def twin_close(got, want):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=0, atol=TWIN_TOL)


def value_mask64():
    vm = np.ones((B, TV), bool)
    vm[0, -2:] = False
    vm[2, 0] = False
    return vm


@pytest.mark.parametrize("query_rank", [2, 3])
@pytest.mark.parametrize("masked", [False, True])
def test_bahdanau_twin(query_rank, masked):
    rng = np.random.default_rng(50)
    H, U = 4, 5
    q = f64(rng, B, H) if query_rank == 2 else f64(rng, B, TQ, H)
    v = f64(rng, B, TV, DV)
    vm = value_mask64() if masked else None
    layer = layers.BahdanauAttention(U, dtype="float64")
    layer(q, v)
    w = randomize(layer, rng)
    ctx, att = layer(q, v, mask=vm) if masked else layer(q, v)
    ctx_r, att_r = R.bahdanau(q, v, *w, value_mask=vm)
    twin_close(ctx, ctx_r)
    twin_close(att, att_r)
    if masked:
        assert np.all(att[0, ..., -2:] == 0)


@pytest.mark.parametrize("query_rank", [2, 3])
@pytest.mark.parametrize("score", ["dot", "general", "concat"])
def test_luong_twin(score, query_rank):
    rng = np.random.default_rng(51)
    H = D if score == "dot" else 4
    q = f64(rng, B, H) if query_rank == 2 else f64(rng, B, TQ, H)
    v = f64(rng, B, TV, D)
    vm = value_mask64()
    layer = layers.LuongAttention(score, units=3 if score == "concat" else None, dtype="float64")
    layer(q, v)
    w = randomize(layer, rng)
    for m in (None, vm):
        ctx, att = layer(q, v, mask=m)
        ctx_r, att_r = R.luong(q, v, score, w, value_mask=m)
        twin_close(ctx, ctx_r)
        twin_close(att, att_r)


@pytest.mark.parametrize("units", [None, 3])
def test_attention_pooling_twin(units):
    rng = np.random.default_rng(52)
    h = f64(rng, B, TV, DV)
    vm = value_mask64()
    layer = layers.AttentionPooling(units=units, return_attention_scores=True, dtype="float64")
    layer(h)
    w = randomize(layer, rng)
    for m in (None, vm):
        out, att = layer(h, mask=m)
        out_r, att_r = R.attention_pooling(h, *w, mask=m)
        twin_close(out, out_r)
        twin_close(att, att_r)
        assert out.shape == (B, DV) and att.shape == (B, TV)
    plain = layers.AttentionPooling(units=units, dtype="float64")
    plain(h)
    plain.set_weights(w)
    twin_close(plain(h, mask=vm), R.attention_pooling(h, *w, mask=vm)[0])


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("use_value_embeddings", [True, False])
@pytest.mark.parametrize("num_heads", [1, 2])
def test_relative_mha_twin(num_heads, use_value_embeddings, causal):
    rng = np.random.default_rng(53)
    T, k = 6, 2
    x = f64(rng, B, T, D)
    layer = layers.RelativeMultiHeadAttention(num_heads, 3, max_relative_position=k,
                                              value_dim=4,
                                              use_value_embeddings=use_value_embeddings,
                                              dtype="float64")
    layer(x)
    w = randomize(layer, rng)
    names = [p.name for p in layer.weights]
    assert names[-2 if use_value_embeddings else -1] == "rel_k"
    out, scores = layer(x, use_causal_mask=causal, return_attention_scores=True)
    out_r, scores_r = R.relative_mha(x, w, num_heads, 3, 4, k, use_value_embeddings, causal)
    twin_close(out, out_r)
    twin_close(scores, scores_r)
    twin_close(layer(x, use_causal_mask=causal), out_r)
    vm = np.ones((B, T), bool)
    vm[0, -2:] = False
    vm[2, 1] = False
    out, scores = layer(x, value_mask=vm, use_causal_mask=causal, return_attention_scores=True)
    out_r, scores_r = R.relative_mha(x, w, num_heads, 3, 4, k, use_value_embeddings, causal,
                                     value_mask=vm)
    twin_close(out, out_r)
    twin_close(scores, scores_r)


def test_relative_mha_k0_is_mha_plus_constant_embedding():
    """With max_relative_position=0 and zero embeddings the layer is plain MultiHeadAttention."""
    rng = np.random.default_rng(54)
    x = f64(rng, B, 5, D)
    rel = layers.RelativeMultiHeadAttention(2, 3, max_relative_position=0, dtype="float64")
    rel(x)
    w = randomize(rel, rng)
    w[-1][:] = 0
    w[-2][:] = 0
    rel.set_weights(w)
    mha = layers.MultiHeadAttention(2, 3, dtype="float64")
    mha(x, x)
    mha.set_weights(w[:-2])
    twin_close(rel(x), mha(x, x))


# ---------------------------------------------------------------------------------------------
# 3. Shape errors


def raises(match, fn):
    with pytest.raises(ValueError, match=match) as ei:
        fn()
    assert isinstance(ei.value, ShapeError)
    return ei.value


def test_dot_attention_query_key_feature_mismatch():
    q, v = Input(shape=(4, 6)), Input(shape=(5, 8))
    err = raises(r"Attention '.*': `key` must have shape \(batch, Tv, 6\), got \(None, 5, 8\)"
                 r"[\s\S]*same size \(6 vs 8\)", lambda: layers.Attention()([q, v]))
    assert err.argument == "key"
    raises(r"same size \(6 vs 8\)", lambda: layers.AdditiveAttention()(
        [np.zeros((2, 4, 6)), np.zeros((2, 5, 8))]))
    # eager, with an explicit key
    raises(r"same size \(6 vs 3\)", lambda: layers.Attention()(
        [np.zeros((2, 4, 6)), np.zeros((2, 5, 8)), np.zeros((2, 5, 3))]))


def test_key_value_length_mismatch():
    q, v, k = Input(shape=(4, 6)), Input(shape=(5, 6)), Input(shape=(7, 6))
    raises(r"`key` must have shape \(batch, 5, 6\), got \(None, 7, 6\)[\s\S]*same number of "
           r"timesteps", lambda: layers.Attention()([q, v, k]))
    raises(r"All dimensions of `value` and `key`, except the last one, must be equal; got value "
           r"\(None, 5, 6\) and key \(None, 7, 6\)[\s\S]*one key per value",
           lambda: layers.MultiHeadAttention(2, 3)(q, v, key=k))


@pytest.mark.parametrize("make", [lambda: layers.Attention(), lambda: layers.AdditiveAttention(),
                                  lambda: layers.MultiHeadAttention(2, 3)])
def test_2d_query_hint(make):
    q, v = Input(shape=(6,)), Input(shape=(5, 6))
    layer = make()

    def call():
        if isinstance(layer, layers.MultiHeadAttention):
            return layer(q, v)
        return layer([q, v])

    raises(r"`query` must have shape \(batch, Tq, features\), got \(None, 6\)[\s\S]*Hint: .*"
           r"BahdanauAttention/LuongAttention.*query\[:, None, :\]", call)
    # eager too
    layer2 = make()
    qa, va = np.zeros((2, 6), np.float32), np.zeros((2, 5, 6), np.float32)
    with pytest.raises(ShapeError, match=r"BahdanauAttention"):
        layer2(qa, va) if isinstance(layer2, layers.MultiHeadAttention) else layer2([qa, va])


def test_mask_wrong_rank_or_length():
    q, v = np.zeros((2, 4, 6), np.float32), np.zeros((2, 5, 6), np.float32)
    att = layers.Attention()
    raises(r"`mask\[1\] \(value_mask\)` must have shape \(2, 5\), got \(2, 5, 1\)[\s\S]*drop the "
           r"trailing axis", lambda: att([q, v], mask=[None, np.ones((2, 5, 1), bool)]))
    raises(r"`mask\[1\] \(value_mask\)` must have shape \(2, 5\), got \(2, 4\)",
           lambda: att([q, v], mask=[None, np.ones((2, 4), bool)]))
    raises(r"`mask\[0\] \(query_mask\)` must have shape \(2, 4\), got \(2, 5\)",
           lambda: att([q, v], mask=[np.ones((2, 5), bool), None]))
    raises(r"`mask\[0\] \(query_mask\)` must have shape \(2, 4\), got \(4,\)[\s\S]*one entry per",
           lambda: att([q, v], mask=[np.ones((4,), bool), None]))
    raises(r"`mask` must be a list \[query_mask, value_mask\], got one mask of shape \(2, 5\)",
           lambda: att([q, v], mask=np.ones((2, 5), bool)))
    mha = layers.MultiHeadAttention(2, 3)
    raises(r"MultiHeadAttention '.*': `value_mask` must have shape \(2, 5\), got \(2, 6\)",
           lambda: mha(q, v, value_mask=np.ones((2, 6), bool)))
    raises(r"`query_mask` must have shape \(2, 4\), got \(2, 4, 1\)",
           lambda: mha(q, v, query_mask=np.ones((2, 4, 1), bool)))
    raises(r"`attention_mask` must have shape \(2, 4, 5\), got \(2, 5, 4\)",
           lambda: mha(q, v, attention_mask=np.ones((2, 5, 4), bool)))
    bah = layers.BahdanauAttention(3)
    raises(r"BahdanauAttention '.*': `mask` must have shape \(2, 5\), got \(2, 3\)",
           lambda: bah(np.zeros((2, 4)), v, mask=np.ones((2, 3), bool)))
    pool = layers.AttentionPooling()
    raises(r"AttentionPooling '.*': `mask` must have shape \(2, 5\), got \(2, 4\)",
           lambda: pool(v, mask=np.ones((2, 4), bool)))


def test_attention_not_a_list():
    q = Input(shape=(4, 6))
    raises(r"Attention '.*': `inputs` must be a list \[query, value\] or \[query, value, key\], "
           r"got one tensor of shape \(None, 4, 6\)[\s\S]*Hint: call it on a list",
           lambda: layers.Attention()(q))
    raises(r"AdditiveAttention '.*': `inputs` must be a list", lambda: layers.AdditiveAttention()(
        np.zeros((2, 4, 6), np.float32)))
    raises(r"must be a list of length 2 or 3", lambda: layers.Attention()([q]))


def test_unpack_without_return_attention_scores():
    q, v = Input(shape=(4, 6)), Input(shape=(5, 6))

    def unpack():
        out, scores = layers.Attention()([q, v])

    err = raises(r"Attention '.*': its output is one tensor of shape \(None, 4, 6\); it cannot be "
                 r"unpacked[\s\S]*Hint: pass return_attention_scores=True", unpack)
    assert err.hint is not None
    # with the flag, unpacking works and the shapes are right
    out, scores = layers.Attention()([q, v], return_attention_scores=True)
    assert out.shape == (None, 4, 6) and scores.shape == (None, 4, 5)

    def unpack_mha():
        out, scores = layers.MultiHeadAttention(2, 3)(q, v)

    raises(r"MultiHeadAttention '.*'[\s\S]*return_attention_scores=True", unpack_mha)
    out, scores = layers.MultiHeadAttention(2, 3)(q, v, return_attention_scores=True)
    assert scores.shape == (None, 2, 4, 5)


@pytest.mark.parametrize("cls", ["BahdanauAttention", "LuongAttention"])
def test_values_not_a_sequence(cls):
    enc_in = Input(shape=(7, 3))
    enc = layers.LSTM(6)(enc_in)  # no return_sequences
    dec = Input(shape=(6,))
    layer = layers.BahdanauAttention(4) if cls == "BahdanauAttention" else layers.LuongAttention()
    raises(rf"{cls} '.*': `values` must have shape \(batch, timesteps, features\), got "
           r"\(None, 6\)[\s\S]*Hint: .*return_sequences=True", lambda: layer(dec, enc))


def test_luong_dot_size_mismatch_hint():
    q, v = Input(shape=(4,)), Input(shape=(5, 6))
    raises(r"LuongAttention '.*': `values` must have shape \(batch, Tv, 4\), got \(None, 5, 6\)"
           r"[\s\S]*use score='general'", lambda: layers.LuongAttention("dot")(q, v))
    # 'general' accepts it
    ctx, w = layers.LuongAttention("general")(q, v)
    assert ctx.shape == (None, 6) and w.shape == (None, 5)


def test_built_layer_rejects_other_feature_size():
    mha = layers.MultiHeadAttention(2, 3)
    mha(np.zeros((2, 4, 6), np.float32), np.zeros((2, 5, 6), np.float32))
    raises(r"`query` must have shape \(batch, T, 6\), got \(2, 4, 5\)[\s\S]*built for query",
           lambda: mha(np.zeros((2, 4, 5), np.float32), np.zeros((2, 5, 6), np.float32)))


# ---------------------------------------------------------------------------------------------
# 4. Softmax over a size-1 axis


def test_dense_softmax_size1_warns():
    x = np.random.default_rng(60).normal(size=(2, 5, 4)).astype(np.float32)
    dense = layers.Dense(1, activation="softmax", name="score_dense")
    with pytest.warns(UserWarning, match=r"Dense 'score_dense': softmax over axis -1 of size 1"):
        y = dense(x)
    assert np.all(y == 1)


def test_softmax_size1_warns_and_axis1_does_not():
    s = np.random.default_rng(61).normal(size=(2, 5, 1)).astype(np.float32)
    sm = layers.Softmax(axis=-1, name="bad_softmax")
    with pytest.warns(UserWarning, match=r"Softmax 'bad_softmax': softmax over axis -1 of size 1"):
        sm(s)
    good = layers.Softmax(axis=1, name="good_softmax")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = good(s)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-6)
    close(y, kval(keras.layers.Softmax(axis=1)(s)))


# ---------------------------------------------------------------------------------------------
# More mask conventions


def test_attention_third_mask_entry_ignored_like_keras():
    _, q, v, k = data(70, key=True)
    theirs, ours = list_pair("Attention", dict(use_scale=True), q, v, k, seed=71)
    qm, vm = masks()
    km = np.zeros((B, TV), bool)  # Keras ignores a third mask entry
    got = ours([q, v, k], mask=[qm, vm, km])
    close(got, kval(theirs([q, v, k], mask=[qm, vm, km])))
    close(got, ours([q, v, k], mask=[qm, vm]))


@pytest.mark.parametrize("ret", [False, True])
def test_mha_key_mask_and_attention_mask_keras_parity(ret):
    _, q, v, k = data(72, key=True)
    theirs, ours = mha_pair(dict(num_heads=2, key_dim=3, value_dim=4), q, v, k, seed=73)
    rng = np.random.default_rng(74)
    am = rng.random((B, TQ, TV)) > 0.3
    am[0, 1] = False  # one fully masked row
    _, vm = masks()
    km = np.ones((B, TV), bool)
    km[1, 0] = False
    for kw in (dict(key_mask=km), dict(attention_mask=am), dict(attention_mask=am, key_mask=km,
                                                                 value_mask=vm)):
        got = ours(q, v, key=k, return_attention_scores=ret, **kw)
        want = kval(theirs(q, v, key=k, return_attention_scores=ret, **kw))
        if ret:
            close(got[0], want[0])
            close(got[1], want[1])
        else:
            close(got, want)


@pytest.mark.parametrize("ret", [False, True])
def test_mha_causal_nonsquare_keras_parity(ret):
    _, q, v, _ = data(75)
    theirs, ours = mha_pair(dict(num_heads=2, key_dim=3), q, v, None, seed=76)
    got = ours(q, v, use_causal_mask=True, return_attention_scores=ret)
    want = kval(theirs(q, v, use_causal_mask=True, return_attention_scores=ret))
    if ret:
        close(got[0], want[0])
        close(got[1], want[1])
    else:
        close(got, want)


@pytest.mark.parametrize("query_rank", [2, 3])
def test_bahdanau_masking_model_against_twin(query_rank):
    """A Masking layer upstream gives BahdanauAttention its value mask inside a Model."""
    vi = Input(shape=(TV, DV))
    qi = Input(shape=(4,) if query_rank == 2 else (TQ, 4))
    att = layers.BahdanauAttention(5)
    ctx, w = att(qi, layers.Masking(0.0)(vi))
    model = Model([qi, vi], [ctx, w])
    rng = np.random.default_rng(77)
    ws = randomize(att, rng)
    x = padded(78, TV, DV, [5, 2, 4])
    q = rng.normal(size=(B, 4) if query_rank == 2 else (B, TQ, 4)).astype(np.float32)
    got_ctx, got_w = model.predict([q, x])
    vm = np.any(x != 0, axis=-1)
    want_ctx, want_w = R.bahdanau(q.astype(np.float64), x.astype(np.float64),
                                  *[np.float64(a) for a in ws], value_mask=vm)
    close(got_ctx, want_ctx)
    close(got_w, want_w)
    assert np.all(got_w[1, ..., 2:] == 0)


def test_attention_pooling_after_masked_lstm_model_against_twin():
    xi = Input(shape=(TV, 3))
    h = layers.LSTM(4, return_sequences=True)(layers.Masking(0.0)(xi))
    pool = layers.AttentionPooling(units=3, return_attention_scores=True)
    out, w = pool(h)
    model = Model(xi, [out, w])
    hmodel = Model(xi, h)
    ws = randomize(pool, np.random.default_rng(79))
    x = padded(80, TV, 3, [5, 1, 3])
    got_out, got_w = model.predict(x)
    hv = hmodel.predict(x).astype(np.float64)
    want_out, want_w = R.attention_pooling(hv, *[np.float64(a) for a in ws],
                                           mask=np.any(x != 0, axis=-1))
    close(got_out, want_out)
    close(got_w, want_w)
    assert np.all(got_w[1, 1:] == 0)


def test_dense_softmax_size1_warns_in_model_predict():
    xi = Input(shape=(TV, 4))
    model = Model(xi, layers.Dense(1, activation="softmax", name="attn_score")(xi))
    with pytest.warns(UserWarning, match=r"Dense 'attn_score': softmax over axis -1 of size 1"):
        model.predict(np.ones((2, TV, 4), np.float32))


@pytest.mark.parametrize("cls,kw", [("Attention", dict(use_scale=True)),
                                    ("Attention", dict(score_mode="concat")),
                                    ("AdditiveAttention", dict(use_scale=True))])
def test_fully_masked_row_with_large_scores_matches_keras(cls, kw):
    """|score| > 32: in float32 ``score - 1e9`` snaps to multiples of 64, so Keras' fully masked
    row is not uniform; ours must reproduce it (finite, same values)."""
    _, q, v, _ = data(81)
    q, v = q * 12.0, v[..., :D] * 12.0
    theirs, ours = list_pair(cls, kw, q, v, None, seed=82)
    if cls == "AdditiveAttention":
        theirs.set_weights([np.full((D,), 20.0, np.float32)])
    elif kw.get("score_mode") == "concat":
        theirs.set_weights([np.float32(20.0)])
    ours.set_weights(theirs.get_weights())
    qm, vm = masks(full_row=True)
    got = ours([q, v], mask=[qm, vm], return_attention_scores=True)
    want = kval(theirs([q, v], mask=[qm, vm], return_attention_scores=True))
    assert np.abs(want[1][1] - 1.0 / TV).max() > 0.1  # the row is really not uniform
    assert np.all(np.isfinite(got[1])) and np.all(np.isfinite(got[0]))
    close(got[1], want[1])
    close(got[0], want[0], atol=1e-4)
