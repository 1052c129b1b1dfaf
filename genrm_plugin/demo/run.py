"""``genrm demo`` end to end: base model -> judges -> evaluations -> reward use -> report.

Stages (each timed; their outputs live in the run folder, so re-running the same command in the
same folder reuses finished judges, evaluations and the cached base model):

1. the base model (pretrained on the world's corpus; cached across runs, see :mod:`.base_model`);
2. the world's data files (train / eval_id / eval_ood, :mod:`.world_data`);
3. judges: zero-shot (the base), warm start (seed critiques), then the recipes of
   ``genrm train`` -- BT, GenRM (no CoT) from the base, STaR-SFT and STaR-DPO from the warm start;
4. evaluation of every judge on both splits (``genrm eval preference``, maj@1 .. maj@K,
   faithfulness of the rationales; a STaR judge's ID evaluation is its run's last held-out one);
5. the best STaR judge as a reward: Best-of-N on the base policy's samples and a GRPO run;
6. the report (:mod:`.report`).
"""

from __future__ import annotations

import json
import logging
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from genrm_plugin.demo.base_model import ensure_base
from genrm_plugin.demo.config import DemoConfig
from genrm_plugin.demo.judges import evaluate_judge, final_evaluation, star_faithfulness, train_recipe, warm_start
from genrm_plugin.demo.policy import best_of_n_curve, policy_accuracy, run_grpo
from genrm_plugin.demo.report import COT_TRAINED, top_accuracy, write_report
from genrm_plugin.demo.world_data import write_world

logger = logging.getLogger(__name__)


@contextmanager
def stage(name: str, timings: dict[str, float]) -> Iterator[None]:
    logger.warning(f"[genrm demo] {name} ...")
    began = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - began
    logger.warning(f"[genrm demo] {name}: {timings[name]:.1f} s")


def run_demo(config: DemoConfig) -> tuple[dict[str, Any], str]:
    """Run the whole demo into ``config.output_dir``; returns (results, stdout summary)."""
    import torch

    began, timings = time.perf_counter(), {}
    torch.manual_seed(config.seed)
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    with stage("base model", timings):
        base, base_info = ensure_base(config)
    data = write_world(out / "data", config.train_pairs, config.eval_pairs, config.label_noise, config.seed)
    with stage("warm start", timings):
        warm, warm_info = warm_start(config, base, out / "judges")
    models: dict[str, Path] = {"zero-shot": base, "warm-start": warm}
    for recipe in config.judges:
        with stage(f"train {recipe}", timings):
            models[recipe] = train_recipe(config, recipe, warm if recipe.startswith("star-") else base, data, out / "judges")
    evaluations = {}
    for name, model in models.items():
        with stage(f"evaluate {name}", timings):
            # a STaR run already evaluated its final judge on the ID split (its last iteration's eval)
            finished = {"id": final_evaluation(config, name, out / "judges")} if name.startswith("star-") else {}
            evaluations[name] = {split: evaluate_judge(config, name, model, data[split], out / "evals" / name / split,
                                                       finished=finished.get(split))
                                 for split in ("id", "ood")}
    star_curves = {}
    for recipe in (r for r in COT_TRAINED if r in models):
        stats = json.loads((out / "judges" / recipe / "stats.json").read_text())
        sampled = star_faithfulness(out / "judges" / recipe)
        star_curves[recipe] = {
            "accuracy": [top_accuracy(evaluations["warm-start"]["id"])] + [s["eval"]["accuracy"] for s in stats],
            "right_verdict_faithful": [s["right_verdict_faithful_rate"] for s in sampled],
            "right_verdict": [s["right_verdict"] for s in sampled],
            "train_rows": [s["train_rows"] for s in stats],
        }
    candidates = [r for r in COT_TRAINED if r in models] or ["warm-start"]
    best = max(candidates, key=lambda r: top_accuracy(evaluations[r]["id"]))
    with stage("best-of-n", timings):
        bon = best_of_n_curve(base, models[best], config)
    with stage("grpo", timings):
        before = policy_accuracy(base, config)
        grpo = run_grpo(base, models[best], config, out / "grpo")
        grpo.update(accuracy_before=before, accuracy_after=policy_accuracy(grpo["policy"], config), judge=best)
    results = {
        "config": config.as_dict(), "base": {**base_info, "path": str(base)}, "warm_start": warm_info,
        "judges": evaluations, "star_curves": star_curves, "reward_judge": best, "best_of_n": {**bon, "judge_name": best},
        "grpo": grpo, "timings": timings, "seconds": time.perf_counter() - began,
    }
    return results, write_report(results, out)
