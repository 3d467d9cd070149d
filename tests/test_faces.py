"""Tests of hybridlat.realfaces.faces on real portraits/clips from ../shared/data and on hand-built landmark
arrays."""
import sys
import warnings
import numpy as np
import pytest
from PIL import Image

from hybridlat.realfaces import faces
from hybridlat.realfaces.faces import (
    ImageReadError,
    NoFaceError,
    align_face,
    align_frames,
    brow_raise,
    detect_faces,
    eye_openness,
    face_landmarks,
    find_data_dir,
    head_pose,
    interocular_distance,
    load_image,
    mouth_opening,
    paste_back,
    paste_weight,
    smooth_landmarks,
    euler_to_matrix,
    project_points,
    transform_points,
)
from hybridlat.realfaces.identity import chip_descriptors, face_chip, face_descriptors


@pytest.fixture(scope='module')
def data():
    try: return find_data_dir()
    except FileNotFoundError as e: pytest.skip(f"real data absent ({e})")


@pytest.fixture(scope='module')
def portrait(data):
    img = load_image(data / 'portraits/sadtalker_happy.png')
    return img, face_landmarks(img)


def toy_face(mouth_gap=0.0, eye_h=6.0, brow_lift=0.0, angle=0.0, scale=1.0, shift=(200, 200)):
    "Hand-placed 68 landmarks of a frontal face; only the points the measures use are meaningful."
    p = np.zeros((68, 2))
    p[17:22] = np.c_[np.linspace(-50, -15, 5), np.full(5, -45 - brow_lift)]
    p[22:27] = np.c_[np.linspace(15, 50, 5), np.full(5, -45 - brow_lift)]
    for o, cx in ((36, -30), (42, 30)):
        p[o:o + 6] = [[cx - 15, -20], [cx - 5, -20 - eye_h], [cx + 5, -20 - eye_h], [cx + 15, -20],
                      [cx + 5, -20 + eye_h], [cx - 5, -20 + eye_h]]
    p[48], p[54] = [-25, 35], [25, 35]
    p[60:65] = np.c_[
        np.linspace(-20, 20, 5), [35, 35 - mouth_gap / 2, 35 - mouth_gap / 2, 35 - mouth_gap / 2, 35]
    ]
    p[65:68] = np.c_[[10, 0, -10], np.full(3, 35 + mouth_gap / 2)]
    c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    return (p @ np.array([[c, s], [-s, c]])) * scale + shift


# ---------------------------------------------------------------- errors

def test_unreadable_and_missing_files(tmp_path):
    bad = tmp_path / 'broken.png'
    bad.write_bytes(b'\x89PNG but not really')
    with pytest.raises(ImageReadError, match='cannot read image'): load_image(bad)
    assert issubclass(ImageReadError, ValueError)
    with pytest.raises(FileNotFoundError, match='no image file'): load_image(tmp_path / 'nothing.jpg')


@pytest.mark.needs_dlib
def test_no_face_on_blank_image():
    blank = np.full((240, 240, 3), 127, np.uint8)
    assert detect_faces(blank) == []
    with pytest.raises(NoFaceError, match='no face found'): face_landmarks(blank)
    with pytest.raises(NoFaceError): face_descriptors([blank])
    assert np.isnan(face_descriptors([blank], missing='nan')).all()


def test_bad_inputs():
    with pytest.raises(ValueError, match='uint8'): detect_faces(np.zeros((50, 50, 3), np.float32))
    with pytest.raises(ValueError, match="'hog' or 'cnn'"):
        detect_faces(np.zeros((50, 50, 3), np.uint8), model='mtcnn')
    with pytest.raises(ValueError, match='68 landmarks'): mouth_opening(np.zeros((5, 2)))


def test_missing_dlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, 'dlib', None)           # makes `import dlib` fail
    with pytest.raises(ImportError, match=r"pip install .*\[faces\]"): faces.import_dlib()


def test_find_data_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv('HYBRIDLAT_DATA', str(tmp_path))
    assert find_data_dir() == tmp_path.resolve()
    monkeypatch.setenv('HYBRIDLAT_DATA', str(tmp_path / 'nope'))
    with pytest.raises(FileNotFoundError, match='HYBRIDLAT_DATA'): find_data_dir()


# ---------------------------------------------------------------- detection, alignment, paste back

@pytest.mark.needs_dlib
def test_landmarks_on_real_face(portrait):
    img, lms = portrait
    assert lms.shape == (68, 2) and lms.dtype == np.float32
    x0, y0, x1, y1 = detect_faces(img)[0]
    assert (lms[:, 0] > x0 - 20).all() and (lms[:, 0] < x1 + 20).all() and (lms[:, 1] < y1 + 20).all()
    assert lms[36:42, 0].mean() < lms[42:48, 0].mean()       # image-left eye is 36-41


@pytest.mark.needs_dlib
def test_several_faces_warns_and_takes_largest(portrait):
    img, lms = portrait
    small = np.asarray(Image.fromarray(img).resize((128, 128)))
    two = np.concatenate([img, np.pad(small, ((64, 64), (0, 0), (0, 0)))], 1)
    with pytest.warns(UserWarning, match='using the largest'): got = face_landmarks(two)
    assert np.abs(got - lms).max() <= 3


@pytest.mark.needs_dlib
def test_align_geometry(portrait):
    img, lms = portrait
    a = align_face(img, lms, size=256)
    assert a.image.shape == (256, 256, 3) and a.image.dtype == np.uint8 and a.matrix.shape == (3, 3)
    corners = transform_points(a.matrix, a.quad)
    np.testing.assert_allclose(corners, [[-.5, -.5], [-.5, 255.5], [255.5, 255.5], [255.5, -.5]], atol=1e-3)
    np.testing.assert_allclose(a.landmarks, transform_points(a.matrix, lms), atol=1e-3)
    eyes = a.landmarks[36:48].reshape(2, 6, 2).mean(1)
    assert abs(eyes[0, 1] - eyes[1, 1]) < 3 and eyes[0, 0] < 128 < eyes[1, 0]


@pytest.mark.needs_dlib
def test_round_trip_reproduces_original_inside_mask(portrait):
    img, lms = portrait
    a = align_face(img, lms, size=512)
    back = paste_back(img, a.image, a)
    w = paste_weight(img.shape[:2], a)
    inside = w > 0.99
    assert inside.sum() > 20000
    err = np.abs(back.astype(float) - img)[inside]
    assert err.mean() < 2.5 and np.percentile(err, 99) < 12
    assert (back[w == 0] == img[w == 0]).all()              # outside the mask nothing changes


@pytest.mark.needs_dlib
def test_paste_back_edit_lands_inside_mask(portrait):
    img, lms = portrait
    a = align_face(img, lms, size=128)
    red = np.clip(a.image.astype(int) + [80, 0, 0], 0, 255).astype(np.uint8)
    out = paste_back(img, red, a, feather=0.2)
    w = paste_weight(img.shape[:2], a, feather=0.2)
    gain = (out.astype(float) - img)[..., 0]
    assert gain[w > 0.99].mean() > 40 and (out[w == 0] == img[w == 0]).all()
    big = np.asarray(Image.fromarray(red).resize((256, 256)))
    out2 = paste_back(img, big, a, feather=0.2)              # a crop of another size maps to the same place
    assert np.abs(out2.astype(float) - out)[w > 0.99].mean() < 6


# ---------------------------------------------------------------- measures

def test_measures_respond():
    assert mouth_opening(toy_face()) == pytest.approx(0)
    assert mouth_opening(toy_face(mouth_gap=20)) == pytest.approx(20 / 40)
    assert mouth_opening(toy_face(mouth_gap=20)) > mouth_opening(toy_face(mouth_gap=5))
    left, right = eye_openness(toy_face())
    assert left == pytest.approx(0.4) and right == pytest.approx(0.4)
    assert eye_openness(toy_face(eye_h=1))[0] < 0.1 < left
    assert brow_raise(toy_face(brow_lift=10)) > brow_raise(toy_face()) == pytest.approx(25 / 90)
    assert interocular_distance(toy_face()) == pytest.approx(90)


def test_measures_invariant_to_rotation_and_scale():
    f0, f1 = (
        toy_face(mouth_gap=12, brow_lift=4),
        toy_face(mouth_gap=12, brow_lift=4, angle=30, scale=1.7, shift=(50, 90)),
    )
    for m in (mouth_opening, brow_raise):
        assert m(f1) == pytest.approx(m(f0))
    assert eye_openness(f1)[1] == pytest.approx(eye_openness(f0)[1])
    assert interocular_distance(f1) == pytest.approx(1.7 * interocular_distance(f0))


def test_head_pose_recovers_known_poses():
    for pose in [(0, 0, 0), (25, 0, 0), (0, -15, 0), (0, 0, 20), (-20, 10, -5)]:
        fake = np.zeros((68, 2))
        fake[faces._FACE3D_IDX] = project_points(
            faces._FACE3D,
            euler_to_matrix(*pose),
            np.array([10.0, 5.0, 1200.0]),
            640.0,
            np.array([319.5, 239.5]),
        )
        np.testing.assert_allclose(head_pose(fake, (480, 640)), pose, atol=1e-3)


@pytest.mark.needs_dlib
def test_head_pose_signs_on_real_face(portrait):
    img, lms = portrait
    yaw, pitch, roll = head_pose(lms, img.shape)
    assert abs(yaw) < 30 and abs(pitch) < 30 and abs(roll) < 15
    rot = np.radians(10)                                     # turn the landmarks clockwise on screen by 10°
    c = lms.mean(0)
    turned = (lms - c) @ np.array([[np.cos(rot), np.sin(rot)], [-np.sin(rot), np.cos(rot)]]) + c
    assert head_pose(turned, img.shape)[2] == pytest.approx(roll + 10, abs=1.5)


# ---------------------------------------------------------------- video

def test_smoothing():
    rng = np.random.default_rng(0)
    still = np.repeat(toy_face()[None], 40, 0) + rng.normal(0, 1, (40, 68, 2))
    for method in ('gaussian', 'one_euro'):
        out = smooth_landmarks(still, method)
        assert out.shape == still.shape and np.std(out[10:] - toy_face()) < 0.5
    ramp = np.stack([toy_face(shift=(100 + 4 * t, 200)) for t in range(30)])
    np.testing.assert_allclose(smooth_landmarks(ramp), ramp, atol=1e-3)
    with pytest.raises(ValueError, match='sequence'): smooth_landmarks(toy_face())


@pytest.mark.needs_dlib
def test_align_frames_on_real_clip(data):
    av = pytest.importorskip('av')
    with av.open(str(data / 'videos/lia_vox_driving2.mp4')) as c:
        frames = [f.to_ndarray(format='rgb24') for _, f in zip(range(12), c.decode(video=0))]
    frames[5] = np.zeros_like(frames[5])                      # a frame without a face gets interpolated
    crops = align_frames(frames, size=64)
    assert len(crops) == 12 and all(a.image.shape == (64, 64, 3) for a in crops)
    assert [a.detected for a in crops].count(False) == 1 and not crops[5].detected
    with pytest.raises(NoFaceError, match='any of the 2 frames'): align_frames([frames[5], frames[5]])


# ---------------------------------------------------------------- descriptors

@pytest.mark.needs_dlib
def test_torch_descriptor_matches_dlib(data):
    ims = [load_image(p) for p in sorted((data / 'faces/utkface').iterdir())[:3]]
    chips = np.stack([face_chip(im, face_landmarks(im)) for im in ims])
    np.testing.assert_allclose(chip_descriptors(chips), chip_descriptors(chips, backend='dlib'), atol=1e-5)


@pytest.mark.needs_dlib
def test_same_person_closer_than_different(data):
    a = load_image(data / 'portraits/sadtalker_happy.png')
    b = load_image(data / 'portraits/lia_vox_macron.png')
    d = face_descriptors([a, a[:, ::-1].copy(), b])
    assert d.shape == (3, 128)
    assert np.linalg.norm(d[0] - d[1]) < 0.6 < np.linalg.norm(d[0] - d[2])
