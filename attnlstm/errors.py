"""ShapeError and the one helper that writes every shape message, so wording never drifts.

A message says who (layer class and name, or the ops function), which argument, the expected
shape with axis names and resolved sizes, the full shape received, and a ``Hint:`` when a known
mistake matches::

    LSTM 'encoder': `inputs` must have shape (batch, timesteps, 8), got (32, 8).
    Hint: an LSTM reads whole sequences; add a time axis, e.g. x[:, None, :].
"""

__all__ = ["ShapeError", "format_shape", "shape_error", "who"]


class ShapeError(ValueError):
    """A shape mistake, raised as early as possible (when the model is built).

    Attributes:
        layer: the layer (or ops function name) that raised it, or None.
        argument: the argument whose shape is wrong, e.g. ``"inputs"`` or ``"mask"``.
        expected: the expected shape as a tuple of axis names (str) and sizes (int), or a str.
        got: the shape received, a tuple (``None`` for unknown sizes).
        hint: the likely fix, or None.
    """

    def __init__(self, message, layer=None, argument=None, expected=None, got=None, hint=None,
                 fallback_hint=None):
        super().__init__(message)
        self.fallback_hint = fallback_hint
        self.layer = layer
        self.argument = argument
        self.expected = expected
        self.got = got
        self.hint = hint


def format_shape(shape):
    """``(None, 20, 5)`` for shapes, axis names unquoted: ``(batch, timesteps, 8)``."""
    if shape is None:
        return "None"
    if isinstance(shape, str):
        return shape
    items = [str(s) if s is not None else "None" for s in shape]
    if len(items) == 1:
        return f"({items[0]},)"
    return "(" + ", ".join(items) + ")"


def who(layer):
    """``LSTM 'encoder'`` for a layer, or the string itself (e.g. ``ops.lstm``)."""
    if layer is None:
        return "attnlstm"
    if isinstance(layer, str):
        return layer
    return f"{type(layer).__name__} '{layer.name}'"


def shape_error(layer, argument, expected, got, hint=None, message=None, fallback_hint=None):
    """Build (not raise) the ShapeError for `argument` of `layer`.

    Args:
        layer: the Layer, or a str naming an ops function.
        argument: name of the argument, shown in backticks.
        expected: tuple of axis names/sizes, or a str describing the expectation.
        got: the shape received (tuple), or a str.
        hint: the likely fix (one sentence), or None.
        message: replaces the "must have shape ..." sentence when the rule is not a single
            shape (e.g. "`inputs` must all have the same length ..."); still followed by
            the shapes and the hint.
    """
    if message is None:
        text = f"{who(layer)}: `{argument}` must have shape {format_shape(expected)}, got {format_shape(got)}."
    else:
        text = f"{who(layer)}: {message}"
    if hint:
        text += f"\nHint: {hint}"
    return ShapeError(text, layer=layer, argument=argument, expected=expected, got=got, hint=hint,
                      fallback_hint=fallback_hint)
