"""The kit's code style, checked with ruff (`ruff.toml`): lines of at most 110 characters and one statement
a line, in the library, the tests and every notebook. nbdev writes each module's `__all__` in lines of up to
120 characters, so a module whose list would not fit keeps its own `__all__` in a hidden exported cell, and a
test here checks that list against the one nbdev derives."""
import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def style_problems(*paths, cwd=ROOT):
    "ruff's findings as 'file:line: code message'."
    r = subprocess.run([sys.executable, '-m', 'ruff', 'check', '--output-format', 'json', *map(str, paths)],
                       capture_output=True, text=True, cwd=cwd)
    assert r.returncode in (0, 1), r.stderr
    out = []
    for v in json.loads(r.stdout):
        cell, row = f" cell {v['cell']}" if v.get('cell') else '', v['location']['row']
        out.append(f"{Path(v['filename']).relative_to(cwd)}{cell}:{row}: {v['code']} {v['message']}")
    return out


def test_library_tests_and_notebooks_follow_the_style():
    problems = style_problems('hybridlat', 'tests', 'nbs')
    assert not problems, '\n'.join(problems)


def test_the_check_finds_long_lines_and_chains(tmp_path):
    (tmp_path / 'ruff.toml').write_text((ROOT / 'ruff.toml').read_text())
    names = ', '.join(f"'name_{i:03d}'" for i in range(12))
    (tmp_path / 'mod.py').write_text(f"__all__ = [{names}]\n\nx = 1; y = 2\nz = '{'a' * 120}'\n")
    problems = style_problems('mod.py', cwd=tmp_path)
    assert [p.split(': ')[1].split()[0] for p in problems] == ['E501', 'E702', 'E501'], problems
    assert [int(p.split(':')[1]) for p in problems] == [1, 3, 4]


def derived_all(path):
    "The `__all__` nbdev would write for a module: its public assignment targets, then its public defs."
    from nbdev.maker import ModuleMaker, make_code_cells
    maker = ModuleMaker(dest=path.parent, name=path.stem, nb_path='', is_new=False)
    return list(maker.make_all(make_code_cells(path.read_text())))


def kept_all_modules():
    "Modules that keep their own `__all__` (nbdev's generated one is then empty)."
    out = []
    for path in sorted((ROOT / 'hybridlat').rglob('*.py')):
        alls = [n for n in ast.parse(path.read_text()).body if isinstance(n, ast.Assign)
                and any(getattr(t, 'id', None) == '__all__' for t in n.targets)]
        if len(alls) == 2: out.append(path)
    return out


def test_kept_all_lists_are_what_nbdev_would_derive():
    paths = kept_all_modules()
    assert len(paths) >= 30, paths                                 # the modules whose list is long
    for path in paths:
        name = '.'.join(path.relative_to(ROOT).with_suffix('').parts)
        assert importlib.import_module(name).__all__ == derived_all(path), name


def test_derived_all_sees_a_missing_name(tmp_path):
    mod = tmp_path / 'mod.py'
    mod.write_text("__all__ = []\nA = 1\ndef f(): pass\ndef _g(): pass\n__all__ = ['A']\n")
    assert derived_all(mod) == ['A', 'f']                          # f is public but not kept: a test fails
