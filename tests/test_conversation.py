"""Chat turns become the same judge text at training time and at reward time: a conversational
preference row (a training row of ``genrm train``) and the same conversation given to
``GenRMReward`` by TRL render to the identical judge prompt."""

from __future__ import annotations

import json

import pytest

from genrm_plugin.conversation import ConversationError, prompt_text, response_text
from genrm_plugin.data import load_preferences, to_judge_examples
from genrm_plugin.judge import GenerativeJudge, JudgeConfig
from genrm_plugin.prompts import render_messages
from genrm_plugin.recipes.training_rows import judge_prompt
from genrm_plugin.reward import GenRMReward
from genrm_plugin.testing import ScriptedBackend

PROMPT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 17+25?"},
          {"role": "assistant", "content": "Let me think."}, {"role": "user", "content": [{"type": "text", "text": "Go on."}]}]
CHOSEN = [{"role": "assistant", "content": "It is"}, {"role": "assistant", "content": "42."}]
REJECTED = [{"role": "assistant", "content": "32."}]


def test_training_rows_and_rewards_render_the_same_judge_text(tmp_path, tiny_model_and_tokenizer):
    _, tokenizer = tiny_model_and_tokenizer
    data = tmp_path / "prefs.jsonl"
    data.write_text(json.dumps({"prompt": PROMPT, "chosen": CHOSEN, "rejected": REJECTED}) + "\n")
    example = to_judge_examples(load_preferences(str(data)), both_orders=False)[0]
    config = JudgeConfig(k=1, swap=False, template="compact")
    training_text = judge_prompt(tokenizer, example, "cot", config.prompt())

    seen = []
    backend = ScriptedBackend(lambda prompt, i: seen.append(prompt) or "[[A]]")
    backend.render = lambda messages: render_messages(tokenizer, messages)  # the judge's chat template
    reward = GenRMReward(GenerativeJudge(backend, config))
    chosen_first = example.label == "A"
    completion, reference = (CHOSEN, REJECTED) if chosen_first else (REJECTED, CHOSEN)
    reward([PROMPT], [completion], reference=[reference])
    assert seen == [training_text]
    assert "System: Be brief.\n\nUser: What is 17+25?\n\nAssistant: Let me think.\n\nUser: Go on." in training_text


def test_one_rule_for_prompts_and_responses():
    assert prompt_text([{"role": "user", "content": "hi"}], "p") == "hi"
    assert prompt_text(PROMPT[:2], "p") == "System: Be brief.\n\nUser: What is 17+25?"
    assert response_text(CHOSEN, "c") == "It is\n\n42." == response_text("It is\n\n42.", "c")
    assert response_text({"role": "assistant", "content": "x"}, "c") == "x"
    with pytest.raises(ConversationError, match=r"c\[0\]: a response holds assistant messages, got role 'user'"):
        response_text([{"role": "user", "content": "x"}], "c", roles=("assistant",))
    with pytest.raises(ConversationError, match=r"p\[0\]: message content blocks must all be text blocks"):
        prompt_text([{"role": "user", "content": [{"type": "image"}]}], "p")
