"""Tests of the LSTM-VAE kernels (csrc/vae_impl.h, csrc/bind_vae.c) and their NumPy API
(attnlstm/ops/vae.py): NumPy twins, finite differences, masks, empty axes, NaN, bad input at
the binding, shape errors and reproducible noise."""
import os
import sys

import numpy as np
import pytest

from attnlstm import _core
from attnlstm.ops import vae as V
from attnlstm.errors import ShapeError

sys.path.insert(0, os.path.dirname(__file__))
import reference_vae as R  # noqa: E402

B, Z, T, F = 3, 4, 5, 2
KINDS = ["mse", "mae"]


def gen(seed=0):
    return np.random.default_rng(seed)


def latent(dt=np.float64, seed=0, b=B, z=Z):
    g = gen(seed)
    return (g.normal(size=(b, z)).astype(dt), g.normal(scale=0.7, size=(b, z)).astype(dt),
            g.normal(size=(b, z)).astype(dt))


def seqs(dt=np.float64, seed=1, b=B, t=T, f=F):
    g = gen(seed)
    return g.normal(size=(b, t, f)).astype(dt), g.normal(size=(b, t, f)).astype(dt)


def partial_mask():
    """Right padding, a hole, and the last sequence fully masked."""
    m = np.ones((B, T), bool)
    m[0, 3:] = False
    m[1, 1] = False
    m[2] = False
    return m


MASKS = {"none": None, "partial": partial_mask()}


def close64(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def fd_check(f, x, grad, h=1e-6):
    """Central finite differences of the scalar f at x against grad (float64)."""
    num = np.zeros_like(x)
    flat, nflat = x.reshape(-1), num.reshape(-1)
    for i in range(flat.size):
        keep = flat[i]
        flat[i] = keep + h
        up = f()
        flat[i] = keep - h
        down = f()
        flat[i] = keep
        nflat[i] = (up - down) / (2 * h)
    err = np.linalg.norm(num - grad) / max(np.linalg.norm(num), np.linalg.norm(grad), 1e-300)
    assert err <= 1e-6, f"relative error {err:.3g}"


def close32(ours, ref, scale):
    """float32 result vs a float64 twin: |ours - ref| <= 1e-6 * scale, where scale bounds the
    magnitude of the terms summed (so a cancelling sum is judged by its terms)."""
    assert ours.dtype == np.float32
    assert np.all(np.abs(ours.astype(np.float64) - ref) <= 1e-6 * scale + 1e-30), \
        np.max(np.abs(ours - ref) / scale)


# ---- twins (float64) -------------------------------------------------------------------------

def test_sampling_matches_twin():
    m, lv, e = latent()
    r = V.sampling_forward(m, lv, eps=e)
    z_ref, std_ref = R.sampling_forward(m, lv, e)
    close64(r["z"], z_ref)
    close64(r["std"], std_ref)
    assert np.array_equal(r["eps"], e)
    d_z = gen(7).normal(size=(B, Z))
    g = V.sampling_backward(r, d_z)
    dm_ref, dlv_ref = R.sampling_backward(d_z, std_ref, e)
    close64(g["z_mean"], dm_ref)
    close64(g["z_log_var"], dlv_ref)


def test_kl_matches_twin():
    m, lv, _ = latent()
    kl = V.kl_divergence(m, lv)
    assert kl.shape == (B,) and kl.dtype == np.float64
    close64(kl, R.kl_forward(m, lv))
    d_kl = gen(3).normal(size=B)
    g = V.kl_divergence_backward(m, lv, d_kl)
    dm_ref, dlv_ref = R.kl_backward(d_kl, m, lv)
    close64(g["z_mean"], dm_ref)
    close64(g["z_log_var"], dlv_ref)


def test_kl_large_log_var_uses_exp_branch():
    m = np.array([[0.0, 1.0, -2.0, 0.5]])
    lv = np.array([[-30.0, -1.5, 1.0, 20.0]])
    close64(V.kl_divergence(m, lv), R.kl_forward(m, lv))
    close64(V.kl_divergence_backward(m, lv, [1.0])["z_log_var"], R.kl_backward(np.ones(1), m, lv)[1])


def test_kl_near_prior_is_accurate_and_non_negative():
    # KL = 0.5 * sum(lv^2/2 + lv^3/6 + ...): the literal formula loses it all to cancellation.
    lv = np.array([[1e-9, -3e-5, 2e-3, -0.4]])
    exact = 0.5 * sum(sum(v ** k / np.prod(np.arange(1.0, k + 1)) for k in range(2, 25))
                      for v in lv[0])
    np.testing.assert_allclose(V.kl_divergence(np.zeros_like(lv), lv), [exact], rtol=1e-14)
    kl32 = V.kl_divergence(np.zeros((1, 4), np.float32), lv.astype(np.float32))
    np.testing.assert_allclose(kl32, [exact], rtol=1e-6)
    assert np.all(V.kl_divergence(np.zeros((2, 3)), np.zeros((2, 3))) == 0)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mask", list(MASKS))
def test_recon_matches_twin(kind, mask):
    x, xh = seqs()
    m = MASKS[mask]
    loss = V.reconstruction_loss(x, xh, mask=m, kind=kind)
    assert loss.shape == (B,)
    close64(loss, R.recon_forward(xh, x, m, kind))
    d = gen(4).normal(size=B)
    dxh = V.reconstruction_loss_backward(x, xh, d, mask=m, kind=kind)
    close64(dxh, R.recon_backward(d, xh, x, m, kind))
    if m is not None:
        assert loss[2] == 0 and np.all(dxh[2] == 0)            # fully masked sequence
        assert np.all(dxh[0, 3:] == 0) and np.all(dxh[1, 1] == 0)


def test_recon_masked_steps_are_not_read():
    x, xh = seqs()
    m = partial_mask()
    x2, xh2 = x.copy(), xh.copy()
    x2[~m] = np.nan
    xh2[~m] = np.inf
    for kind in KINDS:
        np.testing.assert_array_equal(V.reconstruction_loss(x2, xh2, m, kind),
                                      V.reconstruction_loss(x, xh, m, kind))
        g = V.reconstruction_loss_backward(x2, xh2, np.ones(B), m, kind)
        np.testing.assert_array_equal(g, V.reconstruction_loss_backward(x, xh, np.ones(B), m, kind))


def test_recon_mask_accepts_ints_and_abs_gradient_is_zero_at_zero():
    x, xh = seqs()
    xh[0, 0] = x[0, 0]
    m = partial_mask().astype(np.int64) * 5
    close64(V.reconstruction_loss(x, xh, m, "mae"), R.recon_forward(xh, x, m != 0, "mae"))
    g = V.reconstruction_loss_backward(x, xh, np.ones(B), None, "mae")
    assert np.all(g[0, 0] == 0) and set(np.unique(g)) <= {-1.0, 0.0, 1.0}


# ---- finite differences (float64) ------------------------------------------------------------

def test_sampling_backward_fd():
    m, lv, e = latent()
    w = gen(9).normal(size=(B, Z))
    g = V.sampling_backward(V.sampling_forward(m, lv, eps=e), w)
    loss = lambda: float(np.sum(w * V.sampling(m, lv, eps=e)))  # noqa: E731
    fd_check(loss, m, g["z_mean"])
    fd_check(loss, lv, g["z_log_var"])


def test_kl_backward_fd():
    m, lv, _ = latent()
    lv[0, 0] = 1e-4          # the series branch
    lv[1, 1] = 2.5           # the expm1 branch
    w = gen(9).normal(size=B)
    g = V.kl_divergence_backward(m, lv, w)
    loss = lambda: float(np.sum(w * V.kl_divergence(m, lv)))  # noqa: E731
    fd_check(loss, m, g["z_mean"])
    fd_check(loss, lv, g["z_log_var"])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mask", list(MASKS))
def test_recon_backward_fd(kind, mask):
    x, xh = seqs()
    m = MASKS[mask]
    w = gen(9).normal(size=B)
    g = V.reconstruction_loss_backward(x, xh, w, mask=m, kind=kind)
    fd_check(lambda: float(np.sum(w * V.reconstruction_loss(x, xh, m, kind))), xh, g)


def test_negative_elbo_chain_fd():
    """The LSTM-VAE loss mean_b(rec + beta * kl), z fed through a fixed linear 'decoder',
    differentiated through all three backward kernels."""
    m, lv, e = latent()
    x, _ = seqs()
    W = gen(5).normal(size=(Z, T * F)) * 0.3
    mask, beta = partial_mask(), 0.7

    def forward():
        s = V.sampling_forward(m, lv, eps=e)
        xh = (s["z"] @ W).reshape(B, T, F)
        loss = np.mean(V.reconstruction_loss(x, xh, mask) + beta * V.kl_divergence(m, lv))
        return loss, s, xh

    _, s, xh = forward()
    d_rec = np.full(B, 1.0 / B)
    d_xh = V.reconstruction_loss_backward(x, xh, d_rec, mask)
    gs = V.sampling_backward(s, d_xh.reshape(B, -1) @ W.T)
    gk = V.kl_divergence_backward(m, lv, np.full(B, beta / B))
    fd_check(lambda: forward()[0], m, gs["z_mean"] + gk["z_mean"])
    fd_check(lambda: forward()[0], lv, gs["z_log_var"] + gk["z_log_var"])


# ---- float32 -----------------------------------------------------------------------------------

def test_float32_matches_twin():
    m, lv, e = latent(np.float32)
    m64, lv64, e64 = (a.astype(np.float64) for a in (m, lv, e))
    r = V.sampling_forward(m, lv, eps=e)
    z_ref, std_ref = R.sampling_forward(m64, lv64, e64)
    close32(r["std"], std_ref, np.abs(std_ref))
    close32(r["z"], z_ref, np.abs(m64) + np.abs(std_ref * e64))
    d_z = gen(7).normal(size=(B, Z)).astype(np.float32)
    g = V.sampling_backward(r, d_z)
    _, dlv_ref = R.sampling_backward(d_z.astype(np.float64), std_ref, e64)
    assert g["z_mean"].dtype == np.float32 and np.array_equal(g["z_mean"], d_z)
    close32(g["z_log_var"], dlv_ref, np.abs(dlv_ref))

    kl_ref = R.kl_forward(m64, lv64)
    close32(V.kl_divergence(m, lv), kl_ref, np.abs(kl_ref))
    d_kl = gen(3).normal(size=B).astype(np.float32)
    gk = V.kl_divergence_backward(m, lv, d_kl)
    dm_ref, dlv_ref = R.kl_backward(d_kl.astype(np.float64), m64, lv64)
    close32(gk["z_mean"], dm_ref, np.abs(dm_ref))
    close32(gk["z_log_var"], dlv_ref, np.abs(dlv_ref))

    x, xh = seqs(np.float32)
    x64, xh64 = x.astype(np.float64), xh.astype(np.float64)
    mask = partial_mask()
    for kind in KINDS:
        ref = R.recon_forward(xh64, x64, mask, kind)
        out = V.reconstruction_loss(x, xh, mask, kind)
        assert out.dtype == np.float32
        close32(out, ref, np.abs(ref))
        d = gen(4).normal(size=B).astype(np.float32)
        ref = R.recon_backward(d.astype(np.float64), xh64, x64, mask, kind)
        close32(V.reconstruction_loss_backward(x, xh, d, mask, kind), ref, np.abs(ref))


# ---- empty axes, NaN -------------------------------------------------------------------------

def test_empty_batch_and_axes():
    for dt in (np.float32, np.float64):
        m, lv, e = latent(dt, b=0)
        r = V.sampling_forward(m, lv, eps=e)
        assert r["z"].shape == (0, Z) and r["z"].dtype == dt
        assert V.sampling(m, lv, seed=0).shape == (0, Z)
        assert V.sampling_backward(r, np.zeros((0, Z), dt))["z_log_var"].shape == (0, Z)
        assert V.kl_divergence(m, lv).shape == (0,)
        assert V.kl_divergence_backward(m, lv, np.zeros(0, dt))["z_mean"].shape == (0, Z)
        x, xh = seqs(dt, b=0)
        assert V.reconstruction_loss(x, xh, np.zeros((0, T), bool)).shape == (0,)
        assert V.reconstruction_loss_backward(x, xh, np.zeros(0, dt)).shape == (0, T, F)
    m, lv, _ = latent(z=0)
    np.testing.assert_array_equal(V.kl_divergence(m, lv), np.zeros(B))
    assert V.sampling(m, lv, seed=1).shape == (B, 0)
    for t, f in ((0, F), (T, 0)):
        x, xh = seqs(t=t, f=f)
        np.testing.assert_array_equal(V.reconstruction_loss(x, xh, kind="mae"), np.zeros(B))
        assert V.reconstruction_loss_backward(x, xh, np.ones(B)).shape == (B, t, f)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_nan_propagates(dt):
    m, lv, e = latent(dt)
    lv[0, 1] = np.nan
    m[1, 2] = np.nan
    r = V.sampling_forward(m, lv, eps=e)
    assert np.isnan(r["z"][0, 1]) and np.isnan(r["z"][1, 2])
    assert np.isfinite(np.delete(r["z"].ravel(), [1, Z + 2])).all()
    kl = V.kl_divergence(m, lv)
    assert np.isnan(kl[:2]).all() and np.isfinite(kl[2])
    gk = V.kl_divergence_backward(m, lv, np.ones(B, dt))
    assert np.isnan(gk["z_log_var"][0, 1]) and np.isnan(gk["z_mean"][1, 2])
    x, xh = seqs(dt)
    xh[0, 1, 0] = np.nan
    for kind in KINDS:
        loss = V.reconstruction_loss(x, xh, kind=kind)
        assert np.isnan(loss[0]) and np.isfinite(loss[1:]).all()
        g = V.reconstruction_loss_backward(x, xh, np.ones(B, dt), kind=kind)
        assert np.isnan(g[0, 1, 0]) and np.isfinite(g[1:]).all()


# ---- the binding never crashes -------------------------------------------------------------

def test_binding_rejects_bad_input():
    m, lv, e = latent()
    x, xh = seqs()
    with pytest.raises(TypeError, match="sampling_forward: `z_mean` must be a float32 or float64"):
        _core.sampling_forward([[0.0]], lv, e)
    with pytest.raises(TypeError, match="`z_mean` must have dtype float32 or float64"):
        _core.kl_forward(m.astype(np.int32), lv)
    with pytest.raises(TypeError, match="`eps` must have dtype float64 like the inputs"):
        _core.sampling_forward(m, lv, e.astype(np.float32))
    with pytest.raises(ValueError, match=r"`z_log_var` must have shape \(B, Z\) = \(3, 4\), got \(3, 5\)"):
        _core.kl_forward(m, np.zeros((B, Z + 1)))
    with pytest.raises(ValueError, match=r"`std` must have shape \(B, Z\) = \(3, 4\), got \(4,\)"):
        _core.sampling_backward(m, np.zeros(4), e)
    with pytest.raises(ValueError, match=r"`d_kl` must have shape \(B,\) = \(3,\), got \(3, 1\)"):
        _core.kl_backward(np.zeros((B, 1)), m, lv)
    with pytest.raises(ValueError, match=r"`z_mean` must have shape \(B, Z\)"):
        _core.kl_forward(np.zeros((B, Z, 1)), lv)
    with pytest.raises(ValueError, match=r"`x` must have shape \(B, T, D\) = \(3, 5, 2\)"):
        _core.recon_forward(xh, x[:, :4])
    with pytest.raises(ValueError, match=r"`mask` must have shape \(B, T\) = \(3, 5\)"):
        _core.recon_backward(np.ones(B), xh, x, np.ones((B, T + 1)))
    with pytest.raises(ValueError, match=r"`d_loss` must have shape \(B,\)"):
        _core.recon_backward(np.ones((B, T)), xh, x)
    for kind in (-1, 2):
        with pytest.raises(ValueError, match=f"recon_forward: `kind` must be 0 .* got {kind}"):
            _core.recon_forward(xh, x, None, kind)
    with pytest.raises(TypeError):
        _core.recon_backward(np.ones(B), xh, x, None, "mse")
    with pytest.raises(TypeError):
        _core.kl_forward(m)
    with pytest.raises(ValueError, match="could not convert string to float"):
        _core.recon_forward(xh, "abc")


def test_binding_converts_non_contiguous_and_rejects_absurd_sizes():
    m, lv, e = latent(z=2 * Z)
    z, std = _core.sampling_forward(m[:, ::2], lv[:, ::2], e[:, ::2])
    z_ref, std_ref = R.sampling_forward(m[:, ::2], lv[:, ::2], e[:, ::2])
    close64(z, z_ref)
    x, xh = seqs(t=2 * T)
    xt = np.asfortranarray(x[:, ::2])
    close64(_core.recon_forward(xh[:, ::2], xt, None, 1), R.recon_forward(xh[:, ::2], xt, None, "mae"))
    # Zero-stride views of >= 8 TiB: the binding's contiguous copy fails cleanly, and a view
    # whose shape disagrees is refused by its shape before anything is copied.
    huge = np.broadcast_to(np.zeros((1, 1)), (2 ** 20, 2 ** 20))
    with pytest.raises(MemoryError):
        _core.kl_forward(huge, huge)
    with pytest.raises(ValueError, match=r"`eps` must have shape \(B, Z\) = \(3, 8\), got "
                                         r"\(1099511627776, 8\)"):
        _core.sampling_forward(m, lv, np.broadcast_to(np.zeros((1, 1)), (2 ** 40, 2 * Z)))
    huge3 = np.broadcast_to(np.zeros((1, 1, 1), np.float32), (2 ** 20, 2 ** 20, 2))
    with pytest.raises(MemoryError):
        _core.recon_forward(huge3, huge3)
    with pytest.raises(ValueError, match=r"`d_loss` must have shape \(B,\) = \(3,\), got "
                                         r"\(2199023255552,\)"):
        _core.recon_backward(np.broadcast_to(np.zeros(1), (2 ** 41,)), xh, x)


# ---- shape errors of the ops layer -----------------------------------------------------------

def test_shape_errors_latent():
    m, lv, e = latent()
    with pytest.raises(ShapeError, match=r"ops\.sampling: `z_mean` and `z_log_var` must have the "
                                         r"same shape .*z_mean \(3, 4\) and z_log_var \(3, 6\)"
                                         r"\.\nHint: .*same number of units \(latent_dim\)"):
        V.sampling(m, np.zeros((B, 6)), seed=0)
    with pytest.raises(ShapeError, match=r"ops\.kl_divergence: `z_mean` and `z_log_var`.*\.\nHint: "):
        V.kl_divergence(m, lv[:2])
    with pytest.raises(ShapeError, match=r"ops\.kl_divergence_backward: `z_mean` and `z_log_var`"):
        V.kl_divergence_backward(m, lv.T, np.ones(B))
    with pytest.raises(ShapeError, match=r"ops\.kl_divergence: `z_mean` must have shape \(batch, "
                                         r"latent_dim\), got \(3, 5, 4\)\.\nHint: .*return_sequences"):
        V.kl_divergence(np.zeros((B, T, Z)), np.zeros((B, T, Z)))
    with pytest.raises(ShapeError, match=r"`eps` must have shape \(batch, latent_dim\) = \(3, 4\), "
                                         r"got \(3, 1\)\.\nHint: eps is the standard normal noise"):
        V.sampling(m, lv, eps=np.zeros((B, 1)))
    s = V.sampling_forward(m, lv, eps=e)
    with pytest.raises(ShapeError, match=r"ops\.sampling_backward: `d_z` must have shape \(3, 4\), "
                                         r"got \(4, 3\)"):
        V.sampling_backward(s, np.zeros((Z, B)))
    with pytest.raises(ShapeError, match=r"ops\.kl_divergence_backward: `d_kl` must have shape "
                                         r"\(3,\), got \(3, 4\)\.\nHint: .*shape \(batch,\)"):
        V.kl_divergence_backward(m, lv, np.ones((B, Z)))


def test_shape_errors_recon():
    x, xh = seqs()
    f = V.reconstruction_loss
    with pytest.raises(ShapeError, match=r"`x_hat` must have shape \(batch, timesteps, features\) = "
                                         r"\(3, 5, 2\), got \(3, 4, 2\)\.\nHint: the decoder "
                                         r"reconstructs 4 steps but the input has 5 \(RepeatVector"
                                         r"\(n\) must repeat the input length: n = 5\)"):
        f(x, xh[:, :4])
    with pytest.raises(ShapeError, match=r"got \(3, 5, 3\)\.\nHint: the decoder outputs 3 features "
                                         r"per step but the input has 2; .*units = 2"):
        f(x, np.zeros((B, T, F + 1)))
    with pytest.raises(ShapeError, match=r"got \(2, 5, 2\)\.\nHint: x has batch size 3"):
        f(x, xh[:2])
    with pytest.raises(ShapeError, match=r"got \(3, 2\)\.\nHint: .*return_sequences=True"):
        f(x, xh[:, -1])
    with pytest.raises(ShapeError, match=r"ops\.reconstruction_loss: `x` must have shape \(batch, "
                                         r"timesteps, features\), got \(3, 5\)\.\nHint: .*x\[\.\.\., None\]"):
        f(x[..., 0], xh[..., 0])
    with pytest.raises(ShapeError, match=r"`mask` must have shape \(batch, timesteps\) = \(3, 5\), "
                                         r"got \(3, 4\)\.\nHint: the mask has one entry per \(seq"):
        f(x, xh, mask=np.ones((B, T - 1)))
    with pytest.raises(ShapeError, match=r"got \(3, 5, 2\)\.\nHint: .*\.any\(axis=-1\)"):
        f(x, xh, mask=np.ones((B, T, F)))
    with pytest.raises(ShapeError, match=r"ops\.reconstruction_loss_backward: `d_loss` must have "
                                         r"shape \(3,\), got \(3, 5\)\.\nHint: the loss is one "
                                         r"number per sequence"):
        V.reconstruction_loss_backward(x, xh, np.ones((B, T)))
    with pytest.raises(ShapeError, match=r"`d_loss` must have shape \(3,\), got \(\)"):
        V.reconstruction_loss_backward(x, xh, 1.0)
    with pytest.raises(ShapeError, match=r"reconstruction_loss_backward: `x_hat`"):
        V.reconstruction_loss_backward(x, xh[:, :2], np.ones(B))
    with pytest.raises(ValueError, match=r"Expected one of \{'mse', 'mae'\}. Received: kind='l2'"):
        f(x, xh, kind="l2")


# ---- reproducible noise ----------------------------------------------------------------------

def test_seeded_eps_is_reproducible():
    m, lv, _ = latent()
    a = V.sampling_forward(m, lv, seed=42)
    b = V.sampling_forward(m, lv, seed=42)
    np.testing.assert_array_equal(a["z"], b["z"])
    np.testing.assert_array_equal(a["eps"], np.random.default_rng(42).standard_normal((B, Z)))
    close64(a["z"], R.sampling_forward(m, lv, a["eps"])[0])
    assert not np.array_equal(a["z"], V.sampling(m, lv, seed=43))
    g1, g2 = np.random.default_rng(5), np.random.default_rng(5)
    np.testing.assert_array_equal(V.sampling(m, lv, rng=g1), V.sampling(m, lv, rng=g2))
    assert not np.array_equal(V.sampling(m, lv, rng=g1), V.sampling(m, lv, rng=np.random.default_rng(5)))
    s32 = V.sampling_forward(m.astype(np.float32), lv.astype(np.float32), seed=3)
    assert s32["eps"].dtype == np.float32 and s32["z"].dtype == np.float32
    np.testing.assert_array_equal(
        s32["eps"], np.random.default_rng(3).standard_normal((B, Z), dtype=np.float32))
    with pytest.raises(ValueError, match="pass either `seed` or `rng`, not both"):
        V.sampling(m, lv, seed=1, rng=g1)
    with pytest.raises(ValueError, match="not both"):
        V.sampling(m, lv, eps=np.zeros((B, Z)), seed=1)
    with pytest.raises(TypeError, match="`rng` must be a numpy.random.Generator"):
        V.sampling(m, lv, rng=np.random.RandomState(0))


# ---- Gaussian negative log-likelihood --------------------------------------------------------

def nll_inputs(dt=np.float64, b=B):
    x, xh = seqs(dt, b=b)
    lv = gen(2).normal(scale=0.5, size=x.shape).astype(dt)
    return x, xh, lv


@pytest.mark.parametrize("mask", list(MASKS))
def test_gaussian_nll_matches_twin_and_fd(mask):
    x, xh, lv = nll_inputs()
    m = MASKS[mask]
    loss = V.gaussian_nll(x, xh, lv, mask=m)
    close64(loss, R.gaussian_nll_forward(xh, lv, x, m))
    w = gen(9).normal(size=B)
    g = V.gaussian_nll_backward(x, xh, lv, w, mask=m)
    ref = R.gaussian_nll_backward(w, xh, lv, x, m)
    close64(g["x_hat"], ref[0])
    close64(g["x_log_var"], ref[1])
    f = lambda: float(np.sum(w * V.gaussian_nll(x, xh, lv, m)))  # noqa: E731
    fd_check(f, xh, g["x_hat"])
    fd_check(f, lv, g["x_log_var"])
    if m is not None:
        assert loss[2] == 0 and np.all(g["x_hat"][2] == 0) and np.all(g["x_log_var"][2] == 0)


def test_gaussian_nll_float32_empty_nan():
    x, xh, lv = nll_inputs(np.float32)
    a64 = [v.astype(np.float64) for v in (xh, lv, x)]
    ref = R.gaussian_nll_forward(*a64)
    terms = np.sum(0.5 * (np.log(2 * np.pi) + np.abs(a64[1])
                          + (a64[0] - a64[2]) ** 2 * np.exp(-a64[1])), axis=(1, 2))
    close32(V.gaussian_nll(x, xh, lv), ref, terms)
    d = np.ones(B, np.float32)
    g = V.gaussian_nll_backward(x, xh, lv, d)
    r_xh, r_lv = R.gaussian_nll_backward(d.astype(np.float64), *a64)
    close32(g["x_hat"], r_xh, np.abs(r_xh))
    close32(g["x_log_var"], r_lv, 0.5 * (1 + np.abs(2 * r_lv - 1)))
    x0, xh0, lv0 = nll_inputs(b=0)
    assert V.gaussian_nll(x0, xh0, lv0).shape == (0,)
    assert V.gaussian_nll_backward(x0, xh0, lv0, np.zeros(0))["x_log_var"].shape == (0, T, F)
    lv[1, 2, 1] = np.nan
    out = V.gaussian_nll(x, xh, lv)
    assert np.isnan(out[1]) and np.isfinite(out[[0, 2]]).all()
    assert np.isnan(V.gaussian_nll_backward(x, xh, lv, d)["x_hat"][1, 2, 1])


def test_gaussian_nll_errors():
    x, xh, lv = nll_inputs()
    with pytest.raises(ShapeError, match=r"ops\.gaussian_nll: `x_log_var` must have shape \(batch, "
                                         r"timesteps, features\) = \(3, 5, 2\), got \(3, 5, 1\)\."
                                         r"\nHint: the decoder's log-variance head"):
        V.gaussian_nll(x, xh, lv[..., :1])
    with pytest.raises(ShapeError, match=r"ops\.gaussian_nll_backward: `x_hat` .*\nHint: the decoder "
                                         r"reconstructs 2 steps"):
        V.gaussian_nll_backward(x, xh[:, :2], lv, np.ones(B))
    with pytest.raises(ShapeError, match=r"`d_loss` must have shape \(3,\), got \(3, 5\)\.\nHint: "):
        V.gaussian_nll_backward(x, xh, lv, np.ones((B, T)))
    with pytest.raises(TypeError, match="gaussian_nll_forward: `x_log_var` must have dtype float64"):
        _core.gaussian_nll_forward(xh, lv.astype(np.float32), x)
    with pytest.raises(ValueError, match=r"gaussian_nll_backward: `x_log_var` must have shape"):
        _core.gaussian_nll_backward(np.ones(B), xh, lv[:, :1], x)
    with pytest.raises(ValueError, match=r"`x_log_var` must have shape \(B, T, D\) = "
                                         r"\(3, 5, 2\), got \(1048576, 1048576, 2\)"):
        _core.gaussian_nll_forward(xh, np.broadcast_to(np.zeros((1, 1, 1)), (2 ** 20, 2 ** 20, 2)), x)
