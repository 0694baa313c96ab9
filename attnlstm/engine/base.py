"""Symbolic tensors, weights and the Layer base class (Keras 3's Layer contract).

A layer called on a symbolic :class:`KerasTensor` (from :func:`Input`) computes its output shape,
with ``None`` for unknown sizes, or raises a :class:`~attnlstm.ShapeError` right there, at build time.
Called on arrays, it checks the same rules and computes with the C kernels.
"""
import inspect
import warnings

import numpy as np
from autograd.numpy.numpy_boxes import ArrayBox as _ArrayBox

from .. import backend, constraints, initializers, regularizers
from ..errors import ShapeError, format_shape, shape_error
from ..ops import core as _ops
from ..ops._symbolic import KerasTensor, current_layer, set_node_factory, tracing
from . import autodiff
from .tape import active_tape
from .structure import flatten, map_structure

__all__ = ["KerasTensor", "Variable", "Layer", "InputLayer", "Input", "Node", "Grads"]


# ---------------------------------------------------------------------------------------------
# Structures


# ---------------------------------------------------------------------------------------------
# Symbolic tensors


class Node:
    """One call of a layer on symbolic tensors: how to recompute its outputs from its inputs."""

    def __init__(self, layer, args, kwargs, outputs):
        self.layer = layer
        self.args = args
        self.kwargs = kwargs
        self.outputs = outputs
        self.input_tensors = [t for t in flatten([args, kwargs]) if isinstance(t, KerasTensor)]

    @property
    def parent_nodes(self):
        return [t._node for t in self.input_tensors if t._node is not None]


# ---------------------------------------------------------------------------------------------
# Weights


class Variable:
    """A layer weight: a NumPy array with a name and a trainable flag (Keras ``Variable``).

    It takes part in :mod:`attnlstm.ops` and Python operators like a tensor (``x @ self.kernel``,
    ``self.bias + 1``); while a layer's ``call`` is traced for gradients these see the traced
    value, so the weight is trained. ``np.asarray(variable)`` gives its current array (no
    gradient flows through NumPy's own functions).
    """

    _is_variable = True
    # NumPy arrays on the left of an operator defer to the Variable's reflected operator.
    __array_priority__ = 100.0

    def __init__(self, value, name, trainable=True, path=None, regularizer=None,
                 constraint=None):
        self._traced = None
        self._value = value
        self.name = name
        self.path = path or name
        self.trainable = trainable
        # Keras regularizer / constraint objects (or None); the trainer adds the regularizer's
        # value to the loss and applies the constraint after each update.
        self.regularizer = regularizer
        self.constraint = constraint

    @property
    def value(self):
        return self._value

    @property
    def shape(self):
        return self._value.shape

    @property
    def dtype(self):
        return self._value.dtype.name

    def numpy(self):
        return np.array(self._value, copy=True)

    def assign(self, value):
        value = np.asarray(value)
        if value.shape != self._value.shape:
            raise ValueError(f"Cannot assign a value of shape {value.shape} to variable "
                             f"'{self.path}' of shape {self._value.shape}.")
        self._value = np.array(value, dtype=self._value.dtype, order="C")

    def __repr__(self):
        return f"<Variable path={self.path}, shape={self.shape}, dtype={self.dtype}>"

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self._value, dtype=dtype)

    def _current(self):
        """The value ops compute with: the traced box during a gradient trace, else the array."""
        if self._traced is not None:
            return self._traced
        tape = active_tape()
        if tape is not None:
            box = tape._root(self)
            if box is not None:
                return box
        if self.trainable and autodiff.in_trace() and not autodiff.is_known(self):
            _warn_untracked(self)
        return self._value

    @property
    def ndim(self):
        return self._value.ndim

    @property
    def T(self):
        return _ops.transpose(self)

    def __len__(self):
        return len(self._value)

    def __hash__(self):
        return id(self)


_WARNED = set()


def _warn_untracked(var):
    """A trainable weight read inside a traced call without being traced: it is not among the
    weights of the layer being trained (e.g. a layer kept where attribute tracking cannot see
    it), so it would silently stay untrained."""
    if id(var) in _WARNED:
        return
    _WARNED.add(id(var))
    warnings.warn(
        f"Variable '{var.path}' is used in a layer's call but is not one of that layer's tracked "
        f"weights, so training does not update it. Assign the layer that owns it as an "
        f"attribute of the calling layer (self.x = ...), or in a list or dict attribute.",
        UserWarning, stacklevel=4)


for _name, _fn in _ops.OPERATORS.items():
    if _name not in ("__and__", "__or__", "__invert__"):
        setattr(Variable, _name, _fn)


def _defer_to_variable(method):
    def op(self, other):
        if getattr(type(other), "_is_variable", False):
            return NotImplemented   # Variable's reflected operator sees its traced value
        return method(self, other)
    op.__name__ = method.__name__
    return op


# ``traced_value + self.bias``: autograd's box would read the Variable through __array__ (a
# constant, so the bias would get no gradient); it defers to the Variable instead.
for _name in ("__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__",
              "__truediv__", "__rtruediv__", "__pow__", "__rpow__", "__matmul__", "__rmatmul__",
              "__floordiv__", "__rfloordiv__", "__mod__", "__rmod__", "__lt__", "__le__",
              "__gt__", "__ge__"):
    if hasattr(_ArrayBox, _name):
        setattr(_ArrayBox, _name, _defer_to_variable(getattr(_ArrayBox, _name)))
del _name, _fn


# ---------------------------------------------------------------------------------------------
# Gradients


class Grads:
    """What :meth:`Layer.backward` returns: gradients of the loss for one recorded call.

    Attributes:
        inputs: gradient for the call's first argument, with the same structure (an array, or a
            list of arrays for a list input); None entries mean "no gradient" (e.g. integer
            indices, masks).
        weights: dict ``{Variable: gradient array}`` for the layer's weights (sub-layers' too).
        args: gradients for the further positional tensor arguments (e.g. ``value`` of
            MultiHeadAttention), a tuple, or None.
        kwargs: gradients for tensor keyword arguments (e.g. ``{"initial_state": [dh0, dc0]}``),
            a dict, or None.
    """

    __slots__ = ("inputs", "weights", "args", "kwargs")

    def __init__(self, inputs=None, weights=None, args=None, kwargs=None):
        self.inputs = inputs
        self.weights = weights if weights is not None else {}
        self.args = args
        self.kwargs = kwargs

    def __repr__(self):
        return (f"Grads(inputs={_shape_repr(self.inputs)}, weights="
                f"{ {v.path: tuple(np.shape(g)) for v, g in self.weights.items()} })")


def _shape_repr(x):
    if x is None:
        return None
    if isinstance(x, (list, tuple)):
        return [_shape_repr(v) for v in x]
    return tuple(np.shape(x))


def add_grad(grads, var, g):
    """Accumulate `g` into ``grads[var]`` (a weight shared by two calls gets the sum)."""
    if var in grads:
        grads[var] = grads[var] + g
    else:
        grads[var] = g


# ---------------------------------------------------------------------------------------------
# Layer


# (layer class, argument) -> whether its call accepts the argument (signatures do not change)
_ACCEPTS = {}
_FAST_EAGER = {}
_NP_DTYPES = {"float32": np.dtype(np.float32), "float64": np.dtype(np.float64)}

_LAYER_KWARGS = {"name", "dtype", "trainable", "input_shape", "batch_input_shape", "batch_size",
                 "input_dim", "autocast", "input_length"}


class Layer:
    """Base class of attnlstm layers, with Keras 3's contract.

    Subclasses define ``build(input_shape)`` (create weights with :meth:`add_weight`),
    ``call(inputs, ...)`` (NumPy in, NumPy out), ``compute_output_shape(input_shape)`` (pure shape
    algebra that raises ShapeError on a mismatch, whether or not the layer is built) and
    ``get_config()``. ``__call__`` runs ``compute_output_shape`` first, so every shape mistake is
    caught before any weight is made or any data flows.

    Args:
        name: unique name; default the snake-case class name, numbered (``lstm``, ``lstm_1``...).
        dtype: float type of weights and computation, ``"float32"`` (default) or ``"float64"``.
        trainable: whether the weights are trained.
        activity_regularizer: a :mod:`attnlstm.regularizers` identifier; each call adds
            ``regularizer(output) / batch_size`` per output to the loss (Keras 3), and the
            layer's backward gets the penalty's gradient.
        input_shape: shape without the batch axis, for the first layer of a Sequential model.
        batch_input_shape / batch_size: as in Keras 2, for the first layer of a Sequential.
    """

    # Whether the output carries the input's Keras mask.
    supports_masking = False
    # Whether the layer reads and (with return_sequences=True) returns whole sequences: RNN
    # layers and Bidirectional. Shape-error hints name such a layer.
    sequence_producer = False
    # Whether eager inputs are cast to the layer's float dtype.
    _cast_inputs = True

    def __init__(self, name=None, dtype=None, trainable=True, activity_regularizer=None,
                 **kwargs):
        unknown = set(kwargs) - _LAYER_KWARGS
        if unknown:
            raise TypeError(f"Unrecognized keyword arguments passed to {type(self).__name__}: "
                            f"{ {k: kwargs[k] for k in sorted(unknown)} }")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"`name` must be a string. Received: name={name!r}")
        self.name = name or backend.unique_name(backend.to_snake_case(type(self).__name__))
        self.dtype = backend.standardize_dtype(dtype)
        self.trainable = trainable
        # Keras 3 Layer: a penalty on every call's outputs (/ batch size), added to the loss.
        self.activity_regularizer = regularizers.get(activity_regularizer)
        self.built = False
        self._own_weights = []
        self._sublayers = []
        self._inbound_nodes = []
        self._losses = []
        self._named_losses = {}
        self._batch_input_shape = None
        self._build_input_shape = None
        if kwargs.get("batch_input_shape") is not None:
            self._batch_input_shape = tuple(kwargs["batch_input_shape"])
        elif kwargs.get("input_shape") is not None:
            shp = kwargs["input_shape"]
            shp = (shp,) if isinstance(shp, int) else tuple(shp)
            self._batch_input_shape = (kwargs.get("batch_size"),) + shp
        elif kwargs.get("input_dim") is not None:
            self._batch_input_shape = (kwargs.get("batch_size"), kwargs["input_dim"])

    # -- weights --------------------------------------------------------------------------------

    def add_weight(self, *args, shape=None, initializer=None, dtype=None, trainable=True,
                   regularizer=None, constraint=None, name=None, **kwargs):
        """Create a weight and track it (``keras.layers.Layer.add_weight``).

        Two call forms are accepted: Keras 3's ``add_weight(shape=None, initializer=None,
        dtype=None, trainable=True, regularizer=None, constraint=None, name=None)`` (``shape`` may
        be the first positional argument), and the Keras 2 form ``add_weight(name, shape,
        initializer, trainable, dtype)`` (a string first).

        Args:
            shape: tuple of ints; ``()`` or None for a scalar.
            initializer: a Keras initializer name or callable; default ``"glorot_uniform"`` for
                float weights, ``"zeros"`` otherwise (as Keras 3).
            dtype: ``"float32"``/``"float64"``; default the layer's dtype.
            trainable: whether the optimizer updates it.
            regularizer: a Keras regularizer (name, instance or callable); its value is added to
                the training loss.
            constraint: a Keras constraint, applied to the weight after each optimizer update.
            name: the weight's name (``kernel``, ``bias``, ...).

        Returns:
            The :class:`Variable`.

        Raises:
            TypeError: an unknown keyword argument or too many positional arguments.
        """
        for k in ("autocast", "aggregation", "overwrite_with_gradient", "synchronization",
                  "use_resource", "experimental_autocast"):
            kwargs.pop(k, None)
        if kwargs:
            raise TypeError(f"{type(self).__name__}.add_weight got unexpected keyword arguments "
                            f"{sorted(kwargs)}.")
        args = list(args)
        if args and isinstance(args[0], str):        # Keras 2: (name, shape, initializer, trainable, dtype)
            names = ["name", "shape", "initializer", "trainable", "dtype"]
        else:                                        # Keras 3: (shape, initializer, dtype, trainable)
            names = ["shape", "initializer", "dtype", "trainable"]
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__}.add_weight takes at most {len(names)} "
                            f"positional arguments ({', '.join(names)}); got {len(args)}.")
        given = dict(zip(names, args))
        name = given.get("name", name)
        shape = given.get("shape", shape)
        initializer = given.get("initializer", initializer)
        dtype = given.get("dtype", dtype)
        trainable = given.get("trainable", trainable)
        shape = () if shape is None else ((shape,) if isinstance(shape, (int, np.integer))
                                          else tuple(int(s) for s in shape))
        dtype = backend.standardize_dtype(dtype or self.dtype)
        if initializer is None:
            initializer = "glorot_uniform" if np.dtype(dtype).kind == "f" else "zeros"
        if name is None:
            name = f"variable_{len(self._own_weights)}" if self._own_weights else "variable"
        init = initializers.get(initializer)
        value = np.array(init(shape, dtype, backend.make_rng()), dtype=dtype, order="C")
        var = Variable(value, name, trainable, path=f"{self.name}/{name}",
                       regularizer=regularizers.get(regularizer),
                       constraint=constraints.get(constraint))
        self._own_weights.append(var)
        return var

    def _track(self, layer):
        """Track a sub-layer: its weights follow this layer's own in ``weights``."""
        if not any(s is layer for s in self._sublayers):
            self._sublayers.append(layer)
        return layer

    def __setattr__(self, name, value):
        # Keras 3 attribute tracking: sub-layers and Variables assigned as attributes (also
        # inside lists, tuples and dicts) belong to this layer, in assignment order.
        if not name.startswith("_") and "_sublayers" in self.__dict__:
            value = self._track_value(value, name)
        object.__setattr__(self, name, value)

    def _track_value(self, value, name):
        if isinstance(value, Layer):
            if value is not self:
                self._track(value)
        elif isinstance(value, Variable):
            if not any(w is value for w in self._own_weights):
                self._own_weights.append(value)
        elif isinstance(value, list) and not isinstance(value, _TrackedList):
            value = _TrackedList(self, value)
            for v in value:
                self._track_value(v, name)
        elif isinstance(value, tuple):
            for v in value:
                self._track_value(v, name)
        elif isinstance(value, dict) and not isinstance(value, _TrackedDict):
            value = _TrackedDict(self, value)
            for v in value.values():
                self._track_value(v, name)
        elif isinstance(value, (set, frozenset)) and any(isinstance(v, Layer) for v in value):
            warnings.warn(
                f"{type(self).__name__} '{self.name}': attribute `{name}` holds layers in a "
                f"{type(value).__name__}, which attnlstm does not track: their weights are not "
                f"trained. Use a list or a dict.", UserWarning, stacklevel=3)
        return value

    @property
    def weights(self):
        """Own weights in ``add_weight`` order, then each sub-layer's (Keras' order)."""
        out = list(self._own_weights)
        for sub in self._sublayers:
            out.extend(sub.weights)
        return out

    @property
    def trainable_weights(self):
        if not self.trainable:
            return []
        out = [w for w in self._own_weights if w.trainable]
        for sub in self._sublayers:
            out.extend(sub.trainable_weights)
        return out

    @property
    def non_trainable_weights(self):
        if not self.trainable:
            return self.weights
        out = [w for w in self._own_weights if not w.trainable]
        for sub in self._sublayers:
            out.extend(sub.non_trainable_weights)
        return out

    def get_weights(self):
        """Copies of the weights as NumPy arrays, in Keras' order and shapes."""
        return [w.numpy() for w in self.weights]

    def set_weights(self, weights):
        """Set the weights from a list of arrays in Keras' order (e.g. ``keras_layer.get_weights()``).

        Raises:
            ShapeError: a list of the wrong length or arrays of the wrong shapes (all listed).
        """
        params = self.weights
        weights = list(weights)
        if len(weights) != len(params):
            expected = [tuple(p.shape) for p in params]
            got = [tuple(np.shape(w)) for w in weights]
            hint = None
            if not self.built:
                hint = (f"the layer is not built yet (it has no weights before its first call); "
                        f"call it on an input or build the model first.")
            raise shape_error(
                self, "weights", expected, got, hint,
                message=(f"`set_weights` got a list of {len(weights)} arrays, but the layer has "
                         f"{len(params)} weights {_names(params)} with shapes "
                         f"{_shapes(expected)}; got shapes {_shapes(got)}."))
        bad = [(p, np.shape(w)) for p, w in zip(params, weights) if tuple(np.shape(w)) != p.shape]
        if bad:
            parts = "; ".join(f"'{p.name}' must have shape {format_shape(p.shape)}, got "
                              f"{format_shape(s)}" for p, s in bad)
            hint = None
            p0, s0 = bad[0]
            if len(s0) == len(p0.shape) and tuple(reversed(s0)) == p0.shape and len(s0) == 2:
                hint = "the array looks transposed; Keras kernels are (input_dim, units)."
            raise shape_error(self, "weights", [tuple(p.shape) for p, _ in bad],
                              [tuple(s) for _, s in bad], hint,
                              message=f"`set_weights`: {parts}.")
        for p, w in zip(params, weights):
            p.assign(np.asarray(w, dtype=p.value.dtype))

    def count_params(self):
        """Number of scalars in all weights."""
        return int(sum(int(np.prod(w.shape)) for w in self.weights))

    # -- Keras contract -------------------------------------------------------------------------

    def build(self, input_shape):
        self.built = True

    def call(self, inputs, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__}.call")

    def forward(self, inputs, *args, **kwargs):
        """Compute the outputs and keep what :meth:`backward` needs: ``(outputs, ctx)``.

        Same arguments and outputs as :meth:`call`. Layers with hand-written gradients (the
        C-kernel layers) override it with :meth:`backward`. A layer that overrides neither (a
        custom layer written with :mod:`attnlstm.ops` and operators) gets reverse-mode
        gradients of its ``call`` from autograd: the call runs once with its float inputs and
        trainable weights traced, and ``backward`` replays the recorded VJP.
        """
        if type(self).backward is not Layer.backward:
            return self.call(inputs, *args, **kwargs), None
        return autodiff.trace_forward(self, self.call, (inputs,) + tuple(args), kwargs,
                                      self._traced_weights(), kwargs.get("training"))

    def _traced_weights(self):
        return self.trainable_weights

    @property
    def _uses_autograd(self):
        """Whether forward/backward come from autograd over ``call`` (no hand-written pair)."""
        cls = type(self)
        return cls.forward is Layer.forward and cls.backward is Layer.backward

    def backward(self, ctx, d_outputs, need_input_grad=True):
        """Gradients of the loss for one call recorded by :meth:`forward`.

        Args:
            ctx: what ``forward`` returned as its second value.
            d_outputs: gradient of the loss w.r.t. each output, with the outputs' structure and
                shapes (zeros where no gradient flows).
            need_input_grad: False when nothing upstream needs the input gradient (a layer may
                then skip computing it and return ``Grads(inputs=None, ...)``).

        Returns:
            :class:`Grads`. Losses the layer added with :meth:`add_loss` during ``forward`` must
            have their gradient included here.

        Raises:
            NotImplementedError: the layer has a hand-written ``forward`` but no backward.
        """
        if not self._uses_autograd or ctx is None:
            raise NotImplementedError(
                f"{type(self).__name__} '{self.name}' has no backward, so a model cannot be "
                f"trained through it. Remove its `forward` override (attnlstm then differentiates "
                f"`call` written with attnlstm.ops), or give the layer a `backward` method.")
        a, k, w = autodiff.trace_backward(ctx, d_outputs)
        kw = {key: g for key, g in k.items() if g is not None}
        return Grads(inputs=a[0], weights=w, args=tuple(a[1:]) if len(a) > 1 else None,
                     kwargs=kw or None)

    @property
    def differentiable(self):
        """Whether gradients can flow through this layer (autograd over ``call``, or a
        hand-written :meth:`backward`)."""
        return type(self).backward is not Layer.backward or self._uses_autograd

    def compute_output_shape(self, input_shape):
        return input_shape

    def target_hint(self, output_shape, target_shape):
        """The hint ``fit`` adds when targets of `target_shape` do not fit a model output of
        `output_shape` that this layer leads to, or None. ``fit`` asks the layers from the output
        back along the first inputs and takes the first answer. The default answers for a
        sequence producer with ``return_sequences=True`` whose sequence meets one target per
        sample; override it for a layer that explains other mismatches (RepeatVector does)."""
        if not (self.sequence_producer and getattr(self, "return_sequences", False)
                and len(output_shape) == 3 and len(target_shape) < 3):
            return None
        shown = format_shape(("batch",) + tuple(output_shape[1:]))
        return (f"the output {shown} is a sequence because "
                f"{type(self).__name__} '{self.name}' has return_sequences=True; set "
                f"return_sequences=False, or reduce time with GlobalAveragePooling1D or an "
                f"attention pooling layer before the last layer. (For one target per timestep, "
                f"pass y of shape {shown} and keep "
                f"TimeDistributed/Dense.)")

    def compute_mask(self, inputs, mask=None):
        """The output's Keras mask given the input's (``mask``: one per input, None where an
        input has none), or None when the output has none. One rule for both modes, as Keras 3:
        on arrays it returns a NumPy bool array; when a model is built it gets
        :class:`~attnlstm.KerasTensor` inputs and masks and returns a symbolic mask, so write it
        with :mod:`attnlstm.ops` functions and operators. A layer with several outputs returns a
        list (one mask or None per output) or one mask shared by all."""
        if not self.supports_masking:
            return None
        return mask

    def validate_call(self, input_shape, **kwarg_shapes):
        """Check the shapes of tensor keyword arguments (masks, states) against the inputs.

        Called with the shapes of every tensor keyword argument; raises ShapeError.
        """
        mask_shape = kwarg_shapes.get("mask")
        if mask_shape is not None and not isinstance(mask_shape, list) and \
                isinstance(input_shape, tuple) and len(input_shape) >= 2:
            check_time_mask(self, "mask", input_shape, mask_shape)

    def get_config(self):
        cfg = {"name": self.name, "trainable": self.trainable, "dtype": self.dtype}
        if getattr(self, "activity_regularizer", None) is not None:
            cfg["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        return cfg

    @classmethod
    def from_config(cls, config):
        """The layer a config describes: ``get_config()``'s or Keras 3's (DTypePolicy and
        initializer dicts, nested layers, Keras keys at their defaults)."""
        from ..saving.serialization import config_to_kwargs
        return cls(**config_to_kwargs(cls, config))

    @property
    def input(self):
        if not self._inbound_nodes:
            raise AttributeError(f"Layer '{self.name}' has never been called and thus has no input.")
        node = self._inbound_nodes[0]
        return node.args[0] if node.args else None

    @property
    def output(self):
        if not self._inbound_nodes:
            raise AttributeError(f"Layer '{self.name}' has never been called and thus has no output.")
        return self._inbound_nodes[0].outputs

    @property
    def losses(self):
        """add_loss terms of the last call, then the trainable weights' regularization
        penalties (Keras' ``layer.losses``)."""
        return list(self._losses) + [float(v.regularizer(v.value)) for v in
                                     self.trainable_weights if v.regularizer is not None]

    def add_loss(self, loss, name=None):
        """Add an extra scalar loss term during a call (Keras ``layer.add_loss``).

        Call it from ``forward``/``call``; terms are cleared at the start of every call and
        summed into the training loss. The layer's :meth:`backward` must include the term's
        gradient (built-in layers that add losses do).

        Args:
            loss: a scalar (an array is summed).
            name: if given, ``fit`` logs the term's running mean under this name (e.g.
                ``"kl_loss"``) in the progress bar and the History.
        """
        if any(isinstance(v, KerasTensor) for v in flatten(loss)):
            return          # symbolic build: no value yet
        coll = autodiff.loss_collector()
        if coll is not None:  # inside a gradient trace: keep the traced value
            loss = _ops.sum(loss) if np.ndim(loss) else loss
            coll.append((loss, None, True))
            if name is not None:
                coll.append((loss, name, False))
            return
        value = float(np.asarray(loss).sum()) if np.ndim(loss) else float(loss)
        self._losses.append(value)
        if name is not None:
            self._named_losses[name] = self._named_losses.get(name, 0.0) + value

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"

    # -- calling --------------------------------------------------------------------------------

    def _call_accepts(self, arg):
        key = (type(self), arg)
        hit = _ACCEPTS.get(key)
        if hit is not None and "call" not in self.__dict__:
            return hit
        try:
            params = inspect.signature(self.call).parameters
        except (TypeError, ValueError):
            return False
        res = arg in params or any(p.kind == p.VAR_KEYWORD for p in params.values())
        if "call" not in self.__dict__:
            _ACCEPTS[key] = res
        return res

    def __call__(self, *args, **kwargs):
        if not args:
            if "inputs" in kwargs:
                args = (kwargs.pop("inputs"),)
            else:
                raise TypeError(f"{type(self).__name__} '{self.name}' must be called with inputs.")
        if len(args) == 1 and not kwargs and type(args[0]) is np.ndarray and self.built \
                and self._fast_eager and not autodiff.in_trace():
            # a built custom layer on one array: no shape rule to run (call checks itself)
            x = args[0]
            if x.dtype != _NP_DTYPES.get(self.dtype) and self._cast_inputs:
                x = self._convert(x)
            self._losses = []
            self._named_losses = {}
            if self._call_accepts("training"):
                return self.call(x, training=False)
            return self.call(x)
        leaves = flatten([args, kwargs])
        if any(isinstance(t, KerasTensor) for t in leaves):
            return self._symbolic_call(args, kwargs)
        if autodiff.in_trace():
            return self._traced_call(args, kwargs)
        return self._eager_call(args, kwargs)

    def _traced_call(self, args, kwargs):
        """Called inside another layer's ``call`` while it is traced for gradients."""
        training = autodiff.training_flag()
        if not self._uses_autograd:
            # a C-kernel layer: one autograd primitive around its forward/backward (built
            # first, so its weights exist to be traced arguments of the primitive)
            if not self.built:
                plain = map_structure(_ops.getval, list(args))
                kw = {k: map_structure(_ops.getval, v) for k, v in kwargs.items()}
                self._check_and_build(plain[0], kw)
            return autodiff.layer_primitive(self, args, kwargs, training)
        if not self.built:
            shapes = map_structure(lambda t: None if t is None else tuple(np.shape(_ops.getval(t))),
                                   args[0])
            self._build_input_shape = list(shapes) if isinstance(shapes, tuple) else shapes
            self.build(self._build_input_shape)
            self.built = True
        kw = dict(kwargs)
        if "training" not in kw and self._call_accepts("training"):
            kw["training"] = training
        return self.call(*args, **kw)

    def _shape_of(self, x):
        if isinstance(x, KerasTensor):
            return x.shape
        if x is None:
            return None
        return tuple(np.shape(x))

    def _check_and_build(self, inputs, kwargs):
        """compute_output_shape (validation) -> build -> output shape; producer-aware hints."""
        input_shape = map_structure(self._shape_of, inputs) if isinstance(inputs, (list, tuple)) \
            else self._shape_of(inputs)
        if isinstance(inputs, tuple):
            input_shape = list(input_shape)
        kwarg_shapes = {}
        for k, v in kwargs.items():
            if k == "training" or v is None:
                continue
            leaves = flatten(v)
            if any(isinstance(leaf, (KerasTensor, np.ndarray)) for leaf in leaves):
                kwarg_shapes[k] = map_structure(self._shape_of, list(v) if isinstance(v, tuple) else v)
        try:
            output_shape = self.compute_output_shape(input_shape)
            self.validate_call(input_shape, **kwarg_shapes)
        except ShapeError as err:
            hinted = producer_hint(self, err, inputs)
            if hinted is None and err.hint is None and err.fallback_hint:
                hinted = _with_hint(err, err.fallback_hint)
            if hinted is not None:
                raise hinted from None
            raise err.with_traceback(None) from None
        if not self.built:
            self._build_input_shape = input_shape
            self.build(input_shape)
            self.built = True
            # Build may resolve sizes (e.g. an inner layer); recompute.
            output_shape = self.compute_output_shape(input_shape)
        return input_shape, output_shape

    @property
    def _fast_eager(self):
        """Whether an eager call on one array may skip the shape checks: a custom layer whose
        only shape rule is its ``call`` (no compute_output_shape / validate_call of its own)."""
        cls = type(self)
        hit = _FAST_EAGER.get(cls)
        if hit is None:
            hit = _FAST_EAGER[cls] = (cls.forward is Layer.forward and
                                      cls.backward is Layer.backward and
                                      cls.compute_output_shape is Layer.compute_output_shape and
                                      cls.validate_call is Layer.validate_call and
                                      cls._eager_call is Layer._eager_call and
                                      cls.__call__ is Layer.__call__)
        return hit

    @property
    def _traces_shape(self):
        """Whether the output shape comes from running ``call`` on KerasTensors (a custom layer
        without compute_output_shape)."""
        return self._uses_autograd and \
            type(self).compute_output_shape is Layer.compute_output_shape

    def _trace_symbolic(self, args, kwargs):
        """Build, then run ``call`` on the KerasTensors: the output KerasTensors (or a
        ShapeError from the first op whose shapes do not fit, naming this layer)."""
        inputs = args[0]
        input_shape = map_structure(self._shape_of, inputs) \
            if isinstance(inputs, (list, tuple)) else self._shape_of(inputs)
        if isinstance(inputs, tuple):
            input_shape = list(input_shape)
        if not self.built:
            self._build_input_shape = input_shape
            self.build(input_shape)
            self.built = True
        kw = dict(kwargs)
        if "training" not in kw and self._call_accepts("training"):
            kw["training"] = None
        with tracing(self):
            try:
                out = self.call(*args, **kw)
            except ShapeError as err:
                raise err.with_traceback(None) from None
        if isinstance(out, tuple):
            out = list(out)
        for t in flatten(out):
            if not isinstance(t, KerasTensor):
                raise TypeError(
                    f"{type(self).__name__} '{self.name}': `call` returned {type(t).__name__} "
                    f"on symbolic inputs; compute outputs from the inputs with attnlstm.ops "
                    f"functions and operators (NumPy functions cannot see symbolic tensors).")
        return out

    def _symbolic_call(self, args, kwargs):
        inputs = args[0]
        for t in flatten([args, kwargs]):
            if t is not None and not isinstance(t, KerasTensor) and isinstance(t, np.ndarray):
                raise TypeError(
                    f"{type(self).__name__} '{self.name}' was called on a mix of symbolic tensors "
                    f"and NumPy arrays; pass only Input-derived tensors when building a model.")
        traced = None
        if self._traces_shape:
            traced = self._trace_symbolic(args, kwargs)
            output_shape = map_structure(lambda t: t.shape, traced)
        else:
            _, output_shape = self._check_and_build(inputs, kwargs)
        mask_in = map_structure(_symbolic_mask, inputs) \
            if isinstance(inputs, (list, tuple)) else _symbolic_mask(inputs)
        if "mask" in kwargs and kwargs["mask"] is not None:
            mask_in = kwargs["mask"]
        out_struct = _shape_structure(output_shape)
        with tracing(self):
            try:
                out_masks = self.compute_mask(inputs, mask_in)
            except ShapeError as err:
                raise err.with_traceback(None) from None
        flags = _mask_structure(out_masks, out_struct)
        inner = current_layer() is not None   # inside another layer's symbolic call: no node
        node = None if inner else Node(self, args, kwargs, None)
        dtype = self._output_dtype(inputs)
        traced_leaves = flatten(traced) if traced is not None else None
        first = next((t for t in flatten(inputs) if isinstance(t, KerasTensor)), None)
        in_batch = 0 if first is None or first.batch_axis is None else first.batch_axis
        counter = [0]

        def make(shape_and_flag):
            shape, mask = shape_and_flag
            flag = mask is not None
            k = counter[0]
            if traced_leaves is not None:
                t0 = traced_leaves[k]
                t = KerasTensor(shape, t0.dtype, layer=self, node=node, index=k, has_mask=flag,
                                batch_axis=t0.batch_axis)
            else:
                t = KerasTensor(shape, dtype, layer=self, node=node, index=k, has_mask=flag,
                                batch_axis=in_batch if in_batch < len(shape) else 0)
            t.keras_mask = mask if isinstance(mask, KerasTensor) else None
            counter[0] += 1
            return t

        outputs = _zip_structure(out_struct, flags, make)
        if node is not None:
            node.outputs = outputs
            self._inbound_nodes.append(node)
        return outputs

    def _output_dtype(self, inputs):
        return self.dtype

    def _convert(self, x):
        if x is None:
            return None
        if isinstance(x, Variable):
            x = x.value
        arr = np.asarray(x)
        if arr.dtype.kind == "c" or (self._cast_inputs and arr.dtype.kind not in "fiubO"):
            raise TypeError(f"{type(self).__name__} '{self.name}': inputs must be real numbers, "
                            f"got dtype {arr.dtype}. Received an array of shape {arr.shape}.")
        if self._cast_inputs and arr.dtype != self.dtype and arr.dtype.kind in "fiubO":
            try:
                arr = arr.astype(self.dtype)
            except (TypeError, ValueError) as exc:
                raise TypeError(f"{type(self).__name__} '{self.name}': inputs must be numbers, "
                                f"got an array of dtype {arr.dtype} ({exc}).") from None
        return arr

    def _eager_call(self, args, kwargs, training=False, record=False):
        """Convert, check, build, then ``call`` (or ``forward`` when `record`: ``(out, ctx)``)."""
        inputs = args[0]
        inputs = map_structure(self._convert, inputs) if isinstance(inputs, (list, tuple)) \
            else self._convert(inputs)
        kw = dict(kwargs)
        if kw.get("mask") is not None:
            m = kw["mask"]
            if isinstance(inputs, list) and isinstance(m, (list, tuple)):
                kw["mask"] = [None if mm is None else np.asarray(mm) for mm in m]
            else:
                kw["mask"] = np.asarray(m)
        if kw.get("initial_state") is not None:
            st = kw["initial_state"]
            st = list(st) if isinstance(st, (list, tuple)) else [st]
            kw["initial_state"] = [self._convert(v) for v in st]
        self._check_and_build(inputs, kw)
        if "training" not in kw and self._call_accepts("training"):
            kw["training"] = training
        self._losses = []
        self._named_losses = {}
        result = self.forward(inputs, *args[1:], **kw) if record else \
            self.call(inputs, *args[1:], **kw)
        if getattr(self, "activity_regularizer", None) is not None:
            result = regularizers.record_activity(self, result, record)
        return result

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # A call recorded with an activity regularizer adds the penalty's gradient in backward.
        regularizers.wrap_backward(cls)


class InputLayer(Layer):
    """The layer behind :func:`Input`: holds the model input's batch shape and dtype."""

    def __init__(self, batch_shape, dtype=None, name=None, **kwargs):
        super().__init__(name=name or backend.unique_name("input_layer"), dtype=dtype, **kwargs)
        self.batch_shape = tuple(batch_shape)
        self.built = True

    def get_config(self):
        return {"batch_shape": self.batch_shape, "dtype": self.dtype, "name": self.name}


class OpLayer(Layer):
    """One :mod:`attnlstm.ops` call on KerasTensors at model level (``x + inputs``,
    ``x[:, -1, :]``, ``ops.expand_dims(x, 1)`` outside any layer's ``call``), as a graph node:
    the model runs the op on arrays and trains through it (autograd). Not listed in
    ``Model.layers`` and holds no weights, as Keras 3's operation nodes."""

    _is_op_layer = True
    _cast_inputs = False

    def __init__(self, op_name, fn):
        super().__init__(name=backend.unique_name(op_name))
        self.op_name = op_name
        self.fn = fn
        self.built = True

    def call(self, *args, **kwargs):
        return self.fn(*args, **kwargs)

    def _eager_call(self, args, kwargs, training=False, record=False):
        kw = {k: v for k, v in kwargs.items() if k not in ("training", "mask")}
        self._losses = []
        self._named_losses = {}
        if record:
            return self.forward(*args, **kw)
        return self.fn(*args, **kw)

    def get_config(self):
        return {"name": self.name, "op": self.op_name}


def _op_node(op_name, fn, args, kwargs, out_specs):
    """The ops' node factory: an op on KerasTensors outside a layer becomes an OpLayer node."""
    layer = OpLayer(op_name, fn)
    node = Node(layer, tuple(args), dict(kwargs), None)
    counter = [0]

    def make(spec):
        t = KerasTensor(spec.shape, spec.dtype, layer=layer, node=node, index=counter[0],
                        batch_axis=spec.batch)
        counter[0] += 1
        return t
    outputs = make(out_specs) if not isinstance(out_specs, list) else [make(o) for o in out_specs]
    node.outputs = outputs
    layer._inbound_nodes.append(node)
    return outputs


set_node_factory(_op_node)


class _TrackedList(list):
    """A list attribute of a layer: layers and Variables added later are tracked too."""

    def __init__(self, owner, items):
        super().__init__(items)
        self._owner = owner

    def append(self, v):
        self._owner._track_value(v, "list")
        super().append(v)

    def extend(self, vs):
        vs = list(vs)
        for v in vs:
            self._owner._track_value(v, "list")
        super().extend(vs)

    def insert(self, i, v):
        self._owner._track_value(v, "list")
        super().insert(i, v)

    def __setitem__(self, i, v):
        for x in (v if isinstance(i, slice) else [v]):
            self._owner._track_value(x, "list")
        super().__setitem__(i, v)


class _TrackedDict(dict):
    """A dict attribute of a layer: layers and Variables added later are tracked too."""

    def __init__(self, owner, items):
        super().__init__(items)
        self._owner = owner

    def __setitem__(self, k, v):
        self._owner._track_value(v, "dict")
        super().__setitem__(k, v)

    def update(self, *a, **kw):
        for v in dict(*a, **kw).values():
            self._owner._track_value(v, "dict")
        super().update(*a, **kw)


def Input(shape=None, batch_size=None, dtype=None, sparse=None, batch_shape=None, name=None,
          tensor=None, optional=False):
    """A symbolic model input, as ``keras.Input``.

    Args:
        shape: shape without the batch axis, e.g. ``(None, 5)`` for sequences of any length of
            5 features. An int means ``(int,)``.
        batch_size: fixed batch size, or None.
        dtype: ``"float32"`` (default), ``"float64"``, or an integer type for Embedding inputs.
        batch_shape: the full shape including the batch axis (instead of shape and batch_size).
        name: name of the input layer.

    Returns:
        A :class:`KerasTensor` of shape ``(batch_size, *shape)``.

    Raises:
        ValueError: neither or both of `shape` and `batch_shape`, or a non-integer size.

    Example:
        >>> x = Input(shape=(None, 5))
        >>> x.shape
        (None, None, 5)
    """
    if sparse:
        raise ValueError("attnlstm does not support sparse inputs. Received: sparse=True")
    if shape is not None and batch_shape is not None:
        raise ValueError("Pass either `shape` or `batch_shape` to Input, not both. "
                         f"Received: shape={shape}, batch_shape={batch_shape}")
    if batch_shape is None:
        if shape is None:
            raise ValueError("Input needs a `shape` (without the batch axis) or a `batch_shape`. "
                             "Received: shape=None")
        if isinstance(shape, int):
            shape = (shape,)
        batch_shape = (batch_size,) + tuple(shape)
    batch_shape = tuple(batch_shape)
    for s in batch_shape:
        if s is not None and (not isinstance(s, (int, np.integer)) or s < 0):
            raise ValueError(f"Input sizes must be non-negative integers or None. "
                             f"Received: batch_shape={batch_shape}")
    layer = InputLayer(batch_shape, dtype=dtype, name=name)
    node = Node(layer, (), {}, None)
    t = KerasTensor(batch_shape, layer.dtype, layer=layer, node=node, index=0, name=layer.name)
    node.outputs = t
    layer._inbound_nodes.append(node)
    return t


# ---------------------------------------------------------------------------------------------
# Helpers shared by layers


def _names(params):
    return "[" + ", ".join(f"'{p.name}'" for p in params) + "]"


def _shapes(shapes):
    return "[" + ", ".join(format_shape(s) for s in shapes) + "]"


def _shape_structure(output_shape):
    """A shape is a tuple of ints/None; a structure of shapes is a list (or dict) of those."""
    return output_shape


def _is_shape(s):
    return isinstance(s, tuple) and all(d is None or isinstance(d, (int, np.integer)) for d in s)


def map_shapes(fn, shapes):
    """`fn` applied to each shape of a structure of shapes (a shape tuple is one leaf)."""
    if _is_shape(shapes):
        return fn(shapes)
    if isinstance(shapes, (list, tuple)):
        return type(shapes)(map_shapes(fn, s) for s in shapes)
    if isinstance(shapes, dict):
        return {k: map_shapes(fn, v) for k, v in shapes.items()}
    return fn(shapes)


def _symbolic_mask(t):
    """The Keras mask a KerasTensor carries, as a symbolic bool tensor, or None."""
    if not isinstance(t, KerasTensor) or not t.has_mask:
        return None
    if t.keras_mask is not None:
        return t.keras_mask
    # a mask with no recorded tensor (e.g. a tensor made with has_mask=True): a time mask
    shape = t.shape[:2] if len(t.shape) >= 3 else t.shape
    return KerasTensor(shape, "bool", batch_axis=t.batch_axis)


def output_masks(masks, n):
    """`compute_mask`'s result as one mask (or None) per output, for `n` outputs (Keras 3's
    rule: the flattened masks are zipped with the flattened outputs, missing ones are None).
    One output given a list of masks (a list-input layer's default) takes the first one."""
    flat = flatten(masks) if isinstance(masks, (list, tuple, dict)) else [masks]
    if n == 1:
        return [next((m for m in flat if m is not None), None)]
    return (list(flat) + [None] * n)[:n]


def _mask_structure(masks, shapes):
    """`compute_mask`'s result laid out as the output structure of shapes."""
    leaves = []
    map_shapes(leaves.append, shapes)
    flat = iter(output_masks(masks, len(leaves)))
    return map_shapes(lambda _: next(flat), shapes)


def _zip_structure(shapes, flags, fn):
    if _is_shape(shapes):
        return fn((shapes, flags))
    if isinstance(shapes, list):
        return [_zip_structure(s, f, fn) for s, f in zip(shapes, flags)]
    if isinstance(shapes, dict):
        return {k: _zip_structure(shapes[k], flags[k], fn) for k in shapes}
    raise TypeError(f"Bad output shape structure: {shapes!r}")


def check_rank(layer, argument, shape, expected, hint=None):
    """Raise ShapeError unless `shape` has len(expected) axes; `expected` names the axes."""
    if shape is None or len(shape) != len(expected):
        raise shape_error(layer, argument, expected, shape, hint)


def check_time_mask(layer, argument, input_shape, mask_shape):
    """A time mask must be (batch, timesteps) matching the inputs' first two axes."""
    mask_shape = tuple(mask_shape)
    expected = (input_shape[0] if input_shape[0] is not None else "batch",
                input_shape[1] if input_shape[1] is not None else "timesteps")
    ok = len(mask_shape) == 2 and all(
        a is None or b is None or a == b for a, b in zip(mask_shape, input_shape[:2]))
    if not ok:
        hint = None
        if len(mask_shape) == 3 and mask_shape[-1] == 1:
            hint = "drop the trailing axis of size 1, e.g. mask[..., 0]."
        elif len(mask_shape) == 3:
            hint = "a time mask has one entry per (sample, timestep); reduce the feature axis, e.g. np.any(x != 0, axis=-1)."
        elif len(mask_shape) == 2 and mask_shape[1] != input_shape[1]:
            hint = (f"the mask has {mask_shape[1]} timesteps but the inputs have {input_shape[1]}; "
                    "build the mask from the same (padded) inputs.")
        raise shape_error(layer, argument, expected, mask_shape, hint)


def producer_hint(layer, err, inputs):
    """Re-word a ShapeError with a hint about the layer that produced the offending input.

    Recognises: an LSTM without return_sequences feeding a layer that needs a sequence, an LSTM
    with return_sequences feeding a layer that needs one vector per sequence, an Input with no
    time axis, and a batch size put inside Input's `shape`. Returns None when nothing matches.
    """
    if err.hint is not None or err.argument not in ("inputs",) or not isinstance(err.expected, tuple):
        return None
    tensors = [t for t in flatten(inputs) if isinstance(t, KerasTensor)]
    got = err.got
    if not tensors or not isinstance(got, tuple):
        return None
    t = next((t for t in tensors if t.shape == got), tensors[0])
    prod = t.producer
    want = len(err.expected)
    hint = None
    pname = type(prod).__name__ if prod is not None else ""
    if getattr(prod, "sequence_producer", False):
        rs = getattr(prod, "return_sequences", None)
        if want == len(got) + 1 and rs is False:
            hint = (f"the previous {pname} '{prod.name}' returns only its last output; "
                    f"pass return_sequences=True to it.")
        elif want == len(got) - 1 and rs is True:
            hint = (f"the previous {pname} '{prod.name}' returns the whole sequence "
                    f"(return_sequences=True); set return_sequences=False, or reduce the time axis "
                    f"with GlobalAveragePooling1D or an attention pooling layer.")
    elif isinstance(prod, InputLayer):
        if want == len(got) + 1:
            inner = got[1:]
            hint = (f"Input(shape={format_shape(inner)}) has no time axis; use "
                    f"Input(shape=(timesteps, {inner[-1] if inner else 'features'})), or "
                    f"Input(shape=(None, {inner[-1] if inner else 'features'})) for variable-length "
                    f"sequences.")
        elif want == len(got) - 1 and len(got) == 3:
            # (batch, T, F) where one vector per sample is expected: most often a sequence fed
            # to a vector layer, sometimes a batch size written into `shape`.
            hint = (f"Input(shape={format_shape(got[1:])}) gives sequences (batch, timesteps, "
                    f"features) but this layer takes one vector per sample; reduce the time axis "
                    f"first (an LSTM without return_sequences, or GlobalAveragePooling1D). If "
                    f"{got[1]} is the batch size, note that `shape` excludes the batch axis: use "
                    f"Input(shape={format_shape(got[2:])}, batch_size={got[1]}).")
        elif want == len(got) - 1 and len(got) > 3:
            hint = (f"Input `shape` (like a first layer's `input_shape`) excludes the batch axis: "
                    f"use Input(shape={format_shape(got[2:])}, batch_size={got[1]}) or simply "
                    f"Input(shape={format_shape(got[2:])}).")
    if hint is None:
        return None
    return _with_hint(err, hint)


def _with_hint(err, hint):
    return ShapeError(str(err) + f"\nHint: {hint}", layer=err.layer, argument=err.argument,
                      expected=err.expected, got=err.got, hint=hint)
