/*
 * al_team.h -- a team of threads for one kernel call, and a barrier for its time loop.
 *
 * A kernel that splits its work runs `fn(arg, tid, nt)` on nt threads: the caller is tid 0 and
 * nt - 1 workers of the process's persistent pool (al_pool.c: started lazily, sized by the
 * thread budget, spin-then-sleep, re-created after fork) run the others. Handing a job to
 * spinning workers costs well under a microsecond, to sleeping ones a wake-up (some
 * microseconds).
 *
 * The barrier spins briefly (a few microseconds: the team's threads are normally on otherwise
 * idle cores) and then yields the CPU at every check, so that a team member the OS has
 * descheduled (other threads of the process spinning on the same cores) gets it back soon.
 *
 * If the pool is taken by another caller or a thread cannot be created, no thread runs `fn`
 * and al_team_run returns AL_ERR_NOMEM; al_team_go then runs the work on the caller alone.
 */
#ifndef AL_TEAM_H
#define AL_TEAM_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "al_common.h"
#include "al_pool.h"

typedef struct {
    atomic_int count;      /* threads still to arrive in this round */
    atomic_int round;      /* incremented by the last thread to arrive */
    int nt;
} al_barrier;

static inline void al_barrier_init(al_barrier *bar, int nt) {
    atomic_init(&bar->count, nt);
    atomic_init(&bar->round, 0);
    bar->nt = nt;
}

static inline void al_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Every thread of the team waits here until all nt have arrived. Writes made before the
 * barrier are visible to every thread after it (acquire/release on `round`). */
static inline void al_barrier_wait(al_barrier *bar) {
    const int round = atomic_load_explicit(&bar->round, memory_order_relaxed);
    long spins = 0;
    if (bar->nt <= 1) return;
    if (atomic_fetch_sub_explicit(&bar->count, 1, memory_order_acq_rel) == 1) {
        atomic_store_explicit(&bar->count, bar->nt, memory_order_relaxed);
        atomic_fetch_add_explicit(&bar->round, 1, memory_order_release);
        return;
    }
    while (atomic_load_explicit(&bar->round, memory_order_acquire) == round) {
        if (++spins < 256) {
            al_cpu_relax();
        } else {
            sched_yield();
        }
    }
}

/* Runs fn(arg, tid, nt) for tid = 0 .. nt-1 on the caller and nt-1 pool workers: AL_OK, or
 * AL_ERR_NOMEM if the team could not be had (the pool serves another caller, or a worker
 * could not be started); then fn did not run at all. */
static inline int al_team_run(int nt, al_team_fn fn, void *arg) {
    return al_pool_run(nt, fn, arg) == AL_POOL_OK ? AL_OK : AL_ERR_NOMEM;
}

/* Runs fn on a team of nt threads whose time loop may wait at `bar` (NULL: no barrier); if
 * the team cannot be had (another Python thread's kernel holds the pool, or a thread could not
 * be started), runs it on the calling thread alone as a team of one (fn's split of the work
 * must then be valid for nt = 1, as al_split's is, and give the same result: every kernel's
 * result is independent of its thread count). */
static inline void al_team_go(int nt, al_team_fn fn, void *arg, al_barrier *bar) {
    if (bar != NULL) al_barrier_init(bar, nt);
    if (nt > 1 && al_team_run(nt, fn, arg) == AL_OK) return;
    if (bar != NULL) al_barrier_init(bar, 1);
    al_pool_inline(fn, arg);
}

/* [lo, hi) of n items split as evenly as possible among nt parts (part i). */
static inline void al_split(size_t n, int nt, int i, size_t *lo, size_t *hi) {
    const size_t q = n / (size_t)nt, r = n % (size_t)nt;
    const size_t ii = (size_t)i;
    *lo = ii * q + (ii < r ? ii : r);
    *hi = *lo + q + (ii < r ? 1 : 0);
}

#endif /* AL_TEAM_H */
