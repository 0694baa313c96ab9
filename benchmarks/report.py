"""Tables and the summary against issue 7's targets."""
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
            hdr += f" {'GF/s':>6s} {'%roof':>6s} " + " ".join(f"{'x' + LABELS[c]:>15s}" for c in others)
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
                for c in others:
                    q = speed_ratio(r, c)
                    line += " " + (f"{q:14.2f}x" if q is not None else f"{'-':>15s}")
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
    met = bool(np.all(v >= target)) if unit == "x" else None
    return {"target": name, "status": "met" if met else "missed", "rows": int(len(v)),
            "rows_met": int(np.sum(v >= target)), "min": float(v.min()),
            "median": float(np.median(v)), "max": float(v.max()),
            "text": f"{name}: {'met' if met else 'MISSED'} — {int(np.sum(v >= target))}/{len(v)} rows; "
                    f"ratio min {v.min():.2f}x, median {np.median(v):.2f}x, max {v.max():.2f}x"
                    + (f" (also: {'; '.join(sorted(missing))} in some rows)" if missing else "")}


def summary(res):
    out = []
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
