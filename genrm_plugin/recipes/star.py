"""STaR recipes -- ``star-sft``, ``star-dpo``, ``star-rationalizer``: one sampling loop, three updates.

Each iteration takes a fresh slice of the training pairs (the data is shuffled once with the run
seed and cut into ``iterations`` slices: thirds by default), turns it into judge examples in both
answer orders, and samples ``k`` CoT rationales per example with the current judge (the previous
iteration's checkpoint; the base model first):

* ``star-sft``: keep the distinct rationales whose verdict matches the label; SFT on them.
  With ``rationale_filter`` a kept rationale must also pass that check of its own content
  (where the task can verify it); the ones it drops are counted (``filtered_out``).
* ``star-dpo``: pair a correct-verdict rationale (chosen) with a wrong-verdict one (rejected);
  DPO (TRL ``DPOTrainer``, beta 1.0 by default) against the starting model.
* ``star-rationalizer``: sample with the correct label as a hint (the ``rationalize`` prompt,
  through ``GenerativeJudge.compare(..., hints=...)``); keep those that reach the hinted verdict
  and SFT on them with the plain CoT prompt (no hint), so the judge learns to reach it alone.

Sampling is split into shards of ``shard_size`` examples; shard ``s`` of iteration ``i`` is
sampled with the seed ``shard_seed(seed, i, s)`` and saved atomically, so a killed run resumes
at the first missing shard and produces the same shards as an uninterrupted run -- and as a run
whose shards are split over several ranks (``torchrun`` / ``accelerate launch``).

An iteration that keeps fewer than ``min_train_rows`` rows stops the run with what was sampled
and what to change (:class:`EmptyIterationError`), unless ``allow_empty_iterations``.
"""

from __future__ import annotations

import logging
import random
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable


from genrm_plugin.data import JudgeExample, to_judge_examples
from genrm_plugin.judge import GenerativeJudge
from genrm_plugin.prompts import parse_verdict
from genrm_plugin.recipes.context import RecipeContext, RecipeResult, release_judge, train_stats
from genrm_plugin.recipes.training_rows import judge_prompt
from genrm_plugin.recipes.trainers import train_dpo, train_sft
from genrm_plugin.votes import VoteCount

MODE = "cot"
logger = logging.getLogger(__name__)


def iteration_slices(n_pairs: int, iterations: int, seed: int) -> list[list[int]]:
    """Pair indices of each iteration: one seeded shuffle cut into ``iterations`` near-equal slices."""
    if n_pairs < iterations:
        raise ValueError(f"{iterations} STaR iterations need at least {iterations} training pairs, got {n_pairs}")
    order = list(range(n_pairs))
    random.Random(seed).shuffle(order)
    return [order[i * n_pairs // iterations : (i + 1) * n_pairs // iterations] for i in range(iterations)]


def run(ctx: RecipeContext) -> RecipeResult:
    """Run every STaR iteration (skipping finished ones), each starting from the previous checkpoint."""
    from transformers import AutoTokenizer

    start, all_stats = ctx.base_model, []
    for iteration, indices in enumerate(iteration_slices(len(ctx.pairs), ctx.recipe.iterations, ctx.seed), start=1):
        if not ctx.run.is_done(iteration):
            began = time.perf_counter()
            records = sample_iteration(ctx, iteration, indices, start)
            sample_seconds = time.perf_counter() - began
            rows, row_stats = training_rows(ctx, records, AutoTokenizer.from_pretrained(start))
            check_enough_rows(ctx, iteration, start, records, row_stats)
            train_fn = train_dpo if ctx.recipe.recipe == "star-dpo" else train_sft
            checkpoint, summary = ctx.train_iteration(iteration, start, rows, train_fn)
            stats = {
                "iteration": iteration,
                **sampling_stats(records),
                "too_long": ctx.run.manifest["iterations"].get(str(iteration), {}).get("too_long", 0),
                **row_stats,
                "sample_seconds": sample_seconds,
                **train_stats(summary),
                "eval": ctx.evaluate(checkpoint, iteration, mode=MODE),
            }
            ctx.run.finish_iteration(iteration, stats)
        all_stats.append(ctx.run.stats(iteration))
        start = str(ctx.run.checkpoint(iteration))
    return RecipeResult(Path(start), all_stats, judge_mode=MODE)


# -- sampling --------------------------------------------------------------------------------------
def sample_iteration(ctx: RecipeContext, iteration: int, indices: list[int], model_path: str) -> list[dict]:
    """Sampled records of every shard of ``iteration`` (finished shards are read, not resampled).

    Examples whose judge prompt does not fit the judge's context are left out first
    (:func:`fitting_examples`). Under a multi-process launch the missing shards are sampled in
    rounds of one shard per rank; rank 0 saves every shard of a round before the next starts.
    """
    examples = to_judge_examples([ctx.pairs[i] for i in indices], seed=ctx.seed)
    for example in examples:
        example.pair_index = indices[example.pair_index]  # index into the whole training set
    examples = fitting_examples(ctx, iteration, examples, model_path)
    hinted = ctx.recipe.recipe == "star-rationalizer"
    judges: list[GenerativeJudge] = []  # loaded on the first missing shard

    def sample(shard: list[JudgeExample], seed: int) -> list[dict]:
        if not judges:
            judges.append(ctx.load_judge(model_path, MODE, adaptive="off", swap=False))
        return sample_shard(judges[0], shard, seed, hinted=hinted)

    records = ctx.sample_shards(iteration, examples, sample, desc="sampling")
    release_judge(judges[0] if judges else None)
    return records


def fitting_examples(ctx: RecipeContext, iteration: int, examples: list[JudgeExample], model_path: str) -> list[JudgeExample]:
    """The examples whose judge prompt plus ``max_new_tokens`` fits the judge's positions.

    The rule: a prompt of ``n`` tokens is kept if ``n + max_new_tokens <= max_position_embeddings``
    of the model's config (no limit known: all kept). The others are left out of sampling, with a
    warning naming how many, and counted as ``too_long`` in the iteration's stats.
    """
    from transformers import AutoConfig, AutoTokenizer

    limit = getattr(AutoConfig.from_pretrained(model_path), "max_position_embeddings", None)
    if limit is None or not examples:
        return examples
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    prompts = [judge_prompt(tokenizer, e, MODE, ctx.judge.prompt()) for e in examples]
    lengths = [len(ids) for ids in tokenizer(prompts, add_special_tokens=False)["input_ids"]]
    kept = [e for e, n in zip(examples, lengths) if n + ctx.judge.max_new_tokens <= limit]
    too_long = len(examples) - len(kept)
    if too_long:
        logger.warning(f"iteration {iteration}: {too_long} of {len(examples)} judge prompts plus max_new_tokens="
                       f"{ctx.judge.max_new_tokens} exceed the judge's {limit} positions; they are left out of sampling")
        ctx.run.manifest["iterations"].setdefault(str(iteration), {"shards": {}, "done": False})["too_long"] = too_long
    return kept


def check_enough_rows(ctx: RecipeContext, iteration: int, start: str, records: list[dict], row_stats: dict) -> None:
    """Stop the run when an iteration keeps fewer than ``min_train_rows`` rows (unless allowed)."""
    needed, kept = ctx.recipe.required_train_rows, row_stats["train_rows"]
    if kept >= needed:
        return
    verdicts = [v for r in records for v in r["verdicts"]]
    parsed = sum(v is not None for v in verdicts)
    right = sum(v == r["label"] for r in records for v in r["verdicts"])
    message = (
        f"{ctx.recipe.recipe} iteration {iteration} keeps {kept} training rows (at least {needed} needed): "
        f"{len(verdicts)} rationales sampled for {len(records)} judge items from {start}, {parsed} with a parsed "
        f"verdict, {right} with the right one, {row_stats['filtered_out']} dropped by rationale_filter. Start from a "
        "judge that writes verdicts (a warm start), check --template / --max_new_tokens / --answer_pattern, raise --k "
        "or --temperature, or pass --allow_empty_iterations (or a lower --min_train_rows) to go on"
    )
    if not ctx.recipe.allow_empty_iterations:
        raise EmptyIterationError(message)
    logger.warning(message + " (going on: --allow_empty_iterations)")


class EmptyIterationError(ValueError):
    """A STaR iteration kept (almost) no training rows; the message says what was sampled and what to change."""


def sample_shard(judge: GenerativeJudge, examples: list[JudgeExample], seed: int, hinted: bool = False) -> list[dict]:
    """``k`` rationales per example (one order each, no early stopping), with their parsed verdicts."""
    preferences = judge.compare(
        [e.prompt for e in examples],
        [e.answer_a for e in examples],
        [e.answer_b for e in examples],
        swap=False,
        seed=seed,
        hints=[e.label for e in examples] if hinted else None,
    )
    return [
        {
            "pair": e.pair_index,
            "label": e.label,
            "prompt": e.prompt,
            "answer_a": e.answer_a,
            "answer_b": e.answer_b,
            "hinted": hinted,
            "rationales": p.rationales,
            "verdicts": [parse_verdict(r) for r in p.rationales],
        }
        for e, p in zip(examples, preferences)
    ]


# -- training data ---------------------------------------------------------------------------------
def training_rows(ctx: RecipeContext, records: list[dict], tokenizer: Any) -> tuple[list[dict], dict[str, int]]:
    """SFT rows (prompt, completion) or DPO rows (prompt, chosen, rejected) from sampled records."""
    dpo = ctx.recipe.recipe == "star-dpo"
    passes = ctx.recipe.load_rationale_filter() or (lambda question, answer_a, answer_b, rationale: True)
    rows, kept_examples, filtered_out = [], 0, 0
    for record in records:
        right_verdict = _distinct(r for r, v in zip(record["rationales"], record["verdicts"]) if v == record["label"])
        correct = [r for r in right_verdict if passes(record["prompt"], record["answer_a"], record["answer_b"], r)]
        filtered_out += len(right_verdict) - len(correct)
        if dpo:
            wrong = _distinct(
                r
                for r, v in zip(record["rationales"], record["verdicts"])
                if v != record["label"] and (v is not None or ctx.recipe.dpo_abstain_as_rejected)
            )
            new = [{"chosen": c, "rejected": w} for c, w in zip(correct, wrong)][: ctx.recipe.dpo_pairs_per_example]
        else:
            keep = ctx.recipe.keep_per_example or len(correct)
            new = [{"completion": c} for c in correct[:keep]]
        if new:
            kept_examples += 1
            example = JudgeExample(record["prompt"], record["answer_a"], record["answer_b"], record["label"], record["pair"])
            prompt = judge_prompt(tokenizer, example, MODE, ctx.judge.prompt())  # never the hinted prompt
            rows += [{"prompt": prompt, **row} for row in new]
    stats = {"kept_examples": kept_examples, "train_rows": len(rows), "filtered_out": filtered_out}
    if dpo:
        stats["dpo_pairs"] = len(rows)
    return rows, stats


def _distinct(texts: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(texts))


def sampling_stats(records: list[dict]) -> dict[str, Any]:
    """How the judge did on the slice before training on it."""
    samples = sum(len(r["verdicts"]) for r in records)
    correct = sum(v == r["label"] for r in records for v in r["verdicts"])
    abstained = sum(v is None for r in records for v in r["verdicts"])
    by_pair: dict[int, bool] = defaultdict(bool)
    items_right = majority_right = 0
    for r in records:
        any_right = any(v == r["label"] for v in r["verdicts"])
        by_pair[r["pair"]] |= any_right
        items_right += any_right
        count = VoteCount()
        for v in r["verdicts"]:
            count.add(v)
        majority_right += count.winner() == r["label"]
    return {
        "pairs": len(by_pair),
        "items": len(records),
        "samples": samples,
        "sample_accuracy": correct / samples if samples else None,
        "abstain_rate": abstained / samples if samples else None,
        "frac_pairs_with_correct": sum(by_pair.values()) / len(by_pair) if by_pair else None,
        "frac_items_with_correct": items_right / len(records) if records else None,
        "majority_accuracy": majority_right / len(records) if records else None,
    }
