"""One LSTM-VAE training step (forward, backward, Adam update), all contenders with the same weights.

Model: encoder LSTM(H) over x (B,T,D) -> last h -> Dense(Z) z_mean, Dense(Z) z_log_var;
z = z_mean + exp(z_log_var / 2) * eps (eps is an input, so every contender sees the same noise);
RepeatVector(T) -> decoder LSTM(H, return_sequences) -> Dense(D) (per step) -> x_hat.
loss = mean((x - x_hat)^2) + mean_b( -1/2 Σ_z (1 + z_log_var - z_mean^2 - exp(z_log_var)) ).
Adam(learning_rate=1e-3). Every callable returns [loss before the update].
"""
import numpy as np

from .common import NOT_YET, NotAvailable, attnlstm, keras, lstm_bwd_flops, lstm_fwd_flops, torch

OPS = {"vae_step": "LSTM-VAE training step"}
Z = 16
LR = 1e-3
# get_weights() order of the Keras model below
WNAMES = ("enc_W", "enc_U", "enc_b", "mean_W", "mean_b", "lv_W", "lv_b",
          "dec_W", "dec_U", "dec_b", "out_W", "out_b")


def make_data(shape, dtype, seed=0):
    B, T, D, H = shape["B"], shape["T"], shape["D"], shape["H"]
    rng = np.random.default_rng(seed)
    s = 1.0 / np.sqrt(H)
    u = lambda *sh: rng.uniform(-s, s, sh)  # noqa: E731
    d = {"x": rng.standard_normal((B, T, D)), "eps": rng.standard_normal((B, Z)),
         "enc_W": u(D, 4 * H), "enc_U": u(H, 4 * H), "enc_b": u(4 * H),
         "mean_W": u(H, Z), "mean_b": u(Z), "lv_W": u(H, Z), "lv_b": u(Z),
         "dec_W": u(Z, 4 * H), "dec_U": u(H, 4 * H), "dec_b": u(4 * H),
         "out_W": u(H, D), "out_b": u(D)}
    return {k: np.ascontiguousarray(v, dtype=dtype) for k, v in d.items()}


def flops(op, shape):
    B, T, D, H = shape["B"], shape["T"], shape["D"], shape["H"]
    lstm = (lstm_fwd_flops(B, T, D, H) + lstm_bwd_flops(B, T, D, H)
            + lstm_fwd_flops(B, T, Z, H) + lstm_bwd_flops(B, T, Z, H))
    return lstm + 3 * 2 * B * T * H * D   # + the output Dense, forward and backward


def setup_attnlstm(op, d):
    al = attnlstm()
    if not hasattr(al, "LSTMVAE"):
        raise NotAvailable(NOT_YET)
    # The LSTMVAE API is not written yet: this adapter follows the Keras-like plan (constructor
    # with units/latent_dim, Keras weight order, train_on_batch); update it when the class lands.
    B, T, D = d["x"].shape
    H = d["enc_U"].shape[0]
    vae = al.LSTMVAE(timesteps=T, features=D, units=H, latent_dim=Z)
    vae.set_weights([d[n] for n in WNAMES])
    vae.compile(optimizer="adam")
    x, eps = d["x"], d["eps"]
    return lambda: [vae.train_on_batch(x, eps=eps)]


def setup_torch(op, d):
    t = torch()
    nn = t.nn
    B, T, D = d["x"].shape
    H = d["enc_U"].shape[0]
    dt = t.float64 if d["x"].dtype == np.float64 else t.float32

    class VAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.LSTM(D, H, batch_first=True)
            self.mean = nn.Linear(H, Z)
            self.lv = nn.Linear(H, Z)
            self.dec = nn.LSTM(Z, H, batch_first=True)
            self.out = nn.Linear(H, D)

        def forward(self, x, eps):
            h = self.enc(x)[0][:, -1]
            zm, zl = self.mean(h), self.lv(h)
            z = zm + t.exp(0.5 * zl) * eps
            xh = self.out(self.dec(z[:, None, :].expand(-1, x.shape[1], -1))[0])
            kl = (-0.5 * (1 + zl - zm ** 2 - t.exp(zl)).sum(-1)).mean()
            return ((x - xh) ** 2).mean() + kl

    m = VAE().to(dt)
    T_ = lambda a: t.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    with t.no_grad():
        for lstm, p in ((m.enc, "enc"), (m.dec, "dec")):
            lstm.weight_ih_l0.copy_(T_(d[p + "_W"].T))
            lstm.weight_hh_l0.copy_(T_(d[p + "_U"].T))
            lstm.bias_ih_l0.copy_(T_(d[p + "_b"]))
            lstm.bias_hh_l0.zero_()
        for lin, p in ((m.mean, "mean"), (m.lv, "lv"), (m.out, "out")):
            lin.weight.copy_(T_(d[p + "_W"].T))
            lin.bias.copy_(T_(d[p + "_b"]))
    opt = t.optim.Adam(m.parameters(), lr=LR)
    x, eps = T_(d["x"]), T_(d["eps"])

    def fn():
        opt.zero_grad(set_to_none=True)
        loss = m(x, eps)
        loss.backward()
        opt.step()
        return [loss.detach()]
    return fn


def _keras_model(d):
    k, tf = keras()
    B, T, D = d["x"].shape
    H = d["enc_U"].shape[0]
    dt = "float64" if d["x"].dtype == np.float64 else "float32"
    L = k.layers

    class KL(L.Layer):
        def call(self, zm, zl, eps):
            self.add_loss(k.ops.mean(-0.5 * k.ops.sum(1 + zl - zm ** 2 - k.ops.exp(zl), axis=-1)))
            return zm + k.ops.exp(0.5 * zl) * eps

    x_in = k.Input((T, D), batch_size=B, dtype=dt)
    eps_in = k.Input((Z,), batch_size=B, dtype=dt)
    h = L.LSTM(H, dtype=dt)(x_in)
    zm = L.Dense(Z, dtype=dt)(h)
    zl = L.Dense(Z, dtype=dt)(h)
    z = KL(dtype=dt)(zm, zl, eps_in)
    y = L.LSTM(H, return_sequences=True, dtype=dt)(L.RepeatVector(T, dtype=dt)(z))
    y = L.Dense(D, dtype=dt)(y)
    model = k.Model([x_in, eps_in], y)
    model.set_weights([d[n] for n in WNAMES])
    return k, tf, model


def setup_keras(op, d):
    k, tf, model = _keras_model(d)
    opt = k.optimizers.Adam(learning_rate=LR)
    x, eps = tf.constant(d["x"]), tf.constant(d["eps"])
    w = model.trainable_weights

    def fn():
        with tf.GradientTape() as tape:
            y = model([x, eps], training=True)
            loss = k.ops.mean((x - y) ** 2) + sum(model.losses)
        opt.apply_gradients(zip(tape.gradient(loss, w), w))
        return [loss]
    return fn


def setup_keras_jit(op, d):
    k, tf, model = _keras_model(d)
    model.compile(optimizer=k.optimizers.Adam(learning_rate=LR), loss="mse")
    x, eps = d["x"], d["eps"]
    return lambda: [model.train_on_batch([x, eps], x)]


SETUP = {"attnlstm": setup_attnlstm, "torch": setup_torch, "keras": setup_keras,
         "keras-jit": setup_keras_jit}


def ref_loss(op, d, ref):
    return float(np.asarray(ref[0]))
