"Checks A3, A4, A5: correct answers pass; typical wrong answers fail with a diagnosis a student can act on."
import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from hybridlat.classroom.checks_latents import (
    A4_SEED,
    _a4_verdict,
    a4_faces,
    attribute_labels,
    beats,
    channel_effects,
    check_a3,
    check_a4,
    check_a5,
    gender_labeller,
    mean_ws,
    memo,
    mouth_openings,
    spread,
)
from hybridlat.realfaces.datasets import align_photo
from hybridlat.explore.edits import mouth_box, render, sample_w
from hybridlat.realfaces.faces import face_landmarks, find_data_dir
from hybridlat.images import from_uint8, to_uint8
from hybridlat.explore.inversion import project
from hybridlat.stylegan2.latents import style_statistics
from hybridlat.stylegan2.stylespace import StyleCode, StyleLayout, synthesis_from_s

from helpers import G, failed  # noqa: F401 (G is a fixture)


def test_tools():
    assert beats(2, [1, 2, 3]) == pytest.approx(1 / 3)
    assert spread([1, 2, 3], '.0f') == 'median 2, 90th percentile 3, largest 3'
    assert memo(('test', 'x'), lambda: 1) == 1 and memo(('test', 'x'), lambda: 2) == 1


# ---------------------------------------------------------------- A3: inversion into W and W+
@pytest.fixture(scope='module')
def a3(G):
    crop, _ = align_photo(find_data_dir() / 'portraits' / 'liveportrait_s1.jpg')
    target = from_uint8(crop[None])
    with torch.enable_grad():
        w = project(G, target, 'W', steps=20, progress=False).latent[:, None].repeat(1, G.num_ws, 1)
        wp = project(G, target, 'W+', steps=20, progress=False).latent
    return target, w, wp


@pytest.mark.needs_dlib
def test_a3_reference_passes(G, a3):
    r = check_a3(G, *a3)
    assert r and len(r.criteria) == 11, r.report()
    assert 'for the mean face' in r.report() and 'W+ fits at least as well as W' in r.report()


@pytest.mark.needs_dlib
def test_a3_latent_never_moved(G, a3):
    failed(
        check_a3(G, a3[0], mean_ws(G), a3[2]),
        'your W latent is still the starting point',
        'requires_grad=True',
    )
    failed(check_a3(G, a3[0], mean_ws(G).clone(), mean_ws(G).clone()), 'W and W+ latents are still')


@pytest.mark.needs_dlib
def test_a3_w_and_wplus_mixed_up(G, a3):
    target, w, wp = a3
    failed(
        check_a3(G, target, wp, wp), 'the W latent is one w', 'its rows differ', 'you returned a W+ latent'
    )
    failed(check_a3(G, target, w, w), 'all 12 rows are equal: that is a W latent')


@pytest.mark.needs_dlib
def test_a3_shapes_and_values(G, a3):
    target, w, wp = a3
    failed(check_a3(G, target, w[:, 0], wp), 'shape [1, 256]', 'repeat the one w for every layer')
    failed(check_a3(G, target, w.numpy(), wp), 'expected a torch tensor')
    failed(check_a3(G, target, w, wp * float('nan')), 'NaN')
    failed(check_a3(G, (target + 1) * 127.5, w, wp), 'target image', '0…255 data')


@pytest.mark.needs_dlib
def test_a3_wrong_image_range(G, a3):
    target, _, wp = a3
    with torch.enable_grad():
        w01 = (
            project(G, (target + 1) / 2, 'W', steps=20, progress=False).latent[:, None].repeat(1, G.num_ws, 1)
        )
    failed(check_a3(G, target, w01, wp), 'W reconstruction fits the target in [-1, 1]', 'a target in [0, 1]')


@pytest.mark.needs_dlib
def test_a3_too_few_steps(G, a3):
    "A latent barely moved from w̄ is not a reconstruction: it must beat the mean face by the margin."
    target, w, wp = a3
    start = mean_ws(G)
    failed(
        check_a3(G, target, start + 0.02 * (w - start), start + 0.02 * (wp - start)),
        'beats the mean face',
        'run more steps',
    )


# ---------------------------------------------------------------- A4: mouth channel
SMALL = dict(n_seeds=6, n_random=10)


@pytest.fixture(scope='module')
def a4_answer(G):
    """A channel found the way a student would: gradient screen of the mouth region, then intervention on
    other faces."""
    layout, std = StyleLayout.from_generator(G), torch.as_tensor(style_statistics(G, 500).std.copy())
    s, boxes, _, _ = a4_faces(G, range(4))
    with torch.enable_grad():
        flat = s.to_flat().detach().requires_grad_(True)
        img = synthesis_from_s(G, StyleCode.from_flat(flat, layout))
        lms = np.stack([face_landmarks(im, box=b) for im, b in zip(to_uint8(img.detach()), boxes)])
        t, b, l, r = [round(v * 128) for v in mouth_box(lms, 128)]
        sq, gen = 0, torch.Generator().manual_seed(0)
        for _ in range(8):
            region = img[..., t:b, l:r]
            (g,) = torch.autograd.grad(
                (region * torch.randn(region.shape, generator=gen)).sum(), flat, retain_graph=True
            )
            sq = sq + g.square().sum(0)
    conv = torch.tensor(
        [not layout.names[layout.layer_channel(j)[0]].endswith('torgb') for j in range(layout.n_channels)]
    )
    top = torch.where(conv, sq.sqrt() * std, torch.tensor(0.)).topk(12).indices
    cands = [(layout.names[layout.layer_channel(int(j))[0]], layout.layer_channel(int(j))[1]) for j in top]
    effects = [channel_effects(G, l, [c], range(100, 106))[0] for l, c in cands]
    return cands[int(np.argmax(effects))]


@pytest.mark.needs_dlib
def test_a4_measure(G):
    s, boxes, m, found = a4_faces(G, range(A4_SEED, A4_SEED + 4))
    x = synthesis_from_s(G, s)
    assert found == 4 and m.shape == (4,) and np.isfinite(m).all()
    np.testing.assert_array_equal(mouth_openings(x, boxes), m)


@pytest.mark.needs_dlib
def test_a4_found_channel_passes(G, a4_answer):
    r = check_a4(G, *a4_answer, **SMALL)
    assert r, r.report()
    assert 'of 10 random channels of' in r.report() and 'needed ≥ 90%' in r.report()


def _random_effects(G, layer):
    "The check's own random channels of `layer` and their effects (remembered from the check)."
    C = StyleLayout.from_generator(G).channels[StyleLayout.from_generator(G).layer_index(layer)]
    chans = np.random.default_rng(0).permutation(C)[:SMALL['n_random']]
    return chans, channel_effects(G, layer, chans, range(A4_SEED, A4_SEED + SMALL['n_seeds']))


@pytest.mark.needs_dlib
def test_a4_typical_channel_fails(G, a4_answer):
    "A channel picked at random (here: the median of the check's own random sample) beats about half of them."
    layer = a4_answer[0]
    chans, eff = _random_effects(G, layer)
    typical = int(chans[np.argsort(eff)[len(eff) // 2]])
    failed(
        check_a4(G, layer, typical, **SMALL), f'random channels of {layer}', 'needed ≥ 90%', 'clearly larger'
    )


def test_a4_verdicts():
    "The wording for each kind of effect, on made-up numbers: opens, closes, does nothing special."
    r = np.linspace(-0.01, 0.01, 10)
    what, ok, detail = _a4_verdict('b64.conv1', 3, 0.05, r, 5.0, 0.9, 6, 6)
    assert ok and 'beats 10 of 10 random channels of b64.conv1 (100%' in detail
    what, ok, detail = _a4_verdict('b64.conv1', 3, -0.05, r, 5.0, 0.9, 6, 5)
    assert not ok and 'but + closes it' in detail and 'dlib found 5 of 6 faces' in detail
    what, ok, detail = _a4_verdict('b64.conv1', 3, 0.004, r, 5.0, 0.9, 6, 6)
    assert not ok and 'beats 7 of 10' in detail and 'clearly larger' in detail
    assert not _a4_verdict('b64.conv1', 3, 0.0, r - 1, 5.0, 0.9, 6, 6)[1]  # beating all is not enough at zero


def test_a4_bad_layer_or_channel(G):
    failed(check_a4(G, 'b16.torgb', 0, **SMALL), 'toRGB layer', 'Choose a conv layer')
    failed(check_a4(G, 'b16conv0', 0, **SMALL), "'b16conv0' is not a style layer", 'Style layers: b4.conv1')
    failed(check_a4(G, 40, 0, **SMALL), '40 is not a style layer')
    failed(check_a4(G, 'b64.conv1', 40, **SMALL), 'b64.conv1 has 32 channels')
    failed(check_a4(G, 'b64.conv1', 3.5, **SMALL), 'expected an int')


# ---------------------------------------------------------------- A5: attribute direction
FAST = dict(n_held_out=400, n_edit=12, n_random=12)


@pytest.fixture(scope='module')
def a5(G):
    labeller, _ = gender_labeller()
    w = sample_w(G, 300, seed=0)
    y = attribute_labels(labeller, render(G, w))
    clf = LogisticRegression(max_iter=2000, class_weight='balanced').fit(w.numpy(), y)
    d = torch.tensor(clf.coef_[0], dtype=torch.float32)
    return labeller, w, y, clf, d / d.norm()


def test_a5_reference_passes(G, a5):
    labeller, _, _, clf, direction = a5
    r = check_a5(G, labeller, clf, direction, **FAST)
    assert r and len(r.criteria) == 4, r.report()
    assert 'chance' in r.report() and '12 random directions' in r.report()


def test_a5_direction_mistakes(G, a5):
    labeller, _, _, clf, direction = a5
    failed(check_a5(G, labeller, clf, -direction, **FAST), 'wrong way', 'flip')
    failed(check_a5(G, labeller, clf, direction * 7, **FAST), '|direction| = 7', 'divide it by its norm')
    failed(check_a5(G, labeller, clf, direction[None], **FAST), 'shape [1, 256]', 'take direction[0]')
    failed(check_a5(G, labeller, clf, direction * float('nan'), **FAST), 'NaN')


def test_a5_label_mistakes(G, a5):
    labeller, w, y, _, direction = a5
    balanced = dict(max_iter=2000, class_weight='balanced')
    shuffled = LogisticRegression(**balanced).fit(w.numpy(), np.random.default_rng(0).permutation(y))
    failed(check_a5(G, labeller, shuffled, direction, **FAST), 'No better than guessing', 'same order')
    flipped = LogisticRegression(**balanced).fit(w.numpy(), 1 - y)
    failed(check_a5(G, labeller, flipped, direction, **FAST), 'the other way round')
    failed(check_a5(G, labeller, LogisticRegression(), direction, **FAST), 'clf.predict failed')
