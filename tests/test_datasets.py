"Face and frame-pair datasets: label parsing, small builds, reading back, split by clip, augmentation."
import os
import zipfile
from pathlib import Path
import numpy as np
import pytest
import torch
from PIL import Image
from hybridlat.realfaces.datasets import (
    FaceDataset,
    FramePairDataset,
    augment,
    build_clip_dataset,
    build_face_dataset,
    color_jitter,
    crop_coverage,
    hflip,
    list_faces,
    parse_utkface_name,
    soften_border,
)

DATA = Path(os.environ.get('HYBRIDLAT_DATA', Path(__file__).resolve().parents[2] / 'shared' / 'data'))
needs_data = pytest.mark.skipif(not (DATA / 'faces').is_dir() or not (DATA / 'videos').is_dir(),
                                reason=f'shared data not found at {DATA} (set HYBRIDLAT_DATA)')


def test_parse_utkface_name():
    assert parse_utkface_name('26_0_2_20170104023102422.jpg.chip.jpg') == dict(age=26, gender=0, race=2)
    assert parse_utkface_name('/some/dir/1_1_4_20161221193016140.jpg.chip.jpg') == dict(
        age=1, gender=1, race=4
    )
    for bad in [
        '61_1_20170109142408075.jpg.chip.jpg',
        '26_0_2_20170104023102422.jpg',
        'x_0_2_1.jpg.chip.jpg',
    ]:
        with pytest.raises(ValueError, match='not a UTKFace name'): parse_utkface_name(bad)
    for bad in [
        '26_2_0_1.jpg.chip.jpg',
        '26_0_5_1.jpg.chip.jpg',
        '0_0_0_1.jpg.chip.jpg',
        '130_0_0_1.jpg.chip.jpg',
    ]:
        with pytest.raises(ValueError, match='out of range'): parse_utkface_name(bad)


def test_list_faces_layouts(tmp_path):
    utk, plain = tmp_path / 'utk', tmp_path / 'plain'
    utk.mkdir()
    plain.mkdir()
    for n in ['20_0_1_2017.jpg.chip.jpg', '61_1_2017.jpg.chip.jpg']: (utk / n).write_bytes(b'')
    for n in ['000001.jpg', '000002.png', 'notes.txt']: (plain / n).write_bytes(b'')
    assert [(p.name, l) for p, l in list_faces(utk)][0] == (
        '20_0_1_2017.jpg.chip.jpg',
        dict(age=20, gender=0, race=1),
    )
    assert isinstance(list_faces(utk)[1][1], str)                                 # bad label → message
    assert [(p.name, l) for p, l in list_faces(plain)] == [('000001.jpg', {}), ('000002.png', {})]
    assert len(list_faces(plain, max_n=1)) == 1 and list_faces(plain, max_n=1) == list_faces(plain, max_n=1)
    with pytest.raises(FileNotFoundError): list_faces(tmp_path / 'missing')


def test_soften_border_only_touches_outside():
    crop = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    m = crop_coverage(np.eye(3), 64, (64, 64))
    assert m.all() and (soften_border(crop, m) == crop).all()                     # fully covered: unchanged
    # photo shifted right by 32
    half = crop_coverage(np.array([[1., 0, 32], [0, 1, 0], [0, 0, 1]]), 64, (64, 64))
    assert half[:, 40:].all() and not half[:, :30].any()
    out = soften_border(crop, half)
    assert (out[:, 60:] == crop[:, 60:]).all() and np.abs(out[:, :8].astype(int) - crop[:, :8]).mean() > 20


def test_augment():
    g = lambda: torch.Generator().manual_seed(1)
    x = torch.rand(6, 3, 16, 16) * 2 - 1
    assert torch.allclose(hflip(x, p=1.0), x.flip(-1), atol=1e-6)
    assert torch.allclose(color_jitter(x, 0, 0, 0), x, atol=1e-6)
    a, b = augment(x, x.clone(), generator=g())
    assert torch.equal(a, b) and torch.equal(augment(x, generator=g()), a)
    y = color_jitter(x, 0.5, 0.5, 0.5, generator=g())
    assert y.shape == x.shape and y.min() >= -1 and y.max() <= 1 and not torch.allclose(y, x)
    with pytest.raises(ValueError, match='expected'): augment(x, x[:2])


@needs_data
@pytest.mark.needs_dlib
def test_small_face_build_and_dataset(tmp_path):
    _ = (torch.rand(2000, 2000) + 1).sum()  # a parallel (OpenMP) op in the parent before forking workers
    out = tmp_path / 'faces.zip'
    rep = build_face_dataset(
        [DATA / 'faces/utkface', DATA / 'faces/celeba'], 64, out, max_per_source=12, progress=False
    )
    assert sorted(f.name for f in tmp_path.iterdir()) == ['faces.zip']  # written atomically, no temp left
    for src in ('utkface', 'celeba'):
        s = rep.sources[src]
        assert s['total'] == 12 and s['kept'] + sum(s['failures'].values()) == 12 and s['kept'] >= 9
    assert rep.size_bytes == out.stat().st_size
    ds = FaceDataset(out)
    assert len(ds) == rep.sources['utkface']['kept'] + rep.sources['celeba']['kept'] and ds.resolution == 64
    img, lab = ds[len(ds) - 1]
    assert img.shape == (3, 64, 64) and img.dtype == torch.float32 and -1 <= img.min() < img.max() <= 1
    for i in range(len(ds)):  # labels follow the file names
        l = ds.labels[i]
        if ds.sources[l['source']] == 'utkface':
            assert {k: l[k] for k in ('age', 'gender', 'race')} == parse_utkface_name(ds.names[i])
        else: assert (l['age'], l['gender'], l['race']) == (-1, -1, -1)
    images, labels = next(iter(torch.utils.data.DataLoader(ds, batch_size=8, shuffle=True, num_workers=2)))
    assert images.shape == (8, 3, 64, 64) and labels['age'].shape == (8,)


@needs_data
@pytest.mark.needs_dlib
def test_face_build_failures(tmp_path):
    folder = tmp_path / 'mixed'
    folder.mkdir()
    (folder / '30_0_0_1.jpg.chip.jpg').write_bytes(b'not a jpeg')                # unreadable
    (folder / '61_1_20170109142408075.jpg.chip.jpg').symlink_to(
        DATA / 'faces/utkface/61_1_20170109142408075.jpg.chip.jpg'
    )
    # a real face
    (folder / '40_0_0_2.jpg.chip.jpg').write_bytes((DATA / 'faces/celeba/000001.jpg').read_bytes())
    np.save(tmp_path / 'blank.npy', 0)
    Image.fromarray(np.full((120, 120, 3), 128, np.uint8)).save(folder / '50_1_1_3.jpg.chip.jpg')   # no face
    rep = build_face_dataset({'mixed': folder}, 32, tmp_path / 'mixed.zip', workers=1, progress=False)
    assert rep.sources['mixed']['failures'] == {'unreadable': 1, 'bad label': 1, 'no face': 1}
    assert rep.sources['mixed']['kept'] == 1
    with zipfile.ZipFile(tmp_path / 'mixed.zip') as zf:
        assert sorted(zf.namelist()) == ['images/000000.jpg', 'labels.csv', 'report.json']
    empty = tmp_path / 'empty'
    empty.mkdir()
    (empty / 'a.jpg').write_bytes(b'junk')
    with pytest.raises(ValueError, match='no face could be aligned'):
        build_face_dataset([empty], 32, tmp_path / 'none.zip', workers=1, progress=False)
    assert not (tmp_path / 'none.zip').exists() and not [
        f for f in tmp_path.iterdir() if f.name.startswith('.none')
    ]
    with pytest.raises(ValueError, match='not a dataset zip'): FaceDataset(tmp_path / 'blank.npy')


@needs_data
@pytest.mark.needs_dlib
def test_clip_build_and_pairs_split_by_clip(tmp_path):
    bad = tmp_path / 'broken.mp4'
    bad.write_text('not a video')
    names = ['dpe_s.mp4', 'lia_vox_driving2.mp4', 'liveportrait_d18.mp4', 'liveportrait_d20.mp4']
    rep = build_clip_dataset([DATA / 'videos' / n for n in names] + [bad], 64, tmp_path / 'clips.zip',
                             fps=4, max_frames=5, progress=False)
    assert [rep.sources[Path(n).stem]['kept'] for n in names] == [5] * 4
    assert 'unreadable' in next(iter(rep.sources['broken']['failures']))
    train, val = (FramePairDataset(tmp_path / 'clips.zip', s, val_clips=1, seed=3) for s in ('train', 'val'))
    assert len(train) == 15 and len(val) == 5 and len(val.clips) == 1
    assert not set(train.clips) & set(val.clips) and set(train.clips) | set(val.clips) == {
        Path(n).stem for n in names
    }
    for ds in (train, val):
        for i in range(len(ds)):
            clip, s, d = ds.pair(i)
            assert clip in ds.clips and s != d and (clip, d) == ds.index[i]
    assert [val.pair(i) for i in range(5)] == [val.pair(i) for i in range(5)]   # fixed validation pairs
    src, drv = train[0]
    assert src.shape == drv.shape == (3, 64, 64)
    assert FramePairDataset(tmp_path / 'clips.zip', 'val', val_clips=['dpe_s', 'liveportrait_d20']).clips == [
        'dpe_s',
        'liveportrait_d20',
    ]
    with pytest.raises(ValueError, match='unknown validation clips'):
        FramePairDataset(tmp_path / 'clips.zip', val_clips=['x'])
    with pytest.raises(ValueError, match='val_clips=4'): FramePairDataset(tmp_path / 'clips.zip', val_clips=4)
    with pytest.raises(ValueError, match="'train' or 'val'"): FramePairDataset(tmp_path / 'clips.zip', 'test')


def test_split_clips_holds_out_named_clips_and_people(tmp_path):
    from hybridlat.realfaces.datasets import HELD_OUT_CLIPS, HELD_OUT_PEOPLE, split_clips
    names = [
        'a.mp4',
        f'{HELD_OUT_CLIPS[0]}.mp4',
        f'{HELD_OUT_CLIPS[2]}.mov',
        f'{HELD_OUT_PEOPLE[0]}other.mp4',
        'b.mkv',
    ]
    train, held = split_clips(tmp_path / n for n in names)
    assert [p.name for p in train] == ['a.mp4', 'b.mkv']
    assert sorted(p.stem for p in held) == sorted([HELD_OUT_CLIPS[0], HELD_OUT_CLIPS[2]])
