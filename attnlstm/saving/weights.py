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
    >>> import numpy as np
    >>> from attnlstm import Input, Model, layers
    >>> x = Input((5, 3))
    >>> model = Model(x, layers.Dense(2)(layers.LSTM(4)(x)))
    >>> model.save_weights("model.weights.h5")       # keras_model.load_weights(...) reads it
    >>> model.load_weights("model.weights.h5")        # or one saved by Keras 3
    >>> sorted(weight_paths(model))[:1]
    ['layers/dense/vars/0']
"""
import io
import os
import warnings
import zlib

import numpy as np

from .. import backend
from ..errors import ShapeError, format_shape, who

__all__ = ["save_weights", "load_weights", "weight_paths", "FileFormatError"]


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
    from ..engine.functional import Model
    return isinstance(obj, Model)


def _is_sequential(obj):
    from ..engine.functional import Sequential
    return isinstance(obj, Sequential)


def _class_key(obj):
    """Keras names container members by class: our Model is Keras' ``Functional``."""
    from ..engine.functional import Model
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
    from ..engine.base import KerasTensor
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
    return sorted((l for l in layers.values() if not getattr(l, "_is_op_layer", False)),
                  key=lambda l: (-layer_depth[id(l)], order[id(l)]))


def _model_layers(model):
    if _is_sequential(model) or getattr(model, "_subclassed", False):
        return list(model.layers)
    if not getattr(model, "_graph_ready", False):
        return list(model.layers)
    return _functional_layers(model)


def _walk(obj, path, entries, visited):
    if id(obj) in visited:
        return
    visited.add(id(obj))
    if _is_model(obj):
        entries.append(_Entry(path, obj, _own_variables(obj), obj.name))
        used = {}
        for layer in _model_layers(obj):
            name = _unique(_class_key(layer), used)  # Keras numbers visited layers too
            _walk(layer, _join(_join(path, "layers"), name), entries, visited)
        return
    custom = getattr(obj, "_keras_weight_groups", None)
    if custom is not None:
        # A layer whose Keras twin keeps its weights in sub-objects that attnlstm does not have
        # as layers: ``[(relative path, [variables]), ...]`` ("" for the layer's own group).
        for rel, variables in custom():
            entries.append(_Entry(_join(path, rel), obj, list(variables),
                                  obj.name if not rel else rel.split("/")[-1]))
        return
    cell_name = getattr(obj, "keras_cell_name", None)   # RNN layers: Keras keeps weights in .cell
    if cell_name:
        entries.append(_Entry(path, obj, [], obj.name))
        entries.append(_Entry(_join(path, "cell"), obj, _own_variables(obj), cell_name))
        return
    group_of = getattr(obj, "keras_projection_groups", None)   # MultiHeadAttention's projections
    if group_of:
        entries.append(_Entry(path, obj, [], obj.name))
        groups = {}
        for w in _own_variables(obj):
            prefix = w.name.split("/")[0]
            groups.setdefault(group_of.get(prefix, prefix), []).append(w)
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
        >>> from attnlstm import Input, Model, layers
        >>> x = Input((5, 3))
        >>> model = Model(x, layers.Dense(2)(layers.LSTM(4)(x)))
        >>> list(weight_paths(model))[:3]
        ['layers/lstm/cell/vars/0', 'layers/lstm/cell/vars/1', 'layers/lstm/cell/vars/2']
    """
    out = {}
    for e in _layout(model):
        for i, v in enumerate(e.variables):
            out[f"{e.group}/{i}"] = v
    return out


# ---------------------------------------------------------------------------------------------
# Errors


class FileFormatError(ValueError):
    """A weight or model file that cannot be used as it is: corrupted or truncated bytes, a
    missing group or dataset, a dataset of the wrong type, a config naming an unknown class.

    The message names the file, the path inside it (zip member, HDF5 dataset or config entry)
    and what is wrong. Nothing is assigned to any model when it is raised.

    Attributes:
        filepath: the file (or ``"<bytes>"`` for in-memory archives).
        member: the path inside the file (e.g. ``"model.weights.h5:layers/dense/vars/0"``), or
            None.
    """

    def __init__(self, message, filepath=None, member=None):
        super().__init__(message)
        self.filepath = filepath
        self.member = member


def _where(filepath, member=None):
    """``'m.keras' (model.weights.h5)`` / ``'m.weights.h5'``."""
    return f"'{filepath}'" + (f" ({member})" if member else "")


# ---------------------------------------------------------------------------------------------
# Saving

# Datasets get HDF5's Fletcher-32 checksum (chunked layout; any HDF5 reader, Keras included,
# reads them unchanged and verifies the sum). HDF5 cannot chunk a scalar or an empty dataset, and
# a damaged chunk index can make HDF5 return the fill value (zeros) for a chunk it no longer
# finds, without any error; so every dataset also carries a CRC-32 of its bytes in an attribute
# that loading checks (Keras ignores it). File-format versions from 1.10 give the superblock, the
# object headers and the chunk indexes checksums of their own, so a flipped byte in the metadata
# (a shape, a dtype, a name) is an error too; HDF5 1.10 or later (h5py >= 2.7) reads the file.
_CRC_ATTR = "attnlstm_crc32"
_LIBVER = ("v110", "v110")


def _create_dataset(group, name, value):
    value = np.array(value, order="C", copy=True)  # (ascontiguousarray makes 0-d 1-d)
    if value.ndim and value.size:
        ds = group.create_dataset(name, data=value, fletcher32=True)
    else:
        ds = group.create_dataset(name, data=value)
    ds.attrs[_CRC_ATTR] = np.uint32(zlib.crc32(value.tobytes()))


def write_h5(model, target, extra_groups=()):
    """Write `model`'s weights in Keras 3's layout to `target` (a path or a binary file
    object); `extra_groups` is ``[(group path, name attr, [arrays])]`` (e.g. the optimizer)."""
    h5py = _h5py()
    entries = _layout(model)
    with h5py.File(target, "w", libver=_LIBVER) as f:
        for e in entries:
            group = f.require_group(e.group)
            group.attrs["name"] = e.name
            for i, v in enumerate(e.variables):
                _create_dataset(group, str(i), np.asarray(v.value))
        for path, name, arrays in extra_groups:
            group = f.require_group(path)
            group.attrs["name"] = name
            for i, a in enumerate(arrays):
                _create_dataset(group, str(i), np.asarray(a))


def _check_built(model, what):
    if not getattr(model, "built", True) or (_is_model(model) and
                                             not getattr(model, "_graph_ready", True)):
        raise ValueError(
            f"{who(model)} is not built yet, so it has no weights to {what}. Hint: give it an "
            "Input (or call model.build(input_shape)) before saving or loading weights.")


def save_weights(model, filepath, overwrite=True):
    """Write `model`'s weights to `filepath` (``*.weights.h5``) in Keras 3's layout.

    Every dataset carries HDF5's Fletcher-32 checksum (scalars a CRC-32 attribute), so a
    corrupted file is an error when it is read, not silently different weights. Keras 3 and
    h5py read the file unchanged.

    Args:
        model: a built attnlstm Model or Sequential (or a single layer).
        filepath: must end in ``.weights.h5``.
        overwrite: if False and the file exists, raise instead of replacing it.

    Raises:
        ValueError: wrong extension, an unbuilt model, or an existing file with overwrite=False.
    """
    filepath = os.fspath(filepath)
    if not filepath.endswith(".weights.h5"):
        raise ValueError("The filename must end in `.weights.h5`. Received: "
                         f"filepath={filepath}. Hint: Keras 3 (and attnlstm) weight files are "
                         "named like 'model.weights.h5'.")
    _check_built(model, "save")
    if not overwrite and os.path.exists(filepath):
        raise ValueError(f"{filepath} already exists; pass overwrite=True to replace it.")
    write_h5(model, filepath)


# ---------------------------------------------------------------------------------------------
# Loading: read and check everything first, assign only when all of it is right


def open_h5(source, filepath, member=None):
    """``h5py.File`` for reading a path or a file object; an unreadable file is a
    FileFormatError naming it."""
    h5py = _h5py()
    try:
        return h5py.File(source, "r")
    except Exception as exc:  # h5py raises OSError, RuntimeError, ValueError... on bad bytes
        raise FileFormatError(
            f"{_where(filepath, member)} is not a readable HDF5 weights file "
            f"({type(exc).__name__}: {exc}). It is corrupted, truncated, or not an HDF5 file.",
            filepath, member) from None


def read_dataset(ds_or_group, name, filepath, member=None, want_kind=None):
    """The array of dataset `name` in an h5py group, checked: readable (HDF5 verifies the
    Fletcher-32 sum), numeric, of kind `want_kind` (``"f"``: float or int; ``"i"``: int) and
    matching its CRC-32 attribute if it has one. Raises FileFormatError naming the dataset."""
    h5py = _h5py()
    label = f"{ds_or_group.name.rstrip('/')}/{name}".lstrip("/")
    loc = _where(filepath, (member + ":" if member else "") + label)
    try:
        ds = ds_or_group[name]
        if not isinstance(ds, h5py.Dataset):
            raise FileFormatError(f"{loc} is a group, not a dataset of weights.", filepath,
                                  label)
        kind = ds.dtype.kind
        if kind not in "fiub" or ds.dtype.names is not None:
            raise FileFormatError(f"{loc} holds {ds.dtype} values, not numbers. The file is "
                                  "corrupted or was not written as a weights file.", filepath,
                                  label)
        value = np.asarray(ds[()])
        crc = ds.attrs.get(_CRC_ATTR) if _CRC_ATTR in ds.attrs else None
    except FileFormatError:
        raise
    except Exception as exc:
        raise FileFormatError(
            f"{loc} cannot be read ({type(exc).__name__}: {exc}). The file is corrupted or "
            "truncated (its checksum does not match, or its structure is damaged).",
            filepath, label) from None
    if crc is not None and np.uint32(zlib.crc32(np.array(value, order="C").tobytes())) != \
            np.uint32(crc):
        raise FileFormatError(f"{loc}: the CRC-32 of the value does not match the one stored "
                              "with it; the file is corrupted.", filepath, label)
    if want_kind == "f" and value.dtype.kind not in "fiu":
        raise FileFormatError(f"{loc} holds {value.dtype} values, expected floats.", filepath,
                              label)
    if want_kind == "i" and value.dtype.kind not in "iu":
        raise FileFormatError(f"{loc} holds {value.dtype} values, expected integers.",
                              filepath, label)
    return value


def _group_keys(f, path, filepath, member):
    """Dataset names of group `path` sorted as integers, or None if there is no such group."""
    h5py = _h5py()
    try:
        if path not in f:
            return None
        g = f[path]
        if not isinstance(g, h5py.Group):
            raise FileFormatError(f"{_where(filepath, member)}: '{path}' is not a group.",
                                  filepath, path)
        keys = list(g.keys())
    except FileFormatError:
        raise
    except Exception as exc:
        raise FileFormatError(
            f"{_where(filepath, member)}: group '{path}' cannot be read "
            f"({type(exc).__name__}: {exc}). The file is corrupted or truncated.",
            filepath, path) from None
    return sorted(keys, key=lambda k: (0, int(k)) if k.isdigit() else (1, k))


def load_weights(model, filepath, skip_mismatch=False):
    """Set `model`'s weights from a Keras 3 ``.weights.h5`` or a legacy tf.keras ``.h5`` file.

    ``.weights.h5`` files are matched by path (the Keras 3 layout); legacy ``.h5`` files (with
    ``layer_names``/``weight_names`` attributes) by order among the layers that have weights.
    Every dataset is read and checked (presence, shape, numeric type, checksum) before any weight
    is assigned: when this raises, the model is unchanged.

    Args:
        model: a built attnlstm Model or Sequential (or a single layer).
        filepath: a ``.weights.h5`` or ``.h5`` file, or a ``.keras`` archive (its weights).
        skip_mismatch: warn about layers whose weights do not match (count or shapes) and leave
            them unchanged, instead of raising.

    Raises:
        ValueError (ShapeError): a layer whose weights in the file differ in number or shapes
            (the message names the layer, the expected and the stored shapes), or a legacy file
            with a different number of layers with weights.
        FileFormatError (a ValueError): a corrupted, truncated or non-HDF5 file, a dataset that
            is not numbers or fails its checksum (naming the file and the dataset path).
        FileNotFoundError: no such file.
    """
    filepath = os.fspath(filepath)
    if not os.path.exists(filepath):
        raise FileNotFoundError(f"No such weights file: {filepath}")
    _check_built(model, "load")
    source, member = filepath, None
    if filepath.endswith(".keras"):  # as Keras 3: the weights of a whole-model file
        from .saving_lib import WEIGHTS, _Ctx, _read_member
        import zipfile
        try:
            with zipfile.ZipFile(filepath) as z:
                data = _read_member(z, WEIGHTS, _Ctx(filepath=filepath, member=WEIGHTS))
        except zipfile.BadZipFile as exc:
            raise FileFormatError(f"'{filepath}' is not a readable .keras (zip) archive "
                                  f"({exc}).", filepath) from None
        source, member = io.BytesIO(data), WEIGHTS
    with open_h5(source, filepath, member) as f:
        plan = read_plan(model, f, filepath, member, skip_mismatch=skip_mismatch)
    assign_plan(plan)


def read_plan(model, f, filepath, member=None, skip_mismatch=False):
    """``[(variable, array)]`` for every weight of `model` from an open h5py file, all read and
    checked; raises (or warns with `skip_mismatch`) on mismatches. Any other error of h5py on a
    damaged file becomes a FileFormatError naming the file."""
    try:
        return _read_plan(model, f, filepath, member, skip_mismatch)
    except ValueError:  # ours (FileFormatError, ShapeError) or a clear mismatch
        raise
    except Exception as exc:  # KeyError, RuntimeError, OSError... from h5py on damaged bytes
        raise FileFormatError(
            f"{_where(filepath, member)} cannot be read ({type(exc).__name__}: {exc}); the "
            "file is corrupted or truncated.", filepath, member) from None


def _read_plan(model, f, filepath, member, skip_mismatch):
    try:
        legacy = "layer_names" in f.attrs or "layer_names0" in f.attrs or "model_weights" in f
    except Exception as exc:
        raise FileFormatError(f"{_where(filepath, member)}: the root group cannot be read "
                              f"({type(exc).__name__}: {exc}); the file is corrupted.",
                              filepath, member) from None
    if legacy:
        group = f["model_weights"] if "model_weights" in f else f
        plan, problems = _legacy_plan(model, group, filepath)
    else:
        plan, problems = _keras3_plan(model, f, filepath, member)
    if problems:
        if not skip_mismatch:
            raise problems[0]
        for err in problems:
            warnings.warn(f"Skipping weights that do not match (skip_mismatch=True): {err}",
                          stacklevel=3)
    return plan


def assign_plan(plan):
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


def _keras3_plan(model, f, filepath, member=None):
    plan, problems = [], []
    for e in _layout(model):
        keys = _group_keys(f, e.group, filepath, member)
        expected = [tuple(v.shape) for v in e.variables]
        if keys is None:
            if e.variables:
                problems.append(FileFormatError(
                    f"{who(e.layer)}: cannot load weights: {_where(filepath, member)} has no "
                    f"group '{e.group}' for its {len(e.variables)} weights "
                    f"[{', '.join(format_shape(s) for s in expected)}].\nHint: the file was "
                    "saved from a different model (or is damaged); build the same layers in "
                    "the same order.", filepath, e.group))
            continue
        g = f[e.group]
        got, values = [], []
        for k in keys:
            values.append(read_dataset(g, k, filepath, member))
            got.append(tuple(values[-1].shape))
        if expected != got or keys != [str(i) for i in range(len(keys))]:
            problems.append(_mismatch(e.layer, f"'{e.group}'", expected, got, filepath))
            continue
        for v, value in zip(e.variables, values):
            kind = np.dtype(v.dtype).kind
            if (kind == "f" and value.dtype.kind not in "fiu") or \
                    (kind in "iu" and value.dtype.kind not in "iu"):
                raise FileFormatError(
                    f"{_where(filepath, member)}: '{e.group}' holds {value.dtype} values for "
                    f"{who(e.layer)}'s {v.dtype} weight '{v.name}'.", filepath, e.group)
        plan.extend(zip(e.variables, values))
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
    try:
        names = [n for n in _read_list_attr(group, "layer_names")
                 if _read_list_attr(group[n], "weight_names")]
    except Exception as exc:
        raise FileFormatError(f"{_where(filepath)}: the legacy layer list cannot be read "
                              f"({type(exc).__name__}: {exc}); the file is corrupted.",
                              filepath) from None
    if len(names) != len(layers):
        raise ValueError(
            f"{who(model)}: the legacy weights file '{filepath}' has {len(names)} layers with "
            f"weights {names}, but the model has {len(layers)} "
            f"{[l.name for l in layers]}.\nHint: legacy .h5 files are matched by the order of "
            "the layers that have weights; build the same architecture as the saving model.")
    plan, problems = [], []
    for layer, name in zip(layers, names):
        g = group[name]
        stored = [read_dataset(g, w, filepath) for w in _read_list_attr(g, "weight_names")]
        variables = list(layer.trainable_weights) + list(layer.non_trainable_weights)
        if not variables:
            variables = list(layer.weights)
        expected = [tuple(v.shape) for v in variables]
        got = [tuple(d.shape) for d in stored]
        if expected != got:
            problems.append(_mismatch(layer, f"layer '{name}'", expected, got, filepath))
            continue
        plan.extend(zip(variables, stored))
    return plan, problems
