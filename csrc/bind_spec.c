/*
 * bind_spec.c -- al_bind(), the front door every kernel binding goes through, and the parser of
 * the signatures that declare the kernels to it (bind_spec.h).
 * Letters of the legend are unified across arguments: the first array (in conversion order)
 * that carries a letter fixes its size, and every later use must agree.
 */
#include "bind_spec.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#define AL_MAXDIM 8
#define AL_UNKNOWN (-1)
#define AL_HUGE (-2)   /* a token whose value overflows npy_intp */

typedef struct {
    int n;
    char name[AL_MAXLET][8];
    npy_intp val[AL_MAXLET];   /* AL_UNKNOWN until an argument fixes it */
    int from[AL_MAXLET];       /* the argument that fixed it           */
    int axis[AL_MAXLET];       /* its axis there, -1 for an option     */
} al_letters;

/* One shape token: m * letter + c, or the constant m when letter < 0; text for messages. */
typedef struct {
    npy_intp m, c;
    int letter;
    const char *text;
    int len;
} al_tok;

static int al_spec_bug(const char *fn, const char *what, const char *text) {
    PyErr_Format(PyExc_SystemError, "%s: binding spec error: %s '%s'.", fn, what, text);
    return -1;
}

/* The next item of the `sep`-separated list at *p (start and length), advancing past it. */
static int al_next(const char **p, const char *sep, const char **item, int *len) {
    if (*p == NULL || **p == '\0') return 0;
    *item = *p;
    *len = (int)strcspn(*p, sep);
    *p += *len;
    if (**p != '\0') (*p)++;
    return 1;
}

static int al_letter_index(const al_letters *L, const char *name, int len) {
    int k;
    for (k = 0; k < L->n; k++) {
        if ((int)strlen(L->name[k]) == len && strncmp(L->name[k], name, (size_t)len) == 0)
            return k;
    }
    return -1;
}

static int al_letters_parse(al_letters *L, const char *fn, const char *text) {
    const char *p = text, *item;
    int len;
    for (L->n = 0; al_next(&p, ",", &item, &len); L->n++) {
        if (L->n == AL_MAXLET || len == 0 || len >= (int)sizeof L->name[0])
            return al_spec_bug(fn, "letters", text);
        memcpy(L->name[L->n], item, (size_t)len);
        L->name[L->n][len] = '\0';
        L->val[L->n] = AL_UNKNOWN;
        L->from[L->n] = L->axis[L->n] = -1;
    }
    return 0;
}

/* Parses one token "[m]Letter[+c]" or "m" of length len. */
static int al_tok_parse(const al_letters *L, const char *fn, const char *s, int len, al_tok *t) {
    int i = 0, start;
    t->m = 0; t->c = 0; t->letter = -1; t->text = s; t->len = len;
    while (i < len && s[i] >= '0' && s[i] <= '9') t->m = t->m * 10 + (s[i++] - '0');
    if (i == len) return i > 0 ? 0 : al_spec_bug(fn, "empty shape token in", s);
    if (i == 0) t->m = 1;
    start = i;
    while (i < len && ((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z'))) i++;
    if ((t->letter = al_letter_index(L, s + start, i - start)) < 0)
        return al_spec_bug(fn, "unknown letter in", s);
    if (i < len && s[i] == '+') {
        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++) t->c = t->c * 10 + (s[i] - '0');
    }
    return i == len ? 0 : al_spec_bug(fn, "bad shape token", s);
}

/* Parses the tokens of one list ("B,T,4H" up to a '|', or "B*Tq") into toks: count or -1. */
static int al_tokens(const al_letters *L, const char *fn, const char *s, int slen,
                     const char *sep, al_tok *toks) {
    const char *p = s, *item;
    int n = 0, len;
    char buf[128];
    if (slen >= (int)sizeof buf) return al_spec_bug(fn, "list too long", s);
    memcpy(buf, s, (size_t)slen);
    buf[slen] = '\0';
    for (p = buf; al_next(&p, sep, &item, &len); n++) {
        if (n == AL_MAXDIM) return al_spec_bug(fn, "too many axes in", s);
        if (al_tok_parse(L, fn, s + (item - buf), len, &toks[n]) < 0) return -1;
    }
    return n;
}

static npy_intp al_tok_value(const al_letters *L, const al_tok *t) {
    npy_intp v;
    if (t->letter < 0) return t->m;
    v = L->val[t->letter];
    if (v < 0) return AL_UNKNOWN;
    if (v > (NPY_MAX_INTP - t->c) / t->m) return AL_HUGE;
    return t->m * v + t->c;
}

/* Appends to buf (of size size, used so far *used). */
static void al_put(char *buf, size_t size, size_t *used, const char *fmt, ...) {
    va_list ap;
    int n;
    if (*used >= size) return;
    va_start(ap, fmt);
    n = vsnprintf(buf + *used, size - *used, fmt, ap);
    va_end(ap);
    if (n > 0) *used += (size_t)n;
}

/* "(B, Tv, D)" from the tokens, or "(2, ?, 4)" from their values when L is set. */
static void al_put_tuple(char *buf, size_t size, size_t *used, const al_letters *L,
                         const al_tok *toks, int n) {
    int k;
    al_put(buf, size, used, "(");
    for (k = 0; k < n; k++) {
        npy_intp v = L ? al_tok_value(L, &toks[k]) : 0;
        if (!L) al_put(buf, size, used, "%s%.*s", k ? ", " : "", toks[k].len, toks[k].text);
        else if (v < 0) al_put(buf, size, used, "%s?", k ? ", " : "");
        else al_put(buf, size, used, "%s%lld", k ? ", " : "", (long long)v);
    }
    al_put(buf, size, used, n == 1 ? ",)" : ")");
}

static void al_put_dims(char *buf, size_t size, size_t *used, PyArrayObject *a) {
    int k, nd = PyArray_NDIM(a);
    al_put(buf, size, used, "(");
    for (k = 0; k < nd; k++)
        al_put(buf, size, used, "%s%lld", k ? ", " : "", (long long)PyArray_DIM(a, k));
    al_put(buf, size, used, nd == 1 ? ",)" : ")");
}

/*
 * The one shape message: "fn: `arg` must have shape (B, Tv, D) = (2, ?, 4), got (2, 3, 5)."
 * (each alternative rank, joined by " or "); with `positive`, the letters that must be >= 1.
 */
static int al_shape_error(const al_spec *s, const al_letters *L, int i, PyArrayObject *a,
                          const char *positive, int alt) {
    al_tok toks[AL_MAXDIM];
    char msg[1024];
    size_t used = 0;
    const char *p = s->args[i].shape, *item;
    int n, len, k = 0, j;
    al_put(msg, sizeof msg, &used, "%s: `%s` must have shape ", s->name, s->args[i].name);
    for (j = 0; al_next(&p, "|", &item, &len); j++) {
        if (alt >= 0 && j != alt) continue;
        if ((n = al_tokens(L, s->name, item, len, ",", toks)) < 0) return -1;
        if (k++) al_put(msg, sizeof msg, &used, " or ");
        al_put_tuple(msg, sizeof msg, &used, NULL, toks, n);
        if (positive) continue;
        al_put(msg, sizeof msg, &used, " = ");
        al_put_tuple(msg, sizeof msg, &used, L, toks, n);
    }
    for (p = positive, k = 0; al_next(&p, ",", &item, &len);) {   /* the letters at fault */
        int l = al_letter_index(L, item, len);
        if (l >= 0 && L->from[l] == i && L->val[l] < 1)
            al_put(msg, sizeof msg, &used, "%s%.*s >= 1", k++ ? " and " : " with ", len, item);
    }
    al_put(msg, sizeof msg, &used, ", got ");
    al_put_dims(msg, sizeof msg, &used, a);
    al_put(msg, sizeof msg, &used, ".");
    PyErr_SetString(PyExc_ValueError, msg);
    return -1;
}

static int al_find(const al_spec *s, const char *name, int len) {
    int i;
    for (i = 0; i < s->nargs; i++) {
        if ((int)strlen(s->args[i].name) == len && strncmp(s->args[i].name, name, (size_t)len) == 0)
            return i;
    }
    return -1;
}

/* The alternative of argument i's shape that `pick` selects (its option true: the first,
 * false: the second), else -1. */
static int al_picked(const al_spec *s, const al_call *c, int i) {
    const char *pick = s->args[i].pick;
    int j = pick ? al_find(s, pick, (int)strlen(pick)) : -1;
    return j < 0 ? -1 : c->iv[j] ? 0 : 1;
}

/* Checks array i against its shape (the alternative of its rank, or the one picked), fixing
 * the letters it is the first to carry. */
static int al_unify(const al_spec *s, const al_call *c, al_letters *L, int i, PyArrayObject *a) {
    al_tok toks[AL_MAXDIM];
    const char *p = s->args[i].shape, *item;
    int nd = PyArray_NDIM(a), n = -1, len, k, found = 0, alt = al_picked(s, c, i), j;
    const npy_intp *d = PyArray_DIMS(a);
    char fixed[AL_MAXLET] = {0};
    for (j = 0; (alt < 0 ? n != nd : j <= alt) && al_next(&p, "|", &item, &len); j++) {
        if ((n = al_tokens(L, s->name, item, len, ",", toks)) < 0) return -1;
    }
    if (n != nd || (alt >= 0 && j != alt + 1)) return al_shape_error(s, L, i, a, NULL, alt);
    for (k = 0; k < n; k++) {   /* against the letters known before this argument */
        npy_intp v = al_tok_value(L, &toks[k]);
        if (v == AL_HUGE || (v >= 0 && v != d[k])) return al_shape_error(s, L, i, a, NULL, alt);
    }
    for (k = 0; k < n; k++) {   /* fix the new letters, and check repeats within the array */
        const al_tok *t = &toks[k];
        npy_intp v = al_tok_value(L, t);
        if (v == AL_UNKNOWN) {
            if (d[k] < t->c || (d[k] - t->c) % t->m != 0)
                return al_shape_error(s, L, i, a, NULL, alt);
            L->val[t->letter] = (d[k] - t->c) / t->m;
            L->from[t->letter] = i;
            L->axis[t->letter] = k;
            fixed[t->letter] = 1;
        } else if (v != d[k]) {
            return al_shape_error(s, L, i, a, NULL, alt);
        }
    }
    for (p = s->positive; al_next(&p, ",", &item, &len);) {   /* checked where they are fixed */
        int l = al_letter_index(L, item, len);
        found |= l >= 0 && fixed[l] && L->val[l] < 1;
    }
    return found ? al_shape_error(s, L, i, a, s->positive, alt) : 0;
}

/* Checks each product of `list` ("Tq,B*Tv"): at most the BLAS int when blas, else no overflow;
 * the message names the product, its value and where each letter comes from. */
static int al_check_products(const al_spec *s, const al_letters *L, const char *list, int blas) {
    const char *p = list, *item;
    int len;
    while (al_next(&p, ",", &item, &len)) {
        al_tok toks[AL_MAXDIM];
        npy_intp prod = 1;
        int n, known = 1, over = 0, k, j, first;
        const char *src;
        char msg[1024];
        size_t used = 0;
        if ((n = al_tokens(L, s->name, item, len, "*", toks)) < 0) return -1;
        for (k = 0; k < n; k++) {
            npy_intp v = al_tok_value(L, &toks[k]);
            if (v == AL_UNKNOWN) known = 0;
            else if (v == AL_HUGE || (v != 0 && prod > NPY_MAX_INTP / v)) over = 1;
            else prod *= v;
        }
        if (!known || !(over || (blas && (long long)prod > AL_BLAS_INT_MAX))) continue;
        if (over) {
            al_put(msg, sizeof msg, &used, "%s: the size %.*s overflows", s->name, len, item);
        } else {
            al_put(msg, sizeof msg, &used, "%s: %.*s = %lld is too large for the 32-bit BLAS "
                   "(at most %lld)", s->name, len, item, (long long)prod,
                   (long long)AL_BLAS_INT_MAX);
        }
        for (k = 0, first = 1; k < n; k++) {   /* "; B = 1048576 is axis 0 of `query`, ..." */
            int l = toks[k].letter, dup = 0;
            if (l < 0 || L->from[l] < 0) continue;
            for (j = 0; j < k; j++) dup |= toks[j].letter == l;
            if (dup) continue;
            al_put(msg, sizeof msg, &used, "%s%s", first ? "; " : ", ", L->name[l]);
            first = 0;
            if (n > 1) al_put(msg, sizeof msg, &used, " = %lld", (long long)L->val[l]);
            src = s->args[L->from[l]].name;
            if (L->axis[l] < 0) al_put(msg, sizeof msg, &used, " is `%s`", src);
            else al_put(msg, sizeof msg, &used, " is axis %d of `%s`", L->axis[l], src);
        }
        al_put(msg, sizeof msg, &used, ".");
        PyErr_SetString(PyExc_ValueError, msg);
        return -1;
    }
    return 0;
}


/* Converts option i (NULL = omitted) into c->iv / c->dv; sets its letter. */
static int al_option(const al_spec *s, al_letters *L, al_call *c, int i, PyObject *x) {
    const al_arg *a = &s->args[i];
    long long iv = (long long)a->def;
    double dv = a->def;
    if (x != NULL && a->type == 'p') {
        if ((iv = PyObject_IsTrue(x)) < 0) return -1;
    } else if (x != NULL && a->type == 'd') {
        dv = PyFloat_AsDouble(x);
        if (dv == -1.0 && PyErr_Occurred()) goto bad_type;
    } else if (x != NULL) {   /* any int-like, however large: out of range is a ValueError */
        PyObject *idx = PyNumber_Index(x);
        int overflow = 0;
        if (idx == NULL) goto bad_type;
        iv = PyLong_AsLongLongAndOverflow(idx, &overflow);
        Py_DECREF(idx);
        if (iv == -1 && PyErr_Occurred()) return -1;
        if (overflow) iv = overflow > 0 ? LLONG_MAX : LLONG_MIN;
    }
    if (a->type != 'd') dv = (double)iv;
    if ((a->lo < a->hi && !(dv >= a->lo && dv <= a->hi)) ||
        (a->type == 'i' && (iv < INT_MIN || iv > INT_MAX))) {
        if (a->choices) {
            PyErr_Format(PyExc_ValueError, "%s: `%s` must be %s, got %R.", s->name, a->name,
                         a->choices, x);
        } else {
            PyErr_Format(PyExc_ValueError, "%s: `%s` must be in [%lld, %lld], got %R.", s->name,
                         a->name, a->lo < a->hi ? (long long)a->lo : (long long)INT_MIN,
                         a->lo < a->hi ? (long long)a->hi : (long long)INT_MAX, x);
        }
        return -1;
    }
    c->iv[i] = iv;
    c->dv[i] = dv;
    if (a->shape && *a->shape) {   /* the letter it sets (al_spec_check: it exists) */
        int l = al_letter_index(L, a->shape, (int)strlen(a->shape));
        L->val[l] = (npy_intp)iv;
        L->from[l] = i;
        L->axis[l] = -1;
    }
    return 0;
bad_type:
    if (!PyErr_ExceptionMatches(PyExc_TypeError)) return -1;
    PyErr_Clear();
    PyErr_Format(PyExc_TypeError, "%s: `%s` must be %s, got %.200s.", s->name, a->name,
                 a->type == 'd' ? "a real number" : "an integer", Py_TYPE(x)->tp_name);
    return -1;
}

static int al_is_output(const al_arg *a) { return a->role == AL_OUT; }

/* Phase 2: a new C-contiguous array of the call's dtype (or bool) for argument i. */
static PyArrayObject *al_convert(const al_arg *a, const al_call *c, PyObject *x) {
    return a->type == 'b'
        ? (PyArrayObject *)PyArray_FROM_OTF(x, NPY_BOOL, NPY_ARRAY_IN_ARRAY | NPY_ARRAY_FORCECAST)
        : (PyArrayObject *)PyArray_FROM_OTF(x, c->typenum, NPY_ARRAY_IN_ARRAY);
}

/* Phase 1 for array argument i: its dtype, and its shape against the letters. An ndarray is
 * not copied yet (a huge zero-stride view is refused by its size before any copy); another
 * object is converted now, to learn its shape. None is skipped where allowed. */
static int al_check_arg(const al_spec *s, al_letters *L, al_call *c, PyArrayObject **arr,
                        PyObject **obj, int i) {
    const al_arg *a = &s->args[i];
    PyObject *x = obj[i];
    if ((x == NULL || x == Py_None) && (a->flags & (AL_NONE | AL_DEF))) {
        obj[i] = NULL;
        if (!(a->flags & AL_NONE) || al_picked(s, c, i) != 0) return 0;
        PyErr_Format(PyExc_ValueError, "%s: `%s` is required with `%s`, got None.", s->name,
                     a->name, a->pick);
        return -1;
    }
    if (a->type != 'b' && PyArray_Check(x) && PyArray_TYPE((PyArrayObject *)x) != c->typenum) {
        PyErr_Format(PyExc_TypeError, "%s: `%s` must have dtype %s like the inputs, got %R.",
                     s->name, a->name, c->typenum == NPY_FLOAT32 ? "float32" : "float64",
                     (PyObject *)PyArray_DESCR((PyArrayObject *)x));
        return -1;
    }
    if (!PyArray_Check(x) && (arr[i] = al_convert(a, c, x)) == NULL) return -1;
    return al_unify(s, c, L, i, arr[i] ? arr[i] : (PyArrayObject *)x);
}


/* A new C-contiguous output array, zeroed or not. From AL_ALIGN_MIN bytes its data starts on a
 * 64-byte boundary: a view into a byte buffer AL_ALIGN bytes larger (NumPy's own allocation,
 * 16-byte aligned, would make every vector store of a row that starts 16 bytes into a cache
 * line straddle two lines). Small outputs stay plain arrays. */
#define AL_ALIGN 64
#define AL_ALIGN_MIN ((npy_intp)1 << 16)
static PyArrayObject *al_new_output(int n, npy_intp *dims, int typenum, int zero) {
    npy_intp count = 1, nbytes, off;
    PyArray_Descr *descr;
    PyArrayObject *buf, *view;
    int k;
    descr = PyArray_DescrFromType(typenum);
    if (descr == NULL) return NULL;
    /* count -1 on overflow (at most 8-byte elements): NumPy's own allocation then reports it */
    for (k = 0; k < n && count >= 0; k++)
        count = dims[k] != 0 && count > (NPY_MAX_INTP - AL_ALIGN) / 8 / dims[k] ? -1
                                                                              : count * dims[k];
    nbytes = count < 0 ? -1 : count * (npy_intp)PyDataType_ELSIZE(descr);
    if (nbytes < AL_ALIGN_MIN) {
        Py_DECREF(descr);
        return (PyArrayObject *)(zero ? PyArray_ZEROS(n, dims, typenum, 0)
                                      : PyArray_EMPTY(n, dims, typenum, 0));
    }
    {
        npy_intp bdim = nbytes + AL_ALIGN;
        buf = (PyArrayObject *)(zero ? PyArray_ZEROS(1, &bdim, NPY_UINT8, 0)
                                     : PyArray_EMPTY(1, &bdim, NPY_UINT8, 0));
    }
    if (buf == NULL) {
        Py_DECREF(descr);
        return NULL;
    }
    off = (npy_intp)((AL_ALIGN - ((uintptr_t)PyArray_DATA(buf) % AL_ALIGN)) % AL_ALIGN);
    /* steals descr */
    view = (PyArrayObject *)PyArray_NewFromDescr(&PyArray_Type, descr, n, dims, NULL,
                                                 (char *)PyArray_DATA(buf) + off,
                                                 NPY_ARRAY_CARRAY, NULL);
    if (view == NULL) {
        Py_DECREF(buf);
        return NULL;
    }
    if (PyArray_SetBaseObject(view, (PyObject *)buf) < 0) {   /* steals buf */
        Py_DECREF(view);
        return NULL;
    }
    return view;
}

/* Allocates output i unless its `when` says otherwise (then it stays NULL). */
static int al_output(const al_spec *s, const al_letters *L, al_call *c, PyArrayObject **arr,
                     int i) {
    const al_arg *a = &s->args[i];
    al_tok toks[AL_MAXDIM];
    npy_intp dims[AL_MAXDIM];
    int n, k, t = a->type == 'b' ? NPY_BOOL : c->typenum;
    {   /* every condition of `when` ("a&!b") must hold */
        const char *p = a->when, *item;
        int len;
        while (al_next(&p, "&", &item, &len)) {
            int neg = item[0] == '!', j = al_find(s, item + neg, len - neg);
            if ((s->args[j].role == AL_OPT ? c->iv[j] != 0 : arr[j] != NULL) == neg) return 0;
        }
    }
    {   /* its shape, or the alternative `pick` selects */
        const char *p = a->shape, *item;
        int len = 0, alt = al_picked(s, c, i), j;
        for (j = 0; j <= (alt < 0 ? 0 : alt) && al_next(&p, "|", &item, &len); j++) {}
        if (j == 0) item = "";
        if ((n = al_tokens(L, s->name, item, len, ",", toks)) < 0) return -1;
    }
    for (k = 0; k < n; k++) {
        if ((dims[k] = al_tok_value(L, &toks[k])) < 0)
            return al_spec_bug(s->name, "size of", a->name);
    }
    arr[i] = al_new_output(n, dims, t, (a->flags & AL_ZERO) || a->type == 's');
    if (arr[i] == NULL) return -1;
    c->p[i] = PyArray_DATA(arr[i]);
    c->ndim[i] = n;
    return 0;
}

/*
 * Runs the kernel without the GIL. With s->chunk, over slices of the first letter (B) of about
 * s->chunk elements each, taking the GIL back between slices to check for signals (Ctrl-C).
 */
static int al_run(const al_spec *s, const al_letters *L, al_call *c, PyArrayObject **arr) {
    npy_intp B = c->dim[0], rows = B, b0, per_row = 1, stride[AL_MAXARGS] = {0};
    char *base[AL_MAXARGS];
    int i, status = AL_OK, blen = (int)strlen(L->name[0]);
    for (i = 0; i < s->nargs; i++) {
        const char *sh = s->args[i].shape;
        base[i] = (char *)c->p[i];
        if (s->chunk && arr[i] != NULL && PyArray_NDIM(arr[i]) > 0 && B > 0 &&
            strncmp(sh, L->name[0], (size_t)blen) == 0 && strchr(",|", sh[blen]) /* or '\0' */) {
            stride[i] = PyArray_STRIDE(arr[i], 0);
            if (PyArray_SIZE(arr[i]) / B > per_row) per_row = PyArray_SIZE(arr[i]) / B;
        }
    }
    if (s->chunk) {
        rows = s->chunk / per_row > 1 ? s->chunk / per_row : 1;
        if (B == 0) return 0;
    }
    for (b0 = 0; b0 == 0 || b0 < B; b0 += rows) {
        if (b0 > 0 && PyErr_CheckSignals() < 0) return -1;
        c->dim[0] = B - b0 < rows ? B - b0 : rows;
        for (i = 0; i < s->nargs; i++) {
            if (stride[i]) c->p[i] = base[i] + b0 * stride[i];
        }
        Py_BEGIN_ALLOW_THREADS
        status = s->run(c);
        Py_END_ALLOW_THREADS
        if (status != AL_OK) {
            al_kernel_error(s->name, status);
            return -1;
        }
        if (!s->chunk) break;
    }
    return 0;
}

static PyObject *al_bind(const al_spec *s, PyObject *args, PyObject *kwds) {
    const char *fn = s->name, *p, *item;
    char *kw[AL_MAXPY + 1];
    char fmt[AL_MAXPY + 64];
    int pyidx[AL_MAXPY];
    PyObject *o[AL_MAXPY] = {NULL}, *obj[AL_MAXARGS] = {NULL};
    PyArrayObject *arr[AL_MAXARGS] = {NULL};
    PyObject *res = NULL, *items[AL_MAXARGS];
    al_call c;
    al_letters L;
    int np = 0, nf = 0, optional = 0, nout = 0, i, k, len, seq[AL_MAXARGS], nseq = 0;
    char done_[AL_MAXARGS] = {0};

    memset(&c, 0, sizeof c);
    if (al_letters_parse(&L, fn, s->letters) < 0) return NULL;

    /* Parse: the non-output arguments, in table order, are the Python signature. */
    for (i = 0; i < s->nargs; i++) {
        if (al_is_output(&s->args[i])) continue;
        if ((s->args[i].flags & AL_DEF) && !optional) {   /* al_spec_check: none after */
            fmt[nf++] = '|';
            optional = 1;
        }
        fmt[nf++] = 'O';
        kw[np] = (char *)s->args[i].name;
        pyidx[np++] = i;
    }
    fmt[nf++] = ':';
    fmt[nf] = '\0';
    strncat(fmt, fn, sizeof fmt - (size_t)nf - 1);
    kw[np] = NULL;
    if (!PyArg_ParseTupleAndKeywords(
            args, kwds, fmt, kw, &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6], &o[7], &o[8],
            &o[9], &o[10], &o[11], &o[12], &o[13], &o[14], &o[15], &o[16], &o[17], &o[18],
            &o[19], &o[20], &o[21], &o[22], &o[23], &o[24], &o[25], &o[26], &o[27], &o[28],
            &o[29], &o[30], &o[31])) return NULL;
    for (k = 0; k < np; k++) obj[pyidx[k]] = o[k];

    /* Options first: they may fix letters (max_relative_position -> K). */
    for (i = 0; i < s->nargs; i++) {
        if (s->args[i].role == AL_OPT && al_option(s, &L, &c, i, obj[i]) < 0) return NULL;
    }
    i = s->dtype_from ? al_find(s, s->dtype_from, (int)strlen(s->dtype_from)) : 0;
    if (i < 0 || obj[i] == NULL) {
        al_spec_bug(fn, "dtype_from", s->dtype_from);
        return NULL;
    }
    if ((c.typenum = al_float_typenum(obj[i], fn, s->args[i].name)) < 0) return NULL;

    /* Arrays: those of `order` first, then the table order; shapes and sizes before copies. */
    for (p = s->order; al_next(&p, ",", &item, &len); nseq++) {
        if ((seq[nseq] = al_find(s, item, len)) < 0) { al_spec_bug(fn, "order", item); goto done; }
        done_[seq[nseq]] = 1;
    }
    for (i = 0; i < s->nargs; i++) {
        if (!al_is_output(&s->args[i]) && s->args[i].role != AL_OPT && !done_[i]) seq[nseq++] = i;
    }
    for (k = 0; k < nseq; k++) {
        if (al_check_arg(s, &L, &c, arr, obj, seq[k]) < 0) goto done;
    }
    if (al_check_products(s, &L, s->blas, 1) < 0 || al_check_products(s, &L, s->fits, 0) < 0)
        goto done;
    for (k = 0; k < nseq; k++) {
        i = seq[k];
        if (arr[i] == NULL && obj[i] != NULL &&
            (arr[i] = al_convert(&s->args[i], &c, obj[i])) == NULL) goto done;
        if (arr[i] != NULL) {
            c.p[i] = PyArray_DATA(arr[i]);
            c.ndim[i] = PyArray_NDIM(arr[i]);
        }
    }

    /* Outputs, allocated before the GIL is released. */
    for (i = 0; i < s->nargs; i++) {
        if (al_is_output(&s->args[i]) && al_output(s, &L, &c, arr, i) < 0) goto done;
    }
    for (k = 0; k < L.n; k++) c.dim[k] = L.val[k] < 0 ? 0 : L.val[k];
    if (al_run(s, &L, &c, arr) < 0) goto done;

    /* The outputs in table order: None where not wanted (left out with AL_DROP); a scalar
     * as a Python float; a single output by itself, else a tuple. */
    for (i = 0; i < s->nargs; i++) {
        PyObject *item_obj;
        if (!al_is_output(&s->args[i]) || (arr[i] == NULL && (s->args[i].flags & AL_DROP)))
            continue;
        if (arr[i] == NULL) {
            item_obj = Py_None;
            Py_INCREF(item_obj);
        } else if (s->args[i].type == 's') {
            item_obj = PyFloat_FromDouble(c.typenum == NPY_FLOAT32 ? (double)*(float *)c.p[i]
                                                                   : *(double *)c.p[i]);
        } else {
            item_obj = (PyObject *)arr[i];
            arr[i] = NULL;
        }
        items[nout++] = item_obj;
        if (item_obj == NULL) goto done;
    }
    if (nout == 1) {
        res = items[0];
        nout = 0;
    } else if ((res = PyTuple_New(nout)) != NULL) {
        for (k = 0; k < nout; k++) PyTuple_SET_ITEM(res, k, items[k]);
        nout = 0;
    }
done:
    for (k = 0; k < nout; k++) Py_XDECREF(items[k]);
    for (i = 0; i < s->nargs; i++) Py_XDECREF(arr[i]);
    return res;
}

/* ---- the signatures, parsed at import ---------------------------------------------------- */

/* Cuts the next piece of *p at `sep` (outside {} and ''), NUL-terminating it; NULL at the end. */
static char *al_cut(char **p, char sep) {
    char *start = *p, *q = *p, in = 0;   /* in: the closing quote or brace awaited */
    if (*start == '\0') return NULL;
    for (; *q && (in || *q != sep); q++) {
        if (in ? *q == in : *q == '\'' || *q == '{') in = in ? 0 : *q == '{' ? '}' : '\'';
    }
    *p = *q ? q + 1 : q;
    *q = '\0';
    return start;
}

/* Appends to the spec's text buffer: a copy of `src`, or NULL when full. */
static char *al_keep(al_spec *s, size_t *used, const char *src) {
    size_t n = strlen(src) + 1;
    char *dst = s->text + *used;
    if (*used + n > sizeof s->text) return NULL;
    memcpy(dst, src, n);
    *used += n;
    return dst;
}

/* One option's extras: a letter, lo..hi, {choices} (numbered from 0) or 'what it must be'. */
static int al_parse_option(al_spec *s, al_arg *a, char *rest, size_t *used) {
    char *x, msg[256];
    size_t m = 0;
    a->deftext = al_cut(&rest, ':');
    a->type = strcmp(a->deftext, "True") == 0 || strcmp(a->deftext, "False") == 0 ? 'p'
              : strchr(a->deftext, '.') ? 'd' : 'i';
    a->def = a->type == 'p' ? a->deftext[0] == 'T' : atof(a->deftext);
    while ((x = al_cut(&rest, ':')) != NULL) {
        if (x[0] == '\'') {
            x[strlen(x) - 1] = '\0';
            a->choices = x + 1;
        } else if (x[0] == '{') {
            char *list = x + 1, *item;
            int k = 0;
            list[strlen(list) - 1] = '\0';
            while ((item = al_cut(&list, ',')) != NULL) {
                const char *sep = k == 0 ? "" : *list ? ", " : " or ";
                al_put(msg, sizeof msg, &m, "%s%d (%s)", sep, k++, item);
            }
            a->lo = 0;
            a->hi = k - 1;
            if ((a->choices = al_keep(s, used, msg)) == NULL) return -1;
        } else if (strstr(x, "..")) {
            a->lo = atof(x);
            a->hi = atof(strstr(x, "..") + 2);
        } else {
            a->shape = x;
        }
    }
    return 0;
}

/* Appends sep and piece to the docstring, breaking the line before piece (indented) where
 * the line with its next separator would pass column 92. */
static void al_doc(al_spec *s, size_t *d, size_t *col, const char *sep, const char *piece,
                   int indent) {
    size_t n = strlen(sep) + strlen(piece), k = strlen(sep);
    if (*col + n + 1 > 92 && *col > (size_t)indent) {
        while (k > 0 && sep[k - 1] == ' ') k--;
        al_put(s->docbuf, sizeof s->docbuf, d, "%.*s\n%*s%s", (int)k, sep, indent, "", piece);
        *col = (size_t)indent + strlen(piece);
    } else {
        al_put(s->docbuf, sizeof s->docbuf, d, "%s%s", sep, piece);
        *col += n;
    }
}

/* Checks that every letter and name a parsed spec refers to exists, so that a typo is a
 * SystemError at import, not in some call. */
static int al_spec_check(const al_spec *s) {
    al_letters L;
    al_tok toks[AL_MAXDIM];
    const char *q, *item;
    int k, len, optional = 0, npy = 0;
    if (al_letters_parse(&L, s->name, s->letters) < 0) return -1;
    for (k = 0; k < s->nargs; k++) {
        const al_arg *a = &s->args[k];
        if (a->role != AL_OUT && (++npy > AL_MAXPY || (optional && !(a->flags & AL_DEF))))
            return al_spec_bug(s->name, "required after optional, or too many:", a->name);
        optional |= a->role != AL_OUT && (a->flags & AL_DEF);
        for (q = a->role == AL_OPT ? NULL : a->shape; al_next(&q, "|", &item, &len);) {
            if (al_tokens(&L, s->name, item, len, ",", toks) < 0) return -1;
        }
        for (q = a->when; al_next(&q, "&", &item, &len);) {
            if (al_find(s, item + (*item == '!'), len - (*item == '!')) < 0)
                return al_spec_bug(s->name, "unknown argument in", a->when);
        }
        if ((a->pick && al_find(s, a->pick, (int)strlen(a->pick)) < 0) ||
            (a->role == AL_OPT && a->shape && al_letter_index(&L, a->shape,
                                                             (int)strlen(a->shape)) < 0))
            return al_spec_bug(s->name, "unknown pick or letter of", a->name);
    }
    for (q = s->order; al_next(&q, ",", &item, &len);) {
        if (al_find(s, item, len) < 0) return al_spec_bug(s->name, "unknown in order", item);
    }
    for (k = 0; k < 2; k++) {
        for (q = k ? s->fits : s->blas; al_next(&q, ",", &item, &len);) {
            if (al_tokens(&L, s->name, item, len, "*", toks) < 0) return -1;
        }
    }
    if (s->dtype_from && al_find(s, s->dtype_from, (int)strlen(s->dtype_from)) < 0)
        return al_spec_bug(s->name, "unknown dtype_from", s->dtype_from);
    return 0;
}

/* Parses s->sig into s->args, checks the count against the file's enum, and writes the
 * docstring "name(a, b=None, c=1.0) -> (x, y[, z])\n\n<doc>" into s->docbuf. */
static int al_spec_init(al_spec *s) {
    char *p = s->text, *tok;
    size_t used = strlen(s->sig) + 1, d = 0, col = 0;
    int n = 0, out = 0, i, k, j, nout = 0;
    if (used > sizeof s->text) return al_spec_bug(s->name, "signature too long", s->sig);
    memcpy(s->text, s->sig, used);
    while ((tok = al_cut(&p, ' ')) != NULL) {
        al_arg *a = &s->args[n];
        char *rest = tok, sep, *x;
        while (isalnum((unsigned char)*rest) || *rest == '_') rest++;
        sep = *rest;
        if (*tok == '\0') continue;
        if (strcmp(tok, "->") == 0) { out = 1; continue; }
        if (n == AL_MAXARGS || rest == tok) return al_spec_bug(s->name, "bad argument", tok);
        memset(a, 0, sizeof *a);
        a->role = out ? AL_OUT : sep == '=' ? AL_OPT : AL_IN;
        a->flags = sep == '=' || sep == '?' ? AL_DEF : sep == '~' ? AL_NONE : 0;
        *rest++ = '\0';
        a->name = tok;
        n++;
        if (sep == '=') {
            if (al_parse_option(s, a, rest, &used) < 0)
                return al_spec_bug(s->name, "text buffer full at", tok);
            continue;
        }
        if (sep != ':' && *rest++ != ':') return al_spec_bug(s->name, "no shape for", tok);
        if ((a->shape = al_cut(&rest, ':')) == NULL) a->shape = "";
        a->type = out && a->shape[0] == '\0' ? 's' : 'f';
        while ((x = al_cut(&rest, ':')) != NULL) {
            if (strcmp(x, "bool") == 0) a->type = 'b';
            else if (strcmp(x, "zeros") == 0) a->flags |= AL_ZERO;
            else if (strcmp(x, "drop") == 0) a->flags |= AL_DROP;
            else if (strncmp(x, "if=", 3) == 0) a->when = x + 3;
            else if (strncmp(x, "pick=", 5) == 0) a->pick = x + 5;
            else return al_spec_bug(s->name, "unknown flag", x);
        }
    }
    if (n != s->nargs) return al_spec_bug(s->name, "argument count differs from the enum", s->sig);
    if (al_spec_check(s) < 0) return -1;

    /* The docstring: the signature, the description, then every array's shape. */
    for (k = 0; k < n; k++) nout += al_is_output(&s->args[k]);
    al_doc(s, &d, &col, "", s->name, 0);
    for (k = 0, j = 0; k < n; k++) {
        const al_arg *a = &s->args[k];
        char piece[96];
        size_t m = 0;
        al_put(piece, sizeof piece, &m, "%s%s%s%s%s", a->flags & AL_DROP ? "[, " : "",
               a->name, a->role == AL_OPT ? "=" : a->flags & AL_DEF ? "=None" : "",
               a->role == AL_OPT ? a->deftext : "", a->flags & AL_DROP ? "]" : "");
        if (al_is_output(a) && j++ == 0) {   /* the outputs on this line, or on the next */
            size_t len = 6;
            for (i = k; i < n; i++) len += strlen(s->args[i].name) + 2;
            al_put(s->docbuf, sizeof s->docbuf, &d, col + len > 92 ? ")\n    -> " : ") -> ");
            col = col + len > 92 ? 7 : col + 5;
            al_doc(s, &d, &col, nout > 1 ? "(" : "", piece, 8);
        } else {
            al_doc(s, &d, &col, k == 0 ? "(" : a->flags & AL_DROP ? "" : ", ", piece,
                   j ? 8 : (int)strlen(s->name) + 1);
        }
    }
    al_put(s->docbuf, sizeof s->docbuf, &d, "%s\n\n%s\n\n", nout > 1 ? ")" : "", s->doc);
    for (k = 0, j = 0, col = 0; k < n; k++) {
        const al_arg *a = &s->args[k];
        char piece[96];
        size_t m = 0;
        const char *sh = a->shape, *item;
        int len, alt = 0;
        if (a->role == AL_OPT) continue;
        al_put(piece, sizeof piece, &m, "%s%s ", al_is_output(a) && j++ == 0 ? "returns " : "",
               a->name);
        if (a->type == 's') al_put(piece, sizeof piece, &m, "(a float)");
        while (al_next(&sh, "|", &item, &len)) {   /* "(B,T,H)", "(4H,)", "(A) or (B)" */
            if (alt && strncmp(item, a->shape, (size_t)len) == 0) continue;
            al_put(piece, sizeof piece, &m, "%s(%.*s%s)", alt++ ? " or " : "", len, item,
                   memchr(item, ',', (size_t)len) ? "" : ",");
        }
        if (a->type == 'b') al_put(piece, sizeof piece, &m, " bool");
        al_doc(s, &d, &col, k == 0 ? "" : al_is_output(a) && j == 1 ? "; " : ", ", piece, 0);
    }
    al_put(s->docbuf, sizeof s->docbuf, &d, ".\nFloat arrays share the dtype of `%s` (float32 or "
           "float64). Bad input raises\nTypeError or ValueError.",
           s->dtype_from ? s->dtype_from : s->args[0].name);
    if (d >= sizeof s->docbuf - 1) return al_spec_bug(s->name, "docstring too long", s->name);
    return 0;
}

/* Every kernel's Python function: `self` is a capsule holding its spec. */
static PyObject *al_entry(PyObject *self, PyObject *args, PyObject *kwds) {
    const al_spec *s = PyCapsule_GetPointer(self, NULL);
    return s ? al_bind(s, args, kwds) : NULL;
}

int al_add_specs(PyObject *m, al_spec *specs) {
    PyObject *name = PyModule_GetNameObject(m), *cap = NULL, *f = NULL;
    al_spec *s;
    if (name == NULL) return -1;
    for (s = specs; s->name != NULL; s++) {
        if (al_spec_init(s) < 0) goto fail;
        s->def.ml_name = s->name;
        s->def.ml_meth = (PyCFunction)(void (*)(void))al_entry;
        s->def.ml_flags = METH_VARARGS | METH_KEYWORDS;
        s->def.ml_doc = s->docbuf;
        if ((cap = PyCapsule_New(s, NULL, NULL)) == NULL) goto fail;
        f = PyCFunction_NewEx(&s->def, cap, name);
        Py_CLEAR(cap);
        if (f == NULL || PyModule_AddObject(m, s->name, f) < 0) goto fail;
        f = NULL;
    }
    Py_DECREF(name);
    return 0;
fail:
    Py_XDECREF(f);
    Py_DECREF(name);
    return -1;
}
