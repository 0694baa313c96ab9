"""One naming convention for every kernel op family (issue #14 item 3): forward results
``outputs`` / ``attention_scores`` / ``h`` / ``c`` / ``last_output`` / ``z``, upstream gradients
``d_`` + the result's name, a typed read-only ``Saved`` whose backward rejects another op's, and
the old names working for one release with a DeprecationWarning."""
import pickle

import numpy as np
import pytest

from attnlstm import ops

RNG = np.random.default_rng(0)


def _r(*shape):
    return RNG.standard_normal(shape)


def _attention_cases():
    q, v, k = _r(2, 3, 4), _r(2, 5, 4), _r(2, 5, 4)
    W = _r(4, 2, 3)
    Wo = _r(2, 3, 4)
    mha = dict(query_kernel=W, query_bias=None, key_kernel=W, key_bias=None, value_kernel=W,
               value_bias=None, output_kernel=Wo, output_bias=None)
    return {
        "dot_attention": (lambda: ops.dot_attention_forward(q, v, k), ops.dot_attention_backward),
        "additive_attention": (lambda: ops.additive_attention_forward(q, v, k),
                               ops.additive_attention_backward),
        "bahdanau_attention": (lambda: ops.bahdanau_attention_forward(
            q, v, _r(4, 3), _r(4, 3), _r(3)), ops.bahdanau_attention_backward),
        "multi_head_attention": (lambda: ops.multi_head_attention_forward(q, v, k, **mha),
                                 ops.multi_head_attention_backward),
        "relative_attention": (lambda: ops.relative_attention_forward(
            q, v, k, num_heads=2, **mha, rel_k=_r(3, 3), max_relative_position=1),
            ops.relative_attention_backward),
    }


ATTENTION = _attention_cases()
OLD_GRADS = {"dot_attention": ("d_out", "d_weights"), "additive_attention": ("d_out", "d_weights"),
             "bahdanau_attention": ("d_out", "d_weights"),
             "multi_head_attention": ("d_out", "d_scores"),
             "relative_attention": ("d_out", "d_scores")}
OLD_KEYS = {"dot_attention": ("weights", "attention_scores"),
            "additive_attention": ("weights", "attention_scores"),
            "bahdanau_attention": ("weights", "attention_scores"),
            "multi_head_attention": ("output", "outputs"),
            "relative_attention": ("output", "outputs")}


@pytest.mark.parametrize("op", sorted(ATTENTION))
def test_attention_forward_results_and_gradient_names(op):
    forward, backward = ATTENTION[op]
    s = forward()
    assert isinstance(s, ops.Saved) and s.op == f"ops.{op}_forward"
    assert {"outputs", "attention_scores"} <= set(s)
    d_o = RNG.standard_normal(s["outputs"].shape)
    d_w = RNG.standard_normal(s["attention_scores"].shape)
    new = backward(s, d_outputs=d_o, d_attention_scores=d_w)
    old_o, old_w = OLD_GRADS[op]
    with pytest.warns(DeprecationWarning, match=rf"`{old_o}` is deprecated .* use `d_outputs`"):
        with pytest.warns(DeprecationWarning, match=rf"`{old_w}` is deprecated"):
            old = backward(s, **{old_o: d_o, old_w: d_w})
    assert set(new) == set(old)
    for k in new:
        if new[k] is not None:
            np.testing.assert_array_equal(new[k], old[k])
    # positional calls keep their meaning
    pos = backward(s, d_o, d_w)
    np.testing.assert_array_equal(pos["query"], new["query"])
    # None for d_outputs: a zero gradient (as the LSTM/GRU backward)
    only_w = backward(s, d_attention_scores=d_w)
    zero = backward(s, np.zeros_like(d_o), d_w)
    np.testing.assert_array_equal(only_w["query"], zero["query"])


@pytest.mark.parametrize("op", sorted(ATTENTION))
def test_attention_old_result_key_warns_and_reads_the_new_one(op):
    s = ATTENTION[op][0]()
    old, new = OLD_KEYS[op]
    with pytest.warns(DeprecationWarning, match=rf'saved\["{old}"\]` is deprecated .*`saved'
                                                rf'\["{new}"\]`') as rec:
        got = s[old]
    assert got is s[new]
    # the warning points at the line that used the old name (shown by Python's default filters)
    assert rec[0].filename == __file__
    d_o = np.zeros_like(s["outputs"])
    with pytest.warns(DeprecationWarning) as rec:
        ATTENTION[op][1](s, **{OLD_GRADS[op][0]: d_o})
    assert rec[0].filename == __file__


@pytest.mark.parametrize("op", sorted(ATTENTION))
def test_attention_backward_rejects_both_names_and_unknown_keywords(op):
    forward, backward = ATTENTION[op]
    s = forward()
    g = np.zeros_like(s["outputs"])
    old_o, _ = OLD_GRADS[op]
    with pytest.raises(TypeError, match=rf"pass `d_outputs` or its deprecated name `{old_o}`"):
        backward(s, d_outputs=g, **{old_o: g})
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'd_output'"):
        backward(s, d_output=g)


def _recurrent():
    x = _r(2, 4, 3)
    lstm = ops.lstm_forward(x, _r(3, 8), _r(2, 8), _r(8), [_r(2, 2), _r(2, 2)])
    gru = ops.gru_forward(x, _r(3, 6), _r(2, 6), _r(2, 6), _r(2, 2))
    smp = ops.sampling_forward(_r(2, 3), _r(2, 3), seed=0)
    att = ATTENTION["dot_attention"][0]()
    mha = ATTENTION["multi_head_attention"][0]()
    return {"lstm": (lstm, ops.lstm_backward), "gru": (gru, ops.gru_backward),
            "sampling": (smp, ops.sampling_backward),
            "dot_attention": (att, ops.dot_attention_backward),
            "multi_head_attention": (mha, ops.multi_head_attention_backward)}


def test_recurrent_results_share_names():
    c = _recurrent()
    lstm, gru = c["lstm"][0], c["gru"][0]
    for s in (lstm, gru):
        assert {"outputs", "last_output", "h"} <= set(s)
    assert "c" in lstm
    g = ops.lstm_backward(lstm, d_outputs=np.ones_like(lstm["outputs"]))
    assert [a.shape for a in g["initial_state"]] == [(2, 2), (2, 2)]
    np.testing.assert_array_equal(g["initial_state"][0], g["h0"])
    g = ops.gru_backward(gru, d_h=np.ones_like(gru["h"]))
    assert [a.shape for a in g["initial_state"]] == [(2, 2)]


def test_backward_rejects_a_saved_from_another_op():
    c = _recurrent()
    for producer, (saved, _) in c.items():
        for consumer, (_, backward) in c.items():
            if producer == consumer:
                continue
            if consumer == "multi_head_attention":
                ops_ = r"ops\.multi_head_attention_forward or ops\.relative_attention_forward"
            else:
                ops_ = rf"ops\.{consumer}_forward"

            with pytest.raises(TypeError, match=rf"`saved` comes from ops\.{producer}_forward; "
                                                rf"this backward takes what {ops_} returned"):
                backward(saved, None)
    with pytest.raises(TypeError, match=r"`saved` must be what ops\.sampling_forward returned, "
                                        r"got dict"):
        ops.sampling_backward(dict(c["sampling"][0]), np.ones((2, 3)))


def test_saved_is_read_only_with_a_shape_repr():
    s = _recurrent()["lstm"][0]
    r = repr(s)
    assert r.startswith("Saved(op='ops.lstm_forward', outputs=float64(2, 4, 2), ")
    assert "gates=float64(2, 4, 8)" in r and "go_backwards=False" in r
    assert f"{s['x'].flat[0]:.3f}"[:5] not in r and "array(" not in r   # shapes, no data
    assert len(r) < 600
    with pytest.raises(TypeError):
        s["outputs"] = None
    with pytest.raises(AttributeError, match="read-only"):
        s.outputs = None
    assert s.outputs is s["outputs"]
    with pytest.raises(KeyError, match=r"ops\.lstm_forward saved no 'weights'"):
        s["weights"]
    # a pickled Saved still feeds its backward
    s2 = pickle.loads(pickle.dumps(s))
    g1 = ops.lstm_backward(s, d_h=np.ones((2, 2)))
    g2 = ops.lstm_backward(s2, d_h=np.ones((2, 2)))
    np.testing.assert_array_equal(g1["kernel"], g2["kernel"])
