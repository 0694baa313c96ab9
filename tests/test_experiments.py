"""attnlstm inside the engines users run experiments with (issue 21): joblib (loky and threading
backends, with the thread budget capped per worker), Optuna with pruning, Dask arrays.
Tiny budgets: the whole file takes well under a minute."""
import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
import experiments as ex  # noqa: E402

import attnlstm  # noqa: E402

PARAMS = [dict(units=8, attention=a, seed=s) for a, s in
          (("dot", 0), ("additive", 1), ("multi_head", 2), ("dot", 3))]


@pytest.fixture(scope="module")
def vowels():
    return ex.load_vowels(limit=64)


def _serial(vowels):
    (x, y), (xt, yt) = vowels
    return [ex.run_fit(p, x, y, xt, yt, epochs=2) for p in PARAMS]


@pytest.mark.parametrize("backend", ["loky", "threading"])
def test_joblib_runs_equal_serial_runs_bit_for_bit(vowels, backend):
    from joblib import Parallel, delayed, parallel_config
    from threadpoolctl import threadpool_limits

    (x, y), (xt, yt) = vowels
    serial = _serial(vowels)
    tasks = [delayed(ex.run_fit)(p, x, y, xt, yt, 2) for p in PARAMS]
    cores = os.cpu_count() or 1
    n_jobs = 2
    inner = max(1, cores // n_jobs)
    if backend == "threading":
        with threadpool_limits(inner), parallel_config(backend="threading", n_jobs=n_jobs):
            par = Parallel()(tasks)
    else:
        with parallel_config(backend="loky", n_jobs=n_jobs, inner_max_num_threads=inner):
            par = Parallel()(tasks)
    for (ws, ls, acc_s, _), (wp, lp, acc_p, threads) in zip(serial, par):
        assert threads * n_jobs <= max(cores, n_jobs)          # no oversubscription
        assert ls == lp and acc_s == acc_p
        for a, b in zip(ws, wp):
            np.testing.assert_array_equal(a, b)


def test_threadpool_limits_caps_attnlstm():
    from threadpoolctl import threadpool_limits
    before = attnlstm.get_num_threads()
    with threadpool_limits(1):
        assert attnlstm.get_num_threads() == 1
    assert attnlstm.get_num_threads() == before


def test_cross_validation_with_joblib(vowels):
    (x, y), _ = vowels
    res = ex.cross_validate(dict(units=8), x, y, n_splits=3, n_jobs=2, epochs=1)
    assert len(res) == 3 and all(0.0 <= r[2] <= 1.0 for r in res)


def test_optuna_study_with_pruning(vowels):
    optuna = pytest.importorskip("optuna")
    (x, y), _ = vowels
    study = ex.optuna_study(x, y, n_trials=4, epochs=3)
    states = {t.state for t in study.trials}
    assert len(study.trials) == 4
    assert states <= {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    assert 0.0 <= study.best_value <= 1.0
    assert set(study.best_params) == {"units", "attention", "learning_rate", "dropout"}


def test_pruning_callback_prunes():
    optuna = pytest.importorskip("optuna")

    class Trial:
        def report(self, value, step):
            self.value = value

        def should_prune(self):
            return True

    cb = ex.OptunaPruning(Trial())
    with pytest.raises(optuna.TrialPruned, match="pruned at epoch 2"):
        cb.on_epoch_end(2, {"val_accuracy": 0.5})


@pytest.mark.parametrize("scheduler", ["threads", "processes"])
def test_dask_predict_equals_in_memory(vowels, scheduler):
    import dask
    (x, y), _ = vowels
    model = ex.build_classifier(units=8)
    want = model.predict(x, verbose=0)
    got = ex.dask_predict(model, x, chunk=24)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got.compute(scheduler=scheduler), want)


def test_dask_window_scores_equal_in_memory():
    import dask
    rng = np.random.default_rng(0)
    series = np.sin(np.arange(700) / 7)[:, None] + 0.1 * rng.standard_normal((700, 1))
    model = attnlstm.Sequential([attnlstm.Input((20, 1)), attnlstm.layers.LSTM(4),
                                 attnlstm.layers.Dense(1)])

    def score(windows):
        return model.predict(windows.astype(np.float32), verbose=0)[:, 0]

    want = score(ex.sliding_windows(series, 20))
    lazy = ex.dask_window_scores(score, series, 20, chunk=128)
    for sched in ("threads", "sync"):
        np.testing.assert_array_equal(lazy.compute(scheduler=sched), want)


def test_dask_local_cluster(vowels):
    distributed = pytest.importorskip("distributed")
    (x, y), _ = vowels
    model = ex.build_classifier(units=8)
    want = model.predict(x, verbose=0)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        got = client.compute(ex.dask_predict(model, x, chunk=24)).result()
    np.testing.assert_array_equal(got, want)


def test_ray_tasks_equal_serial_runs(vowels):
    ray = pytest.importorskip("ray")
    (x, y), (xt, yt) = vowels
    serial = _serial(vowels)[:2]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(sys.path)}})
    try:
        @ray.remote(num_cpus=1)
        def run(p):
            import experiments
            return experiments.run_fit(p, x, y, xt, yt, 2)
        par = ray.get([run.remote(p) for p in PARAMS[:2]])
    finally:
        ray.shutdown()
    for (ws, ls, *_), (wp, lp, *_, threads) in zip(serial, par):
        assert threads == 1                # Ray gives each 1-CPU task one thread
        assert ls == lp
        for a, b in zip(ws, wp):
            np.testing.assert_array_equal(a, b)
