"""Optimizers with Keras 3's update rules, defaults and gradient processing, in NumPy.

Each step does what Keras 3.15.1's ``BaseOptimizer.apply`` does, in this order:

1. skip variables whose gradient is ``None`` (with a warning; all ``None`` is an error);
2. divide by ``loss_scale_factor`` if set;
3. clip the gradients: ``clipnorm`` (each gradient to L2 norm <= clipnorm), else
   ``global_clipnorm`` (all gradients scaled together), else ``clipvalue`` (elementwise);
4. decoupled weight decay ``v -= v * weight_decay * lr`` on every variable not excluded
   (:meth:`Optimizer.exclude_from_weight_decay`);
5. the optimizer's update rule, per variable, in the variable's dtype (float32 math for float32
   variables, as Keras casts the learning rate and the gradient to the variable's dtype);
6. each variable's ``constraint`` (if any) projects it: ``variable.assign(constraint(variable))``;
7. ``iterations += 1``.

Variables are :class:`attnlstm.Variable` objects (or anything with a ``.value`` ndarray and a
``.name``); they are updated in place, so a model's references stay valid::

    >>> import numpy as np, attnlstm
    >>> from attnlstm import optimizers
    >>> w = attnlstm.Variable(np.ones(3, np.float32), "w")
    >>> opt = optimizers.Adam(learning_rate=0.1)
    >>> opt.apply([np.full(3, 0.5, np.float32)], [w])
    >>> w.value.round(4), opt.iterations
    (array([0.9, 0.9, 0.9], dtype=float32), 1)

Source: ``keras/src/optimizers/{base_optimizer,sgd,adam,adamw,rmsprop}.py`` (Keras 3.15.1) and
the TensorFlow backend's ``_clip_by_norm`` (``tf.clip_by_norm``).
"""
import re
import warnings

import numpy as np

from ..backend import to_snake_case
from . import schedules
from .schedules import LearningRateSchedule

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "get", "serialize", "deserialize",
           "schedules", "LearningRateSchedule"]


def _value(variable):
    v = variable.value if hasattr(variable, "value") else variable
    if not isinstance(v, np.ndarray):
        raise TypeError(f"Optimizer variables must hold NumPy arrays; {variable!r} holds "
                        f"{type(v).__name__}.")
    return v


def _assign(variable, value):
    """``variable.assign(value)`` in place, so references to the array stay valid."""
    v = _value(variable)
    value = np.asarray(value)
    if value.shape != v.shape:
        raise ValueError(f"The constraint of variable '{getattr(variable, 'path', variable)}' "
                         f"returned shape {value.shape}, but the variable has shape {v.shape}.")
    v[...] = value


def _kcast(x, dtype):
    """Keras' ``ops.cast(python_float, dtype)``: TensorFlow converts a Python float to a float32
    tensor first, so the constant is float32-rounded even for float64 variables."""
    return np.dtype(dtype).type(np.float32(x))


def _clip_by_norm(g, clip_norm):
    """tf.clip_by_norm: ``g * clip_norm / max(||g||, clip_norm)`` in g's dtype."""
    c = g.dtype.type(clip_norm)
    l2sum = np.sum(g * g)
    l2norm = np.sqrt(l2sum) if l2sum > 0 else l2sum
    return (g * c) / np.maximum(l2norm, c)


def _clip_by_global_norm(grads, clip_norm):
    """Keras' clip_by_global_norm: one scale for all gradients; NaN scale if the norm is not
    finite (as Keras)."""
    present = [g for g in grads if g is not None]
    dtype = np.result_type(*present)
    sq = np.array([np.sum(np.square(g)) for g in present], dtype=dtype)
    use_norm = np.sqrt(np.sum(sq))
    c = dtype.type(clip_norm)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = c * np.minimum(dtype.type(1) / use_norm, dtype.type(1) / c)
        scale = scale + (use_norm - use_norm)
    return [None if g is None else g * scale.astype(g.dtype) for g in grads]


class Optimizer:
    """Base class of attnlstm optimizers (Keras 3's ``keras.optimizers.Optimizer`` contract).

    Subclasses override ``build_slots(variable) -> dict of name -> zero array`` (the per-variable
    state, e.g. momentum) and ``update_step(gradient, variable_value, slots, learning_rate)``
    which updates ``variable_value`` (an ndarray) and ``slots`` in place.

    Args:
        learning_rate: float, a :class:`~attnlstm.optimizers.schedules.LearningRateSchedule`,
            or a callable with no arguments returning the rate.
        weight_decay: float or None; decoupled weight decay ``v -= v * weight_decay * lr``
            applied before each update.
        clipnorm: float or None; clip each gradient to this L2 norm.
        clipvalue: float or None; clip each gradient element to ``[-clipvalue, clipvalue]``.
        global_clipnorm: float or None; scale all gradients so their joint L2 norm is at most
            this.
        use_ema: must be False (the moving average of weights is not implemented).
        ema_momentum, ema_overwrite_frequency: accepted for Keras compatibility (unused).
        loss_scale_factor: float or None; gradients are divided by it before clipping.
        gradient_accumulation_steps: must be None (not implemented).
        name: str; default the snake-case class name.

    Raises:
        ValueError: more than one of clipnorm / clipvalue / global_clipnorm set, a learning rate
            that is not a number, schedule or callable, unknown keyword arguments.
        NotImplementedError: ``use_ema=True`` or ``gradient_accumulation_steps``.
    """

    def __init__(self, learning_rate, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None, **kwargs):
        if kwargs.pop("decay", None) is not None:
            warnings.warn("Argument `decay` is no longer supported and will be ignored.")
        if kwargs:
            raise ValueError(f"Argument(s) not recognized: {kwargs}")
        if use_ema:
            raise NotImplementedError(
                "use_ema=True (an exponential moving average of the weights) is not implemented "
                "in attnlstm. Received: use_ema=True")
        if gradient_accumulation_steps:
            raise NotImplementedError(
                "gradient_accumulation_steps is not implemented in attnlstm. Received: "
                f"gradient_accumulation_steps={gradient_accumulation_steps}")
        if sum(a is not None for a in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError(
                "Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. "
                f"Received: clipnorm={clipnorm}, clipvalue={clipvalue}, "
                f"global_clipnorm={global_clipnorm}")
        self.name = name or to_snake_case(type(self).__name__)
        self.weight_decay = weight_decay
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
        self.global_clipnorm = global_clipnorm
        self.use_ema = use_ema
        self.ema_momentum = ema_momentum
        self.ema_overwrite_frequency = ema_overwrite_frequency
        self.loss_scale_factor = loss_scale_factor
        self.gradient_accumulation_steps = gradient_accumulation_steps
        self._iterations = np.zeros((), np.int64)
        self._learning_rate = self._check_learning_rate(learning_rate)
        self._slots = {}          # id(variable) -> dict name -> ndarray
        self._slot_order = []     # (variable, slots) in build order, for `variables`
        self._exclude_ids = set()
        self._exclude_pattern = None
        self._exclude_cache = {}

    # ---- learning rate -----------------------------------------------------------------------

    @staticmethod
    def _check_learning_rate(lr):
        if isinstance(lr, LearningRateSchedule) or callable(lr):
            return lr
        if isinstance(lr, (bool, np.bool_)) or not isinstance(lr, (int, float, np.number)):
            raise ValueError(
                "Argument `learning_rate` should be float, or an instance of "
                "LearningRateSchedule, or a callable (that takes in the current iteration value "
                "and returns the corresponding learning rate value). "
                f"Received instead: learning_rate={lr!r}")
        # Keras keeps a float learning rate in a floatx() = float32 variable.
        return np.array(lr, np.float32)

    @property
    def iterations(self):
        """Number of update steps applied so far (int)."""
        return int(self._iterations)

    @iterations.setter
    def iterations(self, value):
        self._iterations[...] = int(value)

    @property
    def learning_rate(self):
        """The current learning rate (float): the schedule evaluated at ``iterations``, as Keras.

        Setting it to a number changes the rate (TypeError if the optimizer was created with a
        schedule); setting it to a schedule or callable replaces the rate.
        """
        return float(self._current_lr())

    @learning_rate.setter
    def learning_rate(self, value):
        if isinstance(value, LearningRateSchedule) or callable(value):
            self._learning_rate = value
            return
        if isinstance(self._learning_rate, LearningRateSchedule):
            raise TypeError(
                "This optimizer was created with a `LearningRateSchedule` object as its "
                "`learning_rate` constructor argument, hence its learning rate is not settable. "
                "If you need the learning rate to be settable, you should instantiate the "
                "optimizer with a float `learning_rate` argument.")
        self._learning_rate = self._check_learning_rate(value)

    def _current_lr(self):
        lr = self._learning_rate
        if isinstance(lr, LearningRateSchedule):
            return np.float32(lr(int(self._iterations)))
        if callable(lr):
            return np.float32(lr())
        return np.float32(lr)

    # ---- state -------------------------------------------------------------------------------

    def build_slots(self, variable):
        """Per-variable state arrays (zeros like the variable), by name. Default: none."""
        return {}

    def update_step(self, gradient, value, slots, learning_rate):
        """Update ``value`` (the variable's ndarray) and ``slots`` in place."""
        raise NotImplementedError(f"{type(self).__name__} must implement update_step().")

    def _get_slots(self, variable):
        key = id(variable)
        slots = self._slots.get(key)
        if slots is None:
            slots = self.build_slots(variable)
            self._slots[key] = slots
            self._slot_order.append((variable, slots))
        return slots

    def build(self, variables):
        """Create the state of every variable now (otherwise done on first apply)."""
        for v in variables:
            self._get_slots(v)

    @property
    def built(self):
        return bool(self._slots)

    @property
    def variables(self):
        """The optimizer state as arrays, in Keras' order: iteration, learning rate (if a
        float), then each variable's slots in build order (e.g. Adam: momentum, velocity)."""
        out = [self._iterations]
        if isinstance(self._learning_rate, np.ndarray):
            out.append(self._learning_rate)
        for _, slots in self._slot_order:
            out.extend(slots.values())
        return out

    def keras_slot_groups(self):
        """How Keras orders this optimizer's slots in ``optimizer.variables`` (and so in a
        file's ``optimizer/vars``): a list of groups of slot names; for each group, every
        variable's slots of those names follow each other (Adam: momentum, velocity of the first
        variable, then of the second...). Default: one group of all ``build_slots`` names."""
        names = tuple(self.build_slots(np.zeros(0, np.float32)))
        return [names] if names else []

    # ---- weight decay ------------------------------------------------------------------------

    def exclude_from_weight_decay(self, var_list=None, var_names=None):
        """Exclude variables from weight decay.

        Args:
            var_list: variables to exclude.
            var_names: list of strings; a variable whose ``name`` contains any of them (a regex
                search, as Keras) is excluded, e.g. ``["bias"]``.
        """
        self._exclude_ids = {id(v) for v in var_list} if var_list else set()
        self._exclude_pattern = re.compile("|".join(set(var_names))) if var_names else None
        self._exclude_cache = {}

    def _use_weight_decay(self, variable):
        key = id(variable)
        hit = self._exclude_cache.get(key)
        if hit is not None:
            return hit
        use = key not in self._exclude_ids and not (
            self._exclude_pattern is not None
            and re.search(self._exclude_pattern, str(getattr(variable, "name", ""))) is not None)
        self._exclude_cache[key] = use
        return use

    def _apply_weight_decay(self, variables, lr):
        if self.weight_decay is None:
            return
        for variable in variables:
            if self._use_weight_decay(variable):
                v = _value(variable)
                t = v.dtype.type
                np.subtract(v, v * _kcast(self.weight_decay, v.dtype) * t(lr), out=v)

    # ---- applying gradients ------------------------------------------------------------------

    def _clip_gradients(self, grads):
        if self.clipnorm and self.clipnorm > 0:
            return [_clip_by_norm(g, self.clipnorm) for g in grads]
        if self.global_clipnorm and self.global_clipnorm > 0:
            return _clip_by_global_norm(grads, self.global_clipnorm)
        if self.clipvalue and self.clipvalue > 0:
            c = self.clipvalue
            return [np.clip(g, g.dtype.type(-c), g.dtype.type(c)) for g in grads]
        return grads

    def apply(self, grads, trainable_variables):
        """One update step.

        Args:
            grads: list of gradient arrays (or None to skip a variable), each the shape of its
                variable.
            trainable_variables: list of Variables, one per gradient.

        Raises:
            ValueError: lengths or shapes differ, or every gradient is None.
        """
        grads = list(grads)
        variables = list(trainable_variables)
        if len(grads) == 0:
            return
        if len(grads) != len(variables):
            raise ValueError(f"Got {len(grads)} gradients for {len(variables)} variables.")
        pairs = []
        missing = []
        for g, var in zip(grads, variables):
            if g is None:
                missing.append(getattr(var, "path", getattr(var, "name", repr(var))))
                continue
            v = _value(var)
            g = np.asarray(g)
            if g.shape != v.shape:
                raise ValueError(
                    f"Gradient for variable '{getattr(var, 'path', var)}' has shape {g.shape}, "
                    f"but the variable has shape {v.shape}.")
            if g.dtype.kind != "f":
                g = g.astype(v.dtype)
            pairs.append((g, var))
        if not pairs:
            raise ValueError("No gradients provided for any variable.")
        if missing:
            warnings.warn(f"Gradients do not exist for variables {missing} when minimizing the "
                          "loss. If using `model.compile()`, did you forget to provide a `loss` "
                          "argument?")
        grads = [g for g, _ in pairs]
        variables = [v for _, v in pairs]
        if self.loss_scale_factor is not None:
            grads = [g / g.dtype.type(self.loss_scale_factor) for g in grads]
        grads = self._clip_gradients(grads)
        lr = self._current_lr()
        self._apply_weight_decay(variables, lr)
        for g, var in zip(grads, variables):
            v = _value(var)
            slots = self._get_slots(var)
            t = v.dtype.type
            self.update_step(g.astype(v.dtype, copy=False), v, slots, t(lr))
        for var in variables:
            constraint = getattr(var, "constraint", None)
            if constraint is not None:
                _assign(var, constraint(_value(var)))
        self._iterations += 1

    def apply_gradients(self, grads_and_vars):
        """``apply`` on a list of ``(gradient, variable)`` pairs; returns ``iterations``."""
        grads_and_vars = list(grads_and_vars)
        if not grads_and_vars:
            return self.iterations
        grads, variables = zip(*grads_and_vars)
        self.apply(list(grads), list(variables))
        return self.iterations

    # ---- config ------------------------------------------------------------------------------

    def get_config(self):
        """Keras' config keys; a schedule learning rate is serialized as a dict."""
        lr = self._learning_rate
        if isinstance(lr, LearningRateSchedule):
            # Keras' full form (module, registered_name), which keras.saving reads.
            from ..saving.serialization import serialize_keras_object
            lr = serialize_keras_object(lr)
        elif isinstance(lr, np.ndarray):
            lr = float(lr)
        return {"name": self.name, "learning_rate": lr, "weight_decay": self.weight_decay,
                "clipnorm": self.clipnorm, "global_clipnorm": self.global_clipnorm,
                "clipvalue": self.clipvalue, "use_ema": self.use_ema,
                "ema_momentum": self.ema_momentum,
                "ema_overwrite_frequency": self.ema_overwrite_frequency,
                "loss_scale_factor": self.loss_scale_factor,
                "gradient_accumulation_steps": self.gradient_accumulation_steps}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules.deserialize(config["learning_rate"],
                                                            custom_objects)
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, learning_rate={self.learning_rate:g}>"


class SGD(Optimizer):
    """Gradient descent with optional (Nesterov) momentum, as ``keras.optimizers.SGD``.

    ``m = momentum * m - lr * g``; ``w += m`` (or ``w += momentum * m - lr * g`` with
    ``nesterov=True``); without momentum ``w -= lr * g``.

    Args:
        learning_rate: float or schedule, default 0.01.
        momentum: float in [0, 1], default 0.0.
        nesterov: bool.
        **kwargs: the :class:`Optimizer` arguments.

    Raises:
        ValueError: momentum not a float in [0, 1].
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False,
                 ema_momentum=0.99, ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay,
                         clipnorm=clipnorm, clipvalue=clipvalue, global_clipnorm=global_clipnorm,
                         use_ema=use_ema, ema_momentum=ema_momentum,
                         ema_overwrite_frequency=ema_overwrite_frequency,
                         loss_scale_factor=loss_scale_factor,
                         gradient_accumulation_steps=gradient_accumulation_steps, name=name,
                         **kwargs)
        if not isinstance(momentum, float) or momentum < 0 or momentum > 1:
            raise ValueError("`momentum` must be a float between [0, 1].")
        self.momentum = momentum
        self.nesterov = nesterov

    def build_slots(self, variable):
        if self.momentum != 0:
            return {"momentum": np.zeros_like(_value(variable))}
        return {}

    def update_step(self, g, w, slots, lr):
        if self.momentum != 0:
            m = slots["momentum"]
            mom = _kcast(self.momentum, w.dtype)
            np.subtract(m * mom, g * lr, out=m)
            if self.nesterov:
                np.add(w, m * mom - g * lr, out=w)
            else:
                np.add(w, m, out=w)
        else:
            np.subtract(w, g * lr, out=w)

    def get_config(self):
        config = super().get_config()
        config.update({"momentum": self.momentum, "nesterov": self.nesterov})
        return config


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2014) with Keras' epsilon placement, as ``keras.optimizers.Adam``.

    At step ``t = iterations + 1``: ``m += (g - m) * (1 - beta_1)``,
    ``v += (g**2 - v) * (1 - beta_2)``, ``alpha = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)``,
    ``w -= m * alpha / (sqrt(v) + epsilon)``; with ``amsgrad=True`` ``v`` is replaced by its
    running maximum.

    Args:
        learning_rate: float or schedule, default 0.001.
        beta_1, beta_2: floats, defaults 0.9 and 0.999.
        epsilon: float, default 1e-7.
        amsgrad: bool.
        **kwargs: the :class:`Optimizer` arguments.
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay,
                         clipnorm=clipnorm, clipvalue=clipvalue, global_clipnorm=global_clipnorm,
                         use_ema=use_ema, ema_momentum=ema_momentum,
                         ema_overwrite_frequency=ema_overwrite_frequency,
                         loss_scale_factor=loss_scale_factor,
                         gradient_accumulation_steps=gradient_accumulation_steps, name=name,
                         **kwargs)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.amsgrad = amsgrad

    def build_slots(self, variable):
        v = _value(variable)
        slots = {"momentum": np.zeros_like(v), "velocity": np.zeros_like(v)}
        if self.amsgrad:
            slots["velocity_hat"] = np.zeros_like(v)
        return slots

    def keras_slot_groups(self):
        # Keras' Adam.build: (momentum, velocity) per variable, then every velocity_hat.
        return [("momentum", "velocity")] + ([("velocity_hat",)] if self.amsgrad else [])

    def update_step(self, g, w, slots, lr):
        t = w.dtype.type
        step = t(self._iterations + 1)
        beta_1_power = np.power(_kcast(self.beta_1, w.dtype), step)
        beta_2_power = np.power(_kcast(self.beta_2, w.dtype), step)
        m, v = slots["momentum"], slots["velocity"]
        alpha = lr * np.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        np.add(m, (g - m) * t(1 - self.beta_1), out=m)
        np.add(v, (np.square(g) - v) * t(1 - self.beta_2), out=v)
        if self.amsgrad:
            v_hat = slots["velocity_hat"]
            np.maximum(v_hat, v, out=v_hat)
            v = v_hat
        np.subtract(w, (m * alpha) / (np.sqrt(v) + t(self.epsilon)), out=w)

    def get_config(self):
        config = super().get_config()
        config.update({"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                       "amsgrad": self.amsgrad})
        return config


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019), as
    ``keras.optimizers.AdamW``: before each Adam step ``w -= w * weight_decay * lr``.

    Args:
        learning_rate: float or schedule, default 0.001.
        weight_decay: float, default 0.004.
        beta_1, beta_2, epsilon, amsgrad: as :class:`Adam`.
        **kwargs: the :class:`Optimizer` arguments.

    Raises:
        ValueError: ``weight_decay=None``.
    """

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, amsgrad=False, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2,
                         epsilon=epsilon, amsgrad=amsgrad, weight_decay=weight_decay,
                         clipnorm=clipnorm, clipvalue=clipvalue, global_clipnorm=global_clipnorm,
                         use_ema=use_ema, ema_momentum=ema_momentum,
                         ema_overwrite_frequency=ema_overwrite_frequency,
                         loss_scale_factor=loss_scale_factor,
                         gradient_accumulation_steps=gradient_accumulation_steps, name=name,
                         **kwargs)
        if self.weight_decay is None:
            raise ValueError("Argument `weight_decay` must be a float. Received: "
                             "weight_decay=None")


class RMSprop(Optimizer):
    """RMSprop (Hinton, 2012), as ``keras.optimizers.RMSprop``.

    ``vel = rho * vel + (1 - rho) * g**2``; ``inc = lr * g / sqrt(vel + epsilon)`` (centered:
    ``sqrt(vel - avg**2 + epsilon)`` with ``avg = rho * avg + (1 - rho) * g``); with momentum
    ``mom = momentum * mom + inc; w -= mom``, else ``w -= inc``.

    Args:
        learning_rate: float or schedule, default 0.001.
        rho: float, default 0.9.
        momentum: float, default 0.0.
        epsilon: float, default 1e-7.
        centered: bool.
        **kwargs: the :class:`Optimizer` arguments.
    """

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 loss_scale_factor=None, gradient_accumulation_steps=None, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay,
                         clipnorm=clipnorm, clipvalue=clipvalue, global_clipnorm=global_clipnorm,
                         use_ema=use_ema, ema_momentum=ema_momentum,
                         ema_overwrite_frequency=ema_overwrite_frequency,
                         loss_scale_factor=loss_scale_factor,
                         gradient_accumulation_steps=gradient_accumulation_steps, name=name,
                         **kwargs)
        self.rho = rho
        self.momentum = momentum
        self.epsilon = epsilon
        self.centered = centered

    def build_slots(self, variable):
        v = _value(variable)
        slots = {"velocity": np.zeros_like(v)}
        if self.momentum > 0:
            slots["momentum"] = np.zeros_like(v)
        if self.centered:
            slots["average_gradient"] = np.zeros_like(v)
        return slots

    def keras_slot_groups(self):
        # Keras' RMSprop.build adds each kind of slot for all variables in turn.
        return [(name,) for name in self.build_slots(np.zeros(0, np.float32))]

    def update_step(self, g, w, slots, lr):
        t = w.dtype.type
        rho, one_minus_rho = t(self.rho), t(1 - self.rho)
        vel = slots["velocity"]
        np.add(rho * vel, one_minus_rho * np.square(g), out=vel)
        if self.centered:
            avg = slots["average_gradient"]
            np.add(rho * avg, one_minus_rho * g, out=avg)
            denominator = vel - np.square(avg) + t(self.epsilon)
        else:
            denominator = vel + t(self.epsilon)
        increment = (lr * g) / np.sqrt(denominator)
        if self.momentum > 0:
            mom = slots["momentum"]
            np.add(t(self.momentum) * mom, increment, out=mom)
            np.subtract(w, mom, out=w)
        else:
            np.subtract(w, increment, out=w)

    def get_config(self):
        config = super().get_config()
        config.update({"rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon,
                       "centered": self.centered})
        return config


_BY_NAME = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop}


def serialize(optimizer):
    """``{"class_name": ..., "config": ...}`` of an optimizer."""
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def deserialize(config, custom_objects=None):
    """The optimizer described by ``{"class_name": ..., "config": ...}`` (class names are
    case-insensitive, as Keras)."""
    objs = {k: v for k, v in _BY_NAME.items()}
    objs.update({k.lower(): v for k, v in (custom_objects or {}).items()})
    name = str(config.get("class_name", "")).lower()
    if name not in objs:
        raise ValueError(f"Could not interpret optimizer identifier: {config!r}. Known "
                         f"optimizers: {sorted(_BY_NAME)}.")
    return objs[name].from_config(config.get("config", {}), custom_objects)


def get(identifier):
    """An optimizer from a name (``"sgd"``, ``"adam"``, ``"adamw"``, ``"rmsprop"``, any case),
    a config dict ``{"class_name": ..., "config": ...}`` or an Optimizer (returned as is).

    Raises:
        ValueError: an unknown identifier (the message lists the known names).
    """
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]()
    raise ValueError(f"Could not interpret optimizer identifier: {identifier!r}. Known "
                     f"optimizers: {sorted(_BY_NAME)}, an Optimizer instance, or a config dict.")
