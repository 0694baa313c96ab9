/*
 * al_alloc.h -- workspace allocation for large per-call buffers (the LSTM's gate gradients
 * and staging arrays, tens of MB at B=64, T=200).
 *
 * Why: glibc serves such sizes with a fresh mmap on every call, and the kernel then zeroes
 * each 4 KiB page on first touch (measured: 12% of an LSTM backward at B=64, H=256, T=200).
 * With transparent huge pages in "madvise" mode (Debian's default), asking for them makes
 * that a fault per 2 MiB. NumPy does the same for its own large arrays. Advice only: where
 * huge pages are unavailable nothing changes. Free with free().
 */
#ifndef AL_ALLOC_H
#define AL_ALLOC_H

#include <stdlib.h>
#include <sys/mman.h>

#define AL_HUGE_PAGE ((size_t)2 << 20)

static void *al_alloc_large(size_t bytes) {
    void *p = NULL;
    if (bytes < 4 * AL_HUGE_PAGE) return malloc(bytes);
    if (posix_memalign(&p, AL_HUGE_PAGE, bytes) != 0) return NULL;
#ifdef MADV_HUGEPAGE
    (void)madvise(p, bytes, MADV_HUGEPAGE);
#endif
    return p;
}

#endif /* AL_ALLOC_H */
