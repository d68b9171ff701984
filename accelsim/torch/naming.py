"""Module path -> (block, block index, layer type): the GEMM context of common model families.

Conventions recognised (the path is the dotted ``named_modules`` name relative to the model):

* **blocks of a transformer** (``blocks.3``, ``transformer_blocks.3``, ``layers.3``, ``h.3``
  (GPT-2), ``layer.3`` (HF ViT/BERT ``encoder.layer.3``)) -> block ``blocks.3``;
* **UNet stages** (``down_blocks.1``, ``mid_block``, ``up_blocks.2``; also ``input_blocks`` /
  ``middle_block`` / ``output_blocks`` of the original LDM code) -> ``down.1``, ``mid``,
  ``up.2``. The outermost match wins (a UNet's inner ``transformer_blocks.0`` belongs to its
  stage).
* **layer types** from the leaf names (see :data:`accelsim.context.LAYER_TYPES`): fused
  ``qkv``/``c_attn``/``in_proj`` -> ``qkv``; ``to_q``/``q_proj``/``query``/``wq`` -> ``q``
  (likewise ``k``, ``v``); attention output ``proj``/``to_out.0``/``out_proj``/``o_proj``/
  ``attn.c_proj``/``attention.output.dense`` -> ``proj``; MLP in ``fc1``/``ff.net.0.proj``/
  ``c_fc``/``intermediate.dense``/``w1``/``w3``/``gate_proj``/``up_proj`` -> ``fc1``; MLP out
  ``fc2``/``ff.net.2``/``mlp.c_proj``/``output.dense``/``w2``/``down_proj`` -> ``fc2``;
  cross-attention (``attn2``, ``cross_attn``, ``crossattention``): ``q`` -> ``cross-q``, ``k``/``v``
  -> ``cross-kv``, output -> ``cross-proj``; ``adaLN_modulation``/``norm1.linear``/
  ``norm.linear``/``proj_out_1`` -> ``adaln``; embedders (``x_embedder``, ``pos_embed.proj``,
  ``patch_embed``, ``t_embedder``, ``y_embedder``, ``timestep_embedder``, ``time_embedding``,
  ``time_emb_proj``, ``emb``, ``wte``, ``embeddings``) -> ``embed``; ``final_layer``, ``head``,
  ``lm_head``, ``classifier``, ``proj_out_2`` -> ``head``; other convolutions -> ``conv``;
  the two GEMMs of attention are ``attn-scores`` and ``attn-value`` (decided by the caller).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from accelsim.context import LAYER_TYPES

_TRANSFORMER_LISTS = ("blocks", "transformer_blocks", "layers", "h", "layer", "resblocks")
_STAGES = {
    "down_blocks": "down",
    "input_blocks": "down",
    "up_blocks": "up",
    "output_blocks": "up",
}
_MID = ("mid_block", "middle_block")
_STAGE_RANK = {"down": 0, "mid": 1, "up": 2, "blocks": 3}

_CROSS = ("attn2", "cross_attn", "cross_attention", "crossattention", "encoder_attn")
_EMBED = (
    "x_embedder",
    "patch_embed",
    "patch_embedding",
    "t_embedder",
    "y_embedder",
    "timestep_embedder",
    "time_embedding",
    "time_emb_proj",
    "time_embed",
    "label_emb",
    "class_embedding",
    "emb",
    "wte",
    "wpe",
    "embeddings",
    "embed_tokens",
    "caption_projection",
    "adaln_single",
)
_HEAD = ("final_layer", "head", "lm_head", "classifier", "proj_out_2", "pooler")
_ADALN = ("adaLN_modulation", "adaln_modulation", "adaln", "proj_out_1")


def block_of(path: str) -> tuple[str, int | None]:
    """The block name of ``path`` and its index within its list (None for ``mid`` / no block)."""
    parts = path.split(".") if path else []
    for i, p in enumerate(parts):
        nxt = parts[i + 1] if i + 1 < len(parts) else ""
        if p in _STAGES and nxt.isdigit():
            return f"{_STAGES[p]}.{nxt}", int(nxt)
        if p in _MID:
            return "mid", None
        if p in _TRANSFORMER_LISTS and nxt.isdigit():
            return f"blocks.{nxt}", int(nxt)
    return "", None


def block_order(paths: Iterable[str]) -> dict[str, int]:
    """Position of every block among a model's blocks: ``down.*`` then ``mid`` then ``up.*``
    then ``blocks.*``, each list by index (``paths``: all module paths of the model)."""
    found: dict[str, tuple[int, int]] = {}
    for path in paths:
        block, idx = block_of(path)
        if block:
            stage = block.split(".")[0]
            found[block] = (_STAGE_RANK.get(stage, 4), -1 if idx is None else idx)
    return {b: i for i, b in enumerate(sorted(found, key=lambda b: found[b]))}


def _has(parts: list[str], names: Iterable[str]) -> bool:
    low = {p.lower() for p in parts}
    return any(n.lower() in low for n in names)


_Q = ("to_q", "q_proj", "query", "q", "wq", "q_lin")
_K = ("to_k", "k_proj", "key", "k", "wk", "k_lin")
_V = ("to_v", "v_proj", "value", "v", "wv", "v_lin")
_KV = ("to_kv", "kv", "kv_proj", "add_k_proj", "add_v_proj")
_QKV = ("qkv", "c_attn", "in_proj", "qkv_proj", "to_qkv", "wqkv", "query_key_value")
_FC1 = ("fc1", "c_fc", "w1", "w3", "gate_proj", "up_proj", "lin1", "fc_in", "dense_h_to_4h")
_FC2 = ("fc2", "w2", "down_proj", "lin2", "fc_out", "dense_4h_to_h")
_ATTN = ("attn", "attn1", "attention", "self_attn", "self_attention", "attn2", "mha", *_CROSS)


def layer_type_of(path: str, kind: str = "linear") -> str:
    """The layer type of a GEMM issued by module ``path``.

    ``kind``: ``linear`` (a weight GEMM), ``conv``, ``attn-scores``, ``attn-value`` or
    ``matmul`` (another functional product: ``other`` unless the path says more).
    """
    if kind in ("attn-scores", "attn-value"):
        return kind
    parts = path.split(".") if path else []
    leaf = parts[-1] if parts else ""
    prev = parts[-2] if len(parts) > 1 else ""
    cross = _has(parts, _CROSS)
    if _has(parts, _ADALN) or (leaf == "linear" and re.fullmatch(r"norm\w*", prev or "")):
        return "adaln"
    if _has(parts, _EMBED) or (kind == "conv" and prev in ("pos_embed", "patch_embed")):
        return "embed"
    if _has(parts, _HEAD) or (leaf in ("proj_out",) and kind == "linear" and len(parts) == 1):
        return "head"
    if kind == "conv":
        return "conv"
    if kind != "linear":
        return "other"
    in_attn = _has(parts[:-1], _ATTN)
    if leaf in _QKV:
        return "qkv"
    if leaf in _Q and (in_attn or leaf != "q"):
        return "cross-q" if cross else "q"
    if (leaf in _K or leaf in _V) and (in_attn or leaf not in ("k", "v")):
        return "cross-kv" if cross else ("k" if leaf in _K else "v")
    if leaf in _KV:
        return "cross-kv" if cross else "qkv"
    # attention output projection
    if (prev == "to_out" and leaf == "0") or leaf in ("out_proj", "o_proj", "to_out", "wo"):
        return "cross-proj" if cross else "proj"
    if in_attn and leaf in ("proj", "c_proj", "dense", "out", "proj_out"):
        return "cross-proj" if cross else "proj"
    if prev == "output" and leaf == "dense" and len(parts) >= 3 and parts[-3] == "attention":
        return "proj"
    # MLP
    if leaf in _FC1 or (prev == "0" and leaf == "proj" and "net" in parts):
        return "fc1"
    if leaf == "dense" and prev == "intermediate":
        return "fc1"
    if leaf in _FC2 or (prev == "net" and leaf == "2") or (prev == "mlp" and leaf == "c_proj"):
        return "fc2"
    if prev == "output" and leaf == "dense":
        return "fc2"
    if prev == "mlp" and leaf.isdigit():
        return "fc1" if leaf == "0" else "fc2"
    return "other"


def classify(path: str, kind: str = "linear") -> tuple[str, int | None, str]:
    """``(block, index within its list, layer_type)`` of a GEMM issued by module ``path``."""
    block, idx = block_of(path)
    lt = layer_type_of(path, kind)
    assert lt in LAYER_TYPES, lt
    return block, idx, lt
