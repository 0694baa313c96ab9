"""The few Keras ops that Keras 3 records in functional graphs to carry masks.

A Keras 3 model whose ``Embedding(mask_zero=True)`` or ``Masking`` feeds an LSTM stores the mask
as its own graph nodes -- ``NotEqual`` -> ``Any`` -> ``ConvertToTensor`` / ``LogicalOr`` --
passed to the next layers as ``mask=``. These layers compute the same boolean arrays, so such
files load and predict as in Keras. They are not differentiable (masks carry no gradient).

Source: ``keras/src/ops/{numpy,core}.py`` (Keras 3.15.1), classes ``NotEqual``, ``Equal``,
``Any``, ``All``, ``LogicalOr``, ``LogicalAnd``, ``LogicalNot``, ``ConvertToTensor``, ``Cast``.
"""
import numpy as np

from ..engine.base import KerasTensor, Layer

__all__ = ["KERAS_OPS"]


def _shape(x):
    return x.shape if isinstance(x, KerasTensor) else tuple(np.shape(x))


def _broadcast(a, b):
    a, b = tuple(a), tuple(b)
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + a, (1,) * (n - len(b)) + b
    out = []
    for x, y in zip(a, b):
        if x == 1:
            out.append(y)
        elif y == 1 or y == x or y is None:
            out.append(x)
        elif x is None:
            out.append(y)
        else:
            raise ValueError(f"Cannot broadcast shapes {a} and {b}.")
    return tuple(out)


class _KerasOp(Layer):
    """A Keras op as a layer: ``name`` is its only common config key."""
    _cast_inputs = False
    _out_dtype = "bool"

    def __init__(self, name=None, **kwargs):
        kwargs.pop("trainable", None)
        kwargs.pop("dtype", None)
        super().__init__(name=name)

    def _output_dtype(self, inputs):
        return self._out_dtype

    def get_config(self):
        return {"name": self.name}


class _Binary(_KerasOp):
    _fn = None

    def __call__(self, x, y, **kwargs):
        return super().__call__(x, y, **kwargs)

    def _symbolic_call(self, args, kwargs):
        self._second_shape = _shape(args[1])
        return super()._symbolic_call(args, kwargs)

    def compute_output_shape(self, input_shape):
        return _broadcast(input_shape, getattr(self, "_second_shape", ()))

    def call(self, x, y):
        return type(self)._fn(np.asarray(x), np.asarray(y))


class NotEqual(_Binary):
    _fn = staticmethod(np.not_equal)


class Equal(_Binary):
    _fn = staticmethod(np.equal)


class LogicalOr(_Binary):
    _fn = staticmethod(np.logical_or)


class LogicalAnd(_Binary):
    _fn = staticmethod(np.logical_and)


class LogicalNot(_KerasOp):
    def call(self, x):
        return np.logical_not(x)


class _Reduce(_KerasOp):
    _fn = None

    def __init__(self, axis=None, keepdims=False, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.axis = axis
        self.keepdims = bool(keepdims)

    def _axes(self, ndim):
        if self.axis is None:
            return tuple(range(ndim))
        axes = self.axis if isinstance(self.axis, (list, tuple)) else (self.axis,)
        return tuple(a % ndim for a in axes)

    def compute_output_shape(self, input_shape):
        axes = self._axes(len(input_shape))
        if self.keepdims:
            return tuple(1 if i in axes else s for i, s in enumerate(input_shape))
        return tuple(s for i, s in enumerate(input_shape) if i not in axes)

    def call(self, x):
        x = np.asarray(x)
        return type(self)._fn(x, axis=self._axes(x.ndim), keepdims=self.keepdims)

    def get_config(self):
        return {"name": self.name, "axis": self.axis, "keepdims": self.keepdims}


class Any(_Reduce):
    _fn = staticmethod(np.any)


class All(_Reduce):
    _fn = staticmethod(np.all)


class ConvertToTensor(_KerasOp):
    def __init__(self, dtype=None, sparse=None, ragged=None, name=None, **kwargs):
        if sparse or ragged:
            raise ValueError(f"ConvertToTensor: sparse/ragged tensors are not supported by "
                             f"attnlstm. Received: sparse={sparse}, ragged={ragged}")
        super().__init__(name=name, **kwargs)
        self._target = None if dtype is None else np.dtype(dtype).name

    def _output_dtype(self, inputs):
        return self._target or (inputs.dtype if isinstance(inputs, KerasTensor) else "float32")

    def call(self, x):
        x = np.asarray(x)
        return x if self._target is None else x.astype(self._target)

    def get_config(self):
        return {"name": self.name, "dtype": self._target, "sparse": None, "ragged": None}


class Cast(ConvertToTensor):
    def __init__(self, dtype, name=None, **kwargs):
        super().__init__(dtype=dtype, name=name, **kwargs)

    def get_config(self):
        return {"name": self.name, "dtype": self._target}


KERAS_OPS = {c.__name__: c for c in (NotEqual, Equal, LogicalOr, LogicalAnd, LogicalNot, Any,
                                     All, ConvertToTensor, Cast)}
