"""Configuration of the judge-training recipes (``genrm train``): what to train on, and how.

Three dataclasses fill one run, from CLI flags and ``--config recipe.yaml``:

* :class:`RecipeConfig` -- which recipe, data, base model, run folder, iterations, STaR filtering;
* :class:`TrainConfig` -- optimiser / TRL trainer settings (learning rate, steps, DPO beta, ...);
* :class:`~genrm_plugin.judge.JudgeConfig` -- the judge that samples rationales and is evaluated
  (``k`` samples, temperature, top-p, template, ``max_new_tokens``); its ``seed`` is the run seed
  (data split, per-shard sampling seeds, training seed).

Defaults follow the GenRM paper (Mahan et al. 2024): 3 STaR iterations on fresh thirds of the
data, each starting from the previous iteration's model; DPO beta 1.0; LR 1e-6 (2e-5 for the
rationalizer SFT).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from genrm_plugin.recipes.trl_fields import trl_field_base

RECIPES = ("bt", "genrm", "star-sft", "star-dpo", "star-rationalizer", "judge-zero-shot", "synthetic-critique-rm", "cloud")
STAR_RECIPES = ("star-sft", "star-dpo", "star-rationalizer")
CRITIQUE_RECIPES = ("synthetic-critique-rm", "cloud")  # critique reward models (genrm_plugin.recipes.critique)
# The paper's learning rates; every other recipe uses 1e-6 as well.
DEFAULT_LEARNING_RATES = {"star-rationalizer": 2e-5}
DEFAULT_STAR_ITERATIONS = 3
SAMPLE_BACKENDS = ("transformers", "vllm")  # engines that load a local checkpoint
SAMPLING_STRATEGIES = ("random", "sequential", "group_by_length")  # transformers TrainingArguments.train_sampling_strategy
# Fields that act for some recipes only. One YAML file may hold them for every recipe: a value from
# the file is ignored where it has no effect; set on the command line there, it is an error
# (see genrm_plugin.config_parser).
RECIPE_SCOPED_FIELDS = {
    "iterations": STAR_RECIPES,
    "keep_per_example": ("star-sft", "star-rationalizer"),
    "dpo_pairs_per_example": ("star-dpo",),
    "dpo_abstain_as_rejected": ("star-dpo",),
    "rationale_filter": STAR_RECIPES,
    "critic_model": CRITIQUE_RECIPES,
    "cloud_lm_coef": ("cloud",),
    "data_columns": tuple(r for r in RECIPES if r != "judge-zero-shot"),  # zero-shot's evaluation reads data as it is
}


@dataclass
class RecipeConfig:
    """What a ``genrm train`` run trains, on what data, into which folder.

    Fields:
        recipe: one of ``bt``, ``genrm``, ``star-sft``, ``star-dpo``, ``star-rationalizer``,
            ``judge-zero-shot``, ``synthetic-critique-rm`` (a BT reward model reading a critic's
            critique of each response, Ye et al. 2024) or ``cloud`` (Critique-out-Loud, Ankner et
            al. 2024: critique SFT, self-critiques, then a reward head trained beside the LM head; its
            three stages are iterations 1-3 of the run folder).
        data: training preferences (file or ``datasets`` name; see :func:`genrm_plugin.data.load_preferences`).
        data_split: split of ``data`` (datasets names / saved ``DatasetDict`` only).
        data_limit: use only the first N pairs of ``data``.
        data_columns: rename columns of ``data`` before reading it, as ``source=target`` items
            (``--data_columns question=prompt good=chosen bad=rejected``; in YAML a mapping works
            too). ``eval_data`` is read as it is (the evaluation reads it again by itself), and so is
            ``data`` in ``judge-zero-shot`` (evaluated, not trained on), where the field is not used.
        eval_data: held-out preferences for the accuracy after each iteration (optional).
        eval_split: split of ``eval_data``.
        eval_limit: use only the first N pairs of ``eval_data``.
        eval_k: votes per order when evaluating a CoT judge (``None``: the judge's ``k``); the
            evaluation reports maj@1, maj@2, ... up to it (one set of votes). Critique reward
            models: critiques averaged per response (``None``: 1, greedy).
        eval_save_rationales: keep every held-out rationale (CoT judges) or critique (critique
            reward models) in the evaluation's records, for reading them or checking them afterwards.
        model: base model (local path or hub name); ``toy`` is a random tiny kit model.
        output_dir: the run folder (shards, manifest, checkpoints, stats, final judge). Re-running
            the same command resumes from it.
        overwrite: start the run folder afresh: delete what an earlier run left in ``output_dir``
            (a non-empty folder that is not a ``genrm train`` run folder is refused).
        iterations: STaR iterations, each on a fresh slice of the data and starting from the previous
            iteration's model (``None``: 3 for STaR recipes, 1 otherwise).
        shard_size: judge examples (critique recipes: responses to critique) per sampling shard
            (the unit of resumption).
        keep_per_example: STaR-SFT / rationalizer: correct rationales kept per example (0: all
            distinct ones).
        dpo_pairs_per_example: STaR-DPO: (correct, wrong) rationale pairs per example.
        dpo_abstain_as_rejected: STaR-DPO: also use rationales without a verdict as rejected ones.
        rationale_filter: STaR: a check of the rationale itself, ``"module:function"`` called as
            ``function(question, answer_a, answer_b, rationale) -> bool`` (e.g. "does its
            recomputed answer hold?", where the task can verify it). A rationale counts as
            correct (kept; DPO's chosen) only if its verdict matches the label *and* it passes;
            rejected DPO rationales are still the wrong-verdict ones. ``None``: the verdict alone
            (the paper's STaR).
        critic_model: critique recipes: the model that writes the critiques -- any model the
            ``sample_backend`` loads (``None``: ``synthetic-critique-rm`` uses ``model``; ``cloud``
            needs it only as the teacher when the data has no ``chosen_critique`` /
            ``rejected_critique`` columns). Critique columns in the data, when every pair has both,
            are used instead of sampling; ``synthetic-critique-rm``'s card records the critic
            either way (scoring needs one).
        cloud_lm_coef: ``cloud``: weight of the teacher critiques' NLL beside the BT loss while the
            reward head trains (keeps the LM head writing critiques; 0: BT loss only).
        sample_backend: engine that samples rationales and runs evaluations: ``transformers`` or
            ``vllm`` (a fresh engine per checkpoint; see :mod:`genrm_plugin.backends.factory`).
        sample_batch_size: sequences per sampling batch (transformers backend).
        device: device of the sampling and evaluation engines (transformers backend): ``cuda``,
            ``cuda:1``, ``cpu``, ... (``None``: this process's accelerator as accelerate / torch
            report it -- ``cuda:<LOCAL_RANK>`` under a multi-process launch -- else the CPU).
        sample_dtype: weights dtype of the sampling and evaluation engines (``auto``: the
            checkpoint's own; ``bfloat16`` on GPUs halves memory against a float32 checkpoint).
        allow_empty_iterations: let a STaR iteration that keeps fewer than ``min_train_rows``
            training rows go on (it then copies its starting model) instead of stopping the run.
        min_train_rows: fewest training rows (SFT rationales / DPO pairs) a STaR iteration must
            keep (``None``: 1; 8 for ``star-dpo``, where a handful of pairs teaches nothing).
    """

    recipe: str = field(default="star-dpo", metadata={"choices": RECIPES})
    data: str | None = None
    data_split: str | None = None
    data_limit: int | None = None
    data_columns: list[str] | None = None
    eval_data: str | None = None
    eval_split: str | None = None
    eval_limit: int | None = None
    eval_k: int | None = None
    eval_save_rationales: bool = False
    model: str = "toy"
    output_dir: str = "runs/genrm-train"
    overwrite: bool = False
    iterations: int | None = None
    shard_size: int = 64
    keep_per_example: int = 0
    dpo_pairs_per_example: int = 1
    dpo_abstain_as_rejected: bool = False
    rationale_filter: str | None = None
    critic_model: str | None = None
    cloud_lm_coef: float = 1.0
    sample_backend: str = field(default="transformers", metadata={"choices": SAMPLE_BACKENDS})
    sample_batch_size: int = 64
    device: str | None = None
    sample_dtype: str = "auto"
    allow_empty_iterations: bool = False
    min_train_rows: int | None = None

    def __post_init__(self) -> None:
        if self.recipe not in RECIPES:
            raise ValueError(f"RecipeConfig.recipe must be one of {RECIPES}, got {self.recipe!r}")
        if self.iterations is None:
            self.iterations = DEFAULT_STAR_ITERATIONS if self.recipe in STAR_RECIPES else 1
        if self.iterations < 1:
            raise ValueError(f"RecipeConfig.iterations must be >= 1, got {self.iterations}")
        if self.recipe not in STAR_RECIPES and self.iterations != 1:
            raise ValueError(f"RecipeConfig.iterations applies to STaR recipes only; {self.recipe} runs once")
        for name in ("shard_size", "dpo_pairs_per_example", "sample_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"RecipeConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.sample_backend not in SAMPLE_BACKENDS:
            raise ValueError(f"RecipeConfig.sample_backend must be one of {SAMPLE_BACKENDS}, got {self.sample_backend!r}")
        if self.rationale_filter is not None:
            self.load_rationale_filter()
        if self.cloud_lm_coef < 0:
            raise ValueError(f"RecipeConfig.cloud_lm_coef must be >= 0, got {self.cloud_lm_coef}")
        if self.keep_per_example < 0:
            raise ValueError(f"RecipeConfig.keep_per_example must be >= 0, got {self.keep_per_example}")
        self.columns()  # validates data_columns

    def columns(self) -> dict[str, str] | None:
        """``data_columns`` as a source -> target mapping (``None``: no renaming)."""
        from genrm_plugin.data import parse_columns

        return parse_columns(self.data_columns, "RecipeConfig.data_columns")

    @classmethod
    def inapplicable_fields(cls, values: dict) -> dict[str, str]:
        """Fields without effect for ``values["recipe"]`` -> why (:data:`RECIPE_SCOPED_FIELDS`)."""
        recipe = values.get("recipe", cls.__dataclass_fields__["recipe"].default)
        return {
            name: f"RecipeConfig.{name} applies to {', '.join(recipes)} only, not to recipe {recipe}"
            for name, recipes in RECIPE_SCOPED_FIELDS.items()
            if recipe not in recipes
        }

    def load_rationale_filter(self):
        """The ``rationale_filter`` callable (``None`` when unset); a bad path raises naming the field."""
        if self.rationale_filter is None:
            return None
        import importlib

        module, _, name = self.rationale_filter.partition(":")
        try:
            function = getattr(importlib.import_module(module), name) if name else None
        except (ImportError, AttributeError) as e:
            raise ValueError(f"RecipeConfig.rationale_filter {self.rationale_filter!r} cannot be loaded: {e}") from None
        if not callable(function):
            raise ValueError(f"RecipeConfig.rationale_filter must be 'module:function', got {self.rationale_filter!r}")
        return function

    @property
    def required_train_rows(self) -> int:
        """``min_train_rows`` or its per-recipe default."""
        if self.min_train_rows is not None:
            return self.min_train_rows
        return 8 if self.recipe == "star-dpo" else 1


BARE_FLAG = {"nargs": "?", "const": True}  # an optional bool that works as ``--bf16`` as well as ``--bf16 false``
# TrainConfig's own fields: genrm defaults that differ from TRL's (or that depend on the recipe).
OWN_TRAIN_FIELDS = (
    "learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size", "gradient_accumulation_steps",
    "lr_scheduler_type", "warmup_steps", "weight_decay", "max_length", "beta", "logging_steps", "use_cpu", "bf16",
    "gradient_checkpointing", "train_sampling_strategy", "report_to", "save_strategy",
)


@dataclass
class TrainConfig(trl_field_base(OWN_TRAIN_FIELDS)):
    """Optimiser and TRL trainer settings of the recipes: every field of TRL's SFT/DPO/RewardConfig.

    Besides the fields below (genrm's defaults), every other init field of TRL's ``SFTConfig``,
    ``DPOConfig`` and ``RewardConfig`` (transformers' ``TrainingArguments`` included) is a field
    too, defaulting to ``None`` = that trainer's own default; a set value reaches the trainer's
    config unchanged (``--deepspeed ds.json``, ``--fsdp "full_shard auto_wrap"``, ``--push_to_hub
    --hub_model_id me/judge``, ``--torch_compile``, ...; see :mod:`genrm_plugin.recipes.trl_fields`).
    Setting one that the recipe's trainer does not have (``--loss_type`` of DPO in ``star-sft``)
    is an error. ``output_dir``, ``seed`` and ``data_seed`` are set by the recipe.

    Fields:
        learning_rate: peak LR (``None``: the paper's, 1e-6; 2e-5 for ``star-rationalizer``).
        num_train_epochs: epochs over each iteration's training data.
        max_steps: stop after this many optimiser steps (-1: run the epochs).
        per_device_train_batch_size: rows per step per device.
        gradient_accumulation_steps: micro-batches per optimiser step.
        lr_scheduler_type: transformers scheduler name (``linear``, ``cosine``, ``constant``, ...).
        warmup_steps: warm-up steps (a float < 1 is a fraction of the steps).
        weight_decay: AdamW weight decay.
        max_length: longest tokenized training row (longer rows are truncated).
        beta: DPO beta (paper: 1.0).
        logging_steps: log the loss every N steps.
        use_cpu: train on CPU (``None``: when no CUDA device is available).
        bf16: bf16 mixed precision (``None``: TRL's default, on, when training on a GPU; off on CPU,
            where bf16 autocast runs several times slower than fp32).
        gradient_checkpointing: recompute activations in the backward pass (``None``: TRL's
            default, on, on a GPU; off on CPU, where memory is not the constraint).
        train_sampling_strategy: order of the training rows (transformers' sampler): ``random``
            (shuffled), ``sequential`` (as given, e.g. rows already grouped into batches of
            similar length) or ``group_by_length``.
        report_to: where the trainer reports (``none``, ``wandb``, ``tensorboard``, ``all``, ...).
        save_strategy: trainer checkpoints inside ``iter-<i>/trainer`` (``no``: only the
            recipe's own checkpoint per iteration, which is what resumption uses).
    """

    learning_rate: float | None = None
    num_train_epochs: float = 1.0
    max_steps: int = -1
    per_device_train_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    lr_scheduler_type: str = "linear"
    warmup_steps: float = 0.0
    weight_decay: float = 0.0
    max_length: int | None = 1024
    beta: float = 1.0
    logging_steps: int = 1
    use_cpu: bool | None = field(default=None, metadata=BARE_FLAG)
    bf16: bool | None = field(default=None, metadata=BARE_FLAG)
    gradient_checkpointing: bool | None = field(default=None, metadata=BARE_FLAG)
    train_sampling_strategy: str = field(default="random", metadata={"choices": SAMPLING_STRATEGIES})
    report_to: str | None = "none"
    save_strategy: str = "no"

    def __post_init__(self) -> None:
        if self.train_sampling_strategy not in SAMPLING_STRATEGIES:
            raise ValueError(
                f"TrainConfig.train_sampling_strategy must be one of {SAMPLING_STRATEGIES}, got {self.train_sampling_strategy!r}"
            )
        if self.learning_rate is not None and self.learning_rate <= 0:
            raise ValueError(f"TrainConfig.learning_rate must be > 0, got {self.learning_rate}")
        if self.per_device_train_batch_size < 1 or self.gradient_accumulation_steps < 1:
            raise ValueError("TrainConfig batch size and gradient_accumulation_steps must be >= 1")
        if self.beta <= 0:
            raise ValueError(f"TrainConfig.beta must be > 0, got {self.beta}")

    def lr_for(self, recipe: str) -> float:
        """The learning rate of ``recipe``: the configured one, else the paper's default."""
        return self.learning_rate if self.learning_rate is not None else DEFAULT_LEARNING_RATES.get(recipe, 1e-6)


def config_dict(*configs) -> dict:
    """A JSON-able snapshot of config dataclasses, keyed by class name."""
    return {type(c).__name__: asdict(c) for c in configs}
