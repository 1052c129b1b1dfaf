"""Critique reward models -- ``synthetic-critique-rm`` and ``cloud`` -- on TRL trainers.

Both read a critique of each response before scoring it (pointwise: no reference answer). Every
training pair gives two critique items, (prompt, chosen) and (prompt, rejected); the head reads
:func:`~genrm_plugin.prompts.critique_head_text` (the critique request, the critique, EOS) and is
trained with the Bradley-Terry loss on (chosen, rejected) rows through TRL's ``RewardTrainer``.

* ``synthetic-critique-rm`` (Ye et al. 2024): one iteration. A critic (``critic_model``, default
  the base model) writes one critique per item -- or the data's ``chosen_critique`` /
  ``rejected_critique`` columns are used -- then a BT sequence classifier is trained on them
  (:func:`~genrm_plugin.recipes.trainers.train_reward`). The card records the critic, which
  :class:`~genrm_plugin.critique_scorer.CritiqueScorer` loads at inference.
* ``cloud`` (Ankner et al. 2024): three stages, iterations 1-3 of the run folder. (1) SFT of the
  LM on teacher critiques (the data's critique columns, or ones written by ``critic_model``);
  (2) the SFT model writes its own critique of every item; (3) a reward head is trained on them
  beside the LM head (:mod:`~genrm_plugin.recipes.cloud_trainer`: BT loss on the self-critiques +
  ``cloud_lm_coef`` x the NLL of stage 1's teacher critiques). The final folder is a causal LM + ``reward_head.safetensors``.

Critiques are sampled in resumable shards (:meth:`RecipeContext.sample_shards`, the STaR
machinery: shard seeds, atomic shard files), with the judge's sampling settings (``temperature``,
``top_p``, ``max_new_tokens``; no stop strings) and prompt settings (``template``,
``answer_pattern``) on the ``sample_backend``. A finished stage is never redone; a killed run
resumes at the first missing shard.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from pathlib import Path
from typing import Any

from genrm_plugin.data import PreferencePair
from genrm_plugin.prompts import critique_head_text, critique_messages
from genrm_plugin.recipes.cloud_trainer import train_cloud_reward
from genrm_plugin.recipes.context import RecipeContext, RecipeResult, release_backend, train_stats
from genrm_plugin.recipes.trainers import train_reward, train_sft

SIDES = ("chosen", "rejected")
STAGES = {1: "critique-sft", 2: "self-critiques", 3: "reward-head"}  # cloud's iterations


def run(ctx: RecipeContext) -> RecipeResult:
    """Run ``synthetic-critique-rm`` or ``cloud`` (``ctx.recipe.recipe``), skipping finished stages."""
    return run_cloud(ctx) if ctx.recipe.recipe == "cloud" else run_synthetic(ctx)


def run_synthetic(ctx: RecipeContext) -> RecipeResult:
    """Critiques by the critic (or the data), then a BT reward model on (prompt, response, critique)."""
    from transformers import AutoTokenizer

    critic = critic_path(ctx)
    if not ctx.run.is_done(1):
        began = time.perf_counter()
        records, source = data_critiques(ctx.pairs), "data"
        if records is None:
            records, source = sample_critiques(ctx, 1, critic), "sampled"
        sample_seconds = time.perf_counter() - began
        rows = reward_rows(ctx, AutoTokenizer.from_pretrained(ctx.base_model), records)
        checkpoint, summary = ctx.train_iteration(1, ctx.base_model, rows, train_reward)
        stats = {"iteration": 1, "pairs": len(ctx.pairs), **critique_stats(records, source), "sample_seconds": sample_seconds,
                 "train_rows": len(rows), **train_stats(summary),
                 "eval": ctx.evaluate(checkpoint, 1, kind="synthetic-critique-rm", critic=critic)}
        ctx.run.finish_iteration(1, stats)
    return RecipeResult(ctx.run.checkpoint(1), [ctx.run.stats(1)], kind="synthetic-critique-rm", judge_mode=None,
                        usage={"critic": critic})


def run_cloud(ctx: RecipeContext) -> RecipeResult:
    """Critique SFT (stage 1), self-critiques (stage 2), reward head beside the LM head (stage 3)."""
    from transformers import AutoTokenizer

    check_inputs(ctx.recipe, ctx.pairs)
    teacher = data_critiques(ctx.pairs)
    if not ctx.run.is_done(1):
        began = time.perf_counter()
        source, teacher = ("data", teacher) if teacher is not None else ("sampled", sample_critiques(ctx, 1, critic_path(ctx)))
        sample_seconds = time.perf_counter() - began
        rows = sft_rows(ctx, AutoTokenizer.from_pretrained(ctx.base_model), teacher)
        _, summary = ctx.train_iteration(1, ctx.base_model, rows, train_sft)
        ctx.run.finish_iteration(1, {"iteration": 1, "stage": STAGES[1], "pairs": len(ctx.pairs),
                                     **critique_stats(teacher, source), "sample_seconds": sample_seconds,
                                     "train_rows": len(rows), **train_stats(summary)})
    sft_model = str(ctx.run.checkpoint(1))
    if not ctx.run.is_done(2):
        began = time.perf_counter()
        records = sample_critiques(ctx, 2, sft_model)
        ctx.run.finish_iteration(2, {"iteration": 2, "stage": STAGES[2], "pairs": len(ctx.pairs),
                                     **critique_stats(records, "self"), "sample_seconds": time.perf_counter() - began})
    if not ctx.run.is_done(3):
        records = sample_critiques(ctx, 2, sft_model)  # every shard is saved: read back, nothing sampled
        teacher = teacher or sample_critiques(ctx, 1, critic_path(ctx))  # stage 1's targets, read back likewise
        rows = reward_rows(ctx, AutoTokenizer.from_pretrained(sft_model), records, teacher)
        train_fn = functools.partial(train_cloud_reward, critique_lm_coef=ctx.recipe.cloud_lm_coef)
        checkpoint, summary = ctx.train_iteration(3, sft_model, rows, train_fn)
        ctx.run.finish_iteration(3, {"iteration": 3, "stage": STAGES[3], "pairs": len(ctx.pairs), "train_rows": len(rows),
                                     **train_stats(summary), "eval": ctx.evaluate(checkpoint, 3, kind="cloud")})
    return RecipeResult(ctx.run.checkpoint(3), [ctx.run.stats(i) for i in STAGES], kind="cloud", judge_mode=None,
                        usage={"critic": None})


# -- critiques -------------------------------------------------------------------------------------
def check_inputs(recipe: Any, pairs: list[PreferencePair]) -> None:
    """Refuse a run that cannot work before anything is written (called by the runner, then by :func:`run_cloud`)."""
    if recipe.recipe == "cloud" and recipe.critic_model is None and data_critiques(pairs) is None:
        raise ValueError("recipe cloud needs teacher critiques: data columns chosen_critique and rejected_critique "
                         "(rename yours with --data_columns) or --critic_model (a model that writes them)")


def critic_path(ctx: RecipeContext) -> str:
    """The critic: ``critic_model`` (``model`` or unset: the base model), a local folder as an absolute path."""
    name = ctx.recipe.critic_model
    if name is None or name == ctx.recipe.model:
        name = ctx.base_model
    return str(Path(name).resolve()) if Path(name).is_dir() else name


def data_critiques(pairs: list[PreferencePair]) -> list[dict[str, Any]] | None:
    """Critique records from the data's ``chosen_critique`` / ``rejected_critique`` (``None``: no pair has one).

    Every pair must have both once any pair has one (a partial column is an error naming the pair).
    """
    if all(p.chosen_critique is None and p.rejected_critique is None for p in pairs):
        return None
    lacking = next((i for i, p in enumerate(pairs) if p.chosen_critique is None or p.rejected_critique is None), None)
    if lacking is not None:
        raise ValueError(f"training pair {lacking} (id {pairs[lacking].id}) lacks chosen_critique or rejected_critique: "
                         "give both critiques for every pair, or none (then a critic writes them)")
    return [{"pair": i, "side": side, "critique": getattr(p, f"{side}_critique")} for i, p in enumerate(pairs) for side in SIDES]


def sample_critiques(ctx: RecipeContext, iteration: int, critic: str) -> list[dict[str, Any]]:
    """One critique per (pair, side) by ``critic``, in resumable shards of ``iteration``."""
    sampling = dataclasses.replace(ctx.judge.sampling(), stop=[])
    prompt = ctx.judge.prompt()
    engine: list[Any] = []  # loaded on the first missing shard

    def sample(items: list[tuple[int, str]], seed: int) -> list[dict[str, Any]]:
        if not engine:
            engine.append(ctx.load_backend(critic))
        backend = engine[0]
        requests = [backend.render(critique_messages(ctx.pairs[i].prompt, getattr(ctx.pairs[i], side), prompt))
                    for i, side in items]
        outputs = backend.generate(requests, 1, sampling, seed=seed)
        return [{"pair": i, "side": side, "critique": out[0]} for (i, side), out in zip(items, outputs)]

    items = [(i, side) for i in range(len(ctx.pairs)) for side in SIDES]
    records = ctx.sample_shards(iteration, items, sample, desc="critiques")
    release_backend(engine[0] if engine else None)
    return records


def critique_stats(records: list[dict[str, Any]], source: str) -> dict[str, Any]:
    """How many critiques, where from, how long, how many empty."""
    lengths = [len(r["critique"]) for r in records]
    return {"critiques": len(records), "critique_source": source,
            "mean_critique_chars": sum(lengths) / len(lengths) if lengths else None,
            "empty_critiques": sum(not r["critique"].strip() for r in records)}


# -- training rows ---------------------------------------------------------------------------------
def _texts(ctx: RecipeContext, tokenizer: Any, records: list[dict[str, Any]]) -> dict[tuple[int, str], tuple[str, str]]:
    """(pair, side) -> (request, critique text) as the head reads them (:func:`critique_head_text`)."""
    prompt = ctx.judge.prompt()
    return {(r["pair"], r["side"]): critique_head_text(tokenizer, ctx.pairs[r["pair"]].prompt,
                                                       getattr(ctx.pairs[r["pair"]], r["side"]), r["critique"], prompt)
            for r in records}


def reward_rows(ctx: RecipeContext, tokenizer: Any, records: list[dict[str, Any]],
                teacher: list[dict[str, Any]] | None = None) -> list[dict]:
    """BT rows: ``chosen`` / ``rejected`` = request + critique of each response (the prompt lives inside
    each request, so TRL's shared ``prompt`` is empty). With ``teacher`` critiques (``cloud``), also
    ``<side>_teacher`` = request + teacher critique and ``<side>_request_chars``, where it starts."""
    texts = _texts(ctx, tokenizer, records)
    taught = _texts(ctx, tokenizer, teacher) if teacher is not None else {}
    rows = []
    for i in range(len(ctx.pairs)):
        row: dict[str, Any] = {"prompt": ""}
        for side in SIDES:
            request, critique = texts[(i, side)]
            row[side] = request + critique
            if teacher is not None:
                row[f"{side}_teacher"], row[f"{side}_request_chars"] = "".join(taught[(i, side)]), len(request)
        rows.append(row)
    return rows


def sft_rows(ctx: RecipeContext, tokenizer: Any, records: list[dict[str, Any]]) -> list[dict]:
    """Critique SFT rows: the request as the prompt, the critique as the completion (both responses of every pair)."""
    texts = _texts(ctx, tokenizer, records)
    return [{"prompt": request, "completion": critique} for request, critique in texts.values()]
