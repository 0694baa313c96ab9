/*
 * bind_mha.c -- CPython binding of the multi-head / relative-position attention kernels
 * (mha_impl.h): parse, convert, check every shape, allocate, release the GIL, return.
 */
#include "bind_common.h"

#include <string.h>
#include "al_mha.h"

static const char MHA_FORWARD_DOC[] =
    "mha_forward(query, key, value, query_kernel, query_bias, key_kernel, key_bias,\n"
    "            value_kernel, value_bias, output_kernel, output_bias, attention_mask=None,\n"
    "            query_mask=None, value_mask=None, key_mask=None, causal=False,\n"
    "            fully_masked=0, rel_k=None, rel_v=None, max_relative_position=0)\n"
    "    -> (out, weights, q, k, v, ctx, live)\n\n"
    "Low-level multi-head attention forward (Keras 3 MultiHeadAttention math, optional\n"
    "Shaw et al. 2018 relative positions), one C call for the whole batch.\n\n"
    "query (B,Tq,Dq), key (B,Tv,Dk), value (B,Tv,Dv); query_kernel (Dq,NH,HS), query_bias\n"
    "(NH,HS), key_kernel (Dk,NH,HS), key_bias (NH,HS), value_kernel (Dv,NH,HSv), value_bias\n"
    "(NH,HSv), output_kernel (NH,HSv,Dout), output_bias (Dout,); biases may be None.\n"
    "Masks (nonzero = attend): attention_mask (B,Tq,Tv) or (B,NH,Tq,Tv), query_mask (B,Tq),\n"
    "value_mask (B,Tv), key_mask (B,Tv). fully_masked: 0 = uniform weights (Keras fast path),\n"
    "1 = zero weights (Keras explicit path). rel_k (2K+1,HS), rel_v (2K+1,HSv) with\n"
    "K = max_relative_position. All float arrays share query's dtype (float32 or float64).\n"
    "Returns out (B,Tq,Dout), weights (B,NH,Tq,Tv), and the saved buffers q (B,Tq,NH,HS)\n"
    "(scaled by 1/sqrt(HS)), k (B,Tv,NH,HS), v (B,Tv,NH,HSv), ctx (B,Tq,NH,HSv), live\n"
    "(B,NH,Tq) bool. NaN/inf propagate. Raises TypeError/ValueError/MemoryError on bad input.";

static const char MHA_BACKWARD_DOC[] =
    "mha_backward(d_out, d_weights, weights, q, k, v, ctx, live, query, key, value,\n"
    "             query_kernel, key_kernel, value_kernel, output_kernel, rel_k=None,\n"
    "             rel_v=None, max_relative_position=0, query_bias=True, key_bias=True,\n"
    "             value_bias=True, output_bias=True)\n"
    "    -> (d_query, d_key, d_value, d_query_kernel, d_query_bias, d_key_kernel,\n"
    "        d_key_bias, d_value_kernel, d_value_bias, d_output_kernel, d_output_bias,\n"
    "        d_rel_k, d_rel_v)\n\n"
    "Gradients of mha_forward. d_out (B,Tq,Dout); d_weights (B,NH,Tq,Tv) or None; weights,\n"
    "q, k, v, ctx, live as returned by mha_forward; the other arrays as given to it. The\n"
    "*_bias flags say which bias gradients to compute (None for the others); d_rel_k/d_rel_v\n"
    "are None without rel_k/rel_v.";

/* The arrays that fix the dimensions, common to forward and backward. */
typedef struct {
    int typenum;
    npy_intp B, Tq, Tv, Dq, Dk, Dv, NH, HS, HSv, Dout, K, R;
    PyArrayObject *query, *key, *value, *Wq, *Wk, *Wv, *Wo, *rel_k, *rel_v;
} mha_core;

static void mha_core_clear(mha_core *c) {
    Py_XDECREF(c->query); Py_XDECREF(c->key); Py_XDECREF(c->value);
    Py_XDECREF(c->Wq); Py_XDECREF(c->Wk); Py_XDECREF(c->Wv); Py_XDECREF(c->Wo);
    Py_XDECREF(c->rel_k); Py_XDECREF(c->rel_v);
    c->query = c->key = c->value = c->Wq = c->Wk = c->Wv = c->Wo = c->rel_k = c->rel_v = NULL;
}

/* Converts and checks the inputs, kernels and relative embeddings; 0 or -1 with an exception. */
static int mha_core_get(mha_core *c, const char *fn, PyObject *q_obj, PyObject *k_obj,
                        PyObject *v_obj, PyObject *Wq_obj, PyObject *Wk_obj, PyObject *Wv_obj,
                        PyObject *Wo_obj, PyObject *rk_obj, PyObject *rv_obj, Py_ssize_t K) {
    const npy_intp any3[3] = {AL_ANY, AL_ANY, AL_ANY};
    npy_intp d[3], prod;
    int t;
    if ((t = al_float_typenum(q_obj, fn, "query")) < 0) return -1;
    c->typenum = t;
    if ((c->query = al_get_array(q_obj, t, fn, "query", 3, any3, "(B, Tq, Dq)")) == NULL) return -1;
    c->B = PyArray_DIM(c->query, 0); c->Tq = PyArray_DIM(c->query, 1);
    c->Dq = PyArray_DIM(c->query, 2);
    d[0] = c->B; d[1] = AL_ANY; d[2] = AL_ANY;
    if ((c->value = al_get_array(v_obj, t, fn, "value", 3, d, "(B, Tv, Dv)")) == NULL) return -1;
    c->Tv = PyArray_DIM(c->value, 1); c->Dv = PyArray_DIM(c->value, 2);
    d[1] = c->Tv;
    if ((c->key = al_get_array(k_obj, t, fn, "key", 3, d, "(B, Tv, Dk)")) == NULL) return -1;
    c->Dk = PyArray_DIM(c->key, 2);

    d[0] = c->Dq; d[1] = AL_ANY; d[2] = AL_ANY;
    if ((c->Wq = al_get_array(Wq_obj, t, fn, "query_kernel", 3, d, "(Dq, NH, HS)")) == NULL)
        return -1;
    c->NH = PyArray_DIM(c->Wq, 1); c->HS = PyArray_DIM(c->Wq, 2);
    if (c->NH < 1 || c->HS < 1) {
        PyErr_Format(PyExc_ValueError, "%s: `query_kernel` must have NH >= 1 heads and head size "
                     "HS >= 1, got shape (%lld, %lld, %lld).", fn, (long long)c->Dq,
                     (long long)c->NH, (long long)c->HS);
        return -1;
    }
    d[0] = c->Dk; d[1] = c->NH; d[2] = c->HS;
    if ((c->Wk = al_get_array(Wk_obj, t, fn, "key_kernel", 3, d, "(Dk, NH, HS)")) == NULL)
        return -1;
    d[0] = c->Dv; d[2] = AL_ANY;
    if ((c->Wv = al_get_array(Wv_obj, t, fn, "value_kernel", 3, d, "(Dv, NH, HSv)")) == NULL)
        return -1;
    c->HSv = PyArray_DIM(c->Wv, 2);
    d[0] = c->NH; d[1] = c->HSv; d[2] = AL_ANY;
    if ((c->Wo = al_get_array(Wo_obj, t, fn, "output_kernel", 3, d, "(NH, HSv, Dout)")) == NULL)
        return -1;
    c->Dout = PyArray_DIM(c->Wo, 2);

    if (K < 0 || K > (Py_ssize_t)(AL_BLAS_INT_MAX / 2 - 1)) {
        PyErr_Format(PyExc_ValueError, "%s: `max_relative_position` must be in [0, %lld], got %zd.",
                     fn, (long long)(AL_BLAS_INT_MAX / 2 - 1), K);
        return -1;
    }
    c->K = (npy_intp)K;
    c->R = 2 * c->K + 1;
    d[0] = c->R; d[1] = c->HS;
    if (rk_obj != Py_None &&
        (c->rel_k = al_get_array(rk_obj, t, fn, "rel_k", 2, d, "(2K+1, HS)")) == NULL) return -1;
    d[1] = c->HSv;
    if (rv_obj != Py_None &&
        (c->rel_v = al_get_array(rv_obj, t, fn, "rel_v", 2, d, "(2K+1, HSv)")) == NULL) return -1;

    /* Every size the BLAS sees must fit its 32-bit int; every buffer size must fit npy_intp. */
    if (al_mul_intp(fn, c->B, c->Tq, &prod) < 0 || al_check_blas_int(fn, "B*Tq", prod) < 0) return -1;
    if (al_mul_intp(fn, prod, c->NH, &prod) < 0 || al_check_blas_int(fn, "B*Tq*NH", prod) < 0 ||
        al_mul_intp(fn, prod, c->R, &prod) < 0) return -1;
    if (al_mul_intp(fn, c->B, c->Tv, &prod) < 0 || al_check_blas_int(fn, "B*Tv", prod) < 0) return -1;
    if (al_mul_intp(fn, c->NH, c->HS, &prod) < 0 || al_check_blas_int(fn, "NH*HS", prod) < 0) return -1;
    if (al_mul_intp(fn, c->NH, c->HSv, &prod) < 0 || al_check_blas_int(fn, "NH*HSv", prod) < 0) return -1;
    if (al_mul_intp(fn, c->Tq, c->Tv, &prod) < 0 || al_check_blas_int(fn, "Tq*Tv", prod) < 0) return -1;
    if (al_mul_intp(fn, prod, c->B, &prod) < 0 || al_mul_intp(fn, prod, c->NH, &prod) < 0) return -1;
    if (al_check_blas_int(fn, "Dq", c->Dq) < 0 || al_check_blas_int(fn, "Dk", c->Dk) < 0 ||
        al_check_blas_int(fn, "Dv", c->Dv) < 0 || al_check_blas_int(fn, "Dout", c->Dout) < 0)
        return -1;
    {
        npy_intp w;  /* (B*Tq + 2*B*Tv) * NH * max(HS, HSv): the projected buffers */
        npy_intp hmax = c->HS > c->HSv ? c->HS : c->HSv;
        if (al_mul_intp(fn, c->B, c->Tq > c->Tv ? c->Tq : c->Tv, &w) < 0 ||
            al_mul_intp(fn, w, c->NH, &w) < 0 || al_mul_intp(fn, w, hmax, &w) < 0 ||
            al_mul_intp(fn, w, 3, &w) < 0) return -1;
    }
    return 0;
}

/* A 3-D or 4-D attention mask: (B,Tq,Tv) or (B,NH,Tq,Tv). Sets *per_head. */
static PyArrayObject *mha_get_attention_mask(PyObject *obj, const char *fn, const mha_core *c,
                                             int *per_head) {
    PyArrayObject *tmp = (PyArrayObject *)PyArray_FROM_OTF(
        obj, NPY_BOOL, NPY_ARRAY_IN_ARRAY | NPY_ARRAY_FORCECAST);
    PyArrayObject *res;
    if (tmp == NULL) return NULL;
    if (PyArray_NDIM(tmp) == 4) {
        npy_intp d4[4] = {c->B, c->NH, c->Tq, c->Tv};
        *per_head = 1;
        res = al_get_mask((PyObject *)tmp, fn, "attention_mask", 4, d4, "(B, NH, Tq, Tv)");
    } else {
        npy_intp d3[3] = {c->B, c->Tq, c->Tv};
        *per_head = 0;
        res = al_get_mask((PyObject *)tmp, fn, "attention_mask", 3, d3, "(B, Tq, Tv)");
    }
    Py_DECREF(tmp);
    return res;
}

#define AL_PTR(a, T_) ((a) ? (T_ *)PyArray_DATA(a) : NULL)

static PyObject *al_py_mha_forward(PyObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"query", "key", "value", "query_kernel", "query_bias",
                             "key_kernel", "key_bias", "value_kernel", "value_bias",
                             "output_kernel", "output_bias", "attention_mask", "query_mask",
                             "value_mask", "key_mask", "causal", "fully_masked", "rel_k",
                             "rel_v", "max_relative_position", NULL};
    const char *fn = "mha_forward";
    PyObject *q_obj, *k_obj, *v_obj, *Wq_obj, *bq_obj, *Wk_obj, *bk_obj, *Wv_obj, *bv_obj;
    PyObject *Wo_obj, *bo_obj;
    PyObject *am_obj = Py_None, *qm_obj = Py_None, *vm_obj = Py_None, *km_obj = Py_None;
    PyObject *rk_obj = Py_None, *rv_obj = Py_None;
    int causal = 0, fully_masked = AL_MHA_FULLY_MASKED_UNIFORM, per_head = 0, status = AL_OK;
    Py_ssize_t K = 0;
    mha_core c = {0};
    PyArrayObject *bq = NULL, *bk = NULL, *bv = NULL, *bo = NULL;
    PyArrayObject *am = NULL, *qm = NULL, *vm = NULL, *km = NULL;
    PyArrayObject *out = NULL, *weights = NULL, *qs = NULL, *kp = NULL, *vp = NULL, *ctx = NULL;
    PyArrayObject *live = NULL;
    (void)self;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOOOOOOO|OOOOpiOOn:mha_forward", kwlist,
                                     &q_obj, &k_obj, &v_obj, &Wq_obj, &bq_obj, &Wk_obj, &bk_obj,
                                     &Wv_obj, &bv_obj, &Wo_obj, &bo_obj, &am_obj, &qm_obj,
                                     &vm_obj, &km_obj, &causal, &fully_masked, &rk_obj, &rv_obj,
                                     &K)) {
        return NULL;
    }
    if (fully_masked != AL_MHA_FULLY_MASKED_UNIFORM && fully_masked != AL_MHA_FULLY_MASKED_ZERO) {
        PyErr_Format(PyExc_ValueError, "%s: `fully_masked` must be 0 (uniform) or 1 (zero), got %d.",
                     fn, fully_masked);
        return NULL;
    }
    if (mha_core_get(&c, fn, q_obj, k_obj, v_obj, Wq_obj, Wk_obj, Wv_obj, Wo_obj, rk_obj, rv_obj,
                     K) < 0) goto fail;
    {
        npy_intp dq[2] = {c.NH, c.HS}, dv[2] = {c.NH, c.HSv}, dout[1] = {c.Dout};
        int t = c.typenum;
        if (bq_obj != Py_None &&
            (bq = al_get_array(bq_obj, t, fn, "query_bias", 2, dq, "(NH, HS)")) == NULL) goto fail;
        if (bk_obj != Py_None &&
            (bk = al_get_array(bk_obj, t, fn, "key_bias", 2, dq, "(NH, HS)")) == NULL) goto fail;
        if (bv_obj != Py_None &&
            (bv = al_get_array(bv_obj, t, fn, "value_bias", 2, dv, "(NH, HSv)")) == NULL) goto fail;
        if (bo_obj != Py_None &&
            (bo = al_get_array(bo_obj, t, fn, "output_bias", 1, dout, "(Dout,)")) == NULL) goto fail;
    }
    {
        npy_intp dqm[2] = {c.B, c.Tq}, dvm[2] = {c.B, c.Tv};
        if (am_obj != Py_None && (am = mha_get_attention_mask(am_obj, fn, &c, &per_head)) == NULL)
            goto fail;
        if (qm_obj != Py_None &&
            (qm = al_get_mask(qm_obj, fn, "query_mask", 2, dqm, "(B, Tq)")) == NULL) goto fail;
        if (vm_obj != Py_None &&
            (vm = al_get_mask(vm_obj, fn, "value_mask", 2, dvm, "(B, Tv)")) == NULL) goto fail;
        if (km_obj != Py_None &&
            (km = al_get_mask(km_obj, fn, "key_mask", 2, dvm, "(B, Tv)")) == NULL) goto fail;
    }
    {
        npy_intp dout[3] = {c.B, c.Tq, c.Dout}, dw[4] = {c.B, c.NH, c.Tq, c.Tv};
        npy_intp dqs[4] = {c.B, c.Tq, c.NH, c.HS}, dkp[4] = {c.B, c.Tv, c.NH, c.HS};
        npy_intp dvp[4] = {c.B, c.Tv, c.NH, c.HSv}, dctx[4] = {c.B, c.Tq, c.NH, c.HSv};
        npy_intp dlive[3] = {c.B, c.NH, c.Tq};
        int t = c.typenum;
        if ((out = (PyArrayObject *)PyArray_EMPTY(3, dout, t, 0)) == NULL ||
            (weights = (PyArrayObject *)PyArray_EMPTY(4, dw, t, 0)) == NULL ||
            (qs = (PyArrayObject *)PyArray_EMPTY(4, dqs, t, 0)) == NULL ||
            (kp = (PyArrayObject *)PyArray_EMPTY(4, dkp, t, 0)) == NULL ||
            (vp = (PyArrayObject *)PyArray_EMPTY(4, dvp, t, 0)) == NULL ||
            (ctx = (PyArrayObject *)PyArray_EMPTY(4, dctx, t, 0)) == NULL ||
            (live = (PyArrayObject *)PyArray_EMPTY(3, dlive, NPY_BOOL, 0)) == NULL) goto fail;
    }

#define AL_MHA_FWD(sfx, T_)                                                                      \
    status = al_mha_forward_##sfx(                                                              \
        AL_PTR(out, T_), AL_PTR(weights, T_), AL_PTR(qs, T_), AL_PTR(kp, T_), AL_PTR(vp, T_),   \
        AL_PTR(ctx, T_), AL_PTR(live, uint8_t),                                                 \
        AL_PTR(c.query, T_), AL_PTR(c.key, T_), AL_PTR(c.value, T_),                            \
        AL_PTR(am, uint8_t), AL_PTR(qm, uint8_t), AL_PTR(vm, uint8_t), AL_PTR(km, uint8_t),     \
        AL_PTR(c.Wq, T_), AL_PTR(bq, T_), AL_PTR(c.Wk, T_), AL_PTR(bk, T_),                     \
        AL_PTR(c.Wv, T_), AL_PTR(bv, T_), AL_PTR(c.Wo, T_), AL_PTR(bo, T_),                     \
        AL_PTR(c.rel_k, T_), AL_PTR(c.rel_v, T_),                                               \
        (size_t)c.B, (size_t)c.Tq, (size_t)c.Tv, (size_t)c.Dq, (size_t)c.Dk, (size_t)c.Dv,      \
        (size_t)c.NH, (size_t)c.HS, (size_t)c.HSv, (size_t)c.Dout, (size_t)c.K,                 \
        per_head, causal, fully_masked)
    /* Tq = Tv = 0: every output is empty; the kernel would loop over B (up to 2**62) doing
     * nothing, with the GIL released (issue #22). */
    if (c.Tq != 0 || c.Tv != 0) {
        Py_BEGIN_ALLOW_THREADS
        if (c.typenum == NPY_FLOAT32) {
            AL_MHA_FWD(f32, float);
        } else {
            AL_MHA_FWD(f64, double);
        }
        Py_END_ALLOW_THREADS
    }
#undef AL_MHA_FWD
    if (status != AL_OK) {
        al_kernel_error(fn, status);
        goto fail;
    }
    mha_core_clear(&c);
    Py_XDECREF(bq); Py_XDECREF(bk); Py_XDECREF(bv); Py_XDECREF(bo);
    Py_XDECREF(am); Py_XDECREF(qm); Py_XDECREF(vm); Py_XDECREF(km);
    return Py_BuildValue("NNNNNNN", out, weights, qs, kp, vp, ctx, live);

fail:
    mha_core_clear(&c);
    Py_XDECREF(bq); Py_XDECREF(bk); Py_XDECREF(bv); Py_XDECREF(bo);
    Py_XDECREF(am); Py_XDECREF(qm); Py_XDECREF(vm); Py_XDECREF(km);
    Py_XDECREF(out); Py_XDECREF(weights); Py_XDECREF(qs); Py_XDECREF(kp); Py_XDECREF(vp);
    Py_XDECREF(ctx); Py_XDECREF(live);
    return NULL;
}

static PyObject *al_py_mha_backward(PyObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"d_out", "d_weights", "weights", "q", "k", "v", "ctx", "live",
                             "query", "key", "value", "query_kernel", "key_kernel",
                             "value_kernel", "output_kernel", "rel_k", "rel_v",
                             "max_relative_position", "query_bias", "key_bias", "value_bias",
                             "output_bias", NULL};
    const char *fn = "mha_backward";
    PyObject *dout_obj, *dw_obj, *w_obj, *qs_obj, *kp_obj, *vp_obj, *ctx_obj, *live_obj;
    PyObject *q_obj, *k_obj, *v_obj, *Wq_obj, *Wk_obj, *Wv_obj, *Wo_obj;
    PyObject *rk_obj = Py_None, *rv_obj = Py_None;
    Py_ssize_t K = 0;
    int has_bq = 1, has_bk = 1, has_bv = 1, has_bo = 1, status = AL_OK;
    mha_core c = {0};
    PyArrayObject *dout = NULL, *dw = NULL, *w = NULL, *qs = NULL, *kp = NULL, *vp = NULL;
    PyArrayObject *ctx = NULL, *live = NULL;
    /* gradients, in the returned order */
    PyArrayObject *g[13] = {NULL};
    PyObject *res = NULL;
    int k;
    (void)self;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOOOOOOOOOOO|OOnpppp:mha_backward", kwlist,
                                     &dout_obj, &dw_obj, &w_obj, &qs_obj, &kp_obj, &vp_obj,
                                     &ctx_obj, &live_obj, &q_obj, &k_obj, &v_obj, &Wq_obj,
                                     &Wk_obj, &Wv_obj, &Wo_obj, &rk_obj, &rv_obj, &K, &has_bq,
                                     &has_bk, &has_bv, &has_bo)) {
        return NULL;
    }
    if (mha_core_get(&c, fn, q_obj, k_obj, v_obj, Wq_obj, Wk_obj, Wv_obj, Wo_obj, rk_obj, rv_obj,
                     K) < 0) goto fail;
    {
        int t = c.typenum;
        npy_intp dd[3] = {c.B, c.Tq, c.Dout}, dws[4] = {c.B, c.NH, c.Tq, c.Tv};
        npy_intp dqs[4] = {c.B, c.Tq, c.NH, c.HS}, dkp[4] = {c.B, c.Tv, c.NH, c.HS};
        npy_intp dvp[4] = {c.B, c.Tv, c.NH, c.HSv}, dctx[4] = {c.B, c.Tq, c.NH, c.HSv};
        npy_intp dlive[3] = {c.B, c.NH, c.Tq};
        if ((dout = al_get_array(dout_obj, t, fn, "d_out", 3, dd, "(B, Tq, Dout)")) == NULL ||
            (dw_obj != Py_None &&
             (dw = al_get_array(dw_obj, t, fn, "d_weights", 4, dws, "(B, NH, Tq, Tv)")) == NULL) ||
            (w = al_get_array(w_obj, t, fn, "weights", 4, dws, "(B, NH, Tq, Tv)")) == NULL ||
            (qs = al_get_array(qs_obj, t, fn, "q", 4, dqs, "(B, Tq, NH, HS)")) == NULL ||
            (kp = al_get_array(kp_obj, t, fn, "k", 4, dkp, "(B, Tv, NH, HS)")) == NULL ||
            (vp = al_get_array(vp_obj, t, fn, "v", 4, dvp, "(B, Tv, NH, HSv)")) == NULL ||
            (ctx = al_get_array(ctx_obj, t, fn, "ctx", 4, dctx, "(B, Tq, NH, HSv)")) == NULL ||
            (live = al_get_mask(live_obj, fn, "live", 3, dlive, "(B, NH, Tq)")) == NULL) goto fail;
    }
    {
        int t = c.typenum;
        npy_intp s_q[3] = {c.B, c.Tq, c.Dq}, s_k[3] = {c.B, c.Tv, c.Dk}, s_v[3] = {c.B, c.Tv, c.Dv};
        npy_intp s_Wq[3] = {c.Dq, c.NH, c.HS}, s_Wk[3] = {c.Dk, c.NH, c.HS};
        npy_intp s_Wv[3] = {c.Dv, c.NH, c.HSv}, s_Wo[3] = {c.NH, c.HSv, c.Dout};
        npy_intp s_bq[2] = {c.NH, c.HS}, s_bv[2] = {c.NH, c.HSv}, s_bo[1] = {c.Dout};
        npy_intp s_rk[2] = {c.R, c.HS}, s_rv[2] = {c.R, c.HSv};
#define AL_NEW(idx, nd, dims) \
        if ((g[idx] = (PyArrayObject *)PyArray_EMPTY(nd, dims, t, 0)) == NULL) goto fail
        AL_NEW(0, 3, s_q); AL_NEW(1, 3, s_k); AL_NEW(2, 3, s_v);
        AL_NEW(3, 3, s_Wq); if (has_bq) { AL_NEW(4, 2, s_bq); }
        AL_NEW(5, 3, s_Wk); if (has_bk) { AL_NEW(6, 2, s_bq); }
        AL_NEW(7, 3, s_Wv); if (has_bv) { AL_NEW(8, 2, s_bv); }
        AL_NEW(9, 3, s_Wo); if (has_bo) { AL_NEW(10, 1, s_bo); }
        if (c.rel_k != NULL) { AL_NEW(11, 2, s_rk); }
        if (c.rel_v != NULL) { AL_NEW(12, 2, s_rv); }
#undef AL_NEW
    }

#define AL_MHA_BWD(sfx, T_)                                                                      \
    status = al_mha_backward_##sfx(                                                             \
        AL_PTR(g[0], T_), AL_PTR(g[1], T_), AL_PTR(g[2], T_), AL_PTR(g[3], T_), AL_PTR(g[4], T_), \
        AL_PTR(g[5], T_), AL_PTR(g[6], T_), AL_PTR(g[7], T_), AL_PTR(g[8], T_), AL_PTR(g[9], T_), \
        AL_PTR(g[10], T_), AL_PTR(g[11], T_), AL_PTR(g[12], T_),                                \
        AL_PTR(w, T_), AL_PTR(qs, T_), AL_PTR(kp, T_), AL_PTR(vp, T_), AL_PTR(ctx, T_),         \
        AL_PTR(live, uint8_t), AL_PTR(dout, T_), AL_PTR(dw, T_),                                \
        AL_PTR(c.query, T_), AL_PTR(c.key, T_), AL_PTR(c.value, T_),                            \
        AL_PTR(c.Wq, T_), AL_PTR(c.Wk, T_), AL_PTR(c.Wv, T_), AL_PTR(c.Wo, T_),                 \
        AL_PTR(c.rel_k, T_), AL_PTR(c.rel_v, T_),                                               \
        (size_t)c.B, (size_t)c.Tq, (size_t)c.Tv, (size_t)c.Dq, (size_t)c.Dk, (size_t)c.Dv,      \
        (size_t)c.NH, (size_t)c.HS, (size_t)c.HSv, (size_t)c.Dout, (size_t)c.K)
    if (c.Tq == 0 && c.Tv == 0) {   /* no step: zero weight gradients, no loop over B */
        int k;
        for (k = 0; k < 13; k++) {
            if (g[k] != NULL) memset(PyArray_DATA(g[k]), 0, (size_t)PyArray_NBYTES(g[k]));
        }
    } else {
        Py_BEGIN_ALLOW_THREADS
        if (c.typenum == NPY_FLOAT32) {
            AL_MHA_BWD(f32, float);
        } else {
            AL_MHA_BWD(f64, double);
        }
        Py_END_ALLOW_THREADS
    }
#undef AL_MHA_BWD
    if (status != AL_OK) {
        al_kernel_error(fn, status);
        goto fail;
    }
    if ((res = PyTuple_New(13)) == NULL) goto fail;
    for (k = 0; k < 13; k++) {
        PyObject *item = g[k] ? (PyObject *)g[k] : Py_None;
        if (g[k] == NULL) Py_INCREF(Py_None);
        g[k] = NULL;
        PyTuple_SET_ITEM(res, k, item);
    }
    /* fall through to release the inputs */
fail:
    mha_core_clear(&c);
    Py_XDECREF(dout); Py_XDECREF(dw); Py_XDECREF(w); Py_XDECREF(qs); Py_XDECREF(kp);
    Py_XDECREF(vp); Py_XDECREF(ctx); Py_XDECREF(live);
    for (k = 0; k < 13; k++) Py_XDECREF(g[k]);
    return res;
}

#undef AL_PTR

PyMethodDef al_mha_methods[] = {
    {"mha_forward", (PyCFunction)(void (*)(void))al_py_mha_forward,
     METH_VARARGS | METH_KEYWORDS, MHA_FORWARD_DOC},
    {"mha_backward", (PyCFunction)(void (*)(void))al_py_mha_backward,
     METH_VARARGS | METH_KEYWORDS, MHA_BACKWARD_DOC},
    {NULL, NULL, 0, NULL}
};
