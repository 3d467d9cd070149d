"""The `hybridlat` console script, as a newcomer runs it."""
import json
import subprocess
import sys

import pytest


def run_cli(*args, cwd):
    return subprocess.run(
        [sys.executable, '-c', 'import sys; from hybridlat.cli import main; sys.exit(main())', *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


BLOCK_DLIB = (  # the first README command installs without the `faces` extra: the demo must not import dlib
    "import sys\n"
    "class Block:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] in ('dlib', 'face_recognition_models'):\n"
    "            raise ImportError('blocked ' + name)\n"
    "sys.meta_path.insert(0, Block())\n"
    "from hybridlat.cli import main; sys.exit(main())"
)


def test_demo_as_a_newcomer_runs_it(tmp_path):
    """One `hybridlat demo` (dlib unimportable, as after the first README command) checked for everything it
    writes, then the same seed with `--true-latents`: a demo takes ~20 s, so the checks share two runs."""
    from hybridlat.realfaces.video import read_video
    out = tmp_path / 'out'
    res = subprocess.run([sys.executable, '-c', BLOCK_DLIB, 'demo', '--out', str(out), '--seed', '4'],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    # pictures, video and report
    assert sorted(p.name for p in out.iterdir()) == [
        'README.txt',
        'demo.json',
        'reenactment.mp4',
        'reenactment.png',
        'samples.png',
        'style_mixing.png',
        'stylespace_channels.png',
    ]
    info = json.loads((out / 'demo.json').read_text())
    assert info['seeds'][0] == 4 and info['resolution'] == 128
    assert info['generator'].startswith('embedded faces128 generator')  # the shipped weights, not random ones
    assert info['reenactment']['latents'].startswith('encoded by the shipped faces128 encoder')
    assert all(f'wrote {out}' in line for line in res.stdout.strip().splitlines())
    # the video: the source panel is a still, the driving panel moves
    clip = read_video(out / 'reenactment.mp4')
    assert len(clip) == 48 and clip.size == (3 * 128, 128)
    left, middle = clip.frames[:, :, :128].astype(float), clip.frames[:, :, 128:256].astype(float)
    assert abs(left[0] - left[-1]).mean() < 2
    assert abs(middle[0] - middle[24]).mean() > 0.5
    # the right panel is the encoder's, not the true latents'
    res = run_cli('demo', '--out', str(tmp_path / 'true'), '--seed', '4', '--true-latents', cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    enc, true = (
        read_video(d / 'reenactment.mp4').frames[:, :, 256:].astype(float) for d in (out, tmp_path / 'true')
    )
    assert abs(enc - true).mean() > 1.0
    info = json.loads((tmp_path / 'true' / 'demo.json').read_text())
    assert info['reenactment']['latents'].startswith('true latents')


def test_demo_with_missing_checkpoint_fails_clearly(tmp_path):
    res = run_cli(
        'demo', '--out', str(tmp_path / 'out'), '--checkpoint', str(tmp_path / 'nope.pkl'), cwd=tmp_path
    )
    assert res.returncode != 0
    assert 'nope.pkl' in res.stderr
    assert not (tmp_path / 'out').exists() or not any((tmp_path / 'out').iterdir())


def test_unknown_command_is_a_usage_error(tmp_path):
    res = run_cli('explode', cwd=tmp_path)
    assert res.returncode == 2 and 'invalid choice' in res.stderr


def test_console_script_is_installed():
    import importlib.metadata as md
    eps = [e for e in md.entry_points(group='console_scripts') if e.name == 'hybridlat']
    assert eps and eps[0].value == 'hybridlat.cli:main'


def test_demo_renders_from_a_checkpoint(tmp_path):
    import torch
    from hybridlat.stylegan2.checkpoints import save_generator
    from hybridlat.stylegan2.generator import Generator, small_generator_kwargs
    torch.manual_seed(7)
    save_generator(Generator(**small_generator_kwargs(32)), tmp_path / 'g32.pt')
    res = run_cli(
        'demo', '--out', str(tmp_path / 'out'), '--checkpoint', str(tmp_path / 'g32.pt'), cwd=tmp_path
    )
    assert res.returncode == 0, res.stderr
    info = json.loads((tmp_path / 'out' / 'demo.json').read_text())
    assert info['resolution'] == 32 and info['generator'] == 'checkpoint g32.pt'


def test_pick_channels_renders_in_batches_what_single_edits_give():
    import torch
    from hybridlat.cli import pick_channels, style_std
    from hybridlat.stylegan2.generator import Generator, small_generator_kwargs
    from hybridlat.stylegan2.stylespace import StyleLayout, layer_groups, synthesis_from_s, w_plus_to_s
    torch.manual_seed(7)
    G = Generator(**small_generator_kwargs(32)).requires_grad_(False)
    s, std = w_plus_to_s(G, G.sample_ws([0])), style_std(G, 64)
    base = synthesis_from_s(G, s)
    moved = {}                                            # the reference: one `edit_channel` at a time
    for layer in layer_groups(StyleLayout.from_generator(G))['deformation']:
        edits = [(float((synthesis_from_s(G, s.edit_channel(layer, c, 5 * std[layer][0, c].item())) - base)
                        .abs().mean()), c) for c in range(0, 256, 32)]
        moved[layer] = max(edits)
    strongest = sorted(moved, key=lambda layer: moved[layer][0], reverse=True)[:3]
    expected = [(layer, moved[layer][1]) for layer in moved if layer in strongest]
    assert pick_channels(G, candidates=8, batch=5) == expected              # 8 channels a layer: 5, then 3


def test_demo_rejects_a_non_checkpoint(tmp_path):
    (tmp_path / 'notes.pkl').write_text('not a checkpoint')
    res = run_cli(
        'demo', '--out', str(tmp_path / 'out'), '--checkpoint', str(tmp_path / 'notes.pkl'), cwd=tmp_path
    )
    assert res.returncode == 1 and 'hybridlat demo:' in res.stderr and 'Traceback' not in res.stderr


def test_demo_encodes_frames_when_given_an_encoder(tmp_path):
    from hybridlat.reenactment.encoder import encoder_for, save_encoder
    from hybridlat.training.pretrained import load_pretrained
    save_encoder(encoder_for(load_pretrained('faces128')), tmp_path / 'enc.pt')
    res = run_cli('demo', '--out', str(tmp_path / 'out'), '--encoder', str(tmp_path / 'enc.pt'), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    info = json.loads((tmp_path / 'out' / 'demo.json').read_text())
    assert info['reenactment']['latents'] == f'encoded by {tmp_path / "enc.pt"}'
