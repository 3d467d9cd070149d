"Re-enactment: the pipeline end to end, its errors, the CLI, the grid, and the evaluation machinery."
import os
from pathlib import Path
import numpy as np
import pytest
import torch
from PIL import Image

DATA = Path(os.environ.get('HYBRIDLAT_DATA', Path(__file__).resolve().parents[2] / 'shared' / 'data'))
pytestmark = [pytest.mark.skipif(not (DATA / 'videos').is_dir(),
                                 reason=f'shared data not found at {DATA} (set HYBRIDLAT_DATA)'),
              pytest.mark.needs_dlib]
from helpers import G  # noqa: F401 (the shipped generator fixture)
from hybridlat.explore.edits import save_directions
from hybridlat.reenactment.encoder import encoder_for, save_encoder
from hybridlat.realfaces.faces import NoFaceError, align_face, face_landmarks, load_image, paste_back
from hybridlat.stylegan2.generator import Generator, small_generator_kwargs
from hybridlat.training.pretrained import load_pretrained
from hybridlat.reenactment.reenact import (
    STAGES,
    benchmark_reenact,
    edit_identity,
    encode_driving,
    kit_targets,
    yaw_by_driver_motion,
    attainable_yaw,
    parse_edits,
    paste_frames,
    reenact,
    reenact_grid,
    reenact_main,
    render_frames,
    score_frames,
    smooth_styles,
    validation_clips,
    refine_identity,
    REFINE_LIMIT,
)
from hybridlat.explore.inversion import ReconstructionLoss
from hybridlat.images import UsageError, from_uint8
from hybridlat.reenactment.encoder import render_hybrid
from hybridlat.realfaces.datasets import HELD_OUT_CLIPS
from hybridlat.realfaces.video import VideoReadError, probe_video, read_video

PORTRAIT, CLIP = DATA / 'portraits' / 'lia_vox_taylor.png', DATA / 'videos' / 'lia_vox_driving2.mp4'



@pytest.fixture(scope='module')
def E(G):
    torch.manual_seed(0)
    return encoder_for(G).eval()


@pytest.fixture(scope='module')
def self_res(G, E):
    return reenact(
        CLIP, CLIP, G=G, encoder=E, fps=5, max_frames=6, paste_back=False, smooth_seconds=0, progress=False,
        refine_steps=0,
    )


def test_parse_edits():
    assert parse_edits(['age=+2', 'gender=-1', 'smile=0.5']) == {'age': 2.0, 'gender': -1.0, 'smile': 0.5}
    assert parse_edits([]) == {}
    with pytest.raises(ValueError, match='NAME=AMOUNT'): parse_edits(['age'])
    with pytest.raises(ValueError, match="'age=old'"): parse_edits(['age=old'])


def test_cross_identity_writes_pasted_mp4(G, E, tmp_path):
    res = reenact(
        PORTRAIT,
        CLIP,
        tmp_path / 'out.mp4',
        G=G,
        encoder=E,
        fps=5,
        max_frames=4,
        audio=True,
        progress=False,
        keep_frames=True,
        refine_steps=3,
    )
    src = load_image(PORTRAIT)
    assert res.frames.shape == (4, *src.shape) and res.crops.shape == (4, 128, 128, 3)
    assert list(res.timings) == list(STAGES) and all(t >= 0 for t in res.timings.values())
    assert res.refine_steps == 3 and res.timings['fit'] > 0
    clip = read_video(res.path)
    assert clip.frames.shape == (4, *src.shape) and clip.fps == 5
    assert probe_video(res.path)['audio'] is not None                 # the driving clip's sound
    assert sorted(p.name for p in tmp_path.iterdir()) == ['out.mp4']  # atomic: no temp file left
    corner = (slice(0, 4), slice(0, 4))  # far from the face: untouched
    assert np.array_equal(res.frames[0][corner], src[corner])


def test_self_reenactment_crops(G, E, self_res):
    assert np.array_equal(self_res.frames, self_res.crops) and self_res.frames.shape == (6, 128, 128, 3)
    again = render_frames(
        G, self_res.w_id, encode_driving(E, self_res.driving_crops, batch_size=3), batch_size=5
    )
    assert np.abs(again.astype(int) - self_res.crops).max() <= 1
    assert self_res.w_id.shape == (1, G.num_ws, G.w_dim)


def test_smoothing_is_in_seconds(G, E, self_res):
    smooth = reenact(
        CLIP, CLIP, G=G, encoder=E, fps=5, max_frames=6, paste_back=False, smooth_seconds=0.4, progress=False,
        refine_steps=0,
    )
    k = next(iter(smooth.s_f))
    assert not torch.allclose(smooth.s_f[k], self_res.s_f[k])
    two_frames = smooth_styles(self_res.s_f, 2.0)                         # 0.4 s at 5 frames a second
    for k, v in smooth.s_f.items(): assert torch.allclose(v, two_frames[k], atol=1e-6)
    with pytest.raises(UsageError, match='--smooth must be'):
        reenact(CLIP, CLIP, G=G, encoder=E, max_frames=2, progress=False, smooth_seconds=-0.1)


def test_motion_scale(G, E, self_res):
    doubled = reenact(CLIP, CLIP, G=G, encoder=E, fps=5, max_frames=6, paste_back=False, smooth_seconds=0,
                      progress=False, refine_steps=0, motion_scale=2.0)
    for k, v in self_res.s_f.items(): assert torch.allclose(doubled.s_f[k], 2 * v)
    assert torch.equal(doubled.w_id, self_res.w_id) and not np.array_equal(doubled.crops, self_res.crops)
    with pytest.raises(UsageError, match='--motion-scale'):
        reenact(CLIP, CLIP, G=G, encoder=E, max_frames=2, progress=False, motion_scale=-1)


def test_smooth_styles():
    ramp = {'x': torch.linspace(0, 1, 10)[:, None].repeat(1, 4)}
    assert (smooth_styles(ramp, 2.0)['x'] - ramp['x']).abs().max() < 1e-5           # steady motion passes
    noisy = {'x': ramp['x'] + 0.1 * torch.randn(10, 4, generator=torch.Generator().manual_seed(0))}
    assert (smooth_styles(noisy, 2.0)['x'] - ramp['x']).abs().mean() < (noisy['x'] - ramp['x']).abs().mean()
    assert smooth_styles(noisy, 0)['x'] is noisy['x']


def test_edits(G):
    w = torch.randn(1, G.num_ws, G.w_dim)
    assert edit_identity(w, None) is w
    assert torch.equal(edit_identity(w, lambda v: v + 1), w + 1)
    with pytest.raises(ValueError, match="unknown edit 'hairiness'"):
        edit_identity(w, {'hairiness': 1.0}, {'age': torch.ones(G.w_dim)})
    d = {'age': torch.randn(G.w_dim)}
    assert torch.allclose(edit_identity(w, {'age': 2.0}, d), w + 2 * d['age'])
    assert torch.allclose(edit_identity(w, ['age=+2'], d), w + 2 * d['age'])


def test_errors(G, E, tmp_path):
    Image.fromarray(np.full((160, 160, 3), 128, np.uint8)).save(tmp_path / 'blank.png')
    with pytest.raises(NoFaceError, match='blank.png'):
        reenact(tmp_path / 'blank.png', CLIP, G=G, encoder=E, max_frames=2, progress=False)
    (tmp_path / 'broken.mp4').write_bytes(b'not a video')
    with pytest.raises(VideoReadError, match='broken.mp4'):
        reenact(PORTRAIT, tmp_path / 'broken.mp4', G=G, encoder=E, progress=False)
    G64 = Generator(**small_generator_kwargs(64)).eval()
    with pytest.raises(ValueError, match='shipped one does not fit'):
        reenact(PORTRAIT, CLIP, G=G64, encoder=None, max_frames=2, progress=False)
    with pytest.raises(ValueError, match='resolution is 128'):
        reenact(PORTRAIT, CLIP, G=G64, encoder=E, max_frames=2, progress=False)
    with pytest.raises(ValueError, match="unknown edit 'hairiness'"):
        reenact(PORTRAIT, CLIP, G=G, encoder=E, max_frames=2, edits={'hairiness': 1},
                directions={'age': torch.ones(G.w_dim)}, progress=False)


def test_cli(G, E, tmp_path, capsys):
    save_encoder(E, tmp_path / 'E.pt')
    save_directions({'age': torch.randn(G.w_dim)}, tmp_path / 'dirs.pt')
    args = [str(PORTRAIT), str(CLIP), '-o', str(tmp_path / 'cli.mp4'), '--encoder', str(tmp_path / 'E.pt'),
            '--fps', '5', '--max-frames', '3', '--no-paste-back', '--grid', str(tmp_path / 'grid.png'),
            '--directions', str(tmp_path / 'dirs.pt'), '--refine', '2', '--edit', 'age=+1']
    assert reenact_main(args) == 0
    assert read_video(tmp_path / 'cli.mp4').frames.shape == (3, 128, 128, 3)
    assert load_image(tmp_path / 'grid.png').shape[0] == 2 * 130 + 2
    assert 'wrote' in capsys.readouterr().out
    Image.fromarray(np.full((160, 160, 3), 128, np.uint8)).save(tmp_path / 'blank.png')
    capsys.readouterr()
    with pytest.raises(SystemExit) as e: reenact_main(args[:-1] + ['hair=1'])
    assert e.value.code == 2 and "unknown edit 'hair'" in capsys.readouterr().err          # usage error
    with pytest.raises(SystemExit) as e: reenact_main(args[:-3] + ['-1', '--edit', 'age=+1'])
    assert e.value.code == 2 and '--refine must be' in capsys.readouterr().err
    absent = ['tpu'] + ([] if torch.cuda.is_available() else ['cuda'])   # cuda: refused where there is none
    for device in absent:
        with pytest.raises(SystemExit) as e: reenact_main(args + ['--device', device])
        err = capsys.readouterr().err
        assert e.value.code == 2 and '--device' in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / 'cli.mp4').with_name('x.mp4').exists()
    with pytest.raises(SystemExit) as e:
        reenact_main(
            [
                str(tmp_path / 'blank.png'),
                str(CLIP),
                '-o',
                str(tmp_path / 'x.mp4'),
                '--encoder',
                str(tmp_path / 'E.pt'),
            ]
        )
    assert e.value.code == 1 and 'blank.png' in capsys.readouterr().err                     # bad data
    assert not (tmp_path / 'x.mp4').exists()


def test_paste_frames_matches_paste_back(self_res):
    frame = load_image(DATA / 'portraits' / 'liveportrait_s1.jpg')
    al = align_face(frame, face_landmarks(frame), 128)
    crops = self_res.crops[:5]
    assert np.array_equal(
        paste_frames(frame, crops, al, batch_size=2), np.stack([paste_back(frame, c, al) for c in crops])
    )


def test_grid(self_res, tmp_path):
    grid = reenact_grid(self_res, n=4, path=tmp_path / 'g.png')
    assert grid.shape == (2 * 130 + 2, 4 * 130 + 2, 3)
    assert np.array_equal(grid[2:130, 2:130], self_res.driving_crops[0])
    assert np.array_equal(grid[132:260, 2:130], self_res.crops[0])
    assert np.array_equal(load_image(tmp_path / 'g.png'), grid)


def test_scores_machinery(self_res):
    crops, ref = self_res.driving_crops, np.stack([a.landmarks for a in self_res.driving_aligned])
    perfect = score_frames(crops, crops, crops[0], ref, ref[0])
    assert (perfect['l1'], perfect['ssim'], perfect['lm_dist'], perfect['psnr']) == (
        0.0,
        1.0,
        0.0,
        float('inf'),
    )
    for k in ('r_mouth', 'r_eyes', 'r_yaw', 'r_pitch'): assert perfect[k] == pytest.approx(1.0, abs=1e-6)
    assert perfect['psnr_held'] == perfect['psnr_drv_held'] < float('inf')   # a copy: the same first frame
    held = score_frames(np.repeat(crops[:1], len(crops), 0), crops, crops[0], ref, ref[0])
    assert held['psnr_held'] == held['psnr_drv_held'] == pytest.approx(np.mean(
        [10 * np.log10(255 ** 2 / np.mean((crops[0].astype(float) - c) ** 2)) for c in crops[1:]]))
    perm = np.random.default_rng(0).permutation(len(crops))
    shuffled = score_frames(crops[perm], crops, crops[0], ref, ref[0])
    assert np.nanmean([shuffled[k] for k in ('r_mouth', 'r_eyes', 'r_yaw', 'r_pitch')]) < 0.9
    assert shuffled['l1'] > 0 and shuffled['lm_dist'] > 0


def test_kit_targets():
    ok = [dict(id_dist=0.5, r_mouth=0.7, r_yaw=0.9), dict(id_dist=0.6, r_mouth=0.6, r_yaw=0.8)]
    assert [r['met'] for r in kit_targets(ok)[0]] == [True, True, True]
    rows, md = kit_targets(
        [dict(id_dist=0.7, r_mouth=0.5, r_yaw=0.7), dict(id_dist=0.6, r_mouth=0.6, r_yaw=0.8)]
    )
    assert [r['met'] for r in rows] == [False, False, False]
    assert np.allclose([r['measured'] for r in rows], [0.65, 0.55, 0.75])
    assert md.startswith('| metric | target |')


def test_yaw_by_driver_motion_splits_pairs_by_the_drivers_yaw_snr():
    rows = [dict(r_yaw=0.9, snr_yaw=3.0), dict(r_yaw=0.1, snr_yaw=1.2), dict(r_yaw=0.7, snr_yaw=2.0),
            dict(r_yaw=0.3, snr_yaw=1.9)]
    by = yaw_by_driver_motion(rows)
    assert by['turning'] == (pytest.approx(0.8), 2) and by['still'] == (pytest.approx(0.2), 2)
    assert yaw_by_driver_motion(rows, min_snr=5)['turning'][1] == 0
    best = attainable_yaw(rows)                  # (SNR² − 1) / SNR² per pair: 8/9, 0.306, 0.75, 0.723
    assert best['turning'] == pytest.approx((8 / 9 + 0.75) / 2)
    assert best['still'] == pytest.approx((1 - 1 / 1.44 + 1 - 1 / 3.61) / 2)
    assert best['all'] == pytest.approx((best['turning'] + best['still']) / 2)
    assert attainable_yaw(rows + [dict(r_yaw=0.5, snr_yaw=float('nan'))]) == pytest.approx(best)  # too short


def test_validation_clips():
    assert [p.stem for p in validation_clips(DATA / "videos")] == sorted(HELD_OUT_CLIPS)


def test_benchmark(G, E, capsys):
    rows = benchmark_reenact(PORTRAIT, CLIP, G, E, max_frames=3, fps=5, warmup=False, refine_steps=2)
    assert [r['stage'] for r in rows] == [*STAGES, 'end to end without align and fit']
    per_frame = [r['seconds'] for r in rows[:-1] if r['stage'] not in ('align', 'fit')]
    assert rows[-1]['seconds'] == pytest.approx(sum(per_frame))
    unfitted = benchmark_reenact(PORTRAIT, CLIP, G, E, max_frames=2, fps=5, warmup=False, refine_steps=0)
    assert 'fit' not in [r['stage'] for r in unfitted]
    assert '| stage |' in capsys.readouterr().out


def test_refine_identity(G, E):
    frame = load_image(PORTRAIT)
    src = from_uint8(align_face(frame, face_landmarks(frame), 128).image[None])
    with torch.no_grad(): w, s_src = E.encode_identity(src), E.encode_deformation(src)
    loss = ReconstructionLoss()
    fitted = refine_identity(G, w, src, s_src, steps=15, loss=loss)
    with torch.no_grad():
        before, after = (float(loss(render_hybrid(G, v, s_src), src)) for v in (w, fitted))
    assert after < 0.8 * before and fitted.shape == w.shape and not fitted.requires_grad
    assert refine_identity(G, w, src, s_src, steps=0) is w
    for bad in (-1, 1.5, REFINE_LIMIT + 1, True):
        with pytest.raises(UsageError, match='--refine'): refine_identity(G, w, src, steps=bad)
    with pytest.raises(FloatingPointError, match='nan'):
        refine_identity(G, w, src, s_src, steps=2, loss=lambda images, target: images.sum() * float('nan'))
    trainable = Generator(**small_generator_kwargs())                          # weights that want grads
    w_small = trainable.mapping.w_avg[None, None].expand(1, trainable.num_ws, -1).clone()
    small_src = torch.zeros(1, 3, trainable.img_resolution, trainable.img_resolution)
    refine_identity(trainable, w_small, small_src, steps=2, loss=ReconstructionLoss())
    assert all(p.grad is None for p in trainable.parameters())                  # fitting W_ID leaves G alone
    with_id = refine_identity(G, w, src, s_src, steps=2, loss=loss, identity_weight=1.0)
    assert not torch.equal(with_id, refine_identity(G, w, src, s_src, steps=2, loss=loss))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')
def test_model_stages_run_on_the_generators_device(G, E):
    # encode, fit and render on the GPU; S_F comes back to the CPU for smoothing; the renders match the CPU's
    import copy
    Gc, Ec = copy.deepcopy(G).to('cuda'), copy.deepcopy(E).to('cuda')
    frame = load_image(PORTRAIT)
    crop = align_face(frame, face_landmarks(frame), 128).image
    s_f = encode_driving(Ec, crop[None].repeat(3, 0), batch_size=2)
    assert all(v.device.type == 'cpu' for v in s_f.values())
    src = from_uint8(crop[None])
    with torch.no_grad(): w, s_src = Ec.encode_identity(src.cuda()), Ec.encode_deformation(src.cuda())
    fitted = refine_identity(Gc, w, src, s_src, steps=3)
    assert fitted.device.type == 'cuda'
    on_gpu = render_frames(Gc, fitted, s_f).astype(int)
    on_cpu = render_frames(G, fitted.cpu(), s_f).astype(int)
    assert np.abs(on_gpu - on_cpu).mean() < 2
    res = reenact(CLIP, CLIP, G=Gc, encoder=Ec, max_frames=3, paste_back=False, progress=False,
                  refine_steps=2)
    assert res.crops.shape == (3, 128, 128, 3)
