"""Tests of hybridlat.stylegan2.latents: sizes, mixing grids, StyleSpace statistics and their cache, reachable
dimensions, truncation."""
import numpy as np
import pytest
import torch
from hybridlat.stylegan2.generator import Generator, config_f_kwargs, mix_styles
from hybridlat.stylegan2.stylespace import StyleLayout, w_plus_to_s
from hybridlat.stylegan2.latents import (
    latent_space_sizes,
    markdown_table,
    w_resolutions,
    mixing_layer_ranges,
    style_mixing_grid,
    sample_style_codes,
    style_statistics,
    reachable_dims,
    pca_rank,
    mean_style,
    truncate_styles,
)
from helpers import tiny_generator



pytestmark = pytest.mark.usefixtures('no_grad')    # forward passes only (conftest's fixture)


@pytest.fixture(scope='module')
def G():
    "A tiny untrained generator whose layers have 64, 32 and 16 channels, fewer and more than w_dim = 32."
    return tiny_generator(16, frozen=False)


@pytest.fixture(scope='module')
def G1024(): return Generator(**config_f_kwargs()).eval()


def test_sizes_config_f(G1024):
    sizes = latent_space_sizes(G1024)
    assert (sizes['z'], sizes['w'], sizes['num_ws'], sizes['w_plus']) == (512, 512, 18, 9216)
    assert (sizes['s'], sizes['s_no_torgb'], sizes['s_deformation']) == (9088, 6048, 5120)
    assert sizes['style_layers'] == 26 and sizes['pixels'] == 3 * 1024 * 1024
    assert sizes['parameters'] == sum(p.numel() for p in G1024.parameters())


def test_sizes_small(G):
    sizes = latent_space_sizes(G)
    layers = G.synthesis.style_layers()
    # b4, b8, b16: conv ins + toRGB
    assert (
        sizes['s']
        == sum(l.affine.out_features for _, l in layers)
        == (64 + 64) + (64 + 32 + 32) + (32 + 16 + 16)
    )
    assert sizes['s_no_torgb'] == sum(l.in_channels for n, l in layers if not n.endswith('torgb'))
    assert sizes['w_plus'] == G.num_ws * 32 == 6 * 32


def test_markdown_table():
    table = markdown_table([{'a': 1234567, 'b': 0.5}, {'a': 2, 'b': 'x'}])
    assert table.splitlines() == ['| a | b |', '|---|---|', '| 1,234,567 | 0.5 |', '| 2 | x |']
    with pytest.raises(ValueError, match='at least one row'): markdown_table([])


def test_mixing_ranges(G1024):
    res = w_resolutions(G1024)
    assert len(res) == 18 and res[0] == 4 and res[1:3] == [8, 8] and res[-1] == 1024
    assert mixing_layer_ranges(G1024) == {
        'coarse': [0, 1, 2],
        'medium': [3, 4, 5, 6],
        'fine': list(range(7, 18)),
    }


def test_style_mixing_grid(G):
    ranges = {'coarse': [0, 1], 'rest': range(2, G.num_ws)}
    grid = style_mixing_grid(G, [1, 2], [7, 8, 9], ranges, batch_size=5)
    assert grid.shape == (1 + 2 * 3, 1 + 2, 3, 16, 16)
    assert torch.equal(grid[0, 0], torch.ones(3, 16, 16))
    ws_a, ws_b = G.sample_ws([1, 2]), G.sample_ws([7, 8, 9])
    torch.testing.assert_close(grid[0, 1:], G.synthesis(ws_a), atol=1e-4, rtol=0)
    torch.testing.assert_close(grid[4:7, 0], G.synthesis(ws_b), atol=1e-4, rtol=0)
    expected = G.synthesis(mix_styles(ws_a, ws_b[2:3].expand_as(ws_a), range(2, G.num_ws)))  # row 'rest' ← B9
    torch.testing.assert_close(grid[6, 1:], expected, atol=1e-4, rtol=0)
    assert not torch.allclose(grid[6, 1:], grid[3, 1:], atol=1e-3)  # B9 coarse ≠ B9 rest
    with pytest.raises(ValueError, match='W\\+ indices'): style_mixing_grid(G, [1], [2], [[G.num_ws]])


def test_style_statistics_values_and_cache(G):
    stats = style_statistics(G, n=300, seed=3, space='W+')
    codes = sample_style_codes(G, 300, seed=3, space='W+').double()
    np.testing.assert_allclose(stats.mean, codes.mean(0).numpy(), atol=1e-6)
    np.testing.assert_allclose(stats.std, codes.std(0).numpy(), atol=1e-6)
    assert style_statistics(G, n=300, seed=3, space='W+') is stats
    assert style_statistics(G, n=300, seed=4, space='W+') is not stats
    var = stats.std ** 2
    frac = stats.variance_fraction()
    assert frac['b4.conv1'] == pytest.approx(var[:64].sum() / var.sum())
    assert sum(frac.values()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match='read-only'): stats.mean[0] = 0
    with pytest.raises(ValueError, match='at least 2'): style_statistics(G, n=1)


def test_style_statistics_recomputes_when_weights_change():
    torch.manual_seed(1)
    G = Generator(z_dim=16, w_dim=16, img_resolution=8, mapping_kwargs=dict(num_layers=2),
                  synthesis_kwargs=dict(channel_base=64, channel_max=16)).eval()
    before = style_statistics(G, n=50)
    G.synthesis.b4.conv1.affine.bias.add_(1.0)                 # shifts that layer's styles by exactly 1
    after = style_statistics(G, n=50)
    assert after is not before
    np.testing.assert_allclose(after.layer('b4.conv1')[0], before.layer('b4.conv1')[0] + 1, atol=1e-5)
    np.testing.assert_allclose(after.layer('b4.torgb')[0], before.layer('b4.torgb')[0], atol=1e-6)


def test_reachable_dims_and_pca(G):
    layout = StyleLayout.from_generator(G)
    by_w = {}
    for name, i in G.synthesis.w_index.items():
        by_w[i] = by_w.get(i, 0) + layout.channels[layout.layer_index(name)]
    dims = reachable_dims(G)
    assert dims == {'W': 32, 'W+': sum(min(c, 32) for c in by_w.values()), 'S': layout.n_channels}
    assert pca_rank(sample_style_codes(G, 200, seed=0)) == 32
    assert pca_rank(sample_style_codes(G, 200, seed=0, space='W+')) > 32


def test_reachable_dims_sees_rank_deficiency():
    torch.manual_seed(2)
    G = Generator(z_dim=16, w_dim=16, img_resolution=8, mapping_kwargs=dict(num_layers=2),
                  synthesis_kwargs=dict(channel_base=64, channel_max=16)).eval()
    full = reachable_dims(G)['W+']
    G.synthesis.b4.conv1.affine.weight[4:] = 0                 # w0 feeds only b4.conv1: its rank drops 16 → 4
    assert reachable_dims(G)['W+'] == full - 12


def test_truncation_in_s_equals_w(G):
    ws = G.sample_ws([3, 4])
    s, s_bar = w_plus_to_s(G, ws), mean_style(G)
    for psi in (0.0, 0.4):
        torch.testing.assert_close(truncate_styles(s, psi, s_bar).to_flat(),
                                   w_plus_to_s(G, G.mapping.truncate(ws, psi)).to_flat(), atol=1e-5, rtol=0)
    only = truncate_styles(s, 0.0, s_bar, ['b8.torgb'])
    torch.testing.assert_close(only['b8.torgb'], s_bar['b8.torgb'].expand(2, -1))
    assert all(torch.equal(only[n], s[n]) for n in s.layout.names if n != 'b8.torgb')
    with pytest.raises(KeyError, match='unknown style layers'): truncate_styles(s, 0.5, s_bar, ['b99.conv0'])
