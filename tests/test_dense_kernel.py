"""The Dense layer's products on attnlstm's OpenBLAS (csrc/dense.c, _core.matmul*), and the
OpenBLAS thread timeout attnlstm loads it with (attnlstm/_blas.py)."""
import os
import subprocess
import sys

import numpy as np
import pytest

from attnlstm import _core, layers


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("M,N,K", [(5, 4, 3), (1, 1, 1), (0, 4, 3), (3, 0, 2), (3, 4, 0),
                                   (70, 130, 257)])
def test_matmul_forms_match_numpy(dt, M, N, K):
    rng = np.random.default_rng(M + N + K)
    a = rng.standard_normal((M, K)).astype(dt)
    b = rng.standard_normal((K, N)).astype(dt)
    want = a.astype(np.float64) @ b.astype(np.float64)
    tol = 1e-5 if dt == np.float32 else 1e-12
    for got in (_core.matmul(a, b), _core.matmul_tn(np.ascontiguousarray(a.T), b),
                _core.matmul_nt(a, np.ascontiguousarray(b.T))):
        assert got.dtype == dt and got.shape == (M, N)
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * max(K, 1))
    # strided input is copied, not misread
    np.testing.assert_allclose(_core.matmul(np.asfortranarray(a), b), want, rtol=tol,
                               atol=tol * max(K, 1))


def test_matmul_errors():
    a = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"matmul: `b` must have shape \(K, N\) = \(3, \?\)"):
        _core.matmul(a, np.ones((4, 3), np.float32))
    with pytest.raises(TypeError, match="`b` must have dtype float32"):
        _core.matmul(a, np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"matmul_tn: `b` must have shape \(K, N\) = \(2, \?\)"):
        _core.matmul_tn(a, np.ones((3, 3), np.float32))


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_dense_forward_backward_match_numpy(dt):
    """Dense (3-D input, as under TimeDistributed or on a sequence) on the OpenBLAS products
    gives NumPy's results; mixed dtypes fall back to NumPy's matmul."""
    rng = np.random.default_rng(0)
    layer = layers.Dense(6, dtype=dt)
    x = rng.standard_normal((4, 5, 3)).astype(dt)
    layer.build(x.shape)
    y, ctx = layer.forward(x)
    W, b = layer.kernel.value, layer.bias.value
    tol = 1e-5 if dt == np.float32 else 1e-12
    np.testing.assert_allclose(y, x @ W + b, rtol=tol, atol=tol)
    dy = rng.standard_normal(y.shape).astype(dt)
    g = layer.backward(ctx, dy)
    np.testing.assert_allclose(g.inputs, dy @ W.T, rtol=tol, atol=tol)
    np.testing.assert_allclose(g.weights[layer.kernel], x.reshape(-1, 3).T @ dy.reshape(-1, 6),
                               rtol=tol, atol=tol)


def _env_after_import(env):
    code = "import os, attnlstm; print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env=env).stdout.strip()


def test_openblas_thread_timeout_is_not_left_in_the_environment():
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    assert _env_after_import(env) == "None"
    assert _env_after_import(dict(env, OPENBLAS_THREAD_TIMEOUT="22")) == "22"
