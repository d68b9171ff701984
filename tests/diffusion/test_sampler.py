"""Sampler checks against closed forms: a point mass is recovered exactly and Gaussian data
keeps its variance when the model is the exact (Bayes-optimal) noise predictor."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from accelsim.diffusion.sampler import SamplerConfig, sample
from accelsim.diffusion.schedule import NoiseSchedule
from accelsim.errors import ConfigError

SCHED = NoiseSchedule()
ABAR = SCHED.alphas_cumprod()


def point_mass_model(target: torch.Tensor):
    """Optimal eps predictor when the data is the single point ``target``."""

    def model(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = torch.tensor(ABAR, dtype=torch.float32)[t].view(-1, *([1] * (x.dim() - 1)))
        return (x - a.sqrt() * target) / (1 - a).sqrt()

    return model


def gaussian_model(s: float, abar=ABAR):
    """Optimal eps predictor for data ~ N(0, s^2) per element: E[eps | x_t]."""

    def model(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = torch.tensor(abar, dtype=torch.float32)[t].view(-1, *([1] * (x.dim() - 1)))
        return (1 - a).sqrt() * x / (a * s * s + 1 - a)

    return model


@pytest.mark.parametrize("method", ["ddim", "ddpm"])
def test_point_mass_is_recovered(method):
    target = torch.linspace(-0.8, 0.8, 16).view(1, 1, 4, 4)
    res = sample(
        point_mass_model(target),
        (3, 1, 4, 4),
        {},
        schedule=SCHED,
        config=SamplerConfig(method=method, steps=25),
        generator=torch.Generator().manual_seed(0),
    )
    assert torch.allclose(res.x, target.expand(3, -1, -1, -1), atol=1e-4)
    assert res.evaluations == 25
    assert res.timesteps[0] == 999 and res.timesteps[-1] == 0


def expected_variance(method: str, s: float, steps: int) -> float:
    """Final sample variance for N(0, s^2) data and the optimal predictor: every step is linear
    in x (plus independent noise for DDPM), so the variance follows an exact recursion. (It is
    below s^2: few-step samplers shrink the variance, a known discretization effect.)"""
    ts = SCHED.timesteps(steps)
    var = 1.0
    for i, t in enumerate(ts):
        a = ABAR[t]
        ap = ABAR[ts[i + 1]] if i + 1 < len(ts) else 1.0
        v = a * s * s + 1 - a
        c = math.sqrt(a) * s * s / v  # x0_hat = c x
        e = math.sqrt(1 - a) / v  # eps_hat = e x
        if method == "ddim":
            var *= (math.sqrt(ap) * c + math.sqrt(1 - ap) * e) ** 2
        else:
            beta = 1 - a / ap
            c0 = math.sqrt(ap) * beta / (1 - a)
            ct = math.sqrt(1 - beta) * (1 - ap) / (1 - a)
            var = (c0 * c + ct) ** 2 * var
            if i + 1 < len(ts):
                var += beta * (1 - ap) / (1 - a)
    return var


@pytest.mark.parametrize("method", ["ddim", "ddpm"])
def test_gaussian_data_matches_the_closed_form_variance(method):
    s = 0.3
    res = sample(
        gaussian_model(s),
        (4000, 8),
        {},
        schedule=SCHED,
        config=SamplerConfig(method=method, steps=100),
        generator=torch.Generator().manual_seed(1),
    )
    x = res.x.numpy().ravel().astype(np.float64)
    # chi-square test of the sample variance (n = 32000 independent values)
    n = x.size
    target = expected_variance(method, s, 100)
    assert 0.7 * s**2 < target <= s**2
    stat = (n - 1) * x.var(ddof=1) / target
    p = 2 * min(stats.chi2.cdf(stat, n - 1), stats.chi2.sf(stat, n - 1))
    assert p > 1e-3, (x.std(), p)
    assert abs(x.mean()) < 4 * s / math.sqrt(n)


def test_wrong_schedule_fails_the_variance_test():
    """Negative test: a model trained on another schedule gives the wrong variance."""
    s = 0.3
    wrong = NoiseSchedule(beta_end=0.04).alphas_cumprod()
    res = sample(
        gaussian_model(s, abar=wrong),
        (4000, 8),
        {},
        schedule=SCHED,
        config=SamplerConfig(method="ddim", steps=100),
        generator=torch.Generator().manual_seed(1),
    )
    x = res.x.numpy().ravel().astype(np.float64)
    n = x.size
    stat = (n - 1) * x.var(ddof=1) / expected_variance("ddim", s, 100)
    p = 2 * min(stats.chi2.cdf(stat, n - 1), stats.chi2.sf(stat, n - 1))
    assert p < 1e-3


def test_hooks_rerun_and_rollback_and_determinism():
    target = torch.zeros(1, 2)
    seen: list[tuple[int, int]] = []
    calls = {"n": 0}

    def guard(step: int, t: int) -> str:
        calls["n"] += 1
        if step == 3 and calls["n"] < 10:
            return "rerun"
        if step == 7:
            return "rollback"
        return "ok"

    cfg = SamplerConfig(steps=10, checkpoint_interval=5, max_redo=1)
    res = sample(
        point_mass_model(target),
        (2, 2),
        {},
        schedule=SCHED,
        config=cfg,
        generator=torch.Generator().manual_seed(0),
        on_step=lambda i, t: seen.append((i, t)),
        guard=guard,
    )
    assert res.reruns == 1 and res.rollbacks == 1
    # rollback from step 7 to the checkpoint at step 5: steps 5 and 6 recomputed
    assert res.recomputed_steps == 2
    assert res.evaluations == 10 + 1 + 3
    assert res.checkpoints == 2 and res.checkpoint_bytes == 2 * 2 * 2 * 4
    assert res.restore_bytes == 2 * 2 * 4
    assert [e["action"] for e in res.events] == ["rerun", "rollback"]
    # the redone steps see the same noise: the result equals the undisturbed run
    plain = sample(
        point_mass_model(target),
        (2, 2),
        {},
        schedule=SCHED,
        config=cfg,
        generator=torch.Generator().manual_seed(0),
    )
    assert torch.equal(res.x, plain.x)
    steps = [i for i, _ in seen]
    assert steps[:4] == [0, 1, 2, 3] and steps.count(3) == 2 and steps.count(5) == 2


def test_classifier_free_guidance_combines_conditional_and_null():
    def model(x, t, y):
        return y.float().view(-1, 1) * torch.ones_like(x) * 0.0 + (y == 10).float().view(-1, 1)

    cond = {"y": torch.tensor([3, 4])}
    null = {"y": torch.tensor([10, 10])}
    batches: list[int] = []

    def wrapped(x, t, y):
        batches.append(x.shape[0])
        return model(x, t, y)

    sample(
        wrapped,
        (2, 3),
        cond,
        null_cond=null,
        schedule=SCHED,
        config=SamplerConfig(steps=3, guidance=3.0),
        generator=torch.Generator().manual_seed(0),
    )
    assert batches == [4, 4, 4]
    with pytest.raises(ConfigError, match="guidance"):
        sample(
            wrapped,
            (2, 3),
            cond,
            schedule=SCHED,
            config=SamplerConfig(steps=3, guidance=3.0),
            generator=torch.Generator().manual_seed(0),
        )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "euler"}, "sampler.method: got 'euler'"),
        ({"steps": 0}, "steps: got 0"),
        ({"eta": 2.0}, "eta: got 2"),
    ],
)
def test_bad_config_one_line(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        SamplerConfig(**kwargs)


def test_schedule_respacing_and_errors():
    ts = SCHED.timesteps(4)
    assert list(ts) == [999, 666, 333, 0]
    assert NoiseSchedule(schedule="cosine").alphas_cumprod()[-1] < 1e-3
    with pytest.raises(ConfigError, match=r"diffusion\.schedule"):
        NoiseSchedule(schedule="quadratic")
    with pytest.raises(ConfigError, match="steps: got 2000"):
        SCHED.timesteps(2000)


def test_user_diffusers_model_samples_through_the_interceptor(tiny_diffusers_dit):
    """A user's diffusers DiT (tiny, random, built locally) samples with per-step timesteps on
    the array; error-free it equals the same sampling under the W8A8 reference."""
    from accelsim.config import OperatingPoint, load_preset
    from accelsim.experiments.runner import make_accelerator
    from accelsim.torch.intercept import Interceptor, w8a8_reference

    dit = tiny_diffusers_dit

    def eps(x, t, y):
        return dit(x, timestep=t, class_labels=y).sample

    cond = {"y": torch.tensor([1, 2])}
    hw = load_preset("array-32x32")
    acc = make_accelerator(hw, kernel="fast")
    steps: list[int | None] = []

    def run(icpt):
        with torch.no_grad(), icpt:

            def on_step(i, t):
                icpt.timestep = i

            def model(x, t, y):
                steps.append(icpt.timestep)
                return eps(x, t, y)

            return sample(
                model,
                (2, 4, 8, 8),
                cond,
                schedule=SCHED,
                config=SamplerConfig(steps=3),
                generator=torch.Generator().manual_seed(0),
                on_step=on_step,
            ).x

    out = run(Interceptor(acc, OperatingPoint.nominal(hw.tech)))
    ref = run(w8a8_reference())
    assert torch.equal(out, ref) and torch.isfinite(out).all()
    assert steps[:3] == [0, 1, 2]
    assert {c.timestep for c in acc.report().by_context} == {0, 1, 2}
