"""Evaluations: preference accuracy, MATH500 Best-of-N and ArenaHard v0.1 Best-of-N.

Each writes a resumable run folder (:class:`~genrm_plugin.run_folder.RecordFolder`) and is driven from the
shell by ``genrm eval preference|math500|arenahard``:

* :mod:`~genrm_plugin.evals.preference` -- accuracy of any judge on preference pairs (maj@K,
  position consistency, abstentions, RewardBench sections);
* :mod:`~genrm_plugin.evals.math500` -- accuracy vs N for GenRM selection, majority vote, random
  pick and oracle, graded with math-verify (:mod:`~genrm_plugin.evals.grading`);
* :mod:`~genrm_plugin.evals.arenahard` -- win rate of the GenRM's Best-of-N choice against the
  gpt-4-0314 baseline, graded by an arena-hard judge, with a bootstrap interval.
"""
