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
def test_refit_motion_directions_scales_the_mouth_by_its_measured_response(monkeypatch, G):
    from hybridlat.reenactment import train_encoder
    from hybridlat.reenactment.synthetic_pairs import MEASURES, load_motion_directions, motion_response
    shipped = load_motion_directions('faces128', G)['mouth']      # a direction known to open the mouth
    monkeypatch.setattr(train_encoder, 'expression_direction', lambda G, net=None, progress=True: shipped)
    dirs, meta = train_encoder.refit_motion_directions(G, n=200, progress=False)
    assert set(dirs) == set(MEASURES) and meta['n'] == 200 and meta['model'] == 'faces128'
    raw = motion_response(G, {'mouth': shipped})['mouth']
    assert meta['mouth_direction']['raw_response'] == raw > 0
    scale = meta['measure_std']['mouth'] / raw                               # one unit = one sample spread
    for layer, v in shipped.items(): torch.testing.assert_close(dirs['mouth'][layer], v * scale)
    assert meta['response_per_unit']['mouth'] > 0 and set(meta['response_per_unit']) == set(MEASURES)
    closing = {layer: -v for layer, v in shipped.items()}
    monkeypatch.setattr(train_encoder, 'expression_direction', lambda G, net=None, progress=True: closing)
    with pytest.raises(ValueError, match='does not open the mouth'):
        train_encoder.refit_motion_directions(G, n=200, progress=False)
