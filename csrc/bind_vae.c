/*
 * bind_vae.c -- CPython binding of the LSTM-VAE kernels (vae_impl.h): sampling (the
 * reparameterisation trick), the KL term and the masked reconstruction loss, forward and
 * backward. Legend: B batch, Z latent size, T timesteps, F features.
 */
#include "bind_common.h"
#include "al_vae.h"

#define AL_PTR(a, T_) ((a) ? (T_ *)PyArray_DATA(a) : NULL)
/* Element `off` of array `a` (NULL stays NULL). */
#define AL_AT(a, T_, off) ((a) ? (T_ *)PyArray_DATA(a) + (off) : NULL)

/* The (B, T, F) loss kernels run over chunks of about 2^22 elements of whole sequences, and
 * between chunks take the GIL back to check for signals, so Ctrl-C stops a long call. */
#define AL_VAE_CHUNK ((npy_intp)1 << 22)

static npy_intp al_vae_chunk_rows(npy_intp B, npy_intp T, npy_intp F) {
    npy_intp per_row = T * F;   /* fits: an array of B*T*F elements exists */
    npy_intp rows = per_row > 0 ? AL_VAE_CHUNK / per_row : B;
    return rows < 1 ? 1 : rows;
}

/* The three (B, Z) operands of a sampling kernel, converted and checked against the first;
 * 0, or -1 with an exception set (arrays already converted are left in `out` for the caller
 * to release). */
static int al_vae_three_bz(PyObject *const objs[3], const char *const names[3], const char *fn,
                           int *typenum, PyArrayObject *out[3]) {
    npy_intp any2[2] = {AL_ANY, AL_ANY};
    int k;
    if ((*typenum = al_float_typenum(objs[0], fn, names[0])) < 0) return -1;
    if ((out[0] = al_get_array(objs[0], *typenum, fn, names[0], 2, any2, "(B, Z)")) == NULL)
        return -1;
    for (k = 1; k < 3; k++) {
        npy_intp dims[2] = {PyArray_DIM(out[0], 0), PyArray_DIM(out[0], 1)};
        if ((out[k] = al_get_array(objs[k], *typenum, fn, names[k], 2, dims, "(B, Z)")) == NULL)
            return -1;
    }
    return 0;
}

/* Two new (B, Z) arrays like `like`; 0, or -1 with MemoryError set. */
static int al_vae_two_like(PyArrayObject *like, int typenum, PyArrayObject **a,
                           PyArrayObject **b) {
    if ((*a = (PyArrayObject *)PyArray_EMPTY(2, PyArray_DIMS(like), typenum, 0)) == NULL)
        return -1;
    if ((*b = (PyArrayObject *)PyArray_EMPTY(2, PyArray_DIMS(like), typenum, 0)) == NULL)
        return -1;
    return 0;
}

/* ---- sampling --------------------------------------------------------------------------- */

static const char SAMPLING_FORWARD_DOC[] =
    "sampling_forward(z_mean, z_log_var, eps) -> (z, std)\n\n"
    "The reparameterisation trick: std = exp(0.5 * z_log_var), z = z_mean + std * eps.\n"
    "All arrays (B, Z), one dtype (float32 or float64, z_mean's). std is saved for\n"
    "sampling_backward. Raises TypeError/ValueError on bad input.";

static PyObject *al_py_sampling_forward(PyObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"z_mean", "z_log_var", "eps", NULL};
    static const char *const names[3] = {"z_mean", "z_log_var", "eps"};
    const char *fn = "sampling_forward";
    PyObject *objs[3] = {NULL, NULL, NULL};
    PyArrayObject *in[3] = {NULL, NULL, NULL}, *z = NULL, *std = NULL;
    npy_intp B, Z;
    int typenum;
    (void)self;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO:sampling_forward", kwlist,
                                     &objs[0], &objs[1], &objs[2])) {
        return NULL;
    }
    if (al_vae_three_bz(objs, names, fn, &typenum, in) < 0) goto fail;
    if (al_vae_two_like(in[0], typenum, &z, &std) < 0) goto fail;
    B = PyArray_DIM(in[0], 0); Z = PyArray_DIM(in[0], 1);

    Py_BEGIN_ALLOW_THREADS
    if (typenum == NPY_FLOAT32) {
        al_sampling_forward_f32(AL_PTR(z, float), AL_PTR(std, float), AL_PTR(in[0], float),
                                AL_PTR(in[1], float), AL_PTR(in[2], float),
                                (size_t)B, (size_t)Z);
    } else {
        al_sampling_forward_f64(AL_PTR(z, double), AL_PTR(std, double), AL_PTR(in[0], double),
                                AL_PTR(in[1], double), AL_PTR(in[2], double),
                                (size_t)B, (size_t)Z);
    }
    Py_END_ALLOW_THREADS

    Py_DECREF(in[0]); Py_DECREF(in[1]); Py_DECREF(in[2]);
    return Py_BuildValue("NN", z, std);

fail:
    Py_XDECREF(in[0]); Py_XDECREF(in[1]); Py_XDECREF(in[2]);
    Py_XDECREF(z); Py_XDECREF(std);
    return NULL;
}

static const char SAMPLING_BACKWARD_DOC[] =
    "sampling_backward(d_z, std, eps) -> (d_z_mean, d_z_log_var)\n\n"
    "Gradients of sampling_forward: d_z_mean = d_z, d_z_log_var = d_z * eps * std * 0.5.\n"
    "All arrays (B, Z), one dtype (d_z's). Raises TypeError/ValueError on bad input.";

static PyObject *al_py_sampling_backward(PyObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"d_z", "std", "eps", NULL};
    static const char *const names[3] = {"d_z", "std", "eps"};
    const char *fn = "sampling_backward";
    PyObject *objs[3] = {NULL, NULL, NULL};
    PyArrayObject *in[3] = {NULL, NULL, NULL}, *dm = NULL, *dlv = NULL;
    npy_intp B, Z;
    int typenum;
    (void)self;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO:sampling_backward", kwlist,
                                     &objs[0], &objs[1], &objs[2])) {
        return NULL;
    }
    if (al_vae_three_bz(objs, names, fn, &typenum, in) < 0) goto fail;
    if (al_vae_two_like(in[0], typenum, &dm, &dlv) < 0) goto fail;
    B = PyArray_DIM(in[0], 0); Z = PyArray_DIM(in[0], 1);

    Py_BEGIN_ALLOW_THREADS
    if (typenum == NPY_FLOAT32) {
        al_sampling_backward_f32(AL_PTR(dm, float), AL_PTR(dlv, float), AL_PTR(in[0], float),
                                 AL_PTR(in[1], float), AL_PTR(in[2], float),
                                 (size_t)B, (size_t)Z);
    } else {
        al_sampling_backward_f64(AL_PTR(dm, double), AL_PTR(dlv, double),
                                 AL_PTR(in[0], double), AL_PTR(in[1], double),
                                 AL_PTR(in[2], double), (size_t)B, (size_t)Z);
    }
    Py_END_ALLOW_THREADS

    Py_DECREF(in[0]); Py_DECREF(in[1]); Py_DECREF(in[2]);
    return Py_BuildValue("NN", dm, dlv);

fail:
    Py_XDECREF(in[0]); Py_XDECREF(in[1]); Py_XDECREF(in[2]);
    Py_XDECREF(dm); Py_XDECREF(dlv);
    return NULL;
}

/* ---- KL divergence ---------------------------------------------------------------------- */

/* z_mean (B, Z) (sets the dtype) and z_log_var of the same shape; 0 or -1. */
static int al_vae_mean_logvar(PyObject *m_obj, PyObject *lv_obj, const char *fn, int *typenum,
                              PyArrayObject **m, PyArrayObject **lv) {
    npy_intp any2[2] = {AL_ANY, AL_ANY};
    npy_intp dims[2];
    if ((*typenum = al_float_typenum(m_obj, fn, "z_mean")) < 0) return -1;
    if ((*m = al_get_array(m_obj, *typenum, fn, "z_mean", 2, any2, "(B, Z)")) == NULL) return -1;
    dims[0] = PyArray_DIM(*m, 0);
    dims[1] = PyArray_DIM(*m, 1);
    if ((*lv = al_get_array(lv_obj, *typenum, fn, "z_log_var", 2, dims, "(B, Z)")) == NULL)
        return -1;
    return 0;
}

static const char KL_FORWARD_DOC[] =
    "kl_forward(z_mean, z_log_var) -> kl\n\n"
    "KL(N(z_mean, exp(z_log_var)) || N(0, I)) per sample, summed over the latent dims:\n"
    "kl (B,) = -0.5 * sum_z (1 + z_log_var - z_mean^2 - exp(z_log_var)) (evaluated without\n"
    "cancellation). z_mean and z_log_var (B, Z), one dtype. Z == 0 gives zeros.\n"
    "Raises TypeError/ValueError on bad input.";

static PyObject *al_py_kl_forward(PyObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"z_mean", "z_log_var", NULL};
    const char *fn = "kl_forward";
    PyObject *m_obj = NULL, *lv_obj = NULL;
    PyArrayObject *m = NULL, *lv = NULL, *kl = NULL;
    npy_intp B, Z;
    int typenum;
    (void)self;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO:kl_forward", kwlist, &m_obj, &lv_obj)) {
        return NULL;
    }
    if (al_vae_mean_logvar(m_obj, lv_obj, fn, &typenum, &m, &lv) < 0) goto fail;
    B = PyArray_DIM(m, 0); Z = PyArray_DIM(m, 1);
    if ((kl = (PyArrayObject *)PyArray_EMPTY(1, &B, typenum, 0)) == NULL) goto fail;

    Py_BEGIN_ALLOW_THREADS
    if (typenum == NPY_FLOAT32) {
        al_kl_forward_f32(AL_PTR(kl, float), AL_PTR(m, float), AL_PTR(lv, float),
                          (size_t)B, (size_t)Z);
    } else {
        al_kl_forward_f64(AL_PTR(kl, double), AL_PTR(m, double), AL_PTR(lv, double),
                          (size_t)B, (size_t)Z);
    }
    Py_END_ALLOW_THREADS

    Py_DECREF(m); Py_DECREF(lv);
    return (PyObject *)kl;

fail:
    Py_XDECREF(m); Py_XDECREF(lv); Py_XDECREF(kl);
    return NULL;
}

static const char KL_BACKWARD_DOC[] =
    "kl_backward(d_kl, z_mean, z_log_var) -> (d_z_mean, d_z_log_var)\n\n"
    "Gradients of kl_forward given d_kl (B,): d_z_mean = d_kl[:, None] * z_mean,\n"
    "d_z_log_var = d_kl[:, None] * 0.5 * (exp(z_log_var) - 1). z_mean and z_log_var (B, Z)\n"
    "set the dtype. Raises TypeError/ValueError on bad input.";

static PyObject *al_py_kl_backward(PyObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"d_kl", "z_mean", "z_log_var", NULL};
    const char *fn = "kl_backward";
    PyObject *g_obj = NULL, *m_obj = NULL, *lv_obj = NULL;
    PyArrayObject *g = NULL, *m = NULL, *lv = NULL, *dm = NULL, *dlv = NULL;
    npy_intp B, Z;
    int typenum;
    (void)self;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO:kl_backward", kwlist,
                                     &g_obj, &m_obj, &lv_obj)) {
        return NULL;
    }
    if (al_vae_mean_logvar(m_obj, lv_obj, fn, &typenum, &m, &lv) < 0) goto fail;
    B = PyArray_DIM(m, 0); Z = PyArray_DIM(m, 1);
    if ((g = al_get_array(g_obj, typenum, fn, "d_kl", 1, &B, "(B,)")) == NULL) goto fail;
    if (al_vae_two_like(m, typenum, &dm, &dlv) < 0) goto fail;

    Py_BEGIN_ALLOW_THREADS
    if (typenum == NPY_FLOAT32) {
        al_kl_backward_f32(AL_PTR(dm, float), AL_PTR(dlv, float), AL_PTR(g, float),
                           AL_PTR(m, float), AL_PTR(lv, float), (size_t)B, (size_t)Z);
    } else {
        al_kl_backward_f64(AL_PTR(dm, double), AL_PTR(dlv, double), AL_PTR(g, double),
                           AL_PTR(m, double), AL_PTR(lv, double), (size_t)B, (size_t)Z);
    }
    Py_END_ALLOW_THREADS

    Py_DECREF(g); Py_DECREF(m); Py_DECREF(lv);
    return Py_BuildValue("NN", dm, dlv);

fail:
    Py_XDECREF(g); Py_XDECREF(m); Py_XDECREF(lv); Py_XDECREF(dm); Py_XDECREF(dlv);
    return NULL;
}

/* ---- masked reconstruction loss --------------------------------------------------------- */

/* `kind` (default AL_RECON_SQUARED when kind_obj is NULL) into *kind; 0 or -1. */
static int al_vae_check_kind(const char *fn, PyObject *kind_obj, int *kind) {
    if (kind_obj == NULL) return 0;
    return al_int_arg(kind_obj, fn, "kind", AL_RECON_SQUARED, AL_RECON_COUNT - 1,
                      "0 (squared error) or 1 (absolute error)", kind);
}

/* x_hat (B, T, F) (sets the dtype), x of the same shape, mask (B, T) or None; 0 or -1. */
static int al_vae_recon_args(PyObject *xh_obj, PyObject *x_obj, PyObject *m_obj,
                             const char *fn, int *typenum, PyArrayObject **xh,
                             PyArrayObject **x, PyArrayObject **mask) {
    npy_intp any3[3] = {AL_ANY, AL_ANY, AL_ANY};
    npy_intp dims[3], dm[2];
    if ((*typenum = al_float_typenum(xh_obj, fn, "x_hat")) < 0) return -1;
    if ((*xh = al_get_array(xh_obj, *typenum, fn, "x_hat", 3, any3, "(B, T, F)")) == NULL)
        return -1;
    dims[0] = PyArray_DIM(*xh, 0);
    dims[1] = PyArray_DIM(*xh, 1);
    dims[2] = PyArray_DIM(*xh, 2);
    if ((*x = al_get_array(x_obj, *typenum, fn, "x", 3, dims, "(B, T, F)")) == NULL) return -1;
    dm[0] = dims[0];
    dm[1] = dims[1];
    if (m_obj != Py_None &&
        (*mask = al_get_mask(m_obj, fn, "mask", 2, dm, "(B, T)")) == NULL) return -1;
    return 0;
}

static const char RECON_FORWARD_DOC[] =
    "recon_forward(x_hat, x, mask=None, kind=0) -> loss\n\n"
    "Masked reconstruction loss per sequence, loss (B,): the sum over unmasked timesteps and\n"
    "all features of (x_hat - x)^2 (kind 0) or |x_hat - x| (kind 1). x_hat and x (B, T, F),\n"
    "one dtype (x_hat's); mask (B, T), nonzero = keep (masked steps are not read; a fully\n"
    "masked sequence gives 0). Raises TypeError/ValueError on bad input.";

static PyObject *al_py_recon_forward(PyObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"x_hat", "x", "mask", "kind", NULL};
    const char *fn = "recon_forward";
    PyObject *xh_obj = NULL, *x_obj = NULL, *m_obj = Py_None, *kind_obj = NULL;
    PyArrayObject *xh = NULL, *x = NULL, *mask = NULL, *loss = NULL;
    npy_intp B, T, F, b0, nb;
    int typenum, kind = AL_RECON_SQUARED, status = AL_OK;
    (void)self;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|OO:recon_forward", kwlist,
                                     &xh_obj, &x_obj, &m_obj, &kind_obj)) {
        return NULL;
    }
    if (al_vae_check_kind(fn, kind_obj, &kind) < 0) return NULL;
    if (al_vae_recon_args(xh_obj, x_obj, m_obj, fn, &typenum, &xh, &x, &mask) < 0) goto fail;
    B = PyArray_DIM(xh, 0); T = PyArray_DIM(xh, 1); F = PyArray_DIM(xh, 2);
    nb = al_vae_chunk_rows(B, T, F);
    if ((loss = (PyArrayObject *)PyArray_EMPTY(1, &B, typenum, 0)) == NULL) goto fail;

    for (b0 = 0; b0 < B; b0 += nb) {
        const npy_intp n = B - b0 < nb ? B - b0 : nb, o2 = b0 * T, o3 = b0 * T * F;
        if (b0 > 0 && PyErr_CheckSignals() < 0) goto fail;
        Py_BEGIN_ALLOW_THREADS
        if (typenum == NPY_FLOAT32) {
            status = al_recon_forward_f32(AL_AT(loss, float, b0), AL_AT(xh, float, o3),
                                          AL_AT(x, float, o3), AL_AT(mask, uint8_t, o2), kind,
                                          (size_t)n, (size_t)T, (size_t)F);
        } else {
            status = al_recon_forward_f64(AL_AT(loss, double, b0), AL_AT(xh, double, o3),
                                          AL_AT(x, double, o3), AL_AT(mask, uint8_t, o2), kind,
                                          (size_t)n, (size_t)T, (size_t)F);
        }
        Py_END_ALLOW_THREADS
        if (status != AL_OK) {
            al_kernel_error(fn, status);
            goto fail;
        }
    }

    Py_DECREF(xh); Py_DECREF(x); Py_XDECREF(mask);
    return (PyObject *)loss;

fail:
    Py_XDECREF(xh); Py_XDECREF(x); Py_XDECREF(mask); Py_XDECREF(loss);
    return NULL;
}

static const char RECON_BACKWARD_DOC[] =
    "recon_backward(d_loss, x_hat, x, mask=None, kind=0) -> d_x_hat\n\n"
    "Gradient of recon_forward with respect to x_hat (B, T, F) given d_loss (B,):\n"
    "d_loss[b] * 2 (x_hat - x) (kind 0) or d_loss[b] * sign(x_hat - x) (kind 1, 0 where equal);\n"
    "0 at masked steps. The gradient with respect to x is its negative.\n"
    "Raises TypeError/ValueError on bad input.";

static PyObject *al_py_recon_backward(PyObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"d_loss", "x_hat", "x", "mask", "kind", NULL};
    const char *fn = "recon_backward";
    PyObject *g_obj = NULL, *xh_obj = NULL, *x_obj = NULL, *m_obj = Py_None, *kind_obj = NULL;
    PyArrayObject *g = NULL, *xh = NULL, *x = NULL, *mask = NULL, *dxh = NULL;
    npy_intp B, T, F, b0, nb;
    int typenum, kind = AL_RECON_SQUARED, status = AL_OK;
    (void)self;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO|OO:recon_backward", kwlist,
                                     &g_obj, &xh_obj, &x_obj, &m_obj, &kind_obj)) {
        return NULL;
    }
    if (al_vae_check_kind(fn, kind_obj, &kind) < 0) return NULL;
    if (al_vae_recon_args(xh_obj, x_obj, m_obj, fn, &typenum, &xh, &x, &mask) < 0) goto fail;
    B = PyArray_DIM(xh, 0); T = PyArray_DIM(xh, 1); F = PyArray_DIM(xh, 2);
    nb = al_vae_chunk_rows(B, T, F);
    if ((g = al_get_array(g_obj, typenum, fn, "d_loss", 1, &B, "(B,)")) == NULL) goto fail;
    if ((dxh = (PyArrayObject *)PyArray_EMPTY(3, PyArray_DIMS(xh), typenum, 0)) == NULL)
        goto fail;

    for (b0 = 0; b0 < B; b0 += nb) {
        const npy_intp n = B - b0 < nb ? B - b0 : nb, o2 = b0 * T, o3 = b0 * T * F;
        if (b0 > 0 && PyErr_CheckSignals() < 0) goto fail;
        Py_BEGIN_ALLOW_THREADS
        if (typenum == NPY_FLOAT32) {
            status = al_recon_backward_f32(AL_AT(dxh, float, o3), AL_AT(g, float, b0),
                                           AL_AT(xh, float, o3), AL_AT(x, float, o3),
                                           AL_AT(mask, uint8_t, o2), kind,
                                           (size_t)n, (size_t)T, (size_t)F);
        } else {
            status = al_recon_backward_f64(AL_AT(dxh, double, o3), AL_AT(g, double, b0),
                                           AL_AT(xh, double, o3), AL_AT(x, double, o3),
                                           AL_AT(mask, uint8_t, o2), kind,
                                           (size_t)n, (size_t)T, (size_t)F);
        }
        Py_END_ALLOW_THREADS
        if (status != AL_OK) {
            al_kernel_error(fn, status);
            goto fail;
        }
    }

    Py_DECREF(g); Py_DECREF(xh); Py_DECREF(x); Py_XDECREF(mask);
    return (PyObject *)dxh;

fail:
    Py_XDECREF(g); Py_XDECREF(xh); Py_XDECREF(x); Py_XDECREF(mask); Py_XDECREF(dxh);
    return NULL;
}

/* ---- Gaussian negative log-likelihood ---------------------------------------------------- */

/* x_hat, x, mask as al_vae_recon_args, plus x_log_var of x_hat's shape; 0 or -1. */
static int al_vae_nll_args(PyObject *xh_obj, PyObject *lv_obj, PyObject *x_obj, PyObject *m_obj,
                           const char *fn, int *typenum, PyArrayObject **xh, PyArrayObject **lv,
                           PyArrayObject **x, PyArrayObject **mask) {
    if (al_vae_recon_args(xh_obj, x_obj, m_obj, fn, typenum, xh, x, mask) < 0) return -1;
    if ((*lv = al_get_array(lv_obj, *typenum, fn, "x_log_var", 3, PyArray_DIMS(*xh),
                            "(B, T, F)")) == NULL) return -1;
    return 0;
}

static const char GAUSSIAN_NLL_FORWARD_DOC[] =
    "gaussian_nll_forward(x_hat, x_log_var, x, mask=None) -> loss\n\n"
    "Masked Gaussian negative log-likelihood per sequence, loss (B,): the sum over unmasked\n"
    "timesteps and all features of 0.5 * (log(2 pi) + x_log_var + (x_hat - x)^2 *\n"
    "exp(-x_log_var)). x_hat, x_log_var, x (B, T, F), one dtype (x_hat's); mask (B, T),\n"
    "nonzero = keep. Raises TypeError/ValueError on bad input.";

static PyObject *al_py_gaussian_nll_forward(PyObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"x_hat", "x_log_var", "x", "mask", NULL};
    const char *fn = "gaussian_nll_forward";
    PyObject *xh_obj = NULL, *lv_obj = NULL, *x_obj = NULL, *m_obj = Py_None;
    PyArrayObject *xh = NULL, *lv = NULL, *x = NULL, *mask = NULL, *loss = NULL;
    npy_intp B, T, F, b0, nb;
    int typenum;
    (void)self;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO|O:gaussian_nll_forward", kwlist,
                                     &xh_obj, &lv_obj, &x_obj, &m_obj)) {
        return NULL;
    }
    if (al_vae_nll_args(xh_obj, lv_obj, x_obj, m_obj, fn, &typenum, &xh, &lv, &x, &mask) < 0)
        goto fail;
    B = PyArray_DIM(xh, 0); T = PyArray_DIM(xh, 1); F = PyArray_DIM(xh, 2);
    nb = al_vae_chunk_rows(B, T, F);
    if ((loss = (PyArrayObject *)PyArray_EMPTY(1, &B, typenum, 0)) == NULL) goto fail;

    for (b0 = 0; b0 < B; b0 += nb) {
        const npy_intp n = B - b0 < nb ? B - b0 : nb, o2 = b0 * T, o3 = b0 * T * F;
        if (b0 > 0 && PyErr_CheckSignals() < 0) goto fail;
        Py_BEGIN_ALLOW_THREADS
        if (typenum == NPY_FLOAT32) {
            al_gaussian_nll_forward_f32(AL_AT(loss, float, b0), AL_AT(xh, float, o3),
                                        AL_AT(lv, float, o3), AL_AT(x, float, o3),
                                        AL_AT(mask, uint8_t, o2), (size_t)n, (size_t)T,
                                        (size_t)F);
        } else {
            al_gaussian_nll_forward_f64(AL_AT(loss, double, b0), AL_AT(xh, double, o3),
                                        AL_AT(lv, double, o3), AL_AT(x, double, o3),
                                        AL_AT(mask, uint8_t, o2), (size_t)n, (size_t)T,
                                        (size_t)F);
        }
        Py_END_ALLOW_THREADS
    }

    Py_DECREF(xh); Py_DECREF(lv); Py_DECREF(x); Py_XDECREF(mask);
    return (PyObject *)loss;

fail:
    Py_XDECREF(xh); Py_XDECREF(lv); Py_XDECREF(x); Py_XDECREF(mask); Py_XDECREF(loss);
    return NULL;
}

static const char GAUSSIAN_NLL_BACKWARD_DOC[] =
    "gaussian_nll_backward(d_loss, x_hat, x_log_var, x, mask=None) -> (d_x_hat, d_x_log_var)\n\n"
    "Gradients of gaussian_nll_forward given d_loss (B,): with d = x_hat - x and\n"
    "p = exp(-x_log_var), d_x_hat = d_loss[b] * d * p and d_x_log_var = d_loss[b] * 0.5 *\n"
    "(1 - d^2 * p); 0 at masked steps. Raises TypeError/ValueError on bad input.";

static PyObject *al_py_gaussian_nll_backward(PyObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"d_loss", "x_hat", "x_log_var", "x", "mask", NULL};
    const char *fn = "gaussian_nll_backward";
    PyObject *g_obj = NULL, *xh_obj = NULL, *lv_obj = NULL, *x_obj = NULL, *m_obj = Py_None;
    PyArrayObject *g = NULL, *xh = NULL, *lv = NULL, *x = NULL, *mask = NULL;
    PyArrayObject *dxh = NULL, *dlv = NULL;
    npy_intp B, T, F, b0, nb;
    int typenum;
    (void)self;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOO|O:gaussian_nll_backward", kwlist,
                                     &g_obj, &xh_obj, &lv_obj, &x_obj, &m_obj)) {
        return NULL;
    }
    if (al_vae_nll_args(xh_obj, lv_obj, x_obj, m_obj, fn, &typenum, &xh, &lv, &x, &mask) < 0)
        goto fail;
    B = PyArray_DIM(xh, 0); T = PyArray_DIM(xh, 1); F = PyArray_DIM(xh, 2);
    nb = al_vae_chunk_rows(B, T, F);
    if ((g = al_get_array(g_obj, typenum, fn, "d_loss", 1, &B, "(B,)")) == NULL) goto fail;
    if ((dxh = (PyArrayObject *)PyArray_EMPTY(3, PyArray_DIMS(xh), typenum, 0)) == NULL)
        goto fail;
    if ((dlv = (PyArrayObject *)PyArray_EMPTY(3, PyArray_DIMS(xh), typenum, 0)) == NULL)
        goto fail;

    for (b0 = 0; b0 < B; b0 += nb) {
        const npy_intp n = B - b0 < nb ? B - b0 : nb, o2 = b0 * T, o3 = b0 * T * F;
        if (b0 > 0 && PyErr_CheckSignals() < 0) goto fail;
        Py_BEGIN_ALLOW_THREADS
        if (typenum == NPY_FLOAT32) {
            al_gaussian_nll_backward_f32(AL_AT(dxh, float, o3), AL_AT(dlv, float, o3),
                                         AL_AT(g, float, b0), AL_AT(xh, float, o3),
                                         AL_AT(lv, float, o3), AL_AT(x, float, o3),
                                         AL_AT(mask, uint8_t, o2), (size_t)n, (size_t)T,
                                         (size_t)F);
        } else {
            al_gaussian_nll_backward_f64(AL_AT(dxh, double, o3), AL_AT(dlv, double, o3),
                                         AL_AT(g, double, b0), AL_AT(xh, double, o3),
                                         AL_AT(lv, double, o3), AL_AT(x, double, o3),
                                         AL_AT(mask, uint8_t, o2), (size_t)n, (size_t)T,
                                         (size_t)F);
        }
        Py_END_ALLOW_THREADS
    }

    Py_DECREF(g); Py_DECREF(xh); Py_DECREF(lv); Py_DECREF(x); Py_XDECREF(mask);
    return Py_BuildValue("NN", dxh, dlv);

fail:
    Py_XDECREF(g); Py_XDECREF(xh); Py_XDECREF(lv); Py_XDECREF(x); Py_XDECREF(mask);
    Py_XDECREF(dxh); Py_XDECREF(dlv);
    return NULL;
}

#undef AL_PTR
#undef AL_AT

PyMethodDef al_vae_methods[] = {
    {"sampling_forward", (PyCFunction)(void (*)(void))al_py_sampling_forward,
     METH_VARARGS | METH_KEYWORDS, SAMPLING_FORWARD_DOC},
    {"sampling_backward", (PyCFunction)(void (*)(void))al_py_sampling_backward,
     METH_VARARGS | METH_KEYWORDS, SAMPLING_BACKWARD_DOC},
    {"kl_forward", (PyCFunction)(void (*)(void))al_py_kl_forward,
     METH_VARARGS | METH_KEYWORDS, KL_FORWARD_DOC},
    {"kl_backward", (PyCFunction)(void (*)(void))al_py_kl_backward,
     METH_VARARGS | METH_KEYWORDS, KL_BACKWARD_DOC},
    {"recon_forward", (PyCFunction)(void (*)(void))al_py_recon_forward,
     METH_VARARGS | METH_KEYWORDS, RECON_FORWARD_DOC},
    {"recon_backward", (PyCFunction)(void (*)(void))al_py_recon_backward,
     METH_VARARGS | METH_KEYWORDS, RECON_BACKWARD_DOC},
    {"gaussian_nll_forward", (PyCFunction)(void (*)(void))al_py_gaussian_nll_forward,
     METH_VARARGS | METH_KEYWORDS, GAUSSIAN_NLL_FORWARD_DOC},
    {"gaussian_nll_backward", (PyCFunction)(void (*)(void))al_py_gaussian_nll_backward,
     METH_VARARGS | METH_KEYWORDS, GAUSSIAN_NLL_BACKWARD_DOC},
    {NULL, NULL, 0, NULL}
};
