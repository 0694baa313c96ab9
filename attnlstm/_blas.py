"""Loads the OpenBLAS that attnlstm._core links against (from the scipy-openblas32 wheel).

Importing scipy_openblas32 opens its shared library with RTLD_GLOBAL, so the dynamic loader
finds it already loaded when `_core` is imported, wherever the wheel was installed.

OpenBLAS's idle worker threads spin for 2**OPENBLAS_THREAD_TIMEOUT cycles after each call (28 by
default: about 80 ms at 3.3 GHz) before they sleep; meanwhile they hold the cores that
attnlstm's own worker pool needs (al_pool.c), which spins only about 100 us. So this OpenBLAS is
loaded with a timeout of 2**18 cycles (about 80 us) unless the environment sets one; the
variable is read once, when the library loads, and restored afterwards, so other libraries are
not affected. Measured in benchmarks/NOTES.md (multi-head attention on 2 threads: OpenBLAS's
spinning server thread took 39% of the samples, 7.3 -> 6.1 ms).
"""
import os

_KEY = "OPENBLAS_THREAD_TIMEOUT"
_given = os.environ.get(_KEY)
if _given is None:
    os.environ[_KEY] = "18"
try:
    import scipy_openblas32  # noqa: F401  (imported for its side effect)
finally:
    if _given is None:
        del os.environ[_KEY]
