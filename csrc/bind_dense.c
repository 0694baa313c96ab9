/*
 * bind_dense.c -- the dense-product kernel (dense_impl.h) declared to the front door
 * (bind_spec.h): matmul and its two transposed forms, for the Dense layer. Legend (GEMM): M
 * rows, N columns, K the summed axis.
 */
#include "bind_spec.h"
#include "al_dense.h"

enum { L_M, L_N, L_K };
#define SHAPES "M,N,K", "M,N,K", "M*K,K*N,M*N"

enum { MM_A, MM_B, MM_C, MM_COUNT };
#define MATMUL_RUN(fn, ta, tb)                                                                 \
    static int fn(const al_call *c) {                                                          \
        return AL_DISPATCH(al_matmul, AL_P(MM_C), AL_P(MM_A), AL_P(MM_B), AL_N(L_M), AL_N(L_N), \
                           AL_N(L_K), ta, tb);                                                 \
    }
MATMUL_RUN(matmul_run, 0, 0)
MATMUL_RUN(matmul_tn_run, 1, 0)
MATMUL_RUN(matmul_nt_run, 0, 1)
#undef MATMUL_RUN

al_spec al_dense_specs[] = {
    {"matmul", MM_COUNT, matmul_run, "a:M,K b:K,N -> c:M,N",
     "C = a b on attnlstm's OpenBLAS (the Dense layer's forward product).", SHAPES},
    {"matmul_tn", MM_COUNT, matmul_tn_run, "a:K,M b:K,N -> c:M,N",
     "C = a^T b on attnlstm's OpenBLAS (the Dense layer's kernel gradient).", SHAPES},
    {"matmul_nt", MM_COUNT, matmul_nt_run, "a:M,K b:N,K -> c:M,N",
     "C = a b^T on attnlstm's OpenBLAS (the Dense layer's input gradient).", SHAPES},
    {NULL},
};
