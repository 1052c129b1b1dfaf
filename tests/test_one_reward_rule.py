"""One rule turns preferences into numbers: the same scripted judgments (wins, losses, splits and
all-abstain items) give the same numbers through TRL (GRPO, PPO), OpenRLHF, veRL, Best-of-N and
the server's /get_reward, under every mapping and with or without ``abstain_p``."""

from __future__ import annotations

import httpx
import pytest
import torch

from genrm_plugin.bon import QueriesToScores
from genrm_plugin.integrations.openrlhf import OpenRLHFConfig, OpenRLHFReward
from genrm_plugin.integrations.trl import JudgeBackbone
from genrm_plugin.integrations.verl import VerlReward
from genrm_plugin.judge import GenerativeJudge, JudgeConfig
from genrm_plugin.reward import TIE, GenRMReward, RewardConfig, map_probability
from genrm_plugin.server import ServeConfig, create_app
from genrm_plugin.serving.runner import ServerThread
from genrm_plugin.testing import ScriptedBackend, split_judge_prompt

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


@pytest.mark.parametrize("mapping", ["win_prob", "centered", "logit"])
@pytest.mark.parametrize("abstain_p", [None, 0.25])
def test_every_integration_gives_the_same_numbers(mapping, abstain_p):
    n = len(RESPONSES)
    numbers = expected(mapping, abstain_p, required=True)

    trl = make_reward(mapping, abstain_p)([QUESTION] * n, RESPONSES, reference=[REFERENCE] * n)
    assert trl == expected(mapping, abstain_p, required=False)  # TRL takes None (unscored) when abstain_p is None

    openrlhf = OpenRLHFReward(make_reward(mapping, abstain_p), OpenRLHFConfig(response_from="query"))
    try:
        got = openrlhf(RESPONSES, [QUESTION] * n, [REFERENCE] * n)
    finally:
        openrlhf.close()
    assert got["rewards"].tolist() == pytest.approx(numbers)

    verl = VerlReward(make_reward(mapping, abstain_p)).score_batch(
        ["src"] * n, RESPONSES, [REFERENCE] * n, [{"question": QUESTION}] * n)
    assert [row["score"] for row in verl] == pytest.approx(numbers)

    scorer = QueriesToScores(make_reward(mapping, abstain_p), [QUESTION], references=[REFERENCE])
    assert scorer([QUESTION + r for r in RESPONSES]) == pytest.approx(numbers)

    tokenizer = _CharTokenizer()
    backbone = JudgeBackbone(make_reward(mapping, abstain_p), tokenizer, [QUESTION], [tokenizer.encode(QUESTION)], [REFERENCE])
    rows = [tokenizer.encode(QUESTION + r) for r in RESPONSES]
    width = max(map(len, rows))
    ids = torch.tensor([[0] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    backbone(ids, mask)
    assert backbone.last_rewards == pytest.approx(numbers)

    app = create_app(make_reward(mapping, abstain_p), ServeConfig(), OpenRLHFConfig(response_from="query"))
    with ServerThread(app) as server:
        body = {"query": RESPONSES, "prompts": [QUESTION] * n, "labels": [REFERENCE] * n}
        answer = httpx.post(server.url + "/get_reward", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["rewards"] == pytest.approx(numbers)


class _CharTokenizer:
    """One id per character (ids from 1; 0 is the pad id), enough for PPO's prompt matching."""

    pad_token_id = 0

    def encode(self, text: str) -> list[int]:
        return [ord(c) + 1 for c in text]

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        return "".join(chr(i - 1) for i in ids if i)
