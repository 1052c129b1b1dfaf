"""ArenaHard v0.1 Best-of-N on the real files' fixture (tests/data, 47 questions): verdict parsing,
exact win rates, resume, bad input, offline Hub names, CLI.

The candidate pool of every question is (gpt-3.5-turbo-0125's answer, gpt-4-0613's answer); the
baseline is gpt-4-0314. Scripted GenRMs and grading judges make the correct win rates known.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys

import pytest

from genrm_plugin.evals.arenahard import ArenaHardEvalConfig, evaluate_arenahard, load_model_answers, win_rate_with_ci
from genrm_plugin.evals.arenahard_grader import CONTINUE_PROMPT, GraderConfig, battle_outcomes, parse_arena_verdict
from genrm_plugin.evals.inputs import EvalInputError
from genrm_plugin.judge import GenerativeJudge, JudgeConfig
from genrm_plugin.prompts import neutralize
from genrm_plugin.testing import ScriptedBackend, split_judge_prompt

GRADER_RE = re.compile(
    r"<\|User Prompt\|>\n(?P<q>.*?)\n\n<\|The Start of Assistant A's Answer\|>\n(?P<a>.*?)\n"
    r"<\|The End of Assistant A's Answer\|>\n\n<\|The Start of Assistant B's Answer\|>\n(?P<b>.*?)\n"
    r"<\|The End of Assistant B's Answer\|>",
    re.DOTALL,
)


@pytest.fixture(scope="module")
def arena(eval_data):
    d = eval_data / "arena_hard_v0.1"
    questions = {json.loads(x)["uid"]: json.loads(x)["prompt"] for x in (d / "question.jsonl").read_text().splitlines()}
    return {
        "dir": d,
        "questions": questions,
        "baseline": load_model_answers(d / "model_answer_gpt-4-0314.jsonl"),
        "gpt35": load_model_answers(d / "model_answer_gpt-3.5-turbo-0125.jsonl"),
        "gpt4": load_model_answers(d / "model_answer_gpt-4-0613.jsonl"),
    }


def cfg(arena, tmp_path, **kw) -> ArenaHardEvalConfig:
    d = arena["dir"]
    kw.setdefault("candidate_answers", [str(d / "model_answer_gpt-3.5-turbo-0125.jsonl"),
                                        str(d / "model_answer_gpt-4-0613.jsonl")])
    return ArenaHardEvalConfig(
        questions=str(d / "question.jsonl"), baseline=str(d / "model_answer_gpt-4-0314.jsonl"),
        output_dir=str(tmp_path / kw.pop("run", "run")), **kw,
    )


def genrm_preferring(answers: set[str]) -> GenerativeJudge:
    """A GenRM that prefers whichever answer is in ``answers`` (as shown to it, neutralised)."""
    shown = {neutralize(a) for a in answers}

    def script(prompt: str, i: int) -> str:
        _, a, b = split_judge_prompt(prompt)
        return "[[B]]" if b in shown and a not in shown else "[[A]]"

    return GenerativeJudge(ScriptedBackend(script), JudgeConfig(k=1, swap=True))


def grading_backend(verdict_for) -> ScriptedBackend:
    """A grading judge: ``verdict_for(question, answer_a, answer_b)`` -> the output text."""

    def script(prompt: str, i: int) -> str:
        m = GRADER_RE.search(prompt)
        return verdict_for(m.group("q"), m.group("a"), m.group("b"))

    return ScriptedBackend(script)


def always_baseline(arena):
    baseline_of = {arena["questions"][u]: arena["baseline"][u] for u in arena["questions"]}

    def verdict(q, a, b):
        if a == baseline_of[q] and b != a:
            return "Assistant A is far better. My final verdict is: [[A>>B]]"
        if b == baseline_of[q] and a != b:
            return "My final verdict is: [[B>>A]]"
        return "Same. [[A=B]]"

    return verdict


def grader(verdict_for, attempts: int = 2):
    return GraderConfig(grader_attempts=attempts).grader(grading_backend(verdict_for))


# -- verdicts and weights --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, verdict, found",
    [
        ("My final verdict is: [[A>>B]]", "A>>B", True),
        ("verdict [[ b > a ]]", "B>A", True),
        ("[[B≫A]]", "B>>A", True),
        ("[[A<B]]", "B>A", True),
        ("[[A<<B]]", "B>>A", True),
        ("[[B=A]]", "A=B", True),
        ("first [[A>B]] ... so again [[A>B]]", "A>B", True),
        ("[[A>B]] or maybe [[B>A]]", None, True),  # disagreeing labels are invalid (arena-hard)
        ("[[A>A]]", None, True),
        ("I cannot decide. [[A]]", None, False),
        ("", None, False),
        (None, None, False),
    ],
)
def test_parse_arena_verdict(text, verdict, found):
    assert parse_arena_verdict(text) == (verdict, found)


def test_battle_weights_follow_arena_hard():
    # game 1: the baseline is A; game 2: the model is A
    assert battle_outcomes("A>>B", model_is_a=False) == [0.0] * 3
    assert battle_outcomes("A>B", model_is_a=False) == [0.0]
    assert battle_outcomes("A=B", model_is_a=False) == [0.5]
    assert battle_outcomes("B>A", model_is_a=False) == [1.0]
    assert battle_outcomes("B>>A", model_is_a=False) == [1.0] * 3
    assert battle_outcomes("A>>B", model_is_a=True) == [1.0] * 3
    assert battle_outcomes("B>A", model_is_a=True, strong_weight=5) == [0.0]
    assert battle_outcomes(None, model_is_a=True) == []


def test_closed_form_win_rate_is_the_bradley_terry_mle():
    """arena-hard's logistic-regression fit (ties as one win + one loss of a doubled battle) vs a
    Newton-fitted one-parameter model: the same win rate as the weighted win share."""
    outcomes = [1.0] * 37 + [0.5] * 11 + [0.0] * 52
    rate, low, high = win_rate_with_ci(outcomes, rounds=100, level=0.9, seed=1)
    ys = [1.0 if o == 1.0 else 0.0 for o in outcomes] + [1.0 if o >= 0.5 else 0.0 for o in outcomes]
    theta = 0.0
    for _ in range(50):  # Newton on the log-likelihood of sigmoid(theta)
        p = 1 / (1 + math.exp(-theta))
        theta += sum(y - p for y in ys) / (len(ys) * p * (1 - p))
    assert rate == pytest.approx(1 / (1 + math.exp(-theta)), abs=1e-9) == pytest.approx((37 + 11 / 2) / 100)
    assert low < rate < high and (low, high) == win_rate_with_ci(outcomes, rounds=100, level=0.9, seed=1)[1:]
    assert win_rate_with_ci([0.0] * 30, 100, 0.9, 0) == (0.0, 0.0, 0.0)


# -- exact win rates on the real files -------------------------------------------------------------
def test_always_baseline_grader_gives_win_rate_zero(arena, tmp_path):
    judge = genrm_preferring(set(arena["gpt35"].values()))
    summary = evaluate_arenahard(cfg(arena, tmp_path, strategies=["reference", "knockout", "round_robin"]),
                                 judge, grader(always_baseline(arena)))
    questions = len(arena["questions"])
    assert summary["questions"] == questions == 47 and summary["pool_size"] == 2
    assert list(summary["systems"]) == ["best-of-1", "genrm-reference", "genrm-knockout", "genrm-round_robin"]
    for name, s in summary["systems"].items():
        assert (s["win_rate"], s["low"], s["high"]) == (0.0, 0.0, 0.0), name
        assert s["battles"] == questions * 2 * 3 and s["votes"]["much worse"] == 2 * questions and s["invalid_games"] == 0
    run = tmp_path / "run"
    assert (run / "win_rates.png").stat().st_size > 5000
    assert "| best-of-1 " in (run / "table.md").read_text()
    grades = [json.loads(x) for x in (run / "grades.jsonl").read_text().splitlines()]
    assert len(grades) == 2 * questions  # every system chose the gpt-3.5 answer: each game graded once


def test_genrm_choice_beats_best_of_one_with_known_win_rates(arena, tmp_path):
    """GenRM prefers gpt-4-0613; the grader rates gpt-4-0613 slightly better than the baseline and
    gpt-3.5 much worse (identical answers: tie). Best-of-1 is the first candidate, gpt-3.5."""
    gpt4 = set(arena["gpt4"].values())
    baselines = set(arena["baseline"].values())

    def verdict(q, a, b):
        if a == b:
            return "[[A=B]]"
        model_is_a = b in baselines
        model = a if model_is_a else b
        if model in gpt4:
            return "[[A>B]]" if model_is_a else "[[B>A]]"
        return "[[B>>A]]" if model_is_a else "[[A>>B]]"

    summary = evaluate_arenahard(cfg(arena, tmp_path), genrm_preferring(gpt4), grader(verdict))
    same = sum(arena["gpt4"][u] == arena["baseline"][u] for u in arena["questions"])
    assert same == 1  # one gpt-4-0613 answer equals the baseline's answer word for word
    assert summary["systems"]["best-of-1"]["win_rate"] == 0.0
    for name in ("genrm-reference", "genrm-knockout"):
        s = summary["systems"][name]
        wins, ties = 2 * (len(arena["questions"]) - same), 2 * same
        assert s["win_rate"] == pytest.approx((wins + ties / 2) / (wins + ties))
        assert s["votes"] == {"much better": 0, "better": wins, "tie": ties, "worse": 0, "much worse": 0}
        assert s["low"] <= s["win_rate"] <= s["high"] == 1.0


def test_grader_retries_once_without_a_verdict_then_counts_invalid(arena, tmp_path):
    def verdict(q, a, b):
        return "Let me think about it."

    backend = ScriptedBackend(lambda prompt, i: "[[B>A]]" if CONTINUE_PROMPT in prompt else "Let me think.")
    summary = evaluate_arenahard(cfg(arena, tmp_path, strategies=["none"], limit=5),
                                 None, GraderConfig().grader(backend))
    best = summary["systems"]["best-of-1"]
    assert best["votes"]["better"] == 5 and best["votes"]["worse"] == 5 and best["win_rate"] == 0.5
    grades = [json.loads(x) for x in (tmp_path / "run" / "grades.jsonl").read_text().splitlines()]
    assert all("Let me think." in g["judgment"] and "[[B>A]]" in g["judgment"] for g in grades)

    summary = evaluate_arenahard(cfg(arena, tmp_path, strategies=["none"], limit=5, run="one"),
                                 None, grader(verdict, attempts=1))
    best = summary["systems"]["best-of-1"]
    assert best["invalid_games"] == 10 and best["battles"] == 0 and math.isnan(best["win_rate"])
    assert "n/a" in (tmp_path / "one" / "table.md").read_text()


# -- resume ----------------------------------------------------------------------------------------
def test_resume_does_not_regrade_or_rejudge(arena, tmp_path):
    gpt4 = set(arena["gpt4"].values())
    kw = dict(limit=40, chunk_size=8, strategies=["reference"])
    full = evaluate_arenahard(cfg(arena, tmp_path, run="full", **kw), genrm_preferring(gpt4),
                              grader(always_baseline(arena)))

    dying = grading_backend(always_baseline(arena))
    real, calls = dying.generate, []

    def generate(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    dying.generate = generate
    with pytest.raises(KeyboardInterrupt):
        evaluate_arenahard(cfg(arena, tmp_path, **kw), genrm_preferring(gpt4), GraderConfig().grader(dying))
    graded_before = set(dying.drawn)
    assert len(graded_before) == 16

    judge, fresh = genrm_preferring(gpt4), grading_backend(always_baseline(arena))
    summary = evaluate_arenahard(cfg(arena, tmp_path, **kw), judge, GraderConfig().grader(fresh))
    assert judge.backend.calls == []  # the selections were all written before the interruption
    assert not graded_before & set(fresh.drawn)
    assert summary["systems"] == full["systems"]


# -- bad input -------------------------------------------------------------------------------------
def test_bad_inputs_get_clear_errors(arena, tmp_path):
    d = arena["dir"]
    judge, grade = genrm_preferring(set()), grader(always_baseline(arena))
    uid = next(iter(arena["questions"]))

    def write(name, rows):
        path = tmp_path / name
        path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
        return str(path)

    with pytest.raises(EvalInputError, match="exactly one of --candidates"):
        evaluate_arenahard(cfg(arena, tmp_path, candidate_answers=[]), judge, grade)
    unknown = write("c.jsonl", [{"uid": "nope", "candidates": ["x", "y"]}])
    with pytest.raises(EvalInputError, match=r"1 uid value\(s\) not in .*'nope'"):
        evaluate_arenahard(cfg(arena, tmp_path, candidate_answers=[], candidates=unknown), judge, grade)
    uneven = write("c2.jsonl", [{"uid": uid, "candidates": ["x", "y"]}, {"uid": list(arena["questions"])[1], "candidates": ["z"]}])
    with pytest.raises(EvalInputError, match="mismatched N"):
        evaluate_arenahard(cfg(arena, tmp_path, candidate_answers=[], candidates=uneven), judge, grade)
    partial = write("answers.jsonl", [{"uid": uid, "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": {"answer": "a"}}]}])
    with pytest.raises(EvalInputError, match=r"must cover the same ids"):
        evaluate_arenahard(cfg(arena, tmp_path, candidate_answers=[str(d / "model_answer_gpt-4-0613.jsonl"), partial]), judge, grade)
    with pytest.raises(EvalInputError, match=rf"no baseline answer for {len(arena['questions']) - 1} question"):
        evaluate_arenahard(ArenaHardEvalConfig(questions=str(d / "question.jsonl"), baseline=partial,
                                               candidate_answers=[partial], output_dir=str(tmp_path / "x")), judge, grade)
    broken = write("broken.jsonl", [{"uid": uid, "messages": []}])
    with pytest.raises(EvalInputError, match=rf"broken.jsonl: uid '{uid}': no answer text"):
        load_model_answers(broken)
    with pytest.raises(ValueError, match="grader_options is not valid JSON"):
        GraderConfig(grader_options="{dtype").backend_config()
    with pytest.raises(ValueError, match="BackendConfig fields"):
        GraderConfig(grader_options='{"colour": 1}').backend_config()
    backend, settings = GraderConfig(grader_options='{"dtype": "float32", "vllm": {"enforce_eager": true}}').backend_config()
    assert backend.dtype == "float32" and backend.model == "toy" and settings["vllm"].enforce_eager is True


# -- command line ----------------------------------------------------------------------------------
def test_eval_arenahard_cli_with_tiny_models(arena, tmp_path, capsys):
    from genrm_plugin.cli import main

    d = arena["dir"]
    args = ["eval", "arenahard", "--questions", str(d / "question.jsonl"),
            "--baseline", str(d / "model_answer_gpt-4-0314.jsonl"),
            "--candidate_answers", str(d / "model_answer_gpt-3.5-turbo-0125.jsonl"), str(d / "model_answer_gpt-4-0613.jsonl"),
            "--limit", "2", "--strategies", "knockout", "--k", "1", "--max_new_tokens", "8",
            "--grader_max_new_tokens", "8", "--output_dir", str(tmp_path / "run")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "genrm-knockout" in out and "best-of-1" in out
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["questions"] == 2 and set(summary["systems"]) == {"best-of-1", "genrm-knockout"}
    assert summary["systems"]["best-of-1"]["invalid_games"] == 4  # the random tiny grader writes no verdict
    assert main(args + ["--grader_options", "[1]"]) == 2
    assert "grader_options must be a JSON object" in capsys.readouterr().err


def test_questions_hub_name_without_the_hub_gets_one_clear_line(arena, tmp_path):
    """``--questions`` takes a local file or a datasets name; offline, the error is one line."""
    code = (
        "import sys\nfrom genrm_plugin.evals.arenahard import ArenaHardEvalConfig, evaluate_arenahard\n"
        "config = ArenaHardEvalConfig(questions=sys.argv[1], baseline=sys.argv[2], candidate_answers=[sys.argv[2]],"
        " output_dir=sys.argv[3])\n"
        "try:\n    evaluate_arenahard(config, None, None)\nexcept ValueError as e:\n    print(e)"
    )
    args = ["lmarena-ai/arena-hard-auto-v0.1", str(arena["dir"] / "model_answer_gpt-4-0314.jsonl"), str(tmp_path / "run")]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "ArenaHard questions (--questions): lmarena-ai/arena-hard-auto-v0.1 is not a local file and the Hugging Face "
        "Hub cannot be reached (HF_HUB_OFFLINE is set); pass a local .jsonl/.json/.parquet file, or run once with "
        "the Hub reachable (datasets caches it)\n"
    )
