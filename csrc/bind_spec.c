/*
 * bind_spec.c -- al_bind(), the front door every kernel binding goes through (bind_spec.h).
 * Letters of the legend are unified across arguments: the first array (in conversion order)
 * that carries a letter fixes its size, and every later use must agree.
 */
#include "bind_spec.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define AL_MAXDIM 8
#define AL_MAXALT 3
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

static int al_letters_parse(al_letters *L, const char *fn, const char *text) {
    const char *p = text;
    L->n = 0;
    while (p && *p) {
        size_t len = strcspn(p, ",");
        if (L->n == AL_MAXLET || len == 0 || len >= sizeof L->name[0])
            return al_spec_bug(fn, "letters", text);
        memcpy(L->name[L->n], p, len);
        L->name[L->n][len] = '\0';
        L->val[L->n] = AL_UNKNOWN;
        L->from[L->n] = -1;
        L->axis[L->n] = -1;
        L->n++;
        p += len;
        if (*p == ',') p++;
    }
    return 0;
}

static int al_letter_index(const al_letters *L, const char *name, size_t len) {
    int k;
    for (k = 0; k < L->n; k++) {
        if (strlen(L->name[k]) == len && strncmp(L->name[k], name, len) == 0) return k;
    }
    return -1;
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
    if ((t->letter = al_letter_index(L, s + start, (size_t)(i - start))) < 0)
        return al_spec_bug(fn, "unknown letter in", s);
    if (i < len && s[i] == '+') {
        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++) t->c = t->c * 10 + (s[i] - '0');
    }
    return i == len ? 0 : al_spec_bug(fn, "bad shape token", s);
}

/* Parses "a,b,c" (stopping at '|' or the end) into toks; returns the count or -1. */
static int al_shape_parse(const al_letters *L, const char *fn, const char *s, al_tok *toks,
                          const char **rest) {
    int n = 0;
    while (*s && *s != '|') {
        int len = (int)strcspn(s, ",|");
        if (n == AL_MAXDIM) return al_spec_bug(fn, "too many axes in", s);
        if (al_tok_parse(L, fn, s, len, &toks[n++]) < 0) return -1;
        s += len;
        if (*s == ',') s++;
    }
    if (rest) *rest = *s == '|' ? s + 1 : NULL;
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

/* "(B, Tv, D) = (2, ?, 4)" */
static void al_put_expected(char *buf, size_t size, size_t *used, const al_letters *L,
                            const al_tok *toks, int n) {
    int k;
    al_put(buf, size, used, "(");
    for (k = 0; k < n; k++) al_put(buf, size, used, "%s%.*s", k ? ", " : "", toks[k].len, toks[k].text);
    al_put(buf, size, used, n == 1 ? ",) = (" : ") = (");
    for (k = 0; k < n; k++) {
        npy_intp v = al_tok_value(L, &toks[k]);
        if (v < 0) al_put(buf, size, used, "%s?", k ? ", " : "");
        else al_put(buf, size, used, "%s%lld", k ? ", " : "", (long long)v);
    }
    al_put(buf, size, used, n == 1 ? ",)" : ")");
}

static void al_put_dims(char *buf, size_t size, size_t *used, int nd, const npy_intp *d) {
    int k;
    al_put(buf, size, used, "(");
    for (k = 0; k < nd; k++) al_put(buf, size, used, "%s%lld", k ? ", " : "", (long long)d[k]);
    al_put(buf, size, used, nd == 1 ? ",)" : ")");
}

/* The one shape message: "fn: `arg` must have shape (B, Tv, D) = (2, ?, 4), got (2, 3, 5)." */
static int al_shape_error(const al_spec *s, const al_letters *L, int i, const char *shape,
                          PyArrayObject *a) {
    al_tok toks[AL_MAXDIM];
    char msg[1024];
    size_t used = 0;
    const char *alt = shape;
    int n, first = 1;
    al_put(msg, sizeof msg, &used, "%s: `%s` must have shape ", s->name, s->args[i].name);
    while (alt) {
        if ((n = al_shape_parse(L, s->name, alt, toks, &alt)) < 0) return -1;
        if (!first) al_put(msg, sizeof msg, &used, " or ");
        al_put_expected(msg, sizeof msg, &used, L, toks, n);
        first = 0;
    }
    al_put(msg, sizeof msg, &used, ", got ");
    al_put_dims(msg, sizeof msg, &used, PyArray_NDIM(a), PyArray_DIMS(a));
    al_put(msg, sizeof msg, &used, ".");
    PyErr_SetString(PyExc_ValueError, msg);
    return -1;
}

/* Checks array i against its shape, fixing the letters it is the first to carry. */
static int al_unify(const al_spec *s, al_letters *L, int i, PyArrayObject *a) {
    al_tok toks[AL_MAXDIM];
    const char *alt = s->args[i].shape, *rest;
    int nd = PyArray_NDIM(a), n = -1, k;
    const npy_intp *d = PyArray_DIMS(a);
    char fixed[AL_MAXLET] = {0};
    while (alt) {   /* the alternative of the array's rank */
        if ((n = al_shape_parse(L, s->name, alt, toks, &rest)) < 0) return -1;
        if (n == nd) break;
        alt = rest;
    }
    if (alt == NULL) return al_shape_error(s, L, i, s->args[i].shape, a);
    for (k = 0; k < n; k++) {   /* against the letters known before this argument */
        npy_intp v = al_tok_value(L, &toks[k]);
        if (v == AL_HUGE || (v >= 0 && v != d[k])) return al_shape_error(s, L, i, s->args[i].shape, a);
    }
    for (k = 0; k < n; k++) {   /* fix the new letters, and check repeats within the array */
        const al_tok *t = &toks[k];
        npy_intp v = al_tok_value(L, t);
        if (v == AL_UNKNOWN) {
            if (d[k] < t->c || (d[k] - t->c) % t->m != 0) return al_shape_error(s, L, i, s->args[i].shape, a);
            L->val[t->letter] = (d[k] - t->c) / t->m;
            L->from[t->letter] = i;
            L->axis[t->letter] = k;
            fixed[t->letter] = 1;
        } else if (v != d[k]) {
            return al_shape_error(s, L, i, s->args[i].shape, a);
        }
    }
    if (s->positive) {   /* letters that must be >= 1, checked where they are fixed */
        const char *p = s->positive;
        char msg[512];
        size_t used = 0;
        int found = 0;
        while (*p) {
            size_t len = strcspn(p, ",");
            int l = al_letter_index(L, p, len);
            if (l >= 0 && fixed[l] && L->val[l] < 1) found = 1;
            p += len;
            if (*p == ',') p++;
        }
        if (found) {
            al_put(msg, sizeof msg, &used, "%s: `%s` must have shape (", s->name, s->args[i].name);
            for (k = 0; k < n; k++) al_put(msg, sizeof msg, &used, "%s%.*s", k ? ", " : "", toks[k].len, toks[k].text);
            al_put(msg, sizeof msg, &used, ") with ");
            for (p = s->positive, k = 0; *p; p += *p == ',', k++) {
                size_t len = strcspn(p, ",");
                al_put(msg, sizeof msg, &used, "%s%.*s >= 1", k ? " and " : "", (int)len, p);
                p += len;
            }
            al_put(msg, sizeof msg, &used, ", got ");
            al_put_dims(msg, sizeof msg, &used, nd, d);
            al_put(msg, sizeof msg, &used, ".");
            PyErr_SetString(PyExc_ValueError, msg);
            return -1;
        }
    }
    return 0;
}

/* "; B is axis 0 of `query`, Tv is axis 1 of `values`" for the letters of a product. */
static void al_put_origins(char *buf, size_t size, size_t *used, const al_spec *s,
                           const al_letters *L, const al_tok *toks, int n) {
    int k, j, first = 1;
    for (k = 0; k < n; k++) {
        int l = toks[k].letter, dup = 0;
        if (l < 0 || L->from[l] < 0) continue;
        for (j = 0; j < k; j++) dup |= toks[j].letter == l;
        if (dup) continue;
        al_put(buf, size, used, "%s%s", first ? "; " : ", ", L->name[l]);
        if (n > 1) al_put(buf, size, used, " = %lld", (long long)L->val[l]);
        al_put(buf, size, used, " is ");
        if (L->axis[l] < 0) al_put(buf, size, used, "`%s`", s->args[L->from[l]].name);
        else al_put(buf, size, used, "axis %d of `%s`", L->axis[l], s->args[L->from[l]].name);
        first = 0;
    }
}

/* Checks each product of `list` ("Tq,B*Tv"): at most the BLAS int when blas, else no overflow. */
static int al_check_products(const al_spec *s, const al_letters *L, const char *list, int blas) {
    const char *p = list;
    while (p && *p) {
        size_t len = strcspn(p, ",");
        al_tok toks[AL_MAXDIM];
        const char *q = p;
        npy_intp prod = 1;
        int n = 0, known = 1, over = 0, k;
        while (q < p + len) {
            int tl = (int)strcspn(q, "*,");
            if (n == AL_MAXDIM || al_tok_parse(L, s->name, q, tl, &toks[n]) < 0)
                return n == AL_MAXDIM ? al_spec_bug(s->name, "product too long", p) : -1;
            n++;
            q += tl;
            if (*q == '*') q++;
        }
        for (k = 0; k < n; k++) {
            npy_intp v = al_tok_value(L, &toks[k]);
            if (v == AL_UNKNOWN) known = 0;
            else if (v == AL_HUGE || (v != 0 && prod > NPY_MAX_INTP / v)) over = 1;
            else prod *= v;
        }
        if (known && (over || (blas && (long long)prod > AL_BLAS_INT_MAX))) {
            char msg[1024];
            size_t used = 0;
            if (over) {
                al_put(msg, sizeof msg, &used, "%s: the size %.*s overflows", s->name, (int)len, p);
            } else {
                al_put(msg, sizeof msg, &used, "%s: %.*s = %lld is too large for the 32-bit BLAS "
                       "(at most %lld)", s->name, (int)len, p, (long long)prod,
                       (long long)AL_BLAS_INT_MAX);
            }
            al_put_origins(msg, sizeof msg, &used, s, L, toks, n);
            al_put(msg, sizeof msg, &used, ".");
            PyErr_SetString(PyExc_ValueError, msg);
            return -1;
        }
        p += len;
        if (*p == ',') p++;
    }
    return 0;
}

static int al_find(const al_spec *s, const char *name, size_t len) {
    int i;
    for (i = 0; i < s->nargs; i++) {
        if (strlen(s->args[i].name) == len && strncmp(s->args[i].name, name, len) == 0) return i;
    }
    return -1;
}

/* Converts option i (NULL = omitted) into c->iv / c->dv; sets its letter. */
static int al_option(const al_spec *s, al_letters *L, al_call *c, int i, PyObject *x) {
    const al_arg *a = &s->args[i];
    long long iv = (long long)a->def;
    double dv = a->def;
    if (x != NULL) {
        if (a->type == 'p') {
            if ((iv = PyObject_IsTrue(x)) < 0) return -1;
        } else if (a->type == 'd') {
            dv = PyFloat_AsDouble(x);
            if (dv == -1.0 && PyErr_Occurred()) goto bad_type;
        } else {   /* any int-like, however large: out of range is a ValueError below */
            PyObject *idx = PyNumber_Index(x);
            int overflow = 0;
            if (idx == NULL) goto bad_type;
            iv = PyLong_AsLongLongAndOverflow(idx, &overflow);
            Py_DECREF(idx);
            if (iv == -1 && PyErr_Occurred()) return -1;
            if (overflow) iv = overflow > 0 ? LLONG_MAX : LLONG_MIN;
        }
    }
    if (a->type != 'd') dv = (double)iv;
    if ((a->lo < a->hi && !(dv >= a->lo && dv <= a->hi)) ||
        (a->type == 'i' && (iv < INT_MIN || iv > INT_MAX))) {
        if (a->choices) {
            PyErr_Format(PyExc_ValueError, "%s: `%s` must be %s, got %R.", s->name, a->name,
                         a->choices, x);
        } else if (a->lo < a->hi) {
            PyErr_Format(PyExc_ValueError, "%s: `%s` must be in [%lld, %lld], got %R.", s->name,
                         a->name, (long long)a->lo, (long long)a->hi, x);
        } else {
            PyErr_Format(PyExc_ValueError, "%s: `%s` must be in [%d, %d], got %R.", s->name,
                         a->name, INT_MIN, INT_MAX, x);
        }
        return -1;
    }
    c->iv[i] = iv;
    c->dv[i] = dv;
    if (a->shape && *a->shape) {
        int l = al_letter_index(L, a->shape, strlen(a->shape));
        if (l < 0) return al_spec_bug(s->name, "unknown letter", a->shape);
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

/* A new C-contiguous array for array argument i, of the call's dtype (or bool). */
static PyArrayObject *al_convert(const al_spec *s, const al_call *c, int i, PyObject *x) {
    const al_arg *a = &s->args[i];
    if (a->type == 'b') {
        return (PyArrayObject *)PyArray_FROM_OTF(x, NPY_BOOL,
                                                 NPY_ARRAY_IN_ARRAY | NPY_ARRAY_FORCECAST);
    }
    if (PyArray_Check(x) && PyArray_TYPE((PyArrayObject *)x) != c->typenum) {
        PyErr_Format(PyExc_TypeError, "%s: `%s` must have dtype %s like the inputs, got %R.",
                     s->name, a->name, c->typenum == NPY_FLOAT32 ? "float32" : "float64",
                     (PyObject *)PyArray_DESCR((PyArrayObject *)x));
        return NULL;
    }
    return (PyArrayObject *)PyArray_FROM_OTF(x, c->typenum, NPY_ARRAY_IN_ARRAY);
}

/* Whether output i is wanted: its `when` argument given / true. */
static int al_wanted(const al_spec *s, const al_call *c, PyArrayObject **arr, int i) {
    const char *w = s->args[i].when;
    int neg, j, given;
    if (w == NULL) return 1;
    neg = *w == '!';
    if ((j = al_find(s, w + neg, strlen(w + neg))) < 0) return al_spec_bug(s->name, "unknown", w);
    given = s->args[j].role == AL_OPT ? c->iv[j] != 0 : arr[j] != NULL;
    return neg ? !given : given;
}

static int al_is_output(const al_arg *a) { return a->role == AL_OUT || a->role == AL_SAVE; }

/* Converts and unifies array argument i unless it is None where None is allowed. */
static int al_take(const al_spec *s, al_letters *L, al_call *c, PyArrayObject **arr,
                   PyObject **obj, int i) {
    if ((obj[i] == NULL || obj[i] == Py_None) && (s->args[i].flags & (AL_NONE | AL_DEF)))
        return 0;
    if ((arr[i] = al_convert(s, c, i, obj[i])) == NULL || al_unify(s, L, i, arr[i]) < 0)
        return -1;
    c->p[i] = PyArray_DATA(arr[i]);
    c->ndim[i] = PyArray_NDIM(arr[i]);
    return 0;
}

PyObject *al_bind(const al_spec *s, PyObject *args, PyObject *kwds) {
    const char *fn = s->name;
    char *kw[AL_MAXPY + 1];
    char fmt[AL_MAXPY + 64];
    int pyidx[AL_MAXPY];
    PyObject *o[AL_MAXPY] = {NULL}, *obj[AL_MAXARGS] = {NULL};
    PyArrayObject *arr[AL_MAXARGS] = {NULL};
    PyObject *res = NULL;
    al_call c;
    al_letters L;
    int np = 0, nf = 0, optional = 0, nout = 0, i, k, status;
    const char *p;

    memset(&c, 0, sizeof c);
    if (s->nargs > AL_MAXARGS) { al_spec_bug(fn, "too many arguments", fn); return NULL; }
    if (al_letters_parse(&L, fn, s->letters) < 0) return NULL;

    /* Parse: the non-output arguments, in table order, are the Python signature. */
    for (i = 0; i < s->nargs; i++) {
        if (al_is_output(&s->args[i])) { nout++; continue; }
        if (s->args[i].flags & AL_DEF) {
            if (!optional) fmt[nf++] = '|';
            optional = 1;
        } else if (optional) {
            al_spec_bug(fn, "required after optional", s->args[i].name);
            return NULL;
        }
        if (np == AL_MAXPY) { al_spec_bug(fn, "too many Python arguments", fn); return NULL; }
        fmt[nf++] = 'O';
        kw[np] = (char *)s->args[i].name;
        pyidx[np++] = i;
    }
    snprintf(fmt + nf, sizeof fmt - (size_t)nf, ":%s", fn);
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
    if ((i = al_find(s, s->dtype_from, strlen(s->dtype_from))) < 0 || obj[i] == NULL) {
        al_spec_bug(fn, "dtype_from", s->dtype_from);
        return NULL;
    }
    if ((c.typenum = al_float_typenum(obj[i], fn, s->dtype_from)) < 0) return NULL;

    /* Arrays: those of `order` first, then the table order. */
    for (p = s->order; p && *p; p += *p == ',') {
        size_t len = strcspn(p, ",");
        if ((i = al_find(s, p, len)) < 0) { al_spec_bug(fn, "order", p); goto done; }
        if (al_take(s, &L, &c, arr, obj, i) < 0) goto done;
        p += len;
    }
    for (i = 0; i < s->nargs; i++) {
        if (!al_is_output(&s->args[i]) && s->args[i].role != AL_OPT && arr[i] == NULL &&
            al_take(s, &L, &c, arr, obj, i) < 0) goto done;
    }
    if (al_check_products(s, &L, s->blas, 1) < 0 || al_check_products(s, &L, s->fits, 0) < 0)
        goto done;

    /* Outputs, allocated before the GIL is released. */
    for (i = 0; i < s->nargs; i++) {
        al_tok toks[AL_MAXDIM];
        npy_intp dims[AL_MAXDIM];
        int n, w, t;
        if (!al_is_output(&s->args[i])) continue;
        if ((w = al_wanted(s, &c, arr, i)) < 0) goto done;
        if (!w) continue;
        if ((n = al_shape_parse(&L, fn, s->args[i].shape, toks, NULL)) < 0) goto done;
        for (k = 0; k < n; k++) {
            if ((dims[k] = al_tok_value(&L, &toks[k])) < 0) {
                al_spec_bug(fn, "size unknown for output", s->args[i].name);
                goto done;
            }
        }
        t = s->args[i].type == 'b' ? NPY_BOOL : c.typenum;
        arr[i] = (PyArrayObject *)((s->args[i].flags & AL_ZERO) || s->args[i].type == 's'
                                   ? PyArray_ZEROS(n, dims, t, 0) : PyArray_EMPTY(n, dims, t, 0));
        if (arr[i] == NULL) goto done;
        c.p[i] = PyArray_DATA(arr[i]);
        c.ndim[i] = n;
    }

    for (k = 0; k < L.n; k++) c.dim[k] = L.val[k] < 0 ? 0 : L.val[k];
    Py_BEGIN_ALLOW_THREADS
    status = s->run(&c);
    Py_END_ALLOW_THREADS
    if (status != AL_OK) {
        al_kernel_error(fn, status);
        goto done;
    }

    if ((res = PyTuple_New(nout)) == NULL) goto done;
    for (i = 0, k = 0; i < s->nargs; i++) {
        PyObject *item;
        if (!al_is_output(&s->args[i])) continue;
        if (arr[i] == NULL) {
            item = Py_None;
            Py_INCREF(item);
        } else if (s->args[i].type == 's') {
            item = PyFloat_FromDouble(c.typenum == NPY_FLOAT32 ? (double)*(float *)c.p[i]
                                                               : *(double *)c.p[i]);
            if (item == NULL) { Py_CLEAR(res); goto done; }
        } else {
            item = (PyObject *)arr[i];
            arr[i] = NULL;
        }
        PyTuple_SET_ITEM(res, k++, item);
    }
done:
    for (i = 0; i < s->nargs; i++) Py_XDECREF(arr[i]);
    return res;
}
