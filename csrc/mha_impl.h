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

/* Threads for B*NH (b, h) blocks of Tq x Tv scores: the budget, when there is enough work to
 * pay for a team (AL_MHA_TEAM_MIN), at most one per block. */
static int AL_SFN(mha_team_size)(size_t B, size_t NH, size_t Tq, size_t Tv) {
    int nt = al_blas_threads();
    if (nt > 1 && (double)B * NH * Tq * Tv < AL_MHA_TEAM_MIN) nt = 1;
    if (nt > (int)(B * NH)) nt = (int)(B * NH);
    return nt < 1 ? 1 : nt;
}

/* The forward's (b, h) blocks, on a team (or the caller alone): each thread takes whole
 * blocks, their score product, softmax rows and context product while the block is in its
 * cache. With `own` (weights not kept) a thread's scores live in its own scratch block. */
typedef struct {
    AL_SFN(mha_rows_ctx) rows;
    real *scr;                   /* per thread nscr reals: packed k^T (np), v buffer, [block] */
    real *ctx;
    const real *qs, *kp, *vp;
    size_t nscr, np, B, HS, HSv;
    int isa, own;
} AL_SFN(mha_blocks_ctx);

static void AL_SFN(mha_blocks_work)(void *arg, int tid, int nt) {
    const AL_SFN(mha_blocks_ctx) *c = (const AL_SFN(mha_blocks_ctx) *)arg;
    AL_SFN(mha_rows_ctx) rc = c->rows;
    const size_t Tq = rc.Tq, Tv = rc.Tv, NH = rc.NH;
    real *P = c->scr + (size_t)tid * c->nscr, *vbuf = P + c->np;
    real *blk = vbuf + AL_SFN(al_bmm_nbuf)(c->isa, Tv, c->HSv);
    uint8_t *rowm = rc.rowm + (size_t)tid * (Tv > 0 ? Tv : 1);
    size_t k0, k1, k;
    al_split(c->B * NH, nt, tid, &k0, &k1);
    for (k = k0; k < k1; k++) {
        const size_t b = k / NH, h = k % NH;
        real *S = c->own ? blk : c->rows.weights + k * Tq * Tv;
        if (c->own) {
            rc.weights = blk;
            rc.wbase = k * Tq;
        }
        AL_SFN(mha_scores)(S, P, c->qs, c->kp, b, h, Tq, Tv, NH, c->HS, c->isa);
        AL_SFN(mha_rows)(&rc, k * Tq, (k + 1) * Tq, rowm);
        /* ctx[b,:,h] (ld NH*HSv) = w v[b,:,h] */
        AL_SFN(al_bmm_product)(c->isa, c->ctx + (b * Tq * NH + h) * c->HSv, NH * c->HSv, S,
                                 c->vp + (b * Tv * NH + h) * c->HSv, NH * c->HSv, vbuf, Tq, Tv,
                                 c->HSv);
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
    real *rq = NULL, *wsum = NULL;
    size_t i;

    if (NH == 0 || HS == 0) return AL_ERR_ARG;
    scale = (real)1 / AL_SQRT((real)HS);
    if (rel_k != NULL) rq = AL_SFN(mha_alloc)(rows * R, 0);
    if (rel_v != NULL) wsum = AL_SFN(mha_alloc)(rows * R, 1);
    if ((rel_k != NULL && rq == NULL) || (rel_v != NULL && wsum == NULL)) {
        free(rq); free(wsum);
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
        AL_SFN(mha_blocks_ctx) bc;
        const int isa = al_pg_isa_for(0);
        const size_t TT = Tq * Tv;
        /* one thread: the caller alone, the same blocks in the same order (the same bits) */
        const int nt = AL_SFN(mha_team_size)(B, NH, Tq, Tv);
        uint8_t *rowms;
        c.weights = weights; c.wbase = 0; c.live = live; c.rq = rq; c.wsum = wsum;
        c.attn_mask = attn_mask; c.query_mask = query_mask; c.value_mask = value_mask;
        c.key_mask = key_mask; c.rows = B * NH * Tq; c.Tq = Tq; c.Tv = Tv; c.NH = NH; c.K = K;
        c.per_head = attn_mask_per_head; c.causal = causal; c.fully_masked = fully_masked;
        bc.np = AL_SFN(al_pg_size)(isa, HS, Tv) + 1;
        bc.own = weights == NULL;
        bc.nscr = bc.np + AL_SFN(al_bmm_nbuf)(isa, Tv, HSv) + (bc.own ? TT : 0) + 1;
        rowms = (uint8_t *)malloc((size_t)nt * (Tv > 0 ? Tv : 1));
        bc.scr = AL_SFN(mha_alloc)((size_t)nt * bc.nscr, 0);
        if (rowms == NULL || bc.scr == NULL) {
            free(rowms); free(bc.scr); free(rq); free(wsum);
            return AL_ERR_NOMEM;
        }
        c.rowm = rowms;
        bc.rows = c; bc.ctx = ctx; bc.qs = qs; bc.kp = kp; bc.vp = vp; bc.B = B; bc.HS = HS;
        bc.HSv = HSv; bc.isa = isa;
        al_team_go(nt, AL_SFN(mha_blocks_work), &bc, NULL);
        free(rowms);
        free(bc.scr);
    }
    /* ctx (B*Tq*NH, HSv) += wsum (B*Tq*NH, R) rel_v (R, HSv). */
    if (wsum != NULL)
        AL_SFN(al_gemm)(0, 0, rows, HSv, R, (real)1, wsum, R, rel_v, HSv, (real)1, ctx, HSv);

    AL_SFN(al_project)(out, ctx, Wo, bo, B * Tq, VW, Dout);
    free(rq); free(wsum);
    return AL_OK;
}

typedef struct {
    const real *weights, *d_weights, *qs, *kp, *vp, *dctx, *gv;
    const uint8_t *live;
    real *dqs, *dkp, *dvp, *wsum, *dsum, *scratch;
    size_t B, Tq, Tv, NH, HS, HSv, K, nscr;
    int isa;
} AL_SFN(mha_bwd_ctx);

/* Reals of one thread's scratch: packed v^T, dP (Tq, Tv), the transposed dctx, qs and k blocks
 * (or packed k), the transposed products' output, a partial panel; 0 on overflow. */
static size_t AL_SFN(mha_bwd_scratch)(int isa, size_t Tq, size_t Tv, size_t HS, size_t HSv) {
    const double nc = (double)AL_SFN(al_pg_nc)(isa), HM = (double)(HS > HSv ? HS : HSv);
    const double big = (double)(Tq > Tv ? Tq : Tv);
    /* al_pg_size and al_bmm_nbuf in double: ceil(N / nc) nc K */
    const double pv = ceil((double)Tv / nc) * nc * (double)HSv;
    const double pk = HS < AL_BMM_DOT_N ? (double)HS * Tv : ceil((double)HS / nc) * nc * Tv;
    const double n = pv + (double)Tq * Tv + (double)HSv * Tq + (double)HS * Tq + pk + HM * Tv +
                     big * nc + 8.0;
    return n * sizeof(real) < (double)((size_t)-1 / 2) ? (size_t)n : 0;
}

/* Block (b, h) of the backward (the docstring of mha_backward below gives the math):
 *   dP (Tq,Tv) = dctx_bh v_bh^T                  packed v^T, K = HSv
 *   rows: + d_weights, + relative-value terms, softmax backward, relative-key bucket sums
 *   dv_bh^T (HSv,Tv) = dctx_bh^T w               w read in place (whole panels)
 *   dk_bh^T (HS,Tv)  = qs_bh^T ds                ds read in place
 *   dqs_bh (Tq,HS)   = ds k_bh                   al_bmm_product
 * Every output element is written by this block alone (the relative sums by row (b, i, h)). */
static void AL_SFN(mha_bwd_block)(const AL_SFN(mha_bwd_ctx) *c, size_t b, size_t h, real *scr) {
    const size_t Tq = c->Tq, Tv = c->Tv, NH = c->NH, HS = c->HS, HSv = c->HSv, K = c->K;
    const size_t QW = NH * HS, VW = NH * HSv, R = 2 * K + 1;
    const int isa = c->isa;
    const real *W = c->weights + (b * NH + h) * Tq * Tv;
    const real *dctx_bh = c->dctx + b * Tq * VW + h * HSv;
    const real *q_bh = c->qs + b * Tq * QW + h * HS, *k_bh = c->kp + b * Tv * QW + h * HS;
    real *Pv = scr, *dP = Pv + AL_SFN(al_pg_size)(isa, HSv, Tv), *ctT = dP + Tq * Tv;
    real *qT = ctT + HSv * Tq, *kT = qT + HS * Tq;
    real *oT = kT + AL_SFN(al_bmm_nbuf)(isa, Tv, HS);
    real *tail = oT + (HS > HSv ? HS : HSv) * Tv;
    size_t i, j;

    /* dP = dctx_bh v_bh^T */
    AL_SFN(al_pg_pack)(isa, Pv, c->vp + b * Tv * VW + h * HSv, VW, 1, HSv, Tv);
    AL_SFN(al_pg_gemm)(isa, dP, Tv, dctx_bh, VW, 1, Pv, 0, NULL, 0, Tq, Tv, HSv);
    for (i = 0; i < Tq; i++) {
        const real *w = W + i * Tv;
        real *dp = dP + i * Tv;
        const size_t row = (b * Tq + i) * NH + h;
        if (c->d_weights != NULL) {
            const real *dw = c->d_weights + ((b * NH + h) * Tq + i) * Tv;
            for (j = 0; j < Tv; j++) dp[j] += dw[j];
        }
        if (c->gv != NULL) {
            const real *g = c->gv + row * R;
            real *a = c->wsum + row * R;
            for (j = 0; j < Tv; j++) {
                const size_t r = AL_SFN(mha_rel_index)(i, j, K);
                dp[j] += g[r];
                a[r] += w[j];
            }
        }
        /* softmax backward; a fully masked row's weights are constants. */
        if (!c->live[(b * NH + h) * Tq + i]) {
            for (j = 0; j < Tv; j++) dp[j] = (real)0;
        } else {
            AL_SFN(softmax_backward_row)(dp, w, Tv);
        }
        if (c->dsum != NULL) {
            real *d = c->dsum + row * R;
            for (j = 0; j < Tv; j++) d[AL_SFN(mha_rel_index)(i, j, K)] += dp[j];
        }
    }
    /* dv_bh = (dctx_bh^T w)^T */
    AL_SFN(al_pg_transpose)(ctT, Tq, dctx_bh, VW, Tq, HSv);
    AL_SFN(al_bmm_gemm_rm)(isa, oT, Tv, ctT, Tq, W, Tv, tail, HSv, Tv, Tq);
    AL_SFN(al_pg_transpose)(c->dvp + b * Tv * VW + h * HSv, VW, oT, Tv, HSv, Tv);
    /* dk_bh = (qs_bh^T ds)^T */
    AL_SFN(al_pg_transpose)(qT, Tq, q_bh, QW, Tq, HS);
    AL_SFN(al_bmm_gemm_rm)(isa, oT, Tv, qT, Tq, dP, Tv, tail, HS, Tv, Tq);
    AL_SFN(al_pg_transpose)(c->dkp + b * Tv * QW + h * HS, QW, oT, Tv, HS, Tv);
    /* dqs_bh = ds k_bh */
    AL_SFN(al_bmm_product)(isa, c->dqs + b * Tq * QW + h * HS, QW, dP, k_bh, QW, kT, Tq, Tv,
                             HS);
}

static void AL_SFN(mha_bwd_work)(void *arg, int tid, int nt) {
    const AL_SFN(mha_bwd_ctx) *c = (const AL_SFN(mha_bwd_ctx) *)arg;
    size_t k0, k1, k;
    al_split(c->B * c->NH, nt, tid, &k0, &k1);
    for (k = k0; k < k1; k++)
        AL_SFN(mha_bwd_block)(c, k / c->NH, k % c->NH, c->scratch + (size_t)tid * c->nscr);
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
    real *dctx = NULL, *dqs = NULL, *dkp = NULL, *dvp = NULL;
    real *gv = NULL, *wsum = NULL, *dsum = NULL;
    size_t i;
    int status = AL_OK;

    if (NH == 0 || HS == 0) return AL_ERR_ARG;
    if ((rel_k == NULL) != (drel_k == NULL) || (rel_v == NULL) != (drel_v == NULL))
        return AL_ERR_ARG;
    scale = (real)1 / AL_SQRT((real)HS);
    dctx = AL_SFN(mha_alloc)(B * Tq * VW, 0);
    dqs = AL_SFN(mha_alloc)(B * Tq * QW, 0);
    dkp = AL_SFN(mha_alloc)(B * Tv * QW, 0);
    dvp = AL_SFN(mha_alloc)(B * Tv * VW, 0);
    if (rel_v != NULL) {
        gv = AL_SFN(mha_alloc)(rows * R, 0);
        wsum = AL_SFN(mha_alloc)(rows * R, 1);
    }
    if (rel_k != NULL) dsum = AL_SFN(mha_alloc)(rows * R, 1);
    if (!dctx || !dqs || !dkp || !dvp || (rel_v && (!gv || !wsum)) || (rel_k && !dsum)) {
        status = AL_ERR_NOMEM;
        goto done;
    }

    /* Output projection. */
    AL_SFN(al_project_backward)(dctx, dWo, dbo, d_out, ctx, Wo, B * Tq, VW, Dout, 0);
    /* gv (B*Tq*NH, R) = dctx (B*Tq*NH, HSv) rel_v^T: d(weight) of each relative value. */
    if (gv != NULL)
        AL_SFN(al_gemm)(0, 1, rows, R, HSv, (real)1, dctx, HSv, rel_v, HSv, (real)0, gv, R);

    {
        /* The (b, h) blocks: split among a team when there is enough of them (each block on
         * one thread, on the packed and dot tiles above: no BLAS call inside the team). */
        AL_SFN(mha_bwd_ctx) c;
        const int nt = AL_SFN(mha_team_size)(B, NH, Tq, Tv);
        c.isa = al_pg_isa_for(0);
        c.nscr = AL_SFN(mha_bwd_scratch)(c.isa, Tq, Tv, HS, HSv);
        c.scratch = AL_SFN(mha_alloc)((size_t)nt * c.nscr, 0);
        if (c.nscr == 0 || c.scratch == NULL) {
            status = AL_ERR_NOMEM;
            goto done;
        }
        c.weights = weights; c.d_weights = d_weights; c.qs = qs; c.kp = kp; c.vp = vp;
        c.dctx = dctx; c.gv = gv; c.live = live; c.dqs = dqs; c.dkp = dkp; c.dvp = dvp;
        c.wsum = wsum; c.dsum = dsum; c.B = B; c.Tq = Tq; c.Tv = Tv; c.NH = NH; c.HS = HS;
        c.HSv = HSv; c.K = K;
        al_team_go(nt, AL_SFN(mha_bwd_work), &c, NULL);
        free(c.scratch);
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
    free(dctx); free(dqs); free(dkp); free(dvp);
    free(gv); free(wsum); free(dsum);
    return status;
}
