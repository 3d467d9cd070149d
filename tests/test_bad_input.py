"""Bad input through the real command line: one clear line, the right exit status, nothing half-written,
inputs intact.

Each case runs `hybridlat` in a fresh process, as a user would, in a folder holding copies of the inputs.
After it: the exit status is the expected one (2: usage, 1: bad data, 130/143: interrupted), stderr is one
line naming the problem (no traceback), the folder holds no new file (no output, no hidden temp file), and the
inputs are unchanged."""
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

DATA = Path(os.environ.get('HYBRIDLAT_DATA', Path(__file__).resolve().parents[2] / 'shared' / 'data'))
pytestmark = [pytest.mark.skipif(not (DATA / 'videos').is_dir(),
                                 reason=f'shared data not found at {DATA} (set HYBRIDLAT_DATA)'),
              pytest.mark.needs_dlib]
from hybridlat.stylegan2.checkpoints import save_generator
from hybridlat.reenactment.encoder import save_encoder
from hybridlat.training.pretrained import load_pretrained
from hybridlat.reenactment.pretrained_encoder import load_pretrained_encoder
from hybridlat.realfaces.video import read_video, write_video

PORTRAIT, CLIP = DATA / 'portraits' / 'lia_vox_taylor.png', DATA / 'videos' / 'lia_vox_driving2.mp4'
FAST = ['--fps', '5', '--max-frames', '3']


def run_cli(*args, cwd):
    code = 'import sys; from hybridlat.cli import main; sys.exit(main())'
    return subprocess.run(
        [sys.executable, '-c', code, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def digest(folder):
    "{name: sha256} of every file in `folder`, hidden ones included."
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(Path(folder).iterdir())
        if p.is_file()
    }


@pytest.fixture(scope='module')
def inputs(tmp_path_factory):
    """A folder with copies of a portrait and a clip, a faceless picture, a broken video and NaN-poisoned
    weights."""
    d = tmp_path_factory.mktemp('inputs')
    shutil.copy(PORTRAIT, d / 'portrait.png')
    shutil.copy(CLIP, d / 'driving.mp4')
    Image.fromarray(np.full((160, 160, 3), 128, np.uint8)).save(d / 'blank.png')
    (d / 'broken.mp4').write_bytes(b'not a video at all')
    (d / 'notes.txt').write_text('a file, not a folder')
    G = load_pretrained('faces128')
    E = load_pretrained_encoder('faces128', G)
    with torch.no_grad():
        G.synthesis.b16.conv1.weight[0, 0, 1, 1] = float('nan')
        E.state_dict()[next(iter(E.state_dict()))].view(-1)[0] = float('nan')
    save_generator(G, d / 'nan_G.pt')
    save_encoder(E, d / 'nan_E.pt')
    return d


def reenact_args(d, **changes):
    "The arguments of a good `reenact` run in folder `d`, with some replaced (value None drops the option)."
    args = {'source': d / 'portrait.png', 'driving': d / 'driving.mp4', '-o': d / 'out.mp4'}
    args.update(changes)
    out = [args.pop('source'), args.pop('driving')]
    for k, v in args.items():
        if v is None: continue
        out += [k, *v] if isinstance(v, (list, tuple)) else [k, v]
    return ['reenact', *out]


CASES = {  # name: (argument changes, exit status, fragment of the one-line message)
    'fps inf': (dict(**{'--fps': 'inf'}), 2, '--fps must be'),
    'fps nan': (dict(**{'--fps': 'nan'}), 2, '--fps must be'),
    'fps negative': (dict(**{'--fps': '-5'}), 2, '--fps must be'),
    'max-frames 0': (dict(**{'--max-frames': '0'}), 2, '--max-frames must be at least 1'),
    'max-frames -3': (dict(**{'--max-frames': '-3'}), 2, '--max-frames must be at least 1'),
    'refine negative': (dict(**{'--refine': '-1'}), 2, '--refine must be a whole number'),
    'refine too many': (dict(**{'--refine': '100000'}), 2, '--refine must be a whole number'),
    'motion-scale negative': (dict(**{'--motion-scale': '-1'}), 2, '--motion-scale must be'),
    'motion-scale nan': (dict(**{'--motion-scale': 'nan'}), 2, '--motion-scale must be'),
    'smooth negative': (dict(**{'--smooth': '-0.1'}), 2, '--smooth must be'),
    'smooth inf': (dict(**{'--smooth': 'inf'}), 2, '--smooth must be'),
    'output is the driving clip': (dict(**{'-o': 'driving.mp4'}), 2, 'is also an input'),
    'output is not a video': (dict(**{'-o': 'out.gif'}), 2, 'must end in'),
    'output under a file': (dict(**{'-o': 'notes.txt/out.mp4'}), 2, 'cannot write in'),
    'output is a folder': (dict(**{'-o': 'sub.mp4'}), 2, 'is a folder'),
    'edit too large': (dict(**{'--edit': 'age=+1e9'}), 2, 'out of range'),
    'edit nan': (dict(**{'--edit': 'age=nan'}), 2, 'out of range'),
    'edit unknown': (dict(**{'--edit': 'hair=1'}), 2, "unknown edit 'hair'"),
    'edit malformed': (dict(**{'--edit': 'age'}), 2, 'NAME=AMOUNT'),
    'grid not a picture': (dict(**{'--grid': 'grid.gif'}), 2, 'must end in'),
    'grid is the source': (dict(**{'--grid': 'portrait.png'}), 2, 'is also an input'),
    'source missing': (dict(source='nobody.png'), 1, 'source not found'),
    'driving missing': (dict(driving='nothing.mp4'), 1, 'driving video not found'),
    'source has no face': (dict(source='blank.png'), 1, 'no face found in the source'),
    'driving is not a video': (dict(driving='broken.mp4'), 1, 'cannot read video'),
    'generator with NaN': (dict(**{'--checkpoint': 'nan_G.pt'}), 1, 'NaN or infinite'),
    'encoder with NaN': (dict(**{'--encoder': 'nan_E.pt'}), 1, 'NaN or infinite'),
    'checkpoint missing': (dict(**{'--checkpoint': 'nope.pt'}), 1, '--checkpoint not found'),
}


@pytest.mark.parametrize('name', list(CASES))
def test_reenact_bad_input(inputs, name):
    changes, status, fragment = CASES[name]
    (inputs / 'sub.mp4').mkdir(exist_ok=True)
    before = digest(inputs)
    literal = ('--edit', '--fps', '--max-frames', '--refine', '--motion-scale', '--smooth')
    resolved = {k: (v if v is None or k in literal else inputs / v)
                for k, v in changes.items()}
    res = run_cli(*reenact_args(inputs, **{'--fps': '5', '--max-frames': '3', **resolved}), cwd=inputs)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == status, res.stderr
    assert len(lines) == 1 and fragment in lines[0] and 'Traceback' not in res.stderr, res.stderr
    assert digest(inputs) == before                                       # nothing new, nothing changed
    assert not list((inputs / 'sub.mp4').iterdir())


@pytest.mark.parametrize('args, status, fragment', [
    (['-o', 'notes.txt'], 2, 'is a file'),
    (['--checkpoint', 'nan_G.pt'], 1, 'NaN or infinite'),
    (['--checkpoint', 'nope.pt'], 1, 'not found'),
    (['--encoder', 'nan_E.pt'], 1, 'NaN or infinite'),
])
def test_demo_bad_input(inputs, args, status, fragment):
    before = digest(inputs)
    res = run_cli('demo', *args, cwd=inputs)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == status, res.stderr
    assert len(lines) == 1 and fragment in lines[0] and 'Traceback' not in res.stderr, res.stderr
    assert digest(inputs) == before and not (inputs / 'demo_out').exists()


def test_frames_without_a_face_are_held_and_counted(inputs, tmp_path):
    frames = read_video(CLIP, fps=5, max_frames=12).frames.copy()
    frames[4:9] = 128                                                     # the face is gone for 5 frames
    write_video(tmp_path / 'gaps.mp4', frames, 5, progress=False)
    res = run_cli(
        *reenact_args(inputs, driving=tmp_path / 'gaps.mp4', **{'-o': tmp_path / 'out.mp4', '--refine': '0'}),
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    assert '5 of 12 driving frames had no face: held the previous expression' in res.stdout
    assert len(read_video(tmp_path / 'out.mp4').frames) == 12


@pytest.mark.parametrize('sig, status, word',
                         [(signal.SIGTERM, 143, 'terminated'), (signal.SIGINT, 130, 'interrupted')])
def test_interrupt_during_the_write_leaves_nothing(inputs, tmp_path, sig, status, word):
    (tmp_path / 'out.mp4').write_bytes(b'the previous output')               # must survive the interrupt
    # Ctrl-C as in a terminal: a child of a non-interactive shell's background job starts with SIGINT ignored
    code = ('import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); '
            'from hybridlat.cli import main; sys.exit(main())')
    # 200 frames: the write lasts seconds, so the signal lands while it runs (60 frames took under a second)
    # --refine 0: the fit of W_ID (seconds) is not what is tested
    args = reenact_args(inputs, **{'-o': tmp_path / 'out.mp4', '--fps': '25', '--max-frames': '200',
                                   '--refine': '0'})
    proc = subprocess.Popen([sys.executable, '-c', code, *map(str, args)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:  # wait for the temp file of the write
        if any(p.name.startswith('.out.mp4.') for p in tmp_path.iterdir()): break
        time.sleep(0.05)
    assert proc.poll() is None, 'finished before it could be interrupted'
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == status, err
    # progress bars, then one line
    assert word in err.strip().splitlines()[-1] and 'Traceback' not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ['out.mp4']          # no hidden temp file left
    assert (tmp_path / 'out.mp4').read_bytes() == b'the previous output'


def test_write_errors_name_the_users_path_not_the_temp_file(tmp_path):
    from hybridlat.images import atomic_path
    with pytest.raises(OSError) as e:
        with atomic_path(tmp_path / 'out.mp4') as tmp: raise OSError(28, 'No space left on device', str(tmp))
    assert str(tmp_path / 'out.mp4') in str(e.value) and '.out.mp4.' not in str(e.value)
    assert list(tmp_path.iterdir()) == []
