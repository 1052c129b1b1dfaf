"""Thin wrappers over TRL trainers (SFT, DPO, reward): one call trains a model from a path on rows.

Every recipe trains through these, so TRL settings (CPU, no reporting, no intermediate saves,
seeding) are set in one place. Each returns the trained model, its tokenizer and a
:class:`TrainResult` (mean loss, logged losses, steps, seconds). No training loop is written here:
the TRL trainer's ``train()`` does the work and shows its progress bar.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genrm_plugin.recipes.config import TrainConfig

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a training call reports.

    Fields:
        loss: mean training loss over the run (TRL's ``training_loss``), ``None`` if not trained.
        steps: optimiser steps taken.
        seconds: wall time of ``train()``.
        rows: training rows given to the trainer.
        over_max_length: rows longer than ``max_length`` tokens (the reward trainer drops them,
            SFT/DPO truncate them; counted here so that it is never silent).
        log: the trainer's logged entries (``loss``, ``learning_rate``, ... per logging step).
    """

    loss: float | None = None
    steps: int = 0
    seconds: float = 0.0
    rows: int = 0
    over_max_length: int = 0
    log: list[dict[str, Any]] = field(default_factory=list)


def trl_args(config_cls: type, train: TrainConfig, out_dir: Path, learning_rate: float, seed: int, **extra: Any):
    """A TRL ``*Config`` (SFTConfig, DPOConfig, RewardConfig) from a :class:`TrainConfig`."""
    import torch

    use_cpu = train.use_cpu if train.use_cpu is not None else not torch.cuda.is_available()
    return config_cls(
        bf16=train.bf16 if train.bf16 is not None else not use_cpu,
        gradient_checkpointing=train.gradient_checkpointing if train.gradient_checkpointing is not None else not use_cpu,
        output_dir=str(out_dir),
        learning_rate=learning_rate,
        num_train_epochs=train.num_train_epochs,
        max_steps=train.max_steps,
        per_device_train_batch_size=train.per_device_train_batch_size,
        gradient_accumulation_steps=train.gradient_accumulation_steps,
        lr_scheduler_type=train.lr_scheduler_type,
        warmup_steps=train.warmup_steps,
        weight_decay=train.weight_decay,
        logging_steps=train.logging_steps,
        max_length=train.max_length,
        train_sampling_strategy=train.train_sampling_strategy,
        save_strategy="no",
        report_to="none",
        use_cpu=use_cpu,
        seed=seed,
        data_seed=seed,
        **extra,
    )


def train_sft(model_path: str, rows: list[dict], out_dir: Path, train: TrainConfig, learning_rate: float, seed: int):
    """SFT on ``{"prompt", "completion"}`` text rows; the loss covers the completion only."""
    from trl import SFTConfig, SFTTrainer

    args = trl_args(SFTConfig, train, out_dir, learning_rate, seed, completion_only_loss=True)
    return _run(SFTTrainer, model_path, rows, args)


def train_dpo(model_path: str, rows: list[dict], out_dir: Path, train: TrainConfig, learning_rate: float, seed: int):
    """DPO on ``{"prompt", "chosen", "rejected"}`` text rows; the reference is the starting model."""
    from trl import DPOConfig, DPOTrainer

    args = trl_args(DPOConfig, train, out_dir, learning_rate, seed, beta=train.beta)
    return _run(DPOTrainer, model_path, rows, args)


def train_reward(model_path: str, rows: list[dict], out_dir: Path, train: TrainConfig, learning_rate: float, seed: int):
    """Bradley-Terry reward model on ``{"prompt", "chosen", "rejected"}`` rows (a scalar head on ``model_path``)."""
    from trl import RewardConfig, RewardTrainer

    args = trl_args(RewardConfig, train, out_dir, learning_rate, seed)
    return _run(RewardTrainer, model_path, rows, args)


def _run(trainer_cls: type, model_path: str, rows: list[dict], args: Any):
    from datasets import Dataset
    from transformers import AutoTokenizer

    if not rows:
        raise ValueError("no training rows")
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    over = count_over_length(tokenizer, rows, args.max_length)
    if over:
        action = "drops" if trainer_cls.__name__ == "RewardTrainer" else "truncates"
        logger.warning(f"{over} of {len(rows)} training rows exceed max_length={args.max_length}; {trainer_cls.__name__} {action} them")
    trainer = trainer_cls(model=model_path, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
    start = time.perf_counter()
    output = trainer.train()
    result = TrainResult(
        loss=float(output.training_loss),
        steps=int(output.global_step),
        seconds=time.perf_counter() - start,
        rows=len(rows),
        over_max_length=over,
        log=[dict(entry) for entry in trainer.state.log_history if "loss" in entry],
    )
    model = trainer.model
    model.eval()
    return model, tokenizer, result


def count_over_length(tokenizer: Any, rows: list[dict], max_length: int | None) -> int:
    """Rows whose prompt + response (+ EOS) exceed ``max_length`` tokens (any response column)."""
    if max_length is None:
        return 0
    eos = tokenizer.eos_token or ""
    responses = ("completion", "chosen", "rejected")
    missing = next((i for i, row in enumerate(rows) if not any(k in row for k in responses)), None)
    if missing is not None:
        raise ValueError(f"training row {missing} has none of the response columns {responses}: {sorted(rows[missing])}")
    owners = [i for i, row in enumerate(rows) for k in responses if k in row]
    texts = [row["prompt"] + row[k] + eos for row in rows for k in responses if k in row]
    longest = [0] * len(rows)
    for i, ids in zip(owners, tokenizer(texts)["input_ids"]):  # one batched call: the fast tokenizer's threads
        longest[i] = max(longest[i], len(ids))
    return sum(n > max_length for n in longest)
