"""Framework integrations: thin translations of a trainer's calling convention onto
:class:`~genrm_plugin.reward.GenRMReward`, one module per framework.

* :mod:`genrm_plugin.integrations.trl` -- TRL: GRPO/RLOO use ``GenRMReward`` directly as a reward
  function; OnlineDPO uses :class:`~genrm_plugin.integrations.trl.PairwiseGenRMReward`; PPO
  (trl 1.10-1.12) uses :class:`~genrm_plugin.integrations.trl.GenRMRewardModel` as ``reward_model``.
* :mod:`genrm_plugin.integrations.openrlhf` -- OpenRLHF's remote-reward protocol (request parsing for
  ``genrm serve``'s ``/get_reward``, and the ``reward_func`` file).
* :mod:`genrm_plugin.integrations.verl` -- veRL's ``compute_score`` / ``compute_score_batch``.

Numbers come from the reward core (:meth:`~genrm_plugin.reward.GenRMReward.reward_of`,
:meth:`~genrm_plugin.reward.GenRMReward.item_scores`); the reward files build their judge from the
shared ``genrm.yaml`` (:class:`genrm_plugin.settings.Settings`).
"""
