/*
 * al_common.h -- shared definitions of attnlstm's pure C kernels.
 *
 * Pure C11: no Python.h, no printing, no exiting. Every exported symbol starts with `al_`.
 * Dimension legend (see STYLE.md): B batch, T timesteps (Tq/Tv in attention), D input
 * features, H hidden units, NH heads, HS head size, Z latent size. Buffers are flat and
 * row-major in NumPy axis order. LSTM gate order along the last axis is [i, f, c, o].
 *
 * One argument order for every kernel (llm.c's), so a backward line reads against its forward:
 *   forward   outputs, saved-for-backward buffers, inputs (activations, masks), weights,
 *             size_t dimensions (in legend order), options (flags, codes, scalars);
 *   backward  d-gradients of the inputs and weights (outputs), the forward's saved buffers,
 *             the upstream d-gradients of its outputs, inputs, weights, dimensions, options.
 */
#ifndef AL_COMMON_H
#define AL_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* Activation codes shared with the Python layer (attnlstm/activations.py keeps the same
 * numbers). Keras 3 semantics: hard_sigmoid is relu6(x + 3) / 6 = clip(x/6 + 1/2, 0, 1). */
typedef enum {
    AL_ACT_LINEAR = 0,
    AL_ACT_TANH = 1,
    AL_ACT_SIGMOID = 2,
    AL_ACT_HARD_SIGMOID = 3,
    AL_ACT_RELU = 4,
    AL_ACT_COUNT = 5
} al_activation;

/* Kernel status codes. The binding turns a non-zero status into a Python exception. */
enum {
    AL_OK = 0,
    AL_ERR_NOMEM = 1,   /* a workspace allocation failed */
    AL_ERR_ARG = 2      /* an argument the binding should have rejected */
};

/* BLAS: OpenBLAS from the scipy-openblas32 wheel exports its CBLAS with a `scipy_` prefix
 * and 32-bit integers. The binding checks every dimension against AL_BLAS_INT_MAX. */
#include <cblas.h>
#define AL_BLAS_INT_MAX 2147483647LL
#define al_cblas_sgemm scipy_cblas_sgemm
#define al_cblas_dgemm scipy_cblas_dgemm

/* The thread count of the BLAS, which attnlstm.set_num_threads sets: the one thread budget for
 * the BLAS and for the kernels that split work themselves (the LSTM takes it from its binding,
 * the attention kernels read it here). A Python thread may lower it for the kernels it calls
 * itself (al_thread_budget_get, per OS thread, 0 = not set; al_pool.c): Bidirectional runs its
 * two directions side by side, one core each, so neither may take the pool's other threads. */
int scipy_openblas_get_num_threads(void);
int al_thread_budget_get(void);
int al_thread_budget_set(int n);   /* returns the previous budget, or -1 (no key could be made) */
static inline int al_blas_threads(void) {
    const int n = al_thread_budget_get();
    return n > 0 ? n : scipy_openblas_get_num_threads();
}

/*
 * The kernel path (instruction set) every kernel family runs: one process-wide choice made once
 * when attnlstm._core is imported (al_isa.c, from ATTNLSTM_ISA or else the CPU's best) and never
 * changed after, so it is configuration, not state a call can observe changing.
 *   AL_ISA_GENERIC  portable C (SSE2 on x86-64, any CPU), no fused multiply-add
 *   AL_ISA_AVX2     AVX2 + FMA
 *   AL_ISA_AVX512   AVX-512F (with its FMA)
 * The build lets the compiler fuse a * b + c (-ffp-contract=fast, setup.py) in the LSTM. Its
 * AVX2 copies are compiled for "avx2,fma" and the AVX-512 ones for "avx512f" (which includes
 * FMA), so both fuse the same operations, and the GEMM tiles use explicit FMAs in the same
 * order: the AVX2 and AVX-512 paths give the same bits (tests/test_isa_paths.py). The generic
 * path (no FMA: a separate multiply and add) agrees with them to rounding. attention.c and
 * mha.c turn contraction off: their copies give the same bits on all three paths.
 */
enum { AL_ISA_GENERIC = 0, AL_ISA_AVX2 = 1, AL_ISA_AVX512 = 2 };
int al_isa_level(void);        /* the selected path */
int al_isa_cpu_best(void);     /* the widest path this CPU (and OS) can run */
int al_isa_select(int level);  /* module import only: 0, or -1 if the CPU cannot run it */
void al_isa_cpu_flags(char *buf, size_t n);   /* the CPU's SIMD flags, space-separated */
/* The AVX2 path's one-row LSTM tile (lstm_cell_step, B = 1): 1 panel (four accumulators) or 2
 * panels (eight) per k. Fixed at import like the path: ATTNLSTM_AVX2_ROW_PANELS=1|2, else 2 on
 * AMD CPUs, 1 on others (measured in benchmarks/NOTES.md: 5-18% faster on a Zen 4 core's AVX2
 * path, 4-12% slower on an Intel Xeon's). The same bits either way. */
int al_avx2_row_panels(void);
int al_avx2_row_panels_select(int n);   /* module import only: n = 1, 2, or 0 (by vendor);
                                           0, or -1 for another n */
int al_cpu_is_amd(void);

/*
 * AL_ISA_VERSIONS_VOID(name, body, params, args): a void function `name` that runs `body` (a
 * static always_inline function with those params) compiled for the selected path: an
 * AVX-512 and an AVX2 copy where the compiler supports target attributes (each vectorised for
 * its vector unit), the portable one otherwise. Replaces GCC's target_clones, whose resolver
 * looks only at the CPU and so would ignore ATTNLSTM_ISA. Marked unused: a shared header's
 * helper (al_math.h) need not be called by every TU that includes it.
 */
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#  define AL_ISA_VERSIONS_VOID_(name, body, params, args)                                  \
    __attribute__((target("avx512f"), unused)) static void name##_avx512 params {          \
        body args;                                                                         \
    }                                                                                      \
    __attribute__((target("avx2,fma"), unused)) static void name##_avx2 params {           \
        body args;                                                                         \
    }                                                                                      \
    __attribute__((unused)) static void name params {                                      \
        switch (al_isa_level()) {                                                          \
        case AL_ISA_AVX512: name##_avx512 args; break;                                     \
        case AL_ISA_AVX2: name##_avx2 args; break;                                         \
        default: body args; break;                                                         \
        }                                                                                  \
    }
#else
#  define AL_ISA_VERSIONS_VOID_(name, body, params, args) \
    __attribute__((unused)) static void name params { body args; }
#endif
#define AL_ISA_VERSIONS_VOID(name, body, params, args) \
    AL_ISA_VERSIONS_VOID_(name, body, params, args)

#endif /* AL_COMMON_H */
