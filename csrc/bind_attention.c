/*
 * bind_attention.c -- CPython binding of the attention kernels (filled by the attention issue).
 */
#include "bind_common.h"

PyMethodDef al_attention_methods[] = {
    {NULL, NULL, 0, NULL}
};
