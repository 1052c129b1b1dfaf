"""Test helpers for the recipes: a warm-started tiny judge (cached) and tiny run settings.

Torch runs on one thread in these tests (:func:`one_torch_thread`, and ``OMP_NUM_THREADS=1`` for
subprocesses): on a 2-core machine shared with other processes, two OpenMP threads wait on each
other at every op and a tiny model trains 4-30x slower (measured: a 128x256 linear on 680 rows
took 0.55 ms on one thread, 15.8 ms on two, with one other busy process).

A randomly initialised kit model never writes a verdict, so STaR would keep nothing from it; the
recipe tests start from a tiny judge SFT'ed for a few dozen steps on seed rationales
(:func:`genrm_plugin.recipes.synthetic.warm_start`). Building it takes ~1 min on 2 cores, so it is
cached in pytest's cache folder under a key that changes whenever the code or library versions
that shape it change.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from genrm_plugin.judge import JudgeConfig
from genrm_plugin.recipes.config import RecipeConfig, TrainConfig
from genrm_plugin.recipes.synthetic import write_synthetic

PACKAGE = Path(__file__).resolve().parents[1] / "genrm_plugin"
WARM_SOURCES = ["toy/model.py", "toy/tokenizer.py", "prompts.py", "recipes/synthetic.py", "recipes/trainers.py",
                "recipes/training_rows.py", "recipes/config.py", "data.py"]


def _warm_key() -> str:
    import torch
    import transformers
    import trl

    digest = hashlib.sha256(f"{torch.__version__}|{transformers.__version__}|{trl.__version__}".encode())
    for name in WARM_SOURCES:
        digest.update((PACKAGE / name).read_bytes())
    return digest.hexdigest()[:16]


ONE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Run the test with one torch thread, restoring the previous setting afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def warm_judge(pytestconfig) -> Path:
    """Path of a tiny judge that writes compact-template rationales ending in a verdict."""
    from genrm_plugin.recipes.synthetic import warm_start

    folder = pytestconfig.cache.mkdir(f"genrm-warm-judge-{_warm_key()}")
    model = folder / "model"
    if not (model / "model.safetensors").exists():
        build = folder.with_name(folder.name + f".build-{os.getpid()}")
        shutil.rmtree(build, ignore_errors=True)
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            warm_start(build)
        finally:
            torch.set_num_threads(before)
        shutil.rmtree(model, ignore_errors=True)
        os.replace(build / "model", model)
        shutil.rmtree(build, ignore_errors=True)
        for stale in folder.parent.glob("genrm-warm-judge-*"):  # judges of older code
            if stale != folder:
                shutil.rmtree(stale, ignore_errors=True)
    return model


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory) -> dict[str, Path]:
    """Small synthetic preference files: 24 training pairs, 8 held-out pairs."""
    root = tmp_path_factory.mktemp("synthetic")
    return {"train": write_synthetic(root / "train.jsonl", 24, seed=1), "eval": write_synthetic(root / "eval.jsonl", 8, seed=2)}


def tiny_configs(output_dir: Path, recipe: str, model: str, data: dict[str, Path], **overrides):
    """(RecipeConfig, TrainConfig, JudgeConfig) for a run that takes seconds on the tiny kit."""
    recipe_fields = dict(
        recipe=recipe, data=str(data["train"]), eval_data=str(data["eval"]), model=str(model),
        output_dir=str(output_dir), shard_size=8, eval_k=2, sample_batch_size=64,
    )
    if recipe.startswith("star"):
        recipe_fields["iterations"] = 2
    train_fields = dict(learning_rate=1e-4, max_steps=2, per_device_train_batch_size=4, max_length=256)
    judge_fields = dict(k=4, template="compact", max_new_tokens=40, seed=0, swap=False)
    for key, value in overrides.items():
        target = next(f for f, cls in ((recipe_fields, RecipeConfig), (train_fields, TrainConfig), (judge_fields, JudgeConfig))
                      if key in cls.__dataclass_fields__)
        target[key] = value
    return RecipeConfig(**recipe_fields), TrainConfig(**train_fields), JudgeConfig(**judge_fields)


def cli_args(recipe_cfg: RecipeConfig, train_cfg: TrainConfig, judge_cfg: JudgeConfig) -> list[str]:
    """The ``genrm train`` flags that reproduce these configs (non-default fields only)."""
    args = ["--recipe", recipe_cfg.recipe]
    for cfg in (recipe_cfg, train_cfg, judge_cfg):
        default = type(cfg)(recipe=cfg.recipe) if isinstance(cfg, RecipeConfig) else type(cfg)()  # iterations by recipe
        for name in cfg.__dataclass_fields__:
            value = getattr(cfg, name)
            if value != getattr(default, name):
                args += [f"--{name}", str(value)]
    return args
