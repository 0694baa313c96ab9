/*
 * bind_lstm_bwd.c -- CPython binding of the LSTM backward kernel (lstm_impl.h).
 */
#include "bind_common.h"
#include "lstm_api.h"


static const char LSTM_BACKWARD_DOC[] =
    "lstm_backward(hs, cs, gates, x, kernel, recurrent_kernel, h0=None, c0=None, mask=None,\n"
    "              dp_mask=None, rec_mask=None, act_c=None, d_outputs=None, d_last=None, d_h=None, d_c=None,\n"
    "              activation=1, recurrent_activation=2, go_backwards=False, impl=0,\n"
    "              threads=0)\n"
    "    -> (dx, dkernel, drecurrent_kernel, dbias, dh0, dc0)\n\n"
    "Low-level LSTM backward (BPTT) over a whole sequence, inverting lstm_forward.\n\n"
    "hs, cs (B,T,H), gates (B,T,4H) and act_c (B,T,H) (optional) are lstm_forward's saved\n"
    "buffers; x (B,T,D), kernel (D,4H), recurrent_kernel (H,4H), h0/c0 (B,H), mask (B,T),\n"
    "dp_mask (B,D)|(B,4D), rec_mask (B,H)|(B,4H) and the activation codes / go_backwards\n"
    "must be the forward's arguments.\n"
    "Upstream gradients (each optional, None = zero): d_outputs (B,T,H) w.r.t. the output\n"
    "sequence (processing order), d_last (B,H) w.r.t. the last output (step T-1), d_h and\n"
    "d_c (B,H) w.r.t. the final states. Returns dx (B,T,D), dkernel (D,4H),\n"
    "drecurrent_kernel (H,4H), dbias (4H,), dh0 and dc0 (B,H) (gradients w.r.t. the initial\n"
    "states, also when they were zeros). All float arrays share x's dtype.\n"
    "impl: as for lstm_forward (0 the path chosen at import, 1 generic, 2 AVX2, 3 AVX-512).\n"
    "threads: as for lstm_forward. Every result is the same bits for any thread count;\n"
    "dx, dh0 and dc0 of a sample also for any batch size and position in the batch.\n"
    "Raises TypeError/ValueError on bad input, MemoryError when out of memory.";

static PyObject *al_py_lstm_backward(PyObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"hs", "cs", "gates", "x", "kernel", "recurrent_kernel", "h0", "c0",
                             "mask", "dp_mask", "rec_mask", "act_c", "d_outputs", "d_last", "d_h", "d_c",
                             "activation", "recurrent_activation", "go_backwards", "impl", "threads", NULL};
    const char *fn = "lstm_backward";
    PyObject *hs_obj = NULL, *cs_obj = NULL, *g_obj = NULL, *x_obj = NULL, *W_obj = NULL;
    PyObject *U_obj = NULL, *h0_obj = Py_None, *c0_obj = Py_None, *m_obj = Py_None;
    PyObject *p_obj = Py_None, *r_obj = Py_None, *ac_obj = Py_None, *do_obj = Py_None, *dl_obj = Py_None;
    PyObject *dh_obj = Py_None, *dc_obj = Py_None;
    int activation = AL_ACT_TANH, recurrent_activation = AL_ACT_SIGMOID, go_backwards = 0;
    int impl = 0, threads = 0, nthreads, forced;
    PyArrayObject *hs = NULL, *cs = NULL, *gates = NULL, *act_c = NULL, *x = NULL, *W = NULL;
    PyArrayObject *U = NULL, *h0 = NULL, *c0 = NULL, *mask = NULL, *pmask = NULL, *rmask = NULL;
    PyArrayObject *d_out = NULL, *d_last = NULL, *d_h = NULL, *d_c = NULL;
    PyArrayObject *dx = NULL, *dW = NULL, *dU = NULL, *db = NULL, *dh0 = NULL, *dc0 = NULL;
    npy_intp B, T, D, H, G, BT, TG, BTG, BTD;
    int typenum, status = AL_OK;
    (void)self;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOO|OOOOOOOOOOiipii:lstm_backward", kwlist,
                                     &hs_obj, &cs_obj, &g_obj, &x_obj, &W_obj, &U_obj,
                                     &h0_obj, &c0_obj, &m_obj, &p_obj, &r_obj, &ac_obj, &do_obj,
                                     &dl_obj, &dh_obj, &dc_obj,
                                     &activation, &recurrent_activation, &go_backwards, &impl, &threads)) {
        return NULL;
    }
    if (al_lstm_options(fn, impl, threads, activation, recurrent_activation, &nthreads,
                        &forced) < 0) return NULL;
    if ((typenum = al_float_typenum(x_obj, fn, "x")) < 0) return NULL;

    {
        npy_intp any3[3] = {AL_ANY, AL_ANY, AL_ANY};
        npy_intp any2[2] = {AL_ANY, AL_ANY};
        if ((x = al_get_array(x_obj, typenum, fn, "x", 3, any3, "(B, T, D)")) == NULL) goto fail;
        if ((U = al_get_array(U_obj, typenum, fn, "recurrent_kernel", 2, any2, "(H, 4H)")) == NULL)
            goto fail;
    }
    B = PyArray_DIM(x, 0); T = PyArray_DIM(x, 1); D = PyArray_DIM(x, 2);
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
    if (PyArray_DIM(U, 1) != G) {
        PyErr_Format(PyExc_ValueError,
                     "%s: `recurrent_kernel` must have shape (H, 4H) = (%lld, %lld), got (%lld, %lld).",
                     fn, (long long)H, (long long)G, (long long)H, (long long)PyArray_DIM(U, 1));
        goto fail;
    }
    {
        npy_intp dWs[2] = {D, G}, dseq[3] = {B, T, H}, dgate[3] = {B, T, G};
        npy_intp dst[2] = {B, H}, dm[2] = {B, T};
        if ((W = al_get_array(W_obj, typenum, fn, "kernel", 2, dWs, "(D, 4H)")) == NULL) goto fail;
        if ((hs = al_get_array(hs_obj, typenum, fn, "hs", 3, dseq, "(B, T, H)")) == NULL) goto fail;
        if ((cs = al_get_array(cs_obj, typenum, fn, "cs", 3, dseq, "(B, T, H)")) == NULL) goto fail;
        if ((gates = al_get_array(g_obj, typenum, fn, "gates", 3, dgate, "(B, T, 4H)")) == NULL)
            goto fail;
        if (ac_obj != Py_None &&
            (act_c = al_get_array(ac_obj, typenum, fn, "act_c", 3, dseq, "(B, T, H)")) == NULL)
            goto fail;
        if (h0_obj != Py_None &&
            (h0 = al_get_array(h0_obj, typenum, fn, "h0", 2, dst, "(B, H)")) == NULL) goto fail;
        if (c0_obj != Py_None &&
            (c0 = al_get_array(c0_obj, typenum, fn, "c0", 2, dst, "(B, H)")) == NULL) goto fail;
        if (m_obj != Py_None &&
            (mask = al_get_mask(m_obj, fn, "mask", 2, dm, "(B, T)")) == NULL) goto fail;
        if (p_obj != Py_None &&
            (pmask = al_lstm_gate_mask(p_obj, typenum, fn, "dp_mask", B, D, "D")) == NULL)
            goto fail;
        if (r_obj != Py_None &&
            (rmask = al_lstm_gate_mask(r_obj, typenum, fn, "rec_mask", B, H, "H")) == NULL)
            goto fail;
        if (do_obj != Py_None &&
            (d_out = al_get_array(do_obj, typenum, fn, "d_outputs", 3, dseq, "(B, T, H)")) == NULL)
            goto fail;
        if (dl_obj != Py_None &&
            (d_last = al_get_array(dl_obj, typenum, fn, "d_last", 2, dst, "(B, H)")) == NULL)
            goto fail;
        if (dh_obj != Py_None &&
            (d_h = al_get_array(dh_obj, typenum, fn, "d_h", 2, dst, "(B, H)")) == NULL) goto fail;
        if (dc_obj != Py_None &&
            (d_c = al_get_array(dc_obj, typenum, fn, "d_c", 2, dst, "(B, H)")) == NULL) goto fail;
    }
    /* Every BLAS dimension and leading dimension must fit its 32-bit int, and the kernel's
     * workspace of at most B*T*(8H + D) + 5*B*H reals must not overflow size_t. */
    if (al_mul_intp(fn, B, T, &BT) < 0 || al_mul_intp(fn, T, G, &TG) < 0 ||
        al_mul_intp(fn, BT, G, &BTG) < 0 || al_mul_intp(fn, BT, D, &BTD) < 0) goto fail;
    if (al_check_blas_int(fn, "B*T", BT) < 0 || al_check_blas_int(fn, "T*4H", TG) < 0 ||
        al_check_blas_int(fn, "D", D) < 0) goto fail;
    if (BTG > NPY_MAX_INTP / 8 / (npy_intp)sizeof(double) ||
        BTD > NPY_MAX_INTP / 8 / (npy_intp)sizeof(double)) {
        PyErr_Format(PyExc_ValueError, "%s: workspace size B*T*(8H + D) = %lld*(%lld + %lld) overflows.",
                     fn, (long long)BT, (long long)(2 * G), (long long)D);
        goto fail;
    }

    {
        npy_intp dxs[3] = {B, T, D}, dWs[2] = {D, G}, dUs[2] = {H, G}, dbs[1] = {G};
        npy_intp dst[2] = {B, H};
        if ((dx = (PyArrayObject *)PyArray_EMPTY(3, dxs, typenum, 0)) == NULL) goto fail;
        if ((dW = (PyArrayObject *)PyArray_EMPTY(2, dWs, typenum, 0)) == NULL) goto fail;
        if ((dU = (PyArrayObject *)PyArray_EMPTY(2, dUs, typenum, 0)) == NULL) goto fail;
        if ((db = (PyArrayObject *)PyArray_EMPTY(1, dbs, typenum, 0)) == NULL) goto fail;
        if ((dh0 = (PyArrayObject *)PyArray_EMPTY(2, dst, typenum, 0)) == NULL) goto fail;
        if ((dc0 = (PyArrayObject *)PyArray_EMPTY(2, dst, typenum, 0)) == NULL) goto fail;
    }

#define AL_PTR(a, T_) ((a) ? (T_ *)PyArray_DATA(a) : NULL)
    Py_BEGIN_ALLOW_THREADS
    if (typenum == NPY_FLOAT32) {
        status = al_lstm_backward_impl_f32(
            AL_PTR(dx, float), AL_PTR(dW, float), AL_PTR(dU, float), AL_PTR(db, float),
            AL_PTR(dh0, float), AL_PTR(dc0, float),
            AL_PTR(hs, float), AL_PTR(cs, float), AL_PTR(gates, float), AL_PTR(act_c, float),
            AL_PTR(x, float), AL_PTR(h0, float), AL_PTR(c0, float), AL_PTR(mask, uint8_t),
            AL_PTR(pmask, float), AL_PTR(rmask, float),
            AL_PTR(d_out, float), AL_PTR(d_last, float), AL_PTR(d_h, float), AL_PTR(d_c, float),
            AL_PTR(W, float), AL_PTR(U, float),
            (size_t)B, (size_t)T, (size_t)D, (size_t)H,
            activation, recurrent_activation, go_backwards, impl, nthreads, forced);
    } else {
        status = al_lstm_backward_impl_f64(
            AL_PTR(dx, double), AL_PTR(dW, double), AL_PTR(dU, double), AL_PTR(db, double),
            AL_PTR(dh0, double), AL_PTR(dc0, double),
            AL_PTR(hs, double), AL_PTR(cs, double), AL_PTR(gates, double), AL_PTR(act_c, double),
            AL_PTR(x, double), AL_PTR(h0, double), AL_PTR(c0, double), AL_PTR(mask, uint8_t),
            AL_PTR(pmask, double), AL_PTR(rmask, double),
            AL_PTR(d_out, double), AL_PTR(d_last, double), AL_PTR(d_h, double),
            AL_PTR(d_c, double),
            AL_PTR(W, double), AL_PTR(U, double),
            (size_t)B, (size_t)T, (size_t)D, (size_t)H,
            activation, recurrent_activation, go_backwards, impl, nthreads, forced);
    }
    Py_END_ALLOW_THREADS
#undef AL_PTR
    if (status != AL_OK) {
        al_kernel_error(fn, status);
        goto fail;
    }

    Py_DECREF(hs); Py_DECREF(cs); Py_DECREF(gates); Py_XDECREF(act_c);
    Py_DECREF(x); Py_DECREF(W); Py_DECREF(U);
    Py_XDECREF(h0); Py_XDECREF(c0); Py_XDECREF(mask); Py_XDECREF(pmask); Py_XDECREF(rmask);
    Py_XDECREF(d_out); Py_XDECREF(d_last); Py_XDECREF(d_h); Py_XDECREF(d_c);
    return Py_BuildValue("NNNNNN", dx, dW, dU, db, dh0, dc0);

fail:
    Py_XDECREF(hs); Py_XDECREF(cs); Py_XDECREF(gates); Py_XDECREF(act_c);
    Py_XDECREF(x); Py_XDECREF(W); Py_XDECREF(U);
    Py_XDECREF(h0); Py_XDECREF(c0); Py_XDECREF(mask); Py_XDECREF(pmask); Py_XDECREF(rmask);
    Py_XDECREF(d_out); Py_XDECREF(d_last); Py_XDECREF(d_h); Py_XDECREF(d_c);
    Py_XDECREF(dx); Py_XDECREF(dW); Py_XDECREF(dU); Py_XDECREF(db);
    Py_XDECREF(dh0); Py_XDECREF(dc0);
    return NULL;
}

PyMethodDef al_lstm_bwd_methods[] = {
    {"lstm_backward", (PyCFunction)(void (*)(void))al_py_lstm_backward,
     METH_VARARGS | METH_KEYWORDS, LSTM_BACKWARD_DOC},
    {NULL, NULL, 0, NULL}
};
