"""A judge wrapper that judges each (prompt, answer A, answer B) once per run and persists it.

Best-of-N evaluations ask for the same comparison many times (a pair recurs across the random
subsets of a curve, across strategies, and across resumed runs). :class:`CachedJudge` has the
judge's ``compare`` signature; it answers repeated comparisons from its store (a JSONL file in the
run folder) and sends only new ones to the wrapped judge, in one batch per call, appending their
results as soon as they return. The ``seed`` a caller passes does not enter the key: an evaluation
uses one judgment per comparison. With position swap on, a comparison of (B, A) is answered from a
stored (A, B) judgment, flipped (both orders were judged either way).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from typing import Any, Sequence

from genrm_plugin.run_folder import RecordFolder
from genrm_plugin.votes import Preference, flip_preference


class CachedJudge:
    """Wraps a judge (anything with ``compare(prompts, answers_a, answers_b, **overrides)``).

    Args:
        judge: the wrapped judge (e.g. :class:`~genrm_plugin.judge.GenerativeJudge`).
        folder: run folder holding the store (``None``: memory only).
        store: file name of the store in ``folder``.
        keep_rationales: store the judge's raw outputs too (large for CoT judges with many votes).
    Attributes:
        hits, misses: comparisons answered from the store / sent to the judge.
    """

    def __init__(
        self, judge: Any, folder: RecordFolder | None = None, store: str = "judgments.jsonl", keep_rationales: bool = False
    ) -> None:
        self.judge = judge
        self.folder = folder
        self.store = store
        self.keep_rationales = keep_rationales
        self.hits = 0
        self.misses = 0
        self._cache: dict[str, Preference] = {}
        for record in folder.records(store) if folder is not None else []:
            self._cache[record["key"]] = Preference(**record["preference"])

    def __getattr__(self, name: str) -> Any:  # config, backend, ... of the wrapped judge
        if name == "judge":
            raise AttributeError(name)
        return getattr(self.judge, name)

    def __len__(self) -> int:
        return len(self._cache)

    def compare(
        self, prompts: Sequence[str], answers_a: Sequence[str], answers_b: Sequence[str], **overrides: Any
    ) -> list[Preference]:
        if overrides.get("hints") is not None:  # rationalization prompts are not evaluations: pass through
            return self.judge.compare(prompts, answers_a, answers_b, **overrides)
        # A pair is judged once per run, whatever sampling seed a caller passes (Best-of-N strategies
        # vary it per round); the other overrides (mode, k, swap) change the judgment and the key.
        settings = {k: v for k, v in overrides.items() if v is not None and k != "seed"}
        symmetric = self._swaps(settings)
        keys = [self._key(p, a, b, settings) for p, a, b in zip(prompts, answers_a, answers_b)]
        flipped = [self._key(p, b, a, settings) for p, a, b in zip(prompts, answers_a, answers_b)]
        todo: dict[str, int] = {}
        for i, (key, flip_key) in enumerate(zip(keys, flipped)):
            if key in self._cache or key in todo or (symmetric and (flip_key in self._cache or flip_key in todo)):
                continue
            todo[key] = i
        self.hits += len(keys) - len(todo)
        self.misses += len(todo)
        if todo:
            index = list(todo.values())
            fresh = self.judge.compare(
                [prompts[i] for i in index], [answers_a[i] for i in index], [answers_b[i] for i in index], **overrides
            )
            new_records = []
            for key, pref in zip(todo, fresh):
                if not self.keep_rationales:
                    pref = Preference(**{**asdict(pref), "rationales": []})
                self._cache[key] = pref
                new_records.append({"key": key, "preference": asdict(pref)})
            if self.folder is not None:
                self.folder.append(self.store, new_records)
        return [
            self._cache[key] if key in self._cache else flip_preference(self._cache[flip_key])
            for key, flip_key in zip(keys, flipped)
        ]

    def _swaps(self, settings: dict[str, Any]) -> bool:
        if "swap" in settings:
            return bool(settings["swap"])
        config = getattr(self.judge, "config", None)
        return bool(getattr(config, "swap", False))

    @staticmethod
    def _key(prompt: str, a: str, b: str, settings: dict[str, Any]) -> str:
        payload = json.dumps([prompt, a, b, sorted(settings.items())], ensure_ascii=False, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()
