"""Weight initialisers with Keras' names, formulas and defaults (keras/src/initializers).

Each initializer is a callable ``init(shape, dtype, rng) -> ndarray``. Values are drawn from NumPy's
generator, so they are distributed as Keras' but not bit-identical to them; copy Keras' weights with
``set_weights`` when an exact match is needed.
"""
import numpy as np

__all__ = ["get", "serialize", "compute_fans"]


def compute_fans(shape):
    """Keras' fan_in / fan_out of a weight shape (kernels of rank > 2 fold leading axes)."""
    shape = tuple(shape)
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = int(np.prod(shape[:-2]))
    return shape[-2] * receptive, shape[-1] * receptive


class Initializer:
    name = "initializer"

    def get_config(self):
        return {}

    def __repr__(self):
        return f"{type(self).__name__}({self.get_config()})"


class Zeros(Initializer):
    name = "zeros"

    def __call__(self, shape, dtype="float32", rng=None):
        return np.zeros(shape, dtype)


class Ones(Initializer):
    name = "ones"

    def __call__(self, shape, dtype="float32", rng=None):
        return np.ones(shape, dtype)


class Constant(Initializer):
    name = "constant"

    def __init__(self, value=0.0):
        self.value = value

    def __call__(self, shape, dtype="float32", rng=None):
        return np.full(shape, self.value, dtype)

    def get_config(self):
        return {"value": self.value}


class RandomUniform(Initializer):
    name = "random_uniform"

    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        self.minval, self.maxval, self.seed = minval, maxval, seed

    def __call__(self, shape, dtype="float32", rng=None):
        rng = _rng(rng, self.seed)
        return rng.uniform(self.minval, self.maxval, size=shape).astype(dtype)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


class RandomNormal(Initializer):
    name = "random_normal"

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        self.mean, self.stddev, self.seed = mean, stddev, seed

    def __call__(self, shape, dtype="float32", rng=None):
        rng = _rng(rng, self.seed)
        return rng.normal(self.mean, self.stddev, size=shape).astype(dtype)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class VarianceScaling(Initializer):
    """Keras' VarianceScaling: scale / fan, truncated normal (stddev corrected by .8796...),
    untruncated normal, or uniform with limit sqrt(3 * scale / fan)."""
    name = "variance_scaling"

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None):
        self.scale, self.mode, self.distribution, self.seed = scale, mode, distribution, seed

    def __call__(self, shape, dtype="float32", rng=None):
        rng = _rng(rng, self.seed)
        fan_in, fan_out = compute_fans(shape)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        scale = self.scale / max(1.0, fan)
        if self.distribution == "truncated_normal":
            stddev = np.sqrt(scale) / 0.87962566103423978
            v = rng.normal(0.0, stddev, size=shape)
            bad = np.abs(v) > 2 * stddev
            while np.any(bad):
                v[bad] = rng.normal(0.0, stddev, size=int(bad.sum()))
                bad = np.abs(v) > 2 * stddev
            return v.astype(dtype)
        if self.distribution == "untruncated_normal":
            return rng.normal(0.0, np.sqrt(scale), size=shape).astype(dtype)
        limit = np.sqrt(3.0 * scale)
        return rng.uniform(-limit, limit, size=shape).astype(dtype)

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution,
                "seed": self.seed}


class GlorotUniform(VarianceScaling):
    name = "glorot_uniform"

    def __init__(self, seed=None):
        super().__init__(1.0, "fan_avg", "uniform", seed)

    def get_config(self):
        return {"seed": self.seed}


class GlorotNormal(VarianceScaling):
    name = "glorot_normal"

    def __init__(self, seed=None):
        super().__init__(1.0, "fan_avg", "truncated_normal", seed)

    def get_config(self):
        return {"seed": self.seed}


class HeUniform(VarianceScaling):
    name = "he_uniform"

    def __init__(self, seed=None):
        super().__init__(2.0, "fan_in", "uniform", seed)

    def get_config(self):
        return {"seed": self.seed}


class HeNormal(VarianceScaling):
    name = "he_normal"

    def __init__(self, seed=None):
        super().__init__(2.0, "fan_in", "truncated_normal", seed)

    def get_config(self):
        return {"seed": self.seed}


class Orthogonal(Initializer):
    """Keras' Orthogonal: QR of a normal matrix, signs fixed by diag(R), times `gain`."""
    name = "orthogonal"

    def __init__(self, gain=1.0, seed=None):
        self.gain, self.seed = gain, seed

    def __call__(self, shape, dtype="float32", rng=None):
        rng = _rng(rng, self.seed)
        if len(shape) < 2:
            raise ValueError(f"The Orthogonal initializer needs a shape of rank >= 2. "
                             f"Received: shape={tuple(shape)}")
        rows = int(np.prod(shape[:-1]))
        cols = shape[-1]
        a = rng.normal(size=(max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return (self.gain * q.reshape(shape)).astype(dtype)

    def get_config(self):
        return {"gain": self.gain, "seed": self.seed}


def _rng(rng, seed):
    if seed is not None:
        return np.random.default_rng(seed)
    if rng is None:
        from .backend import make_rng
        return make_rng()
    return rng


_BY_NAME = {
    "zeros": Zeros, "ones": Ones, "constant": Constant, "uniform": RandomUniform,
    "random_uniform": RandomUniform, "normal": RandomNormal, "random_normal": RandomNormal,
    "glorot_uniform": GlorotUniform, "glorot_normal": GlorotNormal, "he_uniform": HeUniform,
    "he_normal": HeNormal, "orthogonal": Orthogonal, "variance_scaling": VarianceScaling,
}


def get(identifier):
    """An initializer from a Keras name, a config dict, an Initializer or a callable.

    Raises:
        ValueError: an unknown name.
    """
    if isinstance(identifier, Initializer) or callable(identifier):
        return identifier
    if isinstance(identifier, dict):
        cls = _BY_NAME[identifier["class_name"]]
        return cls(**identifier.get("config", {}))
    if isinstance(identifier, str) and identifier in _BY_NAME:
        return _BY_NAME[identifier]()
    raise ValueError(f"Unknown initializer {identifier!r}. Expected one of {sorted(_BY_NAME)}. "
                     f"Received: initializer={identifier!r}")


def serialize(init):
    """A Keras-style name (no extra config) or config dict of an initializer."""
    if isinstance(init, Initializer):
        cfg = init.get_config()
        if not cfg or all(v is None for v in cfg.values()):
            return init.name
        return {"class_name": init.name, "config": cfg}
    return getattr(init, "__name__", repr(init))
