/*
 * lstm_pgemm.h -- small-M GEMM on a pre-packed right-hand matrix, for the LSTM kernels'
 * per-step products (h_{t-1} U in the forward, dZ_t U^T in the backward) and the forward's
 * input projection: the type-independent part (ISA choice, thread split). The typed tiles,
 * packing and GEMM are in lstm_pgemm_impl.h (part of the type template: float32 and float64).
 *
 * Why: OpenBLAS packs its right-hand matrix on every call, so a per-step (B,H)x(H,4H) product
 * with small B re-copies all of U every step, and on AMD Zen it runs its AVX2 kernels even
 * where AVX-512 is available. Here the right-hand matrix is packed once per kernel call into
 * column panels of NC elements (zero-padded), each panel K x NC contiguous, and a register tile of
 * R rows x NC columns is accumulated over the whole K with the panel streaming from L1/L2.
 *
 *   packed P (npanel, K, NC), npanel = ceil(N / NC):  P[p][k][c] = Bm[k][p NC + c]  (0 past N)
 *   C (M, N; row stride ldc) = beta C + bias (N) + A (M, K; row stride lda) P
 *
 * The path is the one selected at import (al_isa_level, al_common.h: ATTNLSTM_ISA or the CPU's
 * best); the build stays portable (no -march): each tile carries its own target attribute.
 * Every path, the portable one included, computes each element of C as one chain over k in
 * order, starting from the bias (or C, or 0): a row's result depends neither on M (the batch
 * size), nor on the row's position, nor on how rows or panels are split among threads. The
 * AVX2 and AVX-512 tiles use FMA in the same order (the same bits); the generic tile (plain C,
 * multiply then add) agrees with them to rounding.
 */
#ifndef AL_LSTM_PGEMM_H
#define AL_LSTM_PGEMM_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "al_common.h"
#include "al_pool.h"
#include <unistd.h>

/* AL_PG_NONE is the portable C tile (it once meant "use the BLAS"; the LSTM no longer calls
 * the BLAS, whose rows change with their number and its thread count). */
enum { AL_PG_NONE = AL_ISA_GENERIC, AL_PG_GENERIC = AL_ISA_GENERIC, AL_PG_AVX2 = AL_ISA_AVX2,
       AL_PG_AVX512 = AL_ISA_AVX512 };

#if defined(__GNUC__) && defined(__x86_64__)
#  define AL_PG_X86 1
#  include <immintrin.h>
#else
#  define AL_PG_X86 0
#endif

/* The selected path (ATTNLSTM_ISA, else the widest this CPU runs). */
static inline int al_pg_best_isa(void) { return al_isa_level(); }

/* impl: 0 = the selected path, 1 = generic, 2 = AVX2, 3 = AVX-512 (tests force a path; one
 * above the selected path falls back to it, so ATTNLSTM_ISA=avx2 on an AVX-512 CPU behaves
 * like an AVX2 CPU). Returns an AL_PG_* ISA. */
static inline int al_pg_isa_for(int impl) {
    const int best = al_pg_best_isa();
    switch (impl) {
    case 1: return AL_PG_GENERIC;
    case 2: return best >= AL_PG_AVX2 ? AL_PG_AVX2 : best;
    default: return best;
    }
}

/* The ISA for one kernel call: always a packed path (B and T no longer matter: a BLAS path for
 * some shapes made a sample's bits depend on the batch size and the thread count). */
static inline int al_pg_choose(int impl, size_t B, size_t T) {
    (void)B; (void)T;
    return al_pg_isa_for(impl);
}

/* Whether the input projection (B*T rows) also takes the packed path: always. */
static inline int al_pg_for_projection(int isa, int impl) {
    (void)isa; (void)impl;
    return 1;
}

/* The fused LSTM cell (lstm_cell_impl.h) computes x_t W on each step's tile from this many
 * batch rows; below it the input projection of all steps is one GEMM first. */
#define AL_CELL_CONCAT_B 8

/* The largest register tile height for an ISA (AVX2: two passes of 6 x 2 vectors; the panel
 * width, nc, depends on the type:
 * al_pg_nc_f32 / al_pg_nc_f64 in lstm_pgemm_impl.h). */
static inline size_t al_pg_rmax(int isa) { return isa == AL_PG_GENERIC ? 3 : 6; }

/*
 * How an LSTM call splits over threads. AL_SPLIT_ROWS: each thread runs the whole recurrence for its own batch rows,
 * no synchronisation inside the time loop. AL_SPLIT_COLS: every thread takes all rows and a
 * block of hidden units (whole panels of nc units, so H % nc == 0; the forward passes H rounded
 * up to its panels of L units), one barrier per step; it
 * serves small batches, where each thread then streams only its slice of U.
 * nthreads: the thread budget (attnlstm.set_num_threads); forced (tests): use it whenever the
 * shapes allow, else only when the call has enough work to pay for creating the threads.
 * Returns the mode and sets *nt (1 for AL_SPLIT_NONE).
 */
enum { AL_SPLIT_NONE = 0, AL_SPLIT_ROWS = 1, AL_SPLIT_COLS = 2 };

/* Whether U (bytes) outgrows one core's L2, so that a small batch splits by units whatever its
 * flops. The L2's size from the C library (cpuid, read only for a U of 512 KiB or more), 1 MiB
 * where it does not say. */
static inline int al_u_outgrows_l2(size_t ubytes) {
    long l2 = 0;
    if (ubytes < ((size_t)512 << 10)) return 0;
#ifdef _SC_LEVEL2_CACHE_SIZE
    l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
#endif
    return ubytes > (l2 > 0 ? (size_t)l2 : ((size_t)1 << 20));
}

/* The rule for a recurrent layer with `gates` gate blocks (LSTM 4, GRU 3). Automatic: from
 * AL_SPLIT_FLOPS of recurrent products; batches of AL_SPLIT_ROWS_B rows or more split by rows
 * (no barrier in the loop), smaller ones by units while a step has AL_SPLIT_STEP_FLOPS, else
 * by rows; a U larger than the L2 splits small batches by units whatever the flops.
 * Measured in benchmarks/NOTES.md. */
#define AL_SPLIT_ROWS_B 8
#define AL_SPLIT_STEP_FLOPS 5e5
static inline int al_rnn_split(int gates, int nthreads, int forced, size_t B, size_t T, size_t H,
                               size_t nc, size_t itemsize, int *nt) {
    const double step_flops = 2.0 * gates * (double)B * (double)H * (double)H;
    const size_t npanel = H % nc == 0 ? H / nc : 0;
    const int cols = npanel >= 2 && B < 16;
    /* a U larger than the L2 is re-read from the L3 at every step on one core; split by units,
     * each core's share can stay in its own L2 (benchmarks/NOTES.md: B=1, H=512 ~2.9x, 2 cores) */
    const int big_u = cols && al_u_outgrows_l2(gates * H * H * itemsize);
    *nt = 1;
    if (nthreads <= 1) return AL_SPLIT_NONE;
    if (!forced && step_flops * (double)T < AL_SPLIT_FLOPS && !big_u) return AL_SPLIT_NONE;
    if (cols && (forced || big_u || (B < AL_SPLIT_ROWS_B && step_flops >= AL_SPLIT_STEP_FLOPS))) {
        *nt = nthreads < (int)npanel ? nthreads : (int)npanel;
        return AL_SPLIT_COLS;
    }
    if (B >= 2) {
        *nt = (size_t)nthreads < B ? nthreads : (int)B;
        return AL_SPLIT_ROWS;
    }
    return AL_SPLIT_NONE;
}

static inline int al_lstm_split(int nthreads, int forced, size_t B, size_t T, size_t H, size_t nc,
                                size_t itemsize, int *nt) {
    return al_rnn_split(4, nthreads, forced, B, T, H, nc, itemsize, nt);
}

/* The LSTM forward's rule: al_lstm_split, except that on the AVX2 path (avx2) 8 to 15 rows
 * whose U and W together outgrow the L2 (a U of the L2's size does not stay in it beside W and
 * the step's rows) split by units, as the rule does for fewer rows. Split by rows, each
 * thread's 4-7 rows ran the two-pass half tiles, streaming all of U from the L3 at every step:
 * on a Zen 4 running AVX2, 2 threads, forward (8,50,64,256) 3.45 -> 2.41 ms, (8,200,64,256)
 * 9.14 -> 6.80, (12,50,64,256) 2.72 -> 2.32; at H = 128 (U and W in the L2) rows stayed
 * faster, and the AVX-512 path (whole tiles) measured the same to 4% slower by units, so it
 * keeps rows (benchmarks/NOTES.md, 2026-12-08). nc: units per panel. */
static inline int al_lstm_fwd_split(int avx2, int nthreads, int forced, size_t B, size_t T,
                                    size_t D, size_t H, size_t nc, size_t itemsize, int *nt) {
    const int mode = al_lstm_split(nthreads, forced, B, T, H, nc, itemsize, nt);
    const size_t npanel = H % nc == 0 ? H / nc : 0;
    if (mode == AL_SPLIT_ROWS && avx2 && B < 16 && npanel >= 2 &&
        al_u_outgrows_l2(4 * H * (H + D) * itemsize)) {
        *nt = nthreads < (int)npanel ? nthreads : (int)npanel;
        return AL_SPLIT_COLS;
    }
    return mode;
}

/* AL_SPLIT_ROWS: how many chunks of rows a call's team takes, first come, first served. Two
 * per thread let a thread the OS delays cost one chunk, not half the call; but every chunk
 * streams all of U (and W) each step, so chunks keep at least AL_SPLIT_MIN_ROWS rows (at
 * B = 64 one chunk per thread; measured in benchmarks/NOTES.md). */
#ifndef AL_SPLIT_MIN_ROWS
#define AL_SPLIT_MIN_ROWS 32
#endif
static inline size_t al_split_chunks(size_t B, int nt) {
    size_t n = B / AL_SPLIT_MIN_ROWS;
    if (n > 2 * (size_t)nt) n = 2 * (size_t)nt;
    if (n < (size_t)nt) n = (size_t)nt;
    return n < B ? n : B;
}

#endif /* AL_LSTM_PGEMM_H */
