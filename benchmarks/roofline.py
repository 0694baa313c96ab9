"""The machine's GEMM rate at the current thread count: the best of NumPy matmul (OpenBLAS) and,
when installed, torch.mm (MKL / oneDNN) on two n x n matrices, pinned by OPENBLAS/OMP/MKL_NUM_THREADS
and torch.set_num_threads like every contender. Best of `repeats` runs after a warm-up, in GFLOP/s
(2 n^3 flops per product). NumPy's OpenBLAS alone can sit well below the core's FMA peak (e.g. on
AVX-512 AMD EPYC), which made attnlstm's LSTM read > 100% of "the roofline"; the faster library is
the better estimate of what the machine does."""
import time

import numpy as np

from .common import have


def _best(fn, repeats):
    fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    ts.sort()
    return ts


def gemm_gflops(dtype, n=2048, repeats=3):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    c = np.empty((n, n), dtype)
    f = 2.0 * n ** 3
    ts = _best(lambda: np.matmul(a, b, out=c), repeats)
    out = {"n": n, "numpy_gflops": f / ts[0] / 1e9, "best_gflops": f / ts[0] / 1e9,
           "median_gflops": f / ts[len(ts) // 2] / 1e9, "source": "numpy"}
    if have("torch"):
        import torch
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        tc = torch.empty_like(ta)
        tt = _best(lambda: torch.mm(ta, tb, out=tc), repeats)
        out["torch_gflops"] = f / tt[0] / 1e9
        if out["torch_gflops"] > out["best_gflops"]:
            out.update(best_gflops=out["torch_gflops"], median_gflops=f / tt[len(tt) // 2] / 1e9,
                       source="torch")
    return out
