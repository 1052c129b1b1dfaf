"""OpenRLHF's own reward client against our server and our reward file.

``openrlhf.utils.agent.SingleTurnAgentExecutor`` (installed with ``pip install --no-deps openrlhf``)
runs a rollout through a stand-in engine that answers fixed token ids, decodes prompt + response into
the ``query`` exactly as OpenRLHF does, and then either POSTs to ``--reward.remote_url`` or loads a
``.py`` file with ``spec_from_file_location`` and calls its ``reward_func`` from a worker thread.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

agent = pytest.importorskip("openrlhf.utils.agent", reason="`pip install --no-deps openrlhf aiohttp pylatexenc`")

from genrm_plugin import settings as genrm_settings  # noqa: E402
from genrm_plugin.integrations import openrlhf as genrm_openrlhf  # noqa: E402
from genrm_plugin.judge import GenerativeJudge, JudgeConfig  # noqa: E402
from genrm_plugin.prompts import neutralize  # noqa: E402
from genrm_plugin.reward import GenRMReward  # noqa: E402
from genrm_plugin.server import create_app  # noqa: E402
from genrm_plugin.serving.batcher import BatchConfig  # noqa: E402
from genrm_plugin.serving.runner import ServerThread  # noqa: E402
from genrm_plugin.testing import ScriptedBackend, split_judge_prompt  # noqa: E402

REWARD_FILE = Path(__file__).resolve().parents[1] / "examples" / "openrlhf_reward_func.py"


class ScriptedEngine:
    """Stands in for OpenRLHF's vLLM engine: answers each prompt with a given response's token ids."""

    def __init__(self, tokenizer, responses: dict[str, str]) -> None:
        self.tokenizer, self.responses = tokenizer, responses

    async def generate(self, prompt_token_ids, sampling_params, multi_modal_data=None):
        prompt = self.tokenizer.decode(prompt_token_ids, skip_special_tokens=False)
        text = self.responses[prompt]
        ids = self.tokenizer(text, add_special_tokens=False).input_ids
        out = SimpleNamespace(token_ids=ids, text=text, finish_reason="stop", logprobs=None)
        return SimpleNamespace(outputs=[out])


def chat(tokenizer, question: str) -> str:
    return tokenizer.apply_chat_template([{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True)


def oracle(prompt: str, i: int) -> str:
    _, a, b = split_judge_prompt(prompt)
    if ("42" in a) == ("42" in b):
        return "unsure"
    return "[[A]]" if "42" in a else "[[B]]"


def rollouts(executor, tokenizer, cases):
    """Run OpenRLHF's executor on (question, response, reference) cases concurrently."""
    prompts = [chat(tokenizer, q) for q, _, _ in cases]
    engine = ScriptedEngine(tokenizer, {p: r + tokenizer.eos_token for p, (_, r, _) in zip(prompts, cases)})
    params = SimpleNamespace(max_tokens=64, logprobs=None)

    async def run():
        return await asyncio.gather(*(
            executor.execute(p, ref, params, max_length=512, hf_tokenizer=tokenizer, llm_engine=engine)
            for p, (_, _, ref) in zip(prompts, cases)
        ))

    return asyncio.run(run())


CASES = [
    ("What is 17 + 25?", "17 + 25 = 42.", "17 + 25 = 32."),
    ("What is 40 + 2?", "It is 41.", "It is 42."),
    ("What is 6 * 7?", "Maybe 41?", "Maybe 43?"),  # neither has 42: the judge abstains
    ("What is 50 - 8?", "Exactly 42", "About 40"),
]


def test_openrlhf_http_client_against_our_server(tiny_model_and_tokenizer):
    _, tokenizer = tiny_model_and_tokenizer
    backend = ScriptedBackend(oracle)
    reward = GenRMReward(GenerativeJudge(backend, JudgeConfig(k=3, swap=True)))
    seen = []
    backend.script = lambda p, i: (seen.append(split_judge_prompt(p)), oracle(p, i))[1]
    app = create_app(reward, batch=BatchConfig(max_wait_ms=50))
    with ServerThread(app) as a, ServerThread(create_app(reward)) as b:
        # Two endpoints: OpenRLHF rotates over them.
        executor = agent.SingleTurnAgentExecutor(remote_rm_url=[a.url + "/get_reward", b.url + "/get_reward"])
        outputs = rollouts(executor, tokenizer, CASES)
    assert [o["scores"] for o in outputs] == [[1.0], [0.0], [0.5], [1.0]]
    assert [o["reward"] for o in outputs] == [[1.0], [0.0], [0.5], [1.0]]
    assert [o["extra_logs"]["genrm_abstained"] for o in outputs] == [0.0, 0.0, 1.0, 0.0]
    # The judge saw the bare response (prompt cut off, EOS stripped) and the label as the reference.
    shown = {(q, frozenset((x, y))) for q, x, y in seen}
    for question, response, reference in CASES:
        assert (neutralize(chat(tokenizer, question)), frozenset((response, reference))) in shown  # control tokens escaped
    # OpenRLHF turns the reward into its experience tensors like this (samples_generator).
    assert torch.tensor([outputs[0]["reward"]]).numel() == 1


def test_openrlhf_loads_the_reward_file(tmp_path, monkeypatch, tiny_model_and_tokenizer):
    from genrm_plugin.toy import save_tiny

    _, tokenizer = tiny_model_and_tokenizer
    model_dir = save_tiny(tmp_path / "judge")
    config = tmp_path / "genrm.yaml"
    config.write_text(f"model: {model_dir}\nmode: no_cot\nswap: true\nmapping: centered\nmax_wait_ms: 200\nbatch_size: 8\n")
    monkeypatch.setenv("GENRM_CONFIG", str(config))
    monkeypatch.setattr(genrm_settings, "_shared", {})
    executor = agent.SingleTurnAgentExecutor(remote_rm_url=str(REWARD_FILE))  # spec_from_file_location inside
    try:
        outputs = rollouts(executor, tokenizer, CASES)
        built = genrm_openrlhf.default_reward()
        assert built is not None and built.reward.judge.config.mode == "no_cot"
        assert built.batcher.stats["requests"] == 4 and built.batcher.stats["batches"] < 4  # threads were batched
        prefs = built.reward.preferences(
            [chat(tokenizer, q) for q, _, _ in CASES], [r for _, r, _ in CASES], [ref for _, _, ref in CASES]
        )
        for out, pref in zip(outputs, prefs):
            assert isinstance(out["reward"], torch.Tensor) and out["reward"].shape == (1,)
            assert float(out["scores"][0]) == pytest.approx(pref.p_a, abs=1e-5)
            assert float(out["reward"][0]) == pytest.approx(2 * pref.p_a - 1, abs=1e-5)
            assert 0.0 <= float(out["scores"][0]) <= 1.0
            assert out["extra_logs"]["genrm_items"] == 1.0
        direct = genrm_openrlhf.reward_func(
            [chat(tokenizer, "q") + "a" + tokenizer.eos_token, chat(tokenizer, "q") + "b"], [chat(tokenizer, "q")] * 2, ["r", "r"]
        )
        assert direct["rewards"].shape == (2,) and direct["scores"].dtype == torch.float32
        with pytest.raises(genrm_openrlhf.RequestError, match=r"query\[1\]"):
            genrm_openrlhf.reward_func(["pa", "xb"], ["p", "p"], ["r", "r"])
    finally:
        for built in genrm_settings._shared.values():
            built.close()


def test_missing_config_file_is_named(monkeypatch):
    monkeypatch.setenv("GENRM_CONFIG", "/nonexistent/genrm.yaml")
    monkeypatch.setattr(genrm_settings, "_shared", {})
    with pytest.raises(FileNotFoundError, match="GENRM_CONFIG"):
        genrm_openrlhf.reward_func(["q"], ["q"], ["r"])


def test_parse_request_rules():
    cfg = genrm_openrlhf.OpenRLHFConfig(question_pattern=r"<\|user\|>(.*?)<\|end\|>")
    items = genrm_openrlhf.parse_request(cfg, ["<|user|>Q?<|end|><|assistant|>ans<|end|>\n"], ["<|user|>Q?<|end|><|assistant|>"], ["ref"])
    assert (items[0].question, items[0].response, items[0].reference) == ("Q?", "ans", "ref")
    with pytest.raises(genrm_openrlhf.RequestError, match="question_pattern"):
        genrm_openrlhf.parse_request(cfg, ["xy"], ["x"], ["r"])
    raw = genrm_openrlhf.OpenRLHFConfig(response_from="query", strip_suffixes=[])
    assert genrm_openrlhf.parse_request(raw, ["just the answer</s>"], ["Q"], ["r"])[0].response == "just the answer</s>"
