"""Assignment framework: solution markers, student copies, and grading notebooks in a fresh process."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hybridlat.classroom.assignments import (
    GRADES_ENV,
    TODO_CODE,
    TODO_MARKDOWN,
    grade,
    grade_notebook,
    grade_submissions,
    grades_table,
    main,
    result_from_dict,
    strip_code_solution,
    strip_markdown_solution,
    student_copy,
    write_student_copies,
)

FIXTURES = Path(__file__).parent / 'fixtures'
SOLUTION = FIXTURES / 'a0_add.ipynb'
SECRETS = ['total = a + b', 'return total', 'IEEE 754 addition', 'assert check_a0(add)']  # solution-only text


def source(cell): return cell['source'] if isinstance(cell['source'], str) else ''.join(cell['source'])


def write_nb(nb, path):
    path.write_text(json.dumps(nb))
    return path


def add_cell_index(nb): return next(i for i, c in enumerate(nb['cells']) if source(c).startswith('def add'))


def test_code_markers_become_one_indented_raise():
    src = 'def f(x):\n    y = 1\n    ### BEGIN SOLUTION\n    return x + y\n    ### END SOLUTION\n'
    assert strip_code_solution(src) == f'def f(x):\n    y = 1\n    {TODO_CODE}\n'
    assert strip_code_solution('### BEGIN SOLUTION\nz = 3\n### END SOLUTION') == TODO_CODE
    assert (
        strip_code_solution('a = 1\n# begin solution\nb\n# END SOLUTION\nc = 2')
        == f'a = 1\n{TODO_CODE}\nc = 2'
    )
    assert strip_code_solution('print("no markers")') == 'print("no markers")'


@pytest.mark.parametrize('src, message', [
    ('### BEGIN SOLUTION\nx = 1', 'BEGIN SOLUTION on line 1 is never closed'),
    ('x = 1\n### END SOLUTION', 'END SOLUTION on line 2 has no BEGIN SOLUTION'),
    ('### BEGIN SOLUTION\n  ### BEGIN SOLUTION\n### END SOLUTION\n### END SOLUTION',
     'line 2 is inside the solution opened on line 1')])
def test_unbalanced_code_markers_raise(src, message):
    with pytest.raises(ValueError, match=message) as e: strip_code_solution(src, 'hw.ipynb, cell 4')
    assert str(e.value).startswith('hw.ipynb, cell 4: ')


def test_markdown_markers():
    md = ('Q1?\n<!-- BEGIN SOLUTION -->\nsecret\n<!-- END SOLUTION -->\n'
          'Q2? <!--BEGIN SOLUTION-->two<!-- END SOLUTION -->')
    assert strip_markdown_solution(md) == f'Q1?\n{TODO_MARKDOWN}\nQ2? {TODO_MARKDOWN}'
    with pytest.raises(ValueError, match='BEGIN SOLUTION on line 2 is never closed'):
        strip_markdown_solution('a\n<!-- BEGIN SOLUTION -->b')
    with pytest.raises(ValueError, match='has no BEGIN'): strip_markdown_solution('<!-- END SOLUTION -->')


def test_student_copy_has_no_solution_but_keeps_the_checks(tmp_path):
    nb = json.loads(SOLUTION.read_text())
    nb['cells'][add_cell_index(nb)].update(
        outputs=[{'output_type': 'stream', 'name': 'stdout', 'text': ['5\n']}], execution_count=3
    )
    (tmp_path / 'src').mkdir()
    write_nb(nb, tmp_path / 'src' / 'a0_add.ipynb')
    [path] = write_student_copies(tmp_path / 'src', tmp_path / 'student')
    text = path.read_text()
    for secret in SECRETS: assert secret in SOLUTION.read_text() and secret not in text, secret
    student = json.loads(text)
    sources = [source(c) for c in student['cells']]
    assert 'check_a0(add)' in sources and any(s.startswith('def check_a0') for s in sources)
    assert TODO_CODE in text and TODO_MARKDOWN in text
    assert 'Student copy' in sources[0] and str(tmp_path / 'src' / 'a0_add.ipynb') in sources[0]
    assert all(
        c['outputs'] == [] and c['execution_count'] is None
        for c in student['cells']
        if c['cell_type'] == 'code'
    )
    assert len(student['cells']) == len(nb['cells'])                  # + the note, - the solution-only cell
    ids = [c['id'] for c in student['cells']]                         # nbformat 4.5: unique ids on every cell
    assert len(set(ids)) == len(ids) and all(re.fullmatch(r'[\w-]{1,64}', i) for i in ids)


def test_bad_marker_names_notebook_and_cell_and_writes_nothing(tmp_path):
    nb = json.loads(SOLUTION.read_text())
    i = add_cell_index(nb)
    nb['cells'][i]['source'] = source(nb['cells'][i]).replace('### END SOLUTION', '')
    (tmp_path / 'src').mkdir()
    write_nb(nb, tmp_path / 'src' / 'a9_broken.ipynb')
    with pytest.raises(
        ValueError, match=rf"a9_broken.ipynb, cell {i + 1} \('def add\(a, b\):'\): BEGIN SOLUTION on line 3"
    ):
        write_student_copies(tmp_path / 'src', tmp_path / 'student')
    assert not (tmp_path / 'student').exists()
    with pytest.raises(ValueError, match='refusing'): write_student_copies(tmp_path / 'src', tmp_path / 'src')


def test_grade_records_only_when_asked(tmp_path, monkeypatch):
    log = tmp_path / 'log.jsonl'
    monkeypatch.delenv(GRADES_ENV, raising=False)
    grade('quiet', [('a', True)])
    assert not log.exists()
    monkeypatch.setenv(GRADES_ENV, str(log))
    r = grade('loud', [('a', True), ('b', False, 'wrong sign')])
    [line] = log.read_text().splitlines()
    assert result_from_dict(json.loads(line)['result']) == r and r.score == 0.5


def tiny_nb(*sources):
    return {
        'nbformat': 4,
        'nbformat_minor': 5,
        'metadata': {},
        'cells': [
            {'cell_type': 'code', 'metadata': {}, 'outputs': [], 'execution_count': None, 'source': s}
            for s in sources
        ],
    }


def test_solution_student_wrong_and_crashing_notebooks_grade_as_expected(tmp_path):
    student = student_copy(json.loads(SOLUTION.read_text()), 'a0_add.ipynb')
    i = add_cell_index(student)
    wrong, crashing = json.loads(json.dumps(student)), json.loads(json.dumps(student))
    wrong['cells'][i]['source'] = source(wrong['cells'][i]).replace(TODO_CODE, 'return int(a + b)')
    crashing['cells'][i]['source'] = 'raise RuntimeError("oops")'
    for who, nb in {'ana': student, 'ben': wrong, 'cem': crashing}.items():
        (tmp_path / who).mkdir()
        write_nb(nb, tmp_path / who / 'a0_add.ipynb')
    other = write_nb(
        tiny_nb("from hybridlat.classroom.assignments import grade\ngrade('A9 other', [('ran', True)])"),
        tmp_path / 'a9.ipynb',
    )
    paths = [SOLUTION, *(tmp_path / who / 'a0_add.ipynb' for who in ['ana', 'ben', 'cem']), other]
    rows = grade_submissions(paths, timeout=120, progress=False)
    assert [r['A0 add'] for r in rows] == [1.0, 0.0, 0.5, 0.0, None]       # a9.ipynb is another assignment
    assert [r['A9 other'] for r in rows] == [None] * 4 + [1.0]
    assert [r['score'] for r in rows] == [1.0, 0.0, 0.5, 0.0, 1.0]
    assert rows[0]['notes'] == '' and 'NotImplementedError' in rows[1]['notes']
    assert 'add(0.5, 0.25) == 0.75: got 0' in rows[2]['notes']
    assert (
        f'cell {i + 1}: RuntimeError: oops' in rows[3]['notes'] and 'A0 add: did not run' in rows[3]['notes']
    )
    table = grades_table(rows).splitlines()
    assert table[0] == '| file | A0 add | A9 other | score | notes |' and len(table) == 7
    assert '/ana/a0_add.ipynb | 0 |  | 0 | A0 add: ✗ implemented' in table[3]


def test_a_notebook_past_its_time_limit_is_stopped(tmp_path):
    nb = tiny_nb(
        "from hybridlat.classroom.assignments import grade\ngrade('A9 early', [('ran', True)])",
        'import time; time.sleep(300)',
    )
    sub = grade_notebook(write_nb(nb, tmp_path / 'slow.ipynb'), timeout=4)
    assert sub.errors == ['stopped after the time limit of 4 s'] and sub.seconds < 20
    assert sub.scores() == {'A9 early': 1.0}  # what it recorded before being stopped counts


def test_grading_needs_no_jupyter_packages(tmp_path, monkeypatch):
    "A teacher's install has no dev extra: the grader must not import execnb or IPython."
    blocker = tmp_path / 'blocked'
    for name in ('execnb', 'IPython'):
        (blocker / name).mkdir(parents=True)
        (blocker / name / '__init__.py').write_text(f"raise ImportError('{name} is not installed')")
    monkeypatch.setenv('PYTHONPATH', str(blocker))
    nb = tiny_nb(
        "from hybridlat.classroom.assignments import grade\ngrade('A9 plain', [('ran', True)])", 'x = 1 / 0'
    )
    sub = grade_notebook(write_nb(nb, tmp_path / 'plain.ipynb'), timeout=120)
    assert sub.scores() == {'A9 plain': 1.0} and sub.errors == ['cell 2: ZeroDivisionError: division by zero']


def test_unreadable_notebook_is_graded_zero(tmp_path):
    bad = tmp_path / 'bad.ipynb'
    bad.write_text('{not json')
    sub = grade_notebook(bad, timeout=60)
    assert sub.score == 0 and 'could not be run' in sub.errors[0]


def test_cli_student_and_grade(tmp_path, capsys):
    assert main(['student', '--src', str(FIXTURES), '-o', str(tmp_path / 'student')]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {tmp_path / 'student' / 'a0_add.ipynb'}"
    assert (
        main(['grade', str(tmp_path / 'student' / 'a0_add.ipynb'), '--json', str(tmp_path / 'grades.json')])
        == 0
    )
    assert '| a0_add.ipynb | 0 | 0 | A0 add: ✗ implemented' in capsys.readouterr().out
    [row] = json.loads((tmp_path / 'grades.json').read_text())
    assert row['A0 add'] == 0 and row['file'].endswith('a0_add.ipynb')
    with pytest.raises(SystemExit, match='no such folder'):
        main(['student', '--src', str(tmp_path / 'x'), '-o', str(tmp_path / 'y')])
    with pytest.raises(SystemExit): main(['grade'])                       # argparse: FILES are required


def test_python_m_reports_missing_files(tmp_path):
    res = subprocess.run(
        [
            sys.executable,
            '-m',
            'hybridlat.classroom.assignments',
            'grade',
            str(tmp_path / 'nope.ipynb'),
            'README.md',
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert res.returncode == 1 and res.stdout == ''
    assert (
        res.stderr.strip()
        == f"hybridlat assignments grade: not a notebook file (.ipynb): {tmp_path / 'nope.ipynb'}, README.md"
    )
