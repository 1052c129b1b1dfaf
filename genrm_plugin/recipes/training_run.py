"""The run folder of ``genrm train`` (:class:`TrainingRun`): durable shards, a manifest, checkpoints.

What makes training runs resumable, on the shared pieces of :mod:`genrm_plugin.run_folder`.

Layout::

    run.json                  the run's fingerprint (configs + data hash; a restart must match it)
                              and the sampling engines used (these may change between attempts)
    manifest.json             attempts, and per iteration: finished shards, done flag, stats
    base/                     the base model when it is built here (``--model toy``)
    iter-<i>/shards/shard-<s>.json   sampled rationales of shard s (self-describing, atomic)
    iter-<i>/model/           the iteration's checkpoint (save_pretrained + train_result.json)
    stats.json, stats.png     per-iteration statistics
    final/                    the trained judge (save_pretrained) + genrm_card.json + README.md

Every file is written atomically (:mod:`genrm_plugin.run_folder`), so a run killed at any moment
leaves only complete files; temporaries are swept at the next start. A shard
file names its iteration, shard index, seed and item count, so a restart reuses every finished
shard (even one written just before the manifest was updated) and samples only the rest; the
manifest's ``attempt`` per shard records which run attempt wrote it. One process at a time holds
a folder (``flock`` on ``.lock``); in a multi-process run only rank 0 opens it for writing
(``main=False`` on the other ranks, which re-read the manifest with :meth:`TrainingRun.sync`).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from genrm_plugin.recipes import distributed
from genrm_plugin.run_folder import (
    RunFolderError, atomic_dir, atomic_write_json, settings_differences, sweep_temporaries,
)

MANIFEST = "manifest.json"
STATS_FILE = "stats.json"  # written by genrm_plugin.recipes.iteration_stats
RUN_FILE = "run.json"
logger = logging.getLogger(__name__)


def shard_seed(seed: int, iteration: int, shard: int) -> int:
    """Sampling seed of one shard: a function of (seed, iteration, shard) only, not of what ran before."""
    digest = hashlib.sha256(f"genrm-shard:{seed}:{iteration}:{shard}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % (2**31 - 1)


class TrainingRun:
    """A run folder opened for one attempt (see the module docstring for the layout).

    Args:
        root: the folder (created if missing).
        fingerprint: JSON-able description of everything that determines the run's results; an
            existing folder with a different fingerprint is refused (use a new ``output_dir``).
        overwrite: start afresh: delete what an earlier run left in the folder (once the lock is
            held); a non-empty folder without ``run.json`` is refused, as it is not a run folder.
    """

    def __init__(self, root: str | Path, fingerprint: dict[str, Any], overwrite: bool = False,
                 engine: dict[str, Any] | None = None, main: bool = True) -> None:
        self.root = Path(root)
        self.main, self._lock = main, None
        if not main:  # another rank of a multi-process run: rank 0 writes, this one reads (see sync())
            self.manifest = json.loads((self.root / MANIFEST).read_text())
            self.attempt = self.manifest["attempts"]
            return
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.root / ".lock", "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunFolderError(f"{self.root}: another genrm train process is using this run folder") from None
        if overwrite:
            self._clear()
        self._check_fingerprint(fingerprint, engine or {})
        sweep_temporaries(self.root)
        path = self.root / MANIFEST
        self.manifest = json.loads(path.read_text()) if path.exists() else {"attempts": 0, "iterations": {}}
        self.manifest["attempts"] += 1
        self.attempt = self.manifest["attempts"]
        self._save_manifest()

    def close(self) -> None:
        if self._lock is not None:
            self._lock.close()

    def sync(self) -> None:
        """Non-main ranks: re-read the manifest rank 0 wrote (call after a barrier)."""
        if not self.main:
            self.manifest = json.loads((self.root / MANIFEST).read_text())

    # -- fingerprint and cleanup ----------------------------------------------------------------
    def _check_fingerprint(self, fingerprint: dict[str, Any], engine: dict[str, Any]) -> None:
        """Refuse other settings. The sampling engine (``engine``) may change between attempts:
        shards already written keep their records; the switch is logged and kept in ``run.json``."""
        path = self.root / RUN_FILE
        fingerprint = json.loads(json.dumps(fingerprint, default=str))
        engine = json.loads(json.dumps(engine, default=str))
        if not path.exists():
            atomic_write_json(path, {"fingerprint": fingerprint, "engines": [engine],
                                     "created": time.strftime("%Y-%m-%dT%H:%M:%S")})
            return
        run = json.loads(path.read_text())
        stored, engines = run["fingerprint"], run.get("engines", [])
        if stored != fingerprint:
            diffs = sorted(settings_differences(stored, fingerprint))
            raise RunFolderError(
                f"{self.root} holds a run with other settings ({', '.join(diffs)}); "
                "restart with the same command, choose another --output_dir, or pass --overwrite to start afresh"
            )
        if engines and engines[-1] != engine:
            logger.warning(f"{self.root}: sampling engine changed ({', '.join(settings_differences(engines[-1], engine))}); "
                           "shards already written are kept, missing ones are sampled with the new engine")
        if not engines or engines[-1] != engine:
            atomic_write_json(path, {**run, "engines": [*engines, engine]})

    def _clear(self) -> None:
        entries = [p for p in self.root.iterdir() if p.name != ".lock"]
        if entries and not (self.root / RUN_FILE).exists():
            self._lock.close()
            raise RunFolderError(
                f"{self.root} is not empty and is not a genrm train run folder (no {RUN_FILE}); "
                "--overwrite deletes only run folders: choose another --output_dir"
            )
        for path in entries:
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()

    def _save_manifest(self) -> None:
        atomic_write_json(self.root / MANIFEST, self.manifest)

    # -- iterations -----------------------------------------------------------------------------
    def iteration_dir(self, iteration: int) -> Path:
        return self.root / f"iter-{iteration}"

    def evaluation_dir(self, iteration: int) -> Path:
        """Where the held-out evaluation of ``iteration``'s checkpoint is written."""
        return evaluation_dir(self.root, iteration)

    def _entry(self, iteration: int) -> dict[str, Any]:
        return self.manifest["iterations"].setdefault(str(iteration), {"shards": {}, "done": False})

    def is_done(self, iteration: int) -> bool:
        return bool(self.manifest["iterations"].get(str(iteration), {}).get("done"))

    def stats(self, iteration: int) -> dict[str, Any]:
        return dict(self.manifest["iterations"][str(iteration)]["stats"])

    def finish_iteration(self, iteration: int, stats: dict[str, Any]) -> None:
        """Mark ``iteration`` done with its stats (rank 0 writes; every rank then sees it)."""
        if self.main:
            entry = self._entry(iteration)
            entry.update(done=True, stats=stats, finished_attempt=self.attempt)
            self._save_manifest()
        distributed.barrier()
        self.sync()

    # -- shards ---------------------------------------------------------------------------------
    def shard_path(self, iteration: int, shard: int) -> Path:
        return self.iteration_dir(iteration) / "shards" / f"shard-{shard:05d}.json"

    def load_shard(self, iteration: int, shard: int, seed: int, items: int) -> list[dict] | None:
        """The records of a finished shard, or ``None`` if it still has to be sampled."""
        path = self.shard_path(iteration, shard)
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        header = (data.get("iteration"), data.get("shard"), data.get("seed"), len(data.get("records", [])))
        if header != (iteration, shard, seed, items):
            raise RunFolderError(f"{path}: shard does not match this run (iteration, shard, seed, items) {header}")
        entries = self._entry(iteration)["shards"]
        if str(shard) not in entries and self.main:  # written just before a kill, before the manifest caught up
            entries[str(shard)] = self._shard_entry(path, data, recovered=True)
            self._save_manifest()
        return data["records"]

    def save_shard(self, iteration: int, shard: int, seed: int, records: list[dict]) -> None:
        if not self.main:
            return
        path = self.shard_path(iteration, shard)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"iteration": iteration, "shard": shard, "seed": seed, "attempt": self.attempt, "records": records}
        atomic_write_json(path, data)
        self._entry(iteration)["shards"][str(shard)] = self._shard_entry(path, data)
        self._save_manifest()

    def _shard_entry(self, path: Path, data: dict, recovered: bool = False) -> dict[str, Any]:
        entry = {
            "file": str(path.relative_to(self.root)),
            "items": len(data["records"]),
            "seed": data["seed"],
            "attempt": data["attempt"],
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        }
        if recovered:
            entry["recovered"] = True
        return entry

    # -- checkpoints ----------------------------------------------------------------------------
    def checkpoint(self, iteration: int) -> Path | None:
        path = self.iteration_dir(iteration) / "model"
        return path if path.is_dir() else None

    def save_checkpoint(self, iteration: int, save: Callable[[Path], None]) -> Path:
        """Save a checkpoint with ``save(tmp_dir)`` and rename it into place."""
        return self.save_dir(self.iteration_dir(iteration) / "model", save)

    def save_dir(self, target: Path, save: Callable[[Path], None]) -> Path:
        """Build a directory with ``save(tmp_dir)``, then rename it to ``target`` (replacing it)."""
        return atomic_dir(target, save)


def evaluation_dir(root: str | Path, iteration: int) -> Path:
    return Path(root) / f"iter-{iteration}" / "eval"


class FinishedRun:
    """A training run folder read back (no lock, nothing written): what reports and the demo use
    instead of the folder's layout."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def stats(self) -> list[dict[str, Any]]:
        """Per-iteration statistics (``stats.json``: iteration 0 first when it was evaluated)."""
        return json.loads((self.root / STATS_FILE).read_text())

    def iterations(self) -> list[int]:
        """Iterations that sampled rationales (STaR), in order."""
        found = [int(p.name.split("-")[1]) for p in self.root.glob("iter-*") if (p / "shards").is_dir()]
        return sorted(found)

    def sampled_records(self, iteration: int) -> list[dict[str, Any]]:
        """Every rationale record ``iteration`` sampled, shard by shard."""
        shards = sorted((self.root / f"iter-{iteration}" / "shards").glob("shard-*.json"))
        return [record for shard in shards for record in json.loads(shard.read_text())["records"]]

    def checkpoint(self, iteration: int) -> Path:
        """``iteration``'s saved model (e.g. CLoud's stage-1 critique writer); an error if it was not saved."""
        path = self.root / f"iter-{iteration}" / "model"
        if not path.is_dir():
            raise FileNotFoundError(f"{self.root}: iteration {iteration} saved no model")
        return path

    def evaluation_dir(self, iteration: int) -> Path:
        """The folder of ``iteration``'s held-out evaluation (see :class:`~genrm_plugin.evals.preference.PreferenceEvaluation`)."""
        return evaluation_dir(self.root, iteration)
