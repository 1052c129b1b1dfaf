"""GenRMReward: a generative judge as a scalar, reference-anchored reward (TRL reward-function convention).

For each completion ``y`` of prompt ``x`` the judge compares ``y`` with a reference completion
``y_ref`` for the same prompt, and the reward is a function of P(y > y_ref | x) (GenRM paper §3: policy
optimisation then maximises the probability of beating the reference distribution):

* ``win_prob`` (default): r = p, in [0, 1];
* ``centered``: r = 2p - 1, in [-1, 1] (0 = as good as the reference);
* ``logit``: r = log(p / (1 - p)) clipped to [-logit_clip, logit_clip] (p = 0 or 1 give the clip).

p is the judge's vote share (CoT, majority of K rationales) or verdict-token probability (no-CoT),
swap-combined when the judge's config says so (see :mod:`genrm_plugin.votes`). Items where every
vote abstained have no probability: their reward is ``None`` unless ``RewardConfig.abstain_p``
supplies a stand-in probability; where a framework cannot take a missing number (PPO, OpenRLHF, veRL,
Best-of-N, the server's ``/get_reward``) the stand-in is ``abstain_p``, else 1/2 (a tie with the
reference). That rule lives in one place, :meth:`RewardConfig.probability`, and the mapping in
:func:`map_probability`. TRL (GRPO/RLOO) stores ``None`` as NaN: a completion that every
reward function left unscored is kept out of its group's baseline and gets zero advantage; next to
other reward functions, a ``None`` adds 0 to the weighted sum.

Frameworks that need a number per item (PPO, OpenRLHF, veRL, Best-of-N, the server) call the reward
core's one entry, :meth:`GenRMReward.score_items`; the pointwise, reference-free
:class:`~genrm_plugin.critique_reward.CritiqueReward` has the same surface, so integrations serve both.

References come from a dataset column (``RewardConfig.reference_column``; TRL passes every dataset
column to reward functions) or, when the column is absent, from ``reference_fn(prompts) -> list[str]``
(e.g. :class:`ReferenceGenerator` over a reference model), called once per new prompt and cached in
memory and optionally in a JSONL file (``RewardConfig.reference_cache``).

Efficiency: identical (prompt, completion, reference) items in a batch are judged once (before
rendering; the judge also judges identical rendered prompts once). The whole batch goes to the judge
in one call, so the backend sees a GRPO group's G judge prompts together: with the reference shown
first (the swapped order) they share the template + question + reference prefix, which the
transformers backend encodes once per batch (vLLM: automatic prefix caching), and each judge
prompt's prefill is shared by its K samples.

Logging: after each call ``last_metrics`` holds ``win_prob`` (mean p over scored items),
``abstain_rate``, ``position_consistency`` (share of swap-consistent items, ``None`` if undefined),
``votes_used`` (mean votes per judgment), ``judgments`` (distinct items judged), ``items`` and
``seconds``. Inside TRL (GRPO/RLOO) the first four go to the trainer's logs through ``log_metric``
as ``<name>/<metric>``, and the per-completion p goes to the completions table through ``log_extra``.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from genrm_plugin.conversation import prompt_text, response_text
from genrm_plugin.judge import GenerativeJudge
from genrm_plugin.references import ReferenceCache, ReferenceGenerationConfig, ReferenceGenerator  # noqa: F401 - re-exported
from genrm_plugin.votes import Preference, consistency_rate

MAPPINGS = ("win_prob", "centered", "logit")
TIE = 0.5  # the stand-in probability of an all-abstain item where a number is required
# Keyword arguments TRL passes that are not dataset columns.
TRAINER_KWARGS = ("trainer_state", "log_extra", "log_metric", "environments", "completion_ids_list")


@dataclass
class ItemScore:
    """One scored item as numbers, for frameworks that need a number for every item.

    Fields:
        score: a number in [0, 1]: P(response > reference) for :class:`GenRMReward` (the stand-in
            probability if abstained); sigmoid(reward) for a pointwise critique reward.
        reward: the reward itself: ``score`` under the mapping (``win_prob``, ``centered`` or
            ``logit``) for :class:`GenRMReward`; the reward head's output for a critique reward.
        abstained: no judgment was made (every vote abstained; the critic or head failed) and the
            numbers are stand-ins.
        consistent: both answer orders named the same winner (``None``: undefined or pointwise).
    """

    score: float
    reward: float
    abstained: bool
    consistent: bool | None


@dataclass
class RewardConfig:
    """How judge preferences become rewards.

    Fields:
        mapping: ``win_prob`` (r = p, default), ``centered`` (r = 2p - 1) or ``logit``
            (r = log(p / (1 - p)) clipped to +-``logit_clip``), where p = P(completion > reference).
        logit_clip: bound of the ``logit`` mapping (p of 0 or 1 map to -clip / +clip).
        reference_column: dataset column holding one reference completion per row.
        reference_cache: optional JSONL file caching generated references (``reference_fn``) across runs.
        abstain_p: stand-in probability for items where every vote abstained (``None``: the reward is
            ``None``, i.e. unscored; 0.5 treats them as ties with the reference).
        name: the reward's ``__name__`` (TRL names its ``rewards/<name>`` logs with it) and the prefix of
            the metrics sent through ``log_metric``.
        log_completions: send the per-completion P(win) to TRL's completions table (``log_extra``).
    """

    mapping: str = field(default="win_prob", metadata={"choices": MAPPINGS})
    logit_clip: float = 5.0
    reference_column: str = "reference"
    reference_cache: str | None = None
    abstain_p: float | None = None
    name: str = "genrm"
    log_completions: bool = True

    def __post_init__(self) -> None:
        if self.mapping not in MAPPINGS:
            raise ValueError(f"RewardConfig.mapping must be one of {MAPPINGS}, got {self.mapping!r}")
        if not self.logit_clip > 0:
            raise ValueError(f"RewardConfig.logit_clip must be > 0, got {self.logit_clip}")
        if self.abstain_p is not None and not 0 <= self.abstain_p <= 1:
            raise ValueError(f"RewardConfig.abstain_p must be in [0, 1] or None, got {self.abstain_p}")
        if not self.name:
            raise ValueError("RewardConfig.name must be a non-empty string")

    def probability(self, preference: Preference, required: bool = False) -> float | None:
        """P(A > B) of ``preference`` with the abstention rule applied: the judge's probability; else
        ``abstain_p``; else ``None``, or 1/2 (a tie) when ``required`` (the caller needs a number)."""
        return win_probability(preference, self.abstain_p, required)

    def bounds(self) -> tuple[float, float]:
        """The range of rewards under this mapping."""
        return {"win_prob": (0.0, 1.0), "centered": (-1.0, 1.0)}.get(
            self.mapping, (-self.logit_clip, self.logit_clip)
        )


def win_probability(preference: Preference, abstain_p: float | None = None, required: bool = False) -> float | None:
    """The one rule for abstentions: the judge's P(A > B); else ``abstain_p``; else ``None``, or 1/2
    (a tie) when ``required`` (the caller cannot take a missing number)."""
    if preference.p_a is not None:
        return preference.p_a
    if abstain_p is not None:
        return abstain_p
    return TIE if required else None


def map_probability(p: float, mapping: str = "win_prob", logit_clip: float = 5.0) -> float:
    """The reward for win probability ``p`` under ``mapping`` (see the module docstring)."""
    if mapping == "win_prob":
        return p
    if mapping == "centered":
        return 2.0 * p - 1.0
    if mapping == "logit":
        if p <= 0.0:
            return -logit_clip
        if p >= 1.0:
            return logit_clip
        return max(-logit_clip, min(logit_clip, math.log(p / (1.0 - p))))
    raise ValueError(f"mapping must be one of {MAPPINGS}, got {mapping!r}")


# -- the reward ---------------------------------------------------------------------------------
class GenRMReward:
    """Reward = mapping(P(completion > reference | prompt)) from a :class:`GenerativeJudge`.

    Args:
        judge: the pairwise judge (its config sets mode, K, swap, adaptive voting).
        config: mapping, reference source and logging (:class:`RewardConfig`).
        reference_fn: ``prompts -> references`` used when the reference column is absent (each new
            prompt once; cached). Receives prompts as TRL gives them (strings or message lists).
    """

    def __init__(
        self,
        judge: GenerativeJudge,
        config: RewardConfig | None = None,
        reference_fn: Callable[[list[Any]], list[str]] | None = None,
    ) -> None:
        self.judge = judge
        self.config = config or RewardConfig()
        self.reference_fn = reference_fn
        self.references = ReferenceCache(self.config.reference_cache)
        self.last_metrics: dict[str, float | None] = {}
        self.__name__ = self.config.name
        self.on_report: Callable[[dict], None] | None = None  # extra metrics sink (GenRMMetricsCallback)
        self._lock = threading.Lock()  # one judge call at a time (sync and async callers may share it)

    # the reward core's surface, shared with pointwise rewards (see the module docstring)
    needs_reference = True  # each item is judged against a reference (given, or from reference_fn)
    score_name = "win_prob"  # what ItemScore.score is, as integrations label it
    metric_keys = ("win_prob", "abstain_rate", "position_consistency", "votes_used")  # sent to trainer logs

    def score_items(
        self,
        questions: Sequence[str],
        responses: Sequence[str],
        references: Sequence[str | None] | None = None,
        prompts: Sequence[Any] | None = None,
    ) -> list[ItemScore]:
        """A number for every item (PPO, OpenRLHF, veRL, Best-of-N, the server): each response judged
        against ``references[i]``; a reference that is ``None`` (all of them when ``references`` is
        ``None``) comes from ``reference_fn`` (:meth:`references_for`, which hands it ``prompts[i]``,
        default ``questions[i]``). All-abstain items get the stand-in probability. Sets
        ``last_metrics`` and tells ``on_report``."""
        refs = [None] * len(questions) if references is None else list(references)
        check_lengths({"questions": questions, "responses": responses, "references": refs})
        missing = [i for i, r in enumerate(refs) if r is None]
        if missing:
            raw = questions if prompts is None else prompts
            generated = self.references_for([raw[i] for i in missing], [questions[i] for i in missing], {})
            for i, ref in zip(missing, generated):
                refs[i] = ref
        prefs = self.preferences(questions, responses, refs)
        self.report(prefs)
        return self.item_scores(prefs)

    def compare(self, questions: Sequence[str], answers_a: Sequence[str], answers_b: Sequence[str]) -> list[Preference]:
        """The judge's preference of each ``answers_a[i]`` over ``answers_b[i]`` (identical items once)."""
        check_text_columns({"questions": questions, "answers_a": answers_a, "answers_b": answers_b})
        with self._lock:
            return compare_unique(self.judge, questions, answers_a, answers_b)[0]

    def item_tokens(self, fallback_context: int) -> int:
        """Tokens one item (question + response + reference) may hold: what the judge's context
        leaves after its template and generated tokens (``fallback_context`` when it does not tell)."""
        from genrm_plugin.serving.limits import default_item_tokens

        return default_item_tokens(self.judge, fallback_context)

    @property
    def tokenizer(self) -> Any:
        """The judge's tokenizer (``None`` for backends without one), for counting item tokens."""
        return getattr(self.judge.backend, "tokenizer", None)

    def describe(self) -> dict[str, Any]:
        """The settings a server's ``/health`` shows."""
        judge = self.judge.config
        return {"backend": type(self.judge.backend).__name__, "judge": {"mode": judge.mode, "k": judge.k, "swap": judge.swap},
                "reward": {"mapping": self.config.mapping, "name": self.config.name}}

    # -- text core ------------------------------------------------------------------------------
    def score(self, prompts: Sequence[str], completions: Sequence[str], references: Sequence[str]) -> list[float | None]:
        """Rewards for ``completions[i]`` against ``references[i]`` on ``prompts[i]`` (``None``: all abstained)."""
        return [self.reward_of(p) for p in self.preferences(prompts, completions, references)]

    def preferences(
        self, prompts: Sequence[str], completions: Sequence[str], references: Sequence[str]
    ) -> list[Preference]:
        """The judge's preference of each completion (as A) over its reference (as B); identical
        items are judged once. Sets ``last_metrics``."""
        check_text_columns({"prompts": prompts, "completions": completions, "references": references})
        start = time.perf_counter()
        with self._lock:
            prefs, judged = compare_unique(self.judge, prompts, completions, references)
        self.last_metrics = _metrics(prefs, judged, time.perf_counter() - start)
        return prefs

    def reward_of(self, preference: Preference, required: bool = False) -> float | None:
        """The reward for one preference (A = the completion); ``None`` if it has no probability and
        ``required`` is off (see :meth:`RewardConfig.probability`)."""
        p = self.config.probability(preference, required)
        return None if p is None else map_probability(p, self.config.mapping, self.config.logit_clip)

    def item_scores(self, preferences: Sequence[Preference]) -> list[ItemScore]:
        """A number for every preference (A = the response), stand-ins for abstentions (:meth:`score_items`)."""
        out = []
        for pref in preferences:
            p = self.config.probability(pref, required=True)
            mapped = map_probability(p, self.config.mapping, self.config.logit_clip)
            out.append(ItemScore(p, mapped, pref.p_a is None, pref.consistent))
        return out

    # -- TRL convention -------------------------------------------------------------------------
    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], completion_ids=None, **kwargs: Any):
        """TRL reward function: ``prompts``/``completions`` as plain text or chat messages, dataset
        columns as keyword arguments (the reference column among them), ``log_metric``/``log_extra``
        when the trainer passes them. Returns one reward (or ``None``) per completion."""
        questions, answers = call_texts(prompts, completions)
        references = self.references_for(prompts, questions, kwargs)
        prefs = self.preferences(questions, answers, references)
        self.report(prefs, kwargs.get("log_metric"), kwargs.get("log_extra"))
        return [self.reward_of(p) for p in prefs]

    def references_for(self, prompts: Sequence[Any], questions: Sequence[str], columns: dict[str, Any]) -> list[str]:
        """One reference text per row: from the reference column, else from ``reference_fn`` (cached)."""
        name = self.config.reference_column
        if name in columns:
            values = columns[name]
            check_lengths({"prompts": prompts, name: values})
            return [response_text(v, f"{name}[{i}]") for i, v in enumerate(values)]
        if self.reference_fn is None:
            available = sorted(k for k in columns if k not in TRAINER_KWARGS)
            raise KeyError(
                f"GenRMReward needs a reference completion per prompt: column {name!r} is not among the "
                f"dataset columns passed by the trainer {available}; set RewardConfig.reference_column "
                f"or pass reference_fn (e.g. ReferenceGenerator)"
            )
        missing = {q: p for q, p in zip(questions, prompts) if q not in self.references}
        if missing:
            generated = self.reference_fn(list(missing.values()))
            if len(generated) != len(missing):
                raise ValueError(f"reference_fn returned {len(generated)} references for {len(missing)} prompts")
            texts = [response_text(g, f"reference_fn output[{i}]") for i, g in enumerate(generated)]
            self.references.update(list(missing), texts)
        return [self.references[q] for q in questions]

    def report(self, prefs: Sequence[Preference], log_metric=None, log_extra=None) -> None:
        """Send ``last_metrics`` (and per-item P(win)) to a trainer's logging hooks and ``on_report``."""
        send_report(self, log_metric, log_extra, "p_win", [p.p_a for p in prefs])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.__name__!r}, mapping={self.config.mapping!r}, judge={self.judge.config})"


def send_report(reward: Any, log_metric, log_extra, column: str, values: list) -> None:
    """A reward's ``last_metrics`` to its ``on_report`` and to TRL's ``log_metric`` (its
    ``metric_keys``, as ``<name>/<key>``); ``values`` (one per item) to ``log_extra`` as
    ``<name>_<column>`` when its config logs completions."""
    if reward.on_report is not None:
        reward.on_report(reward.last_metrics)
    if log_metric is not None:
        for key in reward.metric_keys:
            if reward.last_metrics.get(key) is not None:
                log_metric(f"{reward.__name__}/{key}", float(reward.last_metrics[key]))
    if log_extra is not None and reward.config.log_completions:
        log_extra(f"{reward.__name__}_{column}", values)


def in_a_thread(call: Callable) -> Callable:
    """An ``async`` ``__call__`` running the reward function ``call`` in a worker thread: TRL
    (GRPO/RLOO) detects it and runs it concurrently with other async reward functions."""

    async def __call__(self, prompts, completions, completion_ids=None, **kwargs):
        return await asyncio.to_thread(call, self, prompts, completions, completion_ids, **kwargs)

    return __call__


class AsyncGenRMReward(GenRMReward):
    """:class:`GenRMReward` with an ``async`` ``__call__`` (:func:`in_a_thread`)."""

    __call__ = in_a_thread(GenRMReward.__call__)


def compare_unique(
    judge: GenerativeJudge,
    prompts: Sequence[str],
    answers_a: Sequence[str],
    answers_b: Sequence[str],
    seed: int | None = None,
) -> tuple[list[Preference], list[Preference]]:
    """``judge.compare`` with identical (prompt, a, b) items judged once.

    Returns (one preference per item, the preferences of the distinct items judged).
    """
    items = list(zip(prompts, answers_a, answers_b))
    unique = list(dict.fromkeys(items))
    if not unique:
        return [], []
    judged = judge.compare([u[0] for u in unique], [u[1] for u in unique], [u[2] for u in unique], seed=seed)
    by_item = dict(zip(unique, judged))
    return [by_item[item] for item in items], judged


def _metrics(prefs: Sequence[Preference], judged: Sequence[Preference], seconds: float) -> dict[str, float | None]:
    scored = [p.p_a for p in prefs if p.p_a is not None]
    return {
        "win_prob": sum(scored) / len(scored) if scored else None,
        "abstain_rate": (len(prefs) - len(scored)) / len(prefs) if prefs else None,
        "position_consistency": consistency_rate(list(prefs)),
        "votes_used": sum(p.votes_used for p in judged) / len(judged) if judged else None,
        "judgments": len(judged),
        "items": len(prefs),
        "seconds": seconds,
    }


def call_texts(prompts: Sequence[Any], completions: Sequence[Any]) -> tuple[list[str], list[str]]:
    """A TRL reward call's prompts and completions as text (plain text or chat messages, by the
    rule of :mod:`genrm_plugin.conversation`); errors name the field and row."""
    check_lengths({"prompts": prompts, "completions": completions})
    questions = [prompt_text(p, f"prompts[{i}]") for i, p in enumerate(prompts)]
    return questions, [response_text(c, f"completions[{i}]") for i, c in enumerate(completions)]


def check_lengths(columns: dict[str, Sequence[Any]]) -> None:
    """Each column a list (not a string), all of one length; else an error naming them."""
    lengths = {}
    for name, col in columns.items():
        if isinstance(col, (str, bytes)) or not hasattr(col, "__len__"):
            raise TypeError(f"{name} must be a list, got {type(col).__name__}")
        lengths[name] = len(col)
    if len(set(lengths.values())) > 1:
        raise ValueError(f"reward inputs differ in length: {lengths}")


def check_text_columns(columns: dict[str, Sequence[Any]]) -> None:
    """:func:`check_lengths`, and every value a string."""
    check_lengths(columns)
    for name, col in columns.items():
        for i, value in enumerate(col):
            if not isinstance(value, str):
                raise TypeError(f"{name}[{i}] must be a string, got {type(value).__name__}")
