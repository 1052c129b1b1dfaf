"""A synthetic world with verifiable preferences: column-wise addition and subtraction.

The policy task is ``a+b`` or ``a-b`` (two- or three-digit operands, ``a >= b``), answered by
working it out: a column-wise trace, units first, with explicit carries (borrows), ending in the
result written at a fixed width (one digit more than the operands): ``47+38: 7+8+0=15 4+3+1=08
>085``, ``85-38: 5-8-0=17 8-3-1=04 >047`` (:func:`solution`; a column writes ``carry digit``: the
``1`` of ``17`` is the borrow from the next column).
An answer's result is its last number (:func:`answer_value`), so answers are checkable exactly,
and so are preference pairs, judge rationales and their faithfulness.

* Mistakes (:data:`MISTAKES`) are the ones a sloppy solver makes: a dropped carry, a column sum
  off by one, or a slip when copying the result. A flawed trace carries its mistake through, so
  its result is wrong (:func:`solution` with ``mistake=``).
* Preference pairs (:func:`make_pairs`): a correct answer vs a flawed one, optional label noise
  standing for annotator disagreement. Splits (:data:`SPLITS`): ``id`` (2-digit sums: all the
  judges' preference data), ``ood`` (2-digit differences: a skill family the base model knows
  from its corpus but no judge training row shows -- transfer of reasoning) and ``long``
  (3-digit sums: longer inputs, length generalisation).
* The judges are shown each candidate's final answer only (:data:`ANSWER_PATTERN`, their
  ``answer_pattern``). Judge rationales (the seed "teacher critiques"): the recomputed trace,
  then per candidate its answer, the recomputed result and the two compared digit by digit, then
  the verdict, one per line (:func:`judge_rationale`).

* :func:`rationale_faithful` checks a rationale's intermediate result, not just its verdict.

Why this shape (measured on the demo's tiny base model): copying whole candidate traces out of
the prompt failed (the model copied its own recomputation instead), and so did a one-step
``85=85 Y`` equality of multi-digit numbers (no better than chance). Fixed-width results put
every copied digit at a fixed offset (copies: 99-100% right), and comparing digit pairs
(``88y 54n``) is what a small model learns fastest.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from genrm_plugin.prompts import PromptConfig, verdict_text

# split -> (digits of a, digits of b, operation)
SPLITS = {"id": (2, 2, "+"), "ood": (2, 2, "-"), "long": (3, 3, "+")}
OPERATIONS = ("+", "-")
MISTAKES = ("dropped_carry", "sum_slip", "copy_slip")
# What the judges are shown of a candidate: its stated result (see PromptConfig.answer_pattern).
ANSWER_PATTERN = r">(\d+)\s*$"


@dataclass(frozen=True)
class Problem:
    """``a op b`` with ``op`` in :data:`OPERATIONS` (differences keep ``a >= b``)."""

    a: int
    b: int
    op: str = "+"

    def __post_init__(self) -> None:
        if self.op not in OPERATIONS:
            raise ValueError(f"Problem.op must be one of {OPERATIONS}, got {self.op!r}")
        if self.op == "-" and self.a < self.b:
            raise ValueError(f"Problem: a difference needs a >= b, got {self.a}-{self.b}")

    @property
    def question(self) -> str:
        return f"{self.a}{self.op}{self.b}"

    @property
    def answer(self) -> int:
        return self.a + self.b if self.op == "+" else self.a - self.b


@dataclass(frozen=True)
class WorldPair:
    """A preference pair of answers: ``chosen`` is the correct one unless noise flipped the label."""

    problem: Problem
    chosen: str
    rejected: str
    mistake: str
    noisy: bool = False


def sample_problem(rng: random.Random, split: str = "id") -> Problem:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {tuple(SPLITS)}, got {split!r}")
    da, db, op = SPLITS[split]
    a, b = rng.randint(10 ** (da - 1), 10**da - 1), rng.randint(10 ** (db - 1), 10**db - 1)
    return Problem(*((max(a, b), min(a, b)) if op == "-" else (a, b)), op)


def _columns(problem: Problem) -> list[tuple[int, int]]:
    a, b = str(problem.a)[::-1], str(problem.b)[::-1]
    return [(int(a[i]) if i < len(a) else 0, int(b[i]) if i < len(b) else 0) for i in range(max(len(a), len(b)))]


def solution(problem: Problem, mistake: str | None = None, rng: random.Random | None = None) -> str:
    """The column-wise trace ``47+38: 7+8+0=15 4+3+1=08 >085``; with ``mistake``, a flawed one.

    A column writes ``x op y op carry`` and a two-digit ``s``: its result digit and the carry
    into the next column (``s = 10 * carry + digit``; for a difference the carry is the borrow).

    The trace restates the question first: the columns are then read at a fixed offset from it,
    wherever the question sits in a longer prompt (what lets a tiny model recompute inside a
    judge prompt).

    ``dropped_carry`` forgets a carry into the next column, ``sum_slip`` writes one column sum off
    by one, ``copy_slip`` gets the trace right and miscopies one digit of the result. The mistake
    propagates, and the flawed result always differs from the true sum. ``rng`` picks where.
    """
    if mistake is not None and mistake not in MISTAKES:
        raise ValueError(f"mistake must be one of {MISTAKES} or None, got {mistake!r}")
    rng = rng or random.Random(0)
    columns = _columns(problem)
    carries = _carry_columns(problem)
    if mistake == "dropped_carry" and not carries:
        mistake = "sum_slip"  # no carry to drop
    where = rng.choice(carries if mistake == "dropped_carry" else range(len(columns)))
    slip = rng.choice((-1, 1))
    carry, steps, digits = 0, [], []
    for i, (x, y) in enumerate(columns):
        if mistake == "dropped_carry" and i == where:
            carry = 0
        s = _column(x, y, carry, problem.op)
        if mistake == "sum_slip" and i == where:
            s = s + slip if 0 <= s + slip <= 19 else s - slip
        steps.append(f"{x}{problem.op}{y}{problem.op}{carry}={s:02d}")
        digits.append(s % 10)
        carry = s // 10
    result = int(str(carry) + "".join(str(d) for d in reversed(digits))) if carry else int("".join(str(d) for d in reversed(digits)))
    if mistake == "copy_slip" or (mistake is not None and result == problem.answer):
        result = _slip(result, rng)
    width = len(columns) + 1  # room for the final carry: every result of a split has the same length
    return f"{problem.question}: {' '.join(steps)} >{result:0{width}d}"


def _column(x: int, y: int, carry: int, op: str) -> int:
    """A column's ``s = 10 * carry_out + digit``: ``x + y + carry``, or ``x - y - borrow`` (borrowing 10)."""
    if op == "+":
        return x + y + carry
    d = x - y - carry
    return d if d >= 0 else 10 + (d + 10)


def _carry_columns(problem: Problem) -> list[int]:
    """Columns that receive a carry (a borrow) in the correct trace."""
    carry, receiving = 0, []
    for i, (x, y) in enumerate(_columns(problem)):
        if carry:
            receiving.append(i)
        carry = _column(x, y, carry, problem.op) // 10
    return receiving


def _slip(value: int, rng: random.Random) -> int:
    digits = list(str(value))
    i = rng.randrange(len(digits))
    choices = [d for d in "0123456789" if d != digits[i] and not (i == 0 and d == "0" and len(digits) > 1)]
    digits[i] = rng.choice(choices)
    return int("".join(digits))


def noisy_solution(problem: Problem, rng: random.Random, error_rate: float) -> tuple[str, str | None]:
    """A trace that is flawed with probability ``error_rate``; returns (text, mistake or None)."""
    mistake = rng.choice(MISTAKES) if rng.random() < error_rate else None
    return solution(problem, mistake, rng), mistake


def make_pairs(n: int, split: str = "id", seed: int = 0, label_noise: float = 0.0,
               mistakes: tuple[str, ...] = MISTAKES) -> list[WorldPair]:
    """``n`` preference pairs (correct vs flawed trace); with probability ``label_noise`` the label flips."""
    if not 0 <= label_noise < 0.5:
        raise ValueError(f"label_noise must be in [0, 0.5), got {label_noise}")
    rng = random.Random(f"pairs|{split}|{seed}")
    pairs = []
    for i in range(n):
        problem = sample_problem(rng, split)
        mistake = mistakes[i % len(mistakes)]
        if mistake == "dropped_carry" and not _carry_columns(problem):
            mistake = "sum_slip"  # nothing to drop
        right, wrong = solution(problem), solution(problem, mistake, rng)
        noisy = rng.random() < label_noise
        pairs.append(WorldPair(problem, wrong if noisy else right, right if noisy else wrong, mistake, noisy))
    return pairs


def answer_value(answer: str) -> int | None:
    """The result an answer (or trace) states: its last integer."""
    numbers = re.findall(r"\d+", answer or "")
    return int(numbers[-1]) if numbers else None


def prompt_config(template: str = "tiny") -> PromptConfig:
    """The world's judge prompt: ``template`` and the candidates' final answers (:data:`ANSWER_PATTERN`)."""
    return PromptConfig(template=template, answer_pattern=ANSWER_PATTERN)


def shown_answer(answer: str) -> str:
    """What a judge with :data:`ANSWER_PATTERN` is shown of ``answer`` ("" when it states no result):
    the judges' own rule, :meth:`~genrm_plugin.prompts.PromptConfig.shown_answer`."""
    return prompt_config().shown_answer(answer or "")


def digit_pairs(candidate: str, result: str) -> str:
    """``candidate`` and ``result`` compared digit by digit, right-aligned: ``("085", "084")`` -> ``00y 88y 54n``."""
    width = max(len(candidate), len(result))
    return " ".join(f"{c}{r}{'y' if c == r else 'n'}" for c, r in zip(candidate.rjust(width, "0"), result.rjust(width, "0")))


def judge_rationale(problem: Problem, answer_a: str, answer_b: str, worked: str | None = None) -> str:
    """A rationale: the recomputed trace ``worked`` (default: the correct one), then for each
    candidate its shown answer, the recomputed result, their digit-by-digit comparison and a
    ``Y``/``N`` mark, then the verdict (the candidate that matches; ties go to A)::

        Q: 47+38: 7+8+0=15 4+3+1=08 >085
        A: 085 085 00y 88y 55y Y.
        B: 075 085 00y 78n 55y N.
        [[A]]

    One line each, written ``Q: ...``, ``A: ...``, ``B: ...`` as the judge prompt writes the
    question and the candidates. (The ``Q:`` also tells the recomputation apart from a policy
    answer, which ends after the same trace.) A candidate without a result is ``none`` and ``N``.
    """
    worked = worked or solution(problem)
    total = shown_answer(worked)

    def check(name: str, text: str) -> tuple[str, bool]:
        shown = shown_answer(text)
        if not shown:
            return f"{name}: none {total} N.", False
        ok = int(shown) == int(total)
        return f"{name}: {shown} {total} {digit_pairs(shown, total)} {'Y' if ok else 'N'}.", ok

    text_a, ok_a = check("A", answer_a)
    text_b, ok_b = check("B", answer_b)
    return f"Q: {worked}\n{text_a}\n{text_b}\n" + verdict_text("A" if ok_a or not ok_b else "B")


def critique(problem: Problem, answer_a: str, answer_b: str, worked: str | None = None) -> str:
    """:func:`judge_rationale` without the verdict: the checks a base model has seen, not the judging convention."""
    return judge_rationale(problem, answer_a, answer_b, worked).rsplit("\n", 1)[0]


_RECOMPUTED_RE = re.compile(r"\s*Q:[^\n]*?>(\d+)")


def rationale_faithful(problem: Problem, rationale: str) -> bool:
    """Whether the rationale's own recomputation (its first line, ``Q: ... >N``) ends in the true sum.

    Only that line counts: a rationale that skips the recomputation and just calls a candidate
    right is not faithful, whatever its verdict.
    """
    match = _RECOMPUTED_RE.match(rationale or "")
    return bool(match) and int(match.group(1)) == problem.answer


def rationale_checks_out(question: str, answer_a: str, answer_b: str, rationale: str) -> bool:
    """Whether every step of ``rationale`` holds: its recomputation is the true sum
    (:func:`rationale_faithful`) and each candidate line compares what the judge was shown with
    it correctly -- the world's STaR ``rationale_filter``
    (``"genrm_plugin.toy.world:rationale_checks_out"``). The verdict is the recipe's check."""
    problem = parse_question(question)
    if not rationale_faithful(problem, rationale):
        return False
    checks = judge_rationale(problem, answer_a, answer_b).split("\n")[1:3]
    lines = (rationale or "").split("\n")
    return lines[1:3] == checks


def parse_question(question: str) -> Problem:
    """The :class:`Problem` of a question string ``"47+38"`` or ``"85-38"``."""
    match = re.fullmatch(r"\s*(\d+)([+-])(\d+)\s*", question)
    if not match or (match.group(2) == "-" and int(match.group(1)) < int(match.group(3))):
        raise ValueError(f"not a world question: {question!r}")
    return Problem(int(match.group(1)), int(match.group(3)), match.group(2))


def is_correct(question: str, answer: str) -> bool:
    """Whether ``answer`` states the right result (see :func:`answer_value`)."""
    return answer_value(answer) == parse_question(question).answer


def answer_critique(problem: Problem, answer: str, worked: str | None = None) -> str:
    """A pointwise oracle ("teacher") critique of ONE answer: the recomputed trace, then the answer's
    shown result, the recomputed one, their digit-by-digit comparison and ``Y``/``N`` -- the first two
    lines of :func:`judge_rationale`, with no verdict (critique reward models read it, then score)::

        Q: 47+38: 7+8+0=15 4+3+1=08 >085
        A: 075 085 00y 78n 55y N.
    """
    return "\n".join(judge_rationale(problem, answer, answer, worked).split("\n")[:2])
