"""Tests of the shipped small models: checkpoints, recorded metrics, structure, determinism."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest
import torch

from accelsim.models import feature_net, gpt_tiny, vit_digits
from accelsim.models.data import digits
from accelsim.models.text import VOCAB_SIZE
from accelsim.models.train import evaluate_classifier
from accelsim.models.zoo import checkpoint_dir, load_model

OURS = ("vit-digits", "gpt-tiny", "feature-net")
#: Recorded vs re-measured test accuracy may differ by float-summation order across BLAS
#: builds; allow one image of 360.
ACC_TOL = 1.0 / 360 + 1e-9


@pytest.mark.parametrize("name", OURS)
def test_shipped_checkpoint_format(name: str) -> None:
    path = checkpoint_dir() / f"{name}.pt"
    assert path.stat().st_size < 4_000_000
    payload = torch.load(path, weights_only=True)
    assert set(payload) == {"name", "config", "state_dict", "metrics", "seed", "format_version"}
    assert payload["name"] == name and payload["format_version"] == 1
    assert all(t.dtype == torch.float32 for t in payload["state_dict"].values())
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["metrics"] == payload["metrics"] and meta["config"] == payload["config"]
    assert meta["quick"] is False


@pytest.mark.parametrize(("name", "floor"), [("feature-net", 0.97), ("vit-digits", 0.95)])
def test_classifier_reproduces_recorded_accuracy(name: str, floor: float) -> None:
    model = load_model(name)
    recorded = model.accelsim_metrics["test_accuracy"]
    assert recorded >= floor
    measured = evaluate_classifier(model)
    assert abs(measured["test_accuracy"] - recorded) <= ACC_TOL
    assert measured["test_loss"] == pytest.approx(model.accelsim_metrics["test_loss"], rel=1e-3)
    # negative control: the same network with shuffled labels scores near chance
    x, y = digits("test")
    with torch.no_grad():
        pred = model(x).argmax(1)
    shuffled = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(0))]
    assert float((pred == shuffled).double().mean()) < 0.2


def test_gpt_tiny_reproduces_recorded_val_loss() -> None:
    model = load_model("gpt-tiny")
    rec = model.accelsim_metrics
    got = gpt_tiny.evaluate(model, int(model.accelsim_config["context"]))
    assert got["val_loss"] == pytest.approx(rec["val_loss"], rel=1e-4)
    assert got["val_accuracy"] == pytest.approx(rec["val_accuracy"], abs=1e-3)
    # far better than the uniform model (log 96 = 4.56 nats)
    assert rec["val_loss"] < 2.5 and rec["val_accuracy"] > 0.4


def test_feature_net_features() -> None:
    model = load_model("feature-net")
    x, _ = digits("test")
    with torch.no_grad():
        f = model.features(x[:8])
        logits = model(x[:8])
    assert f.shape == (8, int(model.accelsim_config["features"]))
    assert bool((f >= 0).all())
    assert torch.allclose(model.head(f), logits)


def test_transformer_module_names() -> None:
    for name in ("vit-digits", "gpt-tiny"):
        names = {n for n, _ in load_model(name).named_modules()}
        for suffix in ("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2"):
            assert f"blocks.0.{suffix}" in names and f"blocks.3.{suffix}" in names
        assert "head" in names


def test_gpt_tiny_is_causal() -> None:
    model = load_model("gpt-tiny")
    ids = torch.randint(0, VOCAB_SIZE, (1, 32), generator=torch.Generator().manual_seed(1))
    changed = ids.clone()
    changed[0, 20] = (changed[0, 20] + 1) % VOCAB_SIZE
    with torch.no_grad():
        a, b = model(ids), model(changed)
    assert torch.equal(a[0, :20], b[0, :20])
    assert not torch.allclose(a[0, 20:], b[0, 20:])


@pytest.mark.parametrize("module", [vit_digits, gpt_tiny, feature_net])
def test_quick_training_is_deterministic(module: ModuleType, tmp_path: Path) -> None:
    states = []
    for run, seed in enumerate((5, 5, 6)):
        out = tmp_path / str(run)
        module.train(seed, out, quick=True)
        states.append(torch.load(out / f"{module.NAME}.pt", weights_only=True)["state_dict"])
    same = [torch.equal(states[0][k], states[1][k]) for k in states[0]]
    assert all(same)
    differ = [torch.equal(states[0][k], states[2][k]) for k in states[0]]
    assert not all(differ)
