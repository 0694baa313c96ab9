"""Training callbacks with Keras 3's protocol (``keras.callbacks``, v3.15.1 semantics).

``Model.fit/evaluate/predict`` drive a :class:`CallbackList`; every callback sees the hooks
``on_{train,test,predict}_{begin,end}(logs)``, ``on_epoch_{begin,end}(epoch, logs)`` and
``on_{train,test,predict}_batch_{begin,end}(batch, logs)``. A callback uses only these parts of
its model: ``stop_training``, ``optimizer.learning_rate``, ``get_weights``/``set_weights``,
``save_weights(path, overwrite=True)``, ``save(path, overwrite=True)`` (only for ``.keras``
checkpoints) and ``name``.

Example:
    >>> from attnlstm import callbacks
    >>> stop = callbacks.EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
    >>> # model.fit(x, y, validation_split=0.2, epochs=100, callbacks=[stop])
"""
import collections
import csv
import math
import os
import sys
import time
import warnings

import numpy as np

__all__ = ["Callback", "CallbackList", "History", "ProgbarLogger", "Progbar", "EarlyStopping",
           "ModelCheckpoint", "ReduceLROnPlateau", "LambdaCallback", "TerminateOnNaN", "CSVLogger"]


def _print(message, line_break=True):
    """Write to the current sys.stdout (so notebooks and pytest's capsys see it)."""
    sys.stdout.write(f"{message}\n" if line_break else message)
    sys.stdout.flush()


def _pythonify_logs(logs):
    """A sorted copy of `logs` with scalar values as Python floats (Keras' CallbackList does this,
    so every callback sees the keys in alphabetical order). Nested dicts are flattened."""
    result = {}
    for key, value in sorted((logs or {}).items()):
        if isinstance(value, dict):
            result.update(_pythonify_logs(value))
            continue
        try:
            value = float(value)
        except (TypeError, ValueError):
            pass
        result[key] = value
    return result


# ---------------------------------------------------------------------------------------------
# Base classes


class Callback:
    """Base class of callbacks (``keras.callbacks.Callback``).

    Attributes:
        model: the model being trained (set by :meth:`set_model`).
        params: dict of training parameters, e.g. ``{"verbose": 1, "epochs": 10, "steps": 8}``.
    """

    def __init__(self):
        self.params = None
        self._model = None

    def set_params(self, params):
        self.params = params

    def set_model(self, model):
        self._model = model

    @property
    def model(self):
        return self._model

    # Legacy aliases: on_train_batch_* call on_batch_* (as Keras).
    def on_batch_begin(self, batch, logs=None):
        """A backwards-compatible alias for `on_train_batch_begin`."""

    def on_batch_end(self, batch, logs=None):
        """A backwards-compatible alias for `on_train_batch_end`."""

    def on_epoch_begin(self, epoch, logs=None):
        """Called at the start of an epoch (0-based `epoch`)."""

    def on_epoch_end(self, epoch, logs=None):
        """Called at the end of an epoch; `logs` has the epoch's metrics (``val_`` ones too)."""

    def on_train_batch_begin(self, batch, logs=None):
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        self.on_batch_end(batch, logs=logs)

    def on_test_batch_begin(self, batch, logs=None):
        """Called before a batch in evaluate (and in fit's validation)."""

    def on_test_batch_end(self, batch, logs=None):
        """Called after a batch in evaluate (and in fit's validation)."""

    def on_predict_batch_begin(self, batch, logs=None):
        """Called before a batch in predict."""

    def on_predict_batch_end(self, batch, logs=None):
        """Called after a batch in predict."""

    def on_train_begin(self, logs=None):
        """Called at the start of fit."""

    def on_train_end(self, logs=None):
        """Called at the end of fit."""

    def on_test_begin(self, logs=None):
        """Called at the start of evaluate (and of fit's validation)."""

    def on_test_end(self, logs=None):
        """Called at the end of evaluate (and of fit's validation)."""

    def on_predict_begin(self, logs=None):
        """Called at the start of predict."""

    def on_predict_end(self, logs=None):
        """Called at the end of predict."""


_HOOKS_WITH_INDEX = ("on_batch_begin", "on_batch_end", "on_epoch_begin", "on_epoch_end",
                     "on_train_batch_begin", "on_train_batch_end", "on_test_batch_begin",
                     "on_test_batch_end", "on_predict_batch_begin", "on_predict_batch_end")


class CallbackList(Callback):
    """A list of callbacks called as one (``keras.callbacks.CallbackList``).

    Args:
        callbacks: list of :class:`Callback` (nested lists are flattened).
        add_history: append a :class:`History` unless the list has one.
        add_progbar: append a :class:`ProgbarLogger` unless the list has one.
        model: the model, given to every callback (and ``model.history`` becomes the History).
        **params: e.g. ``verbose=1, epochs=10, steps=8``; given to every callback's ``set_params``.

    Every hook passes a sorted copy of `logs` with float values, as Keras does; a callback that
    adds keys to it (ReduceLROnPlateau adds ``learning_rate``) is seen by the callbacks after it.
    """

    def __init__(self, callbacks=None, add_history=False, add_progbar=False, model=None, **params):
        super().__init__()
        self.callbacks = _flatten_callbacks(callbacks)
        for cb in self.callbacks:
            if not isinstance(cb, Callback) and not all(hasattr(cb, h) for h in _HOOKS_WITH_INDEX):
                raise TypeError(f"`callbacks` must be Callback instances. Received: {cb!r} "
                                f"(type {type(cb).__name__}). Hint: subclass "
                                "attnlstm.callbacks.Callback, or wrap a function in LambdaCallback.")
        self._progbar = None
        self._history = None
        for cb in self.callbacks:
            if isinstance(cb, ProgbarLogger):
                self._progbar = cb
            elif isinstance(cb, History):
                self._history = cb
        if self._history is None and add_history:
            self._history = History()
            self.callbacks.append(self._history)
        if self._progbar is None and add_progbar:
            self._progbar = ProgbarLogger()
            self.callbacks.append(self._progbar)
        self.set_model(model)
        self.set_params(params)

    def set_params(self, params):
        self.params = params
        if params:
            for cb in self.callbacks:
                cb.set_params(params)

    def set_model(self, model):
        if model is None:
            return
        super().set_model(model)
        if self._history is not None:
            try:
                model.history = self._history
            except AttributeError:
                pass
        for cb in self.callbacks:
            cb.set_model(model)

    def append(self, callback):
        self.callbacks.append(callback)

    def __iter__(self):
        return iter(self.callbacks)

    def __len__(self):
        return len(self.callbacks)

    def _dispatch(self, hook, *args, logs=None):
        logs = _pythonify_logs(logs)
        for cb in self.callbacks:
            getattr(cb, hook)(*args, logs)


def _make_dispatch(hook, with_index):
    if with_index:
        def method(self, index, logs=None):
            self._dispatch(hook, index, logs=logs)
    else:
        def method(self, logs=None):
            self._dispatch(hook, logs=logs)
    method.__name__ = hook
    method.__doc__ = f"Call `{hook}` of every callback."
    return method


for _hook in _HOOKS_WITH_INDEX:
    setattr(CallbackList, _hook, _make_dispatch(_hook, True))
for _hook in ("on_train_begin", "on_train_end", "on_test_begin", "on_test_end",
              "on_predict_begin", "on_predict_end"):
    setattr(CallbackList, _hook, _make_dispatch(_hook, False))
del _hook


def _flatten_callbacks(callbacks):
    if callbacks is None:
        return []
    if isinstance(callbacks, CallbackList):
        return list(callbacks.callbacks)
    if isinstance(callbacks, (list, tuple)):
        out = []
        for cb in callbacks:
            out.extend(_flatten_callbacks(cb))
        return out
    return [callbacks]


class History(Callback):
    """Records the epoch logs (``keras.callbacks.History``; ``fit`` returns it).

    Attributes:
        history: dict ``{metric name: [value per epoch]}``.
        epoch: list of the epoch indices seen.
    """

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)
        if self.model is not None:
            try:
                self.model.history = self
            except AttributeError:
                pass


# ---------------------------------------------------------------------------------------------
# Progress bar


class Progbar:
    """A console progress bar in Keras 3's format.

    verbose=1 redraws one line in place (``8/8 ━━━━━━━━━━━━━━━━━━━━ 1s 12ms/step - loss: 0.6931``),
    at most every `interval` seconds and always on the final update; verbose=2 prints one line
    when finished; verbose=0 prints nothing.

    Args:
        target: total number of steps, or None if unknown.
        width: bar width in characters.
        verbose: 0, 1 or 2.
        interval: minimum seconds between two redraws (verbose=1).
        stateful_metrics: names shown as given; the others are averaged over the steps seen
            (weighted by the steps since the previous update). Give this or `stateless_metrics`.
        stateless_metrics: names that are averaged; the others are shown as given.
        unit_name: the unit in ``ms/step``.
    """

    def __init__(self, target, width=20, verbose=1, interval=0.05, stateful_metrics=None,
                 stateless_metrics=None, unit_name="step"):
        if stateful_metrics is not None and stateless_metrics is not None:
            raise ValueError("Progbar takes `stateful_metrics` or `stateless_metrics`, not both. "
                             f"Received: stateful_metrics={stateful_metrics}, "
                             f"stateless_metrics={stateless_metrics}")
        self.target = target
        self.width = width
        self.verbose = verbose
        self.interval = interval
        self.unit_name = unit_name
        if stateless_metrics is not None:
            self.stateful_metrics = None
            self.stateless_metrics = set(stateless_metrics)
        else:
            self.stateful_metrics = set(stateful_metrics or ())
            self.stateless_metrics = None
        # As Keras: redraw in place on a terminal, in notebooks and on POSIX systems.
        self._dynamic_display = ((hasattr(sys.stdout, "isatty") and sys.stdout.isatty())
                                 or "ipykernel" in sys.modules or "posix" in sys.modules
                                 or "PYCHARM_HOSTED" in os.environ)
        self._seen_so_far = 0
        self._values = {}
        self._values_order = []
        self._start = time.time()
        self._last_update = 0
        self._time_after_first_step = None
        self._prev_total_width = 0

    def _is_stateless(self, k):
        if self.stateful_metrics is not None:
            return k not in self.stateful_metrics
        return k in self.stateless_metrics

    def update(self, current, values=None, finalize=None):
        """Show progress `current` (steps done) with `values` = [(name, value), ...].

        Args:
            finalize: whether this is the last update; default ``current >= target``.
        """
        if finalize is None:
            finalize = False if self.target is None else current >= self.target
        for k, v in values or []:
            if k not in self._values_order:
                self._values_order.append(k)
            if self._is_stateless(k) and not finalize:
                base = max(current - self._seen_so_far, 1)
                if k not in self._values:
                    self._values[k] = [v * base, base]
                else:
                    self._values[k][0] += v * base
                    self._values[k][1] += base
            else:
                self._values[k] = [v, 1]
        self._seen_so_far = current

        now = time.time()
        time_per_unit = self._step_duration(current, now)
        if self.verbose == 1:
            if now - self._last_update < self.interval and not finalize:
                return
            message = ("\b" * self._prev_total_width + "\r") if self._dynamic_display else "\n"
            special = 0
            if self.target is not None and self.target > 0:
                digits = int(math.log10(self.target)) + 1
                bar = f"\x1b[1m{current:{digits}d}/{self.target}\x1b[0m "
                special += 8
                prog_width = int(self.width * float(current) / self.target)
                if prog_width > 0:
                    bar += f"\33[32m{'━' * prog_width}\x1b[0m"
                    special += 9
                bar += f"\33[37m{'━' * (self.width - prog_width)}\x1b[0m"
                special += 9
            else:
                bar = "%7d/Unknown" % current
            message += bar
            if self.target is not None and self.target > 0 and not finalize:
                eta = time_per_unit * (self.target - current)
                if eta > 3600:
                    eta_text = "%d:%02d:%02d" % (eta // 3600, (eta % 3600) // 60, eta % 60)
                elif eta > 60:
                    eta_text = "%d:%02d" % (eta // 60, eta % 60)
                else:
                    eta_text = "%ds" % eta
                info = f" \x1b[1m{eta_text}\x1b[0m"
            else:
                info = f" \x1b[1m{now - self._start:.0f}s\x1b[0m"
            special += 8
            info += _format_time(time_per_unit, self.unit_name)
            for k in self._values_order:
                info += f" - {k}: {_format_value(self._average(k), signed=True)}"
            message += info
            total_width = len(bar) + len(info) - special
            if self._prev_total_width > total_width:
                message += " " * (self._prev_total_width - total_width)
            if finalize:
                message += "\n"
            _print(message, line_break=False)
            self._prev_total_width = total_width
        elif self.verbose == 2:
            if finalize and self.target is not None and self.target > 0:
                digits = int(math.log10(self.target)) + 1
                info = f"{current:{digits}d}/{self.target} - {now - self._start:.0f}s"
                info += " -" + _format_time(time_per_unit, self.unit_name)
                for k in self._values_order:
                    # Keras compares the value itself (not its magnitude) here.
                    info += f" - {k}: {_format_value(self._average(k), signed=False)}"
                _print(info + "\n", line_break=False)
        self._last_update = now

    def add(self, n, values=None):
        """Advance by `n` steps."""
        self.update(self._seen_so_far + n, values)

    def _average(self, k):
        total, count = self._values[k]
        if not isinstance(total, float):
            total = np.mean(total)
        return total / max(1, count)

    def _step_duration(self, current, now):
        # The first step (often slow: warm-up) is left out of the estimate once there are more.
        if not current:
            return 0
        if self._time_after_first_step is not None and current > 1:
            per = (now - self._time_after_first_step) / (current - 1)
        else:
            per = (now - self._start) / current
        if current == 1:
            self._time_after_first_step = now
        return per


def _format_value(avg, signed):
    """Keras: 4 decimals, or e-notation when small (|x| <= 1e-3 at verbose 1, x <= 1e-3 at 2)."""
    big = abs(avg) > 1e-3 if signed else avg > 1e-3
    return f"{avg:.4f}" if big else f"{avg:.4e}"


def _format_time(seconds, unit_name):
    if seconds >= 1 or seconds == 0:
        return f" {seconds:.0f}s/{unit_name}"
    if seconds >= 1e-3:
        return f" {seconds * 1e3:.0f}ms/{unit_name}"
    return f" {seconds * 1e6:.0f}us/{unit_name}"


class ProgbarLogger(Callback):
    """Prints the ``Epoch i/N`` lines and a :class:`Progbar` per epoch (``keras.callbacks.ProgbarLogger``).

    Reads ``verbose`` ("auto" means 1), ``epochs`` and ``steps`` (None if unknown) from
    ``params``. In fit, validation batches do not move the bar; the validation metrics appear in
    the epoch's last line.
    """

    def __init__(self):
        super().__init__()
        self.seen = 0
        self.progbar = None
        self.target = None
        self.verbose = 1
        self.epochs = 1
        self._called_in_fit = False

    def set_params(self, params):
        super().set_params(params)
        verbose = params.get("verbose", 1)
        self.verbose = 1 if verbose == "auto" else verbose
        self.epochs = params.get("epochs", 1)
        self.target = params.get("steps")

    def on_train_begin(self, logs=None):
        self._called_in_fit = True

    def on_test_begin(self, logs=None):
        if not self._called_in_fit:
            self._reset_progbar()
            self._maybe_init_progbar()

    def on_predict_begin(self, logs=None):
        self._reset_progbar()
        self._maybe_init_progbar()

    def on_epoch_begin(self, epoch, logs=None):
        self._reset_progbar()
        self._maybe_init_progbar()
        if self.verbose and self.epochs > 1:
            _print(f"Epoch {epoch + 1}/{self.epochs}")

    def on_train_batch_end(self, batch, logs=None):
        self._update_progbar(batch, logs)

    def on_test_batch_end(self, batch, logs=None):
        if not self._called_in_fit:
            self._update_progbar(batch, logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._update_progbar(batch, None)

    def on_epoch_end(self, epoch, logs=None):
        self._finalize_progbar(logs)

    def on_test_end(self, logs=None):
        if not self._called_in_fit:
            self._finalize_progbar(logs)

    def on_predict_end(self, logs=None):
        self._finalize_progbar(logs)

    def _reset_progbar(self):
        self.seen = 0
        self.progbar = None

    def _maybe_init_progbar(self):
        if self.progbar is None:
            self.progbar = Progbar(target=self.target, verbose=self.verbose, unit_name="step",
                                   stateless_metrics=set())

    def _update_progbar(self, batch, logs=None):
        self._maybe_init_progbar()
        self.seen = batch + 1
        if self.verbose == 1:
            self.progbar.update(self.seen, list(_pythonify_logs(logs).items()), finalize=False)

    def _finalize_progbar(self, logs):
        self._maybe_init_progbar()
        if self.target is None:
            self.target = self.seen
            self.progbar.target = self.target
        self.progbar.update(self.target, list(_pythonify_logs(logs).items()), finalize=True)


# ---------------------------------------------------------------------------------------------
# Monitoring callbacks

# Directions of Keras' built-in metrics, for mode="auto" when the model does not expose metric
# objects with a direction (Keras reads ``metric._direction``).
_UP_METRICS = {"accuracy", "acc", "binary_accuracy", "categorical_accuracy",
               "sparse_categorical_accuracy", "top_k_categorical_accuracy",
               "sparse_top_k_categorical_accuracy", "auc", "precision", "recall", "f1_score",
               "fbeta_score", "r2_score", "iou", "mean_iou", "cosine_similarity",
               "precision_at_recall", "recall_at_precision", "sensitivity_at_specificity",
               "specificity_at_sensitivity", "true_positives", "true_negatives"}
_DOWN_METRICS = {"loss", "mse", "mae", "mape", "msle", "mean_squared_error",
                 "mean_absolute_error", "mean_absolute_percentage_error",
                 "mean_squared_logarithmic_error", "root_mean_squared_error", "rmse",
                 "binary_crossentropy", "categorical_crossentropy",
                 "sparse_categorical_crossentropy", "binary_focal_crossentropy",
                 "categorical_focal_crossentropy", "hinge", "squared_hinge", "categorical_hinge",
                 "kl_divergence", "kld", "poisson", "log_cosh_error", "logcosh",
                 "false_positives", "false_negatives"}


def _less(a, b):
    return a < b


def _greater(a, b):
    return a > b


class _MonitorCallback(Callback):
    """Shared rules of EarlyStopping, ModelCheckpoint and ReduceLROnPlateau (Keras' MonitorCallback).

    mode "min"/"max" fix the direction; "auto" minimises ``loss``/``val_loss``, otherwise takes
    the metric's direction (``model.metrics[i]._direction`` as Keras, else the known direction of
    Keras' built-in metric of that name) and raises ValueError when it cannot tell.
    An improvement is ``current - min_delta < best`` (min) or ``current - min_delta > best``
    (max), with min_delta made negative in min mode.
    """

    def __init__(self, monitor="val_loss", mode="auto", baseline=None, min_delta=0):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            warnings.warn(f"{type(self).__name__} mode '{mode}' is unknown, fallback to auto mode.",
                          stacklevel=3)
            mode = "auto"
        self.monitor = monitor
        self.mode = mode
        self.best = baseline
        self.min_delta = abs(min_delta)
        self.monitor_op = None

    def _set_monitor_op(self):
        if self.mode == "min":
            self.monitor_op = _less
        elif self.mode == "max":
            self.monitor_op = _greater
        else:
            name = self.monitor[4:] if self.monitor.startswith("val_") else self.monitor
            if name == "loss":
                self.monitor_op = _less
            for m in _model_metrics(self.model):
                if getattr(m, "name", None) == name:
                    direction = getattr(m, "_direction", getattr(m, "direction", None))
                    if direction == "up":
                        self.monitor_op = _greater
                    elif direction == "down":
                        self.monitor_op = _less
            if self.monitor_op is None:
                if name in _UP_METRICS:
                    self.monitor_op = _greater
                elif name in _DOWN_METRICS:
                    self.monitor_op = _less
            if self.monitor_op is None:
                raise ValueError(
                    f"{type(self).__name__} callback received monitor={self.monitor}, but "
                    "attnlstm (like Keras) isn't able to automatically determine whether that "
                    "metric should be maximized or minimized. Pass `mode='max'` in order to "
                    "monitor based on the highest metric value, or pass `mode='min'` in order "
                    "to use the lowest value.")
        if self.monitor_op is _less:
            self.min_delta *= -1

    def _is_improvement(self, value, reference):
        if reference is None:
            return True
        return bool(self.monitor_op(value - self.min_delta, reference))


def _model_metrics(model):
    """Metric objects of a model (flattening Keras-style metric containers)."""
    try:
        metrics = list(getattr(model, "metrics", None) or [])
    except Exception:  # a model property that fails before compile
        return []
    out = []
    for m in metrics:
        inner = getattr(m, "metrics", None)
        if isinstance(inner, (list, tuple)):
            out.extend(inner)
        out.append(m)
    return out


class EarlyStopping(_MonitorCallback):
    """Stop training when a monitored metric has stopped improving (``keras.callbacks.EarlyStopping``).

    Args:
        monitor: the logs key to watch, e.g. ``"val_loss"``.
        min_delta: smaller changes do not count as improvements.
        patience: epochs without improvement before stopping (counting starts at
            `start_from_epoch`; the first epoch never stops training).
        verbose: 1 prints when it stops and when it restores weights.
        mode: "auto", "min" or "max".
        baseline: training stops unless the metric improves past this value within `patience`
            epochs (the wait counter only resets on values better than the baseline).
        restore_best_weights: at the end of training (stopped early or not), set the weights of
            the best epoch seen.
        start_from_epoch: epochs to wait before watching (a warm-up).

    Attributes:
        stopped_epoch: the 0-based epoch at which training was stopped (0 if it was not).
        best, best_epoch, wait: the state of the watch.
    """

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        super().__init__(monitor, mode, min_delta=min_delta)
        self.patience = patience
        self.verbose = verbose
        self.baseline = baseline
        self.wait = 0
        self.stopped_epoch = 0
        self.restore_best_weights = restore_best_weights
        self.best_weights = None
        self.best_epoch = 0
        self.start_from_epoch = start_from_epoch

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        current = self.get_monitor_value(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            # The first watched epoch's weights, in case no epoch beats the baseline.
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            _print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                _print("Restoring model weights from the end of the best epoch: "
                       f"{self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)

    def get_monitor_value(self, logs):
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(f"Early stopping conditioned on metric `{self.monitor}` which is not "
                          f"available. Available metrics are: {','.join(list(logs.keys()))}",
                          stacklevel=3)
        return value


class ModelCheckpoint(_MonitorCallback):
    """Save the model or its weights during training (``keras.callbacks.ModelCheckpoint``).

    Args:
        filepath: where to save; may contain ``{epoch:02d}`` (1-based) and any logs key, e.g.
            ``"ckpt/{epoch:02d}-{val_loss:.2f}.weights.h5"``. With save_freq=int, ``{batch}`` too.
            Must end in ``.weights.h5`` when `save_weights_only`, else ``.keras`` (or legacy
            ``.h5``), which needs a model with a ``save`` method.
        monitor: the logs key used by `save_best_only`.
        verbose: 1 prints a line for each save decision.
        save_best_only: save only when `monitor` improves (always save if it is missing).
        save_weights_only: call ``model.save_weights(path, overwrite=True)`` instead of
            ``model.save(path, overwrite=True)``.
        mode: "auto", "min" or "max".
        save_freq: "epoch", or an int: save every that many training batches.
        initial_value_threshold: the starting "best" value for `save_best_only`.

    Raises:
        ValueError: a filepath with the wrong extension, an unknown save_freq, or a ``.keras``
            path with a model that cannot save whole models.
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto", save_freq="epoch",
                 initial_value_threshold=None):
        super().__init__(monitor, mode, initial_value_threshold)
        self.verbose = verbose
        self.filepath = os.fspath(filepath)
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.save_freq = save_freq
        self._batches_seen_since_last_saving = 0
        self._last_batch_seen = None
        self._current_epoch = 0
        if save_freq != "epoch" and not isinstance(save_freq, int):
            raise ValueError(f"Unrecognized save_freq: {save_freq}. Expected save_freq are "
                             "'epoch' or integer values")
        if save_weights_only:
            if not self.filepath.endswith(".weights.h5"):
                raise ValueError(
                    "When using `save_weights_only=True` in `ModelCheckpoint`, the filepath "
                    "provided must end in `.weights.h5` (Keras weights format). Received: "
                    f"filepath={self.filepath}")
        elif not self.filepath.endswith((".keras", ".h5")):
            raise ValueError(
                "The filepath provided must end in `.keras` (Keras model format). Received: "
                f"filepath={self.filepath}. Hint: to save only the weights, use a path ending "
                "in `.weights.h5` with save_weights_only=True.")

    def set_model(self, model):
        super().set_model(model)
        if model is not None and not self.save_weights_only:
            self._check_can_save(model)

    def _check_can_save(self, model):
        if not callable(getattr(model, "save", None)):
            raise ValueError(
                f"ModelCheckpoint(filepath={self.filepath!r}) saves whole models with "
                f"`model.save`, but model '{getattr(model, 'name', model)}' "
                f"({type(model).__name__}) has no `save` method. Hint: save the weights "
                "instead: ModelCheckpoint('....weights.h5', save_weights_only=True).")

    def on_train_batch_end(self, batch, logs=None):
        if self._should_save_on_batch(batch):
            self._save_model(self._current_epoch, batch, logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        if self.save_freq == "epoch":
            self._save_model(epoch, None, logs)

    def _should_save_on_batch(self, batch):
        if self.save_freq == "epoch":
            return False
        if self._last_batch_seen is None or batch <= self._last_batch_seen:
            added = batch + 1
        else:
            added = batch - self._last_batch_seen
        self._batches_seen_since_last_saving += added
        self._last_batch_seen = batch
        if self._batches_seen_since_last_saving >= self.save_freq:
            self._batches_seen_since_last_saving = 0
            return True
        return False

    def _should_save_model(self, epoch, logs, filepath):
        logs = logs or {}
        if not self.save_best_only:
            if self.verbose > 0:
                _print(f"\nEpoch {epoch + 1}: saving model to {filepath}")
            return True
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Can save best model only with {self.monitor} available.",
                          stacklevel=3)
            return True
        if isinstance(current, np.ndarray) and current.ndim > 0:
            warnings.warn("Can save best model only when `monitor` is a scalar value. Received: "
                          f"{current}. Falling back to `save_best_only=False`.", stacklevel=3)
            return True
        if self.monitor_op is None:
            self._set_monitor_op()
        best_str = "None" if self.best is None else f"{self.best:.5f}"
        if self._is_improvement(current, self.best):
            if self.verbose > 0:
                _print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {best_str} to "
                       f"{current:.5f}, saving model to {filepath}")
            self.best = current
            return True
        if self.verbose > 0:
            _print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best_str}")
        return False

    def _get_file_path(self, epoch, batch, logs):
        logs = logs or {}
        try:
            if batch is None or "batch" in logs:
                return self.filepath.format(epoch=epoch + 1, **logs)
            return self.filepath.format(epoch=epoch + 1, batch=batch + 1, **logs)
        except KeyError as e:
            raise KeyError(f'Failed to format this callback filepath: "{self.filepath}". '
                           f"Reason: {e}. Available keys: epoch, "
                           f"{', '.join(logs)}") from None

    def _save_model(self, epoch, batch, logs):
        filepath = self._get_file_path(epoch, batch, logs)
        if os.path.isdir(filepath):
            raise IOError("Please specify a non-directory filepath for ModelCheckpoint. "
                          f"Filepath used is an existing directory: {filepath}")
        if not self._should_save_model(epoch, logs, filepath):
            return
        dirname = os.path.dirname(filepath)
        if dirname:
            os.makedirs(dirname, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(filepath, overwrite=True)
        else:
            self._check_can_save(self.model)
            self.model.save(filepath, overwrite=True)
        if self.verbose > 0:
            _print(f"\nEpoch {epoch + 1}: finished saving model to {filepath}")


class ReduceLROnPlateau(_MonitorCallback):
    """Reduce the learning rate when a metric has stopped improving (``keras.callbacks.ReduceLROnPlateau``).

    After `patience` epochs without improvement (by more than `min_delta`), the learning rate
    becomes ``max(lr * factor, min_lr)`` (only while lr > min_lr); then `cooldown` epochs pass
    during which the wait counter stays at 0. Adds ``learning_rate`` to the epoch logs (so History
    records it).

    Args:
        monitor, mode, min_delta: as EarlyStopping (min_delta defaults to 1e-4 here).
        factor: multiplier, < 1.
        patience: epochs without improvement before a reduction.
        verbose: 1 prints each reduction.
        cooldown: epochs to wait after a reduction before counting again.
        min_lr: lower bound.

    Raises:
        ValueError: factor >= 1.
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0, **kwargs):
        super().__init__(monitor, mode, min_delta=min_delta)
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau does not support a factor >= 1.0. "
                             f"Received factor={factor}")
        self.factor = factor
        self.min_lr = min_lr
        self.patience = patience
        self.verbose = verbose
        self.cooldown = cooldown
        self.cooldown_counter = 0
        self.wait = 0

    def _reset(self):
        self.best = None
        self.cooldown_counter = 0
        self.wait = 0

    def on_train_begin(self, logs=None):
        self._reset()

    def in_cooldown(self):
        return self.cooldown_counter > 0

    def _optimizer(self):
        opt = getattr(self.model, "optimizer", None)
        if opt is None:
            raise ValueError(
                f"ReduceLROnPlateau needs the model's optimizer, but model "
                f"'{getattr(self.model, 'name', self.model)}' has none. Hint: call "
                "model.compile(optimizer=...) before fit.")
        return opt

    def _reduce(self, optimizer, epoch, name=""):
        old_lr = float(optimizer.learning_rate)
        if old_lr > np.float32(self.min_lr):
            new_lr = max(old_lr * self.factor, self.min_lr)
            optimizer.learning_rate = new_lr
            if self.verbose > 0:
                name_str = f" {name}" if name else ""
                _print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing{name_str} learning rate "
                       f"to {new_lr}.")
            return True
        return False

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        logs = logs if logs is not None else {}
        opt = self._optimizer()
        optimizers = getattr(opt, "optimizers", None)
        if optimizers:
            for o in optimizers:
                logs[f"learning_rate_{o.name}"] = float(o.learning_rate)
        else:
            logs["learning_rate"] = float(opt.learning_rate)
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Learning rate reduction is conditioned on metric `{self.monitor}` "
                          f"which is not available. Available metrics are: "
                          f"{','.join(list(logs.keys()))}.", stacklevel=3)
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience:
                if optimizers:
                    reduced = any([self._reduce(o, epoch, o.name) for o in optimizers])
                else:
                    reduced = self._reduce(opt, epoch)
                if reduced:
                    self.cooldown_counter = self.cooldown
                    self.wait = 0


class LambdaCallback(Callback):
    """A callback from plain functions (``keras.callbacks.LambdaCallback``).

    Args:
        on_epoch_begin, on_epoch_end: ``f(epoch, logs)``.
        on_train_begin, on_train_end: ``f(logs)``.
        on_train_batch_begin, on_train_batch_end: ``f(batch, logs)``.
        **kwargs: other hooks by name (e.g. ``on_test_end=f``), set as attributes.

    Example:
        >>> losses = []
        >>> cb = LambdaCallback(on_epoch_end=lambda epoch, logs: losses.append(logs["loss"]))
    """

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None,
                 on_train_end=None, on_train_batch_begin=None, on_train_batch_end=None, **kwargs):
        super().__init__()
        self.__dict__.update(kwargs)
        for name, fn in (("on_epoch_begin", on_epoch_begin), ("on_epoch_end", on_epoch_end),
                         ("on_train_begin", on_train_begin), ("on_train_end", on_train_end),
                         ("on_train_batch_begin", on_train_batch_begin),
                         ("on_train_batch_end", on_train_batch_end)):
            if fn is not None:
                setattr(self, name, fn)


class TerminateOnNaN(Callback):
    """Stop training when the batch loss is NaN or infinite (``keras.callbacks.TerminateOnNaN``).

    Args:
        raise_error: raise RuntimeError instead of setting ``model.stop_training``.
    """

    def __init__(self, raise_error=False):
        super().__init__()
        self.raise_error = raise_error

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and (np.isnan(loss) or np.isinf(loss)):
            if self.raise_error:
                raise RuntimeError(f"NaN or Inf loss encountered at batch {batch}. Loss value: "
                                   f"{loss}. Terminating training immediately.")
            _print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


class CSVLogger(Callback):
    """Write each epoch's logs as a CSV row (``keras.callbacks.CSVLogger``).

    The columns are ``epoch`` then the sorted keys of the first epoch's logs; if there is no
    ``val_`` key, ``val_<key>`` columns are added too (filled with ``NA``).

    Args:
        filename: the CSV file.
        separator: the field separator.
        append: append to an existing file (without a second header when it is not empty).
    """

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.sep = separator
        self.filename = os.fspath(filename)
        self.append = append
        self.writer = None
        self.keys = None
        self.append_header = True
        self.csv_file = None

    def on_train_begin(self, logs=None):
        if self.append:
            if os.path.exists(self.filename):
                with open(self.filename) as f:
                    self.append_header = not bool(len(f.readline()))
            mode = "a"
        else:
            mode = "w"
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.csv_file = open(self.filename, mode, newline="")
        self.writer = None
        self.keys = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}

        def handle_value(v):
            if isinstance(v, str):
                return v
            if isinstance(v, collections.abc.Iterable) and not \
                    (isinstance(v, np.ndarray) and v.ndim == 0):
                return f'"[{", ".join(map(str, v))}]"'
            return v

        if self.keys is None:
            self.keys = sorted(logs.keys())
            if self.keys and not any(k.startswith("val_") for k in self.keys):
                self.keys.extend([f"val_{k}" for k in self.keys])
        if self.writer is None:
            sep = self.sep

            class _Dialect(csv.excel):
                delimiter = sep

            self.writer = csv.DictWriter(self.csv_file, fieldnames=["epoch"] + self.keys,
                                         dialect=_Dialect)
            if self.append_header:
                self.writer.writeheader()
        row = {"epoch": epoch}
        row.update((k, handle_value(logs.get(k, "NA"))) for k in self.keys)
        self.writer.writerow(row)
        self.csv_file.flush()

    def on_train_end(self, logs=None):
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.writer = None
