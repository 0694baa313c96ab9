/*
 * lstm_pgemm.h -- float32 small-M GEMM on a pre-packed right-hand matrix, for the LSTM kernels'
 * per-step products (h_{t-1} U in the forward, dZ_t U^T in the backward) and the forward's
 * input projection. Included once by lstm.c (outside the type template): float32 only.
 *
 * Why: OpenBLAS packs its right-hand matrix on every call, so a per-step (B,H)x(H,4H) product
 * with small B re-copies all of U every step, and on AMD Zen it runs its AVX2 kernels even
 * where AVX-512 is available. Here the right-hand matrix is packed once per kernel call into
 * column panels of NC floats (zero-padded), each panel K x NC contiguous, and a register tile of
 * R rows x NC columns is accumulated over the whole K with the panel streaming from L1/L2.
 *
 *   packed P (npanel, K, NC), npanel = ceil(N / NC):  P[p][k][c] = Bm[k][p NC + c]  (0 past N)
 *   C (M, N; row stride ldc) = beta C + bias (N) + A (M, K; row stride lda) P
 *
 * The ISA is chosen at run time (__builtin_cpu_supports); the build stays portable (no -march):
 * each kernel carries its own target attribute. AL_PG_NONE means "use the BLAS path".
 */
#ifndef AL_LSTM_PGEMM_H
#define AL_LSTM_PGEMM_H

#include <stddef.h>
#include <stdlib.h>

enum { AL_PG_NONE = 0, AL_PG_AVX2 = 1, AL_PG_AVX512 = 2 };

#if defined(__GNUC__) && defined(__x86_64__)
#  define AL_PG_X86 1
#  include <immintrin.h>
#else
#  define AL_PG_X86 0
#endif

/* The widest packed-GEMM ISA this CPU (and OS) supports. */
static int al_pg_best_isa(void) {
#if AL_PG_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return AL_PG_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return AL_PG_AVX2;
#endif
    return AL_PG_NONE;
}

/* impl: 0 = automatic, 1 = BLAS, 2 = AVX2, 3 = AVX-512 (tests force a path; a path the CPU
 * lacks falls back to the best available one below it). Returns an AL_PG_* ISA. */
static int al_pg_isa_for(int impl) {
    const int best = al_pg_best_isa();
    switch (impl) {
    case 1: return AL_PG_NONE;
    case 2: return best >= AL_PG_AVX2 ? AL_PG_AVX2 : AL_PG_NONE;
    default: return best;
    }
}

/*
 * The ISA for one kernel call, or AL_PG_NONE for BLAS. Automatic choice (impl 0): packing
 * costs about one pass over U, so a single step stays on BLAS; the AVX2 tiles (3 rows) beat
 * OpenBLAS only for small batches. A forced impl (2, 3) always takes the packed path.
 */
static int al_pg_choose(int impl, size_t B, size_t T) {
    const int isa = al_pg_isa_for(impl);
    if (impl >= 2) return isa;
    if (isa == AL_PG_NONE || T < 2) return AL_PG_NONE;
    if (isa == AL_PG_AVX2 && B > 8) return AL_PG_NONE;
    return isa;
}

/* Whether the input projection (B*T rows) also takes the packed path. */
static int al_pg_for_projection(int isa, int impl) {
    return isa == AL_PG_AVX512 || (isa != AL_PG_NONE && impl >= 2);
}

/* Panel width (floats) and the largest register tile height for an ISA. */
static size_t al_pg_nc(int isa) { return isa == AL_PG_AVX512 ? 64 : 32; }
static size_t al_pg_rmax(int isa) { return isa == AL_PG_AVX512 ? 6 : 3; }

/* Number of floats of a packed (K, N) matrix. */
static size_t al_pg_size(int isa, size_t K, size_t N) {
    const size_t nc = al_pg_nc(isa);
    return ((N + nc - 1) / nc) * K * nc;
}

/* P = pack(Bm), Bm (K, N) with row stride ldb (trans = 0), or Bm^T where Bm is (N, K) with row
 * stride ldb (trans = 1). */
static void al_pg_pack(int isa, float *P, const float *Bm, size_t ldb, int trans, size_t K,
                       size_t N) {
    const size_t nc = al_pg_nc(isa);
    size_t p, k, c, n0;
    for (p = 0, n0 = 0; n0 < N; p++, n0 += nc) {
        float *dst = P + p * K * nc;
        const size_t w = N - n0 < nc ? N - n0 : nc;
        if (!trans) {
            for (k = 0; k < K; k++) {
                const float *src = Bm + k * ldb + n0;
                float *d = dst + k * nc;
                for (c = 0; c < w; c++) d[c] = src[c];
                for (; c < nc; c++) d[c] = 0.0f;
            }
        } else {
            /* dst[k][c] = Bm[n0 + c][k]: read rows of Bm, write columns of the panel */
            for (c = 0; c < w; c++) {
                const float *src = Bm + (n0 + c) * ldb;
                for (k = 0; k < K; k++) dst[k * nc + c] = src[k];
            }
            for (; c < nc; c++) {
                for (k = 0; k < K; k++) dst[k * nc + c] = 0.0f;
            }
        }
    }
}

#if AL_PG_X86
/*
 * One R x 64 tile, AVX-512: acc[r][v] (16 floats each) over the whole K, k in order, so a
 * row's result does not depend on the tile height (predict gives the same numbers for any
 * batch size; a split odd/even-k accumulator for R <= 2 broke that and gained little).
 * ncols (1..64) valid columns: loads and stores are masked, the padded panel needs no tail.
 */
__attribute__((target("avx512f"), always_inline)) static inline void
al_pg512_tile(const int R, float *C, size_t ldc, const float *A, size_t lda, size_t ak,
              const float *P, const float *bias, int beta, size_t K, size_t ncols, size_t ldp) {
    __m512 acc[6][4];
    __mmask16 m[4];
    size_t k;
    int r, v;
    for (v = 0; v < 4; v++) {
        const long rem = (long)ncols - 16 * v;
        m[v] = rem >= 16 ? (__mmask16)0xFFFF : rem <= 0 ? (__mmask16)0
                                                       : (__mmask16)((1u << rem) - 1u);
    }
    for (v = 0; v < 4; v++) {
        const __m512 bv = bias ? _mm512_maskz_loadu_ps(m[v], bias + 16 * v) : _mm512_setzero_ps();
        for (r = 0; r < R; r++) {
            acc[r][v] = beta ? _mm512_add_ps(bv, _mm512_maskz_loadu_ps(m[v], C + r * ldc + 16 * v))
                             : bv;
        }
    }
    k = 0;
    for (; k < K; k++) {
        const float *u = P + k * ldp;
        const __m512 u0 = _mm512_loadu_ps(u), u1 = _mm512_loadu_ps(u + 16),
                     u2 = _mm512_loadu_ps(u + 32), u3 = _mm512_loadu_ps(u + 48);
        for (r = 0; r < R; r++) {
            const __m512 a = _mm512_set1_ps(A[r * lda + k * ak]);
            acc[r][0] = _mm512_fmadd_ps(a, u0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(a, u1, acc[r][1]);
            acc[r][2] = _mm512_fmadd_ps(a, u2, acc[r][2]);
            acc[r][3] = _mm512_fmadd_ps(a, u3, acc[r][3]);
        }
    }
    for (r = 0; r < R; r++)
        for (v = 0; v < 4; v++) _mm512_mask_storeu_ps(C + r * ldc + 16 * v, m[v], acc[r][v]);
}

#define AL_PG512_R(R_)                                                                          \
    __attribute__((target("avx512f"))) static void al_pg512_r##R_(                              \
        float *C, size_t ldc, const float *A, size_t lda, size_t ak, const float *P,            \
        const float *bias, int beta, size_t K, size_t ncols, size_t ldp) {                      \
        al_pg512_tile(R_, C, ldc, A, lda, ak, P, bias, beta, K, ncols, ldp);                             \
    }
AL_PG512_R(1) AL_PG512_R(2) AL_PG512_R(3) AL_PG512_R(4) AL_PG512_R(5) AL_PG512_R(6)
#undef AL_PG512_R

/* One R x 32 tile, AVX2 + FMA (R <= 3); same scheme as al_pg512_tile. */
__attribute__((target("avx2,fma"), always_inline)) static inline void
al_pg256_tile(const int R, float *C, size_t ldc, const float *A, size_t lda, size_t ak,
              const float *P, const float *bias, int beta, size_t K, size_t ncols, size_t ldp) {
    __m256 acc[3][4];
    __m256i m[4];
    size_t k;
    int r, v, l;
    for (v = 0; v < 4; v++) {
        int lanes[8];
        for (l = 0; l < 8; l++) lanes[l] = (size_t)(8 * v + l) < ncols ? -1 : 0;
        m[v] = _mm256_loadu_si256((const __m256i *)lanes);
    }
    for (v = 0; v < 4; v++) {
        const __m256 bv = bias ? _mm256_maskload_ps(bias + 8 * v, m[v]) : _mm256_setzero_ps();
        for (r = 0; r < R; r++) {
            acc[r][v] = beta ? _mm256_add_ps(bv, _mm256_maskload_ps(C + r * ldc + 8 * v, m[v]))
                             : bv;
        }
    }
    k = 0;
    for (; k < K; k++) {
        const float *u = P + k * ldp;
        __m256 a[3];
        for (r = 0; r < R; r++) a[r] = _mm256_broadcast_ss(A + r * lda + k * ak);
        for (v = 0; v < 4; v++) {
            const __m256 uv = _mm256_loadu_ps(u + 8 * v);
            for (r = 0; r < R; r++) acc[r][v] = _mm256_fmadd_ps(a[r], uv, acc[r][v]);
        }
    }
    for (r = 0; r < R; r++)
        for (v = 0; v < 4; v++) _mm256_maskstore_ps(C + r * ldc + 8 * v, m[v], acc[r][v]);
}

#define AL_PG256_R(R_)                                                                          \
    __attribute__((target("avx2,fma"))) static void al_pg256_r##R_(                             \
        float *C, size_t ldc, const float *A, size_t lda, size_t ak, const float *P,            \
        const float *bias, int beta, size_t K, size_t ncols, size_t ldp) {                      \
        al_pg256_tile(R_, C, ldc, A, lda, ak, P, bias, beta, K, ncols, ldp);                             \
    }
AL_PG256_R(1) AL_PG256_R(2) AL_PG256_R(3)
#undef AL_PG256_R
#endif /* AL_PG_X86 */

/* dst (N, M; ldd) = src (M, N; lds)^T, in 16 x 16 blocks. */
static void al_pg_transpose(float *dst, size_t ldd, const float *src, size_t lds, size_t M,
                            size_t N) {
    size_t i0, j0, i, j;
    for (i0 = 0; i0 < M; i0 += 16) {
        const size_t i1 = i0 + 16 < M ? i0 + 16 : M;
        for (j0 = 0; j0 < N; j0 += 16) {
            const size_t j1 = j0 + 16 < N ? j0 + 16 : N;
            for (j = j0; j < j1; j++)
                for (i = i0; i < i1; i++) dst[j * ldd + i] = src[i * lds + j];
        }
    }
}

typedef void (*al_pg_tile_fn)(float *, size_t, const float *, size_t, size_t, const float *,
                              const float *, int, size_t, size_t, size_t);

/*
 * C (M, N; ldc) = beta C + bias (N, or NULL) + A (M, K) P, P = al_pg_pack(isa, ..., K, N),
 * A[m][k] at A + m lda + k ak (ak = 1: row-major; lda = 1, ak = its row stride: a transposed
 * matrix). ldp = 0 for a packed P; ldp > 0 reads an unpacked (K, N) P with row stride ldp
 * (N must then be a multiple of the panel width). isa must not be AL_PG_NONE. Panels outermost (a panel stays in L1/L2 across the row tiles);
 * rows split into ceil(M / rmax) tiles of near-equal height.
 */
static void al_pg_gemm(int isa, float *C, size_t ldc, const float *A, size_t lda, size_t ak,
                       const float *P, size_t ldp, const float *bias, int beta, size_t M,
                       size_t N, size_t K) {
#if AL_PG_X86
    static const al_pg_tile_fn f512[7] = {NULL, al_pg512_r1, al_pg512_r2, al_pg512_r3,
                                          al_pg512_r4, al_pg512_r5, al_pg512_r6};
    static const al_pg_tile_fn f256[4] = {NULL, al_pg256_r1, al_pg256_r2, al_pg256_r3};
    const al_pg_tile_fn *fn = isa == AL_PG_AVX512 ? f512 : f256;
    const size_t nc = al_pg_nc(isa), rmax = al_pg_rmax(isa);
    const size_t ntile = (M + rmax - 1) / rmax;
    size_t n0, p;
    if (M == 0) return;
    for (p = 0, n0 = 0; n0 < N; p++, n0 += nc) {
        const size_t w = N - n0 < nc ? N - n0 : nc;
        const float *Pp = ldp ? P + n0 : P + p * K * nc;
        size_t i, r0 = 0;
        for (i = 0; i < ntile; i++) {
            /* tile heights differ by at most one */
            const size_t R = M / ntile + (i < M % ntile ? 1 : 0);
            fn[R](C + r0 * ldc + n0, ldc, A + r0 * lda, lda, ak, Pp, bias ? bias + n0 : NULL, beta,
                  K, w, ldp ? ldp : nc);
            r0 += R;
        }
    }
#else
    (void)isa; (void)C; (void)ldc; (void)A; (void)lda; (void)ak; (void)P; (void)ldp; (void)bias; (void)beta;
    (void)M; (void)N; (void)K;
#endif
}

/*
 * How an LSTM call splits over threads (float32 packed path only; the BLAS path is threaded by
 * the BLAS itself). AL_SPLIT_ROWS: each thread runs the whole recurrence for its own batch rows,
 * no synchronisation inside the time loop. AL_SPLIT_COLS: every thread takes all rows and a
 * block of hidden units (whole panels of nc units, so H % nc == 0), one barrier per step; it
 * serves small batches, where each thread then streams only its slice of U.
 * nthreads: the thread budget (attnlstm.set_num_threads); forced (tests): use it whenever the
 * shapes allow, else only when the call has enough work to pay for creating the threads.
 * Returns the mode and sets *nt (1 for AL_SPLIT_NONE).
 */
enum { AL_SPLIT_NONE = 0, AL_SPLIT_ROWS = 1, AL_SPLIT_COLS = 2 };

static int al_lstm_split(int nthreads, int forced, size_t B, size_t T, size_t H, size_t nc,
                         int *nt) {
    const double step_flops = 8.0 * (double)B * (double)H * (double)H;
    const size_t npanel = H % nc == 0 ? H / nc : 0;
    *nt = 1;
    if (nthreads <= 1) return AL_SPLIT_NONE;
    if (!forced && step_flops * (double)T < 4e6) return AL_SPLIT_NONE;
    if (npanel >= 2 && B < 16 && (forced || step_flops >= 2e5)) {
        *nt = nthreads < (int)npanel ? nthreads : (int)npanel;
        return AL_SPLIT_COLS;
    }
    if (B >= 2) {
        *nt = (size_t)nthreads < B ? nthreads : (int)B;
        return AL_SPLIT_ROWS;
    }
    return AL_SPLIT_NONE;
}

#endif /* AL_LSTM_PGEMM_H */
