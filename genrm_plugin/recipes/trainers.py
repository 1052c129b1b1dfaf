"""Thin wrappers over TRL trainers (SFT, DPO, reward): one call trains a model from a path on rows.

Every recipe trains through these, so TRL settings (device, seeding, every argument of
:class:`~genrm_plugin.recipes.config.TrainConfig` passed through) are set in one place. Each returns the trained model, its tokenizer and a
:class:`TrainResult` (mean loss, logged losses, steps, seconds). No training loop is written here:
the TRL trainer's ``train()`` does the work and shows its progress bar.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genrm_plugin.recipes.config import OWN_TRAIN_FIELDS, TrainConfig
from genrm_plugin.recipes.trl_fields import accepted_fields, passthrough_names

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
        saved_model: folder of the trained model saved by the trainer (plain weights + tokenizer;
            with LoRA the adapter merged into the base).
        adapter: folder of the trained LoRA adapter (``None`` without ``--use_peft``).
    """

    loss: float | None = None
    steps: int = 0
    seconds: float = 0.0
    rows: int = 0
    over_max_length: int = 0
    log: list[dict[str, Any]] = field(default_factory=list)
    saved_model: str | None = None
    adapter: str | None = None


def trl_args(config_cls: type, train: TrainConfig, out_dir: Path, learning_rate: float, seed: int, **extra: Any):
    """A TRL ``*Config`` (SFTConfig, DPOConfig, RewardConfig) from a :class:`TrainConfig`.

    genrm's own fields apply where the config class has them (``beta``: DPO only); every copied TRL
    field that is set passes through unchanged, and one that ``config_cls`` lacks is an error.
    ``extra`` (the recipe's fixed settings, e.g. ``completion_only_loss``) goes in as given.
    """
    import torch

    accepted = accepted_fields(config_cls)
    foreign = [name for name in passthrough_names(train) if getattr(train, name) is not None and name not in accepted]
    if foreign:
        raise ValueError(
            f"TrainConfig.{foreign[0]} is not a {config_cls.__name__} setting (this recipe trains with "
            f"{config_cls.__name__}); drop --{foreign[0]}"
        )
    use_cpu = train.use_cpu if train.use_cpu is not None else not torch.cuda.is_available()
    values = {name: getattr(train, name) for name in OWN_TRAIN_FIELDS if name in accepted}
    values.update({name: getattr(train, name) for name in passthrough_names(train) if getattr(train, name) is not None})
    values.update(
        bf16=train.bf16 if train.bf16 is not None else not use_cpu,
        gradient_checkpointing=train.gradient_checkpointing if train.gradient_checkpointing is not None else not use_cpu,
        use_cpu=use_cpu,
        output_dir=str(out_dir),
        learning_rate=learning_rate,
        seed=seed,
        data_seed=seed,
        **extra,
    )
    return config_cls(**values)


def train_sft(model_path: str, rows: list[dict], out_dir: Path, train: TrainConfig, learning_rate: float, seed: int,
              model_args: Any = None):
    """SFT on ``{"prompt", "completion"}`` text rows; the loss covers the completion only."""
    from trl import SFTConfig, SFTTrainer

    args = trl_args(SFTConfig, train, out_dir, learning_rate, seed, completion_only_loss=True)
    return run_trainer(SFTTrainer, model_path, rows, args, model_args)


def train_dpo(model_path: str, rows: list[dict], out_dir: Path, train: TrainConfig, learning_rate: float, seed: int,
              model_args: Any = None):
    """DPO on ``{"prompt", "chosen", "rejected"}`` text rows; the reference is the starting model
    (with LoRA: the same model with its adapters disabled)."""
    from trl import DPOConfig, DPOTrainer

    args = trl_args(DPOConfig, train, out_dir, learning_rate, seed)
    return run_trainer(DPOTrainer, model_path, rows, args, model_args)


def train_reward(model_path: str, rows: list[dict], out_dir: Path, train: TrainConfig, learning_rate: float, seed: int,
                 model_args: Any = None):
    """Bradley-Terry reward model on ``{"prompt", "chosen", "rejected"}`` rows (a scalar head on ``model_path``).

    With LoRA the adapter's task type is ``SEQ_CLS`` (the score head is trained in full)."""
    from trl import RewardConfig, RewardTrainer

    if model_args is not None and model_args.use_peft and model_args.lora_task_type == "CAUSAL_LM":
        model_args = dataclasses.replace(model_args, lora_task_type="SEQ_CLS")
    args = trl_args(RewardConfig, train, out_dir, learning_rate, seed)
    return run_trainer(RewardTrainer, model_path, rows, args, model_args)


def model_init_kwargs(model_args: Any) -> dict[str, Any]:
    """How TRL's scripts load the model from a ``trl.ModelConfig`` (revision, dtype, attention, 4/8-bit)."""
    from trl import get_quantization_config

    kwargs: dict[str, Any] = dict(
        revision=model_args.model_revision, attn_implementation=model_args.attn_implementation, dtype=model_args.dtype
    )
    quantization = get_quantization_config(model_args)
    if quantization is not None:
        kwargs["quantization_config"] = quantization
    return kwargs


def run_trainer(trainer_cls: type, model_path: str, rows: list[dict], args: Any, model_args: Any = None):
    """Train with ``trainer_cls``; a LoRA model (``model_args.use_peft``) comes back merged into plain weights.

    The returned model is a plain transformers model; with LoRA its ``peft_adapter`` attribute
    holds the trained adapter model (saved next to the merged weights by the recipe).
    """
    from datasets import Dataset
    from transformers import AutoTokenizer

    if not rows:
        raise ValueError("no training rows")
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    over = count_over_length(tokenizer, rows, args.max_length)
    if over:
        from trl import RewardTrainer

        action = "drops" if issubclass(trainer_cls, RewardTrainer) else "truncates"  # CLoud's trainer is one too
        logger.warning(f"{over} of {len(rows)} training rows exceed max_length={args.max_length}; {trainer_cls.__name__} {action} them")
    peft_config = None
    if model_args is not None:
        from trl import get_peft_config

        if args.model_init_kwargs is None:
            args.model_init_kwargs = model_init_kwargs(model_args)
        peft_config = get_peft_config(model_args)
    trainer = trainer_cls(model=model_path, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                          peft_config=peft_config)
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
    out_dir = Path(args.output_dir)
    model = trainer.accelerator.unwrap_model(trainer.model)
    if peft_config is not None:
        trainer.save_model(str(out_dir / "adapter"), _internal_call=True)  # the trained LoRA adapter alone
        result.adapter = str(out_dir / "adapter")
        model = model.merge_and_unload(safe_merge=True)  # plain weights: from_pretrained, vLLM
        if trainer.accelerator.is_main_process:
            model.save_pretrained(out_dir / "model")
    else:
        trainer.save_model(str(out_dir / "model"), _internal_call=True)  # gathers ZeRO-3 / FSDP shards; written by the main process
    if trainer.accelerator.is_main_process:
        tokenizer.save_pretrained(out_dir / "model")
        (out_dir / "model" / "training_args.bin").unlink(missing_ok=True)
    trainer.accelerator.wait_for_everyone()
    result.saved_model = str(out_dir / "model")
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
