/*
 * bind_spec.h -- the binding's one front door. Each kernel declares its Python signature once,
 * as one string (al_spec.sig), and al_bind() does the rest the same way for every kernel:
 * parses args/kwargs, converts arrays to C-contiguous copies of the call's float dtype,
 * unifies the dimensions letter by letter (one message wording: "fn: `arg` must have shape
 * (B, Tv, D) = (2, ?, 4), got (2, 3, 5)."), checks the sizes the BLAS sees against its 32-bit
 * int, allocates the outputs, releases the GIL around the kernel's `run` and returns the
 * outputs (one output by itself, several as a tuple). The binding is strict (exact shapes);
 * flexible forms (broadcasting, shared masks, optional axes) live in the Python ops.
 *
 * A run function writes the kernel call once for both dtypes with AL_DISPATCH, reading
 * data pointers AL_P(i), sizes AL_N(letter) and options AL_I(i) / AL_F(i) from `c`, in the
 * kernels' one argument order (al_common.h); i counts the signature's arguments, outputs last.
 */
#ifndef AL_BIND_SPEC_H
#define AL_BIND_SPEC_H

#include "bind_common.h"

/*
 * The signature, parsed once at import (al_add_specs): the arguments in Python order, then
 * "->" and the outputs in return order, separated by spaces. The docstring's first line,
 * "name(args) -> (outputs)", is generated from it.
 *   array   name[?|~]:SHAPE[:bool][:zeros][:drop][:if=COND][:pick=OPT]
 *           ?  optional (default None: the kernel gets NULL);  ~  required, may be None
 *           SHAPE  comma-separated tokens [m]Letter[+c] or integers ("B,T,4H", "2K+1,HS";
 *                  "" for a scalar output, returned as a Python float); two ranks "A|B"
 *           bool  any numeric array, nonzero = true (uint8 for the kernel); else the call's
 *                 float dtype, which `dtype_from` fixes (default: the first argument)
 *           zeros  an output allocated zeroed;  if=COND  an output allocated only when COND
 *                  holds (else None): an argument given (array) or true (option), "!a" for
 *                  the opposite, "a&b" for both;  drop  left out (not None) when not wanted
 *           pick=OPT  with SHAPE "A|B": OPT true picks A, false B (and makes a ~ array needed)
 *   option  name=DEFAULT[:LETTER][:lo..hi][:{zero,one,...}][:'what it must be']
 *           DEFAULT True/False: a bool; with a '.': a real; else an int, range-checked with
 *           lo..hi or the choices (numbered from 0; they also word the message); LETTER: the
 *           int is that letter's size.
 */
enum al_role { AL_IN, AL_OUT, AL_OPT };

#define AL_NONE 1   /* an array that may be None: the kernel gets NULL            */
#define AL_DEF  2   /* may be omitted: arrays default to None, options to `def`   */
#define AL_ZERO 4   /* an output allocated zeroed (the kernel may skip writing it) */
#define AL_DROP 8   /* an output left out of the result (not None) when not wanted */

/* One parsed argument: type 'f' float, 'b' bool, 's' scalar output; options 'p', 'i', 'd'. */
typedef struct {
    const char *name, *shape, *when, *choices, *pick, *deftext;
    int role, flags;
    char type;
    double def, lo, hi;
} al_arg;

#define AL_MAXARGS 48   /* arguments and outputs */
#define AL_MAXPY 32     /* Python arguments */
#define AL_MAXLET 16

/* The converted call, handed to the kernel's run function. */
typedef struct {
    int typenum;                 /* NPY_FLOAT32 or NPY_FLOAT64                          */
    void *p[AL_MAXARGS];         /* data of each array argument, NULL for None           */
    int ndim[AL_MAXARGS];        /* rank of each array argument                          */
    long long iv[AL_MAXARGS];    /* 'p', 'i' options                                     */
    double dv[AL_MAXARGS];       /* 'd' options                                          */
    npy_intp dim[AL_MAXLET];     /* the size of each letter, in the spec's letter order  */
} al_call;

typedef struct {
    const char *name;            /* the Python name, used in every message               */
    int nargs;                   /* the count of the file's enum, checked at import      */
    int (*run)(const al_call *c);   /* calls the kernel; runs without the GIL            */
    const char *sig;             /* the signature (above)                                */
    const char *doc;             /* the docstring after its generated first line         */
    const char *letters;         /* "B,Tq,Tv,D,Dv": the order of the file's letter enum  */
    const char *blas;            /* sizes the BLAS sees, at most its int: "Tq,B*Tv"      */
    const char *fits;            /* buffer sizes that must fit npy_intp: "Tq*Tv*8"       */
    const char *order;           /* arrays converted first, in this order (else Python's) */
    const char *dtype_from;      /* the argument that fixes the float dtype, else the first */
    const char *positive;        /* letters that must be >= 1: "NH,HS"                   */
    npy_intp chunk;              /* if set: run over slices of B of about this many      */
                                 /* elements, checking for signals (Ctrl-C) in between   */
    /* filled at import by al_add_specs */
    al_arg args[AL_MAXARGS];
    char text[1536];             /* the signature's pieces and generated messages        */
    char docbuf[2560];
    PyMethodDef def;
} al_spec;

/* Each binding file's kernels, ending with {NULL}. */
extern al_spec al_lstm_specs[], al_gru_specs[], al_attention_specs[], al_mha_specs[],
    al_vae_specs[], al_dense_specs[];

/* Parses the signature of each spec in `specs` and adds its function to module m: 0, or -1
 * with an exception set (a malformed signature is a SystemError at import). */
int al_add_specs(PyObject *m, al_spec *specs);

/* Inside a run function (`c` in scope). */
#define AL_P(i) (c->p[i])
#define AL_N(l) ((size_t)c->dim[l])
#define AL_I(i) ((int)c->iv[i])
#define AL_F(i) (c->dv[i])

/* The recurrent kernels' shared options: the activation codes, the kernel path `impl`, and the
 * thread budget from `threads` (0 = the count of set_num_threads, used when the call is large
 * enough; n > 0 = exactly n where the shapes allow, for tests) as the kernels' (nthreads,
 * forced). */
_Static_assert(AL_ACT_COUNT == 5, "AL_RNN_ACTS: the activation codes are 0..4");
#define AL_ACT_CODE ":0..4:'an activation code (attnlstm._core.ACT_*)' "
#define AL_RNN_ACTS "activation=1" AL_ACT_CODE "recurrent_activation=2" AL_ACT_CODE
#define AL_IMPL(one) "impl=0:{automatic," one ",AVX2,AVX-512} "
#define AL_THREADS_ARG(max) \
    "threads=0:0.." #max ":'0 (automatic: set_num_threads) or a thread count from 1 to " #max "' "
#define AL_THREADS(i) (AL_I(i) > 0 ? AL_I(i) : al_blas_threads()), AL_I(i) > 0

/* One kernel call written once, compiled for float32 and float64. */
#define AL_DISPATCH(kernel, ...)                                                               \
    (c->typenum == NPY_FLOAT32 ? kernel##_f32(__VA_ARGS__) : kernel##_f64(__VA_ARGS__))

#endif /* AL_BIND_SPEC_H */
