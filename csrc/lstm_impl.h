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

/* dst (B*T, D) = x (B*T, D) * p (B, [k*D, (k+1)*D)) broadcast over time; p has row stride 4D. */
static void AL_SFN(lstm_drop_x)(real *dst, const real *x, const real *p, size_t k,
                                size_t B, size_t T, size_t D) {
    size_t b, t, j;
    for (b = 0; b < B; b++) {
        const real *pk = p + b * 4 * D + k * D;
        for (t = 0; t < T; t++) {
            const real *xr = x + (b * T + t) * D;
            real *dr = dst + (b * T + t) * D;
            for (j = 0; j < D; j++) dr[j] = xr[j] * pk[j];
        }
    }
}

/*
 * lstm_forward: the whole sequence in one call.
 *
 * outputs   hs    (B,T,H)  h after each processing step s
 *           cs    (B,T,H)  c after each processing step s
 *           out   (B,T,H)  layer output per step under the mask rule; NULL when mask is NULL
 *                          (then the output sequence is hs itself)
 * saved     gates (B,T,4H) indexed by *time* t: the activated gates [i, f, g, o] of the step
 *                          that read x[:, t] (entries of masked steps are unspecified)
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
 * returns   AL_OK, or AL_ERR_NOMEM (workspace: B*T*D reals with dp_mask, B*4H with rec_mask)
 *
 * The input projection of all B*T rows is one GEMM (four, one per gate, with dp_mask); each
 * step is one (B,H)x(H,4H) GEMM (four (B,H)x(H,H) with rec_mask) into the strided gate rows
 * of time t, then a fused elementwise pass per sample.
 */
int AL_FN(lstm_forward_impl)(real *hs, real *cs, real *out, real *gates, real *act_c,
                             const real *x, const real *h0, const real *c0,
                             const uint8_t *mask, const real *dp_mask, const real *rec_mask,
                             const real *W, const real *U, const real *bias,
                             size_t B, size_t T, size_t D, size_t H,
                             int activation, int recurrent_activation, int go_backwards,
                             int impl) {
    const size_t G = 4 * H;
    size_t s, b, j, k;
    real *hd = NULL;                                    /* (B,4H) dropped h_{s-1} per gate */
    /* float32 packed-panel path (lstm_pgemm.h): packed U for the steps, packed W (+ bias
     * folded in) for the input projection; NULL where BLAS does the product. */
    float *packed = NULL;
    const float *pU = NULL, *pW = NULL;
    int isa = AL_PG_NONE;
    if (B == 0 || T == 0) return AL_OK;
    if (rec_mask != NULL) {
        hd = (real *)malloc(B * G * sizeof(real));
        if (hd == NULL) return AL_ERR_NOMEM;
    }
#if defined(AL_REAL_F32)
    isa = al_pg_choose(impl, B, T);
    if (isa != AL_PG_NONE) {
        const size_t nu = rec_mask == NULL ? al_pg_size(isa, H, G) : 0;
        const size_t nw = (D > 0 && dp_mask == NULL && al_pg_for_projection(isa, impl))
                              ? al_pg_size(isa, D, G) : 0;
        if (nu + nw > 0) {
            packed = (float *)malloc((nu + nw) * sizeof(float));
            if (packed == NULL) {
                free(hd);
                return AL_ERR_NOMEM;
            }
        }
        if (nu > 0) {
            al_pg_pack(isa, packed, U, G, 0, H, G);
            pU = packed;
        }
        if (nw > 0) {
            al_pg_pack(isa, packed + nu, W, G, 0, D, G);
            pW = packed + nu;
        }
    }
#else
    (void)impl;
    (void)isa;
#endif

    /* gates (B*T, 4H) = x (B*T, D) @ W (D, 4H): one GEMM over every step (the packed path
     * adds the bias here too). */
    if (D > 0 && dp_mask == NULL && pW != NULL) {
#if defined(AL_REAL_F32)
        al_pg_gemm(isa, gates, G, x, D, 1, pW, 0, bias, 0, B * T, G, D);
#endif
    } else if (D > 0 && dp_mask == NULL) {
        AL_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(B * T), (int)G, (int)D,
                (real)1, x, (int)D, W, (int)G, (real)0, gates, (int)G);
    } else if (D > 0) {
        /* gates[:, kH:(k+1)H] = (x * p_k) @ W[:, kH:(k+1)H], one GEMM per gate. */
        real *xd = (real *)malloc(B * T * D * sizeof(real));
        if (xd == NULL) {
            free(hd);
            free(packed);
            return AL_ERR_NOMEM;
        }
        for (k = 0; k < 4; k++) {
            AL_SFN(lstm_drop_x)(xd, x, dp_mask, k, B, T, D);
            AL_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(B * T), (int)H, (int)D,
                    (real)1, xd, (int)D, W + k * H, (int)G, (real)0, gates + k * H, (int)G);
        }
        free(xd);
    } else {
        for (j = 0; j < B * T * G; j++) gates[j] = (real)0;
    }

    for (s = 0; s < T; s++) {
        const size_t t = go_backwards ? T - 1 - s : s;
        /* h_{s-1} rows: h0 (stride H) at s == 0, else hs[:, s-1] (stride T*H). */
        const real *hprev = (s == 0) ? h0 : hs + (s - 1) * H;
        const size_t hprev_ld = (s == 0) ? H : T * H;
        real *gt = gates + t * G;                       /* rows b at stride T*G */

        if (hprev != NULL && pU != NULL) {
#if defined(AL_REAL_F32)
            al_pg_gemm(isa, gt, T * G, hprev, hprev_ld, 1, pU, 0, NULL, 1, B, G, H);
#endif
        } else if (hprev != NULL && hd == NULL) {
            AL_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)G, (int)H,
                    (real)1, hprev, (int)hprev_ld, U, (int)G, (real)1, gt, (int)(T * G));
        } else if (hprev != NULL) {
            for (b = 0; b < B; b++) {
                const real *hp = hprev + b * hprev_ld, *r = rec_mask + b * G;
                real *dst = hd + b * G;
                for (k = 0; k < 4; k++) {
                    for (j = 0; j < H; j++) dst[k * H + j] = hp[j] * r[k * H + j];
                }
            }
            for (k = 0; k < 4; k++) {
                AL_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)H, (int)H,
                        (real)1, hd + k * H, (int)G, U + k * H, (int)G, (real)1, gt + k * H,
                        (int)(T * G));
            }
        }
        for (b = 0; b < B; b++) {
            real *z = gt + b * T * G;
            const real *hp = hprev ? hprev + b * hprev_ld : NULL;
            const real *cp = (s == 0) ? (c0 ? c0 + b * H : NULL) : cs + b * T * H + (s - 1) * H;
            real *hn = hs + b * T * H + s * H;
            real *cn = cs + b * T * H + s * H;

            if (mask != NULL && !mask[b * T + t]) {
                /* Masked: carry h, c and the previous output. */
                real *on = out + b * T * H + s * H;
                const real *op = (s == 0) ? NULL : out + b * T * H + (s - 1) * H;
                for (j = 0; j < H; j++) {
                    hn[j] = hp ? hp[j] : (real)0;
                    cn[j] = cp ? cp[j] : (real)0;
                    on[j] = op ? op[j] : (real)0;
                }
                continue;
            }

            if (bias != NULL && pW == NULL) {
                for (j = 0; j < G; j++) z[j] += bias[j];
            }
            AL_SFN(act_forward)(recurrent_activation, z, 2 * H);       /* i, f */
            AL_SFN(act_forward)(activation, z + 2 * H, H);             /* g    */
            AL_SFN(act_forward)(recurrent_activation, z + 3 * H, H);   /* o    */
            {
                const real *zi = z, *zf = z + H, *zg = z + 2 * H, *zo = z + 3 * H;
                if (cp != NULL) {
                    for (j = 0; j < H; j++) cn[j] = zf[j] * cp[j] + zi[j] * zg[j];
                } else {
                    for (j = 0; j < H; j++) cn[j] = zi[j] * zg[j];
                }
                for (j = 0; j < H; j++) hn[j] = cn[j];
                AL_SFN(act_forward)(activation, hn, H);
                if (act_c != NULL) {
                    real *ac = act_c + b * T * H + s * H;
                    for (j = 0; j < H; j++) ac[j] = hn[j];
                }
                for (j = 0; j < H; j++) hn[j] *= zo[j];
            }
            if (out != NULL) {
                real *on = out + b * T * H + s * H;
                for (j = 0; j < H; j++) on[j] = hn[j];
            }
        }
    }
    free(hd);
    free(packed);
    return AL_OK;
}

int AL_FN(lstm_forward)(real *hs, real *cs, real *out, real *gates, real *act_c,
                        const real *x, const real *h0, const real *c0, const uint8_t *mask,
                        const real *dp_mask, const real *rec_mask,
                        const real *W, const real *U, const real *bias,
                        size_t B, size_t T, size_t D, size_t H,
                        int activation, int recurrent_activation, int go_backwards) {
    return AL_FN(lstm_forward_impl)(hs, cs, out, gates, act_c, x, h0, c0, mask, dp_mask,
                                    rec_mask, W, U, bias, B, T, D, H, activation,
                                    recurrent_activation, go_backwards, 0);
}

/* Gradients of one sample's gate pre-activations at one step (the elementwise part of the
 * backward, see lstm_backward): dz (4H) from dh' (H, already including the output
 * gradients), dc (H, in: w.r.t. c_s; out: w.r.t. c_{s-1}), the activated gates g (4H),
 * ac = a(c_s) (H) and cp = c_{s-1} (H, NULL for zeros); dcar (H) is cleared. Specialised for
 * (tanh, sigmoid) so the loop vectorises; any other pair goes through act_deriv. */
static inline __attribute__((always_inline)) void AL_SFN(lstm_gate_grads_body)(
    real *dz, const real *dh, real *dc, real *dcar, const real *g, const real *ac,
    const real *cp, size_t H, int act, int ract) {
    const real *gi = g, *gf = g + H, *gg = g + 2 * H, *go = g + 3 * H;
    real *dzi = dz, *dzf = dz + H, *dzg = dz + 2 * H, *dzo = dz + 3 * H;
    size_t j;
    for (j = 0; j < H; j++) {
        const real dht = dh[j];
        const real dct = dc[j] + dht * go[j] * AL_SFN(act_deriv)(act, ac[j]);
        dzo[j] = dht * ac[j] * AL_SFN(act_deriv)(ract, go[j]);
        dzi[j] = dct * gg[j] * AL_SFN(act_deriv)(ract, gi[j]);
        dzg[j] = dct * gi[j] * AL_SFN(act_deriv)(act, gg[j]);
        dzf[j] = cp ? dct * cp[j] * AL_SFN(act_deriv)(ract, gf[j]) : (real)0;
        dc[j] = dct * gf[j];
        dcar[j] = (real)0;
    }
}

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
static void AL_SFN(lstm_gate_grads)(real *dz, const real *dh, real *dc, real *dcar,
                                    const real *g, const real *ac, const real *cp, size_t H,
                                    int act, int ract) {
    if (act == AL_ACT_TANH && ract == AL_ACT_SIGMOID && cp != NULL) {
        AL_SFN(lstm_gate_grads_body)(dz, dh, dc, dcar, g, ac, cp, H, AL_ACT_TANH,
                                     AL_ACT_SIGMOID);
    } else if (act == AL_ACT_TANH && ract == AL_ACT_SIGMOID) {
        AL_SFN(lstm_gate_grads_body)(dz, dh, dc, dcar, g, ac, NULL, H, AL_ACT_TANH,
                                     AL_ACT_SIGMOID);
    } else {
        AL_SFN(lstm_gate_grads_body)(dz, dh, dc, dcar, g, ac, cp, H, act, ract);
    }
}

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
 * inputs    x (B,T,D), h0 (B,H) or NULL, c0 (B,H) or NULL, mask (B,T) uint8 or NULL,
 *           dp_mask (B,4D) or NULL, rec_mask (B,4H) or NULL: exactly the forward's arguments
 *           d_out  (B,T,H)  upstream gradient w.r.t. the output sequence (processing order,
 *                           after the mask rule; without a mask the outputs are hs), or NULL
 *           d_last (B,H)    upstream gradient w.r.t. the last output (the output of step T-1,
 *                           i.e. return_sequences=False), or NULL; added to d_out[:, T-1]
 *           d_hT   (B,H)    upstream gradient w.r.t. the final h (hs[:, T-1]), or NULL
 *           d_cT   (B,H)    upstream gradient w.r.t. the final c (cs[:, T-1]), or NULL
 * weights   W (D,4H), U (H,4H)
 * returns   AL_OK, or AL_ERR_NOMEM (workspace of B*T*(4H + H + D) + 2*B*H reals, with
 *           rec_mask B*T*8H + B*T*D + 5*B*H)
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
int AL_FN(lstm_backward_impl)(real *dx, real *dW, real *dU, real *db, real *dh0, real *dc0,
                              const real *hs, const real *cs, const real *gates,
                              const real *act_c,
                              const real *x, const real *h0, const real *c0,
                              const uint8_t *mask, const real *dp_mask, const real *rec_mask,
                              const real *d_out, const real *d_last, const real *d_hT,
                              const real *d_cT,
                              const real *W, const real *U,
                              size_t B, size_t T, size_t D, size_t H,
                              int activation, int recurrent_activation, int go_backwards,
                              int impl) {
    const size_t G = 4 * H;
    const size_t BT = B * T;
    const size_t HW = rec_mask ? G : H;     /* width of Hd and tmp rows */
    size_t s, b, j, k;
    real *work, *dZ, *Hd, *tmp, *dcarry, *xd;
    float *pUt = NULL;                      /* packed U^T (4H,H), float32 packed path only */
    int isa = AL_PG_NONE;

    if (B == 0 || T == 0) {
        for (j = 0; j < D * G; j++) dW[j] = (real)0;
        for (j = 0; j < H * G; j++) dU[j] = (real)0;
        for (j = 0; j < G; j++) db[j] = (real)0;
        for (j = 0; j < B * H; j++) dh0[j] = dc0[j] = (real)0;
        return AL_OK;
    }
    /* dZ (B,T,4H) | Hd (B,T,HW) | tmp (B,HW) | dcarry (B,H) | xd (B,T,D) (dp_mask only) */
    work = (real *)malloc((BT * (G + HW) + B * (HW + H) + (dp_mask ? BT * D : 0)) *
                          sizeof(real));
    if (work == NULL) return AL_ERR_NOMEM;
#if defined(AL_REAL_F32)
    isa = rec_mask == NULL ? al_pg_choose(impl, B, T) : AL_PG_NONE;
    if (isa != AL_PG_NONE) {
        pUt = (float *)malloc(al_pg_size(isa, G, H) * sizeof(float));
        if (pUt == NULL) {
            free(work);
            return AL_ERR_NOMEM;
        }
        al_pg_pack(isa, pUt, U, G, 1, G, H);
    }
#else
    (void)impl;
    (void)isa;
#endif
    dZ = work;
    Hd = dZ + BT * G;
    tmp = Hd + BT * HW;
    dcarry = tmp + B * HW;
    xd = dcarry + B * H;

    /* dh0, dc0 serve as the running dh, dc (gradients w.r.t. h_s, c_s). */
    for (j = 0; j < B * H; j++) {
        dh0[j] = d_hT ? d_hT[j] : (real)0;
        dc0[j] = d_cT ? d_cT[j] : (real)0;
        dcarry[j] = (real)0;
    }

    for (s = T; s-- > 0;) {
        const size_t t = go_backwards ? T - 1 - s : s;
        for (b = 0; b < B; b++) {
            real *dz = dZ + (b * T + t) * G;
            real *dh = dh0 + b * H, *dc = dc0 + b * H, *dcar = dcarry + b * H;
            const real *dob = d_out ? d_out + (b * T + s) * H : NULL;
            const real *dlb = (d_last && s == T - 1) ? d_last + b * H : NULL;

            if (mask != NULL && !mask[b * T + t]) {
                /* out_s = out_{s-1}: the output gradient moves one step back. */
                for (j = 0; j < H; j++) {
                    dcar[j] += (dob ? dob[j] : (real)0) + (dlb ? dlb[j] : (real)0);
                }
                for (j = 0; j < G; j++) dz[j] = (real)0;
                continue;
            }
            {
                const real *gi = gates + (b * T + t) * G;
                const real *cn = cs + (b * T + s) * H;
                const real *cp = (s == 0) ? (c0 ? c0 + b * H : NULL) : cn - H;
                const real *acs = act_c ? act_c + (b * T + s) * H : NULL;
                /* dh' = dh + carried output gradient + u, in place (dh is rewritten below) */
                for (j = 0; j < H; j++) dh[j] += dcar[j];
                if (dob != NULL) {
                    for (j = 0; j < H; j++) dh[j] += dob[j];
                }
                if (dlb != NULL) {
                    for (j = 0; j < H; j++) dh[j] += dlb[j];
                }
                if (acs == NULL) {
                    /* a(c_s), recomputed into the free tmp row */
                    real *ac = tmp + b * HW;
                    for (j = 0; j < H; j++) ac[j] = cn[j];
                    AL_SFN(act_forward)(activation, ac, H);
                    acs = ac;
                }
                AL_SFN(lstm_gate_grads)(dz, dh, dc, dcar, gi, acs, cp, H, activation,
                                        recurrent_activation);
            }
        }
        if (pUt != NULL) {
#if defined(AL_REAL_F32)
            al_pg_gemm(isa, tmp, H, dZ + t * G, T * G, 1, pUt, 0, NULL, 0, B, H, G);
#endif
        } else if (rec_mask == NULL) {
            /* tmp (B,H) = dz_t (B,4H; rows at stride T*4H) @ U^T */
            AL_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)H, (int)G,
                    (real)1, dZ + t * G, (int)(T * G), U, (int)G, (real)0, tmp, (int)H);
        } else {
            /* tmp[:, kH:(k+1)H] (B,H) = dz_k (B,H) @ U_k^T, one GEMM per gate */
            for (k = 0; k < 4; k++) {
                AL_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)H, (int)H,
                        (real)1, dZ + t * G + k * H, (int)(T * G), U + k * H, (int)G,
                        (real)0, tmp + k * H, (int)G);
            }
        }
        for (b = 0; b < B; b++) {
            real *dh = dh0 + b * H;
            const real *tb = tmp + b * HW;
            const real *r = rec_mask ? rec_mask + b * G : NULL;
            if (mask != NULL && !mask[b * T + t]) continue;
            if (r != NULL) {
                for (j = 0; j < H; j++) {
                    dh[j] = tb[j] * r[j] + tb[H + j] * r[H + j] + tb[2 * H + j] * r[2 * H + j] +
                            tb[3 * H + j] * r[3 * H + j];
                }
            } else {
                for (j = 0; j < H; j++) dh[j] = tb[j];
            }
        }
    }

    /* Hd (B,T,HW), row (b,t) = the dropped h_{s-1} that met U in the step reading x[:, t]. */
    for (b = 0; b < B; b++) {
        for (s = 0; s < T; s++) {
            const size_t t = go_backwards ? T - 1 - s : s;
            const real *hp = (s == 0) ? (h0 ? h0 + b * H : NULL) : hs + (b * T + s - 1) * H;
            const real *r = rec_mask ? rec_mask + b * G : NULL;
            real *dst = Hd + (b * T + t) * HW;
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

#if defined(AL_REAL_F32)
    /* Packed path: the three large products as dZ^T times a packed right-hand side, each
     * result transposed into place. On a failed allocation BLAS does them instead. */
    if (pUt != NULL && dp_mask == NULL && al_pg_for_projection(isa, impl)) {
        const size_t nh = al_pg_size(isa, BT, H), nx = al_pg_size(isa, BT, D);
        const size_t nwt = al_pg_size(isa, G, D);
        float *big = (float *)malloc((nh + nx + nwt + G * (H > D ? H : D)) * sizeof(float));
        if (big != NULL) {
            float *pH = big, *pX = pH + nh, *pWt = pX + nx, *tT = pWt + nwt;
            /* dU^T (4H, H) = dZ^T (4H, B*T) Hd (B*T, H) */
            al_pg_pack(isa, pH, Hd, H, 0, BT, H);
            al_pg_gemm(isa, tT, H, dZ, 1, G, pH, 0, NULL, 0, G, H, BT);
            al_pg_transpose(dU, G, tT, H, G, H);
            if (D > 0) {
                /* dW^T (4H, D) = dZ^T X (B*T, D);  dX (B*T, D) = dZ (B*T, 4H) W^T (4H, D) */
                al_pg_pack(isa, pX, x, D, 0, BT, D);
                al_pg_gemm(isa, tT, D, dZ, 1, G, pX, 0, NULL, 0, G, D, BT);
                al_pg_transpose(dW, G, tT, D, G, D);
                al_pg_pack(isa, pWt, W, G, 1, G, D);
                al_pg_gemm(isa, dx, D, dZ, G, 1, pWt, 0, NULL, 0, BT, D, G);
            }
            free(big);
            goto bias_grad;
        }
    }
#endif
    if (rec_mask == NULL) {
        /* dU (H,4H) = Hd^T (H, B*T) @ dZ (B*T, 4H) */
        AL_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, (int)H, (int)G, (int)BT,
                (real)1, Hd, (int)H, dZ, (int)G, (real)0, dU, (int)G);
    } else {
        /* dU_k (H,H) = Hd_k^T (H, B*T) @ dZ_k (B*T, H) */
        for (k = 0; k < 4; k++) {
            AL_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, (int)H, (int)H, (int)BT,
                    (real)1, Hd + k * H, (int)G, dZ + k * H, (int)G, (real)0, dU + k * H,
                    (int)G);
        }
    }
    if (D > 0 && dp_mask == NULL) {
        /* dW (D,4H) = X^T (D, B*T) @ dZ (B*T, 4H);  dX (B*T, D) = dZ (B*T, 4H) @ W^T (4H, D) */
        AL_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, (int)D, (int)G, (int)BT,
                (real)1, x, (int)D, dZ, (int)G, (real)0, dW, (int)G);
        AL_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)BT, (int)D, (int)G,
                (real)1, dZ, (int)G, W, (int)G, (real)0, dx, (int)D);
    } else if (D > 0) {
        for (k = 0; k < 4; k++) {
            /* dW_k (D,H) = (X * p_k)^T @ dZ_k;  then xd = dZ_k @ W_k^T, dX += xd * p_k */
            AL_SFN(lstm_drop_x)(xd, x, dp_mask, k, B, T, D);
            AL_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, (int)D, (int)H, (int)BT,
                    (real)1, xd, (int)D, dZ + k * H, (int)G, (real)0, dW + k * H, (int)G);
            AL_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)BT, (int)D, (int)H,
                    (real)1, dZ + k * H, (int)G, W + k * H, (int)G, (real)0, xd, (int)D);
            for (b = 0; b < B; b++) {
                const real *pk = dp_mask + b * 4 * D + k * D;
                for (s = 0; s < T; s++) {
                    real *dxr = dx + (b * T + s) * D;
                    const real *xr = xd + (b * T + s) * D;
                    if (k == 0) {
                        for (j = 0; j < D; j++) dxr[j] = xr[j] * pk[j];
                    } else {
                        for (j = 0; j < D; j++) dxr[j] += xr[j] * pk[j];
                    }
                }
            }
        }
    }
#if defined(AL_REAL_F32)
bias_grad:
#endif
    /* db (4H) = sum over the B*T rows of dZ */
    for (j = 0; j < G; j++) db[j] = (real)0;
    for (s = 0; s < BT; s++) {
        const real *row = dZ + s * G;
        for (j = 0; j < G; j++) db[j] += row[j];
    }
    free(work);
    free(pUt);
    return AL_OK;
}

int AL_FN(lstm_backward)(real *dx, real *dW, real *dU, real *db, real *dh0, real *dc0,
                         const real *hs, const real *cs, const real *gates, const real *act_c,
                         const real *x, const real *h0, const real *c0, const uint8_t *mask,
                         const real *dp_mask, const real *rec_mask,
                         const real *d_out, const real *d_last, const real *d_hT,
                         const real *d_cT,
                         const real *W, const real *U,
                         size_t B, size_t T, size_t D, size_t H,
                         int activation, int recurrent_activation, int go_backwards) {
    return AL_FN(lstm_backward_impl)(dx, dW, dU, db, dh0, dc0, hs, cs, gates, act_c, x, h0, c0,
                                     mask, dp_mask, rec_mask, d_out, d_last, d_hT, d_cT, W, U,
                                     B, T, D, H, activation, recurrent_activation,
                                     go_backwards, 0);
}
