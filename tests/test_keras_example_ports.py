"""Keras' own RNN and attention examples (keras.io), ported by changing only the imports and the
data source (data made here), train to the same loss curve in attnlstm as in Keras 3 (issue 17).

Each port is written once as a function of the library namespace `K` (``keras`` or
``attnlstm``), keeping the example's model code recognisable. Both models start from Keras'
initial weights (``set_weights``), see the same batches (``shuffle=False``) and are compared
epoch by epoch; budgets are small so the file runs in seconds.
"""
import numpy as np
import pytest

import attnlstm

keras = pytest.importorskip("keras")

LOSS_RTOL = 2e-3       # float32 training of a few epochs: rounding, not behaviour


def _train_both(build, x, y, epochs, batch_size, compile_kw, validation_data=None, x_kw=None):
    km = build(keras)
    am = build(attnlstm)
    am.set_weights(km.get_weights())
    km.compile(**compile_kw)
    am.compile(**compile_kw)
    fit_kw = dict(batch_size=batch_size, epochs=epochs, shuffle=False, verbose=0)
    if validation_data is not None:
        fit_kw["validation_data"] = validation_data
    kh = km.fit(x, y, **fit_kw).history
    ah = am.fit(x, y, **fit_kw).history
    for key in kh:
        if key in ah:
            np.testing.assert_allclose(ah[key], kh[key], rtol=LOSS_RTOL, atol=1e-5, err_msg=key)
    assert ah["loss"][-1] < ah["loss"][0]
    return km, am


# --- addition RNN (examples/nlp/addition_rnn.py) ---------------------------------------------

DIGITS = 2
MAXLEN = DIGITS + 1 + DIGITS
CHARS = "0123456789+ "


def _addition_data(n=600, seed=0):
    rng = np.random.default_rng(seed)
    idx = {c: i for i, c in enumerate(sorted(set(CHARS)))}
    x = np.zeros((n, MAXLEN, len(CHARS)), dtype=bool)
    y = np.zeros((n, DIGITS + 1, len(CHARS)), dtype=bool)
    for i in range(n):
        a, b = (int(rng.integers(0, 10 ** DIGITS)) for _ in range(2))
        q = f"{a}+{b}"
        q = (q + " " * (MAXLEN - len(q)))[::-1]          # REVERSE = True
        ans = str(a + b)
        ans += " " * (DIGITS + 1 - len(ans))
        for t, c in enumerate(q):
            x[i, t, idx[c]] = 1
        for t, c in enumerate(ans):
            y[i, t, idx[c]] = 1
    return x, y


def test_addition_rnn():
    x, y = _addition_data()
    split_at = len(x) - len(x) // 10
    (x_train, x_val), (y_train, y_val) = (x[:split_at], x[split_at:]), (y[:split_at], y[split_at:])

    def build(K):
        layers = K.layers
        model = K.Sequential()
        model.add(layers.Input((MAXLEN, len(CHARS))))
        model.add(layers.LSTM(32))
        model.add(layers.RepeatVector(DIGITS + 1))
        model.add(layers.LSTM(32, return_sequences=True))
        model.add(layers.Dense(len(CHARS), activation="softmax"))
        return model

    _train_both(build, x_train, y_train, epochs=3, batch_size=32,
                compile_kw=dict(loss="categorical_crossentropy", optimizer="adam",
                                metrics=["accuracy"]),
                validation_data=(x_val, y_val))


# --- character-level seq2seq (examples/nlp/lstm_seq2seq.py) ------------------------------------

def _seq2seq_data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    words = ["go", "run", "hi", "wait", "stop", "help", "jump", "hello"]
    french = {"go": "va", "run": "cours", "hi": "salut", "wait": "attends", "stop": "arrete",
              "help": "aide", "jump": "saute", "hello": "bonjour"}
    input_texts = [" ".join(rng.choice(words, 2)) for _ in range(n)]
    target_texts = ["\t" + " ".join(french[w] for w in s.split()) + "\n" for s in input_texts]
    in_chars = sorted(set("".join(input_texts)) | {" "})
    out_chars = sorted(set("".join(target_texts)) | {" "})
    ti = {c: i for i, c in enumerate(in_chars)}
    to = {c: i for i, c in enumerate(out_chars)}
    Te, Td = max(map(len, input_texts)), max(map(len, target_texts))
    enc = np.zeros((n, Te, len(in_chars)), "float32")
    dec = np.zeros((n, Td, len(out_chars)), "float32")
    tgt = np.zeros((n, Td, len(out_chars)), "float32")
    for i, (a, b) in enumerate(zip(input_texts, target_texts)):
        for t, c in enumerate(a):
            enc[i, t, ti[c]] = 1.0
        enc[i, t + 1:, ti[" "]] = 1.0
        for t, c in enumerate(b):
            dec[i, t, to[c]] = 1.0
            if t > 0:
                tgt[i, t - 1, to[c]] = 1.0
        dec[i, t + 1:, to[" "]] = 1.0
        tgt[i, t:, to[" "]] = 1.0
    return enc, dec, tgt, to


def test_char_seq2seq_trains_and_builds_the_inference_models(tmp_path):
    enc, dec, tgt, target_token_index = _seq2seq_data()
    latent_dim = 16

    def build(K):
        encoder_inputs = K.Input(shape=(None, enc.shape[-1]))
        encoder = K.layers.LSTM(latent_dim, return_state=True)
        encoder_outputs, state_h, state_c = encoder(encoder_inputs)
        encoder_states = [state_h, state_c]
        decoder_inputs = K.Input(shape=(None, dec.shape[-1]))
        decoder_lstm = K.layers.LSTM(latent_dim, return_sequences=True, return_state=True)
        decoder_outputs, _, _ = decoder_lstm(decoder_inputs, initial_state=encoder_states)
        decoder_dense = K.layers.Dense(dec.shape[-1], activation="softmax")
        decoder_outputs = decoder_dense(decoder_outputs)
        return K.Model([encoder_inputs, decoder_inputs], decoder_outputs)

    km, am = _train_both(build, [enc, dec], tgt, epochs=3, batch_size=32,
                         compile_kw=dict(optimizer="rmsprop", loss="categorical_crossentropy",
                                         metrics=["accuracy"]))

    def inference_models(K, model):
        encoder_inputs = model.input[0]
        encoder_outputs, state_h_enc, state_c_enc = model.layers[2].output
        encoder_model = K.Model(encoder_inputs, [state_h_enc, state_c_enc])
        decoder_inputs = model.input[1]
        decoder_state_input_h = K.Input(shape=(latent_dim,))
        decoder_state_input_c = K.Input(shape=(latent_dim,))
        decoder_states_inputs = [decoder_state_input_h, decoder_state_input_c]
        decoder_lstm = model.layers[3]
        decoder_outputs, state_h_dec, state_c_dec = decoder_lstm(
            decoder_inputs, initial_state=decoder_states_inputs)
        decoder_dense = model.layers[4]
        decoder_outputs = decoder_dense(decoder_outputs)
        decoder_model = K.Model([decoder_inputs] + decoder_states_inputs,
                                [decoder_outputs, state_h_dec, state_c_dec])
        return encoder_model, decoder_model

    def decode(encoder_model, decoder_model, input_seq, steps=8):
        states_value = encoder_model.predict(input_seq, verbose=0)
        target_seq = np.zeros((1, 1, dec.shape[-1]), "float32")
        target_seq[0, 0, target_token_index["\t"]] = 1.0
        out = []
        for _ in range(steps):
            output_tokens, h, c = decoder_model.predict([target_seq] + list(states_value),
                                                        verbose=0)
            k = int(np.argmax(output_tokens[0, -1, :]))
            out.append(k)
            target_seq = np.zeros((1, 1, dec.shape[-1]), "float32")
            target_seq[0, 0, k] = 1.0
            states_value = [h, c]
        return out, output_tokens

    # Save model; restore the model and construct the encoder and decoder (as the example).
    km.save(tmp_path / "k_s2s_model.keras")
    am.save(tmp_path / "s2s_model.keras")
    km = keras.models.load_model(tmp_path / "k_s2s_model.keras")
    am = attnlstm.models.load_model(tmp_path / "s2s_model.keras")
    ke, kd = inference_models(keras, km)
    ae, ad = inference_models(attnlstm, am)
    ko, kp = decode(ke, kd, enc[:1])
    ao, ap = decode(ae, ad, enc[:1])
    np.testing.assert_allclose(ap, kp, rtol=1e-3, atol=1e-4)


# --- weather forecasting with timeseries_dataset_from_array
#     (examples/timeseries/timeseries_weather_forecasting.py) ------------------------------------

def test_weather_forecasting_with_timeseries_datasets():
    rng = np.random.default_rng(0)
    t = np.arange(3000)
    features = np.stack([np.sin(t / 24.0), np.cos(t / 24.0), np.sin(t / 240.0),
                         0.1 * rng.standard_normal(len(t))], axis=1).astype("float32")
    features = (features - features.mean(0)) / features.std(0)
    past, future, step = 120, 12, 6
    sequence_length = past // step
    train_split = 2000
    x_train = features[:train_split]
    y_train = features[past + future: train_split + past + future, 0:1]

    def datasets(K):
        return (K.utils.timeseries_dataset_from_array(x_train, y_train,
                                                      sequence_length=sequence_length,
                                                      sampling_rate=step, batch_size=128),
                K.utils.timeseries_dataset_from_array(
                    features[train_split:-(past + future)], features[train_split + past + future:, 0:1],
                    sequence_length=sequence_length, sampling_rate=step, batch_size=128))

    def build(K):
        inputs = K.layers.Input(shape=(sequence_length, features.shape[1]))
        lstm_out = K.layers.LSTM(16)(inputs)
        outputs = K.layers.Dense(1)(lstm_out)
        return K.Model(inputs=inputs, outputs=outputs)

    km, am = build(keras), build(attnlstm)
    am.set_weights(km.get_weights())
    km.compile(optimizer=keras.optimizers.Adam(learning_rate=0.001), loss="mse")
    am.compile(optimizer=attnlstm.optimizers.Adam(learning_rate=0.001), loss="mse")
    k_train, k_val = datasets(keras)
    a_train, a_val = datasets(attnlstm)
    kh = km.fit(k_train, epochs=3, validation_data=k_val, verbose=0).history
    ah = am.fit(a_train, epochs=3, validation_data=a_val, verbose=0).history
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(ah[key], kh[key], rtol=LOSS_RTOL, err_msg=key)
    assert ah["loss"][-1] < ah["loss"][0]


# --- text classification with a Transformer block
#     (examples/nlp/text_classification_with_transformer.py); dropout rates 0 so both sides see
#     the same computation ------------------------------------------------------------------------

def _transformer_classes(K):
    layers, ops = K.layers, K.ops

    class TransformerBlock(layers.Layer):
        def __init__(self, embed_dim, num_heads, ff_dim, rate=0.0):
            super().__init__()
            self.att = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
            self.ffn = K.Sequential([layers.Dense(ff_dim, activation="relu"),
                                     layers.Dense(embed_dim)])
            self.layernorm1 = layers.LayerNormalization(epsilon=1e-6)
            self.layernorm2 = layers.LayerNormalization(epsilon=1e-6)
            self.dropout1 = layers.Dropout(rate)
            self.dropout2 = layers.Dropout(rate)

        def call(self, inputs):
            attn_output = self.att(inputs, inputs)
            attn_output = self.dropout1(attn_output)
            out1 = self.layernorm1(inputs + attn_output)
            ffn_output = self.ffn(out1)
            ffn_output = self.dropout2(ffn_output)
            return self.layernorm2(out1 + ffn_output)

    class TokenAndPositionEmbedding(layers.Layer):
        def __init__(self, maxlen, vocab_size, embed_dim):
            super().__init__()
            self.token_emb = layers.Embedding(input_dim=vocab_size, output_dim=embed_dim)
            self.pos_emb = layers.Embedding(input_dim=maxlen, output_dim=embed_dim)

        def call(self, x):
            maxlen = ops.shape(x)[-1]
            positions = ops.arange(start=0, stop=maxlen, step=1)
            positions = self.pos_emb(positions)
            x = self.token_emb(x)
            return x + positions

    return TransformerBlock, TokenAndPositionEmbedding


def test_text_classification_with_a_transformer_block():
    vocab_size, maxlen = 50, 12
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 256)
    x = rng.integers(1, vocab_size, (256, maxlen))
    x[y == 1, :3] = 7                                  # a learnable signal
    embed_dim, num_heads, ff_dim = 8, 2, 8

    def build(K):
        TransformerBlock, TokenAndPositionEmbedding = _transformer_classes(K)
        layers = K.layers
        inputs = layers.Input(shape=(maxlen,))
        x_ = TokenAndPositionEmbedding(maxlen, vocab_size, embed_dim)(inputs)
        x_ = TransformerBlock(embed_dim, num_heads, ff_dim)(x_)
        x_ = layers.GlobalAveragePooling1D()(x_)
        x_ = layers.Dropout(0.0)(x_)
        x_ = layers.Dense(20, activation="relu")(x_)
        outputs = layers.Dense(2, activation="softmax")(x_)
        return K.Model(inputs=inputs, outputs=outputs)

    # The example uses "adam". On the TensorFlow backend an Embedding's gradient is an
    # IndexedSlices, and Keras' Adam squares it slice by slice before summing repeated token
    # rows (v gets sum(g_i^2), not (sum g_i)^2; a row seen twice with gradient 1 moves by
    # 1/sqrt(2)*2 = 1.41 lr, not lr): the JAX/PyTorch backends and attnlstm use the dense
    # gradient. SGD with momentum is linear in the gradient, so both agree; the model code is
    # the example's.
    _train_both(build, x, y, epochs=3, batch_size=32,
                compile_kw=dict(optimizer="sgd", loss="sparse_categorical_crossentropy",
                                metrics=["accuracy"]))


# --- timeseries classification with a Transformer
#     (examples/timeseries/timeseries_classification_transformer.py): functional-API residuals
#     (`x + inputs`) on KerasTensors, Conv1D projections, MHA, LayerNormalization; dropout 0 ----

def test_timeseries_classification_with_a_transformer():
    rng = np.random.default_rng(0)
    n, T = 128, 16
    y_train = rng.integers(0, 2, n)
    t = np.arange(T)
    x_train = (np.sin(t[None, :] * (0.3 + 0.4 * y_train[:, None]))
               + 0.2 * rng.standard_normal((n, T))).astype("float32")[..., None]
    n_classes = 2

    def build(K):
        layers = K.layers

        def transformer_encoder(inputs, head_size, num_heads, ff_dim, dropout=0):
            x = layers.MultiHeadAttention(key_dim=head_size, num_heads=num_heads,
                                          dropout=dropout)(inputs, inputs)
            x = layers.Dropout(dropout)(x)
            x = layers.LayerNormalization(epsilon=1e-6)(x)
            res = x + inputs
            x = layers.Conv1D(filters=ff_dim, kernel_size=1, activation="relu")(res)
            x = layers.Dropout(dropout)(x)
            x = layers.Conv1D(filters=inputs.shape[-1], kernel_size=1)(x)
            x = layers.LayerNormalization(epsilon=1e-6)(x)
            return x + res

        def build_model(input_shape, head_size, num_heads, ff_dim, num_transformer_blocks,
                        mlp_units, dropout=0, mlp_dropout=0):
            inputs = K.Input(shape=input_shape)
            x = inputs
            for _ in range(num_transformer_blocks):
                x = transformer_encoder(x, head_size, num_heads, ff_dim, dropout)
            x = layers.GlobalAveragePooling1D(data_format="channels_last")(x)
            for dim in mlp_units:
                x = layers.Dense(dim, activation="relu")(x)
                x = layers.Dropout(mlp_dropout)(x)
            outputs = layers.Dense(n_classes, activation="softmax")(x)
            return K.Model(inputs, outputs)

        return build_model(x_train.shape[1:], head_size=8, num_heads=2, ff_dim=4,
                           num_transformer_blocks=2, mlp_units=[16])

    km, am = _train_both(build, x_train, y_train, epochs=3, batch_size=32,
                         compile_kw=dict(loss="sparse_categorical_crossentropy",
                                         optimizer="adam",
                                         metrics=["sparse_categorical_accuracy"]))


# --- bidirectional LSTM on IMDB (examples/nlp/bidirectional_lstm_imdb.py) ----------------------

def test_bidirectional_lstm_imdb():
    max_features, maxlen = 60, 20
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 128).astype("float32")
    seqs = [list(rng.integers(1, max_features, rng.integers(5, 30))) for _ in y]
    for s, label in zip(seqs, y):
        if label:
            s[-3:] = [5, 5, 5]                       # a learnable phrase at the end

    def build(K):
        layers = K.layers
        inputs = K.Input(shape=(None,), dtype="int32")
        x = layers.Embedding(max_features, 8)(inputs)
        x = layers.Bidirectional(layers.LSTM(6, return_sequences=True))(x)
        x = layers.Bidirectional(layers.LSTM(6))(x)
        outputs = layers.Dense(1, activation="sigmoid")(x)
        return K.Model(inputs, outputs)

    x_k = keras.preprocessing.sequence.pad_sequences(seqs, maxlen=maxlen)
    x_a = attnlstm.preprocessing.sequence.pad_sequences(seqs, maxlen=maxlen)
    np.testing.assert_array_equal(x_a, x_k)
    # "adam" in the example; SGD here for the Embedding reason given in the Transformer port.
    _train_both(build, x_a, y, epochs=3, batch_size=32,
                compile_kw=dict(optimizer="sgd", loss="binary_crossentropy",
                                metrics=["accuracy"]))
