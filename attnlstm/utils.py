"""Utilities with Keras 3's names (``keras.utils``): data helpers, reproducibility, session state.

- :class:`PyDataset` (alias ``Sequence``): a dataset of batches written in Python, for ``fit``.
- :func:`timeseries_dataset_from_array`: sliding windows over a series, batched.
- :func:`to_categorical`, :func:`normalize`, :func:`pad_sequences`.
- :func:`set_random_seed`, :func:`clear_session`.
"""
import concurrent.futures
import warnings

import numpy as np

from .backend import clear_session, set_random_seed
from .engine.data_adapters import unpack_x_y_sample_weight
from .sequence import pad_sequences

__all__ = ["set_random_seed", "clear_session", "PyDataset", "Sequence",
           "timeseries_dataset_from_array", "to_categorical", "normalize", "pad_sequences",
           "unpack_x_y_sample_weight"]


class PyDataset:
    """Base class of a dataset of batches written in Python (``keras.utils.PyDataset``).

    Subclasses implement ``__len__`` (the number of batches) and ``__getitem__(i)`` (batch ``i``:
    ``x``, ``(x, y)`` or ``(x, y, sample_weight)``), and may implement ``on_epoch_begin`` and
    ``on_epoch_end``. Pass the instance to ``fit``, ``evaluate`` or ``predict``.

    Args:
        workers: batches loaded concurrently by a pool of this many threads (1: in the caller's
            thread). attnlstm's kernels release the GIL, so loading overlaps training.
        use_multiprocessing: Keras loads in processes when True; attnlstm loads in threads and
            warns once (the batches and their order are the same).
        max_queue_size: at most this many batches are loaded ahead.

    Example:
        >>> import numpy as np
        >>> class Batches(PyDataset):
        ...     def __init__(self, x, y, batch_size, **kwargs):
        ...         super().__init__(**kwargs)
        ...         self.x, self.y, self.batch_size = x, y, batch_size
        ...     def __len__(self):
        ...         return -(-len(self.x) // self.batch_size)
        ...     def __getitem__(self, i):
        ...         s = slice(i * self.batch_size, (i + 1) * self.batch_size)
        ...         return self.x[s], self.y[s]
        >>> ds = Batches(np.zeros((10, 4, 3)), np.zeros(10), batch_size=4)
        >>> len(ds), ds[2][0].shape
        (3, (2, 4, 3))
    """

    def __init__(self, workers=1, use_multiprocessing=False, max_queue_size=10):
        workers, max_queue_size = int(workers), int(max_queue_size)
        if workers < 1:
            raise ValueError(f"`workers` must be a positive integer. Received: workers={workers}")
        if max_queue_size < 1:
            raise ValueError("`max_queue_size` must be a positive integer. Received: "
                             f"max_queue_size={max_queue_size}")
        self._workers = workers
        self._use_multiprocessing = bool(use_multiprocessing)
        self._max_queue_size = max_queue_size

    @property
    def workers(self):
        return getattr(self, "_workers", 1)

    @property
    def use_multiprocessing(self):
        return getattr(self, "_use_multiprocessing", False)

    @property
    def max_queue_size(self):
        return getattr(self, "_max_queue_size", 10)

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__.")

    def __len__(self):
        n = self.num_batches
        if n is None:
            raise TypeError(f"{type(self).__name__} has no length (num_batches is None).")
        return n

    @property
    def num_batches(self):
        if type(self).__len__ is not PyDataset.__len__:
            return len(self)
        raise NotImplementedError(f"{type(self).__name__} must implement __len__ or the "
                                  f"`num_batches` property.")

    def on_epoch_begin(self):
        """Called at the start of every epoch."""

    def on_epoch_end(self):
        """Called at the end of every epoch."""

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def _prefetched(self, steps):
        """Batches 0..steps-1 in order, loaded by `workers` threads, at most max_queue_size
        ahead."""
        if self.use_multiprocessing and not getattr(PyDataset, "_mp_warned", False):
            PyDataset._mp_warned = True
            warnings.warn("PyDataset(use_multiprocessing=True): attnlstm loads batches in "
                          f"{self.workers} threads instead of processes.", stacklevel=4)
        ahead = max(1, min(self.max_queue_size, steps))
        with concurrent.futures.ThreadPoolExecutor(self.workers) as pool:
            pending = [pool.submit(self.__getitem__, i) for i in range(min(ahead, steps))]
            nxt = len(pending)
            for _ in range(steps):
                batch = pending.pop(0).result()
                if nxt < steps:
                    pending.append(pool.submit(self.__getitem__, nxt))
                    nxt += 1
                yield batch


Sequence = PyDataset


class _TimeseriesDataset(PyDataset):
    """Batches of windows made by :func:`timeseries_dataset_from_array`."""

    def __init__(self, data, targets, starts, sequence_length, sampling_rate, batch_size):
        super().__init__()
        self.data, self.targets, self.starts = data, targets, starts
        self._offsets = np.arange(sequence_length) * sampling_rate
        self.batch_size = len(starts) if batch_size is None else batch_size
        self._single = batch_size is None

    def __len__(self):
        if self._single:
            return len(self.starts)
        return -(-len(self.starts) // self.batch_size) if len(self.starts) else 0

    def __getitem__(self, i):
        if not 0 <= i < len(self):
            raise IndexError(f"batch index {i} out of range for {len(self)} batches")
        if self._single:
            s = self.starts[i:i + 1]
        else:
            s = self.starts[i * self.batch_size:(i + 1) * self.batch_size]
        x = self.data[s[:, None] + self._offsets]
        if self._single:
            x = x[0]
        if self.targets is None:
            return x
        y = self.targets[s]
        return x, (y[0] if self._single else y)


def timeseries_dataset_from_array(data, targets, sequence_length, sequence_stride=1,
                                  sampling_rate=1, batch_size=128, shuffle=False, seed=None,
                                  start_index=None, end_index=None):
    """Sliding windows over a series, batched (``keras.utils.timeseries_dataset_from_array``).

    Window ``i`` starts at ``start_index + p_i`` with ``p_i = i * sequence_stride`` and takes
    ``sequence_length`` steps ``sampling_rate`` apart: ``data[start + p_i + k * sampling_rate]``.
    Its target is ``targets[start_index + p_i]``. There are ``num_seqs = end_index - start_index
    - (sequence_length - 1) * sampling_rate`` start positions before the stride (fewer if
    `targets` is shorter).

    Args:
        data: array `(N, ...)`, time first.
        targets: array `(N, ...)` or None (the dataset then yields inputs only).
        sequence_length: steps per window.
        sequence_stride: steps between window starts.
        sampling_rate: steps between the samples of a window.
        batch_size: windows per batch, or None for one window per item (unbatched).
        shuffle: shuffle the window order (once, with ``np.random.RandomState(seed)``, as the
            first step of Keras' shuffle; Keras' TF path also reshuffles within a buffer each
            epoch, which attnlstm does not).
        seed: int seed for the shuffle.
        start_index, end_index: the part of `data` windows are taken from.

    Returns:
        A :class:`PyDataset` of ``(x, y)`` batches: x `(batch, sequence_length, ...)`,
        y `(batch, ...)` (or x alone when `targets` is None). Pass it to ``fit``/``predict``;
        iterate it for the arrays.

    Raises:
        ValueError: the arguments Keras rejects, with Keras' messages.

    Example:
        >>> ds = timeseries_dataset_from_array(np.arange(10), None, sequence_length=3,
        ...                                    batch_size=4)
        >>> [b.tolist() for b in ds][0]
        [[0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 5]]
    """
    data = np.asarray(data)
    if start_index is not None:
        if start_index < 0:
            raise ValueError("`start_index` must be 0 or greater. Received: "
                             f"start_index={start_index}")
        if start_index >= len(data):
            raise ValueError("`start_index` must be lower than the length of the data. "
                             f"Received: start_index={start_index}, for data of length {len(data)}")
    if end_index is not None:
        if start_index is not None and end_index <= start_index:
            raise ValueError("`end_index` must be higher than `start_index`. Received: "
                             f"start_index={start_index}, and end_index={end_index} ")
        if end_index >= len(data):
            raise ValueError("`end_index` must be lower than the length of the data. Received: "
                             f"end_index={end_index}, for data of length {len(data)}")
        if end_index <= 0:
            raise ValueError(f"`end_index` must be higher than 0. Received: end_index={end_index}")
    if sampling_rate <= 0:
        raise ValueError("`sampling_rate` must be higher than 0. Received: "
                         f"sampling_rate={sampling_rate}")
    if sampling_rate >= len(data):
        raise ValueError("`sampling_rate` must be lower than the length of the data. Received: "
                         f"sampling_rate={sampling_rate}, for data of length {len(data)}")
    if sequence_stride <= 0:
        raise ValueError("`sequence_stride` must be higher than 0. Received: "
                         f"sequence_stride={sequence_stride}")
    if sequence_stride >= len(data):
        raise ValueError("`sequence_stride` must be lower than the length of the data. Received: "
                         f"sequence_stride={sequence_stride}, for data of length {len(data)}")
    if batch_size is not None and int(batch_size) < 1:
        raise ValueError(f"`batch_size` must be a positive integer. Received: batch_size={batch_size}")
    start = 0 if start_index is None else int(start_index)
    end = len(data) if end_index is None else int(end_index)
    num_seqs = end - start - (int(sequence_length) - 1) * int(sampling_rate)
    if targets is not None:
        targets = np.asarray(targets)
        num_seqs = min(num_seqs, len(targets))
    starts = np.arange(0, max(num_seqs, 0), int(sequence_stride), dtype=np.int64)
    if shuffle:
        rng = np.random.RandomState(np.random.randint(1e6) if seed is None else seed)
        rng.shuffle(starts)
    window = data[start:end]
    tgt = None if targets is None else targets[start:end]
    return _TimeseriesDataset(window, tgt, starts, int(sequence_length), int(sampling_rate),
                              None if batch_size is None else int(batch_size))


def to_categorical(x, num_classes=None):
    """One-hot rows for integer class ids (``keras.utils.to_categorical``).

    Args:
        x: integer array-like of any shape; a trailing axis of size 1 is dropped (as Keras).
        num_classes: number of classes; default ``max(x) + 1``.

    Returns:
        float array of shape ``x.shape + (num_classes,)``.

    Raises:
        ValueError: a class id outside ``[0, num_classes)``.

    Example:
        >>> to_categorical([0, 2], num_classes=3)
        array([[1., 0., 0.],
               [0., 0., 1.]])
    """
    x = np.array(x, dtype="int64")
    shape = x.shape
    if shape and shape[-1] == 1 and len(shape) > 1:
        shape = tuple(shape[:-1])
    x = x.reshape(-1)
    if not num_classes:
        num_classes = int(np.max(x)) + 1 if x.size else 0
    if x.size and (x.min() < 0 or x.max() >= num_classes):
        raise ValueError(f"to_categorical: class ids must be in [0, {num_classes}); got values "
                         f"from {int(x.min())} to {int(x.max())}.")
    out = np.zeros((x.shape[0], num_classes))
    out[np.arange(x.shape[0]), x] = 1
    return out.reshape(shape + (num_classes,))


def normalize(x, axis=-1, order=2):
    """`x` divided by its `order`-norm along `axis` (zero norms left as 1), as
    ``keras.utils.normalize`` (whose ``axis=0`` expands the norm on the last axis instead, and
    so fails for non-square arrays; here the norm is expanded on `axis`).

    Example:
        >>> normalize(np.array([[3.0, 4.0]]))
        array([[0.6, 0.8]])
    """
    x = np.asarray(x)
    norm = np.atleast_1d(np.linalg.norm(x, order, axis))
    norm[norm == 0] = 1
    return x / np.expand_dims(norm, axis)
