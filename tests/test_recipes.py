"""Judge-training recipes: each runs end to end on the tiny kit and gives a judge that loads back and judges.

Plus the pieces with exactly known behaviour: data slicing, shard seeds, the STaR filters and
statistics (on hand-made records and a scripted judge), configs from YAML, the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from recipe_kit import one_torch_thread, synthetic_data, tiny_configs, warm_judge  # noqa: F401  (fixtures)

from genrm_plugin.data import JudgeExample, to_judge_examples
from genrm_plugin.judge import GenerativeJudge, JudgeConfig
from genrm_plugin.prompts import parse_verdict
from genrm_plugin.recipes.card import read_card
from genrm_plugin.recipes.config import RecipeConfig, TrainConfig
from genrm_plugin.recipes.training_run import shard_seed
from genrm_plugin.recipes.star import iteration_slices, sample_shard, sampling_stats, training_rows
from genrm_plugin.recipes.synthetic import seed_rationale, synthetic_pairs
from genrm_plugin.testing import ScriptedBackend, split_judge_prompt

QUESTIONS = ["What is 12+30?", "What is 7+8?"]
GOOD, BAD = ["12+30=42", "7+8=15"], ["12+30=43", "7+8=25"]


def _weights(path):
    from safetensors.torch import load_file

    return load_file(str(Path(path) / "model.safetensors"))


def _same_weights(a, b) -> bool:
    wa, wb = _weights(a), _weights(b)
    return wa.keys() == wb.keys() and all((wa[k] == wb[k]).all() for k in wa)


def _check_run_folder(final: Path, recipe: str, iterations: int) -> dict:
    card = read_card(final)
    assert card["recipe"] == recipe and card["iterations"] == iterations
    assert card["data"]["pairs"] == 24 and len(card["data"]["sha256"]) == 64
    stats = json.loads((final.parent / "stats.json").read_text())
    assert (final.parent / "stats.png").stat().st_size > 10_000
    assert [s["iteration"] for s in stats] == [s["iteration"] for s in card["stats"]]
    for s in stats:
        assert s["eval"]["n"] == 8 and 0.0 <= s["eval"]["accuracy"] <= 1.0
    assert card["accuracies"] == {str(s["iteration"]): s["eval"]["accuracy"] for s in stats}
    assert "| iteration |" in (final / "README.md").read_text()
    return {"card": card, "stats": stats}


def _judge_back(final: Path, mode: str) -> list:
    """Load the saved judge the documented way and judge two pairs."""
    from genrm_plugin.backends.transformers import TransformersBackend

    backend = TransformersBackend.from_pretrained(str(final), progress=False)
    judge = GenerativeJudge(backend, JudgeConfig(mode=mode, k=2, template="compact", max_new_tokens=40, swap=True))
    preferences = judge.compare(QUESTIONS, GOOD, BAD)
    assert len(preferences) == 2
    for p in preferences:
        assert p.p_a is None or 0.0 <= p.p_a <= 1.0
        assert len(p.p_by_order) == 2
    return preferences


# -- end to end, one test per recipe -----------------------------------------------------------------
@pytest.mark.parametrize("recipe", ["star-sft", "star-dpo", "star-rationalizer"])
def test_star_recipe_end_to_end(tmp_path, warm_judge, synthetic_data, recipe):
    from genrm_plugin.recipes.runner import train_judge

    configs = tiny_configs(tmp_path / "run", recipe, warm_judge, synthetic_data, eval_save_rationales=True)
    final = train_judge(*configs)
    run = _check_run_folder(final, recipe, iterations=2)
    stats = run["stats"]
    pairs_seen = []
    for s in stats:
        # the held-out evaluation reports maj@1 .. maj@eval_k from one set of votes, rationales kept
        held_out = tmp_path / "run" / f"iter-{s['iteration']}" / "eval"
        summary = json.loads((held_out / "summary.json").read_text())
        assert summary["ks"] == [1, 2] and s["eval"]["k"] == 2
        assert s["eval"]["accuracy"] == summary["overall"]["accuracy"]["2"]
        eval_records = [json.loads(line) for line in (held_out / "records.jsonl").read_text().splitlines()]
        assert len(eval_records) == 8 and all(len(r["rationales"][0]) == 2 for r in eval_records)
        shards = sorted((tmp_path / "run" / f"iter-{s['iteration']}" / "shards").glob("shard-*.json"))
        records = [r for path in shards for r in json.loads(path.read_text())["records"]]
        assert len(shards) == 3 and len(records) == s["items"] == 24  # 12 pairs x both orders, shards of 8
        assert all(len(r["rationales"]) == 4 for r in records)  # k samples each
        assert all(r["verdicts"] == [parse_verdict(t) for t in r["rationales"]] for r in records)
        assert all(r["hinted"] == (recipe == "star-rationalizer") for r in records)
        assert sampling_stats(records) == {k: s[k] for k in sampling_stats(records)}
        # what was trained on is exactly what the filter keeps from the shards
        assert s["kept_examples"] > 0 and s["train_rows"] >= s["kept_examples"]
        assert 0 < s["frac_pairs_with_correct"] <= 1 and s["train_loss"] is not None and s["train_steps"] == 2
        assert len(s["train_loss_curve"]) == 2
        if recipe == "star-dpo":
            assert s["dpo_pairs"] == s["train_rows"]
        pairs_seen.append({r["pair"] for r in records})
    # fresh halves: disjoint slices covering every pair
    assert not pairs_seen[0] & pairs_seen[1] and pairs_seen[0] | pairs_seen[1] == set(range(24))
    # each iteration starts from the previous one: iteration 2's model differs from 1's, 1's from the base
    run_dir = tmp_path / "run"
    assert not _same_weights(warm_judge, run_dir / "iter-1" / "model")
    assert not _same_weights(run_dir / "iter-1" / "model", run_dir / "iter-2" / "model")
    assert _same_weights(run_dir / "iter-2" / "model", final)
    preferences = _judge_back(final, "cot")
    assert all(len(p.rationales) == 4 for p in preferences)  # k=2 per order, two orders


def test_genrm_end_to_end(tmp_path, warm_judge, synthetic_data):
    from genrm_plugin.recipes.runner import train_judge

    final = train_judge(*tiny_configs(tmp_path / "run", "genrm", warm_judge, synthetic_data))
    run = _check_run_folder(final, "genrm", iterations=1)
    (s,) = run["stats"]
    assert s["train_rows"] == 48 and s["train_steps"] == 2 and s["trained"]
    assert run["card"]["judge"]["mode"] == "no_cot"
    assert not _same_weights(warm_judge, final)
    preferences = _judge_back(final, "no_cot")
    assert all(p.p_a is not None and 0 < p.p_a < 1 and not p.rationales for p in preferences)


def test_bt_end_to_end_and_scorer(tmp_path, warm_judge, synthetic_data):
    from genrm_plugin.bt_scorer import BTScorer
    from genrm_plugin.recipes.runner import train_judge

    final = train_judge(*tiny_configs(tmp_path / "run", "bt", warm_judge, synthetic_data))
    run = _check_run_folder(final, "bt", iterations=1)
    (s,) = run["stats"]
    assert s["train_rows"] == 24 and s["rows_over_max_length"] == 0 and s["train_steps"] == 2
    assert run["card"]["kind"] == "bt"
    scorer = BTScorer.from_pretrained(final)
    rewards = scorer.score(QUESTIONS, GOOD)
    assert len(rewards) == 2 and all(isinstance(r, float) for r in rewards)
    assert scorer.score(QUESTIONS[:1], GOOD[:1]) == pytest.approx(rewards[:1], abs=1e-5)  # padding-independent
    preferences = scorer.compare(QUESTIONS, GOOD, BAD)
    import math

    expected = [1 / (1 + math.exp(-(a - b))) for a, b in zip(rewards, scorer.score(QUESTIONS, BAD))]
    assert [p.p_a for p in preferences] == pytest.approx(expected)
    # as a TRL reward function: keyword call, conversational inputs accepted
    as_reward = scorer(prompts=[[{"role": "user", "content": q}] for q in QUESTIONS],
                       completions=[[{"role": "assistant", "content": g}] for g in GOOD], completion_ids=None)
    assert as_reward == pytest.approx(rewards, abs=1e-5)


def test_zero_shot_is_the_untrained_judge(tmp_path, warm_judge, synthetic_data):
    from genrm_plugin.recipes.runner import train_judge

    final = train_judge(*tiny_configs(tmp_path / "run", "judge-zero-shot", warm_judge, synthetic_data))
    card = read_card(final)
    assert card["recipe"] == "judge-zero-shot" and card["iterations"] == 0
    assert card["stats"][0]["eval"]["n"] == 8
    assert _same_weights(warm_judge, final)
    _judge_back(final, "cot")


# -- pieces with known behaviour ---------------------------------------------------------------------
def test_iteration_slices_are_fresh_seeded_thirds():
    slices = iteration_slices(10, 3, seed=0)
    assert [len(s) for s in slices] == [3, 3, 4]
    assert sorted(i for s in slices for i in s) == list(range(10))
    assert slices == iteration_slices(10, 3, seed=0) and slices != iteration_slices(10, 3, seed=1)
    with pytest.raises(ValueError, match="at least 3 training pairs"):
        iteration_slices(2, 3, seed=0)


def test_shard_seed_depends_only_on_its_coordinates():
    seeds = {shard_seed(0, i, s) for i in range(1, 4) for s in range(50)}
    assert len(seeds) == 150
    assert shard_seed(7, 2, 3) == shard_seed(7, 2, 3) != shard_seed(8, 2, 3)


def _record(label, rationales, pair=0):
    return {"pair": pair, "label": label, "prompt": "What is 1+1?", "answer_a": "1+1=2", "answer_b": "1+1=3",
            "hinted": False, "rationales": rationales, "verdicts": [parse_verdict(r) for r in rationales]}


class _Ctx:
    """The bits of a RecipeContext that ``training_rows`` reads."""

    def __init__(self, recipe, **fields):
        self.recipe = RecipeConfig(recipe=recipe, **fields)
        self.judge = JudgeConfig(template="compact")


def test_star_filters_on_hand_made_records(tiny_model_and_tokenizer):
    _, tokenizer = tiny_model_and_tokenizer
    records = [
        _record("A", ["x [[A]]", "x [[A]]", "y [[A]]", "z [[B]]", "no verdict", "w [[B]]"], pair=0),
        _record("B", ["a [[A]]", "b"], pair=1),  # nothing correct: contributes nothing
    ]
    rows, stats = training_rows(_Ctx("star-sft"), records, tokenizer)
    assert [r["completion"] for r in rows] == ["x [[A]]", "y [[A]]"]  # distinct correct ones, in order
    assert stats == {"kept_examples": 1, "train_rows": 2, "filtered_out": 0}
    assert all(r["prompt"].endswith("<|assistant|>") and "Q: What is 1+1?" in r["prompt"] for r in rows)
    rows, _ = training_rows(_Ctx("star-sft", keep_per_example=1), records, tokenizer)
    assert [r["completion"] for r in rows] == ["x [[A]]"]
    rows, stats = training_rows(_Ctx("star-dpo", dpo_pairs_per_example=5), records, tokenizer)
    assert [(r["chosen"], r["rejected"]) for r in rows] == [("x [[A]]", "z [[B]]"), ("y [[A]]", "w [[B]]")]
    assert stats == {"kept_examples": 1, "train_rows": 2, "filtered_out": 0, "dpo_pairs": 2}
    rows, _ = training_rows(_Ctx("star-dpo", dpo_pairs_per_example=5, dpo_abstain_as_rejected=True), records, tokenizer)
    assert [r["rejected"] for r in rows] == ["z [[B]]", "no verdict"]
    assert [r["rejected"] for r in training_rows(_Ctx("star-dpo"), records, tokenizer)[0]] == ["z [[B]]"]


def rejects_y(question, answer_a, answer_b, rationale):
    """A rationale filter for the test below: rationales starting with ``y`` do not hold."""
    return not rationale.startswith("y")


def test_star_rationale_filter_drops_right_verdicts_that_do_not_hold(tiny_model_and_tokenizer):
    _, tokenizer = tiny_model_and_tokenizer
    records = [_record("A", ["x [[A]]", "y [[A]]", "z [[B]]"], pair=0)]
    path = f"{__name__}:rejects_y"
    rows, stats = training_rows(_Ctx("star-sft", rationale_filter=path), records, tokenizer)
    assert [r["completion"] for r in rows] == ["x [[A]]"] and stats["filtered_out"] == 1
    rows, _ = training_rows(_Ctx("star-dpo", dpo_pairs_per_example=5, rationale_filter=path), records, tokenizer)
    assert [(r["chosen"], r["rejected"]) for r in rows] == [("x [[A]]", "z [[B]]")]  # y is never chosen
    for bad in ("no_such_module:f", f"{__name__}:missing", f"{__name__}"):
        with pytest.raises(ValueError, match="rationale_filter"):
            RecipeConfig(recipe="star-sft", rationale_filter=bad)


def test_sampling_stats_on_hand_made_records():
    records = [
        _record("A", ["[[A]]", "[[B]]", "?"], pair=0),
        _record("B", ["[[A]]", "[[A]]", "[[B]]"], pair=0),
        _record("A", ["[[B]]", "?", "?"], pair=1),
    ]
    assert sampling_stats(records) == {
        "pairs": 2, "items": 3, "samples": 9, "sample_accuracy": 2 / 9, "abstain_rate": 3 / 9,
        "frac_pairs_with_correct": 0.5, "frac_items_with_correct": 2 / 3, "majority_accuracy": 0.0,
    }


def test_sample_shard_with_a_scripted_judge_passes_hints_and_seeds():
    seen = []

    def oracle(prompt, i):  # right on even samples, wrong on odd ones; records the prompts
        seen.append(prompt)
        _, a, _ = split_judge_prompt(prompt)
        expression, value = a.split("=")
        right = "A" if int(value) == sum(int(x) for x in expression.split("+")) else "B"
        return f"check {i} [[{right if i % 2 == 0 else {'A': 'B', 'B': 'A'}[right]}]]"

    examples = to_judge_examples(synthetic_pairs(3, seed=4), seed=0)
    judge = GenerativeJudge(ScriptedBackend(oracle), JudgeConfig(k=4, template="compact"))
    records = sample_shard(judge, examples, seed=11)
    assert [r["verdicts"] for r in records] == [[e.label, _other(e.label)] * 2 for e in examples]
    assert not any("[Hint]" in p for p in seen)
    seen.clear()
    hinted = sample_shard(judge, examples, seed=11, hinted=True)
    assert all(r["hinted"] for r in hinted) and len(seen) == 6 * 4
    assert all("[Hint] Assistant" in p for p in seen)
    assert sampling_stats(records)["frac_items_with_correct"] == 1.0


def _other(label):
    return {"A": "B", "B": "A"}[label]


def test_rows_over_max_length_are_counted(tiny_model_and_tokenizer):
    from genrm_plugin.recipes.trainers import count_over_length

    _, tokenizer = tiny_model_and_tokenizer
    rows = [{"prompt": "p" * 10, "completion": "c"}, {"prompt": "p", "chosen": "c", "rejected": "r" * 40}]
    lengths = [len(tokenizer("p" * 10 + "c" + tokenizer.eos_token).input_ids),
               len(tokenizer("p" + "r" * 40 + tokenizer.eos_token).input_ids)]
    assert count_over_length(tokenizer, rows, None) == 0
    assert count_over_length(tokenizer, rows, max(lengths)) == 0
    assert count_over_length(tokenizer, rows, min(lengths)) == 1
    assert count_over_length(tokenizer, rows, min(lengths) - 1) == 2
    with pytest.raises(ValueError, match=r"training row 1 has none of the response columns.*\['answer', 'prompt'\]"):
        count_over_length(tokenizer, [rows[0], {"prompt": "p", "answer": "a"}], 100)


def test_seed_rationale_names_the_right_candidate():
    for e in to_judge_examples(synthetic_pairs(6), seed=0):
        text = seed_rationale(e)
        assert parse_verdict(text) == e.label and text.count(" Y.") == 1 and text.count(" N.") == 1


def test_configs_defaults_validation_and_yaml(tmp_path):
    from genrm_plugin.config_parser import parse_configs

    assert RecipeConfig(recipe="star-sft").iterations == 3 and RecipeConfig(recipe="bt").iterations == 1
    train = TrainConfig()
    assert train.beta == 1.0 and train.lr_for("star-dpo") == 1e-6 and train.lr_for("star-rationalizer") == 2e-5
    assert TrainConfig(learning_rate=3e-4).lr_for("star-rationalizer") == 3e-4
    with pytest.raises(ValueError, match="recipe must be one of"):
        RecipeConfig(recipe="ppo")
    with pytest.raises(ValueError, match="STaR recipes only"):
        RecipeConfig(recipe="genrm", iterations=2)
    with pytest.raises(ValueError, match="shard_size must be >= 1"):
        RecipeConfig(shard_size=0)
    with pytest.raises(ValueError, match="train_sampling_strategy"):
        TrainConfig(train_sampling_strategy="shuffled")
    from trl import SFTConfig

    from genrm_plugin.recipes.trainers import trl_args

    args = trl_args(SFTConfig, TrainConfig(train_sampling_strategy="sequential"), tmp_path / "out", 1e-4, 0)
    assert args.train_sampling_strategy == "sequential"
    path = tmp_path / "recipe.yaml"
    path.write_text("recipe: star-rationalizer\ndata: pairs.jsonl\niterations: 2\nbeta: 0.5\nk: 6\nlearning_rate: 1.0e-5\n")
    recipe, train, judge = parse_configs((RecipeConfig, TrainConfig, JudgeConfig), ["--config", str(path), "--k", "3"], "t")
    assert (recipe.recipe, recipe.data, recipe.iterations) == ("star-rationalizer", "pairs.jsonl", 2)
    assert (train.beta, train.learning_rate, judge.k) == (0.5, 1e-5, 3)  # flags win over the YAML


def test_cli_train_help_and_bad_recipe(capsys):
    from genrm_plugin.cli import main

    assert main([]) == 0 and "train" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "--recipe" in capsys.readouterr().out
    assert main(["train", "--recipe", "nope"]) == 2 and "invalid choice: 'nope'" in capsys.readouterr().err
    assert main(["train", "--recipe", "star-sft", "--output_dir", "/tmp/unused-genrm-run"]) == 2
    assert "RecipeConfig.data is required" in capsys.readouterr().err


def test_cli_train_runs_a_recipe(tmp_path, warm_judge, synthetic_data, capsys):
    from genrm_plugin.cli import main
    from recipe_kit import cli_args

    configs = tiny_configs(tmp_path / "run", "genrm", warm_judge, synthetic_data)
    assert main(["train", *cli_args(*configs)]) == 0
    out = capsys.readouterr().out
    assert "recipe=genrm" in out and "iteration 1" in out and "held_out_accuracy=" in out
    assert read_card(tmp_path / "run" / "final")["recipe"] == "genrm"


@pytest.mark.parametrize(
    "example, config, shown",
    [
        (JudgeExample("What is 2+2?", "4", "5", "A", 0), JudgeConfig(k=1, swap=False, template="compact"), "A: 4\nB: 5"),
        # answer_pattern: the judge sees only the final answers, and so do its training rows
        (JudgeExample("47+38", "7+8=15 so >85", "sloppy >75", "A", 0),
         JudgeConfig(k=1, swap=False, template="tiny", answer_pattern=r">(\d+)\s*$"), "A: 85\nB: 75\nQ: 47+38 check"),
    ],
)
def test_training_prompts_match_what_the_judge_renders(tiny_model_and_tokenizer, example, config, shown):
    """Training rows use the exact text GenerativeJudge sends to the backend."""
    from genrm_plugin.backends.transformers import TransformersBackend
    from genrm_plugin.recipes.training_rows import judge_prompt

    model, tokenizer = tiny_model_and_tokenizer
    rendered = []

    class Recording(TransformersBackend):
        def generate(self, prompts, n, sampling, seed=None):
            rendered.extend(prompts)
            return [["[[A]]"] * n for _ in prompts]

    GenerativeJudge(Recording(model, tokenizer), config).compare([example.prompt], [example.answer_a], [example.answer_b])
    assert shown in rendered[0] and "sloppy" not in rendered[0]
    assert rendered == [judge_prompt(tokenizer, example, "cot", config.prompt())]


def test_bad_answer_pattern_is_named():
    with pytest.raises(ValueError, match="answer_pattern"):
        JudgeConfig(answer_pattern="[")
