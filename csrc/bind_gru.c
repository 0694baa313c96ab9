/*
 * bind_gru.c -- CPython binding of the GRU kernels (gru_impl.h). Strict shapes: the flexible
 * forms (a shared dropout mask, None states) are resolved by attnlstm/_ops_gru.py.
 */
#include "bind_common.h"   /* Python.h first */

#define AL_GRU_IMPL_MAX 3

/* Checks shared by both entry points: impl, activation codes, and the thread budget from
 * `threads` (0: set_num_threads' count, used when the call is large enough; n > 0: exactly n
 * where the batch allows, for tests). */
static int al_gru_options(const char *fn, int impl, int activation, int recurrent_activation,
                          int threads, int *nthreads, int *forced) {
    if (threads < 0 || threads > 64) {
        PyErr_Format(PyExc_ValueError, "%s: `threads` must be 0..64, got %d.", fn, threads);
        return -1;
    }
    *forced = threads > 0;
    *nthreads = threads > 0 ? threads : al_blas_threads();
    if (impl < 0 || impl > AL_GRU_IMPL_MAX) {
        PyErr_Format(PyExc_ValueError, "%s: `impl` must be 0..%d, got %d.", fn, AL_GRU_IMPL_MAX,
                     impl);
        return -1;
    }
    if (al_check_activation(fn, "activation", activation) < 0 ||
        al_check_activation(fn, "recurrent_activation", recurrent_activation) < 0) return -1;
    return 0;
}

/* x (B,T,D) and recurrent_kernel (H,3H): B, T, D, H and G = 3H, checked (H, T >= 1, every
 * BLAS dimension within its 32-bit int, the workspaces within size_t). */
static int al_gru_dims(const char *fn, PyArrayObject *x, PyArrayObject *U, npy_intp *B,
                       npy_intp *T, npy_intp *D, npy_intp *H, npy_intp *G) {
    npy_intp BT, TG, BTG, BTD;
    *B = PyArray_DIM(x, 0); *T = PyArray_DIM(x, 1); *D = PyArray_DIM(x, 2);
    *H = PyArray_DIM(U, 0);
    if (*H < 1) {
        PyErr_Format(PyExc_ValueError, "%s: `recurrent_kernel` must have H >= 1 rows, got shape "
                     "(%lld, %lld).", fn, (long long)*H, (long long)PyArray_DIM(U, 1));
        return -1;
    }
    if (*T < 1) {
        PyErr_Format(PyExc_ValueError, "%s: `x` must have at least one timestep, got shape "
                     "(%lld, %lld, %lld).", fn, (long long)*B, (long long)*T, (long long)*D);
        return -1;
    }
    if (al_mul_intp(fn, *H, 3, G) < 0) return -1;
    if (PyArray_DIM(U, 1) != *G) {
        PyErr_Format(PyExc_ValueError, "%s: `recurrent_kernel` must have shape (H, 3H) = "
                     "(%lld, %lld), got (%lld, %lld).", fn, (long long)*H, (long long)*G,
                     (long long)*H, (long long)PyArray_DIM(U, 1));
        return -1;
    }
    if (al_mul_intp(fn, *B, *T, &BT) < 0 || al_mul_intp(fn, *T, *G, &TG) < 0 ||
        al_mul_intp(fn, BT, *G, &BTG) < 0 || al_mul_intp(fn, BT, *D, &BTD) < 0) return -1;
    if (al_check_blas_int(fn, "B*T", BT) < 0 || al_check_blas_int(fn, "T*3H", TG) < 0 ||
        al_check_blas_int(fn, "D", *D) < 0) return -1;
    if (BTG > NPY_MAX_INTP / 4 / (npy_intp)sizeof(double) ||
        BTD > NPY_MAX_INTP / 4 / (npy_intp)sizeof(double)) {
        PyErr_Format(PyExc_ValueError, "%s: workspace of B*T*(9H + D) = %lld*(%lld + %lld) "
                     "reals overflows.", fn, (long long)BT, (long long)(3 * *G), (long long)*D);
        return -1;
    }
    return 0;
}

static const char GRU_FORWARD_DOC[] =
    "gru_forward(x, kernel, recurrent_kernel, bias=None, h0=None, mask=None, activation=1,\n"
    "            recurrent_activation=2, reset_after=True, go_backwards=False, dp_mask=None,\n"
    "            rec_mask=None, impl=0, save_gates=True, threads=0) -> (hs, out, gates, rh)\n\n"
    "Low-level GRU forward over a whole sequence (Keras 3 GRU semantics, gates [z|r|h]).\n\n"
    "x (B,T,D), kernel (D,3H), recurrent_kernel (H,3H), bias (2,3H) with reset_after else\n"
    "(3H,), h0 (B,H), mask (B,T) (nonzero = keep), dp_mask (B,3D) and rec_mask (B,3H)\n"
    "per-gate dropout masks (training). All float arrays share x's dtype.\n"
    "Returns hs (B,T,H) in processing order, out (B,T,H) the masked output sequence (None\n"
    "without a mask: it equals hs), and the saved buffers gates (B,T,3H) (activated z, r, n\n"
    "by time) and rh (B,T,H) (reset_after: the h block of the recurrent product with its\n"
    "bias), both None with save_gates=False (inference), rh None without reset_after.\n"
    "impl: 0 automatic, 1 BLAS, 2 / 3 the packed per-step products with AVX2 / AVX-512.\n"
    "threads: 0 uses set_num_threads' count when the call is large enough; n > 0 exactly n\n"
    "(tests). Threads split the batch rows (packed path only); results are bitwise the same.\n"
    "Raises TypeError/ValueError on bad input, MemoryError when out of memory.";

static PyObject *al_py_gru_forward(PyObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"x", "kernel", "recurrent_kernel", "bias", "h0", "mask",
                             "activation", "recurrent_activation", "reset_after",
                             "go_backwards", "dp_mask", "rec_mask", "impl", "save_gates", "threads",
                             NULL};
    const char *fn = "gru_forward";
    PyObject *x_obj = NULL, *W_obj = NULL, *U_obj = NULL;
    PyObject *b_obj = Py_None, *h0_obj = Py_None, *m_obj = Py_None;
    PyObject *p_obj = Py_None, *r_obj = Py_None;
    int activation = AL_ACT_TANH, recurrent_activation = AL_ACT_SIGMOID, reset_after = 1;
    int go_backwards = 0, impl = 0, save_gates = 1, threads = 0, nthreads, forced;
    PyArrayObject *x = NULL, *W = NULL, *U = NULL, *bias = NULL, *h0 = NULL, *mask = NULL;
    PyArrayObject *pmask = NULL, *rmask = NULL, *hs = NULL, *out = NULL, *gates = NULL;
    PyArrayObject *rh = NULL;
    npy_intp B, T, D, H, G;
    int typenum, status = AL_OK;
    (void)self;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO|OOOiippOOipi:gru_forward", kwlist,
                                     &x_obj, &W_obj, &U_obj, &b_obj, &h0_obj, &m_obj,
                                     &activation, &recurrent_activation, &reset_after,
                                     &go_backwards, &p_obj, &r_obj, &impl, &save_gates,
                                     &threads)) {
        return NULL;
    }
    if (al_gru_options(fn, impl, activation, recurrent_activation, threads, &nthreads,
                       &forced) < 0) return NULL;
    if ((typenum = al_float_typenum(x_obj, fn, "x")) < 0) return NULL;
    {
        npy_intp any3[3] = {AL_ANY, AL_ANY, AL_ANY}, any2[2] = {AL_ANY, AL_ANY};
        if ((x = al_get_array(x_obj, typenum, fn, "x", 3, any3, "(B, T, D)")) == NULL) goto fail;
        if ((U = al_get_array(U_obj, typenum, fn, "recurrent_kernel", 2, any2, "(H, 3H)")) == NULL)
            goto fail;
    }
    if (al_gru_dims(fn, x, U, &B, &T, &D, &H, &G) < 0) goto fail;
    {
        npy_intp dW[2] = {D, G}, db2[2] = {2, G}, db1[1] = {G}, dh[2] = {B, H}, dm[2] = {B, T};
        npy_intp dp[2] = {B, 3 * D}, dr[2] = {B, G};
        if ((W = al_get_array(W_obj, typenum, fn, "kernel", 2, dW, "(D, 3H)")) == NULL) goto fail;
        if (b_obj != Py_None) {
            bias = reset_after ? al_get_array(b_obj, typenum, fn, "bias", 2, db2, "(2, 3H)")
                               : al_get_array(b_obj, typenum, fn, "bias", 1, db1, "(3H,)");
            if (bias == NULL) goto fail;
        }
        if (h0_obj != Py_None &&
            (h0 = al_get_array(h0_obj, typenum, fn, "h0", 2, dh, "(B, H)")) == NULL) goto fail;
        if (m_obj != Py_None &&
            (mask = al_get_mask(m_obj, fn, "mask", 2, dm, "(B, T)")) == NULL) goto fail;
        if (p_obj != Py_None &&
            (pmask = al_get_array(p_obj, typenum, fn, "dp_mask", 2, dp, "(B, 3D)")) == NULL)
            goto fail;
        if (r_obj != Py_None &&
            (rmask = al_get_array(r_obj, typenum, fn, "rec_mask", 2, dr, "(B, 3H)")) == NULL)
            goto fail;
    }
    {
        npy_intp dseq[3] = {B, T, H}, dgate[3] = {B, T, G};
        if ((hs = (PyArrayObject *)PyArray_EMPTY(3, dseq, typenum, 0)) == NULL) goto fail;
        if (mask != NULL &&
            (out = (PyArrayObject *)PyArray_EMPTY(3, dseq, typenum, 0)) == NULL) goto fail;
        if (save_gates &&
            (gates = (PyArrayObject *)PyArray_EMPTY(3, dgate, typenum, 0)) == NULL) goto fail;
        if (save_gates && reset_after &&
            (rh = (PyArrayObject *)PyArray_EMPTY(3, dseq, typenum, 0)) == NULL) goto fail;
    }

#define AL_PTR(a, T_) ((a) ? (T_ *)PyArray_DATA(a) : NULL)
#define AL_GRU_FWD(sfx, T_)                                                                  \
    status = al_gru_forward_impl_##sfx(                                                      \
        AL_PTR(hs, T_), AL_PTR(out, T_), AL_PTR(gates, T_), AL_PTR(rh, T_), AL_PTR(x, T_),   \
        AL_PTR(h0, T_), AL_PTR(mask, uint8_t), AL_PTR(pmask, T_), AL_PTR(rmask, T_),         \
        AL_PTR(W, T_), AL_PTR(U, T_), AL_PTR(bias, T_), (size_t)B, (size_t)T, (size_t)D,     \
        (size_t)H, activation, recurrent_activation, reset_after, go_backwards, impl,          \
        nthreads, forced)
    Py_BEGIN_ALLOW_THREADS
    if (typenum == NPY_FLOAT32) {
        AL_GRU_FWD(f32, float);
    } else {
        AL_GRU_FWD(f64, double);
    }
    Py_END_ALLOW_THREADS
#undef AL_GRU_FWD
    if (status != AL_OK) {
        al_kernel_error(fn, status);
        goto fail;
    }
    Py_DECREF(x); Py_DECREF(W); Py_DECREF(U);
    Py_XDECREF(bias); Py_XDECREF(h0); Py_XDECREF(mask); Py_XDECREF(pmask); Py_XDECREF(rmask);
    if (out == NULL) { Py_INCREF(Py_None); out = (PyArrayObject *)Py_None; }
    if (gates == NULL) { Py_INCREF(Py_None); gates = (PyArrayObject *)Py_None; }
    if (rh == NULL) { Py_INCREF(Py_None); rh = (PyArrayObject *)Py_None; }
    return Py_BuildValue("NNNN", hs, out, gates, rh);

fail:
    Py_XDECREF(x); Py_XDECREF(W); Py_XDECREF(U); Py_XDECREF(bias); Py_XDECREF(h0);
    Py_XDECREF(mask); Py_XDECREF(pmask); Py_XDECREF(rmask);
    Py_XDECREF(hs); Py_XDECREF(out); Py_XDECREF(gates); Py_XDECREF(rh);
    return NULL;
}

static const char GRU_BACKWARD_DOC[] =
    "gru_backward(hs, gates, rh, x, kernel, recurrent_kernel, h0=None, mask=None,\n"
    "             dp_mask=None, rec_mask=None, d_outputs=None, d_last=None, d_h=None,\n"
    "             activation=1, recurrent_activation=2, reset_after=True,\n"
    "             go_backwards=False, impl=0, threads=0)\n"
    "    -> (dx, dkernel, drecurrent_kernel, dbias, dh0)\n\n"
    "Low-level GRU backward (BPTT), inverting gru_forward. hs, gates, rh are gru_forward's\n"
    "saved buffers (rh None without reset_after); x, kernel, recurrent_kernel, h0, mask,\n"
    "dp_mask, rec_mask and the options must be the forward's. Upstream gradients (None =\n"
    "zero): d_outputs (B,T,H) w.r.t. the output sequence (processing order), d_last (B,H)\n"
    "w.r.t. the last output, d_h (B,H) w.r.t. the final state. Returns dx (B,T,D), dkernel\n"
    "(D,3H), drecurrent_kernel (H,3H), dbias ((2,3H) with reset_after, else (3H,)), dh0\n"
    "(B,H). Raises TypeError/ValueError on bad input, MemoryError when out of memory.";

static PyObject *al_py_gru_backward(PyObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"hs", "gates", "rh", "x", "kernel", "recurrent_kernel", "h0", "mask",
                             "dp_mask", "rec_mask", "d_outputs", "d_last", "d_h", "activation",
                             "recurrent_activation", "reset_after", "go_backwards", "impl",
                             "threads", NULL};
    const char *fn = "gru_backward";
    PyObject *hs_obj = NULL, *g_obj = NULL, *rh_obj = NULL, *x_obj = NULL, *W_obj = NULL;
    PyObject *U_obj = NULL, *h0_obj = Py_None, *m_obj = Py_None, *p_obj = Py_None;
    PyObject *r_obj = Py_None, *do_obj = Py_None, *dl_obj = Py_None, *dh_obj = Py_None;
    int activation = AL_ACT_TANH, recurrent_activation = AL_ACT_SIGMOID, reset_after = 1;
    int go_backwards = 0, impl = 0, threads = 0, nthreads, forced;
    PyArrayObject *hs = NULL, *gates = NULL, *rh = NULL, *x = NULL, *W = NULL, *U = NULL;
    PyArrayObject *h0 = NULL, *mask = NULL, *pmask = NULL, *rmask = NULL, *d_out = NULL;
    PyArrayObject *d_last = NULL, *d_h = NULL;
    PyArrayObject *dx = NULL, *dW = NULL, *dU = NULL, *db = NULL, *dh0 = NULL;
    npy_intp B, T, D, H, G;
    int typenum, status = AL_OK;
    (void)self;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOO|OOOOOOOiippii:gru_backward", kwlist,
                                     &hs_obj, &g_obj, &rh_obj, &x_obj, &W_obj, &U_obj, &h0_obj,
                                     &m_obj, &p_obj, &r_obj, &do_obj, &dl_obj, &dh_obj,
                                     &activation, &recurrent_activation, &reset_after,
                                     &go_backwards, &impl, &threads)) {
        return NULL;
    }
    if (al_gru_options(fn, impl, activation, recurrent_activation, threads, &nthreads,
                       &forced) < 0) return NULL;
    if ((typenum = al_float_typenum(x_obj, fn, "x")) < 0) return NULL;
    {
        npy_intp any3[3] = {AL_ANY, AL_ANY, AL_ANY}, any2[2] = {AL_ANY, AL_ANY};
        if ((x = al_get_array(x_obj, typenum, fn, "x", 3, any3, "(B, T, D)")) == NULL) goto fail;
        if ((U = al_get_array(U_obj, typenum, fn, "recurrent_kernel", 2, any2, "(H, 3H)")) == NULL)
            goto fail;
    }
    if (al_gru_dims(fn, x, U, &B, &T, &D, &H, &G) < 0) goto fail;
    {
        npy_intp dW_[2] = {D, G}, dseq[3] = {B, T, H}, dgate[3] = {B, T, G}, dst[2] = {B, H};
        npy_intp dm[2] = {B, T}, dp[2] = {B, 3 * D}, dr[2] = {B, G};
        if ((W = al_get_array(W_obj, typenum, fn, "kernel", 2, dW_, "(D, 3H)")) == NULL) goto fail;
        if ((hs = al_get_array(hs_obj, typenum, fn, "hs", 3, dseq, "(B, T, H)")) == NULL) goto fail;
        if ((gates = al_get_array(g_obj, typenum, fn, "gates", 3, dgate, "(B, T, 3H)")) == NULL)
            goto fail;
        if (reset_after) {
            if (rh_obj == Py_None) {
                PyErr_Format(PyExc_ValueError, "%s: `rh` (B, T, H) is required with reset_after.",
                             fn);
                goto fail;
            }
            if ((rh = al_get_array(rh_obj, typenum, fn, "rh", 3, dseq, "(B, T, H)")) == NULL)
                goto fail;
        }
        if (h0_obj != Py_None &&
            (h0 = al_get_array(h0_obj, typenum, fn, "h0", 2, dst, "(B, H)")) == NULL) goto fail;
        if (m_obj != Py_None &&
            (mask = al_get_mask(m_obj, fn, "mask", 2, dm, "(B, T)")) == NULL) goto fail;
        if (p_obj != Py_None &&
            (pmask = al_get_array(p_obj, typenum, fn, "dp_mask", 2, dp, "(B, 3D)")) == NULL)
            goto fail;
        if (r_obj != Py_None &&
            (rmask = al_get_array(r_obj, typenum, fn, "rec_mask", 2, dr, "(B, 3H)")) == NULL)
            goto fail;
        if (do_obj != Py_None &&
            (d_out = al_get_array(do_obj, typenum, fn, "d_outputs", 3, dseq, "(B, T, H)")) == NULL)
            goto fail;
        if (dl_obj != Py_None &&
            (d_last = al_get_array(dl_obj, typenum, fn, "d_last", 2, dst, "(B, H)")) == NULL)
            goto fail;
        if (dh_obj != Py_None &&
            (d_h = al_get_array(dh_obj, typenum, fn, "d_h", 2, dst, "(B, H)")) == NULL) goto fail;
    }
    {
        npy_intp dxs[3] = {B, T, D}, dWs[2] = {D, G}, dUs[2] = {H, G}, db2[2] = {2, G};
        npy_intp db1[1] = {G}, dst[2] = {B, H};
        if ((dx = (PyArrayObject *)PyArray_EMPTY(3, dxs, typenum, 0)) == NULL) goto fail;
        if ((dW = (PyArrayObject *)PyArray_EMPTY(2, dWs, typenum, 0)) == NULL) goto fail;
        if ((dU = (PyArrayObject *)PyArray_EMPTY(2, dUs, typenum, 0)) == NULL) goto fail;
        db = reset_after ? (PyArrayObject *)PyArray_EMPTY(2, db2, typenum, 0)
                         : (PyArrayObject *)PyArray_EMPTY(1, db1, typenum, 0);
        if (db == NULL) goto fail;
        if ((dh0 = (PyArrayObject *)PyArray_EMPTY(2, dst, typenum, 0)) == NULL) goto fail;
    }
#define AL_GRU_BWD(sfx, T_)                                                                  \
    status = al_gru_backward_impl_##sfx(                                                     \
        AL_PTR(dx, T_), AL_PTR(dW, T_), AL_PTR(dU, T_), AL_PTR(db, T_), AL_PTR(dh0, T_),     \
        AL_PTR(hs, T_), AL_PTR(gates, T_), AL_PTR(rh, T_), AL_PTR(x, T_), AL_PTR(h0, T_),    \
        AL_PTR(mask, uint8_t), AL_PTR(pmask, T_), AL_PTR(rmask, T_), AL_PTR(d_out, T_),      \
        AL_PTR(d_last, T_), AL_PTR(d_h, T_), AL_PTR(W, T_), AL_PTR(U, T_), (size_t)B,        \
        (size_t)T, (size_t)D, (size_t)H, activation, recurrent_activation, reset_after,      \
        go_backwards, impl, nthreads, forced)
    Py_BEGIN_ALLOW_THREADS
    if (typenum == NPY_FLOAT32) {
        AL_GRU_BWD(f32, float);
    } else {
        AL_GRU_BWD(f64, double);
    }
    Py_END_ALLOW_THREADS
#undef AL_GRU_BWD
#undef AL_PTR
    if (status != AL_OK) {
        al_kernel_error(fn, status);
        goto fail;
    }
    Py_DECREF(hs); Py_DECREF(gates); Py_XDECREF(rh); Py_DECREF(x); Py_DECREF(W); Py_DECREF(U);
    Py_XDECREF(h0); Py_XDECREF(mask); Py_XDECREF(pmask); Py_XDECREF(rmask);
    Py_XDECREF(d_out); Py_XDECREF(d_last); Py_XDECREF(d_h);
    return Py_BuildValue("NNNNN", dx, dW, dU, db, dh0);

fail:
    Py_XDECREF(hs); Py_XDECREF(gates); Py_XDECREF(rh); Py_XDECREF(x); Py_XDECREF(W);
    Py_XDECREF(U); Py_XDECREF(h0); Py_XDECREF(mask); Py_XDECREF(pmask); Py_XDECREF(rmask);
    Py_XDECREF(d_out); Py_XDECREF(d_last); Py_XDECREF(d_h);
    Py_XDECREF(dx); Py_XDECREF(dW); Py_XDECREF(dU); Py_XDECREF(db); Py_XDECREF(dh0);
    return NULL;
}

PyMethodDef al_gru_methods[] = {
    {"gru_forward", (PyCFunction)(void (*)(void))al_py_gru_forward,
     METH_VARARGS | METH_KEYWORDS, GRU_FORWARD_DOC},
    {"gru_backward", (PyCFunction)(void (*)(void))al_py_gru_backward,
     METH_VARARGS | METH_KEYWORDS, GRU_BACKWARD_DOC},
    {NULL, NULL, 0, NULL}
};
