"""veRL reward file: a GenRM judge as veRL's custom reward function.

    export GENRM_CONFIG=genrm.yaml     # judge settings, same fields as `genrm serve --config`
    python -m verl.trainer.main_ppo \
        custom_reward_function.path=examples/verl_reward.py \
        custom_reward_function.name=compute_score_batch \
        reward_model.reward_manager=batch \
        data.train_files=train.parquet ...

The batch manager sends a whole rollout batch in one judge call (use ``name=compute_score`` with the
default naive manager for one call per response). veRL 0.9's trainer scores in its reward loop
(``reward.custom_reward_function.*``, ``reward.reward_manager.name``; the keys above are migrated), which
has no ``batch`` manager: there use ``name=compute_score`` with ``naive``, which calls it from its
worker threads one response at a time. Each response is judged against
``extra_info["reference"]`` if the row has one, else ``ground_truth``; the question comes from
``extra_info["question"]`` (veRL does not pass prompts to reward functions). Returns dicts with
``score`` (the reward), ``win_prob`` in [0, 1] and ``abstained``; see
:mod:`genrm_plugin.integrations.verl`.
"""

from genrm_plugin.integrations.verl import compute_score, compute_score_batch

__all__ = ["compute_score", "compute_score_batch"]
