/*
 * al_real.h -- the type template used to compile one kernel source for float32 and float64.
 *
 * A kernel template file (e.g. lstm_impl.h) is written once in terms of `real`, AL_FN(name),
 * AL_GEMM and the libm names AL_EXP, AL_EXPM1, AL_TANH, AL_SQRT, AL_FABS, AL_LOG, and included twice by its .c file:
 *
 *     #define AL_REAL_F32
 *     #include "al_real.h"
 *     #include "lstm_impl.h"
 *     #include "al_real_undef.h"
 *     #define AL_REAL_F64
 *     ...
 *
 * which defines al_<name>_f32 and al_<name>_f64 from one source of truth.
 */
#include <math.h>
#include "al_common.h"

#if defined(AL_REAL_F32)
#  define real float
#  define AL_FN(name) al_##name##_f32
#  define AL_SFN(name) name##_f32
#  define AL_GEMM al_cblas_sgemm
#  define AL_EXP expf
#  define AL_EXPM1 expm1f
#  define AL_TANH tanhf
#  define AL_SQRT sqrtf
#  define AL_FABS fabsf
#  define AL_LOG logf
#elif defined(AL_REAL_F64)
#  define real double
#  define AL_FN(name) al_##name##_f64
#  define AL_SFN(name) name##_f64
#  define AL_GEMM al_cblas_dgemm
#  define AL_EXP exp
#  define AL_EXPM1 expm1
#  define AL_TANH tanh
#  define AL_SQRT sqrt
#  define AL_FABS fabs
#  define AL_LOG log
#else
#  error "define AL_REAL_F32 or AL_REAL_F64 before including al_real.h"
#endif
