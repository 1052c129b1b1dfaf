"""PPO with a pointwise critique reward (a scripted critique RM) under trl==1.12.0: the same reward
module as for the GenRM judge, built without a reference column.

Not collected by the main suite (its name does not match ``test_*.py``): tests/test_critique_reward.py
runs it with ``.venv-trl112/bin/python -m pytest tests/ppo_critique_trl112.py``.
"""

from __future__ import annotations

import pytest

from genrm_plugin.critique_reward import CritiqueReward
from genrm_plugin.testing import ScriptedCritiqueScorer
from ppo_trl112 import STEPS, run_ppo
from tiny_rl import rows


def test_ppo_scores_are_the_critique_rewards(tmp_path):
    reward = CritiqueReward(ScriptedCritiqueScorer(marker="a", k=2))
    data = {"prompt": rows()["prompt"]}  # no reference column: a pointwise reward reads none
    trainer, reward_model = run_ppo(tmp_path, reward, data)
    logs = [log for log in trainer.state.log_history if "objective/scores" in log]
    assert trainer.state.global_step == STEPS and len(logs) == STEPS
    backbone = reward_model.backbone
    assert backbone.last_rewards == [float(r.count("a")) for r in backbone.last_responses]
    assert logs[-1]["objective/scores"] == pytest.approx(sum(backbone.last_rewards) / len(backbone.last_rewards))
    assert all("critique/reward_mean" in log and log["critique/critiques_per_item"] == 2.0 for log in logs)
