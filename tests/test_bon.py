"""best_of_n strategies with an oracle scripted judge (known answers), Bradley-Terry, the TRL
BestOfNSampler scorer, input errors, and a run with the tiny model judge."""

from __future__ import annotations

import math
import re

import pytest

from genrm_plugin.bon import QueriesToScores, best_of_n, bradley_terry
from genrm_plugin.judge import GenerativeJudge, JudgeConfig
from genrm_plugin.reward import GenRMReward, RewardConfig
from genrm_plugin.testing import ScriptedBackend, split_judge_prompt


def quality(text: str) -> int:
    return int(re.search(r"q=(\d+)", text).group(1))


def oracle_judge(k: int = 2) -> GenerativeJudge:
    """Prefers the answer with the higher ``q=N``; equal quality -> no verdict (abstain)."""

    def script(prompt, i):
        _, a, b = split_judge_prompt(prompt)
        qa, qb = quality(a), quality(b)
        return "[[A]]" if qa > qb else "[[B]]" if qb > qa else "cannot tell"

    return GenerativeJudge(ScriptedBackend(script), JudgeConfig(k=k))


def cands(*qualities: int) -> list[str]:
    return [f"answer q={q}" for q in qualities]


def test_reference_strategy_scores_against_reference():
    judge = oracle_judge()
    out = best_of_n(judge, ["p1", "p2"], [cands(1, 3, 2), cands(5, 0)], references=["ref q=2", "ref q=2"])
    assert [r.index for r in out] == [1, 0]
    assert out[0].scores == [0.0, 1.0, 0.5]  # the abstained comparison (same quality) counts as a tie
    assert out[1].scores == [1.0, 0.0]
    assert [r.comparisons for r in out] == [3, 2] and out[0].strategy == "reference"
    assert judge.backend.calls == [("generate", 10, 2)]  # 5 comparisons x 2 orders in one batch


def test_knockout_finds_the_best_with_n_minus_1_comparisons():
    judge = oracle_judge()
    qualities = [4, 1, 7, 3, 6]
    out = best_of_n(judge, ["p", "p2"], [cands(*qualities), cands(2, 9)], strategy="knockout", seed=3)
    assert out[0].index == 2 and out[1].index == 1
    assert out[0].comparisons == 4 and out[1].comparisons == 1
    assert sum(out[0].scores) == 4  # one win per match
    assert out[0].scores[2] == max(out[0].scores) and out[0].scores[1] == 0
    assert len(judge.backend.calls) == 3  # ceil(log2 5) rounds, both prompts batched per round


def test_round_robin_copeland_and_bradley_terry_rank_by_quality():
    qualities = [3, 8, 1, 5]
    copeland = best_of_n(oracle_judge(), ["p"], [cands(*qualities)], strategy="round_robin")[0]
    assert copeland.index == 1 and copeland.comparisons == 6
    assert copeland.scores == [1.0, 3.0, 0.0, 2.0]
    bt = best_of_n(oracle_judge(), ["p"], [cands(*qualities)], strategy="round_robin", aggregation="bradley_terry")[0]
    assert bt.index == 1
    assert sorted(range(4), key=bt.scores.__getitem__) == sorted(range(4), key=qualities.__getitem__)
    assert sum(bt.scores) == pytest.approx(0.0, abs=1e-9)


def test_bradley_terry_recovers_known_strengths():
    # P(a beats b) = s_a / (s_a + s_b) with strengths 1, 2, 4
    s = [1.0, 2.0, 4.0]
    p = [[s[a] / (s[a] + s[b]) if a != b else 0.5 for b in range(3)] for a in range(3)]
    logs = bradley_terry(p, prior=0.0)
    assert logs[1] - logs[0] == pytest.approx(math.log(2), rel=1e-4)
    assert logs[2] - logs[0] == pytest.approx(math.log(4), rel=1e-4)
    assert bradley_terry([[0.5]]) == [0.0]


def test_ties_are_broken_by_seed_not_position():
    judge = oracle_judge()
    picks = {best_of_n(judge, ["p"], [cands(2, 2, 2, 2)], references=["r q=2"], seed=s)[0].index for s in range(12)}
    assert len(picks) > 1
    again = [best_of_n(judge, ["p"], [cands(2, 2, 2, 2)], strategy="knockout", seed=5)[0].index for _ in range(2)]
    assert again[0] == again[1]


def test_single_candidate_and_bad_input():
    judge = oracle_judge()
    assert best_of_n(judge, ["p"], [cands(1)], strategy="knockout")[0].index == 0
    assert best_of_n(judge, ["p"], [cands(1)], strategy="round_robin")[0].comparisons == 0
    with pytest.raises(ValueError, match="strategy must be one of"):
        best_of_n(judge, ["p"], [cands(1)], strategy="best")
    with pytest.raises(ValueError, match="needs references"):
        best_of_n(judge, ["p"], [cands(1, 2)])
    with pytest.raises(ValueError, match=r"candidates\[1\] must be a non-empty list"):
        best_of_n(judge, ["p", "p"], [cands(1), []], strategy="knockout")
    with pytest.raises(TypeError, match=r"candidates\[0\]\[1\] must be a string"):
        best_of_n(judge, ["p"], [["a", None]], strategy="knockout")
    with pytest.raises(ValueError, match=r"prompts \(2\) and candidates \(1\)"):
        best_of_n(judge, ["p", "q"], [cands(1)], strategy="knockout")


def test_queries_to_scores_for_bestofn_sampler():
    reward = GenRMReward(oracle_judge(), RewardConfig(mapping="centered"))
    scorer = QueriesToScores(reward, ["Q: add", "Q: add more"], references=["q=2", "q=5"])
    # longest matching prompt wins: "Q: add more ..." belongs to the second prompt
    assert scorer(["Q: add q=3", "Q: add more q=3", "Q: add q=2"]) == [1.0, -1.0, 0.0]
    with pytest.raises(ValueError, match=r"queries\[0\] does not start with any of the 2 known prompts"):
        scorer(["unknown q=1"])


def test_best_of_n_with_tiny_model_judge(tiny_backend):
    judge = GenerativeJudge(tiny_backend, JudgeConfig(mode="no_cot", template="compact"))
    for strategy in ("reference", "knockout", "round_robin"):
        out = best_of_n(judge, ["What is 2+3?"], [["5", "6", "2+3=5"]], strategy=strategy, references=["5"])
        assert 0 <= out[0].index < 3 and len(out[0].scores) == 3
        assert all(math.isfinite(s) for s in out[0].scores)


def beats_table_judge(beats: set[tuple[str, str]]) -> GenerativeJudge:
    """A judge that knows who beats whom by the ``x=N`` answer (pairs not listed: no verdict)."""

    def answer(text: str) -> str:
        return re.search(r"x=(\d+)", text).group(1)

    def script(prompt, i):
        _, a, b = split_judge_prompt(prompt)
        pa, pb = answer(a), answer(b)
        return "[[A]]" if (pa, pb) in beats else "[[B]]" if (pb, pa) in beats else "no idea"

    return GenerativeJudge(ScriptedBackend(script), JudgeConfig(k=1))


def test_round_robin_counts_repeated_answers_once():
    # 12 copies of the right answer 49; the wrong 41 beats it once by judge error and loses to the rest.
    beats = {("41", "49"), ("49", "40"), ("49", "48"), ("40", "41"), ("48", "41"), ("40", "48")}
    candidates = [f"work {i} x=49" for i in range(12)] + ["x=41", "x=40", "x=48"]
    key = lambda text: re.search(r"x=(\d+)", text).group(1)  # noqa: E731 - the final answer
    out = best_of_n(beats_table_judge(beats), ["p"], [candidates], strategy="round_robin", answer_key=key)[0]
    assert candidates[out.index].endswith("x=49")
    assert out.comparisons == 6  # 4 distinct answers, each pair once
    assert out.multiplicity[:12] == [12] * 12 and out.multiplicity[12:] == [1, 1, 1]
    assert out.scores[0] == out.scores[11] == 2.0 and out.scores[12] == 1.0  # 41: one win, not one per copy
    # without grouping by answer the copies are distinct texts: the lone 41 collects a win per copy
    plain = best_of_n(beats_table_judge(beats), ["p"], [candidates], strategy="round_robin")[0]
    assert candidates[plain.index] == "x=41"


def test_knockout_ties_go_to_the_repeated_answer():
    candidates = ["x=7"] * 5 + ["x=3"]  # the judge cannot separate them (abstains)
    for seed in range(6):
        out = best_of_n(beats_table_judge(set()), ["p"], [candidates], strategy="knockout", seed=seed)[0]
        assert candidates[out.index] == "x=7" and out.comparisons == 1
