"""The backend protocol: what the judge needs from a language-model engine, and nothing more.

A backend renders chat messages to prompt text, samples ``n`` continuations per prompt, and gives
log-probabilities of a few candidate continuations (for no-CoT verdicts). Transformers, vLLM and
OpenAI-compatible endpoints implement it; tests use scripted backends.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence, runtime_checkable

from genrm_plugin.prompts import render_messages


@dataclass
class SamplingConfig:
    """How judge continuations are sampled.

    Fields:
        temperature: sampling temperature (the paper uses 1.0); 0 means greedy.
        top_p: nucleus mass (paper: 0.95).
        top_k: 0 disables top-k filtering.
        max_new_tokens: longest rationale + verdict; longer outputs are cut and abstain.
        stop: strings that end a sample early (the verdict markers by default).
    """

    temperature: float = 1.0
    top_p: float = 0.95
    top_k: int = 0
    max_new_tokens: int = 256
    stop: list[str] = field(default_factory=lambda: ["[[A]]", "[[B]]"])

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"SamplingConfig.temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"SamplingConfig.top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1:
            raise ValueError(f"SamplingConfig.max_new_tokens must be >= 1, got {self.max_new_tokens}")


@runtime_checkable
class JudgeBackend(Protocol):
    """What a judge engine provides.

    ``render(messages)``: prompt text for a chat (the engine's chat template).
    ``generate(prompts, n, sampling, seed)``: ``n`` sampled continuations per prompt, as text,
    in prompt order; the same seed and inputs give the same outputs.
    ``choice_logprobs(prompts, choices)``: for each prompt, the log-probability of each choice's
    first distinguishing token after the prompt and the choices' common prefix (e.g. choices
    ``["[[A]]", "[[B]]"]`` -> log p("A" | prompt + "[[")). One forward pass per prompt.
    """

    def render(self, messages: list[dict[str, str]]) -> str: ...

    def generate(
        self, prompts: Sequence[str], n: int, sampling: SamplingConfig, seed: int | None = None
    ) -> list[list[str]]: ...

    def choice_logprobs(self, prompts: Sequence[str], choices: Sequence[str]) -> list[list[float]]: ...


class TokenizerBackend:
    """What the engine backends share: ``render`` through ``self.tokenizer``'s chat template and
    the check of the sample count."""

    tokenizer: Any

    def render(self, messages: list[dict[str, str]]) -> str:
        return render_messages(self.tokenizer, messages)

    @staticmethod
    def check_n(n: int) -> None:
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")


def prompt_seed(seed: int | None, prompt: str) -> int | None:
    """A per-prompt seed from the call's seed and the prompt text (``None`` stays random), so a
    prompt's samples do not depend on which other prompts share its call (vLLM, OpenAI backends)."""
    if seed is None:
        return None
    digest = hashlib.blake2b(f"{seed}\x00{prompt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % (2**31 - 1)


def first_difference(seqs: Sequence[Sequence[int]]) -> int:
    """The first position where token sequences differ (their common prefix's length)."""
    i = 0
    while all(len(s) > i for s in seqs) and len({s[i] for s in seqs}) == 1:
        i += 1
    return i
