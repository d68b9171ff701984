"""accelsim: systolic-array accelerator simulator with voltage/frequency timing errors.

The bring-your-own-model API (imported lazily, so ``import accelsim`` stays light)::

    import accelsim
    from accelsim.config import load_preset, OperatingPoint

    hw = load_preset("tpu-128x128")
    with accelsim.on(hw, OperatingPoint(vdd=0.75, freq=1e9), kernel="exact") as run:
        y = model(x)
    print(run.report().as_dict())
"""

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "on": ("accelsim.api", "on"),
    "Run": ("accelsim.api", "Run"),
    "RunReport": ("accelsim.api", "RunReport"),
    "Accelerator": ("accelsim.accelerator", "Accelerator"),
    "QuantConfig": ("accelsim.torch.quant", "QuantConfig"),
}

__all__ = ["Accelerator", "QuantConfig", "Run", "RunReport", "__version__", "on"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'accelsim' has no attribute {name!r}")
