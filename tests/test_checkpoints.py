"""Checkpoint loading (hybridlat.stylegan2.checkpoints): every format written here from known weights, then
loaded in a fresh state.

NVIDIA and TF-era pickles are made with fake `torch_utils.persistence` / `dnnlib` modules that exist only
while writing (a user's machine has no NVIDIA code). rosinality checkpoints are renamed by hand here,
independently of the loader's table, and checked against an independent plain-torch forward pass with
rosinality's semantics."""
import argparse, contextlib, math, pickle, sys, types, zipfile
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hybridlat.stylegan2.checkpoints import (
    CheckpointError,
    UnsafeCheckpointError,
    estimate_w_avg,
    load_generator,
    load_nvidia_pkl,
    load_rosinality,
    pickle_globals,
    save_generator,
    sniff_checkpoint,
)
from hybridlat.stylegan2.generator import Generator

TINY = dict(z_dim=64, w_dim=64, img_resolution=32, mapping_kwargs=dict(num_layers=2),
            synthesis_kwargs=dict(channel_base=1024, channel_max=64))          # channels 64, 64, 64, 32


@pytest.fixture(autouse=True)
def no_grad():
    "These tests only run forward passes; keep the grad mode change inside each test."
    with torch.no_grad(): yield


def known_generator(seed=0, **overrides):
    """A tiny generator whose every tensor (noise strengths, w_avg, noise maps included) is away from its
    initial value."""
    torch.manual_seed(seed)
    kwargs = {**TINY, **overrides}
    G = Generator(**kwargs).eval()
    for name, t in G.state_dict().items():
        if 'resample_filter' not in name:
            t.add_(torch.randn_like(t) * (0.5 if 'noise_strength' in name or 'w_avg' in name else 0.1))
    return G


def mixed_ws(G, n=3):
    "W+ latents that differ per layer, so a wrong w → layer assignment shows."
    ws = G.sample_ws(range(n))
    return ws + 0.3 * torch.randn(ws.shape, generator=torch.Generator().manual_seed(7))


def assert_same_generator(loaded, source):
    assert not loaded.training
    sd = loaded.state_dict()
    assert list(sd) == list(source.state_dict())
    for k, v in source.state_dict().items(): assert torch.equal(sd[k], v), k
    ws = mixed_ws(source)
    torch.testing.assert_close(loaded.synthesis(ws), source.synthesis(ws), rtol=0, atol=1e-6)


# ------------------------------------------------------------------ fake NVIDIA code (only while writing)
@contextlib.contextmanager
def nvidia_modules():
    persistence, util, tfnet = (
        types.ModuleType(n) for n in ('torch_utils.persistence', 'dnnlib.util', 'dnnlib.tflib.network')
    )
    def _reconstruct_persistent_obj(meta):
        raise AssertionError("NVIDIA's reconstruct function must never be called")
    class EasyDict(dict): pass
    class Network:
        def __init__(self, state): self._state = state
        def __getstate__(self): return self._state
    for obj, mod in ((_reconstruct_persistent_obj, persistence), (EasyDict, util), (Network, tfnet)):
        obj.__module__, obj.__qualname__ = mod.__name__, obj.__name__
        setattr(mod, obj.__name__, obj)
    mods = {
        'torch_utils': types.ModuleType('torch_utils'),
        'torch_utils.persistence': persistence,
        'dnnlib': types.ModuleType('dnnlib'),
        'dnnlib.util': util,
        'dnnlib.tflib': types.ModuleType('dnnlib.tflib'),
        'dnnlib.tflib.network': tfnet,
    }
    assert not any(m in sys.modules for m in mods)
    sys.modules.update(mods)
    try:
        yield types.SimpleNamespace(
            reconstruct=_reconstruct_persistent_obj, EasyDict=EasyDict, Network=Network
        )
    finally:
        for m in mods:
            sys.modules.pop(m, None)


class Persisted:
    def __init__(self, fn, meta): self.fn, self.meta = fn, meta
    def __reduce__(self): return (self.fn, (self.meta,))


def persist(nv, module, src, init_kwargs=None):
    """NVIDIA persistence layout: meta with module_src, class_name and the __dict__ state (floats as
    np.float64, as NVIDIA's)."""
    state = {k: (np.float64(v) if isinstance(v, float) else v) for k, v in module.__dict__.items()}
    state['_modules'] = {k: persist(nv, m, src) for k, m in module._modules.items()}
    state['_init_args'], state['_init_kwargs'] = (), dict(init_kwargs or {})
    return Persisted(
        nv.reconstruct,
        dict(type='class', version=6, module_src=src, class_name=type(module).__name__, state=state),
    )


def record(nv, class_name, **children):
    return Persisted(
        nv.reconstruct,
        dict(
            type='class',
            version=6,
            module_src='',
            class_name=class_name,
            state=dict(_modules=children, _parameters={}, _buffers={}, _init_kwargs={}),
        ),
    )


def write_nvidia_pkl(path, G_ema, G_train, marker, stylegan3_repo=False):
    """A network-snapshot pickle as stylegan2-ada-pytorch (or the stylegan3 repo, flattened synthesis kwargs)
    writes it."""
    src = f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n"
    with nvidia_modules() as nv:
        E = nv.EasyDict
        synthesis = E(channel_base=1024, channel_max=64, num_fp16_res=4, conv_clamp=256)
        kw = dict(
            z_dim=64, c_dim=0, w_dim=64, img_resolution=32, img_channels=3, mapping_kwargs=E(num_layers=2)
        )
        if stylegan3_repo:   # conv_clamp=256 comes from SynthesisBlock's default there, not from the kwargs
            kw.update(
                channel_base=1024, channel_max=64, num_fp16_res=4, fused_modconv_default='inference_only'
            )
            kw['mapping_kwargs'] = E(num_layers=2, freeze_layers=0)
        else: kw['synthesis_kwargs'] = synthesis
        data = dict(
            G=persist(nv, G_train, src, kw),
            D=None,
            G_ema=persist(nv, G_ema, src, kw),
            augment_pipe=None,
            training_set_kwargs=E(path='faces.zip', resolution=32, use_labels=False),
        )
        with open(path, 'wb') as f: pickle.dump(data, f)
    return path


@pytest.fixture
def clamped():
    return known_generator(
        0, synthesis_kwargs=dict(TINY['synthesis_kwargs'], conv_clamp=256, num_fp16_res=4)
    ), known_generator(1, synthesis_kwargs=dict(TINY['synthesis_kwargs'], conv_clamp=256, num_fp16_res=4))


def test_nvidia_pkl_loads_g_ema_without_running_anything(tmp_path, clamped):
    G_ema, G_train = clamped
    path = write_nvidia_pkl(tmp_path / 'snapshot.pkl', G_ema, G_train, tmp_path / 'ran')
    assert 'torch_utils' not in sys.modules and 'dnnlib' not in sys.modules
    assert 'torch_utils.persistence._reconstruct_persistent_obj' in pickle_globals(path)
    G = load_generator(path, resolution=32)
    assert_same_generator(G, G_ema)
    assert not (tmp_path / 'ran').exists()                                   # module_src never executed
    assert G.synthesis.b8.conv0.conv_clamp == 256
    assert G.checkpoint_info['format'] == 'nvidia'
    assert G.checkpoint_info['meta']['training_set_kwargs'] == dict(
        path='faces.zip', resolution=32, use_labels=False
    )
    assert (G_train.synthesis(mixed_ws(G)) - G.synthesis(mixed_ws(G))).abs().max() > 0.1   # G_ema, not G


def test_nvidia_reconstruct_function_is_never_looked_up(tmp_path, clamped):
    path = write_nvidia_pkl(tmp_path / 'snapshot.pkl', *clamped, tmp_path / 'ran')
    with nvidia_modules():  # NVIDIA's code importable (a tripwire that raises if called): still unused
        assert_same_generator(load_nvidia_pkl(path), clamped[0])
    assert not (tmp_path / 'ran').exists()


def test_stylegan3_repo_stylegan2_layout(tmp_path, clamped):
    path = write_nvidia_pkl(tmp_path / 'sg3repo.pkl', *clamped, tmp_path / 'ran', stylegan3_repo=True)
    G = load_generator(path)
    assert_same_generator(G, clamped[0])
    assert G.synthesis.b4.conv1.conv_clamp == 256 and G.synthesis.b32.torgb.conv_clamp == 256


def test_nvidia_refusals(tmp_path):
    with nvidia_modules() as nv:
        layers = {n: record(nv, 'SynthesisLayer') for n in ('L0_36_512', 'L1_36_512')}
        sg3 = record(
            nv,
            'Generator',
            synthesis=record(nv, 'SynthesisNetwork', input=record(nv, 'SynthesisInput'), **layers),
        )
        (tmp_path / 'sg3.pkl').write_bytes(pickle.dumps(dict(G_ema=sg3, G=sg3)))
        (tmp_path / 'no_ema.pkl').write_bytes(pickle.dumps(dict(G=sg3, D=None)))
        (tmp_path / 'disc.pkl').write_bytes(pickle.dumps(dict(G_ema=record(nv, 'Discriminator'))))
    with pytest.raises(CheckpointError, match='StyleGAN3'): load_generator(tmp_path / 'sg3.pkl')
    with pytest.raises(CheckpointError, match="no 'G_ema'.*'G', 'D'"): load_generator(tmp_path / 'no_ema.pkl')
    with pytest.raises(CheckpointError, match='not a persisted StyleGAN2 Generator'):
        load_generator(tmp_path / 'disc.pkl')


# ------------------------------------------------------------------ rosinality, renamed by hand
BLUR = torch.tensor([1., 3, 3, 1]).outer(torch.tensor([1., 3, 3, 1])) / 64


def to_rosinality(G):
    sd, out = G.state_dict(), {}
    for i in range(G.mapping.num_layers):
        out[f'style.{i + 1}.weight'], out[f'style.{i + 1}.bias'] = (
            sd[f'mapping.fc{i}.weight'],
            sd[f'mapping.fc{i}.bias'],
        )
    out['input.input'] = sd['synthesis.b4.const'][None]
    layers, noise = [('conv1', 'b4.conv1'), ('to_rgb1', 'b4.torgb')], [sd['synthesis.b4.conv1.noise_const']]
    for j, res in enumerate(G.synthesis.block_resolutions[1:]):
        layers += [
            (f'convs.{2 * j}', f'b{res}.conv0'),
            (f'convs.{2 * j + 1}', f'b{res}.conv1'),
            (f'to_rgbs.{j}', f'b{res}.torgb'),
        ]
        noise += [sd[f'synthesis.b{res}.conv0.noise_const'], sd[f'synthesis.b{res}.conv1.noise_const']]
    for ros, ours in layers:
        p = f'synthesis.{ours}.'
        out[f'{ros}.conv.weight'] = sd[p + 'weight'][None]  # [1, O, I, k, k]
        out[f'{ros}.conv.modulation.weight'], out[f'{ros}.conv.modulation.bias'] = (
            sd[p + 'affine.weight'],
            sd[p + 'affine.bias'],
        )
        if 'torgb' in ours:
            out[f'{ros}.bias'] = sd[p + 'bias'].reshape(1, -1, 1, 1)
            if ros != 'to_rgb1': out[f'{ros}.upsample.kernel'] = BLUR * 4
        else:
            out[f'{ros}.noise.weight'], out[f'{ros}.activate.bias'] = (
                sd[p + 'noise_strength'].reshape(1),
                sd[p + 'bias'],
            )
            if 'conv0' in ours: out[f'{ros}.conv.blur.kernel'] = BLUR * 4
    for i, n in enumerate(noise): out[f'noises.noise_{i}'] = n[None, None]
    return {k: v.clone() for k, v in out.items()}


def _lrelu(x, b): return F.leaky_relu(x + b.reshape(1, -1, *([1] * (x.ndim - 2))), 0.2) * math.sqrt(2)


def _upfirdn(x, k, up, pad):
    if up > 1:
        y = x.new_zeros(*x.shape[:2], x.shape[2] * up, x.shape[3] * up)
        y[:, :, ::up, ::up] = x
        x = y
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    return F.conv2d(x, k.flip([0, 1])[None, None].repeat(x.shape[1], 1, 1, 1), groups=x.shape[1])


def _modconv(sd, p, x, w, demodulate=True, upsample=False):
    """rosinality's ModulatedConv2d (fused path): scale·W·style, demodulate, grouped conv or transposed conv +
    blur."""
    N, I = x.shape[:2]
    style = F.linear(w, sd[f'{p}.modulation.weight'] / math.sqrt(w.shape[1]), sd[f'{p}.modulation.bias'])
    weight = (
        sd[f'{p}.weight'] / math.sqrt(I * sd[f'{p}.weight'].shape[-1] ** 2) * style[:, None, :, None, None]
    )
    if demodulate: weight = weight * torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8)[:, :, None, None, None]
    O, k = weight.shape[1], weight.shape[-1]
    xg = x.reshape(1, N * I, *x.shape[2:])
    if upsample:
        out = F.conv_transpose2d(xg, weight.transpose(1, 2).reshape(N * I, O, k, k), stride=2, groups=N)
        return _upfirdn(out.reshape(N, O, *out.shape[2:]), sd[f'{p}.blur.kernel'], 1, (1, 1))
    return F.conv2d(xg, weight.reshape(N * O, I, k, k), padding=k // 2, groups=N).reshape(N, O, *x.shape[2:])


def rosinality_forward(sd, latent):
    """Images from W+ [N, n_latent, D] with rosinality's Generator semantics (stored noise), written from its
    model.py."""
    def styled(p, x, w, noise, up=False):
        return _lrelu(
            _modconv(sd, f'{p}.conv', x, w, upsample=up) + sd[f'{p}.noise.weight'] * noise,
            sd[f'{p}.activate.bias'],
        )
    def to_rgb(p, x, w, skip):
        out = _modconv(sd, f'{p}.conv', x, w, demodulate=False) + sd[f'{p}.bias']
        return out if skip is None else out + _upfirdn(skip, sd[f'{p}.upsample.kernel'], 2, (2, 1))
    x = styled(
        'conv1', sd['input.input'].repeat(latent.shape[0], 1, 1, 1), latent[:, 0], sd['noises.noise_0']
    )
    skip, i, j = to_rgb('to_rgb1', x, latent[:, 1], None), 1, 0
    while f'to_rgbs.{j}.bias' in sd:
        x = styled(f'convs.{2 * j}', x, latent[:, i], sd[f'noises.noise_{2 * j + 1}'], up=True)
        x = styled(f'convs.{2 * j + 1}', x, latent[:, i + 1], sd[f'noises.noise_{2 * j + 2}'])
        skip, i, j = to_rgb(f'to_rgbs.{j}', x, latent[:, i + 2], skip), i + 2, j + 1
    return skip


def rosinality_mapping(sd, z, lr_mul=0.01):
    x, i = z * torch.rsqrt(z.pow(2).mean(1, keepdim=True) + 1e-8), 1
    while f'style.{i}.weight' in sd:
        x = _lrelu(
            F.linear(x, sd[f'style.{i}.weight'] / math.sqrt(x.shape[1]) * lr_mul),
            sd[f'style.{i}.bias'] * lr_mul,
        )
        i += 1
    return x


def write_rosinality(path, G, legacy=False, **extra):
    """As rosinality's train.py saves (legacy=True: torch < 1.6's non-zip format, as older released .pt files
    are)."""
    args = argparse.Namespace(
        size=G.img_resolution, latent=G.w_dim, n_mlp=G.mapping.num_layers, channel_multiplier=2, iter=1000
    )
    torch.save(
        dict(g=to_rosinality(G), d={}, g_ema=to_rosinality(G), g_optim={}, d_optim={}, args=args, **extra),
        path,
        _use_new_zipfile_serialization=not legacy,
    )
    return path


def test_rosinality_round_trip(tmp_path):
    G0 = known_generator(2)
    G = load_generator(write_rosinality(tmp_path / '010000.pt', G0), resolution=32)
    assert G.checkpoint_info['format'] == 'rosinality' and 'estimated' in G.checkpoint_info['meta']['w_avg']
    assert G.checkpoint_info['meta']['args']['size'] == 32
    torch.testing.assert_close(G.mapping.w_avg, estimate_w_avg(G0), rtol=0, atol=1e-6)
    G0.mapping.w_avg.copy_(G.mapping.w_avg)  # the only tensor rosinality does not carry
    assert_same_generator(G, G0)


def test_rosinality_semantics_match_an_independent_forward(tmp_path):
    G0 = known_generator(3)
    sd = to_rosinality(G0)
    G = load_rosinality(write_rosinality(tmp_path / 'r.pt', G0))
    z, ws = torch.randn(3, 64, generator=torch.Generator().manual_seed(1)), mixed_ws(G0)
    torch.testing.assert_close(G.mapping.z_to_w(z), rosinality_mapping(sd, z), rtol=1e-5, atol=1e-5)
    ref, ours = rosinality_forward(sd, ws), G.synthesis(ws, noise_mode='const')
    assert ref.abs().max() > 1
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)


def test_rosinality_latent_avg_is_used(tmp_path):
    G0 = known_generator(4)
    G = load_generator(
        write_rosinality(tmp_path / 'conv.pt', G0, legacy=True, latent_avg=G0.mapping.w_avg.clone())
    )
    assert G.checkpoint_info['meta']['w_avg'] == 'latent_avg from the file'
    assert_same_generator(G, G0)


def test_rosinality_inconsistent_args(tmp_path):
    G0 = known_generator(5)
    torch.save(dict(g_ema=to_rosinality(G0), args=argparse.Namespace(size=64)), tmp_path / 'x.pt')
    with pytest.raises(CheckpointError, match='args.size=64'): load_generator(tmp_path / 'x.pt')


# ------------------------------------------------------------------ TF-era pickle
def to_tf(nv, G):
    """G as a TF StyleGAN2 Gs network: NVIDIA's TF variable names, HWIO weights (Conv0_up flipped), mod_bias
    stored minus 1."""
    def net(name, variables, components=None, static_kwargs=None):
        return nv.Network(
            dict(
                version=4,
                name=name,
                static_kwargs=nv.EasyDict(static_kwargs or {}),
                components=nv.EasyDict(components or {}),
                build_module_src="raise SystemExit('TF build code must never run')",
                build_func_name='G_main',
                variables=[(k, np.asarray(v, dtype=np.float32)) for k, v in variables],
            )
        )
    sd = {k: v.numpy() for k, v in G.state_dict().items()}
    mapping = [
        (f'Dense{i}/{p}', sd[f'mapping.fc{i}.{p}'].T)
        for i in range(G.mapping.num_layers)
        for p in ('weight', 'bias')
    ]
    synth, noise = [('4x4/Const/const', sd['synthesis.b4.const'][None])], []
    for res in G.synthesis.block_resolutions:
        for ours, tf in ([('conv1', 'Conv')] if res == 4 else [('conv0', 'Conv0_up'), ('conv1', 'Conv1')]) + [
            ('torgb', 'ToRGB')
        ]:
            p, w, t = (
                f'synthesis.b{res}.{ours}.',
                sd[f'synthesis.b{res}.{ours}.weight'].transpose(2, 3, 1, 0),
                f'{res}x{res}/{tf}/',
            )
            synth += [
                (t + 'weight', w[::-1, ::-1] if tf == 'Conv0_up' else w),
                (t + 'bias', sd[p + 'bias']),
                (t + 'mod_weight', sd[p + 'affine.weight'].T),
                (t + 'mod_bias', sd[p + 'affine.bias'] - 1),
            ]
            if ours != 'torgb':
                synth.append((t + 'noise_strength', sd[p + 'noise_strength']))
                noise.append(sd[p + 'noise_const'][None, None])
    synth += [(f'noise{i}', n) for i, n in enumerate(noise)]
    kw = dict(
        latent_size=64,
        dlatent_size=64,
        label_size=0,
        resolution=32,
        num_channels=3,
        mapping_layers=2,
        fmap_base=512,
        fmap_max=64,
        truncation_psi=0.5,
    )
    return net('G', [('dlatent_avg', sd['mapping.w_avg']), ('lod', np.float32(0))],
               dict(mapping=net('G_mapping', mapping), synthesis=net('G_synthesis', synth)), kw), net


def test_tf_era_pickle(tmp_path):
    G0 = known_generator(6)
    with nvidia_modules() as nv:
        Gs, net = to_tf(nv, G0)
        (tmp_path / 'karras2019.pkl').write_bytes(
            pickle.dumps((net('G', []), net('D', [('x', [1.0])]), Gs), protocol=3)
        )
    assert 'dnnlib.tflib.network.Network' in pickle_globals(tmp_path / 'karras2019.pkl')
    G = load_generator(tmp_path / 'karras2019.pkl', resolution=32)
    assert G.checkpoint_info['format'] == 'tensorflow'
    assert_same_generator(G, G0)


# ------------------------------------------------------------------ own format
def test_own_format_round_trip(tmp_path):
    G0 = known_generator(7)
    path = save_generator(G0, tmp_path / 'ckpt' / 'g.pt', step=1200, note='test')
    assert sorted(p.name for p in path.parent.iterdir()) == ['g.pt']  # written atomically: no temp file left
    ckpt = torch.load(path, weights_only=True)
    assert (
        ckpt['format'] == 'hybridlat.generator' and ckpt['version'] == 1 and isinstance(ckpt['config'], str)
    )
    G = load_generator(path)
    assert_same_generator(G, G0)
    assert G.checkpoint_info == dict(format='hybridlat', path=str(path), meta=dict(step=1200, note='test'))
    with pytest.raises(CheckpointError, match='JSON-serialisable'):
        save_generator(G0, tmp_path / 'bad.pt', when=object())
    assert not (tmp_path / 'bad.pt').exists()
    ckpt['version'] = 2
    torch.save(ckpt, tmp_path / 'v2.pt')
    with pytest.raises(CheckpointError, match='version 2'): load_generator(tmp_path / 'v2.pt')


# ------------------------------------------------------------------ failures
class Evil:
    def __init__(self, target): self.target = target
    def __reduce__(self):
        import os

        return (os.system, (f'touch {self.target}',))


def test_malicious_files_are_refused_and_nothing_runs(tmp_path):
    pwned = tmp_path / 'pwned'
    (tmp_path / 'evil.pkl').write_bytes(pickle.dumps({'G_ema': Evil(pwned)}))
    torch.save({'g_ema': Evil(pwned)}, tmp_path / 'evil.pt')
    with nvidia_modules() as nv:    # the payload hidden inside a persisted module's state
        (tmp_path / 'nested.pkl').write_bytes(
            pickle.dumps(
                {
                    'G_ema': Persisted(
                        nv.reconstruct,
                        dict(
                            type='class',
                            version=6,
                            module_src='',
                            class_name='Generator',
                            state=dict(_modules={}, hook=Evil(pwned)),
                        ),
                    )
                }
            )
        )
    for name in ('evil.pkl', 'evil.pt', 'nested.pkl'):
        with pytest.raises(UnsafeCheckpointError, match=r"posix\.system.*os\.system") as e:
            load_generator(tmp_path / name)
        assert isinstance(e.value, pickle.UnpicklingError) and 'nothing from this file was run' in str(
            e.value
        )
    with pytest.raises(UnsafeCheckpointError, match='os.system'): load_nvidia_pkl(tmp_path / 'evil.pkl')
    with pytest.raises(UnsafeCheckpointError, match='os.system'): load_rosinality(tmp_path / 'evil.pt')
    assert pickle_globals(tmp_path / 'evil.pkl') == ['posix.system']
    assert not pwned.exists()


class ObjectArray:
    "Pickles as numpy's `_reconstruct(ndarray, (0,), b'O')`: an object array, which may hold anything."
    def __reduce__(self): return (np.ndarray.__reduce__(np.zeros(0))[0], (np.ndarray, (0,), b'O'))


def test_object_arrays_are_refused_before_they_are_built(tmp_path):
    (tmp_path / 'objects.pkl').write_bytes(pickle.dumps({'G_ema': ObjectArray()}))
    with pytest.raises(UnsafeCheckpointError, match='object arrays are refused'):
        load_nvidia_pkl(tmp_path / 'objects.pkl')


def test_refusals_never_advise_weights_only_false(tmp_path):
    torch.save({'g_ema': Evil(tmp_path / 'pwned')}, tmp_path / 'evil.pt')
    with pytest.raises(UnsafeCheckpointError) as e: load_generator(tmp_path / 'evil.pt')
    assert 'weights_only' not in str(e.value) and not (tmp_path / 'pwned').exists()


@pytest.fixture
def all_formats(tmp_path, clamped):
    G0 = known_generator(8)
    with nvidia_modules() as nv:
        (tmp_path / 'tf.pkl').write_bytes(pickle.dumps(to_tf(nv, G0)[0]))
    return [
        save_generator(G0, tmp_path / 'own.pt'),
        write_nvidia_pkl(tmp_path / 'nv.pkl', *clamped, tmp_path / 'ran'),
        write_rosinality(tmp_path / 'ros.pt', G0),
        tmp_path / 'tf.pkl',
    ]


def test_truncated_and_wrong_resolution(tmp_path, all_formats):
    for path in all_formats:
        data = path.read_bytes()
        half = tmp_path / f'half_{path.name}'
        half.write_bytes(data[:len(data) // 2])
        with pytest.raises(CheckpointError, match='truncated or corrupt'): load_generator(half)
        with pytest.raises(CheckpointError, match='checkpoint is 32×32, expected 256×256'):
            load_generator(path, resolution=256)
        assert load_generator(path, resolution=32).img_resolution == 32
    with pytest.raises(CheckpointError, match='truncated or corrupt'):
        load_rosinality(tmp_path / 'half_ros.pt')
    with pytest.raises(CheckpointError, match='truncated or corrupt'):
        load_nvidia_pkl(tmp_path / 'half_nv.pkl')


def test_not_a_checkpoint(tmp_path, all_formats):
    (tmp_path / 'notes.txt').write_text('hello')
    (tmp_path / 'empty.pt').write_bytes(b'')
    (tmp_path / 'noise.bin').write_bytes(bytes(range(256)))
    with zipfile.ZipFile(tmp_path / 'photos.zip', 'w') as z: z.writestr('a.png', b'')
    (tmp_path / 'list.pkl').write_bytes(pickle.dumps([1, 2, 3]))
    torch.save({'model': known_generator(9).state_dict()}, tmp_path / 'bare.pt')
    cases = [
        ('notes.txt', 'not a generator checkpoint'),
        ('empty.pt', 'empty file'),
        ('noise.bin', 'not a generator checkpoint'),
        ('photos.zip', 'not a torch checkpoint'),
        ('list.pkl', "no 'G_ema'"),
        ('missing.pt', 'no such file'),
        ('bare.pt', "neither hybridlat's format nor rosinality's"),
    ]
    for name, message in cases:
        with pytest.raises(CheckpointError, match=message): load_generator(tmp_path / name)
    with pytest.raises(CheckpointError, match='not a pickle'): load_nvidia_pkl(all_formats[2])
    with pytest.raises(CheckpointError, match='not a torch.save file'): load_rosinality(all_formats[1])
    assert [sniff_checkpoint(p) for p in all_formats] == ['torch', 'pickle', 'torch', 'pickle']
