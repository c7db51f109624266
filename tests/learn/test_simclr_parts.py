import math

import numpy as np
import pytest
import torch

from sdssclr.learn.augment import (AugmentConfig, Augmenter, Normalizer, add_blur, add_noise, blur_radius, border_noise,
                                   sky_correlation,
                                   center_crop, draw_targets, jitter_crop, redden, rot90_flip, rotate)
from sdssclr.learn.encoders import ENCODERS, ResNetEncoder, build_encoder
from sdssclr.learn.simclr import ProjectionHead, nt_xent


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_nt_xent_matches_a_direct_computation():
    torch.manual_seed(0)
    z1, z2, tau = torch.randn(6, 8), torch.randn(6, 8), 0.3
    z = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=1).double()
    n2 = z.shape[0]
    total = 0.0
    for i in range(n2):
        j = (i + 6) % n2
        num = math.exp(float(z[i] @ z[j]) / tau)
        den = sum(math.exp(float(z[i] @ z[k]) / tau) for k in range(n2) if k != i)
        total += -math.log(num / den)
    assert nt_xent(z1, z2, tau).item() == pytest.approx(total / n2, rel=1e-5)
    # identical views of orthogonal vectors are easy: loss far below the uniform log(2N-1)
    e = torch.eye(6, 8) * 10
    assert nt_xent(e, e, 0.1).item() < 0.01 < math.log(11)


def test_encoders_shapes():
    x = torch.randn(4, 5, 28, 28)
    for name in ENCODERS:
        enc = build_encoder(name, 28)
        h = enc(x)
        assert h.shape == (4, enc.dim)
        assert ProjectionHead(enc.dim, 128)(h).shape == (4, 128)
    n_params = sum(p.numel() for p in ResNetEncoder("resnet18").parameters())
    assert 11.0e6 < n_params < 11.4e6  # resnet18 with a 5-channel 3x3 stem, no fc
    with pytest.raises(ValueError, match="unknown encoder"):
        build_encoder("resnet50x")
    with pytest.raises(ValueError, match="built for 28-px inputs"):
        build_encoder("vit-small", 28)(torch.zeros(1, 5, 32, 32))


def stamps(n=64, seed=0, noise=0.05):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, noise, (n, 5, 32, 32))
    yy, xx = np.mgrid[:32, :32]
    for k in range(n):
        amp = rng.uniform(1, 5, 5)
        x[k] += amp[:, None, None] * np.exp(-0.5 * ((xx - 16) ** 2 + (yy - 16) ** 2) / 1.5**2)
    return torch.tensor(x, dtype=torch.float32)


def test_rotations_and_flips_conserve_flux_and_pixels():
    x = stamps()
    y = rot90_flip(x, gen())
    assert y.shape == x.shape and y.dtype == x.dtype
    assert torch.allclose(y.sum((2, 3)), x.sum((2, 3)), rtol=1e-5)
    assert torch.equal(torch.sort(y.flatten(1)).values, torch.sort(x.flatten(1)).values)
    assert not torch.equal(x, y)
    assert torch.equal(rot90_flip(x, gen(3)), rot90_flip(x, gen(3)))  # seeded


def test_jitter_crop_windows():
    x = torch.arange(2 * 5 * 32 * 32, dtype=torch.float32).reshape(2, 5, 32, 32)
    y = jitter_crop(x, 28, gen())
    assert y.shape == (2, 5, 28, 28)
    for k in range(2):  # every output is a contiguous window of its own input
        t, l_ = divmod(int((y[k, 0, 0, 0] - x[k, 0, 0, 0]).item()), 32)
        assert 0 <= t <= 4 and 0 <= l_ <= 4
        assert torch.equal(y[k], x[k, :, t:t + 28, l_:l_ + 28])
    assert torch.equal(center_crop(x, 28), x[:, :, 2:30, 2:30])
    with pytest.raises(ValueError):
        jitter_crop(x, 40, gen())


def test_noise_only_adds_and_keeps_colours_on_average():
    x = stamps(256)
    own = border_noise(x)
    assert torch.allclose(own, torch.full_like(own, 0.05), rtol=0.2)
    y = add_noise(x, own, torch.full((256, 5), 0.2), gen())
    added = (y - x)[:, :, :4, :].std().item()
    assert added == pytest.approx(math.sqrt(0.2**2 - own.mean().item() ** 2), rel=0.05)
    colours = lambda t: t.sum((0, 2, 3)) / t[:, 2].sum()  # noqa: E731 - band fluxes over r, whole batch
    assert torch.allclose(colours(y), colours(x), rtol=0.03)
    # a target below the stamp's own noise adds nothing, unless fresh noise is asked for
    assert torch.equal(add_noise(x, own, torch.full((256, 5), 0.01), gen()), x)
    fresh = add_noise(x, own, torch.full((256, 5), 0.01), gen(), min_fresh=2.0) - x
    assert fresh[:, :, :4, :].std().item() == pytest.approx(2.0 * own.mean().item(), rel=0.05)


def test_two_views_get_fresh_noise_and_their_sky_correlation_is_measured():
    # pure-noise stamps (sigma 0.05) whose own noise is already the survey's level: without fresh
    # noise the two views would be the same pixels (correlation 1)
    x = torch.randn(256, 5, 32, 32, generator=gen(9)) * 0.05
    own = border_noise(x)
    fwhm = torch.full((256, 5), 3.0)
    corr = {}
    for fresh in (0.0, 1.0, 2.0):
        aug = Augmenter(AugmentConfig(crop=28, blur=False, rot_flip=False, min_fresh_noise=fresh), own, fwhm)
        a, b, corr[fresh] = aug.pair(x, own, fwhm, gen(3))
        assert a.shape == b.shape == (256, 5, 28, 28)
    assert corr[0.0] > 0.9  # only the scatter of the noise estimates adds anything
    assert corr[1.0] == pytest.approx(0.5, abs=0.03) and corr[2.0] == pytest.approx(0.2, abs=0.03)  # 1/(1+f^2)
    assert sky_correlation(x, x) == pytest.approx(1.0)
    assert abs(sky_correlation(x, x.roll(1, 0))) < 0.02  # independent stamps


def test_blur_only_adds_conserves_flux_and_widens():
    x = stamps(16, noise=0.0)
    own = torch.full((16, 5), 3.5)
    same = add_blur(x, own, torch.full((16, 5), 3.0))  # target sharper than own: no-op
    assert torch.allclose(same, x, atol=1e-5)
    y = add_blur(x, own, torch.full((16, 5), 6.0))
    assert torch.allclose(y.sum((2, 3)), x.sum((2, 3)), rtol=0.01)
    assert (y[:, :, 16, 16] < x[:, :, 16, 16]).all()  # peak lowered by the wider PSF


def test_blur_kernel_covers_three_sigma_of_the_widest_blur():
    from sdssclr.bands import FWHM_TO_SIGMA

    own = torch.full((2, 5), 2.0)
    target = torch.full((2, 5), 2.0)
    target[1, 3] = 12.0  # one band blurred far more than the others
    sigma = math.sqrt(12.0**2 - 2.0**2) * FWHM_TO_SIGMA
    assert blur_radius(torch.tensor([sigma]), 32) == math.ceil(3 * sigma)
    x = torch.zeros(2, 5, 32, 32)
    x[:, :, 16, 16] = 1.0
    y = add_blur(x, own, target)
    # the wide blur is a proper Gaussian out to 3 sigma (a 4-px kernel would cut it off)
    profile = y[1, 3, 16]
    expect = torch.exp(-0.5 * (torch.arange(32) - 16.0) ** 2 / sigma**2)
    expect = expect / expect.sum() * profile.sum()
    assert torch.allclose(profile, expect, atol=2e-3)
    assert torch.equal(y[0], x[0])  # no extra blur: identity


def test_blur_and_noise_targets_come_from_one_object_per_sample():
    pool_noise = torch.arange(40, dtype=torch.float32).reshape(8, 5)  # object k: 5k .. 5k+4
    pool_fwhm = 100 + pool_noise
    tn, tf = draw_targets(500, (pool_noise, pool_fwhm), gen(4))
    obj = (tn[:, 0] / 5).long()
    assert torch.equal(tn, pool_noise[obj]) and torch.equal(tf, pool_fwhm[obj])  # all bands, both pools
    assert len(set(obj.tolist())) == 8
    # colours of a point source survive the chain: every band blurred towards the same field's seeing
    x = stamps(64, noise=0.0)
    own = torch.full((64, 5), 3.0)
    aug = Augmenter(AugmentConfig(crop=32, rot_flip=False, noise=False), torch.full((2, 5), 0.05),
                    torch.tensor([[3.0] * 5, [7.0] * 5]))
    y = aug(x, border_noise(x), own, gen(5))
    ratio = y[:, :, 16, 16] / x[:, :, 16, 16]
    assert torch.allclose(ratio, ratio[:, :1].expand_as(ratio), rtol=1e-4)  # same dimming in every band


def test_any_angle_rotation_keeps_a_centred_source_and_its_flux():
    x = stamps(8, noise=0.0)
    y = rotate(x, gen(2))
    assert torch.allclose(y.sum((2, 3)), x.sum((2, 3)), rtol=0.02)
    assert (y.flatten(2).argmax(-1) == 16 * 32 + 16).float().mean() > 0.8
    off = torch.zeros(64, 1, 32, 32)
    off[:, 0, 16, 24] = 1.0  # 8 px right of the centre pixel
    r = rotate(off, gen(3))
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    w = r[:, 0] / r[:, 0].sum((1, 2), keepdim=True)
    cy, cx = (w * yy).sum((1, 2)) - 16, (w * xx).sum((1, 2)) - 16
    assert torch.allclose(torch.hypot(cx, cy), torch.full((64,), 8.0), atol=0.6)  # rotated about the centre
    angles = torch.atan2(cy, cx)
    assert angles.max() - angles.min() > 5.0  # any angle, not only multiples of 90 degrees


def test_reddening_dims_blue_bands_more():
    x = torch.ones(100, 5, 4, 4)
    y = redden(x, 0.5, gen())
    f = y[:, :, 0, 0]
    assert (f <= 1).all() and (f[:, 0] <= f[:, 4]).all()
    assert torch.equal(redden(x, 0.0, gen()), x)


def test_augmenter_chain_and_normalizer():
    x = stamps(32)
    own = border_noise(x)
    aug = Augmenter(AugmentConfig(crop=28, reddening_max_ebv=0.1), own, torch.full((32, 5), 4.0))
    v1, v2 = aug(x, own, torch.full((32, 5), 3.0), gen(1)), aug(x, own, torch.full((32, 5), 3.0), gen(2))
    assert v1.shape == (32, 5, 28, 28) and not torch.equal(v1, v2)
    for method in ("arcsinh", "robust"):
        norm = Normalizer.fit(x, method)
        z = norm(x)
        assert z.shape == x.shape and torch.isfinite(z).all()
        assert Normalizer(**norm.to_dict())(x).equal(z)
    z = Normalizer.fit(x, "arcsinh")(x)
    assert abs(z.mean().item()) < 1e-3 and z.std().item() == pytest.approx(1, rel=0.05)
