"""What every recipe gets (:class:`RecipeContext`) and returns (:class:`RecipeResult`).

The context bundles the configs, the loaded preferences, the run folder and the base model, and
holds the two steps all recipes share: train-and-checkpoint one iteration (resumable: a saved
checkpoint is never retrained) and evaluate a checkpoint on the held-out pairs.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from genrm_plugin.data import PreferencePair
from genrm_plugin.judge import GenerativeJudge, JudgeConfig
from genrm_plugin.recipes import distributed
from genrm_plugin.recipes.config import RecipeConfig, TrainConfig
from genrm_plugin.recipes.training_run import TrainingRun, shard_seed
from genrm_plugin.recipes.trainers import TrainResult

TRAIN_RESULT = "train_result.json"
TrainFn = Callable[..., tuple[Any, Any, TrainResult]]


def train_stats(summary: dict[str, Any]) -> dict[str, Any]:
    """The per-iteration statistics of a training summary (see :mod:`genrm_plugin.recipes.iteration_stats`)."""
    return {
        "trained": summary["trained"],
        "train_loss": summary["loss"],
        "train_loss_curve": [entry["loss"] for entry in summary["log"]],
        "train_steps": summary["steps"],
        "train_seconds": summary["seconds"],
        "rows_over_max_length": summary["over_max_length"],
    }


def copy_model(source: str | Path, target: Path) -> None:
    """Copy a saved model folder (or save a hub model with ``save_pretrained``) to ``target``."""
    if Path(source).is_dir():
        shutil.copytree(source, target, ignore=shutil.ignore_patterns(".*"))
        return
    from transformers import AutoModelForCausalLM, AutoTokenizer

    AutoModelForCausalLM.from_pretrained(str(source)).save_pretrained(target)
    AutoTokenizer.from_pretrained(str(source)).save_pretrained(target)


def release_judge(judge: GenerativeJudge | None) -> None:
    """Free a sampling engine before training (vLLM workers shut down, accelerator memory returned)."""
    if judge is None:
        return
    close = getattr(judge.backend, "close", None)
    if close is not None:
        close()
    del judge
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@dataclass
class RecipeResult:
    """A finished recipe.

    Fields:
        checkpoint: the final model's folder (copied to ``final/`` with the card).
        stats: one dict per iteration (see :mod:`genrm_plugin.recipes.iteration_stats`).
        kind: ``judge`` (generative, loads into a backend) or ``bt`` (a scalar reward model).
        judge_mode: how to ask the judge: ``cot`` or ``no_cot`` (``None`` for a BT model).
    """

    checkpoint: Path
    stats: list[dict[str, Any]]
    kind: str = "judge"
    judge_mode: str | None = "cot"


@dataclass
class RecipeContext:
    """Inputs of a recipe run.

    Fields:
        recipe, train, judge: the run's configs.
        run: the opened run folder.
        pairs: training preferences.
        base_model: path of the model the first iteration starts from.
        eval_source: held-out preferences as (source, split, limit) for ``load_preferences``, or ``None``.
        model_args: TRL's ``ModelConfig`` (LoRA with ``use_peft``, training dtype, attention,
            quantization), or ``None`` for TRL's defaults.
        vllm: engine settings when ``sample_backend`` is ``vllm`` (``VLLMConfig``; ``None``: defaults).
    """

    recipe: RecipeConfig
    train: TrainConfig
    judge: JudgeConfig
    run: TrainingRun
    pairs: list[PreferencePair]
    base_model: str
    eval_source: tuple[str, str | None, int | None] | None = None
    model_args: Any = None
    vllm: Any = None

    @property
    def seed(self) -> int:
        return self.judge.seed

    def train_seed(self, iteration: int) -> int:
        return shard_seed(self.seed, iteration, -1)

    def train_iteration(self, iteration: int, start: str, rows: list[dict], train_fn: TrainFn) -> tuple[Path, dict]:
        """Train ``iteration`` from model ``start`` on ``rows`` and checkpoint it (reused if already saved).

        With no rows the checkpoint is a copy of ``start`` (recorded as ``trained: false``).
        Returns the checkpoint folder and the training summary (loss, steps, seconds, rows).
        """
        existing = self.run.checkpoint(iteration)
        if existing is not None:
            return existing, json.loads((existing / TRAIN_RESULT).read_text())
        if rows:
            lr = self.train.lr_for(self.recipe.recipe)
            out_dir = self.run.iteration_dir(iteration) / "trainer"
            _, _, result = train_fn(start, rows, out_dir, self.train, lr, self.train_seed(iteration), self.model_args)
            summary = {**asdict(result), "trained": True, "learning_rate": lr}

            def save(tmp: Path) -> None:
                os.replace(result.saved_model, tmp)  # weights gathered and written by the trainer (main process)
                if result.adapter:
                    shutil.copytree(result.adapter, tmp / "adapter")
                (tmp / TRAIN_RESULT).write_text(json.dumps(summary, indent=1))

        else:
            summary = {**asdict(TrainResult()), "trained": False}

            def save(tmp: Path) -> None:
                copy_model(start, tmp)
                (tmp / TRAIN_RESULT).write_text(json.dumps(summary, indent=1))

        if self.run.main:
            self.run.save_checkpoint(iteration, save)
        distributed.barrier()
        return self.run.iteration_dir(iteration) / "model", summary

    def run_single_stage(self, rows: list[dict], train_fn: TrainFn, kind: str = "judge", mode: str | None = "cot") -> RecipeResult:
        """A one-iteration recipe: train the base model on ``rows``, checkpoint, evaluate, record stats."""
        if not self.run.is_done(1):
            checkpoint, summary = self.train_iteration(1, self.base_model, rows, train_fn)
            stats = {
                "iteration": 1,
                "pairs": len(self.pairs),
                "train_rows": len(rows),
                **train_stats(summary),
                "eval": self.evaluate(checkpoint, 1, kind=kind, mode=mode),
            }
            self.run.finish_iteration(1, stats)
        return RecipeResult(self.run.checkpoint(1), [self.run.stats(1)], kind=kind, judge_mode=mode)

    def load_judge(self, checkpoint: str | Path, mode: str, **changes: Any) -> GenerativeJudge:
        """A :class:`GenerativeJudge` over ``checkpoint`` on the configured backend (``sample_backend``)."""
        from genrm_plugin.backends.factory import BackendConfig, load_backend

        backend = load_backend(
            BackendConfig(model=str(checkpoint), backend=self.recipe.sample_backend, batch_size=self.recipe.sample_batch_size,
                          device=self.recipe.device, dtype=self.recipe.sample_dtype),
            vllm=self.vllm,
        )
        return GenerativeJudge(backend, self.judge.replace(mode=mode, **changes))

    def _bt_scorer(self, checkpoint: str | Path):
        from genrm_plugin.backends.factory import default_device
        from genrm_plugin.bt_scorer import BTScorer

        return BTScorer.from_pretrained(checkpoint, device=self.recipe.device or default_device())

    def evaluate(self, checkpoint: str | Path, iteration: int, kind: str = "judge", mode: str | None = None) -> dict | None:
        """Held-out accuracy of ``checkpoint`` through ``genrm eval preference``'s evaluation.

        The evaluation's run folder is ``iter-<iteration>/eval`` (records, summary, table, plot);
        CoT judges are scored at maj@1, 2, ... ``eval_k`` (default: the judge's ``k``; the stats
        report the largest). ``None`` without held-out data.
        """
        source = self.eval_source
        if source is None:
            return None
        if not distributed.is_main():  # rank 0 evaluates; the others wait at the run folder's next barrier
            return None
        from genrm_plugin.evals.preference import PreferenceEvalConfig, evaluate_preferences
        from genrm_plugin.evals.selection import describe_judge

        k = self.recipe.eval_k or self.judge.k
        config = PreferenceEvalConfig(
            data=source[0], split=source[1], limit=source[2], order_seed=self.seed,
            output_dir=str(self.run.evaluation_dir(iteration)), judge_kind="bt" if kind == "bt" else "genrm",
            save_rationales=self.recipe.eval_save_rationales and kind != "bt" and mode == "cot",
        )
        if kind == "bt":
            info = {"model": str(checkpoint), "judge": "BTScorer"}
            summary = evaluate_preferences(config, scorer=self._bt_scorer(checkpoint), judge_info=info)
        else:
            judge = self.load_judge(checkpoint, mode, k=k, adaptive="off")
            summary = evaluate_preferences(config, judge=judge, judge_info={"model": str(checkpoint), **describe_judge(judge)})
            release_judge(judge)
        top, overall = str(summary["ks"][-1]), summary["overall"]
        return {
            "accuracy": overall["accuracy"][top],
            "abstain_rate": overall["abstain_rate"][top],
            "tie_rate": overall["tie_rate"][top],
            "consistency": overall["consistency"][top],
            "k": int(top),
            "n": summary["pairs"],
        }
