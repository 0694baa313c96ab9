"""Learning-rate schedules with Keras 3's formulas, names and arguments.

A schedule maps the optimizer's step count (``optimizer.iterations``, the number of updates
already applied) to a learning rate. As in Keras, the math runs in float32 (the dtype of a Python
float ``initial_learning_rate`` under ``floatx() == "float32"``), so values agree with Keras'
schedules to float32 rounding::

    >>> from attnlstm.optimizers import schedules
    >>> s = schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    >>> round(s(20), 6)
    0.025

Source: ``keras/src/optimizers/schedules/learning_rate_schedule.py`` (Keras 3.15.1).
"""
import math

import numpy as np

__all__ = ["LearningRateSchedule", "ExponentialDecay", "PiecewiseConstantDecay",
           "PolynomialDecay", "InverseTimeDecay", "CosineDecay", "CosineDecayRestarts",
           "serialize", "deserialize", "get"]

_F = np.float32  # Keras converts a Python float learning rate to floatx() = float32


def _f(x):
    return _F(x)


class LearningRateSchedule:
    """Base class of learning-rate schedules; subclass it and override ``__call__(step)``.

    ``__call__(step)`` takes the optimizer's step (an int, the number of updates applied so far)
    and returns the learning rate (a float). Override ``get_config()`` too to make a subclass
    serializable; ``from_config(config)`` calls ``cls(**config)``.

    Example::

        class Halving(LearningRateSchedule):
            def __init__(self, lr0):
                self.lr0 = lr0
            def __call__(self, step):
                return self.lr0 * 0.5 ** (step // 100)
            def get_config(self):
                return {"lr0": self.lr0}
    """

    def __call__(self, step):
        raise NotImplementedError(
            f"Learning rate schedule '{type(self).__name__}' must override `__call__(self, step)`.")

    def get_config(self):
        raise NotImplementedError(
            f"Learning rate schedule '{type(self).__name__}' must override `get_config()` in "
            "order to be serializable.")

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        try:
            cfg = self.get_config()
        except NotImplementedError:
            return f"<{type(self).__name__}>"
        args = ", ".join(f"{k}={v!r}" for k, v in cfg.items())
        return f"{type(self).__name__}({args})"


def _check_decay_steps(value, arg="decay_steps"):
    if value <= 0:
        raise ValueError(f"Argument `{arg}` must be > 0. Received: {arg}={value}")


class ExponentialDecay(LearningRateSchedule):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)``; with ``staircase=True``
    the exponent is floored (the rate drops in steps).

    Args:
        initial_learning_rate: float, the rate at step 0.
        decay_steps: positive int or float.
        decay_rate: float.
        staircase: bool, floor ``step / decay_steps``.
        name: str.

    Raises:
        ValueError: ``decay_steps <= 0``.
    """

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name="ExponentialDecay"):
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.decay_rate = decay_rate
        self.staircase = staircase
        self.name = name
        _check_decay_steps(decay_steps)

    def __call__(self, step):
        p = _f(step) / _f(self.decay_steps)
        if self.staircase:
            p = np.floor(p)
        return float(_f(self.initial_learning_rate) * np.power(_f(self.decay_rate), p))

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase, "name": self.name}


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[0]`` while ``step <= boundaries[0]``, ``values[i]`` while
    ``boundaries[i-1] < step <= boundaries[i]``, ``values[-1]`` after the last boundary.

    Args:
        boundaries: increasing list of steps (ints).
        values: list of learning rates, one more than ``boundaries``.
        name: str.

    Raises:
        ValueError: ``len(boundaries) != len(values) - 1``.
    """

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        if len(boundaries) != len(values) - 1:
            raise ValueError(
                "The length of boundaries should be 1 less than the length of values. Received: "
                f"boundaries={boundaries} of length {len(boundaries)}, and values={values} of "
                f"length {len(values)}.")
        self.boundaries = boundaries
        self.values = values
        self.name = name

    def __call__(self, step):
        # Keras sums value * [step in range] over the ranges (exactly one range holds).
        b, v = self.boundaries, self.values
        if step <= b[0]:
            return float(_f(v[0]))
        if step > b[-1]:
            return float(_f(v[-1]))
        for low, high, value in zip(b[:-1], b[1:], v[1:-1]):
            if low < step <= high:
                return float(_f(value))
        return 0.0  # unreachable for increasing boundaries; Keras' sum is 0 too

    def get_config(self):
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


class PolynomialDecay(LearningRateSchedule):
    """``(initial - end) * (1 - step / decay_steps) ** power + end``, step capped at
    ``decay_steps``; with ``cycle=True`` ``decay_steps`` grows to the first multiple above step.

    Args:
        initial_learning_rate: float.
        decay_steps: positive int.
        end_learning_rate: float, default 0.0001.
        power: float, default 1.0.
        cycle: bool.
        name: str.

    Raises:
        ValueError: ``decay_steps <= 0``.
    """

    def __init__(self, initial_learning_rate, decay_steps, end_learning_rate=0.0001, power=1.0,
                 cycle=False, name="PolynomialDecay"):
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.end_learning_rate = end_learning_rate
        self.power = power
        self.cycle = cycle
        self.name = name
        _check_decay_steps(decay_steps)

    def __call__(self, step):
        lr0 = _f(self.initial_learning_rate)
        end = _f(self.end_learning_rate)
        power = _f(self.power)
        s = _f(step)
        ds = _f(self.decay_steps)
        if self.cycle:
            mult = _F(1.0) if s == 0 else np.ceil(s / _f(self.decay_steps))
            ds = ds * mult
        else:
            s = np.minimum(s, ds)
        p = s / ds
        return float((lr0 - end) * np.power(_F(1) - p, power) + end)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "end_learning_rate": self.end_learning_rate,
                "power": self.power, "cycle": self.cycle, "name": self.name}


class InverseTimeDecay(LearningRateSchedule):
    """``initial_learning_rate / (1 + decay_rate * step / decay_steps)`` (exponent floored
    with ``staircase=True``).

    Args:
        initial_learning_rate: float.
        decay_steps: positive number.
        decay_rate: float.
        staircase: bool.
        name: str.

    Raises:
        ValueError: ``decay_steps <= 0``.
    """

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name="InverseTimeDecay"):
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.decay_rate = decay_rate
        self.staircase = staircase
        self.name = name
        _check_decay_steps(decay_steps)

    def __call__(self, step):
        p = _f(step) / _f(self.decay_steps)
        if self.staircase:
            p = np.floor(p)
        return float(_f(self.initial_learning_rate) / (_F(1) + _f(self.decay_rate) * p))

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase, "name": self.name}


def _cosine(step, decay_steps, decay_from, alpha):
    frac = step / decay_steps
    cosine_decayed = _F(0.5) * (_F(1.0) + np.cos(_F(math.pi) * frac))
    decayed = _f(1 - alpha) * cosine_decayed + _f(alpha)
    return decay_from * decayed


class CosineDecay(LearningRateSchedule):
    """Cosine decay (Loshchilov & Hutter, SGDR) with an optional linear warmup, as Keras 3.

    Without warmup (``warmup_target=None``)::

        lr(step) = initial * ((1 - alpha) * 0.5 * (1 + cos(pi * min(step, decay_steps) / decay_steps)) + alpha)

    With warmup, the rate goes linearly from ``initial_learning_rate`` to ``warmup_target`` over
    ``warmup_steps``, then decays from ``warmup_target`` as above over ``decay_steps``.

    Args:
        initial_learning_rate: float.
        decay_steps: positive int.
        alpha: float, the final rate as a fraction of the decayed-from rate.
        name: str.
        warmup_target: float or None.
        warmup_steps: int.

    Raises:
        ValueError: ``decay_steps <= 0``.
    """

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay",
                 warmup_target=None, warmup_steps=0):
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.alpha = alpha
        self.name = name
        self.warmup_steps = warmup_steps
        self.warmup_target = warmup_target
        _check_decay_steps(decay_steps)

    def __call__(self, step):
        lr0 = _f(self.initial_learning_rate)
        ds = _f(self.decay_steps)
        s = _f(step)
        if self.warmup_target is None:
            return float(_cosine(np.minimum(s, ds), ds, lr0, self.alpha))
        target = _f(self.warmup_target)
        ws = _f(self.warmup_steps)
        s = np.minimum(s, ds + ws)
        if s < ws:
            return float((target - lr0) * (s / ws) + lr0)
        return float(_cosine(s - ws, ds, target, self.alpha))

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "alpha": self.alpha, "name": self.name,
                "warmup_target": self.warmup_target, "warmup_steps": self.warmup_steps}


class CosineDecayRestarts(LearningRateSchedule):
    """Cosine decay with warm restarts (SGDR, Loshchilov & Hutter 2017), as Keras 3.

    The first period lasts ``first_decay_steps``; each next period is ``t_mul`` times longer
    and starts from a rate ``m_mul`` times the previous start.

    Args:
        initial_learning_rate: float.
        first_decay_steps: positive int.
        t_mul: float, period growth factor (default 2.0).
        m_mul: float, restart-rate factor (default 1.0).
        alpha: float, minimum rate as a fraction of ``initial_learning_rate``.
        name: str.

    Raises:
        ValueError: ``first_decay_steps <= 0``.
    """

    def __init__(self, initial_learning_rate, first_decay_steps, t_mul=2.0, m_mul=1.0, alpha=0.0,
                 name="SGDRDecay"):
        self.initial_learning_rate = initial_learning_rate
        self.first_decay_steps = first_decay_steps
        self._t_mul = t_mul
        self._m_mul = m_mul
        self.alpha = alpha
        self.name = name
        _check_decay_steps(first_decay_steps, "first_decay_steps")

    def __call__(self, step):
        lr0 = _f(self.initial_learning_rate)
        alpha = _f(self.alpha)
        t_mul = _f(self._t_mul)
        m_mul = _f(self._m_mul)
        frac = _f(step) / _f(self.first_decay_steps)
        if t_mul == 1.0:
            i_restart = np.floor(frac)
            frac = frac - i_restart
        else:
            i_restart = np.floor(np.log(_F(1.0) - frac * (_F(1.0) - t_mul)) / np.log(t_mul))
            sum_r = (_F(1.0) - np.power(t_mul, i_restart)) / (_F(1.0) - t_mul)
            frac = (frac - sum_r) / np.power(t_mul, i_restart)
        m_fac = np.power(m_mul, i_restart)
        cosine_decayed = _F(0.5) * m_fac * (_F(1.0) + np.cos(_F(math.pi) * frac))
        decayed = (_F(1) - alpha) * cosine_decayed + alpha
        return float(lr0 * decayed)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "first_decay_steps": self.first_decay_steps, "t_mul": self._t_mul,
                "m_mul": self._m_mul, "alpha": self.alpha, "name": self.name}


_ALL = {c.__name__: c for c in (ExponentialDecay, PiecewiseConstantDecay, PolynomialDecay,
                                InverseTimeDecay, CosineDecay, CosineDecayRestarts)}


def serialize(schedule):
    """``{"class_name": ..., "config": ...}`` of a schedule (Keras' layout, minus module)."""
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


def deserialize(config, custom_objects=None):
    """The schedule described by ``{"class_name": ..., "config": ...}``.

    Raises:
        ValueError: an unknown class name.
    """
    objs = dict(_ALL)
    objs.update(custom_objects or {})
    name = config.get("class_name")
    if name not in objs:
        raise ValueError(f"Unknown learning rate schedule {name!r}. Expected one of "
                         f"{sorted(objs)}. Received: config={config!r}")
    return objs[name].from_config(config.get("config", {}))


def get(identifier):
    """A schedule instance, or one from a serialized dict."""
    if isinstance(identifier, LearningRateSchedule):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    raise ValueError(f"Could not interpret learning rate schedule identifier: {identifier!r}")
