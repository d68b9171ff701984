"""Tests of the small diffusion models (dit-digits, unet-digits, vdit-digits) and their schedule."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from scipy import stats

from accelsim.errors import AccelsimError, ConfigError, ShapeError
from accelsim.models import diffusion_schedule as ds
from accelsim.models import dit_digits, unet_digits, vdit_digits
from accelsim.models.zoo import checkpoint_path, load_model
from accelsim.rng import torch_generator

MODULES = [dit_digits, unet_digits, vdit_digits]
IDS = [m.NAME for m in MODULES]

# Accuracy floors of the shipped checkpoints on the short deterministic sampling runs below
# (20 DDIM steps, guidance 3). Measured values are recorded in each checkpoint's metrics; the
# floors leave margin for a different torch build.
IMAGE_CLASS_FLOOR = {"dit-digits": 0.8, "unet-digits": 0.8}
VIDEO_DIRECTION_FLOOR = 0.7
VIDEO_CLASS_FLOOR = 0.6


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: faster than two on the shared CI machine, and it is what training uses."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _state(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state_dict"]


# ---------------------------------------------------------------- schedule


def test_alphas_cumprod_matches_ddpm_linear_schedule() -> None:
    abar = ds.alphas_cumprod({})
    assert abar.shape == (1000,) and abar.dtype == torch.float64
    betas = [1e-4 + (0.02 - 1e-4) * i / 999 for i in range(1000)]
    assert float(abar[0]) == pytest.approx(1 - 1e-4)
    assert float(abar[-1]) == pytest.approx(math.prod(1 - b for b in betas), rel=1e-9)
    assert bool((abar[1:] < abar[:-1]).all())


@pytest.mark.parametrize(
    "bad",
    [{"schedule": "cosine"}, {"prediction": "v"}, {"T": 1}, {"beta_start": 0.0}, {"beta_end": 1.5}],
)
def test_bad_schedule_raises(bad: dict) -> None:
    with pytest.raises(ConfigError):
        ds.alphas_cumprod(bad)


def test_q_sample_and_ddim_timesteps() -> None:
    abar = ds.alphas_cumprod({})
    x0 = torch.ones(3, 1, 2, 2)
    noise = torch.zeros(3, 1, 2, 2)
    out = ds.q_sample(x0, torch.tensor([0, 500, 999]), noise, abar)
    expected = abar[[0, 500, 999]].float().sqrt()
    assert torch.allclose(out[:, 0, 0, 0], expected)
    ts = ds.ddim_timesteps(1000, 20)
    assert ts[0] == 999 and ts[-1] == 0 and len(ts) == 20 and ts == sorted(ts, reverse=True)
    with pytest.raises(ConfigError):
        ds.ddim_timesteps(1000, 0)


# ---------------------------------------------------------------- architecture


@pytest.mark.parametrize("module", MODULES, ids=IDS)
def test_forward_shapes_and_contract(module) -> None:
    assert module.KIND in ("diffusion", "video-diffusion")
    for key, value in ds.SCHEDULE_DEFAULTS.items():
        assert module.DEFAULT_CONFIG[key] == value
    model = module.build({})
    inputs = module.example_inputs(3, torch_generator(0, "test"))
    out = model(*inputs)
    assert out.shape == inputs[0].shape
    assert bool(torch.isfinite(out).all())


@pytest.mark.parametrize("module", MODULES, ids=IDS)
def test_build_rejects_unknown_key(module) -> None:
    with pytest.raises(ConfigError, match="bogus"):
        module.build({"bogus": 1})


@pytest.mark.parametrize("module", MODULES, ids=IDS)
def test_build_is_seeded(module) -> None:
    a = module.build({}, torch_generator(1, "x")).state_dict()
    b = module.build({}, torch_generator(1, "x")).state_dict()
    c = module.build({}, torch_generator(2, "x")).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_dit_module_names() -> None:
    names = {n for n, _ in dit_digits.build({}).named_modules()}
    for n in ["x_embedder.proj", "t_embedder.mlp.0", "y_embedder", "final_layer.linear"]:
        assert n in names
    for i in range(dit_digits.DEFAULT_CONFIG["depth"]):
        for leaf in ["attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2", "adaLN_modulation"]:
            assert f"blocks.{i}.{leaf}" in names


def test_unet_module_names() -> None:
    names = {n for n, _ in unet_digits.build({}).named_modules()}
    tb = "attentions.0.transformer_blocks.0"
    for blk in ["down_blocks.0", "down_blocks.1", "mid_block", "up_blocks.0", "up_blocks.1"]:
        for leaf in ["resnets.0.conv1", "resnets.0.conv2", "resnets.0.time_emb_proj"]:
            assert f"{blk}.{leaf}" in names
        for att in ["attn1", "attn2"]:
            for proj in ["to_q", "to_k", "to_v", "to_out"]:
                assert f"{blk}.{tb}.{att}.{proj}" in names
        assert f"{blk}.{tb}.ff.fc1" in names and f"{blk}.{tb}.ff.fc2" in names


def test_unet_cross_attention_uses_class_context() -> None:
    model = unet_digits.build({}, torch_generator(3, "x"))
    # zero-initialised residual outputs make the untrained net ignore y: perturb them
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch_generator(3, "p", p.numel())))
    x, t, _ = unet_digits.example_inputs(2, torch_generator(0, "x"))
    a = model(x, t, torch.tensor([1, 1]))
    b = model(x, t, torch.tensor([7, 7]))
    assert not torch.allclose(a, b)


def test_vdit_blocks_alternate_and_frames_vary() -> None:
    model = vdit_digits.build({})
    kinds = [blk.kind for blk in model.blocks]
    assert kinds == ["spatial", "temporal"] * (len(kinds) // 2)
    names = {n for n, _ in model.named_modules()}
    assert {"blocks.1.attn.qkv", "blocks.1.mlp.fc2", "blocks.0.adaLN_modulation"} <= names
    _, t, y, d = vdit_digits.example_inputs(2, torch_generator(0, "v"))
    for frames in (4, 8):
        xf = torch.randn(2, frames, 1, 16, 16, generator=torch_generator(0, frames))
        assert model(xf, t, y, d).shape == xf.shape
    with pytest.raises(ShapeError):
        model(torch.zeros(2, 9, 1, 16, 16), t, y, d)


def test_temporal_block_mixes_frames_and_spatial_does_not() -> None:
    blk_s = vdit_digits.VDiTBlock(16, 2, 2.0, "spatial")
    blk_t = vdit_digits.VDiTBlock(16, 2, 2.0, "temporal")
    gen = torch_generator(5, "blk")
    for blk in (blk_s, blk_t):
        with torch.no_grad():
            for p in blk.parameters():
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))
    x = torch.randn(1, 4, 3, 16, generator=gen)
    c = torch.randn(1, 16, generator=gen)
    x2 = x.clone()
    x2[:, 0] += torch.randn(3, 16, generator=gen)  # change frame 0 only
    with torch.no_grad():
        ds_ = (blk_s(x2, c) - blk_s(x, c))[:, 1:].abs().max()
        dt_ = (blk_t(x2, c) - blk_t(x, c))[:, 1:].abs().max()
    assert float(ds_) == 0.0
    assert float(dt_) > 1e-3


# ---------------------------------------------------------------- video clips


@pytest.mark.parametrize("frames", [4, 8])
def test_make_clips_motion_and_determinism(frames: int) -> None:
    from accelsim.models.data import digits

    x, y = digits("test")
    x, y = x[:12], y[:12]
    d = torch.arange(12) % 4
    a, ya, da = vdit_digits.make_clips(x, y, d, frames)
    b, _, _ = vdit_digits.make_clips(x, y, d, frames)
    assert a.shape == (12, frames, 1, 16, 16) and torch.equal(a, b)
    assert torch.equal(ya, y) and torch.equal(da, d)
    assert float(a.min()) >= -1.0 and float(a.max()) <= 1.0
    assert torch.equal(vdit_digits.centroid_direction(a), d)
    # a wrong direction labelling is caught by the same check
    assert not torch.equal(vdit_digits.centroid_direction(a), (d + 1) % 4)


def test_make_clips_rejects_bad_input() -> None:
    x = torch.zeros(2, 1, 16, 16)
    y = torch.zeros(2, dtype=torch.int64)
    with pytest.raises(ShapeError):
        vdit_digits.make_clips(torch.zeros(2, 16, 16), y, y, 4)
    with pytest.raises(ConfigError):
        vdit_digits.make_clips(x, y, y, 9)
    with pytest.raises(AccelsimError):
        vdit_digits.make_clips(x, y, torch.tensor([0, 4]), 4)


# ---------------------------------------------------------------- training


@pytest.mark.parametrize("module", MODULES, ids=IDS)
def test_quick_training_is_deterministic(module, tmp_path: Path) -> None:
    m1 = module.train(0, tmp_path / "a", quick=True)
    m2 = module.train(0, tmp_path / "b", quick=True)
    name = module.NAME
    s1, s2 = _state(tmp_path / "a" / f"{name}.pt"), _state(tmp_path / "b" / f"{name}.pt")
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    m1.pop("train_seconds")
    m2.pop("train_seconds")
    assert m1 == m2 and math.isfinite(m1["final_loss"])
    assert (tmp_path / "a" / f"{name}.json").exists()
    if module is dit_digits:  # a different seed gives different weights
        module.train(1, tmp_path / "c", quick=True)
        s3 = _state(tmp_path / "c" / f"{name}.pt")
        assert any(not torch.equal(s1[k], s3[k]) for k in s1)


# ---------------------------------------------------------------- shipped checkpoints


@pytest.mark.parametrize("module", MODULES, ids=IDS)
def test_shipped_checkpoint_loads_weights_only(module) -> None:
    path = checkpoint_path(module.NAME)
    payload = torch.load(path, weights_only=True)
    assert set(payload) == {"name", "config", "state_dict", "metrics", "seed", "format_version"}
    assert payload["name"] == module.NAME
    cfg = payload["config"]
    assert (cfg["T"], cfg["beta_start"], cfg["beta_end"]) == (1000, 1e-4, 0.02)
    assert (cfg["schedule"], cfg["prediction"]) == ("linear", "eps")
    assert path.stat().st_size < 6e6
    model = load_model(module.NAME)
    assert not model.training


def _binom_lower(successes: int, n: int, alpha: float = 0.01) -> float:
    """One-sided Clopper-Pearson lower bound of a success probability."""
    return 0.0 if successes == 0 else float(stats.beta.ppf(alpha, successes, n - successes + 1))


@pytest.mark.parametrize("module", [dit_digits, unet_digits], ids=["dit-digits", "unet-digits"])
def test_shipped_image_model_samples_the_conditioned_class(module) -> None:
    model = load_model(module.NAME)
    labels = torch.arange(30) % 10
    imgs = module.sample(model, labels, steps=20, guidance=3.0, generator=torch_generator(0, "t"))
    assert imgs.shape == (30, 1, 16, 16)
    few = module.sample(model, labels[:4], steps=3, guidance=3.0, generator=torch_generator(1, "t"))
    again = module.sample(
        model, labels[:4], steps=3, guidance=3.0, generator=torch_generator(1, "t")
    )
    assert torch.equal(few, again)
    assert float(imgs.min()) >= -1.0 and float(imgs.max()) <= 1.0
    pred = ds.classify_digits(imgs)
    hits = int((pred == labels).sum())
    # the accuracy is significantly above chance (10 %) and above the documented floor
    assert stats.binomtest(hits, 30, 0.1, alternative="greater").pvalue < 1e-6
    floor = IMAGE_CLASS_FLOOR[module.NAME]
    assert hits / 30 >= floor
    # negative control: scoring the same samples against shifted labels fails the floor
    wrong = int((pred == (labels + 1) % 10).sum())
    assert wrong / 30 < floor and _binom_lower(wrong, 30) < 0.3


def test_shipped_video_model_moves_in_the_conditioned_direction() -> None:
    model = load_model(vdit_digits.NAME)
    labels = torch.arange(32) % 10
    dirs = torch.arange(32) % 4
    clips = vdit_digits.sample(
        model, labels, dirs, frames=4, steps=20, guidance=3.0, generator=torch_generator(0, "v")
    )
    assert clips.shape == (32, 4, 1, 16, 16)
    assert float(clips.min()) >= -1.0 and float(clips.max()) <= 1.0
    got = vdit_digits.centroid_direction(clips)
    hits = int((got == dirs).sum())
    # significantly above chance (25 %) and above the documented floor
    assert stats.binomtest(hits, 32, 0.25, alternative="greater").pvalue < 1e-3
    assert hits / 32 >= VIDEO_DIRECTION_FLOOR
    # negative control: the same clips scored against rotated directions fail the floor
    wrong = int((got == (dirs + 1) % 4).sum())
    assert wrong / 32 < VIDEO_DIRECTION_FLOOR
    ev = vdit_digits.evaluate_clips(clips, labels, dirs)
    assert ev["class_accuracy"] >= VIDEO_CLASS_FLOOR
