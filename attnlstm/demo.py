"""``python -m attnlstm.demo``: a small example on real data (Japanese Vowels, bundled).

Until training lands (the training issue), the demo shows what the foundation does: it builds
a masked LSTM classifier, prints its summary, runs it on the real variable-length sequences in
one C call per batch and layer, prints attnlstm's build-time shape errors for classic mistakes,
and — when Keras is installed — the largest difference from the same model in Keras with the
same weights.
"""
import time

import numpy as np

from . import Input, Model, ShapeError, datasets, layers
from .sequence import pad_sequences


def build_classifier(timesteps, features, classes, units=32):
    x = Input(shape=(timesteps, features), name="frames")
    h = layers.Masking(0.0)(x)
    h = layers.LSTM(units, return_sequences=True)(h)
    h = layers.GlobalAveragePooling1D()(h)
    y = layers.Dense(classes, activation="softmax")(h)
    return Model(x, y, name="vowels_lstm")


def shape_error_examples():
    """The classic mistakes, each caught when the model is built."""
    cases = [
        ("LSTM fed by an LSTM without return_sequences=True",
         lambda: layers.LSTM(8)(layers.LSTM(8)(Input((20, 5))))),
        ("a 2-D array where an LSTM needs sequences",
         lambda: layers.LSTM(8)(np.zeros((4, 12)))),
        ("batch size inside Input's shape",
         lambda: layers.LSTM(8)(Input((32, 20, 5)))),
        ("concatenating sequences of different lengths",
         lambda: layers.Concatenate()([Input((20, 8)), Input((25, 8))])),
    ]
    for title, fn in cases:
        try:
            fn()
        except ShapeError as err:
            print(f"\n# {title}\n{type(err).__name__}: {err}")


def compare_with_keras(model, x):
    try:
        import os
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import keras
    except ImportError:
        print("\nKeras is not installed: skipping the comparison (pip install keras tensorflow-cpu).")
        return None
    kx = keras.Input(shape=x.shape[1:])
    kh = keras.layers.Masking(0.0)(kx)
    kh = keras.layers.LSTM(model.get_layer(index=2).units, return_sequences=True)(kh)
    kh = keras.layers.GlobalAveragePooling1D()(kh)
    ky = keras.layers.Dense(model.outputs[0].shape[-1], activation="softmax")(kh)
    kmodel = keras.Model(kx, ky)
    kmodel.set_weights(model.get_weights())
    diff = float(np.max(np.abs(kmodel.predict(x, verbose=0) - model.predict(x))))
    print(f"\nKeras {keras.__version__} ({keras.backend.backend()}) with the same weights: "
          f"largest output difference {diff:.2e}")
    return diff


def main():
    (x_train, y_train), (x_test, y_test) = datasets.load_japanese_vowels()
    x = pad_sequences(x_test, padding="post", dtype="float32")
    print(f"Japanese Vowels test set: {len(x_test)} utterances, padded to {x.shape} "
          f"(lengths {min(len(s) for s in x_test)}..{max(len(s) for s in x_test)})")
    model = build_classifier(x.shape[1], x.shape[2], 9)
    model.summary()
    t0 = time.perf_counter()
    p = model.predict(x, batch_size=64)
    dt = time.perf_counter() - t0
    print(f"predict: {p.shape} class probabilities in {dt * 1e3:.1f} ms "
          f"(untrained weights: training arrives with compile/fit)")
    shape_error_examples()
    compare_with_keras(model, x)


if __name__ == "__main__":
    main()
