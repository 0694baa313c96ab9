"""What ``fit``, ``evaluate`` and ``predict`` accept besides arrays (Keras 3's data adapters).

Keras users pass, besides NumPy arrays:

- a :class:`attnlstm.utils.PyDataset` (``keras.utils.PyDataset``): ``len(ds)`` batches,
  ``ds[i]`` is batch ``i``; ``on_epoch_begin``/``on_epoch_end`` are called around each epoch;
- a Python generator or iterator yielding batches (one pass per epoch unless `steps_per_epoch`
  is given; an exhausted iterator ends training with a warning, as Keras);
- a ``tf.data.Dataset`` (read through ``as_numpy_iterator``, so TensorFlow is touched only when
  the user already passes one).

A batch is ``x``, ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)`` (a list is read as a tuple,
as ``keras.utils.unpack_x_y_sample_weight``). ``x`` may be an array, a list of arrays, or a dict
keyed by input name.
"""
import warnings

import numpy as np

__all__ = ["is_batch_source", "BatchSource", "unpack_x_y_sample_weight"]


def unpack_x_y_sample_weight(data):
    """``(x, y, sample_weight)`` of one batch (``keras.utils.unpack_x_y_sample_weight``).

    Raises:
        ValueError: a tuple of more than 3 elements.
    """
    if isinstance(data, list):
        data = tuple(data)
    if not isinstance(data, tuple):
        return data, None, None
    if len(data) == 1:
        return data[0], None, None
    if len(data) == 2:
        return data[0], data[1], None
    if len(data) == 3:
        return data
    raise ValueError("Data is expected to be in format `x`, `(x,)`, `(x, y)`, or "
                     f"`(x, y, sample_weight)`, found a tuple of {len(data)} elements.")


def _is_tf_dataset(x):
    return type(x).__module__.startswith("tensorflow") and hasattr(x, "as_numpy_iterator")


def is_batch_source(x):
    """Whether `x` yields batches (PyDataset, generator, iterator, tf.data) rather than being
    the data itself (arrays, lists or dicts of arrays)."""
    from ..utils import PyDataset
    if x is None or isinstance(x, (np.ndarray, list, tuple, dict, str, bytes)):
        return False
    if isinstance(x, PyDataset) or _is_tf_dataset(x):
        return True
    if hasattr(x, "__next__"):
        return True
    # A Keras-style Sequence without subclassing: __getitem__ and __len__, not array-like.
    return (hasattr(x, "__getitem__") and hasattr(x, "__len__") and not hasattr(x, "shape")
            and not hasattr(x, "__array__"))


class BatchSource:
    """Iterates batches of one batch source, epoch by epoch.

    Args:
        data: a PyDataset, generator/iterator or tf.data.Dataset.
        steps: batches per epoch (Keras' `steps_per_epoch` / `steps`), or None for "all".
        what: the API name for messages ("fit", "evaluate", "predict").
    """

    def __init__(self, data, steps=None, what="fit"):
        self.data = data
        self.what = what
        self.kind = ("tf" if _is_tf_dataset(data) else
                     "iterator" if hasattr(data, "__next__") else "sequence")
        self.steps = None if steps is None else int(steps)
        self._iterator = data if self.kind == "iterator" else None
        self.exhausted = False
        if self.kind == "sequence":
            n = len(data)
            self.steps = n if self.steps is None else min(self.steps, n)

    @property
    def num_steps(self):
        """Batches per epoch when known (for the progress bar), else None."""
        return self.steps

    def epoch(self):
        """Yields the batches of one epoch."""
        if self.kind == "sequence":
            ds = self.data
            if hasattr(ds, "on_epoch_begin"):
                ds.on_epoch_begin()
            from ..utils import PyDataset
            if isinstance(ds, PyDataset) and ds.workers > 1:
                yield from ds._prefetched(self.steps)
            else:
                for i in range(self.steps):
                    yield ds[i]
            if hasattr(ds, "on_epoch_end"):
                ds.on_epoch_end()
            return
        if self.kind == "tf":
            it = self.data.as_numpy_iterator()
            for k, batch in enumerate(it):
                if self.steps is not None and k >= self.steps:
                    break
                yield batch
            return
        k = 0
        while self.steps is None or k < self.steps:
            try:
                batch = next(self._iterator)
            except StopIteration:
                if k == 0 or self.steps is not None:
                    self.exhausted = True
                    warnings.warn(
                        f"{self.what}: your input ran out of data; interrupting. Make sure that "
                        f"your dataset or generator can generate at least `steps_per_epoch * "
                        f"epochs` batches.", stacklevel=3)
                return
            yield batch
            k += 1
