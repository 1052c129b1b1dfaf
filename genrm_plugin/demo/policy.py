"""The judge used as a reward: Best-of-N on the base policy's samples, and a GRPO run.

The policy is the base model answering world questions (a chat user turn ``47+38``) by working
them out (``47+38: 7+8+0=15 4+3+1=08 >085``). Its task accuracy is the share of sampled answers
(T = 1) whose result is the true sum -- checked by the world, never by the judge.

* :func:`best_of_n_curve` -- N answers per problem, each scored by ``GenRMReward`` against the
  policy's greedy answer (the reference) through :func:`genrm_plugin.bon.best_of_n`'s
  ``reference`` strategy; accuracy of the pick at N = 1, 2, 4, ... against a random pick (the
  mean accuracy of the first N) and the oracle (any of the first N correct). At N = ``bon_n``
  every strategy is compared, per problem (for paired intervals): the judge's ``reference``,
  ``knockout`` and ``round_robin`` picks (repeated final answers count once, with their
  multiplicity), majority voting over the final answers (self-consistency, no judge), random,
  oracle.
* :func:`run_grpo` -- TRL ``GRPOTrainer`` with ``GenRMReward`` (reference column: the greedy
  answer) plus a zero-weight world-accuracy reward that only logs the true accuracy per step.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Sequence

from genrm_plugin.backends.base import SamplingConfig
from genrm_plugin.demo.config import DemoConfig
from genrm_plugin.demo.judges import load_demo_backend
from genrm_plugin.toy.world import Problem, answer_value, is_correct, sample_problem, shown_answer

MAX_ANSWER_TOKENS = 48  # the policy works its answer out: a 3-digit trace is ~41 tokens


def problems(n: int, seed: int, split: str = "id") -> list[Problem]:
    rng = random.Random(f"policy|{split}|{seed}")
    return [sample_problem(rng, split) for _ in range(n)]


def policy_prompts(backend: Any, items: Sequence[Problem]) -> list[str]:
    return [backend.render([{"role": "user", "content": p.question}]) for p in items]


def sample_answers(backend: Any, items: Sequence[Problem], n: int, seed: int, temperature: float = 1.0) -> list[list[str]]:
    """``n`` answers per problem (``temperature`` 0: greedy), as text."""
    sampling = SamplingConfig(temperature=temperature, top_p=1.0, top_k=0, max_new_tokens=MAX_ANSWER_TOKENS, stop=[])
    return backend.generate(policy_prompts(backend, items), n, sampling, seed=seed)


def accuracy(items: Sequence[Problem], answers: Sequence[Sequence[str]]) -> float:
    flat = [is_correct(p.question, a) for p, group in zip(items, answers) for a in group]
    return sum(flat) / len(flat)


def policy_accuracy(model: str | Path, config: DemoConfig) -> list[float]:
    """Sampled (T=1) accuracy of the policy at ``model`` per fixed policy evaluation problem (the
    share of its ``policy_eval_samples`` answers that are right)."""
    backend = load_demo_backend(model, config)
    items = problems(config.policy_eval_problems, config.seed + 7)
    answers = sample_answers(backend, items, config.policy_eval_samples, seed=config.seed)
    return [accuracy([item], [group]) for item, group in zip(items, answers)]


def reward_for(judge_model: Path, config: DemoConfig, k: int | None = None):
    """``GenRMReward`` over a CoT judge checkpoint (``k`` votes per order, default ``reward_k``; both orders)."""
    from genrm_plugin.demo.judges import judge_config
    from genrm_plugin.judge import GenerativeJudge
    from genrm_plugin.reward import GenRMReward, RewardConfig

    judge = GenerativeJudge(load_demo_backend(judge_model, config), judge_config(config, "cot", k=k or config.reward_k))
    return GenRMReward(judge, RewardConfig(reference_column="reference", name="genrm"))


def best_of_n_curve(policy_model: Path, judge_model: Path, config: DemoConfig) -> dict[str, Any]:
    """Task accuracy of Best-of-N (judge) vs random and oracle picks, for N = 1, 2, 4, ..., ``bon_n``."""
    from genrm_plugin.bon import best_of_n

    backend = load_demo_backend(policy_model, config)
    items = problems(config.bon_problems, config.seed + 11)
    candidates = sample_answers(backend, items, config.bon_n, seed=config.seed + 1)
    references = [group[0] for group in sample_answers(backend, items, 1, seed=0, temperature=0.0)]
    reward = reward_for(judge_model, config, k=config.k)  # ranking N answers: the judge's full K
    picks = best_of_n(reward.judge, [p.question for p in items], candidates, strategy="reference",
                      references=references, seed=config.seed)
    correct = [[is_correct(p.question, a) for a in group] for p, group in zip(items, candidates)]
    rng = random.Random(config.seed)
    ns = [n for n in (1, 2, 4, 8, 16, 32, 64) if n < config.bon_n] + [config.bon_n]
    curve = {"n": ns, "judge": [], "random": [], "oracle": []}
    for n in ns:
        chosen = [_pick(result.scores[:n], rng) for result in picks]
        curve["judge"].append(sum(c[i] for c, i in zip(correct, chosen)) / len(items))
        curve["random"].append(sum(sum(c[:n]) / n for c in correct) / len(items))
        curve["oracle"].append(sum(any(c[:n]) for c in correct) / len(items))
    curve["reference_accuracy"] = sum(is_correct(p.question, r) for p, r in zip(items, references)) / len(items)
    curve["problems"] = len(items)
    judge_picks = {"reference": chosen}  # the curve's picks at N = bon_n (the last N)
    for strategy in ("knockout", "round_robin"):
        results = best_of_n(reward.judge, [p.question for p in items], candidates, strategy=strategy,
                            seed=config.seed, answer_key=shown_answer)
        judge_picks[strategy] = [result.index for result in results]
    per_problem = {f"judge ({strategy})": [float(c[i]) for c, i in zip(correct, chosen)]
                   for strategy, chosen in judge_picks.items()}
    per_problem["majority vote (final answers)"] = [float(c[majority_pick(group, rng)]) for c, group in zip(correct, candidates)]
    per_problem["random"] = [sum(c) / len(c) for c in correct]
    per_problem["oracle"] = [float(any(c)) for c in correct]
    curve["strategies"] = per_problem  # per problem, at N = bon_n
    return curve


def majority_pick(answers: Sequence[str], rng: random.Random) -> int:
    """Self-consistency: an answer with the most common final result (ties: a random one of them)."""
    values = [answer_value(a) for a in answers]
    counts = {v: values.count(v) for v in values if v is not None}
    if not counts:
        return rng.randrange(len(answers))
    top = max(counts.values())
    return rng.choice([i for i, v in enumerate(values) if counts.get(v) == top])


def _pick(scores: Sequence[float], rng: random.Random) -> int:
    best = max(scores)
    return rng.choice([i for i, s in enumerate(scores) if s == best])


def world_accuracy(prompts, completions, **kwargs) -> list[float]:
    """A TRL reward function that only measures: 1.0 when the completion's result is the true sum."""
    from genrm_plugin.conversation import prompt_text, response_text

    return [float(is_correct(prompt_text(p, f"prompts[{i}]"), response_text(c, f"completions[{i}]")))
            for i, (p, c) in enumerate(zip(prompts, completions))]


def run_grpo(policy_model: Path, judge_model: Path, config: DemoConfig, out_dir: Path) -> dict[str, Any]:
    """GRPO of the base policy with ``GenRMReward``; the trained policy lands in ``out_dir/policy``."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    prompts_per_step = 2
    items = problems(config.grpo_steps * prompts_per_step, config.seed + 13)
    backend = load_demo_backend(policy_model, config)
    references = [g[0] for g in sample_answers(backend, items, 1, seed=0, temperature=0.0)]
    dataset = Dataset.from_list([
        {"prompt": [{"role": "user", "content": p.question}], "reference": ref} for p, ref in zip(items, references)
    ])
    args = GRPOConfig(
        output_dir=str(out_dir / "trainer"), max_steps=config.grpo_steps, learning_rate=config.grpo_learning_rate,
        per_device_train_batch_size=prompts_per_step * config.grpo_generations, num_generations=config.grpo_generations,
        max_completion_length=MAX_ANSWER_TOKENS, temperature=1.0, top_k=0, beta=0.0, logging_steps=1,
        reward_weights=[1.0, 0.0], use_cpu=True, bf16=False, gradient_checkpointing=False, report_to="none",
        save_strategy="no", seed=config.seed, shuffle_dataset=False,
    )
    trainer = GRPOTrainer(model=str(policy_model), reward_funcs=[reward_for(judge_model, config), world_accuracy],
                          train_dataset=dataset, args=args)
    trainer.train()
    trainer.save_model(str(out_dir / "policy"))
    trainer.processing_class.save_pretrained(str(out_dir / "policy"))
    logs = [e for e in trainer.state.log_history if "rewards/genrm/mean" in e]
    return {
        "steps": trainer.state.global_step,
        "reward_curve": [e["rewards/genrm/mean"] for e in logs],
        "accuracy_curve": [e.get("rewards/world_accuracy/mean") for e in logs],
        "policy": str(out_dir / "policy"),
    }
