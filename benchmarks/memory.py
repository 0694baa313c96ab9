"""Peak memory of one training step, one contender per fresh process.

Method (printed with the results): in a new process pinned like the timing runs, build the model
and inputs, run one warm-up step (library initialisation, graph tracing, optimizer slots), then
hand freed heap pages back to the OS (gc.collect + glibc malloc_trim(0), so the allocator's cache
of the warm-up's freed blocks does not hide the step's needs), reset the kernel's resident-set
high-water mark (write "5" to /proc/self/clear_refs), read the
current RSS, run one step and read VmHWM from /proc/self/status: peak = VmHWM - RSS before the step,
i.e. the extra resident memory the step needs (activations saved for backward, gradients, scratch,
allocator growth). Same method for every contender; it counts C-level mallocs that tracemalloc
does not see. For attnlstm, NumPy allocations are also traced with tracemalloc (peak bytes during
the step), which is exact for arrays but blind to the C kernels' own scratch.
If clear_refs is not writable, the warm-up step is skipped and ru_maxrss is used instead.

Usage (internal): python -m benchmarks.memory FAMILY OP CONTENDER B T D H THREADS
prints one JSON line.
"""
import json
import os
import resource
import sys
import tracemalloc


def _status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def _reset_hwm():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _give_back():
    """Return freed heap pages to the OS (glibc malloc_trim), so that memory the warm-up step
    freed but the allocator kept does not hide the measured step's peak."""
    import ctypes
    import gc
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def main(argv):
    family, op, contender = argv[:3]
    shape = dict(zip(("B", "T", "D", "H"), map(int, argv[3:7])))
    threads = int(argv[7])
    from . import common
    from .run import FAMILIES
    fw = {"attnlstm": ("attnlstm",), "torch": ("attnlstm", "torch"),
          "keras": ("attnlstm", "keras"), "keras-jit": ("attnlstm", "keras")}[contender]
    common.pin_threads(threads, fw)
    mod = FAMILIES[family]
    import numpy as np
    d = mod.make_data(shape, np.float32)
    res = {"family": family, "op": op, "contender": contender, "shape": shape, "threads": threads}
    try:
        fn = mod.SETUP[contender](op, d)
    except common.NotAvailable as e:
        res["note"] = str(e)
        print(json.dumps(res))
        return
    ok = _reset_hwm()
    if ok:
        fn()                              # warm-up step
        _give_back()
        ok = _reset_hwm()
    before = _status_kb("VmRSS")
    base_maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if contender == "attnlstm":
        tracemalloc.start()
    fn()
    if contender == "attnlstm":
        res["tracemalloc_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2 ** 20
        tracemalloc.stop()
    if ok:
        res["peak_mb"] = (_status_kb("VmHWM") - before) / 1024
        res["method"] = "VmHWM after clear_refs minus VmRSS before the step"
    else:
        res["peak_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_maxrss) / 1024
        res["method"] = "ru_maxrss delta (clear_refs unavailable)"
    res["rss_before_mb"] = before / 1024
    print(json.dumps(res))


if __name__ == "__main__":
    main(sys.argv[1:])
