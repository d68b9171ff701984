"""DDPM / DDIM sampling with timestep hooks, latent checkpoints and rollback.

The sampler is plain torch and knows nothing about the accelerator: callers observe and steer
it through two hooks,

* ``on_step(step, t)`` before each denoising step's model evaluation (the interceptor sets its
  timestep context there; a DVFS policy picks the step's operating point), and
* ``guard(step, t) -> "ok" | "rerun" | "rollback"`` after it (ABFT reports whether the step
  saw a critical error): ``rerun`` recomputes the step from the same input latent (the caller
  has switched to a safe operating point), ``rollback`` restores the latest latent checkpoint
  (taken every ``checkpoint_interval`` steps, DRIFT's offload interval) and recomputes from
  there. Each step may be redone at most ``max_redo`` times; after that its result is kept.

All noise (the initial latent and each step's ancestral noise) is drawn up front from the
caller's ``torch.Generator``, so a golden run and a faulty run with the same seed see the same
noise, and a redone step sees the noise it saw the first time.

Update rules: DDIM (Song et al. 2021, eq. 12, with ``eta``) and DDPM ancestral sampling on the
respaced schedule (Nichol & Dhariwal 2021, s4), predicted ``x0`` clipped to the data range
[-1, 1] and ``eps`` recomputed from it (as guided-diffusion does). Classifier-free guidance
(Ho & Salimans 2022): ``eps = eps_u + w (eps_c - eps_u)`` with the null condition batched
alongside.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from accelsim.config import check_choice, check_float, check_int
from accelsim.diffusion.schedule import NoiseSchedule

METHODS = ("ddim", "ddpm")
GUARD_ACTIONS = ("ok", "rerun", "rollback")

ModelFn = Callable[..., torch.Tensor]


@dataclass(frozen=True)
class SamplerConfig:
    """How to sample: ``method`` (ddim | ddpm), number of ``steps``, classifier-free
    ``guidance`` scale (1 = no guidance, no unconditional pass), DDIM ``eta`` (0 =
    deterministic), latent ``checkpoint_interval`` in steps (0 = none) and ``max_redo``
    (recomputations allowed per step)."""

    method: str = "ddim"
    steps: int = 20
    guidance: float = 1.0
    eta: float = 0.0
    checkpoint_interval: int = 0
    max_redo: int = 2

    def __post_init__(self) -> None:
        check_choice("sampler.method", self.method, METHODS)
        object.__setattr__(self, "steps", check_int("steps", self.steps, 1, 10_000))
        object.__setattr__(self, "guidance", check_float("guidance", self.guidance, 0.0, 100.0))
        object.__setattr__(self, "eta", check_float("eta", self.eta, 0.0, 1.0))
        object.__setattr__(
            self,
            "checkpoint_interval",
            check_int("checkpoint_interval", self.checkpoint_interval, 0, 10_000),
        )
        object.__setattr__(self, "max_redo", check_int("max_redo", self.max_redo, 0, 100))


@dataclass
class SampleResult:
    """The final sample and what the run did.

    ``evaluations`` counts denoising-step evaluations (including redone ones); ``reruns`` and
    ``rollbacks`` the guard's actions; ``recomputed_steps`` the steps evaluated again because
    of a rollback; ``checkpoint_bytes``/``restore_bytes`` the latent traffic to and from DRAM
    (fp32) for the caller to charge; ``events`` one dict per guard action.
    """

    x: torch.Tensor
    timesteps: list[int]
    evaluations: int = 0
    reruns: int = 0
    rollbacks: int = 0
    recomputed_steps: int = 0
    checkpoints: int = 0
    checkpoint_bytes: int = 0
    restore_bytes: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)


def _batch(
    cond: dict[str, torch.Tensor], null: dict[str, torch.Tensor] | None
) -> dict[str, torch.Tensor]:
    if null is None:
        return cond
    return {k: torch.cat([v, null[k]]) for k, v in cond.items()}


def _eps(
    model: ModelFn,
    x: torch.Tensor,
    t: int,
    cond: dict[str, torch.Tensor],
    null: dict[str, torch.Tensor] | None,
    guidance: float,
) -> torch.Tensor:
    n = x.shape[0]
    use_cfg = null is not None and guidance != 1.0
    xin = torch.cat([x, x]) if use_cfg else x
    tt = torch.full((xin.shape[0],), t, dtype=torch.long)
    out = model(xin, tt, **(_batch(cond, null) if use_cfg else cond))
    if not use_cfg:
        return out
    eps_c, eps_u = out[:n], out[n:]
    return eps_u + guidance * (eps_c - eps_u)


def sample(
    model: ModelFn,
    shape: tuple[int, ...],
    cond: dict[str, torch.Tensor],
    *,
    schedule: NoiseSchedule,
    config: SamplerConfig,
    generator: torch.Generator,
    null_cond: dict[str, torch.Tensor] | None = None,
    on_step: Callable[[int, int], None] | None = None,
    guard: Callable[[int, int], str] | None = None,
) -> SampleResult:
    """Draw samples of ``shape`` (batch first) from ``model(x, t, **cond) -> eps``.

    ``null_cond`` (same keys as ``cond``) is the unconditional input for classifier-free
    guidance (used when ``config.guidance != 1``). See the module docstring for the hooks.
    """
    if config.guidance != 1.0 and null_cond is None:
        from accelsim.errors import ConfigError

        raise ConfigError(
            f"guidance: got {config.guidance:g}, expected 1 for a model without a null condition"
        )
    abar = schedule.alphas_cumprod()
    ts = [int(t) for t in schedule.timesteps(config.steps)]
    n_steps = len(ts)
    x = torch.randn(shape, generator=generator, dtype=torch.float32)
    noise = [torch.randn(shape, generator=generator, dtype=torch.float32) for _ in range(n_steps)]
    result = SampleResult(x=x, timesteps=ts)
    latent_bytes = x.numel() * 4
    checkpoints: dict[int, torch.Tensor] = {}
    redo = [0] * n_steps
    i = 0
    with torch.no_grad():
        while i < n_steps:
            if config.checkpoint_interval and i % config.checkpoint_interval == 0:
                if i not in checkpoints:
                    checkpoints[i] = x.clone()
                    result.checkpoints += 1
                    result.checkpoint_bytes += latent_bytes
            t = ts[i]
            if on_step is not None:
                on_step(i, t)
            eps = _eps(model, x, t, cond, null_cond, config.guidance)
            result.evaluations += 1
            a_t = float(abar[t])
            a_prev = float(abar[ts[i + 1]]) if i + 1 < n_steps else 1.0
            x0 = ((x - math.sqrt(1.0 - a_t) * eps) / math.sqrt(a_t)).clamp(-1.0, 1.0)
            eps = (x - math.sqrt(a_t) * x0) / math.sqrt(1.0 - a_t)
            if config.method == "ddim":
                sigma = (
                    config.eta
                    * math.sqrt((1.0 - a_prev) / (1.0 - a_t))
                    * math.sqrt(max(0.0, 1.0 - a_t / a_prev))
                )
                x_new = (
                    math.sqrt(a_prev) * x0
                    + math.sqrt(max(0.0, 1.0 - a_prev - sigma**2)) * eps
                    + sigma * noise[i]
                )
            else:
                beta = 1.0 - a_t / a_prev
                c0 = math.sqrt(a_prev) * beta / (1.0 - a_t)
                ct = math.sqrt(1.0 - beta) * (1.0 - a_prev) / (1.0 - a_t)
                var = beta * (1.0 - a_prev) / (1.0 - a_t)
                x_new = c0 * x0 + ct * x
                if i + 1 < n_steps:
                    x_new = x_new + math.sqrt(var) * noise[i]
            action = "ok" if guard is None else guard(i, t)
            check_choice("guard action", action, GUARD_ACTIONS)
            if action != "ok" and redo[i] < config.max_redo:
                redo[i] += 1
                result.events.append({"step": i, "t": t, "action": action})
                if action == "rerun":
                    result.reruns += 1
                    continue
                if checkpoints:
                    back = max(j for j in checkpoints if j <= i)
                    x = checkpoints[back].clone()
                    result.restore_bytes += latent_bytes
                    result.recomputed_steps += i - back
                    result.rollbacks += 1
                    i = back
                    continue
                # no checkpoint to roll back to: recompute the step itself
                result.reruns += 1
                continue
            x = x_new
            i += 1
    result.x = x
    return result
