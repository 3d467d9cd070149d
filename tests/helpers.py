"""Shared by the tests: the shipped generator, tiny untrained generators and a failed-check assertion."""
import pytest
import torch
from hybridlat.stylegan2.generator import Generator
from hybridlat.training.pretrained import load_pretrained


@pytest.fixture(scope='module')
def G(): return load_pretrained('faces128')


def tiny_generator(resolution=16, w_dim=32, channel_base=256, channel_max=64, w_avg_samples=1000, seed=0,
                   frozen=True, z_dim=32):
    "An untrained seeded generator with few channels; `w_avg` = mean w of `w_avg_samples` random z (0: zero)."
    torch.manual_seed(seed)
    G = Generator(z_dim=z_dim, w_dim=w_dim, img_resolution=resolution, mapping_kwargs=dict(num_layers=2),
                  synthesis_kwargs=dict(channel_base=channel_base, channel_max=channel_max)).eval()
    if frozen: G.requires_grad_(False)
    if w_avg_samples: G.mapping.w_avg.copy_(G.mapping.z_to_w(torch.randn(w_avg_samples, z_dim)).mean(0))
    return G


def failed(result, *texts):
    "The result failed and its report contains every one of `texts`."
    report = result.report()
    assert not result, report
    for t in texts: assert t in report, report
    return report


def tiny_training_zips(data, out, clips, max_faces):
    """A few UTKFace faces and a few frames of each of `clips` (names in `data`/videos), aligned at 32² into
    `out`/faces.zip and `out`/clips.zip: the smallest real data an encoder training run takes."""
    from hybridlat.realfaces.datasets import build_clip_dataset, build_face_dataset
    faces = {'utkface': data / 'faces' / 'utkface'}
    build_face_dataset(faces, 32, out / 'faces.zip', max_per_source=max_faces, workers=1, progress=False)
    videos = [data / 'videos' / name for name in clips]
    build_clip_dataset(videos, 32, out / 'clips.zip', fps=4, max_frames=4, workers=1, progress=False)
