/*
 * bind_lstm.c -- CPython binding of the LSTM kernels (lstm_impl.h).
 */
#include "bind_common.h"   /* Python.h first */

#include <stdio.h>
#include <string.h>
#include "lstm_api.h"

/*
 * A new reference to a per-gate dropout mask (B, 4N) [m_i|m_f|m_c|m_o] built from `obj`, which
 * is either that (B, 4N) array or one (B, N) mask shared by the four gates (copied four
 * times); NULL with an exception set. `unit` names N in messages ("D" or "H").
 * Shared with bind_lstm_bwd.c.
 */
PyArrayObject *al_lstm_gate_mask(PyObject *obj, int typenum, const char *fn, const char *arg,
                                 npy_intp B, npy_intp N, const char *unit) {
    npy_intp want[2] = {B, AL_ANY};
    char axes[32];
    PyArrayObject *a, *t;
    npy_intp n4 = 4 * N, b, k, esz;
    snprintf(axes, sizeof axes, "(B, %s) or (B, 4%s)", unit, unit);
    if ((a = al_get_array(obj, typenum, fn, arg, 2, want, axes)) == NULL) return NULL;
    if (PyArray_DIM(a, 1) == n4) return a;
    if (PyArray_DIM(a, 1) != N) {
        PyErr_Format(PyExc_ValueError,
                     "%s: `%s` must have shape (B, %s) = (%lld, %lld) or (B, 4%s) = (%lld, %lld) "
                     "(one mask per gate), got (%lld, %lld).",
                     fn, arg, unit, (long long)B, (long long)N, unit, (long long)B,
                     (long long)n4, (long long)PyArray_DIM(a, 0), (long long)PyArray_DIM(a, 1));
        Py_DECREF(a);
        return NULL;
    }
    {
        npy_intp dims[2] = {B, n4};
        t = (PyArrayObject *)PyArray_EMPTY(2, dims, typenum, 0);
    }
    if (t == NULL) {
        Py_DECREF(a);
        return NULL;
    }
    esz = PyArray_ITEMSIZE(a);
    for (b = 0; b < B; b++) {
        const char *src = (const char *)PyArray_DATA(a) + b * N * esz;
        char *dst = (char *)PyArray_DATA(t) + b * n4 * esz;
        for (k = 0; k < 4; k++) memcpy(dst + k * N * esz, src, (size_t)(N * esz));
    }
    Py_DECREF(a);
    return t;
}

static const char LSTM_FORWARD_DOC[] =
    "lstm_forward(x, kernel, recurrent_kernel, bias=None, h0=None, c0=None, mask=None,\n"
    "             activation=1, recurrent_activation=2, go_backwards=False,\n"
    "             dp_mask=None, rec_mask=None, save_act_c=False, impl=0, threads=0,\n"
    "             save_gates=True)\n"
    "    -> (hs, cs, out, gates)  or, with save_act_c, (hs, cs, out, gates, act_c)\n\n"
    "Low-level LSTM forward over a whole sequence (Keras 3 LSTM semantics).\n\n"
    "x (B,T,D), kernel (D,4H), recurrent_kernel (H,4H), bias (4H,), h0/c0 (B,H),\n"
    "mask (B,T) (nonzero = keep). Dropout masks (training), fixed over time: dp_mask (B,4D)\n"
    "multiplies x and rec_mask (B,4H) multiplies h_{t-1}, one mask per gate [i|f|c|o] as\n"
    "Keras 3 LSTMCell draws them when recurrent_dropout > 0; a (B,D) / (B,H) mask is shared\n"
    "by the four gates.\n"
    "All float arrays share x's dtype (float32 or float64).\n"
    "Returns hs (B,T,H) and cs (B,T,H) in processing order, out (B,T,H) the masked output\n"
    "sequence (None without a mask: it equals hs), and gates (B,T,4H), the activated gates\n"
    "indexed by time, saved for the backward pass; with save_act_c also act_c (B,T,H) =\n"
    "activation(c) per step, which lstm_backward uses instead of recomputing it.\n"
    "save_gates=False (inference: no backward follows) returns None for gates and does\n"
    "not write them, which saves the memory traffic of a (B,T,4H) array.\n"
    "impl (tests and benchmarks): 0 the path chosen at import (ATTNLSTM_ISA, else the\n"
    "CPU's best), 1 generic (portable C), 2 AVX2, 3 AVX-512 (a path above the chosen one\n"
    "falls back to it), float32 and float64. A sample's results are the same bits whatever\n"
    "the batch size, its position in the batch and the thread count; AVX2 and AVX-512 give\n"
    "the same bits, generic agrees to rounding.\n"
    "threads: 0 uses set_num_threads' count when the call is large enough to gain from it;\n"
    "n > 0 uses exactly n threads wherever the shapes allow (tests). The work splits by\n"
    "batch rows, or by hidden units for small batches.\n"
    "Raises TypeError/ValueError on bad input, MemoryError when out of memory.";

static PyObject *al_py_lstm_forward(PyObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"x", "kernel", "recurrent_kernel", "bias", "h0", "c0", "mask",
                             "activation", "recurrent_activation", "go_backwards",
                             "dp_mask", "rec_mask", "save_act_c", "impl", "threads",
                             "save_gates", NULL};
    const char *fn = "lstm_forward";
    PyObject *x_obj = NULL, *W_obj = NULL, *U_obj = NULL;
    PyObject *b_obj = Py_None, *h0_obj = Py_None, *c0_obj = Py_None, *m_obj = Py_None;
    PyObject *p_obj = Py_None, *r_obj = Py_None;
    int activation = AL_ACT_TANH, recurrent_activation = AL_ACT_SIGMOID, go_backwards = 0;
    int save_act_c = 0, impl = 0, threads = 0, save_gates = 1, nthreads, forced;
    PyArrayObject *x = NULL, *W = NULL, *U = NULL, *bias = NULL, *h0 = NULL, *c0 = NULL;
    PyArrayObject *mask = NULL, *pmask = NULL, *rmask = NULL, *hs = NULL, *cs = NULL, *out = NULL;
    PyArrayObject *gates = NULL, *act_c = NULL;
    npy_intp B, T, D, H, G, BT, TG, BTG;
    int typenum, status = AL_OK;
    (void)self;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO|OOOOiipOOpiip:lstm_forward", kwlist,
                                     &x_obj, &W_obj, &U_obj, &b_obj, &h0_obj, &c0_obj, &m_obj,
                                     &activation, &recurrent_activation, &go_backwards,
                                     &p_obj, &r_obj, &save_act_c, &impl, &threads,
                                     &save_gates)) {
        return NULL;
    }
    if (al_lstm_options(fn, impl, threads, activation, recurrent_activation, &nthreads,
                        &forced) < 0) return NULL;
    if ((typenum = al_float_typenum(x_obj, fn, "x")) < 0) return NULL;

    {
        npy_intp any3[3] = {AL_ANY, AL_ANY, AL_ANY};
        if ((x = al_get_array(x_obj, typenum, fn, "x", 3, any3, "(B, T, D)")) == NULL) goto fail;
    }
    B = PyArray_DIM(x, 0); T = PyArray_DIM(x, 1); D = PyArray_DIM(x, 2);
    {
        npy_intp any2[2] = {AL_ANY, AL_ANY};
        if ((U = al_get_array(U_obj, typenum, fn, "recurrent_kernel", 2, any2, "(H, 4H)")) == NULL)
            goto fail;
    }
    H = PyArray_DIM(U, 0);
    if (H < 1) {
        PyErr_Format(PyExc_ValueError, "%s: `recurrent_kernel` must have H >= 1 rows, got shape (%lld, %lld).",
                     fn, (long long)H, (long long)PyArray_DIM(U, 1));
        goto fail;
    }
    if (T < 1) {
        PyErr_Format(PyExc_ValueError, "%s: `x` must have at least one timestep, got shape (%lld, %lld, %lld).",
                     fn, (long long)B, (long long)T, (long long)D);
        goto fail;
    }
    if (al_mul_intp(fn, H, 4, &G) < 0) goto fail;
    {
        npy_intp dW[2] = {D, G};
        npy_intp db[1] = {G};
        if (PyArray_DIM(U, 1) != G) {
            PyErr_Format(PyExc_ValueError,
                         "%s: `recurrent_kernel` must have shape (H, 4H) = (%lld, %lld), got (%lld, %lld).",
                         fn, (long long)H, (long long)G, (long long)H, (long long)PyArray_DIM(U, 1));
            goto fail;
        }
        if ((W = al_get_array(W_obj, typenum, fn, "kernel", 2, dW, "(D, 4H)")) == NULL) goto fail;
        if (b_obj != Py_None &&
            (bias = al_get_array(b_obj, typenum, fn, "bias", 1, db, "(4H,)")) == NULL) goto fail;
    }
    {
        npy_intp dh[2] = {B, H};
        npy_intp dm[2] = {B, T};
        if (h0_obj != Py_None &&
            (h0 = al_get_array(h0_obj, typenum, fn, "h0", 2, dh, "(B, H)")) == NULL) goto fail;
        if (c0_obj != Py_None &&
            (c0 = al_get_array(c0_obj, typenum, fn, "c0", 2, dh, "(B, H)")) == NULL) goto fail;
        if (m_obj != Py_None &&
            (mask = al_get_mask(m_obj, fn, "mask", 2, dm, "(B, T)")) == NULL) goto fail;
        if (p_obj != Py_None &&
            (pmask = al_lstm_gate_mask(p_obj, typenum, fn, "dp_mask", B, D, "D")) == NULL)
            goto fail;
        if (r_obj != Py_None &&
            (rmask = al_lstm_gate_mask(r_obj, typenum, fn, "rec_mask", B, H, "H")) == NULL)
            goto fail;
    }
    /* Every leading dimension the BLAS sees must fit its 32-bit int. */
    if (al_mul_intp(fn, B, T, &BT) < 0 || al_mul_intp(fn, T, G, &TG) < 0 ||
        al_mul_intp(fn, BT, G, &BTG) < 0) goto fail;
    if (al_check_blas_int(fn, "B*T", BT) < 0 || al_check_blas_int(fn, "T*4H", TG) < 0 ||
        al_check_blas_int(fn, "D", D) < 0 || al_check_blas_int(fn, "T*H", TG / 4) < 0) goto fail;

    {
        npy_intp dseq[3] = {B, T, H};
        npy_intp dgate[3] = {B, T, G};
        if ((hs = (PyArrayObject *)PyArray_EMPTY(3, dseq, typenum, 0)) == NULL) goto fail;
        if ((cs = (PyArrayObject *)PyArray_EMPTY(3, dseq, typenum, 0)) == NULL) goto fail;
        if (save_gates &&
            (gates = (PyArrayObject *)PyArray_EMPTY(3, dgate, typenum, 0)) == NULL) goto fail;
        if (mask != NULL &&
            (out = (PyArrayObject *)PyArray_EMPTY(3, dseq, typenum, 0)) == NULL) goto fail;
        if (save_act_c &&
            (act_c = (PyArrayObject *)PyArray_EMPTY(3, dseq, typenum, 0)) == NULL) goto fail;
    }

#define AL_PTR(a, T_) ((a) ? (T_ *)PyArray_DATA(a) : NULL)
    Py_BEGIN_ALLOW_THREADS
    if (typenum == NPY_FLOAT32) {
        status = al_lstm_forward_impl_f32(
            AL_PTR(hs, float), AL_PTR(cs, float), AL_PTR(out, float), AL_PTR(gates, float),
            AL_PTR(act_c, float),
            AL_PTR(x, float), AL_PTR(h0, float), AL_PTR(c0, float), AL_PTR(mask, uint8_t),
            AL_PTR(pmask, float), AL_PTR(rmask, float),
            AL_PTR(W, float), AL_PTR(U, float), AL_PTR(bias, float),
            (size_t)B, (size_t)T, (size_t)D, (size_t)H,
            activation, recurrent_activation, go_backwards, impl, nthreads, forced);
    } else {
        status = al_lstm_forward_impl_f64(
            AL_PTR(hs, double), AL_PTR(cs, double), AL_PTR(out, double), AL_PTR(gates, double),
            AL_PTR(act_c, double),
            AL_PTR(x, double), AL_PTR(h0, double), AL_PTR(c0, double), AL_PTR(mask, uint8_t),
            AL_PTR(pmask, double), AL_PTR(rmask, double),
            AL_PTR(W, double), AL_PTR(U, double), AL_PTR(bias, double),
            (size_t)B, (size_t)T, (size_t)D, (size_t)H,
            activation, recurrent_activation, go_backwards, impl, nthreads, forced);
    }
    Py_END_ALLOW_THREADS
#undef AL_PTR
    if (status != AL_OK) {
        al_kernel_error(fn, status);
        goto fail;
    }

    Py_DECREF(x); Py_DECREF(W); Py_DECREF(U);
    Py_XDECREF(bias); Py_XDECREF(h0); Py_XDECREF(c0); Py_XDECREF(mask); Py_XDECREF(pmask);
    Py_XDECREF(rmask);
    if (out == NULL) {
        Py_INCREF(Py_None);
        out = (PyArrayObject *)Py_None;
    }
    if (gates == NULL) {
        Py_INCREF(Py_None);
        gates = (PyArrayObject *)Py_None;
    }
    if (act_c != NULL) return Py_BuildValue("NNNNN", hs, cs, out, gates, act_c);
    return Py_BuildValue("NNNN", hs, cs, out, gates);

fail:
    Py_XDECREF(x); Py_XDECREF(W); Py_XDECREF(U); Py_XDECREF(bias);
    Py_XDECREF(h0); Py_XDECREF(c0); Py_XDECREF(mask); Py_XDECREF(pmask); Py_XDECREF(rmask);
    Py_XDECREF(hs); Py_XDECREF(cs); Py_XDECREF(out); Py_XDECREF(gates); Py_XDECREF(act_c);
    return NULL;
}

PyMethodDef al_lstm_methods[] = {
    {"lstm_forward", (PyCFunction)(void (*)(void))al_py_lstm_forward,
     METH_VARARGS | METH_KEYWORDS, LSTM_FORWARD_DOC},
    {NULL, NULL, 0, NULL}
};
