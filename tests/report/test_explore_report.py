from __future__ import annotations

from accelsim.report.explore_report import (
    aggregate,
    best_at_threshold,
    markdown_report,
    pareto_front,
    plot_pareto,
    plot_sensitivity,
)


def rows():
    out = []
    for chip in (0, 1):
        for seed in (0, 1):
            out.append(
                dict(
                    policy="nominal",
                    mode="undervolt",
                    vdd=0.9,
                    freq_ghz=1.0,
                    chip=chip,
                    seed=seed,
                    energy_saving=0.0,
                    speedup=1.0,
                    feature_distance=0.0,
                    meets_quality=True,
                )
            )
            for vdd, loss, save in (
                (0.8, 0.001, 0.2),
                (0.75, 0.01 + 0.01 * chip, 0.3),
                (0.7, 0.5, 0.4),
            ):
                out.append(
                    dict(
                        policy="uniform",
                        mode="undervolt",
                        vdd=vdd,
                        freq_ghz=1.0,
                        chip=chip,
                        seed=seed,
                        energy_saving=save,
                        speedup=1.0,
                        feature_distance=loss,
                        meets_quality=loss <= 0.015,
                    )
                )
                out.append(
                    dict(
                        policy="drift",
                        mode="undervolt",
                        vdd=vdd,
                        freq_ghz=1.0,
                        chip=chip,
                        seed=seed,
                        energy_saving=save * 0.9,
                        speedup=1.0,
                        feature_distance=loss / 10,
                        meets_quality=loss / 10 <= 0.015,
                    )
                )
            out.append(
                dict(
                    policy="uniform",
                    mode="overclock",
                    vdd=0.9,
                    freq_ghz=1.3,
                    chip=chip,
                    seed=seed,
                    energy_saving=-0.05,
                    speedup=1.3,
                    feature_distance=0.002,
                    meets_quality=True,
                )
            )
    return out


def test_aggregate_front_and_best():
    pts = aggregate(rows())
    assert len(pts) == 8
    uni = [p for p in pts if p.policy == "uniform" and p.mode == "undervolt"]
    p75 = next(p for p in uni if p.vdd == 0.75)
    assert p75.n == 4 and abs(p75.quality_loss - 0.015) < 1e-12 and p75.quality_yield == 0.5
    front = pareto_front(uni)
    assert [p.vdd for p in front] == [0.8, 0.75, 0.7]
    best = best_at_threshold(pts, "undervolt", 0.015)
    # uniform at 0.75 V fails on chip 1 (yield 50%), so its best is 0.8 V; drift reaches 0.75 V
    assert best["uniform"].vdd == 0.8
    assert best["drift"].vdd == 0.75 and abs(best["drift"].energy_saving - 0.27) < 1e-12
    md = markdown_report(pts, model="dit-digits", array="32x32 ws")
    assert "**Best policy: `drift`**" in md and "27.0% energy saving" in md
    assert "1.30x speed-up" in md


def test_plots_are_written(tmp_path):
    pts = aggregate(rows())
    plot_pareto(pts, tmp_path / "pareto.png", threshold=0.015, title="test")
    plot_sensitivity(
        {("blocks.0", 0): 1.0, ("blocks.1", 0): 0.5, ("blocks.0", 5): 0.1, ("blocks.1", 5): 0.0},
        tmp_path / "s.png",
    )
    for name in ("pareto.png", "s.png"):
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
