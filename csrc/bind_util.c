/*
 * bind_util.c -- argument checking shared by the bindings, and the thread-count functions.
 */
#include "bind_common.h"   /* Python.h first */
#include "lstm_api.h"
#pragma GCC diagnostic ignored "-Wunused-function"
#include "lstm_pgemm.h"   /* al_u_outgrows_l2 */

#include <limits.h>
#include <stdio.h>
#include <string.h>

/* OpenBLAS (scipy-openblas32) thread count: the one setting for the BLAS and our kernels. */
void scipy_openblas_set_num_threads(int num_threads);

int al_float_typenum(PyObject *obj, const char *fn, const char *arg) {
    PyArray_Descr *descr;
    int typenum;
    if (!PyArray_Check(obj)) {
        PyErr_Format(PyExc_TypeError,
                     "%s: `%s` must be a float32 or float64 numpy array, got %.200s.", fn, arg,
                     Py_TYPE(obj)->tp_name);
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

PyObject *al_kernel_error(const char *fn, int status) {
    if (status == AL_ERR_NOMEM) {
        PyErr_Format(PyExc_MemoryError, "%s: out of memory for the kernel's workspace.", fn);
    } else {
        PyErr_Format(PyExc_ValueError, "%s: invalid argument (kernel status %d).", fn, status);
    }
    return NULL;
}

/* ---- threads -------------------------------------------------------------------------- */


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

static PyObject *al_py_set_thread_budget(PyObject *self, PyObject *args) {
    PyObject *obj;
    int n, old;
    (void)self;
    if (!PyArg_ParseTuple(args, "O:set_thread_budget", &obj)) return NULL;
    if (al_int_arg(obj, "set_thread_budget", "n", 0, INT_MAX,
                   "0 (the process's count) or a positive thread count", &n) < 0)
        return NULL;
    if ((old = al_thread_budget_set(n)) < 0)
        return PyErr_NoMemory();
    return PyLong_FromLong((long)old);
}

static PyObject *al_py_u_outgrows_l2(PyObject *self, PyObject *args) {
    unsigned long long n;
    (void)self;
    if (!PyArg_ParseTuple(args, "K:u_outgrows_l2", &n)) return NULL;
    return PyBool_FromLong(al_u_outgrows_l2((size_t)n));
}

PyMethodDef al_util_methods[] = {
    {"u_outgrows_l2", al_py_u_outgrows_l2, METH_VARARGS,
     "u_outgrows_l2(nbytes) -> bool\n\n"
     "Whether a recurrent kernel of nbytes outgrows one core's L2 cache, by the recurrent\n"
     "kernels' own rule (a small batch then splits by units over the threads, each core\n"
     "streaming its share of U from its own L2): False below 512 KiB; the L2's size from the\n"
     "C library, 1 MiB where it does not say."},
    {"set_thread_budget", al_py_set_thread_budget, METH_VARARGS,
     "set_thread_budget(n) -> int\n\n"
     "The calling thread's own budget for the kernels it calls from now on: n > 0 threads at\n"
     "most, 0 = attnlstm.set_num_threads' count. Returns the previous value. Kernels called\n"
     "without an explicit thread count and the attention kernels read it; the BLAS does not.\n"
     "(Bidirectional's side-by-side directions set 1 around each direction.)"},
    {"set_num_threads", al_py_set_num_threads, METH_VARARGS,
     "set_num_threads(n) -> None\n\n"
     "Sets the number of threads of the kernels and of the BLAS they call."},
    {"get_num_threads", al_py_get_num_threads, METH_NOARGS,
     "get_num_threads() -> int\n\nThe number of threads of the kernels and of the BLAS they call."},
    {NULL, NULL, 0, NULL}
};
