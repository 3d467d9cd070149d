"""Tests of hybridlat.explore.explorer (LatentModel) and hybridlat.explore.widgets: states and views driven
headless, sliders set in code."""
import json
from pathlib import Path
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from hybridlat.stylegan2.generator import Generator
from hybridlat.images import to_uint8
from hybridlat.explore.explorer import LatentModel, locality
from hybridlat.explore.widgets import (
    WPlusExplorerState,
    WPlusExplorer,
    ChannelBrowserState,
    ChannelBrowser,
    EditPanelState,
    EditPanel,
    InversionViewerState,
    InversionViewer,
    as_reconstruction,
    png_array,
    png_bytes,
    snapshot,
)


@pytest.fixture(autouse=True)
def no_grad():
    with torch.no_grad(): yield


@pytest.fixture(scope='module')
def model():
    "A tiny untrained 64² generator: 10 ws (coarse 0-2, medium 3-6, fine 7-9), layers of 64…4 channels."
    torch.manual_seed(0)
    G = Generator(z_dim=32, w_dim=32, img_resolution=64, mapping_kwargs=dict(num_layers=2),
                  synthesis_kwargs=dict(channel_base=256, channel_max=64)).eval().requires_grad_(False)
    G.mapping.w_avg.copy_(G.mapping.z_to_w(torch.randn(1000, 32)).mean(0))
    return LatentModel(G, stats_n=64)


@pytest.fixture(scope='module')
def dirs(model): return model.directions(pca=4)


def moved_ws(a, b): return (a != b).any(-1)[0].nonzero().flatten().tolist()


# ---- LatentModel ----

def test_groups_and_latents(model):
    assert model.w_groups == {'coarse': [0, 1, 2], 'medium': [3, 4, 5, 6], 'fine': [7, 8, 9]}
    assert sum(map(len, model.s_groups.values())) == len(model.layout)
    w = model.sample_w(3, 0.7)
    assert torch.allclose(model.w_to_wplus(w), model.G.sample_ws([3], truncation_psi=0.7), atol=1e-6)
    with pytest.raises(ValueError, match=r'W\+ must be \[N, 10, 32\]'): model.render_wplus(w)


def test_render_cache_and_paths(model):
    model.refresh()
    w = model.sample_w(5, 0.7)
    img = model.render_w(w)
    assert model.render_wplus(model.w_to_wplus(w).clone()) is img and (model.hits, model.misses) == (1, 1)
    assert torch.allclose(model.render_s(model.styles(model.w_to_wplus(w))), img, atol=1e-5)
    assert not torch.equal(model.render_w(model.sample_w(6, 0.7)), img)
    assert model.misses == 3


def test_apply_direction(model, dirs):
    ws = model.w_to_wplus(model.sample_w(1, 0.7))
    for group, idx in model.w_groups.items():
        assert moved_ws(model.apply_direction(ws, dirs['pc0'], 2.0, group), ws) == idx
    assert moved_ws(model.apply_direction(ws, dirs['pc0'], 2.0, [4]), ws) == [4]
    per_layer = torch.zeros(model.num_ws, model.w_dim)
    per_layer[8] = 1
    assert moved_ws(model.apply_direction(ws, per_layer, 1.0), ws) == [8]
    assert torch.equal(model.apply_direction(ws, dirs['pc0'], 0.0), ws)
    with pytest.raises(ValueError, match=r'direction must be \[32\] or \[10, 32\]'):
        model.apply_direction(ws, torch.zeros(5), 1.0)
    with pytest.raises(ValueError, match='W\\+ layers must be in 0…9'):
        model.apply_direction(ws, dirs['pc0'], 1.0, [10])


def test_pca_directions(model):
    pca = model.w_pca(k=4, n=500)
    assert model.w_pca(k=4, n=500) is pca                                   # cached analysis
    assert torch.allclose(pca.components @ pca.components.T, torch.eye(4), atol=1e-4)
    assert (pca.std[:-1] >= pca.std[1:]).all() and 0 < pca.explained.sum() <= 1
    # the axis really is the direction of largest spread of w: projections on pc0 vary more than on a random
    # unit vector
    w = model.G.mapping.z_to_w(torch.randn(500, 32, generator=torch.Generator().manual_seed(1)))
    rand = torch.randn(32, generator=torch.Generator().manual_seed(2))
    rand /= rand.norm()
    assert (w @ pca.components[0]).std() > (w @ rand).std()
    with pytest.raises(ValueError, match='k must be in'): model.w_pca(k=0)


def test_channel_effect(model):
    s = model.styles(model.w_to_wplus(model.sample_w(2, 0.7)))
    layer = model.s_groups['deformation'][2]
    zero = model.channel_effect(s, layer, 3, 0.0)
    assert torch.equal(zero.image, zero.base) and zero.effect.abs().max() == 0
    e = model.channel_effect(s, layer, 3, 4.0)
    assert e.effect.max() > 0 and e.effect.shape == (1, 64, 64)
    assert torch.allclose(e.effect, (e.image - e.base).abs().mean(1))
    assert np.isclose(e.delta, 4.0 * float(model.channel_std(layer)[3]), rtol=1e-6)
    spot = torch.zeros(1, 10, 10)
    spot[0, 4, 4] = 1
    assert torch.allclose(locality(spot), torch.tensor([1.0])) and torch.allclose(
        locality(torch.ones(1, 10, 10)), torch.tensor([0.1])
    )


def test_directions_merge(model):
    d = model.directions({'mine': torch.ones(32)}, pca=2)
    assert list(d) == ['pc0', 'pc1', 'mine']
    with pytest.raises(ValueError, match="direction 'bad' must be"): model.directions({'bad': torch.ones(3)})


# ---- widget states and views ----

def test_wplus_explorer_state(model, dirs):
    st = WPlusExplorerState(model, dirs, seed=4)
    base = st.render()
    st.set(medium=3.0, medium_direction='pc1')
    assert moved_ws(st.wplus(), st.base()) == model.w_groups['medium'] and not torch.equal(st.render(), base)
    st.set(medium=0.0, all=2.0)
    assert (st.wplus() == st.wplus()[:, :1]).all()                          # 'all' stays in W
    st.set(all=0.0)
    assert torch.equal(st.render(), base)
    with pytest.raises(ValueError, match="unknown setting 'eyes'"): st.set(eyes=1)


def test_wplus_explorer_view(model, dirs):
    view = WPlusExplorer(model, dirs, seed=4)
    shown = view.image.value
    assert np.array_equal(png_array(shown)[::2, ::2], to_uint8(model.render_w(model.sample_w(4, 0.7))[0]))
    view.sliders['coarse'].value = 3.0                                     # a user drags the coarse slider
    assert view.state.alpha['coarse'] == 3.0 and view.image.value != shown
    assert moved_ws(view.state.wplus(), view.state.base()) == model.w_groups['coarse']
    view.dropdowns['coarse_direction'].value = 'pc2'
    assert view.state.direction['coarse'] == 'pc2'
    view.sliders['coarse'].value = 0.0
    assert view.image.value == shown


def test_channel_browser(model):
    st = ChannelBrowserState(model, seed=2)
    base = model.render_w(model.sample_w(2, 0.7))
    assert torch.equal(st.render(), base)  # α = 0: identical to the base render
    st.set(layer=model.layout.names[0], channel=60, alpha=5.0)
    assert not torch.equal(st.render(), base)
    st.set(layer=model.layout.names[-1])  # 4 channels: channel 60 does not exist
    assert st.channel == 0
    with pytest.raises(ValueError, match='channel 9 out of range'): st.set(channel=9)

    view = ChannelBrowser(model, seed=2)
    shown = view.image.value
    view.sliders['alpha'].value = 6.0
    assert view.image.value != shown and png_array(view.heat.value).std() > 0
    view.sliders['channel'].value = 50
    view.controls['layer'].value = model.layout.names[-1]
    assert view.sliders['channel'].max == 3 and view.sliders['channel'].value == view.state.channel == 0
    assert view.figure.data[0].marker.color[0] == 'crimson'
    view.sliders['alpha'].value = 0.0
    assert np.array_equal(png_array(view.image.value)[::2, ::2], to_uint8(base[0]))


def test_edit_panel(model, dirs):
    st = EditPanelState(
        model, {'a': dirs['pc0'], 'b': dirs['pc0'], 'fine a': dirs['pc0']}, seed=1, layers={'fine a': 'fine'}
    )
    st.set({'a': 1.0, 'b': 1.0})
    both = st.wplus()
    st.set(a=2.0, b=0.0)
    assert torch.allclose(st.wplus(), both, atol=1e-6)
    st.set(a=0.0, **{'fine a': 2.0})
    assert moved_ws(st.wplus(), st.base()) == model.w_groups['fine']
    latent = model.w_to_wplus(model.sample_w(9, 0.5))
    assert torch.equal(EditPanelState(model, dirs, latent=latent).render(), model.render_wplus(latent))

    view = EditPanel(model, {'to 8': (model.sample_w(8, 0.7) - model.sample_w(1, 0.7))[0]}, seed=1)
    view.sliders['to 8'].value = 1.0
    assert torch.allclose(view.state.render(), model.render_w(model.sample_w(8, 0.7)), atol=1e-4)


class FakeInversion:
    "Stands in for hybridlat.explore.inversion.Inversion: only the attributes the viewer reads."
    def __init__(self, space, images, losses): self.space, self.images, self.losses = space, images, losses


def test_inversion_viewer(model):
    target = model.render_w(model.sample_w(7, 0.7))
    noisy = (target + 0.2 * torch.randn(target.shape, generator=torch.Generator().manual_seed(0))).clamp(
        -1, 1
    )
    mean = model.render_w(model.G.mapping.w_avg[None])
    results = [('exact', target), FakeInversion('W', noisy, torch.tensor([2.0, 1.0])), ('mean', mean)]
    st = InversionViewerState(target, results)
    errs = {r['name']: r for r in st.errors()}
    assert errs['exact']['L1'] == 0 and errs['exact']['PSNR'] > errs['W']['PSNR']
    assert st.grid().shape == (4, 3, 64, 64) and torch.equal(st.set(index=2).render()[1], mean[0])
    with pytest.raises(ValueError, match='index must be in 0…2'): st.set(index=5)
    with pytest.raises(ValueError, match='must be a \\(name, images\\) pair'): as_reconstruction(3)
    assert as_reconstruction(results[1]).losses == [2.0, 1.0]

    view = InversionViewer(target, results)
    first = view.image.value
    view.controls['index'].value = 1
    assert view.image.value != first and "font-weight:bold'><td>W</td>" in view.table.value
    # grid: pad 2, target, pad 2, result
    assert np.array_equal(png_array(view.image.value)[::2, ::2][2:66, 68:132], to_uint8(noisy[0]))
    assert list(view.figure.data[0].y) == [2.0, 1.0]


def test_snapshots(model, dirs):
    states = [
        WPlusExplorerState(model, dirs).set(fine=2.0),
        ChannelBrowserState(model, alpha=3.0),
        EditPanelState(model, dirs).set(pc0=1.0),
        InversionViewerState(model.render_w(model.sample_w(0)), [('x', model.render_w(model.sample_w(1)))]),
    ]
    widths = []
    for st in states:
        ax = snapshot(st)
        widths.append(ax.images[0].get_array().shape[1])
        plt.close(ax.figure)
    assert widths == [2 * 64 + 6, 3 * 64 + 8, 2 * 64 + 6, 2 * 64 + 6]     # 2 or 3 images with 2-pixel padding


def test_notebooks_saved_without_widget_state():
    for name in ['33_explorer.ipynb', '34_widgets.ipynb']:
        nb = json.loads((Path(__file__).parents[1] / 'nbs' / '3_explore' / name).read_text())
        assert 'widgets' not in nb['metadata'], name
        assert 'application/vnd.jupyter.widget-state+json' not in json.dumps(nb), name
