"""A small synthetic preference set (addition) and a format warm-start for tiny judges.

For tests and smoke runs of the recipes on the tiny kit, where no pretrained judge exists:

* :func:`synthetic_pairs` -- "What is a+b?" with the correct sum as ``chosen`` and a near miss
  (off by one or by ten) as ``rejected``; ``subset`` names the kind of near miss.
* :func:`write_synthetic` -- the same pairs as a ``prompt/chosen/rejected`` JSONL file.
* :func:`seed_rationale` -- a short rationale in the judge's format ending in the correct verdict.
* :func:`warm_start` -- a tiny kit model SFT'ed on seed rationales so that it writes rationales
  that end in a verdict (a random model never does, and STaR keeps nothing from it).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from genrm_plugin.data import JudgeExample, PreferencePair, to_judge_examples
from genrm_plugin.prompts import verdict_text

NEAR_MISSES = {"off_by_one": (1, -1), "off_by_ten": (10, -10)}


def synthetic_pairs(n: int, seed: int = 0, max_operand: int = 99) -> list[PreferencePair]:
    """``n`` addition preferences: the right sum beats a near miss."""
    rng = random.Random(seed)
    pairs = []
    for i in range(n):
        a, b = rng.randint(0, max_operand), rng.randint(0, max_operand)
        kind = rng.choice(sorted(NEAR_MISSES))
        wrong = a + b + rng.choice(NEAR_MISSES[kind])
        if wrong < 0:
            wrong = a + b + abs(NEAR_MISSES[kind][0])
        pairs.append(PreferencePair(f"What is {a}+{b}?", f"{a}+{b}={a + b}", f"{a}+{b}={wrong}", kind, f"syn-{i}"))
    return pairs


def write_synthetic(path: str | Path, n: int, seed: int = 0) -> Path:
    """Write :func:`synthetic_pairs` as JSONL rows with prompt/chosen/rejected/subset/id."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for pair in synthetic_pairs(n, seed):
            f.write(json.dumps(pair.__dict__) + "\n")
    return path


def seed_rationale(example: JudgeExample) -> str:
    """A rationale in the judge's format: each candidate checked against the sum, then the verdict."""
    total = _sum_of(example.prompt)

    def check(name: str, answer: str) -> str:
        value = answer.rsplit("=", 1)[-1]
        return f"{name} {value}={total} {'Y' if value == str(total) else 'N'}."

    return f"{check('A', example.answer_a)} {check('B', example.answer_b)} {verdict_text(example.label)}"


def _sum_of(question: str) -> int:
    a, b = question.removeprefix("What is ").rstrip("?").split("+")
    return int(a) + int(b)


def warm_start(
    out_dir: str | Path, n_pairs: int = 64, seed: int = 0, template: str = "compact", train=None, model_config=None
) -> Path:
    """Save a tiny kit model SFT'ed on seed rationales of :func:`synthetic_pairs` to ``out_dir``/model.

    The seed rows pair each example's plain CoT prompt and its rationalize prompt (hint given)
    with :func:`seed_rationale`, so the model writes the format under both.
    ``train`` is a :class:`~genrm_plugin.recipes.config.TrainConfig` (default: 4 epochs, LR 5e-3,
    batch 16); ``model_config`` a :class:`~genrm_plugin.toy.TinyModelConfig` (default: the kit's).
    """
    from transformers import AutoTokenizer

    from genrm_plugin.prompts import PromptConfig, judge_messages, render_messages
    from genrm_plugin.recipes.config import TrainConfig
    from genrm_plugin.recipes.training_rows import judge_prompt
    from genrm_plugin.recipes.trainers import train_sft
    from genrm_plugin.toy import save_tiny

    out_dir = Path(out_dir)
    base = save_tiny(out_dir / "base", model_config)
    train = train or TrainConfig(learning_rate=5e-3, num_train_epochs=4, per_device_train_batch_size=16)
    tokenizer = AutoTokenizer.from_pretrained(base)
    rows, prompt_config = [], PromptConfig(template=template)
    for e in to_judge_examples(synthetic_pairs(n_pairs, seed=seed + 1000), seed=seed):
        hinted = judge_messages(e.prompt, e.answer_a, e.answer_b, "rationalize", e.label, prompt_config)
        for prompt in (judge_prompt(tokenizer, e, "cot", prompt_config), render_messages(tokenizer, hinted)):
            rows.append({"prompt": prompt, "completion": seed_rationale(e)})
    model, tokenizer, _ = train_sft(str(base), rows, out_dir / "trainer", train, train.lr_for("star-sft"), seed)
    model.save_pretrained(out_dir / "model")
    tokenizer.save_pretrained(out_dir / "model")
    return out_dir / "model"
