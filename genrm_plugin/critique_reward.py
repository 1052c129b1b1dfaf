"""CritiqueReward: a critique reward model (CLoud, Synthetic-Critiques RM) as a pointwise scalar reward.

A critique RM (:class:`~genrm_plugin.critique_scorer.CritiqueScorer`) writes a critique of each
(prompt, completion) -- ``k`` of them with CLoud's self-consistency -- and its reward head reads a
scalar from (prompt, completion, critique); the reward is the mean head output. No reference is
needed: :attr:`CritiqueReward.needs_reference` is off, so OpenRLHF's ``labels`` and veRL's
``ground_truth`` are not read.

The reward core's surface is the one :class:`~genrm_plugin.reward.GenRMReward` has, so every entry
point takes either reward unchanged: TRL's reward-function ``__call__`` (GRPO/RLOO/OnlineDPO;
prompts and completions as text or chat messages, by :mod:`genrm_plugin.conversation`),
:meth:`CritiqueReward.score_items` (PPO's reward module, OpenRLHF, veRL, Best-of-N, the server's
``/get_reward``) and :meth:`CritiqueReward.compare` (the server's ``/v1/compare``:
p_a = sigmoid(r_a - r_b), the critiques as rationales).

Numbers: ``ItemScore.reward`` is the head's output r (unbounded); ``ItemScore.score`` is sigmoid(r),
in [0, 1] (OpenRLHF's ``scores``: a BT head's r is a log-odds). A scorer that fails on an item --
a non-finite reward (no critique, a broken head) -- leaves it unscored: ``None`` in TRL (kept out
of its group's baseline), ``abstained`` with the stand-in ``CritiqueRewardConfig.abstain_reward``
where a framework needs a number. A scorer that raises fails the call (the server answers 503 for
that request only: its micro-batcher isolates the failing request).

Bounded work: identical (question, response) items in a call are scored once, and each item is cut
to ``max_item_chars`` characters, then ``max_item_tokens`` tokens of the scorer's tokenizer (each
text to a fair share; :class:`~genrm_plugin.serving.limits.ItemLimits`, as the server bounds judge
items), before the critic sees it; the critic writes at most ``CritiqueConfig.max_new_tokens`` per
critique. Control markers in the texts are escaped by the critique prompt itself
(:func:`genrm_plugin.prompts.critique_messages` neutralises both texts).

Logging: after each call ``last_metrics`` holds ``reward_mean`` (mean over scored items),
``abstain_rate``, ``critiques_per_item``, ``critique_chars`` (mean characters per critique),
``items``, ``scored`` (distinct items) and ``seconds``; ``last_critiques`` holds each item's
critiques. Inside TRL the first four go to the trainer's logs through ``log_metric`` as
``<name>/<metric>``, and each completion's critiques (joined by :data:`CRITIQUE_SEPARATOR`) to the
completions table through ``log_extra`` as ``<name>_critique`` -- where GenRMReward logs P(win).
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from genrm_plugin.reward import ItemScore, call_texts, check_text_columns, in_a_thread, send_report
from genrm_plugin.serving.limits import ItemLimits, TokenMeter, judge_context_length
from genrm_plugin.votes import Preference

CRITIQUE_SEPARATOR = "\n\n---\n\n"  # between an item's k critiques in the completions table
FALLBACK_CONTEXT = 8192  # context assumed for the default item limit when the critic does not tell


@dataclass
class CritiqueRewardConfig:
    """How a critique RM's outputs become rewards and logs.

    Fields:
        name: the reward's ``__name__`` (TRL names its ``rewards/<name>`` logs with it) and the
            prefix of the metrics sent through ``log_metric``.
        log_completions: send each completion's critiques to TRL's completions table (``log_extra``).
        max_item_tokens: most tokens of one item (question + response) the critic reads, counted
            with the scorer's tokenizer; longer items are cut, each text to a fair share. ``None``:
            what the critic's context holds after the critique request's template and
            ``max_new_tokens`` (8192 assumed when the critic does not tell its context length).
        max_item_chars: most characters of one item, cut before any tokenizing (``None``: 16 x the
            token limit).
        abstain_reward: the stand-in reward of an item the scorer could not score (non-finite
            reward) where a framework needs a number (PPO, OpenRLHF, veRL, Best-of-N, the server).
    """

    name: str = "critique"
    log_completions: bool = True
    max_item_tokens: int | None = None
    max_item_chars: int | None = None
    abstain_reward: float = 0.0

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("CritiqueRewardConfig.name must be a non-empty string")
        for name in ("max_item_tokens", "max_item_chars"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"CritiqueRewardConfig.{name} must be >= 1 or None, got {getattr(self, name)}")
        if not math.isfinite(self.abstain_reward):
            raise ValueError(f"CritiqueRewardConfig.abstain_reward must be a finite number, got {self.abstain_reward}")


def sigmoid(x: float) -> float:
    """1 / (1 + e^-x) without overflow for large |x|."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


class CritiqueReward:
    """Reward = the critique RM's head output on (prompt, completion, its own critique).

    Args:
        scorer: a :class:`~genrm_plugin.critique_scorer.CritiqueScorer` (or anything with its
            ``score_critiqued(questions, responses) -> [CritiqueScore]``; its ``tokenizer``,
            ``critic``, ``prompt`` and ``config`` are used for the item limits when present), e.g.
            :class:`genrm_plugin.testing.ScriptedCritiqueScorer`.
        config: naming, logging, limits and the abstention stand-in (:class:`CritiqueRewardConfig`).
    """

    needs_reference = False  # pointwise: references are neither needed nor read
    score_name = "sigmoid_reward"  # what ItemScore.score is, as integrations label it
    metric_keys = ("reward_mean", "abstain_rate", "critiques_per_item", "critique_chars")

    def __init__(self, scorer: Any, config: CritiqueRewardConfig | None = None) -> None:
        if not callable(getattr(scorer, "score_critiqued", None)):
            raise TypeError(f"scorer must have score_critiqued(questions, responses), got {type(scorer).__name__}")
        self.scorer = scorer
        self.config = config or CritiqueRewardConfig()
        self.__name__ = self.config.name
        self.last_metrics: dict[str, float | None] = {}
        self.last_critiques: list[list[str]] = []
        self.on_report: Callable[[dict], None] | None = None  # extra metrics sink (GenRMMetricsCallback)
        self._lock = threading.Lock()  # one scorer call at a time (sync and async callers may share it)
        tokens = self.item_tokens(FALLBACK_CONTEXT)
        self.limits = ItemLimits(tokens, self.config.max_item_chars, truncate=True, meter=TokenMeter(self.tokenizer))

    # -- the reward core's surface --------------------------------------------------------------
    def score_items(
        self,
        questions: Sequence[str],
        responses: Sequence[str],
        references: Sequence[str | None] | None = None,
        prompts: Sequence[Any] | None = None,
    ) -> list[ItemScore]:
        """A number for every item: ``reward`` = the head's output, ``score`` = sigmoid(reward);
        unscored items get ``abstain_reward`` and ``abstained``. ``references`` and ``prompts``
        are ignored (pointwise). Sets ``last_metrics`` and tells ``on_report``."""
        scored = self.critiqued(questions, responses)
        self.report(scored)
        stand_in = self.config.abstain_reward
        return [
            ItemScore(sigmoid(s.reward), s.reward, False, None) if math.isfinite(s.reward)
            else ItemScore(sigmoid(stand_in), stand_in, True, None)
            for s in scored
        ]

    def compare(self, questions: Sequence[str], answers_a: Sequence[str], answers_b: Sequence[str]) -> list[Preference]:
        """P(A > B) = sigmoid(r_A - r_B) per item (``None`` when either is unscored), both answers
        scored in one call; the rationales are A's critiques, then B's."""
        check_text_columns({"questions": questions, "answers_a": answers_a, "answers_b": answers_b})
        n = len(questions)
        scored = self.critiqued(list(questions) * 2, list(answers_a) + list(answers_b))
        out = []
        for a, b in zip(scored[:n], scored[n:]):
            p = sigmoid(a.reward - b.reward) if math.isfinite(a.reward) and math.isfinite(b.reward) else None
            out.append(Preference(p_a=p, p_by_order=[p], rationales=list(a.critiques) + list(b.critiques)))
        return out

    def critiqued(self, questions: Sequence[str], responses: Sequence[str]) -> list[Any]:
        """The scorer's ``CritiqueScore`` for every item, items bounded (see the module docstring)
        and identical ones scored once. Sets ``last_metrics`` and ``last_critiques``."""
        check_text_columns({"questions": questions, "responses": responses})
        start = time.perf_counter()
        items = self.bounded(questions, responses)
        unique = list(dict.fromkeys(items))
        with self._lock:
            scored = self.scorer.score_critiqued([q for q, _ in unique], [r for _, r in unique]) if unique else []
        if len(scored) != len(unique):
            raise RuntimeError(f"the scorer returned {len(scored)} scores for {len(unique)} items")
        by_item = dict(zip(unique, scored))
        out = [by_item[item] for item in items]
        self.last_critiques = [list(s.critiques) for s in out]
        self.last_metrics = _metrics(out, scored, time.perf_counter() - start)
        return out

    def bounded(self, questions: Sequence[str], responses: Sequence[str]) -> list[tuple[str, str]]:
        """Each (question, response) cut to the item limits (characters first, then tokens)."""
        return self.limits.apply(list(zip(questions, responses)))  # tuples: hashable, deduplicated by the caller

    def item_tokens(self, fallback_context: int) -> int:
        """Tokens one item (question + response) may hold: ``max_item_tokens``, else what the
        critic's context leaves after the critique request's template and the critique."""
        if self.config.max_item_tokens is not None:
            return self.config.max_item_tokens
        from genrm_plugin.prompts import critique_messages

        critic = getattr(self.scorer, "critic", None)
        context = judge_context_length(critic) or fallback_context
        overhead = 0
        if callable(getattr(critic, "render", None)):
            template = critic.render(critique_messages("", "", getattr(self.scorer, "prompt", None)))
            overhead = TokenMeter(getattr(critic, "tokenizer", None)).counts([template])[0]
        generated = getattr(getattr(self.scorer, "config", None), "max_new_tokens", 0)
        room = context - generated - overhead
        if room < 1:
            raise ValueError(
                f"the critic's context ({context} tokens) leaves no room for an item after {generated} generated and "
                f"{overhead} template tokens; set CritiqueRewardConfig.max_item_tokens"
            )
        return room

    @property
    def tokenizer(self) -> Any:
        """The scorer's tokenizer (``None``: items are counted one token per word or sign)."""
        return getattr(self.scorer, "tokenizer", None)

    def describe(self) -> dict[str, Any]:
        """The settings a server's ``/health`` shows."""
        settings = getattr(self.scorer, "config", None)
        return {
            "backend": type(self.scorer).__name__,
            "critique": {"kind": getattr(self.scorer, "kind", None)}
            | (dataclasses.asdict(settings) if dataclasses.is_dataclass(settings) else {}),
            "reward": {"name": self.config.name, "max_item_tokens": self.limits.max_tokens},
        }

    # -- TRL convention -------------------------------------------------------------------------
    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], completion_ids=None, **kwargs: Any):
        """TRL reward function: ``prompts``/``completions`` as plain text or chat messages (other
        dataset columns are ignored), ``log_metric``/``log_extra`` when the trainer passes them.
        Returns one reward per completion (``None`` where the scorer gave no finite reward)."""
        questions, answers = call_texts(prompts, completions)
        scored = self.critiqued(questions, answers)
        self.report(scored, kwargs.get("log_metric"), kwargs.get("log_extra"))
        return [s.reward if math.isfinite(s.reward) else None for s in scored]

    def report(self, scored: Sequence[Any], log_metric=None, log_extra=None) -> None:
        """Send ``last_metrics`` (and the critiques) to a trainer's logging hooks and ``on_report``."""
        send_report(self, log_metric, log_extra, "critique", [CRITIQUE_SEPARATOR.join(s.critiques) for s in scored])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.__name__!r}, scorer={type(self.scorer).__name__})"


class AsyncCritiqueReward(CritiqueReward):
    """:class:`CritiqueReward` with an ``async`` ``__call__`` (the scorer runs in a worker thread)."""

    __call__ = in_a_thread(CritiqueReward.__call__)


def _metrics(items: Sequence[Any], distinct: Sequence[Any], seconds: float) -> dict[str, float | None]:
    rewards = [s.reward for s in items if math.isfinite(s.reward)]
    critiques = [c for s in distinct for c in s.critiques]
    return {
        "reward_mean": sum(rewards) / len(rewards) if rewards else None,
        "abstain_rate": (len(items) - len(rewards)) / len(items) if items else None,
        "critiques_per_item": len(critiques) / len(distinct) if distinct else None,
        "critique_chars": sum(map(len, critiques)) / len(critiques) if critiques else None,
        "items": len(items),
        "scored": len(distinct),
        "seconds": seconds,
    }
