"""veRL: a GenRM judge as veRL's custom reward function.

veRL loads ``custom_reward_function.path`` with ``importlib.util.spec_from_file_location`` and calls
``custom_reward_function.name`` (``compute_score`` by default) with ``reward_kwargs`` bound:

* naive reward manager: ``compute_score(data_source, solution_str, ground_truth, extra_info)`` once
  per response -> ``{"score": reward, ...}``; veRL 0.9's reward loop makes these calls from many
  threads at once, and they are micro-batched into shared judge calls (``max_batch``,
  ``max_wait_ms`` of the ``genrm serve`` YAML);
* batch reward manager (``reward_model.reward_manager=batch``; one judge call for the whole batch,
  much faster for a generative judge): ``compute_score_batch(data_sources, solution_strs,
  ground_truths, extra_infos)`` -> one dict per response.

Each response (``solution_str``, veRL's decoded response without the prompt) is judged against the
reference: ``extra_info["reference"]`` when present (e.g. a full worked solution), else
``ground_truth`` (strings and numbers accepted). veRL does not pass the prompt to reward functions,
so the question the judge sees comes from ``extra_info["question"]`` (put it there in the dataset's
preprocessing, as veRL's own GSM8K/MATH examples do); keys are set in :class:`VerlConfig`.

The returned dict: ``score`` (P(response > reference) under ``RewardConfig.mapping``), ``win_prob``
(in [0, 1]) and ``abstained`` (1.0 when every vote abstained; the score then uses the stand-in
probability ``RewardConfig.abstain_p``, else 1/2, because veRL needs a number). veRL logs the extra
keys as ``reward_extra_info``. The judge is built once per process from ``$GENRM_CONFIG`` (the
``genrm serve --config`` YAML; ``question_key``/``reference_key``/``require_question`` go there too).

With a pointwise reward (:class:`~genrm_plugin.critique_reward.CritiqueReward`, ``reward_kind:
critique`` in the YAML) no reference is read -- ``ground_truth`` may be anything -- and the dict holds
``score`` (the reward head's output), ``sigmoid_reward`` and ``abstained``. The numbers come from the
reward core's ``reward.score_items`` either way.
"""

from __future__ import annotations

import threading
from typing import Any, Sequence

from genrm_plugin.settings import Settings, VerlConfig, shared



class VerlReward:
    """``compute_score`` / ``compute_score_batch`` over a reward's ``score_items``
    (:class:`~genrm_plugin.reward.GenRMReward` or :class:`~genrm_plugin.critique_reward.CritiqueReward`).

    ``score_batch`` judges a whole batch in one call. ``score_one`` (veRL's per-response
    ``compute_score``, which veRL 0.9's reward loop calls from many worker threads at once) goes
    through a :class:`~genrm_plugin.serving.batcher.MicroBatcher`, so concurrent calls share judge
    calls (``batch``: its :class:`~genrm_plugin.serving.batcher.BatchConfig`).
    """

    def __init__(self, reward: Any, config: VerlConfig | None = None, batch: Any = None) -> None:
        self.reward = reward
        self.config = config or VerlConfig()
        self.batch = batch
        self._batcher: Any = None
        self._loop: Any = None
        self._lock = threading.Lock()

    def score_batch(
        self, data_sources: Sequence[Any], solution_strs: Sequence[Any], ground_truths: Sequence[Any], extra_infos: Sequence[Any] | None = None
    ) -> list[dict[str, float]]:
        n = len(solution_strs)
        extra_infos = [None] * n if extra_infos is None else list(extra_infos)
        lengths = {"data_sources": len(data_sources), "solution_strs": n, "ground_truths": len(ground_truths), "extra_infos": len(extra_infos)}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"veRL reward inputs differ in length: {lengths}")
        return self.score_items([self._item(solution_strs[i], ground_truths[i], extra_infos[i], i) for i in range(n)])

    def score_one(self, data_source: Any, solution_str: Any, ground_truth: Any, extra_info: Any = None) -> dict[str, float]:
        """One response (veRL's naive managers); concurrent calls are micro-batched into shared judge calls."""
        item = self._item(solution_str, ground_truth, extra_info, 0)
        with self._lock:
            if self._batcher is None:
                from genrm_plugin.asyncloop import BackgroundLoop
                from genrm_plugin.serving.batcher import MicroBatcher

                self._batcher = MicroBatcher(self.score_items, self.batch)
                self._loop = BackgroundLoop("genrm-verl-batcher")
        return self._loop.run(self._batcher.submit([item]))[0]

    def score_items(self, items: Sequence[tuple[str, str, str | None]]) -> list[dict[str, float]]:
        """(question, response, reference) items scored in one call -> veRL's result dicts."""
        questions, responses, references = (list(column) for column in zip(*items)) if items else ([], [], [])
        scores = self.reward.score_items(questions, responses, references)
        label = self.reward.score_name
        return [{"score": s.reward, label: s.score, "abstained": float(s.abstained)} for s in scores]

    def close(self) -> None:
        """Stop the micro-batcher's background loop (if ``score_one`` started it)."""
        if self._loop is not None and self._loop.running:
            self._loop.run(self._batcher.close())
            self._loop.close()

    def _item(self, solution_str: Any, ground_truth: Any, extra_info: Any, row: int) -> tuple[str, str, str | None]:
        info = extra_info if extra_info is not None else {}
        if not isinstance(info, dict):
            raise TypeError(f"extra_infos[{row}] must be a dict or None, got {type(info).__name__}")
        return self._question(info, row), _text(solution_str, f"solution_strs[{row}]"), self._reference(info, ground_truth, row)

    def _reference(self, info: dict, ground_truth: Any, row: int) -> str | None:
        if not self.reward.needs_reference:
            return None
        ref = info.get(self.config.reference_key)
        if ref is not None:
            return _text(ref, f"extra_infos[{row}][{self.config.reference_key!r}]")
        return _text(ground_truth, f"ground_truths[{row}]")

    def _question(self, info: dict, row: int) -> str:
        question = info.get(self.config.question_key)
        if question is None:
            if self.config.require_question:
                raise KeyError(
                    f"extra_infos[{row}] has no {self.config.question_key!r}: veRL does not pass the prompt to "
                    f"reward functions, so put the question into extra_info when preprocessing the dataset "
                    f"(or set require_question: false)"
                )
            return ""
        return _text(question, f"extra_infos[{row}][{self.config.question_key!r}]")


def default_reward() -> VerlReward:
    """The process-wide :class:`VerlReward` built from ``$GENRM_CONFIG`` (once)."""
    return shared("verl compute_score", _from_settings)


def _from_settings(settings: Settings) -> VerlReward:
    return VerlReward(settings.build_reward(), settings.verl, settings.batch)


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs) -> dict[str, float]:
    """veRL's per-response reward function (naive reward managers; concurrent calls are micro-batched)."""
    return default_reward().score_one(data_source, solution_str, ground_truth, extra_info)


def compute_score_batch(data_sources, solution_strs, ground_truths, extra_infos=None, **kwargs) -> list[dict[str, float]]:
    """veRL's batched reward function (``reward_model.reward_manager=batch``)."""
    return default_reward().score_batch(data_sources, solution_strs, ground_truths, extra_infos)


def _text(value: Any, name: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"{name} must be a string (or a number), got {type(value).__name__}")
