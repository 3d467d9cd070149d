"Video I/O: write/read round trip, audio, atomic writes, clear errors for bad input."
import os
from pathlib import Path
import av
import numpy as np
import pytest
import torch
from hybridlat.realfaces.video import (VideoClip, VideoReadError, probe_video, read_audio, read_video,
    write_video)

DATA = Path(os.environ.get('HYBRIDLAT_DATA', Path(__file__).resolve().parents[2] / 'shared' / 'data'))
needs_data = pytest.mark.skipif(
    not (DATA / 'videos').is_dir(), reason=f'shared data not found at {DATA} (set HYBRIDLAT_DATA)'
)


def moving_frames(t=24, h=64, w=80):
    "A smooth synthetic clip: a bright square sliding over a gradient, [T, H, W, 3] uint8."
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / w, yy * 255 / h, np.full((h, w), 96.0)], -1)
    frames = np.repeat(base[None], t, 0)
    for i in range(t): frames[i, 16:40, 2 * i:2 * i + 20] = 230
    return frames.round().astype(np.uint8)


def psnr(a, b):
    return 10 * np.log10(255 ** 2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def test_round_trip(tmp_path):
    frames = moving_frames()
    p = write_video(tmp_path / 'clip.mp4', frames, fps=12, progress=False)
    clip = read_video(p)
    assert isinstance(clip, VideoClip)
    assert clip.frames.shape == frames.shape and clip.frames.dtype == np.uint8
    assert clip.fps == 12
    np.testing.assert_allclose(clip.timestamps, np.arange(24) / 12, atol=1e-6)
    assert psnr(clip.frames, frames) > 35
    info = probe_video(p)
    assert (info['codec'], info['width'], info['height'], info['frames']) == ('h264', 80, 64, 24)
    assert info['audio'] is None
    assert sorted(f.name for f in tmp_path.iterdir()) == ['clip.mp4']       # no temp file left


def test_fractional_fps_tensor_input_and_odd_size(tmp_path):
    x = torch.from_numpy(moving_frames(10, 33, 47)).permute(0, 3, 1, 2).float() / 127.5 - 1   # [T, 3, H, W]
    p = write_video(tmp_path / 'ntsc.mp4', x, fps=30000 / 1001, progress=False)
    clip = read_video(p)
    assert clip.frames.shape == (10, 34, 48, 3)                                # padded to even
    assert abs(clip.fps - 29.97) < 0.01


def test_resample_and_max_frames(tmp_path):
    p = write_video(tmp_path / 'c30.mp4', moving_frames(30), fps=30, progress=False)
    clip = read_video(p, fps=10)
    assert len(clip) == 10 and clip.fps == 10
    ref = read_video(p)
    assert np.array_equal(clip.frames, ref.frames[::3])  # every third frame, chosen by time
    assert len(read_video(p, max_frames=7)) == 7
    assert len(read_video(p, fps=15, max_frames=4)) == 4
    for bad in (0, -5, float('inf'), float('nan')):
        with pytest.raises(ValueError, match='fps must be a positive finite number'): read_video(p, fps=bad)
    for bad in (0, -3):                                                        # never a silent one-frame clip
        with pytest.raises(ValueError, match='max_frames must be at least 1'): read_video(p, max_frames=bad)


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    def frames():
        yield from moving_frames(5)
        yield np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match='frame size changed'):
        write_video(tmp_path / 'bad.mp4', frames(), fps=10, progress=False)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match='uint8'):
        write_video(tmp_path / 'bad.mp4', moving_frames(3).astype(np.float32), fps=10, progress=False)
    with pytest.raises(ValueError, match='no frames'):
        write_video(tmp_path / 'bad.mp4', [], fps=10, progress=False)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / 'keep.mp4').write_bytes(b'old')  # failure keeps an existing file intact
    with pytest.raises(ValueError): write_video(tmp_path / 'keep.mp4', frames(), fps=10, progress=False)
    assert (tmp_path / 'keep.mp4').read_bytes() == b'old'
    with pytest.raises(ValueError, match='writes'): write_video(tmp_path / 'x.avi', moving_frames(3), fps=10)


def test_corrupt_input_gives_one_clear_error(tmp_path):
    good = write_video(
        tmp_path / 'good.mp4', moving_frames(40, 128, 160), fps=10, preset='ultrafast', progress=False
    )
    raw = good.read_bytes()
    cases = {'missing.mp4': None, 'text.mp4': b'this is not a video', 'empty.mp4': b'',
             'truncated.mp4': raw[:len(raw) // 2], 'stub.mp4': raw[:100]}
    for name, content in cases.items():
        if content is not None: (tmp_path / name).write_bytes(content)
        with pytest.raises(VideoReadError, match=name) as e: read_video(tmp_path / name)
        assert isinstance(e.value, ValueError)
    with pytest.raises(VideoReadError, match='file not found'): read_video(tmp_path / 'missing.mp4')
    with pytest.raises(VideoReadError, match='not a readable video'): read_video(tmp_path / 'text.mp4')
    with pytest.raises(VideoReadError, match='folder'): read_video(tmp_path)


def test_audio_only_file_is_not_a_video(tmp_path):
    p = tmp_path / 'tone.m4a'
    with av.open(str(p), 'w', format='mp4') as out:
        s = out.add_stream('aac', rate=16000, layout='mono')
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 16000), np.float32), format='fltp', layout='mono')
        frame.sample_rate = 16000
        out.mux(s.encode(frame))
        out.mux(s.encode(None))
    with pytest.raises(VideoReadError, match='no video stream'): read_video(p)


@needs_data
@pytest.mark.parametrize('name',
                         ['lia_vox_driving3.mov', 'sadtalker_WDA_KatieHill_000.mp4', 'liveportrait_d18.mp4'])
def test_real_clips_with_audio(tmp_path, name):
    src = read_video(DATA / 'videos' / name, max_frames=30, audio=True)
    assert len(src) == 30 and src.audio is not None
    assert abs(src.audio.shape[1] / src.sample_rate - src.duration) < 1e-3
    for codec in ('copy', 'aac'):
        p = write_video(tmp_path / f'{codec}.mp4', src.frames, src.fps, audio_from=src, audio_codec=codec,
                        preset='veryfast', progress=False)
        back = read_video(p, audio=True)
        assert back.frames.shape == src.frames.shape and back.fps == src.fps
        assert psnr(back.frames, src.frames) > 33
        # audio cut to the video (± AAC frames)
        assert abs(back.audio.shape[1] / back.sample_rate - src.duration) < 0.1
    silent = write_video(tmp_path / 'silent.mp4', src.frames[:5], src.fps, preset='veryfast', progress=False)
    assert read_audio(silent) == (None, None)


@needs_data
def test_probe_all_real_clips():
    infos = [probe_video(p) for p in sorted((DATA / 'videos').iterdir()) if p.is_file()]   # the folder grows
    assert len(infos) >= 16
    assert {'h264', 'mpeg4'} <= {i['codec'] for i in infos}
    assert all(i['frames'] > 0 and i['duration'] > 0 and 5 <= i['fps'] <= 60 for i in infos)
