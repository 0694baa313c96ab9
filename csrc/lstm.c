/*
 * lstm.c -- LSTM kernels, compiled once per floating type from lstm_impl.h.
 */
#include <stdlib.h>

#include "al_kernels.h"

#define AL_REAL_F32
#include "al_real.h"
#include "al_act_impl.h"
#include "lstm_impl.h"
#include "al_real_undef.h"

#define AL_REAL_F64
#include "al_real.h"
#include "al_act_impl.h"
#include "lstm_impl.h"
#include "al_real_undef.h"
