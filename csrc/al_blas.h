/*
 * al_blas.h -- the BLAS and projection helpers every kernel family shares; part of the type
 * template (al_real.h): included once per floating type, after al_real.h.
 *   al_gemm              row-major C = alpha op(A) op(Bm) + beta C, safe for empty axes
 *   al_project           y = x W + b, a Dense projection (Keras order)
 *   al_project_backward  its gradients dx, dW, db
 *   al_colsum            column sums of a row-major block (bias gradients)
 *   al_mul_rows          rows times a per-sample row of a dropout mask, broadcast over time
 * All sums run in a fixed order, so each TU's copy computes the same bits on every ISA path
 * that compiles it the same way (the BLAS calls are the same calls).
 */

/* Row-major C (M,N) = alpha op(A) op(Bm) + beta C, op = transpose when trans_*. The BLAS
 * rejects leading dimensions of 0: M == 0 or N == 0 writes nothing, K == 0 gives beta C
 * (zeros when beta == 0). */
static inline void AL_SFN(al_gemm)(int trans_a, int trans_b, size_t M, size_t N, size_t K,
                                   real alpha, const real *A, size_t lda, const real *Bm,
                                   size_t ldb, real beta, real *C, size_t ldc) {
    size_t i, j;
    if (M == 0 || N == 0) return;
    if (K == 0) {
        for (i = 0; i < M; i++) {
            for (j = 0; j < N; j++)
                C[i * ldc + j] = beta == (real)0 ? (real)0 : beta * C[i * ldc + j];
        }
        return;
    }
    AL_GEMM(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
            (int)M, (int)N, (int)K, alpha, A, (int)lda, Bm, (int)ldb, beta, C, (int)ldc);
}

/* out (D) = sum over the N rows of x (row stride ldx), rows in order; accumulate: out +=. */
static inline void AL_SFN(al_colsum)(real *out, const real *x, size_t N, size_t D,
                                     size_t ldx, int accumulate) {
    size_t n, j;
    if (!accumulate) {
        for (j = 0; j < D; j++) out[j] = (real)0;
    }
    if (D == 0) return;
    for (n = 0; n < N; n++) {
        for (j = 0; j < D; j++) out[j] += x[n * ldx + j];
    }
}

/* y (N,Dout) = x (N,Din) W (Din,Dout) [+ b (Dout), NULL for none]. */
static inline void AL_SFN(al_project)(real *y, const real *x, const real *W, const real *b,
                                      size_t N, size_t Din, size_t Dout) {
    size_t n, j;
    AL_SFN(al_gemm)(0, 0, N, Dout, Din, (real)1, x, Din, W, Dout, (real)0, y, Dout);
    if (b != NULL && Dout > 0) {
        for (n = 0; n < N; n++) {
            for (j = 0; j < Dout; j++) y[n * Dout + j] += b[j];
        }
    }
}

/* Backward of al_project given dy (N,Dout): dx (N,Din) = dy W^T (+ dx when accumulate_dx),
 * dW (Din,Dout) = x^T dy, db (Dout) = column sums of dy (skipped when NULL). */
static inline void AL_SFN(al_project_backward)(real *dx, real *dW, real *db, const real *dy,
                                               const real *x, const real *W, size_t N,
                                               size_t Din, size_t Dout, int accumulate_dx) {
    AL_SFN(al_gemm)(0, 1, N, Din, Dout, (real)1, dy, Dout, W, Dout,
                    accumulate_dx ? (real)1 : (real)0, dx, Din);
    AL_SFN(al_gemm)(1, 0, Din, Dout, N, (real)1, x, Din, dy, Dout, (real)0, dW, Dout);
    if (db != NULL) AL_SFN(al_colsum)(db, dy, N, Dout, Dout, 0);
}

/* dst rows [r0, r1) of (B*T, D) = x rows * p[b] (D), b = r / T: a per-sample dropout mask
 * (row stride ldp) broadcast over time; accumulate: dst +=. */
static inline void AL_SFN(al_mul_rows)(real *dst, const real *x, const real *p, size_t ldp,
                                       size_t r0, size_t r1, size_t T, size_t D,
                                       int accumulate) {
    size_t r, j;
    for (r = r0; r < r1; r++) {
        const real *pr = p + (r / T) * ldp;
        const real *xr = x + r * D;
        real *dr = dst + r * D;
        if (accumulate) {
            for (j = 0; j < D; j++) dr[j] += xr[j] * pr[j];
        } else {
            for (j = 0; j < D; j++) dr[j] = xr[j] * pr[j];
        }
    }
}
