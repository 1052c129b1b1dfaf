"""GRPO with a critique reward model (CLoud or Synthetic-Critiques RM) as a pointwise reward: no reference.

    python examples/grpo_with_cloud.py                     # trains a tiny CLoud on the toy world, then 3 GRPO steps
    python examples/grpo_with_cloud.py --critique_model runs/cloud/final --policy Qwen/Qwen2.5-0.5B-Instruct \\
        --k 4 --temperature 1.0 --max_steps 500

``--critique_model`` is the ``final/`` folder of ``genrm train --recipe cloud`` or ``--recipe
synthetic-critique-rm`` (its card says which). For each completion the model writes ``--k``
critiques and its reward head reads a scalar from (prompt, completion, critique); the reward is the
mean (CLoud's self-consistency with k > 1). The critiques reach TRL's completions table
(``critique_critique``) and the mean reward / critiques per item its logs (``critique/...``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer

from genrm_plugin.critique_reward import CritiqueReward
from genrm_plugin.critique_scorer import CritiqueConfig, CritiqueScorer
from toy_setup import arithmetic_rows, online_trainer_args, policy_path


def tiny_cloud(output_dir: Path, pairs: int = 24) -> Path:
    """A tiny CLoud model trained by the ``cloud`` recipe on toy-world pairs with teacher critiques
    (the same run as ``genrm train --recipe cloud --data world.jsonl --template tiny ...``)."""
    from genrm_plugin.judge import JudgeConfig
    from genrm_plugin.recipes import RecipeConfig, TrainConfig, train_judge
    from genrm_plugin.toy import world

    data = output_dir / "world.jsonl"
    output_dir.mkdir(parents=True, exist_ok=True)
    with data.open("w") as f:
        for pair in world.make_pairs(pairs, seed=1):
            f.write(json.dumps({
                "prompt": pair.problem.question, "chosen": pair.chosen, "rejected": pair.rejected,
                "chosen_critique": world.answer_critique(pair.problem, pair.chosen),
                "rejected_critique": world.answer_critique(pair.problem, pair.rejected),
            }) + "\n")
    recipe = RecipeConfig(recipe="cloud", data=str(data), model="toy", output_dir=str(output_dir / "cloud"), shard_size=16)
    train = TrainConfig(learning_rate=3e-3, max_steps=20, per_device_train_batch_size=8, max_length=512)
    judge = JudgeConfig(template="tiny", answer_pattern=world.ANSWER_PATTERN, max_new_tokens=40)
    return train_judge(recipe, train, judge)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--policy", default="toy", help="policy model path or hub name; 'toy' = tiny kit model")
    parser.add_argument("--critique_model", default=None, help="a cloud / synthetic-critique-rm final/ folder (default: train a tiny CLoud)")
    parser.add_argument("--k", type=int, default=2, help="critiques per completion (reward = mean head output)")
    parser.add_argument("--temperature", type=float, default=1.0, help="critique sampling temperature (0: greedy, k must be 1)")
    parser.add_argument("--max_new_tokens", type=int, default=40, help="longest critique")
    parser.add_argument("--output_dir", default="runs/example-cloud")
    parser.add_argument("--max_steps", type=int, default=3)
    args = parser.parse_args()

    model = args.critique_model or tiny_cloud(Path(args.output_dir))
    config = CritiqueConfig(k=args.k, temperature=args.temperature, max_new_tokens=args.max_new_tokens)
    reward = CritiqueReward(CritiqueScorer.from_pretrained(model, config=config))
    trainer = GRPOTrainer(
        model=policy_path(args.policy, args.output_dir),
        reward_funcs=[reward],
        train_dataset=Dataset.from_dict({"prompt": arithmetic_rows()["prompt"]}),  # no reference column needed
        args=GRPOConfig(num_generations=4, **online_trainer_args(args)),
    )
    trainer.train()
    print(f"{'step':>4} {'reward':>8} {'critiques':>9}")
    for log in trainer.state.log_history:
        if "critique/reward_mean" in log:
            print(f"{log['step']:>4} {log['critique/reward_mean']:>8.3f} {log['critique/critiques_per_item']:>9.1f}")
    print(f"done: {trainer.state.global_step} GRPO steps with CritiqueReward ({reward.scorer.kind})")


if __name__ == "__main__":
    main()
