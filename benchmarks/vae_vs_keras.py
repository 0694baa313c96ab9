"""attnlstm's LSTMVAE (defaults) against the same LSTM-VAE written in Keras 3 (issue #19).

    python -m benchmarks.vae_vs_keras [--seeds 0 1] [--epochs 80] [--data sines|ecg]

Data (``--data sines``, the default): 300 windows (40 steps, stride 4) of two noisy sines
(periods 20 and 33 steps, amplitudes 1 and 0.8, noise sd 0.1); test: 100 fresh normal
windows and 100 windows per injected anomaly (a +3 spike at one step of channel 0; channel 1
stuck from step 15; channel 0 at period 12).
``--data ecg``: the bundled ECG as the demo windows it (``attnlstm.demo.ecg_windows``: averaged
over 8 samples, 367 training windows of 80 steps from the anomaly-free rows); test: every window
of the series, labelled when it overlaps the labelled anomalous segment.
Budget: 80 epochs, batch 32, on the training windows, per seed.

Contenders (all: LSTM(32) encoder -> Dense(8) mean and log-variance -> Sampling -> decoder
LSTM(32) over z repeated 40 times -> Dense(2) per step; loss = mean over the batch of the
squared error summed over steps and features + the KL term):

- ``attnlstm``: ``LSTMVAE(seed=s).fit(x, epochs=80)``, i.e. its defaults (decoder state
  initialised from z, free bits 4 nats per unit, z_log_var bias starting at -6, KL warm-up
  over 10 epochs, Adam from 1e-2 cosine-decayed to 5e-4 over the fit).
- ``keras-same``: the same model and training in Keras 3 (a classic ``Sampling`` layer, a KL
  layer calling ``add_loss`` with free bits and a warm-up weight, ``initial_state`` from z,
  ``bias_initializer=Constant(-6)`` for z_log_var, Adam with Keras' ``CosineDecay(1e-2,
  steps, alpha=0.05)``): the same method in the other framework.
- ``keras-classic``: the classic Keras LSTM-VAE (``RepeatVector(z)`` as the decoder's only
  input, the plain KL with weight 1 from the first step, Adam's default 1e-3).

Printed per contender and seed: reconstruction error of the training windows from ``z_mean`` as
a fraction of their variance (``mean((x_hat - x)^2) / var(x)``), active units (Burda et al.
2016), the window ROC AUC of the reconstruction-error score per anomaly type, and fit seconds.

Measured (``--seeds 0 1``, 2026-12-06, a 2-core VM shared with ~8 other jobs, so the seconds
say little; OPENBLAS_NUM_THREADS=1), sines::

    contender      seed recon/var  AU AUC spike AUC stuck AUC frequ  fit s
    attnlstm          0     0.023   8     1.000     1.000     1.000   14.0
    keras-same        0     0.024   8     1.000     1.000     1.000   79.7
    keras-classic     0     0.627   4     0.990     1.000     0.690  101.9
    attnlstm          1     0.024   8     1.000     1.000     1.000   14.4
    keras-same        1     0.024   8     1.000     1.000     1.000  102.4
    keras-classic     1     0.068   8     1.000     1.000     1.000  134.3

The noise alone is 0.024 of the variance. ECG (``--data ecg``)::

    contender      seed recon/var  AU   AUC ecg  fit s
    attnlstm          0     0.302   8     0.963   39.0
    keras-same        0     0.278   8     0.952  222.9
    keras-classic     0     0.935   1     0.547  189.1
    attnlstm          1     0.380   8     0.962   16.1
    keras-same        1     0.358   8     0.923  162.6
    keras-classic     1     0.934   1     0.546  217.8

attnlstm, seeds 2, 3, 4 on the ECG (``tests/test_vae_ecg.py``): AUC 0.956, 0.957, 0.948.
"""
import argparse
import os
import time

import numpy as np

T, F, N, Z, UNITS = 40, 2, 300, 8, 32
PERIODS, NOISE = (20.0, 33.0), 0.1


def sines(n_windows=N, seed=0, periods=PERIODS, t0=0):
    g = np.random.default_rng(seed)
    n = n_windows * 4 + T
    t = np.arange(n) + t0
    s = np.stack([np.sin(2 * np.pi * t / periods[0]),
                  0.8 * np.sin(2 * np.pi * t / periods[1] + 1.0)], -1)
    s = s + NOISE * g.standard_normal(s.shape)
    return np.stack([s[i:i + T] for i in range(0, n - T + 1, 4)][:n_windows]).astype("float32")


def test_sets():
    """``{anomaly: (windows (200, T, F), labels (200,))}``: 100 normal, then 100 anomalous."""
    normal = sines(100, seed=7, t0=3)
    out = {}
    for kind in ("spike", "stuck", "frequency"):
        bad = sines(100, seed=8, t0=5)
        if kind == "spike":
            bad[:, 20, 0] += 3.0
        elif kind == "stuck":
            bad[:, 15:, 1] = bad[:, 15:16, 1]
        else:
            bad[:, :, 0] = sines(100, seed=8, t0=5, periods=(12.0, 33.0))[:, :, 0]
        out[kind] = (np.concatenate([normal, bad]), np.r_[np.zeros(100), np.ones(100)])
    return out


def roc_auc(labels, scores):
    from attnlstm.demo import roc_auc as auc
    return auc(labels, scores)


def run_attnlstm(x, seed, epochs):
    import warnings
    from attnlstm import LSTMVAE
    vae = LSTMVAE(seed=seed)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vae.fit(x, epochs=epochs, batch_size=32, verbose=0)
    secs = time.perf_counter() - t0
    return (lambda w: vae.reconstruct(w)), (lambda w: vae.encode(w)[0]), secs


def run_keras(x, seed, epochs, classic):
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    from keras import layers as L, ops

    keras.utils.set_random_seed(seed)

    class Sampling(L.Layer):
        """z = z_mean + exp(z_log_var / 2) * eps (the Keras VAE example's layer)."""

        def __init__(self, **kw):
            super().__init__(**kw)
            self.seed_generator = keras.random.SeedGenerator(seed)

        def call(self, inputs):
            m, lv = inputs
            eps = keras.random.normal(ops.shape(m), seed=self.seed_generator)
            return m + ops.exp(0.5 * lv) * eps

    class KLTerm(L.Layer):
        """add_loss(beta * sum_j max(free_bits, mean_b KL_bj)); beta a Variable (warm-up)."""

        def __init__(self, free_bits, **kw):
            super().__init__(**kw)
            self.free_bits = free_bits
            self.beta = keras.Variable(1.0, trainable=False, name="beta")

        def call(self, inputs):
            m, lv = inputs
            kl = -0.5 * (1.0 + lv - ops.square(m) - ops.exp(lv))
            per_dim = ops.mean(kl, axis=0)
            self.add_loss(self.beta * ops.sum(ops.maximum(per_dim, self.free_bits)))
            return m

    x_in = keras.Input(x.shape[1:])
    h = L.LSTM(UNITS)(x_in)
    z_mean = L.Dense(Z)(h)
    log_var_bias = keras.initializers.Constant(0.0 if classic else -6.0)
    z_log_var = L.Dense(Z, bias_initializer=log_var_bias)(h)
    kl = KLTerm(0.0 if classic else 4.0)
    z = Sampling()([kl([z_mean, z_log_var]), z_log_var])
    rep, dec, out = L.RepeatVector(x.shape[1]), L.LSTM(UNITS, return_sequences=True), \
        L.TimeDistributed(L.Dense(x.shape[2]))
    h0, c0 = L.Dense(UNITS, activation="tanh"), L.Dense(UNITS)

    def decode(code):
        state = None if classic else [h0(code), c0(code)]
        return out(dec(rep(code), initial_state=state))

    vae = keras.Model(x_in, decode(z))
    recon = keras.Model(x_in, decode(z_mean))
    encoder = keras.Model(x_in, z_mean)

    def summed_squared_error(y, y_hat):
        return ops.sum(ops.square(y - y_hat), axis=(1, 2))

    steps = -(-len(x) // 32)
    # attnlstm's default: Adam from 1e-2, cosine-decayed to 5% over the fit's steps.
    lr = 1e-3 if classic else keras.optimizers.schedules.CosineDecay(1e-2, epochs * steps,
                                                                       alpha=0.05)
    vae.compile(keras.optimizers.Adam(lr), loss=summed_squared_error)
    callbacks = []
    if not classic:
        class Warmup(keras.callbacks.Callback):
            t = 0

            def on_train_batch_begin(self, batch, logs=None):
                kl.beta.assign(min(1.0, Warmup.t / (10 * steps)))
                Warmup.t += 1
        callbacks.append(Warmup())
    t0 = time.perf_counter()
    vae.fit(x, x, epochs=epochs, batch_size=32, verbose=0, callbacks=callbacks)
    secs = time.perf_counter() - t0
    return (lambda w: recon.predict(w, verbose=0, batch_size=256)), \
        (lambda w: encoder.predict(w, verbose=0, batch_size=256)), secs


def evaluate(name, seed, recon, encode, secs, x, tests):
    from attnlstm.vae import active_units
    frac = float(np.mean((recon(x) - x) ** 2) / x.var())
    au = active_units(encode(x))
    aucs = {}
    for kind, (w, y) in tests.items():
        aucs[kind] = roc_auc(y, np.sum((recon(w) - w) ** 2, axis=(1, 2)))
    return {"contender": name, "seed": seed, "recon_frac": frac, "active_units": au,
            **{f"auc_{k}": v for k, v in aucs.items()}, "fit_s": secs}


def ecg_sets():
    """The demo's ECG windows (attnlstm.demo.ecg_windows): training windows from the
    anomaly-free rows, and ``{"ecg": (every window, its label)}``."""
    from attnlstm import datasets
    from attnlstm.demo import ecg_windows
    _, _, train, windows, labels = ecg_windows(*datasets.load_ecg_anomaly())
    return train, {"ecg": (windows, labels)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--epochs", type=int, default=80)
    p.add_argument("--data", choices=["sines", "ecg"], default="sines")
    p.add_argument("--contenders", nargs="+", default=["attnlstm", "keras-same", "keras-classic"])
    args = p.parse_args(argv)
    x, tests = (sines(), test_sets()) if args.data == "sines" else ecg_sets()
    rows = []
    for seed in args.seeds:
        for name in args.contenders:
            if name == "attnlstm":
                r = run_attnlstm(x, seed, args.epochs)
            else:
                r = run_keras(x, seed, args.epochs, classic=name == "keras-classic")
            rows.append(evaluate(name, seed, *r, x, tests))
            print(_row(rows[-1]), flush=True)
    what = ("100 normal vs 100 anomalous windows" if args.data == "sines" else
            "every window of the ECG, labelled when it overlaps the anomalous segment")
    print(f"\n{args.epochs} epochs, batch 32, {len(x)} windows of {x.shape[1]}x{x.shape[2]}; "
          f"recon = mean squared error of the reconstruction from z_mean / variance of the data "
          f"(lower is better); AUC = window ROC AUC of the reconstruction error, {what}.")
    print(_header(tests))
    for name in args.contenders:
        sel = [r for r in rows if r["contender"] == name]
        mean = {k: float(np.mean([r[k] for r in sel])) for k in sel[0] if k not in
                ("contender", "seed")}
        print(_row({"contender": name, "seed": "mean", **mean}))
    return rows


def _header(tests=None):
    kinds = list(tests or ("spike", "stuck", "frequency"))
    aucs = " ".join(f"{'AUC ' + k[:5]:>9s}" for k in kinds)
    return (f"{'contender':14s} {'seed':>4s} {'recon/var':>9s} {'AU':>3s} {aucs} {'fit s':>6s}")


def _row(r):
    aucs = " ".join(f"{v:9.3f}" for k, v in r.items() if k.startswith("auc_"))
    return (f"{r['contender']:14s} {str(r['seed']):>4s} {r['recon_frac']:9.3f} "
            f"{r['active_units']:3.0f} {aucs} {r['fit_s']:6.1f}")


if __name__ == "__main__":
    main()
