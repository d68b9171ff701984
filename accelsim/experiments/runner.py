"""One model, one configuration: the golden run and the run under test, and their comparison.

Used by ``accelsim run`` and, per configuration, by ``accelsim explore``, the campaigns and the
studies. A :class:`ModelSession` loads a shipped model once (plus the feature network for image
metrics) and runs it any number of times through the interceptor:

* **diffusion** (``dit-digits``, ``unet-digits``): class-conditional samples, labels ``0..9``
  cycling, one image each; the sampler's timestep reaches the interceptor;
* **video-diffusion** (``vdit-digits``): clips conditioned on class and direction;
* **classifier** (``vit-digits``, ``feature-net``): the digits test split;
* **lm** (``gpt-tiny``): next-token logits on validation windows.

The *golden run* is the same quantized (W8A8) model on the same accelerator at the nominal
operating point with no injected faults: bit-identical to the W8A8 reference (no MAC can fail
at nominal), and its books give the nominal energy and latency that savings are measured
against. Noise, labels and inputs depend only on the seed, so golden and test runs see the
same inputs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from accelsim.accelerator import Accelerator, AcceleratorReport
from accelsim.config import HardwareConfig, OperatingPoint, check_float, check_int
from accelsim.context import GemmContext
from accelsim.errors import ConfigError
from accelsim.faults.base import FaultLog, FaultModel
from accelsim.rng import torch_generator

OpSource = OperatingPoint | Callable[[GemmContext], OperatingPoint]
StepHook = Callable[[int, int], None]
Guard = Callable[[int, int], str]


@dataclass(frozen=True)
class SessionConfig:
    """What to run: ``samples`` images/clips (generators), test inputs (classifiers, 0 = the
    whole test split) or token windows (LM); sampler ``steps``, ``method``, classifier-free
    ``guidance`` (None: the model's recommended scale, ``eval_guidance`` in its config)."""

    model: str = "dit-digits"
    samples: int = 10
    steps: int = 20
    method: str = "ddim"
    guidance: float | None = None
    frames: int | None = None

    def __post_init__(self) -> None:
        check_int("samples", self.samples, 0, 100_000)
        check_int("steps", self.steps, 1, 1000)
        if self.guidance is not None:
            check_float("guidance", self.guidance, 0.0, 100.0)


@dataclass
class Outcome:
    """One run: the model output (images, clips or logits), the accelerator's books, the
    injected-fault log, sampler statistics and wall time (s)."""

    output: torch.Tensor
    report: AcceleratorReport | None
    faults: FaultLog
    sampler: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0


class ModelSession:
    """A shipped model ready to run many configurations (loads it once)."""

    def __init__(
        self, config: SessionConfig, *, progress: Callable[[int, int], None] | None = None
    ) -> None:
        from accelsim.models.zoo import load_model, model_module

        self.config = config
        self.module = model_module(config.model)
        self.kind = str(self.module.KIND)
        self.model = load_model(config.model)
        mconf = dict(getattr(self.model, "accelsim_config", {}))
        #: Classifier-free guidance scale of the sampler (the config's, or the model's
        #: recommended ``eval_guidance``; 1 = off).
        self.guidance = float(
            config.guidance if config.guidance is not None else mconf.get("eval_guidance", 1.0)
        )
        self.progress = progress
        self._feature_net: torch.nn.Module | None = None
        self._inputs: dict[str, Any] | None = None

    # ------------------------------------------------------------------ inputs

    def feature_net(self) -> Any:
        """The shipped feature network (image metrics), loaded on first use."""
        if self._feature_net is None:
            from accelsim.models.zoo import load_model

            self._feature_net = load_model("feature-net")
        return self._feature_net

    def inputs(self) -> dict[str, Any]:
        """The run's inputs (deterministic): conditions for generators, data for the others."""
        if self._inputs is not None:
            return self._inputs
        n = self.config.samples
        if self.kind in ("diffusion", "video-diffusion"):
            n = n or 10
            y = torch.arange(n, dtype=torch.long) % 10
            cond: dict[str, torch.Tensor] = {"y": y}
            null: dict[str, torch.Tensor] = {"y": torch.full_like(y, 10)}
            if self.kind == "video-diffusion":
                cond["d"] = (torch.arange(n, dtype=torch.long) // 10 + torch.arange(n)) % 4
                null["d"] = torch.full_like(y, 4)
            self._inputs = {"cond": cond, "null": null, "labels": y}
        elif self.kind in ("classifier", "features"):
            from accelsim.models.data import digits

            x, y = digits("test")
            if n:
                x, y = x[:n], y[:n]
            self._inputs = {"x": x, "labels": y}
        elif self.kind == "lm":
            from accelsim.models import text

            context = int(dict(getattr(self.model, "accelsim_config", {})).get("context", 64))
            val = text.tokens("val")
            count = n or 32
            starts = np.linspace(0, val.numel() - context - 1, count).astype(np.int64)
            windows = torch.stack([val[int(s) : int(s) + context + 1] for s in starts])
            self._inputs = {"tokens": windows[:, :-1], "targets": windows[:, 1:]}
        else:  # pragma: no cover - zoo validates kinds
            raise ConfigError(f"model kind: got {self.kind!r}")
        return self._inputs

    # ------------------------------------------------------------------ running

    def run(
        self,
        accelerator: Accelerator,
        op: OpSource | None = None,
        *,
        faults: Sequence[FaultModel] = (),
        seed: int = 0,
        quant: Any = None,
        on_step: StepHook | None = None,
        guard: Guard | None = None,
        checkpoint_interval: int = 0,
    ) -> Outcome:
        """Run the model once on ``accelerator`` at ``op`` (or a per-GEMM policy) with
        ``faults``; ``seed`` fixes the sampler noise and the fault sites."""
        from accelsim.torch.intercept import Interceptor

        accelerator.reset()
        start = time.perf_counter()
        icpt = Interceptor(accelerator, op, faults=faults, quant=quant, seed=seed)
        inputs = self.inputs()
        sampler: dict[str, Any] = {}
        with torch.no_grad(), icpt:
            if self.kind in ("diffusion", "video-diffusion"):
                output, sampler = self._sample(
                    icpt, inputs, seed, on_step, guard, checkpoint_interval
                )
                # latent checkpoints offloaded to DRAM, and read back on rollback
                mem, tech = accelerator.hw.memory, accelerator.hw.tech
                for component, moved in (
                    ("checkpoint", int(sampler["checkpoint_bytes"])),
                    ("rollback", int(sampler["restore_bytes"])),
                ):
                    if moved:
                        accelerator.charge(
                            component, moved * tech.dram_j_per_byte, moved / mem.dram_bandwidth
                        )
            elif self.kind in ("classifier", "features"):
                output = self._batched(lambda xb: self.model(xb), inputs["x"])
            else:
                output = self._batched(lambda tb: self.model(tb), inputs["tokens"])
        return Outcome(
            output=output,
            report=accelerator.report(),
            faults=icpt.fault_log,
            sampler=sampler,
            wall_s=time.perf_counter() - start,
        )

    def _batched(
        self, fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, size: int = 128
    ) -> torch.Tensor:
        parts = []
        total = x.shape[0]
        for i in range(0, total, size):
            parts.append(fn(x[i : i + size]))
            if self.progress is not None:
                self.progress(min(i + size, total), total)
        return torch.cat(parts)

    def _sample(
        self,
        icpt: Any,
        inputs: dict[str, Any],
        seed: int,
        on_step: StepHook | None,
        guard: Guard | None,
        checkpoint_interval: int,
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        from accelsim.diffusion.sampler import SamplerConfig, sample
        from accelsim.diffusion.schedule import NoiseSchedule

        cfg = self.config
        mconf = dict(getattr(self.model, "accelsim_config", {}))
        schedule = NoiseSchedule.from_config(mconf)
        n = int(inputs["labels"].shape[0])
        size = int(mconf.get("image_size") or mconf.get("size") or 16)
        channels = int(mconf.get("in_channels") or mconf.get("channels") or 1)
        if self.kind == "video-diffusion":
            frames = cfg.frames or int(mconf.get("frames", 4))
            shape: tuple[int, ...] = (n, frames, channels, size, size)
        else:
            shape = (n, channels, size, size)
        steps = cfg.steps

        def step_hook(i: int, t: int) -> None:
            icpt.timestep = i
            if on_step is not None:
                on_step(i, t)
            if self.progress is not None:
                self.progress(i + 1, steps)

        res = sample(
            self.model,
            shape,
            inputs["cond"],
            null_cond=inputs["null"],
            schedule=schedule,
            config=SamplerConfig(
                method=cfg.method,
                steps=steps,
                guidance=self.guidance,
                checkpoint_interval=checkpoint_interval,
            ),
            generator=torch_generator(seed, "sampler", cfg.model),
            on_step=step_hook,
            guard=guard,
        )
        icpt.timestep = None
        stats = {
            "evaluations": res.evaluations,
            "reruns": res.reruns,
            "rollbacks": res.rollbacks,
            "recomputed_steps": res.recomputed_steps,
            "checkpoint_bytes": res.checkpoint_bytes,
            "restore_bytes": res.restore_bytes,
        }
        return res.x, stats

    # ------------------------------------------------------------------ metrics

    def compare(self, golden: Outcome, test: Outcome) -> dict[str, Any]:
        """Quality of ``test`` against ``golden`` (and the data), JSON-ready."""
        inputs = self.inputs()
        if self.kind in ("diffusion", "video-diffusion"):
            from accelsim.quality.summary import image_summary

            g, t = golden.output, test.output
            labels = inputs["labels"]
            if self.kind == "video-diffusion":
                frames = g.shape[1]
                g = g.flatten(0, 1)
                t = t.flatten(0, 1)
                labels = labels.repeat_interleave(frames)
            summary = image_summary(g, t, 2.0)
            out = {"psnr_db": summary["psnr"], "ssim": summary["ssim"]}
            out.update(generator_quality(self.feature_net(), g, t, labels))
            out["max_abs_diff"] = float((g - t).abs().max())
            return out
        if self.kind in ("classifier", "features"):
            from accelsim.quality.classifier import accuracy, critical_sdc, logits_error, top1_flips

            y = inputs["labels"]
            gl, tl = golden.output.numpy(), test.output.numpy()
            flips = top1_flips(gl, tl)
            sdc = critical_sdc(gl, tl, y.numpy())
            return {
                "accuracy": accuracy(tl, y.numpy()),
                "golden_accuracy": accuracy(gl, y.numpy()),
                "top1_flips": int(np.count_nonzero(flips)),
                "critical_sdc": int(np.count_nonzero(sdc)),
                "critical_sdc_rate": float(np.mean(sdc)),
                "inputs": int(y.shape[0]),
                **{f"logits_{k}": v for k, v in logits_error(gl, tl).items()},
            }
        from accelsim.quality.classifier import logits_error

        targets = inputs["targets"]
        g, t = golden.output, test.output
        g2 = g.reshape(-1, g.shape[-1])
        t2 = t.reshape(-1, t.shape[-1])
        tg = targets.reshape(-1)
        loss_g = float(torch.nn.functional.cross_entropy(g2, tg))
        loss_t = float(torch.nn.functional.cross_entropy(t2, tg))
        n_flips = int((g2.argmax(-1) != t2.argmax(-1)).sum())
        return {
            "loss": loss_t,
            "golden_loss": loss_g,
            "perplexity": float(np.exp(loss_t)),
            "top1_flips": n_flips,
            "top1_flip_rate": n_flips / int(tg.numel()),
            "tokens": int(tg.numel()),
            **{f"logits_{k}": v for k, v in logits_error(g2.numpy(), t2.numpy()).items()},
        }


def generator_quality(net: Any, golden: Any, test: Any, labels: Any) -> dict[str, Any]:
    """The quality metrics of a generator run against its golden samples, on ``net``'s
    (feature-net's) penultimate features, for the three criteria of
    :mod:`accelsim.experiments.quality_refs`:

    * image level (LPIPS analogue): per-image feature distance to the golden image
      (unit-normalized features, squared L2): ``image_distance_mean`` (= ``feature_distance``)
      and ``image_distance_max``;
    * dataset level: ``fd``, the Frechet distance between the features of the run's samples and
      of the golden samples (the FID analogue), and class accuracy (the CLIP-score analogue) of
      both, with the discordant pairs of a paired test: ``accuracy_lost`` (golden right, run
      wrong) and ``accuracy_gained`` (golden wrong, run right);
    * ``samples``: how many images the statistics rest on.
    """
    import numpy as np

    from accelsim.quality.features import (
        extract_features,
        frechet_distance,
        logits_of,
        unit_normalize,
    )

    fg = extract_features(net, golden)
    ft = extract_features(net, test)
    per_image = np.sum((unit_normalize(fg) - unit_normalize(ft)) ** 2, axis=1)
    y = np.asarray(labels).reshape(-1)
    right_g = logits_of(net, golden).argmax(axis=1) == y
    right_t = logits_of(net, test).argmax(axis=1) == y
    return {
        "feature_distance": float(per_image.mean()),
        "image_distance_mean": float(per_image.mean()),
        "image_distance_max": float(per_image.max()),
        "fd": frechet_distance(ft, fg) if fg.shape[0] >= 2 else None,
        "class_accuracy": float(right_t.mean()),
        "golden_class_accuracy": float(right_g.mean()),
        "accuracy_lost": int(np.count_nonzero(right_g & ~right_t)),
        "accuracy_gained": int(np.count_nonzero(~right_g & right_t)),
        "samples": int(y.shape[0]),
    }


def make_accelerator(
    hw: HardwareConfig,
    *,
    kernel: str = "fast",
    chip: int | None = None,
    seed: int = 0,
    manifestation: str = "hold",
) -> Accelerator:
    """An accelerator for ``hw`` whose timing model includes the hardware file's overrides."""
    from accelsim.timing.errors import TimingModel

    return Accelerator(
        hw,
        kernel=kernel,  # type: ignore[arg-type]
        chip=chip,
        seed=seed,
        manifestation=manifestation,
        timing=TimingModel.for_hardware(hw),
    )
