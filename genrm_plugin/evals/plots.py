"""PNG plots of evaluation results (matplotlib, headless ``Agg`` backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path: str | Path) -> Path:
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_lines(
    path: str | Path,
    x: Sequence[float],
    series: Mapping[str, Sequence[float | None]],
    title: str,
    xlabel: str,
    ylabel: str,
    bands: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None = None,
    log2_x: bool = False,
) -> Path:
    """One line per series (values in [0, 1], drawn as percent), optional shaded intervals."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for name, ys in series.items():
        points = [(xi, 100 * y) for xi, y in zip(x, ys) if y is not None]
        if not points:
            continue
        (line,) = ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=name)
        if bands and name in bands:
            low, high = bands[name]
            ax.fill_between(x, [100 * v for v in low], [100 * v for v in high], color=line.get_color(), alpha=0.15)
    if log2_x:
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(x), [str(int(v)) for v in x])
    else:
        ax.set_xticks(list(x))
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return _save(plt, fig, path)


def plot_bars(
    path: str | Path, names: Sequence[str], values: Sequence[float], lows: Sequence[float], highs: Sequence[float],
    title: str, ylabel: str,
) -> Path:
    """Horizontal bars (values in [0, 1], drawn as percent) with interval whiskers."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 0.6 * len(names) + 1.5), dpi=120)
    ys = list(range(len(names)))
    err = [[100 * (v - lo) for v, lo in zip(values, lows)], [100 * (hi - v) for v, hi in zip(values, highs)]]
    ax.barh(ys, [100 * v for v in values], xerr=err, capsize=4, color="tab:blue", alpha=0.8)
    ax.set_yticks(ys, list(names))
    ax.invert_yaxis()
    ax.set(title=title, xlabel=ylabel, xlim=(0, 100))
    ax.grid(axis="x", alpha=0.3)
    return _save(plt, fig, path)


def plot_grouped_bars(
    path: str | Path, groups: Sequence[str], series: Mapping[str, Sequence[float | None]], title: str, ylabel: str,
    line: float | None = None,
) -> Path:
    """Vertical bars, one cluster per group and one bar per series (values in [0, 1], drawn as
    percent; a missing value leaves a gap); ``line`` draws a dashed reference level (e.g. chance)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6.4, 1.1 * len(groups) + 2), 4.2), dpi=120)
    width = 0.8 / max(1, len(series))
    for j, (name, values) in enumerate(series.items()):
        xs = [i + (j - (len(series) - 1) / 2) * width for i in range(len(groups))]
        points = [(x, 100 * v) for x, v in zip(xs, values) if v is not None]
        bars = ax.bar([p[0] for p in points], [p[1] for p in points], width=width, label=name)
        ax.bar_label(bars, fmt="%.0f", fontsize="x-small")
    if line is not None:
        ax.axhline(100 * line, color="gray", linestyle="--", linewidth=1)
    ax.set_xticks(list(range(len(groups))), list(groups))
    ax.set(title=title, ylabel=ylabel, ylim=(0, 105))
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="small")
    return _save(plt, fig, path)
