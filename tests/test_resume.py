"""Durability of ``genrm train``: atomic shards + manifest, and killed runs that resume without recomputing.

* The run folder's rules (fingerprint, lock, temporaries, shard headers, recovered shards).
* An in-process run interrupted mid-iteration resumes and equals an uninterrupted run.
* A ``star-dpo`` run killed with SIGKILL mid-iteration (subprocess) restarts with the same command:
  no finished shard or iteration is recomputed and the shards equal an uninterrupted run's.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from recipe_kit import ONE_THREAD_ENV, cli_args, one_torch_thread, synthetic_data, tiny_configs, warm_judge  # noqa: F401

from genrm_plugin.recipes.training_run import MANIFEST, TrainingRun
from genrm_plugin.run_folder import RunFolderError

ROOT = Path(__file__).resolve().parents[1]


# -- the run folder ---------------------------------------------------------------------------------
def test_run_folder_refuses_other_settings_and_a_second_process(tmp_path):
    run = TrainingRun(tmp_path / "r", {"configs": {"k": 4, "lr": 1e-4}})
    with pytest.raises(RunFolderError, match="another genrm train process"):
        TrainingRun(tmp_path / "r", {"configs": {"k": 4, "lr": 1e-4}})
    run.close()
    with pytest.raises(RunFolderError, match=r"configs.k: 4 -> 8"):
        TrainingRun(tmp_path / "r", {"configs": {"k": 8, "lr": 1e-4}})
    again = TrainingRun(tmp_path / "r", {"configs": {"k": 4, "lr": 1e-4}})
    assert again.attempt == 2  # the refused opens did not count
    again.close()


def test_shards_are_atomic_self_describing_and_recovered(tmp_path):
    run = TrainingRun(tmp_path, {"x": 1})
    records = [{"pair": 0, "rationales": ["a [[A]]"]}, {"pair": 1, "rationales": ["b"]}]
    assert run.load_shard(1, 0, seed=5, items=2) is None
    run.save_shard(1, 0, 5, records)
    assert run.load_shard(1, 0, seed=5, items=2) == records
    assert run.manifest["iterations"]["1"]["shards"]["0"]["attempt"] == 1
    with pytest.raises(RunFolderError, match="does not match"):
        run.load_shard(1, 0, seed=6, items=2)
    # a shard written just before a kill, before the manifest recorded it, is adopted, not resampled
    run.save_shard(1, 1, 9, records)
    del run.manifest["iterations"]["1"]["shards"]["1"]
    run._save_manifest()
    (tmp_path / "iter-1" / "shards" / ".shard-00002.json.tmp-123").write_text("{partial")  # a killed write
    (tmp_path / f".{MANIFEST}.tmp-123").write_text("{partial")
    run.close()
    run = TrainingRun(tmp_path, {"x": 1})
    assert not list(tmp_path.rglob("*.tmp-*"))  # temporaries swept at start
    assert run.load_shard(1, 1, seed=9, items=2) == records
    entry = json.loads((tmp_path / MANIFEST).read_text())["iterations"]["1"]["shards"]["1"]
    assert entry["recovered"] and entry["attempt"] == 1 and run.attempt == 2
    run.close()


def test_save_dir_replaces_atomically(tmp_path):
    run = TrainingRun(tmp_path, {})
    target = run.save_dir(tmp_path / "final", lambda d: (d.mkdir(), (d / "a").write_text("1")))
    assert (target / "a").read_text() == "1"

    def crash(d):
        d.mkdir()
        (d / "a").write_text("2")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run.save_dir(tmp_path / "final", crash)
    assert (target / "a").read_text() == "1"  # the old version survives a crash mid-save
    run.close()


# -- resuming ---------------------------------------------------------------------------------------
def _shard_files(run_dir: Path) -> dict[str, os.stat_result]:
    return {str(p.relative_to(run_dir)): p.stat() for p in sorted(run_dir.glob("iter-*/shards/shard-*.json"))}


def _records(run_dir: Path) -> dict[str, list]:
    return {str(p.relative_to(run_dir)): json.loads(p.read_text())["records"] for p in sorted(run_dir.glob("iter-*/shards/shard-*.json"))}


def _assert_untouched(before: dict[str, os.stat_result], run_dir: Path) -> None:
    for name, stat in before.items():
        now = (run_dir / name).stat()
        assert (now.st_ino, now.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns), f"{name} was rewritten"


def test_interrupted_run_resumes_and_equals_an_uninterrupted_one(tmp_path, warm_judge, synthetic_data, monkeypatch):
    import genrm_plugin.recipes.star as star
    from genrm_plugin.recipes.runner import train_judge

    settings = dict(data_limit=12, shard_size=4, eval_data=None, max_steps=1)
    reference = tmp_path / "reference"
    train_judge(*tiny_configs(reference, "star-sft", warm_judge, synthetic_data, **settings))

    real, calls = star.sample_shard, []

    def counting(*args, crash_at=None, **kwargs):  # iteration 1 has 3 shards: crash at iteration 2's second
        calls.append(1)
        if len(calls) == crash_at:
            raise KeyboardInterrupt("simulated crash")
        return real(*args, **kwargs)

    monkeypatch.setattr(star, "sample_shard", lambda *a, **k: counting(*a, crash_at=5, **k))
    run_dir = tmp_path / "run"
    configs = tiny_configs(run_dir, "star-sft", warm_judge, synthetic_data, **settings)
    with pytest.raises(KeyboardInterrupt):
        train_judge(*configs)
    before = _shard_files(run_dir)
    assert sorted(before) == [f"iter-1/shards/shard-0000{i}.json" for i in range(3)] + ["iter-2/shards/shard-00000.json"]
    checkpoint = (run_dir / "iter-1" / "model" / "model.safetensors").stat()

    calls.clear()
    monkeypatch.setattr(star, "sample_shard", counting)
    final = train_judge(*configs)
    assert len(calls) == 2  # only iteration 2's missing shards were sampled
    _assert_untouched(before, run_dir)
    now = (run_dir / "iter-1" / "model" / "model.safetensors").stat()
    assert (now.st_ino, now.st_mtime_ns) == (checkpoint.st_ino, checkpoint.st_mtime_ns)  # not retrained
    manifest = json.loads((run_dir / MANIFEST).read_text())
    assert manifest["attempts"] == 2 and manifest["iterations"]["1"]["finished_attempt"] == 1
    assert [s["attempt"] for s in manifest["iterations"]["2"]["shards"].values()] == [1, 2, 2]
    assert _records(run_dir) == _records(reference)
    assert _stats_without_times(run_dir) == _stats_without_times(reference)
    assert (final / "model.safetensors").exists()


def test_sigkilled_star_dpo_run_resumes_without_recomputing(tmp_path, warm_judge, synthetic_data):
    """Kill ``genrm train --recipe star-dpo`` mid-iteration 2 with SIGKILL, restart the same command."""
    def command(run_dir: Path) -> list[str]:
        configs = tiny_configs(run_dir, "star-dpo", warm_judge, synthetic_data, shard_size=4, eval_data=None)
        return [sys.executable, "-m", "genrm_plugin.cli", "train", *cli_args(*configs)]

    env = {**os.environ, "TQDM_DISABLE": "1", **ONE_THREAD_ENV}
    reference = tmp_path / "reference"
    subprocess.run(command(reference), cwd=ROOT, env=env, check=True, capture_output=True, timeout=900)

    run_dir = tmp_path / "run"
    proc = subprocess.Popen(command(run_dir), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 900
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            manifest = _read_manifest(run_dir)
            if manifest and manifest["iterations"].get("2", {}).get("shards"):
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the run ended before it could be killed mid-iteration 2"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    manifest = _read_manifest(run_dir)
    assert manifest["iterations"]["1"]["done"] and not manifest["iterations"]["2"].get("done")
    before = _shard_files(run_dir)
    assert len(before) >= 6 + 1  # iteration 1's 6 shards and some of iteration 2's (killed while sampling or training it)
    checkpoint = {p: p.stat().st_mtime_ns for p in (run_dir / "iter-1" / "model").iterdir()}

    restarted = subprocess.run(command(run_dir), cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert restarted.returncode == 0, restarted.stderr[-3000:]
    _assert_untouched(before, run_dir)
    assert {p: p.stat().st_mtime_ns for p in (run_dir / "iter-1" / "model").iterdir()} == checkpoint
    manifest = _read_manifest(run_dir)
    assert manifest["attempts"] == 2 and manifest["iterations"]["1"]["finished_attempt"] == 1
    attempts = {f"iter-{i}/shards/shard-{int(s):05d}.json": e["attempt"]
                for i in ("1", "2") for s, e in manifest["iterations"][i]["shards"].items()}
    assert {name for name, a in attempts.items() if a == 1} == set(before)
    assert len(attempts) == 12 and not list(run_dir.rglob("*.tmp-*"))
    assert _records(run_dir) == _records(reference)  # the same shards as the uninterrupted run
    assert _records(run_dir)  # and there are some
    assert _stats_without_times(run_dir) == _stats_without_times(reference)  # same kept data, same losses


def _stats_without_times(run_dir: Path) -> list[dict]:
    stats = json.loads((run_dir / "stats.json").read_text())
    return [{k: v for k, v in s.items() if not k.endswith("_seconds")} for s in stats]


def _read_manifest(run_dir: Path) -> dict | None:
    path = run_dir / MANIFEST
    return json.loads(path.read_text()) if path.exists() else None
