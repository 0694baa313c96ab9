"""Whole models as Keras 3 ``.keras`` files (zip of ``metadata.json``, ``config.json`` and
``model.weights.h5``), read and written with zipfile, json and h5py only -- neither TensorFlow
nor Keras is imported.

Reading treats the file as untrusted: every member is read and checked (zip CRCs, HDF5
checksums, JSON structure, classes, argument values, weight shapes and types, optimizer state)
before the model is returned; any problem is one :class:`FileFormatError` (or a ShapeError for
weights of the wrong shape) naming the file, the member and the path inside it. Python code
(``Lambda``) is refused unless ``safe_mode=False``.

Source: ``keras/src/saving/saving_lib.py``, ``keras/src/models/functional.py``
(``functional_from_config``), ``keras/src/models/sequential.py`` (Keras 3.15.1).
"""
import datetime
import io
import json
import os
import tempfile
import zipfile

import numpy as np

from .serialization import (_Ctx, _deserialize_value, _neutral, deserialize_keras_object,
                            serialize_keras_object)
from .weights import (FileFormatError, _functional_layers, _group_keys, _is_sequential,
                      _where, assign_plan, open_h5, read_dataset, read_plan, write_h5)

__all__ = ["save_model", "load_model", "model_to_config", "model_from_keras_config"]

CONFIG = "config.json"
METADATA = "metadata.json"
WEIGHTS = "model.weights.h5"
RNG_STATE = "attnlstm_rng_state.json"   # only in pickles / deepcopies (Keras ignores it)
KERAS_VERSION = "3.15.1"                # the Keras release whose format this writes
_MAX_JSON = 64 * 2**20                  # a config larger than this is not a model config


# ---------------------------------------------------------------------------------------------
# Model -> config


def _tensor_entry(t, node_index):
    return {"class_name": "__keras_tensor__",
            "config": {"shape": list(t.shape), "dtype": t.dtype,
                       "keras_history": [t.producer.name, node_index[id(t._node)], t._index]}}


def _args_entry(value, node_index):
    from ..engine.base import KerasTensor
    if isinstance(value, KerasTensor):
        return _tensor_entry(value, node_index)
    if isinstance(value, (list, tuple)):
        return [_args_entry(v, node_index) for v in value]
    if isinstance(value, dict):
        return {k: _args_entry(v, node_index) for k, v in value.items()}
    return serialize_keras_object(value)


def _structure_entry(struct, node_index):
    from ..engine.base import KerasTensor
    if isinstance(struct, KerasTensor):
        return [struct.producer.name, node_index[id(struct._node)], struct._index]
    if isinstance(struct, dict):
        return {k: _structure_entry(v, node_index) for k, v in struct.items()}
    return [_structure_entry(v, node_index) for v in struct]


def keras_call_args(layer, node):
    """A recorded call as Keras writes it: ``(args list, kwargs dict)``. Layers that take
    several tensors (``_arg_names``, e.g. MultiHeadAttention's query, value, key) record them
    packed in one list; Keras passes them as separate arguments."""
    args, kwargs = list(node.args), dict(node.kwargs)
    names = getattr(type(layer), "_arg_names", ())
    if names and len(args) == 1 and isinstance(args[0], (list, tuple)) and \
            len(args[0]) == len(names):
        vals = list(args[0])
        args = vals[:2] if len(vals) >= 2 and vals[1] is not None else vals[:1]
        for nm, v in zip(names[len(args):], vals[len(args):]):
            if v is not None:
                kwargs[nm] = v
    return args, kwargs


def _input_layer_entry(layer):
    cfg = {"batch_shape": list(layer.batch_shape), "dtype": layer.dtype, "sparse": False,
           "ragged": False, "name": layer.name, "optional": False}
    return {"module": "keras.layers", "class_name": "InputLayer", "config": cfg,
            "registered_name": None}


def functional_config(model):
    """Keras 3's Functional config: layers (with ``name`` and ``inbound_nodes``),
    ``input_layers`` and ``output_layers``."""
    from ..engine.base import InputLayer
    nodes = list(model._nodes) + [t._node for t in model.inputs]
    in_model = {id(n) for n in nodes}
    layers = _functional_layers(model)
    node_index = {}
    for layer in layers:
        k = 0
        for n in layer._inbound_nodes:
            if id(n) in in_model:
                node_index[id(n)] = k
                k += 1
    entries = []
    for layer in layers:
        if isinstance(layer, InputLayer):
            entry = _input_layer_entry(layer)
            entry["name"] = layer.name
            entry["inbound_nodes"] = []
        else:
            entry = serialize_keras_object(layer)
            entry["name"] = layer.name
            entry["inbound_nodes"] = []
            for n in layer._inbound_nodes:
                if id(n) in in_model:
                    args, kwargs = keras_call_args(layer, n)
                    entry["inbound_nodes"].append({"args": _args_entry(args, node_index),
                                                   "kwargs": _args_entry(kwargs, node_index)})
        entries.append(entry)
    return {"name": model.name, "trainable": model.trainable, "layers": entries,
            "input_layers": _structure_entry(model._inputs_struct, node_index),
            "output_layers": _structure_entry(model._outputs_struct, node_index)}


def sequential_config(model):
    layers = []
    if model._input_tensor is not None:
        layers.append(_input_layer_entry(model._input_tensor.producer))
    layers.extend(serialize_keras_object(l) for l in model._stack)
    cfg = {"name": model.name, "trainable": model.trainable,
           "dtype": {"module": "keras", "class_name": "DTypePolicy",
                     "config": {"name": model.dtype}, "registered_name": None},
           "layers": layers}
    if model._input_tensor is not None:
        cfg["build_input_shape"] = list(model._input_tensor.shape)
    return cfg


def model_to_config(model):
    """The whole ``config.json`` object of `model` (with ``compile_config`` when compiled)."""
    out = serialize_keras_object(model)
    if _is_sequential(model) and model._input_tensor is not None:
        out["build_config"] = {"input_shape": list(model._input_tensor.shape)}
    cc = compile_config(model)
    if cc is not None:
        out["compile_config"] = cc
    return out


# ---------------------------------------------------------------------------------------------
# Compile config


def _serialize_spec(spec):
    if spec is None or isinstance(spec, str):
        return spec
    if isinstance(spec, (list, tuple)):
        return [_serialize_spec(s) for s in spec]
    if isinstance(spec, dict):
        return {k: _serialize_spec(v) for k, v in spec.items()}
    if isinstance(spec, (int, float)):
        return spec
    return serialize_keras_object(spec)


def compile_config(model):
    args = getattr(model, "_compile_args", None)
    if not getattr(model, "compiled", False) or args is None:
        return None
    return {"optimizer": serialize_keras_object(model.optimizer),
            "loss": _serialize_spec(args["loss"]),
            "loss_weights": _serialize_spec(args["loss_weights"]),
            "metrics": _serialize_spec(args["metrics"]),
            "weighted_metrics": _serialize_spec(args["weighted_metrics"]),
            "run_eagerly": False, "steps_per_execution": 1, "jit_compile": False}


def _compile_from_config(model, cc, ctx):
    if not isinstance(cc, dict):
        raise ctx.error("compile_config", f"must be a dict, got {type(cc).__name__}.")
    opt = cc.get("optimizer", "rmsprop")
    optimizer = deserialize_keras_object(opt, _ctx=ctx, _path="compile_config.optimizer") \
        if isinstance(opt, dict) else opt
    kw = {}
    for key in ("loss", "loss_weights", "metrics", "weighted_metrics"):
        kw[key] = _deserialize_value(cc.get(key), ctx, f"compile_config.{key}")
    try:
        model.compile(optimizer=optimizer, **kw)
    except FileFormatError:
        raise
    except (TypeError, ValueError) as exc:
        raise ctx.error("compile_config", f"compile() failed: {exc}") from None


# ---------------------------------------------------------------------------------------------
# Config -> model


class _NotReady(Exception):
    pass


def _is_tensor_entry(value):
    return isinstance(value, dict) and value.get("class_name") == "__keras_tensor__"


def model_from_keras_config(cls, config, ctx, path):
    """A Model (or Sequential) from Keras 3's Functional / Sequential config."""
    from ..engine.functional import Sequential
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        raise ctx.error(path, f"a {cls.__name__} config needs a list of `layers`.")
    if issubclass(cls, Sequential):
        return _sequential_from_config(cls, config, ctx, path)
    return _functional_from_config(cls, config, ctx, path)


def _input_from_entry(entry, ctx, path):
    from ..engine.base import Input
    cfg = entry.get("config") or {}
    shape = cfg.get("batch_shape", cfg.get("batch_input_shape"))
    if not isinstance(shape, list) or not all(s is None or isinstance(s, int) for s in shape):
        raise ctx.error(path, f"InputLayer needs a `batch_shape` list of ints/None, got "
                              f"{shape!r}.")
    for k in ("sparse", "ragged"):
        if cfg.get(k):
            raise ctx.error(f"{path}.config.{k}", f"InputLayer {k}=True is not supported by "
                                                  "attnlstm.")
    dtype = cfg.get("dtype")
    if isinstance(dtype, dict):
        dtype = (dtype.get("config") or {}).get("name")
    try:
        return Input(batch_shape=tuple(shape), dtype=dtype, name=cfg.get("name",
                                                                         entry.get("name")))
    except (TypeError, ValueError) as exc:
        raise ctx.error(path, f"InputLayer: {exc}") from None


def _sequential_from_config(cls, config, ctx, path):
    from ..engine.functional import Sequential
    model = cls(name=config.get("name"), trainable=config.get("trainable", True)) \
        if cls is Sequential else cls(name=config.get("name"))
    for i, entry in enumerate(config["layers"]):
        lpath = f"{path}.config.layers[{i}]"
        if not isinstance(entry, dict):
            raise ctx.error(lpath, "a layer entry must be a dict.")
        try:
            if entry.get("class_name") == "InputLayer":
                model.add(_input_from_entry(entry, ctx, lpath))
            else:
                model.add(deserialize_keras_object(entry, _ctx=ctx, _path=lpath))
        except FileFormatError:
            raise
        except (TypeError, ValueError) as exc:
            raise ctx.error(lpath, f"adding the layer failed: {exc}") from None
    shape = config.get("build_input_shape")
    if not model._graph_ready and isinstance(shape, list):
        model.build(tuple(shape))
    return model


def _functional_from_config(cls, config, ctx, path):
    from ..engine.base import flatten
    order, layers, outputs, pending = [], {}, {}, {}
    for i, entry in enumerate(config["layers"]):
        lpath = f"{path}.config.layers[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
            raise ctx.error(lpath, "a layer entry must be a dict with a `config` dict.")
        name = entry.get("name") or entry["config"].get("name")
        if not isinstance(name, str):
            raise ctx.error(lpath, "a layer entry needs a `name`.")
        if name in outputs:
            raise ctx.error(lpath, f"two layers are named '{name}'.")
        if entry.get("class_name") == "InputLayer":
            outputs[name] = [_input_from_entry(entry, ctx, lpath)]
            continue
        obj = {k: v for k, v in entry.items() if k not in ("inbound_nodes", "name")}
        layers[name] = (deserialize_keras_object(obj, _ctx=ctx, _path=lpath), lpath)
        nodes = entry.get("inbound_nodes", [])
        if not isinstance(nodes, list):
            raise ctx.error(f"{lpath}.inbound_nodes", "must be a list.")
        pending[name] = list(enumerate(nodes))
        outputs[name] = []
        order.append(name)

    def tensor(history, where):
        if not (isinstance(history, list) and len(history) >= 3 and isinstance(history[0], str)
                and isinstance(history[1], int) and isinstance(history[2], int)):
            raise ctx.error(where, f"bad keras_history {history!r}.")
        lname, node_i, tensor_i = history[:3]
        if lname not in outputs:
            raise ctx.error(where, f"refers to a layer '{lname}' that is not in the model.")
        if node_i >= len(outputs[lname]):
            raise _NotReady()
        outs = outputs[lname][node_i]
        flat = flatten(outs) if isinstance(outs, (list, tuple, dict)) else [outs]
        if not 0 <= tensor_i < len(flat):
            raise ctx.error(where, f"tensor index {tensor_i} of layer '{lname}' (it has "
                                   f"{len(flat)} outputs).")
        return flat[tensor_i]

    def resolve(value, where):
        if _is_tensor_entry(value):
            return tensor((value.get("config") or {}).get("keras_history"), where)
        if isinstance(value, list):
            return [resolve(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, dict):
            if "class_name" in value and "config" in value:
                return _deserialize_value(value, ctx, where)
            return {k: resolve(v, f"{where}.{k}") for k, v in value.items()}
        return value

    def node_call(name, node_i, node):
        layer, lpath = layers[name]
        where = f"{lpath}.inbound_nodes[{node_i}]"
        if isinstance(node, list):  # Keras 2: [[layer, node, tensor, kwargs], ...]
            ts = [tensor(list(n[:3]), where) for n in node]
            kwargs = dict(node[0][3]) if node and len(node[0]) > 3 and \
                isinstance(node[0][3], dict) else {}
            args = [ts[0] if len(ts) == 1 else ts]
            kwargs = resolve(kwargs, where)
        elif isinstance(node, dict):
            args = resolve(node.get("args", []), f"{where}.args")
            kwargs = resolve(node.get("kwargs", {}), f"{where}.kwargs")
        else:
            raise ctx.error(where, "an inbound node must be a dict of args/kwargs.")
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise ctx.error(where, "node args must be a list and kwargs a dict.")
        kwargs.pop("training", None)
        for k in list(kwargs):
            if kwargs[k] is None or (k == "mask" and all(m is None for m in flatten(kwargs[k]))):
                kwargs.pop(k)
            elif not layer._call_accepts(k):
                if _neutral(kwargs[k]):
                    kwargs.pop(k)
                else:
                    raise ctx.error(f"{where}.kwargs.{k}",
                                    f"{type(layer).__name__}.call has no argument `{k}`.")
        try:
            return layer(*args, **kwargs)
        except FileFormatError:
            raise
        except (TypeError, ValueError, NotImplementedError) as exc:
            raise ctx.error(where, f"calling {type(layer).__name__} '{name}' failed: "
                                   f"{exc}") from None

    while any(pending.values()):
        progress = False
        for name in order:
            while pending[name]:
                node_i, node = pending[name][0]
                try:
                    out = node_call(name, node_i, node)
                except _NotReady:
                    break
                outputs[name].append(out)
                pending[name].pop(0)
                progress = True
        if not progress:
            stuck = [f"{n} (node {pending[n][0][0]})" for n in order if pending[n]]
            raise ctx.error(path, f"the graph cannot be rebuilt: layers {stuck} wait for "
                                  "tensors that no layer produces (a cycle or a missing node).")

    def structure(spec, where):
        if isinstance(spec, dict):
            return {k: structure(v, f"{where}.{k}") for k, v in spec.items()}
        if isinstance(spec, list) and spec and isinstance(spec[0], str):
            try:
                return tensor(spec, where)
            except _NotReady:
                raise ctx.error(where, f"refers to a tensor never computed: {spec!r}.") from None
        if isinstance(spec, list):
            return [structure(s, f"{where}[{i}]") for i, s in enumerate(spec)]
        raise ctx.error(where, f"bad input/output entry {spec!r}.")

    inputs = structure(config.get("input_layers"), f"{path}.config.input_layers")
    outs = structure(config.get("output_layers"), f"{path}.config.output_layers")
    # As Keras' functional_from_config: a one-element list (tf.keras 2 wrote every input and
    # output list that way) is the tensor itself.
    if isinstance(inputs, list) and len(inputs) == 1:
        inputs = inputs[0]
    if isinstance(outs, list) and len(outs) == 1:
        outs = outs[0]
    try:
        model = cls(inputs=inputs, outputs=outs, name=config.get("name"))
    except (TypeError, ValueError) as exc:
        raise ctx.error(path, f"building the model failed: {exc}") from None
    model.trainable = config.get("trainable", True)
    return model


# ---------------------------------------------------------------------------------------------
# Optimizer state in Keras' layout


def keras_trainable_order(model):
    """The trainable variables in Keras' ``model.trainable_variables`` order (the optimizer
    builds its slots in it): Sequential in stack order, Functional by Keras' layer order."""
    from ..engine.functional import Model
    if not model.trainable:
        return []
    if _is_sequential(model) or not getattr(model, "_graph_ready", False):
        layers = list(model.layers)
    else:
        layers = _functional_layers(model)
    out, seen = [], set()
    for layer in layers:
        ws = keras_trainable_order(layer) if isinstance(layer, Model) else \
            layer.trainable_weights
        for w in ws:
            if id(w) not in seen:
                seen.add(id(w))
                out.append(w)
    return out


def _base_vars(opt):
    out = [np.asarray(opt._iterations, np.int64)]
    if isinstance(opt._learning_rate, np.ndarray):
        out.append(np.asarray(opt._learning_rate, np.float32))
    return out


def optimizer_arrays(model):
    """``optimizer/vars`` of a compiled model: iterations, learning rate (a float rate only),
    then the slots of every trainable variable grouped as Keras builds them."""
    opt = model.optimizer
    arrays = _base_vars(opt)
    if not opt.built:
        return arrays
    variables = keras_trainable_order(model)
    for group in opt.keras_slot_groups():
        for v in variables:
            slots = opt._slots.get(id(v))
            for name in group:
                arrays.append(slots[name] if slots is not None else
                              np.zeros_like(np.asarray(v.value)))
    return arrays


def _optimizer_plan(model, f, ctx, member):
    """Read ``optimizer/vars`` into a function that sets the optimizer state (call it only
    when everything else is read)."""
    opt = model.optimizer
    keys = _group_keys(f, "optimizer/vars", ctx.filepath, member)
    if keys is None:
        return lambda: None
    g = f["optimizer/vars"]
    values = [read_dataset(g, k, ctx.filepath, member) for k in keys]
    base = _base_vars(opt)
    variables = keras_trainable_order(model)
    groups = opt.keras_slot_groups()
    n_slots = sum(len(gr) for gr in groups) * len(variables)
    if keys != [str(i) for i in range(len(keys))] or len(values) not in (len(base),
                                                                        len(base) + n_slots):
        raise FileFormatError(
            f"{_where(ctx.filepath, member)}: 'optimizer/vars' holds {len(values)} arrays, but "
            f"{type(opt).__name__} over this model's {len(variables)} trainable variables "
            f"needs {len(base)} (unbuilt) or {len(base) + n_slots}.", ctx.filepath,
            "optimizer/vars")
    for i, (want, got) in enumerate(zip(base, values)):
        if got.shape != () or (i == 0 and got.dtype.kind not in "iu"):
            raise FileFormatError(f"{_where(ctx.filepath, member)}: 'optimizer/vars/{i}' must "
                                  f"be a scalar {want.dtype}, got {got.dtype} {got.shape}.",
                                  ctx.filepath, f"optimizer/vars/{i}")
    slots = []
    k = len(base)
    if len(values) > len(base):
        for group in groups:
            for v in variables:
                for name in group:
                    val = values[k]
                    if val.shape != tuple(v.shape) or val.dtype.kind != "f":
                        raise FileFormatError(
                            f"{_where(ctx.filepath, member)}: 'optimizer/vars/{k}' ({name} of "
                            f"'{v.path}') must be float {tuple(v.shape)}, got {val.dtype} "
                            f"{val.shape}.", ctx.filepath, f"optimizer/vars/{k}")
                    slots.append((v, name, val))
                    k += 1

    def apply():
        opt.iterations = int(values[0])
        if len(base) > 1:
            opt._learning_rate = np.array(values[1], np.float32)
        for v, name, val in slots:
            s = opt._get_slots(v)
            s[name][...] = np.asarray(val, dtype=s[name].dtype)
    return apply


# ---------------------------------------------------------------------------------------------
# Archives


def _rng_layers(model):
    from ..engine.functional import Model
    out = []
    for layer in model.layers:
        if isinstance(layer, Model):
            out.extend(_rng_layers(layer))
        else:
            stack = [layer]
            while stack:
                l = stack.pop(0)
                out.append(l)
                stack.extend(getattr(l, "_sublayers", []))
    return out


def _rng_state(model):
    states = []
    for layer in _rng_layers(model):
        rng = getattr(layer, "_rng", None)
        states.append(rng.bit_generator.state if isinstance(rng, np.random.Generator) else None)
    return states


def _vae_config(vae):
    """An LSTMVAE as ``attnlstm>LSTMVAE``: its constructor arguments (weights: its model's)."""
    if vae.model is None:
        raise ValueError(f"LSTMVAE '{vae.name}' is not built yet, so it has no weights to "
                         "save. Hint: fit it, or call build(features) first.")
    cfg = {"latent_dim": vae.latent_dim, "encoder_units": vae.encoder_units,
           "decoder_units": vae.decoder_units, "beta": float(vae.beta), "kind": vae.kind,
           "features": vae.features, "seed": vae.seed, "dtype": vae.dtype, "name": vae.name}
    return {"module": "attnlstm", "class_name": "LSTMVAE", "config": cfg,
            "registered_name": "attnlstm>LSTMVAE"}


def _is_vae(obj):
    from ..vae import LSTMVAE
    return isinstance(obj, LSTMVAE)


def archive_bytes(model, include_rng=False):
    """The ``.keras`` archive of `model` (a Model, or an LSTMVAE) as bytes."""
    from .weights import _check_built
    if _is_vae(model):
        config = _vae_config(model)
        model = model.model
    else:
        _check_built(model, "save")
        config = model_to_config(model)
    meta = {"keras_version": KERAS_VERSION,
            "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
            "attnlstm_version": _version()}
    extra = []
    if getattr(model, "compiled", False) and getattr(model, "optimizer", None) is not None:
        extra.append(("optimizer/vars", model.optimizer.name, optimizer_arrays(model)))
    h5 = io.BytesIO()
    write_h5(model, h5, extra_groups=extra)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr(METADATA, json.dumps(meta))
        z.writestr(CONFIG, json.dumps(config))
        z.writestr(WEIGHTS, h5.getvalue())
        if include_rng:
            z.writestr(RNG_STATE, json.dumps(_rng_state(model)))
    return out.getvalue()


def _version():
    from .. import __version__
    return __version__


def save_model(model, filepath, overwrite=True, zipped=None):
    """Write `model` to `filepath` (``*.keras``) in Keras 3's format.

    The archive holds ``metadata.json``, ``config.json`` (the model's Keras serialization and,
    when compiled, its ``compile_config``) and ``model.weights.h5`` (weights in Keras' layout
    with Fletcher-32 checksums, and the optimizer state under ``optimizer/vars``).
    ``keras.saving.load_model`` reads it (layers only attnlstm has need the shim described in
    the README). The file is written to a temporary name and renamed, so an interrupted save
    never leaves a half-written model.

    Raises:
        ValueError: a path not ending in ``.keras``, an unbuilt model, an existing file with
            ``overwrite=False``.
    """
    filepath = os.fspath(filepath)
    if zipped is False:
        raise ValueError("attnlstm writes zipped .keras files only. Received: zipped=False")
    if not filepath.endswith(".keras"):
        raise ValueError(f"The filename must end in `.keras`. Received: filepath={filepath}. "
                         "Hint: use model.save_weights('x.weights.h5') for weights only.")
    if not overwrite and os.path.exists(filepath):
        raise ValueError(f"{filepath} already exists; pass overwrite=True to replace it.")
    data = archive_bytes(model)
    folder = os.path.dirname(os.path.abspath(filepath))
    fd, tmp = tempfile.mkstemp(suffix=".keras.tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, filepath)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _read_member(z, name, ctx, required=True):
    try:
        info = z.getinfo(name)
    except KeyError:
        if not required:
            return None
        raise FileFormatError(f"'{ctx.filepath}' has no '{name}': it is not a Keras 3 .keras "
                              f"archive (members: {z.namelist()[:10]}).", ctx.filepath,
                              name) from None
    if name.endswith(".json") and info.file_size > _MAX_JSON:
        raise FileFormatError(f"'{ctx.filepath}' ({name}) is {info.file_size} bytes; a model "
                              "config is never that large.", ctx.filepath, name)
    try:
        return z.read(name)
    except Exception as exc:  # BadZipFile (CRC), zlib.error, EOFError, OSError...
        raise FileFormatError(f"'{ctx.filepath}' ({name}) cannot be read "
                              f"({type(exc).__name__}: {exc}); the archive is corrupted or "
                              "truncated.", ctx.filepath, name) from None


def _json(data, ctx, name):
    try:
        return json.loads(data.decode("utf-8"))
    except Exception as exc:
        raise FileFormatError(f"'{ctx.filepath}' ({name}) is not valid JSON "
                              f"({type(exc).__name__}: {exc}).", ctx.filepath, name) from None


def load_archive(source, filepath, custom_objects=None, compile=True, safe_mode=True,
                 restore_rng=False):
    """The model in a ``.keras`` archive (a path or a binary file object)."""
    ctx = _Ctx(filepath=filepath, member=CONFIG, custom_objects=custom_objects,
               safe_mode=safe_mode)
    try:
        z = zipfile.ZipFile(source, "r")
    except Exception as exc:
        raise FileFormatError(f"'{filepath}' is not a readable .keras (zip) archive "
                              f"({type(exc).__name__}: {exc}); it is corrupted, truncated or "
                              "not a Keras 3 model file.", filepath) from None
    with z:
        config = _json(_read_member(z, CONFIG, ctx), ctx, CONFIG)
        _json(_read_member(z, METADATA, ctx), ctx, METADATA)
        weights = _read_member(z, WEIGHTS, ctx, required=False)
        rng = _read_member(z, RNG_STATE, ctx, required=False) if restore_rng else None
        if weights is None and _read_member(z, "model.weights.npz", ctx, required=False):
            raise FileFormatError(f"'{filepath}' stores its weights as model.weights.npz; "
                                  "attnlstm reads the default h5 format only (save with "
                                  "Keras' default weights_format='h5').", filepath,
                                  "model.weights.npz")
    if not isinstance(config, dict) or "class_name" not in config:
        raise ctx.error("config", "the top level must be a serialized model "
                                  "({'class_name': ..., 'config': ...}).")
    from ..engine.functional import Model
    result = model = deserialize_keras_object(config, _ctx=ctx, _path="config")
    if _is_vae(result):
        model = result.model  # its weights are its training model's
        if model is None:
            raise ctx.error("config.config.features", "an LSTMVAE file needs `features`.")
    if not isinstance(model, Model):
        raise ctx.error("config", f"the archive holds a {type(model).__name__}, not a model.")
    if compile and config.get("compile_config"):
        _compile_from_config(model, config["compile_config"], ctx)
    if weights is None:
        if model.weights:
            raise FileFormatError(f"'{filepath}' has no {WEIGHTS} for the model's "
                                  f"{len(model.weights)} weights.", filepath, WEIGHTS)
        return result
    member = WEIGHTS
    with open_h5(io.BytesIO(weights), filepath, member) as f:
        plan = read_plan(model, f, filepath, member)
        opt_apply = _optimizer_plan(model, f, ctx, member) if \
            getattr(model, "compiled", False) and compile else (lambda: None)
    assign_plan(plan)
    opt_apply()
    if rng is not None:
        states = _json(rng, ctx, RNG_STATE)
        for layer, st in zip(_rng_layers(model), states):
            if st is not None and isinstance(getattr(layer, "_rng", None), np.random.Generator):
                layer._rng.bit_generator.state = st
    return result


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """Load a Keras 3 ``.keras`` file (written by Keras 3 or attnlstm) as an attnlstm model.

    Needs neither TensorFlow nor Keras: the archive is read with zipfile, json and h5py. Layers
    are matched to attnlstm's by class name (custom classes by their registered name); a
    compiled model is compiled again and its optimizer state restored, so training resumes
    where it stopped.

    Args:
        filepath: path to a ``.keras`` file.
        custom_objects: ``{name: class or function}`` for classes not registered with
            :func:`register_keras_serializable` (looked up by registered name, then class name).
        compile: compile the model with the saved ``compile_config`` (and optimizer state).
        safe_mode: refuse Python code stored in the file (``Lambda`` layers), as Keras does.

    Returns:
        An attnlstm :class:`~attnlstm.Model` or :class:`~attnlstm.Sequential` (or the
        :class:`~attnlstm.LSTMVAE` an ``LSTMVAE.save`` wrote).

    Raises:
        FileNotFoundError: no such file.
        FileFormatError (ValueError): a corrupted or truncated archive, a class attnlstm does not
            have, an unsupported argument, Lambda code in safe mode, a missing weights group --
            naming the file, the member and the path inside it.
        ShapeError (ValueError): stored weights of the wrong shape.
    """
    filepath = os.fspath(filepath)
    if not os.path.exists(filepath):
        raise FileNotFoundError(f"No such file: {filepath}")
    if filepath.endswith((".h5", ".hdf5")) and not filepath.endswith(".weights.h5"):
        raise ValueError(f"'{filepath}' is a legacy HDF5 model file; attnlstm.load_model reads "
                         "Keras 3 .keras archives. Hint: rebuild the model and call "
                         "model.load_weights(path) to read its weights.")
    return load_archive(filepath, filepath, custom_objects=custom_objects, compile=compile,
                        safe_mode=safe_mode)


def model_from_bytes(data):
    """A model from :func:`archive_bytes` output (pickle and deepcopy use this)."""
    return load_archive(io.BytesIO(data), "<pickled model>", compile=True, safe_mode=False,
                        restore_rng=True)
