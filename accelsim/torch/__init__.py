"""Run torch models' GEMMs on the simulated accelerator: interceptor, W8A8 quantization, naming.

The public entry point is :func:`accelsim.api.on`; this package holds its parts:
:class:`~accelsim.torch.intercept.Interceptor` (and :func:`~accelsim.torch.intercept.w8a8_reference`),
:class:`~accelsim.torch.quant.QuantConfig` / :class:`~accelsim.torch.quant.SmoothingCalibrator`,
and :func:`~accelsim.torch.naming.classify` (module path -> block, layer type).
"""

from accelsim.torch.intercept import Interceptor, InterceptStats, w8a8_reference
from accelsim.torch.naming import block_of, block_order, classify, layer_type_of
from accelsim.torch.quant import QuantConfig, SmoothingCalibrator

__all__ = [
    "InterceptStats",
    "Interceptor",
    "QuantConfig",
    "SmoothingCalibrator",
    "block_of",
    "block_order",
    "classify",
    "layer_type_of",
    "w8a8_reference",
]
