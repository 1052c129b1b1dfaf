"""OpenRLHF: the judge as OpenRLHF's remote reward (HTTP server or ``.py`` reward file).

OpenRLHF's protocol (``openrlhf.utils.agent.SingleTurnAgentExecutor``): after each rollout it
decodes prompt + response tokens (special tokens kept) into one ``query`` string and either POSTs
``{"query": [...], "prompts": [...], "labels": [...]}`` to ``--reward.remote_url`` (our
``genrm serve``, :mod:`genrm_plugin.server`) or, when that URL ends in ``.py``, loads the file with
``importlib.util.spec_from_file_location`` and calls its ``reward_func(queries, prompts, labels)``
from worker threads (one query per call, many calls at once). The answer is
``{"rewards": [...], "scores": [...], "extra_logs": {...}}``; ``scores`` drive OpenRLHF's dynamic
filtering and must lie in [0, 1].

What we return per item: ``scores`` = P(response > reference) in [0, 1]; ``rewards`` = that
probability under ``RewardConfig.mapping`` (``win_prob``, ``centered``, ``logit``). Items where every
vote abstained get the stand-in probability (``RewardConfig.abstain_p``, else 1/2; see
:meth:`genrm_plugin.reward.GenRMReward.item_scores`) because OpenRLHF needs numbers; ``extra_logs`` carries
``<name>_abstained`` (how many items of the request were filled in) and ``<name>_items``.
With a pointwise reward (:class:`~genrm_plugin.critique_reward.CritiqueReward`, ``needs_reference``
off) ``scores`` = sigmoid(reward), ``rewards`` = the reward head's output, and no ``labels`` are
needed (sent ones are ignored). Either way the numbers come from the reward core's
``reward.score_items``; this module only translates the protocol.

How the response is cut out of ``query`` (:class:`OpenRLHFConfig`):

* ``response_from="strip_prompt"`` (default): ``query`` must start with ``prompts[i]`` (OpenRLHF
  builds it that way); the rest is the response. The judge's question is ``prompts[i]``.
* ``response_from="after_marker"``: the response is the text after the last ``response_marker``
  (e.g. ``"<|im_start|>assistant\\n"``), the question the text before it (when ``prompts`` is absent).
* ``response_from="query"``: the whole ``query`` is the response (clients that send responses only).
* End-of-turn strings in ``strip_suffixes`` (EOS tokens kept by OpenRLHF's decoding) are removed
  from the end of the response; ``question_pattern`` (a regex whose first group is the question)
  pulls the user's question out of a chat-templated prompt.

Where the reference travels: ``reference_from="labels"`` (default): ``labels[i]`` is the reference
text (OpenRLHF's ``--data.label_key`` column); ``"label_field"``: ``labels[i]`` is a JSON object (or
its string) and the reference is its ``label_field`` key; ``"reference_fn"``: no reference is sent,
``GenRMReward.reference_fn`` writes (and caches) one per question.

The reward file (``examples/openrlhf_reward_func.py`` or this module's :func:`reward_func`) builds
its judge from the YAML file named by ``$GENRM_CONFIG`` (:class:`genrm_plugin.settings.Settings`) and
micro-batches the concurrent calls OpenRLHF makes from its threads into shared judge calls.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any, Sequence

from genrm_plugin.reward import ItemScore
from genrm_plugin.settings import OpenRLHFConfig, Settings, shared





class RequestError(ValueError):
    """A request the protocol cannot use; ``field`` names the bad field (``query[3]``), ``code`` the
    kind of problem (``invalid_request``, ``invalid_unicode``)."""

    def __init__(self, field: str, message: str, code: str = "invalid_request") -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.detail = message
        self.code = code


@dataclass
class RewardItem:
    """One item to judge: the response against the reference (``None``: use ``reference_fn``)."""

    question: str
    response: str
    reference: str | None


def parse_request(
    config: OpenRLHFConfig,
    queries: Sequence[Any],
    prompts: Sequence[Any] | None,
    labels: Sequence[Any] | None,
    needs_reference: bool = True,
) -> list[RewardItem]:
    """Validate an OpenRLHF request and cut it into :class:`RewardItem` s (errors name field[row]).
    ``needs_reference`` off (a pointwise reward): ``labels`` are neither required nor read."""
    if not needs_reference:
        labels = None
    columns = {"query": queries, "prompts": prompts, "labels": labels}
    for name, column in columns.items():
        if column is not None and (isinstance(column, (str, bytes, dict)) or not hasattr(column, "__len__")):
            raise RequestError(name, f"must be a list, got {type(column).__name__}")
    lengths = {name: len(col) for name, col in columns.items() if col is not None}
    if len(set(lengths.values())) > 1:
        raise RequestError("query", f"query, prompts and labels differ in length: {lengths}")
    if prompts is None and config.response_from != "after_marker":
        raise RequestError("prompts", f"required with response_from={config.response_from!r}")
    if labels is None and needs_reference and config.reference_from != "reference_fn":
        raise RequestError("labels", f"required with reference_from={config.reference_from!r} (the references)")
    pattern = re.compile(config.question_pattern, re.DOTALL) if config.question_pattern else None
    items = []
    for i, query in enumerate(queries):
        require_text(query, f"query[{i}]")
        prompt = None if prompts is None else require_text(prompts[i], f"prompts[{i}]")
        question, response = _split(config, query, prompt, i)
        if pattern is not None:
            match = pattern.search(question)
            if not match:
                raise RequestError(f"prompts[{i}]", "question_pattern does not match the prompt")
            question = match.group(1)
        reference = None if labels is None or config.reference_from == "reference_fn" else _reference(config, labels[i], i)
        items.append(RewardItem(question, _strip_end(response, config.strip_suffixes), reference))
    return items


def score_items(reward: Any, items: Sequence[RewardItem]) -> list[ItemScore]:
    """``items`` scored in one call of the reward core (``reward.score_items``; a ``None``
    reference is generated by the reward's ``reference_fn``, or unneeded by a pointwise reward)."""
    return reward.score_items([it.question for it in items], [it.response for it in items], [it.reference for it in items])


def response_payload(name: str, scores: Sequence[ItemScore]) -> dict[str, Any]:
    """OpenRLHF's answer for one request (plain lists; JSON-ready)."""
    return {
        "rewards": [s.reward for s in scores],
        "scores": [s.score for s in scores],
        "extra_logs": {f"{name}_abstained": float(sum(s.abstained for s in scores)), f"{name}_items": float(len(scores))},
    }


class OpenRLHFReward:
    """OpenRLHF's ``reward_func(queries, prompts, labels, **kwargs)`` over a reward's ``score_items``
    (:class:`~genrm_plugin.reward.GenRMReward` or :class:`~genrm_plugin.critique_reward.CritiqueReward`).

    Returns ``{"rewards": tensor, "scores": tensor, "extra_logs": {...}}`` (float32 tensors, the
    shape OpenRLHF's own examples return). Calls arriving at once from OpenRLHF's worker threads are
    micro-batched (:class:`~genrm_plugin.serving.batcher.MicroBatcher` on a background loop).
    """

    def __init__(self, reward: Any, config: OpenRLHFConfig | None = None, batch: Any = None) -> None:
        from genrm_plugin.asyncloop import BackgroundLoop
        from genrm_plugin.serving.batcher import MicroBatcher

        self.reward = reward
        self.config = config or OpenRLHFConfig()
        if reward.needs_reference and self.config.reference_from == "reference_fn" and reward.reference_fn is None:
            raise ValueError("OpenRLHFConfig.reference_from='reference_fn' needs GenRMReward(reference_fn=...)")
        self.batcher = MicroBatcher(lambda items: score_items(reward, items), batch)
        self._loop = BackgroundLoop("genrm-openrlhf-batcher")

    def __call__(self, queries: Sequence[Any], prompts: Sequence[Any] | None = None, labels: Sequence[Any] | None = None, **kwargs: Any):
        import torch

        items = parse_request(self.config, queries, prompts, labels, self.reward.needs_reference)
        scores = self._loop.run(self.batcher.submit(items))
        payload = response_payload(self.reward.config.name, scores)
        return {
            "rewards": torch.tensor(payload["rewards"], dtype=torch.float32),
            "scores": torch.tensor(payload["scores"], dtype=torch.float32),
            "extra_logs": payload["extra_logs"],
        }

    def close(self) -> None:
        if self._loop.running:
            self._loop.run(self.batcher.close())
        self._loop.close()


def default_reward() -> OpenRLHFReward:
    """The process-wide :class:`OpenRLHFReward` built from ``$GENRM_CONFIG`` (once)."""
    return shared("openrlhf reward_func", _from_settings)


def _from_settings(settings: Settings) -> OpenRLHFReward:
    return OpenRLHFReward(settings.build_reward(), settings.openrlhf, settings.batch)


def reward_func(queries, prompts, labels=None, **kwargs):
    """OpenRLHF's reward-file entry point (``--reward.remote_url path/to/file.py``)."""
    return default_reward()(queries, prompts, labels, **kwargs)


def require_text(value: Any, name: str) -> str:
    """``value`` if it is a string of valid Unicode; else :class:`RequestError` naming ``name``.

    Lone surrogates (``"\\ud800"`` in JSON) decode to Python strings but are no text: tokenizers and
    HTTP clients fail on them deep in the judge, so they are refused here (``invalid_unicode``).
    """
    if not isinstance(value, str):
        raise RequestError(name, f"must be a string, got {type(value).__name__}")
    if not value.isascii():
        bad = _SURROGATE.search(value)
        if bad is not None:
            raise RequestError(
                name, f"lone surrogate U+{ord(bad.group()):04X} at character {bad.start()} is not valid Unicode; "
                "send UTF-8 text", code="invalid_unicode",
            )
    return value


# -- helpers ------------------------------------------------------------------------------------
_SURROGATE = re.compile("[\ud800-\udfff]")
_UNITS_PER_CALL = 4096  # end markers one regex call may remove (the GIL is held for one call at a time)


def _split(config: OpenRLHFConfig, query: str, prompt: str | None, row: int) -> tuple[str, str]:
    """(question, response) of one query."""
    if config.response_from == "query":
        return prompt, query
    if config.response_from == "strip_prompt":
        if not query.startswith(prompt):
            raise RequestError(
                f"query[{row}]",
                "does not start with prompts[{0}] (OpenRLHF sends prompt + response; if the decoded "
                "prompt differs from the sent one, use response_from='after_marker')".format(row),
            )
        return prompt, query[len(prompt) :]
    at = query.rfind(config.response_marker)
    if at < 0:
        raise RequestError(f"query[{row}]", f"response_marker {config.response_marker!r} not found")
    question = prompt if prompt is not None else query[:at]
    return question, query[at + len(config.response_marker) :]


def _strip_end(text: str, suffixes: Sequence[str]) -> str:
    """``text`` without the run of end markers (and whitespace between them) at its end.

    The same as removing, again and again, the first of ``suffixes`` that ends the right-stripped
    text (whitespace before the innermost marker removed stays), in linear time: a regular
    expression scans the reversed text, at most ``_UNITS_PER_CALL`` markers per call, so a thread
    running this on megabytes of markers never holds the interpreter for long.
    """
    units = _marker_units(tuple(s for s in suffixes if s and not s[-1].isspace()))
    if units is None or not text:
        return text
    backwards = text[::-1]
    cut = 0
    while (found := units.match(backwards, cut).end()) > cut:
        cut = found
    return text[: len(text) - cut]


@functools.lru_cache(maxsize=16)
def _marker_units(suffixes: tuple[str, ...]) -> re.Pattern | None:
    """Up to ``_UNITS_PER_CALL`` (whitespace, marker) units at the start of reversed text."""
    if not suffixes:
        return None
    alternatives = "|".join(re.escape(s[::-1]) for s in suffixes)
    return re.compile(rf"(?:\s*+(?:{alternatives})){{0,{_UNITS_PER_CALL}}}")


def _reference(config: OpenRLHFConfig, label: Any, row: int) -> str:
    if config.reference_from == "labels":
        return require_text(label, f"labels[{row}]")
    if isinstance(label, str):
        try:
            label = json.loads(label)
        except json.JSONDecodeError:
            raise RequestError(f"labels[{row}]", "is not a JSON object (reference_from='label_field')") from None
    if not isinstance(label, dict) or config.label_field not in label:
        raise RequestError(f"labels[{row}]", f"has no field {config.label_field!r}")
    return require_text(label[config.label_field], f"labels[{row}].{config.label_field}")
