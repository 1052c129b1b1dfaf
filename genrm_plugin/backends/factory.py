"""Build a judge backend from a :class:`BackendConfig` (CLI flags / YAML), on the accelerator when there is one."""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

BACKENDS = ("transformers", "vllm", "openai")


@dataclass
class BackendConfig:
    """Which engine runs the judge.

    Fields:
        model: local path or hub name of the judge model; ``toy`` builds the tiny kit model
            (random weights, offline) for smoke runs.
        backend: engine: ``transformers``, ``vllm`` (offline ``vllm.LLM``; settings in
            :class:`~genrm_plugin.backends.vllm.VLLMConfig`) or ``openai`` (a ``/v1/completions``
            endpoint serving ``model``; settings in :class:`~genrm_plugin.backends.openai.OpenAIConfig`).
        dtype: weights dtype (``auto``, ``float32``, ``bfloat16``, ...).
        device: torch device for the transformers backend (``None``: :func:`default_device`, the
            accelerator of this process when there is one, else the CPU).
        device_map: ``transformers`` device map (``auto``: shard a model too big for one GPU over
            all visible GPUs with accelerate; overrides ``device``).
        batch_size: sequences per forward batch (prompts x samples).
    """

    model: str = "toy"
    backend: str = field(default="transformers", metadata={"choices": BACKENDS})
    dtype: str = "auto"
    device: str | None = None
    device_map: str | None = None
    batch_size: int = 64

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"BackendConfig.backend must be one of {BACKENDS}, got {self.backend!r}")


def default_device() -> str:
    """This process's accelerator: accelerate's device once its state exists (``cuda:<LOCAL_RANK>``
    under a launcher), else torch's (``cuda:<LOCAL_RANK>``, ``mps``, ``xpu``); ``cpu`` without one."""
    import torch
    from accelerate import PartialState

    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and PartialState._shared_state:  # a launcher's rank
        return str(PartialState().device)
    if torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0)) % max(1, torch.cuda.device_count())}"
    for name in ("xpu", "mps"):
        if getattr(torch, name, None) is not None and getattr(torch, name).is_available():
            return name
    return "cpu"


def load_backend(config: BackendConfig | None = None, vllm=None, openai=None):
    """Instantiate the backend described by ``config`` (``vllm`` / ``openai``: that backend's settings)."""
    config = config or BackendConfig()
    if config.backend == "vllm":
        from genrm_plugin.backends.vllm import VLLMBackend

        if config.model == "toy":  # a freshly saved tiny kit model (random weights; smoke runs)
            from genrm_plugin.toy import save_tiny

            return VLLMBackend.from_pretrained(str(save_tiny(tempfile.mkdtemp(prefix="genrm-toy-"))), vllm, dtype="float32")
        return VLLMBackend.from_pretrained(config.model, vllm, dtype=config.dtype)
    if config.backend == "openai":
        from genrm_plugin.backends.openai import OpenAIBackend

        return OpenAIBackend(config.model, openai)
    from genrm_plugin.backends.transformers import TransformersBackend

    if config.model == "toy":
        from genrm_plugin.toy import build_tiny_model

        model, tokenizer = build_tiny_model()
        return TransformersBackend(model.to(config.device or default_device()), tokenizer, batch_size=config.batch_size)
    if config.device_map is not None:
        return TransformersBackend.from_pretrained(
            config.model, dtype=config.dtype, batch_size=config.batch_size, device_map=config.device_map
        )
    device = config.device or default_device()
    logger.info(f"judge {config.model} on {device} ({config.dtype})")
    return TransformersBackend.from_pretrained(config.model, dtype=config.dtype, device=device, batch_size=config.batch_size)
