/*
 * lstm_cell_impl.h -- the LSTM forward step fused onto the packed GEMM's register tile; part of
 * the type template (al_real.h), after al_act_impl.h and lstm_pgemm_impl.h.
 *
 * Why (performance-notes item 3): done separately, a step writes its (B,4H) gate
 * pre-activations from the GEMM tile, then reads them back for the cell, and each row lives at
 * a stride of T*4H (rows of the (B,T,4H) gates array), so at large batches that round trip is
 * memory traffic, not arithmetic. Here the four gates of the same L hidden units share one
 * tile (U, W and the bias packed gate-interleaved), and the cell
 *   i = ra(z_i)  f = ra(z_f)  g = a(z_c)  o = ra(z_o)   c = f c_{t-1} + i g   h = o a(c)
 * runs on the tile just computed.
 *
 *   gate-interleaved packing, panel p of L units (nc = 4L, L = lanes per vector):
 *     P[p][k][q L + l] = M[k][q H + p L + l]   (q = gate in [i, f, c, o]; 0 for p L + l >= H)
 */

/* One step's operands for the fused cell (row r of each array at base + r * its stride). */
typedef struct {
    const real *x; size_t ldx;           /* x_t rows (B, D), when pW is set */
    const real *pW;                      /* W (D,4H) gate-interleaved, or NULL: z holds x W + b */
    const real *pb;                      /* bias (4H) gate-interleaved, or NULL: none, or
                                            already in z (zin) */
    const real *h; size_t ldh;           /* h_{t-1} rows (B, H), or NULL for zeros */
    const real *pz0;                     /* with h = NULL: 0 * U summed over k (0, or NaN where a
                                            column of U holds NaN/inf, as Keras' zeros @ U),
                                            gate-interleaved; NULL when all 0 */
    const real *pU;                      /* U (H,4H) gate-interleaved */
    real *z; size_t ldz;                 /* gate rows (B, 4H), Keras layout: read when zin (the
                                            input projection plus bias), written with the
                                            activated gates; or NULL (not saved, zin = 0) */
    int zin;
    const real *cp; size_t ldcp;         /* c_{t-1} rows, or NULL for zeros */
    real *hn, *cn, *ac, *on; size_t ldo; /* h_t, c_t, a(c_t) (or NULL), output (or NULL) rows */
    const uint8_t *keep; size_t ldkeep;  /* row r masked when keep[r * ldkeep] == 0; NULL: none.
                                            Masked rows get no h, c, a(c) or output: the
                                            caller carries them over. */
    size_t D, H;
    int act, ract;
    int pf_l2;                           /* the packed W and U outgrow the L2: the tiles fetch
                                            the next block into it ahead (lstm_panel_k) */
    int rev;                             /* panels in descending order (odd steps) */
} AL_SFN(lstm_cell_args);

/* The cell on n lanes: z [i|f|c|o] pre-activations in (gate k of lane j at z[k*S + j]),
 * activated gates out; cp (n) or NULL for zeros; h, c, ac (n) out. With (act, ract) = (tanh,
 * sigmoid) -- the case that matters -- the loop is branch-free and vectorises; others go
 * through the switch. The tiles run it on one panel's L lanes (S = L), the elementwise pass on
 * a row's units (S = H), each compiled for the path's ISA, so both give the same bits. */
static inline __attribute__((always_inline)) void AL_SFN(lstm_cell_lanes_body)(
    real *z, const real *cp, real *h, real *c, real *ac, const size_t n, const size_t S,
    const int act, const int ract) {
    size_t j;
    /* not unrolled: GCC would unroll an 8-lane loop into scalar code before vectorising */
#pragma GCC unroll 1
    for (j = 0; j < n; j++) {
        const real i = AL_SFN(act_scalar)(ract, z[j]);
        const real f = AL_SFN(act_scalar)(ract, z[S + j]);
        const real g = AL_SFN(act_scalar)(act, z[2 * S + j]);
        const real o = AL_SFN(act_scalar)(ract, z[3 * S + j]);
        /* no c_{t-1}: f * 0 still, so an infinite or NaN f gives NaN as in Keras */
        const real cn = cp ? f * cp[j] + i * g : f * (real)0 + i * g;
        const real a = AL_SFN(act_scalar)(act, cn);
        z[j] = i;
        z[S + j] = f;
        z[2 * S + j] = g;
        z[3 * S + j] = o;
        c[j] = cn;
        ac[j] = a;
        h[j] = o * a;
    }
}

static inline __attribute__((always_inline)) void AL_SFN(lstm_cell_lanes_s)(
    real *z, const real *cp, real *h, real *c, real *ac, const size_t n, const size_t S, int act,
    int ract) {
    if (act == AL_ACT_TANH && ract == AL_ACT_SIGMOID) {
        if (cp) AL_SFN(lstm_cell_lanes_body)(z, cp, h, c, ac, n, S, AL_ACT_TANH, AL_ACT_SIGMOID);
        else AL_SFN(lstm_cell_lanes_body)(z, NULL, h, c, ac, n, S, AL_ACT_TANH, AL_ACT_SIGMOID);
    } else {
        AL_SFN(lstm_cell_lanes_body)(z, cp, h, c, ac, n, S, act, ract);
    }
}

/* The cell on two rows' L lanes at once (z0, z1: [i|f|c|o] of L lanes each; cp0 and cp1 both
 * set or both NULL), element for element the operations of lstm_cell_lanes_body (the same
 * bits): the two rows' chains (sigmoid, then c, then tanh(c): some hundred cycles of dependent
 * operations) sit side by side in one loop body. tanh and sigmoid only (the caller checks).
 * Spelled out statement by statement on purpose: the same loop calling one per-lane helper per
 * row (the two chains one after the other in the body) was 1-3.5% slower (AVX2 (8,50,64,512)
 * 13.17 -> 13.65 ms, AVX-512 (8,50,64,256) 2.97 -> 3.03; benchmarks/NOTES.md). Keep each
 * statement the same as lstm_cell_lanes_body's, or the paths' bits part. */
static inline __attribute__((always_inline)) void AL_SFN(lstm_cell_lanes2)(
    real *restrict z0, real *restrict z1, const real *restrict cp0, const real *restrict cp1,
    real *restrict h0, real *restrict h1, real *restrict c0, real *restrict c1,
    real *restrict ac0, real *restrict ac1, const int L) {
    int j;
#pragma GCC unroll 1
    for (j = 0; j < L; j++) {
        const real i0 = AL_SFN(act_scalar)(AL_ACT_SIGMOID, z0[j]);
        const real i1 = AL_SFN(act_scalar)(AL_ACT_SIGMOID, z1[j]);
        const real f0 = AL_SFN(act_scalar)(AL_ACT_SIGMOID, z0[L + j]);
        const real f1 = AL_SFN(act_scalar)(AL_ACT_SIGMOID, z1[L + j]);
        const real g0 = AL_SFN(act_scalar)(AL_ACT_TANH, z0[2 * L + j]);
        const real g1 = AL_SFN(act_scalar)(AL_ACT_TANH, z1[2 * L + j]);
        const real o0 = AL_SFN(act_scalar)(AL_ACT_SIGMOID, z0[3 * L + j]);
        const real o1 = AL_SFN(act_scalar)(AL_ACT_SIGMOID, z1[3 * L + j]);
        const real cn0 = cp0 ? f0 * cp0[j] + i0 * g0 : f0 * (real)0 + i0 * g0;
        const real cn1 = cp1 ? f1 * cp1[j] + i1 * g1 : f1 * (real)0 + i1 * g1;
        const real a0 = AL_SFN(act_scalar)(AL_ACT_TANH, cn0);
        const real a1 = AL_SFN(act_scalar)(AL_ACT_TANH, cn1);
        z0[j] = i0;
        z1[j] = i1;
        z0[L + j] = f0;
        z1[L + j] = f1;
        z0[2 * L + j] = g0;
        z1[2 * L + j] = g1;
        z0[3 * L + j] = o0;
        z1[3 * L + j] = o1;
        c0[j] = cn0;
        c1[j] = cn1;
        ac0[j] = a0;
        ac1[j] = a1;
        h0[j] = o0 * a0;
        h1[j] = o1 * a1;
    }
}

static inline __attribute__((always_inline)) void AL_SFN(lstm_cell_lanes)(
    real *z, const real *cp, real *h, real *c, real *ac, const int L, int act, int ract) {
    AL_SFN(lstm_cell_lanes_s)(z, cp, h, c, ac, (size_t)L, (size_t)L, act, ract);
}

/* The cell on one row's units [0, n) (gate stride H), compiled for each path like the tiles:
 * the elementwise pass of the single-step and rec_mask forms (lstm_impl.h). */
#if AL_PG_X86
__attribute__((target("avx512f,prefer-vector-width=512"))) static void AL_SFN(lstm_cell_row_512)(
    real *z, const real *cp, real *h, real *c, real *ac, size_t n, size_t H, int act, int ract) {
    AL_SFN(lstm_cell_lanes_s)(z, cp, h, c, ac, n, H, act, ract);
}
__attribute__((target("avx2,fma"))) static void AL_SFN(lstm_cell_row_256)(
    real *z, const real *cp, real *h, real *c, real *ac, size_t n, size_t H, int act, int ract) {
    AL_SFN(lstm_cell_lanes_s)(z, cp, h, c, ac, n, H, act, ract);
}
#endif
static void AL_SFN(lstm_cell_row)(int isa, real *z, const real *cp, real *h, real *c, real *ac,
                                  size_t n, size_t H, int act, int ract) {
#if AL_PG_X86
    if (isa == AL_PG_AVX512) {
        AL_SFN(lstm_cell_row_512)(z, cp, h, c, ac, n, H, act, ract);
        return;
    }
    if (isa == AL_PG_AVX2) {
        AL_SFN(lstm_cell_row_256)(z, cp, h, c, ac, n, H, act, ract);
        return;
    }
#endif
    (void)isa;
    AL_SFN(lstm_cell_lanes_s)(z, cp, h, c, ac, n, H, act, ract);
}

/* Lanes per vector (L) of the gate-interleaved panels. */
static size_t AL_SFN(al_cell_lanes)(int isa) { return AL_SFN(al_pg_nc)(isa) / 4; }

#if defined(AL_REAL_F32)
typedef uint32_t AL_SFN(al_rbits);
#else
typedef uint64_t AL_SFN(al_rbits);
#endif
/* 16 bytes of reals as integers (GCC vector extension; moved with memcpy, no aliasing). */
typedef AL_SFN(al_rbits) AL_SFN(al_rbits16) __attribute__((vector_size(16)));

/* The exponent field of x plus one unit of it: the top bit is set iff the exponent is all
 * ones, i.e. iff x is inf or NaN (integer operations, one cycle each). */
#if defined(AL_REAL_F32)
#  define AL_NONFINITE_BIT(b) (((b) & UINT32_C(0x7f800000)) + UINT32_C(0x00800000))
#else
#  define AL_NONFINITE_BIT(b)                                                                 \
    (((b) & UINT64_C(0x7ff0000000000000)) + UINT64_C(0x0010000000000000))
#endif

/* d[0, n) = s[0, n), n * sizeof(real) = 16 nv bytes (nv = 1, 2 or 4: one gate's lanes of
 * a panel on any path), OR-ing AL_NONFINITE_BIT of each real into the accumulators. */
#define AL_COPY_FLAG(V, d, s, nv, a0, a1, a2, a3)                                             \
    do {                                                                                      \
        V v0_, v1_, v2_, v3_;                                                                 \
        memcpy(&v0_, (s), 16);                                                                \
        memcpy((d), &v0_, 16);                                                                \
        (a0) |= AL_NONFINITE_BIT(v0_);                                                        \
        if ((nv) >= 2) {                                                                      \
            memcpy(&v1_, (s) + 16 / sizeof(real), 16);                                        \
            memcpy((d) + 16 / sizeof(real), &v1_, 16);                                        \
            (a1) |= AL_NONFINITE_BIT(v1_);                                                    \
        }                                                                                     \
        if ((nv) >= 4) {                                                                      \
            memcpy(&v2_, (s) + 32 / sizeof(real), 16);                                        \
            memcpy(&v3_, (s) + 48 / sizeof(real), 16);                                        \
            memcpy((d) + 32 / sizeof(real), &v2_, 16);                                        \
            memcpy((d) + 48 / sizeof(real), &v3_, 16);                                        \
            (a2) |= AL_NONFINITE_BIT(v2_);                                                    \
            (a3) |= AL_NONFINITE_BIT(v3_);                                                    \
        }                                                                                     \
    } while (0)

/* P = gate-interleaved M (K, 4H; row stride ldm), al_pg_size(isa, K, 4 * ceil(H / L) * L)
 * elements, panels [p0, p1) only (each panel is K * 4L elements at P + p K 4L). K = 1 packs a
 * bias vector. z0 (4H), when not NULL, gets sum_k 0 * M[k] in the panels' columns on the way
 * (0, or NaN in a column holding NaN or inf: Keras' zeros @ U, see lstm_forward_impl). */
static void AL_SFN(al_pg_pack_gates_zr)(int isa, real *P, const real *M, size_t ldm, size_t K,
                                        size_t H, real *z0, size_t p0, size_t p1) {
    const size_t L = AL_SFN(al_cell_lanes)(isa), nc = 4 * L, np = (H + L - 1) / L;
    const size_t nv = L * sizeof(real) / 16;
    const AL_SFN(al_rbits) top = (AL_SFN(al_rbits))1 << (8 * sizeof(real) - 1);
    AL_SFN(al_rbits16) a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    AL_SFN(al_rbits) as = 0, any;
    size_t p, k, q, l;
    if (p1 > np) p1 = np;
    if (p0 >= p1) return;
    /* Row by row of M: each row's columns of the panels are read in order, so the hardware
     * prefetchers stream M, and each panel's rows are written in order. (Panel by panel, the
     * rows of a panel are 4H reals apart: with z0 summed on the way as well, the pack was 28%
     * of a (1, 50, 64, 512) forward on the Zen 4, benchmarks/NOTES.md.) With z0, a0..a3 and
     * as flag on the way whether M holds inf or NaN, the rare case where z0 is summed below. */
    for (k = 0; k < K; k++) {
        const real *row = M + k * ldm;
        for (p = p0; p < p1; p++) {
            const size_t w = H - p * L < L ? H - p * L : L;
            real *d = P + (p * K + k) * nc;
            for (q = 0; q < 4; q++) {
                const real *src = row + q * H + p * L;
                if (z0 != NULL && w == L) {
                    AL_COPY_FLAG(AL_SFN(al_rbits16), d + q * L, src, nv, a0, a1, a2, a3);
                    continue;
                }
                for (l = 0; l < w; l++) d[q * L + l] = src[l];
                for (l = w; l < L; l++) d[q * L + l] = (real)0;
                if (z0 != NULL) {
                    for (l = 0; l < w; l++) {
                        AL_SFN(al_rbits) b;
                        memcpy(&b, src + l, sizeof b);
                        as |= AL_NONFINITE_BIT(b);
                    }
                }
            }
        }
    }
    if (z0 != NULL) {
        const size_t u0 = p0 * L, u1 = p1 * L < H ? p1 * L : H;
        a0 |= a1 | a2 | a3;
        any = as;
        for (l = 0; l < 16 / sizeof(real); l++) any |= a0[l];
        for (q = 0; q < 4; q++)
            for (l = u0; l < u1; l++) z0[q * H + l] = (real)0;
        /* without inf or NaN every column of z0 is +0 (+0 plus 0 * finite = +-0 is +0); with
         * them, the sums in k order, as Keras' zeros @ U */
        for (k = 0; (any & top) && k < K; k++)
            for (q = 0; q < 4; q++)
                for (l = u0; l < u1; l++) z0[q * H + l] += M[k * ldm + q * H + l] * (real)0;
    }
}
#undef AL_COPY_FLAG
#undef AL_NONFINITE_BIT

/* The same, all panels, no z0. */
static void AL_SFN(al_pg_pack_gates)(int isa, real *P, const real *M, size_t ldm, size_t K,
                                     size_t H) {
    AL_SFN(al_pg_pack_gates_zr)(isa, P, M, ldm, K, H, NULL, 0, (size_t)-1);
}

#if AL_PG_X86
#define AL_CT_512
#include "lstm_cell_tile.h"
#define AL_CT_256
#include "lstm_cell_tile.h"
#endif

/*
 * The fused cell on one tile of the generic path (plain C, any CPU): the same operations as
 * lstm_cell_tile.h (z or the bias first, then x_t W and h_{t-1} U, k in order) with a separate
 * multiply and add where the vector tiles fuse them; LG = nc / 4 lanes per gate.
 */
#if defined(AL_REAL_F32)
#  define AL_CG_L 4
#else
#  define AL_CG_L 2
#endif
#define AL_CG_KLOOP(A_, lda_, P_, K_)                                                       \
    for (k = 0; k < (K_); k++) {                                                            \
        AL_SFN(al_vgen) uv_[4];                                                             \
        memcpy(uv_, (P_) + k * 4 * AL_CG_L, sizeof uv_);                                    \
        for (r = 0; r < R; r++) {                                                           \
            const AL_SFN(al_vgen) av_ = (AL_SFN(al_vgen)){0} + (A_)[r * (lda_) + k];        \
            for (q = 0; q < 4; q++) accv[r].v[q] = accv[r].v[q] + av_ * uv_[q];             \
        }                                                                                   \
    }

static inline __attribute__((always_inline)) void AL_SFN(lstm_cell_tile_gen)(
    const int R, const AL_SFN(lstm_cell_args) *a, size_t r0, size_t p, size_t n) {
    const size_t H = a->H, D = a->D, u = p * AL_CG_L;
    AL_SFN(al_vgen4) accv[3];      /* lanes: the 4 gates x AL_CG_L units of the panel */
#define acc(r_) accv[r_].s
    real cpb[AL_CG_L], hb[AL_CG_L], cb[AL_CG_L], ab[AL_CG_L];
    size_t k, l;
    int r, q;

    if (a->zin) {
        for (r = 0; r < R; r++) {
            const real *z = a->z + (r0 + r) * a->ldz + u;
            for (q = 0; q < 4; q++)
                for (l = 0; l < AL_CG_L; l++)
                    acc(r)[q * AL_CG_L + l] = l < (size_t)n ? z[q * H + l] : (real)0;
        }
        if (a->pb != NULL) {
            const real *bv = a->pb + p * 4 * AL_CG_L;
            for (r = 0; r < R; r++)
                for (l = 0; l < 4 * AL_CG_L; l++) acc(r)[l] = acc(r)[l] + bv[l];
        }
    } else {
        for (r = 0; r < R; r++)
            for (l = 0; l < 4 * AL_CG_L; l++) acc(r)[l] = a->pb ? a->pb[p * 4 * AL_CG_L + l] : (real)0;
        if (a->pW != NULL && D > 0) {
            const real *xr = a->x + r0 * a->ldx;
            AL_CG_KLOOP(xr, a->ldx, a->pW + p * D * 4 * AL_CG_L, D)
        }
    }
    if (a->h != NULL) {
        const real *hr = a->h + r0 * a->ldh;
        AL_CG_KLOOP(hr, a->ldh, a->pU + p * H * 4 * AL_CG_L, H)
    } else if (a->pz0 != NULL) {
        for (r = 0; r < R; r++)
            for (l = 0; l < 4 * AL_CG_L; l++) acc(r)[l] = acc(r)[l] + a->pz0[p * 4 * AL_CG_L + l];
    }

    for (r = 0; r < R; r++) {
        const size_t row = r0 + r;
        const int keep = a->keep == NULL || a->keep[row * a->ldkeep];
        real *zb = acc(r);
        if (a->cp != NULL) {
            for (l = 0; l < AL_CG_L; l++) cpb[l] = l < n ? a->cp[row * a->ldcp + u + l] : (real)0;
            AL_SFN(lstm_cell_lanes)(zb, cpb, hb, cb, ab, AL_CG_L, a->act, a->ract);
        } else {
            AL_SFN(lstm_cell_lanes)(zb, NULL, hb, cb, ab, AL_CG_L, a->act, a->ract);
        }
        if (a->z != NULL) {
            real *z = a->z + row * a->ldz + u;
            for (q = 0; q < 4; q++)
                for (l = 0; l < n; l++) z[q * H + l] = zb[q * AL_CG_L + l];
        }
        if (!keep) continue;     /* the caller carries h, c and the output over */
        for (l = 0; l < n; l++) {
            a->hn[row * a->ldo + u + l] = hb[l];
            a->cn[row * a->ldo + u + l] = cb[l];
            if (a->ac != NULL) a->ac[row * a->ldo + u + l] = ab[l];
            if (a->on != NULL) a->on[row * a->ldo + u + l] = hb[l];
        }
    }
}
#undef acc

#define AL_CG_R(R_)                                                                           \
    static void AL_SFN(lstm_cell_r##R_##_gen)(const AL_SFN(lstm_cell_args) *a, size_t r0,     \
                                              size_t p, size_t n) {                           \
        AL_SFN(lstm_cell_tile_gen)(R_, a, r0, p, n);                                          \
    }
AL_CG_R(1) AL_CG_R(2) AL_CG_R(3)
#undef AL_CG_R
#undef AL_CG_KLOOP
#undef AL_CG_L

typedef void (*AL_SFN(lstm_cell_fn))(const AL_SFN(lstm_cell_args) *, size_t, size_t, size_t);

/* The fused step for rows [r0, r1) and panels [p0, p1) (any AL_PG_* path). Panels
 * outermost, so a panel of U stays in cache across the row tiles. AVX2 and AVX-512 take the
 * panel form (lstm_cell_tile.h); the generic path tiles of near-equal height, each row computed
 * by the same operations whatever its tile. */
static void AL_SFN(lstm_cell_step)(int isa, const AL_SFN(lstm_cell_args) *a, size_t r0,
                                   size_t r1, size_t p0, size_t p1) {
    static const AL_SFN(lstm_cell_fn) fgen[4] = {
        NULL, AL_SFN(lstm_cell_r1_gen), AL_SFN(lstm_cell_r2_gen), AL_SFN(lstm_cell_r3_gen)};
    const size_t L = AL_SFN(al_cell_lanes)(isa), rmax = 3;
    const size_t M = r1 - r0, ntile = (M + rmax - 1) / rmax;
    size_t p, i, r, j;
    if (M == 0) return;
#if AL_PG_X86
    if (M == 1 && (isa == AL_PG_AVX512 || (isa == AL_PG_AVX2 && al_avx2_row_panels() == 2))) {
        /* one row: four panels per tile on AVX-512, two on AVX2 where al_avx2_row_panels
         * says so (lstm_cell_panels1) */
        const size_t np = isa == AL_PG_AVX512 ? 4 : 2, ng = (p1 - p0 + np - 1) / np;
        size_t g;
        for (g = 0; g < ng; g++) {
            p = p0 + np * (a->rev ? ng - 1 - g : g);
            if (isa == AL_PG_AVX512)
                AL_SFN(lstm_cell_panels1_512)(a, r0, p, p1 - p < np ? p1 - p : np);
            else
                AL_SFN(lstm_cell_panels1_256)(a, r0, p, p1 - p < np ? p1 - p : np);
        }
        return;
    }
#endif
    for (j = 0; j < p1 - p0; j++) {
        size_t n;
        p = a->rev ? p1 - 1 - j : p0 + j;
        n = a->H - p * L < L ? a->H - p * L : L;
#if AL_PG_X86
        if (isa == AL_PG_AVX2) {
            AL_SFN(lstm_cell_panel_256)(a, r0, r1, p, n);
            continue;
        }
        if (isa == AL_PG_AVX512) {
            AL_SFN(lstm_cell_panel_512)(a, r0, r1, p, n);
            continue;
        }
#endif
        for (i = 0, r = r0; i < ntile; i++) {
            const size_t R = M / ntile + (i < M % ntile ? 1 : 0);
            fgen[R](a, r, p, n);
            r += R;
        }
    }
}
