"""Custom layers written with attnlstm.ops (issue 15): what automatic differentiation costs.

Two rows:
- ``custom_attention_epoch``: the demo's Japanese Vowels classifier (Masking -> LSTM -> Luong
  attention with a learned scale -> Dense) trained one epoch with the built-in
  ``layers.Attention(use_scale=True)`` and with the same attention written as a custom layer
  (ops.matmul / ops.softmax, gradients by autograd). Goal: custom <= 1.5x built-in per epoch.
- ``custom_layer_predict``: eager call of a custom attention-pooling layer vs the same NumPy code
  called directly on the layer's arrays. Goal: <= 1.2x.

Run alone with ``python -m benchmarks.ops_custom``; ``make bench`` adds the rows to its report.
"""
import time

import numpy as np

GOALS = {"custom_attention_epoch": 1.5, "custom_layer_predict": 1.2}


def _custom_attention_class():
    from attnlstm import layers, ops

    class LuongAttention(layers.Layer):
        """Keras ``Attention(use_scale=True)`` written as a custom layer."""

        def build(self, input_shape):
            self.scale = self.add_weight(shape=(), initializer="ones", name="scale")

        def call(self, inputs, mask=None):
            query, value = inputs
            scores = self.scale * ops.matmul(query, ops.transpose(value, (0, 2, 1)))
            if mask is not None and mask[1] is not None:
                keep = ops.cast(ops.expand_dims(mask[1], 1), scores.dtype)
                scores = scores - 1e9 * (1.0 - keep)
            return ops.matmul(ops.softmax(scores, axis=-1), value)

    return LuongAttention


def _vowels_model(custom):
    from attnlstm import Input, Model, layers
    from attnlstm.demo import CLASSES, TIMESTEPS
    units = 64
    x = Input(shape=(TIMESTEPS, 12))
    h = layers.Masking(0.0)(x)
    seq, h_last, _ = layers.LSTM(units, return_sequences=True, return_state=True)(h)
    query = layers.Reshape((1, units))(h_last)
    att = _custom_attention_class()() if custom else layers.Attention(use_scale=True)
    context = att([query, seq])
    z = layers.Concatenate()([layers.Flatten()(context), h_last])
    y = layers.Dense(CLASSES, activation="softmax")(z)
    return Model(x, y)


def _epoch_seconds(custom, x, y, epochs):
    from attnlstm import optimizers, utils
    utils.set_random_seed(0)
    m = _vowels_model(custom)
    m.compile(optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    m.fit(x[:64], y[:64], batch_size=32, epochs=1, verbose=0)   # warm-up
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        m.fit(x, y, batch_size=32, epochs=1, verbose=0)
        times.append(time.perf_counter() - t0)
    return min(times)


def _pooling_predict(repeats):
    from attnlstm import layers, ops

    class AttentionPooling(layers.Layer):
        def build(self, input_shape):
            self.W = self.add_weight(shape=(input_shape[-1], 32), name="W")
            self.u = self.add_weight(shape=(32, 1), name="u")

        def call(self, x):
            a = ops.softmax(ops.matmul(ops.tanh(ops.matmul(x, self.W)), self.u), axis=1)
            return ops.sum(a * x, axis=1)

    def numpy_twin(x, W, u):
        s = np.tanh(x @ W) @ u
        e = np.exp(s - s.max(axis=1, keepdims=True))
        a = e / e.sum(axis=1, keepdims=True)
        return (a * x).sum(axis=1)

    x = np.random.default_rng(0).standard_normal((32, 29, 64)).astype(np.float32)
    layer = AttentionPooling()
    layer(x)
    W, u = layer.W.value, layer.u.value
    np.testing.assert_allclose(layer(x), numpy_twin(x, W, u), rtol=1e-5, atol=1e-6)

    def best(fn):
        for _ in range(20):
            fn()
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(20):
                fn()
            ts.append((time.perf_counter() - t0) / 20)
        return min(ts)
    t_layer = best(lambda: layer(x))
    t_numpy = best(lambda: numpy_twin(x, W, u))
    return t_layer, t_numpy


def measure(quick=False):
    """Both rows as dicts: name, seconds (custom, reference), ratio, goal, ok."""
    from attnlstm.demo import load_vowels
    (x, y), _, _ = load_vowels()
    epochs = 2 if quick else 4
    t_builtin = _epoch_seconds(False, x, y, epochs)
    t_custom = _epoch_seconds(True, x, y, epochs)
    t_layer, t_numpy = _pooling_predict(5 if quick else 20)
    rows = []
    for name, t, ref, what in (
            ("custom_attention_epoch", t_custom, t_builtin,
             "Vowels epoch: custom Luong attention vs layers.Attention(use_scale=True)"),
            ("custom_layer_predict", t_layer, t_numpy,
             "AttentionPooling eager call (B=32, T=29, D=64) vs the same NumPy code")):
        ratio = t / ref
        rows.append({"name": name, "what": what, "custom_s": t, "reference_s": ref,
                     "ratio": ratio, "goal": GOALS[name], "ok": ratio <= GOALS[name]})
    return rows


def print_rows(rows):
    print("\nCustom layers (attnlstm.ops + autograd), best of repeated runs:")
    for r in rows:
        print(f"  {r['name']:<24} {r['custom_s'] * 1e3:9.2f} ms vs {r['reference_s'] * 1e3:9.2f} ms"
              f"  ratio {r['ratio']:.2f} (goal <= {r['goal']}) {'ok' if r['ok'] else 'MISSED'}"
              f"  -- {r['what']}")


if __name__ == "__main__":
    print_rows(measure())
