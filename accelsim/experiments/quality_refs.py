"""Quality references of an explore run: what "quality maintained" means, measured.

:func:`measure_references` computes, from golden runs (nominal point, no faults) and the float
model, the numbers a run's metrics are judged against; :class:`References` judges a result
row. The ``strict`` criterion: a run's feature distance to its golden samples may not exceed
the feature distance between the float model's samples and the W8A8 golden samples of the
same seeds (timing errors may change the output no more than quantization already does).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class References:
    """The quality threshold of an explore run and how it was obtained."""

    criterion: str
    threshold: float
    given: bool

    def meets(self, row: dict[str, Any]) -> bool:
        """Whether a result row maintains quality."""
        fd = row.get("feature_distance")
        return fd is not None and float(fd) <= self.threshold

    def describe(self) -> str:
        """One sentence for reports."""
        if self.given:
            return f"feature distance to the golden samples <= {self.threshold:.4g} (--threshold)"
        return (
            f"feature distance to the golden samples <= {self.threshold:.4g}, the mean feature "
            "distance between the float model's and the W8A8 golden samples (errors may change "
            "the output no more than quantization does)"
        )


def float_model_outputs(session: Any, golden_output: Any, seed: int) -> Any:
    """Samples of the un-intercepted float model for ``seed`` (same noise as the W8A8 runs)."""
    import torch

    from accelsim.diffusion.sampler import SamplerConfig, sample
    from accelsim.diffusion.schedule import NoiseSchedule
    from accelsim.rng import torch_generator

    inputs = session.inputs()
    mconf = dict(getattr(session.model, "accelsim_config", {}))
    with torch.no_grad():
        res = sample(
            session.model,
            tuple(golden_output.shape),
            inputs["cond"],
            null_cond=inputs["null"],
            schedule=NoiseSchedule.from_config(mconf),
            config=SamplerConfig(
                method=session.config.method, steps=session.config.steps, guidance=session.guidance
            ),
            generator=torch_generator(seed, "sampler", session.config.model),
        )
    return res.x


def measure_references(
    cfg: Any,
    base: dict[str, Any],
    state: Any,
    *,
    progress: Callable[[str, int, int], None] | None = None,
) -> References:
    """The references of an explore grid (``base``: its shared ``model-run`` keys)."""
    from accelsim.experiments import trials
    from accelsim.quality.features import feature_distance

    if cfg.threshold is not None:
        return References("strict", float(cfg.threshold), True)
    fds = []
    for i, seed in enumerate(cfg.seeds):
        golden = trials.golden_for(trials.normalize({**base, "seed": seed}), state)
        session = golden.session
        fl = float_model_outputs(session, golden.outcome.output, seed)
        fds.append(feature_distance(session.feature_net(), fl, golden.outcome.output))
        if progress is not None:
            progress("quality references", i + 1, len(cfg.seeds))
    return References("strict", float(sum(fds) / len(fds)), False)
