/*
 * al_softmax_impl.h -- the softmax of one score row, part of the type template (al_real.h),
 * shared by the dot-product and multi-head attention kernels.
 *
 * softmax_row(s, keep, n): s (n) <- exp(s - max) / sum over the kept entries (keep == NULL:
 * all of them); entries with keep[j] == 0 get exactly 0 and take no part in max or sum. At
 * least one entry must be kept.
 *
 * Why its own function: the attention kernels spent most of their time in libm's scalar exp.
 * In float32 the exp is al_expf_flush (al_vmath.h, ~1 ulp, exactly 0 below the smallest
 * normal), and max and sum keep 16 partial results so every loop vectorises (AVX-512 / AVX2
 * copies for the selected path, AL_ISA_VERSIONS_VOID). float64 keeps libm's exp (0 below ln(2^-1075), skipping libm's
 * underflow path) for 1e-10 agreement with the NumPy twins.
 */
#if defined(AL_REAL_F32)
#  define AL_SM_EXP al_expf_flush
#else
#  define AL_SM_EXP(x_) ((x_) < -746.0 ? 0.0 : exp(x_))
#endif

#define AL_SM_LANES 16

static inline __attribute__((always_inline)) void AL_SFN(softmax_row_body)(
    real *s, const uint8_t *keep, size_t n) {
    real part[AL_SM_LANES], m, sum;
    size_t j, l;
    const size_t nv = n - n % AL_SM_LANES;
    /* Dropped entries become -inf, whose exp is exactly 0 (a select, not arithmetic, so the
     * loop vectorises under the default -ftrapping-math). */
    if (keep != NULL) {
        for (j = 0; j < n; j++) s[j] = keep[j] ? s[j] : -(real)INFINITY;
    }
    /* max (a NaN score is skipped here and propagates through exp) */
    for (l = 0; l < AL_SM_LANES; l++) part[l] = -(real)INFINITY;
    for (j = 0; j < nv; j += AL_SM_LANES)
        for (l = 0; l < AL_SM_LANES; l++) part[l] = s[j + l] > part[l] ? s[j + l] : part[l];
    for (; j < n; j++) part[0] = s[j] > part[0] ? s[j] : part[0];
    m = part[0];
    for (l = 1; l < AL_SM_LANES; l++) m = part[l] > m ? part[l] : m;
    /* exp(s - max), then the sum in 16 partial sums */
    for (j = 0; j < n; j++) s[j] = AL_SM_EXP(s[j] - m);
    for (l = 0; l < AL_SM_LANES; l++) part[l] = (real)0;
    for (j = 0; j < nv; j += AL_SM_LANES)
        for (l = 0; l < AL_SM_LANES; l++) part[l] += s[j + l];
    for (; j < n; j++) part[0] += s[j];
    sum = (real)0;
    for (l = 0; l < AL_SM_LANES; l++) sum += part[l];
    for (j = 0; j < n; j++) s[j] /= sum;
}
AL_ISA_VERSIONS_VOID(AL_SFN(softmax_row), AL_SFN(softmax_row_body),
                     (real *s, const uint8_t *keep, size_t n), (s, keep, n))

#undef AL_SM_EXP
#undef AL_SM_LANES
