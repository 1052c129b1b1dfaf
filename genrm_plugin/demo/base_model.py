"""The demo's "pretrained" base model: a tiny Llama trained briefly on the world's corpus, cached.

It stands for the pretrained LLM a user would start from: it already solves the world's sums and
checks candidate answers (sloppily: the corpus holds ``base_error_rate`` flawed work), but it
has never seen the judging protocol (``[[A]]``/``[[B]]``). The trained base lands in
``<cache>/demo-base-<hash>/`` where the hash covers every setting that shapes it, so later runs
(and other run folders) reuse it; the folder appears atomically, so a killed run leaves no half
model behind.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from pathlib import Path

from genrm_plugin.demo.config import DemoConfig

logger = logging.getLogger(__name__)

# Bump when the world, corpus or tokenizer change in a way that makes old cached bases stale.
BASE_FORMAT = 4
BASE_INFO = "base.json"
TEMPLATE = "tiny"
MICRO_BATCH = 8  # rows per forward pass of the pretraining (a step accumulates base_batch_size rows)


def base_settings(config: DemoConfig) -> dict:
    """Everything that determines the base model's weights."""
    return {
        "format": BASE_FORMAT, "hidden_size": config.hidden_size, "num_layers": config.num_layers,
        "steps": config.base_steps, "batch_size": config.base_batch_size, "learning_rate": config.base_learning_rate,
        "error_rate": config.base_error_rate, "seed": config.seed, "template": TEMPLATE,
    }


def base_path(config: DemoConfig) -> Path:
    digest = hashlib.sha256(json.dumps(base_settings(config), sort_keys=True).encode()).hexdigest()[:12]
    return config.cache_root / f"demo-base-{digest}"


def ensure_base(config: DemoConfig) -> tuple[Path, dict]:
    """The cached base model's folder and its info (trained now if missing: ``info['cached']``)."""
    path = base_path(config)
    if (path / BASE_INFO).is_file():
        return path, {**json.loads((path / BASE_INFO).read_text()), "cached": True}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    info = pretrain(config, tmp)
    (tmp / BASE_INFO).write_text(json.dumps(info, indent=1))
    shutil.rmtree(tmp / "trainer", ignore_errors=True)
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)
    return path, {**info, "cached": False}


def length_sorted_steps(rows: list[dict[str, str]], rows_per_step: int) -> list[dict[str, str]]:
    """``rows`` with each optimiser step's rows (consecutive runs of ``rows_per_step``) sorted by
    length (text length stands for token length).

    The corpus mixes short solve rows and long check rows, and a batch is padded to its longest
    row, so a random batch is about a third padding. Split into micro-batches of similar length
    (gradient accumulation, rows taken in order), a step pads far less; the loss is still averaged
    over all of the step's tokens, so the update is the one of the whole random batch.
    """
    def length(row: dict[str, str]) -> int:
        return len(row["prompt"]) + len(row["completion"])

    return [row for start in range(0, len(rows), rows_per_step)
            for row in sorted(rows[start : start + rows_per_step], key=length)]


def pretrain(config: DemoConfig, folder: Path) -> dict:
    """Build a random tiny Llama and SFT it (TRL) on :func:`~genrm_plugin.toy.corpus.base_corpus`."""
    from genrm_plugin.recipes.config import TrainConfig
    from genrm_plugin.recipes.trainers import train_sft
    from genrm_plugin.toy import TinyModelConfig, save_tiny
    from genrm_plugin.toy.corpus import base_corpus

    began = time.perf_counter()
    shape = TinyModelConfig(
        hidden_size=config.hidden_size, num_layers=config.num_layers, num_heads=config.hidden_size // 32,
        intermediate_size=2 * config.hidden_size, vocab_size=512, max_position_embeddings=512, seed=config.seed,
    )
    init = save_tiny(folder / "init", shape)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(init)
    rows = base_corpus(tokenizer, config.base_steps * config.base_batch_size, seed=config.seed,
                       error_rate=config.base_error_rate, template=TEMPLATE)
    accumulation = config.base_batch_size // MICRO_BATCH if config.base_batch_size % MICRO_BATCH == 0 else 1
    train = TrainConfig(
        max_steps=config.base_steps, per_device_train_batch_size=config.base_batch_size // accumulation,
        gradient_accumulation_steps=accumulation, lr_scheduler_type="cosine", warmup_steps=0.05,
        logging_steps=max(1, config.base_steps // 20), max_length=320,
        train_sampling_strategy="sequential",  # the corpus is random already; keep each step's length order
    )
    rows = length_sorted_steps(rows, config.base_batch_size)
    logger.info(f"pretraining the base model: {config.base_steps} steps on {len(rows)} corpus rows")
    model, tokenizer, result = train_sft(str(init), rows, folder / "trainer", train, config.base_learning_rate, config.seed)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    shutil.rmtree(init)
    return {
        "settings": base_settings(config), "parameters": sum(p.numel() for p in model.parameters()),
        "corpus_rows": len(rows), "loss_curve": [e["loss"] for e in result.log], "train_seconds": result.seconds,
        "seconds": time.perf_counter() - began,
    }
