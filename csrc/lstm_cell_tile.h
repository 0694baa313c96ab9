/*
 * lstm_cell_tile.h -- the fused LSTM cell on one register tile, for one ISA; an ISA template
 * included by lstm_cell_impl.h once per vector width (AL_CT_512 or AL_CT_256), inside the
 * type template (real = float or double).
 *
 * A tile is R batch rows x one gate-interleaved panel: the L hidden units [pL, pL + L) of
 * all four gates, one vector each (L = lanes per vector; nc = 4L). The accumulators hold
 * z = b + x_t W + h_{t-1} U for those units (k in order, bias first: the same operations as
 * the separate input projection plus step GEMM, so both give the same bits); the cell is then
 * applied on the tile while it is in L1, and only h, c, a(c), the output and the activated
 * gates are written.
 */
/* AL_CT_NAME(f): f_512_f32 etc. (the extra level expands AL_CT_FN before AL_SFN pastes) */
#define AL_CT_XSFN(name) AL_SFN(name)
#define AL_CT_NAME(name) AL_CT_XSFN(AL_CT_FN(name))
#if defined(AL_CT_512)
#  define AL_CT_TARGET "avx512f,prefer-vector-width=512"
#  define AL_CT_RMAX 6
#  define AL_CT_FN(name) name##_512
#  if defined(AL_REAL_F32)
#    define AL_CT_V __m512
#    define AL_CT_L 16
#    define AL_CT_M __mmask16
#    define AL_CT_LOAD _mm512_loadu_ps
#    define AL_CT_MLOAD(m, p) _mm512_maskz_loadu_ps(m, p)
#    define AL_CT_MSTORE(p, m, v) _mm512_mask_storeu_ps(p, m, v)
#    define AL_CT_STORE _mm512_storeu_ps
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
#    define AL_CT_SET1 _mm512_set1_pd
#    define AL_CT_FMA _mm512_fmadd_pd
#    define AL_CT_ADD _mm512_add_pd
#    define AL_CT_ZERO _mm512_setzero_pd
#  endif
#  define AL_CT_MASK(n) ((AL_CT_M)((n) >= AL_CT_L ? (1u << AL_CT_L) - 1u : (1u << (n)) - 1u))
#elif defined(AL_CT_256)
#  define AL_CT_TARGET "avx2,fma"
#  define AL_CT_RMAX 3
#  define AL_CT_FN(name) name##_256
#  define AL_CT_M __m256i
#  if defined(AL_REAL_F32)
#    define AL_CT_V __m256
#    define AL_CT_L 8
#    define AL_CT_LOAD _mm256_loadu_ps
#    define AL_CT_MLOAD(m, p) _mm256_maskload_ps(p, m)
#    define AL_CT_MSTORE(p, m, v) _mm256_maskstore_ps(p, m, v)
#    define AL_CT_STORE _mm256_storeu_ps
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

/* acc[r][q] += A[r][k] P[k][q L .. q L + L) over k < K; A rows at stride lda. The R
 * broadcasts first, then one panel vector at a time: R x 4 + R + 1 registers (16 for AVX2's
 * 3 x 4 tile). */
#define AL_CT_KLOOP(A_, lda_, P_, K_)                                                       \
    for (k = 0; k < (K_); k++) {                                                            \
        const real *u_ = (P_) + k * 4 * AL_CT_L;                                            \
        AL_CT_V av[AL_CT_RMAX];                                                             \
        for (r = 0; r < R; r++) av[r] = AL_CT_SET1((A_)[r * (lda_) + k]);                   \
        for (q = 0; q < 4; q++) {                                                           \
            const AL_CT_V uv = AL_CT_LOAD(u_ + q * AL_CT_L);                                \
            for (r = 0; r < R; r++) acc[r][q] = AL_CT_FMA(av[r], uv, acc[r][q]);            \
        }                                                                                   \
    }

/*
 * The cell for rows [r0, r0 + R) and panel p (units [p L, p L + n), 1 <= n <= L) of one step:
 * see lstm_cell_args. R is a constant in each instantiation below.
 */
__attribute__((target(AL_CT_TARGET), always_inline)) static inline void
AL_CT_NAME(lstm_cell_tile)(const int R, const AL_SFN(lstm_cell_args) *a, size_t r0,
                                 size_t p, size_t n) {
    const size_t H = a->H, D = a->D, u = p * AL_CT_L;
    const AL_CT_M m = AL_CT_MASK(n);
    AL_CT_V acc[AL_CT_RMAX][4];
    real zb[4 * AL_CT_L] __attribute__((aligned(64)));
    real cpb[AL_CT_L] __attribute__((aligned(64)));
    real hb[AL_CT_L] __attribute__((aligned(64)));
    real cb[AL_CT_L] __attribute__((aligned(64)));
    real ab[AL_CT_L] __attribute__((aligned(64)));
    size_t k;
    int r, q;

    if (a->zin) {
        for (r = 0; r < R; r++) {
            const real *z = a->z + (r0 + r) * a->ldz + u;
            for (q = 0; q < 4; q++) acc[r][q] = AL_CT_MLOAD(m, z + q * H);
        }
        if (a->pb != NULL) {
            for (q = 0; q < 4; q++) {
                const AL_CT_V bv = AL_CT_LOAD(a->pb + p * 4 * AL_CT_L + q * AL_CT_L);
                for (r = 0; r < R; r++) acc[r][q] = AL_CT_ADD(acc[r][q], bv);
            }
        }
    } else {
        for (q = 0; q < 4; q++) {
            const AL_CT_V bv = a->pb ? AL_CT_LOAD(a->pb + p * 4 * AL_CT_L + q * AL_CT_L)
                                     : AL_CT_ZERO();
            for (r = 0; r < R; r++) acc[r][q] = bv;
        }
        if (a->pW != NULL && D > 0) {
            const real *xr = a->x + r0 * a->ldx;
            AL_CT_KLOOP(xr, a->ldx, a->pW + p * D * 4 * AL_CT_L, D)
        }
    }
    if (a->h != NULL) {
        const real *hr = a->h + r0 * a->ldh;
        AL_CT_KLOOP(hr, a->ldh, a->pU + p * H * 4 * AL_CT_L, H)
    } else if (a->pz0 != NULL) {
        for (q = 0; q < 4; q++) {
            const AL_CT_V zv = AL_CT_LOAD(a->pz0 + p * 4 * AL_CT_L + q * AL_CT_L);
            for (r = 0; r < R; r++) acc[r][q] = AL_CT_ADD(acc[r][q], zv);
        }
    }

    for (r = 0; r < R; r++) {
        const size_t row = r0 + r;
        const int keep = a->keep == NULL || a->keep[row * a->ldkeep];
        for (q = 0; q < 4; q++) AL_CT_STORE(zb + q * AL_CT_L, acc[r][q]);
        if (a->cp != NULL) {
            AL_CT_STORE(cpb, AL_CT_MLOAD(m, a->cp + row * a->ldcp + u));
            AL_SFN(lstm_cell_lanes)(zb, cpb, hb, cb, ab, AL_CT_L, a->act, a->ract);
        } else {
            AL_SFN(lstm_cell_lanes)(zb, NULL, hb, cb, ab, AL_CT_L, a->act, a->ract);
        }
        if (a->z != NULL) {
            real *z = a->z + row * a->ldz + u;
            for (q = 0; q < 4; q++) AL_CT_MSTORE(z + q * H, m, AL_CT_LOAD(zb + q * AL_CT_L));
        }
        if (!keep) continue;     /* the caller carries h, c and the output over */
        AL_CT_MSTORE(a->hn + row * a->ldo + u, m, AL_CT_LOAD(hb));
        AL_CT_MSTORE(a->cn + row * a->ldo + u, m, AL_CT_LOAD(cb));
        if (a->ac != NULL) AL_CT_MSTORE(a->ac + row * a->ldo + u, m, AL_CT_LOAD(ab));
        if (a->on != NULL) AL_CT_MSTORE(a->on + row * a->ldo + u, m, AL_CT_LOAD(hb));
    }
}

#define AL_CT_R(R_)                                                                       \
    __attribute__((target(AL_CT_TARGET))) static void AL_CT_NAME(lstm_cell_r##R_)(  \
        const AL_SFN(lstm_cell_args) *a, size_t r0, size_t p, size_t n) {                 \
        AL_CT_NAME(lstm_cell_tile)(R_, a, r0, p, n);                                \
    }
AL_CT_R(1) AL_CT_R(2) AL_CT_R(3)
#if AL_CT_RMAX > 3
AL_CT_R(4) AL_CT_R(5) AL_CT_R(6)
#endif
#undef AL_CT_R

#undef AL_CT_KLOOP
#undef AL_CT_TARGET
#undef AL_CT_RMAX
#undef AL_CT_FN
#undef AL_CT_XSFN
#undef AL_CT_NAME
#undef AL_CT_V
#undef AL_CT_L
#undef AL_CT_M
#undef AL_CT_LOAD
#undef AL_CT_MLOAD
#undef AL_CT_MSTORE
#undef AL_CT_STORE
#undef AL_CT_SET1
#undef AL_CT_FMA
#undef AL_CT_ADD
#undef AL_CT_ZERO
#undef AL_CT_MASK
#undef AL_CT_LANES
#undef AL_CT_512
#undef AL_CT_256
