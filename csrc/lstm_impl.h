/*
 * lstm_impl.h -- LSTM forward and backward (BPTT) over a whole sequence; part of the type
 * template (al_real.h).
 *
 * Keras 3 LSTM semantics (keras/src/layers/rnn/lstm.py), gate order [i, f, c, o], k in {i,f,c,o}:
 *   z_k = ((x_t * p_k) W_k + (h_{t-1} * r_k) U_k) + b_k
 *   i = ra(z_i)  f = ra(z_f)  g = a(z_c)  o = ra(z_o)          (ra = recurrent_activation)
 *   c_t = f c_{t-1} + i g
 *   h_t = o a(c_t)
 * Dropout (training only): p_k (B,D) and r_k (B,H) are per-gate masks, fixed over time. Keras
 * 3.15.1 switches LSTMCell to implementation 1 whenever recurrent_dropout > 0 and then draws
 * four input masks and four recurrent masks, one per gate (lstm.py:136-139, 235-266); here
 * they come concatenated along the last axis, dp_mask (B,4D) and rec_mask (B,4H). Without
 * masks p_k = r_k = 1 (implementation 2, one fused GEMM). The state carried on is the
 * undropped h. (Keras with dropout > 0 but recurrent_dropout == 0 uses one (B,D) input mask:
 * the caller multiplies it into x, or tiles it four times.)
 * Masked step (mask[b,t] == 0): h and c are carried over unchanged, and the output is the
 * previous step's output (zero before the sample's first unmasked step, as on TF's CPU path).
 * go_backwards: step s reads time t = T-1-s; step-indexed buffers are in processing order.
 */

/* The next n reals of a workspace, advancing *q; NULL when n == 0. */
static real *AL_SFN(lstm_take)(real **q, size_t n) {
    real *p = n > 0 ? *q : NULL;
    *q += n;
    return p;
}

/* P = the four gate blocks M[:, kH:(k+1)H] (K rows, row stride 4H), packed (transposed when
 * trans) one after another, n elements each. */
static void AL_SFN(lstm_pack_gates4)(int isa, real *P, const real *M, int trans, size_t K,
                                     size_t H, size_t n) {
    size_t k;
    for (k = 0; k < 4; k++) AL_SFN(al_pg_pack)(isa, P + k * n, M + k * H, 4 * H, trans, K, H);
}

/* Everything one thread of a forward call needs (see lstm_forward_impl). */
typedef struct {
    real *hs, *cs, *out, *gates, *act_c;
    const real *x, *h0, *c0;
    const uint8_t *mask;
    const real *dp_mask, *rec_mask, *W, *U, *bias;
    size_t B, T, D, H;
    int activation, recurrent_activation, go_backwards;
    int isa, mode;                   /* AL_PG_* ISA; AL_SPLIT_* mode of the team */
    /* packed weights. Fused cell (lstm_cell_impl.h): U, and in the concatenated form W and
     * the bias, gate-interleaved; pW = W packed in Keras layout for a separate input projection
     * into the gates array (projection-first form); pWk = the four W_k (D,H) packed, for the
     * projection with dp_mask; pUk = the four U_k (H,H) packed, for the per-gate recurrent
     * products with rec_mask (lstm_fwd_steps). NULL where unused. */
    const real *pU, *pWg, *pbg, *pW, *pWk, *pUk;
    size_t nWk, nUk;                 /* elements of one packed W_k, U_k */
    /* without h0: z0 (4H) = 0 * U summed over k, Keras' zeros @ U (0, or NaN in a column of U
     * holding NaN/inf), and pz0 the same gate-interleaved; NULL when it is all 0 (the usual
     * case: step 0 then skips the product) */
    const real *z0, *pz0;
    /* fused path: the team packs pU (taking z0 into z0w when there is no h0), pWg and pbg,
     * each thread the panels it uses (al_split of the panels; lstm_fwd_work) */
    int pack;
    real *pUw, *pWgw, *pbgw, *z0w;
    int one_step;                    /* T = 1: lstm_fwd_one (W and U read in place, unpacked) */
    real *hd;                        /* (B,4H) workspace with rec_mask (rows per thread) */
    real *xd;                        /* (B*T,D) workspace with dp_mask (rows per thread) */
    al_barrier bar;
    atomic_size_t next;              /* AL_SPLIT_ROWS: the next chunk of rows to take */
    size_t nchunk;                   /* AL_SPLIT_ROWS: chunks of rows, taken first come */
} AL_SFN(lstm_fwd_ctx);

/* The elementwise part of step s for sample b and hidden units [u0, u1): z holds the gate
 * pre-activations of the sample (4H, Keras layout), hp/cp its h_{s-1}/c_{s-1} rows (NULL for
 * zeros). Writes the activated gates back into z, and h, c, a(c), out for the units. */
static void AL_SFN(lstm_fwd_elementwise)(const AL_SFN(lstm_fwd_ctx) *c, size_t b, size_t s,
                                         size_t t, real *z, const real *hp, const real *cp,
                                         size_t u0, size_t u1) {
    const size_t H = c->H, T = c->T, n = u1 - u0;
    real *hn = c->hs + b * T * H + s * H + u0;
    real *cn = c->cs + b * T * H + s * H + u0;
    size_t j;
    if (hp) hp += u0;
    if (cp) cp += u0;
    if (c->mask != NULL && !c->mask[b * T + t]) {
        /* Masked: carry h, c and the previous output. */
        real *on = c->out + b * T * H + s * H + u0;
        const real *op = (s == 0) ? NULL : on - H;
        for (j = 0; j < n; j++) {
            hn[j] = hp ? hp[j] : (real)0;
            cn[j] = cp ? cp[j] : (real)0;
            on[j] = op ? op[j] : (real)0;
        }
        if (c->act_c != NULL) {
            /* a(c_s) of the carried c_s: the backward skips masked steps, but the saved
             * array is the caller's, so no slot is left unwritten (it held stale memory) */
            real *ac = c->act_c + b * T * H + s * H + u0;
            for (j = 0; j < n; j++) ac[j] = cn[j];
            AL_SFN(act_forward)(c->activation, ac, n);
        }
        return;
    }
    /* (z already holds the bias: the projection adds it first). The fused tiles' cell, on
     * this path's ISA: the same bits as the fused forms (a(c) lands in h when not saved). */
    AL_SFN(lstm_cell_row)(c->isa, z + u0, cp, hn, cn,
                          c->act_c != NULL ? c->act_c + b * T * H + s * H + u0 : hn, n, H,
                          c->activation, c->recurrent_activation);
    if (c->out != NULL) {
        real *on = c->out + b * T * H + s * H + u0;
        for (j = 0; j < n; j++) on[j] = hn[j];
    }
}

/* The input projection of rows [r0, r1) of (B*T): gates = bias + x W, one packed GEMM over
 * every step (bias first, k in order: the same operations as the fused cell's concatenated
 * form); with dp_mask one per gate, x * p_k in the xd workspace; with D = 0 the bias. */
static void AL_SFN(lstm_fwd_projection)(AL_SFN(lstm_fwd_ctx) *c, size_t r0, size_t r1) {
    const size_t T = c->T, D = c->D, H = c->H, G = 4 * H;
    size_t j, k, r;
    if (D > 0 && c->dp_mask == NULL) {
        AL_SFN(al_pg_gemm)(c->isa, c->gates + r0 * G, G, c->x + r0 * D, D, 1, c->pW, 0, c->bias,
                           0, r1 - r0, G, D);
    } else if (D > 0) {
        for (k = 0; k < 4; k++) {
            AL_SFN(al_mul_rows)(c->xd, c->x, c->dp_mask + k * D, 4 * D, r0, r1, T, D, 0);
            AL_SFN(al_pg_gemm)(c->isa, c->gates + r0 * G + k * H, G, c->xd + r0 * D, D, 1,
                               c->pWk + k * c->nWk, 0, c->bias ? c->bias + k * H : NULL, 0,
                               r1 - r0, H, D);
        }
    } else {
        for (r = r0; r < r1; r++)
            for (j = 0; j < G; j++) c->gates[r * G + j] = c->bias ? c->bias[j] : (real)0;
    }
}

/* One thread's share of a packed-path forward: batch rows [b0, b1) and gate-interleaved
 * panels [p0, p1) (lstm_cell_impl.h), each step one fused GEMM + cell pass. Concatenated
 * form (pWg set, or D = 0): z = b + x_t W + h_{t-1} U on the tile, the gates array is only
 * written (and may be NULL). Projection-first form: the input projection first fills the
 * gates array, which the tiles read. */
static void AL_SFN(lstm_fwd_fused)(AL_SFN(lstm_fwd_ctx) *c, int tid, int nt, size_t b0,
                                   size_t b1, size_t p0, size_t p1, const real *pz0) {
    const size_t T = c->T, D = c->D, H = c->H, G = 4 * H, L = AL_SFN(al_cell_lanes)(c->isa);
    const size_t u0 = p0 * L, u1 = p1 * L < H ? p1 * L : H;
    const int zin = c->pWg == NULL && D > 0;
    AL_SFN(lstm_cell_args) a;
    size_t s, b;

    if (zin) {
        size_t r0 = b0 * T, r1 = b1 * T;
        if (c->mode == AL_SPLIT_COLS) al_split(c->B * T, nt, tid, &r0, &r1);
        AL_SFN(lstm_fwd_projection)(c, r0, r1);
        if (c->mode == AL_SPLIT_COLS) al_barrier_wait(&c->bar);
    }
    /* the projection adds the bias itself */
    a.pW = c->pWg; a.pb = zin ? NULL : c->pbg; a.pU = c->pU; a.zin = zin; a.pz0 = pz0;
    a.ldx = T * D; a.ldz = T * G; a.ldo = T * H; a.ldkeep = T;
    a.D = D; a.H = H; a.act = c->activation; a.ract = c->recurrent_activation;
    /* measured: fetching ahead paid where the panels stream from the L3 (H = 512: 5-10%) and
     * cost up to 10% where they stay in the L2 (B = 8, H = 256) (benchmarks/NOTES.md) */
    a.pf_l2 = al_u_outgrows_l2(4 * H * (H + (c->pWg != NULL ? D : 0)) * sizeof(real));
    for (s = 0; s < T; s++) {
        const size_t t = c->go_backwards ? T - 1 - s : s;
        /* Odd steps take the panels in descending order: the panels a step used last are the
         * ones still in the L2 when the next one starts (ascending every step, a U larger than
         * the L2 missed it on every panel). Each panel's units are computed alone, so the bits
         * do not change. Measured: (1, 50, 64, 512) 9.2-9.4 -> 6.9-7.0 ms, (8, 50, 64, 512)
         * 15.4-15.8 -> 13.2-13.4 (benchmarks/NOTES.md). */
        a.rev = (int)(s & 1);
        a.x = c->x + t * D;
        a.h = s == 0 ? c->h0 : c->hs + (s - 1) * H;
        a.ldh = s == 0 ? H : T * H;
        a.cp = s == 0 ? c->c0 : c->cs + (s - 1) * H;
        a.ldcp = a.ldh;
        a.z = c->gates ? c->gates + t * G : NULL;
        a.hn = c->hs + s * H; a.cn = c->cs + s * H;
        a.ac = c->act_c ? c->act_c + s * H : NULL;
        a.on = c->out ? c->out + s * H : NULL;
        a.keep = c->mask ? c->mask + t : NULL;
        AL_SFN(lstm_cell_step)(c->isa, &a, b0, b1, p0, p1);
        for (b = b0; c->mask != NULL && b < b1; b++) {
            if (!c->mask[b * T + t]) {
                /* carry h, c and the output over (the elementwise pass's masked branch) */
                const real *hp = a.h ? a.h + b * a.ldh : NULL;
                const real *cp = a.cp ? a.cp + b * a.ldcp : NULL;
                AL_SFN(lstm_fwd_elementwise)(c, b, s, t, NULL, hp, cp, u0, u1);
            }
        }
        if (c->mode == AL_SPLIT_COLS) al_barrier_wait(&c->bar);
    }
}

/* The forward with rec_mask, for batch rows [b0, b1): the input projection, then per step
 * the four per-gate recurrent products (h_{s-1} * r_k) U_k added onto the gate rows of time t
 * (packed GEMMs) and the elementwise pass. */
static void AL_SFN(lstm_fwd_steps)(AL_SFN(lstm_fwd_ctx) *c, size_t b0, size_t b1) {
    const size_t T = c->T, H = c->H, G = 4 * H;
    size_t s, b, j, k;
    real *gates = c->gates, *hs = c->hs, *hd = c->hd;

    AL_SFN(lstm_fwd_projection)(c, b0 * T, b1 * T);
    for (s = 0; s < T; s++) {
        const size_t t = c->go_backwards ? T - 1 - s : s;
        /* h_{s-1} rows: h0 (stride H) at s == 0, else hs[:, s-1] (stride T*H). */
        const real *hprev = (s == 0) ? c->h0 : hs + (s - 1) * H;
        const size_t hprev_ld = (s == 0) ? H : T * H;
        real *gt = gates + t * G;                       /* rows b at stride T*G */

        if (hprev == NULL && c->z0 != NULL) {
            for (b = b0; b < b1; b++)
                for (j = 0; j < G; j++) gt[b * T * G + j] += c->z0[j];
        }
        if (hprev != NULL) {
            for (b = b0; b < b1; b++) {
                const real *hp = hprev + b * hprev_ld, *r = c->rec_mask + b * G;
                real *dst = hd + b * G;
                for (k = 0; k < 4; k++) {
                    for (j = 0; j < H; j++) dst[k * H + j] = hp[j] * r[k * H + j];
                }
            }
            for (k = 0; k < 4; k++) {
                AL_SFN(al_pg_gemm)(c->isa, gt + b0 * T * G + k * H, T * G, hd + b0 * G + k * H, G,
                                   1, c->pUk + k * c->nUk, 0, NULL, 1, b1 - b0, H, H);
            }
        }
        for (b = b0; b < b1; b++) {
            const real *hp = hprev ? hprev + b * hprev_ld : NULL;
            const real *cp = (s == 0) ? (c->c0 ? c->c0 + b * H : NULL)
                                      : c->cs + b * T * H + (s - 1) * H;
            AL_SFN(lstm_fwd_elementwise)(c, b, s, t, gt + b * T * G, hp, cp, 0, H);
        }
    }
}

/* A single step (T = 1) for batch rows [b0, b1) with W and U read in place (4H a multiple of
 * the panel width): packing them would cost more than the step. Gates = bias + x W, then
 * + h0 U (or + z0 without h0), each element the same chain as on the packed path; then the
 * elementwise pass. */
static void AL_SFN(lstm_fwd_one)(AL_SFN(lstm_fwd_ctx) *c, size_t b0, size_t b1) {
    const size_t D = c->D, H = c->H, G = 4 * H;
    size_t b, j;
    real *gt = c->gates + b0 * G;
    if (D > 0) {
        AL_SFN(al_pg_gemm)(c->isa, gt, G, c->x + b0 * D, D, 1, c->W, G, c->bias, 0, b1 - b0, G, D);
    } else {
        for (b = b0; b < b1; b++)
            for (j = 0; j < G; j++) c->gates[b * G + j] = c->bias ? c->bias[j] : (real)0;
    }
    if (c->h0 != NULL) {
        AL_SFN(al_pg_gemm)(c->isa, gt, G, c->h0 + b0 * H, H, 1, c->U, G, NULL, 1, b1 - b0, G, H);
    } else if (c->z0 != NULL) {
        for (b = b0; b < b1; b++)
            for (j = 0; j < G; j++) c->gates[b * G + j] += c->z0[j];
    }
    for (b = b0; b < b1; b++) {
        AL_SFN(lstm_fwd_elementwise)(c, b, 0, 0, c->gates + b * G, c->h0 ? c->h0 + b * H : NULL,
                                     c->c0 ? c->c0 + b * H : NULL, 0, H);
    }
}

/* z0 (4H) = sum_k 0 * U[k] (Keras' zeros @ U without an initial state: 0, or NaN in a column
 * holding NaN or inf); returns whether any entry is not 0. One vectorised pass over U (the
 * rec_mask path; the fused path takes z0 while the team packs U, lstm_fwd_work). */
static int AL_SFN(lstm_any_nonzero)(const real *z, size_t n) {
    size_t j;
    int any = 0;
    for (j = 0; j < n; j++) any |= z[j] != (real)0;
    return any;
}

/* Panels [p0, p1) of the fused path's packed weights: U (and z0 = 0 * U's column sums when
 * there is no h0), and in the concatenated form W and the bias, gate-interleaved. */
static void AL_SFN(lstm_fwd_pack)(AL_SFN(lstm_fwd_ctx) *c, size_t p0, size_t p1) {
    const size_t G = 4 * c->H;
    AL_SFN(al_pg_pack_gates_zr)(c->isa, c->pUw, c->U, G, c->H, c->H, c->z0w, p0, p1);
    if (c->pWgw != NULL)
        AL_SFN(al_pg_pack_gates_zr)(c->isa, c->pWgw, c->W, G, c->D, c->H, NULL, p0, p1);
    if (c->pbgw != NULL)
        AL_SFN(al_pg_pack_gates_zr)(c->isa, c->pbgw, c->bias, G, 1, c->H, NULL, p0, p1);
}

/* One thread of the team: rows mode takes chunks of batch rows first come, first served (a
 * thread the OS delays then costs one chunk, not half the call); units mode takes its fixed
 * block of gate-interleaved panels (its steps meet at a barrier). */
static void AL_SFN(lstm_fwd_work)(void *arg, int tid, int nt) {
    AL_SFN(lstm_fwd_ctx) *c = (AL_SFN(lstm_fwd_ctx) *)arg;
    const size_t L = AL_SFN(al_cell_lanes)(c->isa);
    const size_t npanel = (c->H + L - 1) / L;
    const real *pz0 = c->pz0;
    size_t b0, b1, k;
    if (c->pack) {
        /* This thread's panels of the packed weights (lstm_fwd_pack). In units mode they are
         * the panels it then computes with, so they are packed into its own L2; rows mode
         * reads every panel, after the barrier. z0 needs every column before anyone knows
         * whether it is all 0. */
        const size_t G = 4 * c->H;
        size_t p0, p1;
        al_split(npanel, nt, tid, &p0, &p1);
        AL_SFN(lstm_fwd_pack)(c, p0, p1);
        if (c->mode != AL_SPLIT_COLS || c->z0w != NULL) al_barrier_wait(&c->bar);
        if (c->z0w != NULL && AL_SFN(lstm_any_nonzero)(c->z0w, G)) {
            AL_SFN(al_pg_pack_gates_zr)(c->isa, c->z0w + G, c->z0w, G, 1, c->H, NULL, p0, p1);
            pz0 = c->z0w + G;
            if (c->mode != AL_SPLIT_COLS) al_barrier_wait(&c->bar);
        }
    }
    if (c->mode == AL_SPLIT_ROWS) {
        while ((k = atomic_fetch_add(&c->next, 1)) < c->nchunk) {
            al_split(c->B, (int)c->nchunk, (int)k, &b0, &b1);
            if (c->one_step) AL_SFN(lstm_fwd_one)(c, b0, b1);
            else if (c->pUk != NULL) AL_SFN(lstm_fwd_steps)(c, b0, b1);
            else AL_SFN(lstm_fwd_fused)(c, tid, nt, b0, b1, 0, npanel, pz0);
        }
    } else if (c->one_step) {
        AL_SFN(lstm_fwd_one)(c, 0, c->B);
    } else if (c->pUk != NULL) {
        AL_SFN(lstm_fwd_steps)(c, 0, c->B);
    } else if (c->mode == AL_SPLIT_COLS) {
        al_split(npanel, nt, tid, &b0, &b1);
        AL_SFN(lstm_fwd_fused)(c, tid, nt, 0, c->B, b0, b1, pz0);
    } else {
        AL_SFN(lstm_fwd_fused)(c, tid, nt, 0, c->B, 0, npanel, pz0);
    }
#if AL_PG_X86
    /* the fused cell streams the saved gates and a(c) (lstm_cell_tile.h): make those stores
     * visible before the team's end is signalled and the arrays are handed back */
    _mm_sfence();
#endif
}

static inline __attribute__((always_inline)) void AL_SFN(lstm_zero_h_times_U_body)(
    real *z0, const real *U, size_t H) {
    const size_t G = 4 * H;
    size_t k, j;
    for (j = 0; j < G; j++) z0[j] = (real)0;
    for (k = 0; k < H; k++) {
        const real *u = U + k * G;
        for (j = 0; j < G; j++) z0[j] += u[j] * (real)0;
    }
}
AL_ISA_VERSIONS_VOID(AL_SFN(lstm_zero_h_times_U_v), AL_SFN(lstm_zero_h_times_U_body),
                     (real *z0, const real *U, size_t H), (z0, U, H))

/* s[0] = sum of 0 * x over n elements in 16 partial sums (vectorises; loads only): 0, or NaN
 * when some x is NaN or inf. */
static inline __attribute__((always_inline)) void AL_SFN(lstm_nonfinite_body)(
    real *s, const real *x, size_t n) {
    real part[16];
    size_t j, l;
    for (l = 0; l < 16; l++) part[l] = (real)0;
    for (j = 0; j + 16 <= n; j += 16)
        for (l = 0; l < 16; l++) part[l] += x[j + l] * (real)0;
    for (; j < n; j++) part[0] += x[j] * (real)0;
    for (l = 1; l < 16; l++) part[0] += part[l];
    s[0] = part[0];
}
AL_ISA_VERSIONS_VOID(AL_SFN(lstm_nonfinite), AL_SFN(lstm_nonfinite_body),
                     (real *s, const real *x, size_t n), (s, x, n))

static int AL_SFN(lstm_zero_h_times_U)(real *z0, const real *U, size_t H) {
    real s;
    AL_SFN(lstm_nonfinite)(&s, U, H * 4 * H);   /* the usual case: all finite, z0 = 0 */
    if (s == (real)0) return 0;
    AL_SFN(lstm_zero_h_times_U_v)(z0, U, H);
    return AL_SFN(lstm_any_nonzero)(z0, 4 * H);
}

/*
 * lstm_forward: the whole sequence in one call.
 *
 * outputs   hs    (B,T,H)  h after each processing step s
 *           cs    (B,T,H)  c after each processing step s
 *           out   (B,T,H)  layer output per step under the mask rule; NULL when mask is NULL
 *                          (then the output sequence is hs itself)
 * saved     gates (B,T,4H) indexed by *time* t: the activated gates [i, f, g, o] of the step
 *                          that read x[:, t] (entries of masked steps are unspecified); or
 *                          NULL (not saved: inference)
 *           act_c (B,T,H)  a(c) after each processing step s, or NULL (not saved; the
 *                          backward then recomputes it); entries of masked steps unspecified
 * inputs    x     (B,T,D)
 *           h0    (B,H) or NULL for zeros;  c0 (B,H) or NULL for zeros
 *           mask  (B,T) uint8 or NULL (nonzero = keep)
 *           dp_mask  (B,4D) per-gate input-dropout masks [p_i|p_f|p_c|p_o], or NULL
 *           rec_mask (B,4H) per-gate recurrent-dropout masks [r_i|r_f|r_c|r_o], or NULL
 * weights   W     (D,4H)   kernel
 *           U     (H,4H)   recurrent_kernel
 *           bias  (4H)     or NULL
 * threads   nthreads, forced: see al_lstm_split (lstm_pgemm.h)
 * returns   AL_OK, or AL_ERR_NOMEM (workspace: B*T*D reals with dp_mask, B*4H with rec_mask)
 *
 * Every product is a packed GEMM of lstm_pgemm.h on the selected path (al_pg_choose), whose
 * elements are each one chain over k in order starting from the bias: a sample's results do not
 * depend on the batch size, its position in the batch, or the thread split. Without rec_mask
 * each step is the fused cell (lstm_cell_impl.h) on (B,H)x(H,4H) tiles, with x_t W on the
 * same tiles from AL_CELL_CONCAT_B rows, else after an input projection of all B*T rows (four
 * per-gate projections with dp_mask); both forms compute the same bits. With rec_mask each
 * step is four (B,H)x(H,H) products into the gate rows of time t and an elementwise pass
 * (lstm_fwd_steps). The work may be split by batch rows or hidden units among threads
 * (al_lstm_split; rows only with rec_mask); every element is computed by the same operations
 * in the same order whatever the split, so results do not depend on it.
 */
int AL_FN(lstm_forward_impl)(real *hs, real *cs, real *out, real *gates, real *act_c,
                             const real *x, const real *h0, const real *c0,
                             const uint8_t *mask, const real *dp_mask, const real *rec_mask,
                             const real *W, const real *U, const real *bias,
                             size_t B, size_t T, size_t D, size_t H,
                             int activation, int recurrent_activation, int go_backwards,
                             int impl, int nthreads, int forced) {
    const size_t G = 4 * H;
    AL_SFN(lstm_fwd_ctx) c;
    /* the packed weights, and a gates array when the caller saves none */
    real *packed = NULL;
    int nt = 1;
    if (B == 0 || T == 0) return AL_OK;
    c.hs = hs; c.cs = cs; c.out = out; c.gates = gates; c.act_c = act_c;
    c.x = x; c.h0 = h0; c.c0 = c0; c.mask = mask; c.dp_mask = dp_mask; c.rec_mask = rec_mask;
    c.W = W; c.U = U; c.bias = bias;
    c.B = B; c.T = T; c.D = D; c.H = H;
    c.activation = activation; c.recurrent_activation = recurrent_activation;
    c.go_backwards = go_backwards;
    c.mode = AL_SPLIT_NONE;
    c.pU = NULL; c.pWg = NULL; c.pbg = NULL; c.pW = NULL; c.pWk = NULL; c.pUk = NULL;
    c.nWk = 0; c.nUk = 0; c.hd = NULL; c.xd = NULL; c.z0 = NULL; c.pz0 = NULL; c.one_step = 0;
    c.pack = 0; c.pUw = NULL; c.pWgw = NULL; c.pbgw = NULL; c.z0w = NULL;
    if (rec_mask != NULL || dp_mask != NULL) {
        /* hd (B,4H) for the dropped h rows, xd (B*T,D) for x * p_k */
        const size_t nh = rec_mask != NULL ? B * G : 0;
        c.hd = (real *)al_alloc_large((nh + (dp_mask != NULL ? B * T * D : 0) + 1) * sizeof(real));
        if (c.hd == NULL) return AL_ERR_NOMEM;
        c.xd = c.hd + nh;
    }
    c.isa = al_pg_choose(impl, B, T);
    {
        /* Fused cell (lstm_cell_impl.h) without rec_mask. Concatenated form (W gate-interleaved,
         * x_t W on the step's tile) from AL_CELL_CONCAT_B rows, where the tile reuses each W
         * panel over many rows; below it (and with dp_mask) the input projection of all B*T
         * rows is one packed GEMM first (W in Keras layout; per gate with dp_mask). */
        const size_t L = AL_SFN(al_cell_lanes)(c.isa), Hp = (H + L - 1) / L * L;
        /* a single step reads W and U in place (lstm_fwd_one) */
        const int one = T == 1 && rec_mask == NULL && dp_mask == NULL &&
                        G % AL_SFN(al_pg_nc)(c.isa) == 0;
        const int steps = rec_mask != NULL;
        const int concat = !one && !steps && dp_mask == NULL && (D == 0 || B >= AL_CELL_CONCAT_B);
        const size_t nu = (steps || one) ? 0 : AL_SFN(al_pg_size)(c.isa, H, 4 * Hp);
        const size_t nuk = steps ? AL_SFN(al_pg_size)(c.isa, H, H) : 0;
        const size_t nwg = concat ? AL_SFN(al_pg_size)(c.isa, D, 4 * Hp) : 0;
        const size_t nb = AL_SFN(al_pg_size)(c.isa, 1, 4 * Hp);
        const size_t nw = (!one && !concat && D > 0 && dp_mask == NULL)
                              ? AL_SFN(al_pg_size)(c.isa, D, G) : 0;
        const size_t nwk = (D > 0 && dp_mask != NULL) ? AL_SFN(al_pg_size)(c.isa, D, H) : 0;
        /* projection-first needs a gates array even when the caller saves none */
        const size_t ng = (!concat && gates == NULL) ? B * T * G : 0;
        real *q, *pU, *pUk, *pWg, *pbg, *pW, *pWk, *gw, *z0;
        const size_t nz = h0 == NULL ? G + nb : 0;
        packed = (real *)al_alloc_large((nu + 4 * nuk + nwg + nb + nw + 4 * nwk + ng + nz + 1) *
                                        sizeof(real));
        if (packed == NULL) {
            free(c.hd);
            return AL_ERR_NOMEM;
        }
        /* the packed blocks one after another, each NULL when empty; without h0, z0 (4H) and
         * its packed copy last: z0 = 0 * U's column sums, taken while packing U (fused path) */
        q = packed;
        pU = AL_SFN(lstm_take)(&q, nu);
        pUk = AL_SFN(lstm_take)(&q, 4 * nuk);
        pWg = AL_SFN(lstm_take)(&q, nwg);
        pbg = AL_SFN(lstm_take)(&q, nb);
        pW = AL_SFN(lstm_take)(&q, nw);
        pWk = AL_SFN(lstm_take)(&q, 4 * nwk);
        gw = AL_SFN(lstm_take)(&q, ng);
        z0 = h0 == NULL ? q : NULL;
        /* the fused path's gate-interleaved blocks are packed by the team (lstm_fwd_work):
         * each thread its panels, so in units mode they land in the L2 of the core that
         * reads them, and no thread waits for a serial pack (at (1, 50, 64, 512) on 2 threads
         * the call's fixed cost was 1.1 ms of 3.2) */
        if (pU) {
            c.pack = 1;
            c.pUw = pU;
            c.pWgw = pWg;
            c.pbgw = bias ? pbg : NULL;
            c.z0w = z0;
        }
        if (pUk) AL_SFN(lstm_pack_gates4)(c.isa, pUk, U, 0, H, H, nuk);
        if (!pU && pbg && bias) AL_SFN(al_pg_pack_gates)(c.isa, pbg, bias, G, 1, H);
        if (pW) AL_SFN(al_pg_pack)(c.isa, pW, W, G, 0, D, G);
        if (pWk) AL_SFN(lstm_pack_gates4)(c.isa, pWk, W, 0, D, H, nwk);
        c.pU = pU; c.pUk = pUk; c.nUk = nuk; c.pWg = pWg; c.pbg = bias ? pbg : NULL;
        c.pW = pW; c.pWk = pWk; c.nWk = nwk;
        if (gw) c.gates = gw;
        if (z0 != NULL && nu == 0 && AL_SFN(lstm_zero_h_times_U)(z0, U, H)) {
            c.z0 = z0;
            c.pz0 = z0 + G;
            AL_SFN(al_pg_pack_gates)(c.isa, z0 + G, z0, G, 1, H);
        }
        c.one_step = one;
        c.mode = al_lstm_fwd_split(c.isa == AL_PG_AVX2, nthreads, forced, B, T, D, Hp, L,
                                   sizeof(real), &nt);
        if ((steps || one) && c.mode == AL_SPLIT_COLS) {
            /* lstm_fwd_steps and lstm_fwd_one split by rows only */
            c.mode = B >= 2 ? AL_SPLIT_ROWS : AL_SPLIT_NONE;
            nt = B >= 2 ? ((size_t)nthreads < B ? nthreads : (int)B) : 1;
        }
    }
    atomic_init(&c.next, 0);
    c.nchunk = c.mode == AL_SPLIT_ROWS ? al_split_chunks(B, nt) : 0;
    al_team_go(nt, AL_SFN(lstm_fwd_work), &c, &c.bar);
    free(c.hd);
    free(packed);
    return AL_OK;
}

/* Gradients of one sample's gate pre-activations at one step, for n hidden units (the
 * elementwise part of the backward, see lstm_backward): dz from dh' (already including the
 * output gradients), dc (in: w.r.t. c_s; out: w.r.t. c_{s-1}), the activated gates g, ac =
 * a(c_s) and cp = c_{s-1} (NULL for zeros); dcar is cleared. The four gates of g and dz are gs
 * apart (gs = H for whole rows). Specialised for (tanh, sigmoid) so the loop vectorises; any
 * other pair goes through act_deriv. */
static inline __attribute__((always_inline)) void AL_SFN(lstm_gate_grads_body)(
    real *dz, const real *dh, real *dc, real *dcar, const real *g, const real *ac,
    const real *cp, size_t n, size_t gs, int act, int ract) {
    const real *gi = g, *gf = g + gs, *gg = g + 2 * gs, *go = g + 3 * gs;
    real *dzi = dz, *dzf = dz + gs, *dzg = dz + 2 * gs, *dzo = dz + 3 * gs;
    size_t j = 0;
#define AL_GATE_GRAD(j)                                                                       \
    do {                                                                                      \
        const real dht = dh[j];                                                               \
        const real dct = dc[j] + dht * go[j] * AL_SFN(act_deriv)(act, ac[j]);                 \
        dzo[j] = dht * ac[j] * AL_SFN(act_deriv)(ract, go[j]);                                \
        dzi[j] = dct * gg[j] * AL_SFN(act_deriv)(ract, gi[j]);                                \
        dzg[j] = dct * gi[j] * AL_SFN(act_deriv)(act, gg[j]);                                 \
        dzf[j] = cp ? dct * cp[j] * AL_SFN(act_deriv)(ract, gf[j]) : (real)0;                 \
        dc[j] = dct * gf[j];                                                                  \
        dcar[j] = (real)0;                                                                    \
    } while (0)
#if defined(AL_REAL_F32)
    /* Whole blocks of 16 units vectorised: element j reads and writes index j of each array
     * only (dc in place; dz, dh, dc, dcar, g, ac and cp are distinct buffers), so ivdep is
     * safe. Without it GCC kept the loop scalar (nine pointers it cannot prove apart): 18% of
     * an LSTM forward+backward (8, 200, 64, 64) float32 on one thread (benchmarks/NOTES.md).
     * Vectorised blocks fuse the same multiply-adds as the scalar loop on both vector paths
     * (the same bits as before); GCC's vectorised remainders did not (AVX-512 against AVX2 at
     * H = 8), so the remainder stays scalar; and float64, whose AVX-512 vector copy fused
     * other operations than the AVX2 one, stays scalar. */
    for (; j + 16 <= n; j += 16) {
        size_t l;
#pragma GCC ivdep
        for (l = j; l < j + 16; l++) AL_GATE_GRAD(l);
    }
#endif
    for (; j < n; j++) AL_GATE_GRAD(j);
#undef AL_GATE_GRAD
}

static inline __attribute__((always_inline)) void AL_SFN(lstm_gate_grads_sel)(
    real *dz, const real *dh, real *dc, real *dcar, const real *g, const real *ac,
    const real *cp, size_t n, size_t gs, int act, int ract) {
    if (act == AL_ACT_TANH && ract == AL_ACT_SIGMOID && cp != NULL) {
        AL_SFN(lstm_gate_grads_body)(dz, dh, dc, dcar, g, ac, cp, n, gs, AL_ACT_TANH,
                                     AL_ACT_SIGMOID);
    } else if (act == AL_ACT_TANH && ract == AL_ACT_SIGMOID) {
        AL_SFN(lstm_gate_grads_body)(dz, dh, dc, dcar, g, ac, NULL, n, gs, AL_ACT_TANH,
                                     AL_ACT_SIGMOID);
    } else {
        AL_SFN(lstm_gate_grads_body)(dz, dh, dc, dcar, g, ac, cp, n, gs, act, ract);
    }
}
AL_ISA_VERSIONS_VOID(AL_SFN(lstm_gate_grads), AL_SFN(lstm_gate_grads_sel),
                     (real *dz, const real *dh, real *dc, real *dcar, const real *g,
                      const real *ac, const real *cp, size_t n, size_t gs, int act, int ract),
                     (dz, dh, dc, dcar, g, ac, cp, n, gs, act, ract))

/*
 * lstm_backward: backpropagation through time over the whole sequence, inverting lstm_forward.
 *
 * outputs   dx     (B,T,D)  d loss / d x (the x passed to the forward, before dp_mask)
 *           dW     (D,4H)   d loss / d kernel
 *           dU     (H,4H)   d loss / d recurrent_kernel
 *           db     (4H)     d loss / d bias
 *           dh0    (B,H)    d loss / d h0 (also when the forward had h0 = NULL, i.e. zeros)
 *           dc0    (B,H)    d loss / d c0
 * saved     hs, cs (B,T,H)  from lstm_forward (processing order)
 *           gates  (B,T,4H) from lstm_forward (time order)
 *           act_c  (B,T,H)  from lstm_forward, or NULL to recompute a(c) from cs
 * upstream  d_out  (B,T,H)  upstream gradient w.r.t. the output sequence (processing order,
 *                           after the mask rule; without a mask the outputs are hs), or NULL
 *           d_last (B,H)    upstream gradient w.r.t. the last output (the output of step T-1,
 *                           i.e. return_sequences=False), or NULL; added to d_out[:, T-1]
 *           d_hT   (B,H)    upstream gradient w.r.t. the final h (hs[:, T-1]), or NULL
 *           d_cT   (B,H)    upstream gradient w.r.t. the final c (cs[:, T-1]), or NULL
 * inputs    x (B,T,D), h0 (B,H) or NULL, c0 (B,H) or NULL, mask (B,T) uint8 or NULL,
 *           dp_mask (B,4D) or NULL, rec_mask (B,4H) or NULL: exactly the forward's arguments
 * weights   W (D,4H), U (H,4H)
 * returns   AL_OK, or AL_ERR_NOMEM (workspace of B*T*5H + 2*B*H reals, with rec_mask
 *           B*T*8H + 5*B*H, with dp_mask B*T*D more; U and W packed; per thread
 *           min(512, B*T) * (5H + D) reals for the weight gradients' blocks)
 *
 * Per step s (time t), for an unmasked sample, with dh, dc the gradients w.r.t. h_s, c_s
 * arriving from later steps and u the upstream gradient w.r.t. out_s (= h_s):
 *   dh' = dh + u ;  dc' = dc + dh' o a'(c_s)
 *   dz_o = dh' a(c_s) ra'(o) ;  dz_i = dc' g ra'(i) ;  dz_c = dc' i a'(g) ;  dz_f = dc' c_{s-1} ra'(f)
 *   dc_{s-1} = dc' f ;  dh_{s-1} = sum_k (dz_k U_k^T) * r_k
 * For a masked sample h_s = h_{s-1}, c_s = c_{s-1} and out_s = out_{s-1}: dh and dc pass
 * through unchanged, dz = 0, and u is carried to out_{s-1} (and dropped before step 0, where
 * the output is the constant 0). Derivatives are taken from the activations' outputs
 * (al_act_impl.h), so relu / hard_sigmoid kinks get the one-sided value TF uses.
 * The loop is sequential only in the elementwise pass and the dz U^T GEMM per step (four
 * per-gate GEMMs with rec_mask); dz of every step is kept (time order, like gates) and the
 * weight and input gradients are large GEMMs / reductions after the loop:
 *   dU_k = Hd_k^T dZ_k (Hd = the dropped h_{t-1} rows, rebuilt from hs),
 *   dW_k = (X * p_k)^T dZ_k,  dX = sum_k (dZ_k W_k^T) * p_k,  db = sum dZ
 * (one GEMM each over all four gates when the masks are absent).
 */
/* Everything one thread of a backward call needs (see lstm_backward_impl). */
typedef struct {
    real *dx, *dW, *dU, *db, *dh0, *dc0;
    const real *hs, *cs, *gates, *act_c, *x, *h0, *c0;
    const uint8_t *mask;
    const real *dp_mask, *rec_mask, *d_out, *d_last, *d_hT, *d_cT, *W, *U;
    size_t B, T, D, H, HW;
    int activation, recurrent_activation, go_backwards;
    int isa, mode;                  /* AL_PG_* ISA; AL_SPLIT_* mode of the team */
    const real *pUt;               /* packed U^T (4H,H); with rec_mask the four U_k^T (H,H),
                                      nUt elements each */
    real *pUtw;                    /* without rec_mask: pUt, packed by the team (its panels
                                      per thread, lstm_bwd_work) */
    size_t nUt;
    real *big;                     /* packed W^T (per gate with dp_mask) for dX, then one
                                      al_pg_gemm_tn buffer per thread (ntn elements each) */
    size_t ntn, tnkc;               /* and the rows per block it is sized for (al_pg_tn_kc) */
    real *dZ, *Hd, *tmp, *dcarry, *xd;
    al_barrier bar;
    atomic_size_t next;             /* AL_SPLIT_ROWS: the next chunk of rows of the time loop */
    size_t nchunk;
} AL_SFN(lstm_bwd_ctx);

/* The sequential part for batch rows [b0, b1) and hidden units [u0, u1): dZ of every step,
 * and the running dh, dc (in dh0, dc0). */
static void AL_SFN(lstm_bwd_loop)(AL_SFN(lstm_bwd_ctx) *c, size_t b0, size_t b1, size_t u0,
                                  size_t u1) {
    const size_t T = c->T, H = c->H, G = 4 * H, HW = c->HW, n = u1 - u0;
    real *dZ = c->dZ, *tmp = c->tmp;
    size_t s, b, j, k;

    for (b = b0; b < b1; b++) {
        for (j = u0; j < u1; j++) {
            c->dh0[b * H + j] = c->d_hT ? c->d_hT[b * H + j] : (real)0;
            c->dc0[b * H + j] = c->d_cT ? c->d_cT[b * H + j] : (real)0;
            c->dcarry[b * H + j] = (real)0;
        }
    }
    for (s = T; s-- > 0;) {
        const size_t t = c->go_backwards ? T - 1 - s : s;
        for (b = b0; b < b1; b++) {
            real *dz = dZ + (b * T + t) * G + u0;
            real *dh = c->dh0 + b * H + u0, *dc = c->dc0 + b * H + u0;
            real *dcar = c->dcarry + b * H + u0;
            const real *dob = c->d_out ? c->d_out + (b * T + s) * H + u0 : NULL;
            const real *dlb = (c->d_last && s == T - 1) ? c->d_last + b * H + u0 : NULL;

            if (c->mask != NULL && !c->mask[b * T + t]) {
                /* out_s = out_{s-1}: the output gradient moves one step back. */
                for (j = 0; j < n; j++) {
                    dcar[j] += (dob ? dob[j] : (real)0) + (dlb ? dlb[j] : (real)0);
                }
                for (k = 0; k < 4; k++) {
                    for (j = 0; j < n; j++) dz[k * H + j] = (real)0;
                }
                continue;
            }
            {
                const real *gi = c->gates + (b * T + t) * G + u0;
                const real *cn = c->cs + (b * T + s) * H + u0;
                const real *cp = (s == 0) ? (c->c0 ? c->c0 + b * H + u0 : NULL) : cn - H;
                const real *acs = c->act_c ? c->act_c + (b * T + s) * H + u0 : NULL;
                /* dh' = dh + carried output gradient + u, in place (dh is rewritten below) */
                for (j = 0; j < n; j++) dh[j] += dcar[j];
                if (dob != NULL) {
                    for (j = 0; j < n; j++) dh[j] += dob[j];
                }
                if (dlb != NULL) {
                    for (j = 0; j < n; j++) dh[j] += dlb[j];
                }
                if (acs == NULL) {
                    /* a(c_s), recomputed into the free tmp row (this thread's units) */
                    real *ac = tmp + b * HW + u0;
                    for (j = 0; j < n; j++) ac[j] = cn[j];
                    AL_SFN(act_forward)(c->activation, ac, n);
                    acs = ac;
                }
                AL_SFN(lstm_gate_grads)(dz, dh, dc, dcar, gi, acs, cp, n, H, c->activation,
                                        c->recurrent_activation);
            }
        }
        if (c->mode == AL_SPLIT_COLS) al_barrier_wait(&c->bar);
        if (c->rec_mask == NULL) {
            /* tmp[b0:b1, u0:u1] = dz_t[b0:b1] (rows at stride T*4H) @ U^T[:, u0:u1]; u0 is a
             * panel boundary */
            const size_t nc = AL_SFN(al_pg_nc)(c->isa);
            /* odd steps take U^T's panels in descending order (the forward's reason,
             * lstm_fwd_fused) */
            AL_SFN(al_pg_gemm_ps_dir)(c->isa, tmp + b0 * HW + u0, HW, dZ + (b0 * T + t) * G,
                                      T * G, 1, c->pUt + (u0 / nc) * G * nc, 0, G * nc, NULL, 0,
                                      b1 - b0, n, G, (int)(s & 1));
        } else {
            /* tmp[b0:b1, kH+u0 : kH+u1] = dz_k (rows at stride T*4H) @ U_k^T[:, u0:u1], per
             * gate */
            const size_t nc = AL_SFN(al_pg_nc)(c->isa);
            for (k = 0; k < 4; k++) {
                AL_SFN(al_pg_gemm)(c->isa, tmp + b0 * HW + k * H + u0, HW,
                                   dZ + (b0 * T + t) * G + k * H, T * G, 1,
                                   c->pUt + k * c->nUt + (u0 / nc) * H * nc, 0, NULL, 0, b1 - b0,
                                   n, H);
            }
        }
        for (b = b0; b < b1; b++) {
            real *dh = c->dh0 + b * H;
            const real *tb = tmp + b * HW;
            const real *r = c->rec_mask ? c->rec_mask + b * G : NULL;
            if (c->mask != NULL && !c->mask[b * T + t]) continue;
            if (r != NULL) {
                for (j = u0; j < u1; j++) {
                    dh[j] = tb[j] * r[j] + tb[H + j] * r[H + j] + tb[2 * H + j] * r[2 * H + j] +
                            tb[3 * H + j] * r[3 * H + j];
                }
            } else {
                for (j = u0; j < u1; j++) dh[j] = tb[j];
            }
        }
    }
}

/* Hd rows of batch rows [b0, b1): row (b,t) = the dropped h_{s-1} that met U in the step
 * reading x[:, t]. */
static void AL_SFN(lstm_bwd_hd)(AL_SFN(lstm_bwd_ctx) *c, size_t b0, size_t b1) {
    const size_t T = c->T, H = c->H, G = 4 * H, HW = c->HW;
    size_t b, s, j, k;
    for (b = b0; b < b1; b++) {
        for (s = 0; s < T; s++) {
            const size_t t = c->go_backwards ? T - 1 - s : s;
            const real *hp = (s == 0) ? (c->h0 ? c->h0 + b * H : NULL)
                                      : c->hs + (b * T + s - 1) * H;
            const real *r = c->rec_mask ? c->rec_mask + b * G : NULL;
            real *dst = c->Hd + (b * T + t) * HW;
            if (hp == NULL) {
                for (j = 0; j < HW; j++) dst[j] = (real)0;
            } else if (r != NULL) {
                for (k = 0; k < 4; k++) {
                    for (j = 0; j < H; j++) dst[k * H + j] = hp[j] * r[k * H + j];
                }
            } else {
                for (j = 0; j < H; j++) dst[j] = hp[j];
            }
        }
    }
}

/* One thread's share of the backward: the time loop (rows or units by the team's mode), then
 * its rows of Hd, its columns of the weight gradients, its rows of dX and its columns of db,
 * with barriers between the phases. The products after the loop are on the packed tiles too
 * (not the BLAS, whose results change with its thread count): each element is one chain over
 * the B*T rows in order, whatever the thread split.
 *   dU (H,4H) = Hd^T dZ,  dW (D,4H) = X^T dZ  (al_pg_gemm_tn, columns split among the
 *   threads; per gate with rec_mask / dp_mask: the gate's Hd_k or X * p_k),
 *   dX (B*T,D) = dZ W^T  (with dp_mask sum_k (dZ_k W_k^T) * p_k; rows split) */
static void AL_SFN(lstm_bwd_work)(void *arg, int tid, int nt) {
    AL_SFN(lstm_bwd_ctx) *c = (AL_SFN(lstm_bwd_ctx) *)arg;
    const size_t B = c->B, T = c->T, D = c->D, H = c->H, G = 4 * H, BT = B * T, HW = c->HW;
    size_t b0 = 0, b1 = B, u0 = 0, u1 = H, g0, g1, k, n0, n1, r0, r1;

    if (c->pUtw != NULL) {
        /* This thread's panels of U^T (the forward's reason, lstm_fwd_work): in units mode the
         * panels its steps use; rows mode reads them all, after the barrier. */
        const size_t nc = AL_SFN(al_pg_nc)(c->isa);
        size_t p0, p1;
        al_split((H + nc - 1) / nc, nt, tid, &p0, &p1);
        if (p1 > p0) {
            const size_t j0 = p0 * nc, j1 = p1 * nc < H ? p1 * nc : H;
            AL_SFN(al_pg_pack)(c->isa, c->pUtw + p0 * G * nc, c->U + j0 * G, G, 1, G, j1 - j0);
        }
        if (c->mode != AL_SPLIT_COLS) al_barrier_wait(&c->bar);
    }
    if (c->mode == AL_SPLIT_ROWS) {
        /* chunks of rows first come, first served (see lstm_fwd_work) */
        while ((k = atomic_fetch_add(&c->next, 1)) < c->nchunk) {
            al_split(B, (int)c->nchunk, (int)k, &b0, &b1);
            AL_SFN(lstm_bwd_loop)(c, b0, b1, 0, H);
        }
    } else {
        if (c->mode == AL_SPLIT_COLS) {
            const size_t nc = AL_SFN(al_pg_nc)(c->isa);
            al_split(H / nc, nt, tid, &u0, &u1);
            u0 *= nc;
            u1 *= nc;
        }
        AL_SFN(lstm_bwd_loop)(c, b0, b1, u0, u1);
    }
    /* after the loop: this thread's rows of Hd */
    al_split(B, nt, tid, &b0, &b1);
    al_barrier_wait(&c->bar);
    AL_SFN(lstm_bwd_hd)(c, b0, b1);
    al_split(BT, nt, tid, &r0, &r1);
    {
        const int isa = c->isa;
        const int per_x = c->dp_mask != NULL;
        const size_t nc = AL_SFN(al_pg_nc)(isa);
        const size_t nw = per_x ? AL_SFN(al_pg_size)(isa, H, D) : AL_SFN(al_pg_size)(isa, G, D);
        real *pWt = c->big, *tnbuf = c->big + (per_x ? 4 : 1) * nw + (size_t)tid * c->ntn;
        size_t p0, p1;
        /* this thread's panels of W^T (per gate with dp_mask) */
        al_split((D + nc - 1) / nc, nt, tid, &p0, &p1);
        if (p1 > p0) {
            const size_t w = (p1 * nc < D ? p1 * nc : D) - p0 * nc;
            if (!per_x) {
                AL_SFN(al_pg_pack)(isa, pWt + p0 * G * nc, c->W + p0 * nc * G, G, 1, G, w);
            } else {
                for (k = 0; k < 4; k++)
                    AL_SFN(al_pg_pack)(isa, pWt + k * nw + p0 * H * nc, c->W + p0 * nc * G + k * H,
                                       G, 1, H, w);
            }
        }
        al_barrier_wait(&c->bar);           /* every row of Hd, every panel of W^T */
        if (c->rec_mask == NULL) {
            /* dU and (without dp_mask) dW over all 4H columns: one pass over dZ */
            AL_SFN(al_pg_tn) o[2] = {{c->dU, G, c->Hd, HW, H}, {c->dW, G, c->x, D, D}};
            AL_SFN(al_pg_tn_cols)(isa, 0, G, nt, tid, &n0, &n1);
            AL_SFN(al_pg_gemm_tn)(isa, o, D > 0 && !per_x ? 2 : 1, c->dZ, G, n0, n1, BT, c->tnkc,
                                  tnbuf);
        } else {
            for (k = 0; k < 4; k++) {
                AL_SFN(al_pg_tn) o[2] = {{c->dU, G, c->Hd + k * H, HW, H}, {c->dW, G, c->x, D, D}};
                AL_SFN(al_pg_tn_cols)(isa, k * H, H, nt, tid, &n0, &n1);
                AL_SFN(al_pg_gemm_tn)(isa, o, D > 0 && !per_x ? 2 : 1, c->dZ, G, n0, n1, BT,
                                      c->tnkc, tnbuf);
            }
        }
        if (D > 0 && !per_x) {
            /* dX rows [r0, r1) (B*T, D) */
            AL_SFN(al_pg_gemm)(isa, c->dx + r0 * D, D, c->dZ + r0 * G, G, 1, pWt, 0, NULL, 0,
                               r1 - r0, D, G);
        } else if (D > 0) {
            for (k = 0; k < 4; k++) {
                /* xd = x p_k (own rows); dW_k reads every row; then xd (own rows) =
                 * dZ_k W_k^T, and dX (own rows) += xd p_k */
                AL_SFN(al_mul_rows)(c->xd, c->x, c->dp_mask + k * D, 4 * D, r0, r1, T, D, 0);
                al_barrier_wait(&c->bar);
                AL_SFN(al_pg_tn) o = {c->dW, G, c->xd, D, D};
                AL_SFN(al_pg_tn_cols)(isa, k * H, H, nt, tid, &n0, &n1);
                AL_SFN(al_pg_gemm_tn)(isa, &o, 1, c->dZ, G, n0, n1, BT, c->tnkc, tnbuf);
                al_barrier_wait(&c->bar);
                AL_SFN(al_pg_gemm)(isa, c->xd + r0 * D, D, c->dZ + r0 * G + k * H, G, 1,
                                   pWt + k * nw, 0, NULL, 0, r1 - r0, D, H);
                AL_SFN(al_mul_rows)(c->dx, c->xd, c->dp_mask + k * D, 4 * D, r0, r1, T, D, k > 0);
            }
        }
    }
    /* this thread's columns of db (sums over the B*T rows of dZ, rows in order) */
    al_split(G, nt, tid, &g0, &g1);
    AL_SFN(al_colsum)(c->db + g0, c->dZ + g0, BT, g1 - g0, G, 0);
}

int AL_FN(lstm_backward_impl)(real *dx, real *dW, real *dU, real *db, real *dh0, real *dc0,
                              const real *hs, const real *cs, const real *gates,
                              const real *act_c,
                              const real *d_out, const real *d_last, const real *d_hT,
                              const real *d_cT,
                              const real *x, const real *h0, const real *c0,
                              const uint8_t *mask, const real *dp_mask, const real *rec_mask,
                              const real *W, const real *U,
                              size_t B, size_t T, size_t D, size_t H,
                              int activation, int recurrent_activation, int go_backwards,
                              int impl, int nthreads, int forced) {
    const size_t G = 4 * H;
    const size_t BT = B * T;
    const size_t HW = rec_mask ? G : H;     /* width of Hd and tmp rows */
    AL_SFN(lstm_bwd_ctx) c;
    real *work;
    real *pUt = NULL;                      /* packed U^T (4H,H), or the four U_k^T */
    int nt = 1;
    size_t j;

    if (B == 0 || T == 0) {
        for (j = 0; j < D * G; j++) dW[j] = (real)0;
        for (j = 0; j < H * G; j++) dU[j] = (real)0;
        for (j = 0; j < G; j++) db[j] = (real)0;
        for (j = 0; j < B * H; j++) dh0[j] = dc0[j] = (real)0;
        return AL_OK;
    }
    /* dZ (B,T,4H) | Hd (B,T,HW) | tmp (B,HW) | dcarry (B,H) | xd (B,T,D) (dp_mask only) */
    work = (real *)al_alloc_large((BT * (G + HW) + B * (HW + H) + (dp_mask ? BT * D : 0)) *
                                  sizeof(real));
    if (work == NULL) return AL_ERR_NOMEM;
    c.dx = dx; c.dW = dW; c.dU = dU; c.db = db; c.dh0 = dh0; c.dc0 = dc0;
    c.hs = hs; c.cs = cs; c.gates = gates; c.act_c = act_c; c.x = x; c.h0 = h0; c.c0 = c0;
    c.mask = mask; c.dp_mask = dp_mask; c.rec_mask = rec_mask; c.d_out = d_out;
    c.d_last = d_last; c.d_hT = d_hT; c.d_cT = d_cT; c.W = W; c.U = U;
    c.B = B; c.T = T; c.D = D; c.H = H; c.HW = HW;
    c.activation = activation; c.recurrent_activation = recurrent_activation;
    c.go_backwards = go_backwards;
    c.mode = AL_SPLIT_NONE; c.pUt = NULL; c.pUtw = NULL; c.nUt = 0; c.big = NULL;
    c.dZ = work;
    c.Hd = c.dZ + BT * G;
    c.tmp = c.Hd + BT * HW;
    c.dcarry = c.tmp + B * HW;
    c.xd = c.dcarry + B * H;
    c.isa = al_pg_choose(impl, B, T);
    {
        /* U^T packed for the per-step products (per gate with rec_mask); W^T (per gate with
         * dp_mask) for dX after the loop and each thread's buffer for the weight gradients
         * (for all 4H columns: a team of one does them all) */
        const int isa = c.isa;
        const size_t nut = rec_mask ? AL_SFN(al_pg_size)(isa, H, H) : AL_SFN(al_pg_size)(isa, G, H);
        size_t n;
        c.mode = al_lstm_split(nthreads, forced, B, T, H, AL_SFN(al_pg_nc)(isa), sizeof(real),
                               &nt);
        c.tnkc = AL_SFN(al_pg_tn_kc)(isa);
        if (c.tnkc > B * T) c.tnkc = B * T > 0 ? B * T : 1;   /* one block: no larger buffer */
        c.ntn = AL_SFN(al_pg_tn_size)(isa, G, H + D, c.tnkc);
        n = (dp_mask ? 4 * AL_SFN(al_pg_size)(isa, H, D) : AL_SFN(al_pg_size)(isa, G, D)) +
            (size_t)nt * c.ntn;
        pUt = (real *)malloc(((rec_mask ? 4 : 1) * nut + 1) * sizeof(real));
        c.big = (real *)al_alloc_large((n + 1) * sizeof(real));
        if (pUt == NULL || c.big == NULL) {
            free(pUt);
            free(c.big);
            free(work);
            return AL_ERR_NOMEM;
        }
        if (rec_mask == NULL) {
            c.pUtw = pUt;     /* packed by the team (lstm_bwd_work) */
        } else {
            AL_SFN(lstm_pack_gates4)(isa, pUt, U, 1, H, H, nut);
        }
        c.pUt = pUt;
        c.nUt = nut;
    }
    atomic_init(&c.next, 0);
    c.nchunk = c.mode == AL_SPLIT_ROWS ? al_split_chunks(B, nt) : 0;
    al_team_go(nt, AL_SFN(lstm_bwd_work), &c, &c.bar);
    free(c.big);
    free(work);
    free(pUt);
    return AL_OK;
}
