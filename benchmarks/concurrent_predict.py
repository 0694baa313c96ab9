"""Throughput of concurrent `predict` callers on one model (issue 22 item 7, issue 20).

    python -m benchmarks.concurrent_predict [--threads 8] [--batch 16] [--seconds 3]

One model (LSTM(H=64) over (T=20, D=16), then Dense(8); --units/--steps change H and T); N Python threads each call
`model.predict(x, batch_size=B)` in a loop for a fixed wall time; prints calls per second in
total and the mean latency, for 1 caller and for N, interleaved `--rounds` times (medians).
"""
import argparse
import statistics
import threading
import time

import numpy as np


def measure(model, xs, n, seconds):
    counts = [0] * n
    stop = threading.Event()
    start = threading.Barrier(n + 1)

    def caller(i):
        start.wait()
        while not stop.is_set():
            model.predict(xs[i], batch_size=xs[i].shape[0])
            counts[i] += 1

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    start.wait()
    t0 = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for th in threads:
        th.join()
    dt = time.perf_counter() - t0
    return sum(counts) / dt


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--units", type=int, default=64, help="LSTM units H")
    p.add_argument("--steps", type=int, default=20, help="timesteps T")
    p.add_argument("--budget", type=int, default=None, help="attnlstm.set_num_threads (default: as is)")
    a = p.parse_args(argv)
    import attnlstm
    from attnlstm import layers
    if a.budget:
        attnlstm.set_num_threads(a.budget)
    inp = attnlstm.Input((a.steps, 16))
    model = attnlstm.Model(inp, layers.Dense(8)(layers.LSTM(a.units)(inp)))
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((a.batch, a.steps, 16)).astype(np.float32) for _ in range(a.threads)]
    model.predict(xs[0], batch_size=a.batch)
    one, many = [], []
    for _ in range(a.rounds):
        one.append(measure(model, xs, 1, a.seconds))
        many.append(measure(model, xs, a.threads, a.seconds))
    o, m = statistics.median(one), statistics.median(many)
    print("attnlstm %s, budget %d threads, B=%d, T=%d, H=%d" % (
        attnlstm.__file__, attnlstm.get_num_threads(), a.batch, a.steps, a.units))
    print("1 caller : %8.0f calls/s (%.3f ms per call)" % (o, 1e3 / o))
    print("%d callers: %8.0f calls/s in total (%.3f ms per call each), %.2fx one caller"
          % (a.threads, m, 1e3 * a.threads / m, m / o))


if __name__ == "__main__":
    main()
