"""NumPy twins of attnlstm's attention kernels: literal, broadcast-everything code used as
test oracles (they build the (B, Tq, Tv, D) tensor the C kernels avoid).

They follow Keras 3.15.1 literally (keras/src/layers/attention/attention.py,
additive_attention.py): scores, `where(~mask, scores - 1e9, scores)` in the array's dtype,
softmax `exp(x - max) / sum`, `weights @ value`, then `where(query_mask, out, 0)`.

`exact_full_rows=True` gives the same function in exact arithmetic: a row whose keys are all
masked uses softmax(scores) (the -1e9 shift cancels in the softmax), instead of the float
rounding of `scores - 1e9`. It is the oracle for finite differences through fully masked
rows; elsewhere it is identical.
"""
import numpy as np

MASK_PENALTY = 1e9


def score_mask(B, Tq, Tv, value_mask=None, attention_mask=None, causal=False):
    """(B, Tq, Tv) bool keep-mask (Keras _calculate_score_mask plus attention_mask), or None."""
    if value_mask is None and attention_mask is None and not causal:
        return None
    m = np.ones((B, Tq, Tv), bool)
    if value_mask is not None:
        m &= np.asarray(value_mask).astype(bool)[:, None, :]
    if causal:
        m &= np.tril(np.ones((Tq, Tv), bool))[None]       # keep j <= i
    if attention_mask is not None:
        m &= np.asarray(attention_mask).astype(bool)
    return m


def masked_softmax(scores, mask, exact_full_rows=False):
    dt = scores.dtype
    if scores.shape[-1] == 0:
        return scores.copy()
    s = scores
    if mask is not None:
        s = np.where(mask, scores, scores - dt.type(MASK_PENALTY))
        if exact_full_rows:
            s = np.where(mask.any(axis=-1, keepdims=True), s, scores)
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _finish(scores, value, query_mask, value_mask, attention_mask, causal, exact_full_rows):
    B, Tq, Tv = scores.shape
    mask = score_mask(B, Tq, Tv, value_mask, attention_mask, causal)
    weights = masked_softmax(scores, mask, exact_full_rows)
    out = weights @ value
    if query_mask is not None:
        out = np.where(np.asarray(query_mask).astype(bool)[..., None], out, out.dtype.type(0))
    return out, weights


def attention(query, value, key=None, scale=None, score_mode="dot", concat_score_weight=None,
              query_mask=None, value_mask=None, attention_mask=None, causal=False,
              exact_full_rows=False):
    """keras.layers.Attention. Returns (out (B,Tq,Dv), weights (B,Tq,Tv))."""
    dt = query.dtype.type
    key = value if key is None else key
    if score_mode == "dot":
        scores = query @ np.swapaxes(key, -1, -2)
        if scale is not None:
            scores = scores * dt(scale)
    else:
        z = query[:, :, None, :] + key[:, None, :, :]
        if scale is not None:
            z = dt(scale) * z
        cw = dt(1.0 if concat_score_weight is None else concat_score_weight)
        scores = cw * np.tanh(z).sum(axis=-1)
    return _finish(scores, value, query_mask, value_mask, attention_mask, causal,
                   exact_full_rows)


def additive_attention(query, value, key=None, scale=None, query_mask=None, value_mask=None,
                       attention_mask=None, causal=False, exact_full_rows=False):
    """keras.layers.AdditiveAttention (scale (dim,) or None = use_scale=False)."""
    dt = query.dtype.type
    key = value if key is None else key
    s = dt(1.0) if scale is None else np.asarray(scale, query.dtype)
    scores = (s * np.tanh(query[:, :, None, :] + key[:, None, :, :])).sum(axis=-1)
    return _finish(scores, value, query_mask, value_mask, attention_mask, causal,
                   exact_full_rows)


def bahdanau(query, values, W1, W2, V, b1=None, b2=None, query_mask=None, value_mask=None,
             attention_mask=None, causal=False, exact_full_rows=False):
    """Bahdanau et al. 2015: scores = V . tanh(values W1 + b1 + query W2 + b2).
    query (B,Dq) (single step; returns (B,Dv), (B,Tv)) or (B,Tq,Dq)."""
    single = query.ndim == 2
    if single:
        query = query[:, None, :]
        if query_mask is not None:
            query_mask = np.asarray(query_mask)[:, None]
    keys = values @ W1
    if b1 is not None:
        keys = keys + b1
    qp = query @ W2
    if b2 is not None:
        qp = qp + b2
    out, w = additive_attention(qp, values, keys, scale=V, query_mask=query_mask,
                                value_mask=value_mask, attention_mask=attention_mask,
                                causal=causal, exact_full_rows=exact_full_rows)
    if single:
        return out[:, 0], w[:, 0]
    return out, w
