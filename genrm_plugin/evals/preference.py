"""Preference accuracy of a judge: per subset and overall, maj@K, consistency, abstentions, RewardBench.

Judges:

* a **GenRM in CoT mode** (or any zero-shot LLM judge through :class:`~genrm_plugin.judge.GenerativeJudge`):
  ``k_max = max(ks)`` votes are drawn per answer order *once*; maj@k for every k in ``ks`` is the
  exact expectation over all size-k subsets of those votes (:mod:`~genrm_plugin.evals.majority`);
* a **GenRM in no-CoT mode**: one verdict-token probability per order (only "maj@1");
* a **Bradley-Terry reward model**: any :class:`RewardScorer`, i.e. a callable with TRL's
  reward-function convention ``scorer(prompts=[...], completions=[...]) -> list[float]``, such as
  the recipes' :class:`~genrm_plugin.bt_scorer.BTScorer`; the chosen answer wins when it scores
  higher (a NaN score abstains);
* a **critique reward model** (``cloud``, ``synthetic-critique-rm``:
  :class:`~genrm_plugin.critique_scorer.CritiqueScorer`): each response is critiqued (``k``
  critiques, rewards averaged) and scored; the chosen answer wins when its reward is higher, i.e.
  when ``CritiqueScorer.compare`` gives it ``p > 1/2``; with ``save_rationales`` the critiques are
  kept in the records.

Which answer is shown first is balanced (a seeded permutation puts the chosen answer first in
half the pairs, :func:`~genrm_plugin.data.to_judge_examples`), so a judge that always says
``[[A]]`` scores 50% with or without swap. Scoring follows RewardBench's generative script: 1 when
the chosen answer wins, 1/2 for a tie or a full abstention, 0 when the rejected one wins; the
abstain and tie rates are reported beside. Position consistency is the share of items (with swap)
whose two orders name the same winner.

Rows with RewardBench subset names also get the section aggregation
(:mod:`~genrm_plugin.evals.rewardbench`). Outputs in the run folder: ``records.jsonl`` (votes per
item; a rerun judges only the missing items), ``summary.json``, ``table.md``, ``accuracy_vs_k.png``.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence, runtime_checkable

from tqdm.auto import tqdm

from genrm_plugin.critique_scorer import KINDS as CRITIQUE_KINDS
from genrm_plugin.data import PreferencePair, load_preferences, to_judge_examples
from genrm_plugin.evals.inputs import EvalInputError
from genrm_plugin.evals.plots import plot_lines
from genrm_plugin.evals.rewardbench import section_scores
from genrm_plugin.run_folder import RecordFolder
from genrm_plugin.evals.selection import run_settings
from genrm_plugin.evals.majority import Expected, credit, expected_majority
from genrm_plugin.evals.intervals import powers_of_two
from genrm_plugin.evals.tables import markdown_table, percent
from genrm_plugin.prompts import parse_verdict

RECORDS = "records.jsonl"
JUDGE_KINDS = ("genrm", "bt", *CRITIQUE_KINDS)


@runtime_checkable
class RewardScorer(Protocol):
    """A pointwise reward model: ``scorer(prompts=..., completions=...) -> list[float]`` (higher is better)."""

    def __call__(self, *, prompts: Sequence[str], completions: Sequence[str], **kwargs: Any) -> list[float]: ...


@dataclass
class PreferenceEvalConfig:
    """Settings of ``genrm eval preference``.

    Fields:
        data: preference data: a ``.jsonl``/``.json``/``.parquet`` file or a ``datasets`` name
            (any shape :func:`~genrm_plugin.data.load_preferences` reads).
        split: split of a ``datasets`` name.
        subsets: evaluate only these subsets (RewardBench ``subset`` names); empty: all rows.
        limit: evaluate only the first ``limit`` pairs.
        output_dir: the run folder (resumed if it holds a run with the same settings).
        judge_kind: ``genrm`` (a generative judge, CoT or no-CoT by ``mode``), ``bt`` (a reward
            model), or a critique reward model: ``cloud`` or ``synthetic-critique-rm`` (the judge's
            ``k``, ``temperature``, ``top_p``, ``max_new_tokens`` and ``seed`` then say how it
            writes critiques: ``k`` critiques averaged per response; the backend flags say where
            the critic runs).
        bt_model: path of the Bradley-Terry reward model (``judge_kind=bt``).
        critique_model: a ``genrm train --recipe cloud|synthetic-critique-rm`` ``final/`` folder
            (``judge_kind`` ``cloud`` / ``synthetic-critique-rm``).
        critic: ``synthetic-critique-rm``: the model that writes critiques (``None``: the one its
            card records); ``cloud``: where its critiques are written (``None``: the model itself).
        ks: the K of maj@K (default 1, 2, 4, ... up to the judge's ``k``); all from one set of votes.
        order_seed: seed of the chosen-first permutation.
        chunk_size: pairs per judge call (a killed run loses at most one chunk).
        save_rationales: also keep every CoT rationale in ``records.jsonl`` (``rationales``: one
            list per answer order), e.g. to check what the judge wrote, not only its verdicts; for
            a critique reward model, its critiques (``critiques``: the chosen answer's, then the
            rejected one's).
        overwrite: start over in an existing run folder.
    """

    data: str = ""
    split: str | None = None
    subsets: list[str] = field(default_factory=list)
    limit: int | None = None
    output_dir: str = "runs/preference"
    judge_kind: str = field(default="genrm", metadata={"choices": JUDGE_KINDS})
    bt_model: str | None = None
    critique_model: str | None = None
    critic: str | None = None
    ks: list[int] = field(default_factory=list)
    order_seed: int = 0
    chunk_size: int = 32
    save_rationales: bool = False
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.judge_kind not in JUDGE_KINDS:
            raise ValueError(f"PreferenceEvalConfig.judge_kind must be one of {JUDGE_KINDS}, got {self.judge_kind!r}")
        if self.chunk_size < 1:
            raise ValueError(f"PreferenceEvalConfig.chunk_size must be >= 1, got {self.chunk_size}")


def evaluate_preferences(
    config: PreferenceEvalConfig, judge: Any = None, scorer: Any = None, judge_info: dict | None = None
) -> dict[str, Any]:
    """Evaluate ``judge`` (a :class:`~genrm_plugin.judge.GenerativeJudge`) or ``scorer`` (a
    :class:`RewardScorer`) on ``config.data``; returns the summary."""
    if (judge is None) == (scorer is None):
        raise ValueError("give exactly one of judge= (a generative judge) or scorer= (a reward model)")
    if not config.data:
        raise EvalInputError("no preference data given (--data FILE.jsonl or a datasets name)")
    pairs = load_preferences(config.data, config.split, limit=config.limit, subsets=config.subsets or None)
    kind, k_max, ks = _judge_shape(config, judge)
    folder = RecordFolder(
        config.output_dir, {**run_settings(config, judge, judge_info), "kind": kind, "k_max": k_max},
        overwrite=config.overwrite,
    )
    examples = to_judge_examples(pairs, seed=config.order_seed, both_orders=False)
    chosen_first = [e.label == "A" for e in examples]
    records = _judge_all(folder, pairs, chosen_first, kind, judge, scorer, k_max, config)
    summary = _summary(config, pairs, records, kind, ks)
    folder.write_report(summary, _table(summary))
    plot_lines(
        folder.file("accuracy_vs_k.png"), ks, _curves(summary),
        title=f"Preference accuracy vs K ({len(pairs)} pairs)", xlabel="K (votes per order, majority)",
        ylabel="accuracy (%)", log2_x=len(ks) > 1 and ks == powers_of_two(ks[-1]),
    )
    return summary


def _curves(summary: dict[str, Any]) -> dict[str, list[float | None]]:
    """Accuracy-vs-K lines: overall, plus RewardBench sections (or up to 8 subsets)."""
    ks = [str(k) for k in summary["ks"]]
    curves = {"overall": [summary["overall"]["accuracy"][k] for k in ks]}
    if "rewardbench" in summary:
        for name in ("Chat", "Chat Hard", "Safety", "Reasoning"):
            if name in summary["rewardbench"][ks[-1]]:
                curves[name] = [summary["rewardbench"][k][name] for k in ks]
    elif len(summary["subsets"]) <= 8:
        curves.update({name: [g["accuracy"][k] for k in ks] for name, g in summary["subsets"].items()})
    return curves


def _judge_shape(config: PreferenceEvalConfig, judge: Any) -> tuple[str, int, list[int]]:
    """(record kind, votes drawn per order, the K values reported)."""
    if judge is None:
        return "scores", 1, [1]
    cfg = judge.config
    if cfg.mode == "no_cot":
        if config.ks and config.ks != [1]:
            raise ValueError(f"ks {config.ks}: a no-CoT judge gives one probability per order (only K=1)")
        return "probability", 1, [1]
    if cfg.adaptive != "off":
        raise ValueError(f"maj@K needs all K votes of every item: set adaptive=off (got adaptive={cfg.adaptive!r})")
    ks = sorted(set(config.ks)) or powers_of_two(cfg.k)
    if ks[0] < 1:
        raise ValueError(f"ks must be >= 1, got {ks}")
    return "votes", max(ks), ks


def _pair_hash(pair: PreferencePair) -> str:
    return hashlib.sha256(json.dumps([pair.prompt, pair.chosen, pair.rejected]).encode()).hexdigest()[:16]


def _judge_all(folder, pairs, chosen_first, kind, judge, scorer, k_max, config) -> list[dict[str, Any]]:
    done: dict[int, dict[str, Any]] = {}
    for r in folder.records(RECORDS):
        i = r["index"]
        if i >= len(pairs) or r["pair_hash"] != _pair_hash(pairs[i]):
            raise EvalInputError(
                f"{folder.file(RECORDS)}: record for pair {i} does not match the data any more; "
                "the data changed since this run started (use --overwrite or another output_dir)"
            )
        done[i] = r
    todo = [i for i in range(len(pairs)) if i not in done]
    size = config.chunk_size
    chunks = [todo[s : s + size] for s in range(0, len(todo), size)]
    for chunk in tqdm(chunks, desc="judging pairs", unit="chunk", disable=not chunks):
        new = _judge_chunk(
            [pairs[i] for i in chunk], [chosen_first[i] for i in chunk], kind, judge, scorer, k_max, config.save_rationales
        )
        records = [
            {"index": i, "id": pairs[i].id, "subset": pairs[i].subset, "pair_hash": _pair_hash(pairs[i]),
             "chosen_first": chosen_first[i], **r}
            for i, r in zip(chunk, new)
        ]
        folder.append(RECORDS, records)
        done.update((r["index"], r) for r in records)
    return [done[i] for i in range(len(pairs))]


def _judge_chunk(pairs, chosen_first, kind, judge, scorer, k_max, save_rationales=False) -> list[dict[str, Any]]:
    first = [p.chosen if c else p.rejected for p, c in zip(pairs, chosen_first)]
    second = [p.rejected if c else p.chosen for p, c in zip(pairs, chosen_first)]
    prompts = [p.prompt for p in pairs]
    if kind == "scores" and getattr(scorer, "score_critiqued", None) is not None:  # a critique reward model
        return _critiqued_records(scorer, prompts, pairs, save_rationales)
    if kind == "scores":
        scores = scorer(prompts=prompts + prompts, completions=[p.chosen for p in pairs] + [p.rejected for p in pairs])
        if len(scores) != 2 * len(pairs):
            raise ValueError(f"the scorer returned {len(scores)} scores for {2 * len(pairs)} completions")
        return [{"scores": [float(scores[i]), float(scores[len(pairs) + i])]} for i in range(len(pairs))]
    prefs = judge.compare(prompts, first, second, k=k_max) if kind == "votes" else judge.compare(prompts, first, second)
    if kind == "probability":
        return [{"p_by_order": list(p.p_by_order)} for p in prefs]
    out = []
    for pref in prefs:
        labels = "".join(parse_verdict(r) or "-" for r in pref.rationales)
        if len(labels) not in (k_max, 2 * k_max):
            raise ValueError(f"expected {k_max} votes per order from the judge, got {len(labels)} in all")
        record = {"votes": [labels[i : i + k_max] for i in range(0, len(labels), k_max)]}
        if save_rationales:
            record["rationales"] = [list(pref.rationales[i : i + k_max]) for i in range(0, len(labels), k_max)]
        out.append(record)
    return out


def _critiqued_records(scorer, prompts, pairs, save_rationales) -> list[dict[str, Any]]:
    """Both answers of each pair critiqued and scored (the rewards ``compare`` turns into ``p``)."""
    n = len(pairs)
    scored = scorer.score_critiqued(prompts + prompts, [p.chosen for p in pairs] + [p.rejected for p in pairs])
    if len(scored) != 2 * n:
        raise ValueError(f"the critique scorer returned {len(scored)} scores for {2 * n} completions")
    records = []
    for chosen, rejected in zip(scored[:n], scored[n:]):
        record: dict[str, Any] = {"scores": [float(chosen.reward), float(rejected.reward)]}
        if save_rationales:
            record["critiques"] = [list(chosen.critiques), list(rejected.critiques)]
        records.append(record)
    return records


def _expected(record: dict[str, Any], kind: str, k: int) -> Expected:
    """The record's expected outcome at maj@k (exact; see :mod:`~genrm_plugin.evals.majority`)."""
    chosen_first = record["chosen_first"]
    if kind == "scores":
        chosen, rejected = record["scores"]
        if math.isnan(chosen) or math.isnan(rejected):  # an unscorable pair abstains
            return Expected(credit(None), 1.0, 0.0, 0.0, 0.0)
        return Expected(credit(0.5 if chosen == rejected else float(chosen > rejected)), 0.0, float(chosen == rejected), 0.0, 0.0)
    if kind == "probability":
        p_chosen = [None if p is None else (p if chosen_first else 1 - p) for p in record["p_by_order"]]
        known = [p for p in p_chosen if p is not None]
        p = sum(known) / len(known) if known else None
        sides = [None if q is None or q == 0.5 else q > 0.5 for q in p_chosen]
        defined = len(sides) == 2 and None not in sides
        return Expected(credit(p), float(p is None), float(p == 0.5), float(defined and sides[0] == sides[1]), float(defined))
    counts = []
    for order, labels in enumerate(record["votes"]):
        chosen_label = "A" if chosen_first == (order == 0) else "B"  # the second order shows them swapped
        chosen = labels.count(chosen_label)
        decided = labels.count("A") + labels.count("B")
        counts.append((chosen, decided - chosen, len(labels) - decided))
    return expected_majority(counts[0], counts[1] if len(counts) == 2 else None, k)


def _metrics(records: Sequence[dict[str, Any]], kind: str, k: int) -> dict[str, float | None]:
    outcomes = [_expected(r, kind, k) for r in records]
    n = len(outcomes)
    defined = sum(o.defined for o in outcomes)
    return {
        "accuracy": sum(o.credit for o in outcomes) / n,
        "abstain_rate": sum(o.abstain for o in outcomes) / n,
        "tie_rate": sum(o.tie for o in outcomes) / n,
        "consistency": sum(o.consistent for o in outcomes) / defined if defined else None,
    }


def _group(records, kind, ks) -> dict[str, Any]:
    per_k = {str(k): _metrics(records, kind, k) for k in ks}
    return {
        "n": len(records),
        **{name: {k: m[name] for k, m in per_k.items()} for name in ("accuracy", "consistency", "abstain_rate", "tie_rate")},
    }


def _summary(config, pairs, records, kind, ks) -> dict[str, Any]:
    subsets = sorted({r["subset"] for r in records if r["subset"] is not None})
    by_subset = {s: _group([r for r in records if r["subset"] == s], kind, ks) for s in subsets}
    summary: dict[str, Any] = {
        "pairs": len(pairs),
        "judge_kind": f"{config.judge_kind} (critique reward model)" if config.judge_kind in CRITIQUE_KINDS
        else {"votes": "genrm (CoT votes)", "probability": "genrm (no-CoT)", "scores": "reward model"}[kind],
        "ks": ks,
        "overall": _group(records, kind, ks),
        "subsets": by_subset,
    }
    sections = {str(k): section_scores({s: g["accuracy"][str(k)] for s, g in by_subset.items()}) for k in ks}
    if any(v is not None for v in sections.values()):
        summary["rewardbench"] = sections
    return summary


def _table(summary: dict[str, Any]) -> str:
    ks = [str(k) for k in summary["ks"]]
    top = ks[-1]
    headers = ["group", "pairs"] + [f"acc maj@{k}" for k in ks] + [f"consistency@{top}", f"abstain@{top}"]
    groups = list(summary["subsets"].items()) + [("overall", summary["overall"])]
    rows = [
        [name, g["n"], *(percent(g["accuracy"][k]) for k in ks), percent(g["consistency"][top]), percent(g["abstain_rate"][top])]
        for name, g in groups
    ]
    text = markdown_table(headers, rows)
    if "rewardbench" in summary:
        names = ["Chat", "Chat Hard", "Safety", "Reasoning", "Score"]
        section_rows = [[f"maj@{k}", *(percent(summary["rewardbench"][k].get(n)) for n in names)] for k in ks]
        text += "\n\nRewardBench sections (example-count weighted):\n\n" + markdown_table(["K", *names], section_rows)
        missing = summary["rewardbench"][top]["missing_sections"]
        if missing:
            text += f"\n\nSections without data: {', '.join(missing)} (no overall Score)."
    return text + f"\n\n{summary['pairs']} pairs; judge: {summary['judge_kind']}; accuracy % (ties and abstentions count 1/2)."


@dataclass
class PreferenceEvaluation:
    """A finished preference evaluation, read back from its run folder by :meth:`load` -- how other
    modules (the demo, reports) use an evaluation without knowing its files.

    Fields:
        summary: the evaluation's summary (accuracy per K, consistency, subsets, ...).
        records: one record per pair (its votes, probabilities or scores; rationales when saved).
        kind: the record kind (``votes``: CoT, ``probability``: no-CoT, ``scores``: a reward model).
    """

    summary: dict[str, Any]
    records: list[dict[str, Any]]
    kind: str

    @classmethod
    def load(cls, output_dir: str | Path) -> "PreferenceEvaluation | None":
        """The evaluation written to ``output_dir`` (``None`` if it has not finished)."""
        folder = RecordFolder.open(output_dir)
        summary = folder.summary() if folder is not None else None
        if summary is None:
            return None
        records = sorted(folder.records(RECORDS), key=lambda r: r["index"])
        return cls(summary, records, folder.config["kind"])

    def credits(self, k: int) -> list[float]:
        """Per pair (in data order), the credit at maj@``k``: 1 right, 1/2 tie or abstain, 0 wrong
        (their mean is the reported accuracy)."""
        return [_expected(record, self.kind, k).credit for record in self.records]
