"""Grading math answers with ``math-verify``: answer extraction, correctness, answer classes.

**Answer extraction** (``answer_extraction`` policy):

* ``boxed``: the final answer is the content of the candidate's **last** ``\\boxed{...}`` (or
  ``\\fbox{...}``, braces matched; also ``\\boxed 5``). A candidate without one has no answer.
* ``lenient`` (default): the boxed answer when there is one; otherwise math-verify's own extraction
  targets (``LatexExtractionConfig``, ``ExprExtractionConfig``) on the whole text, first anchored
  (``final answer is ...``, ``Answer: ...``, ``**Answer:** ...``; rightmost match), then unanchored
  (the last LaTeX expression or number). Each answer records its source: ``boxed``,
  ``answer_phrase`` or ``last_expression``.

**Normalisation** (the same for the gold answer and the candidate's, so they parse alike):
``\\text {``/``\\mbox{``/``\\textbf{`` are read as ``\\text{``; a trailing unit in words
(``12 \\text { square inches}``, ``864 \\mbox{ inches}^2``) is dropped; an answer that is only text
(``\\text{A,D}``, ``A,D``, ``\\text{(C)}``, ``Evelyn``) is compared as text: letters, commas and
words, case-insensitive, without spaces or parentheses.

**Correctness**: ``math_verify.verify(parse(gold), parse(answer))`` with both normalised and wrapped
in ``\\boxed{}`` (the same LaTeX extraction for both), or text equality for text answers. **Guard**:
an answer that is an unevaluated expression copied from the problem statement (it contains an
operation such as ``+ - * / ^ ! = <``, ``\\frac``, ``\\sqrt``, ``\\binom``, ``\\cdot``, and occurs in the problem, e.g.
``\\dbinom{31}{28}`` or ``513^2-487^2`` for "compute ...", ``\\sqrt{242}`` for "simplify ...") is
graded wrong unless it equals the gold answer as written (spaces, ``$``, ``\\left``/``\\right``,
``\\dfrac``/``\\dbinom`` and ``\\frac12``/``\\frac{1}{2}`` spellings aside). A plain number copied from
the problem is not affected (it may well be the answer).

**Answer classes** (for majority voting): candidates whose answers are equal (as above, and both or
neither copied from the problem) share a class, greedy against each class's first member;
candidates without an answer have none.

``math-verify`` enforces its timeouts with ``signal.alarm``, which only works on the main thread;
off the main thread the timeouts are passed as ``None`` (as its documentation asks).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

ANSWER_EXTRACTION = ("boxed", "lenient")

_BOXED_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")
_BOXED_BARE_RE = re.compile(r"\\boxed\s+([^\s$\\{}]+)")
_TEXT_COMMAND_RE = re.compile(r"\\(?:text|textrm|textbf|textit|textnormal|mbox|mathrm)\s*\{")
_TRAILING_UNIT_RE = re.compile(  # "12 \text{ square inches}", "864 \text{ inches}^2"
    r"^(?P<value>.*?\S)\s*\\text\{\s*[A-Za-z][A-Za-z .]*\}\s*(?:\^\s*\{?\s*[23]\s*\}?)?\s*\.?$"
)
_TEXT_ANSWER_RE = re.compile(r"^[A-Za-z][A-Za-z ]*(?:\s*,\s*[A-Za-z][A-Za-z ]*)*$")
_OPERATION_RE = re.compile(
    r"(?<=.)-|[+*/^!=<>]"
    r"|\\(?:binom|choose|frac|sqrt|cdot|times|div|pm|sum|prod|log|ln|sin|cos|tan|le|leq|ge|geq|ne|neq)(?![A-Za-z])"
)
_SHORT_ARGUMENTS = (  # \frac12 -> \frac{1}{2}, \frac{270}7 -> \frac{270}{7}, \sqrt2 -> \sqrt{2}, x^{2} -> x^2
    (re.compile(r"\\(frac|binom)(\w)(\w)"), r"\\\1{\2}{\3}"),
    (re.compile(r"\\(frac|binom)(\{[^{}]*\})(\w)"), r"\\\1\2{\3}"),
    (re.compile(r"\\sqrt(\w)"), r"\\sqrt{\1}"),
    (re.compile(r"([_^])\{(\w)\}"), r"\1\2"),
)
_SPELLINGS = ((r"\dbinom", r"\binom"), (r"\tbinom", r"\binom"), (r"\dfrac", r"\frac"), (r"\tfrac", r"\frac"),
              (r"\left", ""), (r"\right", ""), (r"\!", ""), (r"\,", ""), (r"\;", ""), ("$", ""))


@dataclass
class GradedPool:
    """Grades of one problem's candidates.

    Fields:
        answers: extracted final answer per candidate under the run's policy (``None``: no answer).
        correct: whether each candidate's answer is graded correct under the run's policy.
        classes: answer class per candidate (equal answers share a class; ``None``: no answer).
        sources: where the lenient extraction found each answer (``boxed``, ``answer_phrase``,
            ``last_expression``; ``None``: nowhere).
        copied: whether each answer was rejected as an expression copied from the problem.
        correct_by_policy: ``correct`` under each policy of ``ANSWER_EXTRACTION`` (for the summary).
    """

    answers: list[str | None]
    correct: list[bool]
    classes: list[int | None]
    sources: list[str | None] = field(default_factory=list)
    copied: list[bool] = field(default_factory=list)
    correct_by_policy: dict[str, list[bool]] = field(default_factory=dict)

    @property
    def no_answer(self) -> int:
        return sum(a is None for a in self.answers)

    @property
    def no_boxed(self) -> int:
        return sum(s != "boxed" for s in self.sources) if self.sources else self.no_answer


@dataclass
class Extracted:
    """A candidate's final answer.

    Fields:
        text: the answer as written (LaTeX or plain, without delimiters).
        source: ``boxed``, ``answer_phrase`` or ``last_expression``.
    """

    text: str
    source: str


def check_policy(policy: str, owner: str = "answer_extraction") -> str:
    """``policy`` if it is one of ``ANSWER_EXTRACTION``; else a ``ValueError`` naming ``owner``."""
    if policy not in ANSWER_EXTRACTION:
        raise ValueError(f"{owner} must be one of {list(ANSWER_EXTRACTION)}, got {policy!r}")
    return policy


def extract_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` in ``text`` (braces matched), or ``None``."""
    if not isinstance(text, str):
        return None
    starts = [m.end() for m in _BOXED_RE.finditer(text)]
    for start in reversed(starts):
        end = _closing_brace(text, start)
        if end is not None:
            content = text[start:end].strip()
            if content:
                return content
    bare = list(_BOXED_BARE_RE.finditer(text))  # "\boxed 5"
    return bare[-1].group(1).rstrip(".,;") or None if bare else None


def extract_answer(text: str, policy: str = "lenient", timeout: int = 5) -> Extracted | None:
    """The final answer of a candidate under ``policy`` (see the module docstring), or ``None``."""
    check_policy(policy)
    boxed = extract_boxed(text)
    if boxed is not None:
        return Extracted(boxed, "boxed")
    if policy == "boxed" or not isinstance(text, str):
        return None
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse

    for source, anchored_only in (("answer_phrase", True), ("last_expression", False)):
        targets = [
            LatexExtractionConfig(try_extract_without_anchor=not anchored_only, boxed_match_priority=-1),
            ExprExtractionConfig(try_extract_without_anchor=not anchored_only),
        ]
        found = parse(text, extraction_config=targets, parsing_timeout=_timeouts(timeout))
        if found and isinstance(found[-1], str) and found[-1].strip():
            return Extracted(found[-1].strip(), source)
    return None


def normalize_answer(answer: str) -> str:
    """The answer with ``\\text``-like commands unified and a trailing unit in words dropped."""
    text = _TEXT_COMMAND_RE.sub(r"\\text{", answer.strip().strip("$").strip())
    unit = _TRAILING_UNIT_RE.match(text)
    if unit and unit.group("value").strip() not in ("", "="):
        text = unit.group("value").strip()
    return text


def text_answer(answer: str) -> str | None:
    """The canonical form of an answer that is only text (``\\text{A,D}`` -> ``a,d``), else ``None``."""
    text = normalize_answer(answer)
    if text.startswith("\\text{") and _closing_brace(text, len("\\text{")) == len(text) - 1:
        text = text[len("\\text{") : -1]
    text = text.replace("(", "").replace(")", "").strip()
    if not _TEXT_ANSWER_RE.match(text):
        return None
    return ",".join(part.strip().lower().replace(" ", "") for part in text.split(","))


def as_written(expression: str, keep_spaces: bool = False) -> str:
    """``expression`` without spaces, ``$``, ``\\left``/``\\right`` and with one spelling of ``\\frac``/``\\binom``."""
    text = expression
    for spelling, canonical in _SPELLINGS:
        text = text.replace(spelling, canonical)
    for pattern, replacement in _SHORT_ARGUMENTS:
        text = pattern.sub(replacement, text)
    return (text if keep_spaces else re.sub(r"\s+", "", text)).rstrip(".")


def copied_from_problem(answer: str, problem: str, gold: str) -> bool:
    """Whether ``answer`` is an unevaluated expression copied from ``problem`` (not ``gold`` as written)."""
    written = as_written(normalize_answer(answer))
    if not written or not _OPERATION_RE.search(written) or written == as_written(normalize_answer(gold)):
        return False
    # the whole expression, spaced any way, not a piece of a longer number or name
    before = r"(?<![\w.])" if written[0].isalnum() else ""
    after = r"(?![\w.]?\w)" if written[-1].isalnum() else ""
    pattern = before + r"\s*".join(map(re.escape, written)) + after
    return re.search(pattern, as_written(problem, keep_spaces=True)) is not None


def _closing_brace(text: str, start: int) -> int | None:
    depth = 1
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return i
    return None


def _timeouts(seconds: int) -> int | None:
    return seconds if threading.current_thread() is threading.main_thread() else None


def parse_answer(answer: str, timeout: int = 5):
    """``math_verify.parse`` of a normalised answer given without delimiters (wrapped in ``\\boxed{}``)."""
    from math_verify import parse

    return parse("\\boxed{" + normalize_answer(answer) + "}", parsing_timeout=_timeouts(timeout))


def equivalent(gold_parsed, answer_parsed, timeout: int = 5) -> bool:
    """``math_verify.verify``; unparseable answers are never equivalent."""
    from math_verify import verify

    if not gold_parsed or not answer_parsed:
        return False
    return bool(verify(gold_parsed, answer_parsed, timeout_seconds=_timeouts(timeout)))


@dataclass
class _Answer:
    text: str
    as_text: str | None
    parsed: Any

    @classmethod
    def of(cls, text: str, timeout: int) -> "_Answer":
        as_text = text_answer(text)
        return cls(text, as_text, None if as_text is not None else parse_answer(text, timeout))

    def same(self, other: "_Answer", timeout: int) -> bool:
        if self.text == other.text:
            return True
        if self.as_text is not None or other.as_text is not None:
            return self.as_text == other.as_text
        return equivalent(self.parsed, other.parsed, timeout)


def grade_pool(
    gold: str, candidates: list[str], timeout: int = 5, policy: str = "lenient", problem: str = ""
) -> GradedPool:
    """Grade each candidate against ``gold`` under ``policy`` and group equal answers into classes.

    ``problem`` is the problem statement, for the copied-expression guard (no guard when empty).
    """
    check_policy(policy)
    gold_answer = _Answer.of(gold, timeout)
    extracted = [extract_answer(c, "lenient", timeout) for c in candidates]
    answers = [_Answer.of(e.text, timeout) if e else None for e in extracted]
    copied = [bool(e and problem and copied_from_problem(e.text, problem, gold)) for e in extracted]
    right = [a is not None and not c and gold_answer.same(a, timeout) for a, c in zip(answers, copied)]
    def counts(e: Extracted | None, under: str) -> bool:  # is the answer found under policy ``under``
        return e is not None and (under == "lenient" or e.source == "boxed")

    by_policy = {p: [r and counts(e, p) for r, e in zip(right, extracted)] for p in ANSWER_EXTRACTION}
    kept = [a if counts(e, policy) else None for a, e in zip(answers, extracted)]
    return GradedPool(
        answers=[a.text if a else None for a in kept],
        correct=by_policy[policy],
        classes=_classes(kept, copied, timeout),
        sources=[e.source if e else None for e in extracted],
        copied=copied,
        correct_by_policy=by_policy,
    )


def _classes(answers: list[_Answer | None], copied: list[bool], timeout: int) -> list[int | None]:
    classes: list[int | None] = []
    representatives: list[tuple[_Answer, bool]] = []
    for answer, is_copy in zip(answers, copied):
        if answer is None:
            classes.append(None)
            continue
        for index, (rep, rep_copy) in enumerate(representatives):
            if rep_copy == is_copy and rep.same(answer, timeout):
                classes.append(index)
                break
        else:
            classes.append(len(representatives))
            representatives.append((answer, is_copy))
    return classes
