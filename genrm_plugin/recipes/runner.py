"""Run a recipe end to end: load data, open the run folder, train, write stats, save the final judge.

:func:`train_judge` is what ``genrm train`` calls. Running it again with the same configs on the
same ``output_dir`` resumes: finished iterations and shards are read back, not recomputed. The
final judge lands in ``<output_dir>/final`` (``save_pretrained`` files + card).
"""

from __future__ import annotations

import dataclasses
import importlib
import time
from pathlib import Path
from typing import Any

from genrm_plugin.data import PreferencePair, load_preferences
from genrm_plugin.judge import JudgeConfig
from genrm_plugin.recipes.card import build_card, write_card
from genrm_plugin.recipes.config import RecipeConfig, TrainConfig, config_dict
from genrm_plugin.recipes.context import RecipeContext, RecipeResult, copy_model
from genrm_plugin.recipes.run_folder import RunFolder, fingerprint_hash
from genrm_plugin.recipes.stats import write_stats

RECIPE_MODULES = {
    "bt": "genrm_plugin.recipes.bt",
    "genrm": "genrm_plugin.recipes.genrm",
    "star-sft": "genrm_plugin.recipes.star",
    "star-dpo": "genrm_plugin.recipes.star",
    "star-rationalizer": "genrm_plugin.recipes.star",
    "judge-zero-shot": "genrm_plugin.recipes.zero_shot",
}


def train_judge(recipe: RecipeConfig, train: TrainConfig | None = None, judge: JudgeConfig | None = None) -> Path:
    """Run ``recipe`` (resuming from ``recipe.output_dir`` if it holds the same run); returns ``final/``."""
    train, judge = train or TrainConfig(), judge or JudgeConfig()
    began = time.perf_counter()
    pairs = _load(recipe.data, recipe.data_split, recipe.data_limit)
    eval_pairs = _load(recipe.eval_data, recipe.eval_split, recipe.eval_limit)
    if not pairs and not (recipe.recipe == "judge-zero-shot" and eval_pairs):
        raise ValueError(f"RecipeConfig.data is required for recipe {recipe.recipe!r}")
    settings = dataclasses.replace(recipe, output_dir="")  # where a run lives is not part of what it is
    fingerprint = {
        "configs": config_dict(settings, train, judge),
        "data_sha256": fingerprint_hash([p.__dict__ for p in pairs]),
        "eval_data_sha256": fingerprint_hash([p.__dict__ for p in eval_pairs]),
    }
    run = RunFolder(recipe.output_dir, fingerprint)
    try:
        base = _base_model(run, recipe.model)
        eval_source = (recipe.eval_data, recipe.eval_split, recipe.eval_limit) if recipe.eval_data else None
        ctx = RecipeContext(recipe, train, judge, run, pairs, base, eval_source)
        result: RecipeResult = importlib.import_module(RECIPE_MODULES[recipe.recipe]).run(ctx)
        write_stats(run.root, result.stats, f"genrm train --recipe {recipe.recipe}")
        data = _describe(recipe.data, recipe.data_split, pairs, fingerprint["data_sha256"])
        card = build_card(
            recipe=recipe.recipe,
            base_model=recipe.model,
            kind=result.kind,
            judge=_judge_usage(judge, result),
            data=data,
            eval_data=_describe(recipe.eval_data, recipe.eval_split, eval_pairs, fingerprint["eval_data_sha256"])
            if eval_pairs
            else (data if recipe.recipe == "judge-zero-shot" else None),  # zero-shot never trains on data
            stats=result.stats,
            configs=fingerprint["configs"],
            wall_seconds=time.perf_counter() - began,
        )
        return run.save_dir(run.root / "final", lambda tmp: (copy_model(result.checkpoint, tmp), write_card(tmp, card)))
    finally:
        run.close()


def _load(source: str | None, split: str | None, limit: int | None) -> list[PreferencePair]:
    return load_preferences(source, split, limit=limit) if source else []


def _base_model(run: RunFolder, model: str) -> str:
    """The base model's path: ``toy`` is built once into ``<run>/base`` (atomically)."""
    if model != "toy":
        return model
    path = run.root / "base"
    if not path.is_dir():
        from genrm_plugin.toy import save_tiny

        run.save_dir(path, save_tiny)
    return str(path)


def _judge_usage(judge: JudgeConfig, result: RecipeResult) -> dict[str, Any]:
    if result.kind == "bt":
        return {"kind": "bt", "use": "genrm_plugin.recipes.bt.BTScorer.from_pretrained(path)"}
    return {"mode": result.judge_mode, "template": judge.template, "answer_pattern": judge.answer_pattern, "k": judge.k, "temperature": judge.temperature,
            "top_p": judge.top_p, "max_new_tokens": judge.max_new_tokens}


def _describe(source: str | None, split: str | None, pairs: list[PreferencePair], sha: str) -> dict[str, Any]:
    return {"source": source, "split": split, "pairs": len(pairs), "sha256": sha}
