"""HTTP guards of the reward server: request ids, bearer token, body and byte-budget admission,
JSON error responses.

Every request gets an id (the ``X-Request-ID`` response header). Every error leaves the server as
``{"error": {"code": ..., "message": ..., "fields": [...], "request_id": ...}}``: 400 malformed
JSON, 401 missing/wrong token, 413 body, item count or item length over the limit, 422 wrong types
/ lengths / unusable fields / invalid Unicode (named, with row numbers), 429 one client over its
share of the pending bytes, 503 backend failure, timeout or overload (the server keeps serving),
500 anything unexpected. Messages of 4xx answers describe the request; 5xx answers carry a fixed
message per code -- never exception text, upstream URLs or upstream bodies; those go to the
``genrm_plugin.server`` log under the request id.
"""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from genrm_plugin.serving.config import memory_estimate

log = logging.getLogger("genrm_plugin.server")

HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}
SERVER_MESSAGES = {
    "backend_error": "the judge backend failed on this request; the server log has the details under its request id",
    "timeout": "no judgment within the server's request timeout",
    "overloaded": "the server holds as much work as it may; retry after the Retry-After seconds",
    "internal_error": "unexpected server error; the server log has the details under its request id",
}
REQUEST_ID, CLIENT, AUTHORIZED, RESERVATION = "genrm.request_id", "genrm.client", "genrm.authorized", "genrm.reservation"


class ServiceError(Exception):
    """An error with an HTTP status, a code, a message (4xx: about the request) and the offending fields."""

    def __init__(self, status: int, code: str, message: str, fields: list[str] | None = None, headers=None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields, self.headers = status, code, message, fields or [], headers


def error_body(status: int, code: str, message: str, request_id: str, fields: list[str] | None = None) -> dict[str, Any]:
    if status >= 500:
        message = SERVER_MESSAGES.get(code, SERVER_MESSAGES["internal_error"])
    return {"error": {"code": code, "message": message, "fields": fields or [], "request_id": request_id}}


def error_response(request: Request, status: int, code: str, message: str, fields=None, headers=None) -> JSONResponse:
    body = error_body(status, code, message, request.scope.get(REQUEST_ID, ""), fields)
    return JSONResponse(body, status_code=status, headers=headers)


def field_name(loc: tuple[Any, ...]) -> str:
    """``("body", "query", 3)`` -> ``query[3]``."""
    name = ""
    for part in loc[1:] if loc and loc[0] == "body" else loc:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "body"


def validation_error(errors: list[dict[str, Any]]) -> ServiceError:
    """pydantic errors as one 400 (not JSON) or 422 (fields named; the input is never echoed)."""
    if any(e.get("type") == "json_invalid" for e in errors):
        return ServiceError(400, "invalid_json", "request body is not valid JSON")
    fields = [field_name(tuple(e.get("loc", ()))) for e in errors]
    message = "; ".join(f"{f}: {e.get('msg', 'invalid')}" for f, e in zip(fields, errors))
    return ServiceError(422, "invalid_request", message, fields)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service(request: Request, exc: ServiceError):
        return error_response(request, exc.status, exc.code, exc.message, exc.fields, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        error = validation_error(list(exc.errors()))
        return error_response(request, error.status, error.code, error.message, error.fields)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        code = getattr(exc, "code", None) or HTTP_CODES.get(exc.status_code, "http_error")
        return error_response(request, exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        request_id = request.scope.get(REQUEST_ID, "")
        log.error("request %s: unexpected error", request_id, exc_info=exc)
        # answered outside the middleware stack: the request id header is added here
        return error_response(request, 500, "internal_error", "", headers={"X-Request-ID": request_id})


async def send_error(send, scope, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
    """Answer from ASGI middleware (before the app sees the request) and close the connection."""
    data = json.dumps(error_body(status, code, message, scope.get(REQUEST_ID, ""))).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()), (b"connection", b"close")]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})


class RequestContextMiddleware:
    """Outermost: a request id (``X-Request-ID`` on every answer) and the client key (the
    ``client_header`` value, else the peer's IP address) in the ASGI scope."""

    def __init__(self, app: Any, client_header: str | None = None) -> None:
        self.app = app
        self.client_header = client_header.lower().encode() if client_header else None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request_id = uuid.uuid4().hex[:16]
        scope[REQUEST_ID] = request_id
        named = dict(scope.get("headers") or []).get(self.client_header) if self.client_header else None
        peer = scope.get("client")
        scope[CLIENT] = named.decode("latin-1")[:128] if named else (peer[0] if peer else "")

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                message = dict(message, headers=[*message.get("headers", []), (b"x-request-id", request_id.encode())])
            await send(message)

        return await self.app(scope, receive, send_with_id)


class TokenMiddleware:
    """Require ``Authorization: Bearer <token>`` on every path but ``open_paths``; checked before
    the body is read, so unauthenticated clients learn nothing about the request format. Marks the
    scope ``authorized`` (open paths answer more to authorized callers)."""

    def __init__(self, app: Any, token: str | None, open_paths: tuple[str, ...] = ("/health",)) -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.open_paths = open_paths

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        header = dict(scope.get("headers") or []).get(b"authorization", b"")
        scheme, _, given = header.partition(b" ")
        scope[AUTHORIZED] = self.token is not None and scheme.lower() == b"bearer" and secrets.compare_digest(given.strip(), self.token)
        if self.token is not None and not scope[AUTHORIZED] and scope.get("path") not in self.open_paths:
            return await send_error(send, scope, 401, "unauthorized", "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})
        return await self.app(scope, receive, send)


class ByteBudget:
    """Request bytes held by the server, in all and per client (``reserve`` / ``release``)."""

    def __init__(self, total: int, per_client: int) -> None:
        self.total, self.per_client = total, per_client
        self.held = 0
        self.by_client: dict[str, int] = {}

    def reserve(self, client: str, size: int) -> str | None:
        """Take ``size`` bytes for ``client``; returns ``None``, or why not (``overloaded``, ``client_share``)."""
        if self.held + size > self.total:
            return "overloaded"
        if self.by_client.get(client, 0) + size > self.per_client:
            return "client_share"
        self.held += size
        self.by_client[client] = self.by_client.get(client, 0) + size
        return None

    def release(self, client: str, size: int) -> None:
        self.held -= size
        left = self.by_client.get(client, 0) - size
        if left > 0:
            self.by_client[client] = left
        else:
            self.by_client.pop(client, None)


class Reservation:
    """The bytes of a :class:`ByteBudget` one request holds; :meth:`ensure` grows it."""

    def __init__(self, budget: ByteBudget, client: str) -> None:
        self.budget, self.client, self.held = budget, client, 0

    def ensure(self, size: int) -> str | None:
        """Hold at least ``size`` bytes; returns ``None``, or why not (``overloaded``, ``client_share``)."""
        extra = size - self.held
        if extra <= 0:
            return None
        refused = self.budget.reserve(self.client, extra)
        if refused is None:
            self.held += extra
        return refused

    def release(self) -> None:
        self.budget.release(self.client, self.held)
        self.held = 0


def refusal(code: str, max_bytes: int, retry_after_s: int) -> tuple[int, str, str, dict[str, str] | None]:
    """(status, code, message, headers) of a request refused for its size or the byte budget."""
    if code == "body_too_large":
        return 413, code, f"request body over {max_bytes} bytes", None
    headers = {"Retry-After": str(retry_after_s)}
    if code == "client_share":
        return 429, code, "this client holds its share of the server's pending bytes; retry after Retry-After seconds", headers
    return 503, code, "", headers


class BodyRefused(StarletteHTTPException):
    """Raised while streaming a body past a limit (FastAPI answers HTTP exceptions with ``code``)."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None) -> None:
        super().__init__(status, message, headers)
        self.code = code


class AdmissionMiddleware:
    """Admit a request body only within ``max_bytes`` and the :class:`ByteBudget`: its
    :func:`memory_estimate` is reserved by ``Content-Length`` before the body is read (or chunk by
    chunk while streaming), kept in the scope (``RESERVATION``; the handler corrects it once the
    texts are decoded) and released when the answer is sent. Over the body limit: 413; over the
    budget: 503 (the server is full) or 429 (this client holds its share), both with ``Retry-After``."""

    def __init__(self, app: Any, max_bytes: int, budget: ByteBudget, retry_after_s: int = 1) -> None:
        self.app, self.max_bytes, self.budget, self.retry_after_s = app, max_bytes, budget, retry_after_s

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        declared = int(length) if length is not None and length.isdigit() else None
        if declared is not None and declared > self.max_bytes:
            return await self._refuse(scope, receive, send, "body_too_large", drain=False)
        reservation = scope[RESERVATION] = Reservation(self.budget, scope.get(CLIENT, ""))
        refused = reservation.ensure(memory_estimate(declared or 0))
        if refused:
            return await self._refuse(scope, receive, send, refused, drain=True)
        received = 0
        started = False

        async def admitted_receive():
            nonlocal received
            message = await receive()
            size = len(message.get("body", b"")) if message["type"] == "http.request" else 0
            if declared is None and size:
                received += size
                refused = "body_too_large" if received > self.max_bytes else reservation.ensure(memory_estimate(received))
                if refused:
                    raise BodyRefused(*refusal(refused, self.max_bytes, self.retry_after_s))
            return message

        async def tracking_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, admitted_receive, tracking_send)
        except BodyRefused as exc:
            if not started:
                await send_error(send, scope, *refusal(exc.code, self.max_bytes, self.retry_after_s))
        finally:
            reservation.release()

    async def _refuse(self, scope, receive, send, code: str, drain: bool) -> None:
        if drain:  # read and drop a body within the limit, so the client reads our answer, not a reset
            message = {"more_body": True}
            while message.get("more_body"):
                message = await receive()
                if message["type"] != "http.request":
                    break
        await send_error(send, scope, *refusal(code, self.max_bytes, self.retry_after_s))
