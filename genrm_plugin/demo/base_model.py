"""The demo's "pretrained" base model: a tiny Llama trained briefly on the world's corpus, cached.

It stands for the pretrained LLM a user would start from: it already solves the world's sums and
checks candidate answers (sloppily: the corpus holds ``base_error_rate`` flawed work), but it
has never seen the judging protocol (``[[A]]``/``[[B]]``).

The bases of the default and the ``--quick`` settings ship with the package (:data:`SHIPPED`,
~2 MB of safetensors for the full one, as a user downloads a pretrained LLM); they are rebuilt,
bit for bit on one machine, by ``python -m genrm_plugin.demo.base_model`` (``--quick`` for the
small one; :func:`main`), and their :func:`base_skills` are recorded in their ``base.json`` (a
slow test rebuilds the full one and compares them). Other settings train a
base into ``<cache>/demo-base-<hash>/`` where the hash covers every setting that shapes it, so
later runs (and other run folders) reuse it; the folder appears atomically, so a killed run
leaves no half model behind.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import random
import shutil
import time
from pathlib import Path
from typing import Any

from genrm_plugin.demo.config import DemoConfig
from genrm_plugin.run_folder import atomic_dir, atomic_write_json

logger = logging.getLogger(__name__)

# Bump when the world, corpus or tokenizer change in a way that makes old cached bases stale.
BASE_FORMAT = 5
BASE_INFO = "base.json"
SHIPPED = {"full": Path(__file__).parent / "base", "quick": Path(__file__).parent / "base-quick"}  # shipped bases
TEMPLATE = "tiny"
MICRO_BATCH = 8  # rows per forward pass of the pretraining (a step accumulates base_batch_size rows)


def base_settings(config: DemoConfig) -> dict:
    """Everything that determines the base model's weights."""
    return {
        "format": BASE_FORMAT, "hidden_size": config.hidden_size, "num_layers": config.num_layers,
        "steps": config.base_steps, "batch_size": config.base_batch_size, "learning_rate": config.base_learning_rate,
        "error_rate": config.base_error_rate, "seed": config.base_seed, "template": TEMPLATE,
    }


def base_path(config: DemoConfig) -> Path:
    digest = hashlib.sha256(json.dumps(base_settings(config), sort_keys=True).encode()).hexdigest()[:12]
    return config.cache_root / f"demo-base-{digest}"


def shipped_base(config: DemoConfig) -> tuple[Path, dict] | None:
    """The shipped base with ``config``'s settings and its ``base.json``, if the package carries one."""
    for folder in SHIPPED.values():
        if (folder / BASE_INFO).is_file():
            info = json.loads((folder / BASE_INFO).read_text())
            if info["settings"] == base_settings(config):
                return folder, info
    return None


def ensure_base(config: DemoConfig) -> tuple[Path, dict]:
    """The base model's folder and its info: the shipped base when ``config`` asks for its
    settings (``info['shipped']``), else the cached one (``info['cached']``), else trained now."""
    shipped = shipped_base(config)
    if shipped is not None:
        return shipped[0], {**shipped[1], "cached": True, "shipped": True}
    path = base_path(config)
    if (path / BASE_INFO).is_file():
        return path, {**json.loads((path / BASE_INFO).read_text()), "cached": True, "shipped": False}
    return path, {**build_base(config, path), "cached": False, "shipped": False}


def build_base(config: DemoConfig, path: Path) -> dict:
    """Pretrain the base of ``config`` into ``path`` (atomically: a temporary folder renamed); its info."""
    info: dict = {}

    def build(tmp: Path) -> None:
        info.update(pretrain(config, tmp))
        atomic_write_json(tmp / BASE_INFO, info)
        shutil.rmtree(tmp / "trainer", ignore_errors=True)

    atomic_dir(path, build)
    return info


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
    rows = base_corpus(tokenizer, config.base_steps * config.base_batch_size, seed=config.base_seed,
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
    model, tokenizer, result = train_sft(str(init), rows, folder / "trainer", train, config.base_learning_rate,
                                         config.base_seed)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    shutil.rmtree(init)
    return {
        "settings": base_settings(config), "parameters": sum(p.numel() for p in model.parameters()),
        "corpus_rows": len(rows), "loss_curve": [e["loss"] for e in result.log], "train_seconds": result.seconds,
        "seconds": time.perf_counter() - began, "skills": base_skills(folder),
    }


def base_skills(model: str | Path, n: int = 128, seed: int = 0) -> dict[str, dict[str, float]]:
    """What the base knows, per world split: the share of ``n`` problems whose greedy answer is the
    exact correct trace (``solve``), and whose greedy critique of a candidate pair is the exact
    correct one (``check``: recomputation and both candidate lines)."""
    from genrm_plugin.backends.base import SamplingConfig
    from genrm_plugin.backends.transformers import TransformersBackend
    from genrm_plugin.toy.corpus import candidate_pair, check_prompt, policy_prompt
    from genrm_plugin.toy.world import SPLITS, critique, sample_problem, solution

    backend = TransformersBackend.from_pretrained(str(model), batch_size=512)
    greedy = SamplingConfig(temperature=0.0, max_new_tokens=100, stop=[])
    rng = random.Random(f"skills|{seed}")
    skills = {}
    for split in SPLITS:
        items = [sample_problem(rng, split) for _ in range(n)]
        pairs = [candidate_pair(p, rng) for p in items]
        prompts = [policy_prompt(backend.tokenizer, p.question) for p in items]
        prompts += [check_prompt(backend.tokenizer, p.question, a, b, TEMPLATE) for p, (a, b) in zip(items, pairs)]
        outputs = [group[0].strip() for group in backend.generate(prompts, 1, greedy, seed=seed)]
        solved = sum(out == solution(p) for p, out in zip(items, outputs[:n]))
        checked = sum(out == critique(p, a, b) for p, (a, b), out in zip(items, pairs, outputs[n:]))
        skills[split] = {"solve": solved / n, "check": checked / n}
    return skills


SHIPPED_THREADS = 1  # torch threads the shipped bases were pretrained with (a rebuild uses the same)


def main(argv: list[str] | None = None) -> int:
    """Rebuild a shipped base (default settings, or ``--quick``'s) into ``--out`` (default: its :data:`SHIPPED` folder)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--quick", action="store_true", help="the base of `genrm demo --quick`")
    parser.add_argument("--out", default=None, help="folder of the rebuilt base (replaced)")
    args = parser.parse_args(argv)
    out = Path(args.out) if args.out else SHIPPED["quick" if args.quick else "full"]
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(SHIPPED_THREADS)  # the shipped bases were built so; other counts change the numerics
    try:
        info = build_base(DemoConfig(quick=args.quick), out)
    finally:
        torch.set_num_threads(threads)
    print(json.dumps({key: info[key] for key in ("settings", "skills", "seconds")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
