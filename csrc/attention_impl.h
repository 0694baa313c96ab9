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

/*
 * Shared forward of every attention kind, one sample at a time.
 *   out (B,Tq,Dv), weights (B,Tq,Tv); q (B,Tq,D), k (B,Tv,D), v (B,Tv,Dv).
 *   tanh_mode 0: S = scale * Q K^T (one GEMM);  1: attn_tanh_scores(a, scale, c).
 */
static int AL_SFN(attn_forward_core)(real *out, real *weights,
                                     const real *q, const real *k, const real *v,
                                     const uint8_t *query_mask, const uint8_t *value_mask,
                                     const uint8_t *attention_mask,
                                     int tanh_mode, real scale, real c, const real *a,
                                     size_t B, size_t Tq, size_t Tv, size_t D, size_t Dv,
                                     int causal) {
    size_t b, i, j;
    real *kT = NULL;
    /* Without queries or keys there is nothing to loop over (and B may be huge while every
     * array is empty): the context of no keys is an empty sum, 0. */
    if (Tq == 0 || Tv == 0) {
        AL_SFN(attn_zero)(out, B * Tq * Dv);
        return AL_OK;
    }
    if (tanh_mode && B > 0) {
        const size_t Tvp = (Tv + AL_ATTN_PAD - 1) / AL_ATTN_PAD * AL_ATTN_PAD;
        kT = (real *)malloc((D + 1) * Tvp * sizeof(real));
        if (kT == NULL) return AL_ERR_NOMEM;
    }
    for (b = 0; b < B; b++) {
        real *W = weights + b * Tq * Tv;
        real *ob = out + b * Tq * Dv;
        const real *qb = q + b * Tq * D, *kb = k + b * Tv * D, *vb = v + b * Tv * Dv;
        if (!tanh_mode) {
            AL_SFN(al_gemm)(0, 1, Tq, Tv, D, (real)1, qb, D, kb, D, (real)0, W, Tv);
            /* Keras multiplies after the product: matmul(q, k^T) * scale (x * 1 is exact). */
            if (scale != (real)1) {
                for (j = 0; j < Tq * Tv; j++) W[j] *= scale;
            }
        } else {
            AL_SFN(attn_tanh_scores)(W, kT, qb, kb, a, scale, c, Tq, Tv, D);
        }
        for (i = 0; i < Tq; i++) {
            AL_SFN(attn_mask_softmax_row)(W + i * Tv, b, i, value_mask, attention_mask, causal,
                                          Tq, Tv);
        }
        AL_SFN(al_gemm)(0, 0, Tq, Dv, Tv, (real)1, W, Tv, vb, Dv, (real)0, ob, Dv);
        if (query_mask != NULL) {
            for (i = 0; i < Tq; i++) {
                if (!query_mask[b * Tq + i]) {
                    for (j = 0; j < Dv; j++) ob[i * Dv + j] = (real)0;
                }
            }
        }
    }
    free(kT);
    return AL_OK;
}

/*
 * Softmax and context backward of one sample (shared by every kind):
 *   dS  (Tq,Tv) out: dL/dS
 *   dvb (Tv,Dv) out: dL/dV = P^T G
 *   W (Tq,Tv) saved weights; doutb (Tq,Dv); dwb (Tq,Tv) or NULL; vb (Tv,Dv);
 *   qmb (Tq) or NULL.
 */
static void AL_SFN(attn_softmax_backward)(real *dS, real *dvb, const real *W, const real *doutb,
                                          const real *dwb, const real *vb, const uint8_t *qmb,
                                          size_t Tq, size_t Tv, size_t Dv) {
    size_t i, j;
    /* dV = P^T G: the rows of P whose output was zeroed by the query mask are dropped. */
    if (qmb != NULL) {
        for (i = 0; i < Tq; i++) {
            for (j = 0; j < Tv; j++) dS[i * Tv + j] = qmb[i] ? W[i * Tv + j] : (real)0;
        }
        AL_SFN(al_gemm)(1, 0, Tv, Dv, Tq, (real)1, dS, Tv, doutb, Dv, (real)0, dvb, Dv);
    } else {
        AL_SFN(al_gemm)(1, 0, Tv, Dv, Tq, (real)1, W, Tv, doutb, Dv, (real)0, dvb, Dv);
    }
    /* dP = G V^T + dweights */
    AL_SFN(al_gemm)(0, 1, Tq, Tv, Dv, (real)1, doutb, Dv, vb, Dv, (real)0, dS, Tv);
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
    size_t b, n;
    double acc_scale = 0.0, acc_cw = 0.0;
    real *dS;
    if (score_mode != AL_SCORE_DOT && score_mode != AL_SCORE_CONCAT) return AL_ERR_ARG;
    if (B == 0 || Tq == 0 || Tv == 0) {     /* no score: every gradient is 0 */
        AL_SFN(attn_zero)(dq, B * Tq * D);
        AL_SFN(attn_zero)(dk, B * Tv * D);
        AL_SFN(attn_zero)(dv, B * Tv * Dv);
        if (dscale != NULL) *dscale = (real)0;
        if (dconcat_score_weight != NULL) *dconcat_score_weight = (real)0;
        return AL_OK;
    }
    dS = (real *)malloc(Tq * Tv * sizeof(real));
    if (dS == NULL) return AL_ERR_NOMEM;
    for (b = 0; b < B; b++) {
        const real *qb = q + b * Tq * D, *kb = k + b * Tv * D, *vb = v + b * Tv * Dv;
        real *dqb = dq + b * Tq * D, *dkb = dk + b * Tv * D;
        AL_SFN(attn_softmax_backward)(dS, dv + b * Tv * Dv, weights + b * Tq * Tv,
                                      dout + b * Tq * Dv,
                                      dweights ? dweights + b * Tq * Tv : NULL, vb,
                                      query_mask ? query_mask + b * Tq : NULL, Tq, Tv, Dv);
        if (score_mode == AL_SCORE_DOT) {
            AL_SFN(al_gemm)(0, 0, Tq, D, Tv, (real)1, dS, Tv, kb, D, (real)0, dqb, D);
            /* sum(Q * G): 8 partial sums (in order it was a dependent chain of adds, 5% of a
             * (8, 256, 256, 256) forward + backward) */
            acc_scale += (double)AL_SFN(attn_dot8)(qb, dqb, Tq * D);
            if (scale != (real)1) {
                for (n = 0; n < Tq * D; n++) dqb[n] *= scale;
            }
            AL_SFN(al_gemm)(1, 0, Tv, D, Tq, scale, dS, Tv, qb, D, (real)0, dkb, D);
        } else {
            AL_SFN(attn_tanh_scores_backward)(dqb, dkb, NULL, &acc_scale, &acc_cw, dS, qb, kb,
                                              NULL, scale, concat_score_weight, Tq, Tv, D);
        }
    }
    free(dS);
    if (dscale != NULL) *dscale = (real)acc_scale;
    if (dconcat_score_weight != NULL) *dconcat_score_weight = (real)acc_cw;
    return AL_OK;
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
    size_t b;
    real *dS;
    if (dscale != NULL) AL_SFN(attn_zero)(dscale, U);
    if (B == 0 || Tq == 0 || Tv == 0) {     /* no score: every gradient is 0 */
        AL_SFN(attn_zero)(dq, B * Tq * U);
        AL_SFN(attn_zero)(dk, B * Tv * U);
        AL_SFN(attn_zero)(dv, B * Tv * Dv);
        return AL_OK;
    }
    dS = (real *)malloc(Tq * Tv * sizeof(real));
    if (dS == NULL) return AL_ERR_NOMEM;
    for (b = 0; b < B; b++) {
        AL_SFN(attn_softmax_backward)(dS, dv + b * Tv * Dv, weights + b * Tq * Tv,
                                      dout + b * Tq * Dv,
                                      dweights ? dweights + b * Tq * Tv : NULL,
                                      v + b * Tv * Dv,
                                      query_mask ? query_mask + b * Tq : NULL, Tq, Tv, Dv);
        AL_SFN(attn_tanh_scores_backward)(dq + b * Tq * U, dk + b * Tv * U, dscale, NULL, NULL,
                                          dS, q + b * Tq * U, k + b * Tv * U, scale,
                                          (real)1, (real)1, Tq, Tv, U);
    }
    free(dS);
    return AL_OK;
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
