"""Configuration of ``genrm demo``: the world's sizes, the base model, the judges, the reward runs.

Defaults are the full demo (its base model ships with the package, see
:mod:`~genrm_plugin.demo.base_model`); ``quick=True`` swaps every field still at its default for
the reduced preset :data:`QUICK` (the pipeline and report are the same, the figures are not meant
to be good: it claims only smoke checks, see :mod:`~genrm_plugin.demo.checks`).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

CRITIQUE_RMS = ("cloud", "synthetic-critique-rm")  # pointwise critique reward models (issue 20)
JUDGE_RECIPES = ("bt", "genrm", "star-sft", "star-dpo", *CRITIQUE_RMS)


@dataclass
class DemoConfig:
    """Settings of ``genrm demo``.

    Fields:
        output_dir: the run folder (report.md, report.json, plots, judges, logs).
        cache_dir: where pretrained base models are cached, keyed by their settings (default
            ``$GENRM_CACHE`` or ``~/.cache/genrm_plugin``); a second run reuses the base.
        quick: the reduced preset (:data:`QUICK`) for CI and a first look.
        seed: seed of the world's data, the judges' training and every sampler.
        base_seed: seed of the base model's corpus and initialisation (the base stands for one
            downloaded pretrained model: the shipped base has ``base_seed`` 0; other values
            pretrain a base of their own).
        hidden_size, num_layers: the tiny Llama's width and depth (head_dim 32).
        base_steps, base_batch_size, base_learning_rate: pretraining of the base model (TRL SFT).
        base_error_rate: share of flawed solutions and recomputations in the base corpus (the
            base model is a sloppy solver and checker, as a pretrained model would be).
        seed_rationales: teacher critiques (correct rationales with verdicts) for the warm start.
        seed_epochs: passes of the warm start over the seed critiques. Two passes learn the
            protocol but not its form: the warm start checks right (94% of its ID rationales
            recompute the true sum) yet often garbles the verdict line (64% parse failures at
            T=1, ID maj@1 66.0), which leaves STaR its job -- sampling, keeping the faithful right
            rationales and training on them (STaR-SFT 94.7, STaR-DPO 92.9 ID maj@1, seed 0).
            Three passes judged 91.9 already (19% parse failures), and STaR gained only +3.
        train_pairs: in-distribution preference pairs the judges train on (STaR: split across
            iterations).
        label_noise: share of training pairs whose label is flipped (annotator disagreement).
        eval_pairs: held-out pairs per split (``id``: 2-digit sums, ``ood``: 3-digit sums).
        k: votes per answer order for maj@K (CoT judges).
        star_iterations: STaR iterations (each on a fresh slice of ``train_pairs``).
        star_rationale_filter: STaR keeps a rationale only if its verdict is right *and* every
            step holds: the recomputed sum and both candidate checks (the world's check,
            ``RecipeConfig.rationale_filter``); False: the paper's verdict-only filter, which
            keeps lucky unfaithful rationales.
        judge_learning_rate: learning rate of the SFT and reward-model judge runs (warm start,
            STaR-SFT, GenRM, BT).
        dpo_learning_rate: learning rate of STaR-DPO (DPO moves a policy further per step than SFT;
            measured from the two-pass warm start, seed 0: 1e-4 barely moves the verdict line,
            3e-4 parse failures 10.5%, 5e-4 overshoots: 21%).
        judge_epochs: epochs over each judge training set.
        dpo_beta: STaR-DPO's beta.
        dpo_sft_weight: weight of an SFT (NLL) term on the chosen rationale in STaR-DPO's loss
            (RPO; TRL ``loss_type=["sigmoid", "sft"]``): it keeps the verdict line likely, which
            DPO alone pushes down along with the rejected rationale (0: plain DPO). Seed 0, two-pass
            warm start, learning rate 3e-4: weight 4 left 10.5% parse failures (ID maj@1 92.9),
            weight 8 9.8% (97.9).
        lora_r: LoRA rank of the CoT judges' training (warm start, STaR-SFT, STaR-DPO; TRL
            ``ModelConfig(use_peft=True)``, all linear layers); 0: full fine-tuning.
        lora_learning_rate: learning rate of the LoRA runs (LoRA moves fewer weights: a larger rate).
        replay_share: base-corpus rows (:func:`~genrm_plugin.demo.world_data.replay_rows`) mixed
            into the warm start, per seed row: they keep the base's skills (differences, longer
            sums) that the judges' 2-digit-sum data never shows.
        judges: which trained judges to build (of ``bt``, ``genrm``, ``star-sft``, ``star-dpo``, and the
            pointwise critique reward models ``cloud`` and ``synthetic-critique-rm`` -- the latter's
            critic is CLoud's critique writer, so it needs ``cloud``).
        critique_learning_rate: learning rate of the critique reward models' runs (critique SFT,
            reward head, the synthetic RM's BT model). Measured from the warm start, seed 0, 3
            epochs: 1e-3 gave ID 94.5 (CLoud) / 98.4 (synthetic); 5e-4 for 1 epoch 62.5 / 57.0.
        critique_epochs: epochs of each critique RM stage over the training pairs.
        bon_problems, bon_n: Best-of-N: problems and candidates sampled per problem from the base policy.
        policy_eval_problems, policy_eval_samples: the policy accuracy set (sampled at T=1).
        grpo_steps, grpo_generations, grpo_learning_rate: the GRPO run with ``GenRMReward``.
        reward_k: votes per order of the judge inside ``GenRMReward`` during GRPO (Best-of-N
            ranks with the judges' ``k``: a pick among N needs finer scores than a reward).
        adaptive_k, adaptive_pairs: the voting-cost study on the best trained CoT judge: maj@K
            with K = ``adaptive_k`` votes per order on ``adaptive_pairs`` ID pairs, against the
            adaptive rules replayed on the same votes.
        adaptive_confidence: the confidence of the replayed ``bayes`` and ``predictive`` rules
            (``JudgeConfig.confidence``): ``predictive`` at 0.99 stops once the remaining votes
            change the maj@K winner with at most a 1% chance.
        bootstrap_rounds: resamples of the paired bootstrap behind every interval of a gain.
        generation_batch_size: sequences per ``generate`` call (judging, STaR sampling, policy
            samples); on a CPU, few large batches amortise the per-token overhead of generation.
    """

    output_dir: str = "runs/demo"
    cache_dir: str | None = None
    quick: bool = False
    seed: int = 0
    base_seed: int = 0
    hidden_size: int = 128
    num_layers: int = 3
    base_steps: int = 1800
    base_batch_size: int = 32
    base_learning_rate: float = 3e-3
    base_error_rate: float = 0.3
    seed_rationales: int = 64
    seed_epochs: float = 2.0
    train_pairs: int = 512
    label_noise: float = 0.05
    eval_pairs: int = 128
    k: int = 4
    star_iterations: int = 2
    star_rationale_filter: bool = True
    judge_learning_rate: float = 5e-4
    dpo_learning_rate: float = 3e-4
    judge_epochs: float = 1.0
    dpo_beta: float = 0.1
    dpo_sft_weight: float = 8.0
    lora_r: int = 0
    lora_learning_rate: float = 2e-3
    replay_share: float = 1.0
    judges: list[str] = field(default_factory=lambda: list(JUDGE_RECIPES))
    critique_learning_rate: float = 1e-3
    critique_epochs: float = 3.0
    bon_problems: int = 64
    bon_n: int = 8
    policy_eval_problems: int = 128
    policy_eval_samples: int = 4
    grpo_steps: int = 30
    grpo_generations: int = 8
    grpo_learning_rate: float = 5e-5
    reward_k: int = 2
    adaptive_k: int = 32
    adaptive_pairs: int = 64
    adaptive_confidence: float = 0.99
    bootstrap_rounds: int = 1000
    generation_batch_size: int = 512

    def __post_init__(self) -> None:
        if self.quick:
            defaults = DemoConfig()
            for name, value in QUICK.items():
                if getattr(self, name) == getattr(defaults, name):
                    setattr(self, name, value)
        unknown = sorted(set(self.judges) - set(JUDGE_RECIPES))
        if unknown:
            raise ValueError(f"DemoConfig.judges: unknown {unknown}; choose from {JUDGE_RECIPES}")
        if "synthetic-critique-rm" in self.judges and "cloud" not in self.judges:
            raise ValueError("DemoConfig.judges: synthetic-critique-rm needs cloud too (its critic is CLoud's critique writer)")
        positive = ("hidden_size", "num_layers", "base_steps", "base_batch_size", "seed_rationales", "train_pairs",
                    "eval_pairs", "k", "star_iterations", "bon_problems", "bon_n", "policy_eval_problems",
                    "policy_eval_samples", "grpo_steps", "grpo_generations", "reward_k", "generation_batch_size",
                    "adaptive_k", "adaptive_pairs", "bootstrap_rounds")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"DemoConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("seed_epochs", "base_learning_rate", "judge_learning_rate", "dpo_learning_rate", "grpo_learning_rate",
                     "dpo_beta", "lora_learning_rate", "critique_learning_rate", "critique_epochs"):
            if not getattr(self, name) > 0:
                raise ValueError(f"DemoConfig.{name} must be > 0, got {getattr(self, name)}")
        if self.hidden_size % 32:
            raise ValueError(f"DemoConfig.hidden_size must be a multiple of 32 (head_dim 32), got {self.hidden_size}")
        for name in ("lora_r", "base_seed"):
            if getattr(self, name) < 0:
                raise ValueError(f"DemoConfig.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("dpo_sft_weight", "replay_share"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"DemoConfig.{name} must be >= 0, got {getattr(self, name)}")
        if not 0.5 < self.adaptive_confidence < 1:
            raise ValueError(f"DemoConfig.adaptive_confidence must be in (0.5, 1), got {self.adaptive_confidence}")
        if not 0 <= self.label_noise < 0.5:
            raise ValueError(f"DemoConfig.label_noise must be in [0, 0.5), got {self.label_noise}")
        if not 0 <= self.base_error_rate < 1:
            raise ValueError(f"DemoConfig.base_error_rate must be in [0, 1), got {self.base_error_rate}")
        if self.train_pairs < self.star_iterations:
            raise ValueError("DemoConfig.train_pairs must be >= star_iterations")

    @property
    def cache_root(self) -> Path:
        if self.cache_dir:
            return Path(self.cache_dir)
        return Path(os.environ.get("GENRM_CACHE") or Path.home() / ".cache" / "genrm_plugin")

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


# The reduced preset of ``--quick`` (fields left at their defaults take these values).
QUICK = dict(
    hidden_size=64, num_layers=2, base_steps=150, base_batch_size=16, seed_rationales=32, train_pairs=96, eval_pairs=32, k=2,
    star_iterations=1, bon_problems=12, bon_n=4, policy_eval_problems=16, policy_eval_samples=2, grpo_steps=3,
    grpo_generations=4, reward_k=1, adaptive_k=4, adaptive_pairs=8, bootstrap_rounds=200,
    seed_epochs=3.0, dpo_learning_rate=1e-4, dpo_sft_weight=4.0,  # the settings its smoke checks were measured with
)
