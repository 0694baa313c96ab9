/*
 * vae.c -- LSTM-VAE kernels (sampling, KL, masked reconstruction loss), forward and backward,
 * compiled once per floating type from vae_impl.h.
 */
#include "al_vae.h"

#define AL_REAL_F32
#include "al_real.h"
#include "al_math.h"
#include "vae_impl.h"
#include "al_real_undef.h"

#define AL_REAL_F64
#include "al_real.h"
#include "al_math.h"
#include "vae_impl.h"
#include "al_real_undef.h"
