"""Where a GEMM comes from: the context every intercepted GEMM carries.

Fault models, DVFS policies, ABFT and the statistics all key on it (block x layer type x
timestep). Built by the torch interceptor (:mod:`accelsim.torch`), read by everyone else.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Layer types the interceptor assigns (``other`` when a GEMM matches none of them).
LAYER_TYPES = (
    "qkv",
    "q",
    "k",
    "v",
    "proj",
    "fc1",
    "fc2",
    "attn-scores",
    "attn-value",
    "cross-q",
    "cross-kv",
    "cross-proj",
    "conv",
    "embed",
    "adaln",
    "head",
    "other",
)


@dataclass(frozen=True)
class GemmContext:
    """One GEMM call of a model run.

    ``module`` is the dotted module path (``blocks.3.attn.qkv``), ``block`` the block name
    (``blocks.3``, ``down.1``, ``mid``; empty outside blocks) and ``block_index`` its position
    among the model's blocks (None outside blocks), ``layer_type`` one of :data:`LAYER_TYPES`,
    ``timestep`` the sampler's step index (None outside a sampler), ``call`` the running index
    of GEMM calls in the run (stable for a given model, input and seed).
    """

    module: str
    block: str = ""
    block_index: int | None = None
    layer_type: str = "other"
    timestep: int | None = None
    call: int = 0
