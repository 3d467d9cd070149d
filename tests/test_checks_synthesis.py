"""Checks A1, A2, A6: reference solutions pass; typical wrong answers fail with a diagnosis a student can act
on."""
import pytest
import torch
import torch.nn.functional as F
from hybridlat.classroom.checks_synthesis import check_a1, check_a2, check_a6
from hybridlat.stylegan2.stylespace import StyleLayout, deformation_layer_names, synthesis_from_s, w_plus_to_s

from helpers import G, failed  # noqa: F401 (G is a fixture)


# ---------------------------------------------------------------- A1: modulated convolution
def modconv(
    x, weight, styles, demodulate=True, padding=1, eps=1e-8, norm_dims=(2, 3, 4), per_sample=True, swap=False
):
    "Reference solution (defaults) and, through the arguments, typical wrong answers."
    N, I, H, W = x.shape
    s = styles if per_sample else styles[:1].expand_as(styles)
    w = weight[None] * s[:, None, :, None, None]                                       # [N, O, I, k, k]
    if demodulate: w = w / (w.square().sum(list(norm_dims), keepdim=True) + eps).sqrt()
    y = F.conv2d(x.reshape(1, N * I, H, W), w.reshape(-1, I, *weight.shape[2:]), padding=padding, groups=N)
    return (
        y.reshape(weight.shape[0], N, *y.shape[2:]).transpose(0, 1)
        if swap
        else y.reshape(N, -1, *y.shape[2:])
    )


def test_a1_reference_passes():
    r = check_a1(modconv)
    assert r and r.score == 1 and len(r.criteria) == 8, r.report()
    assert 'norms 1.0000…1.0000' in r.report()


@pytest.mark.parametrize('kwargs, texts', [
    (dict(demodulate=False), ['no demodulation', 'after demodulation they are all 1']),
    (dict(norm_dims=(1, 3, 4)), ['summed over the output channels instead of the input channels']),
    (dict(norm_dims=(2,)), ['input channels only, not the kernel taps']),
    (dict(per_sample=False), ["sample 0's styles (styles must be per sample)"]),
    (dict(swap=True), ['Right numbers, wrong places', 'groups=N']),
])
def test_a1_wrong_answers_diagnosed(kwargs, texts):
    def wrong(x, weight, styles, demodulate=True, padding=1):
        return modconv(x, weight, styles, **{'demodulate': demodulate, 'padding': padding, **kwargs})
    failed(check_a1(wrong), *texts)


def test_a1_epsilon_mistakes():
    r = failed(check_a1(lambda *a, **k: modconv(*a, **k, eps=0.)), 'NaN', 'ε keeps the division finite')
    assert r.count('✓') == 6                                       # only the zero-style case finds it
    def eps_outside(x, weight, styles, demodulate=True, padding=1):
        w = weight[None] * styles[:, None, :, None, None]
        if demodulate: w = w / (w.square().sum([2, 3, 4], keepdim=True).sqrt() + 1e-8)
        return torch.cat([F.conv2d(x[n:n + 1], w[n], padding=padding) for n in range(len(x))])
    failed(check_a1(eps_outside), 'ε added outside the square root', 'tiny styles')


def test_a1_unwritten_and_ignored_padding():
    def todo(x, weight, styles, demodulate=True, padding=1): raise NotImplementedError('write your code here')
    failed(check_a1(todo), 'still raises NotImplementedError')
    failed(
        check_a1(lambda x, w, s, demodulate=True, padding=1: modconv(x, w, s, demodulate)),
        'output shape is',
        'padding=0',
    )


# ---------------------------------------------------------------- A2: W+ → StyleSpace, flat index
def styles_ref(G, ws, torgb_w=+0, torgb=True, shift=0):
    "Reference (defaults): each layer's affine of its w; a toRGB layer uses the next conv layer's w."
    styles, j = {}, 0
    for name, layer in G.synthesis.style_layers():
        is_rgb = name.endswith('torgb')
        if is_rgb and not torgb: continue
        styles[name] = layer.affine(ws[:, j + (torgb_w if is_rgb else 0) + shift])
        if not is_rgb: j += 1
    return styles


def flat_ref(G, layer, channel, skip_torgb=False, plus=0):
    layers = G.synthesis.style_layers()
    i = layer if isinstance(layer, int) else [n for n, _ in layers].index(layer)
    return (
        sum(l.affine.out_features for n, l in layers[:i] if not (skip_torgb and n.endswith('torgb')))
        + channel
        + plus
    )


def test_a2_reference_passes(G):
    r = check_a2(styles_ref, flat_ref, G)
    assert r and len(r.criteria) == 7, r.report()
    assert "ws[:, 3] feeds exactly ['b8.torgb', 'b16.conv0']" in r.report()


def test_a2_wrong_layers_diagnosed(G):
    failed(
        check_a2(lambda G, ws: styles_ref(G, ws, torgb=False), flat_ref, G),
        'missing',
        'toRGB layers have affines',
    )
    failed(check_a2(lambda G, ws: styles_ref(G, ws, torgb_w=-1), flat_ref, G),
           'b4.torgb is A(ws[:, 0]) (expected A(ws[:, 1]))', "shares the w of the next block's conv0")
    failed(
        check_a2(
            lambda G, ws: {n: l.affine(ws[:, i]) for i, (n, l) in enumerate(G.synthesis.style_layers())},
            flat_ref,
            G,
        ),
        'IndexError',
        'a toRGB layer shares the w of the next conv layer',
    )
    layout = StyleLayout.from_generator(G)
    no_affine = lambda G, ws: {
        n: ws[:, G.synthesis.w_index[n], :c] for n, c in zip(layout.names, layout.channels)
    }
    failed(check_a2(no_affine, flat_ref, G), 'b4.conv1 is ws[:, 0] with no affine')


def test_a2_wrong_flat_index_diagnosed(G):
    failed(
        check_a2(styles_ref, lambda *a: flat_ref(*a, plus=1), G),
        'one too many (off by one)',
        'expected 0 (b4.conv1 is the first layer',
    )
    failed(
        check_a2(styles_ref, lambda *a: flat_ref(*a, skip_torgb=True), G),
        "'b8.conv0', 0) = 256, expected 512",
        'the toRGB layers not counted',
    )
    names_only = lambda G, layer, c: StyleLayout.from_generator(G).flat_index(
        StyleLayout.from_generator(G).names.index(layer), c
    )
    r = failed(check_a2(styles_ref, names_only, G), 'flat_index by layer index', 'raised ValueError')
    assert '✓ flat_index by layer name' in r


# ---------------------------------------------------------------- A6: W_ID + S_F by hand
def compose_ref(G, w_id, s_f, into_w=False, on_torgb=False, expand=True, fixed=False):
    "Reference (defaults): s_l = A_l(W_ID) + S_F,l on S_F's layers, A_l(W_ID) elsewhere, for every frame."
    T = next(iter(s_f.values())).shape[0]
    s = {n: v.expand(T, -1) if expand else v for n, v in w_plus_to_s(G, w_id).items()}
    layers = dict(G.synthesis.style_layers())
    names = deformation_layer_names(StyleLayout.from_generator(G)) if fixed else s_f
    for n in names:
        v = s_f[n]
        if into_w and v.shape[1] == G.w_dim: s[n] = layers[n].affine(w_id[:, G.synthesis.w_index[n]] + v)
        else: s[n] = s[n] + v
        if on_torgb and v.shape[1] == G.w_dim:  # also onto the toRGB layer sharing this layer's w
            rgb = [
                m
                for m, k in G.synthesis.w_index.items()
                if k == G.synthesis.w_index[n] and m.endswith('torgb')
            ]
            for m in rgb: s[m] = s[m] + v
    return s


def reenact_ref(G, w_id, s_f): return synthesis_from_s(G, compose_ref(G, w_id, s_f))


def test_a6_reference_passes(G):
    r = check_a6(compose_ref, reenact_ref, G)
    assert r and len(r.criteria) == 5, r.report()


def test_a6_wrong_answers_diagnosed(G):
    failed(
        check_a6(lambda *a: compose_ref(*a, into_w=True), reenact_ref, G),
        'S_F added to w before the affine, not to the style s',
    )
    failed(
        check_a6(lambda *a: compose_ref(*a, on_torgb=True), reenact_ref, G),
        'b4.torgb got S_F of b8.conv0 added',
        'S_F belongs only on its own layers',
    )
    failed(
        check_a6(lambda *a: compose_ref(*a, expand=False), reenact_ref, G),
        'expand A_l(W_ID) [1, C] to the 3 frames',
    )
    failed(check_a6(lambda *a: compose_ref(*a, fixed=True), reenact_ref, G), 'not a fixed list')
    def replaced(G, w_id, s_f): return {**compose_ref(G, w_id, s_f), **{n: v for n, v in s_f.items()}}
    failed(check_a6(replaced, reenact_ref, G), 'S_F alone (A_l(W_ID) left out)')
    failed(check_a6(compose_ref, lambda G, w_id, s_f: G.synthesis(w_id).expand(3, -1, -1, -1), G),
           'frames are the source face without S_F')
