/*
 * bind_util.c -- argument checking shared by the bindings, and the thread-count functions.
 */
#include "bind_common.h"   /* Python.h first */
#include "lstm_api.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

/* OpenBLAS (scipy-openblas32) thread count: the one setting for the BLAS and our kernels. */
void scipy_openblas_set_num_threads(int num_threads);

static const char *al_type_name(int typenum) {
    return typenum == NPY_FLOAT32 ? "float32" : typenum == NPY_FLOAT64 ? "float64" : "bool";
}

/* Writes "(a, b, c)" for a shape into buf. */
static void al_format_shape(char *buf, size_t size, int ndim, const npy_intp *dims) {
    size_t used = 0;
    int k;
    used += (size_t)snprintf(buf + used, size - used, "(");
    for (k = 0; k < ndim && used < size; k++) {
        if (dims[k] == AL_ANY) {
            used += (size_t)snprintf(buf + used, size - used, "%s?", k ? ", " : "");
        } else {
            used += (size_t)snprintf(buf + used, size - used, "%s%lld", k ? ", " : "",
                                     (long long)dims[k]);
        }
    }
    if (used < size) snprintf(buf + used, size - used, ndim == 1 ? ",)" : ")");
}

int al_float_typenum(PyObject *obj, const char *fn, const char *arg) {
    PyArray_Descr *descr;
    int typenum;
    if (!PyArray_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: `%s` must be a float32 or float64 numpy array, got %.200s.",
                     fn, arg, Py_TYPE(obj)->tp_name);
        return -1;
    }
    descr = PyArray_DESCR((PyArrayObject *)obj);
    typenum = descr->type_num;
    if (typenum != NPY_FLOAT32 && typenum != NPY_FLOAT64) {
        PyErr_Format(PyExc_TypeError, "%s: `%s` must have dtype float32 or float64, got %R.",
                     fn, arg, (PyObject *)descr);
        return -1;
    }
    return typenum;
}

static PyArrayObject *al_check_dims(PyArrayObject *arr, const char *fn, const char *arg,
                                    int ndim, const npy_intp *dims, const char *axes) {
    int k, ok = PyArray_NDIM(arr) == ndim;
    for (k = 0; ok && k < ndim; k++) {
        if (dims[k] != AL_ANY && PyArray_DIM(arr, k) != dims[k]) ok = 0;
    }
    if (!ok) {
        char want[256], got[256];
        al_format_shape(want, sizeof want, ndim, dims);
        al_format_shape(got, sizeof got, PyArray_NDIM(arr), PyArray_DIMS(arr));
        PyErr_Format(PyExc_ValueError, "%s: `%s` must have shape %s = %s, got %s.",
                     fn, arg, axes, want, got);
        Py_DECREF(arr);
        return NULL;
    }
    return arr;
}

PyArrayObject *al_get_array(PyObject *obj, int typenum, const char *fn, const char *arg,
                            int ndim, const npy_intp *dims, const char *axes) {
    PyArrayObject *arr = NULL;
    if (PyArray_Check(obj) && PyArray_TYPE((PyArrayObject *)obj) != typenum) {
        PyErr_Format(PyExc_TypeError, "%s: `%s` must have dtype %s like the inputs, got %R.",
                     fn, arg, al_type_name(typenum),
                     (PyObject *)PyArray_DESCR((PyArrayObject *)obj));
        return NULL;
    }
    arr = (PyArrayObject *)PyArray_FROM_OTF(obj, typenum, NPY_ARRAY_IN_ARRAY);
    if (arr == NULL) return NULL;
    return al_check_dims(arr, fn, arg, ndim, dims, axes);
}

PyArrayObject *al_get_mask(PyObject *obj, const char *fn, const char *arg,
                           int ndim, const npy_intp *dims, const char *axes) {
    PyArrayObject *arr = (PyArrayObject *)PyArray_FROM_OTF(
        obj, NPY_BOOL, NPY_ARRAY_IN_ARRAY | NPY_ARRAY_FORCECAST);
    if (arr == NULL) return NULL;
    return al_check_dims(arr, fn, arg, ndim, dims, axes);
}

int al_check_blas_int(const char *fn, const char *what, npy_intp value) {
    if (value < 0 || (long long)value > AL_BLAS_INT_MAX) {
        PyErr_Format(PyExc_ValueError,
                     "%s: %s = %lld is too large for the 32-bit BLAS (at most %lld).",
                     fn, what, (long long)value, (long long)AL_BLAS_INT_MAX);
        return -1;
    }
    return 0;
}

int al_mul_intp(const char *fn, npy_intp a, npy_intp b, npy_intp *out) {
    if (a != 0 && b > NPY_MAX_INTP / a) {
        PyErr_Format(PyExc_ValueError, "%s: array size %lld x %lld overflows.", fn,
                     (long long)a, (long long)b);
        return -1;
    }
    *out = a * b;
    return 0;
}

int al_check_activation(const char *fn, const char *arg, int code) {
    if (code < 0 || code >= AL_ACT_COUNT) {
        PyErr_Format(PyExc_ValueError, "%s: `%s` must be an activation code in [0, %d), got %d.",
                     fn, arg, (int)AL_ACT_COUNT, code);
        return -1;
    }
    return 0;
}

PyObject *al_kernel_error(const char *fn, int status) {
    if (status == AL_ERR_NOMEM) {
        PyErr_Format(PyExc_MemoryError, "%s: out of memory for the kernel's workspace.", fn);
    } else {
        PyErr_Format(PyExc_ValueError, "%s: invalid argument (kernel status %d).", fn, status);
    }
    return NULL;
}

/* ---- threads -------------------------------------------------------------------------- */


int al_lstm_options(const char *fn, int impl, int threads, int activation,
                    int recurrent_activation, int *nthreads, int *forced) {
    if (impl < 0 || impl > AL_LSTM_IMPL_MAX) {
        PyErr_Format(PyExc_ValueError, "%s: `impl` must be 0 (automatic), 1 (generic), 2 (AVX2) or "
                     "3 (AVX-512), got %d.", fn, impl);
        return -1;
    }
    if (threads < 0 || threads > 1024) {
        PyErr_Format(PyExc_ValueError, "%s: `threads` must be 0 (automatic: set_num_threads) or "
                     "a thread count from 1 to 1024, got %d.", fn, threads);
        return -1;
    }
    if (al_check_activation(fn, "activation", activation) < 0) return -1;
    if (al_check_activation(fn, "recurrent_activation", recurrent_activation) < 0) return -1;
    *forced = threads > 0;
    *nthreads = threads > 0 ? threads : scipy_openblas_get_num_threads();
    return 0;
}

int al_int_arg(PyObject *obj, const char *fn, const char *arg, long long lo, long long hi,
               const char *what, int *out) {
    PyObject *idx;
    long long v;
    int overflow = 0;
    if ((idx = PyNumber_Index(obj)) == NULL) {
        PyErr_Format(PyExc_TypeError, "%s: `%s` must be an integer, got %.200s.", fn, arg,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    v = PyLong_AsLongLongAndOverflow(idx, &overflow);
    if (v == -1 && PyErr_Occurred()) {
        Py_DECREF(idx);
        return -1;
    }
    if (overflow != 0 || v < lo || v > hi) {
        PyErr_Format(PyExc_ValueError, "%s: `%s` must be %s, got %S.", fn, arg, what, idx);
        Py_DECREF(idx);
        return -1;
    }
    Py_DECREF(idx);
    *out = (int)v;
    return 0;
}

static PyObject *al_py_set_num_threads(PyObject *self, PyObject *args) {
    PyObject *obj;
    int n;
    (void)self;
    if (!PyArg_ParseTuple(args, "O:set_num_threads", &obj)) return NULL;
    if (al_int_arg(obj, "set_num_threads", "n", 1, INT_MAX,
                   "a positive integer (a thread count, at most 2147483647)", &n) < 0)
        return NULL;
    scipy_openblas_set_num_threads(n);
    Py_RETURN_NONE;
}

static PyObject *al_py_get_num_threads(PyObject *self, PyObject *noargs) {
    (void)self; (void)noargs;
    return PyLong_FromLong((long)scipy_openblas_get_num_threads());
}

PyMethodDef al_util_methods[] = {
    {"set_num_threads", al_py_set_num_threads, METH_VARARGS,
     "set_num_threads(n) -> None\n\nSets the number of threads of the kernels and of the BLAS they call."},
    {"get_num_threads", al_py_get_num_threads, METH_NOARGS,
     "get_num_threads() -> int\n\nThe number of threads of the kernels and of the BLAS they call."},
    {NULL, NULL, 0, NULL}
};
