"""TRL glue beyond the plain reward function.

* GRPO / RLOO (newest TRL): pass ``GenRMReward(judge)`` (or ``AsyncGenRMReward``), or the pointwise
  :class:`~genrm_plugin.critique_reward.CritiqueReward`, in ``reward_funcs``; nothing else is needed.
* OnlineDPO (``trl.experimental.online_dpo``): it calls reward functions with ``2 * prompts`` and
  the two completions of each prompt as the first and second halves, then keeps the higher-reward
  one as chosen. :class:`PairwiseGenRMReward` judges the halves directly against each other, so the
  judge picks chosen/rejected: first-half reward = mapping(P(first > second)), second-half reward =
  mapping(1 - P).
* PPO (``trl.experimental.ppo.PPOTrainer``, trl 1.10-1.12): :class:`GenRMRewardModel` is a module
  PPOTrainer accepts as ``reward_model``. PPO calls ``getattr(m, m.base_model_prefix)(input_ids=,
  attention_mask=, ...)`` on the policy tokenizer's ids (left-padded query + response, pad ids
  replaced by 0) and then ``m.score(hidden_states[-1])``, reading the value at the response's last
  token. The backbone finds each row's prompt by its token ids (the longest registered prompt that
  prefixes the unpadded row), decodes the response up to the first masked position, scores the whole
  chunk in one call of the reward core (``reward.score_items``: any reward, pairwise or pointwise),
  and returns the reward broadcast over a ``[B, T, 1]`` float32 tensor. Build it from the same
  tokenized dataset given to PPOTrainer (:meth:`GenRMRewardModel.from_dataset`). All-abstain items
  get the reward of a tie (p = 1/2) unless ``RewardConfig.abstain_p`` says otherwise, since PPO
  cannot take a missing score.
* Trainers without ``log_metric`` (PPO, OnlineDPO): :class:`GenRMMetricsCallback` adds the reward's
  metrics (averaged since the previous log) to the trainer's logs.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from torch import nn
from transformers import TrainerCallback
from transformers.modeling_outputs import BaseModelOutput

from genrm_plugin.conversation import prompt_text, response_text
from genrm_plugin.reward import GenRMReward, call_texts
from genrm_plugin.votes import flip_preference


class PairwiseGenRMReward(GenRMReward):
    """OnlineDPO reward function: the judge compares the two completions of each prompt.

    Same constructor as :class:`GenRMReward` (no reference is needed). Expects TRL OnlineDPO's
    layout: ``prompts = 2 * batch_prompts``, completion ``i`` and ``i + B`` answer the same prompt.
    """

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], completion_ids=None, **kwargs: Any):
        questions, answers = call_texts(prompts, completions)
        if len(prompts) % 2:
            raise ValueError(f"pairwise mode needs an even number of completions (OnlineDPO's 2*prompts), got {len(prompts)}")
        half = len(prompts) // 2
        for i in range(half):
            if questions[i] != questions[i + half]:
                raise ValueError(
                    f"pairwise mode expects OnlineDPO's layout (prompts = 2 * batch): prompts[{i}] and "
                    f"prompts[{i + half}] differ"
                )
        prefs = self.preferences(questions[:half], answers[:half], answers[half:])
        self.report(prefs, kwargs.get("log_metric"), kwargs.get("log_extra"))
        return [self.reward_of(p) for p in prefs] + [self.reward_of(flip_preference(p)) for p in prefs]


@dataclass
class RewardModuleConfig:
    """What PPOTrainer (and DeepSpeed preparation) read from a reward model's ``config``.

    Fields:
        hidden_size: width of the "hidden states" the backbone returns (1: the reward itself).
        hidden_sizes: the same, as DeepSpeed's list form.
    """

    hidden_size: int = 1
    hidden_sizes: list[int] = field(default_factory=lambda: [1])


class JudgeBackbone(nn.Module):
    """PPO's "backbone": token ids -> (prompt, response) texts -> reward core -> rewards as hidden states.

    Args:
        reward: the reward: a :class:`GenRMReward` (judge, mapping, reference_fn) or a pointwise
            :class:`~genrm_plugin.critique_reward.CritiqueReward` (anything with ``score_items``).
        tokenizer: the POLICY tokenizer (PPO passes its token ids).
        prompts: raw prompts (strings or message lists), as the reward should see them.
        prompt_ids: each prompt's token ids exactly as in the PPO dataset's ``input_ids``.
        references: one reference per prompt (default: ``reward.reference_fn``, cached; unused by a
            reward that needs no reference).

    Attributes after each forward: ``last_prompts`` (each row's registered prompt), ``last_responses``
    (decoded responses), ``last_rewards`` (floats, abstentions replaced as in the module docstring).
    """

    def __init__(
        self,
        reward: Any,
        tokenizer: Any,
        prompts: Sequence[Any],
        prompt_ids: Sequence[Sequence[int]],
        references: Sequence[Any] | None = None,
    ) -> None:
        super().__init__()
        if len(prompts) != len(prompt_ids):
            raise ValueError(f"prompts ({len(prompts)}) and prompt_ids ({len(prompt_ids)}) differ in length")
        if references is not None and len(references) != len(prompts):
            raise ValueError(f"references ({len(references)}) and prompts ({len(prompts)}) differ in length")
        self.reward = reward
        self.tokenizer = tokenizer
        self.prompts = list(prompts)
        self.references = None if references is None else [response_text(r, f"references[{i}]") for i, r in enumerate(references)]
        pad = tokenizer.pad_token_id
        # PPO hands the backbone pad ids as 0, so keys use 0 where a prompt holds the pad id.
        self.by_ids = {tuple(0 if t == pad else int(t) for t in ids): i for i, ids in enumerate(prompt_ids)}
        self.lengths = sorted({len(k) for k in self.by_ids}, reverse=True)
        self.register_buffer("device_probe", torch.zeros(()), persistent=False)
        self.last_prompts: list[Any] = []
        self.last_responses: list[str] = []
        self.last_rewards: list[float] = []

    def split(self, ids: list[int], mask: list[bool], row: int) -> tuple[int, str]:
        """(prompt index, decoded response) of one row."""
        start = mask.index(True) if True in mask else len(mask)
        for length in self.lengths:
            index = self.by_ids.get(tuple(ids[start : start + length]))
            if index is not None:
                end = start + length
                while end < len(ids) and mask[end]:
                    end += 1
                return index, self.tokenizer.decode(ids[start + length : end], skip_special_tokens=True)
        raise ValueError(
            f"PPO reward model: row {row} does not start with any of the {len(self.by_ids)} registered prompts' "
            f"token ids; build GenRMRewardModel from the same tokenized dataset given to PPOTrainer"
        )

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **unused: Any):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids, dtype=torch.bool)
        rows = [
            self.split(ids, [bool(m) for m in mask], r)
            for r, (ids, mask) in enumerate(zip(input_ids.tolist(), attention_mask.tolist()))
        ]
        raw_prompts = [self.prompts[i] for i, _ in rows]
        questions = [prompt_text(p, f"prompts[{r}]") for r, p in enumerate(raw_prompts)]
        references = None if self.references is None else [self.references[i] for i, _ in rows]
        responses = [text for _, text in rows]
        scores = self.reward.score_items(questions, responses, references, prompts=raw_prompts)
        rewards = [s.reward for s in scores]  # PPO cannot take a missing score: stand-ins included
        self.last_prompts, self.last_responses, self.last_rewards = raw_prompts, responses, rewards
        values = torch.tensor(rewards, dtype=torch.float32, device=input_ids.device)
        hidden = values[:, None, None].expand(input_ids.shape[0], input_ids.shape[1], 1).contiguous()
        return BaseModelOutput(last_hidden_state=hidden, hidden_states=(hidden,))


class GenRMRewardModel(nn.Module):
    """A ``reward_model`` for ``trl.experimental.ppo.PPOTrainer`` backed by a reward's ``score_items``
    (:class:`GenRMReward` or the pointwise :class:`~genrm_plugin.critique_reward.CritiqueReward`).

    Build it with :meth:`from_dataset` (the tokenized PPO dataset), or from a :class:`JudgeBackbone`
    (reward, POLICY tokenizer, raw prompts, their token ids exactly as in the PPO dataset's
    ``input_ids``, optional references). Use a policy pad token distinct from EOS.
    """

    base_model_prefix = "backbone"

    def __init__(self, backbone: JudgeBackbone) -> None:
        super().__init__()
        self.backbone = backbone
        self.score = nn.Identity()
        self.config = RewardModuleConfig()

    @classmethod
    def from_dataset(
        cls,
        reward: Any,
        tokenizer: Any,
        dataset: Any,
        prompt_column: str = "prompt",
        ids_column: str = "input_ids",
        reference_column: str | None = "reference",
    ) -> "GenRMRewardModel":
        """From a tokenized dataset holding the raw prompt, its ``input_ids`` and (optionally) the
        reference; ``reference_column=None`` uses ``reward.reference_fn``; a reward that needs no
        reference (``reward.needs_reference`` off) reads no reference column."""
        reference_column = reference_column if reward.needs_reference else None
        columns = list(dataset.column_names)
        needed = [prompt_column, ids_column] + ([reference_column] if reference_column else [])
        missing = [c for c in needed if c not in columns]
        if missing:
            raise KeyError(f"dataset lacks column(s) {missing}; available: {columns}")
        references = dataset[reference_column] if reference_column else None
        return cls(JudgeBackbone(reward, tokenizer, dataset[prompt_column], dataset[ids_column], references))


class GenRMMetricsCallback(TrainerCallback):
    """Adds a reward's metrics (its ``metric_keys``; :class:`GenRMReward` or a critique reward) to
    the logs of trainers that pass no ``log_metric`` (PPO, OnlineDPO): the mean of each metric over
    the reward calls since the previous log, as ``<name>/<metric>`` in ``logs`` and in
    ``state.log_history``."""

    def __init__(self, reward: Any) -> None:
        self.reward = reward
        self.pending: dict[str, list[float]] = defaultdict(list)
        reward.on_report = self._collect

    def _collect(self, metrics: dict[str, Any]) -> None:
        for key in self.reward.metric_keys:
            if metrics.get(key) is not None:
                self.pending[key].append(float(metrics[key]))

    def on_log(self, args, state, control, logs=None, **kwargs):
        values = {f"{self.reward.__name__}/{k}": sum(v) / len(v) for k, v in self.pending.items() if v}
        self.pending.clear()
        if logs is not None:
            logs.update(values)
        if state.log_history:
            state.log_history[-1].update(values)
        return control
