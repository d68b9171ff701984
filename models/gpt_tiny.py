"""gpt-tiny: a decoder-only character language model trained on CPython's pydoc topics.

Architecture (GPT-2 style, pre-norm): token embedding ``tok_embed`` (vocab -> ``dim``) plus a
learned positional embedding ``pos_embed`` (``context`` positions), ``depth`` causal blocks
``blocks.<i>`` (``attn.qkv``, explicit score / value matmuls with a causal mask, ``attn.proj``,
``mlp.fc1``, GELU, ``mlp.fc2``; the :class:`accelsim.models.vit_digits.Block`), a final
``norm`` and ``head`` (Linear ``dim`` -> vocab logits). Tokens: :mod:`accelsim.models.text`.

Training: AdamW with warm-up + cosine schedule on random windows of ``context + 1`` tokens
of the train split. Metrics on the val split, cut into non-overlapping windows of
``context + 1`` tokens: ``val_loss`` (mean next-token cross-entropy, nats/char),
``val_perplexity`` = exp(val_loss), ``val_accuracy`` (top-1 next-token accuracy).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from accelsim.models.text import VOCAB_SIZE, tokens
from accelsim.models.train import (
    cosine_lr,
    deterministic,
    materialize,
    merge_config,
    save_checkpoint,
)
from accelsim.models.vit_digits import Block
from accelsim.rng import torch_generator

NAME = "gpt-tiny"
KIND = "lm"
DESCRIPTION = "4-block decoder-only char LM (dim 64, context 64) on CPython's pydoc topics"

#: Architecture; ``vocab`` must equal accelsim.models.text.VOCAB_SIZE.
DEFAULT_CONFIG: dict[str, int | float | str] = {
    "vocab": VOCAB_SIZE,
    "context": 64,
    "dim": 64,
    "depth": 4,
    "heads": 4,
    "mlp": 256,
}
#: Training hyper-parameters (chosen by hand to fit a few CPU minutes).
TRAIN_CONFIG: dict[str, int | float] = {
    "steps": 1200,
    "batch": 32,
    "lr": 2e-3,
    "weight_decay": 0.01,
    "warmup": 100,
}
#: Quick mode (tests): one narrow block, short context, 20 optimizer steps.
QUICK_CONFIG: dict[str, int | float | str] = {
    "vocab": VOCAB_SIZE,
    "context": 16,
    "dim": 16,
    "depth": 1,
    "heads": 2,
    "mlp": 32,
}
QUICK_STEPS = 20


class GPT(nn.Module):
    """Causal transformer language model (see module docstring)."""

    def __init__(
        self, vocab: int, context: int, dim: int, depth: int, heads: int, mlp: int
    ) -> None:
        super().__init__()
        self.context = context
        self.tok_embed = nn.Embedding(vocab, dim)
        self.pos_embed = nn.Parameter(torch.empty(1, context, dim))
        self.blocks = nn.ModuleList(Block(dim, heads, mlp, causal=True) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Token ids ``(B, T)`` int64, ``T <= context`` -> next-token logits ``(B, T, vocab)``."""
        t = idx.shape[1]
        if t > self.context:
            from accelsim.errors import ShapeError

            raise ShapeError(f"sequence length: got {t}, expected <= context={self.context}")
        z = self.tok_embed(idx) + self.pos_embed[:, :t]
        for block in self.blocks:
            z = block(z)
        return self.head(self.norm(z))


def build(config: dict[str, Any], generator: torch.Generator | None = None) -> nn.Module:
    """A :class:`GPT` for ``config`` (missing keys from DEFAULT_CONFIG)."""
    cfg = merge_config(NAME, DEFAULT_CONFIG, config)
    keys = ("vocab", "context", "dim", "depth", "heads", "mlp")
    return materialize(lambda: GPT(*(int(cfg[k]) for k in keys)), generator, NAME)


def example_inputs(batch: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """One forward pass: ``batch`` random token sequences ``(batch, 64)`` (full context)."""
    context = int(DEFAULT_CONFIG["context"])
    return (torch.randint(0, VOCAB_SIZE, (batch, context), generator=generator),)


@torch.no_grad()
def evaluate(model: nn.Module, context: int) -> dict[str, float]:
    """``val_loss`` (nats/char), ``val_perplexity``, ``val_accuracy`` on the val split."""
    was_training = model.training
    model.eval()
    ids = tokens("val")
    n = (len(ids) - 1) // context
    x = ids[: n * context].reshape(n, context)
    y = ids[1 : n * context + 1].reshape(n, context)
    loss_sum, correct = 0.0, 0
    for start in range(0, n, 128):
        logits = model(x[start : start + 128])
        target = y[start : start + 128]
        loss_sum += (
            float(
                nn.functional.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]), target.reshape(-1)
                )
            )
            * target.numel()
        )
        correct += int((logits.argmax(-1) == target).sum())
    model.train(was_training)
    loss = loss_sum / (n * context)
    return {
        "val_loss": loss,
        "val_perplexity": math.exp(loss),
        "val_accuracy": correct / (n * context),
    }


def _fit(model: nn.Module, seed: int, context: int, steps: int) -> float:
    """Train ``model`` for ``steps`` AdamW steps; returns the last training loss (nats)."""
    data = tokens("train")
    gen = torch_generator(seed, NAME, "data")
    batch = int(TRAIN_CONFIG["batch"])
    peak = float(TRAIN_CONFIG["lr"])
    warmup = min(int(TRAIN_CONFIG["warmup"]), max(1, steps // 10))
    opt = torch.optim.AdamW(
        model.parameters(), lr=peak, weight_decay=float(TRAIN_CONFIG["weight_decay"])
    )
    offsets = torch.arange(context + 1)
    loss = torch.zeros(())
    model.train()
    for step in range(steps):
        starts = torch.randint(0, len(data) - context - 1, (batch, 1), generator=gen)
        window = data[starts + offsets]
        for group in opt.param_groups:
            group["lr"] = cosine_lr(step, steps, peak, warmup)
        logits = model(window[:, :-1])
        loss = nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), window[:, 1:].reshape(-1)
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (step + 1) % max(1, steps // 10) == 0:
            print(f"{NAME}: step {step + 1}/{steps} loss {float(loss.detach()):.4f}", flush=True)
    model.eval()
    return float(loss.detach())


def train(seed: int, out_dir: Path, quick: bool = False) -> dict[str, float]:
    """Train from ``seed``, write ``out_dir/gpt-tiny.{pt,json}``, return the metrics."""
    config = dict(QUICK_CONFIG if quick else DEFAULT_CONFIG)
    steps = QUICK_STEPS if quick else int(TRAIN_CONFIG["steps"])
    context = int(config["context"])
    t0 = time.perf_counter()
    with deterministic():
        model = build(config, torch_generator(seed, NAME, "init"))
        last = _fit(model, seed, context, steps)
        metrics = evaluate(model, context)
    metrics["train_loss_last"] = last
    metrics["steps"] = float(steps)
    seconds = time.perf_counter() - t0
    save_checkpoint(
        out_dir,
        NAME,
        config,
        model,
        metrics,
        seed,
        extra={"train_config": TRAIN_CONFIG, "train_seconds": round(seconds, 1), "quick": quick},
    )
    print(
        f"{NAME}: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()) + f" ({seconds:.0f} s)"
    )
    return metrics
