/*
 * peak.c -- the machine's own bounds, measured at run time for `make bench` (issue 20):
 * the FMA peak of one core (a register-blocked loop of independent fused multiply-adds, enough
 * accumulators to cover the FMA latency on two ports) and the read bandwidth of a buffer of a
 * given size (L2- or L3-sized), with the widest vectors the CPU has. Compiled by
 * benchmarks/peak.py with the system C compiler into a private shared library; not part of
 * attnlstm. Each function returns its work count (flops or bytes) so the caller divides by the
 * wall time it measured.
 */
#include <stddef.h>
#include <immintrin.h>

#define ACC 12   /* independent accumulators: > latency (4) x FMA ports (2) on current cores */

/* Twelve named accumulators, so the compiler keeps them in registers (an array would be
 * left in memory by a rolled loop). */
#define FMA12(op, a, m)                                                                      \
    a0 = op(a0, m, c); a1 = op(a1, m, c); a2 = op(a2, m, c); a3 = op(a3, m, c);            \
    a4 = op(a4, m, c); a5 = op(a5, m, c); a6 = op(a6, m, c); a7 = op(a7, m, c);            \
    a8 = op(a8, m, c); a9 = op(a9, m, c); a10 = op(a10, m, c); a11 = op(a11, m, c);

__attribute__((target("avx512f"))) double al_fma_avx512_f32(long iters, float *sink) {
    const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    __m512 a0 = _mm512_set1_ps(0.f), a1 = _mm512_set1_ps(1.f), a2 = _mm512_set1_ps(2.f),
           a3 = _mm512_set1_ps(3.f), a4 = _mm512_set1_ps(4.f), a5 = _mm512_set1_ps(5.f),
           a6 = _mm512_set1_ps(6.f), a7 = _mm512_set1_ps(7.f), a8 = _mm512_set1_ps(8.f),
           a9 = _mm512_set1_ps(9.f), a10 = _mm512_set1_ps(10.f), a11 = _mm512_set1_ps(11.f);
    for (long i = 0; i < iters; i++) {
        FMA12(_mm512_fmadd_ps, a, m)
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                             _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
    *sink = _mm512_reduce_add_ps(s);
    return 2.0 * 16 * ACC * (double)iters;
}

__attribute__((target("avx2,fma"))) double al_fma_avx2_f32(long iters, float *sink) {
    const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    __m256 a0 = _mm256_set1_ps(0.f), a1 = _mm256_set1_ps(1.f), a2 = _mm256_set1_ps(2.f),
           a3 = _mm256_set1_ps(3.f), a4 = _mm256_set1_ps(4.f), a5 = _mm256_set1_ps(5.f),
           a6 = _mm256_set1_ps(6.f), a7 = _mm256_set1_ps(7.f), a8 = _mm256_set1_ps(8.f),
           a9 = _mm256_set1_ps(9.f), a10 = _mm256_set1_ps(10.f), a11 = _mm256_set1_ps(11.f);
    float out[8];
    for (long i = 0; i < iters; i++) {
        FMA12(_mm256_fmadd_ps, a, m)
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
    _mm256_storeu_ps(out, s);
    *sink = out[0] + out[1] + out[2] + out[3] + out[4] + out[5] + out[6] + out[7];
    return 2.0 * 8 * ACC * (double)iters;
}

/* Sum of a float buffer of n elements (n a multiple of 64), `reps` times: bytes read. */
__attribute__((target("avx512f"))) double al_read_avx512(const float *buf, size_t n, long reps,
                                                           float *sink) {
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (long r = 0; r < reps; r++)
        for (size_t i = 0; i < n; i += 64) {
            s0 = _mm512_add_ps(s0, _mm512_loadu_ps(buf + i));
            s1 = _mm512_add_ps(s1, _mm512_loadu_ps(buf + i + 16));
            s2 = _mm512_add_ps(s2, _mm512_loadu_ps(buf + i + 32));
            s3 = _mm512_add_ps(s3, _mm512_loadu_ps(buf + i + 48));
        }
    *sink = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
    return 4.0 * (double)n * (double)reps;
}

__attribute__((target("avx2"))) double al_read_avx2(const float *buf, size_t n, long reps,
                                                    float *sink) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    float out[8];
    for (long r = 0; r < reps; r++)
        for (size_t i = 0; i < n; i += 32) {
            s0 = _mm256_add_ps(s0, _mm256_loadu_ps(buf + i));
            s1 = _mm256_add_ps(s1, _mm256_loadu_ps(buf + i + 8));
            s2 = _mm256_add_ps(s2, _mm256_loadu_ps(buf + i + 16));
            s3 = _mm256_add_ps(s3, _mm256_loadu_ps(buf + i + 24));
        }
    _mm256_storeu_ps(out, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    *sink = out[0] + out[7];
    return 4.0 * (double)n * (double)reps;
}

int al_cpu_has(const char *feature) {
    __builtin_cpu_init();
    if (feature[0] == 'a' && feature[3] == '5') return __builtin_cpu_supports("avx512f");
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
