/*
 * lstm_impl.h -- LSTM forward over a whole sequence; part of the type template (al_real.h).
 *
 * Keras 3 LSTM semantics (keras/src/layers/rnn/lstm.py, implementation=2), gate order [i, f, c, o]:
 *   z   = (x_t W + h_{t-1} U) + b
 *   i = ra(z_i)  f = ra(z_f)  g = a(z_c)  o = ra(z_o)          (ra = recurrent_activation)
 *   c_t = f c_{t-1} + i g
 *   h_t = o a(c_t)
 * Masked step (mask[b,t] == 0): h and c are carried over unchanged, and the output is the
 * previous step's output (zero before the sample's first unmasked step, as on TF's CPU path).
 * go_backwards: step s reads time t = T-1-s; step-indexed buffers are in processing order.
 */

/*
 * lstm_forward: the whole sequence in one call.
 *
 * outputs   hs    (B,T,H)  h after each processing step s
 *           cs    (B,T,H)  c after each processing step s
 *           out   (B,T,H)  layer output per step under the mask rule; NULL when mask is NULL
 *                          (then the output sequence is hs itself)
 * saved     gates (B,T,4H) indexed by *time* t: the activated gates [i, f, g, o] of the step
 *                          that read x[:, t] (entries of masked steps are unspecified)
 * inputs    x     (B,T,D)
 *           h0    (B,H) or NULL for zeros;  c0 (B,H) or NULL for zeros
 *           mask  (B,T) uint8 or NULL (nonzero = keep)
 * weights   W     (D,4H)   kernel
 *           U     (H,4H)   recurrent_kernel
 *           bias  (4H)     or NULL
 * returns   AL_OK
 *
 * The input projection of all B*T rows is one GEMM; each step is one (B,H)x(H,4H) GEMM into
 * the strided gate rows of time t, then a fused elementwise pass per sample.
 */
int AL_FN(lstm_forward)(real *hs, real *cs, real *out, real *gates,
                        const real *x, const real *h0, const real *c0, const uint8_t *mask,
                        const real *W, const real *U, const real *bias,
                        size_t B, size_t T, size_t D, size_t H,
                        int activation, int recurrent_activation, int go_backwards) {
    const size_t G = 4 * H;
    size_t s, b, j;
    if (B == 0 || T == 0) return AL_OK;

    /* gates (B*T, 4H) = x (B*T, D) @ W (D, 4H): one GEMM over every step. */
    if (D > 0) {
        AL_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(B * T), (int)G, (int)D,
                (real)1, x, (int)D, W, (int)G, (real)0, gates, (int)G);
    } else {
        for (j = 0; j < B * T * G; j++) gates[j] = (real)0;
    }

    for (s = 0; s < T; s++) {
        const size_t t = go_backwards ? T - 1 - s : s;
        /* h_{s-1} rows: h0 (stride H) at s == 0, else hs[:, s-1] (stride T*H). */
        const real *hprev = (s == 0) ? h0 : hs + (s - 1) * H;
        const size_t hprev_ld = (s == 0) ? H : T * H;
        real *gt = gates + t * G;                       /* rows b at stride T*G */

        if (hprev != NULL) {
            AL_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)G, (int)H,
                    (real)1, hprev, (int)hprev_ld, U, (int)G, (real)1, gt, (int)(T * G));
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

            if (bias != NULL) {
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
                for (j = 0; j < H; j++) hn[j] *= zo[j];
            }
            if (out != NULL) {
                real *on = out + b * T * H + s * H;
                for (j = 0; j < H; j++) on[j] = hn[j];
            }
        }
    }
    return AL_OK;
}
