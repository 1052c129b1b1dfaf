"""Critique reward models as scorers: write a critique of each response, then read a scalar from it.

Two kinds, both pointwise (no reference answer) and trained by ``genrm train``:

* ``synthetic-critique-rm`` (Ye et al. 2024, "Improving Reward Models with Synthetic Critiques"):
  a separate critic LLM -- any :class:`~genrm_plugin.backends.base.JudgeBackend`: transformers,
  vLLM or an OpenAI-compatible endpoint -- writes the critique; a Bradley-Terry sequence
  classifier reads (prompt, response, critique) and outputs the reward.
* ``cloud`` (Ankner et al. 2024, "Critique-out-Loud Reward Models"): one model with its language
  model head *and* a reward head. It writes its own critique with the LM head, then the reward head
  reads the last hidden state of (prompt, response, critique). Saved as a plain causal-LM folder
  (so every backend generates from it) plus :data:`REWARD_HEAD_FILE` (a ``hidden_size -> 1``
  linear layer) and :data:`REWARD_HEAD_CONFIG`.

The head reads :func:`~genrm_plugin.prompts.critique_head_text` + EOS (the rule the recipes train
on), right padded, at the last token. With ``CritiqueConfig.k > 1`` each response gets ``k``
sampled critiques and its reward is the mean head output over them (CLoud's self-consistency).
:meth:`CritiqueScorer.compare` gives ``p_a = sigmoid(r_a - r_b)`` like
:class:`~genrm_plugin.bt_scorer.BTScorer`, with the critiques as the preference's rationales.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from genrm_plugin.backends.base import SamplingConfig
from genrm_plugin.conversation import prompt_text, response_text
from genrm_plugin.judge_card import CARD_FILE
from genrm_plugin.prompts import PromptConfig, critique_head_text
from genrm_plugin.votes import Preference

KINDS = ("cloud", "synthetic-critique-rm")
REWARD_HEAD_FILE = "reward_head.safetensors"
REWARD_HEAD_CONFIG = "reward_head.json"


@dataclass
class CritiqueConfig:
    """How a critique reward model writes critiques at inference.

    Fields:
        k: critiques per (prompt, response); the reward is the mean head output over them (CLoud's
            self-consistency variant). ``k > 1`` needs ``temperature > 0``.
        temperature: sampling temperature of the critiques (0: greedy).
        top_p: nucleus mass.
        max_new_tokens: longest critique (longer ones are cut).
        seed: sampling seed (the same seed and inputs give the same critiques).
    """

    k: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 256
    seed: int = 0

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"CritiqueConfig.k must be >= 1, got {self.k}")
        if self.temperature == 0 and self.k > 1:
            raise ValueError(f"CritiqueConfig.k={self.k} needs temperature > 0 (greedy critiques are all the same)")
        self.sampling()  # validates temperature, top_p, max_new_tokens

    def sampling(self) -> SamplingConfig:
        """The backend's sampling settings: no stop strings (a critique ends at EOS or the token limit)."""
        return SamplingConfig(temperature=self.temperature, top_p=self.top_p, max_new_tokens=self.max_new_tokens, stop=[])


@dataclass
class CritiqueScore:
    """One scored response.

    Fields:
        reward: the mean of ``rewards``.
        critiques: the ``k`` critiques the head read.
        rewards: the head's output for each critique.
    """

    reward: float
    critiques: list[str] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)


def last_token_states(hidden: Any, attention_mask: Any) -> Any:
    """The hidden state of each row's last real token (right padding): what a reward head reads."""
    import torch

    last = attention_mask.long().sum(-1) - 1
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


def save_reward_head(folder: str | Path, head: Any, info: dict[str, Any]) -> None:
    """Write a CLoud reward head (a ``Linear(hidden_size, 1)``) and its description into ``folder``."""
    from safetensors.torch import save_file

    tensors = {name: value.detach().float().cpu().contiguous() for name, value in head.state_dict().items()}
    save_file(tensors, str(Path(folder) / REWARD_HEAD_FILE))
    description = {"hidden_size": head.in_features, "bias": head.bias is not None, "pooling": "last_token", **info}
    (Path(folder) / REWARD_HEAD_CONFIG).write_text(json.dumps(description, indent=1) + "\n")


def load_reward_head(folder: str | Path) -> Any:
    """The CLoud reward head saved in ``folder`` (:func:`save_reward_head`), as a float32 ``Linear``."""
    import torch
    from safetensors.torch import load_file

    folder = Path(folder)
    if not (folder / REWARD_HEAD_FILE).is_file():
        raise ValueError(f"{folder}: no {REWARD_HEAD_FILE}; a cloud critique reward model saves its reward head there")
    info = json.loads((folder / REWARD_HEAD_CONFIG).read_text())
    head = torch.nn.Linear(int(info["hidden_size"]), 1, bias=bool(info.get("bias")))
    head.load_state_dict(load_file(str(folder / REWARD_HEAD_FILE)))
    return head.eval()


class RewardHead:
    """Reads a reward from token ids: a sequence classifier's score (``score=None``), or a causal
    LM's backbone plus a separate ``score`` layer at the last token (CLoud)."""

    def __init__(self, model: Any, score: Any = None) -> None:
        if score is None and getattr(model.config, "num_labels", None) != 1:
            raise ValueError(f"a critique reward model has num_labels=1, got {getattr(model.config, 'num_labels', None)}")
        self.model, self.score = model.eval(), score
        if score is not None:
            self.score = score.to(self.device)

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device

    def __call__(self, input_ids: Any, attention_mask: Any) -> list[float]:
        import torch

        with torch.no_grad():
            if self.score is None:
                return self.model(input_ids=input_ids, attention_mask=attention_mask).logits[:, 0].float().tolist()
            hidden = self.model.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            pooled = last_token_states(hidden, attention_mask).float()
            return self.score(pooled)[:, 0].tolist()


class CritiqueScorer:
    """A critique reward model: ``critic`` writes critiques, ``head`` reads the reward.

    Args:
        kind: ``cloud`` or ``synthetic-critique-rm`` (recorded in results; the mechanics are the same).
        critic: the backend that writes critiques (for ``cloud``, the model itself).
        head: a :class:`RewardHead`.
        tokenizer: the head's tokenizer (renders the critique request the head reads).
        config: how critiques are written (:class:`CritiqueConfig`).
        prompt: the critique request's template and ``answer_pattern`` (the critic renders the
            same request with its own tokenizer).
        batch_size: sequences per head forward pass.
    """

    def __init__(self, kind: str, critic: Any, head: RewardHead, tokenizer: Any, config: CritiqueConfig | None = None,
                 prompt: PromptConfig | None = None, batch_size: int = 32) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.kind, self.critic, self.head, self.tokenizer = kind, critic, head, tokenizer
        if tokenizer.pad_token_id is None:  # padding only: the head reads each row's last real token
            tokenizer.pad_token = tokenizer.eos_token
        self.config, self.prompt = config or CritiqueConfig(), prompt or PromptConfig()
        self.batch_size = batch_size

    # -- scoring ---------------------------------------------------------------------------------
    def write_critiques(self, questions: Sequence[str], responses: Sequence[str]) -> list[list[str]]:
        """``k`` critiques per (question, response), from the critic."""
        from genrm_plugin.prompts import critique_messages

        _check_texts(questions, responses)
        prompts = [self.critic.render(critique_messages(q, r, self.prompt)) for q, r in zip(questions, responses)]
        if not prompts:
            return []
        return self.critic.generate(prompts, self.config.k, self.config.sampling(), seed=self.config.seed)

    def head_rewards(self, questions: Sequence[str], responses: Sequence[str], critiques: Sequence[str]) -> list[float]:
        """The head's output for each (question, response, critique)."""
        _check_texts(questions, responses)
        if len(critiques) != len(questions):
            raise ValueError(f"head_rewards() got {len(questions)} questions and {len(critiques)} critiques")
        eos = self.tokenizer.eos_token or ""
        rows = [self.tokenizer("".join(critique_head_text(self.tokenizer, q, r, c, self.prompt)) + eos).input_ids
                for q, r, c in zip(questions, responses, critiques)]
        out: list[float] = []
        for start in range(0, len(rows), self.batch_size):  # right padding, as in training
            batch = self.tokenizer.pad({"input_ids": rows[start : start + self.batch_size]}, padding_side="right",
                                       return_tensors="pt")
            out += self.head(batch["input_ids"].to(self.head.device), batch["attention_mask"].to(self.head.device))
        return out

    def score_critiqued(self, questions: Sequence[str], responses: Sequence[str]) -> list[CritiqueScore]:
        """Each response's critiques, the head's reward per critique, and their mean."""
        critiques = self.write_critiques(questions, responses)
        k = self.config.k
        if any(len(c) != k for c in critiques):
            raise ValueError(f"the critic returned {[len(c) for c in critiques]} critiques per response, expected {k}")
        flat = self.head_rewards([q for q in questions for _ in range(k)], [r for r in responses for _ in range(k)],
                                 [c for cs in critiques for c in cs])
        return [CritiqueScore(sum(flat[i * k : (i + 1) * k]) / k, list(cs), flat[i * k : (i + 1) * k])
                for i, cs in enumerate(critiques)]

    def score(self, questions: Sequence[str], responses: Sequence[str]) -> list[float]:
        """The reward of each (question, response)."""
        return [s.reward for s in self.score_critiqued(questions, responses)]

    def compare(self, questions: Sequence[str], answers_a: Sequence[str], answers_b: Sequence[str]) -> list[Preference]:
        """``P(A > B) = sigmoid(r(A) - r(B))`` per item; the rationales are A's critiques, then B's."""
        if not len(questions) == len(answers_a) == len(answers_b):
            raise ValueError(f"compare() inputs differ in length: {len(questions)}, {len(answers_a)}, {len(answers_b)}")
        n = len(questions)
        scores = self.score_critiqued(list(questions) * 2, list(answers_a) + list(answers_b))
        preferences = []
        for a, b in zip(scores[:n], scores[n:]):
            p = 1.0 / (1.0 + math.exp(-(a.reward - b.reward)))
            preferences.append(Preference(p_a=p, p_by_order=[p], rationales=a.critiques + b.critiques))
        return preferences

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float]:
        """TRL reward-function convention (conversations rendered by :mod:`genrm_plugin.conversation`)."""
        texts = [prompt_text(p, f"prompts[{i}]") for i, p in enumerate(prompts)]
        return self.score(texts, [response_text(c, f"completions[{i}]") for i, c in enumerate(completions)])

    # -- loading ---------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path: str | Path, critic: str | None = None, config: CritiqueConfig | None = None,
                        device: str | None = None, **engine: Any) -> "CritiqueScorer":
        """A ``genrm train --recipe cloud|synthetic-critique-rm`` ``final/`` folder (its card names the kind,
        the critique template and, for ``synthetic-critique-rm``, the critic).

        ``critic``: where critiques come from (a model path, or an endpoint's model name with
        ``backend="openai"``); default: ``cloud`` -- ``path`` itself, ``synthetic-critique-rm`` --
        the card's critic. ``config``: default greedy single critiques of the card's length.
        ``engine``: :meth:`load`'s ``backend``, ``vllm``, ``openai``, ``batch_size``, ``dtype``.
        """
        card_path = Path(path) / CARD_FILE
        if not card_path.is_file():
            raise ValueError(f"{path}: no {CARD_FILE}; pass a final/ folder of genrm train --recipe cloud|synthetic-critique-rm")
        card = json.loads(card_path.read_text())
        kind, usage = card.get("kind"), card.get("judge") or {}
        if kind not in KINDS:
            raise ValueError(f"{path} is not a critique reward model (its {CARD_FILE} says kind {kind!r}, not one of {KINDS})")
        prompt = PromptConfig(template=usage.get("template", "mt_bench"), answer_pattern=usage.get("answer_pattern"))
        config = config or CritiqueConfig(max_new_tokens=usage.get("max_new_tokens", 256))
        return cls.load(path, kind, critic or usage.get("critic"), config, prompt, device, **engine)

    @classmethod
    def load(cls, path: str | Path, kind: str, critic: str | None = None, config: CritiqueConfig | None = None,
             prompt: PromptConfig | None = None, device: str | None = None, backend: str = "transformers",
             vllm: Any = None, openai: Any = None, batch_size: int = 32, dtype: str = "auto") -> "CritiqueScorer":
        """A scorer over a saved model without reading a card (what the recipes evaluate checkpoints with).

        ``backend``: the critic's engine (``transformers``, ``vllm``, ``openai``). A ``cloud`` model
        on the transformers backend is loaded once: the critic's LM is the head's backbone.
        """
        from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

        from genrm_plugin.backends.factory import BackendConfig, default_device, load_backend
        from genrm_plugin.backends.transformers import TransformersBackend

        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        path, device = str(path), device or default_device()
        critic = critic or (path if kind == "cloud" else None)
        if critic is None:
            raise ValueError(f"{path}: a synthetic-critique-rm needs its critic: pass critic= (a model path) "
                             "or use the final/ folder whose card records it")
        tokenizer = AutoTokenizer.from_pretrained(path)
        engine = BackendConfig(model=critic, backend=backend, device=device, batch_size=batch_size, dtype=dtype)
        if kind == "synthetic-critique-rm":
            head = RewardHead(AutoModelForSequenceClassification.from_pretrained(path, dtype=dtype).to(device))
            return cls(kind, load_backend(engine, vllm=vllm, openai=openai), head, tokenizer, config, prompt, batch_size)
        lm = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device)
        if backend == "transformers" and critic == path:  # one model: the LM head writes, the reward head reads
            writer = TransformersBackend(lm, AutoTokenizer.from_pretrained(path), batch_size=batch_size)
        else:
            writer = load_backend(engine, vllm=vllm, openai=openai)
        return cls(kind, writer, RewardHead(lm, load_reward_head(path)), tokenizer, config, prompt, batch_size)


def _check_texts(questions: Sequence[str], responses: Sequence[str]) -> None:
    if isinstance(questions, str) or isinstance(responses, str):
        raise TypeError("questions and responses must be sequences of strings, not one string")
    if len(questions) != len(responses):
        raise ValueError(f"got {len(questions)} questions and {len(responses)} responses")
    for name, texts in (("questions", questions), ("responses", responses)):
        bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
        if bad is not None:
            raise TypeError(f"{name}[{bad}] must be a string, got {type(texts[bad]).__name__}")
