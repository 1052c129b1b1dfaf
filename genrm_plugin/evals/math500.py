"""MATH500 Best-of-N: accuracy vs N for GenRM selection, majority vote, random pick and oracle.

Inputs: the problems (``unique_id``, ``problem``, ``answer``; a local file or a ``datasets`` name
such as ``HuggingFaceH4/MATH-500``) and a candidates file with N solutions per ``unique_id`` (see
:mod:`genrm_plugin.evals.inputs`; ``genrm generate`` writes one).

1. **Grading** (:mod:`~genrm_plugin.evals.grading`): each candidate's final answer is extracted
   under the ``answer_extraction`` policy (``lenient``: the last boxed answer, else math-verify's
   "final answer is" / "Answer:" / last-expression extraction; ``boxed``: the last boxed answer
   only) and checked against ``answer`` with math-verify; an expression copied from the problem
   statement counts only if it is the gold answer as written. Candidates without an answer are
   wrong and counted. The summary reports the policy used and the candidate accuracy under both.
2. **Curves**: for each pool size n in ``n_values`` (default 1, 2, 4, ..., N) and each problem, the
   methods choose from size-n subsets of the pool (every subset when there are few, else
   ``subsamples`` random ones; all methods see the same subsets):

   * ``genrm-<strategy>``: the GenRM's Best-of-N choice (:func:`~genrm_plugin.bon.best_of_n`);
   * ``majority``: self-consistency over final answers (equal answers by math-verify); a tie
     between answer classes scores the expected accuracy of a uniform pick among them; a subset
     with no answer scores 0;
   * ``random``: a uniform pick (its expected accuracy, the share of correct candidates);
   * ``oracle``: pass@n, whether any candidate in the subset is correct.

   A problem's score at n is its mean over subsets; the curve point is the mean over problems with
   a normal-approximation ``ci`` interval over problems, clipped to [0, 100] %.
3. **Run folder**: ``config.json``, ``grades.jsonl``, ``judgments.jsonl`` (every GenRM comparison,
   judged once), ``selections.jsonl``, ``summary.json``, ``table.md``, ``curves.png``. Rerunning
   the same command resumes: graded pools, judgments and selections already written are reused.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from tqdm.auto import tqdm

from genrm_plugin.bon import AGGREGATIONS
from genrm_plugin.evals.grading import ANSWER_EXTRACTION, GradedPool, check_policy, grade_pool
from genrm_plugin.evals.inputs import CandidatePool, EvalInputError, load_candidates, read_table
from genrm_plugin.evals.judgecache import CachedJudge
from genrm_plugin.evals.plots import plot_lines
from genrm_plugin.run_folder import RecordFolder
from genrm_plugin.evals.selection import SelectionTask, checked_strategies, run_selections, run_settings
from genrm_plugin.evals.intervals import draw_subsets, mean_ci, powers_of_two
from genrm_plugin.evals.tables import markdown_table, percent, percent_ci

GRADES = "grades.jsonl"
BASELINES = ("majority", "random", "oracle")


@dataclass
class Math500EvalConfig:
    """Settings of ``genrm eval math500``.

    Fields:
        candidates: JSONL file, one ``{"unique_id", "candidates": [N solutions], "reference"?}`` a line.
        problems: MATH500 problems: a local ``.jsonl``/``.json``/``.parquet`` file or a ``datasets`` name.
        problems_split: split to read when ``problems`` is a ``datasets`` name.
        output_dir: the run folder (resumed if it holds a run with the same settings).
        strategies: GenRM Best-of-N strategies (``reference``, ``knockout``, ``round_robin``);
            ``reference`` needs a ``reference`` answer in every candidates row. ``none``: baselines only.
        aggregation: how ``round_robin`` aggregates (``copeland`` or ``bradley_terry``).
        n_values: pool sizes of the curves (default: 1, 2, 4, ..., N).
        n: use the first ``n`` candidates of every pool (when pools differ in size).
        limit: evaluate only the first ``limit`` pools of the candidates file.
        subsamples: subsets averaged per pool size (all subsets when there are at most this many).
        subsample_seed: seed of the subset draws and of the selection tie-breaks.
        chunk_size: selections per judge batch (a killed run loses at most one chunk).
        ci: confidence level of the intervals.
        grading_timeout: math-verify timeout in seconds (main thread only; off it, no timeout).
        answer_extraction: how a candidate's final answer is found: ``lenient`` (default: the last
            ``\\boxed{}``, else math-verify's "final answer is" / "Answer:" extraction, else the last
            expression) or ``boxed`` (the last ``\\boxed{}`` only; a candidate without one is wrong).
        overwrite: start over in an existing run folder.
    """

    candidates: str = ""
    problems: str = "HuggingFaceH4/MATH-500"
    problems_split: str = "test"
    output_dir: str = "runs/math500"
    strategies: list[str] = field(default_factory=lambda: ["knockout", "round_robin"])
    aggregation: str = field(default="copeland", metadata={"choices": AGGREGATIONS})
    n_values: list[int] = field(default_factory=list)
    n: int | None = None
    limit: int | None = None
    subsamples: int = 8
    subsample_seed: int = 0
    chunk_size: int = 64
    ci: float = 0.95
    grading_timeout: int = 5
    answer_extraction: str = field(default="lenient", metadata={"choices": ANSWER_EXTRACTION})
    overwrite: bool = False

    def __post_init__(self) -> None:
        self.strategies = checked_strategies("Math500EvalConfig", self.strategies, self.aggregation)
        check_policy(self.answer_extraction, "Math500EvalConfig.answer_extraction (--answer_extraction)")
        if self.subsamples < 1 or self.chunk_size < 1:
            raise ValueError("Math500EvalConfig.subsamples and chunk_size must be >= 1")


def load_problems(source: str, split: str | None = "test") -> dict[str, dict[str, Any]]:
    """MATH500 problems keyed by ``unique_id`` (each with string ``problem`` and ``answer``)."""
    return read_table(source, "unique_id", ("problem", "answer"), split=split, what="MATH500 problems (--problems)")


def evaluate_math500(config: Math500EvalConfig, judge: Any = None, judge_info: dict | None = None) -> dict[str, Any]:
    """Run the evaluation (see the module docstring) and return the summary.

    ``judge`` is anything :func:`~genrm_plugin.bon.best_of_n` accepts (a
    :class:`~genrm_plugin.judge.GenerativeJudge`); it may be ``None`` when ``strategies`` is empty.
    ``judge_info`` identifies the judge in the run folder's config (default: its class and config).
    """
    if not config.candidates:
        raise EvalInputError("no candidates file given (--candidates FILE.jsonl)")
    if config.strategies and judge is None:
        raise ValueError(f"strategies {config.strategies} need a judge")
    problems = load_problems(config.problems, config.problems_split)
    pools = load_candidates(
        config.candidates, "unique_id", problems, n=config.n, need_reference="reference" in config.strategies
    )[: config.limit]
    pool_size = len(pools[0].candidates)
    n_values = sorted(set(config.n_values)) or powers_of_two(pool_size)
    if n_values[0] < 1 or n_values[-1] > pool_size:
        raise EvalInputError(f"n_values {n_values} must lie in 1..{pool_size} (the pool size N)")
    folder = RecordFolder(config.output_dir, run_settings(config, judge, judge_info), overwrite=config.overwrite)

    grades = _grade(folder, pools, problems, config)
    subsets = {
        (p.id, n): draw_subsets(pool_size, n, config.subsamples, config.subsample_seed, p.id) for p in pools for n in n_values
    }
    scores: dict[str, dict[tuple[str, int], list[float]]] = {m: {} for m in BASELINES}
    for (uid, n), subs in subsets.items():
        g = grades[uid]
        scores["majority"][uid, n] = [_majority(g, s) for s in subs]
        scores["random"][uid, n] = [sum(g.correct[i] for i in s) / n for s in subs]
        scores["oracle"][uid, n] = [float(any(g.correct[i] for i in s)) for s in subs]

    cached = CachedJudge(judge, folder) if config.strategies else None
    for strategy in config.strategies:
        scores[f"genrm-{strategy}"] = _genrm_scores(cached, folder, strategy, pools, problems, grades, subsets, config)

    summary = _summary(config, pools, grades, n_values, scores, cached)
    folder.write_report(summary, _table(summary))
    plot_lines(
        folder.file("curves.png"),
        n_values,
        {m: [summary["curves"][m][str(n)]["accuracy"] for n in n_values] for m in summary["curves"]},
        title=f"MATH500 Best-of-N ({len(pools)} problems)",
        xlabel="N (candidates per problem)",
        ylabel="accuracy (%)",
        bands={
            m: ([c[str(n)]["low"] for n in n_values], [c[str(n)]["high"] for n in n_values])
            for m, c in summary["curves"].items()
        },
        log2_x=True,
    )
    return summary


def _grade(folder: RecordFolder, pools: list[CandidatePool], problems: dict, config: Math500EvalConfig) -> dict[str, GradedPool]:
    done = {r.pop("unique_id"): GradedPool(**r) for r in folder.records(GRADES)}
    todo = [p for p in pools if p.id not in done]
    for pool in tqdm(todo, desc="grading (math-verify)", unit="problem", disable=not todo):
        problem = problems[pool.id]
        graded = grade_pool(problem["answer"], pool.candidates, config.grading_timeout, config.answer_extraction,
                            problem["problem"])
        done[pool.id] = graded
        folder.append(GRADES, [{"unique_id": pool.id, **asdict(graded)}])
    return {p.id: done[p.id] for p in pools}


def _majority(g: GradedPool, subset: tuple[int, ...]) -> float:
    counts: dict[int, int] = {}
    first: dict[int, int] = {}
    for i in subset:
        c = g.classes[i]
        if c is not None:
            counts[c] = counts.get(c, 0) + 1
            first.setdefault(c, i)
    if not counts:
        return 0.0
    top = [c for c, k in counts.items() if k == max(counts.values())]
    return sum(g.correct[first[c]] for c in top) / len(top)


def _genrm_scores(judge, folder, strategy, pools, problems, grades, subsets, config) -> dict[tuple[str, int], list[float]]:
    by_id = {p.id: p for p in pools}
    tasks: list[SelectionTask] = []
    for (uid, n), subs in subsets.items():
        if n == 1:
            continue  # nothing to choose
        pool = by_id[uid]
        for s in subs:
            key = f"{uid}|{n}|{','.join(map(str, s))}"
            tasks.append(SelectionTask(key, problems[uid]["problem"], [pool.candidates[i] for i in s], pool.reference))
    chosen = run_selections(
        judge, folder, strategy, tasks, config.chunk_size, seed=config.subsample_seed, aggregation=config.aggregation
    )
    out = {}
    for (uid, n), subs in subsets.items():
        correct = grades[uid].correct
        if n == 1:
            out[uid, n] = [float(correct[s[0]]) for s in subs]
        else:
            out[uid, n] = [float(correct[s[chosen[f"{uid}|{n}|{','.join(map(str, s))}"]["index"]]]) for s in subs]
    return out


def _summary(config, pools, grades, n_values, scores, cached) -> dict[str, Any]:
    curves: dict[str, dict[str, dict[str, float]]] = {}
    for method, by_item in scores.items():
        curves[method] = {}
        for n in n_values:
            per_problem = [sum(v) / len(v) for (uid, k), v in by_item.items() if k == n]
            mean, low, high = mean_ci(per_problem, config.ci)
            curves[method][str(n)] = {"accuracy": mean, "low": low, "high": high}
    all_grades = list(grades.values())
    total = sum(len(g.correct) for g in all_grades)
    by_policy = {p: sum(sum(g.correct_by_policy[p]) for g in all_grades) / total for p in ANSWER_EXTRACTION}
    sources = [s for g in all_grades for s in g.sources]
    return {
        "benchmark": "MATH500",
        "problems": len(pools),
        "pool_size": len(pools[0].candidates),
        "n_values": n_values,
        "subsamples": config.subsamples,
        "ci_level": config.ci,
        "grading": {
            "answer_extraction": config.answer_extraction,
            "candidates": total,
            "correct": sum(sum(g.correct) for g in all_grades),
            "no_answer": sum(g.no_answer for g in all_grades),
            "no_boxed_answer": sum(g.no_boxed for g in all_grades),
            "answer_sources": {s: sources.count(s) for s in ("boxed", "answer_phrase", "last_expression")},
            "copied_from_problem": sum(sum(g.copied) for g in all_grades),
            "accuracy_by_policy": by_policy,
            "problems_with_a_correct_candidate": sum(any(g.correct) for g in all_grades),
        },
        "judge": None if cached is None else {"comparisons_judged": cached.misses, "comparisons_reused": cached.hits},
        "curves": curves,
    }


def _table(summary: dict[str, Any]) -> str:
    n_values = summary["n_values"]
    rows = []
    for method, curve in summary["curves"].items():
        rows.append([method] + [percent_ci(curve[str(n)]["accuracy"], curve[str(n)]["low"], curve[str(n)]["high"])
                                for n in n_values])
    g = summary["grading"]
    other = " / ".join(f"{p} {percent(a)}%" for p, a in g["accuracy_by_policy"].items())
    note = (
        f"\n\n{summary['problems']} problems, N = {summary['pool_size']}; accuracy % [{int(100 * summary['ci_level'])}% CI]. "
        f"Answer extraction: {g['answer_extraction']}. Candidates: {g['candidates']}, correct "
        f"{percent(g['correct'] / g['candidates'])}% (by policy: {other}), without an answer: {g['no_answer']}, "
        f"without a boxed answer: {g['no_boxed_answer']}, rejected as copied from the problem: {g['copied_from_problem']}."
    )
    return markdown_table(["method"] + [f"N={n}" for n in n_values], rows) + note
