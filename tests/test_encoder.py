"""Tests of hybridlat.reenactment.encoder: shape contracts (128² and a tiny 1024²), composition exactness,
checkpoints, gradients."""
import pytest
import torch
from hybridlat.stylegan2.checkpoints import CheckpointError, save_generator
from hybridlat.stylegan2.generator import Generator
from hybridlat.stylegan2.stylespace import StyleLayout, w_plus_to_s, deformation_layer_names
from hybridlat.reenactment.encoder import (
    HybridEncoder,
    encoder_for,
    hybrid_styles,
    render_hybrid,
    save_encoder,
    load_encoder,
    w_groups,
    conv_w_index,
    check_encoder_fits,
)
from helpers import tiny_generator

TINY = dict(channels=(4, 8, 8, 16, 16, 16), fpn_channels=16)


def encoder_test_generator(resolution, w_dim=32, seed=0):
    "An untrained generator with few channels, its w_avg set to a non-zero mean of w."
    return tiny_generator(resolution, w_dim, channel_base=1024, channel_max=32, w_avg_samples=256, seed=seed)


@pytest.fixture(scope='module')
def G(): return encoder_test_generator(128)


@pytest.fixture(scope='module')
def G1024(): return encoder_test_generator(1024)


def images(n, resolution, seed=1):
    return torch.rand(n, 3, resolution, resolution, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_w_groups():
    assert [len(r) for r in w_groups(18).values()] == [2, 4, 4, 8]
    assert [len(r) for r in w_groups(12).values()] == [1, 3, 3, 5]
    for n in range(4, 19):
        rs = list(w_groups(n).values())
        assert (
            rs[0].start == 0
            and rs[-1].stop == n
            and all(a.stop == b.start and len(a) > 0 for a, b in zip(rs, rs[1:]))
        )
    with pytest.raises(ValueError, match='at least 4'): w_groups(3)


def test_conv_w_index_matches_generator(G, G1024):
    for g in (G, G1024):
        for name, idx in g.synthesis.w_index.items():
            if not name.endswith('torgb'): assert conv_w_index(name) == idx
    with pytest.raises(ValueError, match='not a conv style layer'): conv_w_index('b4.conv0')


def test_shapes_128(G):
    E = encoder_for(G, **TINY).eval()
    layout = StyleLayout.from_generator(G)
    names = deformation_layer_names(layout)
    assert len(names) == 6 and list(E.deformation_channels) == names
    x = images(3, 128)
    with torch.no_grad():
        w_id, s_f = E(x, images(3, 128, seed=2))
        feats = E.features(x)
    assert w_id.shape == (3, G.num_ws, G.w_dim) == (3, 12, 32)
    assert list(s_f) == names
    assert [tuple(v.shape) for v in s_f.values()] == [
        (3, layout.channels[layout.layer_index(n)]) for n in names
    ]
    assert [tuple(f.shape[-2:]) for f in feats.values()] == [(4, 4), (8, 8), (16, 16), (32, 32)]
    assert torch.equal(E.encode_identity(x), w_id)


def test_shapes_tiny_1024(G1024):
    E = encoder_for(G1024, channels=(4, 4, 8, 8, 8, 8), fpn_channels=8).eval()
    assert E.input_resolution == 256 and len(E.deformation_channels) == 10
    with torch.no_grad(): w_id, s_f = E(images(1, 1024), images(1, 1024, seed=3))
    assert w_id.shape == (1, 18, 32)
    assert list(s_f) == deformation_layer_names(StyleLayout.from_generator(G1024))
    assert all(v.shape == (1, E.deformation_channels[n]) for n, v in s_f.items())


def test_fresh_encoder_starts_at_w_avg(G):
    E = encoder_for(G, head_init=0, **TINY)
    w_id, s_f = E(images(2, 128), images(2, 128))
    assert torch.equal(w_id, G.mapping.w_avg.expand(2, 12, -1))
    assert all(torch.equal(v, torch.zeros_like(v)) for v in s_f.values())


def test_bad_images(G):
    E = encoder_for(G, **TINY)
    with pytest.raises(ValueError, match=r'images must be a tensor \[N, 3, 128, 128\]'):
        E.encode_identity(images(1, 64))
    with pytest.raises(ValueError, match='NaN'):
        E.encode_deformation(torch.full((1, 3, 128, 128), float('nan')))


def test_composition_exact(G):
    torch.manual_seed(0)
    E = encoder_for(G, head_init=1.0, **TINY).eval()
    with torch.no_grad():
        w_id, s_f = E(images(1, 128), images(4, 128, seed=5))      # one source, four driving frames
        s = hybrid_styles(G, w_id, s_f)
        base = w_plus_to_s(G, w_id.expand(4, -1, -1))              # A_l(W_ID) for each of the four frames
        base1 = w_plus_to_s(G, w_id)
    assert s.batch_size == 4
    for name in s.layout.names:
        expected = base[name] + s_f[name] if name in s_f else base[name]
        assert torch.equal(s[name], expected), name
        assert torch.allclose(base[name], base1[name].expand(4, -1), atol=1e-6)
    assert all(not torch.allclose(s[n], base[n]) for n in s_f)      # S_F is not zero here


def test_composition_errors(G):
    w = G.mapping.w_avg.expand(2, 12, -1)
    with pytest.raises(ValueError, match='w_id must be'): hybrid_styles(G, w[:, :5], {})
    with pytest.raises(ValueError, match='must be \\[N, 32\\]'):
        hybrid_styles(G, w, {'b4.conv1': torch.zeros(2, 5)})
    with pytest.raises(ValueError, match='does not have'):
        hybrid_styles(G, w, {'b4.conv0': torch.zeros(2, 32)})
    with pytest.raises(ValueError, match='batch sizes'): hybrid_styles(G, w, {'b4.conv1': torch.zeros(3, 32)})
    with pytest.raises(ValueError, match='NaN'):
        hybrid_styles(G, w, {'b4.conv1': torch.full((2, 32), float('nan'))})


def test_render_hybrid_matches_synthesis_at_zero(G):
    w = G.sample_ws([4, 5])
    zero = {n: torch.zeros(1, 32) for n in ('b4.conv1', 'b8.conv0')}
    with torch.no_grad(): assert torch.allclose(render_hybrid(G, w, zero), G.synthesis(w), atol=1e-5)


def test_save_load_round_trip(G, tmp_path):
    torch.manual_seed(1)
    E = encoder_for(G, head_init=1.0, **TINY).eval()
    path = save_encoder(E, tmp_path / 'sub' / 'enc.pt', step=7)
    E2 = load_encoder(path, G)
    assert E2.checkpoint_info['meta'] == {'step': 7} and not E2.training and E2.init_kwargs == E.init_kwargs
    src, drv = images(2, 128), images(2, 128, seed=9)
    with torch.no_grad(): (w1, s1), (w2, s2) = E(src, drv), E2(src, drv)
    assert torch.equal(w1, w2) and all(torch.equal(s1[n], s2[n]) for n in s1)
    assert [p.name for p in path.parent.iterdir()] == ['enc.pt']   # no temporary file left behind


def test_loader_rejects(G, G1024, tmp_path):
    E = encoder_for(G, **TINY)
    path = save_encoder(E, tmp_path / 'enc.pt')
    save_generator(G, tmp_path / 'gen.pt')
    with pytest.raises(CheckpointError, match="format 'hybridlat.generator'"):
        load_encoder(tmp_path / 'gen.pt')
    (tmp_path / 'cut.pt').write_bytes(path.read_bytes()[:path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match='truncated or corrupt'): load_encoder(tmp_path / 'cut.pt')
    (tmp_path / 'junk.pt').write_bytes(b'not a checkpoint at all')
    with pytest.raises(CheckpointError, match='truncated or corrupt'): load_encoder(tmp_path / 'junk.pt')
    with pytest.raises(CheckpointError, match='no such file'): load_encoder(tmp_path / 'missing.pt')
    with pytest.raises(CheckpointError, match='resolution is 128'): load_encoder(path, G1024)
    with pytest.raises(CheckpointError, match='w_dim is 32'):
        load_encoder(path, encoder_test_generator(128, w_dim=16))
    wider = Generator(z_dim=32, w_dim=32, img_resolution=128, mapping_kwargs=dict(num_layers=2),
                      synthesis_kwargs=dict(channel_base=2048, channel_max=64))
    with pytest.raises(CheckpointError, match='style layout differs'): load_encoder(path, wider)
    other = encoder_test_generator(128, seed=5)
    with pytest.warns(UserWarning, match="w_avg differs"): load_encoder(path, other)
    odd = HybridEncoder(resolution=128, num_ws=10, w_dim=32, **TINY)
    with pytest.raises(CheckpointError, match="num_ws is 10, the generator's is 12"):
        check_encoder_fits(odd, G)


def test_load_with_own_generator_does_not_warn(G, tmp_path, recwarn):
    load_encoder(save_encoder(encoder_for(G, **TINY), tmp_path / 'e.pt'), G)
    assert not [w for w in recwarn if 'w_avg' in str(w.message)]


def test_gradients_reach_both_heads(G):
    torch.manual_seed(2)
    E = encoder_for(G, **TINY).train()
    w_id, s_f = E(images(2, 128), images(2, 128, seed=4))
    loss = (render_hybrid(G, w_id, s_f) - images(2, 128, seed=6)).square().mean()
    loss.backward()
    for part in (E.pyramid, E.identity_head, E.deformation_trunk, E.deformation_head):
        grads = [p.grad for p in part.parameters()]
        assert all(g is not None for g in grads) and sum(g.abs().sum() for g in grads) > 0, type(
            part
        ).__name__
    assert all(p.grad is None for p in G.parameters())
