"""The reward server (``genrm serve``): a reward behind HTTP, for OpenRLHF and anything else.

The reward is the pairwise :class:`~genrm_plugin.reward.GenRMReward` (a judge against references) or
the pointwise :class:`~genrm_plugin.critique_reward.CritiqueReward` (a critique RM; ``reward_kind:
critique``); the server only translates HTTP onto the reward core (``reward.score_items``,
``reward.compare``), so both get the same limits, fairness and micro-batching.

Endpoints:

* ``POST /get_reward`` -- OpenRLHF's remote reward protocol: ``{"query": [...], "prompts": [...],
  "labels": [...]}`` -> ``{"rewards": [...], "scores": [...], "extra_logs": {...}}``. ``scores`` are
  P(response > reference) in [0, 1], ``rewards`` the same under ``RewardConfig.mapping``. How the
  response is cut out of ``query`` and where the reference travels is set by
  :class:`~genrm_plugin.integrations.openrlhf.OpenRLHFConfig` (default: ``query`` = prompt +
  response, ``labels`` = reference texts). All-abstain items get the stand-in probability
  (``RewardConfig.abstain_p``, else 1/2) and are counted in ``extra_logs["<name>_abstained"]``.
  A pointwise reward needs no ``labels``: ``scores`` = sigmoid(reward), ``rewards`` = the reward.
* ``POST /v1/compare`` -- pairs in, preferences out: ``{"prompts", "answers_a", "answers_b",
  "include_rationales"}`` -> ``{"preferences": [{"p_a", "winner", "votes_a", "votes_b", "abstain",
  "votes_used", "consistent", "p_by_order", "rationales"}]}``; ``p_a`` is ``null`` when every vote
  abstained (no stand-in here). A critique reward answers with its scorer's ``compare``
  (p_a = sigmoid(r_a - r_b), no votes).
* ``GET /health`` -- liveness, ``{"status": "ok"}``, never needs the token; with a valid token it
  also shows the judge settings, limits and counters.

Concurrent requests are micro-batched into one judge call (:mod:`genrm_plugin.serving.batcher`;
``max_batch`` items, ``max_wait_ms``), scheduled fairly across clients; both endpoints share one
backend thread. Bodies are decoded, validated and cut into items in a worker thread, in linear
time, so the event loop stays free for other requests. Limits bound the work, not just the bytes
(:class:`ServeConfig`): body bytes, items per request, characters and tokens per item
(:mod:`genrm_plugin.serving.limits`; 413 naming the item, or truncation), bytes held across
requests (503 / 429 with ``Retry-After``). Guards (:mod:`genrm_plugin.serving.guards`): binds
127.0.0.1 unless told otherwise; optional bearer token (``$GENRM_SERVER_TOKEN`` by default); errors
are JSON with a code, the offending fields and a request id -- 5xx bodies never carry exception
text, upstream URLs or bodies (the log has them); a request that makes the backend fail answers 503
(the batch is bisected so its neighbours are judged) and the server keeps serving. ``/docs`` and
``/openapi.json`` are off unless ``ServeConfig.docs``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Any, Callable

from fastapi import FastAPI, Request

from genrm_plugin.integrations.openrlhf import (
    OpenRLHFConfig, RequestError, RewardItem, parse_request, require_text, response_payload, score_items,
)
from genrm_plugin.serving.batcher import BatchConfig, MicroBatcher
from genrm_plugin.serving.config import ServeConfig, memory_estimate
from genrm_plugin.serving.guards import (
    AUTHORIZED, CLIENT, REQUEST_ID, RESERVATION, AdmissionMiddleware, ByteBudget, RequestContextMiddleware,
    ServiceError, TokenMiddleware, install_error_handlers, log, refusal,
)
from genrm_plugin.serving.limits import ItemLimits, ItemTooLong, TokenMeter
from genrm_plugin.serving.schemas import CompareRequest, CompareResponse, RewardRequest, RewardResponse, body_schema, read_body

__all__ = ["ServeConfig", "create_app", "run_server"]


def create_app(
    reward: Any,
    serve: ServeConfig | None = None,
    openrlhf: OpenRLHFConfig | None = None,
    batch: BatchConfig | None = None,
    token: str | None = None,
) -> FastAPI:
    """The FastAPI app serving ``reward`` (a :class:`~genrm_plugin.reward.GenRMReward` or a
    :class:`~genrm_plugin.critique_reward.CritiqueReward`: anything with the reward core's surface).

    ``token`` (default: ``$<serve.token_env>``) turns on bearer authentication.
    """
    serve = serve or ServeConfig()
    openrlhf = openrlhf or OpenRLHFConfig()
    batch = batch or BatchConfig()
    token = token if token is not None else (os.environ.get(serve.token_env) or None)
    if reward.needs_reference and openrlhf.reference_from == "reference_fn" and reward.reference_fn is None:
        raise ValueError("OpenRLHFConfig.reference_from='reference_fn' needs GenRMReward(reference_fn=...)")
    limits = item_limits(reward, serve)
    retry_after = {"Retry-After": str(serve.retry_after_s)}
    backend_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="genrm-judge")
    parse_threads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="genrm-parse")
    rewards = MicroBatcher(lambda items: score_items(reward, items), batch, backend_thread)
    compares = MicroBatcher(lambda items: reward.compare(*(list(column) for column in zip(*items))), batch, backend_thread)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await rewards.close()
        await compares.close()
        backend_thread.shutdown(wait=False, cancel_futures=True)
        parse_threads.shutdown(wait=False, cancel_futures=True)

    docs = {} if serve.docs else {"docs_url": None, "redoc_url": None, "openapi_url": None}
    app = FastAPI(title="genrm reward server", lifespan=lifespan, **docs)
    app.state.reward, app.state.batchers, app.state.limits = reward, {"get_reward": rewards, "compare": compares}, limits
    install_error_handlers(app)
    budget = ByteBudget(serve.max_pending_bytes, int(serve.max_pending_bytes * serve.max_client_share))
    app.state.budget = budget
    app.add_middleware(AdmissionMiddleware, max_bytes=serve.max_body_bytes, budget=budget, retry_after_s=serve.retry_after_s)
    app.add_middleware(TokenMiddleware, token=token)
    app.add_middleware(RequestContextMiddleware, client_header=serve.client_header)  # outermost: added last

    def check_count(count: int) -> None:
        if count > serve.max_items:
            raise ServiceError(413, "too_many_items", f"{count} items; the limit is {serve.max_items}")

    def within_limits(rows: list[tuple[str, ...]], fields: Callable[[int], list[str]]) -> list[tuple[str, ...]]:
        try:
            return limits.apply(rows)
        except ItemTooLong as e:
            named = fields(e.index)
            raise ServiceError(413, "item_too_long", f"{', '.join(named)}: {e}", named) from None

    def read_reward(raw: bytes) -> tuple[list[RewardItem], int]:
        body = read_body(raw, RewardRequest)
        check_count(len(body.query))
        try:
            items = parse_request(openrlhf, body.query, body.prompts, body.labels, reward.needs_reference)
        except RequestError as e:
            raise ServiceError(422, e.code, str(e), [e.field]) from None
        rows = within_limits([(it.question, it.response, it.reference or "") for it in items], lambda i: [f"query[{i}]"])
        return [RewardItem(q, r, None if it.reference is None else ref) for it, (q, r, ref) in zip(items, rows)], text_bytes(rows)

    def read_compare(raw: bytes) -> tuple[tuple[CompareRequest, list[tuple[str, ...]]], int]:
        body = read_body(raw, CompareRequest)
        columns = {"prompts": body.prompts, "answers_a": body.answers_a, "answers_b": body.answers_b}
        lengths = {name: len(column) for name, column in columns.items()}
        if len(set(lengths.values())) > 1:
            raise ServiceError(422, "invalid_request", f"prompts, answers_a and answers_b differ in length: {lengths}", list(lengths))
        check_count(len(body.prompts))
        try:
            for name, column in columns.items():
                for i, text in enumerate(column):
                    require_text(text, f"{name}[{i}]")
        except RequestError as e:
            raise ServiceError(422, e.code, str(e), [e.field]) from None
        rows = within_limits(list(zip(*columns.values())), lambda i: [f"{name}[{i}]" for name in columns])
        return (body, rows), text_bytes(rows)

    async def off_loop(parse: Callable[[bytes], tuple[Any, int]], request: Request) -> Any:
        """``parse(body)`` in a worker thread; the request's byte reservation corrected to its texts."""
        raw = b"".join([chunk async for chunk in request.stream()])  # not kept on the request, unlike .body()
        parsed, texts = await asyncio.get_running_loop().run_in_executor(parse_threads, parse, raw)
        refused = request.scope[RESERVATION].ensure(memory_estimate(len(raw), texts))
        if refused:
            status, code, message, headers = refusal(refused, serve.max_body_bytes, serve.retry_after_s)
            raise ServiceError(status, code, message, headers=headers)
        return parsed

    async def batched(batcher: MicroBatcher, items: list[Any], request: Request) -> list[Any]:
        if batcher.pending_items + len(items) > serve.max_pending_items:
            raise ServiceError(503, "overloaded", "", headers=retry_after)
        request_id = request.scope.get(REQUEST_ID)
        try:
            return await asyncio.wait_for(batcher.submit(items, request.scope.get(CLIENT, "")), serve.request_timeout_s)
        except asyncio.TimeoutError:
            log.warning("request %s: no judgment within %s s", request_id, serve.request_timeout_s)
            raise ServiceError(503, "timeout", "") from None
        except Exception as e:  # noqa: BLE001 - the backend failed this request; the server goes on
            log.error("request %s: judge backend failed", request_id, exc_info=e)
            raise ServiceError(503, "backend_error", "") from None

    @app.post("/get_reward", response_model=RewardResponse, openapi_extra=body_schema(RewardRequest))
    async def get_reward(request: Request):
        items = await off_loop(read_reward, request)
        return response_payload(reward.config.name, await batched(rewards, items, request))

    @app.post("/v1/compare", response_model=CompareResponse, openapi_extra=body_schema(CompareRequest))
    async def compare(request: Request):
        body, rows = await off_loop(read_compare, request)
        prefs = await batched(compares, rows, request)
        return {"preferences": [_preference_json(p, body.include_rationales) for p in prefs]}

    @app.get("/health")
    async def health(request: Request):
        if not request.scope.get(AUTHORIZED):
            return {"status": "ok"}
        return {
            "status": "ok",
            **reward.describe(),
            "batching": asdict(batch),
            "limits": {"max_item_tokens": limits.max_tokens, "max_item_chars": limits.max_chars, "over_limit": serve.over_limit},
            "pending_bytes": budget.held,
            "counters": {name: dict(b.stats) | {"pending_items": b.pending_items} for name, b in app.state.batchers.items()},
        }

    return app


def text_bytes(rows: list[tuple[str, ...]]) -> int:
    """Memory of the texts of ``rows`` (wide characters take 2 or 4 bytes each in Python)."""
    return sum(sys.getsizeof(text) for row in rows for text in row)


def item_limits(reward: Any, serve: ServeConfig) -> ItemLimits:
    """The per-item limits ``serve`` asks for (default tokens: what the reward's model holds,
    ``reward.item_tokens``), counted with the reward's tokenizer when it has one."""
    max_tokens = serve.max_item_tokens or reward.item_tokens(serve.item_context_fallback)
    return ItemLimits(max_tokens, serve.max_item_chars, serve.over_limit == "truncate", TokenMeter(reward.tokenizer))


def run_server(app: FastAPI, serve: ServeConfig, token_set: bool) -> None:
    """Serve ``app`` with uvicorn (blocks); warns when exposed beyond loopback without a token."""
    import uvicorn

    if not _is_loopback(serve.host) and not token_set:
        print(f"genrm serve: WARNING: listening on {serve.host} without a token (set ${serve.token_env})", file=sys.stderr)
    uvicorn.run(app, host=serve.host, port=serve.port, log_level=serve.log_level)


def _preference_json(pref: Any, include_rationales: bool) -> dict[str, Any]:
    return {
        "p_a": pref.p_a, "winner": pref.winner, "votes_a": pref.votes_a, "votes_b": pref.votes_b,
        "abstain": pref.abstain, "votes_used": pref.votes_used, "consistent": pref.consistent,
        "p_by_order": list(pref.p_by_order), "rationales": list(pref.rationales) if include_rationales else None,
    }


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
