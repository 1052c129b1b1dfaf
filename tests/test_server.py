"""The reward server over real HTTP on 127.0.0.1: protocol, micro-batching, guards and abuse.

Scripted judges give known-exact preferences (an oracle that prefers answers containing "42");
one server runs the tiny transformers model in no-CoT mode and is checked against the same
reward called in-process.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from genrm_plugin.integrations.openrlhf import OpenRLHFConfig
from genrm_plugin.judge import GenerativeJudge, JudgeConfig
from genrm_plugin.prompts import neutralize
from genrm_plugin.reward import GenRMReward, RewardConfig
from genrm_plugin.server import ServeConfig, create_app
from genrm_plugin.serving.batcher import BatchConfig
from genrm_plugin.serving.runner import ServerThread
from genrm_plugin.testing import ScriptedBackend, split_judge_prompt

PROMPT = "<|user|>What is 17 + 25?<|end|><|assistant|>"


def oracle(prompt: str, i: int) -> str:
    """Prefers the answer containing 42; abstains on 'mumble'; fails on 'BOOM'."""
    _, a, b = split_judge_prompt(prompt)
    if "BOOM" in a + b:
        raise RuntimeError("judge exploded")
    if "mumble" in a + b:
        return "I cannot tell."
    if ("42" in a) == ("42" in b):
        return "[[A]]" if i % 2 == 0 else "[[B]]"
    return "[[A]]" if "42" in a else "[[B]]"


def scripted_reward(mapping="win_prob", **judge):
    backend = ScriptedBackend(oracle)
    cfg = JudgeConfig(mode="cot", k=3, swap=True, **judge)
    return GenRMReward(GenerativeJudge(backend, cfg), RewardConfig(mapping=mapping)), backend


@pytest.fixture(scope="module")
def server():
    reward, backend = scripted_reward()
    app = create_app(reward, ServeConfig(max_items=64, max_body_bytes=20_000), batch=BatchConfig(max_batch=64, max_wait_ms=30))
    with ServerThread(app) as s:
        s.backend = backend
        yield s


def payload(responses, references, prompt=PROMPT):
    return {"query": [prompt + r + "<|end|>" for r in responses], "prompts": [prompt] * len(responses), "labels": list(references)}


def post(server, path, body=None, **kwargs):
    return httpx.post(server.url + path, json=body, timeout=30, **kwargs)


def assert_alive(server):
    r = post(server, "/get_reward", payload(["It is 42."], ["It is 32."]))
    assert r.status_code == 200 and r.json()["scores"] == [1.0]


def test_get_reward_protocol_exact_scores(server):
    r = post(server, "/get_reward", payload(["17 + 25 = 42.", "It is 32.", "mumble"], ["It is 32.", "It is 42.", "It is 42."]))
    assert r.status_code == 200
    body = r.json()
    assert body["scores"] == [1.0, 0.0, 0.5]  # the all-abstain item gets the tie stand-in...
    assert body["rewards"] == [1.0, 0.0, 0.5]
    assert body["extra_logs"] == {"genrm_abstained": 1.0, "genrm_items": 3.0}  # ...and is counted


def test_response_is_cut_from_query_and_end_token_stripped(server):
    server.backend.calls.clear()
    seen = []
    original = server.backend.script
    server.backend.script = lambda p, i: (seen.append(split_judge_prompt(p)), original(p, i))[1]
    try:
        assert post(server, "/get_reward", payload(["It is 42."], ["It is 32."])).status_code == 200
    finally:
        server.backend.script = original
    question, a, b = seen[0]
    assert question == neutralize(PROMPT) and {a, b} == {"It is 42.", "It is 32."}  # its control tokens escaped


def test_mappings_and_reference_in_label_field():
    reward, _ = scripted_reward(mapping="centered")
    app = create_app(reward, openrlhf=OpenRLHFConfig(reference_from="label_field", label_field="ref"))
    with ServerThread(app) as s:
        labels = [json.dumps({"ref": "It is 32."}), {"ref": "It is 42."}]
        r = post(s, "/get_reward", {"query": [PROMPT + "42", PROMPT + "32"], "prompts": [PROMPT] * 2, "labels": labels})
        assert r.status_code == 200 and r.json()["rewards"] == [1.0, -1.0] and r.json()["scores"] == [1.0, 0.0]
        r = post(s, "/get_reward", {"query": [PROMPT + "42"], "prompts": [PROMPT], "labels": [{"other": 1}]})
        assert r.status_code == 422 and r.json()["error"]["fields"] == ["labels[0]"]


def test_after_marker_extraction_without_prompts():
    reward, backend = scripted_reward()
    cfg = OpenRLHFConfig(response_from="after_marker", response_marker="<|assistant|>")
    with ServerThread(create_app(reward, openrlhf=cfg)) as s:
        r = post(s, "/get_reward", {"query": [PROMPT + "It is 42.<|end|>"], "labels": ["It is 32."]})
        assert r.status_code == 200 and r.json()["scores"] == [1.0]
        r = post(s, "/get_reward", {"query": ["no marker here"], "labels": ["x"]})
        assert r.status_code == 422 and r.json()["error"]["fields"] == ["query[0]"]


def test_compare_endpoint(server):
    body = {"prompts": ["q", "q"], "answers_a": ["42", "mumble"], "answers_b": ["41", "42"], "include_rationales": True}
    r = post(server, "/v1/compare", body)
    assert r.status_code == 200
    first, second = r.json()["preferences"]
    assert first["p_a"] == 1.0 and first["winner"] == "A" and first["votes_a"] == 6 and first["consistent"] is True
    assert len(first["rationales"]) == 6
    assert second["p_a"] is None and second["winner"] is None and second["abstain"] == 6  # no stand-in here
    r = post(server, "/v1/compare", {"prompts": ["q"], "answers_a": ["42"], "answers_b": ["41"]})
    assert r.json()["preferences"][0]["rationales"] is None


def test_concurrent_requests_are_micro_batched(server):
    stats = server.server.config.app.state.batchers["get_reward"].stats
    before = dict(stats)

    async def fire():
        async with httpx.AsyncClient(timeout=30) as client:
            bodies = [payload([f"answer {i}: 42"], [f"ref {i}: 41"]) if i % 2 else payload([f"answer {i}: 41"], [f"ref {i}: 42"])
                      for i in range(16)]
            return await asyncio.gather(*(client.post(server.url + "/get_reward", json=b) for b in bodies))

    responses = asyncio.run(fire())
    assert all(r.status_code == 200 for r in responses)
    assert [r.json()["scores"][0] for r in responses] == [1.0 if i % 2 else 0.0 for i in range(16)]
    assert stats["requests"] - before.get("requests", 0) == 16
    assert stats["batches"] - before.get("batches", 0) < 8  # 16 requests, few judge calls


def test_failing_backend_answers_503_and_spares_batch_neighbours(server):
    async def fire():
        async with httpx.AsyncClient(timeout=30) as client:
            bodies = [payload(["It is 42."], ["It is 32."]), payload(["BOOM"], ["It is 32."]), payload(["It is 32."], ["It is 42."])]
            return await asyncio.gather(*(client.post(server.url + "/get_reward", json=b) for b in bodies))

    good, bad, good2 = asyncio.run(fire())
    assert bad.status_code == 503
    error = bad.json()["error"]
    assert error["code"] == "backend_error" and error["request_id"] == bad.headers["x-request-id"]
    assert "judge exploded" not in bad.text and "RuntimeError" not in bad.text  # details stay in the server log
    assert good.status_code == 200 and good.json()["scores"] == [1.0]
    assert good2.status_code == 200 and good2.json()["scores"] == [0.0]
    assert_alive(server)
    assert server.server.config.app.state.batchers["get_reward"].stats["failures"] >= 1


def test_backend_failure_without_isolation_fails_the_whole_batch():
    reward, _ = scripted_reward()
    app = create_app(reward, batch=BatchConfig(max_wait_ms=100, isolate_failures=False))
    with ServerThread(app) as s:
        async def fire():
            async with httpx.AsyncClient(timeout=30) as client:
                bodies = [payload(["It is 42."], ["x"]), payload(["BOOM"], ["x"])]
                return await asyncio.gather(*(client.post(s.url + "/get_reward", json=b) for b in bodies))

        assert [r.status_code for r in asyncio.run(fire())] == [503, 503]
        assert_alive(s)


@pytest.mark.parametrize(
    "body, status, kind, fields",
    [
        (b'{"query": ["a"', 400, "invalid_json", []),
        (b"not json at all", 400, "invalid_json", []),
        (json.dumps({"query": "a string", "prompts": ["p"], "labels": ["r"]}).encode(), 422, "invalid_request", ["query"]),
        (json.dumps({"query": ["ok", 7], "prompts": ["o", "o"], "labels": ["r", "r"]}).encode(), 422, "invalid_request", ["query[1]"]),
        (json.dumps({"prompts": ["p"], "labels": ["r"]}).encode(), 422, "invalid_request", ["query"]),
        (json.dumps({"query": ["pa", "pb"], "prompts": ["p"], "labels": ["r", "r"]}).encode(), 422, "invalid_request", ["query"]),
        (json.dumps({"query": ["pa"], "prompts": ["p"]}).encode(), 422, "invalid_request", ["labels"]),
        (json.dumps({"query": ["pa", "xb"], "prompts": ["p", "p"], "labels": ["r", "r"]}).encode(), 422, "invalid_request", ["query[1]"]),
        (json.dumps({"query": ["pa"], "prompts": ["p"], "labels": [3]}).encode(), 422, "invalid_request", ["labels[0]"]),
        (json.dumps({"query": ["pa"] * 65, "prompts": ["p"] * 65, "labels": ["r"] * 65}).encode(), 413, "too_many_items", []),
        (json.dumps({"query": ["p" + "x" * 30_000], "prompts": ["p"], "labels": ["r"]}).encode(), 413, "body_too_large", []),
    ],
    ids=["truncated-json", "not-json", "query-not-list", "query-item-int", "query-missing", "length-mismatch",
         "labels-missing", "query-without-prompt", "label-not-str", "too-many-items", "oversize-body"],
)
def test_abuse_gets_json_errors_and_server_survives(server, body, status, kind, fields):
    r = httpx.post(server.url + "/get_reward", content=body, headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == kind and error["message"]
    for f in fields:
        assert f in error["fields"]
    assert_alive(server)


def test_oversize_streamed_body_without_length(server):
    def chunks():
        yield b'{"query": ["'
        for _ in range(10):
            yield b"x" * 4096
        yield b'"], "prompts": ["x"], "labels": ["r"]}'

    r = httpx.post(server.url + "/get_reward", content=chunks(), headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"
    assert_alive(server)


def test_compare_abuse(server):
    r = post(server, "/v1/compare", {"prompts": ["q"], "answers_a": ["a", "b"], "answers_b": ["b"]})
    assert r.status_code == 422 and set(r.json()["error"]["fields"]) == {"prompts", "answers_a", "answers_b"}
    r = post(server, "/v1/compare", {"prompts": ["q"], "answers_a": [None], "answers_b": ["b"]})
    assert r.status_code == 422 and r.json()["error"]["fields"] == ["answers_a[0]"]
    r = post(server, "/v1/compare", {"prompts": ["q"], "answers_a": ["a"], "answers_b": ["b"], "extra": 1})
    assert r.status_code == 422 and r.json()["error"]["fields"] == ["extra"]
    r = post(server, "/v1/compare", {"prompts": ["q"], "answers_a": ["BOOM"], "answers_b": ["b"]})
    assert r.status_code == 503 and r.json()["error"]["code"] == "backend_error"
    assert httpx.get(server.url + "/nope").status_code == 404
    assert_alive(server)


def test_bearer_token():
    reward, _ = scripted_reward()
    with ServerThread(create_app(reward, token="s3cret")) as s:
        good = payload(["It is 42."], ["It is 32."])
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}, {"Authorization": "Basic s3cret"}):
            r = post(s, "/get_reward", good, headers=headers)
            assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
        r = httpx.post(s.url + "/get_reward", content=b"{broken", headers={"content-type": "application/json"})
        assert r.status_code == 401  # the token is checked before the body is looked at
        assert httpx.get(s.url + "/health").status_code == 200  # liveness stays open
        r = post(s, "/get_reward", good, headers={"Authorization": "Bearer s3cret"})
        assert r.status_code == 200 and r.json()["scores"] == [1.0]


def test_token_from_environment(monkeypatch):
    monkeypatch.setenv("GENRM_SERVER_TOKEN", "from-env")
    reward, _ = scripted_reward()
    with ServerThread(create_app(reward)) as s:
        assert post(s, "/get_reward", payload(["42"], ["41"])).status_code == 401
        assert post(s, "/get_reward", payload(["42"], ["41"]), headers={"Authorization": "Bearer from-env"}).status_code == 200


def test_request_timeout_answers_503(tiny_backend):
    import time

    backend = ScriptedBackend(lambda p, i: (time.sleep(0.5), "[[A]]")[1])
    reward = GenRMReward(GenerativeJudge(backend, JudgeConfig(k=1, swap=False)))
    with ServerThread(create_app(reward, ServeConfig(request_timeout_s=0.1))) as s:
        r = post(s, "/get_reward", payload(["a"], ["b"]))
        assert r.status_code == 503 and r.json()["error"]["code"] == "timeout"
        assert httpx.get(s.url + "/health").status_code == 200


def test_health_is_minimal_without_the_token_and_detailed_with_it():
    reward, _ = scripted_reward()
    with ServerThread(create_app(reward, token="s3cret")) as s:
        assert post(s, "/get_reward", payload(["42"], ["41"]), headers={"Authorization": "Bearer s3cret"}).status_code == 200
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            assert httpx.get(s.url + "/health", headers=headers).json() == {"status": "ok"}
        h = httpx.get(s.url + "/health", headers={"Authorization": "Bearer s3cret"}).json()
    assert h["status"] == "ok" and h["backend"] == "ScriptedBackend"
    assert h["judge"] == {"mode": "cot", "k": 3, "swap": True} and h["reward"]["mapping"] == "win_prob"
    assert h["counters"]["get_reward"]["batches"] >= 1 and h["limits"]["max_item_tokens"] > 0


def test_tiny_model_server_matches_in_process_reward(tiny_backend):
    reward = GenRMReward(GenerativeJudge(tiny_backend, JudgeConfig(mode="no_cot")), RewardConfig(mapping="logit"))
    responses, references = ["17 + 25 = 42.", "It is 32.", "forty-two"], ["It is 32.", "17 + 25 = 42.", "42"]
    with ServerThread(create_app(reward)) as s:
        body = post(s, "/get_reward", payload(responses, references)).json()
    prefs = reward.preferences([PROMPT] * 3, responses, references)
    assert body["scores"] == pytest.approx([p.p_a for p in prefs], abs=1e-6)
    assert all(0.0 <= x <= 1.0 for x in body["scores"])
    assert body["rewards"] == pytest.approx([reward.reward_of(p) for p in prefs], abs=1e-6)
    assert body["extra_logs"]["genrm_abstained"] == 0.0


def test_config_validation():
    with pytest.raises(ValueError, match="max_items"):
        ServeConfig(max_items=0)
    with pytest.raises(ValueError, match="response_marker"):
        OpenRLHFConfig(response_from="after_marker")
    with pytest.raises(ValueError, match="capturing group"):
        OpenRLHFConfig(question_pattern="no group")
    with pytest.raises(ValueError, match="max_batch"):
        BatchConfig(max_batch=0)
    reward, _ = scripted_reward()
    with pytest.raises(ValueError, match="reference_fn"):
        create_app(reward, openrlhf=OpenRLHFConfig(reference_from="reference_fn"))


def test_genrm_serve_command_with_shared_yaml(tmp_path):
    """``genrm serve --config`` in a subprocess: the tiny judge, a YAML that also holds veRL fields."""
    import os
    import subprocess
    import sys
    import time

    with ServerThread(create_app(scripted_reward()[0])) as probe:  # a free port
        port = probe.port
    config = tmp_path / "genrm.yaml"
    config.write_text(f"model: toy\nmode: no_cot\nport: {port}\nmax_wait_ms: 1\nquestion_key: prompt\nlog_level: warning\n")
    proc = subprocess.Popen([sys.executable, "-m", "genrm_plugin.cli", "serve", "--config", str(config), "--mapping", "centered"],
                            env=dict(os.environ, GENRM_SERVER_TOKEN="t0ken"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    auth = {"Authorization": "Bearer t0ken"}
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                health = httpx.get(url + "/health", timeout=2, headers=auth)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read()
                assert time.monotonic() < deadline, "genrm serve did not come up"
                time.sleep(0.3)
        assert health.json()["judge"]["mode"] == "no_cot" and health.json()["reward"]["mapping"] == "centered"
        body = httpx.post(url + "/get_reward", json=payload(["It is 42."], ["It is 32."]), timeout=60, headers=auth).json()
        assert 0.0 <= body["scores"][0] <= 1.0 and body["rewards"][0] == pytest.approx(2 * body["scores"][0] - 1)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_batcher_groups_a_burst_and_stops_at_a_quiet_gap():
    import time

    from genrm_plugin.serving.batcher import MicroBatcher

    sizes = []
    batcher = MicroBatcher(lambda items: (sizes.append(len(items)), [x * 10 for x in items])[1],
                           BatchConfig(max_batch=5, max_wait_ms=300, quiet_ms=40))

    async def go():
        burst = [asyncio.create_task(batcher.submit([i])) for i in range(3)]
        await asyncio.sleep(0.01)
        late = asyncio.create_task(batcher.submit([3]))  # within quiet_ms of the burst: joins it
        results = await asyncio.gather(*burst, late)
        start = time.perf_counter()
        alone = await batcher.submit([7])  # nobody follows: dispatched after quiet_ms, not max_wait_ms
        waited = time.perf_counter() - start
        big = await batcher.submit(list(range(8)))  # larger than max_batch: runs whole, alone
        await batcher.close()
        return results, alone, waited, big

    results, alone, waited, big = asyncio.run(go())
    assert results == [[0], [10], [20], [30]] and alone == [70] and big == [x * 10 for x in range(8)]
    assert sizes == [4, 1, 8]
    assert waited < 0.25
