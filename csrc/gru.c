/*
 * gru.c -- GRU kernels, compiled once per floating type from gru_impl.h, with the packed-panel
 * GEMM of lstm_pgemm.h / lstm_pgemm_impl.h (included read-only) for every product (no BLAS:
 * al_blas.h serves only its dropout-mask and column-sum helpers here).
 */
#define _DEFAULT_SOURCE  /* posix_memalign, madvise (al_alloc.h); pthreads (al_team.h) */
#include <stdlib.h>

#include "al_alloc.h"
#include "al_kernels.h"
/* lstm_pgemm*.h are shared read-only; the GRU uses only part of them. */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "lstm_pgemm.h"
#include "al_team.h"

#define AL_REAL_F32
#include "al_real.h"
#include "al_act_impl.h"
#include "al_blas.h"
#include "lstm_pgemm_impl.h"
#include "gru_impl.h"
#include "al_real_undef.h"

#define AL_REAL_F64
#include "al_real.h"
#include "al_act_impl.h"
#include "al_blas.h"
#include "lstm_pgemm_impl.h"
#include "gru_impl.h"
#include "al_real_undef.h"
