"""The library follows the course: no module imports a module of a later lesson (at the top or inside a
function), and no module imports another module's private (`_name`) names. A lesson's place is its notebook's
number (`NN` or `NNx` of `nbs/P_part/NNx_name.ipynb`), read from the `# %% ../nbs/…` markers nbdev writes; and
each module's notebook sits in the folder of its subpackage (`hybridlat/stylegan2/` ← `nbs/0_stylegan2/`)."""
import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def lesson_of_modules(lib):
    """{dotted module name under `lib` ('stylegan2.generator'): (number, letter, folder)} of the notebook each
    module is exported from; folder is the notebook's part folder ('0_stylegan2') or '' for `nbs/` itself."""
    out = {}
    for p in sorted(Path(lib).rglob('*.py')):
        m = re.search(r'^# %% \S*?nbs/(?:(\d+_\w+)/)?(\d+)([a-z]?)_\w+\.ipynb', p.read_text(), re.M)
        if m: out['.'.join(p.relative_to(lib).with_suffix('').parts)] = (int(m[2]), m[3], m[1] or '')
    return out


def imported(node, package, module):
    "[(dotted module, names)] that a node in `module` imports from `package` ('from .x import y' resolved)."
    if isinstance(node, ast.ImportFrom):
        names = [a.name for a in node.names]
        if node.level:
            base = module.split('.')[: -node.level]
            target = '.'.join(base + (node.module.split('.') if node.module else []))
        elif (node.module or '') == package or (node.module or '').startswith(package + '.'):
            target = node.module[len(package) + 1:]
        else:
            return []
        # `from hybridlat.realfaces import faces` imports the module realfaces.faces
        return [(target, names)] + [(f'{target}.{n}' if target else n, []) for n in names]
    if isinstance(node, ast.Import):
        return [(a.name[len(package) + 1:], []) for a in node.names if a.name.startswith(package + '.')]
    return []


def layout_problems(lib, package='hybridlat'):
    """Imports of a later lesson's module and of private names, and modules whose notebook's part folder is
    not their subpackage, one line each."""
    lessons, problems = lesson_of_modules(lib), []
    for mod, place in lessons.items():
        where_nb = place[2].partition('_')[2]
        if where_nb != mod.rpartition('.')[0]:
            folder = place[2] or '.'
            problems.append(f'{mod}: its notebook is in nbs/{folder}, not the folder of its subpackage')
        for node in ast.walk(ast.parse((Path(lib) / (mod.replace('.', '/') + '.py')).read_text())):
            for target, names in imported(node, package, mod):
                if target not in lessons: continue
                where = f"{mod.replace('.', '/')}.py line {node.lineno}"
                if lessons[target][:2] > place[:2]:
                    later = f'({lessons[target][:2]} > {place[:2]})'
                    problems.append(f'{where}: imports {target}, a later lesson {later}')
                private = [n for n in names if n.startswith('_')]
                if private: problems.append(f"{where}: imports private {target}.{', '.join(private)}")
    return problems


def test_no_module_imports_a_later_lesson_or_a_private_name():
    assert len(lesson_of_modules(ROOT / 'hybridlat')) > 30
    problems = layout_problems(ROOT / 'hybridlat')
    assert not problems, '\n'.join(problems)


def test_the_check_finds_later_lessons_and_private_names(tmp_path):
    files = {'early': ('01_early', 'from .part.late import helper\n'),
             'part/late': ('1_part/12_late', 'def helper(): pass\n'),
             'part/mid': ('1_part/11b_mid', 'def f():\n    from hybridlat.early import _secret\n'),
             'part/fine': ('1_part/13_fine', 'from ..early import x\nfrom . import mid\n'),
             'part/lost': ('13_lost', 'import hybridlat.early\n')}
    for mod, (nb, body) in files.items():
        (tmp_path / f'{mod}.py').parent.mkdir(exist_ok=True)
        (tmp_path / f'{mod}.py').write_text(f'# %% ../../nbs/{nb}.ipynb #0\n{body}')
    problems = layout_problems(tmp_path)
    assert len(problems) == 3, problems
    assert any('early.py line 2: imports part.late, a later lesson' in p for p in problems)
    assert any('part/mid.py line 3: imports private early._secret' in p for p in problems)
    assert any('part.lost: its notebook is in nbs/., not the folder of its subpackage' in p for p in problems)


def test_parts_map_lists_every_module_of_the_subpackages():
    from hybridlat.commands import PARTS, module_path
    found = {p.parent.name: set() for p in (ROOT / 'hybridlat').glob('*/__init__.py')}
    for p in (ROOT / 'hybridlat').glob('*/*.py'):
        if p.name != '__init__.py': found[p.parent.name].add(p.stem)
    assert {part: set(mods) for part, mods in PARTS.items()} == found
    assert module_path('hybridlat.train_encoder') == 'hybridlat.reenactment.train_encoder'
