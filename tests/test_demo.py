"""``genrm demo``: the reduced demo end to end through the real CLI, and its configuration."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from genrm_plugin.demo.base_model import length_sorted_steps
from genrm_plugin.demo.config import QUICK, DemoConfig
from genrm_plugin.evals.intervals import powers_of_two

JUDGES = {"zero-shot", "warm-start", "bt", "genrm", "star-sft", "star-dpo"}
PLOTS = {"accuracy_by_judge.png", "accuracy_vs_k.png", "star_iterations.png", "best_of_n.png", "grpo.png"}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    cmd = [sys.executable, "-m", "genrm_plugin.cli", "demo", "--quick", "--output_dir", str(root / "run"),
           "--cache_dir", str(root / "cache")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return root, done.stdout, json.loads((root / "run" / "report.json").read_text())


def test_quick_demo_writes_the_report(quick_run):
    root, stdout, report = quick_run
    run = root / "run"
    assert PLOTS <= {p.name for p in run.glob("*.png")}
    assert all((run / p).stat().st_size > 5000 for p in PLOTS)
    assert set(report["judges"]) == JUDGES
    for name, evaluation in report["judges"].items():
        for split in ("id", "ood"):
            acc = evaluation[split]["accuracy"]
            assert all(0 <= v <= 1 for v in acc.values()), (name, split, acc)
            assert evaluation[split]["pairs"] == QUICK["eval_pairs"]
    k = report["config"]["k"]
    for cot in ("zero-shot", "warm-start", "star-sft", "star-dpo"):
        assert set(report["judges"][cot]["id"]["accuracy"]) == {f"maj@{j}" for j in powers_of_two(k)}
        assert report["judges"][cot]["id"]["rationales"] == QUICK["eval_pairs"] * 2 * k
    for star in ("star-sft", "star-dpo"):
        # the STaR run's own last held-out evaluation is the ID figure: not judged a second time
        assert report["star_curves"][star]["accuracy"][-1] == report["judges"][star]["id"]["accuracy"][f"maj@{k}"]
        assert not (run / "evals" / star / "id").exists() and (run / "evals" / star / "ood" / "summary.json").is_file()
    bon = report["best_of_n"]
    assert bon["n"][-1] == QUICK["bon_n"] and len(bon["judge"]) == len(bon["n"])
    assert all(o >= j - 1e-9 and o >= r - 1e-9 for j, r, o in zip(bon["judge"], bon["random"], bon["oracle"]))
    grpo = report["grpo"]
    assert grpo["steps"] == QUICK["grpo_steps"] and len(grpo["reward_curve"]) == QUICK["grpo_steps"]
    assert 0 <= grpo["accuracy_before"] <= 1 and 0 <= grpo["accuracy_after"] <= 1
    assert [c["check"] for c in report["acceptance"]][0].startswith("wall time")
    assert all(isinstance(c["ok"], bool) for c in report["acceptance"])
    md = (run / "report.md").read_text()
    for section in ("## Judges", "## Best-of-N", "## GRPO with GenRMReward", "## Acceptance", "## Plots"):
        assert section in md
    assert "STaR-DPO (CoT)" in stdout and "report:" in stdout
    assert (root / "cache").is_dir() and any((root / "cache").glob("demo-base-*/base.json"))


def test_a_trained_judge_beats_the_zero_shot_base(quick_run):
    """The quick run's judges are tiny and briefly trained, but the best of them is above the zero-shot
    base, which never writes a verdict (exactly 1/2; the full run's figures are in the README)."""
    _, _, report = quick_run
    judges = report["judges"]

    def top(name):
        acc = judges[name]["id"]["accuracy"]
        return acc[max(acc, key=lambda key: int(key.split("@")[1]))]

    trained = {name: top(name) for name in ("bt", "genrm", "star-sft", "star-dpo")}
    assert max(trained.values()) > top("zero-shot"), (trained, top("zero-shot"))
    # the base never saw the judging protocol: its verdicts are (nearly) all missing
    assert judges["zero-shot"]["id"]["parse_failure_rate"] > 0.9


def test_quick_preset_and_validation():
    quick = DemoConfig(quick=True)
    assert all(getattr(quick, name) == value for name, value in QUICK.items())
    assert DemoConfig(quick=True, k=8).k == 8  # an explicit flag wins over the preset
    with pytest.raises(ValueError, match="judges"):
        DemoConfig(judges=["bt", "ppo"])
    with pytest.raises(ValueError, match="hidden_size"):
        DemoConfig(hidden_size=100)
    with pytest.raises(ValueError, match="label_noise"):
        DemoConfig(label_noise=0.7)
    with pytest.raises(ValueError, match="DemoConfig.dpo_learning_rate"):
        DemoConfig(dpo_learning_rate=0)
    with pytest.raises(ValueError, match="DemoConfig.seed_epochs"):
        DemoConfig(seed_epochs=0)
    with pytest.raises(ValueError, match="DemoConfig.generation_batch_size"):
        DemoConfig(generation_batch_size=0)


def test_cli_flags_and_yaml(tmp_path):
    from genrm_plugin.config_parser import parse_configs

    yaml = tmp_path / "demo.yaml"
    yaml.write_text("bon_n: 16\nseed: 3\n")
    (config,) = parse_configs((DemoConfig,), ["--config", str(yaml), "--quick", "--seed", "5"], "genrm demo")
    assert config.quick and config.bon_n == 16 and config.seed == 5 and config.k == QUICK["k"]
    assert Path(config.cache_root).name


def test_length_sorted_steps_keeps_each_steps_rows_and_sorts_them():
    rows = [{"prompt": "p" * (n % 7), "completion": "c" * ((n * 37) % 41)} for n in range(40)]
    ordered = length_sorted_steps(rows, rows_per_step=8)
    for start in range(0, 40, 8):
        step, original = ordered[start : start + 8], rows[start : start + 8]
        assert sorted(map(str, step)) == sorted(map(str, original))  # the same rows, nothing lost or moved
        lengths = [len(r["prompt"]) + len(r["completion"]) for r in step]
        assert lengths == sorted(lengths)
    assert ordered != rows


def test_demo_judges_corpus_and_seed_rows_share_the_worlds_prompt():
    from genrm_plugin.demo.base_model import TEMPLATE
    from genrm_plugin.demo.judges import judge_config
    from genrm_plugin.toy.world import ANSWER_PATTERN, prompt_config

    assert judge_config(DemoConfig()).prompt() == prompt_config(TEMPLATE)
    assert prompt_config(TEMPLATE).answer_pattern == ANSWER_PATTERN and prompt_config(TEMPLATE).template == TEMPLATE
