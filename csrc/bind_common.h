/*
 * bind_common.h -- shared by every binding file (bind_*.c, module.c): the only code that
 * includes Python.h and NumPy. The kernels' entry points go through one front door,
 * al_bind() (bind_spec.c), which re-checks every shape and dtype itself, so a bad pointer can
 * never reach a kernel whatever the Python layer did.
 */
#ifndef AL_BIND_COMMON_H
#define AL_BIND_COMMON_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_2_0_API_VERSION
#define PY_ARRAY_UNIQUE_SYMBOL al_ARRAY_API
#ifndef AL_MODULE_MAIN
#define NO_IMPORT_ARRAY
#endif
#include <numpy/arrayobject.h>

#include "al_kernels.h"

/* The float type of `obj` (NPY_FLOAT32 or NPY_FLOAT64), or -1 with TypeError set. */
int al_float_typenum(PyObject *obj, const char *fn, const char *arg);

/* An integer argument in [lo, hi] from any Python int-like `obj` (stored in *out): 0, or -1
 * with TypeError (not an integer) or ValueError naming `fn`, `arg`, what it must be (`what`,
 * which states the range) and the value given, however large (no bare OverflowError). */
int al_int_arg(PyObject *obj, const char *fn, const char *arg, long long lo, long long hi,
               const char *what, int *out);

/* Sets the Python exception matching a kernel status; returns NULL for `return`. */
PyObject *al_kernel_error(const char *fn, int status);

/* set_num_threads, get_num_threads (bind_util.c). */
extern PyMethodDef al_util_methods[];

#endif /* AL_BIND_COMMON_H */
