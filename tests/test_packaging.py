"""The package builds as a wheel that carries the `data/` assets as `hybridlat.assets`."""
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_carries_library_and_assets(tmp_path):
    res = subprocess.run(
        [
            sys.executable,
            '-m',
            'pip',
            'wheel',
            str(ROOT),
            '--no-deps',
            '--no-build-isolation',
            '-q',
            '-w',
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr
    wheel, = tmp_path.glob('hybridlat-*.whl')
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / 'hybridlat').rglob('*.py')}
    assert len(modules) > 40 and 'hybridlat/stylegan2/generator.py' in modules   # the parts' subpackages too
    assert modules <= names
    assets = {p.name for p in (ROOT / 'data').iterdir() if p.suffix in {'.pt', '.md', '.json'}}
    # campaign state: repository only
    training = {a for a in assets if a.endswith(('_train.pt', '_train.md'))}
    assert {f'hybridlat/assets/{a}' for a in assets - training} <= names
    assert not {f'hybridlat/assets/{a}' for a in training} & names
    entry_points = next(n for n in names if n.endswith('entry_points.txt'))
    assert 'hybridlat = hybridlat.cli:main' in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_setup_py_does_not_import_pkg_resources():
    import re
    assert not re.search(r'^\s*(import|from)\s+pkg_resources', (ROOT / 'setup.py').read_text(), re.M)
