"""The judge under Ray, the engine OpenRLHF and veRL scale out on: a local Ray cluster on 127.0.0.1.

1. OpenRLHF shape: ``genrm serve``'s app (a scripted oracle judge, known-exact rewards) runs on
   127.0.0.1; ``--actors`` Ray actors each hold OpenRLHF's own ``SingleTurnAgentExecutor`` (as its vLLM
   engine actors do) and post ``--requests`` rollouts each to ``/get_reward`` with OpenRLHF's HTTP client
   (``_fetch_rewards_via_http``, one query per call, ``--concurrency`` in flight per actor). One more
   actor, paced slowly, is ``ray.kill``-ed mid-run: every other actor's results must arrive (0 lost),
   equal to the same requests scored in a single process (no HTTP, no Ray).
2. veRL shape: a rollout ``DataProto`` (``--copies`` x the kit rollouts) is split with
   ``DataProto.chunk`` into ``--tasks`` Ray tasks, each running veRL's own reward manager (``naive`` and
   ``batch``) over ``examples/verl_reward.py`` loaded by veRL's ``get_custom_reward_fn``; the
   concatenated token-level reward tensors must equal the single-process manager's.

    python benchmarks/ray_clients.py                 # defaults below; prints the figures
    python benchmarks/ray_clients.py --actors 8 --requests 500 --json figures.json

tests/test_ray_clients.py runs :func:`run` with small settings and asserts on the same figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

# Set before anything imports ray (Ray reads them at import; transformers may import it).
LOCAL_ONLY = {
    "RAY_USAGE_STATS_ENABLED": "0",  # no usage report leaves the machine
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # Ray's local-only mode: every process on the loopback address
}
os.environ.update(LOCAL_ONLY)
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # verl_kit: the rollout batch and the scripted oracle judge

import verl_kit  # noqa: E402


@dataclass
class RayClientsConfig:
    """Sizes of the Ray run.

    Fields:
        actors: Ray actors posting to ``/get_reward`` (plus one more that is killed mid-run).
        requests: rollouts each actor sends (one query per HTTP call, as OpenRLHF's executor does).
        concurrency: requests in flight per actor.
        victim_pace_s: pause between the killed actor's requests (keeps it running until the kill).
        kill_after_answers: the victim actor is killed once it has this many answers.
        tasks: Ray tasks the veRL rollout batch is split into (``DataProto.chunk``).
        copies: copies of the kit rollouts in the veRL batch.
        num_cpus: CPUs of the local Ray cluster.
    """

    actors: int = 4
    requests: int = 200
    concurrency: int = 8
    victim_pace_s: float = 0.05
    kill_after_answers: int = 1
    tasks: int = 2
    copies: int = 4
    num_cpus: int = 2


@dataclass
class RayClientsResult:
    """The figures of one run (printed by :meth:`lines`).

    Fields:
        actors, requests: client actors (besides the killed one) and the requests they sent in all.
        startup_s: seconds until every actor had imported OpenRLHF's client; http_s: the clients' run.
        answered / errors / lost: requests with the server's answer / that OpenRLHF's client gave up on
            after its retries / without any result (their actor died).
        victim_killed_mid_run: the killed actor had not finished; victim_answered_before_kill: its answers
            by then; others_running_at_kill: client actors still running at the kill.
        http_equal: every answer equals the single-process one; http_expected: the oracle's exact values.
        node_address, listen_addresses: Ray's node address and what its processes listen on.
        verl_rows, verl_tasks: the veRL batch and the Ray tasks it was split into.
        verl_s, verl_equal: per manager, seconds of the Ray tasks and equality with the single-process run.
    """

    actors: int
    requests: int
    startup_s: float = 0.0
    http_s: float = 0.0
    answered: int = 0
    errors: int = 0
    lost: int = 0
    victim_killed_mid_run: bool = False
    victim_answered_before_kill: int = 0
    others_running_at_kill: int = 0
    http_equal: bool = False
    http_expected: bool = False
    node_address: str = ""
    listen_addresses: list[str] = field(default_factory=list)
    verl_rows: int = 0
    verl_tasks: int = 0
    verl_s: dict[str, float] = field(default_factory=dict)
    verl_equal: dict[str, bool] = field(default_factory=dict)

    def lines(self) -> list[str]:
        verl = ", ".join(f"{m}: {self.verl_s[m]:.2f} s, equal={self.verl_equal[m]}" for m in self.verl_s)
        return [
            f"ray node address           {self.node_address} (Ray processes listen on {', '.join(self.listen_addresses)})",
            f"actor startup              {self.startup_s:.2f} s",
            f"OpenRLHF-shape actors      {self.actors} (+1 killed mid-run: {self.victim_killed_mid_run}, after "
            f"{self.victim_answered_before_kill} of its {self.requests // self.actors} answers, while "
            f"{self.others_running_at_kill} other actors were still running)",
            f"requests                   {self.requests} ({self.answered} answered) in {self.http_s:.2f} s "
            f"({self.answered / max(self.http_s, 1e-9):.1f} req/s)",
            f"errors                     {self.errors}",
            f"lost results               {self.lost}",
            f"equal to single-process    {self.http_equal} (oracle's exact values: {self.http_expected})",
            f"veRL tasks                 {self.verl_tasks} over {self.verl_rows} rows; {verl} "
            "(the first includes the task workers' imports)",
        ]


def rollout_requests(tokenizer, actor: int, count: int) -> list[tuple[verl_kit.Rollout, dict]]:
    """(rollout, OpenRLHF request body) pairs; every question is unique so each answer is traceable."""
    out = []
    for j in range(count):
        base = verl_kit.ROLLOUTS[(actor * count + j) % len(verl_kit.ROLLOUTS)]
        prompt = verl_kit.chat_prompt(tokenizer, f"{base.question} [{actor}.{j}]")
        body = {"query": [prompt + base.response + tokenizer.eos_token], "prompts": [prompt], "labels": [verl_kit.reference_of(base)]}
        out.append((base, body))
    return out


class RewardClient:
    """A Ray actor posting OpenRLHF rollouts to ``/get_reward`` with OpenRLHF's own client."""

    def __init__(self, url: str) -> None:
        from openrlhf.utils.agent import SingleTurnAgentExecutor

        self.executor = SingleTurnAgentExecutor(remote_rm_url=url)
        self.answered = 0

    def ready(self) -> bool:
        return True

    def count(self) -> int:
        return self.answered

    def run(self, bodies: list[dict], concurrency: int, pace_s: float = 0.0) -> list:
        """One entry per body: the server's answer dict, or the error text."""

        async def one(body, gate):
            async with gate:
                try:
                    answer = (await self.executor._fetch_rewards_via_http(body["query"], body["prompts"], body["labels"]))[0]
                except Exception as exc:  # counted by the caller: OpenRLHF gave up after its retries
                    return f"{type(exc).__name__}: {exc}"
                self.answered += 1
                if pace_s:
                    await asyncio.sleep(pace_s)
                return answer

        async def run_all():
            gate = asyncio.Semaphore(concurrency)
            return await asyncio.gather(*(one(b, gate) for b in bodies))

        return asyncio.run(run_all())


def score_with_scripted_judge(manager: str, tokenizer, data) -> dict:
    """veRL's reward manager ``manager`` over ``data``, the reward file answering with the scripted oracle
    judge (run as a Ray task per chunk, and in this process over the whole batch)."""
    from genrm_plugin.integrations import verl as verl_integration

    original = verl_integration.default_reward
    reward = verl_kit.scripted_reward()
    verl_integration.default_reward = lambda: reward  # what examples/verl_reward.py calls
    try:
        out = verl_kit.score_legacy(manager, tokenizer, data)
    finally:
        verl_integration.default_reward = original
    return {"reward_tensor": out["reward_tensor"], "win_prob": list(out["reward_extra_info"]["win_prob"])}


def single_process_http(requests: list[tuple[verl_kit.Rollout, dict]]) -> list[dict]:
    """The server's per-request answers computed in this process over one fresh scripted reward."""
    from genrm_plugin.integrations.openrlhf import OpenRLHFConfig, parse_request, response_payload, score_items

    reward = verl_kit.scripted_genrm()
    config = OpenRLHFConfig()
    return [response_payload(reward.config.name, score_items(reward, parse_request(config, b["query"], b["prompts"], b["labels"])))
            for _, b in requests]


def start_ray(num_cpus: int) -> None:
    """A local Ray cluster on 127.0.0.1."""
    import ray

    if ray._private.ray_constants.ENABLE_RAY_CLUSTER:
        raise RuntimeError("ray was imported before start_ray(): run this benchmark in its own process")
    paths = [str(ROOT / "tests"), str(ROOT / "benchmarks"), os.environ.get("PYTHONPATH", "")]
    ray.init(
        num_cpus=num_cpus,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        object_store_memory=128 * 1024**2,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in paths if p), "OMP_NUM_THREADS": "1", **LOCAL_ONLY}},
    )


def listen_addresses() -> list[str]:
    """The addresses that this process (Ray's driver) and its children (GCS, raylet, workers) listen on."""
    import psutil

    found = set()
    for proc in [psutil.Process(), *psutil.Process().children(recursive=True)]:
        try:
            found.update(c.laddr.ip for c in proc.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN)
        except psutil.Error:
            continue
    return sorted(found)


def run_http(cfg: RayClientsConfig, tokenizer, result: RayClientsResult) -> None:
    import ray
    from genrm_plugin.server import create_app
    from genrm_plugin.serving.batcher import BatchConfig
    from genrm_plugin.serving.runner import ServerThread

    client_cls = ray.remote(num_cpus=0, max_concurrency=2)(RewardClient)  # threaded: count() while run() works
    per_actor = [rollout_requests(tokenizer, a, cfg.requests) for a in range(cfg.actors)]
    victim_requests = rollout_requests(tokenizer, cfg.actors, cfg.requests)
    app = create_app(verl_kit.scripted_genrm(), batch=BatchConfig(max_batch=64, max_wait_ms=20))
    with ServerThread(app) as server:
        url = server.url + "/get_reward"
        started = time.perf_counter()
        clients = [client_cls.remote(url) for _ in range(cfg.actors)]
        victim = client_cls.remote(url)
        ray.get([c.ready.remote() for c in [*clients, victim]])
        result.startup_s = time.perf_counter() - started

        started = time.perf_counter()
        futures = [c.run.remote([b for _, b in reqs], cfg.concurrency) for c, reqs in zip(clients, per_actor)]
        victim_future = victim.run.remote([b for _, b in victim_requests], 1, cfg.victim_pace_s)
        deadline = time.monotonic() + 120
        while (done := ray.get(victim.count.remote())) < cfg.kill_after_answers:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the victim actor got no {cfg.kill_after_answers} answers in 120 s: is the server up?")
            time.sleep(0.01)
        _, running = ray.wait(futures, num_returns=len(futures), timeout=0)
        ray.kill(victim)
        result.others_running_at_kill = len(running)
        result.victim_answered_before_kill = done
        answers = []
        for future, reqs in zip(futures, per_actor):
            try:
                answers.append(ray.get(future))
            except ray.exceptions.RayActorError:  # an actor that was not killed died: all its results are lost
                answers.append([None] * len(reqs))
        result.http_s = time.perf_counter() - started
        try:
            ray.get(victim_future)
        except ray.exceptions.RayActorError:
            result.victim_killed_mid_run = True

    flat_requests = [r for reqs in per_actor for r in reqs]
    flat_answers = [a for per in answers for a in per]
    result.answered = sum(isinstance(a, dict) for a in flat_answers)
    result.errors = sum(isinstance(a, str) for a in flat_answers)
    result.lost = sum(a is None for a in flat_answers)
    result.http_equal = flat_answers == single_process_http(flat_requests)
    expected = verl_kit.expected_win_probs([r for r, _ in flat_requests])
    result.http_expected = verl_kit.close_to([a["scores"][0] if isinstance(a, dict) else None for a in flat_answers], expected)


def run_verl(cfg: RayClientsConfig, tokenizer, result: RayClientsResult, managers: tuple[str, ...]) -> None:
    import ray
    import torch

    task = ray.remote(num_cpus=1)(score_with_scripted_judge)
    data = verl_kit.rollout_batch(tokenizer, verl_kit.ROLLOUTS * cfg.copies)
    result.verl_rows, result.verl_tasks = len(data), cfg.tasks
    tokenizer_ref = ray.put(tokenizer)
    for manager in managers:
        started = time.perf_counter()
        parts = ray.get([task.remote(manager, tokenizer_ref, chunk) for chunk in data.chunk(cfg.tasks)])
        result.verl_s[manager] = time.perf_counter() - started
        single = score_with_scripted_judge(manager, tokenizer, data)
        merged = torch.cat([p["reward_tensor"] for p in parts])
        win_probs = [w for p in parts for w in p["win_prob"]]
        result.verl_equal[manager] = torch.equal(merged, single["reward_tensor"]) and win_probs == single["win_prob"]


def run(cfg: RayClientsConfig | None = None, managers: tuple[str, ...] = ("naive", "batch")) -> RayClientsResult:
    """Start a local Ray cluster, run both client shapes, shut Ray down; the figures."""
    import ray

    from genrm_plugin.toy import build_tokenizer

    cfg = cfg or RayClientsConfig()
    tokenizer = build_tokenizer()
    result = RayClientsResult(actors=cfg.actors, requests=cfg.actors * cfg.requests)
    start_ray(cfg.num_cpus)
    try:
        result.node_address = ray.nodes()[0]["NodeManagerAddress"]
        run_http(cfg, tokenizer, result)
        result.listen_addresses = listen_addresses()
        run_verl(cfg, tokenizer, result, managers)
    finally:
        ray.shutdown()
    return result


def main(argv: list[str] | None = None) -> RayClientsResult:
    defaults = RayClientsConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, value in vars(defaults).items():
        parser.add_argument(f"--{name}", type=type(value), default=value)
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = vars(parser.parse_args(argv))
    json_path = args.pop("json")
    started = time.perf_counter()
    result = run(RayClientsConfig(**args))
    print("\n".join(result.lines()))
    print(f"total                      {time.perf_counter() - started:.2f} s (Ray start and shutdown included)")
    if json_path:
        Path(json_path).write_text(json.dumps(vars(result), indent=1))
    return result


if __name__ == "__main__":
    main()
