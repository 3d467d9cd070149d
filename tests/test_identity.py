"""Tests of hybridlat.realfaces.identity's training helpers: the fixed chip of an aligned face and the
identity loss."""
import numpy as np
import pytest
import torch
from hybridlat.realfaces.identity import ALIGNED_CHIP_BOX, aligned_chips, identity_distance_loss

pytestmark = pytest.mark.needs_dlib       # the descriptor network's weights come with the faces extra


def test_aligned_chips_cut_the_box_and_keep_gradients():
    x = torch.zeros(2, 3, 128, 128)
    l, t, r, b = (round(v * 128) for v in ALIGNED_CHIP_BOX)
    x[:, :, t:b, l:r] = 1                                                # white box, black elsewhere
    chips = aligned_chips(x)
    assert chips.shape == (2, 3, 150, 150)
    assert chips[:, :, 3:-3, 3:-3].min() > 250 and chips.max() <= 255   # the box fills the chip
    x2 = torch.zeros(1, 3, 128, 128, requires_grad=True)
    aligned_chips(x2).sum().backward()
    assert x2.grad[0, 0, 64, 64] > 0 and x2.grad[0, 0, 2, 2] == 0        # inside the box only


def test_identity_distance_loss_zero_for_itself_and_differentiable():
    g = torch.Generator().manual_seed(0)
    a = (torch.rand(2, 3, 128, 128, generator=g) * 2 - 1).requires_grad_()
    b = torch.rand(2, 3, 128, 128, generator=g) * 2 - 1
    same = identity_distance_loss(a, a.detach())
    assert same.shape == (2,) and same.abs().max() < 1e-5
    other = identity_distance_loss(a, b)
    assert (other > 1e-4).all()
    other.sum().backward()
    assert torch.isfinite(a.grad).all() and a.grad.abs().sum() > 0
