"""``bt``: the classical Bradley-Terry reward model (TRL ``RewardTrainer``).

Training: a scalar head on the base model, trained on (prompt, chosen, rejected) with the BT loss
``-log sigmoid(r(chosen) - r(rejected))``. The prompt is the user turn rendered with the model's
chat template, the response follows it, EOS ends it (the trainer adds it).

:class:`genrm_plugin.bt_scorer.BTScorer` uses the result as a reward (``BTScorer.from_pretrained(path)``).
"""

from __future__ import annotations

from genrm_plugin.bt_scorer import BTScorer, bt_prompt
from genrm_plugin.recipes.context import RecipeContext, RecipeResult
from genrm_plugin.recipes.trainers import train_reward


def run(ctx: RecipeContext) -> RecipeResult:
    """Train a BT reward model on all training pairs (one iteration)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(ctx.base_model)
    rows = [{"prompt": bt_prompt(tokenizer, p.prompt), "chosen": p.chosen, "rejected": p.rejected} for p in ctx.pairs]
    return ctx.run_single_stage(rows, train_reward, kind="bt", mode=None)


__all__ = ["BTScorer", "bt_prompt", "run"]
