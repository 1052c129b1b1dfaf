"""Run a recipe end to end: load data, open the run folder, train, write stats, save the final judge.

:func:`train_judge` is what ``genrm train`` calls. Running it again with the same configs on the
same ``output_dir`` resumes: finished iterations and shards are read back, not recomputed
(``RecipeConfig.overwrite`` starts the folder afresh instead). The
final judge lands in ``<output_dir>/final`` (``save_pretrained`` files + card).
"""

from __future__ import annotations

import dataclasses
import importlib
import time
from pathlib import Path
from typing import Any

from genrm_plugin.data import CRITIQUE_FIELDS, PreferencePair, load_preferences
from genrm_plugin.judge import JudgeConfig
from genrm_plugin.recipes import distributed
from genrm_plugin.recipes.card import build_card, write_card
from genrm_plugin.recipes.config import RecipeConfig, TrainConfig, config_dict
from genrm_plugin.recipes.context import CRITIQUE_KINDS, RecipeContext, RecipeResult, copy_model
from genrm_plugin.recipes.training_run import TrainingRun
from genrm_plugin.run_folder import fingerprint_hash
from genrm_plugin.recipes.iteration_stats import write_stats
from genrm_plugin.recipes.trl_fields import is_result_setting, passthrough_names

# How sampling / evaluation engines run: not part of what a run is (a resumed run may switch them;
# shards already written are kept).
ENGINE_FIELDS = ("sample_backend", "sample_batch_size", "device", "sample_dtype")
# What a stopped run may be resumed with to go on (see RecipeConfig.allow_empty_iterations).
EMPTY_ITERATION_FIELDS = ("allow_empty_iterations", "min_train_rows")
RECIPE_MODULES = {
    "bt": "genrm_plugin.recipes.bt",
    "genrm": "genrm_plugin.recipes.genrm",
    "star-sft": "genrm_plugin.recipes.star",
    "star-dpo": "genrm_plugin.recipes.star",
    "star-rationalizer": "genrm_plugin.recipes.star",
    "judge-zero-shot": "genrm_plugin.recipes.zero_shot",
    "synthetic-critique-rm": "genrm_plugin.recipes.critique",
    "cloud": "genrm_plugin.recipes.critique",
}


def train_config_types() -> tuple[type, ...]:
    """The dataclasses ``genrm train`` fills from flags / YAML, in :func:`train_judge`'s argument order."""
    from trl import ModelConfig

    from genrm_plugin.backends.vllm import VLLMConfig

    return (RecipeConfig, TrainConfig, JudgeConfig, ModelConfig, VLLMConfig)


def train_judge(recipe: RecipeConfig, train: TrainConfig | None = None, judge: JudgeConfig | None = None,
                model_args: Any = None, vllm: Any = None) -> Path:
    """Run ``recipe`` (resuming from ``recipe.output_dir`` if it holds the same run); returns ``final/``.

    ``model_args``: TRL's ``ModelConfig`` (``use_peft`` + ``lora_*`` for LoRA, training ``dtype``);
    ``vllm``: the sampling engine's :class:`~genrm_plugin.backends.vllm.VLLMConfig`. Under a
    multi-process launch every rank calls this; rank 0 writes the run folder (see
    :mod:`genrm_plugin.recipes.distributed`).
    """
    train, judge = train or TrainConfig(), judge or JudgeConfig()
    _check_model_args(recipe, model_args)
    distributed.start(train.use_cpu)
    began = time.perf_counter()
    pairs = _load(recipe.data, recipe.data_split, recipe.data_limit, recipe.columns())
    eval_pairs = _load(recipe.eval_data, recipe.eval_split, recipe.eval_limit, None)
    if not pairs and not (recipe.recipe == "judge-zero-shot" and eval_pairs):
        raise ValueError(f"RecipeConfig.data is required for recipe {recipe.recipe!r}")
    module = importlib.import_module(RECIPE_MODULES[recipe.recipe])
    if hasattr(module, "check_inputs"):  # a recipe's own pre-flight checks, before any folder or model is written
        module.check_inputs(recipe, pairs)
    settings = dataclasses.replace(recipe, output_dir="", overwrite=False)  # where/how a run is kept is not what it is
    configs = config_dict(settings, judge)
    for name in (*ENGINE_FIELDS, *EMPTY_ITERATION_FIELDS):  # these may change on resume
        configs["RecipeConfig"].pop(name)
    fingerprint = {
        "configs": {**configs, "TrainConfig": train_fingerprint(train),
                    "ModelConfig": dataclasses.asdict(model_args) if model_args is not None else None},
        "data_sha256": fingerprint_hash([_pair_fields(p) for p in pairs]),
        "eval_data_sha256": fingerprint_hash([_pair_fields(p) for p in eval_pairs]),
    }
    engine = {name: getattr(recipe, name) for name in ENGINE_FIELDS}
    if recipe.sample_backend == "vllm":
        engine["vllm"] = dataclasses.asdict(vllm) if vllm is not None else None
    run = _open_run(recipe, fingerprint, engine)
    try:
        base = _base_model(run, recipe.model)
        eval_source = (recipe.eval_data, recipe.eval_split, recipe.eval_limit) if recipe.eval_data else None
        ctx = RecipeContext(recipe, train, judge, run, pairs, base, eval_source, model_args=model_args, vllm=vllm)
        result: RecipeResult = module.run(ctx)
        final = run.root / "final"
        if not run.main:
            distributed.barrier()  # rank 0 writes stats, card and final/
            return final
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
        run.save_dir(final, lambda tmp: (copy_model(result.checkpoint, tmp), write_card(tmp, card)))
        if train.push_to_hub:
            _push_final(final, train, recipe.recipe)
        distributed.barrier()
        return final
    finally:
        run.close()


def train_fingerprint(train: TrainConfig) -> dict[str, Any]:
    """The training settings that shape the model: genrm's fields and the TRL fields that are set,
    without reporting / saving / hub ones (a resumed run may change those)."""
    values = dataclasses.asdict(train)
    passthrough = set(passthrough_names(train))
    return {name: value for name, value in values.items()
            if is_result_setting(name) and not (name in passthrough and value is None)}


def _check_model_args(recipe: RecipeConfig, model_args: Any) -> None:
    name = getattr(model_args, "model_name_or_path", None)
    if name is not None and name != recipe.model:
        raise ValueError(f"ModelConfig.model_name_or_path {name!r} differs from RecipeConfig.model {recipe.model!r}: "
                         "pass the base model with --model only")


def _open_run(recipe: RecipeConfig, fingerprint: dict[str, Any], engine: dict[str, Any]) -> TrainingRun:
    """Rank 0 opens (locks, checks, creates) the run folder; the other ranks then read it."""
    run = TrainingRun(recipe.output_dir, fingerprint, overwrite=recipe.overwrite, engine=engine) if distributed.is_main() else None
    distributed.barrier()
    return run or TrainingRun(recipe.output_dir, fingerprint, main=False)


def _push_final(final: Path, train: TrainConfig, recipe: str) -> None:
    """Upload ``final/`` (weights, tokenizer, card) to ``hub_model_id`` (default: the run folder's name)."""
    from huggingface_hub import HfApi

    api = HfApi(token=train.hub_token)
    repo = train.hub_model_id or final.parent.name
    api.create_repo(repo, private=train.hub_private_repo, exist_ok=True)
    api.upload_folder(repo_id=repo, folder_path=str(final), commit_message=f"genrm train --recipe {recipe}")


def _load(source: str | None, split: str | None, limit: int | None, columns: dict | None) -> list[PreferencePair]:
    return load_preferences(source, split, limit=limit, columns=columns) if source else []


def _base_model(run: TrainingRun, model: str) -> str:
    """The base model's path: ``toy`` is built once into ``<run>/base`` (atomically)."""
    if model != "toy":
        return model
    path = run.root / "base"
    if not path.is_dir() and run.main:
        from genrm_plugin.toy import save_tiny

        run.save_dir(path, save_tiny)
    distributed.barrier()
    return str(path)


def _pair_fields(pair: PreferencePair) -> dict[str, Any]:
    """A pair as hashed into the run's fingerprint: unset critique fields left out, so data without
    critiques hashes as it did before pairs had them (earlier run folders still resume)."""
    return {k: v for k, v in pair.__dict__.items() if v is not None or k not in CRITIQUE_FIELDS}


def _judge_usage(judge: JudgeConfig, result: RecipeResult) -> dict[str, Any]:
    if result.kind == "bt":
        return {"kind": "bt", "use": "genrm_plugin.bt_scorer.BTScorer.from_pretrained(path)"}
    if result.kind in CRITIQUE_KINDS:  # how CritiqueScorer.from_pretrained writes critiques by default
        return {"kind": result.kind, "use": "genrm_plugin.critique_scorer.CritiqueScorer.from_pretrained(path)",
                **(result.usage or {}), "template": judge.template, "answer_pattern": judge.answer_pattern,
                "max_new_tokens": judge.max_new_tokens, "temperature": judge.temperature, "top_p": judge.top_p}
    return {"mode": result.judge_mode, "template": judge.template, "answer_pattern": judge.answer_pattern, "k": judge.k, "temperature": judge.temperature,
            "top_p": judge.top_p, "max_new_tokens": judge.max_new_tokens}


def _describe(source: str | None, split: str | None, pairs: list[PreferencePair], sha: str) -> dict[str, Any]:
    return {"source": source, "split": split, "pairs": len(pairs), "sha256": sha}
