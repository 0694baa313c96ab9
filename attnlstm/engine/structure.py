"""Nested structures of tensors (lists, tuples, dicts), as Keras' ``tree``."""

__all__ = ["flatten", "map_structure"]


def flatten(structure):
    """Leaves of nested lists/tuples/dicts, in order."""
    if isinstance(structure, (list, tuple)):
        out = []
        for s in structure:
            out.extend(flatten(s))
        return out
    if isinstance(structure, dict):
        out = []
        for k in structure:
            out.extend(flatten(structure[k]))
        return out
    return [structure]


def map_structure(fn, structure):
    """`fn` applied to every leaf, keeping the structure (lists, tuples, dicts)."""
    if isinstance(structure, list):
        return [map_structure(fn, s) for s in structure]
    if isinstance(structure, tuple):
        return tuple(map_structure(fn, s) for s in structure)
    if isinstance(structure, dict):
        return {k: map_structure(fn, v) for k, v in structure.items()}
    return fn(structure)
