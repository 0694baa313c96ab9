"""Tests of the VAE layers (layers.Sampling, layers.KLDivergence), the reconstruction loss and
attnlstm.LSTMVAE (issue #5): finite differences, the classic functional Keras-style VAE,
variable-length sequences (padding must not change anything), shapes and shape errors."""
import os
import sys
import warnings

import numpy as np
import pytest

import attnlstm
from attnlstm import Input, Model, ShapeError, layers, ops
from attnlstm.vae import (LSTMVAE, ReconstructionTerm, SequenceReconstructionLoss,
                          negative_elbo)

sys.path.insert(0, os.path.dirname(__file__))
from grad_check import check_layer, run  # noqa: E402


def gen(seed=0):
    return np.random.default_rng(seed)


def latent(b=3, z=4, seed=0):
    g = gen(seed)
    return g.normal(size=(b, z)), g.normal(scale=0.7, size=(b, z))


def var_seqs(lengths=(5, 8, 3, 6), f=2, seed=1, dtype=np.float32):
    g = gen(seed)
    return [g.normal(size=(t, f)).astype(dtype) for t in lengths]


def fd_with_losses(layer, inputs, R, eps=1e-6, reset=None):
    """Central differences of ``<R, outputs> + sum(layer.losses)`` w.r.t. each input array."""
    def loss():
        if reset:
            reset()
        out, _ = run(layer, [inputs])
        outs = out if isinstance(out, list) else [out]
        return sum(float(np.sum(o * r)) for o, r in zip(outs, R)) + sum(layer.losses)
    num = []
    for a in inputs:
        g = np.zeros_like(a)
        flat, gf = a.reshape(-1), g.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            lp = loss()
            flat[i] = old - eps
            lm = loss()
            flat[i] = old
            gf[i] = (lp - lm) / (2 * eps)
        num.append(g)
    return num


def rel(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12))


# -- Sampling ----------------------------------------------------------------------------------

def test_sampling_matches_ops_and_is_seeded():
    m, lv = latent()
    s = layers.Sampling(seed=5, dtype="float64")
    z = s([m, lv])
    eps = np.random.default_rng(5).standard_normal(m.shape)
    np.testing.assert_allclose(z, m + np.exp(0.5 * lv) * eps, rtol=1e-12)
    s.reset_seed()
    np.testing.assert_array_equal(s([m, lv]), z)
    # Keras' example layer samples in inference too: a second call draws new noise.
    assert not np.allclose(s([m, lv]), z)


def test_sampling_gradient_finite_differences():
    m, lv = latent()
    s = layers.Sampling(seed=3, dtype="float64")
    errs = check_layer(s, [[m, lv]], reset_rng=s.reset_seed)
    assert set(errs) == {"inputs[0]", "inputs[1]"}


def test_sampling_shape_errors():
    x = Input(shape=(16,))
    zm = layers.Dense(2)(x)
    zlv = layers.Dense(3)(x)
    with pytest.raises(ShapeError, match=r"z_mean \(None, 2\) and z_log_var \(None, 3\).*"
                                         r"\n.*same number of units \(latent_dim\)"):
        layers.Sampling()([zm, zlv])
    seq = layers.LSTM(4, return_sequences=True)(Input(shape=(5, 3)))
    with pytest.raises(ShapeError, match=r"`z_mean` must have shape \(batch, latent_dim\), got "
                                         r"\(None, 5, 4\).*\n.*return_sequences=False"):
        layers.Sampling()([seq, seq])
    with pytest.raises(ShapeError, match=r"list \[z_mean, z_log_var\]"):
        layers.Sampling()(zm)
    with pytest.raises(ShapeError, match=r"same shape"):
        layers.Sampling()([np.zeros((4, 2)), np.zeros((3, 2))])


# -- KLDivergence ------------------------------------------------------------------------------

def test_kl_layer_adds_named_loss_and_passes_inputs_through():
    m, lv = latent()
    k = layers.KLDivergence(beta=0.5, dtype="float64")
    out = k([m, lv])
    np.testing.assert_array_equal(out[0], m)
    np.testing.assert_array_equal(out[1], lv)
    want = 0.5 * np.mean(-0.5 * np.sum(1 + lv - m ** 2 - np.exp(lv), axis=-1))
    assert k.losses == [pytest.approx(want, rel=1e-12)]
    assert k._named_losses == {"kl_loss": pytest.approx(want, rel=1e-12)}


@pytest.mark.parametrize("beta", [1.0, 0.3])
def test_kl_layer_gradient_includes_the_added_loss(beta):
    m, lv = latent(seed=2)
    k = layers.KLDivergence(beta=beta, dtype="float64")
    out, ctx = run(k, [[m, lv]])
    R = [gen(9).normal(size=m.shape), gen(10).normal(size=m.shape)]
    g = k.backward(ctx, R)
    num = fd_with_losses(k, [m, lv], R)
    assert rel(g.inputs[0], num[0]) < 1e-6
    assert rel(g.inputs[1], num[1]) < 1e-6


def test_kl_layer_beta_validation():
    with pytest.raises(ValueError, match="beta"):
        layers.KLDivergence(beta=-1.0)


# -- the reconstruction loss ---------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["mse", "mae"])
@pytest.mark.parametrize("weighted", [False, True])
def test_reconstruction_loss_value_and_gradient(kind, weighted):
    g = gen(4)
    x, xh = g.normal(size=(3, 5, 2)), g.normal(size=(3, 5, 2))
    mask = np.ones((3, 5), bool)
    mask[0, 3:] = False
    mask[2, 1] = False
    w = g.uniform(0.5, 2, size=3) if weighted else None
    loss = SequenceReconstructionLoss(kind)
    e = (xh - x) ** 2 if kind == "mse" else np.abs(xh - x)
    per = (e.sum(-1) * mask).sum(-1)
    want = np.mean(per * (w if weighted else 1.0))
    value, d = loss.value_and_grad(x, xh, sample_weight=w, mask=mask)
    assert value == pytest.approx(want, rel=1e-12)
    assert loss(x, xh, sample_weight=w, mask=mask) == pytest.approx(want, rel=1e-12)
    num = np.zeros_like(xh)
    for i in range(xh.size):
        old = xh.flat[i]
        xh.flat[i] = old + 1e-6
        lp = loss(x, xh, w, mask)
        xh.flat[i] = old - 1e-6
        lm = loss(x, xh, w, mask)
        xh.flat[i] = old
        num.flat[i] = (lp - lm) / 2e-6
    assert rel(d, num) < 1e-6
    assert np.all(d[~mask] == 0)


def test_reconstruction_loss_shape_errors():
    loss = SequenceReconstructionLoss()
    x = np.zeros((4, 10, 3))
    with pytest.raises(ShapeError, match=r"x_hat.*\(batch, timesteps, features\) = \(4, 10, 3\), "
                                         r"got \(4, 1, 3\).*\n.*reconstructs 1 steps but the "
                                         r"input has 10.*RepeatVector"):
        loss.value_and_grad(x, np.zeros((4, 1, 3)))
    with pytest.raises(ShapeError, match=r"outputs 2 features per step but the input has 3"):
        loss.value_and_grad(x, np.zeros((4, 10, 2)))
    with pytest.raises(ShapeError, match=r"`sample_weight` must have shape \(4,\), got \(4, 10\)"
                                         r".*\n.*one number per sequence"):
        loss.value_and_grad(x, x, sample_weight=np.ones((4, 10)))
    with pytest.raises(ShapeError, match=r"mask.*\(4, 10\), got \(4, 10, 3\)\.\n.*any\(axis=-1\)"):
        loss.value_and_grad(x, x, mask=np.ones((4, 10, 3), bool))


def test_negative_elbo_and_its_shape_errors():
    rec, kl = np.array([1.0, 2.0]), np.array([0.5, 0.25])
    assert negative_elbo(rec, kl, beta=2.0) == pytest.approx(np.mean(rec + 2 * kl))
    with pytest.raises(ShapeError, match=r"`reconstruction` must have the shape of `kl`, "
                                         r"\(batch,\) = \(2,\), got \(2, 7\).*\n.*summed over the "
                                         r"time steps and features.*axis=\(1,\)"):
        negative_elbo(np.zeros((2, 7)), kl)
    with pytest.raises(ShapeError, match=r"`kl` must have shape \(batch,\), got \(2, 3\)\.\n.*"
                                         r"latent dimensions"):
        negative_elbo(rec, np.zeros((2, 3)))


# -- the classic functional LSTM-VAE -------------------------------------------------------------

def classic_vae(T=12, F=2, latent_dim=3, units=8, seed=0, beta=1.0):
    x = Input(shape=(T, F))
    h = layers.LSTM(units)(x)
    z_mean = layers.Dense(latent_dim)(h)
    z_log_var = layers.Dense(latent_dim)(h)
    z_mean, z_log_var = layers.KLDivergence(beta=beta)([z_mean, z_log_var])
    z = layers.Sampling(seed=seed)([z_mean, z_log_var])
    h = layers.RepeatVector(T)(z)
    h = layers.LSTM(units, return_sequences=True)(h)
    x_hat = layers.TimeDistributed(layers.Dense(F))(h)
    return Model(x, x_hat)


def sines(n=64, T=12, F=2, seed=0):
    g = gen(seed)
    t = np.arange(T)[None, :, None]
    phase = g.uniform(0, 2 * np.pi, size=(n, 1, F))
    return np.sin(0.6 * t + phase).astype(np.float32)


def test_classic_functional_vae_trains():
    attnlstm.backend.set_random_seed(0)
    x = sines(n=128)
    vae = classic_vae(units=16)
    vae.compile(optimizer=attnlstm.optimizers.Adam(learning_rate=0.01),
                loss=SequenceReconstructionLoss())
    hist = vae.fit(x, x, batch_size=8, epochs=20, verbose=0)
    loss = hist.history["loss"]
    assert "kl_loss" in hist.history
    assert loss[-1] < 0.9 * loss[0]


def test_classic_functional_vae_gradients_finite_differences():
    attnlstm.backend.set_random_seed(1)
    T, F = 4, 2
    x = Input(shape=(T, F), dtype="float64")
    h = layers.LSTM(3, dtype="float64")(x)
    zm = layers.Dense(2, dtype="float64")(h)
    zlv = layers.Dense(2, dtype="float64")(h)
    zm, zlv = layers.KLDivergence(beta=0.7, dtype="float64")([zm, zlv])
    sampler = layers.Sampling(seed=2, dtype="float64")
    z = sampler([zm, zlv])
    rep = layers.RepeatVector(T, dtype="float64")(z)
    y = layers.LSTM(3, return_sequences=True, dtype="float64")(rep)
    y = layers.Dense(F, dtype="float64")(y)
    model = Model(x, y)
    data = gen(3).normal(size=(3, T, F))
    loss = SequenceReconstructionLoss()

    def total():
        sampler.reset_seed()
        out, tape = model.forward(data, training=True)
        v, d = loss.value_and_grad(data, out)
        return v + sum(model._losses), tape, d

    value, tape, d = total()
    grads = model.backward(tape, d, need_input_grad=False).weights
    for w in model.trainable_weights:
        flat = w.value.reshape(-1)
        for i in range(min(flat.size, 6)):
            old = flat[i]
            flat[i] = old + 1e-6
            lp = total()[0]
            flat[i] = old - 1e-6
            lm = total()[0]
            flat[i] = old
            num = (lp - lm) / 2e-6
            assert abs(grads[w].reshape(-1)[i] - num) <= 1e-6 * max(1.0, abs(num)), w.path


def test_reconstruction_term_layer_errors_at_build_time():
    x = Input(shape=(None, 3))
    h = layers.LSTM(4)(x)
    short = layers.TimeDistributed(layers.Dense(3))(
        layers.LSTM(4, return_sequences=True)(layers.RepeatVector(1)(h)))
    # Input(shape=(None, F)) with RepeatVector(1) reconstructs one step: not silently.
    fixed = Input(shape=(10, 3))
    h2 = layers.LSTM(4)(fixed)
    short2 = layers.TimeDistributed(layers.Dense(3))(
        layers.LSTM(4, return_sequences=True)(layers.RepeatVector(1)(h2)))
    with pytest.raises(ShapeError, match=r"reconstructs 1 steps but the input has 10"):
        ReconstructionTerm()([fixed, short2])
    wrong_f = layers.TimeDistributed(layers.Dense(2))(
        layers.LSTM(4, return_sequences=True)(layers.RepeatVector(10)(h2)))
    with pytest.raises(ShapeError, match=r"outputs 2 features per step but the input has 3"):
        ReconstructionTerm()([fixed, wrong_f])
    # Unknown length on both sides: checked on data.
    ReconstructionTerm()([x, short])


# -- LSTMVAE -------------------------------------------------------------------------------------

def test_lstmvae_api_shapes_and_history():
    xs = var_seqs()
    vae = LSTMVAE(latent_dim=3, encoder_units=8, decoder_units=6, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # two epochs on four sequences: collapse is expected
        hist = vae.fit(xs, epochs=2, batch_size=2, verbose=0, validation_data=var_seqs(seed=5))
    assert set(hist.history) == {"loss", "reconstruction_loss", "kl_loss", "kl",
                                 "active_units", "beta", "val_loss",
                                 "val_reconstruction_loss", "val_kl_loss"}
    h = hist.history
    np.testing.assert_allclose(np.array(h["reconstruction_loss"]) + np.array(h["kl_loss"]),
                               h["loss"], rtol=1e-5)
    zm, zlv = vae.encode(xs)
    assert zm.shape == zlv.shape == (4, 3)
    rec = vae.reconstruct(xs)
    assert [r.shape for r in rec] == [s.shape for s in xs]
    assert vae.decode(zm, 7).shape == (4, 7, 2)
    assert [d.shape for d in vae.decode(zm, [2, 3, 4, 5])] == [(2, 2), (3, 2), (4, 2), (5, 2)]
    assert vae.sample(5, 9).shape == (5, 9, 2)
    assert vae.anomaly_score(xs).shape == (4,)
    assert vae.anomaly_score(xs, n_samples=3).shape == (4,)
    per = vae.anomaly_score(xs, per_step=True)
    assert [p.shape for p in per] == [(5,), (8,), (3,), (6,)]
    np.testing.assert_allclose([p.sum() for p in per], vae.anomaly_score(xs), rtol=1e-6)
    np.testing.assert_allclose(vae.anomaly_score(xs, reduction="mean") * [5, 8, 3, 6],
                               vae.anomaly_score(xs), rtol=1e-6)
    assert isinstance(vae.encoder, Model) and isinstance(vae.decoder, Model)
    lines = []
    vae.summary(print_fn=lines.append)
    assert any("encoder_lstm (LSTM)" in ln for ln in lines)
    w = vae.get_weights()
    assert len(w) == 3 + 2 + 2 + 2 + 2 + 3 + 2   # enc LSTM, mean, log-var, h0, c0, dec LSTM, out
    vae.set_weights([a * 0 for a in w])
    assert all(np.all(a == 0) for a in vae.get_weights())


def test_lstmvae_anomaly_score_is_the_reconstruction_error_of_the_mean():
    xs = var_seqs(seed=2)
    vae = LSTMVAE(2, 5, seed=1)
    vae.build(2)
    rec = vae.reconstruct(xs)
    want = [float(((r - s.astype(np.float64)) ** 2).sum()) for r, s in zip(rec, xs)]
    np.testing.assert_allclose(vae.anomaly_score(xs), want, rtol=1e-5)


@pytest.mark.filterwarnings("ignore:.*posterior collapse")  # 2 epochs on 4 sequences
def test_lstmvae_is_reproducible_with_a_seed():
    xs = var_seqs(seed=3)
    a = LSTMVAE(2, 6, seed=11)
    b = LSTMVAE(2, 6, seed=11)
    ha = a.fit(xs, epochs=2, batch_size=2, verbose=0).history
    hb = b.fit(xs, epochs=2, batch_size=2, verbose=0).history
    assert ha == hb
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(u, v)


def test_lstmvae_padding_changes_nothing():
    """The same sequences padded to different lengths (and with garbage in the padding): the
    same loss terms, the same latent codes and the same reconstruction of the real steps."""
    xs = var_seqs(dtype=np.float64)
    vae = LSTMVAE(3, 6, seed=4, dtype="float64")
    vae.build(2)
    lengths = [len(s) for s in xs]
    results = []
    for T, fill in ((8, 0.0), (13, 7.5), (20, np.nan)):
        x = np.full((4, T, 2), fill)
        mask = np.zeros((4, T), bool)
        for i, s in enumerate(xs):
            x[i, :len(s)] = s
            mask[i, :len(s)] = True
        vae._sampler.reset_seed(0)
        rec, kl = vae.loss_terms(x, mask=mask)
        zm, zlv = vae.encode(x, mask=mask)
        xr = vae.reconstruct(x, mask=mask)
        sc = vae.anomaly_score(x, mask=mask)
        results.append((rec, kl, zm, zlv, [xr[i, :n] for i, n in enumerate(lengths)], sc))
        assert np.all(xr[~mask] == 0)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            if isinstance(a, list):
                for u, v in zip(a, b):
                    np.testing.assert_allclose(u, v, rtol=1e-12, atol=1e-14)
            else:
                np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    # The list form is the same as the padded form.
    vae._sampler.reset_seed(0)
    rec_l, kl_l = vae.loss_terms(xs)
    np.testing.assert_allclose(rec_l, results[0][0], rtol=1e-12)
    np.testing.assert_allclose(vae.anomaly_score(xs), results[0][5], rtol=1e-12)


def test_lstmvae_training_gradient_ignores_padding():
    """One training step on the list gives the same gradients padded to 8 or to 15 steps."""
    xs = var_seqs(dtype=np.float64, seed=6)
    grads = []
    for T in (8, 15):
        vae = LSTMVAE(2, 4, seed=9, dtype="float64")
        vae.build(2)
        x = np.full((4, T, 2), 3.0)
        m = np.zeros((4, T), bool)
        for i, s in enumerate(xs):
            x[i, :len(s)] = s
            m[i, :len(s)] = True
        vae._sampler.reset_seed(1)
        out, tape = vae.model.forward(vae._inputs(x, m), training=True)
        g = vae.model.backward(tape, None, need_input_grad=False).weights
        grads.append([g[w] for w in vae.model.trainable_weights])
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


def test_lstmvae_model_gradient_finite_differences():
    xs = var_seqs(dtype=np.float64, seed=7, lengths=(3, 5, 2))
    vae = LSTMVAE(2, 3, beta=0.6, seed=2, dtype="float64")
    xp, m, _ = vae._prepare(xs)
    inputs = vae._inputs(xp, m)

    def total():
        vae._sampler.reset_seed(5)
        _, tape = vae.model.forward(inputs, training=True)
        return sum(vae.model._losses), tape

    _, tape = total()
    grads = vae.model.backward(tape, None, need_input_grad=False).weights
    for w in vae.model.trainable_weights:
        flat = w.value.reshape(-1)
        for i in range(min(flat.size, 5)):
            old = flat[i]
            flat[i] = old + 1e-6
            lp = total()[0]
            flat[i] = old - 1e-6
            lm = total()[0]
            flat[i] = old
            num = (lp - lm) / 2e-6
            assert abs(grads[w].reshape(-1)[i] - num) <= 1e-6 * max(1.0, abs(num)), w.path


def test_lstmvae_kl_warmup():
    xs = var_seqs(seed=8)
    vae = LSTMVAE(2, 4, beta=2.0, seed=3)
    seen = []

    class Spy(attnlstm.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(vae._kl_layer.beta)

    hist = vae.fit(xs, epochs=4, batch_size=4, verbose=0, kl_warmup_epochs=2,
                   callbacks=[Spy()])
    assert seen == [0.0, 1.0, 2.0, 2.0]
    assert hist.history["kl_loss"][0] == 0.0
    assert vae.beta == 2.0 and vae._kl_layer.beta == 2.0


def test_lstmvae_shape_errors():
    vae = LSTMVAE(3, 4, seed=0)
    with pytest.raises(ValueError, match="not built yet"):
        vae.encoder
    vae.build(2)
    with pytest.raises(ShapeError, match=r"`x` must have shape \(batch, timesteps, 2\), got "
                                         r"\(5, 7, 3\).*\n.*built for 2 features"):
        vae.encode(np.zeros((5, 7, 3)))
    with pytest.raises(ShapeError, match=r"`x` must have shape.*got \(5, 7\).*\n.*x\[\.\.\., None\]"):
        vae.encode(np.zeros((5, 7)))
    with pytest.raises(ShapeError, match=r"`x\[1\]` must have shape \(T_i, 2\), got \(4, 3\)"):
        vae.encode([np.zeros((3, 2)), np.zeros((4, 3))])
    with pytest.raises(ShapeError, match=r"`x\[0\]` must have shape \(T_i, features\), got \(6,\)"
                                         r".*\n.*s\[:, None\]"):
        LSTMVAE(2, 3).encode([np.zeros(6)])
    with pytest.raises(ShapeError, match=r"`mask` must have shape \(5, 7\), got \(5, 7, 2\)\.\n.*"
                                         r"any\(axis=-1\)"):
        vae.encode(np.zeros((5, 7, 2)), mask=np.ones((5, 7, 2), bool))
    with pytest.raises(ShapeError, match=r"`z` must have shape \(batch, 3\), got \(4, 2\).*\n.*"
                                         r"latent_dim = 3"):
        vae.decode(np.zeros((4, 2)), 5)
    with pytest.raises(ShapeError, match=r"`z`.*got \(3,\)\.\n.*z\[None, :\]"):
        vae.decode(np.zeros(3), 5)
    with pytest.raises(ShapeError, match=r"`timesteps` must have shape \(4,\), got \(2,\)"):
        vae.decode(np.zeros((4, 3)), np.array([3, 4]))
    with pytest.raises(ValueError, match="n_samples"):
        vae.anomaly_score(np.zeros((2, 3, 2)), n_samples=0)
