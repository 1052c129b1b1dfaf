"""Load test of the reward server (``genrm serve``) on 127.0.0.1.

Starts ``genrm serve`` in a subprocess with a real judge and drives it with concurrent OpenRLHF-style
clients (one query per ``POST /get_reward``, as OpenRLHF's rollout workers send them).

The judge (defaults): the tiny kit transformers model (random weights) in CoT mode, K=2 samples per
answer order with position swap (4 sampled rationales of up to 32 tokens per item, ``compact``
template), torch on one thread in the server process. Why CoT and not no-CoT: on a CPU the tiny
model's single forward pass costs the same per item at batch 1 and batch 16 (measured ~20 ms/item
both ways: it is compute-bound already at batch 1), whereas a real judge on an accelerator costs
nearly the same per *call* up to large batches. Sampling rationales has that real-model shape here
too: its cost is dominated by per-decode-step overhead, which is nearly flat in batch size
(measured in-process: ~80-150 ms for 1 item, ~20 ms/item for 16 items). ``--mode no_cot`` runs the
forward-pass-only judge for comparison.

1. Load: ``--requests`` (2,000) requests from ``--clients`` (32) concurrent clients against the
   micro-batched server: req/s, p50/p99 latency, 5xx count (must be 0), lost requests (no answer:
   transport errors or timeouts; must be 0).
2. Ratio: the same client loop with ``--ratio_clients`` (16) clients against the micro-batched server
   and against a one-at-a-time server (``--max_batch 1 --max_wait_ms 0``), both running side by side
   and measured in alternating rounds (``--ratio_rounds``) so that load from other processes on the
   machine hits both alike: req/s of both and their ratio (target >= 4x).
3. ``--poison`` (instead of 1 and 2): ``--ratio_clients`` clean clients (from 127.0.0.1) against one
   server, alone and beside a poisoning client (from 127.0.0.2, so the server tells them apart by
   address) that keeps ``--poison_requests`` (21) requests in flight, in alternating rounds: the
   clean clients' req/s in both conditions and their ratio (target >= 0.8). The poison mixes items
   the judge engine fails on *after* doing its work (a stand-in for an upstream that rejects some
   content: the server's judge is wrapped so that a batch holding ``POISON_MARKER`` raises once it
   is judged), lone surrogates (422 at validation) and over-long items (413).

    python benchmarks/server_load.py                       # defaults above
    python benchmarks/server_load.py --poison               # the failure-isolation run
    python benchmarks/server_load.py --plot latency.png     # also a latency CDF plot
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

import httpx
from tqdm.auto import tqdm

PROMPT = "<|user|>Question {i}: what is {a} + {b}?<|end|><|assistant|>"
POISON_MARKER = "POISON-PILL"
TOKEN = secrets.token_hex(16)  # the servers' bearer token (their /health counters need it)
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class LoadResult:
    label: str
    requests: int
    clients: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    status: dict[int, int] = field(default_factory=dict)
    lost: int = 0

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    @property
    def server_errors(self) -> int:
        return sum(n for s, n in self.status.items() if s >= 500)

    def percentile(self, q: float) -> float:
        data = sorted(self.latencies)
        return data[min(len(data) - 1, int(q * len(data)))] * 1000 if data else float("nan")

    def row(self) -> str:
        ok = self.status.get(200, 0)
        return (f"{self.label:<28} {self.requests:>6} {self.clients:>4} {self.rps:>8.1f} {self.percentile(0.5):>8.1f} "
                f"{self.percentile(0.99):>8.1f} {ok:>6} {self.server_errors:>4} {self.lost:>5}")


HEADER = f"{'run':<28} {'reqs':>6} {'cli':>4} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'200':>6} {'5xx':>4} {'lost':>5}"


def body(i: int, response: str | None = None) -> dict:
    prompt = PROMPT.format(i=i, a=i % 97, b=i % 89)
    if response is None:
        response = f"The sum is {i % 97 + i % 89}." if i % 3 else f"I think it is {i % 50}."
    return {"query": [prompt + response + "<|end|>"], "prompts": [prompt], "labels": [f"It equals {i % 97 + i % 89}."]}


def poison_body(i: int) -> dict:
    """Mostly items the judge fails on after judging them; every 7th a lone surrogate, every 11th 100 kB."""
    if i % 7 == 0:
        return body(i, "The sum is \ud800.")
    if i % 11 == 0:
        return body(i, "1 " * 50_000)
    return body(i, f"{POISON_MARKER} The sum is {i % 97 + i % 89}.")


async def drive(url: str, total: int, clients: int, label: str, timeout: float) -> LoadResult:
    result = LoadResult(label, total, clients, 0.0)
    counter = iter(range(total))
    bar = tqdm(total=total, desc=label, leave=False)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(http: httpx.AsyncClient) -> None:
        for i in counter:
            start = time.perf_counter()
            try:
                r = await http.post(url + "/get_reward", json=body(i), headers=AUTH)
            except httpx.HTTPError:
                result.lost += 1
            else:
                result.status[r.status_code] = result.status.get(r.status_code, 0) + 1
                if r.status_code == 200 and len(r.json().get("scores", [])) == 1:
                    result.latencies.append(time.perf_counter() - start)
                elif r.status_code == 200:
                    result.lost += 1  # answered without a score for the query
            bar.update()

    async with httpx.AsyncClient(timeout=timeout, limits=limits) as http:
        start = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        result.seconds = time.perf_counter() - start
    bar.close()
    return result


async def poison(url: str, requests: int, stop: asyncio.Event, statuses: dict[int, int], timeout: float) -> None:
    """One client (from 127.0.0.2) keeping ``requests`` poisoned requests in flight until ``stop``."""
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2", limits=httpx.Limits(max_connections=requests))
    sent = iter(range(10**9))

    async def loop(http: httpx.AsyncClient) -> None:
        while not stop.is_set():
            try:
                content = json.dumps(poison_body(next(sent))).encode()  # \ud800 escaped, as JSON allows
                r = await http.post(url + "/get_reward", content=content, headers=AUTH | {"content-type": "application/json"})
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            except httpx.HTTPError:
                statuses[0] = statuses.get(0, 0) + 1

    async with httpx.AsyncClient(timeout=timeout, transport=transport) as http:
        await asyncio.gather(*(loop(http) for _ in range(requests)))


async def drive_beside_poison(url: str, args: argparse.Namespace, label: str, statuses: dict[int, int]) -> LoadResult:
    stop = asyncio.Event()
    poisoner = asyncio.create_task(poison(url, args.poison_requests, stop, statuses, args.timeout))
    await asyncio.sleep(1.0)  # the poison is in flight before the clean clients start
    try:
        return await drive(url, args.ratio_requests // args.ratio_rounds, args.ratio_clients, label, args.timeout)
    finally:
        stop.set()
        await poisoner


class FailOnMarker:
    """A judge backend that judges, then fails any call whose prompts hold ``POISON_MARKER``."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.tokenizer = getattr(inner, "tokenizer", None)
        self.model = getattr(inner, "model", None)

    def render(self, messages):
        return self.inner.render(messages)

    def generate(self, prompts, n, sampling, seed=None):
        return self._check(prompts, self.inner.generate(prompts, n, sampling, seed))

    def choice_logprobs(self, prompts, choices):
        return self._check(prompts, self.inner.choice_logprobs(prompts, choices))

    @staticmethod
    def _check(prompts, results):
        if any(POISON_MARKER in p for p in prompts):
            raise RuntimeError("the judge engine rejected a poisoned item")
        return results


def serve_failing(argv: list[str]) -> int:
    """``genrm serve`` (same flags) with the judge wrapped in :class:`FailOnMarker`."""
    from genrm_plugin.server import create_app, run_server
    from genrm_plugin.settings import Settings

    settings = Settings.parse(argv, "server_load")
    reward = settings.build_reward()
    reward.judge.backend = FailOnMarker(reward.judge.backend)
    app = create_app(reward, settings.serve, settings.openrlhf, settings.batch, token=os.environ["GENRM_SERVER_TOKEN"])
    run_server(app, settings.serve, token_set=True)
    return 0


class Server:
    """``genrm serve`` in a subprocess on a free 127.0.0.1 port (``failing``: with :class:`FailOnMarker`)."""

    def __init__(self, args: argparse.Namespace, max_batch: int, max_wait_ms: float, failing: bool = False) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        entry = [__file__, "--serve_failing"] if failing else ["-m", "genrm_plugin.cli", "serve"]
        cmd = [sys.executable, *entry, "--model", args.model, "--mode", args.mode,
               "--k", str(args.k), "--max_new_tokens", str(args.max_new_tokens), "--template", args.template,
               "--port", str(self.port), "--max_batch", str(max_batch), "--max_wait_ms", str(max_wait_ms),
               "--quiet_ms", str(args.quiet_ms),
               "--batch_size", str(args.backend_batch_size), "--log_level", "warning"]
        env = dict(os.environ, TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS=str(args.server_threads), GENRM_SERVER_TOKEN=TOKEN)
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)

    def __enter__(self) -> "Server":
        deadline = time.monotonic() + 300
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"genrm serve exited with {self.proc.returncode}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("genrm serve did not come up")
            time.sleep(0.5)
        for i in range(4):  # warm-up (first forward passes allocate)
            httpx.post(self.url + "/get_reward", json=body(10**6 + i), timeout=60, headers=AUTH)
        return self

    def counters(self) -> dict:
        return httpx.get(self.url + "/health", timeout=10, headers=AUTH).json()["counters"]["get_reward"]

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def merge(label: str, runs: list[LoadResult]) -> LoadResult:
    """Several rounds as one run (total answers / total time)."""
    merged = LoadResult(label, sum(r.requests for r in runs), runs[0].clients, sum(r.seconds for r in runs))
    for r in runs:
        merged.latencies += r.latencies
        merged.lost += r.lost
        for status, n in r.status.items():
            merged.status[status] = merged.status.get(status, 0) + n
    return merged


def plot(results: list[LoadResult], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(6, 4))
    for r in results:
        data = sorted(x * 1000 for x in r.latencies)
        ax.plot(data, [(i + 1) / len(data) for i in range(len(data))], label=f"{r.label} ({r.rps:.0f} req/s)")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("fraction of requests")
    ax.set_title("genrm serve /get_reward latency CDF")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot: {path}")


def poison_main(args: argparse.Namespace) -> int:
    """Clean clients' req/s alone and beside a poisoning client, alternating rounds on one server."""
    print(f"poison: {args.ratio_clients} clean clients (127.0.0.1) vs one client (127.0.0.2) with "
          f"{args.poison_requests} requests in flight, {args.ratio_rounds} alternating rounds")
    statuses: dict[int, int] = {}
    rounds: dict[str, list[LoadResult]] = {"clean": [], "beside poison": []}
    per_round = max(1, args.ratio_requests // args.ratio_rounds)
    with Server(args, args.max_batch, args.max_wait_ms, failing=True) as server:
        for _ in range(args.ratio_rounds):
            rounds["clean"].append(asyncio.run(drive(server.url, per_round, args.ratio_clients, "clean", args.timeout)))
            rounds["beside poison"].append(asyncio.run(drive_beside_poison(server.url, args, "beside poison", statuses)))
        counters = server.counters()
    clean, poisoned = (merge(label, runs) for label, runs in rounds.items())
    print(HEADER)
    for r in (clean, poisoned):
        print(r.row())
    for label, runs in rounds.items():
        print(f"  {label} per round req/s: " + ", ".join(f"{r.rps:.1f}" for r in runs))
    ratio = poisoned.rps / clean.rps
    print(f"poison client's answers by status: {dict(sorted(statuses.items()))} (0: transport error)")
    print(f"server: {counters.get('calls', 0)} backend calls, {counters.get('calls', 0) - counters.get('batches', 0)} failed, "
          f"{counters.get('failures', 0)} failed requests")
    print(f"clean clients' req/s: {clean.rps:.1f} alone, {poisoned.rps:.1f} beside the poison: ratio {ratio:.2f} (target >= 0.8)")
    ok = ratio >= 0.8 and clean.server_errors + poisoned.server_errors == 0 and clean.lost + poisoned.lost == 0
    print("targets:", "met" if ok else "NOT met")
    return 0 if ok else 1


def main() -> int:
    if sys.argv[1:2] == ["--serve_failing"]:
        return serve_failing(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--ratio_requests", type=int, default=600)
    parser.add_argument("--ratio_clients", type=int, default=16)
    parser.add_argument("--ratio_rounds", type=int, default=3)
    parser.add_argument("--max_batch", type=int, default=64)
    parser.add_argument("--max_wait_ms", type=float, default=50.0)
    parser.add_argument("--quiet_ms", type=float, default=10.0)
    parser.add_argument("--model", default="toy", help="judge model (toy: the tiny kit model)")
    parser.add_argument("--mode", default="cot", choices=["cot", "no_cot"])
    parser.add_argument("--k", type=int, default=2, help="CoT samples per answer order")
    parser.add_argument("--max_new_tokens", type=int, default=32)
    parser.add_argument("--template", default="compact")
    parser.add_argument("--backend_batch_size", type=int, default=256, help="sequences per forward batch")
    parser.add_argument("--server_threads", type=int, default=1, help="OMP/torch threads of the server process")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--plot", default=None, help="write a latency CDF PNG here")
    parser.add_argument("--poison", action="store_true", help="run the failure-isolation measurement instead")
    parser.add_argument("--poison_requests", type=int, default=21, help="poisoned requests kept in flight")
    args = parser.parse_args()

    per_item = f"K={args.k} x 2 orders, <= {args.max_new_tokens} new tokens" if args.mode == "cot" else "2 forward passes"
    print(f"judge: {args.model} transformers backend, mode={args.mode} ({per_item} per item), swap, "
          f"template={args.template}, server torch threads={args.server_threads}")
    print(f"server: genrm serve on 127.0.0.1; micro-batched = max_batch {args.max_batch}, max_wait_ms {args.max_wait_ms}, "
          f"quiet_ms {args.quiet_ms}; "
          f"one-at-a-time = max_batch 1, max_wait_ms 0")
    if args.poison:
        return poison_main(args)
    with Server(args, args.max_batch, args.max_wait_ms) as server, Server(args, 1, 0) as one_at_a_time:
        load = asyncio.run(drive(server.url, args.requests, args.clients, "micro-batched", args.timeout))
        load_counters = server.counters()
        rounds: dict[str, list[LoadResult]] = {"micro-batched (ratio)": [], "one-at-a-time (ratio)": []}
        per_round = max(1, args.ratio_requests // args.ratio_rounds)
        for _ in range(args.ratio_rounds):
            for label, url in zip(rounds, (server.url, one_at_a_time.url)):
                rounds[label].append(asyncio.run(drive(url, per_round, args.ratio_clients, label, args.timeout)))
    batched, single = (merge(label, runs) for label, runs in rounds.items())
    results = [load, batched, single]

    print(HEADER)
    for r in results:
        print(r.row())
    for label, runs in rounds.items():
        print(f"  {label} per round req/s: " + ", ".join(f"{r.rps:.1f}" for r in runs))
    ratio = batched.rps / single.rps
    mean_batch = load_counters.get("items", 0) / max(1, load_counters.get("batches", 1))
    print(f"load run: {load.requests} requests, {load.clients} clients: {load.rps:.1f} req/s, p50 {load.percentile(0.5):.1f} ms, "
          f"p99 {load.percentile(0.99):.1f} ms, 5xx {load.server_errors}, lost {load.lost}, "
          f"mean items per judge call {mean_batch:.1f}")
    print(f"req/s ratio micro-batched / one-at-a-time with {args.ratio_clients} clients: {ratio:.2f}x "
          f"({batched.rps:.1f} vs {single.rps:.1f} req/s; target >= 4x)")
    ok = load.server_errors == 0 and load.lost == 0 and load.requests >= 2000 and ratio >= 4
    print("targets:", "met" if ok else "NOT met")
    if args.plot:
        plot(results, args.plot)
    mean = statistics.fmean(load.latencies) * 1000 if load.latencies else float("nan")
    print(f"(mean latency of the load run {mean:.1f} ms)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
