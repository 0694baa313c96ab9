"""Interleaved timing of several contenders on one case, with repeats adapted to the cost.

Every contender first runs `warmup` untimed calls. Then the contenders are called in rounds
(A, B, C, A, B, C, ...) so that a slow drift of the shared machine hits all of them alike.
A contender stops once it has at least `min_runs` runs and `budget` seconds of measured time,
or `max_runs` runs. A slow contender (warm-up call >= `slow_s`, e.g. Keras eager at B=64, T=200)
needs only `min_runs_slow` runs: that keeps the full grid within ~15 min on 2 cores without
dropping shapes (the report prints each cell's run count in results/bench.json, "runs"). Statistics: median, interquartile range, min and max of the per-call times.

With several threads, each timed call is preceded by an untimed pause of `settle_s`: after a
parallel region the runtimes' idle worker threads keep spinning on the cores for a while
(libgomp under PyTorch, TensorFlow's Eigen pool, OpenBLAS), so without it the next contender
in the round would run with its cores taken by the previous one's spinning threads, i.e.
oversubscribed. The pause is the same for every contender.

The pause busy-waits on the calling thread instead of sleeping: on the 2-core KVM guest a
sleeping caller lets its virtual CPU halt, and the next call then pays the wake-up from halt.
Measured (2026-12-07, attnlstm LSTM forward (1, 50, 64, 64) float32, 1 thread, medians of 30):
74 us back to back, 208 us after a 5 ms sleep, 70 us after a 5 ms busy-wait; at (1, 50, 64, 512)
on 2 threads 3.9 ms after a busy-wait, while the sleeping harness's median was 8.6 ms. The pause
is there for the other runtimes' idle threads to stop spinning, not to cool the caller's core.

After it, at every thread count, `quiesce` keeps waiting (busy, up to 0.5 s) until the
process's other threads used under 5% of a core over a 2 ms window: TensorFlow goes on working
for tens of ms after an eager Keras call returns. Measured (2026-12-07, LSTM forward+backward
(64, 200, 64, 256) float32, 2 threads, rounds of attnlstm, PyTorch and Keras eager with the
5 ms pause only): attnlstm 221-229 ms, against 163 ms in rounds without Keras; with a 50 ms
pause after the Keras call 152 ms; with `quiesce` 154 ms (PyTorch 190-204 ms in all four).

A contender whose own previous call ended more than `REWARM_S` ago (the first round, or rounds
held up by slower contenders such as Keras eager) first makes one untimed call.
Why: on a VM whose balloon driver reports free memory to the host (virtio-balloon
free-page reporting, on the KVM guest these numbers come from), memory left free goes back to
the host in passes, and the next first touch of it waits for the host: measured (2026-12-07),
writing a fresh 110 MB NumPy array took 23 ms back to back, 27 and 29 ms after a 0.5 and 1 s
pause, 41 ms after 2 s, 117-297 ms after 3-5 s. (A first threshold of 1 s still left LSTM
forward (64, 50, 64, 512) at 62, 107 and 158 ms in one bench row, rounds of about 0.5 s.)
A contender that allocates large arrays per call pays that when it follows a slow one: LSTM
forward+backward (64, 200, 64, 256) float32 on 2 threads, attnlstm (about 110 MB of fresh
arrays per call) took 149 ms back to back and 304-345 ms after a 3 s busy pause, PyTorch (many
small allocations that glibc keeps) 205 and 211-235 ms. The untimed call leaves every
contender's timed call the memory a loop of calls would see.
"""
import time

import numpy as np

# Defaults, printed in the report header: repeat until ~0.2 s of measured time, at least 3 runs.
MIN_RUNS = 3
MAX_RUNS = 50
BUDGET_S = 0.2
WARMUP = 1
SLOW_S = 1.0
MIN_RUNS_SLOW = 2
SETTLE_S = 0.005     # pause before each timed call with more than one thread (see above)
QUIESCE_MAX_S = 0.5  # then, at every thread count, wait for the other threads to go idle ...
QUIESCE_WINDOW_S = 0.002   # ... judged over windows of this long ...
QUIESCE_FRAC = 0.05        # ... in which they used under this fraction of a core
REWARM_S = 0.2       # a contender idle longer than this gets one untimed call first (see above)


def settle(seconds):
    """Busy-wait `seconds` on the calling thread (see the module docstring: a sleep would let
    the caller's virtual CPU halt and charge its wake-up to the next timed call)."""
    t_end = time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        pass


def quiesce(min_s, max_s=QUIESCE_MAX_S, window_s=QUIESCE_WINDOW_S, busy_frac=QUIESCE_FRAC):
    """Busy-wait at least `min_s`, then until the process's other threads (the runtimes'
    pools, TensorFlow's background work) used under `busy_frac` of a core over the last
    `window_s`, or `max_s` in all. Returns the seconds waited. CPU times from
    CLOCK_PROCESS_CPUTIME_ID (every thread) minus CLOCK_THREAD_CPUTIME_ID (the caller)."""
    t0 = time.perf_counter()
    settle(min_s)
    while time.perf_counter() - t0 < max_s:
        w0, p0, c0 = time.perf_counter(), time.process_time(), time.thread_time()
        settle(window_s)
        others = (time.process_time() - p0) - (time.thread_time() - c0)
        if others <= busy_frac * (time.perf_counter() - w0):
            break
    return time.perf_counter() - t0


def stats(times):
    t = np.sort(np.asarray(times, dtype=np.float64))
    q1, med, q3 = np.percentile(t, [25, 50, 75])
    return {"median_s": float(med), "q1_s": float(q1), "q3_s": float(q3),
            "min_s": float(t[0]), "max_s": float(t[-1]), "runs": int(len(t)),
            "times_s": [float("%.4g" % x) for x in times]}   # in call order


def race(fns, min_runs=MIN_RUNS, max_runs=MAX_RUNS, budget=BUDGET_S, warmup=WARMUP,
         slow_s=SLOW_S, min_runs_slow=MIN_RUNS_SLOW, settle_s=0.0, rewarm_s=REWARM_S,
         probe=None, probes=None):
    """Time `fns` (name -> zero-argument callable), interleaved, pausing `settle_s` (untimed)
    before each timed call. Returns name -> stats dict, or name -> {"error": "..."} when a
    contender raised (its number is then never reported). With `probe` (peak.Probe), its
    result at the start of every round is appended to the list `probes`: what the machine
    itself delivered while the round ran (benchmarks/NOTES.md, 2026-12-08)."""
    out, live, need, last = {}, {}, {}, {}
    for name, fn in fns.items():
        try:
            t0 = time.perf_counter()
            for _ in range(warmup):
                fn()
            slow = warmup > 0 and (time.perf_counter() - t0) / warmup >= slow_s
            last[name] = time.perf_counter()
            need[name] = min(min_runs, min_runs_slow) if slow else min_runs
            live[name] = fn
        except Exception as e:  # a contender that fails gets a note, not a number
            out[name] = {"error": f"{type(e).__name__}: {e}"[:300]}
    times = {name: [] for name in live}
    while live:
        if probe is not None:
            quiesce(0.0)    # the other runtimes' threads idle, as for a timed call
            probes.append(probe())
        for name in list(live):
            fn = live[name]
            if time.perf_counter() - last[name] > rewarm_s:
                try:
                    fn()
                except Exception:
                    pass   # the timed call below reports it
            quiesce(settle_s)
            try:
                t0 = time.perf_counter()
                fn()
                last[name] = t0 + (dt := time.perf_counter() - t0)
            except Exception as e:
                out[name] = {"error": f"{type(e).__name__}: {e}"[:300]}
                del live[name]
                continue
            ts = times[name]
            ts.append(dt)
            if len(ts) >= max_runs or (len(ts) >= need[name] and sum(ts) >= budget):
                out[name] = stats(ts)
                del live[name]
    return out


def loop(fn, budget=BUDGET_S, min_runs=5, max_runs=200):
    """Stats of `fn` called back to back, alone (one untimed call first): what a loop of calls
    in a user's script sees, with its data and code still in the caches. The report sets it
    beside the interleaved rounds of `race`, where the other contenders run between two calls
    (benchmarks/NOTES.md, 2026-12-08: B = 1 rows)."""
    fn()
    ts = []
    while len(ts) < max_runs and (len(ts) < min_runs or sum(ts) < budget):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return stats(ts)


def per_call_us(fn, calls=None, batches=5, target_s=0.05):
    """Median per-call time in microseconds of a very cheap call: `batches` batches of `calls`
    back-to-back calls (calls chosen so one batch takes about `target_s`)."""
    fn()
    if calls is None:
        t0 = time.perf_counter()
        n = 0
        while time.perf_counter() - t0 < 0.01 and n < 10000:
            fn()
            n += 1
        per = (time.perf_counter() - t0) / max(n, 1)
        calls = int(min(20000, max(3, target_s / max(per, 1e-9))))
    res = []
    for _ in range(batches):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        res.append((time.perf_counter() - t0) / calls * 1e6)
    res.sort()
    return {"median_us": res[len(res) // 2], "min_us": res[0], "max_us": res[-1],
            "calls_per_batch": calls, "batches": batches}
