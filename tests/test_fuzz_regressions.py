"""Regression tests for every crash or hang that fuzzing found (issue #22).

Each hang runs in a fresh interpreter with a timeout, so a regression fails this test instead of
stalling the suite. The committed fuzz corpus (fuzz/corpus/) is replayed by test_fuzz_corpus.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

import attnlstm
from attnlstm import _core

# The directory holding the attnlstm under test (the worktree, or make sanitize's ASan copy).
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(attnlstm.__file__)))


def run_isolated(code, timeout=20):
    """Runs `code` in a new interpreter importing this tree's attnlstm; returns its stdout.
    A hang becomes a test failure after `timeout` seconds."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    try:
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=timeout, env=env, cwd=ROOT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"hang: no result within {timeout} s for:\n{code}")
    assert res.returncode == 0, f"exit {res.returncode}\n{res.stdout}\n{res.stderr}"
    return res.stdout


HUGE_EMPTY = "np.broadcast_to(np.zeros((1, 1, 1), {dt!r}), {shape})"


# Hang 1 (fuzzing, issue #22): layers.Dense on a (2**40, 0, 1) view; np.matmul looped over the
# 2**40 empty batch elements.
def test_dense_huge_empty_batch_returns_at_once():
    out = run_isolated(
        "import numpy as np\n"
        "from attnlstm import layers\n"
        f"x = {HUGE_EMPTY.format(dt='float32', shape=(2**40, 0, 1))}\n"
        "d = layers.Dense(3)\n"
        "y = d(x)\n"
        "y, ctx = d.forward(x)\n"
        "g = d.backward(ctx, np.zeros(y.shape, 'float32'))\n"
        "print(y.shape, y.dtype, g.inputs.shape, g.weights[d.kernel].tolist())\n")
    assert out.split("\n")[0] == "(1099511627776, 0, 3) float32 (1099511627776, 0, 1) " \
                                 "[[0.0, 0.0, 0.0]]"


def test_dense_empty_inputs_match_numpy():
    from attnlstm import layers
    d = layers.Dense(4)
    x = np.zeros((2, 0, 3), "float32")
    y = d(x)
    assert y.shape == (2, 0, 4) and y.dtype == np.float32
    x = np.zeros((2, 5, 0), "float64")   # no input features: the output is the bias alone
    d = layers.Dense(4, bias_initializer="ones")
    y = d(x)
    np.testing.assert_array_equal(y, np.ones((2, 5, 4)))


# Hang 2 (fuzzing, issue #22): the reconstruction and Gaussian-NLL loss kernels looped over
# B x T with F = 0 on a (3, 2**40, 0) view, with the GIL released (Ctrl-C could not stop them).
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_vae_losses_huge_empty_axis_return_at_once(dtype):
    out = run_isolated(
        "import numpy as np\n"
        "from attnlstm import _core\n"
        f"x = {HUGE_EMPTY.format(dt=dtype, shape=(3, 2**40, 0))}\n"
        "g = np.ones(3, x.dtype)\n"
        "print(_core.recon_forward(x, x).tolist(), _core.recon_forward(x, x, None, 1).tolist())\n"
        "print(_core.recon_backward(g, x, x).shape, _core.recon_backward(g, x, x, None, 1).shape)\n"
        "print(_core.gaussian_nll_forward(x, x, x).tolist())\n"
        "print([a.shape for a in _core.gaussian_nll_backward(g, x, x, x)])\n"
        f"z = {HUGE_EMPTY.format(dt=dtype, shape=(2**40, 0, 1))}[:, :, 0]\n"
        "print(_core.kl_backward(np.ones(0, x.dtype), z[:0], z[:0])[0].shape)\n"
        "y = _core.recon_forward(x[:, :, :0], x[:, :, :0])\n")
    assert out.split("\n")[:4] == [
        "[0.0, 0.0, 0.0] [0.0, 0.0, 0.0]",
        "(3, 1099511627776, 0) (3, 1099511627776, 0)",
        "[0.0, 0.0, 0.0]",
        "[(3, 1099511627776, 0), (3, 1099511627776, 0)]"]


def test_vae_losses_public_ops_huge_empty_axis_return_at_once():
    """The same through attnlstm.ops (whatever checks the Python layer adds must not loop)."""
    out = run_isolated(
        "import numpy as np\n"
        "import attnlstm.ops as ops\n"
        f"x = {HUGE_EMPTY.format(dt='float32', shape=(3, 2**40, 0))}\n"
        "g = np.ones(3, 'float32')\n"
        "print(ops.reconstruction_loss(x, x).tolist(), ops.gaussian_nll(x, x, x).tolist())\n"
        "print(ops.reconstruction_loss_backward(x, x, g).shape)\n"
        "print(sorted((k, v.shape) for k, v in ops.gaussian_nll_backward(x, x, x, g).items()))\n")
    assert out.split("\n")[:3] == [
        "[0.0, 0.0, 0.0] [0.0, 0.0, 0.0]", "(3, 1099511627776, 0)",
        "[('x_hat', (3, 1099511627776, 0)), ('x_log_var', (3, 1099511627776, 0))]"]


def test_vae_losses_chunked_over_batch_match_one_pass():
    """Long loss calls run over chunks of whole sequences (interrupt checks between them):
    B=7 sequences of T*F = 1.1e6 elements take 3 chunks; the results must equal a one-row-at-a-
    time evaluation, masks included."""
    rng = np.random.default_rng(0)
    B, T, F = 7, 1000, 1100
    xh = rng.standard_normal((B, T, F), dtype=np.float32)
    x = rng.standard_normal((B, T, F), dtype=np.float32)
    mask = rng.random((B, T)) < 0.7
    g = rng.standard_normal(B).astype(np.float32)
    full = _core.recon_forward(xh, x, mask, 1)
    rows = np.concatenate([_core.recon_forward(xh[b:b + 1], x[b:b + 1], mask[b:b + 1], 1)
                           for b in range(B)])
    np.testing.assert_array_equal(full, rows)
    d = _core.recon_backward(g, xh, x, mask)
    np.testing.assert_array_equal(d, 2 * g[:, None, None] * (xh - x) * mask[:, :, None])
    lv = (0.1 * x).astype(np.float32)
    full = _core.gaussian_nll_forward(xh, lv, x, mask)
    rows = np.concatenate([_core.gaussian_nll_forward(xh[b:b + 1], lv[b:b + 1], x[b:b + 1],
                                                      mask[b:b + 1]) for b in range(B)])
    np.testing.assert_array_equal(full, rows)
    dxh, dlv = _core.gaussian_nll_backward(g, xh, lv, x, mask)
    assert np.all(dxh[6][~mask[6]] == 0) and np.all(dlv[6][~mask[6]] == 0)
    p = np.exp(-lv[6, mask[6]])
    diff = xh[6, mask[6]] - x[6, mask[6]]
    np.testing.assert_allclose(dxh[6][mask[6]], g[6] * diff * p, rtol=1e-5, atol=1e-6)


# Hang 3 (fuzz/fuzz_binding.py, this branch): ops.bahdanau_keys on a (2**31, 0, 0) view took
# 19 s (np.matmul looping over the empty batch), like Dense.
def test_bahdanau_keys_huge_empty_batch_returns_at_once():
    out = run_isolated(
        "import numpy as np\n"
        "from attnlstm import ops\n"
        f"v = {HUGE_EMPTY.format(dt='float32', shape=(2**31, 0, 0))}\n"
        "print(ops.bahdanau_keys(v, np.zeros((0, 3), 'float32')).shape)\n"
        f"v = {HUGE_EMPTY.format(dt='float32', shape=(2**40, 0, 2))}\n"
        "print(ops.bahdanau_keys(v, np.ones((2, 3), 'float32'), np.ones(3, 'float32')).shape)\n")
    assert out.split("\n")[:2] == ["(2147483648, 0, 3)", "(1099511627776, 0, 3)"]


# Hang 5 (make fuzz in CI, input fuzz/corpus/regress-bahdanau-keys-1d-W1): ops.bahdanau_keys on a
# (2**40, 0, 0) view with a 1-D (0,) W1 ran np.matmul over 2**40 empty rows for minutes: the op
# checked no shapes. Now W1 must be (Dv, units): a ShapeError at once.
def test_bahdanau_keys_1d_W1_on_huge_empty_batch_is_a_shape_error():
    out = run_isolated(
        "import numpy as np\n"
        "from attnlstm import ops, ShapeError\n"
        f"v = {HUGE_EMPTY.format(dt='float32', shape=(2**40, 0, 0))}\n"
        "try:\n"
        "    ops.bahdanau_keys(v, np.zeros((0,), 'U2'), np.zeros((0,), 'float32'))\n"
        "except ShapeError as e:\n"
        "    print(str(e).splitlines()[0])\n")
    assert out.split("\n")[0] == ("ops.bahdanau_keys: `W1` must have shape (0, units), "
                                   "got (0,).")


# Hang 4 (fuzz/fuzz_binding.py, this branch): multi-head attention on (2**40, 0, 0) query/value
# views (Tq = Tv = 0): the kernels looped over the 2**40 batch rows with nothing to do, with the
# GIL released.
def test_mha_huge_batch_no_steps_returns_at_once():
    out = run_isolated(
        "import numpy as np\n"
        "from attnlstm import ops\n"
        f"q = {HUGE_EMPTY.format(dt='float32', shape=(2**40, 0, 0))}\n"
        "W = dict(query_kernel=np.ones((0, 2, 3), 'f4'), query_bias=np.ones((2, 3), 'f4'),\n"
        "         key_kernel=np.ones((0, 2, 3), 'f4'), key_bias=np.ones((2, 3), 'f4'),\n"
        "         value_kernel=np.ones((0, 2, 3), 'f4'), value_bias=np.ones((2, 3), 'f4'),\n"
        "         output_kernel=np.ones((2, 3, 4), 'f4'), output_bias=np.ones(4, 'f4'))\n"
        "s = ops.multi_head_attention_forward(q, q, **W)\n"
        "print(s['output'].shape)\n"
        "g = ops.multi_head_attention_backward(s, np.zeros(s['output'].shape, 'f4'))\n"
        "print(sorted((k, np.shape(v), float(np.abs(v).sum())) for k, v in g.items()\n"
        "             if k in ('query_bias', 'output_kernel', 'output_bias')))\n")
    lines = out.split("\n")
    assert lines[0] == "(1099511627776, 0, 4)"
    assert lines[1] == ("[('output_bias', (4,), 0.0), ('output_kernel', (2, 3, 4), 0.0), "
                        "('query_bias', (2, 3), 0.0)]")


def test_fuzz_corpus_replays_cleanly():
    """Every committed input of the coverage-guided fuzz target (fuzz/corpus, the hangs above
    included) runs to a result or an accepted exception, each within the timeout."""
    corpus = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "fuzz", "corpus")
    target = os.path.join(os.path.dirname(corpus), "fuzz_binding.py")
    files = os.listdir(corpus)
    assert len(files) >= 100 and any(f.startswith("regress-") for f in files)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    try:
        res = subprocess.run([sys.executable, target, "--replay", corpus], capture_output=True,
                             text=True, timeout=120, env=env, cwd=ROOT)
    except subprocess.TimeoutExpired:
        pytest.fail("hang while replaying fuzz/corpus")
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"replayed {len(files)} inputs" in res.stdout
