"""Tests of hybridlat.explore.channels: region masks, locality on planted toy renderers and a tiny generator,
motion correlation, the recommendation and the disk cache."""
import os
from pathlib import Path
from types import SimpleNamespace
import numpy as np
import pytest
import torch
from hybridlat.explore import channels as ch
from hybridlat.explore.channels import (
    FACE_REGIONS,
    MEASURES,
    REGIONS,
    Locality,
    Motion,
    best_prefix,
    cache_key,
    cached,
    channel_correlation,
    clear_cache,
    fd_density,
    invert_frames,
    layer_region_table,
    layer_renderer,
    locality_analysis,
    locality_heatmap,
    motion_heatmap,
    motion_measures,
    motion_table,
    overlay_regions,
    pick_channels,
    plot_evidence,
    recommend_deformation,
    region_density,
    region_masks,
    significant_r,
    top_channels,
)
from hybridlat.realfaces.metrics import pearson
from hybridlat.stylegan2.stylespace import StyleLayout, conv_layer_names, synthesis_from_s, w_plus_to_s
from helpers import tiny_generator


def template_landmarks(size=128):
    "68 hand-placed landmarks of a frontal FFHQ-aligned face in a size² crop (dlib numbering)."
    p = np.zeros((68, 2))
    # jaw, down to y = 100
    p[0:17] = np.c_[np.linspace(28, 100, 17), 60 + 40 * np.sin(np.linspace(0, np.pi, 17))]
    p[17:22] = np.c_[np.linspace(36, 58, 5), np.full(5, 48)]
    p[22:27] = np.c_[np.linspace(70, 92, 5), np.full(5, 48)]
    p[27:31] = np.c_[np.full(4, 64), np.linspace(56, 72, 4)]
    p[31:36] = np.c_[np.linspace(56, 72, 5), np.full(5, 76)]
    for o, cx in ((36, 48), (42, 80)):
        p[o:o + 6] = [[cx - 8, 58], [cx - 3, 55], [cx + 3, 55], [cx + 8, 58], [cx + 3, 61], [cx - 3, 61]]
    t = np.linspace(0, 2 * np.pi, 13)[:12]
    p[48:60] = np.c_[64 - 14 * np.cos(t), 88 - 6 * np.sin(t)]  # 48 left corner, 54 right
    p[60:68] = [[54, 88], [59, 86], [64, 86], [69, 86], [74, 88], [69, 90], [64, 90], [59, 90]]  # inner lips
    return p * size / 128


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    "Every test caches into its own empty folder."
    monkeypatch.setenv('HYBRIDLAT_CACHE', str(tmp_path / 'cache'))
    monkeypatch.delenv('HYBRIDLAT_NO_CACHE', raising=False)


@pytest.fixture(scope='module')
def G():
    "A tiny untrained 32² generator."
    return tiny_generator(32, channel_max=32, w_avg_samples=0)


def test_masks_partition_and_cover_their_features():
    lms = template_landmarks()
    m = region_masks(lms, 128)
    assert m.shape == (len(REGIONS), 128, 128) and m.dtype == bool
    assert (m.sum(0) == 1).all()                                                       # a partition
    at = lambda name, xy: m[REGIONS.index(name), int(round(xy[1])), int(round(xy[0]))]
    assert at('mouth', (64, 88)) and at('nose', lms[30]) and at('eyes', lms[36:42].mean(0))
    assert at('brows', lms[19]) and at('jaw', (64, 97)) and at('skin', (44, 70)) and at('hair_bg', (2, 2))
    half = region_masks(lms / 2, 64)                                                   # scales with the crop
    assert abs(half[0].sum() * 4 / m[0].sum() - 1) < 0.2


def test_region_density_is_area_normalised():
    masks = np.zeros((2, 4, 4), bool)
    masks[0, :1] = True
    masks[1, 1:] = True  # 4 px and 12 px
    diff = torch.zeros(1, 3, 4, 4)
    diff[0, 0, 0, :] = 2.0
    diff[0, 1, 1:, :] = -1.0
    assert torch.allclose(region_density(diff, masks), torch.tensor([[2.0, 1.0]]))


def test_locality_finds_planted_region():
    masks = region_masks(template_landmarks(32), 32)
    m = torch.tensor(masks, dtype=torch.float32)
    def render(s):  # channel k paints only region k; the last, everywhere
        img = torch.einsum('bk,krc->brc', torch.sin(s[:, :len(REGIONS)]), m) + s[:, -1:, None] * 0.2
        return img[:, None].expand(-1, 3, -1, -1)
    d = fd_density(
        render, torch.zeros(len(REGIONS) + 1), torch.full((len(REGIONS) + 1,), 1e-3), masks, batch_size=3
    )
    score = (d / d.sum(1, keepdim=True)).numpy()
    assert (score[:-1].argmax(1) == np.arange(len(REGIONS))).all()
    assert np.allclose(score[:-1].max(1), 1, atol=1e-3) and np.allclose(
        score[-1], 1 / len(REGIONS), atol=1e-3
    )


def test_layer_renderer_matches_full_render(G):
    s = w_plus_to_s(G, G.sample_ws([1]))
    full = synthesis_from_s(G, s)
    for name in ['b4.conv1', 'b16.conv0', 'b32.conv1']:
        assert torch.allclose(layer_renderer(G, s, name)(s[name]), full, atol=1e-5)
    v = s['b8.torgb'].repeat(2, 1)
    v[1, 3] += 0.5
    out = layer_renderer(G, s, 'b8.torgb')(v)
    ref = synthesis_from_s(G, s.replace({'b8.torgb': v[1:]})) - full
    assert torch.allclose(out[1:] - out[:1], ref, atol=1e-5) and ref.abs().max() > 1e-3


@pytest.mark.needs_dlib
def test_locality_analysis_and_cache(G):
    lms = template_landmarks()
    kw = dict(n_samples=2, channels_per_layer=3, landmarks=lms, progress=False)
    hits, misses = ch.CACHE_STATS['hits'], ch.CACHE_STATS['misses']
    loc = locality_analysis(G, **kw)
    layout = StyleLayout.from_generator(G)
    assert len(loc.channels) == 3 * len(layout) and loc.density.shape == (len(loc.channels), len(REGIONS))
    assert np.allclose(loc.score.sum(1), 1) and (loc.density > 0).all() and not loc.detected.any()
    again = locality_analysis(G, **kw)
    assert ch.CACHE_STATS['hits'] == hits + 1 and ch.CACHE_STATS['misses'] == misses + 1
    assert np.array_equal(again.density, loc.density)
    other = locality_analysis(G, **{**kw, 'eps': 0.2})  # a changed parameter misses
    assert ch.CACHE_STATS['misses'] == misses + 2 and not np.array_equal(other.density, loc.density)
    assert clear_cache('locality') == 2 and clear_cache() == 0
    with pytest.raises(ValueError, match='landmarks'): locality_analysis(G, n_samples=1)


def test_cache_disable_and_keys(tmp_path, monkeypatch):
    calls = []
    f = lambda: calls.append(1) or {'a': np.arange(3)}
    cached('t', f, cache=False, x=1)
    cached('t', f, cache=False, x=1)
    assert len(calls) == 2 and not (tmp_path / 'cache').exists()                       # nothing written
    monkeypatch.setenv('HYBRIDLAT_NO_CACHE', '1')
    cached('t', f, x=1)
    assert len(calls) == 3
    monkeypatch.delenv('HYBRIDLAT_NO_CACHE')
    cached('t', f, x=1)
    cached('t', f, x=1)
    assert len(calls) == 4
    assert cache_key('t', a=np.zeros(3)) != cache_key('t', a=np.zeros(4))
    assert cache_key('t', a=1, b=2) == cache_key('t', b=2, a=1) != cache_key('u', a=1, b=2)


def test_correlation_finds_planted_channels():
    rng = np.random.default_rng(1)
    meas = {k: rng.normal(size=40) for k in MEASURES}
    codes = rng.normal(size=(40, 30))
    codes[:, 7] = 3 * meas['brows'] + 0.2 * rng.normal(size=40)
    r = channel_correlation(codes, meas)
    assert r.shape == (30, len(MEASURES)) and np.abs(r[:, 2]).argmax() == 7 and r[7, 2] > 0.9
    assert np.isclose(r[11, 4], pearson(codes[:, 11], meas['pitch']))


def test_within_clip_correlation_ignores_clip_offsets():
    rng = np.random.default_rng(2)
    clip = np.repeat([0, 1, 2], 20)
    meas = {'yaw': rng.normal(size=60) + 10 * clip}
    codes = np.c_[rng.normal(size=60) + 4 * clip, meas['yaw'] - 10 * clip + 0.1 * rng.normal(size=60)]
    assert channel_correlation(codes, meas)[0, 0] > 0.8  # pooled: a spurious correlation
    within = channel_correlation(codes, meas, groups=clip)
    assert abs(within[0, 0]) < 0.35 and within[1, 0] > 0.95
    assert Motion(None, within, meas, 60, 3).r_min() == significant_r(58)


def test_motion_measures_follow_the_mouth():
    lms = np.stack([template_landmarks()] * 3)
    for t, gap in enumerate([0, 4, 8]):
        lms[t, 65:68, 1] += gap
        lms[t, 55:58, 1] += gap
    m = motion_measures(lms, 128)
    assert list(m) == list(MEASURES) and np.all(np.diff(m['mouth']) > 0)
    assert np.allclose(m['yaw'], m['yaw'][0]) and np.allclose(m['eyes'], m['eyes'][0])


def test_invert_frames_uses_project_and_caches(G):
    seen = []
    def fake_project(G_, target, space='S', steps=1):
        seen.append((tuple(target.shape), space, steps))
        ws = G_.mapping.w_avg[None, None].expand(len(target), G_.num_ws, -1)
        return SimpleNamespace(styles=w_plus_to_s(G_, ws).map(lambda v: v + target.mean((1, 2, 3))[:, None]))
    frames = np.random.default_rng(0).integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)
    codes = invert_frames(G, frames, steps=2, project=fake_project)
    assert codes.shape == (3, StyleLayout.from_generator(G).n_channels) and seen == [((3, 3, 32, 32), 'S', 2)]
    assert np.array_equal(invert_frames(G, frames, steps=2, project=fake_project), codes) and len(seen) == 1
    invert_frames(G, frames[:2], steps=2, project=fake_project)
    assert len(seen) == 2


def test_recommendation_on_planted_evidence(G):
    layout = StyleLayout.from_generator(G)
    conv = conv_layer_names(layout)
    chans = pick_channels(layout, conv, 2)
    names = np.array([layout.names[layout.layer_channel(int(c))[0]] for c in chans])
    dens = np.full((len(chans), len(REGIONS)), 0.01)
    early = np.isin(names, conv[:2])
    dens[early, REGIONS.index('eyes')] = 1
    dens[~early, REGIONS.index('hair_bg')] = 1
    r = np.zeros((layout.n_channels, len(MEASURES)))
    i = layout.layer_index(conv[2])
    o = layout.offsets[i]
    r[o:o + layout.channels[i], 0] = 0.9  # conv[2] follows the mouth
    rec = recommend_deformation(Locality(layout, chans, dens, np.zeros(1, bool)), Motion(layout, r, {}, 10))
    assert rec['layers'] == conv[:3] and rec['count'] == 3
    assert set(rec['channels']) == set(chans[early].tolist()) | set(range(o, o + layout.channels[i]))
    assert best_prefix([0.2, 0.2, 0.2]) == 1 and best_prefix([0, 1, 1, 0]) == 3


def test_tables_and_plots(G):
    import matplotlib

    matplotlib.use('Agg')
    layout = StyleLayout.from_generator(G)
    chans = pick_channels(layout, None, 2)
    dens = np.full((len(chans), len(REGIONS)), 0.1)
    dens[5, REGIONS.index('mouth')] = 3.0
    loc = Locality(layout, chans, dens, np.zeros(1, bool))
    top = top_channels(loc, 'mouth', k=3)
    assert top[0]['index'] == chans[5] and top[0]['top_region'] == 'mouth' and len(top) == 3
    layers, table = layer_region_table(loc)
    assert layers == list(layout.names) and table.shape == (len(layout), len(REGIONS))
    r = np.zeros((layout.n_channels, len(MEASURES)))
    r[9, 1] = -0.95
    motion = Motion(layout, r, {}, 12)
    assert motion_table(motion, 'eyes', k=1)[0]['index'] == 9 and motion.best_measure()[9] == 'eyes'
    assert locality_heatmap(loc).data[0].z.shape == (len(layout), len(REGIONS))
    assert motion_heatmap(motion).data[0].z.shape == (len(layout), len(MEASURES))
    plot_evidence(recommend_deformation(loc, motion))
    img = np.zeros((32, 32, 3), np.uint8)
    assert overlay_regions(img, region_masks(template_landmarks(32), 32)).shape == (32, 32, 3)
    assert significant_r(10) > significant_r(40) > 0
