"""TRL's own trainer arguments as fields of ``genrm train``'s :class:`~genrm_plugin.recipes.config.TrainConfig`.

One source: the fields of TRL's ``SFTConfig``, ``DPOConfig`` and ``RewardConfig`` (which extend
transformers' ``TrainingArguments``) are copied, with their types and help texts, into a dataclass
that :class:`~genrm_plugin.recipes.config.TrainConfig` extends. Every copied field defaults to
``None``, meaning "the trainer's own default"; a value that is set is handed to the trainer's config
unchanged (``report_to``, ``push_to_hub``, ``hub_model_id``, ``deepspeed``, ``fsdp``,
``save_strategy``, ``torch_compile``, ...), so nothing is a hand-picked subset and a newer TRL's
fields appear without a code change. ``genrm train --help`` lists them with TRL's help.

Three fields are not copied because the recipe sets them: ``output_dir`` (per iteration, inside the
run folder), ``seed`` and ``data_seed`` (derived from the judge's run seed per iteration).
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

TRAINER_CONFIGS = ("SFTConfig", "DPOConfig", "RewardConfig")
SET_BY_RECIPE = ("output_dir", "seed", "data_seed")
# Settings that change where results are reported or stored, never what is trained: a run folder
# resumed with other values of these is the same run.
NOT_RESULT_PREFIXES = ("report_to", "logging_", "log_", "push_to_hub", "hub_", "run_name", "save_", "disable_tqdm",
                       "project", "trackio_", "include_", "dataloader_num_workers")


def trainer_config_classes() -> dict[str, type]:
    """TRL's trainer config classes by name (``SFTConfig``, ``DPOConfig``, ``RewardConfig``)."""
    import trl

    return {name: getattr(trl, name) for name in TRAINER_CONFIGS}


def trl_field_base(own_fields: typing.Iterable[str]) -> type:
    """A dataclass with every init field of TRL's trainer configs except ``own_fields``, all ``None``."""
    seen: dict[str, tuple[Any, dict]] = {}
    for cls in trainer_config_classes().values():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.init and f.name not in seen:
                seen[f.name] = (hints[f.name], dict(f.metadata))
    skip = set(own_fields) | set(SET_BY_RECIPE)
    specs = [
        (name, _optional(kind), dataclasses.field(default=None, metadata={**metadata, **_flag_style(kind)}))
        for name, (kind, metadata) in seen.items()
        if name not in skip
    ]
    return dataclasses.make_dataclass("TrlTrainerFields", specs, namespace={"__module__": __name__})


def _optional(kind: Any) -> Any:
    """``Optional[kind]``; a union that takes ``str`` (``dict | str``, ``str | list[DebugOption]``)
    becomes ``Optional[str]``: one type per flag, and TRL parses the string itself (a YAML file may
    still give a dict or list)."""
    if str in typing.get_args(kind):
        return typing.Optional[str]
    return typing.Optional[kind]


def _flag_style(kind: Any) -> dict[str, Any]:
    """A boolean works as a bare flag (``--push_to_hub``) as in TRL's own scripts, or with a value."""
    return {"nargs": "?", "const": True} if kind is bool else {}


def passthrough_names(config: Any) -> list[str]:
    """Names of ``config``'s copied TRL fields (not the genrm-defined ones)."""
    base = next(c for c in type(config).__mro__ if c.__name__ == "TrlTrainerFields")
    return [f.name for f in dataclasses.fields(base)]


def is_result_setting(name: str) -> bool:
    """Whether a training argument can change the trained model (reporting / saving / hub ones cannot)."""
    return not name.startswith(NOT_RESULT_PREFIXES)


def accepted_fields(config_cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(config_cls) if f.init}
