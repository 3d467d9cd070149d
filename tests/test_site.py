"""The offline site: the whole curriculum builds into pages that need no internet, assignments appear only as
student copies, widgets and plotly degrade to what a static page can show, and the teacher's guide table is
up to date."""
import html
import json
import re
from pathlib import Path

import pytest

from hybridlat.classroom.assignments import student_copy
from hybridlat.classroom.site import (
    PLOTLY,
    WIDGET,
    build_site,
    check_site,
    curriculum,
    guide_table,
    main,
    outputs_problems,
    picture_count,
    teachers_guide_table,
)

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / 'nbs'


def _text(page):
    "What a reader sees: the page without tags, entities decoded (pygments splits code into many spans)."
    return html.unescape(re.sub(r'<[^>]+>', '', page))


def _links(page): return set(re.findall(r'<a [^>]*href="([^"#]+)', page))


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    return build_site(tmp_path_factory.mktemp('site') / '_site', NBS, progress=False)


def test_full_site_is_offline_and_complete(site):
    assert check_site(site.out) == []
    assert site.warnings == []
    pages = {p.name for p in site.out.glob('*.html')} - {'index.html'}
    lessons, assignments = curriculum(NBS), sorted((NBS / 'assignments').glob('*.ipynb'))
    assert {f'{p.stem}.html' for p in lessons} | {f'assignment_{p.stem}.html' for p in assignments} <= pages
    assert {'readme.html', 'teachers_guide.html', 'benchmark.html'} <= pages
    index = (site.out / 'index.html').read_text(encoding='utf-8')
    assert pages <= _links(index)                                        # the index links every page
    for page in site.out.glob('*.html'):
        text = page.read_text(encoding='utf-8')
        assert not re.search(r'<(script|link|img)[^>]+(src|href)="(https?:)?//', text), page.name
        assert 'href="index.html">Contents</a>' in text, page.name       # the shared nav bar


def test_lessons_are_saved_with_the_outputs_of_their_code():
    """Every lesson carries outputs made by its current code (`python -m hybridlat.classroom.site outputs`
    refreshes them)."""
    assert outputs_problems(curriculum(NBS)) == []


def _pictures_shown(page):
    "Pictures a page shows: images (inline or files) and plotly figures."
    return len(re.findall(r'<img\b', page)) + page.count('Plotly.newPlot(')


def test_lesson_pages_show_every_picture_their_notebook_makes(site):
    total = 0
    for path in curriculum(NBS):
        made = picture_count(json.loads(path.read_text(encoding='utf-8')))
        shown = _pictures_shown((site.out / f'{path.stem}.html').read_text(encoding='utf-8'))
        assert shown >= made, f'{path.name}: its page shows {shown} pictures, the notebook has {made}'
        total += made
    assert total >= 2 * len(curriculum(NBS)), f'only {total} pictures in all the lessons: outputs missing?'


def test_saved_outputs_stay_small():
    "Saved outputs are pictures a reader needs, not megabytes: each lesson file stays under 2 MB."
    sizes = {p.name: p.stat().st_size for p in curriculum(NBS)}
    assert max(sizes.values()) < 2_000_000, max(sizes.items(), key=lambda kv: kv[1])


def test_index_lists_curriculum_in_order_with_summaries(site):
    index = (site.out / 'index.html').read_text(encoding='utf-8')
    order = [index.index(f'href="{p.stem}.html"') for p in curriculum(NBS)]
    assert order == sorted(order)
    assert index.index('href="21_gan_data.html"') < index.index('href="23_train_gan.html"')
    assert '<h2>1. Foundations: StyleGAN2 from scratch</h2>' in index and '<h2>Assignments</h2>' in index
    assert 'float tensors in [-1, 1]' in _text(index)                   # 00_images' summary


def _solution_lines(nb):
    """Lines of a solution notebook that exist only in the solution: inside markers, or in `#| solution_only`
    cells."""
    lines = []
    for cell in nb['cells']:
        src = ''.join(cell['source']) if isinstance(cell['source'], list) else cell['source']
        if src.lstrip().startswith('#| solution_only'): lines += src.splitlines()[1:]
        lines += [
            l
            for block in re.findall(r'### BEGIN SOLUTION(.*?)### END SOLUTION', src, re.S | re.I)
            for l in block.splitlines()
        ]
        lines += [
            l
            for block in re.findall(r'<!-- BEGIN SOLUTION -->(.*?)<!-- END SOLUTION -->', src, re.S | re.I)
            for l in block.splitlines()
        ]
    student = '\n'.join(
        ''.join(c['source']) if isinstance(c['source'], list) else c['source']
        for c in student_copy(nb)['cells']
    )
    return [l.strip() for l in lines if len(l.strip()) >= 12 and l.strip() not in student]


def test_assignment_pages_are_student_copies(site):
    paths = sorted((NBS / 'assignments').glob('*.ipynb'))
    assert paths, 'no assignment notebooks in nbs/assignments'
    for path in paths:
        nb = json.loads(path.read_text(encoding='utf-8'))
        secret = _solution_lines(nb)
        assert secret, f'{path.name}: found no solution lines to look for'
        text = _text((site.out / f'assignment_{path.stem}.html').read_text(encoding='utf-8'))
        assert 'BEGIN SOLUTION' not in text and "raise NotImplementedError('write your code here')" in text
        leaked = [l for l in secret if l in text]
        assert leaked == [], f'{path.name}: solution text on the site: {leaked[:3]}'


def test_teachers_guide_table_is_up_to_date():
    guide = (ROOT / 'docs' / 'teachers_guide.md').read_text(encoding='utf-8')
    assert guide_table(guide) == teachers_guide_table(NBS), 'run: python -m hybridlat.classroom.site guide'
    times = json.loads((ROOT / 'docs' / 'notebook_times.json').read_text(encoding='utf-8'))
    assert {'cores', 'cpu', 'torch', 'load_average_before'} <= set(times['machine']) and times['how']
    assert all(r['seconds'] is None or r['seconds'] > 0 for r in times['notebooks'])
    assert {p.name for p in curriculum(NBS)} & {r['notebook'] for r in times['notebooks']}


# A small project of its own: one lesson with widget and plotly outputs, one assignment, a guide with a
# picture.
def _cell(kind, src, outputs=None):
    cell = {'cell_type': kind, 'metadata': {}, 'source': src}
    return cell | ({'execution_count': 1, 'outputs': outputs or []} if kind == 'code' else {})


def _out(data): return {'output_type': 'display_data', 'metadata': {}, 'data': data}


def _nb(cells): return {'nbformat': 4, 'nbformat_minor': 4, 'metadata': {}, 'cells': cells}


@pytest.fixture
def project(tmp_path):
    view = {'version_major': 2, 'version_minor': 0, 'model_id': 'abc'}
    lesson = _nb(
        [
            _cell('markdown', '# Toy lesson\n> Widgets and plots.'),
            _cell('code', 'slider', [_out({'text/plain': 'IntSlider(value=3)', WIDGET: view})]),
            _cell(
                'code',
                'image_widget',
                [_out({'text/plain': 'Image()', 'image/png': 'iVBORw0KGgo=', WIDGET: view})],
            ),
            _cell('code', 'fig', [_out({PLOTLY: {'data': [{'type': 'bar', 'y': [1, 2]}], 'layout': {}}})]),
            _cell('markdown', 'Next: [the assignment](assignments/a1_toy.ipynb).'),
        ]
    )
    assignment = _nb(
        [
            _cell('markdown', '# A1 toy\n> Double a number.'),
            _cell(
                'code',
                'def double(x):\n    ### BEGIN SOLUTION\n    return x * 2  # the secret answer\n    ### END '
                'SOLUTION',
            ),
            _cell(
                'markdown',
                'Why? <!-- BEGIN SOLUTION -->Because two is the secret factor.<!-- END SOLUTION -->',
            ),
            _cell('code', '#| solution_only\nassert double(21) == 42  # teacher only check'),
        ]
    )
    (tmp_path / 'nbs' / 'assignments').mkdir(parents=True)
    (tmp_path / 'nbs' / '00_toy.ipynb').write_text(json.dumps(lesson))
    (tmp_path / 'nbs' / 'assignments' / 'a1_toy.ipynb').write_text(json.dumps(assignment))
    part = _nb([_cell('markdown', '# Part one\n> In a part folder.\n\nBack to [the toy](../00_toy.ipynb).')])
    (tmp_path / 'nbs' / '1_part').mkdir()
    (tmp_path / 'nbs' / '1_part' / '10_part.ipynb').write_text(json.dumps(part))
    (tmp_path / 'docs' / 'pics').mkdir(parents=True)
    (tmp_path / 'docs' / 'pics' / 'x.png').write_bytes(
        (ROOT / 'docs' / 'faces128' / 'samples.png').read_bytes()
    )
    (tmp_path / 'docs' / 'guide.md').write_text(
        '# Guide\n\nA picture: ![x](pics/x.png) and [the lesson](../nbs/00_toy.ipynb).\n'
    )
    (tmp_path / 'README.md').write_text('# Toy kit\n\nRead [the guide](docs/guide.md).\n')
    return tmp_path


def test_widgets_and_plotly_degrade_and_files_are_copied(project):
    out = project / '_site'
    assert main(['-o', str(out), '--nbs', str(project / 'nbs')]) == 0  # builds, and check_site finds nothing
    page = (out / '00_toy.html').read_text(encoding='utf-8')
    assert WIDGET not in page and 'model_id' not in page
    assert 'data:image/png;base64,iVBORw0KGgo=' in page                 # the widget's static picture
    assert 'Interactive widget <code>IntSlider(value=3)</code>' in page  # a widget with only its repr: a note
    assert '<script src="assets/plotly.min.js"></script>' in page and 'Plotly.newPlot("plotly-0"' in page
    assert (out / 'assets' / 'plotly.min.js').stat().st_size > 1e6
    assert 'href="assignment_a1_toy.html"' in page                      # notebook links point at pages
    guide = (out / 'guide.html').read_text(encoding='utf-8')
    assert 'src="files/docs/pics/x.png"' in guide and (out / 'files' / 'docs' / 'pics' / 'x.png').is_file()
    assert 'href="00_toy.html"' in guide and 'href="guide.html"' in (out / 'readme.html').read_text(
        encoding='utf-8'
    )
    part = (out / '10_part.html').read_text(encoding='utf-8')              # a lesson in a part folder
    assert 'href="00_toy.html"' in part and 'href="10_part.html"' in (out / 'index.html').read_text()
    student = _text((out / 'assignment_a1_toy.html').read_text(encoding='utf-8'))
    assert 'secret' not in student and 'teacher only' not in student and 'write your code here' in student


def test_rebuild_replaces_site_and_refuses_other_folders(project):
    out = project / '_site'
    build_site(out, project / 'nbs', progress=False)
    (out / 'stale.html').write_text('<p>old</p>')
    build_site(out, project / 'nbs', progress=False)
    assert not (out / 'stale.html').exists() and check_site(out) == []
    assert not [p for p in project.iterdir() if p.name.startswith('._site')]   # no temporary folders left
    with pytest.raises(ValueError, match='not a site built by hybridlat.classroom.site'):
        build_site(project / 'docs', project / 'nbs', progress=False)
    assert (project / 'docs' / 'guide.md').exists()


def test_check_site_finds_what_breaks_offline(project):
    out = project / '_site'
    build_site(out, project / 'nbs', progress=False)
    (out / 'orphan.html').write_text('<p>no link here</p>')
    page = out / 'guide.html'
    page.write_text(
        page.read_text()
        .replace('</head>', '<script src="https://cdn.example.org/m.js"></script></head>')
        .replace('src="files/docs/pics/x.png"', 'src="files/missing.png"')
    )
    problems = check_site(out)
    assert len(problems) == 3, problems
    assert any('orphan.html: not reachable' in p for p in problems)
    assert any('cdn.example.org' in p for p in problems) and any('files/missing.png' in p for p in problems)
