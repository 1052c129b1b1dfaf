"""ArenaHard v0.1 Best-of-N: win rate of the GenRM's choice against the gpt-4-0314 baseline.

1. **Pools**: N candidate answers per question ``uid``, from a candidates file (see
   :mod:`genrm_plugin.evals.inputs`) or from arena-hard model-answer files (the i-th file gives
   every question's i-th candidate).
2. **Selection**: the GenRM picks one answer per question with each Best-of-N strategy
   (:func:`~genrm_plugin.bon.best_of_n`; the ``reference`` strategy compares against the row's
   ``reference`` or, by default, the baseline's answer). The ``best-of-1`` row is each pool's first
   candidate.
3. **Grading** (:mod:`~genrm_plugin.evals.arenahard_grader`): a configurable grading judge compares
   each system's answer with the baseline answer in both orders, with arena-hard's 5-way verdicts.
4. **Win rate**: arena-hard v0.1 (``show_result.py``) turns verdicts into weighted battles
   (``>>`` counts 3 times), fits a Bradley-Terry model by logistic regression with ties as half a
   win, and reports the predicted win rate against the baseline, with a percentile interval over
   100 bootstrap resamples of the battles. Here every system only plays the baseline, so the
   Bradley-Terry maximum-likelihood win rate is the weighted win share ``(W + T/2) / (W + T + L)``
   in closed form (a system that never wins gets exactly 0 where logistic regression gives a
   vanishing number). The bootstrap resamples each system's weighted battle rows with replacement
   (arena-hard resamples all systems' rows together, which leaves each system's count random; the
   intervals agree in distribution). ``ci`` sets the level (0.90; arena-hard prints 2.5-97.5%).

Run folder: ``config.json``, ``judgments.jsonl`` (GenRM comparisons), ``selections.jsonl``,
``grades.jsonl`` (one record per game; an answer chosen by several systems is graded once),
``summary.json``, ``table.md``, ``win_rates.png``. Rerunning resumes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from genrm_plugin.bon import AGGREGATIONS
from genrm_plugin.evals.arenahard_grader import ArenaHardGrader, Grade, battle_outcomes, model_vote
from genrm_plugin.evals.inputs import (
    CandidatePool,
    EvalInputError,
    load_candidates,
    pools_from_model_answers,
    read_table,
)
from genrm_plugin.evals.judgecache import CachedJudge
from genrm_plugin.evals.plots import plot_bars
from genrm_plugin.run_folder import RecordFolder
from genrm_plugin.evals.selection import SelectionTask, checked_strategies, run_selections, run_settings
from genrm_plugin.evals.intervals import item_rng, percentile_interval
from genrm_plugin.evals.tables import markdown_table, percent

GRADES = "grades.jsonl"
VOTE_TYPES = ("much better", "better", "tie", "worse", "much worse")


@dataclass
class ArenaHardEvalConfig:
    """Settings of ``genrm eval arenahard``.

    Fields:
        questions: arena-hard ``question.jsonl`` (``uid``, ``prompt``): a local file or a ``datasets``
            name with those fields.
        baseline: the baseline's model-answer file (v0.1: ``model_answer_gpt-4-0314.jsonl``).
        candidates: JSONL candidates file keyed by ``uid`` (or use ``candidate_answers``).
        candidate_answers: model-answer files forming the pools (the i-th file is candidate i).
        references: model-answer file of the ``reference`` strategy's references (default: the
            baseline), used where a candidates row has no ``reference``.
        output_dir: the run folder (resumed if it holds a run with the same settings).
        overwrite: start over in an existing run folder.
        strategies: GenRM Best-of-N strategies (``reference``, ``knockout``, ``round_robin``;
            ``none``: only the best-of-1 row).
        aggregation: how ``round_robin`` aggregates (``copeland`` or ``bradley_terry``).
        n: use the first ``n`` candidates of every pool.
        limit: evaluate only the first ``limit`` pools.
        chunk_size: questions per judge batch (selection and grading; resume granularity).
        bootstrap_rounds: bootstrap resamples for the interval (arena-hard: 100).
        ci: interval level (the issue's 0.90; arena-hard prints 0.95).
        strong_weight: battles counted for a ``>>`` verdict (arena-hard: 3).
        bootstrap_seed: seed of the bootstrap and of the selection tie-breaks.
    """

    questions: str = ""
    baseline: str = ""
    candidates: str | None = None
    candidate_answers: list[str] = field(default_factory=list)
    references: str | None = None
    output_dir: str = "runs/arenahard"
    strategies: list[str] = field(default_factory=lambda: ["reference", "knockout"])
    aggregation: str = field(default="copeland", metadata={"choices": AGGREGATIONS})
    n: int | None = None
    limit: int | None = None
    chunk_size: int = 32
    bootstrap_rounds: int = 100
    ci: float = 0.90
    strong_weight: int = 3
    bootstrap_seed: int = 42
    overwrite: bool = False

    def __post_init__(self) -> None:
        self.strategies = checked_strategies("ArenaHardEvalConfig", self.strategies, self.aggregation)
        if not 0 < self.ci < 1 or self.bootstrap_rounds < 1 or self.strong_weight < 1 or self.chunk_size < 1:
            raise ValueError("ArenaHardEvalConfig: need 0 < ci < 1 and bootstrap_rounds, strong_weight, chunk_size >= 1")


def load_model_answers(path: str | Path) -> dict[str, str]:
    """``uid -> answer`` from an arena-hard model-answer file: the last message's ``content.answer``
    (arena-hard-auto's format) or its ``content`` string."""
    rows = read_table(path, "uid", (), what="model answers")
    answers = {}
    for uid, row in rows.items():
        messages = row.get("messages")
        content = messages[-1].get("content") if isinstance(messages, list) and messages and isinstance(messages[-1], dict) else None
        answer = content.get("answer") if isinstance(content, dict) else content
        if not isinstance(answer, str):
            raise EvalInputError(f"{path}: uid {uid!r}: no answer text (expected messages[-1].content.answer)")
        answers[uid] = answer
    return answers


def evaluate_arenahard(
    config: ArenaHardEvalConfig, judge: Any, grader: ArenaHardGrader, judge_info: dict | None = None,
    grader_info: dict | None = None,
) -> dict[str, Any]:
    """Run the evaluation (see the module docstring) and return the summary.

    ``judge``: the GenRM (anything :func:`~genrm_plugin.bon.best_of_n` accepts); ``grader``: the
    grading judge. ``judge_info``/``grader_info`` identify them in the run folder's config.
    """
    if not config.questions or not config.baseline:
        raise EvalInputError("questions and baseline files are required (--questions, --baseline)")
    questions = read_table(config.questions, "uid", ("prompt",), what="ArenaHard questions (--questions)")
    baseline = load_model_answers(config.baseline)
    missing = [u for u in questions if u not in baseline]
    if missing:
        raise EvalInputError(f"{config.baseline}: no baseline answer for {len(missing)} question(s), e.g. {missing[:3]}")
    pools = _pools(config, questions)[: config.limit]
    references = load_model_answers(config.references) if config.references else baseline
    settings = run_settings(config, judge, judge_info)
    settings["grader"] = grader_info or {"backend": type(grader.backend).__name__, **asdict(grader.sampling),
                                         "attempts": grader.attempts}
    folder = RecordFolder(config.output_dir, settings, overwrite=config.overwrite)

    chosen = {"best-of-1": {p.id: 0 for p in pools}}
    cached = CachedJudge(judge, folder) if config.strategies else None
    for strategy in config.strategies:
        tasks = [
            SelectionTask(p.id, questions[p.id]["prompt"], p.candidates, p.reference or references.get(p.id))
            for p in pools
        ]
        if strategy == "reference" and any(t.reference is None for t in tasks):
            absent = [t.key for t in tasks if t.reference is None]
            raise EvalInputError(f"{config.references}: no reference answer for {len(absent)} uid(s), e.g. {absent[:3]}")
        picks = run_selections(cached, folder, strategy, tasks, config.chunk_size, config.bootstrap_seed, config.aggregation)
        chosen[f"genrm-{strategy}"] = {uid: r["index"] for uid, r in picks.items()}

    by_id = {p.id: p for p in pools}
    answers = {system: {uid: by_id[uid].candidates[i] for uid, i in picks.items()} for system, picks in chosen.items()}
    grades = _grade(folder, grader, questions, baseline, answers, config.chunk_size)
    summary = _summary(config, pools, answers, grades, baseline, questions, cached)
    folder.write_report(summary, _table(summary))
    systems = summary["systems"]
    plot_bars(
        folder.file("win_rates.png"), list(systems), [s["win_rate"] for s in systems.values()],
        [s["low"] for s in systems.values()], [s["high"] for s in systems.values()],
        title=f"ArenaHard v0.1 vs {Path(config.baseline).stem.replace('model_answer_', '')} ({len(pools)} questions)",
        ylabel=f"win rate (%), {int(100 * config.ci)}% bootstrap CI",
    )
    return summary


def _pools(config: ArenaHardEvalConfig, questions: dict) -> list[CandidatePool]:
    if bool(config.candidates) == bool(config.candidate_answers):
        raise EvalInputError("give exactly one of --candidates FILE.jsonl or --candidate_answers FILE [FILE ...]")
    if config.candidates:
        return load_candidates(config.candidates, "uid", questions, n=config.n)
    answers = [load_model_answers(p) for p in config.candidate_answers]
    for path, by_uid in zip(config.candidate_answers, answers):
        unknown = [u for u in by_uid if u not in questions]
        if unknown:
            raise EvalInputError(f"{path}: {len(unknown)} uid(s) not in the questions, e.g. {unknown[:3]}")
    pools = pools_from_model_answers(config.candidate_answers, answers)
    return [CandidatePool(p.id, p.candidates[: config.n], None, p.where) for p in pools] if config.n else pools


def _game_key(question: str, answer: str, baseline: str, game: int) -> str:
    return hashlib.sha256(json.dumps([question, answer, baseline, game], ensure_ascii=False).encode()).hexdigest()


def _grade(folder, grader, questions, baseline, answers, chunk_size) -> dict[str, Grade]:
    """Grades keyed by game key: game 1 shows the baseline as A, game 2 as B."""
    done = {r["key"]: Grade(r["verdict"], r["judgment"]) for r in folder.records(GRADES)}
    games: dict[str, tuple[str, str, str, int, str]] = {}
    for system_answers in answers.values():
        for uid, answer in system_answers.items():
            q, base = questions[uid]["prompt"], baseline[uid]
            for game, (a, b) in enumerate(((base, answer), (answer, base)), start=1):
                key = _game_key(q, answer, base, game)
                if key not in done:
                    games[key] = (q, a, b, game, uid)
    todo = list(games.items())
    chunks = [todo[s : s + chunk_size] for s in range(0, len(todo), chunk_size)]
    for chunk in tqdm(chunks, desc="ArenaHard grading", unit="chunk", disable=not chunks):
        results = grader.grade([g[0] for _, g in chunk], [g[1] for _, g in chunk], [g[2] for _, g in chunk])
        records = []
        for (key, (_, _, _, game, uid)), grade in zip(chunk, results):
            done[key] = grade
            records.append({"key": key, "uid": uid, "game": game, "verdict": grade.verdict, "judgment": grade.judgment})
        folder.append(GRADES, records)
    return done


def win_rate_with_ci(outcomes: list[float], rounds: int, level: float, seed: int) -> tuple[float, float, float]:
    """(win rate, low, high): mean battle outcome and its percentile bootstrap interval."""
    import numpy as np

    if not outcomes:
        return float("nan"), float("nan"), float("nan")
    values = np.asarray(outcomes, dtype=float)
    rng = np.random.default_rng(seed)
    boot = [values[rng.integers(0, len(values), len(values))].mean() for _ in range(rounds)]
    low, high = percentile_interval(boot, level)
    return float(values.mean()), low, high


def _summary(config, pools, answers, grades, baseline, questions, cached) -> dict[str, Any]:
    systems = {}
    for offset, (system, by_uid) in enumerate(answers.items()):
        outcomes: list[float] = []
        votes = dict.fromkeys(VOTE_TYPES, 0)
        invalid = 0
        for uid, answer in by_uid.items():
            q, base = questions[uid]["prompt"], baseline[uid]
            for game in (1, 2):
                grade = grades[_game_key(q, answer, base, game)]
                model_is_a = game == 2
                outcomes += battle_outcomes(grade.verdict, model_is_a, config.strong_weight)
                vote = model_vote(grade.verdict, model_is_a)
                invalid += vote is None
                if vote is not None:
                    votes[vote] += 1
        rate, low, high = win_rate_with_ci(
            outcomes, config.bootstrap_rounds, config.ci, item_rng(config.bootstrap_seed, system).randrange(2**32)
        )
        systems[system] = {"win_rate": rate, "low": low, "high": high, "battles": len(outcomes), "votes": votes,
                           "invalid_games": invalid}
    return {
        "benchmark": "ArenaHard v0.1",
        "baseline": Path(config.baseline).stem.replace("model_answer_", ""),
        "questions": len(pools),
        "pool_size": len(pools[0].candidates),
        "ci_level": config.ci,
        "bootstrap_rounds": config.bootstrap_rounds,
        "strong_weight": config.strong_weight,
        "judge": None if cached is None else {"comparisons_judged": cached.misses, "comparisons_reused": cached.hits},
        "systems": systems,
    }


def _table(summary: dict[str, Any]) -> str:
    rows = []
    for name, s in summary["systems"].items():
        ci = f"({percent(s['low'] - s['win_rate'])}, +{percent(s['high'] - s['win_rate'])})"
        rows.append([name, percent(s["win_rate"]), ci, *(s["votes"][v] for v in VOTE_TYPES), s["invalid_games"]])
    headers = ["system", "win rate %", f"{int(100 * summary['ci_level'])}% CI", *VOTE_TYPES, "invalid"]
    note = (
        f"\n\n{summary['questions']} questions, N = {summary['pool_size']} candidates, vs {summary['baseline']}; "
        f"both orders graded, '>>' weighted {summary['strong_weight']}x; {summary['bootstrap_rounds']} bootstrap rounds."
    )
    return markdown_table(headers, rows) + note
