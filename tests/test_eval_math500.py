"""MATH500 Best-of-N evaluation on the MATH500 fixture (tests/data): exact curves, answer-extraction
policies in the summary, resume, bad input, offline Hub names, CLI.

Candidate pools are built from the reference solutions plus corrupted copies (wrong boxed answers,
or no answer at all), so every metric is known exactly: an oracle GenRM (it prefers the candidate
math-verify grades correct) must reach oracle pass@N at every N, majority vote and random pick
have closed forms. Grading itself is tested in ``test_math_grading.py``.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from math import comb
from pathlib import Path

import pytest

from genrm_plugin.evals.grading import equivalent, extract_answer, parse_answer
from genrm_plugin.evals.inputs import EvalInputError
from genrm_plugin.evals.math500 import Math500EvalConfig, evaluate_math500
from genrm_plugin.run_folder import RunFolderError
from genrm_plugin.judge import GenerativeJudge, JudgeConfig
from genrm_plugin.prompts import neutralize
from genrm_plugin.testing import ScriptedBackend, split_judge_prompt

WRONG_A, WRONG_B, WRONG_REF = "7919", "104729", "31337"
NO_ANSWER = "I could not finish this one."


def corrupt(solution: str, value: str) -> str:
    """The solution with its last boxed answer replaced by ``value``."""
    cut = solution.rfind("\\boxed")
    return solution[:cut] + "\\boxed{" + value + "}."


@pytest.fixture(scope="module")
def problems_file(eval_data) -> Path:
    return eval_data / "math500" / "test.jsonl"


@pytest.fixture(scope="module")
def math_rows(problems_file):
    return [json.loads(line) for line in problems_file.read_text().splitlines()]


def build_pools(rows, n_correct_of, tmp_path: Path, reference: bool = True) -> Path:
    """Pools of 4: ``n_correct_of(i)`` copies of the solution, then wrong ones [7919, 7919, no answer, 104729]."""
    lines = []
    for i, row in enumerate(rows):
        sol = row["solution"]
        c = n_correct_of(i)
        wrong = [corrupt(sol, WRONG_A), corrupt(sol, WRONG_A), NO_ANSWER, corrupt(sol, WRONG_B)][: 4 - c]
        pool = [sol] * c + wrong
        random.Random(i).shuffle(pool)
        record = {"unique_id": row["unique_id"], "candidates": pool}
        if reference:
            record["reference"] = corrupt(sol, WRONG_REF)
        lines.append(json.dumps(record))
    path = tmp_path / "candidates.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def oracle_backend(rows) -> ScriptedBackend:
    """A judge that prefers the candidate math-verify grades correct (position A when both/neither are)."""
    gold = {neutralize(r["problem"]): parse_answer(r["answer"]) for r in rows}
    memo: dict[tuple[str, str], bool] = {}

    def correct(question: str, answer: str) -> bool:
        if (question, answer) not in memo:
            found = extract_answer(answer)
            memo[question, answer] = found is not None and equivalent(gold[question], parse_answer(found.text))
        return memo[question, answer]

    def script(prompt: str, i: int) -> str:
        q, a, b = split_judge_prompt(prompt)
        ok_a, ok_b = correct(q, a), correct(q, b)
        return "B is right. [[B]]" if ok_b and not ok_a else "A it is. [[A]]"

    return ScriptedBackend(script)


def config(tmp_path, candidates, problems_file, **kw) -> Math500EvalConfig:
    kw.setdefault("strategies", ["reference", "knockout", "round_robin"])
    return Math500EvalConfig(
        candidates=str(candidates), problems=str(problems_file), output_dir=str(tmp_path / kw.pop("run", "run")), **kw,
    )


# -- exact curves with an oracle judge ---------------------------------------------------------------
def test_oracle_judge_reaches_oracle_pass_at_n(math_rows, tmp_path, problems_file):
    rows = math_rows[:40]
    counts = [i % 5 for i in range(len(rows))]  # correct copies per pool of 4: 0..4, 8 problems each
    path = build_pools(rows, lambda i: counts[i], tmp_path)
    judge = GenerativeJudge(oracle_backend(rows), JudgeConfig(k=1, swap=True))
    summary = evaluate_math500(config(tmp_path, path, problems_file), judge)
    curves = summary["curves"]

    assert summary["n_values"] == [1, 2, 4]
    share = sum(counts) / 160
    assert summary["grading"] == {
        "answer_extraction": "lenient", "candidates": 160, "correct": sum(counts),
        "no_answer": 16, "no_boxed_answer": 16,  # one candidate without an answer when c <= 1
        "answer_sources": {"boxed": 144, "answer_phrase": 0, "last_expression": 0}, "copied_from_problem": 0,
        "accuracy_by_policy": {"boxed": share, "lenient": share}, "problems_with_a_correct_candidate": 32,
    }
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    # all C(4, n) subsets are used (<= 8), so the oracle is exactly the pass@n expectation
    for n in (1, 2, 4):
        expected = mean([1 - comb(4 - c, n) / comb(4, n) for c in counts])
        assert curves["oracle"][str(n)]["accuracy"] == pytest.approx(expected)
        for strategy in ("reference", "knockout", "round_robin"):
            assert curves[f"genrm-{strategy}"][str(n)]["accuracy"] == pytest.approx(expected), (strategy, n)
        assert curves["random"][str(n)]["accuracy"] == pytest.approx(mean([c / 4 for c in counts]))
    # majority over the full pool: c=0,1 -> the doubled wrong answer wins; c=2 -> 2:2 tie; c>=3 -> right
    assert curves["majority"]["4"]["accuracy"] == pytest.approx(mean([[0, 0, 0.5, 1, 1][c] for c in counts]))
    assert curves["majority"]["1"]["accuracy"] == pytest.approx(mean([c / 4 for c in counts]))
    lo, hi = curves["oracle"]["4"]["low"], curves["oracle"]["4"]["high"]
    assert lo < curves["oracle"]["4"]["accuracy"] < hi
    run = tmp_path / "run"
    assert (run / "curves.png").stat().st_size > 5000
    table = (run / "table.md").read_text()
    assert "genrm-round_robin" in table and "N=4" in table and "without a boxed answer: 16" in table
    assert json.loads((run / "summary.json").read_text())["curves"] == curves


def test_position_biased_judge_is_no_better_than_random(math_rows, tmp_path, problems_file):
    """A judge that always says [[A]] (with swap: always a tie) picks at random among the candidates."""
    rows = math_rows[:20]
    path = build_pools(rows, lambda i: 1, tmp_path)  # one correct of 4
    judge = GenerativeJudge(ScriptedBackend(lambda p, i: "[[A]]"), JudgeConfig(k=1, swap=True))
    summary = evaluate_math500(config(tmp_path, path, problems_file, strategies=["round_robin"], subsamples=8), judge)
    oracle, genrm = summary["curves"]["oracle"], summary["curves"]["genrm-round_robin"]
    assert oracle["4"]["accuracy"] == 1.0
    assert genrm["4"]["accuracy"] < 0.6  # 20 random picks of 1-in-4: 1/4 expected


# -- answer extraction policies, copied expressions, clipped intervals ---------------------------------
def test_summary_reports_the_policy_and_accuracy_under_both(math_rows, tmp_path, problems_file):
    """Pools of 2: the reference solution, then an unboxed "final answer is" (wrong for the first
    problem) or, for 513^2 - 487^2, that expression boxed (a copy of the problem)."""
    rows = [r for r in math_rows[:46] if r["answer"].isdigit()][:9] + [
        next(r for r in math_rows if r["unique_id"] == "test/algebra/2592.json")]
    lines = []
    for i, r in enumerate(rows):
        second = f"So the final answer is ${WRONG_A if i == 0 else r['answer']}$."
        if r["unique_id"] == "test/algebra/2592.json":
            second = r"\boxed{513^2 - 487^2}"
        lines.append({"unique_id": r["unique_id"], "candidates": [r["solution"], second]})
    path = write(tmp_path, lines, "candidates.jsonl")
    by_policy = {"boxed": 10 / 20, "lenient": 18 / 20}
    for policy, correct, no_answer in (("lenient", 18, 0), ("boxed", 10, 9)):
        summary = evaluate_math500(config(tmp_path, path, problems_file, strategies=["none"], run=policy,
                                          answer_extraction=policy))
        g = summary["grading"]
        assert (g["answer_extraction"], g["correct"], g["no_answer"]) == (policy, correct, no_answer)
        assert g["no_boxed_answer"] == 9
        assert g["copied_from_problem"] == 1 and g["accuracy_by_policy"] == pytest.approx(by_policy)
        assert g["answer_sources"] == {"boxed": 11, "answer_phrase": 9, "last_expression": 0}
        table = (tmp_path / policy / "table.md").read_text()
        assert f"Answer extraction: {policy}." in table and "by policy: boxed 50.0% / lenient 90.0%" in table
        assert "rejected as copied from the problem: 1" in table
    random_1 = summary["curves"]["random"]["1"]
    assert (random_1["accuracy"], random_1["low"], random_1["high"]) == (0.5, 0.5, 0.5)  # boxed: 1 of 2 everywhere
    lenient_random = json.loads((tmp_path / "lenient" / "summary.json").read_text())["curves"]["random"]["1"]
    assert lenient_random["accuracy"] == pytest.approx(0.9) and lenient_random["high"] == 1.0  # 1.03 unclipped
    table = (tmp_path / "lenient" / "table.md").read_text()
    assert "100.0]" in table and "103" not in table
    with pytest.raises(ValueError, match=r"answer_extraction \(--answer_extraction\) must be one of \['boxed', 'lenient'\]"):
        Math500EvalConfig(answer_extraction="loose")


# -- resume ----------------------------------------------------------------------------------------
class Interrupted(RuntimeError):
    pass


def test_resume_does_not_redo_judgments_or_grading(math_rows, tmp_path, problems_file, monkeypatch):
    rows = math_rows[:12]
    path = build_pools(rows, lambda i: i % 5, tmp_path)
    kw = dict(strategies=["reference", "round_robin"], chunk_size=5)

    uninterrupted = evaluate_math500(
        config(tmp_path, path, problems_file, run="full", **kw), GenerativeJudge(oracle_backend(rows), JudgeConfig(k=1))
    )

    first = oracle_backend(rows)
    real_generate, calls = first.generate, []

    def dying_generate(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise Interrupted("killed")
        return real_generate(*args, **kwargs)

    first.generate = dying_generate
    with pytest.raises(Interrupted):
        evaluate_math500(config(tmp_path, path, problems_file, **kw), GenerativeJudge(first, JudgeConfig(k=1)))
    run = tmp_path / "run"
    judged_before = set(first.drawn)
    stored = len((run / "judgments.jsonl").read_text().splitlines())
    assert judged_before and stored > 0 and not (run / "summary.json").exists()

    second = oracle_backend(rows)
    summary = evaluate_math500(config(tmp_path, path, problems_file, **kw), GenerativeJudge(second, JudgeConfig(k=1)))
    assert not judged_before & set(second.drawn), "a judgment written before the interruption was redone"
    assert summary["curves"] == uninterrupted["curves"]
    assert summary["judge"]["comparisons_judged"] + stored == uninterrupted["judge"]["comparisons_judged"]

    # a finished run reruns from its records: no judge call, no grading
    third = oracle_backend(rows)
    monkeypatch.setattr("genrm_plugin.evals.math500.grade_pool", lambda *a, **k: pytest.fail("graded again"))
    again = evaluate_math500(config(tmp_path, path, problems_file, **kw), GenerativeJudge(third, JudgeConfig(k=1)))
    assert third.calls == [] and again["curves"] == uninterrupted["curves"]

    # a line cut by a crash is dropped with a warning and recomputed
    with open(run / "selections.jsonl", "a") as f:
        f.write('{"strategy": "reference", "key": "tru')
    with pytest.warns(UserWarning, match="truncated"):
        evaluate_math500(config(tmp_path, path, problems_file, **kw), GenerativeJudge(third, JudgeConfig(k=1)))

    with pytest.raises(RunFolderError, match="subsamples"):
        evaluate_math500(config(tmp_path, path, problems_file, subsamples=3, **kw), GenerativeJudge(third, JudgeConfig(k=1)))


# -- bad input -------------------------------------------------------------------------------------
def write(tmp_path: Path, rows: list, name: str = "bad.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_bad_candidates_get_clear_errors(math_rows, tmp_path, problems_file):
    uid0, uid1 = math_rows[0]["unique_id"], math_rows[1]["unique_id"]
    judge = GenerativeJudge(ScriptedBackend(), JudgeConfig(k=1))
    cases = [
        ([{"unique_id": "test/nope/1.json", "candidates": ["a"]}], r"1 unique_id value\(s\) not in .*'test/nope/1.json' \(line 1\)"),
        ([{"unique_id": uid0, "candidates": ["a", "b"]}, {"candidates": ["c", "d"]}], r"line 2: field 'unique_id' is missing"),
        ([{"unique_id": uid0}], r"line 1: field 'candidates' must be a non-empty list"),
        ([{"unique_id": uid0, "candidates": ["a", 3]}], r"line 1: candidates\[1\] is int"),
        ([{"unique_id": uid0, "candidates": ["a", "b"]}, {"unique_id": uid1, "candidates": ["c"]}], r"mismatched N: .*line 2 has 1.*--n 1"),
        ([{"unique_id": uid0, "candidates": ["a"]}, {"unique_id": uid0, "candidates": ["b"]}], r"line 2: duplicate unique_id"),
        (["{not json"], r"line 1: not valid JSON"),
    ]
    for rows, message in cases:
        with pytest.raises(EvalInputError, match=message):
            evaluate_math500(config(tmp_path, write(tmp_path, rows), problems_file, strategies=["knockout"]), judge)
    with pytest.raises(EvalInputError, match=r"line 1: field 'reference' is missing; the 'reference' Best-of-N"):
        rows = [{"unique_id": uid0, "candidates": ["a"]}]
        evaluate_math500(config(tmp_path, write(tmp_path, rows), problems_file, strategies=["reference"]), judge)

    problems = write(tmp_path, [{"unique_id": uid0, "problem": "p"}], "problems.jsonl")
    cfg = config(tmp_path, write(tmp_path, [{"unique_id": uid0, "candidates": ["a"]}]), problems_file, strategies=["none"])
    cfg.problems = str(problems)
    with pytest.raises(EvalInputError, match=r"problems.jsonl: line 1: field 'answer' is missing"):
        evaluate_math500(cfg)


def test_mismatched_n_fixed_by_n_and_unboxed_candidates_counted(math_rows, tmp_path, problems_file):
    row0, row1 = math_rows[0], math_rows[1]
    path = write(tmp_path, [
        {"unique_id": row0["unique_id"], "candidates": [row0["solution"], "I do not know.", "x"]},
        {"unique_id": row1["unique_id"], "candidates": ["no answer here", row1["solution"]]},
    ])
    summary = evaluate_math500(config(tmp_path, path, problems_file, strategies=["none"], n=2))
    assert summary["pool_size"] == 2 and summary["grading"]["no_boxed_answer"] == summary["grading"]["no_answer"] == 2
    assert summary["grading"]["correct"] == 2
    assert summary["curves"]["oracle"]["2"]["accuracy"] == 1.0
    assert summary["curves"]["majority"]["2"]["accuracy"] == 1.0  # the only answer in each pool is right
    assert summary["curves"]["random"]["2"]["accuracy"] == 0.5


# -- command line ----------------------------------------------------------------------------------
def genrm(*args):
    exe = shutil.which("genrm") or str(Path(sys.executable).parent / "genrm")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=600)


def test_generate_resumes_and_checks_its_output(tmp_path, problems_file, tiny_backend, math_rows):
    from genrm_plugin.commands.generate import GenerateConfig, generate_candidates

    out = tmp_path / "candidates.jsonl"
    cfg = GenerateConfig(input=str(problems_file), output=str(out), n=2, limit=2,
                         max_new_tokens=6, chunk_size=1)
    generate_candidates(cfg, tiny_backend)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["unique_id"] for r in rows] == [r["unique_id"] for r in math_rows[:2]]
    assert all(len(r["candidates"]) == 2 for r in rows)

    sampled: list[int] = []
    original = tiny_backend.generate
    tiny_backend.generate = lambda prompts, *a, **k: sampled.append(len(prompts)) or original(prompts, *a, **k)
    try:
        cfg.limit = 3
        generate_candidates(cfg, tiny_backend)  # resumes: only the third problem is sampled
    finally:
        del tiny_backend.generate
    assert sampled == [1]
    assert [json.loads(line) for line in out.read_text().splitlines()][:2] == rows
    with pytest.raises(EvalInputError, match=r"row 1 is not a 'unique_id' row with 4 candidates"):
        generate_candidates(GenerateConfig(input=cfg.input, output=str(out), n=4, limit=1), tiny_backend)
    other = GenerateConfig(input=str(write(tmp_path, [{"q": "x"}])), output=str(tmp_path / "o.jsonl"))
    with pytest.raises(EvalInputError, match=r"cannot tell the id/prompt fields"):
        generate_candidates(other, tiny_backend)


def test_generate_then_eval_math500_cli_with_tiny_models(tmp_path, problems_file):
    from genrm_plugin.cli import main

    problems = str(problems_file)
    out = tmp_path / "candidates.jsonl"
    assert main(["generate", "--input", problems, "--output", str(out), "--n", "2", "--with_reference",
                 "--limit", "3", "--max_new_tokens", "8"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [len(r["candidates"]) for r in rows] == [2, 2, 2] and all(isinstance(r["reference"], str) for r in rows)

    run = tmp_path / "run"
    args = ["eval", "math500", "--candidates", str(out), "--problems", problems, "--output_dir", str(run),
            "--strategies", "reference", "knockout", "--k", "1", "--max_new_tokens", "8"]
    result = genrm(*args)
    assert result.returncode == 0, result.stderr
    assert "genrm-knockout" in result.stdout and "without a boxed answer" in result.stdout
    assert (run / "curves.png").exists() and len((run / "grades.jsonl").read_text().splitlines()) == 3


def test_eval_command_errors_and_usage(capsys, tmp_path, problems_file):
    from genrm_plugin.cli import main

    problems = str(problems_file)
    args = ["eval", "math500", "--candidates", str(tmp_path / "missing.jsonl"), "--problems", problems,
            "--output_dir", str(tmp_path / "r2")]
    assert main(args) == 2 and "missing.jsonl not found" in capsys.readouterr().err
    assert main(args[:-4] + ["--strategies", "best"]) == 2 and "unknown ['best']" in capsys.readouterr().err
    assert main(["eval", "nonsense"]) == 2 and "unknown evaluation 'nonsense'" in capsys.readouterr().err
    assert main(["eval"]) == 0 and "math500" in capsys.readouterr().out
    assert main(args[:-4] + ["--answer_extraction", "loose"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--answer_extraction" in err and "invalid choice: 'loose' (choose from 'boxed', 'lenient')" in err


def test_hub_name_without_the_hub_gets_one_clear_line(tmp_path):
    """``--problems`` takes a datasets name (the default is HuggingFaceH4/MATH-500); offline, one line."""
    candidates = write(tmp_path, [{"unique_id": "test/algebra/1.json", "candidates": ["a"]}])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    exe = shutil.which("genrm") or str(Path(sys.executable).parent / "genrm")
    result = subprocess.run([exe, "eval", "math500", "--candidates", str(candidates), "--strategies", "none",
                             "--output_dir", str(tmp_path / "run"), "--problems", "HuggingFaceH4/MATH-500"],
                            capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(
        "genrm eval math500: error: MATH500 problems (--problems): HuggingFaceH4/MATH-500 is not a local file and "
        "the Hugging Face Hub cannot be reached (HF_HUB_OFFLINE is set); pass a local .jsonl/.json/.parquet file"
    ), result.stderr
    assert Math500EvalConfig().problems == "HuggingFaceH4/MATH-500"
