"""Running GenRM Best-of-N selections for an evaluation, in resumable chunks.

A selection task is one pool (a problem's candidates, or a subset of them) to choose from. Tasks
are split into fixed chunks (same composition on every run, so a resumed run makes the same
choices as an uninterrupted one); each chunk is one :func:`~genrm_plugin.bon.best_of_n` call
through a :class:`~genrm_plugin.evals.judgecache.CachedJudge`, and its choices are appended to the
run folder's ``selections.jsonl`` at once. Chunks whose choices are all there are skipped.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Sequence

from tqdm.auto import tqdm

from genrm_plugin.run_folder import RecordFolder

SELECTIONS = "selections.jsonl"


@dataclass
class SelectionTask:
    """One pool to choose from.

    Fields:
        key: unique name of the task within its strategy (e.g. ``uid|n|subset``).
        prompt: the question shown to the judge.
        candidates: the pool.
        reference: reference answer (``reference`` strategy only).
    """

    key: str
    prompt: str
    candidates: list[str]
    reference: str | None = None


def describe_judge(judge: Any) -> dict[str, Any]:
    """What identifies a judge in a run folder's config (its class and dataclass config)."""
    inner = getattr(judge, "judge", judge)
    config = getattr(inner, "config", None)
    info: dict[str, Any] = {"judge": type(inner).__name__}
    if dataclasses.is_dataclass(config):
        info["judge_config"] = dataclasses.asdict(config)
    backend = getattr(inner, "backend", None)
    if backend is not None:
        info["backend"] = type(backend).__name__
    return info


def checked_strategies(owner: str, strategies: list[str], aggregation: str) -> list[str]:
    """Validated Best-of-N strategy names (``["none"]`` means none: baselines only)."""
    from genrm_plugin.bon import AGGREGATIONS, STRATEGIES

    strategies = [] if list(strategies) == ["none"] else list(strategies)
    bad = [s for s in strategies if s not in STRATEGIES]
    if bad:
        raise ValueError(f"{owner}.strategies: unknown {bad}; choose from {STRATEGIES} (or 'none')")
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"{owner}.aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
    return strategies


def run_settings(config: Any, judge: Any = None, judge_info: dict | None = None) -> dict[str, Any]:
    """A run folder's identity: the evaluation settings (less those that do not change results:
    output_dir, overwrite, chunk_size, limit) and the judge (``judge_info`` or :func:`describe_judge`)."""
    skip = ("output_dir", "overwrite", "chunk_size", "limit")
    settings = {k: v for k, v in dataclasses.asdict(config).items() if k not in skip}
    if judge_info is not None:
        settings.update(judge_info)
    elif judge is not None:
        settings.update(describe_judge(judge))
    return settings


def run_selections(
    judge: Any,
    folder: RecordFolder,
    strategy: str,
    tasks: Sequence[SelectionTask],
    chunk_size: int = 64,
    seed: int = 0,
    aggregation: str = "copeland",
) -> dict[str, dict[str, Any]]:
    """Choose in every task with ``strategy``; returns ``key -> {"index", "scores", "comparisons"}``."""
    from genrm_plugin.bon import best_of_n

    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    done = {r["key"]: r for r in folder.records(SELECTIONS) if r["strategy"] == strategy}
    chunks = [list(tasks[s : s + chunk_size]) for s in range(0, len(tasks), chunk_size)]
    todo = [c for c in chunks if not all(t.key in done for t in c)]
    for chunk in tqdm(todo, desc=f"Best-of-N {strategy}", unit="chunk", disable=not todo):
        results = best_of_n(
            judge,
            [t.prompt for t in chunk],
            [t.candidates for t in chunk],
            strategy=strategy,
            references=[t.reference for t in chunk] if strategy == "reference" else None,
            seed=seed,
            aggregation=aggregation,
        )
        records = [
            {"strategy": strategy, "key": t.key, "index": r.index, "scores": r.scores, "comparisons": r.comparisons}
            for t, r in zip(chunk, results)
        ]
        folder.append(SELECTIONS, records)
        done.update((r["key"], r) for r in records)
    return {t.key: done[t.key] for t in tasks}
