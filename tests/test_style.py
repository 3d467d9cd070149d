"""The kit's code style, checked with ruff (`ruff.toml`): lines of at most 110 characters and one statement
a line, in the library, the tests and every notebook. nbdev writes each module's `__all__` itself (wrapped at
120 characters), so long lines inside that generated block are not counted."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def all_block_lines(path):
    "Line numbers of the nbdev-generated `__all__ = [...]` block of a module (empty when it has none)."
    lines = Path(path).read_text().splitlines()
    start = next((i for i, l in enumerate(lines) if l.startswith('__all__ = [')), None)
    if start is None: return set()
    end = next(i for i in range(start, len(lines)) if lines[i].rstrip().endswith(']'))
    return set(range(start + 1, end + 2))


def style_problems(*paths, cwd=ROOT):
    "ruff's findings as 'file:line: code message', without long lines in nbdev's generated `__all__`."
    r = subprocess.run([sys.executable, '-m', 'ruff', 'check', '--output-format', 'json', *map(str, paths)],
                       capture_output=True, text=True, cwd=cwd)
    assert r.returncode in (0, 1), r.stderr
    out = []
    for v in json.loads(r.stdout):
        row = v['location']['row']
        if v['code'] == 'E501' and v.get('cell') is None and row in all_block_lines(v['filename']): continue
        cell = f" cell {v['cell']}" if v.get('cell') else ''
        out.append(f"{Path(v['filename']).relative_to(cwd)}{cell}:{row}: {v['code']} {v['message']}")
    return out


def test_library_tests_and_notebooks_follow_the_style():
    problems = style_problems('hybridlat', 'tests', 'nbs')
    assert not problems, '\n'.join(problems)


def test_the_check_finds_long_lines_and_chains_but_not_nbdevs_all(tmp_path):
    (tmp_path / 'ruff.toml').write_text((ROOT / 'ruff.toml').read_text())
    names = ', '.join(f"'name_{i:03d}'" for i in range(12))
    (tmp_path / 'mod.py').write_text(f"__all__ = [{names}]\n\nx = 1; y = 2\nz = '{'a' * 120}'\n")
    problems = style_problems('mod.py', cwd=tmp_path)
    assert [p.split(': ')[1].split()[0] for p in problems] == ['E702', 'E501'], problems
    assert [int(p.split(':')[1]) for p in problems] == [3, 4]
