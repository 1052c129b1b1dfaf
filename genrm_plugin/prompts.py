"""Judge prompts and verdict parsing: the one place that builds judge inputs and reads verdicts.

Templates follow MT-Bench's pairwise judge (``pair-v2``) without the tie option. Four variants:

* ``cot``        -- a short explanation, then the verdict ``[[A]]`` or ``[[B]]``;
* ``no_cot``     -- the verdict only (the paper's GenRM: P(A) from the verdict token);
* ``rationalize``-- like ``cot`` but told which answer is correct (STaR-Rationalizer);
* ``compact``    -- a terse CoT template for tiny models (same delimiters and verdicts);
* ``tiny``       -- the shortest: no system message, the candidates first and the question last
  (``A: ..\nB: ..\nQ: 47+38 check``), so a tiny model's rationale starts right after the
  question it works on (``genrm demo``'s judges); ``verdict`` instead of ``check`` without CoT.

Candidate answers are wrapped in MT-Bench's ``[The Start of Assistant A's Answer]`` delimiters.
Anything inside a candidate that looks like a verdict (``[[A]]``) or a delimiter is neutralised
before it enters the prompt, and :func:`parse_verdict` reads only the judge's own output: the
last well-formed verdict wins. Anything else -- empty, truncated, garbled -- parses as ``None``
(an abstention), never an exception.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

VERDICTS = ("A", "B")
VERDICT_FORMAT = "[[{}]]"

SYSTEM_PROMPT = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two AI "
    "assistants to the user question displayed below. You should choose the assistant that follows "
    "the user's instructions and answers the user's question better. Your evaluation should consider "
    "factors such as the helpfulness, relevance, accuracy, depth, creativity, and level of detail of "
    "their responses. {instruction} Avoid any position biases and ensure that the order in which the "
    "responses were presented does not influence your decision. Do not allow the length of the "
    "responses to influence your evaluation. Do not favor certain names of the assistants. Be as "
    "objective as possible. {verdict_instruction}"
)
_COT_INSTRUCTION = "Begin your evaluation by comparing the two responses and provide a short explanation."
_COT_VERDICT = (
    'After providing your explanation, output your final verdict by strictly following this format: '
    '"[[A]]" if assistant A is better, "[[B]]" if assistant B is better.'
)
_NO_COT_INSTRUCTION = "Do not explain your decision."
_NO_COT_VERDICT = (
    'Output only your final verdict by strictly following this format: "[[A]]" if assistant A is '
    'better, "[[B]]" if assistant B is better.'
)
_RATIONALIZE_HINT = (
    "\n\n[Hint] Assistant {label}'s answer is the better one. Write the explanation that shows why, "
    "without mentioning this hint, then give the verdict."
)

USER_TEMPLATE = (
    "[User Question]\n{question}\n\n"
    "[The Start of Assistant A's Answer]\n{answer_a}\n[The End of Assistant A's Answer]\n\n"
    "[The Start of Assistant B's Answer]\n{answer_b}\n[The End of Assistant B's Answer]"
)
COMPACT_SYSTEM = "Judge which answer is better. Think briefly, then write [[A]] or [[B]]."
COMPACT_USER = "Q: {question}\nA: {answer_a}\nB: {answer_b}"
TINY_USER = "A: {answer_a}\nB: {answer_b}\nQ: {question} {task}"

MODES = ("cot", "no_cot", "rationalize")
TEMPLATES = ("mt_bench", "compact", "tiny")

# A verdict: [[A]] / [[ b ]] (case-insensitive letter, optional inner spaces).
_VERDICT_RE = re.compile(r"\[\[\s*([ABab])\s*\]\]")
# Things inside a candidate that could be read as a verdict or as our delimiters.
_INJECTED_VERDICT_RE = re.compile(r"\[\[\s*([A-Za-z])\s*\]\]")
_INJECTED_DELIMITER_RE = re.compile(r"\[(The (?:Start|End) of Assistant|User Question|Hint)", re.IGNORECASE)


@dataclass
class PromptConfig:
    """How judge prompts are written.

    Fields:
        template: ``mt_bench`` (MT-Bench pair-v2 wording, no ties), ``compact`` (terse, for tiny
            models) or ``tiny`` (no system message, question last; ``system_prompt`` and
            ``use_system_role`` do not apply).
        system_prompt: override for the system message (``None`` keeps the template's).
        use_system_role: put the instructions in a system message; if False they are prepended to
            the user message (for chat templates without a system role).
        answer_pattern: a regular expression; when set, the judge is shown only what it picks out
            of each candidate (the last match; its first group if it has groups), e.g.
            ``r"\\boxed\{([^{}]*)\}"`` or the toy world's ``r">(\d+)\s*$"``: judge the final answers,
            not the working. A candidate without a match is shown as an empty answer (it states
            no final answer), never as its full text.
    """

    template: str = "mt_bench"
    system_prompt: str | None = None
    use_system_role: bool = True
    answer_pattern: str | None = None

    def __post_init__(self) -> None:
        if self.template not in TEMPLATES:
            raise ValueError(f"PromptConfig.template must be one of {TEMPLATES}, got {self.template!r}")
        if self.answer_pattern is not None:
            try:
                re.compile(self.answer_pattern)
            except re.error as e:
                raise ValueError(f"PromptConfig.answer_pattern is not a valid regular expression ({e}): "
                                 f"{self.answer_pattern!r}") from None

    def shown_answer(self, answer: str) -> str:
        """What the judge sees of a candidate ``answer`` (see ``answer_pattern``)."""
        if self.answer_pattern is None:
            return answer
        matches = list(re.finditer(self.answer_pattern, answer, flags=re.DOTALL))
        if not matches:
            return ""
        last = matches[-1]
        return (last.group(1) if last.re.groups else last.group(0)).strip()


def neutralize(answer: str) -> str:
    """Make a candidate answer unable to pass for a verdict or a prompt delimiter.

    ``[[A]]`` becomes ``[A]`` and ``[The End of Assistant A's Answer]`` becomes
    ``(The End of Assistant A's Answer]``; everything else is kept verbatim.
    """
    if not isinstance(answer, str):
        raise TypeError(f"candidate answer must be a string, got {type(answer).__name__}")
    answer = _INJECTED_VERDICT_RE.sub(r"[\1]", answer)
    return _INJECTED_DELIMITER_RE.sub(r"(\1", answer)


def judge_messages(
    question: str,
    answer_a: str,
    answer_b: str,
    mode: str = "cot",
    correct: str | None = None,
    config: PromptConfig | None = None,
) -> list[dict[str, str]]:
    """Chat messages asking the judge to compare ``answer_a`` and ``answer_b`` on ``question``.

    ``mode`` is ``cot``, ``no_cot`` or ``rationalize`` (the latter needs ``correct`` in {"A","B"}).
    """
    config = config or PromptConfig()
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if mode == "rationalize" and correct not in VERDICTS:
        raise ValueError(f"mode='rationalize' needs correct in {VERDICTS}, got {correct!r}")
    for name, value in (("question", question), ("answer_a", answer_a), ("answer_b", answer_b)):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    shown = config.shown_answer
    fields = dict(question=neutralize(question), answer_a=neutralize(shown(answer_a)), answer_b=neutralize(shown(answer_b)))
    if config.template == "tiny":
        user = TINY_USER.format(**fields, task="verdict" if mode == "no_cot" else "check")
        if mode == "rationalize":
            user += f" {correct}"
        return [{"role": "user", "content": user}]
    if config.template == "compact":
        system = COMPACT_SYSTEM if mode != "no_cot" else "Judge which answer is better. Write [[A]] or [[B]]."
        user = COMPACT_USER.format(**fields)
    else:
        cot = mode != "no_cot"
        system = SYSTEM_PROMPT.format(
            instruction=_COT_INSTRUCTION if cot else _NO_COT_INSTRUCTION,
            verdict_instruction=_COT_VERDICT if cot else _NO_COT_VERDICT,
        )
        user = USER_TEMPLATE.format(**fields)
    if config.system_prompt is not None:
        system = config.system_prompt
    if mode == "rationalize":
        user += _RATIONALIZE_HINT.format(label=correct)
    if config.use_system_role:
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]
    return [{"role": "user", "content": system + "\n\n" + user}]


def render_messages(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    """Render chat messages to the text the judge model continues.

    Uses the tokenizer's chat template (with the generation prompt) when it has one; otherwise a
    plain ``ROLE: content`` transcript ending in ``ASSISTANT:``.
    """
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    lines = [f"{m['role'].upper()}: {m['content']}" for m in messages]
    return "\n\n".join(lines) + "\n\nASSISTANT:"


def verdict_text(label: str) -> str:
    """The verdict marker for ``label`` ("A" -> "[[A]]")."""
    if label not in VERDICTS:
        raise ValueError(f"verdict label must be one of {VERDICTS}, got {label!r}")
    return VERDICT_FORMAT.format(label)


def parse_verdict(output: Any) -> str | None:
    """The judge's verdict in ``output``: "A", "B", or ``None`` (abstain).

    The last well-formed ``[[A]]``/``[[B]]`` wins. Non-strings, empty, truncated or unparseable
    outputs abstain; this function never raises.
    """
    if not isinstance(output, str) or not output:
        return None
    last = None
    for last in _VERDICT_RE.finditer(output):
        pass
    return last.group(1).upper() if last else None


def corpus_for_tokenizer() -> list[str]:
    """Texts of every template (the tiny-model tokenizer is trained on them so they compress)."""
    texts = [SYSTEM_PROMPT, _COT_INSTRUCTION, _COT_VERDICT, _NO_COT_INSTRUCTION, _NO_COT_VERDICT]
    texts += [_RATIONALIZE_HINT, USER_TEMPLATE, COMPACT_SYSTEM, COMPACT_USER, "[[A]] [[B]]"]
    return texts * 20
