"""Small real sequence datasets bundled with attnlstm, loaded offline (no download).

    >>> from attnlstm import datasets
    >>> (x_train, y_train), (x_test, y_test) = datasets.load_japanese_vowels()
    >>> len(x_train), x_train[0].shape, y_train[:3]
    (270, (20, 12), array([0, 0, 0]))
    >>> signal, labels = datasets.load_ecg_anomaly()
    >>> datasets.sliding_windows(signal, 64, stride=16).shape
    (465, 64)

The files in ``attnlstm/datasets/data/`` are compressed NumPy copies of text files shipped in
the aeon and sktime wheels (BSD-3-Clause); ``data/README.md`` gives each one's origin, citation,
licence and checksums, and ``attnlstm/datasets/_convert.py`` rebuilds them from the sources.
Each loader returns fresh arrays, so callers may modify them.
"""
import io
from importlib import resources

import numpy as np

from ..errors import shape_error

__all__ = [
    "load_japanese_vowels",
    "load_ecg_anomaly",
    "sliding_windows",
    "window_labels",
    "ECG_ANOMALY_ROWS",
    "ECG_TRAIN_ROWS",
]

#: First and last row (0-based, inclusive) of the labelled anomalous segment of the ECG.
ECG_ANOMALY_ROWS = (6936, 7287)
#: First and last row (inclusive) of the anomaly-free part used for training in the protocol.
ECG_TRAIN_ROWS = (0, 6500)


def _load_npz(name):
    """Read ``data/<name>`` through importlib.resources (works from a wheel or a zip)."""
    blob = resources.files(__name__).joinpath("data", name).read_bytes()
    with np.load(io.BytesIO(blob), allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def load_japanese_vowels():
    """Load the Japanese Vowels speaker-recognition dataset (9 classes, variable length).

    Nine male Japanese speakers each uttered the vowels /ae/; every utterance was cut into
    frames and a 12th-order linear-prediction (LPC) analysis turned each frame into 12 LPC
    cepstrum coefficients. One case is one utterance: a sequence of T_i frames (7 to 29) of 12
    coefficients. The task is to tell which speaker spoke.

    Returns:
        ``((x_train, y_train), (x_test, y_test))`` where

        - ``x_train``: list of 270 float32 arrays, ``x_train[i]`` of shape ``(T_i, 12)``,
          time-major (timesteps first, features last, as an LSTM reads them); ``T_i`` in 7..26.
        - ``y_train``: int64 array of shape ``(270,)``, speaker index 0..8 (speaker '1'..'9'),
          30 cases per speaker, in the source's order (grouped by speaker).
        - ``x_test``: list of 370 float32 arrays of shape ``(T_i, 12)``, ``T_i`` in 7..29.
        - ``y_test``: int64 array of shape ``(370,)``, 0..8; 24 to 88 cases per speaker.

        Units: LPC cepstrum coefficients are dimensionless (about -1.9..2.2 here); frames are
        25.6 ms long every 6.4 ms, from speech sampled at 10 kHz. Values are
        the source's six-decimal text rounded to float32. There are no missing values.
        To batch them use :func:`attnlstm.sequence.pad_sequences` (e.g. ``padding="post"``)
        and :func:`attnlstm.sequence.lengths_to_mask`.

    Origin:
        UCI Machine Learning Repository, "Japanese Vowels" (donated 2000, doi:10.24432/C5NS47),
        by M. Kudo, J. Toyama and M. Shimbo; paper: "Multidimensional Curve Classification
        Using Passing-Through Regions", Pattern Recognition Letters 20(11-13):1103-1111, 1999.
        Taken from the ``JapaneseVowels_{TRAIN,TEST}.ts`` files of the UEA multivariate
        time-series archive as shipped in the aeon wheel (identical files ship in sktime; both
        packages BSD-3-Clause). The UCI repository distributes its datasets under CC BY 4.0
        (attribution: cite the dataset and paper above). See ``attnlstm/datasets/data/README.md``.

    Baseline: 1-nearest-neighbour on per-channel means scores well above 0.8 test accuracy
    (the majority class is 88/370 = 0.24).
    """
    d = _load_npz("japanese_vowels.npz")
    out = []
    for split in ("train", "test"):
        x, lengths = d[f"x_{split}"], d[f"len_{split}"]
        cases = [c.copy() for c in np.split(x, np.cumsum(lengths)[:-1], axis=0)]
        out.append((cases, d[f"y_{split}"].astype(np.int64, copy=False)))
    return tuple(out)


def load_ecg_anomaly():
    """Load a real ECG trace with one labelled anomalous segment (7,500 samples).

    Returns:
        ``(signal, labels)``:

        - ``signal``: float32 array of shape ``(7500,)``, one ECG lead. Values are
          -0.595..1.245 in steps of 0.005, i.e. millivolts at the MIT-BIH Arrhythmia Database's
          resolution (200 ADC units per mV); the source states no unit or sampling rate
          (MIT-BIH records are sampled at 360 Hz). About 297 samples per heartbeat.
        - ``labels``: int8 array of shape ``(7500,)``, 1 inside the labelled anomalous segment,
          rows ``ECG_ANOMALY_ROWS = (6936, 7287)`` (0-based, inclusive: 352 samples), 0
          elsewhere.

    Evaluation protocol (as for an LSTM autoencoder/VAE):
        1. Cut training windows only from the anomaly-free rows ``ECG_TRAIN_ROWS = (0, 6500)``,
           i.e. ``sliding_windows(signal[:6501], window, stride)``; normalise with statistics
           from those rows only.
        2. Score every window of the whole signal, ``sliding_windows(signal, window, stride)``
           (e.g. by reconstruction error), and label them with
           ``window_labels(labels, window, stride)`` (a window is anomalous if it overlaps the
           segment).
        3. Report window-level (or point-level) ROC AUC, and whether the highest-scoring
           windows fall inside the segment.

    Origin:
        ``sktime/datasets/data/mitdb/mitdb.csv`` (columns ``data,label``) from the sktime
        wheel (sktime >= 0.34; BSD-3-Clause), used in sktime's anomaly-detection tutorial.
        sktime documents no further provenance; the name and the value grid point to an
        excerpt of the MIT-BIH Arrhythmia Database (G. B. Moody and R. G. Mark, "The impact of
        the MIT-BIH Arrhythmia Database", IEEE Eng. Med. Biol. 20(3):45-50, 2001; PhysioNet,
        ODC Attribution License 1.0). See ``attnlstm/datasets/data/README.md``.
    """
    d = _load_npz("ecg_mitdb.npz")
    return d["signal"].astype(np.float32, copy=False), d["labels"].astype(np.int8, copy=False)


def _check_window(func, n, window, stride):
    for name, v in (("window", window), ("stride", stride)):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{func}: `{name}` must be a positive int. Received: {name}={v!r}")
    if window > n:
        raise ValueError(f"{func}: `window`={window} is longer than the signal ({n} samples).")


def sliding_windows(signal, window, stride=1):
    """Cut a 1-D signal into overlapping windows: ``out[i] = signal[i*stride : i*stride+window]``.

    Args:
        signal: 1-D array-like of shape ``(T,)``.
        window: int >= 1, samples per window (at most T).
        stride: int >= 1, samples between the starts of consecutive windows.

    Returns:
        float32 array of shape ``(N, window)`` with ``N = (T - window) // stride + 1``; window
        ``i`` starts at sample ``i * stride`` (samples past the last full window are dropped).
        It is a read-only strided view (no copy) of ``signal`` when that is already a float32
        array, else of a float32 copy; call ``.copy()`` for a writable array. Add a feature axis
        with ``out[..., None]`` for an LSTM, which reads ``(N, window, 1)``.

    Raises:
        attnlstm.ShapeError (a ValueError): ``signal`` not 1-D.
        ValueError: ``window`` or ``stride`` not a positive int, or ``window`` > T.

    Example:
        >>> sliding_windows(np.arange(6), 3, stride=2)
        array([[0., 1., 2.],
               [2., 3., 4.]], dtype=float32)
    """
    x = np.asarray(signal, dtype=np.float32)
    if x.ndim != 1:
        raise shape_error("sliding_windows", "signal", ("T",), x.shape,
                          hint="pass one channel, e.g. signal[:, 0], or window each channel separately.")
    _check_window("sliding_windows", x.shape[0], window, stride)
    return np.lib.stride_tricks.sliding_window_view(x, int(window))[:: int(stride)]


def window_labels(labels, window, stride=1):
    """Label each window of :func:`sliding_windows`: 1 if it overlaps a labelled sample.

    Args:
        labels: 1-D array-like of shape ``(T,)`` of 0/1 point labels (e.g. from
            :func:`load_ecg_anomaly`).
        window, stride: as passed to :func:`sliding_windows`.

    Returns:
        int8 array of shape ``(N,)``, ``N = (T - window) // stride + 1``: entry ``i`` is 1 when
        any of ``labels[i*stride : i*stride+window]`` is nonzero (the window overlaps the
        anomalous segment), else 0. Aligned with ``sliding_windows(signal, window, stride)``.

    Raises:
        attnlstm.ShapeError (a ValueError): ``labels`` not 1-D.
        ValueError: ``window`` or ``stride`` not a positive int, or ``window`` > T.
    """
    y = np.asarray(labels)
    if y.ndim != 1:
        raise shape_error("window_labels", "labels", ("T",), y.shape)
    _check_window("window_labels", y.shape[0], window, stride)
    # A window overlaps a labelled sample iff the count of nonzero labels inside it is > 0;
    # a cumulative sum gives every window's count in O(T).
    csum = np.concatenate(([0], np.cumsum(y != 0, dtype=np.int64)))
    starts = np.arange(0, y.shape[0] - window + 1, stride)
    return (csum[starts + window] - csum[starts] > 0).astype(np.int8)
