/*
 * bind_spec.h -- the binding's one front door. Each kernel declares its arguments once, as
 * data (al_arg: name, role, type, shape in legend letters), and al_bind() does the rest the
 * same way for every kernel: parses args/kwargs, converts arrays to C-contiguous copies of
 * the call's float dtype, unifies the dimensions letter by letter (one message wording:
 * "fn: `arg` must have shape (B, Tv, D) = (2, ?, 4), got (2, 3, 5)."), checks the sizes the
 * BLAS sees against its 32-bit int, allocates the outputs, releases the GIL around the
 * kernel's `run` and returns the outputs (one output by itself, several as a tuple). The
 * binding is strict (exact shapes); flexible forms (broadcasting, shared masks, optional
 * axes) live in the Python ops.
 *
 * A run function writes the kernel call once for both dtypes with AL_DISPATCH, reading
 * data pointers AL_P(i), sizes AL_N(letter) and options AL_I(i) / AL_F(i) from `c`.
 */
#ifndef AL_BIND_SPEC_H
#define AL_BIND_SPEC_H

#include "bind_common.h"

/* What an argument is to the kernel (llm.c's order: outputs, saved, inputs, weights, options). */
enum al_role {
    AL_OUT,     /* allocated by the binding and returned                                   */
    AL_SAVE,    /* allocated and returned, kept by the caller for the backward             */
    AL_SAVED,   /* a forward's saved buffer, passed back to the backward                   */
    AL_IN,      /* an input array (activations, upstream gradients, masks)                 */
    AL_W,       /* a weight array                                                          */
    AL_OPT      /* a scalar option                                                         */
};

/* Argument flags. */
#define AL_NONE 1   /* an array that may be None: the kernel gets NULL                      */
#define AL_DEF  2   /* may be omitted: arrays default to None, options to `def`             */
#define AL_ZERO 4   /* an output allocated zeroed (the kernel may skip writing it)          */
#define AL_DROP 8   /* an output left out of the result (not None) when not wanted          */

/*
 * One argument. `type`: arrays 'f' (the call's float dtype), 'b' (bool: any numeric input,
 * nonzero = true); outputs 'f', 'b' or 's' (a float scalar, returned as a Python float);
 * options 'p' (bool), 'i' (int), 'n' (Py_ssize_t), 'd' (double).
 * `shape`: comma-separated tokens [m]Letter[+c] or integers ("B,T,4H", "2K+1,HS", "" for a
 * scalar); arrays accepting two ranks list both: "B,Tq,Tv|B,NH,Tq,Tv". For an int option,
 * the letter it sets. `when` (outputs): allocated only when that argument is given (array)
 * or true (option), "!name" for the opposite, "a&b" for both; else returned as None.
 * `lo`..`hi` (options, when lo < hi): the accepted range, described by `choices` if set.
 * `pick` (arrays with two shapes "A|B"): this option true picks A, false B; an AL_NONE array
 * with a pick is then required (not None) when the option is true.
 */
typedef struct {
    const char *name;
    int role;
    char type;
    int flags;
    const char *shape;
    const char *when;
    double def, lo, hi;
    const char *choices;
    const char *pick;
} al_arg;

#define AL_MAXARGS 48   /* table entries (outputs included) */
#define AL_MAXPY 32     /* Python arguments */
#define AL_MAXLET 16

/* The converted call, handed to the kernel's run function. */
typedef struct {
    int typenum;                 /* NPY_FLOAT32 or NPY_FLOAT64                          */
    void *p[AL_MAXARGS];         /* data of each array argument, NULL for None           */
    int ndim[AL_MAXARGS];        /* rank of each array argument                          */
    long long iv[AL_MAXARGS];    /* 'p', 'i', 'n' options                                */
    double dv[AL_MAXARGS];       /* 'd' options                                          */
    npy_intp dim[AL_MAXLET];     /* the size of each letter, in the spec's letter order  */
} al_call;

typedef struct {
    const char *name;            /* the Python name, used in every message               */
    const al_arg *args;
    int nargs;
    const char *letters;         /* "B,Tq,Tv,D,Dv": the order of the file's letter enum  */
    const char *dtype_from;      /* the argument that fixes the float dtype              */
    const char *order;           /* arrays converted first, in this order (else table)   */
    const char *blas;            /* sizes the BLAS sees, at most its int: "Tq,B*Tv"      */
    const char *fits;            /* buffer sizes that must fit npy_intp: "Tq*Tv*8"       */
    const char *positive;        /* letters that must be >= 1: "NH,HS"                   */
    int (*run)(const al_call *c);   /* calls the kernel; runs without the GIL            */
    npy_intp chunk;              /* if set: run over slices of B of about this many      */
                                 /* elements, checking for signals (Ctrl-C) in between   */
} al_spec;

/* The whole call: NULL with an exception set on any failure. */
PyObject *al_bind(const al_spec *spec, PyObject *args, PyObject *kwds);

/* The number of entries of a spec's table (check it against the file's enum). */
#define AL_COUNT(table) ((int)(sizeof(table) / sizeof((table)[0])))

/* The Python entry point of a spec. */
#define AL_ENTRY(fname, spec)                                                                  \
    static PyObject *fname(PyObject *self, PyObject *args, PyObject *kwds) {                 \
        (void)self;                                                                            \
        return al_bind(&(spec), args, kwds);                                                   \
    }

#define AL_METHOD(name, fname, doc) \
    {name, (PyCFunction)(void (*)(void))fname, METH_VARARGS | METH_KEYWORDS, doc}

/* Inside a run function (`c` in scope). */
#define AL_P(i) (c->p[i])
#define AL_N(l) ((size_t)c->dim[l])
#define AL_I(i) ((int)c->iv[i])
#define AL_F(i) (c->dv[i])

/* The recurrent kernels' shared options: an activation code, and the thread budget from a
 * `threads` option (0 = the count of set_num_threads, used when the call is large enough;
 * n > 0 = exactly n where the shapes allow, for tests) as the kernels' (nthreads, forced). */
#define AL_ACT_ARG(name, code) {name, AL_OPT, 'i', AL_DEF, "", NULL, code, 0, AL_ACT_COUNT - 1, \
                                "an activation code (attnlstm._core.ACT_*)"}
#define AL_THREADS(i) (AL_I(i) > 0 ? AL_I(i) : al_blas_threads()), AL_I(i) > 0

/* One kernel call written once, compiled for float32 and float64. */
#define AL_DISPATCH(kernel, ...)                                                               \
    (c->typenum == NPY_FLOAT32 ? kernel##_f32(__VA_ARGS__) : kernel##_f64(__VA_ARGS__))

#endif /* AL_BIND_SPEC_H */
