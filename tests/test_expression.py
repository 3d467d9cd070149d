"""Tests of the expression network of hybridlat.reenactment.train_encoder: the shipped file, the loss,
fitting, bad files."""
import numpy as np
import pytest
import torch
from hybridlat.reenactment.train_encoder import (
    ExpressionNet,
    expression_loss,
    fit_expression_net,
    load_expression_net,
    save_expression_net,
)
from helpers import G  # noqa: F401 (the shipped generator fixture)


def test_shipped_network_loads_and_its_loss_compares_expressions():
    net = load_expression_net()
    assert net.meta['frames'] > 1000 and (net.std > 0).all()
    loss = expression_loss()
    g = torch.Generator().manual_seed(0)
    a = (torch.rand(3, 3, 128, 128, generator=g) * 2 - 1).requires_grad_()
    assert float(loss(a, a.detach()).detach()) == 0
    other = loss(a, a.detach().flip(2))                                  # upside down: another "expression"
    assert float(other) > 0
    other.backward()
    assert torch.isfinite(a.grad).all() and a.grad.abs().sum() > 0


def test_fit_learns_a_planted_measure():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(384, 3, 128, 128, generator=g) * 0.2 - 1
    y = torch.rand(384, 2, generator=g)
    x[:, :, 80:110, 40:90] += 1.6 * y[:, :1, None, None]                   # a "mouth" that opens with label 0
    x[:, :, 40:55, 30:100] += 1.6 * y[:, 1:, None, None]                   # "eyes" with label 1
    net = fit_expression_net(x[:256], y[:256], steps=300, progress=False)
    pred = (net(x[256:]) * net.std + net.mean).numpy()
    for k in (0, 1): assert np.corrcoef(pred[:, k], y[256:, k].numpy())[0, 1] > 0.9


def test_bad_expression_files_are_refused(tmp_path):
    torch.save({'weights': torch.zeros(2)}, tmp_path / 'other.pt')
    with pytest.raises(ValueError, match='not an expression network'):
        load_expression_net(tmp_path / 'other.pt')
    with pytest.raises(FileNotFoundError): load_expression_net(tmp_path / 'missing.pt')
    net = ExpressionNet()
    net.head.weight.data[0, 0] = float('nan')
    save_expression_net(net, tmp_path / 'nan.pt')
    with pytest.raises(ValueError, match='non-finite'): load_expression_net(tmp_path / 'nan.pt')
    torch.save({'format': 'hybridlat.expression', 'state': ExpressionNet().state_dict(), 'meta': {},
                'code': np.dtype}, tmp_path / 'code.pt')                  # a global that is not a tensor
    with pytest.raises(Exception, match='(?i)weights_only|unsupported global'):
        load_expression_net(tmp_path / 'code.pt')


@pytest.mark.needs_dlib
def test_refit_motion_directions_scales_mouth_and_eyes_by_their_measured_response(monkeypatch, G):
    from hybridlat.reenactment import train_encoder
    from hybridlat.reenactment.synthetic_pairs import MEASURES, load_motion_directions, motion_response
    shipped = load_motion_directions('faces128', G)          # directions known to open mouth and eyes
    found = {0: shipped['mouth'], 1: shipped['eyes']}
    calls = []
    def fake(G, net=None, measure=0, outside_weight=0.0, region=None, progress=True):
        calls.append((measure, outside_weight, region))
        return found[measure]
    monkeypatch.setattr(train_encoder, 'expression_direction', fake)
    dirs, meta = train_encoder.refit_motion_directions(G, n=200, progress=False)
    assert set(dirs) == set(MEASURES) - {'roll'} and meta['dropped'] == ['roll']
    assert meta['n'] == 200 and meta['model'] == 'faces128'
    assert calls == [(0, 100.0, train_encoder.MOUTH_REGION), (1, 100.0, train_encoder.EYES_REGION)]
    for k, measure in (('mouth', 0), ('eyes', 1)):
        raw = motion_response(G, {k: found[measure]})[k]
        assert meta['expression_directions'][k]['raw_response'] == raw > 0
        scale = meta['measure_std'][k] / raw                               # one unit = one sample spread
        for layer, v in found[measure].items(): torch.testing.assert_close(dirs[k][layer], v * scale)
    assert meta['response_per_unit']['mouth'] > 0 and set(meta['response_per_unit']) == set(dirs)
    found[0] = {layer: -v for layer, v in shipped['mouth'].items()}       # closes the mouth
    with pytest.raises(ValueError, match="does not raise dlib's mouth"):
        train_encoder.refit_motion_directions(G, n=200, progress=False)


def test_expression_direction_keeps_the_picture_outside_its_region(G):
    from hybridlat.reenactment.encoder import render_hybrid
    from hybridlat.reenactment.train_encoder import MOUTH_REGION, expression_direction, region_mask
    mask = region_mask(128, MOUTH_REGION)
    assert mask.shape == (1, 1, 128, 128) and mask[0, 0, 100, 64] == 1 and mask[0, 0, 20, 64] == 0
    z = torch.randn(4, G.z_dim, generator=torch.Generator().manual_seed(5))
    w = G.mapping(z, None, truncation_psi=0.8)
    outside = []
    for weight in (0.0, 100.0):
        d = expression_direction(G, n=8, steps=12, lr=0.1, outside_weight=weight, progress=False)
        with torch.no_grad():
            moved = render_hybrid(G, w, {l: 3 * v.expand(4, -1) for l, v in d.items()})
            change = moved - render_hybrid(G, w, {l: 0 * v.expand(4, -1) for l, v in d.items()})
        outside.append(float((change.abs() * (1 - mask)).mean()))
    assert outside[1] < 0.7 * outside[0]


def test_shipped_mouth_and_eye_directions_change_their_region_most(G):
    """The shipped motion file (faces128 v4, session 12): at +2 units the mouth and eye directions change
    their region's pixels about 3× as much as the rest (the unpenalised mouth: 1.45×, ridge eyes: 1.3×)."""
    from hybridlat.reenactment.encoder import render_hybrid
    from hybridlat.reenactment.synthetic_pairs import load_motion_directions
    from hybridlat.reenactment.train_encoder import EYES_REGION, MOUTH_REGION, region_mask
    dirs = load_motion_directions('faces128', G)
    assert 'roll' not in dirs and {'mouth', 'eyes', 'yaw', 'pitch'} <= set(dirs)
    z = torch.randn(8, G.z_dim, generator=torch.Generator().manual_seed(3))
    w = G.mapping(z, None, truncation_psi=0.8)
    for k, region in (('mouth', MOUTH_REGION), ('eyes', EYES_REGION)):
        with torch.no_grad():
            change = (render_hybrid(G, w, {l: 2 * v.expand(8, -1) for l, v in dirs[k].items()})
                      - render_hybrid(G, w, {l: 0 * v.expand(8, -1) for l, v in dirs[k].items()})).abs()
        mask = region_mask(128, region)
        inside = (change * mask).sum() / (mask.sum() * change.shape[0] * change.shape[1])
        outside = (change * (1 - mask)).sum() / ((1 - mask).sum() * change.shape[0] * change.shape[1])
        assert inside > 2.5 * outside, (k, float(inside), float(outside))
