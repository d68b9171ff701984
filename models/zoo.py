"""Registry of the small shipped models: names, module contract, checkpoints, GEMM counts.

Every model lives in ``accelsim.models.<name with _>`` (e.g. ``vit_digits``) and provides
``NAME``, ``KIND`` (one of :data:`KINDS`), ``DESCRIPTION``, ``DEFAULT_CONFIG``,
``build(config)``, ``example_inputs(batch, generator)`` and ``train(seed, out_dir, quick)``.
Checkpoints are ``checkpoints/<name>.pt`` inside the package (``models/checkpoints`` in a
checkout), dictionaries ``{"name", "config", "state_dict", "metrics", "seed",
"format_version"}`` read with ``torch.load(weights_only=True)``; ``<name>.json`` beside them
holds the same metadata without the weights.

GEMM MACs per forward (:attr:`ModelInfo.gemm_macs_per_forward`) are counted by running
``example_inputs(batch=1)`` through the model (built from its checkpoint config when present,
else from ``DEFAULT_CONFIG``) under ``torch.utils.flop_counter.FlopCounterMode`` and halving
its FLOP total. Ops counted (torch's registry): ``mm``, ``addmm``, ``bmm``, ``baddbmm``,
``matmul`` (through its ``mm``/``bmm`` decomposition), ``convolution`` / ``_convolution``,
``conv_transpose`` and the ``_scaled_dot_product_*`` attention kernels (``q k^T`` and
``p v``). Not counted: elementwise ops, softmax, norms, pooling, embedding lookups.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import nn

from accelsim.errors import CheckpointError, WorkloadError

__all__ = [
    "KINDS",
    "MODEL_NAMES",
    "ModelInfo",
    "checkpoint_dir",
    "checkpoint_path",
    "count_gemm_macs",
    "list_models",
    "load_model",
    "model_module",
]

#: The shipped small models, in listing order.
MODEL_NAMES: tuple[str, ...] = (
    "vit-digits",
    "gpt-tiny",
    "feature-net",
    "dit-digits",
    "unet-digits",
    "vdit-digits",
)
#: Allowed values of a module's ``KIND``.
KINDS: tuple[str, ...] = ("classifier", "diffusion", "video-diffusion", "lm", "features")
#: Checkpoint layout version this loader understands (see accelsim.models.train).
SUPPORTED_FORMAT_VERSIONS = (1,)
_REQUIRED_KEYS = ("name", "config", "state_dict", "metrics", "seed", "format_version")


@dataclass(frozen=True)
class ModelInfo:
    """One shipped model: what it is, its size and GEMM work, and its checkpoint.

    ``params``: number of parameters; ``gemm_macs_per_forward``: multiply-accumulates of the
    GEMM-like ops of one forward pass at batch 1 (see module docstring for the ops counted);
    ``metrics``: recorded at training time (empty when the checkpoint is missing).
    """

    name: str
    kind: str
    description: str
    params: int
    gemm_macs_per_forward: int
    checkpoint: Path
    checkpoint_present: bool
    metrics: dict[str, float] = field(default_factory=dict)


def _check_name(name: str) -> None:
    if name not in MODEL_NAMES:
        raise WorkloadError(f"model: got {name!r}, expected one of {', '.join(MODEL_NAMES)}")


def model_module(name: str) -> ModuleType:
    """The module implementing model ``name`` (WorkloadError for an unknown name)."""
    _check_name(name)
    modname = f"accelsim.models.{name.replace('-', '_')}"
    try:
        return importlib.import_module(modname)
    except ModuleNotFoundError as exc:
        if exc.name != modname:
            raise
        raise WorkloadError(
            f"model {name!r}: its module {modname} is not installed (incomplete package)"
        ) from exc


def checkpoint_dir() -> Path:
    """The package's checkpoint folder (``models/checkpoints`` in a checkout)."""
    return Path(str(resources.files("accelsim.models"))) / "checkpoints"


def checkpoint_path(name: str, directory: Path | None = None) -> Path:
    """Path of ``name``'s ``.pt`` checkpoint in ``directory`` (default :func:`checkpoint_dir`)."""
    _check_name(name)
    return Path(directory if directory is not None else checkpoint_dir()) / f"{name}.pt"


def _regen_hint(name: str) -> str:
    return f"regenerate it with: python -m accelsim.models.train {name}"


def _read_checkpoint(name: str, path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path}: file not found; {_regen_hint(name)}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unpickling / zip / IO failure means a corrupt file
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(
            f"checkpoint {path}: unreadable ({reason[:120]}); {_regen_hint(name)}"
        ) from exc
    if not isinstance(payload, dict) or any(k not in payload for k in _REQUIRED_KEYS):
        raise CheckpointError(
            f"checkpoint {path}: expected a dict with keys {', '.join(_REQUIRED_KEYS)}; "
            + _regen_hint(name)
        )
    if payload["name"] != name:
        raise CheckpointError(
            f"checkpoint {path}: holds model {payload['name']!r}, expected {name!r}; "
            + _regen_hint(name)
        )
    if payload["format_version"] not in SUPPORTED_FORMAT_VERSIONS:
        raise CheckpointError(
            f"checkpoint {path}: format_version {payload['format_version']!r}, expected one of "
            f"{SUPPORTED_FORMAT_VERSIONS}; {_regen_hint(name)}"
        )
    return payload


def load_model(name: str, directory: Path | None = None) -> nn.Module:
    """Model ``name`` with its shipped weights, in eval mode.

    The module carries ``accelsim_config`` (architecture dict) and ``accelsim_metrics``
    (recorded metrics) attributes. Unknown name: WorkloadError; missing, corrupt or
    mismatching checkpoint: CheckpointError naming the file and the command regenerating it.
    """
    path = checkpoint_path(name, directory)
    module = model_module(name)
    payload = _read_checkpoint(name, path)
    try:
        model = module.build(dict(payload["config"]))
        model.load_state_dict(payload["state_dict"], strict=True)
    except Exception as exc:  # config/state mismatch: the file is stale or corrupt
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(
            f"checkpoint {path}: does not match the model definition ({reason[:120]}); "
            + _regen_hint(name)
        ) from exc
    model.eval()
    model.accelsim_config = dict(payload["config"])
    model.accelsim_metrics = {k: float(v) for k, v in dict(payload["metrics"]).items()}
    return model


def count_gemm_macs(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> int:
    """GEMM multiply-accumulates of ``model(*inputs)`` (FlopCounterMode FLOPs / 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(*inputs)
    return int(counter.get_total_flops()) // 2


def _metadata(name: str, path: Path) -> dict[str, Any] | None:
    meta = path.with_suffix(".json")
    if not (path.is_file() and meta.is_file()):
        return None
    try:
        data = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("name") == name else None


@lru_cache(maxsize=32)
def _static_info(name: str, config_json: str) -> tuple[int, int]:
    """(params, gemm MACs per forward at batch 1) of ``name`` built with ``config_json``."""
    from accelsim.rng import torch_generator

    module = model_module(name)
    model = module.build(json.loads(config_json))
    model.eval()
    params = sum(p.numel() for p in model.parameters())
    inputs = module.example_inputs(1, torch_generator(0, name, "example"))
    return int(params), count_gemm_macs(model, tuple(inputs))


def list_models(directory: Path | None = None) -> list[ModelInfo]:
    """A :class:`ModelInfo` for every name in :data:`MODEL_NAMES`, in that order."""
    infos = []
    for name in MODEL_NAMES:
        module = model_module(name)
        path = checkpoint_path(name, directory)
        meta = _metadata(name, path)
        config = dict(meta["config"]) if meta else dict(module.DEFAULT_CONFIG)
        params, macs = _static_info(name, json.dumps(config, sort_keys=True))
        metrics = {k: float(v) for k, v in dict(meta.get("metrics", {})).items()} if meta else {}
        infos.append(
            ModelInfo(
                name=name,
                kind=str(module.KIND),
                description=str(module.DESCRIPTION),
                params=params,
                gemm_macs_per_forward=macs,
                checkpoint=path,
                checkpoint_present=path.is_file(),
                metrics=metrics,
            )
        )
    return infos
