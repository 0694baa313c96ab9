"""Keras-compatible weight files: ``.weights.h5`` (Keras 3 layout, read and write) and legacy
tf.keras ``.h5`` (read only).

A Keras 3 ``.weights.h5`` stores each object's variables as datasets ``<path>/vars/0, 1, ...``.
Paths follow Keras' rules, so files move both ways between attnlstm and Keras 3:

- a model's layers sit under ``layers/<snake_case(ClassName)>``, repeats numbered ``_1, _2, ...``
  in Keras' layer order (a functional model counts its ``input_layer``; a Sequential does not);
- an LSTM's weights are under ``<path>/cell/vars``, a TimeDistributed's inner layer under
  ``<path>/layer``, MultiHeadAttention's under ``query_dense/key_dense/value_dense/output_dense``,
  a nested model adds its own ``layers/...``;
- other layers (Dense, Embedding, Attention, and attnlstm's own BahdanauAttention,
  LuongAttention, AttentionPooling, RelativeMultiHeadAttention) keep ``layer.weights`` in
  ``<path>/vars``.

Example:
    >>> model.save_weights("model.weights.h5")       # keras_model.load_weights(...) reads it
    >>> model.load_weights("keras_model.weights.h5")  # saved by Keras 3
"""
import os
import warnings

import numpy as np

from . import backend
from .errors import ShapeError, format_shape, who

__all__ = ["save_weights", "load_weights", "weight_paths"]

_MHA_GROUPS = {"query": "query_dense", "key": "key_dense", "value": "value_dense",
               "attention_output": "output_dense"}


def _h5py():
    try:
        import h5py
    except ImportError:  # pragma: no cover - h5py is a dependency
        raise ImportError("Saving and loading weights needs h5py: pip install h5py") from None
    return h5py


# ---------------------------------------------------------------------------------------------
# Layout: which variables go to which group


class _Entry:
    """One ``<path>/vars`` group: the layer that owns it and its variables in file order."""

    def __init__(self, path, layer, variables, name):
        self.path = path
        self.layer = layer
        self.variables = variables
        self.name = name

    @property
    def group(self):
        return f"{self.path}/vars" if self.path else "vars"


def _is_model(obj):
    from .engine.functional import Model
    return isinstance(obj, Model)


def _is_sequential(obj):
    from .engine.functional import Sequential
    return isinstance(obj, Sequential)


def _class_key(obj):
    """Keras names container members by class: our Model is Keras' ``Functional``."""
    from .engine.functional import Model
    if type(obj) is Model:
        return "functional"
    return backend.to_snake_case(type(obj).__name__)


def _join(path, name):
    return f"{path}/{name}" if path else name


def _own_variables(layer):
    own = list(layer._own_weights)
    return [w for w in own if w.trainable] + [w for w in own if not w.trainable]


def _attr_key(name):
    # Keras visits public attributes alphabetically, then private ones.
    return ("~" + name) if name.startswith("_") else name


def _flatten_sorted(structure):
    """Leaves as Keras' tree.flatten: dict values in sorted key order."""
    if isinstance(structure, (list, tuple)):
        out = []
        for s in structure:
            out.extend(_flatten_sorted(s))
        return out
    if isinstance(structure, dict):
        out = []
        for k in sorted(structure):
            out.extend(_flatten_sorted(structure[k]))
        return out
    return [structure]


def _functional_layers(model):
    """A functional model's layers in Keras' order (keras/src/ops/function.py ``map_graph``):
    by decreasing depth from the outputs, ties broken by first visit in a depth-first walk
    from the outputs; InputLayers included."""
    from .engine.base import KerasTensor
    order, finished, nodes = {}, set(), []
    input_ids = {id(t) for t in model.inputs}

    def inputs_of(node):
        return [t for t in _flatten_sorted([list(node.args), node.kwargs])
                if isinstance(t, KerasTensor)]

    def visit(t):
        node = t._node
        if node is None or id(node) in finished:
            return
        is_input = not node.args and not node.kwargs
        if not is_input and id(t) in input_ids:
            finished.add(id(node))
            return
        order.setdefault(id(node.layer), len(order))
        if not is_input:
            for parent in inputs_of(node):
                visit(parent)
        finished.add(id(node))
        nodes.append(node)

    for t in _flatten_sorted(model._outputs_struct):
        visit(t)
    in_graph = {id(n) for n in nodes}
    node_depth, layer_depth, layers = {}, {}, {}
    for node in reversed(nodes):
        depth = node_depth.setdefault(id(node), 0)
        depth = max(depth, layer_depth.get(id(node.layer), 0))
        layer_depth[id(node.layer)] = depth
        layers[id(node.layer)] = node.layer
        node_depth[id(node)] = depth
        for t in inputs_of(node):
            parent = t._node
            if parent is None or id(parent) not in in_graph:
                continue
            node_depth[id(parent)] = max(depth + 1, node_depth.get(id(parent), 0))
    for t in model.inputs:  # inputs that do not reach an output
        if id(t.producer) not in layer_depth:
            layer_depth[id(t.producer)] = 0
            order[id(t.producer)] = -1
            layers[id(t.producer)] = t.producer
    return sorted(layers.values(), key=lambda l: (-layer_depth[id(l)], order[id(l)]))


def _model_layers(model):
    if _is_sequential(model):
        return list(model.layers)
    if not getattr(model, "_graph_ready", False):
        return list(model.layers)
    return _functional_layers(model)


def _walk(obj, path, entries, visited):
    if id(obj) in visited:
        return
    visited.add(id(obj))
    cls = type(obj).__name__
    if _is_model(obj):
        entries.append(_Entry(path, obj, _own_variables(obj), obj.name))
        used = {}
        for layer in _model_layers(obj):
            name = _unique(_class_key(layer), used)  # Keras numbers visited layers too
            _walk(layer, _join(_join(path, "layers"), name), entries, visited)
        return
    if getattr(obj, "keras_cell_name", None):       # RNN layers: Keras keeps weights in .cell
        entries.append(_Entry(path, obj, [], obj.name))
        entries.append(_Entry(_join(path, "cell"), obj, _own_variables(obj), obj.keras_cell_name))
        return
    if cls == "MultiHeadAttention":
        entries.append(_Entry(path, obj, [], obj.name))
        groups = {}
        for w in _own_variables(obj):
            prefix = w.name.split("/")[0]
            groups.setdefault(_MHA_GROUPS.get(prefix, prefix), []).append(w)
        for attr in sorted(groups, key=_attr_key):
            entries.append(_Entry(_join(path, attr), obj, groups[attr], attr))
        return
    entries.append(_Entry(path, obj, _own_variables(obj), obj.name))
    subs = list(getattr(obj, "_sublayers", []))
    named = []
    for k, sub in enumerate(subs):
        attrs = sorted((a for a, v in vars(obj).items() if v is sub and a != "_sublayers"),
                       key=_attr_key)
        named.append((attrs[0] if attrs else f"_sublayer_{k}", sub))
    for attr, sub in sorted(named, key=lambda p: _attr_key(p[0])):
        _walk(sub, _join(path, attr), entries, visited)


def _unique(name, used):
    if name in used:
        used[name] += 1
        return f"{name}_{used[name]}"
    used[name] = 0
    return name


def _layout(model):
    entries = []
    _walk(model, "", entries, set())
    return entries


def weight_paths(model):
    """``{dataset path: Variable}`` of `model` in Keras 3's ``.weights.h5`` layout.

    Example:
        >>> list(weight_paths(model))[:3]
        ['layers/lstm/cell/vars/0', 'layers/lstm/cell/vars/1', 'layers/lstm/cell/vars/2']
    """
    out = {}
    for e in _layout(model):
        for i, v in enumerate(e.variables):
            out[f"{e.group}/{i}"] = v
    return out


# ---------------------------------------------------------------------------------------------
# Saving


def _check_built(model, what):
    if not getattr(model, "built", True) or (_is_model(model) and
                                             not getattr(model, "_graph_ready", True)):
        raise ValueError(
            f"{who(model)} is not built yet, so it has no weights to {what}. Hint: give it an "
            "Input (or call model.build(input_shape)) before saving or loading weights.")


def save_weights(model, filepath, overwrite=True):
    """Write `model`'s weights to `filepath` (``*.weights.h5``) in Keras 3's layout.

    Args:
        model: a built attnlstm Model or Sequential (or a single layer).
        filepath: must end in ``.weights.h5``.
        overwrite: if False and the file exists, raise instead of replacing it.

    Raises:
        ValueError: wrong extension, an unbuilt model, or an existing file with overwrite=False.
    """
    h5py = _h5py()
    filepath = os.fspath(filepath)
    if not filepath.endswith(".weights.h5"):
        raise ValueError("The filename must end in `.weights.h5`. Received: "
                         f"filepath={filepath}. Hint: Keras 3 (and attnlstm) weight files are "
                         "named like 'model.weights.h5'.")
    _check_built(model, "save")
    if not overwrite and os.path.exists(filepath):
        raise ValueError(f"{filepath} already exists; pass overwrite=True to replace it.")
    entries = _layout(model)
    with h5py.File(filepath, "w") as f:
        for e in entries:
            group = f.require_group(e.group)
            group.attrs["name"] = e.name
            for i, v in enumerate(e.variables):
                group.create_dataset(str(i), data=np.asarray(v.value))


# ---------------------------------------------------------------------------------------------
# Loading


def load_weights(model, filepath, skip_mismatch=False):
    """Set `model`'s weights from a Keras 3 ``.weights.h5`` or a legacy tf.keras ``.h5`` file.

    ``.weights.h5`` files are matched by path (the Keras 3 layout); legacy ``.h5`` files (with
    ``layer_names``/``weight_names`` attributes) by order among the layers that have weights.
    Nothing is changed when a mismatch raises.

    Args:
        model: a built attnlstm Model or Sequential (or a single layer).
        filepath: a ``.weights.h5`` or ``.h5`` file.
        skip_mismatch: warn about layers whose weights do not match (count or shapes) and leave
            them unchanged, instead of raising.

    Raises:
        ValueError (ShapeError): a layer whose weights in the file differ in number or shapes
            (the message names the layer, the expected and the stored shapes), or a legacy file
            with a different number of layers with weights.
        FileNotFoundError: no such file.
    """
    h5py = _h5py()
    filepath = os.fspath(filepath)
    if not os.path.exists(filepath):
        raise FileNotFoundError(f"No such weights file: {filepath}")
    _check_built(model, "load")
    with h5py.File(filepath, "r") as f:
        if "layer_names" in f.attrs or "layer_names0" in f.attrs or "model_weights" in f:
            group = f["model_weights"] if "model_weights" in f else f
            plan, problems = _legacy_plan(model, group, filepath)
        else:
            plan, problems = _keras3_plan(model, f, filepath)
    if problems:
        if not skip_mismatch:
            raise problems[0]
        for err in problems:
            warnings.warn(f"Skipping weights that do not match (skip_mismatch=True): {err}",
                          stacklevel=2)
    for var, value in plan:
        var.assign(np.asarray(value, dtype=var.value.dtype))


def _mismatch(layer, where, expected, got, filepath):
    exp = "[" + ", ".join(format_shape(s) for s in expected) + "]"
    gt = "[" + ", ".join(format_shape(s) for s in got) + "]"
    if len(expected) != len(got):
        detail = (f"it has {len(expected)} weights {exp}, but {where} in '{filepath}' holds "
                  f"{len(got)} {gt}.")
    else:
        detail = f"its weights have shapes {exp}, but {where} in '{filepath}' holds {gt}."
    hint = ("the file was saved from a different model: build the same layers (same units, "
            "heads, input sizes) in the same order, or pass skip_mismatch=True to load the rest.")
    text = f"{who(layer)}: cannot load weights: {detail}\nHint: {hint}"
    return ShapeError(text, layer=layer, argument="weights", expected=tuple(expected),
                      got=tuple(got), hint=hint)


def _keras3_plan(model, f, filepath):
    plan, problems = [], []
    for e in _layout(model):
        stored = []
        if e.group in f and hasattr(f[e.group], "keys"):
            g = f[e.group]
            stored = [g[str(i)] for i in range(len(g.keys())) if str(i) in g]
            if len(stored) != len(g.keys()):
                stored = [g[k] for k in g.keys()]
        expected = [tuple(v.shape) for v in e.variables]
        got = [tuple(d.shape) for d in stored]
        if expected != got:
            problems.append(_mismatch(e.layer, f"'{e.group}'", expected, got, filepath))
            continue
        plan.extend((v, d[()]) for v, d in zip(e.variables, stored))
    return plan, problems


def _read_list_attr(group, name):
    """A string-list attribute, possibly chunked as name0, name1, ... (Keras 2 long lists)."""
    if name in group.attrs:
        values = list(group.attrs[name])
    else:
        values, k = [], 0
        while f"{name}{k}" in group.attrs:
            values.extend(group.attrs[f"{name}{k}"])
            k += 1
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]


def _legacy_plan(model, group, filepath):
    layers = [l for l in (_model_layers(model) if _is_model(model) else [model])
              if l.weights]
    names = [n for n in _read_list_attr(group, "layer_names")
             if _read_list_attr(group[n], "weight_names")]
    if len(names) != len(layers):
        raise ValueError(
            f"{who(model)}: the legacy weights file '{filepath}' has {len(names)} layers with "
            f"weights {names}, but the model has {len(layers)} "
            f"{[l.name for l in layers]}.\nHint: legacy .h5 files are matched by the order of "
            "the layers that have weights; build the same architecture as the saving model.")
    plan, problems = [], []
    for layer, name in zip(layers, names):
        g = group[name]
        stored = [g[w] for w in _read_list_attr(g, "weight_names")]
        variables = list(layer.trainable_weights) + list(layer.non_trainable_weights)
        if not variables:
            variables = list(layer.weights)
        expected = [tuple(v.shape) for v in variables]
        got = [tuple(d.shape) for d in stored]
        if expected != got:
            problems.append(_mismatch(layer, f"layer '{name}'", expected, got, filepath))
            continue
        plan.extend((v, d[()]) for v, d in zip(variables, stored))
    return plan, problems
