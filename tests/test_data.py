"""Preference loaders: every accepted shape, every file kind, and clear errors on malformed rows."""

from __future__ import annotations

import gzip
import json
from collections import Counter

import pytest

from genrm_plugin.conversation import prompt_text
from genrm_plugin.data import (
    PreferenceDataError,
    PreferencePair,
    load_preferences,
    to_judge_examples,
)

PAIR_ROWS = [
    {"prompt": "What is 2+3?", "chosen": "5", "rejected": "6"},
    {"prompt": "What is 7+1?", "chosen": "8", "rejected": "9", "id": 17},
]
REWARDBENCH_ROWS = [
    {"prompt": "Say hi.", "chosen": "Hi!", "rejected": "No.", "subset": "alpacaeval-easy", "id": "a1",
     "chosen_model": "m1", "rejected_model": "m2"},
    {"prompt": "Refuse harm.", "chosen": "I can't help.", "rejected": "Sure...", "subset": "xstest", "id": "a2",
     "chosen_model": "m1", "rejected_model": "m2"},
]
HH_ROWS = [
    {
        "chosen": "\n\nHuman: What is the capital of France?\n\nAssistant: Paris.",
        "rejected": "\n\nHuman: What is the capital of France?\n\nAssistant: London.",
    },
    {
        "chosen": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Tell me a joke.\n\nAssistant: Why did the chicken cross the road?",
        "rejected": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Tell me a joke.\n\nAssistant: No.",
    },
]
CONVERSATIONAL_EXPLICIT = [
    {
        "prompt": [{"role": "user", "content": "Name a prime."}],
        "chosen": [{"role": "assistant", "content": "7"}],
        "rejected": [{"role": "assistant", "content": "8"}],
    }
]
CONVERSATIONAL_IMPLICIT = [
    {
        "chosen": [{"role": "user", "content": "Name a prime."}, {"role": "assistant", "content": "7"}],
        "rejected": [{"role": "user", "content": "Name a prime."}, {"role": "assistant", "content": "8"}],
    }
]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_prompt_chosen_rejected_jsonl(tmp_path):
    pairs = load_preferences(str(write_jsonl(tmp_path / "p.jsonl", PAIR_ROWS)))
    assert pairs == [
        PreferencePair("What is 2+3?", "5", "6", None, None),
        PreferencePair("What is 7+1?", "8", "9", None, "17"),
    ]


def test_rewardbench_rows_keep_subset_and_id_and_filter(tmp_path):
    path = write_jsonl(tmp_path / "rb.jsonl", REWARDBENCH_ROWS)
    pairs = load_preferences(str(path))
    assert [(p.subset, p.id) for p in pairs] == [("alpacaeval-easy", "a1"), ("xstest", "a2")]
    only = load_preferences(str(path), subsets=["xstest"])
    assert [p.id for p in only] == ["a2"]


def test_hh_transcripts_split_at_shared_prefix(tmp_path):
    pairs = load_preferences(str(write_jsonl(tmp_path / "hh.jsonl", HH_ROWS)))
    assert pairs[0] == PreferencePair("What is the capital of France?", "Paris.", "London.")
    assert pairs[1].prompt == "User: Hi\n\nAssistant: Hello!\n\nUser: Tell me a joke."
    assert pairs[1].chosen == "Why did the chicken cross the road?"
    assert pairs[1].rejected == "No."


def test_conversational_explicit_and_implicit_prompt(tmp_path):
    explicit = load_preferences(str(write_jsonl(tmp_path / "c1.jsonl", CONVERSATIONAL_EXPLICIT)))
    implicit = load_preferences(str(write_jsonl(tmp_path / "c2.jsonl", CONVERSATIONAL_IMPLICIT)))
    assert explicit == implicit == [PreferencePair("Name a prime.", "7", "8")]


def test_prompt_text():
    assert prompt_text([{"role": "user", "content": "hi"}], "p") == "hi"
    multi = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    assert prompt_text(multi, "p") == "System: Be brief.\n\nUser: hi"


def test_json_gz_parquet_and_saved_dataset_read_the_same(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import Dataset, DatasetDict

    expected = load_preferences(str(write_jsonl(tmp_path / "rb.jsonl", REWARDBENCH_ROWS)))
    (tmp_path / "rb.json").write_text(json.dumps(REWARDBENCH_ROWS))
    (tmp_path / "rb_wrapped.json").write_text(json.dumps({"rows": REWARDBENCH_ROWS}))
    with gzip.open(tmp_path / "rb.jsonl.gz", "wt") as f:
        f.write("".join(json.dumps(r) + "\n" for r in REWARDBENCH_ROWS))
    pq.write_table(pa.Table.from_pylist(REWARDBENCH_ROWS), tmp_path / "rb.parquet")
    (tmp_path / "rb.parquet.gz").write_bytes(gzip.compress((tmp_path / "rb.parquet").read_bytes()))
    DatasetDict({"test": Dataset.from_list(REWARDBENCH_ROWS)}).save_to_disk(str(tmp_path / "saved"))
    (tmp_path / "one.json").write_text(json.dumps(CONVERSATIONAL_IMPLICIT[0]))
    assert load_preferences(str(tmp_path / "one.json")) == [PreferencePair("Name a prime.", "7", "8")]
    for name in ("rb.json", "rb_wrapped.json", "rb.jsonl.gz", "rb.parquet", "rb.parquet.gz"):
        assert load_preferences(str(tmp_path / name)) == expected, name
    assert load_preferences(str(tmp_path / "saved"), split="test") == expected
    assert load_preferences(str(tmp_path / "saved")) == expected  # the only split
    with pytest.raises(PreferenceDataError, match="no split 'train'"):
        load_preferences(str(tmp_path / "saved"), split="train")


def test_datasets_name_of_a_local_data_dir(tmp_path):
    """A ``datasets`` name: here a local data directory (no Hub access in this world)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    data_dir = tmp_path / "my_prefs" / "data"
    data_dir.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(PAIR_ROWS), data_dir / "train-00000-of-00001.parquet")
    pairs = load_preferences(str(tmp_path / "my_prefs"), split="train")
    assert [p.chosen for p in pairs] == ["5", "8"]


def test_limit_and_column_mapping(tmp_path):
    rows = [{"question": f"q{i}", "good": "yes", "bad": "no"} for i in range(5)]
    path = write_jsonl(tmp_path / "renamed.jsonl", rows)
    pairs = load_preferences(str(path), columns={"question": "prompt", "good": "chosen", "bad": "rejected"}, limit=3)
    assert [p.prompt for p in pairs] == ["q0", "q1", "q2"]


@pytest.mark.parametrize(
    "bad_row, message",
    [
        ({"prompt": "q", "chosen": "a"}, r"line 3: missing field 'rejected'"),
        ({"prompt": "q", "rejected": "a"}, r"line 3: missing field 'chosen'"),
        ({"chosen": "a", "rejected": "b"}, r"line 3: missing field 'prompt'"),
        ({"prompt": "q", "chosen": "a", "rejected": 5}, r"line 3: field 'rejected' must be a string"),
        ({"prompt": "q", "chosen": "", "rejected": "b"}, r"line 3: field 'chosen' is empty"),
        ({"prompt": "q", "chosen": [{"role": "assistant"}], "rejected": "b"}, r"line 3: field 'chosen'\[0\].*'content'"),
        ({"prompt": "q", "chosen": [{"content": "x"}], "rejected": "b"}, r"line 3: field 'chosen'\[0\].*'role'"),
        ({"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "\n\nHuman: c\n\nAssistant: d"},
         r"line 3: .*differ before their last Assistant turn"),
        ({"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "no transcript"}, r"line 3: field 'rejected' is not an HH"),
        ({"prompt": "q", "chosen": "a", "rejected": "b", "subset": 3}, r"line 3: field 'subset' must be a string"),
        (["q", "a", "b"], r"line 3: expected an object"),
    ],
)
def test_malformed_rows_name_row_and_field(tmp_path, bad_row, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(PAIR_ROWS[0]) + "\n\n" + json.dumps(bad_row) + "\n")  # blank line 2
    with pytest.raises(PreferenceDataError, match=message):
        load_preferences(str(path))


def test_malformed_parquet_row_is_named_by_row_number(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [dict(PAIR_ROWS[0]), dict(PAIR_ROWS[0]), {"prompt": "q", "chosen": "a", "rejected": None}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "bad.parquet")
    with pytest.raises(PreferenceDataError, match=r"row 3: missing field 'rejected'"):
        load_preferences(str(tmp_path / "bad.parquet"))


def test_file_level_errors(tmp_path):
    (tmp_path / "broken.jsonl").write_text('{"prompt": "q"\n')
    with pytest.raises(PreferenceDataError, match=r"line 1: not valid JSON"):
        load_preferences(str(tmp_path / "broken.jsonl"))
    (tmp_path / "x.tsv").write_text("a\tb\n")
    with pytest.raises(PreferenceDataError, match="unsupported file type '.tsv'"):
        load_preferences(str(tmp_path / "x.tsv"))
    (tmp_path / "x.csv").write_text("prompt,chosen,rejected\n")  # CSV is read; a header alone holds no rows
    with pytest.raises(PreferenceDataError, match="x.csv: no preference rows"):
        load_preferences(str(tmp_path / "x.csv"))
    with pytest.raises(PreferenceDataError, match="file not found"):
        load_preferences(str(tmp_path / "missing.jsonl"))
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(PreferenceDataError, match="no preference rows"):
        load_preferences(str(tmp_path / "empty.jsonl"))
    with pytest.raises(PreferenceDataError, match="cannot load"):
        load_preferences(str(tmp_path / "no_such_dataset_dir"))


def test_judge_examples_both_orders_balanced():
    pairs = [PreferencePair(f"q{i}", f"good{i}", f"bad{i}", "s", str(i)) for i in range(5)]
    examples = to_judge_examples(pairs, seed=0)
    assert len(examples) == 10
    assert Counter(e.label for e in examples) == {"A": 5, "B": 5}
    for e in examples:
        good = e.answer_a if e.label == "A" else e.answer_b
        bad = e.answer_b if e.label == "A" else e.answer_a
        assert (good, bad) == (f"good{e.pair_index}", f"bad{e.pair_index}")
        assert e.id == str(e.pair_index) and e.subset == "s"
    shuffled = to_judge_examples(pairs, seed=3, shuffle=True)
    assert sorted(map(repr, shuffled)) == sorted(map(repr, examples))
    assert shuffled != examples
    assert shuffled == to_judge_examples(pairs, seed=3, shuffle=True)


def test_judge_examples_one_order_has_balanced_seeded_labels():
    pairs = [PreferencePair(f"q{i}", "g", "b") for i in range(7)]
    one = to_judge_examples(pairs, seed=1, both_orders=False)
    assert [e.pair_index for e in one] == list(range(7))
    assert Counter(e.label for e in one) == {"A": 4, "B": 3}
    assert [e.label for e in one] == [e.label for e in to_judge_examples(pairs, seed=1, both_orders=False)]
    labelings = {tuple(e.label for e in to_judge_examples(pairs, seed=s, both_orders=False)) for s in range(6)}
    assert len(labelings) > 1
