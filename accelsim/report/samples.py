"""``samples.png``: golden and faulty generated images (or clips) side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _to_numpy(x: Any) -> np.ndarray:
    arr = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
    return np.asarray(arr, dtype=np.float64)


def save_comparison(
    golden: Any, test: Any, path: str | Path, *, title: str = "", max_items: int = 10
) -> None:
    """Write a figure with rows golden / test / |test - golden| (images ``(N, C, H, W)``), or
    for clips ``(N, F, C, H, W)`` golden and test rows of frames per clip. Pixel range [-1, 1]."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = _to_numpy(golden)
    t = _to_numpy(test)
    if g.ndim == 5:
        n = min(g.shape[0], max(1, max_items // 2))
        frames = g.shape[1]
        fig, axes = plt.subplots(
            2 * n, frames, figsize=(1.1 * frames + 1.2, 1.15 * 2 * n + 0.6), squeeze=False
        )
        for i in range(n):
            for f in range(frames):
                for row, src, label in ((2 * i, g, "golden"), (2 * i + 1, t, "faulty")):
                    ax = axes[row][f]
                    ax.imshow(src[i, f, 0], cmap="gray", vmin=-1, vmax=1)
                    ax.set_xticks([])
                    ax.set_yticks([])
                    if f == 0:
                        ax.set_ylabel(f"{label} {i}", fontsize=7)
    else:
        n = min(g.shape[0], max_items)
        fig, axes = plt.subplots(3, n, figsize=(1.1 * n + 1.2, 4.0), squeeze=False)
        diff = np.abs(t - g)
        vmax = max(float(diff[:n].max()), 1e-6)
        for i in range(n):
            for row, img, kw in (
                (0, g[i, 0], {"cmap": "gray", "vmin": -1, "vmax": 1}),
                (1, t[i, 0], {"cmap": "gray", "vmin": -1, "vmax": 1}),
                (2, diff[i, 0], {"cmap": "magma", "vmin": 0, "vmax": vmax}),
            ):
                ax = axes[row][i]
                ax.imshow(img, **kw)
                ax.set_xticks([])
                ax.set_yticks([])
        for row, label in enumerate(("golden", "faulty", f"|diff| (max {vmax:.2g})")):
            axes[row][0].set_ylabel(label, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
