"""GEMM lists of full-size published models, derived from their architecture hyper-parameters.

Each workload is the list of GEMMs of ONE forward pass of the denoiser / transformer only (no
VAE, no text or image encoder), written with SCALE-Sim conventions (see
:mod:`accelsim.hw.layer`): ``M`` output rows, ``N`` output columns, ``K`` reduction, and
``macs = M * N * K`` per execution. Nothing is a hand-typed shape table: every shape is computed
from the hyper-parameters quoted in each builder's docstring (paper / reference config).

Accounting rules, common to all workloads:

* Linear layers: ``M = tokens * sequences`` (batch multiplies ``M``), ``K = in``, ``N = out``;
  identical layers of repeated blocks are one :class:`GemmLayer` with ``count = blocks``.
* Convolutions are lowered by im2col (:func:`accelsim.hw.layer.conv_to_gemm`, torch padding);
  batch multiplies ``M``.
* Attention is expressed per head and per sequence: scores ``M = q_tokens, N = kv_tokens,
  K = head_dim`` and value ``M = q_tokens, N = head_dim, K = kv_tokens``, with
  ``count = blocks * heads * sequences``. Full (unmasked) products are counted, also for causal
  language models, because that is what a dense prefill kernel computes.
* Not counted: norms, activations, softmax, residual adds, modulation, bias, positional
  embeddings and embedding-table lookups (class labels, tokens), which are not GEMMs.
* ``batch`` is the number of samples; ``cfg=True`` (classifier-free guidance) runs the
  conditional and unconditional passes as one batch of ``2 * batch``. Every layer scales
  linearly with batch, so MACs double exactly.

Totals at batch 1 (``sum(l.macs * l.count)``, our count), against published numbers where
one exists:

================  ==========  ==============================================================
workload          MACs        published reference
================  ==========  ==============================================================
dit-xl2-256       118.62e9    118.6 "Gflops" (= MACs) in the DiT paper: +0.02 %
dit-xl2-512       524.54e9    524.6 "Gflops" in the DiT paper: -0.01 %
pixart-alpha-512  617.99e9    none (DiT-XL/2-512 plus cross-attention and caption MLP)
sd2-unet-512      402.13e9    ~400 GMACs commonly quoted; 339.10e9 without attention matmuls
vit-b16           17.56e9     17.6 GMACs (timm / fvcore): -0.2 %
gpt2-small        145.82e9    seq_len 1024 prefill incl. LM head (none published)
bart-base         77.75e9     seq_len 512 source + 512 target tokens incl. LM head (none)
latte-xl2-256     1892.96e9   16 frames x 256 tokens, variant 1 (none published)
================  ==========  ==============================================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from accelsim.errors import WorkloadError
from accelsim.hw.layer import GemmLayer, conv_output_size, conv_to_gemm

__all__ = ["LAYER_TYPES", "WorkloadInfo", "list_workloads", "workload_layers"]

#: Vocabulary of ``GemmLayer.layer_type`` values; every workload layer uses one of these.
LAYER_TYPES: frozenset[str] = frozenset(
    {
        "patch-embed",
        "embed",
        "t-embed",
        "y-embed",
        "adaln",
        "qkv",
        "q",
        "k",
        "v",
        "proj",
        "attn-scores",
        "attn-value",
        "cross-q",
        "cross-kv",
        "cross-proj",
        "cross-scores",
        "cross-value",
        "fc1",
        "fc2",
        "proj-in",
        "proj-out",
        "conv",
        "conv-shortcut",
        "time-emb",
        "final",
        "head",
        "lm-head",
    }
)


@dataclass(frozen=True)
class WorkloadInfo:
    """A workload's name, one-line description and the source of its hyper-parameters."""

    name: str
    description: str
    source: str


# --------------------------------------------------------------------------------------------
# Builder helpers shared by all models
# --------------------------------------------------------------------------------------------


class _Layers:
    """Accumulates the GEMMs of one workload, keeping names unique."""

    def __init__(self) -> None:
        self.layers: list[GemmLayer] = []
        self._names: set[str] = set()

    def add(self, layer: GemmLayer) -> None:
        if layer.name in self._names:  # a bug in a builder, not a user error
            raise AssertionError(f"duplicate layer name {layer.name!r}")
        self._names.add(layer.name)
        self.layers.append(layer)

    def linear(
        self,
        name: str,
        rows: int,
        in_features: int,
        out_features: int,
        layer_type: str,
        block: str,
        count: int = 1,
    ) -> None:
        """``nn.Linear(in_features, out_features)`` applied to ``rows`` vectors."""
        self.add(GemmLayer(name, rows, out_features, in_features, count, layer_type, block))

    def conv(
        self,
        name: str,
        size: int,
        filt: int,
        channels: int,
        filters: int,
        batch: int,
        block: str,
        *,
        stride: int = 1,
        padding: int | str = "same",
        layer_type: str = "conv",
    ) -> int:
        """Square ``Conv2d`` on ``batch`` maps of ``size x size``; returns the output size."""
        gemm = conv_to_gemm(
            name,
            size,
            size,
            filt,
            filt,
            channels,
            filters,
            stride,
            padding=padding,
            layer_type=layer_type,
            block=block,
        )
        self.add(replace(gemm, M=gemm.M * batch))
        return conv_output_size(size, filt, stride, padding)


@dataclass(frozen=True)
class _Stack:
    """Shape of ``blocks`` identical transformer blocks."""

    dim: int
    heads: int
    mlp_hidden: int
    blocks: int

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads


@dataclass(frozen=True)
class _Cross:
    """Cross-attention context of a transformer block: ``tokens`` vectors of width ``dim``."""

    tokens: int
    dim: int
    fused_kv: bool


def _attention_core(
    out: _Layers,
    prefix: str,
    block: str,
    stack: _Stack,
    *,
    q_tokens: int,
    kv_tokens: int,
    seqs: int,
    cross: bool = False,
) -> None:
    """Per-head score (``Q K^T``) and value (``P V``) GEMMs, ``count = blocks*heads*seqs``."""
    kind = "cross" if cross else "attn"
    count, head_dim = stack.blocks * stack.heads * seqs, stack.head_dim
    out.add(
        GemmLayer(f"{prefix}.scores", q_tokens, kv_tokens, head_dim, count, f"{kind}-scores", block)
    )
    out.add(
        GemmLayer(f"{prefix}.value", q_tokens, head_dim, kv_tokens, count, f"{kind}-value", block)
    )


def _self_attention(
    out: _Layers, prefix: str, block: str, stack: _Stack, *, tokens: int, seqs: int, fused_qkv: bool
) -> None:
    """Multi-head self-attention over ``seqs`` sequences of ``tokens`` tokens each."""
    rows, dim, n = tokens * seqs, stack.dim, stack.blocks
    if fused_qkv:
        out.linear(f"{prefix}.qkv", rows, dim, 3 * dim, "qkv", block, n)
    else:
        for part in ("q", "k", "v"):
            out.linear(f"{prefix}.{part}", rows, dim, dim, part, block, n)
    _attention_core(out, prefix, block, stack, q_tokens=tokens, kv_tokens=tokens, seqs=seqs)
    out.linear(f"{prefix}.proj", rows, dim, dim, "proj", block, n)


def _cross_attention(
    out: _Layers, prefix: str, block: str, stack: _Stack, *, tokens: int, seqs: int, ctx: _Cross
) -> None:
    """Multi-head cross-attention from ``tokens`` queries to the ``ctx.tokens`` context tokens."""
    rows, ctx_rows, dim, n = tokens * seqs, ctx.tokens * seqs, stack.dim, stack.blocks
    out.linear(f"{prefix}.q", rows, dim, dim, "cross-q", block, n)
    if ctx.fused_kv:
        out.linear(f"{prefix}.kv", ctx_rows, ctx.dim, 2 * dim, "cross-kv", block, n)
    else:
        for part in ("k", "v"):
            out.linear(f"{prefix}.{part}", ctx_rows, ctx.dim, dim, "cross-kv", block, n)
    _attention_core(
        out, prefix, block, stack, q_tokens=tokens, kv_tokens=ctx.tokens, seqs=seqs, cross=True
    )
    out.linear(f"{prefix}.proj", rows, dim, dim, "cross-proj", block, n)


def _mlp(out: _Layers, prefix: str, block: str, stack: _Stack, *, rows: int, gated: bool) -> None:
    """Two-layer feed-forward; ``gated`` (GEGLU) doubles the first layer's output width."""
    hidden, n = stack.mlp_hidden, stack.blocks
    out.linear(f"{prefix}.fc1", rows, stack.dim, hidden * (2 if gated else 1), "fc1", block, n)
    out.linear(f"{prefix}.fc2", rows, hidden, stack.dim, "fc2", block, n)


def _transformer_block(
    out: _Layers,
    block: str,
    stack: _Stack,
    *,
    tokens: int,
    seqs: int,
    fused_qkv: bool = True,
    adaln_rows: int | None = None,
    cross: _Cross | None = None,
    gated_mlp: bool = False,
    prefix: str | None = None,
) -> None:
    """``stack.blocks`` identical pre-norm transformer blocks on ``seqs`` sequences of ``tokens``.

    ``adaln_rows`` adds the per-block adaLN-Zero modulation ``Linear(dim, 6*dim)`` applied to
    that many conditioning vectors; ``cross`` adds cross-attention after self-attention.
    """
    prefix = block if prefix is None else prefix
    if adaln_rows is not None:
        dim = stack.dim
        out.linear(
            f"{prefix}.adaLN_modulation", adaln_rows, dim, 6 * dim, "adaln", block, stack.blocks
        )
    _self_attention(
        out, f"{prefix}.attn", block, stack, tokens=tokens, seqs=seqs, fused_qkv=fused_qkv
    )
    if cross is not None:
        _cross_attention(
            out, f"{prefix}.cross_attn", block, stack, tokens=tokens, seqs=seqs, ctx=cross
        )
    _mlp(out, f"{prefix}.mlp", block, stack, rows=tokens * seqs, gated=gated_mlp)


def _patch_embed(
    out: _Layers, *, latent: int, channels: int, patch: int, dim: int, images: int
) -> int:
    """Patchify conv (``patch x patch``, stride ``patch``); returns tokens per image."""
    side = out.conv(
        "x_embedder",
        latent,
        patch,
        channels,
        dim,
        images,
        "embed",
        stride=patch,
        padding="none",
        layer_type="patch-embed",
    )
    return side * side


def _timestep_embedder(out: _Layers, *, rows: int, dim: int, freq_dim: int = 256) -> None:
    """DiT ``TimestepEmbedder``: sinusoidal(``freq_dim``) -> Linear -> SiLU -> Linear."""
    out.linear("t_embedder.fc1", rows, freq_dim, dim, "t-embed", "embed")
    out.linear("t_embedder.fc2", rows, dim, dim, "t-embed", "embed")


# --------------------------------------------------------------------------------------------
# Diffusion transformers
# --------------------------------------------------------------------------------------------

_XL_DEPTH, _XL_DIM, _XL_HEADS, _XL_PATCH, _XL_MLP_RATIO = 28, 1152, 16, 2, 4
_XL = _Stack(dim=_XL_DIM, heads=_XL_HEADS, mlp_hidden=_XL_MLP_RATIO * _XL_DIM, blocks=_XL_DEPTH)
_LATENT_CHANNELS, _VAE_FACTOR = 4, 8


def _dit_xl2(batch: int, resolution: int) -> list[GemmLayer]:
    """DiT-XL/2 (Peebles & Xie 2023, arXiv:2212.09748, facebookresearch/DiT ``models.py``).

    28 blocks, hidden 1152, 16 heads, patch 2, MLP ratio 4, latent ``resolution/8`` squared x 4
    channels; adaLN-Zero ``Linear(1152, 6*1152)`` per block on the conditioning vector
    ``c = t_emb + y_emb`` (M = batch); class embedding is a table lookup (no GEMM); final layer
    adaLN ``Linear(1152, 2*1152)`` and ``Linear(1152, 2*2*8)`` (learned sigma: 8 channels).

    The paper's "Gflops" count each multiply-add once (fvcore-style, matmuls included). Our list
    includes the per-head attention score/value matmuls and reproduces the published numbers:
    118.62e9 vs 118.6 at 256 px (256 tokens, +0.02 %) and 524.54e9 vs 524.6 at 512 px (1024
    tokens, -0.01 %). Without the attention matmuls it would be 114.39e9 (-3.5 %) and
    456.89e9 (-12.9 %), so the paper's counter includes them. The residual is at the level of
    the published rounding (norms, which an fvcore count would add at 4 flops per element,
    would overshoot: +0.07e9 / +0.27e9).
    """
    out = _Layers()
    tokens = _patch_embed(
        out,
        latent=resolution // _VAE_FACTOR,
        channels=_LATENT_CHANNELS,
        patch=_XL_PATCH,
        dim=_XL_DIM,
        images=batch,
    )
    _timestep_embedder(out, rows=batch, dim=_XL_DIM)
    _transformer_block(out, "blocks", _XL, tokens=tokens, seqs=batch, adaln_rows=batch)
    _dit_final_layer(out, rows=tokens * batch, cond_rows=batch)
    return out.layers


def _dit_final_layer(out: _Layers, *, rows: int, cond_rows: int | None) -> None:
    """DiT ``FinalLayer``: adaLN ``Linear(D, 2D)`` (skipped if ``cond_rows`` is None) + linear."""
    if cond_rows is not None:
        out.linear(
            "final_layer.adaLN_modulation", cond_rows, _XL_DIM, 2 * _XL_DIM, "adaln", "final"
        )
    out_dim = _XL_PATCH * _XL_PATCH * 2 * _LATENT_CHANNELS  # learned sigma doubles channels
    out.linear("final_layer.linear", rows, _XL_DIM, out_dim, "final", "final")


def _pixart_alpha_512(batch: int) -> list[GemmLayer]:
    """PixArt-α XL/2 at 512 px (Chen et al. 2023, arXiv:2310.00426; PixArt-alpha ``PixArt.py``).

    DiT-XL/2 backbone (28 blocks, 1152, 16 heads, patch 2) on a 64x64x4 latent (1024 tokens).
    Each block: self-attention (fused qkv), cross-attention to 120 T5 tokens (``q_linear``
    1152->1152, fused ``kv_linear`` 1152->2304 on the text tokens, ``proj``), MLP ratio 4.
    adaLN-single: one shared ``t_block`` ``Linear(1152, 6*1152)`` per forward; the per-block
    ``scale_shift_table`` and the final ``T2IFinalLayer`` table are additions, not GEMMs.
    Caption projection ``Mlp(4096 -> 1152 -> 1152)`` once per forward on the 120 T5-XXL tokens.
    Assumes all 120 text tokens are attended (no padding mask) and no extra size conditioning
    (the 512 checkpoint has none).
    """
    text_tokens, text_dim = 120, 4096
    out = _Layers()
    tokens = _patch_embed(
        out,
        latent=512 // _VAE_FACTOR,
        channels=_LATENT_CHANNELS,
        patch=_XL_PATCH,
        dim=_XL_DIM,
        images=batch,
    )
    _timestep_embedder(out, rows=batch, dim=_XL_DIM)
    out.linear("t_block", batch, _XL_DIM, 6 * _XL_DIM, "adaln", "embed")
    out.linear("y_embedder.fc1", text_tokens * batch, text_dim, _XL_DIM, "y-embed", "embed")
    out.linear("y_embedder.fc2", text_tokens * batch, _XL_DIM, _XL_DIM, "y-embed", "embed")
    text = _Cross(tokens=text_tokens, dim=_XL_DIM, fused_kv=True)
    _transformer_block(out, "blocks", _XL, tokens=tokens, seqs=batch, cross=text)
    _dit_final_layer(out, rows=tokens * batch, cond_rows=None)
    return out.layers


def _latte_xl2_256(batch: int) -> list[GemmLayer]:
    """Latte-XL/2, 16 frames at 256 px (Ma et al. 2024, arXiv:2401.03048; Vchitect/Latte).

    Variant 1 (the paper's choice): 28 DiT blocks (1152, 16 heads, MLP 4) interleaved as 14
    spatial + 14 temporal blocks. Each frame's 32x32x4 latent is patchified (patch 2) to 256
    tokens. Spatial blocks attend over the 256 tokens of each frame (``batch*16`` sequences),
    temporal blocks over the 16 frames at each token position (``batch*256`` sequences of 16).
    As in the reference code the conditioning vector is repeated per sequence before each
    block's adaLN-Zero ``Linear(1152, 6*1152)``: M = ``batch*16`` (spatial) and ``batch*256``
    (temporal); the final layer's adaLN runs on ``batch*16`` vectors. Class-conditional (label
    lookup) / unconditional, so no text-encoder GEMMs.
    """
    frames = 16
    out = _Layers()
    tokens = _patch_embed(
        out,
        latent=256 // _VAE_FACTOR,
        channels=_LATENT_CHANNELS,
        patch=_XL_PATCH,
        dim=_XL_DIM,
        images=batch * frames,
    )
    _timestep_embedder(out, rows=batch, dim=_XL_DIM)
    half = replace(_XL, blocks=_XL_DEPTH // 2)  # 14 spatial + 14 temporal, interleaved
    # (block, tokens per sequence, sequences): the conditioning is repeated per sequence
    for block, length, seqs in (
        ("spatial", tokens, batch * frames),
        ("temporal", frames, batch * tokens),
    ):
        _transformer_block(out, block, half, tokens=length, seqs=seqs, adaln_rows=seqs)
    _dit_final_layer(out, rows=tokens * batch * frames, cond_rows=batch * frames)
    return out.layers


# --------------------------------------------------------------------------------------------
# Stable Diffusion 2 UNet
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _UNetConfig:
    """The fields of a diffusers ``UNet2DConditionModel`` config that shape its GEMMs."""

    sample_size: int
    in_channels: int
    out_channels: int
    block_out_channels: tuple[int, ...]
    cross_attn_down: tuple[bool, ...]
    cross_attn_up: tuple[bool, ...]
    layers_per_block: int
    head_dim: int
    cross_attention_dim: int
    context_tokens: int


#: stabilityai/stable-diffusion-2-base ``unet/config.json`` (attention_head_dim [5,10,20,20]
#: is the number of heads in diffusers' naming, i.e. head dim 64), 64x64 latent at 512 px,
#: 77 OpenCLIP ViT-H tokens of width 1024.
_SD2_UNET = _UNetConfig(
    sample_size=64,
    in_channels=4,
    out_channels=4,
    block_out_channels=(320, 640, 1280, 1280),
    cross_attn_down=(True, True, True, False),  # CrossAttnDownBlock2D x3, DownBlock2D
    cross_attn_up=(False, True, True, True),  # UpBlock2D, CrossAttnUpBlock2D x3
    layers_per_block=2,
    head_dim=64,
    cross_attention_dim=1024,
    context_tokens=77,
)


def _resnet(
    out: _Layers,
    prefix: str,
    block: str,
    *,
    size: int,
    c_in: int,
    c_out: int,
    batch: int,
    temb: int,
) -> None:
    """diffusers ``ResnetBlock2D``: conv1, time-emb projection, conv2, 1x1 shortcut if needed."""
    out.conv(f"{prefix}.conv1", size, 3, c_in, c_out, batch, block)
    out.linear(f"{prefix}.time_emb_proj", batch, temb, c_out, "time-emb", block)
    out.conv(f"{prefix}.conv2", size, 3, c_out, c_out, batch, block)
    if c_in != c_out:
        out.conv(
            f"{prefix}.conv_shortcut",
            size,
            1,
            c_in,
            c_out,
            batch,
            block,
            layer_type="conv-shortcut",
        )


def _spatial_transformer(
    out: _Layers, prefix: str, block: str, *, size: int, channels: int, batch: int, cfg: _UNetConfig
) -> None:
    """diffusers ``Transformer2DModel`` with linear ``proj_in/proj_out`` and one
    ``BasicTransformerBlock`` (self-attn, cross-attn to the text context, GEGLU FF 4C)."""
    tokens = size * size
    out.linear(f"{prefix}.proj_in", tokens * batch, channels, channels, "proj-in", block)
    _transformer_block(
        out,
        block,
        _Stack(dim=channels, heads=channels // cfg.head_dim, mlp_hidden=4 * channels, blocks=1),
        prefix=prefix,
        tokens=tokens,
        seqs=batch,
        fused_qkv=False,
        cross=_Cross(cfg.context_tokens, cfg.cross_attention_dim, fused_kv=False),
        gated_mlp=True,
    )
    out.linear(f"{prefix}.proj_out", tokens * batch, channels, channels, "proj-out", block)


def _unet(batch: int, cfg: _UNetConfig) -> list[GemmLayer]:
    """Walk a ``UNet2DConditionModel`` the way diffusers builds it (skip stack included)."""
    out = _Layers()
    chans = cfg.block_out_channels
    temb = 4 * chans[0]
    out.linear("time_embedding.linear_1", batch, chans[0], temb, "t-embed", "embed")
    out.linear("time_embedding.linear_2", batch, temb, temb, "t-embed", "embed")
    size = out.conv("conv_in", cfg.sample_size, 3, cfg.in_channels, chans[0], batch, "embed")
    ch = chans[0]
    skips = [ch]
    last = len(chans) - 1
    res = {"batch": batch, "temb": temb}
    for i, c_out in enumerate(chans):
        block = f"down.{i}"
        for j in range(cfg.layers_per_block):
            _resnet(out, f"{block}.resnets.{j}", block, size=size, c_in=ch, c_out=c_out, **res)
            ch = c_out
            if cfg.cross_attn_down[i]:
                _spatial_transformer(
                    out,
                    f"{block}.attentions.{j}",
                    block,
                    size=size,
                    channels=ch,
                    batch=batch,
                    cfg=cfg,
                )
            skips.append(ch)
        if i != last:
            size = out.conv(
                f"{block}.downsample", size, 3, ch, ch, batch, block, stride=2, padding=1
            )
            skips.append(ch)
    _resnet(out, "mid.resnets.0", "mid", size=size, c_in=ch, c_out=ch, **res)
    _spatial_transformer(
        out, "mid.attentions.0", "mid", size=size, channels=ch, batch=batch, cfg=cfg
    )
    _resnet(out, "mid.resnets.1", "mid", size=size, c_in=ch, c_out=ch, **res)
    for i, c_out in enumerate(reversed(chans)):
        block = f"up.{i}"
        for j in range(cfg.layers_per_block + 1):
            c_in = ch + skips.pop()  # channel concatenation with the skip connection
            _resnet(out, f"{block}.resnets.{j}", block, size=size, c_in=c_in, c_out=c_out, **res)
            ch = c_out
            if cfg.cross_attn_up[i]:
                _spatial_transformer(
                    out,
                    f"{block}.attentions.{j}",
                    block,
                    size=size,
                    channels=ch,
                    batch=batch,
                    cfg=cfg,
                )
        if i != last:
            size *= 2  # nearest-neighbour 2x, then a 3x3 conv
            out.conv(f"{block}.upsample", size, 3, ch, ch, batch, block)
    out.conv("conv_out", size, 3, ch, cfg.out_channels, batch, "final")
    return out.layers


def _sd2_unet_512(batch: int) -> list[GemmLayer]:
    """Stable Diffusion 2.x UNet at 512 px (64x64x4 latent), config ``_SD2_UNET``.

    Structure (as diffusers builds it): conv_in, 22 ResNet blocks (8 down, 2 mid, 12 up; 44
    3x3 convs, 22 time-embedding projections, 14 1x1 shortcuts), 3 stride-2 downsample and 3
    upsample convs, conv_out (52 conv GEMMs + 14 shortcuts) and 16 transformer blocks (6 down,
    1 mid, 9 up) at 64x64 (C 320, 5 heads), 32x32 (640, 10), 16x16 (1280, 20), mid 8x8.

    Our count: 402.13e9 MACs per forward at batch 1 (convs 52 %, attention score/value
    matmuls 16 %), in line with the ~400 GMACs commonly quoted for the SD UNet at 512 px.
    Without the attention matmuls it is 339.10e9, which matches the 339 GMACs that BK-SDM
    (Kim et al. 2023) lists for the SD-v1 UNet (same layout, 768-wide context), so that figure
    apparently leaves the attention matmuls out.
    """
    return _unet(batch, _SD2_UNET)


# --------------------------------------------------------------------------------------------
# Encoders / language models
# --------------------------------------------------------------------------------------------


def _vit_b16(batch: int) -> list[GemmLayer]:
    """ViT-B/16 at 224 px (Dosovitskiy et al. 2021, arXiv:2010.11929; timm vit_base_patch16_224).

    Patch embed conv 16x16/16 on RGB, 196 patches + class token = 197 tokens, 12 layers, hidden
    768, 12 heads, MLP 3072, classification head 768 -> 1000 on the class token only. Our count
    17.56e9 MACs vs the published 17.6 GMACs (timm / fvcore), -0.2 %.
    """
    dim = 768
    out = _Layers()
    patches = out.conv(
        "patch_embed",
        224,
        16,
        3,
        dim,
        batch,
        "embed",
        stride=16,
        padding="none",
        layer_type="patch-embed",
    )
    tokens = patches * patches + 1
    stack = _Stack(dim=dim, heads=12, mlp_hidden=4 * dim, blocks=12)
    _transformer_block(out, "blocks", stack, tokens=tokens, seqs=batch)
    out.linear("head", batch, dim, 1000, "head", "final")
    return out.layers


def _gpt2_small(batch: int, seq_len: int) -> list[GemmLayer]:
    """GPT-2 small (Radford et al. 2019; Hugging Face ``gpt2`` config): full prefill of ``seq_len``.

    12 layers, d 768, 12 heads, MLP 3072, fused ``c_attn`` qkv; token / position embeddings are
    lookups; the LM head (tied to the token embedding, 768 -> 50257) is applied to every
    position. Causal attention is counted as the full ``seq_len x seq_len`` products.
    """
    dim = 768
    out = _Layers()
    stack = _Stack(dim=dim, heads=12, mlp_hidden=4 * dim, blocks=12)
    _transformer_block(out, "blocks", stack, tokens=seq_len, seqs=batch)
    out.linear("lm_head", seq_len * batch, dim, 50257, "lm-head", "final")
    return out.layers


def _bart_base(batch: int, seq_len: int) -> list[GemmLayer]:
    """BART-base (Lewis et al. 2020, arXiv:1910.13461; Hugging Face ``facebook/bart-base`` config).

    6 encoder + 6 decoder layers, d 768, 12 heads, FFN 3072, separate q/k/v projections, vocab
    50265. One teacher-forced forward: the encoder reads ``seq_len`` source tokens and the
    decoder ``seq_len`` target tokens (same length by default assumption); each decoder layer
    cross-attends to the encoder output (k/v projections on the source tokens). The LM head
    (tied, 768 -> 50265) runs on every target position.
    """
    dim = 768
    stack = _Stack(dim=dim, heads=12, mlp_hidden=3072, blocks=6)
    encoder_out = _Cross(tokens=seq_len, dim=dim, fused_kv=False)  # source tokens
    out = _Layers()
    _transformer_block(out, "encoder", stack, tokens=seq_len, seqs=batch, fused_qkv=False)
    _transformer_block(
        out, "decoder", stack, tokens=seq_len, seqs=batch, fused_qkv=False, cross=encoder_out
    )
    out.linear("lm_head", seq_len * batch, dim, 50265, "lm-head", "final")
    return out.layers


# --------------------------------------------------------------------------------------------
# Registry and public API
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    info: WorkloadInfo
    build: Callable[[int, int], list[GemmLayer]]  # (batch, seq_len) -> layers
    default_seq_len: int | None = None  # None: no sequence-length parameter
    max_seq_len: int | None = None


_REGISTRY: dict[str, _Entry] = {
    e.info.name: e
    for e in (
        _Entry(
            WorkloadInfo(
                "dit-xl2-256",
                "DiT-XL/2 class-conditional denoiser, 256x256 (32x32x4 latent, 256 tokens)",
                "Peebles & Xie, Scalable Diffusion Models with Transformers, ICCV 2023 "
                "(arXiv:2212.09748); facebookresearch/DiT models.py",
            ),
            lambda b, _s: _dit_xl2(b, 256),
        ),
        _Entry(
            WorkloadInfo(
                "dit-xl2-512",
                "DiT-XL/2 class-conditional denoiser, 512x512 (64x64x4 latent, 1024 tokens)",
                "Peebles & Xie, Scalable Diffusion Models with Transformers, ICCV 2023 "
                "(arXiv:2212.09748); facebookresearch/DiT models.py",
            ),
            lambda b, _s: _dit_xl2(b, 512),
        ),
        _Entry(
            WorkloadInfo(
                "pixart-alpha-512",
                "PixArt-alpha XL/2 text-to-image denoiser, 512x512 (1024 tokens, 120 T5 tokens)",
                "Chen et al., PixArt-alpha, ICLR 2024 (arXiv:2310.00426); "
                "PixArt-alpha/PixArt-alpha diffusion/model/nets/PixArt.py (PixArt_XL_2)",
            ),
            lambda b, _s: _pixart_alpha_512(b),
        ),
        _Entry(
            WorkloadInfo(
                "sd2-unet-512",
                "Stable Diffusion 2.x UNet, 512x512 (64x64x4 latent, 77 OpenCLIP-H tokens)",
                "Rombach et al., LDM, CVPR 2022; stabilityai/stable-diffusion-2-base "
                "unet/config.json (diffusers UNet2DConditionModel)",
            ),
            lambda b, _s: _sd2_unet_512(b),
        ),
        _Entry(
            WorkloadInfo(
                "vit-b16",
                "ViT-B/16 image classifier, 224x224 (197 tokens), 1000-class head",
                "Dosovitskiy et al., An Image is Worth 16x16 Words, ICLR 2021 "
                "(arXiv:2010.11929); timm vit_base_patch16_224",
            ),
            lambda b, _s: _vit_b16(b),
        ),
        _Entry(
            WorkloadInfo(
                "gpt2-small",
                "GPT-2 small (124M) full prefill of seq_len tokens (default 1024) with LM head",
                "Radford et al., Language Models are Unsupervised Multitask Learners, 2019; "
                "Hugging Face gpt2 config.json",
            ),
            _gpt2_small,
            default_seq_len=1024,
            max_seq_len=1024,  # n_positions
        ),
        _Entry(
            WorkloadInfo(
                "bart-base",
                "BART-base encoder-decoder, seq_len source + seq_len target tokens "
                "(default 512) with LM head",
                "Lewis et al., BART, ACL 2020 (arXiv:1910.13461); "
                "Hugging Face facebook/bart-base config.json",
            ),
            _bart_base,
            default_seq_len=512,
            max_seq_len=1024,  # max_position_embeddings
        ),
        _Entry(
            WorkloadInfo(
                "latte-xl2-256",
                "Latte-XL/2 video denoiser, 16 frames 256x256, interleaved spatial/temporal blocks",
                "Ma et al., Latte: Latent Diffusion Transformer for Video Generation, 2024 "
                "(arXiv:2401.03048), variant 1; Vchitect/Latte models/latte.py (Latte_XL_2)",
            ),
            lambda b, _s: _latte_xl2_256(b),
        ),
    )
}


def list_workloads() -> list[WorkloadInfo]:
    """All available workloads, in a fixed order."""
    return [entry.info for entry in _REGISTRY.values()]


def workload_layers(
    name: str, *, batch: int = 1, cfg: bool = False, seq_len: int | None = None
) -> list[GemmLayer]:
    """GEMMs of one forward pass of workload ``name`` (see the module docstring for accounting).

    ``batch`` samples (``2 * batch`` with ``cfg=True``, classifier-free guidance). ``seq_len``
    is the sequence length of the language models (``gpt2-small``: default 1024, ``bart-base``:
    default 512, both up to 1024) and must be left unset for the other workloads.
    """
    entry = _REGISTRY.get(name)
    if entry is None:
        raise WorkloadError(f"workload: got {name!r}, expected one of {', '.join(_REGISTRY)}")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise WorkloadError(f"{name}: batch: got {batch!r}, expected an integer >= 1")
    if not isinstance(cfg, bool):
        raise WorkloadError(f"{name}: cfg: got {cfg!r}, expected True or False")
    if entry.default_seq_len is None or entry.max_seq_len is None:
        if seq_len is not None:
            with_seq = ", ".join(n for n, e in _REGISTRY.items() if e.default_seq_len is not None)
            raise WorkloadError(
                f"{name}: seq_len: got {seq_len!r}, expected None (seq_len applies only to "
                f"{with_seq})"
            )
        length = 0
    elif seq_len is None:
        length = entry.default_seq_len
    elif (
        isinstance(seq_len, bool)
        or not isinstance(seq_len, int)
        or not 1 <= seq_len <= entry.max_seq_len
    ):
        raise WorkloadError(
            f"{name}: seq_len: got {seq_len!r}, expected an integer in 1..{entry.max_seq_len}"
        )
    else:
        length = seq_len
    return entry.build(batch * (2 if cfg else 1), length)
