"""DDPM schedule, training loop, DDIM sampler and sample scoring shared by the small diffusion models.

Conventions (the ones ``accelsim.diffusion`` relies on; every checkpoint's ``config`` repeats them
under the keys ``T``, ``beta_start``, ``beta_end``, ``schedule``, ``prediction``):

* DDPM forward process with ``schedule = "linear"`` betas from ``beta_start = 1e-4`` to
  ``beta_end = 0.02`` over ``T = 1000`` training steps (Ho et al. 2020, "Denoising Diffusion
  Probabilistic Models", Sec. 4: the same three numbers), ``alpha_bar_t = prod_{s<=t} (1 - beta_s)``
  with ``t`` indexed ``0 .. T-1``; ``x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps``
  (Ho et al. Eq. 4).
* ``prediction = "eps"``: the network predicts ``eps``; trained with the simple MSE loss
  (Ho et al. Eq. 14), optionally Min-SNR-weighted (:class:`TrainSpec`; the target stays eps).
* The evaluation sampler clamps the predicted ``x_0`` to ``[-1, 1]`` at every step; recommended
  guidance 3.0 with 20 DDIM steps (timesteps ``round(linspace(T - 1, 0, steps))``).
* Conditions are integer labels with one extra *null* value (``num_classes``); during training
  each condition is replaced by its null value with probability ``p_uncond`` (0.1, the value of
  Ho & Salimans 2022, "Classifier-Free Diffusion Guidance") so that classifier-free guidance
  ``eps = eps_null + s * (eps_cond - eps_null)`` works at sampling time.
* Images live in ``[-1, 1]``.

The DDIM sampler here (Song et al. 2021, "Denoising Diffusion Implicit Models", Eq. 12 with
``eta = 0``) is the small deterministic evaluator used by training and tests; the simulator's
sampler lives in ``accelsim.diffusion``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from accelsim.errors import AccelsimError, ConfigError

__all__ = [
    "SCHEDULE_DEFAULTS",
    "TrainSpec",
    "alphas_cumprod",
    "class_accuracy",
    "classify_digits",
    "ddim_sample",
    "ddim_timesteps",
    "fit_diffusion",
    "init_module",
    "on_meta",
    "q_sample",
    "timestep_embedding",
]

SCHEDULE_DEFAULTS: dict[str, Any] = {
    "T": 1000,
    "beta_start": 1e-4,
    "beta_end": 0.02,
    "schedule": "linear",
    "prediction": "eps",
}
"""DDPM schedule of Ho et al. 2020 (Sec. 4): linear betas 1e-4 .. 0.02 over T = 1000, eps target."""


def alphas_cumprod(config: dict[str, Any]) -> Tensor:
    """``alpha_bar_t`` for ``t = 0 .. T-1`` (float64) from the schedule keys of ``config``.

    Raises :class:`ConfigError` for an unknown schedule / prediction or out-of-range betas.
    """
    cfg = {**SCHEDULE_DEFAULTS, **{k: config[k] for k in SCHEDULE_DEFAULTS if k in config}}
    if cfg["schedule"] != "linear":
        raise ConfigError(f"schedule: got {cfg['schedule']!r}, expected 'linear'")
    if cfg["prediction"] != "eps":
        raise ConfigError(f"prediction: got {cfg['prediction']!r}, expected 'eps'")
    T = cfg["T"]
    if not isinstance(T, int) or T < 2:
        raise ConfigError(f"T: got {T!r}, expected an integer >= 2")
    b0, b1 = float(cfg["beta_start"]), float(cfg["beta_end"])
    if not 0.0 < b0 <= b1 < 1.0:
        raise ConfigError(
            f"beta_start/beta_end: got {b0!r}/{b1!r}, expected 0 < beta_start <= beta_end < 1"
        )
    betas = torch.linspace(b0, b1, T, dtype=torch.float64)
    return torch.cumprod(1.0 - betas, dim=0)


def q_sample(x0: Tensor, t: Tensor, noise: Tensor, abar: Tensor) -> Tensor:
    """``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise`` (Ho et al. 2020, Eq. 4), per sample."""
    a = abar[t].to(x0.dtype).view(-1, *([1] * (x0.dim() - 1)))
    return a.sqrt() * x0 + (1.0 - a).sqrt() * noise


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding of integer timesteps, shape ``(N, dim)``.

    ``max_period = 10000`` as in Vaswani et al. 2017 / the DiT reference code.
    """
    half = dim // 2
    freqs = torch.exp(
        -np.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half
    )
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


def ddim_timesteps(T: int, steps: int) -> list[int]:
    """Evenly spaced DDIM timesteps, descending, always starting at ``T - 1`` and ending at 0."""
    if not 1 <= steps <= T:
        raise ConfigError(f"steps: got {steps!r}, expected 1 <= steps <= T = {T}")
    ts = np.linspace(T - 1, 0, steps).round().astype(np.int64)
    return [int(v) for v in ts]


EpsFn = Callable[[Tensor, Tensor, tuple[Tensor, ...]], Tensor]


@torch.no_grad()
def ddim_sample(
    eps_fn: EpsFn,
    shape: Sequence[int],
    conds: tuple[Tensor, ...],
    nulls: tuple[int, ...],
    abar: Tensor,
    *,
    steps: int,
    guidance: float,
    generator: torch.Generator,
) -> Tensor:
    """Deterministic DDIM (eta = 0, Song et al. 2021 Eq. 12) with classifier-free guidance.

    ``eps_fn(x, t, conds)`` is the network; conditional and null passes run as one batch of
    ``2N``. Returns ``x_0`` clamped to ``[-1, 1]``. The initial noise comes from ``generator``.
    """
    x = torch.randn(*shape, generator=generator)
    n = x.shape[0]
    null_conds = tuple(torch.full_like(c, v) for c, v in zip(conds, nulls, strict=True))
    both = tuple(torch.cat([c, nc]) for c, nc in zip(conds, null_conds, strict=True))
    ts = ddim_timesteps(abar.numel(), steps)
    for i, t in enumerate(ts):
        tt = torch.full((2 * n,), t, dtype=torch.int64)
        e_c, e_u = eps_fn(torch.cat([x, x]), tt, both).chunk(2)
        eps = e_u + guidance * (e_c - e_u)
        a_t = float(abar[t])
        a_prev = float(abar[ts[i + 1]]) if i + 1 < len(ts) else 1.0
        x0 = ((x - (1 - a_t) ** 0.5 * eps) / a_t**0.5).clamp(-1.0, 1.0)
        eps = (x - a_t**0.5 * x0) / (1 - a_t) ** 0.5
        x = a_prev**0.5 * x0 + (1 - a_prev) ** 0.5 * eps
    return x.clamp(-1.0, 1.0)


@dataclass(frozen=True)
class TrainSpec:
    """Optimisation settings of :func:`fit_diffusion` (steps, batch size, AdamW lr, EMA decay)."""

    steps: int
    batch: int
    lr: float
    ema_decay: float
    p_uncond: float = 0.1
    warmup: int = 50
    weight_decay: float = 0.0
    min_snr_gamma: float | None = None
    """If set, weight each sample's eps-MSE by ``min(SNR_t, gamma) / SNR_t`` (Min-SNR-gamma,
    Hang et al. 2023, "Efficient Diffusion Training via Min-SNR Weighting Strategy", Eq. 9 for
    eps prediction; gamma = 5 is their default). None: the plain loss of Ho et al. Eq. 14."""


def fit_diffusion(
    model: nn.Module,
    eps_fn: EpsFn,
    x0: Tensor,
    conds: tuple[Tensor, ...],
    nulls: tuple[int, ...],
    abar: Tensor,
    spec: TrainSpec,
    generator: torch.Generator,
    *,
    log_every: int = 0,
) -> dict[str, float]:
    """Train ``model`` on eps-MSE; at the end its parameters are replaced by their EMA.

    Every random draw (minibatch indices, timesteps, noise, label dropout) comes from
    ``generator``, so the result is a function of the seed. Returns ``final_loss`` (mean of the
    last 10 % of steps), ``train_seconds`` and ``steps``.
    """
    opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    ema = [p.detach().clone() for p in model.parameters()]
    T = abar.numel()
    n = x0.shape[0]
    losses: list[float] = []
    t_start = time.perf_counter()
    model.train()
    for step in range(spec.steps):
        idx = torch.randint(0, n, (spec.batch,), generator=generator)
        xb = x0[idx]
        t = torch.randint(0, T, (spec.batch,), generator=generator)
        noise = torch.randn(xb.shape, generator=generator)
        cb = []
        for c, v in zip(conds, nulls, strict=True):
            drop = torch.rand(spec.batch, generator=generator) < spec.p_uncond
            cb.append(torch.where(drop, torch.full_like(c[idx], v), c[idx]))
        xt = q_sample(xb, t, noise, abar)
        pred = eps_fn(xt, t, tuple(cb))
        if spec.min_snr_gamma is None:
            loss = torch.nn.functional.mse_loss(pred, noise)
        else:
            err = (pred - noise).pow(2).flatten(1).mean(1)
            snr = (abar[t] / (1.0 - abar[t])).float()
            loss = (err * snr.clamp(max=spec.min_snr_gamma) / snr).mean()
        for g in opt.param_groups:
            g["lr"] = spec.lr * min(1.0, (step + 1) / max(spec.warmup, 1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        d = min(spec.ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for e, p in zip(ema, model.parameters(), strict=True):
                e.mul_(d).add_(p.detach(), alpha=1 - d)
        losses.append(float(loss.detach()))
        if log_every and (step + 1) % log_every == 0:
            elapsed = time.perf_counter() - t_start
            print(
                f"step {step + 1}/{spec.steps} loss {np.mean(losses[-log_every:]):.4f} {elapsed:.0f}s",
                flush=True,
            )
    with torch.no_grad():
        for e, p in zip(ema, model.parameters(), strict=True):
            p.copy_(e)
    model.eval()
    tail = max(1, len(losses) // 10)
    return {
        "final_loss": float(np.mean(losses[-tail:])),
        "train_seconds": time.perf_counter() - t_start,
        "steps": float(spec.steps),
    }


_FALLBACK: list[Any] = []


def classify_digits(images: Tensor) -> Tensor:
    """Predicted digit class of ``(N, 1, 16, 16)`` images in ``[-1, 1]``.

    Uses ``feature-net`` from :mod:`accelsim.models.zoo` when it loads; otherwise a logistic
    regression fitted (deterministically, lbfgs) on ``digits("train")``.
    """
    try:
        from accelsim.models.zoo import load_model

        net = load_model("feature-net")
        with torch.no_grad():
            return net(images.float()).argmax(-1)
    except (ImportError, AccelsimError):  # zoo or checkpoint not available
        pass
    if not _FALLBACK:
        from sklearn.linear_model import LogisticRegression

        from accelsim.models.data import digits

        x, y = digits("train")
        clf = LogisticRegression(max_iter=2000, C=1.0)
        clf.fit(x.reshape(len(x), -1).numpy(), y.numpy())
        _FALLBACK.append(clf)
    pred = _FALLBACK[0].predict(images.reshape(len(images), -1).numpy())
    return torch.as_tensor(pred, dtype=torch.int64)


def class_accuracy(images: Tensor, labels: Tensor) -> float:
    """Fraction of ``images`` that :func:`classify_digits` assigns to ``labels``."""
    return float((classify_digits(images) == labels).float().mean())


def init_module(model: nn.Module, generator: torch.Generator) -> None:
    """Initialise every parameter of ``model`` from ``generator`` (never torch's global RNG).

    Linear / Conv weights: Xavier-uniform (Glorot & Bengio 2010, the DiT reference init);
    Embedding weights: normal, std 0.02 (DiT label table); biases 0; norm weights 1, biases 0.
    Modules are visited in ``named_modules`` order. Models zero their adaLN-Zero / output layers
    afterwards themselves.
    """
    with torch.no_grad():
        for module in model.modules():
            for pname, p in module.named_parameters(recurse=False):
                if isinstance(module, nn.Linear | nn.Conv2d | nn.Conv1d) and pname == "weight":
                    nn.init.xavier_uniform_(p.view(p.shape[0], -1), generator=generator)
                elif isinstance(module, nn.Embedding):
                    nn.init.normal_(p, std=0.02, generator=generator)
                elif isinstance(module, nn.LayerNorm | nn.GroupNorm):
                    p.fill_(1.0 if pname == "weight" else 0.0)
                elif pname == "bias":
                    p.zero_()
                else:
                    nn.init.normal_(p, std=0.02, generator=generator)


def on_meta(factory: Callable[[], nn.Module]) -> nn.Module:
    """``factory()`` built on the meta device and moved to (uninitialised) CPU memory.

    Building on ``meta`` keeps module constructors from drawing from torch's global RNG; call
    :func:`init_module` afterwards. Non-persistent buffers are recomputed by ``factory``'s
    ``reset_buffers`` method when present.
    """
    with torch.device("meta"):
        model = factory()
    model = model.to_empty(device="cpu")
    reset = getattr(model, "reset_buffers", None)
    if callable(reset):
        reset()
    return model


def image_example_inputs(
    batch: int, generator: torch.Generator, config: dict[str, Any]
) -> tuple[Tensor, ...]:
    """``(x, t, y)`` of a class-conditional 16x16 image model: noise ``(batch, 1, 16, 16)``,
    timesteps in ``[0, T)``, labels in ``0..num_classes`` (the last is the null class)."""
    x = torch.randn(batch, 1, 16, 16, generator=generator)
    t = torch.randint(0, config["T"], (batch,), generator=generator)
    y = torch.randint(0, config["num_classes"] + 1, (batch,), generator=generator)
    return x, t, y


def sample_images(
    model: nn.Module,
    y: Tensor,
    default_config: dict[str, Any],
    *,
    steps: int,
    guidance: float,
    generator: torch.Generator,
) -> Tensor:
    """DDIM samples ``(N, 1, 16, 16)`` in ``[-1, 1]`` of a class-conditional image model for
    labels ``y`` with CFG ``guidance`` (schedule and null class from the model's config)."""
    cfg = getattr(model, "config", default_config)
    return ddim_sample(
        lambda x, t, c: model(x, t, c[0]),
        (len(y), 1, 16, 16),
        (y,),
        (cfg["null_class"],),
        alphas_cumprod(cfg),
        steps=steps,
        guidance=guidance,
        generator=generator,
    )
