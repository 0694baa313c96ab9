"""Build of attnlstm's C extension `attnlstm._core`.

The kernels in csrc/ call OpenBLAS from the `scipy-openblas32` wheel (the BLAS NumPy itself is
built with): headers and library come from that package at build time, and `attnlstm/__init__.py`
imports it first so the library is loaded before `_core`. The build is portable: no -march=native;
CPU-specific paths are chosen at run time.
"""
import glob
import os

import numpy
import scipy_openblas32
from setuptools import Extension, setup

lib_dir = scipy_openblas32.get_lib_dir()
sources = sorted(glob.glob(os.path.join("csrc", "*.c")))
depends = sorted(glob.glob(os.path.join("csrc", "*.h")))

# -fno-trapping-math: GCC may then evaluate both arms of a select (the branch-free activations'
# divisions), so those loops vectorise with AVX2 too, not only with AVX-512's masks;
# -ffp-contract=fast: a * b + c may become one FMA (ISO C mode, -std=c11, turns that off; the
# LSTM cell's activations are 10-25% faster fused). Every AVX2 copy is compiled with
# target("avx2,fma") like the AVX-512 ones (AVX-512F includes FMA), so both fuse the same
# operations and give the same bits (tests/test_isa_paths.py checks it); the generic copies
# (baseline x86-64 has no FMA) agree with them to rounding.
extra_compile_args = ["-std=c11", "-pthread", "-O3", "-fno-math-errno", "-fno-trapping-math",
                      "-ffp-contract=fast", "-Wall", "-Wextra",
                      "-Wno-unused-parameter", "-Wno-missing-field-initializers",
                      "-Wno-cast-function-type"]
if os.environ.get("ATTNLSTM_DEBUG"):
    extra_compile_args += ["-O0", "-g", "-fno-omit-frame-pointer"]

core = Extension(
    "attnlstm._core",
    sources=sources,
    depends=depends,
    include_dirs=["csrc", numpy.get_include(), scipy_openblas32.get_include_dir()],
    library_dirs=[lib_dir],
    libraries=[scipy_openblas32.get_library()],
    # Installed next to attnlstm in site-packages; the absolute path serves editable installs.
    runtime_library_dirs=["$ORIGIN/../scipy_openblas32/lib", lib_dir],
    define_macros=[("BLAS_SYMBOL_PREFIX", "scipy_")],
    extra_compile_args=extra_compile_args,
    extra_link_args=["-lm", "-pthread"],
)

setup(ext_modules=[core])
