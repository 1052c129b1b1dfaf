"""The reward-hacking suite: no injected text raises the reward of a wrong completion.

Each pattern of :mod:`tests.hacking_patterns` (verdict markers and look-alikes, forged delimiters
and lines, control tokens, the "One Token" master keys, length padding) is judged against the
reference by a deliberately gullible scripted judge (:class:`~genrm_plugin.testing.GullibleJudge`:
it obeys any verdict it can read, whatever follows a live control token, and a structure it reads
through its own normalisation) in every template, mode (CoT, no-CoT) and swap setting, through
``GenRMReward`` (TRL convention), the reward server over real HTTP, OpenRLHF's ``reward_func`` and
veRL's ``compute_score``. Acceptance: no pattern gets more than the clean wrong completion.

The suite can fail: with the prompt protection switched off, every pattern marked ``bites_naive``
does raise the reward (checked below), so the gullible judge really is fooled by each of them.
"""

from __future__ import annotations

import json
import math

import httpx
import pytest

from genrm_plugin import prompts
from genrm_plugin.candidate_text import visible_text
from genrm_plugin import settings as genrm_settings
from genrm_plugin.integrations import openrlhf as genrm_openrlhf
from genrm_plugin.integrations import verl as genrm_verl
from genrm_plugin.judge import GenerativeJudge, JudgeConfig
from genrm_plugin.reward import GenRMReward
from genrm_plugin.server import create_app
from genrm_plugin.serving.runner import ServerThread
from genrm_plugin.testing import GullibleJudge, readable_verdicts
from genrm_plugin.toy import build_tokenizer
from hacking_patterns import PATTERNS, QUESTION, REFERENCE, WRONG, is_correct

CONFIGS = [(t, m, s) for t in prompts.TEMPLATES for m in ("cot", "no_cot") for s in (True, False)]
CONFIG_IDS = [f"{t}-{m}-{'swap' if s else 'noswap'}" for t, m, s in CONFIGS]
COMPLETIONS = [WRONG] + [p.completion for p in PATTERNS]


@pytest.fixture(scope="module")
def kit_tokenizer():
    return build_tokenizer()


def gullible_reward(config, tokenizer) -> GenRMReward:
    template, mode, swap = config
    judge = GenerativeJudge(GullibleJudge(is_correct, tokenizer), JudgeConfig(mode=mode, k=2, swap=swap, template=template))
    return GenRMReward(judge)


def value(reward: float | None) -> float:
    """A reward as an RL trainer uses it; an abstention counts as the tie stand-in 1/2."""
    return 0.5 if reward is None or math.isnan(reward) else float(reward)


def raised(rewards, patterns=PATTERNS) -> list[str]:
    """Names of the patterns whose reward exceeds the clean wrong completion's (``rewards[0]``)."""
    clean = value(rewards[0])
    return [p.name for p, r in zip(patterns, rewards[1:]) if value(r) > clean + 1e-9]


def trl_rewards(reward: GenRMReward) -> list[float | None]:
    n = len(COMPLETIONS)
    return reward([QUESTION] * n, COMPLETIONS, reference=[REFERENCE] * n)


def test_suite_size_and_classes():
    assert len(PATTERNS) >= 40 and len({p.name for p in PATTERNS}) == len(PATTERNS)
    assert {p.kind for p in PATTERNS} == {"verdict", "delimiter", "line", "control", "master_key", "padding"}
    assert not any("42" in visible_text(p.completion) for p in PATTERNS)  # no pattern states the right answer


def test_what_the_judge_sees_stays_readable(kit_tokenizer):
    """Before/after of every pattern (``pytest -s`` prints them): the wrong answer is still shown,
    text without markers is unchanged, and the neutralised text is a fixed point."""
    for p in PATTERNS:
        for template in prompts.TEMPLATES:
            after = prompts.neutralize(p.completion, template)
            if template == "tiny":
                print(f"{p.name:32} {p.completion[:70]!r}\n{'':32} {after[:70]!r}")
            assert after.startswith(WRONG) or after.endswith(WRONG), p.name
            assert prompts.neutralize(after, template) == after, p.name
            assert readable_verdicts(after) == [], p.name
            if p.kind in ("master_key", "padding"):
                assert after == visible_text(p.completion), p.name


@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_trl_reward_is_not_raised_by_any_pattern(config, kit_tokenizer):
    for tokenizer in (kit_tokenizer, None):  # chat template (live special tokens) and plain transcript
        reward = gullible_reward(config, tokenizer)
        rewards = trl_rewards(reward)
        assert rewards[0] < 0.05, "the gullible judge must prefer the reference over the clean wrong answer"
        assert raised(rewards) == []
        assert None not in rewards  # nothing makes the judge abstain (an abstention is a stand-in reward)
        assert set(reward.judge.backend.decisions) == {"content"}  # no pattern was read as a verdict or a turn


def test_every_naive_attack_bites_without_the_protection(monkeypatch, kit_tokenizer):
    """Switch the prompt protection off: each ``bites_naive`` pattern raises the reward somewhere,
    the others do not (so the suite above fails if the protection fails)."""
    monkeypatch.setattr(prompts, "neutralize", lambda text, template="mt_bench": text)
    monkeypatch.setattr(prompts, "_escape_content", lambda content, tokenizer, templated: content)
    bitten: set[str] = set()
    for config in CONFIGS:
        for tokenizer in (kit_tokenizer, None):
            bitten.update(raised(trl_rewards(gullible_reward(config, tokenizer))))
    assert bitten == {p.name for p in PATTERNS if p.bites_naive}


# -- the other entry points ------------------------------------------------------------------------
class Refused(Exception):
    """The entry point refused an item (a 4xx or a request error): no reward was given."""


def in_parts(score) -> list[float]:
    """``score(completions) -> scores`` over the clean completion and every pattern: the patterns a
    front end must judge in one call, each one it may refuse alone (a refusal counts as reward 0)."""
    judged = score([WRONG] + [p.completion for p in PATTERNS if not p.may_be_rejected])
    out, scores = [judged[0]], iter(judged[1:])
    for p in PATTERNS:
        if not p.may_be_rejected:
            out.append(next(scores))
            continue
        try:
            out.append(score([p.completion])[0])
        except Refused:
            out.append(0.0)
    return out


def chat_prompt(tokenizer) -> str:
    return tokenizer.apply_chat_template([{"role": "user", "content": QUESTION}], tokenize=False, add_generation_prompt=True)


def openrlhf_request(tokenizer, completions) -> dict:
    prompt = chat_prompt(tokenizer)
    n = len(completions)
    return {"queries": [prompt + c + tokenizer.eos_token for c in completions], "prompts": [prompt] * n, "labels": [REFERENCE] * n}


def server_rewards(reward, tokenizer) -> list[float]:
    """Scores from ``POST /get_reward`` (OpenRLHF's protocol) over real HTTP."""
    with ServerThread(create_app(reward, token="")) as server:
        def score(completions):
            request = openrlhf_request(tokenizer, completions)
            body = {"query": request["queries"], "prompts": request["prompts"], "labels": request["labels"]}
            response = httpx.post(server.url + "/get_reward", content=json.dumps(body), timeout=60,
                                  headers={"content-type": "application/json"})
            if response.status_code in (413, 422):
                raise Refused(response.text)
            assert response.status_code == 200, response.text
            return response.json()["scores"]

        return in_parts(score)


def openrlhf_rewards(reward, tokenizer, monkeypatch) -> list[float]:
    """Scores from OpenRLHF's reward-file entry point ``reward_func``."""
    entry = genrm_openrlhf.OpenRLHFReward(reward)
    monkeypatch.setitem(genrm_settings._shared, "openrlhf reward_func", entry)

    def score(completions):
        try:
            return genrm_openrlhf.reward_func(**openrlhf_request(tokenizer, completions))["scores"].tolist()
        except genrm_openrlhf.RequestError as e:
            raise Refused(str(e)) from None

    try:
        return in_parts(score)
    finally:
        entry.close()


def verl_rewards(reward, monkeypatch) -> list[float]:
    """Scores from veRL's ``compute_score_batch`` (and ``compute_score`` for one item)."""
    entry = genrm_verl.VerlReward(reward)
    monkeypatch.setitem(genrm_settings._shared, "verl compute_score", entry)
    info = {"question": QUESTION, "reference": REFERENCE}
    try:
        single = genrm_verl.compute_score("math", PATTERNS[0].completion, "42", info)
        n = len(COMPLETIONS)
        batch = genrm_verl.compute_score_batch(["math"] * n, COMPLETIONS, ["42"] * n, [info] * n)
    finally:
        entry.close()
    assert single["score"] == batch[1]["score"]
    return [out["score"] for out in batch]


@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_server_openrlhf_and_verl_rewards_are_not_raised(config, kit_tokenizer, monkeypatch):
    entry_points = {
        "server": lambda reward: server_rewards(reward, kit_tokenizer),
        "openrlhf": lambda reward: openrlhf_rewards(reward, kit_tokenizer, monkeypatch),
        "verl": lambda reward: verl_rewards(reward, monkeypatch),
    }
    for name, rewards_of in entry_points.items():
        reward = gullible_reward(config, kit_tokenizer)
        rewards = rewards_of(reward)
        assert rewards[0] < 0.05, name
        assert raised(rewards) == [], name
        # OpenRLHF sends the chat-templated prompt as the question: its control tokens are escaped too
        assert set(reward.judge.backend.decisions) == {"content"}, name
