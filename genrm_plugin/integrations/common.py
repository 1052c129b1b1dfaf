"""What the OpenRLHF, veRL and server front ends share: building a reward from config files."""

from __future__ import annotations

import os
import threading
from typing import Any, Callable, Sequence


CONFIG_ENV = "GENRM_CONFIG"
_shared: dict[str, Any] = {}
_shared_lock = threading.Lock()


def config_types() -> tuple[type, ...]:
    """The dataclasses that describe a judge reward (backend, engine/client, judge, reward)."""
    from genrm_plugin.backends.factory import BackendConfig
    from genrm_plugin.backends.openai import OpenAIConfig
    from genrm_plugin.backends.vllm import VLLMConfig
    from genrm_plugin.judge import JudgeConfig
    from genrm_plugin.reward import RewardConfig

    return (BackendConfig, VLLMConfig, OpenAIConfig, JudgeConfig, RewardConfig)


def build_reward(backend_cfg, vllm_cfg, openai_cfg, judge_cfg, reward_cfg, reference_fn=None):
    """A :class:`~genrm_plugin.reward.GenRMReward` over the backend the configs describe."""
    from genrm_plugin.backends.factory import load_backend
    from genrm_plugin.judge import GenerativeJudge
    from genrm_plugin.reward import GenRMReward

    from genrm_plugin.judge_card import apply_card

    judge_cfg = apply_card(judge_cfg, backend_cfg.model)  # a trained judge's card fills unset settings
    backend = load_backend(backend_cfg, vllm=vllm_cfg, openai=openai_cfg)
    return GenRMReward(GenerativeJudge(backend, judge_cfg), reward_cfg, reference_fn=reference_fn)


def file_config_types() -> tuple[type, ...]:
    """Every dataclass a shared ``genrm.yaml`` may fill: the judge stack, the server, micro-batching,
    OpenRLHF and veRL settings (each consumer takes its part; unknown keys are errors)."""
    from genrm_plugin.integrations.openrlhf import OpenRLHFConfig
    from genrm_plugin.integrations.verl import VerlConfig
    from genrm_plugin.serving.batcher import BatchConfig
    from genrm_plugin.serving.config import ServeConfig

    return (*config_types(), ServeConfig, BatchConfig, OpenRLHFConfig, VerlConfig)


def configs_from_file(path: str | None, extra: Sequence[type] = (), prog: str = "genrm") -> tuple[Any, ...]:
    """The :func:`config_types` instances followed by the ``extra`` ones, filled from a YAML file
    (the ``genrm serve --config`` format: one flat mapping of field names); ``None``: the defaults."""
    return pick(parse_file_configs(["--config", path] if path else [], prog), (*config_types(), *extra))


def parse_file_configs(argv: Sequence[str], prog: str) -> tuple[Any, ...]:
    """All :func:`file_config_types` from flags / ``--config`` YAML."""
    from genrm_plugin.config_parser import parse_configs

    return parse_configs(file_config_types(), argv, prog)


def pick(parsed: Sequence[Any], types: Sequence[type]) -> tuple[Any, ...]:
    by_type = {type(c): c for c in parsed}
    return tuple(by_type[t] for t in types)


def configs_from_env(extra: Sequence[type] = (), prog: str = "genrm") -> tuple[Any, ...]:
    """:func:`configs_from_file` on the YAML file named by ``$GENRM_CONFIG`` (unset: defaults)."""
    path = os.environ.get(CONFIG_ENV) or None
    if path and not os.path.isfile(path):
        raise FileNotFoundError(f"${CONFIG_ENV} names {path!r}, which is not a file")
    return configs_from_file(path, extra, prog)


def shared_from_env(name: str, extra: Sequence[type], make: Callable[..., Any]) -> Any:
    """One object per process and ``name``, built on first use by ``make(reward, *extra_configs)``
    from ``$GENRM_CONFIG`` (the reward files of OpenRLHF and veRL use this)."""
    with _shared_lock:
        if name not in _shared:
            stack = list(configs_from_env(extra, prog=name))
            base, rest = stack[: len(config_types())], stack[len(config_types()) :]
            _shared[name] = make(build_reward(*base), *rest)
        return _shared[name]
