/*
 * lstm_pgemm_impl.h -- the packed-panel GEMM of lstm_pgemm.h for one floating type; part of the
 * type template (al_real.h): al_pg_gemm_f32 / al_pg_gemm_f64 and their packing helpers.
 *
 * A panel is 4 vectors wide: NC = 64 floats or 32 doubles with AVX-512, 32 floats or 16
 * doubles with AVX2, 16 floats or 8 doubles on the generic path (4 SSE2 vectors, which the
 * compiler's vectoriser uses on x86-64). A register tile holds R x 4 vectors (R <= 6 with
 * AVX-512's 32 registers; R <= 6 with AVX2's 16, in two passes of R x 2 vectors; R <= 3 with
 * SSE2's 16).
 */
#if defined(AL_REAL_F32)
#  define AL_PG_V512 __m512
#  define AL_PG_M512 __mmask16
#  define AL_PG_L512 16
#  define AL_PG_FMA512 _mm512_fmadd_ps
#  define AL_PG_ADD512 _mm512_add_ps
#  define AL_PG_SET1_512 _mm512_set1_ps
#  define AL_PG_ZERO512 _mm512_setzero_ps
#  define AL_PG_LOAD512 _mm512_loadu_ps
#  define AL_PG_MLOAD512 _mm512_maskz_loadu_ps
#  define AL_PG_MSTORE512 _mm512_mask_storeu_ps
#  define AL_PG_V256 __m256
#  define AL_PG_L256 8
#  define AL_PG_FMA256 _mm256_fmadd_ps
#  define AL_PG_ADD256 _mm256_add_ps
#  define AL_PG_BCAST256 _mm256_broadcast_ss
#  define AL_PG_ZERO256 _mm256_setzero_ps
#  define AL_PG_LOAD256 _mm256_loadu_ps
#  define AL_PG_MLOAD256 _mm256_maskload_ps
#  define AL_PG_MSTORE256 _mm256_maskstore_ps
#  define AL_PG_STORE256 _mm256_storeu_ps
#  define AL_PG_LANE_T int32_t
#  define AL_PG_LGEN 4
#  define AL_PG_L512_N 16
#  define AL_PG_L256_N 8
#else
#  define AL_PG_V512 __m512d
#  define AL_PG_M512 __mmask8
#  define AL_PG_L512 8
#  define AL_PG_FMA512 _mm512_fmadd_pd
#  define AL_PG_ADD512 _mm512_add_pd
#  define AL_PG_SET1_512 _mm512_set1_pd
#  define AL_PG_ZERO512 _mm512_setzero_pd
#  define AL_PG_LOAD512 _mm512_loadu_pd
#  define AL_PG_MLOAD512 _mm512_maskz_loadu_pd
#  define AL_PG_MSTORE512 _mm512_mask_storeu_pd
#  define AL_PG_V256 __m256d
#  define AL_PG_L256 4
#  define AL_PG_FMA256 _mm256_fmadd_pd
#  define AL_PG_ADD256 _mm256_add_pd
#  define AL_PG_BCAST256 _mm256_broadcast_sd
#  define AL_PG_ZERO256 _mm256_setzero_pd
#  define AL_PG_LOAD256 _mm256_loadu_pd
#  define AL_PG_MLOAD256 _mm256_maskload_pd
#  define AL_PG_MSTORE256 _mm256_maskstore_pd
#  define AL_PG_STORE256 _mm256_storeu_pd
#  define AL_PG_LANE_T int64_t
#  define AL_PG_LGEN 2
#  define AL_PG_L512_N 8
#  define AL_PG_L256_N 4
#endif

/* Panel width (elements) for an ISA: four vectors. */
static size_t AL_SFN(al_pg_nc)(int isa) {
    return isa == AL_PG_AVX512 ? 4 * AL_PG_L512_N : isa == AL_PG_AVX2 ? 4 * AL_PG_L256_N
                                                                       : 4 * AL_PG_LGEN;
}

/* Number of elements of a packed (K, N) matrix. */
static size_t AL_SFN(al_pg_size)(int isa, size_t K, size_t N) {
    const size_t nc = AL_SFN(al_pg_nc)(isa);
    return ((N + nc - 1) / nc) * K * nc;
}

#if AL_PG_X86
/* D[j][i] = S[i][j] for one square block of AL_PG_L256 x AL_PG_L256 reals (8 x 8 floats or
 * 4 x 4 doubles), rows of S lds reals apart and rows of D ldd apart: the transposed packs'
 * blocks (al_pg_pack, trans = 1) on both vector paths (every AVX-512 CPU has AVX2). A copy:
 * the same bits as the scalar loop. */
__attribute__((target("avx2"))) static inline void AL_SFN(al_pg_tr_block256)(
    real *D, size_t ldd, const real *S, size_t lds) {
#if defined(AL_REAL_F32)
    __m256 r0 = _mm256_loadu_ps(S), r1 = _mm256_loadu_ps(S + lds);
    __m256 r2 = _mm256_loadu_ps(S + 2 * lds), r3 = _mm256_loadu_ps(S + 3 * lds);
    __m256 r4 = _mm256_loadu_ps(S + 4 * lds), r5 = _mm256_loadu_ps(S + 5 * lds);
    __m256 r6 = _mm256_loadu_ps(S + 6 * lds), r7 = _mm256_loadu_ps(S + 7 * lds);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(D, _mm256_permute2f128_ps(s0, s4, 0x20));
    _mm256_storeu_ps(D + ldd, _mm256_permute2f128_ps(s1, s5, 0x20));
    _mm256_storeu_ps(D + 2 * ldd, _mm256_permute2f128_ps(s2, s6, 0x20));
    _mm256_storeu_ps(D + 3 * ldd, _mm256_permute2f128_ps(s3, s7, 0x20));
    _mm256_storeu_ps(D + 4 * ldd, _mm256_permute2f128_ps(s0, s4, 0x31));
    _mm256_storeu_ps(D + 5 * ldd, _mm256_permute2f128_ps(s1, s5, 0x31));
    _mm256_storeu_ps(D + 6 * ldd, _mm256_permute2f128_ps(s2, s6, 0x31));
    _mm256_storeu_ps(D + 7 * ldd, _mm256_permute2f128_ps(s3, s7, 0x31));
#else
    __m256d r0 = _mm256_loadu_pd(S), r1 = _mm256_loadu_pd(S + lds);
    __m256d r2 = _mm256_loadu_pd(S + 2 * lds), r3 = _mm256_loadu_pd(S + 3 * lds);
    __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1);
    __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
    _mm256_storeu_pd(D, _mm256_permute2f128_pd(t0, t2, 0x20));
    _mm256_storeu_pd(D + ldd, _mm256_permute2f128_pd(t1, t3, 0x20));
    _mm256_storeu_pd(D + 2 * ldd, _mm256_permute2f128_pd(t0, t2, 0x31));
    _mm256_storeu_pd(D + 3 * ldd, _mm256_permute2f128_pd(t1, t3, 0x31));
#endif
}

/* The whole blocks of a transposed pack's panel (see al_pg_pack): rows [0, wb) of Bm, k in
 * [0, kb), both multiples of AL_PG_L256, one cache line of k at a time for every block row. */
__attribute__((target("avx2"))) static void AL_SFN(al_pg_tr_panel256)(
    real *dst, size_t nc, const real *src, size_t ldb, size_t kb, size_t wb) {
    enum { B = AL_PG_L256, KL = 64 / sizeof(real) };
    size_t k0, k, c0;
    for (k0 = 0; k0 < kb; k0 += KL) {
        const size_t k1 = kb - k0 < KL ? kb : k0 + KL;
        for (c0 = 0; c0 < wb; c0 += B)
            for (k = k0; k < k1; k += B)
                AL_SFN(al_pg_tr_block256)(dst + k * nc + c0, nc, src + c0 * ldb + k, ldb);
    }
}
#endif

#ifndef AL_PG_TKB
#define AL_PG_TKB 64   /* k per block of the scalar transposed pack (al_pg_pack) */
#endif

/* P = pack(Bm), Bm (K, N) with row stride ldb (trans = 0), or Bm^T where Bm is (N, K) with row
 * stride ldb (trans = 1). */
static void AL_SFN(al_pg_pack)(int isa, real *P, const real *Bm, size_t ldb, int trans,
                               size_t K, size_t N) {
    const size_t nc = AL_SFN(al_pg_nc)(isa);
    size_t p, k, c, n0;
    if (!trans) {
        /* row by row of Bm, so the hardware prefetchers stream it (panel by panel, the rows of
         * a panel are ldb reals apart); each panel's rows are written in order */
        for (k = 0; k < K; k++) {
            for (p = 0, n0 = 0; n0 < N; p++, n0 += nc) {
                const real *src = Bm + k * ldb + n0;
                real *d = P + (p * K + k) * nc;
                const size_t w = N - n0 < nc ? N - n0 : nc;
                for (c = 0; c < w; c++) d[c] = src[c];
                for (; c < nc; c++) d[c] = (real)0;
            }
        }
        return;
    }
    /* dst[k][c] = Bm[n0 + c][k]. On the vector paths the whole 8 x 8 (4 x 4) blocks by
     * register transposes (al_pg_tr_panel256), a cache line of each row of Bm at a time; the
     * rest, and the generic path, in blocks of AL_PG_TKB k (reading a row's AL_PG_TKB reals,
     * writing a column of the block's panel rows, which stay in L1). All scalar, 16 k at a
     * time, the backward's pack of U^T was 23% of an LSTM forward+backward (1, 50, 64, 512)
     * on the Zen 4 (benchmarks/NOTES.md). */
    for (p = 0, n0 = 0; n0 < N; p++, n0 += nc) {
        real *dst = P + p * K * nc;
        const size_t w = N - n0 < nc ? N - n0 : nc;
        const real *src = Bm + n0 * ldb;
        size_t k0, k1, kb = 0, wb = 0;
#if AL_PG_X86
        if (isa != AL_PG_GENERIC) {
            kb = K / AL_PG_L256 * AL_PG_L256;
            wb = w / AL_PG_L256 * AL_PG_L256;
            AL_SFN(al_pg_tr_panel256)(dst, nc, src, ldb, kb, wb);
        }
#endif
        for (k0 = 0; k0 < K; k0 = k1) {
            k1 = K - k0 < AL_PG_TKB ? K : k0 + AL_PG_TKB;
            for (c = 0; c < w; c++) {
                /* rows [0, wb) have k in [0, kb) from the blocks already */
                const size_t ks = c < wb && kb > k0 ? kb : k0;
                for (k = ks; k < k1; k++) dst[k * nc + c] = src[c * ldb + k];
            }
            for (; c < nc; c++) {
                for (k = k0; k < k1; k++) dst[k * nc + c] = (real)0;
            }
        }
    }
}

#if AL_PG_X86
/*
 * One R x 4-vector tile, AVX-512: acc[r][v] over the whole K, k in order, so a row's result
 * does not depend on the tile height (predict gives the same numbers for any batch size; a
 * split odd/even-k accumulator for R <= 2 broke that and gained little). ncols (1..NC) valid
 * columns: loads and stores are masked, the padded panel needs no tail.
 */
__attribute__((target("avx512f"), always_inline)) static inline void
AL_SFN(al_pg512_tile)(const int R, real *C, size_t ldc, const real *A, size_t lda, size_t ak,
                      const real *P, const real *bias, int beta, size_t K, size_t ncols,
                      size_t ldp) {
    AL_PG_V512 acc[6][4];
    AL_PG_M512 m[4];
    size_t k;
    int r, v;
    for (v = 0; v < 4; v++) {
        const long rem = (long)ncols - AL_PG_L512 * v;
        m[v] = rem >= AL_PG_L512 ? (AL_PG_M512)((1u << AL_PG_L512) - 1u)
             : rem <= 0 ? (AL_PG_M512)0 : (AL_PG_M512)((1u << rem) - 1u);
    }
    for (v = 0; v < 4; v++) {
        const AL_PG_V512 bv = bias ? AL_PG_MLOAD512(m[v], bias + AL_PG_L512 * v) : AL_PG_ZERO512();
        for (r = 0; r < R; r++) {
            const AL_PG_V512 cv = beta ? AL_PG_MLOAD512(m[v], C + r * ldc + AL_PG_L512 * v) : bv;
            acc[r][v] = beta && bias ? AL_PG_ADD512(bv, cv) : cv;
        }
    }
    for (k = 0; k < K; k++) {
        const real *u = P + k * ldp;
        const AL_PG_V512 u0 = AL_PG_LOAD512(u), u1 = AL_PG_LOAD512(u + AL_PG_L512),
                         u2 = AL_PG_LOAD512(u + 2 * AL_PG_L512),
                         u3 = AL_PG_LOAD512(u + 3 * AL_PG_L512);
        for (r = 0; r < R; r++) {
            const AL_PG_V512 a = AL_PG_SET1_512(A[r * lda + k * ak]);
            acc[r][0] = AL_PG_FMA512(a, u0, acc[r][0]);
            acc[r][1] = AL_PG_FMA512(a, u1, acc[r][1]);
            acc[r][2] = AL_PG_FMA512(a, u2, acc[r][2]);
            acc[r][3] = AL_PG_FMA512(a, u3, acc[r][3]);
        }
    }
    for (r = 0; r < R; r++)
        for (v = 0; v < 4; v++) AL_PG_MSTORE512(C + r * ldc + AL_PG_L512 * v, m[v], acc[r][v]);
}

#define AL_PG512_R(R_)                                                                          \
    __attribute__((target("avx512f"))) static void AL_SFN(al_pg512_r##R_)(                      \
        real *C, size_t ldc, const real *A, size_t lda, size_t ak, const real *P,               \
        const real *bias, int beta, size_t K, size_t ncols, size_t ldp) {                       \
        AL_SFN(al_pg512_tile)(R_, C, ldc, A, lda, ak, P, bias, beta, K, ncols, ldp);            \
    }
AL_PG512_R(1) AL_PG512_R(2) AL_PG512_R(3) AL_PG512_R(4) AL_PG512_R(5) AL_PG512_R(6)
#undef AL_PG512_R

/* One R x 4-vector tile, AVX2 + FMA (R <= 6), in two passes of R x 2 vectors (columns
 * [0, 2L) then [2L, 4L)): 12 accumulators of AVX2's 16 registers, 64 bytes of the panel per k
 * for 12 FMAs where one R x 4 pass (R <= 3) needed 128 (benchmarks/NOTES.md); one and two rows
 * take one pass of R x 4. Each element is still one chain over k in order from its
 * start (the same bits as al_pg512_tile). */
__attribute__((target("avx2,fma"), always_inline)) static inline void
AL_SFN(al_pg256_tile)(const int R, real *C, size_t ldc, const real *A, size_t lda, size_t ak,
                      const real *P, const real *bias, int beta, size_t K, size_t ncols,
                      size_t ldp) {
    AL_PG_V256 acc[6][4];
    __m256i m[4];
    size_t k;
    int r, v, l, pass;
    for (v = 0; v < 4; v++) {
        AL_PG_LANE_T lanes[AL_PG_L256];
        for (l = 0; l < AL_PG_L256; l++) lanes[l] = (size_t)(AL_PG_L256 * v + l) < ncols ? -1 : 0;
        m[v] = _mm256_loadu_si256((const __m256i *)lanes);
    }
    /* one and two rows: one pass of R x 4 vectors. Two passes left 2 (R = 1) or 4 accumulators
     * a pass, whose FMA chains bound the step (4 cycles each): the one-sample backward's
     * dZ_t U^T ran at a quarter of the FMA peak (benchmarks/NOTES.md, 2026-12-08) */
    const int W = R <= 2 ? 4 : 2;
    for (pass = 0; pass < 4 / W; pass++) {
        const int v0 = W * pass;
        if (ncols <= (size_t)(AL_PG_L256 * v0)) break;      /* no valid column in this pass */
        for (v = 0; v < W; v++) {
            const AL_PG_V256 bv = bias ? AL_PG_MLOAD256(bias + AL_PG_L256 * (v0 + v), m[v0 + v])
                                       : AL_PG_ZERO256();
            for (r = 0; r < R; r++) {
                const AL_PG_V256 cv =
                    beta ? AL_PG_MLOAD256(C + r * ldc + AL_PG_L256 * (v0 + v), m[v0 + v]) : bv;
                acc[r][v] = beta && bias ? AL_PG_ADD256(bv, cv) : cv;
            }
        }
        for (k = 0; k < K; k++) {
            const real *u = P + k * ldp + AL_PG_L256 * v0;
            AL_PG_V256 uv[4];
            for (v = 0; v < W; v++) uv[v] = AL_PG_LOAD256(u + AL_PG_L256 * v);
            for (r = 0; r < R; r++) {
                const AL_PG_V256 a = AL_PG_BCAST256(A + r * lda + k * ak);
                for (v = 0; v < W; v++) acc[r][v] = AL_PG_FMA256(a, uv[v], acc[r][v]);
            }
        }
        /* whole vectors store plainly: AVX2's masked store is microcoded on AMD cores (the
         * LSTM cell's, csrc/lstm_cell_tile.h); the same values */
        for (r = 0; r < R; r++)
            for (v = 0; v < W; v++) {
                real *cp = C + r * ldc + AL_PG_L256 * (v0 + v);
                if (ncols >= (size_t)(AL_PG_L256 * (v0 + v + 1))) AL_PG_STORE256(cp, acc[r][v]);
                else AL_PG_MSTORE256(cp, m[v0 + v], acc[r][v]);
            }
    }
}

#define AL_PG256_R(R_)                                                                          \
    __attribute__((target("avx2,fma"))) static void AL_SFN(al_pg256_r##R_)(                     \
        real *C, size_t ldc, const real *A, size_t lda, size_t ak, const real *P,               \
        const real *bias, int beta, size_t K, size_t ncols, size_t ldp) {                       \
        AL_SFN(al_pg256_tile)(R_, C, ldc, A, lda, ak, P, bias, beta, K, ncols, ldp);            \
    }
AL_PG256_R(1) AL_PG256_R(2) AL_PG256_R(3) AL_PG256_R(4) AL_PG256_R(5) AL_PG256_R(6)
#undef AL_PG256_R
#endif /* AL_PG_X86 */

/* One R x NC tile of the generic path (portable C with GCC/Clang vector types of 16 bytes, which
 * x86-64's baseline SSE2 runs; any compiler target else): the same scheme as the vector tiles
 * (the bias, or C, or 0 first; then k in order), with a separate multiply and add where they
 * fuse (the baseline has no FMA). Lane by lane the same operations as scalar code. */
#define AL_PGG_NC (4 * AL_PG_LGEN)
typedef real AL_SFN(al_vgen) __attribute__((vector_size(16)));
typedef union { AL_SFN(al_vgen) v[4]; real s[AL_PGG_NC]; } AL_SFN(al_vgen4);
static inline __attribute__((always_inline)) void
AL_SFN(al_pgg_tile)(const int R, real *C, size_t ldc, const real *A, size_t lda, size_t ak,
                    const real *P, const real *bias, int beta, size_t K, size_t ncols,
                    size_t ldp) {
    AL_SFN(al_vgen4) acc[3];
    size_t k, c;
    int r, q;
    for (r = 0; r < R; r++) {
        for (c = 0; c < AL_PGG_NC; c++) {
            const real bv = bias != NULL && c < ncols ? bias[c] : (real)0;
            const real cv = beta && c < ncols ? C[r * ldc + c] : bv;
            acc[r].s[c] = beta && bias != NULL ? bv + cv : cv;
        }
    }
    for (k = 0; k < K; k++) {
        const real *u = P + k * ldp;
        AL_SFN(al_vgen) uv[4];
        memcpy(uv, u, sizeof uv);
        for (r = 0; r < R; r++) {
            const AL_SFN(al_vgen) av = (AL_SFN(al_vgen)){0} + A[r * lda + k * ak];
            for (q = 0; q < 4; q++) acc[r].v[q] = acc[r].v[q] + av * uv[q];
        }
    }
    for (r = 0; r < R; r++)
        for (c = 0; c < ncols; c++) C[r * ldc + c] = acc[r].s[c];
}

#define AL_PGG_R(R_)                                                                            \
    static void AL_SFN(al_pgg_r##R_)(real *C, size_t ldc, const real *A, size_t lda, size_t ak, \
                                     const real *P, const real *bias, int beta, size_t K,       \
                                     size_t ncols, size_t ldp) {                                \
        AL_SFN(al_pgg_tile)(R_, C, ldc, A, lda, ak, P, bias, beta, K, ncols, ldp);              \
    }
AL_PGG_R(1) AL_PGG_R(2) AL_PGG_R(3)
#undef AL_PGG_R
#undef AL_PGG_NC

/* dst (N, M; ldd) = src (M, N; lds)^T, in 16 x 16 blocks. */
static void AL_SFN(al_pg_transpose)(real *dst, size_t ldd, const real *src, size_t lds,
                                    size_t M, size_t N) {
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

#ifndef AL_PG_KBLOCK_BYTES
#  define AL_PG_KBLOCK_BYTES ((size_t)1024 << 10)
#  define AL_PG_AKB 256
#endif

typedef void (*AL_SFN(al_pg_tile_fn))(real *, size_t, const real *, size_t, size_t,
                                      const real *, const real *, int, size_t, size_t, size_t);

/* The isa's row tiles, indexed by the tile's height R (1..al_pg_rmax(isa)). */
static const AL_SFN(al_pg_tile_fn) *AL_SFN(al_pg_tiles)(int isa) {
    static const AL_SFN(al_pg_tile_fn) fgen[4] = {NULL, AL_SFN(al_pgg_r1), AL_SFN(al_pgg_r2),
                                                  AL_SFN(al_pgg_r3)};
#if AL_PG_X86
    static const AL_SFN(al_pg_tile_fn) f512[7] = {
        NULL, AL_SFN(al_pg512_r1), AL_SFN(al_pg512_r2), AL_SFN(al_pg512_r3),
        AL_SFN(al_pg512_r4), AL_SFN(al_pg512_r5), AL_SFN(al_pg512_r6)};
    static const AL_SFN(al_pg_tile_fn) f256[7] = {
        NULL, AL_SFN(al_pg256_r1), AL_SFN(al_pg256_r2), AL_SFN(al_pg256_r3),
        AL_SFN(al_pg256_r4), AL_SFN(al_pg256_r5), AL_SFN(al_pg256_r6)};
    return isa == AL_PG_AVX512 ? f512 : isa == AL_PG_AVX2 ? f256 : fgen;
#else
    (void)isa;
    return fgen;
#endif
}

/*
 * C (M, N; ldc) = beta C + bias (N, or NULL) + A (M, K) P, P = al_pg_pack(isa, ..., K, N),
 * A[m][k] at A + m lda + k ak (ak = 1: row-major; lda = 1, ak = its row stride: a transposed
 * matrix). ldp = 0 for a packed P; ldp > 0 reads an unpacked (K, N) P with row stride ldp
 * (N must then be a multiple of the panel width). Any AL_PG_* path. Panels
 * outermost (a panel stays in L1/L2 across the row tiles); rows split into ceil(M / rmax)
 * tiles of near-equal height. rev: the panels in descending order (each panel's columns are
 * computed alone, so the same bits): a recurrence whose operand outgrows the L2 alternates the
 * order step by step, so the panels it used last are still cached when the next step starts.
 */
static void AL_SFN(al_pg_gemm_ps_dir)(int isa, real *C, size_t ldc, const real *A, size_t lda,
                                      size_t ak, const real *P, size_t ldp, size_t ps,
                                      const real *bias, int beta, size_t M, size_t N, size_t K,
                                      int rev) {
    const AL_SFN(al_pg_tile_fn) *fn = AL_SFN(al_pg_tiles)(isa);
    const size_t nc = AL_SFN(al_pg_nc)(isa), rmax = al_pg_rmax(isa);
    const size_t ntile = (M + rmax - 1) / rmax;
    /* K in blocks whose panel slice (kb x nc) stays in the L2 while the row tiles stream it
     * (the backward's weight gradients have K = B*T); a block after the first continues from
     * the C the previous one stored, which is the accumulator's exact value: the same chain
     * over k, so the same bits as one block. */
    const size_t kb = AL_PG_KBLOCK_BYTES / (nc * sizeof(real)), np = (N + nc - 1) / nc;
    size_t j, k0;
    if (M == 0) return;
    if (ak != 1 && lda == 1 && K > 0 && (N > nc || ak * sizeof(real) >= 4096)) {
        /* A transposed (A[m][k] at A + m + k ak: the backward's dZ^T): each k of a row tile
         * would touch another cache line and page of A, once per panel. Instead each block of
         * AL_PG_AKB k is transposed into a row-major (M, kb) buffer first (rows of A read
         * contiguously), then multiplied as usual; the chains over k are the same. Only where
         * the copy serves several panels (N > nc) or A's rows are a page or more apart; on a
         * failed allocation the strided reads below serve. */
        real *abuf = (real *)malloc(M * AL_PG_AKB * sizeof(real));
        if (abuf != NULL) {
            for (k0 = 0; k0 < K; k0 += AL_PG_AKB) {
                const size_t kl = K - k0 < AL_PG_AKB ? K - k0 : AL_PG_AKB;
                AL_SFN(al_pg_transpose)(abuf, kl, A + k0 * ak, ak, kl, M);
                AL_SFN(al_pg_gemm_ps_dir)(isa, C, ldc, abuf, kl, 1,
                                          ldp ? P + k0 * ldp : P + k0 * nc, ldp, ps,
                                          k0 == 0 ? bias : NULL, k0 == 0 ? beta : 1, M, N, kl,
                                          rev);
            }
            free(abuf);
            return;
        }
    }
    for (k0 = 0; k0 < K || k0 == 0; k0 += kb) {
        const size_t kl = K - k0 < kb ? K - k0 : kb;
        const real *bk = k0 == 0 ? bias : NULL;
        const int betak = k0 == 0 ? beta : 1;
        for (j = 0; j < np; j++) {
            const size_t p = rev ? np - 1 - j : j, n0 = p * nc;
            const size_t w = N - n0 < nc ? N - n0 : nc;
            const real *Pp = ldp ? P + n0 + k0 * ldp : P + p * ps + k0 * nc;
            size_t i, r0 = 0;
            for (i = 0; i < ntile; i++) {
                /* tile heights differ by at most one */
                const size_t R = M / ntile + (i < M % ntile ? 1 : 0);
                fn[R](C + r0 * ldc + n0, ldc, A + r0 * lda + k0 * ak, lda, ak, Pp,
                      bk ? bk + n0 : NULL, betak, kl, w, ldp ? ldp : nc);
                r0 += R;
            }
        }
        if (K == 0) break;
    }
}

/* al_pg_gemm_ps_dir with the panels in ascending order. */
static void AL_SFN(al_pg_gemm_ps)(int isa, real *C, size_t ldc, const real *A, size_t lda,
                                  size_t ak, const real *P, size_t ldp, size_t ps,
                                  const real *bias, int beta, size_t M, size_t N, size_t K) {
    AL_SFN(al_pg_gemm_ps_dir)(isa, C, ldc, A, lda, ak, P, ldp, ps, bias, beta, M, N, K, 0);
}

/* One product of al_pg_gemm_tn: C (M, N; ldc) = A^T Z, A (K, M; row stride lda). */
typedef struct {
    real *C;
    size_t ldc;
    const real *A;
    size_t lda, M;
} AL_SFN(al_pg_tn);

#ifndef AL_PG_TN_KC
#  define AL_PG_TN_KC 512
#endif

/* Rows of Z per block of al_pg_gemm_tn. Each block re-reads C, which outgrows L2 at large H
 * (dU+dW is 18 MB at H=1024), and that reload, not the panel (kc x nc, 128 KiB for AVX-512
 * float32) leaving L1, is what costs: 128 -> 256 -> 512 rows took dU+dW at (64, 20, 64, 1024)
 * from 93 to 82 to 80 ms (benchmarks/NOTES.md). */
static size_t AL_SFN(al_pg_tn_kc)(int isa) {
    (void)isa;
    return AL_PG_TN_KC;
}

/* Elements of the buffer al_pg_gemm_tn needs for ncols columns of Z and blocks of kc rows,
 * with products whose rows (the M of each) add up to at most mrows. */
static size_t AL_SFN(al_pg_tn_size)(int isa, size_t ncols, size_t mrows, size_t kc) {
    return kc * (AL_SFN(al_pg_size)(isa, 1, ncols) + mrows);
}

/* This thread's columns [*n0, *n1) of n columns starting at base, split among nt threads by
 * whole panels (ceil(n / nc) of them): the column shares of al_pg_gemm_tn. */
static void AL_SFN(al_pg_tn_cols)(int isa, size_t base, size_t n, int nt, int tid, size_t *n0,
                                  size_t *n1) {
    const size_t nc = AL_SFN(al_pg_nc)(isa);
    size_t q0, q1;
    al_split((n + nc - 1) / nc, nt, tid, &q0, &q1);
    *n0 = base + q0 * nc;
    *n1 = base + (q1 * nc < n ? q1 * nc : n);
}

/*
 * Columns [n0, n1) of nout products C = A^T Z that share Z (K, N; row stride ldz), each summed
 * over the K rows of A and Z: the weight gradients of the recurrent backwards (dU = Hd^T dZ
 * and dW = X^T dZ, K = B*T). Each element is one chain over the K rows in order from 0, on
 * the isa's tiles: the same bits for any column split, and the same as al_pg_gemm on a packed
 * Z. kc: rows per block (al_pg_tn_kc; the bits do not depend on it); buf: al_pg_tn_size(isa,
 * n1 - n0, sum of the products' M, kc) elements.
 *
 * Blocked over K: each block of kc rows of Z's columns is packed once, reading Z's rows
 * contiguously, into panels, and so is each product's block of A (kc x M), into one [k][r]
 * run per row tile (R rows); every row tile of every product then runs over each panel. The
 * next block continues from the C the last one stored (the accumulator's exact value). Z and
 * each A are read once from memory and contiguously; neither Z nor C is transposed (the
 * transposing forms these replace: benchmarks/NOTES.md).
 */
static void AL_SFN(al_pg_gemm_tn)(int isa, const AL_SFN(al_pg_tn) *out, int nout, const real *Z,
                                  size_t ldz, size_t n0, size_t n1, size_t K, size_t kc,
                                  real *buf) {
    const AL_SFN(al_pg_tile_fn) *fn = AL_SFN(al_pg_tiles)(isa);
    const size_t nc = AL_SFN(al_pg_nc)(isa), rmax = al_pg_rmax(isa);
    const size_t npan = n1 > n0 ? (n1 - n0 + nc - 1) / nc : 0;
    size_t k0, p, i, r0, kr, c;
    int o;
    if (npan == 0) return;
    if (K == 0) {
        for (o = 0; o < nout; o++)
            for (i = 0; i < out[o].M; i++)
                for (c = n0; c < n1; c++) out[o].C[i * out[o].ldc + c] = (real)0;
        return;
    }
    for (k0 = 0; k0 < K; k0 += kc) {
        const size_t kl = K - k0 < kc ? K - k0 : kc;
        real *pa = buf + npan * kl * nc;
        /* buf[p][kr][c] = Z[k0 + kr][n0 + p nc + c], zero past n1 */
        for (kr = 0; kr < kl; kr++) {
            const real *src = Z + (k0 + kr) * ldz + n0;
            for (p = 0; p < npan; p++) {
                const size_t w = n1 - n0 - p * nc < nc ? n1 - n0 - p * nc : nc;
                real *d = buf + (p * kl + kr) * nc;
                for (c = 0; c < w; c++) d[c] = src[p * nc + c];
                for (; c < nc; c++) d[c] = (real)0;
            }
        }
        /* then each product's A block: the tile of rows [r0, r0 + R) at pa + r0 kl, element
         * (kr, r) at kr R + r */
        for (o = 0; o < nout; o++) {
            const size_t M = out[o].M, lda = out[o].lda, ntile = (M + rmax - 1) / rmax;
            real *pao = pa;
            for (kr = 0; kr < kl; kr++) {
                const real *src = out[o].A + (k0 + kr) * lda;
                for (i = 0, r0 = 0; i < ntile; i++) {
                    const size_t R = M / ntile + (i < M % ntile ? 1 : 0);
                    real *d = pao + r0 * kl + kr * R;
                    for (c = 0; c < R; c++) d[c] = src[r0 + c];
                    r0 += R;
                }
            }
            pa += M * kl;
        }
        for (p = 0; p < npan; p++) {
            const size_t j0 = n0 + p * nc, w = n1 - j0 < nc ? n1 - j0 : nc;
            pa = buf + npan * kl * nc;
            for (o = 0; o < nout; o++) {
                const size_t M = out[o].M, ldc = out[o].ldc;
                const size_t ntile = (M + rmax - 1) / rmax;
                for (i = 0, r0 = 0; i < ntile; i++) {
                    const size_t R = M / ntile + (i < M % ntile ? 1 : 0);
                    if (k0 > 0 && i + 1 < ntile) {
                        /* the next tile's C rows: C is re-read every block and outgrows L2 */
                        const size_t R1 = M / ntile + (i + 1 < M % ntile ? 1 : 0);
                        size_t rr, cc;
                        for (rr = 0; rr < R1; rr++)
                            for (cc = 0; cc < w; cc += 64 / sizeof(real))
                                __builtin_prefetch(out[o].C + (r0 + R + rr) * ldc + j0 + cc, 1);
                    }
                    fn[R](out[o].C + r0 * ldc + j0, ldc, pa + r0 * kl, 1, R,
                          buf + p * kl * nc, NULL, k0 > 0, kl, w, nc);
                    r0 += R;
                }
                pa += M * kl;
            }
        }
    }
}

/* al_pg_gemm_ps with the panel stride of a packed (K, N) P. */
static void AL_SFN(al_pg_gemm)(int isa, real *C, size_t ldc, const real *A, size_t lda,
                               size_t ak, const real *P, size_t ldp, const real *bias, int beta,
                               size_t M, size_t N, size_t K) {
    AL_SFN(al_pg_gemm_ps)(isa, C, ldc, A, lda, ak, P, ldp, K * AL_SFN(al_pg_nc)(isa), bias, beta,
                          M, N, K);
}

#undef AL_PG_V512
#undef AL_PG_M512
#undef AL_PG_L512
#undef AL_PG_FMA512
#undef AL_PG_ADD512
#undef AL_PG_SET1_512
#undef AL_PG_ZERO512
#undef AL_PG_LOAD512
#undef AL_PG_MLOAD512
#undef AL_PG_MSTORE512
#undef AL_PG_V256
#undef AL_PG_L256
#undef AL_PG_FMA256
#undef AL_PG_ADD256
#undef AL_PG_BCAST256
#undef AL_PG_ZERO256
#undef AL_PG_LOAD256
#undef AL_PG_MLOAD256
#undef AL_PG_MSTORE256
#undef AL_PG_STORE256
#undef AL_PG_LANE_T
#undef AL_PG_LGEN
#undef AL_PG_L512_N
#undef AL_PG_L256_N
