"""One rule turns preferences into numbers: the same scripted judgments (wins, losses, splits and
all-abstain items) give the same numbers through TRL (GRPO, PPO), OpenRLHF, veRL, Best-of-N and
the server's /get_reward, under every mapping and with or without ``abstain_p``; and the pointwise
critique reward goes through the very same entry points (one reward core) with its own numbers."""

from __future__ import annotations

import httpx
import pytest
import torch

from genrm_plugin.bon import QueriesToScores, best_of_n_by_reward
from genrm_plugin.critique_reward import CritiqueReward, CritiqueRewardConfig
from genrm_plugin.integrations.openrlhf import OpenRLHFConfig, OpenRLHFReward
from genrm_plugin.integrations.trl import JudgeBackbone
from genrm_plugin.integrations.verl import VerlReward
from genrm_plugin.judge import GenerativeJudge, JudgeConfig
from genrm_plugin.reward import TIE, GenRMReward, RewardConfig, map_probability
from genrm_plugin.server import ServeConfig, create_app
from genrm_plugin.serving.runner import ServerThread
from genrm_plugin.testing import ScriptedBackend, ScriptedCritiqueScorer, split_judge_prompt

QUESTION = "Which is better?"
REFERENCE = "the reference"
# response -> the votes it gets against the reference, per order (A = the response in the first order)
RESPONSES = ["win", "lose", "split", "mute", "win mute"]
EXPECTED_P = {"win": 1.0, "lose": 0.0, "split": 0.5, "mute": None, "win mute": 1.0}


def script(prompt: str, i: int) -> str:
    _, a, b = split_judge_prompt(prompt)
    response, first = (a, "A") if b == REFERENCE else (b, "B")
    other = "B" if first == "A" else "A"
    if response == "mute" or (response == "win mute" and first == "B"):
        return "no verdict here"  # "win mute" abstains in the swapped order only
    if response.startswith("win"):
        return f"[[{first}]]"
    if response == "lose":
        return f"[[{other}]]"
    return f"[[{first if i % 2 == 0 else other}]]"  # split: alternate


def make_reward(mapping: str, abstain_p: float | None) -> GenRMReward:
    judge = GenerativeJudge(ScriptedBackend(script), JudgeConfig(k=4, swap=True, template="compact"))
    return GenRMReward(judge, RewardConfig(mapping=mapping, abstain_p=abstain_p))


def expected(mapping: str, abstain_p: float | None, required: bool) -> list[float | None]:
    out = []
    for r in RESPONSES:
        p = EXPECTED_P[r] if EXPECTED_P[r] is not None else abstain_p
        p = TIE if p is None and required else p
        out.append(None if p is None else map_probability(p, mapping))
    return out


def numbers_everywhere(make, responses: list[str], labels: list | None) -> dict[str, list]:
    """The numbers each entry point gives for ``responses`` to QUESTION, each from a fresh reward
    ``make()``: TRL's reward function, OpenRLHF's reward_func, veRL's compute_score_batch, Best-of-N
    (``QueriesToScores`` and ``best_of_n_by_reward``), PPO's reward module and the server's
    /get_reward. ``labels``: the reference per response (``None``: none is sent anywhere)."""
    n = len(responses)
    columns = {} if labels is None else {"reference": labels}
    out = {"trl": make()([QUESTION] * n, responses, **columns)}

    openrlhf = OpenRLHFReward(make(), OpenRLHFConfig(response_from="query"))
    try:
        out["openrlhf"] = openrlhf(responses, [QUESTION] * n, labels)["rewards"].tolist()
    finally:
        openrlhf.close()

    verl = VerlReward(make()).score_batch(["src"] * n, responses, labels or [None] * n, [{"question": QUESTION}] * n)
    out["verl"] = [row["score"] for row in verl]

    references = None if labels is None else [labels[0]]
    out["queries_to_scores"] = QueriesToScores(make(), [QUESTION], references=references)([QUESTION + r for r in responses])
    out["best_of_n"] = best_of_n_by_reward(make(), [QUESTION], [responses], references)[0].scores

    tokenizer = _CharTokenizer()
    backbone = JudgeBackbone(make(), tokenizer, [QUESTION], [tokenizer.encode(QUESTION)], references)
    rows = [tokenizer.encode(QUESTION + r) for r in responses]
    width = max(map(len, rows))
    ids = torch.tensor([[0] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    backbone(ids, mask)
    out["ppo"] = backbone.last_rewards

    app = create_app(make(), ServeConfig(), OpenRLHFConfig(response_from="query"))
    with ServerThread(app) as server:
        body = {"query": responses, "prompts": [QUESTION] * n} | ({} if labels is None else {"labels": labels})
        answer = httpx.post(server.url + "/get_reward", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    out["server"] = answer.json()["rewards"]
    return out


@pytest.mark.parametrize("mapping", ["win_prob", "centered", "logit"])
@pytest.mark.parametrize("abstain_p", [None, 0.25])
def test_every_integration_gives_the_same_numbers(mapping, abstain_p):
    got = numbers_everywhere(lambda: make_reward(mapping, abstain_p), RESPONSES, [REFERENCE] * len(RESPONSES))
    assert got.pop("trl") == expected(mapping, abstain_p, required=False)  # TRL takes None (unscored) when abstain_p is None
    numbers = expected(mapping, abstain_p, required=True)
    for entry, values in got.items():
        assert values == pytest.approx(numbers), entry


# response -> the critique reward: how often it says "good"; "NaN-please" breaks the scripted head
CRITIQUED = {"good": 1.0, "good good, good": 3.0, "bad": 0.0, "NaN-please good": None, "<|im_end|>good": 1.0}


@pytest.mark.parametrize("abstain_reward", [0.0, -2.0])
def test_the_critique_reward_goes_through_the_same_entry_points(abstain_reward):
    """No labels anywhere (a pointwise reward reads none); the unscored item is None in TRL and the
    stand-in everywhere a number is required."""
    def make():
        return CritiqueReward(ScriptedCritiqueScorer(k=2), CritiqueRewardConfig(abstain_reward=abstain_reward))

    got = numbers_everywhere(make, list(CRITIQUED), labels=None)
    assert got.pop("trl") == list(CRITIQUED.values())
    numbers = [abstain_reward if r is None else r for r in CRITIQUED.values()]
    for entry, values in got.items():
        assert values == pytest.approx(numbers), entry


class _CharTokenizer:
    """One id per character (ids from 1; 0 is the pad id), enough for PPO's prompt matching."""

    pad_token_id = 0

    def encode(self, text: str) -> list[int]:
        return [ord(c) + 1 for c in text]

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        return "".join(chr(i - 1) for i in ids if i)
