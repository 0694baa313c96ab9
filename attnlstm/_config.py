"""attnlstm.show_config(): the CPU, the kernel path chosen at import and why, the BLAS and the
thread budget, like numpy.show_config()."""
import os
import platform


def _cpu():
    """CPU model name and its full flag list, from /proc/cpuinfo where there is one."""
    model, flags = None, []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model is None:
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = value.split()
                if model is not None and flags:
                    break
    except OSError:
        pass
    return model or platform.processor() or platform.machine() or "unknown", flags


_WHY = {
    "avx512": "AVX-512F packed tiles (6 x 64 float32), FMA",
    "avx2": "AVX2 packed tiles (3 x 32 float32), FMA",
    "generic": "portable C tiles (3 x 16 float32, the compiler's baseline vectors), no FMA",
}


def config():
    """The configuration as a dict of dicts (what ``show_config(mode="dicts")`` returns).

    Returns:
        dict with keys ``"cpu"`` (``model``, ``flags``: every flag the OS reports,
        ``simd_flags``: those the kernels look at), ``"kernel_path"`` (``isa``: ``"avx512"``,
        ``"avx2"`` or ``"generic"``; ``cpu_best``; ``requested``: ``ATTNLSTM_ISA`` or None;
        ``reason``; ``description``), ``"blas"`` (``name``, ``version``, ``config``,
        ``corename``, ``threading``, ``num_threads``) and ``"threads"`` (``num_threads``:
        attnlstm's thread budget, ``OPENBLAS_NUM_THREADS``, ``note``).
    """
    from . import _core
    import scipy_openblas32

    isa = _core.isa_info()
    blas = _core.blas_info()
    model, flags = _cpu()
    if isa["requested"]:
        reason = "forced by ATTNLSTM_ISA=%s (this CPU's widest is %s)" % (isa["requested"],
                                                                          isa["cpu_best"])
    else:
        reason = "the widest path this CPU supports (ATTNLSTM_ISA not set)"
    return {
        "cpu": {"model": model, "flags": flags, "simd_flags": list(isa["cpu_flags"])},
        "kernel_path": {"isa": isa["isa"], "cpu_best": isa["cpu_best"],
                        "requested": isa["requested"], "reason": reason,
                        "description": _WHY[isa["isa"]]},
        "blas": {"name": "OpenBLAS (scipy-openblas32)", "version": scipy_openblas32.__version__,
                 "config": blas["config"].strip(), "corename": blas["corename"],
                 "threading": blas["threading"], "num_threads": blas["num_threads"]},
        "threads": {"num_threads": _core.get_num_threads(),
                    "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
                    "note": "one budget for the BLAS and attnlstm's own thread teams "
                            "(attnlstm.set_num_threads); results are the same bits for any "
                            "count"},
    }


def show_config(mode="stdout"):
    """Print (or return) attnlstm's build and run-time configuration, like
    ``numpy.show_config()``: the CPU model and flags, the kernel path chosen at import and why
    (``ATTNLSTM_ISA`` = ``avx512`` | ``avx2`` | ``generic`` forces one; unset, the CPU's widest),
    the BLAS and its threading, and attnlstm's thread budget.

    Args:
        mode: ``"stdout"`` prints a readable report and returns None; ``"dicts"`` returns the
            report as a dict of dicts (see :func:`attnlstm._config.config`) and prints nothing.

    Returns:
        None, or the dict with ``mode="dicts"``.

    Raises:
        ValueError: mode is neither ``"stdout"`` nor ``"dicts"``.
    """
    if mode not in ("stdout", "dicts"):
        raise ValueError("show_config: `mode` must be 'stdout' or 'dicts', got %r." % (mode,))
    cfg = config()
    if mode == "dicts":
        return cfg
    c, k, b, t = cfg["cpu"], cfg["kernel_path"], cfg["blas"], cfg["threads"]
    lines = [
        "CPU:",
        "  model: %s" % c["model"],
        "  SIMD flags used by attnlstm: %s" % (" ".join(c["simd_flags"]) or "(none)"),
        "  all flags: %s" % (" ".join(c["flags"]) or "(not available)"),
        "Kernel path (ATTNLSTM_ISA = avx512 | avx2 | generic, read at import):",
        "  path: %s  (%s)" % (k["isa"], k["description"]),
        "  why: %s" % k["reason"],
        "BLAS:",
        "  %s %s" % (b["name"], b["version"]),
        "  config: %s" % b["config"],
        "  core: %s, threading: %s, threads: %d" % (b["corename"], b["threading"],
                                                    b["num_threads"]),
        "Threads:",
        "  attnlstm.get_num_threads(): %d  (OPENBLAS_NUM_THREADS=%s)" % (
            t["num_threads"], t["OPENBLAS_NUM_THREADS"]),
        "  %s" % t["note"],
    ]
    print("\n".join(lines))
    return None
