/*
 * al_pool.h -- the process's pool of worker threads for attnlstm's kernels (al_pool.c).
 *
 * A kernel that splits its work runs fn(arg, tid, nt) for tid = 0 .. nt-1: the caller is tid 0,
 * pool workers 1 .. nt-1 run the others. The pool is started lazily by the first call that
 * asks for more than one thread and grows to the largest team asked for (at most
 * AL_TEAM_MAX - 1 workers); callers size their team by the thread budget
 * (al_blas_threads(), which attnlstm.set_num_threads and threadpoolctl set), read at every
 * call. Between calls a worker spins for AL_POOL_SPIN_NS and then sleeps on a condition
 * variable, so an idle pool costs no CPU and a burst of calls pays no wake-up.
 *
 * One caller at a time owns the workers, and only while no other call is inside a kernel: a
 * caller that finds another Python thread's call inside a kernel (pooled, or run inline by
 * al_pool_inline) gets AL_POOL_BUSY at once, without waiting, and runs its work on its own
 * thread (al_team_go). So concurrent callers never wait for each other here, never deadlock,
 * and share the cores one thread each instead of stacking teams on them; the only overlap is
 * a team that started while no other caller was inside a kernel (at most one team plus the
 * callers themselves).
 *
 * After fork() the child has none of the parent's workers: a pthread_atfork handler resets
 * the pool, which the child's first threaded call starts anew.
 */
#ifndef AL_POOL_H
#define AL_POOL_H

#define AL_TEAM_MAX 64

/* The recurrent kernels split a call over threads only from this many flops of recurrent
 * products (LSTM 8*B*H*H*T, GRU 6*B*H*H*T): below it a team does not pay (benchmarks/NOTES.md:
 * with the persistent pool, 2 threads gained 1.3-1.9x from 2.6e7 flops and were neutral at
 * 1.3e7 on an Intel Xeon; on a Zen 4 they gained 1.4-1.7x in the forward and 2x in forward +
 * backward from 5.2e6, e.g. (8, 50, 64, 64) at 1.3e7). Exported as attnlstm._core.SPLIT_FLOPS
 * for callers that run calls side by side. */
#define AL_SPLIT_FLOPS 5e6

typedef void (*al_team_fn)(void *arg, int tid, int nt);

enum { AL_POOL_OK = 0, AL_POOL_NOMEM = 1, AL_POOL_BUSY = 2 };

/* Runs fn(arg, tid, nt) for tid = 0 .. nt-1 concurrently (tid 0 on the calling thread) and
 * returns AL_POOL_OK when all have returned; or, having run nothing, AL_POOL_BUSY (the
 * workers serve another caller) or AL_POOL_NOMEM (a worker thread could not be started).
 * nt <= 1 runs fn(arg, 0, 1) on the caller. nt is capped at AL_TEAM_MAX. */
int al_pool_run(int nt, al_team_fn fn, void *arg);

/* Runs fn(arg, 0, 1) on the calling thread, counted as a call inside a kernel (see above). */
void al_pool_inline(al_team_fn fn, void *arg);

/* The number of worker threads this process has started (0 before the first threaded call and
 * in a fresh fork child); for tests and diagnostics. */
int al_pool_workers(void);

#endif /* AL_POOL_H */
