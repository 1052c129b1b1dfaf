"""The shared settings file (``genrm.yaml``): every section of the judge stack and its front ends, by name.

One flat YAML mapping of field names configures ``genrm serve``, the OpenRLHF reward file and veRL's
``compute_score`` alike (each takes the sections it needs; an unknown key is an error naming it).
:class:`Settings` holds one dataclass per section, by name -- ``settings.judge.k``,
``settings.serve.port`` -- and builds the reward the sections describe (:meth:`Settings.build_reward`:
the pairwise GenRM judge, where a trained judge's card fills the judge settings the file leaves
unset, or -- ``reward_kind: critique`` -- a pointwise critique reward model). The reward files of
OpenRLHF and veRL get one object per process from ``$GENRM_CONFIG`` through :func:`shared`.

Sections: ``backend`` (:class:`~genrm_plugin.backends.factory.BackendConfig`), ``vllm``, ``openai``
(engine / client settings), ``judge`` (:class:`~genrm_plugin.judge.JudgeConfig`), ``reward``
(:class:`~genrm_plugin.reward.RewardConfig`), ``critique`` (:class:`CritiqueSettings`: which reward
to build, and the critique RM's model and sampling; its keys are prefixed ``critique_`` where the
judge's would clash, as the file is one flat mapping), ``serve`` and ``batch`` (the server and its
micro-batching), ``openrlhf`` and ``verl`` (how each framework's call becomes reward inputs).

A critique reward from the same file::

    reward_kind: critique
    critique_model: runs/cloud/final    # genrm train --recipe cloud|synthetic-critique-rm
    critique_k: 4                        # CLoud self-consistency: mean over 4 sampled critiques
    critique_temperature: 0.7
    device: cuda                         # the backend section runs the critic

The two framework sections are defined here, not in their integration modules (which re-export
them): the integrations build their rewards from these settings, so the settings cannot import
the integrations without an import cycle.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Sequence, TypeVar

from genrm_plugin.backends.factory import BackendConfig
from genrm_plugin.backends.openai import OpenAIConfig
from genrm_plugin.backends.vllm import VLLMConfig
from genrm_plugin.judge import JudgeConfig
from genrm_plugin.reward import RewardConfig
from genrm_plugin.serving.batcher import BatchConfig
from genrm_plugin.serving.config import ServeConfig

CONFIG_ENV = "GENRM_CONFIG"
RESPONSE_FROM = ("strip_prompt", "after_marker", "query")
REWARD_KINDS = ("genrm", "critique")
REFERENCE_FROM = ("labels", "label_field", "reference_fn")
END_STRINGS = ["<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "<|endoftext|>", "</s>", "<|end|>", "<eos>", "<end_of_turn>"]
T = TypeVar("T")
_shared: dict[str, Any] = {}
_shared_lock = threading.Lock()


@dataclass
class OpenRLHFConfig:
    """How OpenRLHF's ``query``/``prompts``/``labels`` become (question, response, reference).

    Fields:
        response_from: ``strip_prompt`` (query minus its prompt prefix), ``after_marker`` (text after
            the last ``response_marker``) or ``query`` (the query is the response).
        response_marker: the chat template's assistant header, for ``after_marker``.
        strip_suffixes: end-of-turn strings removed (repeatedly) from the end of the response.
        question_pattern: regex applied to the prompt; its first group is the question shown to the
            judge (``None``: the whole prompt).
        reference_from: ``labels`` (labels are reference texts), ``label_field`` (labels are JSON
            objects holding the reference under ``label_field``) or ``reference_fn`` (generated).
        label_field: key of the reference inside each label for ``label_field``.
    """

    response_from: str = field(default="strip_prompt", metadata={"choices": RESPONSE_FROM})
    response_marker: str = ""
    strip_suffixes: list[str] = field(default_factory=lambda: list(END_STRINGS))
    question_pattern: str | None = None
    reference_from: str = field(default="labels", metadata={"choices": REFERENCE_FROM})
    label_field: str = "reference"

    def __post_init__(self) -> None:
        if self.response_from not in RESPONSE_FROM:
            raise ValueError(f"OpenRLHFConfig.response_from must be one of {RESPONSE_FROM}, got {self.response_from!r}")
        if self.response_from == "after_marker" and not self.response_marker:
            raise ValueError("OpenRLHFConfig.response_from='after_marker' needs a non-empty response_marker")
        if self.reference_from not in REFERENCE_FROM:
            raise ValueError(f"OpenRLHFConfig.reference_from must be one of {REFERENCE_FROM}, got {self.reference_from!r}")
        if self.question_pattern is not None:
            try:
                compiled = re.compile(self.question_pattern, re.DOTALL)
            except re.error as e:
                raise ValueError(f"OpenRLHFConfig.question_pattern is not a valid regex: {e}") from None
            if compiled.groups < 1:
                raise ValueError("OpenRLHFConfig.question_pattern needs a capturing group (the question)")


@dataclass
class VerlConfig:
    """Where the question and the reference come from in veRL's call.

    Fields:
        question_key: ``extra_info`` key holding the prompt text shown to the judge.
        reference_key: ``extra_info`` key that, when present, replaces ``ground_truth`` as the reference.
        require_question: fail when ``extra_info`` has no question (``False``: judge with an empty question).
    """

    question_key: str = "question"
    reference_key: str = "reference"
    require_question: bool = True


@dataclass
class CritiqueSettings:
    """Which reward :meth:`Settings.build_reward` builds, and the critique reward model's settings.

    Fields:
        reward_kind: ``genrm`` (the pairwise judge of the ``backend``/``judge`` sections, against
            references) or ``critique`` (the pointwise critique reward model below; no reference).
        critique_model: a ``genrm train --recipe cloud|synthetic-critique-rm`` ``final/`` folder
            (its card names the kind, the critique template and length, and the critic).
        critic: where a synthetic-critique-rm's critiques come from (a model path; with ``backend:
            openai`` the endpoint's model name); ``None``: the card's (a cloud model critiques
            itself). The critic runs on the ``backend`` section's engine, dtype, device and batch size.
        critique_k: critiques per (prompt, response); the reward is the mean head output over them
            (CLoud's self-consistency; above 1 needs ``critique_temperature`` > 0).
        critique_temperature: critique sampling temperature (0: greedy).
        critique_top_p: critique nucleus mass.
        critique_max_new_tokens: longest critique (``None``: the length the card records).
        critique_seed: critique sampling seed.
        critique_name: the critique reward's name (TRL's ``rewards/<name>``, its metrics' prefix,
            OpenRLHF's ``extra_logs`` keys); ``log_completions`` of the reward section applies too.
        critique_max_item_tokens: most tokens of one (question, response) the critic reads, longer
            ones cut (``None``: what the critic's context holds after the request and the critique).
        critique_abstain_reward: the reward of an item the critique RM could not score, where a
            framework needs a number.
    """

    reward_kind: str = field(default="genrm", metadata={"choices": REWARD_KINDS})
    critique_model: str | None = None
    critic: str | None = None
    critique_k: int = 1
    critique_temperature: float = 0.0
    critique_top_p: float = 1.0
    critique_max_new_tokens: int | None = None
    critique_seed: int = 0
    critique_name: str = "critique"
    critique_max_item_tokens: int | None = None
    critique_abstain_reward: float = 0.0

    def __post_init__(self) -> None:
        if self.reward_kind not in REWARD_KINDS:
            raise ValueError(f"CritiqueSettings.reward_kind must be one of {REWARD_KINDS}, got {self.reward_kind!r}")
        if self.reward_kind == "critique" and not self.critique_model:
            raise ValueError("CritiqueSettings.critique_model is needed with reward_kind='critique': the final/ folder "
                             "of genrm train --recipe cloud|synthetic-critique-rm")
        if self.critique_k < 1 or (self.critique_k > 1 and self.critique_temperature <= 0):
            raise ValueError(f"CritiqueSettings.critique_k={self.critique_k} must be >= 1, and above 1 needs "
                             "critique_temperature > 0 (greedy critiques are all the same)")
        self.reward_config(True)  # validates the reward's fields

    def reward_config(self, log_completions: bool) -> Any:
        """The :class:`~genrm_plugin.critique_reward.CritiqueRewardConfig` of these settings."""
        from genrm_plugin.critique_reward import CritiqueRewardConfig

        return CritiqueRewardConfig(name=self.critique_name, log_completions=log_completions,
                                    max_item_tokens=self.critique_max_item_tokens, abstain_reward=self.critique_abstain_reward)

    def build_scorer(self, backend: BackendConfig, vllm: VLLMConfig, openai: OpenAIConfig) -> Any:
        """The :class:`~genrm_plugin.critique_scorer.CritiqueScorer` of ``critique_model``, its
        critic on ``backend``'s engine; the sampling fields set here replace the card's."""
        import dataclasses

        from genrm_plugin.critique_scorer import CritiqueScorer

        scorer = CritiqueScorer.from_pretrained(
            self.critique_model, critic=self.critic, device=backend.device, backend=backend.backend, vllm=vllm,
            openai=openai, batch_size=backend.batch_size, dtype=backend.dtype,
        )
        length = self.critique_max_new_tokens or scorer.config.max_new_tokens
        scorer.config = dataclasses.replace(
            scorer.config, k=self.critique_k, temperature=self.critique_temperature, top_p=self.critique_top_p,
            max_new_tokens=length, seed=self.critique_seed,
        )
        return scorer


@dataclass
class Settings:
    """Every section of ``genrm.yaml`` (see the module docstring).

    Fields:
        backend: which model and backend judge (``BackendConfig``).
        vllm: vLLM engine settings for ``backend: vllm``.
        openai: client settings for ``backend: openai`` (OpenAI-compatible endpoints).
        judge: how the judge is asked (mode, K, swap, template, sampling).
        reward: how preferences become rewards (mapping, abstentions, references).
        critique: which reward to build (``reward_kind``) and the critique reward model's settings.
        serve: the reward server (host, port, limits).
        batch: micro-batching of concurrent requests.
        openrlhf: how OpenRLHF's call becomes judge inputs.
        verl: how veRL's call becomes judge inputs.
    """

    backend: BackendConfig = field(default_factory=BackendConfig)
    vllm: VLLMConfig = field(default_factory=VLLMConfig)
    openai: OpenAIConfig = field(default_factory=OpenAIConfig)
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    critique: CritiqueSettings = field(default_factory=CritiqueSettings)
    serve: ServeConfig = field(default_factory=ServeConfig)
    batch: BatchConfig = field(default_factory=BatchConfig)
    openrlhf: OpenRLHFConfig = field(default_factory=OpenRLHFConfig)
    verl: VerlConfig = field(default_factory=VerlConfig)

    @classmethod
    def section_types(cls) -> dict[str, type]:
        """Section name -> its dataclass."""
        return {f.name: type(f.default_factory()) for f in fields(cls)}

    @classmethod
    def parse(cls, argv: Sequence[str], prog: str = "genrm") -> "Settings":
        """From flags and ``--config genrm.yaml`` (flags win)."""
        from genrm_plugin.config_parser import parse_configs

        types = cls.section_types()
        return cls(**dict(zip(types, parse_configs(tuple(types.values()), argv, prog))))

    @classmethod
    def from_file(cls, path: str | None, prog: str = "genrm") -> "Settings":
        """From a YAML file (``None``: every default)."""
        return cls.parse(["--config", path] if path else [], prog)

    @classmethod
    def from_env(cls, prog: str = "genrm") -> "Settings":
        """From the YAML file named by ``$GENRM_CONFIG`` (unset: every default)."""
        path = os.environ.get(CONFIG_ENV) or None
        if path and not os.path.isfile(path):
            raise FileNotFoundError(f"${CONFIG_ENV} names {path!r}, which is not a file")
        return cls.from_file(path, prog)

    def build_reward(self, reference_fn: Callable[[list[Any]], list[str]] | None = None) -> Any:
        """The reward these settings describe: the :class:`~genrm_plugin.reward.GenRMReward` (a
        trained judge's card fills the judge settings left unset:
        :func:`genrm_plugin.judge_card.apply_card`), or with ``reward_kind: critique`` the
        :class:`~genrm_plugin.critique_reward.CritiqueReward` (``reference_fn`` is then unused)."""
        if self.critique.reward_kind == "critique":
            from genrm_plugin.critique_reward import CritiqueReward

            scorer = self.critique.build_scorer(self.backend, self.vllm, self.openai)
            return CritiqueReward(scorer, self.critique.reward_config(self.reward.log_completions))
        from genrm_plugin.backends.factory import load_backend
        from genrm_plugin.judge import GenerativeJudge
        from genrm_plugin.judge_card import apply_card
        from genrm_plugin.reward import GenRMReward

        judge = apply_card(self.judge, self.backend.model)
        backend = load_backend(self.backend, vllm=self.vllm, openai=self.openai)
        return GenRMReward(GenerativeJudge(backend, judge), self.reward, reference_fn=reference_fn)


def shared(name: str, make: Callable[[Settings], T]) -> T:
    """One object per process and ``name``, built on first use by ``make(settings)`` from
    ``$GENRM_CONFIG`` (the OpenRLHF and veRL reward files use this)."""
    with _shared_lock:
        if name not in _shared:
            _shared[name] = make(Settings.from_env(prog=name))
        return _shared[name]
