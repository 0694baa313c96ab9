/*
 * bind_common.h -- shared by every binding file (bind_*.c, module.c): the only code that
 * includes Python.h and NumPy. It parses, converts and checks, allocates the outputs, releases
 * the GIL around a kernel and returns. It re-checks every shape and dtype itself, so a bad
 * pointer can never reach a kernel whatever the Python layer did.
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

/* Expected size of an axis that may take any size. */
#define AL_ANY (-1)

/* The float type of `obj` (NPY_FLOAT32 or NPY_FLOAT64), or -1 with TypeError set. */
int al_float_typenum(PyObject *obj, const char *fn, const char *arg);

/*
 * A new reference to a C-contiguous, aligned array of type `typenum` holding `obj`, with
 * `ndim` axes whose sizes match `dims` (AL_ANY = free), or NULL with an exception set.
 * An ndarray of another dtype is a TypeError (no silent casts); array-likes are converted.
 * `axes` names the axes for the message, e.g. "(D, 4H)".
 */
PyArrayObject *al_get_array(PyObject *obj, int typenum, const char *fn, const char *arg,
                            int ndim, const npy_intp *dims, const char *axes);

/* Same as al_get_array for a boolean mask: any numeric or bool array-like, nonzero = keep;
 * the result is NPY_BOOL (one byte per element). */
PyArrayObject *al_get_mask(PyObject *obj, const char *fn, const char *arg,
                           int ndim, const npy_intp *dims, const char *axes);

/* 0 if every value is at most AL_BLAS_INT_MAX (the BLAS's 32-bit int), else -1 with
 * ValueError naming `fn`. `what` describes the product, e.g. "B*T". */
int al_check_blas_int(const char *fn, const char *what, npy_intp value);

/* 0 if a*b does not overflow npy_intp (stores the product), else -1 with ValueError. */
int al_mul_intp(const char *fn, npy_intp a, npy_intp b, npy_intp *out);

/* An integer argument in [lo, hi] from any Python int-like `obj` (stored in *out): 0, or -1
 * with TypeError (not an integer) or ValueError naming `fn`, `arg`, what it must be (`what`,
 * which states the range) and the value given, however large (no bare OverflowError). */
int al_int_arg(PyObject *obj, const char *fn, const char *arg, long long lo, long long hi,
               const char *what, int *out);

/* An activation code in range, or -1 with ValueError. */
int al_check_activation(const char *fn, const char *arg, int code);

/* The LSTM kernels' options, checked: impl (0..AL_LSTM_IMPL_MAX), the activation codes, and
 * the thread budget from `threads`: 0 = automatic (the count of set_num_threads, used when the
 * call is large enough), n > 0 = exactly n where the shapes allow (tests). 0, or -1 with
 * ValueError. */
int al_lstm_options(const char *fn, int impl, int threads, int activation,
                    int recurrent_activation, int *nthreads, int *forced);

/* Sets the Python exception matching a kernel status; returns NULL for `return`. */
PyObject *al_kernel_error(const char *fn, int status);

/* A (B, 4N) per-gate dropout mask of type `typenum` from a (B, 4N) or shared (B, N) mask
 * (defined in bind_lstm.c); NULL with an exception set. `unit` names N ("D" or "H"). */
PyArrayObject *al_lstm_gate_mask(PyObject *obj, int typenum, const char *fn, const char *arg,
                                 npy_intp B, npy_intp N, const char *unit);

/* Method tables of each binding file, joined by module.c. */
extern PyMethodDef al_lstm_methods[];
extern PyMethodDef al_lstm_bwd_methods[];
extern PyMethodDef al_attention_methods[];
extern PyMethodDef al_mha_methods[];
extern PyMethodDef al_util_methods[];

#endif /* AL_BIND_COMMON_H */
