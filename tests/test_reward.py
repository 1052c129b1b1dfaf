"""GenRMReward with scripted judges (exact values), bad input, references and caching, async, tiny model."""

from __future__ import annotations

import asyncio
import json
import math

import pytest

from genrm_plugin.judge import GenerativeJudge, JudgeConfig
from genrm_plugin.reward import (
    AsyncGenRMReward,
    GenRMReward,
    ReferenceGenerationConfig,
    ReferenceGenerator,
    RewardConfig,
    map_probability,
)
from genrm_plugin.testing import ScriptedBackend, split_judge_prompt

K = 4


def fixed_votes(first: str, swapped: str) -> ScriptedBackend:
    """Votes by position: ``first`` is the K-vote stream when the completion is shown as A, ``swapped``
    when the reference is shown as A (the completion is recognised by not starting with 'REF')."""

    def script(prompt: str, i: int) -> str:
        _, a, _ = split_judge_prompt(prompt)
        stream = swapped if a.startswith("REF") else first
        return {"A": "so [[A]]", "B": "so [[B]]", "-": "no verdict"}[stream[i % len(stream)]]

    return ScriptedBackend(script)


def reward_with(backend, mapping="win_prob", swap=True, **cfg) -> GenRMReward:
    return GenRMReward(GenerativeJudge(backend, JudgeConfig(k=K, swap=swap)), RewardConfig(mapping=mapping, **cfg))


# -- exact values -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "mapping, expected",
    [("win_prob", 0.625), ("centered", 0.25), ("logit", math.log(0.625 / 0.375))],
)
def test_swap_combined_values_for_each_mapping(mapping, expected):
    # completion as A: 3 of 4 votes for A -> 0.75; reference as A: 2 of 4 for B (the completion) -> 0.5
    reward = reward_with(fixed_votes("AAAB", "BBAA"), mapping)
    out = reward.score(["q"], ["answer"], ["REF answer"])
    assert out == [pytest.approx(expected)]
    assert reward.last_metrics["win_prob"] == pytest.approx(0.625)
    assert reward.last_metrics["votes_used"] == 2 * K
    assert reward.last_metrics["position_consistency"] is None  # second order is a tie: consistency undefined
    assert reward.last_metrics["abstain_rate"] == 0.0


def test_without_swap_only_first_order_counts():
    reward = reward_with(fixed_votes("AAAB", "BBBB"), swap=False)
    assert reward.score(["q"], ["answer"], ["REF"]) == [pytest.approx(0.75)]
    assert reward.last_metrics["votes_used"] == K


def test_position_consistency_and_logit_clip():
    reward = reward_with(fixed_votes("AAAA", "BBBB"), "logit", logit_clip=3.0)
    assert reward.score(["q"], ["answer"], ["REF"]) == [3.0]  # p = 1 -> +clip
    assert reward.last_metrics["position_consistency"] == 1.0
    reward = reward_with(fixed_votes("BBBB", "AAAA"), "logit", logit_clip=3.0)
    assert reward.score(["q"], ["answer"], ["REF"]) == [-3.0]
    assert map_probability(0.999, "logit", 3.0) == 3.0
    assert map_probability(0.6, "logit", 3.0) == pytest.approx(math.log(1.5))


def test_all_abstain_is_none_and_counted_one_order_abstaining_uses_the_other():
    reward = reward_with(fixed_votes("----", "----"))
    assert reward.score(["q", "q2"], ["x", "y"], ["REF", "REF"]) == [None, None]
    assert reward.last_metrics["abstain_rate"] == 1.0 and reward.last_metrics["win_prob"] is None
    reward = reward_with(fixed_votes("----", "BBBA"))  # only the swapped order votes: P(completion) = 3/4
    assert reward.score(["q"], ["x"], ["REF"]) == [pytest.approx(0.75)]
    stand_in = reward_with(fixed_votes("----", "----"), "centered", abstain_p=0.5)
    assert stand_in.score(["q"], ["x"], ["REF"]) == [0.0]


def test_no_cot_probabilities_are_swap_combined():
    # verdict-token log-probs: P(A shown first) = 0.8 in both orders -> (0.8 + (1 - 0.8)) / 2 = 0.5
    backend = ScriptedBackend(logprobs=lambda prompt: [math.log(0.8), math.log(0.2)])
    reward = GenRMReward(GenerativeJudge(backend, JudgeConfig(mode="no_cot")), RewardConfig(mapping="centered"))
    assert reward.score(["q"], ["a"], ["REF"]) == [pytest.approx(0.0)]
    assert reward.last_metrics["position_consistency"] == 0.0


def test_duplicate_completions_trigger_one_judgment():
    backend = fixed_votes("AAAB", "BBAA")
    reward = reward_with(backend)
    out = reward.score(["q"] * 5, ["same", "same", "other", "same", "other"], ["REF"] * 5)
    assert out == [pytest.approx(0.625)] * 5
    assert backend.calls == [("generate", 4, K)]  # 2 distinct items x 2 orders, in one batch
    assert sorted(backend.drawn.values()) == [K] * 4  # each distinct judge prompt sampled K times, once
    assert reward.last_metrics["judgments"] == 2 and reward.last_metrics["items"] == 5
    # the same completion under another prompt or reference is a different item
    reward.score(["q", "q2", "q"], ["same", "same", "same"], ["REF", "REF", "REF2"])
    assert reward.last_metrics["judgments"] == 3


# -- TRL convention -----------------------------------------------------------------------------
def test_trl_call_plain_text_logs_metrics_and_name():
    reward = reward_with(fixed_votes("AAAB", "BBAA"), name="judge1")
    logged, extra = {}, {}
    out = reward(
        prompts=["q1", "q2"], completions=["a", "b"], completion_ids=[[1], [2]], reference=["REF1", "REF2"],
        other_column=[0, 1], trainer_state=None, log_metric=logged.__setitem__, log_extra=extra.__setitem__,
    )
    assert out == [pytest.approx(0.625)] * 2
    assert reward.__name__ == "judge1"
    assert logged == {
        "judge1/win_prob": pytest.approx(0.625), "judge1/abstain_rate": 0.0, "judge1/votes_used": 8.0,
    }  # position consistency is undefined here (tie in one order), so it is not logged
    assert extra == {"judge1_p_win": [pytest.approx(0.625)] * 2}


def test_trl_call_conversational_and_custom_reference_column():
    seen = []

    def script(prompt, i):
        seen.append(split_judge_prompt(prompt))
        return "[[A]]"

    reward = GenRMReward(GenerativeJudge(ScriptedBackend(script), JudgeConfig(k=1, swap=False)),
                         RewardConfig(reference_column="gold"))
    prompts = [[{"role": "user", "content": "What is 2+2?"}],
               [{"role": "system", "content": "Be brief."}, {"role": "user", "content": [{"type": "text", "text": "Hi"}]}]]
    completions = [[{"role": "assistant", "content": "4"}], [{"role": "assistant", "content": "Hello"}]]
    gold = [[{"role": "assistant", "content": "four"}], "Hello there"]
    assert reward(prompts, completions, gold=gold) == [1.0, 1.0]
    assert seen[0] == ("What is 2+2?", "4", "four")
    assert seen[1] == ("System: Be brief.\n\nUser: Hi", "Hello", "Hello there")


def test_empty_completion_is_scored():
    reward = reward_with(fixed_votes("AAAB", "BBAA"))
    assert reward(["q", "q"], ["", "x"], reference=["REF", "REF"]) == [pytest.approx(0.625)] * 2


def test_bad_input_errors_name_the_field():
    reward = reward_with(fixed_votes("AAAA", "BBBB"))
    with pytest.raises(KeyError, match=r"'reference'.*\['answer', 'solution'\]"):
        reward(["q"], ["a"], answer=["x"], solution=["y"], trainer_state=None, log_metric=print)
    with pytest.raises(ValueError, match="differ in length.*'prompts': 2.*'completions': 1"):
        reward(["q", "q2"], ["a"], reference=["r", "r"])
    with pytest.raises(ValueError, match="differ in length.*'reference': 1"):
        reward(["q", "q2"], ["a", "b"], reference=["r"])
    with pytest.raises(TypeError, match=r"completions\[1\] must be a string or a list of chat messages, got int"):
        reward(["q", "q"], ["a", 7], reference=["r", "r"])
    with pytest.raises(TypeError, match=r"completions\[0\]\[0\]: message content must be a string"):
        reward(["q"], [[{"role": "assistant", "content": 3.5}]], reference=["r"])
    with pytest.raises(TypeError, match=r"prompts\[0\] must be a string"):
        reward([None], ["a"], reference=["r"])
    with pytest.raises(TypeError, match=r"reference\[0\] must be a string or a list of chat messages, got NoneType"):
        reward(["q"], ["a"], reference=[None])
    with pytest.raises(TypeError, match=r"references\[0\] must be a string"):
        reward.score(["q"], ["a"], [b"bytes"])
    with pytest.raises(ValueError, match="mapping must be one of"):
        RewardConfig(mapping="prob")


# -- references from a reference model ----------------------------------------------------------
def test_reference_fn_called_once_per_prompt_and_cached_on_disk(tmp_path):
    calls = []

    def reference_fn(prompts):
        calls.append(list(prompts))
        return [f"REF for {p}" for p in prompts]

    cache = tmp_path / "refs.jsonl"
    reward = GenRMReward(GenerativeJudge(fixed_votes("AAAB", "BBAA"), JudgeConfig(k=K)),
                         RewardConfig(reference_cache=str(cache)), reference_fn=reference_fn)
    assert reward(["q1", "q1", "q2"], ["a", "b", "c"]) == [pytest.approx(0.625)] * 3
    assert reward(["q2", "q3"], ["a", "b"]) == [pytest.approx(0.625)] * 2
    assert calls == [["q1", "q2"], ["q3"]]
    rows = [json.loads(line) for line in cache.read_text().splitlines()]
    assert rows == [{"prompt": f"q{i}", "reference": f"REF for q{i}"} for i in (1, 2, 3)]

    def must_not_run(prompts):
        raise AssertionError(f"cached references were regenerated for {prompts}")

    again = GenRMReward(GenerativeJudge(fixed_votes("AAAB", "BBAA"), JudgeConfig(k=K)),
                        RewardConfig(reference_cache=str(cache)), reference_fn=must_not_run)
    assert again(["q3", "q1"], ["x", "y"]) == [pytest.approx(0.625)] * 2
    cache.write_text("not json\n")
    with pytest.raises(ValueError, match="refs.jsonl:1"):
        GenRMReward(again.judge, RewardConfig(reference_cache=str(cache)))


def test_reference_generator_over_tiny_model(tiny_backend):
    gen = ReferenceGenerator(tiny_backend, ReferenceGenerationConfig(max_new_tokens=6))
    prompts = ["What is 1+1?", [{"role": "user", "content": "What is 2+2?"}]]
    first, second = gen(prompts), gen(prompts)
    assert first == second and all(isinstance(r, str) for r in first)  # greedy: deterministic
    reward = GenRMReward(GenerativeJudge(tiny_backend, JudgeConfig(mode="no_cot", template="compact")),
                         reference_fn=gen)
    out = reward(prompts, ["2", [{"role": "assistant", "content": "4"}]])
    assert all(0.0 <= r <= 1.0 for r in out)
    assert len(reward.references) == 2


# -- async and the real tiny model --------------------------------------------------------------
def test_async_variant_is_detected_by_trl_and_matches_sync():
    from trl.trainer.utils import is_async_callable

    sync = reward_with(fixed_votes("AAAB", "BBAA"), "centered")
    async_reward = AsyncGenRMReward(sync.judge, sync.config)
    assert is_async_callable(async_reward) and not is_async_callable(sync)
    args = dict(prompts=["q", "q"], completions=["a", "b"], reference=["REF", "REF"])
    assert asyncio.run(async_reward(**args)) == sync(**args) == [pytest.approx(0.25)] * 2
    assert async_reward.__name__ == "genrm"


def test_tiny_model_judge_rewards_in_range(tiny_backend):
    no_cot = GenRMReward(GenerativeJudge(tiny_backend, JudgeConfig(mode="no_cot", template="compact")),
                         RewardConfig(mapping="logit", logit_clip=2.0))
    out = no_cot(["What is 3+4?"] * 3, ["7", "8", "7"], reference=["3+4=7"] * 3)
    assert all(r is not None and -2.0 <= r <= 2.0 for r in out) and out[0] == out[2]
    cot = GenRMReward(GenerativeJudge(tiny_backend, JudgeConfig(k=2, max_new_tokens=4, template="compact")))
    out = cot(["What is 3+4?"] * 2, ["7", "8"], reference=["3+4=7"] * 2)
    assert all(r is None or 0.0 <= r <= 1.0 for r in out)
    assert cot.last_metrics["abstain_rate"] == sum(r is None for r in out) / 2
