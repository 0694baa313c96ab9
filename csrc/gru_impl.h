/*
 * gru_impl.h -- GRU forward and backward (BPTT) over a whole sequence; part of the type
 * template (al_real.h), compiled for float32 and float64 by gru.c.
 *
 * Keras 3 GRU semantics (keras/src/layers/rnn/gru.py, GRUCell.call), gate order [z, r, h],
 * k in {z, r, h}, bx / bh the input / recurrent bias rows:
 *   x_k = (x_t * p_k) W_k + bx_k
 *   reset_after = 1 (Keras' default, bias (2, 3H)):
 *     u_k = (h_{t-1} * q_k) U_k + bh_k
 *     z = ra(x_z + u_z)   r = ra(x_r + u_r)   n = a(x_h + r * u_h)
 *   reset_after = 0 (bias (3H,)):
 *     z = ra(x_z + (h_{t-1} q_z) U_z)   r = ra(x_r + (h_{t-1} q_r) U_r)
 *     n = a(x_h + (r * h_{t-1} * q_h) U_h)
 *   h_t = z h_{t-1} + (1 - z) n                      (ra = recurrent_activation)
 * Dropout (training only): p_k (B,D) and q_k (B,H) are per-gate masks fixed over time, as
 * Keras 3.15.1 draws them with recurrent_dropout > 0 (GRUCell implementation 1, three masks
 * each), given concatenated as dp_mask (B,3D) and rec_mask (B,3H); NULL means all ones. The
 * carried state is the undropped h. (With dropout alone Keras uses one (B,D) mask on x: the
 * caller multiplies it into x.)
 * Masked step (mask[b,t] == 0): h is carried over, the output repeats the previous step's
 * (zero before the sample's first unmasked step, as TF's CPU path).
 * go_backwards: step s reads time t = T-1-s; step-indexed buffers are in processing order,
 * gate buffers are indexed by time (like the LSTM's).
 *
 * Every product runs on the packed tiles of lstm_pgemm.h (al_pg_gemm: each element one chain
 * over k in order, starting from the bias), never the BLAS: the input projection of all steps,
 * the per-step recurrent products (h_{t-1} U, dZ_t U^T), and the backward's dx, dW, dU. The
 * elementwise cells (gru_cell_zr, gru_cell_nh, gru_bwd_cell) are compiled once per path and
 * dispatched on the call's path (isa), like the LSTM's lstm_cell_row. So a sample's results
 * are the same bits whatever the batch size, its position and the thread count; the AVX2 and
 * AVX-512 paths give the same bits (the same FMAs in the same order), the generic path (no
 * FMA) agrees with them to rounding (tests/test_isa_paths.py).
 */

/* name(isa, params...): body compiled for AVX-512, for AVX2 + FMA and portably, the copy
 * chosen by the call's path (not GCC's target_clones, which looks at the CPU only and so
 * ignored ATTNLSTM_ISA; its "avx2" clone had no FMA, unlike the AVX-512 one). */
#if AL_PG_X86
#  define AL_GRU_PATHS(name, body, params, args)                                            \
    __attribute__((target("avx512f,prefer-vector-width=512"))) static void                  \
    AL_SFN(name##_512) params { AL_SFN(body) args; }                                        \
    __attribute__((target("avx2,fma"))) static void AL_SFN(name##_256) params {             \
        AL_SFN(body) args;                                                                  \
    }                                                                                       \
    static void AL_SFN(name##_gen) params { AL_SFN(body) args; }
#  define AL_GRU_CALL(isa, name, args)                                                      \
    do {                                                                                    \
        if ((isa) == AL_PG_AVX512) AL_SFN(name##_512) args;                                 \
        else if ((isa) == AL_PG_AVX2) AL_SFN(name##_256) args;                              \
        else AL_SFN(name##_gen) args;                                                       \
    } while (0)
#else
#  define AL_GRU_PATHS(name, body, params, args)                                            \
    static void AL_SFN(name##_gen) params { AL_SFN(body) args; }
#  define AL_GRU_CALL(isa, name, args) AL_SFN(name##_gen) args
#endif

/* The cells work in chunks of AL_GRU_CW elements (64 bytes: one AVX-512 vector, two AVX2
 * ones), the last one through zero-padded local rows: every element goes through the same
 * vector code on every path. (GCC runs a plain loop's remainder as scalar code, which
 * contracts a * b + c into FMAs in other places than the vector body: n = 40 floats were all
 * vector on AVX2 but 32 + 8 scalar on AVX-512, and the bits differed.) */
#define AL_GRU_CW (64 / sizeof(real))
#define AL_GRU_ALIGNED __attribute__((aligned(64)))

/* g = ra(g + u) over one chunk: the z and r gates (u the recurrent products with bias). */
static inline __attribute__((always_inline)) void AL_SFN(gru_zr_chunk)(
    real *restrict g, const real *restrict u, int ract) {
    size_t j;
    for (j = 0; j < AL_GRU_CW; j++) g[j] = AL_SFN(act_scalar)(ract, g[j] + u[j]);
}
static inline __attribute__((always_inline)) void AL_SFN(gru_zr_sel)(real *g, const real *u,
                                                                     size_t n, int ract) {
    size_t j0, j;
    for (j0 = 0; j0 + AL_GRU_CW <= n; j0 += AL_GRU_CW) AL_SFN(gru_zr_chunk)(g + j0, u + j0, ract);
    if (j0 < n) {
        const size_t w = n - j0;
        real gb[AL_GRU_CW] AL_GRU_ALIGNED, ub[AL_GRU_CW] AL_GRU_ALIGNED;
        for (j = 0; j < AL_GRU_CW; j++) {
            gb[j] = j < w ? g[j0 + j] : (real)0;
            ub[j] = j < w ? u[j0 + j] : (real)0;
        }
        AL_SFN(gru_zr_chunk)(gb, ub, ract);
        for (j = 0; j < w; j++) g[j0 + j] = gb[j];
    }
}
/* g (n) = ra(g + u) for one row's z and r (n = 2H). */
static inline __attribute__((always_inline)) void AL_SFN(gru_cell_zr_body)(
    real *g, const real *u, size_t n, int ract) {
    if (ract == AL_ACT_SIGMOID) AL_SFN(gru_zr_sel)(g, u, n, AL_ACT_SIGMOID);
    else AL_SFN(gru_zr_sel)(g, u, n, ract);
}
AL_GRU_PATHS(gru_cell_zr, gru_cell_zr_body,
             (real *g, const real *u, size_t n, int ract), (g, u, n, ract))

/* One chunk of the rest of a step: n = a(x_h + r u_h) (reset_after) or a(x_h + u_h), stored
 * over x_h (gn); h = z h_{t-1} + (1 - z) n (hp NULL: h_{t-1} = 0). */
static inline __attribute__((always_inline)) void AL_SFN(gru_nh_chunk)(
    const real *restrict gz, const real *restrict gr, real *restrict gn, const real *restrict uh,
    const real *restrict hp, real *restrict hn, int reset_after, int act) {
    size_t j;
    for (j = 0; j < AL_GRU_CW; j++) {
        const real pre = reset_after ? gn[j] + gr[j] * uh[j] : gn[j] + uh[j];
        const real a = AL_SFN(act_scalar)(act, pre);
        gn[j] = a;
        hn[j] = hp ? gz[j] * hp[j] + ((real)1 - gz[j]) * a : ((real)1 - gz[j]) * a;
    }
}
static inline __attribute__((always_inline)) void AL_SFN(gru_cell_nh_sel)(
    real *g, const real *uh, const real *hp, real *hn, size_t H, size_t gs, int reset_after,
    int act) {
    size_t j0, j;
    for (j0 = 0; j0 + AL_GRU_CW <= H; j0 += AL_GRU_CW)
        AL_SFN(gru_nh_chunk)(g + j0, g + gs + j0, g + 2 * gs + j0, uh + j0, hp ? hp + j0 : NULL,
                             hn + j0, reset_after, act);
    if (j0 < H) {
        const size_t w = H - j0;
        real b[6][AL_GRU_CW] AL_GRU_ALIGNED;
        for (j = 0; j < AL_GRU_CW; j++) {
            const int in = j < w;
            b[0][j] = in ? g[j0 + j] : (real)0;
            b[1][j] = in ? g[gs + j0 + j] : (real)0;
            b[2][j] = in ? g[2 * gs + j0 + j] : (real)0;
            b[3][j] = in ? uh[j0 + j] : (real)0;
            b[4][j] = in && hp ? hp[j0 + j] : (real)0;
        }
        AL_SFN(gru_nh_chunk)(b[0], b[1], b[2], b[3], hp ? b[4] : NULL, b[5], reset_after, act);
        for (j = 0; j < w; j++) {
            g[2 * gs + j0 + j] = b[2][j];
            hn[j0 + j] = b[5][j];
        }
    }
}
/* The rest of one row's step for H units, g = [z, r, x_h] (z, r activated; the three blocks gs
 * apart: gs = H for a whole row, the row's 3H / 3 when a thread takes a block of units): n over
 * x_h, h into hn and on (when not NULL); sv (reset_after, not NULL) keeps u_h. */
static inline __attribute__((always_inline)) void AL_SFN(gru_cell_nh_body)(
    real *g, const real *uh, const real *hp, real *hn, real *on, real *sv, size_t H, size_t gs,
    int reset_after, int act) {
    size_t j;
    if (act == AL_ACT_TANH && hp != NULL) {
        if (reset_after) AL_SFN(gru_cell_nh_sel)(g, uh, hp, hn, H, gs, 1, AL_ACT_TANH);
        else AL_SFN(gru_cell_nh_sel)(g, uh, hp, hn, H, gs, 0, AL_ACT_TANH);
    } else {
        AL_SFN(gru_cell_nh_sel)(g, uh, hp, hn, H, gs, reset_after, act);
    }
    if (on)
        for (j = 0; j < H; j++) on[j] = hn[j];
    if (sv)
        for (j = 0; j < H; j++) sv[j] = uh[j];
}
AL_GRU_PATHS(gru_cell_nh, gru_cell_nh_body,
             (real *g, const real *uh, const real *hp, real *hn, real *on, real *sv, size_t H,
              size_t gs, int reset_after, int act),
             (g, uh, hp, hn, on, sv, H, gs, reset_after, act))

/* Threads for a call: each takes whole batch rows. nthreads is the budget
 * (set_num_threads); forced (tests): use it whenever B allows; otherwise only from
 * AL_SPLIT_FLOPS of recurrent products and AL_SPLIT_ROWS_B rows, the LSTM's rule
 * (lstm_pgemm.h: al_rnn_split). */
static int AL_SFN(gru_threads)(int nthreads, int forced, size_t B, size_t T, size_t H) {
    const double flops = 6.0 * (double)B * (double)H * (double)H * (double)T;
    int nt = nthreads < (int)B ? nthreads : (int)B;
    if (nt <= 1 || (!forced && (flops < AL_SPLIT_FLOPS || B < AL_SPLIT_ROWS_B))) return 1;
    return nt;
}

/* Everything a forward call's threads share (see gru_forward_impl). */
typedef struct {
    real *hs, *out, *gw, *rh, *tmp, *hd, *xd;
    const real *x, *h0, *dp_mask, *rec_mask, *bx, *bh, *PW, *PA, *PH, *PU;
    const uint8_t *mask;
    size_t B, T, D, H, nw, nu;
    int activation, recurrent_activation, reset_after, go_backwards, isa;
    int mode;                   /* AL_SPLIT_ROWS / AL_SPLIT_NONE, or AL_SPLIT_COLS (gru_fwd_units) */
    size_t nc;                  /* panel width of the packed matrices (units of a COLS block) */
    al_barrier bar;             /* AL_SPLIT_COLS: the steps' meeting point */
} AL_SFN(gru_fwd_ctx);

/* Input projection and time loop for batch rows [b0, b1): each row's recurrence is
 * independent, so threads split the rows and never meet inside the loop. */
static void AL_SFN(gru_fwd_rows)(const AL_SFN(gru_fwd_ctx) *c, size_t b0, size_t b1) {
    real *hs = c->hs, *out = c->out, *gw = c->gw, *rh = c->rh, *tmp = c->tmp, *hd = c->hd;
    const real *h0 = c->h0, *rec_mask = c->rec_mask, *bh = c->bh;
    const real *PA = c->PA, *PH = c->PH, *PU = c->PU;
    const uint8_t *mask = c->mask;
    const size_t T = c->T, D = c->D, H = c->H, G = 3 * H, M = b1 - b0, nu = c->nu;
    const size_t NA = c->reset_after ? 3 * H : 2 * H, r0 = b0 * T, r1 = b1 * T;
    const int activation = c->activation, recurrent_activation = c->recurrent_activation;
    const int reset_after = c->reset_after, go_backwards = c->go_backwards, isa = c->isa;
    size_t s, b, j, k;
    if (M == 0) return;
    /* input projection of this thread's rows: gw (rows, 3H) = bx + x W, per gate with
     * dp_mask (bias first, then k in order) */
    if (c->dp_mask == NULL) {
        AL_SFN(al_pg_gemm)(isa, gw + r0 * G, G, c->x + r0 * D, D, 1, c->PW, 0, c->bx, 0, r1 - r0,
                           G, D);
    } else {
        for (k = 0; k < 3; k++) {
            AL_SFN(al_mul_rows)(c->xd, c->x, c->dp_mask + k * D, 3 * D, r0, r1, T, D, 0);
            AL_SFN(al_pg_gemm)(isa, gw + r0 * G + k * H, G, c->xd + r0 * D, D, 1,
                               c->PW + k * c->nw, 0, c->bx ? c->bx + k * H : NULL, 0, r1 - r0, H,
                               D);
        }
    }
    for (s = 0; s < T; s++) {
        const size_t t = go_backwards ? T - 1 - s : s;
        const real *hprev = (s == 0) ? h0 : hs + (s - 1) * H;
        const size_t ldh = (s == 0) ? H : T * H;
        /* tmp (B, NA) = bh + h_{t-1} U[:, :NA], per gate with rec_mask */
        if (hprev == NULL) {
            for (b = b0; b < b1; b++)
                for (j = 0; j < NA; j++) tmp[b * G + j] = bh ? bh[j] : (real)0;
        } else if (rec_mask == NULL) {
            /* odd steps take U's panels in descending order (lstm_fwd_fused's reason) */
            AL_SFN(al_pg_gemm_ps_dir)(isa, tmp + b0 * G, G, hprev + b0 * ldh, ldh, 1, PA, 0,
                                      H * AL_SFN(al_pg_nc)(isa), bh, 0, M, NA, H, (int)(s & 1));
        } else {
            for (b = b0; b < b1; b++) {
                const real *hp = hprev + b * ldh, *q = rec_mask + b * G;
                for (k = 0; k < 3; k++)
                    for (j = 0; j < H; j++) hd[b * G + k * H + j] = hp[j] * q[k * H + j];
            }
            for (k = 0; k < NA / H; k++)
                AL_SFN(al_pg_gemm)(isa, tmp + b0 * G + k * H, G, hd + b0 * G + k * H, G, 1,
                                   PU + k * nu, 0, bh ? bh + k * H : NULL, 0, M, H, H);
        }
        /* z, r */
        for (b = b0; b < b1; b++)
            AL_GRU_CALL(isa, gru_cell_zr,
                        (gw + (b * T + t) * G, tmp + b * G, 2 * H, recurrent_activation));
        if (!reset_after) {
            /* hd (B,H) = r * h_{t-1} * q_h, then tmp_h = hd U_h */
            if (hprev == NULL) {
                for (b = b0; b < b1; b++)
                    for (j = 0; j < H; j++) tmp[b * G + 2 * H + j] = (real)0;
            } else {
                for (b = b0; b < b1; b++) {
                    const real *hp = hprev + b * ldh, *r = gw + (b * T + t) * G + H;
                    const real *q = rec_mask ? rec_mask + b * G + 2 * H : NULL;
                    real *d = hd + b * G + 2 * H;
                    for (j = 0; j < H; j++) d[j] = r[j] * hp[j] * (q ? q[j] : (real)1);
                }
                AL_SFN(al_pg_gemm)(isa, tmp + b0 * G + 2 * H, G, hd + b0 * G + 2 * H, G, 1, PH, 0,
                                   NULL, 0, M, H, H);
            }
        }
        /* n, h */
        for (b = b0; b < b1; b++) {
            real *g = gw + (b * T + t) * G;
            const real *hp = hprev ? hprev + b * ldh : NULL;
            real *hn = hs + (b * T + s) * H;
            real *on = out ? out + (b * T + s) * H : NULL;
            if (mask != NULL && !mask[b * T + t]) {
                for (j = 0; j < H; j++) {
                    hn[j] = hp ? hp[j] : (real)0;
                    on[j] = s > 0 ? on[j - H] : (real)0;
                }
                /* rh is the caller's saved array: 0 where the step is masked (the backward
                 * skips it), not stale memory */
                if (reset_after && rh)
                    for (j = 0; j < H; j++) rh[(b * T + t) * H + j] = (real)0;
                continue;
            }
            AL_GRU_CALL(isa, gru_cell_nh,
                        (g, tmp + b * G + 2 * H, hp, hn, on,
                         (reset_after && rh) ? rh + (b * T + t) * H : NULL, H, H, reset_after,
                         activation));
        }
    }
}

/* One thread's block of units [u0, u1) of a forward split by units (AL_SPLIT_COLS: small
 * batches whose U would otherwise stream from the L3 at every step, as the LSTM's). The input
 * projection is split by rows first; then each step every thread computes all rows' recurrent
 * products and gates for its units only (whole panels of the packed U, so the same tile chains
 * as one thread's) and meets the others at a barrier before the next step reads the whole
 * h_{t-1}; without reset_after a second barrier publishes r * h_{t-1} before its product. */
static void AL_SFN(gru_fwd_units)(AL_SFN(gru_fwd_ctx) *c, int tid, int nt) {
    real *hs = c->hs, *out = c->out, *gw = c->gw, *rh = c->rh, *tmp = c->tmp, *hd = c->hd;
    const real *h0 = c->h0, *bh = c->bh, *PA = c->PA, *PH = c->PH;
    const uint8_t *mask = c->mask;
    const size_t B = c->B, T = c->T, D = c->D, H = c->H, G = 3 * H, nc = c->nc;
    const size_t nb = c->reset_after ? 3 : 2;
    const int activation = c->activation, recurrent_activation = c->recurrent_activation;
    const int reset_after = c->reset_after, go_backwards = c->go_backwards, isa = c->isa;
    size_t r0, r1, p0, p1, u0, u1, n, s, b, j, kk;

    al_split(B * T, nt, tid, &r0, &r1);
    if (r1 > r0)
        AL_SFN(al_pg_gemm)(isa, gw + r0 * G, G, c->x + r0 * D, D, 1, c->PW, 0, c->bx, 0, r1 - r0,
                           G, D);
    al_barrier_wait(&c->bar);
    al_split(H / nc, nt, tid, &p0, &p1);
    u0 = p0 * nc;
    u1 = p1 * nc;
    n = u1 - u0;
    for (s = 0; s < T; s++) {
        const size_t t = go_backwards ? T - 1 - s : s;
        const real *hprev = (s == 0) ? h0 : hs + (s - 1) * H;
        const size_t ldh = (s == 0) ? H : T * H;
        /* tmp[:, k H + u0 .. k H + u1) = bh + h_{t-1} U for the gate blocks of PA */
        for (kk = 0; kk < nb && n > 0; kk++) {
            /* odd steps take the gate blocks and their panels in descending order (the
             * panels used last are still cached when the next step starts: lstm_fwd_fused) */
            const size_t col = ((s & 1) ? nb - 1 - kk : kk) * H + u0;
            if (hprev == NULL) {
                for (b = 0; b < B; b++)
                    for (j = 0; j < n; j++) tmp[b * G + col + j] = bh ? bh[col + j] : (real)0;
            } else {
                AL_SFN(al_pg_gemm_ps_dir)(isa, tmp + col, G, hprev, ldh, 1,
                                          PA + (col / nc) * H * nc, 0, H * nc,
                                          bh ? bh + col : NULL, 0, B, n, H, (int)(s & 1));
            }
        }
        for (b = 0; b < B && n > 0; b++) {
            real *g = gw + (b * T + t) * G;
            AL_GRU_CALL(isa, gru_cell_zr, (g + u0, tmp + b * G + u0, n, recurrent_activation));
            AL_GRU_CALL(isa, gru_cell_zr,
                        (g + H + u0, tmp + b * G + H + u0, n, recurrent_activation));
        }
        if (!reset_after) {
            /* hd[:, 2H + u] = r * h_{t-1} for this block; all blocks before the product */
            for (b = 0; b < B && hprev != NULL; b++) {
                const real *hp = hprev + b * ldh, *r = gw + (b * T + t) * G + H;
                for (j = u0; j < u1; j++) hd[b * G + 2 * H + j] = r[j] * hp[j];
            }
            al_barrier_wait(&c->bar);
            if (hprev == NULL) {
                for (b = 0; b < B; b++)
                    for (j = u0; j < u1; j++) tmp[b * G + 2 * H + j] = (real)0;
            } else if (n > 0) {
                AL_SFN(al_pg_gemm)(isa, tmp + 2 * H + u0, G, hd + 2 * H, G, 1,
                                   PH + (u0 / nc) * H * nc, 0, NULL, 0, B, n, H);
            }
        }
        for (b = 0; b < B && n > 0; b++) {
            real *g = gw + (b * T + t) * G;
            const real *hp = hprev ? hprev + b * ldh : NULL;
            real *hn = hs + (b * T + s) * H;
            real *on = out ? out + (b * T + s) * H : NULL;
            if (mask != NULL && !mask[b * T + t]) {
                for (j = u0; j < u1; j++) {
                    hn[j] = hp ? hp[j] : (real)0;
                    on[j] = s > 0 ? on[j - H] : (real)0;
                }
                if (reset_after && rh)   /* 0 where masked, as gru_fwd_rows */
                    for (j = u0; j < u1; j++) rh[(b * T + t) * H + j] = (real)0;
                continue;
            }
            AL_GRU_CALL(isa, gru_cell_nh,
                        (g + u0, tmp + b * G + 2 * H + u0, hp ? hp + u0 : NULL, hn + u0,
                         on ? on + u0 : NULL,
                         (reset_after && rh) ? rh + (b * T + t) * H + u0 : NULL, n, H,
                         reset_after, activation));
        }
        al_barrier_wait(&c->bar);
    }
}

static void AL_SFN(gru_fwd_work)(void *arg, int tid, int nt) {
    AL_SFN(gru_fwd_ctx) *c = (AL_SFN(gru_fwd_ctx) *)arg;
    size_t b0, b1;
    if (c->mode == AL_SPLIT_COLS) {
        AL_SFN(gru_fwd_units)(c, tid, nt);
        return;
    }
    al_split(c->B, nt, tid, &b0, &b1);
    AL_SFN(gru_fwd_rows)(c, b0, b1);
}

/*
 * gru_forward: the whole sequence in one call.
 *
 * outputs   hs    (B,T,H)  h after each processing step s
 *           out   (B,T,H)  layer output per step under the mask rule; NULL when mask is NULL
 *                          (the output sequence is then hs)
 * saved     gates (B,T,3H) indexed by time t: the activated [z, r, n] of the step that read
 *                          x[:, t] (entries of masked steps unspecified), or NULL (inference)
 *           rh    (B,T,H)  reset_after only: u_h (the recurrent product of the h block with
 *                          its bias, before r multiplies it), by time; or NULL (inference)
 * inputs    x (B,T,D), h0 (B,H) or NULL for zeros, mask (B,T) uint8 or NULL (nonzero = keep),
 *           dp_mask (B,3D) or NULL, rec_mask (B,3H) or NULL
 * weights   W (D,3H) kernel, U (H,3H) recurrent_kernel, bias (2,3H) if reset_after else
 *           (3H), or NULL
 * options   activation, recurrent_activation (AL_ACT_*), reset_after, go_backwards,
 *           impl (0 the selected path, 1 generic, 2/3 AVX2/AVX-512 as lstm_pgemm.h),
 *           nthreads, forced: thread budget (gru_threads); threads split the batch rows, and
 *           every element is computed by the same operations whatever the split
 * returns   AL_OK or AL_ERR_NOMEM
 */
int AL_FN(gru_forward_impl)(real *hs, real *out, real *gates, real *rh,
                            const real *x, const real *h0, const uint8_t *mask,
                            const real *dp_mask, const real *rec_mask,
                            const real *W, const real *U, const real *bias,
                            size_t B, size_t T, size_t D, size_t H,
                            int activation, int recurrent_activation, int reset_after,
                            int go_backwards, int impl, int nthreads, int forced) {
    const size_t G = 3 * H, NA = reset_after ? 3 * H : 2 * H;
    const real *bx = bias, *bh = (bias != NULL && reset_after) ? bias + G : NULL;
    const int isa = al_pg_choose(impl, B, T);
    size_t nws, npw, npu, nw = 0, nu = 0, k;
    real *ws, *gw, *tmp, *hd, *xd, *PW, *PA = NULL, *PH = NULL, *PU = NULL;

    if (B == 0 || T == 0) return AL_OK;
    if (dp_mask == NULL) {
        npw = AL_SFN(al_pg_size)(isa, D, G);
    } else {
        nw = AL_SFN(al_pg_size)(isa, D, H);
        npw = 3 * nw;
    }
    if (rec_mask == NULL) {
        npu = AL_SFN(al_pg_size)(isa, H, NA) + (reset_after ? 0 : AL_SFN(al_pg_size)(isa, H, H));
    } else {
        nu = AL_SFN(al_pg_size)(isa, H, H);
        npu = 3 * nu;
    }
    /* gates (if not saved) | tmp (B,3H) | hd (B,3H) | xd (B*T,D) with dp_mask | packed W, U */
    nws = (gates == NULL ? B * T * G : 0) + 2 * B * G + (dp_mask ? B * T * D : 0) + npw + npu + 1;
    ws = (real *)al_alloc_large(nws * sizeof(real));
    if (ws == NULL) return AL_ERR_NOMEM;
    gw = gates != NULL ? gates : ws;
    tmp = ws + (gates == NULL ? B * T * G : 0);
    hd = tmp + B * G;
    xd = hd + B * G;
    PW = xd + (dp_mask ? B * T * D : 0);
    if (dp_mask == NULL) {
        AL_SFN(al_pg_pack)(isa, PW, W, G, 0, D, G);
    } else {
        for (k = 0; k < 3; k++) AL_SFN(al_pg_pack)(isa, PW + k * nw, W + k * H, G, 0, D, H);
    }
    if (rec_mask == NULL) {
        PA = PW + npw;
        AL_SFN(al_pg_pack)(isa, PA, U, G, 0, H, NA);
        if (!reset_after) {
            PH = PA + AL_SFN(al_pg_size)(isa, H, NA);
            AL_SFN(al_pg_pack)(isa, PH, U + 2 * H, G, 0, H, H);
        }
    } else {
        PU = PW + npw;
        for (k = 0; k < 3; k++) AL_SFN(al_pg_pack)(isa, PU + k * nu, U + k * H, G, 0, H, H);
        PH = PU + 2 * nu;
    }

    {
        AL_SFN(gru_fwd_ctx) c;
        int nt = AL_SFN(gru_threads)(nthreads, forced, B, T, H);
        /* Small batches split by units where the LSTM's rule says so (al_rnn_split), but only
         * where rows do not split (B < AL_SPLIT_ROWS_B) or U outgrows the L2: with U in each
         * core's L2 the row split, which never meets, was faster (benchmarks/NOTES.md); and
         * without dropout masks, whose per-gate products run whole rows. */
        c.nc = AL_SFN(al_pg_nc)(isa);
        c.mode = nt > 1 ? AL_SPLIT_ROWS : AL_SPLIT_NONE;
        if (dp_mask == NULL && rec_mask == NULL &&
            (B < AL_SPLIT_ROWS_B || forced || al_u_outgrows_l2(3 * H * H * sizeof(real)))) {
            int ntc = 1;
            if (al_rnn_split(3, nthreads, forced, B, T, H, c.nc, sizeof(real), &ntc) ==
                AL_SPLIT_COLS) {
                c.mode = AL_SPLIT_COLS;
                nt = ntc;
            }
        }
        c.hs = hs; c.out = out; c.gw = gw; c.rh = rh; c.tmp = tmp; c.hd = hd; c.xd = xd;
        c.x = x; c.h0 = h0; c.dp_mask = dp_mask; c.rec_mask = rec_mask; c.bx = bx; c.bh = bh;
        c.PW = PW; c.PA = PA; c.PH = PH; c.PU = PU;
        c.mask = mask; c.B = B; c.T = T; c.D = D; c.H = H; c.nw = nw; c.nu = nu;
        c.activation = activation; c.recurrent_activation = recurrent_activation;
        c.reset_after = reset_after; c.go_backwards = go_backwards; c.isa = isa;
        al_team_go(nt, AL_SFN(gru_fwd_work), &c, c.mode == AL_SPLIT_COLS ? &c.bar : NULL);
    }
    free(ws);
    return AL_OK;
}

/* The elementwise part of one backward step for one sample (see gru_backward): from dh (the
 * gradient w.r.t. h_s, output gradients included), the activated gates g = [z, r, n], uh (the
 * saved u_h; reset_after only) and hp = h_{t-1} (NULL for zeros), writes dzx = [dz, dr, dn]
 * (dr only with reset_after; without it the caller adds dr after the U_h^T product), dzh (the
 * recurrent product's gradients; reset_after only) and di = dh z. In chunks as the forward
 * cells (AL_GRU_CW); specialised for (tanh, sigmoid) so that the loop vectorises.
 * Pointers: p[0..2] = dzx z, r, n; p[3..5] = dzh z, r, h; p[6] = di; q[0] = dh, q[1..3] = g z,
 * r, n; q[4] = uh; q[5] = hp. */
static inline __attribute__((always_inline)) void AL_SFN(gru_bwd_chunk)(
    real *restrict dxz, real *restrict dxr, real *restrict dxn, real *restrict dhz,
    real *restrict dhr, real *restrict dhh, real *restrict di, const real *restrict dh,
    const real *restrict zz, const real *restrict rr, const real *restrict nn,
    const real *restrict uh, const real *restrict hp, int reset_after, int act, int ract) {
    size_t j;
    for (j = 0; j < AL_GRU_CW; j++) {
        const real d = dh[j], hpj = hp ? hp[j] : (real)0;
        const real dn = d * ((real)1 - zz[j]) * AL_SFN(act_deriv)(act, nn[j]);
        const real dz = d * (hpj - nn[j]) * AL_SFN(act_deriv)(ract, zz[j]);
        dxz[j] = dz;
        dxn[j] = dn;
        di[j] = d * zz[j];
        if (reset_after) {
            const real dr = dn * uh[j] * AL_SFN(act_deriv)(ract, rr[j]);
            dxr[j] = dr;
            dhz[j] = dz;
            dhr[j] = dr;
            dhh[j] = dn * rr[j];
        }
    }
}

static inline __attribute__((always_inline)) void AL_SFN(gru_bwd_cell_sel)(
    real *dzx, real *dzh, real *di, const real *dh, const real *g, const real *uh,
    const real *hp, size_t H, int reset_after, int act, int ract) {
    size_t j0, j, k;
    for (j0 = 0; j0 + AL_GRU_CW <= H; j0 += AL_GRU_CW) {
        if (reset_after)
            AL_SFN(gru_bwd_chunk)(dzx + j0, dzx + H + j0, dzx + 2 * H + j0, dzh + j0,
                                  dzh + H + j0, dzh + 2 * H + j0, di + j0, dh + j0, g + j0,
                                  g + H + j0, g + 2 * H + j0, uh + j0, hp ? hp + j0 : NULL, 1,
                                  act, ract);
        else
            AL_SFN(gru_bwd_chunk)(dzx + j0, NULL, dzx + 2 * H + j0, NULL, NULL, NULL, di + j0,
                                  dh + j0, g + j0, g + H + j0, g + 2 * H + j0, NULL,
                                  hp ? hp + j0 : NULL, 0, act, ract);
    }
    if (j0 < H) {
        const size_t w = H - j0;
        /* o: dzx z, r, n, dzh z, r, h, di; in: dh, g z, r, n, uh, hp */
        real o[7][AL_GRU_CW] AL_GRU_ALIGNED, in[6][AL_GRU_CW] AL_GRU_ALIGNED;
        const real *src[6];
        src[0] = dh; src[1] = g; src[2] = g + H; src[3] = g + 2 * H; src[4] = uh; src[5] = hp;
        for (k = 0; k < 6; k++)
            for (j = 0; j < AL_GRU_CW; j++)
                in[k][j] = src[k] != NULL && j < w ? src[k][j0 + j] : (real)0;
        AL_SFN(gru_bwd_chunk)(o[0], o[1], o[2], o[3], o[4], o[5], o[6], in[0], in[1], in[2],
                              in[3], in[4], hp ? in[5] : NULL, reset_after, act, ract);
        for (j = 0; j < w; j++) {
            dzx[j0 + j] = o[0][j];
            dzx[2 * H + j0 + j] = o[2][j];
            di[j0 + j] = o[6][j];
            if (reset_after) {
                dzx[H + j0 + j] = o[1][j];
                dzh[j0 + j] = o[3][j];
                dzh[H + j0 + j] = o[4][j];
                dzh[2 * H + j0 + j] = o[5][j];
            }
        }
    }
}

static inline __attribute__((always_inline)) void AL_SFN(gru_bwd_cell_body)(
    real *dzx, real *dzh, real *di, const real *dh, const real *g, const real *uh,
    const real *hp, size_t H, int reset_after, int act, int ract) {
    if (act == AL_ACT_TANH && ract == AL_ACT_SIGMOID && hp != NULL) {
        if (reset_after) {
            AL_SFN(gru_bwd_cell_sel)(dzx, dzh, di, dh, g, uh, hp, H, 1, AL_ACT_TANH,
                                     AL_ACT_SIGMOID);
        } else {
            AL_SFN(gru_bwd_cell_sel)(dzx, dzh, di, dh, g, uh, hp, H, 0, AL_ACT_TANH,
                                     AL_ACT_SIGMOID);
        }
    } else {
        AL_SFN(gru_bwd_cell_sel)(dzx, dzh, di, dh, g, uh, hp, H, reset_after, act, ract);
    }
}
AL_GRU_PATHS(gru_bwd_cell, gru_bwd_cell_body,
             (real *dzx, real *dzh, real *di, const real *dh, const real *g, const real *uh,
              const real *hp, size_t H, int reset_after, int act, int ract),
             (dzx, dzh, di, dh, g, uh, hp, H, reset_after, act, ract))

/* Everything a backward call's threads share (see gru_backward_impl). */
typedef struct {
    real *dZx, *dZh, *dh, *dcar, *dir, *tmp;
    const real *hs, *gates, *rh, *h0, *rec_mask, *d_out, *d_last, *QA, *QH, *QU;
    const uint8_t *mask;
    size_t B, T, H, nu;
    int act, ract, reset_after, go_backwards, isa;
} AL_SFN(gru_bwd_ctx);

/* The backward time loop for batch rows [b0, b1) (independent rows, as the forward's). */
static void AL_SFN(gru_bwd_rows)(const AL_SFN(gru_bwd_ctx) *c, size_t b0, size_t b1) {
    real *dZx = c->dZx, *dZh = c->dZh, *dh = c->dh, *dcar = c->dcar, *dir = c->dir;
    real *tmp = c->tmp;
    const real *hs = c->hs, *gates = c->gates, *rh = c->rh, *h0 = c->h0;
    const real *rec_mask = c->rec_mask, *d_out = c->d_out, *d_last = c->d_last;
    const real *QA = c->QA, *QH = c->QH, *QU = c->QU;
    const uint8_t *mask = c->mask;
    const size_t T = c->T, H = c->H, G = 3 * H, M = b1 - b0, nu = c->nu;
    const size_t NA = c->reset_after ? 3 * H : 2 * H;
    const int act = c->act, ract = c->ract, reset_after = c->reset_after;
    const int go_backwards = c->go_backwards, isa = c->isa;
    size_t s, b, j, k;
    if (M == 0) return;
    for (s = T; s-- > 0;) {
        const size_t t = go_backwards ? T - 1 - s : s;
        const real *hprev = (s == 0) ? h0 : hs + (s - 1) * H;
        const size_t ldh = (s == 0) ? H : T * H;
        /* elementwise: dZx, dZh rows of time t; dir = dh z (the direct path) */
        for (b = b0; b < b1; b++) {
            real *dzx = dZx + (b * T + t) * G, *dzh = dZh + (b * T + t) * G;
            real *dhb = dh + b * H, *dc = dcar + b * H, *di = dir + b * H;
            const real *dob = d_out ? d_out + (b * T + s) * H : NULL;
            const real *dlb = (d_last && s == T - 1) ? d_last + b * H : NULL;
            const real *g = gates + (b * T + t) * G;
            const real *hp = hprev ? hprev + b * ldh : NULL;
            if (mask != NULL && !mask[b * T + t]) {
                for (j = 0; j < H; j++)
                    dc[j] += (dob ? dob[j] : (real)0) + (dlb ? dlb[j] : (real)0);
                for (j = 0; j < G; j++) dzx[j] = (real)0;
                if (reset_after)
                    for (j = 0; j < G; j++) dzh[j] = (real)0;
                continue;
            }
            for (j = 0; j < H; j++) {
                real d = dhb[j] + dc[j];
                if (dob) d += dob[j];
                if (dlb) d += dlb[j];
                dhb[j] = d;
                dc[j] = (real)0;
            }
            AL_GRU_CALL(isa, gru_bwd_cell,
                        (dzx, dzh, di, dhb, g, reset_after ? rh + (b * T + t) * H : NULL, hp, H,
                         reset_after, act, ract));
        }
        if (!reset_after) {
            /* e = dn U_h^T -> tmp[:, 2H:]; dr and the reset path into dir */
            AL_SFN(al_pg_gemm)(isa, tmp + b0 * G + 2 * H, G, dZx + (b0 * T + t) * G + 2 * H,
                               T * G, 1, QH, 0, NULL, 0, M, H, H);
            for (b = b0; b < b1; b++) {
                real *dzx = dZx + (b * T + t) * G, *di = dir + b * H;
                const real *g = gates + (b * T + t) * G, *e = tmp + b * G + 2 * H;
                const real *hp = hprev ? hprev + b * ldh : NULL;
                const real *q = rec_mask ? rec_mask + b * G + 2 * H : NULL;
                if (mask != NULL && !mask[b * T + t]) continue;
                for (j = 0; j < H; j++) {
                    const real qh = q ? q[j] : (real)1, hpj = hp ? hp[j] : (real)0;
                    dzx[H + j] = e[j] * hpj * qh * AL_SFN(act_deriv)(ract, g[H + j]);
                    di[j] += e[j] * g[H + j] * qh;
                }
            }
        }
        /* dh_{t-1} = dir + sum_k (dZh_k U_k^T) q_k over the NA columns */
        if (rec_mask == NULL) {
            /* odd steps take the panels in descending order (lstm_fwd_fused's reason) */
            AL_SFN(al_pg_gemm_ps_dir)(isa, tmp + b0 * G, G, dZh + (b0 * T + t) * G, T * G, 1, QA,
                                      0, NA * AL_SFN(al_pg_nc)(isa), NULL, 0, M, H, NA,
                                      (int)(s & 1));
            for (b = b0; b < b1; b++) {
                real *dhb = dh + b * H;
                const real *di = dir + b * H, *tb = tmp + b * G;
                if (mask != NULL && !mask[b * T + t]) continue;
                for (j = 0; j < H; j++) dhb[j] = di[j] + tb[j];
            }
        } else {
            for (k = 0; k < NA / H; k++)
                AL_SFN(al_pg_gemm)(isa, tmp + b0 * G + k * H, G, dZh + (b0 * T + t) * G + k * H,
                                   T * G, 1, QU + k * nu, 0, NULL, 0, M, H, H);
            for (b = b0; b < b1; b++) {
                real *dhb = dh + b * H;
                const real *di = dir + b * H, *tb = tmp + b * G, *q = rec_mask + b * G;
                if (mask != NULL && !mask[b * T + t]) continue;
                for (j = 0; j < H; j++) {
                    real v = di[j];
                    for (k = 0; k < NA / H; k++) v += tb[k * H + j] * q[k * H + j];
                    dhb[j] = v;
                }
            }
        }
    }
}

static void AL_SFN(gru_bwd_work)(void *arg, int tid, int nt) {
    const AL_SFN(gru_bwd_ctx) *c = (const AL_SFN(gru_bwd_ctx) *)arg;
    size_t b0, b1;
    al_split(c->B, nt, tid, &b0, &b1);
    AL_SFN(gru_bwd_rows)(c, b0, b1);
}

/* al_pg_pack(isa, P, Bm, ldb, 1, K, N) (P = pack(Bm^T), Bm (N, K) with row stride ldb), each
 * panel written by the blocked transpose (al_pg_transpose): the same P, faster than the
 * column-by-column copy for the backward's U^T and W^T. */
static void AL_SFN(gru_pack_t)(int isa, real *P, const real *Bm, size_t ldb, size_t K, size_t N) {
    const size_t nc = AL_SFN(al_pg_nc)(isa);
    size_t p, n0, k, c;
    for (p = 0, n0 = 0; n0 < N; p++, n0 += nc) {
        real *dst = P + p * K * nc;
        const size_t w = N - n0 < nc ? N - n0 : nc;
        AL_SFN(al_pg_transpose)(dst, nc, Bm + n0 * ldb, ldb, w, K);
        if (w < nc)
            for (k = 0; k < K; k++)
                for (c = w; c < nc; c++) dst[k * nc + c] = (real)0;
    }
}

/* The products after the backward's time loop, shared by its threads. */
typedef struct {
    real *dx, *dW, *dU, *xd, *tnbuf, *pWt;
    const real *Hd, *dZx, *dZh, *x, *dp_mask;
    size_t T, D, H, BT, HW, nw, ntn, tnkc;   /* tnbuf: ntn elements per thread, blocks of tnkc */
    int isa;
    al_barrier bar;
} AL_SFN(gru_post_ctx);

/* C (M, N; ldc) = A^T Z, A (K, M; row stride lda) and Z (K, N; row stride ldz) over the K =
 * B*T rows: a weight gradient, this thread's share of C's panels of columns, by al_pg_gemm_tn
 * (each element one chain over the K rows in order: the same bits for every thread count). */
static void AL_SFN(gru_wgrad)(AL_SFN(gru_post_ctx) *c, int tid, int nt, real *C, size_t ldc,
                              const real *A, size_t lda, const real *Z, size_t ldz, size_t M,
                              size_t N) {
    const AL_SFN(al_pg_tn) o = {C, ldc, A, lda, M};
    size_t n0, n1;
    if (M == 0 || N == 0) return;
    AL_SFN(al_pg_tn_cols)(c->isa, 0, N, nt, tid, &n0, &n1);
    AL_SFN(al_pg_gemm_tn)(c->isa, &o, 1, Z, ldz, n0, n1, c->BT, c->tnkc,
                          c->tnbuf + (size_t)tid * c->ntn);
}

/* dU_k (H, H) = Hd_k^T dZh_k; dW_k = (X p_k)^T dZx_k; dX = sum_k (dZx_k W_k^T) p_k (rows of
 * dX split over the threads). One product over all 3H columns where the gates share A. */
static void AL_SFN(gru_post_work)(void *arg, int tid, int nt) {
    AL_SFN(gru_post_ctx) *c = (AL_SFN(gru_post_ctx) *)arg;
    const size_t T = c->T, D = c->D, H = c->H, G = 3 * H, BT = c->BT, HW = c->HW;
    const int isa = c->isa;
    size_t k, r0, r1;
    al_split(BT, nt, tid, &r0, &r1);
    if (HW == H) {
        AL_SFN(gru_wgrad)(c, tid, nt, c->dU, G, c->Hd, HW, c->dZh, G, H, G);
    } else {
        for (k = 0; k < 3; k++)
            AL_SFN(gru_wgrad)(c, tid, nt, c->dU + k * H, G, c->Hd + (HW == H ? 0 : k * H), HW,
                              c->dZh + k * H, G, H, H);
    }
    if (D == 0) return;
    if (c->dp_mask == NULL) {
        AL_SFN(gru_wgrad)(c, tid, nt, c->dW, G, c->x, D, c->dZx, G, D, G);
        if (r1 > r0)
            AL_SFN(al_pg_gemm)(isa, c->dx + r0 * D, D, c->dZx + r0 * G, G, 1, c->pWt, 0, NULL, 0,
                               r1 - r0, D, G);
    } else {
        for (k = 0; k < 3; k++) {
            /* xd = x p_k (own rows); dW_k reads every row; then xd (own rows) = dZx_k W_k^T */
            AL_SFN(al_mul_rows)(c->xd, c->x, c->dp_mask + k * D, 3 * D, r0, r1, T, D, 0);
            al_barrier_wait(&c->bar);
            AL_SFN(gru_wgrad)(c, tid, nt, c->dW + k * H, G, c->xd, D, c->dZx + k * H, G, D, H);
            al_barrier_wait(&c->bar);
            if (r1 > r0) {
                AL_SFN(al_pg_gemm)(isa, c->xd + r0 * D, D, c->dZx + r0 * G + k * H, G, 1,
                                   c->pWt + k * c->nw, 0, NULL, 0, r1 - r0, D, H);
                AL_SFN(al_mul_rows)(c->dx, c->xd, c->dp_mask + k * D, 3 * D, r0, r1, T, D, k > 0);
            }
        }
    }
}

/*
 * gru_backward: backpropagation through time, inverting gru_forward.
 *
 * outputs   dx (B,T,D) (w.r.t. the x given to the forward, before dp_mask), dW (D,3H),
 *           dU (H,3H), db (2,3H) if reset_after else (3H) (computed whether or not the forward
 *           had a bias), dh0 (B,H) (also when the forward's h0 was NULL)
 * saved     hs (B,T,H), gates (B,T,3H), rh (B,T,H) (reset_after) from gru_forward
 * upstream  d_out (B,T,H) upstream gradient w.r.t. the output sequence (processing order,
 *           after the mask rule), or NULL; d_last (B,H) w.r.t. the output of step T-1, or
 *           NULL; d_hT (B,H) w.r.t. the final h, or NULL
 * inputs    x, h0, mask, dp_mask, rec_mask: exactly the forward's
 * weights   W (D,3H), U (H,3H)
 * returns   AL_OK or AL_ERR_NOMEM
 *
 * Per step s (time t), for an unmasked sample, dh the gradient w.r.t. h_s (incl. output):
 *   dn = dh (1-z) a'(n) ;  dz = dh (h_{t-1} - n) ra'(z)
 *   reset_after:  dr = dn u_h ra'(r),  du_h = dn r ;  dh_{t-1} = dh z + sum_k (du_k U_k^T) q_k
 *                 with du = [dz, dr, du_h]
 *   else:         e = dn U_h^T ;  dr = e (h_{t-1} q_h) ra'(r) ;
 *                 dh_{t-1} = dh z + e r q_h + sum_{k=z,r} (dk U_k^T) q_k
 * A masked sample passes dh through and moves its output gradient one step back (out_s =
 * out_{s-1}); before the first unmasked step the output is the constant 0.
 * After the loop, on the packed tiles, sums over the B*T rows in order: dU_k = Hd_k^T dZh_k
 * (Hd = the rows that met U_k in the forward), dW_k = (X p_k)^T dZx_k, dX = sum_k (dZx_k W_k^T)
 * p_k, db = column sums. Every result is the same bits for every thread count; dx and dh0 of
 * a sample do not depend on the batch.
 */
int AL_FN(gru_backward_impl)(real *dx, real *dW, real *dU, real *db, real *dh0,
                             const real *hs, const real *gates, const real *rh,
                             const real *d_out, const real *d_last, const real *d_hT,
                             const real *x, const real *h0, const uint8_t *mask,
                             const real *dp_mask, const real *rec_mask,
                             const real *W, const real *U,
                             size_t B, size_t T, size_t D, size_t H,
                             int activation, int recurrent_activation, int reset_after,
                             int go_backwards, int impl, int nthreads, int forced) {
    const size_t G = 3 * H, BT = B * T, NA = reset_after ? 3 * H : 2 * H;
    const size_t HW = (rec_mask != NULL || !reset_after) ? G : H;   /* Hd row width */
    const int act = activation, ract = recurrent_activation;
    const int isa = al_pg_choose(impl, B, T);
    const int nt = AL_SFN(gru_threads)(nthreads, forced, B, T, H);
    size_t nws, npu, nu = 0, nwt, ntn, tnkc, s, b, j, k;
    real *ws, *dZx, *dZh, *Hd, *dh, *dcar, *dir, *tmp, *xd, *QA = NULL, *QH = NULL, *QU = NULL;
    real *pWt, *tnbuf;

    for (j = 0; j < D * G; j++) dW[j] = (real)0;
    for (j = 0; j < H * G; j++) dU[j] = (real)0;
    for (j = 0; j < (reset_after ? 2 : 1) * G; j++) db[j] = (real)0;
    if (B == 0 || T == 0) {
        for (j = 0; j < B * H; j++) dh0[j] = (real)0;
        for (j = 0; j < B * T * D; j++) dx[j] = (real)0;
        return AL_OK;
    }
    if (rec_mask == NULL) {
        npu = AL_SFN(al_pg_size)(isa, NA, H) + (reset_after ? 0 : AL_SFN(al_pg_size)(isa, H, H));
    } else {
        nu = AL_SFN(al_pg_size)(isa, H, H);
        npu = 3 * nu;
    }
    /* W^T packed: (3H, D), or per gate (H, D) with dp_mask */
    nwt = dp_mask ? 3 * AL_SFN(al_pg_size)(isa, H, D) : AL_SFN(al_pg_size)(isa, G, D);
    /* each thread's al_pg_gemm_tn buffer for the weight gradients (for all 3H columns: a team
     * of one does them all), in blocks of at most B*T rows */
    tnkc = AL_SFN(al_pg_tn_kc)(isa);
    if (tnkc > BT) tnkc = BT;
    ntn = AL_SFN(al_pg_tn_size)(isa, G, H > D ? H : D, tnkc);
    /* dZx (BT,3H) | dZh (BT,3H) reset_after | Hd (BT,HW) | dcar, dir (B,H) | tmp (B,3H) |
     * xd (BT,D) with dp_mask | packed U^T blocks | packed W^T | weight-gradient buffers */
    nws = BT * G + (reset_after ? BT * G : 0) + BT * HW + 2 * B * H + B * G +
          (dp_mask ? BT * D : 0) + npu + nwt + (size_t)nt * ntn + 1;
    ws = (real *)al_alloc_large(nws * sizeof(real));
    if (ws == NULL) return AL_ERR_NOMEM;
    dZx = ws;
    dZh = reset_after ? dZx + BT * G : dZx;
    Hd = (reset_after ? dZh + BT * G : dZx + BT * G);
    dcar = Hd + BT * HW;
    dir = dcar + B * H;
    tmp = dir + B * H;
    xd = tmp + B * G;
    QA = xd + (dp_mask ? BT * D : 0);
    pWt = QA + npu;
    tnbuf = pWt + nwt;
    if (rec_mask == NULL) {
        /* QA = U[:, :NA]^T (NA, H); QH = U_h^T (H, H) */
        AL_SFN(gru_pack_t)(isa, QA, U, G, NA, H);
        if (!reset_after) {
            QH = QA + AL_SFN(al_pg_size)(isa, NA, H);
            AL_SFN(gru_pack_t)(isa, QH, U + 2 * H, G, H, H);
        }
    } else {
        QU = QA;
        QA = NULL;
        for (k = 0; k < 3; k++) AL_SFN(gru_pack_t)(isa, QU + k * nu, U + k * H, G, H, H);
        QH = QU + 2 * nu;
    }
    dh = dh0;
    for (j = 0; j < B * H; j++) {
        dh[j] = d_hT ? d_hT[j] : (real)0;
        dcar[j] = (real)0;
    }

    {
        AL_SFN(gru_bwd_ctx) c;
        c.dZx = dZx; c.dZh = dZh; c.dh = dh; c.dcar = dcar; c.dir = dir; c.tmp = tmp;
        c.hs = hs; c.gates = gates; c.rh = rh; c.h0 = h0; c.rec_mask = rec_mask;
        c.d_out = d_out; c.d_last = d_last; c.QA = QA; c.QH = QH; c.QU = QU; c.mask = mask;
        c.B = B; c.T = T; c.H = H; c.nu = nu; c.act = act; c.ract = ract;
        c.reset_after = reset_after; c.go_backwards = go_backwards; c.isa = isa;
        al_team_go(nt, AL_SFN(gru_bwd_work), &c, NULL);
    }

    /* Hd rows (time order): the rows that met U in the forward */
    for (b = 0; b < B; b++) {
        for (s = 0; s < T; s++) {
            const size_t t = go_backwards ? T - 1 - s : s;
            const real *hp = (s == 0) ? (h0 ? h0 + b * H : NULL) : hs + (b * T + s - 1) * H;
            const real *q = rec_mask ? rec_mask + b * G : NULL;
            const real *r = gates + (b * T + t) * G + H;
            real *dst = Hd + (b * T + t) * HW;
            if (hp == NULL) {
                for (j = 0; j < HW; j++) dst[j] = (real)0;
                continue;
            }
            for (k = 0; k < HW / H; k++) {
                for (j = 0; j < H; j++) {
                    real v = hp[j];
                    if (q) v *= q[k * H + j];
                    if (k == 2 && !reset_after) v *= r[j];
                    dst[k * H + j] = v;
                }
            }
        }
    }
    /* dU, dW, dX on the packed tiles, split over the same threads */
    {
        AL_SFN(gru_post_ctx) p;
        const size_t nw = AL_SFN(al_pg_size)(isa, H, D);
        if (D > 0 && dp_mask == NULL) {
            AL_SFN(gru_pack_t)(isa, pWt, W, G, G, D);
        } else if (D > 0) {
            for (k = 0; k < 3; k++) AL_SFN(gru_pack_t)(isa, pWt + k * nw, W + k * H, G, H, D);
        }
        p.dx = dx; p.dW = dW; p.dU = dU; p.xd = xd; p.tnbuf = tnbuf; p.pWt = pWt;
        p.ntn = ntn; p.tnkc = tnkc;
        p.Hd = Hd; p.dZx = dZx; p.dZh = dZh; p.x = x; p.dp_mask = dp_mask;
        p.T = T; p.D = D; p.H = H; p.BT = BT; p.HW = HW; p.nw = nw; p.isa = isa;
        al_team_go(nt, AL_SFN(gru_post_work), &p, &p.bar);
    }
    /* db: input row, then the recurrent row (reset_after) */
    AL_SFN(al_colsum)(db, dZx, BT, G, G, 1);
    if (reset_after) AL_SFN(al_colsum)(db + G, dZh, BT, G, G, 1);
    free(ws);
    return AL_OK;
}
