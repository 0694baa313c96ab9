"""``attnlstm.GradientTape``: gradients of code run inside a ``with`` block, as
``tf.GradientTape`` (what a Keras 3 custom ``train_step`` on the TensorFlow backend uses).

Inside the block every trainable :class:`~attnlstm.Variable` that is read becomes a root of one
`autograd <https://github.com/HIPS/autograd>`_ trace (lazily, at its first read); layers and
``attnlstm.ops`` then compute on traced values (built-in C-kernel layers as primitives with their
own backward, custom layers through their ``call``). ``tape.gradient(loss, variables)`` runs the
reverse pass from `loss` and returns one array per variable (None for a variable the loss does
not depend on, as TensorFlow).
"""
import threading

import numpy as np
from autograd.core import VJPNode, add_outgrads, toposort
from autograd.tracer import Box, getval, new_box, trace_stack

from . import autodiff

__all__ = ["GradientTape", "active_tape"]

class _Local(threading.local):
    tapes = None        # unset: a class attribute, so the getattr below does not miss


_LOCAL = _Local()


def active_tape():
    """The innermost GradientTape recording in this thread, or None."""
    tapes = getattr(_LOCAL, "tapes", None)
    return tapes[-1] if tapes else None


class GradientTape:
    """Records the computation in its ``with`` block for :meth:`gradient` (``tf.GradientTape``).

    Args:
        persistent: allow several :meth:`gradient` calls (one otherwise, as TensorFlow).
        watch_accessed_variables: trace every trainable Variable read in the block (default);
            False traces only those given to :meth:`watch`.

    Example:
        >>> import numpy as np, attnlstm
        >>> from attnlstm import layers, ops
        >>> dense = layers.Dense(1, kernel_initializer="ones")
        >>> x = np.ones((2, 3), "float32")
        >>> with attnlstm.GradientTape() as tape:
        ...     loss = ops.sum(dense(x))
        >>> [g.tolist() for g in tape.gradient(loss, dense.trainable_weights)]
        [[[2.0], [2.0], [2.0]], [2.0]]
    """

    def __init__(self, persistent=False, watch_accessed_variables=True):
        self.persistent = bool(persistent)
        self.watch_accessed_variables = bool(watch_accessed_variables)
        self._roots = {}          # id(Variable) -> (Variable, root node, box)
        self._watched = set()
        self._used = False
        self._recording = False

    def __enter__(self):
        self._trace_cm = trace_stack.new_trace()
        self._trace = self._trace_cm.__enter__()
        self._prev_depth = getattr(autodiff._state, "depth", 0)
        self._prev_training = getattr(autodiff._state, "training", None)
        autodiff._state.depth = self._prev_depth + 1
        autodiff._state.training = True
        tapes = getattr(_LOCAL, "tapes", None)
        if tapes is None:
            tapes = _LOCAL.tapes = []
        tapes.append(self)
        self._recording = True
        return self

    def __exit__(self, *exc):
        self._recording = False
        _LOCAL.tapes.pop()
        autodiff._state.depth = self._prev_depth
        autodiff._state.training = self._prev_training
        for var, _, box in self._roots.values():
            if var._traced is box:
                var._traced = None
        self._trace_cm.__exit__(None, None, None)
        return False

    def watch(self, variables):
        """Trace these Variables (with ``watch_accessed_variables=False``)."""
        for v in variables if isinstance(variables, (list, tuple)) else [variables]:
            self._watched.add(id(v))

    def _root(self, var):
        """The traced value of `var` in this tape (made at its first read), or None."""
        hit = self._roots.get(id(var))
        if hit is not None:
            return hit[2]
        if not self._recording or not (
                (self.watch_accessed_variables and var.trainable) or id(var) in self._watched):
            return None
        node = VJPNode.new_root()
        box = new_box(var._value, self._trace, node)
        self._roots[id(var)] = (var, node, box)
        var._traced = box
        return box

    def gradient(self, target, sources, output_gradients=None):
        """d(sum of `target`)/d(each source): a list (or a single array) of arrays, None for a
        source `target` does not depend on.

        Raises:
            RuntimeError: a second call on a non-persistent tape, or a call inside the block.
        """
        if self._recording:
            raise RuntimeError("GradientTape.gradient must be called after the `with` block "
                               "(attnlstm records nothing after it either way).")
        if self._used and not self.persistent:
            raise RuntimeError("A non-persistent GradientTape can only be used to compute one "
                               "set of gradients (or pass persistent=True).")
        self._used = True
        single = not isinstance(sources, (list, tuple))
        srcs = [sources] if single else list(sources)
        grads = {}
        if isinstance(target, Box) and target._trace == self._trace:
            g = np.ones_like(getval(target)) if output_gradients is None else \
                np.asarray(output_gradients, dtype=np.asarray(getval(target)).dtype)
            roots = {id(node): vid for vid, (_, node, _) in self._roots.items()}
            outgrads = {target._node: (g, False)}
            for node in toposort(target._node):
                og = outgrads.pop(node, None)
                if og is None:
                    continue
                if id(node) in roots:
                    grads[roots[id(node)]] = og[0]
                    continue
                for parent, ingrad in zip(node.parents, node.vjp(og[0])):
                    outgrads[parent] = add_outgrads(outgrads.get(parent), ingrad)
        out = []
        for s in srcs:
            g = grads.get(id(s))
            out.append(None if g is None else np.asarray(g, dtype=np.asarray(s._value).dtype))
        return out[0] if single else out
