"""The custom-object registry, with Keras 3's registered names (``"package>Name"``).

A class registered here is written to ``.keras`` files under its registered name and found
again by it when loading, exactly as ``keras.saving.register_keras_serializable`` does, so a
file with a custom layer opens in attnlstm and in Keras when both register the same name.

Source: ``keras/src/saving/object_registration.py`` (Keras 3.15.1).
"""
import inspect
import threading

__all__ = ["register_keras_serializable", "get_registered_name", "get_registered_object",
           "get_custom_objects", "CustomObjectScope", "custom_object_scope"]

_GLOBAL_CUSTOM_OBJECTS = {}   # registered name -> class or function
_GLOBAL_CUSTOM_NAMES = {}     # class or function -> registered name
_SCOPE = threading.local()    # stack of dicts from CustomObjectScope


def _scoped():
    out = {}
    for d in getattr(_SCOPE, "stack", []):
        out.update(d)
    return out


class CustomObjectScope:
    """``with CustomObjectScope({"MyLayer": MyLayer}):`` -- objects that loading finds by name
    inside the block (``keras.saving.CustomObjectScope``)."""

    def __init__(self, custom_objects):
        self.custom_objects = dict(custom_objects or {})

    def __enter__(self):
        if not hasattr(_SCOPE, "stack"):
            _SCOPE.stack = []
        _SCOPE.stack.append(self.custom_objects)
        return self

    def __exit__(self, *exc):
        _SCOPE.stack.pop()


custom_object_scope = CustomObjectScope


def get_custom_objects():
    """The global registry ``{registered name: object}`` (a live dict, as Keras)."""
    return _GLOBAL_CUSTOM_OBJECTS


def register_keras_serializable(package="Custom", name=None):
    """Decorator registering a class or function under ``"package>name"``.

    Args:
        package: the package part of the registered name (default ``"Custom"``, as Keras).
        name: the name part (default the class or function ``__name__``).

    Returns:
        The decorator; it returns the object unchanged.

    Raises:
        ValueError: a `package` or `name` containing ``">"``, a class without ``get_config``,
            or a registered name already taken by a different object.

    Example:
        >>> @register_keras_serializable(package="demo")
        ... class Scale(attnlstm.layers.Layer):
        ...     def __init__(self, factor=2.0, **kwargs):
        ...         super().__init__(**kwargs); self.factor = factor
        ...     def call(self, x): return x * self.factor
        ...     def get_config(self): return {**super().get_config(), "factor": self.factor}
        >>> get_registered_name(Scale)
        'demo>Scale'
    """
    if ">" in str(package) or (name is not None and ">" in str(name)):
        raise ValueError(f"The package and the name of a registered object cannot contain "
                         f"'>'. Received: package={package!r}, name={name!r}")

    def decorator(arg):
        class_name = name if name is not None else arg.__name__
        registered_name = f"{package}>{class_name}"
        if inspect.isclass(arg) and not hasattr(arg, "get_config"):
            raise ValueError("Cannot register a class that does not have a get_config() "
                             f"method. Received: {arg!r}")
        old = _GLOBAL_CUSTOM_OBJECTS.get(registered_name)
        if old is not None and old is not arg and (
                getattr(old, "__module__", None), getattr(old, "__qualname__", None)) != (
                getattr(arg, "__module__", None), getattr(arg, "__qualname__", None)):
            raise ValueError(f"{registered_name} has already been registered to {old!r}. "
                             f"Received: {arg!r}")
        if old is not None:
            _GLOBAL_CUSTOM_NAMES.pop(old, None)
        _GLOBAL_CUSTOM_OBJECTS[registered_name] = arg
        _GLOBAL_CUSTOM_NAMES[arg] = registered_name
        return arg

    return decorator


def get_registered_name(obj):
    """The registered name of a class or function, else its ``__name__``."""
    if obj in _GLOBAL_CUSTOM_NAMES:
        return _GLOBAL_CUSTOM_NAMES[obj]
    return obj.__name__


def get_registered_object(name, custom_objects=None, module_objects=None):
    """The object registered as `name`: looked up in a CustomObjectScope, then the global
    registry, then `custom_objects`, then `module_objects`; None if absent."""
    scoped = _scoped()
    if name in scoped:
        return scoped[name]
    if name in _GLOBAL_CUSTOM_OBJECTS:
        return _GLOBAL_CUSTOM_OBJECTS[name]
    if custom_objects and name in custom_objects:
        return custom_objects[name]
    if module_objects and name in module_objects:
        return module_objects[name]
    return None


def is_registered(obj):
    try:
        return obj in _GLOBAL_CUSTOM_NAMES
    except TypeError:
        return False
