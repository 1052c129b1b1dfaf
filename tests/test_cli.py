"""The `genrm` console script (run as a real subprocess)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path


def genrm(*args, cwd=None):
    exe = shutil.which("genrm") or str(Path(sys.executable).parent / "genrm")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=300, cwd=cwd)


def test_help_lists_commands():
    out = genrm("--help")
    assert out.returncode == 0 and "judge" in out.stdout


def test_judge_prints_judgments(tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join(json.dumps({"prompt": f"q{i}", "answer_a": "yes", "answer_b": "no"}) for i in range(2)))
    out = genrm("judge", "--pairs", str(pairs), "--k", "2", "--max_new_tokens", "16", "--output", str(tmp_path / "o.jsonl"))
    assert out.returncode == 0, out.stderr
    assert "P(A>B)" in out.stdout and "position consistency" in out.stdout
    rows = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(r["votes_used"] == 4 for r in rows)


def test_judge_yaml_config_and_bad_rows(tmp_path):
    cfg = tmp_path / "judge.yaml"
    cfg.write_text("mode: no_cot\n")
    out = genrm("judge", "--config", str(cfg))
    assert out.returncode == 0, out.stderr
    assert "mode=no_cot" in out.stdout
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "q", "answer_a": "a"}\n')
    out = genrm("judge", "--pairs", str(bad))
    assert out.returncode == 2 and out.stderr.strip().splitlines()[-1] == (
        f"genrm judge: error: {bad}: line 1: missing or non-string field(s) ['answer_b']"
    )
    out = genrm("nonsense")
    assert out.returncode == 2 and "unknown command" in out.stderr
