/*
 * mha_impl.h -- multi-head attention forward and backward, with optional relative-position
 * terms; part of the type template (al_real.h), compiled for float32 and float64 by mha.c.
 *
 * Keras 3 MultiHeadAttention (keras/src/layers/attention/multi_head_attention.py, 3-D inputs,
 * explicit-scores path), weights in Keras layout:
 *   q  = (query Wq + bq) / sqrt(HS)          Wq (Dq,NH,HS)   bq (NH,HS)     -> (B,Tq,NH,HS)
 *   k  =  key   Wk + bk                      Wk (Dk,NH,HS)   bk (NH,HS)     -> (B,Tv,NH,HS)
 *   v  =  value Wv + bv                      Wv (Dv,NH,HSv)  bv (NH,HSv)    -> (B,Tv,NH,HSv)
 *   s[b,h,i,j] = q[b,i,h] . (k[b,j,h] + rel_k[r(i,j)])                      (B,NH,Tq,Tv)
 *   w = masked softmax of s over j                                          (B,NH,Tq,Tv)
 *   ctx[b,i,h] = sum_j w[b,h,i,j] (v[b,j,h] + rel_v[r(i,j)])                (B,Tq,NH,HSv)
 *   out = ctx Wo + bo                        Wo (NH,HSv,Dout) bo (Dout)     -> (B,Tq,Dout)
 * The relative terms (Shaw, Uszkoreit & Vaswani 2018, "Self-Attention with Relative Position
 * Representations", eqs. 3-4) are present only when rel_k / rel_v are not NULL; rel_k (R,HS),
 * rel_v (R,HSv), R = 2K+1, r(i,j) = clip(j - i, -K, K) + K, shared by all heads as in the paper.
 * They are computed without a (Tq,Tv,HS) tensor: q rel_k^T is one (B*Tq*NH, R) GEMM gathered by
 * r(i,j); sum_j w_ij rel_v[r] is a (B*Tq*NH, R) bucket sum of w times rel_v, one GEMM.
 *
 * Mask (Keras _compute_attention_mask; every mask uint8, nonzero = attend, NULL = absent):
 *   m[b,h,i,j] = query_mask[b,i] & value_mask[b,j] & key_mask[b,j] & (j <= i if causal)
 *                & attn_mask[b,i,j]  (or attn_mask[b,h,i,j] when attn_mask_per_head)
 * A masked key gets weight exactly 0. A row with no attended key ("fully masked", also every
 * row when Tv == 0) follows `fully_masked`: AL_MHA_FULLY_MASKED_UNIFORM gives w = 1/Tv (Keras'
 * fast path: ctx = mean of v), AL_MHA_FULLY_MASKED_ZERO gives w = 0 (Keras' explicit path:
 * ctx = 0, out = bo). With Tv == 0 the context is 0 either way. The weights of a fully masked
 * row do not depend on the scores, so no gradient flows to q or k through it.
 * NaN or infinite inputs propagate to the outputs (no check, no crash).
 */

/* r(i,j) = clip(j - i, -K, K) + K, in unsigned arithmetic. */
static size_t AL_SFN(mha_rel_index)(size_t i, size_t j, size_t K) {
    if (j + K <= i) return 0;
    if (j >= i + K) return 2 * K;
    return j + K - i;
}

/* The combined mask of score row (b,h,i) into row[Tv]; returns the number of attended keys. */
static size_t AL_SFN(mha_row_mask)(uint8_t *row, const uint8_t *attn_mask,
                                   const uint8_t *query_mask, const uint8_t *value_mask,
                                   const uint8_t *key_mask, size_t b, size_t h, size_t i,
                                   size_t Tq, size_t Tv, size_t NH, int per_head, int causal) {
    size_t j, n = 0;
    const uint8_t *am = NULL;
    if (query_mask != NULL && !query_mask[b * Tq + i]) {
        for (j = 0; j < Tv; j++) row[j] = 0;
        return 0;
    }
    if (attn_mask != NULL)
        am = attn_mask + ((per_head ? (b * NH + h) * Tq : b * Tq) + i) * Tv;
    for (j = 0; j < Tv; j++) {
        uint8_t keep = 1;
        if (value_mask != NULL && !value_mask[b * Tv + j]) keep = 0;
        if (key_mask != NULL && !key_mask[b * Tv + j]) keep = 0;
        if (causal && j > i) keep = 0;
        if (am != NULL && !am[j]) keep = 0;
        row[j] = keep;
        n += keep;
    }
    return n;
}

/* malloc of n reals (at least one, so NULL always means failure). */
static real *AL_SFN(mha_alloc)(size_t n, int zero) {
    if (n == 0) n = 1;
    if (n > (size_t)-1 / sizeof(real)) return NULL;
    return zero ? (real *)calloc(n, sizeof(real)) : (real *)malloc(n * sizeof(real));
}

/* Score rows of the forward: everything between the score and context products. */
typedef struct {
    real *weights, *rq, *wsum;
    size_t wbase;               /* row of weights[0]: 0, or the block's first row (scratch) */
    uint8_t *live, *rowm;
    const uint8_t *attn_mask, *query_mask, *value_mask, *key_mask;
    size_t rows, Tq, Tv, NH, K;
    int per_head, causal, fully_masked;
} AL_SFN(mha_rows_ctx);

/* Rows [r0, r1) of the (B,NH,Tq) score rows of `weights` (row r = (b NH + h) Tq + i):
 * masks, relative-key terms, masked softmax and the relative-value bucket sums, in place.
 * rowm (Tv) is the caller's scratch. */
static void AL_SFN(mha_rows)(const AL_SFN(mha_rows_ctx) *c, size_t r0, size_t r1,
                             uint8_t *rowm) {
    const size_t Tq = c->Tq, Tv = c->Tv, NH = c->NH, K = c->K, R = 2 * K + 1;
    size_t r, j;
    for (r = r0; r < r1; r++) {
        const size_t i = r % Tq, h = (r / Tq) % NH, b = r / (Tq * NH);
        real *s = c->weights + (r - c->wbase) * Tv;
        /* without masks every key is attended: no keep row to build */
        const int unmasked = c->attn_mask == NULL && c->query_mask == NULL &&
                             c->value_mask == NULL && c->key_mask == NULL && !c->causal;
        const size_t n = unmasked ? Tv
                                  : AL_SFN(mha_row_mask)(rowm, c->attn_mask, c->query_mask,
                                                         c->value_mask, c->key_mask, b, h, i,
                                                         Tq, Tv, NH, c->per_head, c->causal);
        c->live[r] = n > 0;
        if (c->rq != NULL) {
            const real *rr = c->rq + ((b * Tq + i) * NH + h) * R;
            for (j = 0; j < Tv; j++) s[j] += rr[AL_SFN(mha_rel_index)(i, j, K)];
        }
        if (n == 0) {
            const real u = (c->fully_masked == AL_MHA_FULLY_MASKED_UNIFORM && Tv > 0)
                               ? (real)1 / (real)Tv : (real)0;
            for (j = 0; j < Tv; j++) s[j] = u;
        } else {
            /* exp(s - max) / sum over the attended keys; masked keys get exactly 0. */
            AL_SFN(softmax_row)(s, unmasked ? NULL : rowm, Tv);
        }
        if (c->wsum != NULL) {
            real *a = c->wsum + ((b * Tq + i) * NH + h) * R;
            for (j = 0; j < Tv; j++) a[AL_SFN(mha_rel_index)(i, j, K)] += s[j];
        }
    }
}

/* S (Tq,Tv) of sample b, head h = q[b,:,h] (Tq,HS) k[b,:,h]^T: strided head views,
 * ld = NH*HS; S is block (b,h) of weights (B,NH,Tq,Tv). On the packed tiles of lstm_pgemm.h
 * (k[b,:,h]^T packed into P, al_pg_size(isa, HS, Tv) reals): each score one chain over the HS
 * products in order, no BLAS call (OpenBLAS zeroed the whole block before its K = HS (often 8)
 * deep product: 14% of an 8-head forward at T = 256, benchmarks/NOTES.md). */
static void AL_SFN(mha_scores)(real *S, real *P, const real *qs, const real *kp, size_t b,
                               size_t h, size_t Tq, size_t Tv, size_t NH, size_t HS, int isa) {
    const size_t QW = NH * HS;
    AL_SFN(al_pg_pack)(isa, P, kp + b * Tv * QW + h * HS, QW, 1, HS, Tv);
    AL_SFN(al_pg_gemm)(isa, S, Tv, qs + b * Tq * QW + h * HS, QW, 1, P, 0, NULL, 0, Tq, Tv, HS);
}

/* ctx[b,:,h] (Tq,HSv) = w (Tq,Tv) v[b,:,h] (Tv,HSv), ld = NH*HSv. */
static void AL_SFN(mha_context)(real *ctx, const real *S, const real *vp, size_t b,
                                size_t h, size_t Tq, size_t Tv, size_t NH, size_t HSv) {
    const size_t VW = NH * HSv;
    AL_SFN(al_gemm)(0, 0, Tq, HSv, Tv, (real)1, S, Tv,
                    vp + b * Tv * VW + h * HSv, VW, (real)0, ctx + b * Tq * VW + h * HSv, VW);
}

/* Score blocks (b, h) of the forward on a team: each thread takes whole blocks, their score
 * product and softmax rows while the block is in its cache (the context products follow). */
typedef struct {
    AL_SFN(mha_rows_ctx) rows;
    real *P;                     /* nt packed k^T buffers of np reals */
    const real *qs, *kp;
    size_t np, B, HS;
    int isa;
} AL_SFN(mha_blocks_ctx);

static void AL_SFN(mha_blocks_work)(void *arg, int tid, int nt) {
    const AL_SFN(mha_blocks_ctx) *c = (const AL_SFN(mha_blocks_ctx) *)arg;
    const AL_SFN(mha_rows_ctx) *rc = &c->rows;
    const size_t Tq = rc->Tq, NH = rc->NH;
    size_t k0, k1, k;
    al_split(c->B * NH, nt, tid, &k0, &k1);
    for (k = k0; k < k1; k++) {
        AL_SFN(mha_scores)(rc->weights + k * Tq * rc->Tv, c->P + (size_t)tid * c->np, c->qs, c->kp,
                           k / NH, k % NH, Tq, rc->Tv, NH, c->HS, c->isa);
        AL_SFN(mha_rows)(rc, k * Tq, (k + 1) * Tq,
                         rc->rowm + (size_t)tid * (rc->Tv > 0 ? rc->Tv : 1));
    }
}

/*
 * mha_forward: the whole layer (projections, per-head scores, masked softmax, context, output
 * projection) for every batch element in one call.
 *
 * outputs   out     (B,Tq,Dout)
 *           weights (B,NH,Tq,Tv)   attention weights (Keras' attention_scores); saved; or
 *                                  NULL (inference without the scores: not stored)
 * saved     qs      (B,Tq,NH,HS)   projected query, already scaled by 1/sqrt(HS)
 *           kp      (B,Tv,NH,HS)   projected key
 *           vp      (B,Tv,NH,HSv)  projected value
 *           ctx     (B,Tq,NH,HSv)  context (input of the output projection)
 *           live    (B,NH,Tq)      uint8: 1 if the score row attends at least one key
 * inputs    query (B,Tq,Dq), key (B,Tv,Dk), value (B,Tv,Dv)
 *           attn_mask (B,Tq,Tv) or (B,NH,Tq,Tv) [attn_mask_per_head], query_mask (B,Tq),
 *           value_mask (B,Tv), key_mask (B,Tv): uint8 or NULL
 * weights   Wq (Dq,NH,HS), bq (NH,HS), Wk (Dk,NH,HS), bk (NH,HS), Wv (Dv,NH,HSv), bv (NH,HSv),
 *           Wo (NH,HSv,Dout), bo (Dout): biases may be NULL (use_bias=False)
 *           rel_k (2K+1,HS), rel_v (2K+1,HSv): NULL for plain MHA
 * returns   AL_OK, AL_ERR_ARG (NH == 0 or HS == 0), AL_ERR_NOMEM
 */
int AL_FN(mha_forward)(real *out, real *weights, real *qs, real *kp, real *vp,
                       real *ctx, uint8_t *live,
                       const real *query, const real *key, const real *value,
                       const uint8_t *attn_mask, const uint8_t *query_mask,
                       const uint8_t *value_mask, const uint8_t *key_mask,
                       const real *Wq, const real *bq, const real *Wk, const real *bk,
                       const real *Wv, const real *bv, const real *Wo, const real *bo,
                       const real *rel_k, const real *rel_v,
                       size_t B, size_t Tq, size_t Tv, size_t Dq, size_t Dk, size_t Dv,
                       size_t NH, size_t HS, size_t HSv, size_t Dout, size_t K,
                       int attn_mask_per_head, int causal, int fully_masked) {
    const size_t R = 2 * K + 1, QW = NH * HS, VW = NH * HSv, rows = B * Tq * NH;
    real scale;
    uint8_t *rowm = NULL;
    real *rq = NULL, *wsum = NULL;
    size_t b, h, i;

    if (NH == 0 || HS == 0) return AL_ERR_ARG;
    scale = (real)1 / AL_SQRT((real)HS);
    rowm = (uint8_t *)malloc(Tv > 0 ? Tv : 1);
    if (rel_k != NULL) rq = AL_SFN(mha_alloc)(rows * R, 0);
    if (rel_v != NULL) wsum = AL_SFN(mha_alloc)(rows * R, 1);
    if (rowm == NULL || (rel_k != NULL && rq == NULL) || (rel_v != NULL && wsum == NULL)) {
        free(rowm); free(rq); free(wsum);
        return AL_ERR_NOMEM;
    }

    /* Projections: each one GEMM over all B*T rows, the kernel viewed as (D, NH*HS). */
    AL_SFN(al_project)(qs, query, Wq, bq, B * Tq, Dq, QW);
    for (i = 0; i < B * Tq * QW; i++) qs[i] *= scale;
    AL_SFN(al_project)(kp, key, Wk, bk, B * Tv, Dk, QW);
    AL_SFN(al_project)(vp, value, Wv, bv, B * Tv, Dv, VW);

    /* rq (B*Tq*NH, R) = qs (B*Tq*NH, HS) rel_k^T: every query row against every relative key. */
    if (rq != NULL) AL_SFN(al_gemm)(0, 1, rows, R, HS, (real)1, qs, HS, rel_k, HS, (real)0, rq, R);

    {
        AL_SFN(mha_rows_ctx) c;
        int nt = al_blas_threads();
        c.weights = weights; c.wbase = 0; c.live = live; c.rq = rq; c.wsum = wsum; c.rowm = rowm;
        c.attn_mask = attn_mask; c.query_mask = query_mask; c.value_mask = value_mask;
        c.key_mask = key_mask; c.rows = B * NH * Tq; c.Tq = Tq; c.Tv = Tv; c.NH = NH; c.K = K;
        c.per_head = attn_mask_per_head; c.causal = causal; c.fully_masked = fully_masked;
        /* Several threads: the (b, h) blocks' scores and softmax rows split among a team, then
         * all context products (BLAS, threaded by itself). One thread, or too little work to
         * pay for a team: block by block, scores, rows and context while the block is in
         * cache. */
        const int isa = al_pg_isa_for(0);
        const size_t np = AL_SFN(al_pg_size)(isa, HS, Tv) + 1, TT = Tq * Tv;
        real *wtmp = NULL;
        if (nt > 1 && (double)B * NH * Tq * Tv < AL_MHA_TEAM_MIN) nt = 1;
        if (nt > (int)(B * NH)) nt = (int)(B * NH);
        if (nt < 1) nt = 1;
        /* weights NULL (not returned, not saved): one thread keeps one block's scores in a
         * scratch block while it is in cache; a team still fills a whole (internal) array */
        wtmp = weights == NULL ? AL_SFN(mha_alloc)(nt > 1 ? B * NH * TT : TT, 0) : NULL;
        {
            uint8_t *rowms = (uint8_t *)malloc((size_t)nt * (Tv > 0 ? Tv : 1));
            real *P = AL_SFN(mha_alloc)((size_t)nt * np, 0);
            if (rowms == NULL || P == NULL || (weights == NULL && wtmp == NULL)) {
                free(rowms); free(P); free(wtmp); free(rowm); free(rq); free(wsum);
                return AL_ERR_NOMEM;
            }
            c.rowm = rowms;
            c.weights = weights != NULL ? weights : wtmp;
            c.wbase = 0;
            if (nt > 1) {
                AL_SFN(mha_blocks_ctx) bc;
                bc.rows = c; bc.P = P; bc.qs = qs; bc.kp = kp; bc.np = np; bc.B = B; bc.HS = HS;
                bc.isa = isa;
                al_team_go(nt, AL_SFN(mha_blocks_work), &bc, NULL);
                for (b = 0; b < B; b++)
                    for (h = 0; h < NH; h++)
                        AL_SFN(mha_context)(ctx, c.weights + (b * NH + h) * TT, vp, b, h, Tq, Tv,
                                            NH, HSv);
            } else {
                for (b = 0; b < B; b++) {
                    for (h = 0; h < NH; h++) {
                        const size_t r0 = (b * NH + h) * Tq;
                        real *S = weights != NULL ? weights + (b * NH + h) * TT : wtmp;
                        if (weights == NULL) c.wbase = r0;
                        AL_SFN(mha_scores)(S, P, qs, kp, b, h, Tq, Tv, NH, HS, isa);
                        AL_SFN(mha_rows)(&c, r0, r0 + Tq, rowms);
                        AL_SFN(mha_context)(ctx, S, vp, b, h, Tq, Tv, NH, HSv);
                    }
                }
            }
            free(rowms);
            free(P);
            free(wtmp);
        }
    }
    /* ctx (B*Tq*NH, HSv) += wsum (B*Tq*NH, R) rel_v (R, HSv). */
    if (wsum != NULL)
        AL_SFN(al_gemm)(0, 0, rows, HSv, R, (real)1, wsum, R, rel_v, HSv, (real)1, ctx, HSv);

    AL_SFN(al_project)(out, ctx, Wo, bo, B * Tq, VW, Dout);
    free(rowm); free(rq); free(wsum);
    return AL_OK;
}

/*
 * mha_backward: gradients of everything mha_forward read, given d_out and optionally the
 * gradient of the returned attention weights.
 *
 * outputs   dquery (B,Tq,Dq), dkey (B,Tv,Dk), dvalue (B,Tv,Dv)
 *           dWq (Dq,NH,HS), dbq (NH,HS), dWk (Dk,NH,HS), dbk (NH,HS), dWv (Dv,NH,HSv),
 *           dbv (NH,HSv), dWo (NH,HSv,Dout), dbo (Dout): a bias gradient is skipped when NULL
 *           drel_k (2K+1,HS) [iff rel_k], drel_v (2K+1,HSv) [iff rel_v]
 * saved     weights, qs, kp, vp, ctx, live as written by mha_forward
 * inputs    d_out (B,Tq,Dout); d_weights (B,NH,Tq,Tv) or NULL
 *           query, key, value as given to mha_forward (key may alias value)
 * weights   Wq, Wk, Wv, Wo, rel_k, rel_v as given to mha_forward
 * returns   AL_OK, AL_ERR_ARG, AL_ERR_NOMEM
 *
 * Each backward step inverts the forward line of the same name:
 *   dctx = d_out Wo^T                       dWo = ctx^T d_out      dbo = sum d_out
 *   dw   = dctx v^T (+ dctx rel_v[r]^T) (+ d_weights)
 *   dv   = w^T dctx                         drel_v = wsum^T dctx
 *   ds   = w * (dw - sum_j w dw)  on live rows, 0 on fully masked rows
 *   dqs  = ds k + dsum rel_k                dk = ds^T qs           drel_k = dsum^T qs
 *   dq   = dqs / sqrt(HS), then the projections' backward.
 */
int AL_FN(mha_backward)(real *dquery, real *dkey, real *dvalue,
                        real *dWq, real *dbq, real *dWk, real *dbk,
                        real *dWv, real *dbv, real *dWo, real *dbo,
                        real *drel_k, real *drel_v,
                        const real *weights, const real *qs, const real *kp,
                        const real *vp, const real *ctx, const uint8_t *live,
                        const real *d_out, const real *d_weights,
                        const real *query, const real *key, const real *value,
                        const real *Wq, const real *Wk, const real *Wv, const real *Wo,
                        const real *rel_k, const real *rel_v,
                        size_t B, size_t Tq, size_t Tv, size_t Dq, size_t Dk, size_t Dv,
                        size_t NH, size_t HS, size_t HSv, size_t Dout, size_t K) {
    const size_t R = 2 * K + 1, QW = NH * HS, VW = NH * HSv, rows = B * Tq * NH;
    real scale;
    real *dctx = NULL, *dqs = NULL, *dkp = NULL, *dvp = NULL, *dP = NULL;
    real *gv = NULL, *wsum = NULL, *dsum = NULL;
    size_t b, h, i, j;
    int status = AL_OK;

    if (NH == 0 || HS == 0) return AL_ERR_ARG;
    if ((rel_k == NULL) != (drel_k == NULL) || (rel_v == NULL) != (drel_v == NULL))
        return AL_ERR_ARG;
    scale = (real)1 / AL_SQRT((real)HS);
    dctx = AL_SFN(mha_alloc)(B * Tq * VW, 0);
    dqs = AL_SFN(mha_alloc)(B * Tq * QW, 0);
    dkp = AL_SFN(mha_alloc)(B * Tv * QW, 0);
    dvp = AL_SFN(mha_alloc)(B * Tv * VW, 0);
    dP = AL_SFN(mha_alloc)(Tq * Tv, 0);
    if (rel_v != NULL) {
        gv = AL_SFN(mha_alloc)(rows * R, 0);
        wsum = AL_SFN(mha_alloc)(rows * R, 1);
    }
    if (rel_k != NULL) dsum = AL_SFN(mha_alloc)(rows * R, 1);
    if (!dctx || !dqs || !dkp || !dvp || !dP || (rel_v && (!gv || !wsum)) || (rel_k && !dsum)) {
        status = AL_ERR_NOMEM;
        goto done;
    }

    /* Output projection. */
    AL_SFN(al_project_backward)(dctx, dWo, dbo, d_out, ctx, Wo, B * Tq, VW, Dout, 0);
    /* gv (B*Tq*NH, R) = dctx (B*Tq*NH, HSv) rel_v^T: d(weight) of each relative value. */
    if (gv != NULL)
        AL_SFN(al_gemm)(0, 1, rows, R, HSv, (real)1, dctx, HSv, rel_v, HSv, (real)0, gv, R);

    for (b = 0; b < B; b++) {
        for (h = 0; h < NH; h++) {
            const real *W = weights + (b * NH + h) * Tq * Tv;
            const real *dctx_bh = dctx + b * Tq * VW + h * HSv;
            /* dP (Tq,Tv) = dctx[b,:,h] v[b,:,h]^T */
            AL_SFN(al_gemm)(0, 1, Tq, Tv, HSv, (real)1, dctx_bh, VW, vp + b * Tv * VW + h * HSv, VW,
                            (real)0, dP, Tv);
            /* dv[b,:,h] (Tv,HSv) = w^T dctx[b,:,h] */
            AL_SFN(al_gemm)(1, 0, Tv, HSv, Tq, (real)1, W, Tv, dctx_bh, VW, (real)0,
                            dvp + b * Tv * VW + h * HSv, VW);
            for (i = 0; i < Tq; i++) {
                const real *w = W + i * Tv;
                real *dp = dP + i * Tv;
                const size_t row = (b * Tq + i) * NH + h;
                if (d_weights != NULL) {
                    const real *dw = d_weights + ((b * NH + h) * Tq + i) * Tv;
                    for (j = 0; j < Tv; j++) dp[j] += dw[j];
                }
                if (gv != NULL) {
                    const real *g = gv + row * R;
                    real *a = wsum + row * R;
                    for (j = 0; j < Tv; j++) {
                        const size_t r = AL_SFN(mha_rel_index)(i, j, K);
                        dp[j] += g[r];
                        a[r] += w[j];
                    }
                }
                /* softmax backward; a fully masked row's weights are constants. */
                if (!live[(b * NH + h) * Tq + i]) {
                    for (j = 0; j < Tv; j++) dp[j] = (real)0;
                } else {
                    AL_SFN(softmax_backward_row)(dp, w, Tv);
                }
                if (dsum != NULL) {
                    real *d = dsum + row * R;
                    for (j = 0; j < Tv; j++) d[AL_SFN(mha_rel_index)(i, j, K)] += dp[j];
                }
            }
            /* dqs[b,:,h] (Tq,HS) = ds k[b,:,h];  dk[b,:,h] (Tv,HS) = ds^T qs[b,:,h] */
            AL_SFN(al_gemm)(0, 0, Tq, HS, Tv, (real)1, dP, Tv, kp + b * Tv * QW + h * HS, QW,
                            (real)0, dqs + b * Tq * QW + h * HS, QW);
            AL_SFN(al_gemm)(1, 0, Tv, HS, Tq, (real)1, dP, Tv, qs + b * Tq * QW + h * HS, QW,
                            (real)0, dkp + b * Tv * QW + h * HS, QW);
        }
    }
    /* Relative terms, each one GEMM over all (b, i, h) rows. */
    if (rel_v != NULL)
        AL_SFN(al_gemm)(1, 0, R, HSv, rows, (real)1, wsum, R, dctx, HSv, (real)0, drel_v, HSv);
    if (rel_k != NULL) {
        AL_SFN(al_gemm)(0, 0, rows, HS, R, (real)1, dsum, R, rel_k, HS, (real)1, dqs, HS);
        AL_SFN(al_gemm)(1, 0, R, HS, rows, (real)1, dsum, R, qs, HS, (real)0, drel_k, HS);
    }
    for (i = 0; i < B * Tq * QW; i++) dqs[i] *= scale;

    /* Input projections. */
    AL_SFN(al_project_backward)(dquery, dWq, dbq, dqs, query, Wq, B * Tq, Dq, QW, 0);
    AL_SFN(al_project_backward)(dkey, dWk, dbk, dkp, key, Wk, B * Tv, Dk, QW, 0);
    AL_SFN(al_project_backward)(dvalue, dWv, dbv, dvp, value, Wv, B * Tv, Dv, VW, 0);

done:
    free(dctx); free(dqs); free(dkp); free(dvp); free(dP);
    free(gv); free(wsum); free(dsum);
    return status;
}
