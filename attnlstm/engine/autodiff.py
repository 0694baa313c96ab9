"""Reverse-mode gradients of a layer's ``call`` by `autograd <https://github.com/HIPS/autograd>`_.

A layer with no hand-written ``forward``/``backward`` (a custom layer written with
:mod:`attnlstm.ops` and Python operators) gets both from :func:`trace_forward` /
:func:`trace_backward`: the forward runs ``call`` once with the float inputs and the layer's
trainable weights replaced by autograd boxes, and keeps autograd's VJP; the backward calls it.

Built-in layers called inside such a ``call`` stay primitives with their own fused backward:
:func:`layer_primitive` wraps ``forward``/``backward`` as one autograd primitive whose arguments
are the call's array leaves and the layer's weights, so their gradients reach the outer trace.
"""
import threading
import warnings

import numpy as np
from autograd.builtins import tuple as ag_tuple
from autograd.core import make_vjp
from autograd.extend import defvjp_argnums, primitive
from autograd.tracer import Box, getval

from .structure import flatten, map_structure

__all__ = ["trace_forward", "trace_backward", "layer_primitive", "has_box", "in_trace",
           "loss_collector", "training_flag"]

class _State(threading.local):
    """This thread's trace state. The class attributes are the unset values: a getattr that
    finds them is about 20x cheaper than one that misses (an AttributeError raised and caught),
    and every eager op on a Variable asks in_trace()."""
    depth = 0
    training = None
    known = frozenset()
    losses = None
    stash = None


_state = _State()


def _get(name, default):
    return getattr(_state, name, default)


def in_trace():
    """Whether a gradient trace is running (Variables then resolve to boxes)."""
    return _get("depth", 0) > 0


def training_flag():
    """The ``training`` value of the traced call (passed on to sub-layers), or None."""
    return _get("training", None)


def is_known(var):
    """Whether `var` belongs to a layer being traced (traced or deliberately frozen)."""
    return id(var) in _get("known", ())


def loss_collector():
    """The list add_loss appends to during a trace, or None."""
    return _get("losses", None)


def has_box(structure):
    return any(isinstance(v, Box) for v in flatten(structure))


def _is_float_leaf(v):
    return isinstance(v, np.ndarray) and v.dtype.kind == "f"


def _unflatten(structure, leaves):
    it = iter(leaves)
    return map_structure(lambda _: next(it), structure)


def trace_forward(layer, fn, args, kwargs, variables, training=None):
    """Run ``fn(*args, **kwargs)`` recording gradients w.r.t. the float array leaves of the
    arguments and the `variables`. Returns ``(outputs, ctx)`` for :func:`trace_backward`;
    every add_loss term made during the call (by `layer` or its sub-layers) is in
    ``layer._losses`` and is differentiated with the outputs."""
    structure = [list(args), kwargs]
    leaves = flatten(structure)
    diff = [i for i, v in enumerate(leaves) if _is_float_leaf(v)]
    holder = {}

    def f(packed):
        dl, vv = packed
        new = list(leaves)
        for i, v in zip(diff, dl):
            new[i] = v
        a, k = _unflatten(structure, new)
        saved = [(var, var._traced) for var in variables]
        for var, v in zip(variables, vv):
            var._traced = v
        prev = (_get("depth", 0), _get("losses", None), _get("training", None),
                _get("known", frozenset()))
        _state.depth = prev[0] + 1
        _state.losses = []
        _state.training = training
        _state.known = prev[3] | {id(w) for w in getattr(layer, "weights", ())}
        try:
            out = fn(*a, **k)
            losses = _state.losses
        finally:
            _state.depth, _state.losses, _state.training, _state.known = prev
            for var, old in saved:
                var._traced = old
        holder["out"] = out
        holder["losses"] = losses
        outs = flatten(out)
        holder["n_out"] = len(outs)
        boxed = [l for l, _, counted in losses if counted and isinstance(l, Box)]
        total = boxed[0] if boxed else 0.0
        for l in boxed[1:]:
            total = total + l
        holder["boxed_loss"] = bool(boxed)
        return ag_tuple(tuple(outs) + (total,))

    x0 = (tuple(leaves[i] for i in diff), tuple(var.value for var in variables))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Output seems independent of input")
        vjp, ans = make_vjp(f, x0)
    outs = [np.asarray(v) if not isinstance(v, np.ndarray) else v for v in ans[:-1]]
    out = holder["out"]
    out = _unflatten(out, outs) if isinstance(out, (list, tuple, dict)) else outs[0]
    layer._losses = [float(np.sum(getval(l))) for l, _, counted in holder["losses"] if counted]
    named = {}
    for l, name, _ in holder["losses"]:
        if name is not None:
            named[name] = named.get(name, 0.0) + float(np.sum(getval(l)))
    layer._named_losses = named
    ctx = (vjp, structure, diff, variables, outs, holder["boxed_loss"])
    return out, ctx


def trace_backward(ctx, d_outputs):
    """Gradients for a call recorded by :func:`trace_forward`: ``(arg_grads, kwarg_grads,
    {Variable: grad})``, the argument gradients in the arguments' structure (None where a
    leaf is not a float array)."""
    vjp, structure, diff, variables, outs, boxed_loss = ctx
    d = flatten(d_outputs) if isinstance(d_outputs, (list, tuple, dict)) else [d_outputs]
    d = [np.zeros_like(o) if g is None else np.asarray(g, dtype=o.dtype)
         for g, o in zip(d, outs)]
    g_leaves, g_vars = vjp(tuple(d) + (1.0 if boxed_loss else 0.0,))
    leaves = [None] * len(flatten(structure))
    for i, g in zip(diff, g_leaves):
        leaves[i] = np.asarray(g)
    a, k = _unflatten(structure, leaves)
    weights = {var: np.asarray(g) for var, g in zip(variables, g_vars)}
    return a, k, weights


# ---------------------------------------------------------------------------------------------
# A hand-written (C-kernel) layer as one autograd primitive


@primitive
def _layer_call(layer, structure, n_leaves, training, *vals):
    a, k = _unflatten(structure, vals[:n_leaves])
    out, ctx = layer._eager_call(tuple(a), k, training=training, record=True)
    seq = isinstance(out, (list, tuple, dict))
    _state.last = (out, seq, list(layer._losses), dict(layer._named_losses))
    stash = _get("stash", None)
    if stash is None:
        stash = _state.stash = []
    stash.append((ctx, out, seq))
    return tuple(flatten(out)) if seq else out


def _layer_call_vjp(argnums, ans, args, kwargs):
    layer, structure, n_leaves, training = args[:4]
    ctx, out, seq = _state.stash.pop()
    variables = _prim_variables(layer)

    def vjp(g):
        outs = flatten(out) if seq else [out]
        gs = list(g) if seq else [g]
        gs = [np.zeros_like(o) if gg is None else gg for gg, o in zip(gs, outs)]
        d_struct = _unflatten(out, gs) if seq else gs[0]
        need_in = any(4 <= a < 4 + n_leaves for a in argnums)
        res = layer.backward(ctx, d_struct, need_input_grad=need_in)
        a, k = structure
        rest = list(res.args) if res.args is not None else [None] * (len(a) - 1)
        full = [[res.inputs] + rest, {key: (res.kwargs or {}).get(key) for key in k}]
        g_leaves = _flatten_like(structure, full)
        grads = []
        for an in argnums:
            if an < 4 + n_leaves:
                gl = g_leaves[an - 4]
                grads.append(np.zeros_like(getval(args[an])) if gl is None else gl)
            else:
                var = variables[an - 4 - n_leaves]
                gw = res.weights.get(var)
                grads.append(np.zeros_like(var.value) if gw is None else gw)
        return tuple(grads)
    return vjp


defvjp_argnums(_layer_call, _layer_call_vjp)


def _prim_variables(layer):
    return layer.trainable_weights


def _flatten_like(structure, grads):
    """Leaves of `grads` aligned with the leaves of `structure` (None where grads has None)."""
    if isinstance(structure, (list, tuple)):
        out = []
        gs = list(grads) if isinstance(grads, (list, tuple)) else [None] * len(structure)
        gs = gs + [None] * (len(structure) - len(gs))
        for s, g in zip(structure, gs):
            out.extend(_flatten_like(s, g))
        return out
    if isinstance(structure, dict):
        out = []
        for key in structure:
            out.extend(_flatten_like(structure[key],
                                     grads.get(key) if isinstance(grads, dict) else None))
        return out
    return [grads]


def layer_primitive(layer, args, kwargs, training):
    """Call hand-written `layer` on traced (boxed) arguments as one autograd primitive."""
    structure = [list(args), kwargs]
    leaves = flatten(structure)
    weights = [w._current() for w in _prim_variables(layer)]
    stash = _get("stash", None)
    if stash is None:
        stash = _state.stash = []
    n0 = len(stash)
    res = _layer_call(layer, structure, len(leaves), training, *leaves, *weights)
    if len(stash) > n0:
        stash.pop()   # no box reached the primitive: nothing will ask for its VJP
    out, seq, losses, named = _state.last
    coll = loss_collector()
    if coll is not None:
        for l in losses:
            coll.append((l, None, True))
        for name, v in named.items():
            coll.append((v, name, False))
    if seq:
        n = len(flatten(out))
        return _unflatten(out, [res[i] for i in range(n)])
    return res
