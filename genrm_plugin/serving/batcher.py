"""Micro-batching: concurrent requests coalesce into one backend call.

Each request submits a list of items (and its client's key) and awaits its results. A worker task
takes the oldest waiting request and waits for more to reach ``max_batch`` items -- up to
``max_wait_ms`` after that request arrived or after the backend became free, whichever is later,
and no longer than ``quiet_ms`` without a new arrival -- then runs the batch's items in one call
of ``run(items) -> results`` on a single worker thread (the backend is used by one call at a
time). While a call runs, new requests queue up for the next batch; the short wait after a call
lets the clients just answered send their next request in time to join it (without it,
closed-loop clients split into two half-size groups that alternate).

Which requests form a batch is decided by :class:`~genrm_plugin.serving.fairness.FairQueue`: the
client that has used the least backend time goes first, so no client gets more than its share.
Requests are never split: one larger than ``max_batch`` forms a batch of its own. If a combined
call raises and ``isolate_failures`` is on, the batch is bisected (a client's requests kept
together, so clients are separated first) and the halves re-run, down to the requests that fail
on their own: one failing request among ``n`` costs about ``2 log2 n`` extra calls, not ``n``.
What failures cost is charged to the failing clients, which then run apart from the others for a
while (``suspect_s``). Requests whose caller has gone (cancelled futures) are dropped before they
reach the backend.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from genrm_plugin.serving.fairness import FairQueue, Job


@dataclass
class BatchConfig:
    """How concurrent requests are micro-batched.

    Fields:
        max_batch: most items per backend call (a single larger request still runs, alone).
        max_wait_ms: longest wait for companions, counted from the oldest request's arrival or the
            end of the previous backend call, whichever is later (0: never wait, batch only what
            queued while the previous call ran).
        quiet_ms: stop waiting early once no request has arrived for this long (a burst of
            requests is in; 0 disables: always wait the full ``max_wait_ms``).
        isolate_failures: when a combined call raises, bisect the batch and re-run the halves so
            only the requests that fail on their own get an error.
        suspect_s: seconds after a failure during which that client's requests run apart from
            other clients' (0: failing clients stay mixed in).
        suspect_batch: most items in a batch of a suspect client while other clients are present.
        client_idle_s: how long a client without waiting requests still counts as present for fair
            scheduling (a suspect waits for present clients that have used less than it has).
        suspect_weight: a suspect's share of the judge relative to a clean client's (its backend
            time is charged divided by this).
    """

    max_batch: int = 64
    max_wait_ms: float = 20.0
    quiet_ms: float = 10.0
    isolate_failures: bool = True
    suspect_s: float = 30.0
    suspect_batch: int = 4
    client_idle_s: float = 1.0
    suspect_weight: float = 0.1

    def __post_init__(self) -> None:
        if self.max_batch < 1:
            raise ValueError(f"BatchConfig.max_batch must be >= 1, got {self.max_batch}")
        if self.max_wait_ms < 0:
            raise ValueError(f"BatchConfig.max_wait_ms must be >= 0, got {self.max_wait_ms}")
        if self.quiet_ms < 0:
            raise ValueError(f"BatchConfig.quiet_ms must be >= 0, got {self.quiet_ms}")
        if self.suspect_s < 0:
            raise ValueError(f"BatchConfig.suspect_s must be >= 0, got {self.suspect_s}")
        if not 0 < self.suspect_weight <= 1:
            raise ValueError(f"BatchConfig.suspect_weight must be in (0, 1], got {self.suspect_weight}")
        if self.client_idle_s <= 0:
            raise ValueError(f"BatchConfig.client_idle_s must be > 0, got {self.client_idle_s}")
        if self.suspect_batch < 1:
            raise ValueError(f"BatchConfig.suspect_batch must be >= 1, got {self.suspect_batch}")


class MicroBatcher:
    """Coalesce ``submit(items, client)`` calls from concurrent coroutines into calls of ``run(items)``.

    Args:
        run: ``items -> results`` (same length, same order); runs in ``executor``.
        config: batch size, wait, failure isolation and suspects (:class:`BatchConfig`).
        executor: where ``run`` executes (default: one dedicated thread). Batchers that share a
            backend should share a single-thread executor.
    Attributes:
        stats: ``requests``, ``items`` and ``batches`` (successful backend calls), ``calls`` (all
            backend calls, failed ones included), ``failures`` (failed requests), ``busy_ms``.
    """

    def __init__(
        self, run: Callable[[list[Any]], Sequence[Any]], config: BatchConfig | None = None, executor: Executor | None = None
    ) -> None:
        self.run = run
        self.config = config or BatchConfig()
        self.executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="genrm-batch")
        self.stats: Counter = Counter()
        cfg = self.config
        self.queue = FairQueue(cfg.suspect_s, cfg.suspect_batch, cfg.client_idle_s, cfg.suspect_weight)
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None
        self._free_since = 0.0  # loop time the previous backend call ended

    @property
    def pending_items(self) -> int:
        return self.queue.items

    async def submit(self, items: Sequence[Any], client: str = "") -> list[Any]:
        """Results for ``items``, computed in some batch; raises what the backend raised."""
        items = list(items)
        if not items:
            return []
        loop = asyncio.get_running_loop()
        if self._worker is None or self._worker.done():
            self._wakeup = asyncio.Event()
            self._worker = loop.create_task(self._work())
        future = loop.create_future()
        self.queue.push(Job(items, future, loop.time(), client))
        self.stats["requests"] += 1
        self._wakeup.set()
        return await future

    async def close(self) -> None:
        """Stop the worker task (requests still queued are cancelled)."""
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
            self._worker = None
        for job in self.queue.drain():
            job.future.cancel()

    # -- worker ---------------------------------------------------------------------------------
    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        cfg = self.config
        while True:
            while not self.queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            deadline = max(self.queue.oldest_arrival(), self._free_since) + cfg.max_wait_ms / 1000.0
            quiet = cfg.quiet_ms / 1000.0 if cfg.quiet_ms > 0 else float("inf")
            while self.queue.items < cfg.max_batch and loop.time() < deadline:
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), min(deadline - loop.time(), quiet))
                except asyncio.TimeoutError:
                    break
            jobs = self.queue.take(cfg.max_batch, loop.time())
            if not jobs:  # only a suspect waits, and its turn has not come: until an arrival or idle_s
                self._wakeup.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), cfg.client_idle_s)
                continue
            jobs.sort(key=lambda job: job.client)  # stable: a client's requests stay together for bisection
            await self._settle(jobs)
            self._free_since = loop.time()

    async def _settle(self, jobs: list[Job]) -> list[Job]:
        """Run ``jobs`` in one call and answer them; on failure bisect. Returns the culprits: the jobs
        that failed, or were handed back to the queue as a suspect's (see :meth:`_isolate`)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            results = await self._call([item for job in jobs for item in job.items])
        except Exception as error:  # noqa: BLE001 - handed to the waiting requests
            spent = loop.time() - started
            if self.config.isolate_failures and len(jobs) > 1:
                culprits = await self._isolate(jobs)
            else:
                culprits = jobs
                for job in jobs:
                    self.stats["failures"] += 1
                    if not job.future.done():
                        job.future.set_exception(error)
            if self.config.isolate_failures:
                self.queue.mark_suspect({job.client for job in culprits}, loop.time())
            self.queue.charge(spent, culprits or jobs, loop.time())  # the culprits pay for the failed call
            return culprits
        self.queue.charge(loop.time() - started, jobs, loop.time())
        start = 0
        for job in jobs:
            if not job.future.done():
                job.future.set_result(results[start : start + len(job.items)])
            start += len(job.items)
        return []

    async def _isolate(self, jobs: list[Job]) -> list[Job]:
        """After a failed call: bisect ``jobs`` -- unless they are one client's, more than a
        suspect's batch, while others wait: then they go back to the queue, to be retried (and
        bisected) in that client's own turns."""
        client = jobs[0].client
        if all(job.client == client for job in jobs) and len(jobs) > self.config.suspect_batch and self.queue.others_present(client):
            self.queue.requeue(jobs)
            self.stats["requeued"] += len(jobs)
            return jobs
        half = _split_point(jobs)
        return await self._settle(jobs[:half]) + await self._settle(jobs[half:])

    async def _call(self, items: list[Any]) -> list[Any]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        self.stats["calls"] += 1
        try:
            results = list(await loop.run_in_executor(self.executor, self.run, items))
        finally:
            self.stats["busy_ms"] += int((loop.time() - started) * 1000)
        if len(results) != len(items):
            raise RuntimeError(f"batch function returned {len(results)} results for {len(items)} items")
        self.stats["batches"] += 1
        self.stats["items"] += len(items)
        return results


def _split_point(jobs: list[Job]) -> int:
    """Where to bisect: the client boundary nearest the middle (else the middle)."""
    middle = len(jobs) / 2
    boundaries = [i for i in range(1, len(jobs)) if jobs[i].client != jobs[i - 1].client]
    return min(boundaries, key=lambda i: abs(i - middle)) if boundaries else len(jobs) // 2
