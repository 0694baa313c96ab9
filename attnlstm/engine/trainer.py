"""Training: ``compile``, ``fit``, ``evaluate``, ``train_on_batch``, ``test_on_batch`` (Keras 3).

One training step is one recorded forward (each layer's C kernel called once per batch), the
loss and its gradient w.r.t. the outputs, one backward through the recorded calls, and one
optimizer update. Target shapes are checked against the outputs before the first step, so a
target that cannot match the model is a ShapeError, never a silent broadcast.
"""
import numpy as np

from ..errors import ShapeError, format_shape, shape_error
from .base import KerasTensor, flatten
from .data_adapters import BatchSource, is_batch_source, unpack_x_y_sample_weight

__all__ = ["Trainer"]


class Trainer:
    """Keras' training API, mixed into :class:`~attnlstm.Model`."""

    compiled = False

    # -- compile --------------------------------------------------------------------------------

    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None,
                weighted_metrics=None, run_eagerly=False, steps_per_execution=1, jit_compile="auto",
                auto_scale_loss=True):
        """Configure the model for training (``keras.Model.compile``).

        Args:
            optimizer: name ("sgd", "adam", "adamw", "rmsprop") or an optimizer instance.
            loss: name, Loss instance, or one per output (list in output order, or dict by
                output layer name). None trains only on losses added with ``add_loss``.
            loss_weights: one float per output (list or dict); the total loss is the weighted
                sum of output losses plus every ``add_loss`` term.
            metrics: list of metric names/instances (every output gets them), or a list of lists
                / dict by output name.
            weighted_metrics: as `metrics`, weighted by ``sample_weight``.
            run_eagerly, jit_compile, auto_scale_loss: accepted for Keras compatibility; they
                do not change results (attnlstm always runs eagerly, in one dtype, without XLA).
            steps_per_execution: only 1.

        Raises:
            ValueError: an unknown optimizer/loss/metric, a loss structure that does not match
                the outputs (naming them), or steps_per_execution other than 1.
        """
        from .. import losses as losses_mod
        from .. import optimizers as optimizers_mod
        if steps_per_execution != 1:
            # Keras would then call the batch callbacks once per group of batches.
            raise ValueError(f"attnlstm runs one batch per step; only steps_per_execution=1 is "
                             f"supported. Received: steps_per_execution={steps_per_execution!r}")
        self._ensure_compile_graph()
        self.optimizer = optimizers_mod.get(optimizer)
        names = self._output_names()
        self._loss_fns = self._per_output(loss, names, "loss", losses_mod.get)
        self._loss_weights = self._per_output(loss_weights, names, "loss_weights", float,
                                              default=1.0)
        self._metric_specs = self._per_output_list(metrics, names, "metrics")
        self._weighted_metric_specs = self._per_output_list(weighted_metrics, names,
                                                            "weighted_metrics")
        self.loss = loss
        self._metrics_built = False
        self._metric_objs = None
        self.compiled = True
        self.stop_training = False

    def _ensure_compile_graph(self):
        if not getattr(self, "_graph_ready", False):
            if hasattr(self, "_stack") and self._stack and self._stack[0]._batch_input_shape:
                self.build(self._stack[0]._batch_input_shape)
            elif hasattr(self, "_stack") or getattr(self, "_subclassed", False):
                return  # Sequential without an input shape / subclassed: built on the first fit
            else:
                raise ValueError(f"Model '{self.name}' has no graph to compile.")

    def _output_names(self):
        if isinstance(getattr(self, "_outputs_struct", None), dict):
            return list(self._outputs_struct)
        return [t.producer.name for t in self.outputs] if getattr(self, "_graph_ready", False) \
            else [None]

    def _output_who(self, k):
        names = self._output_names()
        if len(names) == 1:
            return f"Model '{self.name}' output '{names[0]}'"
        return f"Model '{self.name}' output {k} ('{names[k]}')"

    def _per_output(self, spec, names, what, convert, default=None):
        n = len(names)
        if spec is None:
            return [default] * n
        if isinstance(spec, dict):
            unknown = [k for k in spec if k not in names]
            if unknown:
                raise ValueError(f"compile: `{what}` has keys {unknown} that are not output names; "
                                 f"the outputs are {names}.")
            return [convert(spec[k]) if k in spec else default for k in names]
        if isinstance(spec, (list, tuple)):
            if len(spec) != n:
                raise ValueError(f"compile: `{what}` has {len(spec)} entries but the model has {n} "
                                 f"output(s) {names}. Pass one per output (or a dict by name).")
            return [None if s is None else convert(s) for s in spec]
        return [convert(spec)] * n

    def _per_output_list(self, spec, names, what):
        n = len(names)
        if spec is None:
            return [[] for _ in range(n)]
        if isinstance(spec, dict):
            unknown = [k for k in spec if k not in names]
            if unknown:
                raise ValueError(f"compile: `{what}` has keys {unknown} that are not output names; "
                                 f"the outputs are {names}.")
            return [_as_list(spec.get(k)) for k in names]
        spec = list(spec) if isinstance(spec, (list, tuple)) else [spec]
        if n > 1 and len(spec) == n and all(isinstance(s, (list, tuple)) or s is None for s in spec):
            return [_as_list(s) for s in spec]
        return [list(spec) for _ in range(n)]

    def _assert_compiled(self, what):
        if not self.compiled:
            raise RuntimeError(f"You must call `compile()` before `{what}()` on model "
                               f"'{self.name}'.")

    # -- metrics --------------------------------------------------------------------------------

    def _build_metrics(self, y_list):
        """Metric objects per output (resolved once, with the first targets' shapes)."""
        from .. import metrics as metrics_mod
        if self._metrics_built:
            return
        names = self._output_names()
        multi = len(names) > 1
        self._loss_tracker = metrics_mod.Mean(name="loss")
        objs = []
        for k in range(len(names)):
            yk = y_list[k] if y_list is not None and k < len(y_list) else None
            ys = None if yk is None else np.shape(yk)
            for spec, weighted in ([(s, False) for s in self._metric_specs[k]] +
                                   [(s, True) for s in self._weighted_metric_specs[k]]):
                m = metrics_mod.get(spec, loss=self._loss_fns[k], y_true_shape=ys,
                                    y_pred_shape=self.outputs[k].shape)
                label = m.name if not multi else f"{names[k]}_{m.name}"
                objs.append((k, m, weighted, label))
        self._metric_objs = objs
        self._output_loss_trackers = [metrics_mod.Mean(name=f"{n}_loss") for n in names] \
            if multi else []
        self._named_loss_trackers = {}
        self._metrics_built = True

    @property
    def metrics(self):
        """The metric objects: the loss tracker(s) first, then the compiled metrics (Keras)."""
        if not self.compiled or not self._metrics_built:
            return []
        return [self._loss_tracker, *self._output_loss_trackers,
                *self._named_loss_trackers.values(), *(m for _, m, _, _ in self._metric_objs)]

    @property
    def metrics_names(self):
        """Names of the logged values, "loss" first, as Keras."""
        if not self.compiled:
            return []
        if not self._metrics_built:
            return ["loss"]
        names = self._output_names()
        out = ["loss"]
        if len(names) > 1:
            out += [f"{n}_loss" for n in names]
        return out + list(self._named_loss_trackers) + \
            [label for _, _, _, label in self._metric_objs]

    def reset_metrics(self):
        """Reset the running loss and metrics (fit and evaluate do it at their start)."""
        if not getattr(self, "_metrics_built", False):
            return
        self._loss_tracker.reset_state()
        for tr in self._output_loss_trackers:
            tr.reset_state()
        for _, m, _, _ in self._metric_objs:
            m.reset_state()
        for tr in self._named_loss_trackers.values():
            tr.reset_state()

    def _logs(self):
        logs = {"loss": float(self._loss_tracker.result())}
        names = self._output_names()
        for n, tr in zip(names, self._output_loss_trackers):
            logs[f"{n}_loss"] = float(tr.result())
        for _, m, _, label in self._metric_objs:
            logs[label] = float(m.result())
        for k, tr in self._named_loss_trackers.items():
            logs[k] = float(tr.result())
        return logs

    # -- data -----------------------------------------------------------------------------------

    def _y_as_list(self, y):
        n = len(self.outputs)
        if y is None:
            return None
        if isinstance(self._outputs_struct, dict):
            if not isinstance(y, dict):
                raise ValueError(f"Model '{self.name}' has outputs {list(self._outputs_struct)}; "
                                 f"pass `y` as a dict with those keys.")
            return [None if y.get(k) is None else np.asarray(y[k]) for k in self._outputs_struct]
        if n == 1:
            if isinstance(y, (list, tuple)) and len(y) == 1 and np.ndim(y[0]) >= 1:
                return [np.asarray(y[0])]
            return [np.asarray(y)]
        if not isinstance(y, (list, tuple)) or len(y) != n:
            raise ValueError(f"Model '{self.name}' has {n} outputs {self._output_names()}; pass "
                             f"`y` as a list of {n} arrays (or a dict by output name).")
        return [None if v is None else np.asarray(v) for v in y]

    def _prepare(self, x, y, sample_weight, what):
        """Inputs and targets as lists of arrays with equal first axes, shapes checked."""
        self._ensure_graph(x)
        xs = [self._convert_input(t, v) for t, v in zip(self.inputs, self._inputs_as_list(x))]
        self._check_inputs(xs)
        ys = self._y_as_list(y)
        n = xs[0].shape[0]
        sizes = {f"x[{k}]" if len(xs) > 1 else "x": v.shape[0] for k, v in enumerate(xs)}
        if ys is not None:
            for k, v in enumerate(ys):
                if v is not None:
                    if v.ndim == 0:
                        raise shape_error(self._output_who(k), "y", ("samples", "..."), v.shape,
                                          "pass one target per sample.")
                    sizes[f"y[{k}]" if len(ys) > 1 else "y"] = v.shape[0]
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight)
            sizes["sample_weight"] = sample_weight.shape[0] if sample_weight.ndim else None
        if len(set(sizes.values())) > 1:
            raise ValueError(f"{what}: all arrays must have the same number of samples (first "
                             f"axis); got {sizes}.")
        if sample_weight is not None:
            for k, t in enumerate(self.outputs):
                want = t.shape[:max(1, len(t.shape) - 1)]
                got = tuple(sample_weight.shape)
                ok = 1 <= len(got) <= len(want) and all(
                    w is None or w == g for w, g in zip(want[1:], got[1:]))
                if not ok:
                    names = ("samples",) + tuple("timesteps" if w is None else w
                                                 for w in want[1:])
                    raise shape_error(
                        self._output_who(k), "sample_weight", names[:1], got,
                        f"pass one weight per sample {format_shape(names[:1])}"
                        + (f", or one per sample and step {format_shape(names)}"
                           if len(names) > 1 else "") + ".",
                        message=f"`sample_weight` must have shape {format_shape(names[:1])}"
                                + (f" or {format_shape(names)}" if len(names) > 1 else "")
                                + f" for an output of shape {format_shape(t.shape)}, got "
                                  f"{format_shape(got)}.")
        if ys is not None:
            self._validate_targets(ys)
        return xs, ys, sample_weight, n

    def _validate_targets(self, ys):
        from .. import losses as losses_mod
        for k, (fn, yk, t) in enumerate(zip(self._loss_fns, ys, self.outputs)):
            if fn is None or yk is None:
                continue
            try:
                losses_mod.validate_target(fn, tuple(yk.shape), yk.dtype, t.shape,
                                           self._output_who(k))
            except ShapeError as err:
                raise _with_producer_hint(err, t) from None

    # -- one step -------------------------------------------------------------------------------

    def _loss_and_output_grads(self, ys, outs, masks, sample_weight, tape=None):
        """Total compiled loss, per-output losses, the gradient w.r.t. each output, and the
        gradients w.r.t. the logits of outputs whose crossentropy is taken from logits.

        As Keras on TensorFlow: a crossentropy on the output of a ``Dense``/``Activation`` with
        a softmax or sigmoid activation is computed from that layer's pre-activation values
        (``_keras_logits``), which stays finite when the probabilities saturate.
        """
        total = 0.0
        per_output, d_outs, logit_grads = [], [], {}
        for k, (fn, w, out) in enumerate(zip(self._loss_fns, self._loss_weights, outs)):
            if fn is None or ys is None or ys[k] is None:
                per_output.append(None)
                d_outs.append(None)
                continue
            sw = sample_weight
            if sw is not None and 0 < sw.ndim < out.ndim - 1:
                # One weight per sequence for a per-step loss (Keras would fail in the graph).
                sw = sw.reshape(sw.shape + (1,) * (out.ndim - 1 - sw.ndim))
            mask = masks[k] if masks is not None else None
            w = 1.0 if w is None else w
            logits = _output_logits(self.outputs[k], tape)
            twin = fn.logits_loss() if logits is not None and hasattr(fn, "logits_loss") else None
            if twin is not None:
                value, d = twin.value_and_grad(ys[k], logits, sample_weight=sw, mask=mask)
                logit_grads[id(self.outputs[k])] = d * np.asarray(w, d.dtype) if w != 1.0 else d
                d_outs.append(None)
            else:
                value, d = fn.value_and_grad(ys[k], out, sample_weight=sw, mask=mask)
                d_outs.append(d * np.asarray(w, d.dtype) if w != 1.0 else d)
            total += w * value
            per_output.append(value)
        return total, per_output, d_outs, logit_grads

    def _loss_and_weight_grads(self, xs, ys, sample_weight, training, need_grads):
        """Recorded forward, total loss (add_loss terms included) and, if `need_grads`, the
        weight gradients ``{Variable: array}`` from one backward."""
        outs, tape = self.forward(xs if len(xs) > 1 else xs[0], training=training)
        multi = isinstance(self._outputs_struct, (list, tuple, dict))
        out_list = flatten(outs) if multi else [outs]
        masks = flatten(self._last_output_masks) if multi else [self._last_output_masks]
        total, per_output, d_outs, logit_grads = self._loss_and_output_grads(
            ys, out_list, masks, sample_weight, tape)
        total += float(sum(self._losses)) if self._losses else 0.0
        grads = None
        if need_grads:
            grads = self.backward(tape, _unflatten(self._outputs_struct, d_outs),
                                  need_input_grad=False, logit_grads=logit_grads).weights
        total += self._add_weight_penalties(grads)
        return total, per_output, out_list, masks, grads

    def _add_weight_penalties(self, grads):
        """Sum of the trainable weights' regularizer penalties (Keras adds them to the loss
        in ``compute_loss``); with `grads`, each penalty's gradient is added to its weight's."""
        from .. import regularizers
        total, seen = 0.0, set()
        for v in self.trainable_weights:
            if v.regularizer is None or id(v) in seen:
                continue
            seen.add(id(v))
            total += float(v.regularizer(v.value))
            if grads is not None:
                g = regularizers.gradient_of(v.regularizer, v.value,
                                             f"regularizer of weight '{v.path}'")
                grads[v] = grads[v] + g if v in grads else g
        return total

    def _step(self, xs, ys, sample_weight, train):
        """One batch: forward (recorded), loss, backward and update when training, metrics."""
        total, per_output, out_list, masks, grads = self._loss_and_weight_grads(
            xs, ys, sample_weight, training=train, need_grads=train)
        if train:
            variables = self.trainable_weights
            self.optimizer.apply([grads.get(v) for v in variables], variables)
        n = xs[0].shape[0]
        self._loss_tracker.update_state(total, sample_weight=n)
        for tr, v in zip(self._output_loss_trackers, per_output):
            if v is not None:
                tr.update_state(v, sample_weight=n)
        if self._named_losses:
            from .. import metrics as metrics_mod
            for name, value in self._named_losses.items():
                if name not in self._named_loss_trackers:
                    tracker = metrics_mod.Mean(name=name)
                    tracker._direction = "down"  # a loss term: lower is better
                    self._named_loss_trackers[name] = tracker
                self._named_loss_trackers[name].update_state(value, sample_weight=n)
        for k, m, weighted, _ in self._metric_objs:
            if ys is None or ys[k] is None:
                continue
            m.update_state(ys[k], out_list[k], sample_weight=sample_weight if weighted else None,
                           mask=masks[k])
        return total

    # -- public API -----------------------------------------------------------------------------

    def compute_gradients(self, x, y=None, sample_weight=None, training=False):
        """The compiled loss on one batch and its gradient for every trainable weight.

        Args:
            x, y, sample_weight: one batch, as for :meth:`train_on_batch`.
            training: run dropout as in training (default False: deterministic).

        Returns:
            ``(loss, grads)``: the total loss (a float, add_loss terms included) and a list of
            arrays in ``model.trainable_weights`` order (Keras' ``GradientTape.gradient``).

        Raises:
            ShapeError: inputs or targets whose shapes cannot match the model.
        """
        self._assert_compiled("compute_gradients")
        xs, ys, sw, _ = self._prepare(x, y, sample_weight, "compute_gradients")
        total, _, _, _, grads = self._loss_and_weight_grads(xs, ys, sw, training, True)
        return total, [grads.get(v, np.zeros_like(v.value)) for v in self.trainable_weights]

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        """One gradient step on one batch (``keras.Model.train_on_batch``).

        The returned loss and metrics are this batch's (metrics are reset first, as Keras 3).

        Returns:
            The loss (a float), or ``[loss, *metrics]`` when the model has metrics, or the dict
            of logs with ``return_dict=True``.

        Raises:
            ShapeError: inputs or targets whose shapes cannot match the model.
        """
        self._assert_compiled("train_on_batch")
        xs, ys, sw, _ = self._prepare(x, y, sample_weight, "train_on_batch")
        sw = _apply_class_weight(sw, ys, class_weight)
        self._build_metrics(ys)
        self.reset_metrics()
        self._step(xs, ys, sw, train=True)
        return self._return_logs(return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """Loss and metrics on one batch, without updating (``keras.Model.test_on_batch``)."""
        self._assert_compiled("test_on_batch")
        xs, ys, sw, _ = self._prepare(x, y, sample_weight, "test_on_batch")
        self._build_metrics(ys)
        self.reset_metrics()
        self._step(xs, ys, sw, train=False)
        return self._return_logs(return_dict)

    def _return_logs(self, return_dict):
        logs = self._logs()
        if return_dict:
            return logs
        values = [logs[k] for k in self.metrics_names if k in logs]
        return values[0] if len(values) == 1 else values

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1):
        """Train for `epochs` passes over the data (``keras.Model.fit``).

        Args:
            x: inputs, an array `(N, ...)` (a list/dict for several inputs).
            y: targets, an array `(N, ...)` per output (a list/dict for several outputs).
            batch_size: samples per gradient step (default 32); the last batch may be smaller.
            epochs: index of the last epoch (training runs from `initial_epoch`).
            verbose: "auto"/1 = progress bar, 2 = one line per epoch, 0 = silent.
            callbacks: list of :mod:`attnlstm.callbacks` objects.
            validation_split: fraction of the samples, taken from the end before shuffling, held
                out for validation.
            validation_data: ``(x_val, y_val)`` or ``(x_val, y_val, sample_weight_val)``.
            shuffle: reshuffle the samples every epoch ("batch" shuffles batch-sized chunks).
            class_weight: ``{class index: weight}``, multiplies the sample weights.
            sample_weight: `(N,)` per-sample loss weights (or `(N, T)` for sequence outputs).
            initial_epoch: epoch to resume from.
            steps_per_epoch: batches per epoch (default all).
            validation_steps: validation batches per validation (default all).
            validation_batch_size: samples per validation batch (default `batch_size`).
            validation_freq: validate every this many epochs.

        Returns:
            A :class:`~attnlstm.callbacks.History` (``.history``: lists per logged value).

        Raises:
            RuntimeError: the model is not compiled.
            ShapeError: inputs or targets that cannot match the model, before the first step
                (e.g. a `(N, 1)` target for a `(N, T, 1)` output: the hint names the layer).
            ValueError: arrays with different numbers of samples.
        """
        from .. import callbacks as callbacks_mod
        self._assert_compiled("fit")
        _n_steps(1, 1, validation_steps)                 # reject a bad value before training
        source = None
        if is_batch_source(x):
            _no_separate_targets("fit", y, sample_weight, validation_split)
            source = BatchSource(x, steps_per_epoch, "fit")
            xs = ys = sw = None
            n = 0
        else:
            xs, ys, sw, n = self._prepare(x, y, sample_weight, "fit")
        val = None
        if validation_data is not None:
            val = (BatchSource(validation_data, validation_steps, "fit (validation_data)")
                   if is_batch_source(validation_data) else
                   self._unpack_validation(validation_data))
        elif validation_split:
            if not 0.0 < validation_split < 1.0:
                raise ValueError(f"`validation_split` must be in (0, 1). Received: "
                                 f"validation_split={validation_split}")
            split = int(np.floor(n * (1.0 - validation_split)))
            val = ([v[split:] for v in xs],
                   None if ys is None else [None if v is None else v[split:] for v in ys],
                   None if sw is None or sw.ndim == 0 else sw[split:])
            xs = [v[:split] for v in xs]
            ys = None if ys is None else [None if v is None else v[:split] for v in ys]
            sw = None if sw is None or sw.ndim == 0 else sw[:split]
            n = split
        batch_size = _batch_size(batch_size)
        if source is None:
            sw = _apply_class_weight(sw, ys, class_weight)
            self._build_metrics(ys)
            steps = max(1, -(-n // batch_size)) if n else 0
            if steps_per_epoch is not None:
                steps = min(steps, int(steps_per_epoch))
        else:
            steps = source.num_steps
        verbose = 1 if verbose == "auto" else int(verbose)
        cbs = callbacks_mod.CallbackList(callbacks, add_history=True, add_progbar=verbose != 0,
                                         model=self, verbose=verbose, epochs=epochs, steps=steps)
        self.stop_training = False
        rng = _shuffle_rng()
        cbs.on_train_begin()
        logs = {}
        for epoch in range(initial_epoch, epochs):
            self.reset_metrics()
            cbs.on_epoch_begin(epoch)
            if source is None:
                batches = _array_batches(xs, ys, sw, _order(n, shuffle, batch_size, rng),
                                         batch_size, steps)
            else:
                batches = self._source_batches(source, "fit", class_weight)
            custom = type(self).train_step is not Trainer.train_step
            if custom:
                self._reset_custom_metrics()
            for step, (bx, by, bw) in enumerate(batches):
                cbs.on_train_batch_begin(step)
                if custom:
                    logs = _float_logs(self.train_step(self._pack_data(bx, by, bw)))
                    self._custom_logs = logs
                else:
                    self._step(bx, by, bw, train=True)
                    logs = self._logs()
                cbs.on_train_batch_end(step, logs)
                if self.stop_training:
                    break
            if source is not None and source.exhausted:
                self.stop_training = True
                break
            logs = dict(self._custom_logs) if custom else self._logs()
            if val is not None and (epoch + 1) % validation_freq == 0:
                if isinstance(val, BatchSource):
                    val_logs = self._evaluate_batches(
                        self._source_batches(val, "fit (validation_data)"), None)
                else:
                    val_logs = self._evaluate_arrays(*val, batch_size=validation_batch_size or
                                                     batch_size, callbacks=None,
                                                     max_steps=validation_steps)
                logs.update({f"val_{k}": v for k, v in val_logs.items()})
            cbs.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        cbs.on_train_end(logs)
        history = next(c for c in cbs.callbacks if isinstance(c, callbacks_mod.History))
        self.history = history
        return history

    def _unpack_validation(self, data):
        if not isinstance(data, (list, tuple)) or len(data) not in (2, 3):
            raise ValueError("`validation_data` must be a tuple (x_val, y_val) or (x_val, y_val, "
                             f"sample_weight_val). Received: {type(data).__name__}"
                             f"{'' if not isinstance(data, (list, tuple)) else f' of {len(data)}'}")
        xv, yv = data[0], data[1]
        swv = data[2] if len(data) == 3 else None
        if isinstance(xv, list) and len(xv) == len(self.inputs) and all(
                isinstance(v, np.ndarray) for v in xv) and len(self.inputs) == 1:
            xv = xv[0]
        if isinstance(yv, list) and len(self.outputs) == 1 and len(yv) == 1:
            yv = yv[0]
        xs, ys, sw, _ = self._prepare(xv if len(self.inputs) > 1 or not isinstance(xv, list)
                                      else xv[0], yv, swv, "fit (validation_data)")
        return xs, ys, sw

    # -- Keras 3's custom training step -----------------------------------------------------------

    def train_step(self, data):
        """One training step on one batch (``keras.Model.train_step``); ``fit`` calls a
        subclass's override with each batch ``data`` = ``(x,)``, ``(x, y)`` or
        ``(x, y, sample_weight)`` and logs the dict it returns.

        An override computes gradients with :class:`attnlstm.GradientTape` (the TensorFlow
        backend's contract), applies them with ``self.optimizer.apply_gradients`` and updates
        its metrics::

            def train_step(self, data):
                x, y = data
                with attnlstm.GradientTape() as tape:
                    y_pred = self(x, training=True)
                    loss = self.compute_loss(y=y, y_pred=y_pred)
                grads = tape.gradient(loss, self.trainable_weights)
                self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
                return {"loss": loss}

        The default is attnlstm's own step (recorded forward, loss, backward, update).
        """
        x, y, sw = unpack_x_y_sample_weight(data)
        xs, ys, sws, _ = self._prepare(x, y, sw, "train_step")
        self._build_metrics(ys)
        self._step(xs, ys, sws, train=True)
        return self._logs()

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The compiled loss of `y_pred` against `y` (``keras.Model.compute_loss``), weighted by
        ``loss_weights``; differentiable inside a :class:`~attnlstm.GradientTape` (each compiled
        loss's own gradient is its VJP). Weight penalties and ``add_loss`` terms are not
        included here; add them to the returned value if the step needs them.

        Raises:
            RuntimeError: the model is not compiled with a loss.
        """
        self._assert_compiled("compute_loss")
        ys = y if isinstance(y, (list, tuple)) and len(self._loss_fns) > 1 else [y]
        preds = y_pred if isinstance(y_pred, (list, tuple)) and len(self._loss_fns) > 1 \
            else [y_pred]
        total = 0.0
        for fn, w, yk, pk in zip(self._loss_fns, self._loss_weights, ys, preds):
            if fn is None or yk is None:
                continue
            total = total + w * _traced_loss(fn, np.asarray(yk), pk, sample_weight)
        return total

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        """Update the compiled metrics with one batch and return every metric's current result
        (``keras.Model.compute_metrics``), for a custom ``train_step``/``test_step``.

        Returns:
            dict ``{name: float}`` with the compiled metrics (and the loss tracker's value once
            it has been updated).
        """
        from autograd.tracer import getval
        self._assert_compiled("compute_metrics")
        preds = getval(y_pred)
        ys = self._y_as_list(getval(y))
        out_list = flatten(preds) if isinstance(self._outputs_struct, (list, tuple, dict)) \
            else [preds]
        self._build_metrics(ys)
        for k, m, weighted, _ in self._metric_objs:
            if ys is None or ys[k] is None:
                continue
            m.update_state(ys[k], np.asarray(out_list[k]),
                           sample_weight=getval(sample_weight) if weighted else None)
        return self.get_metrics_result()

    def get_metrics_result(self):
        """``{name: float}`` of the compiled metrics' current results (``keras.Model``)."""
        if not getattr(self, "_metrics_built", False):
            return {}
        logs = {label: float(m.result()) for _, m, _, label in self._metric_objs}
        if getattr(self._loss_tracker, "count", 0):
            logs = {"loss": float(self._loss_tracker.result()), **logs}
        return logs

    def _pack_data(self, bx, by, bw):
        x = bx[0] if len(bx) == 1 else bx
        if by is None:
            return (x,)
        y = by[0] if len(by) == 1 else by
        return (x, y) if bw is None else (x, y, bw)

    def _reset_custom_metrics(self):
        self._custom_logs = {}
        for m in self.metrics:
            if hasattr(m, "reset_state"):
                m.reset_state()

    def _source_batches(self, source, what, class_weight=None):
        """Checked ``(xs, ys, sample_weight)`` lists for each batch of one epoch of `source`
        (every batch is checked like arrays; metrics are built from the first one)."""
        for batch in source.epoch():
            bx, by, bw = unpack_x_y_sample_weight(batch)
            bxs, bys, bws, _ = self._prepare(bx, by, bw, what)
            bws = _apply_class_weight(bws, bys, class_weight)
            self._build_metrics(bys)
            yield bxs, bys, bws

    def _evaluate_arrays(self, xs, ys, sw, batch_size, callbacks, max_steps=None):
        """Running loss/metrics over arrays (at most `max_steps` batches), without updating
        (restoring the training metrics' state is not needed: fit resets them each epoch)."""
        n = xs[0].shape[0]
        steps = _n_steps(n, batch_size, max_steps)
        return self._evaluate_batches(
            _array_batches(xs, ys, sw, np.arange(n), batch_size, steps), callbacks)

    def _evaluate_batches(self, batches, callbacks):
        """Running loss/metrics over ``(xs, ys, sample_weight)`` batches, without updating."""
        self.reset_metrics()
        if callbacks is not None:
            callbacks.on_test_begin()
        for step, (bx, by, bw) in enumerate(batches):
            if callbacks is not None:
                callbacks.on_test_batch_begin(step)
            self._step(bx, by, bw, train=False)
            if callbacks is not None:
                callbacks.on_test_batch_end(step, self._logs())
        logs = self._logs()
        if callbacks is not None:
            callbacks.on_test_end(logs)
        return logs

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 steps=None, callbacks=None, return_dict=False):
        """Loss and metrics over a dataset (``keras.Model.evaluate``).

        Args:
            steps: evaluate at most this many batches (default all).

        Returns:
            The loss, or ``[loss, *metrics]`` (in ``metrics_names`` order), or a dict with
            ``return_dict=True``.

        Raises:
            ShapeError: inputs or targets that cannot match the model.
        """
        from .. import callbacks as callbacks_mod
        self._assert_compiled("evaluate")
        verbose = 1 if verbose == "auto" else int(verbose)
        if is_batch_source(x):
            _no_separate_targets("evaluate", y, sample_weight)
            source = BatchSource(x, steps, "evaluate")
            cbs = callbacks_mod.CallbackList(callbacks, add_history=False,
                                             add_progbar=verbose != 0, model=self,
                                             verbose=verbose, epochs=1, steps=source.num_steps)
            self._evaluate_batches(self._source_batches(source, "evaluate"), cbs)
            return self._return_logs(return_dict)
        xs, ys, sw, n = self._prepare(x, y, sample_weight, "evaluate")
        self._build_metrics(ys)
        batch_size = _batch_size(batch_size)
        n_steps = _n_steps(n, batch_size, steps, "steps")
        cbs = callbacks_mod.CallbackList(callbacks, add_history=False, add_progbar=verbose != 0,
                                         model=self, verbose=verbose, epochs=1, steps=n_steps)
        self._evaluate_arrays(xs, ys, sw, batch_size, cbs, max_steps=steps)
        return self._return_logs(return_dict)


# ---------------------------------------------------------------------------------------------


def _float_logs(logs):
    """A train_step's returned dict as floats (metric objects give their result)."""
    out = {}
    for k, v in (logs or {}).items():
        if hasattr(v, "result"):
            v = v.result()
        from autograd.tracer import getval
        out[k] = float(np.asarray(getval(v)))
    return out


def _traced_loss(fn, y_true, y_pred, sample_weight):
    """`fn(y_true, y_pred)` as one autograd primitive whose VJP is the loss's own gradient."""
    from autograd.extend import defvjp, primitive
    global _loss_primitive
    if _loss_primitive is None:
        @primitive
        def loss_value(fn, y_true, y_pred, sample_weight):
            return np.asarray(fn.value_and_grad(y_true, y_pred, sample_weight)[0], np.float64)

        def vjp(ans, fn, y_true, y_pred, sample_weight):
            grad = fn.value_and_grad(y_true, y_pred, sample_weight)[1]
            return lambda g: g * grad
        defvjp(loss_value, None, None, vjp)
        _loss_primitive = loss_value
    return _loss_primitive(fn, y_true, y_pred, sample_weight)


_loss_primitive = None


def _array_batches(xs, ys, sw, order, batch_size, steps):
    """``(xs, ys, sample_weight)`` of each of `steps` batches taken from arrays in `order`."""
    for step in range(steps):
        idx = order[step * batch_size:(step + 1) * batch_size]
        yield ([v[idx] for v in xs],
               None if ys is None else [None if v is None else v[idx] for v in ys],
               None if sw is None else sw[idx])


def _no_separate_targets(what, y, sample_weight, validation_split=0.0):
    """Keras' errors for arguments that a dataset/generator input must carry itself."""
    if y is not None:
        raise ValueError(f"{what}: the `y` argument is not supported when `x` is a dataset, "
                         f"generator or PyDataset; yield `(x, y)` batches instead.")
    if sample_weight is not None:
        raise ValueError(f"{what}: the `sample_weight` argument is not supported when `x` is a "
                         f"dataset, generator or PyDataset; yield `(x, y, sample_weight)` "
                         f"batches instead.")
    if validation_split:
        raise ValueError(f"{what}: `validation_split` is only supported for NumPy arrays, not "
                         f"for a dataset, generator or PyDataset. Received: "
                         f"validation_split={validation_split}")


def _as_list(spec):
    if spec is None:
        return []
    return list(spec) if isinstance(spec, (list, tuple)) else [spec]


def _n_steps(n, batch_size, max_steps=None, what="validation_steps"):
    """Batches in one pass over `n` samples, at most `max_steps` (Keras stops there too)."""
    steps = max(1, -(-n // batch_size)) if n else 0
    if max_steps is None:
        return steps
    if not isinstance(max_steps, (int, np.integer)) or isinstance(max_steps, bool) or \
            max_steps < 1:
        raise ValueError(f"`{what}` must be a positive integer or None. Received: "
                         f"{what}={max_steps!r}")
    return min(steps, int(max_steps))


def _batch_size(batch_size):
    batch_size = 32 if batch_size is None else batch_size
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer. Received: "
                         f"batch_size={batch_size!r}")
    return int(batch_size)


def _shuffle_rng():
    from .. import backend
    return backend.make_rng()


def _order(n, shuffle, batch_size, rng):
    if shuffle == "batch":
        starts = np.arange(0, n, batch_size)
        rng.shuffle(starts)
        return np.concatenate([np.arange(s, min(s + batch_size, n)) for s in starts]) if n else \
            np.arange(0)
    if shuffle:
        return rng.permutation(n)
    return np.arange(n)


def _apply_class_weight(sw, ys, class_weight):
    if class_weight is None or ys is None:
        return sw
    y = ys[0]
    labels = np.argmax(y, axis=-1) if y.ndim >= 2 and y.shape[-1] > 1 else \
        np.asarray(y).reshape(y.shape[0], -1)[:, 0].round().astype(np.int64)
    if labels.ndim > 1:
        labels = labels[:, 0]
    w = np.array([class_weight.get(int(c), 1.0) for c in labels], dtype=np.float64)
    return w if sw is None else np.asarray(sw) * w.reshape((-1,) + (1,) * (np.ndim(sw) - 1))


def _unflatten(structure, leaves):
    if isinstance(structure, dict):
        return dict(zip(structure, leaves))
    if isinstance(structure, (list, tuple)):
        return list(leaves)
    return leaves[0]


def _output_logits(tensor, tape):
    """Pre-activation values of a model output made by a layer with a softmax/sigmoid
    activation that can backpropagate from them (Dense, Activation), else None."""
    if tape is None or not isinstance(tensor, KerasTensor):
        return None
    layer = tensor.producer
    if not hasattr(layer, "output_logits"):
        return None
    for node, ctx, _, _ in reversed(tape):
        if node is tensor._node:
            return layer.output_logits(ctx)
    return None


def _with_producer_hint(err, output):
    """Add the hint of the layer behind a target-vs-output shape mismatch (Layer.target_hint,
    asked from the output back along the first inputs) to the ShapeError."""
    got, want = err.got, err.expected
    if not isinstance(got, tuple) or not isinstance(output, KerasTensor):
        return err
    node, seen = output._node, 0
    while node is not None and seen < 50:
        ask = getattr(node.layer, "target_hint", None)
        hint = ask(output.shape, got) if ask is not None else None
        if hint:
            text = str(err).split("\nHint:")[0] + f"\nHint: {hint}"
            return ShapeError(text, layer=err.layer, argument=err.argument, expected=want,
                              got=got, hint=hint)
        parents = node.parent_nodes
        node = parents[0] if parents else None
        seen += 1
    return err
