"""Keras 3 object serialization: ``{"module", "class_name", "config", "registered_name"}``.

:func:`serialize_keras_object` writes attnlstm layers, models, optimizers, schedules, losses,
metrics and initializers in the form ``keras.saving.serialize_keras_object`` writes them, with
the ``module`` strings Keras uses (``keras.layers``, ``keras.optimizers``...), so Keras 3 reads
them. :func:`deserialize_keras_object` reads both Keras' and attnlstm's: the class is found by
its registered name (custom objects, :func:`register_keras_serializable`), else by its
``class_name`` among attnlstm's classes that have the same name in Keras.

Layers that only attnlstm has (BahdanauAttention, LuongAttention, AttentionPooling,
RelativeMultiHeadAttention, Sampling, KLDivergence and the LSTMVAE helpers) are written with
``module: "attnlstm.layers"`` and ``registered_name: "attnlstm>ClassName"``.

Config keys that Keras writes and attnlstm does not implement are dropped only when they hold
their neutral value (None, False, empty); any other value is a :class:`FileFormatError`
naming the key, the class and where in the file it is -- never an argument silently ignored.

Source: ``keras/src/saving/serialization_lib.py`` (Keras 3.15.1).
"""
import base64
import inspect
import marshal
import types

import numpy as np

from .object_registration import (_GLOBAL_CUSTOM_NAMES, _scoped, get_registered_object,
                                  is_registered)
from .weights import FileFormatError

__all__ = ["serialize_keras_object", "deserialize_keras_object", "ATTNLSTM_ONLY",
           "builtin_classes"]

#: attnlstm classes without a Keras twin: written as ``attnlstm>Name``.
ATTNLSTM_ONLY = {"BahdanauAttention", "LuongAttention", "AttentionPooling",
                 "RelativeMultiHeadAttention", "Sampling", "KLDivergence", "LSTMVAE",
                 "ReconstructionTerm", "AttachMask", "RepeatOverMask",
                 "SequenceReconstructionLoss"}

_INITIALIZER_KEYS = ("_initializer",)


# ---------------------------------------------------------------------------------------------
# Which attnlstm class a Keras class name means


def builtin_classes():
    """``{class_name: class}`` of every attnlstm class that a file may name, by kind.

    Built fresh from the public modules, so a layer added to ``attnlstm.layers`` is known to
    the file formats as soon as it is exported there.
    """
    from .. import layers as L
    from .. import losses, metrics, optimizers, vae
    from ..engine import base, functional
    from ..optimizers import schedules
    from .keras_ops import KERAS_OPS
    out = {"layers": {}, "optimizers": {}, "losses": {}, "metrics": {}, "schedules": {},
           "initializers": {}, "ops": dict(KERAS_OPS)}
    for name in dir(L):
        obj = getattr(L, name)
        if isinstance(obj, type) and issubclass(obj, base.Layer):
            out["layers"][obj.__name__] = obj
    for cls in (vae.ReconstructionTerm, vae.AttachMask, vae.RepeatOverMask):
        out["layers"][cls.__name__] = cls
    out["layers"]["LSTMVAE"] = vae.LSTMVAE  # a model wrapper, saved by saving_lib
    out["layers"].update({"InputLayer": base.InputLayer, "Functional": functional.Model,
                          "Model": functional.Model, "Sequential": functional.Sequential})
    for name in dir(optimizers):
        obj = getattr(optimizers, name)
        if isinstance(obj, type) and issubclass(obj, optimizers.Optimizer) and \
                obj is not optimizers.Optimizer:
            out["optimizers"][name] = obj
    for name in dir(schedules):
        obj = getattr(schedules, name)
        if isinstance(obj, type) and issubclass(obj, schedules.LearningRateSchedule) and \
                obj is not schedules.LearningRateSchedule:
            out["schedules"][name] = obj
    for name in dir(losses):
        obj = getattr(losses, name)
        if isinstance(obj, type) and issubclass(obj, losses.Loss) and not name.startswith("_") \
                and obj is not losses.Loss:
            out["losses"][name] = obj
    out["losses"]["SequenceReconstructionLoss"] = vae.SequenceReconstructionLoss
    for name in dir(metrics):
        obj = getattr(metrics, name)
        if isinstance(obj, type) and issubclass(obj, metrics.Metric) and \
                not name.startswith("_") and obj is not metrics.Metric:
            out["metrics"][name] = obj
    from .. import initializers
    for cls in set(initializers._BY_NAME.values()):
        out["initializers"][cls.__name__] = cls
    import importlib
    for kind in ("regularizers", "constraints"):
        out[kind] = {}
        try:
            mod = importlib.import_module(f"attnlstm.{kind}")
        except ImportError:
            continue
        for cls in getattr(mod, "_CLASSES", ()):
            out[kind][cls.__name__] = cls
    return out


_KIND_MODULE = {"layers": "keras.layers", "optimizers": "keras.optimizers",
                "losses": "keras.losses", "metrics": "keras.metrics",
                "schedules": "keras.optimizers.schedules",
                "initializers": "keras.initializers", "ops": "keras.src.ops.numpy",
                "regularizers": "keras.regularizers", "constraints": "keras.constraints"}


def _kind_of_module(module):
    """The kind a Keras module string names (``keras.layers``, ``keras.src.layers.rnn.lstm``)."""
    m = str(module or "")
    for key, kind in (("optimizers.schedules", "schedules"), ("schedules", "schedules"),
                      ("optimizers", "optimizers"), ("losses", "losses"),
                      ("metrics", "metrics"), ("initializers", "initializers"),
                      ("regularizers", "regularizers"), ("constraints", "constraints"),
                      ("src.ops", "ops"), ("models", "layers"), ("layers", "layers")):
        if key in m:
            return kind
    return None


# ---------------------------------------------------------------------------------------------
# Serializing


class _Ctx:
    """Where we are in a file, for error messages."""

    def __init__(self, filepath=None, member="config.json", custom_objects=None,
                 safe_mode=True):
        self.filepath = filepath or "<config>"
        self.member = member
        self.custom_objects = dict(custom_objects or {})
        self.safe_mode = safe_mode

    def where(self, path):
        return f"'{self.filepath}' ({self.member}, at {path})"

    def error(self, path, text):
        return FileFormatError(f"{self.where(path)}: {text}", self.filepath,
                               f"{self.member}:{path}")


def _keras_identity(obj):
    """``(module, class_name, registered_name)`` for an attnlstm object."""
    cls = obj if isinstance(obj, type) else type(obj)
    from ..engine import functional
    if is_registered(cls):
        return cls.__module__, cls.__name__, _GLOBAL_CUSTOM_NAMES[cls]
    if cls is functional.Model:
        return "keras.src.models.functional", "Functional", "Functional"
    if cls is functional.Sequential:
        return "keras", "Sequential", None
    classes = builtin_classes()
    for kind, table in classes.items():
        if table.get(cls.__name__) is cls:
            if cls.__name__ in ATTNLSTM_ONLY:
                return "attnlstm.layers", cls.__name__, f"attnlstm>{cls.__name__}"
            if kind == "ops":
                module = "keras.src.ops.core" if cls.__name__ in ("ConvertToTensor", "Cast") \
                    else "keras.src.ops.numpy"
                return module, cls.__name__, cls.__name__
            return _KIND_MODULE[kind], cls.__name__, None
    # An unregistered user class: Keras writes its module and name; loading then needs
    # custom_objects={name: cls}.
    return cls.__module__, cls.__name__, cls.__name__


def _dtype_policy(name):
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": name},
            "registered_name": None}


def _serialize_initializer(value):
    from .. import initializers
    init = initializers.get(value) if isinstance(value, (str, dict)) else value
    if isinstance(init, initializers.Initializer):
        cfg = dict(init.get_config())
        return {"module": "keras.initializers", "class_name": type(init).__name__,
                "config": _serialize_value(cfg), "registered_name": None}
    return serialize_keras_object(init)


def _serialize_value(value, key=None):
    """A config value in Keras' JSON form."""
    from ..engine.base import Layer
    from .. import initializers
    if isinstance(value, (str, bool, int, float)) or value is None:
        if key is not None and key.endswith(_INITIALIZER_KEYS) and isinstance(value, str):
            return _serialize_initializer(value)
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_serialize_value(v) for v in value]
    if isinstance(value, dict):
        if key is not None and key.endswith(_INITIALIZER_KEYS) and "class_name" in value and \
                "module" not in value:
            return _serialize_initializer(value)
        return {k: _serialize_value(v, k) for k, v in value.items()}
    if isinstance(value, initializers.Initializer):
        return _serialize_initializer(value)
    if isinstance(value, (Layer,)) or hasattr(value, "get_config"):
        return serialize_keras_object(value)
    if callable(value):
        return _serialize_function(value)
    raise TypeError(f"Cannot serialize {value!r} (type {type(value).__name__}) in a Keras "
                    f"config{'' if key is None else f' (key {key!r})'}.")


def _serialize_function(fn):
    from .. import activations
    if is_registered(fn):
        return {"module": fn.__module__, "class_name": "function",
                "config": _GLOBAL_CUSTOM_NAMES[fn], "registered_name": _GLOBAL_CUSTOM_NAMES[fn]}
    name = activations.serialize(fn)
    if activations._FUNCS.get(name) is fn:
        return name
    if getattr(fn, "__name__", "") == "<lambda>" and hasattr(fn, "__code__"):
        return {"class_name": "__lambda__",
                "config": {"code": base64.b64encode(marshal.dumps(fn.__code__)).decode("ascii"),
                           "defaults": fn.__defaults__, "closure": None}}
    return {"module": getattr(fn, "__module__", None), "class_name": "function",
            "config": getattr(fn, "__name__", repr(fn)), "registered_name": "function"}


def layer_config(layer):
    """``layer.get_config()`` in Keras' JSON form (dtype as a DTypePolicy, initializers as
    Keras dicts, tuples as lists, nested layers serialized)."""
    from ..engine.base import InputLayer
    cfg = dict(layer.get_config())
    out = {}
    for k, v in cfg.items():
        if k == "dtype" and isinstance(v, str) and not isinstance(layer, InputLayer):
            out[k] = _dtype_policy(v)
        else:
            out[k] = _serialize_value(v, k)
    return out


def serialize_keras_object(obj):
    """``{"module", "class_name", "config", "registered_name"}`` of an attnlstm object, as
    ``keras.saving.serialize_keras_object`` writes it (a layer adds its ``build_config``).

    Strings, numbers, None, lists and dicts are returned as JSON values; functions by name (a
    registered function as a Keras ``function`` entry; a lambda as Keras' marshalled
    ``__lambda__``, which loading refuses unless ``safe_mode=False``).

    Raises:
        TypeError: an object without ``get_config``.
    """
    from ..engine.base import Layer
    if obj is None or isinstance(obj, (str, bool, int, float)):
        return obj
    if isinstance(obj, (list, tuple, dict, np.ndarray, np.generic)):
        return _serialize_value(obj)
    if callable(obj) and not hasattr(obj, "get_config"):
        return _serialize_function(obj)
    if not hasattr(obj, "get_config"):
        raise TypeError(f"Cannot serialize {obj!r}: it has no get_config().")
    module, class_name, registered = _keras_identity(obj)
    if isinstance(obj, Layer):
        from ..engine.functional import Model
        if isinstance(obj, Model) and type(obj).get_config is not Model.get_config and \
                not _is_plain_model_class(type(obj)):
            cfg = {k: _serialize_value(v, k) for k, v in obj.get_config().items()}
        else:
            cfg = layer_config(obj)
    else:
        cfg = {k: _serialize_value(v, k) for k, v in obj.get_config().items()}
    out = {"module": module, "class_name": class_name, "config": cfg,
           "registered_name": registered}
    if isinstance(obj, Layer):
        bc = _build_config(obj)
        if bc is not None:
            out["build_config"] = bc
    return out


def _is_plain_model_class(cls):
    from ..engine.functional import Model, Sequential
    return cls in (Model, Sequential)


def _build_config(layer):
    """Keras' ``{"input_shape": ...}`` for a built single-input layer; None otherwise (Keras
    then builds the layer when the graph calls it)."""
    from ..engine.base import InputLayer
    from ..engine.functional import Model
    if isinstance(layer, InputLayer) or not layer.built:
        return None
    if isinstance(layer, Model):
        return {"input_shape": None} if type(layer) is Model else None
    if getattr(type(layer), "_arg_names", ()) or any(len(n.args) != 1
                                                     for n in layer._inbound_nodes):
        return None
    shape = layer._build_input_shape
    if not isinstance(shape, (tuple, list)):
        return None
    return {"input_shape": _serialize_value(shape)}


# ---------------------------------------------------------------------------------------------
# Deserializing


def _looks_serialized(value):
    return isinstance(value, dict) and "class_name" in value and "config" in value


def _plain_dtype(value, ctx, path):
    if isinstance(value, dict) and value.get("class_name") in ("DTypePolicy", "Policy",
                                                               "FloatDTypePolicy"):
        name = (value.get("config") or {}).get("name")
        if name not in ("float32", "float64", "float16", "int32", "int64", "bool", None):
            raise ctx.error(path, f"dtype policy {name!r} is not supported by attnlstm "
                                  "(float32 or float64 only).")
        return name
    if isinstance(value, dict):
        raise ctx.error(path, f"unknown dtype {value!r}.")
    return value


def _resolve_class(config, ctx, path, kinds):
    """The class a serialized entry names, or a FileFormatError naming it and `path`."""
    class_name = config.get("class_name")
    registered = config.get("registered_name")
    module = config.get("module")
    for key in (registered, class_name):
        if not key:
            continue
        obj = _scoped().get(key) or ctx.custom_objects.get(key)
        if obj is None:
            obj = get_registered_object(key)
        if obj is not None:
            return obj
    classes = builtin_classes()
    if isinstance(registered, str) and registered.startswith("attnlstm>"):
        name = registered.split(">", 1)[1]
        for kind in kinds:
            if name in classes[kind]:
                return classes[kind][name]
    kind = _kind_of_module(module) if module else None
    look = [kind] if kind in kinds else list(kinds)
    if kind == "layers" and "ops" in kinds:
        look.append("ops")
    if str(module or "").startswith(("keras", "attnlstm", "tf_keras")) or module is None:
        for k in look:
            if class_name in classes[k]:
                return classes[k][class_name]
        if module and "src.ops" in module and class_name in classes["ops"]:
            return classes["ops"][class_name]
    imported = _import_trusted(module, class_name, ctx)
    if imported is not None:
        return imported
    if "initializers" in kinds and module is None:
        from .. import initializers
        if class_name in initializers._BY_NAME:  # attnlstm's own {"class_name": "orthogonal"}
            return initializers._BY_NAME[class_name]
    if registered and ">" in str(registered):
        hint = (f"register the class with @attnlstm.saving.register_keras_serializable("
                f"package={registered.split('>')[0]!r}) or pass custom_objects="
                f"{{{registered!r}: YourClass}}.")
    elif str(module or "").startswith("keras"):
        hint = ("attnlstm does not implement this Keras class yet; rebuild the model without "
                "it, or pass custom_objects={" + repr(class_name) + ": YourImplementation}.")
    else:
        hint = f"pass custom_objects={{{class_name!r}: YourClass}} to load_model."
    raise ctx.error(path, f"unknown class '{class_name}' (module {module!r}, registered_name "
                          f"{registered!r}).\nHint: {hint}")


def _load_lambda(config, ctx, path):
    if ctx.safe_mode:
        raise ctx.error(path, "the file contains Python code (a Lambda or lambda function, "
                              "stored as marshalled bytecode). Loading it would run that code, "
                              "so it is refused in safe mode.\nHint: only if you trust the "
                              "file, pass safe_mode=False to load_model.")
    try:
        code = marshal.loads(base64.b64decode(config["code"].encode("ascii")))
        defaults = config.get("defaults")
        return types.FunctionType(code, globals(), None,
                                  tuple(defaults) if defaults is not None else None)
    except Exception as exc:
        raise ctx.error(path, f"the marshalled function cannot be loaded "
                              f"({type(exc).__name__}: {exc}); marshalled code only loads in "
                              "the Python version that wrote it.") from None


def _deserialize_value(value, ctx, path, key=None):
    """Config values: nested serialized objects become objects, tuples tuples."""
    if isinstance(value, list):
        return [_deserialize_value(v, ctx, f"{path}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, dict):
        return value
    if key == "dtype":
        return _plain_dtype(value, ctx, path)
    if _looks_serialized(value):
        cname = value.get("class_name")
        if cname == "__tuple__":
            return tuple(_deserialize_value(v, ctx, path) for v in value["config"]["value"])
        if cname == "__lambda__":
            return _load_lambda(value["config"], ctx, path)
        if cname == "function":
            return _load_function(value, ctx, path)
        if cname in ("DTypePolicy", "FloatDTypePolicy", "Policy"):
            return _plain_dtype(value, ctx, path)
        return deserialize_keras_object(value, _ctx=ctx, _path=path)
    return {k: _deserialize_value(v, ctx, f"{path}.{k}", k) for k, v in value.items()}


def _import_trusted(module, name, ctx):
    """With ``safe_mode=False`` (pickles, deep copies, trusted files): a class or function by
    its module and name, as pickle finds them; None otherwise."""
    if ctx.safe_mode or not isinstance(module, str) or not isinstance(name, str) or \
            module.startswith(("keras", "tf_keras", "builtins")):
        return None
    import importlib
    try:
        obj = importlib.import_module(module)
        for part in name.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError):
        return None
    return obj


def _load_function(value, ctx, path):
    from .. import activations
    name = value.get("config")
    reg = value.get("registered_name")
    for key in (reg, name):
        if key:
            obj = _scoped().get(key) or ctx.custom_objects.get(key) or \
                get_registered_object(key)
            if obj is not None:
                return obj
    if isinstance(name, str) and name in activations._FUNCS:
        return name
    imported = _import_trusted(value.get("module"), name, ctx)
    if imported is not None:
        return imported
    from .. import losses, metrics
    if isinstance(name, str) and (name in losses._ALIASES or name in metrics._NAMES):
        return name
    raise ctx.error(path, f"unknown function {name!r} (registered_name {reg!r}).\nHint: "
                          f"register it with @attnlstm.saving.register_keras_serializable() or "
                          f"pass custom_objects={{{name!r}: fn}}.")


def _accepted_args(cls):
    """Constructor argument names of `cls` (through ``**kwargs`` handed to base classes)."""
    from ..engine.base import _LAYER_KWARGS, Layer
    names, open_kwargs = set(), True
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        if klass is Layer:
            names |= set(_LAYER_KWARGS)
            open_kwargs = False
            break
        try:
            params = inspect.signature(init).parameters
        except (TypeError, ValueError):
            break
        names |= {n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD,
                                                               p.KEYWORD_ONLY)}
        if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            open_kwargs = False
            break
    names.discard("self")
    return names, open_kwargs


def _neutral(value):
    return value is None or value is False or value == [] or value == {} or value == ()


# Keras config keys attnlstm's layers do not take, with the values that mean what attnlstm
# computes anyway (Keras' defaults); any other value is an error.
_EQUIVALENT_DEFAULTS = {"data_format": ("channels_last",)}


def fit_config(cls, config, ctx, path):
    """`config` without the Keras keys `cls` lacks -- only if they hold neutral values."""
    if "from_config" in cls.__dict__ and not _is_attnlstm_class(cls):
        return config  # a user class reads its own config
    accepted, open_kwargs = _accepted_args(cls)
    if open_kwargs:
        return config
    out = {}
    for k, v in config.items():
        if k in accepted:
            out[k] = v
        elif not _neutral(v) and v not in _EQUIVALENT_DEFAULTS.get(k, ()):
            raise ctx.error(f"{path}.config.{k}",
                            f"{cls.__name__} argument `{k}`={v!r} is not supported by "
                            f"attnlstm's {cls.__name__}; loading without it would compute "
                            "something else.")
    return out


def config_to_kwargs(cls, config, custom_objects=None, safe_mode=True):
    """Constructor arguments of `cls` from a config in attnlstm's or Keras 3's form: nested
    serialized objects deserialized, DTypePolicy dicts as dtype names, Keras keys that `cls`
    lacks dropped when neutral (else a FileFormatError)."""
    ctx = _Ctx(custom_objects=custom_objects, safe_mode=safe_mode)
    kwargs = {k: _deserialize_value(v, ctx, f"config.{k}", k) for k, v in dict(config).items()}
    return fit_config(cls, kwargs, ctx, "config")


def _is_attnlstm_class(cls):
    return cls.__module__.startswith("attnlstm.")


def deserialize_keras_object(config, custom_objects=None, safe_mode=True, _ctx=None,
                             _path="config"):
    """The attnlstm object a Keras serialized entry describes.

    Args:
        config: ``{"module", "class_name", "config", "registered_name"}`` (Keras 3), a legacy
            ``{"class_name", "config"}``, or a plain value (returned as is).
        custom_objects: ``{name: class or function}`` looked up by registered name, then by
            class name, before attnlstm's own classes.
        safe_mode: refuse marshalled Python code (Lambda), as Keras.

    Raises:
        FileFormatError: an unknown class, an unsupported argument value, Python code in safe
            mode -- naming the class and the path in the config.
    """
    ctx = _ctx or _Ctx(custom_objects=custom_objects, safe_mode=safe_mode)
    if not isinstance(config, dict):
        return config
    if not _looks_serialized(config):
        return _deserialize_value(config, ctx, _path)
    cname = config.get("class_name")
    if cname in ("__tuple__", "__lambda__", "function", "DTypePolicy"):
        return _deserialize_value(config, ctx, _path)
    cls = _resolve_class(config, ctx, _path, ("layers", "ops", "optimizers", "schedules",
                                              "losses", "metrics", "initializers",
                                              "regularizers", "constraints"))
    inner = config.get("config")
    if not isinstance(inner, dict):
        if isinstance(inner, str) and not isinstance(cls, type):
            return cls
        raise ctx.error(_path, f"the config of {cname} must be a dict, got "
                               f"{type(inner).__name__}.")
    if not isinstance(cls, type):
        return cls  # a registered function
    from ..engine.functional import Model
    if issubclass(cls, Model) and ("from_config" not in cls.__dict__ or
                                   _is_plain_model_class(cls)):
        from .saving_lib import model_from_keras_config
        return model_from_keras_config(cls, inner, ctx, _path)
    kwargs = {k: _deserialize_value(v, ctx, f"{_path}.config.{k}", k) for k, v in inner.items()}
    kwargs = fit_config(cls, kwargs, ctx, _path)
    try:
        if not hasattr(cls, "from_config"):
            obj = cls(**kwargs)  # e.g. initializers
        else:
            obj = cls.from_config(kwargs)
    except FileFormatError:
        raise
    except (TypeError, ValueError, NotImplementedError, KeyError) as exc:
        raise ctx.error(_path, f"{cls.__name__}.from_config failed: {exc}") from None
    _check_kept(obj, kwargs, ctx, _path)
    return obj


def _check_kept(obj, kwargs, ctx, path):
    """A regularizer or constraint the layer accepted but does not keep would be silently
    ignored in training: an error instead."""
    from ..engine.base import Layer
    if not isinstance(obj, Layer):
        return
    for k, v in kwargs.items():
        if k.endswith(("_regularizer", "_constraint")) and v is not None and \
                getattr(obj, k, None) is None:
            raise ctx.error(f"{path}.config.{k}",
                            f"{type(obj).__name__} takes `{k}` but attnlstm's "
                            f"{type(obj).__name__} does not implement it (it would be ignored "
                            f"in training). Received: {k}={v!r}")
