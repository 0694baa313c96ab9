"""The machine's bounds, measured at run time on the CPU `make bench` runs on (issue 20):

- ``fma_peak(threads)``: float32 FLOP/s of a register-blocked FMA loop with the widest vectors
  the CPU has (AVX-512, else AVX2), on `threads` threads at once; float64's is half.
- ``read_bandwidth(nbytes, threads)``: bytes/s of summing a buffer of `nbytes` again and again
  (one buffer per thread): an L2-sized buffer gives the L2 bandwidth, a larger one the L3's.

benchmarks/peak.c is compiled with the system C compiler (``cc``) into a temporary shared
library on first use; attnlstm itself is not involved. Each figure is the best of a few runs.
"""
import ctypes
import os
import shutil
import subprocess
import tempfile
import threading
import time

import numpy as np

_LIB = []


def _lib():
    if _LIB:
        return _LIB[0]
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise RuntimeError("no C compiler (cc/gcc) to build benchmarks/peak.c")
    src = os.path.join(os.path.dirname(__file__), "peak.c")
    # Built in a temporary folder that is removed once loaded (the mapping outlives the file);
    # every bench worker builds its own.
    with tempfile.TemporaryDirectory(prefix="attnlstm-peak-") as tmp:
        out = os.path.join(tmp, "peak.so")
        subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", out, src], check=True)
        lib = ctypes.CDLL(out)
    for name in ("al_fma_avx512_f32", "al_fma_avx2_f32"):
        getattr(lib, name).restype = ctypes.c_double
        getattr(lib, name).argtypes = [ctypes.c_long, ctypes.POINTER(ctypes.c_float)]
    for name in ("al_read_avx512", "al_read_avx2"):
        getattr(lib, name).restype = ctypes.c_double
        getattr(lib, name).argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_long,
                                       ctypes.POINTER(ctypes.c_float)]
    lib.al_cpu_has.argtypes = [ctypes.c_char_p]
    _LIB.append(lib)
    return lib


def isa():
    """The vector width the measurements use: the widest the CPU has ("avx512", "avx2" or None),
    or AVX2 when ATTNLSTM_ISA=avx2 restricts attnlstm to it (its bound is then AVX2's peak)."""
    lib = _lib()
    forced = os.environ.get("ATTNLSTM_ISA", "").strip().lower()
    if lib.al_cpu_has(b"avx512f") and forced not in ("avx2", "generic"):
        return "avx512"
    if lib.al_cpu_has(b"avx2") and lib.al_cpu_has(b"fma"):
        return "avx2"
    return None


def _parallel(fn, threads):
    """Runs fn() on `threads` threads started together; returns (sum of results, wall s)."""
    barrier = threading.Barrier(threads + 1)
    res = [0.0] * threads

    def run(i):
        barrier.wait()
        res[i] = fn()
    ts = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in ts:
        t.join()
    return sum(res), time.perf_counter() - t0


def fma_peak(threads=1, seconds=0.2, repeats=3):
    """Best float32 FLOP/s over `repeats` runs of about `seconds` each (None without AVX2)."""
    kind = isa()
    if kind is None:
        return None
    lib = _lib()
    f = lib.al_fma_avx512_f32 if kind == "avx512" else lib.al_fma_avx2_f32
    sink = ctypes.c_float()
    f(100000, ctypes.byref(sink))
    t0 = time.perf_counter()
    f(2000000, ctypes.byref(sink))
    iters = max(1000, int(2000000 * seconds / (time.perf_counter() - t0)))
    best = 0.0
    for _ in range(repeats):
        w, dt = _parallel(lambda: f(iters, ctypes.byref(ctypes.c_float())), threads)
        best = max(best, w / dt)
    return best


def read_bandwidth(nbytes, threads=1, seconds=0.15, repeats=3):
    """Best bytes/s of repeatedly summing a private buffer of `nbytes` per thread."""
    kind = isa()
    if kind is None:
        return None
    lib = _lib()
    f = lib.al_read_avx512 if kind == "avx512" else lib.al_read_avx2
    n = max(64, (nbytes // 4) // 64 * 64)
    bufs = [np.ones(n, np.float32) for _ in range(threads)]
    sink = ctypes.c_float()
    t0 = time.perf_counter()
    f(bufs[0].ctypes.data, n, 4, ctypes.byref(sink))
    reps = max(4, int(4 * seconds / (time.perf_counter() - t0)))
    best = 0.0
    for _ in range(repeats):
        it = iter(range(threads))
        lock = threading.Lock()

        def one():
            with lock:
                b = bufs[next(it)]
            return f(b.ctypes.data, n, reps, ctypes.byref(ctypes.c_float()))
        w, dt = _parallel(one, threads)
        best = max(best, w / dt)
    return best


class Probe:
    """A short, fixed piece of work timed on the calling thread between the contenders' calls
    (timing.race's `probe`): an FMA loop and a read of a 4 MB buffer (L3-resident), each run
    twice and the second run timed (right after a kernel call, a single short run gave AVX2's
    FMA loop 40-90% of its rate: the core's wide units wake up first), as FLOP/s and bytes/s.
    About 0.3 ms a round. If the machine itself slows down during a row (another tenant on the
    physical core or its L3, a clock change: nothing this process's CPU counters show), the
    probe slows down with both engines; if the probe holds while one engine slows, the cause
    is in that engine (benchmarks/NOTES.md, 2026-12-08)."""

    FMA_ITERS = 40000

    def __init__(self):
        self.kind = isa()
        if self.kind is not None:
            lib = _lib()
            self._fma = lib.al_fma_avx512_f32 if self.kind == "avx512" else lib.al_fma_avx2_f32
            self._read = lib.al_read_avx512 if self.kind == "avx512" else lib.al_read_avx2
            self._buf = np.ones(1 << 20, np.float32)
            self._sink = ctypes.c_float()
            self()      # first touch of the buffer and the code

    def __call__(self):
        """{"fma_gflops", "l3_read_gbs"} of one probe (None without AVX2)."""
        if self.kind is None:
            return None
        sink = ctypes.byref(self._sink)
        self._fma(self.FMA_ITERS, sink)
        t0 = time.perf_counter()
        w = self._fma(self.FMA_ITERS, sink)
        t1 = time.perf_counter()
        self._read(self._buf.ctypes.data, self._buf.size, 1, sink)
        t2 = time.perf_counter()
        b = self._read(self._buf.ctypes.data, self._buf.size, 1, sink)
        t3 = time.perf_counter()
        return {"fma_gflops": round(w / (t1 - t0) / 1e9, 1),
                "l3_read_gbs": round(b / (t3 - t2) / 1e9, 1)}


def cache_sizes():
    """(L2 bytes per core, L3 bytes) from sysfs, or defaults of 1 MiB / 32 MiB."""
    def read(index):
        try:
            with open(f"/sys/devices/system/cpu/cpu0/cache/index{index}/size") as fh:
                s = fh.read().strip()
            return int(s[:-1]) * (1024 if s.endswith("K") else 1024 * 1024)
        except (OSError, ValueError):
            return None
    return read(2) or 1 << 20, read(3) or 32 << 20


def measure(threads):
    """All bounds for `threads` threads, as a dict for results/bench.json."""
    l2, l3 = cache_sizes()
    peak = fma_peak(threads)
    return {"isa": isa(), "fma_peak_f32_gflops": None if peak is None else peak / 1e9,
            "fma_peak_f64_gflops": None if peak is None else peak / 2e9,
            "l2_bytes": l2, "l3_bytes": l3,
            "l2_read_gbs": (read_bandwidth(l2 // 2, threads) or 0) / 1e9,
            "l3_read_gbs": (read_bandwidth(min(l3 // (2 * threads), 64 << 20), threads) or 0) / 1e9}


if __name__ == "__main__":
    for n in (1, os.cpu_count() or 1):
        print(n, measure(n))
