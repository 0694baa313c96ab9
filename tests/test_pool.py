"""The kernels' persistent worker pool (csrc/al_pool.c, used through al_team_go in csrc/al_team.h).

The pool is started by the first call that asks for more than one thread, keeps its workers
between calls (no thread per call), is re-created in a fork child, and serves one caller at a
time while other Python threads' calls run on their own thread. None of this may change a
result: every kernel is bitwise independent of its thread count, so concurrent and forked
callers must get exactly the serial results."""
import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import attnlstm
from attnlstm import _core, layers, ops

# (B, T, D, H) with a forced team: a unit split (B < 16) and a row split
SHAPES = [(2, 6, 3, 128), (20, 5, 4, 64)]


def _args(seed, B, T, D, H):
    rng = np.random.default_rng(seed)
    f = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    return f(B, T, D), f(D, 4 * H) * 0.3, f(H, 4 * H) * 0.3, f(4 * H)


def _forward(args, threads):
    x, W, U, b = args
    hs, cs = _core.lstm_forward(x, W, U, b, None, None, None, _core.ACT_TANH,
                                _core.ACT_SIGMOID, False, threads=threads)[:2]
    return hs, cs


def _tids():
    return set(os.listdir("/proc/self/task"))


def _wait(pid, seconds=120):
    """The exit status of child `pid`, killing it if it has not exited within `seconds` (a hang)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    pytest.fail("fork child hung in a threaded kernel call")


def _fresh(code):
    """The last word `code` prints when run in a fresh interpreter from the repository root
    (which must exit cleanly)."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.returncode == 0, out.stderr
    return out.stdout.split()[-1]


def test_workers_persist_between_calls():
    """In a fresh interpreter: the first 3-thread call starts 2 workers that are still the same
    threads after further calls (a team per call would leave no thread behind)."""
    code = textwrap.dedent("""
        import os, numpy as np
        from attnlstm import _core
        rng = np.random.default_rng(0)
        x = rng.standard_normal((2, 5, 3)).astype(np.float32)
        W = rng.standard_normal((3, 512)).astype(np.float32)
        U = rng.standard_normal((128, 512)).astype(np.float32)
        run = lambda t: _core.lstm_forward(x, W, U, None, None, None, None, 1, 2, False, threads=t)
        tids = lambda: set(os.listdir("/proc/self/task"))
        before = tids()
        run(1)
        assert tids() == before, "a one-thread call started threads"
        run(3)
        after = tids()
        for _ in range(20):
            run(3)
            run(2)
        assert tids() == after, (before, after, tids())
        print(len(after - before))
    """)
    assert _fresh(code) == "2"


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "B%d-T%d-D%d-H%d" % s)
def test_fork_child_recreates_the_pool(shape):
    """A child forked after the parent's pool ran (its workers do not exist in the child) and a
    child forked while another thread of the parent is inside a pooled kernel both run
    threaded calls with the serial result, and do not hang."""
    args = _args(1, *shape)
    want = _forward(args, 1)
    for a, b in zip(_forward(args, 2), want):       # the parent's pool is up
        assert np.array_equal(a, b)

    stop = threading.Event()

    def busy():
        while not stop.is_set():
            _forward(args, 2)

    def child():
        ok = all(np.array_equal(a, b) for t in (2, 3, 1, 2) for a, b in zip(_forward(args, t), want))
        os._exit(0 if ok else 3)

    pid = os.fork()
    if pid == 0:
        child()
    assert _wait(pid) == 0
    th = threading.Thread(target=busy)
    th.start()
    try:
        for _ in range(5):
            time.sleep(0.005)
            pid = os.fork()
            if pid == 0:
                child()
            assert _wait(pid) == 0
    finally:
        stop.set()
        th.join()


def _mp_worker(seed):
    return [a.tobytes() for a in _forward(_args(seed, 2, 6, 3, 128), 2)]


def test_multiprocessing_fork_pool():
    import multiprocessing as mp
    _forward(_args(0, 2, 6, 3, 128), 2)              # the parent's pool is up before the fork
    with mp.get_context("fork").Pool(2) as p:
        got = p.map(_mp_worker, range(4), chunksize=1)
    for seed, g in enumerate(got):
        assert g == [a.tobytes() for a in _forward(_args(seed, 2, 6, 3, 128), 1)]


def test_concurrent_callers_get_the_serial_results():
    """8 Python threads call the LSTM forward kernel (forced teams of 2 and 3, and the budget's),
    ops.lstm and the GRU forward (a team of 2) at once: each result is bitwise the serial one
    (the pool serves one caller, the others run inline), and nothing deadlocks."""
    old = attnlstm.get_num_threads()
    cases = [(_args(s, *SHAPES[s % 2]), (2, 3, 0)[s % 3]) for s in range(8)]
    # ops.lstm at a size the automatic choice splits (from 5e6 flops of recurrent products)
    big = _args(9, 4, 250, 8, 256)
    rng = np.random.default_rng(5)
    gx = rng.standard_normal((9, 6, 5)).astype(np.float32)
    gW, gU = (rng.standard_normal(s).astype(np.float32) * 0.3 for s in ((5, 120), (40, 120)))
    gru = lambda t: ops.gru_forward(gx, gW, gU, None, threads=t)["outputs"]  # noqa: E731
    try:
        attnlstm.set_num_threads(2)
        want = [_forward(a, 1) for a, _ in cases]
        want_big = ops.lstm(big[0], big[1], big[2], big[3], return_sequences=True)
        want_gru = gru(1)
        errors = []
        barrier = threading.Barrier(8)

        def caller(i):
            try:
                a, t = cases[i]
                barrier.wait()
                for _ in range(30):
                    for g, w in zip(_forward(a, t), want[i]):
                        assert np.array_equal(g, w)
                if i < 2:
                    got = ops.lstm(big[0], big[1], big[2], big[3], return_sequences=True)
                    assert np.array_equal(np.asarray(got), np.asarray(want_big))
                if i >= 6:
                    for _ in range(20):
                        assert np.array_equal(gru(2), want_gru)
            except Exception as e:  # noqa: BLE001 -- reported below with the thread's index
                errors.append((i, repr(e)))

        threads = [threading.Thread(target=caller, args=(i,)) for i in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=300)
        assert not any(th.is_alive() for th in threads), "a caller hung"
        assert errors == []
    finally:
        attnlstm.set_num_threads(old)


def test_concurrent_predict_equals_serial():
    """8 Python threads calling predict on one model get the serial predictions bit for bit."""
    old = attnlstm.get_num_threads()
    inp = attnlstm.Input((12, 8))
    model = attnlstm.Model(inp, layers.Dense(3)(layers.LSTM(128)(inp)))
    rng = np.random.default_rng(3)
    xs = [rng.standard_normal((16, 12, 8)).astype(np.float32) for _ in range(8)]
    try:
        attnlstm.set_num_threads(2)
        want = [model.predict(x, batch_size=16) for x in xs]
        errors = []

        def caller(i):
            try:
                for _ in range(10):
                    assert np.array_equal(model.predict(xs[i], batch_size=16), want[i])
            except Exception as e:  # noqa: BLE001
                errors.append((i, repr(e)))

        threads = [threading.Thread(target=caller, args=(i,)) for i in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=300)
        assert not any(th.is_alive() for th in threads), "a caller hung"
        assert errors == []
    finally:
        attnlstm.set_num_threads(old)


@pytest.mark.parametrize("shape", SHAPES + [(1, 4, 0, 256)], ids=lambda s: "B%d-T%d-D%d-H%d" % s)
def test_result_independent_of_thread_count(shape):
    """Teams of 1 to 5 threads (more than the cores: the pool grows to the team asked for) give
    the same bits, and so does the budget's automatic choice at every set_num_threads."""
    args = _args(4, *shape)
    want = _forward(args, 1)
    for t in (2, 3, 4, 5, 2):
        for a, b in zip(_forward(args, t), want):
            assert np.array_equal(a, b), t
    old = attnlstm.get_num_threads()
    try:
        for n in (1, 2, 4):
            attnlstm.set_num_threads(n)
            for a, b in zip(_forward(args, 0), want):
                assert np.array_equal(a, b), n
    finally:
        attnlstm.set_num_threads(old)


def test_thread_budget_is_per_thread_and_bounds_the_kernels():
    """_core.set_thread_budget(n) holds the calling thread's kernels to n threads (0 = the
    process's count), returns the previous value, leaves other threads' budgets alone, and
    rejects negative counts. In a fresh interpreter: a call that splits over 2 threads starts
    no pool worker under a budget of 1, and does once the budget is lifted."""
    code = textwrap.dedent("""
        import os, threading, numpy as np, attnlstm
        from attnlstm import _core
        attnlstm.set_num_threads(2)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((64, 40, 16)).astype(np.float32)
        W = rng.standard_normal((16, 512)).astype(np.float32)
        U = rng.standard_normal((128, 512)).astype(np.float32)
        run = lambda: _core.lstm_forward(x, W, U, None, None, None, None, 1, 2, False)
        tids = lambda: set(os.listdir("/proc/self/task"))
        assert _core.set_thread_budget(1) == 0
        other = []
        th = threading.Thread(target=lambda: other.append(_core.set_thread_budget(0)))
        th.start(); th.join()
        assert other == [0], other          # the other thread's budget was never set
        before = tids()
        one = run()
        # (a difference, not equality: the joined helper thread may leave /proc meanwhile)
        assert not tids() - before, "a call under a budget of 1 started a worker"
        assert _core.set_thread_budget(0) == 1
        two = run()
        assert len(tids() - before) == 1, "the lifted budget did not split the call"
        for a, b in zip(one[:2], two[:2]):
            assert np.array_equal(a, b)
        try:
            _core.set_thread_budget(-1)
        except ValueError as e:
            assert "set_thread_budget" in str(e)
        else:
            raise AssertionError("negative budget accepted")
        print("ok")
    """)
    assert _fresh(code) == "ok"


def test_bidirectional_side_by_side_keeps_one_core_per_direction():
    """Bidirectional's directions side by side (2 threads, large enough) run each on its own
    thread without the pool: the only thread started is Bidirectional's helper, kept for the
    next call (before, the first direction took the pool's second thread too, three busy
    threads on two cores), and the result equals the directions run one after the other."""
    code = textwrap.dedent("""
        import os, threading, numpy as np, attnlstm
        from attnlstm import layers
        from attnlstm.layers import wrappers
        attnlstm.set_num_threads(2)
        x = np.random.default_rng(0).standard_normal((8, 50, 64)).astype(np.float32)
        bi = layers.Bidirectional(layers.LSTM(512, return_sequences=True))
        bi.build(x.shape)
        assert bi._side_by_side(x)
        tids = lambda: set(os.listdir("/proc/self/task"))
        before = tids()
        y = bi(x)
        after = tids()
        assert len(after - before) == 1, (before, after)
        names = [t.name for t in threading.enumerate()]
        assert names.count("attnlstm-bidirectional") == 1, names
        for _ in range(3):
            assert np.array_equal(y, bi(x))
        assert tids() == after, (after, tids())          # the helper is reused, nothing more
        wrappers._SIDE_BY_SIDE_FLOPS = float("inf")
        assert np.array_equal(y, bi(x))
        print("ok")
    """)
    assert _fresh(code) == "ok"


def test_bidirectional_helper_with_concurrent_callers_and_fork():
    """Several Python threads calling side-by-side Bidirectional layers at once each get their
    own results (the one that finds the helper busy runs its second direction on a thread of
    its own), an error in one does not leave the helper stuck, and a forked child, where the
    parent's helper thread does not exist, starts its own."""
    code = textwrap.dedent("""
        import os, threading, numpy as np, attnlstm
        from attnlstm import layers
        attnlstm.set_num_threads(2)
        rng = np.random.default_rng(0)
        xs = [rng.standard_normal((8, 50, 64)).astype(np.float32) for _ in range(4)]
        bi = layers.Bidirectional(layers.GRU(256, return_sequences=True))
        bi.build(xs[0].shape)
        assert bi._side_by_side(xs[0])
        want = [bi(x) for x in xs]
        got, errors = {}, []
        def caller(i):
            try:
                for _ in range(5):
                    y = bi(xs[i])
                    assert np.array_equal(y, want[i]), i
                got[i] = True
            except BaseException as e:
                errors.append(e)
        ths = [threading.Thread(target=caller, args=(i,)) for i in range(4)]
        [t.start() for t in ths]
        [t.join() for t in ths]
        assert not errors and len(got) == 4, errors
        call = bi.backward_layer.call
        bi.backward_layer.call = lambda *a, **k: 1 / 0
        try:
            bi(xs[0])
        except ZeroDivisionError:
            pass
        else:
            raise AssertionError("no error")
        bi.backward_layer.call = call
        assert np.array_equal(bi(xs[1]), want[1])
        pid = os.fork()
        if pid == 0:
            ok = np.array_equal(bi(xs[2]), want[2]) and np.array_equal(bi(xs[3]), want[3])
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert np.array_equal(bi(xs[0]), want[0])
        print("ok")
    """)
    assert _fresh(code) == "ok"


def test_side_by_side_rule():
    """Bidirectional runs its directions side by side (2 threads) from H = 256 and 3e7 flops a
    direction, except one sample, and a batch under 8 whose U outgrows one core's L2
    (_core.u_outgrows_l2, the kernels' own rule): each direction then splits by units over the
    cores' L2s."""
    assert _core.u_outgrows_l2(0) is False and _core.u_outgrows_l2(1 << 40) is True
    with pytest.raises(TypeError):
        _core.u_outgrows_l2("big")
    old = attnlstm.get_num_threads()
    attnlstm.set_num_threads(2)
    try:
        for B, H, want in ((1, 64, False), (64, 64, False), (1, 256, False), (2, 256, True),
                           (8, 512, True), (1, 512, False),
                           (2, 512, not _core.u_outgrows_l2(4 * 512 * 512 * 4))):
            x = np.zeros((B, 50, 64), np.float32)
            bi = layers.Bidirectional(layers.LSTM(H, return_sequences=True))
            bi.build(x.shape)
            assert bi._side_by_side(x) is want, (B, H)
        attnlstm.set_num_threads(1)
        assert not bi._side_by_side(x)
    finally:
        attnlstm.set_num_threads(old)
