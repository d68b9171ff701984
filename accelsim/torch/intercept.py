"""Route every GEMM of any ``nn.Module`` through W8A8 -> fault hooks -> the accelerator.

:class:`Interceptor` is a context manager. Inside it, a :class:`torch.overrides.TorchFunctionMode`
catches the matmul-type calls at the torch-function level (before autograd and dispatch
decompose them, so weights keep their identity and SDPA is still one call):

* ``F.linear``; ``torch.matmul`` / ``@`` / ``mm`` / ``bmm`` / ``addmm`` / ``baddbmm`` (any batch
  dims: each 2-D product is one accelerator GEMM);
* ``F.scaled_dot_product_attention``: its two GEMMs ``Q K^T`` (``attn-scores``) and ``P V``
  (``attn-value``) run on the accelerator; scaling, masks and softmax stay float (dropout is
  not applied: inference);
* ``F.conv1d`` / ``F.conv2d`` by im2col (``M = N * out pixels``, ``K = C/groups * kh * kw``,
  one GEMM per group; string paddings ``same``/``valid`` supported).

Everything else (LayerNorm, GroupNorm, GELU, softmax, adaLN modulation, conv3d, transposed
convs, einsum) runs in float as usual. A GEMM ``X @ B`` becomes::

    QX, sa = quantize(X)  (per token or per tensor)        QB, sb = quantize(B)  (per column)
    QB = fault.on_weights(QB) once per weight and run      QX = fault.on_inputs(QX)
    acc = accelerator.gemm(QX, QB, ctx, op)  (or the exact int product: reference)
    acc = fault.on_output(acc);  acc = post_gemm(QX, QB, acc, ctx, op)  (e.g. ABFT)
    Y = acc * sa * sb;  Y = accelerator.finish_output(ctx, Y)  (when its output_hook is set)
    Y (+ bias), in the caller's dtype

Weights (``nn.Parameter`` operands of ``F.linear`` / ``conv``) are quantized once per run and
cached; fault models see them as ``(out, in)`` int8 matrices (``(out, C/groups*kh*kw)`` for a
conv). Activation operands that are not parameters (attention's K and V, functional matmuls)
go through ``on_inputs`` too, ``A`` then ``B``.

The :class:`~accelsim.context.GemmContext` of a call: the module path is the innermost module
running (tracked with global forward pre/post hooks, names relative to the outermost module
called, i.e. the model), block and layer type come from :mod:`accelsim.torch.naming`, the
timestep from the settable :attr:`Interceptor.timestep`, ``call`` counts accelerator GEMMs.

Float modes (``QuantConfig(mode="fp16"|"bf16"|"fp32")``) round both operands to that format,
run the GEMM in it (no timing errors; the cycles/energy are still booked as an int8 array's)
and give fault hooks numpy arrays of that format; bf16 has no numpy dtype, so bf16 tensors are
passed as their ``uint16`` bit patterns (and must be returned the same way).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from accelsim.accelerator import Accelerator, int_gemm
from accelsim.config import OperatingPoint
from accelsim.context import GemmContext
from accelsim.errors import ConfigError, ShapeError
from accelsim.faults.base import FaultLog, FaultModel
from accelsim.rng import rng_for
from accelsim.torch.naming import block_of, block_order, layer_type_of
from accelsim.torch.quant import (
    QuantConfig,
    dequantize,
    quantize_cols,
    quantize_rows,
    smoothing_factors,
)

OpSource = OperatingPoint | Callable[[GemmContext], OperatingPoint]
Selector = Callable[[GemmContext], bool]
#: ``post_gemm(A int8 (M, K), B int8 (K, N), out int32 (M, N), ctx, op) -> int32 (M, N)``: sees
#: every W8A8 GEMM's operands and its (possibly corrupted) accumulators after the fault models'
#: ``on_output``, returns the accumulators to dequantize (ABFT verify / correct / roll back).
PostGemm = Callable[
    [np.ndarray, np.ndarray, np.ndarray, GemmContext, OperatingPoint | None], np.ndarray
]


@dataclass(frozen=True)
class InterceptStats:
    """What the interceptor saw: GEMMs run through the accelerator path (2-D products),
    2-D GEMMs left in float by the selector, and calls of each intercepted op."""

    accel_gemms: int
    float_gemms: int
    ops: dict[str, int]


class _Mode(TorchFunctionMode):
    def __init__(self, owner: Interceptor) -> None:
        super().__init__()
        self.owner = owner

    def __torch_function__(
        self,
        func: Any,
        types: Any,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
    ) -> Any:
        kwargs = dict(kwargs or {})
        handler = self.owner._handlers.get(func)
        if handler is None:
            return func(*args, **kwargs)
        return handler(*args, **kwargs)


def _np_of(t: torch.Tensor, fmt: str) -> np.ndarray:
    t = t.detach().cpu().contiguous()
    if fmt == "bf16":
        return t.view(torch.int16).numpy().view(np.uint16)
    return t.numpy()


def _torch_of(a: np.ndarray, fmt: str, like: torch.Tensor) -> torch.Tensor:
    if fmt == "bf16":
        t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.uint16).view(np.int16))
        return t.view(torch.bfloat16).to(like.device)
    return torch.from_numpy(np.ascontiguousarray(a)).to(like.device)


_FMT = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}


class Interceptor:
    """Context manager running a model's GEMMs on a simulated accelerator (module docstring).

    Parameters
    ----------
    accelerator
        Where the int8 GEMMs run and are booked; None runs the **W8A8 reference**: the same
        quantization with the exact integer product, no timing errors, no books.
    op
        Operating point of every GEMM, or a function ``ctx -> OperatingPoint`` (a DVFS policy).
        Default: the nominal point of the accelerator's technology.
    faults
        Fault models (:class:`accelsim.faults.base.FaultModel`), applied in order.
    quant
        Number format and quantization options (:class:`~accelsim.torch.quant.QuantConfig`).
    seed
        Seed of the fault models' generators (``rng_for(seed, "fault", i, target, module,
        timestep, call)``).
    select
        ``ctx -> bool``: only GEMMs it accepts run on the accelerator path; the others run in
        float (default: all).
    smoothing
        Calibrated per-channel activation maxima ``{module path: (in_features,)}`` for
        SmoothQuant (:class:`~accelsim.torch.quant.SmoothingCalibrator`); used when
        ``quant.smoothing_alpha`` is set.
    post_gemm
        Called on every W8A8 GEMM after the accelerator and the output faults (see
        :data:`PostGemm`): the place for ABFT checks, corrections and rollback decisions.
    """

    def __init__(
        self,
        accelerator: Accelerator | None = None,
        op: OpSource | None = None,
        *,
        faults: Sequence[FaultModel] = (),
        quant: QuantConfig | None = None,
        seed: int = 0,
        select: Selector | None = None,
        smoothing: Mapping[str, torch.Tensor] | None = None,
        post_gemm: PostGemm | None = None,
    ) -> None:
        if accelerator is not None and not isinstance(accelerator, Accelerator):
            raise ConfigError(
                f"accelerator: got {type(accelerator).__name__}, expected an Accelerator or None"
            )
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ConfigError(f"seed: got {seed!r}, expected an integer >= 0")
        quant = quant or QuantConfig()
        if not isinstance(quant, QuantConfig):
            raise ConfigError(f"quant: got {type(quant).__name__}, expected a QuantConfig")
        if quant.smoothing_alpha is not None and smoothing is None:
            raise ConfigError(
                "quant.smoothing_alpha: got a value but no calibrated activation maxima "
                "(smoothing=...), expected both or neither"
            )
        if op is None and accelerator is not None:
            op = OperatingPoint.nominal(accelerator.hw.tech)
        if op is not None and not (isinstance(op, OperatingPoint) or callable(op)):
            raise ConfigError(
                f"op: got {type(op).__name__}, expected an OperatingPoint or a function of "
                "the GemmContext"
            )
        for i, fm in enumerate(faults):
            if not all(hasattr(fm, h) for h in ("on_weights", "on_inputs", "on_output")):
                raise ConfigError(
                    f"faults[{i}]: got {type(fm).__name__}, expected a fault model with "
                    "on_weights, on_inputs and on_output"
                )
        self.accelerator = accelerator
        self.op = op
        self.faults = tuple(faults)
        self.quant = quant
        self.seed = seed
        self.select = select
        self.smoothing = dict(smoothing or {})
        self.post_gemm = post_gemm
        #: Sampler timestep of the following GEMMs (set by the sampler; None outside one).
        self.timestep: int | None = None
        self.fault_log = FaultLog()
        self._call = 0
        self._float_gemms = 0
        self._ops: dict[str, int] = {}
        self._stack: list[str] = []
        self._roots: dict[int, tuple[dict[int, str], dict[str, int]]] = {}
        self._names: dict[int, str] = {}
        self._order: dict[str, int] = {}
        self._weights: dict[tuple[int, int, str], tuple[torch.Tensor, torch.Tensor]] = {}
        self._hooks: list[torch.utils.hooks.RemovableHandle] = []
        self._mode: _Mode | None = None
        self._fastpath = True
        self._handlers: dict[Any, Callable[..., Any]] = {
            F.linear: self._linear,
            torch.matmul: self._matmul,
            torch.Tensor.matmul: self._matmul,
            torch.Tensor.__matmul__: self._matmul,
            torch.Tensor.__rmatmul__: lambda a, b: self._matmul(b, a),
            torch.mm: self._matmul,
            torch.Tensor.mm: self._matmul,
            torch.bmm: self._matmul,
            torch.Tensor.bmm: self._matmul,
            torch.addmm: self._addmm,
            torch.Tensor.addmm: self._addmm,
            torch.baddbmm: self._addmm,
            torch.Tensor.baddbmm: self._addmm,
            F.scaled_dot_product_attention: self._sdpa,
            F.conv1d: self._conv1d,
            F.conv2d: self._conv2d,
            F.multi_head_attention_forward: self._composite(F.multi_head_attention_forward),
        }

    # ------------------------------------------------------------------ context manager

    def __enter__(self) -> Interceptor:
        if self._mode is not None:
            raise ConfigError("interceptor: already active, expected one `with` at a time")
        self._stack.clear()
        for fm in self.faults:  # per-run budgets (count per run, single value) start afresh
            reset = getattr(fm, "reset", None)
            if callable(reset):
                reset()
        self._hooks = [
            torch.nn.modules.module.register_module_forward_pre_hook(self._pre_hook),
            torch.nn.modules.module.register_module_forward_hook(self._post_hook, always_call=True),
        ]
        # nn.MultiheadAttention / TransformerEncoderLayer would otherwise take a fused kernel.
        self._fastpath = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)
        self._mode = _Mode(self)
        self._mode.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._mode is not None:
            self._mode.__exit__(exc_type, exc, tb)
            self._mode = None
        for h in self._hooks:
            h.remove()
        self._hooks.clear()
        self._stack.clear()
        torch.backends.mha.set_fastpath_enabled(self._fastpath)

    def stats(self) -> InterceptStats:
        """Counts of intercepted GEMMs and ops so far."""
        return InterceptStats(self._call, self._float_gemms, dict(self._ops))

    # ------------------------------------------------------------------ module tracking

    def _pre_hook(self, module: torch.nn.Module, args: Any) -> None:
        if not self._stack:
            cached = self._roots.get(id(module))
            if cached is None:
                named = list(module.named_modules())
                cached = ({id(m): n for n, m in named}, block_order(n for n, _ in named))
                self._roots[id(module)] = cached
            self._names, self._order = cached
        name = self._names.get(id(module))
        if name is None:
            parent = self._stack[-1] if self._stack else ""
            name = f"{parent}.{type(module).__name__}" if parent else type(module).__name__
        self._stack.append(name)

    def _post_hook(self, module: torch.nn.Module, args: Any, output: Any) -> None:
        if self._stack:
            self._stack.pop()

    def context(self, kind: str) -> GemmContext:
        """The context of the next GEMM of ``kind`` issued by the running module."""
        path = self._stack[-1] if self._stack else ""
        block, _ = block_of(path)
        return GemmContext(
            module=path,
            block=block,
            block_index=self._order.get(block) if block else None,
            layer_type=layer_type_of(path, kind),
            timestep=self.timestep,
            call=self._call,
        )

    # ------------------------------------------------------------------ the GEMM path

    def _op_for(self, ctx: GemmContext) -> OperatingPoint:
        op = self.op
        if op is None:
            raise ConfigError("op: got None with an accelerator, expected an OperatingPoint")
        if isinstance(op, OperatingPoint):
            return op
        result = op(ctx)
        if not isinstance(result, OperatingPoint):
            raise ConfigError(
                f"op({ctx.module!r}): got {type(result).__name__}, expected an OperatingPoint"
            )
        return result

    def _rng(self, i: int, target: str, ctx: GemmContext, operand: str = "") -> np.random.Generator:
        keys = ("fault", i, target, operand, ctx.module, ctx.timestep, ctx.call)
        return cast(np.random.Generator, _LazyRng(self.seed, keys))

    def _hook(
        self, target: str, arr: np.ndarray, ctx: GemmContext, fmt: str, operand: str = ""
    ) -> np.ndarray:
        for i, fm in enumerate(self.faults):
            hook = getattr(fm, f"on_{target}")
            arr = hook(arr, ctx, fmt, self._rng(i, target, ctx, operand), self.fault_log)
        return arr

    def _count(self, name: str) -> None:
        self._ops[name] = self._ops.get(name, 0) + 1

    def _weight_operand(
        self, w2d: torch.Tensor, key: tuple[int, int, str], ctx: GemmContext, fmt: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Quantized (or format-rounded) ``B = W^T`` ``(K, N)`` and its scales, once per run,
        after ``on_weights`` (which sees ``(N, K)``)."""
        cached = self._weights.get(key)
        if cached is not None:
            return cached
        dtype = self.quant.float_dtype
        if dtype is None:
            qb, sb = quantize_cols(w2d.t())
            if self.faults:
                arr = self._hook("weights", qb.t().contiguous().numpy().copy(), ctx, "int8")
                qb = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.int8)).t()
        else:
            qb = w2d.detach().to(dtype).t()
            sb = torch.ones(1, qb.shape[1])
            if self.faults:
                arr = self._hook("weights", _np_of(qb.t(), fmt).copy(), ctx, fmt)
                qb = _torch_of(arr, fmt, qb).t()
        self._weights[key] = (qb.contiguous(), sb)
        return self._weights[key]

    def _gemm(
        self,
        x: torch.Tensor,
        b: torch.Tensor | None,
        kind: str,
        *,
        weight: torch.Tensor | None = None,
        weight_key: tuple[int, int, str] | None = None,
        smooth: torch.Tensor | None = None,
    ) -> torch.Tensor | None:
        """``x (..., M, K) @ b (..., K, N)`` (or ``@ weight^T`` for a weight ``(N, K)``) on the
        accelerator path; None when the selector keeps this GEMM in float."""
        ctx = self.context(kind)
        if self.select is not None and not self.select(ctx):
            other = () if b is None else tuple(b.shape[:-2])
            self._float_gemms += int(np.prod(torch.broadcast_shapes(x.shape[:-2], other)))
            return None
        out_dtype = x.dtype if x.is_floating_point() else torch.float32
        dtype = self.quant.float_dtype
        fmt = "int8" if dtype is None else _FMT[dtype]
        if smooth is not None:
            x = x / smooth
        if weight is not None:
            assert weight_key is not None
            w = weight if smooth is None else weight * smooth
            qb, sb = self._weight_operand(w, weight_key, ctx, fmt)
            b_is_weight = True
        else:
            assert b is not None
            b_is_weight = False
        # activations
        if dtype is None:
            qx, sa = quantize_rows(x, self.quant.activations == "per-token")
            if not b_is_weight:
                assert b is not None
                qb, sb = quantize_cols(b, self.quant.activations == "per-token")
        else:
            qx, sa = x.detach().to(dtype), torch.ones(1)
            if not b_is_weight:
                assert b is not None
                qb, sb = b.detach().to(dtype), torch.ones(1)
        batch = torch.broadcast_shapes(qx.shape[:-2], qb.shape[:-2])
        M, K = qx.shape[-2], qx.shape[-1]
        N = qb.shape[-1]
        if qb.shape[-2] != K:
            raise ShapeError(
                f"matmul: got operands {tuple(x.shape)} and {tuple(qb.shape)}, expected (..., M, K) "
                "and (..., K, N)"
            )
        qx_b = qx.expand(*batch, M, K).reshape(-1, M, K)
        qb_b = qb.expand(*batch, K, N).reshape(-1, K, N)
        acc_dtype = torch.int32 if dtype is None else dtype
        outs = torch.empty((qx_b.shape[0], M, N), dtype=acc_dtype)
        contexts: list[GemmContext] = []
        for i in range(qx_b.shape[0]):
            ctx_i = self.context(kind)
            contexts.append(ctx_i)
            self._call += 1
            a_np = _np_of(qx_b[i], fmt)
            b_np = _np_of(qb_b[i], fmt)
            if self.faults:
                a_np = self._hook("inputs", a_np.copy(), ctx_i, fmt, "A")
                if not b_is_weight:
                    b_np = self._hook("inputs", b_np.copy(), ctx_i, fmt, "B")
            if dtype is None:
                if self.accelerator is None:
                    acc = int_gemm(a_np, b_np)
                else:
                    acc = self.accelerator.gemm(a_np, b_np, ctx_i, self._op_for(ctx_i)).out
                out_fmt = "int32"
                res = torch.from_numpy(np.ascontiguousarray(acc))
            else:
                res = _torch_of(a_np, fmt, qx) @ _torch_of(b_np, fmt, qb)
                if self.accelerator is not None:
                    self.accelerator.account(M, N, K, ctx_i, self._op_for(ctx_i))
                out_fmt = fmt
            if self.faults:
                r_np = self._hook("output", _np_of(res, out_fmt).copy(), ctx_i, out_fmt)
                res = _torch_of(r_np, out_fmt, res)
            if self.post_gemm is not None and dtype is None:
                op_i = self._op_for(ctx_i) if self.op is not None else None
                fixed = self.post_gemm(a_np, b_np, res.numpy().copy(), ctx_i, op_i)
                res = torch.from_numpy(np.ascontiguousarray(fixed, dtype=np.int32))
            outs[i] = res
        outs = outs.reshape(*batch, M, N)
        if dtype is None:
            y = dequantize(outs, sa, sb)
            acc_ = self.accelerator
            if acc_ is not None and acc_.output_hook:
                # values after their own dequantization (checkpoints, DRIFT-style rollback)
                flat = y.reshape(-1, M, N)
                for i, ctx_i in enumerate(contexts):
                    flat[i] = acc_.finish_output(ctx_i, flat[i])
                y = flat.reshape(*batch, M, N)
        else:
            y = outs
        return y.to(out_dtype).to(x.device)

    # ------------------------------------------------------------------ handlers

    def _smooth_for(self, weight: torch.Tensor) -> torch.Tensor | None:
        alpha = self.quant.smoothing_alpha
        if alpha is None or not self._stack:
            return None
        stats = self.smoothing.get(self._stack[-1])
        if stats is None or stats.numel() != weight.shape[1]:
            return None
        return smoothing_factors(stats, weight, alpha)

    def _linear(
        self, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
    ) -> torch.Tensor:
        self._count("linear")
        x2 = input.reshape(-1, input.shape[-1]) if input.ndim != 2 else input
        key = (id(weight), weight._version, "linear")
        y = self._gemm(
            x2, None, "linear", weight=weight, weight_key=key, smooth=self._smooth_for(weight)
        )
        if y is None:
            return F.linear(input, weight, bias)
        y = y.reshape(*input.shape[:-1], weight.shape[0])
        if bias is not None:
            y = y + bias
        return y

    def _matmul(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        self._count("matmul")
        if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor):
            return torch.matmul(a, b)
        if a.ndim == 0 or b.ndim == 0:
            return torch.matmul(a, b)
        a2 = a.unsqueeze(0) if a.ndim == 1 else a
        b2 = b.unsqueeze(-1) if b.ndim == 1 else b
        kind = "matmul"
        if self._in_attention():
            kind = "attn-value" if _looks_like_probs(a2) else "attn-scores"
        if isinstance(b2, torch.nn.Parameter) and b2.ndim == 2:
            key = (id(b), b._version, "matmul")
            y = self._gemm(a2, None, kind, weight=b2.t(), weight_key=key)
        else:
            y = self._gemm(a2, b2, kind)
        if y is None:
            return torch.matmul(a, b)
        if a.ndim == 1:
            y = y.squeeze(-2)
        if b.ndim == 1:
            y = y.squeeze(-1)
        return y

    def _addmm(
        self,
        input: torch.Tensor,
        b1: torch.Tensor,
        b2: torch.Tensor,
        *,
        beta: float = 1.0,
        alpha: float = 1.0,
    ) -> torch.Tensor:
        self._count("addmm")
        kind = "matmul"
        if self._in_attention():
            kind = "attn-value" if _looks_like_probs(b1) else "attn-scores"
        y = self._gemm(b1, b2, kind)
        if y is None:
            y = torch.matmul(b1, b2)
        if alpha != 1.0:
            y = y * alpha
        if beta == 0:
            return y
        return y + (input if beta == 1.0 else beta * input)

    def _composite(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Run a Python composite function (one that starts with ``has_torch_function``, such
        as ``F.multi_head_attention_forward``) with the mode active, so its GEMMs are caught:
        its own torch-function check is answered False once."""

        def run(*args: Any, **kwargs: Any) -> Any:
            self._count(getattr(func, "__name__", "composite"))
            original = F.has_torch_function  # type: ignore[attr-defined]
            first = [True]

            def once(*a: Any) -> bool:
                if first[0]:
                    first[0] = False
                    return False
                return bool(original(*a))

            setattr(F, "has_torch_function", once)  # noqa: B010
            try:
                with _Mode(self):
                    return func(*args, **kwargs)
            finally:
                setattr(F, "has_torch_function", original)  # noqa: B010

        return run

    def _in_attention(self) -> bool:
        path = self._stack[-1] if self._stack else ""
        low = path.lower()
        return any(s in low for s in ("attn", "attention"))

    def _sdpa(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        attn_mask: torch.Tensor | None = None,
        dropout_p: float = 0.0,
        is_causal: bool = False,
        scale: float | None = None,
        enable_gqa: bool = False,
    ) -> torch.Tensor:
        self._count("sdpa")
        L, S, E = query.shape[-2], key.shape[-2], query.shape[-1]
        if enable_gqa and key.shape[-3] != query.shape[-3]:
            rep = query.shape[-3] // key.shape[-3]
            key = key.repeat_interleave(rep, dim=-3)
            value = value.repeat_interleave(rep, dim=-3)
        sc = scale if scale is not None else 1.0 / float(E) ** 0.5
        s = self._gemm(query, key.transpose(-2, -1), "attn-scores")
        if s is None:
            s = torch.matmul(query, key.transpose(-2, -1))
        s = s * sc
        if is_causal:
            causal = torch.ones(L, S, dtype=torch.bool, device=s.device).tril()
            s = s.masked_fill(~causal, float("-inf"))
        if attn_mask is not None:
            if attn_mask.dtype == torch.bool:
                s = s.masked_fill(~attn_mask, float("-inf"))
            else:
                s = s + attn_mask
        p = torch.softmax(s, dim=-1)
        out = self._gemm(p, value, "attn-value")
        if out is None:
            out = torch.matmul(p, value)
        return out

    def _conv1d(
        self,
        input: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None = None,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
    ) -> torch.Tensor:
        self._count("conv1d")
        batched = input.ndim == 3
        x = input if batched else input.unsqueeze(0)
        pad: Any = padding if isinstance(padding, str) else (0, _one(padding))
        y = self._conv(
            x.unsqueeze(2),
            weight.unsqueeze(2),
            bias,
            (1, _one(stride)),
            pad,
            (1, _one(dilation)),
            groups,
            key=(id(weight), weight._version, "conv1d"),
        )
        if y is None:
            return F.conv1d(input, weight, bias, stride, padding, dilation, groups)
        y = y.squeeze(2)
        return y if batched else y.squeeze(0)

    def _conv2d(
        self,
        input: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None = None,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
    ) -> torch.Tensor:
        self._count("conv2d")
        batched = input.ndim == 4
        x = input if batched else input.unsqueeze(0)
        y = self._conv(
            x,
            weight,
            bias,
            _pair(stride),
            padding if isinstance(padding, str) else _pair(padding),
            _pair(dilation),
            groups,
            key=(id(weight), weight._version, "conv2d"),
        )
        if y is None:
            return F.conv2d(input, weight, bias, stride, padding, dilation, groups)
        return y if batched else y.squeeze(0)

    def _conv(
        self,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        stride: tuple[int, int],
        padding: str | tuple[int, int],
        dilation: tuple[int, int],
        groups: int,
        *,
        key: tuple[int, int, str],
    ) -> torch.Tensor | None:
        n, _, h, w = x.shape
        o, cg, kh, kw = weight.shape
        if isinstance(padding, str):
            if padding == "valid":
                padding = (0, 0)
            elif padding == "same":
                th, tw = dilation[0] * (kh - 1), dilation[1] * (kw - 1)
                x = F.pad(x, (tw // 2, tw - tw // 2, th // 2, th - th // 2))
                padding = (0, 0)
                h, w = x.shape[-2:]
            else:
                raise ConfigError(f"conv padding: got {padding!r}, expected 'same' or 'valid'")
        cols = F.unfold(x, (kh, kw), dilation=dilation, padding=padding, stride=stride)
        oh = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
        ow = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
        og = o // groups
        outs = []
        for g in range(groups):
            # (n, cg*kh*kw, L) -> (n*L, cg*kh*kw)
            a = cols[:, g * cg * kh * kw : (g + 1) * cg * kh * kw].transpose(1, 2)
            a = a.reshape(-1, cg * kh * kw)
            wg = weight[g * og : (g + 1) * og].reshape(og, -1)
            y = self._gemm(a, None, "conv", weight=wg, weight_key=(*key[:2], f"{key[2]}.{g}"))
            if y is None:
                return None
            outs.append(y.reshape(n, oh * ow, og))
        out = torch.cat(outs, dim=-1).transpose(1, 2).reshape(n, o, oh, ow)
        if bias is not None:
            out = out + bias.reshape(1, -1, 1, 1)
        return out


class _LazyRng:
    """A fault hook's generator, built on first use: ``rng_for(seed, *keys)`` (the same stream
    as building it eagerly); most hooks of most GEMMs never draw, and building a seeded
    generator costs about 25 us."""

    __slots__ = ("_gen", "_keys", "_seed")

    def __init__(self, seed: int, keys: tuple[Any, ...]) -> None:
        self._seed = seed
        self._keys = keys
        self._gen: np.random.Generator | None = None

    def __getattr__(self, name: str) -> Any:
        gen = self._gen
        if gen is None:
            gen = rng_for(self._seed, *self._keys)
            self._gen = gen
        return getattr(gen, name)


def _one(v: Any) -> int:
    return int(v[0]) if isinstance(v, tuple | list) else int(v)


def _pair(v: Any) -> tuple[int, int]:
    if isinstance(v, tuple | list):
        return (int(v[0]), int(v[1])) if len(v) == 2 else (int(v[0]), int(v[0]))
    return (int(v), int(v))


def _looks_like_probs(a: torch.Tensor) -> bool:
    """Whether ``a``'s rows look like softmax outputs (non-negative, summing to 1)."""
    if not a.is_floating_point() or a.numel() == 0:
        return False
    af = a.detach().to(torch.float32)
    if float(af.min()) < 0.0:
        return False
    sums = af.sum(dim=-1)
    return bool(torch.allclose(sums, torch.ones_like(sums), atol=1e-2))


def w8a8_reference(quant: QuantConfig | None = None) -> Interceptor:
    """An interceptor for the W8A8 reference: same quantization, exact integer GEMMs, no
    timing errors, no faults, no books. ``with w8a8_reference(): y_ref = model(x)``."""
    return Interceptor(None, None, quant=quant)
