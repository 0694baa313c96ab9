"""Weight constraints with Keras 3's names, formulas and defaults (keras/src/constraints).

A constraint is a callable ``projected = constraint(w)`` on a NumPy array. Layers take them as
``kernel_constraint=``, ``bias_constraint=``, ``embeddings_constraint=``...; the optimizer applies
each trainable weight's constraint right after its update (``variable.assign(constraint(variable))``
in Keras' ``BaseOptimizer.apply``)::

    >>> import numpy as np
    >>> from attnlstm import constraints
    >>> constraints.NonNeg()(np.array([-1.0, 2.0]))
    array([0., 2.])
    >>> constraints.get("max_norm").get_config()
    {'max_value': 2, 'axis': 0}

Norms are taken over `axis` (default 0: for a Dense kernel `(D, U)`, each unit's incoming weight
vector), and divided as ``w * desired / (epsilon + norm)`` with Keras' epsilon 1e-7.

Source: ``keras/src/constraints/constraints.py`` and ``__init__.py`` (Keras 3.15.1).
"""

import numpy as np

from ._identifiers import resolve

__all__ = ["Constraint", "MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm", "get", "serialize",
           "deserialize"]

# Keras' fuzz factor (keras.config.epsilon()) in the denominators.
EPSILON = 1e-7


def _axis(axis):
    return tuple(axis) if isinstance(axis, (list, tuple)) else axis


def _norms(w, axis):
    return np.sqrt(np.sum(np.square(w), axis=_axis(axis), keepdims=True))


def _as_float(w):
    w = np.asarray(getattr(w, "value", w))
    return w if w.dtype.kind == "f" else w.astype(np.float32)


class Constraint:
    """Base class: ``__call__(w)`` returns the projected weight (the identity here)."""

    def __call__(self, w):
        return w

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        cfg = self.get_config()
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in cfg.items())})"


class MaxNorm(Constraint):
    """Rescales each weight vector along `axis` to norm <= max_value (``keras.constraints.MaxNorm``).

    ``w * clip(norm, 0, max_value) / (epsilon + norm)``.

    Args:
        max_value: the largest norm allowed (default 2).
        axis: int or list of ints, the axes the norm is taken over (default 0).
    """

    def __init__(self, max_value=2, axis=0):
        self.max_value = max_value
        self.axis = axis

    def __call__(self, w):
        w = _as_float(w)
        norms = _norms(w, self.axis)
        desired = np.clip(norms, 0, self.max_value)
        return w * (desired / (w.dtype.type(EPSILON) + norms))

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    """``maximum(w, 0)`` (``keras.constraints.NonNeg``)."""

    def __call__(self, w):
        w = _as_float(w)
        return np.maximum(w, w.dtype.type(0))


class UnitNorm(Constraint):
    """Rescales each weight vector along `axis` to unit norm: ``w / (epsilon + norm)``
    (``keras.constraints.UnitNorm``).

    Args:
        axis: int or list of ints (default 0).
    """

    def __init__(self, axis=0):
        self.axis = axis

    def __call__(self, w):
        w = _as_float(w)
        return w / (w.dtype.type(EPSILON) + _norms(w, self.axis))

    def get_config(self):
        return {"axis": self.axis}


class MinMaxNorm(Constraint):
    """Moves each weight vector's norm along `axis` into [min_value, max_value]
    (``keras.constraints.MinMaxNorm``)::

        desired = rate * clip(norm, min_value, max_value) + (1 - rate) * norm
        w * desired / (epsilon + norm)

    Args:
        min_value, max_value: the bounds (defaults 0 and 1).
        rate: 1 enforces strictly; below 1 moves a fraction of the way each step.
        axis: int or list of ints (default 0).
    """

    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        self.min_value = min_value
        self.max_value = max_value
        self.rate = rate
        self.axis = axis

    def __call__(self, w):
        w = _as_float(w)
        t = w.dtype.type
        norms = _norms(w, self.axis)
        desired = t(self.rate) * np.clip(norms, self.min_value, self.max_value) + \
            t(1 - self.rate) * norms
        return w * (desired / (t(EPSILON) + norms))

    def get_config(self):
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate,
                "axis": self.axis}


_CLASSES = (Constraint, MaxNorm, MinMaxNorm, NonNeg, UnitNorm)
# Keras' table: class names and their snake_case forms ("max_norm", "non_neg", ...).
_BY_NAME = {c.__name__: c for c in _CLASSES}
_BY_NAME.update({"constraint": Constraint, "max_norm": MaxNorm, "min_max_norm": MinMaxNorm,
                 "non_neg": NonNeg, "unit_norm": UnitNorm})


def serialize(constraint):
    """Keras' serialized form ``{"module", "class_name", "config", "registered_name"}``;
    None stays None, a plain function gives its name."""
    if constraint is None:
        return None
    if isinstance(constraint, Constraint):
        builtin = type(constraint) in _CLASSES
        return {"module": "keras.constraints" if builtin else type(constraint).__module__,
                "class_name": type(constraint).__name__, "config": constraint.get_config(),
                "registered_name": None if builtin else type(constraint).__name__}
    return getattr(constraint, "__name__", repr(constraint))


def deserialize(config, custom_objects=None):
    """A constraint from :func:`serialize`'s dict (or Keras 2's ``{"class_name", "config"}``)."""
    objects = dict(_BY_NAME)
    objects.update(custom_objects or {})
    cls = objects.get(config.get("class_name")) or objects.get(config.get("registered_name"))
    if cls is None:
        raise ValueError(f"Could not interpret constraint identifier: {config}. Known "
                         f"constraints: {sorted(_BY_NAME)} (pass custom_objects for others).")
    return cls.from_config(dict(config.get("config") or {}))


def get(identifier):
    """A constraint from a Keras identifier (``keras.constraints.get``).

    Args:
        identifier: None, a name (``"max_norm"``, ``"NonNeg"``...: the class with its
            defaults), a config dict, a Constraint instance or class, or a callable
            ``f(w) -> w'``.

    Returns:
        The constraint, or None.

    Raises:
        ValueError: an unknown name or an object that is not callable.
    """
    return resolve(identifier, _BY_NAME, deserialize, "constraint")
