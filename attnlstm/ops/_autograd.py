"""The kernel ops as autograd primitives: a ``*_forward`` / ``*_backward`` pair becomes one
node of a reverse-mode trace, so ``ops.lstm`` or ``ops.dot_attention`` inside a custom layer's
``call`` trains with the kernel's own fused backward (no autograd through its internals).

A kernel op calls :func:`traced` only when one of its tensor arguments is an autograd box (a
layer's ``call`` traced for gradients); plain arrays never come here.
"""
import threading

import numpy as np
from autograd.builtins import tuple as ag_tuple  # noqa: F401  (registers tuple boxes)
from autograd.extend import defvjp_argnums, primitive
from autograd.tracer import Box, getval

__all__ = ["boxed", "traced"]

_state = threading.local()


def boxed(*values):
    """Whether any value (or list/tuple entry) is an autograd box."""
    for v in values:
        if isinstance(v, Box):
            return True
        if isinstance(v, (list, tuple)) and any(isinstance(u, Box) for u in v):
            return True
    return False


class _Kernel:
    """How to run one kernel pair: `forward(**tensors, **static)` -> saved dict;
    `backward(saved, *d_outs)` -> {tensor name: gradient}."""

    __slots__ = ("forward", "backward", "names", "out_keys", "static")

    def __init__(self, forward, backward, names, out_keys, static):
        self.forward = forward
        self.backward = backward
        self.names = names
        self.out_keys = out_keys
        self.static = static


@primitive
def _kernel_call(spec, *tensors):
    saved = spec.forward(**dict(zip(spec.names, tensors)), **spec.static)
    stash = getattr(_state, "stash", None)
    if stash is None:
        stash = _state.stash = []
    stash.append(saved)
    return tuple(saved[k] for k in spec.out_keys)


def _kernel_vjp(argnums, ans, args, kwargs):
    spec = args[0]
    saved = _state.stash.pop()

    def vjp(g):
        grads = spec.backward(saved, *g)
        out = []
        for a in argnums:
            gi = grads.get(spec.names[a - 1])
            out.append(np.zeros_like(getval(args[a])) if gi is None else gi)
        return tuple(out)
    return vjp


defvjp_argnums(_kernel_call, _kernel_vjp)


def traced(forward, backward, tensors, out_keys, **static):
    """Run a kernel pair as one autograd primitive.

    Args:
        forward: ``forward(**tensors, **static)`` -> the saved dict of the ``*_forward`` op.
        backward: ``backward(saved, *d_outs)`` -> gradients keyed by tensor name.
        tensors: dict name -> array, box or None (the differentiable arguments).
        out_keys: the saved dict's keys returned, in order (their gradients are `d_outs`).
        static: the other keyword arguments of `forward`.

    Returns:
        A tuple with one (boxed) value per `out_keys`.
    """
    names = tuple(tensors)
    stash = getattr(_state, "stash", None)
    if stash is None:
        stash = _state.stash = []
    n0 = len(stash)
    res = _kernel_call(_Kernel(forward, backward, names, tuple(out_keys), static),
                       *[tensors[n] for n in names])
    if len(stash) > n0:
        stash.pop()   # no box reached the primitive: no VJP will be asked for
    return [res[i] for i in range(len(out_keys))]
