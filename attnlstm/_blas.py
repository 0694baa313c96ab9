"""Loads the OpenBLAS that attnlstm._core links against (from the scipy-openblas32 wheel).

Importing scipy_openblas32 opens its shared library with RTLD_GLOBAL, so the dynamic loader
finds it already loaded when `_core` is imported, wherever the wheel was installed.
"""
import scipy_openblas32  # noqa: F401  (imported for its side effect)
