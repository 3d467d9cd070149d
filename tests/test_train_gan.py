"""GAN training: exact resume across processes, DDP with 2 gloo processes, and sanity checks that D and G
learn."""
import json
import os
import subprocess
import sys
import textwrap
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from hybridlat.training.discriminator import Discriminator
from hybridlat.training.gan_data import FaceImages, ToyFaces, open_dataset
from hybridlat.images import image_grid
from hybridlat.training.gan_checkpoints import generator_from_checkpoint, load_checkpoint
from hybridlat.training.train_gan import TrainConfig, build_state, d_step, g_step, read_log, train

TINY = [
    '--data',
    'toy:64',
    '--resolution',
    '16',
    '--batch',
    '4',
    '--z-dim',
    '32',
    '--w-dim',
    '32',
    '--map-layers',
    '2',
    '--channel-base',
    '256',
    '--channel-max',
    '32',
    '--r1-interval',
    '2',
    '--pl-interval',
    '2',
    '--workers',
    '0',
    '--n-samples',
    '8',
    '--no-progress',
]
ENV = {**os.environ, 'OMP_NUM_THREADS': '1'}
DATA = Path(os.environ.get('HYBRIDLAT_DATA', Path(__file__).resolve().parents[2] / 'shared' / 'data'))


def tiny_cfg(**kw):
    return TrainConfig(**{**dict(resolution=16, batch=8, z_dim=32, w_dim=32, map_layers=2, channel_base=256,
                                 channel_max=32, workers=0, n_samples=8), **kw})


def run(args, cwd, timeout=300):
    res = subprocess.run(args, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    return res


def cli(out, *extra, cwd):
    return run([sys.executable, '-m', 'hybridlat.training.train_gan', *TINY, '--out', str(out), *extra], cwd)


def assert_same_state(a, b):
    "Two checkpoint dicts (or rank dumps) hold bit-identical networks and optimiser moments."
    for net in ('G', 'D', 'G_ema'):
        assert a[net].keys() == b[net].keys()
        for k in a[net]: assert torch.equal(a[net][k], b[net][k]), f'{net}.{k} differs'
    for opt in ('opt_G', 'opt_D'):
        for i, s in a[opt]['state'].items():
            for k, v in s.items():
                assert torch.equal(v, b[opt]['state'][i][k]), f'{opt} state {i}.{k} differs'


def test_resume_in_a_new_process_gives_the_same_steps(tmp_path):
    cli(tmp_path / 'whole', '--steps', '4', cwd=tmp_path)
    cli(tmp_path / 'split', '--steps', '2', cwd=tmp_path)
    first = load_checkpoint(tmp_path / 'split' / 'checkpoint.pt')
    assert first['step'] == 2 and first['images_seen'] == 8
    cli(tmp_path / 'split', '--steps', '4', '--resume', cwd=tmp_path)
    whole, resumed = (load_checkpoint(tmp_path / d / 'checkpoint.pt') for d in ('whole', 'split'))
    assert resumed['step'] == whole['step'] == 4
    assert_same_state(whole, resumed)
    assert not torch.equal(
        first['G']['synthesis.b16.conv1.weight'], resumed['G']['synthesis.b16.conv1.weight']
    )
    strip = lambda recs: [{k: v for k, v in r.items() if k != 'sec'} for r in recs]
    assert strip(read_log(tmp_path / 'split' / 'log.jsonl')) == strip(
        read_log(tmp_path / 'whole' / 'log.jsonl')
    )
    assert [r['step'] for r in read_log(tmp_path / 'whole' / 'log.jsonl')] == [0, 1, 2, 3]
    # regularisers ran after the resume point
    assert 'r1_penalty' in read_log(tmp_path / 'whole' / 'log.jsonl')[2]
    samples = sorted(p.name for p in (tmp_path / 'whole' / 'samples').iterdir())
    assert samples == ['fakes000000.png', 'fakes000004.png', 'reals.png']
    assert not [p for p in (tmp_path / 'whole').rglob('.*')]  # no temp files left behind


@pytest.mark.skipif(not (DATA / 'faces').is_dir(),
                    reason=f'shared data not found at {DATA} (set HYBRIDLAT_DATA)')
@pytest.mark.needs_dlib   # build_face_dataset aligns with dlib
def test_cli_trains_on_a_face_dataset_zip(tmp_path):
    from hybridlat.realfaces.datasets import build_face_dataset
    faces = tmp_path / 'faces32.zip'
    rep = build_face_dataset(
        {'utkface': DATA / 'faces' / 'utkface'}, 32, faces, max_per_source=6, workers=1, progress=False
    )
    assert rep.sources['utkface']['kept'] >= 4
    # the last --data wins; trains at 16²
    cli(tmp_path / 'run', '--steps', '2', '--data', str(faces), cwd=tmp_path)
    assert load_checkpoint(tmp_path / 'run' / 'checkpoint.pt')['step'] == 2
    data = open_dataset(faces, 16)
    assert type(data) is FaceImages and len(data) == rep.sources['utkface']['kept']
    reals = np.asarray(Image.open(tmp_path / 'run' / 'samples' / 'reals.png'))
    assert (
        reals == image_grid(torch.stack([data[i] for i in range(len(data))]), ncols=min(8, len(data)))
    ).all()


def test_checkpoint_is_plain_data(tmp_path):
    st = train(tiny_cfg(steps=1), ToyFaces(16, 16), tmp_path, progress=False)
    ckpt = torch.load(tmp_path / 'checkpoint.pt', weights_only=True)                 # refuses pickled code
    assert json.loads(ckpt['config'])['resolution'] == 16 and ckpt['step'] == 1
    assert set(ckpt['rng'][0]) >= {'torch', 'numpy', 'python'}
    G = generator_from_checkpoint(tmp_path / 'checkpoint.pt')
    assert all(torch.equal(v, st.G_ema.state_dict()[k]) for k, v in G.state_dict().items())


WRAPPER = textwrap.dedent('''
    import os, sys, torch
    from hybridlat.training.train_gan import main
    st = main(sys.argv[1:])
    out = sys.argv[sys.argv.index('--out') + 1]
    state = dict(G=st.G.state_dict(), D=st.D.state_dict(), G_ema=st.G_ema.state_dict(),
                 opt_G=st.opt_G.state_dict(), opt_D=st.opt_D.state_dict(), step=st.step)
    torch.save(state, os.path.join(out, f"rank{os.environ['RANK']}.pt"))
''')


def torchrun(*args, cwd):
    return run(
        [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2', *args],
        cwd,
        timeout=600,
    )


def test_ddp_two_gloo_processes_stay_identical_and_resume(tmp_path):
    (tmp_path / 'wrapper.py').write_text(WRAPPER)
    torchrun('wrapper.py', *TINY, '--out', str(tmp_path / 'whole'), '--steps', '3', cwd=tmp_path)
    split = str(tmp_path / 'split')
    torchrun('-m', 'hybridlat.training.train_gan', *TINY, '--out', split, '--steps', '2', cwd=tmp_path)
    torchrun('wrapper.py', *TINY, '--out', str(tmp_path / 'split'), '--steps', '3', '--resume', cwd=tmp_path)
    ranks = {
        d: [torch.load(tmp_path / d / f'rank{r}.pt', weights_only=True) for r in (0, 1)]
        for d in ('whole', 'split')
    }
    assert_same_state(*ranks['whole'])                       # both processes hold the same networks
    assert_same_state(ranks['whole'][0], ranks['split'][1])  # and a resumed DDP run is the same run
    ckpt = load_checkpoint(tmp_path / 'split' / 'checkpoint.pt')
    assert ckpt['world_size'] == 2 and ckpt['step'] == 3 and ckpt['images_seen'] == 12
    # each rank has its own random stream
    assert not torch.equal(ckpt['rng'][0]['torch'], ckpt['rng'][1]['torch'])
    assert_same_state(ckpt, ranks['split'][0])
    init = build_state(TrainConfig(**json.loads(ckpt['config'])))
    assert not torch.equal(init.D.b4.out.weight, ckpt['D']['b4.out.weight'])   # training moved the weights
    # one writer: no duplicate lines
    assert [r['step'] for r in read_log(tmp_path / 'split' / 'log.jsonl')] == [0, 1, 2]


def toy_batches(n=256, res=16, batch=8, seed=0):
    data = torch.stack([ToyFaces(n, res)[i] for i in range(n)])
    g = torch.Generator().manual_seed(seed)
    while True: yield data[torch.randint(0, n, (batch,), generator=g)]


def test_discriminator_learns_to_separate_reals_from_fakes():
    st = build_state(tiny_cfg(augment='', xflip=False))
    batches = toy_batches()
    logs = [d_step(st, next(batches)) for _ in range(30)]
    loss = [float(l['loss_D']) for l in logs]
    assert abs(sum(loss[:3]) / 3 - 1.386) < 0.4                            # starts near 2 log 2
    assert sum(loss[-5:]) / 5 < 0.5 * sum(loss[:5]) / 5
    assert all(float(l['D_real'] - l['D_fake']) > 1 for l in logs[-5:])


def test_generator_learns_to_fool_a_frozen_discriminator():
    st = build_state(tiny_cfg(augment='', xflip=False))
    batches = toy_batches()
    for _ in range(30): d_step(st, next(batches))
    loss = [float(g_step(st)['loss_G']) for _ in range(30)]
    assert sum(loss[-5:]) / 5 < 0.5 * sum(loss[:5]) / 5


def test_full_loop_moves_g_ema_towards_the_data(tmp_path):
    # Measured at 120 steps: distance 1.84 → 0.10 with the real losses; 0.57 with L_G zeroed (path length
    # alone); 2.01 with L_G's sign flipped. The bound 0.2 × before separates them.
    data = ToyFaces(256, 16)
    reals = torch.stack([data[i] for i in range(256)])
    stats = lambda x: torch.cat([x.mean((0, 2, 3)), x.std((0, 2, 3))])
    def distance(G):
        with torch.no_grad(): fakes = G.synthesis(G.sample_ws(range(64)), noise_mode='const')
        return (stats(fakes) - stats(reals)).norm().item()
    before = distance(build_state(tiny_cfg()).G_ema)
    st = train(tiny_cfg(steps=120), data, tmp_path, progress=False)
    after = distance(st.G_ema)
    assert after < 0.2 * before, (before, after)


def test_discriminator_shapes_and_features():
    D = Discriminator(img_resolution=64, channel_base=1024, channel_max=64)
    img = torch.randn(4, 3, 64, 64)
    feats = D.features(img)
    assert [tuple(f.shape) for f in feats] == [
        (4, 32, 32, 32),
        (4, 64, 16, 16),
        (4, 64, 8, 8),
        (4, 64, 4, 4),
        (4, 64, 4, 4),
    ]
    assert D(img).shape == (4, 1)
    with pytest.raises(ValueError, match='D expects images'): D(torch.randn(4, 3, 32, 32))
