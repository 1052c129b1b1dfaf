"""`genrm judge` on every preference format the loader reads, CSV, column mapping, dataset configs,
and the judge flags `genrm eval` takes (here: an OpenAI-compatible server on 127.0.0.1)."""

import csv
import json

import pytest

from genrm_plugin.cli import main
from genrm_plugin.commands.judge import JudgeRunConfig, read_pairs

TOY_NOTICE = "genrm judge: note: no --model given: judging with the random-weight kit model"
CHEAP = ["--k", "1", "--no_swap", "--max_new_tokens", "4"]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def judge(capsys, *args):
    code = main(["judge", *args, *CHEAP])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured


TRL = [{"prompt": "What is 2+2?", "chosen": "4", "rejected": "5"}, {"prompt": "Capital of France?", "chosen": "Paris", "rejected": "Lyon"}]
CONVERSATIONAL = [{"chosen": [{"role": "user", "content": "Say hi"}, {"role": "assistant", "content": "hi"}],
                   "rejected": [{"role": "user", "content": "Say hi"}, {"role": "assistant", "content": "no"}]}]
HH = [{"chosen": "\n\nHuman: Name a colour.\n\nAssistant: Blue.", "rejected": "\n\nHuman: Name a colour.\n\nAssistant: Seven."}]


def test_judge_reads_a_trl_preference_file_and_reports_the_chosen_rate(tmp_path, capsys):
    pairs = write_jsonl(tmp_path / "trl.jsonl", TRL)
    out = judge(capsys, "--pairs", str(pairs), "--output", str(tmp_path / "o.jsonl"))
    assert "P(A>B)" in out.out and "chosen answer preferred: " in out.out and "/2 labelled pairs" in out.out
    assert out.err.strip() == TOY_NOTICE + " ('toy'), whose verdicts are noise; pass --model PATH_OR_NAME for a real judge"
    rows = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [(r["prompt"], r["answer_a"], r["answer_b"], r["label"]) for r in rows] == [
        ("What is 2+2?", "4", "5", "A"), ("Capital of France?", "Paris", "Lyon", "A")]


@pytest.mark.parametrize(
    "rows, expected",
    [
        (TRL[:1], ("What is 2+2?", "4", "5", "A")),
        (CONVERSATIONAL, ("Say hi", "hi", "no", "A")),
        (HH, ("Name a colour.", "Blue.", "Seven.", "A")),
        ([{"prompt": "q", "answer_a": "x", "answer_b": "y"}], ("q", "x", "y", None)),
    ],
    ids=["trl", "conversational", "hh", "answer_a_b"],
)
def test_read_pairs_knows_every_loader_format(tmp_path, rows, expected):
    path = write_jsonl(tmp_path / "pairs.jsonl", rows)
    (pair,) = read_pairs(JudgeRunConfig(pairs=str(path)))
    assert (pair["prompt"], pair["answer_a"], pair["answer_b"], pair["label"]) == expected


def test_csv_input_with_a_column_mapping(tmp_path, capsys):
    path = tmp_path / "pairs.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["question", "good", "bad"])
        writer.writerow(["Is ice cold?", "Yes, it is, \"very\".", "No"])
        writer.writerow(["2, 4, 6, next?", "8", "7"])
    pairs = read_pairs(JudgeRunConfig(pairs=str(path), columns=["question=prompt", "good=chosen", "bad=rejected"]))
    assert [(p["prompt"], p["answer_a"], p["answer_b"]) for p in pairs] == [
        ("Is ice cold?", 'Yes, it is, "very".', "No"), ("2, 4, 6, next?", "8", "7")]
    from genrm_plugin.data import PreferenceDataError, load_preferences, parse_columns

    mapping = parse_columns("question=prompt, good=chosen,bad=rejected")
    assert mapping == {"question": "prompt", "good": "chosen", "bad": "rejected"} == parse_columns(mapping)
    assert [p.chosen for p in load_preferences(str(path), columns=mapping)] == ['Yes, it is, "very".', "8"]
    with pytest.raises(PreferenceDataError, match="data_columns: 'good' is not source=target"):
        parse_columns(["good"], "data_columns")
    out = judge(capsys, "--pairs", str(path), "--columns", "question=prompt", "good=chosen", "bad=rejected", "--limit", "1")
    assert "1/1 labelled pairs" in out.out or "0/1 labelled pairs" in out.out
    code = main(["judge", "--pairs", str(path), *CHEAP])  # without the mapping: the missing field is named
    assert code == 2 and "pairs.csv: row 1: missing field 'chosen'" in capsys.readouterr().err


def test_dataset_config_name(tmp_path):
    folder = tmp_path / "prefs"
    folder.mkdir()
    (folder / "README.md").write_text(
        "---\nconfigs:\n- config_name: math\n  data_files: math.jsonl\n- config_name: trivia\n  data_files: trivia.jsonl\n---\n"
    )
    write_jsonl(folder / "math.jsonl", TRL[:1])
    write_jsonl(folder / "trivia.jsonl", TRL[1:])
    (pair,) = read_pairs(JudgeRunConfig(pairs=f"{folder}:trivia"))
    assert pair["prompt"] == "Capital of France?"
    (pair,) = read_pairs(JudgeRunConfig(pairs=f"{folder}:math", split="train"))
    assert pair["prompt"] == "What is 2+2?"


def test_judge_takes_the_eval_backend_flags_against_an_openai_server(tmp_path, capsys, tiny_backend):
    from test_openai_backend import MODEL, completions_app

    from genrm_plugin.serving.runner import ServerThread

    pairs = write_jsonl(tmp_path / "trl.jsonl", TRL)
    with ServerThread(completions_app(tiny_backend)) as server:
        out = judge(capsys, "--pairs", str(pairs), "--model", MODEL, "--backend", "openai",
                    "--base_urls", server.url + "/v1", "--max_retries", "1")
        assert f"judge={MODEL}" in out.out and "/2 labelled pairs" in out.out and "note:" not in out.err
        code = main(["judge", "--pairs", str(pairs), "--model", "absent", "--backend", "openai",
                     "--base_urls", server.url + "/v1", "--max_retries", "0", *CHEAP])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "genrm judge: error:" in err and "'absent' does not exist" in err


def test_vllm_flags_parse_for_judge_as_for_eval():
    from genrm_plugin.commands._judge_stack import parse_with_judge_stack

    for own in ((JudgeRunConfig,), ()):
        *_, (backend, vllm, openai), judge_cfg = parse_with_judge_stack(
            own, ["--backend", "vllm", "--tensor_parallel_size", "2", "--base_urls", "http://a/v1", "http://b/v1", "--k", "3"], "t")
        assert (backend.backend, vllm.tensor_parallel_size, openai.base_urls, judge_cfg.k) == (
            "vllm", 2, ["http://a/v1", "http://b/v1"], 3)
