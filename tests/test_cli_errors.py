"""One error style for every `genrm` command: one line `genrm <cmd>: error: ...`, exit status 2;
the traceback only with --debug or GENRM_DEBUG=1."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from genrm_plugin.cli import main

COMMANDS = [["judge"], ["train"], ["serve"], ["generate"], ["demo"], ["eval", "preference"], ["eval", "math500"],
            ["eval", "arenahard"]]


def assert_one_line_error(capsys, code, prog, *fragments):
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith(f"{prog}: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err
    return err


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_typo_unknown_key_and_missing_config_are_one_line_errors(argv, tmp_path, capsys):
    prog = "genrm " + " ".join(argv)
    code = main([*argv, "--seeed", "1"])
    assert_one_line_error(capsys, code, prog, "unknown flag --seeed (did you mean --seed", f"`{prog} --help`")
    yaml = tmp_path / "c.yaml"
    yaml.write_text("seed: 1\nseeed: 2\n")
    code = main([*argv, "--config", str(yaml)])
    assert_one_line_error(capsys, code, prog, "c.yaml: unknown key(s) 'seeed' (did you mean seed")
    code = main([*argv, "--config", str(tmp_path / "absent.yaml")])
    assert_one_line_error(capsys, code, prog, "absent.yaml: file not found")
    yaml.write_text("seed: [1\n")
    assert_one_line_error(capsys, main([*argv, "--config", str(yaml)]), prog, "not valid YAML at line")
    code = main([*argv, "--seed", "one"])
    assert_one_line_error(capsys, code, prog, "argument --seed: invalid int value: 'one'")


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["judge", "--k", "0"], ["JudgeConfig.k must be >= 1, got 0", "(set by --k)"]),
        (["judge", "--mode", "best"], ["argument --mode: invalid choice: 'best'", "cot"]),
        (["judge", "--pairs", "missing.jsonl"], ["missing.jsonl: file not found"]),
        (["judge", "--columns", "question"], ["JudgeRunConfig.columns: 'question' is not source=target"]),
        (["train", "--recipe", "nope"], ["argument --recipe: invalid choice: 'nope'"]),
        (["train", "--shard_size", "0"], ["RecipeConfig.shard_size must be >= 1", "(set by --shard_size)"]),
        (["train", "--recipe", "bt", "--iterations", "2"], ["--iterations has no effect here", "drop the flag"]),
        (["train", "--recipe", "star-sft", "--dpo_pairs_per_example", "2"], ["applies to star-dpo only"]),
        (["train", "--recipe", "star-sft", "--data", "absent.jsonl"], ["absent.jsonl: file not found"]),
        (["generate", "--n", "0"], ["GenerateConfig.n and chunk_size must be >= 1"]),
        (["generate"], ["no input prompts given"]),
        (["eval", "preference", "--data", "absent.jsonl"], ["absent.jsonl"]),
        (["eval", "math500", "--candidates", "absent_c.jsonl", "--problems", "absent_p.jsonl"], ["absent_"]),
        (["demo", "--seed_epochs", "0"], ["DemoConfig.seed_epochs"]),
        (["serve", "--mapping", "square"], ["argument --mapping: invalid choice: 'square'"]),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) and v and v[0][0] != "J" else None,
)
def test_bad_values_validation_errors_and_missing_files_are_one_line_errors(argv, fragments, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    prog = "genrm " + " ".join(argv[:2] if argv[0] == "eval" else argv[:1])
    assert_one_line_error(capsys, main(argv), prog, *fragments)


def test_unknown_command_evaluation_and_stray_argument(capsys):
    assert_one_line_error(capsys, main(["nonsense"]), "genrm", "unknown command 'nonsense'", "genrm --help")
    assert_one_line_error(capsys, main(["eval", "nonsense"]), "genrm eval", "unknown evaluation 'nonsense'")
    assert_one_line_error(capsys, main(["judge", "pairs.jsonl"]), "genrm judge", "unexpected argument 'pairs.jsonl'")


def test_debug_flag_and_env_show_the_traceback(monkeypatch, capsys, tmp_path):
    from genrm_plugin.config_parser import ConfigError

    with pytest.raises(ConfigError, match="JudgeConfig.k must be >= 1"):
        main(["judge", "--k", "0", "--debug"])
    monkeypatch.setenv("GENRM_DEBUG", "1")
    with pytest.raises(ValueError, match="file not found"):
        main(["judge", "--pairs", str(tmp_path / "missing.jsonl")])
    monkeypatch.setenv("GENRM_DEBUG", "0")
    assert main(["judge", "--pairs", str(tmp_path / "missing.jsonl")]) == 2


def test_console_script_prints_one_line_and_traceback_with_debug(tmp_path):
    exe = shutil.which("genrm") or str(Path(sys.executable).parent / "genrm")
    env = {k: v for k, v in os.environ.items() if k != "GENRM_DEBUG"}
    out = subprocess.run([exe, "train", "--modle", "x"], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [
        "genrm train: error: unknown flag --modle (did you mean --mode or --model?); `genrm train --help` lists the flags"
    ]
    out = subprocess.run([exe, "train", "--modle", "x", "--debug"], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode != 0 and "Traceback (most recent call last)" in out.stderr and "ConfigError" in out.stderr
