/*
 * bind_attention.c -- CPython binding of the attention kernels (attention_impl.h).
 *
 * Every function re-checks dtypes and shapes (TypeError / ValueError), converts array-likes
 * and strided arrays to C-contiguous copies, allocates the outputs, and releases the GIL
 * around the kernel. Empty axes are defined: B, Tq or Dv == 0 give empty results; Tv == 0
 * (no keys) gives empty weights (B,Tq,0) and a zero context, the value of an empty
 * weighted sum (what Keras' matmul returns). NaN/inf inputs propagate (no check, no crash).
 */
#include "bind_common.h"
#include "al_attention.h"

#define AL_P(a, T_) ((a) ? (T_ *)PyArray_DATA(a) : NULL)

static PyArrayObject *al_arr(PyObject *obj, int typenum, const char *fn, const char *arg,
                             int ndim, npy_intp d0, npy_intp d1, npy_intp d2, const char *axes) {
    npy_intp dims[3] = {d0, d1, d2};
    return al_get_array(obj, typenum, fn, arg, ndim, dims, axes);
}

/* Optional array: NULL result without error when obj is None (check *ok). */
static PyArrayObject *al_opt_arr(PyObject *obj, int typenum, const char *fn, const char *arg,
                                 int ndim, npy_intp d0, npy_intp d1, npy_intp d2,
                                 const char *axes, int *ok) {
    PyArrayObject *a;
    if (obj == Py_None) return NULL;
    a = al_arr(obj, typenum, fn, arg, ndim, d0, d1, d2, axes);
    if (a == NULL) *ok = 0;
    return a;
}

static PyArrayObject *al_opt_mask(PyObject *obj, const char *fn, const char *arg, int ndim,
                                  npy_intp d0, npy_intp d1, npy_intp d2, const char *axes,
                                  int *ok) {
    npy_intp dims[3] = {d0, d1, d2};
    PyArrayObject *a;
    if (obj == Py_None) return NULL;
    a = al_get_mask(obj, fn, arg, ndim, dims, axes);
    if (a == NULL) *ok = 0;
    return a;
}

static PyArrayObject *al_new(int typenum, int ndim, npy_intp d0, npy_intp d1, npy_intp d2) {
    npy_intp dims[3] = {d0, d1, d2};
    return (PyArrayObject *)PyArray_EMPTY(ndim, dims, typenum, 0);
}

/* Every size the BLAS sees fits its 32-bit int, and the kernels' workspaces (Tq*Tv and
 * rows*U reals) fit in memory arithmetic. `rows` are the B*T row counts of projections. */
static int al_attn_check_sizes(const char *fn, npy_intp Tq, npy_intp Tv, npy_intp D,
                               npy_intp Dv, npy_intp U, npy_intp rows_q, npy_intp rows_k) {
    npy_intp n;
    if (al_check_blas_int(fn, "Tq", Tq) < 0 || al_check_blas_int(fn, "Tv", Tv) < 0 ||
        al_check_blas_int(fn, "D", D) < 0 || al_check_blas_int(fn, "Dv", Dv) < 0 ||
        al_check_blas_int(fn, "U", U) < 0 || al_check_blas_int(fn, "B*Tq", rows_q) < 0 ||
        al_check_blas_int(fn, "B*Tv", rows_k) < 0) return -1;
    if (al_mul_intp(fn, Tq, Tv, &n) < 0 || al_mul_intp(fn, n, 8, &n) < 0) return -1;
    if (al_mul_intp(fn, rows_q, U, &n) < 0 || al_mul_intp(fn, n, 8, &n) < 0) return -1;
    if (al_mul_intp(fn, rows_k, U, &n) < 0 || al_mul_intp(fn, n, 8, &n) < 0) return -1;
    return 0;
}

static int al_check_score_mode(const char *fn, int score_mode) {
    if (score_mode != AL_SCORE_DOT && score_mode != AL_SCORE_CONCAT) {
        PyErr_Format(PyExc_ValueError,
                     "%s: `score_mode` must be %d (dot) or %d (concat), got %d.",
                     fn, (int)AL_SCORE_DOT, (int)AL_SCORE_CONCAT, score_mode);
        return -1;
    }
    return 0;
}

/* ---- dot / concat (Keras Attention) ------------------------------------------------------ */

static const char DOT_FORWARD_DOC[] =
    "dot_attention_forward(query, key, value, query_mask=None, value_mask=None,\n"
    "                      attention_mask=None, causal=False, scale=1.0,\n"
    "                      concat_score_weight=1.0, score_mode=0) -> (out, weights)\n\n"
    "Keras `Attention` forward. query (B,Tq,D), key (B,Tv,D), value (B,Tv,Dv), same float\n"
    "dtype; masks (B,Tq), (B,Tv), (B,Tq,Tv), nonzero = keep. score_mode 0 = dot, 1 = concat.\n"
    "Returns out (B,Tq,Dv) and weights (B,Tq,Tv) (post-softmax, pre-query-mask).";

static PyObject *al_py_dot_attention_forward(PyObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"query", "key", "value", "query_mask", "value_mask",
                             "attention_mask", "causal", "scale", "concat_score_weight",
                             "score_mode", NULL};
    const char *fn = "dot_attention_forward";
    PyObject *q_obj, *k_obj, *v_obj, *qm_obj = Py_None, *vm_obj = Py_None, *am_obj = Py_None;
    int causal = 0, score_mode = AL_SCORE_DOT, typenum, status = AL_OK, ok = 1;
    double scale = 1.0, cw = 1.0;
    PyArrayObject *q = NULL, *k = NULL, *v = NULL, *qm = NULL, *vm = NULL, *am = NULL;
    PyArrayObject *out = NULL, *weights = NULL;
    npy_intp B, Tq, Tv, D, Dv;
    (void)self;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO|OOOpddi:dot_attention_forward", kwlist,
                                     &q_obj, &k_obj, &v_obj, &qm_obj, &vm_obj, &am_obj, &causal,
                                     &scale, &cw, &score_mode)) return NULL;
    if (al_check_score_mode(fn, score_mode) < 0) return NULL;
    if ((typenum = al_float_typenum(q_obj, fn, "query")) < 0) return NULL;
    if ((q = al_arr(q_obj, typenum, fn, "query", 3, AL_ANY, AL_ANY, AL_ANY, "(B, Tq, D)")) == NULL)
        goto fail;
    B = PyArray_DIM(q, 0); Tq = PyArray_DIM(q, 1); D = PyArray_DIM(q, 2);
    if ((k = al_arr(k_obj, typenum, fn, "key", 3, B, AL_ANY, D, "(B, Tv, D)")) == NULL) goto fail;
    Tv = PyArray_DIM(k, 1);
    if ((v = al_arr(v_obj, typenum, fn, "value", 3, B, Tv, AL_ANY, "(B, Tv, Dv)")) == NULL)
        goto fail;
    Dv = PyArray_DIM(v, 2);
    qm = al_opt_mask(qm_obj, fn, "query_mask", 2, B, Tq, 0, "(B, Tq)", &ok);
    if (ok) vm = al_opt_mask(vm_obj, fn, "value_mask", 2, B, Tv, 0, "(B, Tv)", &ok);
    if (ok) am = al_opt_mask(am_obj, fn, "attention_mask", 3, B, Tq, Tv, "(B, Tq, Tv)", &ok);
    if (!ok) goto fail;
    if (al_attn_check_sizes(fn, Tq, Tv, D, Dv, 0, 0, 0) < 0) goto fail;
    if ((out = al_new(typenum, 3, B, Tq, Dv)) == NULL) goto fail;
    if ((weights = al_new(typenum, 3, B, Tq, Tv)) == NULL) goto fail;

#define ARGS(T_) AL_P(out, T_), AL_P(weights, T_), AL_P(q, T_), AL_P(k, T_), AL_P(v, T_),     \
                 AL_P(qm, uint8_t), AL_P(vm, uint8_t), AL_P(am, uint8_t), (T_)scale, (T_)cw,   \
                 (size_t)B, (size_t)Tq, (size_t)Tv, (size_t)D, (size_t)Dv, score_mode, causal
    Py_BEGIN_ALLOW_THREADS
    if (typenum == NPY_FLOAT32) status = al_dot_attention_forward_f32(ARGS(float));
    else status = al_dot_attention_forward_f64(ARGS(double));
    Py_END_ALLOW_THREADS
#undef ARGS
    if (status != AL_OK) {
        al_kernel_error(fn, status);
        goto fail;
    }
    Py_DECREF(q); Py_DECREF(k); Py_DECREF(v);
    Py_XDECREF(qm); Py_XDECREF(vm); Py_XDECREF(am);
    return Py_BuildValue("NN", out, weights);

fail:
    Py_XDECREF(q); Py_XDECREF(k); Py_XDECREF(v);
    Py_XDECREF(qm); Py_XDECREF(vm); Py_XDECREF(am);
    Py_XDECREF(out); Py_XDECREF(weights);
    return NULL;
}

static const char DOT_BACKWARD_DOC[] =
    "dot_attention_backward(d_out, d_weights, weights, query, key, value, query_mask=None,\n"
    "                       scale=1.0, concat_score_weight=1.0, score_mode=0)\n"
    "    -> (d_query, d_key, d_value, d_scale, d_concat_score_weight)\n\n"
    "Backward of dot_attention_forward. d_out (B,Tq,Dv); d_weights (B,Tq,Tv) or None;\n"
    "weights (B,Tq,Tv) from the forward. d_scale and d_concat_score_weight are floats\n"
    "(the latter 0.0 in dot mode).";

static PyObject *al_py_dot_attention_backward(PyObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"d_out", "d_weights", "weights", "query", "key", "value",
                             "query_mask", "scale", "concat_score_weight", "score_mode", NULL};
    const char *fn = "dot_attention_backward";
    PyObject *do_obj, *dw_obj, *w_obj, *q_obj, *k_obj, *v_obj, *qm_obj = Py_None;
    int score_mode = AL_SCORE_DOT, typenum, status = AL_OK, ok = 1;
    double scale = 1.0, cw = 1.0;
    PyArrayObject *dout = NULL, *dw = NULL, *w = NULL, *q = NULL, *k = NULL, *v = NULL;
    PyArrayObject *qm = NULL, *dq = NULL, *dk = NULL, *dv = NULL;
    npy_intp B, Tq, Tv, D, Dv;
    double dscale = 0.0, dcw = 0.0;
    (void)self;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOO|Oddi:dot_attention_backward", kwlist,
                                     &do_obj, &dw_obj, &w_obj, &q_obj, &k_obj, &v_obj, &qm_obj,
                                     &scale, &cw, &score_mode)) return NULL;
    if (al_check_score_mode(fn, score_mode) < 0) return NULL;
    if ((typenum = al_float_typenum(q_obj, fn, "query")) < 0) return NULL;
    if ((q = al_arr(q_obj, typenum, fn, "query", 3, AL_ANY, AL_ANY, AL_ANY, "(B, Tq, D)")) == NULL)
        goto fail;
    B = PyArray_DIM(q, 0); Tq = PyArray_DIM(q, 1); D = PyArray_DIM(q, 2);
    if ((k = al_arr(k_obj, typenum, fn, "key", 3, B, AL_ANY, D, "(B, Tv, D)")) == NULL) goto fail;
    Tv = PyArray_DIM(k, 1);
    if ((v = al_arr(v_obj, typenum, fn, "value", 3, B, Tv, AL_ANY, "(B, Tv, Dv)")) == NULL)
        goto fail;
    Dv = PyArray_DIM(v, 2);
    if ((w = al_arr(w_obj, typenum, fn, "weights", 3, B, Tq, Tv, "(B, Tq, Tv)")) == NULL) goto fail;
    if ((dout = al_arr(do_obj, typenum, fn, "d_out", 3, B, Tq, Dv, "(B, Tq, Dv)")) == NULL)
        goto fail;
    dw = al_opt_arr(dw_obj, typenum, fn, "d_weights", 3, B, Tq, Tv, "(B, Tq, Tv)", &ok);
    if (ok) qm = al_opt_mask(qm_obj, fn, "query_mask", 2, B, Tq, 0, "(B, Tq)", &ok);
    if (!ok) goto fail;
    if (al_attn_check_sizes(fn, Tq, Tv, D, Dv, 0, 0, 0) < 0) goto fail;
    if ((dq = al_new(typenum, 3, B, Tq, D)) == NULL) goto fail;
    if ((dk = al_new(typenum, 3, B, Tv, D)) == NULL) goto fail;
    if ((dv = al_new(typenum, 3, B, Tv, Dv)) == NULL) goto fail;

    Py_BEGIN_ALLOW_THREADS
    if (typenum == NPY_FLOAT32) {
        float s = 0.0f, c = 0.0f;
        status = al_dot_attention_backward_f32(
            AL_P(dq, float), AL_P(dk, float), AL_P(dv, float), &s, &c, AL_P(w, float),
            AL_P(dout, float), AL_P(dw, float), AL_P(q, float), AL_P(k, float), AL_P(v, float),
            AL_P(qm, uint8_t), (float)scale, (float)cw,
            (size_t)B, (size_t)Tq, (size_t)Tv, (size_t)D, (size_t)Dv, score_mode);
        dscale = s; dcw = c;
    } else {
        status = al_dot_attention_backward_f64(
            AL_P(dq, double), AL_P(dk, double), AL_P(dv, double), &dscale, &dcw,
            AL_P(w, double), AL_P(dout, double), AL_P(dw, double), AL_P(q, double),
            AL_P(k, double), AL_P(v, double), AL_P(qm, uint8_t), scale, cw,
            (size_t)B, (size_t)Tq, (size_t)Tv, (size_t)D, (size_t)Dv, score_mode);
    }
    Py_END_ALLOW_THREADS
    if (status != AL_OK) {
        al_kernel_error(fn, status);
        goto fail;
    }
    Py_DECREF(dout); Py_XDECREF(dw); Py_DECREF(w); Py_DECREF(q); Py_DECREF(k); Py_DECREF(v);
    Py_XDECREF(qm);
    return Py_BuildValue("NNNdd", dq, dk, dv, dscale, dcw);

fail:
    Py_XDECREF(dout); Py_XDECREF(dw); Py_XDECREF(w); Py_XDECREF(q); Py_XDECREF(k);
    Py_XDECREF(v); Py_XDECREF(qm); Py_XDECREF(dq); Py_XDECREF(dk); Py_XDECREF(dv);
    return NULL;
}

/* ---- additive (Keras AdditiveAttention) -------------------------------------------------- */

static const char ADD_FORWARD_DOC[] =
    "additive_attention_forward(query, key, value, scale=None, query_mask=None,\n"
    "                           value_mask=None, attention_mask=None, causal=False)\n"
    "    -> (out, weights)\n\n"
    "Keras `AdditiveAttention` forward: scores = sum_u scale[u] tanh(q[i,u] + k[j,u]).\n"
    "query (B,Tq,U), key (B,Tv,U), value (B,Tv,Dv), scale (U,) or None (ones).";

static PyObject *al_py_additive_attention_forward(PyObject *self, PyObject *args,
                                                  PyObject *kwds) {
    static char *kwlist[] = {"query", "key", "value", "scale", "query_mask", "value_mask",
                             "attention_mask", "causal", NULL};
    const char *fn = "additive_attention_forward";
    PyObject *q_obj, *k_obj, *v_obj, *s_obj = Py_None;
    PyObject *qm_obj = Py_None, *vm_obj = Py_None, *am_obj = Py_None;
    int causal = 0, typenum, status = AL_OK, ok = 1;
    PyArrayObject *q = NULL, *k = NULL, *v = NULL, *s = NULL, *qm = NULL, *vm = NULL, *am = NULL;
    PyArrayObject *out = NULL, *weights = NULL;
    npy_intp B, Tq, Tv, U, Dv;
    (void)self;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO|OOOOp:additive_attention_forward", kwlist,
                                     &q_obj, &k_obj, &v_obj, &s_obj, &qm_obj, &vm_obj, &am_obj,
                                     &causal)) return NULL;
    if ((typenum = al_float_typenum(q_obj, fn, "query")) < 0) return NULL;
    if ((q = al_arr(q_obj, typenum, fn, "query", 3, AL_ANY, AL_ANY, AL_ANY, "(B, Tq, U)")) == NULL)
        goto fail;
    B = PyArray_DIM(q, 0); Tq = PyArray_DIM(q, 1); U = PyArray_DIM(q, 2);
    if ((k = al_arr(k_obj, typenum, fn, "key", 3, B, AL_ANY, U, "(B, Tv, U)")) == NULL) goto fail;
    Tv = PyArray_DIM(k, 1);
    if ((v = al_arr(v_obj, typenum, fn, "value", 3, B, Tv, AL_ANY, "(B, Tv, Dv)")) == NULL)
        goto fail;
    Dv = PyArray_DIM(v, 2);
    s = al_opt_arr(s_obj, typenum, fn, "scale", 1, U, 0, 0, "(U,)", &ok);
    if (ok) qm = al_opt_mask(qm_obj, fn, "query_mask", 2, B, Tq, 0, "(B, Tq)", &ok);
    if (ok) vm = al_opt_mask(vm_obj, fn, "value_mask", 2, B, Tv, 0, "(B, Tv)", &ok);
    if (ok) am = al_opt_mask(am_obj, fn, "attention_mask", 3, B, Tq, Tv, "(B, Tq, Tv)", &ok);
    if (!ok) goto fail;
    if (al_attn_check_sizes(fn, Tq, Tv, U, Dv, U, 0, 0) < 0) goto fail;
    if ((out = al_new(typenum, 3, B, Tq, Dv)) == NULL) goto fail;
    if ((weights = al_new(typenum, 3, B, Tq, Tv)) == NULL) goto fail;

#define ARGS(T_) AL_P(out, T_), AL_P(weights, T_), AL_P(q, T_), AL_P(k, T_), AL_P(v, T_),     \
                 AL_P(qm, uint8_t), AL_P(vm, uint8_t), AL_P(am, uint8_t), AL_P(s, T_),         \
                 (size_t)B, (size_t)Tq, (size_t)Tv, (size_t)U, (size_t)Dv, causal
    Py_BEGIN_ALLOW_THREADS
    if (typenum == NPY_FLOAT32) status = al_additive_attention_forward_f32(ARGS(float));
    else status = al_additive_attention_forward_f64(ARGS(double));
    Py_END_ALLOW_THREADS
#undef ARGS
    if (status != AL_OK) {
        al_kernel_error(fn, status);
        goto fail;
    }
    Py_DECREF(q); Py_DECREF(k); Py_DECREF(v); Py_XDECREF(s);
    Py_XDECREF(qm); Py_XDECREF(vm); Py_XDECREF(am);
    return Py_BuildValue("NN", out, weights);

fail:
    Py_XDECREF(q); Py_XDECREF(k); Py_XDECREF(v); Py_XDECREF(s);
    Py_XDECREF(qm); Py_XDECREF(vm); Py_XDECREF(am);
    Py_XDECREF(out); Py_XDECREF(weights);
    return NULL;
}

static const char ADD_BACKWARD_DOC[] =
    "additive_attention_backward(d_out, d_weights, weights, query, key, value, scale=None,\n"
    "                            query_mask=None) -> (d_query, d_key, d_value, d_scale)\n\n"
    "Backward of additive_attention_forward; d_scale (U,) is None when scale is None.";

static PyObject *al_py_additive_attention_backward(PyObject *self, PyObject *args,
                                                   PyObject *kwds) {
    static char *kwlist[] = {"d_out", "d_weights", "weights", "query", "key", "value", "scale",
                             "query_mask", NULL};
    const char *fn = "additive_attention_backward";
    PyObject *do_obj, *dw_obj, *w_obj, *q_obj, *k_obj, *v_obj, *s_obj = Py_None;
    PyObject *qm_obj = Py_None;
    int typenum, status = AL_OK, ok = 1;
    PyArrayObject *dout = NULL, *dw = NULL, *w = NULL, *q = NULL, *k = NULL, *v = NULL;
    PyArrayObject *s = NULL, *qm = NULL, *dq = NULL, *dk = NULL, *dv = NULL, *ds = NULL;
    npy_intp B, Tq, Tv, U, Dv;
    (void)self;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOO|OO:additive_attention_backward", kwlist,
                                     &do_obj, &dw_obj, &w_obj, &q_obj, &k_obj, &v_obj, &s_obj,
                                     &qm_obj)) return NULL;
    if ((typenum = al_float_typenum(q_obj, fn, "query")) < 0) return NULL;
    if ((q = al_arr(q_obj, typenum, fn, "query", 3, AL_ANY, AL_ANY, AL_ANY, "(B, Tq, U)")) == NULL)
        goto fail;
    B = PyArray_DIM(q, 0); Tq = PyArray_DIM(q, 1); U = PyArray_DIM(q, 2);
    if ((k = al_arr(k_obj, typenum, fn, "key", 3, B, AL_ANY, U, "(B, Tv, U)")) == NULL) goto fail;
    Tv = PyArray_DIM(k, 1);
    if ((v = al_arr(v_obj, typenum, fn, "value", 3, B, Tv, AL_ANY, "(B, Tv, Dv)")) == NULL)
        goto fail;
    Dv = PyArray_DIM(v, 2);
    if ((w = al_arr(w_obj, typenum, fn, "weights", 3, B, Tq, Tv, "(B, Tq, Tv)")) == NULL) goto fail;
    if ((dout = al_arr(do_obj, typenum, fn, "d_out", 3, B, Tq, Dv, "(B, Tq, Dv)")) == NULL)
        goto fail;
    dw = al_opt_arr(dw_obj, typenum, fn, "d_weights", 3, B, Tq, Tv, "(B, Tq, Tv)", &ok);
    if (ok) s = al_opt_arr(s_obj, typenum, fn, "scale", 1, U, 0, 0, "(U,)", &ok);
    if (ok) qm = al_opt_mask(qm_obj, fn, "query_mask", 2, B, Tq, 0, "(B, Tq)", &ok);
    if (!ok) goto fail;
    if (al_attn_check_sizes(fn, Tq, Tv, U, Dv, U, 0, 0) < 0) goto fail;
    if ((dq = al_new(typenum, 3, B, Tq, U)) == NULL) goto fail;
    if ((dk = al_new(typenum, 3, B, Tv, U)) == NULL) goto fail;
    if ((dv = al_new(typenum, 3, B, Tv, Dv)) == NULL) goto fail;
    if (s != NULL && (ds = al_new(typenum, 1, U, 0, 0)) == NULL) goto fail;

#define ARGS(T_) AL_P(dq, T_), AL_P(dk, T_), AL_P(dv, T_), AL_P(ds, T_), AL_P(w, T_),          \
                 AL_P(dout, T_), AL_P(dw, T_), AL_P(q, T_), AL_P(k, T_), AL_P(v, T_),           \
                 AL_P(qm, uint8_t), AL_P(s, T_),                                                 \
                 (size_t)B, (size_t)Tq, (size_t)Tv, (size_t)U, (size_t)Dv
    Py_BEGIN_ALLOW_THREADS
    if (typenum == NPY_FLOAT32) status = al_additive_attention_backward_f32(ARGS(float));
    else status = al_additive_attention_backward_f64(ARGS(double));
    Py_END_ALLOW_THREADS
#undef ARGS
    if (status != AL_OK) {
        al_kernel_error(fn, status);
        goto fail;
    }
    Py_DECREF(dout); Py_XDECREF(dw); Py_DECREF(w); Py_DECREF(q); Py_DECREF(k); Py_DECREF(v);
    Py_XDECREF(s); Py_XDECREF(qm);
    if (ds == NULL) {
        Py_INCREF(Py_None);
        return Py_BuildValue("NNNN", dq, dk, dv, Py_None);
    }
    return Py_BuildValue("NNNN", dq, dk, dv, ds);

fail:
    Py_XDECREF(dout); Py_XDECREF(dw); Py_XDECREF(w); Py_XDECREF(q); Py_XDECREF(k);
    Py_XDECREF(v); Py_XDECREF(s); Py_XDECREF(qm);
    Py_XDECREF(dq); Py_XDECREF(dk); Py_XDECREF(dv); Py_XDECREF(ds);
    return NULL;
}

/* ---- Bahdanau with learned projections --------------------------------------------------- */

static const char BAHDANAU_FORWARD_DOC[] =
    "bahdanau_forward(query, values, W1, W2, V, b1=None, b2=None, keys=None,\n"
    "                 query_mask=None, value_mask=None, attention_mask=None, causal=False)\n"
    "    -> (out, weights, qp, kp)\n\n"
    "scores = sum_u V[u] tanh((values W1 + b1)[j,u] + (query W2 + b2)[i,u]).\n"
    "query (B,Tq,Dq), values (B,Tv,Dv), W1 (Dv,U), W2 (Dq,U), V (U,), b1/b2 (U,);\n"
    "keys (B,Tv,U) = values W1 + b1 precomputed (kp is then None). Returns out (B,Tq,Dv),\n"
    "weights (B,Tq,Tv), qp (B,Tq,U) and kp (B,Tv,U), saved for the backward.";

static PyObject *al_py_bahdanau_forward(PyObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"query", "values", "W1", "W2", "V", "b1", "b2", "keys",
                             "query_mask", "value_mask", "attention_mask", "causal", NULL};
    const char *fn = "bahdanau_forward";
    PyObject *q_obj, *x_obj, *W1_obj, *W2_obj, *V_obj;
    PyObject *b1_obj = Py_None, *b2_obj = Py_None, *keys_obj = Py_None;
    PyObject *qm_obj = Py_None, *vm_obj = Py_None, *am_obj = Py_None;
    int causal = 0, typenum, status = AL_OK, ok = 1;
    PyArrayObject *q = NULL, *x = NULL, *W1 = NULL, *W2 = NULL, *V = NULL, *b1 = NULL;
    PyArrayObject *b2 = NULL, *keys = NULL, *qm = NULL, *vm = NULL, *am = NULL;
    PyArrayObject *out = NULL, *weights = NULL, *qp = NULL, *kp = NULL;
    npy_intp B, Tq, Tv, Dq, Dv, U, nq, nk;
    (void)self;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOO|OOOOOOp:bahdanau_forward", kwlist,
                                     &q_obj, &x_obj, &W1_obj, &W2_obj, &V_obj, &b1_obj, &b2_obj,
                                     &keys_obj, &qm_obj, &vm_obj, &am_obj, &causal)) return NULL;
    if ((typenum = al_float_typenum(q_obj, fn, "query")) < 0) return NULL;
    if ((q = al_arr(q_obj, typenum, fn, "query", 3, AL_ANY, AL_ANY, AL_ANY, "(B, Tq, Dq)")) == NULL)
        goto fail;
    B = PyArray_DIM(q, 0); Tq = PyArray_DIM(q, 1); Dq = PyArray_DIM(q, 2);
    if ((x = al_arr(x_obj, typenum, fn, "values", 3, B, AL_ANY, AL_ANY, "(B, Tv, Dv)")) == NULL)
        goto fail;
    Tv = PyArray_DIM(x, 1); Dv = PyArray_DIM(x, 2);
    if ((V = al_arr(V_obj, typenum, fn, "V", 1, AL_ANY, 0, 0, "(U,)")) == NULL) goto fail;
    U = PyArray_DIM(V, 0);
    if ((W1 = al_arr(W1_obj, typenum, fn, "W1", 2, Dv, U, 0, "(Dv, U)")) == NULL) goto fail;
    if ((W2 = al_arr(W2_obj, typenum, fn, "W2", 2, Dq, U, 0, "(Dq, U)")) == NULL) goto fail;
    b1 = al_opt_arr(b1_obj, typenum, fn, "b1", 1, U, 0, 0, "(U,)", &ok);
    if (ok) b2 = al_opt_arr(b2_obj, typenum, fn, "b2", 1, U, 0, 0, "(U,)", &ok);
    if (ok) keys = al_opt_arr(keys_obj, typenum, fn, "keys", 3, B, Tv, U, "(B, Tv, U)", &ok);
    if (ok) qm = al_opt_mask(qm_obj, fn, "query_mask", 2, B, Tq, 0, "(B, Tq)", &ok);
    if (ok) vm = al_opt_mask(vm_obj, fn, "value_mask", 2, B, Tv, 0, "(B, Tv)", &ok);
    if (ok) am = al_opt_mask(am_obj, fn, "attention_mask", 3, B, Tq, Tv, "(B, Tq, Tv)", &ok);
    if (!ok) goto fail;
    if (al_mul_intp(fn, B, Tq, &nq) < 0 || al_mul_intp(fn, B, Tv, &nk) < 0) goto fail;
    if (al_attn_check_sizes(fn, Tq, Tv, Dq, Dv, U, nq, nk) < 0) goto fail;
    if ((out = al_new(typenum, 3, B, Tq, Dv)) == NULL) goto fail;
    if ((weights = al_new(typenum, 3, B, Tq, Tv)) == NULL) goto fail;
    if ((qp = al_new(typenum, 3, B, Tq, U)) == NULL) goto fail;
    if (keys == NULL && (kp = al_new(typenum, 3, B, Tv, U)) == NULL) goto fail;

#define ARGS(T_) AL_P(out, T_), AL_P(weights, T_), AL_P(qp, T_), AL_P(kp, T_), AL_P(q, T_),    \
                 AL_P(x, T_), AL_P(keys, T_), AL_P(qm, uint8_t), AL_P(vm, uint8_t),            \
                 AL_P(am, uint8_t), AL_P(W1, T_), AL_P(b1, T_), AL_P(W2, T_), AL_P(b2, T_),    \
                 AL_P(V, T_), (size_t)B, (size_t)Tq, (size_t)Tv, (size_t)Dq, (size_t)Dv,       \
                 (size_t)U, causal
    Py_BEGIN_ALLOW_THREADS
    if (typenum == NPY_FLOAT32) status = al_bahdanau_forward_f32(ARGS(float));
    else status = al_bahdanau_forward_f64(ARGS(double));
    Py_END_ALLOW_THREADS
#undef ARGS
    if (status != AL_OK) {
        al_kernel_error(fn, status);
        goto fail;
    }
    Py_DECREF(q); Py_DECREF(x); Py_DECREF(W1); Py_DECREF(W2); Py_DECREF(V);
    Py_XDECREF(b1); Py_XDECREF(b2); Py_XDECREF(keys);
    Py_XDECREF(qm); Py_XDECREF(vm); Py_XDECREF(am);
    if (kp == NULL) {
        Py_INCREF(Py_None);
        return Py_BuildValue("NNNN", out, weights, qp, Py_None);
    }
    return Py_BuildValue("NNNN", out, weights, qp, kp);

fail:
    Py_XDECREF(q); Py_XDECREF(x); Py_XDECREF(W1); Py_XDECREF(W2); Py_XDECREF(V);
    Py_XDECREF(b1); Py_XDECREF(b2); Py_XDECREF(keys);
    Py_XDECREF(qm); Py_XDECREF(vm); Py_XDECREF(am);
    Py_XDECREF(out); Py_XDECREF(weights); Py_XDECREF(qp); Py_XDECREF(kp);
    return NULL;
}

static const char BAHDANAU_BACKWARD_DOC[] =
    "bahdanau_backward(d_out, d_weights, weights, qp, kp, query, values, W1, W2, V,\n"
    "                  query_mask=None, with_b1=False, with_b2=False)\n"
    "    -> (d_query, d_values, d_W1, d_W2, d_V, d_b1, d_b2)\n\n"
    "Backward of bahdanau_forward; kp are the keys the forward used. d_b1/d_b2 are None\n"
    "unless with_b1/with_b2.";

static PyObject *al_py_bahdanau_backward(PyObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"d_out", "d_weights", "weights", "qp", "kp", "query", "values",
                             "W1", "W2", "V", "query_mask", "with_b1", "with_b2", NULL};
    const char *fn = "bahdanau_backward";
    PyObject *do_obj, *dw_obj, *w_obj, *qp_obj, *kp_obj, *q_obj, *x_obj, *W1_obj, *W2_obj;
    PyObject *V_obj, *qm_obj = Py_None;
    int with_b1 = 0, with_b2 = 0, typenum, status = AL_OK, ok = 1;
    PyArrayObject *dout = NULL, *dw = NULL, *w = NULL, *qp = NULL, *kp = NULL, *q = NULL;
    PyArrayObject *x = NULL, *W1 = NULL, *W2 = NULL, *V = NULL, *qm = NULL;
    PyArrayObject *dq = NULL, *dx = NULL, *dW1 = NULL, *dW2 = NULL, *dV = NULL;
    PyArrayObject *db1 = NULL, *db2 = NULL;
    PyObject *r1, *r2;
    npy_intp B, Tq, Tv, Dq, Dv, U, nq, nk;
    (void)self;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOOOOOO|Opp:bahdanau_backward", kwlist,
                                     &do_obj, &dw_obj, &w_obj, &qp_obj, &kp_obj, &q_obj, &x_obj,
                                     &W1_obj, &W2_obj, &V_obj, &qm_obj, &with_b1, &with_b2))
        return NULL;
    if ((typenum = al_float_typenum(q_obj, fn, "query")) < 0) return NULL;
    if ((q = al_arr(q_obj, typenum, fn, "query", 3, AL_ANY, AL_ANY, AL_ANY, "(B, Tq, Dq)")) == NULL)
        goto fail;
    B = PyArray_DIM(q, 0); Tq = PyArray_DIM(q, 1); Dq = PyArray_DIM(q, 2);
    if ((x = al_arr(x_obj, typenum, fn, "values", 3, B, AL_ANY, AL_ANY, "(B, Tv, Dv)")) == NULL)
        goto fail;
    Tv = PyArray_DIM(x, 1); Dv = PyArray_DIM(x, 2);
    if ((V = al_arr(V_obj, typenum, fn, "V", 1, AL_ANY, 0, 0, "(U,)")) == NULL) goto fail;
    U = PyArray_DIM(V, 0);
    if ((W1 = al_arr(W1_obj, typenum, fn, "W1", 2, Dv, U, 0, "(Dv, U)")) == NULL) goto fail;
    if ((W2 = al_arr(W2_obj, typenum, fn, "W2", 2, Dq, U, 0, "(Dq, U)")) == NULL) goto fail;
    if ((w = al_arr(w_obj, typenum, fn, "weights", 3, B, Tq, Tv, "(B, Tq, Tv)")) == NULL) goto fail;
    if ((qp = al_arr(qp_obj, typenum, fn, "qp", 3, B, Tq, U, "(B, Tq, U)")) == NULL) goto fail;
    if ((kp = al_arr(kp_obj, typenum, fn, "kp", 3, B, Tv, U, "(B, Tv, U)")) == NULL) goto fail;
    if ((dout = al_arr(do_obj, typenum, fn, "d_out", 3, B, Tq, Dv, "(B, Tq, Dv)")) == NULL)
        goto fail;
    dw = al_opt_arr(dw_obj, typenum, fn, "d_weights", 3, B, Tq, Tv, "(B, Tq, Tv)", &ok);
    if (ok) qm = al_opt_mask(qm_obj, fn, "query_mask", 2, B, Tq, 0, "(B, Tq)", &ok);
    if (!ok) goto fail;
    if (al_mul_intp(fn, B, Tq, &nq) < 0 || al_mul_intp(fn, B, Tv, &nk) < 0) goto fail;
    if (al_attn_check_sizes(fn, Tq, Tv, Dq, Dv, U, nq, nk) < 0) goto fail;
    if ((dq = al_new(typenum, 3, B, Tq, Dq)) == NULL) goto fail;
    if ((dx = al_new(typenum, 3, B, Tv, Dv)) == NULL) goto fail;
    if ((dW1 = al_new(typenum, 2, Dv, U, 0)) == NULL) goto fail;
    if ((dW2 = al_new(typenum, 2, Dq, U, 0)) == NULL) goto fail;
    if ((dV = al_new(typenum, 1, U, 0, 0)) == NULL) goto fail;
    if (with_b1 && (db1 = al_new(typenum, 1, U, 0, 0)) == NULL) goto fail;
    if (with_b2 && (db2 = al_new(typenum, 1, U, 0, 0)) == NULL) goto fail;

#define ARGS(T_) AL_P(dq, T_), AL_P(dx, T_), AL_P(dW1, T_), AL_P(db1, T_), AL_P(dW2, T_),     \
                 AL_P(db2, T_), AL_P(dV, T_), AL_P(w, T_), AL_P(qp, T_), AL_P(kp, T_),         \
                 AL_P(dout, T_), AL_P(dw, T_), AL_P(q, T_), AL_P(x, T_), AL_P(qm, uint8_t),    \
                 AL_P(W1, T_), AL_P(W2, T_), AL_P(V, T_),                                      \
                 (size_t)B, (size_t)Tq, (size_t)Tv, (size_t)Dq, (size_t)Dv, (size_t)U
    Py_BEGIN_ALLOW_THREADS
    if (typenum == NPY_FLOAT32) status = al_bahdanau_backward_f32(ARGS(float));
    else status = al_bahdanau_backward_f64(ARGS(double));
    Py_END_ALLOW_THREADS
#undef ARGS
    if (status != AL_OK) {
        al_kernel_error(fn, status);
        goto fail;
    }
    Py_DECREF(dout); Py_XDECREF(dw); Py_DECREF(w); Py_DECREF(qp); Py_DECREF(kp);
    Py_DECREF(q); Py_DECREF(x); Py_DECREF(W1); Py_DECREF(W2); Py_DECREF(V); Py_XDECREF(qm);
    r1 = db1 ? (PyObject *)db1 : (Py_INCREF(Py_None), Py_None);
    r2 = db2 ? (PyObject *)db2 : (Py_INCREF(Py_None), Py_None);
    return Py_BuildValue("NNNNNNN", dq, dx, dW1, dW2, dV, r1, r2);

fail:
    Py_XDECREF(dout); Py_XDECREF(dw); Py_XDECREF(w); Py_XDECREF(qp); Py_XDECREF(kp);
    Py_XDECREF(q); Py_XDECREF(x); Py_XDECREF(W1); Py_XDECREF(W2); Py_XDECREF(V);
    Py_XDECREF(qm); Py_XDECREF(dq); Py_XDECREF(dx); Py_XDECREF(dW1); Py_XDECREF(dW2);
    Py_XDECREF(dV); Py_XDECREF(db1); Py_XDECREF(db2);
    return NULL;
}

PyMethodDef al_attention_methods[] = {
    {"dot_attention_forward", (PyCFunction)(void (*)(void))al_py_dot_attention_forward,
     METH_VARARGS | METH_KEYWORDS, DOT_FORWARD_DOC},
    {"dot_attention_backward", (PyCFunction)(void (*)(void))al_py_dot_attention_backward,
     METH_VARARGS | METH_KEYWORDS, DOT_BACKWARD_DOC},
    {"additive_attention_forward", (PyCFunction)(void (*)(void))al_py_additive_attention_forward,
     METH_VARARGS | METH_KEYWORDS, ADD_FORWARD_DOC},
    {"additive_attention_backward",
     (PyCFunction)(void (*)(void))al_py_additive_attention_backward,
     METH_VARARGS | METH_KEYWORDS, ADD_BACKWARD_DOC},
    {"bahdanau_forward", (PyCFunction)(void (*)(void))al_py_bahdanau_forward,
     METH_VARARGS | METH_KEYWORDS, BAHDANAU_FORWARD_DOC},
    {"bahdanau_backward", (PyCFunction)(void (*)(void))al_py_bahdanau_backward,
     METH_VARARGS | METH_KEYWORDS, BAHDANAU_BACKWARD_DOC},
    {NULL, NULL, 0, NULL}
};
