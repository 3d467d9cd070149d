"""The shipped face generator: it loads offline from the installed package, and its card matches its facts."""
import json

import pytest
import torch

from hybridlat.training.pretrained import (
    PRETRAINED,
    assets_dir,
    load_discriminator,
    load_pretrained,
    model_card,
    pretrained_facts,
    pretrained_path,
)


def test_every_shipped_file_is_present_and_small():
    for part in ('generator', 'discriminator', 'facts', 'card'):
        path = pretrained_path('faces128', part)
        assert path.stat().st_size <= 25 * 2**20, f'{path.name} is over 25 MB'


def test_generator_renders_varied_faces_at_128():
    G = load_pretrained('faces128')
    assert G.img_resolution == 128 and not any(p.requires_grad for p in G.parameters())
    with torch.no_grad(): imgs = G.synthesis(G.sample_ws(range(4)))
    assert imgs.shape == (4, 3, 128, 128) and torch.isfinite(imgs).all()
    assert (imgs[0] - imgs[1]).abs().mean() > 0.01          # different seeds, different images


def test_card_is_written_from_the_facts():
    facts = pretrained_facts('faces128')
    card = pretrained_path('faces128', 'card').read_text()
    assert card == model_card(facts)
    assert f"{facts['images_seen']:,}" in card and facts['command'] in card


def test_discriminator_scores_the_generator_output():
    G, D = load_pretrained('faces128'), load_discriminator('faces128')
    with torch.no_grad(): logits = D(G.synthesis(G.sample_ws([0, 1])), None)
    assert logits.shape == (2, 1) and torch.isfinite(logits).all()


def test_unknown_name_lists_what_exists():
    with pytest.raises(ValueError, match='faces128'):
        load_pretrained('ffhq1024')
