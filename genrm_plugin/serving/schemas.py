"""Request and response bodies of the reward server (pydantic; strict types, no coercion), and
:func:`read_body`, which turns raw request bytes into one of them (run it off the event loop)."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, StrictBool, StrictStr, ValidationError

from genrm_plugin.serving.guards import ServiceError, validation_error

Body = TypeVar("Body", bound=BaseModel)


def read_body(raw: bytes, model: type[Body]) -> Body:
    """``raw`` as a ``model``: 422 ``invalid_unicode`` (not UTF-8), 400 ``invalid_json``, 422 ``invalid_request``.

    The standard library parses the JSON (it keeps ``"\\ud800"`` escapes as lone surrogates, which
    the handlers then refuse by field with ``invalid_unicode``, where pydantic's parser would call
    the whole body malformed).
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ServiceError(422, "invalid_unicode", f"body: not UTF-8 at byte {e.start}; send UTF-8 encoded JSON", ["body"]) from None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise ServiceError(400, "invalid_json", "request body is not valid JSON") from None
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise validation_error(e.errors(include_url=False, include_input=False)) from None


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` documenting ``model`` as the JSON body of a route that reads raw bytes."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


class RewardRequest(BaseModel):
    """OpenRLHF's ``POST /get_reward`` body. ``labels`` may hold any JSON (see ``reference_from``)."""

    model_config = ConfigDict(extra="ignore")

    query: list[StrictStr]
    prompts: list[StrictStr] | None = None
    labels: list[Any] | None = None


class RewardResponse(BaseModel):
    """``rewards``: mapped rewards; ``scores``: P(response > reference) in [0, 1]; ``extra_logs``:
    per-request numbers OpenRLHF logs (``<name>_abstained``, ``<name>_items``)."""

    rewards: list[float]
    scores: list[float]
    extra_logs: dict[str, float]


class CompareRequest(BaseModel):
    """``POST /v1/compare``: judge ``answers_a[i]`` against ``answers_b[i]`` on ``prompts[i]``."""

    model_config = ConfigDict(extra="forbid")

    prompts: list[StrictStr]
    answers_a: list[StrictStr]
    answers_b: list[StrictStr]
    include_rationales: StrictBool = False


class PreferenceOut(BaseModel):
    """One :class:`~genrm_plugin.votes.Preference` (``p_a`` is ``None`` when every vote abstained)."""

    p_a: float | None
    winner: str | None
    votes_a: int
    votes_b: int
    abstain: int
    votes_used: int
    consistent: bool | None
    p_by_order: list[float | None]
    rationales: list[str] | None = None


class CompareResponse(BaseModel):
    preferences: list[PreferenceOut]
