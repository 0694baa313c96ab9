"""Symbolic mode of the ops: :class:`KerasTensor`, the batch axis it carries, the layer being
traced, and the one message builder for op shape errors.

A KerasTensor knows its shape (``None`` = unknown size), its dtype and which of its axes is the
batch axis (``batch_axis``; None for tensors that hold no per-sample axis, e.g. weights). The
shape rules of :mod:`attnlstm.ops.core` use the batch axis to refuse broadcasts that would line
up one operand's samples with another operand's timesteps or features -- Keras computes those
silently (``(None, 12, 6) + (None, 1, 12, 6)`` is ``(None, None, 12, 6)`` there).

This module imports nothing from :mod:`attnlstm.engine`: the engine registers, with
:func:`set_node_factory`, how an op on KerasTensors outside any layer's ``call`` becomes a node
of the model graph.
"""
import threading

import numpy as np

from .. import backend
from ..errors import format_shape, shape_error

__all__ = ["KerasTensor", "tracing", "untraced", "current_layer", "set_node_factory", "op_error",
           "fmt_spec", "Spec", "spec_of"]

_state = threading.local()


def _stack():
    s = getattr(_state, "stack", None)
    if s is None:
        s = _state.stack = []
    return s


class tracing:
    """Context: `layer`'s ``call`` runs on KerasTensors (a symbolic trace). Ops inside it make
    no graph nodes, and their shape errors name `layer`."""

    def __init__(self, layer):
        self.layer = layer

    def __enter__(self):
        _stack().append(self.layer)
        return self

    def __exit__(self, *exc):
        _stack().pop()
        return False


class untraced:
    """Context: no layer is being traced (e.g. a Sequential building its own graph while a
    custom layer that holds it is traced): layer calls inside make graph nodes again."""

    def __enter__(self):
        self._saved = list(_stack())
        _stack().clear()
        return self

    def __exit__(self, *exc):
        _stack()[:] = self._saved
        return False


def current_layer():
    """The innermost layer whose ``call`` is being traced symbolically, or None."""
    s = _stack()
    return s[-1] if s else None


_NODE_FACTORY = [None]


def set_node_factory(fn):
    """Register ``fn(op_name, op, args, kwargs, out_specs) -> KerasTensor(s)``: how an op on
    KerasTensors outside a layer's ``call`` becomes a graph node (the engine sets it)."""
    _NODE_FACTORY[0] = fn


def node_factory():
    return _NODE_FACTORY[0]


class KerasTensor:
    """A symbolic tensor: a shape (``None`` = unknown size), a dtype and the layer that made it.

    It supports Python's operators (``+ - * / // % ** @``, unary ``-``, ``abs``, comparisons)
    and NumPy-style indexing/slicing, each through the op of :mod:`attnlstm.ops` of that name,
    so shape mistakes are found when the model is built.

    Attributes:
        shape: tuple, batch axis first for tensors made by ``Input`` and layers.
        dtype: dtype name, e.g. ``"float32"``.
        batch_axis: which axis holds the samples (0 for Input and layer outputs), or None.
        has_mask: whether a Keras mask travels with it (from Masking, Embedding(mask_zero=True),
            or a mask-propagating layer).
        keras_mask: that mask as a symbolic bool tensor (what the producing layer's
            ``compute_mask`` returned), or None.
    """

    # Operators with a NumPy array on the left come here (ndarray defers to a higher priority).
    __array_priority__ = 100.0

    def __init__(self, shape, dtype="float32", layer=None, node=None, index=0, has_mask=False,
                 name=None, batch_axis=0):
        self.shape = tuple(None if s is None else int(s) for s in shape)
        self.dtype = backend.standardize_dtype(dtype)
        self._layer = layer
        self._node = node
        self._index = index
        self.has_mask = bool(has_mask)
        self.keras_mask = None
        self.name = name or (layer.name if layer is not None else "keras_tensor")
        self.batch_axis = batch_axis if (batch_axis is not None and len(self.shape) > 0) else None

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def producer(self):
        """The layer that produced this tensor (an InputLayer for model inputs)."""
        return self._layer

    def __repr__(self):
        return f"<KerasTensor shape={format_shape(self.shape)}, dtype={self.dtype}, name={self.name}>"

    def __iter__(self):
        layer = self._layer
        hint = None
        if layer is not None and layer._call_accepts("return_attention_scores"):
            hint = "pass return_attention_scores=True to get [output, scores]."
        raise shape_error(
            layer, "outputs", "several tensors", self.shape, hint,
            message=(f"its output is one tensor of shape {format_shape(self.shape)}; it cannot "
                     f"be unpacked into several tensors."))

    def __len__(self):
        raise TypeError(f"{self!r} is symbolic; its length is its shape[0] ({self.shape[0]}).")

    def __bool__(self):
        raise TypeError(f"{self!r} is symbolic: it has no truth value while the model is built. "
                        "Use ops.where(...) or ops.cond-free code in `call`.")

    def __array__(self, *args, **kwargs):
        raise TypeError(
            f"{self!r} is symbolic (made by Input): it has no values. Build a Model(inputs, outputs) "
            "and call model.predict(x), or call the layers on NumPy arrays. Inside a layer's "
            "`call`, use attnlstm.ops functions (ops.tanh, ops.matmul, ...) instead of NumPy's.")

    __hash__ = object.__hash__


class Spec:
    """Shape, dtype name and batch axis of one op argument, for the shape rules."""

    __slots__ = ("shape", "dtype", "batch", "weak")

    def __init__(self, shape, dtype, batch=None, weak=False):
        self.shape = tuple(shape)
        self.dtype = dtype
        self.batch = batch
        self.weak = weak

    @property
    def ndim(self):
        return len(self.shape)


def spec_of(x):
    """The :class:`Spec` of a KerasTensor, a Variable, an array or a Python number."""
    if isinstance(x, KerasTensor):
        return Spec(x.shape, x.dtype, x.batch_axis)
    if isinstance(x, (bool, int, float)) and not isinstance(x, np.generic):
        kind = "bool" if isinstance(x, bool) else ("int32" if isinstance(x, int) else "float32")
        return Spec((), kind, None, weak=True)
    shape = getattr(x, "shape", None)
    dtype = getattr(x, "dtype", None)
    if shape is None or dtype is None:
        a = np.asarray(x)
        shape, dtype = a.shape, a.dtype
        if a.dtype == np.float64 and not isinstance(x, np.ndarray):
            dtype = np.dtype(np.float32)   # Python lists of floats: Keras' floatx
        elif a.dtype == np.int64 and not isinstance(x, np.ndarray):
            dtype = np.dtype(np.int32)
    return Spec(tuple(shape), backend.standardize_dtype(dtype), None)


def fmt_spec(spec):
    """``(batch, 12, 6)``: the shape with the batch axis named when its size is unknown."""
    items = []
    for i, d in enumerate(spec.shape):
        if i == spec.batch:
            items.append("batch" if d is None else f"batch={d}")
        else:
            items.append("None" if d is None else str(d))
    if len(items) == 1:
        return f"({items[0]},)"
    return "(" + ", ".join(items) + ")"


def op_error(op, argument, got, detail, hint=None, expected=None):
    """The ShapeError of op `op` (e.g. ``"add"``): names the layer being traced (if any), the
    op, and -- in `detail` -- every argument's shape and what must agree."""
    layer = current_layer()
    if layer is not None:
        return shape_error(layer, argument, expected or detail, got, hint,
                           message=f"in ops.{op}: {detail}")
    return shape_error(f"ops.{op}", argument, expected or detail, got, hint, message=detail)

