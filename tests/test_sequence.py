"""pad_sequences (Keras semantics) and lengths_to_mask."""
import numpy as np
import pytest

from attnlstm.errors import ShapeError
from attnlstm.sequence import lengths_to_mask, pad_sequences

SEQ = [[1], [2, 3], [4, 5, 6]]


# --- hand-written cases (the examples of Keras' pad_sequences docstring and more) -----------

def test_default_pre_padding_int32_as_keras():
    got = pad_sequences(SEQ)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, [[0, 0, 1], [0, 2, 3], [4, 5, 6]])


@pytest.mark.parametrize("kwargs,expected", [
    (dict(), [[0, 0, 1], [0, 2, 3], [4, 5, 6]]),
    (dict(value=-1), [[-1, -1, 1], [-1, 2, 3], [4, 5, 6]]),
    (dict(padding="post"), [[1, 0, 0], [2, 3, 0], [4, 5, 6]]),
    (dict(maxlen=2), [[0, 1], [2, 3], [5, 6]]),
    (dict(maxlen=2, truncating="post"), [[0, 1], [2, 3], [4, 5]]),
    (dict(maxlen=2, padding="post", truncating="post"), [[1, 0], [2, 3], [4, 5]]),
    (dict(maxlen=4, padding="post", value=9), [[1, 9, 9, 9], [2, 3, 9, 9], [4, 5, 6, 9]]),
    (dict(maxlen=1), [[1], [3], [6]]),
])
def test_int_cases(kwargs, expected):
    got = pad_sequences(SEQ, dtype="int32", **kwargs)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, expected)


def test_empty_sequences_become_padding():
    got = pad_sequences([[], [1, 2], []], dtype="int64", value=7)
    np.testing.assert_array_equal(got, [[7, 7], [1, 2], [7, 7]])
    assert pad_sequences([[], []]).shape == (2, 0)


def test_dtype_conversion_truncates_like_numpy():
    np.testing.assert_array_equal(pad_sequences([[1.7, -2.2]], dtype="int32"), [[1, -2]])


def test_vector_sequences_pre_and_post():
    a = np.arange(6, dtype=np.float64).reshape(3, 2)      # T=3, F=2
    b = np.arange(10, 14, dtype=np.float64).reshape(2, 2)  # T=2
    pre = pad_sequences([a, b], value=-1.0, dtype="float32")
    assert pre.shape == (2, 3, 2) and pre.dtype == np.float32
    np.testing.assert_array_equal(pre[0], a)
    np.testing.assert_array_equal(pre[1], [[-1, -1], [10, 11], [12, 13]])
    post = pad_sequences([a, b], padding="post", maxlen=4, dtype="float32")
    np.testing.assert_array_equal(post[1], [[10, 11], [12, 13], [0, 0], [0, 0]])
    np.testing.assert_array_equal(post[0, 3], [0, 0])


def test_vector_sequences_truncating():
    a = np.arange(10, dtype=np.float32).reshape(5, 2)
    np.testing.assert_array_equal(pad_sequences([a], maxlen=2, dtype="float32")[0], a[-2:])
    np.testing.assert_array_equal(
        pad_sequences([a], maxlen=2, truncating="post", dtype="float32")[0], a[:2])


def test_higher_rank_steps_and_nested_lists():
    seqs = [[[[1, 2], [3, 4]]], []]  # sequence 0: T=1, one step of shape (2, 2); sequence 1 empty
    got = pad_sequences(seqs, maxlen=2, padding="post", dtype="int32")
    assert got.shape == (2, 2, 2, 2)
    np.testing.assert_array_equal(got[0, 0], [[1, 2], [3, 4]])
    assert (got[0, 1] == 0).all() and (got[1] == 0).all()


def test_maxlen_zero_and_no_sequences():
    # Where Keras itself fails (s[-0:] keeps everything; np.max of nothing), we return the
    # natural empty result.
    assert pad_sequences(SEQ, maxlen=0).shape == (3, 0)
    assert pad_sequences([np.ones((2, 3))], maxlen=0).shape == (1, 0, 3)
    assert pad_sequences([]).shape == (0, 0)
    assert pad_sequences([], maxlen=3).shape == (0, 3)


def test_string_values_with_object_dtype():
    got = pad_sequences([["a"], ["b", "c"]], dtype=object, value="<pad>")
    assert got.tolist() == [["<pad>", "a"], ["b", "c"]]


# --- errors ---------------------------------------------------------------------------------

def test_different_feature_sizes_name_index_and_shapes():
    seqs = [np.zeros((0, 7)), np.zeros((20, 12)), np.zeros((8, 12)), np.zeros((10, 5))]
    msg = (r"pad_sequences: every sequence must have steps of shape \(12,\) like `sequences\[1\]` "
           r"\(shape \(20, 12\)\), but `sequences\[3\]` has shape \(10, 5\)\.")
    with pytest.raises(ShapeError, match=msg) as info:
        pad_sequences(seqs)
    assert info.value.argument == "sequences[3]" and info.value.got == (10, 5)


def test_scalar_and_vector_steps_mixed():
    with pytest.raises(ShapeError, match=r"`sequences\[1\]` has shape \(2, 3\)"):
        pad_sequences([[1, 2], np.zeros((2, 3))])


def test_ragged_steps():
    with pytest.raises(ShapeError, match=r"the steps of `sequences\[0\]` do not all have the same shape"):
        pad_sequences([[[1, 2], [3]]])


@pytest.mark.parametrize("kwargs,msg", [
    (dict(padding="middle"), r'`padding` must be "pre" or "post". Received: padding=\'middle\''),
    (dict(truncating=None), r'`truncating` must be "pre" or "post". Received: truncating=None'),
    (dict(maxlen=-1), r"`maxlen` must be a non-negative int or None. Received: maxlen=-1"),
    (dict(maxlen=2.0), r"`maxlen` must be a non-negative int or None. Received: maxlen=2.0"),
    (dict(value="x"), r"`dtype` int32 cannot hold the string `value` 'x'"),
])
def test_argument_errors(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        pad_sequences(SEQ, **kwargs)


def test_non_sequence_inputs():
    with pytest.raises(ValueError, match=r"`sequences\[1\]` has no length. Received: sequences\[1\]=5"):
        pad_sequences([[1], 5])
    with pytest.raises(ValueError, match=r"`sequences` must be a list of sequences \(with a length\)"):
        pad_sequences(x for x in SEQ)


# --- against Keras itself -------------------------------------------------------------------

def _keras_cases():
    rng = np.random.default_rng(0)
    vec = [rng.standard_normal((t, 3)) for t in (4, 1, 0, 6, 2)]
    ints = [list(rng.integers(1, 50, size=t)) for t in (3, 0, 7, 1, 5)]
    for seqs in (SEQ, ints, vec):
        for maxlen in (None, 1, 3, 5, 9):
            for padding in ("pre", "post"):
                for truncating in ("pre", "post"):
                    for dtype, value in (("float32", 0.0), ("int32", -1), ("float64", 2.5)):
                        yield seqs, dict(maxlen=maxlen, padding=padding, truncating=truncating,
                                         dtype=dtype, value=value)


def test_matches_keras_pad_sequences():
    # keras (3.15, a test requirement in pyproject.toml) is imported here only, so the rest of
    # the suite does not pay for importing its backend.
    from keras.utils import pad_sequences as keras_pad

    n = 0
    for seqs, kw in _keras_cases():
        ours, theirs = pad_sequences(seqs, **kw), keras_pad(seqs, **kw)
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, kw
        np.testing.assert_array_equal(ours, theirs, err_msg=str(kw))
        n += 1
    assert n == 3 * 5 * 2 * 2 * 3


# --- lengths_to_mask ------------------------------------------------------------------------

def test_lengths_to_mask_post_and_pre():
    m = lengths_to_mask([3, 0, 5], 5)
    assert m.dtype == np.bool_ and m.shape == (3, 5)
    np.testing.assert_array_equal(m.astype(int), [[1, 1, 1, 0, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]])
    pre = lengths_to_mask(np.array([3, 0, 5], dtype=np.int32), 5, padding="pre")
    np.testing.assert_array_equal(pre.astype(int), [[0, 0, 1, 1, 1], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]])
    assert lengths_to_mask([2, 4]).shape == (2, 4)  # maxlen defaults to the longest
    assert lengths_to_mask([], 3).shape == (0, 3)


def test_mask_matches_padding_layout():
    rng = np.random.default_rng(1)
    seqs = [rng.standard_normal((t, 2)) + 10 for t in (1, 4, 3)]  # no zeros in the data
    lengths = [len(s) for s in seqs]
    for padding in ("pre", "post"):
        x = pad_sequences(seqs, padding=padding, dtype="float32")
        mask = lengths_to_mask(lengths, x.shape[1], padding=padding)
        np.testing.assert_array_equal(mask, (x != 0).all(axis=-1))


@pytest.mark.parametrize("lengths,maxlen,exc,msg", [
    ([[1, 2]], 3, ShapeError, r"lengths_to_mask: `lengths` must have shape \(N,\), got \(1, 2\)"),
    ([1.5, 2], 3, ValueError, r"`lengths` must be integers. Received: lengths of dtype float64"),
    ([1, -2], 3, ValueError, r"`lengths` must be >= 0. Received: lengths\[1\]=-2"),
    ([1, 4], 3, ValueError, r"`lengths\[1\]`=4 is longer than maxlen=3"),
    ([1], -1, ValueError, r"`maxlen` must be a non-negative int or None. Received: maxlen=-1"),
])
def test_lengths_to_mask_errors(lengths, maxlen, exc, msg):
    with pytest.raises(exc, match=msg):
        lengths_to_mask(lengths, maxlen)


def test_integer_default_warns_when_it_truncates_real_values():
    with pytest.warns(UserWarning, match=r"non-integer values but dtype=int32 .*dtype=\"float32\""):
        out = pad_sequences([np.array([0.5, 1.5])])
    np.testing.assert_array_equal(out, [[0, 1]])
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pad_sequences([np.array([1.0, 2.0])])          # whole numbers: nothing lost, no warning
        pad_sequences([np.array([0.5])], dtype="float32")
