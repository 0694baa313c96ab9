/*
 * mha.c -- multi-head and relative-position attention kernels, compiled once per floating
 * type from mha_impl.h.
 */
#include <stdlib.h>
#include "al_mha.h"

#define AL_REAL_F32
#include "al_real.h"
#include "al_vmath.h"
#include "al_softmax_impl.h"
#include "mha_impl.h"
#include "al_real_undef.h"

#define AL_REAL_F64
#include "al_real.h"
#include "al_vmath.h"
#include "al_softmax_impl.h"
#include "mha_impl.h"
#include "al_real_undef.h"
