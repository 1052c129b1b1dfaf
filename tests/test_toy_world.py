"""The synthetic verifiable-preference world and the base model's corpus."""

import random
import re

import pytest

from genrm_plugin.prompts import PromptConfig, parse_verdict
from genrm_plugin.toy.world import (
    ANSWER_PATTERN, MISTAKES, Problem, answer_value, critique, digit_pairs, is_correct, judge_rationale, make_pairs,
    noisy_solution, parse_question, rationale_faithful, sample_problem, shown_answer, solution,
)


def test_solution_is_column_wise_with_carries():
    assert solution(Problem(47, 38)) == "47+38: 7+8+0=15 4+3+1=08 >085"
    assert solution(Problem(489, 133)) == "489+133: 9+3+0=12 8+3+1=12 4+1+1=06 >0622"
    assert solution(Problem(99, 99)) == "99+99: 9+9+0=18 9+9+1=19 >198"


def test_differences_borrow_column_by_column():
    """A difference column writes its borrow and digit the way a sum writes its carry and digit."""
    assert solution(Problem(85, 38, "-")) == "85-38: 5-8-0=17 8-3-1=04 >047"
    assert solution(Problem(50, 50, "-")) == "50-50: 0-0-0=00 5-5-0=00 >000"
    assert solution(Problem(85, 38, "-"), "dropped_carry", random.Random(0)) == "85-38: 5-8-0=17 8-3-0=05 >057"
    for a in range(10, 100):
        for b in range(10, a + 1):
            assert answer_value(solution(Problem(a, b, "-"))) == a - b
    assert parse_question("85-38") == Problem(85, 38, "-") and Problem(85, 38, "-").question == "85-38"
    with pytest.raises(ValueError, match="a >= b"):
        Problem(38, 85, "-")
    with pytest.raises(ValueError, match="world question"):
        parse_question("38-85")


@pytest.mark.parametrize("split, width", [("id", 3), ("ood", 3), ("long", 4)])
def test_results_have_a_fixed_width_per_split(split, width):
    """Every result of a split, right or flawed, has the same number of digits (fixed offsets for a tiny model)."""
    rng = random.Random(0)
    for _ in range(500):
        problem = sample_problem(rng, split)
        for mistake in (None, *MISTAKES):
            assert len(shown_answer(solution(problem, mistake, rng))) == width


@pytest.mark.parametrize("split", ["id", "ood", "long"])
def test_every_mistake_gives_a_wrong_result(split):
    rng = random.Random(0)
    for _ in range(2000):
        problem = sample_problem(rng, split)
        assert answer_value(solution(problem)) == problem.answer
        for mistake in MISTAKES:
            flawed = solution(problem, mistake, rng)
            assert answer_value(flawed) != problem.answer, (problem, mistake, flawed)
            assert not is_correct(problem.question, flawed)


def test_dropped_carry_drops_a_carry():
    flawed = solution(Problem(47, 38), "dropped_carry", random.Random(0))
    assert flawed == "47+38: 7+8+0=15 4+3+0=07 >075"
    with pytest.raises(ValueError, match="mistake"):
        solution(Problem(1, 2), "typo")


def test_noisy_solution_error_rate():
    rng = random.Random(1)
    results = [noisy_solution(Problem(47, 38), rng, 0.3) for _ in range(2000)]
    flawed = [m for _, m in results if m is not None]
    assert 500 < len(flawed) < 700
    assert all(is_correct("47+38", text) == (m is None) for text, m in results)


def test_pairs_splits_mistakes_and_noise():
    ids = make_pairs(600, "id", seed=1)
    assert all(10 <= p.problem.a <= 99 and p.chosen == solution(p.problem) for p in ids)
    assert not any(is_correct(p.problem.question, p.rejected) for p in ids)
    assert {p.mistake for p in ids} == set(MISTAKES)
    ood = make_pairs(50, "ood", seed=1)
    assert all(p.problem.op == "-" and 10 <= p.problem.b <= p.problem.a <= 99 for p in ood)
    assert not any(is_correct(p.problem.question, p.rejected) for p in ood)
    long = make_pairs(50, "long", seed=1)
    assert all(p.problem.op == "+" and 100 <= p.problem.a <= 999 for p in long)
    assert {p.mistake for p in make_pairs(30, "id", seed=1, mistakes=("copy_slip",))} == {"copy_slip"}
    noisy = make_pairs(1000, "id", seed=2, label_noise=0.2)
    flipped = [p for p in noisy if p.noisy]
    assert 150 < len(flipped) < 250
    assert all(not is_correct(p.problem.question, p.chosen) for p in flipped)
    assert make_pairs(20, "id", seed=3) == make_pairs(20, "id", seed=3)
    with pytest.raises(ValueError, match="split"):
        make_pairs(1, "weird")
    with pytest.raises(ValueError, match="label_noise"):
        make_pairs(1, "id", label_noise=0.5)


def test_rationale_checks_each_candidate_and_ends_in_the_verdict():
    p = Problem(47, 38)
    right, wrong = solution(p), solution(p, "dropped_carry", random.Random(0))
    r = judge_rationale(p, right, wrong)
    assert r == ("Q: 47+38: 7+8+0=15 4+3+1=08 >085\n"
                 "A: 085 085 00y 88y 55y Y.\n"
                 "B: 075 085 00y 78n 55y N.\n[[A]]")
    # what the judge is shown: the stated result only; none -> N; a short result is compared right-aligned
    assert judge_rationale(p, "so >85", "the sum is 85") == (
        "Q: 47+38: 7+8+0=15 4+3+1=08 >085\nA: 85 085 00y 88y 55y Y.\nB: none 085 N.\n[[A]]")
    assert parse_verdict(r) == "A" and rationale_faithful(p, r)
    assert parse_verdict(judge_rationale(p, wrong, right)) == "B"
    assert critique(p, right, wrong) == r.rsplit("\n[[", 1)[0] and parse_verdict(critique(p, right, wrong)) is None


def test_the_judge_is_shown_the_final_answer_only():
    assert shown_answer(solution(Problem(47, 38))) == "085" and shown_answer("no result") == "" and shown_answer("") == ""
    assert PromptConfig(answer_pattern=ANSWER_PATTERN).shown_answer(solution(Problem(47, 38))) == "085"  # the same rule
    assert digit_pairs("085", "075") == "00y 87n 55y" and digit_pairs("1", "11") == "01n 11y"
    assert digit_pairs("085", "084") == "00y 88y 54n"  # the docstring example


def test_rationale_lines_tokenize_like_the_judge_prompt():
    """Each check line starts with the tokens the tiny judge prompt puts before that candidate."""
    from genrm_plugin.toy import build_tokenizer
    from genrm_plugin.toy.corpus import check_prompt

    tok = build_tokenizer(vocab_size=512)
    p = Problem(47, 38)
    right, wrong = solution(p), solution(p, "sum_slip", random.Random(0))
    prompt = check_prompt(tok, p.question, right, wrong)
    assert f"A: 085\nB: {shown_answer(wrong)}\nQ: 47+38 check" in prompt  # final answers only
    prompt_ids = tok(prompt, add_special_tokens=False).input_ids
    rationale_ids = tok(judge_rationale(p, right, wrong), add_special_tokens=False).input_ids
    b_line = tok("\nB: " + shown_answer(wrong), add_special_tokens=False).input_ids
    assert _contains(prompt_ids, b_line) and _contains(rationale_ids, b_line)


def _contains(seq, sub):
    return any(seq[i : i + len(sub)] == sub for i in range(len(seq) - len(sub) + 1))


def test_an_unfaithful_rationale_can_still_reach_the_right_verdict():
    """A flawed recomputation marks both candidates N and falls back to A: right by luck, and unfaithful."""
    p = Problem(47, 38)
    right, wrong = solution(p), solution(p, "dropped_carry", random.Random(0))
    lucky = judge_rationale(p, right, wrong, worked="47+38: 7+8+0=15 4+3+1=09 >095")
    assert parse_verdict(lucky) == "A" and not rationale_faithful(p, lucky)
    assert not rationale_faithful(p, "") and not rationale_faithful(p, "no result here [[A]]")
    skipped = "A: 085 085 00y 88y 55y Y.\nB: 075 085 00y 78n 55y N.\n[[A]]"  # no recomputation
    assert parse_verdict(skipped) == "A" and not rationale_faithful(p, skipped)


def test_parse_question():
    assert parse_question(" 12+34 ") == Problem(12, 34)
    with pytest.raises(ValueError, match="world question"):
        parse_question("12*34")


def test_base_corpus_rows():
    from genrm_plugin.toy import build_tokenizer
    from genrm_plugin.toy.corpus import base_corpus

    tok = build_tokenizer(vocab_size=512)
    rows = base_corpus(tok, 400, seed=0, error_rate=0.2, check_share=0.5)
    checks = [r for r in rows if r["prompt"].endswith(" check<|end|><|assistant|>")]
    solves = [r for r in rows if r not in checks]
    assert 150 < len(checks) < 250 and solves
    assert all(" >" in r["completion"] for r in rows)  # column-wise traces: the policy works its answer out
    assert all(r["completion"].startswith(_question(r["prompt"]) + ": ") for r in solves)
    assert all(r["completion"].startswith("Q: " + _question(r["prompt"]) + ": ") for r in checks)
    assert all(parse_verdict(r["completion"]) is None for r in checks)  # the judging protocol is not taught
    assert all(re.search(r"A: \d+\nB: \d+\nQ: ", r["prompt"]) for r in checks)  # final answers only
    assert all("[[" not in r["completion"] for r in rows)
    wrong = sum(not is_correct(_question(r["prompt"]), r["completion"]) for r in solves)
    assert 0.1 * len(solves) < wrong < 0.3 * len(solves)
    unfaithful = sum(not rationale_faithful(parse_question(_question(r["prompt"])), r["completion"]) for r in checks)
    assert 0.1 * len(checks) < unfaithful < 0.3 * len(checks)  # a sloppy checker too
    families = {(len(re.split(r"[+-]", _question(r["prompt"]))[0]), "-" in _question(r["prompt"])) for r in rows}
    assert families == {(2, False), (2, True), (3, False)}  # every split: the base knows the OOD skills too
    assert all(len(re.split(r"[+-]", _question(r["prompt"]))[0]) == 2 for r in rows if "-" in _question(r["prompt"]))
    with pytest.raises(ValueError, match="error_rate"):
        base_corpus(tok, 1, error_rate=1.0)
    with pytest.raises(ValueError, match="check_share"):
        base_corpus(tok, 1, check_share=1.5)


def _question(prompt: str) -> str:
    return re.search(r"(?:Q: |<\|user\|>)(\d+[+-]\d+)", prompt).group(1)


def test_rationale_checks_out_verifies_every_step():
    from genrm_plugin.toy.world import rationale_checks_out

    p = Problem(47, 38)
    right, wrong = solution(p), solution(p, "dropped_carry", random.Random(0))
    good = judge_rationale(p, right, wrong)
    assert rationale_checks_out(p.question, right, wrong, good)
    garbled = good.replace("B: 075 085 00y 78n", "B: 075 085 00y 77y")  # a wrong comparison, right verdict
    assert parse_verdict(garbled) == "A" and not rationale_checks_out(p.question, right, wrong, garbled)
    lucky = judge_rationale(p, right, wrong, worked="47+38: 7+8+0=15 4+3+1=09 >095")
    assert not rationale_checks_out(p.question, right, wrong, lucky)  # unfaithful recomputation
    assert not rationale_checks_out(p.question, right, wrong, "")
