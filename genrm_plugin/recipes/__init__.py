"""Judge-training recipes of the GenRM paper (Mahan et al. 2024) on TRL trainers (``genrm train``).

* ``bt`` (:mod:`~genrm_plugin.recipes.bt`): Bradley-Terry reward model, also a scorer/reward.
* ``genrm`` (:mod:`~genrm_plugin.recipes.genrm`): SFT on the verdict only (no CoT).
* ``star-sft`` / ``star-dpo`` / ``star-rationalizer`` (:mod:`~genrm_plugin.recipes.star`): iterated
  self-taught reasoning over one resumable, sharded sampling loop.
* ``judge-zero-shot`` (:mod:`~genrm_plugin.recipes.zero_shot`): the untrained LLM-as-judge baseline.
* ``synthetic-critique-rm`` / ``cloud`` (:mod:`~genrm_plugin.recipes.critique`): critique reward models
  (a BT model reading a critic's critique; Critique-out-Loud's one model with LM and reward heads),
  scored by :class:`~genrm_plugin.critique_scorer.CritiqueScorer`.

:func:`train_judge` runs one (:mod:`~genrm_plugin.recipes.runner`); configs in
:mod:`~genrm_plugin.recipes.config`; the run folder in :mod:`~genrm_plugin.recipes.training_run`.
"""

from genrm_plugin.recipes.config import RECIPES, RecipeConfig, TrainConfig

__all__ = ["RECIPES", "RecipeConfig", "TrainConfig", "train_judge"]


def __getattr__(name):  # lazy: configs import without torch/transformers
    if name == "train_judge":
        from genrm_plugin.recipes.runner import train_judge

        return train_judge
    raise AttributeError(name)
