"""``genrm demo`` end to end: base model -> judges -> evaluations -> reward use -> report.

Stages (each timed; their outputs live in the run folder, so re-running the same command in the
same folder reuses finished judges, evaluations and the cached base model):

1. the base model (pretrained on the world's corpus; cached across runs, see :mod:`.base_model`);
2. the world's data files (train / eval_id / eval_ood, :mod:`.world_data`);
3. judges: zero-shot (the base), warm start (seed critiques), then the recipes of
   ``genrm train`` -- BT, GenRM (no CoT) from the base, STaR-SFT and STaR-DPO from the warm start,
   and the pointwise critique reward models (CLoud, Synthetic-Critiques RM; :mod:`.critique_rms`)
   from the warm start;
4. evaluation of every judge on every split (``genrm eval preference``, maj@1 .. maj@K,
   faithfulness of the rationales; a STaR judge's ID evaluation is its run's last held-out one);
5. the voting cost of the best trained CoT judge: maj@``adaptive_k`` against the adaptive rules;
6. the best STaR judge as a reward: Best-of-N (every strategy, and majority voting over final
   answers) on the base policy's samples, and a GRPO run;
7. the report (:mod:`.report`), every gain with a paired-bootstrap interval (:mod:`.analysis`).
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from genrm_plugin.demo.analysis import adaptive_replay
from genrm_plugin.demo.base_model import ensure_base
from genrm_plugin.demo.config import DemoConfig
from genrm_plugin.demo.critique_rms import CRITIQUE_RMS, evaluate_critique_rm, train_critique_rms
from genrm_plugin.demo.judges import (
    evaluate_judge, final_evaluation, judge_config, run_evaluation, star_faithfulness, train_recipe, warm_start,
)
from genrm_plugin.demo.policy import best_of_n_curve, policy_accuracy, run_grpo
from genrm_plugin.demo.checks import COT_TRAINED, top_accuracy
from genrm_plugin.demo.report import write_report
from genrm_plugin.demo.world_data import EVAL_SPLITS, write_world
from genrm_plugin.recipes.training_run import FinishedRun

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
    for recipe in (r for r in config.judges if r not in CRITIQUE_RMS):
        with stage(f"train {recipe}", timings):
            models[recipe] = train_recipe(config, recipe, warm if recipe.startswith("star-") else base, data, out / "judges")
    if "cloud" in config.judges:
        with stage("train critique RMs", timings):
            critique_rms = train_critique_rms(config, warm, data, out / "judges")
        models.update((name, critique_rms[name]) for name in CRITIQUE_RMS if name in config.judges)
    evaluations = {}
    for name, model in models.items():
        with stage(f"evaluate {name}", timings):
            # a STaR run already evaluated its final judge on the ID split (its last iteration's eval)
            finished = {"id": final_evaluation(config, name, out / "judges")} if name.startswith("star-") else {}
            if name in CRITIQUE_RMS:
                evaluations[name] = evaluate_critique_rm(config, name, model, {s: data[s] for s in EVAL_SPLITS},
                                                         out / "evals" / name)
                continue
            evaluations[name] = {split: evaluate_judge(config, name, model, data[split], out / "evals" / name / split,
                                                       finished=finished.get(split))
                                 for split in EVAL_SPLITS}
    star_curves = {}
    for recipe in (r for r in COT_TRAINED if r in models):
        stats = FinishedRun(out / "judges" / recipe).stats()
        sampled = star_faithfulness(out / "judges" / recipe)
        star_curves[recipe] = {
            "accuracy": [top_accuracy(evaluations["warm-start"]["id"])] + [s["eval"]["accuracy"] for s in stats],
            "right_verdict_faithful": [s["right_verdict_faithful_rate"] for s in sampled],
            "right_verdict": [s["right_verdict"] for s in sampled],
            "train_rows": [s["train_rows"] for s in stats],
        }
    candidates = [r for r in COT_TRAINED if r in models] or ["warm-start"]
    best = max(candidates, key=lambda r: top_accuracy(evaluations[r]["id"]))
    with stage("voting cost", timings):
        voting = voting_cost(config, best, models[best], data["id"], out / "evals" / best / f"id-maj{config.adaptive_k}")
    with stage("best-of-n", timings):
        bon = best_of_n_curve(base, models[best], config)
    with stage("grpo", timings):
        before = policy_accuracy(base, config)
        grpo = run_grpo(base, models[best], config, out / "grpo")
        after = policy_accuracy(grpo["policy"], config)
        grpo.update(accuracy_before=mean(before), accuracy_after=mean(after), judge=best,
                    per_problem_before=before, per_problem_after=after)
    results = {
        "config": config.as_dict(), "base": {**base_info, "path": str(base)}, "warm_start": warm_info,
        "judges": evaluations, "star_curves": star_curves, "reward_judge": best, "voting_cost": voting,
        "best_of_n": {**bon, "judge_name": best}, "grpo": grpo, "timings": timings,
        "seconds": time.perf_counter() - began,
    }
    return results, write_report(results, out)


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def voting_cost(config: DemoConfig, name: str, model: Path, data: Path, out_dir: Path) -> dict[str, Any]:
    """maj@``adaptive_k`` of judge ``name`` on the first ``adaptive_pairs`` ID pairs, and the adaptive
    rules replayed on the same votes (votes used, agreement with the maj@``adaptive_k`` verdict)."""
    k = config.adaptive_k
    evaluation = run_evaluation(config, "cot", model, data, out_dir, k=k, limit=config.adaptive_pairs, rationales=False)
    summary = evaluation.summary
    return {
        "judge": name, "k": k, "pairs": summary["pairs"],
        "accuracy": {f"maj@{j}": v for j, v in summary["overall"]["accuracy"].items()},
        "credits": evaluation.credits(k),
        "rules": adaptive_replay(evaluation.records, k, judge_config(config).round_size, confidence=config.adaptive_confidence),
        "confidence": config.adaptive_confidence,
    }
