"""The shipped encoder: loads offline for the shipped generator only, its card is generated from its facts, it
is the default of `hybridlat reenact`, and `export_encoder` makes the shipped files from a training run."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hybridlat.stylegan2.checkpoints import CheckpointError
from hybridlat.reenactment.encoder import check_encoder_fits
from hybridlat.training.pretrained import load_pretrained, pretrained_path
from helpers import G, tiny_training_zips  # noqa: F401 (G: the shipped generator fixture)
from hybridlat.reenactment.pretrained_encoder import (encoder_card, export_encoder, load_pretrained_encoder,
                                          pretrained_encoder_facts)

DATA = Path(os.environ.get('HYBRIDLAT_DATA', Path(__file__).resolve().parents[2] / 'shared' / 'data'))
ENV = {**os.environ, 'OMP_NUM_THREADS': '1'}
need_data = pytest.mark.skipif(not (DATA / 'videos').is_dir(), reason=f'shared data not found at {DATA}')




def test_shipped_encoder_fits_the_shipped_generator(G):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('error')            # e.g. a w_avg rounded on its way (session 13)
        E = load_pretrained_encoder('faces128', G)
    check_encoder_fits(E, G)
    facts = pretrained_encoder_facts()
    assert E.checkpoint_info['meta']['steps'] == facts['steps'] > 0
    assert pretrained_path('faces128', 'encoder').stat().st_size <= 25 * 2**20
    assert not any(p.requires_grad for p in E.parameters())


def test_other_weights_are_refused(G):
    import copy
    G2 = copy.deepcopy(G)
    with torch.no_grad(): G2.synthesis.b4.conv1.affine.bias.add_(0.1)
    with pytest.raises(CheckpointError, match='weights differ'): load_pretrained_encoder('faces128', G2)


def test_card_is_generated_from_facts():
    facts = pretrained_encoder_facts()
    assert pretrained_path('faces128', 'encoder_card').read_text() == encoder_card(facts)
    assert {r['metric'] for r in facts['quality']['targets']} == {'id_dist', 'r_mouth', 'r_yaw'}
    from hybridlat.realfaces.datasets import HELD_OUT_CLIPS
    assert len(facts['quality']['cross']) >= 9  # the minimum of held-out pairs
    assert sorted(r['driving'] for r in facts['quality']['self']) == sorted(HELD_OUT_CLIPS)
    assert facts['data']['val']['clips'] == sorted(HELD_OUT_CLIPS)  # evaluated on clips it never trained on


@need_data
@pytest.mark.needs_dlib
def test_reenact_cli_defaults_to_the_shipped_encoder(tmp_path):
    out = tmp_path / 'out.mp4'
    res = subprocess.run(
        [
            sys.executable,
            '-c',
            'import sys; from hybridlat.cli import main; sys.exit(main())',
            'reenact',
            str(DATA / 'portraits' / 'lia_vox_taylor.png'),
            str(DATA / 'videos' / 'lia_vox_driving2.mp4'),
            '-o',
            str(out),
            '--fps',
            '5',
            '--max-frames',
            '4',
        ],
        cwd=tmp_path,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert out.stat().st_size > 1000


@need_data
@pytest.mark.needs_dlib
def test_export_from_a_short_run(G, tmp_path):
    from hybridlat.reenactment.train_encoder import main
    clips = ('liveportrait_d9.mp4', 'lia_vox_driving1.mp4', 'lia_vox_driving2.mp4')
    tiny_training_zips(DATA, tmp_path, clips, max_faces=4)
    run = tmp_path / 'run'
    main(
        [
            '--faces',
            str(tmp_path / 'faces.zip'),
            '--clips',
            str(tmp_path / 'clips.zip'),
            '--out',
            str(run),
            '--batch',
            '2',
            '--steps',
            '2',
            '--val-clips',
            '1',
            '--n-samples',
            '2',
            '--workers',
            '0',
            '--no-progress',
            '--encoder-kwargs',
            json.dumps(dict(channels=[4, 8, 8, 8, 8, 8], fpn_channels=8)),
        ]
    )
    facts = export_encoder(
        run,
        out_dir=tmp_path / 'assets',
        faces=tmp_path / 'faces.zip',
        clips=tmp_path / 'clips.zip',
        hardware='test',
        command='test',
        progress=False,
        n_portraits=1,
        sources=(),
        max_frames=4,
        bench_frames=4,
        refine_steps=2,
    )
    assert facts['steps'] == 2 and facts['images_seen'] == 4
    assert facts['quality']['settings']['refine_steps'] == 2                    # as reenact runs it
    assert facts['quality_unfitted']['settings']['refine_steps'] == 0           # and the encoder alone
    assert 'fitted, 2 steps' in encoder_card(facts)
    assert 'fit' in [r['stage'] for r in facts['quality']['speed']]
    assert (tmp_path / 'assets' / 'faces128_encoder.md').read_text() == encoder_card(facts)
    saved = json.loads((tmp_path / 'assets' / 'faces128_encoder.json').read_text())
    assert saved['steps'] == 2 and len(saved['quality']['cross']) == 1
    rank, gallery = saved['quality']['cross'][0]['source_rank'], saved['quality']['settings']['gallery']
    assert 1 <= rank <= gallery and gallery > 40           # the CelebA-HQ faces and the portrait
    assert facts['data']['clips'] == dict(clips=2, frames=8) and facts['data']['val']['clips'] == [
        'liveportrait_d9'
    ]
    # evaluated on the run's held-out clip
    assert [r['driving'] for r in facts['quality']['self']] == ['liveportrait_d9']


@need_data
@pytest.mark.needs_dlib
def test_remeasure_writes_facts_and_card_beside(tmp_path):
    from hybridlat.reenactment.pretrained_encoder import remeasure_encoder
    from hybridlat.reenactment.reenact import validation_clips
    facts = remeasure_encoder(out_dir=tmp_path, progress=False, clips=validation_clips()[:1], sources=(),
                              n_portraits=1, max_frames=3, bench_frames=3, refine_steps=1, notes='again')
    assert (tmp_path / 'faces128_encoder.md').read_text() == encoder_card(facts)
    saved = json.loads((tmp_path / 'faces128_encoder.json').read_text())
    assert saved['notes'] == 'again' and saved['remeasured'] and len(saved['quality']['cross']) == 1
    assert saved['steps'] == pretrained_encoder_facts()['steps']                # the shipped run's facts kept


@need_data
def test_measure_both_aligns_the_gallery_once_and_times_only_the_fitted_run(monkeypatch):
    "Both measurements run; the 46-face gallery is aligned once and only the fitted run is benchmarked."
    import hybridlat.reenactment.reenact as reenact
    from hybridlat.reenactment import pretrained_encoder as pe
    calls = dict(gallery=0, bench=[], self=[], cross=[])
    row = dict(id_dist=0.5, r_mouth=0.7, r_yaw=0.4)

    def gallery(paths):
        calls['gallery'] += 1
        return dict(paths=list(paths))

    def bench(*args, refine_steps, **kw):
        calls['bench'].append(refine_steps)
        return [dict(stage='fit', seconds=1.0)]

    monkeypatch.setattr(reenact, 'appearance_gallery', gallery)
    monkeypatch.setattr(reenact, 'benchmark_reenact', bench)
    monkeypatch.setattr(reenact, 'evaluate_self',
                        lambda G, E, refine_steps, **kw: calls['self'].append(refine_steps) or ([row], None))
    monkeypatch.setattr(reenact, 'evaluate_cross',
                        lambda G, E, refine_steps, **kw: calls['cross'].append(refine_steps) or ([row], None))
    pe._eval_gallery.cache_clear()
    out = pe.measure_both(None, None, refine_steps=7, clips=[DATA / 'videos' / 'lia_vox_driving2.mp4'])
    assert calls['self'] == calls['cross'] == [7, 0]
    assert calls['gallery'] == 1 and calls['bench'] == [7]
    assert out['quality']['speed'] and out['quality_unfitted']['speed'] is None
    pe._eval_gallery.cache_clear()
