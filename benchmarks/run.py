"""attnlstm benchmark harness (issue 7): attnlstm vs PyTorch vs Keras 3 (TensorFlow), CPU.

    python -m benchmarks              full grid (~10-15 min on 2 cores)
    python -m benchmarks --quick      a handful of shapes (smoke test, ~1-2 min)
    python -m benchmarks --quick --dry-run   plan + one untimed-quality pass, seconds

The parent process starts one worker subprocess per thread setting (1 thread, then all cores) with
OMP/OPENBLAS/MKL_NUM_THREADS set before anything initialises, then one subprocess per memory
measurement, then prints the tables and the summary against the issue's targets and writes
results/bench.json.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

from . import common, ops_attention, ops_custom, ops_gru, ops_lstm, ops_mha, ops_vae, timing
from .common import CONTENDERS, NotAvailable

FAMILIES = {"lstm": ops_lstm, "attention": ops_attention, "mha": ops_mha, "vae": ops_vae,
            "gru": ops_gru}

D_LSTM = 64
ATT_B = 8


def grid(quick):
    """List of cases: (family, op, dtype name, shape dict)."""
    cases = []
    if quick:
        lstm_shapes = [(1, 50, 64), (8, 50, 256), (64, 50, 512)]
        att_shapes = [(64, 64)]
        heads = [8]
        vae_shapes = [(8, 50, 64)]
    else:
        lstm_shapes = [(B, T, H) for B in (1, 8, 64) for T in (50, 200) for H in (64, 256, 512)]
        att_shapes = [(T, d) for T in (64, 256) for d in (64, 256)]
        heads = [1, 8]
        vae_shapes = [(8, 50, 64), (64, 50, 256)]
    for op, dt in (("lstm_fwd", "float32"), ("lstm_fwd", "float64"), ("lstm_fwdbwd", "float32")):
        for B, T, H in lstm_shapes:
            if dt == "float64" and not quick and T != 50:
                continue   # float64: T=50 only (T=200 costs 4x and scales the same), keeps <15 min
            cases.append(("lstm", op, dt, {"B": B, "T": T, "D": D_LSTM, "H": H}))
    for op in ("gru_fwd", "gru_fwdbwd", "bilstm_fwd", "bilstm_fwdbwd"):
        for B, T, H in lstm_shapes:
            if op.startswith("bilstm") and not quick and T != 50:
                continue   # Bidirectional: T=50 only (two LSTMs; T=200 scales the same)
            cases.append(("gru", op, "float32", {"B": B, "T": T, "D": D_LSTM, "H": H}))
    for op in ("dot_fwd", "dot_fwdbwd", "add_fwd", "add_fwdbwd"):
        for T, d in att_shapes:
            cases.append(("attention", op, "float32", {"B": ATT_B, "Tq": T, "Tv": T, "d": d}))
    for op in ("mha_fwd", "mha_fwdbwd"):
        for T, d in att_shapes:
            for nh in heads:
                cases.append(("mha", op, "float32",
                              {"B": ATT_B, "Tq": T, "Tv": T, "d": d, "heads": nh}))
    vae_op = ops_vae.step_op()   # "vae_step", or "ae_step" while attnlstm has no Sampling layer
    for B, T, H in vae_shapes:
        cases.append(("vae", vae_op, "float32", {"B": B, "T": T, "D": D_LSTM, "H": H}))
    return cases


# one small shape per op family for the equality check (same weights copied into every contender)
CHECK_SHAPES = {
    "lstm": {"B": 2, "T": 7, "D": 5, "H": 6},
    "gru": {"B": 2, "T": 7, "D": 5, "H": 6},
    "attention": {"B": 2, "Tq": 5, "Tv": 6, "d": 8},
    "mha": {"B": 2, "Tq": 5, "Tv": 6, "d": 8, "heads": 2},
    "vae": {"B": 2, "T": 5, "D": 3, "H": 4},
}
RTOL = {"float32": 2e-4, "float64": 1e-9}


def memory_cases(quick):
    vae_op = ops_vae.step_op()
    if quick:
        return [("lstm", "lstm_fwdbwd", (8, 50, D_LSTM, 256)), ("vae", vae_op, (8, 50, D_LSTM, 64))]
    return [("lstm", "lstm_fwdbwd", (64, 200, D_LSTM, 256)), ("vae", vae_op, (64, 50, D_LSTM, 256))]


def shape_str(shape):
    return " ".join(f"{k}={v}" for k, v in shape.items())


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---- worker: everything at one thread count, in one process -------------------------------------

def check_family(family, op, dtype, contenders):
    """Run every available contender once on the check shape; compare with the first one that ran
    (attnlstm when it exists). Returns contender -> {"ok", "err", "note"}."""
    mod = FAMILIES[family]
    d = mod.make_data(CHECK_SHAPES[family], np.dtype(dtype), seed=1)
    outs, res = {}, {}
    for c in contenders:
        try:
            outs[c] = [common.to_numpy(o) if o is not None else None
                       for o in setup_fn(mod, c)(op, d)()]
        except NotAvailable as e:
            res[c] = {"ok": None, "note": str(e)}
        except Exception as e:
            res[c] = {"ok": False, "note": f"{type(e).__name__}: {e}"[:300]}
    full = [c for c in outs if len(outs[c]) > 1 or family == "vae" or not op.endswith("fwdbwd")]
    if not full:
        return res
    ref_name = full[0]
    ref = outs[ref_name]
    for c, o in outs.items():
        if c == ref_name:
            res[c] = {"ok": True, "err": 0.0, "note": "reference"}
            continue
        if family != "vae" and len(o) == 1 and len(ref) > 1:   # train_on_batch: compare the loss
            err, ok = common.close(mod.ref_loss(op, d, ref), float(np.ravel(o[0])[0]), RTOL[dtype])
            res[c] = {"ok": ok, "err": err, "note": f"loss vs {ref_name}"}
            continue
        errs, missing = [], 0
        for r, g in zip(ref, o):
            if r is None or g is None:
                missing += 1
                continue
            errs.append(common.close(r, np.reshape(g, np.shape(r)) if np.size(g) == np.size(r)
                                     else g, RTOL[dtype])[0])
        err = max(errs) if errs else float("inf")
        note = f"vs {ref_name}" + (f", {missing} output(s) not returned" if missing else "")
        res[c] = {"ok": bool(err <= RTOL[dtype]), "err": err, "note": note}
    return res


def setup_fn(mod, c):
    """The contender's setup function for this op family (NotAvailable if it has none)."""
    fn = mod.SETUP.get(c)
    if fn is None:
        raise NotAvailable(f"{common.LABELS[c]}: no such op")
    return fn


def _status(v):
    if v.get("ok"):
        return "ok"
    if v.get("ok") is None:
        return "n/a"
    return "MISMATCH" if v.get("err") is not None else "ERROR"


def tiny_call(contenders):
    d = ops_lstm.make_data({"B": 1, "T": 1, "D": 8, "H": 8}, np.float32)
    out = {}
    for c in contenders:
        try:
            fn = ops_lstm.SETUP[c]("lstm_fwd", d)
            out[c] = timing.per_call_us(fn)
        except NotAvailable as e:
            out[c] = {"note": str(e)}
        except Exception as e:
            out[c] = {"error": f"{type(e).__name__}: {e}"[:300]}
    return out


def measure_bounds(threads):
    """The machine's FMA peak and L2/L3 read bandwidth on `threads` threads (peak.py), or a
    note why not (no C compiler, no AVX2)."""
    from . import peak
    try:
        b = peak.measure(threads)
    except Exception as e:   # no compiler: the rows then have no bound, the report says so
        return {"error": f"{type(e).__name__}: {e}"[:300]}
    if b.get("fma_peak_f32_gflops") is None:
        return {"error": "no AVX2/AVX-512: no FMA peak measured", **b}
    log(f"[{threads} thr] FMA peak ({b['isa']}) {b['fma_peak_f32_gflops']:.1f} GFLOP/s float32, "
        f"L2 read {b['l2_read_gbs']:.1f} GB/s, L3 read {b['l3_read_gbs']:.1f} GB/s")
    return b


def available_contenders(wanted):
    ok = []
    for c in wanted:
        if c == "torch" and not common.have("torch"):
            continue
        if c.startswith("keras") and not (common.have("tensorflow") and common.have("keras")):
            continue
        if c == "onnxruntime" and not (common.have("onnx") and common.have("onnxruntime")):
            continue
        ok.append(c)
    return ok


def worker(args):
    threads = args.threads
    contenders = available_contenders(args.contenders)
    fw = ["attnlstm"] + (["torch"] if "torch" in contenders else []) + \
        (["keras"] if any(c.startswith("keras") for c in contenders) else [])
    out = {"threads": threads, "pinning": common.pin_threads(threads, fw),
           "contenders": contenders}
    if not args.dry_run:
        from . import roofline
        n = 1024 if args.quick else 2048
        out["roofline"] = {"float32": roofline.gemm_gflops(np.float32, n),
                           "float64": roofline.gemm_gflops(np.float64, n)}
        log(f"[{threads} thr] SGEMM {out['roofline']['float32']['best_gflops']:.1f} GFLOP/s, "
            f"DGEMM {out['roofline']['float64']['best_gflops']:.1f} GFLOP/s")
        out["tiny_call_us"] = tiny_call(contenders)
    out["bounds"] = measure_bounds(threads)
    probe = None
    if not args.dry_run:
        from . import peak
        try:
            probe = peak.Probe()
        except Exception as e:   # no compiler: no probe, the rows say nothing of the machine
            log(f"[{threads} thr] no machine probe: {type(e).__name__}: {e}")
    cases = grid(args.quick)
    if args.dry_run:
        seen, few = set(), []
        for c in cases:                       # the first shape of every op and dtype
            if c[:3] not in seen:
                seen.add(c[:3])
                few.append(c)
        cases = few
    checks, records = {}, []
    t_start = time.perf_counter()
    for family, op, dtype, shape in cases:
        key = f"{family}/{op}/{dtype}"
        if key not in checks:
            checks[key] = check_family(family, op, dtype, contenders)
            log(f"[{threads} thr] check {key}: " + ", ".join(
                f"{c} {_status(v)}"
                + ("" if v.get("err") is None else " (%.1e)" % v["err"])
                for c, v in checks[key].items()))
        mod = FAMILIES[family]
        t_row = time.perf_counter()
        load0 = common.cpu_counters()
        d = mod.make_data(shape, np.dtype(dtype))
        fns, results = {}, {}
        for c in contenders:
            chk = checks[key].get(c, {})
            if chk.get("ok") is False:
                results[c] = {"note": f"not timed: equality check {_status(chk)} (" + chk.get("note", "")
                              + (f", err {chk['err']:.1e}" if chk.get("err") is not None else "")
                              + ")"}
                continue
            try:
                fns[c] = setup_fn(mod, c)(op, d)
            except NotAvailable as e:
                results[c] = {"note": str(e)}
            except Exception as e:
                results[c] = {"error": f"setup {type(e).__name__}: {e}"[:300]}
        if args.dry_run:
            results.update(timing.race(fns, min_runs=1, max_runs=1, budget=0.0, warmup=0))
        else:
            warm = {c: (2 if c == "keras-jit" else 1) for c in fns}
            # compiled Keras traces on its first calls: warm it separately, then race everyone
            for c in fns:
                if warm[c] > 1:
                    try:
                        fns[c]()
                    except Exception:
                        pass
            probes = []
            results.update(timing.race(
                fns, settle_s=timing.SETTLE_S if threads > 1 else 0.0, probe=probe,
                probes=probes))
        loop = None
        if not args.dry_run and "attnlstm" in fns and "median_s" in results.get("attnlstm", {}) \
                and family in ("lstm", "gru") and shape.get("B") == 1:
            # B = 1 rows: also attnlstm alone, back to back (the report's "loop" fraction)
            try:
                loop = timing.loop(fns["attnlstm"])
            except Exception as e:
                loop = {"error": f"{type(e).__name__}: {e}"[:300]}
        del fns
        load = common.load_between(load0, common.cpu_counters())
        rec = {"family": family, "op": op, "dtype": dtype, "shape": shape, "threads": threads,
               "flops": mod.flops(op, shape), "results": results,
               "wall_s": time.perf_counter() - t_row}   # setup + warm-up + timing of the row
        if loop is not None:
            rec["attnlstm_loop"] = loop
        if load is not None:
            rec["load"] = load   # other processes' and the hypervisor's share during the row
        if not args.dry_run and probes and probes[0] is not None:
            rec["probe"] = probes   # peak.Probe at the start of every round
        records.append(rec)
        al = results.get("attnlstm", {})
        log(f"[{threads} thr] {op:12s} {dtype} {shape_str(shape):28s} " + "  ".join(
            f"{c}={r['median_s'] * 1e3:.3g}ms" if "median_s" in r else f"{c}=-"
            for c, r in results.items()) + f"  ({time.perf_counter() - t_start:.0f}s)")
    out["checks"] = checks
    out["records"] = records
    return out


# ---- parent ---------------------------------------------------------------------------------------

def run_worker_subprocess(threads, args):
    with tempfile.NamedTemporaryFile("r", suffix=".json", delete=False) as f:
        path = f.name
    cmd = [sys.executable, "-m", "benchmarks", "--worker", "--threads", str(threads),
           "--worker-out", path, "--contenders", ",".join(args.contenders)]
    if args.quick:
        cmd.append("--quick")
    env = common.thread_env(threads)
    subprocess.run(cmd, env=env, check=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    with open(path) as f:
        res = json.load(f)
    os.unlink(path)
    return res


def run_memory(args, threads):
    out = []
    for family, op, (B, T, D, H) in memory_cases(args.quick):
        for c in available_contenders(args.contenders):
            if c == "onnxruntime":
                continue                      # inference only: no training step to measure
            cmd = [sys.executable, "-m", "benchmarks.memory", family, op, c,
                   str(B), str(T), str(D), str(H), str(threads)]
            p = subprocess.run(cmd, env=common.thread_env(threads), capture_output=True, text=True,
                               cwd=os.path.dirname(os.path.dirname(__file__)))
            try:
                r = json.loads(p.stdout.strip().splitlines()[-1])
            except Exception:
                r = {"family": family, "op": op, "contender": c,
                     "error": (p.stderr.strip().splitlines() or ["no output"])[-1][:300]}
            log(f"[mem] {op} {c}: " + (f"{r['peak_mb']:.1f} MB" if "peak_mb" in r
                                       else r.get("note", r.get("error", "?"))))
            out.append(r)
    return out


def parse(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a handful of shapes (smoke test)")
    p.add_argument("--dry-run", action="store_true",
                   help="in-process, attnlstm, PyTorch and ONNX Runtime only, every 4th case, one call each, "
                        "no roofline/memory; checks the harness end to end in seconds")
    p.add_argument("--threads", type=int, default=None,
                   help="only this thread count (default: 1 and all cores)")
    p.add_argument("--contenders", default=",".join(CONTENDERS),
                   help="comma-separated subset of " + ",".join(CONTENDERS))
    p.add_argument("--out", default="results/bench.json")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument("--memory-only", action="store_true", help="only the peak-memory subprocesses")
    p.add_argument("--no-custom", action="store_true",
                   help="skip the custom-layer rows (attnlstm.ops + autograd, ops_custom.py)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--worker-out", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    a.contenders = [c for c in a.contenders.split(",") if c]
    unknown = set(a.contenders) - set(CONTENDERS)
    if unknown:
        p.error(f"unknown contenders {sorted(unknown)}; choose from {CONTENDERS}")
    return a


def main(argv=None):
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.worker:
        res = worker(args)
        with open(args.worker_out, "w") as f:
            json.dump(res, f)
        return 0
    from . import report
    t0 = time.perf_counter()
    ncores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    meta = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": platform.machine(),
            "processor": _cpu_name(), "cores": ncores, "python": sys.version.split()[0],
            "versions": common.versions(), "mode": "quick" if args.quick else "full",
            "repeats": (f"interleaved rounds; each contender at least {timing.MIN_RUNS} runs "
                        f"({timing.MIN_RUNS_SLOW} when its warm-up call took >= {timing.SLOW_S} s) "
                        f"and until {timing.BUDGET_S} s measured (max {timing.MAX_RUNS}), after "
                        f"{timing.WARMUP} warm-up call (2 for compiled Keras); with more than "
                        f"one thread an untimed {timing.SETTLE_S * 1e3:g} ms pause before every "
                        f"timed call, so no contender runs beside another's spinning idle "
                        f"threads; at every thread count a wait (up to "
                        f"{timing.QUIESCE_MAX_S:g} s) until the process's other threads are "
                        f"idle; a contender idle for more than {timing.REWARM_S:g} s makes one "
                        f"untimed call first (freed memory goes back to a VM's host)"),
            "attention_batch": ATT_B, "lstm_input_size": D_LSTM,
            "openblas_env": {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS_")}}
    meta.update(_attnlstm_config())
    log(f"CPU: {meta['processor']}; SIMD flags: {' '.join(meta['cpu_simd_flags'])}; "
        f"attnlstm kernel path: {meta['kernel_path']} ({meta['kernel_path_reason']})")
    if args.dry_run:
        args.contenders = [c for c in args.contenders if c in ("attnlstm", "torch", "onnxruntime")]
        args.threads = args.threads or 1
        os.environ.update({k: str(args.threads) for k in common.THREAD_ENV})
        meta["mode"] += " dry-run (one call per case, numbers not meaningful)"
        runs = [worker(args)]
        memory = []
    else:
        thread_list = [args.threads] if args.threads else sorted({1, ncores})
        runs = []
        for n in ([] if args.memory_only else thread_list):
            log(f"=== worker: {n} thread(s) ===")
            runs.append(run_worker_subprocess(n, args))
        memory = [] if args.no_memory else run_memory(args, max(thread_list))
    custom = [] if (args.dry_run or args.no_custom or args.memory_only) else \
        ops_custom.measure(quick=args.quick)
    meta["elapsed_s"] = time.perf_counter() - t0
    result = {"meta": meta, "runs": runs, "memory": memory, "custom_layers": custom}
    result["summary"] = report.summary(result)
    report.print_all(result)
    if custom:
        ops_custom.print_rows(custom)
    out = args.out
    if args.dry_run and out == "results/bench.json":
        out = "results/bench-dry-run.json"
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    with open(out, "w") as f:
        json.dump(result, f, indent=1, default=float)
    print(f"\nwrote {out} ({meta['elapsed_s']:.0f} s)")
    return 0


def _attnlstm_config():
    """The CPU's flags and attnlstm's kernel path (ATTNLSTM_ISA, inherited by the workers), read
    in a subprocess so this process loads no BLAS before the workers' thread settings."""
    code = "import json, attnlstm; print(json.dumps(attnlstm.show_config(mode='dicts')))"
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True, timeout=300).stdout
        cfg = json.loads(out.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError) as e:
        return {"cpu_flags": [], "cpu_simd_flags": [], "kernel_path": "unknown",
                "kernel_path_reason": f"attnlstm.show_config failed: {e}"}
    return {"cpu_flags": cfg["cpu"]["flags"], "cpu_simd_flags": cfg["cpu"]["simd_flags"],
            "kernel_path": cfg["kernel_path"]["isa"],
            "kernel_path_reason": cfg["kernel_path"]["reason"],
            "blas_core": cfg["blas"]["corename"]}


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()
