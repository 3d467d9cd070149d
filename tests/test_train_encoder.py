"""Encoder training: exact resume across processes, DDP with 2 gloo processes, the adversarial and extra-loss
options."""
import copy
import json
import os
import subprocess
import sys
import textwrap
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import tiny_training_zips
from hybridlat.reenactment.encoder import load_encoder
from hybridlat.training.gan_checkpoints import save_checkpoint as save_gan_checkpoint
from hybridlat.reenactment.train_encoder import (
    EncoderTrainConfig,
    build_state,
    load_checkpoint,
    load_networks,
    main,
    read_log,
    train_step,
)
from hybridlat.training.train_gan import TrainConfig, build_state as build_gan_state

DATA = Path(os.environ.get('HYBRIDLAT_DATA', Path(__file__).resolve().parents[2] / 'shared' / 'data'))
ENV = {**os.environ, 'OMP_NUM_THREADS': '1'}
ENC = json.dumps(dict(channels=[4, 8, 8, 8, 8], fpn_channels=8))
pytestmark = [pytest.mark.skipif(not (DATA / 'videos').is_dir(),
                                 reason=f'shared data not found at {DATA} (set HYBRIDLAT_DATA)'),
              pytest.mark.needs_dlib]   # the data fixture aligns faces with dlib


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    """A tiny frozen GAN (16², untrained) and tiny face / clip zips built at 32² from the shared data (resized
    to 16² in training)."""
    d = tmp_path_factory.mktemp('data')
    gan = TrainConfig(
        resolution=16, batch=4, z_dim=32, w_dim=32, map_layers=2, channel_base=256, channel_max=32, workers=0
    )
    save_gan_checkpoint(build_gan_state(gan), d / 'gan.pt')
    clips = ('liveportrait_d6.mp4', 'liveportrait_d9.mp4', 'lia_vox_driving1.mp4')
    tiny_training_zips(DATA, d, clips, max_faces=6)
    return d


def tiny_args(d, *extra):
    return [
        '--gan',
        str(d / 'gan.pt'),
        '--faces',
        str(d / 'faces.zip'),
        '--clips',
        str(d / 'clips.zip'),
        '--batch',
        '4',
        '--encoder-kwargs',
        ENC,
        '--val-clips',
        '1',
        '--n-samples',
        '3',
        '--sample-every',
        '2',
        '--lr',
        '0.001',
        '--no-progress',
        *extra,
    ]


def run(args, cwd, timeout=300):
    res = subprocess.run(args, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    return res


def assert_same_state(a, b, nets=('E',), opts=('opt',)):
    "Two checkpoint dicts (or rank dumps) hold bit-identical networks and optimiser moments."
    for net in nets:
        assert a[net].keys() == b[net].keys()
        for k in a[net]: assert torch.equal(a[net][k], b[net][k]), f'{net}.{k} differs'
    for opt in opts:
        for i, s in a[opt]['state'].items():
            for k, v in s.items():
                assert torch.equal(v, b[opt]['state'][i][k]), f'{opt} state {i}.{k} differs'


strip = lambda recs: [{k: v for k, v in r.items() if k != 'sec'} for r in recs]


@pytest.fixture
def one_thread():
    """Run this test's in-process training on one thread, like its subprocesses (ENV): CPU kernels reduce in a
    different order on more."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_resume_in_a_new_process_gives_the_same_steps(files, tmp_path, one_thread):
    # the uninterrupted run and the first half run here; the second half in a new process, with another
    # worker count
    main(tiny_args(files, '--out', str(tmp_path / 'whole'), '--workers', '0', '--steps', '4'))
    main(tiny_args(files, '--out', str(tmp_path / 'split'), '--workers', '0', '--steps', '2'))
    first = load_checkpoint(tmp_path / 'split' / 'checkpoint.pt')
    assert first['step'] == 2 and first['images_seen'] == 8
    run(
        [
            sys.executable,
            '-m',
            'hybridlat.reenactment.train_encoder',
            *tiny_args(files, '--out', str(tmp_path / 'split'), '--workers', '1'),
            '--steps',
            '4',
            '--resume',
        ],
        tmp_path,
    )
    whole, resumed = (load_checkpoint(tmp_path / d / 'checkpoint.pt') for d in ('whole', 'split'))
    assert resumed['step'] == whole['step'] == 4
    assert_same_state(whole, resumed)
    # the resumed steps trained
    assert not all(torch.equal(v, first['E'][k]) for k, v in resumed['E'].items())
    assert strip(read_log(tmp_path / 'split' / 'log.jsonl')) == strip(
        read_log(tmp_path / 'whole' / 'log.jsonl')
    )
    log = read_log(tmp_path / 'whole' / 'log.jsonl')
    assert [r['step'] for r in log] == [0, 1, 2, 3] and 'val_l1' in log[1] and 'val_l1' not in log[0]
    assert {'l1', 'l2', 'msssim', 'feat', 'identity', 'sf_l2', 'sf_l1'} <= set(log[0])
    samples = sorted(p.name for p in (tmp_path / 'whole' / 'samples').iterdir())
    assert samples == ['samples000000.png', 'samples000002.png', 'samples000004.png']
    assert not [p for p in (tmp_path / 'whole').rglob('.*')]  # no temp files left behind
    E = load_encoder(tmp_path / 'split' / 'encoder.pt')
    assert all(torch.equal(v, whole['E'][k]) for k, v in E.state_dict().items())
    meta = E.checkpoint_info['meta']
    assert (
        meta['steps'],
        meta['images_seen'],
        meta['data']['clips']['clips'],
        meta['data']['faces']['images'],
    ) == (4, 16, 2, 6)
    assert '--resume' in meta['command'] and meta['command'].startswith(
        'python -m hybridlat.reenactment.train_encoder'
    )
    assert meta['wall_s'] > 0 and set(meta['losses']) >= {'loss', 'l1'} and meta['hardware']['processes'] == 1


WRAPPER = textwrap.dedent('''
    import os, sys, torch, torch.distributed as dist
    from hybridlat.reenactment.train_encoder import main
    dist.init_process_group('gloo')                      # ours: main() leaves it open, so three runs share it
    argv, out = sys.argv[1:], lambda name: os.path.join(os.getcwd(), name)
    runs = [('whole', ['--steps', '3']), ('split', ['--steps', '2']), ('split', ['--steps', '3', '--resume'])]
    for name, extra in runs:
        st = main(argv + ['--out', out(name)] + extra)
    state = dict(E=st.E.state_dict(), opt=st.opt.state_dict(), step=st.step)
    torch.save(state, out(f"split/rank{st.rank}.pt"))
    dist.destroy_process_group()
''')


def test_ddp_two_gloo_processes_stay_identical_and_resume(files, tmp_path):
    (tmp_path / 'wrapper.py').write_text(WRAPPER)
    run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2', 'wrapper.py',
         *tiny_args(files, '--workers', '0')], tmp_path, timeout=600)
    ranks = [torch.load(tmp_path / 'split' / f'rank{r}.pt', weights_only=True) for r in (0, 1)]
    assert_same_state(*ranks)  # both processes hold the same encoder
    whole, split = (load_checkpoint(tmp_path / d / 'checkpoint.pt') for d in ('whole', 'split'))
    assert_same_state(whole, split)  # a resumed DDP run is the same run
    assert_same_state(split, ranks[0])
    assert split['world_size'] == 2 and split['step'] == 3 and split['images_seen'] == 12
    # each rank has its own random stream
    assert not torch.equal(split['rng'][0]['torch'], split['rng'][1]['torch'])
    # one writer: no duplicate lines
    assert [r['step'] for r in read_log(tmp_path / 'split' / 'log.jsonl')] == [0, 1, 2]
    meta = load_encoder(tmp_path / 'whole' / 'encoder.pt').checkpoint_info['meta']
    assert meta['hardware']['processes'] == 2 and meta['command'].startswith('torchrun --nproc_per_node 2')


def tiny_batch(files, n_pairs=3):
    from hybridlat.realfaces.datasets import FaceDataset, FramePairDataset
    from hybridlat.reenactment.train_encoder import TrainingItems, fit_resolution
    pairs, faces = FramePairDataset(files / 'clips.zip', val_clips=1), FaceDataset(files / 'faces.zip')
    items = [TrainingItems(pairs)[(0, i)] for i in range(n_pairs)] + [TrainingItems(faces)[(0, 0)]]
    return (*(fit_resolution(torch.stack(x), 16) for x in zip(*items)), n_pairs)


def test_adversarial_term_trains_a_copy_of_d_and_resumes(files, tmp_path):
    G, D = load_networks(files / 'gan.pt')
    cfg = EncoderTrainConfig(batch=4, adv_weight=0.1, encoder_kwargs=ENC, workers=0)
    st = build_state(cfg, G, D)
    D0 = {k: v.clone() for k, v in D.state_dict().items()}
    logs = train_step(st, *tiny_batch(files))
    assert {'adv', 'loss_D'} <= set(logs)
    assert all(torch.equal(v, D0[k]) for k, v in D.state_dict().items())             # frozen D untouched
    assert not all(torch.equal(v, D0[k]) for k, v in st.D_adv.state_dict().items())  # its copy learned
    assert not any(p.requires_grad for p in G.parameters())
    from hybridlat.reenactment.train_encoder import restore, save_checkpoint
    save_checkpoint(st, tmp_path / 'ckpt.pt')
    st2 = restore(build_state(cfg, G, D), load_checkpoint(tmp_path / 'ckpt.pt'))
    assert_same_state(
        dict(
            E=st.E.state_dict(), D=st.D_adv.state_dict(), opt=st.opt.state_dict(), opt_D=st.opt_D.state_dict()
        ),
        dict(
            E=st2.E.state_dict(),
            D=st2.D_adv.state_dict(),
            opt=st2.opt.state_dict(),
            opt_D=st2.opt_D.state_dict(),
        ),
        nets=('E', 'D'),
        opts=('opt', 'opt_D'),
    )


def test_sf_regulariser_alone_shrinks_the_offsets(files):
    G, _ = load_networks(files / 'gan.pt', need_D=False)
    only_sf = dict(
        l1_weight=0, l2_weight=0, msssim_weight=0, feat_weight=0, identity_weight=0, sf_l2_weight=0
    )
    st = build_state(
        EncoderTrainConfig(
            batch=4,
            lr=1e-3,
            encoder_kwargs=json.dumps(dict(channels=[4, 8, 8, 8, 8], fpn_channels=8, head_init=1.0)),
            sf_l1_weight=1.0,
            **only_sf,
        ),
        G,
    )
    batch = tiny_batch(files)
    logs = [train_step(st, *batch) for _ in range(15)]
    assert set(logs[0]) == {'loss', 'sf_l1'}                                       # zero weights cost nothing
    assert logs[-1]['sf_l1'] < 0.5 * logs[0]['sf_l1'], (logs[0], logs[-1])
    with pytest.raises(ValueError, match='need a discriminator'): build_state(EncoderTrainConfig(), G, None)


def test_identity_consistency_pulls_two_frames_together(files):
    G, _ = load_networks(files / 'gan.pt', need_D=False)
    only_id = dict(l1_weight=0, l2_weight=0, msssim_weight=0, feat_weight=0, sf_l2_weight=0, sf_l1_weight=0)
    kw = json.dumps(dict(channels=[4, 8, 8, 8, 8], fpn_channels=8, head_init=1.0))
    st = build_state(
        EncoderTrainConfig(batch=4, lr=1e-3, encoder_kwargs=kw, identity_weight=1.0, **only_id), G
    )
    batch = tiny_batch(files)
    logs = [train_step(st, *batch) for _ in range(15)]
    assert set(logs[0]) == {'loss', 'identity'}
    assert logs[-1]['identity'] < 0.5 * logs[0]['identity'], (logs[0], logs[-1])


def test_extra_loss_from_the_command_line(files, tmp_path, monkeypatch):
    (tmp_path / 'my_losses.py').write_text(
        'def make_mean_shift():\n    return lambda out, target: (out.mean() - target.mean()).abs()\n'
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    st = main(
        tiny_args(
            files,
            '--out',
            str(tmp_path / 'run'),
            '--steps',
            '1',
            '--workers',
            '0',
            '--extra-loss',
            'my_losses:make_mean_shift=0.5',
        )
    )
    rec = read_log(tmp_path / 'run' / 'log.jsonl')[0]
    assert rec['make_mean_shift'] > 0 and st.extra_losses['make_mean_shift'][1] == 0.5
    assert load_encoder(tmp_path / 'run' / 'encoder.pt').checkpoint_info['meta']['extra_losses'] == [
        'make_mean_shift'
    ]
    with pytest.raises(ValueError, match='not a hybridlat training checkpoint'):
        load_networks(files / 'faces.zip')


def test_face_identity_term_init_weights_and_named_validation_clips(files, tmp_path, one_thread):
    main(
        tiny_args(
            files, '--out', str(tmp_path / 'a'), '--workers', '0', '--steps', '2', '--face-id-weight', '0.5'
        )
    )
    log = read_log(tmp_path / 'a' / 'log.jsonl')
    assert all('face_id' in r and r['face_id'] >= 0 for r in log)
    G, D = load_networks(files / 'gan.pt')
    start = load_encoder(tmp_path / 'a' / 'encoder.pt')
    st = build_state(
        EncoderTrainConfig(batch=4, encoder_kwargs=ENC), G, D, init=tmp_path / 'a' / 'encoder.pt'
    )
    assert all(torch.equal(v, start.state_dict()[k]) for k, v in st.E.state_dict().items())
    G2 = copy.deepcopy(G)                                              # a retrained generator: another w_avg
    G2.mapping.w_avg += 0.5
    with warnings.catch_warnings():
        warnings.simplefilter('error')                                 # a warm start is expected: no warning
        st2 = build_state(EncoderTrainConfig(batch=4, encoder_kwargs=ENC), G2, D,
                          init=tmp_path / 'a' / 'encoder.pt')
    assert torch.equal(st2.E.w_avg, G2.mapping.w_avg) and not torch.equal(st2.E.w_avg, start.w_avg)
    assert all(torch.equal(v, start.state_dict()[k]) for k, v in st2.E.state_dict().items() if k != 'w_avg')
    other = json.dumps(dict(channels=[4, 8, 8, 8, 16], fpn_channels=8))
    with pytest.raises(ValueError, match='differs'):
        build_state(
            EncoderTrainConfig(batch=4, encoder_kwargs=other), G, D, init=tmp_path / 'a' / 'encoder.pt'
        )
    st = main(tiny_args(files, '--out', str(tmp_path / 'b'), '--workers', '0', '--steps', '1',
                        '--init', str(tmp_path / 'a' / 'encoder.pt'), '--val-clips', 'liveportrait_d9'))
    assert st.step == 1                                               # a new run: counters start at 0
    meta = load_encoder(tmp_path / 'b' / 'encoder.pt').checkpoint_info['meta']
    assert meta['data']['val']['clips'] == ['liveportrait_d9'] and meta['data']['clips']['clips'] == 2
    with pytest.raises(ValueError, match='unknown validation clips'):
        main(
            tiny_args(
                files, '--out', str(tmp_path / 'c'), '--workers', '0', '--steps', '1', '--val-clips', 'nope,x'
            )
        )


def test_mouth_term_reads_the_expression_change():
    """On faces128: the mouth strength of S_F is a projection, and the term is 0 when S_F matches the
    expression change."""
    from hybridlat.reenactment.train_encoder import direction_strength, mouth_term
    G, D = load_networks('faces128')
    st = build_state(EncoderTrainConfig(batch=4, mouth_weight=1.0, encoder_kwargs=ENC), G, D)
    d = st.mouth_dir
    assert torch.allclose(direction_strength({l: 3 * v[None] for l, v in d.items()}, d), torch.tensor([3.]))
    g = torch.Generator().manual_seed(0)
    src = torch.rand(2, 3, 128, 128, generator=g) * 2 - 1
    drv = src.flip(2)
    with torch.no_grad():
        change = (st.expression(drv) - st.expression(src))[:, 0] * st.expression.std[0] / st.mouth_unit
    exact = {l: change[:, None] * v[None] for l, v in d.items()}
    assert float(mouth_term(st, exact, src, drv)) < 1e-8
    assert float(mouth_term(st, {l: 0 * v for l, v in exact.items()}, src, drv)) > 1e-4



@pytest.mark.needs_dlib
def test_yaw_term_reads_dlibs_yaw_change():
    "On faces128: the fixed-box yaw against detection, its change in the direction's units, the term's zero."
    from hybridlat.reenactment.synthetic_pairs import face_measures
    from hybridlat.images import to_uint8
    from hybridlat.reenactment.train_encoder import aligned_yaw, direction_strength, yaw_change, yaw_term
    G, D = load_networks('faces128')
    st = build_state(EncoderTrainConfig(batch=4, yaw_weight=1.0, encoder_kwargs=ENC), G, D)
    assert st.yaw_unit > 1                                             # degrees of yaw per unit
    z = torch.randn(6, G.z_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad(): src = G.synthesis(G.mapping(z, None, truncation_psi=0.7), noise_mode='const')
    detected = face_measures(to_uint8(src))['yaw']
    assert np.isfinite(detected).all() and np.abs(aligned_yaw(src) - detected).max() < 5   # degrees
    drv = src.flip(3)                                                  # mirrored: turned the other way
    degrees = yaw_change(src, drv, limit=1e9)
    assert torch.allclose(degrees, torch.as_tensor(aligned_yaw(drv) - aligned_yaw(src), dtype=torch.float32))
    change = yaw_change(src, drv, st.yaw_unit)
    assert change.abs().max() <= 3 and torch.allclose(change, (degrees / st.yaw_unit).clamp(-3, 3))
    exact = {l: change[:, None] * v[None] for l, v in st.yaw_dir.items()}
    assert torch.allclose(direction_strength(exact, st.yaw_dir), change, atol=1e-4)
    assert float(yaw_term(st, exact, src, drv)) < 1e-6
    zero = {l: (0 * v).requires_grad_() for l, v in exact.items()}
    assert float(yaw_term(st, zero, src, drv).detach()) > 0
    use = torch.tensor([True, False, True, False, False, False])
    assert torch.isclose(yaw_term(st, zero, src, drv, use).detach(), change[use].square().mean())
    nothing = yaw_term(st, zero, src, drv, torch.zeros(6, dtype=torch.bool))   # no item: 0, graph kept
    assert float(nothing.detach()) == 0 and nothing.requires_grad
