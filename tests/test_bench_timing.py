"""The benchmark harness's interleaved timing (benchmarks/timing.py): the untimed re-warm call."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir))
from benchmarks import timing  # noqa: E402


def _counter():
    calls = []

    def fn():
        calls.append(1)
    return fn, calls


def test_race_rewarms_a_contender_idle_longer_than_rewarm_s():
    fa, ca = _counter()
    fb, cb = _counter()
    # rewarm_s=0: every timed call is preceded by one untimed call
    out = timing.race({"a": fa, "b": fb}, min_runs=3, max_runs=3, budget=0.0, warmup=1,
                      rewarm_s=0.0)
    assert out["a"]["runs"] == out["b"]["runs"] == 3
    assert len(ca) == len(cb) == 1 + 2 * 3


def test_race_makes_no_extra_call_when_rounds_are_quick():
    fa, ca = _counter()
    out = timing.race({"a": fa}, min_runs=4, max_runs=4, budget=0.0, warmup=1, rewarm_s=60.0)
    assert out["a"]["runs"] == 4
    assert len(ca) == 1 + 4


def test_race_reports_a_contender_that_fails_in_its_timed_call():
    n = []

    def flaky():
        n.append(1)
        if len(n) > 1:
            raise RuntimeError("boom")
    out = timing.race({"f": flaky}, min_runs=2, max_runs=2, budget=0.0, warmup=1, rewarm_s=0.0)
    assert out["f"]["error"].startswith("RuntimeError: boom")
