"""The judge stack every judging command parses and builds: ``BackendConfig``, ``VLLMConfig``
(``--backend vllm``), ``OpenAIConfig`` (``--backend openai``) and ``JudgeConfig`` flags.

``genrm judge`` and ``genrm eval`` take the same flags this way (``--model``,
``--tensor_parallel_size``, ``--base_urls``, ``--k``, ...).
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from typing import Any, Sequence


def parse_with_judge_stack(own: Sequence[type], argv: list[str], prog: str) -> tuple:
    """(the command's own configs..., (BackendConfig, VLLMConfig, OpenAIConfig), JudgeConfig)."""
    from genrm_plugin.backends.factory import BackendConfig
    from genrm_plugin.backends.openai import OpenAIConfig
    from genrm_plugin.backends.vllm import VLLMConfig
    from genrm_plugin.config_parser import parse_configs
    from genrm_plugin.judge import JudgeConfig

    *configs, backend_cfg, vllm_cfg, openai_cfg, judge_cfg = parse_configs(
        (*own, BackendConfig, VLLMConfig, OpenAIConfig, JudgeConfig), argv, prog
    )
    return (*configs, (backend_cfg, vllm_cfg, openai_cfg), judge_cfg)


def toy_model_notice(backend_cfg, prog: str) -> None:
    """One line on stderr when the judge is the default ``toy`` model (random weights)."""
    if backend_cfg.model == "toy":
        print(
            f"{prog}: note: no --model given: judging with the random-weight kit model ('toy'), whose "
            "verdicts are noise; pass --model PATH_OR_NAME for a real judge",
            file=sys.stderr,
        )


def build_judge(backend_cfgs: tuple, judge_cfg) -> tuple[Any, dict[str, Any]]:
    """A :class:`~genrm_plugin.judge.GenerativeJudge` over the configured backend, and its description."""
    from genrm_plugin.backends.factory import load_backend
    from genrm_plugin.judge import GenerativeJudge

    from genrm_plugin.judge_card import apply_card

    backend_cfg, vllm_cfg, openai_cfg = backend_cfgs
    judge_cfg = apply_card(judge_cfg, backend_cfg.model)  # a trained judge's card fills unset flags
    info = {"judge_model": backend_cfg.model, "judge_backend": backend_cfg.backend, "judge_config": asdict(judge_cfg)}
    return GenerativeJudge(load_backend(backend_cfg, vllm=vllm_cfg, openai=openai_cfg), judge_cfg), info
