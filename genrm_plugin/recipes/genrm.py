"""``genrm``: the paper's GenRM without CoT -- SFT on the verdict only.

Each pair gives two judge examples (both answer orders, balanced labels). The SFT prompt is the
no-CoT judge prompt (:func:`genrm_plugin.prompts.judge_messages` with ``mode="no_cot"``), the
completion is the verdict ``[[A]]`` / ``[[B]]``; the loss covers the completion only. The trained
judge is used in no-CoT mode: P(A) from the verdict token's probabilities.
"""

from __future__ import annotations

from genrm_plugin.data import to_judge_examples
from genrm_plugin.prompts import verdict_text
from genrm_plugin.recipes.context import RecipeContext, RecipeResult
from genrm_plugin.recipes.training_rows import judge_prompt
from genrm_plugin.recipes.trainers import train_sft

MODE = "no_cot"


def run(ctx: RecipeContext) -> RecipeResult:
    """SFT the base model on verdicts for all training pairs (one iteration)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(ctx.base_model)
    examples = to_judge_examples(ctx.pairs, seed=ctx.seed, shuffle=True)
    rows = [
        {"prompt": judge_prompt(tokenizer, e, MODE, ctx.judge.prompt()), "completion": verdict_text(e.label)}
        for e in examples
    ]
    return ctx.run_single_stage(rows, train_sft, mode=MODE)
