/*
 * attention.c -- Luong (dot/concat), additive (Bahdanau) and projected-Bahdanau attention
 * kernels, forward and backward, compiled once per floating type from attention_impl.h.
 */
#define _POSIX_C_SOURCE 200809L  /* sched_yield, pthreads (al_team.h) */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "al_attention.h"
#include "al_team.h"
/* the packed-panel GEMM of lstm_pgemm*.h (shared read-only) for the per-sample products */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "lstm_pgemm.h"

/* Multiply-adds of a call (B Tq Tv (D + Dv)) from which the attention kernels split their
 * samples among the pool's threads: below it, handing out the work costs more than it saves. */
#define AL_ATTN_TEAM_MIN 2097152.0

/* The score kind of attn_backward_core (attention_impl.h). */
enum { AL_ATTN_BWD_DOT = 0, AL_ATTN_BWD_CONCAT = 1, AL_ATTN_BWD_ADDITIVE = 2 };

/* No code here reads floating-point exception flags; telling GCC so lets it turn the
 * clamp in the vectorised tanh (al_tanh_v, al_math.h) into a select instead of a branch, which
 * otherwise keeps the AVX2 and baseline loops scalar. Results are unchanged.
 * fp-contract=off (the build's default is fast, for the LSTM): no a * b + c is fused here, so
 * the AVX-512, AVX2 and generic copies of the vectorised loops give the same bits
 * (tests/test_isa_paths.py), except the softmax (al_math.h), whose exp fuses on AVX2 and
 * AVX-512 (the same bits on both; generic agrees to rounding). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#pragma GCC optimize("fp-contract=off")
#endif

#define AL_REAL_F32
#include "al_real.h"
#include "al_math.h"
#include "al_blas.h"
#include "lstm_pgemm_impl.h"
#include "al_bmm_impl.h"
#include "attention_impl.h"
#include "al_real_undef.h"

#define AL_REAL_F64
#include "al_real.h"
#include "al_math.h"
#include "al_blas.h"
#include "lstm_pgemm_impl.h"
#include "al_bmm_impl.h"
#include "attention_impl.h"
#include "al_real_undef.h"
