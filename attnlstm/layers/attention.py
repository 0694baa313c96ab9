"""Attention layers on the C kernels: Keras' Attention, AdditiveAttention and MultiHeadAttention,
and the layers Keras users write by hand — BahdanauAttention, LuongAttention, AttentionPooling and
relative-position self-attention (RelativeMultiHeadAttention).

Masks follow Keras 3 (keras-semantics.md §7-8): a masked key gets ``score - 1e9`` (so a fully
masked row is near-uniform over the values, never NaN), a False query mask zeroes that output row
(Attention, AdditiveAttention and the hand-written layers; MultiHeadAttention does not).

Training: every layer has ``forward`` (``call`` is ``forward(...)[0]``) and ``backward`` on the
kernels' saved-forward/backward pairs. ``Grads.inputs`` has the structure of the packed inputs:
``[d_query, d_value(, d_key)]`` for Attention/AdditiveAttention, ``[d_query, d_value, d_key]``
for (Relative)MultiHeadAttention (``d_key`` None when no key was given: its gradient is in
``d_value``), ``[d_query, d_values]`` for Bahdanau/LuongAttention. In training the dropout keep
mask on the attention weights is drawn once in ``forward`` and reused by ``backward``. A fully
masked row of Attention/AdditiveAttention gets the gradient of ``softmax(score)`` (the exact
derivative of ``softmax(score - 1e9)``); in MultiHeadAttention its weights are constants.
"""
import numpy as np

from ..ops import attention as aops
from ..ops import mha as mops
from .. import backend, constraints, initializers, regularizers
from ..engine.base import Grads, Layer
from ..errors import format_shape, shape_error
from ..ops import core as _ops
from .core import set_kernel_args

__all__ = ["Attention", "AdditiveAttention", "MultiHeadAttention", "BahdanauAttention",
           "LuongAttention", "AttentionPooling", "RelativeMultiHeadAttention"]

_SEQ_HINT_2D = ("this layer attends over sequences; for one decoder step use "
                "BahdanauAttention/LuongAttention, which take a (batch, features) query, or add a "
                "time axis with query[:, None, :] (or RepeatVector(1)).")


def _check_seq(layer, arg, shape, last=None, batch=None, fallback=None):
    """`shape` must be (batch, T, last)."""
    expected = (batch if batch is not None else "batch", f"T{arg[0]}" if arg in ("query", "value", "key") else "timesteps",
                last if last is not None else "features")
    if not isinstance(shape, tuple) or len(shape) != 3:
        hint = _SEQ_HINT_2D if arg == "query" and isinstance(shape, tuple) and len(shape) == 2 else None
        raise shape_error(layer, arg, expected, shape, hint, fallback_hint=fallback)
    if last is not None and shape[2] is not None and shape[2] != last:
        raise shape_error(layer, arg, expected, shape)


def _mask_check(layer, arg, mask_shape, expected, broadcast=False):
    """`mask_shape` must equal `expected` (None / axis names match anything); with `broadcast`,
    an axis of size 1 also matches (Keras combines attention masks with ``&``)."""
    if mask_shape is None:
        return
    m = tuple(mask_shape)
    ok = len(m) == len(expected) and all(
        a is None or b is None or isinstance(b, str) or a == b or (broadcast and a == 1)
        for a, b in zip(m, expected))
    if not ok:
        hint = None
        if len(m) == len(expected) + 1 and m[-1] == 1:
            hint = "drop the trailing axis of size 1, e.g. mask[..., 0]."
        elif len(m) != len(expected):
            hint = f"`{arg}` has one entry per {' x '.join(str(e) for e in expected[1:])} position of each sample."
        raise shape_error(layer, arg, expected, m, hint)


def _full_attention_mask(attention_mask, query, value, num_heads):
    """An attention mask with axes of size 1 (e.g. `(B, 1, Tv)`, one row for every query)
    broadcast to `(B, Tq, Tv)` (or `(B, NH, Tq, Tv)`), as Keras' ``&`` of the masks does."""
    if attention_mask is None:
        return None
    m = np.asarray(attention_mask)
    B, Tq, Tv = np.shape(query)[0], np.shape(query)[1], np.shape(value)[1]
    full = (B, num_heads, Tq, Tv) if m.ndim == 4 else (B, Tq, Tv)
    return m if m.shape == full else np.broadcast_to(m, full)


def _grad_of(g, like):
    """An incoming output gradient as an array of `like`'s dtype (None -> zeros)."""
    if g is None:
        return np.zeros_like(like)
    return np.asarray(g, dtype=like.dtype)


def _split_d(d_outputs, with_scores, outputs_like):
    """``(d_out, d_scores)`` from d_outputs; d_scores is None when the scores are not returned."""
    if with_scores:
        d_out, d_w = d_outputs
        return _grad_of(d_out, outputs_like[0]), _grad_of(d_w, outputs_like[1])
    return _grad_of(d_outputs, outputs_like), None


def _merge_masks(mask, query_mask, value_mask, key_mask):
    """Keras MHA: the query mask comes from the query tensor; value/key masks when not given."""
    if mask is None:
        return query_mask, value_mask, key_mask
    masks = list(mask) + [None] * (3 - len(mask))
    return (masks[0] if masks[0] is not None else query_mask,
            value_mask if value_mask is not None else masks[1],
            key_mask if key_mask is not None else masks[2])


class _BaseAttention(Layer):
    """What the query/value/key attention layers share (Attention, AdditiveAttention,
    MultiHeadAttention, RelativeMultiHeadAttention):

    - inputs packed as ``[query, value, key]`` (key defaults to value; :meth:`_shapes`);
    - the output carries the query's Keras mask, the attention scores none;
    - an optional second output, the attention scores (:meth:`_scores_shape`);
    - inverted dropout on the attention weights in training, drawn once in ``forward`` and
      reused by ``backward``: the layer differentiates its value path (what it computes from
      the dropped weights) and the kernel the softmax and everything before it, from the
      weights' gradient alone.

    Subclasses define ``_kernel_backward(saved, d_outputs, d_attention_scores) -> dict``,
    ``_dropped_output`` / ``_dropped_backward`` (the value path) and ``_grads``.
    """
    supports_masking = True

    def __init__(self, dropout=0.0, seed=None, **kwargs):
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float, np.integer,
                                                                 np.floating)) \
                or not 0 <= dropout < 1:
            raise ValueError(f"Invalid value for argument `dropout`: expected a float in [0, 1). "
                             f"Received: dropout={dropout}")
        super().__init__(**kwargs)
        self.dropout = float(dropout)
        self.seed = seed
        self._rng = backend.make_rng(seed)

    # -- shapes and masks ------------------------------------------------------------------------

    def _shapes(self, input_shape):
        """``(query, value, key)`` shapes of the packed inputs; key defaults to value."""
        q, v = input_shape[0], input_shape[1]
        k = input_shape[2] if len(input_shape) > 2 and input_shape[2] is not None else v
        return q, v, k

    def _check_sequences(self, q, v, k):
        """query, value and key are `(B, T, features)` with one batch size."""
        _check_seq(self, "query", q)
        _check_seq(self, "value", v, batch=q[0])
        _check_seq(self, "key", k, batch=q[0])

    def _scores_shape(self, q, v):
        raise NotImplementedError

    def _check_and_build(self, inputs, kwargs):
        shapes, out = super()._check_and_build(inputs, kwargs)
        if kwargs.get("return_attention_scores"):
            q, v, _ = self._shapes(shapes)
            return shapes, [out, self._scores_shape(q, v)]
        return shapes, out

    def compute_mask(self, inputs, mask=None):
        """The query's mask (Keras: Attention, MultiHeadAttention); none for the scores."""
        if mask is None or not isinstance(mask, (list, tuple)) or mask[0] is None:
            return None
        return _ops.cast(mask[0], "bool")

    # -- dropout on the weights, forward and backward --------------------------------------------

    def _finish(self, r, out, weights, training, return_attention_scores, **extra):
        """Dropout (training) and output structure: ``(outputs, ctx)`` for :meth:`backward`."""
        keep = None
        if training and self.dropout > 0:
            keep = self._rng.random(weights.shape) >= self.dropout
            weights = (weights * keep / (1.0 - self.dropout)).astype(weights.dtype)
        ctx = {"saved": r, "keep": keep, "dropped": weights,
               "scores": bool(return_attention_scores), **extra}
        if keep is not None:
            out = self._dropped_output(r, weights, out, ctx)
        ctx["outputs"] = [out, weights]
        return ([out, weights] if return_attention_scores else out), ctx

    def _output_grads(self, ctx, d_outputs):
        """``(d_out, d_scores)``; d_scores is None when the scores are not returned."""
        return _split_d(d_outputs, ctx["scores"], ctx["outputs"] if ctx["scores"]
                        else ctx["outputs"][0])

    def backward(self, ctx, d_outputs, need_input_grad=True):
        r = ctx["saved"]
        d_out, d_w = self._output_grads(ctx, d_outputs)
        keep = ctx["keep"]
        if keep is None:
            g = self._kernel_backward(r, d_out, d_w)
        else:
            d_dropped, finish = self._dropped_backward(ctx, d_out)
            if d_w is not None:
                d_dropped = d_dropped + d_w
            d_weights = (d_dropped * keep / (1.0 - self.dropout)).astype(d_out.dtype)
            g = self._kernel_backward(r, np.zeros_like(d_out), d_weights)
            finish(g)
        return self._grads(ctx, g, need_input_grad)


class _ListAttention(_BaseAttention):
    """Shared call convention of Attention and AdditiveAttention: ``[query, value(, key)]``."""

    def _shapes(self, input_shape):
        if not isinstance(input_shape, list):
            raise shape_error(
                self, "inputs", "[query, value] or [query, value, key]", input_shape,
                f"call it on a list: {type(self).__name__}()([query, value]).",
                message=(f"`inputs` must be a list [query, value] or [query, value, key], got one "
                         f"tensor of shape {format_shape(input_shape)}."))
        if len(input_shape) not in (2, 3):
            raise shape_error(
                self, "inputs", "[query, value] or [query, value, key]", input_shape,
                message=(f"`inputs` must be a list of length 2 or 3, [query, value] or [query, "
                         f"value, key], got length {len(input_shape)}."))
        return super()._shapes(input_shape)

    def _scores_shape(self, q, v):
        return (q[0], q[1], v[1])

    def compute_output_shape(self, input_shape):
        q, v, k = self._shapes(input_shape)
        self._check_sequences(q, v, k)
        if k[1] is not None and v[1] is not None and k[1] != v[1]:
            raise shape_error(self, "key", (k[0] or "batch", v[1], k[2]), k,
                              "key and value must have the same number of timesteps (Tv); one "
                              "key per value.")
        self._check_features(q, k)
        return q[:-1] + (v[-1],)

    def _check_features(self, q, k):
        if q[2] is not None and k[2] is not None and q[2] != k[2]:
            raise shape_error(self, "key", ("batch", "Tv", q[2]), k,
                              f"the scores compare query and key features, so both need the "
                              f"same size ({q[2]} vs {k[2]}); project one with a Dense layer.")

    def validate_call(self, input_shape, mask=None, **kwargs):
        if mask is None:
            return
        q, v, _ = self._shapes(input_shape)
        if not isinstance(mask, list):
            raise shape_error(self, "mask", "[query_mask, value_mask]", mask,
                              message=f"`mask` must be a list [query_mask, value_mask], got one "
                                      f"mask of shape {format_shape(mask)}.")
        _mask_check(self, "mask[0] (query_mask)", mask[0] if len(mask) > 0 else None,
                    (q[0] if q[0] is not None else "batch", q[1] if q[1] is not None else "Tq"))
        _mask_check(self, "mask[1] (value_mask)", mask[1] if len(mask) > 1 else None,
                    (v[0] if v[0] is not None else "batch", v[1] if v[1] is not None else "Tv"))

    def call(self, inputs, mask=None, training=False, return_attention_scores=False,
             use_causal_mask=False):
        """The outputs of :meth:`forward` (shared by Attention and AdditiveAttention)."""
        return self.forward(inputs, mask, training, return_attention_scores,
                            use_causal_mask)[0]

    def _unpack(self, inputs, mask):
        q, v = inputs[0], inputs[1]
        k = inputs[2] if len(inputs) > 2 else None
        qm = vm = None
        if mask is not None:
            qm = mask[0] if len(mask) > 0 else None
            vm = mask[1] if len(mask) > 1 else None
        return q, v, k, qm, vm

    def _finish_list(self, r, n_inputs, training, return_attention_scores):
        return self._finish(r, r["outputs"], r["attention_scores"], training, return_attention_scores,
                            n_inputs=n_inputs)

    def _dropped_output(self, r, dropped, out, ctx):
        """``where(query_mask, dropped @ value, 0)``."""
        out = np.matmul(dropped, r["value"]).astype(out.dtype)
        if r["query_mask"] is not None:
            out = np.where(r["query_mask"][..., None], out, np.asarray(0, out.dtype))
        return out

    def _dropped_backward(self, ctx, d_out):
        r = ctx["saved"]
        G = d_out
        if r["query_mask"] is not None:
            G = np.where(r["query_mask"][..., None], d_out, np.asarray(0, d_out.dtype))

        def finish(g):
            g["value"] = g["value"] + np.matmul(np.swapaxes(ctx["dropped"], 1, 2), G)
        return np.matmul(G, np.swapaxes(r["value"], 1, 2)), finish

    def _grads(self, ctx, g, need_input_grad):
        weights = {var: np.asarray(g[nm]).reshape(var.shape) for var, nm in self._weight_names()}
        inputs = None
        if need_input_grad:
            inputs = [g["query"], g["value"]]
            if ctx["n_inputs"] == 3:
                inputs.append(g["key"])
        return Grads(inputs, weights)


class Attention(_ListAttention):
    """Dot-product (Luong-style) attention, as ``keras.layers.Attention`` (Luong et al. 2015).

    ``scores = query @ key^T`` (times the learned scalar ``scale`` with use_scale), or with
    ``score_mode="concat"``: ``concat_score_weight * sum_d tanh(scale * (query_i + key_j))``;
    ``weights = softmax(scores)`` over the keys (masked keys get ``score - 1e9``);
    ``output = weights @ value``; rows with a False query mask are 0.

    Args:
        use_scale: learn a scalar ``scale`` (init 1).
        score_mode: "dot" or "concat".
        dropout: fraction of attention weights dropped in training.

    Call arguments:
        inputs: ``[query, value]`` or ``[query, value, key]``: query `(B, Tq, D)`, value
            `(B, Tv, Dv)`, key `(B, Tv, D)` (default: value).
        mask: ``[query_mask (B, Tq), value_mask (B, Tv)]`` (from the inputs' Keras masks when
            not given).
        return_attention_scores: also return the weights `(B, Tq, Tv)`.
        use_causal_mask: query i sees keys j <= i.

    Returns:
        `(B, Tq, Dv)`, or ``[output, weights]``.

    Weights:
        ``scale`` `()` (use_scale), ``concat_score_weight`` `()` (concat).

    Raises:
        ShapeError: not a list of 2 or 3, a 2-D query, key/value of different lengths, query/key
            feature sizes that differ, masks of the wrong shape.
        ValueError: an unknown score_mode.
    """

    def __init__(self, use_scale=False, score_mode="dot", dropout=0.0, seed=None, **kwargs):
        if score_mode not in ("dot", "concat"):
            raise ValueError(f"Invalid value for argument score_mode. Expected one of {{'dot', "
                             f"'concat'}}. Received: score_mode={score_mode}")
        super().__init__(dropout=dropout, seed=seed, **kwargs)
        self.use_scale = use_scale
        self.score_mode = score_mode

    def build(self, input_shape):
        self.scale = self.add_weight("scale", (), "ones") if self.use_scale else None
        self.concat_score_weight = self.add_weight("concat_score_weight", (), "ones") \
            if self.score_mode == "concat" else None
        self.built = True

    def forward(self, inputs, mask=None, training=False, return_attention_scores=False,
                use_causal_mask=False):
        q, v, k, qm, vm = self._unpack(inputs, mask)
        r = aops.dot_attention_forward(
            q, v, k, scale=None if self.scale is None else self.scale.value,
            score_mode=self.score_mode,
            concat_score_weight=None if self.concat_score_weight is None
            else self.concat_score_weight.value,
            query_mask=qm, value_mask=vm, use_causal_mask=use_causal_mask, dtype=self.dtype,
            name=f"Attention '{self.name}'")
        return self._finish_list(r, len(inputs), training, return_attention_scores)

    def _kernel_backward(self, saved, d_outputs, d_attention_scores):
        return aops.dot_attention_backward(saved, d_outputs, d_attention_scores)

    def _weight_names(self):
        out = []
        if self.scale is not None:
            out.append((self.scale, "scale"))
        if self.concat_score_weight is not None:
            out.append((self.concat_score_weight, "concat_score_weight"))
        return out

    def get_config(self):
        cfg = super().get_config()
        cfg.update(use_scale=self.use_scale, score_mode=self.score_mode, dropout=self.dropout,
                   seed=self.seed)
        return cfg


class AdditiveAttention(_ListAttention):
    """Additive (Bahdanau-style) attention, as ``keras.layers.AdditiveAttention``
    (Bahdanau et al. 2015), without learned projections (see BahdanauAttention for those).

    ``scores[i, j] = sum_d scale[d] * tanh(query[i, d] + key[j, d])``, fused with the masked
    softmax and the context sum in one C pass over the keys.

    Args:
        use_scale: learn ``scale`` `(D,)` (glorot_uniform); else scale = 1.
        dropout: fraction of attention weights dropped in training.

    Call arguments, returns, raises: as :class:`Attention`.

    Weights:
        ``scale`` `(D,)` (use_scale).
    """

    def __init__(self, use_scale=True, dropout=0.0, seed=None, **kwargs):
        super().__init__(dropout=dropout, seed=seed, **kwargs)
        self.use_scale = use_scale

    def build(self, input_shape):
        q = input_shape[0]
        self.scale = self.add_weight("scale", (q[-1],), "glorot_uniform") if self.use_scale \
            else None
        self.built = True

    def forward(self, inputs, mask=None, training=False, return_attention_scores=False,
                use_causal_mask=False):
        q, v, k, qm, vm = self._unpack(inputs, mask)
        r = aops.additive_attention_forward(
            q, v, k, scale=None if self.scale is None else self.scale.value, query_mask=qm,
            value_mask=vm, use_causal_mask=use_causal_mask, dtype=self.dtype,
            name=f"AdditiveAttention '{self.name}'")
        return self._finish_list(r, len(inputs), training, return_attention_scores)

    def _kernel_backward(self, saved, d_outputs, d_attention_scores):
        return aops.additive_attention_backward(saved, d_outputs, d_attention_scores)

    def _weight_names(self):
        return [(self.scale, "scale")] if self.scale is not None else []

    def get_config(self):
        cfg = super().get_config()
        cfg.update(use_scale=self.use_scale, dropout=self.dropout, seed=self.seed)
        return cfg


# Layers below take several tensors as separate arguments (query, value, key...). They are
# packed into one `inputs` list so the Layer machinery checks and records them together.


class _KernelArgs:
    """The Dense-like ``kernel_*``/``bias_*`` arguments of the hand-written attention layers,
    whose learned weights stand for the Dense sub-layers of their Keras versions."""

    def _init_kernel_args(self, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                          kernel_regularizer=None, bias_regularizer=None,
                          kernel_constraint=None, bias_constraint=None):
        set_kernel_args(self, kernel_initializer, bias_initializer, kernel_regularizer,
                        bias_regularizer, kernel_constraint, bias_constraint)

    def _kernel(self, name, shape):
        return self.add_weight(shape=shape, name=name, initializer=self.kernel_initializer,
                               regularizer=self.kernel_regularizer,
                               constraint=self.kernel_constraint)

    def _bias(self, name, shape):
        return self.add_weight(shape=shape, name=name, initializer=self.bias_initializer,
                               regularizer=self.bias_regularizer, constraint=self.bias_constraint)

    def _kernel_config(self):
        return {"kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                "kernel_constraint": constraints.serialize(self.kernel_constraint),
                "bias_constraint": constraints.serialize(self.bias_constraint)}


class _MultiArgLayer(Layer):
    _arg_names = ()

    def __call__(self, *args, **kwargs):
        names = self._arg_names
        vals = list(args[:len(names)])
        for nm in names[len(vals):]:
            vals.append(kwargs.pop(nm, None))
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__} takes at most {len(names)} positional "
                            f"tensors {names}.")
        if vals[0] is None:
            raise TypeError(f"{type(self).__name__} '{self.name}' needs `{names[0]}`.")
        packed = [v for v in vals]
        return super().__call__(packed, **kwargs)


class MultiHeadAttention(_MultiArgLayer, _BaseAttention):
    """Multi-head attention (Vaswani et al. 2017), as ``keras.layers.MultiHeadAttention``.

    ``q = (query Wq + bq) / sqrt(key_dim)``, ``k = key Wk + bk``, ``v = value Wv + bv`` per head;
    ``softmax(q k^T)`` under the mask; context through ``Wo``. Projections are BLAS GEMMs; scores,
    softmax and context run in one C call.

    Args:
        num_heads: NH.
        key_dim: HS, size of each head for query and key.
        value_dim: HSv, size of each head for value (default key_dim).
        dropout: dropout on the attention weights in training.
        use_bias: biases in the four projections.
        output_shape: Dout (int or 1-tuple), default the query's feature size.
        kernel_initializer, bias_initializer: Keras defaults "glorot_uniform", "zeros".

    Call arguments:
        query `(B, Tq, Dq)`, value `(B, Tv, Dv)`, key `(B, Tv, Dk)` (default value),
        attention_mask `(B, Tq, Tv)` or `(B, NH, Tq, Tv)` (True = attend), query_mask `(B, Tq)`,
        value_mask / key_mask `(B, Tv)` (from the tensors' Keras masks when not given),
        return_attention_scores, use_causal_mask, training.

    Returns:
        `(B, Tq, Dout)`, or ``[output, scores (B, NH, Tq, Tv)]``.
        A query row whose keys are all masked gets the mean of the values (Keras' fast path)
        or, with return_attention_scores or dropout, zero context (Keras' explicit path).

    Weights (Keras order):
        query kernel `(Dq, NH, HS)`, query bias `(NH, HS)`, key kernel `(Dk, NH, HS)`, key bias,
        value kernel `(Dv, NH, HSv)`, value bias `(NH, HSv)`, output kernel `(NH, HSv, Dout)`,
        output bias `(Dout,)`.

    Raises:
        ShapeError: a 2-D query/value, value and key that differ except in the last axis,
            masks of the wrong shape, inputs whose feature sizes differ from the built kernels'.
    """
    supports_masking = True
    _arg_names = ("query", "value", "key")
    # .weights.h5: Keras keeps each projection in its own EinsumDense (weight-name prefix ->
    # the Keras attribute holding it), read by attnlstm.saving.weights.
    keras_projection_groups = {"query": "query_dense", "key": "key_dense", "value": "value_dense",
                           "attention_output": "output_dense"}

    def __init__(self, num_heads, key_dim, value_dim=None, dropout=0.0, use_bias=True,
                 output_shape=None, attention_axes=None, flash_attention=None,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, seed=None, **kwargs):
        for nm, val in (("num_heads", num_heads), ("key_dim", key_dim)):
            if not isinstance(val, (int, np.integer)) or val < 1:
                raise ValueError(f"Received an invalid value for argument `{nm}`, expected a "
                                 f"positive integer. Received: {nm}={val}")
        if value_dim is not None and (not isinstance(value_dim, (int, np.integer)) or value_dim < 1):
            raise ValueError(f"Received an invalid value for argument `value_dim`, expected a "
                             f"positive integer. Received: value_dim={value_dim}")
        if attention_axes not in (None, 1, (1,), [1]):
            raise ValueError(f"attnlstm's MultiHeadAttention attends over the time axis only "
                             f"(attention_axes=None or (1,)). Received: attention_axes={attention_axes}")
        if output_shape is not None:
            shp = (output_shape,) if isinstance(output_shape, (int, np.integer)) else tuple(output_shape)
            if len(shp) != 1 or not isinstance(shp[0], (int, np.integer)) or shp[0] < 1:
                raise ValueError(f"`output_shape` must be a positive int or a 1-tuple (the output "
                                 f"feature size). Received: output_shape={output_shape}")
            output_shape = int(shp[0])
        if flash_attention:
            raise ValueError(f"attnlstm's MultiHeadAttention has no flash attention path (its "
                             f"fused C kernel is always used). Received: "
                             f"flash_attention={flash_attention!r}")
        super().__init__(dropout=dropout, seed=seed, **kwargs)
        self.num_heads, self.key_dim = int(num_heads), int(key_dim)
        self.value_dim = int(value_dim) if value_dim is not None else self.key_dim
        self.use_bias = use_bias
        self._output_dim = output_shape
        set_kernel_args(self, kernel_initializer, bias_initializer, kernel_regularizer,
                        bias_regularizer, kernel_constraint, bias_constraint)
        # As Keras, the activity penalty is on each projection's output (the query, key, value
        # and output EinsumDense sub-layers), not only on the layer's output.
        self.projection_activity_regularizer = regularizers.get(activity_regularizer)

    def _scores_shape(self, q, v):
        return (q[0], self.num_heads, q[1], v[1])

    def compute_output_shape(self, input_shape):
        q, v, k = self._shapes(input_shape)
        self._check_sequences(q, v, k)
        if tuple(k[:-1]) != tuple(v[:-1]) and not (k[1] is None or v[1] is None):
            raise shape_error(
                self, "key", (v[0] or "batch", v[1], "Dk"), k,
                message=(f"All dimensions of `value` and `key`, except the last one, must be "
                         f"equal; got value {format_shape(v)} and key {format_shape(k)}."),
                hint="one key per value: key and value need the same number of timesteps.")
        if self.built:
            for arg, shp, w in (("query", q, self.query_kernel), ("value", v, self.value_kernel),
                                ("key", k, self.key_kernel)):
                if shp[-1] is not None and shp[-1] != w.shape[0]:
                    raise shape_error(self, arg, ("batch", "T", w.shape[0]), shp,
                                      f"this layer was built for {arg} features of size "
                                      f"{w.shape[0]}.")
        dout = self._output_dim if self._output_dim is not None else q[-1]
        return (q[0], q[1], dout)

    def validate_call(self, input_shape, mask=None, attention_mask=None, query_mask=None,
                      value_mask=None, key_mask=None, **kwargs):
        q, v, _ = self._shapes(input_shape)
        B = q[0] if q[0] is not None else "batch"
        Tq = q[1] if q[1] is not None else "Tq"
        Tv = v[1] if v[1] is not None else "Tv"
        _mask_check(self, "query_mask", query_mask, (B, Tq))
        _mask_check(self, "value_mask", value_mask, (B, Tv))
        _mask_check(self, "key_mask", key_mask, (B, Tv))
        if attention_mask is not None:
            if len(attention_mask) == 4:
                _mask_check(self, "attention_mask", attention_mask, (B, self.num_heads, Tq, Tv),
                            broadcast=True)
            else:
                _mask_check(self, "attention_mask", attention_mask, (B, Tq, Tv), broadcast=True)

    def build(self, input_shape):
        q, v, k = self._shapes(input_shape)
        NH, HS, HSv = self.num_heads, self.key_dim, self.value_dim
        dout = self._output_dim if self._output_dim is not None else q[-1]

        def kernel(name, shape):
            return self.add_weight(shape=shape, name=name, initializer=self.kernel_initializer,
                                   regularizer=self.kernel_regularizer,
                                   constraint=self.kernel_constraint)

        def bias(name, shape):
            if not self.use_bias:
                return None
            return self.add_weight(shape=shape, name=name, initializer=self.bias_initializer,
                                   regularizer=self.bias_regularizer,
                                   constraint=self.bias_constraint)

        self.query_kernel = kernel("query/kernel", (q[-1], NH, HS))
        self.query_bias = bias("query/bias", (NH, HS))
        self.key_kernel = kernel("key/kernel", (k[-1], NH, HS))
        self.key_bias = bias("key/bias", (NH, HS))
        self.value_kernel = kernel("value/kernel", (v[-1], NH, HSv))
        self.value_bias = bias("value/bias", (NH, HSv))
        self.output_kernel = kernel("attention_output/kernel", (NH, HSv, dout))
        self.output_bias = bias("attention_output/bias", (dout,))
        self.built = True

    def _w(self, v):
        return None if v is None else v.value

    def call(self, inputs, mask=None, attention_mask=None, query_mask=None, value_mask=None,
             key_mask=None, return_attention_scores=False, training=False, use_causal_mask=False):
        return self.forward(inputs, mask, attention_mask, query_mask, value_mask, key_mask,
                            return_attention_scores, training, use_causal_mask)[0]

    def forward(self, inputs, mask=None, attention_mask=None, query_mask=None, value_mask=None,
                key_mask=None, return_attention_scores=False, training=False,
                use_causal_mask=False):
        query, value, key = inputs
        query_mask, value_mask, key_mask = _merge_masks(mask, query_mask, value_mask, key_mask)
        attention_mask = _full_attention_mask(attention_mask, query, value, self.num_heads)
        fully = "zero" if (return_attention_scores or self.dropout > 0) else "uniform"
        r = mops.multi_head_attention_forward(
            query, value, key, query_kernel=self.query_kernel.value,
            query_bias=self._w(self.query_bias), key_kernel=self.key_kernel.value,
            key_bias=self._w(self.key_bias), value_kernel=self.value_kernel.value,
            value_bias=self._w(self.value_bias), output_kernel=self.output_kernel.value,
            output_bias=self._w(self.output_bias), attention_mask=attention_mask,
            query_mask=query_mask, value_mask=value_mask, key_mask=key_mask,
            use_causal_mask=use_causal_mask, fully_masked=fully, dtype=self.dtype,
            name=f"MultiHeadAttention '{self.name}'")
        return self._mha_finish(r, training, return_attention_scores, key is not None)

    def _mha_finish(self, r, training, return_attention_scores, key_given):
        """Dropout on the weights (training), then ``(outputs, ctx)`` for :meth:`backward`."""
        outputs, ctx = self._finish(r, r["outputs"], r["attention_scores"], training,
                                    return_attention_scores, key_given=key_given, context=None)
        ctx["activity"] = self._projection_activity(r, ctx["outputs"][0])
        return outputs, ctx

    def _dropped_output(self, r, dropped, out, ctx):
        """``context(dropped) Wo + bo``."""
        ctx["context"] = self._context(dropped, r)
        out = np.einsum("bqnd,ndo->bqo", ctx["context"],
                        self.output_kernel.value).astype(out.dtype)
        if self.output_bias is not None:
            out = out + self.output_bias.value
        return out

    def _dropped_backward(self, ctx, d_out):
        # out = context(dropped) Wo + bo: the value and output paths, by hand.
        r = ctx["saved"]
        a = r["inputs"]
        Wo, Wv = a["output_kernel"], a["value_kernel"]
        dropped = ctx["dropped"]
        d_ctx = np.einsum("bqo,ndo->bqnd", d_out, Wo)
        extra = {}
        d_dropped = self._context_backward(dropped, d_ctx, r, extra)

        def finish(g):
            for nm, v in extra.items():
                g[nm] = g[nm] + v
            d_v = np.einsum("bnqk,bqnd->bknd", dropped, d_ctx)          # (B, Tv, NH, HSv)
            g["output_kernel"] = np.einsum("bqnd,bqo->ndo", ctx["context"], d_out).reshape(
                a["kernel_shapes"]["output_kernel"])
            if g.get("output_bias") is not None:
                g["output_bias"] = d_out.sum(axis=(0, 1))
            g["value_kernel"] = g["value_kernel"] + np.einsum(
                "btd,btnh->dnh", a["value"], d_v).reshape(a["kernel_shapes"]["value_kernel"])
            if g.get("value_bias") is not None:
                g["value_bias"] = g["value_bias"] + d_v.sum(axis=(0, 1)).reshape(
                    g["value_bias"].shape)
            g["value"] = g["value"] + np.einsum("btnh,dnh->btd", d_v, Wv)
        return d_dropped, finish

    def _kernel_backward(self, saved, d_outputs, d_attention_scores):
        return mops.multi_head_attention_backward(saved, d_outputs, d_attention_scores)

    def _context(self, weights, r):
        """Per-head context `(B, Tq, NH, HSv)` of (dropped) attention weights."""
        return np.einsum("bnqk,bknd->bqnd", weights, r["v"])

    def _context_backward(self, weights, d_ctx, r, g):
        """Gradient w.r.t. the weights of :meth:`_context`; adds its other gradients to `g`."""
        return np.einsum("bqnd,bknd->bnqk", d_ctx, r["v"])

    def _projections(self, r):
        """``[(input name, kernel, bias, projection)]`` of the query, key and value
        projections (Keras' EinsumDense sub-layer outputs `(B, T, NH, HS)`)."""
        a = r["inputs"]
        out = []
        for nm, k, b in (("query", self.query_kernel, self.query_bias),
                         ("key", self.key_kernel, self.key_bias),
                         ("value", self.value_kernel, self.value_bias)):
            x = a[nm]
            p = np.einsum("btd,dnh->btnh", x, k.value.astype(x.dtype, copy=False))
            if b is not None:
                p = p + b.value
            out.append((nm, k, b, p))
        return out

    def _projection_activity(self, r, out):
        """Keras' activity penalty of the four projections (add_loss), and what backward
        needs for its gradient; None without an activity regularizer."""
        reg = self.projection_activity_regularizer
        if reg is None:
            return None
        projs = self._projections(r)
        self.add_loss(sum(regularizers.activity_penalty(reg, p) for *_, p in projs) +
                      regularizers.activity_penalty(reg, out))
        return projs, out

    def _add_projection_activity_grads(self, ctx, g):
        """Add the projections' activity-penalty gradients to the kernel's `g`."""
        reg = self.projection_activity_regularizer
        projs, _ = ctx["activity"]
        for nm, k, b, p in projs:
            dp = regularizers.activity_gradient(reg, p)
            x = ctx["saved"]["inputs"][nm]
            kn = {"query": "query_kernel", "key": "key_kernel", "value": "value_kernel"}[nm]
            g[kn] = g[kn] + np.einsum("btd,btnh->dnh", x, dp).reshape(g[kn].shape)
            if b is not None:
                bn = kn.replace("kernel", "bias")
                g[bn] = g[bn] + dp.sum(axis=(0, 1)).reshape(g[bn].shape)
            # Without a key, the key projection reads the value (its gradient is value's).
            target = nm if nm != "key" or ctx["key_given"] else "value"
            g[target] = g[target] + np.einsum("btnh,dnh->btd", dp, k.value)

    def _weight_names(self):
        names = [(self.query_kernel, "query_kernel"), (self.query_bias, "query_bias"),
                 (self.key_kernel, "key_kernel"), (self.key_bias, "key_bias"),
                 (self.value_kernel, "value_kernel"), (self.value_bias, "value_bias"),
                 (self.output_kernel, "output_kernel"), (self.output_bias, "output_bias")]
        return [(var, nm) for var, nm in names if var is not None]

    def _output_grads(self, ctx, d_outputs):
        d_out, d_s = super()._output_grads(ctx, d_outputs)
        if ctx["activity"] is not None:
            d_out = d_out + regularizers.activity_gradient(self.projection_activity_regularizer,
                                                           ctx["activity"][1])
        return d_out, d_s

    def _grads(self, ctx, g, need_input_grad):
        if ctx["activity"] is not None:
            self._add_projection_activity_grads(ctx, g)
        weights = {var: np.asarray(g[nm]).reshape(var.shape) for var, nm in self._weight_names()}
        inputs = None
        if need_input_grad:
            inputs = [g["query"], g["value"], g["key"] if ctx["key_given"] else None]
        return Grads(inputs, weights)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(num_heads=self.num_heads, key_dim=self.key_dim, value_dim=self.value_dim,
                   dropout=self.dropout, use_bias=self.use_bias, output_shape=self._output_dim,
                   kernel_initializer=initializers.serialize(self.kernel_initializer),
                   bias_initializer=initializers.serialize(self.bias_initializer), seed=self.seed,
                   kernel_regularizer=regularizers.serialize(self.kernel_regularizer),
                   bias_regularizer=regularizers.serialize(self.bias_regularizer),
                   activity_regularizer=regularizers.serialize(
                       self.projection_activity_regularizer),
                   kernel_constraint=constraints.serialize(self.kernel_constraint),
                   bias_constraint=constraints.serialize(self.bias_constraint))
        return cfg


class _QueryValuesAttention(_KernelArgs, _MultiArgLayer):
    """What BahdanauAttention and LuongAttention share: ``(query, values)`` with a `(B, H)`
    (one decoder step) or `(B, Tq, H)` query, a value mask `(B, Tv)`, and the outputs
    ``[context, weights]`` without masks."""
    supports_masking = True
    _arg_names = ("query", "values")

    def _check_query_values(self, input_shape):
        """``(query, values)`` shapes, checked: a 2-D or 3-D query, values a sequence."""
        q, v = input_shape[0], input_shape[1]
        if not isinstance(q, tuple) or len(q) not in (2, 3):
            raise shape_error(self, "query", "(batch, features) or (batch, Tq, features)", q)
        _check_seq(self, "values", v, batch=q[0],
                   fallback="values are the encoder's outputs over time: pass "
                            "return_sequences=True to the encoder LSTM.")
        return q, v

    @staticmethod
    def _output_shapes(q, v):
        if len(q) == 2:
            return [(q[0], v[2]), (q[0], v[1])]
        return [(q[0], q[1], v[2]), (q[0], q[1], v[1])]

    def validate_call(self, input_shape, mask=None, **kwargs):
        if mask is None:
            return
        v = input_shape[1]
        m = mask[1] if isinstance(mask, list) else mask
        _mask_check(self, "mask", m, (v[0] if v[0] is not None else "batch",
                                      v[1] if v[1] is not None else "Tv"))

    def call(self, inputs, mask=None):
        return self.forward(inputs, mask)[0]

    def compute_mask(self, inputs, mask=None):
        return [None, None]


class BahdanauAttention(_QueryValuesAttention):
    """Additive attention with learned projections (Bahdanau, Cho & Bengio 2015), the layer
    Keras users write by hand for encoder-decoder models::

        score_j = V . tanh(W1 values_j + W2 query),  weights = softmax_j(score),
        context = sum_j weights_j values_j

    The key projection ``W1 values`` is one GEMM per call; scores, masked softmax and context are
    the fused additive C kernel.

    Args:
        units: U, size of the projections.
        kernel_initializer, bias_initializer: Keras initializers of the
            projection kernels and biases (defaults "glorot_uniform", "zeros").
        kernel_regularizer, bias_regularizer: :mod:`attnlstm.regularizers` identifiers; the
            penalties are added to the training loss.
        kernel_constraint, bias_constraint: :mod:`attnlstm.constraints` identifiers, applied
            after each optimizer update.

    Call arguments:
        query: `(B, H)` — one decoder step — or `(B, Tq, H)`.
        values: `(B, Tv, Dv)` encoder outputs.
        mask: value mask `(B, Tv)` (from the values' Keras mask when not given).

    Returns:
        ``[context, weights]``: `(B, Dv)` and `(B, Tv)` for a 2-D query, `(B, Tq, Dv)` and
        `(B, Tq, Tv)` for a 3-D one.

    Weights (the hand-written Keras layer's order, Dense sub-layers W1, W2, V):
        W1 kernel `(Dv, U)`, W1 bias `(U,)`, W2 kernel `(H, U)`, W2 bias `(U,)`, V kernel `(U, 1)`,
        V bias `(1,)` (a constant shift of every score: it does not change the weights).

    Raises:
        ShapeError: values that are not a sequence, query and values of different batch sizes,
            a value mask of the wrong shape.
    """
    def __init__(self, units, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 bias_constraint=None, **kwargs):
        if not isinstance(units, (int, np.integer)) or units < 1:
            raise ValueError(f"Received an invalid value for argument `units`, expected a positive "
                             f"integer. Received: units={units}")
        super().__init__(**kwargs)
        self.units = int(units)
        self._init_kernel_args(kernel_initializer, bias_initializer, kernel_regularizer,
                               bias_regularizer, kernel_constraint, bias_constraint)

    def compute_output_shape(self, input_shape):
        q, v = self._check_query_values(input_shape)
        if self.built:
            for arg, shp, w in (("query", q, self.W2_kernel), ("values", v, self.W1_kernel)):
                if shp[-1] is not None and shp[-1] != w.shape[0]:
                    raise shape_error(self, arg, shp[:-1] + (w.shape[0],), shp,
                                      f"this layer was built for {arg} of {w.shape[0]} features.")
        return self._output_shapes(q, v)

    def build(self, input_shape):
        q, v = input_shape[0], input_shape[1]
        U = self.units
        self.W1_kernel = self._kernel("W1/kernel", (v[-1], U))
        self.W1_bias = self._bias("W1/bias", (U,))
        self.W2_kernel = self._kernel("W2/kernel", (q[-1], U))
        self.W2_bias = self._bias("W2/bias", (U,))
        self.V_kernel = self._kernel("V/kernel", (U, 1))
        self.V_bias = self._bias("V/bias", (1,))
        self.built = True

    def forward(self, inputs, mask=None):
        q, v = inputs[0], inputs[1]
        vm = mask[1] if isinstance(mask, list) else mask
        r = aops.bahdanau_attention_forward(
            q, v, self.W1_kernel.value, self.W2_kernel.value, self.V_kernel.value[:, 0],
            self.W1_bias.value, self.W2_bias.value, value_mask=vm, dtype=self.dtype,
            name=f"BahdanauAttention '{self.name}'")
        return [r["outputs"], r["attention_scores"]], r

    def backward(self, ctx, d_outputs, need_input_grad=True):
        d_out, d_w = _split_d(d_outputs, True, [ctx["outputs"], ctx["attention_scores"]])
        g = aops.bahdanau_attention_backward(ctx, d_out, d_w)
        weights = {self.W1_kernel: g["W1"], self.W1_bias: g["b1"], self.W2_kernel: g["W2"],
                   self.W2_bias: g["b2"], self.V_kernel: g["V"][:, None],
                   # V's bias shifts every score of a row alike: the softmax ignores it.
                   self.V_bias: np.zeros_like(self.V_bias.value)}
        inputs = [g["query"], g["values"]] if need_input_grad else None
        return Grads(inputs, weights)

    def get_config(self):
        cfg = super().get_config()
        cfg["units"] = self.units
        cfg.update(self._kernel_config())
        return cfg


class LuongAttention(_QueryValuesAttention):
    """Luong, Pham & Manning (2015) global attention with its three score functions::

        dot:     score_j = query . values_j
        general: score_j = query . (W_a values_j)         (W_a learned, `(Dv, H)`)
        concat:  score_j = v_a . tanh(W_a [query; values_j])

    followed by ``softmax`` over the values (masked) and ``context = sum_j weights_j values_j``.

    Args:
        score: "dot", "general" or "concat".
        units: size of the concat projection (default: the query's feature size).
        kernel_initializer, kernel_regularizer, kernel_constraint: of ``W_a`` and ``v_a``
            (as BahdanauAttention's; the layer has no bias).

    Call arguments:
        query: `(B, H)` (one decoder step) or `(B, Tq, H)`.
        values: `(B, Tv, Dv)`.
        mask: value mask `(B, Tv)`.

    Returns:
        ``[context, weights]``, shaped as BahdanauAttention's.

    Weights:
        general: ``W_a`` `(H, Dv)`. concat: ``W_a`` `(H + Dv, U)` (query rows first), ``v_a`` `(U,)`.

    Raises:
        ShapeError: values that are not a sequence; for "dot", query and values of different
            feature sizes (hint: use "general").
    """
    def __init__(self, score="dot", units=None, kernel_initializer="glorot_uniform",
                 kernel_regularizer=None, kernel_constraint=None, **kwargs):
        if score not in ("dot", "general", "concat"):
            raise ValueError(f"Invalid value for argument `score`. Expected one of 'dot', "
                             f"'general', 'concat'. Received: score={score!r}")
        if units is not None and score != "concat":
            raise ValueError(f"`units` sizes the concat score's projection; score={score!r} has "
                             f"none. Received: units={units!r}")
        super().__init__(**kwargs)
        self.score = score
        self.units = units
        self._init_kernel_args(kernel_initializer, kernel_regularizer=kernel_regularizer,
                               kernel_constraint=kernel_constraint)

    def compute_output_shape(self, input_shape):
        q, v = self._check_query_values(input_shape)
        if self.score == "dot" and q[-1] is not None and v[-1] is not None and q[-1] != v[-1]:
            raise shape_error(self, "values", ("batch", "Tv", q[-1]), v,
                              f"the dot score needs query and values of the same size ({q[-1]} "
                              f"vs {v[-1]}); use score='general' to learn a projection.")
        return self._output_shapes(q, v)

    def build(self, input_shape):
        q, v = input_shape[0], input_shape[1]
        if self.score == "general":
            self.W_a = self._kernel("W_a", (q[-1], v[-1]))
        elif self.score == "concat":
            U = self.units or q[-1]
            self.W_a = self._kernel("W_a", (q[-1] + v[-1], U))
            self.v_a = self._kernel("v_a", (U,))
        self.built = True

    def forward(self, inputs, mask=None):
        q, v = np.asarray(inputs[0]), np.asarray(inputs[1])
        vm = mask[1] if isinstance(mask, list) else mask
        single = q.ndim == 2
        name = f"LuongAttention '{self.name}'"
        if self.score == "concat":
            Dq = q.shape[-1]
            W = self.W_a.value
            r = aops.bahdanau_attention_forward(q, v, W[Dq:], W[:Dq], self.v_a.value,
                                                value_mask=vm, dtype=self.dtype, name=name)
            out, w = r["outputs"], r["attention_scores"]
            return [out, w], {"saved": r, "outputs": [out, w]}
        q3 = q[:, None, :] if single else q
        q_in = q3
        if self.score == "general":
            q3 = np.matmul(q3, self.W_a.value)
        r = aops.dot_attention_forward(q3, v, v, value_mask=vm, dtype=self.dtype, name=name)
        out, w = r["outputs"], r["attention_scores"]
        if single:
            out, w = out[:, 0], w[:, 0]
        return [out, w], {"saved": r, "outputs": [out, w], "single": single, "query": q_in}

    def backward(self, ctx, d_outputs, need_input_grad=True):
        r = ctx["saved"]
        d_out, d_w = _split_d(d_outputs, True, ctx["outputs"])
        if self.score == "concat":
            g = aops.bahdanau_attention_backward(r, d_out, d_w)
            # W_a = [W2 (query rows); W1 (value rows)]
            weights = {self.W_a: np.concatenate([g["W2"], g["W1"]], axis=0),
                       self.v_a: g["V"]}
            inputs = [g["query"], g["values"]] if need_input_grad else None
            return Grads(inputs, weights)
        single = ctx["single"]
        if single:
            d_out, d_w = d_out[:, None, :], d_w[:, None, :]
        g = aops.dot_attention_backward(r, d_out, d_w)
        dq3 = g["query"]
        weights = {}
        if self.score == "general":
            q_in = np.asarray(ctx["query"], dq3.dtype)
            weights[self.W_a] = np.matmul(q_in.reshape(-1, q_in.shape[-1]).T,
                                          dq3.reshape(-1, dq3.shape[-1]))
            dq3 = np.matmul(dq3, self.W_a.value.T)
        inputs = None
        if need_input_grad:
            dq = dq3[:, 0] if single else dq3
            inputs = [dq, g["value"] + g["key"]]
        return Grads(inputs, weights)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(score=self.score, units=self.units,
                   kernel_initializer=initializers.serialize(self.kernel_initializer),
                   kernel_regularizer=regularizers.serialize(self.kernel_regularizer),
                   kernel_constraint=constraints.serialize(self.kernel_constraint))
        return cfg


class AttentionPooling(_KernelArgs, Layer):
    """Attention pooling over time: one `(B, H)` vector from an LSTM's `(B, T, H)` outputs,
    the common "attention after LSTM" classifier head (Yang et al. 2016; Raffel & Ellis 2015)::

        score_t = u . tanh(W h_t + b),  weights = softmax over time (masked steps get 0),
        output  = sum_t weights_t h_t

    Args:
        units: U, size of the hidden projection (default H).
        return_attention_scores: also return the weights `(B, T)`.
        kernel_initializer, bias_initializer: Keras initializers of the
            projection kernels and biases (defaults "glorot_uniform", "zeros").
        kernel_regularizer, bias_regularizer: :mod:`attnlstm.regularizers` identifiers; the
            penalties are added to the training loss.
        kernel_constraint, bias_constraint: :mod:`attnlstm.constraints` identifiers, applied
            after each optimizer update.
            ``kernel`` and ``context`` are kernels, ``bias`` the bias.

    Call arguments:
        inputs: `(B, T, H)`.
        mask: `(B, T)` (from the inputs' Keras mask when not given).

    Returns:
        `(B, H)`, or ``[output, weights (B, T)]``.

    Weights:
        ``kernel`` `(H, U)`, ``bias`` `(U,)`, ``context`` `(U,)` (the vector u).

    Raises:
        ShapeError: inputs that are not a sequence — e.g. from an LSTM without
            return_sequences=True (the hint names it) —, a mask of the wrong shape.
    """
    supports_masking = True

    def __init__(self, units=None, return_attention_scores=False,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 bias_constraint=None, **kwargs):
        if units is not None and (not isinstance(units, (int, np.integer)) or units < 1):
            raise ValueError(f"Received an invalid value for argument `units`, expected a positive "
                             f"integer or None. Received: units={units!r}")
        super().__init__(**kwargs)
        self.units = units
        self.return_attention_scores = return_attention_scores
        self._init_kernel_args(kernel_initializer, bias_initializer, kernel_regularizer,
                               bias_regularizer, kernel_constraint, bias_constraint)

    def compute_output_shape(self, input_shape):
        if not isinstance(input_shape, tuple) or len(input_shape) != 3:
            raise shape_error(self, "inputs", ("batch", "timesteps", "features"), input_shape)
        B, T, H = input_shape
        if self.built and H != self.kernel.shape[0]:
            raise shape_error(self, "inputs", ("batch", "timesteps", self.kernel.shape[0]),
                              input_shape)
        if self.return_attention_scores:
            return [(B, H), (B, T)]
        return (B, H)

    def build(self, input_shape):
        H = input_shape[-1]
        U = self.units or H
        self.kernel = self._kernel("kernel", (H, U))
        self.bias = self._bias("bias", (U,))
        self.context = self._kernel("context", (U,))
        self.built = True

    def call(self, inputs, mask=None):
        return self.forward(inputs, mask)[0]

    def forward(self, inputs, mask=None):
        h = np.asarray(inputs)
        keys = np.matmul(h, self.kernel.value) + self.bias.value
        U = keys.shape[-1]
        zero_q = np.zeros((h.shape[0], 1, U), h.dtype)
        r = aops.additive_attention_forward(zero_q, h, keys, scale=self.context.value,
                                            value_mask=mask, dtype=self.dtype,
                                            name=f"AttentionPooling '{self.name}'")
        out, w = r["outputs"][:, 0], r["attention_scores"][:, 0]
        outputs = [out, w] if self.return_attention_scores else out
        return outputs, {"saved": r, "outputs": [out, w]}

    def backward(self, ctx, d_outputs, need_input_grad=True):
        r = ctx["saved"]
        ret = self.return_attention_scores
        d_out, d_w = _split_d(d_outputs, ret, ctx["outputs"] if ret else ctx["outputs"][0])
        g = aops.additive_attention_backward(r, d_out[:, None, :],
                                             None if d_w is None else d_w[:, None, :])
        h, dkeys = r["value"], g["key"]                       # (B, T, H), (B, T, U)
        H, U = self.kernel.shape
        weights = {self.kernel: np.matmul(h.reshape(-1, H).T, dkeys.reshape(-1, U)),
                   self.bias: dkeys.sum(axis=(0, 1)), self.context: g["scale"]}
        dh = g["value"] + np.matmul(dkeys, self.kernel.value.T) if need_input_grad else None
        return Grads(dh, weights)

    def compute_mask(self, inputs, mask=None):
        return [None, None] if self.return_attention_scores else None

    def get_config(self):
        cfg = super().get_config()
        cfg.update(units=self.units, return_attention_scores=self.return_attention_scores)
        cfg.update(self._kernel_config())
        return cfg


class RelativeMultiHeadAttention(MultiHeadAttention):
    """Self-attention with relative position representations (Shaw, Uszkoreit & Vaswani 2018),
    single-head (num_heads=1) or multi-head, with Keras MultiHeadAttention's projections::

        r(i, j) = clip(j - i, -k, k) + k          (k = max_relative_position)
        e_ij = q_i . (k_j + rel_k[r(i, j)]) / sqrt(key_dim)
        out_i = sum_j softmax_j(e_ij) (v_j + rel_v[r(i, j)])

    The embeddings are shared by all heads, as in the paper. In training, `dropout` drops
    attention weights as MultiHeadAttention's does (the dropped weights also multiply ``rel_v``).

    Args:
        num_heads, key_dim, value_dim, dropout, use_bias, output_shape, seed, and the kernel/bias
            initializers, regularizers and constraints: as MultiHeadAttention.
        max_relative_position: k, the clipping distance.
        use_value_embeddings: learn ``rel_v`` too (the paper's a^V).

    Call arguments:
        query `(B, T, D)` (self-attention: value and key default to query), masks and
        use_causal_mask as MultiHeadAttention.

    Weights:
        MultiHeadAttention's, then ``rel_k`` `(2k+1, key_dim)` and ``rel_v`` `(2k+1, value_dim)`.
    """

    keras_projection_groups = None   # no Keras twin: its weights are saved in one group
    def __init__(self, num_heads, key_dim, max_relative_position, value_dim=None,
                 use_value_embeddings=True, **kwargs):
        if not isinstance(max_relative_position, (int, np.integer)) or max_relative_position < 0:
            raise ValueError(f"`max_relative_position` must be a non-negative integer. "
                             f"Received: max_relative_position={max_relative_position}")
        super().__init__(num_heads, key_dim, value_dim=value_dim, **kwargs)
        self.max_relative_position = int(max_relative_position)
        self.use_value_embeddings = use_value_embeddings

    def __call__(self, query, value=None, key=None, **kwargs):
        return super().__call__(query, value if value is not None else query, key, **kwargs)

    def build(self, input_shape):
        super().build(input_shape)
        n = 2 * self.max_relative_position + 1
        self.rel_k = self.add_weight("rel_k", (n, self.key_dim), "glorot_uniform")
        self.rel_v = self.add_weight("rel_v", (n, self.value_dim), "glorot_uniform") \
            if self.use_value_embeddings else None
        self.built = True

    def forward(self, inputs, mask=None, attention_mask=None, query_mask=None, value_mask=None,
                key_mask=None, return_attention_scores=False, training=False,
                use_causal_mask=False):
        query, value, key = inputs
        query_mask, value_mask, key_mask = _merge_masks(mask, query_mask, value_mask, key_mask)
        attention_mask = _full_attention_mask(attention_mask, query, value, self.num_heads)
        fully = "zero" if (return_attention_scores or self.dropout > 0) else "uniform"
        r = mops.relative_attention_forward(
            query, value, key, num_heads=self.num_heads, query_kernel=self.query_kernel.value,
            query_bias=self._w(self.query_bias), key_kernel=self.key_kernel.value,
            key_bias=self._w(self.key_bias), value_kernel=self.value_kernel.value,
            value_bias=self._w(self.value_bias), output_kernel=self.output_kernel.value,
            output_bias=self._w(self.output_bias), rel_k=self.rel_k.value,
            rel_v=self._w(self.rel_v), max_relative_position=self.max_relative_position,
            attention_mask=attention_mask, query_mask=query_mask, value_mask=value_mask,
            key_mask=key_mask, use_causal_mask=use_causal_mask, fully_masked=fully,
            dtype=self.dtype, name=f"RelativeMultiHeadAttention '{self.name}'")
        return self._mha_finish(r, training, return_attention_scores, key is not None)

    def _relative_index(self, Tq, Tv):
        """``clip(j - i, -k, k) + k`` `(Tq, Tv)`: the row of rel_k/rel_v for query i, key j."""
        K = self.max_relative_position
        return np.clip(np.arange(Tv)[None, :] - np.arange(Tq)[:, None], -K, K) + K

    def _context(self, weights, r):
        ctx = super()._context(weights, r)
        if self.rel_v is None:
            return ctx
        rv = self.rel_v.value.astype(weights.dtype, copy=False)[
            self._relative_index(*weights.shape[2:])]                     # (Tq, Tv, HSv)
        return ctx + np.einsum("bnqk,qkd->bqnd", weights, rv)

    def _context_backward(self, weights, d_ctx, r, g):
        d_w = super()._context_backward(weights, d_ctx, r, g)
        if self.rel_v is None:
            return d_w
        idx = self._relative_index(*weights.shape[2:])
        rv = self.rel_v.value.astype(weights.dtype, copy=False)[idx]
        d_rv = np.zeros(self.rel_v.shape, weights.dtype)
        np.add.at(d_rv, idx, np.einsum("bnqk,bqnd->qkd", weights, d_ctx))
        g["rel_v"] = d_rv
        return d_w + np.einsum("bqnd,qkd->bnqk", d_ctx, rv)

    def _weight_names(self):
        names = super()._weight_names() + [(self.rel_k, "rel_k")]
        if self.rel_v is not None:
            names.append((self.rel_v, "rel_v"))
        return names

    def get_config(self):
        cfg = super().get_config()
        cfg.update(max_relative_position=self.max_relative_position,
                   use_value_embeddings=self.use_value_embeddings)
        return cfg

