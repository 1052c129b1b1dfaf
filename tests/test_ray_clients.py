"""The judge under Ray: OpenRLHF-shape actors against ``genrm serve`` and veRL's reward manager in Ray tasks.

Runs ``benchmarks/ray_clients.py`` (small settings) in its own process, so that its local Ray cluster
starts in Ray's loopback-only mode and leaves nothing behind in the test process, and checks the figures
it reports: every request answered by the real server (OpenRLHF's own HTTP client in each Ray actor),
0 errors, 0 lost results although one actor was killed mid-run, answers equal to the single-process ones
and to the scripted oracle's exact values, veRL's ``naive`` and ``batch`` managers in Ray tasks equal to
the same managers in one process, and every Ray process on 127.0.0.1.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NEEDED = ("ray", "verl", "tensordict", "omegaconf", "openrlhf", "aiohttp")
LOOPBACK = {"127.0.0.1", "::ffff:127.0.0.1", "::1"}

missing = [name for name in NEEDED if importlib.util.find_spec(name) is None]
if missing:
    pytest.skip(f"{', '.join(missing)} not installed: run `make venv` (`make test` builds it)", allow_module_level=True)


@pytest.fixture(scope="module")
def figures(tmp_path_factory):
    out = tmp_path_factory.mktemp("ray") / "figures.json"
    args = ["--actors", "3", "--requests", "40", "--concurrency", "4", "--kill_after_answers", "1",
            "--tasks", "2", "--copies", "4", "--json", str(out)]
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ray_clients.py"), *args],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    print(proc.stdout)
    return json.loads(out.read_text())


def test_ray_stays_on_loopback(figures):
    assert figures["node_address"] == "127.0.0.1"
    assert figures["listen_addresses"] and set(figures["listen_addresses"]) <= LOOPBACK


def test_actors_get_every_reward_despite_a_killed_actor(figures):
    assert figures["actors"] == 3 and figures["requests"] == 120
    assert figures["answered"] == 120 and figures["errors"] == 0 and figures["lost"] == 0
    assert figures["victim_killed_mid_run"] is True and 1 <= figures["victim_answered_before_kill"] < 40
    assert figures["others_running_at_kill"] >= 1  # the kill hit while other actors had requests in flight


def test_actor_answers_equal_single_process_and_oracle(figures):
    assert figures["http_equal"] is True
    assert figures["http_expected"] is True


def test_verl_managers_in_ray_tasks_equal_single_process(figures):
    assert figures["verl_tasks"] == 2 and figures["verl_rows"] == 24
    assert figures["verl_equal"] == {"naive": True, "batch": True}
