"""NumPy twins of the multi-head attention kernels (csrc/mha_impl.h), used as test oracles.

They follow Keras 3 MultiHeadAttention literally (keras/src/layers/attention/
multi_head_attention.py: einsum projections, q scaled before the dot product, softmax over the
key axis with a mask), and Shaw, Uszkoreit & Vaswani (2018) eqs. 3-4 for the relative terms,
which are built here the slow, obvious way: a (Tq, Tv, HS) tensor of gathered embeddings.
"""
import numpy as np


def combined_mask(B, NH, Tq, Tv, attention_mask=None, query_mask=None, value_mask=None,
                  key_mask=None, use_causal_mask=False):
    """The (B, NH, Tq, Tv) boolean mask of Keras' _compute_attention_mask (True = attend)."""
    m = np.ones((B, NH, Tq, Tv), bool)
    if query_mask is not None:
        m &= np.asarray(query_mask, bool)[:, None, :, None]
    if value_mask is not None:
        m &= np.asarray(value_mask, bool)[:, None, None, :]
    if key_mask is not None:
        m &= np.asarray(key_mask, bool)[:, None, None, :]
    if use_causal_mask:
        row = np.arange(Tq)[:, None]
        col = np.arange(Tv)[None, :]
        m &= (col <= row)[None, None]
    if attention_mask is not None:
        am = np.asarray(attention_mask, bool)
        m &= am[:, None] if am.ndim == 3 else am
    return m


def relative_index(Tq, Tv, max_relative_position):
    """(Tq, Tv) integer indices clip(j - i, -k, k) + k into the relative embeddings."""
    k = max_relative_position
    d = np.arange(Tv)[None, :] - np.arange(Tq)[:, None]
    return np.clip(d, -k, k) + k


def multi_head_attention(query, value, key=None, *, query_kernel, query_bias, key_kernel,
                         key_bias, value_kernel, value_bias, output_kernel, output_bias,
                         attention_mask=None, query_mask=None, value_mask=None, key_mask=None,
                         use_causal_mask=False, fully_masked="uniform", rel_k=None, rel_v=None,
                         max_relative_position=0):
    """Returns (output (B,Tq,Dout), weights (B,NH,Tq,Tv))."""
    if key is None:
        key = value
    q = np.einsum("abc,cde->abde", query, query_kernel)
    if query_bias is not None:
        q = q + query_bias
    k = np.einsum("abc,cde->abde", key, key_kernel)
    if key_bias is not None:
        k = k + key_bias
    v = np.einsum("abc,cde->abde", value, value_kernel)
    if value_bias is not None:
        v = v + value_bias
    HS = query_kernel.shape[-1]
    q = q * (1.0 / np.sqrt(HS))
    scores = np.einsum("aecd,abcd->acbe", k, q)                      # (B, NH, Tq, Tv)
    B, NH, Tq, Tv = scores.shape
    if rel_k is not None or rel_v is not None:
        idx = relative_index(Tq, Tv, max_relative_position)
    if rel_k is not None:
        ak = rel_k[idx]                                              # (Tq, Tv, HS)
        scores = scores + np.einsum("abcd,bed->acbe", q, ak)
    mask = combined_mask(B, NH, Tq, Tv, attention_mask, query_mask, value_mask, key_mask,
                         use_causal_mask)
    live = mask.any(axis=-1, keepdims=True)
    masked = np.where(mask, scores, -np.inf)
    mx = np.where(live, masked.max(axis=-1, keepdims=True), 0.0)
    e = np.where(mask, np.exp(masked - mx), 0.0)
    s = e.sum(axis=-1, keepdims=True)
    w = e / np.where(live, s, 1.0)
    if fully_masked == "uniform":
        w = np.where(live, w, 1.0 / max(Tv, 1))
    elif fully_masked != "zero":
        raise ValueError(fully_masked)
    w = w.astype(scores.dtype)
    ctx = np.einsum("acbe,aecd->abcd", w, v)                         # (B, Tq, NH, HSv)
    if rel_v is not None:
        av = rel_v[idx]                                              # (Tq, Tv, HSv)
        ctx = ctx + np.einsum("acbe,bed->abcd", w, av)
    out = np.einsum("abcd,cde->abe", ctx, output_kernel)
    if output_bias is not None:
        out = out + output_bias
    return out, w
