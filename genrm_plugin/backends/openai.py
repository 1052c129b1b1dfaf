"""OpenAI-compatible backend: the judge served over HTTP by ``vllm serve``, SGLang or any endpoint
that speaks the legacy ``POST {base_url}/completions`` API.

What it sends and what it needs from the server:

* **Sampling** (``generate``): one request per judge prompt with ``prompt`` (the judge prompt rendered
  here with the judge model's chat template, ``OpenAIConfig.tokenizer``), ``max_tokens``,
  ``temperature``, ``top_p``, ``seed`` (derived per prompt from the call's seed), ``stop`` (the
  verdict markers) and ``n``. With ``n_mode="auto"`` the first request asks for all K samples at
  once; a server that rejects ``n > 1`` (HTTP 400) or returns fewer choices switches
  the backend to K separate requests with ``n=1`` and distinct per-sample seeds (``n_mode="separate"``
  forces that).
* **vLLM extensions** (``vllm_extensions``, default on; turn off for servers that reject unknown
  fields): ``add_special_tokens: false`` on every request (the rendered chat template already holds
  BOS and friends, as in the transformers backend), ``include_stop_str_in_output: true`` and ``top_k``.
* **Verdict markers**: servers strip the stop string from the text unless asked to keep it (vLLM);
  otherwise the matched stop string is restored from the choice's ``stop_reason`` (vLLM) or
  ``matched_stop`` (SGLang). Servers that report neither cannot tell which verdict stopped a sample:
  set ``stop_at_verdict=False`` there (samples then run to the verdict and past it; the judge reads
  the last verdict, so prefer a server that reports the stop).
* **No-CoT log-probabilities** (``choice_logprobs``):
  ``logprobs_mode="echo"`` (default, exact): for each choice, ``prompt + choice`` is sent with
  ``echo: true, logprobs: 1, max_tokens: 1``; the echoed prompt tokens carry their log-probabilities,
  and the log-probability of the first token where the choices' echoed tokens differ is the answer --
  the same quantity as the transformers backend's (needs ``echo`` + ``logprobs`` support: vLLM does).
  ``logprobs_mode="top_logprobs"`` (for servers without ``echo``): ``prompt`` plus the choices' common
  text prefix is sent with ``max_tokens: 1, logprobs: top_logprobs``; each choice's log-probability
  is the log-sum-exp of the listed tokens that start the rest of that choice. A choice absent from
  the list gets the smallest listed log-probability (an upper bound) and is counted in
  ``stats["missing_choice_tokens"]``.
* **Scale-out**: several ``base_urls`` are used round-robin (each retry goes to the next URL);
  ``max_concurrency`` requests are in flight at once; each has a ``http_timeout_s`` timeout; transport
  errors, timeouts and HTTP 408/409/425/429/5xx are retried up to ``max_retries`` times with
  exponential backoff (jittered, honouring ``Retry-After``); other HTTP errors fail at once with the
  server's message.
* The API key is read from the environment variable named by ``api_key_env`` (sent as a bearer token).

The protocol methods are synchronous; the HTTP work runs on an event loop in a background thread, so
the backend also works where an event loop is already running (notebooks, async servers).
"""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

from genrm_plugin.asyncloop import BackgroundLoop
from genrm_plugin.backends.base import SamplingConfig, TokenizerBackend, prompt_seed

N_MODES = ("auto", "native", "separate")
LOGPROBS_MODES = ("echo", "top_logprobs")
RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class OpenAIEndpointError(RuntimeError):
    """A completions request failed (non-retryable HTTP error, or retries exhausted)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class OpenAIConfig:
    """Client settings of the OpenAI-compatible backend (``--backend openai``; ``--model`` is the
    model name the server serves).

    Fields:
        base_urls: endpoint roots such as ``http://10.0.0.5:8000/v1``; several are used round-robin.
        api_key_env: environment variable holding the API key (unset or empty: no ``Authorization``).
        tokenizer: local path or hub name of the judge model's tokenizer, for its chat template
            (``None``: plain ``ROLE: content`` transcripts).
        max_concurrency: requests in flight at once (over all URLs).
        http_timeout_s: timeout of one request, in seconds.
        max_retries: retries of a failed request (transport error, timeout, 408/409/425/429/5xx).
        backoff_s: first retry delay; doubles per retry (jittered), capped at ``backoff_max_s``.
        backoff_max_s: longest retry delay.
        n_mode: ``auto`` (ask for ``n`` samples per request, fall back to ``n`` requests if the server
            refuses), ``native`` (always ``n``), ``separate`` (always ``n`` requests of one sample).
        logprobs_mode: ``echo`` (exact, needs ``echo`` + ``logprobs``) or ``top_logprobs``.
        top_logprobs: candidates listed per position in ``top_logprobs`` mode (vLLM allows 20).
        vllm_extensions: send vLLM's ``include_stop_str_in_output`` and ``top_k`` parameters.
        stop_at_verdict: send the verdict markers as ``stop`` strings.
    """

    base_urls: list[str] = field(default_factory=lambda: ["http://127.0.0.1:8000/v1"])
    api_key_env: str = "OPENAI_API_KEY"
    tokenizer: str | None = None
    max_concurrency: int = 32
    http_timeout_s: float = 120.0
    max_retries: int = 4
    backoff_s: float = 0.5
    backoff_max_s: float = 8.0
    n_mode: str = field(default="auto", metadata={"choices": N_MODES})
    logprobs_mode: str = field(default="echo", metadata={"choices": LOGPROBS_MODES})
    top_logprobs: int = 20
    vllm_extensions: bool = True
    stop_at_verdict: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.base_urls, str):
            self.base_urls = [u for u in self.base_urls.split(",") if u.strip()]
        if not self.base_urls:
            raise ValueError("OpenAIConfig.base_urls needs at least one URL")
        for url in self.base_urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"OpenAIConfig.base_urls: {url!r} is not an http(s) URL")
        if self.n_mode not in N_MODES:
            raise ValueError(f"OpenAIConfig.n_mode must be one of {N_MODES}, got {self.n_mode!r}")
        if self.logprobs_mode not in LOGPROBS_MODES:
            raise ValueError(f"OpenAIConfig.logprobs_mode must be one of {LOGPROBS_MODES}, got {self.logprobs_mode!r}")
        for name in ("max_concurrency", "top_logprobs"):
            if getattr(self, name) < 1:
                raise ValueError(f"OpenAIConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.max_retries < 0:
            raise ValueError(f"OpenAIConfig.max_retries must be >= 0, got {self.max_retries}")
        if not self.http_timeout_s > 0:
            raise ValueError(f"OpenAIConfig.http_timeout_s must be > 0, got {self.http_timeout_s}")


class OpenAIBackend(TokenizerBackend):
    """A :class:`~genrm_plugin.backends.base.JudgeBackend` over ``/v1/completions`` endpoints.

    Args:
        model: the model name the server serves (sent as ``model``).
        config: client settings (:class:`OpenAIConfig`).
        tokenizer: a tokenizer object with the judge's chat template (overrides ``config.tokenizer``).
    Attributes:
        stats: counters: ``requests``, ``retries``, ``n_fallbacks``, ``missing_choice_tokens``,
            ``requests_by_url``.
    """

    def __init__(self, model: str, config: OpenAIConfig | None = None, tokenizer: Any = None) -> None:
        self.model = model
        self.config = config or OpenAIConfig()
        if tokenizer is None and self.config.tokenizer:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(self.config.tokenizer)
        self.tokenizer = tokenizer
        self.stats: Counter = Counter()
        self.requests_by_url: Counter = Counter()
        self._urls = [u.rstrip("/") for u in self.config.base_urls]
        self._turn = itertools.count()  # round-robin position of the next request
        self._native_n = self.config.n_mode != "separate"
        self._loop = BackgroundLoop("genrm-openai-client")
        self._client = None  # httpx.AsyncClient and semaphore, created on the loop by the first call
        self._semaphore: asyncio.Semaphore | None = None

    # -- protocol -------------------------------------------------------------------------------
    def generate(
        self, prompts: Sequence[str], n: int, sampling: SamplingConfig, seed: int | None = None
    ) -> list[list[str]]:
        self.check_n(n)
        return self._run(self._generate_all(list(prompts), n, sampling, seed))

    def choice_logprobs(self, prompts: Sequence[str], choices: Sequence[str]) -> list[list[float]]:
        if len(choices) < 2:
            raise ValueError("choice_logprobs needs at least two choices")
        if self.config.logprobs_mode == "echo":
            return self._run(self._gather([self._echo_logprobs(p, list(choices)) for p in prompts]))
        return self._run(self._gather([self._top_logprobs(p, list(choices)) for p in prompts]))

    def close(self) -> None:
        """Close the HTTP client and stop the background event loop."""
        if self._client is not None:
            self._loop.run(self._client.aclose())
            self._client = self._semaphore = None
        self._loop.close()

    # -- sampling -------------------------------------------------------------------------------
    async def _generate_all(self, prompts: list[str], n: int, sampling: SamplingConfig, seed: int | None):
        greedy = sampling.temperature == 0
        draws = 1 if greedy else n
        results = await self._gather([self._samples(p, draws, sampling, prompt_seed(seed, p)) for p in prompts])
        return [texts * n if greedy else texts for texts in results]

    async def _samples(self, prompt: str, n: int, sampling: SamplingConfig, seed: int | None) -> list[str]:
        if n > 1 and self._native_n:
            try:
                texts = await self._complete(prompt, n, sampling, seed)
            except OpenAIEndpointError as e:
                if not (self.config.n_mode == "auto" and e.status == 400):
                    raise  # a 400 that is not about n fails again below with n=1 and is raised there
                texts = []
            if len(texts) == n:
                return texts
            if self.config.n_mode == "native":
                raise OpenAIEndpointError(f"server returned {len(texts)} choices for n={n}")
            if self._native_n:  # concurrent prompts may all learn it at once: count the switch once
                self._native_n = False
                self.stats["n_fallbacks"] += 1
        if n == 1:
            return await self._complete(prompt, 1, sampling, seed)
        seeds = [None if seed is None else prompt_seed(seed, f"sample {j}") for j in range(n)]
        singles = await self._gather([self._complete(prompt, 1, sampling, s) for s in seeds])
        return [texts[0] for texts in singles]

    async def _complete(self, prompt: str, n: int, sampling: SamplingConfig, seed: int | None) -> list[str]:
        body = self._body(prompt=prompt, n=n, max_tokens=sampling.max_new_tokens, temperature=sampling.temperature)
        if sampling.temperature > 0:
            body["top_p"] = sampling.top_p
            if sampling.top_k > 0 and self.config.vllm_extensions:
                body["top_k"] = sampling.top_k
        if seed is not None:
            body["seed"] = seed
        stops = list(sampling.stop) if self.config.stop_at_verdict else []
        if stops:
            body["stop"] = stops
            if self.config.vllm_extensions:
                body["include_stop_str_in_output"] = True
        choices = sorted(_choices(await self._post(body)), key=lambda c: c.get("index", 0))
        return [_with_stop(c, stops) for c in choices]

    # -- no-CoT log-probabilities ---------------------------------------------------------------
    async def _echo_logprobs(self, prompt: str, choices: list[str]) -> list[float]:
        bodies = [self._body(prompt=prompt + c, max_tokens=1, temperature=0.0, echo=True, logprobs=1) for c in choices]
        answers = await self._gather([self._post(b) for b in bodies])
        echoed = []
        for choice, answer in zip(choices, answers):
            logprobs = _choices(answer)[0].get("logprobs") or {}
            tokens, values = logprobs.get("tokens"), logprobs.get("token_logprobs")
            if not tokens or not values:
                raise OpenAIEndpointError("echo answer has no tokens/token_logprobs: the server must support echo + logprobs")
            offsets = logprobs.get("text_offset") or []
            length = len(prompt + choice)
            count = sum(1 for o in offsets if o < length) if len(offsets) == len(tokens) else len(tokens) - 1
            echoed.append((tokens[:count], values[:count]))
        split = 0
        while all(len(t) > split for t, _ in echoed) and len({t[split] for t, _ in echoed}) == 1:
            split += 1
        if split == 0 or any(len(t) <= split for t, _ in echoed):
            raise ValueError(f"choices {choices} do not differ by a token after the prompt")
        return [float(values[split]) for _, values in echoed]

    async def _top_logprobs(self, prompt: str, choices: list[str]) -> list[float]:
        common = os.path.commonprefix(choices)
        body = self._body(prompt=prompt + common, max_tokens=1, temperature=0.0, logprobs=self.config.top_logprobs)
        logprobs = _choices(await self._post(body))[0].get("logprobs") or {}
        top = (logprobs.get("top_logprobs") or [None])[0]
        if not top:
            raise OpenAIEndpointError("answer has no top_logprobs: the server must support logprobs")
        floor = min(top.values())
        out = []
        for choice in choices:
            rest = choice[len(common) :]
            matches = [lp for tok, lp in top.items() if tok and rest.startswith(tok)]
            if not matches:
                self.stats["missing_choice_tokens"] += 1
                out.append(float(floor))
                continue
            m = max(matches)
            out.append(m + math.log(sum(math.exp(lp - m) for lp in matches)))
        return out

    # -- HTTP -----------------------------------------------------------------------------------
    def _body(self, **fields: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, **fields}
        if self.config.vllm_extensions:
            body["add_special_tokens"] = False  # the rendered chat template already holds BOS etc.
        return body

    async def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        import httpx

        cfg = self.config
        headers = {}
        key = os.environ.get(cfg.api_key_env, "") if cfg.api_key_env else ""
        if key:
            headers["Authorization"] = f"Bearer {key}"
        error: str = ""
        start = next(self._turn)
        for attempt in range(cfg.max_retries + 1):
            url = self._urls[(start + attempt) % len(self._urls)]  # retries move on to the next URL
            delay = None
            try:
                async with self._semaphore:
                    self.stats["requests"] += 1
                    self.requests_by_url[url] += 1
                    response = await self._client.post(f"{url}/completions", json=body, headers=headers)
            except httpx.TransportError as e:  # connection refused/reset, timeouts, protocol errors
                error = f"{url}: {type(e).__name__}: {e}"
            else:
                if response.status_code == 200:
                    try:
                        return response.json()
                    except ValueError:
                        error = f"{url}: answer is not JSON: {response.text[:200]!r}"
                elif response.status_code in RETRY_STATUS:
                    error = f"{url} answered HTTP {response.status_code}: {response.text[:300]}"
                    delay = _retry_after(response.headers.get("retry-after"))
                else:
                    raise OpenAIEndpointError(
                        f"{url} answered HTTP {response.status_code}: {response.text[:500]}", status=response.status_code
                    )
            if attempt < cfg.max_retries:
                self.stats["retries"] += 1
                backoff = min(cfg.backoff_s * 2**attempt, cfg.backoff_max_s) * (0.5 + random.random() / 2)
                await asyncio.sleep(delay if delay is not None else backoff)
        raise OpenAIEndpointError(f"completions request failed after {cfg.max_retries + 1} attempts; last error: {error}")

    async def _gather(self, coros):
        return list(await asyncio.gather(*coros))

    def _run(self, coro):
        return self._loop.run(self._with_client(coro))

    async def _with_client(self, coro):
        if self._client is None:  # on the loop thread: no race between calls
            import httpx

            limits = httpx.Limits(max_connections=self.config.max_concurrency)
            self._client = httpx.AsyncClient(timeout=self.config.http_timeout_s, limits=limits)
            self._semaphore = asyncio.Semaphore(self.config.max_concurrency)
        return await coro


def _choices(answer: Any) -> list[dict[str, Any]]:
    choices = answer.get("choices") if isinstance(answer, dict) else None
    if not isinstance(choices, list) or not choices or not all(isinstance(c, dict) for c in choices):
        raise OpenAIEndpointError(f"completions answer has no choices: {str(answer)[:300]}")
    return choices


def _with_stop(choice: dict[str, Any], stops: list[str]) -> str:
    """The choice's text with the matched stop string put back if the server stripped it."""
    text = choice.get("text") or ""
    if not stops or choice.get("finish_reason") != "stop" or any(text.endswith(s) for s in stops):
        return text
    matched = choice.get("stop_reason", choice.get("matched_stop"))
    return text + matched if isinstance(matched, str) and matched in stops else text


def _retry_after(value: str | None) -> float | None:
    try:
        return min(max(float(value), 0.0), 60.0) if value is not None else None
    except ValueError:
        return None
