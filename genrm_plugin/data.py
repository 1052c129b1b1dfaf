"""Preference data: load pairs from the common shapes, and turn them into judge examples.

:func:`load_preferences` reads a local file (``.jsonl``, ``.json``, ``.parquet``, ``.csv`` with a
header row; each may be gzipped, e.g. ``pairs.jsonl.gz``), a directory written by
``datasets.Dataset.save_to_disk``, or a ``datasets`` name/directory (``load_dataset(source,
split=...)``; ``name:config`` picks a dataset config, e.g. ``openai/gsm8k:main``), and returns
:class:`PreferencePair` rows; ``columns`` renames source columns first (:func:`parse_columns` reads
the ``source=target`` form the command line uses). Accepted row shapes (anything else is an error naming the row):

* **pairs**: ``prompt``, ``chosen``, ``rejected`` strings (optional ``subset``, ``id``, and
  ``chosen_critique`` / ``rejected_critique``: a critique of each response).
* **RewardBench**: the same fields plus ``subset`` (and ``id``, ``chosen_model``, ...; extra
  fields are ignored).
* **conversational** (TRL style): ``chosen``/``rejected`` as chat messages
  (``[{"role": ..., "content": ...}]``), with ``prompt`` as messages or a string (explicit
  prompt), or without ``prompt`` (implicit prompt: the messages the two conversations share).
* **Anthropic HH**: ``chosen``/``rejected`` transcripts ``"\\n\\nHuman: ...\\n\\nAssistant: ..."``
  without ``prompt``; the shared prefix up to the last ``Assistant:`` turn is the prompt.

Conversations are rendered to text (every pair is plain strings, as judges take them) by the one
rule of :mod:`genrm_plugin.conversation` (the rewards use it too): a prompt that is a single user
message becomes its content; a longer conversation becomes a transcript
``"User: ...\\n\\nAssistant: ...\\n\\nUser: ..."``. A response given as messages becomes the
content of its assistant message(s), joined by blank lines.

:func:`to_judge_examples` turns pairs into :class:`JudgeExample` rows (question, answer A,
answer B, correct label) with balanced labels: by default both orders of every pair.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from genrm_plugin.conversation import ConversationError, prompt_text, response_text

FILE_SUFFIXES = (".jsonl", ".json", ".parquet", ".csv")
CRITIQUE_FIELDS = ("chosen_critique", "rejected_critique")  # optional per-response critiques of a row
_HH_HUMAN = "\n\nHuman:"
_HH_ASSISTANT = "\n\nAssistant:"


class PreferenceDataError(ValueError):
    """A preference row (or file) that cannot be read; the message names the row and field."""


@dataclass
class PreferencePair:
    """One preference: ``chosen`` is better than ``rejected`` as a response to ``prompt``.

    Fields:
        prompt: the question / conversation so far, as text (see :func:`genrm_plugin.conversation.prompt_text`).
        chosen: the preferred response.
        rejected: the dispreferred response.
        subset: category (RewardBench ``subset``), if the row has one.
        id: the row's id (``id`` field, stringified), if any.
        chosen_critique, rejected_critique: a critique of each response (e.g. a teacher's), if the
            row has ``chosen_critique`` / ``rejected_critique`` text fields (critique reward models).
    """

    prompt: str
    chosen: str
    rejected: str
    subset: str | None = None
    id: str | None = None
    chosen_critique: str | None = None
    rejected_critique: str | None = None


@dataclass
class JudgeExample:
    """A judge training/eval item: which of ``answer_a`` / ``answer_b`` answers ``prompt`` better.

    Fields:
        prompt: the question.
        answer_a, answer_b: the two candidates in the order shown to the judge.
        label: the correct verdict, "A" or "B".
        pair_index: index of the source :class:`PreferencePair` (both orders share it).
        subset, id: copied from the pair.
    """

    prompt: str
    answer_a: str
    answer_b: str
    label: str
    pair_index: int
    subset: str | None = None
    id: str | None = None


# -- loading ---------------------------------------------------------------------------------------
def load_preferences(
    source: str | Path,
    split: str | None = None,
    *,
    limit: int | None = None,
    subsets: Sequence[str] | None = None,
    columns: dict[str, str] | None = None,
) -> list[PreferencePair]:
    """Load preference pairs from a local file, a saved dataset directory, or a ``datasets`` name.

    Args:
        source: ``.jsonl``/``.json``/``.parquet``/``.csv`` file (optionally ``.gz``), a directory
            written by ``save_to_disk``, or anything ``datasets.load_dataset`` accepts (name or data
            dir), with ``:config`` appended to pick a dataset config.
        split: split to read from a dataset name / ``DatasetDict`` (default ``train``, or the only
            split); single files have one implicit split and ignore it.
        limit: keep only the first ``limit`` pairs (after ``subsets`` filtering).
        subsets: keep only rows whose ``subset`` is in this list (RewardBench categories).
        columns: rename source columns first, e.g. ``{"question": "prompt", "good": "chosen"}``.

    Raises:
        PreferenceDataError: a row of an unknown shape, a missing/empty/non-text field (the message
            names the row number and the field), an unreadable file, or no rows at all.
    """
    rows, where = read_rows(source, split)
    pairs = []
    for number, row in rows:
        if columns:
            row = {columns.get(k, k): v for k, v in row.items()}
        pair = row_to_pair(row, f"{where} {number}")
        if subsets is not None and pair.subset not in subsets:
            continue
        pairs.append(pair)
        if limit is not None and len(pairs) >= limit:
            break
    if not pairs:
        raise PreferenceDataError(f"{source}: no preference rows" + (f" in subsets {list(subsets)}" if subsets else ""))
    return pairs


def row_to_pair(row: Any, where: str = "row") -> PreferencePair:
    """Convert one row (any accepted shape) to a :class:`PreferencePair`; ``where`` names it in errors."""
    try:
        return _row_to_pair(row, where)
    except ConversationError as e:
        raise PreferenceDataError(str(e)) from None


def _row_to_pair(row: Any, where: str) -> PreferencePair:
    if not isinstance(row, dict):
        raise PreferenceDataError(f"{where}: expected an object with chosen/rejected, got {type(row).__name__}")
    for field_name in ("chosen", "rejected"):
        if row.get(field_name) is None:
            raise PreferenceDataError(f"{where}: missing field {field_name!r} (fields present: {sorted(row)})")
    chosen, rejected, prompt = row["chosen"], row["rejected"], row.get("prompt")
    if prompt is None:
        if isinstance(chosen, str) and isinstance(rejected, str):
            if _HH_ASSISTANT not in chosen:
                raise PreferenceDataError(
                    f"{where}: missing field 'prompt' (chosen/rejected are plain strings, not HH transcripts "
                    f"with '\\n\\nHuman: ...\\n\\nAssistant: ...')"
                )
            prompt, chosen, rejected = _split_hh(chosen, rejected, where)
        elif isinstance(chosen, list) and isinstance(rejected, list):
            prompt, chosen, rejected = _split_implicit(chosen, rejected, where)
        else:
            raise PreferenceDataError(f"{where}: missing field 'prompt'")
    else:
        prompt = prompt_text(prompt, f"{where}: field 'prompt'")
        chosen = _response(chosen, f"{where}: field 'chosen'")
        rejected = _response(rejected, f"{where}: field 'rejected'")
    for field_name, value in (("prompt", prompt), ("chosen", chosen), ("rejected", rejected)):
        if not value.strip():
            raise PreferenceDataError(f"{where}: field {field_name!r} is empty")
    return PreferencePair(
        prompt=prompt,
        chosen=chosen,
        rejected=rejected,
        subset=_optional_text(row.get("subset"), f"{where}: field 'subset'"),
        id=None if row.get("id") is None else str(row["id"]),
        **{name: _optional_text(row.get(name), f"{where}: field {name!r}") for name in CRITIQUE_FIELDS},
    )


def _response(value: Any, where: str) -> str:
    return response_text(value, where, roles=("assistant",))


# -- row shapes ------------------------------------------------------------------------------------
def _split_implicit(chosen: list, rejected: list, where: str) -> tuple[str, str, str]:
    """Conversations sharing a prefix: the shared messages are the prompt, the rest the responses."""
    shared = 0
    while shared < min(len(chosen), len(rejected)) and chosen[shared] == rejected[shared]:
        shared += 1
    if shared == 0:
        raise PreferenceDataError(f"{where}: missing field 'prompt' and chosen/rejected share no prompt messages")
    if shared == len(chosen) or shared == len(rejected):
        raise PreferenceDataError(f"{where}: chosen and rejected conversations have no differing response")
    prompt = prompt_text(chosen[:shared], f"{where}: field 'chosen'")
    return (
        prompt,
        _response(chosen[shared:], f"{where}: field 'chosen'"),
        _response(rejected[shared:], f"{where}: field 'rejected'"),
    )


def _split_hh(chosen: str, rejected: str, where: str) -> tuple[str, str, str]:
    """Anthropic HH: the shared transcript up to the last ``Assistant:`` is the prompt."""
    turns = {}
    for name, text in (("chosen", chosen), ("rejected", rejected)):
        cut = text.rfind(_HH_ASSISTANT)
        if cut < 0:
            raise PreferenceDataError(f"{where}: field {name!r} is not an HH transcript (no '\\n\\nAssistant:' turn)")
        turns[name] = (text[:cut], text[cut + len(_HH_ASSISTANT) :].strip())
    if turns["chosen"][0] != turns["rejected"][0]:
        raise PreferenceDataError(f"{where}: chosen and rejected HH transcripts differ before their last Assistant turn")
    return _hh_prompt(turns["chosen"][0], where), turns["chosen"][1], turns["rejected"][1]


def _hh_prompt(transcript: str, where: str) -> str:
    if not transcript.startswith(_HH_HUMAN):
        raise PreferenceDataError(f"{where}: field 'chosen' HH transcript must start with '\\n\\nHuman:'")
    messages, rest = [], transcript
    while rest:
        role, marker = ("user", _HH_HUMAN) if rest.startswith(_HH_HUMAN) else ("assistant", _HH_ASSISTANT)
        rest = rest[len(marker) :]
        cuts = [i for i in (rest.find(_HH_HUMAN), rest.find(_HH_ASSISTANT)) if i >= 0]
        end = min(cuts) if cuts else len(rest)
        messages.append({"role": role, "content": rest[:end].strip()})
        rest = rest[end:]
    return prompt_text(messages, where)


def _optional_text(value: Any, where: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise PreferenceDataError(f"{where} must be a string, got {type(value).__name__}")


# -- sources ---------------------------------------------------------------------------------------
def read_rows(source: str | Path, split: str | None) -> tuple[Iterable[tuple[int, Any]], str]:
    """(row number, row) pairs and the word that locates a row in errors (``line`` / ``row``)."""
    path = Path(source)
    name = path.name[: -len(".gz")] if path.name.endswith(".gz") else path.name
    if path.is_file():
        suffix = Path(name).suffix
        if suffix not in FILE_SUFFIXES:
            raise PreferenceDataError(f"{source}: unsupported file type {suffix!r} (use {', '.join(FILE_SUFFIXES)}, optionally .gz)")
        raw = _read_bytes(path)
        if suffix == ".parquet":
            return _parquet_rows(raw, source), f"{source}: row"
        text = raw.decode("utf-8")
        if suffix == ".csv":
            return _csv_rows(text), f"{source}: row"
        if suffix == ".jsonl":
            return _jsonl_rows(text, source), f"{source}: line"
        return _json_rows(text, source)
    if path.is_dir() and ((path / "state.json").exists() or (path / "dataset_dict.json").exists()):
        return enumerate(_from_disk(path, split), start=1), f"{source}: row"
    if path.suffix in FILE_SUFFIXES or name != path.name:
        raise PreferenceDataError(f"{source}: file not found")
    return enumerate(_from_hub_or_dir(str(source), split), start=1), f"{source}: row"


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except OSError as e:
            raise PreferenceDataError(f"{path}: not a valid gzip file ({e})") from None
    return raw


def _jsonl_rows(text: str, source: Any) -> Iterable[tuple[int, Any]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as e:
            raise PreferenceDataError(f"{source}: line {number}: not valid JSON ({e.msg})") from None


def _json_rows(text: str, source: Any) -> tuple[Iterable[tuple[int, Any]], str]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        if e.msg == "Extra data":  # JSON Lines saved as .json
            return _jsonl_rows(text, source), f"{source}: line"
        raise PreferenceDataError(f"{source}: not valid JSON ({e.msg} at line {e.lineno})") from None
    if isinstance(data, dict) and "chosen" in data:  # a file holding one row
        data = [data]
    elif isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise PreferenceDataError(f"{source}: expected a JSON list of rows (or an object holding one list)")
        data = lists[0]
    if not isinstance(data, list):
        raise PreferenceDataError(f"{source}: expected a JSON list of rows, got {type(data).__name__}")
    return enumerate(data, start=1), f"{source}: row"


def _csv_rows(text: str) -> Iterable[tuple[int, Any]]:
    """Rows of a CSV file with a header row; empty cells are missing values."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    for number, row in enumerate(reader, start=1):
        yield number, {k: v for k, v in row.items() if k is not None and v not in (None, "")}


def parse_columns(spec: Any, what: str = "columns") -> dict[str, str] | None:
    """A column renaming from ``{"src": "dst"}``, ``["src=dst", ...]`` or ``"src=dst,src2=dst2"``."""
    if spec is None or isinstance(spec, dict):
        return spec
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    mapping = {}
    for item in items:
        source, sep, target = str(item).partition("=")
        if not sep or not source.strip() or not target.strip():
            raise PreferenceDataError(f"{what}: {item!r} is not source=target (e.g. question=prompt)")
        mapping[source.strip()] = target.strip()
    return mapping


def _parquet_rows(raw: bytes, source: Any) -> Iterable[tuple[int, Any]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(raw))
    except Exception as e:  # pyarrow raises several error types for corrupt files
        raise PreferenceDataError(f"{source}: not a readable parquet file ({e})") from None
    return enumerate(table.to_pylist(), start=1)


def _pick_split(dataset: Any, split: str | None, source: Any) -> Any:
    if not hasattr(dataset, "keys"):  # a Dataset, not a DatasetDict
        return dataset
    names = list(dataset.keys())
    if split is None:
        split = "train" if "train" in names or len(names) != 1 else names[0]
    if split not in names:
        raise PreferenceDataError(f"{source}: no split {split!r} (splits: {names})")
    return dataset[split]


def _from_disk(path: Path, split: str | None) -> Any:
    from datasets import load_from_disk

    return _pick_split(load_from_disk(str(path)), split, path)


def _from_hub_or_dir(name: str, split: str | None) -> Any:
    from datasets import load_dataset

    config = None
    if ":" in name and not Path(name).exists():  # name:config
        name, config = name.rsplit(":", 1)
    try:
        dataset = load_dataset(name, config or None, split=split)
    except Exception as e:  # datasets raises many types (offline, not found, bad split)
        raise PreferenceDataError(f"{name}: cannot load as a local file or datasets name ({type(e).__name__}: {e})") from None
    return _pick_split(dataset, split, name)


# -- judge examples --------------------------------------------------------------------------------
def to_judge_examples(
    pairs: Sequence[PreferencePair], seed: int = 0, both_orders: bool = True, shuffle: bool = False
) -> list[JudgeExample]:
    """Judge examples from pairs, with balanced labels.

    ``both_orders``: each pair gives two examples, chosen shown as A (label "A") and as B (label
    "B"), pair by pair. Otherwise each pair gives one example and a seeded permutation puts the
    chosen answer first in exactly ``ceil(n/2)`` of them. ``shuffle`` shuffles the result (seeded).
    """
    rng = random.Random(seed)
    if both_orders:
        labels = [order for _ in pairs for order in ("A", "B")]
        sources = [i for i in range(len(pairs)) for _ in range(2)]
    else:
        flags = [i < (len(pairs) + 1) // 2 for i in range(len(pairs))]
        rng.shuffle(flags)
        labels = ["A" if f else "B" for f in flags]
        sources = list(range(len(pairs)))
    examples = []
    for index, label in zip(sources, labels):
        pair = pairs[index]
        a, b = (pair.chosen, pair.rejected) if label == "A" else (pair.rejected, pair.chosen)
        examples.append(JudgeExample(pair.prompt, a, b, label, index, pair.subset, pair.id))
    if shuffle:
        rng.shuffle(examples)
    return examples
