"""Evaluation inputs: id-keyed rows (problems, questions, answers) and candidate pools, checked.

Rows come from a local file (``.jsonl``/``.json``/``.parquet``, optionally ``.gz``) or a
``datasets`` name (e.g. ``HuggingFaceH4/MATH-500``), read by the same reader as the preference
loader; a name that cannot be fetched because the Hub is unreachable (or ``HF_HUB_OFFLINE=1``) gets
one line saying so and what to pass instead. Every problem is reported with the file and line/row,
the field, and what to do about it; nothing is dropped silently.

Candidates file (what ``genrm generate`` writes): JSON Lines, one object per problem::

    {"unique_id": "test/algebra/1.json", "candidates": ["solution 1", "solution 2", ...],
     "reference": "optional reference answer for the `reference` Best-of-N strategy"}

The id field is the benchmark's (``unique_id`` for MATH500, ``uid`` for ArenaHard). Every pool must
hold the same number N of candidates (``n`` takes the first ``n`` of each pool instead).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from genrm_plugin.data import PreferenceDataError
from genrm_plugin.data import read_rows as read_source_rows


class EvalInputError(ValueError):
    """An evaluation input that cannot be used; the message names the file, row and field."""


@dataclass
class CandidatePool:
    """The N candidate answers for one problem.

    Fields:
        id: the problem's id.
        candidates: the answers, in file order (the first is the Best-of-1 answer).
        reference: the reference answer for the ``reference`` strategy, if the row has one.
        where: file and line, for messages.
    """

    id: str
    candidates: list[str]
    reference: str | None = None
    where: str = ""


def read_rows(source: str | Path, split: str | None = None, what: str = "rows") -> list[tuple[str, dict[str, Any]]]:
    """(location, row) pairs of ``source``: a local file or a ``datasets`` name; rows must be objects."""
    try:
        rows, where = read_source_rows(source, split)
        rows = [(f"{where} {number}", row) for number, row in rows]
    except PreferenceDataError as e:
        raise EvalInputError(_hub_unreachable(source, what, e) or f"{what}: {e}") from None
    for here, row in rows:
        if not isinstance(row, dict):
            raise EvalInputError(f"{here}: expected a JSON object, got {type(row).__name__}")
    if not rows:
        raise EvalInputError(f"{source}: no {what}")
    return rows


def _hub_unreachable(source: str | Path, what: str, error: Exception) -> str | None:
    """The message for a ``datasets`` name that failed because the Hub cannot be reached, else ``None``."""
    if Path(source).exists() or not any(s in str(error) for s in ("Couldn't reach", "ConnectionError", "OfflineModeIsEnabled")):
        return None
    from huggingface_hub import constants

    why = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else "no connection"
    return (
        f"{what}: {source} is not a local file and the Hugging Face Hub cannot be reached ({why}); "
        "pass a local .jsonl/.json/.parquet file, or run once with the Hub reachable (datasets caches it)"
    )


def read_table(
    source: str | Path, id_field: str, fields: Sequence[str], split: str | None = None, what: str = "rows"
) -> dict[str, dict[str, Any]]:
    """Rows of ``source`` keyed by ``id_field``; each must have string ``fields`` (errors name the row)."""
    table: dict[str, dict[str, Any]] = {}
    for here, row in read_rows(source, split, what):
        for name in (id_field, *fields):
            if not isinstance(row.get(name), str):
                problem = "missing" if row.get(name) is None else f"not a string ({type(row[name]).__name__})"
                raise EvalInputError(f"{here}: field {name!r} is {problem} (fields present: {sorted(row)})")
        key = row[id_field]
        if key in table:
            raise EvalInputError(f"{here}: duplicate {id_field} {key!r}")
        table[key] = row
    return table


def load_candidates(
    path: str | Path,
    id_field: str,
    known_ids: Sequence[str] | set[str],
    n: int | None = None,
    need_reference: bool = False,
) -> list[CandidatePool]:
    """Read and check a candidates file (see the module docstring).

    Args:
        path: the JSONL file.
        id_field: the id field name (``unique_id``, ``uid``).
        known_ids: ids of the benchmark's problems; any other id is an error.
        n: use the first ``n`` candidates of every pool (each must have at least ``n``).
        need_reference: every row must carry a ``reference`` string.
    """
    path = Path(path)
    if not path.is_file():
        raise EvalInputError(f"candidates file {path} not found")
    known = set(known_ids)
    pools: list[CandidatePool] = []
    seen: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}: line {number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise EvalInputError(f"{where}: not valid JSON ({e.msg})") from None
        pools.append(_pool_from_row(row, where, id_field, need_reference))
        pool = pools[-1]
        if pool.id in seen:
            raise EvalInputError(f"{where}: duplicate {id_field} {pool.id!r} (first at {seen[pool.id]})")
        seen[pool.id] = where
    if not pools:
        raise EvalInputError(f"{path}: no candidate rows")
    unknown = [p for p in pools if p.id not in known]
    if unknown:
        shown = ", ".join(f"{p.id!r} ({p.where.rsplit(': ', 1)[-1]})" for p in unknown[:5])
        raise EvalInputError(
            f"{path}: {len(unknown)} {id_field} value(s) not in the benchmark's problems: {shown}"
            + (" ..." if len(unknown) > 5 else "")
        )
    return _equal_sizes(pools, n, path)


def pools_from_model_answers(paths: Sequence[str | Path], answers_by_file: Sequence[dict[str, str]]) -> list[CandidatePool]:
    """Pools whose i-th candidate is the answer in the i-th model-answer file (same ids in each)."""
    ids = list(answers_by_file[0])
    for path, answers in zip(paths, answers_by_file):
        missing = [i for i in ids if i not in answers]
        extra = [i for i in answers if i not in answers_by_file[0]]
        if missing or extra:
            raise EvalInputError(
                f"{path}: answers must cover the same ids as {paths[0]}: "
                f"{len(missing)} missing (e.g. {missing[:3]}), {len(extra)} extra (e.g. {extra[:3]})"
            )
    return [CandidatePool(i, [answers[i] for answers in answers_by_file], None, f"uid {i}") for i in ids]


def _pool_from_row(row: Any, where: str, id_field: str, need_reference: bool) -> CandidatePool:
    if not isinstance(row, dict):
        raise EvalInputError(f"{where}: expected a JSON object, got {type(row).__name__}")
    if not isinstance(row.get(id_field), str):
        raise EvalInputError(f"{where}: field {id_field!r} is missing or not a string (fields present: {sorted(row)})")
    candidates = row.get("candidates")
    if not isinstance(candidates, list) or not candidates:
        raise EvalInputError(f"{where}: field 'candidates' must be a non-empty list of strings")
    for i, text in enumerate(candidates):
        if not isinstance(text, str):
            raise EvalInputError(f"{where}: candidates[{i}] is {type(text).__name__}, not a string")
    reference = row.get("reference")
    if reference is not None and not isinstance(reference, str):
        raise EvalInputError(f"{where}: field 'reference' must be a string")
    if need_reference and reference is None:
        raise EvalInputError(
            f"{where}: field 'reference' is missing; the 'reference' Best-of-N strategy needs one per row "
            "(or choose other strategies)"
        )
    return CandidatePool(row[id_field], list(candidates), reference, where)


def _equal_sizes(pools: list[CandidatePool], n: int | None, path: Path) -> list[CandidatePool]:
    if n is not None:
        short = [p for p in pools if len(p.candidates) < n]
        if short:
            raise EvalInputError(
                f"{path}: n={n} but {len(short)} pool(s) have fewer candidates, e.g. {short[0].where} "
                f"has {len(short[0].candidates)}"
            )
        return [CandidatePool(p.id, p.candidates[:n], p.reference, p.where) for p in pools]
    sizes: dict[int, list[CandidatePool]] = {}
    for p in pools:
        sizes.setdefault(len(p.candidates), []).append(p)
    if len(sizes) > 1:
        common = max(sizes, key=lambda s: len(sizes[s]))
        odd = [p for s, group in sizes.items() if s != common for p in group]
        raise EvalInputError(
            f"{path}: mismatched N: {len(sizes[common])} pools have {common} candidates but {len(odd)} differ, "
            f"e.g. {odd[0].where} has {len(odd[0].candidates)}; pass --n {min(sizes)} to use the first "
            f"{min(sizes)} of every pool"
        )
    return pools
