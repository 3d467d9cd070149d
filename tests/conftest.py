"""Shared pytest setup: every test starts with autograd on, whatever an earlier test did."""
import pytest
import torch


@pytest.fixture(autouse=True)
def grad_enabled():
    with torch.enable_grad(): yield
