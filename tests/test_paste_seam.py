"Paste back without a seam: the face mask, a blend that never darkens, colour matching, the streaming path."
import os
from pathlib import Path
import numpy as np
import pytest
import torch

from hybridlat.realfaces.faces import (
    align_face,
    colour_matched,
    crop_mask,
    crop_matrix,
    face_hull,
    gaussian_blur,
    paste_back,
    paste_mask,
    paste_region,
    paste_weight,
    polygon_depth,
    reference_crop,
)
from hybridlat.reenactment.reenact import build_reenact_parser, paste_frames, seam_scores

DATA = Path(os.environ.get('HYBRIDLAT_DATA', Path(__file__).resolve().parents[2] / 'shared' / 'data'))


def template_landmarks(cx=100.0, cy=100.0, r=40.0):
    "68 rough landmarks [68, 2] of a frontal face centred at (cx, cy), `r` about half its width."
    lms = np.zeros((68, 2))
    t = np.linspace(0, np.pi, 17)
    lms[:17] = np.stack([cx - r * np.cos(t), cy - 0.1 * r + 1.3 * r * np.sin(t)], -1)        # jaw, ear to ear
    lms[17:27] = np.stack([np.linspace(cx - 0.8 * r, cx + 0.8 * r, 10), np.full(10, cy - 0.55 * r)], -1)
    lms[27:36] = np.stack([np.full(9, cx), np.linspace(cy - 0.4 * r, cy + 0.2 * r, 9)], -1)   # nose
    ring = np.linspace(0, 2 * np.pi, 6, endpoint=False)
    for first, x in ((36, cx - 0.4 * r), (42, cx + 0.4 * r)):                                 # eyes
        eye = [x - 0.12 * r * np.cos(ring), cy - 0.3 * r + 0.05 * r * np.sin(ring)]
        lms[first:first + 6] = np.stack(eye, -1)
    mouth = np.linspace(0, 2 * np.pi, 20, endpoint=False)                             # 48: left corner
    lms[48:68] = np.stack([cx - 0.35 * r * np.cos(mouth), cy + 0.55 * r + 0.1 * r * np.sin(mouth)], -1)
    return lms


@pytest.fixture(scope='module')
def scene():
    "A smooth textured 200² frame, its template landmarks and their 128² alignment."
    yy, xx = np.mgrid[:200, :200].astype(float)
    frame = np.stack([60 + 0.5 * xx + 20 * np.sin(yy / 9), 80 + 0.4 * yy + 15 * np.cos(xx / 7),
                      120 + 10 * np.sin((xx + yy) / 13)], -1)
    frame = np.clip(frame, 0, 255).astype(np.uint8)
    lms = template_landmarks()
    return frame, lms, align_face(frame, lms, size=128)


def test_polygon_depth_of_a_square():
    depth = polygon_depth(np.array([[2, 2], [2, 8], [8, 8], [8, 2]]), 10)
    np.testing.assert_allclose(depth[5].numpy(), [-2, -1, 0, 1, 2, 3, 2, 1, 0, -1])
    other_turn = np.array([[2, 2], [8, 2], [8, 8], [2, 8]])
    np.testing.assert_allclose(polygon_depth(other_turn, 10), depth)


def test_face_hull_holds_the_jaw_and_reaches_above_the_brows():
    lms = template_landmarks()
    hull = face_hull(lms)
    depth = polygon_depth(hull, 200)
    jaw = np.round(lms[:17]).astype(int)
    assert (depth[jaw[:, 1], jaw[:, 0]] >= -1).all()                          # on or inside the hull
    assert hull[:, 1].min() < lms[17:27, 1].min() - 10                        # the forehead is in


def test_face_mask_in_unit_range_and_zero_far_from_the_face(scene):
    _, _, al = scene
    m = paste_mask(128, shape='face', landmarks=al.landmarks)
    assert m.shape == (128, 128) and m.dtype == torch.float32
    assert m.min() >= 0 and m.max() <= 1
    centre = np.round(al.landmarks[[30, 33, 51]].mean(0)).astype(int)          # nose and upper lip
    assert m[centre[1], centre[0]] == 1
    assert (m[polygon_depth(face_hull(al.landmarks), 128) <= 0] == 0).all()  # nothing outside the hull
    assert m[:10].max() == 0 and m[:, :10].max() == 0 and m.mean() < paste_mask(128).mean() / 2


def test_mask_options_are_checked(scene):
    with pytest.raises(ValueError, match='landmarks'): paste_mask(128, shape='face')
    with pytest.raises(ValueError, match='shape must be'): paste_mask(128, shape='circle')


def test_face_paste_region_is_smaller_than_the_ellipse(scene):
    frame, _, al = scene
    box = lambda shape: paste_region(frame.shape[:2], crop_matrix(al, 128), crop_mask(al, 128, shape=shape))
    (x0, y0, x1, y1), (e0, f0, e1, f1) = box('face'), box('ellipse')
    assert e0 <= x0 and f0 <= y0 and x1 <= e1 and y1 <= f1 and (x1 - x0) * (y1 - y0) < (e1 - e0) * (f1 - f0)


@pytest.mark.parametrize('shape,match', [('ellipse', False), ('face', False), ('face', True)])
def test_grey_into_grey_is_exact(scene, shape, match):
    _, lms, _ = scene
    grey = np.full((200, 200, 3), 90, np.uint8)
    al = align_face(grey, lms, size=128)
    out = paste_back(grey, np.full((128, 128, 3), 90, np.uint8), al, shape=shape, match_colour=match)
    assert (out == 90).all()                                           # no halo, no ring: the blend is exact


@pytest.mark.parametrize('match', [False, True])
def test_pasting_the_frame_itself_changes_nothing(scene, match):
    frame, _, al = scene
    out = paste_back(frame, al.image, al, shape='face', match_colour=match)
    w = paste_weight(frame.shape[:2], al, shape='face')
    assert (out[w == 0] == frame[w == 0]).all()                                # untouched outside the mask
    diff = out.astype(float) - frame
    feather = (w > 0) & (w < 1)
    assert np.abs(diff[w > 0]).mean() < 2.5                                    # the two resamplings only
    assert diff[feather].mean() > -0.5                                 # and no darkening in the feather


def test_colour_matching_moves_the_crop_to_the_frame(scene):
    _, _, al = scene
    ref, mask = reference_crop(al, 128), crop_mask(al, 128, shape='face')
    off = ref + torch.tensor([40.0, 10.0, -20.0])                              # a lighter, redder render
    fixed = colour_matched(off[None], ref, mask)[0]
    inside = mask > 0
    before, after = (off - ref)[inside].mean(0), (fixed - ref)[inside].mean(0)
    assert (after.abs() < 1).all() and (before.abs() >= 10).all()


def test_colour_matching_ignores_an_outlier_on_the_band(scene):
    _, _, al = scene
    ref, mask = reference_crop(al, 128), crop_mask(al, 128, shape='face')
    band = 4 * mask * (1 - mask) > 0.1
    hair = ref.clone()
    rows, cols = band.nonzero(as_tuple=True)
    top = rows < rows.float().quantile(0.2)                            # a fringe over the top of the band
    hair[rows[top], cols[top]] -= 120
    fixed = colour_matched(ref[None], hair.clamp(0, 255), mask)[0]
    assert (fixed - ref)[mask == 1].abs().mean() < 2                   # the fringe does not smear inwards


def test_gaussian_blur_keeps_the_sum():
    spot = torch.zeros(1, 2, 21, 21)
    spot[:, :, 10, 10] = 1
    blurred = gaussian_blur(spot, 2.0)
    assert blurred.shape == spot.shape and torch.allclose(blurred.sum((2, 3)), torch.ones(1, 2), atol=1e-4)


def test_paste_frames_matches_paste_back_with_the_new_paste(scene):
    frame, _, al = scene
    rng = np.random.default_rng(0)
    crops = np.clip(al.image[None].astype(int) + rng.integers(-30, 30, (3, 1, 1, 3)), 0, 255).astype(np.uint8)
    batch = paste_frames(frame, crops, al, batch_size=2, shape='face', match_colour=True)
    one = np.stack([paste_back(frame, c, al, shape='face', match_colour=True) for c in crops])
    assert np.abs(batch.astype(int) - one).max() <= 1


def test_seam_scores_see_a_seam_and_its_cure(scene):
    frame, _, al = scene
    same = seam_scores(frame, frame, paste_weight(frame.shape[:2], al, shape='face'))
    np.testing.assert_allclose([same['ring'], same['seam'], same['step']], [0, 1, 0], atol=1e-9)
    lighter = np.clip(al.image.astype(int) + 40, 0, 255).astype(np.uint8)
    old = seam_scores(paste_back(frame, lighter, al), frame, paste_weight(frame.shape[:2], al))
    new = seam_scores(paste_back(frame, lighter, al, shape='face', match_colour=True), frame,
                      paste_weight(frame.shape[:2], al, shape='face'))
    assert old['ring'] > 10 and old['step'] > 5
    assert abs(new['ring']) < 3 and abs(new['step']) < 3


def test_cli_defaults_to_the_new_paste():
    args = build_reenact_parser().parse_args(['a.jpg', 'b.mp4', '-o', 'c.mp4'])
    assert args.paste_mask == 'face' and args.match_colour
    args = build_reenact_parser().parse_args(['a.jpg', 'b.mp4', '-o', 'c.mp4', '--paste-mask', 'ellipse',
                                              '--no-match-colour'])
    assert args.paste_mask == 'ellipse' and not args.match_colour


@pytest.mark.skipif(not (DATA / 'videos').is_dir(), reason=f'shared data not found at {DATA}')
@pytest.mark.needs_dlib
def test_streaming_reenact_pastes_only_the_face(tmp_path):
    from hybridlat.reenactment.encoder import encoder_for
    from hybridlat.realfaces.faces import load_image
    from hybridlat.training.pretrained import load_pretrained
    from hybridlat.reenactment.reenact import reenact
    from hybridlat.realfaces.video import read_video
    G = load_pretrained('faces128')
    torch.manual_seed(0)
    E = encoder_for(G).eval()
    portrait, clip = DATA / 'portraits' / 'lia_vox_taylor.png', DATA / 'videos' / 'lia_vox_driving2.mp4'
    res = reenact(portrait, clip, tmp_path / 'out.mp4', G=G, encoder=E, fps=5, max_frames=3, progress=False,
                  keep_frames=True, refine_steps=0)
    src = load_image(portrait)
    assert res.frames.shape == (3, *src.shape) and read_video(res.path).frames.shape[0] == 3
    w = paste_weight(src.shape[:2], res.source_aligned, shape='face')
    assert (res.frames[:, w == 0] == src[w == 0]).all()                       # hair and background untouched
    again = paste_frames(src, res.crops, res.source_aligned, shape='face', match_colour=True)
    assert np.array_equal(again, res.frames)                                  # the default is the new paste
