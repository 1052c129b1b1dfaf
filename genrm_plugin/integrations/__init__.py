"""Framework integrations: thin translations of a trainer's calling convention onto the reward core,
one module per framework, for either reward -- the pairwise :class:`~genrm_plugin.reward.GenRMReward`
or the pointwise :class:`~genrm_plugin.critique_reward.CritiqueReward`.

* :mod:`genrm_plugin.integrations.trl` -- TRL: GRPO/RLOO use either reward directly as a reward
  function; OnlineDPO uses :class:`~genrm_plugin.integrations.trl.PairwiseGenRMReward` (or a
  pointwise reward as is); PPO (trl 1.10-1.12) uses
  :class:`~genrm_plugin.integrations.trl.GenRMRewardModel` as ``reward_model``.
* :mod:`genrm_plugin.integrations.openrlhf` -- OpenRLHF's remote-reward protocol (request parsing for
  ``genrm serve``'s ``/get_reward``, and the ``reward_func`` file).
* :mod:`genrm_plugin.integrations.verl` -- veRL's ``compute_score`` / ``compute_score_batch``.

Numbers come from the reward core's one entry, ``reward.score_items(questions, responses,
references)`` (``reward.needs_reference`` says whether references are read); no integration
branches on the reward's type. The reward files build their reward from the shared ``genrm.yaml``
(:class:`genrm_plugin.settings.Settings`; ``reward_kind`` picks the reward).
"""
