/*
 * lstm_cell_tile.h -- the fused LSTM cell on register tiles, for one ISA; an ISA template
 * included by lstm_cell_impl.h once per vector width (AL_CT_512 or AL_CT_256), inside the
 * type template (real = float or double).
 *
 * A panel is one gate-interleaved block of U (and W, bias): the L hidden units [pL, pL + L)
 * of all four gates, one vector each (L = lanes per vector; nc = 4L). For each batch row the
 * tiles compute z = b + x_t W + h_{t-1} U for those units (k in order, bias first: the same
 * operations as the separate input projection plus step GEMM, so both give the same bits);
 * the cell is then applied while they are in L1, and only h, c, a(c), the output and the
 * activated gates are written.
 */
/* AL_CT_NAME(f): f_512_f32 etc. (the extra level expands AL_CT_FN before AL_SFN pastes) */
#define AL_CT_XSFN(name) AL_SFN(name)
#define AL_CT_NAME(name) AL_CT_XSFN(AL_CT_FN(name))
#if defined(AL_CT_512)
#  define AL_CT_TARGET "avx512f,prefer-vector-width=512"
#  define AL_CT_HR 12
#  define AL_CT_WHOLE(M) 1               /* whole-panel tiles at every batch size */
#  define AL_CT_UNR 0                    /* lstm_whole_tile: one k per trip */
#  define AL_CT_FN(name) name##_512
#  if defined(AL_REAL_F32)
#    define AL_CT_V __m512
#    define AL_CT_L 16
#    define AL_CT_M __mmask16
#    define AL_CT_LOAD _mm512_loadu_ps
#    define AL_CT_MLOAD(m, p) _mm512_maskz_loadu_ps(m, p)
#    define AL_CT_MSTORE(p, m, v) _mm512_mask_storeu_ps(p, m, v)
#    define AL_CT_STORE _mm512_storeu_ps
#    define AL_CT_STREAM _mm512_stream_ps
#    define AL_CT_SET1 _mm512_set1_ps
#    define AL_CT_FMA _mm512_fmadd_ps
#    define AL_CT_ADD _mm512_add_ps
#    define AL_CT_ZERO _mm512_setzero_ps
#  else
#    define AL_CT_V __m512d
#    define AL_CT_L 8
#    define AL_CT_M __mmask8
#    define AL_CT_LOAD _mm512_loadu_pd
#    define AL_CT_MLOAD(m, p) _mm512_maskz_loadu_pd(m, p)
#    define AL_CT_MSTORE(p, m, v) _mm512_mask_storeu_pd(p, m, v)
#    define AL_CT_STORE _mm512_storeu_pd
#    define AL_CT_STREAM _mm512_stream_pd
#    define AL_CT_SET1 _mm512_set1_pd
#    define AL_CT_FMA _mm512_fmadd_pd
#    define AL_CT_ADD _mm512_add_pd
#    define AL_CT_ZERO _mm512_setzero_pd
#  endif
#  define AL_CT_MASK(n) ((AL_CT_M)((n) >= AL_CT_L ? (1u << AL_CT_L) - 1u : (1u << (n)) - 1u))
#elif defined(AL_CT_256)
#  define AL_CT_TARGET "avx2,fma"
#  define AL_CT_HR 6
#  define AL_CT_WHOLE(M) ((M) > AL_CT_HR && (M) <= 2 * AL_CT_HR)   /* see lstm_panel_k */
#  define AL_CT_UNR 1                    /* lstm_whole_tile: two k per trip */
#  define AL_CT_FN(name) name##_256
#  define AL_CT_M __m256i
#  if defined(AL_REAL_F32)
#    define AL_CT_V __m256
#    define AL_CT_L 8
#    define AL_CT_LOAD _mm256_loadu_ps
#    define AL_CT_MLOAD(m, p) _mm256_maskload_ps(p, m)
#    define AL_CT_MSTORE(p, m, v) _mm256_maskstore_ps(p, m, v)
#    define AL_CT_STORE _mm256_storeu_ps
#    define AL_CT_STREAM _mm256_stream_ps
#    define AL_CT_SET1 _mm256_set1_ps
#    define AL_CT_FMA _mm256_fmadd_ps
#    define AL_CT_ADD _mm256_add_ps
#    define AL_CT_ZERO _mm256_setzero_ps
#    define AL_CT_LANES(n) _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n)), \
                                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#  else
#    define AL_CT_V __m256d
#    define AL_CT_L 4
#    define AL_CT_LOAD _mm256_loadu_pd
#    define AL_CT_MLOAD(m, p) _mm256_maskload_pd(p, m)
#    define AL_CT_MSTORE(p, m, v) _mm256_maskstore_pd(p, m, v)
#    define AL_CT_STORE _mm256_storeu_pd
#    define AL_CT_STREAM _mm256_stream_pd
#    define AL_CT_SET1 _mm256_set1_pd
#    define AL_CT_FMA _mm256_fmadd_pd
#    define AL_CT_ADD _mm256_add_pd
#    define AL_CT_ZERO _mm256_setzero_pd
#    define AL_CT_LANES(n) _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)(n)), \
                                              _mm256_setr_epi64x(0, 1, 2, 3))
#  endif
#  define AL_CT_MASK(n) AL_CT_LANES(n)
#else
#  error "define AL_CT_512 or AL_CT_256 before including lstm_cell_tile.h"
#endif

/* A whole vector (full: all L lanes in range) moves with a plain load or store, a partial one
 * (the last panel when L does not divide H) masked. The same values either way; but AVX2's
 * masked store (vmaskmovps) is microcoded on AMD cores, and the cell's three per row (h, c, the
 * output) made the AVX2 cell 2.8x the AVX-512 one's time at (64, 50, 64, 512) on a Zen 4
 * (benchmarks/NOTES.md, 2026-12-08). */
#define AL_CT_FSTORE(full, p, m, v)                                                          \
    do {                                                                                      \
        if (full) AL_CT_STORE(p, v);                                                          \
        else AL_CT_MSTORE(p, m, v);                                                           \
    } while (0)
#define AL_CT_FLOAD(full, m, p) ((full) ? AL_CT_LOAD(p) : AL_CT_MLOAD(m, p))

/* The stores of one row's cell results (see lstm_cell_args): the activated gates zb (4L: [i|f|
 * c|o] of the panel's units u..u+n, lanes past n unused), h, c and a(c) (L each). */
__attribute__((target(AL_CT_TARGET), always_inline)) static inline void
AL_CT_NAME(lstm_cell_store)(const AL_SFN(lstm_cell_args) *a, size_t row, size_t u,
                            const AL_CT_M m, int full, const real *zb, const real *hb,
                            const real *cb, const real *ab) {
    const size_t H = a->H;
    int q;
    const int keep = a->keep == NULL || a->keep[row * a->ldkeep];
    if (a->z != NULL) {
        real *z = a->z + row * a->ldz + u;
        /* The saved gates are read by the backward only, after the whole forward: whole
         * aligned vectors are streamed past the caches (no read of the line first, and this
         * step's h and c stay cached; the kernel's callers fence, lstm_fwd_work). Unaligned or
         * partial ones are stored as usual. The same values either way. */
        if (full && (uintptr_t)z % sizeof(AL_CT_V) == 0 &&
            (H * sizeof(real)) % sizeof(AL_CT_V) == 0) {
            for (q = 0; q < 4; q++) AL_CT_STREAM(z + q * H, AL_CT_LOAD(zb + q * AL_CT_L));
        } else {
            for (q = 0; q < 4; q++) AL_CT_FSTORE(full, z + q * H, m, AL_CT_LOAD(zb + q * AL_CT_L));
        }
    }
    if (!keep) return;     /* the caller carries h, c and the output over */
    AL_CT_FSTORE(full, a->hn + row * a->ldo + u, m, AL_CT_LOAD(hb));
    AL_CT_FSTORE(full, a->cn + row * a->ldo + u, m, AL_CT_LOAD(cb));
    if (a->ac != NULL) {
        /* a(c_t), like the gates, is read by the backward only */
        real *acp = a->ac + row * a->ldo + u;
        if (full && (uintptr_t)acp % sizeof(AL_CT_V) == 0) AL_CT_STREAM(acp, AL_CT_LOAD(ab));
        else AL_CT_FSTORE(full, acp, m, AL_CT_LOAD(ab));
    }
    if (a->on != NULL) AL_CT_FSTORE(full, a->on + row * a->ldo + u, m, AL_CT_LOAD(hb));
}

/* The cell on one row's pre-activations zb (4L, as above) and the stores of its results; zb
 * gets the activated gates. */
__attribute__((target(AL_CT_TARGET), always_inline)) static inline void
AL_CT_NAME(lstm_cell_finish)(const AL_SFN(lstm_cell_args) *a, size_t row, size_t u,
                             const AL_CT_M m, int full, real *zb) {
    real cpb[AL_CT_L] __attribute__((aligned(64)));
    real hb[AL_CT_L] __attribute__((aligned(64)));
    real cb[AL_CT_L] __attribute__((aligned(64)));
    real ab[AL_CT_L] __attribute__((aligned(64)));
    if (a->cp != NULL) {
        AL_CT_STORE(cpb, AL_CT_FLOAD(full, m, a->cp + row * a->ldcp + u));
        AL_SFN(lstm_cell_lanes)(zb, cpb, hb, cb, ab, AL_CT_L, a->act, a->ract);
    } else {
        AL_SFN(lstm_cell_lanes)(zb, NULL, hb, cb, ab, AL_CT_L, a->act, a->ract);
    }
    AL_CT_NAME(lstm_cell_store)(a, row, u, m, full, zb, hb, cb, ab);
}

/* Rows `row` and `row + 1` at once (lstm_cell_lanes2: on each row the operations, so the bits,
 * of lstm_cell_finish), for tanh and sigmoid; other activations one row at a time. */
__attribute__((target(AL_CT_TARGET), always_inline)) static inline void
AL_CT_NAME(lstm_cell_finish2)(const AL_SFN(lstm_cell_args) *a, size_t row, size_t u,
                              const AL_CT_M m, int full, real *zb0, real *zb1) {
    real cpb[2][AL_CT_L] __attribute__((aligned(64)));
    real hb[2][AL_CT_L] __attribute__((aligned(64)));
    real cb[2][AL_CT_L] __attribute__((aligned(64)));
    real ab[2][AL_CT_L] __attribute__((aligned(64)));
    if (a->act != AL_ACT_TANH || a->ract != AL_ACT_SIGMOID) {
        AL_CT_NAME(lstm_cell_finish)(a, row, u, m, full, zb0);
        AL_CT_NAME(lstm_cell_finish)(a, row + 1, u, m, full, zb1);
        return;
    }
    if (a->cp != NULL) {
        AL_CT_STORE(cpb[0], AL_CT_FLOAD(full, m, a->cp + row * a->ldcp + u));
        AL_CT_STORE(cpb[1], AL_CT_FLOAD(full, m, a->cp + (row + 1) * a->ldcp + u));
        AL_SFN(lstm_cell_lanes2)(zb0, zb1, cpb[0], cpb[1], hb[0], hb[1], cb[0], cb[1], ab[0],
                                 ab[1], AL_CT_L);
    } else {
        AL_SFN(lstm_cell_lanes2)(zb0, zb1, NULL, NULL, hb[0], hb[1], cb[0], cb[1], ab[0], ab[1],
                                 AL_CT_L);
    }
    AL_CT_NAME(lstm_cell_store)(a, row, u, m, full, zb0, hb[0], cb[0], ab[0]);
    AL_CT_NAME(lstm_cell_store)(a, row + 1, u, m, full, zb1, hb[1], cb[1], ab[1]);
}

/*
 * The panel form. AVX2: rows x one panel in two passes, gates [i, f] then [c, o], each a
 * register tile of up to AL_CT_HR rows x 2 vectors (12 accumulators of its 16 registers, so 64
 * bytes of the panel per k feed 12 FMAs, where the R x 4 tile's 3 rows x 4 vectors needed 128);
 * but from 7 to 12 rows (AL_CT_WHOLE), where those would be two tiles of 4-6 rows, whole-panel
 * tiles of up to 3 rows x 4 vectors, two k per trip (AL_CT_UNR): at B = 8 the two 4-row half
 * tiles (8 accumulators each) ran instruction-bound on a Zen 4, and the whole tiles were 7-13%
 * faster at B = 8 and 12, H = 256-512, 7-10% on 2 threads (benchmarks/NOTES.md, 2026-12-08).
 * AVX-512: one pass of tiles of up to AL_CT_HR / 2 rows x 4 vectors (24 accumulators of its 32
 * registers; a stand-alone copy in L1 ran at 84% of the FMA peak against 76% for 12 x 2 half
 * tiles; in the kernel 2-17% faster at B >= 12). The pre-activations of up to AL_CT_RC rows
 * live in a small buffer between passes and k-blocks (AL_CT_KB deep, so a block of the panel
 * stays in L1 while all the row tiles use it); storing and reloading an accumulator is exact,
 * so every element is still one chain over k in order from its bias (the same bits on both
 * ISAs and as the separate projection). Up to AL_CT_HR / 2 rows (small batches, where the
 * panel is read once whatever the tile) take one pass of R x 4 vectors on both ISAs. The cell
 * then runs on the buffer, row by row. Measured in benchmarks/NOTES.md.
 */
#ifndef AL_CT_RC
#define AL_CT_RC 96
#endif
#ifndef AL_CT_KB
#define AL_CT_KB 128
#endif
#ifndef AL_CT_PF
#define AL_CT_PF 16
#endif

#ifndef AL_CT_PF_STEP
/* Prefetch into the L2 the next per_k of the npf cache lines from pf (l counts them): the
 * tiles spread the fetch of the block that comes next over their k loop. */
#define AL_CT_PF_STEP(pf, npf, per_k, l)                                                      \
    do {                                                                                      \
        size_t j_;                                                                            \
        for (j_ = 0; j_ < (per_k) && (l) < (npf); j_++, (l)++)                                \
            _mm_prefetch((const char *)((pf) + (l) * (64 / sizeof(real))), _MM_HINT_T1);      \
    } while (0)
#endif

/* zb[r * 4L + {0, L}] += A[r][k] P[k][{0, L}] over k < K for r < R (zb and P offset to the
 * half's first gate by the caller; P rows 4L apart); npf lines from pf into the L2 meanwhile
 * (see lstm_whole_tile). */
__attribute__((target(AL_CT_TARGET), always_inline)) static inline void
AL_CT_NAME(lstm_half_tile)(const int R, real *zb, const real *A, size_t lda, const real *P,
                           size_t K, const real *pf, size_t npf) {
    AL_CT_V acc[AL_CT_HR][2];
    const size_t per_k = K > 0 ? (npf + K - 1) / K : 0;
    size_t k, l = 0;
    int r;
    for (r = 0; r < R; r++) {
        acc[r][0] = AL_CT_LOAD(zb + r * 4 * AL_CT_L);
        acc[r][1] = AL_CT_LOAD(zb + r * 4 * AL_CT_L + AL_CT_L);
    }
    for (k = 0; k < K; k++) {
        const real *pk = P + k * 4 * AL_CT_L;
        const AL_CT_V u0 = AL_CT_LOAD(pk), u1 = AL_CT_LOAD(pk + AL_CT_L);
        /* the panel streams from L2/L3 (U alone is 4 MiB at H = 512): ask 16 k ahead */
        _mm_prefetch((const char *)(pk + AL_CT_PF * 4 * AL_CT_L), _MM_HINT_T0);
        AL_CT_PF_STEP(pf, npf, per_k, l);
        for (r = 0; r < R; r++) {
            const AL_CT_V av = AL_CT_SET1(A[r * lda + k]);
            acc[r][0] = AL_CT_FMA(av, u0, acc[r][0]);
            acc[r][1] = AL_CT_FMA(av, u1, acc[r][1]);
        }
    }
    for (r = 0; r < R; r++) {
        AL_CT_STORE(zb + r * 4 * AL_CT_L, acc[r][0]);
        AL_CT_STORE(zb + r * 4 * AL_CT_L + AL_CT_L, acc[r][1]);
    }
}

/* zb[r * 4L + q L] += A[r][k] P[k][q L] over k < K, q < 4, r < R <= AL_CT_HR / 2: the whole
 * panel in one pass. Meanwhile the npf cache lines from pf (the panel block the caller uses
 * next, or this tile's share of it) are prefetched into the L2, spread over the k loop: U
 * (4 MiB at H = 512) streams from the L3 at every step, and without this only the first row
 * tile of a block waited for it (benchmarks/NOTES.md). */
__attribute__((target(AL_CT_TARGET), always_inline)) static inline void
AL_CT_NAME(lstm_whole_tile)(const int R, real *zb, const real *A, size_t lda, const real *P,
                            size_t K, const real *pf, size_t npf) {
    AL_CT_V acc[AL_CT_HR / 2][4];
    const size_t per_k = K > 0 ? (npf + K - 1) / K : 0;
    size_t k, l = 0;
    int r, q;
    for (r = 0; r < R; r++)
        for (q = 0; q < 4; q++) acc[r][q] = AL_CT_LOAD(zb + r * 4 * AL_CT_L + q * AL_CT_L);
#define AL_CT_WHOLE_K(kk)                                                                     \
    do {                                                                                      \
        const real *pk_ = P + (kk) * 4 * AL_CT_L;                                             \
        AL_CT_V av_[AL_CT_HR / 2];                                                            \
        _mm_prefetch((const char *)(pk_ + AL_CT_PF * 4 * AL_CT_L), _MM_HINT_T0);              \
        for (r = 0; r < R; r++) av_[r] = AL_CT_SET1(A[r * lda + (kk)]);                       \
        for (q = 0; q < 4; q++) {                                                             \
            const AL_CT_V uv_ = AL_CT_LOAD(pk_ + q * AL_CT_L);                                \
            for (r = 0; r < R; r++) acc[r][q] = AL_CT_FMA(av_[r], uv_, acc[r][q]);            \
        }                                                                                     \
    } while (0)
    /* AVX2: two k per trip, one L2 prefetch step for both (the loop and the prefetch step are
     * a large share of a trip's instructions there; on AVX-512 two k per trip was 2-3% slower) */
    for (k = 0; AL_CT_UNR && k + 1 < K; k += 2) {
        AL_CT_PF_STEP(pf, npf, 2 * per_k, l);
        AL_CT_WHOLE_K(k);
        AL_CT_WHOLE_K(k + 1);
    }
    for (; k < K; k++) {
        AL_CT_PF_STEP(pf, npf, per_k, l);
        AL_CT_WHOLE_K(k);
    }
#undef AL_CT_WHOLE_K
    for (r = 0; r < R; r++)
        for (q = 0; q < 4; q++) AL_CT_STORE(zb + r * 4 * AL_CT_L + q * AL_CT_L, acc[r][q]);
}

typedef void (*AL_CT_NAME(lstm_half_fn))(real *, const real *, size_t, const real *, size_t,
                                         const real *, size_t);
#define AL_CT_H(R_)                                                                           \
    __attribute__((target(AL_CT_TARGET))) static void AL_CT_NAME(lstm_half_r##R_)(            \
        real *zb, const real *A, size_t lda, const real *P, size_t K, const real *pf,         \
        size_t npf) {                                                                         \
        AL_CT_NAME(lstm_half_tile)(R_, zb, A, lda, P, K, pf, npf);                             \
    }
#if !defined(AL_CT_512)   /* AVX-512 runs whole-panel tiles only (lstm_panel_k) */
AL_CT_H(1) AL_CT_H(2) AL_CT_H(3) AL_CT_H(4) AL_CT_H(5) AL_CT_H(6)
#endif
#undef AL_CT_H
#define AL_CT_W(R_)                                                                           \
    __attribute__((target(AL_CT_TARGET))) static void AL_CT_NAME(lstm_whole_r##R_)(           \
        real *zb, const real *A, size_t lda, const real *P, size_t K, const real *pf,         \
        size_t npf) {                                                                         \
        AL_CT_NAME(lstm_whole_tile)(R_, zb, A, lda, P, K, pf, npf);                            \
    }
AL_CT_W(1) AL_CT_W(2) AL_CT_W(3)
#if AL_CT_HR > 6
AL_CT_W(4) AL_CT_W(5) AL_CT_W(6)
#endif
#undef AL_CT_W

/* zb rows [0, M) (4L each) += A rows (lda) x P (K deep), in k-blocks; row tiles of near-equal
 * height. Where AL_CT_WHOLE(M) (every M on AVX-512, 7-12 rows on AVX2): whole-panel tiles of
 * <= AL_CT_HR / 2 rows x 4 vectors (AVX-512: 24 of its 32 registers, one pass). Otherwise
 * (AVX2): both halves, tiles <= AL_CT_HR rows x 2 vectors (benchmarks/NOTES.md). */
__attribute__((target(AL_CT_TARGET))) static void
AL_CT_NAME(lstm_panel_k)(real *zb, size_t M, const real *A, size_t lda, const real *P, size_t K,
                         const real *next, size_t nnext, int pf) {
    static const AL_CT_NAME(lstm_half_fn) fw[AL_CT_HR / 2 + 1] = {
        NULL, AL_CT_NAME(lstm_whole_r1), AL_CT_NAME(lstm_whole_r2), AL_CT_NAME(lstm_whole_r3),
#if AL_CT_HR > 6
        AL_CT_NAME(lstm_whole_r4), AL_CT_NAME(lstm_whole_r5), AL_CT_NAME(lstm_whole_r6),
#endif
    };
    const size_t lines_per_k = 4 * AL_CT_L * sizeof(real) / 64;    /* of a panel row */
    size_t k0, i, r, l0, l1;
    if (M <= AL_CT_HR / 2) {
        /* one tile streams the panel once: no block to fetch ahead for others (prefetching the
         * next panel here was 2-3% slower at B = 1 and 4, H = 512) */
        fw[M](zb, A, lda, P, K, NULL, 0);
        return;
    }
    if (AL_CT_WHOLE(M)) {
        const size_t nw = (M + AL_CT_HR / 2 - 1) / (AL_CT_HR / 2);
        for (k0 = 0; k0 < K; k0 += AL_CT_KB) {
            const size_t kl = K - k0 < AL_CT_KB ? K - k0 : AL_CT_KB;
            /* the next k-block (or the caller's next block), its lines shared among the tiles */
            const real *nb = k0 + kl < K ? P + (k0 + kl) * 4 * AL_CT_L : next;
            const size_t nk = k0 + kl < K ? (K - k0 - kl < AL_CT_KB ? K - k0 - kl : AL_CT_KB)
                                          : (nnext < AL_CT_KB ? nnext : AL_CT_KB);
            const size_t nl = (pf && nb != NULL) ? nk * lines_per_k : 0;
            for (i = 0, r = 0; i < nw; i++) {
                const size_t R = M / nw + (i < M % nw ? 1 : 0);
                al_split(nl, (int)nw, (int)i, &l0, &l1);
                fw[R](zb + r * 4 * AL_CT_L, A + r * lda + k0, lda, P + k0 * 4 * AL_CT_L, kl,
                      nb != NULL ? nb + l0 * (64 / sizeof(real)) : NULL, l1 - l0);
                r += R;
            }
        }
    }
#if !defined(AL_CT_512)
    else {
        static const AL_CT_NAME(lstm_half_fn) fh[AL_CT_HR + 1] = {
            NULL, AL_CT_NAME(lstm_half_r1), AL_CT_NAME(lstm_half_r2), AL_CT_NAME(lstm_half_r3),
            AL_CT_NAME(lstm_half_r4), AL_CT_NAME(lstm_half_r5), AL_CT_NAME(lstm_half_r6),
        };
        const size_t ntile = (M + AL_CT_HR - 1) / AL_CT_HR;
        size_t half;
        for (half = 0; half < 2; half++) {
            for (k0 = 0; k0 < K; k0 += AL_CT_KB) {
                const size_t kl = K - k0 < AL_CT_KB ? K - k0 : AL_CT_KB;
                /* fetched meanwhile: in the first pass the next k-block's whole rows (the
                 * second pass then reads them from the L2), in the second the caller's next
                 * block, block by block */
                const real *nb = half == 0 ? (k0 + kl < K ? P + (k0 + kl) * 4 * AL_CT_L : NULL)
                                           : (next != NULL && k0 < nnext ? next + k0 * 4 * AL_CT_L
                                                                         : NULL);
                const size_t nk = half == 0 ? (K - k0 - kl < AL_CT_KB ? K - k0 - kl : AL_CT_KB)
                                            : (nnext - k0 < AL_CT_KB ? nnext - k0 : AL_CT_KB);
                const size_t nl = (pf && nb != NULL) ? nk * lines_per_k : 0;
                for (i = 0, r = 0; i < ntile; i++) {
                    const size_t R = M / ntile + (i < M % ntile ? 1 : 0);
                    al_split(nl, (int)ntile, (int)i, &l0, &l1);
                    fh[R](zb + r * 4 * AL_CT_L + half * 2 * AL_CT_L, A + r * lda + k0, lda,
                          P + k0 * 4 * AL_CT_L + half * 2 * AL_CT_L, kl,
                          nb != NULL ? nb + l0 * (64 / sizeof(real)) : NULL, l1 - l0);
                    r += R;
                }
            }
        }
    }
#endif
}

/* The start of gate q's chain for row `row` and panel p (units u..): z (the projection, bias
 * included) [+ bias], or the bias, or 0. */
__attribute__((target(AL_CT_TARGET), always_inline)) static inline AL_CT_V
AL_CT_NAME(lstm_chain_start)(const AL_SFN(lstm_cell_args) *a, size_t row, size_t p, size_t u,
                             int q, const AL_CT_M m) {
    const AL_CT_V bv = a->pb ? AL_CT_LOAD(a->pb + p * 4 * AL_CT_L + q * AL_CT_L) : AL_CT_ZERO();
    AL_CT_V v;
    if (!a->zin) return bv;
    v = AL_CT_MLOAD(m, a->z + row * a->ldz + u + q * a->H);
    return a->pb != NULL ? AL_CT_ADD(v, bv) : v;
}

/* The cell for rows [r0, r1) and panel p (units [p L, p L + n)) of one step, panel form: the
 * same operations per element as the generic tile (lstm_cell_impl.h), fused. */
__attribute__((target(AL_CT_TARGET))) static void
AL_CT_NAME(lstm_cell_panel)(const AL_SFN(lstm_cell_args) *a, size_t r0, size_t r1, size_t p,
                            size_t n) {
    const size_t H = a->H, D = a->D, u = p * AL_CT_L;
    const AL_CT_M m = AL_CT_MASK(n);
    real zb[AL_CT_RC * 4 * AL_CT_L] __attribute__((aligned(64)));
    /* chunks of near-equal height (a short last chunk would stream the panel for few rows) */
    const size_t nchunk = (r1 - r0 + AL_CT_RC - 1) / AL_CT_RC;
    size_t c0, r, ci;
    int q;
    for (ci = 0, c0 = r0; ci < nchunk; ci++) {
        const size_t M = (r1 - r0) / nchunk + (ci < (r1 - r0) % nchunk ? 1 : 0);
        /* the chain's start: z (the projection, bias included) [+ bias], or the bias, or 0 */
        for (r = 0; r < M; r++)
            for (q = 0; q < 4; q++)
                AL_CT_STORE(zb + r * 4 * AL_CT_L + q * AL_CT_L,
                            AL_CT_NAME(lstm_chain_start)(a, c0 + r, p, u, q, m));
        const int xin = !a->zin && a->pW != NULL && D > 0;
        if (xin)
            AL_CT_NAME(lstm_panel_k)(zb, M, a->x + c0 * a->ldx, a->ldx,
                                     a->pW + p * D * 4 * AL_CT_L, D,
                                     a->h != NULL ? a->pU + p * H * 4 * AL_CT_L : NULL, H,
                                     a->pf_l2);
        if (a->h != NULL) {
            /* what the last chunk streams next: the following panel's first block */
            const size_t pn = a->rev ? p - 1 : p + 1;    /* the panel the step takes next */
            const int more = ci + 1 == nchunk && (a->rev ? p > 0 : (p + 1) * AL_CT_L < H);
            const real *next = !more ? NULL
                               : xin ? a->pW + pn * D * 4 * AL_CT_L
                                     : a->pU + pn * H * 4 * AL_CT_L;
            AL_CT_NAME(lstm_panel_k)(zb, M, a->h + c0 * a->ldh, a->ldh,
                                     a->pU + p * H * 4 * AL_CT_L, H, next, xin ? D : H,
                                     a->pf_l2);
        } else if (a->pz0 != NULL) {
            for (r = 0; r < M; r++)
                for (q = 0; q < 4; q++) {
                    real *zq = zb + r * 4 * AL_CT_L + q * AL_CT_L;
                    AL_CT_STORE(zq, AL_CT_ADD(AL_CT_LOAD(zq),
                                              AL_CT_LOAD(a->pz0 + p * 4 * AL_CT_L + q * AL_CT_L)));
                }
        }
        for (r = 0; r + 1 < M; r += 2)
            AL_CT_NAME(lstm_cell_finish2)(a, c0 + r, u, m, n == AL_CT_L, zb + r * 4 * AL_CT_L,
                                          zb + (r + 1) * 4 * AL_CT_L);
        if (r < M)
            AL_CT_NAME(lstm_cell_finish)(a, c0 + r, u, m, n == AL_CT_L, zb + r * 4 * AL_CT_L);
        c0 += M;
    }
}
/* One batch row, np <= AL_CT_NP consecutive panels [p, p + np) at once (B = 1): each k feeds
 * the np panels' 4 np accumulators from one broadcast, so their FMA chains run side by side
 * instead of one panel's four chains at a time (those are latency-bound: 4 cycles per k).
 * Every element is still one chain over k in order from the same start (the projection or
 * the bias, then x_t W, then h_{t-1} U), so the bits are those of lstm_cell_panel. AVX-512:
 * four panels (16 accumulators). AVX2: two (8 of its 16 registers), and only on AMD CPUs
 * (al_avx2_row_panels): on an Intel Xeon's AVX2 path the panel loads were the limit and it
 * was 4-12% slower at H = 256, on a Zen 4 core's 5-18% faster (benchmarks/NOTES.md). */
#if defined(AL_CT_512)
#define AL_CT_NP 4
#else
#define AL_CT_NP 2
#endif
__attribute__((target(AL_CT_TARGET))) static void
AL_CT_NAME(lstm_cell_panels1)(const AL_SFN(lstm_cell_args) *a, size_t row, size_t p, size_t np) {
    const size_t H = a->H, D = a->D, G = 4 * AL_CT_L;
    real zb[AL_CT_NP * 4 * AL_CT_L] __attribute__((aligned(64)));
    AL_CT_V acc[AL_CT_NP][4];
    size_t j, k, part;
    int q;
    for (j = 0; j < np; j++) {
        const size_t u = (p + j) * AL_CT_L, n = H - u < AL_CT_L ? H - u : AL_CT_L;
        for (q = 0; q < 4; q++)
            acc[j][q] = AL_CT_NAME(lstm_chain_start)(a, row, p + j, u, q, AL_CT_MASK(n));
    }
    /* part 0: x_t W (concatenated form), part 1: h_{t-1} U */
    for (part = 0; part < 2; part++) {
        const real *A, *P;
        size_t K;
        if (part == 0) {
            if (a->zin || a->pW == NULL || D == 0) continue;
            A = a->x + row * a->ldx; P = a->pW; K = D;
        } else {
            if (a->h == NULL) break;
            A = a->h + row * a->ldh; P = a->pU; K = H;
        }
        for (k = 0; k < K; k++) {
            const AL_CT_V av = AL_CT_SET1(A[k]);
            for (j = 0; j < AL_CT_NP; j++) {
                if (j < np) {
                    const real *pk = P + ((p + j) * K + k) * G;
                    for (q = 0; q < 4; q++)
                        acc[j][q] = AL_CT_FMA(av, AL_CT_LOAD(pk + q * AL_CT_L), acc[j][q]);
                }
            }
        }
    }
    for (j = 0; j < np; j++) {
        for (q = 0; q < 4; q++) {
            AL_CT_V v = acc[j][q];
            if (a->h == NULL && a->pz0 != NULL)
                v = AL_CT_ADD(v, AL_CT_LOAD(a->pz0 + (p + j) * G + q * AL_CT_L));
            AL_CT_STORE(zb + j * G + q * AL_CT_L, v);
        }
    }
    for (j = 0; j < np; j++) {
        const size_t u = (p + j) * AL_CT_L, n = H - u < AL_CT_L ? H - u : AL_CT_L;
        AL_CT_NAME(lstm_cell_finish)(a, row, u, AL_CT_MASK(n), n == AL_CT_L, zb + j * G);
    }
}
#undef AL_CT_NP

#undef AL_CT_RC
#undef AL_CT_KB
#undef AL_CT_PF


#undef AL_CT_TARGET
#undef AL_CT_HR
#undef AL_CT_WHOLE
#undef AL_CT_UNR
#undef AL_CT_FN
#undef AL_CT_XSFN
#undef AL_CT_NAME
#undef AL_CT_V
#undef AL_CT_L
#undef AL_CT_M
#undef AL_CT_LOAD
#undef AL_CT_MLOAD
#undef AL_CT_MSTORE
#undef AL_CT_FLOAD
#undef AL_CT_FSTORE
#undef AL_CT_STORE
#undef AL_CT_STREAM
#undef AL_CT_SET1
#undef AL_CT_FMA
#undef AL_CT_ADD
#undef AL_CT_ZERO
#undef AL_CT_MASK
#undef AL_CT_LANES
#undef AL_CT_512
#undef AL_CT_256
