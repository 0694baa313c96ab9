"""Tables and the summary against issue 7's and issue 20's targets.

Issue 20's bounds (measured at run time by peak.py, per thread count, in run["bounds"]): every
row but the B=1 LSTM/GRU rows is held against the FMA peak (flops / peak FLOP/s of its dtype and
thread count: "F"); a B=1 LSTM/GRU row against the bandwidth of streaming the recurrent kernel U
(4*H*H*itemsize bytes; 3*H*H for the GRU, both directions' for a bidirectional LSTM) once per step, twice per step forward+backward (U in the forward, U^T in
the backward), from the L2 when each thread's share of U fits in one core's L2, else from the
L3 ("L2"/"L3"). The fraction is the bound's time over attnlstm's median time.
"""
import numpy as np

from .common import LABELS
from .run import _status

OP_TITLES = {"lstm_fwd": "LSTM forward", "lstm_fwdbwd": "LSTM forward+backward",
             "dot_fwd": "dot attention forward", "dot_fwdbwd": "dot attention forward+backward",
             "add_fwd": "additive attention forward",
             "add_fwdbwd": "additive attention forward+backward",
             "mha_fwd": "multi-head attention forward",
             "mha_fwdbwd": "multi-head attention forward+backward",
             "vae_step": "LSTM-VAE training step (fwd + bwd + Adam)",
             "ae_step": "LSTM autoencoder training step, deterministic z: the VAE without "
                        "Sampling/KL, which attnlstm lacks yet (fwd + bwd + Adam)"}
OP_TITLES.update(__import__("benchmarks.ops_gru", fromlist=["OPS"]).OPS)

MEMORY_METHOD = (
    "peak memory = extra resident memory of one training step, each contender in a fresh process "
    "pinned like the timing runs: one warm-up step, gc + malloc_trim(0) to return freed heap "
    "pages, reset the RSS high-water mark "
    "(/proc/self/clear_refs = 5), then VmHWM after the step minus VmRSS before it. "
    "attnlstm also: tracemalloc peak of NumPy allocations during the step.")


def fmt_t(s):
    if s < 1e-3:
        return f"{s * 1e6:.3g}us"
    if s < 1:
        return f"{s * 1e3:.3g}ms"
    return f"{s:.3g}s"


def cell(r, width):
    if "median_s" in r:
        txt = f"{fmt_t(r['median_s'])} [{fmt_t(r['q1_s'])},{fmt_t(r['q3_s'])}]"
    elif "note" in r:
        txt = r["note"]
    else:
        txt = "error: " + r.get("error", "?")
    return txt[:width].ljust(width)


def speed_ratio(results, c):
    """attnlstm speed / contender speed = contender time / attnlstm time (> 1: attnlstm faster)."""
    a, b = results.get("attnlstm", {}), results.get(c, {})
    if "median_s" in a and "median_s" in b:
        return b["median_s"] / a["median_s"]
    return None


# issue 20's targets
T20_PT_SMALL, T20_PT, T20_FMA, T20_BW, T20_SPEEDUP = 1.3, 1.0, 0.85, 0.70, 1.7
T20_FAMILIES = ("lstm", "gru", "attention", "mha")


def row_bound(rec, bounds):
    """(bound time in s, kind "F"/"L2"/"L3") of a record on its run's bounds, or (None, why)."""
    if not bounds or bounds.get("error") or not bounds.get("fma_peak_f32_gflops"):
        return None, (bounds or {}).get("error", "no bounds measured")
    sh, dt = rec["shape"], rec["dtype"]
    if rec["family"] in ("lstm", "gru") and sh.get("B") == 1:
        item = 8 if dt == "float64" else 4
        gates = 3 if rec["op"].startswith("gru") else 4
        # a bidirectional LSTM streams both directions' U
        ubytes = gates * sh["H"] * sh["H"] * item * (2 if rec["op"].startswith("bilstm") else 1)
        steps = sh["T"] * (2 if rec["op"].endswith("fwdbwd") else 1)
        share = ubytes / max(1, rec["threads"])
        if share <= bounds["l2_bytes"]:
            kind, gbs = "L2", bounds["l2_read_gbs"]
        else:
            kind, gbs = "L3", bounds["l3_read_gbs"]
        return steps * ubytes / (gbs * 1e9), kind
    peak = bounds["fma_peak_f64_gflops" if dt == "float64" else "fma_peak_f32_gflops"]
    return rec["flops"] / (peak * 1e9), "F"


def bound_fraction(rec, bounds):
    """(bound time / attnlstm time, kind) or (None, why)."""
    t, kind = row_bound(rec, bounds)
    a = rec["results"].get("attnlstm", {})
    if t is None or "median_s" not in a:
        return None, kind
    return t / a["median_s"], kind


def pt_target(rec):
    """Issue 20's PyTorch ratio target for a row: 1.3x at B <= 8, 1x above."""
    return T20_PT_SMALL if rec["shape"].get("B", 99) <= 8 else T20_PT


def pt_need(rec, bounds):
    """(fraction, kind) of its bound that attnlstm would have to reach for the row's PyTorch
    target: target x bound time / PyTorch's time. It tells a miss that more work could fix
    (a fraction attnlstm reaches on other rows) from one whose target asks for more than the
    machine has (near or above 100% of the measured peak or bandwidth); None when either
    number is missing."""
    t, kind = row_bound(rec, bounds)
    tt = rec["results"].get("torch", {}).get("median_s")
    if t is None or not tt:
        return None
    return pt_target(rec) * t / tt, kind


def loop_fraction(rec, bounds):
    """(bound time / attnlstm's back-to-back loop time, kind) of a B = 1 row that has the loop
    measured (run.py: attnlstm alone, calls back to back), else None."""
    t, kind = row_bound(rec, bounds)
    lp = (rec.get("attnlstm_loop") or {}).get("median_s")
    if t is None or not lp:
        return None
    return t / lp, kind


# A row's machine probe (median over its rounds) below these fractions of its run's usual: the
# machine itself was slow during the row. The L3 read varies more from round to round (what the
# previous call left in the L3): row medians of 78-90% in a run with no slow row.
MACHINE_SLOW_FMA = 0.9
MACHINE_SLOW_L3 = 0.7


def probe_reference(run):
    """(FMA GF/s, L3 GB/s) the machine probe (peak.Probe, one per round of every row) usually
    gives in this run: the 90th percentile of each over all the run's probes; None without."""
    f = [p["fma_gflops"] for rec in run["records"] for p in rec.get("probe") or []]
    m = [p["l3_read_gbs"] for rec in run["records"] for p in rec.get("probe") or []]
    if not f:
        return None
    return float(np.percentile(f, 90)), float(np.percentile(m, 90))


def machine_fraction(rec, ref):
    """(FMA, L3) of the row's median probe over the run's usual (probe_reference), or None."""
    pr = rec.get("probe")
    if not pr or ref is None:
        return None
    return (float(np.median([p["fma_gflops"] for p in pr])) / ref[0],
            float(np.median([p["l3_read_gbs"] for p in pr])) / ref[1])


def machine_slow(rec, ref):
    mf = machine_fraction(rec, ref)
    return mf is not None and (mf[0] < MACHINE_SLOW_FMA or mf[1] < MACHINE_SLOW_L3)


def row_targets(rec, bounds, ref=None):
    """Issue 20's per-row targets this row misses (list of short tags; [] = all met), or None
    when the row is not one the targets cover. A missing row measured while the machine probe
    ran slow (machine_slow against `ref`, the run's probe_reference) gets a tag
    mach(F x%,L3 y%): the machine itself delivered x% of its usual FMA rate and y% of its L3
    read rate during the row's rounds."""
    if rec["family"] not in T20_FAMILIES:
        return None
    miss = []
    q = speed_ratio(rec["results"], "torch")
    if q is not None:
        want = pt_target(rec)
        if q < want:
            need = pt_need(rec, bounds)
            miss.append(f"pt<{want:g}" + (f"(needs {100 * need[0]:.0f}%{need[1]})" if need else ""))
    fr, kind = bound_fraction(rec, bounds)
    if fr is not None:
        want = T20_FMA if kind == "F" else T20_BW
        if fr < want:
            lf = loop_fraction(rec, bounds) if kind != "F" else None
            miss.append(f"bnd<{100 * want:.0f}%" + (f"(loop {100 * lf[0]:.0f}%)" if lf else ""))
    if miss and machine_slow(rec, ref):
        mf = machine_fraction(rec, ref)
        miss.append(f"mach(F{100 * mf[0]:.0f}%,L3{100 * mf[1]:.0f}%)")
    return miss


def print_all(res):
    m = res["meta"]
    print(f"\nattnlstm benchmarks ({m['mode']}), {m['date']}, {m['processor']}, {m['cores']} cores, "
          f"Python {m['python']}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()))
    if "kernel_path" in m:
        print(f"CPU SIMD flags: {' '.join(m['cpu_simd_flags']) or '(none)'}; attnlstm kernel path: "
              f"{m['kernel_path']} ({m['kernel_path_reason']}; ATTNLSTM_ISA forces one)")
    print("timing: " + m["repeats"] + "; cells: median [first quartile, third quartile] per call.")
    print("ratio = contender time / attnlstm time (attnlstm's speed over the contender's; > 1 means "
          "attnlstm is faster). GF/s from the formulas in performance-notes.md; %roof = attnlstm "
          "GF/s / measured GEMM GF/s at the same thread count and dtype.")
    print("%bnd = the row's bound time / attnlstm's time: F = flops at the measured FMA peak "
          "(compute-bound rows), L2/L3 = streaming U (4*H*H*itemsize bytes, GRU 3*H*H) once per step "
          "at the measured read bandwidth (B=1 LSTM/GRU rows; twice per step forward+backward). "
          "issue 20 = "
          f"the row's misses of issue 20's targets: pt<x (attnlstm/PyTorch below {T20_PT_SMALL:g}x "
          f"at B<=8, {T20_PT:g}x above), bnd<x (below {100 * T20_FMA:.0f}% of the FMA bound or "
          f"{100 * T20_BW:.0f}% of the bandwidth bound); ok = all met. pt<x(needs y%K): "
          "meeting x would take y% of the row's bound (x times the bound over PyTorch's time); "
          "bnd<x(loop y%): a B=1 row's fraction when attnlstm runs alone, calls back to back; "
          "mach(F x%,L3 y%): the machine itself ran slow during the row (probe below).")
    print(f"LSTM input size D={m['lstm_input_size']}; attention batch B={m['attention_batch']}, "
          "value = key length Tv = Tq; Keras compiled fwd+bwd = train_on_batch with SGD(lr=0) "
          "(weight gradients only, no input gradients).")
    for run in res["runs"]:
        thr = run["threads"]
        print(f"\n################ {thr} thread(s) ################")
        print(f"pinning: {run['pinning']}")
        rf = run.get("roofline")
        if rf:
            print(f"roofline: SGEMM {rf['float32']['best_gflops']:.1f} GFLOP/s, "
                  f"DGEMM {rf['float64']['best_gflops']:.1f} GFLOP/s "
                  f"({rf['float32']['n']}x{rf['float32']['n']}, best of 3 of NumPy matmul and "
                  f"torch.mm; NumPy alone: SGEMM {rf['float32'].get('numpy_gflops', 0):.1f}, "
                  f"DGEMM {rf['float64'].get('numpy_gflops', 0):.1f})")
        bd = run.get("bounds") or {}
        ref = probe_reference(run)
        if ref is not None:
            print(f"machine probe (one thread, start of every round): usually {ref[0]:.1f} GFLOP/s "
                  f"FMA, {ref[1]:.1f} GB/s L3 read (90th percentile of the run); a missing row "
                  f"whose probe median fell under {100 * MACHINE_SLOW_FMA:.0f}% of the first or "
                  f"{100 * MACHINE_SLOW_L3:.0f}% of the second is tagged mach(F x%,L3 y%)")
        if bd.get("fma_peak_f32_gflops"):
            print(f"bounds ({bd['isa']}, measured now): FMA peak {bd['fma_peak_f32_gflops']:.1f} "
                  f"GFLOP/s float32, {bd['fma_peak_f64_gflops']:.1f} float64; read bandwidth L2 "
                  f"{bd['l2_read_gbs']:.1f} GB/s ({bd['l2_bytes'] >> 10} KiB per core), L3 "
                  f"{bd['l3_read_gbs']:.1f} GB/s ({bd['l3_bytes'] >> 20} MiB)")
        elif bd:
            print(f"bounds: not measured ({bd.get('error')})")
        tiny = run.get("tiny_call_us")
        if tiny:
            print("tiny LSTM call (B=1 T=1 D=8 H=8) per-call time: " + "; ".join(
                f"{LABELS[c]} {v['median_us']:.2f} us" if "median_us" in v
                else f"{LABELS[c]} {v.get('note', v.get('error'))}" for c, v in tiny.items()))
        print("equality checks (same weights, one small shape; max |diff| / max(1, max |ref|)):")
        for key, chk in run["checks"].items():
            print(f"  {key:32s} " + "; ".join(
                f"{LABELS[c]}: " + _status(v)
                + (f" {v['err']:.1e}" if v.get("err") is not None and v.get("err") != 0 else "")
                + (f" ({v['note']})" if v.get("note") and v.get("ok") is not True else "")
                for c, v in chk.items()))
        contenders = run["contenders"]
        others = [c for c in contenders if c != "attnlstm"]
        groups = {}
        for rec in run["records"]:
            groups.setdefault((rec["op"], rec["dtype"]), []).append(rec)
        W = 30
        for (op, dtype), recs in groups.items():
            print(f"\n{OP_TITLES[op]}, {dtype}, {thr} thread(s)")
            hdr = f"{'shape':30s} " + " ".join(f"{LABELS[c]:{W}s}" for c in contenders)
            hdr += f" {'GF/s':>6s} {'%roof':>6s} {'%bnd':>7s} " + " ".join(
                f"{'x' + LABELS[c]:>15s}" for c in others) + "  issue 20"
            print(hdr)
            print("-" * len(hdr))
            roof = (rf or {}).get(dtype, {}).get("best_gflops")
            for rec in recs:
                r = rec["results"]
                line = f"{_shape(rec['shape']):30s} " + " ".join(
                    cell(r.get(c, {"note": "-"}), W) for c in contenders)
                a = r.get("attnlstm", {})
                if "median_s" in a:
                    gf = rec["flops"] / a["median_s"] / 1e9
                    line += f" {gf:6.1f} " + (f"{100 * gf / roof:5.0f}%" if roof else "     -")
                else:
                    line += f" {'-':>6s} {'-':>6s}"
                fr, kind = bound_fraction(rec, bd)
                line += " " + (f"{100 * fr:4.0f}%{kind:<2s}" if fr is not None else f"{'-':>7s}")
                for c in others:
                    q = speed_ratio(r, c)
                    line += " " + (f"{q:14.2f}x" if q is not None else f"{'-':>15s}")
                miss = row_targets(rec, bd, ref)
                if miss is not None:
                    line += "  " + (" ".join(miss) if miss else "ok")
                print(line)
    if res.get("memory"):
        print("\ntraining-step peak memory (MB): " + MEMORY_METHOD)
        for r in res["memory"]:
            val = (f"{r['peak_mb']:.1f} MB" if "peak_mb" in r
                   else r.get("note", "error: " + r.get("error", "?")))
            extra = (f" (tracemalloc NumPy peak {r['tracemalloc_peak_mb']:.1f} MB)"
                     if "tracemalloc_peak_mb" in r else "")
            print(f"  {r['op']:12s} {_shape(r.get('shape', {})):22s} {LABELS[r['contender']]:15s} "
                  f"{val}{extra}")
    print("\nsummary against issue 7's targets (ratio = attnlstm speed / contender speed, per row "
          "medians; 'met' means every row meets the target):")
    for s in res["summary"]:
        if s.get("issue") != 20:
            print("  " + s["text"])
    print("\nsummary against issue 20's targets (on this machine's ISA: "
          + ", ".join(sorted({(run.get("bounds") or {}).get("isa") or "?" for run in res["runs"]}))
          + "; every thread count measured):")
    for s in res["summary"]:
        if s.get("issue") == 20:
            print("  " + s["text"])


def _shape(shape):
    return " ".join(f"{k}={v}" for k, v in shape.items())


def _ratios(res, pred, contender):
    """(threads, ratio) of every record matching pred; contender "keras-best" = the faster Keras."""
    out, missing = [], set()
    for run in res["runs"]:
        for rec in run["records"]:
            if not pred(rec):
                continue
            r = rec["results"]
            if "median_s" not in r.get("attnlstm", {}):
                missing.add(r.get("attnlstm", {}).get("note") or
                            r.get("attnlstm", {}).get("error") or "no attnlstm number")
                continue
            if contender == "keras-best":
                ts = [r[c]["median_s"] for c in ("keras", "keras-jit") if "median_s" in r.get(c, {})]
                if ts:
                    out.append(min(ts) / r["attnlstm"]["median_s"])
            else:
                q = speed_ratio(r, contender)
                if q is not None:
                    out.append(q)
    return out, missing


def _verdict(name, target, vals, missing, unit="x"):
    if not vals:
        why = "; ".join(sorted(missing)) or "no rows"
        return {"target": name, "status": "not measured", "text": f"{name}: NOT MEASURED ({why})"}
    v = np.asarray(vals)
    met = bool(np.all(v >= target))
    f = (lambda q: f"{q:.2f}x") if unit == "x" else (lambda q: f"{100 * q:.0f}%")  # noqa: E731
    what = "ratio" if unit == "x" else "fraction"
    return {"target": name, "status": "met" if met else "missed", "rows": int(len(v)),
            "rows_met": int(np.sum(v >= target)), "min": float(v.min()),
            "median": float(np.median(v)), "max": float(v.max()),
            "text": f"{name}: {'met' if met else 'MISSED'} — {int(np.sum(v >= target))}/{len(v)} rows; "
                    f"{what} min {f(v.min())}, median {f(np.median(v))}, max {f(v.max())}"
                    + (f" (also: {'; '.join(sorted(missing))} in some rows)" if missing else "")}


def summary20(res):
    """Issue 20's targets over every run (thread count): each an entry with issue=20."""
    out = []
    rows = [(run, rec) for run in res["runs"] for rec in run["records"]
            if rec["family"] in T20_FAMILIES]
    threads = sorted({run["threads"] for run in res["runs"]})
    thr = "/".join(str(t) for t in threads)

    def ratios(pred, contender):
        vals, missing = [], set()
        for run, rec in rows:
            if pred(rec):
                q = speed_ratio(rec["results"], contender)
                if q is not None:
                    vals.append(q)
                else:
                    r = rec["results"].get(contender, {}) or {}
                    missing.add(r.get("note") or r.get("error") or f"no {contender} number")
        return vals, missing

    small = lambda r: r["shape"].get("B", 99) <= 8  # noqa: E731
    for name, target, c, pred in [
            (f"LSTM/GRU/attention rows, B<=8: >= {T20_PT_SMALL:g}x PyTorch at {thr} threads",
             T20_PT_SMALL, "torch", small),
            (f"LSTM/GRU/attention rows, B>8: >= {T20_PT:g}x PyTorch at {thr} threads", T20_PT, "torch",
             lambda r: not small(r)),
            ("LSTM/GRU forward float32 vs ONNX Runtime (info: >= 1x)", 1.0, "onnxruntime",
             lambda r: r["op"] in ("lstm_fwd", "gru_fwd") and r["dtype"] == "float32")]:
        v = _verdict(name, target, *ratios(pred, c))
        v["issue"] = 20
        out.append(v)
    # what the PyTorch targets that are missed would take, against the best fraction of the
    # same kind of bound (FMA peak, or L2/L3 bandwidth) that attnlstm reaches in the same run
    best, needs = {}, []
    for run, rec in rows:
        fr, kind = bound_fraction(rec, run.get("bounds"))
        if fr is not None:
            key = (run["threads"], kind == "F")
            best[key] = max(best.get(key, 0.0), fr)
    for run, rec in rows:
        q = speed_ratio(rec["results"], "torch")
        need = pt_need(rec, run.get("bounds"))
        if q is not None and q < pt_target(rec) and need is not None:
            needs.append((need[0], best.get((run["threads"], need[1] == "F"), 0.0)))
    if needs:
        over = sum(1 for n, b in needs if n > b)
        v = np.asarray([n for n, _ in needs])
        out.append({"target": "PyTorch targets missed: the bound fraction they need",
                    "status": "info", "issue": 20, "rows": len(needs), "rows_over_best": over,
                    "text": f"rows under their PyTorch target: {len(needs)}; meeting it would take "
                            f"{100 * v.min():.0f}-{100 * v.max():.0f}% (median "
                            f"{100 * np.median(v):.0f}%) of the row's bound; {over} of them more "
                            "than the best fraction attnlstm reaches on any row of that bound "
                            "kind and thread count in this run"})
    refs = {id(run): probe_reference(run) for run in res["runs"]}
    probed = [(run, rec) for run, rec in rows if machine_fraction(rec, refs[id(run)]) is not None]
    if probed:
        slow = [(run, rec) for run, rec in probed if machine_slow(rec, refs[id(run)])]
        missed = [(run, rec) for run, rec in probed
                  if row_targets(rec, run.get("bounds"), refs[id(run)])]
        slow_missed = [x for x in missed if machine_slow(x[1], refs[id(x[0])])]
        out.append({"target": "rows measured while the machine ran slow (info)", "status": "info",
                    "issue": 20, "rows": len(probed), "rows_slow": len(slow),
                    "rows_missed": len(missed), "rows_missed_slow": len(slow_missed),
                    "text": f"rows whose machine probe ran under {100 * MACHINE_SLOW_FMA:.0f}% of "
                            f"the run's usual FMA rate or {100 * MACHINE_SLOW_L3:.0f}% of its L3 "
                            f"read rate: {len(slow)}/{len(probed)}; of the "
                            f"rows missing a target: {len(slow_missed)}/{len(missed)} "
                            "(tagged mach(...) in the tables)"})
    for name, target, want_kind in [
            (f"compute-bound rows (all but B=1 LSTM/GRU): >= {100 * T20_FMA:.0f}% of the FMA peak",
             T20_FMA, "F"),
            (f"B=1 LSTM/GRU rows: >= {100 * T20_BW:.0f}% of the bandwidth bound (streaming U per step)",
             T20_BW, "BW")]:
        vals, missing = [], set()
        for run, rec in rows:
            t, kind = row_bound(rec, run.get("bounds"))
            if t is None:
                missing.add(kind)
                continue
            if (kind == "F") != (want_kind == "F"):
                continue
            fr, _ = bound_fraction(rec, run.get("bounds"))
            if fr is not None:
                vals.append(fr)
        v = _verdict(name, target, vals, missing, unit="%")
        v["issue"] = 20
        out.append(v)
        if want_kind != "F":
            loops = [lf[0] for run, rec in rows
                     if (lf := loop_fraction(rec, run.get("bounds"))) is not None]
            if loops:
                lv = np.asarray(loops)
                out.append({"target": "B=1 rows in a back-to-back loop (info)", "status": "info",
                            "issue": 20, "rows": len(loops),
                            "rows_met": int(np.sum(lv >= T20_BW)),
                            "text": f"  the same rows with attnlstm alone, calls back to back "
                                    f"(info): {int(np.sum(lv >= T20_BW))}/{len(loops)} at >= "
                                    f"{100 * T20_BW:.0f}%; fraction min {100 * lv.min():.0f}%, "
                                    f"median {100 * np.median(lv):.0f}%, max {100 * lv.max():.0f}%"})
    # 2-thread speed-up at B=64, H=512: attnlstm at the most threads vs at 1, same op/dtype/shape
    name = f"speed-up at B=64, H=512 from 1 to {threads[-1]} threads: >= {T20_SPEEDUP:g}x"
    one = {(r["op"], r["dtype"], tuple(r["shape"].items())): r for run, r in rows
           if run["threads"] == 1}
    ups = []
    for run, r in rows:
        if run["threads"] == threads[-1] > 1 and r["family"] == "lstm" and r["shape"]["B"] == 64 \
                and r["shape"]["H"] == 512:
            o = one.get((r["op"], r["dtype"], tuple(r["shape"].items())))
            a1 = (o or {}).get("results", {}).get("attnlstm", {})
            an = r["results"].get("attnlstm", {})
            if "median_s" in a1 and "median_s" in an:
                ups.append(a1["median_s"] / an["median_s"])
    v = _verdict(name, T20_SPEEDUP, ups,
                 set() if len(threads) > 1 else {"only one thread count measured"})
    v["issue"] = 20
    out.append(v)
    return out


def summary(res):
    out = summary20(res)
    f32 = lambda rec: rec["dtype"] == "float32"  # noqa: E731
    specs = [
        ("LSTM forward float32, B<=8: >= 2x PyTorch", 2.0, "torch",
         lambda r: r["op"] == "lstm_fwd" and f32(r) and r["shape"]["B"] <= 8),
        ("LSTM forward float32, B=64: >= 1.3x PyTorch", 1.3, "torch",
         lambda r: r["op"] == "lstm_fwd" and f32(r) and r["shape"]["B"] == 64),
        ("LSTM forward float64 (all B): >= 1.3x PyTorch (info: same bar as float32 B=64)", 1.3,
         "torch", lambda r: r["op"] == "lstm_fwd" and not f32(r)),
        ("LSTM forward (f32+f64): >= 3x Keras everywhere (faster of eager/compiled)", 3.0,
         "keras-best", lambda r: r["op"] == "lstm_fwd"),
        ("LSTM forward+backward: >= 2x PyTorch", 2.0, "torch", lambda r: r["op"] == "lstm_fwdbwd"),
        ("LSTM forward+backward: >= 3x Keras", 3.0, "keras-best", lambda r: r["op"] == "lstm_fwdbwd"),
        ("dot attention (fwd and fwd+bwd): >= 1x PyTorch", 1.0, "torch",
         lambda r: r["op"].startswith("dot")),
        ("multi-head attention (fwd and fwd+bwd): >= 1x PyTorch", 1.0, "torch",
         lambda r: r["op"].startswith("mha")),
        ("additive attention (fwd and fwd+bwd): >= 2x PyTorch", 2.0, "torch",
         lambda r: r["op"].startswith("add")),
        ("LSTM-VAE training step: >= 1x PyTorch (info)", 1.0, "torch",
         lambda r: r["op"] in ("vae_step", "ae_step")),
    ]
    for name, target, c, pred in specs:
        vals, missing = _ratios(res, pred, c)
        out.append(_verdict(name, target, vals, missing))
    # roofline fraction at B=64, H=512
    fr, missing = [], set()
    for run in res["runs"]:
        roof = (run.get("roofline") or {}).get("float32", {}).get("best_gflops")
        for rec in run["records"]:
            if rec["op"] == "lstm_fwd" and f32(rec) and rec["shape"]["B"] == 64 \
                    and rec["shape"]["H"] == 512:
                a = rec["results"].get("attnlstm", {})
                if "median_s" in a and roof:
                    fr.append(rec["flops"] / a["median_s"] / 1e9 / roof)
                else:
                    missing.add(a.get("note") or "no roofline")
    name = "LSTM forward float32 B=64 H=512: >= 60% of SGEMM"
    if fr:
        v = np.asarray(fr)
        met = bool(np.all(v >= 0.6))
        out.append({"target": name, "status": "met" if met else "missed", "min": float(v.min()),
                    "median": float(np.median(v)),
                    "text": f"{name}: {'met' if met else 'MISSED'} — fraction min {100 * v.min():.0f}%, "
                            f"median {100 * np.median(v):.0f}%, max {100 * v.max():.0f}%"})
    else:
        out.append({"target": name, "status": "not measured",
                    "text": f"{name}: NOT MEASURED ({'; '.join(sorted(missing)) or 'no rows'})"})
    # tiny call
    tiny = [(run["threads"], run["tiny_call_us"]["attnlstm"]) for run in res["runs"]
            if "median_us" in (run.get("tiny_call_us") or {}).get("attnlstm", {})]
    name = "tiny LSTM call (B=1 T=1 H=8): <= 5 us"
    if tiny:
        worst = max(t["median_us"] for _, t in tiny)
        out.append({"target": name, "status": "met" if worst <= 5 else "missed", "max_us": worst,
                    "text": f"{name}: {'met' if worst <= 5 else 'MISSED'} — "
                            + ", ".join(f"{t['median_us']:.2f} us at {n} thr" for n, t in tiny)})
    else:
        out.append({"target": name, "status": "not measured", "text": f"{name}: NOT MEASURED"})
    # memory
    name = "training peak memory: attnlstm <= PyTorch"
    pairs, notes = [], set()
    for op in sorted({r["op"] for r in res.get("memory", [])}):
        rs = {r["contender"]: r for r in res["memory"] if r["op"] == op}
        a, t = rs.get("attnlstm", {}), rs.get("torch", {})
        if "peak_mb" in a and "peak_mb" in t:
            pairs.append((op, a["peak_mb"], t["peak_mb"]))
        else:
            notes.add(f"{op}: " + (a.get("note") or a.get("error") or t.get("note")
                                   or t.get("error") or "missing"))
    if pairs:
        met = all(a <= t for _, a, t in pairs)
        out.append({"target": name, "status": "met" if met else "missed", "pairs": pairs,
                    "text": f"{name}: {'met' if met else 'MISSED'} — " + "; ".join(
                        f"{op} {a:.1f} MB vs {t:.1f} MB" for op, a, t in pairs)
                    + (f" ({'; '.join(sorted(notes))})" if notes else "")})
    else:
        out.append({"target": name, "status": "not measured",
                    "text": f"{name}: NOT MEASURED ({'; '.join(sorted(notes)) or 'not run'})"})
    return out
