"""GenerativeJudge: pairwise preferences from an LLM judge.

``compare(prompts, answers_a, answers_b)`` returns one :class:`~genrm_plugin.votes.Preference` per
item. CoT mode samples up to ``k`` rationales per order and majority-votes their verdicts
(optionally stopping early once the vote is decided: per order, or -- with a joint rule and
``swap`` -- once the item's swap-combined verdict is, both orders drawn in lockstep); no-CoT mode
reads P(A) from the verdict token's log-probabilities in one forward pass. With ``swap`` both answer orders are judged and
combined (see :mod:`genrm_plugin.votes` for the exact rules). Identical judge prompts within a call
are judged once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Sequence

from genrm_plugin.backends.base import JudgeBackend, SamplingConfig
from genrm_plugin.prompts import TEMPLATES, PromptConfig, judge_messages, parse_verdict, verdict_text
from genrm_plugin.votes import (
    ADAPTIVE_RULES, JOINT_RULES, Preference, VoteCount, combine_orders, combine_probabilities, flip_label,
    orders_decided,
)

JUDGE_MODES = ("cot", "no_cot")


@dataclass
class JudgeConfig:
    """Settings of a :class:`GenerativeJudge`.

    Fields:
        mode: ``cot`` (sample rationales, majority vote) or ``no_cot`` (verdict-token probability).
        k: votes per answer order in CoT mode (the maximum when ``adaptive`` is on); paper: 32.
        swap: judge both answer orders and combine them (position-bias debiasing).
        adaptive: early stopping rule for CoT votes: ``off``, ``cannot_flip`` (stop once the
            majority cannot change), ``bayes`` (stop once Beta posterior mass on one side of 1/2
            reaches ``confidence``) or ``predictive`` (stop once the chance that the remaining votes
            change the maj@``k`` winner is at most ``1 - confidence``; see
            :func:`~genrm_plugin.votes.is_decided`) -- each answer order on its own -- or
            ``joint_cannot_flip`` / ``joint_predictive``, the same two tests on the item's
            swap-combined verdict, both orders drawn round by round together (see
            :func:`~genrm_plugin.votes.orders_decided`; without ``swap`` they test the one order).
        confidence: the ``bayes``, ``predictive`` and ``joint_predictive`` rules' confidence.
        round_size: votes drawn per round when ``adaptive`` is on.
        seed: sampling seed; the same seed, inputs and batch size give the same result.
        template: judge prompt template (``mt_bench``, ``compact`` or ``tiny``).
        answer_pattern: show the judge only the final answer each candidate states (a regular
            expression, see :class:`~genrm_plugin.prompts.PromptConfig`); ``None``: whole answers.
        system_prompt: replaces the template's system message (``None``: the template's own).
        use_system_role: send the instructions as a system message; off: prepend them to the user
            message (for chat templates without a system role). Not used by the ``tiny`` template.
        temperature, top_p, top_k, max_new_tokens: sampling (paper: T=1.0, top-p 0.95).
    """

    mode: str = field(default="cot", metadata={"choices": JUDGE_MODES})
    k: int = 8
    swap: bool = True
    adaptive: str = field(default="off", metadata={"choices": ADAPTIVE_RULES})
    confidence: float = 0.95
    round_size: int = 2
    seed: int = 0
    template: str = field(default="mt_bench", metadata={"choices": TEMPLATES})
    answer_pattern: str | None = None
    system_prompt: str | None = None
    use_system_role: bool = True
    temperature: float = 1.0
    top_p: float = 0.95
    top_k: int = 0
    max_new_tokens: int = 256

    def __post_init__(self) -> None:
        if self.mode not in JUDGE_MODES:
            raise ValueError(f"JudgeConfig.mode must be one of {JUDGE_MODES}, got {self.mode!r}")
        if self.adaptive not in ADAPTIVE_RULES:
            raise ValueError(f"JudgeConfig.adaptive must be one of {ADAPTIVE_RULES}, got {self.adaptive!r}")
        if self.k < 1:
            raise ValueError(f"JudgeConfig.k must be >= 1, got {self.k}")
        if self.round_size < 1:
            raise ValueError(f"JudgeConfig.round_size must be >= 1, got {self.round_size}")
        if not 0.5 < self.confidence < 1:
            raise ValueError(f"JudgeConfig.confidence must be in (0.5, 1), got {self.confidence}")
        self.sampling()  # validates the sampling fields
        self.prompt()

    def sampling(self) -> SamplingConfig:
        return SamplingConfig(
            temperature=self.temperature, top_p=self.top_p, top_k=self.top_k, max_new_tokens=self.max_new_tokens
        )

    def prompt(self) -> PromptConfig:
        return PromptConfig(
            template=self.template, system_prompt=self.system_prompt, use_system_role=self.use_system_role,
            answer_pattern=self.answer_pattern,
        )

    def replace(self, **changes) -> "JudgeConfig":
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update({k: v for k, v in changes.items() if v is not None})
        return JudgeConfig(**values)


class GenerativeJudge:
    """A pairwise LLM judge over any :class:`~genrm_plugin.backends.base.JudgeBackend`."""

    def __init__(self, backend: JudgeBackend, config: JudgeConfig | None = None) -> None:
        self.backend = backend
        self.config = config or JudgeConfig()

    @classmethod
    def from_pretrained(cls, path: str, config: JudgeConfig | None = None, **backend_kwargs) -> "GenerativeJudge":
        """A judge over a local or hub model on the transformers backend (``backend_kwargs``: e.g.
        ``device``, ``dtype``, ``batch_size``); a trained judge's card supplies the settings
        ``config`` leaves at their defaults (:func:`genrm_plugin.judge_card.apply_card`)."""
        from genrm_plugin.backends.transformers import TransformersBackend
        from genrm_plugin.judge_card import apply_card

        config = apply_card(config or JudgeConfig(), path)
        return cls(TransformersBackend.from_pretrained(path, **backend_kwargs), config)

    def compare(
        self,
        prompts: Sequence[str],
        answers_a: Sequence[str],
        answers_b: Sequence[str],
        *,
        mode: str | None = None,
        k: int | None = None,
        swap: bool | None = None,
        seed: int | None = None,
        hints: Sequence[str] | None = None,
    ) -> list[Preference]:
        """Judge ``answers_a[i]`` against ``answers_b[i]`` for ``prompts[i]``.

        Keyword overrides (``mode``, ``k``, ``swap``, ``seed``) replace the config for this call.
        ``hints`` (one "A"/"B" per item) switches to the rationalization prompt, which tells the
        judge the correct answer (STaR-Rationalizer); the hint is swapped with the answers.
        """
        cfg = self.config.replace(mode=mode, k=k, swap=swap, seed=seed)
        _check_inputs(prompts, answers_a, answers_b, hints)
        orders = [(p, a, b, h) for p, a, b, h in zip(prompts, answers_a, answers_b, hints or [None] * len(prompts))]
        if cfg.swap:
            flipped = [(p, b, a, flip_label(h)) for p, a, b, h in orders]
        prompt_mode = "rationalize" if hints is not None else ("no_cot" if cfg.mode == "no_cot" else "cot")
        render = lambda q, a, b, h: self.backend.render(  # noqa: E731
            judge_messages(q, a, b, mode=prompt_mode, correct=h, config=cfg.prompt())
        )
        texts = [render(*o) for o in orders] + ([render(*o) for o in flipped] if cfg.swap else [])
        if cfg.mode == "no_cot" and hints is None:
            probs = self._verdict_probabilities(texts)
            n = len(orders)
            return [combine_probabilities(probs[i], probs[n + i] if cfg.swap else None, cfg.swap) for i in range(n)]
        n = len(orders)
        joint = cfg.swap and cfg.adaptive in JOINT_RULES
        counts = self._vote(texts, cfg, [(i, n + i) for i in range(n)] if joint else [(i,) for i in range(len(texts))])
        return [combine_orders(counts[i], counts[n + i] if cfg.swap else None) for i in range(n)]

    # -- CoT votes ------------------------------------------------------------------------------
    def _vote(self, texts: list[str], cfg: JudgeConfig, items: list[tuple[int, ...]]) -> list[VoteCount]:
        """Votes for each of ``texts``, drawn in rounds until every item (a tuple of indices into
        ``texts``: its orders) is decided by :func:`~genrm_plugin.votes.orders_decided`; a decided
        item stays decided. A prompt text shared by items is drawn once, while any of them is not."""
        unique = list(dict.fromkeys(texts))  # identical judge prompts are judged once
        counts = {t: VoteCount() for t in unique}
        per_round = cfg.k if cfg.adaptive == "off" else min(cfg.round_size, cfg.k)
        active, pending, drawn, round_index = unique, items, 0, 0
        while active:
            n = min(per_round, cfg.k - drawn)
            outputs = self.backend.generate(active, n, cfg.sampling(), seed=_round_seed(cfg.seed, round_index))
            for text, samples in zip(active, outputs):
                for sample in samples:
                    counts[text].add(parse_verdict(sample), sample)
            drawn += n
            round_index += 1
            pending = [item for item in pending
                       if not orders_decided([counts[texts[i]] for i in item], cfg.k, cfg.adaptive, cfg.confidence)]
            undecided = {texts[i] for item in pending for i in item}
            active = [t for t in active if t in undecided]
        return [_copy(counts[t]) for t in texts]

    # -- no-CoT ---------------------------------------------------------------------------------
    def _verdict_probabilities(self, texts: list[str]) -> list[float]:
        unique = list(dict.fromkeys(texts))
        logprobs = self.backend.choice_logprobs(unique, [verdict_text("A"), verdict_text("B")])
        p_of = {t: _softmax_first(lp) for t, lp in zip(unique, logprobs)}
        return [p_of[t] for t in texts]


def _softmax_first(logprobs: Sequence[float]) -> float:
    la, lb = logprobs[0], logprobs[1]
    m = max(la, lb)
    ea, eb = math.exp(la - m), math.exp(lb - m)
    return ea / (ea + eb)


def _copy(count: VoteCount) -> VoteCount:
    return VoteCount(count.a, count.b, count.abstain, list(count.rationales))


def _round_seed(seed: int, round_index: int) -> int:
    return (seed * 1_000_003 + round_index * 7_919) % (2**31 - 1)


def _check_inputs(prompts, answers_a, answers_b, hints) -> None:
    columns = {"prompts": prompts, "answers_a": answers_a, "answers_b": answers_b}
    if hints is not None:
        columns["hints"] = hints
    lengths = {name: len(col) for name, col in columns.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"compare() inputs differ in length: {lengths}")
    for name, col in columns.items():
        for i, value in enumerate(col):
            if not isinstance(value, str):
                raise TypeError(f"{name}[{i}] must be a string, got {type(value).__name__}")
    for i, h in enumerate(hints or []):
        if h not in ("A", "B"):
            raise ValueError(f"hints[{i}] must be 'A' or 'B', got {h!r}")
