"""The card saved beside a trained judge: ``genrm_card.json`` (machine-readable) and ``README.md``.

It records what the judge is (recipe, base model, kind -- a generative ``judge``, a ``bt`` reward model
or a critique reward model, ``cloud`` / ``synthetic-critique-rm`` -- and how to ask it), what it was trained on (data
source, pair count, content hash), the iterations with their statistics, and the held-out
accuracies, so a saved judge can be traced and compared without its run folder.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from genrm_plugin.judge_card import CARD_FILE as CARD_JSON
CARD_README = "README.md"
_TABLE_KEYS = (
    "frac_pairs_with_correct", "sample_accuracy", "majority_accuracy", "kept_examples", "critiques", "train_rows",
    "dpo_pairs", "train_loss", "train_steps",
)
# What a card's ``kind`` is called in its title: generative judges, and scalar reward models.
KIND_TITLES = {"judge": "GenRM judge", "bt": "Bradley-Terry reward model", "synthetic-critique-rm": "critique reward model",
               "cloud": "critique-out-loud reward model"}


def build_card(
    recipe: str,
    base_model: str,
    kind: str,
    judge: dict[str, Any],
    data: dict[str, Any],
    eval_data: dict[str, Any] | None,
    stats: list[dict[str, Any]],
    configs: dict[str, Any],
    wall_seconds: float,
) -> dict[str, Any]:
    """The card's content (JSON-able). ``stats`` lose their loss curves (they live in the run folder)."""
    slim = [{k: v for k, v in s.items() if k != "train_loss_curve"} for s in stats]
    accuracies = {str(s["iteration"]): s["eval"]["accuracy"] for s in stats if s.get("eval")}
    return {
        "recipe": recipe,
        "base_model": base_model,
        "kind": kind,
        "judge": judge,
        "data": data,
        "eval_data": eval_data,
        "iterations": len([s for s in stats if s["iteration"] > 0]),
        "accuracies": accuracies,
        "final_accuracy": accuracies.get(str(stats[-1]["iteration"])) if stats else None,
        "stats": slim,
        "configs": configs,
        "wall_seconds_last_attempt": wall_seconds,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def write_card(folder: str | Path, card: dict[str, Any]) -> None:
    """Write ``genrm_card.json`` and a human-readable ``README.md`` into ``folder``."""
    folder = Path(folder)
    (folder / CARD_JSON).write_text(json.dumps(card, indent=1, default=str) + "\n")
    (folder / CARD_README).write_text(render_card(card))


def read_card(folder: str | Path) -> dict[str, Any]:
    return json.loads((Path(folder) / CARD_JSON).read_text())


def render_card(card: dict[str, Any]) -> str:
    lines = [
        f"# {KIND_TITLES.get(card['kind'], 'GenRM judge')}: `{card['recipe']}`",
        "",
        f"- base model: `{card['base_model']}` ({card['kind']})",
        f"- training data: `{card['data'].get('source')}` ({card['data'].get('pairs')} pairs, sha256 {str(card['data'].get('sha256'))[:12]})",
        f"- held-out data: {_describe(card['eval_data'])}",
        f"- iterations: {card['iterations']}; held-out accuracy by iteration: {card['accuracies'] or 'n/a'}",
        f"- ask it with: {json.dumps(card['judge'])}",
        "",
        "| iteration | " + " | ".join(_TABLE_KEYS) + " | held-out accuracy |",
        "|---" * (len(_TABLE_KEYS) + 2) + "|",
    ]
    for s in card["stats"]:
        cells = [_fmt(s.get(k)) for k in _TABLE_KEYS] + [_fmt((s.get("eval") or {}).get("accuracy"))]
        lines.append(f"| {s['iteration']} | " + " | ".join(cells) + " |")
    lines += ["", "Written by `genrm train` (genrm_plugin); the full configs are in `genrm_card.json`.", ""]
    return "\n".join(lines)


def _describe(data: dict[str, Any] | None) -> str:
    return "none" if not data else f"`{data.get('source')}` ({data.get('pairs')} pairs)"


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)
