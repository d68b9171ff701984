"""Module path -> block / layer type for the common model families."""

from __future__ import annotations

import pytest

from accelsim.torch.naming import block_of, block_order, classify, layer_type_of


@pytest.mark.parametrize(
    ("path", "kind", "block", "idx", "lt"),
    [
        # timm / facebookresearch DiT
        ("blocks.3.attn.qkv", "linear", "blocks.3", 3, "qkv"),
        ("blocks.3.attn.proj", "linear", "blocks.3", 3, "proj"),
        ("blocks.3.mlp.fc1", "linear", "blocks.3", 3, "fc1"),
        ("blocks.3.mlp.fc2", "linear", "blocks.3", 3, "fc2"),
        ("blocks.3.adaLN_modulation.1", "linear", "blocks.3", 3, "adaln"),
        ("blocks.3.attn", "attn-scores", "blocks.3", 3, "attn-scores"),
        ("x_embedder.proj", "conv", "", None, "embed"),
        ("t_embedder.mlp.0", "linear", "", None, "embed"),
        ("final_layer.linear", "linear", "", None, "head"),
        ("final_layer.adaLN_modulation.1", "linear", "", None, "adaln"),
        # diffusers DiT / PixArt
        ("transformer_blocks.0.attn1.to_q", "linear", "blocks.0", 0, "q"),
        ("transformer_blocks.0.attn1.to_k", "linear", "blocks.0", 0, "k"),
        ("transformer_blocks.0.attn1.to_v", "linear", "blocks.0", 0, "v"),
        ("transformer_blocks.0.attn1.to_out.0", "linear", "blocks.0", 0, "proj"),
        ("transformer_blocks.0.attn2.to_q", "linear", "blocks.0", 0, "cross-q"),
        ("transformer_blocks.0.attn2.to_k", "linear", "blocks.0", 0, "cross-kv"),
        ("transformer_blocks.0.attn2.to_out.0", "linear", "blocks.0", 0, "cross-proj"),
        ("transformer_blocks.0.ff.net.0.proj", "linear", "blocks.0", 0, "fc1"),
        ("transformer_blocks.0.ff.net.2", "linear", "blocks.0", 0, "fc2"),
        ("transformer_blocks.0.norm1.linear", "linear", "blocks.0", 0, "adaln"),
        (
            "transformer_blocks.1.norm1.emb.timestep_embedder.linear_1",
            "linear",
            "blocks.1",
            1,
            "embed",
        ),
        ("pos_embed.proj", "conv", "", None, "embed"),
        ("proj_out_1", "linear", "", None, "adaln"),
        ("proj_out_2", "linear", "", None, "head"),
        # diffusers UNet
        ("down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q", "linear", "down.1", 1, "q"),
        (
            "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_v",
            "linear",
            "down.1",
            1,
            "cross-kv",
        ),
        ("down_blocks.1.resnets.0.conv1", "conv", "down.1", 1, "conv"),
        ("down_blocks.1.resnets.0.time_emb_proj", "linear", "down.1", 1, "embed"),
        ("mid_block.attentions.0.transformer_blocks.0.ff.net.2", "linear", "mid", None, "fc2"),
        ("up_blocks.2.resnets.1.conv2", "conv", "up.2", 2, "conv"),
        ("conv_in", "conv", "", None, "conv"),
        ("time_embedding.linear_1", "linear", "", None, "embed"),
        # GPT-2 / HF ViT
        ("transformer.h.4.attn.c_attn", "linear", "blocks.4", 4, "qkv"),
        ("transformer.h.4.attn.c_proj", "linear", "blocks.4", 4, "proj"),
        ("transformer.h.4.mlp.c_fc", "linear", "blocks.4", 4, "fc1"),
        ("transformer.h.4.mlp.c_proj", "linear", "blocks.4", 4, "fc2"),
        ("lm_head", "linear", "", None, "head"),
        ("vit.encoder.layer.2.attention.attention.query", "linear", "blocks.2", 2, "q"),
        ("vit.encoder.layer.2.attention.output.dense", "linear", "blocks.2", 2, "proj"),
        ("vit.encoder.layer.2.intermediate.dense", "linear", "blocks.2", 2, "fc1"),
        ("vit.encoder.layer.2.output.dense", "linear", "blocks.2", 2, "fc2"),
        ("classifier", "linear", "", None, "head"),
        ("", "matmul", "", None, "other"),
        ("encoder.0", "linear", "", None, "other"),
    ],
)
def test_classify(path, kind, block, idx, lt):
    assert classify(path, kind) == (block, idx, lt)


def test_block_order_puts_unet_stages_in_execution_order():
    paths = [
        "conv_in",
        "down_blocks.0.resnets.0",
        "down_blocks.1.resnets.0",
        "up_blocks.0.resnets.0",
        "up_blocks.1.attentions.0.transformer_blocks.0.attn1",
        "mid_block.resnets.0",  # registered after up_blocks in diffusers
    ]
    assert block_order(paths) == {"down.0": 0, "down.1": 1, "mid": 2, "up.0": 3, "up.1": 4}
    assert block_order(["blocks.10.x", "blocks.2.y", "blocks.0"]) == {
        "blocks.0": 0,
        "blocks.2": 1,
        "blocks.10": 2,
    }


def test_outermost_block_wins_and_plain_names_are_not_blocks():
    assert block_of("down_blocks.0.attentions.0.transformer_blocks.3.ff") == ("down.0", 0)
    assert block_of("encoder.h") == ("", None)  # "h" without an index is no block list
    assert layer_type_of("mlp.q", "linear") == "other"  # a bare "q" outside attention
