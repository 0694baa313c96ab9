"""Keras' ``get(identifier)`` rule, shared by :mod:`attnlstm.regularizers` and
:mod:`attnlstm.constraints`."""
import inspect


def resolve(identifier, by_name, deserialize, what):
    """None, a name in `by_name` (the class, built with its defaults), a config dict (through
    `deserialize`), a class or a callable -> the object, or None.

    Raises:
        ValueError: an unknown name or an object that is not callable, naming `what`.
    """
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        obj = deserialize(identifier)
    elif isinstance(identifier, str):
        obj = by_name.get(identifier)
    else:
        obj = identifier
    if callable(obj):
        return obj() if inspect.isclass(obj) else obj
    raise ValueError(f"Could not interpret {what} identifier: {identifier!r}. Known names: "
                     f"{sorted(by_name)}.")
