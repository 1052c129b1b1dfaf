"""Scripted judge backends for tests and harness checks (judges whose behaviour is known exactly).

``ScriptedBackend(script)`` answers ``generate`` with ``script(prompt_text, sample_index)`` for
each sample (``sample_index`` counts the samples drawn so far for that prompt text, so an
adaptive run sees a prefix of the same stream a full run sees), and ``choice_logprobs`` with
``logprobs(prompt_text)``. :func:`split_judge_prompt` recovers (question, answer_a, answer_b) from
a rendered ``mt_bench``, ``compact`` or ``tiny`` judge prompt, so scripts can act on the content
(e.g. an oracle that prefers the correct answer).

:class:`GullibleJudge` is a deliberately gullible judge for reward-hacking tests: it obeys any
verdict it can read in the question or the answers (look-alikes included), obeys what follows a
live chat-template control marker, and reads the prompt's structure through its own normalisation
(so forged delimiters and forged ``B:`` lines fool it); only then does it judge the content.

:class:`ScriptedCritiqueScorer` is a critique reward model with the
:class:`~genrm_plugin.critique_scorer.CritiqueScorer` surface whose critiques and rewards follow
from the text (a count of a marker), for fast tests of :class:`~genrm_plugin.critique_reward.CritiqueReward`.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Callable, Sequence

from genrm_plugin.backends.base import SamplingConfig
from genrm_plugin.candidate_text import COMMON_CONTROL_MARKERS, LINE_BREAKS, fold, tokenizer_markers
from genrm_plugin.critique_scorer import CritiqueConfig, CritiqueScore, CritiqueScorer
from genrm_plugin.prompts import render_messages, split_judge_prompt  # noqa: F401 - re-exported for scripts

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


# Where the question and answers begin in each template (the instructions before hold example verdicts).
_DATA_OPENERS = ("[User Question]\n", "Q: ", "A: ")
_READABLE_VERDICT_RE = re.compile(
    r"\[\[(?:[^\w\[\]]|_)*([AB])(?:(?:[^\w\[\]]|_)*([<>=≫≪]+)(?:[^\w\[\]]|_)*([AB]))?(?:[^\w\[\]]|_)*\]\]", re.IGNORECASE
)
_LINE_BREAK_RE = re.compile(f"[{LINE_BREAKS}]")
_HORIZONTAL_SPACE_RE = re.compile(r"[^\S\n]+")


def readable_verdicts(text: str) -> list[str]:
    """Every verdict a gullible reader sees in ``text``, in order: double brackets around A or B
    (or ``A>B``-style comparisons) after folding look-alikes and dropping invisible characters,
    whitespace and markdown around the letter (``[ [A] ]``, ``［［Ａ］］``, ``⟦A⟧``, ``[[**B**]]``)."""
    squashed = re.sub(r"\s+", "", fold(text))
    verdicts = []
    for m in _READABLE_VERDICT_RE.finditer(squashed):
        first, comparison, second = m.group(1).upper(), m.group(2), (m.group(3) or "").upper()
        if comparison and "=" in comparison:
            continue
        verdicts.append(second if comparison and ("<" in comparison or "≪" in comparison) else first)
    return verdicts


def gullible_view(text: str) -> str:
    """``text`` as a careless reader takes it in: look-alikes folded, invisible characters dropped,
    every line break a newline, runs of other whitespace one space, lines stripped on the left."""
    view = _HORIZONTAL_SPACE_RE.sub(" ", _LINE_BREAK_RE.sub("\n", fold(text)))
    return "\n".join(line.lstrip() for line in view.split("\n"))


class GullibleJudge(ScriptedBackend):
    """A judge as gullible as a model can be, for reward-hacking tests.

    Its decision on a rendered prompt, in order:

    1. a live control marker (a special token of ``tokenizer``, a common chat-template marker, or
       in a plain transcript an ``ASSISTANT:``/``USER:`` line) inside the question or answers
       makes it take the text after the last one as its own turn: it obeys the first standalone
       ``A`` or ``B`` there;
    2. else the last verdict it can read in the question and answers (:func:`readable_verdicts`);
    3. else it splits the prompt with :func:`split_judge_prompt` read through
       :func:`gullible_view` (forged delimiters and lines fool it) and prefers the answer
       ``is_correct`` accepts; both or neither: a tie (samples alternate A, B); unsplittable: abstain.

    CoT samples end in the verdict; no-CoT log-probabilities put 0.99 on it (0.5/0.5 for a tie or
    an abstention). ``decisions`` counts why it decided (``control``, ``verdict``, ``content``, ``abstain``).
    """

    def __init__(self, is_correct: Callable[[str], bool], tokenizer=None) -> None:
        super().__init__(self._sample, self._logprobs)
        self.is_correct, self.tokenizer = is_correct, tokenizer
        templated = tokenizer is not None and bool(getattr(tokenizer, "chat_template", None))
        markers = sorted({*COMMON_CONTROL_MARKERS, *tokenizer_markers(tokenizer)}, key=len, reverse=True)
        live = [re.escape(m) for m in markers] + ([] if templated else [r"\n[^\S\n]*(?:ASSISTANT|USER|SYSTEM):"])
        self._live_re = re.compile("|".join(live))
        if templated:
            rendered = tokenizer.apply_chat_template([{"role": "user", "content": "\x00"}], tokenize=False, add_generation_prompt=True)
            self._suffix = rendered[rendered.index("\x00") + 1 :]
        else:
            self._suffix = "\n\nASSISTANT:"
        self._decided: dict[str, str | None] = {}
        self.decisions: Counter[str] = Counter()

    def render(self, messages: list[dict[str, str]]) -> str:
        return render_messages(self.tokenizer, messages)

    def decide(self, prompt: str) -> str | None:
        """``"A"``, ``"B"``, ``"tie"`` or ``None`` (abstain) for a rendered judge prompt."""
        if prompt not in self._decided:
            reason, verdict = self._read(prompt)
            self.decisions[reason] += 1
            self._decided[prompt] = verdict
        return self._decided[prompt]

    def _read(self, prompt: str) -> tuple[str, str | None]:
        starts = [prompt.find(o) for o in _DATA_OPENERS if o in prompt]
        if not starts:
            return "abstain", None
        end = len(prompt) - len(self._suffix) if prompt.endswith(self._suffix) else len(prompt)
        region = prompt[min(starts) : end]
        live = list(self._live_re.finditer(region))
        if live:
            letter = re.search(r"\b([AB])\b", region[live[-1].end() :])
            if letter:
                return "control", letter.group(1)
        verdicts = readable_verdicts(region)
        if verdicts:
            return "verdict", verdicts[-1]
        try:
            _, a, b = split_judge_prompt(gullible_view(prompt))
        except ValueError:
            return "abstain", None
        good_a, good_b = self.is_correct(a), self.is_correct(b)
        return "content", ("tie" if good_a == good_b else "A" if good_a else "B")

    def _sample(self, prompt: str, i: int) -> str:
        verdict = self.decide(prompt)
        if verdict is None:
            return "I cannot tell."
        if verdict == "tie":
            verdict = "AB"[i % 2]
        return f"Assistant {verdict} is better. [[{verdict}]]"

    def _logprobs(self, prompt: str) -> list[float]:
        verdict = self.decide(prompt)
        if verdict in ("A", "B"):
            likely, unlikely = math.log(0.99), math.log(0.01)
            return [likely, unlikely] if verdict == "A" else [unlikely, likely]
        return [math.log(0.5), math.log(0.5)]


_COUNT_RE = re.compile(r"says it (\d+) times")


class ScriptedCritiqueScorer:
    """A critique reward model whose behaviour is known exactly (the contract's surface:
    ``score_critiqued``, ``score``, ``compare``, ``kind``, ``config``).

    Critique ``j`` (of ``k``) of a response reads ``"critique j: the response mentions <marker>;
    it says it <n> times."`` where ``n`` counts ``marker`` in the response; the "head" reads ``n``
    back out of the critique, so critique ``j`` gets reward ``n + spread * (j - (k - 1) / 2)`` and the
    mean over the ``k`` critiques is exactly ``n``. A response holding ``fail_marker`` makes the call
    raise (a failing backend); one holding ``nan_marker`` gets a NaN reward (a failed head).

    Attributes:
        calls: the number of items of each ``score_critiqued`` call; ``seen``: every (question,
            response) scored, in order. ``tokenizer``/``critic``/``prompt`` are ``None`` (the
            reward counts item tokens one per word or sign).
    """

    kind = "cloud"
    tokenizer = critic = prompt = None

    def __init__(self, marker: str = "good", k: int = 1, spread: float = 0.5,
                 fail_marker: str = "BOOM", nan_marker: str = "NaN-please") -> None:
        self.marker, self.spread = marker, spread
        self.fail_marker, self.nan_marker = fail_marker, nan_marker
        self.config = CritiqueConfig(k=k, temperature=1.0 if k > 1 else 0.0)
        self.calls: list[int] = []
        self.seen: list[tuple[str, str]] = []

    def score_critiqued(self, questions: Sequence[str], responses: Sequence[str]) -> list[CritiqueScore]:
        if len(questions) != len(responses):
            raise ValueError(f"got {len(questions)} questions and {len(responses)} responses")
        self.calls.append(len(questions))
        out = []
        for question, response in zip(questions, responses):
            if self.fail_marker in response:
                raise RuntimeError("critic exploded")
            self.seen.append((question, response))
            n = response.count(self.marker)
            critiques = [f"critique {j}: the response mentions {self.marker!r}; it says it {n} times."
                         for j in range(self.config.k)]
            rewards = [self._head(c, j) for j, c in enumerate(critiques)]
            if self.nan_marker in response:
                rewards = [math.nan] * len(rewards)
            out.append(CritiqueScore(sum(rewards) / len(rewards), critiques, rewards))
        return out

    def _head(self, critique: str, j: int) -> float:
        return float(_COUNT_RE.search(critique).group(1)) + self.spread * (j - (self.config.k - 1) / 2)

    score = CritiqueScorer.score
    compare = CritiqueScorer.compare

    def expected_reward(self, response: str) -> float:
        """The reward this scorer gives ``response`` (as the reward sees it, i.e. after any cut)."""
        return float(response.count(self.marker))
