"""Models: functional ``Model(inputs, outputs)`` and ``Sequential``, as in Keras 3.

A model is a graph of layer calls recorded while the layers were called on symbolic tensors, so
every shape was already checked when the model was built. ``predict`` runs the graph on NumPy
arrays batch by batch, carrying Keras masks along the edges.
"""
import numpy as np

from .. import backend
from ..errors import format_shape, shape_error
from ..saving.model_mixin import ModelFileMixin
from .trainer import Trainer
from .base import (Grads, Input, InputLayer, KerasTensor, Layer, _symbolic_mask, add_grad,
                   flatten, map_structure, output_masks)

__all__ = ["Model", "Sequential"]


def _sort_nodes(outputs):
    """Nodes needed to compute `outputs`, in an order where parents come first."""
    order, seen, active = [], set(), set()

    def visit(node):
        if id(node) in seen:
            return
        if id(node) in active:  # pragma: no cover - graphs made by calls cannot cycle
            raise ValueError("The layer graph has a cycle.")
        active.add(id(node))
        for parent in node.parent_nodes:
            visit(parent)
        active.discard(id(node))
        seen.add(id(node))
        order.append(node)

    for t in outputs:
        visit(t._node)
    return order


class Model(ModelFileMixin, Trainer, Layer):
    """A functional model: the graph of layer calls from `inputs` to `outputs` (``keras.Model``).

    Args:
        inputs: a KerasTensor from :func:`Input`, or a list/dict of them.
        outputs: a KerasTensor computed from the inputs by layer calls, or a list/dict of them.
        name: model name (default ``functional``, numbered).

    Raises:
        ValueError: an output that cannot be computed from the given inputs (graph disconnected),
            or inputs that are not made by :func:`Input`.

    Example:
        >>> x = Input(shape=(None, 5))
        >>> y = layers.LSTM(8)(x)
        >>> Model(x, y).predict(np.zeros((2, 7, 5)), verbose=0).shape
        (2, 8)
    """

    def __init__(self, inputs=None, outputs=None, name=None, **kwargs):
        trainable = kwargs.pop("trainable", True)
        super().__init__(name=name or backend.unique_name(self._default_name()), trainable=trainable,
                         dtype=kwargs.pop("dtype", None), **kwargs)
        self._graph_ready = False
        self._last_output_masks = None
        if inputs is not None or outputs is not None:
            self._init_graph(inputs, outputs)

    @classmethod
    def _default_name(cls):
        return "functional" if cls is Model else backend.to_snake_case(cls.__name__)

    # -- graph ----------------------------------------------------------------------------------

    def _init_graph(self, inputs, outputs):
        if inputs is None or outputs is None:
            raise ValueError("Model needs both `inputs` and `outputs`. "
                             f"Received: inputs={inputs}, outputs={outputs}")
        self._inputs_struct = inputs
        self._outputs_struct = outputs
        self.inputs = flatten(inputs)
        self.outputs = flatten(outputs)
        for t in self.inputs:
            if not isinstance(t, KerasTensor) or not isinstance(t.producer, InputLayer):
                raise ValueError(
                    f"Model inputs must be tensors made by attnlstm.Input(...). Received: {t!r}. "
                    "Hint: pass the Input tensor itself, not a layer output.")
        for t in self.outputs:
            if not isinstance(t, KerasTensor):
                raise ValueError(f"Model outputs must be symbolic tensors made by calling layers on "
                                 f"Input tensors. Received: {t!r}")
        nodes = _sort_nodes(self.outputs)
        input_ids = {id(t) for t in self.inputs}
        for node in nodes:
            if isinstance(node.layer, InputLayer) and id(node.outputs) not in input_ids:
                raise ValueError(
                    f"Graph disconnected: cannot obtain the value of tensor {node.outputs!r} at "
                    f"layer '{node.layer.name}'. It is an Input that is not in the model's `inputs` "
                    f"({[t.name for t in self.inputs]}). Hint: add it to Model(inputs=[...]).")
        self._nodes = [n for n in nodes if not isinstance(n.layer, InputLayer)]
        layers, seen = [], set()
        for t in self.inputs:
            layers.append(t.producer)
            seen.add(id(t.producer))
        for n in self._nodes:
            if getattr(n.layer, "_is_op_layer", False):
                continue   # op nodes are not layers (Keras 3 lists only Layer objects)
            if id(n.layer) not in seen:
                seen.add(id(n.layer))
                layers.append(n.layer)
        self._layers = layers
        self._graph_ready = True
        self.built = True

    @property
    def input(self):
        """The model's symbolic input(s), in the structure given to ``Model(inputs=...)``
        (``keras.Model.input``): e.g. ``model.input[0]`` for an encoder-decoder."""
        if not getattr(self, "_graph_ready", False):
            return super().input
        return self._inputs_struct

    @property
    def output(self):
        """The model's symbolic output(s), in the structure given to ``Model(outputs=...)``."""
        if not getattr(self, "_graph_ready", False):
            return super().output
        return self._outputs_struct

    @property
    def _subclassed(self):
        """A Keras 3 subclassed model: its own ``call`` (and ``__init__``), no graph given."""
        return type(self).call is not Model.call and not isinstance(self, Sequential)

    @property
    def layers(self):
        """Layers in the order they are computed (InputLayers first, as Keras 3 functional);
        for a subclassed model, the layers assigned as attributes."""
        if self._subclassed:
            return list(self._sublayers)
        return list(self._layers) if self._graph_ready else []

    @property
    def weights(self):
        if self._subclassed:
            return Layer.weights.fget(self)
        out, seen = [], set()
        for layer in self.layers:
            for w in layer.weights:
                if id(w) not in seen:
                    seen.add(id(w))
                    out.append(w)
        return out

    @property
    def trainable_weights(self):
        if not self.trainable:
            return []
        if self._subclassed:
            return Layer.trainable_weights.fget(self)
        out, seen = [], set()
        for layer in self.layers:
            for w in layer.trainable_weights:
                if id(w) not in seen:
                    seen.add(id(w))
                    out.append(w)
        return out

    @property
    def non_trainable_weights(self):
        ids = {id(w) for w in self.trainable_weights}
        return [w for w in self.weights if id(w) not in ids]

    def get_layer(self, name=None, index=None):
        """The layer called `name`, or at position `index` of ``layers``.

        Raises:
            ValueError: no layer of that name or index (the message lists the names).
        """
        if index is not None:
            if not -len(self.layers) <= index < len(self.layers):
                raise ValueError(f"Model '{self.name}' has {len(self.layers)} layers; index "
                                 f"{index} is out of range.")
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"No such layer: {name}. Existing layers are: "
                         f"{[layer.name for layer in self.layers]}.")

    # -- shapes ---------------------------------------------------------------------------------

    def _input_shapes(self):
        return [t.shape for t in self.inputs]

    def _check_inputs(self, values):
        """Check arrays against the model's Input shapes (rank and every fixed size)."""
        if len(values) != len(self.inputs):
            raise ValueError(
                f"Model '{self.name}' expects {len(self.inputs)} input(s) "
                f"{[t.name for t in self.inputs]}, but it received {len(values)} input arrays.")
        for k, (t, v) in enumerate(zip(self.inputs, values)):
            got = tuple(v.shape) if hasattr(v, "shape") else tuple(np.shape(v))
            want = t.shape
            ok = len(got) == len(want) and all(w is None or w == g for w, g in zip(want, got))
            if not ok:
                arg = "inputs" if len(self.inputs) == 1 else f"inputs[{k}]"
                hint = None
                if len(got) == len(want) - 1 and len(want) == 3:
                    hint = ("the model reads sequences (batch, timesteps, features); add a time "
                            "axis, e.g. x[:, None, :], or pad variable-length sequences with "
                            "attnlstm.sequence.pad_sequences.")
                elif len(got) == len(want) and len(want) >= 2 and want[-1] is not None and \
                        got[-1] != want[-1]:
                    hint = f"the Input '{t.name}' was declared with {want[-1]} features."
                raise shape_error(
                    self, arg, tuple("batch" if (i == 0 and w is None) else w
                                     for i, w in enumerate(want)), got, hint,
                    message=(f"`{arg}` (Input '{t.name}') must have shape "
                             f"{format_shape(tuple('batch' if (i == 0 and w is None) else w for i, w in enumerate(want)))}"
                             f", got {format_shape(got)}."))

    def compute_output_shape(self, input_shape):
        shapes = input_shape if isinstance(input_shape, list) else [input_shape]
        self._check_inputs([_Shape(shp) for shp in shapes])
        return map_structure(lambda t: t.shape, self._outputs_struct)

    def compute_mask(self, inputs, mask=None):
        if any(isinstance(t, KerasTensor) for t in flatten(inputs)):
            # building an outer model: the masks the inner graph's outputs carry
            return map_structure(_symbolic_mask, self._outputs_struct)
        return self._last_output_masks

    # -- running --------------------------------------------------------------------------------

    def _run(self, input_values, training=False, input_masks=None, tape=None):
        """Run the graph on arrays; with a `tape` list, record ``(node, ctx, outputs, added_loss)``
        per call for :meth:`backward`; collect the layers' add_loss terms in ``self._losses``."""
        values, masks = {}, {}
        losses, named = [], {}
        for k, (t, v) in enumerate(zip(self.inputs, input_values)):
            values[id(t)] = v
            masks[id(t)] = None if input_masks is None else input_masks[k]

        def val(t):
            return values[id(t)] if isinstance(t, KerasTensor) else t

        def msk(t):
            return masks.get(id(t)) if isinstance(t, KerasTensor) else None

        for node in self._nodes:
            layer = node.layer
            args = map_structure(val, node.args)
            kwargs = map_structure(val, node.kwargs)
            first = node.args[0] if node.args else None
            in_mask = map_structure(msk, first) if isinstance(first, (list, tuple)) else msk(first)
            if "mask" in node.kwargs:
                in_mask = kwargs["mask"]
            elif layer._call_accepts("mask") and any(m is not None for m in flatten(in_mask)):
                kwargs["mask"] = in_mask
            if tape is None:
                out = layer._eager_call(args, kwargs, training=training)
            else:
                out, ctx = layer._eager_call(args, kwargs, training=training, record=True)
                tape.append((node, ctx, out, bool(layer._losses)))
            losses.extend(layer._losses)
            for k, v in layer._named_losses.items():
                named[k] = named.get(k, 0.0) + v
            inputs0 = args[0] if args else None
            out_mask = layer.compute_mask(inputs0, in_mask)
            outs = flatten(node.outputs)
            out_vals = flatten(out) if isinstance(node.outputs, (list, tuple, dict)) else [out]
            out_masks = output_masks(out_mask, len(outs))
            for t, v, m in zip(outs, out_vals, out_masks):
                values[id(t)] = v
                masks[id(t)] = m if t.has_mask else None
        self._last_output_masks = map_structure(lambda t: masks.get(id(t)), self._outputs_struct)
        self._losses = losses
        self._named_losses = named
        return map_structure(lambda t: values[id(t)], self._outputs_struct)

    # -- gradients ------------------------------------------------------------------------------

    def forward(self, inputs, training=False, mask=None):
        """Run the model and record each layer call for :meth:`backward`: ``(outputs, tape)``."""
        values, masks = self._call_values(inputs, mask)
        tape = []
        out = self._run(values, training=training, input_masks=masks, tape=tape)
        return out, tape

    def backward(self, tape, d_outputs, need_input_grad=True, logit_grads=None):
        """Backpropagate through a recorded run (reverse order of the layer calls).

        Args:
            tape: the second value of :meth:`forward`.
            d_outputs: gradients w.r.t. the outputs (the outputs' structure; None = zero).
            logit_grads: ``{id(output tensor): gradient}`` w.r.t. the pre-activation values of
                outputs whose loss was taken from logits (their layers' ``backward_logits``).

        Returns:
            :class:`Grads` with ``inputs`` for the model inputs (the inputs' structure) and
            ``weights`` for every weight of every layer reached.

        Raises:
            NotImplementedError: a layer on the way has no backward (named in the message).
        """
        grads = {}
        for t, g in zip(self.outputs, flatten(d_outputs)):
            if g is not None:
                add_grad(grads, id(t), np.asarray(g))
        requires = self._requires_grad(need_input_grad)
        weights = {}
        logit_grads = logit_grads or {}
        for node, ctx, out, added_loss in reversed(tape):
            layer = node.layer
            outs = flatten(node.outputs)
            d = [grads.get(id(t)) for t in outs]
            d_logits = logit_grads.get(id(node.outputs)) if len(outs) == 1 else None
            if all(g is None for g in d) and not added_loss and d_logits is None:
                continue
            need_in = any(requires.get(id(t), False) for t in node.input_tensors)
            if not need_in and not _has_trainable(layer):
                continue
            out_vals = flatten(out) if isinstance(node.outputs, (list, tuple, dict)) else [out]
            d = [np.zeros_like(v) if g is None else g for g, v in zip(d, out_vals)]
            d_struct = _unflatten_like(node.outputs, d)
            if not layer.differentiable:
                raise NotImplementedError(
                    f"Cannot compute gradients through {type(layer).__name__} '{layer.name}': "
                    f"it has no backward. Hint: use built-in layers between the trainable "
                    f"weights and the loss, or pass backward=... to Lambda.")
            if d_logits is not None:
                res = layer.backward_logits(ctx, d_logits, need_input_grad=need_in)
                if any(g is not None for g in flatten(d_struct)) and d[0] is not None and \
                        id(outs[0]) in grads:
                    res = _sum_grads(res, layer.backward(ctx, d_struct, need_input_grad=need_in))
            else:
                res = layer.backward(ctx, d_struct, need_input_grad=need_in)
            for v, g in res.weights.items():
                add_grad(weights, v, g)
            if not need_in:
                continue
            first = node.args[0] if node.args else None
            _route(grads, first, res.inputs)
            if res.args is not None:
                for a, g in zip(node.args[1:], res.args):
                    _route(grads, a, g)
            if res.kwargs:
                for k, g in res.kwargs.items():
                    _route(grads, node.kwargs.get(k), g)
        d_inputs = [grads.get(id(t)) for t in self.inputs]
        if isinstance(self._inputs_struct, dict):
            d_inputs = dict(zip(self._inputs_struct, d_inputs))
        elif len(self.inputs) == 1 and not isinstance(self._inputs_struct, (list, tuple)):
            d_inputs = d_inputs[0]
        return Grads(d_inputs, weights)

    def _requires_grad(self, need_input_grad):
        """Which tensors (by id) a gradient must reach: downstream of a trainable weight (or of
        the inputs, when the caller needs their gradient)."""
        req = {id(t): bool(need_input_grad) for t in self.inputs}
        for node in self._nodes:
            r = _has_trainable(node.layer) or any(req.get(id(t), False)
                                                  for t in node.input_tensors)
            for t in flatten(node.outputs):
                req[id(t)] = r
        return req

    def _inputs_as_list(self, x):
        if isinstance(self._inputs_struct, dict):
            if not isinstance(x, dict):
                raise ValueError(f"Model '{self.name}' takes a dict of inputs with keys "
                                 f"{list(self._inputs_struct)}. Received: {type(x).__name__}")
            return [x[k] for k in self._inputs_struct]
        if isinstance(x, dict):
            names = [t.name for t in self.inputs]
            missing = [k for k in names if k not in x]
            extra = [k for k in x if k not in names]
            if missing or extra:
                raise ValueError(
                    f"Model '{self.name}' has inputs named {names}; a dict of inputs needs exactly "
                    f"those keys. Missing: {missing}; unknown: {extra}.")
            return [x[k] for k in names]
        if len(self.inputs) == 1:
            if isinstance(x, (list, tuple)) and len(x) == 1 and np.ndim(x[0]) >= 1 and \
                    np.ndim(x) != len(self.inputs[0].shape):
                return [x[0]]
            if isinstance(x, (list, tuple)) and len(x) > 1 and \
                    all(isinstance(v, np.ndarray) for v in x):
                raise ValueError(
                    f"Model '{self.name}' expects 1 input {[t.name for t in self.inputs]}, but it "
                    f"received a list of {len(x)} input arrays of shapes "
                    f"{[tuple(v.shape) for v in x]}.")
            return [x]
        if not isinstance(x, (list, tuple)):
            raise ValueError(f"Model '{self.name}' has {len(self.inputs)} inputs "
                             f"{[t.name for t in self.inputs]}; pass a list of arrays. "
                             f"Received: one array of shape {np.shape(x)}")
        return list(x)

    def _call_values(self, inputs, mask):
        """The inputs as a list of arrays and the input masks as a list (or None)."""
        values = inputs if isinstance(inputs, list) and len(self.inputs) > 1 else \
            self._inputs_as_list(inputs)
        values = [np.asarray(v) if not isinstance(v, np.ndarray) else v for v in values]
        masks = None
        if mask is not None:
            masks = mask if isinstance(mask, list) and len(self.inputs) > 1 else [mask]
        return values, masks

    def call(self, inputs, training=False, mask=None):
        values, masks = self._call_values(inputs, mask)
        return self._run(values, training=training, input_masks=masks)

    def _eager_call(self, args, kwargs, training=False, record=False):
        self._ensure_graph(args[0])
        values = self._inputs_as_list(args[0])
        values = [self._convert_input(t, v) for t, v in zip(self.inputs, values)]
        self._check_inputs(values)
        kw = dict(kwargs)
        kw.pop("training", None)
        # Model.call runs the graph (a subclassed model's own `call` is one node in it)
        fn = self.forward if record else Model.call.__get__(self)
        return fn(values if len(values) > 1 else values[0], training=training,
                  mask=kw.get("mask"))

    def _ensure_graph(self, x):
        if self._graph_ready:
            return
        if self._subclassed:
            self._build_subclassed(x)
            return
        raise ValueError(f"Model '{self.name}' has no graph yet.")

    def build(self, input_shape=None):
        """For a subclassed model: trace ``call`` on inputs of `input_shape` (batch axis first,
        e.g. ``(None, 20, 5)``; a list of shapes for several inputs), as ``keras.Model.build``."""
        if self._subclassed and input_shape is not None and not self._graph_ready:
            multi = isinstance(input_shape, list) and input_shape and \
                isinstance(input_shape[0], (list, tuple))
            shapes = input_shape if multi else [input_shape]
            specs = [KerasTensor(tuple(s), self.dtype) for s in shapes]
            self._build_subclassed(specs if multi else specs[0])
        self.built = True

    def _build_subclassed(self, x):
        """Keras 3 subclassed model: on the first data (or symbolic input), make Inputs of its
        shapes and trace ``call`` once into a one-node graph, so fit/predict/evaluate, saving of
        weights and the trainer work as for a functional model."""
        def make_input(a):
            if isinstance(a, KerasTensor):
                return Input(batch_shape=(None,) + tuple(a.shape[1:]), dtype=a.dtype)
            arr = np.asarray(a)
            dt = arr.dtype.name if arr.dtype.kind in "iub" else self.dtype
            return Input(batch_shape=(None,) + arr.shape[1:], dtype=dt)
        if isinstance(x, dict):
            inputs = {k: make_input(v) for k, v in x.items()}
        elif isinstance(x, (list, tuple)) and len(x) and not np.isscalar(x[0]) and \
                (isinstance(x[0], KerasTensor) or np.ndim(x[0]) >= 1) and \
                not isinstance(x, np.ndarray) and _is_input_list(x):
            inputs = [make_input(v) for v in x]
        else:
            inputs = make_input(x)
        call = _SubclassCall(self)
        outputs = call(inputs)
        self._init_graph(inputs, outputs)

    def _convert_input(self, t, v):
        arr = np.asarray(v)
        if arr.dtype != t.dtype and arr.dtype.kind in "fiub":
            arr = arr.astype(t.dtype)
        return arr

    def __call__(self, *args, **kwargs):
        if args and any(isinstance(t, KerasTensor) for t in flatten(args[0])):
            self._ensure_graph(args[0])
        return super().__call__(*args, **kwargs)

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Outputs for `x`, computed batch by batch (Keras ``Model.predict``).

        Args:
            x: array-like of shape (N, ...) matching the Input, or a list/dict for several inputs;
                or a PyDataset, generator or tf.data.Dataset of batches (``x`` or ``(x, ...)``;
                targets in the batches are ignored, as Keras).
            batch_size: samples per batch (default 32); not used with batch sources.
            verbose: "auto"/1 = progress bar, 0 = silent (2 = a line at the end), as Keras.
            steps: the number of batches to predict (default all): with arrays, only the first
                ``steps * batch_size`` samples are predicted, as Keras.
            callbacks: :mod:`attnlstm.callbacks` objects; their ``on_predict_*`` hooks run, and
                ``on_predict_batch_end`` gets ``{"outputs": batch outputs}``.

        Returns:
            A NumPy array (or a list/dict for several outputs), first axis N.

        Raises:
            ShapeError: inputs whose shape does not match the model's Input shapes.
            ValueError: a non-positive `batch_size` or `steps`.
        """
        from .. import callbacks as callbacks_mod
        from .data_adapters import BatchSource, is_batch_source, unpack_x_y_sample_weight
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, (int, np.integer))
                                  or steps < 1):
            raise ValueError(f"`steps` must be a positive integer or None. Received: steps={steps!r}")
        if is_batch_source(x):
            source = BatchSource(x, steps, "predict")
            batches = (self._predict_values(unpack_x_y_sample_weight(b)[0])
                       for b in source.epoch())
            n_steps = source.num_steps
        else:
            values = self._predict_values(x)
            n = values[0].shape[0] if values and values[0].ndim else 0
            batch_size = 32 if batch_size is None else int(batch_size)
            if batch_size < 1:
                raise ValueError(f"`batch_size` must be a positive integer. Received: "
                                 f"batch_size={batch_size}")
            starts = list(range(0, n, batch_size)) if n else [0]
            if steps is not None:
                starts = starts[:int(steps)]
            batches = ([v[s:s + batch_size] for v in values] if n else values for s in starts)
            n_steps = len(starts)
        verbose = 1 if verbose == "auto" else int(verbose)
        cbs = callbacks_mod.CallbackList(callbacks, add_progbar=verbose != 0, model=self,
                                         verbose=verbose, epochs=1, steps=n_steps)
        cbs.on_predict_begin()
        chunks = []
        for step, batch in enumerate(batches):
            cbs.on_predict_batch_begin(step)
            out = self._run(batch, training=False)
            chunks.append(out)
            cbs.on_predict_batch_end(step, {"outputs": out})
        cbs.on_predict_end()
        if not chunks:
            raise ValueError("predict: the dataset or generator yielded no batches.")
        if len(chunks) == 1:
            return chunks[0]
        return _concat_structures(chunks)

    def _predict_values(self, x):
        """The inputs of one predict call as checked arrays of equal first axes."""
        self._ensure_graph(x)
        values = [self._convert_input(t, v) for t, v in zip(self.inputs, self._inputs_as_list(x))]
        self._check_inputs(values)
        n = values[0].shape[0] if values and values[0].ndim else 0
        for t, v in zip(self.inputs, values):
            if v.shape[0] != n:
                raise ValueError(
                    f"Model '{self.name}': all inputs must have the same number of samples; "
                    f"got {[int(np.shape(v)[0]) for v in values]} for {[t.name for t in self.inputs]}.")
        return values

    def save_weights(self, filepath, overwrite=True):
        """Write the weights to `filepath` (``*.weights.h5``) in Keras 3's layout, so
        ``keras_model.load_weights(filepath)`` reads them.

        Raises:
            ValueError: a path not ending in ``.weights.h5``, or an existing file with
                ``overwrite=False``.
        """
        from .. import saving
        saving.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath, skip_mismatch=False):
        """Load weights from a Keras 3 ``.weights.h5`` or a legacy tf.keras ``.h5`` file.

        Raises:
            ValueError: a file whose layers or shapes do not match (naming the layer, the
                expected and the stored shapes); nothing is assigned then.
        """
        from .. import saving
        saving.load_weights(self, filepath, skip_mismatch=skip_mismatch)

    def predict_on_batch(self, x):
        return self.predict(x, batch_size=max(1, len(np.asarray(self._inputs_as_list(x)[0]))),
                            verbose=0)

    # -- summary --------------------------------------------------------------------------------

    def summary(self, line_length=None, positions=None, print_fn=None, expand_nested=False,
                show_trainable=False, layer_range=None):
        """Print the layers with their output shapes and parameter counts (``Model.summary``).

        Args:
            line_length: total width of the table (default: fit the columns).
            positions: the right edge of each column, as fractions of `line_length` (all <= 1)
                or as absolute character positions, as Keras.
            print_fn: called with each line (default ``print``).
            expand_nested: also list the layers of nested models, indented under them.
            show_trainable: add a "Trainable" column (Y/N per layer).
            layer_range: ``[first_name, last_name]``: only the layers from the one whose name
                matches the first pattern to the one matching the second (``fnmatch``
                patterns, inclusive), as Keras.

        Raises:
            ValueError: a `layer_range` that is not two names, or whose names match no layer.
        """
        import fnmatch
        print_fn = print_fn or print
        multi = any(len(n.input_tensors) > 1 for n in self._nodes) or len(self.inputs) > 1
        rows = []

        def add_rows(model, depth):
            for layer in model.layers:
                if isinstance(layer, InputLayer):
                    shape, conn = format_shape(layer.batch_shape), "-"
                else:
                    nodes = [n for n in model._nodes if n.layer is layer]
                    shape = ", ".join(_shape_text(n.outputs) for n in nodes)
                    conn = ", ".join(f"{t.producer.name}[{0}][{t._index}]"
                                     for n in nodes for t in n.input_tensors)
                name = ("  " * depth) + f"{layer.name} ({type(layer).__name__})"
                rows.append((name, shape, f"{layer.count_params():,}", conn,
                             "Y" if layer.trainable else "N", layer.name))
                if expand_nested and getattr(layer, "_graph_ready", False) and \
                        hasattr(layer, "_nodes"):
                    add_rows(layer, depth + 1)
        add_rows(self, 0)
        if layer_range is not None:
            if not isinstance(layer_range, (list, tuple)) or len(layer_range) != 2:
                raise ValueError("layer_range must be a list or tuple of two layer names. "
                                 f"Received: layer_range={layer_range!r}")
            names = [r[5] for r in rows]
            first = [i for i, n in enumerate(names) if fnmatch.fnmatch(n, layer_range[0])]
            last = [i for i, n in enumerate(names) if fnmatch.fnmatch(n, layer_range[1])]
            if not first or not last:
                raise ValueError(f"Passed layer_range {list(layer_range)} does not match any "
                                 f"layer name in the model. Layer names: {names}")
            rows = rows[first[0]:last[-1] + 1]
        cols = [0, 1, 2] + ([3] if multi else []) + ([4] if show_trainable else [])
        heads = {0: "Layer (type)", 1: "Output Shape", 2: "Param #", 3: "Connected to",
                 4: "Trainable"}
        widths = [max(len(heads[c]), *(len(r[c]) for r in rows)) + 2 for c in cols]
        total = line_length or sum(widths)
        if positions is not None:
            pos = list(positions)[:len(cols)]
            if pos and pos[-1] <= 1:
                pos = [int(total * p) for p in pos]
            edges = pos + [total] * (len(cols) - len(pos))
            widths = [max(1, e - b) for b, e in zip([0] + edges[:-1], edges)]
            total = max(total, sum(widths))

        def line(cells):
            return "".join(str(c)[:w - 1].ljust(w) if i != 2 else str(c).rjust(w - 2) + "  "
                           for i, (c, w) in enumerate(zip(cells, widths)))

        print_fn(f'Model: "{self.name}"')
        print_fn("=" * total)
        print_fn(line([heads[c] for c in cols]))
        print_fn("=" * total)
        for k, r in enumerate(rows):
            print_fn(line([r[c] for c in cols]))
            print_fn(("-" if k < len(rows) - 1 else "=") * total)
        n_all = sum(int(np.prod(w.shape)) for w in self.weights)
        n_tr = sum(int(np.prod(w.shape)) for w in self.trainable_weights)
        nbytes = sum(w.value.nbytes for w in self.weights)
        tbytes = sum(w.value.nbytes for w in self.trainable_weights)
        print_fn(f" Total params: {n_all:,} ({_human_bytes(nbytes)})")
        print_fn(f" Trainable params: {n_tr:,} ({_human_bytes(tbytes)})")
        print_fn(f" Non-trainable params: {n_all - n_tr:,} ({_human_bytes(nbytes - tbytes)})")


def _is_input_list(x):
    """A list of several input arrays (not one nested-list array)."""
    shapes = {np.shape(v) if not isinstance(v, KerasTensor) else v.shape for v in x}
    return len(x) > 1 and (len(shapes) > 1 or isinstance(x[0], (np.ndarray, KerasTensor)))


class _SubclassCall(Layer):
    """A subclassed Model's own ``call`` as the one layer of its graph (gradients by autograd
    over the call, weights = the model's own and its tracked layers')."""

    def __init__(self, model):
        Layer.__init__(self, name=backend.unique_name(model.name + "_call"), dtype=model.dtype)
        self._model = model

    def build(self, input_shape):
        m = self._model
        if type(m).build is not Layer.build and type(m).build is not Model.build:
            type(m).build(m, input_shape)
        self.built = True

    def call(self, inputs, **kwargs):
        m = self._model
        kw = {k: v for k, v in kwargs.items() if m._call_accepts(k)}
        return type(m).call(m, inputs, **kw)

    def _call_accepts(self, arg):
        return arg != "mask" and self._model._call_accepts(arg)

    @property
    def weights(self):
        return Layer.weights.fget(self._model)

    @property
    def trainable_weights(self):
        return Layer.trainable_weights.fget(self._model) if self._model.trainable else []

    @property
    def non_trainable_weights(self):
        return Layer.non_trainable_weights.fget(self._model)


def _has_trainable(layer):
    return bool(layer.trainable_weights)


def _sum_grads(a, b):
    weights = dict(a.weights)
    for v, g in b.weights.items():
        add_grad(weights, v, g)
    inputs = None if a.inputs is None else (a.inputs if b.inputs is None else a.inputs + b.inputs)
    return Grads(inputs, weights)


def _route(grads, target, g):
    """Add gradient structure `g` to the symbolic tensors of `target` (same structure)."""
    if target is None or g is None:
        return
    if isinstance(target, KerasTensor):
        add_grad(grads, id(target), g)
        return
    if isinstance(target, (list, tuple)):
        if isinstance(g, (list, tuple)):
            for t, gg in zip(target, g):
                _route(grads, t, gg)
        return
    if isinstance(target, dict) and isinstance(g, dict):
        for k in target:
            _route(grads, target[k], g.get(k))


def _unflatten_like(structure, leaves):
    it = iter(leaves)

    def take(_):
        return next(it)
    if isinstance(structure, (list, tuple, dict)):
        return map_structure(take, structure)
    return leaves[0]


class _Shape:
    """Stands for an array of a given shape in shape-only checks."""

    def __init__(self, shape):
        self.shape = tuple(shape)


def _shape_text(outputs):
    if isinstance(outputs, KerasTensor):
        return format_shape(outputs.shape)
    return "[" + ", ".join(format_shape(t.shape) for t in flatten(outputs)) + "]"


def _human_bytes(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}"
        n /= 1024.0


def _concat_structures(chunks):
    first = chunks[0]
    if isinstance(first, dict):
        return {k: np.concatenate([c[k] for c in chunks], axis=0) for k in first}
    if isinstance(first, (list, tuple)):
        return [np.concatenate([c[i] for c in chunks], axis=0) for i in range(len(first))]
    return np.concatenate(chunks, axis=0)


class Sequential(Model):
    """A linear stack of layers (``keras.Sequential``).

    Give it an :func:`Input` as its first element, or an ``input_shape`` on its first layer, and
    every layer is checked as it is added: a shape mistake raises a ShapeError from ``add``.
    Without either, the model is built on the first ``build``/``predict``.

    Example:
        >>> model = Sequential([Input((20, 5)), layers.LSTM(8), layers.Dense(1)])
        >>> model.predict(np.zeros((4, 20, 5)), verbose=0).shape
        (4, 1)
    """

    def __init__(self, layers=None, trainable=True, name=None):
        super().__init__(name=name, trainable=trainable)
        self._stack = []
        self._input_tensor = None
        for layer in layers or []:
            self.add(layer)

    @property
    def layers(self):
        """The added layers (without the InputLayer, as Keras)."""
        return list(self._stack)

    def add(self, layer):
        """Append a layer; checks its input shape right away when the model's input is known.

        Raises:
            ShapeError: the layer cannot take the previous layer's output.
            TypeError: not a Layer or Input tensor.
        """
        if isinstance(layer, KerasTensor):
            if not isinstance(layer.producer, InputLayer) or self._stack:
                raise ValueError("An Input tensor can only be the first element of a Sequential model.")
            self._input_tensor = layer
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add takes a Layer or an Input tensor. Received: {layer!r}")
        self._stack.append(layer)
        if self._input_tensor is None and len(self._stack) == 1 and \
                layer._batch_input_shape is not None:
            self._input_tensor = Input(batch_shape=layer._batch_input_shape)
        if self._input_tensor is not None:
            self._rebuild()

    def pop(self):
        """Remove the last layer."""
        if not self._stack:
            raise TypeError("There are no layers in the model.")
        self._stack.pop()
        if self._input_tensor is not None and self._stack:
            self._rebuild()
        else:
            self._graph_ready = False

    def _rebuild(self):
        from ..ops._symbolic import untraced
        x = self._input_tensor
        if not self._stack:
            return
        with untraced():          # its own graph, even while a layer holding it is traced
            self._rebuild_graph(x)

    def _rebuild_graph(self, x):
        if self._graph_ready and len(self._nodes) == len(self._stack) - 1:
            y = self._stack[-1](self.outputs[0])  # only the new layer
        else:
            y = x
            for layer in self._stack:
                y = layer(y)
        if isinstance(y, (list, tuple)):
            raise ValueError(f"Layer '{self._stack[-1].name}' returns several tensors; a Sequential "
                             "model needs single-output layers. Use the functional API.")
        self._init_graph(x, y)
        self._layers = [x.producer] + list(self._stack)

    def build(self, input_shape=None):
        """Build with a batch input shape, e.g. ``(None, 20, 5)``."""
        from ..ops._symbolic import untraced
        if input_shape is None:
            raise ValueError("Sequential.build needs an input_shape (with the batch axis).")
        with untraced():
            self._input_tensor = Input(batch_shape=tuple(input_shape))
        self._rebuild()

    def _ensure_graph(self, x):
        if self._graph_ready:
            return
        if not self._stack:
            raise ValueError(f"Sequential model '{self.name}' has no layers.")
        first = x[0] if isinstance(x, (list, tuple)) and len(x) == 1 and np.ndim(x[0]) >= 2 else x
        shape = np.shape(first)
        self.build((None,) + tuple(shape[1:]))

    @property
    def weights(self):
        out = []
        for layer in self._stack:
            out.extend(layer.weights)
        return out

    @property
    def trainable_weights(self):
        if not self.trainable:
            return []
        out = []
        for layer in self._stack:
            out.extend(layer.trainable_weights)
        return out

    def get_layer(self, name=None, index=None):
        if index is not None:
            return self._stack[index]
        return super().get_layer(name=name)

    def summary(self, *args, **kwargs):
        if not self._graph_ready:
            print(f'Model: "{self.name}" (unbuilt: give it an Input or call build(input_shape))')
            return
        layers = self._layers
        self._layers = list(self._stack)
        try:
            super().summary(*args, **kwargs)
        finally:
            self._layers = layers

