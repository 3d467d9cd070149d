"""The library follows the course: no module imports a module of a later lesson (at the top or inside a
function), and no module imports another module's private (`_name`) names. A lesson's place is its notebook's
number (`NN` or `NNx` of `nbs/NNx_name.ipynb`), read from the `# %% ../nbs/…` markers nbdev writes."""
import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def lesson_of_modules(lib):
    "{module name: (number, letter)} of the notebook each module of `lib` is exported from."
    out = {}
    for p in sorted(Path(lib).glob('*.py')):
        m = re.search(r'^# %% \S*?nbs/(\d+)([a-z]?)_\w+\.ipynb', p.read_text(), re.M)
        if m: out[p.stem] = (int(m[1]), m[2])
    return out


def imported(node, package):
    "(module, names) a node imports from `package`, or None."
    if isinstance(node, ast.ImportFrom):
        if node.level == 1 and node.module: return node.module.split('.')[0], [a.name for a in node.names]
        if node.level == 0 and (node.module or '').startswith(package + '.'):
            return node.module.split('.')[1], [a.name for a in node.names]
    if isinstance(node, ast.Import):
        for a in node.names:
            if a.name.startswith(package + '.'): return a.name.split('.')[1], []
    return None


def layout_problems(lib, package='hybridlat'):
    "Imports of a later lesson's module and of private names, one line each."
    lessons, problems = lesson_of_modules(lib), []
    for mod, place in lessons.items():
        for node in ast.walk(ast.parse((Path(lib) / f'{mod}.py').read_text())):
            found = imported(node, package)
            if not found or found[0] not in lessons: continue
            target, names = found
            where = f'{mod}.py line {node.lineno}'
            if lessons[target] > place:
                problems.append(f'{where}: imports {target}, a later lesson ({lessons[target]} > {place})')
            private = [n for n in names if n.startswith('_')]
            if private: problems.append(f"{where}: imports private {target}.{', '.join(private)}")
    return problems


def test_no_module_imports_a_later_lesson_or_a_private_name():
    assert len(lesson_of_modules(ROOT / 'hybridlat')) > 30
    problems = layout_problems(ROOT / 'hybridlat')
    assert not problems, '\n'.join(problems)


def test_the_check_finds_later_lessons_and_private_names(tmp_path):
    files = {'early': ('01_early', 'from .late import helper\n'),
             'late': ('02_late', 'def helper(): pass\n'),
             'mid': ('01b_mid', 'def f():\n    from hybridlat.early import _secret\n')}
    for mod, (nb, body) in files.items():
        (tmp_path / f'{mod}.py').write_text(f'# %% ../nbs/{nb}.ipynb #0\n{body}')
    problems = layout_problems(tmp_path)
    assert len(problems) == 2, problems
    assert any('early.py line 2: imports late, a later lesson' in p for p in problems)
    assert any('mid.py line 3: imports private early._secret' in p for p in problems)
