"""threadpoolctl limits attnlstm: the kernels' thread budget is the count of the OpenBLAS that
attnlstm links (scipy-openblas32), which threadpoolctl finds and sets like any BLAS, and the
kernels read it at every call (the worker pool, csrc/al_pool.c, has no size of its own)."""
import os
import subprocess
import sys
import textwrap

import scipy_openblas32
import pytest

import attnlstm

threadpoolctl = pytest.importorskip("threadpoolctl")  # in the `test` extra: runs in CI

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _ours(info):
    lib = os.path.realpath(scipy_openblas32.get_lib_dir())
    return [d for d in info if os.path.realpath(d["filepath"]).startswith(lib)]


def test_threadpool_info_lists_attnlstm_budget():
    old = attnlstm.get_num_threads()
    try:
        attnlstm.set_num_threads(2)
        ours = _ours(threadpoolctl.threadpool_info())
        assert len(ours) == 1 and ours[0]["user_api"] == "blas"
        assert ours[0]["num_threads"] == 2
        with threadpoolctl.threadpool_limits(limits=1):
            assert attnlstm.get_num_threads() == 1
        assert attnlstm.get_num_threads() == 2
        with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
            assert attnlstm.get_num_threads() == 1
        assert attnlstm.get_num_threads() == 2
    finally:
        attnlstm.set_num_threads(old)


def test_threadpool_limits_keeps_the_kernels_on_one_thread():
    """In a fresh interpreter with a budget of 2: inside threadpool_limits(1) an LSTM large
    enough to split (about 6e8 flops of recurrent products) starts no worker thread; after
    the block the same call starts the pool's one worker; both give the same bits."""
    code = textwrap.dedent("""
        import os, numpy as np, threadpoolctl, attnlstm
        from attnlstm import ops
        attnlstm.set_num_threads(2)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((8, 150, 4)).astype(np.float32)
        W = rng.standard_normal((4, 1024)).astype(np.float32) * 0.1
        U = rng.standard_normal((256, 1024)).astype(np.float32) * 0.1
        tids = lambda: set(os.listdir("/proc/self/task"))
        before = tids()
        with threadpoolctl.threadpool_limits(limits=1):
            one = ops.lstm(x, W, U, return_sequences=True)
            inside = tids()
        two = ops.lstm(x, W, U, return_sequences=True)
        after = tids()
        assert np.array_equal(np.asarray(one), np.asarray(two))
        print(len(inside - before), len(after - before))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-2:] == ["0", "1"]
