"""Tests of hybridlat.realfaces.metrics: hand-computed pixel metrics, FD-dlib, landmark/expression/jitter
measures, real data."""
import numpy as np
import pytest
import torch

from hybridlat.realfaces.metrics import (
    descriptor_stats,
    detection_rate,
    expression_amplitude,
    expression_following,
    fd_dlib,
    fd_dlib_baseline,
    frechet_distance,
    gaussian_window,
    identity_distance,
    identity_similarity,
    l1,
    landmark_distance,
    ms_ssim,
    motion_snr,
    attainable_r,
    pearson,
    psnr,
    ssim,
    temporal_jitter,
)

C1, C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2


def ssim_one_window(x, y):
    "SSIM of an 11×11 pair from the definition (one window position), with numpy weighted sums."
    w = np.outer(gaussian_window().double().numpy(), gaussian_window().double().numpy())
    mx, my = (w * x).sum(), (w * y).sum()
    vx, vy, cxy = (w * x * x).sum() - mx ** 2, (w * y * y).sum() - my ** 2, (w * x * y).sum() - mx * my
    return (2 * mx * my + C1) * (2 * cxy + C2) / ((mx ** 2 + my ** 2 + C1) * (vx + vy + C2))


# ---------------------------------------------------------------- pixel metrics

def test_identical_images():
    img = np.random.default_rng(0).integers(0, 256, (40, 40, 3)).astype(np.uint8)
    assert ssim(img, img) == pytest.approx(1, abs=1e-6)
    assert ms_ssim(img, img) == pytest.approx(1, abs=1e-6)
    assert psnr(img, img) == np.inf and l1(img, img) == 0


def test_constant_images_hand_computed():
    a, b = np.full((20, 20, 3), 100, np.uint8), np.full((20, 20, 3), 110, np.uint8)
    assert ssim(a, b) == pytest.approx((2 * 100 * 110 + C1) / (100 ** 2 + 110 ** 2 + C1), abs=1e-6)
    assert psnr(a, b) == pytest.approx(10 * np.log10(255 ** 2 / 10 ** 2))
    assert l1(a, b) == pytest.approx(10 / 255)


def test_gaussian_window():
    g = gaussian_window(11, 1.5).double()
    assert g.sum() == pytest.approx(1) and g.argmax() == 5
    assert g[4] / g[5] == pytest.approx(np.exp(-1 / (2 * 1.5 ** 2)))


def test_small_case_against_definition():
    rng = np.random.default_rng(1)
    for _ in range(3):
        x, y = rng.uniform(0, 255, (11, 11)), rng.uniform(0, 255, (11, 11))
        assert ssim(x[..., None], y[..., None], data_range=255) == pytest.approx(
            ssim_one_window(x, y), abs=1e-5
        )
    x = rng.uniform(0, 255, (11, 11))
    y = 0.5 * x + 40                                      # a contrast change: structure identical
    assert ssim(x[..., None], y[..., None], data_range=255) == pytest.approx(ssim_one_window(x, y), abs=1e-5)


def test_constant_shift_keeps_structure():
    from hybridlat.realfaces.metrics import _pair, _ssim_cs
    tex = np.random.default_rng(2).integers(0, 200, (32, 32, 3)).astype(np.uint8)
    s, cs = _ssim_cs(*_pair(tex, tex + np.uint8(20), None), 11, 1.5)
    assert float(cs) == pytest.approx(1, abs=1e-5) and float(s) < 0.99


def test_torch_batches_and_gradients():
    x = (torch.rand(2, 3, 48, 48) * 2 - 1).requires_grad_()
    y = (x.detach() + 0.2 * torch.randn_like(x)).clamp(-1, 1)
    per = ssim(x, y, reduction='none')
    assert per.shape == (2,) and (per < 1).all()
    loss = (1 - ms_ssim(x, y)) + l1(x, y)
    loss.backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    # float input defaults to the kit's [-1, 1]: the same images as 0..255 with data_range=255 give the same
    # values
    with torch.no_grad():
        for m in (ssim, ms_ssim, psnr, l1):
            assert float(m(x, y)) == pytest.approx(
                float(m((x + 1) * 127.5, (y + 1) * 127.5, data_range=255)), abs=1e-5
            )


def test_pixel_metric_errors():
    a = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match='differ in shape'): l1(a, np.zeros((8, 9, 3), np.uint8))
    with pytest.raises(ValueError, match='smaller than the 11-px SSIM window'): ssim(a, a)


def test_ssim_orders_degradations():
    rng = np.random.default_rng(3)
    img = (np.add.outer(np.arange(64), np.arange(64)) * 2 % 256).astype(np.uint8)[..., None].repeat(3, -1)
    mild = np.clip(img + rng.normal(0, 5, img.shape), 0, 255).astype(np.uint8)
    strong = np.clip(img + rng.normal(0, 30, img.shape), 0, 255).astype(np.uint8)
    assert ssim(img, mild) > ssim(img, strong) and psnr(img, mild) > psnr(img, strong)


# ---------------------------------------------------------------- FD-dlib

def test_fd_identical_sets_is_zero():
    d = np.random.default_rng(4).normal(size=(200, 128)) * 0.05
    assert abs(fd_dlib(d, d)) < 1e-6


def test_fd_known_values():
    rng = np.random.default_rng(5)
    d = rng.normal(size=(300, 128)) * 0.05
    assert fd_dlib(d, d + 0.1) == pytest.approx(128 * 0.01, rel=1e-6)  # same covariance: squared mean shift
    # two isotropic Gaussians: FD = d (s1 - s2)^2 for N(0, s1² I), N(0, s2² I)
    assert frechet_distance(np.zeros(3), 4 * np.eye(3), np.zeros(3), np.eye(3)) == pytest.approx(
        3 * (2 - 1) ** 2
    )


def test_fd_matches_scipy():
    scipy_linalg = pytest.importorskip('scipy.linalg')
    rng = np.random.default_rng(6)
    (m1, c1), (m2, c2) = (
        descriptor_stats(rng.normal(size=(250, 128)) * 0.04),
        descriptor_stats(rng.normal(size=(250, 128)) * 0.06 + 0.01),
    )
    ref = ((m1 - m2) ** 2).sum() + np.trace(c1 + c2 - 2 * np.real(scipy_linalg.sqrtm(c1 @ c2)))
    assert frechet_distance(m1, c1, m2, c2) == pytest.approx(ref, rel=1e-6)


def test_nan_rows_dropped_and_baseline():
    d = np.random.default_rng(7).normal(size=(100, 128))
    with_nan = np.concatenate([d, np.full((5, 128), np.nan)])
    assert fd_dlib(with_nan, d) == pytest.approx(0, abs=1e-6)
    base = fd_dlib_baseline(d, seed=0)
    assert base > 0 and base == fd_dlib_baseline(with_nan, seed=0)
    with pytest.raises(ValueError, match='at least 2'): descriptor_stats(np.full((3, 128), np.nan))


def test_identity_metrics():
    a, b = np.r_[1.0, 0, np.zeros(126)], np.r_[0.0, 2, np.zeros(126)]
    assert identity_distance(a, b) == pytest.approx(np.sqrt(5))
    assert identity_similarity(a, b) == pytest.approx(0) and identity_similarity(a, 3 * a) == pytest.approx(1)
    assert identity_distance(np.stack([a, b]), np.stack([a, a])).tolist() == pytest.approx([0, np.sqrt(5)])


# ---------------------------------------------------------------- landmarks, expression, jitter

def face(mouth_gap=0.0, eye_h=6.0, shift=(0, 0)):
    "Hand-built 68 landmarks with the points the measures use (outer eye corners 60 px apart)."
    p = np.zeros((68, 2)) + [100, 100]
    for o, cx in ((36, 70), (42, 130)):
        p[o : o + 6] = [
            [cx - 15, 80],
            [cx - 5, 80 - eye_h],
            [cx + 5, 80 - eye_h],
            [cx + 15, 80],
            [cx + 5, 80 + eye_h],
            [cx - 5, 80 + eye_h],
        ]
    p[60:65] = np.c_[
        np.linspace(80, 120, 5), [130, 130 - mouth_gap / 2, 130 - mouth_gap / 2, 130 - mouth_gap / 2, 130]
    ]
    p[65:68] = np.c_[[110, 100, 90], np.full(3, 130 + mouth_gap / 2)]
    p[30], p[8], p[48], p[54] = [100, 105], [100, 170], [75, 130], [125, 130]
    return p + shift


def test_landmark_distance():
    ref = face()
    assert landmark_distance(ref + [3, 4], ref) == pytest.approx(5 / 90)  # outer corners 55 and 145: IOD 90
    seq = np.stack([ref, ref + [0, 9]])
    assert landmark_distance(seq, np.stack([ref, ref])).tolist() == pytest.approx([0, 0.1])


def test_pearson():
    assert pearson([1, 2, 3], [2, 4, 6.5]) == pytest.approx(4.5 / np.sqrt(2 * 366 / 36))
    assert pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1)
    assert np.isnan(pearson([2, 2, 2], [1, 2, 3]))


def test_motion_snr_separates_a_turn_from_noise():
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 1.0, 4000)
    assert motion_snr(noise) == pytest.approx(1.0, abs=0.05)               # std(Δ²x) = √6 σ for white noise
    t = np.arange(40) / 10
    turn = 5 * np.sin(2 * np.pi * 0.3 * t)
    assert motion_snr(turn + rng.normal(0, 1, 40)) > 3 > motion_snr(0.5 * turn + rng.normal(0, 1, 40))
    assert np.isnan(motion_snr([1, 2, 3])) and motion_snr(np.ones(10)) == float('inf')


def test_attainable_r_is_the_correlation_of_a_perfect_noisy_copy():
    np.testing.assert_allclose(attainable_r([0.5, 1.0, 2.0, np.inf]), [0, 0, 0.75, 1])
    t = np.arange(60) / 10
    for amplitude in (1.0, 3.0):                  # driver and a perfect copy, each read with unit noise
        snr, r = [], []
        for seed in range(300):
            rng = np.random.default_rng(seed)
            true = amplitude * np.sin(2 * np.pi * 0.2 * t)
            driver, copy = true + rng.normal(0, 1, 60), true + rng.normal(0, 1, 60)
            snr.append(motion_snr(driver))
            r.append(np.corrcoef(driver, copy)[0, 1])
        assert np.mean(r) == pytest.approx(attainable_r(snr).mean(), abs=0.05)


def test_expression_following():
    t = np.arange(30)
    gaps, eyes = 4 + 0.5 * t + 3 * np.sin(t / 2), 6 + 2 * np.cos(t / 4)
    drive = np.stack([face(g, e) for g, e in zip(gaps, eyes)])
    follow = 2 * drive + [40, 10]                           # same expressions, bigger face elsewhere
    r = expression_following(drive, follow, (256, 256), (512, 512))
    assert r['mouth'] == pytest.approx(1) and r['eyes'] == pytest.approx(1)
    r_rev = expression_following(drive, drive[::-1], (256, 256), (256, 256))
    assert r_rev['mouth'] < 0
    with pytest.raises(ValueError, match='differ in length'): expression_following(drive, drive[:5], 256, 256)


def test_expression_amplitude():
    t = np.arange(30)
    gaps = 4 + 0.5 * t + 3 * np.sin(t / 2)
    drive = np.stack([face(g, 6.0) for g in gaps])
    same = expression_amplitude(drive, 2 * drive + [40, 10], (256, 256), (512, 512))   # scale-free
    assert same['mouth'] == pytest.approx(1)
    half = np.stack([face(g, 6.0) for g in gaps.mean() + (gaps - gaps.mean()) / 2])
    assert expression_amplitude(drive, half, 256, 256)['mouth'] == pytest.approx(0.5, rel=0.05)
    assert np.isnan(expression_amplitude(drive, drive, 256, 256)['eyes'])     # the driver's eyes never move
    with pytest.raises(ValueError, match='differ in length'): expression_amplitude(drive, drive[:5], 256, 256)


def test_temporal_jitter():
    rng = np.random.default_rng(8)
    moving = np.stack([face(shift=(2 * k, k)) for k in range(50)])
    assert temporal_jitter(moving) == pytest.approx(0, abs=1e-9)
    j = temporal_jitter(moving + rng.normal(0, 1, moving.shape))
    assert 1.5 / 90 < j < 1.9 / 90                          # ≈ √π px per frame / IOD 90
    assert temporal_jitter(moving + rng.normal(0, 2, moving.shape)) > j
    with pytest.raises(ValueError, match='T ≥ 3'): temporal_jitter(moving[:2])


# ---------------------------------------------------------------- real data

@pytest.fixture(scope='module')
def data():
    from hybridlat.realfaces.faces import find_data_dir
    try: return find_data_dir()
    except FileNotFoundError as e: pytest.skip(f"real data absent ({e})")


@pytest.mark.needs_dlib
def test_detection_rate_real(data):
    portraits = sorted((data / 'portraits').iterdir())
    assert detection_rate(portraits, max_size=320) >= 14 / 16
    assert detection_rate([np.zeros((100, 100, 3), np.uint8)] * 2) == 0
    with pytest.raises(ValueError, match='no images'): detection_rate([])


@pytest.mark.needs_dlib
def test_fd_dlib_real_images(data):
    celeba = sorted((data / 'faces/celeba').iterdir())[:12]
    assert abs(fd_dlib(celeba, celeba)) < 1e-6
    utk = sorted((data / 'faces/utkface').iterdir())[:12]
    assert fd_dlib(celeba, utk, upsample=1) > 0


def test_ms_ssim_keeps_its_weights_on_the_images_device():
    # the 'meta' device stands in for CUDA on a CPU-only machine: any tensor left on the CPU is refused.
    # A GPU encoder run (session 13) failed here: the scale weights were made on the CPU.
    a = torch.rand(2, 3, 128, 128, device='meta')
    assert ms_ssim(a, a, data_range=1.0).device.type == 'meta'
