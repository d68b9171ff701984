"""Workload records: one GEMM call of a model, and convolutions lowered to GEMMs by im2col.

Conventions follow SCALE-Sim v3 (../shared/reference/scalesim.md section 3): a GEMM computes an
``M x N`` output from an ``M x K`` ifmap operand and a ``K x N`` filter operand, so ``M`` is the
number of output rows (tokens, or output pixels of a conv), ``N`` the number of output columns
(output features, or filters) and ``K`` the reduction length. ``macs = M * N * K``.

Convolutions are lowered with im2col: ``M = E_h * E_w``, ``K = Fh * Fw * C``, ``N = filters``.
Two padding conventions exist:

* ``"none"`` is SCALE-Sim's: no padding, ``E = ceil((H - F + S) / S)`` (ResNet-18 conv1,
  224x224 with 7x7/2, gives 110x110).
* ``"same"``/an integer is torch's ``Conv2d(padding=p)``: ``E = floor((H + 2p - F) / S) + 1``;
  ``"same"`` uses ``p = (F - 1) // 2`` (exact "same" output for odd filters at stride 1).
"""

from __future__ import annotations

from dataclasses import dataclass

from accelsim.errors import ShapeError


def _positive(name: str, value: object, where: str = "") -> int:
    prefix = f"{where}: " if where else ""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ShapeError(f"{prefix}{name}: got {value!r}, expected an integer >= 1")
    return value


@dataclass(frozen=True)
class GemmLayer:
    """One GEMM of a workload: ``(M x K) @ (K x N)``, executed ``count`` times per run.

    ``layer_type`` says what the GEMM is (qkv, proj, fc1, fc2, attn-scores, attn-value, conv,
    embed, head, adaln, ...), ``block`` where it sits (e.g. ``blocks``, ``down.1``), so that
    reports can be grouped by either.
    """

    name: str
    M: int
    N: int
    K: int
    count: int = 1
    layer_type: str = "gemm"
    block: str = ""

    def __post_init__(self) -> None:
        where = f"layer {self.name!r}"
        for dim in ("M", "N", "K"):
            _positive(dim, getattr(self, dim), where)
        _positive("count", self.count, where)

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one execution."""
        return self.M * self.N * self.K


def conv_output_size(
    size: int, filt: int, stride: int, padding: int | str = "none", *, where: str = ""
) -> int:
    """Output extent of a convolution along one axis (see module docstring for conventions)."""
    _positive("input size", size, where)
    _positive("filter size", filt, where)
    _positive("stride", stride, where)
    prefix = f"{where}: " if where else ""
    if padding == "none":
        if filt > size:
            raise ShapeError(f"{prefix}filter size {filt} is larger than the input size {size}")
        return -(-(size - filt + stride) // stride)
    if padding == "same":
        pad = (filt - 1) // 2
    elif isinstance(padding, int) and not isinstance(padding, bool) and padding >= 0:
        pad = padding
    else:
        raise ShapeError(
            f"{prefix}padding: got {padding!r}, expected 'none', 'same' or an integer >= 0"
        )
    if filt > size + 2 * pad:
        raise ShapeError(
            f"{prefix}filter size {filt} is larger than the padded input size {size + 2 * pad}"
        )
    return (size + 2 * pad - filt) // stride + 1


def conv_to_gemm(
    name: str,
    ifmap_h: int,
    ifmap_w: int,
    filter_h: int,
    filter_w: int,
    channels: int,
    filters: int,
    stride: int = 1,
    *,
    padding: int | str = "none",
    count: int = 1,
    layer_type: str = "conv",
    block: str = "",
) -> GemmLayer:
    """Lower a 2-D convolution to its im2col GEMM (``M = E_h*E_w, N = filters, K = Fh*Fw*C``)."""
    where = f"layer {name!r}"
    _positive("channels", channels, where)
    _positive("filters", filters, where)
    e_h = conv_output_size(ifmap_h, filter_h, stride, padding, where=where)
    e_w = conv_output_size(ifmap_w, filter_w, stride, padding, where=where)
    return GemmLayer(
        name=name,
        M=e_h * e_w,
        N=filters,
        K=filter_h * filter_w * channels,
        count=count,
        layer_type=layer_type,
        block=block,
    )
