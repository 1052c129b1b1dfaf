"""Settings of the reward server (``genrm serve``); kept free of FastAPI imports so that the reward
files of OpenRLHF and veRL can read the shared YAML without the server's dependencies."""

from __future__ import annotations

from dataclasses import dataclass, field

OVER_LIMIT = ("reject", "truncate")
BODY_COPIES = 2  # the raw body and its decoded JSON text, while a request is parsed
TEXT_COPIES = 3  # copies of its texts: parsed JSON, the items cut out of it, the rendered judge prompts


def memory_estimate(body_bytes: int, text_bytes: int | None = None) -> int:
    """Memory one request may hold: ``BODY_COPIES`` x its body plus ``TEXT_COPIES`` x its decoded
    texts (``text_bytes``; before parsing, assumed equal to the body, as for ASCII text): 5x the
    body for ASCII, an upper bound of the 3.4x peak measured for one 7.8 MB request of 16 items."""
    return BODY_COPIES * body_bytes + TEXT_COPIES * (body_bytes if text_bytes is None else text_bytes)


@dataclass
class ServeConfig:
    """Where and how the reward server listens, and the limits that bound one client's work.

    Fields:
        host: interface to bind (``127.0.0.1``: this machine only; ``0.0.0.0`` exposes it -- set a token).
        port: TCP port.
        token_env: environment variable holding the bearer token clients must send (unset or empty:
            no authentication). ``/health`` is always open but answers ``{"status": "ok"}`` only;
            its counters and settings need the token (and a token to be set).
        max_body_bytes: largest request body (413 above it).
        max_items: most items (queries or pairs) per request (413 above it).
        max_item_tokens: most tokens of one item (question + response + reference, or prompt +
            both answers) as the judge's tokenizer counts them (an estimate, one token per word
            or sign, for backends without one). ``None``: what the judge's context holds -- its
            context length less ``max_new_tokens`` and the judge template's own tokens
            (``item_context_fallback`` when the backend does not tell its context length).
        max_item_chars: most characters of one item, checked before any tokenizing (so an
            oversize item costs nothing). ``None``: 16 x the token limit.
        over_limit: ``reject`` (an item over a limit answers 413 naming the item and the limit)
            or ``truncate`` (its texts are cut to fit, each to a fair share of the limit).
        item_context_fallback: context length assumed for the default ``max_item_tokens`` when the
            backend does not tell (scripted judges, remote endpoints without a tokenizer).
        max_pending_items: items allowed to wait for the judge before new requests get 503 (overload).
        max_pending_bytes: memory the server may hold for requests being read, parsed, queued or
            judged, each estimated by :func:`memory_estimate` (5x the body for ASCII text: body,
            decoded JSON, parsed texts, items, judge prompts), reserved by ``Content-Length``
            before the body is read; corrected once the texts are decoded, as wide characters take
            more). A request that does not fit gets 503 with ``Retry-After``.
        max_client_share: fraction of ``max_pending_bytes`` one client may hold; over it, 429 with
            ``Retry-After`` (one client cannot fill the queue for everyone).
        client_header: request header that names the client (set it when a trusted proxy adds
            one); ``None``: clients are told apart by their IP address. Used for the byte share
            and for fair scheduling of failing clients (``BatchConfig.suspect_s``).
        retry_after_s: the ``Retry-After`` seconds sent with 429 and 503 answers.
        request_timeout_s: longest wait of one request for its judge call (503 after it).
        docs: serve ``/docs``, ``/redoc`` and ``/openapi.json`` (off: they answer 404).
        log_level: uvicorn log level (error details, with their request id, go to the
            ``genrm_plugin.server`` logger).
    """

    host: str = "127.0.0.1"
    port: int = 8000
    token_env: str = "GENRM_SERVER_TOKEN"
    max_body_bytes: int = 8 * 2**20
    max_items: int = 1024
    max_item_tokens: int | None = None
    max_item_chars: int | None = None
    over_limit: str = field(default="reject", metadata={"choices": OVER_LIMIT})
    item_context_fallback: int = 8192
    max_pending_items: int = 100_000
    max_pending_bytes: int = 256 * 2**20
    max_client_share: float = 0.5
    client_header: str | None = None
    retry_after_s: int = 1
    request_timeout_s: float = 600.0
    docs: bool = False
    log_level: str = "info"

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_items", "max_pending_items", "max_pending_bytes", "item_context_fallback"):
            if getattr(self, name) < 1:
                raise ValueError(f"ServeConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("max_item_tokens", "max_item_chars"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"ServeConfig.{name} must be >= 1 or None (from the judge), got {getattr(self, name)}")
        if self.over_limit not in OVER_LIMIT:
            raise ValueError(f"ServeConfig.over_limit must be one of {OVER_LIMIT}, got {self.over_limit!r}")
        if not 0 < self.max_client_share <= 1:
            raise ValueError(f"ServeConfig.max_client_share must be in (0, 1], got {self.max_client_share}")
        if memory_estimate(self.max_body_bytes) > self.max_pending_bytes * self.max_client_share:
            raise ValueError(
                f"ServeConfig.max_body_bytes ({self.max_body_bytes}, estimated {memory_estimate(self.max_body_bytes)} bytes "
                f"in memory) is over one client's share of max_pending_bytes ({self.max_pending_bytes} x "
                f"{self.max_client_share}): the largest request could never be admitted; raise max_pending_bytes or "
                "lower max_body_bytes"
            )
        if self.retry_after_s < 0:
            raise ValueError(f"ServeConfig.retry_after_s must be >= 0, got {self.retry_after_s}")
        if not 0 <= self.port < 65536:
            raise ValueError(f"ServeConfig.port must be in [0, 65535], got {self.port}")
        if not self.request_timeout_s > 0:
            raise ValueError(f"ServeConfig.request_timeout_s must be > 0, got {self.request_timeout_s}")
        if self.client_header is not None and not self.client_header.strip():
            raise ValueError("ServeConfig.client_header must be a header name or None (use the IP address)")
