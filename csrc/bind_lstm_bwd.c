/*
 * bind_lstm_bwd.c -- CPython binding (stub until its kernels land).
 */
#include "bind_common.h"

PyMethodDef al_lstm_bwd_methods[] = {
    {NULL, NULL, 0, NULL}
};
