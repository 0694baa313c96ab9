"""Shared test setup: Keras 3 on the TensorFlow CPU backend as the parity oracle.

The environment variables must be set before TensorFlow/Keras are first imported. Keras is a
hard test dependency (the ``[test]`` extras install it); a missing Keras is an error, not a skip.
"""
import os

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # deterministic, unfused CPU math
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

# float32 parity tolerances of the Foundation issue.
RTOL32, ATOL32 = 1e-4, 1e-5


def assert_close(ours, theirs, rtol=RTOL32, atol=ATOL32, what=""):
    """ours vs theirs (Keras tensors converted), structure by structure."""
    if isinstance(theirs, (list, tuple)):
        assert isinstance(ours, (list, tuple)), f"{what}: expected a list, got {type(ours)}"
        assert len(ours) == len(theirs), f"{what}: {len(ours)} outputs vs {len(theirs)}"
        for k, (a, b) in enumerate(zip(ours, theirs)):
            assert_close(a, b, rtol, atol, f"{what}[{k}]")
        return
    if isinstance(theirs, dict):
        assert set(ours) == set(theirs)
        for k in theirs:
            assert_close(ours[k], theirs[k], rtol, atol, f"{what}[{k!r}]")
        return
    a = np.asarray(ours)
    b = np.asarray(theirs)
    assert a.shape == b.shape, f"{what}: shape {a.shape} vs Keras {b.shape}"
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=what)


def to_np(t):
    """A Keras/TF tensor (or a list of them) as NumPy."""
    if isinstance(t, (list, tuple)):
        return [to_np(v) for v in t]
    return np.asarray(t)


@pytest.fixture(scope="session")
def keras():
    import keras as _keras
    assert _keras.backend.backend() == "tensorflow"
    assert _keras.__version__.startswith("3.15"), _keras.__version__
    return _keras


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def random_lstm_weights(rng, D, H, use_bias=True, scale=0.5, dtype="float32"):
    """Keras-ordered LSTM weights [kernel (D,4H), recurrent_kernel (H,4H), bias (4H,)], small
    enough that relu/linear recurrences stay bounded over hundreds of steps."""
    w = [rng.uniform(-scale, scale, (D, 4 * H)) / np.sqrt(D),
         rng.uniform(-scale, scale, (H, 4 * H)) / np.sqrt(H)]
    if use_bias:
        w.append(rng.uniform(-0.2, 0.2, (4 * H,)))
    return [v.astype(dtype) for v in w]


def padded_mask(B, T, kind, rng):
    """A (B, T) bool mask: 'right' (right padding, lengths vary), 'gaps' (holes and left
    padding), 'full' (right padding plus a fully masked sample and a full one)."""
    m = np.ones((B, T), bool)
    if kind in ("right", "full"):
        lengths = rng.integers(1, T + 1, size=B)
        lengths[0] = T
        for b in range(B):
            m[b, lengths[b]:] = False
        if kind == "full":
            m[-1] = False
    elif kind == "gaps":
        m = rng.random((B, T)) > 0.3
        m[0, :7] = False        # leading masked steps
        m[1, 10:40] = False     # one long hole
        m[2 % B, ::3] = False   # regular holes
    else:
        raise ValueError(kind)
    return m
