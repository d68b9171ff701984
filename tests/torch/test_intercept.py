"""The torch interceptor and accelsim.api.on: exactness against the W8A8 reference, closeness
to float, GEMM contexts, timesteps, books, timing errors and determinism."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from accelsim.accelerator import Accelerator
from accelsim.api import on
from accelsim.config import OperatingPoint, load_preset
from accelsim.context import GemmContext
from accelsim.errors import ConfigError
from accelsim.faults.base import FaultLog
from accelsim.hw.layer import GemmLayer
from accelsim.hw.perf import evaluate_workload
from accelsim.rng import torch_generator
from accelsim.torch.intercept import Interceptor, w8a8_reference
from accelsim.torch.quant import QuantConfig, SmoothingCalibrator

HW = load_preset("edge-8x8")
NOMINAL = OperatingPoint(HW.tech.vnom, HW.tech.fnom)
LOW = OperatingPoint(0.62, HW.tech.fnom)
#: W8A8 (per-token activations, per-channel weights) vs float: relative L2 error of the output.
#: Measured 1.0 % (MLP), 2.0 % (attention), 1.4 % (conv + GroupNorm), 2.5 % (tiny DiT); 4 % leaves
#: room without hiding a broken dequantization (a wrong scale gives > 50 %).
REL_TOL = 0.04


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).detach().norm() / b.detach().norm())


class Recorder:
    """A fault model that changes nothing and records what it saw."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, GemmContext, str, tuple[int, ...], str]] = []

    def _rec(self, target: str, x: np.ndarray, ctx: GemmContext, fmt: str) -> np.ndarray:
        self.seen.append((target, ctx, fmt, x.shape, str(x.dtype)))
        return x

    def on_weights(self, w, ctx, fmt, rng, log: FaultLog):
        return self._rec("weights", w, ctx, fmt)

    def on_inputs(self, a, ctx, fmt, rng, log: FaultLog):
        return self._rec("inputs", a, ctx, fmt)

    def on_output(self, out, ctx, fmt, rng, log: FaultLog):
        return self._rec("output", out, ctx, fmt)


class FlipMSB:
    """Flips the sign bit of output element (0, 0) of every GEMM of one layer type."""

    def __init__(self, layer_type: str) -> None:
        self.layer_type = layer_type

    def on_weights(self, w, ctx, fmt, rng, log):
        return w

    def on_inputs(self, a, ctx, fmt, rng, log):
        return a

    def on_output(self, out, ctx, fmt, rng, log):
        if ctx.layer_type == self.layer_type and fmt == "int32":
            out[0, 0] ^= np.int32(1 << 30)
        return out


# --------------------------------------------------------------------------- models


def _mlp() -> torch.nn.Module:
    m = torch.nn.Sequential(
        torch.nn.Linear(24, 48), torch.nn.GELU(), torch.nn.Linear(48, 16), torch.nn.LayerNorm(16)
    )
    return _init(m, "mlp")


def _init(m: torch.nn.Module, key: str) -> torch.nn.Module:
    """Seeded weights (0.3 std), biases (0.05 std) and norm gains (1 + 0.05 std)."""
    g = torch_generator(0, key)
    with torch.no_grad():
        for p in m.parameters():
            noise = torch.randn(p.shape, generator=g)
            p.copy_(noise * 0.3 if p.ndim > 1 else noise * 0.05)
        for mod in m.modules():
            if isinstance(mod, torch.nn.LayerNorm | torch.nn.GroupNorm) and mod.weight is not None:
                mod.weight.add_(1.0)
    return m.eval()


class Attn(torch.nn.Module):
    def __init__(self, dim: int, heads: int, explicit: bool) -> None:
        super().__init__()
        self.heads, self.explicit = heads, explicit
        self.qkv = torch.nn.Linear(dim, 3 * dim)
        self.proj = torch.nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if self.explicit:  # timm-style explicit products
            a = (q @ k.transpose(-2, -1)) * (q.shape[-1] ** -0.5)
            o = a.softmax(dim=-1) @ v
        else:
            o = F.scaled_dot_product_attention(q, k, v)
        return self.proj(o.transpose(1, 2).reshape(b, n, d))


class Block(torch.nn.Module):
    def __init__(self, dim: int, explicit: bool) -> None:
        super().__init__()
        self.norm1 = torch.nn.LayerNorm(dim, elementwise_affine=False)
        self.attn = Attn(dim, 2, explicit)
        self.mlp = torch.nn.Sequential()
        self.mlp.add_module("fc1", torch.nn.Linear(dim, 2 * dim))
        self.mlp.add_module("act", torch.nn.GELU(approximate="tanh"))
        self.mlp.add_module("fc2", torch.nn.Linear(2 * dim, dim))
        self.adaLN_modulation = torch.nn.Sequential(torch.nn.SiLU(), torch.nn.Linear(dim, 2 * dim))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(c).unsqueeze(1).chunk(2, dim=-1)
        x = x + self.attn(self.norm1(x) * (1 + scale) + shift)
        return x + self.mlp(x)


class TinyTransformer(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = torch.nn.ModuleList([Block(16, False), Block(16, True)])
        self.head = torch.nn.Linear(16, 8)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        for blk in self.blocks:
            x = blk(x, c)
        return self.head(x)


class ConvNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv_in = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.norm = torch.nn.GroupNorm(2, 8)
        self.conv_g = torch.nn.Conv2d(8, 8, 3, stride=2, padding="valid", groups=2)
        self.conv_same = torch.nn.Conv2d(8, 4, (3, 2), padding="same", dilation=(1, 2))
        self.conv1d = torch.nn.Conv1d(4, 6, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.silu(self.norm(self.conv_in(x)))
        h = self.conv_same(self.conv_g(h))
        return self.conv1d(h.flatten(2))


def _dit_call(m: torch.nn.Module) -> torch.Tensor:
    g = torch_generator(1, "dit-input")
    x = torch.randn(2, 4, 8, 8, generator=g)
    out: torch.Tensor = m(
        x, timestep=torch.tensor([3, 7]), class_labels=torch.tensor([1, 2])
    ).sample
    return out


def _cases() -> dict[str, tuple[torch.nn.Module, object]]:
    g = torch_generator(2, "inputs")
    x_seq = torch.randn(2, 5, 16, generator=g)
    c = torch.randn(2, 16, generator=g)
    tt = _init(TinyTransformer(), "tt")
    conv = _init(ConvNet(), "conv")
    mlp = _mlp()
    x_mlp = torch.randn(7, 24, generator=g)
    img = torch.randn(2, 3, 9, 9, generator=g)
    return {
        "mlp": (mlp, lambda: mlp(x_mlp)),
        "attention": (tt, lambda: tt(x_seq, c)),
        "conv-groupnorm": (conv, lambda: conv(img)),
    }


@pytest.fixture(scope="module")
def dit(tiny_diffusers_dit: torch.nn.Module) -> torch.nn.Module:
    return tiny_diffusers_dit


# --------------------------------------------------------------------------- exactness


@pytest.mark.parametrize("name", ["mlp", "attention", "conv-groupnorm", "dit"])
def test_error_free_run_equals_w8a8_reference_and_is_close_to_float(name, dit):
    if name == "dit":
        fn = lambda: _dit_call(dit)  # noqa: E731
    else:
        _, fn = _cases()[name]
    with torch.no_grad():
        y_float = fn()
        with w8a8_reference() as ref:
            y_ref = fn()
        acc = Accelerator(HW, kernel="exact")
        with on(acc, NOMINAL) as run:
            y = fn()
    rep = run.report()
    assert ref.stats().accel_gemms > 0
    assert rep.gemm_calls == ref.stats().accel_gemms == rep.intercept.accel_gemms
    assert rep.errors_injected == 0
    assert torch.equal(y, y_ref)
    rel = _rel(y, y_float)
    assert 0 < rel < REL_TOL, rel
    assert not torch.equal(y, y_float)


def test_each_gemm_kind_is_routed(dit):
    cases = _cases()
    with w8a8_reference() as it:
        cases["attention"][1]()  # type: ignore[operator]
    ops = it.stats().ops
    assert ops["sdpa"] == 1 and ops["matmul"] == 2 and ops["linear"] == 2 * 5 + 1
    # 2 blocks x 5 linears + head; sdpa and the explicit block: 2 x (2 batch x 2 heads) each
    assert it.stats().accel_gemms == 11 + 2 * 2 * 4
    with w8a8_reference() as it:
        cases["conv-groupnorm"][1]()  # type: ignore[operator]
    assert it.stats().ops == {"conv2d": 3, "conv1d": 1}
    assert it.stats().accel_gemms == 1 + 2 + 1 + 1  # groups=2 -> two GEMMs


def test_multihead_attention_module_is_intercepted():
    g = torch_generator(3, "mha")
    mha = torch.nn.MultiheadAttention(16, 2, batch_first=True).eval()
    x = torch.randn(2, 5, 16, generator=g)
    with torch.no_grad():
        y_float, _ = mha(x, x, x, need_weights=False)
        with w8a8_reference() as it:
            y, _ = mha(x, x, x, need_weights=False)
    assert it.stats().accel_gemms == 2 + 2 * 2 * 2
    assert _rel(y, y_float) < REL_TOL
    assert torch.backends.mha.get_fastpath_enabled()  # restored


# --------------------------------------------------------------------------- contexts


def test_contexts_timestep_and_fault_hooks(dit):
    rec = Recorder()
    acc = Accelerator(HW, kernel="reference")
    with on(acc, NOMINAL, faults=[rec]) as run:
        for t in (0, 1):
            run.timestep = t
            _dit_call(dit)
    by_module = {ctx.module: ctx for _, ctx, *_ in rec.seen}
    q = by_module["transformer_blocks.1.attn1.to_q"]
    assert (q.block, q.block_index, q.layer_type) == ("blocks.1", 1, "q")
    scores = [c for _, c, *_ in rec.seen if c.layer_type == "attn-scores"]
    assert scores and all(c.module.endswith(".attn1") for c in scores)
    assert by_module["transformer_blocks.0.ff.net.2"].layer_type == "fc2"
    assert by_module["pos_embed.proj"].layer_type == "embed"
    assert by_module["proj_out_2"].layer_type == "head"
    assert {c.timestep for _, c, *_ in rec.seen} == {0, 1}
    calls = [c.call for tgt, c, *_ in rec.seen if tgt == "output"]
    assert calls == list(range(len(calls)))
    # weights: once per weight tensor per run, (out, in) int8; inputs/outputs per GEMM
    weights = [(c.module, shape) for tgt, c, fmt, shape, dt in rec.seen if tgt == "weights"]
    assert len(weights) == len(set(weights))
    assert ("transformer_blocks.0.ff.net.0.proj", (64, 16)) in weights
    fmts = {(tgt, fmt, dt) for tgt, _, fmt, _, dt in rec.seen}
    assert fmts == {
        ("weights", "int8", "int8"),
        ("inputs", "int8", "int8"),
        ("output", "int32", "int32"),
    }
    rep = run.report()
    assert {c.timestep for c in rep.by_context} == {0, 1}
    assert sum(c.calls for c in rep.by_context) == rep.gemm_calls == len(calls)


def test_books_equal_hw_perf_of_the_intercepted_shapes():
    _, fn = _cases()["attention"]
    rec = Recorder()
    acc = Accelerator(HW, kernel="reference")
    with on(acc, LOW, faults=[rec]):
        fn()  # type: ignore[operator]
    outs = [(ctx, shape) for tgt, ctx, _, shape, _ in rec.seen if tgt == "output"]
    # (M, K) from the activation operand and (M, N) from the output give the GEMM shape
    ins = {}
    for tgt, ctx, _, shape, _ in rec.seen:
        if tgt == "inputs":
            ins.setdefault(ctx.call, shape)
    layers = [
        GemmLayer(f"g{ctx.call}", M=shape[0], N=shape[1], K=ins[ctx.call][1]) for ctx, shape in outs
    ]
    perf = evaluate_workload(layers, HW, LOW)
    rep = acc.report()
    assert rep.macs == perf.totals.macs
    assert rep.cycles == perf.totals.cycles
    assert rep.latency_s == pytest.approx(perf.totals.seconds, rel=1e-12)
    assert rep.energy_j.total == pytest.approx(perf.totals.energy.total, rel=1e-12)


# --------------------------------------------------------------------------- errors


def test_undervolted_exact_run_reports_errors_per_layer_type_and_is_deterministic(dit):
    def run_once(seed: int) -> tuple[torch.Tensor, object]:
        acc = Accelerator(HW, kernel="exact", seed=seed)
        with on(acc, LOW, seed=seed) as run:
            run.timestep = 4
            y = _dit_call(dit)
        return y, run.report().accelerator

    with w8a8_reference():
        y_ref = _dit_call(dit)
    y1, rep1 = run_once(0)
    assert rep1.errors_injected > 0
    assert sum(rep1.errors_by_layer_type.values()) == rep1.errors_injected
    assert {"fc1", "fc2", "q"} <= set(rep1.errors_by_layer_type)
    assert rep1.errors_by_timestep == {4: rep1.errors_injected}
    assert not torch.equal(y1, y_ref)
    y2, rep2 = run_once(0)
    assert torch.equal(y1, y2) and rep1 == rep2
    y3, rep3 = run_once(1)
    assert not torch.equal(y1, y3) or rep3.errors_injected != rep1.errors_injected


def test_dvfs_function_and_select_filter():
    _, fn = _cases()["attention"]
    acc = Accelerator(HW, kernel="exact")

    def policy(ctx: GemmContext) -> OperatingPoint:
        return LOW if ctx.layer_type == "fc1" else NOMINAL

    with on(acc, policy) as run:
        fn()  # type: ignore[operator]
    errs = run.report().errors_by_layer_type
    assert errs["fc1"] > 0
    assert all(v == 0 for k, v in errs.items() if k != "fc1")

    with w8a8_reference() as ref:
        y_ref = fn()  # type: ignore[operator]
    with on(
        HW, NOMINAL, kernel="reference", select=lambda c: c.layer_type in ("fc1", "fc2")
    ) as run:
        y = fn()  # type: ignore[operator]
    st = run.report().intercept
    assert st.accel_gemms == 4 and st.float_gemms == ref.stats().accel_gemms - 4
    assert run.report().gemm_calls == 4
    assert not torch.equal(y, y_ref)  # the other GEMMs ran in float


def test_output_fault_lands_in_the_targeted_layer_only():
    _, fn = _cases()["mlp"]
    with w8a8_reference():
        y_ref = fn()  # type: ignore[operator]
    with on(HW, NOMINAL, kernel="reference", faults=[FlipMSB("other")]):
        y_fc2 = fn()  # type: ignore[operator]
    with on(HW, NOMINAL, kernel="reference", faults=[FlipMSB("qkv")]):
        y_none = fn()  # type: ignore[operator]
    assert torch.equal(y_none, y_ref)
    diff = (y_fc2 - y_ref).abs().detach()
    assert float(diff[0].max()) > 0.01 and float(diff[1:].max()) == 0.0


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize(
    ("mode", "np_dtype"), [("fp16", "float16"), ("bf16", "uint16"), ("fp32", "float32")]
)
def test_float_modes(mode, np_dtype, dit):
    rec = Recorder()
    with torch.no_grad():
        y_float = _dit_call(dit)
    with on(HW, LOW, kernel="exact", quant=QuantConfig(mode=mode), faults=[rec]) as run:
        y = _dit_call(dit)
    assert run.report().errors_injected == 0  # no timing errors in float modes
    assert run.report().gemm_calls > 0
    assert y.dtype == torch.float32
    assert {(fmt, dt) for tgt, _, fmt, _, dt in rec.seen} == {(mode, np_dtype)}
    rel = _rel(y, y_float)
    assert rel < {"fp32": 1e-6, "fp16": 5e-3, "bf16": 3e-2}[mode], rel


def test_per_tensor_is_coarser_and_smoothing_runs():
    model, fn = _cases()["attention"]
    with torch.no_grad():
        y_float = fn()  # type: ignore[operator]
    with w8a8_reference() as _:
        y_tok = fn()  # type: ignore[operator]
    with w8a8_reference(QuantConfig(activations="per-tensor")):
        y_ten = fn()  # type: ignore[operator]
    assert _rel(y_tok, y_float) < _rel(y_ten, y_float)
    with SmoothingCalibrator(model) as cal:
        fn()  # type: ignore[operator]
    with on(
        HW,
        NOMINAL,
        kernel="reference",
        quant=QuantConfig(smoothing_alpha=0.5),
        smoothing=cal.absmax,
    ):
        y_s = fn()  # type: ignore[operator]
    assert not torch.equal(y_s, y_tok)
    assert _rel(y_s, y_float) < REL_TOL


def test_bad_arguments():
    with pytest.raises(ConfigError, match="accel_or_hw"):
        with on("tpu", NOMINAL):  # type: ignore[arg-type]
            pass
    with pytest.raises(ConfigError, match="smoothing"):
        Interceptor(None, None, quant=QuantConfig(smoothing_alpha=0.5))
    with pytest.raises(ConfigError, match="faults"):
        Interceptor(None, None, faults=[object()])  # type: ignore[list-item]
    it = Interceptor(None, None)
    with it, pytest.raises(ConfigError, match="already active"):
        it.__enter__()


def test_unet_cross_attention_and_stage_contexts():
    from diffusers import UNet2DConditionModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        unet = UNet2DConditionModel(
            sample_size=8,
            in_channels=4,
            out_channels=4,
            block_out_channels=(8, 16),
            layers_per_block=1,
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=8,
            attention_head_dim=4,
            norm_num_groups=4,
        ).eval()
    g = torch_generator(4, "unet")
    x = torch.randn(1, 4, 8, 8, generator=g)
    text = torch.randn(1, 3, 8, generator=g)
    rec = Recorder()
    with torch.no_grad():
        y_float = unet(x, 5, encoder_hidden_states=text).sample
        with on(HW, NOMINAL, kernel="reference", faults=[rec]) as run:
            y = unet(x, 5, encoder_hidden_states=text).sample
    assert _rel(y, y_float) < REL_TOL
    ctxs = {c.module: c for tgt, c, *_ in rec.seen if tgt == "output"}
    kv = ctxs["down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k"]
    assert (kv.block, kv.block_index, kv.layer_type) == ("down.0", 0, "cross-kv")
    assert ctxs["mid_block.resnets.0.conv1"].block_index == 2  # down.0, down.1, mid, up.0, up.1
    assert ctxs["up_blocks.1.resnets.0.conv1"].block_index == 4
    lts = {c.layer_type for c in ctxs.values()}
    assert {"cross-q", "cross-kv", "cross-proj", "conv", "embed", "fc1", "fc2"} <= lts
    assert set(run.report().errors_by_block) >= {"down.0", "down.1", "mid", "up.0", "up.1", ""}


def test_post_gemm_hook_sees_operands_and_can_correct(dit):
    """A perfect corrector (recompute the exact product) restores the reference output at an
    undervolted point; the hook sees int8 operands and int32 accumulators."""
    seen = []

    def correct(a, b, out, ctx, op):
        seen.append((a.dtype, b.dtype, out.dtype, op))
        return a.astype(np.int64) @ b.astype(np.int64)

    with w8a8_reference():
        y_ref = _dit_call(dit)
    with on(HW, LOW, kernel="exact", post_gemm=correct) as run:
        y = _dit_call(dit)
    assert run.report().errors_injected > 0
    assert torch.equal(y, y_ref)
    assert set(seen) == {(np.dtype(np.int8), np.dtype(np.int8), np.dtype(np.int32), LOW)}
    assert len(seen) == run.report().gemm_calls
