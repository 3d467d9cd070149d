"""A real-browser test of the widgets: JupyterLab on 127.0.0.1, headless system Chromium driven by selenium.

It opens a temporary copy of `nbs/3_explore/34_widgets.ipynb`, runs all cells, moves the 'all' slider of the
first app (the W / W+ explorer) with the keyboard, and checks that the face changed and that neither the
notebook nor the browser console reported an error. A screenshot, the console log and the server log go to
`$HYBRIDLAT_ARTIFACTS` (default `tests/artifacts/`, ignored by git). Skipped when Chromium, chromedriver,
selenium or JupyterLab are missing, except under CI (`CI=true`), where it fails instead."""
import base64
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / 'nbs' / '3_explore' / '34_widgets.ipynb'
ARTIFACTS = Path(os.environ.get('HYBRIDLAT_ARTIFACTS') or REPO / 'tests' / 'artifacts')
CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'
CHROMEDRIVER = shutil.which('chromedriver') or '/usr/bin/chromedriver'
TEST_BUDGET_S = 170          # every wait below shares this budget, so the test ends well under 3 minutes
SLIDER_PRESSES = 20          # arrow-key presses on the 'all' slider: α goes 0 → 2.0 in steps of 0.1
# What ipywidgets 8 / JupyterLab 4 write into an output when a widget or an output fails to render (8's error
# widget only says 'Click to show javascript error.'; the older texts are kept for other widget versions).
WIDGET_ERROR_TEXTS = ('Click to show javascript error', 'Error displaying widget',
                      'Failed to load model class', 'Model not found', 'Error rendering output',
                      'Traceback (most recent call last)')


def missing_tools():
    "What this test needs and cannot find."
    missing = [f'{name} ({path})' for name, path in [('chromium', CHROMIUM), ('chromedriver', CHROMEDRIVER)]
               if not os.access(path, os.X_OK)]
    for module in ('selenium', 'jupyterlab'):
        try: __import__(module)
        except ImportError: missing.append(f'the python package {module}')
    return missing


@pytest.fixture(scope='module')
def tools():
    missing = missing_tools()
    if missing:
        message = 'the browser test needs ' + ', '.join(missing)
        in_ci = os.environ.get('CI', '').lower() in ('true', '1', 'yes')
        if in_ci: pytest.fail(f'{message}; CI must run it (.ci/run installs them)')
        pytest.skip(message)


class Deadline:
    "One time budget shared by all the waits of the test."
    def __init__(self, seconds): self.end = time.monotonic() + seconds

    def wait(self, what, check, poll=0.25, at_most=None):
        "Call `check()` until it returns something truthy (returned) or the budget (or `at_most` s) is spent."
        end = min(self.end, time.monotonic() + at_most) if at_most else self.end
        while True:
            result = check()
            if result: return result
            if time.monotonic() > end: raise TimeoutError(f'timed out waiting for {what}')
            time.sleep(poll)


@pytest.fixture(scope='module')
def deadline(tools): return Deadline(TEST_BUDGET_S)


@pytest.fixture(scope='module')
def workdir():
    with tempfile.TemporaryDirectory(prefix='hybridlat-browser-') as d: yield Path(d)


def lab_settings(settings_dir):
    "User settings that keep JupyterLab quiet and offline, and keep every cell attached to the page."
    settings = {'apputils-extension/notification': {'fetchNews': 'false', 'checkForUpdates': False,
                                                     'doNotDisturbMode': True},
                'notebook-extension/tracker': {'windowingMode': 'none'}}
    for name, values in settings.items():
        path = settings_dir / '@jupyterlab' / f'{name}.jupyterlab-settings'
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def stop_process_tree(proc, timeout=20):
    "SIGTERM `proc` (the server stops its kernels) and wait; then SIGKILL it and any child still alive."
    import psutil
    try: children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess: children = []
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try: proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    _, alive = psutil.wait_procs(children, timeout=5)
    for child in alive:
        try: child.kill()
        except psutil.NoSuchProcess: pass


@pytest.fixture(scope='module')
def lab(deadline, workdir):
    "A JupyterLab server on 127.0.0.1 (a free port, no token), its root a temp dir with the notebook in it."
    root, jupyter = workdir / 'root', workdir / 'jupyter'
    root.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    dirs = {name: jupyter / name for name in ('config', 'data', 'runtime', 'settings', 'workspaces')}
    for d in dirs.values(): d.mkdir(parents=True)
    lab_settings(dirs['settings'])
    # The kernel is the notebook's `python3`: with the data dir in the temp dir, that is the venv's own
    # kernelspec, whose argv 'python' jupyter_client turns into this very interpreter (which has hybridlat).
    env = {**os.environ, 'JUPYTER_CONFIG_DIR': str(dirs['config']), 'JUPYTER_DATA_DIR': str(dirs['data']),
           'JUPYTER_RUNTIME_DIR': str(dirs['runtime']), 'JUPYTERLAB_SETTINGS_DIR': str(dirs['settings']),
           'JUPYTERLAB_WORKSPACES_DIR': str(dirs['workspaces']), 'JUPYTER_PLATFORM_DIRS': '1',
           'OMP_NUM_THREADS': '1', 'MPLBACKEND': 'Agg'}
    env.pop('JUPYTER_PATH', None)
    log_path = workdir / 'jupyterlab.log'
    cmd = [sys.executable, '-m', 'jupyterlab', '--no-browser', '--ip=127.0.0.1', '--port=0',
           '--ServerApp.port_retries=0', '--IdentityProvider.token=', '--ServerApp.password=',
           f'--ServerApp.root_dir={root}', '--ServerApp.open_browser=False', '--LabApp.news_url=None',
           '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate',
           '--LabApp.extension_manager=readonly',
           '--LabApp.expose_app_in_browser=True', '--ServerApp.terminals_enabled=False', '--allow-root']
    with open(log_path, 'w') as log:
        server = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    try:
        def server_url():
            if server.poll() is not None:
                log_tail = log_path.read_text()[-3000:]
                raise RuntimeError(f'jupyter lab exited with {server.returncode}:\n{log_tail}')
            infos = list(dirs['runtime'].glob(f'jpserver-{server.pid}.json'))
            return infos and json.loads(infos[0].read_text())['url'].rstrip('/')
        url = deadline.wait('the JupyterLab server to start', server_url, poll=0.5)
        assert url.startswith('http://127.0.0.1:'), f'the server must listen on 127.0.0.1 only, it says {url}'
        yield dict(url=url, log=log_path, root=root)
    finally:
        stop_process_tree(server)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(log_path, ARTIFACTS / 'browser_jupyterlab.log')


@pytest.fixture(scope='module')
def driver(tools, workdir):
    "Headless system Chromium through the system chromedriver: no Selenium Manager, no downloads."
    os.environ.setdefault('SE_OFFLINE', 'true')
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu',
                '--window-size=1400,1000', '--no-first-run', '--no-default-browser-check',
                '--disable-extensions', '--disable-sync', '--disable-background-networking',
                '--disable-component-update',
                '--no-proxy-server', f'--user-data-dir={workdir / "chromium"}'):
        options.add_argument(arg)
    options.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
    service = Service(executable_path=CHROMEDRIVER, log_output=str(workdir / 'chromedriver.log'))
    browser = webdriver.Chrome(options=options, service=service)
    browser.set_script_timeout(30)
    browser.set_page_load_timeout(60)
    try: yield browser
    finally: browser.quit()


# JavaScript run in the page through `window.jupyterapp` (exposed by --LabApp.expose_app_in_browser).
NOTEBOOK_JS = """
const app = window.jupyterapp;
const panel = app && app.shell.currentWidget;
const opened = panel && panel.sessionContext && panel.content && panel.context;
if (!opened || panel.context.path !== arguments[0]) return null;
"""
KERNEL_READY_JS = NOTEBOOK_JS + """
const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
return panel.context.isReady && kernel && kernel.status === 'idle' ? kernel.name : null;
"""
RUN_ALL_JS = NOTEBOOK_JS + "window.jupyterapp.commands.execute('notebook:run-all-cells'); return true;"
CELLS_JS = NOTEBOOK_JS + """
const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
const cells = [];
for (const cell of panel.content.model.cells) {
  if (cell.type !== 'code') continue;
  cells.push({count: cell.executionCount, outputs: cell.outputs.toJSON()});
}
return {kernel: kernel ? kernel.status : 'none', cells: cells};
"""
OUTPUT_TEXTS_JS = """
const errorWidgets = document.querySelectorAll('.jupyter-widgets-error-widget').length;
const texts = Array.from(document.querySelectorAll('.jp-OutputArea-output'), o => o.textContent);
return errorWidgets ? [...texts, 'Click to show javascript error (an ipywidgets error widget)'] : texts;
"""
IMAGE_BYTES_JS = """
const done = arguments[arguments.length - 1];
fetch(arguments[0].src).then(r => r.arrayBuffer()).then(buffer => {
  let text = '';
  for (const byte of new Uint8Array(buffer)) text += String.fromCharCode(byte);
  done(btoa(text));
}).catch(e => done('ERROR ' + e));
"""


def notebook_errors(state):
    "Error outputs of the notebook's code cells, as 'ename: evalue' lines."
    return [f"{o.get('ename')}: {o.get('evalue')}" for c in state['cells'] for o in c['outputs']
            if o.get('output_type') == 'error']


def run_all_cells(browser, deadline, name):
    "Run all cells from the notebook's menu command; return the cells' state once every code cell has run."
    browser.execute_script(RUN_ALL_JS, name)
    def finished():
        state = browser.execute_script(CELLS_JS, name)
        errors = notebook_errors(state)
        assert not errors, f'the notebook raised in the browser: {errors}'
        done = state['kernel'] == 'idle' and all(c['count'] is not None for c in state['cells'])
        return done and state
    return deadline.wait('all cells of the notebook to run', finished, poll=0.5)


def image_pixels(browser, image):
    "The decoded pixels [H, W, 3] of an <img> of an ipywidgets Image (its blob: URL fetched in the page)."
    data = browser.execute_async_script(IMAGE_BYTES_JS, image)
    assert not data.startswith('ERROR'), f'could not read the face image in the page: {data}'
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert('RGB'))


def slider_named(app, label):
    "The slider of `app` whose description is `label`."
    from selenium.webdriver.common.by import By
    for slider in app.find_elements(By.CSS_SELECTOR, '.widget-slider'):
        labels = slider.find_elements(By.CSS_SELECTOR, '.widget-label')
        if labels and labels[0].get_attribute('textContent').strip() == label: return slider
    return None


def save_screenshot(browser, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    browser.save_screenshot(str(path))
    print(f'screenshot: {path}')
    return path


def console_entries(browser):
    "The browser console log so far (selenium hands each entry out once), also appended to the artifacts."
    entries = browser.get_log('browser')
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with open(ARTIFACTS / 'browser_console.log', 'a') as log:
        for e in entries: log.write(f"{e['level']} {e['message']}\n")
    return entries


def test_widgets_in_jupyterlab(lab, driver, deadline):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    started = time.monotonic()
    name = NOTEBOOK.name
    (ARTIFACTS / 'browser_console.log').unlink(missing_ok=True)
    driver.get(f"{lab['url']}/lab/tree/{name}")
    try:
        kernel = deadline.wait('the notebook to open with an idle kernel',
                               lambda: driver.execute_script(KERNEL_READY_JS, name))
        assert kernel == 'python3', f'the notebook should run on the python3 kernel, it got {kernel!r}'
        run_all_cells(driver, deadline, name)

        def first_app():
            apps = [a for a in driver.find_elements(By.CSS_SELECTOR, '.jp-OutputArea-output .widget-hbox')
                    if slider_named(a, 'all') and a.find_elements(By.CSS_SELECTOR, 'img.widget-image')]
            return apps and apps[0]
        app = deadline.wait('the W+ explorer widget to render', first_app, at_most=30)
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", app)
        image = app.find_element(By.CSS_SELECTOR, 'img.widget-image')
        before_src, before = image.get_attribute('src'), image_pixels(driver, image)
        assert before.shape == (256, 256, 3), f'the face should be a 256² image, it is {before.shape}'
        assert before.std() > 10, 'the face image before moving the slider is blank'

        slider = slider_named(app, 'all')
        handle = slider.find_element(By.CSS_SELECTOR, '.noUi-handle')
        driver.execute_script('arguments[0].focus()', handle)
        for _ in range(SLIDER_PRESSES): handle.send_keys(Keys.ARROW_RIGHT)
        readout = slider.find_element(By.CSS_SELECTOR, '.widget-readout')
        expected = f'{SLIDER_PRESSES * 0.1:.2f}'
        deadline.wait(f'the slider to read {expected}',
                      lambda: readout.get_attribute('textContent').strip() == expected, at_most=10)

        def settled_src():
            "The image's src once the kernel is idle and the src has changed and stayed put for a second."
            src = image.get_attribute('src')
            if src == before_src or driver.execute_script(CELLS_JS, name)['kernel'] != 'idle': return None
            time.sleep(1)
            return src if image.get_attribute('src') == src else None
        deadline.wait('the face to change after moving the slider', settled_src, poll=0.5, at_most=60)
        after = image_pixels(driver, image)
        changed = (np.abs(after.astype(int) - before.astype(int)).max(-1) > 16).mean()
        assert changed > 0.05, f'moving the slider changed only {changed:.1%} of the face pixels'

        outputs = driver.execute_script(OUTPUT_TEXTS_JS)
        widget_errors = sorted({text for o in outputs for text in WIDGET_ERROR_TEXTS if text in o})
        assert not widget_errors, f'the notebook shows widget errors: {widget_errors}'
        errors = notebook_errors(driver.execute_script(CELLS_JS, name))
        assert not errors, f'moving the slider raised in the kernel: {errors}'
        severe = [e['message'] for e in console_entries(driver) if e['level'] == 'SEVERE']
        assert not severe, f'the browser console has errors: {severe}'
        took = time.monotonic() - started
        print(f'face pixels changed: {changed:.1%}; the browser part of the test took {took:.0f} s')
    finally:
        save_screenshot(driver, 'browser_widgets.png')
        console_entries(driver)
