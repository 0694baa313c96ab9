"""The benchmark report's issue 20 figures (benchmarks/report.py): the bound fraction that a
missed PyTorch target would need, per row and in the summary."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir))
from benchmarks import report  # noqa: E402

BOUNDS = {"isa": "avx512", "fma_peak_f32_gflops": 100.0, "fma_peak_f64_gflops": 50.0,
          "l2_bytes": 1 << 20, "l3_bytes": 32 << 20, "l2_read_gbs": 100.0, "l3_read_gbs": 50.0}


def _rec(B, attnlstm_s, torch_s, flops=1e9, op="lstm_fwd", H=256):
    return {"family": "lstm", "op": op, "dtype": "float32", "threads": 1, "flops": flops,
            "shape": {"B": B, "T": 50, "D": 64, "H": H},
            "results": {"attnlstm": {"median_s": attnlstm_s}, "torch": {"median_s": torch_s}}}


def test_pt_need_is_the_target_times_the_bound_over_pytorchs_time():
    # 1 GFLOP at 100 GFLOP/s: a 10 ms bound. PyTorch 12.5 ms: 1.3x needs 1.3 * 10 / 12.5
    need, kind = report.pt_need(_rec(8, 0.0125, 0.0125), BOUNDS)
    assert kind == "F" and need == pytest.approx(1.04)
    # B > 8: the target is 1x
    need, _ = report.pt_need(_rec(64, 0.0125, 0.0125), BOUNDS)
    assert need == pytest.approx(0.8)
    # B = 1: the bandwidth bound, 50 steps of U (4 H^2 floats = 1 MiB) from the L2
    need, kind = report.pt_need(_rec(1, 0.001, 0.001), BOUNDS)
    assert kind == "L2" and need == pytest.approx(1.3 * 50 * (1 << 20) / 100e9 / 0.001)
    # no PyTorch number: nothing to say
    rec = _rec(8, 0.01, 0.01)
    del rec["results"]["torch"]
    assert report.pt_need(rec, BOUNDS) is None


def test_row_targets_name_what_a_missed_pytorch_target_needs():
    miss = report.row_targets(_rec(8, 0.0125, 0.0125), BOUNDS)
    assert miss == ["pt<1.3(needs 104%F)", "bnd<85%"]
    assert report.row_targets(_rec(8, 0.0125 / 1.3, 0.0125), BOUNDS) == []


def test_summary_counts_missed_targets_that_need_more_than_the_best_row():
    res = {"runs": [{"threads": 1, "bounds": BOUNDS, "records": [
        _rec(8, 0.0125, 0.0125),              # needs 104%: more than the best row (90%)
        _rec(8, 0.0200, 0.0200),              # needs 65%
        _rec(64, 0.0111, 0.0150),             # met (1.35x); reaches 90% of its bound
    ]}]}
    info = [s for s in report.summary20(res) if s["target"].startswith("PyTorch targets missed")]
    assert len(info) == 1
    assert info[0]["rows"] == 2 and info[0]["rows_over_best"] == 1
    assert "65-104%" in info[0]["text"]


def test_b1_rows_carry_their_back_to_back_loop_fraction():
    # B = 1: bound 50 steps x 1 MiB at 100 GB/s = 0.524 ms; interleaved 1.048 ms (50%), the
    # loop alone 0.655 ms (80%)
    rec = _rec(1, 0.001048576, 0.002)
    rec["attnlstm_loop"] = {"median_s": 0.00065536}
    frac, kind = report.loop_fraction(rec, BOUNDS)
    assert kind == "L2" and frac == pytest.approx(0.8)
    assert report.row_targets(rec, BOUNDS) == ["bnd<70%(loop 80%)"]
    res = {"runs": [{"threads": 1, "bounds": BOUNDS, "records": [rec, _rec(1, 0.001, 0.002)]}]}
    info = [s for s in report.summary20(res) if s["target"].startswith("B=1 rows in a back")]
    assert len(info) == 1 and info[0]["rows"] == 1 and info[0]["rows_met"] == 1


def test_timing_loop_calls_back_to_back():
    from benchmarks import timing
    calls = []
    st = timing.loop(lambda: calls.append(1), budget=0.0, min_runs=7)
    assert st["runs"] == 7 and len(calls) == 8      # one untimed call first


def _probes(fma, l3, n=5):
    return [{"fma_gflops": fma, "l3_read_gbs": l3}] * n


def test_rows_measured_while_the_machine_ran_slow_are_tagged_and_counted():
    fast = [_rec(64, 0.0125, 0.0150) for _ in range(9)]      # met (1.2x)
    for r in fast:
        r["probe"] = _probes(110.0, 60.0)
    slow = _rec(64, 0.0125, 0.0100)                            # missed (0.8x), machine at 70%
    slow["probe"] = _probes(77.0, 60.0)
    held = _rec(64, 0.0125, 0.0100)                            # missed, machine as usual
    held["probe"] = _probes(110.0, 59.0)
    run = {"threads": 2, "bounds": BOUNDS, "records": fast + [slow, held]}
    ref = report.probe_reference(run)
    assert ref == pytest.approx((110.0, 60.0))
    assert report.machine_fraction(slow, ref) == pytest.approx((0.7, 1.0))
    assert report.row_targets(slow, BOUNDS, ref)[-1] == "mach(F70%,L3100%)"
    assert not any(t.startswith("mach") for t in report.row_targets(held, BOUNDS, ref))
    # the L3 read rate varies more from round to round: only under 70% of the usual counts
    l3 = _rec(64, 0.0125, 0.0100)
    l3["probe"] = _probes(110.0, 45.0)
    assert not report.machine_slow(l3, ref)
    l3["probe"] = _probes(110.0, 40.0)
    assert report.row_targets(l3, BOUNDS, ref)[-1] == "mach(F100%,L367%)"
    # no probe (an older results file): no tag, no count
    assert report.machine_fraction(_rec(64, 0.0125, 0.0100), ref) is None
    info = [s for s in report.summary20({"runs": [run]})
            if s["target"].startswith("rows measured while the machine ran slow")]
    assert len(info) == 1
    assert (info[0]["rows"], info[0]["rows_slow"]) == (11, 1)
    assert (info[0]["rows_missed"], info[0]["rows_missed_slow"]) == (11, 1)   # bnd<85% for all


def test_race_probes_the_machine_once_a_round():
    from benchmarks import timing
    seen, probes = [], []

    def probe():
        seen.append("probe")
        return {"fma_gflops": 1.0, "l3_read_gbs": 1.0}
    out = timing.race({"a": lambda: seen.append("a"), "b": lambda: seen.append("b")},
                      min_runs=3, max_runs=3, budget=0.0, warmup=0, probe=probe, probes=probes)
    assert out["a"]["runs"] == out["b"]["runs"] == 3 and len(out["a"]["times_s"]) == 3
    assert len(probes) == 3
    assert [s for s in seen if s != "a" and s != "b"] == ["probe"] * 3
    assert seen[0] == "probe"


def test_probe_measures_the_fma_rate_and_read_bandwidth():
    from benchmarks import peak
    try:
        p = peak.Probe()
    except Exception as e:                 # no C compiler here
        pytest.skip(f"no probe: {e}")
    if p.kind is None:
        pytest.skip("no AVX2 on this CPU")
    r = p()
    assert set(r) == {"fma_gflops", "l3_read_gbs"}
    assert r["fma_gflops"] > 1.0 and r["l3_read_gbs"] > 1.0
