"""A trained judge's card is the judge's defaults: how it was trained to be asked.

``genrm train`` writes ``genrm_card.json`` beside the judge's weights; its ``judge`` section records
the prompt and sampling the judge was trained with (``mode``, ``template``, ``answer_pattern``,
``max_new_tokens``, ``k``, ``temperature``, ``top_p``). Forgetting one of those flags would judge
with a different prompt than the judge learned, so every place that builds a judge from a model
path (``genrm judge/eval/serve``, the OpenRLHF and veRL reward files, :class:`GenRMReward` built
from settings, :meth:`GenerativeJudge.from_pretrained`) calls :func:`apply_card`:

* a field the user did not set takes the card's value;
* a field the user set (a flag or a YAML key; in Python, a value other than the default) wins, with a
  warning that names both values;
* a card that describes a Bradley-Terry reward model (``kind: bt``) is an error: it is no generative judge.

Only local model folders have cards; a hub name or a remote endpoint's model name is left alone.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any, Iterable

from genrm_plugin.config_parser import field_default, set_fields as parsed_fields

CARD_FILE = "genrm_card.json"
logger = logging.getLogger("genrm_plugin")


def read_card_judge(model: str | Path | None) -> tuple[dict[str, Any], Path] | None:
    """The card's ``judge`` section of a local model folder, with the card's path (``None``: no card)."""
    if model is None:
        return None
    path = Path(str(model)) / CARD_FILE
    if not path.is_file():
        return None
    try:
        card = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a readable judge card ({e}); fix or delete it") from None
    judge = card.get("judge") if isinstance(card, dict) else None
    if not isinstance(judge, dict):
        raise ValueError(f"{path}: the card has no 'judge' section; fix or delete it")
    if card.get("kind") == "bt" or judge.get("kind") == "bt":
        raise ValueError(f"{model} is a Bradley-Terry reward model (its {CARD_FILE} says kind 'bt'), not a generative "
                         "judge: score it with genrm_plugin.bt_scorer.BTScorer (genrm eval preference --bt_model)")
    return judge, path


def apply_card(config: Any, model: str | Path | None, set_fields: Iterable[str] | None = None) -> Any:
    """``config`` (a :class:`~genrm_plugin.judge.JudgeConfig`) with the defaults of ``model``'s card.

    ``set_fields``: the fields the user set; ``None``: those :func:`genrm_plugin.config_parser.parse_configs`
    recorded (flags, YAML), else those that differ from the dataclass defaults (the Python API
    cannot tell a default passed on purpose).
    """
    found = read_card_judge(model)
    if found is None:
        return config
    card, path = found
    fields = {f.name: f for f in dataclasses.fields(config) if f.init}
    if set_fields is None:
        set_fields = parsed_fields(config)
    if set_fields is None:
        set_fields = {name for name, f in fields.items() if getattr(config, name) != field_default(f)}
    changes = {}
    for name, value in card.items():
        if name not in fields or value == getattr(config, name):
            continue
        if name in set_fields:
            logger.warning("%s=%r contradicts the judge card's %s=%r (%s); using %r as asked",
                           name, getattr(config, name), name, value, path, getattr(config, name))
        else:
            changes[name] = value
    return dataclasses.replace(config, **changes) if changes else config

