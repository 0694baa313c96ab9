/*
 * lstm.c -- LSTM kernels, compiled once per floating type from lstm_impl.h, with the
 * packed-panel GEMM of lstm_pgemm.h / lstm_pgemm_impl.h for their per-step products and the
 * fused cell of lstm_cell_impl.h (its tiles: lstm_cell_tile.h) for the forward steps.
 */
#define _DEFAULT_SOURCE  /* POSIX 2008: sched_yield, pthreads (al_team.h); madvise (al_alloc.h) */
#include <stdlib.h>

#include "al_alloc.h"
#include "al_kernels.h"
#include "lstm_api.h"
#include "lstm_pgemm.h"
#include "al_team.h"

#define AL_REAL_F32
#include "al_real.h"
#include "al_act_impl.h"
#include "al_blas.h"
#include "lstm_pgemm_impl.h"
#include "lstm_cell_impl.h"
#include "lstm_impl.h"
#include "al_real_undef.h"

#define AL_REAL_F64
#include "al_real.h"
#include "al_act_impl.h"
#include "al_blas.h"
#include "lstm_pgemm_impl.h"
#include "lstm_cell_impl.h"
#include "lstm_impl.h"
#include "al_real_undef.h"
