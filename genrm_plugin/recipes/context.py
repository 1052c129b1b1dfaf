"""What every recipe gets (:class:`RecipeContext`) and returns (:class:`RecipeResult`).

The context bundles the configs, the loaded preferences, the run folder and the base model, and
holds the two steps all recipes share: train-and-checkpoint one iteration (resumable: a saved
checkpoint is never retrained), sample shards resumably (:meth:`RecipeContext.sample_shards`) and
evaluate a checkpoint on the held-out pairs (generative judges, BT models, critique reward models).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from tqdm.auto import tqdm

from genrm_plugin.critique_scorer import KINDS as CRITIQUE_KINDS
from genrm_plugin.data import PreferencePair
from genrm_plugin.judge import GenerativeJudge, JudgeConfig
from genrm_plugin.recipes import distributed
from genrm_plugin.recipes.config import RecipeConfig, TrainConfig
from genrm_plugin.recipes.training_run import TrainingRun, shard_seed
from genrm_plugin.recipes.trainers import TrainResult

TRAIN_RESULT = "train_result.json"
REWARD_KINDS = ("bt", *CRITIQUE_KINDS)  # scalar reward models: evaluated as scorers
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
    """Free a judge's sampling engine before training (see :func:`release_backend`)."""
    release_backend(judge.backend if judge is not None else None)


def release_backend(backend: Any) -> None:
    """Free a sampling engine before training (vLLM workers shut down, accelerator memory returned)."""
    if backend is None:
        return
    close = getattr(backend, "close", None)
    if close is not None:
        close()
    del backend
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
        kind: ``judge`` (generative, loads into a backend), ``bt`` (a scalar reward model), or a
            critique reward model (``cloud``, ``synthetic-critique-rm``).
        judge_mode: how to ask the judge: ``cot`` or ``no_cot`` (``None`` for a reward model).
        usage: what else the card's ``judge`` section records (a critique RM's ``critic``).
    """

    checkpoint: Path
    stats: list[dict[str, Any]]
    kind: str = "judge"
    judge_mode: str | None = "cot"
    usage: dict[str, Any] | None = None


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
        return GenerativeJudge(self.load_backend(checkpoint), self.judge.replace(mode=mode, **changes))

    def load_backend(self, model: str | Path) -> Any:
        """A sampling engine (``sample_backend``, ``device``, ``sample_dtype``) over ``model``."""
        from genrm_plugin.backends.factory import load_backend

        return load_backend(self._engine(model), vllm=self.vllm)

    def _engine(self, model: str | Path) -> Any:
        from genrm_plugin.backends.factory import BackendConfig

        return BackendConfig(model=str(model), backend=self.recipe.sample_backend, batch_size=self.recipe.sample_batch_size,
                             device=self.recipe.device, dtype=self.recipe.sample_dtype)

    def sample_shards(self, iteration: int, items: list[Any], sample: Callable[[list[Any], int], list[dict]],
                      desc: str) -> list[dict]:
        """Records of ``items`` sampled in shards of ``shard_size`` with ``sample(shard_items, seed)``.

        Shard ``s`` of ``iteration`` uses the seed ``shard_seed(seed, iteration, s)`` and is saved
        atomically; finished shards are read back, not resampled (a killed run resumes at the first
        missing one). Under a multi-process launch the missing shards go round in rounds of one per
        rank and rank 0 saves them. ``sample`` loads its engine lazily: nothing is loaded when every
        shard is done.
        """
        size = self.recipe.shard_size
        shards = [items[s : s + size] for s in range(0, len(items), size)]
        seeds = [shard_seed(self.seed, iteration, number) for number in range(len(shards))]
        done = {number: self.run.load_shard(iteration, number, seeds[number], len(shard)) for number, shard in enumerate(shards)}
        missing = [number for number, records in done.items() if records is None]
        world = distributed.world_size()
        for start in tqdm(range(0, len(missing), world), desc=f"iteration {iteration}: {desc}", unit="round",
                          disable=not missing or not distributed.is_main()):
            mine = {number: sample(shards[number], seeds[number]) for number in distributed.my_share(missing[start : start + world])}
            for number, records in sorted(distributed.gather_records(mine).items()):
                self.run.save_shard(iteration, number, seeds[number], records)
                done[number] = records
        return [record for number in range(len(shards)) for record in done[number]]

    def _critique_scorer(self, checkpoint: str | Path, kind: str, critic: str | None, k: int):
        from genrm_plugin.critique_scorer import CritiqueConfig, CritiqueScorer

        sampling = self.judge
        config = CritiqueConfig(k=k, temperature=sampling.temperature if k > 1 else 0.0, top_p=sampling.top_p,
                                max_new_tokens=sampling.max_new_tokens, seed=self.seed)
        engine = self._engine(checkpoint)
        return CritiqueScorer.load(checkpoint, kind, critic, config, self.judge.prompt(), device=engine.device,
                                   backend=engine.backend, vllm=self.vllm, batch_size=engine.batch_size, dtype=engine.dtype)

    def _bt_scorer(self, checkpoint: str | Path):
        from genrm_plugin.backends.factory import default_device
        from genrm_plugin.bt_scorer import BTScorer

        return BTScorer.from_pretrained(checkpoint, device=self.recipe.device or default_device())

    def evaluate(self, checkpoint: str | Path, iteration: int, kind: str = "judge", mode: str | None = None,
                 critic: str | None = None) -> dict | None:
        """Held-out accuracy of ``checkpoint`` through ``genrm eval preference``'s evaluation.

        The evaluation's run folder is ``iter-<iteration>/eval`` (records, summary, table, plot);
        CoT judges are scored at maj@1, 2, ... ``eval_k`` (default: the judge's ``k``; the stats
        report the largest). A critique reward model (``kind`` ``cloud`` / ``synthetic-critique-rm``,
        ``critic``: the synthetic RM's critic) averages ``eval_k`` critiques per response (default 1,
        greedy). ``None`` without held-out data.
        """
        source = self.eval_source
        if source is None:
            return None
        if not distributed.is_main():  # rank 0 evaluates; the others wait at the run folder's next barrier
            return None
        from genrm_plugin.evals.preference import PreferenceEvalConfig, evaluate_preferences
        from genrm_plugin.evals.selection import describe_judge

        k = self.recipe.eval_k or (1 if kind in CRITIQUE_KINDS else self.judge.k)  # votes, or critiques per response
        config = PreferenceEvalConfig(
            data=source[0], split=source[1], limit=source[2], order_seed=self.seed,
            output_dir=str(self.run.evaluation_dir(iteration)), judge_kind=kind if kind in REWARD_KINDS else "genrm",
            save_rationales=self.recipe.eval_save_rationales and kind != "bt" and (mode == "cot" or kind in CRITIQUE_KINDS),
        )
        if kind == "bt":
            info = {"model": str(checkpoint), "judge": "BTScorer"}
            summary = evaluate_preferences(config, scorer=self._bt_scorer(checkpoint), judge_info=info)
        elif kind in CRITIQUE_KINDS:
            scorer = self._critique_scorer(checkpoint, kind, critic, k)
            info = {"model": str(checkpoint), "judge": "CritiqueScorer", "critic": critic, "critique": asdict(scorer.config)}
            summary = evaluate_preferences(config, scorer=scorer, judge_info=info)
            release_backend(scorer.critic)
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
            "k": k if kind in REWARD_KINDS else int(top),
            "n": summary["pairs"],
        }
