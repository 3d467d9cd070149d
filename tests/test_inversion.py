"""Tests of hybridlat.explore.inversion: projection into W / W+ / S, the reconstruction loss, input checks,
edits, tables."""
import numpy as np
import pytest
import torch
from hybridlat.stylegan2.stylespace import StyleCode, StyleLayout, w_plus_to_s, synthesis_from_s
from hybridlat.training.discriminator import Discriminator
from hybridlat.realfaces.metrics import psnr
from hybridlat.explore.inversion import (
    Inversion,
    ReconstructionLoss,
    project,
    check_target,
    pca_directions,
    style_offset,
    edit_inversion,
    style_prior,
    prior_distance,
    inversion_table,
    lr_schedule,
    init_noise,
)
from helpers import tiny_generator


@pytest.fixture(scope='module')
def G():
    "A tiny untrained 32² generator (w_dim 32, 8 ws) with w_avg set from its own samples."
    return tiny_generator(32, channel_base=512)


@pytest.fixture(scope='module')
def fakes(G):
    "Two images G made itself, and the W+ latents that made them."
    with torch.no_grad():
        ws = G.sample_ws([3, 4])
        return G.synthesis(ws).clamp(-1, 1), ws


@pytest.fixture(scope='module')
def mean_face(G):
    with torch.no_grad(): return G.synthesis(G.mapping.w_avg[None, None].expand(1, G.num_ws, -1))


@pytest.fixture(scope='module')
def inversions(G, fakes):
    return {sp: project(G, fakes[0], sp, steps=40, progress=False) for sp in ('W', 'W+', 'S')}


def test_result_shapes(G, fakes, inversions):
    n, layout = len(fakes[0]), StyleLayout.from_generator(G)
    assert inversions['W'].latent.shape == (n, G.w_dim)
    assert inversions['W+'].latent.shape == (n, G.num_ws, G.w_dim)
    assert isinstance(inversions['S'].latent, StyleCode) and inversions['S'].latent.layout == layout
    for sp, inv in inversions.items():
        assert isinstance(inv, Inversion) and inv.space == sp and inv.noise is None
        assert isinstance(inv.styles, StyleCode) and inv.styles.batch_size == n
        assert inv.images.shape == fakes[0].shape and len(inv.losses) == 40
        with torch.no_grad(): torch.testing.assert_close(synthesis_from_s(G, inv.styles), inv.images)
        assert inv.target is not None and torch.equal(inv.target, fakes[0])


def test_projection_lowers_loss(inversions):
    for sp, inv in inversions.items():
        assert inv.losses[-1] < 0.5 * inv.losses[0], (sp, inv.losses[0], inv.losses[-1])


def test_generated_image_is_recovered(fakes, mean_face, inversions):
    "The recovered latent of a generated image renders it far better than the mean face does."
    baseline = float(psnr(mean_face.expand_as(fakes[0]), fakes[0]))
    for sp in ('W+', 'S'): assert float(psnr(inversions[sp].images, fakes[0])) > baseline + 6, sp


def test_w_plus_at_least_as_good_as_w(fakes, inversions):
    assert (
        float(psnr(inversions['W+'].images, fakes[0])) >= float(psnr(inversions['W'].images, fakes[0])) - 0.5
    )


def test_bad_inputs_raise(G, fakes):
    x = fakes[0]
    bad = [
        (x[:, :, :16, :16], 'for this 32² generator'),
        (x[0], 'got shape'),
        (torch.full_like(x, float('nan')), 'NaN'),
        ((x + 1) * 127.5, 'must be in [-1, 1]'),
        (((x + 1) * 127.5).to(torch.uint8), 'from_uint8'),
        (x.numpy(), 'got ndarray'),
    ]
    for t, msg in bad:
        with pytest.raises(ValueError, match=msg.replace('[', r'\[').replace(']', r'\]')):
            project(G, t, steps=1, progress=False)
    for kw, msg in [
        (dict(space='Z'), 'space must be one of'),
        (dict(steps=0), 'steps must be at least 1'),
        (dict(loss='l1'), 'loss must be a callable'),
        (dict(init='random'), "init must be 'mean'"),
        (dict(space='W', init=fakes[1]), 'cannot start from a W\\+ latent'),
        (dict(lr=0), 'lr must be positive'),
    ]:
        with pytest.raises(ValueError, match=msg): project(G, x, progress=False, **{'steps': 1, **kw})


def test_custom_loss_is_used(G, fakes):
    "A loss that compares with another image pulls the result towards that image, not towards the target."
    target, other = fakes[0][:1], fakes[0][1:]
    calls = []
    def towards_other(images, _):
        calls.append(1)
        return (images - other).abs().mean()
    inv = project(G, target, 'W+', steps=40, loss=towards_other, progress=False)
    assert len(calls) == 40
    assert float(psnr(inv.images, other)) > float(psnr(inv.images, target)) + 3
    extra = ReconstructionLoss(l1=0, l2=0, ms_ssim=0, extra=towards_other)
    assert float(extra(target, target)) == pytest.approx(float((target - other).abs().mean()))


def test_reconstruction_loss_terms(G, fakes):
    x, y = fakes[0][:1], fakes[0][1:]
    loss = ReconstructionLoss()
    assert float(loss(x, x)) == pytest.approx(0, abs=1e-5) and float(loss(x, y)) > 0
    assert list(loss.terms(x, y)) == ['l1', 'l2', 'ms_ssim']
    D = Discriminator(img_resolution=32, channel_base=512, channel_max=64)
    with_d = ReconstructionLoss(discriminator=D)
    terms = with_d.terms(x, y)
    assert list(terms) == ['l1', 'l2', 'ms_ssim', 'd_features'] and float(terms['d_features']) > 0
    assert all(p.requires_grad for p in D.parameters())                       # the caller's D is left alone
    assert not any(p.requires_grad for p in with_d.D.parameters())
    with pytest.raises(ValueError, match='extra must be a callable'): ReconstructionLoss(extra=3)


def test_warm_start_and_noise(G, fakes, inversions):
    """S started from a W+ result begins at that result's loss; noise maps are optimised and returned
    normalised."""
    inv = project(G, fakes[0], 'S', steps=2, init=inversions['W+'], progress=False, lr_rampup=0)
    loss0 = float(ReconstructionLoss()(inversions['W+'].images, fakes[0]))
    assert inv.losses[0] == pytest.approx(loss0, rel=1e-3)
    inv = project(G, fakes[0], 'W+', steps=3, optimize_noise=True, progress=False)
    assert set(inv.noise) == set(init_noise(G, 1)) and all(v.shape[0] == 2 for v in inv.noise.values())
    assert all(abs(float(v.std()) - 1) < 0.2 for v in inv.noise.values())


def test_lr_schedule():
    assert lr_schedule(0) == 0 and lr_schedule(0.5) == 1 and 0 < lr_schedule(0.9) < 1


def test_edit_is_the_same_in_every_space(G, inversions):
    "A W edit applied through Δs gives the same images as editing w itself."
    dirs, sds = pca_directions(G, n=500, k=3)
    assert torch.allclose(dirs @ dirs.T, torch.eye(3), atol=1e-4) and (sds[:-1] >= sds[1:]).all()
    delta = 2 * sds[0] * dirs[0]
    with torch.no_grad():
        direct = G.synthesis(inversions['W'].latent[:, None].expand(-1, G.num_ws, -1) + delta)
    torch.testing.assert_close(edit_inversion(G, inversions['W'], delta)[1], direct, atol=1e-4, rtol=1e-4)
    off = style_offset(G, delta)
    s_edit, _ = edit_inversion(G, inversions['S'], delta)
    torch.testing.assert_close(
        s_edit.to_flat() - inversions['S'].styles.to_flat(), torch.cat(list(off.values()), 1).expand(2, -1)
    )


def test_prior_distance(G, inversions):
    prior = style_prior(G, n=300)
    with torch.no_grad(): samples = w_plus_to_s(G, G.sample_ws(range(50, 56)))
    inside, outside = prior_distance(samples, prior)
    assert float(outside.max()) < 1e-3 and 0.3 < float(inside.mean()) < 3
    assert float(prior_distance(inversions['W'].styles, prior)[1].max()) < 1e-3
    assert float(prior_distance(inversions['W+'].styles, prior)[1].min()) > 1e-2


def test_inversion_table(inversions):
    rows = inversion_table(inversions, identity=False)
    assert [r['space'] for r in rows] == ['W', 'W+', 'S']
    assert all(set(r) == {'space', 'steps', 'loss', 'psnr', 'ssim'} and np.isfinite(r['psnr']) for r in rows)


@pytest.mark.needs_dlib
def test_inversion_table_identity(inversions):
    rows = inversion_table(list(inversions.values())[:1], identity=True)     # untrained G: dlib finds no face
    assert rows[0]['identity_faces'].endswith('/2') and 'identity' in rows[0]


def test_latent_noise_is_seeded(G, fakes):
    "NVIDIA-style latent jitter changes the path, reproducibly for a given seed."
    run = lambda **kw: project(G, fakes[0], 'W', steps=3, progress=False, **kw).latent
    a, b, plain = run(latent_noise=0.5, seed=1), run(latent_noise=0.5, seed=1), run()
    assert torch.equal(a, b) and not torch.allclose(a, plain)
