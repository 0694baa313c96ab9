"""layers.Bidirectional: parity with Keras 3.15.1 over LSTM, GRU and SimpleRNN for every merge
mode with masks (gaps, right padding, a fully masked sample), return_state, initial_state,
a custom backward_layer; weights order and .weights.h5 paths; gradients against finite
differences (float64) and tf.GradientTape; shape errors with hints."""
import numpy as np
import pytest

import grad_check
from conftest import assert_close, padded_mask, to_np

from attnlstm import Input, Model, layers
from attnlstm.saving import weight_paths

B, T, D, H = 3, 12, 4, 5
INNER = ["LSTM", "GRU", "SimpleRNN"]


def _pair(keras, rng, inner, merge_mode="concat", dtype="float32", **kw):
    kl = keras.layers.Bidirectional(getattr(keras.layers, inner)(H, dtype=dtype, **kw),
                                    merge_mode=merge_mode, dtype=dtype)
    kl.build((None, None, D))
    kl.set_weights([rng.uniform(-0.5, 0.5, w.shape).astype(dtype) for w in kl.get_weights()])
    ol = layers.Bidirectional(getattr(layers, inner)(H, dtype=dtype, **kw), merge_mode=merge_mode)
    ol.build((None, None, D))
    ol.set_weights(kl.get_weights())
    return kl, ol


SEQ_STATE = dict(return_sequences=True, return_state=True)
CASES = [(inner, "concat", SEQ_STATE, "full") for inner in INNER] + \
    [("GRU", mode, dict(return_sequences=True), "gaps") for mode in ("sum", "mul", "ave", None)] + \
    [("LSTM", None, dict(return_state=True), "gaps"),
     ("SimpleRNN", "ave", dict(return_state=True), "full"),
     ("LSTM", "mul", dict(), "right")]


@pytest.mark.parametrize("inner,merge_mode,kw,kind", CASES, ids=str)
def test_bidirectional_matches_keras_with_mask(keras, rng, inner, merge_mode, kw, kind):
    x = rng.standard_normal((B, T, D)).astype("float32")
    kl, ol = _pair(keras, rng, inner, merge_mode, **kw)
    m = padded_mask(B, T, kind, rng)
    k, o = to_np(kl(x, mask=m)), ol(x, mask=m)
    assert_close(o, list(k) if isinstance(k, tuple) else k, what=f"{kw} {kind}")


def test_bidirectional_padding_stays_at_the_end(rng):
    """Right-padded samples: the merged output at real steps equals running on the unpadded
    sample alone, and padded steps are 0 in both halves."""
    ol = layers.Bidirectional(layers.GRU(H, return_sequences=True), dtype="float64")
    x = rng.standard_normal((2, T, D))
    m = np.ones((2, T), bool)
    m[1, 7:] = False
    y = ol(x, mask=m)
    alone = ol(x[1:2, :7])
    np.testing.assert_allclose(y[1, :7], alone[0], rtol=1e-12, atol=1e-12)
    assert np.all(y[1, 7:] == 0)


@pytest.mark.parametrize("inner", ["LSTM", "GRU"])
def test_bidirectional_initial_state_and_state_order_match_keras(keras, rng, inner):
    kl, ol = _pair(keras, rng, inner, return_sequences=True, return_state=True)
    x = rng.standard_normal((B, T, D)).astype("float32")
    n = 2 if inner == "LSTM" else 1
    st = [rng.standard_normal((B, H)).astype("float32") for _ in range(2 * n)]
    out = ol(x, initial_state=st)
    assert len(out) == 1 + 2 * n            # LSTM: [out, h_fw, c_fw, h_bw, c_bw]
    assert_close(out, list(to_np(kl(x, initial_state=st))))


def test_bidirectional_custom_backward_layer_matches_keras(keras, rng):
    kl = keras.layers.Bidirectional(keras.layers.LSTM(H, return_sequences=True),
                                    backward_layer=keras.layers.GRU(3, return_sequences=True,
                                                                    go_backwards=True))
    kl.build((None, None, D))
    kl.set_weights([rng.uniform(-0.5, 0.5, w.shape).astype("float32") for w in kl.get_weights()])
    ol = layers.Bidirectional(layers.LSTM(H, return_sequences=True),
                              backward_layer=layers.GRU(3, return_sequences=True,
                                                        go_backwards=True))
    ol.build((None, None, D))
    ol.set_weights(kl.get_weights())
    x = rng.standard_normal((B, T, D)).astype("float32")
    m = padded_mask(B, T, "right", rng)
    assert_close(ol(x, mask=m), to_np(kl(x, mask=m)))


def test_bidirectional_weights_order_names_and_h5_round_trip(keras, rng, tmp_path):
    ki = keras.Input((T, D))
    km = keras.Model(ki, keras.layers.Bidirectional(keras.layers.GRU(H))(
        keras.layers.Bidirectional(keras.layers.LSTM(H, return_sequences=True))(ki)))
    km.set_weights([rng.uniform(-0.3, 0.3, w.shape).astype("float32") for w in km.get_weights()])
    oi = Input((T, D))
    om = Model(oi, layers.Bidirectional(layers.GRU(H))(
        layers.Bidirectional(layers.LSTM(H, return_sequences=True))(oi)))
    assert [w.shape for w in om.get_weights()] == [tuple(w.shape) for w in km.get_weights()]
    paths = list(weight_paths(om))
    assert "layers/bidirectional/forward_layer/cell/vars/0" in paths
    assert "layers/bidirectional/backward_layer/cell/vars/2" in paths
    assert "layers/bidirectional_1/forward_layer/cell/vars/1" in paths
    path = str(tmp_path / "k.weights.h5")
    km.save_weights(path)
    om.load_weights(path)
    x = rng.standard_normal((2, T, D)).astype("float32")
    assert_close(om.predict(x, verbose=0), to_np(km(x)))
    path2 = str(tmp_path / "o.weights.h5")
    om.save_weights(path2)
    km2 = keras.models.clone_model(km)
    km2.load_weights(path2)
    assert_close(om.predict(x, verbose=0), to_np(km2(x)))


def test_bidirectional_gradients_match_tf(keras, rng):
    import tensorflow as tf
    kl, ol = _pair(keras, rng, "LSTM", "concat", dtype="float64", return_sequences=True)
    x = rng.standard_normal((B, 8, D))
    m = padded_mask(B, 8, "full", rng)
    Rg = rng.standard_normal((B, 8, 2 * H))
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        loss = tf.reduce_sum(kl(xt, mask=m) * Rg)
    gk = tape.gradient(loss, [xt] + kl.trainable_weights)
    out, ctx = grad_check.run(ol, [x], dict(mask=m))
    g = ol.backward(ctx, Rg)
    np.testing.assert_allclose(g.inputs, gk[0].numpy(), rtol=1e-9, atol=1e-12)
    for v, gt in zip(ol.trainable_weights, gk[1:]):
        np.testing.assert_allclose(g.weights[v], gt.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("inner,merge_mode,kw", [
    ("GRU", "concat", dict(return_sequences=True)),
    ("LSTM", "mul", dict(return_state=True)),
    ("SimpleRNN", "ave", dict(return_sequences=True, return_state=True)),
    ("GRU", None, dict(return_sequences=True)),
    ("LSTM", "sum", dict()),
])
def test_bidirectional_finite_differences(rng, inner, merge_mode, kw):
    layer = layers.Bidirectional(getattr(layers, inner)(3, dtype="float64", **kw),
                                 merge_mode=merge_mode)
    x = rng.standard_normal((2, 5, 3))
    m = padded_mask(2, 5, "gaps", rng)
    n = 2 if inner == "LSTM" else 1
    st = [rng.standard_normal((2, 3)) for _ in range(2 * n)]
    grad_check.check_layer(layer, [x], dict(mask=m, initial_state=st),
                           kwarg_paths=[("initial_state", 0), ("initial_state", 2 * n - 1)])


def test_bidirectional_trains_in_fit(rng):
    x = rng.standard_normal((16, 6, 3)).astype("float32")
    y = (x[:, 0].sum(axis=1) > 0).astype("float32")[:, None]
    i = Input((6, 3))
    o = layers.Dense(1, activation="sigmoid")(layers.Bidirectional(layers.GRU(4))(i))
    m = Model(i, o)
    m.compile(optimizer="adam", loss="binary_crossentropy")
    before = [w.copy() for w in m.get_weights()]
    hist = m.fit(x, y, epochs=3, batch_size=8, verbose=0)
    assert all(not np.array_equal(a, b) for a, b in zip(before, m.get_weights()))
    assert hist.history["loss"][-1] < hist.history["loss"][0]


def test_bidirectional_get_config_round_trip():
    ol = layers.Bidirectional(layers.GRU(4, return_sequences=True, reset_after=False),
                              merge_mode="ave")
    cfg = ol.get_config()
    again = layers.Bidirectional.from_config(cfg)
    assert again.get_config()["layer"] == cfg["layer"]
    assert again.merge_mode == "ave" and again.backward_layer.go_backwards
    assert again.forward_layer.zero_output_for_mask is True


def test_bidirectional_errors():
    with pytest.raises(ValueError, match=r"Bidirectional: `layer` must be a recurrent layer .* "
                                         r"got Dense '.*'.\nHint: wrap a recurrent layer"):
        layers.Bidirectional(layers.Dense(4))
    with pytest.raises(ValueError, match=r"Invalid merge mode"):
        layers.Bidirectional(layers.LSTM(4), merge_mode="max")
    with pytest.raises(ValueError, match=r"different `go_backwards`"):
        layers.Bidirectional(layers.LSTM(4), backward_layer=layers.LSTM(4))
    with pytest.raises(ValueError, match=r'same value for attribute "return_sequences"'):
        layers.Bidirectional(layers.LSTM(4), backward_layer=layers.LSTM(
            4, go_backwards=True, return_sequences=True))
    i = Input((5, 3))
    h = layers.LSTM(4)(i)
    with pytest.raises(ValueError, match=r"Bidirectional '.*': `inputs` must have shape \(batch, "
                                         r"timesteps, features\), got \(None, 4\).\nHint: the "
                                         r"previous LSTM '.*' returns only its last output"):
        layers.Bidirectional(layers.LSTM(4))(h)
    h = layers.Bidirectional(layers.LSTM(4))(i)
    with pytest.raises(ValueError, match=r"Hint: the previous Bidirectional '.*' returns only its "
                                         r"last output; pass return_sequences=True"):
        layers.LSTM(4)(h)
    with pytest.raises(ValueError, match=r"`initial_state` must list the forward layer's states, "
                                         r"then the backward layer's: \[h_fw, c_fw, h_bw, c_bw\]"):
        layers.Bidirectional(layers.LSTM(4))(np.zeros((2, 5, 3)),
                                             initial_state=[np.zeros((2, 4))] * 2)


class MinimalRNN(layers.RNN):
    """A recurrent layer a user writes on the RNN base: h_t = tanh(x_t W + h_{t-1} U), NumPy."""
    keras_cell_name = "minimal_rnn_cell"
    article = "a MinimalRNN"

    def build(self, input_shape):
        self.kernel = self.add_weight("kernel", (input_shape[-1], self.units), "glorot_uniform")
        self.recurrent_kernel = self.add_weight("recurrent_kernel", (self.units, self.units),
                                                "orthogonal")
        self.built = True

    def run_forward(self, x, mask, initial_state, dp_mask, rec_mask, save):
        B, T, _ = x.shape
        h = np.zeros((B, self.units)) if initial_state is None else initial_state[0]
        hs, outs, prev = [], [], np.zeros_like(h)
        for s in range(T):
            t = T - 1 - s if self.go_backwards else s
            y = np.tanh(x[:, t] @ self.kernel.value + h @ self.recurrent_kernel.value)
            k = np.ones((B, 1), bool) if mask is None else np.asarray(mask, bool)[:, t, None]
            hs.append(h)
            h = np.where(k, y, h)
            prev = np.where(k, y, prev)
            outs.append(prev)
        return np.stack(outs, 1), [h], None

    def get_config(self):
        return super().get_config()


def test_bidirectional_over_a_user_written_rnn(rng):
    layer = layers.Bidirectional(MinimalRNN(3, return_sequences=True), merge_mode="sum",
                                 dtype="float64")
    x = rng.standard_normal((2, 6, 4))
    m = np.ones((2, 6), bool)
    m[1, 4:] = False
    y = layer(x, mask=m)
    fw, bw = layer.forward_layer, layer.backward_layer
    assert isinstance(fw, MinimalRNN) and bw.go_backwards and not fw.go_backwards
    assert y.shape == (2, 6, 3)
    np.testing.assert_array_equal(y[1, 4:], 0)          # zero_output_for_mask forced
    alone = layers.Bidirectional(MinimalRNN(3, return_sequences=True), merge_mode="sum",
                                 dtype="float64")
    alone.build((None, None, 4))
    alone.set_weights(layer.get_weights())
    # atol: one sample alone goes through the BLAS as a vector product, two as a matrix product;
    # their last bits differ, and merge_mode="sum" can cancel an output to ~1e-5 (seen: 1.1e-16
    # apart at -4.0e-5, relative 2.8e-12, with the unseeded glorot/orthogonal weights)
    np.testing.assert_allclose(alone(x[1:, :4])[0], y[1, :4], rtol=1e-12, atol=1e-14)
    paths = weight_paths(layer)
    assert sorted(paths) == ["backward_layer/cell/vars/0", "backward_layer/cell/vars/1",
                             "forward_layer/cell/vars/0", "forward_layer/cell/vars/1"]
    assert paths["forward_layer/cell/vars/1"] is fw.recurrent_kernel


def test_bidirectional_stateful_carries_both_directions(keras, rng):
    kl = keras.layers.Bidirectional(keras.layers.GRU(H, stateful=True, return_sequences=True))
    kl.build((B, None, D))
    kl.set_weights([rng.uniform(-0.5, 0.5, w.shape).astype("float32") for w in kl.get_weights()])
    ol = layers.Bidirectional(layers.GRU(H, stateful=True, return_sequences=True))
    ol.build((B, None, D))
    ol.set_weights(kl.get_weights())
    x = rng.standard_normal((B, 8, D)).astype("float32")
    for k in range(2):
        assert_close(ol(x[:, 4 * k:4 * k + 4]), to_np(kl(x[:, 4 * k:4 * k + 4])))
    assert len(ol.states) == 2
    ol.reset_states()
    assert ol.states is None


@pytest.mark.parametrize("inner", ["LSTM", "GRU"])
def test_bidirectional_directions_side_by_side_give_the_same_bits(rng, inner):
    """With a thread budget of 2, a mid-size call runs the backward direction on a second thread
    (it does, checked) while the forward one runs: outputs, states and gradients, in training with
    dropout too, are the same bits as one after the other on one thread."""
    import threading

    import attnlstm
    x = rng.standard_normal((16, 64, 64)).astype("float32")     # >= 5e8 flops a direction
    dy = rng.standard_normal((16, 64, 512)).astype("float32")
    weights = None
    before = attnlstm.get_num_threads()
    runs = {}
    try:
        for n in (1, 2):
            attnlstm.set_num_threads(n)
            lay = layers.Bidirectional(getattr(layers, inner)(
                256, return_sequences=True, return_state=True, dropout=0.2,
                recurrent_dropout=0.1, seed=7))
            lay.build(x.shape)
            if weights is None:
                weights = [rng.uniform(-0.3, 0.3, w.shape).astype("float32")
                           for w in lay.get_weights()]
            lay.set_weights(weights)
            seen = []
            call = lay.backward_layer.forward

            def spy(*a, _call=call, **k):
                seen.append(threading.current_thread() is threading.main_thread())
                return _call(*a, **k)
            lay.backward_layer.forward = spy
            out, ctx = lay.forward(x, training=True)
            g = lay.backward(ctx, [dy] + [np.ones_like(s) for s in out[1:]])
            assert lay._side_by_side(x) == (n == 2) and seen == [n == 1]
            runs[n] = [out[0], *out[1:], g.inputs] + [g.weights[v] for v in lay.trainable_weights]
    finally:
        attnlstm.set_num_threads(before)
    for a, b in zip(runs[1], runs[2]):
        assert np.array_equal(a, b)


def test_bidirectional_side_by_side_raises_the_second_directions_error(rng):
    import attnlstm
    before = attnlstm.get_num_threads()
    lay = layers.Bidirectional(layers.LSTM(256, return_sequences=True))
    x = rng.standard_normal((16, 64, 64)).astype("float32")
    lay.build(x.shape)

    def boom(*a, **k):
        raise RuntimeError("from the backward direction")
    lay.backward_layer.call = boom
    try:
        attnlstm.set_num_threads(2)
        assert lay._side_by_side(x)
        with pytest.raises(RuntimeError, match="from the backward direction"):
            lay(x)
    finally:
        attnlstm.set_num_threads(before)
