"""NumPy-level attention: Keras ``Attention`` (Luong dot/concat), ``AdditiveAttention``
(Bahdanau) and Bahdanau attention with learned projections, forward and backward.

Each function takes array-likes, checks shapes (raising :class:`attnlstm.ShapeError`, a
``ValueError``, naming the function and the argument) and makes one C call for the whole
batch. Masks are booleans, True = keep, as in Keras.

Masking follows Keras 3.15.1 (``keras/src/layers/attention/attention.py``) exactly:

* A key ``j`` is masked for query ``i`` when ``value_mask[b, j]`` is False, or
  ``attention_mask[b, i, j]`` is False, or ``use_causal_mask`` and ``j > i``.
* A masked score becomes ``score - 1e9`` in the compute dtype (``MASK_PENALTY``): not
  ``-inf``, not a constant. The softmax follows, so masked keys of partly masked rows get
  weight exactly 0.
* A **fully masked row** (every key masked) is therefore *not* zeroed: its weights are the
  softmax of ``score - 1e9``, finite and never NaN. In float64 that is softmax(score) up to
  ~1e-7; in float32 ``score - 1e9`` snaps to multiples of 64, so the row is exactly uniform
  when every ``|score| < 32`` (the output is then the mean of the values), as in Keras.
* Only a False ``query_mask[b, i]`` zeroes output row ``i``. The returned attention weights
  are post-softmax and pre-query-mask.

Gradients: ``d(score - 1e9)/d score = 1``; a fully masked row gets the gradient of
``softmax(score)`` (the exact-arithmetic derivative of Keras' function; the float rounding
of ``score - 1e9`` is not differentiated).

Empty axes: ``Tq == 0``, ``batch == 0`` or a zero value dim give empty results; ``Tv == 0``
(no keys) gives weights of shape ``(batch, Tq, 0)`` and a zero context (an empty weighted sum,
as Keras' matmul). NaN/inf in the inputs propagate to the results.
"""
import numpy as np

from .. import _core
from .._limits import check_blas_sizes
from ..errors import format_shape, shape_error
from ._autograd import boxed, traced
from ._checks import (Saved, as_c as _as, attention_grads, attention_results, float_dtype,
                      key_value_grads)

__all__ = [
    "MASK_PENALTY",
    "dot_attention", "dot_attention_forward", "dot_attention_backward",
    "additive_attention", "additive_attention_forward", "additive_attention_backward",
    "bahdanau_attention", "bahdanau_attention_forward", "bahdanau_attention_backward",
    "bahdanau_keys",
]

#: What Keras subtracts from a masked score (float32/float64; Keras uses 65504 for float16).
MASK_PENALTY = 1.0e9

_SCORE_MODES = {"dot": 0, "concat": 1}

_HINT_2D_QUERY = ("attention reads a sequence of queries; for a single decoder step use "
                  "ops.bahdanau_attention, which takes a (batch, Dq) query, or add a time "
                  "axis: query[:, None, :].")



_RENAMED_KEYS = {"weights": "attention_scores"}
_RENAMED_GRADS = {"d_out": "d_outputs", "d_weights": "d_attention_scores"}


def _sequence(name, arg, a, axes, hint=None):
    if a.ndim != 3:
        raise shape_error(name, arg, axes, a.shape, hint if a.ndim == 2 else None)


def _qkv(name, query, value, key, dt, feature_name):
    """Checks and converts query (B,Tq,D), value (B,Tv,Dv), key (B,Tv,D) (None = value)."""
    q = np.asarray(query)
    v = np.asarray(value)
    k = v if key is None else np.asarray(key)
    _sequence(name, "query", q, ("batch", "Tq", feature_name), _HINT_2D_QUERY)
    _sequence(name, "value", v, ("batch", "Tv", "value_dim"),
              "attend over a sequence of values; a single vector needs a time axis, "
              "value[:, None, :].")
    if key is not None:
        _sequence(name, "key", k, ("batch", "Tv", feature_name),
                  "keys are a sequence, one per value step.")
    B, Tq, D = q.shape
    if v.shape[0] != B:
        raise shape_error(name, "value", (B, "Tv", "value_dim"), v.shape,
                          f"query has batch size {B}; value must have the same batch size.")
    if key is not None:
        if k.shape[0] != B:
            raise shape_error(name, "key", (B, "Tv", D), k.shape,
                              f"query has batch size {B}; key must have the same batch size.")
        if k.shape[1] != v.shape[1]:
            raise shape_error(
                name, "key", ("batch", v.shape[1], D), k.shape,
                "key[:, j] is the key of value[:, j]; pass key=None to use value as key.",
                message=f"`key` and `value` must have the same length Tv, got key "
                        f"{format_shape(k.shape)} and value {format_shape(v.shape)}.")
    if k.shape[2] != D:
        arg = "key" if key is not None else "value"
        raise shape_error(
            name, arg, ("batch", "Tv", D), k.shape,
            f"the scores compare query and {arg} features, so both need {D} features "
            f"(the query's); project them to a common size first (e.g. a Dense layer), or "
            f"use ops.bahdanau_attention, which learns both projections.")
    Tv = v.shape[1]
    check_blas_sizes(name, "query", q.shape, {"Tq": Tq, feature_name: D, "batch*Tq": B * Tq})
    check_blas_sizes(name, "value", v.shape, {"Tv": Tv, "value_dim": v.shape[2],
                                              "batch*Tv": B * Tv})
    return _as(q, dt), _as(k, dt), _as(v, dt)


def _mask(name, arg, m, shape, axes, hint=None):
    if m is None:
        return None
    m = np.asarray(m)
    if m.shape != tuple(shape):
        expected = f"({axes}) = {format_shape(tuple(shape))}"
        raise shape_error(name, arg, expected, m.shape, hint)
    return np.ascontiguousarray(m.astype(bool))


def _masks(name, B, Tq, Tv, query_mask, value_mask, attention_mask):
    qm = _mask(name, "query_mask", query_mask, (B, Tq), "batch, Tq",
               "query_mask has one entry per query step; it zeroes masked output rows.")
    vm = _mask(name, "value_mask", value_mask, (B, Tv), "batch, Tv",
               "value_mask has one entry per value (key) step; a (batch, Tq, Tv) mask is an "
               "attention_mask.")
    am = _mask(name, "attention_mask", attention_mask, (B, Tq, Tv), "batch, Tq, Tv",
               "attention_mask has one entry per (query step, key step) pair; a (batch, Tv) "
               "padding mask is a value_mask.")
    return qm, vm, am


def _scalar(name, arg, x):
    a = np.asarray(x, dtype=np.float64)
    if a.size != 1 or a.ndim > 1:
        raise shape_error(name, arg, "a scalar, shape ()", a.shape)
    return float(a.reshape(())), a.shape


# ---- Luong / Keras Attention ----------------------------------------------------------------

def dot_attention_forward(query, value, key=None, *, scale=None, score_mode="dot",
                          concat_score_weight=None, query_mask=None, value_mask=None,
                          attention_mask=None, use_causal_mask=False, dtype=None,
                          name="ops.dot_attention"):
    """Keras ``Attention`` forward, returning everything the backward pass needs.

    Same arguments as :func:`dot_attention`. Returns a :class:`~attnlstm.ops.Saved` with
    ``outputs`` (B,Tq,Dv), ``attention_scores`` (B,Tq,Tv) and the saved inputs (``query``,
    ``key``, ``value``, ``query_mask``, ``scale``, ``concat_score_weight``, ...), all in the
    compute dtype.
    """
    if score_mode not in _SCORE_MODES:
        raise ValueError("Invalid value for argument score_mode. Expected one of "
                         f"{{'dot', 'concat'}}. Received: score_mode={score_mode!r}")
    dt = float_dtype(dtype, query, value, key)
    q, k, v = _qkv(name, query, value, key, dt, "dim")
    B, Tq, _ = q.shape
    Tv = v.shape[1]
    qm, vm, am = _masks(name, B, Tq, Tv, query_mask, value_mask, attention_mask)
    s_val, s_shape = (1.0, None) if scale is None else _scalar(name, "scale", scale)
    cw_val, cw_shape = ((1.0, ()) if concat_score_weight is None
                        else _scalar(name, "concat_score_weight", concat_score_weight))
    out, weights = _core.dot_attention_forward(
        q, k, v, qm, vm, am, bool(use_causal_mask), s_val, cw_val, _SCORE_MODES[score_mode])
    return Saved("ops.dot_attention_forward", {
        "outputs": out, "attention_scores": weights,
        "query": q, "key": k, "value": v, "key_is_value": key is None,
        "query_mask": qm, "scale": s_val, "scale_shape": s_shape,
        "concat_score_weight": cw_val, "concat_score_weight_shape": cw_shape,
        "score_mode": score_mode, "name": name,
    }, _RENAMED_KEYS)


def dot_attention(query, value, key=None, *, scale=None, score_mode="dot",
                  concat_score_weight=None, query_mask=None, value_mask=None,
                  attention_mask=None, use_causal_mask=False, return_attention_scores=False,
                  dtype=None):
    """Luong attention, as ``keras.layers.Attention`` (Luong et al. 2015), one C call.

    ``score_mode="dot"``: ``scores = (query @ key^T) * scale``.
    ``score_mode="concat"``: ``scores = concat_score_weight * sum_d tanh(scale * (query[:, :,
    None, d] + key[:, None, :, d]))``. Then masking (``score - 1e9``, see the module
    docstring), ``weights = softmax(scores, axis=-1)``, ``out = weights @ value``, and rows
    with a False ``query_mask`` set to 0.

    Args:
        query: `(B, Tq, D)`.
        value: `(B, Tv, Dv)`; Dv may differ from D.
        key: `(B, Tv, D)`, or None to use ``value`` (then Dv must equal D).
        scale: a scalar (Keras ``use_scale=True`` weight ``scale``) or None (no scaling).
        score_mode: ``"dot"`` or ``"concat"``.
        concat_score_weight: scalar weight of the concat scores (Keras initialises it to 1);
            None means 1.
        query_mask: `(B, Tq)` booleans; False zeroes that output row.
        value_mask: `(B, Tv)` booleans; False masks that key for every query.
        attention_mask: `(B, Tq, Tv)` booleans (an extension; combined with AND).
        use_causal_mask: query ``i`` sees only keys ``j <= i``.
        return_attention_scores: also return the weights `(B, Tq, Tv)`.
        dtype: float32 or float64; default: the inputs' float dtype, else float32.

    Returns:
        `(B, Tq, Dv)`, or the tuple ``(out, weights)``.

    Raises:
        ShapeError: a wrong shape, named in the message (key/value lengths differ, query/key
            features differ, a 2-D query, a mask of the wrong shape, ...).
        ValueError: an unknown ``score_mode``.

    Example:
        >>> out = dot_attention(np.ones((2, 4, 8)), np.ones((2, 5, 3)), np.ones((2, 5, 8)))
        >>> out.shape
        (2, 4, 3)
    """
    if boxed(query, value, key, scale, concat_score_weight):
        out, weights = traced(
            dot_attention_forward, dot_attention_backward,
            {"query": query, "value": value, "key": key, "scale": scale,
             "concat_score_weight": concat_score_weight}, ("outputs", "attention_scores"),
            score_mode=score_mode, query_mask=query_mask, value_mask=value_mask,
            attention_mask=attention_mask, use_causal_mask=use_causal_mask, dtype=dtype)
        return (out, weights) if return_attention_scores else out
    r = dot_attention_forward(query, value, key, scale=scale, score_mode=score_mode,
                              concat_score_weight=concat_score_weight, query_mask=query_mask,
                              value_mask=value_mask, attention_mask=attention_mask,
                              use_causal_mask=use_causal_mask, dtype=dtype)
    return attention_results(r, return_attention_scores)


def dot_attention_backward(saved, d_outputs=None, d_attention_scores=None, **deprecated):
    """Gradients of :func:`dot_attention` given ``d_outputs`` (B,Tq,Dv) (None: zeros) and
    optionally ``d_attention_scores`` (B,Tq,Tv) (the gradient with respect to the returned
    weights). The old names ``d_out`` and ``d_weights`` still work, with a DeprecationWarning.

    ``saved`` is what :func:`dot_attention_forward` returned (else TypeError). Returns a dict
    keyed by argument name: ``query``, ``value``, ``key`` (only when a key was passed; otherwise the
    key path is added into ``value``), ``scale`` (when a scale was given) and
    ``concat_score_weight`` (concat mode).
    """
    d_out, dw = attention_grads("ops.dot_attention", saved, deprecated, _RENAMED_GRADS,
                                d_outputs, d_attention_scores)
    w = saved["attention_scores"]
    dt = w.dtype
    dq, dk, dv, dscale, dcw = _core.dot_attention_backward(
        d_out, dw, w, saved["query"], saved["key"], saved["value"], saved["query_mask"],
        saved["scale"], saved["concat_score_weight"], _SCORE_MODES[saved["score_mode"]])
    grads = key_value_grads({"query": dq}, dk, dv, saved["key_is_value"])
    if saved["scale_shape"] is not None:
        grads["scale"] = np.full(saved["scale_shape"], dscale, dtype=dt)
    if saved["score_mode"] == "concat":
        grads["concat_score_weight"] = np.full(saved["concat_score_weight_shape"], dcw, dtype=dt)
    return grads


# ---- Keras AdditiveAttention ----------------------------------------------------------------

def additive_attention_forward(query, value, key=None, *, scale=None, query_mask=None,
                               value_mask=None, attention_mask=None, use_causal_mask=False,
                               dtype=None, name="ops.additive_attention"):
    """``keras.layers.AdditiveAttention`` forward, returning everything the backward needs.

    Same arguments as :func:`additive_attention`. Returns a :class:`~attnlstm.ops.Saved`
    with ``outputs``, ``attention_scores`` and the saved inputs.
    """
    dt = float_dtype(dtype, query, value, key)
    q, k, v = _qkv(name, query, value, key, dt, "dim")
    B, Tq, U = q.shape
    Tv = v.shape[1]
    qm, vm, am = _masks(name, B, Tq, Tv, query_mask, value_mask, attention_mask)
    s = s_shape = None
    if scale is not None:
        s = np.asarray(scale)
        s_shape = s.shape
        if s.ndim == 0:
            s = np.full((U,), s, dtype=dt)
        elif s.shape != (U,):
            raise shape_error(name, "scale", (U,), s.shape,
                              "AdditiveAttention's scale has one entry per query feature "
                              "(its `dim`).")
        s = _as(s, dt)
    out, weights = _core.additive_attention_forward(q, k, v, s, qm, vm, am,
                                                    bool(use_causal_mask))
    return Saved("ops.additive_attention_forward", {
        "outputs": out, "attention_scores": weights,
        "query": q, "key": k, "value": v, "key_is_value": key is None,
        "query_mask": qm, "scale": s, "scale_shape": s_shape, "name": name,
    }, _RENAMED_KEYS)


def additive_attention(query, value, key=None, *, scale=None, query_mask=None,
                       value_mask=None, attention_mask=None, use_causal_mask=False,
                       return_attention_scores=False, dtype=None):
    """Additive attention, as ``keras.layers.AdditiveAttention`` (Bahdanau et al. 2015).

    ``scores[b, i, j] = sum_d scale[d] * tanh(query[b, i, d] + key[b, j, d])``, computed in
    one fused pass per row (no `(B, Tq, Tv, D)` tensor), then masking, softmax and
    ``weights @ value`` exactly as :func:`dot_attention`.

    Args:
        query: `(B, Tq, D)`.
        value: `(B, Tv, Dv)`.
        key: `(B, Tv, D)`, or None to use ``value``.
        scale: `(D,)` (Keras' ``scale`` weight with ``use_scale=True``), a scalar
            (broadcast), or None (``use_scale=False``: ones).
        query_mask, value_mask, attention_mask, use_causal_mask, return_attention_scores,
        dtype: as :func:`dot_attention`.

    Returns:
        `(B, Tq, Dv)`, or the tuple ``(out, weights)``.

    Raises:
        ShapeError: a wrong shape, named in the message.

    Example:
        >>> additive_attention(np.ones((2, 4, 8)), np.ones((2, 5, 8))).shape
        (2, 4, 8)
    """
    if boxed(query, value, key, scale):
        out, weights = traced(
            additive_attention_forward, additive_attention_backward,
            {"query": query, "value": value, "key": key, "scale": scale},
            ("outputs", "attention_scores"), query_mask=query_mask, value_mask=value_mask,
            attention_mask=attention_mask, use_causal_mask=use_causal_mask, dtype=dtype)
        return (out, weights) if return_attention_scores else out
    r = additive_attention_forward(query, value, key, scale=scale, query_mask=query_mask,
                                   value_mask=value_mask, attention_mask=attention_mask,
                                   use_causal_mask=use_causal_mask, dtype=dtype)
    return attention_results(r, return_attention_scores)


def additive_attention_backward(saved, d_outputs=None, d_attention_scores=None, **deprecated):
    """Gradients of :func:`additive_attention` given ``d_outputs`` and optionally
    ``d_attention_scores`` (as :func:`dot_attention_backward`): a dict with ``query``,
    ``value``, ``key`` (only when a key was passed; otherwise added into ``value``) and
    ``scale`` (when given, in the shape it was given)."""
    d_out, dw = attention_grads("ops.additive_attention", saved, deprecated, _RENAMED_GRADS,
                                d_outputs, d_attention_scores)
    w = saved["attention_scores"]
    dt = w.dtype
    dq, dk, dv, ds = _core.additive_attention_backward(
        d_out, dw, w, saved["query"], saved["key"], saved["value"], saved["scale"],
        saved["query_mask"])
    grads = key_value_grads({"query": dq}, dk, dv, saved["key_is_value"])
    if saved["scale_shape"] is not None:
        grads["scale"] = (np.asarray(ds.sum(), dtype=dt) if saved["scale_shape"] == ()
                          else ds)
    return grads


# ---- Bahdanau with learned projections ------------------------------------------------------

def _bahdanau_weights(name, W1, W2, V, b1, b2, Dq, Dv, dt):
    Va = np.asarray(V)
    if Va.ndim != 1:
        raise shape_error(name, "V", ("units",), Va.shape,
                          "V is the (units,) vector that turns tanh(...) into a score.")
    U = Va.shape[0]
    W1a, W2a = np.asarray(W1), np.asarray(W2)
    if W1a.shape != (Dv, U):
        hint = None
        if W1a.ndim == 2 and W1a.shape[1] == U:
            hint = f"W1 projects the values, which have {Dv} features."
        elif W1a.shape == (U, Dv):
            hint = "W1 looks transposed; it maps values (Dv) to units: shape (Dv, units)."
        raise shape_error(name, "W1", (Dv, U), W1a.shape, hint)
    if W2a.shape != (Dq, U):
        hint = None
        if W2a.ndim == 2 and W2a.shape[1] == U:
            hint = f"W2 projects the query, which has {Dq} features."
        elif W2a.shape == (U, Dq):
            hint = "W2 looks transposed; it maps the query (Dq) to units: shape (Dq, units)."
        raise shape_error(name, "W2", (Dq, U), W2a.shape, hint)
    bs = []
    for arg, b in (("b1", b1), ("b2", b2)):
        if b is not None:
            b = np.asarray(b)
            if b.shape != (U,):
                raise shape_error(name, arg, (U,), b.shape)
            b = _as(b, dt)
        bs.append(b)
    return _as(W1a, dt), _as(W2a, dt), _as(Va, dt), bs[0], bs[1], U


def bahdanau_keys(values, W1, b1=None, dtype=None, name="ops.bahdanau_keys"):
    """The key projection ``values @ W1 + b1`` `(B, Tv, U)`, to compute once per sequence and
    pass as ``keys=`` to :func:`bahdanau_attention` at every decoder step.

    Args:
        values: `(B, Tv, Dv)` encoder outputs.
        W1: `(Dv, U)` the values' projection (Keras ``AdditiveAttention`` has none: Bahdanau
            et al. 2015, eq. (6), ``U_a h_j``).
        b1: optional `(U,)` bias.
        dtype: float32 or float64 (default: from the inputs).

    Returns:
        `(B, Tv, U)` C-contiguous array of ``dtype``.

    Raises:
        ShapeError: values not 3-D, W1 not `(Dv, U)`, b1 not `(U,)`.
    """
    dt = float_dtype(dtype, values, W1)
    x = np.asarray(values)
    W = np.asarray(W1)
    _sequence(name, "values", x, ("batch", "Tv", "Dv"),
              "values are the encoder outputs, a sequence; a single vector needs a time "
              "axis, values[:, None, :].")
    Dv = x.shape[2]
    if W.ndim != 2 or W.shape[0] != Dv:
        hint = None
        if W.ndim == 2 and W.shape[1] == Dv:
            hint = "W1 looks transposed; it maps values (Dv) to units: shape (Dv, units)."
        elif W.ndim == 1:
            hint = "W1 is a matrix (Dv, units); for one unit use W1[:, None]."
        raise shape_error(name, "W1", (Dv, "units"), W.shape, hint)
    U = W.shape[1]
    b = None
    if b1 is not None:
        b = np.asarray(b1)
        if b.shape != (U,):
            raise shape_error(name, "b1", (U,), b.shape)
        b = _as(b, dt)
    if x.size == 0 or W.size == 0:
        k = np.zeros(x.shape[:2] + (U,), dt)   # no matmul loop over an empty batch
    else:
        k = _as(x, dt) @ _as(W, dt)
    if b is not None:
        k += b
    return np.ascontiguousarray(k)


def bahdanau_attention_forward(query, values, W1, W2, V, b1=None, b2=None, *, keys=None,
                               value_mask=None, query_mask=None, dtype=None,
                               name="ops.bahdanau_attention"):
    """:func:`bahdanau_attention` returning a :class:`~attnlstm.ops.Saved` with ``outputs``,
    ``attention_scores`` and the saved
    buffers (``qp`` (B,Tq,U) projected queries, ``kp`` (B,Tv,U) keys, the inputs)."""
    dt = float_dtype(dtype, query, values, W1)
    q = np.asarray(query)
    x = np.asarray(values)
    if q.ndim not in (2, 3):
        raise shape_error(name, "query", "(batch, Dq) or (batch, Tq, Dq)", q.shape)
    _sequence(name, "values", x, ("batch", "Tv", "Dv"),
              "values are the encoder outputs, a sequence; a single vector needs a time "
              "axis, values[:, None, :].")
    single = q.ndim == 2
    B = q.shape[0]
    if x.shape[0] != B:
        raise shape_error(name, "values", (B, "Tv", "Dv"), x.shape,
                          f"query has batch size {B}; values must have the same batch size.")
    Tv, Dv = x.shape[1], x.shape[2]
    Dq = q.shape[-1]
    W1c, W2c, Vc, b1c, b2c, U = _bahdanau_weights(name, W1, W2, V, b1, b2, Dq, Dv, dt)
    q3 = q[:, None, :] if single else q
    Tq = q3.shape[1]
    qm = None
    if query_mask is not None:
        if single:
            qm = _mask(name, "query_mask", query_mask, (B,), "batch",
                       "a single-step query has one mask entry per sample.")[:, None]
        else:
            qm = _mask(name, "query_mask", query_mask, (B, Tq), "batch, Tq")
        qm = np.ascontiguousarray(qm)
    vm = _mask(name, "value_mask", value_mask, (B, Tv), "batch, Tv",
               "value_mask has one entry per value step.")
    kin = None
    if keys is not None:
        kin = np.asarray(keys)
        if kin.shape != (B, Tv, U):
            raise shape_error(name, "keys", (B, Tv, U), kin.shape,
                              "keys are values @ W1 + b1, e.g. from ops.bahdanau_keys.")
        kin = _as(kin, dt)
    q3c, xc = _as(q3, dt), _as(x, dt)
    out, weights, qp, kp = _core.bahdanau_forward(q3c, xc, W1c, W2c, Vc, b1c, b2c, kin, qm, vm)
    return Saved("ops.bahdanau_attention_forward", {
        "outputs": out[:, 0] if single else out,
        "attention_scores": weights[:, 0] if single else weights,
        "single_step": single, "weights3": weights, "qp": qp,
        "kp": kin if kp is None else kp,
        "query": q3c, "values": xc, "W1": W1c, "W2": W2c, "V": Vc,
        "has_b1": b1c is not None, "has_b2": b2c is not None, "query_mask": qm, "name": name,
    }, _RENAMED_KEYS)


def bahdanau_attention(query, values, W1, W2, V, b1=None, b2=None, *, keys=None,
                       value_mask=None, query_mask=None, return_attention_scores=False,
                       dtype=None):
    """Bahdanau attention with learned projections (Bahdanau, Cho & Bengio 2015).

    ``scores[b, i, j] = V . tanh(values[b, j] @ W1 + b1 + query[b, i] @ W2 + b2)``, softmax over
    ``j`` with Keras' masking rule (module docstring), ``context = weights @ values``. The key
    projection is one GEMM per call (or pass it precomputed as ``keys``); the scores, softmax
    and context are the additive kernel. Luong's "concat" score ``v . tanh(W [h_t; h_s])`` is
    the same with ``W = [W2; W1]``.

    Args:
        query: `(B, Dq)` decoder state for one step, or `(B, Tq, Dq)`.
        values: `(B, Tv, Dv)` encoder outputs.
        W1: `(Dv, U)`, W2: `(Dq, U)`, V: `(U,)`, b1, b2: `(U,)` or None.
        keys: `(B, Tv, U)` = ``values @ W1 + b1`` precomputed (see :func:`bahdanau_keys`).
        value_mask: `(B, Tv)` booleans.
        query_mask: `(B,)` for a 2-D query, `(B, Tq)` for a 3-D one; False zeroes the row.
        return_attention_scores: also return the weights, `(B, Tv)` or `(B, Tq, Tv)`.
        dtype: float32 or float64.

    Returns:
        context `(B, Dv)` (2-D query) or `(B, Tq, Dv)`; with ``return_attention_scores``,
        ``(context, weights)``.

    Raises:
        ShapeError: a wrong shape, named in the message.

    Example:
        >>> ctx = bahdanau_attention(np.ones((2, 6)), np.ones((2, 5, 4)), np.ones((4, 3)),
        ...                          np.ones((6, 3)), np.ones(3))
        >>> ctx.shape
        (2, 4)
    """
    if boxed(query, values, W1, W2, V, b1, b2, keys):
        if keys is not None:
            raise ValueError("ops.bahdanau_attention: precomputed `keys` cannot be "
                             "differentiated; pass values, W1 and b1 inside a traced call. "
                             "Received: keys=<array>")
        out, weights = traced(
            bahdanau_attention_forward, bahdanau_attention_backward,
            {"query": query, "values": values, "W1": W1, "W2": W2, "V": V, "b1": b1, "b2": b2},
            ("outputs", "attention_scores"), value_mask=value_mask, query_mask=query_mask,
            dtype=dtype)
        return (out, weights) if return_attention_scores else out
    r = bahdanau_attention_forward(query, values, W1, W2, V, b1, b2, keys=keys,
                                   value_mask=value_mask, query_mask=query_mask, dtype=dtype)
    return attention_results(r, return_attention_scores)


def bahdanau_attention_backward(saved, d_outputs=None, d_attention_scores=None, **deprecated):
    """Gradients of :func:`bahdanau_attention` given ``d_outputs`` and optionally
    ``d_attention_scores`` (as :func:`dot_attention_backward`): a dict with ``query``,
    ``values``, ``W1``, ``W2``, ``V``, and ``b1``/``b2`` when they were given. With precomputed
    ``keys``, the W1/b1/values gradients assume ``keys = values @ W1 + b1``."""
    d_out, dw = attention_grads("ops.bahdanau_attention", saved, deprecated, _RENAMED_GRADS,
                                d_outputs, d_attention_scores)
    w3 = saved["weights3"]
    single = saved["single_step"]
    if single:
        d_out = d_out[:, None, :]
        dw = None if dw is None else dw[:, None, :]
    dq, dx, dW1, dW2, dV, db1, db2 = _core.bahdanau_backward(
        d_out, dw, w3, saved["qp"], saved["kp"], saved["query"], saved["values"],
        saved["W1"], saved["W2"], saved["V"], saved["query_mask"],
        saved["has_b1"], saved["has_b2"])
    grads = {"query": dq[:, 0] if single else dq, "values": dx, "W1": dW1, "W2": dW2,
             "V": dV}
    if saved["has_b1"]:
        grads["b1"] = db1
    if saved["has_b2"]:
        grads["b2"] = db2
    return grads
