"""Reference completions for the pairwise reward: a cache by prompt text and a generator over a
reference model (:class:`ReferenceGenerator` is a ``reference_fn`` for
:class:`~genrm_plugin.reward.GenRMReward`, which re-exports these names).

The cache keeps generated references in memory and, optionally, appended to a JSONL file of
``{"prompt": ..., "reference": ...}`` rows so that a later run reuses them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from genrm_plugin.backends.base import SamplingConfig


class ReferenceCache:
    """Generated references by prompt text, in memory and (optionally) appended to a JSONL file."""

    def __init__(self, path: str | None = None) -> None:
        self.path = Path(path) if path else None
        self._data: dict[str, str] = {}
        if self.path and self.path.exists():
            for n, line in enumerate(self.path.read_text().splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    self._data[row["prompt"]] = row["reference"]
                except (json.JSONDecodeError, KeyError, TypeError) as e:
                    raise ValueError(f"{self.path}:{n}: not a reference-cache row {{prompt, reference}} ({e})") from None

    def __contains__(self, key: str) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def __getitem__(self, key: str) -> str:
        return self._data[key]

    def update(self, keys: Sequence[str], references: Sequence[str]) -> None:
        new = [(k, r) for k, r in zip(keys, references) if k not in self._data]
        self._data.update(new)
        if self.path and new:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as f:
                for k, r in new:
                    f.write(json.dumps({"prompt": k, "reference": r}) + "\n")


@dataclass
class ReferenceGenerationConfig:
    """How a reference model writes references.

    Fields:
        max_new_tokens: longest reference.
        temperature: 0 (default) is greedy decoding.
        top_p: nucleus mass when sampling.
        seed: sampling seed.
    """

    max_new_tokens: int = 128
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0


class ReferenceGenerator:
    """``reference_fn`` over a reference model: one completion per prompt from any judge backend
    (e.g. ``TransformersBackend(reference_model, tokenizer)``). Plain prompts are continued as they
    are; conversational prompts are rendered with the backend's chat template."""

    def __init__(self, backend: Any, config: ReferenceGenerationConfig | None = None) -> None:
        self.backend = backend
        self.config = config or ReferenceGenerationConfig()

    def __call__(self, prompts: Sequence[Any]) -> list[str]:
        texts = [p if isinstance(p, str) else self.backend.render(p) for p in prompts]
        sampling = SamplingConfig(
            temperature=self.config.temperature, top_p=self.config.top_p,
            max_new_tokens=self.config.max_new_tokens, stop=[],
        )
        return [out[0] for out in self.backend.generate(texts, 1, sampling, seed=self.config.seed)]
