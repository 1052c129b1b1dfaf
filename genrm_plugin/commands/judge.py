"""``genrm judge``: judge answer pairs from a file or dataset (or built-in examples) and print verdicts.

``--pairs`` takes every source and row shape the preference loader reads
(:func:`genrm_plugin.data.load_preferences`: ``.jsonl``/``.json``/``.parquet``/``.csv`` files, saved
datasets, ``datasets`` names with an optional ``:config``; TRL ``prompt``/``chosen``/``rejected``
rows, conversational and Anthropic HH rows, RewardBench), plus this command's own
``prompt``/``answer_a``/``answer_b`` rows. A labelled pair shows the chosen answer as A, and the
summary reports how often the judge prefers it. The judge takes the same flags as ``genrm eval``
(``BackendConfig``, ``VLLMConfig``, ``OpenAIConfig``, ``JudgeConfig``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

HELP = "judge answer pairs (any preference file or dataset, or prompt/answer_a/answer_b rows) and print preferences"

EXAMPLE_PAIRS = [
    {"prompt": "What is 17 + 25?", "answer_a": "17 + 25 = 42.", "answer_b": "17 + 25 = 32."},
    {"prompt": "Name the capital of France.", "answer_a": "Lyon.", "answer_b": "Paris is the capital of France."},
    {"prompt": "Reverse the word 'judge'.", "answer_a": "egduj", "answer_b": "judge"},
]
UNLABELLED_FIELDS = ("prompt", "answer_a", "answer_b")


@dataclass
class JudgeRunConfig:
    """Inputs and outputs of ``genrm judge``.

    Fields:
        pairs: the pairs to judge: a file (``.jsonl``, ``.json``, ``.parquet``, ``.csv``; optionally
            ``.gz``), a saved dataset or a ``datasets`` name (``name:config`` picks a config). Rows:
            ``prompt``/``answer_a``/``answer_b`` (unlabelled), or any preference shape the loader
            reads (TRL ``prompt``/``chosen``/``rejected``, conversational, Anthropic HH,
            RewardBench; the chosen answer is shown as A). ``None``: 3 built-in examples.
        split: split of a ``datasets`` name or saved ``DatasetDict``.
        columns: rename source columns first, as ``source=target`` items (e.g. ``question=prompt
            good=chosen bad=rejected``).
        limit: judge only the first N pairs.
        output: optional JSONL file for full results (probabilities, votes, rationales).
    """

    pairs: str | None = None
    split: str | None = None
    columns: list[str] | None = None
    limit: int | None = None
    output: str | None = None

    def __post_init__(self) -> None:
        from genrm_plugin.data import parse_columns

        parse_columns(self.columns, "JudgeRunConfig.columns")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"JudgeRunConfig.limit must be >= 1, got {self.limit}")


def read_pairs(config: JudgeRunConfig) -> list[dict[str, Any]]:
    """``{"prompt", "answer_a", "answer_b", "label"}`` rows (``label`` "A", or ``None`` if unlabelled)."""
    from genrm_plugin.data import PreferenceDataError, parse_columns, read_rows, row_to_pair

    if config.pairs is None:
        return [{**pair, "label": None} for pair in EXAMPLE_PAIRS][: config.limit]
    columns = parse_columns(config.columns, "JudgeRunConfig.columns") or {}
    rows, where = read_rows(config.pairs, config.split)
    pairs = []
    for number, row in rows:
        if isinstance(row, dict):
            row = {columns.get(k, k): v for k, v in row.items()}
        here = f"{where} {number}"
        if isinstance(row, dict) and ("answer_a" in row or "answer_b" in row):
            missing = [f for f in UNLABELLED_FIELDS if not isinstance(row.get(f), str)]
            if missing:
                raise PreferenceDataError(f"{here}: missing or non-string field(s) {missing}")
            pairs.append({"prompt": row["prompt"], "answer_a": row["answer_a"], "answer_b": row["answer_b"], "label": None})
        else:
            pair = row_to_pair(row, here)
            pairs.append({"prompt": pair.prompt, "answer_a": pair.chosen, "answer_b": pair.rejected, "label": "A"})
        if config.limit is not None and len(pairs) >= config.limit:
            break
    if not pairs:
        raise PreferenceDataError(f"{config.pairs}: no pairs to judge")
    return pairs


def main(argv: list[str]) -> int:
    from genrm_plugin.commands._judge_stack import build_judge, parse_with_judge_stack, toy_model_notice
    from genrm_plugin.votes import consistency_rate

    run, backend_cfgs, judge_cfg = parse_with_judge_stack((JudgeRunConfig,), argv, "genrm judge")
    pairs = read_pairs(run)
    toy_model_notice(backend_cfgs[0], "genrm judge")
    judge, _ = build_judge(backend_cfgs, judge_cfg)
    prefs = judge.compare([p["prompt"] for p in pairs], [p["answer_a"] for p in pairs], [p["answer_b"] for p in pairs])
    print(f"judge={backend_cfgs[0].model} mode={judge.config.mode} template={judge.config.template} k={judge.config.k} swap={judge.config.swap}")
    print(f"{'#':>3}  {'P(A>B)':>7}  {'winner':>6}  {'A':>3} {'B':>3} {'abst':>4}  prompt")
    for i, (pair, pref) in enumerate(zip(pairs, prefs)):
        p = "  --  " if pref.p_a is None else f"{pref.p_a:.3f}"
        winner = pref.winner or ("abstain" if pref.abstained else "tie")
        print(f"{i:>3}  {p:>7}  {winner:>6}  {pref.votes_a:>3} {pref.votes_b:>3} {pref.abstain:>4}  {pair['prompt'][:50]!r}")
        if pref.rationales:
            print(f"     first rationale: {pref.rationales[0][:70]!r}")
    rate = consistency_rate(prefs)
    print(f"position consistency: {'n/a' if rate is None else f'{rate:.2f}'}")
    labelled = [pref.winner == pair["label"] for pair, pref in zip(pairs, prefs) if pair["label"]]
    if labelled:
        print(f"chosen answer preferred: {sum(labelled)}/{len(labelled)} labelled pairs ({sum(labelled) / len(labelled):.2f})")
    if run.output:
        with open(run.output, "w", encoding="utf-8") as f:
            for pair, pref in zip(pairs, prefs):
                f.write(json.dumps({**pair, **asdict(pref)}, ensure_ascii=False) + "\n")
    return 0
