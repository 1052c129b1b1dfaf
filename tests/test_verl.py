"""veRL's reward-function conventions: the example file loaded the way veRL loads
``custom_reward_function.path`` (``spec_from_file_location("custom_module")`` + ``reward_kwargs``),
called per item (naive manager) and with numpy object arrays (batch manager)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from genrm_plugin import settings as genrm_settings
from genrm_plugin.integrations.verl import VerlConfig, VerlReward
from genrm_plugin.judge import GenerativeJudge, JudgeConfig
from genrm_plugin.reward import GenRMReward, RewardConfig
from genrm_plugin.testing import ScriptedBackend, split_judge_prompt

REWARD_FILE = Path(__file__).resolve().parents[1] / "examples" / "verl_reward.py"


def load_like_verl(path: Path, name: str, reward_kwargs: dict | None = None):
    """veRL's ``get_custom_reward_fn``: module from file, function by name, kwargs merged in."""
    spec = importlib.util.spec_from_file_location("custom_module", str(path))
    module = importlib.util.module_from_spec(spec)
    sys.modules["custom_module"] = module
    spec.loader.exec_module(module)
    raw = getattr(module, name)
    extra = dict(reward_kwargs or {})
    return lambda *args, **kwargs: raw(*args, **{**kwargs, **extra})


def oracle_reward(mapping="win_prob", **cfg):
    def script(prompt, i):
        q, a, b = split_judge_prompt(prompt)
        assert q.startswith("What"), q  # the question from extra_info reached the judge
        if ("42" in a) == ("42" in b):
            return "no idea"
        return "[[A]]" if "42" in a else "[[B]]"

    judge = GenerativeJudge(ScriptedBackend(script), JudgeConfig(k=3))
    return VerlReward(GenRMReward(judge, RewardConfig(mapping=mapping)), VerlConfig(**cfg))


def test_reference_from_ground_truth_or_extra_info():
    verl = oracle_reward(mapping="centered")
    out = verl.score_batch(
        np.array(["math", "math", "math"], dtype=object),
        np.array(["The answer is 42.", "The answer is 41.", "The answer is 42."], dtype=object),
        np.array(["41", 42, "40"], dtype=object),  # numbers are fine as references
        np.array([{"question": "What is 6*7?"}, {"question": "What is 40+2?"},
                  {"question": "What is 50-8?", "reference": "Worked solution: 42"}], dtype=object),
    )
    assert out[0] == {"score": 1.0, "win_prob": 1.0, "abstained": 0.0}
    assert out[1] == {"score": -1.0, "win_prob": 0.0, "abstained": 0.0}
    assert out[2] == {"score": 0.0, "win_prob": 0.5, "abstained": 1.0}  # both say 42: abstains, tie stand-in


def test_errors_name_the_field():
    verl = oracle_reward()
    with pytest.raises(KeyError, match=r"extra_infos\[0\] has no 'question'"):
        verl.score_batch(["d"], ["a"], ["b"], [{}])
    with pytest.raises(TypeError, match=r"ground_truths\[1\]"):
        verl.score_batch(["d", "d"], ["a", "b"], ["r", ["list"]], [{"question": "What?"}] * 2)
    with pytest.raises(ValueError, match="differ in length"):
        verl.score_batch(["d"], ["a", "b"], ["r"], None)
    relaxed = VerlReward(GenRMReward(GenerativeJudge(ScriptedBackend(lambda p, i: "[[A]]"), JudgeConfig(k=1, swap=False))),
                         VerlConfig(require_question=False))
    assert relaxed.score_batch(["d"], ["a"], ["b"], None)[0]["win_prob"] == 1.0


def test_example_file_loaded_like_verl(tmp_path, monkeypatch, tiny_backend):
    from genrm_plugin.toy import save_tiny

    model_dir = save_tiny(tmp_path / "judge")
    config = tmp_path / "genrm.yaml"
    config.write_text(f"model: {model_dir}\nmode: no_cot\nswap: true\nmapping: logit\nquestion_key: prompt\n")
    monkeypatch.setenv("GENRM_CONFIG", str(config))
    monkeypatch.setattr(genrm_settings, "_shared", {})
    single = load_like_verl(REWARD_FILE, "compute_score", {"unused_option": 1})
    batch = load_like_verl(REWARD_FILE, "compute_score_batch")

    infos = [{"prompt": "What is 17 + 25?"}, {"prompt": "Capital of France?", "reference": "Paris."}]
    one = single(data_source="gsm8k", solution_str="17 + 25 = 42.", ground_truth="32", extra_info=infos[0])
    many = batch(
        data_sources=np.array(["gsm8k", "x"], dtype=object),
        solution_strs=np.array(["17 + 25 = 42.", "Lyon."], dtype=object),
        ground_truths=np.array(["32", "unused"], dtype=object),
        extra_infos=np.array(infos, dtype=object),
    )
    reward = genrm_settings._shared["verl compute_score"].reward
    assert reward.judge.config.mode == "no_cot" and reward.config.mapping == "logit"
    prefs = reward.preferences(["What is 17 + 25?", "Capital of France?"], ["17 + 25 = 42.", "Lyon."], ["32", "Paris."])
    assert one["win_prob"] == pytest.approx(prefs[0].p_a, abs=1e-6) == pytest.approx(many[0]["win_prob"], abs=1e-6)
    for out, pref in zip(many, prefs):
        assert 0.0 <= out["win_prob"] <= 1.0 and out["abstained"] == 0.0
        assert out["score"] == pytest.approx(reward.reward_of(pref), abs=1e-6)


def test_concurrent_compute_score_calls_share_judge_calls():
    """veRL 0.9's reward loop calls compute_score from many threads: the calls are micro-batched."""
    from concurrent.futures import ThreadPoolExecutor

    from genrm_plugin.serving.batcher import BatchConfig

    verl = oracle_reward()
    verl.batch = BatchConfig(max_batch=64, max_wait_ms=200)
    rows = [(f"answer {'42' if i % 3 else 41} #{i}", "41", {"question": f"What is 6*7? ({i})"}) for i in range(24)]
    expected = oracle_reward().score_batch(["d"] * 24, *(list(c) for c in zip(*rows)))
    try:
        with ThreadPoolExecutor(24) as pool:
            got = list(pool.map(lambda r: verl.score_one("d", *r), rows))
    finally:
        verl.close()
    assert got == expected
    calls = verl.reward.judge.backend.calls
    assert sum(n for _, n, _ in calls) == 48  # 24 items x 2 orders, each judged once
    assert len(calls) < 24 / 2, calls  # shared judge calls, not one per response
