"""CLoud's reward-head training (stage 3): TRL's ``RewardTrainer`` plus a language-model term.

One causal LM carries both heads: its LM head (which writes critiques) and a new reward head
(``Linear(hidden_size, 1)`` at the last token, the layout of a sequence classifier's ``score``).
:class:`CLoudRewardTrainer` is a small ``RewardTrainer`` subclass whose loss is

    -log sigmoid(r(chosen) - r(rejected))  +  critique_lm_coef * NLL(teacher critique tokens)

through the shared backbone. The BT rows are ``request + self-critique + EOS`` (the model's own
critiques, laid out by :func:`~genrm_plugin.prompts.critique_head_text`); the NLL is taken on
``request + teacher critique + EOS`` of the same responses -- the targets of the critique SFT
(stage 1) -- so the LM head keeps writing critiques while the reward head moves the backbone (CLoud
trains both objectives jointly). Measured on the tiny kit: an NLL on the model's own critiques
instead let the teacher-critique NLL drift up by 0.6 nats in 40 steps; anchored on the teacher's it
holds. ``critique_lm_coef = 0`` is plain BT training of the head and backbone.

:func:`train_cloud_reward` has the signature of :mod:`~genrm_plugin.recipes.trainers`'
functions; it saves a plain causal-LM folder (loadable by every backend) plus the reward head
(:func:`~genrm_plugin.critique_scorer.save_reward_head`). LoRA (``--use_peft``) and ZeRO-3 are not
supported for this stage (the model is re-saved from the unwrapped process-local module).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from trl import RewardConfig, RewardTrainer
from trl.trainer.reward_trainer import DataCollatorForPreference
from trl.trainer.utils import pad

from genrm_plugin.critique_scorer import last_token_states, save_reward_head
from genrm_plugin.recipes import distributed
from genrm_plugin.recipes.config import TrainConfig
from genrm_plugin.recipes.trainers import run_trainer, trl_args

SIDES = ("chosen", "rejected")
# Row columns besides prompt/chosen/rejected: the teacher-critique texts and where each critique starts.
TEACHER = {side: f"{side}_teacher" for side in SIDES}
REQUEST_CHARS = {side: f"{side}_request_chars" for side in SIDES}
TOKENIZED = [f"{side}_{name}" for side in SIDES for name in ("teacher_ids", "critique_start")]


@dataclass
class CLoudRewardConfig(RewardConfig):
    """TRL's ``RewardConfig`` plus ``critique_lm_coef``: the weight of the teacher critiques' NLL."""

    critique_lm_coef: float = field(default=1.0, metadata={"help": "weight of the teacher critique tokens' NLL"})


@dataclass
class CritiqueCollator(DataCollatorForPreference):
    """TRL's preference collator (the self-critique rows), plus the teacher-critique rows as
    ``lm_input_ids`` / ``lm_attention_mask`` and their first critique token (chosen rows, then rejected)."""

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        output = super().torch_call(examples)
        rows = [torch.tensor(e[f"{side}_teacher_ids"]) for side in SIDES for e in examples]
        output["lm_input_ids"] = pad(rows, padding_value=self.pad_token_id, padding_side="right")
        output["lm_attention_mask"] = pad([torch.ones_like(r) for r in rows], padding_value=0, padding_side="right")
        output["lm_critique_start"] = torch.tensor([e[f"{side}_critique_start"] for side in SIDES for e in examples])
        return output


class CLoudRewardTrainer(RewardTrainer):
    """``RewardTrainer`` on a causal LM with a ``score`` layer: BT loss + ``critique_lm_coef`` x critique NLL."""

    def __init__(self, model: Any, args: Any, processing_class: Any = None, **kwargs: Any) -> None:
        if kwargs.get("peft_config") is not None:
            raise ValueError("recipe cloud trains its reward head without LoRA: drop --use_peft")
        if isinstance(model, str):
            model = load_for_reward_training(model, args.seed, **(args.model_init_kwargs or {}))
        pad = processing_class.pad_token_id if processing_class.pad_token_id is not None else processing_class.eos_token_id
        super().__init__(model=model, args=args, processing_class=processing_class,
                         data_collator=CritiqueCollator(pad_token_id=pad), **kwargs)

    def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
        if REQUEST_CHARS["chosen"] in dataset.column_names:
            dataset = dataset.map(_tokenize_row, fn_kwargs={"tokenizer": processing_class, "max_length": args.max_length},
                                  remove_columns=dataset.column_names)
        return super()._prepare_dataset(dataset, processing_class, args, dataset_name)

    def _set_signature_columns_if_needed(self):
        if self._signature_columns is None:
            self._signature_columns = ["chosen_ids", "rejected_ids", *TOKENIZED]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        mode = "train" if self.model.training else "eval"
        ids, mask = inputs["input_ids"], inputs["attention_mask"]
        outputs = model(input_ids=ids, attention_mask=mask, use_cache=False, output_hidden_states=True)
        pooled = last_token_states(outputs.hidden_states[-1], mask)
        score = self.accelerator.unwrap_model(model).score
        chosen, rejected = torch.chunk(score(pooled.to(score.weight.dtype)).squeeze(-1).float(), chunks=2)
        bt = -nn.functional.logsigmoid(chosen - rejected).mean()
        nll = self._critique_nll(model, inputs) if self.args.critique_lm_coef > 0 else bt.detach() * 0
        loss = bt + self.args.critique_lm_coef * nll
        with torch.no_grad():
            metrics = self._metrics[mode]
            metrics["accuracy"].append(self.accelerator.gather_for_metrics((chosen > rejected).float().mean()).mean().item())
            metrics["margin"].append(self.accelerator.gather_for_metrics((chosen - rejected).mean()).mean().item())
            metrics["bt_loss"].append(bt.item())
            metrics["critique_nll"].append(nll.item())
        return (loss, outputs) if return_outputs else loss

    @staticmethod
    def _critique_nll(model: Any, inputs: dict[str, Any]) -> Any:
        """Mean NLL of the teacher-critique tokens (EOS included) after their requests."""
        ids, mask, starts = inputs["lm_input_ids"], inputs["lm_attention_mask"], inputs["lm_critique_start"]
        logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
        positions = torch.arange(1, ids.shape[1], device=ids.device)
        targets = (positions[None, :] >= starts[:, None]) & (mask[:, 1:] == 1)
        if not targets.any():
            return logits.sum() * 0
        return nn.functional.cross_entropy(logits[:, :-1][targets].float(), ids[:, 1:][targets])


def _tokenize_row(row: dict[str, Any], tokenizer: Any, max_length: int | None = None) -> dict[str, Any]:
    """Token ids of both self-critique rows (as TRL tokenizes text rows: ``tokenizer(prompt + text +
    EOS)``) and of both teacher rows (cut to ``max_length``), with each teacher row's first critique
    token (the first token that starts at or after its request)."""
    out = {}
    for side in SIDES:
        out[f"{side}_ids"] = tokenizer(text=_with_eos(row["prompt"] + row[side], tokenizer)).input_ids
        encoded = tokenizer(text=_with_eos(row[TEACHER[side]], tokenizer), return_offsets_mapping=True)
        offsets, boundary = encoded["offset_mapping"], row[REQUEST_CHARS[side]]
        out[f"{side}_teacher_ids"] = encoded["input_ids"][:max_length]
        out[f"{side}_critique_start"] = next((i for i, (begin, end) in enumerate(offsets) if begin >= boundary and end > begin),
                                             len(offsets))
    return out


def _with_eos(text: str, tokenizer: Any) -> str:
    eos = tokenizer.eos_token or ""
    return text if text.endswith(eos) else text + eos


def load_for_reward_training(path: str, seed: int, **init_kwargs: Any) -> Any:
    """The causal LM at ``path`` with a fresh ``score`` layer (seeded, initialised like a sequence
    classifier's) and ``num_labels = 1`` (what ``RewardTrainer`` checks)."""
    from transformers import AutoModelForCausalLM, set_seed

    set_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(path, **init_kwargs)
    config = model.config.get_text_config()
    model.score = torch.nn.Linear(config.hidden_size, 1, bias=False, dtype=model.dtype)
    torch.nn.init.normal_(model.score.weight, std=getattr(config, "initializer_range", 0.02))
    model._label_config = (model.config.id2label, model.config.label2id)
    model.config.num_labels = 1
    return model


def train_cloud_reward(model_path: str, rows: list[dict], out_dir: Path, train: TrainConfig, learning_rate: float,
                       seed: int, model_args: Any = None, critique_lm_coef: float = 1.0):
    """Train CLoud's reward head (and backbone) on ``rows`` from the critique-SFT model at ``model_path``.

    Rows: ``{"prompt": "", "chosen": request + self-critique, "rejected": ..., "chosen_teacher":
    request + teacher critique, "rejected_teacher": ..., "chosen_request_chars": len(request),
    "rejected_request_chars": ...}`` (:func:`~genrm_plugin.recipes.critique.reward_rows`). Saves
    ``out_dir/model``: the causal LM (``save_pretrained``, no reward head inside) + tokenizer + the
    reward head files (written by the main process).
    """
    if model_args is not None and model_args.use_peft:
        raise ValueError("recipe cloud trains its reward head without LoRA: drop --use_peft")
    args = trl_args(CLoudRewardConfig, train, out_dir, learning_rate, seed, critique_lm_coef=critique_lm_coef)
    model, tokenizer, result = run_trainer(CLoudRewardTrainer, model_path, rows, args, model_args)
    score = model.score
    del model.score
    model.config.id2label, model.config.label2id = model._label_config
    folder = Path(result.saved_model)
    if distributed.is_main():
        for stale in folder.glob("model*.safetensors*"):  # the trainer's copy holds the score layer
            stale.unlink()
        model.save_pretrained(folder)
        save_reward_head(folder, score, {"critique_lm_coef": critique_lm_coef})
    distributed.barrier()
    return model, tokenizer, result
