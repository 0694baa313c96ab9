"""NumPy-level multi-head attention and relative-position self-attention (C kernels).

Functions (array-likes in, NumPy arrays out, float32 or float64):

- :func:`multi_head_attention`, :func:`multi_head_attention_forward`,
  :func:`multi_head_attention_backward` -- Keras 3 ``keras.layers.MultiHeadAttention`` math for
  3-D inputs, weights in Keras layout.
- :func:`relative_attention`, :func:`relative_attention_forward`,
  :func:`relative_attention_backward` -- the same layer with learned relative position
  representations (Shaw, Uszkoreit & Vaswani 2018, "Self-Attention with Relative Position
  Representations", eqs. 3-4), shared by all heads as in the paper.

Legend: B batch, Tq query steps, Tv key/value steps, NH heads (num_heads), HS key_dim, HSv
value_dim, Dout output features, k max_relative_position.

Masks are booleans (True = attend), combined as Keras' ``_compute_attention_mask``::

    mask[b,h,i,j] = query_mask[b,i] & value_mask[b,j] & key_mask[b,j] & (j <= i if causal)
                    & attention_mask[b,(h,)i,j]

A masked key gets weight exactly 0. A *fully masked* row (no key to attend) depends on which
Keras code path the caller wants to match (keras-semantics §8.5):

- ``fully_masked="uniform"``: weights 1/Tv, so the context is the mean of the values. Keras'
  fast path (``ops.dot_product_attention``), taken when ``dropout == 0`` and
  ``return_attention_scores=False``.
- ``fully_masked="zero"``: weights 0, so the context is 0 and the output is ``output_bias``.
  Keras' explicit path (``return_attention_scores=True`` or dropout > 0).

Neither gives NaN. With Tv == 0 every row is fully masked and the context is 0 under both
conventions. NaN or infinite inputs propagate to the outputs. B == 0 and Tq == 0 give empty
outputs.
"""
import numpy as np

from .. import _core
from .._limits import check_blas_sizes
from ..errors import format_shape, shape_error
from ._checks import Saved, as_c as _as, attention_grads, float_dtype

__all__ = [
    "multi_head_attention", "multi_head_attention_forward", "multi_head_attention_backward",
    "relative_attention", "relative_attention_forward", "relative_attention_backward",
]

_FULLY_MASKED = {"uniform": 0, "zero": 1}

_KERNELS = ("query_kernel", "key_kernel", "value_kernel", "output_kernel")
_BIASES = ("query_bias", "key_bias", "value_bias", "output_bias")


def _mask(name, arg, m, expected, expected_text):
    """A boolean C-contiguous mask of shape `expected`, or a ShapeError naming it."""
    m = np.asarray(m)
    if m.shape != tuple(expected):
        raise shape_error(name, arg, expected_text, m.shape,
                          message=f"`{arg}` must have shape {expected_text}, got "
                                  f"{format_shape(m.shape)}.",
                          hint="masks are booleans, True where attention is allowed.")
    return np.ascontiguousarray(m if m.dtype == np.bool_ else m != 0)


def _prepare(name, query, value, key, kernels, biases, rel_k, rel_v, max_relative_position,
             num_heads, masks, use_causal_mask, fully_masked, dtype):
    """Converts and checks every argument; returns the dict of converted inputs."""
    if fully_masked not in _FULLY_MASKED:
        raise ValueError(f"{name}: `fully_masked` must be 'uniform' or 'zero'. "
                         f"Received: fully_masked={fully_masked!r}")
    q_arr, v_arr = np.asarray(query), np.asarray(value)
    k_arr = None if key is None else np.asarray(key)
    dt = float_dtype(dtype, q_arr, v_arr, k_arr, *[np.asarray(k) for k in kernels.values()
                                                    if k is not None])
    if q_arr.ndim != 3:
        hint = ("attention reads sequences; add a time axis, e.g. x[:, None, :]."
                if q_arr.ndim == 2 else None)
        raise shape_error(name, "query", ("batch", "Tq", "features"), q_arr.shape, hint)
    B, Tq, Dq = q_arr.shape
    if v_arr.ndim != 3 or v_arr.shape[0] != B:
        hint = ("`query` and `value` must have the same batch size."
                if v_arr.ndim == 3 else None)
        raise shape_error(name, "value", (B, "Tv", "features"), v_arr.shape, hint)
    _, Tv, Dv = v_arr.shape
    if k_arr is not None and (k_arr.ndim != 3 or k_arr.shape[:-1] != v_arr.shape[:-1]):
        raise shape_error(name, "key", (B, Tv, "features"), k_arr.shape,
                          "all dimensions of `value` and `key`, except the last one, must be "
                          f"equal (Keras' rule). Received: value_shape={format_shape(v_arr.shape)}"
                          f" and key_shape={format_shape(k_arr.shape)}")
    Dk = Dv if k_arr is None else k_arr.shape[2]
    check_blas_sizes(name, "query", q_arr.shape, {"Dq": Dq, "batch*Tq": B * Tq})
    check_blas_sizes(name, "value", v_arr.shape, {"Dv": Dv, "batch*Tv": B * Tv,
                                                  "Tq*Tv": Tq * Tv})
    if k_arr is not None:
        check_blas_sizes(name, "key", k_arr.shape, {"Dk": Dk})

    # Kernels: Keras layout (D, NH, HS); relative_attention also takes (D, NH*HS) with num_heads.
    W = {nm: _as(kernels[nm], dt) for nm in _KERNELS}
    if num_heads is not None:
        if not isinstance(num_heads, (int, np.integer)) or num_heads < 1:
            raise ValueError(f"{name}: `num_heads` must be a positive integer. "
                             f"Received: num_heads={num_heads!r}")
        for nm, D in (("query_kernel", Dq), ("key_kernel", Dk), ("value_kernel", Dv)):
            w = W[nm]
            if w.ndim == 2 and w.shape[0] == D and w.shape[1] % num_heads == 0:
                W[nm] = w.reshape(D, num_heads, w.shape[1] // num_heads)
        w = W["output_kernel"]
        if w.ndim == 2 and w.shape[0] % num_heads == 0:
            W["output_kernel"] = w.reshape(num_heads, w.shape[0] // num_heads, w.shape[1])
    wq = W["query_kernel"]
    if wq.ndim != 3 or wq.shape[0] != Dq or wq.shape[1] < 1 or wq.shape[2] < 1:
        if num_heads is None:
            hint = (f"the query kernel maps the query's {Dq} features to num_heads >= 1 heads "
                    "of key_dim >= 1 (Keras layout).")
        else:
            hint = (f"the query kernel maps the query's {Dq} features to {num_heads} heads of "
                    f"key_dim >= 1: Keras layout ({Dq}, {num_heads}, key_dim) or flat "
                    f"({Dq}, {num_heads}*key_dim).")
        raise shape_error(name, "query_kernel",
                          (Dq, "num_heads" if num_heads is None else num_heads, "key_dim"),
                          _kernel_shape(kernels, "query_kernel"), hint)
    NH, HS = wq.shape[1], wq.shape[2]
    if num_heads is not None and NH != num_heads:
        raise shape_error(name, "query_kernel", (Dq, num_heads, "key_dim"),
                          _kernel_shape(kernels, "query_kernel"),
                          f"num_heads={num_heads} but the kernel has {NH} heads.")
    heads_hint = (f"`query_kernel` has {NH} heads of key_dim {HS}; every kernel must use the "
                  "same num_heads (and key must use the same key_dim).")
    if W["key_kernel"].shape != (Dk, NH, HS):
        raise shape_error(name, "key_kernel", (Dk, NH, HS), _kernel_shape(kernels, "key_kernel"),
                          heads_hint)
    wv = W["value_kernel"]
    if wv.ndim != 3 or wv.shape[:2] != (Dv, NH):
        raise shape_error(name, "value_kernel", (Dv, NH, "value_dim"),
                          _kernel_shape(kernels, "value_kernel"), heads_hint)
    HSv = wv.shape[2]
    wo = W["output_kernel"]
    if wo.ndim != 3 or wo.shape[:2] != (NH, HSv):
        raise shape_error(name, "output_kernel", (NH, HSv, "output_dim"),
                          _kernel_shape(kernels, "output_kernel"),
                          f"the output kernel reads {NH} heads of value_dim {HSv}.")
    Dout = wo.shape[2]
    expected_bias = {"query_bias": (NH, HS), "key_bias": (NH, HS), "value_bias": (NH, HSv),
                     "output_bias": (Dout,)}
    bs = {}
    for nm in _BIASES:
        b = biases[nm]
        if b is None:
            bs[nm] = None
            continue
        b = _as(b, dt)
        if b.shape != expected_bias[nm]:
            if b.size == int(np.prod(expected_bias[nm])) and nm != "output_bias":
                b = b.reshape(expected_bias[nm])       # (NH*HS,) from a 2-D kernel layout
            else:
                raise shape_error(name, nm, expected_bias[nm], b.shape)
        bs[nm] = b

    K = 0
    rk = rv = None
    if rel_k is not None or rel_v is not None or max_relative_position is not None:
        if (not isinstance(max_relative_position, (int, np.integer))
                or isinstance(max_relative_position, bool) or max_relative_position < 0):
            raise ValueError(f"{name}: `max_relative_position` must be a non-negative integer. "
                             f"Received: max_relative_position={max_relative_position!r}")
        K = int(max_relative_position)
        R = 2 * K + 1
        hint = (f"one row per relative position -{K}..{K} "
                f"(max_relative_position={K}), shared by all heads.")
        if rel_k is not None:
            rk = _as(rel_k, dt)
            if rk.shape != (R, HS):
                raise shape_error(name, "rel_k", (R, HS), rk.shape, hint)
        if rel_v is not None:
            rv = _as(rel_v, dt)
            if rv.shape != (R, HSv):
                raise shape_error(name, "rel_v", (R, HSv), rv.shape, hint)

    am = masks.get("attention_mask")
    qm = masks.get("query_mask")
    vm = masks.get("value_mask")
    km = masks.get("key_mask")
    if am is not None:
        a = np.asarray(am)
        shape = (B, NH, Tq, Tv) if a.ndim == 4 else (B, Tq, Tv)
        text = (f"(batch, Tq, Tv) = {format_shape((B, Tq, Tv))} or (batch, num_heads, Tq, Tv) "
                f"= {format_shape((B, NH, Tq, Tv))}")
        am = _mask(name, "attention_mask", a, shape, text)
    if qm is not None:
        qm = _mask(name, "query_mask", qm, (B, Tq), f"(batch, Tq) = {format_shape((B, Tq))}")
    if vm is not None:
        vm = _mask(name, "value_mask", vm, (B, Tv), f"(batch, Tv) = {format_shape((B, Tv))}")
    if km is not None:
        km = _mask(name, "key_mask", km, (B, Tv), f"(batch, Tv) = {format_shape((B, Tv))}")

    v_c = _as(v_arr, dt)
    return {
        "name": name, "query": _as(q_arr, dt), "value": v_c,
        "key": v_c if k_arr is None else _as(k_arr, dt), "key_given": k_arr is not None,
        **W, **bs, "rel_k": rk, "rel_v": rv, "max_relative_position": K,
        "kernel_shapes": {nm: np.shape(kernels[nm]) for nm in _KERNELS},
        "bias_shapes": {nm: np.shape(biases[nm]) for nm in _BIASES},
        "attention_mask": am, "query_mask": qm, "value_mask": vm, "key_mask": km,
        "use_causal_mask": bool(use_causal_mask), "fully_masked": fully_masked,
    }


def _kernel_shape(kernels, nm):
    return np.shape(kernels[nm])


_RENAMED_KEYS = {"output": "outputs"}
_RENAMED_GRADS = {"d_out": "d_outputs", "d_scores": "d_attention_scores"}


def _run(a, save_weights):
    return _core.mha_forward(
        a["query"], a["key"], a["value"], a["query_kernel"], a["query_bias"], a["key_kernel"],
        a["key_bias"], a["value_kernel"], a["value_bias"], a["output_kernel"], a["output_bias"],
        attention_mask=a["attention_mask"], query_mask=a["query_mask"],
        value_mask=a["value_mask"], key_mask=a["key_mask"], causal=a["use_causal_mask"],
        fully_masked=_FULLY_MASKED[a["fully_masked"]], rel_k=a["rel_k"], rel_v=a["rel_v"],
        max_relative_position=a["max_relative_position"], save_weights=save_weights)


def _forward(op, a):
    out, w, q, k, v, ctx, live = _run(a, True)
    return Saved(op, {"outputs": out, "attention_scores": w, "q": q, "k": k, "v": v,
                      "context": ctx, "live": live, "inputs": a, "name": a["name"]},
                 _RENAMED_KEYS)


def _infer(a, return_attention_scores):
    """The inference ops' results; without the scores the kernel keeps none (each head's
    block lives in a scratch buffer while in cache, as PyTorch's fused attention does)."""
    out, w = _run(a, bool(return_attention_scores))[:2]
    return (out, w) if return_attention_scores else out


def _backward(op, saved, d_outputs, d_attention_scores, deprecated):
    # one kernel: relative attention is multi-head attention with relative positions
    d_out, d_scores = attention_grads(
        op, saved, deprecated, _RENAMED_GRADS, d_outputs, d_attention_scores,
        ("the gradient has the shape of the forward output.",
         "the gradient has the shape of the attention scores."),
        forwards=("ops.multi_head_attention_forward", "ops.relative_attention_forward"))
    a = saved["inputs"]
    w = saved["attention_scores"]
    g = _core.mha_backward(
        d_out, d_scores, w, saved["q"], saved["k"], saved["v"], saved["context"],
        saved["live"], a["query"], a["key"], a["value"], a["query_kernel"], a["key_kernel"],
        a["value_kernel"], a["output_kernel"], rel_k=a["rel_k"], rel_v=a["rel_v"],
        max_relative_position=a["max_relative_position"],
        query_bias=a["query_bias"] is not None, key_bias=a["key_bias"] is not None,
        value_bias=a["value_bias"] is not None, output_bias=a["output_bias"] is not None)
    names = ("query", "key", "value", "query_kernel", "query_bias", "key_kernel", "key_bias",
             "value_kernel", "value_bias", "output_kernel", "output_bias", "rel_k", "rel_v")
    grads = dict(zip(names, g))
    if not a["key_given"]:
        grads["value"] = grads["value"] + grads.pop("key")
    for nm in _KERNELS:
        grads[nm] = grads[nm].reshape(a["kernel_shapes"][nm])
    for nm in _BIASES:
        if grads[nm] is not None:
            grads[nm] = grads[nm].reshape(a["bias_shapes"][nm])
    if a["rel_k"] is None:
        del grads["rel_k"]
    if a["rel_v"] is None:
        del grads["rel_v"]
    return grads


def multi_head_attention_forward(query, value, key=None, *, query_kernel, query_bias,
                                 key_kernel, key_bias, value_kernel, value_bias, output_kernel,
                                 output_bias, attention_mask=None, query_mask=None,
                                 value_mask=None, key_mask=None, use_causal_mask=False,
                                 fully_masked="uniform", dtype=None,
                                 name="ops.multi_head_attention", _infer_scores=None):
    """Multi-head attention forward, returning everything the backward pass needs.

    Same arguments as :func:`multi_head_attention`. Returns a :class:`~attnlstm.ops.Saved`
    with ``outputs`` `(B, Tq, Dout)`, ``attention_scores`` `(B, NH, Tq, Tv)` and the saved
    buffers ``q`` `(B, Tq, NH, HS)` (scaled by 1/sqrt(HS)), ``k`` `(B, Tv, NH, HS)`, ``v``
    `(B, Tv, NH, HSv)`,
    ``context`` `(B, Tq, NH, HSv)`, ``live`` `(B, NH, Tq)` (rows with an attended key) and
    ``inputs`` (the converted arguments). Pass it to :func:`multi_head_attention_backward`.
    """
    a = _prepare(name, query, value, key,
                 dict(query_kernel=query_kernel, key_kernel=key_kernel,
                      value_kernel=value_kernel, output_kernel=output_kernel),
                 dict(query_bias=query_bias, key_bias=key_bias, value_bias=value_bias,
                      output_bias=output_bias),
                 None, None, None, None,
                 dict(attention_mask=attention_mask, query_mask=query_mask,
                      value_mask=value_mask, key_mask=key_mask),
                 use_causal_mask, fully_masked, dtype)
    if _infer_scores is not None:        # from multi_head_attention: no backward follows
        return _infer(a, _infer_scores)
    return _forward("ops.multi_head_attention_forward", a)


def multi_head_attention_backward(saved, d_outputs=None, d_attention_scores=None, **deprecated):
    """Gradients of :func:`multi_head_attention_forward`.

    Args:
        saved: the :class:`~attnlstm.ops.Saved` returned by
            :func:`multi_head_attention_forward`.
        d_outputs: `(B, Tq, Dout)` gradient of the loss w.r.t. ``outputs``, or None (zeros).
        d_attention_scores: `(B, NH, Tq, Tv)` gradient w.r.t. ``attention_scores``, or None.
        The old names ``d_out`` and ``d_scores`` still work, with a DeprecationWarning.

    Returns:
        A dict keyed by argument name: ``query``, ``value``, ``key`` (only when a separate key
        was given; otherwise its gradient is added to ``value``), the four kernels, and the
        biases that were given (``None`` for those passed as None). Shapes equal the
        arguments'. Weights of fully masked rows are constants: no gradient flows through
        them to the scores.

    Raises:
        ShapeError: ``d_outputs`` or ``d_attention_scores`` of the wrong shape.
        TypeError: `saved` is not what :func:`multi_head_attention_forward` returned.
    """
    return _backward("ops.multi_head_attention", saved, d_outputs, d_attention_scores,
                     deprecated)


def multi_head_attention(query, value, key=None, *, query_kernel, query_bias, key_kernel,
                         key_bias, value_kernel, value_bias, output_kernel, output_bias,
                         attention_mask=None, query_mask=None, value_mask=None, key_mask=None,
                         use_causal_mask=False, fully_masked="uniform",
                         return_attention_scores=False, dtype=None):
    """Multi-head attention (Keras 3 ``keras.layers.MultiHeadAttention`` math, one C call).

    ``q = (query Wq + bq) / sqrt(HS)``, ``k = key Wk + bk``, ``v = value Wv + bv`` per head,
    ``w = softmax_j(q_i . k_j)`` under the mask, ``ctx_i = sum_j w_ij v_j``,
    ``out = ctx Wo + bo`` (Vaswani et al. 2017).

    Args:
        query: `(B, Tq, Dq)`.
        value: `(B, Tv, Dv)`.
        key: `(B, Tv, Dk)`, or None to use ``value`` (Keras' default).
        query_kernel: `(Dq, NH, HS)`; query_bias `(NH, HS)` or None.
        key_kernel: `(Dk, NH, HS)`; key_bias `(NH, HS)` or None.
        value_kernel: `(Dv, NH, HSv)`; value_bias `(NH, HSv)` or None.
        output_kernel: `(NH, HSv, Dout)`; output_bias `(Dout,)` or None.
        attention_mask: `(B, Tq, Tv)` or `(B, NH, Tq, Tv)` booleans, or None.
        query_mask: `(B, Tq)`; value_mask, key_mask: `(B, Tv)`; booleans or None.
        use_causal_mask: query i attends only keys j <= i.
        fully_masked: ``"uniform"`` (Keras' fast path) or ``"zero"`` (Keras' explicit path,
            used when it returns the scores); see the module docstring.
        return_attention_scores: also return the `(B, NH, Tq, Tv)` weights.
        dtype: float32 or float64; default: the first float32/float64 input's, else float32.

    Returns:
        `(B, Tq, Dout)`, or ``(output, scores)`` with ``return_attention_scores``.

    Raises:
        ShapeError: an argument of the wrong shape (the message names it); ``key`` whose
            shape differs from ``value``'s except in the last axis (Keras' rule).
        ValueError: an unknown ``fully_masked``.

    Example:
        >>> x = np.ones((2, 5, 8))
        >>> W = np.ones((8, 2, 4)); Wo = np.ones((2, 4, 8))
        >>> multi_head_attention(x, x, query_kernel=W, query_bias=None, key_kernel=W,
        ...     key_bias=None, value_kernel=W, value_bias=None, output_kernel=Wo,
        ...     output_bias=None).shape
        (2, 5, 8)
    """
    return multi_head_attention_forward(
        query, value, key, query_kernel=query_kernel, query_bias=query_bias,
        key_kernel=key_kernel, key_bias=key_bias, value_kernel=value_kernel,
        value_bias=value_bias, output_kernel=output_kernel, output_bias=output_bias,
        attention_mask=attention_mask, query_mask=query_mask, value_mask=value_mask,
        key_mask=key_mask, use_causal_mask=use_causal_mask, fully_masked=fully_masked,
        dtype=dtype, _infer_scores=bool(return_attention_scores))


def relative_attention_forward(query, value, key=None, *, num_heads=1, query_kernel,
                               query_bias=None, key_kernel, key_bias=None, value_kernel,
                               value_bias=None, output_kernel, output_bias=None, rel_k,
                               rel_v=None, max_relative_position, attention_mask=None,
                               query_mask=None, value_mask=None, key_mask=None,
                               use_causal_mask=False, fully_masked="uniform", dtype=None,
                               name="ops.relative_attention", _infer_scores=None):
    """Relative-position attention forward, returning everything the backward pass needs.

    Same arguments as :func:`relative_attention`; returns the :class:`~attnlstm.ops.Saved`
    described in :func:`multi_head_attention_forward`. Pass it to
    :func:`relative_attention_backward`.
    """
    if rel_k is None:
        raise ValueError(f"{name}: `rel_k` is required (shape (2*max_relative_position+1, "
                         "key_dim)); use multi_head_attention without relative positions.")
    a = _prepare(name, query, value, key,
                 dict(query_kernel=query_kernel, key_kernel=key_kernel,
                      value_kernel=value_kernel, output_kernel=output_kernel),
                 dict(query_bias=query_bias, key_bias=key_bias, value_bias=value_bias,
                      output_bias=output_bias),
                 rel_k, rel_v, max_relative_position, num_heads,
                 dict(attention_mask=attention_mask, query_mask=query_mask,
                      value_mask=value_mask, key_mask=key_mask),
                 use_causal_mask, fully_masked, dtype)
    if _infer_scores is not None:        # from relative_attention: no backward follows
        return _infer(a, _infer_scores)
    return _forward("ops.relative_attention_forward", a)


def relative_attention_backward(saved, d_outputs=None, d_attention_scores=None, **deprecated):
    """Gradients of :func:`relative_attention_forward`: the dict of
    :func:`multi_head_attention_backward` plus ``rel_k`` `(2k+1, HS)` and, when given,
    ``rel_v`` `(2k+1, HSv)`. Kernel gradients have the shapes the kernels were given in."""
    return _backward("ops.relative_attention", saved, d_outputs, d_attention_scores,
                     deprecated)


def relative_attention(query, value, key=None, *, num_heads=1, query_kernel, query_bias=None,
                       key_kernel, key_bias=None, value_kernel, value_bias=None,
                       output_kernel, output_bias=None, rel_k, rel_v=None,
                       max_relative_position, attention_mask=None, query_mask=None,
                       value_mask=None, key_mask=None, use_causal_mask=False,
                       fully_masked="uniform", return_attention_scores=False, dtype=None):
    """Self-attention with relative position representations (Shaw, Uszkoreit & Vaswani 2018).

    Multi-head attention whose keys and values get a learned embedding of the clipped
    relative distance, shared by all heads::

        r(i, j) = clip(j - i, -k, k) + k
        e_ij    = q_i . (k_j + rel_k[r(i, j)]) / sqrt(HS)
        out_i   = sum_j softmax_j(e_ij) (v_j + rel_v[r(i, j)])     (then the output projection)

    The relative term is computed as one `(B*Tq*NH, 2k+1)` product ``q rel_k^T`` gathered by
    ``r(i, j)`` (and a bucket sum of the weights times ``rel_v``), never as a `(Tq, Tv, HS)`
    tensor. Masks, ``use_causal_mask`` and ``fully_masked`` are those of
    :func:`multi_head_attention`.

    Args:
        query: `(B, Tq, Dq)`; value `(B, Tv, Dv)`; key `(B, Tv, Dk)` or None (= value).
        num_heads: NH, checked against the kernels. Kernels may be in Keras layout
            (query_kernel `(Dq, NH, HS)`, ..., output_kernel `(NH, HSv, Dout)`) or flat
            (`(Dq, NH*HS)`, ..., `(NH*HSv, Dout)`), split into ``num_heads`` heads.
        query_bias, key_bias, value_bias, output_bias: as in
            :func:`multi_head_attention`, or None (the default).
        rel_k: `(2k+1, HS)` relative key embeddings (a^K in the paper).
        rel_v: `(2k+1, HSv)` relative value embeddings (a^V), or None.
        max_relative_position: k >= 0, the clipping distance.
        return_attention_scores: also return the `(B, NH, Tq, Tv)` weights.

    Returns:
        `(B, Tq, Dout)`, or ``(output, scores)`` with ``return_attention_scores``.

    Raises:
        ShapeError: an argument of the wrong shape; kernels that disagree with ``num_heads``.
        ValueError: a negative ``max_relative_position`` or ``num_heads``.

    Example:
        >>> x = np.ones((2, 5, 8)); W = np.ones((8, 4)); Wo = np.ones((4, 8))
        >>> relative_attention(x, x, query_kernel=W, key_kernel=W, value_kernel=W,
        ...     output_kernel=Wo, rel_k=np.zeros((5, 4)), max_relative_position=2).shape
        (2, 5, 8)
    """
    return relative_attention_forward(
        query, value, key, num_heads=num_heads, query_kernel=query_kernel,
        query_bias=query_bias, key_kernel=key_kernel, key_bias=key_bias,
        value_kernel=value_kernel, value_bias=value_bias, output_kernel=output_kernel,
        output_bias=output_bias, rel_k=rel_k, rel_v=rel_v,
        max_relative_position=max_relative_position, attention_mask=attention_mask,
        query_mask=query_mask, value_mask=value_mask, key_mask=key_mask,
        use_causal_mask=use_causal_mask, fully_masked=fully_masked, dtype=dtype,
        _infer_scores=bool(return_attention_scores))
