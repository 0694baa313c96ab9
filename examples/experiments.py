"""Experiments past one process with engines users already know (issue 21): joblib for
cross-validation and sweeps on every core, Optuna for hyper-parameter search with pruning, Dask
for batch inference over arrays larger than one batch (or than memory).

attnlstm does no scheduling of its own; it only has to be a good citizen inside these engines:
- its thread budget is OpenBLAS's (``attnlstm.set_num_threads``), so joblib's
  ``inner_max_num_threads`` and ``threadpoolctl.threadpool_limits`` cap attnlstm's kernels too,
  and k workers x threads never oversubscribe the cores;
- its kernels give the same bits for a sample whatever the batch size and thread count, so a run
  in a worker equals the same run in the main process;
- its random generator is per thread once a thread seeds it (``utils.set_random_seed``), so runs
  in a thread pool that seed themselves are reproducible;
- the kernels release the GIL, so the threading backend and Dask's threaded scheduler use the
  cores.

Run ``python examples/experiments.py`` for a small demonstration of each engine.
"""
import os
import sys

import numpy as np

import attnlstm
from attnlstm import Input, Model, callbacks, datasets, layers, optimizers, utils

CLASSES = 9
TIMESTEPS = 29


def load_vowels(limit=None):
    """Japanese Vowels, standardised and right-padded: ``(x, y), (x_test, y_test)``; `limit`
    keeps the first samples of each split (for tiny budgets)."""
    (xtr, ytr), (xte, yte) = datasets.load_japanese_vowels()
    frames = np.concatenate(xtr)
    mean, std = frames.mean(axis=0), frames.std(axis=0)

    def prep(seqs):
        return utils.pad_sequences([(s - mean) / std for s in seqs], maxlen=TIMESTEPS,
                                   padding="post", dtype="float32")
    order = np.random.default_rng(0).permutation(len(xtr))      # files are grouped by speaker
    x, y = prep(xtr)[order], np.asarray(ytr)[order]
    xt, yt = prep(xte), np.asarray(yte)
    if limit:
        x, y, xt, yt = x[:limit], y[:limit], xt[:limit], yt[:limit]
    return (x, y), (xt, yt)


def build_classifier(units=32, attention="dot", dropout=0.1, learning_rate=3e-3, seed=0):
    """Masking -> LSTM -> attention head (``"dot"``, ``"additive"`` or ``"multi_head"``) ->
    Dense softmax, compiled with Adam. Seeds the calling thread's generator first."""
    utils.set_random_seed(seed)
    x = Input((TIMESTEPS, 12))
    seq, h, _ = layers.LSTM(units, return_sequences=True, return_state=True)(layers.Masking()(x))
    q = layers.Reshape((1, units))(h)
    if attention == "dot":
        ctx = layers.Attention(use_scale=True)([q, seq])
    elif attention == "additive":
        ctx = layers.AdditiveAttention()([q, seq])
    elif attention == "multi_head":
        ctx = layers.MultiHeadAttention(num_heads=2, key_dim=units // 2)(q, seq)
    else:
        raise ValueError(f"attention must be 'dot', 'additive' or 'multi_head'. "
                         f"Received: attention={attention!r}")
    z = layers.Dropout(dropout)(layers.Concatenate()([layers.Flatten()(ctx), h]))
    model = Model(x, layers.Dense(CLASSES, activation="softmax")(z))
    model.compile(optimizer=optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def run_fit(params, x, y, x_val, y_val, epochs=3, batch_size=32):
    """One training run: ``(final weights, loss history, validation accuracy, threads used)``."""
    model = build_classifier(**params)
    hist = model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0)
    _, acc = model.evaluate(x_val, y_val, verbose=0)
    return model.get_weights(), hist.history["loss"], float(acc), attnlstm.get_num_threads()


def cross_validate(params, x, y, n_splits=5, n_jobs=2, backend="loky", epochs=3):
    """k-fold cross-validation, one fold per joblib task. Each worker gets
    ``cores // n_jobs`` threads (joblib's `inner_max_num_threads` for process backends; for the
    threading backend, threadpoolctl limits the shared budget).

    Returns:
        list of per-fold results of :func:`run_fit`.
    """
    from joblib import Parallel, delayed, parallel_config
    from threadpoolctl import threadpool_limits

    folds = np.array_split(np.arange(len(x)), n_splits)
    tasks = [delayed(run_fit)(params, np.delete(x, f, 0), np.delete(y, f, 0), x[f], y[f], epochs)
             for f in folds]
    inner = max(1, (os.cpu_count() or 1) // n_jobs)
    if backend == "threading":
        with threadpool_limits(inner), parallel_config(backend="threading", n_jobs=n_jobs):
            return Parallel()(tasks)
    with parallel_config(backend=backend, n_jobs=n_jobs, inner_max_num_threads=inner):
        return Parallel()(tasks)


class OptunaPruning(callbacks.Callback):
    """Reports `monitor` to an Optuna trial after every epoch and stops the trial when Optuna's
    pruner says so (the role of optuna-integration's KerasPruningCallback)."""

    def __init__(self, trial, monitor="val_accuracy"):
        super().__init__()
        self.trial, self.monitor = trial, monitor

    def on_epoch_end(self, epoch, logs=None):
        import optuna
        value = (logs or {}).get(self.monitor)
        if value is None:
            return
        self.trial.report(float(value), step=epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {epoch}: {self.monitor}={value:.4f}")


def optuna_study(x, y, n_trials=6, epochs=4, seed=0):
    """An Optuna study over units, attention kind, learning rate and dropout, maximising
    validation accuracy, with median pruning through :class:`OptunaPruning`."""
    import optuna

    def objective(trial):
        params = dict(units=trial.suggest_categorical("units", [16, 32, 64]),
                      attention=trial.suggest_categorical("attention",
                                                          ["dot", "additive", "multi_head"]),
                      learning_rate=trial.suggest_float("learning_rate", 1e-3, 1e-2, log=True),
                      dropout=trial.suggest_float("dropout", 0.0, 0.3), seed=trial.number)
        model = build_classifier(**params)
        hist = model.fit(x, y, epochs=epochs, batch_size=32, validation_split=0.2, verbose=0,
                         callbacks=[OptunaPruning(trial)])
        return float(hist.history["val_accuracy"][-1])

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=seed),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=2,
                                                                   n_warmup_steps=1))
    study.optimize(objective, n_trials=n_trials)
    return study


def dask_predict(model, x, chunk=64):
    """``model.predict`` over a ``dask.array`` chunked along the batch axis. `meta` tells Dask
    the output's type and rank, so it never probes the model with an empty array."""
    import dask.array as da
    xd = x if isinstance(x, da.Array) else da.from_array(x, chunks=(chunk,) + x.shape[1:])
    xd = xd.rechunk({i: -1 for i in range(1, xd.ndim)})
    out = model.outputs[0].shape
    dtype = np.dtype(model.outputs[0].dtype)
    return da.map_blocks(lambda b: model.predict(b, verbose=0), xd, dtype=dtype,
                         chunks=(xd.chunks[0],) + tuple((s,) for s in out[1:]),
                         drop_axis=list(range(len(out), xd.ndim)) or None,
                         meta=np.empty((0,) * len(out), dtype))


def sliding_windows(series, window):
    """All ``len(series) - window + 1`` windows of a (N, C) series: (W, window, C) (a view)."""
    return np.lib.stride_tricks.sliding_window_view(series, window, axis=0).transpose(0, 2, 1)


def dask_window_scores(score_fn, series, window, chunk=512):
    """``score_fn(sliding_windows(series, window))`` computed chunk by chunk with Dask: the
    windows starting in chunk ``[s, e)`` need rows ``[s, e + window - 1)``, so consecutive
    pieces overlap by ``window - 1`` rows; equals the in-memory call when `score_fn` scores
    windows independently (attnlstm's kernels give the same bits whatever the batch).

    Args:
        score_fn: (W, window, C) windows -> (W,) scores, e.g. an LSTM-VAE's anomaly score.
        series: (N, C) array or dask array.
        window: steps per window.
        chunk: windows per task.

    Returns:
        A lazy dask array of the ``N - window + 1`` scores.
    """
    import dask
    import dask.array as da
    xd = series if isinstance(series, da.Array) else da.from_array(series, chunks=(chunk * 4,)
                                                                    + series.shape[1:])
    n_windows = xd.shape[0] - window + 1

    def piece(rows):
        return np.asarray(score_fn(sliding_windows(rows, window)), dtype=np.float64)

    pieces = [da.from_delayed(dask.delayed(piece)(xd[s:min(s + chunk, n_windows) + window - 1]),
                              shape=(min(chunk, n_windows - s),), dtype=np.float64)
              for s in range(0, n_windows, chunk)]
    return da.concatenate(pieces)


if __name__ == "__main__":
    (x, y), (xt, yt) = load_vowels()
    res = cross_validate(dict(units=32), x, y, n_splits=5, n_jobs=2, epochs=5)
    print("5-fold accuracies:", [round(r[2], 3) for r in res])
    study = optuna_study(x, y, n_trials=int(sys.argv[1]) if len(sys.argv) > 1 else 6)
    print("best:", study.best_params, round(study.best_value, 3))
