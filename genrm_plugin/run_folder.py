"""Run folders: the one persistence layer of training runs, evaluations and the demo.

Every file is written to a temporary name, fsynced and renamed into place (:func:`atomic_write_text`,
:func:`atomic_write_json`, :func:`atomic_dir`), so a run killed at any moment leaves only complete
files; records are appended to JSON Lines files and flushed as soon as they are computed
(:func:`append_records`), and a last line cut by a crash is dropped and recomputed
(:func:`read_records`). A folder belongs to one configuration: a rerun with other settings is
refused with a :class:`RunFolderError` naming the differing fields (:func:`settings_differences`).

Two kinds of folder use these pieces:

* :class:`RecordFolder` -- an evaluation: ``config.json``, append-only ``<name>.jsonl`` records,
  ``summary.json`` + ``table.md`` and plots (``genrm eval``);
* :class:`genrm_plugin.recipes.training_run.TrainingRun` -- a training run: fingerprint, manifest,
  shards, checkpoints (``genrm train``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable

TMP_MARK = ".tmp-"


class RunFolderError(ValueError):
    """A run folder that cannot be used: other settings, another process holds it, a corrupt file."""


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file, fsync and rename (never a partial file)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: str | Path, obj: Any, indent: int = 1, sort_keys: bool = True) -> None:
    """:func:`atomic_write_text` of ``obj`` as JSON."""
    atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=sort_keys, default=str) + "\n")


def atomic_dir(target: str | Path, build: Callable[[Path], None]) -> Path:
    """Build a directory with ``build(tmp_dir)``, then rename it to ``target`` (replacing it)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}{TMP_MARK}{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    build(tmp)
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)
    return target


def sweep_temporaries(root: str | Path) -> None:
    """Delete what an interrupted atomic write left below ``root``."""
    for path in Path(root).rglob(f"*{TMP_MARK}*"):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            path.unlink()


def fingerprint_hash(obj: Any) -> str:
    """A content hash of a JSON-able object (key order does not matter)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def settings_differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """``"a.b: old -> new"`` for every leaf where two nested settings differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            out += settings_differences(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    return [] if old == new else [f"{prefix.rstrip('.')}: {old!r} -> {new!r}"]


def append_records(path: str | Path, records: Iterable[dict[str, Any]]) -> None:
    """Append ``records`` to a JSON Lines file and flush them to disk."""
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    if not text:
        return
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def read_records(path: str | Path) -> list[Any]:
    """JSON Lines records of an append-only file (``[]`` if missing). A truncated last line (a write
    cut by a crash) is removed with a warning; an invalid line elsewhere is an error."""
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").split("\n")
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number >= len(lines) - 1:  # only the last line can be cut by a crash
                warnings.warn(f"{path}: line {number} is truncated (interrupted write); it will be recomputed")
                atomic_write_text(path, "".join(kept + "\n" for kept in lines[: number - 1] if kept.strip()))
                break
            raise RunFolderError(f"{path}: line {number} is not valid JSON; the file is corrupt") from None
    return records


class RecordFolder:
    """A folder holding one evaluation run.

    Layout: ``config.json`` (the settings that determine the results; a rerun must match them),
    ``<name>.jsonl`` (append-only records: judgments, grades, selections), ``summary.json`` and
    ``table.md`` (the metrics), ``*.png`` (plots).

    Args:
        path: the folder (created if missing).
        config: JSON-serialisable settings that determine the results. If the folder already has a
            ``config.json`` that differs, :class:`RunFolderError` names the differing fields, unless
            ``overwrite`` is set (then the old records are deleted).
        overwrite: start over in an existing folder.
    """

    def __init__(self, path: str | Path, config: dict[str, Any], overwrite: bool = False) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        config = json.loads(json.dumps(config))  # normalise (tuples -> lists, ...)
        config_file = self.path / "config.json"
        if config_file.exists() and not overwrite:
            changed = settings_differences(json.loads(config_file.read_text()), config)
            if changed:
                raise RunFolderError(
                    f"{self.path} holds a run with other settings ({', '.join(changed)}); "
                    "use another output_dir, or --overwrite to start over"
                )
        elif overwrite:
            for old_file in list(self.path.glob("*.jsonl")) + [self.path / "summary.json", self.path / "table.md"]:
                if old_file.exists():
                    old_file.unlink()
        atomic_write_json(config_file, config, indent=2)
        self.config = config

    @classmethod
    def open(cls, path: str | Path) -> "RecordFolder | None":
        """A finished run's folder, read-only (no settings check, nothing written); ``None`` if the
        folder holds no run's ``config.json``."""
        config_file = Path(path) / "config.json"
        if not config_file.is_file():
            return None
        folder = cls.__new__(cls)
        folder.path, folder.config = Path(path), json.loads(config_file.read_text())
        return folder

    def file(self, name: str) -> Path:
        return self.path / name

    def records(self, name: str) -> list[dict[str, Any]]:
        """All records in ``name`` (``[]`` if it does not exist yet)."""
        return read_records(self.file(name))

    def append(self, name: str, records: Iterable[dict[str, Any]]) -> None:
        """Append ``records`` to ``name`` and flush them to disk."""
        append_records(self.file(name), records)

    def summary(self) -> dict[str, Any] | None:
        """The written ``summary.json`` (``None`` before the run finished)."""
        path = self.file("summary.json")
        return json.loads(path.read_text()) if path.is_file() else None

    def write_report(self, summary: dict[str, Any], table: str) -> None:
        """Write ``summary.json`` and ``table.md``."""
        atomic_write_json(self.file("summary.json"), summary, indent=2, sort_keys=False)
        atomic_write_text(self.file("table.md"), table.rstrip() + "\n")
