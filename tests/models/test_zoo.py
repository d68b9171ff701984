"""Tests of the small-model registry (models/zoo.py) and the training CLI (models/train.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from accelsim.errors import CheckpointError, ConfigError, WorkloadError
from accelsim.models import feature_net, vit_digits
from accelsim.models.train import main as train_main
from accelsim.models.zoo import (
    KINDS,
    MODEL_NAMES,
    checkpoint_dir,
    count_gemm_macs,
    list_models,
    load_model,
    model_module,
)
from accelsim.rng import torch_generator

HINT = "python -m accelsim.models.train"


def vit_macs(cfg: dict[str, int]) -> int:
    """Hand count of the ViT's GEMM MACs at batch 1 (Linear layers + attention matmuls)."""
    t = (cfg["image"] // cfg["patch"]) ** 2 + 1
    d, m = cfg["dim"], cfg["mlp"]
    per_block = t * d * 3 * d + 2 * t * t * d + t * d * d + 2 * t * d * m
    return (t - 1) * cfg["patch"] ** 2 * d + cfg["depth"] * per_block + d * 10


def feature_net_macs(cfg: dict[str, int]) -> int:
    """Hand count of the CNN's conv (im2col) and Linear MACs at batch 1."""
    c1, c2, f = cfg["c1"], cfg["c2"], cfg["features"]
    convs = 256 * c1 * 9 * (1 + c1) + 64 * c2 * 9 * (c1 + c2)
    return convs + c2 * 16 * f + f * 10


def test_registry_lists_all_models() -> None:
    assert MODEL_NAMES == (
        "vit-digits",
        "gpt-tiny",
        "feature-net",
        "dit-digits",
        "unet-digits",
        "vdit-digits",
    )
    infos = {info.name: info for info in list_models()}
    assert list(infos) == list(MODEL_NAMES)
    for info in infos.values():
        assert info.kind in KINDS
        assert info.params > 0 and info.gemm_macs_per_forward > 0
        assert info.checkpoint.name == f"{info.name}.pt"
        assert info.checkpoint_present == info.checkpoint.is_file()
        assert model_module(info.name).NAME == info.name
    assert infos["vit-digits"].kind == "classifier"
    assert infos["gpt-tiny"].kind == "lm"
    assert infos["feature-net"].kind == "features"


def test_gemm_mac_counts_match_hand_counts() -> None:
    for module, count in ((vit_digits, vit_macs), (feature_net, feature_net_macs)):
        cfg = {k: int(v) for k, v in module.DEFAULT_CONFIG.items()}
        model = module.build(cfg)
        inputs = module.example_inputs(1, torch_generator(0, "t"))
        assert count_gemm_macs(model, inputs) == count(cfg)
        # batch multiplies every GEMM's M
        inputs3 = module.example_inputs(3, torch_generator(0, "t"))
        assert count_gemm_macs(model, inputs3) == 3 * count(cfg)
    info = {i.name: i for i in list_models()}
    shipped = {k: int(v) for k, v in load_model("vit-digits").accelsim_config.items()}
    assert info["vit-digits"].gemm_macs_per_forward == vit_macs(shipped)


def test_unknown_model_lists_names() -> None:
    with pytest.raises(WorkloadError, match="vit-digits, gpt-tiny, feature-net"):
        load_model("vit-huge")
    with pytest.raises(WorkloadError, match="vit-huge"):
        model_module("vit-huge")


def test_missing_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError) as exc:
        load_model("vit-digits", tmp_path)
    msg = str(exc.value)
    assert str(tmp_path / "vit-digits.pt") in msg
    assert f"{HINT} vit-digits" in msg
    assert "\n" not in msg


def test_corrupted_checkpoints(tmp_path: Path) -> None:
    good = (checkpoint_dir() / "feature-net.pt").read_bytes()
    path = tmp_path / "feature-net.pt"
    cases = {
        "garbage": b"not a checkpoint at all" * 10,
        "truncated": good[: len(good) // 2],
        "empty": b"",
    }
    for label, blob in cases.items():
        path.write_bytes(blob)
        with pytest.raises(CheckpointError, match=f"{HINT} feature-net") as exc:
            load_model("feature-net", tmp_path)
        assert str(path) in str(exc.value), label
    # a readable file holding another model, or weights not matching the architecture
    payload = torch.load(checkpoint_dir() / "feature-net.pt", weights_only=True)
    torch.save({**payload, "name": "vit-digits"}, path)
    with pytest.raises(CheckpointError, match="holds model 'vit-digits'"):
        load_model("feature-net", tmp_path)
    torch.save({**payload, "config": {"c1": 8, "c2": 8, "features": 8}}, path)
    with pytest.raises(CheckpointError, match="does not match"):
        load_model("feature-net", tmp_path)
    torch.save({"state_dict": payload["state_dict"]}, path)
    with pytest.raises(CheckpointError, match="expected a dict with keys"):
        load_model("feature-net", tmp_path)


def test_build_rejects_bad_config() -> None:
    with pytest.raises(ConfigError, match="'width'"):
        vit_digits.build({"width": 3})
    with pytest.raises(ConfigError, match="'dim'"):
        vit_digits.build({"dim": 0})
    with pytest.raises(ConfigError, match="heads"):
        vit_digits.build({"dim": 30, "heads": 4})


def test_train_cli_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert train_main(["nope", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: model: got 'nope'") and err.count("\n") == 1
    assert train_main(["vit-digits", "--seed", "-1", "--out", str(tmp_path)]) == 2
    assert list(tmp_path.iterdir()) == []


def test_train_cli_quick_roundtrip(tmp_path: Path) -> None:
    assert train_main(["feature-net", "--quick", "--seed", "3", "--out", str(tmp_path)]) == 0
    assert {p.name for p in tmp_path.iterdir()} == {"feature-net.pt", "feature-net.json"}
    model = load_model("feature-net", tmp_path)
    assert not model.training
    assert model.accelsim_config == feature_net.QUICK_CONFIG
    assert set(model.accelsim_metrics) >= {"test_accuracy", "test_loss", "train_accuracy"}
    payload = torch.load(tmp_path / "feature-net.pt", weights_only=True)
    assert payload["seed"] == 3 and payload["format_version"] == 1
