"""MATH500 answer grading: extraction policies, the copied-expression guard, ``\\text``/unit
normalisation, clipped intervals, and the reference solutions of the fixture (and of the full set
when ``../shared`` is present) grading correct.
"""

from __future__ import annotations

import json
import re

import pytest

from genrm_plugin.evals.grading import (
    copied_from_problem,
    equivalent,
    extract_answer,
    extract_boxed,
    grade_pool,
    parse_answer,
    text_answer,
)
from genrm_plugin.evals.intervals import mean_ci

WRONG = "7919"


def corrupt(solution: str, value: str = WRONG) -> str:
    """The solution with its last boxed answer replaced by ``value``."""
    cut = solution.rfind("\\boxed")
    return solution[:cut] + "\\boxed{" + value + "}."


def read_rows(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def math_rows(eval_data):
    return read_rows(eval_data / "math500" / "test.jsonl")


def row(rows, unique_id):
    return next(r for r in rows if r["unique_id"] == unique_id)


# -- extraction ------------------------------------------------------------------------------------
def test_extract_boxed_forms():
    assert extract_boxed(r"so \boxed{\frac{1}{2}} and then \boxed{x^{2}}.") == "x^{2}"
    assert extract_boxed(r"\fbox{7}") == "7"
    assert extract_boxed(r"the answer is \boxed 5.") == "5"
    assert extract_boxed(r"\boxed{} nothing inside") is None
    assert extract_boxed("no box at all") is None and extract_boxed(None) is None
    assert extract_boxed(r"unclosed \boxed{3") is None


@pytest.mark.parametrize(
    "text, answer, source",
    [
        ("The final answer is 143", "143", "answer_phrase"),
        ("**Answer:** 1", "1", "answer_phrase"),
        ("Answer: $\\frac{3}{4}$", "\\frac{3}{4}", "answer_phrase"),
        ("so the answer is $x^2+1$.", "x^2+1", "answer_phrase"),
        (r"We find $\boxed{12}$, so the final answer is 13", "12", "boxed"),  # a box wins over any phrase
        ("First 5, then 7 and then $\\dfrac{4}{5}$ remains.", "\\frac{4}{5}", "last_expression"),
        ("We get 5 and then 7.", "7", "last_expression"),
        ("I could not finish this one.", None, None),
    ],
)
def test_extraction_policies(text, answer, source):
    lenient = extract_answer(text)  # the default policy
    assert (lenient.text, lenient.source) == (answer, source) if answer else lenient is None
    boxed = extract_answer(text, "boxed")
    assert (boxed.text if boxed else None) == (answer if source == "boxed" else None)
    with pytest.raises(ValueError, match=r"answer_extraction must be one of \['boxed', 'lenient'\], got 'loose'"):
        extract_answer(text, "loose")


def test_unboxed_answers_count_only_under_lenient():
    candidates = ["The final answer is 143", "**Answer:** 143", r"Thus $\boxed{143}$.", "It is 144.", "No idea."]
    lenient = grade_pool("143", candidates)
    assert lenient.correct == [True, True, True, False, False]
    assert lenient.sources == ["answer_phrase", "answer_phrase", "boxed", "last_expression", None]
    assert lenient.classes == [0, 0, 0, 1, None] and lenient.no_answer == 1 and lenient.no_boxed == 4
    boxed = grade_pool("143", candidates, policy="boxed")
    assert boxed.correct == [False, False, True, False, False] and boxed.answers == [None, None, "143", None, None]
    assert boxed.classes == [None, None, 0, None, None] and boxed.no_answer == 4
    assert lenient.correct_by_policy == boxed.correct_by_policy == {"boxed": boxed.correct, "lenient": lenient.correct}


# -- copied-expression guard -----------------------------------------------------------------------
def test_expressions_copied_from_compute_problems_are_wrong(math_rows):
    squares = row(math_rows, "test/algebra/2592.json")  # What is the value of $513^2 - 487^2$?  (26000)
    binom = row(math_rows, "test/counting_and_probability/116.json")  # Compute $\dbinom{31}{28}$.  (4495)
    for r, copy in ((squares, "513^2-487^2"), (binom, r"\dbinom{31}{28}")):
        assert equivalent(parse_answer(r["answer"]), parse_answer(copy))  # math-verify alone: correct
        graded = grade_pool(r["answer"], [corrupt(r["solution"], copy), r["solution"], f"The answer is ${copy}$."],
                            problem=r["problem"])
        assert graded.correct == [False, True, False] and graded.copied == [True, False, True], r["unique_id"]
        assert graded.classes[0] != graded.classes[1]  # a copy does not vote with the evaluated answer
        assert grade_pool(r["answer"], [corrupt(r["solution"], copy)]).correct == [True]  # no problem: no guard
    # the same expression in other spellings and spacings is still a copy
    assert copied_from_problem("513^{2} - 487^{2}", squares["problem"], "26000")
    assert copied_from_problem(r"\binom{31}{28}", binom["problem"], "4495")
    assert not copied_from_problem(r"\binom{31}{3}", binom["problem"], "4495")  # rewritten: allowed
    assert not copied_from_problem("26000", squares["problem"], "26000")


def test_copied_expression_equal_to_the_gold_as_written_is_right():
    problem = r"Simplify $\frac{x^2-1}{x-1}$ and write it in the form $x+1$ for $x \neq 1$."
    graded = grade_pool("x+1", [r"\boxed{x + 1}", r"\boxed{\frac{x^2-1}{x-1}}"], problem=problem)
    assert graded.correct == [True, False] and graded.copied == [False, True]
    assert grade_pool(r"\frac12", [r"\boxed{\dfrac{1}{2}}"], problem=r"If $p=\frac{1}{2}$ ...").correct == [True]
    # a plain number from the statement is not a copy, nor is a piece of a longer number
    assert grade_pool("5", [r"\boxed{5}"], problem="There are 5 apples and 3 pears; 2 are eaten.").correct == [True]
    assert not copied_from_problem("3^2", "Find $13^2$.", "169")


# -- \text and units -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "gold, answer",
    [
        (r"\text{A,D}", "A,D"),
        (r"\text{A, D}", r"\text{A,D}"),
        (r"\text{(C)}", "C"),
        (r"\text{Evelyn}", "Evelyn"),
        ("12", r"12 \text { square inches}"),
        ("12", r"12\text{ square inches}"),
        (r"5.4 \text{ cents}", "5.4"),
        (r"864 \mbox{ inches}^2", r"864 \text{ square inches}"),
        (r"\frac{270}7\text{ degrees}", r"\frac{270}{7}"),
    ],
)
def test_text_and_units_are_normalised_symmetrically(gold, answer):
    for g, a in ((gold, answer), (answer, gold)):
        assert grade_pool(g, [rf"\boxed{{{a}}}"]).correct == [True], (g, a)
    assert grade_pool(gold, [r"\boxed{\text{B,D}}", r"\boxed{13}"]).correct == [False, False]


def test_text_answers_compare_as_text():
    assert text_answer(r"\text{A, D}") == text_answer("a,d") == "a,d"
    assert text_answer(r"\text{(E)}") == "e" and text_answer(r"\text{even}") == "even"
    assert text_answer("x+1") is None and text_answer(r"\frac{1}{2}") is None
    assert grade_pool(r"\text{Evelyn}", [r"\boxed{Neyvle}"]).correct == [False]  # not a product of symbols


def test_fixture_text_answers_grade_bare_and_with_other_units(math_rows):
    texts = [r for r in math_rows if "\\text" in r["answer"] or "\\mbox" in r["answer"]]
    assert len(texts) == 12  # words, choices and units
    for r in texts:
        if text_answer(r["answer"]) is not None:  # \text{Evelyn} -> Evelyn, \text{(C)} -> C
            variants = [re.sub(r"\\text\{\(?([^{}()]*)\)?\}", r"\1", r["answer"])]
        else:  # 5.4 \text{ cents} -> 5.4 and 5.4 \text { units}
            value = re.sub(r"\s*\\(?:text|mbox)\s*\{[^{}]*\}(?:\^2)?", "", r["answer"])
            variants = [value, value + r" \text { units}"]
        assert all(v != r["answer"] for v in variants)
        candidates = [rf"\boxed{{{v}}}" for v in variants] + [corrupt(r["solution"])]
        graded = grade_pool(r["answer"], candidates, problem=r["problem"])
        assert graded.correct == [True] * len(variants) + [False], (r["unique_id"], variants)


# -- intervals -------------------------------------------------------------------------------------
def test_mean_ci_is_clipped_to_the_range_of_shares():
    mean, low, high = mean_ci([1.0] * 19 + [0.0], 0.95)
    assert mean == 0.95 and high == 1.0 and 0.85 < low < 0.95
    assert mean_ci([1.0] * 19 + [0.0], 0.95, bounds=None)[2] > 1.0  # what it would have shown: > 100%
    assert mean_ci([0.0] * 19 + [1.0], 0.95)[1] == 0.0
    assert mean_ci([0.5, 0.5, 0.5])[1:] == (0.5, 0.5)


# -- reference solutions ---------------------------------------------------------------------------
def check_reference_solutions(rows, span_timeout: int = 5) -> int:
    """Every reference solution grades correct and is no copy; a copy with a wrong box is wrong, one
    without its box counts only under ``lenient``, and no ``$...$`` span of the statement other
    than the gold answer grades correct. Returns the number of problems where such a span would
    have been graded correct without the guard."""
    caught = 0
    for r in rows:
        sol = r["solution"]
        candidates = [sol, corrupt(sol), sol.replace("\\boxed", ""), "I could not finish this one."]
        graded = grade_pool(r["answer"], candidates, problem=r["problem"])
        for policy, correct in graded.correct_by_policy.items():
            assert correct[:2] == [True, False] and not graded.copied[0], (r["unique_id"], policy)
        assert graded.sources[2] != "boxed" and not graded.correct_by_policy["boxed"][2]
        assert graded.answers[3] is None and graded.classes[3] is None
        spans = sorted({s.strip() for s in re.findall(r"\$([^$]+)\$", r["problem"])} - {r["answer"], ""})
        unguarded = grade_pool(r["answer"], [rf"\boxed{{{s}}}" for s in spans], timeout=span_timeout)
        copies = [s for s, ok in zip(spans, unguarded.correct) if ok]
        assert all(copied_from_problem(s, r["problem"], r["answer"]) for s in copies), (r["unique_id"], copies)
        caught += bool(copies)
    return caught


def test_fixture_reference_solutions_grade_correct(math_rows):
    assert len(math_rows) == 59
    assert check_reference_solutions(math_rows, span_timeout=1) >= 2  # 513^2 - 487^2 and \dbinom{31}{28} at least


@pytest.mark.slow
def test_full_math500_reference_solutions_grade_correct(full_math500):
    """All 500 problems (about 2 minutes on 2 cores): copied spans verify on 29 problems."""
    rows = read_rows(full_math500)
    assert len(rows) == 500
    assert check_reference_solutions(rows) == 29


def test_grading_works_off_the_main_thread(math_rows):
    from concurrent.futures import ThreadPoolExecutor

    rows = math_rows[:8]
    with ThreadPoolExecutor(2) as pool:  # math-verify's signal timeouts only work on the main thread
        graded = list(pool.map(lambda r: grade_pool(r["answer"], [r["solution"], corrupt(r["solution"])]), rows))
    assert [g.correct for g in graded] == [[True, False]] * len(rows)
