"""Shared pytest setup: autograd on for every test, and the `needs_dlib` marker for tests of real faces."""
import importlib.util
import os
import pytest
import torch
from hybridlat.commands import install_command, source_checkout
from helpers import tiny_generator

DLIB_MISSING_REASON = f"dlib missing: {install_command('faces', source_checkout())}"


def dlib_problem():
    "Why the faces extra is unusable here (dlib does not import, face_recognition_models is absent), or None."
    try: import dlib  # noqa: F401
    except ImportError as e: return f'dlib does not import ({e})'
    try: models = importlib.util.find_spec('face_recognition_models')   # found, not imported (as in faces.py)
    except ImportError as e: return f'face_recognition_models cannot be found ({e})'
    return None if models is not None else 'face_recognition_models is not installed'


def running_in_ci(): return os.environ.get('CI', '').strip().lower() in ('1', 'true', 'yes')


def pytest_configure(config):
    config.addinivalue_line('markers', f'needs_dlib: the test needs the faces extra; skipped without it '
                                       f'("{DLIB_MISSING_REASON}"), failed without it when CI is true')


def pytest_runtest_setup(item):
    if item.get_closest_marker('needs_dlib') is None: return
    problem = dlib_problem()
    if problem is None: return
    if running_in_ci():
        pytest.fail(f'{DLIB_MISSING_REASON}; CI installs the faces extra, so this is a failure: {problem}',
                    pytrace=False)
    pytest.skip(DLIB_MISSING_REASON)


@pytest.fixture(autouse=True)
def grad_enabled():
    with torch.enable_grad(): yield


@pytest.fixture
def no_grad():
    "Autograd off for a test; a module opts in with `pytestmark = pytest.mark.usefixtures('no_grad')`."
    with torch.no_grad(): yield


@pytest.fixture(scope='module')
def tiny_G():
    "A tiny untrained generator: 16² images, w_dim 32 (one per test module)."
    return tiny_generator(16)

