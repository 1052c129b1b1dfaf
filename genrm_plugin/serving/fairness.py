"""Fair scheduling of the micro-batcher's queue across clients (start-time fair queueing).

Every request carries a client key (the server uses the IP address or a configured header). Each
client has a queue and a *debt*: the backend seconds its requests have used. The next batch goes
to the client that has used the least, so a client cannot take more than its share of the judge
however many requests it sends. A client counts as present while it has requests waiting or
sent or was answered one within ``idle_s``; one that was away longer re-enters at the current virtual time (the
smallest debt among present clients), so being away saves no credit.

Clients whose requests made the backend fail (*suspects*, for ``suspect_s`` seconds after each
failure) are never batched with other clients: their turn is a batch of their own requests only
(at most ``suspect_batch`` items while others are present), and what their failures cost -- the
failed calls and the bisection that finds the failing requests -- is charged to them, divided by
``suspect_weight`` (a suspect's share of the judge is that fraction of a clean client's). A suspect
waits for its turn even when the backend is free: it runs only while its debt is the least of all
present clients, so it cannot use the moments between a closed-loop client's requests to take
more than its share. Clean clients' turns combine every waiting clean client, one request each in
order of debt, then again, up to the batch size.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterable


@dataclass
class Job:
    """One request waiting in the batcher: its items, its future, arrival time and client key."""

    items: list[Any]
    future: asyncio.Future
    arrived: float
    client: str = ""


@dataclass
class _Client:
    queue: deque[Job] = field(default_factory=deque)
    debt: float = 0.0
    seen: float = 0.0  # loop time of its last request or answer


class FairQueue:
    """Pending :class:`Job` s per client; :meth:`take` forms the next batch.

    Args:
        suspect_s: how long after a failure a client's requests run apart from others' (0: never).
        suspect_batch: most items of a suspect client's batch while other clients are present.
        idle_s: how long a client without waiting requests still counts as present.
        suspect_weight: a suspect's share of the backend relative to a clean client's.
    """

    def __init__(self, suspect_s: float = 30.0, suspect_batch: int = 4, idle_s: float = 1.0, suspect_weight: float = 0.1) -> None:
        self.suspect_s = suspect_s
        self.suspect_batch = suspect_batch
        self.idle_s = idle_s
        self.suspect_weight = suspect_weight
        self.items = 0  # items waiting
        self._clients: dict[str, _Client] = {}
        self._suspect_until: dict[str, float] = {}
        self._clock = 0.0  # virtual time: the least debt among present clients at the last take

    def __bool__(self) -> bool:
        return self.items > 0

    def push(self, job: Job) -> None:
        client = self._clients.get(job.client)
        if client is None:
            client = self._clients[job.client] = _Client(debt=self._clock)
        client.queue.append(job)
        client.seen = max(client.seen, job.arrived)
        self.items += len(job.items)

    def oldest_arrival(self) -> float:
        return min(c.queue[0].arrived for c in self._clients.values() if c.queue)

    def is_suspect(self, client: str, now: float) -> bool:
        until = self._suspect_until.get(client)
        if until is not None and until <= now:
            del self._suspect_until[client]
            return False
        return until is not None

    def take(self, limit: int, now: float) -> list[Job]:
        """The next batch (whole requests, at least one, about ``limit`` items); ``[]`` when nothing
        may run now (empty, or only a suspect whose turn has not come: retry on the next arrival or
        after ``idle_s``)."""
        self._drop_gone(now)
        waiting = sorted((c.debt, key) for key, c in self._clients.items() if c.queue)
        if not waiting:
            return []
        self._clock = min(c.debt for c in self._clients.values())
        first_debt, first = waiting[0]
        if self.is_suspect(first, now):
            if first_debt > self._clock:
                return []
            cap = limit if len(self._clients) == 1 else min(limit, self.suspect_batch)
            return self._pop_rounds([first], cap)
        clean = [key for _, key in waiting if not self.is_suspect(key, now)]
        return self._pop_rounds(clean, limit)

    def charge(self, seconds: float, jobs: Iterable[Job], now: float) -> None:
        """Add ``seconds`` of backend time to the jobs' clients, in proportion to their items
        (a suspect's divided by ``suspect_weight``)."""
        jobs = list(jobs)
        total = sum(len(j.items) for j in jobs) or 1
        for job in jobs:
            client = self._clients.get(job.client)
            if client is None:  # left since: re-enters at the clock anyway
                continue
            weight = self.suspect_weight if self.is_suspect(job.client, now) else 1.0
            client.debt += seconds * len(job.items) / total / weight
            client.seen = max(client.seen, now)  # just answered: present while it sends the next

    def others_present(self, key: str) -> bool:
        return any(other != key for other in self._clients)

    def requeue(self, jobs: list[Job]) -> None:
        """Put ``jobs`` (taken earlier) back at the front of their clients' queues, in order."""
        for job in reversed(jobs):
            client = self._clients.get(job.client)
            if client is None:
                client = self._clients[job.client] = _Client(debt=self._clock, seen=job.arrived)
            client.queue.appendleft(job)
            self.items += len(job.items)

    def mark_suspect(self, clients: Iterable[str], now: float) -> None:
        if self.suspect_s > 0:
            for key in clients:
                self._suspect_until[key] = now + self.suspect_s

    def drain(self) -> list[Job]:
        """Every waiting job (the queue is left empty)."""
        jobs = [job for c in self._clients.values() for job in c.queue]
        self._clients.clear()
        self.items = 0
        return jobs

    # -- internals ------------------------------------------------------------------------------
    def _pop_rounds(self, keys: list[str], limit: int) -> list[Job]:
        """One request per client in ``keys`` order, round after round, until ``limit`` items."""
        jobs: list[Job] = []
        size = 0
        while keys:
            for key in list(keys):
                queue = self._clients[key].queue
                if jobs and size + len(queue[0].items) > limit:
                    return jobs
                job = queue.popleft()
                self.items -= len(job.items)
                if not job.future.done():  # the caller has not gone
                    jobs.append(job)
                    size += len(job.items)
                if not queue:
                    keys.remove(key)
        return jobs

    def _drop_gone(self, now: float) -> None:
        """Forget requests whose caller has gone, and clients away for longer than ``idle_s``."""
        for key in list(self._clients):
            client = self._clients[key]
            while client.queue and client.queue[0].future.done():
                self.items -= len(client.queue.popleft().items)
            if not client.queue and now - client.seen > self.idle_s:
                del self._clients[key]
