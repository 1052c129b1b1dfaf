"""A Bradley-Terry reward model as a scorer: rewards, preferences and a TRL reward function.

:class:`BTScorer` uses a trained BT model (the ``bt`` recipe's, or any
``AutoModelForSequenceClassification`` with one label): ``score(prompts, responses)`` gives rewards,
``compare(prompts, a, b)`` gives :class:`~genrm_plugin.votes.Preference` rows with
``p_a = sigmoid(r_a - r_b)`` (so a BT model is evaluated like a judge), and calling it like a TRL
reward function (``scorer(prompts=..., completions=...)``) returns one float per completion. The
model reads :func:`bt_prompt` (the prompt as a chat-rendered user turn), the response, then EOS --
the layout the ``bt`` recipe trains on.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

from genrm_plugin.conversation import prompt_text, response_text
from genrm_plugin.prompts import render_messages
from genrm_plugin.votes import Preference


def bt_prompt(tokenizer: Any, prompt: str) -> str:
    """The text a BT model reads before the response: the prompt as a user turn, chat-rendered."""
    return render_messages(tokenizer, [{"role": "user", "content": prompt}])


class BTScorer:
    """A Bradley-Terry reward model as a scorer / reward function.

    Args:
        model: an ``AutoModelForSequenceClassification`` with one label.
        tokenizer: its tokenizer.
        batch_size: sequences per forward pass.
    """

    def __init__(self, model: Any, tokenizer: Any, batch_size: int = 32) -> None:
        if getattr(model.config, "num_labels", None) != 1:
            raise ValueError(f"a BT reward model has num_labels=1, got {getattr(model.config, 'num_labels', None)}")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | None = None, batch_size: int = 32) -> "BTScorer":
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        model = AutoModelForSequenceClassification.from_pretrained(str(path))
        if device:
            model = model.to(device)
        return cls(model, AutoTokenizer.from_pretrained(str(path)), batch_size=batch_size)

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
        """The reward of each (prompt, response)."""
        import torch

        if len(prompts) != len(responses):
            raise ValueError(f"score() got {len(prompts)} prompts and {len(responses)} responses")
        eos = self.tokenizer.eos_token or ""
        rows = [self.tokenizer(bt_prompt(self.tokenizer, p) + r + eos).input_ids for p, r in zip(prompts, responses)]
        device = next(self.model.parameters()).device
        pad = self.tokenizer.pad_token_id
        out: list[float] = []
        with torch.no_grad():
            for start in range(0, len(rows), self.batch_size):
                batch = rows[start : start + self.batch_size]
                width = max(len(r) for r in batch)
                ids = torch.full((len(batch), width), pad, dtype=torch.long)
                mask = torch.zeros_like(ids)
                for i, r in enumerate(batch):  # right padding, as in training
                    ids[i, : len(r)] = torch.tensor(r)
                    mask[i, : len(r)] = 1
                logits = self.model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
                out += logits[:, 0].float().tolist()
        return out

    def compare(self, prompts: Sequence[str], answers_a: Sequence[str], answers_b: Sequence[str]) -> list[Preference]:
        """P(A > B) = sigmoid(r(A) - r(B)) for each item."""
        if not len(prompts) == len(answers_a) == len(answers_b):
            raise ValueError("compare() inputs differ in length")
        rewards = self.score(list(prompts) * 2, list(answers_a) + list(answers_b))
        n = len(prompts)
        preferences = []
        for ra, rb in zip(rewards[:n], rewards[n:]):
            p = 1.0 / (1.0 + math.exp(-(ra - rb)))
            preferences.append(Preference(p_a=p, p_by_order=[p]))
        return preferences

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float]:
        """TRL reward-function convention: one float per completion.

        Conversations become text by the rule of :mod:`genrm_plugin.conversation` (as in training rows).
        """
        texts = [prompt_text(p, f"prompts[{i}]") for i, p in enumerate(prompts)]
        answers = [response_text(c, f"completions[{i}]") for i, c in enumerate(completions)]
        return self.score(texts, answers)
