"""``genrm train`` under ``torchrun --nproc_per_node 2`` on the CPU (gloo ranks, accelerate state with ``cpu=True``).

One STaR-SFT iteration and one BT run finish with two processes; the STaR shards (split over the
two ranks, written by rank 0) equal those of a one-process run with the same seed; the manifest is
written once per attempt; a rerun resumes without resampling. Training itself differs from the
one-process run (two ranks double the effective batch), so checkpoints are not compared.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from recipe_kit import ONE_THREAD_ENV, cli_args, one_torch_thread, synthetic_data, tiny_configs, warm_judge  # noqa: F401

TORCHRUN = Path(sys.executable).with_name("torchrun")


def _torchrun(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, **ONE_THREAD_ENV, "TOKENIZERS_PARALLELISM": "false"}
    command = [str(TORCHRUN), "--nproc_per_node", "2", "--master_port", str(29500 + os.getpid() % 1000),
               "-m", "genrm_plugin.cli", "train", *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def _shards(run: Path) -> dict[str, list]:
    return {p.name: json.loads(p.read_text())["records"] for p in sorted((run / "iter-1" / "shards").glob("shard-*.json"))}


@pytest.mark.slow
def test_star_sft_and_bt_under_torchrun_with_two_ranks(tmp_path, warm_judge, synthetic_data):
    from genrm_plugin.recipes.runner import train_judge

    star = tiny_configs(tmp_path / "two", "star-sft", warm_judge, synthetic_data, iterations=1)
    done = _torchrun(cli_args(*star), tmp_path)
    assert done.stdout.count("recipe=star-sft") == 1, done.stdout[-2000:]  # rank 0 reports
    two = tmp_path / "two"
    manifest = json.loads((two / "manifest.json").read_text())
    assert manifest["attempts"] == 1 and manifest["iterations"]["1"]["done"]
    assert len(manifest["iterations"]["1"]["shards"]) == 6  # 24 pairs x 2 orders / shard_size 8

    one = tiny_configs(tmp_path / "one", "star-sft", warm_judge, synthetic_data, iterations=1)
    train_judge(*one)
    assert _shards(two) == _shards(tmp_path / "one")  # the ranks' shards are the 1-process shards

    _torchrun(cli_args(*star), tmp_path)  # rerun: resumes, nothing is resampled
    manifest = json.loads((two / "manifest.json").read_text())
    assert manifest["attempts"] == 2
    assert {entry["attempt"] for entry in manifest["iterations"]["1"]["shards"].values()} == {1}

    bt = tiny_configs(tmp_path / "bt", "bt", warm_judge, synthetic_data)
    done = _torchrun(cli_args(*bt), tmp_path)
    assert "recipe=bt" in done.stdout and (tmp_path / "bt" / "final" / "genrm_card.json").exists()
