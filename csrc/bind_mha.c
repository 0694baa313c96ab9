/*
 * bind_mha.c -- CPython binding (stub until its kernels land).
 */
#include "bind_common.h"

PyMethodDef al_mha_methods[] = {
    {NULL, NULL, 0, NULL}
};
