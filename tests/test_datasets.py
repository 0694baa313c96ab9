"""Bundled datasets: documented shapes, dtypes, counts, labels, anomaly location; window helpers."""
import hashlib
import os

import numpy as np
import pytest

from attnlstm import datasets
from attnlstm.errors import ShapeError

DATA_DIR = os.path.join(os.path.dirname(datasets.__file__), "data")


@pytest.fixture(scope="module")
def vowels():
    return datasets.load_japanese_vowels()


@pytest.fixture(scope="module")
def ecg():
    return datasets.load_ecg_anomaly()


# --- Japanese Vowels ------------------------------------------------------------------------

def test_japanese_vowels_structure(vowels):
    (x_train, y_train), (x_test, y_test) = vowels
    for xs, ys, n, (lo, hi) in ((x_train, y_train, 270, (7, 26)), (x_test, y_test, 370, (7, 29))):
        assert isinstance(xs, list) and len(xs) == n
        assert all(isinstance(x, np.ndarray) and x.dtype == np.float32 and x.ndim == 2
                   and x.shape[1] == 12 for x in xs)
        lengths = [x.shape[0] for x in xs]
        assert (min(lengths), max(lengths)) == (lo, hi)
        assert all(np.isfinite(x).all() for x in xs)
        assert ys.dtype == np.int64 and ys.shape == (n,)
        assert ys.min() == 0 and ys.max() == 8
    # 30 utterances per speaker in train; the UCI description's per-speaker test counts.
    assert np.bincount(y_train).tolist() == [30] * 9
    assert np.bincount(y_test).tolist() == [31, 35, 88, 44, 29, 24, 40, 50, 29]


def test_japanese_vowels_first_case_is_time_major(vowels):
    # First training case of the .ts file: channel 1 starts 1.860936,1.891651,... and
    # channel 2 starts -0.207383; 20 values per channel, speaker '1'.
    (x_train, y_train), _ = vowels
    x0 = x_train[0]
    assert x0.shape == (20, 12) and y_train[0] == 0
    np.testing.assert_array_equal(x0[:2, 0], np.float32([1.860936, 1.891651]))
    assert x0[0, 1] == np.float32(-0.207383)
    assert x0[19, 0] == np.float32(1.261441)


def test_japanese_vowels_returns_fresh_arrays(vowels):
    (x_train, _), _ = vowels
    (again, _), _ = datasets.load_japanese_vowels()
    again[0][:] = 99.0
    assert x_train[0][0, 0] != 99.0
    assert not np.shares_memory(again[0], again[1])


def test_japanese_vowels_one_nearest_neighbour_well_above_chance(vowels):
    # Per-channel means + Euclidean 1-NN; chance is 1/9, majority class 88/370 = 0.24.
    (x_train, y_train), (x_test, y_test) = vowels
    feats = lambda xs: np.stack([x.mean(axis=0) for x in xs]).astype(np.float64)  # noqa: E731
    a, b = feats(x_train), feats(x_test)
    dist = ((b[:, None, :] - a[None, :, :]) ** 2).sum(-1)
    accuracy = (y_train[dist.argmin(axis=1)] == y_test).mean()
    assert accuracy > 0.8


# --- ECG anomaly ----------------------------------------------------------------------------

def test_ecg_shapes_dtypes_and_segment(ecg):
    signal, labels = ecg
    assert signal.shape == (7500,) and signal.dtype == np.float32
    assert labels.shape == (7500,) and labels.dtype == np.int8
    assert np.isfinite(signal).all()
    assert set(np.unique(labels).tolist()) == {0, 1}
    idx = np.flatnonzero(labels)
    assert (idx[0], idx[-1]) == (6936, 7287) == datasets.ECG_ANOMALY_ROWS
    assert len(idx) == 7287 - 6936 + 1  # one contiguous segment
    first, last = datasets.ECG_TRAIN_ROWS
    assert labels[first:last + 1].sum() == 0
    # Documented value grid: millivolts in steps of 0.005 (MIT-BIH: 200 ADC units per mV).
    assert signal.min() == np.float32(-0.595) and signal.max() == np.float32(1.245)
    np.testing.assert_allclose(signal * 200, np.round(signal * 200), atol=1e-3)
    assert signal[0] == np.float32(-0.195)


def test_ecg_beat_period(ecg):
    # About 297 samples per beat, as documented: the autocorrelation peaks there.
    signal, _ = ecg
    x = signal[:6501].astype(np.float64) - signal[:6501].mean()
    ac = np.array([np.dot(x[:-k], x[k:]) for k in range(150, 500)])
    assert 290 <= 150 + int(ac.argmax()) <= 305


def test_bundled_files_small_and_checksums_documented():
    readme = open(os.path.join(DATA_DIR, "README.md"), encoding="utf-8").read()
    for name in ("japanese_vowels.npz", "ecg_mitdb.npz"):
        path = os.path.join(DATA_DIR, name)
        assert os.path.getsize(path) < 1_000_000
        digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
        assert digest in readme, f"{name}: checksum in data/README.md is stale"
    assert os.path.exists(os.path.join(DATA_DIR, "LICENSES.md"))


def test_convert_script_reproduces_parsing(tmp_path):
    # The converter's .ts parser, on a tiny hand-written file with unequal lengths.
    from attnlstm.datasets import _convert

    ts = tmp_path / "tiny.ts"
    ts.write_text("#comment\n@dimensions 2\n@missing false\n@data\n"
                  "1,2,3:4,5,6:2\n0.5,0.25:-1,-2:9\n")
    cases, labels = _convert.parse_ts(str(ts))
    assert labels == ["2", "9"]
    np.testing.assert_array_equal(cases[0], [[1, 4], [2, 5], [3, 6]])
    np.testing.assert_array_equal(cases[1], [[0.5, -1], [0.25, -2]])


# --- sliding windows ------------------------------------------------------------------------

@pytest.mark.parametrize("n,window,stride", [(10, 3, 1), (10, 3, 2), (10, 10, 1), (10, 4, 3), (7, 1, 7)])
def test_sliding_windows_matches_loop(n, window, stride):
    x = np.arange(n, dtype=np.float64) * 0.5
    got = datasets.sliding_windows(x, window, stride)
    expected = np.array([x[s:s + window] for s in range(0, n - window + 1, stride)], dtype=np.float32)
    assert got.dtype == np.float32 and got.shape == ((n - window) // stride + 1, window)
    np.testing.assert_array_equal(got, expected)


def test_sliding_windows_is_a_readonly_view_of_float32_input(ecg):
    signal, _ = ecg
    w = datasets.sliding_windows(signal, 64, stride=16)
    assert w.shape == (465, 64) and np.shares_memory(w, signal)
    assert not w.flags.writeable
    np.testing.assert_array_equal(w[3], signal[48:112])


def test_window_labels_overlap_rule(ecg):
    signal, labels = ecg
    window, stride = 100, 10
    wl = datasets.window_labels(labels, window, stride)
    n = datasets.sliding_windows(signal, window, stride).shape[0]
    assert wl.shape == (n,) and wl.dtype == np.int8
    lo, hi = datasets.ECG_ANOMALY_ROWS
    starts = np.arange(n) * stride
    overlaps = (starts <= hi) & (starts + window - 1 >= lo)
    np.testing.assert_array_equal(wl, overlaps.astype(np.int8))
    # Boundary windows: one ending exactly at the first labelled row counts, one ending just
    # before does not.
    one = datasets.window_labels(labels, window=1, stride=1)
    np.testing.assert_array_equal(one, labels)
    small = np.zeros(10, dtype=np.int8)
    small[6] = 1
    np.testing.assert_array_equal(datasets.window_labels(small, 3, 1), [0, 0, 0, 0, 1, 1, 1, 0])


def test_window_helpers_errors():
    with pytest.raises(ShapeError, match=r"sliding_windows: `signal` must have shape \(T,\), got \(5, 2\)"):
        datasets.sliding_windows(np.zeros((5, 2)), 2)
    with pytest.raises(ValueError, match=r"`window`=6 is longer than the signal \(5 samples\)"):
        datasets.sliding_windows(np.zeros(5), 6)
    with pytest.raises(ValueError, match=r"`window` must be a positive int. Received: window=0"):
        datasets.sliding_windows(np.zeros(5), 0)
    with pytest.raises(ValueError, match=r"`stride` must be a positive int. Received: stride=1.5"):
        datasets.sliding_windows(np.zeros(5), 2, stride=1.5)
    with pytest.raises(ShapeError, match=r"window_labels: `labels` must have shape \(T,\)"):
        datasets.window_labels(np.zeros((5, 1)), 2)
