/*
 * al_isa.c -- the kernel path (AL_ISA_*, al_common.h): which instruction set this CPU can run,
 * and the one the kernels use, fixed once at import (module.c reads ATTNLSTM_ISA and calls
 * al_isa_select before any kernel can run).
 */
#include "al_common.h"

/* -1: not selected (the CPU's best). Written only by al_isa_select at module import. */
static int al_isa_selected = -1;

int al_isa_cpu_best(void) {
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return AL_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return AL_ISA_AVX2;
#endif
    return AL_ISA_GENERIC;
}

int al_isa_level(void) {
    return al_isa_selected >= 0 ? al_isa_selected : al_isa_cpu_best();
}

/* Written only by al_avx2_row_panels_select at module import. */
static int al_row_panels_selected = 1;

int al_cpu_is_amd(void) {
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_is("amd") ? 1 : 0;
#else
    return 0;
#endif
}

int al_avx2_row_panels(void) {
    return al_row_panels_selected;
}

int al_avx2_row_panels_select(int n) {
    if (n < 0 || n > 2) return -1;
    al_row_panels_selected = n > 0 ? n : (al_cpu_is_amd() ? 2 : 1);
    return 0;
}

/* Select a path; returns 0, or -1 (nothing changed) when this CPU cannot run it. */
int al_isa_select(int level) {
    if (level < AL_ISA_GENERIC || level > al_isa_cpu_best()) return -1;
    al_isa_selected = level;
    return 0;
}

/* buf (n >= 1 chars) = the CPU's SIMD flags that matter here, space-separated ("" when none
 * or not x86-64). */
void al_isa_cpu_flags(char *buf, size_t n) {
    size_t len = 0;
    buf[0] = 0;
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
    {
        static const char *const names[] = {"sse4_2", "avx", "avx2", "fma", "avx512f",
                                            "avx512bw", "avx512dq", "avx512vl"};
        int has[8];
        size_t k, j;
        __builtin_cpu_init();
        /* __builtin_cpu_supports takes string literals only */
        has[0] = __builtin_cpu_supports("sse4.2");
        has[1] = __builtin_cpu_supports("avx");
        has[2] = __builtin_cpu_supports("avx2");
        has[3] = __builtin_cpu_supports("fma");
        has[4] = __builtin_cpu_supports("avx512f");
        has[5] = __builtin_cpu_supports("avx512bw");
        has[6] = __builtin_cpu_supports("avx512dq");
        has[7] = __builtin_cpu_supports("avx512vl");
        for (k = 0; k < 8; k++) {
            if (!has[k]) continue;
            if (len > 0 && len + 1 < n) buf[len++] = ' ';
            for (j = 0; names[k][j] && len + 1 < n; j++) buf[len++] = names[k][j];
            buf[len] = 0;
        }
    }
#else
    (void)len; (void)n;
#endif
}
