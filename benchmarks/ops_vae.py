"""One LSTM-VAE training step (forward, backward, Adam update), all contenders with the same weights.

Two variants, chosen by what attnlstm provides (`step_op()`), the same for every contender:

"vae_step" (attnlstm.layers.Sampling and attnlstm.layers.KLDivergence exist):
    encoder LSTM(H) over x (B,T,D) -> last h -> Dense(Z) z_mean, Dense(Z) z_log_var;
    KL term; z = z_mean + exp(z_log_var / 2) * eps; RepeatVector(T) -> decoder
    LSTM(H, return_sequences) -> TimeDistributed(Dense(D)) -> x_hat.
    loss = mean_b Σ_{t,f} (x - x_hat)^2 + mean_b( -1/2 Σ_z (1 + z_log_var - z_mean^2 - exp(z_log_var)) )
    (the standard negative ELBO, as attnlstm.vae.SequenceReconstructionLoss + KLDivergence).
    eps: attnlstm's Sampling layer draws it from np.random.default_rng(EPS_SEED) (first call);
    the others get that same array as an input, so the equality check compares equal losses.
    (On later, timed calls attnlstm draws fresh noise, the others reuse eps: a (B, Z) draw.)

"ae_step" (fallback while attnlstm has no Sampling layer): the deterministic autoencoder of the
    same shape: encoder LSTM(H) -> Dense(Z) z -> RepeatVector(T) -> decoder LSTM(H,
    return_sequences) -> TimeDistributed(Dense(D)); loss = mean((x - x_hat)^2) (Keras "mse").

Adam(learning_rate=1e-3). Every callable returns [loss before the update]. attnlstm: functional
API (Input, layers, Model), compile(Adam), train_on_batch(x, x).
"""
import numpy as np

from .common import NOT_YET, NotAvailable, attnlstm, keras, lstm_bwd_flops, lstm_fwd_flops, torch

OPS = {"vae_step": "LSTM-VAE training step (fwd + bwd + Adam)",
       "ae_step": "LSTM autoencoder training step, deterministic z (no Sampling layer in attnlstm "
                  "yet; fwd + bwd + Adam)"}
Z = 16
LR = 1e-3
EPS_SEED = 1234


def step_op():
    """"vae_step" when attnlstm has the VAE layers, else "ae_step"."""
    try:
        L = attnlstm().layers
    except Exception:
        return "ae_step"
    return "vae_step" if hasattr(L, "Sampling") and hasattr(L, "KLDivergence") else "ae_step"


def make_data(shape, dtype, seed=0):
    B, T, D, H = shape["B"], shape["T"], shape["D"], shape["H"]
    rng = np.random.default_rng(seed)
    s = 1.0 / np.sqrt(H)
    u = lambda *sh: rng.uniform(-s, s, sh)  # noqa: E731
    d = {"x": rng.standard_normal((B, T, D)),
         "enc_W": u(D, 4 * H), "enc_U": u(H, 4 * H), "enc_b": u(4 * H),
         "mean_W": u(H, Z), "mean_b": u(Z), "lv_W": u(H, Z), "lv_b": u(Z),
         "dec_W": u(Z, 4 * H), "dec_U": u(H, 4 * H), "dec_b": u(4 * H),
         "out_W": u(H, D), "out_b": u(D)}
    d = {k: np.ascontiguousarray(v, dtype=dtype) for k, v in d.items()}
    # the first draw of attnlstm's Sampling layer seeded with EPS_SEED
    d["eps"] = np.random.default_rng(EPS_SEED).standard_normal((B, Z), dtype=np.dtype(dtype))
    return d


def flops(op, shape):
    B, T, D, H = shape["B"], shape["T"], shape["D"], shape["H"]
    lstm = (lstm_fwd_flops(B, T, D, H) + lstm_bwd_flops(B, T, D, H)
            + lstm_fwd_flops(B, T, Z, H) + lstm_bwd_flops(B, T, Z, H))
    return lstm + 3 * 2 * B * T * H * D   # + the output Dense, forward and backward


def _dims(d):
    B, T, D = d["x"].shape
    return B, T, D, d["enc_U"].shape[0], ("float64" if d["x"].dtype == np.float64 else "float32")


def setup_attnlstm(op, d):
    al = attnlstm()
    L = al.layers
    B, T, D, H, dt = _dims(d)
    vae = op == "vae_step"
    if vae and not hasattr(L, "Sampling"):
        raise NotAvailable(NOT_YET)
    x_in = al.Input(shape=(T, D), batch_size=B, dtype=dt) if _input_takes_batch(al) \
        else al.Input(shape=(T, D), dtype=dt)
    enc = L.LSTM(H, dtype=dt)
    mean = L.Dense(Z, dtype=dt)
    h = enc(x_in)
    zm = mean(h)
    if vae:
        lv = L.Dense(Z, dtype=dt)
        zl = lv(h)
        zm2, zl2 = L.KLDivergence(beta=1.0, dtype=dt)([zm, zl])
        sampling = L.Sampling(seed=EPS_SEED, dtype=dt)
        z = sampling([zm2, zl2])
    else:
        z = zm
    dec = L.LSTM(H, return_sequences=True, dtype=dt)
    out = L.TimeDistributed(L.Dense(D, dtype=dt))
    y = out(dec(L.RepeatVector(T, dtype=dt)(z)))
    model = al.Model(x_in, y)
    enc.set_weights([d["enc_W"], d["enc_U"], d["enc_b"]])
    mean.set_weights([d["mean_W"], d["mean_b"]])
    if vae:
        lv.set_weights([d["lv_W"], d["lv_b"]])
    dec.set_weights([d["dec_W"], d["dec_U"], d["dec_b"]])
    out.set_weights([d["out_W"], d["out_b"]])
    if vae:
        from attnlstm.vae import SequenceReconstructionLoss
        sampling._rng = np.random.default_rng(EPS_SEED)   # first eps = d["eps"]
        loss = SequenceReconstructionLoss()
    else:
        loss = "mse"
    model.compile(optimizer=al.optimizers.Adam(learning_rate=LR), loss=loss)
    x = d["x"]
    return lambda: [np.asarray(model.train_on_batch(x, x), dtype=np.float64).ravel()[0]]


def _input_takes_batch(al):
    import inspect
    try:
        return "batch_size" in inspect.signature(al.Input).parameters
    except (TypeError, ValueError):
        return False


def setup_torch(op, d):
    t = torch()
    nn = t.nn
    B, T, D, H, dts = _dims(d)
    dt = t.float64 if dts == "float64" else t.float32
    vae = op == "vae_step"

    class VAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.LSTM(D, H, batch_first=True)
            self.mean = nn.Linear(H, Z)
            self.lv = nn.Linear(H, Z) if vae else None
            self.dec = nn.LSTM(Z, H, batch_first=True)
            self.out = nn.Linear(H, D)

        def forward(self, x, eps):
            h = self.enc(x)[0][:, -1]
            zm = self.mean(h)
            if vae:
                zl = self.lv(h)
                z = zm + t.exp(0.5 * zl) * eps
            else:
                z = zm
            xh = self.out(self.dec(z[:, None, :].expand(-1, x.shape[1], -1))[0])
            if not vae:
                return ((x - xh) ** 2).mean()
            kl = (-0.5 * (1 + zl - zm ** 2 - t.exp(zl)).sum(-1)).mean()
            return ((x - xh) ** 2).sum() / x.shape[0] + kl

    m = VAE().to(dt)
    T_ = lambda a: t.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    with t.no_grad():
        for lstm, p in ((m.enc, "enc"), (m.dec, "dec")):
            lstm.weight_ih_l0.copy_(T_(d[p + "_W"].T))
            lstm.weight_hh_l0.copy_(T_(d[p + "_U"].T))
            lstm.bias_ih_l0.copy_(T_(d[p + "_b"]))
            lstm.bias_hh_l0.zero_()
        for lin, p in ((m.mean, "mean"), (m.lv, "lv"), (m.out, "out")):
            if lin is not None:
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


def _keras_model(op, d):
    k, tf = keras()
    B, T, D, H, dt = _dims(d)
    L = k.layers
    vae = op == "vae_step"

    class KL(L.Layer):
        def call(self, zm, zl, eps):
            self.add_loss(k.ops.mean(-0.5 * k.ops.sum(1 + zl - zm ** 2 - k.ops.exp(zl), axis=-1)))
            return zm + k.ops.exp(0.5 * zl) * eps

    x_in = k.Input((T, D), batch_size=B, dtype=dt)
    eps_in = k.Input((Z,), batch_size=B, dtype=dt)
    enc, mean = L.LSTM(H, dtype=dt), L.Dense(Z, dtype=dt)
    h = enc(x_in)
    zm = mean(h)
    if vae:
        lv = L.Dense(Z, dtype=dt)
        z = KL(dtype=dt)(zm, lv(h), eps_in)
    else:
        z = zm
    dec = L.LSTM(H, return_sequences=True, dtype=dt)
    out = L.TimeDistributed(L.Dense(D, dtype=dt))
    y = out(dec(L.RepeatVector(T, dtype=dt)(z)))
    model = k.Model([x_in, eps_in] if vae else x_in, y)
    enc.set_weights([d["enc_W"], d["enc_U"], d["enc_b"]])
    mean.set_weights([d["mean_W"], d["mean_b"]])
    if vae:
        lv.set_weights([d["lv_W"], d["lv_b"]])
    dec.set_weights([d["dec_W"], d["dec_U"], d["dec_b"]])
    out.set_weights([d["out_W"], d["out_b"]])

    def rec_loss(y_true, y_pred):
        if vae:   # sum over steps and features, mean over the batch
            return k.ops.sum((y_true - y_pred) ** 2) / B
        return k.ops.mean((y_true - y_pred) ** 2)
    return k, tf, model, rec_loss


def setup_keras(op, d):
    k, tf, model, rec_loss = _keras_model(op, d)
    opt = k.optimizers.Adam(learning_rate=LR)
    x, eps = tf.constant(d["x"]), tf.constant(d["eps"])
    ins = [x, eps] if op == "vae_step" else x
    w = model.trainable_weights

    def fn():
        with tf.GradientTape() as tape:
            y = model(ins, training=True)
            loss = rec_loss(x, y) + sum(model.losses)
        opt.apply_gradients(zip(tape.gradient(loss, w), w))
        return [loss]
    return fn


def setup_keras_jit(op, d):
    k, tf, model, rec_loss = _keras_model(op, d)
    model.compile(optimizer=k.optimizers.Adam(learning_rate=LR), loss=rec_loss)
    x, eps = d["x"], d["eps"]
    ins = [x, eps] if op == "vae_step" else x
    return lambda: [model.train_on_batch(ins, x)]


SETUP = {"attnlstm": setup_attnlstm, "torch": setup_torch, "keras": setup_keras,
         "keras-jit": setup_keras_jit}


def ref_loss(op, d, ref):
    return float(np.asarray(ref[0]))
