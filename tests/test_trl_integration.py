"""GenRMReward inside real TRL trainers on tiny models: GRPO and RLOO (newest TRL, >= 3 steps),
OnlineDPO (pairwise mode), and PPO under trl==1.12.0 (second environment, run as a subprocess)."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import pytest
from datasets import Dataset

from genrm_plugin.integrations.trl import GenRMMetricsCallback, PairwiseGenRMReward
from genrm_plugin.reward import AsyncGenRMReward, GenRMReward, RewardConfig
from tiny_rl import PROMPTS, length_oracle, length_oracle_p, rows, tiny_judge, tiny_policy

ROOT = Path(__file__).resolve().parents[1]
VENV_TRL112 = ROOT / ".venv-trl112" / "bin" / "python"
COMMON = dict(use_cpu=True, report_to="none", save_strategy="no", logging_steps=1, learning_rate=1e-4, seed=0)


def step_logs(trainer) -> list[dict]:
    return [log for log in trainer.state.log_history if "loss" in log]


def in_range(value, low, high) -> bool:
    return value is not None and math.isfinite(value) and low <= value <= high


def grpo(reward_funcs, output_dir, batch_size=4, data=None):
    from trl import GRPOConfig, GRPOTrainer

    policy, tokenizer = tiny_policy()
    args = GRPOConfig(output_dir=output_dir, per_device_train_batch_size=batch_size, num_generations=4,
                      max_completion_length=8, max_steps=3, **COMMON)
    trainer = GRPOTrainer(model=policy, processing_class=tokenizer, reward_funcs=reward_funcs, args=args,
                          train_dataset=Dataset.from_dict(data or rows()))
    trainer.train()
    return trainer


def test_grpo_three_steps_with_tiny_judge(tmp_path):
    reward = GenRMReward(tiny_judge(), RewardConfig(mapping="centered"))
    trainer = grpo([reward], output_dir=str(tmp_path))
    logs = step_logs(trainer)
    assert trainer.state.global_step == 3 and len(logs) == 3
    for log in logs:
        assert in_range(log["rewards/genrm/mean"], -1, 1)
        assert in_range(log["genrm/win_prob"], 0, 1)
        assert log["genrm/abstain_rate"] == 0.0  # no-CoT always gives a probability
        assert "genrm/votes_used" in log and math.isfinite(log["loss"])
    rewards = list(trainer._logs["rewards"]["genrm"])
    assert len(rewards) == 4 and all(in_range(r, -1, 1) for r in rewards)
    assert len(set(rewards)) > 1  # a real judge: completions get different rewards


def test_grpo_exact_rewards_from_scripted_judge_next_to_a_cot_judge(tmp_path):
    oracle = GenRMReward(length_oracle(), RewardConfig(name="oracle"))
    cot = AsyncGenRMReward(tiny_judge(mode="cot", k=2, max_new_tokens=4), RewardConfig(name="cot", mapping="logit"))
    # references about as long as the tiny policy's 8-token completions, so some win and some lose
    data = {"prompt": PROMPTS, "reference": ["r" * (22 + 2 * i) for i in range(len(PROMPTS))]}
    trainer = grpo([oracle, cot], output_dir=str(tmp_path), batch_size=8, data=data)
    logs = step_logs(trainer)
    assert len(logs) == 3
    reference_of = dict(zip(data["prompt"], data["reference"]))
    prompts, completions = list(trainer._logs["prompt"]), list(trainer._logs["completion"])
    expected = [length_oracle_p(c, reference_of[p]) for p, c in zip(prompts, completions)]
    logged = list(trainer._logs["rewards"]["oracle"])
    assert len(logged) == 8 and {0.0, 1.0} <= set(expected)
    for want, got in zip(expected, logged):
        assert (math.isnan(got) if want is None else got == want), (want, got)
    assert list(trainer._logs["extra"]["oracle_p_win"]) == expected
    assert all(math.isnan(r) or -5 <= r <= 5 for r in trainer._logs["rewards"]["cot"])
    for log in logs:
        assert "cot/abstain_rate" in log and 0 <= log["cot/abstain_rate"] <= 1  # a random tiny CoT judge mostly abstains
        assert log["oracle/votes_used"] == 4.0  # k=2 votes in each of the two orders
        assert log.get("oracle/win_prob") is None or in_range(log["oracle/win_prob"], 0, 1)


def test_rloo_three_steps_with_async_reward(tmp_path):
    from trl import RLOOConfig, RLOOTrainer

    policy, tokenizer = tiny_policy()
    policy.save_pretrained(tmp_path / "policy")  # RLOO (beta > 0) loads its reference model from the path
    tokenizer.save_pretrained(tmp_path / "policy")
    reward = AsyncGenRMReward(tiny_judge(), RewardConfig(mapping="logit", logit_clip=4.0))
    args = RLOOConfig(output_dir=str(tmp_path / "out"), per_device_train_batch_size=4, num_generations=2,
                      max_completion_length=8, max_steps=3, beta=0.05, **COMMON)
    trainer = RLOOTrainer(model=str(tmp_path / "policy"), reward_funcs=[reward], args=args,
                          train_dataset=Dataset.from_dict(rows()))
    trainer.train()
    logs = step_logs(trainer)
    assert trainer.state.global_step == 3 and len(logs) == 3
    for log in logs:
        assert in_range(log["rewards/genrm/mean"], -4, 4)
        assert in_range(log["genrm/win_prob"], 0, 1) and log["genrm/abstain_rate"] == 0.0
    assert reward.last_metrics["items"] == 4


def test_pairwise_reward_follows_online_dpo_layout():
    reward = PairwiseGenRMReward(length_oracle(), RewardConfig(mapping="centered"))
    out = reward(prompts=["q1", "q2"] * 2, completions=["long one", "b", "short", "bb"], trainer_state=None)
    assert out == [1.0, -1.0, -1.0, 1.0]
    assert reward(prompts=["q"] * 2, completions=["same", "same"]) == [None, None]
    with pytest.raises(ValueError, match=r"prompts\[0\] and prompts\[2\] differ"):
        reward(prompts=["q1", "q2", "q2", "q1"], completions=["a"] * 4)
    with pytest.raises(ValueError, match="even number"):
        reward(prompts=["q"] * 3, completions=["a"] * 3)


def test_online_dpo_with_pairwise_judge(tmp_path):
    from trl.experimental.online_dpo import OnlineDPOConfig, OnlineDPOTrainer

    policy, tokenizer = tiny_policy()
    reward = PairwiseGenRMReward(tiny_judge(), RewardConfig(mapping="centered"))
    args = OnlineDPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=2, max_new_tokens=8,
                           max_steps=2, **COMMON)
    trainer = OnlineDPOTrainer(model=policy, reward_funcs=[reward], args=args, processing_class=tokenizer,
                               train_dataset=Dataset.from_dict({"prompt": PROMPTS}),
                               callbacks=[GenRMMetricsCallback(reward)])
    trainer.train()
    logs = step_logs(trainer)
    assert trainer.state.global_step == 2 and len(logs) == 2
    for log in logs:
        assert math.isfinite(log["loss"])
        assert log["objective/scores"] == pytest.approx(0.0, abs=1e-6)  # centered pair rewards sum to zero
        assert log["objective/scores_margin"] >= 0  # chosen = the judge's pick
        assert in_range(log["genrm/win_prob"], 0, 1) and log["genrm/abstain_rate"] == 0.0


def test_ppo_reward_module_through_trls_get_reward():
    """The exact call PPOTrainer makes (``trl.experimental.utils.get_reward``, present in newest TRL too)."""
    import torch
    from trl.experimental.utils import get_reward

    from genrm_plugin.integrations.trl import GenRMRewardModel, JudgeBackbone

    _, tok = tiny_policy()
    prompts = ["What is 1+2?", "What is 1+2? Explain.", "Hi"]
    references = ["1+2=3", "1+2 is 3 because one plus two is three.", "Hello"]
    prompt_ids = [tok(p, add_special_tokens=False).input_ids for p in prompts]
    model = GenRMRewardModel(JudgeBackbone(GenRMReward(length_oracle(), RewardConfig(mapping="centered")), tok,
                                           prompts, prompt_ids, references))
    responses = [" It is 3, clearly.", " 3", ""]  # the second prompt extends the first: longest match wins
    response_ids = [tok(r, add_special_tokens=False).input_ids + [tok.eos_token_id] for r in responses]
    width_q, width_r = max(map(len, prompt_ids)), max(map(len, response_ids)) + 2
    pad = tok.pad_token_id
    rows = [[pad] * (width_q - len(q)) + q + r + [pad] * (width_r - len(r)) for q, r in zip(prompt_ids, response_ids)]
    rows[1][width_q + len(response_ids[1]) + 1] = tok.eos_token_id  # after the first pad: not part of the response
    query_responses = torch.tensor(rows)
    _, scores, _ = get_reward(model, query_responses, pad, width_q)
    assert model.backbone.last_responses == responses
    assert scores.tolist() == [1.0, -1.0, -1.0]  # longer than "1+2=3"; shorter than its reference; "" vs "Hello"
    _, one, _ = get_reward(model, query_responses[2:], pad, width_q)  # batch of one keeps its shape
    assert one.tolist() == [-1.0]
    unknown = torch.tensor([tok("Unknown prompt", add_special_tokens=False).input_ids + [tok.eos_token_id]])
    with pytest.raises(ValueError, match="row 0 does not start with any of the 3 registered prompts"):
        get_reward(model, unknown, pad, 2)
    with pytest.raises(KeyError, match=r"lacks column\(s\) \['reference'\]"):
        GenRMRewardModel.from_dataset(model.backbone.reward, tok, Dataset.from_dict({"prompt": ["a"], "input_ids": [[1]]}))


def run_under_trl112(test_file: str) -> str:
    """pytest's output for ``tests/<test_file>`` run in the trl==1.12.0 environment (PPO lives there)."""
    if not VENV_TRL112.exists():
        pytest.fail(f"{VENV_TRL112} is missing: PPO needs trl==1.12.0 in a second environment; run `make venv-trl112`")
    out = subprocess.run(
        [str(VENV_TRL112), "-m", "pytest", "-q", "-p", "no:cacheprovider", str(ROOT / "tests" / test_file)],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    return out.stdout


def test_ppo_under_trl_1_12():
    assert "2 passed" in run_under_trl112("ppo_trl112.py")
