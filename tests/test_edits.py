"""Tests of hybridlat.explore.edits: InterFaceGAN directions, conditional editing, labellers, directions
files, channel edits."""
import numpy as np
import pytest
import torch
from hybridlat.stylegan2.generator import Generator
from hybridlat.stylegan2.latents import generator_fingerprint, style_statistics
from hybridlat.stylegan2.stylespace import StyleLayout, w_plus_to_s
from hybridlat.explore.edits import (
    AttributeLabeller,
    apply_edits,
    as_w_plus,
    conditional_direction,
    edit_channel,
    edit_w,
    fit_direction,
    fit_directions,
    labelling_widget,
    load_directions,
    parse_args,
    parse_edits,
    random_directions,
    render,
    sample_w,
    save_directions,
    thumbnails,
    top_channels,
    train_labeller,
)
from helpers import tiny_generator


pytestmark = pytest.mark.usefixtures('no_grad')


@pytest.fixture(scope='module')
def G(tiny_G): return tiny_G


def _gauss(n, d, seed=0): return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


def test_fit_direction_recovers_planted():
    w, planted = _gauss(600, 16), random_directions(1, 16, seed=3)[0]
    normal, acc = fit_direction(
        w, (w @ planted).numpy() + 0.05 * np.random.default_rng(0).standard_normal(600)
    )
    assert float(normal @ planted) > 0.95 and acc > 0.9  # points the right way, not just along the axis
    test_normal, _ = fit_direction(w, -(w @ planted).numpy())
    assert float(test_normal @ planted) < -0.95                  # flipping the scores flips the normal
    torch.testing.assert_close(normal.norm(), torch.tensor(1.))


def test_fit_direction_errors():
    w = _gauss(50, 8)
    with pytest.raises(ValueError, match='one finite score per latent'): fit_direction(w, np.zeros(3))
    with pytest.raises(ValueError, match='one finite score per latent'): fit_direction(w, np.full(50, np.nan))
    with pytest.raises(ValueError, match=r'latents must be \[N, w_dim\]'):
        fit_direction(w[None], np.zeros(50))
    with pytest.raises(ValueError, match='too few samples'): fit_direction(w[:6], np.arange(6.), keep=0.5)


def test_edit_w_and_apply_edits():
    w, wp = _gauss(3, 8), _gauss(3, 8)[:, None].repeat(1, 5, 1)
    dirs = {'a': random_directions(1, 8, 1)[0], 'b': random_directions(1, 8, 2)[0] * 3}
    torch.testing.assert_close(edit_w(w, dirs['a'], 2.), w + 2 * dirs['a'])
    both = apply_edits(wp, {'a': 1.5, 'b': -2}, dirs)
    torch.testing.assert_close(both - wp, (1.5 * dirs['a'] - 2 * dirs['b']).expand_as(wp))
    torch.testing.assert_close(apply_edits(w, {'a': 4.}, dirs) - w, 2 * (apply_edits(w, {'a': 2.}, dirs) - w))
    layered = apply_edits(wp, {'a': 1.}, dirs, layers=[1, 3])
    torch.testing.assert_close(layered[:, [0, 2, 4]], wp[:, [0, 2, 4]])
    torch.testing.assert_close(layered[:, [1, 3]], wp[:, [1, 3]] + dirs['a'])
    with pytest.raises(ValueError, match="unknown edit 'smile'"): apply_edits(w, {'smile': 1.}, dirs)
    with pytest.raises(ValueError, match='finite number'): apply_edits(w, {'a': float('inf')}, dirs)
    with pytest.raises(ValueError, match='NaN'):
        apply_edits(torch.full_like(w, float('nan')), {'a': 1.0}, dirs)
    with pytest.raises(ValueError, match='direction has shape'): edit_w(w, torch.zeros(4), 1.)
    with pytest.raises(ValueError, match='needs W\\+'): edit_w(w, dirs['a'], 1., layers=[0])


def test_parse_edits():
    assert parse_edits(['age=+2', ' mouth = -0.5']) == {'age': 2.0, 'mouth': -0.5}
    for bad in (['age'], ['age=two'], ['=1']):
        with pytest.raises(ValueError, match='NAME=AMOUNT'): parse_edits(bad)


def test_conditional_direction():
    a, b, c = random_directions(3, 16, seed=5)
    p = a + 0.8 * b + 0.3 * c
    n1 = conditional_direction(p, b)
    assert abs(float(n1 @ b)) < 1e-6 and float(n1 @ p) > 0
    torch.testing.assert_close(n1.norm(), torch.tensor(1.))
    n2 = conditional_direction(p, b, c)
    assert max(abs(float(n2 @ b)), abs(float(n2 @ c))) < 1e-6
    with pytest.raises(ValueError, match='span of the conditions'): conditional_direction(2 * b - c, b, c)
    with pytest.raises(ValueError, match='at least one condition'): conditional_direction(p)


def test_thumbnails_and_labeller():
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (120, 32, 32, 3), dtype=np.uint8)
    y = rng.random(120)
    # a "mouth" patch whose brightness is y
    imgs[:, 20:28, 8:24] = (y * 255).astype(np.uint8)[:, None, None, None]
    box = (20 / 32, 28 / 32, 8 / 32, 24 / 32)
    feats = thumbnails(imgs, box, (2, 4))
    assert feats.shape == (120, 24)
    np.testing.assert_allclose(feats[:, 0], imgs[:, 20, 8, 0] / 255, atol=1e-6)
    lab, q = train_labeller('mouth', imgs, y, kind='regress', box=box, size=(2, 4), n_components=8)
    assert q['pearson'] > 0.95 and q['value'] < q['baseline']
    assert np.corrcoef(lab.score(imgs), y)[0, 1] > 0.95
    with pytest.raises(ValueError, match='expected images'): thumbnails(imgs[0])
    with pytest.raises(ValueError, match='kind must be'): train_labeller('x', imgs, y, kind='rank')


def test_fit_directions_on_tiny_generator(G):
    w = sample_w(G, 4, seed=1)
    torch.testing.assert_close(w, sample_w(G, 4, seed=1))
    assert render(G, w).shape == (4, 3, 16, 16) and render(G, as_w_plus(G, w)).shape == (4, 3, 16, 16)
    bright = _Bright()                                                        # labellers with a known meaning
    dirs = fit_directions(G, n=64, labellers={'bright': bright, 'red': _Red()}, progress=False,
                          conditional={'bright_keep_red': ('bright', 'red')})
    assert sorted(dirs) == ['bright', 'bright_keep_red', 'red']
    assert abs(float(dirs['bright_keep_red'] @ dirs['red'])) < 1e-4
    wt = sample_w(G, 8, seed=9)
    up = bright.score(render(G, apply_edits(wt, {'bright': 2.}, dirs))) - bright.score(render(G, wt))
    assert up.mean() > 0                                                      # the edit makes images brighter


class _Bright:
    name = 'bright'
    def score(self, images): return images.mean((1, 2, 3)).numpy()


class _Red:
    name = 'red'
    def score(self, images): return (images[:, 0] - images[:, 1:].mean(1)).mean((1, 2)).numpy()


def test_save_load_directions(tmp_path, G):
    dirs = {'a': torch.randn(32), 'b': torch.randn(32)}
    save_directions(dirs, tmp_path / 'd.pt', generator=generator_fingerprint(G), note='x')
    back, meta = load_directions(tmp_path / 'd.pt', G=G, with_meta=True)
    assert meta['note'] == 'x' and sorted(back) == ['a', 'b']
    torch.testing.assert_close(back['a'], dirs['a'])
    save_directions(dirs, tmp_path / 'other.pt', generator='0' * 32)
    with pytest.warns(UserWarning, match='other generator weights'):
        load_directions(str(tmp_path / 'other.pt'), G=G)
    with pytest.raises(ValueError, match='w_dim 32'):
        load_directions(
            tmp_path / 'd.pt',
            G=Generator(
                z_dim=8,
                w_dim=8,
                img_resolution=8,
                mapping_kwargs=dict(num_layers=1),
                synthesis_kwargs=dict(channel_base=64, channel_max=16),
            ),
        )
    with pytest.raises(ValueError, match='NaN'):
        save_directions({'a': torch.full((4,), float('nan'))}, tmp_path / 'n.pt')
    with pytest.raises(ValueError, match=r'must all be \[w_dim\]'):
        save_directions({'a': torch.zeros(2, 4)}, tmp_path / 'n.pt')
    assert not (tmp_path / 'n.pt').exists()
    torch.save({'x': 1}, tmp_path / 'junk.pt')
    with pytest.raises(ValueError, match='not a hybridlat directions file'):
        load_directions(tmp_path / 'junk.pt')
    with pytest.raises(FileNotFoundError, match="no shipped directions 'faces4096'"):
        load_directions('faces4096')
    with pytest.raises(FileNotFoundError, match='no directions file'):
        load_directions(tmp_path / 'missing.pt')


def test_shipped_directions():
    from hybridlat.training.pretrained import load_pretrained
    G = load_pretrained('faces128')
    dirs, meta = load_directions('faces128', with_meta=True)
    assert {'age', 'gender', 'mouth', 'age_keep_gender'} <= set(dirs)
    assert all(d.shape == (G.w_dim,) and torch.isfinite(d).all() for d in dirs.values())
    assert (
        abs(float(dirs['age_keep_gender'] @ dirs['gender']))
        < 1e-3 * dirs['age_keep_gender'].norm() * dirs['gender'].norm()
    )
    assert set(meta['accuracy']) == {'age', 'gender', 'mouth'}
    ws = G.sample_ws([0, 1])  # [2, num_ws, w_dim], as reenact uses it
    assert apply_edits(ws, {'age': 2.0}, dirs).shape == ws.shape


def test_attribute_labeller_recovers_hidden_rule():
    w, hidden = _gauss(300, 16, seed=4), random_directions(1, 16, seed=6)[0]
    lab = AttributeLabeller(w)
    proj = (w @ hidden).numpy()
    for i in range(len(w)): lab.label(i, proj[i] > 0)
    found, acc = lab.fit()
    assert float(found @ hidden) > 0.9 and acc > 0.85
    assert lab.next_unlabelled() is None and lab.counts()['yes'] == int((proj > 0).sum())
    with pytest.raises(IndexError, match='out of range'): lab.label(300, True)
    with pytest.raises(ValueError, match="at least 2 'yes'"): AttributeLabeller(w[:4]).label(0, True).fit()


def test_labelling_widget_drives_labeller():
    w, hidden = _gauss(40, 8, seed=2), random_directions(1, 8, seed=7)[0]
    images = np.zeros((40, 8, 8, 3), np.uint8)
    lab = AttributeLabeller(w)
    widget = labelling_widget(lab, images)
    yes, no, skip, fit = widget.children[1].children
    skip.click()                                                              # sample 0 skipped
    for i in range(1, 40): (yes if float(w[i] @ hidden) > 0 else no).click()
    assert 0 not in lab.labels and len(lab.labels) == 39
    assert all(lab.labels[i] == (float(w[i] @ hidden) > 0) for i in lab.labels)
    fit.click()
    assert widget.children[2].value.startswith('fitted') and float(lab.direction @ hidden) > 0.5


def test_edit_channel_and_top_channels(G):
    layout = StyleLayout.from_generator(G)
    stats = style_statistics(G, n=64)
    s = w_plus_to_s(G, G.sample_ws([0, 1]))
    name = layout.names[2]
    moved = edit_channel(s, name, 3, -1.5, stats)
    delta = moved[name] - s[name]
    torch.testing.assert_close(delta[:, 3], torch.full((2,), -1.5 * float(stats.layer(name)[1][3])))
    assert float(delta.abs().sum()) == pytest.approx(float(delta[:, 3].abs().sum()))
    with pytest.raises(IndexError, match='out of range'): edit_channel(s, name, 10_000, 1., stats)
    flat = w_plus_to_s(G, G.sample_ws(range(50))).to_flat()
    j = layout.flat_index(name, 5)
    top = top_channels(flat, flat[:, j].numpy() * -2 + 1, layout, k=2)
    assert top[0][:2] == (name, 5) and top[0][2] == pytest.approx(-1.0)
    only = top_channels(flat, flat[:, j].numpy(), layout, k=1, layers=[layout.names[0]])
    assert only[0][0] == layout.names[0]


def test_parse_args():
    assert parse_args(['--out', 'x.pt']).n == 1000
    with pytest.raises(ValueError, match='--n'): parse_args(['--out', 'x.pt', '--n', '3'])
    with pytest.raises(ValueError, match='--faces'): parse_args(['--out', 'x.pt', '--faces', '3'])
    with pytest.raises(SystemExit): parse_args([])                             # --out is required
