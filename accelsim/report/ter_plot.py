"""Timing-error-rate plot: TER versus supply voltage, one curve per clock frequency."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: TER values below this are drawn on the floor of the log axis (and marked as "0").
TER_FLOOR = 1e-12


def plot_ter(
    rows: Sequence[dict[str, Any]],
    path: str | Path,
    *,
    vnom: float,
    fnom_ghz: float,
    signoff_v: float,
    title: str = "",
) -> Path:
    """Write a log-scale TER-vs-V plot to ``path`` (PNG/PDF/SVG by suffix).

    ``rows`` are ``accelsim ter`` records with ``vdd`` (V), ``freq_ghz`` and ``mac_error_prob``.
    The guardband (sign-off voltage ``signoff_v``) and the nominal point (``vnom``, ``fnom_ghz``)
    are marked.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    freqs = sorted({round(r["freq_ghz"], 9) for r in rows})
    fig, ax = plt.subplots(figsize=(7.5, 5.0), dpi=130)
    cmap = plt.get_cmap("viridis")
    for i, f in enumerate(freqs):
        pts = sorted((r["vdd"], r["mac_error_prob"]) for r in rows if round(r["freq_ghz"], 9) == f)
        v = [p[0] for p in pts]
        ter = [max(p[1], TER_FLOOR) for p in pts]
        color = cmap(i / max(1, len(freqs) - 1)) if len(freqs) > 1 else "tab:blue"
        ax.plot(v, ter, marker="o", ms=3, lw=1.6, color=color, label=f"{f:g} GHz")
    ax.set_yscale("log")
    ax.set_ylim(TER_FLOOR / 2, 1.0)
    ax.axvline(signoff_v, color="tab:red", ls="--", lw=1.0)
    ax.text(
        signoff_v,
        3e-12,
        f"  sign-off corner {signoff_v:.2f} V\n  (guardband {100 * (1 - signoff_v / vnom):.0f}%)",
        color="tab:red",
        fontsize=8,
        va="bottom",
    )
    ax.axvline(vnom, color="0.4", ls=":", lw=1.0)
    nominal = [
        r for r in rows if abs(r["vdd"] - vnom) < 1e-9 and abs(r["freq_ghz"] - fnom_ghz) < 1e-9
    ]
    y_nom = max(nominal[0]["mac_error_prob"], TER_FLOOR) if nominal else TER_FLOOR
    ax.plot(
        [vnom],
        [y_nom],
        marker="*",
        ms=14,
        color="black",
        zorder=5,
        ls="none",
        label=f"nominal {vnom:g} V, {fnom_ghz:g} GHz",
    )
    ax.set_xlabel("supply voltage (V)")
    ax.set_ylabel("timing errors per MAC (log)")
    ax.set_title(
        title or "Per-MAC timing-error probability, DNN operands, typical chip", fontsize=10
    )
    ax.grid(True, which="major", alpha=0.3)
    fig.text(
        0.99,
        0.005,
        f"points drawn at {TER_FLOOR:g}: no errors (below the floor)",
        ha="right",
        va="bottom",
        fontsize=7,
        color="0.4",
    )
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
