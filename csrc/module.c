/*
 * module.c -- the attnlstm._core extension module: the kernels each binding file declares
 * (bind_spec.h), the utilities and the activation codes. Keeps no global mutable state: the
 * kernels' specs are parsed and the kernel path (ATTNLSTM_ISA) is fixed once, at import;
 * every kernel call is independent.
 */
#define AL_MODULE_MAIN
#include "bind_spec.h"
#include "al_pool.h"

int al_isa_module_init(PyObject *m);   /* bind_isa.c: ATTNLSTM_ISA, isa_info */

static struct PyModuleDef al_module = {
    PyModuleDef_HEAD_INIT, "_core",
    "attnlstm's C kernels (LSTM, GRU, attention, VAE) behind a checked NumPy interface.\n"
    "Use attnlstm.ops for the documented functional API.",
    -1, al_util_methods, NULL, NULL, NULL, NULL
};

PyMODINIT_FUNC PyInit__core(void) {
    al_spec *families[] = {al_lstm_specs, al_gru_specs, al_attention_specs, al_mha_specs,
                           al_vae_specs, al_dense_specs};
    PyObject *m, *split;
    size_t k;

    import_array();
    if ((m = PyModule_Create(&al_module)) == NULL) return NULL;
    for (k = 0; k < sizeof families / sizeof families[0]; k++) {
        if (al_add_specs(m, families[k]) < 0) goto fail;
    }
    /* the kernel path, once, before any kernel can run */
    if (al_isa_module_init(m) < 0 ||
        PyModule_AddIntConstant(m, "ACT_LINEAR", AL_ACT_LINEAR) < 0 ||
        PyModule_AddIntConstant(m, "ACT_TANH", AL_ACT_TANH) < 0 ||
        PyModule_AddIntConstant(m, "ACT_SIGMOID", AL_ACT_SIGMOID) < 0 ||
        PyModule_AddIntConstant(m, "ACT_HARD_SIGMOID", AL_ACT_HARD_SIGMOID) < 0 ||
        PyModule_AddIntConstant(m, "ACT_RELU", AL_ACT_RELU) < 0) goto fail;
    /* where a recurrent call starts to split over threads (al_pool.h) */
    split = PyFloat_FromDouble(AL_SPLIT_FLOPS);
    if (split == NULL || PyModule_AddObjectRef(m, "SPLIT_FLOPS", split) < 0) {
        Py_XDECREF(split);
        goto fail;
    }
    Py_DECREF(split);
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
