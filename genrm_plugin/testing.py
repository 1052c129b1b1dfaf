"""Scripted judge backends for tests and harness checks (judges whose behaviour is known exactly).

``ScriptedBackend(script)`` answers ``generate`` with ``script(prompt_text, sample_index)`` for
each sample (``sample_index`` counts the samples drawn so far for that prompt text, so an
adaptive run sees a prefix of the same stream a full run sees), and ``choice_logprobs`` with
``logprobs(prompt_text)``. :func:`split_judge_prompt` recovers (question, answer_a, answer_b) from
a rendered ``mt_bench`` or ``compact`` judge prompt, so scripts can act on the content (e.g. an
oracle that prefers the correct answer).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Callable, Sequence

from genrm_plugin.backends.base import SamplingConfig
from genrm_plugin.prompts import render_messages

_MT_BENCH_RE = re.compile(
    r"\[User Question\]\n(?P<q>.*?)\n\n\[The Start of Assistant A's Answer\]\n(?P<a>.*?)\n"
    r"\[The End of Assistant A's Answer\]\n\n\[The Start of Assistant B's Answer\]\n(?P<b>.*?)\n"
    r"\[The End of Assistant B's Answer\]",
    re.DOTALL,
)
_COMPACT_RE = re.compile(r"Q: (?P<q>.*?)\nA: (?P<a>.*?)\nB: (?P<b>.*?)(?:<\||\n\n|$)", re.DOTALL)
_TINY_RE = re.compile(r"A: (?P<a>.*?)\nB: (?P<b>.*?)\nQ: (?P<q>.*?) (?:check|verdict)(?: [AB])?(?:<\||$)", re.DOTALL)


def split_judge_prompt(text: str) -> tuple[str, str, str]:
    """(question, answer_a, answer_b) as shown in a rendered judge prompt (after neutralisation)."""
    match = _MT_BENCH_RE.search(text) or _TINY_RE.search(text) or _COMPACT_RE.search(text)
    if not match:
        raise ValueError("not a judge prompt rendered from genrm_plugin.prompts")
    return match.group("q"), match.group("a"), match.group("b")


class ScriptedBackend:
    """A :class:`~genrm_plugin.backends.base.JudgeBackend` driven by Python functions.

    Args:
        script: ``(prompt_text, sample_index) -> judge output text`` for CoT sampling.
        logprobs: ``(prompt_text) -> [logp_A, logp_B]`` for no-CoT (default: uniform).
    Attributes:
        calls: ``(method, number_of_prompts, n)`` per call; ``drawn``: samples per prompt text.
    """

    def __init__(
        self,
        script: Callable[[str, int], str] | None = None,
        logprobs: Callable[[str], Sequence[float]] | None = None,
    ) -> None:
        self.script = script or (lambda prompt, i: "[[A]]")
        self.logprobs = logprobs or (lambda prompt: [-0.6931, -0.6931])
        self.calls: list[tuple[str, int, int]] = []
        self.drawn: Counter[str] = Counter()

    def render(self, messages: list[dict[str, str]]) -> str:
        return render_messages(None, messages)

    def generate(
        self, prompts: Sequence[str], n: int, sampling: SamplingConfig, seed: int | None = None
    ) -> list[list[str]]:
        self.calls.append(("generate", len(prompts), n))
        out = []
        for p in prompts:
            out.append([self.script(p, self.drawn[p] + i) for i in range(n)])
            self.drawn[p] += n
        return out

    def choice_logprobs(self, prompts: Sequence[str], choices: Sequence[str]) -> list[list[float]]:
        self.calls.append(("choice_logprobs", len(prompts), 1))
        return [list(self.logprobs(p)) for p in prompts]


def always(label: str) -> ScriptedBackend:
    """A judge that always names the answer shown in position ``label`` ("A" or "B")."""
    return ScriptedBackend(lambda prompt, i: f"The answer shown as {label} is better. [[{label}]]")
