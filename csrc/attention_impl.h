/*
 * attention_impl.h -- attention kernels, forward and backward; part of the type template
 * (al_real.h). Included twice by attention.c (float32, float64).
 *
 * Keras 3 semantics (keras/src/layers/attention/attention.py, additive_attention.py):
 *   dot:      S = scale * (Q K^T)                                              (B,Tq,Tv)
 *   concat:   S[b,i,j] = cw * sum_d tanh(scale * (Q[b,i,d] + K[b,j,d]))
 *   additive: S[b,i,j] = sum_u a[u] * tanh(q[b,i,u] + k[b,j,u])       (a = Keras `scale`)
 *   masked:   S[b,i,j] - 1e9 where key j is masked for query i (see al_attention.h)
 *   P = softmax(S, axis=-1) = exp(S - max) / sum          (the returned `weights`)
 *   out[b,i] = query_mask[b,i] ? P[b,i] V[b] : 0
 *
 * Backward: with G[b,i] = query_mask[b,i] ? dout[b,i] : 0,
 *   dV = P^T G,  dP = G V^T + dweights,  dS = P * (dP - rowsum(P * dP)),
 * then the score gradients of each mode. d(S - 1e9)/dS = 1, so masks need no special case
 * in backward: masked keys of partly masked rows have P == 0 exactly and get no gradient,
 * and a fully masked row, whose -1e9 shift cancels in the softmax in exact arithmetic, gets
 * the gradient of softmax(S) (the derivative of Keras' function, not of its float rounding
 * of S - 1e9).
 *
 * Scores of the tanh modes are computed one query row at a time (no (B,Tq,Tv,U) tensor):
 * the keys of a sample are transposed once into a padded (U,Tv) workspace so the vectorised
 * tanh runs over keys; the masked softmax is done in place on the (Tv) row of `weights`, and
 * the context is one GEMM per sample. Backward recomputes the tanh terms over (U) chunks on
 * the stack instead of saving them. The tanh is attnlstm's own (al_tanh_v, al_math.h: <= ~3
 * ulp from libm's), so that these loops vectorise.
 */

/* Hot loops are compiled for AVX-512, AVX2 and the baseline, the selected path's copy running
 * (AL_ISA_VERSIONS_VOID, al_common.h); the build itself stays portable. These loops are
 * elementwise or sum in a fixed order, and attention.c turns FP contraction off, so every
 * version computes the same bits (tests/test_isa_paths.py). (attention.c also sets
 * no-trapping-math, without which the tanh clamp blocks vectorisation.) */

/* Sets n reals to zero. */
static void AL_SFN(attn_zero)(real *p, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) p[i] = (real)0;
}

/*
 * Masks and softmax of one score row, in place: row (Tv) holds S[b,i,:] and receives
 * P[b,i,:]. value_mask (B,Tv), attention_mask (B,Tq,Tv) or NULL; causal keeps j <= i.
 */
static void AL_SFN(attn_mask_softmax_row)(real *row, size_t b, size_t i,
                                          const uint8_t *value_mask, const uint8_t *attention_mask,
                                          int causal, size_t Tq, size_t Tv) {
    const uint8_t *vm = value_mask ? value_mask + b * Tv : NULL;
    const uint8_t *am = attention_mask ? attention_mask + (b * Tq + i) * Tv : NULL;
    size_t j;
    if (Tv == 0) return;
    if (vm != NULL || am != NULL || causal) {
        for (j = 0; j < Tv; j++) {
            int keep = (vm == NULL || vm[j]) && (am == NULL || am[j]) && (!causal || j <= i);
            if (!keep) row[j] = row[j] - (real)AL_ATTN_MASK_PENALTY;
        }
    }
    AL_SFN(softmax_row)(row, NULL, Tv);
}

/* Elements per chunk of the (U) tanh buffers kept on the stack. */
#define AL_ATTN_CHUNK 256

/* t (n) = tanh(sigma (q + k)), vectorised. */
static inline __attribute__((always_inline)) void AL_SFN(attn_tanh_sum_body)(
    real *restrict t, const real *restrict q, const real *restrict k, real sigma, size_t n) {
    size_t u;
    for (u = 0; u < n; u++) t[u] = AL_SFN(al_tanh_v)(sigma * (q[u] + k[u]));
}
AL_ISA_VERSIONS_VOID(AL_SFN(attn_tanh_sum), AL_SFN(attn_tanh_sum_body),
                     (real *restrict t, const real *restrict q, const real *restrict k,
                      real sigma, size_t n), (t, q, k, sigma, n))

/* sum_u x[u] y[u] with 8 interleaved partial sums (vectorisable without reassociating
 * floating-point math at compile time; the order is fixed, so results do not depend on the
 * instruction set). */
static real AL_SFN(attn_dot8)(const real *x, const real *y, size_t n) {
    real s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t u, r;
    for (u = 0; u + 8 <= n; u += 8) {
        for (r = 0; r < 8; r++) s[r] += x[u + r] * y[u + r];
    }
    for (; u < n; u++) s[0] += x[u] * y[u];
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

/* Keys are padded to a multiple of this many entries in the tanh-score workspace, so the
 * vectorised loops over keys have no scalar remainder (16 floats = one AVX-512 register). */
#define AL_ATTN_PAD 16

/* row (Tvp) = sum_u a[u] tanh(sigma (qi[u] + kT[u, :])) for one query row, in order over u;
 * kT (U,Tvp) are the transposed, padded keys. */
static inline __attribute__((always_inline)) void AL_SFN(attn_tanh_scores_row_body)(
    real *restrict row, const real *restrict kT, const real *restrict qi,
    const real *restrict a, real sigma, size_t Tvp, size_t U) {
    size_t j, u;
    for (j = 0; j < Tvp; j++) row[j] = (real)0;
    for (u = 0; u < U; u++) {
        const real qiu = qi[u], au = a ? a[u] : (real)1;
        const real *kTu = kT + u * Tvp;
        for (j = 0; j < Tvp; j++) row[j] += au * AL_SFN(al_tanh_v)(sigma * (qiu + kTu[j]));
    }
}
AL_ISA_VERSIONS_VOID(AL_SFN(attn_tanh_scores_row), AL_SFN(attn_tanh_scores_row_body),
                     (real *restrict row, const real *restrict kT, const real *restrict qi,
                      const real *restrict a, real sigma, size_t Tvp, size_t U),
                     (row, kT, qi, a, sigma, Tvp, U))

/*
 * Tanh scores of one sample: S (Tq,Tv) = c * sum_u a[u] tanh(sigma (q[i,u] + k[j,u])),
 * q (Tq,U), k (Tv,U), a (U) or NULL for ones. Concat mode: a = NULL, sigma = scale,
 * c = concat_score_weight. Additive mode: a = scale, sigma = 1, c = 1 (exact, so the
 * rounding is Keras' `sum(scale * tanh(q + k))`). The keys are transposed once into the
 * workspace ws (U*Tvp + Tvp reals, Tvp = Tv rounded up to AL_ATTN_PAD) so the inner loop runs
 * over keys, elementwise; each score still sums over u in order.
 */
static void AL_SFN(attn_tanh_scores)(real *S, real *ws, const real *q, const real *k,
                                     const real *a, real sigma, real c,
                                     size_t Tq, size_t Tv, size_t U) {
    const size_t Tvp = (Tv + AL_ATTN_PAD - 1) / AL_ATTN_PAD * AL_ATTN_PAD;
    real *kT = ws, *row = ws + U * Tvp;
    size_t i, j, u;
    for (u = 0; u < U; u++) {
        for (j = 0; j < Tv; j++) kT[u * Tvp + j] = k[j * U + u];
        for (j = Tv; j < Tvp; j++) kT[u * Tvp + j] = (real)0;
    }
    for (i = 0; i < Tq; i++) {
        real *Si = S + i * Tv;
        AL_SFN(attn_tanh_scores_row)(row, kT, q + i * U, a, sigma, Tvp, U);
        if (c != (real)1) {
            for (j = 0; j < Tv; j++) Si[j] = c * row[j];
        } else {
            for (j = 0; j < Tv; j++) Si[j] = row[j];
        }
    }
}

/* One chunk of the tanh-score backward for a (i, j) pair, vectorised:
 * dz = gc a (1 - t^2);  dqi += sigma dz;  dkj += sigma dz;  da += gc t (da may be NULL);
 * zw = dz (qi + kj) for the sigma gradient. */
static inline __attribute__((always_inline)) void AL_SFN(attn_tanh_backward_chunk_body)(
                                             real *restrict zw, real *restrict dqi,
                                             real *restrict dkj, real *restrict da,
                                             const real *restrict t, const real *restrict a,
                                             const real *restrict qi, const real *restrict kj,
                                             real gc, real sigma, size_t n) {
    size_t u;
    for (u = 0; u < n; u++) {
        const real dz = gc * a[u] * ((real)1 - t[u] * t[u]);
        dqi[u] += sigma * dz;
        dkj[u] += sigma * dz;
        zw[u] = dz * (qi[u] + kj[u]);
    }
    if (da != NULL) {
        for (u = 0; u < n; u++) da[u] += gc * t[u];
    }
}
AL_ISA_VERSIONS_VOID(AL_SFN(attn_tanh_backward_chunk), AL_SFN(attn_tanh_backward_chunk_body),
                     (real *restrict zw, real *restrict dqi, real *restrict dkj,
                      real *restrict da, const real *restrict t, const real *restrict a,
                      const real *restrict qi, const real *restrict kj, real gc, real sigma,
                      size_t n), (zw, dqi, dkj, da, t, a, qi, kj, gc, sigma, n))

/*
 * Backward of attn_tanh_scores for one sample, given dS (Tq,Tv):
 *   dq (Tq,U), dk (Tv,U)  overwritten
 *   da (U)                accumulated (NULL: not wanted)
 *   *dsigma, *dc          accumulated (NULL: not wanted)
 * Entries with dS == 0 (masked keys of partly masked rows, zeroed query rows) are skipped:
 * their contribution is exactly zero.
 */
static void AL_SFN(attn_tanh_scores_backward)(real *dq, real *dk, real *da, double *dsigma,
                                              double *dc, const real *dS,
                                              const real *q, const real *k, const real *a,
                                              real sigma, real c,
                                              size_t Tq, size_t Tv, size_t U) {
    real t[AL_ATTN_CHUNK], zw[AL_ATTN_CHUNK], ones[AL_ATTN_CHUNK];
    size_t i, j, u, u0, n;
    double acc_sigma = 0.0, acc_c = 0.0;
    for (u = 0; u < AL_ATTN_CHUNK; u++) ones[u] = (real)1;
    for (i = 0; i < Tq * U; i++) dq[i] = (real)0;
    for (j = 0; j < Tv * U; j++) dk[j] = (real)0;
    for (i = 0; i < Tq; i++) {
        const real *qi = q + i * U;
        for (j = 0; j < Tv; j++) {
            const real g = dS[i * Tv + j];
            const real gc = g * c;
            const real *kj = k + j * U;
            real tsum = (real)0, zsum = (real)0;
            if (g == (real)0) continue;
            for (u0 = 0; u0 < U; u0 += n) {
                const real *au;
                n = U - u0 < AL_ATTN_CHUNK ? U - u0 : AL_ATTN_CHUNK;
                au = a ? a + u0 : ones;
                AL_SFN(attn_tanh_sum)(t, qi + u0, kj + u0, sigma, n);
                AL_SFN(attn_tanh_backward_chunk)(zw, dq + i * U + u0, dk + j * U + u0,
                                                 da ? da + u0 : NULL, t, au, qi + u0, kj + u0,
                                                 gc, sigma, n);
                if (dc != NULL) tsum += AL_SFN(attn_dot8)(au, t, n);
                if (dsigma != NULL) zsum += AL_SFN(attn_dot8)(ones, zw, n);
            }
            acc_sigma += (double)zsum;
            acc_c += (double)(g * tsum);
        }
    }
    if (dsigma != NULL) *dsigma += acc_sigma;
    if (dc != NULL) *dc += acc_c;
}

/* ------------------------------------------------------------------------------------------
 * Per-sample work on a team: every sample's products run on attnlstm's packed tiles
 * (al_bmm_impl.h), one sample per thread at a time, so a sample's bits depend neither on the
 * thread count nor on its neighbours (OpenBLAS called per sample split each small product
 * over the cores, and cannot be called from the pool's threads: benchmarks/NOTES.md).
 * ---------------------------------------------------------------------------------------- */

/* Threads for B samples of Tq x Tv scores and (D + Dv)-deep products: the budget, when the
 * call has AL_ATTN_TEAM_MIN multiply-adds (below it handing out the work costs more than it
 * saves), at most one per sample. */
static int AL_SFN(attn_team_size)(size_t B, size_t Tq, size_t Tv, size_t D, size_t Dv) {
    int nt = al_blas_threads();
    if (nt > 1 && (double)B * Tq * Tv * ((double)D + Dv + 8.0) < AL_ATTN_TEAM_MIN) nt = 1;
    if (nt > (int)B) nt = (int)B;
    return nt < 1 ? 1 : nt;
}

/* Reals of a packed (K, N) operand (al_pg_size in double, for the overflow check) and of
 * al_bmm_product's buffer. */
static double AL_SFN(attn_pg_reals)(int isa, size_t K, size_t N) {
    const double nc = (double)AL_SFN(al_pg_nc)(isa);
    return ceil((double)N / nc) * nc * (double)K;
}
static double AL_SFN(attn_nbuf_reals)(int isa, size_t K, size_t N) {
    return N < AL_BMM_DOT_N ? (double)N * K : AL_SFN(attn_pg_reals)(isa, K, N);
}

/* out (N, M; ldo) = Bm^T A for A (K, M; lda) and Bm (K, N; ldb) row-major (the backward's
 * dV = P^T G and dK = dS^T Q). From AL_BMM_DOT_N columns M: A packed as the panel operand and
 * Bm^T read in place as the tiles' transposed row operand (al_pg_gemm with ak = ldb). Below
 * it, as MHA's dv and dk (mha_bwd_block): At (M, K) = A^T, oT (M, N) = At Bm on the tiles
 * reading Bm's whole panels in place (al_bmm_gemm_rm: the long axis N is the panel axis),
 * out = oT^T. Scratch: At (al_pg_size(isa, K, M) reals, at least M K), oT (M N), tail (K nc). */
static void AL_SFN(attn_tn)(int isa, real *out, size_t ldo, const real *A, size_t lda,
                            const real *Bm, size_t ldb, real *At, real *oT, real *tail, size_t M,
                            size_t N, size_t K) {
    if (M >= AL_BMM_DOT_N) {
        /* measured: 13-30% faster than the transposes from M = 64 float32 columns; 1.2-2.4x
         * slower below (the panel mostly padding at M = 8 to 32; benchmarks/NOTES.md) */
        AL_SFN(al_pg_pack)(isa, At, A, lda, 0, K, M);
        AL_SFN(al_pg_gemm)(isa, out, ldo, Bm, 1, ldb, At, 0, NULL, 0, N, M, K);
        return;
    }
    AL_SFN(al_pg_transpose)(At, K, A, lda, K, M);
    AL_SFN(al_bmm_gemm_rm)(isa, oT, N, At, K, Bm, ldb, tail, M, N, K);
    AL_SFN(al_pg_transpose)(out, ldo, oT, N, M, N);
}

/*
 * Shared forward of every attention kind.
 *   out (B,Tq,Dv), weights (B,Tq,Tv); q (B,Tq,D), k (B,Tv,D), v (B,Tv,Dv).
 *   tanh_mode 0: S = scale * Q K^T (one product);  1: attn_tanh_scores(a, scale, c).
 * Samples are split over a team (attn_team_size); each thread's scratch holds the packed K^T
 * (or the tanh mode's transposed keys) and the context product's buffer.
 */
typedef struct {
    real *out, *weights, *scr;
    const real *q, *k, *v, *a;
    const uint8_t *query_mask, *value_mask, *attention_mask;
    real scale, c;
    size_t B, Tq, Tv, D, Dv, nscr, np;
    int tanh_mode, causal, isa;
} AL_SFN(attn_fwd_ctx);

static void AL_SFN(attn_fwd_sample)(const AL_SFN(attn_fwd_ctx) *c, size_t b, real *scr) {
    const size_t Tq = c->Tq, Tv = c->Tv, D = c->D, Dv = c->Dv;
    real *W = c->weights + b * Tq * Tv;
    real *ob = c->out + b * Tq * Dv;
    const real *qb = c->q + b * Tq * D, *kb = c->k + b * Tv * D, *vb = c->v + b * Tv * Dv;
    real *P = scr, *vbuf = scr + c->np;
    size_t i, j;
    if (!c->tanh_mode) {
        AL_SFN(al_pg_pack)(c->isa, P, kb, D, 1, D, Tv);
        AL_SFN(al_pg_gemm)(c->isa, W, Tv, qb, D, 1, P, 0, NULL, 0, Tq, Tv, D);
        /* Keras multiplies after the product: matmul(q, k^T) * scale (x * 1 is exact). */
        if (c->scale != (real)1) {
            for (j = 0; j < Tq * Tv; j++) W[j] *= c->scale;
        }
    } else {
        AL_SFN(attn_tanh_scores)(W, P, qb, kb, c->a, c->scale, c->c, Tq, Tv, D);
    }
    for (i = 0; i < Tq; i++) {
        AL_SFN(attn_mask_softmax_row)(W + i * Tv, b, i, c->value_mask, c->attention_mask,
                                      c->causal, Tq, Tv);
    }
    AL_SFN(al_bmm_product)(c->isa, ob, Dv, W, vb, Dv, vbuf, Tq, Tv, Dv);
    if (c->query_mask != NULL) {
        for (i = 0; i < Tq; i++) {
            if (!c->query_mask[b * Tq + i]) {
                for (j = 0; j < Dv; j++) ob[i * Dv + j] = (real)0;
            }
        }
    }
}

static void AL_SFN(attn_fwd_work)(void *arg, int tid, int nt) {
    const AL_SFN(attn_fwd_ctx) *c = (const AL_SFN(attn_fwd_ctx) *)arg;
    size_t b0, b1, b;
    al_split(c->B, nt, tid, &b0, &b1);
    for (b = b0; b < b1; b++) AL_SFN(attn_fwd_sample)(c, b, c->scr + (size_t)tid * c->nscr);
}

/* n reals of scratch per thread for nt threads, or NULL (also on overflow). */
static real *AL_SFN(attn_scratch)(double n, int nt) {
    const double bytes = (n + 8.0) * (double)nt * sizeof(real);
    if (bytes >= (double)((size_t)-1 / 2)) return NULL;
    return (real *)malloc((size_t)bytes);
}

static int AL_SFN(attn_forward_core)(real *out, real *weights,
                                     const real *q, const real *k, const real *v,
                                     const uint8_t *query_mask, const uint8_t *value_mask,
                                     const uint8_t *attention_mask,
                                     int tanh_mode, real scale, real c, const real *a,
                                     size_t B, size_t Tq, size_t Tv, size_t D, size_t Dv,
                                     int causal) {
    AL_SFN(attn_fwd_ctx) cx;
    const int isa = al_pg_isa_for(0);
    const size_t Tvp = (Tv + AL_ATTN_PAD - 1) / AL_ATTN_PAD * AL_ATTN_PAD;
    double np, nscr;
    int nt;
    /* Without queries or keys there is nothing to loop over (and B may be huge while every
     * array is empty): the context of no keys is an empty sum, 0. */
    if (Tq == 0 || Tv == 0) {
        AL_SFN(attn_zero)(out, B * Tq * Dv);
        return AL_OK;
    }
    if (B == 0) return AL_OK;
    /* packed K^T, or the tanh mode's transposed keys ((D + 1) Tvp); the context's buffer */
    np = tanh_mode ? ((double)D + 1.0) * (double)Tvp : AL_SFN(attn_pg_reals)(isa, D, Tv);
    nscr = np + AL_SFN(attn_nbuf_reals)(isa, Tv, Dv);
    nt = AL_SFN(attn_team_size)(B, Tq, Tv, D, Dv);
    cx.scr = AL_SFN(attn_scratch)(nscr, nt);
    if (cx.scr == NULL) return AL_ERR_NOMEM;
    cx.out = out; cx.weights = weights; cx.q = q; cx.k = k; cx.v = v; cx.a = a;
    cx.query_mask = query_mask; cx.value_mask = value_mask; cx.attention_mask = attention_mask;
    cx.scale = scale; cx.c = c; cx.B = B; cx.Tq = Tq; cx.Tv = Tv; cx.D = D; cx.Dv = Dv;
    cx.np = (size_t)np; cx.nscr = (size_t)nscr + 8; cx.tanh_mode = tanh_mode; cx.causal = causal;
    cx.isa = isa;
    al_team_go(nt, AL_SFN(attn_fwd_work), &cx, NULL);
    free(cx.scr);
    return AL_OK;
}

/*
 * The backward of every attention kind, one sample per thread at a time (the docstrings of
 * dot_attention_backward and additive_attention_backward give the math). Per-sample partial
 * sums of the scalar (or, additive, per-unit) score weights' gradients go to `part` / `da_part`
 * and are added in sample order by the caller, so the result does not depend on the split.
 */
typedef struct {
    real *dq, *dk, *dv, *scr;
    real *da_part;              /* additive: (B, U) per-sample gradients of `scale`, or NULL */
    double *part;               /* (B, 2): dot: dscale; concat: dsigma, dcw, per sample */
    const real *weights, *dout, *dweights, *q, *k, *v, *a;
    const uint8_t *query_mask;
    real scale, c;
    size_t B, Tq, Tv, D, Dv, nscr;
    int mode, isa;
} AL_SFN(attn_bwd_ctx);

/* Reals of one thread's scratch: dS, the query-masked weights, At, oT, the tail panel, and the
 * packed V^T / dQ product buffer (in double, for overflow). */
static double AL_SFN(attn_bwd_scratch)(int isa, size_t Tq, size_t Tv, size_t D, size_t Dv,
                                       int masked) {
    const size_t DM = D > Dv ? D : Dv;
    const double pv = AL_SFN(attn_pg_reals)(isa, Dv, Tv), pq = AL_SFN(attn_nbuf_reals)(isa, Tv, D);
    return (double)Tq * Tv * (masked ? 2.0 : 1.0) + AL_SFN(attn_pg_reals)(isa, Tq, DM) +
           (double)DM * Tv + (double)Tq * AL_SFN(al_pg_nc)(isa) + (pv > pq ? pv : pq) + 8.0;
}

/*
 * Sample b: with G = dout[b] (rows of masked queries dropped),
 *   dV = P^T G               (attn_tn, P with the masked queries' rows zeroed)
 *   dP = G V^T + dweights    (packed V^T)
 *   dS = P * (dP - rowsum(P * dP)), 0 on masked queries' rows
 * then dot: dQ = scale dS K, dscale = sum(Q * dS K), dK = scale dS^T Q; concat and additive:
 * attn_tanh_scores_backward.
 */
static void AL_SFN(attn_bwd_sample)(const AL_SFN(attn_bwd_ctx) *c, size_t b, real *scr) {
    const size_t Tq = c->Tq, Tv = c->Tv, D = c->D, Dv = c->Dv, TT = Tq * Tv;
    const size_t DM = D > Dv ? D : Dv;
    const int isa = c->isa;
    const real *W = c->weights + b * TT, *doutb = c->dout + b * Tq * Dv;
    const real *dwb = c->dweights ? c->dweights + b * TT : NULL;
    const real *qb = c->q + b * Tq * D, *kb = c->k + b * Tv * D, *vb = c->v + b * Tv * Dv;
    const uint8_t *qmb = c->query_mask ? c->query_mask + b * Tq : NULL;
    real *dqb = c->dq + b * Tq * D, *dkb = c->dk + b * Tv * D;
    /* the scratch in attn_bwd_scratch's order */
    real *dS = scr, *Wm = dS + TT, *At = Wm + (qmb ? TT : 0);
    real *oT = At + AL_SFN(al_pg_size)(isa, Tq, DM);
    real *tail = oT + DM * Tv, *pk = tail + Tq * AL_SFN(al_pg_nc)(isa);
    const real *Wd = W;
    size_t i, j, n;

    /* dV = P^T G: the rows of P whose output was zeroed by the query mask are dropped. */
    if (qmb != NULL) {
        for (i = 0; i < Tq; i++)
            for (j = 0; j < Tv; j++) Wm[i * Tv + j] = qmb[i] ? W[i * Tv + j] : (real)0;
        Wd = Wm;
    }
    AL_SFN(attn_tn)(isa, c->dv + b * Tv * Dv, Dv, doutb, Dv, Wd, Tv, At, oT, tail, Dv, Tv, Tq);
    /* dP = G V^T + dweights, then the softmax backward row by row */
    AL_SFN(al_pg_pack)(isa, pk, vb, Dv, 1, Dv, Tv);
    AL_SFN(al_pg_gemm)(isa, dS, Tv, doutb, Dv, 1, pk, 0, NULL, 0, Tq, Tv, Dv);
    for (i = 0; i < Tq; i++) {
        real *r = dS + i * Tv;
        const real *w = W + i * Tv;
        if (qmb != NULL && !qmb[i]) {
            for (j = 0; j < Tv; j++) r[j] = (real)0;
        }
        if (dwb != NULL) {
            for (j = 0; j < Tv; j++) r[j] += dwb[i * Tv + j];
        }
        AL_SFN(softmax_backward_row)(r, w, Tv);
    }
    if (c->mode == AL_ATTN_BWD_DOT) {
        /* G' = dS K; dscale += sum(Q * G') with 8 partial sums (in order it was a dependent
         * chain of adds, 5% of a (8, 256, 256, 256) forward + backward); dq = scale G' */
        AL_SFN(al_bmm_product)(isa, dqb, D, dS, kb, D, pk, Tq, Tv, D);
        c->part[2 * b] = (double)AL_SFN(attn_dot8)(qb, dqb, Tq * D);
        if (c->scale != (real)1) {
            for (n = 0; n < Tq * D; n++) dqb[n] *= c->scale;
        }
        /* dK = scale dS^T Q */
        AL_SFN(attn_tn)(isa, dkb, D, qb, D, dS, Tv, At, oT, tail, D, Tv, Tq);
        if (c->scale != (real)1) {
            for (n = 0; n < Tv * D; n++) dkb[n] *= c->scale;
        }
    } else if (c->mode == AL_ATTN_BWD_CONCAT) {
        c->part[2 * b] = 0.0;
        c->part[2 * b + 1] = 0.0;
        AL_SFN(attn_tanh_scores_backward)(dqb, dkb, NULL, &c->part[2 * b], &c->part[2 * b + 1],
                                          dS, qb, kb, NULL, c->scale, c->c, Tq, Tv, D);
    } else {
        real *da = c->da_part != NULL ? c->da_part + b * D : NULL;
        if (da != NULL) AL_SFN(attn_zero)(da, D);
        AL_SFN(attn_tanh_scores_backward)(dqb, dkb, da, NULL, NULL, dS, qb, kb, c->a, (real)1,
                                          (real)1, Tq, Tv, D);
    }
}

static void AL_SFN(attn_bwd_work)(void *arg, int tid, int nt) {
    const AL_SFN(attn_bwd_ctx) *c = (const AL_SFN(attn_bwd_ctx) *)arg;
    size_t b0, b1, b;
    al_split(c->B, nt, tid, &b0, &b1);
    for (b = b0; b < b1; b++) AL_SFN(attn_bwd_sample)(c, b, c->scr + (size_t)tid * c->nscr);
}

/* Runs the backward of every sample (Tq, Tv and B > 0) on a team; part (B, 2) and da_part
 * (B, D, or NULL) receive the per-sample partial sums. AL_OK or AL_ERR_NOMEM. */
static int AL_SFN(attn_backward_core)(real *dq, real *dk, real *dv, double *part, real *da_part,
                                      const real *weights, const real *dout,
                                      const real *dweights, const real *q, const real *k,
                                      const real *v, const uint8_t *query_mask, const real *a,
                                      real scale, real cw, int mode,
                                      size_t B, size_t Tq, size_t Tv, size_t D, size_t Dv) {
    AL_SFN(attn_bwd_ctx) cx;
    const int isa = al_pg_isa_for(0);
    const double nscr = AL_SFN(attn_bwd_scratch)(isa, Tq, Tv, D, Dv, query_mask != NULL);
    const int nt = AL_SFN(attn_team_size)(B, Tq, Tv, D, Dv);
    cx.scr = AL_SFN(attn_scratch)(nscr, nt);
    if (cx.scr == NULL) return AL_ERR_NOMEM;
    cx.dq = dq; cx.dk = dk; cx.dv = dv; cx.da_part = da_part; cx.part = part;
    cx.weights = weights; cx.dout = dout; cx.dweights = dweights; cx.q = q; cx.k = k; cx.v = v;
    cx.a = a; cx.query_mask = query_mask; cx.scale = scale; cx.c = cw;
    cx.B = B; cx.Tq = Tq; cx.Tv = Tv; cx.D = D; cx.Dv = Dv; cx.nscr = (size_t)nscr + 8;
    cx.mode = mode; cx.isa = isa;
    al_team_go(nt, AL_SFN(attn_bwd_work), &cx, NULL);
    free(cx.scr);
    return AL_OK;
}

/* ------------------------------------------------------------------------------------------
 * Luong / Keras `Attention`.
 * ---------------------------------------------------------------------------------------- */

/*
 * dot_attention_forward: Keras `Attention` (score_mode "dot" or "concat"), whole batch.
 *
 * outputs   out     (B,Tq,Dv)  context, rows with query_mask == 0 are zero
 *           weights (B,Tq,Tv)  softmax weights (post-softmax, pre-query-mask); saved
 * inputs    q (B,Tq,D), k (B,Tv,D), v (B,Tv,Dv)
 *           query_mask (B,Tq), value_mask (B,Tv), attention_mask (B,Tq,Tv): uint8 or NULL
 * options   causal (keep j <= i); the scalar weights scale (1 = Keras use_scale=False) and
 *           concat_score_weight (concat mode only); score_mode AL_SCORE_DOT / AL_SCORE_CONCAT
 * returns   AL_OK, or AL_ERR_ARG for an unknown score_mode
 * Empty axes: Tq == 0 or Dv == 0 write nothing; Tv == 0 gives out = 0 (an empty sum). The
 * per-sample loop runs only when Tq, Tv > 0, so its length is bounded by the size of
 * `weights`. Backward: Tq == 0 or Tv == 0 gives zero gradients.
 */
int AL_FN(dot_attention_forward)(real *out, real *weights,
                                 const real *q, const real *k, const real *v,
                                 const uint8_t *query_mask, const uint8_t *value_mask,
                                 const uint8_t *attention_mask,
                                 size_t B, size_t Tq, size_t Tv, size_t D, size_t Dv,
                                 int causal, real scale, real concat_score_weight,
                                 int score_mode) {
    if (score_mode != AL_SCORE_DOT && score_mode != AL_SCORE_CONCAT) return AL_ERR_ARG;
    return AL_SFN(attn_forward_core)(out, weights, q, k, v, query_mask, value_mask,
                                     attention_mask, score_mode == AL_SCORE_CONCAT, scale,
                                     concat_score_weight, NULL, B, Tq, Tv, D, Dv, causal);
}

/*
 * dot_attention_backward.
 *
 * outputs   dq (B,Tq,D), dk (B,Tv,D), dv (B,Tv,Dv)       overwritten
 *           dscale (1), dconcat_score_weight (1)          overwritten, or NULL if not wanted
 *                                                         (dcw is 0 in dot mode)
 * saved     weights (B,Tq,Tv) from the forward
 * inputs    dout (B,Tq,Dv), dweights (B,Tq,Tv) or NULL; q, k, v, query_mask as forward
 * options   scale, concat_score_weight, score_mode as forward
 * returns   AL_OK, AL_ERR_NOMEM (workspace of Tq*Tv), AL_ERR_ARG (unknown score_mode)
 *
 * Dot mode: G = dS K;  dscale = sum(Q * G);  dq = scale G;  dk = scale dS^T Q.
 * Concat:   attn_tanh_scores_backward with sigma = scale, c = concat_score_weight.
 */
int AL_FN(dot_attention_backward)(real *dq, real *dk, real *dv, real *dscale,
                                  real *dconcat_score_weight,
                                  const real *weights, const real *dout, const real *dweights,
                                  const real *q, const real *k, const real *v,
                                  const uint8_t *query_mask,
                                  size_t B, size_t Tq, size_t Tv, size_t D, size_t Dv,
                                  real scale, real concat_score_weight, int score_mode) {
    size_t b;
    double acc_scale = 0.0, acc_cw = 0.0, *part;
    int status;
    if (score_mode != AL_SCORE_DOT && score_mode != AL_SCORE_CONCAT) return AL_ERR_ARG;
    if (B == 0 || Tq == 0 || Tv == 0) {     /* no score: every gradient is 0 */
        AL_SFN(attn_zero)(dq, B * Tq * D);
        AL_SFN(attn_zero)(dk, B * Tv * D);
        AL_SFN(attn_zero)(dv, B * Tv * Dv);
        if (dscale != NULL) *dscale = (real)0;
        if (dconcat_score_weight != NULL) *dconcat_score_weight = (real)0;
        return AL_OK;
    }
    part = (double *)malloc(2 * B * sizeof(double));
    if (part == NULL) return AL_ERR_NOMEM;
    status = AL_SFN(attn_backward_core)(dq, dk, dv, part, NULL, weights, dout, dweights, q, k, v,
                                        query_mask, NULL, scale, concat_score_weight,
                                        score_mode == AL_SCORE_DOT ? AL_ATTN_BWD_DOT
                                                                   : AL_ATTN_BWD_CONCAT,
                                        B, Tq, Tv, D, Dv);
    if (status == AL_OK) {
        /* the samples' partial sums in order */
        for (b = 0; b < B; b++) {
            acc_scale += part[2 * b];
            if (score_mode == AL_SCORE_CONCAT) acc_cw += part[2 * b + 1];
        }
        if (dscale != NULL) *dscale = (real)acc_scale;
        if (dconcat_score_weight != NULL) *dconcat_score_weight = (real)acc_cw;
    }
    free(part);
    return status;
}

/* ------------------------------------------------------------------------------------------
 * Additive (Bahdanau) / Keras `AdditiveAttention`.
 * ---------------------------------------------------------------------------------------- */

/*
 * additive_attention_forward: S[b,i,j] = sum_u scale[u] tanh(q[b,i,u] + k[b,j,u]), then the
 * shared masked softmax and context. Keras AdditiveAttention is U = dim and scale = its
 * `scale` weight (NULL = use_scale=False, i.e. ones).
 *
 * outputs   out (B,Tq,Dv), weights (B,Tq,Tv) (saved)
 * inputs    q (B,Tq,U), k (B,Tv,U), v (B,Tv,Dv); masks as dot_attention_forward
 * weights   scale (U) or NULL
 * returns   AL_OK
 */
int AL_FN(additive_attention_forward)(real *out, real *weights,
                                      const real *q, const real *k, const real *v,
                                      const uint8_t *query_mask, const uint8_t *value_mask,
                                      const uint8_t *attention_mask, const real *scale,
                                      size_t B, size_t Tq, size_t Tv, size_t U, size_t Dv,
                                      int causal) {
    return AL_SFN(attn_forward_core)(out, weights, q, k, v, query_mask, value_mask,
                                     attention_mask, 1, (real)1, (real)1, scale,
                                     B, Tq, Tv, U, Dv, causal);
}

/*
 * additive_attention_backward.
 *
 * outputs   dq (B,Tq,U), dk (B,Tv,U), dv (B,Tv,Dv)   overwritten
 *           dscale (U)                               overwritten, or NULL
 * saved     weights (B,Tq,Tv)
 * inputs    dout (B,Tq,Dv), dweights (B,Tq,Tv) or NULL; q, k, v, query_mask as forward
 * weights   scale (U) or NULL
 * returns   AL_OK or AL_ERR_NOMEM (workspace of Tq*Tv)
 */
int AL_FN(additive_attention_backward)(real *dq, real *dk, real *dv, real *dscale,
                                       const real *weights, const real *dout,
                                       const real *dweights,
                                       const real *q, const real *k, const real *v,
                                       const uint8_t *query_mask, const real *scale,
                                       size_t B, size_t Tq, size_t Tv, size_t U, size_t Dv) {
    size_t b, u;
    real *da_part = NULL;
    double *part;
    int status;
    if (dscale != NULL) AL_SFN(attn_zero)(dscale, U);
    if (B == 0 || Tq == 0 || Tv == 0) {     /* no score: every gradient is 0 */
        AL_SFN(attn_zero)(dq, B * Tq * U);
        AL_SFN(attn_zero)(dk, B * Tv * U);
        AL_SFN(attn_zero)(dv, B * Tv * Dv);
        return AL_OK;
    }
    part = (double *)malloc(2 * B * sizeof(double));
    if (dscale != NULL) da_part = (real *)malloc((B * U > 0 ? B * U : 1) * sizeof(real));
    if (part == NULL || (dscale != NULL && da_part == NULL)) {
        free(part);
        free(da_part);
        return AL_ERR_NOMEM;
    }
    status = AL_SFN(attn_backward_core)(dq, dk, dv, part, da_part, weights, dout, dweights, q, k,
                                        v, query_mask, scale, (real)1, (real)1,
                                        AL_ATTN_BWD_ADDITIVE, B, Tq, Tv, U, Dv);
    if (status == AL_OK && dscale != NULL) {
        /* the samples' partial gradients in order */
        for (b = 0; b < B; b++)
            for (u = 0; u < U; u++) dscale[u] += da_part[b * U + u];
    }
    free(part);
    free(da_part);
    return status;
}

/*
 * bahdanau_forward: Bahdanau et al. (2015) attention with learned projections,
 *     S[b,i,j] = sum_u V[u] tanh(kp[b,j,u] + qp[b,i,u]),
 *     kp = values W1 + b1 (computed once per sequence), qp = query W2 + b2,
 * then the masked softmax and context over `values` (Luong's "concat" score is the same
 * with W = [W2; W1]).
 *
 * outputs   out (B,Tq,Dv), weights (B,Tq,Tv)
 * saved     qp (B,Tq,U); kp (B,Tv,U) (not written when `keys` is given; may then be NULL)
 * inputs    query (B,Tq,Dq), values (B,Tv,Dv)
 *           keys (B,Tv,U) = values W1 + b1 precomputed by the caller, or NULL
 *           masks as dot_attention_forward
 * weights   W1 (Dv,U), b1 (U) or NULL, W2 (Dq,U), b2 (U) or NULL, V (U)
 * returns   AL_OK
 */
int AL_FN(bahdanau_forward)(real *out, real *weights, real *qp, real *kp,
                            const real *query, const real *values, const real *keys,
                            const uint8_t *query_mask, const uint8_t *value_mask,
                            const uint8_t *attention_mask,
                            const real *W1, const real *b1, const real *W2, const real *b2,
                            const real *V,
                            size_t B, size_t Tq, size_t Tv, size_t Dq, size_t Dv, size_t U,
                            int causal) {
    const real *kk = keys;
    if (kk == NULL) {
        if (kp == NULL) return AL_ERR_ARG;
        AL_SFN(al_project)(kp, values, W1, b1, B * Tv, Dv, U);
        kk = kp;
    }
    AL_SFN(al_project)(qp, query, W2, b2, B * Tq, Dq, U);
    return AL_SFN(attn_forward_core)(out, weights, qp, kk, values, query_mask, value_mask,
                                     attention_mask, 1, (real)1, (real)1, V,
                                     B, Tq, Tv, U, Dv, causal);
}

/*
 * bahdanau_backward.
 *
 * outputs   dquery (B,Tq,Dq), dvalues (B,Tv,Dv), dW1 (Dv,U), dW2 (Dq,U), dV (U)  overwritten
 *           db1 (U), db2 (U)                                       overwritten, or NULL
 * saved     weights (B,Tq,Tv), qp (B,Tq,U), kp (B,Tv,U) (the keys the forward used)
 * inputs    dout (B,Tq,Dv), dweights (B,Tq,Tv) or NULL; query, values, query_mask as forward
 * weights   W1 (Dv,U), W2 (Dq,U), V (U)
 * returns   AL_OK or AL_ERR_NOMEM (workspace of (B*Tq + B*Tv)*U + Tq*Tv)
 *
 * The additive backward gives dqp, dkp, dV and the context part of dvalues; then
 *   dvalues += dkp W1^T,  dW1 = values^T dkp,  db1 = sum dkp,
 *   dquery = dqp W2^T,    dW2 = query^T dqp,   db2 = sum dqp   (each one GEMM over B*T rows).
 */
int AL_FN(bahdanau_backward)(real *dquery, real *dvalues, real *dW1, real *db1, real *dW2,
                             real *db2, real *dV,
                             const real *weights, const real *qp, const real *kp,
                             const real *dout, const real *dweights,
                             const real *query, const real *values, const uint8_t *query_mask,
                             const real *W1, const real *W2, const real *V,
                             size_t B, size_t Tq, size_t Tv, size_t Dq, size_t Dv, size_t U) {
    const size_t nq = B * Tq, nk = B * Tv;
    real *dqp = (real *)malloc((nq * U > 0 ? nq * U : 1) * sizeof(real));
    real *dkp = (real *)malloc((nk * U > 0 ? nk * U : 1) * sizeof(real));
    int status;
    if (dqp == NULL || dkp == NULL) {
        free(dqp);
        free(dkp);
        return AL_ERR_NOMEM;
    }
    status = AL_FN(additive_attention_backward)(dqp, dkp, dvalues, dV, weights, dout, dweights,
                                                qp, kp, values, query_mask, V,
                                                B, Tq, Tv, U, Dv);
    if (status == AL_OK) {
        /* dvalues already holds the context part: the key projection's dx adds to it */
        AL_SFN(al_project_backward)(dvalues, dW1, db1, dkp, values, W1, nk, Dv, U, 1);
        AL_SFN(al_project_backward)(dquery, dW2, db2, dqp, query, W2, nq, Dq, U, 0);
    }
    free(dqp);
    free(dkp);
    return status;
}
