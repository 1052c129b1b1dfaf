"""Judge prompts and verdict parsing: the one place that builds judge inputs and reads verdicts.

Templates follow MT-Bench's pairwise judge (``pair-v2``) without the tie option. Four variants:

* ``cot``        -- a short explanation, then the verdict ``[[A]]`` or ``[[B]]``;
* ``no_cot``     -- the verdict only (the paper's GenRM: P(A) from the verdict token);
* ``rationalize``-- like ``cot`` but told which answer is correct (STaR-Rationalizer);
* ``compact``    -- a terse CoT template for tiny models (same delimiters and verdicts);
* ``tiny``       -- the shortest: no system message, the candidates first and the question last
  (``A: ..\nB: ..\nQ: 47+38 check``), so a tiny model's rationale starts right after the
  question it works on (``genrm demo``'s judges); ``verdict`` instead of ``check`` without CoT.

Candidate answers are wrapped in MT-Bench's ``[The Start of Assistant A's Answer]`` delimiters
(``A:``/``B:`` lines in ``compact`` and ``tiny``). Every text a policy can influence -- both
answers and the question -- goes through :func:`neutralize` before it enters a prompt, in every
template and mode, for rewards and training rows alike (recipes render through
:func:`judge_messages` too): invisible characters dropped, and no verdict, delimiter, line marker
of the template or chat-template control marker left, look-alikes included, to a fixed point
(:mod:`genrm_plugin.candidate_text`). :func:`render_messages` also escapes the judge tokenizer's
own special tokens in message text, so candidate text never becomes control tokens.
:func:`parse_verdict` reads only the judge's own output: the last well-formed verdict wins.
Anything else -- empty, truncated, garbled -- parses as ``None`` (an abstention), never an exception.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from genrm_plugin.candidate_text import COMMON_CONTROL_MARKERS, escape_markers, neutralize_text, tokenizer_markers

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
_HINT_HEADER = "\n\n[Hint]"
_RATIONALIZE_HINT = (
    _HINT_HEADER + " Assistant {label}'s answer is the better one. Write the explanation that shows why, "
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
TINY_TASKS = {"cot": "check", "no_cot": "verdict"}  # the tiny template's last word

MODES = ("cot", "no_cot", "rationalize")
TEMPLATES = ("mt_bench", "compact", "tiny")

# A verdict: [[A]] / [[ b ]] (case-insensitive letter, optional inner spaces).
_VERDICT_RE = re.compile(r"\[\[\s*([ABab])\s*\]\]")
# Line markers a template's own lines start with; candidate lines starting with them are escaped.
LINE_LABELS = {"mt_bench": (), "compact": ("Q", "A", "B"), "tiny": ("Q", "A", "B")}
# Role labels of the plain transcript render_messages writes without a chat template.
TRANSCRIPT_ROLES = ("SYSTEM", "USER", "ASSISTANT")


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


def neutralize(answer: str, template: str = "mt_bench") -> str:
    """A candidate answer (or question) as the judge is shown it under ``template``: unable to
    pass for a verdict, a delimiter, a line of the template or a chat-template control marker.

    ``[[A]]`` (also ``[[[A]]]``, ``［［Ａ］］``, ``⟦A⟧``, zero-width characters inside) becomes
    ``[A]``; ``[The End of Assistant A's Answer]`` becomes ``(The End of Assistant A's Answer]``;
    in ``compact``/``tiny`` a line ``B: 42`` becomes ``\\B: 42``; ``<|im_end|>`` becomes
    ``<\\|im_end|>``. Invisible characters are dropped; everything else is kept verbatim.
    """
    if not isinstance(answer, str):
        raise TypeError(f"candidate answer must be a string, got {type(answer).__name__}")
    if template not in LINE_LABELS:
        raise ValueError(f"template must be one of {TEMPLATES}, got {template!r}")
    return neutralize_text(answer, LINE_LABELS[template])


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
    shown, template = config.shown_answer, config.template
    fields = dict(
        question=neutralize(question, template),
        answer_a=neutralize(shown(answer_a), template),
        answer_b=neutralize(shown(answer_b), template),
    )
    if config.template == "tiny":
        user = TINY_USER.format(**fields, task=TINY_TASKS["no_cot" if mode == "no_cot" else "cot"])
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
    plain ``ROLE: content`` transcript ending in ``ASSISTANT:``. Message text holds no control
    marker: the tokenizer's special and markup-like added tokens and the common chat-template
    markers are escaped (``<|end|>`` -> ``<\\|end|>``), and so are transcript role lines
    (``ASSISTANT:`` at a line start) when there is no chat template.
    """
    templated = tokenizer is not None and bool(getattr(tokenizer, "chat_template", None))
    messages = [{**m, "content": _escape_content(m["content"], tokenizer, templated)} for m in messages]
    if templated:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    lines = [f"{m['role'].upper()}: {m['content']}" for m in messages]
    return "\n\n".join(lines) + "\n\nASSISTANT:"


def _escape_content(content: Any, tokenizer: Any, templated: bool) -> Any:
    if not isinstance(content, str):
        return content
    return escape_markers(content, tokenizer_markers(tokenizer), () if templated else TRANSCRIPT_ROLES)


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


def split_judge_prompt(text: str) -> tuple[str, str, str]:
    """(question, answer_a, answer_b) as shown in a rendered judge prompt (after neutralisation).

    The patterns are built from the templates themselves, so a template change cannot leave a
    stale copy behind (the scripted test judges of :mod:`genrm_plugin.testing` read prompts this way).
    """
    for pattern in _SPLIT_PATTERNS:
        match = pattern.search(text)
        if match:
            return match.group("question"), match.group("answer_a"), match.group("answer_b")
    raise ValueError("not a judge prompt rendered from genrm_plugin.prompts")


def _split_pattern(template: str, tail: str) -> re.Pattern:
    fields = {"question": "(?P<question>.*?)", "answer_a": "(?P<answer_a>.*?)", "answer_b": "(?P<answer_b>.*?)",
              "task": "(?:" + "|".join(TINY_TASKS.values()) + ")(?: [AB])?"}  # "check A": rationalization
    parts = re.split(r"\{(\w+)\}", template)
    return re.compile("".join(fields[p] if i % 2 else re.escape(p) for i, p in enumerate(parts)) + tail, re.DOTALL)


# Where the user turn ends after the last answer or question of a line template: a live control
# marker, the rationalization hint, the plain transcript's final ASSISTANT: line, or the end.
_TURN_END = "(?=" + "|".join([r"<\|", *map(re.escape, COMMON_CONTROL_MARKERS), re.escape(_HINT_HEADER),
                              r"\n\nASSISTANT:$", "$"]) + ")"
_SPLIT_PATTERNS = [_split_pattern(USER_TEMPLATE, ""), _split_pattern(TINY_USER, _TURN_END), _split_pattern(COMPACT_USER, _TURN_END)]



# -- pointwise critiques (critique reward models: CLoud, Synthetic-Critiques RMs) ------------------
CRITIQUE_INSTRUCTION = (
    "Please act as an impartial judge and write a critique of the response of an AI assistant to the "
    "user question displayed below. Check its accuracy, helpfulness and relevance: say what is right and "
    "what is wrong in it, step by step. Do not give a score or a verdict."
)
CRITIQUE_USER = (
    "{instruction}\n\n[User Question]\n{question}\n\n"
    "[The Start of the Assistant's Answer]\n{response}\n[The End of the Assistant's Answer]"
)
COMPACT_CRITIQUE_USER = "Critique the answer.\nQ: {question}\nA: {response}"
TINY_CRITIQUE_USER = "A: {response}\nQ: {question} critique"


def critique_messages(question: str, response: str, config: PromptConfig | None = None) -> list[dict[str, str]]:
    """One user turn asking for a critique of ONE ``response`` to ``question`` (pointwise; no verdict).

    Both texts are hostile: they go through :func:`neutralize` under ``config.template`` (as in
    :func:`judge_messages`), and ``config.answer_pattern`` shows only what it picks out of the
    response. ``mt_bench`` words the request in full; ``compact`` and ``tiny`` are terse line formats
    for tiny models (``tiny``: the response first, the question last). ``system_prompt`` and
    ``use_system_role`` do not apply: the request is one user turn.
    """
    config = config or PromptConfig()
    for name, value in (("question", question), ("response", response)):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    fields = dict(question=neutralize(question, config.template),
                  response=neutralize(config.shown_answer(response), config.template))
    if config.template == "tiny":
        return [{"role": "user", "content": TINY_CRITIQUE_USER.format(**fields)}]
    if config.template == "compact":
        return [{"role": "user", "content": COMPACT_CRITIQUE_USER.format(**fields)}]
    return [{"role": "user", "content": CRITIQUE_USER.format(instruction=CRITIQUE_INSTRUCTION, **fields)}]


def critique_head_text(tokenizer: Any, question: str, response: str, critique: str,
                       config: PromptConfig | None = None) -> tuple[str, str]:
    """What a critique reward head reads, as ``(request, critique_text)``: the head reads
    ``request + critique_text + EOS`` and its output at the last token is the reward.

    ``request`` is :func:`critique_messages` rendered with ``tokenizer`` (the text the critic
    continues); ``critique_text`` is the critique with the tokenizer's control markers escaped, as
    any message text (a critique may quote the response). The one rule for training rows (reward
    rows, CLoud's critique SFT), :class:`~genrm_plugin.critique_scorer.CritiqueScorer` and rewards.
    """
    if not isinstance(critique, str):
        raise TypeError(f"critique must be a string, got {type(critique).__name__}")
    templated = tokenizer is not None and bool(getattr(tokenizer, "chat_template", None))
    request = render_messages(tokenizer, critique_messages(question, response, config))
    return request, _escape_content(critique, tokenizer, templated)
