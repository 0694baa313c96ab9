"""The LSTM kernels on several threads (csrc/al_team.h, al_lstm_split in csrc/lstm_pgemm.h).

A call splits either by batch rows (each thread runs the recurrence of its own samples) or, for
small batches, by hidden units (one barrier per step). Every element is computed by the same
operations in the same order whatever the split, so results must be *bitwise* equal to one
thread, forward and backward (the weight gradients included: they are packed products too,
each element one sum over the batch in order), with masks, initial states, go_backwards,
D = 0 and every upstream gradient. `threads=n` forces n threads wherever the shapes allow;
`threads=0` follows set_num_threads."""
import itertools

import numpy as np
import pytest

import attnlstm
from attnlstm import _core

# (B, T, D, H): unit split (H a multiple of 64 and of 32, B < 16), row split (B >= 16, or H
# not a multiple of the panel), and a shape that cannot split (B = 1, H = 100).
SHAPES = [(1, 5, 3, 128), (2, 7, 4, 128), (3, 6, 0, 192), (20, 5, 3, 32), (17, 4, 5, 64),
          (1, 3, 2, 100), (5, 4, 3, 256), (40, 3, 2, 128)]


def run(rng_seed, B, T, D, H, impl, masked, gob, init, threads):
    rng = np.random.default_rng(rng_seed)
    f = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    x, W, U, b = f(B, T, D), f(D, 4 * H) * 0.3, f(H, 4 * H) * 0.3, f(4 * H)
    h0, c0 = (f(B, H), f(B, H)) if init else (None, None)
    mask = rng.random((B, T)) > 0.3 if masked else None
    dy, dl = f(B, T, H), f(B, H)
    hs, cs, out, gates, act_c = _core.lstm_forward(
        x, W, U, b, h0, c0, mask, _core.ACT_TANH, _core.ACT_SIGMOID, gob, save_act_c=True,
        impl=impl, threads=threads)
    grads = _core.lstm_backward(hs, cs, gates, x, W, U, h0, c0, mask, act_c=act_c,
                                d_outputs=dy, d_last=dl, d_h=dl, d_c=dl, go_backwards=gob,
                                impl=impl, threads=threads)
    # gates and act_c of masked steps are unspecified: compare them only without a mask
    fwd = [hs, cs, out] if masked else [hs, cs, gates, act_c]
    return [a for a in fwd + list(grads) if a is not None]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "B%d-T%d-D%d-H%d" % s)
@pytest.mark.parametrize("impl", [1, 2, 3], ids=["generic", "avx2", "avx512"])
def test_threads_bitwise_equal_to_one_thread(shape, impl):
    for k, (masked, gob, init) in enumerate(itertools.product((False, True), repeat=3)):
        one = run(k, *shape, impl, masked, gob, init, threads=1)
        for threads in (2, 3):
            many = run(k, *shape, impl, masked, gob, init, threads=threads)
            assert len(one) == len(many)
            for a, b in zip(one, many):
                assert np.array_equal(a, b), (shape, impl, masked, gob, init, threads)


@pytest.mark.parametrize("impl", [2, 3], ids=["avx2", "avx512"])
@pytest.mark.parametrize("D,H", [(5, 80), (0, 48), (3, 16)])
def test_one_row_tiles_give_the_rows_bits(impl, D, H):
    """A call of one row takes four panels per tile on AVX-512 (lstm_cell_panels1); its
    results are the bits of the same row inside a larger batch, on both paths, with the input
    projection first (B = 1), the concatenated form (B = 8 split into one-row chunks over 8
    threads, H = 16), D = 0, masks and states."""
    for k, (masked, gob, init) in enumerate(itertools.product((False, True), repeat=3)):
        big = run(k, 8, 6, D, H, impl, masked, gob, init, threads=1)
        rows8 = run(k, 8, 6, D, H, impl, masked, gob, init, threads=8)
        for a, b in zip(big, rows8):
            assert np.array_equal(a, b), (D, H, impl, masked, gob, init)
        rng = np.random.default_rng(k)
        f = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
        x, W, U, b = f(8, 6, D), f(D, 4 * H) * 0.3, f(H, 4 * H) * 0.3, f(4 * H)
        h0, c0 = (f(8, H), f(8, H)) if init else (None, None)
        whole = _core.lstm_forward(x, W, U, b, h0, c0, impl=impl, threads=1)[0]
        for i in (0, 5):
            one = _core.lstm_forward(x[i:i + 1], W, U, b, None if h0 is None else h0[i:i + 1],
                                     None if c0 is None else c0[i:i + 1], impl=impl,
                                     threads=1)[0]
            assert np.array_equal(one[0], whole[i]), (D, H, impl, init, i)


def test_set_num_threads_drives_the_automatic_choice():
    """threads=0 takes set_num_threads' count; a call large enough to split (AL_SPLIT_FLOPS,
    5e6 flops of recurrent products, al_lstm_split) gives the same bits as one thread, forward and
    backward."""
    old = attnlstm.get_num_threads()
    try:
        attnlstm.set_num_threads(2)
        auto = run(0, 32, 40, 16, 512, 0, True, False, True, threads=0)
        attnlstm.set_num_threads(1)
        single = run(0, 32, 40, 16, 512, 0, True, False, True, threads=0)
    finally:
        attnlstm.set_num_threads(old)
    assert len(auto) == len(single)
    for a, b in zip(auto, single):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("B", [8, 12])
@pytest.mark.parametrize("impl", [0, 2], ids=["auto", "avx2"])
def test_avx2_mid_batches_with_a_large_u_split_by_units_with_the_same_bits(B, impl):
    """On the AVX2 path, 8-15 rows whose U and W outgrow the L2 split by units, not rows
    (csrc/lstm_impl.h): the automatic 2-thread call gives the bits of one thread, with h0 and
    without, masked and not, forward and backward. H = 384, D = 64: U and W take 2.6 MB."""
    if impl == 2 and _core.isa_info()["cpu_best"] == "generic":
        pytest.skip("no AVX2 on this CPU")
    old = attnlstm.get_num_threads()
    try:
        for masked, init in ((False, True), (True, False)):
            attnlstm.set_num_threads(2)
            two = run(3, B, 6, 64, 384, impl, masked, False, init, threads=0)
            attnlstm.set_num_threads(1)
            one = run(3, B, 6, 64, 384, impl, masked, False, init, threads=0)
            for a, b in zip(two, one):
                assert np.array_equal(a, b), (B, impl, masked, init)
    finally:
        attnlstm.set_num_threads(old)


@pytest.mark.parametrize("bad", [-1, 1025])
def test_threads_out_of_range_is_a_value_error(bad):
    x = np.zeros((1, 2, 3), np.float32)
    W, U = np.zeros((3, 8), np.float32), np.zeros((2, 8), np.float32)
    with pytest.raises(ValueError, match=r"lstm_forward: `threads` must be 0 \(automatic"):
        _core.lstm_forward(x, W, U, threads=bad)
    hs = np.zeros((1, 2, 2), np.float32)
    with pytest.raises(ValueError, match=r"lstm_backward: `threads` must be 0 \(automatic"):
        _core.lstm_backward(hs, hs, np.zeros((1, 2, 8), np.float32), x, W, U, threads=bad)


@pytest.mark.parametrize("shape", [(2, 4, 3, 128), (20, 3, 2, 64), (9, 3, 4, 128),
                                   (3, 4, 3, 20), (2, 3, 2, 5)],
                         ids=lambda s: "B%d-T%d-D%d-H%d" % s)
@pytest.mark.parametrize("impl", [1, 2, 3], ids=["generic", "avx2", "avx512"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_nonfinite_recurrent_kernel_without_h0_on_the_team(shape, impl, bad, dt):
    """Without h0 the first step adds 0 * U's column sums (Keras' zeros @ U: NaN in a column
    holding NaN or inf). The team packs U panel by panel, each thread its own panels, and all
    of them must see whether any column is not 0: the same bits (NaN included) on 1, 2 and 3
    threads, and NaN in the first step exactly where the NumPy twin has it. H = 20 and 5 put
    the bad value in a partial last panel (the pack flags those lanes one by one)."""
    import reference
    B, T, D, H = shape
    rng = np.random.default_rng(5)
    x = rng.standard_normal((B, T, D)).astype(dt)
    W = (rng.standard_normal((D, 4 * H)) * 0.3).astype(dt)
    U = (rng.standard_normal((H, 4 * H)) * 0.3).astype(dt)
    b = rng.standard_normal(4 * H).astype(dt)
    U[H // 2, 4 * H - 3] = bad        # a column of the o gate in the last panel
    outs = [_core.lstm_forward(x, W, U, b, None, None, None, _core.ACT_TANH, _core.ACT_SIGMOID,
                               False, impl=impl, threads=t)[0] for t in (1, 2, 3)]
    for o in outs[1:]:
        assert np.array_equal(outs[0], o, equal_nan=True)
    ref = reference.lstm(x.astype(np.float64), W.astype(np.float64), U.astype(np.float64), b)[0]
    np.testing.assert_array_equal(np.isnan(outs[0][:, 0]), np.isnan(ref[:, 0]))
    assert np.isnan(outs[0][:, 0, H - 3]).all() and not np.isnan(outs[0][:, 0, 0]).any()
