/* al_real_undef.h -- ends one instantiation of the type template begun by al_real.h. */
#undef real
#undef AL_FN
#undef AL_SFN
#undef AL_GEMM
#undef AL_EXP
#undef AL_EXPM1
#undef AL_TANH
#undef AL_SQRT
#undef AL_FABS
#undef AL_LOG
#undef AL_REAL_F32
#undef AL_REAL_F64
