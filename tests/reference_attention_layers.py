"""Plain NumPy (float64) twins of the hand-written attention layers, written from the formulas in
their docstrings (attnlstm/layers/attention.py). Weight lists are in the layers' get_weights() order.
"""
import numpy as np


def softmax(s, mask=None):
    """Softmax over the last axis; masked entries get ``s - 1e9`` (Keras' convention)."""
    if mask is not None:
        s = np.where(mask, s, s - 1e9)
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _vmask(value_mask, ndim):
    """(B, Tv) value mask broadcast against scores of rank `ndim` ((B, Tv) or (B, Tq, Tv))."""
    if value_mask is None:
        return None
    m = np.asarray(value_mask, bool)
    return m if ndim == 2 else m[:, None, :]


def bahdanau(query, values, W1, b1, W2, b2, V, Vb, value_mask=None):
    """score_j = V . tanh(W1 values_j + W2 query) (+ V bias); context = sum_j w_j values_j."""
    keys = values @ W1 + b1                                   # (B, Tv, U)
    if query.ndim == 2:
        qp = query @ W2 + b2                                  # (B, U)
        s = np.tanh(keys + qp[:, None, :]) @ V[:, 0] + Vb[0]  # (B, Tv)
        w = softmax(s, _vmask(value_mask, 2))
        return np.einsum("bt,btd->bd", w, values), w
    qp = query @ W2 + b2                                      # (B, Tq, U)
    s = np.tanh(keys[:, None, :, :] + qp[:, :, None, :]) @ V[:, 0] + Vb[0]   # (B, Tq, Tv)
    w = softmax(s, _vmask(value_mask, 3))
    return w @ values, w


def luong(query, values, score, weights, value_mask=None):
    """dot: q . v_j; general: q . (W_a v_j) with W_a stored (H, Dv); concat:
    v_a . tanh(W_a [q; v_j]) with W_a stored (H + Dv, U), query rows first."""
    single = query.ndim == 2
    q = query[:, None, :] if single else query                # (B, Tq, H)
    if score == "dot":
        s = q @ values.transpose(0, 2, 1)
    elif score == "general":
        (Wa,) = weights
        s = (q @ Wa) @ values.transpose(0, 2, 1)
    else:
        Wa, va = weights
        H = q.shape[-1]
        pre = (q @ Wa[:H])[:, :, None, :] + (values @ Wa[H:])[:, None, :, :]
        s = np.tanh(pre) @ va
    w = softmax(s, _vmask(value_mask, 3))
    ctx = w @ values
    if single:
        return ctx[:, 0], w[:, 0]
    return ctx, w


def attention_pooling(h, kernel, bias, context, mask=None):
    """score_t = u . tanh(W h_t + b); weights = softmax over time (masked 0); sum_t w_t h_t."""
    s = np.tanh(h @ kernel + bias) @ context                  # (B, T)
    w = softmax(s, None if mask is None else np.asarray(mask, bool))
    return np.einsum("bt,btd->bd", w, h), w


def relative_mha(x, weights, num_heads, key_dim, value_dim, k, use_value_embeddings, causal,
                 value_mask=None):
    """Self-attention with relative positions (Shaw et al. 2018) on MHA's projections:
    r(i, j) = clip(j - i, -k, k) + k; e_ij = q_i . (k_j + rel_k[r]) / sqrt(key_dim);
    out_i = sum_j softmax_j(e_ij) (v_j + rel_v[r]); then the output projection."""
    if use_value_embeddings:
        qk, qb, kk, kb, vk, vb, ok, ob, rel_k, rel_v = weights
    else:
        qk, qb, kk, kb, vk, vb, ok, ob, rel_k = weights
        rel_v = np.zeros((rel_k.shape[0], value_dim))
    T = x.shape[1]
    q = np.einsum("btd,dnh->btnh", x, qk) + qb                # (B, T, NH, HS)
    kp = np.einsum("btd,dnh->btnh", x, kk) + kb
    v = np.einsum("btd,dnh->btnh", x, vk) + vb                # (B, T, NH, HSv)
    i = np.arange(T)[:, None]
    j = np.arange(T)[None, :]
    r = np.clip(j - i, -k, k) + k                             # (T, T)
    RK, RV = rel_k[r], rel_v[r]                               # (T, T, HS), (T, T, HSv)
    e = (np.einsum("binh,bjnh->bnij", q, kp) + np.einsum("binh,ijh->bnij", q, RK)) \
        / np.sqrt(key_dim)
    mask = (j <= i)[None, None] if causal else None
    if value_mask is not None:
        vm = np.asarray(value_mask, bool)[:, None, None, :]
        mask = vm if mask is None else (mask & vm)
    w = softmax(e, mask)
    ctx = np.einsum("bnij,bjnh->binh", w, v) + np.einsum("bnij,ijh->binh", w, RV)
    out = np.einsum("binh,nho->bio", ctx, ok) + ob
    return out, w
