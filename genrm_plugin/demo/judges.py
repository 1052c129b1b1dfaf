"""The demo's judges: a warm start on the seed set, the package's recipes, and their evaluation.

* :func:`warm_start` -- SFT of the base model on the seed teacher critiques (TRL SFT), with
  base-corpus rows replayed (``replay_share``) and LoRA when ``lora_r`` is set: it learns the
  judging protocol (verdict after the checks) and keeps the base's skills; the STaR recipes start
  from it.
* :func:`train_recipe` -- one recipe through :func:`genrm_plugin.recipes.runner.train_judge`
  (``genrm train``), with the in-distribution eval split as held-out data (the STaR curve).
* :func:`evaluate_judge` -- ``genrm eval preference`` on one split at maj@1..K, plus what only
  the world can check: the parse-failure rate of single rationales, and **faithfulness** -- the
  share of rationales whose recomputed sum is the true sum, overall and among those with the
  right verdict (what a verdict-only filter keeps).
* :func:`star_faithfulness` -- the same check on the right-verdict rationales STaR sampled (what a
  verdict-only filter would keep).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from genrm_plugin.demo.base_model import TEMPLATE
from genrm_plugin.demo.config import CRITIQUE_RMS, DemoConfig
from genrm_plugin.evals.preference import PreferenceEvaluation
from genrm_plugin.judge import JudgeConfig
from genrm_plugin.prompts import parse_verdict
from genrm_plugin.recipes.config import RecipeConfig, TrainConfig
from genrm_plugin.recipes.training_run import FinishedRun
from genrm_plugin.run_folder import atomic_dir, atomic_write_json
from genrm_plugin.toy.world import ANSWER_PATTERN, parse_question, rationale_faithful

MAX_NEW_TOKENS = 128  # the longest world rationale (3-digit sums: trace, two digit-by-digit checks) is ~100 tokens
FAITHFULNESS_FILTER = "genrm_plugin.toy.world:rationale_checks_out"  # STaR keeps rationales whose every step holds
# the base never writes a verdict (its corpus has no [[A]] line): one vote per order shows it, and
# more votes only repeat the abstentions at the cost of the longest generations in the run
ZERO_SHOT_K = 1
MODES = {"zero-shot": "cot", "warm-start": "cot", "star-sft": "cot", "star-dpo": "cot", "genrm": "no_cot", "bt": None}


def judge_config(config: DemoConfig, mode: str = "cot", k: int | None = None) -> JudgeConfig:
    """The demo's judges are shown the candidates' final answers (the world's ``ANSWER_PATTERN``)."""
    return JudgeConfig(mode=mode, k=k or config.k, swap=True, template=TEMPLATE, answer_pattern=ANSWER_PATTERN,
                       max_new_tokens=MAX_NEW_TOKENS,
                       seed=config.seed)


def load_demo_backend(model: str | Path, config: DemoConfig):
    """The transformers backend over ``model`` with the demo's generation batch size."""
    from genrm_plugin.backends.factory import BackendConfig, load_backend

    return load_backend(BackendConfig(model=str(model), batch_size=config.generation_batch_size))


def uses_lora(config: DemoConfig, recipe: str) -> bool:
    """Whether ``recipe`` (or ``warm-start``) trains LoRA adapters: the CoT judges when ``lora_r`` is set."""
    return config.lora_r > 0 and recipe in ("warm-start", "star-sft", "star-dpo")


def model_args(config: DemoConfig, recipe: str):
    """TRL's ``ModelConfig`` of ``recipe``'s run: LoRA on every linear layer (``None``: full fine-tuning)."""
    if not uses_lora(config, recipe):
        return None
    from trl import ModelConfig

    return ModelConfig(use_peft=True, lora_r=config.lora_r, lora_alpha=2 * config.lora_r, lora_dropout=0.0,
                       lora_target_modules=["all-linear"])


def learning_rate(config: DemoConfig, recipe: str) -> float:
    if uses_lora(config, recipe):
        return config.lora_learning_rate
    if recipe in CRITIQUE_RMS:
        return config.critique_learning_rate
    return config.dpo_learning_rate if recipe == "star-dpo" else config.judge_learning_rate


def train_config(config: DemoConfig, batch_size: int = 16, recipe: str = "") -> TrainConfig:
    """The TRL settings of one judge run (``recipe``: its learning rate, and STaR-DPO's RPO loss)."""
    rpo = {}
    if recipe == "star-dpo" and config.dpo_sft_weight > 0:
        rpo = dict(loss_type=["sigmoid", "sft"], loss_weights=[1.0, config.dpo_sft_weight])
    return TrainConfig(
        learning_rate=learning_rate(config, recipe),
        num_train_epochs=config.critique_epochs if recipe in CRITIQUE_RMS else config.judge_epochs,
        per_device_train_batch_size=batch_size, lr_scheduler_type="constant", logging_steps=5, max_length=256,
        beta=config.dpo_beta, **rpo,
    )


def warm_start(config: DemoConfig, base: Path, run_dir: Path) -> tuple[Path, dict]:
    """The base model SFT'ed on the seed critiques (reused if ``run_dir/warm-start`` exists)."""
    from transformers import AutoTokenizer

    from genrm_plugin.demo.world_data import replay_rows, seed_rows
    from genrm_plugin.recipes.trainers import train_sft

    path = run_dir / "warm-start"
    info_file = path / "warm_start.json"
    if info_file.is_file():
        return path, json.loads(info_file.read_text())
    tokenizer = AutoTokenizer.from_pretrained(base)
    rows = seed_rows(tokenizer, config.seed_rationales, config.seed, TEMPLATE)
    replay = replay_rows(tokenizer, round(config.replay_share * len(rows)), config.seed, config.base_error_rate, TEMPLATE)
    mixed = rows + replay  # the trainer shuffles them together
    train = train_config(config, batch_size=8, recipe="warm-start")
    train.num_train_epochs = config.seed_epochs  # a small seed set: a few passes to learn the verdict protocol
    model, tokenizer, result = train_sft(str(base), mixed, run_dir / "warm-start-trainer", train,
                                         learning_rate(config, "warm-start"), config.seed,
                                         model_args(config, "warm-start"))
    info = {"rows": len(rows), "replay_rows": len(replay), "lora_r": config.lora_r if uses_lora(config, "warm-start") else 0,
            "steps": result.steps, "loss": result.loss, "seconds": result.seconds}

    def save(tmp: Path) -> None:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        atomic_write_json(tmp / info_file.name, info)

    atomic_dir(path, save)
    return path, info


def train_recipe(config: DemoConfig, recipe: str, start: Path, data: dict[str, Path], run_dir: Path) -> Path:
    """Train ``recipe`` from ``start`` on the training split (resumable); returns the final judge folder."""
    from genrm_plugin.recipes.runner import train_judge

    star = recipe.startswith("star-")
    # STaR-DPO: an abstaining rationale (no verdict) is a rejected one too -- the judge learns to
    # write verdicts, and a warm start that often abstains still yields pairs
    dpo = dict(dpo_abstain_as_rejected=True) if recipe == "star-dpo" else {}
    settings = RecipeConfig(
        recipe=recipe, data=str(data["train"]), eval_data=str(data["id"]) if star else None, model=str(start),
        output_dir=str(run_dir / recipe), iterations=config.star_iterations if star else None, shard_size=128,
        sample_batch_size=config.generation_batch_size, eval_k=config.k, eval_save_rationales=True,
        rationale_filter=FAITHFULNESS_FILTER if star and config.star_rationale_filter else None,
        allow_empty_iterations=True, **dpo,
    )
    return train_judge(settings, train_config(config, recipe=recipe), judge_config(config), model_args(config, recipe))


def final_evaluation(config: DemoConfig, recipe: str, run_dir: Path) -> PreferenceEvaluation | None:
    """A STaR run's own evaluation of its final judge on the ID split (the last iteration's
    held-out evaluation: same judge, data and votes as :func:`evaluate_judge`), if any."""
    return PreferenceEvaluation.load(FinishedRun(run_dir / recipe).evaluation_dir(config.star_iterations))


def evaluate_judge(config: DemoConfig, name: str, model: Path, data: Path, out_dir: Path,
                   finished: PreferenceEvaluation | None = None) -> dict[str, Any]:
    """Preference accuracy of judge ``name`` (a key of :data:`MODES`) on ``data`` at maj@1, 2, ... K
    (CoT). ``finished``: this evaluation, already run (used instead of judging again)."""
    mode = MODES[name]
    evaluation = finished or run_evaluation(config, mode, model, data, out_dir,
                                            k=ZERO_SHOT_K if name == "zero-shot" else None)
    result = evaluation_figures(evaluation)
    if mode == "cot":
        from genrm_plugin.data import load_preferences

        questions = [pair.prompt for pair in load_preferences(str(data))]
        result.update(rationale_checks(evaluation.records, questions))
    return result


def evaluation_figures(evaluation: PreferenceEvaluation) -> dict[str, Any]:
    """What the report reads of one evaluation: accuracy at each maj@k, consistency and accuracy by
    mistake kind at the largest k, the pair count, and per-pair credits (for paired intervals)."""
    summary = evaluation.summary
    top = str(summary["ks"][-1])
    return {
        "accuracy": {f"maj@{k}": v for k, v in summary["overall"]["accuracy"].items()},
        "consistency": summary["overall"]["consistency"][top],
        "by_mistake": {s: g["accuracy"][top] for s, g in summary["subsets"].items()},
        "pairs": summary["pairs"],
        "credits": {f"maj@{k}": evaluation.credits(int(k)) for k in summary["ks"]},
    }


def run_evaluation(config: DemoConfig, mode: str | None, model: Path, data: Path, out_dir: Path,
                   k: int | None = None, limit: int | None = None, rationales: bool = True) -> PreferenceEvaluation:
    """``genrm eval preference`` of ``model`` as a ``mode`` judge (``None``: a BT reward model) with
    ``k`` votes per order (default: the demo's K) on the first ``limit`` pairs; ``rationales``: keep
    the CoT rationales in the records (for :func:`rationale_checks`)."""
    from genrm_plugin.evals.preference import PreferenceEvalConfig, evaluate_preferences
    from genrm_plugin.evals.selection import describe_judge
    from genrm_plugin.judge import GenerativeJudge

    eval_config = PreferenceEvalConfig(
        data=str(data), output_dir=str(out_dir), judge_kind="bt" if mode is None else "genrm",
        order_seed=config.seed, chunk_size=128, save_rationales=mode == "cot" and rationales, limit=limit,
    )
    if mode is None:
        from genrm_plugin.bt_scorer import BTScorer

        evaluate_preferences(eval_config, scorer=BTScorer.from_pretrained(model),
                             judge_info={"model": str(model), "judge": "BTScorer"})
    else:
        judge = GenerativeJudge(load_demo_backend(model, config), judge_config(config, mode, k=k))
        evaluate_preferences(eval_config, judge=judge, judge_info={"model": str(model), **describe_judge(judge)})
    return PreferenceEvaluation.load(out_dir)


def rationale_checks(records: list[dict[str, Any]], questions: list[str]) -> dict[str, float | None]:
    """Parse failures and faithfulness of every rationale in an evaluation's records
    (``questions[i]`` is the question of the record with ``index`` i)."""
    total = failures = faithful = right = right_faithful = 0
    for record in records:
        problem = parse_question(questions[record["index"]])
        for order, rationales in enumerate(record["rationales"]):
            chosen_label = "A" if record["chosen_first"] == (order == 0) else "B"
            for text in rationales:
                verdict, ok = parse_verdict(text), rationale_faithful(problem, text)
                total += 1
                failures += verdict is None
                faithful += ok
                if verdict == chosen_label:
                    right += 1
                    right_faithful += ok
    return {
        "rationales": total,
        "parse_failure_rate": failures / total if total else None,
        "faithful_rate": faithful / total if total else None,
        "faithful_given_right_verdict": right_faithful / right if right else None,
    }


def star_faithfulness(run_dir: Path) -> list[dict[str, Any]]:
    """Per STaR iteration: rationales with the right verdict (what a verdict-only filter keeps), and
    the share of them with the true sum (what the world's rationale filter keeps)."""
    out, run = [], FinishedRun(run_dir)
    for iteration in run.iterations():
        right = faithful = sampled = 0
        for record in run.sampled_records(iteration):
            problem = parse_question(record["prompt"])
            for text, verdict in zip(record["rationales"], record["verdicts"]):
                sampled += 1
                if verdict == record["label"]:
                    right += 1
                    faithful += rationale_faithful(problem, text)
        out.append({"iteration": iteration, "sampled": sampled, "right_verdict": right,
                    "right_verdict_faithful_rate": faithful / right if right else None})
    return out
