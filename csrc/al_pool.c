/*
 * al_pool.c -- the persistent, lazily started pool of worker threads (see al_pool.h).
 *
 * Dispatch: each worker has a slot with a generation counter. The owner of the pool (the one
 * caller holding `busy`) writes fn/arg/tid/nt into the slots of workers 1 .. nt-1, sets
 * `pending` to nt-1 and bumps each of those generations (release); a worker that sees its
 * generation change runs its share and decrements `pending`. Waiting workers spin (pause) for
 * AL_POOL_SPIN_NS, then sleep on the pool's condition variable; the owner broadcasts only when
 * some worker sleeps. The owner runs tid 0, then waits for `pending` to reach 0 (spinning
 * briefly, then yielding the CPU at every check, as al_barrier_wait does).
 *
 * Sleeping is race-free: a worker increments `sleeping` and re-reads its generation under the
 * mutex before it waits; the owner stores the generation and then reads `sleeping` (both
 * sequentially consistent), so either the owner sees the sleeper and broadcasts under the
 * mutex, or the worker sees the new generation and does not sleep.
 */
#define _POSIX_C_SOURCE 200809L  /* pthreads, sigset, clock_gettime, sched_yield */

#include "al_pool.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

/* How long an idle worker spins before it sleeps: long enough to bridge the Python between two
 * kernel calls of one predict (tens of microseconds), short enough that a BLAS call or another
 * process gets the core back soon. */
#define AL_POOL_SPIN_NS 100000L

typedef struct {
    _Alignas(64) atomic_uint gen;   /* bumped by the owner for each job of this worker */
    al_team_fn fn;
    void *arg;
    int tid, nt;
    unsigned gen0;                  /* gen when the worker was started: its jobs come after */
} al_pool_slot;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_int busy;                /* 1 while a caller owns the workers */
    atomic_int callers;             /* calls inside al_pool_run / al_pool_inline right now */
    atomic_int sleeping;            /* workers inside (or about to enter) pthread_cond_wait */
    _Alignas(64) atomic_int pending;/* workers of the current job still running */
    atomic_int nworkers;            /* started; written only by the owner (busy held) */
    al_pool_slot slot[AL_TEAM_MAX];
} al_pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

/* The calling thread's own kernel thread budget (al_common.h), set by _core.set_thread_budget:
 * a pthread key, made once, not a _Thread_local (a dlopen'ed module's thread-locals are dynamic
 * TLS blocks, which LeakSanitizer's exit-time scan of exiting threads crashed on once). */
static pthread_key_t al_budget_key;
static pthread_once_t al_budget_once = PTHREAD_ONCE_INIT;
static atomic_int al_budget_ready;

static void al_budget_make(void) {
    if (pthread_key_create(&al_budget_key, NULL) == 0) atomic_store(&al_budget_ready, 1);
}

int al_thread_budget_get(void) {
    if (!atomic_load_explicit(&al_budget_ready, memory_order_acquire)) return 0;
    return (int)(intptr_t)pthread_getspecific(al_budget_key);
}

int al_thread_budget_set(int n) {
    int old;
    pthread_once(&al_budget_once, al_budget_make);
    if (!atomic_load(&al_budget_ready)) return -1;
    old = al_thread_budget_get();
    if (pthread_setspecific(al_budget_key, (void *)(intptr_t)n) != 0) return -1;
    return old;
}

static pthread_once_t al_pool_once = PTHREAD_ONCE_INIT;

static inline void al_pool_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static long long al_pool_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The child of a fork() has only the thread that forked: no workers, nobody owning the pool,
 * nobody sleeping, and the mutex/condvar in whatever state the parent's threads left them. */
static void al_pool_atfork_child(void) {
    pthread_mutex_init(&al_pool.mu, NULL);
    pthread_cond_init(&al_pool.cv, NULL);
    atomic_store(&al_pool.busy, 0);
    atomic_store(&al_pool.callers, 0);
    atomic_store(&al_pool.sleeping, 0);
    atomic_store(&al_pool.pending, 0);
    atomic_store(&al_pool.nworkers, 0);
}

static void al_pool_init_once(void) {
    pthread_atfork(NULL, NULL, al_pool_atfork_child);
}

static void *al_pool_worker(void *p) {
    al_pool_slot *s = (al_pool_slot *)p;
    unsigned seen = s->gen0;
    for (;;) {
        unsigned g = atomic_load_explicit(&s->gen, memory_order_acquire);
        if (g == seen) {
            const long long t0 = al_pool_now_ns();
            long spins = 0;
            while ((g = atomic_load_explicit(&s->gen, memory_order_acquire)) == seen) {
                al_pool_relax();
                if ((++spins & 63) == 0 && al_pool_now_ns() - t0 > AL_POOL_SPIN_NS) break;
            }
            if (g == seen) {
                pthread_mutex_lock(&al_pool.mu);
                atomic_fetch_add(&al_pool.sleeping, 1);
                while ((g = atomic_load(&s->gen)) == seen) pthread_cond_wait(&al_pool.cv, &al_pool.mu);
                atomic_fetch_sub(&al_pool.sleeping, 1);
                pthread_mutex_unlock(&al_pool.mu);
            }
        }
        seen = g;
        s->fn(s->arg, s->tid, s->nt);
        atomic_fetch_sub_explicit(&al_pool.pending, 1, memory_order_acq_rel);
    }
    return NULL;
}

/* Starts workers until there are `want` (owner only). Workers block every signal, so that
 * signals (Ctrl-C) go to the interpreter's threads. Returns 0, or -1 if one failed. */
static int al_pool_grow(int want) {
    sigset_t all, old;
    int rc = 0;
    if (want <= al_pool.nworkers) return 0;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    while (al_pool.nworkers < want) {
        const int i = al_pool.nworkers + 1;
        al_pool_slot *s = &al_pool.slot[i];
        pthread_attr_t attr;
        pthread_t th;
        s->gen0 = atomic_load(&s->gen);
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        rc = pthread_create(&th, &attr, al_pool_worker, s);
        pthread_attr_destroy(&attr);
        if (rc != 0) {
            rc = -1;
            break;
        }
        atomic_fetch_add(&al_pool.nworkers, 1);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

void al_pool_inline(al_team_fn fn, void *arg) {
    atomic_fetch_add(&al_pool.callers, 1);
    fn(arg, 0, 1);
    atomic_fetch_sub(&al_pool.callers, 1);
}

int al_pool_run(int nt, al_team_fn fn, void *arg) {
    int i, expected = 0;
    long spins = 0;
    if (nt <= 1) {
        al_pool_inline(fn, arg);
        return AL_POOL_OK;
    }
    if (nt > AL_TEAM_MAX) nt = AL_TEAM_MAX;
    pthread_once(&al_pool_once, al_pool_init_once);
    /* Another call inside a kernel (pooled or inline): its thread already takes a core, so a
     * team would oversubscribe; so would a second team. */
    if (atomic_fetch_add(&al_pool.callers, 1) != 0) {
        atomic_fetch_sub(&al_pool.callers, 1);
        return AL_POOL_BUSY;
    }
    if (!atomic_compare_exchange_strong(&al_pool.busy, &expected, 1)) {
        atomic_fetch_sub(&al_pool.callers, 1);
        return AL_POOL_BUSY;
    }
    if (al_pool_grow(nt - 1) != 0) {
        atomic_store(&al_pool.busy, 0);
        atomic_fetch_sub(&al_pool.callers, 1);
        return AL_POOL_NOMEM;
    }
    atomic_store_explicit(&al_pool.pending, nt - 1, memory_order_relaxed);
    for (i = 1; i < nt; i++) {
        al_pool_slot *s = &al_pool.slot[i];
        s->fn = fn;
        s->arg = arg;
        s->tid = i;
        s->nt = nt;
        atomic_fetch_add(&s->gen, 1);          /* seq_cst: ordered before the read below */
    }
    if (atomic_load(&al_pool.sleeping) > 0) {
        pthread_mutex_lock(&al_pool.mu);
        pthread_cond_broadcast(&al_pool.cv);
        pthread_mutex_unlock(&al_pool.mu);
    }
    fn(arg, 0, nt);
    while (atomic_load_explicit(&al_pool.pending, memory_order_acquire) > 0) {
        if (++spins < 2048) al_pool_relax();
        else sched_yield();
    }
    atomic_store_explicit(&al_pool.busy, 0, memory_order_release);
    atomic_fetch_sub(&al_pool.callers, 1);
    return AL_POOL_OK;
}

int al_pool_workers(void) {
    return atomic_load(&al_pool.nworkers);
}
