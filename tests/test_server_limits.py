"""Server limits that bound the work of one request, on real uvicorn servers on 127.0.0.1.

Item length (characters, then tokens) with 413 or truncation; linear end-marker stripping off the
event loop; invalid Unicode as 422; error bodies without exception text or upstream details;
minimal ``/health`` and no ``/docs``; the byte-capped queue; bisecting failure isolation and fair
scheduling of failing clients.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from genrm_plugin.integrations.openrlhf import _strip_end
from genrm_plugin.settings import END_STRINGS
from genrm_plugin.judge import GenerativeJudge, JudgeConfig
from genrm_plugin.reward import GenRMReward
from genrm_plugin.server import ServeConfig, create_app
from genrm_plugin.serving.batcher import BatchConfig, MicroBatcher
from genrm_plugin.serving.config import memory_estimate
from genrm_plugin.serving.fairness import FairQueue, Job
from genrm_plugin.serving.limits import ItemLimits, TokenMeter, fair_shares
from genrm_plugin.serving.runner import ServerThread
from genrm_plugin.testing import ScriptedBackend, split_judge_prompt

PROMPT = "<|user|>What is 17 + 25?<|end|><|assistant|>"


def verdict_for_42(prompt: str, i: int) -> str:
    _, a, b = split_judge_prompt(prompt)
    if "POISON" in a + b:
        raise RuntimeError("secret-exception-text at http://10.9.8.7:1234/v1")
    return "[[A]]" if ("42" in a) >= ("42" in b) else "[[B]]"


def reward_over(backend, **judge) -> GenRMReward:
    return GenRMReward(GenerativeJudge(backend, JudgeConfig(**({"mode": "cot", "k": 1, "swap": False} | judge))))


def payload(responses, references, prompt=PROMPT):
    return {"query": [prompt + r + "<|end|>" for r in responses], "prompts": [prompt] * len(responses), "labels": list(references)}


def post(server, path, body, **kwargs):
    return httpx.post(server.url + path, json=body, timeout=30, **kwargs)


@pytest.fixture(scope="module")
def server():
    backend = ScriptedBackend(verdict_for_42)
    app = create_app(reward_over(backend), ServeConfig(max_item_tokens=2000), batch=BatchConfig(max_wait_ms=5))
    with ServerThread(app) as s:
        s.backend = backend
        yield s


# -- item length ----------------------------------------------------------------------------------
def test_100kb_item_is_refused_in_under_a_second_naming_item_and_limit(server):
    started = time.perf_counter()
    r = post(server, "/get_reward", payload(["fine", "x " * 50_000], ["ref", "ref"]))
    assert time.perf_counter() - started < 1.0
    assert r.status_code == 413 and r.json()["error"]["code"] == "item_too_long"
    assert r.json()["error"]["fields"] == ["query[1]"] and "32000 characters" in r.json()["error"]["message"]
    r = post(server, "/get_reward", payload(["x " * 2500], ["ref"]))  # under the characters, over the tokens
    assert r.status_code == 413 and "the limit is 2000 tokens" in r.json()["error"]["message"]
    r = post(server, "/v1/compare", {"prompts": ["q", "q"], "answers_a": ["a", "a"], "answers_b": ["b", "y " * 3000]})
    assert r.status_code == 413 and r.json()["error"]["fields"] == ["prompts[1]", "answers_a[1]", "answers_b[1]"]


def test_default_token_limit_comes_from_the_judge_context(tiny_backend):
    reward = reward_over(tiny_backend, mode="no_cot")
    app = create_app(reward)
    limit = app.state.limits.max_tokens
    assert 1500 < limit < 2048  # the kit model's 2048 positions less the judge template
    with ServerThread(app) as s:
        started = time.perf_counter()
        r = post(s, "/get_reward", payload(["The sum is 42. " * 7000], ["ref"]))
        assert time.perf_counter() - started < 1.0 and r.status_code == 413
        assert f"the limit is {16 * limit} characters" in r.json()["error"]["message"]
        r = post(s, "/get_reward", payload(["42 " * (limit + 10)], ["ref"]))
        assert r.status_code == 413 and f"the limit is {limit} tokens" in r.json()["error"]["message"]


def test_truncation_when_configured(tiny_model_and_tokenizer):
    seen = []
    backend = ScriptedBackend(lambda p, i: (seen.append(split_judge_prompt(p)), verdict_for_42(p, i))[1])
    app = create_app(reward_over(backend), ServeConfig(max_item_tokens=60, over_limit="truncate"))
    with ServerThread(app) as s:
        r = post(s, "/get_reward", payload(["It is 42. " + "blah " * 5000], ["short ref"]))
        assert r.status_code == 200 and r.json()["scores"] == [1.0]
    question, shown, reference = seen[0]
    assert "What is 17 + 25?" in question and reference == "short ref"  # the question is whole
    assert shown.startswith("It is 42. blah") and len(shown.split()) <= 60
    _, tokenizer = tiny_model_and_tokenizer
    limits = ItemLimits(10, truncate=True, meter=TokenMeter(tokenizer))
    (question, answer, reference), = limits.apply([("q", "the sum is 42 " * 20, "r")])
    assert (question, reference) == ("q", "r") and sum(TokenMeter(tokenizer).counts([question, answer, reference])) <= 10
    assert ("the sum is 42 " * 20).startswith(answer)
    assert fair_shares([1, 50, 100], 31) == [1, 15, 15] and fair_shares([5, 5], 100) == [5, 5]


# -- end markers, off the event loop ----------------------------------------------------------------
def test_end_marker_stripping_matches_the_repeated_rstrip_rule():
    def reference(text, suffixes):  # the old quadratic definition
        changed = True
        while changed:
            changed = False
            stripped = text.rstrip()
            for suffix in suffixes:
                if suffix and stripped.endswith(suffix):
                    text, changed = stripped[: -len(suffix)], True
                    break
        return text

    rng = random.Random(0)
    parts = ["</s>", "<|end|>", " ", "\n", "a", "s>", "<eos>", "x", " \t ", "<"]
    for suffixes in (END_STRINGS, ["</s>", "s>"], ["s>", "</s>"], ["ab ", "b"], []):
        for _ in range(2000):
            text = "".join(rng.choice(parts) for _ in range(rng.randint(0, 12)))
            assert _strip_end(text, suffixes) == reference(text, suffixes), (text, suffixes)
    started = time.perf_counter()
    assert _strip_end("answer  " + "</s> " * 640_000, END_STRINGS) == "answer  " and time.perf_counter() - started < 0.5


def test_megabytes_of_end_markers_are_fast_and_health_stays_responsive(server):
    body = json.dumps(payload(["It is 42." + "</s>" * 640_000], ["It is 41."])).encode()
    assert len(body) > 2_500_000

    async def scenario():
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            await client.get("/health")
            started = time.perf_counter()
            big = asyncio.create_task(client.post("/get_reward", content=body, headers={"content-type": "application/json"}))
            health = []
            while not big.done():
                sent = time.perf_counter()
                assert (await client.get("/health")).status_code == 200
                health.append(time.perf_counter() - sent)
                await asyncio.sleep(0.005)
            return await big, time.perf_counter() - started, health

    response, elapsed, health = asyncio.run(scenario())
    assert response.status_code == 200 and response.json()["scores"] == [1.0]
    assert elapsed < 1.0, elapsed
    assert health and max(health) < 0.1, health


# -- invalid Unicode, error bodies, /health, /docs -----------------------------------------------------
@pytest.mark.parametrize(
    "path, body, field",
    [
        ("/get_reward", '{"query": ["%s\\ud800"], "prompts": ["%s"], "labels": ["r"]}' % (PROMPT, PROMPT), "query[0]"),
        ("/get_reward", '{"query": ["%s ok"], "prompts": ["%s"], "labels": ["r\\udfff"]}' % (PROMPT, PROMPT), "labels[0]"),
        ("/v1/compare", '{"prompts": ["q"], "answers_a": ["a"], "answers_b": ["\\ud83d"]}', "answers_b[0]"),
    ],
    ids=["query", "label", "compare"],
)
def test_lone_surrogates_are_422_before_the_judge(server, path, body, field):
    before = len(server.backend.calls)
    r = httpx.post(server.url + path, content=body.encode(), headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_unicode" and r.json()["error"]["fields"] == [field]
    assert len(server.backend.calls) == before
    r = httpx.post(server.url + path, content=b'{"query": ["\xed\xa0\x80"]}', headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_unicode"


def test_error_bodies_hold_no_exception_text_upstream_url_or_body():
    from fastapi import FastAPI
    from fastapi.responses import PlainTextResponse

    from genrm_plugin.backends.openai import OpenAIBackend, OpenAIConfig

    upstream = FastAPI()
    secret = "UPSTREAM-SECRET-BODY api_key=sk-123"

    @upstream.post("/v1/completions")
    async def completions():
        return PlainTextResponse(secret, status_code=400)

    with ServerThread(upstream) as up:
        remote = OpenAIBackend("judge", OpenAIConfig(base_urls=[up.url + "/v1"], max_retries=0))
        app = create_app(reward_over(remote), ServeConfig(max_item_tokens=100))
        app.add_api_route("/crash", lambda: 1 / 0)
        with ServerThread(app) as s:
            answers = [post(s, "/get_reward", payload(["It is 42."], ["x"])), post(s, "/v1/compare", {"prompts": ["q"], "answers_a": ["a"], "answers_b": ["b"]}),
                       httpx.get(s.url + "/crash")]
        remote.close()
    assert [r.status_code for r in answers] == [503, 503, 500]
    for r in answers:
        error = r.json()["error"]
        assert set(error) == {"code", "message", "fields", "request_id"} and error["request_id"] == r.headers["x-request-id"]
        for leak in (up.url, f"127.0.0.1:{up.port}", "UPSTREAM-SECRET", "sk-123", "OpenAIEndpointError", "HTTP 400", "ZeroDivision", "division"):
            assert leak not in r.text, (leak, r.text)


def test_scripted_backend_exception_text_stays_in_the_log(server, caplog):
    r = post(server, "/get_reward", payload(["POISON"], ["x"]))
    assert r.status_code == 503 and "secret-exception-text" not in r.text and "10.9.8.7" not in r.text
    assert any(r.json()["error"]["request_id"] in rec.getMessage() for rec in caplog.records)


def test_health_minimal_and_docs_off_by_default(server):
    assert httpx.get(server.url + "/health").json() == {"status": "ok"}  # no token set: nothing about the config
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert httpx.get(server.url + path).status_code == 404
    with ServerThread(create_app(reward_over(ScriptedBackend()), ServeConfig(docs=True, max_item_tokens=10))) as s:
        schema = httpx.get(s.url + "/openapi.json").json()
        assert httpx.get(s.url + "/docs").status_code == 200
    assert "query" in json.dumps(schema["paths"]["/get_reward"]["post"]["requestBody"])


# -- byte-capped queue ----------------------------------------------------------------------------------
GATED_SERVER = """
import sys, time, uvicorn
from pathlib import Path
from genrm_plugin.judge import GenerativeJudge, JudgeConfig
from genrm_plugin.reward import GenRMReward
from genrm_plugin.server import ServeConfig, create_app
from genrm_plugin.serving.batcher import BatchConfig
from genrm_plugin.testing import ScriptedBackend

port, gate, cap = int(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
def verdict(prompt, i):  # the judge waits until the gate file exists
    while not gate.exists():
        time.sleep(0.01)
    return "[[A]]"
reward = GenRMReward(GenerativeJudge(ScriptedBackend(verdict), JudgeConfig(k=1, swap=False)))
serve = ServeConfig(max_pending_bytes=cap, max_client_share=1.0, max_item_tokens=300_000, retry_after_s=2)
uvicorn.run(create_app(reward, serve, batch=BatchConfig(max_wait_ms=1)), host="127.0.0.1", port=port, log_level="warning")
"""


def _rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_byte_cap_bounds_queued_requests_and_memory(tmp_path):
    """24 x 7.8 MB requests at a server (its own process) whose judge is stuck: the byte cap admits
    what fits, refuses the rest with 503 + Retry-After, and the server's memory stays near the cap."""
    cap, gate = 100_000_000, tmp_path / "open"
    body = json.dumps(payload(["w " * 245_000] * 16, ["r"] * 16)).encode()
    assert 7_800_000 < len(body) < 8 * 2**20
    admitted = cap // memory_estimate(len(body))  # each reserves 5x its body (body, JSON text, parsed texts, items, prompts)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-c", GATED_SERVER, str(port), str(gate), str(cap)], env=dict(os.environ, GENRM_SERVER_TOKEN=""))
    url, rss = f"http://127.0.0.1:{port}", []
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(url + "/health", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        baseline = _rss_bytes(proc.pid)

        async def scenario():
            async with httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=24)) as client:
                tasks = [asyncio.create_task(client.post("/get_reward", content=body, headers={"content-type": "application/json"}))
                         for _ in range(24)]
                while sum(t.done() for t in tasks) < 24 - admitted:
                    rss.append(_rss_bytes(proc.pid))
                    await asyncio.sleep(0.02)
                for _ in range(20):  # the admitted requests sit parsed in the queue
                    rss.append(_rss_bytes(proc.pid))
                    await asyncio.sleep(0.05)
                gate.touch()
                return await asyncio.gather(*tasks)

        answers = asyncio.run(scenario())
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    statuses = [r.status_code for r in answers]
    growth = max(rss) - baseline
    print(f"server RSS growth {growth / 1e6:.0f} MB with a {cap / 1e6:.0f} MB cap; statuses {statuses}")
    assert statuses.count(200) == admitted == 2 and statuses.count(503) == 24 - admitted
    refused = [r for r in answers if r.status_code == 503]
    assert all(r.json()["error"]["code"] == "overloaded" and r.headers["retry-after"] == "2" for r in refused)
    assert growth < cap, f"{growth / 1e6:.0f} MB"


def test_one_client_cannot_take_the_whole_byte_budget():
    release = threading.Event()
    backend = ScriptedBackend(lambda p, i: (release.wait(30), "[[A]]")[1])
    serve = ServeConfig(max_pending_bytes=20_000, max_client_share=0.5, max_body_bytes=1_500, client_header="X-Client", max_item_tokens=1000)
    body = json.dumps(payload(["It is 42." + " pad" * 180], ["r"])).encode()
    assert 2 * memory_estimate(len(body)) <= 10_000 < 3 * memory_estimate(len(body))  # two fit in a client's share, three do not
    with ServerThread(create_app(reward_over(backend), serve)) as s:
        async def scenario():
            async with httpx.AsyncClient(base_url=s.url, timeout=30) as client:
                send = lambda who: client.post("/get_reward", content=body, headers={"X-Client": who, "content-type": "application/json"})  # noqa: E731
                greedy = [asyncio.create_task(send("greedy")) for _ in range(3)]
                await asyncio.sleep(0.3)
                other = asyncio.create_task(send("other"))
                await asyncio.sleep(0.3)
                release.set()
                return await asyncio.gather(*greedy), await other

        greedy, other = asyncio.run(scenario())
    assert sorted(r.status_code for r in greedy) == [200, 200, 429] and other.status_code == 200
    assert [r.json()["error"]["code"] for r in greedy if r.status_code == 429] == ["client_share"]


# -- failure isolation -------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [8, 32, 64])
def test_a_poison_request_costs_log_n_extra_calls_not_n(n):
    calls = []

    def run(items):
        calls.append(len(items))
        if "poison" in items:
            raise RuntimeError("bad item")
        return [x.upper() for x in items]

    batcher = MicroBatcher(run, BatchConfig(max_batch=n, max_wait_ms=200, quiet_ms=0))

    async def go():
        tasks = [asyncio.create_task(batcher.submit(["poison" if i == n // 3 else f"ok{i}"], client=f"c{i}")) for i in range(n)]
        results = await asyncio.gather(*tasks, return_exceptions=True)
        await batcher.close()
        return results

    results = asyncio.run(go())
    assert isinstance(results[n // 3], RuntimeError)
    assert all(results[i] == [f"OK{i}"] for i in range(n) if i != n // 3)
    assert calls[0] == n and len(calls) <= 1 + 2 * math.ceil(math.log2(n))  # the old re-run-each-alone: n + 1
    assert batcher.stats["failures"] == 1


def test_fair_queue_keeps_suspects_apart_and_serves_the_least_served_first():
    loop = asyncio.new_event_loop()
    queue = FairQueue(suspect_s=10, suspect_batch=2)
    job = lambda client, size=1: Job(["x"] * size, loop.create_future(), 0.0, client)  # noqa: E731
    for client in ("a", "a", "b", "c", "bad", "bad", "bad"):
        queue.push(job(client))
    queue.mark_suspect(["bad"], now=0.0)
    first = queue.take(limit=10, now=1.0)
    assert sorted(j.client for j in first) == ["a", "a", "b", "c"]  # clean clients only, one round each
    queue.charge(4.0, first, now=1.0)
    queue.push(job("a"))
    assert [j.client for j in queue.take(limit=10, now=2.0)] == ["bad", "bad"]  # least served; capped while others wait
    queue.charge(100.0, [job("bad")], now=3.0)
    assert [j.client for j in queue.take(limit=10, now=3.0)] == ["a"]
    assert [j.client for j in queue.take(limit=10, now=20.0)] == ["bad"]  # alone now, and no longer suspect
    loop.close()


class MixRecordingBackend(ScriptedBackend):
    """Records, per backend call, whether it mixed poison and clean items."""
    def __init__(self, script):
        super().__init__(script)
        self.mixed: list[bool] = []

    def generate(self, prompts, n, sampling, seed=None):
        poison = ["POISON" in p for p in prompts]
        self.mixed.append(any(poison) and not all(poison))
        return super().generate(prompts, n, sampling, seed)


def test_failing_client_is_kept_apart_after_its_first_failure():
    backend = MixRecordingBackend(verdict_for_42)
    app = create_app(reward_over(backend), ServeConfig(client_header="X-Client", max_item_tokens=500), batch=BatchConfig(max_wait_ms=20))
    stats = app.state.batchers["get_reward"].stats
    with ServerThread(app) as s:
        async def one_round(client):
            async def one(who, text):
                return await client.post("/get_reward", json=payload([text], ["It is 41."]), headers={"X-Client": who})

            return await asyncio.gather(*[one(f"clean{i}", "It is 42.") for i in range(8)], *[one("poison", "POISON") for _ in range(5)])

        async def scenario():
            async with httpx.AsyncClient(base_url=s.url, timeout=30) as client:
                first = await one_round(client)
                mixed_after_first = sum(backend.mixed)
                rest = [await one_round(client) for _ in range(5)]
                return [first, *rest], mixed_after_first

        rounds, mixed_after_first = asyncio.run(scenario())
    for answers in rounds:
        assert [r.status_code for r in answers] == [200] * 8 + [503] * 5
        assert all(r.json()["scores"] == [1.0] for r in answers[:8])
    assert stats["failures"] == 30
    assert mixed_after_first <= 1 + math.ceil(math.log2(13))  # bisection separates the clients
    assert sum(backend.mixed) == mixed_after_first  # then the failing client never shares a call again
