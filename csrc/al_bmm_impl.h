/*
 * al_bmm_impl.h -- block matrix products on attnlstm's own packed tiles (lstm_pgemm_impl.h),
 * for kernels that run one block (a sample, or a sample's head) per thread of a team; part of
 * the type template (al_real.h), included after lstm_pgemm_impl.h by mha.c and attention.c.
 *   al_bmm_dot_nt    C = A Bt^T on dot-product tiles (outputs with few columns)
 *   al_bmm_gemm_rm   C = A Bm, Bm row-major read in place (whole panels)
 *   al_bmm_product   C = A Bm on the dot tiles while N is small, else packed (al_bmm_nbuf)
 * OpenBLAS called from the pool's threads oversubscribed the cores (benchmarks/NOTES.md), and
 * on these tiles an element's bits depend neither on the thread count nor on the block's
 * neighbours.
 */

/* Dot-product tiles: C (M, N; ldc) = A (M, K; lda) Bt (N, K; ldb)^T, for a product whose
 * output has few columns (dqs = ds k with N = HS, often 8, where a packed panel of 64 columns
 * would be mostly padding). Each element keeps AL_DOT_L partial sums over k (lane l takes
 * k = l mod AL_DOT_L in order; the last K mod AL_DOT_L in one zero-padded step) folded in a
 * fixed tree (lanes l + 8, + 4, + 2, + 1). These tiles are compiled with contraction (the rest
 * of mha.c without): a partial sum is one fused multiply-add per k on AVX-512 and AVX2 (the
 * same bits on both, as the packed tiles), a multiply and an add on the generic path (which
 * agrees to rounding). An element depends only on its row and column, not on the tile shape or
 * the thread. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=fast")
#endif
#define AL_DOT_L 16
typedef real AL_SFN(al_dot_v) __attribute__((vector_size(AL_DOT_L * sizeof(real))));

static inline __attribute__((always_inline)) real AL_SFN(al_bmm_fold)(AL_SFN(al_dot_v) v) {
    real p[AL_DOT_L];
    int l;
    memcpy(p, &v, sizeof p);
    for (l = 0; l < 8; l++) p[l] += p[l + 8];
    for (l = 0; l < 4; l++) p[l] += p[l + 4];
    for (l = 0; l < 2; l++) p[l] += p[l + 2];
    return p[0] + p[1];
}

/* dot_fold of eight vectors at once, out[o] = dot_fold(v[o]) to the bit (each lane sum is the
 * same tree), with shuffles across the vectors instead of a trip through memory per output:
 * step s adds lane l + 8 / 2^s of each output to lane l, two vectors' halves per shuffle. */
#if defined(AL_REAL_F32)
typedef int32_t AL_SFN(al_dot_i) __attribute__((vector_size(AL_DOT_L * sizeof(real))));
#else
typedef int64_t AL_SFN(al_dot_i) __attribute__((vector_size(AL_DOT_L * sizeof(real))));
#endif
static inline __attribute__((always_inline)) void AL_SFN(al_bmm_fold8)(const AL_SFN(al_dot_v) *v,
                                                                    real *out) {
    typedef AL_SFN(al_dot_i) Lanes;
    /* step 1: lanes 0-7 of x + lanes 8-15 of x, for the pair (x, y) into one vector */
    const Lanes lo1 = {0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23};
    const Lanes hi1 = {8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31};
    const Lanes lo2 = {0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27};
    const Lanes hi2 = {4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31};
    const Lanes lo3 = {0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29};
    const Lanes hi3 = {2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31};
    const Lanes lo4 = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
    const Lanes hi4 = {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31};
    AL_SFN(al_dot_v) z[4], t[2], u, w;
    real r[AL_DOT_L];
    int o;
    for (o = 0; o < 4; o++)
        z[o] = __builtin_shuffle(v[2 * o], v[2 * o + 1], lo1) +
               __builtin_shuffle(v[2 * o], v[2 * o + 1], hi1);
    /* z[o]: outputs 2o (lanes 0-7) and 2o+1 (8-15), 8 lanes each */
    for (o = 0; o < 2; o++)
        t[o] = __builtin_shuffle(z[2 * o], z[2 * o + 1], lo2) +
               __builtin_shuffle(z[2 * o], z[2 * o + 1], hi2);
    /* t[o]: outputs 4o .. 4o+3, 4 lanes each */
    u = __builtin_shuffle(t[0], t[1], lo3) + __builtin_shuffle(t[0], t[1], hi3);
    /* u: outputs 0..7, 2 lanes each */
    w = __builtin_shuffle(u, u, lo4) + __builtin_shuffle(u, u, hi4);
    memcpy(r, &w, sizeof r);
    for (o = 0; o < 8; o++) out[o] = r[o];
}

/* R x NB outputs per tile (R <= 4, NB <= 8, constants after inlining: the accumulators stay in
 * registers); edge tiles repeat the last row or column and store only the valid ones. */
static inline __attribute__((always_inline)) void AL_SFN(al_bmm_dot_nt_tiles)(
    const int R, const int NB, real *C, size_t ldc, const real *A, size_t lda, const real *Bt,
    size_t ldb, size_t M, size_t N, size_t K) {
    const size_t nv = K - K % AL_DOT_L, kt = K - nv;
    size_t m0, n0, k;
    int r, n, g;
    for (m0 = 0; m0 < M; m0 += (size_t)R) {
        const real *a[4];
        for (r = 0; r < R; r++) a[r] = A + (m0 + r < M ? m0 + r : M - 1) * lda;
        for (n0 = 0; n0 < N; n0 += (size_t)NB) {
            const real *bt[8];
            AL_SFN(al_dot_v) acc[32], av[4], bv[8];
            real o[32];
            for (n = 0; n < NB; n++) bt[n] = Bt + (n0 + n < N ? n0 + n : N - 1) * ldb;
            for (r = 0; r < R * NB; r++) acc[r] = (AL_SFN(al_dot_v)){0};
            for (k = 0; k < nv; k += AL_DOT_L) {
                for (r = 0; r < R; r++) memcpy(&av[r], a[r] + k, sizeof av[r]);
                for (n = 0; n < NB; n++) memcpy(&bv[n], bt[n] + k, sizeof bv[n]);
                for (r = 0; r < R; r++)
                    for (n = 0; n < NB; n++) acc[r * NB + n] += av[r] * bv[n];
            }
            if (kt > 0) {
                for (r = 0; r < R; r++) {
                    av[r] = (AL_SFN(al_dot_v)){0};
                    memcpy(&av[r], a[r] + nv, kt * sizeof(real));
                }
                for (n = 0; n < NB; n++) {
                    bv[n] = (AL_SFN(al_dot_v)){0};
                    memcpy(&bv[n], bt[n] + nv, kt * sizeof(real));
                }
                for (r = 0; r < R; r++)
                    for (n = 0; n < NB; n++) acc[r * NB + n] += av[r] * bv[n];
            }
            if ((R * NB) % 8 == 0) {
                for (g = 0; g < R * NB; g += 8) AL_SFN(al_bmm_fold8)(acc + g, o + g);
            } else {
                for (g = 0; g < R * NB; g++) o[g] = AL_SFN(al_bmm_fold)(acc[g]);
            }
            for (r = 0; r < R && m0 + r < M; r++)
                for (n = 0; n < NB && n0 + n < N; n++) C[(m0 + r) * ldc + n0 + n] = o[r * NB + n];
        }
    }
}

/* Tile shapes by path and type (accumulators: R x NB vectors of AL_DOT_L reals). */
/* (float32, AVX-512, stand-alone (256, 8, 256) products on this project's 2-core Sapphire
 * Rapids VM: 2 x 8 11.3 us, 4 x 4 11.5, 2 x 4 12.9, 3 x 8 14.5, 1 x 8 14.3; OpenBLAS 11.9.) */
#if defined(AL_REAL_F32)
#  define AL_DOT_SHAPE512 2, 8
#  define AL_DOT_SHAPE256 2, 2
#else
#  define AL_DOT_SHAPE512 2, 4
#  define AL_DOT_SHAPE256 1, 2
#endif
#define AL_DOT_ARGS real *C, size_t ldc, const real *A, size_t lda, const real *Bt, size_t ldb, \
                    size_t M, size_t N, size_t K
#if AL_PG_X86
__attribute__((target("avx512f"))) static void AL_SFN(al_bmm_dot_nt_avx512)(AL_DOT_ARGS) {
    AL_SFN(al_bmm_dot_nt_tiles)(AL_DOT_SHAPE512, C, ldc, A, lda, Bt, ldb, M, N, K);
}
#if defined(AL_REAL_F32)
/* The AVX2 float32 tiles written out: each 16-lane partial-sum vector is two ymm registers
 * (lanes 0-7, 8-15), and the fold is the same tree (+8 is lo + hi, then +4, +2, +1), so the
 * same bits as the AVX-512 tiles. GCC lowered the 64-byte vector extension of
 * al_bmm_dot_nt_tiles for AVX2 into 16-byte pieces reassembled through the stack: an 8-head
 * multi-head attention forward (head size 32) took 3.2x PyTorch's time on the AVX2 path
 * (benchmarks/NOTES.md, 2026-12-08). 3 x 3 outputs per tile, the two halves one after the
 * other (al_bmm_dot_half256_f32). */
__attribute__((target("avx2,fma"))) static inline float al_bmm_fold256_f32(__m256 lo, __m256 hi) {
    const __m256 s8 = _mm256_add_ps(lo, hi);
    const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
}

/* One half (lanes h*8 .. h*8+7 of the 16 partial sums) of a 3 x 3 tile over k < nv, plus the
 * zero-padded last step (masks ml, lanes [0, kt) of the half): acc[r][n] += a_r[k + 8h ..] *
 * b_n[k + 8h ..] per 16-step. 9 accumulators, 3 rows of A and one of Bt in registers: 6 loads
 * per 9 multiply-adds. */
__attribute__((target("avx2,fma"), always_inline)) static inline void al_bmm_dot_half256_f32(
    __m256 acc[9], const float *const a[3], const float *const b[3], size_t nv, size_t kt,
    __m256i ml, size_t h) {
    __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0,
           c7 = c0, c8 = c0, a0, a1, a2, bv;
    const float *a0p = a[0] + 8 * h, *a1p = a[1] + 8 * h, *a2p = a[2] + 8 * h;
    const float *b0p = b[0] + 8 * h, *b1p = b[1] + 8 * h, *b2p = b[2] + 8 * h;
    size_t k;
#define AL_DOT256_ROWS(LOAD)                                                                  \
    do {                                                                                      \
        a0 = LOAD(a0p); a1 = LOAD(a1p); a2 = LOAD(a2p);                                       \
        bv = LOAD(b0p);                                                                       \
        c0 = _mm256_fmadd_ps(a0, bv, c0); c3 = _mm256_fmadd_ps(a1, bv, c3);                  \
        c6 = _mm256_fmadd_ps(a2, bv, c6);                                                     \
        bv = LOAD(b1p);                                                                       \
        c1 = _mm256_fmadd_ps(a0, bv, c1); c4 = _mm256_fmadd_ps(a1, bv, c4);                  \
        c7 = _mm256_fmadd_ps(a2, bv, c7);                                                     \
        bv = LOAD(b2p);                                                                       \
        c2 = _mm256_fmadd_ps(a0, bv, c2); c5 = _mm256_fmadd_ps(a1, bv, c5);                  \
        c8 = _mm256_fmadd_ps(a2, bv, c8);                                                     \
    } while (0)
#define AL_DOT256_LOADU(p) _mm256_loadu_ps((p) + k)
#define AL_DOT256_LOADM(p) _mm256_maskload_ps((p) + nv, ml)
    for (k = 0; k < nv; k += 16) AL_DOT256_ROWS(AL_DOT256_LOADU);
    if (kt > 0) AL_DOT256_ROWS(AL_DOT256_LOADM);
#undef AL_DOT256_ROWS
#undef AL_DOT256_LOADU
#undef AL_DOT256_LOADM
    acc[0] = c0; acc[1] = c1; acc[2] = c2; acc[3] = c3; acc[4] = c4; acc[5] = c5;
    acc[6] = c6; acc[7] = c7; acc[8] = c8;
}

__attribute__((target("avx2,fma"))) static void al_bmm_dot_nt_avx2_f32(AL_DOT_ARGS) {
    const size_t nv = K - K % 16, kt = K - nv;
    /* lane masks of the zero-padded last step: lanes [0, kt) of 16, per half */
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i mlo = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)kt), iota);
    const __m256i mhi = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)kt - 8), iota);
    size_t m0, n0;
    for (m0 = 0; m0 < M; m0 += 3) {
        const float *a[3];
        int r, n;
        for (r = 0; r < 3; r++) a[r] = A + (m0 + r < M ? m0 + r : M - 1) * lda;
        for (n0 = 0; n0 < N; n0 += 3) {
            const float *b[3];
            __m256 lo[9], hi[9];
            for (n = 0; n < 3; n++) b[n] = Bt + (n0 + n < N ? n0 + n : N - 1) * ldb;
            al_bmm_dot_half256_f32(lo, a, b, nv, kt, mlo, 0);
            al_bmm_dot_half256_f32(hi, a, b, nv, kt, mhi, 1);
            for (r = 0; r < 3 && m0 + r < M; r++)
                for (n = 0; n < 3 && n0 + n < N; n++)
                    C[(m0 + r) * ldc + n0 + n] = al_bmm_fold256_f32(lo[r * 3 + n], hi[r * 3 + n]);
        }
    }
}
#else
__attribute__((target("avx2,fma"))) static void AL_SFN(al_bmm_dot_nt_avx2)(AL_DOT_ARGS) {
    AL_SFN(al_bmm_dot_nt_tiles)(AL_DOT_SHAPE256, C, ldc, A, lda, Bt, ldb, M, N, K);
}
#endif
#endif
static void AL_SFN(al_bmm_dot_nt_generic)(AL_DOT_ARGS) {
    AL_SFN(al_bmm_dot_nt_tiles)(1, 2, C, ldc, A, lda, Bt, ldb, M, N, K);
}
static void AL_SFN(al_bmm_dot_nt)(int isa, AL_DOT_ARGS) {
#if AL_PG_X86
    if (isa == AL_PG_AVX512) {
        AL_SFN(al_bmm_dot_nt_avx512)(C, ldc, A, lda, Bt, ldb, M, N, K);
        return;
    }
    if (isa == AL_PG_AVX2) {
        AL_SFN(al_bmm_dot_nt_avx2)(C, ldc, A, lda, Bt, ldb, M, N, K);
        return;
    }
#endif
    (void)isa;
    AL_SFN(al_bmm_dot_nt_generic)(C, ldc, A, lda, Bt, ldb, M, N, K);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif
#undef AL_DOT_ARGS
#undef AL_DOT_SHAPE512
#undef AL_DOT_SHAPE256
#undef AL_DOT_L

/* C (M, N; ldc) = A (M, K; lda) Bm (K, N; ldb), both row-major, on the packed tiles reading Bm's
 * whole panels in place and a packed copy of its last partial panel (tail: K x nc reals; the
 * tiles load whole panel rows). Each element one chain over k in order. */
static void AL_SFN(al_bmm_gemm_rm)(int isa, real *C, size_t ldc, const real *A, size_t lda,
                                const real *Bm, size_t ldb, real *tail, size_t M, size_t N,
                                size_t K) {
    const size_t nc = AL_SFN(al_pg_nc)(isa), nf = N - N % nc;
    if (nf > 0) AL_SFN(al_pg_gemm_ps)(isa, C, ldc, A, lda, 1, Bm, ldb, 0, NULL, 0, M, nf, K);
    if (nf < N) {
        AL_SFN(al_pg_pack)(isa, tail, Bm + nf, ldb, 0, K, N - nf);
        AL_SFN(al_pg_gemm)(isa, C + nf, ldc, A, lda, 1, tail, 0, NULL, 0, M, N - nf, K);
    }
}

/* Products whose output has HS (or HSv) columns (the forward's context, the backward's dqs) run
 * on the dot tiles while a packed panel would be mostly padding: below 256 bytes of reals (the
 * same rule on every path). */
#ifndef AL_BMM_DOT_N
#define AL_BMM_DOT_N (256 / sizeof(real))
#endif

/* C (M, N; ldc) = A (M, K; row stride K) Bm (K, N; ldb), for the products whose output has a
 * head's N = HS or HSv columns (the forward's context w v, the backward's dqs = ds k): on the dot
 * tiles against Bm^T while N is small (AL_BMM_DOT_N), else on the packed tiles; buf holds Bm^T
 * or the packed Bm (al_bmm_nbuf reals). */
static size_t AL_SFN(al_bmm_nbuf)(int isa, size_t K, size_t N) {
    return N < AL_BMM_DOT_N ? N * K : AL_SFN(al_pg_size)(isa, K, N);
}
static void AL_SFN(al_bmm_product)(int isa, real *C, size_t ldc, const real *A, const real *Bm,
                                     size_t ldb, real *buf, size_t M, size_t K, size_t N) {
    if (N < AL_BMM_DOT_N) {
        AL_SFN(al_pg_transpose)(buf, K, Bm, ldb, K, N);
        AL_SFN(al_bmm_dot_nt)(isa, C, ldc, A, K, buf, K, M, N, K);
    } else {
        AL_SFN(al_pg_pack)(isa, buf, Bm, ldb, 0, K, N);
        AL_SFN(al_pg_gemm)(isa, C, ldc, A, K, 1, buf, 0, NULL, 0, M, N, K);
    }
}
