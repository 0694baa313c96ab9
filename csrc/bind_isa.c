/*
 * bind_isa.c -- the kernel path at import (ATTNLSTM_ISA) and its report (isa_info), see
 * AL_ISA_* in al_common.h.
 */
#include "bind_common.h"

#include <stdlib.h>
#include <string.h>

static const char *const al_isa_names[] = {"generic", "avx2", "avx512"};

/* Why each path needs what it needs, for the messages. */
static const char *const al_isa_needs[] = {"nothing", "avx2 and fma", "avx512f"};

/* The requested path from ATTNLSTM_ISA: -1 unset or empty (the CPU's best), else AL_ISA_*;
 * -2 with an exception set for an unknown name or a path this CPU cannot run. */
static int al_isa_from_env(void) {
    const char *v = getenv("ATTNLSTM_ISA");
    char flags[160];
    int k;
    if (v == NULL || v[0] == 0) return -1;
    for (k = 0; k < 3; k++) {
        if (strcmp(v, al_isa_names[k]) == 0) break;
    }
    if (k == 3) {
        PyErr_Format(PyExc_RuntimeError,
                     "ATTNLSTM_ISA must be one of 'avx512', 'avx2', 'generic' (or unset: the "
                     "CPU's best), got '%s'.", v);
        return -2;
    }
    if (al_isa_select(k) < 0) {
        al_isa_cpu_flags(flags, sizeof flags);
        PyErr_Format(PyExc_RuntimeError,
                     "ATTNLSTM_ISA=%s: this CPU cannot run the %s kernels (they need %s); its "
                     "SIMD flags are: %s. The widest path it supports is '%s'.",
                     v, v, al_isa_needs[k], flags[0] ? flags : "(none of sse4_2 avx avx2 fma "
                     "avx512f)", al_isa_names[al_isa_cpu_best()]);
        return -2;
    }
    return k;
}

/* ATTNLSTM_AVX2_ROW_PANELS: 0 unset or empty (by vendor), 1 or 2; -2 with an exception set for
 * any other value. */
static int al_row_panels_from_env(void) {
    const char *v = getenv("ATTNLSTM_AVX2_ROW_PANELS");
    if (v == NULL || v[0] == 0) return 0;
    if (strcmp(v, "1") == 0 || strcmp(v, "2") == 0) return v[0] - '0';
    PyErr_Format(PyExc_RuntimeError,
                 "ATTNLSTM_AVX2_ROW_PANELS must be '1' or '2' (or unset: 2 on AMD CPUs, 1 on "
                 "others), got '%s'.", v);
    return -2;
}

static const char ISA_INFO_DOC[] =
    "isa_info() -> dict\n\n"
    "The kernel path chosen at import: {'isa': 'avx512'|'avx2'|'generic', 'cpu_best': the\n"
    "widest path the CPU supports, 'requested': ATTNLSTM_ISA's value or None, 'cpu_flags':\n"
    "the CPU's SIMD flags that matter (list of str), 'cpu_vendor': 'amd' or 'other',\n"
    "'avx2_row_panels': panels per k of the AVX2 path's one-row LSTM tile (1 or 2: 2 on AMD,\n"
    "1 on others; ATTNLSTM_AVX2_ROW_PANELS forces one; the same bits either way)}.";

static PyObject *al_py_isa_info(PyObject *self, PyObject *noargs) {
    const char *req = getenv("ATTNLSTM_ISA");
    char flags[160];
    PyObject *lst, *d;
    (void)self; (void)noargs;
    al_isa_cpu_flags(flags, sizeof flags);
    {
        PyObject *s = PyUnicode_FromString(flags);
        if (s == NULL) return NULL;
        lst = PyUnicode_Split(s, NULL, -1);
        Py_DECREF(s);
        if (lst == NULL) return NULL;
    }
    d = Py_BuildValue("{s:s,s:s,s:z,s:N,s:s,s:i}", "isa", al_isa_names[al_isa_level()],
                      "cpu_best", al_isa_names[al_isa_cpu_best()],
                      "requested", (req != NULL && req[0] != 0) ? req : NULL, "cpu_flags", lst,
                      "cpu_vendor", al_cpu_is_amd() ? "amd" : "other",
                      "avx2_row_panels", al_avx2_row_panels());
    return d;
}

/* OpenBLAS (scipy-openblas32) self-description. */
char *scipy_openblas_get_config(void);
char *scipy_openblas_get_corename(void);
int scipy_openblas_get_parallel(void);

static const char BLAS_INFO_DOC[] =
    "blas_info() -> dict\n\n"
    "The BLAS the kernels link against (OpenBLAS from scipy-openblas32): {'config': its build\n"
    "configuration, 'corename': the kernel set it chose for this CPU, 'threading': 'sequential',\n"
    "'pthreads' or 'openmp', 'num_threads': its thread count (attnlstm.set_num_threads)}.";

static PyObject *al_py_blas_info(PyObject *self, PyObject *noargs) {
    static const char *const par[] = {"sequential", "pthreads", "openmp"};
    const int p = scipy_openblas_get_parallel();
    const char *cfg = scipy_openblas_get_config(), *core = scipy_openblas_get_corename();
    (void)self; (void)noargs;
    return Py_BuildValue("{s:s,s:s,s:s,s:i}", "config", cfg ? cfg : "",
                         "corename", core ? core : "",
                         "threading", (p >= 0 && p <= 2) ? par[p] : "unknown",
                         "num_threads", scipy_openblas_get_num_threads());
}

static PyMethodDef al_isa_methods[] = {
    {"isa_info", al_py_isa_info, METH_NOARGS, ISA_INFO_DOC},
    {"blas_info", al_py_blas_info, METH_NOARGS, BLAS_INFO_DOC},
    {NULL, NULL, 0, NULL}
};

/* Called once by PyInit__core: applies ATTNLSTM_ISA and adds isa_info. 0, or -1 with an
 * exception set (the import then fails with it). */
int al_isa_module_init(PyObject *m) {
    const int k = al_isa_from_env();
    if (k == -2) return -1;
    {
        const int r = al_row_panels_from_env();
        if (r == -2) return -1;
        al_avx2_row_panels_select(r);   /* fixed now: al_avx2_row_panels is one load */
    }
    if (k == -1) al_isa_select(al_isa_cpu_best());   /* fixed now: al_isa_level is one load */
    return PyModule_AddFunctions(m, al_isa_methods);
}
