/*
 * mha.c -- multi-head and relative-position attention kernels, compiled once per floating
 * type from mha_impl.h.
 */
#define _POSIX_C_SOURCE 200809L  /* sched_yield, pthreads (al_team.h) */
#include <stdlib.h>
#include "al_mha.h"
#include "al_team.h"
/* the packed-panel GEMM of lstm_pgemm*.h (shared read-only) for the per-head score products */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "lstm_pgemm.h"

/* Score elements (B*NH*Tq*Tv) from which the forward and the backward split their (b, h)
 * blocks among the pool's threads: below it, handing out the work costs more than it saves. */
#define AL_MHA_TEAM_MIN 262144.0

/* No fused multiply-adds here (the build's default is -ffp-contract=fast, for the LSTM) but in
 * the softmax (al_math.h: its exp fuses on AVX2 and AVX-512, the same bits on both, the generic
 * copy agrees to rounding) and the tiles below. The per-block
 * products run on the packed tiles of lstm_pgemm*.h, whose AVX2 and AVX-512 tiles use FMA
 * intrinsics (the same bits on both) and whose generic tile does not (agrees to rounding), and
 * on mha_impl.h's dot tiles, compiled with contraction for the same split. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#endif

#define AL_REAL_F32
#include "al_real.h"
#include "al_math.h"
#include "al_blas.h"
#include "lstm_pgemm_impl.h"
#include "al_bmm_impl.h"
#include "mha_impl.h"
#include "al_real_undef.h"

#define AL_REAL_F64
#include "al_real.h"
#include "al_math.h"
#include "al_blas.h"
#include "lstm_pgemm_impl.h"
#include "al_bmm_impl.h"
#include "mha_impl.h"
#include "al_real_undef.h"
