"""Session-wide settings: default float type, unique layer names, the random generator.

Like Keras' backend state, this is Python-level state of the session; the C core keeps none.
The random generator is per thread once a thread seeds it, so runs in a thread pool (joblib's
threading backend, Dask's threaded scheduler) are reproducible when each run seeds itself.
"""
import re
import threading
from collections import defaultdict

import numpy as np

_FLOATX = "float32"
_NAME_COUNTS = defaultdict(int)
_RNG = [np.random.default_rng()]     # the process's generator
_LOCAL = threading.local()           # .rng: a thread's own generator, once the thread seeds


def floatx():
    """The default float type of layers and inputs: ``"float32"`` (as Keras)."""
    return _FLOATX


def set_floatx(value):
    """Set the default float type, ``"float32"`` or ``"float64"``."""
    global _FLOATX
    value = standardize_dtype(value)
    if value not in ("float32", "float64"):
        raise ValueError(f"floatx must be 'float32' or 'float64'. Received: value={value!r}")
    _FLOATX = value


def standardize_dtype(dtype):
    """A dtype name string (``"float32"``, ``"int32"``, ...), or floatx() for None."""
    if dtype is None:
        return _FLOATX
    if hasattr(dtype, "name") and not isinstance(dtype, (str, np.dtype, type)):
        dtype = dtype.name  # e.g. a DTypePolicy-like object
    return np.dtype(dtype).name


def to_snake_case(name):
    """Keras' rule: ``GlobalAveragePooling1D`` -> ``global_average_pooling1d``."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()
    return name


def unique_name(base):
    """``lstm``, then ``lstm_1``, ``lstm_2``, ... as Keras names layers."""
    n = _NAME_COUNTS[base]
    _NAME_COUNTS[base] += 1
    return base if n == 0 else f"{base}_{n}"


def clear_session():
    """Reset layer-name counters (as ``keras.backend.clear_session``)."""
    _NAME_COUNTS.clear()


def rng():
    """The calling thread's NumPy random generator: the one :func:`set_random_seed` made in this
    thread, else the process's (seeded from the main thread)."""
    own = getattr(_LOCAL, "rng", None)
    return own if own is not None else _RNG[0]


def set_random_seed(seed):
    """Seed attnlstm's random generator, so initialisation, dropout and shuffling are
    reproducible (``keras.utils.set_random_seed``; NumPy's and Python's global generators are
    seeded too, as Keras does).

    Called in the main thread it seeds the process's generator; called in another thread it
    gives that thread a generator of its own, so concurrent runs that each seed themselves do
    not draw from one shared stream.
    """
    import random
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ValueError(f"Expected `seed` argument to be an integer. Received: seed={seed!r}")
    gen = np.random.default_rng(seed)
    if threading.current_thread() is threading.main_thread():
        _RNG[0] = gen
        _LOCAL.rng = None
        random.seed(seed)
        np.random.seed(seed % 2**32)
    else:
        _LOCAL.rng = gen


class using_rng:
    """Context: the calling thread draws from `gen` (e.g. a model's own seeded generator),
    then from what it drew from before."""

    def __init__(self, gen):
        self.gen = gen

    def __enter__(self):
        self._old = getattr(_LOCAL, "rng", None)
        _LOCAL.rng = self.gen
        return self.gen

    def __exit__(self, *exc):
        _LOCAL.rng = self._old
        return False


def make_rng(seed=None):
    """A generator for a layer: its own seed if given, else one drawn from the thread's."""
    if seed is None:
        return np.random.default_rng(rng().integers(0, 2**63 - 1))
    return np.random.default_rng(seed)
