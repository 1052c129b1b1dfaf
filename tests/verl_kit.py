"""veRL-side helpers shared by test_verl_managers.py, test_ray_clients.py and benchmarks/ray_clients.py.

* :func:`rollout_batch`: a rollout batch as veRL's trainer hands it to a reward manager: a ``DataProto``
  with left-padded ``prompts`` (chat template of the kit tokenizer), right-padded ``responses`` ending in
  EOS, ``input_ids`` / ``attention_mask`` / ``position_ids`` over both, and the non-tensor fields veRL's
  dataset fills: ``data_source``, ``reward_model={"ground_truth", "style"}``, ``extra_info``.
* :func:`scripted_reward`: a :class:`~genrm_plugin.integrations.verl.VerlReward` over a scripted oracle
  judge (known-exact win probabilities, listed per rollout in :data:`ROLLOUTS`).
* :func:`legacy_manager` / :func:`loop_manager`: veRL's own reward managers, built the way veRL builds
  them, with ``custom_reward_function`` loaded by veRL's ``get_custom_reward_fn`` from
  ``examples/verl_reward.py``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genrm_plugin.integrations.verl import VerlConfig, VerlReward
from genrm_plugin.judge import GenerativeJudge, JudgeConfig
from genrm_plugin.reward import GenRMReward, RewardConfig
from genrm_plugin.testing import ScriptedBackend, split_judge_prompt

REWARD_FILE = Path(__file__).resolve().parents[1] / "examples" / "verl_reward.py"
# veRL's reward function name per legacy manager (registry name in verl.workers.reward_manager).
MANAGER_FUNCTIONS = {"naive": "compute_score", "batch": "compute_score_batch"}


@dataclass
class Rollout:
    """One prompt/response row and what the scripted oracle makes of it.

    Fields:
        question: user turn (rendered with the chat template into the prompt; also ``extra_info["question"]``).
        response: the policy's response text (EOS is appended as a rollout would).
        ground_truth: ``reward_model["ground_truth"]`` (strings and numbers, as veRL datasets hold them).
        reference: ``extra_info["reference"]`` when set (replaces ``ground_truth`` as the judge's reference).
        data_source: veRL's ``data_source`` column.
        win_prob: the oracle's P(response > reference); ``None``: every vote abstains.
    """

    question: str
    response: str
    ground_truth: Any
    reference: str | None = None
    data_source: str = "toy_math"
    win_prob: float | None = None


ROLLOUTS = [
    Rollout("What is 17 + 25?", "17 + 25 = 42.", "17 + 25 = 32.", win_prob=1.0),
    Rollout("What is 40 + 2?", "It is 41.", 42, data_source="toy_arith", win_prob=0.0),
    Rollout("What is 6 * 7?", "Maybe 42, I think.", "40", win_prob=2 / 3),
    Rollout("What is 50 - 8?", "Exactly 42", "unused", reference="Worked: 50 - 8 = 42", win_prob=None),
    Rollout("Capital of France?", "Paris.", "Lyon", data_source="toy_qa", win_prob=None),
    Rollout("What is 20 + 22?", "The sum of 20 and 22 is 42 because 2 + 2 = 4 and 0 + 2 = 2.", "41", win_prob=1.0),
]


def oracle(prompt: str, sample: int) -> str:
    """Prefers the answer containing 42 (on 2 of every 3 samples if it says 'maybe'); abstains otherwise."""
    _, a, b = split_judge_prompt(prompt)
    if ("42" in a) == ("42" in b):
        return "I cannot tell."
    right, wrong = ("A", "B") if "42" in a else ("B", "A")
    hedged = "maybe" in (a if right == "A" else b).lower()
    return f"[[{wrong}]]" if hedged and sample % 3 == 2 else f"[[{right}]]"


def scripted_genrm(mapping: str = "centered") -> GenRMReward:
    """A reward over the scripted :func:`oracle` judge (K=3 per order, both orders)."""
    judge = GenerativeJudge(ScriptedBackend(oracle), JudgeConfig(k=3, swap=True))
    return GenRMReward(judge, RewardConfig(mapping=mapping))


def scripted_reward(mapping: str = "centered") -> VerlReward:
    """The veRL reward over :func:`scripted_genrm`."""
    return VerlReward(scripted_genrm(mapping), VerlConfig())


def reference_of(rollout: Rollout) -> str:
    """The reference the judge compares the response with."""
    return rollout.reference if rollout.reference is not None else str(rollout.ground_truth)


def chat_prompt(tokenizer, question: str) -> str:
    return tokenizer.apply_chat_template([{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True)


def rollout_batch(tokenizer, rollouts: list[Rollout]):
    """veRL's ``DataProto`` for ``rollouts`` (the layout ``RayPPOTrainer`` passes to reward managers)."""
    from verl import DataProto

    prompts = [tokenizer(chat_prompt(tokenizer, r.question), add_special_tokens=False).input_ids for r in rollouts]
    responses = [tokenizer(r.response, add_special_tokens=False).input_ids + [tokenizer.eos_token_id] for r in rollouts]
    width_p, width_r = max(map(len, prompts)), max(map(len, responses))
    pad = tokenizer.pad_token_id
    prompt_ids = torch.tensor([[pad] * (width_p - len(p)) + p for p in prompts])
    response_ids = torch.tensor([r + [pad] * (width_r - len(r)) for r in responses])
    prompt_mask = torch.tensor([[0] * (width_p - len(p)) + [1] * len(p) for p in prompts])
    response_mask = torch.tensor([[1] * len(r) + [0] * (width_r - len(r)) for r in responses])
    attention_mask = torch.cat([prompt_mask, response_mask], dim=1)
    infos = []
    for i, r in enumerate(rollouts):
        info = {"question": r.question, "index": i, "split": "train"}
        if r.reference is not None:
            info["reference"] = r.reference
        infos.append(info)
    return DataProto.from_dict(
        tensors={
            "prompts": prompt_ids,
            "responses": response_ids,
            "input_ids": torch.cat([prompt_ids, response_ids], dim=1),
            "attention_mask": attention_mask,
            "position_ids": (attention_mask.cumsum(dim=1) - 1).clamp(min=0),
        },
        non_tensors={
            "data_source": np.array([r.data_source for r in rollouts], dtype=object),
            "reward_model": np.array([{"ground_truth": r.ground_truth, "style": "model"} for r in rollouts], dtype=object),
            "extra_info": np.array(infos, dtype=object),
        },
    )


def verl_config(function: str, manager: str = "naive", reward_kwargs: dict | None = None, path: Path = REWARD_FILE):
    """The ``reward`` section of veRL 0.9's trainer config (``reward.custom_reward_function`` etc.)."""
    from omegaconf import OmegaConf

    return OmegaConf.create({"reward": {
        "custom_reward_function": {"path": str(path), "name": function, "reward_kwargs": dict(reward_kwargs or {})},
        "reward_manager": {"source": "register", "name": manager},
    }})


def legacy_manager(name: str, tokenizer, reward_kwargs: dict | None = None, path: Path = REWARD_FILE, num_examine: int = 0):
    """``verl.workers.reward_manager`` class ``name`` over veRL's loader of the reward file."""
    from verl.trainer.ppo.reward import get_custom_reward_fn
    from verl.workers.reward_manager import get_reward_manager_cls

    compute_score = get_custom_reward_fn(verl_config(MANAGER_FUNCTIONS[name], name, reward_kwargs, path))
    return get_reward_manager_cls(name)(tokenizer=tokenizer, num_examine=num_examine, compute_score=compute_score)


def score_legacy(name: str, tokenizer, data, reward_kwargs: dict | None = None) -> dict:
    """``{"reward_tensor", "reward_extra_info"}`` from the legacy manager ``name`` over ``data``."""
    return legacy_manager(name, tokenizer, reward_kwargs)(data, return_dict=True)


def loop_manager(tokenizer, reward_kwargs: dict | None = None):
    """veRL 0.9's reward-loop ``naive`` manager (what ``main_ppo``'s reward workers run), by ``load_reward_manager``."""
    from verl.trainer.ppo.reward import load_reward_manager

    return load_reward_manager(verl_config("compute_score", "naive", reward_kwargs), tokenizer)


def score_loop(manager, data) -> tuple[torch.Tensor, list[dict]]:
    """Run the reward-loop manager as ``RewardLoopWorker.compute_score_batch`` does (one task per row, concurrent)."""

    async def run_all():
        return await asyncio.gather(*(manager.run_single(data[i : i + 1]) for i in range(len(data))))

    outputs = manager.loop.run_until_complete(run_all())
    scores = manager.assemble_rm_scores(data, [o["reward_score"] for o in outputs])
    return scores, [o["reward_extra_info"] for o in outputs]


def use_tiny_judge(tmp_path: Path, monkeypatch, settings: str) -> None:
    """Point ``$GENRM_CONFIG`` at a YAML judging with the tiny kit model (``settings``: more YAML lines)."""
    from genrm_plugin import settings as genrm_settings
    from genrm_plugin.toy import save_tiny

    config = tmp_path / "genrm.yaml"
    config.write_text(f"model: {save_tiny(tmp_path / 'judge')}\n{settings}")
    monkeypatch.setenv("GENRM_CONFIG", str(config))
    monkeypatch.setattr(genrm_settings, "_shared", {})


def last_token_positions(data) -> torch.Tensor:
    """Index of each response's last valid token (where veRL puts the sequence reward)."""
    prompt_width = data.batch["prompts"].shape[-1]
    return data.batch["attention_mask"][:, prompt_width:].sum(dim=-1) - 1


def expected_win_probs(rollouts: list[Rollout], abstain_fill: float = 0.5) -> list[float]:
    return [abstain_fill if r.win_prob is None else r.win_prob for r in rollouts]


def close_to(values, expected, tol: float = 1e-9) -> bool:
    """Element-wise equal up to ``tol`` (vote shares such as 2/3 are sums of floats)."""
    return len(values) == len(expected) and all(v is not None and abs(v - e) <= tol for v, e in zip(values, expected))
