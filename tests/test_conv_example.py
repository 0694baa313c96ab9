"""A port of Keras' "Timeseries classification from scratch" example (keras.io, fchollet):
the fully convolutional network ``3 x [Conv1D(64, 3, padding="same") -> BatchNormalization ->
ReLU] -> GlobalAveragePooling1D -> Dense(softmax)``, code kept as in the example with
``keras`` replaced by ``attnlstm``. The FordA download is replaced by a small local data set
of the same shape (univariate series, two classes). From Keras' initial weights, attnlstm's
loss curve must follow Keras' (same batches, no shuffling) and the moving statistics of the
BatchNormalization layers must match after training.
"""
import numpy as np

from conftest import assert_close


def make_data(n=48, length=50, seed=0):
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 4 * np.pi, length)
    y = rng.integers(0, 2, n)
    freq = np.where(y == 1, 1.5, 1.0)[:, None]
    x = np.sin(freq * t[None, :] + rng.uniform(0, 2 * np.pi, (n, 1)))
    x = x + 0.3 * rng.standard_normal((n, length))
    return x.reshape((x.shape[0], x.shape[1], 1)).astype("float32"), y


def make_model(keras, input_shape, num_classes):
    # As in the example (filters reduced from 64 to 16 to keep the test fast; keras.Input and
    # keras.Model for the example's keras.layers.Input and keras.models.Model).
    input_layer = keras.Input(input_shape)

    conv1 = keras.layers.Conv1D(filters=16, kernel_size=3, padding="same")(input_layer)
    conv1 = keras.layers.BatchNormalization()(conv1)
    conv1 = keras.layers.ReLU()(conv1)

    conv2 = keras.layers.Conv1D(filters=16, kernel_size=3, padding="same")(conv1)
    conv2 = keras.layers.BatchNormalization()(conv2)
    conv2 = keras.layers.ReLU()(conv2)

    conv3 = keras.layers.Conv1D(filters=16, kernel_size=3, padding="same")(conv2)
    conv3 = keras.layers.BatchNormalization()(conv3)
    conv3 = keras.layers.ReLU()(conv3)

    gap = keras.layers.GlobalAveragePooling1D()(conv3)

    output_layer = keras.layers.Dense(num_classes, activation="softmax")(gap)

    return keras.Model(inputs=input_layer, outputs=output_layer)


def test_fcn_timeseries_classification_follows_keras(keras):
    import attnlstm

    x_train, y_train = make_data()
    num_classes = len(np.unique(y_train))
    km = make_model(keras, x_train.shape[1:], num_classes)
    model = make_model(attnlstm, x_train.shape[1:], num_classes)
    model.set_weights(km.get_weights())
    model.compile(optimizer=attnlstm.optimizers.Adam(), loss="sparse_categorical_crossentropy",
                  metrics=["sparse_categorical_accuracy"])
    km.compile(optimizer=keras.optimizers.Adam(), loss="sparse_categorical_crossentropy",
               metrics=["sparse_categorical_accuracy"], jit_compile=False)
    kh = km.fit(x_train, y_train, batch_size=16, epochs=4, shuffle=False, verbose=0)
    oh = model.fit(x_train, y_train, batch_size=16, epochs=4, shuffle=False, verbose=0)
    np.testing.assert_allclose(oh.history["loss"], kh.history["loss"], rtol=2e-3)
    assert oh.history["loss"][-1] < oh.history["loss"][0]
    for o, k, w in zip(model.get_weights(), km.get_weights(), model.weights):
        if w.path.startswith("conv1d") and w.name == "bias":
            # A bias right before BatchNormalization has a zero gradient up to rounding, which
            # Adam's normalisation turns into steps of either sign: it differs by design.
            continue
        assert_close(o, k, rtol=2e-3, atol=2e-4, what=w.path)
    x_test, _ = make_data(n=8, seed=1)
    assert_close(model.predict(x_test, verbose=0), km.predict(x_test, verbose=0), rtol=1e-3,
                 atol=1e-4)
