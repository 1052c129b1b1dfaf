"""Training rows from judge examples: the prompt text a judge sees, built by :mod:`genrm_plugin.prompts`.

Training prompts are rendered exactly as :class:`~genrm_plugin.judge.GenerativeJudge` renders
them at inference (``judge_messages`` + the tokenizer's chat template), so a trained judge is
asked the same text it was trained on.
"""

from __future__ import annotations

from typing import Any

from genrm_plugin.data import JudgeExample
from genrm_plugin.prompts import PromptConfig, judge_messages, render_messages


def judge_prompt(tokenizer: Any, example: JudgeExample, mode: str, config: PromptConfig) -> str:
    """The rendered judge prompt of ``example`` (``mode``: ``cot`` or ``no_cot``) under the judge's
    prompt ``config`` (``JudgeConfig.prompt()``), ready to continue."""
    messages = judge_messages(example.prompt, example.answer_a, example.answer_b, mode=mode, config=config)
    return render_messages(tokenizer, messages)
