/*
 * dense.c -- C = op(A) op(B) on attnlstm's OpenBLAS, compiled once per floating type: the Dense
 * layer's products (forward x W, backward x^T dz and dz W^T).
 *
 * Why not NumPy's matmul: NumPy links its own OpenBLAS, whose idle threads spin about 80 ms
 * after each call on the cores attnlstm's worker pool needs for the next recurrent kernel; in
 * an LSTM-VAE training step on 2 threads they took 22% of the samples (benchmarks/NOTES.md).
 * attnlstm's OpenBLAS is loaded with a short spin (attnlstm/_blas.py) and sized by
 * set_num_threads.
 */
#include "al_dense.h"

#define AL_REAL_F32
#include "al_real.h"
#include "al_blas.h"
#include "dense_impl.h"
#include "al_real_undef.h"

#define AL_REAL_F64
#include "al_real.h"
#include "al_blas.h"
#include "dense_impl.h"
#include "al_real_undef.h"
