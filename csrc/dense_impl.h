/*
 * dense_impl.h -- the dense-product kernel; part of the type template (al_real.h), compiled for
 * float32 and float64 by dense.c.
 */

/*
 * matmul: C = op(A) op(B), one BLAS call.
 *
 * outputs   C  (M,N)
 * inputs    A  (M,K), or (K,M) when trans_a
 *           Bm (K,N), or (N,K) when trans_b
 * returns   AL_OK
 */
int AL_FN(matmul)(real *C, const real *A, const real *Bm, size_t M, size_t N, size_t K,
                  int trans_a, int trans_b) {
    AL_SFN(al_gemm)(trans_a, trans_b, M, N, K, (real)1, A, trans_a ? M : K, Bm,
                    trans_b ? K : N, (real)0, C, N);
    return AL_OK;
}
