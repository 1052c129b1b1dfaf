"""Per-item size limits of the reward server: bound the judge's work, not just the request bytes.

An item is the texts one judgment reads (question + response + reference, or prompt + both
answers). :class:`ItemLimits` checks its length in two steps, cheapest first: characters (free,
``len``), then tokens of the judge's tokenizer -- tokenizing at most ``max_chars`` characters, so
the check itself is bounded. Over a limit an item is refused (:class:`ItemTooLong`, naming the item
and the limit) or, with ``truncate``, its texts are cut to fit, each to a fair share of the limit
(short texts keep all they have; the rest is split evenly among the longer ones).

The default token limit is what the judge's context holds for an item: its context length (the
tokenizer's ``model_max_length`` / the model's ``max_position_embeddings`` / vLLM's
``max_model_len``) less the tokens it generates and the judge template's own tokens.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

CHARS_PER_TOKEN_BOUND = 16  # default max_item_chars per allowed token (real text averages ~4)
_WORDISH = re.compile(r"\w+|[^\w\s]")  # the estimate for backends without a tokenizer
_NO_LIMIT = 10**7  # model_max_length values at or above this mean "not set" in transformers


class ItemTooLong(ValueError):
    """An item over a limit: ``index`` (its row), ``size`` and ``limit`` in ``unit`` s."""

    def __init__(self, index: int, size: int, limit: int, unit: str) -> None:
        super().__init__(f"item {index} is {size} {unit}; the limit is {limit} {unit} per item")
        self.index, self.size, self.limit, self.unit = index, size, limit, unit


class TokenMeter:
    """Token counts and token-exact prefixes with ``tokenizer`` (``None``: one token per word or sign)."""

    def __init__(self, tokenizer: Any = None) -> None:
        self.tokenizer = tokenizer

    def counts(self, texts: Sequence[str]) -> list[int]:
        if self.tokenizer is None:
            return [len(_WORDISH.findall(t)) for t in texts]
        return [len(ids) for ids in self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]]

    def prefix(self, text: str, tokens: int) -> str:
        """The longest start of ``text`` made of its first ``tokens`` tokens."""
        if tokens <= 0:
            return ""
        if self.tokenizer is None:
            ends = [m.end() for m, _ in zip(_WORDISH.finditer(text), range(tokens))]
            return text if len(ends) < tokens else text[: ends[-1]]
        if getattr(self.tokenizer, "is_fast", False):
            offsets = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
            return text if len(offsets) <= tokens else text[: offsets[tokens - 1][1]]
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return text if len(ids) <= tokens else self.tokenizer.decode(ids[:tokens])


class ItemLimits:
    """Characters, then tokens, per item; refuse or cut (``truncate``) the items over them."""

    def __init__(self, max_tokens: int, max_chars: int | None = None, truncate: bool = False, meter: TokenMeter | None = None):
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
        self.max_tokens = max_tokens
        self.max_chars = max_chars if max_chars is not None else CHARS_PER_TOKEN_BOUND * max_tokens
        self.truncate = truncate
        self.meter = meter or TokenMeter()

    def apply(self, items: Sequence[Sequence[str]]) -> list[tuple[str, ...]]:
        """``items`` (each a tuple of texts) within the limits; raises :class:`ItemTooLong` unless truncating."""
        out = []
        for index, texts in enumerate(items):
            texts = tuple(texts)
            chars = [len(t) for t in texts]
            if sum(chars) > self.max_chars:
                if not self.truncate:
                    raise ItemTooLong(index, sum(chars), self.max_chars, "characters")
                texts = tuple(t[:n] for t, n in zip(texts, fair_shares(chars, self.max_chars)))
            tokens = self.meter.counts(texts)
            if sum(tokens) > self.max_tokens:
                if not self.truncate:
                    raise ItemTooLong(index, sum(tokens), self.max_tokens, "tokens")
                shares = fair_shares(tokens, self.max_tokens)
                texts = tuple(t if n >= have else self.meter.prefix(t, n) for t, n, have in zip(texts, shares, tokens))
            out.append(texts)
        return out


def fair_shares(sizes: Sequence[int], budget: int) -> list[int]:
    """Split ``budget`` over ``sizes``: the smallest get all they need, the rest an even share."""
    shares = [0] * len(sizes)
    left, remaining = len(sizes), budget
    for i in sorted(range(len(sizes)), key=sizes.__getitem__):
        shares[i] = min(sizes[i], remaining // left)
        remaining -= shares[i]
        left -= 1
    return shares


def judge_context_length(backend: Any) -> int | None:
    """The judge's context length in tokens, from its tokenizer, model or engine (``None``: unknown)."""
    found = []
    limit = getattr(getattr(backend, "tokenizer", None), "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < _NO_LIMIT:
        found.append(limit)
    model_config = getattr(getattr(backend, "model", None), "config", None)
    for name in ("max_position_embeddings", "n_positions", "max_seq_len"):
        value = getattr(model_config, name, None)
        if isinstance(value, int) and value > 0:
            found.append(value)
            break
    engine = getattr(getattr(backend, "llm", None), "llm_engine", None)
    value = getattr(getattr(engine, "model_config", None), "max_model_len", None)
    if isinstance(value, int) and value > 0:
        found.append(value)
    return min(found) if found else None


def default_item_tokens(judge: Any, fallback_context: int) -> int:
    """Tokens left for one item in the judge's context: context - generated tokens - template tokens."""
    from genrm_plugin.prompts import judge_messages

    context = judge_context_length(judge.backend) or fallback_context
    mode = "no_cot" if judge.config.mode == "no_cot" else "cot"
    template = judge.backend.render(judge_messages("", "", "", mode=mode, config=judge.config.prompt()))
    overhead = TokenMeter(getattr(judge.backend, "tokenizer", None)).counts([template])[0]
    generated = judge.config.max_new_tokens if judge.config.mode == "cot" else 1
    room = context - generated - overhead
    if room < 1:
        raise ValueError(
            f"the judge's context ({context} tokens) leaves no room for an item after {generated} generated and "
            f"{overhead} template tokens; set ServeConfig.max_item_tokens"
        )
    return room
