"""W8A8 symmetric quantization for the torch interceptor.

A GEMM ``Y = X @ B`` (``X``: ``(M, K)`` activations, ``B``: ``(K, N)``, for a linear layer
``B = W^T``) is run as ``Y = diag(sa) (QX @ QB) diag(sb)``:

* ``B`` is quantized **per output column** (per output channel of a weight ``W``: one scale per
  row of ``W``), ``sb[n] = max_k |B[k, n]| / 127``;
* ``X`` per row (``per-token``, ``sa[m] = max_k |X[m, k]| / 127``) or with one scale for the
  whole matrix (``per-tensor``);
* ``q = clamp(round(x / s), -127, 127)`` (symmetric, -128 unused, round half to even as
  ``torch.round``); an all-zero row or column gets scale 1 (its codes are 0 anyway);
* the int32 accumulators are dequantized in float32: ``acc * sa * sb``.

Both scale vectors factor out of the integer sum, so the integer GEMM is the hardware's.

**SmoothQuant** (Xiao et al., ICML 2023, eq. 4): per input channel ``j``,
``s_j = max|X_j|**alpha / max|W_j|**(1 - alpha)``; the GEMM runs on ``X / s`` and ``W * s``
(mathematically the same product) so activation outliers move into the weights. ``max|X_j|``
is calibrated on a batch with :class:`SmoothingCalibrator`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Literal

import torch

from accelsim.config import check_choice, check_float
from accelsim.errors import ConfigError

#: Largest int8 code used (symmetric range [-127, 127]).
QMAX = 127
#: Number formats the interceptor runs GEMMs in.
MODES: tuple[str, ...] = ("w8a8", "fp32", "fp16", "bf16")
#: Activation granularities.
ACTIVATIONS: tuple[str, ...] = ("per-token", "per-tensor")

Mode = Literal["w8a8", "fp32", "fp16", "bf16"]
Granularity = Literal["per-token", "per-tensor"]


@dataclass(frozen=True)
class QuantConfig:
    """How the interceptor runs GEMMs.

    ``mode``: ``w8a8`` (int8 x int8 -> int32 on the accelerator) or a float format ``fp32``,
    ``fp16``, ``bf16`` (both operands rounded to it, GEMM in that format, no timing errors;
    for format studies). ``activations``: ``per-token`` or ``per-tensor`` scales of the
    activation operand. ``smoothing_alpha``: SmoothQuant migration strength in ``[0, 1]`` (None:
    off; needs calibrated activation maxima, :class:`SmoothingCalibrator`).
    """

    mode: Mode = "w8a8"
    activations: Granularity = "per-token"
    smoothing_alpha: float | None = None

    def __post_init__(self) -> None:
        check_choice("quant.mode", self.mode, MODES)
        check_choice("quant.activations", self.activations, ACTIVATIONS)
        if self.smoothing_alpha is not None:
            object.__setattr__(
                self,
                "smoothing_alpha",
                check_float("quant.smoothing_alpha", self.smoothing_alpha, 0.0, 1.0),
            )

    @property
    def float_dtype(self) -> torch.dtype | None:
        """The torch dtype of a float mode (None for w8a8)."""
        return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}.get(self.mode)


def _scale(absmax: torch.Tensor) -> torch.Tensor:
    s = absmax.to(torch.float32) / QMAX
    return torch.where(s > 0, s, torch.ones_like(s))


def quantize(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``clamp(round(x / scale), -127, 127)`` as int8 (``scale`` broadcast against ``x``)."""
    q = torch.round(x.to(torch.float32) / scale)
    return torch.clamp(q, -QMAX, QMAX).to(torch.int8)


def quantize_rows(x: torch.Tensor, per_row: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Quantize the ``(..., M, K)`` activation operand: int8 codes and float32 scales
    ``(..., M, 1)`` (per row = per token) or ``(..., 1, 1)`` (one per matrix)."""
    a = x.detach().to(torch.float32).abs()
    absmax = a.amax(dim=-1, keepdim=True) if per_row else a.amax(dim=(-2, -1), keepdim=True)
    scale = _scale(absmax)
    return quantize(x, scale), scale


def quantize_cols(b: torch.Tensor, per_col: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Quantize the ``(..., K, N)`` operand: int8 codes and float32 scales ``(..., 1, N)``
    (per column = per output channel) or ``(..., 1, 1)``."""
    a = b.detach().to(torch.float32).abs()
    absmax = a.amax(dim=-2, keepdim=True) if per_col else a.amax(dim=(-2, -1), keepdim=True)
    scale = _scale(absmax)
    return quantize(b, scale), scale


def quantize_weight(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-output-channel int8 codes of a weight ``(N, K)`` and its scales ``(N,)``."""
    if w.ndim != 2:
        raise ConfigError(f"weight: got shape {tuple(w.shape)}, expected (out, in)")
    q, s = quantize_cols(w.t())
    return q.t().contiguous(), s.reshape(-1)


def dequantize(acc: torch.Tensor, sa: torch.Tensor, sb: torch.Tensor) -> torch.Tensor:
    """float32 ``acc * sa * sb`` from int32 accumulators (scales broadcast as returned by
    :func:`quantize_rows` / :func:`quantize_cols`)."""
    return acc.to(torch.float32) * sa * sb


def smoothing_factors(act_absmax: torch.Tensor, weight: torch.Tensor, alpha: float) -> torch.Tensor:
    """SmoothQuant factors ``s_j = max|X_j|**alpha / max|W_j|**(1-alpha)`` per input channel.

    ``act_absmax``: ``(K,)`` calibrated activation maxima; ``weight``: ``(N, K)``. Channels
    with a zero maximum get ``s = 1``. The GEMM then runs on ``X / s`` and ``W * s``.
    """
    alpha = check_float("quant.smoothing_alpha", alpha, 0.0, 1.0)
    xa = act_absmax.detach().to(torch.float32).reshape(-1)
    wa = weight.detach().to(torch.float32).abs().amax(dim=0)
    if xa.shape != wa.shape:
        raise ConfigError(
            f"smoothing: got {xa.numel()} calibrated channels, expected {wa.numel()} "
            "(the weight's input channels)"
        )
    s = xa.clamp(min=1e-5).pow(alpha) / wa.clamp(min=1e-5).pow(1.0 - alpha)
    ok = (xa > 0) & (wa > 0) & torch.isfinite(s)
    return torch.where(ok, s, torch.ones_like(s))


class SmoothingCalibrator:
    """Collect per-input-channel ``max|X|`` of every ``nn.Linear`` of ``model`` over batches.

    ::

        with SmoothingCalibrator(model) as cal:
            model(calibration_batch)
        stats = cal.absmax          # {module path: (in_features,) tensor}

    Pass ``stats`` to the interceptor (``smoothing=stats``) with ``smoothing_alpha`` set.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.absmax: dict[str, torch.Tensor] = {}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def __enter__(self) -> SmoothingCalibrator:
        for name, mod in self.model.named_modules():
            if isinstance(mod, torch.nn.Linear):
                self._handles.append(mod.register_forward_pre_hook(self._hook(name)))
        return self

    def _hook(self, name: str) -> Callable[[torch.nn.Module, tuple[object, ...]], None]:
        def hook(_mod: torch.nn.Module, args: tuple[object, ...]) -> None:
            x = args[0]
            if not isinstance(x, torch.Tensor):
                return
            m = x.detach().to(torch.float32).abs().reshape(-1, x.shape[-1]).amax(dim=0)
            old = self.absmax.get(name)
            self.absmax[name] = m if old is None else torch.maximum(old, m)

        return hook

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
