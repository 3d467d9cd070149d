"""The benchmark's command line: `python -m hybridlat.bench` runs, prints the table and writes JSON; bad input
fails early."""
import json, os, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]

def run_bench(*args, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get('PYTHONPATH', ''))
    return subprocess.run(
        [sys.executable, '-m', 'hybridlat.bench', *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )

def test_module_runs_and_writes_json(tmp_path):
    out = tmp_path / 'sub' / 'results.json'
    r = run_bench(
        '--resolutions',
        '16',
        '32',
        '--batches',
        '1',
        '2',
        '--repeats',
        '1',
        '--no-small',
        '--out',
        str(out),
        tmp_path=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert '| config-f-32 |' in r.stdout and 'GFLOP/s' in r.stdout
    res = json.loads(out.read_text())
    assert [(row['config'], row['batch']) for row in res['rows']] == [('config-f-16', 1), ('config-f-16', 2),
                                                                       ('config-f-32', 1), ('config-f-32', 2)]
    assert len(res['matmul_gflops_runs']) == 3 and res['matmul_gflops'] > 0
    for row in res['rows']:
        assert row['sec_per_image'] > 0 and row['gmac_per_image'] > 0
        assert row['matmul_fraction'] == pytest.approx(row['gflops'] / res['matmul_gflops'])
    assert not [p for p in out.parent.iterdir() if p.name.startswith('.')]  # no temporary file left behind

@pytest.mark.parametrize('args, message', [(['--resolutions', '48'], 'powers of two'),
                                            (['--batches', '0'], '--batches'),
                                            (['--repeats', '0'], '--repeats'),
                                            (['--device', 'tpu'], '--device')])
def test_bad_arguments_fail_before_any_work(tmp_path, args, message):
    r = run_bench(*args, tmp_path=tmp_path)
    assert r.returncode == 2 and message in r.stderr and 'GFLOP/s' not in r.stdout

def test_library_counts_match_flop_counter():
    import torch
    from hybridlat.bench import counted_macs, generator_macs
    from hybridlat.stylegan2.generator import Generator
    G = Generator(z_dim=16, w_dim=16, img_resolution=64, mapping_kwargs=dict(num_layers=2),
                  synthesis_kwargs=dict(channel_base=256, channel_max=8))  # conv0 inputs from 4² to 32²
    assert counted_macs(G, 2) == 2 * generator_macs(G)
    assert set(generator_macs(G, breakdown=True)) == {
        'mapping',
        'affine',
        'conv',
        'conv_up',
        'fir',
        'torgb',
        'skip_up',
    }


def test_no_cuda_gpu_fails_in_one_line(tmp_path):
    import torch
    if torch.cuda.is_available(): pytest.skip('this machine has a CUDA GPU')
    r = run_bench('--device', 'cuda', tmp_path=tmp_path)
    assert r.returncode == 2 and 'no CUDA GPU' in r.stderr and 'Traceback' not in r.stderr


def test_every_timed_tensor_is_on_the_benchmarked_device():
    # the 'meta' device stands in for a GPU on a CPU-only machine: a tensor left on the CPU is refused there
    from hybridlat.bench import run_benchmark
    res = run_benchmark(resolutions=(16,), batches=(2,), repeats=1, small=False, mm_size=32, progress=False,
                        device='meta')
    assert res['device'] == 'meta' and [r['batch'] for r in res['rows']] == [2]
