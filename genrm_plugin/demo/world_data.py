"""The demo's data, written as ordinary files the package's commands read.

* ``data/train.jsonl``: in-distribution preference pairs (2-digit sums) with label noise;
* ``data/eval_id.jsonl``, ``data/eval_ood.jsonl``, ``data/eval_long.jsonl``: clean held-out pairs
  of every split of the world (2-digit sums; 2-digit differences, a skill the base knows but no
  judge training row shows; 3-digit sums);
* the seed set: teacher critiques (the world's correct rationale ending in the verdict) for the
  warm start, as SFT rows over the judge's own CoT prompt.

Every row is a ``prompt/chosen/rejected/subset/id`` preference (``subset`` = the flawed answer's
mistake), the shape :func:`genrm_plugin.data.load_preferences` reads.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from genrm_plugin.data import PreferencePair, to_judge_examples
from genrm_plugin.recipes.training_rows import judge_prompt
from genrm_plugin.toy.world import SPLITS, WorldPair, judge_rationale, make_pairs, parse_question, prompt_config

EVAL_SPLITS = tuple(SPLITS)  # id, ood (differences), long (3-digit sums)
SPLIT_FILES = {"train": "train.jsonl", **{split: f"eval_{split}.jsonl" for split in EVAL_SPLITS}}


def to_preference(pair: WorldPair, pair_id: str) -> PreferencePair:
    return PreferencePair(pair.problem.question, pair.chosen, pair.rejected, pair.mistake, pair_id)


def write_world(folder: Path, train_pairs: int, eval_pairs: int, label_noise: float, seed: int) -> dict[str, Path]:
    """Write the train file and one eval file per split into ``folder``; returns their paths by split."""
    folder.mkdir(parents=True, exist_ok=True)
    sets = {"train": make_pairs(train_pairs, "id", seed=seed, label_noise=label_noise),
            **{split: make_pairs(eval_pairs, split, seed=seed + 1) for split in EVAL_SPLITS}}
    paths = {}
    for split, pairs in sets.items():
        path = folder / SPLIT_FILES[split]
        with path.open("w") as f:
            for i, pair in enumerate(pairs):
                row = to_preference(pair, f"{split}-{i}").__dict__
                f.write(json.dumps({**row, "noisy": pair.noisy}) + "\n")
        paths[split] = path
    return paths


def seed_rows(tokenizer: Any, n: int, seed: int, template: str) -> list[dict[str, str]]:
    """SFT rows of the seed set: ``n`` pairs in both orders, each with the teacher's rationale."""
    pairs = [to_preference(p, f"seed-{i}") for i, p in enumerate(make_pairs(n, "id", seed=seed + 2))]
    rows = []
    for example in to_judge_examples(pairs, seed=seed, shuffle=True):
        problem = parse_question(example.prompt)
        rows.append({
            "prompt": judge_prompt(tokenizer, example, "cot", prompt_config(template)),
            "completion": judge_rationale(problem, example.answer_a, example.answer_b),
        })
    return rows


def replay_rows(tokenizer: Any, n: int, seed: int, error_rate: float, template: str) -> list[dict[str, str]]:
    """``n`` rows of the base model's own corpus (its ``solve`` rows: policy prompts with worked
    answers of every split, differences included) to mix into judge training, so that it keeps the
    base's skills. Only solve rows: the corpus' check rows share the judge prompt but end before
    the verdict, so replaying them would teach the judge to stop there."""
    from genrm_plugin.toy.corpus import base_corpus

    return base_corpus(tokenizer, n, seed=seed + 3, error_rate=error_rate, check_share=0.0, template=template)
