"""The machine's GEMM rate at the current thread count: NumPy matmul of two n x n matrices
(NumPy's OpenBLAS, pinned by OPENBLAS_NUM_THREADS like attnlstm's). Best of `repeats` runs after a
warm-up, in GFLOP/s (2 n^3 flops per product)."""
import time

import numpy as np


def gemm_gflops(dtype, n=2048, repeats=3):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    c = np.empty((n, n), dtype)
    np.matmul(a, b, out=c)
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.matmul(a, b, out=c)
        ts.append(time.perf_counter() - t0)
    ts.sort()
    f = 2.0 * n ** 3
    return {"n": n, "best_gflops": f / ts[0] / 1e9, "median_gflops": f / ts[len(ts) // 2] / 1e9}
