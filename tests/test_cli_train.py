"""`genrm train` at the command line: one YAML file for every recipe, and `--overwrite`."""

import json

import pytest

from genrm_plugin.cli import main
from genrm_plugin.config_parser import ConfigError, parse_configs
from genrm_plugin.judge import JudgeConfig
from genrm_plugin.recipes.card import read_card
from genrm_plugin.recipes.config import RecipeConfig, TrainConfig

SHARED_YAML = """\
recipe: star-dpo
iterations: 2
keep_per_example: 3
dpo_pairs_per_example: 2
dpo_abstain_as_rejected: true
rationale_filter: "no_such_module:check"
k: 1
max_new_tokens: 4
"""
STAR_KEYS = ("iterations", "keep_per_example", "dpo_pairs_per_example", "dpo_abstain_as_rejected")


@pytest.fixture
def pairs_file(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"q{i}", "chosen": "good", "rejected": "bad"}) + "\n" for i in range(4)))
    return path


def parse(argv):
    return parse_configs((RecipeConfig, TrainConfig, JudgeConfig), argv, "genrm train")


def test_one_yaml_serves_every_recipe(tmp_path):
    path = tmp_path / "all.yaml"
    path.write_text(SHARED_YAML.replace('rationale_filter: "no_such_module:check"', 'rationale_filter: "json:loads"'))
    recipe, _, judge = parse(["--config", str(path)])
    # star-dpo takes everything but keep_per_example (STaR-SFT / rationalizer only): that stays at its default
    assert [getattr(recipe, k) for k in STAR_KEYS] == [2, 0, 2, True] and recipe.rationale_filter == "json:loads"
    # keys that have no effect for the recipe chosen on the command line are set aside, not errors
    recipe, _, judge = parse(["--config", str(path), "--recipe", "bt"])
    assert (recipe.recipe, recipe.iterations, recipe.rationale_filter, recipe.dpo_pairs_per_example) == ("bt", 1, None, 1)
    assert judge.k == 1
    recipe, _, _ = parse(["--config", str(path), "--recipe", "star-sft"])
    assert (recipe.iterations, recipe.keep_per_example, recipe.dpo_pairs_per_example, recipe.dpo_abstain_as_rejected) == (2, 3, 1, False)
    # ... but set on the command line where it does nothing, a flag is an error
    with pytest.raises(ConfigError, match=r"--keep_per_example has no effect here: .*star-sft, star-rationalizer only"):
        parse(["--config", str(path), "--recipe", "star-dpo", "--keep_per_example", "2"])
    with pytest.raises(ConfigError, match=r"--iterations has no effect here"):
        parse(["--recipe", "genrm", "--iterations", "3"])
    # the Python API keeps its own check
    with pytest.raises(ValueError, match="STaR recipes only"):
        RecipeConfig(recipe="genrm", iterations=2)


def test_train_runs_with_a_yaml_holding_other_recipes_keys(tmp_path, pairs_file, capsys):
    path = tmp_path / "all.yaml"
    path.write_text(SHARED_YAML)  # its rationale_filter cannot even be imported: it is not used by this recipe
    run = tmp_path / "run"
    code = main(["train", "--config", str(path), "--recipe", "judge-zero-shot", "--data", str(pairs_file),
                 "--output_dir", str(run)])
    assert code == 0, capsys.readouterr().err
    configs = read_card(run / "final")["configs"]["RecipeConfig"]
    assert (configs["recipe"], configs["iterations"], configs["rationale_filter"]) == ("judge-zero-shot", 1, None)
    code = main(["train", "--config", str(path), "--data", str(pairs_file), "--output_dir", str(tmp_path / "r2")])
    err = capsys.readouterr().err  # star-dpo takes the filter: now it is loaded, and fails by name
    assert code == 2 and "RecipeConfig.rationale_filter 'no_such_module:check' cannot be loaded" in err
    assert "(set by 'rationale_filter' in " in err


def test_overwrite_starts_the_run_folder_afresh(tmp_path, pairs_file, capsys):
    run = tmp_path / "run"
    args = ["train", "--recipe", "judge-zero-shot", "--data", str(pairs_file), "--output_dir", str(run),
            "--max_new_tokens", "4"]
    assert main([*args, "--k", "1"]) == 0
    (run / "leftover.txt").write_text("from the first run")
    capsys.readouterr()
    assert main([*args, "--k", "2"]) == 2  # another setting on the same folder: refused, with what to do
    err = capsys.readouterr().err.strip()
    assert err.startswith("genrm train: error: ") and "JudgeConfig.k: 1 -> 2" in err and "--overwrite" in err
    assert len(err.splitlines()) == 1
    assert main([*args, "--k", "2", "--overwrite"]) == 0
    assert not (run / "leftover.txt").exists()
    assert read_card(run / "final")["configs"]["JudgeConfig"]["k"] == 2
    assert json.loads((run / "manifest.json").read_text())["attempts"] == 1
    assert main([*args, "--k", "2"]) == 0  # --overwrite is not part of the run's settings: this resumes it


def test_overwrite_refuses_a_folder_that_is_not_a_run_folder(tmp_path, pairs_file, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    code = main(["train", "--recipe", "judge-zero-shot", "--data", str(pairs_file), "--output_dir", str(folder),
                 "--overwrite"])
    err = capsys.readouterr().err
    assert code == 2 and "is not a genrm train run folder" in err and (folder / "notes.txt").read_text() == "keep me"


def test_train_reads_csv_with_a_column_mapping(tmp_path, capsys):
    data = tmp_path / "pairs.csv"
    data.write_text("question,good,bad\n" + "".join(f"q{i},right,wrong\n" for i in range(3)))
    run = tmp_path / "run"
    columns = ["--data_columns", "question=prompt", "good=chosen", "bad=rejected"]
    code = main(["train", "--recipe", "bt", "--data", str(data), *columns, "--output_dir", str(run), "--max_steps", "1"])
    assert code == 0, capsys.readouterr().err
    assert read_card(run / "final")["data"]["pairs"] == 3
    code = main(["train", "--recipe", "judge-zero-shot", "--data", str(data), *columns])
    assert code == 2 and "--data_columns has no effect here" in capsys.readouterr().err
