"""The `hybridlat` command follows command-line conventions: fast help, defaults shown, required options
listed as required, and one-line errors with the right install command when a package is missing."""
import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hybridlat.cli import (build_parser, install_command, missing_module, missing_module_message,
                           source_checkout)

HYBRIDLAT = Path(sys.executable).parent / 'hybridlat'
DATA = Path(__file__).resolve().parents[2] / 'shared' / 'data'
BLOCKER = '''import sys
BLOCKED = set(__import__('os').environ['BLOCK_MODULES'].split(','))
class Block:
    "Makes the blocked modules look uninstalled."
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in BLOCKED: raise ModuleNotFoundError(f'No module named {name!r}', name=name)
sys.meta_path.insert(0, Block())
'''


def command_parsers(parser, words=()):
    "(words, parser) for the parser and every subcommand below it, e.g. (('assignments', 'grade'), parser)."
    yield words, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items(): yield from command_parsers(sub, (*words, name))


COMMANDS = [words for words, _ in command_parsers(build_parser())]


def run_hybridlat(*args, cwd, env=None):
    "The console script as a user runs it (or `python -c main()` when the script is not installed)."
    code = 'import sys; from hybridlat.cli import main; sys.exit(main())'
    head = [str(HYBRIDLAT)] if HYBRIDLAT.exists() else [sys.executable, '-c', code]
    return subprocess.run([*head, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


def test_every_command_is_covered():
    assert {('demo',), ('reenact',), ('assignments', 'student'), ('assignments', 'grade')} <= set(COMMANDS)


def test_the_parser_is_built_without_torch():
    "The robust form of 'help in under a second': building the whole parser imports neither torch nor numpy."
    code = ("import sys; from hybridlat.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'numpy', 'hybridlat.reenactment.reenact') if m in "
            "sys.modules))")
    res = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == '[]'


@pytest.mark.parametrize('words', COMMANDS, ids=lambda w: ' '.join(w) or 'hybridlat')
def test_help_of_every_command_needs_no_torch(words, tmp_path):
    code = ("import sys\nfrom hybridlat.cli import main\n"
            "try: main(sys.argv[1:])\nfinally: print('torch imported:', 'torch' in sys.modules)")
    res = subprocess.run([sys.executable, '-c', code, *words, '--help'], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"usage: hybridlat {' '.join(words)}".rstrip())
    assert 'torch imported: False' in res.stdout


@pytest.mark.parametrize('words', COMMANDS, ids=lambda w: ' '.join(w) or 'hybridlat')
def test_help_shows_defaults_and_lists_required_options_as_required(words):
    parser = dict(command_parsers(build_parser()))[words]
    text = parser.format_help()
    for action in parser._actions:
        if not action.option_strings or action.default is argparse.SUPPRESS: continue
        if action.required:
            assert 'required arguments' in text, text
            group = next(g for g in parser._action_groups if action in g._group_actions)
            assert group.title == 'required arguments', action.option_strings
        elif not (action.default is None or action.default is False or action.default == []):
            help_string = parser._get_formatter()._get_help_string(action) or ''
            assert 'default' in help_string, action.option_strings
    assert '(default: None)' not in text and '(default: False)' not in text


def test_demo_help_shows_its_defaults():
    text = dict(command_parsers(build_parser()))[('demo',)].format_help()
    assert '(default: demo_out)' in text and '(default: 0)' in text


def test_reenact_parser_matches_the_reenact_module():
    "Until 43_reenact builds its parser from `cli.add_reenact_arguments`, the two must say the same."
    from hybridlat.reenactment.reenact import EDIT_LIMIT, build_reenact_parser
    describe = lambda p: sorted((a.dest, tuple(a.option_strings), repr(a.default), a.required, repr(a.type))
                                for a in p._actions if a.dest != 'help')
    ours = dict(command_parsers(build_parser()))[('reenact',)]
    assert describe(ours) == describe(build_reenact_parser())
    assert f'≤ {EDIT_LIMIT:g})' in ours.format_help()


def test_install_commands_for_checkouts_and_pip_installs(tmp_path):
    site = tmp_path / 'site-packages' / 'hybridlat'
    site.mkdir(parents=True)
    assert source_checkout(site) is None                               # installed from the index
    assert source_checkout() is not None                               # these tests run in the repository
    assert install_command('faces') == 'pip install "hybridlat[faces]"'
    assert install_command('faces', checkout=Path.cwd()) == 'pip install -e ".[faces]"'
    assert install_command(None, checkout=tmp_path) == f'pip install -e "." (in {tmp_path})'
    assert 'dlib' in missing_module_message('dlib') and "'faces' extra" in missing_module_message('dlib')
    hinted = ImportError("faces need dlib: pip install 'hybridlat[faces]'")
    hinted.__cause__ = ModuleNotFoundError("No module named 'dlib'", name='dlib')
    assert missing_module(hinted) == 'dlib' and missing_module(ImportError('something else')) is None


@pytest.fixture
def blocker(tmp_path):
    "A folder with a sitecustomize that makes the modules in $BLOCK_MODULES look uninstalled."
    folder = tmp_path / 'block'
    folder.mkdir()
    (folder / 'sitecustomize.py').write_text(BLOCKER)
    return folder


@pytest.mark.parametrize('module', ['dlib', 'face_recognition_models'])
def test_reenact_without_the_faces_extra_ends_in_one_line(module, blocker, tmp_path):
    portrait, clip = DATA / 'portraits' / 'lia_vox_taylor.png', next((DATA / 'videos').glob('*.mp4'), None)
    if not portrait.is_file() or clip is None: pytest.skip(f'real data not found at {DATA}')
    env = dict(PYTHONPATH=str(blocker), BLOCK_MODULES=module)
    repo = source_checkout()
    res = run_hybridlat('reenact', portrait, clip, '-o', tmp_path / 'out.mp4', cwd=repo, env=env)
    assert res.returncode == 1, res.stderr
    assert res.stderr.count('\n') == 1 and 'Traceback' not in res.stderr, res.stderr
    assert res.stderr.startswith('hybridlat reenact: ') and module.split('_')[0] in res.stderr
    assert res.stderr.strip().endswith('pip install -e ".[faces]"'), res.stderr
    assert not (tmp_path / 'out.mp4').exists()
    elsewhere = run_hybridlat('reenact', portrait, clip, '-o', tmp_path / 'out.mp4', cwd=tmp_path, env=env)
    assert f'pip install -e ".[faces]" (in {repo})' in elsewhere.stderr    # elsewhere: says where to run it


def test_demo_without_pyav_ends_in_one_line_before_any_work(blocker, tmp_path):
    res = run_hybridlat('demo', '-o', tmp_path / 'out', cwd=tmp_path, env=dict(PYTHONPATH=str(blocker),
                                                                               BLOCK_MODULES='av'))
    assert res.returncode == 1, res.stderr
    assert res.stderr.count('\n') == 1 and 'Traceback' not in res.stderr, res.stderr
    assert res.stderr.startswith('hybridlat demo: av (PyAV) is not installed')
    assert 'pip install -e "."' in res.stderr
    assert not (tmp_path / 'out').exists()


def test_help_through_the_console_script(tmp_path):
    if not HYBRIDLAT.exists(): pytest.skip('the hybridlat script is not installed in this environment')
    res = run_hybridlat('reenact', '--help', cwd=tmp_path)
    assert res.returncode == 0 and 'required arguments:' in res.stdout
