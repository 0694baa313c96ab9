/*
 * module.c -- the attnlstm._core extension module: joins the method tables of the binding
 * files. Keeps no global mutable state (the kernel path, ATTNLSTM_ISA, is fixed at import);
 * every kernel call is independent.
 */
#define AL_MODULE_MAIN
#include "bind_common.h"
#include "al_pool.h"

extern PyMethodDef al_vae_methods[];   /* bind_vae.c */
extern PyMethodDef al_gru_methods[];   /* bind_gru.c */
int al_isa_module_init(PyObject *m);   /* bind_isa.c: ATTNLSTM_ISA, isa_info */

static int al_count_methods(const PyMethodDef *table) {
    int n = 0;
    while (table[n].ml_name != NULL) n++;
    return n;
}

static struct PyModuleDef al_module = {
    PyModuleDef_HEAD_INIT, "_core",
    "attnlstm's C kernels (LSTM, attention) behind a checked NumPy interface.\n"
    "Use attnlstm.ops for the documented functional API.",
    -1, NULL, NULL, NULL, NULL, NULL
};

PyMODINIT_FUNC PyInit__core(void) {
    PyMethodDef *tables[] = {al_lstm_methods, al_attention_methods,
                            al_mha_methods, al_util_methods, al_vae_methods, al_gru_methods};
    PyObject *m = NULL, *name = NULL;
    PyObject *split;
    size_t k;
    int i;

    import_array();
    m = PyModule_Create(&al_module);
    if (m == NULL) return NULL;
    if ((name = PyModule_GetNameObject(m)) == NULL) {
        Py_DECREF(m);
        return NULL;
    }
    for (k = 0; k < sizeof tables / sizeof tables[0]; k++) {
        int n = al_count_methods(tables[k]);
        for (i = 0; i < n; i++) {
            PyObject *f = PyCFunction_NewEx(&tables[k][i], NULL, name);
            if (f == NULL || PyModule_AddObject(m, tables[k][i].ml_name, f) < 0) {
                Py_XDECREF(f);
                Py_DECREF(name);
                Py_DECREF(m);
                return NULL;
            }
        }
    }
    Py_DECREF(name);
    /* the kernel path, once, before any kernel can run */
    if (al_isa_module_init(m) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "ACT_LINEAR", AL_ACT_LINEAR) < 0 ||
        PyModule_AddIntConstant(m, "ACT_TANH", AL_ACT_TANH) < 0 ||
        PyModule_AddIntConstant(m, "ACT_SIGMOID", AL_ACT_SIGMOID) < 0 ||
        PyModule_AddIntConstant(m, "ACT_HARD_SIGMOID", AL_ACT_HARD_SIGMOID) < 0 ||
        PyModule_AddIntConstant(m, "ACT_RELU", AL_ACT_RELU) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    split = PyFloat_FromDouble(AL_SPLIT_FLOPS);
    if (split == NULL || PyModule_AddObjectRef(m, "SPLIT_FLOPS", split) < 0) {
        Py_XDECREF(split);
        Py_DECREF(m);
        return NULL;
    }
    Py_DECREF(split);
    return m;
}
