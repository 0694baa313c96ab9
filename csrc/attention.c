/*
 * attention.c -- Luong (dot/concat), additive (Bahdanau) and projected-Bahdanau attention
 * kernels, forward and backward, compiled once per floating type from attention_impl.h.
 */
#include <stdlib.h>
#include <string.h>
#include "al_attention.h"

#define AL_REAL_F32
#include "al_real.h"
#include "attention_impl.h"
#include "al_real_undef.h"

#define AL_REAL_F64
#include "al_real.h"
#include "attention_impl.h"
#include "al_real_undef.h"
