"""float32 gradient parity with keras.layers.LSTM (Keras 3.15.1, TensorFlow backend, CPU) via
tf.GradientTape, with weights copied in: masks with gaps, go_backwards, initial states,
return_sequences both ways, and training-mode dropout with the masks injected into the cell."""
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from attnlstm import ops  # noqa: E402

B, T, D, H = 3, 6, 4, 5


def keras_grads(layer, x, mask, state, dO, dh, dc, training=False):
    xt = tf.constant(x)
    st = [tf.constant(s) for s in state] if state is not None else None
    with tf.GradientTape() as tape:
        tape.watch(xt)
        if st is not None:
            tape.watch(st)
        o, h, c = layer(xt, mask=tf.constant(mask), initial_state=st, training=training)
        loss = tf.reduce_sum(o * dO) + tf.reduce_sum(h * dh) + tf.reduce_sum(c * dc)
    srcs = [xt] + list(layer.trainable_weights) + (st or [])
    return o.numpy(), [g.numpy() for g in tape.gradient(loss, srcs)]


def test_keras_version():
    assert keras.__version__ == "3.15.1"


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("dropout", [False, True])
def test_gradients_match_keras(go_backwards, return_sequences, dropout):
    rng = np.random.default_rng(int(go_backwards) + 2 * int(return_sequences))
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    mask = np.ones((B, T), bool)
    mask[0, :2] = False
    mask[1, 3] = False
    mask[2, -1] = False
    state = [rng.standard_normal((B, H)).astype(np.float32) for _ in range(2)]
    layer = keras.layers.LSTM(H, return_sequences=return_sequences, go_backwards=go_backwards,
                              return_state=True, dropout=0.3 if dropout else 0.0,
                              recurrent_dropout=0.4 if dropout else 0.0)
    layer.build((B, T, D))
    W, U, b = layer.get_weights()
    b = b + 0.3 * rng.standard_normal(b.shape).astype(np.float32)
    layer.set_weights([W, U, b])
    p = r = None
    if dropout:
        # Keras 3.15.1: recurrent_dropout > 0 -> implementation 1, four masks each; masks set
        # on the cell before the call are the ones used (DropoutRNNCell caches them).
        p = [((rng.random((B, D)) >= 0.3) / 0.7).astype(np.float32) for _ in range(4)]
        r = [((rng.random((B, H)) >= 0.4) / 0.6).astype(np.float32) for _ in range(4)]
        layer.cell._dropout_mask = [tf.constant(a) for a in p]
        layer.cell._recurrent_dropout_mask = [tf.constant(a) for a in r]
        p, r = np.concatenate(p, -1), np.concatenate(r, -1)
    dO = rng.standard_normal((B, T, H) if return_sequences else (B, H)).astype(np.float32)
    dh, dc = (rng.standard_normal((B, H)).astype(np.float32) for _ in range(2))
    o, want = keras_grads(layer, x, mask, state, dO, dh, dc, training=dropout)

    s = ops.lstm_forward(x, W, U, b, state, mask, go_backwards=go_backwards, rec_mask=r,
                         dp_mask=p)
    got_o = s["outputs"] if return_sequences else s["last_output"]
    assert np.abs(got_o - o).max() <= 1e-5
    g = ops.lstm_backward(s, d_outputs=dO if return_sequences else None,
                          d_last_output=None if return_sequences else dO, d_h=dh, d_c=dc)
    for name, w in zip(("x", "kernel", "recurrent_kernel", "bias", "h0", "c0"), want):
        assert np.abs(g[name] - w).max() <= 2e-5 * max(1.0, np.abs(w).max()), name
