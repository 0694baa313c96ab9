"""LSTMVAE learns with its defaults (issue #19): no posterior collapse on a smooth periodic
two-channel signal, what fit logs and warns, free bits, the KL warm-up schedule, and the
anomaly scores (reconstruction / ELBO / Mahalanobis) and threshold, with their formulas."""
import io
import warnings
from contextlib import redirect_stdout

import numpy as np
import pytest

from attnlstm import LSTMVAE, ShapeError, callbacks, layers
from attnlstm.demo import roc_auc
from attnlstm.vae import ACTIVE_UNIT_THRESHOLD, DEFAULT_KL_WARMUP_EPOCHS, active_units

from test_vae_model import fd_with_losses, latent, rel, run

# windows (N, 40, 2) of two noisy sines of periods 20 and 33 steps (stride 4), the data
# benchmarks/vae_vs_keras.py compares attnlstm and Keras on
from benchmarks.vae_vs_keras import T, sines  # noqa: E402


@pytest.fixture(scope="module", params=[0, 1])
def fitted(request):
    """The defaults, 80 epochs on 300 windows (a few seconds)."""
    x = sines()
    vae = LSTMVAE(seed=request.param)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no collapse warning with the defaults
        hist = vae.fit(x, epochs=80, verbose=0)
    return vae, x, hist


def test_defaults_reconstruct_a_periodic_signal_without_collapse(fitted):
    vae, x, hist = fitted
    assert (vae.latent_dim, vae.encoder_units) == (8, 32)
    mse = float(np.mean((vae.reconstruct(x) - x) ** 2))
    assert mse < 0.1 * float(x.var()), (mse, float(x.var()))
    zm, _ = vae.encode(x)
    assert active_units(zm) >= 2
    h = hist.history
    assert h["active_units"][-1] >= 2 and h["kl"][-1] > 1.0
    assert h["beta"][-1] == vae.beta == 1.0


def test_history_terms_add_up(fitted):
    _, _, hist = fitted
    h = {k: np.array(v) for k, v in hist.history.items()}
    np.testing.assert_allclose(h["reconstruction_loss"] + h["kl_loss"], h["loss"], rtol=1e-5)
    # The KL term as added is floored by free bits and weighted by beta; the plain KL is not.
    vae = LSTMVAE()
    after = slice(DEFAULT_KL_WARMUP_EPOCHS, None)   # full weight after the warm-up
    assert np.all(h["kl_loss"][after] >= vae.beta * vae.free_bits * vae.latent_dim - 1e-6)
    assert np.all(h["kl_loss"][:DEFAULT_KL_WARMUP_EPOCHS] < h["kl_loss"][DEFAULT_KL_WARMUP_EPOCHS])


@pytest.mark.parametrize("anomaly", ["spike", "stuck", "frequency"])
def test_anomaly_scores_find_injected_anomalies(fitted, anomaly):
    vae, x, _ = fitted
    normal = sines(100, seed=7, t0=3)
    bad = sines(100, seed=8, t0=5)
    if anomaly == "spike":
        bad[:, 20, 0] += 3.0
    elif anomaly == "stuck":
        bad[:, 15:, 1] = bad[:, 15:16, 1]
    else:
        bad[:, :, 0] = sines(100, seed=8, t0=5, periods=(12.0, 33.0))[:, :, 0]
    data = np.concatenate([normal, bad])
    labels = np.r_[np.zeros(100), np.ones(100)]
    aucs = {k: roc_auc(labels, vae.anomaly_score(data, kind=k)) for k in ("reconstruction", "elbo")}
    assert min(aucs.values()) >= 0.9, aucs
    # The threshold from held-out normal windows (the training windows' own scores are lower:
    # the model has seen their noise).
    thr = vae.threshold(sines(100, seed=9, t0=1), quantile=0.99)
    flagged = vae.anomaly_score(data) > thr
    assert flagged[:100].mean() <= 0.1 and flagged[100:].mean() >= 0.5


def test_fit_shows_the_terms_in_the_progress_bar():
    x = sines(40)
    buf = io.StringIO()
    with redirect_stdout(buf), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        LSTMVAE(latent_dim=2, encoder_units=4, seed=0).fit(x, epochs=1, verbose=1)
    out = buf.getvalue()
    for key in ("reconstruction_loss", "kl_loss", " kl:", "active_units", "beta"):
        assert key in out, (key, out)


def test_collapse_warns_once():
    # Sixteen copies of one window: no code can vary across them, so no unit is active.
    x = np.repeat(sines(1), 16, axis=0)
    vae = LSTMVAE(latent_dim=4, encoder_units=8, seed=0)
    with pytest.warns(UserWarning, match="posterior collapse") as rec:
        hist = vae.fit(x, epochs=3, batch_size=8, verbose=0)
    assert len([w for w in rec if "posterior collapse" in str(w.message)]) == 1
    assert hist.history["active_units"][-1] == 0


def test_kl_warmup_is_linear_per_batch():
    x = sines(64)
    seen = []
    vae = LSTMVAE(latent_dim=2, encoder_units=4, beta=2.0, seed=3)

    class Spy(callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(vae._kl_layer.beta)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hist = vae.fit(x, epochs=3, batch_size=32, verbose=0, kl_warmup_epochs=2,
                       callbacks=[Spy()])
    # 2 batches per epoch: t / (2 * 2) for t = 0..5, capped at 1.
    np.testing.assert_allclose(seen, 2.0 * np.minimum(1.0, np.arange(6) / 4.0))
    assert hist.history["beta"] == [0.5, 1.5, 2.0]   # the weight of each epoch's last batch
    assert vae.beta == 2.0 and vae._kl_layer.beta == 2.0
    with pytest.raises(ValueError, match="kl_warmup_epochs"):
        vae.fit(x, epochs=1, verbose=0, kl_warmup_epochs=-1)


def test_free_bits_value_and_gradient():
    m, lv = latent(b=4, z=3, seed=5)
    m[:, 0] *= 0.05  # dimension 0 below the floor: no gradient from the KL term
    lv[:, 0] = -0.01
    k = layers.KLDivergence(beta=0.7, free_bits=0.2, dtype="float64")
    _, ctx = run(k, [[m, lv]])
    per_dim = np.mean(-0.5 * (1 + lv - m ** 2 - np.exp(lv)), axis=0)
    assert per_dim[0] < 0.2 < per_dim[1:].min()
    assert k.losses == [pytest.approx(0.7 * np.maximum(per_dim, 0.2).sum(), rel=1e-12)]
    R = [np.random.default_rng(k).normal(size=m.shape) for k in (1, 2)]
    g = k.backward(ctx, R)
    num = fd_with_losses(k, [m, lv], R)
    assert rel(g.inputs[0], num[0]) < 1e-6 and rel(g.inputs[1], num[1]) < 1e-6
    np.testing.assert_allclose(g.inputs[0][:, 0], R[0][:, 0])   # floor: only the outer grad
    np.testing.assert_allclose(k.last_kl, -0.5 * np.sum(1 + lv - m ** 2 - np.exp(lv), -1),
                               rtol=1e-6)
    with pytest.raises(ValueError, match="free_bits"):
        layers.KLDivergence(free_bits=-0.1)
    with pytest.raises(ValueError, match="free_bits"):
        LSTMVAE(free_bits=float("nan"))


def test_active_units_definition():
    g = np.random.default_rng(0)
    zm = np.c_[g.normal(size=50), 0.05 * g.normal(size=50), np.zeros(50)]
    assert active_units(zm) == 1          # variances ~1, ~0.0025, 0 against 0.01
    assert active_units(zm, threshold=1e-3) == 2
    assert ACTIVE_UNIT_THRESHOLD == 0.01
    assert active_units(zm[:1]) == 0
    with pytest.raises(ShapeError, match="z_mean"):
        active_units(np.zeros(5))


def test_anomaly_score_formulas():
    """Each kind against its formula, computed here from encode/decode."""
    x = sines(30, seed=3)
    vae = LSTMVAE(latent_dim=3, encoder_units=6, seed=2, dtype="float64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vae.fit(x, epochs=2, verbose=0)
    x64 = x.astype(np.float64)
    mu, lv = vae.encode(x)
    rec = ((vae.decode(mu, T) - x64) ** 2).sum(axis=(1, 2))
    np.testing.assert_allclose(vae.anomaly_score(x), rec, rtol=1e-10)
    # ELBO: K sampled codes from the model's generator, plus the KL.
    K = 3
    state = vae._rng.bit_generator.state
    got = vae.anomaly_score(x, kind="elbo", n_samples=K)
    vae._rng.bit_generator.state = state
    want = np.zeros(len(x))
    for _ in range(K):
        eps = vae._rng.standard_normal(mu.shape)
        want += ((vae.decode(mu + np.exp(0.5 * lv) * eps, T) - x64) ** 2).sum(axis=(1, 2)) / K
    want += -0.5 * np.sum(1 + lv - mu ** 2 - np.exp(lv), axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-9)
    # Per step: sums to the per-sequence score (KL spread over the steps).
    vae._rng.bit_generator.state = state
    per = vae.anomaly_score(x, kind="elbo", n_samples=K, per_step=True)
    assert per.shape == (30, T)
    np.testing.assert_allclose(per.sum(axis=1), got, rtol=1e-9)
    # Mahalanobis from the training codes' mean and covariance.
    np.testing.assert_allclose(vae.latent_mean_, mu.mean(0), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(vae.latent_cov_, np.cov(mu, rowvar=False), rtol=1e-6, atol=1e-12)
    d = mu - mu.mean(0)
    want = np.einsum("nz,zk,nk->n", d, np.linalg.inv(np.cov(mu, rowvar=False)), d)
    np.testing.assert_allclose(vae.anomaly_score(x, kind="mahalanobis"), want, rtol=1e-5)
    # Variable lengths: mean reduction divides by each length.
    seqs = [x[0, :25], x[1], x[2, :10]]
    s_sum = vae.anomaly_score(seqs, kind="elbo", n_samples=1)
    assert s_sum.shape == (3,)
    per = vae.anomaly_score(seqs, per_step=True)
    assert [p.shape for p in per] == [(25,), (40,), (10,)]
    np.testing.assert_allclose(vae.anomaly_score(seqs, reduction="mean") * [25, 40, 10],
                               vae.anomaly_score(seqs), rtol=1e-10)


def test_anomaly_score_and_threshold_errors():
    vae = LSTMVAE(latent_dim=2, encoder_units=4, seed=0)
    vae.build(2)
    x = sines(4)
    with pytest.raises(ValueError, match="`kind` must be one of"):
        vae.anomaly_score(x, kind="likelihood")
    with pytest.raises(ValueError, match="call fit"):
        vae.anomaly_score(x, kind="mahalanobis")
    vae.latent_mean_, vae.latent_cov_ = np.zeros(2), np.eye(2)
    with pytest.raises(ValueError, match="per_step=True needs"):
        vae.anomaly_score(x, kind="mahalanobis", per_step=True)
    with pytest.raises(ValueError, match="n_samples"):
        vae.anomaly_score(x, kind="mahalanobis", n_samples=4)
    with pytest.raises(ValueError, match="reduction"):
        vae.anomaly_score(x, reduction="max")
    scores = np.arange(101.0)
    assert vae.threshold(scores, quantile=0.9) == pytest.approx(90.0)
    assert vae.threshold([np.arange(50.0), np.arange(50.0, 101.0)], 0.5) == pytest.approx(50.0)
    assert vae.threshold(x, 1.0) == pytest.approx(vae.anomaly_score(x).max())
    with pytest.raises(ValueError, match="quantile"):
        vae.threshold(scores, quantile=99)
    with pytest.raises(ValueError, match="NaN"):
        vae.threshold(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="learning_rate"):
        from attnlstm import optimizers
        vae.fit(x, verbose=0, optimizer=optimizers.Adam(), learning_rate=0.1)
    with pytest.raises(ValueError, match="decoder_initial_state"):
        LSTMVAE(decoder_initial_state="yes")


def test_initial_log_var_sets_the_bias_of_z_log_var():
    vae = LSTMVAE(latent_dim=3, encoder_units=4, seed=0, features=2)
    lv_layer = next(l for l in vae.model.layers if l.name.endswith("z_log_var"))
    np.testing.assert_array_equal(lv_layer.bias.value, np.full(3, -6.0, np.float32))
    _, lv = vae.encode(sines(5))
    assert np.all(lv < -4.0)     # nearly noise-free codes at the start
    vae = LSTMVAE(latent_dim=3, encoder_units=4, seed=0, features=2, initial_log_var=0.0)
    lv_layer = next(l for l in vae.model.layers if l.name.endswith("z_log_var"))
    np.testing.assert_array_equal(lv_layer.bias.value, np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="initial_log_var"):
        LSTMVAE(initial_log_var=float("inf"))


def test_default_learning_rate_is_a_cosine_decay_over_each_fit():
    from attnlstm import optimizers
    from attnlstm.vae import DEFAULT_LEARNING_RATE, DEFAULT_LR_ALPHA
    x = sines(40)
    vae = LSTMVAE(latent_dim=2, encoder_units=4, seed=0)
    rates = []

    class Spy(callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            rates.append(float(vae.model.optimizer.learning_rate))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vae.fit(x, epochs=3, batch_size=16, verbose=0, callbacks=[Spy()])
    # 40 windows, batch 16: 3 steps per epoch, 9 in all; lr(t) = peak * ((1 - a) c(t) + a).
    t = np.arange(9)
    want = DEFAULT_LEARNING_RATE * ((1 - DEFAULT_LR_ALPHA) * 0.5 * (1 + np.cos(np.pi * t / 9))
                                    + DEFAULT_LR_ALPHA)
    np.testing.assert_allclose(rates, want, rtol=1e-6)
    assert vae.model.optimizer.iterations == 9
    # A second fit starts a fresh cycle (a warm restart) from learning_rate.
    rates.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vae.fit(x, epochs=1, batch_size=40, verbose=0, callbacks=[Spy()], learning_rate=0.02)
    assert rates == [pytest.approx(0.02)] and vae.model.optimizer.iterations == 1
    # "constant": the rate stays and the optimizer carries over between calls.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vae.fit(x, epochs=2, batch_size=20, verbose=0, learning_rate=0.005,
                lr_schedule="constant")
        opt = vae.model.optimizer
        vae.fit(x, epochs=1, batch_size=20, verbose=0, lr_schedule="constant")
    assert vae.model.optimizer is opt and opt.iterations == 6
    assert float(opt.learning_rate) == pytest.approx(0.005)
    # An optimizer instance is used as given.
    adam = optimizers.Adam(1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vae.fit(x, epochs=1, batch_size=40, verbose=0, optimizer=adam)
    assert vae.model.optimizer is adam and float(adam.learning_rate) == pytest.approx(1e-3)
    with pytest.raises(ValueError, match="lr_schedule"):
        vae.fit(x, epochs=1, verbose=0, lr_schedule="linear")
