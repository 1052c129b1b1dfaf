"""The demo's critique reward models (issue 20): CLoud and a Synthetic-Critiques RM beside BT and the judges.

* Teacher critiques: the world's pointwise oracle critique of each training answer
  (:func:`genrm_plugin.toy.world.answer_critique`: the recomputed trace, the answer compared with it
  digit by digit, ``Y``/``N``) stands for the strong LLM whose critiques these methods start from.
* ``cloud`` (``genrm train --recipe cloud``): critique SFT on the teacher critiques, the model's own
  critiques of the training answers, then the reward head (BT loss + LM loss on the teacher critiques).
* ``synthetic-critique-rm``: the critic is CLoud's stage-1 model (an LLM fine-tuned to write the
  teacher's critiques); it critiques every training answer, and a BT model reads (prompt, answer,
  critique). Same training data, same critic family: the two differ in what reads the critique
  (a separate reward model vs the critic's own backbone).

Both start from the warm start (like the STaR judges: a model that already checks the world's
answers). They are pointwise (each answer scored alone, no reference) and are evaluated with
``genrm eval preference --judge_kind cloud|synthetic-critique-rm`` on every split, one greedy
critique per answer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from genrm_plugin.data import load_preferences
from genrm_plugin.demo.config import CRITIQUE_RMS, DemoConfig
from genrm_plugin.demo.judges import MAX_NEW_TOKENS, evaluation_figures, judge_config, train_config
from genrm_plugin.evals.preference import PreferenceEvaluation
from genrm_plugin.recipes.config import RecipeConfig
from genrm_plugin.recipes.training_run import FinishedRun
from genrm_plugin.toy.world import answer_critique, parse_question

CLOUD_SFT_STAGE = 1  # the cloud recipe's first iteration: the critique writer (SFT on teacher critiques)


def write_teacher_critiques(train: Path, out: Path) -> Path:
    """The training pairs with the teacher's critique of each answer (``chosen_critique`` / ``rejected_critique``)."""
    with out.open("w") as f:
        for pair in load_preferences(str(train)):
            problem = parse_question(pair.prompt)
            row = {**pair.__dict__, "chosen_critique": answer_critique(problem, pair.chosen),
                   "rejected_critique": answer_critique(problem, pair.rejected)}
            f.write(json.dumps(row) + "\n")
    return out


def train_critique_rms(config: DemoConfig, start: Path, data: dict[str, Path], run_dir: Path) -> dict[str, Path]:
    """Train CLoud, then the Synthetic-Critiques RM on CLoud's critique writer (resumable runs)."""
    from genrm_plugin.recipes.runner import train_judge

    teacher = write_teacher_critiques(data["train"], run_dir.parent / "data" / "train_critiques.jsonl")
    finals = {}
    for name in (n for n in CRITIQUE_RMS if n in config.judges):
        critic = str(FinishedRun(run_dir / "cloud").checkpoint(CLOUD_SFT_STAGE)) if name == "synthetic-critique-rm" else None
        settings = RecipeConfig(recipe=name, data=str(teacher if name == "cloud" else data["train"]), model=str(start),
                                output_dir=str(run_dir / name), shard_size=512, sample_batch_size=config.generation_batch_size,
                                critic_model=critic)
        finals[name] = train_judge(settings, train_config(config, recipe=name), judge_config(config))
    return finals


def evaluate_critique_rm(config: DemoConfig, name: str, model: Path, splits: dict[str, Path], out_dir: Path) -> dict[str, Any]:
    """Preference accuracy of critique RM ``name`` on each split of ``splits`` (one greedy critique per
    answer; the model is loaded once), in the shape of :func:`genrm_plugin.demo.judges.evaluate_judge`'s
    results, by split."""
    from genrm_plugin.critique_scorer import CritiqueConfig, CritiqueScorer
    from genrm_plugin.evals.preference import PreferenceEvalConfig, evaluate_preferences

    scorer = CritiqueScorer.from_pretrained(model, config=CritiqueConfig(max_new_tokens=MAX_NEW_TOKENS, seed=config.seed),
                                            batch_size=config.generation_batch_size)
    results = {}
    for split, data in splits.items():
        eval_config = PreferenceEvalConfig(data=str(data), output_dir=str(out_dir / split), judge_kind=name,
                                           critique_model=str(model), order_seed=config.seed, chunk_size=128)
        evaluate_preferences(eval_config, scorer=scorer, judge_info={"model": str(model), "judge": f"CritiqueScorer ({name})"})
        results[split] = evaluation_figures(PreferenceEvaluation.load(out_dir / split))
    return results
