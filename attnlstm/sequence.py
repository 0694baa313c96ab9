"""Padding and masking for variable-length sequences, before they go into an LSTM.

    >>> import numpy as np
    >>> from attnlstm.sequence import pad_sequences, lengths_to_mask
    >>> seqs = [np.ones((3, 2)), np.ones((5, 2))]
    >>> pad_sequences(seqs, padding="post", dtype="float32").shape
    (2, 5, 2)
    >>> lengths_to_mask([3, 5], 5).astype(int)
    array([[1, 1, 1, 0, 0],
           [1, 1, 1, 1, 1]])

``pad_sequences`` follows ``keras.utils.pad_sequences`` (Keras 3, ``keras/src/utils/sequence_utils.py``)
wherever Keras returns an array; where Keras fails with an internal NumPy error, ours raises a
``ValueError`` that names the argument (see its docstring for the list).
"""
import numbers
import warnings

import numpy as np

from .errors import format_shape, shape_error

__all__ = ["pad_sequences", "lengths_to_mask"]

_SIDES = ("pre", "post")


def _check_side(name, side):
    if not isinstance(side, str) or side not in _SIDES:
        raise ValueError(f'`{name}` must be "pre" or "post". Received: {name}={side!r}')


def _check_length(func, name, n, allow_none):
    if n is None and allow_none:
        return None
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, numbers.Integral) or n < 0:
        expected = "a non-negative int or None" if allow_none else "a non-negative int"
        raise ValueError(f"{func}: `{name}` must be {expected}. Received: {name}={n!r}")
    return int(n)


def pad_sequences(sequences, maxlen=None, dtype="int32", padding="pre", truncating="pre", value=0.0):
    """Pad (and truncate) a list of sequences into one array of shape (N, maxlen, *F).

    Same semantics as ``keras.utils.pad_sequences``: sequence ``i`` is cut to at most ``maxlen``
    steps (``truncating="pre"`` drops steps from the start, ``"post"`` from the end), converted
    to ``dtype``, and written at the end (``padding="pre"``) or the start (``"post"``) of row
    ``i``; every other entry is ``value``. The default ``dtype`` is Keras' ``"int32"`` (token
    ids); pass ``dtype="float32"`` for real-valued features. Non-integer values cast to an integer
    ``dtype`` are truncated, as in Keras, but attnlstm warns (``UserWarning``) when that changes a
    value.

    Args:
        sequences: a list (anything with ``len``) of N sequences. Each is a list or array of
            ``T_i`` steps; a step is a scalar (token id) or an array of shape ``F`` (e.g. a
            (T_i, 12) float array of 12 features per step). Empty sequences are allowed and
            become all-``value`` rows.
        maxlen: int >= 0, the number of timesteps T of the result; ``None`` (default) takes the
            longest sequence.
        dtype: NumPy dtype of the result. ``object`` (or a string dtype) allows string values.
        padding: ``"pre"`` (default, pad before) or ``"post"`` (pad after, i.e. right-padded,
            the layout :func:`lengths_to_mask` describes).
        truncating: ``"pre"`` (default) or ``"post"``: which end of a sequence longer than
            ``maxlen`` is dropped.
        value: the padding value.

    Returns:
        ``np.ndarray`` of shape ``(N, T)`` for scalar steps or ``(N, T, *F)`` for vector steps,
        with ``T = maxlen`` (or the longest length). ``F`` is taken from the first non-empty
        sequence, as Keras does.

    Raises:
        ValueError: ``padding``/``truncating`` not "pre"/"post"; ``maxlen`` negative or not an
            int; ``sequences`` without ``len`` or an element without ``len``; a string
            ``value`` with a non-string ``dtype``.
        attnlstm.ShapeError (a ValueError): a sequence whose steps have another shape than the
            first non-empty sequence's, e.g. a (10, 5) array among (T_i, 12) ones (the message
            names both indices and shapes); a sequence whose steps do not all have one shape.

    Differences from Keras, all in cases where Keras raises anyway: invalid ``padding`` or
    ``truncating`` is rejected up front (Keras only notices on the first non-empty sequence);
    ``maxlen=0`` returns an (N, 0, *F) array (Keras' ``s[-0:]`` keeps the whole sequence and
    fails to broadcast); an empty ``sequences`` with ``maxlen=None`` returns shape (0, 0)
    (Keras fails on ``np.max([])``).

    Example:
        >>> pad_sequences([[1], [2, 3], [4, 5, 6]], maxlen=2, dtype="int32")
        array([[0, 1],
               [2, 3],
               [5, 6]], dtype=int32)
    """
    func = "pad_sequences"
    _check_side("padding", padding)
    _check_side("truncating", truncating)
    maxlen = _check_length(func, "maxlen", maxlen, allow_none=True)
    if not hasattr(sequences, "__len__"):
        raise ValueError(f"{func}: `sequences` must be a list of sequences (with a length). "
                         f"Received: sequences of type {type(sequences).__name__}")
    dtype = np.dtype(dtype)
    if isinstance(value, str) and dtype != np.dtype(object) and not np.issubdtype(dtype, np.str_):
        raise ValueError(f"{func}: `dtype` {dtype} cannot hold the string `value` {value!r}. "
                         "Use dtype=object for variable-length strings.")

    lengths = []
    step_shape, ref = (), None  # feature shape F, from the first non-empty sequence (index ref)
    for i, s in enumerate(sequences):
        try:
            n = len(s)
        except TypeError:
            raise ValueError(f"{func}: `sequences` must be a list of sequences; `sequences[{i}]` "
                             f"has no length. Received: sequences[{i}]={s!r}") from None
        lengths.append(n)
        if ref is None and n:
            step_shape, ref = _as_array(func, i, s, None).shape[1:], i

    if maxlen is None:
        maxlen = max(lengths) if lengths else 0
    out = np.full((len(lengths), maxlen) + step_shape, value, dtype=dtype)
    if maxlen == 0:
        return out
    warned = False
    for i, s in enumerate(sequences):
        if not lengths[i]:
            continue
        kept = s[-maxlen:] if truncating == "pre" else s[:maxlen]
        raw = _as_array(func, i, kept, None)
        kept = _as_array(func, i, kept, dtype)
        if dtype.kind in "iu" and raw.dtype.kind == "f" and not warned and \
                np.any(raw != np.nan_to_num(np.trunc(raw))):
            warned = True
            warnings.warn(f"{func}: `sequences` hold non-integer values but dtype={dtype.name} "
                          "(Keras' default) truncates them; pass dtype=\"float32\" for "
                          "real-valued features.", stacklevel=2)
        if kept.shape[1:] != step_shape:
            got = (lengths[i],) + kept.shape[1:]
            ref_shape = (lengths[ref],) + step_shape
            raise shape_error(
                func, f"sequences[{i}]", ("T_i",) + step_shape, got,
                message=(f"every sequence must have steps of shape {format_shape(step_shape)} like "
                         f"`sequences[{ref}]` (shape {format_shape(ref_shape)}), but "
                         f"`sequences[{i}]` has shape {format_shape(got)}."),
            )
        if padding == "post":
            out[i, : len(kept)] = kept
        else:
            out[i, maxlen - len(kept):] = kept
    return out


def _as_array(func, i, s, dtype):
    try:
        return np.asarray(s, dtype=dtype)
    except ValueError as e:
        if "inhomogeneous" not in str(e):
            raise
        raise shape_error(
            func, f"sequences[{i}]", "(T_i, *F)", "ragged",
            message=f"the steps of `sequences[{i}]` do not all have the same shape.",
        ) from None


def lengths_to_mask(lengths, maxlen=None, padding="post"):
    """Boolean mask of shape (N, maxlen) for sequences of the given lengths.

    With ``padding="post"`` (default; right-padded sequences, as from
    ``pad_sequences(..., padding="post")``) ``mask[i, t]`` is True exactly for ``t < lengths[i]``;
    with ``padding="pre"`` the True entries are the last ``lengths[i]`` ones. True marks a real
    step, False a padded one, as in a Keras ``mask`` argument (and ``tf.sequence_mask``).

    Args:
        lengths: integer array-like of shape (N,), each in ``0..maxlen``.
        maxlen: int >= 0, the timesteps T of the mask; ``None`` takes ``max(lengths)``.
        padding: ``"post"`` (default) or ``"pre"``: where the padded steps are.

    Returns:
        ``np.ndarray`` of dtype bool and shape ``(N, maxlen)``.

    Raises:
        attnlstm.ShapeError (a ValueError): ``lengths`` not 1-D.
        ValueError: ``lengths`` not integers, negative, or longer than ``maxlen``; ``maxlen``
            negative or not an int; ``padding`` not "pre"/"post".

    Example:
        >>> lengths_to_mask([2, 0, 3], 3, padding="pre").astype(int)
        array([[0, 1, 1],
               [0, 0, 0],
               [1, 1, 1]])
    """
    func = "lengths_to_mask"
    _check_side("padding", padding)
    maxlen = _check_length(func, "maxlen", maxlen, allow_none=True)
    lengths = np.asarray(lengths)
    if lengths.ndim != 1:
        raise shape_error(func, "lengths", ("N",), lengths.shape,
                          hint="pass one length per sequence, e.g. [len(s) for s in sequences].")
    if lengths.size and not np.issubdtype(lengths.dtype, np.integer):
        raise ValueError(f"{func}: `lengths` must be integers. Received: lengths of dtype {lengths.dtype}")
    lengths = lengths.astype(np.int64)
    if lengths.size and lengths.min() < 0:
        i = int(np.argmin(lengths))
        raise ValueError(f"{func}: `lengths` must be >= 0. Received: lengths[{i}]={lengths[i]}")
    if maxlen is None:
        maxlen = int(lengths.max()) if lengths.size else 0
    if lengths.size and lengths.max() > maxlen:
        i = int(np.argmax(lengths))
        raise ValueError(f"{func}: `lengths[{i}]`={lengths[i]} is longer than maxlen={maxlen}. "
                         "If the sequences were truncated to maxlen, pass np.minimum(lengths, maxlen).")
    steps = np.arange(maxlen)
    if padding == "post":
        return steps[None, :] < lengths[:, None]
    return steps[None, :] >= (maxlen - lengths)[:, None]
