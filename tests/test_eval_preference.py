"""Preference-accuracy evaluation: exact maj@K, consistency, abstentions, RewardBench sections,
reward-model judges, resume, bad input and the CLI.

Pairs are real text: ArenaHard questions with gpt-4-0613 (chosen) vs gpt-3.5-turbo-0125 (rejected)
answers, and MATH500 problems with the reference solution (chosen) vs a copy with a wrong boxed
answer (rejected). Rows are tagged with RewardBench subset names. Scripted judges make every
metric known exactly.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from genrm_plugin.data import PreferenceDataError
from genrm_plugin.evals.majority import expected_majority
from genrm_plugin.evals.preference import PreferenceEvalConfig, evaluate_preferences
from genrm_plugin.evals.rewardbench import EXAMPLE_COUNTS, SECTIONS, section_scores
from genrm_plugin.run_folder import RunFolderError
from genrm_plugin.judge import GenerativeJudge, JudgeConfig
from genrm_plugin.prompts import neutralize
from genrm_plugin.testing import ScriptedBackend, always, split_judge_prompt

SUBSETS = list(EXAMPLE_COUNTS)  # 23 RewardBench subsets


@pytest.fixture(scope="module")
def pairs_file(eval_data, tmp_path_factory) -> Path:
    """92 real pairs (46 ArenaHard, 46 MATH500), 4 per RewardBench subset."""
    d = eval_data / "arena_hard_v0.1"

    def answers(name):
        rows = [json.loads(x) for x in (d / f"model_answer_{name}.jsonl").read_text().splitlines()]
        return {r["uid"]: r["messages"][-1]["content"]["answer"] for r in rows}

    gpt4, gpt35 = answers("gpt-4-0613"), answers("gpt-3.5-turbo-0125")
    questions = [json.loads(x) for x in (d / "question.jsonl").read_text().splitlines()]
    rows = [{"prompt": q["prompt"], "chosen": gpt4[q["uid"]], "rejected": gpt35[q["uid"]], "id": q["uid"]}
            for q in questions[:46]]
    for m in (json.loads(x) for x in (eval_data / "math500" / "test.jsonl").read_text().splitlines()[:46]):
        sol = m["solution"]
        wrong = sol[: sol.rfind("\\boxed")] + "\\boxed{7919}."
        rows.append({"prompt": m["problem"], "chosen": sol, "rejected": wrong, "id": m["unique_id"]})
    for i, row in enumerate(rows):
        row["subset"] = SUBSETS[i % len(SUBSETS)]
    path = tmp_path_factory.mktemp("pref") / "pairs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


@pytest.fixture(scope="module")
def rows(pairs_file):
    return [json.loads(x) for x in pairs_file.read_text().splitlines()]


def run(pairs_file, tmp_path, judge=None, scorer=None, name="run", **kw):
    config = PreferenceEvalConfig(data=str(pairs_file), output_dir=str(tmp_path / name), **kw)
    return evaluate_preferences(config, judge=judge, scorer=scorer)


def oracle_script(rows, correct_votes: str):
    """Votes for the chosen answer at sample indices where ``correct_votes[i % len]`` is "1"."""
    chosen = {neutralize(r["chosen"]) for r in rows}

    def script(prompt: str, i: int) -> str:
        _, a, b = split_judge_prompt(prompt)
        good = "A" if a in chosen else "B"
        bad = "B" if good == "A" else "A"
        return f"[[{good if correct_votes[i % len(correct_votes)] == '1' else bad}]]"

    return script


# -- exact metrics with scripted judges ------------------------------------------------------------
def test_always_a_judge_has_consistency_zero_and_accuracy_half(pairs_file, tmp_path):
    swapped = run(pairs_file, tmp_path, GenerativeJudge(always("A"), JudgeConfig(k=4, swap=True)))
    overall = swapped["overall"]
    assert swapped["ks"] == [1, 2, 4] and overall["n"] == 92
    for k in ("1", "2", "4"):
        assert overall["accuracy"][k] == 0.5 and overall["consistency"][k] == 0.0
        assert overall["tie_rate"][k] == 1.0 and overall["abstain_rate"][k] == 0.0
    for subset in swapped["subsets"].values():
        assert subset["accuracy"]["4"] == 0.5 and subset["consistency"]["4"] == 0.0

    single = run(pairs_file, tmp_path, GenerativeJudge(always("A"), JudgeConfig(k=4, swap=False)), name="noswap")
    assert single["overall"]["accuracy"] == {"1": 0.5, "2": 0.5, "4": 0.5}  # chosen shown first in exactly half
    assert single["overall"]["consistency"]["4"] is None and single["overall"]["tie_rate"]["4"] == 0.0


def test_maj_at_k_is_exact_from_one_set_of_votes(pairs_file, rows, tmp_path):
    """3 of every 4 votes are right: maj@1 = 3/4, maj@2 = 7/8 (ties count 1/2), maj@4 = 1."""
    backend = ScriptedBackend(oracle_script(rows, "1110"))
    summary = run(pairs_file, tmp_path, GenerativeJudge(backend, JudgeConfig(k=4, swap=True)))
    overall = summary["overall"]
    assert overall["accuracy"] == pytest.approx({"1": 0.75, "2": 0.875, "4": 1.0})
    # k=1: both orders agree w.p. 9/16 + 1/16; k=2: defined only when both draw two right votes
    assert overall["consistency"] == pytest.approx({"1": 10 / 16, "2": 1.0, "4": 1.0})
    assert overall["tie_rate"] == pytest.approx({"1": 6 / 16, "2": 1 / 4, "4": 0.0})
    # the votes were drawn once: 4 per order per pair, whatever the number of K values reported
    assert sum(backend.drawn.values()) == 92 * 2 * 4
    sections = summary["rewardbench"]["4"]
    assert {s: sections[s] for s in SECTIONS} == {s: 1.0 for s in SECTIONS} and sections["Score"] == 1.0
    run_dir = tmp_path / "run"
    assert (run_dir / "accuracy_vs_k.png").stat().st_size > 5000
    table = (run_dir / "table.md").read_text()
    assert "acc maj@4" in table and "| maj@2 |" in table and "Chat Hard" in table


def test_abstentions_count_half_and_are_reported(pairs_file, rows, tmp_path):
    backend = ScriptedBackend(lambda prompt, i: "I refuse to judge.")
    summary = run(pairs_file, tmp_path, GenerativeJudge(backend, JudgeConfig(k=2, swap=True)))
    assert summary["overall"]["abstain_rate"] == {"1": 1.0, "2": 1.0}
    assert summary["overall"]["accuracy"] == {"1": 0.5, "2": 0.5}
    assert summary["overall"]["consistency"] == {"1": None, "2": None}


def test_rewardbench_sections_are_example_count_weighted(pairs_file, rows, tmp_path):
    """Right on Chat and math-prm items, position-biased ([[A]]) elsewhere."""
    subset_of = {neutralize(r["prompt"]): r["subset"] for r in rows}
    right = oracle_script(rows, "1")

    def script(prompt, i):
        q, _, _ = split_judge_prompt(prompt)
        return right(prompt, i) if subset_of[q] in SECTIONS["Chat"] + ["math-prm"] else "[[A]]"

    summary = run(pairs_file, tmp_path, GenerativeJudge(ScriptedBackend(script), JudgeConfig(k=1)))
    sections = summary["rewardbench"]["1"]
    # math-prm weighs 984 = the six hep-* subsets' 6 x 164 together
    assert sections["Chat"] == 1.0 and sections["Chat Hard"] == 0.5 and sections["Safety"] == 0.5
    assert sections["Reasoning"] == pytest.approx(0.75)
    assert sections["Score"] == pytest.approx((1.0 + 0.5 + 0.5 + 0.75) / 4)
    assert section_scores({"alpacaeval-easy": 1.0})["missing_sections"] == ["Chat Hard", "Safety", "Reasoning"]
    assert section_scores({"alpacaeval-easy": 1.0})["Score"] is None and section_scores({"mine": 1.0}) is None


def test_expected_majority_matches_enumerating_subsets():
    from itertools import combinations

    from genrm_plugin.evals.majority import credit
    from genrm_plugin.votes import VoteCount, combine_orders

    first, second = "CCRX", "CRRC"  # votes for chosen / rejected / abstain per order
    for k in (1, 2, 3, 4):
        total, n = 0.0, 0
        for s1 in combinations(first, k):
            for s2 in combinations(second, k):
                pref = combine_orders(VoteCount(s1.count("C"), s1.count("R"), s1.count("X")),
                                      VoteCount(s2.count("R"), s2.count("C"), s2.count("X")))
                total, n = total + credit(pref.p_a), n + 1
        assert expected_majority((2, 1, 1), (2, 2, 0), k).credit == pytest.approx(total / n)


def test_no_cot_judge_probabilities(pairs_file, rows, tmp_path):
    chosen = {neutralize(r["chosen"]) for r in rows}

    def logprobs(prompt):  # P(A) = 0.8 if A is the chosen answer, else 0.2
        _, a, _ = split_judge_prompt(prompt)
        return [-0.2231, -1.6094] if a in chosen else [-1.6094, -0.2231]

    summary = run(pairs_file, tmp_path, GenerativeJudge(ScriptedBackend(logprobs=logprobs), JudgeConfig(mode="no_cot")))
    assert summary["ks"] == [1] and summary["overall"]["accuracy"] == {"1": 1.0}
    assert summary["overall"]["consistency"] == {"1": 1.0}
    biased = GenerativeJudge(ScriptedBackend(logprobs=lambda p: [-0.1, -2.4]), JudgeConfig(mode="no_cot"))
    summary = run(pairs_file, tmp_path, biased, name="biased")
    assert summary["overall"]["accuracy"] == {"1": 0.5} and summary["overall"]["consistency"] == {"1": 0.0}
    with pytest.raises(ValueError, match="only K=1"):
        run(pairs_file, tmp_path, biased, name="x", ks=[1, 4])


def test_reward_model_scorers(pairs_file, rows, tmp_path, tiny_model_and_tokenizer):
    length = lambda prompts, completions, **kw: [float(len(c)) for c in completions]  # noqa: E731
    summary = run(pairs_file, tmp_path, scorer=length)
    longer = sum(1.0 if len(r["chosen"]) > len(r["rejected"]) else 0.5 if len(r["chosen"]) == len(r["rejected"]) else 0.0
                 for r in rows)
    assert summary["overall"]["accuracy"] == {"1": pytest.approx(longer / len(rows))}
    assert summary["overall"]["consistency"] == {"1": None} and summary["judge_kind"] == "reward model"
    unscorable = lambda prompts, completions, **kw: [float("nan")] * len(completions)  # noqa: E731
    summary = run(pairs_file, tmp_path, scorer=unscorable, name="nan")
    assert summary["overall"]["abstain_rate"] == {"1": 1.0} and summary["overall"]["accuracy"] == {"1": 0.5}

    from transformers import LlamaForSequenceClassification

    from genrm_plugin.evals.preference import RewardScorer
    from genrm_plugin.bt_scorer import BTScorer

    model, tokenizer = tiny_model_and_tokenizer
    config = model.config.__class__(**{**model.config.to_dict(), "num_labels": 1})
    scorer = BTScorer(LlamaForSequenceClassification(config), tokenizer, batch_size=8)
    assert isinstance(scorer, RewardScorer)
    scores = scorer(prompts=["q", "q"], completions=["short", "a longer answer"])
    assert len(scores) == 2 and all(isinstance(s, float) for s in scores)
    summary = run(pairs_file, tmp_path, scorer=scorer, name="bt", limit=8)
    expected = scorer(prompts=[r["prompt"] for r in rows[:8]] * 2,
                      completions=[r["chosen"] for r in rows[:8]] + [r["rejected"] for r in rows[:8]])
    wins = sum(1.0 if c > r else 0.5 if c == r else 0.0 for c, r in zip(expected[:8], expected[8:]))
    assert summary["pairs"] == 8 and summary["overall"]["accuracy"]["1"] == pytest.approx(wins / 8)


# -- resume ----------------------------------------------------------------------------------------
def test_resume_judges_only_missing_pairs(pairs_file, rows, tmp_path):
    script = oracle_script(rows, "110")
    full = run(pairs_file, tmp_path, GenerativeJudge(ScriptedBackend(script), JudgeConfig(k=3)), name="full",
               chunk_size=10)

    dying = ScriptedBackend(script)
    real = dying.generate

    def generate(prompts, *args, **kwargs):
        if len(dying.calls) == 4:
            raise RuntimeError("killed")
        return real(prompts, *args, **kwargs)

    dying.generate = generate
    with pytest.raises(RuntimeError, match="killed"):
        run(pairs_file, tmp_path, GenerativeJudge(dying, JudgeConfig(k=3)), chunk_size=10)
    assert len((tmp_path / "run" / "records.jsonl").read_text().splitlines()) == 40
    before = set(dying.drawn)

    fresh = ScriptedBackend(script)
    summary = run(pairs_file, tmp_path, GenerativeJudge(fresh, JudgeConfig(k=3)), chunk_size=10)
    assert not before & set(fresh.drawn) and len(fresh.drawn) == 2 * (92 - 40)
    assert summary == full

    with pytest.raises(RunFolderError, match="judge_config"):
        run(pairs_file, tmp_path, GenerativeJudge(fresh, JudgeConfig(k=5)), chunk_size=10)


# -- bad input -------------------------------------------------------------------------------------
def test_bad_input_errors(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "q", "chosen": "a", "rejected": "b"}) + "\n" + json.dumps({"prompt": "q", "chosen": "a"}) + "\n")
    judge = GenerativeJudge(always("A"), JudgeConfig(k=2))
    with pytest.raises(PreferenceDataError, match=r"bad.jsonl: line 2: missing field 'rejected'"):
        run(bad, tmp_path, judge)
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"prompt": "q", "chosen": "a", "rejected": "b"}) + "\n")
    with pytest.raises(ValueError, match="adaptive=off"):
        run(good, tmp_path, GenerativeJudge(always("A"), JudgeConfig(k=2, adaptive="cannot_flip")))
    with pytest.raises(ValueError, match="exactly one of judge"):
        run(good, tmp_path)
    with pytest.raises(ValueError, match="judge_kind"):
        PreferenceEvalConfig(judge_kind="llm")
    # the data changed under a resumed run
    run(good, tmp_path, judge, name="r")
    good.write_text(json.dumps({"prompt": "q2", "chosen": "a", "rejected": "b"}) + "\n")
    with pytest.raises(ValueError, match="record for pair 0 does not match the data"):
        run(good, tmp_path, judge, name="r")


# -- command line ----------------------------------------------------------------------------------
def test_eval_preference_cli(pairs_file, tmp_path, tiny_model_and_tokenizer, capsys):
    from transformers import LlamaForSequenceClassification

    from genrm_plugin.cli import main

    exe = shutil.which("genrm") or str(Path(sys.executable).parent / "genrm")
    out = subprocess.run(
        [exe, "eval", "preference", "--data", str(pairs_file), "--limit", "4", "--k", "2", "--max_new_tokens", "8",
         "--template", "compact", "--output_dir", str(tmp_path / "genrm")],
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr
    assert "acc maj@2" in out.stdout and "RewardBench sections" in out.stdout
    assert (tmp_path / "genrm" / "accuracy_vs_k.png").exists()

    model, tokenizer = tiny_model_and_tokenizer
    config = model.config.__class__(**{**model.config.to_dict(), "num_labels": 1})
    LlamaForSequenceClassification(config).save_pretrained(tmp_path / "bt")
    tokenizer.save_pretrained(tmp_path / "bt")
    args = ["eval", "preference", "--data", str(pairs_file), "--limit", "4", "--judge_kind", "bt"]
    assert main(args + ["--bt_model", str(tmp_path / "bt"), "--output_dir", str(tmp_path / "bt_run")]) == 0
    assert json.loads((tmp_path / "bt_run" / "summary.json").read_text())["judge_kind"] == "reward model"
    capsys.readouterr()
    assert main(args) == 2 and "needs --bt_model" in capsys.readouterr().err


def test_a_finished_evaluation_reads_back_as_a_result_object(tmp_path, pairs_file):
    """Other modules (the demo) read an evaluation through PreferenceEvaluation, not its files: the
    mean of the per-pair credits is the reported accuracy."""
    from genrm_plugin.evals.preference import PreferenceEvaluation

    assert PreferenceEvaluation.load(tmp_path / "none") is None
    summary = run(pairs_file, tmp_path, GenerativeJudge(always("A"), JudgeConfig(k=2)), name="e")
    evaluation = PreferenceEvaluation.load(tmp_path / "e")
    assert evaluation.summary == summary and evaluation.kind == "votes"
    assert [r["index"] for r in evaluation.records] == list(range(summary["pairs"]))
    for k in summary["ks"]:
        credits = evaluation.credits(int(k))
        assert sum(credits) / len(credits) == pytest.approx(summary["overall"]["accuracy"][str(k)])
