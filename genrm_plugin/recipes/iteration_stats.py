"""Per-iteration statistics of a training run: ``stats.json`` and a ``stats.png`` plot.

Each iteration's dict may hold (STaR recipes fill all of them, one-stage recipes a subset):

* ``frac_pairs_with_correct`` / ``frac_items_with_correct`` -- pairs / judge examples with at
  least one sampled rationale reaching the right verdict;
* ``sample_accuracy``, ``abstain_rate``, ``majority_accuracy`` -- of the sampled verdicts;
* ``kept_examples`` (examples that gave training rows), ``train_rows``, ``dpo_pairs``;
* ``train_loss`` (mean), ``train_loss_curve`` (logged losses), ``train_steps``, ``train_seconds``,
  ``rows_over_max_length`` (truncated, or dropped by the reward trainer), ``trained``;
* ``eval`` -- held-out accuracy (``accuracy``, ``ties``, ``abstained``, ``n``) if ``eval_data`` is set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from genrm_plugin.recipes.training_run import STATS_FILE
from genrm_plugin.run_folder import atomic_write_json

RATE_KEYS = {
    "frac_pairs_with_correct": "pairs with >= 1 correct rationale",
    "sample_accuracy": "sampled verdicts correct",
    "majority_accuracy": "majority vote correct",
}
COUNT_KEYS = {"kept_examples": "kept examples", "train_rows": "training rows", "dpo_pairs": "DPO pairs"}


def write_stats(root: str | Path, stats: list[dict[str, Any]], title: str) -> tuple[Path, Path]:
    """Write ``stats.json`` and ``stats.png`` into ``root``; returns both paths."""
    root = Path(root)
    json_path, png_path = root / STATS_FILE, root / "stats.png"
    atomic_write_json(json_path, stats)
    plot_stats(stats, png_path, title)
    return json_path, png_path


def plot_stats(stats: list[dict[str, Any]], path: Path, title: str) -> None:
    """Three panels: rates and held-out accuracy per iteration, data counts, training loss."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    iterations = [s["iteration"] for s in stats]
    fig, (rates, counts, losses) = plt.subplots(1, 3, figsize=(15, 4))
    for key, label in RATE_KEYS.items():
        if any(s.get(key) is not None for s in stats):
            rates.plot(iterations, [s.get(key) for s in stats], marker="o", label=label)
    if any(s.get("eval") for s in stats):
        rates.plot(iterations, [(s.get("eval") or {}).get("accuracy") for s in stats], marker="s", label="held-out accuracy")
    rates.set(title="accuracy", xlabel="iteration", ylim=(0, 1.05), xticks=iterations)
    shown = [k for k in COUNT_KEYS if any(s.get(k) is not None for s in stats)]
    width = 0.8 / max(len(shown), 1)
    for j, key in enumerate(shown):
        counts.bar([i + j * width for i in iterations], [s.get(key) or 0 for s in stats], width, label=COUNT_KEYS[key])
    counts.set(title="training data", xlabel="iteration", xticks=iterations)
    step0 = 0
    for s in stats:
        curve = s.get("train_loss_curve") or []
        if curve:
            losses.plot(range(step0, step0 + len(curve)), curve, label=f"iteration {s['iteration']}")
            step0 += len(curve)
    losses.set(title="training loss (logged steps)", xlabel="logged step")
    for ax in (rates, counts, losses):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
