"""Keras 3's ``keras.ops`` with the same names, arguments, defaults and dtype rules, in three modes.

One definition per op serves:

* **eager** -- NumPy arrays in, NumPy arrays out, computed by NumPy (a type test, then the NumPy
  call);
* **symbolic** -- any argument a :class:`KerasTensor`: the op's shape rule gives the output shape
  and dtype, or raises :class:`attnlstm.ShapeError` naming the custom layer being built, the op,
  every argument's shape and what must agree, with a hint. The rules follow NumPy broadcasting
  and also track the *batch axis*: a broadcast (or contraction) that lines one operand's samples
  up with a non-batch axis of another is an error -- e.g. a Bahdanau score
  ``(None, 12, 6) + (None, 1, 12, 6)`` after ``expand_dims`` of a 3-D query, which Keras computes
  silently by mixing samples. Outside a layer's ``call`` (functional code such as ``x + inputs``
  at model level) the op becomes a node of the model graph, so the model runs and trains
  through it;
* **training** -- inside a layer's ``call`` traced for gradients, arguments are `autograd
  <https://github.com/HIPS/autograd>`_ boxes and the ops record themselves for reverse mode,
  so any ``call`` written with these ops and Python operators trains with no hand-written
  backward.

Dtype rules (Keras 3's ``result_type`` with floatx float32): a Python float with an integer
tensor gives float32; float ops (``exp``, ``sqrt``, ``mean``, ``softmax``, ...) on integer
tensors compute in float32; ``argmax``/``argmin`` give int32.
"""
import builtins
import math

import numpy as np
import autograd.numpy as anp
from autograd.extend import defvjp, primitive
from autograd.numpy.numpy_boxes import ArrayBox
from autograd.tracer import Box, getval

from ._symbolic import (KerasTensor, Spec, current_layer, fmt_spec, node_factory, op_error,
                        spec_of)

__all__ = [
    "matmul", "dot", "einsum", "transpose", "reshape", "expand_dims", "squeeze", "concatenate",
    "stack", "split", "take", "where", "cast", "shape", "convert_to_tensor", "zeros", "ones",
    "zeros_like", "ones_like", "full_like", "arange", "sum", "mean", "max", "min", "argmax",
    "argmin", "softmax", "log_softmax", "sigmoid", "tanh", "relu", "gelu", "silu", "softplus",
    "exp", "log", "sqrt", "rsqrt", "square", "abs", "absolute", "sign", "maximum", "minimum",
    "clip", "add", "subtract", "multiply", "divide", "true_divide", "floor_divide", "mod",
    "power", "negative", "logsumexp", "cumsum", "repeat", "tile", "pad", "broadcast_to",
    "one_hot", "normalize", "erf", "triu", "tril", "stop_gradient", "equal", "not_equal",
    "less", "less_equal", "greater", "greater_equal", "logical_and", "logical_or",
    "logical_not", "get_item", "is_tensor", "ndim", "size", "any", "all",
]

_ND = np.ndarray
_SCALARS = (int, float, bool)
_STATIC = (int, float, bool, str, type(None))   # keyword values that are never tensors


# ---------------------------------------------------------------------------------------------
# Dispatch: symbolic, eager (NumPy) or traced (autograd boxes)


def _is_sym(x):
    t = type(x)
    if t is KerasTensor:
        return True
    if t is list or t is tuple:
        return builtins.any(_is_sym(v) for v in x)
    return False


def _resolve(x):
    """Variables -> their current value (an autograd box while a layer is traced)."""
    t = type(x)
    if t is _ND:
        return x
    if t is list or t is tuple:
        return t(_resolve(v) for v in x)
    if getattr(t, "_is_variable", False):
        return x._current()
    return x


def _symbolic(name, op, args, kwargs, rule):
    """Run `rule` on the arguments' specs; KerasTensor(s) out (or a graph node at model level)."""
    out = rule(*args, **kwargs)
    factory = node_factory()
    if current_layer() is None and factory is not None:
        return factory(name, op, args, kwargs, out)
    return _make_kt(out, name)


def _make_kt(out, name):
    if isinstance(out, Spec):
        return KerasTensor(out.shape, out.dtype, name=name, batch_axis=out.batch)
    return [_make_kt(o, name) for o in out]


def _op(name, rule):
    """Decorator: the wrapped function is the eager/traced implementation; KerasTensor
    arguments go to `rule` instead, Variables are resolved to their (traced) values."""
    def wrap(impl):
        def op(*args, **kwargs):
            # one type test per argument on the eager path (arrays and numbers go straight on)
            plain = True
            for a in args:
                t = type(a)
                if t is not _ND and t not in _SCALARS:
                    plain = False
                    break
            if plain:
                if not kwargs:
                    return impl(*args)
                for v in kwargs.values():
                    if type(v) not in _STATIC:
                        break
                else:
                    return impl(*args, **kwargs)
            new = list(args)
            for i, a in enumerate(args):
                t = type(a)
                if t is KerasTensor:
                    return _symbolic(name, op, args, kwargs, rule)
                if getattr(t, "_is_variable", False):
                    new[i] = a._current()
                elif t is list or t is tuple:
                    if _is_sym(a):
                        return _symbolic(name, op, args, kwargs, rule)
                    new[i] = _resolve(a)
            if kwargs:
                if _is_sym(tuple(kwargs.values())):
                    return _symbolic(name, op, args, kwargs, rule)
                kwargs = {k: _resolve(v) for k, v in kwargs.items()}
            return impl(*new, **kwargs)
        op.__name__ = op.__qualname__ = name
        op.__doc__ = impl.__doc__
        op.__wrapped__ = impl
        op._rule = rule
        return op
    return wrap


def _dt(x):
    """dtype of an array, box or NumPy scalar; None for a Python number (weakly typed)."""
    if type(x) in _SCALARS:
        return None
    v = getval(x)
    return getattr(v, "dtype", None)


def _fix(out, *args):
    """Keras' result dtype where NumPy's differs: a Python float with integer tensors gives
    float32 (NumPy: float64); a Python int with int32 stays int32."""
    dt = getattr(getval(out), "dtype", None)
    if dt is None:
        return out
    if dt == np.float64 or dt == np.int64:
        if not builtins.any(_dt(a) is not None and _dt(a) == dt for a in args):
            return out.astype(np.float32 if dt == np.float64 else np.int32)
    return out


def _float(x):
    """x as a float array for a float op (integers and bools -> float32, Keras' floatx)."""
    if type(x) is _ND:
        return x if x.dtype.kind == "f" else x.astype(np.float32)
    if isinstance(x, Box):
        return x if getval(x).dtype.kind == "f" else x.astype(np.float32)
    a = np.asarray(x)
    if a.dtype.kind != "f":
        return a.astype(np.float32)
    if not isinstance(x, (np.ndarray, np.generic)) and a.dtype == np.float64:
        return a.astype(np.float32)
    return a


def _array(x):
    """x as an array (lists and Python numbers as Keras: float32 / int32)."""
    if type(x) is _ND or isinstance(x, Box):
        return x
    a = np.asarray(x)
    if not isinstance(x, (np.ndarray, np.generic)):
        if a.dtype == np.float64:
            a = a.astype(np.float32)
        elif a.dtype == np.int64:
            a = a.astype(np.int32)
    return a


# ---------------------------------------------------------------------------------------------
# Shape rules


def _names(n):
    return [f"x{i + 1}" for i in range(n)]


def _describe(pairs):
    return ", ".join(f"{n} {fmt_spec(s)}" for n, s in pairs)


def _axis(op, arg, axis, ndim, spec, argname="x"):
    a = int(axis)
    if not -ndim <= a < builtins.max(ndim, 1) or (ndim == 0 and a not in (0, -1)):
        raise op_error(op, argname, spec.shape,
                       f"`{arg}`={axis} is out of range for {argname} {fmt_spec(spec)} "
                       f"({ndim} axes).",
                       hint=f"valid axes are {-ndim}..{ndim - 1}.")
    return a % ndim if ndim else 0


def _broadcast(op, pairs, hint=None):
    """NumPy broadcasting of the named specs, with the batch axis tracked. Returns (shape,
    batch) or raises ShapeError."""
    nd = builtins.max([len(s.shape) for _, s in pairs] or [0])
    batch_pos, owner = None, None
    for n, s in pairs:
        if s.batch is not None:
            p = nd - len(s.shape) + s.batch
            if batch_pos is None:
                batch_pos, owner = p, (n, s)
            elif p != batch_pos:
                on, os_ = owner
                lo, hi = (owner, (n, s)) if len(os_.shape) <= len(s.shape) else ((n, s), owner)

                def meets(who_, sp, pos):
                    j = pos - (nd - len(sp.shape))
                    if j < 0:
                        return f"no axis of {who_}"
                    d = sp.shape[j]
                    return f"axis {j} of {who_} (size {'None' if d is None else d})"
                raise op_error(
                    op, n, s.shape,
                    f"{_describe(pairs)}: broadcasting lines up the batch axis of {on} (axis "
                    f"{os_.batch}) with {meets(n, s, batch_pos)}, and the batch axis of {n} "
                    f"(axis {s.batch}) with {meets(on, os_, p)}: samples would be mixed.",
                    hint=hint or (f"{lo[0]} has {len(lo[1].shape)} axes and {hi[0]} has "
                                  f"{len(hi[1].shape)}; an extra axis (e.g. from expand_dims) "
                                  f"shifts the batch axis. Give both the same rank with the "
                                  f"batch axis first."))
    out = []
    for i in range(nd):
        sizes = []
        for n, s in pairs:
            j = i - (nd - len(s.shape))
            if j >= 0:
                sizes.append((n, s, j, s.shape[j]))
        known = {d for _, _, _, d in sizes if d is not None and d != 1}
        if len(known) > 1:
            raise op_error(op, sizes[-1][0], sizes[-1][1].shape,
                           f"cannot broadcast {_describe(pairs)}: sizes "
                           f"{sorted(known)} meet at output axis {i} "
                           f"({', '.join(f'{n} axis {j}' for n, _, j, d in sizes if d not in (None, 1))}).",
                           hint=hint or "sizes must be equal or 1 on every axis, aligned from the "
                                        "last axis; check the axis order (transpose) or add an "
                                        "axis of size 1 (expand_dims).")
        if i == batch_pos:
            for n, s, j, d in sizes:
                if s.batch is None and d is not None and d != 1:
                    on, os_ = owner
                    raise op_error(
                        op, n, s.shape,
                        f"{_describe(pairs)}: the batch axis of {on} lines up with axis {j} "
                        f"(size {d}) of {n}, which is not a batch axis.",
                        hint=hint or f"{n} would need one entry per sample; broadcast it over "
                                     f"the batch with a leading axis of size 1, e.g. "
                                     f"expand_dims({n}, 0).")
        if known:
            out.append(known.pop())
        elif builtins.any(d is None for _, _, _, d in sizes):
            out.append(None)
        else:
            out.append(1)
    return tuple(out), batch_pos


def _result_dtype(specs):
    """Keras 3's result_type for the specs (weak Python numbers, floatx float32)."""
    strong = [np.dtype(s.dtype) for s in specs if not s.weak]
    weak = [s.dtype for s in specs if s.weak]
    floats = [d for d in strong if d.kind == "f"]
    if floats:
        return np.result_type(*floats).name
    if "float32" in weak:
        return "float32"
    if strong:
        return np.result_type(*strong).name
    return "int32" if "int32" in weak else ("bool" if weak else "float32")


def _float_dtype(spec):
    return spec.dtype if np.dtype(spec.dtype).kind == "f" else "float32"


def _rule_elementwise(*names):
    def rule(*args, **kwargs):
        args = args[:len(names)]
        pairs = [(n, spec_of(a)) for n, a in zip(names, args)]
        shape, batch = _broadcast(rule.op, pairs)
        return Spec(shape, _result_dtype([s for _, s in pairs]), batch)
    return rule


def _rule_unary_float(x, *args, **kwargs):
    s = spec_of(x)
    return Spec(s.shape, _float_dtype(s), s.batch)


def _rule_unary_same(x, *args, **kwargs):
    s = spec_of(x)
    return Spec(s.shape, s.dtype, s.batch)


def _rule_compare(*names):
    base = _rule_elementwise(*names)

    def rule(*args, **kwargs):
        base.op = rule.op
        s = base(*args)
        return Spec(s.shape, "bool", s.batch)
    return rule


def _reduced(op, x, axis, keepdims, dtype=None):
    s = spec_of(x)
    nd = len(s.shape)
    if axis is None:
        axes = set(range(nd))
    else:
        axes = {_axis(op, "axis", a, nd, s) for a in (axis if isinstance(axis, (tuple, list))
                                                      else (axis,))}
    shape, batch, k = [], None, 0
    for i, d in enumerate(s.shape):
        if i in axes:
            if keepdims:
                shape.append(1)
                k += 1
            continue
        if i == s.batch:
            batch = k
        shape.append(d)
        k += 1
    return Spec(tuple(shape), dtype or s.dtype, batch)


def _rule_reduce(dtype_fn):
    def rule(x, axis=None, keepdims=False, **kwargs):
        s = spec_of(x)
        return _reduced(rule.op, x, axis, keepdims, dtype_fn(s))
    return rule


def _rule_arg_reduce(x, axis=None, keepdims=False):
    s = spec_of(x)
    if axis is None:
        return Spec((1,) * len(s.shape) if keepdims else (), "int32", None)
    return _reduced(_rule_arg_reduce.op, x, axis, keepdims, "int32")


def _matmul_rule(x1, x2):
    op = "matmul"
    a, b = spec_of(x1), spec_of(x2)
    pairs = [("x1", a), ("x2", b)]
    if not a.shape or not b.shape:
        raise op_error(op, "x1" if not a.shape else "x2", (a if not a.shape else b).shape,
                       f"{_describe(pairs)}: matmul needs at least one axis on each side.",
                       hint="use ops.multiply for a product with a scalar.")
    a1, b1 = len(a.shape) == 1, len(b.shape) == 1
    ash = (1,) + a.shape if a1 else a.shape
    bsh = b.shape + (1,) if b1 else b.shape
    ab = None if a.batch is None else a.batch + (1 if a1 else 0)
    bb = b.batch
    k1, k2 = ash[-1], bsh[-2]
    if k1 is not None and k2 is not None and k1 != k2:
        hint = None
        if bsh[-1] == k1 and len(bsh) == 2:
            hint = "x2 looks transposed: ops.matmul(x1, ops.transpose(x2))."
        elif ash[-2] == k2:
            hint = "x1 looks transposed: swap its last two axes with ops.transpose."
        raise op_error(op, "x2", b.shape,
                       f"{_describe(pairs)}: the last axis of x1 ({k1}) must equal the "
                       f"second-to-last axis of x2 ({k2}).",
                       hint=hint or "matmul contracts x1's last axis with x2's second-to-last.")
    na, nb = len(ash), len(bsh)
    if ab == na - 1 or bb == nb - 2:
        partner_batch = (ab == na - 1) and (bb == nb - 2)
        if not partner_batch:
            who_ = "x1" if ab == na - 1 else "x2"
            raise op_error(op, who_, (a if who_ == "x1" else b).shape,
                           f"{_describe(pairs)}: the contracted axis of {who_} is its batch "
                           f"axis, summed against a non-batch axis of the other operand: "
                           f"samples would be mixed.",
                           hint="transpose so the batch axis is first, or use ops.einsum with "
                                "the batch letter on both operands and in the output.")
    # leading (stacked) axes broadcast like elementwise ops
    la = Spec(ash[:-2], a.dtype, ab if (ab is not None and ab < na - 2) else None)
    lb = Spec(bsh[:-2], b.dtype, bb if (bb is not None and bb < nb - 2) else None)
    lead, lbatch = _broadcast(op, [("x1", la), ("x2", lb)])
    if ab == na - 2 and bb == nb - 1:
        raise op_error(op, "x2", b.shape,
                       f"{_describe(pairs)}: the batch axes of x1 (rows) and x2 (columns) would "
                       f"both be output axes: every sample of x1 meets every sample of x2.",
                       hint="transpose x2 so its batch axis is first (a batched matmul).")
    if lbatch is not None and (ab == na - 2 or bb == nb - 1):
        raise op_error(op, "x1", a.shape,
                       f"{_describe(pairs)}: one operand's batch axis is a matrix axis while the "
                       f"other's is a stacked axis: samples would be mixed.",
                       hint="give both operands the batch axis first.")
    shape = list(lead) + [ash[-2], bsh[-1]]
    batch = lbatch
    if ab == na - 2:
        batch = len(lead)
    elif bb == nb - 1:
        batch = len(lead) + 1
    if b1:
        shape.pop()
    if a1:
        shape.pop(-2 if not b1 else -1)
        if batch is not None and batch >= len(shape):
            batch = None
    if ab == na - 1 and bb == nb - 2:
        batch = lbatch
    return Spec(tuple(shape), _result_dtype([a, b]), batch)


def _dot_rule(x1, x2):
    a, b = spec_of(x1), spec_of(x2)
    if not a.shape or not b.shape:
        s, other = (a, b) if not a.shape else (b, a)
        return Spec(other.shape, _result_dtype([a, b]), other.batch)
    pairs = [("x1", a), ("x2", b)]
    kb = -2 if len(b.shape) >= 2 else -1
    k1, k2 = a.shape[-1], b.shape[kb]
    if k1 is not None and k2 is not None and k1 != k2:
        raise op_error("dot", "x2", b.shape,
                       f"{_describe(pairs)}: the last axis of x1 ({k1}) must equal axis "
                       f"{len(b.shape) + kb} of x2 ({k2}).",
                       hint="dot contracts x1's last axis with x2's second-to-last (or only) axis.")
    if a.batch is not None and b.batch is not None and len(b.shape) > 1 and \
            not (a.batch == len(a.shape) - 1 and b.batch == len(b.shape) + kb):
        raise op_error("dot", "x2", b.shape,
                       f"{_describe(pairs)}: both operands have a batch axis, and dot pairs every "
                       f"sample of x1 with every sample of x2 (its output has both axes).",
                       hint="for one product per sample use ops.matmul (batched) or ops.einsum.")
    for who_, s, kax in (("x1", a, len(a.shape) - 1), ("x2", b, len(b.shape) + kb)):
        if s.batch == kax and not (a.batch == len(a.shape) - 1 and b.batch == len(b.shape) + kb):
            raise op_error("dot", who_, s.shape,
                           f"{_describe(pairs)}: the contracted axis of {who_} is its batch axis: "
                           f"samples would be mixed.", hint="transpose so the batch axis is first.")
    bshape = list(b.shape)
    del bshape[kb]
    shape = list(a.shape[:-1]) + bshape
    batch = None
    if a.batch is not None and a.batch < len(a.shape) - 1:
        batch = a.batch
    elif b.batch is not None and b.batch != len(b.shape) + kb:
        bb = b.batch if b.batch < len(b.shape) + kb else b.batch - 1
        batch = len(a.shape) - 1 + bb
    return Spec(tuple(shape), _result_dtype([a, b]), batch)


def _parse_einsum(subscripts, specs):
    s = subscripts.replace(" ", "")
    if "->" in s:
        lhs, out = s.split("->")
        explicit = True
    else:
        lhs, out, explicit = s, None, False
    terms = lhs.split(",")
    if len(terms) != len(specs):
        raise op_error("einsum", "subscripts", tuple(len(sp.shape) for sp in specs),
                       f"'{subscripts}' names {len(terms)} operand(s) but {len(specs)} were given.")
    if not explicit:
        letters = [c for t in terms for c in t if c.isalpha()]
        out = ("..." if builtins.any("..." in t for t in terms) else "") + \
            "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    return terms, out


def _einsum_rule(subscripts, *operands):
    op = "einsum"
    specs = [spec_of(o) for o in operands]
    names = _names(len(specs))
    pairs = list(zip(names, specs))
    terms, out = _parse_einsum(subscripts, specs)
    size, where_, batch_letter = {}, {}, {}
    ell = []
    for n, t, sp in zip(names, terms, specs):
        letters = t.replace("...", "")
        n_ell = len(sp.shape) - len(letters)
        if n_ell < 0 or (n_ell > 0 and "..." not in t):
            raise op_error(op, n, sp.shape,
                           f"'{subscripts}': term '{t}' has {len(letters)} letters but {n} "
                           f"{fmt_spec(sp)} has {len(sp.shape)} axes.",
                           hint="one letter per axis (or '...' for the leading axes).")
        axes = []
        head, _, tail = t.partition("...") if "..." in t else (t, "", "")
        for k, c in enumerate(head):
            axes.append((c, k))
        ell_axes = list(range(len(head), len(head) + n_ell))
        for k, c in enumerate(tail):
            axes.append((c, len(head) + n_ell + k))
        ell.append(Spec(tuple(sp.shape[i] for i in ell_axes), sp.dtype,
                        (sp.batch - len(head)) if (sp.batch is not None and sp.batch in ell_axes)
                        else None))
        for c, ax in axes:
            d = sp.shape[ax]
            if c in size and size[c][0] is not None and d is not None and size[c][0] != d \
                    and d != 1 and size[c][0] != 1:
                pn, pax = size[c][1], size[c][2]
                raise op_error(op, n, sp.shape,
                               f"'{subscripts}': {_describe(pairs)}: letter '{c}' is size "
                               f"{size[c][0]} on {pn} (axis {pax}) but {d} on {n} (axis {ax}).",
                               hint="operands must agree on the size of every shared letter.")
            if c not in size or size[c][0] in (None, 1):
                size[c] = (d, n, ax) if (c not in size or d is not None) else size[c]
            where_.setdefault(c, []).append((n, sp, ax))
            if sp.batch == ax:
                batch_letter.setdefault(c, []).append(n)
    # the batch axis must meet only batch axes (or size-1 axes of batchless operands)
    for c, owners in batch_letter.items():
        for n, sp, ax in where_[c]:
            if sp.batch != ax and not (sp.batch is None and sp.shape[ax] == 1):
                raise op_error(op, n, sp.shape,
                               f"'{subscripts}': {_describe(pairs)}: letter '{c}' is the batch "
                               f"axis of {owners[0]} but axis {ax} of {n}, which is not a batch "
                               f"axis: samples would be mixed.",
                               hint=f"use a letter of its own for the batch axis of every "
                                    f"operand, e.g. 'b' first in each term and in the output.")
    if len(batch_letter) > 1:
        raise op_error(op, names[0], specs[0].shape,
                       f"'{subscripts}': {_describe(pairs)}: the operands' batch axes carry "
                       f"different letters {sorted(batch_letter)}: every sample would meet every "
                       f"other.", hint="use the same letter for the batch axis of each operand.")
    ell_shape, ell_batch = _broadcast(op, [(n, e) for n, e in zip(names, ell)]) \
        if builtins.any(e.shape for e in ell) else ((), None)
    if ell_batch is not None and batch_letter:
        raise op_error(op, names[0], specs[0].shape,
                       f"'{subscripts}': {_describe(pairs)}: one operand's batch axis is under "
                       f"'...' and another's is a letter.", hint="spell the batch axis the same "
                                                                 "way in every term.")
    shape, batch = [], None
    head, _, tail = out.partition("...") if "..." in out else (out, "", "")
    for c in head + ("." if "..." in out else "") + tail:
        if c == ".":       # the ellipsis' axes
            if ell_batch is not None:
                batch = len(shape) + ell_batch
            shape.extend(ell_shape)
            continue
        if c not in size:
            raise op_error(op, "subscripts", None, f"'{subscripts}': output letter '{c}' "
                                                   f"appears in no operand.")
        if c in batch_letter:
            batch = len(shape)
        shape.append(size[c][0])
    return Spec(tuple(shape), _result_dtype(specs), batch)


def _reshape_rule(x, newshape):
    op = "reshape"
    s = spec_of(x)
    newshape = (newshape,) if isinstance(newshape, (int, np.integer)) or newshape is None \
        else tuple(newshape)
    newshape = tuple(None if (d is None or type(d) is UnknownDim or _is_sym(d)) else int(d)
                     for d in newshape)
    if builtins.sum(1 for d in newshape if d == -1) > 1:
        raise op_error(op, "newshape", newshape, f"`newshape` {newshape} has more than one -1.")
    # the batch axis (unknown size) maps to a None or -1 in the same leading position
    known_in = [d for i, d in enumerate(s.shape) if i != s.batch]
    unknown_in = builtins.any(d is None for d in known_in)
    batch = None
    n_in = 1
    for d in known_in:
        n_in *= d if d is not None else 1
    rest = list(newshape)
    if s.batch == 0 and newshape and (newshape[0] is None or newshape[0] == -1 or
                                       newshape[0] == s.shape[0]):
        batch = 0
        lead = rest.pop(0) if newshape[0] in (None,) else None
        if newshape[0] == -1 and builtins.any(d is None for d in newshape[1:]):
            lead = None
        if lead is None and newshape[0] == -1:
            rest = list(newshape[1:])
    elif s.batch is not None and s.shape[s.batch] is None:
        raise op_error(op, "newshape", newshape,
                       f"x {fmt_spec(s)} to `newshape` {newshape}: the batch axis of x is not "
                       f"kept as the first axis.",
                       hint="keep the batch axis first, e.g. reshape(x, (-1, ...)) or "
                            "reshape(x, (ops.shape(x)[0], ...)).")
    n_out = 1
    for d in rest:
        if d not in (None, -1):
            n_out *= d
    out = list(newshape)
    has_wild = builtins.any(d in (None, -1) for d in rest)
    if not unknown_in and (s.batch is None or batch == 0):
        if not has_wild and n_in != n_out:
            raise op_error(op, "newshape", newshape,
                           f"cannot reshape x {fmt_spec(s)} ({n_in} values per sample) to "
                           f"{newshape} ({n_out} per sample).",
                           hint="the sizes after the batch axis must multiply to the same total.")
        if has_wild and n_out and n_in % n_out:
            raise op_error(op, "newshape", newshape,
                           f"cannot reshape x {fmt_spec(s)} ({n_in} values per sample) to "
                           f"{newshape}: {n_in} is not a multiple of {n_out}.",
                           hint="the known sizes must divide the number of values.")
        if builtins.sum(1 for d in rest if d in (None, -1)) == 1:
            fill = n_in // n_out if n_out else 0
            for i in range(len(out)):
                if out[i] in (None, -1) and not (i == 0 and batch == 0):
                    out[i] = fill
    out = [None if d == -1 else d for d in out]
    if batch == 0 and s.shape and s.shape[0] is not None:
        out[0] = s.shape[0]
    return Spec(tuple(out), s.dtype, batch)


def _transpose_rule(x, axes=None):
    s = spec_of(x)
    nd = len(s.shape)
    axes = tuple(range(nd))[::-1] if axes is None else tuple(_axis("transpose", "axes", a, nd, s)
                                                             for a in axes)
    if sorted(axes) != list(range(nd)):
        raise op_error("transpose", "axes", s.shape,
                       f"`axes`={axes} is not a permutation of the {nd} axes of x {fmt_spec(s)}.")
    batch = axes.index(s.batch) if s.batch is not None else None
    return Spec(tuple(s.shape[a] for a in axes), s.dtype, batch)


def _expand_rule(x, axis):
    s = spec_of(x)
    nd = len(s.shape)
    axs = axis if isinstance(axis, (tuple, list)) else (axis,)
    n_out = nd + len(axs)
    axs = sorted(_axis("expand_dims", "axis", a, n_out, Spec((None,) * n_out, s.dtype))
                 for a in axs)
    shape, batch = list(s.shape), s.batch
    for a in axs:
        shape.insert(a, 1)
        if batch is not None and a <= batch:
            batch += 1
    return Spec(tuple(shape), s.dtype, batch)


def _squeeze_rule(x, axis=None):
    s = spec_of(x)
    nd = len(s.shape)
    if axis is None:
        axs = {i for i, d in enumerate(s.shape) if d == 1}
    else:
        axs = {_axis("squeeze", "axis", a, nd, s)
               for a in (axis if isinstance(axis, (tuple, list)) else (axis,))}
        for a in axs:
            if s.shape[a] not in (1, None) or (s.shape[a] is None and a == s.batch):
                raise op_error("squeeze", "axis", s.shape,
                               f"cannot squeeze axis {a} of x {fmt_spec(s)}: its size is "
                               f"{'the batch size' if a == s.batch else s.shape[a]}, not 1.",
                               hint="only axes of size 1 can be squeezed.")
    shape, batch = [], None
    for i, d in enumerate(s.shape):
        if i in axs:
            continue
        if i == s.batch:
            batch = len(shape)
        shape.append(d if d is not None or i == s.batch else 1)
    return Spec(tuple(shape), s.dtype, batch)


def _list_specs(op, arg, xs):
    """(specs, [(name, spec)], rank of the first) of a list argument of one or more tensors."""
    specs = [spec_of(x) for x in xs]
    if not specs:
        raise op_error(op, arg, (), "needs at least one tensor.")
    return specs, [(f"{arg}[{i}]", sp) for i, sp in enumerate(specs)], len(specs[0].shape)


def _concat_rule(xs, axis=0):
    op = "concatenate"
    specs, pairs, nd = _list_specs(op, "xs", xs)
    for n, sp in pairs:
        if len(sp.shape) != nd:
            raise op_error(op, n, sp.shape, f"{_describe(pairs)}: all tensors must have the "
                                            f"same number of axes.",
                           hint="add or remove axes (expand_dims / squeeze) first.")
    ax = _axis(op, "axis", axis, nd, specs[0], "xs[0]")
    batches = {sp.batch for sp in specs if sp.batch is not None}
    if len(batches) > 1:
        raise op_error(op, "xs", specs[0].shape, f"{_describe(pairs)}: the batch axes differ.",
                       hint="transpose so every tensor has its batch axis in the same place.")
    batch = batches.pop() if batches else None
    shape = []
    for i in range(nd):
        ds = [sp.shape[i] for sp in specs]
        if i == ax:
            shape.append(None if builtins.any(d is None for d in ds) else builtins.sum(ds))
            continue
        known = {d for d in ds if d is not None}
        if len(known) > 1:
            raise op_error(op, "xs", tuple(ds),
                           f"{_describe(pairs)}: all axes except axis {ax} must match; axis {i} "
                           f"has sizes {ds}.",
                           hint=f"concatenate joins along `axis`={axis}; check which axis you "
                                f"meant (features are axis -1).")
        shape.append(known.pop() if known else None)
    return Spec(tuple(shape), _result_dtype(specs), batch)


def _stack_rule(x, axis=0):
    op = "stack"
    specs, pairs, nd = _list_specs(op, "x", x)
    for sp in specs:
        if len(sp.shape) != nd or builtins.any(
                a is not None and b is not None and a != b for a, b in zip(sp.shape, specs[0].shape)):
            raise op_error(op, "x", sp.shape, f"{_describe(pairs)}: all tensors must have the "
                                              f"same shape.")
    ax = _axis(op, "axis", axis, nd + 1, Spec((None,) * (nd + 1), specs[0].dtype), "x")
    batches = {sp.batch for sp in specs if sp.batch is not None}
    if len(batches) > 1:
        raise op_error(op, "x", specs[0].shape, f"{_describe(pairs)}: the batch axes differ.")
    shape = [None if builtins.any(sp.shape[i] is None for sp in specs) else specs[0].shape[i]
             for i in range(nd)]
    shape.insert(ax, len(specs))
    batch = batches.pop() if batches else None
    if batch is not None and ax <= batch:
        batch += 1
    return Spec(tuple(shape), _result_dtype(specs), batch)


def _split_rule(x, indices_or_sections, axis=0):
    s = spec_of(x)
    ax = _axis("split", "axis", axis, len(s.shape), s)
    n = s.shape[ax]
    if isinstance(indices_or_sections, (int, np.integer)):
        k = int(indices_or_sections)
        if n is not None and n % k:
            raise op_error("split", "indices_or_sections", s.shape,
                           f"x {fmt_spec(s)}: axis {ax} of size {n} does not split into {k} "
                           f"equal parts.", hint="pass split points, e.g. [a, b], instead.")
        sizes = [None if n is None else n // k] * k
    else:
        pts = [0] + [int(p) for p in indices_or_sections] + [n]
        sizes = [None if (b is None) else builtins.max(0, b - a) for a, b in zip(pts[:-1], pts[1:])]
    out = []
    for d in sizes:
        shp = list(s.shape)
        shp[ax] = d
        out.append(Spec(tuple(shp), s.dtype, s.batch))
    return out


def _take_rule(x, indices, axis=None):
    s, i = spec_of(x), spec_of(indices)
    if axis is None:
        return Spec(i.shape, s.dtype, i.batch)
    ax = _axis("take", "axis", axis, len(s.shape), s)
    if ax == s.batch and i.batch is None:
        batch = None
    else:
        batch = s.batch
    shape = s.shape[:ax] + i.shape + s.shape[ax + 1:]
    if s.batch is not None and s.batch != ax:
        batch = s.batch if s.batch < ax else s.batch - 1 + len(i.shape)
    elif i.batch is not None:
        if s.batch is not None and s.batch != ax:
            raise op_error("take", "indices", i.shape, f"x {fmt_spec(s)} and indices "
                                                       f"{fmt_spec(i)} both have a batch axis.")
        batch = ax + i.batch
    return Spec(shape, s.dtype, batch)


def _where_rule(condition, x1=None, x2=None):
    if x1 is None and x2 is None:
        c = spec_of(condition)
        return [Spec((None,), "int32", None) for _ in c.shape]
    pairs = [("condition", spec_of(condition)), ("x1", spec_of(x1)), ("x2", spec_of(x2))]
    shape, batch = _broadcast("where", pairs)
    return Spec(shape, _result_dtype([pairs[1][1], pairs[2][1]]), batch)


def _clip_rule(x, x_min, x_max):
    pairs = [("x", spec_of(x)), ("x_min", spec_of(x_min)), ("x_max", spec_of(x_max))]
    shape, batch = _broadcast("clip", pairs)
    s = pairs[0][1]
    return Spec(shape, "int32" if s.dtype == "bool" else s.dtype, batch)


def _repeat_rule(x, repeats, axis=None):
    s = spec_of(x)
    if axis is None:
        n = 1
        for d in s.shape:
            n = None if (n is None or d is None) else n * d
        r = repeats if isinstance(repeats, (int, np.integer)) else None
        return Spec((None if n is None or r is None else n * r,), s.dtype, None)
    ax = _axis("repeat", "axis", axis, len(s.shape), s)
    shp = list(s.shape)
    if isinstance(repeats, (int, np.integer)):
        shp[ax] = None if shp[ax] is None else shp[ax] * int(repeats)
    else:
        shp[ax] = int(np.sum(repeats))
    return Spec(tuple(shp), s.dtype, s.batch)


def _tile_rule(x, repeats):
    s = spec_of(x)
    reps = (repeats,) if isinstance(repeats, (int, np.integer)) else tuple(repeats)
    nd = builtins.max(len(s.shape), len(reps))
    shp = (1,) * (nd - len(s.shape)) + s.shape
    reps = (1,) * (nd - len(reps)) + reps
    batch = None if s.batch is None else s.batch + nd - len(s.shape)
    if batch is not None and reps[batch] != 1:
        raise op_error("tile", "repeats", s.shape,
                       f"x {fmt_spec(s)} with `repeats`={tuple(repeats) if not isinstance(repeats, int) else repeats}"
                       f": tiling the batch axis repeats whole batches (samples would be mixed).",
                       hint="tile the other axes; use 1 for the batch axis.")
    return Spec(tuple(None if d is None else d * int(r) for d, r in zip(shp, reps)), s.dtype, batch)


def _pad_rule(x, pad_width, mode="constant", constant_values=None):
    s = spec_of(x)
    pw = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (len(s.shape), 2))
    if s.batch is not None and (pw[s.batch] != 0).any():
        raise op_error("pad", "pad_width", s.shape,
                       f"x {fmt_spec(s)} with `pad_width`={pw.tolist()}: padding the batch axis "
                       f"adds fake samples.", hint="use [0, 0] for the batch axis.")
    shp = tuple(None if d is None else d + int(a) + int(b) for d, (a, b) in zip(s.shape, pw))
    return Spec(shp, s.dtype, s.batch)


def _broadcast_to_rule(x, shape):
    s = spec_of(x)
    target = tuple(None if (d is None or type(d) is UnknownDim) else int(d) for d in shape)
    nd = len(target)
    if nd < len(s.shape):
        raise op_error("broadcast_to", "shape", s.shape,
                       f"x {fmt_spec(s)} has more axes than `shape`={target}.")
    t = Spec(target, s.dtype, (s.batch + nd - len(s.shape)) if s.batch is not None else None)
    _broadcast("broadcast_to", [("x", s), ("shape", Spec(target, s.dtype, t.batch))])
    for i, (d, want) in enumerate(zip(s.shape, target[nd - len(s.shape):])):
        if d not in (None, 1) and want is not None and d != want:
            raise op_error("broadcast_to", "shape", s.shape,
                           f"cannot broadcast x {fmt_spec(s)} to {target}.")
    return t


def _one_hot_rule(x, num_classes, axis=-1, dtype=None, sparse=False):
    s = spec_of(x)
    nd = len(s.shape) + 1
    ax = axis % nd if -nd <= axis < nd else _axis("one_hot", "axis", axis, nd, s)
    shp = list(s.shape)
    shp.insert(ax, int(num_classes))
    batch = s.batch
    if batch is not None and ax <= batch:
        batch += 1
    return Spec(tuple(shp), dtype or "float32", batch)


def _getitem_rule(x, key):
    s = spec_of(x)
    key = key if isinstance(key, tuple) else (key,)
    n_real = builtins.sum(1 for k in key if k is not None and k is not Ellipsis)
    if builtins.sum(1 for k in key if k is Ellipsis) > 1:
        raise op_error("get_item", "key", s.shape, "an index can have only one Ellipsis (...).")
    if n_real > len(s.shape):
        raise op_error("get_item", "key", s.shape,
                       f"x {fmt_spec(s)} has {len(s.shape)} axes but the index has {n_real} "
                       f"entries.", hint="index at most one entry per axis.")
    full = []
    for k in key:
        if k is Ellipsis:
            full.extend([slice(None)] * (len(s.shape) - n_real))
        else:
            full.append(k)
    full.extend([slice(None)] * (len(s.shape) - builtins.sum(1 for k in full if k is not None)))
    shape, batch, ax = [], None, 0
    for k in full:
        if k is None:
            shape.append(1)
            continue
        d = s.shape[ax]
        if isinstance(k, (int, np.integer)):
            if d is not None and not -d <= int(k) < d:
                raise op_error("get_item", "key", s.shape,
                               f"index {int(k)} is out of range for axis {ax} of size {d} of "
                               f"x {fmt_spec(s)}.")
        elif isinstance(k, slice):
            if ax == s.batch:
                batch = len(shape)
            if d is None:
                shape.append(None)
            else:
                shape.append(len(range(*k.indices(d))))
        else:
            raise op_error("get_item", "key", s.shape,
                           f"x {fmt_spec(s)}: symbolic indexing takes ints, slices, None and "
                           f"..., got {type(k).__name__}.",
                           hint="use ops.take(x, indices, axis) to gather by an index array.")
        ax += 1
    return Spec(tuple(shape), s.dtype, batch)


def _cumsum_rule(x, axis=None, dtype=None):
    s = spec_of(x)
    if axis is None:
        n = 1
        for d in s.shape:
            n = None if (n is None or d is None) else n * d
        return Spec((n,), dtype or s.dtype, None)
    _axis("cumsum", "axis", axis, len(s.shape), s)
    return Spec(s.shape, dtype or s.dtype, s.batch)


def _matrix_rule(x, k=0):
    s = spec_of(x)
    if len(s.shape) < 2:
        raise op_error(_matrix_rule.op, "x", s.shape,
                       f"x {fmt_spec(s)} needs at least 2 axes (a matrix).")
    return Spec(s.shape, s.dtype, s.batch)


def _softmax_rule(x, axis=-1):
    s = spec_of(x)
    if s.shape:
        for a in (axis if isinstance(axis, (tuple, list)) else (axis,)):
            a = _axis(_softmax_rule.op, "axis", a, len(s.shape), s)
            if a == s.batch:
                raise op_error(_softmax_rule.op, "axis", s.shape,
                               f"x {fmt_spec(s)}: `axis`={axis} is the batch axis: the weights "
                               f"of each sample would depend on the other samples.",
                               hint="take the softmax over time (axis=1) or features (axis=-1).")
    return Spec(s.shape, _float_dtype(s), s.batch)


def _like_rule(x, *args, dtype=None, **kwargs):
    s = spec_of(x)
    return Spec(s.shape, dtype or s.dtype, s.batch)


def _full_like_rule(x, fill_value, dtype=None):
    s = spec_of(x)
    return Spec(s.shape, dtype or s.dtype, s.batch)


def _cast_rule(x, dtype):
    s = spec_of(x)
    return Spec(s.shape, np.dtype(dtype).name, s.batch)


def _creation_rule(shape, dtype=None):
    shape = (shape,) if isinstance(shape, (int, np.integer)) or shape is None else tuple(shape)
    shape = tuple(None if (d is None or type(d) is UnknownDim or _is_sym(d)) else int(d)
                  for d in shape)
    return Spec(shape, np.dtype(dtype or "float32").name, 0 if shape and shape[0] is None else None)


# ---------------------------------------------------------------------------------------------
# Elementwise binary ops


def _binary(name, np_fn, anp_fn):
    rule = _rule_elementwise("x1", "x2")
    rule.op = name

    def impl(x1, x2):
        if type(x1) is _ND and type(x2) is _ND:
            out = np_fn(x1, x2)
        else:
            out = anp_fn(x1, x2)
        if type(out) is _ND and out.dtype.kind == "f" and out.dtype != np.float64:
            return out
        return _fix(out, x1, x2)
    impl.__doc__ = (f"Elementwise ``{name}`` with NumPy broadcasting (``keras.ops.{name}``).\n\n"
                    "    Args:\n        x1, x2: tensors (or Python numbers).\n\n"
                    "    Returns:\n        The broadcast shape; dtype by Keras' result_type.\n\n"
                    "    Raises:\n        ShapeError: symbolic shapes that do not broadcast, or a "
                    "broadcast that lines the batch axis up with another axis.\n")
    return _op(name, rule)(impl)


add = _binary("add", np.add, anp.add)
subtract = _binary("subtract", np.subtract, anp.subtract)
multiply = _binary("multiply", np.multiply, anp.multiply)
maximum = _binary("maximum", np.maximum, anp.maximum)
minimum = _binary("minimum", np.minimum, anp.minimum)
floor_divide = _binary("floor_divide", np.floor_divide, anp.floor_divide)
mod = _binary("mod", np.mod, anp.mod)


def _div(x1, x2):
    x1 = _float(x1) if _dt(x1) is not None and _dt(x1).kind != "f" else x1
    x2 = _float(x2) if _dt(x2) is not None and _dt(x2).kind != "f" else x2
    return anp.true_divide(x1, x2)


divide = _binary("divide", np.true_divide, _div)
true_divide = _binary("true_divide", np.true_divide, _div)


def _pow(x1, x2):
    return anp.power(x1, x2)


power = _binary("power", np.power, _pow)

for _n, _f in (("equal", np.equal), ("not_equal", np.not_equal), ("less", np.less),
               ("less_equal", np.less_equal), ("greater", np.greater),
               ("greater_equal", np.greater_equal), ("logical_and", np.logical_and),
               ("logical_or", np.logical_or)):
    def _mk(n, f):
        rule = _rule_compare("x1", "x2")
        rule.op = n

        def impl(x1, x2):
            return f(getval(x1), getval(x2))
        impl.__doc__ = f"Elementwise ``{n}`` (``keras.ops.{n}``): a bool tensor, no gradient."
        return _op(n, rule)(impl)
    globals()[_n] = _mk(_n, _f)
del _n, _f, _mk


# ---------------------------------------------------------------------------------------------
# Elementwise unary ops


def _unary(name, np_fn, anp_fn, float_op=True, doc=""):
    rule = _rule_unary_float if float_op else _rule_unary_same

    def impl(x):
        if type(x) is _ND:
            if float_op and x.dtype.kind != "f":
                x = x.astype(np.float32)
            return np_fn(x)
        x = _float(x) if float_op else _array(x)
        return anp_fn(x)
    impl.__doc__ = (f"Elementwise ``{name}`` (``keras.ops.{name}``){doc}.\n\n"
                    "    Args:\n        x: a tensor.\n\n    Returns:\n        Same shape"
                    + ("; integer inputs give float32." if float_op else " and dtype.") + "\n")
    return _op(name, rule)(impl)


def _np_sigmoid(x):
    # 1 / (1 + exp(-x)) without overflow warnings: 0.5 * (1 + tanh(x / 2)).
    out = np.multiply(x, 0.5, dtype=x.dtype)
    np.tanh(out, out=out)
    out += 1
    out *= 0.5
    return out


def _a_sigmoid(x):
    return 0.5 * (anp.tanh(0.5 * x) + 1.0)


def _np_relu(x):
    return np.maximum(x, 0).astype(x.dtype, copy=False)


def _a_relu(x):
    return anp.where(x > 0, x, 0.0 * x)


def _a_softplus(x):
    return anp.logaddexp(x, 0.0 * x)


def _np_softplus(x):
    return np.logaddexp(x, np.zeros((), x.dtype))


def _a_silu(x):
    return x * _a_sigmoid(x)


def _np_silu(x):
    return x * _np_sigmoid(x)


def _a_rsqrt(x):
    return 1.0 / anp.sqrt(x)


def _np_rsqrt(x):
    return np.reciprocal(np.sqrt(x))


_erf_scalar = np.frompyfunc(math.erf, 1, 1)


@primitive
def _erf_p(x):
    return _erf_scalar(x).astype(x.dtype)


defvjp(_erf_p, lambda ans, x: lambda g: g * (2.0 / math.sqrt(math.pi)) * np.exp(-x * x))

sigmoid = _unary("sigmoid", _np_sigmoid, _a_sigmoid, doc=": ``1 / (1 + exp(-x))``")
tanh = _unary("tanh", np.tanh, anp.tanh)
relu = _unary("relu", _np_relu, _a_relu, float_op=False, doc=": ``max(x, 0)``")
silu = _unary("silu", _np_silu, _a_silu, doc=": ``x * sigmoid(x)``")
softplus = _unary("softplus", _np_softplus, _a_softplus, doc=": ``log(1 + exp(x))``")
exp = _unary("exp", np.exp, anp.exp)
log = _unary("log", np.log, anp.log)
sqrt = _unary("sqrt", np.sqrt, anp.sqrt)
rsqrt = _unary("rsqrt", _np_rsqrt, _a_rsqrt, doc=": ``1 / sqrt(x)``")
square = _unary("square", np.square, anp.square, float_op=False)
abs = absolute = _unary("abs", np.abs, anp.abs, float_op=False)
sign = _unary("sign", np.sign, anp.sign, float_op=False)
negative = _unary("negative", np.negative, anp.negative, float_op=False)
erf = _unary("erf", _erf_p, _erf_p, doc=": the error function")


def _logical_not_rule(x):
    s = spec_of(x)
    return Spec(s.shape, "bool", s.batch)


@_op("logical_not", _logical_not_rule)
def logical_not(x):
    """Elementwise logical not (``keras.ops.logical_not``): bool, no gradient."""
    return np.logical_not(getval(x))


def _gelu_rule(x, approximate=True):
    return _rule_unary_float(x)


@_op("gelu", _gelu_rule)
def gelu(x, approximate=True):
    """Gaussian error linear unit (``keras.ops.gelu``; Hendrycks & Gimpel 2016).

    ``approximate=True`` (Keras' default): ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``;
    else ``x * 0.5 * (1 + erf(x / sqrt(2)))``.
    """
    x = _float(x)
    if approximate:
        c = math.sqrt(2.0 / math.pi)
        if type(x) is _ND:
            dt = x.dtype.type
            return x * (dt(0.5) * (dt(1.0) + np.tanh(dt(c) * (x + dt(0.044715) * x ** 3))))
        return x * (0.5 * (1.0 + anp.tanh(c * (x + 0.044715 * x ** 3))))
    return x * 0.5 * (1.0 + _erf_p(x / math.sqrt(2.0)))


@_op("stop_gradient", _rule_unary_same)
def stop_gradient(variable):
    """The value of `variable` with no gradient through it (``keras.ops.stop_gradient``)."""
    return getval(variable)


def _clip_impl(x, x_min, x_max):
    if type(x) is _ND:
        out = np.clip(x, x_min, x_max)
        return out.astype(np.int32) if x.dtype == np.bool_ else out.astype(x.dtype, copy=False)
    return anp.clip(x, x_min, x_max)


clip = _op("clip", _clip_rule)(_clip_impl)
clip.__doc__ = """Clip values to ``[x_min, x_max]`` (``keras.ops.clip``); zero gradient outside."""
_clip_rule.op = "clip"


# ---------------------------------------------------------------------------------------------
# Products


@_op("matmul", _matmul_rule)
def matmul(x1, x2):
    """Matrix product with NumPy's ``matmul`` broadcasting (``keras.ops.matmul``).

    Args:
        x1: `(..., n, k)` (or `(k,)`).
        x2: `(..., k, m)` (or `(k,)`).

    Returns:
        `(..., n, m)`.

    Raises:
        ShapeError: ``k`` differs, leading axes that do not broadcast, or a contraction or
            broadcast that mixes samples (a batch axis against a non-batch axis).
    """
    if type(x1) is _ND and type(x2) is _ND:
        return np.matmul(x1, x2)
    return _fix(anp.matmul(_array(x1), _array(x2)), x1, x2)


@_op("dot", _dot_rule)
def dot(x1, x2):
    """NumPy's ``dot`` (``keras.ops.dot``): x1's last axis against x2's second-to-last."""
    if type(x1) is _ND and type(x2) is _ND:
        return np.dot(x1, x2)
    return _fix(anp.dot(_array(x1), _array(x2)), x1, x2)


def einsum(subscripts, *operands, **kwargs):
    """Einstein summation (``keras.ops.einsum``), e.g. ``einsum("bqd,bkd->bqk", q, k)``.

    Raises:
        ShapeError: symbolic operands whose sizes disagree on a letter, a term with the wrong
            number of letters, or a batch axis summed or paired with a non-batch axis.
    """
    if _is_sym(operands):
        return _symbolic("einsum", einsum, (subscripts,) + tuple(operands), kwargs, _einsum_rule)
    ops_ = _resolve(operands)
    if builtins.all(type(o) is _ND for o in ops_):
        return np.einsum(subscripts, *ops_, **kwargs)
    return _fix(anp.einsum(subscripts, *[_array(o) for o in ops_]), *ops_)


einsum._rule = _einsum_rule


# ---------------------------------------------------------------------------------------------
# Shapes


@_op("reshape", _reshape_rule)
def reshape(x, newshape):
    """Reshape (``keras.ops.reshape``); ``-1`` infers one size; ``None`` (e.g. a symbolic batch
    size from ``ops.shape(x)[0]``) keeps the batch axis.

    Raises:
        ShapeError: a total size that cannot match, or a reshape that moves the batch axis.
    """
    if not isinstance(newshape, (int, np.integer)):
        newshape = tuple(-1 if (d is None or type(d) is UnknownDim) else d for d in newshape)
    if type(x) is _ND:
        return np.reshape(x, newshape)
    return anp.reshape(_array(x), newshape)


@_op("transpose", _transpose_rule)
def transpose(x, axes=None):
    """Permute axes (``keras.ops.transpose``); default reverses them."""
    if type(x) is _ND:
        return np.transpose(x, axes)
    return anp.transpose(_array(x), axes)


@_op("expand_dims", _expand_rule)
def expand_dims(x, axis):
    """Insert an axis of size 1 at `axis` (``keras.ops.expand_dims``)."""
    if type(x) is _ND:
        return np.expand_dims(x, axis)
    return anp.expand_dims(_array(x), axis)


@_op("squeeze", _squeeze_rule)
def squeeze(x, axis=None):
    """Remove axes of size 1 (``keras.ops.squeeze``).

    Raises:
        ShapeError: squeezing an axis whose size is not 1.
    """
    if type(x) is _ND:
        return np.squeeze(x, axis)
    return anp.squeeze(_array(x), axis)


@_op("concatenate", _concat_rule)
def concatenate(xs, axis=0):
    """Join tensors along an existing axis (``keras.ops.concatenate``; default ``axis=0``).

    Raises:
        ShapeError: different ranks or sizes on the other axes (all shapes listed).
    """
    xs = list(xs)
    if builtins.all(type(v) is _ND for v in xs):
        return np.concatenate(xs, axis=axis)
    return _fix(anp.concatenate([_array(v) for v in xs], axis=axis), *xs)


@_op("stack", _stack_rule)
def stack(x, axis=0):
    """Join tensors of one shape along a new axis (``keras.ops.stack``)."""
    x = list(x)
    if builtins.all(type(v) is _ND for v in x):
        return np.stack(x, axis=axis)
    return _fix(anp.stack([_array(v) for v in x], axis=axis), *x)


@_op("split", _split_rule)
def split(x, indices_or_sections, axis=0):
    """Split into a list of tensors (``keras.ops.split``)."""
    if type(x) is _ND:
        return np.split(x, indices_or_sections, axis=axis)
    return list(anp.split(_array(x), indices_or_sections, axis=axis))


@_op("take", _take_rule)
def take(x, indices, axis=None):
    """Gather entries of `x` at integer `indices` along `axis` (``keras.ops.take``); the
    gradient scatters back (summing repeated indices)."""
    idx = np.asarray(getval(indices))
    if idx.dtype.kind == "f":
        idx = idx.astype(np.int32)
    if type(x) is _ND:
        return np.take(x, idx, axis=axis)
    x = _array(x)
    if axis is None:
        return anp.reshape(x, (-1,))[idx]
    ax = axis % anp.ndim(x)
    return x[(slice(None),) * ax + (idx,)]


@_op("where", _where_rule)
def where(condition, x1=None, x2=None):
    """``x1`` where `condition` else ``x2`` (``keras.ops.where``); with one argument, the
    indices of the non-zero entries."""
    cond = getval(condition)
    if x1 is None and x2 is None:
        return list(np.nonzero(cond))
    if x1 is None or x2 is None:
        raise ValueError("`x1` and `x2` either both should be `None` or both should have "
                         "non-None value.")
    if type(x1) is _ND and type(x2) is _ND:
        return _fix(np.where(cond, x1, x2), x1, x2)
    return _fix(anp.where(cond, x1, x2), x1, x2)


@_op("cast", _cast_rule)
def cast(x, dtype):
    """Cast to `dtype` (``keras.ops.cast``); the gradient flows between float dtypes."""
    dt = np.dtype(dtype)
    if type(x) is _ND:
        return x.astype(dt)
    if isinstance(x, Box):
        return x.astype(dt) if dt.kind == "f" else getval(x).astype(dt)
    return np.asarray(x).astype(dt)


class UnknownDim:
    """An unknown size of a symbolic tensor, as ``ops.shape`` returns it while a layer is built
    (e.g. the batch size): arithmetic on it gives another unknown size, and ops that take shapes
    (``reshape``, ``zeros``, ``broadcast_to``, ...) read it as None."""

    __slots__ = ()

    def __repr__(self):
        return "None"

    def _same(self, other=None):
        return self

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _same
    __floordiv__ = __rfloordiv__ = __truediv__ = __rtruediv__ = __neg__ = _same

    def __eq__(self, other):
        return other is None or isinstance(other, UnknownDim)

    __hash__ = object.__hash__


def shape(x):
    """The shape as a tuple (``keras.ops.shape``): ints, and for unknown symbolic sizes an
    :class:`UnknownDim` (compares equal to None; arithmetic on it stays unknown)."""
    if isinstance(x, KerasTensor):
        return tuple(UnknownDim() if d is None else d for d in x.shape)
    return tuple(np.shape(getval(_resolve(x))))


def ndim(x):
    """Number of axes (``keras.ops.ndim``)."""
    return len(shape(x))


def size(x):
    """Number of elements (``keras.ops.size``); None when a symbolic size is unknown."""
    n = 1
    for d in shape(x):
        if d is None or type(d) is UnknownDim:
            return None
        n *= d
    return n


def is_tensor(x):
    """Whether `x` is a tensor of this backend (an array, a box or a KerasTensor)."""
    return isinstance(x, (np.ndarray, Box, KerasTensor))


def convert_to_tensor(x, dtype=None, sparse=None, ragged=None):
    """`x` as a tensor (``keras.ops.convert_to_tensor``): a NumPy array (Python floats ->
    float32, ints -> int32, as Keras); KerasTensors and traced values pass through."""
    if sparse:
        raise ValueError("attnlstm has no sparse tensors. Received: sparse=True")
    if isinstance(x, KerasTensor):
        return x if dtype is None else cast(x, dtype)
    x = _resolve(x)
    if isinstance(x, Box):
        return x if dtype is None else cast(x, dtype)
    a = _array(x)
    return a if dtype is None else a.astype(dtype, copy=False)


def _creation(name, fill):
    def f(shape, dtype=None):
        shp = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        if builtins.any(d is None or type(d) is UnknownDim for d in shp) or _is_sym(shp):
            spec = _creation_rule(shp, dtype)
            return KerasTensor(spec.shape, spec.dtype, name=name, batch_axis=spec.batch)
        return np.full(shp, fill, dtype=dtype or "float32")
    f.__name__ = name
    f.__doc__ = (f"A tensor of {name} (``keras.ops.{name}``); dtype default float32. Inside a "
                 f"symbolic trace, a None size (``ops.shape(x)[0]``) gives a batch axis.")
    return f


zeros = _creation("zeros", 0)
ones = _creation("ones", 1)


@_op("zeros_like", _like_rule)
def zeros_like(x, dtype=None):
    """Zeros of x's shape and dtype (``keras.ops.zeros_like``)."""
    return np.zeros_like(getval(x), dtype=dtype)


@_op("ones_like", _like_rule)
def ones_like(x, dtype=None):
    """Ones of x's shape and dtype (``keras.ops.ones_like``)."""
    return np.ones_like(getval(x), dtype=dtype)


@_op("full_like", _full_like_rule)
def full_like(x, fill_value, dtype=None):
    """`fill_value` in x's shape (``keras.ops.full_like``)."""
    return np.full_like(getval(x), getval(fill_value), dtype=dtype)


def arange(start, stop=None, step=None, dtype=None):
    """``keras.ops.arange``: ints give int32, floats float32 unless `dtype` says otherwise."""
    if dtype is None:
        vals = [v for v in (start, stop, step) if v is not None]
        dtype = "float32" if builtins.any(isinstance(v, float) or
                                          np.asarray(v).dtype.kind == "f" for v in vals) \
            else "int32"
    if stop is None:
        start, stop = 0, start
    return np.arange(start, stop, 1 if step is None else step, dtype=dtype)


# ---------------------------------------------------------------------------------------------
# Reductions


def _reducer(name, np_fn, anp_fn, float_op):
    rule = _rule_reduce(_float_dtype if float_op else (lambda s: s.dtype))
    rule.op = name

    def impl(x, axis=None, keepdims=False):
        if type(x) is _ND:
            if float_op and x.dtype.kind != "f":
                x = x.astype(np.float32)
            return np_fn(x, axis=axis, keepdims=keepdims)
        x = _float(x) if float_op else _array(x)
        return anp_fn(x, axis=axis, keepdims=keepdims)
    impl.__doc__ = (f"``{name}`` over `axis` (int, tuple or None = all) (``keras.ops.{name}``)."
                    f"\n\n    Raises:\n        ShapeError: an axis out of range.\n")
    return _op(name, rule)(impl)


def _np_sum(x, axis=None, keepdims=False):
    out = x.sum(axis=axis, keepdims=keepdims)     # the method: no fromnumeric dispatch
    if x.dtype == np.bool_ or (x.dtype.kind in "iu" and x.dtype.itemsize < 4):
        return out.astype(np.int32)
    return out


sum = _reducer("sum", _np_sum, anp.sum, False)
mean = _reducer("mean", np.mean, anp.mean, True)


def _maxmin(name, np_fn, anp_fn):
    rule = _rule_reduce(lambda s: s.dtype)
    rule.op = name

    def impl(x, axis=None, keepdims=False, initial=None):
        if type(x) is _ND:
            return np_fn(x, axis=axis, keepdims=keepdims,
                         **({} if initial is None else {"initial": initial}))
        out = anp_fn(_array(x), axis=axis, keepdims=keepdims)
        if initial is not None:
            out = (anp.maximum if name == "max" else anp.minimum)(out, initial)
        return out
    impl.__doc__ = f"``{name}`` over `axis` (``keras.ops.{name}``); the gradient goes to the " \
                   f"arg{name} entries."
    return _op(name, rule)(impl)


max = _maxmin("max", np.max, anp.max)
min = _maxmin("min", np.min, anp.min)


def _logical_reducer(name, np_fn):
    rule = _rule_reduce(lambda s: "bool")
    rule.op = name

    def impl(x, axis=None, keepdims=False):
        return np_fn(np.asarray(getval(x)), axis=axis, keepdims=keepdims)
    impl.__doc__ = (f"Whether {name} entries over `axis` are true (nonzero), as bool "
                    f"(``keras.ops.{name}``); no gradient.\n\n    Raises:\n        ShapeError: an "
                    f"axis out of range.\n")
    return _op(name, rule)(impl)


any = _logical_reducer("any", np.any)
all = _logical_reducer("all", np.all)


def _argop(name, fn):
    def impl(x, axis=None, keepdims=False):
        v = getval(x)
        out = fn(v, axis=axis, keepdims=keepdims) if axis is not None else \
            fn(v, keepdims=keepdims)
        return np.asarray(out, dtype=np.int32)
    impl.__doc__ = f"Indices of the {name[3:]}ima (``keras.ops.{name}``): int32, no gradient."
    return _op(name, lambda x, axis=None, keepdims=False: _arg_rule(name, x, axis, keepdims))(impl)


def _arg_rule(name, x, axis, keepdims):
    _rule_arg_reduce.op = name
    return _rule_arg_reduce(x, axis, keepdims)


argmax = _argop("argmax", np.argmax)
argmin = _argop("argmin", np.argmin)


def _lse_rule(x, axis=None, keepdims=False):
    s = spec_of(x)
    return _reduced("logsumexp", x, axis, keepdims, _float_dtype(s))


@_op("logsumexp", _lse_rule)
def logsumexp(x, axis=None, keepdims=False):
    """``log(sum(exp(x), axis))`` computed stably (``keras.ops.logsumexp``)."""
    x = _float(x)
    m = np.max(getval(x), axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0).astype(getval(x).dtype)
    if type(x) is _ND:
        out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
        return out if keepdims else np.squeeze(out, axis=axis)
    out = anp.log(anp.sum(anp.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else anp.squeeze(out, axis=axis)


@_op("cumsum", _cumsum_rule)
def cumsum(x, axis=None, dtype=None):
    """Cumulative sum along `axis` (None: of the flattened tensor) (``keras.ops.cumsum``)."""
    if type(x) is _ND:
        return np.cumsum(x, axis=axis, dtype=dtype)
    out = anp.cumsum(_array(x), axis=axis)
    return out if dtype is None else cast(out, dtype)


# ---------------------------------------------------------------------------------------------
# Activations over an axis


_softmax_rule.op = "softmax"


@_op("softmax", _softmax_rule)
def softmax(x, axis=-1):
    """Softmax over `axis` (``keras.ops.softmax``): ``exp(x - max) / sum(exp(x - max))``.

    Raises:
        ShapeError: an axis out of range, or the batch axis (each sample's weights would
            depend on the others).
    """
    if type(x) is not _ND or x.dtype.kind != "f":
        x = _float(x)
    if type(x) is _ND:
        # the methods, not np.max / np.sum: a custom layer's eager call pays their dispatch
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        e /= e.sum(axis=axis, keepdims=True)
        return e
    m = np.max(getval(x), axis=axis, keepdims=True)
    e = anp.exp(x - m)
    return e / anp.sum(e, axis=axis, keepdims=True)


def _log_softmax_rule(x, axis=-1):
    _softmax_rule.op = "log_softmax"
    try:
        return _softmax_rule(x, axis)
    finally:
        _softmax_rule.op = "softmax"


@_op("log_softmax", _log_softmax_rule)
def log_softmax(x, axis=-1):
    """``x - logsumexp(x, axis)`` (``keras.ops.log_softmax``)."""
    x = _float(x)
    m = np.max(getval(x), axis=axis, keepdims=True)
    if type(x) is _ND:
        s = x - m
        return s - np.log(np.sum(np.exp(s), axis=axis, keepdims=True))
    s = x - m
    return s - anp.log(anp.sum(anp.exp(s), axis=axis, keepdims=True))


def _normalize_rule(x, axis=-1, order=2, epsilon=None):
    s = spec_of(x)
    if s.shape:
        a = _axis("normalize", "axis", axis, len(s.shape), s)
        if a == s.batch:
            raise op_error("normalize", "axis", s.shape,
                           f"x {fmt_spec(s)}: `axis`={axis} is the batch axis: each sample "
                           f"would be scaled by the other samples.",
                           hint="normalize over features (axis=-1).")
    return Spec(s.shape or (1,), _float_dtype(s), s.batch)


@_op("normalize", _normalize_rule)
def normalize(x, axis=-1, order=2, epsilon=None):
    """Scale to unit `order`-norm along `axis` (``keras.ops.normalize``): for ``order=2``,
    ``x * rsqrt(max(sum(x^2), epsilon^2))`` with ``epsilon`` default 1e-7, as Keras."""
    if not isinstance(order, int) or order < 1:
        raise ValueError(f"Argument `order` must be an int >= 1. Received: order={order}")
    x = _float(x)
    if np.ndim(getval(x)) == 0:
        x = expand_dims(x, 0)
    eps = 1e-7 if epsilon is None else epsilon
    if order == 2:
        ss = sum(square(x), axis=axis, keepdims=True)
        return x * rsqrt(maximum(ss, eps * eps))
    norm = power(sum(power(abs(x), order), axis=axis, keepdims=True), 1.0 / order)
    return divide(x, maximum(norm, eps))


# ---------------------------------------------------------------------------------------------
# Rearranging


@_op("repeat", _repeat_rule)
def repeat(x, repeats, axis=None):
    """Repeat entries along `axis` (``keras.ops.repeat``)."""
    if type(x) is _ND:
        return np.repeat(x, repeats, axis=axis)
    return anp.repeat(_array(x), repeats, axis=axis)


@_op("tile", _tile_rule)
def tile(x, repeats):
    """Tile `x` (``keras.ops.tile``).

    Raises:
        ShapeError: tiling the batch axis of a symbolic tensor.
    """
    if type(x) is _ND:
        return np.tile(x, repeats)
    return anp.tile(_array(x), repeats)


@_op("pad", _pad_rule)
def pad(x, pad_width, mode="constant", constant_values=None):
    """Pad with `constant_values` (default 0) (``keras.ops.pad``).

    Raises:
        ValueError: a `mode` other than ``"constant"`` with non-zero `constant_values`.
    """
    kw = {} if constant_values is None else {"constant_values": constant_values}
    if mode != "constant" and constant_values is not None:
        raise ValueError("Argument `constant_values` can only be provided when `mode == "
                         f"'constant'`. Received: mode={mode}")
    if type(x) is _ND:
        return np.pad(x, pad_width, mode=mode, **kw)
    if mode != "constant":
        raise ValueError(f"attnlstm differentiates ops.pad only with mode='constant'. "
                         f"Received: mode={mode!r}")
    return anp.pad(_array(x), pad_width, mode="constant", **kw) if kw else \
        anp.pad(_array(x), pad_width, mode="constant")


@_op("broadcast_to", _broadcast_to_rule)
def broadcast_to(x, shape):
    """Broadcast to `shape` (``keras.ops.broadcast_to``); the gradient sums back."""
    if type(x) is _ND:
        return np.broadcast_to(x, shape)
    return anp.broadcast_to(_array(x), tuple(shape))


@_op("one_hot", _one_hot_rule)
def one_hot(x, num_classes, axis=-1, dtype=None, sparse=False):
    """One-hot encoding of integer `x` (``keras.ops.one_hot``): float32 by default; negative or
    too large indices give all-zero rows, as Keras."""
    if sparse:
        raise ValueError("attnlstm has no sparse tensors. Received: sparse=True")
    idx = np.asarray(getval(x)).astype(np.int64)
    eye = np.arange(int(num_classes))
    out = (idx[..., None] == eye).astype(dtype or "float32")
    if axis != -1 and axis != out.ndim - 1:
        out = np.moveaxis(out, -1, axis)
    return out


def _tri_rule(name):
    def rule(x, k=0):
        _matrix_rule.op = name
        return _matrix_rule(x, k)
    return rule


@_op("triu", _tri_rule("triu"))
def triu(x, k=0):
    """Upper triangle of the last two axes (``keras.ops.triu``)."""
    if type(x) is _ND:
        return np.triu(x, k)
    return anp.triu(_array(x), k)


@_op("tril", _tri_rule("tril"))
def tril(x, k=0):
    """Lower triangle of the last two axes (``keras.ops.tril``)."""
    if type(x) is _ND:
        return np.tril(x, k)
    return anp.tril(_array(x), k)


def _getitem_impl(x, key):
    if type(x) is _ND:
        return x[key]
    return _array(x)[key]


get_item = _op("get_item", _getitem_rule)(_getitem_impl)
get_item.__doc__ = "``x[key]`` (``keras.ops.get_item``): NumPy basic and integer indexing."


# rule names for messages
for _n, _r in (("matmul", _matmul_rule), ("dot", _dot_rule)):
    _r.op = _n
del _n, _r


# ---------------------------------------------------------------------------------------------
# Operators on KerasTensor (and on Variable, in engine.base)


def _rev(fn):
    return lambda self, other: fn(other, self)


OPERATORS = {
    "__add__": add, "__radd__": _rev(add), "__sub__": subtract, "__rsub__": _rev(subtract),
    "__mul__": multiply, "__rmul__": _rev(multiply), "__truediv__": divide,
    "__rtruediv__": _rev(divide), "__floordiv__": floor_divide,
    "__rfloordiv__": _rev(floor_divide), "__mod__": mod, "__rmod__": _rev(mod),
    "__pow__": power, "__rpow__": _rev(power), "__matmul__": matmul,
    "__rmatmul__": _rev(matmul), "__neg__": negative, "__pos__": lambda self: self,
    "__abs__": abs, "__lt__": less, "__le__": less_equal, "__gt__": greater,
    "__ge__": greater_equal, "__getitem__": get_item, "__and__": logical_and,
    "__or__": logical_or, "__invert__": logical_not,
}

for _name, _fn in OPERATORS.items():
    setattr(KerasTensor, _name, _fn)
del _name, _fn


def _kt_transpose(self):
    return transpose(self)


KerasTensor.T = property(_kt_transpose)
KerasTensor.astype = lambda self, dtype: cast(self, dtype)
KerasTensor.reshape = lambda self, *shape: reshape(
    self, shape[0] if len(shape) == 1 and not isinstance(shape[0], int) else shape)


# ---------------------------------------------------------------------------------------------
# NumPy's own functions on symbolic and traced tensors
#
# ``np.tanh(x @ self.W)`` or ``np.exp(e).sum(1, keepdims=True)`` in a layer's ``call`` reach
# the op of the same name: a shape rule on KerasTensors, autograd on traced values. So plain
# NumPy ufunc code builds with shape checks and trains too.

_UFUNC_OPS = {
    "add": "add", "subtract": "subtract", "multiply": "multiply", "divide": "divide",
    "true_divide": "divide", "floor_divide": "floor_divide", "remainder": "mod",
    "power": "power", "maximum": "maximum", "minimum": "minimum", "matmul": "matmul",
    "tanh": "tanh", "exp": "exp", "log": "log", "sqrt": "sqrt", "square": "square",
    "absolute": "abs", "negative": "negative", "sign": "sign", "equal": "equal",
    "not_equal": "not_equal", "less": "less", "less_equal": "less_equal", "greater": "greater",
    "greater_equal": "greater_equal", "logical_and": "logical_and", "logical_or": "logical_or",
    "logical_not": "logical_not",
}


def _kt_array_ufunc(self, ufunc, method, *inputs, **kwargs):
    name = _UFUNC_OPS.get(ufunc.__name__)
    if method != "__call__" or name is None or kwargs.get("out") is not None:
        raise TypeError(
            f"numpy.{ufunc.__name__}{'' if method == '__call__' else '.' + method} cannot run on "
            f"the symbolic tensor {self!r}. Use the attnlstm.ops function of that name "
            f"(keras.ops names) in the layer's call.")
    kwargs.pop("out", None)
    return globals()[name](*inputs, **kwargs)


def _reduction_method(fn):
    def method(self, axis=None, dtype=None, out=None, keepdims=False, **kwargs):
        if out is not None:
            raise TypeError(f"{fn.__name__}(out=...) is not supported on {self!r}.")
        res = fn(self, axis=axis, keepdims=keepdims)
        return res if dtype is None else cast(res, dtype)
    method.__name__ = fn.__name__
    return method


KerasTensor.__array_ufunc__ = _kt_array_ufunc
for _fn in (sum, mean, max, min):
    setattr(KerasTensor, _fn.__name__, _reduction_method(_fn))
KerasTensor.squeeze = lambda self, axis=None: squeeze(self, axis)
KerasTensor.transpose = lambda self, *axes: transpose(
    self, axes[0] if len(axes) == 1 and not isinstance(axes[0], int) else (axes or None))
del _fn


def _box_array_ufunc(self, ufunc, method, *inputs, **kwargs):
    fn = getattr(anp, ufunc.__name__, None)
    if method != "__call__" or fn is None or kwargs.get("out") is not None:
        return NotImplemented
    kwargs.pop("out", None)
    return fn(*inputs, **kwargs)


if not hasattr(ArrayBox, "__array_ufunc__"):
    ArrayBox.__array_ufunc__ = _box_array_ufunc
