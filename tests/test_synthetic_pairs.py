"""Tests of hybridlat.reenactment.synthetic_pairs: motion directions and their files, motion pairs, talking
motion, kinds."""
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hybridlat.explore.edits import save_directions
from hybridlat.reenactment.encoder import render_hybrid
from hybridlat.stylegan2.generator import Generator
from hybridlat.stylegan2.stylespace import w_plus_to_s
from hybridlat.reenactment import synthetic_pairs as sp
from hybridlat.reenactment.synthetic_pairs import (
    MEASURES,
    choose_pair_kind,
    deformation_layers,
    fit_motion_directions,
    flat_styles,
    generated_pairs,
    latent_loss,
    latent_scales,
    layer_channels,
    load_motion_directions,
    motion_offsets,
    motion_pairs,
    motion_sequence,
    save_motion_directions,
    split_flat,
    talking_strengths,
)

DATA = Path(os.environ.get('HYBRIDLAT_DATA', Path(__file__).resolve().parents[2] / 'shared' / 'data'))


pytestmark = pytest.mark.usefixtures('no_grad')


@pytest.fixture(scope='module')
def G(tiny_G): return tiny_G


def random_directions(G, layers, seed=0):
    "{measure: {layer: [C]}}: random stand-ins for fitted motion directions."
    g = torch.Generator().manual_seed(seed)
    channels = layer_channels(G, layers)
    return {k: {l: 0.1 * torch.randn(c, generator=g) for l, c in zip(layers, channels)} for k in MEASURES}


@pytest.fixture(scope='module')
def motion_file(G, tmp_path_factory):
    path = tmp_path_factory.mktemp('motion') / 'tiny_motion.pt'
    save_motion_directions(random_directions(G, deformation_layers(G)), path, G, note='random')
    return path


def test_flat_and_split_round_trip(G):
    layers = deformation_layers(G)
    s = w_plus_to_s(G, G.mapping(torch.randn(3, G.z_dim), None))
    flat = flat_styles(s, layers)
    assert flat.shape == (3, sum(layer_channels(G, layers)))
    for l, v in split_flat(flat, layers, layer_channels(G, layers)).items():
        torch.testing.assert_close(v, s[l])


def test_motion_pairs_keep_w_id_and_move_only_by_the_directions(G):
    layers = deformation_layers(G)
    dirs = random_directions(G, layers)
    torch.manual_seed(3)
    src, drv, w_id, s_f, a = motion_pairs(G, 5, layers, dirs, strength=1.5, return_strengths=True)
    assert src.shape == drv.shape == (5, 3, 16, 16) and w_id.shape == (5, G.num_ws, G.w_dim)
    assert a.shape == (5, len(MEASURES)) and list(s_f) == layers
    # the source is W_ID alone, the driving the same W_ID plus S_F
    torch.testing.assert_close(src, render_hybrid(G, w_id, {l: 0 * v for l, v in s_f.items()}))
    torch.testing.assert_close(drv, render_hybrid(G, w_id, s_f))
    torch.testing.assert_close(motion_offsets(dirs, a)['b4.conv1'], s_f['b4.conv1'])        # S_F = Σ a_k d_k
    basis = torch.stack([flat_styles(d, layers) for d in dirs.values()])                    # [K, ΣC]
    coef = torch.linalg.lstsq(basis.T.double(), flat_styles(s_f, layers).T.double()).solution   # [K, 5]
    # only the directions
    torch.testing.assert_close(coef.T.float(), a, atol=1e-4, rtol=1e-4)
    # clipped at ±2·strength
    assert float(a.abs().max()) <= 3.0 + 1e-6
    torch.manual_seed(3)
    again = motion_pairs(G, 5, layers, dirs, strength=1.5)
    # the global stream fixes them
    assert torch.equal(again[1], drv)


def test_motion_pairs_refuse_other_layers(G):
    layers = deformation_layers(G)
    with pytest.raises(ValueError, match='layers'):
        motion_pairs(G, 2, layers[:-1], random_directions(G, layers))


def test_latent_loss_zero_on_the_true_motion_latents(G):
    layers = deformation_layers(G)
    torch.manual_seed(0)
    _, _, w_id, s_f = motion_pairs(G, 4, layers, random_directions(G, layers))
    assert float(latent_loss(w_id, s_f, w_id, s_f, latent_scales(G, layers, n=256))) == 0.


def test_motion_file_round_trip_and_generator_binding(G, motion_file, tmp_path):
    dirs, meta = load_motion_directions(motion_file, G, with_meta=True)
    assert meta['kind'] == 'motion' and meta['motion_version'] == 1 and meta['note'] == 'random'
    assert meta['layers'] == deformation_layers(G) and list(dirs) == list(MEASURES)
    saved = random_directions(G, deformation_layers(G))
    torch.testing.assert_close(dirs['yaw']['b8.conv0'], saved['yaw']['b8.conv0'])
    other = Generator(z_dim=32, w_dim=32, img_resolution=16, mapping_kwargs=dict(num_layers=2),
                      synthesis_kwargs=dict(channel_base=256, channel_max=64)).eval()
    with pytest.raises(ValueError, match='other generator weights'):
        load_motion_directions(motion_file, other)
    save_directions({'age': torch.randn(32)}, tmp_path / 'attr.pt')
    with pytest.raises(ValueError, match='attribute'): load_motion_directions(tmp_path / 'attr.pt')
    with pytest.raises(FileNotFoundError, match='no shipped motion directions'):
        load_motion_directions('nonesuch')


def test_shipped_directions_fit_faces128():
    from hybridlat.training.pretrained import load_pretrained
    G = load_pretrained('faces128')
    dirs, meta = load_motion_directions('faces128', G, with_meta=True)
    assert list(dirs) == [k for k in MEASURES if k not in meta['dropped']]           # roll is left out
    assert meta['layers'] == deformation_layers(G)
    assert all(0 < q['pearson'] <= 1 for q in meta['quality'].values())       # each predicts held-out faces
    assert (Path(sp.__file__).parents[2] / 'data' / 'faces128_motion.pt').stat().st_size < 200_000


def test_fit_motion_directions_finds_a_planted_measure(G, monkeypatch):
    "With dlib replaced by a known linear read-out of the styles, the fit recovers it and scales it to one σ."
    layers = deformation_layers(G)
    D = sum(layer_channels(G, layers))
    planted = torch.randn(D, generator=torch.Generator().manual_seed(1)).double()
    seen = {}
    def fake_measures(images, progress=False):
        y = (seen['z'] @ planted).numpy()
        noise = np.random.default_rng(0).standard_normal(len(y))
        return {k: (y if k == 'yaw' else noise) for k in MEASURES}
    real_sample = sp.sample_faces
    def sample(*args, **kwargs):
        images, s = real_sample(*args, **kwargs)
        seen['z'] = (s.double() - s.double().mean(0)) / s.double().std(0).clamp_min(1e-8)
        return images, s
    monkeypatch.setattr(sp, 'face_measures', fake_measures)
    monkeypatch.setattr(sp, 'sample_faces', sample)
    dirs, info = fit_motion_directions(G, n=400, progress=False, return_info=True)
    assert info['quality']['yaw']['pearson'] > 0.9 and abs(info['quality']['mouth']['pearson']) < 0.3
    # samples [N, ΣC] in σ units; edit [ΣC]
    z, d = seen['z'], flat_styles(dirs['yaw'], layers).double()
    s_std = real_sample(G, 400, layers)[1].double().std(0).clamp_min(1e-8)
    # the direction in standardised units
    unit = d / s_std / (d / s_std).norm()
    # it reads out the planted measure
    assert np.corrcoef((z @ unit).numpy(), (z @ planted).numpy())[0, 1] > 0.95
    # 1σ long
    torch.testing.assert_close(float((d / s_std).norm()), float((z @ unit).std()), rtol=1e-3, atol=1e-3)


def test_talking_sequence_is_smooth_talks_and_blinks(G):
    layers = deformation_layers(G)
    dirs = random_directions(G, layers)
    fps, T = 25, 250
    talk = talking_strengths(T, fps, seed=0)
    assert set(talk) == set(MEASURES) and all(v.shape == (T,) for v in talk.values())
    spectrum = np.abs(np.fft.rfft(talk['mouth'] - talk['mouth'].mean()))
    peak_hz = np.fft.rfftfreq(T, 1 / fps)[spectrum.argmax()]
    assert 2.5 <= peak_hz <= 6                                               # syllables at a speech-like rate
    # brief blinks, eyes open otherwise
    assert talk['eyes'].min() < -1.5 and (talk['eyes'] > -0.1).mean() > 0.8
    assert np.abs(np.diff(talk['yaw'])).max() < 0.2 < np.ptp(talk['yaw'])    # slow, but real, head turns
    seq = motion_sequence(dirs, T, fps, seed=0)
    assert list(seq) == layers and seq['b8.conv0'].shape == (T, layer_channels(G, ['b8.conv0'])[0])
    w_id = G.mapping(torch.randn(1, G.z_dim), None)
    frames = render_hybrid(G, w_id, {l: v[:4] for l, v in seq.items()})
    assert frames.shape == (4, 3, 16, 16)
    with pytest.raises(ValueError, match='no talking motion'):
        motion_sequence({'smile': dirs['mouth']}, 10)


def test_generated_pairs_kinds(G):
    layers = deformation_layers(G)
    dirs = random_directions(G, layers)
    torch.manual_seed(0)
    src, drv, w_id, s_f = generated_pairs(G, 5, layers, 'mix', dirs)
    assert src.shape[0] == drv.shape[0] == w_id.shape[0] == 5 and all(v.shape[0] == 5 for v in s_f.values())
    torch.manual_seed(0)
    faces = generated_pairs(G, 5, layers, 'faces')
    assert faces[2].shape == (5, G.num_ws, G.w_dim)
    with pytest.raises(ValueError, match='pair kind'): generated_pairs(G, 2, layers, 'walk', dirs)


def test_choose_pair_kind(G, motion_file):
    layers = deformation_layers(G)
    with pytest.warns(UserWarning, match='fall back to face pairs'):
        # the shipped file is for faces128
        assert choose_pair_kind('auto', G, layers) == ('faces', None)
    with pytest.raises(ValueError, match='other generator weights'):
        choose_pair_kind('motion', G, layers)
    kind, dirs = choose_pair_kind('auto', G, layers, motion_file)
    assert kind == 'motion' and list(dirs) == list(MEASURES)
    assert choose_pair_kind('mix', G, layers, motion_file)[0] == 'mix'
    with pytest.warns(UserWarning, match='layers'):
        assert choose_pair_kind('auto', G, layers[:-1], motion_file)[0] == 'faces'
    with pytest.raises(ValueError, match='one of'): choose_pair_kind('walk', G, layers)


def test_cli_options_parse():
    from dataclasses import fields
    from hybridlat.reenactment.train_encoder import EncoderTrainConfig, build_parser
    args = build_parser().parse_args(['--out', 'x', '--synthetic', '4', '--synthetic-kind', 'mix',
                                      '--motion-directions', 'my.pt', '--motion-strength', '0.5'])
    cfg = EncoderTrainConfig(**{f.name: getattr(args, f.name) for f in fields(EncoderTrainConfig)})
    assert (cfg.synthetic, cfg.synthetic_kind) == (4, 'mix')
    assert (cfg.motion_directions, cfg.motion_strength) == ('my.pt', 0.5)
    assert EncoderTrainConfig().synthetic_kind == 'auto'


@pytest.mark.skipif(not (DATA / 'faces' / 'utkface').is_dir(), reason=f'shared data not found at {DATA}')
@pytest.mark.needs_dlib
def test_three_training_steps_with_motion_pairs(tmp_path):
    """3 steps of `python -m hybridlat.reenactment.train_encoder` on tiny data: kind motion, then auto (falls
    back)."""
    from hybridlat.realfaces.datasets import build_face_dataset
    from hybridlat.training.gan_checkpoints import (generator_from_checkpoint,
        save_checkpoint as save_gan_checkpoint)
    from hybridlat.reenactment.train_encoder import main, read_log
    from hybridlat.training.train_gan import TrainConfig, build_state as build_gan_state
    gan = TrainConfig(resolution=16, batch=4, z_dim=32, w_dim=32, map_layers=2, channel_base=256,
                      channel_max=32, workers=0)
    save_gan_checkpoint(build_gan_state(gan), tmp_path / 'gan.pt')
    build_face_dataset({'utkface': DATA / 'faces' / 'utkface'}, 32, tmp_path / 'faces.zip', max_per_source=6,
                       workers=1, progress=False)
    Gt = generator_from_checkpoint(tmp_path / 'gan.pt')
    save_motion_directions(random_directions(Gt, deformation_layers(Gt)), tmp_path / 'motion.pt', Gt)
    common = ['--gan', str(tmp_path / 'gan.pt'), '--faces', str(tmp_path / 'faces.zip'), '--batch', '4',
              '--steps', '3', '--encoder-kwargs', json.dumps(dict(channels=[4, 8, 8, 8, 8], fpn_channels=8)),
              '--workers', '0', '--n-samples', '2', '--no-progress', '--synthetic', '4']
    st = main([*common, '--out', str(tmp_path / 'run'), '--synthetic-kind', 'motion', '--motion-directions',
               str(tmp_path / 'motion.pt')])
    assert st.pair_kind == 'motion' and st.step == 3
    assert all(np.isfinite(r['latent']) for r in read_log(tmp_path / 'run' / 'log.jsonl'))
    with pytest.warns(UserWarning, match='fall back'):
        st = main([*common, '--out', str(tmp_path / 'run2')])
    assert st.pair_kind == 'faces'


def test_cross_triples_target_is_the_source_person_with_the_driver_motion(G):
    layers = deformation_layers(G)
    dirs = random_directions(G, layers)
    torch.manual_seed(0)
    src, drv, tgt, w_id, s_f = sp.cross_triples(G, 4, layers, dirs, source_strength=0.0)
    assert src.shape == drv.shape == tgt.shape == (4, 3, 16, 16) and w_id.shape == (4, G.num_ws, G.w_dim)
    assert torch.allclose(tgt, render_hybrid(G, w_id, s_f), atol=1e-5)          # W_ID and S_F are the answer
    # no own motion: the face itself
    assert torch.allclose(src, G.synthesis(w_id, noise_mode='const'), atol=1e-5)
    assert (drv - tgt).abs().mean() > 1e-3  # the driver is someone else
    torch.manual_seed(0)
    own = sp.cross_triples(G, 4, layers, dirs, source_strength=1.0)[0]
    assert (own - src).abs().mean() > 1e-4  # its own motion moves the source


def test_generated_items_cross_half_motion_pairs_half_triples(G):
    layers = deformation_layers(G)
    dirs = random_directions(G, layers)
    torch.manual_seed(0)
    src, drv, tgt, w_id, s_f = sp.generated_items(G, 5, layers, 'cross', dirs)
    assert len(src) == len(drv) == len(tgt) == len(w_id) == 5 and all(len(v) == 5 for v in s_f.values())
    assert torch.equal(tgt[:2], drv[:2])                   # motion pairs: the target is the driving image
    assert all((tgt[i] - drv[i]).abs().mean() > 1e-3 for i in range(2, 5))
    assert torch.allclose(tgt, render_hybrid(G, w_id, s_f), atol=1e-5)
    torch.manual_seed(0)
    m = sp.generated_items(G, 3, layers, 'motion', dirs)
    assert m[2] is m[1]
    with pytest.raises(ValueError, match='pair kind'): sp.generated_items(G, 2, layers, 'walk', dirs)
