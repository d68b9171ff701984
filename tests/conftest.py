"""Fixtures shared across test packages."""

from __future__ import annotations

import warnings

import pytest
import torch

from accelsim.rng import torch_generator


@pytest.fixture(scope="session")
def tiny_diffusers_dit() -> torch.nn.Module:
    """A tiny diffusers DiT built locally (no hub access), all weights random (diffusers
    zero-inits adaLN, which would make the blocks trivial), in eval mode."""
    from diffusers import DiTTransformer2DModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = DiTTransformer2DModel(
            num_attention_heads=2,
            attention_head_dim=8,
            in_channels=4,
            out_channels=4,
            num_layers=2,
            sample_size=8,
            patch_size=2,
            num_embeds_ada_norm=10,
            norm_num_groups=1,
        )
    g = torch_generator(0, "dit")
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return m.eval()
